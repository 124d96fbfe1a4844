#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Packs a built nft-portmap for copying onto nodes: the binary plus every
# shared library it needs except glibc's, in nft-portmap.d/ next to it.
# The binary must have been linked with
#   LDFLAGS='-Wl,--disable-new-dtags -Wl,-rpath,$ORIGIN/nft-portmap.d'
# (DT_RPATH, unlike DT_RUNPATH, also applies to the libraries' own
# dependencies, such as libsimdjson's libstdc++).
# Usage: pack.sh <built nft-portmap> <output directory>
set -eu

bin=$1
out=$2

readelf -d "$bin" | grep -q '(RPATH).*\$ORIGIN/nft-portmap.d' || {
	echo "pack: $bin has no DT_RPATH \$ORIGIN/nft-portmap.d (see LDFLAGS above)" >&2
	exit 1
}

mkdir -p "$out/nft-portmap.d"
cp "$bin" "$out/nft-portmap"
ldd "$out/nft-portmap" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' |
	grep -vE '/(libc|libm|ld-linux[^/]*|libpthread|libdl|librt|libresolv)\.so' |
	while read -r lib; do
		cp -L "$lib" "$out/nft-portmap.d/"
	done

# Every library but glibc's must now resolve inside the pack.
stray=$(ldd "$out/nft-portmap" | awk '$2 == "=>" { print $3 }' |
	grep -vE '/(libc|libm|ld-linux[^/]*|libpthread|libdl|librt|libresolv)\.so' |
	grep -v "^$out/nft-portmap.d/" || true)
if [ -n "$stray" ]; then
	echo "pack: resolved outside the pack: $stray" >&2
	exit 1
fi

"$out/nft-portmap" --version
# The oldest glibc a node may have: the newest symbol version referenced.
echo "pack: needs glibc >= $(objdump -T "$out/nft-portmap" "$out"/nft-portmap.d/* |
	grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)"
ls -l "$out" "$out/nft-portmap.d"
