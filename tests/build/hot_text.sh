#!/usr/bin/env bash
# cmake/hot_text.ld puts strata's executed code together in .text.strata_hot. Its patterns match
# by archive member and section name, and a pattern that matches nothing is silently skipped: a
# gRPC package that renamed its objects would leave the section nearly empty, and strata's RSS
# 1.5 MiB higher, with every other test passing. Checks that the section holds most of what the
# script lists (its size is in the script's header).
set -euo pipefail
bin=$1 script=$2
want_kib=$(sed -n 's/.* input sections, \([0-9]*\) KiB of .*/\1/p' "$script")
got=$(readelf -SW "$bin" | awk '$2 == ".text.strata_hot" { print $6 }')
if [[ -z $got ]]; then
        echo "hot_text: $bin has no .text.strata_hot section" >&2
        exit 1
fi
got_kib=$(( 16#$got / 1024 ))
echo "hot_text: .text.strata_hot is $got_kib KiB, the script lists $want_kib KiB"
if (( got_kib * 10 < want_kib * 9 )); then
        echo "hot_text: less than 90% of the listed code was found: regenerate cmake/hot_text.ld (scripts/profile-hot-text.sh)" >&2
        exit 1
fi
