#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the test tools, builds, and runs every test
# (unit, conformance with Envoy's Python bindings, end to end with real Envoy 1.40).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/setup-test-tools.sh
swift build --build-tests
swift test "$@"
