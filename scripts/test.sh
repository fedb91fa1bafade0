#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the test tools, builds, and runs every test
# (unit, conformance with Envoy's Python bindings, end to end with real Envoy 1.40 — in state of the
# world and again in delta xDS).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/setup-test-tools.sh
swift build --build-tests
swift test "$@"
if [ $# -eq 0 ]; then
  # The end-to-end suites again, with every sidecar on delta xDS.
  MESHD_TEST_XDS=delta swift test --skip-build --filter EndToEndTests
fi
