#!/usr/bin/env sh
# Reproduce models/telos-minilm end to end: BFCL split, bank check -> data, training,
# ONNX export + int8 quantisation, held-out evaluation, model README.
#
#   PYTHON=/path/to/venv/bin/python models/train/run.sh
#
# Needs the packages of requirements.txt (no network access at run time).
# Intermediates (data, weights, fp32 ONNX) go to $TELOS_WORK, outside the repo.
set -eu
PYTHON="${PYTHON:-python3}"
HERE="$(cd "$(dirname "$0")" && pwd)"
export TELOS_WORK="${TELOS_WORK:-/work/train-out}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
mkdir -p "$TELOS_WORK"

"$PYTHON" "$HERE/bfcl.py"
"$PYTHON" "$HERE/gen_data.py"   # runs bank/check.py first and stops on any error
"$PYTHON" "$HERE/gen_mcp.py"    # train MCP deployments: real train requests + synthetic ones
"$PYTHON" "$HERE/train.py"
"$PYTHON" "$HERE/export.py"
"$PYTHON" "$HERE/evaluate.py"
