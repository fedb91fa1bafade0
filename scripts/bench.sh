#!/usr/bin/env bash
# meshd's benchmarks (docs/BENCHMARKS.md): a release build, then
#   - N simulated proxies over plain xDS against a meshd on loopback: convergence, memory, CPU;
#   - the translation time of one proxy in a 1,000-service mesh;
#   - certificate issuance next to `openssl speed ecdsap256`.
# Usage: scripts/bench.sh [PROXIES...]   (default: 1000)
# Environment: SERVICES (default 1000), DELTA=1 for delta xDS, CHANGES (default 5).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
proxies=("${@:-1000}")
services=${SERVICES:-1000}
changes=${CHANGES:-5}
swift build -c release --product meshd
swift build -c release --product meshd-loadgen
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d /tmp/meshd-bench.XXXXXX)
meshd_pid=""
cleanup() {
  if [ -n "$meshd_pid" ]; then kill "$meshd_pid" 2>/dev/null || true; wait "$meshd_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== translation (one proxy, $services services)"
"$bin/meshd-loadgen" translate --services "$services" --runs 20
"$bin/meshd-loadgen" translate --services "$services" --runs 20 --scoped true
echo "== certificate issuance (one core)"
"$bin/meshd-loadgen" issue --seconds 3

for n in "${proxies[@]}"; do
  echo "== $n proxies, $services services (each proxy reaches the 10 services of its namespace + bench)"
  rm -rf "$work/config" "$work/data"
  "$bin/meshd-loadgen" mesh --services "$services" --workloads $(( (n + services - 1) / services )) --config-dir "$work/config" --nodes "$work/nodes.json"
  "$bin/meshd" --config-dir "$work/config" --data-dir "$work/data" --xds-address 127.0.0.1:25012 --admin-address 127.0.0.1:25014 \
    --xds-plaintext --dev-allow-unauthenticated-proxies --xds-connection-rate 0 --poll-interval 50ms --log-level warning > "$work/meshd.log" 2>&1 &
  meshd_pid=$!
  for _ in $(seq 1 100); do
    curl -sf http://127.0.0.1:25014/readyz >/dev/null 2>&1 && break
    sleep 0.2
  done
  delta_flag=()
  if [ "${DELTA:-0}" = 1 ]; then delta_flag=(--delta); fi
  "$bin/meshd-loadgen" xds --target 127.0.0.1:25012 --nodes "$work/nodes.json" --proxies "$n" "${delta_flag[@]}" \
    --change-dir "$work/config" --changes "$changes" --pid "$meshd_pid" \
    --server-metrics 127.0.0.1:25014 --admin-token-file "$work/data/admin-token"
  kill "$meshd_pid"; wait "$meshd_pid" 2>/dev/null || true
  meshd_pid=""
done
