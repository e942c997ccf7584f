#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for SECONDS each
# (default 600), seeded from fuzz/regressions/<target>/ and the local corpus
# fuzz/corpus/<target>/. A crash stops that target; its input lands in
# fuzz/artifacts/<target>/. Minimise it with `cargo +nightly fuzz tmin`,
# fix the bug, and commit the minimised input under fuzz/regressions/<target>/
# (the test suite replays that directory).
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
secs="${1:-600}"; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t for ${secs}s"
  cargo +nightly fuzz run "$t" "corpus/$t" "regressions/$t" -- \
    -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY|Test unit written)' || true
done
