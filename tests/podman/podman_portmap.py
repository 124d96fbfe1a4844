#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Podman 4 (CNI backend) publishes a port through a port-mapping plugin.

This is the end-to-end check an operator would do by hand: Debian's Podman
with network_backend = "cni", a conflist of bridge + host-local + the
plugin under test, `podman run -p HOSTPORT:80` of a busybox httpd, a page
fetched through the published port, and after `podman rm` nothing of the
container left in the ruleset.

Everything happens in throw-away network namespaces, entered with
`nsenter --net=` (not `ip netns exec`, which remounts /sys and hides the
cgroups that runc needs):

    client ns                     test ns ("the host")
    veth 198.51.100.2/24  <---->  veth 198.51.100.1/24
    2001:db8:8::2/64              2001:db8:8::1/64
                                  bridge nftpm-br0 -- container
                                  192.0.2.0/24, 2001:db8:7::/64

Podman's state (storage, runroot, tmpdir, containers.conf, network config
dir, CNI plugin dir, host-local's data dir) all lives in one temporary
directory, so nothing leaks into the machine's own Podman state.

The plugin is the last argument; its file name is its CNI type. With the
reference plugin (/usr/lib/cni/portmap, iptables) the same test proves the
machinery; with nft-portmap it tests the product. Exit 77 = skipped.
"""

import argparse
import io
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

SKIP = 77

HOST_PORT = 18080
CONTAINER_PORT = 80
HOST_V4 = '198.51.100.1'
CLIENT_V4 = '198.51.100.2'
HOST_V6 = '2001:db8:8::1'
CLIENT_V6 = '2001:db8:8::2'
CONTAINER_SUBNET_V4 = '192.0.2.0/24'
CONTAINER_SUBNET_V6 = '2001:db8:7::/64'
BUSYBOX = '/bin/busybox'
IMAGE = 'localhost/nftpm-busybox:test'

# GET argv[1], print the body; exit non-zero on any error.
FETCH = '''import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())
except Exception as e:
    sys.exit(f'{sys.argv[1]}: {e}')
'''

timings = []


def attachment_name(network, container_id, ifname):
    """nft-portmap's record name: "pm-" and FNV-1a-64 of network NUL ID NUL ifname."""
    h = 0xcbf29ce484222325
    for b in b'\0'.join(x.encode() for x in (network, container_id, ifname)):
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return f'pm-{h:016x}'


def log(text):
    print(text, flush=True)


class Step:
    """Times one phase of the test; the table is printed at the end."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        log(f'== {self.name}')
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        timings.append((self.name, time.monotonic() - self.start))
        return False


class TestFailure(Exception):
    pass


def run(cmd, check=True, timeout=120, env=None, input_text=None):
    """Runs a command, logging it; returns CompletedProcess with text output."""
    log('$ ' + ' '.join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=env, input=input_text)
    if p.stdout.strip():
        log(p.stdout.rstrip())
    if p.stderr.strip():
        log('stderr: ' + p.stderr.rstrip())
    if check and p.returncode != 0:
        raise TestFailure(f'{cmd[0]} exited {p.returncode}: {" ".join(cmd)}')
    return p


class Env:
    """The namespaces, files and Podman invocation of one test run."""

    def __init__(self, plugin, tmp, verbose):
        self.plugin = os.path.abspath(plugin)
        self.plugin_type = os.path.basename(plugin)
        self.tmp = tmp
        self.verbose = verbose
        tag = f'{os.getpid()}'
        self.hostns = f'nftpm-pod-{tag}'
        self.clientns = f'nftpm-podcl-{tag}'
        # Unique network name: libcni keeps its result cache in
        # /var/lib/cni/results/<network>-<container>-<ifname>, shared with
        # the machine, so cleanup can remove exactly this run's entries.
        self.network = f'nftpm-{tag}'
        self.container = f'nftpm-web-{tag}'
        self.container_id = None
        self.sandbox = None
        self.token = f'nft-portmap podman test {tag} {time.time_ns()}'
        self.netns_made = []

    # -- namespaces ----------------------------------------------------

    def in_ns(self, ns, cmd):
        return ['nsenter', f'--net=/var/run/netns/{ns}'] + cmd

    def make_namespaces(self):
        for ns in (self.hostns, self.clientns):
            run(['ip', 'netns', 'add', ns])
            self.netns_made.append(ns)
            run(self.in_ns(ns, ['ip', 'link', 'set', 'lo', 'up']))
        run(self.in_ns(self.hostns, ['ip', 'link', 'add', 'veth-cl', 'type', 'veth',
                                     'peer', 'name', 'veth-host']))
        run(self.in_ns(self.hostns, ['ip', 'link', 'set', 'veth-host', 'netns',
                                     self.clientns]))
        run(self.in_ns(self.hostns, ['ip', 'addr', 'add', f'{HOST_V4}/24', 'dev', 'veth-cl']))
        run(self.in_ns(self.hostns, ['ip', 'addr', 'add', f'{HOST_V6}/64', 'dev', 'veth-cl',
                                     'nodad']))
        run(self.in_ns(self.hostns, ['ip', 'link', 'set', 'veth-cl', 'up']))
        run(self.in_ns(self.clientns, ['ip', 'addr', 'add', f'{CLIENT_V4}/24', 'dev',
                                       'veth-host']))
        run(self.in_ns(self.clientns, ['ip', 'addr', 'add', f'{CLIENT_V6}/64', 'dev',
                                       'veth-host', 'nodad']))
        run(self.in_ns(self.clientns, ['ip', 'link', 'set', 'veth-host', 'up']))

    # -- files -----------------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write_files(self):
        # CNI plugin dir: the distribution's plugins plus the one under test.
        bindir = self.path('cni-bin')
        os.makedirs(bindir)
        for name in os.listdir('/usr/lib/cni'):
            os.symlink(os.path.join('/usr/lib/cni', name), os.path.join(bindir, name))
        target = os.path.join(bindir, self.plugin_type)
        if os.path.lexists(target):
            os.unlink(target)
        os.symlink(self.plugin, target)

        netdir = self.path('net.d')
        os.makedirs(netdir)
        conflist = {
            'cniVersion': '1.0.0',
            'name': self.network,
            'plugins': [
                {
                    'type': 'bridge',
                    'bridge': 'nftpm-br0',
                    'isGateway': True,
                    # No outbound NAT needed: keeps the port-mapping
                    # plugin the only netfilter user in the namespace.
                    'ipMasq': False,
                    'hairpinMode': True,
                    'ipam': {
                        'type': 'host-local',
                        'dataDir': self.path('ipam'),
                        'routes': [{'dst': '0.0.0.0/0'}, {'dst': '::/0'}],
                        'ranges': [
                            [{'subnet': CONTAINER_SUBNET_V4}],
                            [{'subnet': CONTAINER_SUBNET_V6}],
                        ],
                    },
                },
                {
                    'type': self.plugin_type,
                    'capabilities': {'portMappings': True},
                },
            ],
        }
        with open(os.path.join(netdir, f'{self.network}.conflist'), 'w') as f:
            json.dump(conflist, f, indent=2)

        with open(self.path('containers.conf'), 'w') as f:
            f.write(f'''[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "none"
tmp_dir = "{self.path('libpod-tmp')}"

[network]
network_backend = "cni"
cni_plugin_dirs = ["{bindir}"]
network_config_dir = "{netdir}"
default_network = "{self.network}"
''')
        with open(self.path('storage.conf'), 'w') as f:
            f.write(f'''[storage]
driver = "vfs"
graphroot = "{self.path('root')}"
runroot = "{self.path('runroot')}"
''')
        with open(self.path('registries.conf'), 'w') as f:
            f.write('unqualified-search-registries = []\n')

        # The image: a static busybox and one page.
        rootfs = self.path('image.tar')
        with tarfile.open(rootfs, 'w') as tar:
            for d in ('bin', 'etc', 'tmp', 'www', 'proc', 'sys', 'dev'):
                info = tarfile.TarInfo(d)
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            tar.add(BUSYBOX, arcname='bin/busybox')
            for applet in ('sh', 'httpd', 'wget'):
                info = tarfile.TarInfo(f'bin/{applet}')
                info.type = tarfile.SYMTYPE
                info.linkname = 'busybox'
                tar.addfile(info)
            page = (self.token + '\n').encode()
            info = tarfile.TarInfo('www/index.html')
            info.size = len(page)
            info.mode = 0o644

            tar.addfile(info, io.BytesIO(page))
        return rootfs

    def podman_env(self):
        env = dict(os.environ)
        env['CONTAINERS_CONF'] = self.path('containers.conf')
        env['CONTAINERS_STORAGE_CONF'] = self.path('storage.conf')
        env['CONTAINERS_REGISTRIES_CONF'] = self.path('registries.conf')
        env['TMPDIR'] = self.path('tmp')
        os.makedirs(env['TMPDIR'], exist_ok=True)
        return env

    def podman(self, args, check=True, timeout=120):
        cmd = self.in_ns(self.hostns, [
            'podman',
            '--root', self.path('root'),
            '--runroot', self.path('runroot'),
            '--tmpdir', self.path('libpod-tmp'),
            '--storage-driver', 'vfs',
            '--runtime', 'runc',
            '--cgroup-manager=cgroupfs',
            '--network-config-dir', self.path('net.d'),
            '--events-backend', 'none',
        ] + (['--log-level', 'debug'] if self.verbose else []) + args)
        return run(cmd, check=check, timeout=timeout, env=self.podman_env())

    # -- traffic -----------------------------------------------------------

    def fetch(self, ns, url, deadline_s=10.0):
        """GETs url from namespace ns until the page carries our token."""
        end = time.monotonic() + deadline_s
        last = None
        while True:
            # Python, not busybox wget: Debian's static busybox 1.35 wget
            # segfaults on a refused connection.
            cmd = self.in_ns(ns, [sys.executable, '-c', FETCH, url])
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            if p.returncode == 0 and self.token in p.stdout:
                log(f'   {url} from {ns}: page served')
                return
            last = (p.returncode, p.stdout.strip(), p.stderr.strip())
            if time.monotonic() > end:
                raise TestFailure(f'{url} from {ns}: no page (exit {last[0]}, '
                                  f'stdout {last[1]!r}, stderr {last[2]!r})')
            time.sleep(0.2)

    def fetch_in_container(self, url, deadline_s=10.0):
        """Hairpin: the container reaches itself through the host's port."""
        end = time.monotonic() + deadline_s
        while True:
            # busybox's own timeout applet: Debian's static busybox 1.35
            # wget segfaults with -T.
            p = self.podman(['exec', self.container, '/bin/busybox', 'timeout', '5',
                             '/bin/busybox', 'wget', '-q', '-O', '-', url],
                            check=False, timeout=30)
            if p.returncode == 0 and self.token in p.stdout:
                log(f'   {url} from inside the container: page served')
                return
            if time.monotonic() > end:
                raise TestFailure(f'hairpin {url} from the container: no page '
                                  f'(exit {p.returncode})')
            time.sleep(0.2)

    # -- ruleset state -------------------------------------------------------

    def state(self):
        """The port-mapping state that belongs to this run's container.

        Returns a list of human-readable findings; empty means nothing of the
        container is left.
        """
        if self.plugin_type == 'portmap':
            return self.iptables_state()
        return self.nft_state()

    # Skeleton chains every table has; anything else is an attachment's chain.
    SKELETON_CHAINS = {'prerouting', 'output', 'dispatch', 'postrouting'}

    def nft_objects(self):
        """`nft -j list table inet nft-portmap` as [(kind, object)], None without a table."""
        p = run(self.in_ns(self.hostns, ['nft', '-j', 'list', 'table', 'inet', 'nft-portmap']),
                check=False)
        if p.returncode != 0:
            return None
        return [next(iter(o.items())) for o in json.loads(p.stdout)['nftables']]

    @staticmethod
    def elements(objs):
        """(set, key, data, comment) of every element of every map and set.

        nft 1.0.6 -j: a map element is [key, data], a set element a key; a
        key with comment or counter is {"elem": {"val": key, "comment": ...}}.
        """
        def flat(v):
            if isinstance(v, dict) and 'concat' in v:
                return tuple(v['concat'])
            return v
        out = []
        for kind, o in objs:
            if kind not in ('map', 'set'):
                continue
            for e in o.get('elem', []):
                key, data = (e[0], e[1]) if isinstance(e, list) and len(e) == 2 else (e, None)
                comment = None
                if isinstance(key, dict) and 'elem' in key:
                    comment = key['elem'].get('comment')
                    key = key['elem']['val']
                out.append((o['name'], flat(key), flat(data), comment))
        return out

    def nft_state(self):
        """Everything in our table beyond its skeleton: records, elements, chains.

        In this private namespace all of it can only be this container's.
        """
        found = []
        objs = self.nft_objects()
        if objs is None:
            # No table at all: nothing of anybody's is left.
            return found
        for kind, o in objs:
            if kind == 'counter':
                found.append(f'record counter {o["name"]} ({o.get("comment")!r})')
            if kind == 'chain' and o['name'] not in self.SKELETON_CHAINS:
                found.append(f'chain {o["name"]}')
        for name, key, data, comment in self.elements(objs):
            found.append(f'element {json.dumps(key)} of {name} -> {json.dumps(data)} '
                         f'({comment!r})')
        # Chain comments are only in the text listing (nft 1.0.6).
        text = run(self.in_ns(self.hostns, ['nft', 'list', 'table', 'inet', 'nft-portmap']),
                   check=False).stdout
        if self.container_id and self.container_id in text:
            found.append(f'container ID {self.container_id[:12]} named in the table')
        return found

    def expect_published(self):
        """The running container's state is what ruleset.hpp describes.

        Record counter pm-<FNV-1a-64 of network, ID, ifname> with the comment
        "net=<network> id=<ID> if=eth0"; tcp . HOST_PORT in ports4 and ports6
        mapping to the container's address . CONTAINER_PORT; the hairpin and
        localhost masquerade elements (snat is on by default), each with the
        comment, and a postrouting rule for each masq set. Nothing else.
        """
        if self.plugin_type != 'nft-portmap':
            return
        objs = self.nft_objects()
        if objs is None:
            raise TestFailure('no table inet nft-portmap while the container runs')
        comment = f'net={self.network} id={self.container_id} if=eth0'
        record = attachment_name(self.network, self.container_id, 'eth0')
        records = {o['name']: o.get('comment') for kind, o in objs if kind == 'counter'}
        if records != {record: comment}:
            raise TestFailure(f'records {records}, expected {{{record!r}: {comment!r}}}')
        elems = {(s, k): (d, c) for s, k, d, c in self.elements(objs)}
        addrs = {}
        for fam, subnet in ((4, CONTAINER_SUBNET_V4), (6, CONTAINER_SUBNET_V6)):
            e = elems.get((f'ports{fam}', ('tcp', HOST_PORT)))
            if e is None:
                raise TestFailure(f'element tcp . {HOST_PORT} is missing from ports{fam}')
            (addr, port), owner = e[0], e[1]
            if owner != comment or port != CONTAINER_PORT or \
                    ipaddress.ip_address(addr) not in ipaddress.ip_network(subnet):
                raise TestFailure(f'element tcp . {HOST_PORT} of ports{fam}: {e}, expected an '
                                  f'address in {subnet} . {CONTAINER_PORT} with {comment!r}')
            addrs[fam] = addr
        want = {('ports4', ('tcp', HOST_PORT)), ('ports6', ('tcp', HOST_PORT)),
                ('masq4-24', (addrs[4], '192.0.2.0')), ('masq4-8', (addrs[4], '127.0.0.0')),
                ('masq6-64', (addrs[6], '2001:db8:7::'))}
        if set(elems) != want or any(c != comment for _, c in elems.values()):
            raise TestFailure(f'elements {elems}, expected {sorted(want)} with {comment!r}')
        rules = json.dumps([o for kind, o in objs if kind == 'rule' and o['chain'] == 'postrouting'])
        for s in ('masq4-24', 'masq4-8', 'masq6-64'):
            if f'"@{s}"' not in rules:
                raise TestFailure(f'chain postrouting has no masquerade rule for set {s}')
        log(f'   record {record}, elements {sorted(want)}')

    def iptables_state(self):
        found = []
        for tool in ('iptables-save', 'ip6tables-save'):
            p = run(self.in_ns(self.hostns, [tool, '-t', 'nat']), check=False)
            for line in p.stdout.splitlines():
                if re.match(r'^[:-]A? ?CNI-DN-', line) or (
                        self.container_id and self.container_id in line):
                    found.append(f'{tool}: {line}')
        return found

    def nft_counters_note(self):
        if self.plugin_type != 'portmap':
            run(self.in_ns(self.hostns, ['nft', 'list', 'table', 'inet', 'nft-portmap']),
                check=False)

    def tool_listing(self):
        """`nft-portmap list --json` in the test namespace (None for other plugins)."""
        if self.plugin_type != 'nft-portmap':
            return None
        run(self.in_ns(self.hostns, [self.plugin, 'list']), check=False)
        p = run(self.in_ns(self.hostns, [self.plugin, 'list', '--json']), check=False)
        if p.returncode != 0:
            raise TestFailure(f'nft-portmap list --json exited {p.returncode}')
        return json.loads(p.stdout)

    # -- cleanup ---------------------------------------------------------

    def cleanup(self):
        if os.path.exists(self.path('containers.conf')):
            self.podman(['rm', '--all', '--force', '--time', '0'], check=False, timeout=120)
        # Whatever podman could not stop: conmon and the container's processes
        # carry our temporary directory in their command line.
        for pid in os.listdir('/proc'):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open(f'/proc/{pid}/cmdline', 'rb') as f:
                    cmdline = f.read().decode(errors='replace')
            except OSError:
                continue
            if self.tmp in cmdline:
                log(f'cleanup: killing leftover process {pid}: {cmdline.replace(chr(0), " ")}')
                try:
                    os.kill(int(pid), 9)
                except OSError:
                    pass
        # Mounts under our directory (container shm, if rm failed).
        with open('/proc/self/mounts') as f:
            mounts = [line.split()[1] for line in f]
        for m in reversed(mounts):
            if m.startswith(self.tmp + '/'):
                run(['umount', '-l', m], check=False)
        if self.sandbox and os.path.exists(self.sandbox):
            run(['ip', 'netns', 'delete', os.path.basename(self.sandbox)], check=False)
        # libcni's cache of this run's network.
        cache = '/var/lib/cni/results'
        if os.path.isdir(cache):
            for name in os.listdir(cache):
                if name.startswith(self.network + '-'):
                    log(f'cleanup: removing leftover libcni cache {name}')
                    os.unlink(os.path.join(cache, name))
        for ns in reversed(self.netns_made):
            run(['ip', 'netns', 'delete', ns], check=False)


def test(env):
    with Step('namespaces and files'):
        env.make_namespaces()
        rootfs = env.write_files()

    with Step('podman import'):
        env.podman(['import', rootfs, IMAGE])

    with Step('podman run -p'):
        p = env.podman(['run', '-d', '--pull', 'never', '--name', env.container,
                        '--network', env.network,
                        '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024',
                        '-p', f'{HOST_PORT}:{CONTAINER_PORT}',
                        IMAGE, '/bin/busybox', 'httpd', '-f', '-p', str(CONTAINER_PORT),
                        '-h', '/www'])
        env.container_id = p.stdout.strip().splitlines()[-1]
        info = json.loads(env.podman(['inspect', env.container]).stdout)[0]
        env.sandbox = info['NetworkSettings'].get('SandboxKey') or None
        if info['Id'] != env.container_id:
            raise TestFailure('podman inspect disagrees on the container ID')

    with Step('state while running'):
        found = env.state()
        if not found:
            raise TestFailure('the running container has no port-mapping state at all')
        log('   state of the container: ' + '; '.join(found))
        env.expect_published()

    with Step('fetch through the published port'):
        # Another machine's view: prerouting, both families.
        env.fetch(env.clientns, f'http://{HOST_V4}:{HOST_PORT}/', deadline_s=15)
        env.fetch(env.clientns, f'http://[{HOST_V6}]:{HOST_PORT}/')
        # The host itself: output hook, localhost needs route_localnet + SNAT.
        env.fetch(env.hostns, f'http://{HOST_V4}:{HOST_PORT}/')
        env.fetch(env.hostns, f'http://127.0.0.1:{HOST_PORT}/')
        # Hairpin: the container through its own published port.
        env.fetch_in_container(f'http://{HOST_V4}:{HOST_PORT}/')
        env.nft_counters_note()
        listing = env.tool_listing()
        if listing is not None:
            text = json.dumps(listing)
            if env.container_id not in text or str(HOST_PORT) not in text:
                raise TestFailure('nft-portmap list --json does not show the container\'s port')

    with Step('podman stop (DEL)'):
        # Podman tears the network down when a container stops.
        env.podman(['stop', '--time', '0', env.container])
        found = env.state()
        if found:
            raise TestFailure('state left after podman stop: ' + '; '.join(found))

    with Step('podman start (ADD again)'):
        env.podman(['start', env.container])
        if not env.state():
            raise TestFailure('the restarted container has no port-mapping state')
        env.expect_published()
        env.fetch(env.clientns, f'http://{HOST_V4}:{HOST_PORT}/', deadline_s=15)
        env.fetch(env.clientns, f'http://[{HOST_V6}]:{HOST_PORT}/')

    with Step('podman rm'):
        env.podman(['rm', '--force', '--time', '0', env.container])

    with Step('state after rm'):
        found = env.state()
        if found:
            raise TestFailure('state left after podman rm: ' + '; '.join(found))
        leases = [n for n in os.listdir(env.path('ipam', env.network))
                  if n[0].isdigit() or ':' in n] if os.path.isdir(
                      env.path('ipam', env.network)) else []
        if leases:
            raise TestFailure(f'host-local still holds {leases}')
        p = run(env.in_ns(env.hostns, [sys.executable, '-c', FETCH,
                                       f'http://127.0.0.1:{HOST_PORT}/']), check=False)
        if env.token in p.stdout:
            raise TestFailure('the page is still served after podman rm')
        listing = env.tool_listing()
        if listing is not None and env.container_id in json.dumps(listing):
            raise TestFailure('nft-portmap list --json still shows the container after rm')


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('plugin', help='the port-mapping plugin binary (its name is its CNI type)')
    ap.add_argument('--keep', action='store_true', help='keep the temporary directory')
    ap.add_argument('--verbose', action='store_true', help='podman --log-level debug')
    opts = ap.parse_args()

    if os.geteuid() != 0:
        log('SKIP: needs root (network namespaces, Podman rootful)')
        return SKIP
    missing = [t for t in ('podman', 'runc', 'nsenter', 'nft', 'ip') if not shutil.which(t)]
    if not os.path.exists(BUSYBOX):
        missing.append(BUSYBOX)
    if missing:
        log(f'SKIP: missing {", ".join(missing)} (contrib/install-deps.sh installs them)')
        return SKIP
    if os.path.basename(opts.plugin) == 'portmap' and not shutil.which('iptables-save'):
        log('SKIP: the reference portmap needs iptables')
        return SKIP
    if not os.access(opts.plugin, os.X_OK):
        log(f'FAIL: {opts.plugin} is not an executable')
        return 1

    tmp = tempfile.mkdtemp(prefix='podman-portmap-test-')
    env = Env(opts.plugin, tmp, opts.verbose)
    status = 0
    start = time.monotonic()
    try:
        test(env)
        log('PASS')
    except (TestFailure, subprocess.TimeoutExpired) as e:
        log(f'FAIL: {e}')
        status = 1
    finally:
        with Step('cleanup'):
            env.cleanup()
        if opts.keep:
            log(f'kept {tmp}')
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    log('timings:')
    for name, secs in timings:
        log(f'  {secs:7.2f} s  {name}')
    log(f'  {time.monotonic() - start:7.2f} s  total')
    return status


if __name__ == '__main__':
    sys.exit(main())
