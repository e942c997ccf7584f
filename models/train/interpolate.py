"""Weight-space interpolation of the trained encoder with the untrained one.

    theta = a * theta_trained + (1 - a) * theta_base

for every encoder weight (embeddings, attention, feed-forward, layer norms),
read from two exported graphs of the same interface: the trained model
(models/telos-minilm) and the untrained base encoder exported the same way
(models/minilm-base, export_baseline.py). The task heads (NER, speech act)
exist only in the trained graph and are kept as trained. Weights stored as
weight-only int8 (weight_only.py) are dequantised, interpolated and
quantised again with the same per-channel scheme, so a = 1 reproduces the
trained graph bit for bit.

Fine-tuning moves an encoder towards its training distribution; averaging
its weights with the pre-trained ones keeps part of what the pre-trained
encoder knew about wording it never saw in training (WiSE-FT, Wortsman et
al., "Robust fine-tuning of zero-shot models", CVPR 2022), at no cost at
inference: the result is one graph of the same size and speed.

    $PYTHON models/train/interpolate.py --alpha 0.8 --out DIR

writes DIR/model.onnx, DIR/tokenizer.json and DIR/config.json (the trained
model's, renamed); evaluate.py --model-dir DIR then measures it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil

import numpy as np
import onnx
from onnx import numpy_helper

from weight_only import quantize

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINED = os.path.join(HERE, "..", "telos-minilm")
BASE = os.path.join(HERE, "..", "minilm-base")


def dequantised(inits: dict) -> dict:
    """Name -> fp32 array of every weight, int8 pairs (`X_q` with `X_scale`
    per output column or `X_rowscale` per row) folded back under `X`."""
    out = {}
    for name, t in inits.items():
        a = numpy_helper.to_array(t)
        if name.endswith("_q"):
            stem = name[:-2]
            if stem + "_scale" in inits:
                out[stem] = a.astype(np.float32) * numpy_helper.to_array(inits[stem + "_scale"])[None, :]
            elif stem + "_rowscale" in inits:
                out[stem] = a.astype(np.float32) * numpy_helper.to_array(inits[stem + "_rowscale"])
        elif not name.endswith(("_scale", "_rowscale", "_zp")) and a.dtype == np.float32:
            out[name] = a
    return out


def interpolate(alpha: float, out_path: str) -> dict:
    trained = onnx.load(os.path.join(TRAINED, "model.onnx"))
    base = onnx.load(os.path.join(BASE, "model.onnx"))
    t_inits = {i.name: i for i in trained.graph.initializer}
    b_w = dequantised({i.name: i for i in base.graph.initializer})
    t_w = dequantised(t_inits)
    mixed, kept = 0, []
    replacements = {}
    for stem, w in t_w.items():
        b = b_w.get(stem)
        # Heads differ in shape or exist only in the trained graph; the base
        # graph's random heads are never mixed in (their names are the
        # heads' own or, for exporter-named tensors, shapes no encoder
        # weight has).
        head = w.ndim == 0 or stem.startswith(("m.ner", "m.act", "m.rel")) or w.shape[-1] in (31, 3)
        if b is None or b.shape != w.shape or head:
            kept.append(stem)
            continue
        v = (alpha * w + (1.0 - alpha) * b).astype(np.float32)
        mixed += 1
        if stem + "_q" in t_inits and stem + "_scale" in t_inits:
            q, scale = quantize(v, axis=0)
            replacements[stem + "_q"], replacements[stem + "_scale"] = q, scale
        elif stem + "_q" in t_inits:
            q, scale = quantize(v, axis=1)
            replacements[stem + "_q"], replacements[stem + "_rowscale"] = q, scale.reshape(-1, 1)
        else:
            replacements[stem] = v
    for i, init in enumerate(trained.graph.initializer):
        if init.name in replacements:
            trained.graph.initializer[i].CopyFrom(numpy_helper.from_array(replacements[init.name], init.name))
    onnx.checker.check_model(trained)
    onnx.save(trained, out_path)
    return {"alpha": alpha, "mixed_tensors": mixed, "kept_from_trained": kept}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alpha", type=float, required=True, help="weight of the trained encoder")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    info = interpolate(args.alpha, os.path.join(args.out, "model.onnx"))
    shutil.copy(os.path.join(TRAINED, "tokenizer.json"), os.path.join(args.out, "tokenizer.json"))
    with open(os.path.join(TRAINED, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    config["interpolation"] = {"alpha": args.alpha, "base": "models/minilm-base"}
    with open(os.path.join(args.out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
