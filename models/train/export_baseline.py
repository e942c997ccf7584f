"""Export the UNTRAINED base encoder (all-MiniLM-L6-v2 as shipped, with
untrained heads) in the same three-output interface as telos-minilm, for
the "plain untrained cosine" baseline of `telos-eval --baseline-model-dir`.
Only its `embedding` output is used by the baseline (speech acts and
entities come from the trained model), so the heads' random weights do not
matter. Writes models/minilm-base/ (int8, like the trained model).

    PYTHON=/path/to/venv/bin/python; $PYTHON models/train/export_baseline.py
"""
from __future__ import annotations

import json
import os
import shutil
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import EMBED_DIM, MAX_TOKENS, NER_LABELS, SPEECH_ACTS, base_model_dir  # noqa: E402
from export import export_onnx, quantize  # noqa: E402
from train import TelosModel  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "minilm-base")


def main() -> None:
    torch.manual_seed(0)
    work = os.environ.get("TELOS_WORK", "/work/train-out")
    os.makedirs(work, exist_ok=True)
    os.makedirs(OUT, exist_ok=True)
    model = TelosModel(base_model_dir()).eval()
    fp32 = os.path.join(work, "minilm-base.fp32.onnx")
    export_onnx(model, fp32)
    quantize(fp32, os.path.join(OUT, "model.onnx"))
    shutil.copy(os.path.join(base_model_dir(), "tokenizer.json"), os.path.join(OUT, "tokenizer.json"))
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump({
            "name": "minilm-base-untrained",
            "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            "max_tokens": MAX_TOKENS,
            "embedding_dim": EMBED_DIM,
            "ner_labels": NER_LABELS,
            "speech_acts": SPEECH_ACTS,
            "relevance": {"scale": 10.0, "bias": -5.0},
        }, f, indent=2)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
