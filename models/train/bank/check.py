#!/usr/bin/env python3
"""Validate the training data bank.

Usage: python3 models/train/bank/check.py [bank_dir] [--bfcl-train PATH]

Checks every <domain>.json, values.json and generic.json in the bank folder,
prints warnings for problems and the counts at the end. Exit status 1 when
there is any error (warnings about style do not fail the run).

Vocabulary (errors, not warnings):

- a template, value or catalog entry with a word of the dev domains of
  fixtures/intents (the BANNED list below);
- a word of the generator lists (templates and values of the bank,
  generic.json, and the list constants of models/train/gen_data.py,
  common.py and gen_mcp.py) that occurs in non-training data only: the dev and test
  domains of fixtures/intents (requests, labels and catalogs), the dev and
  test requests of fixtures/real, the queries of fixtures/bfcl/heldout.jsonl
  — and nowhere in the training data: the train domains of fixtures/intents,
  the train requests and catalogs of fixtures/real, the train servers of
  fixtures/mcp and the BFCL training rows.

The BFCL training rows come from --bfcl-train (default
$TELOS_WORK/data/bfcl_train.jsonl, written by models/train/bfcl.py); when
that file is missing they are rebuilt with bfcl.py (needs `bfcl-eval`).
"""
import ast
import glob
import json
import os
import re
import sys
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TRAIN_DIR = os.path.dirname(HERE)

LABELS = {
    "PERSON", "ORG", "EMAIL", "PHONE", "URL", "LOCATION", "DATETIME", "MONEY",
    "QUANTITY", "ACCOUNT", "FILE", "PRODUCT", "CHANNEL", "RESOURCE",
}
VALUE_MINIMUMS = {
    "PERSON": 300, "ORG": 150, "LOCATION": 200, "DATETIME": 150,
    "QUANTITY": 80, "ACCOUNT": 60, "FILE": 150, "PRODUCT": 100,
    "CHANNEL": 80, "RESOURCE": 150, "MONEY_WORDS": 40,
}
GENERIC_MINIMUMS = {
    "delegations": 60, "chitchat": 40, "prefixes": 40, "suffixes": 25,
    "connectors": 20, "conditionals": 10,
}
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
SLOT_RE = re.compile(r"\{([A-Za-z_]+)(?::([^{}]*))?\}")
ACTION_RE = re.compile(r"\[\[([^\[\]]+)\]\]")
# "a hundred euros", "a dozen", "a week from today": here "a" is part of the
# amount, not a determiner, so the value keeps it.
NUMERAL_A = re.compile(r"^an? (hundred|thousand|million|dozen|couple|few|pair|week|fiver|tenner|grand|half)\b", re.I)
DETERMINERS = ("the ", "a ", "an ", "my ", "our ", "your ", "his ", "her ", "their ", "its ")

# Words that belong to the held-out domains (CRM/sales, devops/cloud,
# shopping/e-commerce/food ordering). Matched as whole words, case-insensitive.
BANNED = [
    r"carts?", r"checkouts?", r"deploy\w*", r"roll ?backs?", r"rolled back", r"rollouts?",
    r"kubernetes", r"k8s", r"kubectl", r"pull requests?", r"merge requests?", r"PRs?",
    r"repo", r"repos", r"repositor(?:y|ies)", r"github", r"gitlab", r"bitbucket", r"commits?",
    r"git", r"leads?", r"deals?", r"opportunit(?:y|ies)", r"pipelines?", r"orders?", r"ordered",
    r"ordering", r"crm", r"salesforce", r"hubspot", r"sales", r"prospects?", r"quotes?",
    r"quotation", r"shopping", r"shop", r"shops", r"webshop", r"storefront", r"stores?",
    r"grocer(?:y|ies)", r"wishlists?", r"wish list", r"purchas\w*", r"deliver\w*", r"shipments?",
    r"shipping", r"shipped", r"parcels?", r"packages?", r"servers?", r"clusters?", r"docker",
    r"containers?", r"aws", r"azure", r"gcp", r"terraform", r"ci/cd", r"ci", r"cd", r"staging",
    r"production", r"prod", r"alerts?", r"alerting", r"monitor\w*", r"restart\w*", r"outages?",
    r"uptime", r"scal(?:e|es|ed|ing)", r"kubelet", r"pods?", r"helm", r"jenkins", r"heroku",
    r"vercel", r"netlify", r"cloudflare", r"datadog", r"pagerduty", r"amazon", r"ebay",
    r"walmart", r"etsy", r"shopify", r"instacart", r"doordash", r"uber eats", r"grubhub",
    r"takeout", r"take-out", r"add to bag", r"coupons?", r"promo codes?", r"discount codes?",
    r"customer accounts?", r"pricing tiers?", r"invoic\w* the customer", r"cloud consoles?",
    r"ec2", r"s3 bucket", r"lambda", r"microservices?", r"load balancer", r"devops",
    r"buy", r"buying", r"bought", r"reorder\w*",
]
BANNED_RE = re.compile(r"(?<![\w-])(?:" + "|".join(BANNED) + r")(?![\w-])", re.IGNORECASE)

errors = 0
warnings = 0


def err(msg):
    global errors
    errors += 1
    print("ERROR:", msg)


def warn(msg):
    global warnings
    warnings += 1
    print("WARN: ", msg)


def banned_words(text):
    return sorted({m.group(0) for m in BANNED_RE.finditer(text)})


def check_text(where, text, allow_extra_slots=()):
    """Slots, action brackets, determiners, banned words of one template."""
    # balanced [[ ]]
    depth = 0
    i = 0
    while i < len(text):
        two = text[i:i + 2]
        if two == "[[":
            depth += 1
            if depth > 1:
                err(f"{where}: nested [[ in {text!r}")
                break
            i += 2
            continue
        if two == "]]":
            depth -= 1
            if depth < 0:
                err(f"{where}: unbalanced ]] in {text!r}")
                break
            i += 2
            continue
        i += 1
    if depth > 0:
        err(f"{where}: unclosed [[ in {text!r}")
    for m in ACTION_RE.finditer(text):
        inner = m.group(1)
        if "{" in inner or "}" in inner:
            err(f"{where}: slot inside [[...]] in {text!r}")
        if inner != inner.strip() or not inner.strip():
            err(f"{where}: whitespace at edge of [[{inner}]]")
    stripped = SLOT_RE.sub("", text)
    if "{" in stripped or "}" in stripped:
        err(f"{where}: stray brace in {text!r}")
    for m in SLOT_RE.finditer(text):
        label, literal = m.group(1), m.group(2)
        if label not in LABELS and label not in allow_extra_slots:
            err(f"{where}: unknown slot label {label!r} in {text!r}")
        if literal is not None:
            if not literal.strip() or literal != literal.strip():
                err(f"{where}: empty or padded literal in {text!r}")
            if literal.lower().startswith(DETERMINERS):
                err(f"{where}: literal slot starts with a determiner: {m.group(0)!r}")
            if literal[-1:] in ".,;:!?":
                err(f"{where}: literal slot ends with punctuation: {m.group(0)!r}")
    # adjacent slots without separator are unreadable
    if re.search(r"\}\{", text):
        warn(f"{where}: two slots touch in {text!r}")
    bad = banned_words(SLOT_RE.sub(lambda m: m.group(2) or "", text).replace("[[", "").replace("]]", ""))
    if bad:
        err(f"{where}: dev-domain words {bad} in {text!r}")


def norm(text):
    t = SLOT_RE.sub(lambda m: "{" + m.group(1) + "}", text)
    t = t.replace("[[", "").replace("]]", "").lower()
    t = re.sub(r"[^\w{} ]+", " ", t)
    return " ".join(t.split())


def check_schema(where, schema):
    if not isinstance(schema, dict) or schema.get("type") != "object":
        err(f"{where}: inputSchema must be an object schema")
        return
    props = schema.get("properties", {})
    if not isinstance(props, dict):
        err(f"{where}: properties must be an object")
        return
    for pname, p in props.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", pname):
            err(f"{where}: odd parameter name {pname!r}")
        if not isinstance(p, dict) or ("type" not in p and "enum" not in p and "anyOf" not in p):
            err(f"{where}: parameter {pname!r} has no type")
    for r in schema.get("required", []):
        if r not in props:
            err(f"{where}: required {r!r} not in properties")


def check_domain(path, counts):
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except Exception as e:  # noqa: BLE001
        err(f"{name}: does not parse: {e}")
        return
    domain = data.get("domain")
    if domain != name[:-5]:
        err(f"{name}: domain {domain!r} does not match the file name")
    tools = data.get("catalog", {}).get("tools", [])
    templates = data.get("templates", {})
    if not 8 <= len(tools) <= 14:
        warn(f"{name}: {len(tools)} tools (expected 8-14)")
    seen = set()
    for t in tools:
        tname = t.get("name", "")
        where = f"{name}:{tname}"
        if not NAME_RE.match(tname):
            err(f"{where}: bad tool name")
        if tname in seen:
            err(f"{where}: duplicate tool name")
        seen.add(tname)
        desc = t.get("description", "")
        if len(desc) < 20:
            warn(f"{where}: description too short")
        bad = banned_words(desc + " " + json.dumps(t.get("inputSchema", {})))
        if bad:
            err(f"{where}: dev-domain words {bad} in catalog entry")
        check_schema(where, t.get("inputSchema"))
        ro = t.get("annotations", {}).get("readOnlyHint")
        if not isinstance(ro, bool):
            err(f"{where}: annotations.readOnlyHint must be true or false")
        tl = templates.get(tname)
        if tl is None:
            err(f"{where}: no templates")
            continue
        if len(tl) < 12:
            err(f"{where}: only {len(tl)} templates (need 12)")
        if len(tl) > 20:
            warn(f"{where}: {len(tl)} templates (more than 20)")
        norms = Counter()
        unmarked = 0
        for s in tl:
            if not isinstance(s, str) or not s.strip():
                err(f"{where}: empty template")
                continue
            check_text(where, s)
            norms[norm(s)] += 1
            if "[[" not in s:
                unmarked += 1
        for n, c in norms.items():
            if c > 1:
                warn(f"{where}: near-duplicate template x{c}: {n!r}")
        if not ro and unmarked > len(tl) // 3:
            warn(f"{where}: {unmarked}/{len(tl)} action templates mark no [[verb]]")
        counts["tools"] += 1
        counts["templates"] += len(tl)
        counts["ro_tools" if ro else "se_tools"] += 1
    owner = {}
    for k, tl in templates.items():
        for t in tl if isinstance(tl, list) else []:
            n = norm(t)
            if n in owner and owner[n] != k:
                warn(f"{name}: same template under {owner[n]!r} and {k!r}: {n!r}")
            owner.setdefault(n, k)
    for k in templates:
        if k not in seen:
            err(f"{name}: templates for unknown tool {k!r}")
    counts["domains"] += 1
    return domain, len(tools), sum(len(v) for v in templates.values())


def check_values(path):
    with open(path, encoding="utf-8") as f:
        values = json.load(f)
    print("\nvalues.json")
    for label, minimum in VALUE_MINIMUMS.items():
        vals = values.get(label)
        if not isinstance(vals, list):
            err(f"values.json: missing list {label}")
            continue
        dup = [v for v, c in Counter(v.lower() for v in vals).items() if c > 1]
        if dup:
            warn(f"values.json:{label}: duplicates {dup[:10]}")
        for v in vals:
            if not isinstance(v, str) or v != v.strip() or not v:
                err(f"values.json:{label}: bad value {v!r}")
                continue
            if v.lower().startswith(DETERMINERS) and not NUMERAL_A.match(v):
                err(f"values.json:{label}: value starts with a determiner: {v!r}")
            if v[-1] in ".,;:!?" and not v.endswith("."):
                err(f"values.json:{label}: value ends with punctuation: {v!r}")
            if any(ch in v for ch in "{}[]"):
                err(f"values.json:{label}: brackets in value {v!r}")
            bad = banned_words(v)
            if bad:
                err(f"values.json:{label}: dev-domain words {bad} in {v!r}")
        n = len(set(v.lower() for v in vals if isinstance(v, str)))
        flag = "" if n >= minimum else f"   <-- below {minimum}"
        print(f"  {label:12s} {n:5d}{flag}")
        if n < minimum:
            err(f"values.json:{label}: {n} distinct values, need {minimum}")
    for label in values:
        if label not in VALUE_MINIMUMS:
            warn(f"values.json: unexpected key {label!r}")


def check_generic(path):
    with open(path, encoding="utf-8") as f:
        g = json.load(f)
    print("\ngeneric.json")
    for key, minimum in GENERIC_MINIMUMS.items():
        vals = g.get(key)
        if not isinstance(vals, list):
            err(f"generic.json: missing list {key}")
            continue
        n = len(set(vals))
        if n != len(vals):
            warn(f"generic.json:{key}: duplicate entries")
        for v in vals:
            extra = ("X",) if key == "conditionals" else ()
            check_text(f"generic.json:{key}", v, allow_extra_slots=extra)
            if key == "delegations" and "[[" not in v:
                warn(f"generic.json:delegations: no [[verb]] in {v!r}")
        flag = "" if n >= minimum else f"   <-- below {minimum}"
        print(f"  {key:20s} {n:5d}{flag}")
        if n < minimum:
            err(f"generic.json:{key}: {n} entries, need {minimum}")
    for v in g.get("delegation_sources", []):
        check_text("generic.json:delegation_sources", v)
    if "delegation_sources" in g:
        print(f"  {'delegation_sources':20s} {len(g['delegation_sources']):5d}")


# ---------------------------------------------------------------- vocabulary

WORD_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")


def words(text):
    """Lower-case words of 3+ letters; tokens with a digit (IDs like ABC-19) are not words."""
    out = set()
    for tok in WORD_TOKEN_RE.findall(text):
        if any(ch.isdigit() for ch in tok):
            continue
        for part in tok.lower().split("-"):
            part = part.strip("'")
            if part.endswith("'s"):
                part = part[:-2]
            if len(part) >= 3 and part.isalpha():
                out.add(part)
    return out


def strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings(v)


def tool_name_words(name):
    return re.sub(r"([a-z])([A-Z])", r"\1 \2", name).replace("_", " ").replace(".", " ")


def _json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def intents_vocab(root, domains):
    v = set()
    for d in domains:
        for path in glob.glob(os.path.join(root, d, "*.json")):
            for t in strings(_json(path)):
                v |= words(t)
    return v


def real_vocab(root, deployments, catalogs):
    v = set()
    for d in deployments:
        for path in glob.glob(os.path.join(root, d, "*.json")):
            data = _json(path)
            if os.path.basename(path) == "catalog.json":
                if catalogs:
                    for t in data.get("tools", []):
                        v |= words(tool_name_words(t.get("name", "")))
                        v |= words(" ".join(strings(t)))
                continue
            v |= words(data.get("prompt", ""))
            for e in data.get("expected", {}).get("entities", []):
                v |= words(e.get("text", ""))
    return v


def bfcl_train_rows(path):
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    sys.path.insert(0, TRAIN_DIR)
    try:
        import bfcl  # noqa: PLC0415
        rows = []
        for cat in bfcl.CATEGORIES:
            rows += bfcl.load_category(bfcl.bfcl_data_dir(), cat)
        train, _, _ = bfcl.split_by_group(rows, bfcl.HELDOUT_FRAC, bfcl.MAX_GROUP)
        return train
    except ImportError as e:
        err(f"BFCL training rows: {path} is missing and bfcl-eval is not installed ({e}); "
            "run models/train/bfcl.py first")
        return []


def split_vocabularies(repo, bfcl_train_path):
    """(training words, non-training words) of the fixtures and BFCL."""
    fx = os.path.join(repo, "fixtures")
    isp = _json(os.path.join(fx, "intents", "splits.json"))
    rsp = _json(os.path.join(fx, "real", "splits.json"))
    msp = _json(os.path.join(fx, "mcp", "splits.json"))["splits"]
    nontrain = intents_vocab(os.path.join(fx, "intents"), isp["dev"] + isp["test"])
    nontrain |= real_vocab(os.path.join(fx, "real"), rsp["dev"] + rsp["test"], catalogs=False)
    with open(os.path.join(fx, "bfcl", "heldout.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                nontrain |= words(json.loads(line)["query"])
    train = intents_vocab(os.path.join(fx, "intents"), isp["train"])
    train |= real_vocab(os.path.join(fx, "real"), rsp["train"], catalogs=True)
    for server in msp["train"]["servers"]:
        for t in _json(os.path.join(fx, "mcp", "servers", server, "tools.json")).get("tools", []):
            train |= words(tool_name_words(t.get("name", "")))
            train |= words(" ".join(strings(t)))
    for r in bfcl_train_rows(bfcl_train_path):
        train |= words(r["query"])
        for fn in r["functions"]:
            train |= words(tool_name_words(fn["name"]) + " " + fn.get("description", ""))
    return train, nontrain


def code_lists(path):
    """String constants inside the module-level list/tuple/set/dict assignments of a file."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    out = []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(
                node.value, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            name = getattr(target, "id", "?")
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    out.append((f"{os.path.basename(path)}:{name}", sub.value))
    return out


def generator_texts(bank):
    """(where, text) of every template and value the generators draw from."""
    out = []
    for path in sorted(glob.glob(os.path.join(bank, "*.json"))):
        base = os.path.basename(path)
        data = _json(path)
        if base in ("values.json", "generic.json"):
            for key, vals in data.items():
                for v in vals if isinstance(vals, list) else []:
                    if isinstance(v, str):
                        out.append((f"{base}:{key}", v))
            continue
        for tool, tl in (data.get("templates") or {}).items():
            for t in tl if isinstance(tl, list) else []:
                if isinstance(t, str):
                    out.append((f"{base}:{tool}", SLOT_RE.sub(lambda m: m.group(2) or "", t)))
    for src in ("gen_data.py", "common.py", "gen_mcp.py"):
        path = os.path.join(TRAIN_DIR, src)
        if os.path.exists(path):
            out += code_lists(path)
    return out


def check_vocabulary(bank, repo, bfcl_train_path):
    """Errors for generator words found only in non-training splits; returns their count."""
    train, nontrain = split_vocabularies(repo, bfcl_train_path)
    only = nontrain - train
    hits = defaultdict(list)
    for where, text in generator_texts(bank):
        for w in sorted(words(text) & only):
            hits[w].append((where, text))
    for w in sorted(hits):
        for where, text in hits[w]:
            err(f"{where}: {w!r} occurs only in non-training data, in {text!r}")
    print(f"\nvocabulary: {len(train)} training words, {len(nontrain)} non-training, "
          f"{len(only)} only in non-training; {len(hits)} of those in the generator lists")
    return len(hits)


def main():
    args = sys.argv[1:]
    bfcl_train = os.path.join(os.environ.get("TELOS_WORK") or "/work/train-out", "data", "bfcl_train.jsonl")
    if "--bfcl-train" in args:
        i = args.index("--bfcl-train")
        bfcl_train = args[i + 1]
        del args[i:i + 2]
    bank = args[0] if args else HERE
    counts = Counter()
    rows = []
    for fname in sorted(os.listdir(bank)):
        if not fname.endswith(".json") or fname in ("values.json", "generic.json"):
            continue
        r = check_domain(os.path.join(bank, fname), counts)
        if r:
            rows.append(r)
    print("\ndomains")
    for d, nt, ntpl in rows:
        print(f"  {d:28s} tools {nt:3d}  templates {ntpl:4d}")
    print(f"\n  domains {counts['domains']}, tools {counts['tools']} "
          f"({counts['se_tools']} side-effecting, {counts['ro_tools']} read-only), "
          f"templates {counts['templates']}")
    if counts["domains"] < 18:
        err(f"only {counts['domains']} domain files (need 18)")
    vp = os.path.join(bank, "values.json")
    if os.path.exists(vp):
        check_values(vp)
    else:
        err("values.json missing")
    gp = os.path.join(bank, "generic.json")
    if os.path.exists(gp):
        check_generic(gp)
    else:
        err("generic.json missing")
    check_vocabulary(bank, REPO, bfcl_train)
    print(f"\n{errors} error(s), {warnings} warning(s)")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
