#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite, as CI runs it: installs the dependencies, builds with
# warnings as errors, runs the unit and the network-namespace suites, then
# runs everything again in an address+undefined sanitizer build.
# Usage (root): contrib/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

contrib/install-deps.sh

total_pass=0
total_fail=0

# meson writes one JSON line per test; count them for the closing line.
count_results() {
	local log=$1/meson-logs/testlog.json
	[ -f "$log" ] || return 0
	local p f
	p=$(grep -c '"result": "OK"' "$log" || true)
	f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

run_build() {
	local dir=$1; shift
	echo "== $dir: configure and build"
	meson setup "$dir" --wipe -Dwerror=true "$@" >/dev/null 2>&1 || meson setup "$dir" -Dwerror=true "$@"
	ninja -C "$dir"
	echo "== $dir: tests"
	local rc=0
	meson test -C "$dir" --print-errorlogs --num-processes 2 || rc=$?
	count_results "$dir"
	return $rc
}

# ---- fuzzing (tests/fuzz) ------------------------------------------------
# The libFuzzer targets, built with clang and address+undefined sanitizers,
# each run for NFTPM_FUZZ_SECONDS (default 25; both at once). The other
# builds replay their seed corpus already (fuzz-*-corpus).
run_fuzz() {
	local dir=build-fuzz
	local setup=(-Dwerror=true -Dfuzzing=enabled -Db_sanitize=address,undefined
		     -Db_lundef=false -Dnetns_tests=disabled)
	echo "== $dir: configure and build (clang, libFuzzer, address+undefined)"
	if ! { CC=clang CXX=clang++ meson setup "$dir" --wipe "${setup[@]}" >/dev/null 2>&1 ||
	       CC=clang CXX=clang++ meson setup "$dir" "${setup[@]}"; } ||
	   ! ninja -C "$dir" tests/fuzz/fuzz-config tests/fuzz/fuzz-result; then
		echo "== $dir: FAILED to build the fuzzers"
		total_fail=$((total_fail + 1))
		return 1
	fi
	echo "== $dir: fuzz"
	local rc=0
	NFTPM_FUZZ_SECONDS=${NFTPM_FUZZ_SECONDS:-25} meson test -C "$dir" --no-rebuild \
		--print-errorlogs --num-processes 2 fuzz-config fuzz-result || rc=$?
	count_results "$dir"
	return $rc
}

status=0
run_build build || status=1
# -O0: the sanitizers find the same bugs, and the build is twice as fast.
run_build build-sanitize -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false || status=1
run_fuzz || status=1

echo
echo "check: ${total_pass} passed, ${total_fail} failed"
exit $status
