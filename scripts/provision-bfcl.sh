#!/usr/bin/env bash
# Installs the `bfcl-eval` package's data (Apache-2.0; the pinned version of
# models/train/requirements.txt) into .bfcl/, without its dependencies: the
# training-bank check (models/train/bank/check.py) reads the BFCL training
# rows from it to tell training vocabulary from held-out vocabulary. Only
# the package's JSON data is read; nothing of it is imported beyond its
# (empty) package module.
#
# Idempotent: nothing is done when .bfcl/ already holds that version.
# Prints the PYTHONPATH entry to use on stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=$(sed -n 's/^bfcl-eval==\(.*\)$/\1/p' models/train/requirements.txt)
dest=.bfcl
if [[ ! -d "$dest/bfcl_eval-$version.dist-info" ]]; then
  echo "provision-bfcl: installing bfcl-eval==$version data into $dest" >&2
  rm -rf "$dest.part"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$dest.part" "bfcl-eval==$version" >&2
  rm -rf "$dest"
  mv "$dest.part" "$dest"
fi
echo "$PWD/$dest"
