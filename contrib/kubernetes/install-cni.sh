#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Copies nft-portmap and its private libraries into the node's CNI bin
# directory (mounted at $1, default /host/opt/cni/bin). Each file is copied
# under a temporary name and renamed into place, so a runtime that runs the
# plugin during the update gets the old or the new binary, never half of one.
set -eu

dest=${1:-/host/opt/cni/bin}
# Where the image keeps the pack (overridable for a run outside the image).
src=${NFT_PORTMAP_SRC:-/opt/nft-portmap}

[ -d "$dest" ] || { echo "install-cni: $dest is not a directory (hostPath mount?)" >&2; exit 1; }

mkdir -p "$dest/nft-portmap.d"
for lib in "$src"/nft-portmap.d/*; do
	name=$(basename "$lib")
	cp "$lib" "$dest/nft-portmap.d/.$name.tmp"
	mv -f "$dest/nft-portmap.d/.$name.tmp" "$dest/nft-portmap.d/$name"
done
cp "$src/nft-portmap" "$dest/.nft-portmap.tmp"
chmod 0755 "$dest/.nft-portmap.tmp"
mv -f "$dest/.nft-portmap.tmp" "$dest/nft-portmap"

# The installed copy must run here, with this image's glibc. The node's
# glibc must be at least as new as Debian 12's (2.36) for the symbols used.
"$dest/nft-portmap" --version
echo "install-cni: nft-portmap installed into $dest"
