#!/usr/bin/env bash
# What Istio's standard metrics cost (docs/BENCHMARKS.md, "Istio's standard metrics"):
#   1. meshd: access log entries streamed to it as sidecars send them (meshd-loadgen access-logs):
#      meshd's CPU per entry and memory per series, in a 1,000-service mesh;
#   2. the sidecars: the same HTTP load (wrk, 8 connections, 10 s) through a client and a server
#      sidecar to an app, with the metrics on and off (--istio-metrics-flush-interval 0): each
#      Envoy's CPU per request, and meshd's.
# Usage: scripts/bench-istio-metrics.sh   (needs scripts/setup-test-tools.sh for Envoy, and wrk)
# Everything listens on 127.77.x.x and 127.0.0.1:2601x; processes are stopped by pid.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk (Debian's package)" >&2; exit 1; }
envoy=$(scripts/envoy-path.sh)
swift build -c release --product meshd
swift build -c release --product meshctl
swift build -c release --product meshd-loadgen
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d /tmp/meshd-bench-metrics.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cpu() { # user+system seconds of a process
  awk -v tck="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); split($0, f, " "); printf "%.3f", (f[12] + f[13]) / tck }' "/proc/$1/stat"
}
start_meshd() { # config dir, data dir, extra flags...
  local config=$1 data=$2
  shift 2
  "$bin/meshd" --config-dir "$config" --data-dir "$data" --xds-address 127.0.0.1:26012 --admin-address 127.0.0.1:26014 \
    --xds-plaintext --dev-allow-unauthenticated-proxies --xds-connection-rate 0 --log-level warning "$@" > "$data.log" 2>&1 &
  meshd_pid=$!
  pids+=("$meshd_pid")
  for _ in $(seq 1 150); do
    curl -sf http://127.0.0.1:26014/readyz >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "meshd did not become ready: $(tail -5 "$data.log")" >&2
  exit 1
}
stop() { # stops a process this script started and forgets it
  kill "$1"; wait "$1" 2>/dev/null || true
  local kept=()
  for pid in "${pids[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
  pids=("${kept[@]}")
}

echo "== machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== meshd: access log entries from 100 proxies, 2,000 each, in messages of 40 (1,000 services)"
"$bin/meshd-loadgen" mesh --services 1000 --workloads 1 --config-dir "$work/mesh" --nodes "$work/nodes.json" > /dev/null
start_meshd "$work/mesh" "$work/mesh-data"
"$bin/meshd-loadgen" access-logs --target 127.0.0.1:26012 --nodes "$work/nodes.json" --data-dir "$work/mesh-data" \
  --streams 100 --entries 2000 --batch 40 --pid "$meshd_pid"
stop "$meshd_pid"

echo "== sidecars: wrk -c 8 -d 10s through a client and a server sidecar, Istio's metrics on and off"
mkdir -p "$work/pair"
cat > "$work/pair/bench.yaml" <<'EOF'
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: server, namespace: bench}
spec:
  hosts: [server.bench.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: server}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: bench}
spec: {address: 127.77.0.2, serviceAccount: client, labels: {app: client}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: server, namespace: bench}
spec: {address: 127.77.0.3, serviceAccount: server, labels: {app: server}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: client, namespace: bench}
spec:
  workloadSelector: {labels: {app: client}}
  egress: [{bind: 127.77.1.2, captureMode: NONE, hosts: ["./*"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: server, namespace: bench}
spec:
  workloadSelector: {labels: {app: server}}
  ingress: [{port: {number: 8080, protocol: HTTP, name: http}, defaultEndpoint: "127.77.2.3:8080"}]
  egress: [{bind: 127.77.1.3, captureMode: NONE, hosts: ["./*"]}]
EOF
# The app: an Envoy answering 200 with a short body.
cat > "$work/app.json" <<'EOF'
{"admin": {"address": {"socket_address": {"address": "127.77.3.3", "port_value": 15000}}},
 "static_resources": {"listeners": [{"name": "app", "address": {"socket_address": {"address": "127.77.2.3", "port_value": 8080}},
   "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
     "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
     "stat_prefix": "app", "route_config": {"virtual_hosts": [{"name": "app", "domains": ["*"], "routes": [{"match": {"prefix": "/"},
       "direct_response": {"status": 200, "body": {"inline_string": "server\n"}}}]}]},
     "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}]}}
EOF
"$envoy" -c "$work/app.json" --concurrency 1 --disable-hot-restart --base-id 7701 --log-level error > "$work/app.log" 2>&1 &
app_pid=$!
pids+=("$app_pid")

for mode in on off; do
  rm -rf "$work/pair-data"
  flush=1s
  if [ "$mode" = off ]; then flush=0; fi
  start_meshd "$work/pair" "$work/pair-data" --istio-metrics-flush-interval "$flush"
  sidecars=()
  for workload in client server; do
    "$bin/meshctl" bootstrap --server http://127.0.0.1:26014 --data-dir "$work/pair-data" --workload "bench/$workload" \
      --xds-address 127.0.0.1:26012 > "$work/$workload.json"
    base=7702
    if [ "$workload" = server ]; then base=7703; fi
    "$envoy" -c "$work/$workload.json" --concurrency 1 --disable-hot-restart --base-id "$base" --log-level error > "$work/$workload-$mode.log" 2>&1 &
    sidecars+=("$!")
    pids+=("$!")
  done
  for _ in $(seq 1 100); do
    curl -sf -H "Host: server" http://127.77.1.2:8080/ >/dev/null 2>&1 && break
    sleep 0.2
  done
  wrk -t 1 -c 8 -d 3s -H "Host: server" http://127.77.1.2:8080/ > /dev/null # warm-up
  before_client=$(cpu "${sidecars[0]}"); before_server=$(cpu "${sidecars[1]}"); before_meshd=$(cpu "$meshd_pid")
  requests=$(wrk -t 1 -c 8 -d 10s -H "Host: server" http://127.77.1.2:8080/ | awk '/requests in/ { print $1 }')
  sleep 2 # the last entries' flush
  after_client=$(cpu "${sidecars[0]}"); after_server=$(cpu "${sidecars[1]}"); after_meshd=$(cpu "$meshd_pid")
  awk -v m="$mode" -v n="$requests" -v c="$after_client - $before_client" -v s="$after_server - $before_server" -v d="$after_meshd - $before_meshd" \
    'function diff(e,  p) { split(e, p, " - "); return p[1] - p[2] }
     BEGIN { c = diff(c); s = diff(s); d = diff(d); printf "metrics %s: %d requests in 10 s (%.0f/s); CPU per request: client sidecar %.1f µs, server sidecar %.1f µs, meshd %.1f µs\n", m, n, n / 10, c / n * 1e6, s / n * 1e6, d / n * 1e6 }'
  if [ "$mode" = on ]; then
    curl -s -H "Authorization: Bearer $(cat "$work/pair-data/admin-token")" http://127.0.0.1:26014/metrics \
      | awk '/^istio_requests_total\{/ { n += $NF } END { printf "istio_requests_total after both runs of this mode (warm-up included), both reporters: %d\n", n }'
  fi
  for pid in "${sidecars[@]}"; do stop "$pid"; done
  stop "$meshd_pid"
done
