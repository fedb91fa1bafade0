#!/usr/bin/env bash
# Fuzzes meshd with libFuzzer: scripts/fuzz.sh config|csr|xds|all SECONDS.
#   config  YAML/JSON decoding into the Istio model (resources and mesh.yaml)
#   csr     CSR parsing and the CSR policy
#   xds     the SotW and delta stream state machines fed arbitrary requests and configurations
# Builds the meshd-fuzz product with -sanitize=fuzzer into .build-fuzz, then runs each target for
# SECONDS from the committed corpus (fuzz/corpus/TARGET, never modified; new inputs go to
# .build-fuzz/corpus/TARGET). A crash stops the run with a non-zero status and leaves the input
# in .build-fuzz/crashes/; reproduce it with `swift run meshd-fuzz TARGET FILE`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
usage="usage: scripts/fuzz.sh config|csr|xds|all SECONDS"
target=${1:?$usage}
seconds=${2:?$usage}
case "$target" in
  all) targets=(config csr xds) ;;
  config|csr|xds) targets=("$target") ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
scratch=.build-fuzz
swift build --scratch-path "$scratch" --product meshd-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING
binary="$scratch/debug/meshd-fuzz"
for name in "${targets[@]}"; do
  mkdir -p "$scratch/corpus/$name" "$scratch/crashes"
  rm -f "$scratch/crashes/$name-"*
  echo "fuzzing $name for ${seconds}s" >&2
  # Swift's own backtracer would take the crash signal before libFuzzer writes the input out.
  status=0
  MESHD_FUZZ_TARGET="$name" SWIFT_BACKTRACE=enable=no "$binary" "$scratch/corpus/$name" "fuzz/corpus/$name" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$scratch/crashes/$name-" > "$scratch/fuzz-$name.log" 2>&1 || status=$?
  grep -E "^(stat::|#[0-9]+ +DONE|==[0-9]+==|SUMMARY)" "$scratch/fuzz-$name.log" || true
  if [ "$status" -ne 0 ] || ls "$scratch/crashes/$name-"* >/dev/null 2>&1; then
    echo "fuzz target $name failed (status $status): $(ls "$scratch/crashes/$name-"* 2>/dev/null); log: $scratch/fuzz-$name.log" >&2
    tail -40 "$scratch/fuzz-$name.log" >&2
    exit 1
  fi
done
echo "fuzzing done: ${targets[*]}, ${seconds}s each, no crash" >&2
