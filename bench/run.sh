#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# nft-portmap against the reference portmap, side by side, in throw-away
# network namespaces. As root, from anywhere:
#
#     bench/run.sh [bench.py options]
#     bench/run.sh --profile        # where ADD and DEL spend their time
#
# Installs what it needs (Debian 12), builds the two helpers and a release
# build of the plugin (build-bench/, or uses $NFT_PORTMAP if set), runs
# bench/bench.py, prints the table and writes bench/results/<date>.md,
# <date>.json and add_del.png. Not part of the test suite.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

if [ "$(id -u)" != 0 ]; then
	echo "bench/run.sh: run as root (it creates network namespaces)" >&2
	exit 1
fi

need=()
[ -x /usr/lib/cni/portmap ] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
command -v g++ >/dev/null || need+=(g++)
command -v ip >/dev/null || need+=(iproute2)
command -v meson >/dev/null || need+=(meson ninja-build pkg-config)
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || need+=(python3-matplotlib)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || need+=(libc6-dev)
profile=0
if [ "${1:-}" = --profile ]; then
	profile=1
	shift
	command -v strace >/dev/null || need+=(strace)
	command -v perf >/dev/null || need+=(linux-perf)
fi
if [ ${#need[@]} -gt 0 ]; then
	echo "bench/run.sh: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

builddir=${BENCH_BUILDDIR:-$repo/build-bench}
if [ -z "${NFT_PORTMAP:-}" ]; then
	[ -d "$builddir" ] || meson setup "$builddir" "$repo" -Dbuildtype=release >/dev/null
	ninja -C "$builddir" src/nft-portmap >/dev/null
	NFT_PORTMAP=$builddir/src/nft-portmap
	NFT_PORTMAP_REV=${NFT_PORTMAP_REV:-$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)}
fi

# The timing harness is static so that its own memory does not show in the
# peak RSS the kernel reports for the processes it starts.
tools=$builddir/bench-tools
mkdir -p "$tools"
g++ -std=c++20 -O2 -Wall -Wextra -static -o "$tools/spawn_timer" "$here/spawn_timer.cpp"
g++ -std=c++20 -O2 -Wall -Wextra -o "$tools/conn_rate" "$here/conn_rate.cpp"

prefix=nftpmb$$
cleanup() {
	# bench.py removes its namespaces itself; this catches a hard kill of it.
	for ns in $(ip netns list | awk -v p="$prefix-" 'index($1, p) == 1 { print $1 }'); do
		ip netns del "$ns" 2>/dev/null || true
	done
}
trap cleanup EXIT

if [ $profile = 1 ]; then
	/usr/bin/python3 "$here/profile.py" --nft "$NFT_PORTMAP" --tools "$tools" --out "$here/results" \
		--prefix "$prefix" --nft-rev "${NFT_PORTMAP_REV:-}" "$@"
	exit
fi
/usr/bin/python3 "$here/bench.py" --nft "$NFT_PORTMAP" --tools "$tools" --out "$here/results" \
	--prefix "$prefix" --command "bench/run.sh${*:+ $*}" --nft-rev "${NFT_PORTMAP_REV:-}" "$@"
