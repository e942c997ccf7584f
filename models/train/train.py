"""Fine-tune all-MiniLM-L6-v2 with three heads in one forward pass.

  embedding  = L2-normalised mean pool over real tokens (no projection)
  ner_logits = Linear(hidden) per token (BIO over the 15 labels)
  act_logits = Linear over the un-normalised mean pool (speech act)

Losses per step:
  (a) relevance InfoNCE (temperature 0.05): clause -> its tool against the
      positive entry + 4 hard negatives from the same catalog (siblings first)
      + every other entry of the step (in-batch negatives); bank clauses on
      their own, clauses of multi-clause requests pooled inside their request
      (mean of the hidden states of the clause's tokens, as the runtime pools
      a split clause), and BFCL train queries; in each step half of the
      entries are shown in a partial view (common.entry_view: first sentence
      of the description, without the parameter list, or both);
  (b) NER token cross-entropy (bank texts; masked for BFCL);
  (c) speech-act cross-entropy (bank texts and in-request clauses; masked
      for BFCL);
  (d) calibration BCE on sigmoid(scale * cos + bias) with learnable scale and
      bias over positive and negative pairs: same-catalog negatives (question
      clauses vs side-effecting siblings included), BFCL irrelevant queries
      vs all their candidates, chitchat and delegations vs a catalog.

Writes the weights (state dict) and train_info.json to --out (outside the repo).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# With 2 cores shared with other jobs, spinning OpenMP threads slow training 5-10x.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    ACT_INDEX, DEFAULT_WORK, EMBED_DIM, IGNORE, MAX_TOKENS, NER_LABELS, SPEECH_ACTS, base_model_dir,
    bio_labels, entry_view, load_tokenizer, name_words, read_jsonl, seed_everything,
)

TEMPERATURE = 0.05


# ---------------------------------------------------------------- model

class TelosModel(nn.Module):
    def __init__(self, base_dir: str | None = None, attn: str = "eager"):
        super().__init__()
        from transformers import BertModel  # noqa: PLC0415
        from transformers.utils import logging as hf_logging  # noqa: PLC0415

        hf_logging.set_verbosity_error()
        self.bert = BertModel.from_pretrained(base_dir or base_model_dir(), add_pooling_layer=False,
                                              attn_implementation=attn)
        hidden = self.bert.config.hidden_size
        self.dropout = nn.Dropout(0.1)
        self.ner = nn.Linear(hidden, len(NER_LABELS))
        self.act = nn.Linear(hidden, len(SPEECH_ACTS))
        # relevance calibration p = sigmoid(scale * cos + bias)
        self.rel_scale = nn.Parameter(torch.tensor(20.0))
        self.rel_bias = nn.Parameter(torch.tensor(-10.0))

    def states(self, input_ids, attention_mask):
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                        token_type_ids=torch.zeros_like(input_ids))
        return out.last_hidden_state

    def pool(self, h, pool_mask):
        """(embedding, act_logits) of the tokens a pool mask selects: the
        whole text (the attention mask) or one clause inside its context."""
        m = pool_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
        embedding = pooled / pooled.norm(p=2, dim=-1, keepdim=True).clamp(min=1e-12)
        return embedding, self.act(self.dropout(pooled))

    def forward(self, input_ids, attention_mask):
        h = self.states(input_ids, attention_mask)
        embedding, act_logits = self.pool(h, attention_mask)
        ner_logits = self.ner(self.dropout(h))
        return embedding, ner_logits, act_logits


def load_trained(path: str) -> TelosModel:
    model = TelosModel()
    state = torch.load(path, map_location="cpu")
    model.load_state_dict(state)
    model.eval()
    return model


# ---------------------------------------------------------------- batching helpers

class Encoder:
    """Tokenise with cache; pad dynamically."""

    def __init__(self, tok):
        self.tok = tok
        self.cache = {}

    def enc(self, text: str):
        e = self.cache.get(text)
        if e is None:
            e = self.tok.encode(text)
            self.cache[text] = e
        return e

    def run(self, model, texts, spans_list=None, max_cells=768, max_rows=16):
        """Forward texts in length-sorted chunks (little padding).

        Returns (embedding [N, D], act_logits [N, A]) in input order and the
        NER cross-entropy (sum, count) over labelled tokens."""
        order = sorted(range(len(texts)), key=lambda i: len(self.enc(texts[i]).ids))
        chunks, cur = [], []
        for i in order:
            n = len(self.enc(texts[i]).ids)
            if cur and (len(cur) + 1 > max_rows or n * (len(cur) + 1) > max_cells):
                chunks.append(cur)
                cur = []
            cur.append(i)
        if cur:
            chunks.append(cur)
        embs, acts, idx = [], [], []
        ner_sum = torch.zeros(())
        ner_n = 0
        for ch in chunks:
            sp = None if spans_list is None else [spans_list[i] for i in ch]
            ids, mask, labels = self.batch([texts[i] for i in ch], sp)
            e, ner, a = model(ids, mask)
            embs.append(e)
            acts.append(a)
            idx += ch
            if spans_list is not None:
                valid = labels != IGNORE
                if valid.any():
                    ner_sum = ner_sum + F.cross_entropy(ner[valid], labels[valid], reduction="sum")
                    ner_n += int(valid.sum())
        inv = torch.empty(len(idx), dtype=torch.long)
        inv[torch.tensor(idx)] = torch.arange(len(idx))
        return torch.cat(embs)[inv], torch.cat(acts)[inv], ner_sum, ner_n

    def batch(self, texts, spans_list=None):
        encs = [self.enc(t) for t in texts]
        n = max(len(e.ids) for e in encs)
        ids = torch.zeros((len(encs), n), dtype=torch.long)
        mask = torch.zeros((len(encs), n), dtype=torch.long)
        labels = torch.full((len(encs), n), IGNORE, dtype=torch.long)
        for i, e in enumerate(encs):
            ids[i, :len(e.ids)] = torch.tensor(e.ids)
            mask[i, :len(e.ids)] = 1
            if spans_list is not None and spans_list[i] is not None:
                labels[i, :len(e.ids)] = torch.tensor(bio_labels(e, spans_list[i]))
        return ids, mask, labels


def clause_items(ex: dict) -> list:
    """Single clauses of an example as written: text slice, spans shifted into it."""
    out = []
    for c in ex["clauses"]:
        s, e = c["start"], c["end"]
        text = ex["text"][s:e]
        # trim trailing separators a clause slice may keep
        while text and text[-1] in " ,;:":
            text = text[:-1]
            e -= 1
        if not text.strip():
            continue
        spans = [[a - s, b - s, lab] for a, b, lab in ex["spans"] if a >= s and b <= e]
        out.append({"text": text, "spans": spans, "act": c["act"], "tool": c["tool"],
                    "domain": ex["domain"]})
    return out


def clause_pool_mask(encoding, start: int, end: int) -> list:
    """1 for the non-special tokens whose characters lie in [start, end):
    a clause pooled inside the request it was written in (the runtime pools
    split clauses the same way, from one forward pass)."""
    return [int(not sp and e > s and s >= start and e <= end)
            for (s, e), sp in zip(encoding.offsets, encoding.special_tokens_mask)]


def object_words(names: list) -> dict:
    """Name words without a shared namespace and without the verb (first word)."""
    words = {n: name_words(n).split() for n in names}
    firsts = {w[0] for w in words.values() if w}
    ns = next(iter(firsts)) if len(firsts) == 1 and len(names) > 1 else None
    stop = {"a", "an", "the", "to", "of", "for", "from", "in", "on", "by", "and", "my", "all"}
    out = {}
    for n, w in words.items():
        if ns and w and w[0] == ns:
            w = w[1:]
        out[n] = {x.rstrip("s") for x in w[1:] if x not in stop}
    return out


@torch.no_grad()
def embed_texts(model, encoder, texts, bs=64):
    model.eval()
    out = []
    for i in range(0, len(texts), bs):
        ids, mask, _ = encoder.batch(texts[i:i + bs])
        out.append(model(ids, mask)[0])
    return torch.cat(out) if out else torch.zeros((0, EMBED_DIM))


def sibling_ranking(model, encoder, catalogs) -> dict:
    """(domain, tool) -> other tools of the catalog, most confusable first:
    sharing an object word, then cosine of the base model's entry embeddings."""
    ranking = {}
    for dn, tools in catalogs.items():
        names = [t["name"] for t in tools]
        embs = embed_texts(model, encoder, [t["entry"] for t in tools])
        sim = (embs @ embs.T).numpy()
        obj = object_words(names)
        for i, n in enumerate(names):
            scored = []
            for j, m in enumerate(names):
                if i == j:
                    continue
                shared = 1.0 if obj[n] & obj[m] else 0.0
                scored.append((shared * 0.3 + float(sim[i, j]), m))
            scored.sort(reverse=True)
            ranking[(dn, n)] = [m for _, m in scored]
    return ranking


# ---------------------------------------------------------------- training

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(DEFAULT_WORK, "data"))
    ap.add_argument("--out", default=os.path.join(DEFAULT_WORK, "model"))
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=2e-3)
    ap.add_argument("--n-text", type=int, default=24, help="full requests per step (NER + act)")
    ap.add_argument("--n-clause", type=int, default=16, help="bank clauses per step (relevance)")
    ap.add_argument("--n-ctx", type=int, default=8,
                    help="clauses of multi-clause requests per step, pooled inside their request")
    ap.add_argument("--n-domains", type=int, default=1, help="catalogs the bank clauses come from")
    ap.add_argument("--n-bfcl", type=int, default=5, help="BFCL relevant queries per step")
    ap.add_argument("--n-none", type=int, default=4, help="irrelevant / no-tool queries per step")
    ap.add_argument("--hard-neg", type=int, default=4, help="hard negatives per bank clause")
    ap.add_argument("--bfcl-hard-neg", type=int, default=3, help="other candidates per BFCL query")
    ap.add_argument("--entry-views", type=float, default=0.5,
                    help="share of catalog entries shown in a partial view in a step (common.entry_view)")
    ap.add_argument("--w-ner", type=float, default=1.0)
    ap.add_argument("--w-act", type=float, default=0.5)
    ap.add_argument("--w-cal", type=float, default=0.5)
    ap.add_argument("--n-real", type=int, default=4,
                    help="requests over the train MCP deployments per step, matched whole against each tool they need")
    ap.add_argument("--p-mcp", type=float, default=0.35,
                    help="share of steps whose catalog is a train MCP deployment (when mcp data exists)")
    ap.add_argument("--max-cal-neg", type=int, default=16,
                    help="catalog entries sampled as negatives of a no-tool query (large catalogs)")
    ap.add_argument("--no-mcp", action="store_true", help="ignore mcp_train.jsonl / mcp_catalogs.json")
    ap.add_argument("--time-budget", type=float, default=45 * 60,
                    help="wall-clock budget (s): the schedule ends here if the steps take longer")
    args = ap.parse_args(argv)

    torch.set_num_threads(2)
    seed_everything(args.seed)
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)

    train = read_jsonl(os.path.join(args.data, "train.jsonl"))
    with open(os.path.join(args.data, "catalogs.json"), encoding="utf-8") as f:
        catalogs = json.load(f)
    with open(os.path.join(args.data, "split.json"), encoding="utf-8") as f:
        split = json.load(f)
    bfcl = read_jsonl(os.path.join(args.data, "bfcl_train.jsonl"))
    train_domains = [d for d in split["domains"] if d not in split["heldout_domains"]]
    catalogs = {d: catalogs[d] for d in train_domains}
    mcp_path = os.path.join(args.data, "mcp_train.jsonl")
    mcp_domains = []
    if not args.no_mcp and os.path.exists(mcp_path):
        with open(os.path.join(args.data, "mcp_catalogs.json"), encoding="utf-8") as f:
            mcp_cats = json.load(f)
        mcp_domains = sorted(mcp_cats)
        catalogs.update(mcp_cats)
        train += read_jsonl(mcp_path)
    tool_of = {(d, t["name"]): t["tool"] for d, tools in catalogs.items() for t in tools}
    read_only = {(d, t["name"]): t["read_only"] for d, tools in catalogs.items() for t in tools}

    # pools
    by_kind = defaultdict(list)
    clause_pool = defaultdict(list)   # domain -> clause items with a tool
    none_pool = []                    # chitchat / delegation clauses (no tool)
    ctx_pool = defaultdict(list)      # domain -> (request, clause) of requests with 2+ clauses
    seen = set()
    for ex in train:
        by_kind[ex["kind"]].append(ex)
        if len(ex["clauses"]) > 1 and ex["domain"] in catalogs:
            for c in ex["clauses"]:
                if c["tool"] is None or (ex["domain"], c["tool"]) in tool_of:
                    ctx_pool[ex["domain"]].append((ex, c))
        for c in clause_items(ex):
            key = (c["text"], c["tool"])
            if key in seen:
                continue
            seen.add(key)
            if c["tool"] is None:
                none_pool.append(c)
            elif c["domain"] in catalogs:
                clause_pool[c["domain"]].append(c)
    kind_w = {"single": 0.38, "multi": 0.34, "delegation_embedded": 0.09, "delegation": 0.07,
              "chitchat": 0.05, "chitchat_embedded": 0.07, "real": 0.06, "mcp_synth": 0.1}
    real_pool = [ex for ex in by_kind.get("real", []) if ex.get("tools")
                 and all((ex["domain"], t) in tool_of for t in ex["tools"])]
    kinds = [k for k in kind_w if by_kind.get(k)]
    bfcl_rel = [r for r in bfcl if r["expected"]]
    bfcl_irr = [r for r in bfcl if not r["expected"]]
    doms = sorted(d for d in clause_pool if d not in mcp_domains)
    mdoms = sorted(d for d in clause_pool if d in mcp_domains)
    print(f"train texts {len(train)}, clauses {sum(len(v) for v in clause_pool.values())} "
          f"in {len(doms)} bank domains and {len(mdoms)} MCP deployments, none clauses {len(none_pool)}, "
          f"real requests {len(real_pool)}, BFCL relevant {len(bfcl_rel)}, "
          f"irrelevant {len(bfcl_irr)}", flush=True)

    tok = load_tokenizer()
    encoder = Encoder(tok)
    model = TelosModel()
    ranking = sibling_ranking(model, encoder, catalogs)

    # the word-embedding table stays frozen: unseen catalogs bring unseen words,
    # and it saves a third of the optimizer's work
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    head_params = list(model.ner.parameters()) + list(model.act.parameters())
    cal_params = [model.rel_scale, model.rel_bias]
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    enc = [(n, p) for n, p in model.bert.named_parameters() if p.requires_grad]
    enc_decay = [p for n, p in enc if not any(k in n for k in no_decay)]
    enc_nodecay = [p for n, p in enc if any(k in n for k in no_decay)]
    opt = torch.optim.AdamW([
        {"params": enc_decay, "lr": args.lr, "weight_decay": 0.01},
        {"params": enc_nodecay, "lr": args.lr, "weight_decay": 0.0},
        {"params": head_params, "lr": args.head_lr, "weight_decay": 0.01},
        {"params": cal_params, "lr": 1e-2, "weight_decay": 0.0},
    ], foreach=True)
    base_lrs = [g["lr"] for g in opt.param_groups]
    warmup = max(1, int(0.06 * args.steps))
    t0 = time.time()

    def progress(step):
        """Fraction of training done: by steps, or by wall clock when the machine
        is slower than planned (then the schedule ends at --time-budget)."""
        return max(step / args.steps, (time.time() - t0) / args.time_budget)

    def lr_factor(step):
        if step < warmup:
            return (step + 1) / warmup
        frac = progress(step)
        w = warmup / args.steps
        return max(0.0, (1.0 - frac) / max(1e-9, 1.0 - w))

    def bank_candidates(dn, tname):
        """Hard negatives: the closest siblings, a side-effecting sibling for a
        read-only positive, and one random catalog tool."""
        others = ranking[(dn, tname)]
        k = args.hard_neg
        negs = others[:k - 1]
        if read_only[(dn, tname)]:
            se = [m for m in others if not read_only[(dn, m)]]
            if se and se[0] not in negs:
                negs = negs[:k - 2] + [se[0]]
        rest = [m for m in others if m not in negs]
        if rest:
            negs.append(rng.choice(rest))
        return negs

    model.train()
    log = []
    agg = defaultdict(float)
    n_agg = 0
    step = 0
    for step in range(args.steps):
        for g, base in zip(opt.param_groups, base_lrs):
            g["lr"] = base * lr_factor(step)

        # ---- full requests: NER + act
        texts_a = []
        for _ in range(args.n_text):
            k = rng.choices(kinds, [kind_w[k] for k in kinds])[0]
            texts_a.append(rng.choice(by_kind[k]))

        # ---- relevance queries and entries; one view of each entry per step
        entries, entry_idx = [], {}
        views = {}

        def view(dn, name):
            if (dn, name) not in views:
                views[(dn, name)] = entry_view(tool_of[(dn, name)], rng, args.entry_views)
            return views[(dn, name)]

        def bfcl_view(fn):
            if id(fn) not in views:
                views[id(fn)] = entry_view(fn, rng, args.entry_views)
            return views[id(fn)]

        def add_entry(text):
            if text not in entry_idx:
                entry_idx[text] = len(entries)
                entries.append(text)
            return entry_idx[text]

        queries = []    # dict(text, spans, act, pos:set, cal_neg:set, rel:bool[, excl:set])
        ctx_queries = []  # the same with ctx = (request, spans, clause start, clause end)
        if mdoms and rng.random() < args.p_mcp:
            chosen = [rng.choice(mdoms)]
        else:
            chosen = rng.sample(doms, min(args.n_domains, len(doms)))

        def catalog_sample(dn):
            tools = catalogs[dn]
            if len(tools) > args.max_cal_neg:
                tools = rng.sample(tools, args.max_cal_neg)
            return {add_entry(view(dn, t["name"])) for t in tools}

        per = max(1, args.n_clause // len(chosen))
        for dn in chosen:
            for c in rng.sample(clause_pool[dn], min(per, len(clause_pool[dn]))):
                pos = add_entry(view(dn, c["tool"]))
                negs = {add_entry(view(dn, m)) for m in bank_candidates(dn, c["tool"])}
                queries.append({"text": c["text"], "spans": c["spans"], "act": c["act"], "pos": {pos},
                                "neg": negs, "rel": True, "domain": dn})
            pool = ctx_pool.get(dn) or []
            for ex, c in rng.sample(pool, min(args.n_ctx // len(chosen), len(pool))):
                if c["tool"] is None:
                    pos, negs = set(), catalog_sample(dn)
                else:
                    pos = {add_entry(view(dn, c["tool"]))}
                    negs = {add_entry(view(dn, m)) for m in bank_candidates(dn, c["tool"])}
                ctx_queries.append({"ctx": (ex["text"], ex["spans"], c["start"], c["end"]),
                                    "act": c["act"], "pos": pos, "neg": negs,
                                    "rel": c["tool"] is not None, "domain": dn})
        # whole real requests against each tool they need; the other needed
        # tools are neither positives nor negatives of that query
        for ex in rng.sample(real_pool, min(args.n_real, len(real_pool))):
            dn = ex["domain"]
            need = {add_entry(view(dn, t)) for t in ex["tools"]}
            for t in ex["tools"]:
                pos = {add_entry(view(dn, t))}
                negs = {add_entry(view(dn, m)) for m in bank_candidates(dn, t) if m not in ex["tools"]}
                queries.append({"text": ex["text"], "spans": None, "act": None, "pos": pos, "neg": negs,
                                "excl": need - pos, "rel": True, "domain": dn})
        for r in rng.sample(bfcl_rel, min(args.n_bfcl, len(bfcl_rel))):
            fns = r["functions"]
            pos_names = set(r["expected"])
            pos = {add_entry(bfcl_view(f)) for f in fns if f["name"] in pos_names}
            others = [f for f in fns if f["name"] not in pos_names]
            rng.shuffle(others)
            negs = {add_entry(bfcl_view(f)) for f in others[:args.bfcl_hard_neg]} - pos
            queries.append({"text": r["query"], "spans": None, "act": None, "pos": pos, "neg": negs,
                            "rel": True, "domain": None})
        for i in range(args.n_none):
            if i % 2 == 0 and bfcl_irr:
                r = rng.choice(bfcl_irr)
                fns = list(r["functions"])
                rng.shuffle(fns)
                negs = {add_entry(bfcl_view(f)) for f in fns[:args.bfcl_hard_neg + 1]}
                queries.append({"text": r["query"], "spans": None, "act": None, "pos": set(),
                                "neg": negs, "rel": False, "domain": None})
            elif none_pool:
                c = rng.choice(none_pool)
                dn = rng.choice(chosen)
                negs = catalog_sample(dn)
                queries.append({"text": c["text"], "spans": c["spans"], "act": c["act"], "pos": set(),
                                "neg": negs, "rel": False, "domain": dn})
        # in-batch: every same-catalog entry already in the step is a calibration negative too
        dom_entries = defaultdict(set)
        for dn in chosen:
            for t in catalogs[dn]:
                if (dn, t["name"]) in views and views[(dn, t["name"])] in entry_idx:
                    dom_entries[dn].add(entry_idx[views[(dn, t["name"])]])
        for q in queries + ctx_queries:
            if q["domain"] in chosen:
                q["neg"] |= dom_entries[q["domain"]] - q["pos"] - q.get("excl", set())

        # ---- forward (length-sorted chunks; one graph)
        texts_l = [e["text"] for e in texts_a] + [q["text"] for q in queries]
        spans_l = [e["spans"] for e in texts_a] + [q["spans"] for q in queries]
        emb_l, act_l, ner_sum, ner_n = encoder.run(model, texts_l, spans_l)
        emb_q = emb_l[len(texts_a):]
        act_ctx = act_l[:0]
        if ctx_queries:
            ctx = [q["ctx"] for q in ctx_queries]
            ids, mask, labels = encoder.batch([t for t, _, _, _ in ctx], [sp for _, sp, _, _ in ctx])
            h = model.states(ids, mask)
            pm = torch.zeros_like(mask)
            for i, (t, _, cs, ce) in enumerate(ctx):
                row = clause_pool_mask(encoder.enc(t), cs, ce)
                pm[i, :len(row)] = torch.tensor(row)
            pm = torch.where(pm.sum(dim=1, keepdim=True) > 0, pm, mask)
            emb_ctx, act_ctx = model.pool(h, pm)
            emb_q = torch.cat([emb_q, emb_ctx])
            queries = queries + ctx_queries
            valid = labels != IGNORE
            if valid.any():
                ner_sum = ner_sum + F.cross_entropy(model.ner(model.dropout(h))[valid], labels[valid],
                                                    reduction="sum")
                ner_n += int(valid.sum())
        emb_e, _, _, _ = encoder.run(model, entries)

        # (b) NER, (c) act
        loss_ner = ner_sum / max(1, ner_n)
        act_targets = torch.tensor([ACT_INDEX[e["act"]] for e in texts_a]
                                   + [ACT_INDEX[q["act"]] if q["act"] else IGNORE for q in queries])
        loss_act = F.cross_entropy(torch.cat([act_l, act_ctx]), act_targets, ignore_index=IGNORE)
        # (a) InfoNCE over all entries of the step, any positive counts
        cos = emb_q @ emb_e.T                                   # [Q, E]
        rel_rows = [i for i, q in enumerate(queries) if q["rel"] and q["pos"]]
        if rel_rows:
            logits = cos[rel_rows] / TEMPERATURE
            pos_mask = torch.zeros_like(logits, dtype=torch.bool)
            excl_mask = torch.zeros_like(logits, dtype=torch.bool)
            for k, i in enumerate(rel_rows):
                for j in queries[i]["pos"]:
                    pos_mask[k, j] = True
                for j in queries[i].get("excl", ()):
                    excl_mask[k, j] = True
            logits = logits.masked_fill(excl_mask, -1e4)
            loss_rel = (torch.logsumexp(logits, dim=1)
                        - torch.logsumexp(logits.masked_fill(~pos_mask, -1e4), dim=1)).mean()
        else:
            loss_rel = cos.sum() * 0.0
        # (d) calibration BCE, balanced positives / negatives
        pi, pj, ni, nj = [], [], [], []
        for i, q in enumerate(queries):
            for j in q["pos"]:
                pi.append(i)
                pj.append(j)
            for j in q["neg"]:
                ni.append(i)
                nj.append(j)
        z_pos = model.rel_scale * cos[pi, pj] + model.rel_bias
        z_neg = model.rel_scale * cos[ni, nj] + model.rel_bias
        loss_cal = (F.binary_cross_entropy_with_logits(z_pos, torch.ones_like(z_pos))
                    + F.binary_cross_entropy_with_logits(z_neg, torch.zeros_like(z_neg))) / 2

        loss = loss_rel + args.w_ner * loss_ner + args.w_act * loss_act + args.w_cal * loss_cal
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

        for k, v in (("loss", loss), ("rel", loss_rel), ("ner", loss_ner), ("act", loss_act),
                     ("cal", loss_cal)):
            agg[k] += float(v.detach()) if torch.is_tensor(v) else float(v)
        agg["entries"] += len(entries)
        n_agg += 1
        if (step + 1) % 50 == 0 or step + 1 == args.steps:
            el = time.time() - t0
            row = {k: round(v / n_agg, 4) for k, v in agg.items()}
            row.update(step=step + 1, elapsed=round(el, 1), scale=round(float(model.rel_scale), 3),
                       bias=round(float(model.rel_bias), 3))
            log.append(row)
            print(json.dumps(row), flush=True)
            agg.clear()
            n_agg = 0
        if progress(step + 1) >= 1.0:
            if step + 1 < args.steps:
                print(f"time budget reached at step {step + 1}", flush=True)
            break

    elapsed = time.time() - t0
    model.eval()
    torch.save(model.state_dict(), os.path.join(args.out, "model.pt"))
    info = {"steps_run": step + 1, "steps": args.steps, "seconds": round(elapsed, 1),
            "sec_per_step": round(elapsed / (step + 1), 3), "args": vars(args),
            "train_domains": train_domains, "heldout_domains": split["heldout_domains"],
            "mcp_deployments": mcp_domains, "n_real_requests": len(real_pool),
            "n_train_texts": len(train), "n_bfcl_train": len(bfcl),
            "rel_scale": float(model.rel_scale), "rel_bias": float(model.rel_bias),
            "torch": torch.__version__, "log": log}
    with open(os.path.join(args.out, "train_info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    print(f"trained {step + 1} steps in {elapsed:.0f}s ({elapsed / (step + 1):.2f}s/step)")


if __name__ == "__main__":
    main()
