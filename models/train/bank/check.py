#!/usr/bin/env python3
"""Validate the training data bank (stdlib only).

Usage: python3 models/train/bank/check.py [bank_dir]

Checks every <domain>.json, values.json and generic.json in the bank folder,
prints warnings for problems and the counts at the end. Exit status 1 when
there is any error (warnings about style do not fail the run).
"""
import json
import os
import re
import sys
from collections import Counter

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
        warn(f"{where}: held-out-domain words {bad} in {text!r}")


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
            warn(f"{where}: held-out-domain words {bad} in catalog entry")
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
                warn(f"values.json:{label}: held-out-domain words {bad} in {v!r}")
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


def main():
    bank = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
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
    print(f"\n{errors} error(s), {warnings} warning(s)")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
