"""BFCL (Berkeley Function Calling Leaderboard, package `bfcl-eval`) -> relevance data.

Each row becomes (query, candidate functions, expected function names | [])
from the single-turn categories. The split is by function group: rows are
joined into connected components over the function names they offer and
their (normalised) query text, so no held-out function name, candidate set or
query occurs in training. Components larger than --max-group rows stay in
training; the others are held out when a hash of their smallest id falls
below --heldout-frac. Training rows go to --out (default
/work/train-out/data/bfcl_train.jsonl), held-out rows to
fixtures/bfcl/heldout.jsonl (subsampled per category if it would exceed
--max-bytes).

Row: {"id", "category", "query", "functions": [{"name", "description",
"inputSchema"}], "expected": [names], "single_candidate": bool};
`description` is capped at 600 chars and `inputSchema` is the BFCL
`parameters` with "dict" types renamed "object". `single_candidate` rows
offer one function: they stay in the file (abstention on irrelevant ones is
still scored) but are left out of the ranking metric (top-1).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BFCL_FIXTURE_DIR, DEFAULT_WORK, stable_frac, write_jsonl  # noqa: E402

CATEGORIES = [
    "simple_python", "simple_java", "simple_javascript", "multiple", "parallel",
    "parallel_multiple", "live_simple", "live_multiple", "live_parallel",
    "live_parallel_multiple", "irrelevance", "live_irrelevance",
]
IRRELEVANT = {"irrelevance", "live_irrelevance"}
DESC_CAP = 600
# share of the (not too large) function groups held out; the largest group
# stays in training, so this holds out about 20% of all rows
HELDOUT_FRAC = 0.45
MAX_GROUP = 200
SPLIT_SALT = "bfcl-split-v2-groups"


def bfcl_data_dir() -> str:
    import bfcl_eval  # noqa: PLC0415

    return os.path.join(os.path.dirname(bfcl_eval.__file__), "data")


def bfcl_version() -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version("bfcl-eval")


def to_schema(p):
    """BFCL parameter schema -> JSON Schema-ish (type "dict" -> "object")."""
    if isinstance(p, dict):
        out = {}
        for k, v in p.items():
            if k == "type" and v == "dict":
                out[k] = "object"
            elif k == "type" and v == "float":
                out[k] = "number"
            elif k == "type" and v == "tuple":
                out[k] = "array"
            else:
                out[k] = to_schema(v)
        return out
    if isinstance(p, list):
        return [to_schema(v) for v in p]
    return p


def query_of(question) -> str:
    """The user's request: the last user message of the first turn."""
    turn = question[0] if question and isinstance(question[0], list) else question
    users = [m.get("content", "") for m in turn if m.get("role") == "user"]
    return (users[-1] if users else "").strip()


def load_category(data_dir: str, cat: str) -> list:
    qpath = os.path.join(data_dir, f"BFCL_v4_{cat}.json")
    apath = os.path.join(data_dir, "possible_answer", f"BFCL_v4_{cat}.json")
    answers = {}
    if os.path.exists(apath):
        with open(apath, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    a = json.loads(line)
                    answers[a["id"]] = a["ground_truth"]
    rows = []
    with open(qpath, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            funcs = r.get("function") or []
            query = query_of(r["question"])
            if not funcs or not query:
                continue
            functions = [{"name": fn["name"],
                          "description": " ".join((fn.get("description") or "").split())[:DESC_CAP],
                          "inputSchema": to_schema(fn.get("parameters") or {"type": "object",
                                                                            "properties": {}})}
                         for fn in funcs]
            if cat in IRRELEVANT:
                expected = []
            else:
                gt = answers.get(r["id"])
                if gt is None:
                    continue
                expected = []
                for call in gt:
                    for name in call:
                        if name not in expected:
                            expected.append(name)
                names = {fn["name"] for fn in functions}
                if not expected or any(n not in names for n in expected):
                    print(f"skip {r['id']}: expected {expected} not among candidates", file=sys.stderr)
                    continue
            rows.append({"id": r["id"], "category": cat, "query": query,
                         "functions": functions, "expected": expected,
                         "single_candidate": len(functions) < 2})
    return rows


def norm_query(q: str) -> str:
    return " ".join(q.lower().split())


def function_groups(rows: list) -> list:
    """Connected components of rows joined by a shared function name or query.

    Returns lists of rows; within a list, rows keep their input order.
    """
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    for r in rows:
        q = ("q", norm_query(r["query"]))
        find(q)
        for fn in r["functions"]:
            union(q, ("f", fn["name"]))
    groups = defaultdict(list)
    for r in rows:
        groups[find(("q", norm_query(r["query"])))].append(r)
    return list(groups.values())


def split_by_group(rows: list, heldout_frac: float, max_group: int) -> tuple[list, list, dict]:
    """(train, held, stats): whole function groups go to one side."""
    train, held = [], []
    n_groups = {"train": 0, "heldout": 0}
    largest = 0
    for g in function_groups(rows):
        largest = max(largest, len(g))
        key = min(r["id"] for r in g)
        out = len(g) <= max_group and stable_frac(SPLIT_SALT, key) < heldout_frac
        (held if out else train).extend(g)
        n_groups["heldout" if out else "train"] += 1
    return train, held, {"groups": n_groups, "largest_group": largest}


def check_disjoint(train: list, held: list) -> None:
    """Fails when a held-out function name or query also occurs in training."""
    names = {fn["name"] for r in train for fn in r["functions"]}
    queries = {norm_query(r["query"]) for r in train}
    for r in held:
        shared = [fn["name"] for fn in r["functions"] if fn["name"] in names]
        if shared or norm_query(r["query"]) in queries:
            raise SystemExit(f"held-out row {r['id']} shares {shared or 'its query'} with training")


def row_bytes(r) -> int:
    return len(json.dumps(r, ensure_ascii=False).encode("utf-8")) + 1


def write_readme(path: str, stats: dict) -> None:
    def cell(side, c):
        return f"{stats[side].get(c, 0)} ({stats[side + '_single'].get(c, 0)})"

    rows = "\n".join(f"| {c} | {cell('train', c)} | {cell('heldout', c)} |" for c in CATEGORIES)
    tot = {side: (sum(stats[side].values()), sum(stats[side + "_single"].values()))
           for side in ("train", "heldout")}
    rows += (f"\n| **all** | {tot['train'][0]} ({tot['train'][1]}) "
             f"| {tot['heldout'][0]} ({tot['heldout'][1]}) |")
    text = f"""# BFCL held-out relevance set

`heldout.jsonl` is the held-out part of the Berkeley Function Calling
Leaderboard data used to evaluate tool relevance of `models/telos-minilm`
(the other part was used for training). Generated by
`models/train/bfcl.py`; do not edit by hand.

- **Source:** PyPI package `bfcl-eval` {stats['version']} (Gorilla project, UC Berkeley),
  files `bfcl_eval/data/BFCL_v4_<category>.json` and
  `bfcl_eval/data/possible_answer/BFCL_v4_<category>.json`.
- **Licence:** Apache-2.0 (the licence of the `bfcl-eval` package and its data).
  The rows here are a derived subset: queries, function names, descriptions and
  parameter schemas are copied; only the names of the expected calls are kept.
- **Categories:** simple_python, simple_java, simple_javascript, multiple,
  parallel, parallel_multiple, live_simple, live_multiple, live_parallel,
  live_parallel_multiple, irrelevance, live_irrelevance. Multi-turn, memory,
  web-search and format-sensitivity sets are not used.
- **Split by function group:** rows are joined into connected components
  over the function names they offer and their query text (lower-cased,
  whitespace collapsed), so **no held-out function name, candidate set or
  query occurs in the training part** (`bfcl.py` checks this and fails
  otherwise). Components of more than {stats['max_group']} rows stay in training (the
  largest has {stats['largest_group']} rows: the live categories share many
  functions); of the others, a component is held out when
  `sha256("{stats['salt']}" + "\\x1f" + its smallest id)`, first 8 bytes
  (big-endian) as a fraction of 2^64, is below {stats['heldout_frac']}
  ({stats['groups']['heldout']} components held out, {stats['groups']['train']} in training).
  The held-out file is not subsampled unless it exceeds about 4 MB
  ({stats['heldout_before_subsample']} rows held out, {sum(stats['heldout'].values())} kept,
  {stats['heldout_bytes']} bytes).
- **Single-candidate rows** (`"single_candidate": true`) offer one
  function. They stay in the file, but a ranking among one candidate is
  always right, so `telos-eval` leaves them out of top-1 and reports them
  apart; irrelevant single-candidate rows still count for abstention.

## Row format (JSON lines)

```json
{{"id": "live_multiple_12-4-4", "category": "live_multiple",
 "query": "the last user message of the first turn",
 "functions": [{{"name": "...", "description": "... (at most {stats['desc_cap']} chars)",
                "inputSchema": {{"type": "object", "properties": {{}}, "required": []}}}}],
 "expected": ["names of the functions the ground truth calls; [] for irrelevance"],
 "single_candidate": false}}
```

`inputSchema` is BFCL's `parameters` with the types `dict`, `float` and
`tuple` renamed `object`, `number` and `array`; descriptions have their
whitespace collapsed. Rows whose candidates do not contain the expected
function, and irrelevance rows without functions, are dropped.

Rows per category, single-candidate rows in brackets:

| category | train | held out |
|---|---|---|
{{rows}}
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace("{rows}", rows))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(DEFAULT_WORK, "data"))
    ap.add_argument("--fixture-dir", default=BFCL_FIXTURE_DIR)
    ap.add_argument("--max-bytes", type=int, default=3_900_000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--heldout-frac", type=float, default=HELDOUT_FRAC)
    ap.add_argument("--max-group", type=int, default=MAX_GROUP)
    args = ap.parse_args(argv)

    data_dir = bfcl_data_dir()
    rows = []
    for cat in CATEGORIES:
        rows += load_category(data_dir, cat)
    train, held, group_stats = split_by_group(rows, args.heldout_frac, args.max_group)

    # keep the fixture under the size cap: subsample per category in proportion
    total = sum(row_bytes(r) for r in held)
    n_before = len(held)
    if total > args.max_bytes:
        rng = random.Random(args.seed)
        by_cat = defaultdict(list)
        for r in held:
            by_cat[r["category"]].append(r)
        keep_frac = args.max_bytes / total
        while True:
            kept = []
            for cat in CATEGORIES:
                rows = sorted(by_cat.get(cat, []), key=lambda r: stable_frac("sub", r["id"]))
                k = max(1, int(len(rows) * keep_frac)) if rows else 0
                kept += rows[:k]
            if sum(row_bytes(r) for r in kept) <= args.max_bytes:
                break
            keep_frac *= 0.95
        held = kept
        del rng
    held.sort(key=lambda r: (CATEGORIES.index(r["category"]), r["id"]))
    check_disjoint(train, held)

    write_jsonl(os.path.join(args.out, "bfcl_train.jsonl"), train)
    os.makedirs(args.fixture_dir, exist_ok=True)
    write_jsonl(os.path.join(args.fixture_dir, "heldout.jsonl"), held)
    stats = {
        "package": "bfcl-eval", "version": bfcl_version(), "salt": SPLIT_SALT,
        "heldout_frac": args.heldout_frac, "max_group": args.max_group, "desc_cap": DESC_CAP,
        **group_stats,
        "train": dict(Counter(r["category"] for r in train)),
        "heldout_before_subsample": n_before,
        "heldout": dict(Counter(r["category"] for r in held)),
        "train_single": dict(Counter(r["category"] for r in train if r["single_candidate"])),
        "heldout_single": dict(Counter(r["category"] for r in held if r["single_candidate"])),
        "heldout_bytes": sum(row_bytes(r) for r in held),
    }
    with open(os.path.join(args.out, "bfcl_stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1)
    write_readme(os.path.join(args.fixture_dir, "README.md"), stats)
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()
