#!/bin/sh
# Runs every fuzz target of a STRATA_FUZZ build for SECONDS each, on a scratch copy of its seed
# corpus (tests/fuzz/corpus/<target>, left untouched). Fails on any crash, leak or mismatch;
# the reproducer is kept and its path printed. Prints one line per target. tests/fuzz/<target>.dict,
# when there is one, is given to libFuzzer as a dictionary.
#   tests/fuzz/run.sh BUILD_DIR [SECONDS]      (default 20)
set -u
build=${1:?usage: $0 BUILD_DIR [SECONDS]}
secs=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-fuzz.XXXXXX")
trap 'rm -rf "$work/corpus"' EXIT

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

status=0
found=0
for bin in "$build"/tests/fuzz/fuzz_*; do
        [ -x "$bin" ] || continue
        found=1
        t=$(basename "$bin")
        mkdir -p "$work/corpus/$t" "$work/crashes/$t"
        [ -d "$here/corpus/$t" ] && cp "$here/corpus/$t"/* "$work/corpus/$t"/ 2>/dev/null
        dict=
        [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
        log="$work/$t.log"
        "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 $dict \
                -artifact_prefix="$work/crashes/$t/" "$work/corpus/$t" >"$log" 2>&1
        rc=$?
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        if [ $rc -eq 0 ]; then
                printf '%-16s ok    %9s runs  %7s exec/s  %s  %ss\n' "$t" "${runs:-?}" "${rate:-?}" "$cov" "$secs"
        else
                status=1
                printf '%-16s FAIL  (exit %s) log: %s\n' "$t" "$rc" "$log"
                ls "$work/crashes/$t" | sed "s|^|    reproducer: $work/crashes/$t/|"
                grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_)' "$log" | head -5 | sed 's/^/    /'
        fi
done
if [ $found -eq 0 ]; then
        echo "no fuzz targets in $build/tests/fuzz (configure with CC=clang -DSTRATA_FUZZ=ON)" >&2
        exit 2
fi
[ $status -eq 0 ] && rm -rf "$work"
exit $status
