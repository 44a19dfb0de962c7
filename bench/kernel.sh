#!/usr/bin/env bash
# The ebpf receiver's benchmark: syscall storms with and without strata. See bench/README.md.
#
#   sudo ./bench/kernel.sh [BUILD_DIR]        (default: build; `make bench-kernel`)
#
# For each storm (exec, connect, open of files the receiver reports, open of files it filters
# out) it runs the workload alone, then with strata running the ebpf receiver (all events) →
# batch → debug (counts only), then alone again, for STORM_SECONDS each, and reports in one
# table:
#   ops/s alone (before and after) and with strata, and the slowdown against the mean of the
#   two baselines (same run);
#   events strata handled per second, strata's user CPU per event (µs) and user+sys;
#   in-kernel cost per BPF program run (ns), from kernel.bpf_stats_enabled, in a second run
#   of STATS_SECONDS with strata (the statistics slow every run down);
#   events lost.
# Then the loss test: package-file opens paced at RATE_EVENTS events/s (default 100000) for
# RATE_SECONDS: events lost must be 0. Then bench/bpf_floor: what any program costs here.
# Knobs (environment): STORM_SECONDS=5 STATS_SECONDS=3 RATE_EVENTS=100000 RATE_SECONDS=3;
#   EVENTS="process, code": the receiver's `events` (default: all kinds); ONLY=exec (or
#   connect, open): only the storms of that mode, and no loss test (also skipped when EVENTS
#   leaves out `code`: its opens are code events).
# Needs root (BPF). Exits 2 when it cannot run; targets are reported, not enforced.
set -euo pipefail

BUILD=${1:-build}
STORM_SECONDS=${STORM_SECONDS:-5}
RATE_EVENTS=${RATE_EVENTS:-100000}
RATE_SECONDS=${RATE_SECONDS:-3}
STATS_SECONDS=${STATS_SECONDS:-3}
EVENTS=${EVENTS:-}
ONLY=${ONLY:-}
STRATA=$BUILD/strata
KSTORM=$BUILD/bench/kstorm
FLOOR=$BUILD/bench/bpf_floor
[[ $(id -u) == 0 ]] || { echo "kernel.sh: needs root to load BPF programs" >&2; exit 2; }
for b in "$STRATA" "$KSTORM"; do [[ -x $b ]] || { echo "kernel.sh: $b is missing: make build" >&2; exit 2; }; done
command -v bpftool >/dev/null || { echo "kernel.sh: bpftool is missing" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-kbench.XXXXXX")
CLK_TCK=$(getconf CLK_TCK)
STRATA_PID=
STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
        local rc=$?
        [[ -n $STRATA_PID ]] && kill -TERM "$STRATA_PID" 2>/dev/null && wait "$STRATA_PID" 2>/dev/null
        sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS" || true
        if [[ $rc -ne 0 ]]; then echo "kernel.sh: logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
        exit $rc
}
trap cleanup EXIT
log() { printf '[kbench] %s\n' "$*" >&2; }

# below the ephemeral range: a connect storm leaves thousands of TIME_WAIT ports there
PORT=$(( 20000 + RANDOM % 12000 ))
cat > "$WORK/strata.yaml" <<YAML
receivers:
  ebpf: { ring_buffer_size: 16MiB${EVENTS:+, events: [$EVENTS]} }
processors:
  batch: {}
exporters:
  debug: { verbosity: basic }
service:
  pipelines:
    logs: { receivers: [ebpf], processors: [batch], exporters: [debug] }
  telemetry: { metrics: { address: "127.0.0.1:$PORT" }, logs: { level: warn } }
YAML

metric() { # metric NAME: the value of strata_receiver_NAME{receiver="ebpf"}
        curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v m="strata_receiver_$1{" 'index($0, m) == 1 { print $2 }'
}
cpu_ticks() { # user ticks of strata, and its CPU time in ns over all threads (schedstat: exact)
        local user ns
        user=$(awk '{ print $14 }' "/proc/$STRATA_PID/stat")
        ns=$(cat /proc/"$STRATA_PID"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }')
        echo "$user $ns"
}
# run_time_ns and run_cnt of each of strata's programs, as JSON {name: [ns, runs]}: every
# program bpf/*.bpf.c defines (the kernel keeps the first 15 bytes of a name)
BPF_SRC=$(cd "$(dirname "$0")/../bpf" && pwd)
prog_stats() {
        bpftool -j prog show | BPF_SRC="$BPF_SRC" python3 -c '
import glob, json, os, re, sys
ours = set()
for f in glob.glob(os.path.join(os.environ["BPF_SRC"], "*.bpf.c")):
    for m in re.finditer(r"SEC\(\"[^\"]+\"\)\s*int\s+(?:BPF_PROG\()?(\w+)", open(f).read()):
        ours.add(m.group(1)[:15])
out = {}
for p in json.load(sys.stdin):
    if p.get("name") in ours:
        t = out.setdefault(p["name"], [0, 0])
        t[0] += p.get("run_time_ns", 0); t[1] += p.get("run_cnt", 0)
print(json.dumps(out))'
}
# "T N PER": the sum over programs of the run time and count between two prog_stats, and the
# busiest programs' ns/run (PER: "fork_btf=412,exit_btf=598")
stats_diff() {
        python3 -c '
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
d = {k: (v[0] - a.get(k, [0, 0])[0], v[1] - a.get(k, [0, 0])[1]) for k, v in b.items()}
busy = sorted((k for k in d if d[k][1] > 0), key=lambda k: -d[k][1])[:5]
per = ",".join(f"{k}={d[k][0] / d[k][1]:.0f}" for k in busy) or "-"
print(sum(v[0] for v in d.values()), sum(v[1] for v in d.values()), per)' "$1" "$2"
}
storm() { # storm ARGS...: prints ops/s
        "$KSTORM" "$@" | sed -n 's/.* rate=\([0-9]*\).*/\1/p'
}

STORMS=("exec" "connect" "open --files 20000 --match" "open --files 1000")
NAMES=("exec storm (fork+exec+exit)" "connect storm (loopback connect+accept+close)" "open storm, package files (*.so, 20k distinct)" "open storm, other files (filtered in kernel)")
if [[ -n $ONLY ]]; then
        for i in "${!STORMS[@]}"; do
                [[ ${STORMS[i]%% *} == "$ONLY" ]] || unset "STORMS[i]" "NAMES[i]"
        done
        (( ${#STORMS[@]} )) || { echo "kernel.sh: ONLY=$ONLY: no such storm (exec, connect, open)" >&2; exit 2; }
fi
[[ -n $EVENTS ]] && log "events: [$EVENTS]"

log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
declare -a ALONE
for i in "${!STORMS[@]}"; do
        # shellcheck disable=SC2086
        ALONE[i]=$(storm ${STORMS[i]} --duration "$STORM_SECONDS")
        log "alone: ${NAMES[i]}: ${ALONE[i]} ops/s"
done

"$STRATA" run --config "$WORK/strata.yaml" > "$WORK/strata.out" 2> "$WORK/strata.err" &
STRATA_PID=$!
for _ in $(seq 100); do [[ $(metric ebpf_up 2>/dev/null) == 1 ]] && break; sleep 0.1; done
[[ $(metric ebpf_up) == 1 ]] || { log "strata's ebpf receiver did not come up:"; cat "$WORK/strata.err" >&2; exit 2; }

# Each storm twice with strata: first with the kernel's run-time statistics off, for the
# slowdown and strata's CPU (the statistics add two clock reads to every program run, a few
# percent of an open storm), then for STATS_SECONDS with them on, for the ns per run.
declare -a ROWS
for i in "${!STORMS[@]}"; do
        sysctl -qw kernel.bpf_stats_enabled=0
        read -r u0 s0 < <(cpu_ticks); e0=$(metric ebpf_events_total); l0=$(metric ebpf_lost_events_total)
        # shellcheck disable=SC2086
        with=$(storm ${STORMS[i]} --duration "$STORM_SECONDS")
        sleep 0.5 # the last flush
        read -r u1 s1 < <(cpu_ticks); e1=$(metric ebpf_events_total); l1=$(metric ebpf_lost_events_total)
        sysctl -qw kernel.bpf_stats_enabled=1
        p0=$(prog_stats)
        # shellcheck disable=SC2086
        storm ${STORMS[i]} --duration "$STATS_SECONDS" > /dev/null
        read -r tns runs per < <(stats_diff "$p0" "$(prog_stats)")
        sleep 0.5
        l2=$(metric ebpf_lost_events_total) # losses in both runs count
        ROWS[i]="$with $((e1 - e0)) $((u1 - u0)) $((s1 - s0)) $tns $runs $((l2 - l0)) $per"
done
sysctl -qw kernel.bpf_stats_enabled=0

# Losses at a set rate: every open of a distinct *.so is one event.
if [[ -z $ONLY && ( -z $EVENTS || $EVENTS == *code* ) ]]; then
        l0=$(metric ebpf_lost_events_total); e0=$(metric ebpf_events_total)
        files=$((RATE_EVENTS * RATE_SECONDS))
        "$KSTORM" open --match --files "$files" --rate "$RATE_EVENTS" --duration "$RATE_SECONDS" > "$WORK/rate.out"
        sleep 0.5
        l1=$(metric ebpf_lost_events_total); e1=$(metric ebpf_events_total)
fi
kill -TERM "$STRATA_PID"; wait "$STRATA_PID" || true; STRATA_PID=

# The baseline again, after: this VM's speed drifts by several percent over a minute, so the
# slowdown is taken against the mean of the runs before and after.
echo
echo "| storm | ops/s alone (before, after) | ops/s with strata | slowdown | events/s | strata user µs/event (± one 10 ms tick) | strata user+sys µs/event | BPF ns/run | busiest programs, ns/run | lost |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
for i in "${!STORMS[@]}"; do
        # shellcheck disable=SC2086
        after=$(storm ${STORMS[i]} --duration "$STORM_SECONDS")
        read -r with ev ut st tns runs lost per <<< "${ROWS[i]}"
        python3 - "${NAMES[i]}" "${ALONE[i]}" "$after" "$with" "$ev" "$ut" "$st" "$tns" "$runs" "$lost" "$STORM_SECONDS" "$CLK_TCK" "$per" <<'PY'
import sys
name, before, after, with_, ev, ut, st, tns, runs, lost, secs, hz, per = sys.argv[1:]
per = per.replace("=", " ").replace(",", ", ")
before, after, with_, ev, ut, st, tns, runs, lost, secs, hz = float(before), float(after), float(with_), int(ev), int(ut), int(st), int(tns), int(runs), int(lost), float(secs), int(hz)
alone = (before + after) / 2
slow = (1 - with_ / alone) * 100 if alone else 0
# user: clock ticks (10 ms); user+sys: schedstat ns of every thread
user_us = ut / hz * 1e6 / ev if ev else float("nan")
tick_us = 1 / hz * 1e6 / ev if ev else float("nan") # one tick more or less
all_us = st / 1e3 / ev if ev else float("nan")
print(f"| {name} | {before:,.0f}, {after:,.0f} | {with_:,.0f} | {slow:.1f}% | {ev / secs:,.0f} | {user_us:.2f} ±{tick_us:.2f} | {all_us:.2f} | {tns / runs if runs else float('nan'):.0f} | {per} | {lost} |")
PY
done
if [[ -z $ONLY && ( -z $EVENTS || $EVENTS == *code* ) ]]; then
        echo
        echo "At $RATE_EVENTS events/s for ${RATE_SECONDS}s ($(sed -n 's/.* rate=\([0-9]*\).*/\1/p' "$WORK/rate.out") opens/s achieved): $((e1 - e0)) events read, $((l1 - l0)) lost."
fi
# What any program costs here before its own work, measured now: the per-program figures
# above are read against it (VMs differ several-fold in clock reads and cache misses).
if [[ -x $FLOOR ]] && "$FLOOR" > "$WORK/floor.out" 2> "$WORK/floor.err"; then
        f=$(tail -1 "$WORK/floor.out")
        fv() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<< "$f"; }
        echo
        echo "This machine's floor per program run (\`bench/bpf_floor\`, same run): an empty program $(fv empty_ns) ns;" \
             "with a clock read $(fv clock_ns) ns; with a ring-buffer output $(fv output_ns) ns; with both $(fv clock_output_ns) ns" \
             "(the least a timestamped record costs). An empty program on sys_exit_openat slows open+close by" \
             "$(sed -n 's/.* openat_slowdown_pct=\([0-9.-]*\).*/\1/p' <<< "$f")% (the syscall tracepoints' own toll);" \
             "empty programs on the code hooks' three syscall tracepoints slow fork+exec of /bin/true by" \
             "$(x=$(sed -n 's/.* exec_slowdown_pct=\([0-9.-]*\).*/\1/p' <<< "$f"); if [[ -n $x ]]; then echo "$x%"; else echo "(not measured)"; fi)."
else
        log "bench/bpf_floor did not run: $(cat "$WORK/floor.err" 2>/dev/null)"
fi
echo
echo "Targets: user CPU ≤ 1 µs/event; BPF ≤ 150 ns/run; 0 lost at 100k events/s; slowdown ≤ 2%."
echo "Command: \`${EVENTS:+EVENTS=\"$EVENTS\" }${ONLY:+ONLY=$ONLY }./bench/kernel.sh $BUILD\` (STORM_SECONDS=$STORM_SECONDS STATS_SECONDS=$STATS_SECONDS RATE_EVENTS=$RATE_EVENTS RATE_SECONDS=$RATE_SECONDS); $(nproc) CPUs, $(date -u +%F)."
