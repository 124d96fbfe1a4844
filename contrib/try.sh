#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# First contact: installs the dependencies, builds nft-portmap and runs the
# demo (a container published through a real conflist, in throw-away
# network namespaces). Usage (root): contrib/try.sh
set -euo pipefail
cd "$(dirname "$0")/.."

contrib/install-deps.sh
if [ ! -d build ]; then
	meson setup build >/dev/null
fi
ninja -C build >/dev/null
echo "built build/src/nft-portmap"
exec contrib/demo.sh build/src/nft-portmap
