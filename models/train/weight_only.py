"""Weight-only int8 quantisation of the exported fp32 graph.

Dynamic int8 quantisation (`quantize_dynamic`) also quantises activations,
with ranges computed per batch: a text's outputs then depend on the other
texts of its batch and on padding, so the same request can get a slightly
different intent under load. This script keeps activations in fp32 and
stores only the weights as int8 (symmetric, per output channel), so the
outputs of a text depend on that text alone:

- every 2-D MatMul weight becomes `DequantizeLinear(W_int8, scale, axis=1)`
  (ONNX Runtime folds it back to fp32 at session start);
- the word-embedding table (a Gather) becomes a gather of int8 rows and of
  their per-row scales, multiplied back to fp32 after the lookup.

    $PYTHON models/train/weight_only.py FP32_IN INT8_OUT
"""
from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def quantize(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    amax = np.max(np.abs(w), axis=axis, keepdims=True)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return q, scale.squeeze(axis)


def main(src: str, dst: str) -> None:
    model = onnx.load(src)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    new_nodes, new_inits, drop = [], [], set()
    for name, init in inits.items():
        w = numpy_helper.to_array(init)
        users = consumers.get(name, [])
        if w.dtype != np.float32 or w.ndim != 2 or w.size < 4096 or not users:
            continue
        if all(u.op_type == "MatMul" and u.input[1] == name for u in users):
            q, scale = quantize(w, axis=0)  # per output column
            new_inits += [numpy_helper.from_array(q, name + "_q"), numpy_helper.from_array(scale, name + "_scale"),
                          numpy_helper.from_array(np.zeros(scale.shape, np.int8), name + "_zp")]
            new_nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_scale", name + "_zp"], [name],
                                              name=name + "_dq", axis=1))
            drop.add(name)
        elif all(u.op_type == "Gather" and u.input[0] == name for u in users):
            q, scale = quantize(w, axis=1)  # per row
            new_inits += [numpy_helper.from_array(q, name + "_q"),
                          numpy_helper.from_array(scale.reshape(-1, 1), name + "_rowscale")]
            for k, u in enumerate(users):
                idx = u.input[1]
                out = u.output[0]
                rows, scales, rows_f = f"{name}_rows{k}", f"{name}_scales{k}", f"{name}_rowsf{k}"
                replacement = [
                    helper.make_node("Gather", [name + "_q", idx], [rows], axis=0),
                    helper.make_node("Gather", [name + "_rowscale", idx], [scales], axis=0),
                    helper.make_node("Cast", [rows], [rows_f], to=onnx.TensorProto.FLOAT),
                    helper.make_node("Mul", [rows_f, scales], [out]),
                ]
                at = list(g.node).index(u)
                g.node.remove(u)
                for j, n in enumerate(replacement):
                    g.node.insert(at + j, n)
            drop.add(name)
    kept = [i for i in g.initializer if i.name not in drop]
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    for n in reversed(new_nodes):
        g.node.insert(0, n)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    print(f"quantised {len(drop)} weight tensors -> {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
