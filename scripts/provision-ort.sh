#!/usr/bin/env bash
# Idempotently provision the ONNX Runtime shared library that `ort` (feature
# `load-dynamic`) opens at start-up. The library is unpacked from the official
# `onnxruntime` wheel on PyPI into `.ort/` at the repository root; nothing else
# is installed. Re-running is a no-op once the file is present and verified.
set -euo pipefail

ORT_VERSION="1.31.1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.ort"
lib="$dest/libonnxruntime.so.$ORT_VERSION"

if [ -s "$lib" ] && [ -f "$lib.ok" ]; then
  exit 0
fi

mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "provision-ort: fetching onnxruntime==$ORT_VERSION wheel from PyPI" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  "onnxruntime==$ORT_VERSION" -d "$tmp" >&2

python3 - "$tmp" "$lib" "$ORT_VERSION" <<'PY'
import glob, sys, zipfile
wheel_dir, out, version = sys.argv[1], sys.argv[2], sys.argv[3]
wheels = glob.glob(f"{wheel_dir}/onnxruntime-{version}-*.whl")
if not wheels:
    sys.exit(f"provision-ort: no onnxruntime {version} wheel for this platform")
member = f"onnxruntime/capi/libonnxruntime.so.{version}"
with zipfile.ZipFile(wheels[0]) as z, open(out + ".part", "wb") as f:
    f.write(z.read(member))
PY
mv "$lib.part" "$lib"
ln -sf "libonnxruntime.so.$ORT_VERSION" "$dest/libonnxruntime.so"
sha256sum "$lib" | cut -d' ' -f1 > "$lib.ok"
echo "provision-ort: installed $lib" >&2
