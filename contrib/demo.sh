#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# A guided tour of nft-portmap: publish a container's web server on the
# host, fetch the page from another machine through the published port,
# look at the nftables table the plugin made, then remove the container and
# see its rules go.
#
# Everything happens in throw-away network namespaces (a "host", a "client"
# and a "container"); the machine's own network and ruleset are not touched,
# and all of it is removed on exit. Builds nothing.
#
# usage (root): contrib/demo.sh [path/to/nft-portmap]   (default: <repo>/build/src/nft-portmap)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
plugin=${1:-$top/build/src/nft-portmap}
plugin=$(realpath "$plugin" 2>/dev/null || echo "$plugin")
cnirun="$top/tests/netns/cnirun.py"
python=/usr/bin/python3
std_plugins=${NFTPM_CNI_PLUGIN_DIR:-/usr/lib/cni}

bold= dim= reset=
if [ -t 1 ]; then
	bold=$(tput bold 2>/dev/null || true)
	dim=$(tput dim 2>/dev/null || true)
	reset=$(tput sgr0 2>/dev/null || true)
fi
step=0

# say TEXT: a numbered step of the tour.
say() {
	step=$((step + 1))
	printf '\n%s== %d. %s%s\n' "$bold" "$step" "$*" "$reset"
}

# show CMD...: print a command as a newcomer would type it, then run it.
show() {
	printf '%s$ %s%s\n' "$dim" "$*" "$reset"
	"$@"
}

fail() {
	echo "demo: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root (it creates network namespaces)"
[ -x "$plugin" ] || fail "plugin not found: $plugin (build it first: meson setup build && ninja -C build)"
for p in bridge host-local; do
	[ -x "$std_plugins/$p" ] || fail "$std_plugins/$p missing (apt-get install containernetworking-plugins)"
done

tag=nftpm-demo-$$
host=$tag-host
client=$tag-client
ctr=$tag-ctr
work=$(mktemp -d "/tmp/$tag.XXXXXX")
server_pid=

cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	for ns in "$ctr" "$client" "$host"; do
		ip netns delete "$ns" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

say "Three network namespaces stand in for three machines"
cat <<EOF
  $client   a client somewhere on the network      192.0.2.2
  $host     the container host (runtime + plugins)  192.0.2.1
  $ctr      a container, attached by CNI            (address from host-local)
EOF
for ns in "$host" "$client" "$ctr"; do
	ip netns add "$ns"
	ip -n "$ns" link set lo up
done
ip -n "$host" link add to-client type veth peer name to-host netns "$client"
ip -n "$host" addr add 192.0.2.1/24 dev to-client
ip -n "$client" addr add 192.0.2.2/24 dev to-host
ip -n "$host" link set to-client up
ip -n "$client" link set to-host up
ip netns exec "$host" sysctl -qw net.ipv4.ip_forward=1

say "The network configuration: bridge + host-local, then nft-portmap"
# CNI_PATH: the standard plugins and the plugin under test, side by side.
mkdir "$work/bin"
ln -s "$std_plugins/bridge" "$std_plugins/host-local" "$work/bin/"
ln -s "$plugin" "$work/bin/nft-portmap"
cat > "$work/demo.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "demo",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni-demo0",
      "isGateway": true,
      "hairpinMode": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "$work/ipam",
        "ranges": [[{ "subnet": "10.88.0.0/24" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    {
      "type": "nft-portmap",
      "capabilities": { "portMappings": true }
    }
  ]
}
EOF
cat "$work/demo.conflist"
echo "Only the \"type\" differs from a conflist for the reference portmap plugin."

# cni ARGS...: what a container runtime does (libcni): run the list's plugins
# inside the host namespace, chaining each result into the next plugin.
cni() {
	"$python" "$cnirun" --conflist "$work/demo.conflist" --cni-path "$work/bin" \
		--cache-dir "$work/cache" --netns-exec "$host" \
		--container-id demo-web --netns "/run/netns/$ctr" --ifname eth0 "$@"
}
mappings='[{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]'

say "The runtime ADDs the container and asks to publish host port 8080 -> container port 80"
printf '%s$ cnirun.py ADD --cap portMappings=%s%s\n' "$dim" "'$mappings'" "$reset"
cni ADD --cap "portMappings=$mappings" | tee "$work/result.json"
ctr_ip=$("$python" -c 'import json,sys; print(json.load(sys.stdin)["ips"][0]["address"].split("/")[0])' < "$work/result.json")
echo "The container got $ctr_ip; nft-portmap passed the bridge plugin's result through unchanged."

say "A web server starts inside the container (plain python, port 80)"
mkdir "$work/www"
echo "Hello from inside the container ($ctr_ip)!" > "$work/www/index.html"
ip netns exec "$ctr" "$python" -m http.server 80 --bind 0.0.0.0 --directory "$work/www" \
	> "$work/http.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do
	ip netns exec "$ctr" "$python" -c 'import socket; socket.create_connection(("127.0.0.1", 80), 1)' \
		2>/dev/null && break
	sleep 0.1
done

say "The client fetches http://192.0.2.1:8080/ - the host's address and the published port"
show ip netns exec "$client" curl -sS --max-time 5 http://192.0.2.1:8080/
sleep 0.2
echo "The container's web server logged the request as coming from the client itself:"
tail -n 1 "$work/http.log"

say "What the plugin programmed: 'nft list table inet nft-portmap' in the host namespace"
show ip netns exec "$host" nft list table inet nft-portmap
cat <<'EOF'
The map ports4 holds one element per published port: host port : container
address . port, with a counter and a comment naming the owner (network,
container ID, interface). The masq sets hold container . source network
pairs for hairpin and localhost masquerade, and the counter object pm-<hash>
is the container's record, what DEL reads. A new connection costs one map
lookup, however many containers are published.
EOF

say "The runtime DELs the container"
printf '%s$ cnirun.py DEL --cap portMappings=%s%s\n' "$dim" "'$mappings'" "$reset"
cni DEL --cap "portMappings=$mappings"
kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
server_pid=

say "The table after DEL: the container's record and elements are gone"
show ip netns exec "$host" nft list table inet nft-portmap || true
if ip netns exec "$host" nft list table inet nft-portmap 2>/dev/null | grep -q demo-web; then
	fail "the table still mentions container demo-web"
fi
echo "Nothing in the table mentions container demo-web any more."

say "And the published port no longer answers"
if ip netns exec "$client" curl -sS --max-time 3 http://192.0.2.1:8080/; then
	fail "port 8080 still answers after DEL"
fi

say "Done; the namespaces and temporary files are removed on exit"
