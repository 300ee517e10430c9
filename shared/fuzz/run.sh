#!/usr/bin/env bash
# Fuzzes the rubric importer and the push/pull decoders with libFuzzer.
# Usage: shared/fuzz/run.sh [RUNS]   (default 1,000,000 executions per target)
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-1000000}"
for target in rubric_import push_decode pull_decode; do
  mkdir -p "fuzz/corpus/$target"
  case "$target" in
    rubric_import) seeds=rubrics ;;
    *) seeds=tests/golden/wire ;;
  esac
  echo "== $target: $RUNS runs"
  log="$(mktemp)"
  status=0
  cargo +nightly fuzz run -O "$target" "fuzz/corpus/$target" "$seeds" -- \
    -runs="$RUNS" -max_len=65536 -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+== ERROR|SUMMARY|Done)' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
    echo "$target failed (exit $status); the crashing input is under fuzz/artifacts/$target" >&2
    exit "$status"
  fi
  rm -f "$log"
done
