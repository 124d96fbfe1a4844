#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs one libFuzzer target for a bounded time from the seed corpus, in a
# scratch corpus directory (the seeds in the source tree are never written).
# A crashing input is kept in ARTIFACT_DIR and printed (base64).
#   usage: run_fuzzer.sh FUZZER SEED_DIR ARTIFACT_DIR
#   NFTPM_FUZZ_SECONDS  time per target (default 25)
set -u
fuzzer=$1
seeds=$2
artifacts=$3
seconds=${NFTPM_FUZZ_SECONDS:-25}

work=$(mktemp -d "${TMPDIR:-/tmp}/nftpm-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$artifacts"
name=$(basename "$fuzzer")

echo "$name: ${seconds} s from $(ls "$seeds" | wc -l) seeds in $seeds"
rc=0
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
	-print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
	"$work/corpus" "$seeds" 2>"$work/log" || rc=$?
# The start and the end of libFuzzer's log: seeds read, coverage, executions.
grep -E '^(INFO: seed corpus|#[0-9]+[[:space:]]+(INITED|DONE)|stat::|Done [0-9]+ runs)' "$work/log"
if [ "$rc" != 0 ]; then
	echo "$name: FAILED (exit $rc)"
	tail -n 60 "$work/log"
	for f in "$artifacts/$name-"*; do
		[ -f "$f" ] || continue
		echo "input $f (base64):"
		base64 "$f" | head -c 4096
		echo
	done
	exit 1
fi
echo "$name: $(ls "$work/corpus" | wc -l) new corpus entries, no crash"
