#!/bin/bash
# Regenerates cmake/hot_text.ld: runs strata under callgrind with the benchmark's pipeline
# (OTLP/gRPC in -> batch -> OTLP/gRPC out, OTLP/HTTP listening, self-telemetry scraped) at
# 2 000 spans/s, and lists the input sections of every function that ran while it worked,
# hottest first, then those of the functions that ran only while it started (before it was sent
# any data).
# Run it after a gRPC or compiler upgrade, or when strata's hot path changes; then rebuild and
# compare ./bench/run.sh. Needs valgrind and python3, and a build (first argument, default build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
for t in valgrind python3 nm; do command -v $t >/dev/null || { echo "profile-hot-text: $t is missing" >&2; exit 2; }; done
[[ -x $BUILD/strata && -x $BUILD/bench/otlp_loadgen && -x $BUILD/bench/otlp_sink ]] ||
	{ echo "profile-hot-text: build $BUILD first (make build)" >&2; exit 2; }
W=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; [[ -n ${KEEP:-} ]] || rm -rf "$W"' EXIT

# The link map of the same link, for which function lies in which input section.
link=$(cat "$BUILD/CMakeFiles/strata.dir/link.txt")
(cd "$BUILD" && eval "${link/ -o strata / -o $W/strata -Wl,-Map=$W/strata.map }")

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
P_SINK=$(port); P_GRPC=$(port); P_HTTP=$(port); P_TEL=$(port)
cat >"$W/strata.yaml" <<YAML
receivers:
  otlp: { protocols: { grpc: { endpoint: 127.0.0.1:$P_GRPC }, http: { endpoint: 127.0.0.1:$P_HTTP } } }
processors: { batch: { send_batch_size: 8192, timeout: 200ms } }
exporters:
  otlp: { endpoint: 127.0.0.1:$P_SINK, tls: { insecure: true }, compression: none, sending_queue: { num_consumers: 2, queue_size: 100 } }
service:
  pipelines: { traces: { receivers: [otlp], processors: [batch], exporters: [otlp] } }
  telemetry: { metrics: { address: 127.0.0.1:$P_TEL }, logs: { level: warn } }
YAML
"$BUILD/bench/otlp_sink" --listen "127.0.0.1:$P_SINK" --decode count 2>/dev/null & PIDS+=($!)
valgrind --tool=callgrind --demangle=no --compress-strings=no --callgrind-out-file="$W/callgrind.out.%p" \
	"$BUILD/strata" run --config "$W/strata.yaml" >"$W/strata.log" 2>&1 & STRATA=$!; PIDS+=($STRATA)
for _ in $(seq 300); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1', $P_GRPC), 1)" 2>/dev/null && break
	sleep 0.1
done
sleep 4 # strata unmaps its start-up code 1 s after start (SETTLE_S, agent/main.c); under valgrind, wait longer
callgrind_control --dump=start-up $STRATA >/dev/null # what ran so far: start-up
# One request, and its export: what runs once, when data first flows (gRPC builds a call's
# filter stack on the first call, for one), belongs with the hot code, which stays mapped.
"$BUILD/bench/otlp_loadgen" --target "127.0.0.1:$P_GRPC" --rate 2000 --duration 0.2 >/dev/null
sleep 3
"$BUILD/bench/otlp_loadgen" --target "127.0.0.1:$P_GRPC" --rate 2000 --duration 10 | tail -1
python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$P_TEL/metrics').read()"
callgrind_control --dump=running $STRATA >/dev/null # what runs while working
kill -TERM $STRATA; wait $STRATA || true          # the rest (shutdown) is left out
python3 scripts/hot_text.py "$W/callgrind.out.$STRATA.1" "$W/callgrind.out.$STRATA.2" "$W/strata.map" "$W/strata" cmake/hot_text.ld
