"""Training bank -> labelled examples (seeded).

Reads models/train/bank/{<domain>.json, values.json, generic.json} and writes
to --out (default /work/train-out/data):

  catalogs.json          domain -> [{name, entry, read_only}] (and the raw tools)
  train.jsonl            examples for training
  val_templates.jsonl    held-out templates (~20% per tool) of the training domains
  val_domains.jsonl      3 whole held-out domains (unseen catalogs)
  split.json             which domains / templates were held out

An example: {"id", "text", "spans": [[start, end, label]], "act",
"clauses": [{"start", "end", "tool", "act"}], "domain", "kind"}. Char offsets,
end exclusive. `tool` is null for chitchat and delegations.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    BANK_DIR, DEFAULT_WORK, ENTITY_LABELS, Doc, entry_text, gen_email, gen_iban, gen_iso_date,
    gen_money, gen_org_name, gen_phone, gen_product_name, gen_service_name, gen_url, is_read_only, render_template, stable_frac, strongest_act,
    tool_act, write_jsonl,
)

SENT_END = ".!?"
N_HELDOUT_DOMAINS = 3
TEMPLATE_HOLDOUT = 0.2
VALUE_HOLDOUT = 0.2
# Share of slot values drawn from the name generators of common.py rather
# than from the value lists.
GENERATED_SHARE = {"ORG": 0.3, "PRODUCT": 0.3, "RESOURCE": 0.15}


# ---------------------------------------------------------------- bank loading

def load_bank(bank_dir: str):
    domains = {}
    for path in sorted(glob.glob(os.path.join(bank_dir, "*.json"))):
        base = os.path.basename(path)
        if base in ("values.json", "generic.json"):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except (OSError, json.JSONDecodeError) as e:   # a file being written
            print(f"skip {base}: {e}", file=sys.stderr)
            continue
        tools = (d.get("catalog") or {}).get("tools") or []
        templates = d.get("templates") or {}
        names = {t["name"] for t in tools}
        templates = {k: [s for s in v if isinstance(s, str) and s.strip()]
                     for k, v in templates.items() if k in names}
        tools = [t for t in tools if templates.get(t["name"])]
        if len(tools) < 2:
            print(f"skip {base}: fewer than 2 tools with templates", file=sys.stderr)
            continue
        domains[d.get("domain") or base[:-5]] = {"tools": tools, "templates": templates}
    values, generic = {}, {}
    vp, gp = os.path.join(bank_dir, "values.json"), os.path.join(bank_dir, "generic.json")
    if os.path.exists(vp):
        with open(vp, encoding="utf-8") as f:
            values = json.load(f)
    if os.path.exists(gp):
        with open(gp, encoding="utf-8") as f:
            generic = json.load(f)
    return domains, values, generic


# Used only when values.json / generic.json are not written yet (development).
FALLBACK_VALUES = {
    "PERSON": ["Ana Silva", "Tom", "Dr. Patel", "Maria Garcia", "Ken Watanabe", "Lena", "Omar Haddad",
               "Priya", "James O'Neil", "Sofia Rossi", "Li Wei", "Chloe Martin"],
    "ORG": ["Acme Corp", "Delta", "Revolut", "Initech", "Lufthansa", "Northwind"],
    "LOCATION": ["Paris", "JFK", "221B Baker Street", "Berlin", "Tokyo", "San Francisco", "Lisbon"],
    "DATETIME": ["next Friday", "tomorrow at 3pm", "end of the month", "Monday morning", "tonight",
                 "in two weeks", "on March 3rd", "this afternoon"],
    "QUANTITY": ["3 nights", "2 tickets", "10 GB", "two bags", "4 people", "30 minutes"],
    "ACCOUNT": ["savings account", "account ending 4421", "Visa card", "checking account"],
    "FILE": ["report.pdf", "Q3 budget spreadsheet", "Invoices folder", "notes.txt", "slides.pptx"],
    "PRODUCT": ["AirPods Pro", "running shoes", "standing desk"],
    "CHANNEL": ["#general", "marketing channel", "design-team group", "#random"],
    "RESOURCE": ["INV-2024-017", "PROJ-451", "weekly sync", "ticket 8812", "booking ref HT22901"],
    "MONEY_WORDS": ["dollars", "euros", "bucks", "pounds"],
}
FALLBACK_GENERIC = {
    "delegations": ["[[do]] what the email from {PERSON} asks", "[[follow]] the checklist in {FILE}",
                    "[[complete]] the tasks listed on that page", "[[handle]] whatever {PERSON} asked in the doc"],
    "chitchat": ["how are you today?", "thanks, that was helpful", "what can you do?", "good morning!"],
    "prefixes": ["Hey,", "Please", "Could you", "Can you please", "Hi!", "I need you to"],
    "suffixes": ["thanks!", "please.", "asap", "if you can"],
    "connectors": [", and then", "and", ". Also,", ", then", "and after that"],
    "conditionals": ["if {X},", "in case {X},"],
}


# ---------------------------------------------------------------- values

class Values:
    """Slot values per label, split into train / validation by a stable hash."""

    def __init__(self, values: dict, split: str, rng: random.Random):
        self.rng = rng
        self.split = split
        self.lists = {}
        for label in ENTITY_LABELS + ["MONEY_WORDS"]:
            vals = [v for v in (values.get(label) or FALLBACK_VALUES.get(label) or [])
                    if isinstance(v, str) and v.strip()]
            if not vals:
                continue
            held = [v for v in vals if stable_frac("value", label, v) < VALUE_HOLDOUT]
            kept = [v for v in vals if stable_frac("value", label, v) >= VALUE_HOLDOUT]
            pick = held if split != "train" else kept
            self.lists[label] = pick if len(pick) >= 3 else vals
        self.surnames = sorted({p.split()[-1] for p in self.lists.get("PERSON", [])
                                if len(p.split()) > 1 and p.split()[-1][:1].isupper()
                                and "." not in p})

    def __call__(self, label: str) -> str:
        r = self.rng
        if label == "EMAIL":
            return gen_email(r)
        if label == "PHONE":
            return gen_phone(r)
        if label == "URL":
            return gen_url(r)
        if label == "MONEY":
            return gen_money(r, self.lists.get("MONEY_WORDS"))
        if label == "DATETIME" and (r.random() < 0.2 or "DATETIME" not in self.lists):
            return gen_iso_date(r)
        if label == "ACCOUNT" and (r.random() < 0.2 or "ACCOUNT" not in self.lists):
            return gen_iban(r)
        if label == "ORG" and r.random() < GENERATED_SHARE["ORG"]:
            return gen_org_name(r, self.surnames)
        if label == "PRODUCT" and r.random() < GENERATED_SHARE["PRODUCT"]:
            return gen_product_name(r)
        if label == "RESOURCE" and r.random() < GENERATED_SHARE["RESOURCE"]:
            return gen_service_name(r)
        vals = self.lists.get(label)
        if not vals:
            raise KeyError(f"no values for {label}")
        return r.choice(vals)


# ---------------------------------------------------------------- text helpers

def _first_word(text: str) -> str:
    m = re.match(r"\S+", text)
    return m.group(0) if m else ""


def decap(doc: Doc) -> Doc:
    """Lowercase the first letter when a clause continues a sentence, unless the
    first word is a named entity, "I..." or an acronym."""
    if not doc.text or not doc.text[0].isupper():
        return doc
    if any(s == 0 and lab != "ACTION" for s, _, lab in doc.spans):
        return doc
    w = re.sub(r"[^\w']", "", _first_word(doc.text))
    if w in ("I", "I'm", "I'd", "I'll", "I've") or (len(w) > 1 and w.isupper()):
        return doc
    out = doc.copy()
    out.text = doc.text[0].lower() + doc.text[1:]
    return out


def cap(doc: Doc) -> Doc:
    if not doc.text or not doc.text[0].islower():
        return doc
    out = doc.copy()
    out.text = doc.text[0].upper() + doc.text[1:]
    return out


def strip_end_punct(doc: Doc, keep_question: bool = False) -> Doc:
    out = doc.copy()
    while out.text and out.text[-1] in SENT_END + ",;" and not (keep_question and out.text[-1] == "?"):
        if out.in_span(len(out.text) - 1):
            break
        out = out.edit(len(out.text) - 1, 1, "")
    return out


def ensure_end_punct(doc: Doc, act: str) -> Doc:
    if doc.text and doc.text[-1] in SENT_END:
        return doc
    out = doc.copy()
    out.text += "?" if act == "question" and re.match(
        r"(?i)(what|when|where|who|which|how|is|are|do|does|did|can|could|any|am|have|has)\b",
        doc.text) else "."
    return out


def join(parts) -> Doc:
    """Concatenate Docs and strings."""
    out = Doc()
    for p in parts:
        out.append(p)
    return out


# ---------------------------------------------------------------- generator

class Generator:
    def __init__(self, domains, values, generic, split: str, seed: int):
        self.rng = random.Random(seed)
        self.values = Values(values, split, self.rng)
        self.domains = domains
        g = {k: [s for s in (generic.get(k) or FALLBACK_GENERIC.get(k) or []) if isinstance(s, str)]
             for k in ("delegations", "chitchat", "prefixes", "suffixes", "connectors", "conditionals",
                       "delegation_sources")}
        self.split = split

        def part(lst, key):
            held = [s for s in lst if stable_frac(key, s) < TEMPLATE_HOLDOUT]
            kept = [s for s in lst if stable_frac(key, s) >= TEMPLATE_HOLDOUT]
            pick = held if split != "train" else kept
            return pick if pick else lst

        frames = ["[[do]] what the <S> says", "[[follow]] the <S>", "[[handle]] everything in the <S>",
                  "[[complete]] whatever the <S> asks for", "[[take care of]] what the <S> asks",
                  "[[act]] on the <S>"]
        built = [f.replace("<S>", s) for s in g["delegation_sources"] for f in frames]
        self.delegations = part(g["delegations"], "deleg") + part(built, "deleg-src")[: len(g["delegations"])]
        self.chitchat = part(g["chitchat"], "chit")
        self.prefixes = g["prefixes"]
        self.suffixes = g["suffixes"]
        self.connectors = g["connectors"]
        self.conditionals = g["conditionals"]
        self.sources = g["delegation_sources"]

    # -- single clauses
    def clause(self, template: str, tool: dict | None, act: str) -> Doc:
        doc = render_template(template, self.values)
        doc = Doc(doc.text.strip(), doc.spans, [])
        doc.clauses = [{"start": 0, "end": len(doc.text), "tool": tool["name"] if tool else None,
                        "act": act}]
        return doc

    def delegation(self) -> Doc:
        t = self.rng.choice(self.delegations)
        return self.clause(t, None, "delegation")

    def chit(self) -> Doc:
        t = self.rng.choice(self.chitchat)
        return self.clause(t, None, "question")

    # -- noise
    def with_prefix(self, doc: Doc) -> Doc:
        """Prefix a politeness phrase ("could you", "I need you to") only before an
        imperative (the text starts with its ACTION); greetings ("Hi!", "Hey,")
        before anything."""
        imperative = any(s == 0 and lab == "ACTION" for s, _, lab in doc.spans)
        cands = [p.strip() for p in self.prefixes if p.strip()]
        if not imperative:
            cands = [p for p in cands if p[-1] in SENT_END + ":,"]
        if not cands:
            return doc
        pre = render_template(self.rng.choice(cands), self.values)
        if self.rng.random() < 0.7:
            pre = cap(pre)
        terminal = pre.text[-1] in SENT_END + ":"
        body = cap(doc) if terminal else decap(doc)
        sep = "\n" if terminal and self.rng.random() < 0.1 else " "
        out = join([pre, sep, body])
        if not terminal and out.clauses:
            out.clauses[0]["start"] = 0
        return out

    def with_suffix(self, doc: Doc) -> Doc:
        s = self.rng.choice(self.suffixes).strip()
        if not s:
            return doc
        suf = render_template(s, self.values)
        if suf.text[0] in ",;:-—":
            return join([strip_end_punct(doc), suf])
        if suf.text[0].isupper():     # a sentence of its own ("Thanks!")
            return join([ensure_end_punct(doc, doc.clauses[-1]["act"] if doc.clauses else "action"),
                         " ", suf])
        if self.rng.random() < 0.5:
            return join([strip_end_punct(doc), ", ", suf])
        return join([strip_end_punct(doc), " ", suf])

    def typo(self, doc: Doc) -> Doc:
        words = [(m.start(), m.end()) for m in re.finditer(r"[A-Za-z]{4,}", doc.text)]
        words = [(s, e) for s, e in words
                 if not any(ss < e and se > s for ss, se, _ in doc.spans)]
        if not words:
            return doc
        s, e = self.rng.choice(words)
        i = self.rng.randrange(s + 1, e - 1)
        k = self.rng.randrange(3)
        if k == 0:   # swap
            return doc.edit(i, 2, doc.text[i + 1] + doc.text[i])
        if k == 1:   # drop
            return doc.edit(i, 1, "")
        return doc.edit(i, 0, doc.text[i])   # double

    def noise(self, doc: Doc, light: bool = False) -> Doc:
        r = self.rng
        if self.prefixes and r.random() < (0.15 if light else 0.3):
            doc = self.with_prefix(doc)
        else:
            doc = cap(doc) if r.random() < 0.7 else doc
        if self.suffixes and r.random() < (0.1 if light else 0.2):
            doc = self.with_suffix(doc)
        if r.random() < 0.3:
            doc = strip_end_punct(doc, keep_question=r.random() < 0.5)
        if r.random() < 0.1:   # dropped commas
            for m in reversed(list(re.finditer(r",", doc.text))):
                if not doc.in_span(m.start()):
                    doc = doc.edit(m.start(), 1, "")
        if r.random() < 0.1:
            doc = self.typo(doc)
        if r.random() < 0.2:
            low = doc.text.lower()
            if len(low) == len(doc.text):
                doc = Doc(low, doc.spans, doc.clauses)
        return doc

    # -- compositions
    def compose(self, clauses: list) -> Doc:
        """Join 2-3 clause Docs: connectors, sentences, numbered lists or a conditional."""
        r = self.rng
        mode = r.choices(["connector", "sentences", "list", "conditional"], [0.45, 0.22, 0.15, 0.18])[0]
        qi = [i for i, c in enumerate(clauses) if c.clauses[0]["act"] == "question"]
        if mode == "conditional" and self.conditionals and len(clauses) >= 2 and qi:
            # the condition is a read (a question clause), the rest follows it
            cond = clauses[qi[0]]
            rest = [c for i, c in enumerate(clauses) if i != qi[0]]
            tail = self.compose(rest) if len(rest) > 1 else rest[0]
            imperative = any(s == 0 and lab == "ACTION" for s, _, lab in cond.spans)
            cands = [t for t in self.conditionals if not (imperative and "{X}" in t)] or self.conditionals
            tpl = r.choice(cands)
            if "{X}" in tpl:      # "If {X}, " + action
                head = render_template(tpl, self.values, extra={"X": decap(strip_end_punct(cond))})
                head = cap(head) if r.random() < 0.7 else head
                glue = head.text.rstrip()[-1:] in SENT_END
                return join([head, cap(tail) if glue else decap(tail)])
            # question, then "if so, " + action
            conn = render_template(tpl, self.values)
            if r.random() < 0.5:
                first = ensure_end_punct(cond, "question")
                return join([first, " ", cap(conn), decap(tail)])
            return join([strip_end_punct(cond), r.choice([", ", "; ", " - "]), conn, decap(tail)])
        if mode == "list":
            style = r.randrange(4)
            parts = []
            if r.random() < 0.5:
                hdr = r.choice(["Please do the following:", "Can you:", "Todo:", "A few things:",
                                "Here's what I need:", "Steps:", "To do today:", "Could you handle these?"])
                parts.append(hdr + ("\n" if style != 3 else " "))
            for i, c in enumerate(clauses):
                bullet = [f"{i + 1}. ", f"{i + 1}) ", "- ", f"{i + 1}. "][style]
                if i:
                    parts.append("\n" if style != 3 else " ")
                parts.append(bullet)
                parts.append(cap(strip_end_punct(c, keep_question=True)))
            return join(parts)
        if mode == "sentences":
            parts = []
            for i, c in enumerate(clauses):
                if i:
                    parts.append(" ")
                parts.append(ensure_end_punct(cap(c), c.clauses[0]["act"]))
            return join(parts)
        parts = [strip_end_punct(clauses[0], keep_question=True)]
        for k, c in enumerate(clauses[1:], start=1):
            conn = r.choice(self.connectors) if self.connectors else " and "
            prev_q = parts[-1].text.endswith("?")
            if prev_q:     # after a question mark a new sentence starts
                word = conn.strip(" ,.;")
                conn = " " + (word[:1].upper() + word[1:] + " " if word else "")
                conn = conn if conn.strip() else " "
                if word and conn.rstrip()[-1:] not in ",":
                    conn = conn.rstrip() + (", " if r.random() < 0.5 else " ")
            parts.append(conn)
            nxt = strip_end_punct(c, keep_question=True) if k < len(clauses) - 1 else c
            stripped = conn.rstrip()
            new_sentence = not stripped or stripped[-1] in SENT_END
            parts.append(cap(nxt) if new_sentence else decap(nxt))
        return join(parts)

    def finish(self, doc: Doc, domain: str | None, kind: str, light: bool = False) -> dict:
        doc = self.noise(doc, light=light)
        lead = len(doc.text) - len(doc.text.lstrip())
        if lead:
            doc = doc.edit(0, lead, "")
        doc = Doc(doc.text.rstrip(), doc.spans, doc.clauses)
        for c in doc.clauses:       # trim clause ranges
            s, e = c["start"], min(c["end"], len(doc.text))
            while s < e and doc.text[s].isspace():
                s += 1
            while e > s and doc.text[e - 1].isspace():
                e -= 1
            c["start"], c["end"] = s, e
        act = strongest_act(c["act"] for c in doc.clauses)
        return doc.to_json(act=act, domain=domain, kind=kind)


# ---------------------------------------------------------------- splitting and driving

def split_templates(domains: dict):
    """Per tool, hold out ~20% of its templates (lowest stable hash)."""
    held = {}
    for dname, d in domains.items():
        for tname, tl in d["templates"].items():
            n = len(tl)
            k = int(round(TEMPLATE_HOLDOUT * n)) if n >= 3 else 0
            ranked = sorted(tl, key=lambda s: stable_frac("tpl", dname, tname, s))
            held[(dname, tname)] = set(ranked[:k])
    return held


def generate(domains, values, generic, dnames, split, seed, sizes, held_tpl):
    """Examples for one split. `split` in {train, val_templates, val_domains}."""
    g = Generator(domains, values, generic, "train" if split == "train" else "val", seed)
    rng = g.rng
    out = []
    for dname in dnames:
        d = domains[dname]
        tools = {t["name"]: t for t in d["tools"]}
        pool = []   # (template, tool)
        for tname, tl in d["templates"].items():
            for s in tl:
                heldout = s in held_tpl.get((dname, tname), set())
                if split == "train" and heldout:
                    continue
                if split == "val_templates" and not heldout:
                    continue
                pool.append((s, tools[tname]))
        if not pool:
            continue
        for s, t in pool:
            for _ in range(sizes["single"]):
                out.append(g.finish(g.clause(s, t, tool_act(t)), dname, "single"))
        by_tool = defaultdict(list)
        for s, t in pool:
            by_tool[t["name"]].append((s, t))
        tnames = sorted(by_tool)
        for _ in range(sizes["multi"]):
            k = 2 if rng.random() < 0.65 or len(tnames) < 3 else 3
            chosen = rng.sample(tnames, min(k, len(tnames)))
            cl = []
            for tn in chosen:
                s, t = rng.choice(by_tool[tn])
                cl.append(g.clause(s, t, tool_act(t)))
            out.append(g.finish(g.compose(cl), dname, "multi"))
        for _ in range(sizes["deleg_embedded"]):
            s, t = rng.choice(pool)
            cl = [g.clause(s, t, tool_act(t)), g.delegation()]
            if rng.random() < 0.3:
                cl.reverse()
            out.append(g.finish(g.compose(cl), dname, "delegation_embedded"))
        for _ in range(sizes["chit_embedded"]):
            s, t = rng.choice(pool)
            c = g.chit()
            cl = [ensure_end_punct(cap(c), "question"), " ", cap(g.clause(s, t, tool_act(t)))]
            if rng.random() < 0.3:
                cl = [ensure_end_punct(cap(g.clause(s, t, tool_act(t))), tool_act(t)), " ", cap(c)]
            out.append(g.finish(join(cl), dname, "chitchat_embedded"))
    n_dom = max(1, len(dnames))
    for _ in range(sizes["deleg_alone"] * n_dom):
        out.append(g.finish(g.delegation(), None, "delegation"))
    for _ in range(sizes["chit_alone"] * n_dom):
        out.append(g.finish(g.chit(), None, "chitchat"))
    for i, ex in enumerate(out):
        ex["id"] = f"{split}-{i}"
        check_example(ex)
    rng.shuffle(out)
    return out


def check_example(ex: dict) -> None:
    text = ex["text"]
    spans = sorted(ex["spans"])
    for (s, e, lab) in spans:
        assert 0 <= s < e <= len(text), (ex, s, e)
        assert text[s:e] == text[s:e].strip(), (ex, text[s:e])
    for a, b in zip(spans, spans[1:]):
        assert a[1] <= b[0], ("overlap", ex)
    for c in ex["clauses"]:
        assert 0 <= c["start"] <= c["end"] <= len(text), ex


def catalogs_json(domains: dict) -> dict:
    return {dn: [{"name": t["name"], "entry": entry_text(t), "read_only": is_read_only(t), "tool": t}
                 for t in d["tools"]] for dn, d in domains.items()}


def check_bank(bank: str, bfcl_train: str) -> None:
    """Runs bank/check.py (structure and vocabulary) and stops on any error."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bank", "check.py")
    res = subprocess.run([sys.executable, script, bank, "--bfcl-train", bfcl_train],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        errors = [line for line in res.stdout.splitlines() if line.startswith("ERROR")]
        print("\n".join(errors[:50] + [res.stdout.splitlines()[-1] if res.stdout else res.stderr]),
              file=sys.stderr)
        sys.exit(f"{script} failed: fix the bank before generating data")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bank", default=BANK_DIR)
    ap.add_argument("--out", default=os.path.join(DEFAULT_WORK, "data"))
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--single", type=int, default=6, help="renders per training template")
    ap.add_argument("--multi", type=int, default=350, help="multi-clause examples per training domain")
    args = ap.parse_args(argv)

    check_bank(args.bank, os.path.join(args.out, "bfcl_train.jsonl"))
    domains, values, generic = load_bank(args.bank)
    if not domains:
        sys.exit("no domain files in the bank")
    if not values:
        print("values.json missing: using small development fallback lists", file=sys.stderr)
    if not generic:
        print("generic.json missing: using small development fallback lists", file=sys.stderr)
    names = sorted(domains)
    n_hold = N_HELDOUT_DOMAINS if len(names) > N_HELDOUT_DOMAINS + 1 else (1 if len(names) > 1 else 0)
    held_domains = sorted(random.Random(args.seed).sample(names, n_hold))
    train_domains = [n for n in names if n not in held_domains]
    held_tpl = split_templates(domains)

    train = generate(domains, values, generic, train_domains, "train", args.seed,
                     {"single": args.single, "multi": args.multi, "deleg_embedded": 50,
                      "chit_embedded": 25, "deleg_alone": 40, "chit_alone": 25}, held_tpl)
    val_t = generate(domains, values, generic, train_domains, "val_templates", args.seed + 1,
                     {"single": 2, "multi": 40, "deleg_embedded": 8, "chit_embedded": 4,
                      "deleg_alone": 6, "chit_alone": 4}, held_tpl)
    val_d = generate(domains, values, generic, held_domains, "val_domains", args.seed + 2,
                     {"single": 2, "multi": 80, "deleg_embedded": 15, "chit_embedded": 8,
                      "deleg_alone": 10, "chit_alone": 6}, held_tpl)

    os.makedirs(args.out, exist_ok=True)
    write_jsonl(os.path.join(args.out, "train.jsonl"), train)
    write_jsonl(os.path.join(args.out, "val_templates.jsonl"), val_t)
    write_jsonl(os.path.join(args.out, "val_domains.jsonl"), val_d)
    with open(os.path.join(args.out, "catalogs.json"), "w", encoding="utf-8") as f:
        json.dump(catalogs_json(domains), f, ensure_ascii=False)
    h = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(args.bank, "*.json"))):
        with open(path, "rb") as f:
            h.update(os.path.basename(path).encode() + b"\0" + f.read())
    split = {"seed": args.seed, "bank_sha256": h.hexdigest(), "domains": names, "heldout_domains": held_domains,
             "heldout_templates": {f"{d}/{t}": sorted(v) for (d, t), v in held_tpl.items()},
             "bank_complete": bool(values and generic) and len(names) >= 12}
    with open(os.path.join(args.out, "split.json"), "w", encoding="utf-8") as f:
        json.dump(split, f, ensure_ascii=False, indent=1)
    for name, rows in (("train", train), ("val_templates", val_t), ("val_domains", val_d)):
        kinds = Counter(r["kind"] for r in rows)
        acts = Counter(r["act"] for r in rows)
        print(f"{name}: {len(rows)} examples {dict(kinds)} acts {dict(acts)}")
    print(f"domains: {len(names)} ({', '.join(names)}); held out: {held_domains}")


if __name__ == "__main__":
    main()
