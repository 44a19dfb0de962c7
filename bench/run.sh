#!/usr/bin/env bash
# OTLP -> batch -> OTLP pass-through benchmark of strata. See bench/README.md.
#
#   ./bench/run.sh [BUILD_DIR]          (default: build; `make bench` runs ./bench/run.sh build)
#
# Builds nothing: it needs BUILD_DIR/strata and BUILD_DIR/bench/{otlp_loadgen,otlp_sink}.
# Scenarios, in this order on one strata process:
#   0 baseline  otlp_loadgen -> otlp_sink directly, flat out: the ceiling of the tools themselves
#   C idle      strata started, no traffic for C_SECONDS: RSS
#   B rate      B_RATE spans/s for B_SECONDS: % of a core, RSS
#   A flat out  as fast as strata takes it for A_SECONDS: spans/s, CPU µs/span, peak RSS, loss
# Exits 1 when any span sent (acknowledged OK to the load generator) did not reach the sink,
# 2 when it cannot run; the performance targets are reported, not enforced.
#
# Knobs (environment): A_SECONDS=10 B_SECONDS=10 B_RATE=10000 C_SECONDS=3 BASELINE_SECONDS=5
#   INFLIGHT=8 SPANS_PER_REQUEST=512 SINK_DECODE=count|full DRAIN_SECONDS=30 KEEP=1 (keep logs)
set -euo pipefail

BUILD=${1:-build}
A_SECONDS=${A_SECONDS:-10}
B_SECONDS=${B_SECONDS:-10}
B_RATE=${B_RATE:-10000}
C_SECONDS=${C_SECONDS:-3}
BASELINE_SECONDS=${BASELINE_SECONDS:-5}
INFLIGHT=${INFLIGHT:-8}
SPANS_PER_REQUEST=${SPANS_PER_REQUEST:-512}
# count: the sink walks the wire format (~0.2 µs/span) instead of unpacking it (~1.8 µs/span),
# so that it does not compete with strata for the machine's cores. full: protobuf-c unpack.
SINK_DECODE=${SINK_DECODE:-count}
DRAIN_SECONDS=${DRAIN_SECONDS:-30}
KEEP=${KEEP:-0}

STRATA=$BUILD/strata
LOADGEN=$BUILD/bench/otlp_loadgen
SINK=$BUILD/bench/otlp_sink
for b in "$LOADGEN" "$SINK"; do
        [[ -x $b ]] || { echo "run.sh: $b is missing: build first (make build)" >&2; exit 2; }
done
HAVE_STRATA=1
[[ -x $STRATA ]] || { echo "run.sh: $STRATA is missing: only the baseline will run" >&2; HAVE_STRATA=0; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")
CLK_TCK=$(getconf CLK_TCK)
PIDS=()

cleanup() {
        local rc=$?
        # strata first (PIDS is in start order: reversed), so that it drains into the sink.
        for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
                local p=${PIDS[i]} n=0
                kill -TERM "$p" 2>/dev/null || continue
                while kill -0 "$p" 2>/dev/null && (( n++ < 100 )); do sleep 0.1; done
                kill -KILL "$p" 2>/dev/null || true
                wait "$p" 2>/dev/null || true
        done
        if [[ $KEEP == 1 || $rc -ne 0 ]]; then echo "run.sh: logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf '[bench] %s\n' "$*" >&2; }

# --- helpers --------------------------------------------------------------------------------

# Sets FREE_PORT to a TCP port nobody on this host listens on or talks from (checked in
# /proc/net/tcp{,6}) and that this script has not handed out yet.
USED_PORTS=" "
free_port() {
        local p hex
        for _ in $(seq 200); do
                p=$(( 20000 + RANDOM % 40000 ))
                hex=$(printf ':%04X ' "$p")
                if ! grep -qi -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null && [[ $USED_PORTS != *" $p "* ]]; then
                        USED_PORTS+="$p "
                        FREE_PORT=$p
                        return 0
                fi
        done
        echo "run.sh: no free port found" >&2
        exit 2
}

# Waits until something listens on 127.0.0.1:$1 (LISTEN is state 0A), or $2 seconds pass.
wait_listen() {
        local hex deadline=$(( SECONDS + $2 ))
        # gRPC listens on a dual-stack socket: 127.0.0.1 shows up in tcp6 as ::ffff:127.0.0.1.
        hex=$(printf ':%04X [0-9A-F]+:0000 0A' "$1")
        while (( SECONDS < deadline )); do
                grep -qiE -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null && return 0
                sleep 0.05
        done
        return 1
}

# utime+stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the command
# name in field 2 may hold spaces, so count from after its closing parenthesis).
cpu_ticks() {
        local s
        s=$(<"/proc/$1/stat")
        s=${s##*) }
        set -- $s
        echo $(( ${12} + ${13} ))
}

# VmRSS / VmHWM in KiB.
vm_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# Resets VmHWM to the current RSS (Linux >= 4.0), so that each scenario has its own peak.
reset_peak() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || log "cannot reset the peak RSS of $1 (clear_refs), peaks are cumulative"; }

sink_spans() { sed -n 's/.*spans=\([0-9]*\).*/\1/p' "$1" 2>/dev/null | head -1; }
kv() { sed -n "s/.*[[:space:]]$2=\([^[:space:]]*\).*/\1/p" <<<" $1"; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# "15.1 (anon 2.1)": shared-library pages are most of an idle process's RSS.
mib() { printf '%s (anon %s)' "$(calc '%.1f' "$1 / 1024")" "$(calc '%.1f' "${2:-0} / 1024")"; }

# Waits until the sink has counted $2 spans (file $1) or DRAIN_SECONDS pass. Sets DRAINED to
# the count and DRAIN_END to when it last changed.
wait_drained() {
        local file=$1 want=$2 got last=-1 deadline=$(( SECONDS + DRAIN_SECONDS ))
        DRAIN_END=$(now)
        while :; do
                got=$(sink_spans "$file"); got=${got:-0}
                if [[ $got != "$last" ]]; then DRAIN_END=$(now); last=$got; fi
                (( got >= want )) && break
                (( SECONDS >= deadline )) && break
                sleep 0.05
        done
        DRAINED=$got
}

start_sink() { # port count-file log
        "$SINK" --listen "127.0.0.1:$1" --count-file "$2" --decode "$SINK_DECODE" 2>"$3" &
        SINK_PID=$!
        PIDS+=("$SINK_PID")
        wait_listen "$1" 10 || { echo "run.sh: the sink did not start, see $3:" >&2; cat "$3" >&2; exit 2; }
}

# Runs the load generator; sets LG_LINE (its result line) and LG_CPU_S (its user+sys seconds).
run_loadgen() { # target log args...
        local target=$1 lglog=$2; shift 2
        local out limit
        limit=$(calc '%.0f' "${DURATION_FOR_TIMEOUT:-10} + $DRAIN_SECONDS + 30")
        out=$( { timeout --kill-after=5 "$limit" \
                 "$LOADGEN" --target "$target" --inflight "$INFLIGHT" --spans-per-request "$SPANS_PER_REQUEST" "$@" \
                 2>"$lglog" || echo "loadgen-exit=$?"; times; } )
        LG_LINE=$(grep '^loadgen ' <<<"$out" || true)
        # `times`: the second line is the children's user and system time, "0m1.234s 0m0.567s".
        LG_CPU_S=$(tail -1 <<<"$out" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } print n }')
        if [[ -z $LG_LINE ]]; then
                echo "run.sh: the load generator failed, see $lglog:" >&2
                cat "$lglog" >&2
                grep 'loadgen-exit' <<<"$out" >&2 || true
                exit 2
        fi
}

ROWS=()
row() { ROWS+=("$*"); }
LOSS_TOTAL=0

# --- baseline: the tools alone ---------------------------------------------------------------

log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r)"
free_port; P_BASE=$FREE_PORT
start_sink "$P_BASE" "$WORK/base.count" "$WORK/base-sink.log"
BASE_SINK_PID=$SINK_PID
log "baseline: otlp_loadgen -> otlp_sink (decode=$SINK_DECODE) flat out for ${BASELINE_SECONDS}s"
s0=$(cpu_ticks "$BASE_SINK_PID")
DURATION_FOR_TIMEOUT=$BASELINE_SECONDS run_loadgen "127.0.0.1:$P_BASE" "$WORK/base-loadgen.log" --duration "$BASELINE_SECONDS"
sent=$(kv "$LG_LINE" sent_spans)
wait_drained "$WORK/base.count" "$sent"; got=$DRAINED
s1=$(cpu_ticks "$BASE_SINK_PID")
kill -TERM "$BASE_SINK_PID"; wait "$BASE_SINK_PID" 2>/dev/null || true
lg_secs=$(kv "$LG_LINE" seconds)
BASE_RATE=$(calc '%.0f' "$got / $lg_secs")
BASE_LG_US=$(calc '%.3f' "$LG_CPU_S * 1e6 / $sent")
BASE_SINK_US=$(calc '%.3f' "($s1 - $s0) / $CLK_TCK * 1e6 / $got")
BASE_LOSS=$(( sent - got ))
log "baseline: $LG_LINE"
log "baseline: sink got $got spans; loadgen ${BASE_LG_US} µs/span ($(calc '%.0f' "1 / $BASE_LG_US * 1e6") spans/s per core), sink ${BASE_SINK_US} µs/span ($(calc '%.0f' "1 / $BASE_SINK_US * 1e6") spans/s per core)"
(( BASE_LOSS != 0 )) && { log "baseline: LOSS $BASE_LOSS spans between loadgen and sink"; LOSS_TOTAL=$(( LOSS_TOTAL + (BASE_LOSS < 0 ? -BASE_LOSS : BASE_LOSS) )); }

print_table() {
        local rss_note=$1
        echo
        if (( ${#ROWS[@]} > 0 )); then
                echo "| scenario | spans/s | strata CPU | CPU µs/span | spans/s per core | RSS MiB | peak RSS MiB | loss |"
                echo "|---|---:|---:|---:|---:|---:|---:|---:|"
                for r in "${ROWS[@]}"; do echo "$r"; done
                echo
        fi
        echo "Tools alone (loadgen → sink, no strata): $BASE_RATE spans/s; loadgen $BASE_LG_US µs/span" \
             "($(calc '%.0f' "1 / $BASE_LG_US * 1e6") spans/s per core), sink ($SINK_DECODE) $BASE_SINK_US µs/span" \
             "($(calc '%.0f' "1 / $BASE_SINK_US * 1e6") spans/s per core), loss $BASE_LOSS."
        echo "$rss_note"
        echo
        echo "Command: \`./bench/run.sh $BUILD\` (A_SECONDS=$A_SECONDS B_RATE=$B_RATE B_SECONDS=$B_SECONDS C_SECONDS=$C_SECONDS" \
             "INFLIGHT=$INFLIGHT SPANS_PER_REQUEST=$SPANS_PER_REQUEST SINK_DECODE=$SINK_DECODE);" \
             "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(date -u +%Y-%m-%d)."
}

if (( HAVE_STRATA == 0 )); then
        print_table "strata was not built: no agent scenario ran."
        exit $(( LOSS_TOTAL != 0 ))
fi

# --- strata ----------------------------------------------------------------------------------

free_port; P_SINK=$FREE_PORT; free_port; P_RECV=$FREE_PORT; free_port; P_METRICS=$FREE_PORT
start_sink "$P_SINK" "$WORK/sink.count" "$WORK/sink.log"
cat >"$WORK/strata.yaml" <<EOF
# Generated by bench/run.sh: OTLP/gRPC in -> batch -> OTLP/gRPC out to otlp_sink.
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$P_RECV
processors:
  batch:
    send_batch_size: 8192
    timeout: 200ms
exporters:
  otlp:
    endpoint: 127.0.0.1:$P_SINK
    tls:
      insecure: true
    compression: none
    sending_queue:
      num_consumers: 2
      queue_size: 100
    retry_on_failure:
      initial_interval: 50ms
      max_interval: 500ms
      max_elapsed_time: 60s
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp]
  telemetry:
    metrics:
      address: 127.0.0.1:$P_METRICS
    logs:
      level: warn
EOF
"$STRATA" run --config "$WORK/strata.yaml" >"$WORK/strata.log" 2>&1 &
STRATA_PID=$!
PIDS+=("$STRATA_PID")
if ! wait_listen "$P_RECV" 15; then
        echo "run.sh: strata did not start listening on 127.0.0.1:$P_RECV; its log:" >&2
        cat "$WORK/strata.log" >&2
        print_table "strata did not start: no agent scenario ran."
        exit 2
fi
strata_alive() {
        kill -0 "$STRATA_PID" 2>/dev/null && return 0
        echo "run.sh: strata exited during the benchmark; its log:" >&2
        tail -50 "$WORK/strata.log" >&2
        exit 2
}

# --- C: idle ---------------------------------------------------------------------------------
log "C: strata idle for ${C_SECONDS}s"
reset_peak "$STRATA_PID"
c0=$(cpu_ticks "$STRATA_PID"); t0=$(now)
sleep "$C_SECONDS"
strata_alive
c1=$(cpu_ticks "$STRATA_PID"); t1=$(now)
C_RSS=$(vm_kib "$STRATA_PID" VmRSS); C_HWM=$(vm_kib "$STRATA_PID" VmHWM); C_ANON=$(vm_kib "$STRATA_PID" RssAnon)
C_CORE=$(calc '%.2f' "($c1 - $c0) / $CLK_TCK / ($t1 - $t0) * 100")
row "| C idle, ${C_SECONDS} s | 0 | ${C_CORE}% of a core | – | – | $(mib "$C_RSS" "$C_ANON") | $(calc '%.1f' "$C_HWM / 1024") | – |"

# Scenario runner: sets S_* for the row.
scenario() { # name seconds loadgen-args...
        local name=$1 secs=$2; shift 2
        local before c0 c1 t0 sent got
        strata_alive
        before=$(sink_spans "$WORK/sink.count"); before=${before:-0}
        reset_peak "$STRATA_PID"
        c0=$(cpu_ticks "$STRATA_PID"); t0=$(now)
        DURATION_FOR_TIMEOUT=$secs run_loadgen "127.0.0.1:$P_RECV" "$WORK/loadgen-$name.log" --duration "$secs" "$@"
        strata_alive
        sent=$(kv "$LG_LINE" sent_spans)
        wait_drained "$WORK/sink.count" $(( before + sent ))
        got=$(( DRAINED - before ))
        S_T=$(calc '%.3f' "$DRAIN_END - $t0")
        strata_alive
        c1=$(cpu_ticks "$STRATA_PID")
        S_RSS=$(vm_kib "$STRATA_PID" VmRSS); S_HWM=$(vm_kib "$STRATA_PID" VmHWM); S_ANON=$(vm_kib "$STRATA_PID" RssAnon)
        S_SENT=$sent; S_GOT=$got; S_LOSS=$(( sent - got ))
        S_CPU=$(calc '%.3f' "($c1 - $c0) / $CLK_TCK")
        S_RATE=$(calc '%.0f' "$got / $S_T")
        S_US=$( (( got > 0 )) && calc '%.2f' "$S_CPU * 1e6 / $got" || echo "–")
        S_PERCORE=$( (( got > 0 )) && awk -v c="$S_CPU" -v g="$got" 'BEGIN { if (c > 0) printf "%.0f", g / c; else print "–" }' || echo "–")
        S_CORES=$(calc '%.3f' "$S_CPU / $S_T")
        log "$name: $LG_LINE"
        log "$name: sink got $got of $sent spans in ${S_T}s; strata used ${S_CPU}s CPU; retries $(kv "$LG_LINE" retries)"
        if (( S_LOSS != 0 )); then
                log "$name: LOSS: $S_LOSS spans acknowledged to the load generator never reached the sink"
                LOSS_TOTAL=$(( LOSS_TOTAL + (S_LOSS < 0 ? -S_LOSS : S_LOSS) ))
        fi
}

# --- B: a steady 10k spans/s -----------------------------------------------------------------
log "B: $B_RATE spans/s for ${B_SECONDS}s"
scenario B "$B_SECONDS" --rate "$B_RATE"
B_PCT=$(calc '%.2f' "$S_CORES * 100")
row "| B ${B_RATE} spans/s, ${B_SECONDS} s | $S_RATE | ${B_PCT}% of a core | $S_US | $S_PERCORE | $(mib "$S_RSS" "$S_ANON") | $(calc '%.1f' "$S_HWM / 1024") | $S_LOSS |"
B_RSS=$S_RSS; B_HWM=$S_HWM

# --- A: flat out -----------------------------------------------------------------------------
log "A: flat out for ${A_SECONDS}s"
scenario A "$A_SECONDS"
row "| A flat out, ${A_SECONDS} s | $S_RATE | $S_CORES cores | $S_US | $S_PERCORE | $(mib "$S_RSS" "$S_ANON") | $(calc '%.1f' "$S_HWM / 1024") | $S_LOSS |"
A_PERCORE=$S_PERCORE

# strata's own counters, for whoever reads the logs.
curl -fsS --max-time 2 "http://127.0.0.1:$P_METRICS/metrics" >"$WORK/strata-metrics.txt" 2>/dev/null || true

ok() { [[ $1 == 1 ]] && echo met || echo "NOT met"; }
t_a=$(awk -v x="$A_PERCORE" 'BEGIN { print (x + 0 >= 1000000) }')
t_b_cpu=$(awk -v x="$B_PCT" 'BEGIN { print (x + 0 <= 1) }')
t_b_rss=$(awk -v x="$B_HWM" 'BEGIN { print (x + 0 <= 10240) }')
print_table "Targets: ≥ 1M spans/s per core flat out: $(ok "$t_a"); at ${B_RATE} spans/s ≤ 1% of a core: $(ok "$t_b_cpu"), ≤ 10 MiB RSS (peak $(calc '%.1f' "$B_HWM / 1024") MiB): $(ok "$t_b_rss"). RSS is VmRSS at the end of the scenario (anon: RssAnon, the part that is not shared-library pages), peak is VmHWM during it."
if [[ -s $WORK/strata-metrics.txt ]]; then
        bad=$(grep -E '^[a-z_]*(refused|dropped|failed)[a-z_]*(\{| )' "$WORK/strata-metrics.txt" | awk '$NF != 0' || true)
        [[ -n $bad ]] && { echo; echo "strata counters that are not zero:"; echo '```'; echo "$bad"; echo '```'; }
fi

if (( LOSS_TOTAL != 0 )); then
        echo
        echo "LOSS: $LOSS_TOTAL spans did not arrive (see above)."
        exit 1
fi
exit 0
