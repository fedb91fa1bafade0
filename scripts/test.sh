#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the test tools, builds, and runs every test
# (unit, conformance with Envoy's Python bindings, end to end with real Envoy 1.40 — in state of the
# world and again in delta xDS), after a short fuzzing run (scripts/fuzz.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/setup-test-tools.sh
swift build --build-tests
if [ $# -eq 0 ]; then
  # The fuzz corpus as a regression run, then a short libFuzzer run of every target.
  for target in config csr xds; do .build/debug/meshd-fuzz "$target" "fuzz/corpus/$target"; done
  scripts/fuzz.sh all "${MESHD_FUZZ_SECONDS:-30}"
fi
swift test "$@"
if [ $# -eq 0 ]; then
  # The end-to-end suites again, with every sidecar on delta xDS.
  MESHD_TEST_XDS=delta swift test --skip-build --filter EndToEndTests
fi
