#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Installs what building, testing and demonstrating nft-portmap needs on
# Debian 12 (bookworm). Runs as root.
set -euo pipefail

packages=(
	# build
	g++ meson ninja-build pkg-config cmake
	libnftnl-dev libmnl-dev libnetfilter-conntrack-dev libsimdjson-dev doctest-dev
	# tests and demo: real CNI plugins, namespaces, and nft to look at the result
	containernetworking-plugins iproute2 nftables python3 procps util-linux curl
	# fuzzing: clang, and libclang_rt.fuzzer (-fsanitize=fuzzer) and the
	# sanitizer runtimes, which clang only recommends
	clang libclang-rt-14-dev
	# tests/stress: gdb holds the plugin between its read and its commit
	gdb
	# man page lint
	mandoc
	# Podman end-to-end test (tests/podman): Podman 4 with its CNI backend
	podman runc busybox-static
)

if [ "$(id -u)" != 0 ]; then
	echo "install-deps.sh: run as root (apt-get install)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# With recommends: Podman is only tested as Debian installs it by default.
apt-get install -y -qq "${packages[@]}" >/dev/null
echo "install-deps.sh: ${#packages[@]} packages present"
