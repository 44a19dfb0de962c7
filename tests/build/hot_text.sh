#!/usr/bin/env bash
# cmake/hot_text.ld puts strata's executed code together in .text.strata_hot. Its patterns match
# by archive member and section name, and a pattern that matches nothing is silently skipped: a
# gRPC package that renamed its objects would leave the section nearly empty, and strata's RSS
# 1.5 MiB higher, with every other test passing. Checks that each section (.text.strata_hot and
# .text.strata_init) holds most of what the script lists (the sizes are in its header).
set -euo pipefail
bin=$1 script=$2
status=0
for sec in strata_hot strata_init; do
        want_kib=$(sed -n "s/.* \.text\.$sec: [0-9]* input sections, \([0-9]*\) KiB.*/\1/p" "$script")
        got=$(readelf -SW "$bin" | awk -v s=".text.$sec" '$2 == s { print $6 }')
        if [[ -z $want_kib || -z $got ]]; then
                echo "hot_text: no .text.$sec in $bin, or no size for it in $script" >&2
                exit 1
        fi
        got_kib=$(( 16#$got / 1024 ))
        echo "hot_text: .text.$sec is $got_kib KiB, the script lists $want_kib KiB"
        if (( got_kib * 10 < want_kib * 9 )); then
                echo "hot_text: less than 90% of the code listed for .text.$sec was found: regenerate cmake/hot_text.ld (scripts/profile-hot-text.sh)" >&2
                status=1
        elif (( got_kib * 10 > want_kib * 11 + 640 )); then
                echo "hot_text: .text.$sec holds more than the script lists: a pattern matches more than one section" >&2
                status=1
        fi
done
# agent/init_text.c unmaps [__strata_init_text_start, __strata_init_text_end) after start-up.
start=$(nm "$bin" | awk '$3 == "__strata_init_text_start" { print $1 }')
end=$(nm "$bin" | awk '$3 == "__strata_init_text_end" { print $1 }')
if [[ -z $start || -z $end ]] || (( 16#$end <= 16#$start || 16#$start % 65536 || 16#$end % 65536 )); then
        echo "hot_text: the start-up code's bounds are missing or not 64 KiB-aligned: '$start' '$end'" >&2
        status=1
else
        echo "hot_text: start-up code at $start-$end"
fi

# And strata does unmap it once it has settled (agent/main.c: after 1 s).
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/strata.yaml" <<YAML
receivers: { otlp: { protocols: { grpc: { endpoint: "unix://$dir/otlp.sock" } } } }
exporters: { debug: {} }
service:
  pipelines: { traces: { receivers: [otlp], exporters: [debug] } }
  telemetry: { metrics: { address: "" }, logs: { level: debug } }
YAML
timeout -s INT 3 "$bin" run --config "$dir/strata.yaml" >"$dir/log" 2>&1 || true
if grep -q 'unmapped [1-9][0-9]* KiB of start-up code' "$dir/log"; then
        echo "hot_text: $(grep -o 'unmapped [0-9]* KiB of start-up code' "$dir/log")"
else
        echo "hot_text: strata did not say it unmapped its start-up code; its log:" >&2
        tail -20 "$dir/log" >&2
        status=1
fi
exit $status
