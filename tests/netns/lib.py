# SPDX-License-Identifier: Apache-2.0
"""Topology helpers for the netns integration tests.

Every test builds its own little world out of throw-away network namespaces
so it can run next to other tests and never touches the machine's own
network namespace or ruleset:

    client ns  192.0.2.2 / 2001:db8:1::2
        |  veth
    host ns    192.0.2.1 (+ .3) / 2001:db8:1::1 (+ ::3)   the runtime and the plugin run here
        |  bridge (made by the bridge plugin), 10.a.b.0/24 + fd00:a:b::/64
    container namespaces, each attached by the real conflist
        [bridge + host-local + <plugin under test>] and running echo.py

Names carry the test process id, so parallel tests never collide, and
everything is removed on the way out, also on failure or SIGTERM.
"""

import collections
import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cnirun  # noqa: E402  (after the path fix-up above)

EXIT_SKIP = 77
ECHO = os.path.join(HERE, 'echo.py')

HOST_V4, HOST_V4_ALT, CLIENT_V4 = '192.0.2.1', '192.0.2.3', '192.0.2.2'
HOST_V6, HOST_V6_ALT, CLIENT_V6 = '2001:db8:1::1', '2001:db8:1::3', '2001:db8:1::2'
FAMILIES = ('ipv4', 'ipv6', 'dual')
NFT_TABLE = ('inet', 'nft-portmap')
NS_PREFIX = 'nftpm'

# Where Debian (and most distributions) keep the bridge and host-local plugins.
DEFAULT_PLUGIN_DIRS = ('/usr/lib/cni', '/opt/cni/bin', '/usr/libexec/cni')


class Skip(Exception):
    """The test cannot run here (no root, no namespaces, no SCTP ...)."""


class Terminated(BaseException):
    """SIGTERM (meson's timeout) turned into an exception so cleanups run."""


def log(text):
    """Timestamped progress on stdout: meson keeps it in the test log."""
    print(f'[{time.strftime("%H:%M:%S")}] {text}', flush=True)


def run(cmd, check=True, input=None, timeout=30):
    """Runs a helper command (ip, nft, sysctl) and returns its CompletedProcess."""
    proc = subprocess.run(cmd, input=input, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed ({proc.returncode}): '
                           f'{proc.stderr.strip()}')
    return proc


def require_root():
    if os.geteuid() != 0:
        raise Skip('needs root (network namespaces, nftables)')


def install_sigterm_handler():
    """meson sends SIGTERM on timeout; without this the namespaces would leak."""
    def handler(signum, frame):
        raise Terminated(f'signal {signum}')
    signal.signal(signal.SIGTERM, handler)


def sctp_sockets():
    """Whether the kernel has SCTP sockets; echo.py falls back to raw INIT/INIT ACK if not."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132).close()
        return True
    except OSError:
        return False


def find_plugin_dir(names=('bridge', 'host-local')):
    """The directory holding the standard plugins the conflist chains before ours."""
    candidates = [os.environ.get('NFTPM_CNI_PLUGIN_DIR', '')] + list(DEFAULT_PLUGIN_DIRS)
    for d in candidates:
        if d and all(os.access(os.path.join(d, n), os.X_OK) for n in names):
            return d
    raise Skip(f'{"/".join(names)} CNI plugins not found (apt-get install '
               'containernetworking-plugins, or set NFTPM_CNI_PLUGIN_DIR)')


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def sweep_stale_namespaces():
    """Deletes namespaces left by earlier test processes that were SIGKILLed."""
    proc = run(['ip', 'netns', 'list'], check=False)
    for line in proc.stdout.splitlines():
        name = line.split()[0] if line.split() else ''
        m = re.match(rf'^{NS_PREFIX}-(\d+)-', name)
        if m and not pid_alive(int(m.group(1))):
            run(['ip', 'netns', 'delete', name], check=False)


def mapping(host_port, container_port, protocol='tcp', host_ip=None):
    """One portMappings entry, in the runtime's (CONVENTIONS.md) spelling."""
    m = {'hostPort': host_port, 'containerPort': container_port, 'protocol': protocol}
    if host_ip is not None:
        m['hostIP'] = host_ip
    return m


def is_v6(addr):
    return ':' in addr


class Namespace:
    """A named network namespace (/run/netns/NAME) and commands run inside it."""

    def __init__(self, name):
        self.name = name
        self.path = f'/run/netns/{name}'
        proc = run(['ip', 'netns', 'add', name], check=False)
        if proc.returncode != 0:
            raise Skip(f'cannot create network namespace {name}: {proc.stderr.strip()}')
        self.run(['ip', 'link', 'set', 'lo', 'up'])

    def exec_prefix(self):
        return ['ip', 'netns', 'exec', self.name]

    def run(self, cmd, check=True, input=None, timeout=30):
        return run(self.exec_prefix() + cmd, check=check, input=input, timeout=timeout)

    def popen(self, cmd, **kwargs):
        return subprocess.Popen(self.exec_prefix() + cmd, **kwargs)

    def sysctl(self, **settings):
        """sysctl(net__ipv4__ip_forward=1): '__' stands for the dots."""
        args = [f'{k.replace("__", ".")}={v}' for k, v in settings.items()]
        self.run(['sysctl', '-q', '-w'] + args)

    def delete(self):
        run(['ip', 'netns', 'delete', self.name], check=False)


class Reply:
    """What one probe got: the answering server and the peer address it saw."""

    def __init__(self, raw):
        self.ok = raw.get('ok', False)
        self.error = raw.get('error', '')
        parts = raw.get('reply', '').split()
        self.server = parts[0] if len(parts) > 0 else None
        self.peer = parts[1] if len(parts) > 1 else None
        self.peer_port = int(parts[2]) if len(parts) > 2 else None

    def __repr__(self):
        if self.ok:
            return f'<reply from {self.server}, peer {self.peer}:{self.peer_port}>'
        return f'<no reply: {self.error}>'


class Container:
    """A container namespace attached by the conflist, with its echo server."""

    def __init__(self, name, ns, container_id, ifname, runner, mappings, network='',
                 portmap=None):
        self.name = name
        self.ns = ns
        self.id = container_id
        self.ifname = ifname
        self.runner = runner
        self.mappings = mappings
        self.network = network    # the conflist's name: part of the attachment's identity
        self.portmap = portmap    # the plugin's extra configuration (snat, conditionsV4 ...)
        self.result = None
        self.server = None

    def prefixes(self):
        """(ipv4/len, ipv6/len) from the ADD result; None where absent."""
        v4 = v6 = None
        for ip in (self.result or {}).get('ips', []):
            if is_v6(ip['address']):
                v6 = v6 or ip['address']
            else:
                v4 = v4 or ip['address']
        return v4, v6

    def addresses(self):
        """(ipv4, ipv6, gw4, gw6) from the ADD result; None where absent."""
        v4 = v6 = gw4 = gw6 = None
        for ip in (self.result or {}).get('ips', []):
            addr = ip['address'].split('/')[0]
            if is_v6(addr) and v6 is None:
                v6, gw6 = addr, ip.get('gateway')
            elif not is_v6(addr) and v4 is None:
                v4, gw4 = addr, ip.get('gateway')
        return v4, v6, gw4, gw6

    def record_name(self):
        """pm-<hash>: the attachment's record counter (and chain, with conditions)."""
        return attachment_name(self.network, self.id, self.ifname)

    def comment_matches(self, comment):
        return comment_matches(comment, self.network, self.id, self.ifname)

    @property
    def ipv4(self):
        return self.addresses()[0]

    @property
    def ipv6(self):
        return self.addresses()[1]

    def gateway(self, family_of):
        """The bridge address a masqueraded packet of that family appears from."""
        v4, v6, gw4, gw6 = self.addresses()
        return gw6 if is_v6(family_of) else gw4

    def capability_args(self):
        return {'portMappings': self.mappings} if self.mappings is not None else {}


class Topology:
    """One test's namespaces, conflist and containers; a context manager.

    plugin:      path of the portmap plugin under test
    plugin_type: the `type` it is called by in the conflist
    family:      'ipv4', 'ipv6' or 'dual' (the container address families)
    """

    def __init__(self, plugin, plugin_type='nft-portmap', family='dual', label='t',
                 cni_version='1.0.0'):
        if family not in FAMILIES:
            raise ValueError(f'family must be one of {FAMILIES}')
        self.plugin = os.path.abspath(plugin)
        self.plugin_type = plugin_type
        # Debian's reference plugin (iptables backend): scenarios skip their
        # nft-portmap table inspections for it.
        self.is_reference = plugin_type == 'portmap'
        self.family = family
        self.cni_version = cni_version
        pid = os.getpid()
        self.tag = f'{NS_PREFIX}-{pid}-{label}'
        # A subnet that differs between concurrently running tests, to keep
        # logs unambiguous (each test has its own host namespace anyway).
        self.subnet_ids = ((pid >> 8) % 200 + 20, pid % 256)
        self.bridge = f'pmbr{pid}'[:15]
        self.network = f'nftpm-test-{pid}'
        self.containers = []
        self._stack = contextlib.ExitStack()
        self._seq = 0

    # -- setup and teardown -------------------------------------------------

    def __enter__(self):
        try:
            self._build()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not issubclass(exc_type, Skip):
            self.dump_diagnostics()
        if os.environ.get('NFTPM_KEEP_NETNS'):
            log(f'NFTPM_KEEP_NETNS set: leaving {self.tag}-* and {self.tmp} behind')
            self._stack.pop_all()
            return False
        self._stack.close()
        return False

    def _build(self):
        require_root()
        if not os.access(self.plugin, os.X_OK):
            raise FileNotFoundError(f'plugin under test not found: {self.plugin}')
        std_dir = find_plugin_dir()
        sweep_stale_namespaces()
        self.tmp = tempfile.mkdtemp(prefix=f'{self.tag}-')
        self._stack.callback(shutil.rmtree, self.tmp, ignore_errors=True)
        self.cni_path = self._make_cni_path(std_dir)
        self.cache_dir = os.path.join(self.tmp, 'cache')
        self.ipam_dir = os.path.join(self.tmp, 'ipam')
        self.host = self._namespace('host')
        self.client = self._namespace('client')
        self._wire_client()
        log(f'topology {self.tag}: plugin {self.plugin} as "{self.plugin_type}", '
            f'family {self.family}, bridge {self.bridge}, subnets {self.subnets()}')

    def _namespace(self, role):
        ns = Namespace(f'{self.tag}-{role}')
        self._stack.callback(ns.delete)
        # No duplicate address detection: addresses are usable at once, so
        # the first probe after an ADD is not lost to a tentative address.
        ns.sysctl(net__ipv6__conf__all__accept_dad=0,
                  net__ipv6__conf__default__accept_dad=0)
        return ns

    def _make_cni_path(self, std_dir):
        """CNI_PATH = a directory of symlinks: bridge, host-local, plugin under test."""
        d = os.path.join(self.tmp, 'cni-bin')
        os.mkdir(d)
        os.symlink(os.path.join(std_dir, 'bridge'), os.path.join(d, 'bridge'))
        os.symlink(os.path.join(std_dir, 'host-local'), os.path.join(d, 'host-local'))
        os.symlink(self.plugin, os.path.join(d, self.plugin_type))
        return d

    def _wire_client(self):
        """veth host <-> client, both families, plus forwarding in the host."""
        self.host.run(['ip', 'link', 'add', 'to-client', 'type', 'veth',
                       'peer', 'name', 'to-host', 'netns', self.client.name])
        for addr in (f'{HOST_V4}/24', f'{HOST_V4_ALT}/24'):
            self.host.run(['ip', 'addr', 'add', addr, 'dev', 'to-client'])
        for addr in (f'{HOST_V6}/64', f'{HOST_V6_ALT}/64'):
            self.host.run(['ip', 'addr', 'add', addr, 'dev', 'to-client', 'nodad'])
        self.client.run(['ip', 'addr', 'add', f'{CLIENT_V4}/24', 'dev', 'to-host'])
        self.client.run(['ip', 'addr', 'add', f'{CLIENT_V6}/64', 'dev', 'to-host', 'nodad'])
        self.host.run(['ip', 'link', 'set', 'to-client', 'up'])
        self.client.run(['ip', 'link', 'set', 'to-host', 'up'])
        self.host.sysctl(net__ipv4__ip_forward=1, net__ipv6__conf__all__forwarding=1)
        self._bridge_netfilter(0)

    def _bridge_netfilter(self, value):
        """Bridged traffic bypasses iptables/nftables, as on a host without br_netfilter.

        This kernel has br_netfilter built in and on by default; with it, a
        sibling container's reply would be un-NATed on the bridge even
        without the hairpin masquerade, so a missing masquerade would go
        unnoticed. With it off, the sibling and hairpin cases fail outright
        unless the plugin masquerades them.
        """
        for key in ('bridge-nf-call-iptables', 'bridge-nf-call-ip6tables'):
            path = f'net/bridge/{key}'
            proc = self.host.run(['sh', '-c', f'[ ! -e /proc/sys/{path} ] || echo {value} > '
                                 f'/proc/sys/{path}'], check=False)
            if proc.returncode != 0:
                log(f'cannot set {path}: {proc.stderr.strip()}')

    # -- the network configuration -------------------------------------------

    def subnets(self, net=0):
        """The container subnets of network number `net` (0: the main network)."""
        a, b = self.subnet_ids
        b = (b + net) % 256
        nets = []
        if self.family in ('ipv4', 'dual'):
            nets.append(f'10.{a}.{b}.0/24')
        if self.family in ('ipv6', 'dual'):
            nets.append(f'fd00:{a:x}:{b:x}::/64')
        return nets

    def network_name(self, net=0):
        return self.network if net == 0 else f'{self.network}-n{net}'

    def conflist(self, portmap=None, cni_version=None, net=0):
        """The real chain: bridge (+ host-local) then the plugin under test.

        portmap: extra keys of the portmap plugin's configuration (snat,
        masqAll, conditionsV4, ...).
        net:     0 for the main network; other numbers make further networks
                 (own name, bridge and subnets, no default route: a container
                 attached to two networks keeps the main one's).
        """
        routes = []
        if net == 0:
            routes = [{'dst': '0.0.0.0/0' if not is_v6(n) else '::/0'} for n in self.subnets()]
        pm = {'type': self.plugin_type, 'capabilities': {'portMappings': True}}
        pm.update(portmap or {})
        return {
            'cniVersion': cni_version or self.cni_version,
            'name': self.network_name(net),
            'plugins': [
                {
                    'type': 'bridge',
                    'bridge': self.bridge if net == 0 else f'{self.bridge}n{net}'[:15],
                    'isGateway': True,
                    'hairpinMode': True,
                    'ipMasq': False,
                    'ipam': {
                        'type': 'host-local',
                        'dataDir': self.ipam_dir,
                        'ranges': [[{'subnet': n}] for n in self.subnets(net)],
                        'routes': routes,
                    },
                },
                pm,
            ],
        }

    def runner(self, portmap=None, cni_version=None, net=0):
        """A libcni-like runner whose plugins execute inside the host namespace."""
        return cnirun.CniRunner(self.conflist(portmap, cni_version, net), self.cni_path,
                                self.cache_dir, self.host.exec_prefix(), log=log)

    # -- containers ---------------------------------------------------------

    def add_container(self, name, mappings, portmap=None, serve=None, ifname='eth0',
                      cni_version=None, container_id=None, ns=None, net=0):
        """Creates a container namespace, ADDs it and starts its echo server.

        mappings: the portMappings capability (None: the runtime sends none)
        serve:    PROTO:PORT endpoints for the echo server; by default the
                  container side of every mapping
        container_id, ns: reuse an existing container's identity and
                  namespace (a second attachment of the same container)
        net:      the network number (see conflist)
        Raises cnirun.CniError if the ADD fails (the namespace is still
        cleaned up).
        """
        self._seq += 1
        ns = ns or self._namespace(f'c{self._seq}-{name}')
        cid = container_id or f'{name}-{os.getpid()}-{secrets.token_hex(6)}'
        c = Container(name, ns, cid, ifname, self.runner(portmap, cni_version, net), mappings,
                      network=self.network_name(net), portmap=portmap)
        self.containers.append(c)
        log(f'ADD container {name} (id {cid}) network {self.network_name(net)} if {ifname} '
            f'mappings={json.dumps(mappings)} portmap={json.dumps(portmap or {})}')
        c.result = c.runner.add(cid, ns.path, ifname, c.capability_args())
        log(f'container {name}: {c.ipv4 or "-"} / {c.ipv6 or "-"}')
        if serve is None:
            serve = sorted({f'{m["protocol"]}:{m["containerPort"]}' for m in mappings or []})
        if serve:
            self.start_server(c, serve)
        return c

    def start_server(self, c, endpoints):
        """echo.py in the container; waits for "ready" so no probe races the bind."""
        proc = c.ns.popen([sys.executable, ECHO, 'serve', c.name] + list(endpoints),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._stack.callback(self._stop, proc)
        line = proc.stdout.readline().strip()
        if line != 'ready':
            raise RuntimeError(f'echo server in {c.name} did not start: '
                               f'{line} {proc.stderr.read() if proc.poll() is not None else ""}')
        c.server = proc

    def start_host_server(self, name, endpoints):
        """An echo server in the host namespace itself (hostNetwork-style)."""
        fake = Container(name, self.host, '', '', None, None)
        self.start_server(fake, endpoints)
        return fake

    @staticmethod
    def _stop(proc):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def delete_container(self, c, prev_result='cached', runtime_config=True):
        """DEL c; prev_result=None / runtime_config=False drop that input."""
        caps = c.capability_args() if runtime_config else None
        log(f'DEL container {c.name} prevResult={"cached" if prev_result else "none"} '
            f'runtimeConfig={"yes" if runtime_config else "no"}')
        c.runner.delete(c.id, c.ns.path, c.ifname, caps, prev_result=prev_result)

    def check_container(self, c):
        log(f'CHECK container {c.name}')
        c.runner.check(c.id, c.ns.path, c.ifname, c.capability_args())

    # -- traffic --------------------------------------------------------------

    def probe(self, ns, proto, addr, port, timeout=2.0, sport=None):
        """One request from namespace ns to addr:port; returns a Reply."""
        cmd = [sys.executable, ECHO, 'probe', proto, addr, str(port),
               '--timeout', str(timeout)]
        if sport:
            cmd += ['--sport', str(sport)]
        proc = ns.run(cmd, check=False, timeout=timeout + 10)
        if proc.returncode != 0:
            raise RuntimeError(f'probe failed to run: {proc.stderr.strip()}')
        reply = Reply(json.loads(proc.stdout))
        log(f'  {ns.name.rsplit("-", 1)[-1]:>8} -> {proto} {fmt(addr, port)}: {reply}')
        return reply

    def expect_reply(self, ns, proto, addr, port, server, peer=None, sport=None):
        """Asserts that `server` answers, and (if given) saw the source `peer`."""
        r = self.probe(ns, proto, addr, port, sport=sport)
        where = f'{proto} {fmt(addr, port)} from {ns.name}'
        if not r.ok:
            raise AssertionError(f'{where}: expected an answer from {server}, got {r.error}')
        if r.server != server:
            raise AssertionError(f'{where}: answered by {r.server}, expected {server}')
        if peer is not None and r.peer != peer:
            raise AssertionError(f'{where}: {server} saw source {r.peer}, expected {peer}')
        return r

    def expect_no_reply(self, ns, proto, addr, port, sport=None, timeout=2.0):
        """Asserts that nothing answers (refused, reset or timed out)."""
        r = self.probe(ns, proto, addr, port, timeout=timeout, sport=sport)
        if r.ok:
            raise AssertionError(f'{proto} {fmt(addr, port)} from {ns.name}: expected no '
                                 f'answer, got one from {r.server} (peer {r.peer})')
        return r

    def host_addresses(self, alt=False):
        """The host's client-facing addresses of the topology's families."""
        out = []
        if self.family in ('ipv4', 'dual'):
            out.append(HOST_V4_ALT if alt else HOST_V4)
        if self.family in ('ipv6', 'dual'):
            out.append(HOST_V6_ALT if alt else HOST_V6)
        return out

    @staticmethod
    def client_address(family_of):
        return CLIENT_V6 if is_v6(family_of) else CLIENT_V4

    # -- the plugin's nftables state --------------------------------------------

    def nft_table(self):
        """Our table in the host namespace as NftTable, or None if it does not exist."""
        proc = self.host.run(['nft', '-j', 'list', 'table'] + list(NFT_TABLE), check=False)
        if proc.returncode != 0:
            if 'No such file or directory' in proc.stderr:
                return None
            raise RuntimeError(f'nft list table failed: {proc.stderr.strip()}')
        return NftTable(json.loads(proc.stdout), self.nft_text())

    def nft_text(self):
        proc = self.host.run(['nft', 'list', 'table'] + list(NFT_TABLE), check=False)
        return proc.stdout if proc.returncode == 0 else proc.stderr

    def flush_ruleset(self):
        """An admin's `nft flush ruleset` (or a firewalld restart) in the host namespace."""
        log('nft flush ruleset (host namespace)')
        self.host.run(['nft', 'flush', 'ruleset'])

    def dump_diagnostics(self):
        """On failure: what the kernel held, so a red test explains itself."""
        if not hasattr(self, 'host'):
            return
        log('---- diagnostics: host namespace ----')
        for cmd in (['nft', 'list', 'ruleset'], ['ip', '-br', 'addr'], ['ip', 'route'],
                    ['ip', '-6', 'route'], ['conntrack', '-L']):
            proc = self.host.run(cmd, check=False)
            print(f'$ {" ".join(cmd)}\n{proc.stdout}{proc.stderr}', flush=True)


def fmt(addr, port):
    return f'[{addr}]:{port}' if is_v6(addr) else f'{addr}:{port}'


# -- the plugin's names and comments (ruleset.hpp), computed independently ------

# The dispatch chain of the skeleton as `nft list` prints it (src/portmap/ruleset.hpp):
# per family the guard vmap and the data map of hostIP keys, then of keys on every address.
DISPATCH_RULES = (
    'ip daddr . meta l4proto . th dport vmap @addrguard4',
    'dnat ip to ip daddr . meta l4proto . th dport map @addrports4',
    'meta nfproto ipv4 meta l4proto . th dport vmap @guard4',
    'meta nfproto ipv4 dnat ip to meta l4proto . th dport map @ports4',
    'ip6 daddr . meta l4proto . th dport vmap @addrguard6',
    'dnat ip6 to ip6 daddr . meta l4proto . th dport map @addrports6',
    'meta nfproto ipv6 meta l4proto . th dport vmap @guard6',
    'meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @ports6',
)

COMMENT_MAX = 127          # nft comments are 128 bytes with their NUL
CUT_MARKER = '~'


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


def fnv1a32(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h


def attachment_name(network, container_id, ifname):
    """pm-<16 hex>: FNV-1a-64 of network NUL containerID NUL ifname (record and chain name)."""
    data = b'\0'.join(x.encode() for x in (network, container_id, ifname))
    return f'pm-{fnv1a64(data):016x}'


def parse_comment(comment):
    """(network, containerID, ifname) of "net=N id=I if=F", or None."""
    m = re.fullmatch(r'net=(\S+) id=(\S+) if=(\S+)', comment or '')
    return m.groups() if m else None


def comment_field_matches(field, value):
    """A field read from a comment is value, whole or cut: a prefix, '~' and the
    8 hex digits of FNV-1a-32 of the whole value."""
    if field == value:
        return True
    if len(field) < 9 or field[-9] != CUT_MARKER:
        return False
    prefix = field[:-9]
    return (len(value) > len(prefix) and value.startswith(prefix)
            and field[-8:] == f'{fnv1a32(value.encode()):08x}')


def comment_matches(comment, network, container_id, ifname):
    """Whether an nft comment names this attachment (exactly, or with fields cut)."""
    fields = parse_comment(comment)
    return fields is not None and len(comment.encode()) <= COMMENT_MAX and all(
        comment_field_matches(f, v) for f, v in zip(fields, (network, container_id, ifname)))


def canonical(value):
    """JSON scalars with IP addresses in one spelling, so keys and data compare."""
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    return value


def planned_elements(c):
    """What the plugin must publish for container c, from its inputs (ruleset.hpp):
    {(set name, key tuple): data}, data being (container address, port) in the
    data maps, ('jump', pm-<hash>) in the guard maps and None in masq sets.

    As the reference resolves mappings: 0.0.0.0/:: mean no hostIP; a hostIP
    of one family applies to that family only; for one host key the first
    mapping wins. snat (default true) adds per family with mappings
    (container address . container subnet) and, for IPv4, (address .
    127.0.0.0) to masq4-<len>/masq4-8; masqAll replaces both with (address .
    0.0.0.0 / ::) in masq4-0 / masq6-0. conditionsV4/V6 claim the family's
    keys in the guard maps as well.
    """
    pm = c.portmap or {}
    out = {}
    for cidr in c.prefixes():
        if not cidr:
            continue
        iface = ipaddress.ip_interface(cidr)
        fam = iface.version
        addr = str(iface.ip)
        guarded = bool(pm.get(f'conditionsV{fam}'))
        used = False
        for m in c.mappings or []:
            host_ip = m.get('hostIP') or None
            if host_ip is not None and ipaddress.ip_address(host_ip).is_unspecified:
                host_ip = None
            if host_ip is not None and ipaddress.ip_address(host_ip).version != fam:
                continue
            used = True
            proto, port = m['protocol'].lower(), m['hostPort']
            if host_ip is None:
                key, dmap, gmap = (proto, port), f'ports{fam}', f'guard{fam}'
            else:
                key = (canonical(host_ip), proto, port)
                dmap, gmap = f'addrports{fam}', f'addrguard{fam}'
            out.setdefault((dmap, key), (addr, m['containerPort']))
            if guarded:
                out.setdefault((gmap, key), ('jump', c.record_name()))
        if used and pm.get('snat', True):
            if pm.get('masqAll', False):
                zero = '0.0.0.0' if fam == 4 else '::'
                out[(f'masq{fam}-0', (addr, zero))] = None
            else:
                out[(f'masq{fam}-{iface.network.prefixlen}',
                     (addr, str(iface.network.network_address)))] = None
                if fam == 4:
                    out[('masq4-8', (addr, '127.0.0.0'))] = None
    return out


Element = collections.namedtuple('Element', 'set key data comment counter')


class NftTable:
    """`nft -j list table` output, with the few queries the tests need.

    The text listing is kept too: nft 1.0.6 leaves chain comments (where
    the plugin names network, container and ifname of an attachment with
    conditions) out of its JSON. Element and counter-object comments are in
    the JSON.
    """

    def __init__(self, doc, text=''):
        self.objects = [o for o in doc.get('nftables', []) if 'metainfo' not in o]
        self.text = text

    def of_kind(self, kind):
        return [o[kind] for o in self.objects if kind in o]

    def chains(self):
        return {c['name']: c for c in self.of_kind('chain')}

    def chain_comments(self):
        """{chain name: comment} from the text listing."""
        return dict(re.findall(r'chain (\S+) \{\n\s+comment "([^"]*)"', self.text))

    def rules(self, chain=None):
        return [r for r in self.of_kind('rule') if chain is None or r['chain'] == chain]

    def records(self):
        """{name: comment} of the named counter objects (the attachments' records)."""
        return {o['name']: o.get('comment') for o in self.of_kind('counter')}

    def maps(self):
        """Maps and sets by name (both kinds live in the same namespace)."""
        out = {s['name']: s for s in self.of_kind('set')}
        out.update({m['name']: m for m in self.of_kind('map')})
        return out

    @staticmethod
    def _tuple(value):
        if isinstance(value, dict) and 'concat' in value:
            return tuple(canonical(v) for v in value['concat'])
        if isinstance(value, dict) and len(value) == 1:
            verdict, arg = next(iter(value.items()))
            if isinstance(arg, dict) and 'target' in arg:
                return (verdict, arg['target'])
        return (canonical(value),)

    def elements(self):
        """Every element of every map and set as an Element.

        nft 1.0.6 -j: a map element is [key, data], a set element is key;
        a key with a comment or counter is {"elem": {"val": key, "comment":
        ..., "counter": {...}}}.
        """
        out = []
        for name, m in self.maps().items():
            for e in m.get('elem', []):
                key, data = (e[0], e[1]) if isinstance(e, list) and len(e) == 2 else (e, None)
                comment = counter = None
                if isinstance(key, dict) and 'elem' in key:
                    comment = key['elem'].get('comment')
                    counter = key['elem'].get('counter')
                    key = key['elem']['val']
                out.append(Element(name, self._tuple(key),
                                   None if data is None else self._tuple(data), comment, counter))
        return out

    def element(self, set_name, key):
        for e in self.elements():
            if e.set == set_name and e.key == key:
                return e
        return None

    def masq_rule_sets(self):
        """Sets that a masquerade rule of chain postrouting looks up."""
        found = set()
        for r in self.rules('postrouting'):
            if any('masquerade' in x for x in r['expr']):
                found.update(v[1:] for p, v in walk(r['expr'])
                             if p and p[-1] == 'right' and isinstance(v, str) and v.startswith('@'))
        return found

    @staticmethod
    def rule_text(rule):
        """A rule's expressions as JSON without counter values (which traffic changes)."""
        return json.dumps([{'counter': None} if 'counter' in x else x for x in rule['expr']],
                          sort_keys=True)

    def mentions(self, needle):
        """Where needle occurs: JSON scalars equal to (or containing) it, and text lines.

        A string needle is also searched in the text listing, which is the
        only place chain comments appear.
        """
        hits = []
        for path, v in walk(self.objects):
            if v == needle or (isinstance(v, str) and isinstance(needle, str) and needle in v):
                hits.append('/'.join(str(p) for p in path) + f' = {v!r}')
        if isinstance(needle, str):
            hits += [f'text: {line.strip()}' for line in self.text.splitlines()
                     if needle in line]
        return hits


def walk(node, path=()):
    """Yields (path, scalar) for every leaf of a JSON document; path ends in the key."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))
    else:
        yield path, node
