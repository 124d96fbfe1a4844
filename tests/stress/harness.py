# SPDX-License-Identifier: Apache-2.0
"""Shared pieces of the stress and failure tests.

The tests call the plugin binary directly, with a synthetic prevResult, the
way the last plugin of a chain is called: nft-portmap never enters
CNI_NETNS, so no container namespaces are needed. Everything runs in one
throw-away network namespace per test (see `isolated`), never in the
machine's own.

  Attachment / Conf / Mapping   what one invocation is about
  Plugin                        runs the plugin, returns an Outcome
  read_state()                  the kernel's table as a KernelState
  Model                         what the table must hold after a sequence
                                of commands, and what each command must
                                answer
"""

import copy
import dataclasses
import ipaddress
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'netns'))

import lib  # noqa: E402  (tests/netns: namespace naming, sweeping, logging)

EXIT_SKIP = 77
TABLE = ('inet', 'nft-portmap')
LOCK_DIR = '/run/nft-portmap'

log = lib.log

# Error codes (src/cni/error.hpp).
CODE_INCOMPATIBLE = 1
CODE_INVALID_CONFIG = 7
CODE_TRY_AGAIN = 11
CODE_NOT_AVAILABLE = 50
CODE_CONFLICT = 100
CODE_REFUSED = 101
CODE_UNUSABLE = 102
CODE_CHECK_FAILED = 103

# The maps of the skeleton (ruleset.hpp): data maps (host key : container
# address . port) and the guard vmaps of attachments with conditions.
DATA_MAPS = ('ports4', 'ports6', 'addrports4', 'addrports6')
GUARD_MAPS = ('guard4', 'guard6', 'addrguard4', 'addrguard6')
MAPS = DATA_MAPS + GUARD_MAPS
GUARD_OF = dict(zip(DATA_MAPS, GUARD_MAPS))

# The static rules of the skeleton as `nft list` prints them (ruleset.hpp).
# postrouting holds one rule per masq set (masq_rule_text), none of them static.
SKELETON_RULES = {
    'prerouting': ['fib daddr type local jump dispatch'],
    'output': ['fib daddr type local jump dispatch'],
    'dispatch': list(lib.DISPATCH_RULES),
    'postrouting': None,
}
# Their hooks as nft 1.0.6 prints them at the default priorities (it names
# the output chain's dstnat by its number); dispatch is a regular chain.
SKELETON_HOOKS = {
    'prerouting': 'type nat hook prerouting priority dstnat; policy accept;',
    'output': 'type nat hook output priority -100; policy accept;',
    'dispatch': None,
    'postrouting': 'type nat hook postrouting priority srcnat; policy accept;',
}

# conditionsV4 / conditionsV6 the tests use, and how `nft list` prints them
# inside a DNAT rule of the attachment's chain (conditions.hpp). The model
# only knows these: a test that needs another one adds it here.
CONDITIONS_V4 = {
    ('iifname', 'eth0'): 'iifname "eth0"',
    ('ip saddr != { 10.0.0.0/8, 192.0.2.1 }', 'iifname', 'veth*'):
        'ip saddr != { 10.0.0.0/8, 192.0.2.1 } iifname "veth*"',
    ('ip', 'saddr', '==', '192.0.2.0/24'): 'ip saddr 192.0.2.0/24',
    ('iifname != { eth0, veth* }', 'ip saddr != 10.0.0.0/8'):
        'iifname != { "eth0", "veth*" } ip saddr != 10.0.0.0/8',
}
CONDITIONS_V6 = {
    ('ip6 daddr fd00::/16',): 'ip6 daddr fd00::/16',
    ('iifname', 'eth0'): 'iifname "eth0"',
    ('ip6', 'saddr', '{ fd00::/8 }'): 'ip6 saddr { fd00::/8 }',
}


class Failure(AssertionError):
    """A property of the plugin does not hold."""


def check(condition, message):
    if not condition:
        raise Failure(message)


# -- isolation ----------------------------------------------------------------

def netns_inode(path):
    return os.stat(path).st_ino


def assert_isolated():
    """Refuses to go on anywhere but in the namespace isolated() made.

    The outer process says which namespace that is, and which one it ran in
    itself (NFTPM_STRESS_NETNS, NFTPM_STRESS_OUTER_INODE).
    """
    mine = netns_inode('/proc/self/ns/net')
    name = os.environ.get('NFTPM_STRESS_NETNS', '')
    outer = os.environ.get('NFTPM_STRESS_OUTER_INODE', '')
    if not name or not outer or mine == int(outer) or \
            mine != netns_inode(f'/run/netns/{name}'):
        raise RuntimeError('refusing to run: not inside the throw-away network namespace '
                           '(use the test without --inner)')


def enable_lockless():
    """Takes the plugin's netns lock away from every plugin this process starts.

    A read-only tmpfs over /run/nft-portmap, in this process's private mount
    namespace (`ip netns exec` made one): the plugin cannot create its lock
    file, holds no lock (file_lock.hpp: "on any failure, holds nothing"),
    and concurrent plugins race for real. What keeps them correct then is
    the generation-id compare-and-swap alone.
    """
    os.makedirs(LOCK_DIR, exist_ok=True)
    lib.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=16k,mode=0700', 'nftpm-nolock', LOCK_DIR])
    try:
        fd = os.open(os.path.join(LOCK_DIR, 'probe.lock'), os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        raise RuntimeError(f'{LOCK_DIR} is still writable: the lock would be taken')
    except OSError as e:
        if e.errno != 30:  # EROFS
            raise
    log(f'lockless: {LOCK_DIR} is a read-only tmpfs here; plugins run without their lock')


def isolated(script, label, inner_args, timeout=None):
    """Runs `script --inner ARGS` inside a fresh network namespace.

    Returns the inner process's exit status; the namespace is deleted
    afterwards whatever happens (also on SIGTERM from meson).
    """
    lib.require_root()
    lib.install_sigterm_handler()
    lib.sweep_stale_namespaces()
    name = f'{lib.NS_PREFIX}-{os.getpid()}-{label}'[:60]
    proc = lib.run(['ip', 'netns', 'add', name], check=False)
    if proc.returncode != 0:
        raise lib.Skip(f'cannot create a network namespace: {proc.stderr.strip()}')
    child = None
    try:
        lib.run(['ip', 'netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up'])
        env = dict(os.environ, NFTPM_STRESS_NETNS=name,
                   NFTPM_STRESS_OUTER_INODE=str(netns_inode('/proc/self/ns/net')))
        child = subprocess.Popen(['ip', 'netns', 'exec', name, sys.executable, script,
                                  '--inner'] + list(inner_args), env=env)
        return child.wait(timeout=timeout)
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        lib.run(['ip', 'netns', 'delete', name], check=False)


def run_main(script, tests):
    """The __main__ of a test file: main_wrapper, a Failure printed as FAIL, exit 1."""
    try:
        sys.exit(main_wrapper(script, tests))
    except Failure as e:
        print(f'FAIL: {e}')
        sys.exit(1)


def main_wrapper(script, tests, argv=None):
    """The command line of a test file: outer (namespaces) or --inner (the body).

    tests: {name: function(opts)}; a name starting with 'lockless' runs
    with enable_lockless(). Each test gets a namespace of its own.
    """
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument('--plugin', default=os.environ.get('NFTPM_PLUGIN', 'build/src/nft-portmap'))
    p.add_argument('--inner', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--seed', type=int, default=None)
    p.add_argument('--scale', type=float, default=float(os.environ.get('NFTPM_STRESS_SCALE', '1')),
                   help='multiplies rounds and operations (default $NFTPM_STRESS_SCALE or 1)')
    p.add_argument('names', nargs='*')
    opts = p.parse_args(argv)
    opts.plugin = os.path.abspath(opts.plugin)
    names = opts.names or list(tests)
    unknown = [n for n in names if n not in tests]
    if unknown:
        p.error(f'unknown test(s) {unknown}; known: {", ".join(tests)}')

    if opts.inner:
        assert_isolated()
        (name,) = names
        if name.startswith('lockless'):
            enable_lockless()
        try:
            tests[name](opts)
        except Failure as e:
            log(f'FAIL {name}: {e}')
            return 1
        except lib.Skip as e:
            log(f'SKIP {name}: {e}')
            return EXIT_SKIP
        log(f'PASS {name}')
        return 0

    try:
        if not os.access(opts.plugin, os.X_OK):
            raise FileNotFoundError(f'plugin under test not found: {opts.plugin}')
        statuses = []
        for name in names:
            extra = ['--plugin', opts.plugin, '--scale', str(opts.scale)]
            if opts.seed is not None:
                extra += ['--seed', str(opts.seed)]
            t0 = time.monotonic()
            rc = isolated(os.path.abspath(script), name[:24], extra + [name])
            log(f'{name}: exit {rc} after {time.monotonic() - t0:.1f} s')
            statuses.append(rc)
    except lib.Skip as e:
        log(f'SKIP: {e}')
        return EXIT_SKIP
    if any(s not in (0, EXIT_SKIP) for s in statuses):
        return 1
    if statuses and all(s == EXIT_SKIP for s in statuses):
        return EXIT_SKIP
    return 0


# -- what an invocation is about ---------------------------------------------------

def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xffffffffffffffff
    return h


@dataclasses.dataclass(frozen=True)
class Mapping:
    proto: str
    host_port: int
    container_port: int
    host_ip: str = None

    def json(self):
        m = {'hostPort': self.host_port, 'containerPort': self.container_port,
             'protocol': self.proto}
        if self.host_ip is not None:
            m['hostIP'] = self.host_ip
        return m


@dataclasses.dataclass(frozen=True)
class Attachment:
    net: str
    cid: str
    ifname: str = 'eth0'
    v4: str = None  # '10.1.0.2/16'
    v6: str = None  # 'fd00:1::2/64'

    @property
    def ident(self):
        return (self.net, self.cid, self.ifname)

    @property
    def chain(self):
        """pm-<hash>: the name of the record counter, and of the chain (conditions only)."""
        raw = f'{self.net}\0{self.cid}\0{self.ifname}'.encode()
        return f'pm-{fnv1a64(raw):016x}'

    @property
    def record(self):
        return self.chain

    @property
    def comment(self):
        """Uncut: compare with comment_matches(), the kernel's may be cut."""
        return f'net={self.net} id={self.cid} if={self.ifname}'

    def addr(self, family):
        p = self.v4 if family == 4 else self.v6
        return str(ipaddress.ip_interface(p).ip) if p else None

    def prev_result(self):
        ips = [{'address': p, 'interface': 0} for p in (self.v4, self.v6) if p]
        return {'cniVersion': '1.0.0',
                'interfaces': [{'name': self.ifname, 'sandbox': f'/var/run/netns/{self.cid}'}],
                'ips': ips}

    def __str__(self):
        return f'{self.net}/{self.cid}/{self.ifname}'


@dataclasses.dataclass(frozen=True)
class Conf:
    mappings: tuple = ()
    snat: bool = True
    masq_all: bool = False
    cond_v4: tuple = ()  # conditionsV4 tokens, a key of CONDITIONS_V4
    cond_v6: tuple = ()

    def conditions(self, family):
        return self.cond_v4 if family == 4 else self.cond_v6

    def guarded(self, family):
        """Whether the family's DNATs go through the guard maps and the chain."""
        return bool(self.conditions(family))


def config(att, conf, cni_version='1.0.0', prev_result=True, extra=None):
    """The stdin of the last plugin of a chain (what libcni builds)."""
    c = {'cniVersion': cni_version, 'name': att.net, 'type': 'nft-portmap'}
    if not conf.snat:
        c['snat'] = False
    if conf.masq_all:
        c['masqAll'] = True
    if conf.cond_v4:
        c['conditionsV4'] = list(conf.cond_v4)
    if conf.cond_v6:
        c['conditionsV6'] = list(conf.cond_v6)
    if conf.mappings:
        c['runtimeConfig'] = {'portMappings': [m.json() for m in conf.mappings]}
    if prev_result:
        c['prevResult'] = att.prev_result()
    c.update(extra or {})
    return c


def gc_config(net, valid, cni_version='1.1.0', key='cni.dev/valid-attachments'):
    """valid: iterable of (containerID, ifname)."""
    c = {'cniVersion': cni_version, 'name': net, 'type': 'nft-portmap'}
    if valid is not None:
        c[key] = [{'containerID': cid, 'ifname': ifn} for cid, ifn in valid]
    return c


# -- running the plugin ---------------------------------------------------------------

@dataclasses.dataclass
class Outcome:
    rc: int
    code: int = 0  # CNI error code, 0 on success
    msg: str = ''
    details: str = ''
    stdout: str = ''
    stderr: str = ''
    t0: float = 0.0
    t1: float = 0.0

    @property
    def ok(self):
        return self.rc == 0

    def __str__(self):
        if self.ok:
            return 'ok'
        return f'code {self.code}: {self.msg}' + (f' [{self.details}]' if self.details else '')


SANITIZER_REPORT = re.compile(r'runtime error:|ERROR: (Address|Leak|Undefined)Sanitizer')


def parse_outcome(rc, stdout, stderr, t0=0.0, t1=0.0):
    # A sanitizer build's report fails the test whatever the plugin answered.
    if SANITIZER_REPORT.search(stderr):
        raise Failure(f'the plugin\'s sanitizers reported an error:\n{stderr}')
    out = Outcome(rc, stdout=stdout, stderr=stderr, t0=t0, t1=t1)
    if rc != 0:
        try:
            err = json.loads(stdout)
            out.code = err.get('code', -1)
            out.msg = err.get('msg', '')
            out.details = err.get('details', '')
        except ValueError:
            out.code = -1
            out.msg = f'exit {rc}, unparseable stdout {stdout!r}, stderr {stderr!r}'
    return out


class Plugin:
    """The plugin binary, run as the last plugin of a chain."""

    def __init__(self, path, prefix=None):
        self.path = path
        self.prefix = list(prefix or [])

    def env(self, command, att=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith('CNI_')}
        env['CNI_COMMAND'] = command
        env['CNI_PATH'] = os.path.dirname(self.path)
        # In sanitizer builds: stop at the first report (UBSan goes on by default).
        env.setdefault('UBSAN_OPTIONS', 'halt_on_error=1:print_stacktrace=1')
        if att is not None:
            env['CNI_CONTAINERID'] = att.cid
            env['CNI_IFNAME'] = att.ifname
            env['CNI_NETNS'] = f'/var/run/netns/{att.cid}'
        return env

    def argv(self):
        return self.prefix + [self.path]

    def run(self, command, stdin_conf, att=None, timeout=60):
        t0 = time.monotonic()
        proc = subprocess.run(self.argv(), input=json.dumps(stdin_conf).encode(),
                              env=self.env(command, att), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, check=False)
        t1 = time.monotonic()
        return parse_outcome(proc.returncode, proc.stdout.decode(errors='replace').strip(),
                             proc.stderr.decode(errors='replace').strip(), t0, t1)

    def start(self, command, stdin_conf, att=None):
        """Starts the plugin, which then waits for its stdin (see Started.release)."""
        proc = subprocess.Popen(self.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env(command, att))
        return Started(proc, json.dumps(stdin_conf).encode())

    # Shorthands.
    def add(self, att, conf, **kw):
        return self.run('ADD', config(att, conf, **kw), att)

    def delete(self, att, conf=Conf(), **kw):
        return self.run('DEL', config(att, conf, **kw), att)

    def check(self, att, conf, **kw):
        return self.run('CHECK', config(att, conf, **kw), att)

    def gc(self, net, valid, **kw):
        return self.run('GC', gc_config(net, valid, **kw))

    def status(self, cni_version='1.1.0'):
        return self.run('STATUS', {'cniVersion': cni_version, 'name': 'status',
                                   'type': 'nft-portmap'})


class Started:
    """A plugin process blocked on its stdin: release() lets it go."""

    def __init__(self, proc, data):
        self.proc = proc
        self.data = data
        self.t0 = None

    def release(self):
        self.t0 = time.monotonic()
        self.proc.stdin.write(self.data)
        self.proc.stdin.close()
        self.proc.stdin = None  # (communicate() would flush it)

    def wait(self, timeout=120):
        stdout, stderr = self.proc.communicate(timeout=timeout)
        return parse_outcome(self.proc.returncode, stdout.decode(errors='replace').strip(),
                             stderr.decode(errors='replace').strip(), self.t0 or 0.0,
                             time.monotonic())


# -- the kernel's state -----------------------------------------------------------------

def norm_addr(text):
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def norm_key(val):
    """A JSON element key (or data) as a tuple of strings: ('tcp', '8080')."""
    if isinstance(val, dict) and 'concat' in val:
        parts = val['concat']
    else:
        parts = [val]
    return tuple(norm_addr(str(p)) for p in parts)


def norm_data(val):
    """A map element's data: ('10.1.0.2', '80') in data maps, 'jump pm-...' in vmaps."""
    if isinstance(val, dict):
        for verdict in ('jump', 'goto'):
            if verdict in val:
                return f'{verdict} {val[verdict]["target"]}'
        if 'concat' not in val:
            return json.dumps(val, sort_keys=True)  # another verdict: shown as it is
    return norm_key(val)


def parse_element(e):
    """(key tuple, data or None, comment or None) of one element of `nft -j`.

    nft 1.0.6 writes a map element as [key, data] and a set element as its
    key; a key with a comment or counter is {"elem": {"val": key, "comment":
    ..., "counter": {...}}}.
    """
    data = None
    if isinstance(e, list):
        e, raw = e
        data = norm_data(raw)
    comment = None
    if isinstance(e, dict) and 'elem' in e:
        comment = e['elem'].get('comment')
        e = e['elem']['val']
    return norm_key(e), data, comment


@dataclasses.dataclass
class KernelState:
    exists: bool
    tables: list      # every table of the namespace: ['inet nft-portmap', ...]
    maps: dict        # every set and map of our table: name -> {key tuple: (data, comment)}
    map_types: dict   # name -> (key type, data type or None)
    objects: dict     # stateful objects: name -> (type, comment); records are counters
    chains: dict      # name -> {'comment': str|None, 'hook': str|None, 'rules': [str]}
    text: str

    def chain_names(self):
        return set(self.chains)


COUNTER = re.compile(r'counter packets \d+ bytes \d+')
OBJECT_TYPES = ('counter', 'quota', 'limit', 'ct helper', 'ct timeout', 'ct expectation',
                'secmark', 'synproxy')


def parse_chains(text):
    chains = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        m = re.match(r'^chain (\S+) \{$', line)
        if m:
            current = {'comment': None, 'hook': None, 'rules': []}
            chains[m.group(1)] = current
            continue
        if current is None:
            continue
        if line == '}':
            current = None
        elif line.startswith('comment "'):
            current['comment'] = line[len('comment "'):-1]
        elif line.startswith('type '):
            current['hook'] = line
        elif line:
            current['rules'].append(COUNTER.sub('counter', line))
    return chains


def nft(*args, check_rc=True, input=None):
    return lib.run(['nft'] + list(args), check=check_rc, input=input)


def read_state():
    """Our table as the kernel has it (`nft -j` for sets, maps and objects, text for chains)."""
    tables = []
    doc = json.loads(nft('-j', 'list', 'tables').stdout or '{"nftables": []}')
    for o in doc.get('nftables', []):
        if 'table' in o:
            tables.append(f'{o["table"]["family"]} {o["table"]["name"]}')
    proc = nft('-j', 'list', 'table', *TABLE, check_rc=False)
    if proc.returncode != 0:
        if 'No such file or directory' in proc.stderr:
            return KernelState(False, tables, {}, {}, {}, {}, '')
        raise RuntimeError(f'nft list table: {proc.stderr.strip()}')
    doc = json.loads(proc.stdout)
    maps, types, objects = {}, {}, {}
    for o in doc.get('nftables', []):
        for kind in OBJECT_TYPES:
            if kind in o:
                objects[o[kind]['name']] = (kind, o[kind].get('comment'))
        m = o.get('map') or o.get('set')
        if not m:
            continue
        elems = {}
        for e in m.get('elem', []):
            key, data, comment = parse_element(e)
            elems[key] = (data, comment)
        maps[m['name']] = elems
        key_type = m.get('type')
        types[m['name']] = (' . '.join(key_type) if isinstance(key_type, list) else key_type,
                            m.get('map'))
    text = nft('list', 'table', *TABLE).stdout
    return KernelState(True, tables, maps, types, objects, parse_chains(text), text)


def ruleset_snapshot():
    """Everything of the namespace, with handles: equal snapshots mean nothing changed."""
    return nft('-a', 'list', 'ruleset').stdout + nft('-j', '-a', 'list', 'ruleset').stdout


# -- the model --------------------------------------------------------------------------

def family_of(addr):
    return 6 if ':' in addr else 4


def plan_rules(att, conf):
    """makePlan (ruleset.cpp): [(family, Mapping with normalised hostIP, container addr)]."""
    rules = []
    for m in conf.mappings:
        host_ip = m.host_ip
        if host_ip is not None and ipaddress.ip_address(host_ip).is_unspecified:
            host_ip = None
        mm = dataclasses.replace(m, host_ip=norm_addr(host_ip) if host_ip else None)
        for fam in (4, 6):
            addr = att.addr(fam)
            if addr is None:
                continue
            if mm.host_ip is not None and family_of(mm.host_ip) != fam:
                continue
            r = (fam, mm, addr)
            if r not in rules:
                rules.append(r)
    return rules


def port_key(rule):
    """The data-map element of a rule: (map, key tuple)."""
    fam, m, _ = rule
    if m.host_ip is None:
        return (f'ports{fam}', (m.proto, str(m.host_port)))
    return (f'addrports{fam}', (m.host_ip, m.proto, str(m.host_port)))


def guard_key(rule):
    """The guard-vmap element of a rule of a family with conditions."""
    name, key = port_key(rule)
    return (GUARD_OF[name], key)


def key_text(key):
    return ' . '.join(key[1])


def is_masq(name):
    return name.startswith('masq')


def masq_set_name(fam, length):
    return f'masq{fam}-{length}'


def masq_sources(att, conf, rules, fam):
    """masqSources (ruleset.cpp): the source networks masqueraded towards the container.

    Its subnet (hairpin) and, for IPv4, 127.0.0.0/8 (localhost); masqAll: /0.
    """
    addr = att.addr(fam)
    if not conf.snat or addr is None or not any(r[0] == fam for r in rules):
        return []
    if conf.masq_all:
        return [ipaddress.ip_network('0.0.0.0/0' if fam == 4 else '::/0')]
    out = [ipaddress.ip_interface(att.v4 if fam == 4 else att.v6).network]
    if fam == 4:
        out.append(ipaddress.ip_network('127.0.0.0/8'))
    return out


def plan_elements(att, conf):
    """planElements (ruleset.cpp): [((set, key tuple), data)], unique by key.

    Data-map elements in rule order (the first rule of a key wins), data
    (container address, port); then the guard elements of families with
    conditions, data 'jump pm-<hash>'; then masq elements (container
    address, source network), data None.
    """
    rules = plan_rules(att, conf)
    out = {}
    for r in rules:
        out.setdefault(port_key(r), (r[2], str(r[1].container_port)))
    for r in rules:
        if conf.guarded(r[0]):
            out.setdefault(guard_key(r), f'jump {att.chain}')
    for fam in (4, 6):
        for net in masq_sources(att, conf, rules, fam):
            out.setdefault((masq_set_name(fam, net.prefixlen),
                            (att.addr(fam), str(net.network_address))), None)
    return list(out.items())


def plan_keys(att, conf):
    """planKeys: data-map keys in rule order, then guard keys, then masq keys."""
    return [k for k, _ in plan_elements(att, conf)]


def masq_rule_text(name):
    """The postrouting rule of masq set `name` ("masq4-24"), as `nft list` prints it."""
    fam, length = int(name[len('masq')]), int(name.split('-')[1])
    ipk = 'ip' if fam == 4 else 'ip6'
    mask = ipaddress.ip_network(f'{"0.0.0.0" if fam == 4 else "::"}/{length}').netmask
    return f'ct status dnat {ipk} daddr . {ipk} saddr & {mask} @{name} counter masquerade'


def condition_text(fam, tokens):
    table = CONDITIONS_V4 if fam == 4 else CONDITIONS_V6
    if tuple(tokens) not in table:
        raise KeyError(f'conditionsV{fam} {list(tokens)} is not in harness.CONDITIONS_V{fam}')
    return table[tuple(tokens)]


def dnat_rule_text(rule, conditions=''):
    """A DNAT rule of an attachment's chain as `nft list` prints it."""
    fam, m, addr = rule
    ipk = 'ip' if fam == 4 else 'ip6'
    if m.host_ip is None:
        match = f'meta nfproto ipv{fam} {m.proto} dport {m.host_port}'
    else:
        match = f'{ipk} daddr {m.host_ip} {m.proto} dport {m.host_port}'
    if conditions:
        match += ' ' + conditions
        # nft hides the meta nfproto that a later ip/ip6 address match implies.
        if re.search(rf'(^| ){ipk} (saddr|daddr) ', conditions):
            match = match.replace(f'meta nfproto ipv{fam} ', '', 1)
    to = f'{addr}:{m.container_port}' if fam == 4 else f'[{addr}]:{m.container_port}'
    return f'{match} counter dnat {ipk} to {to}'


def chain_rule_texts(att, conf):
    """The rules of the attachment's chain pm-<hash>; None when it has none (no conditions)."""
    rules = [r for r in plan_rules(att, conf) if conf.guarded(r[0])]
    if not rules:
        return None
    return [dnat_rule_text(r, condition_text(r[0], conf.conditions(r[0]))) for r in rules] + \
        ['accept']


def record_of(att, conf):
    """What the record pm-<hash> encodes (encodeRecord), with the conditions themselves."""
    return (tuple(plan_rules(att, conf)), conf.snat, conf.masq_all,
            tuple(conf.cond_v4), tuple(conf.cond_v6))


PORT_WORDS_FAMILY = {'ports4': 'IPv4', 'ports6': 'IPv6'}


def port_words(mapname, key):
    """How a conflict message names a data-map key: 'tcp port 8080 on every IPv4 address'."""
    mapname = {g: d for d, g in GUARD_OF.items()}.get(mapname, mapname)
    if mapname in PORT_WORDS_FAMILY:
        return f'{key[0]} port {key[1]} on every {PORT_WORDS_FAMILY[mapname]} address'
    return f'{key[1]} port {key[2]} on {key[0]}'


@dataclasses.dataclass
class Expect:
    """What one command must answer: success, or one of these codes."""
    codes: tuple = (0,)
    owner_of: dict = None  # conflict: (map, key text) -> attachments that hold it
    note: str = ''

    def accepts(self, out):
        if self.codes == (0,):
            return out.ok, 'expected success'
        if out.ok:
            return False, f'expected code {"/".join(map(str, self.codes))}, got success'
        if out.code not in self.codes:
            return False, f'expected code {"/".join(map(str, self.codes))}'
        if out.code == CODE_CONFLICT and self.owner_of is not None:
            mapname, text = conflict_key(out)
            holders = self.owner_of.get((mapname, text)) if mapname else None
            if holders is None:
                return False, (f'conflict names key {text!r} of map {mapname}, which is not one '
                               f'of the contested keys {sorted(self.owner_of)}')
            named = [h for h in holders if owner_named(out.msg, h)]
            if not named:
                return False, (f'conflict on {mapname} {text} must name the owner '
                               f'{" or ".join(map(str, holders))}')
        return True, ''


def owner_named(msg, att):
    return (f'container {att.cid} (network {att.net}, interface {att.ifname})' in msg)


class Model:
    """The table the plugin must have built, from the commands and their answers."""

    def __init__(self):
        self.skeleton = False
        self.masq_sets = set()  # 'masq4-24', ...: made when first needed, kept with the table
        self.present = {}  # Attachment -> Conf
        self.owner = {}    # (set, key tuple) -> Attachment

    def clone(self):
        return copy.deepcopy(self)

    def holders(self, keys, att):
        """Of keys, those another attachment owns: {(map, key text): {owner}}."""
        out = {}
        for k in keys:
            o = self.owner.get(k)
            if o is not None and o != att and not is_masq(k[0]):
                out.setdefault((k[0], key_text(k)), set()).add(o)
        return out

    def add(self, att, conf):
        """ADD: returns its Expect and applies it."""
        if not conf.mappings:
            return Expect(note='no mappings: passes the result through')
        if not plan_rules(att, conf):
            self.delete(att)
            return Expect(note='no mapping applies: as DEL')
        keys = plan_keys(att, conf)
        taken = self.holders(keys, att)
        if taken:
            return Expect((CODE_CONFLICT,), taken, note='conflict')
        self._drop_keys(att)
        for k in keys:
            # A masq element of another attachment (a stale one: IPAM gave
            # this container its address) is taken over.
            self.owner[k] = att
        self.present[att] = conf
        self.skeleton = True
        self.masq_sets.update(k[0] for k in keys if is_masq(k[0]))
        return Expect(note='published')

    def _drop_keys(self, att):
        for k in [k for k, o in self.owner.items() if o == att]:
            del self.owner[k]

    def delete(self, att):
        note = 'deleted' if att in self.present else 'nothing to delete'
        self._drop_keys(att)
        self.present.pop(att, None)
        return Expect(note=note)

    def check(self, att, conf):
        rules = plan_rules(att, conf)
        if not rules:
            return Expect(note='nothing to check')
        have = self.present.get(att)
        if have is None or not self.skeleton:
            return Expect((CODE_CHECK_FAILED,), note='absent')
        if record_of(att, conf) != record_of(att, have):
            return Expect((CODE_CHECK_FAILED,), note='differs')
        if any(self.owner.get(k) != att for k in plan_keys(att, conf)):
            return Expect((CODE_CHECK_FAILED,), note='an element was taken over')
        return Expect()

    def gc(self, net, valid):
        """valid: set of (cid, ifname). Returns the attachments it removes."""
        victims = [a for a in self.present if a.net == net and (a.cid, a.ifname) not in valid]
        for a in victims:
            self.delete(a)
        return victims

    def flush(self):
        """`nft flush ruleset`."""
        self.skeleton = False
        self.masq_sets.clear()
        self.present.clear()
        self.owner.clear()

    # -- comparison with the kernel --

    def expected_chains(self):
        chains = {}
        for att, conf in self.present.items():
            rules = chain_rule_texts(att, conf)
            if rules:
                chains[att.chain] = {'comment': att.comment, 'hook': None, 'rules': rules}
        return chains

    def expected_elements(self):
        """{(set, key tuple): (data, owner comment)} of every element the table must hold."""
        out = {}
        for att, conf in self.present.items():
            for k, data in plan_elements(att, conf):
                if self.owner.get(k) == att:
                    out[k] = (data, att.comment)
        return out

    def diff(self, st):
        """Differences between this model and the kernel's table (empty: equal)."""
        out = []
        if not self.skeleton:
            if st.exists:
                out.append('table inet nft-portmap exists, expected none')
            return out
        if not st.exists:
            return ['table inet nft-portmap is missing']
        if st.tables.count('inet nft-portmap') != 1:
            out.append(f'tables: {st.tables}')
        sets = set(MAPS) | self.masq_sets
        for name in sorted(sets - set(st.maps)):
            out.append(f'set {name} is missing')
        for name in sorted(set(st.maps) - sets):
            out.append(f'set {name} ({len(st.maps[name])} elements) exists, expected none')
        for name, rules in SKELETON_RULES.items():
            c = st.chains.get(name)
            if c is None:
                out.append(f'base chain {name} is missing')
                continue
            have = c['rules']
            if rules is None:
                # postrouting: one rule per masq set, in the order the sets
                # were made (which concurrent ADDs do not fix).
                rules = sorted(masq_rule_text(n) for n in self.masq_sets)
                have = sorted(have)
            if have != rules:
                out.append(f'chain {name} has rules {c["rules"]}, expected {rules}')
            if c['hook'] != SKELETON_HOOKS[name]:
                out.append(f'chain {name} is {c["hook"]!r}, expected {SKELETON_HOOKS[name]!r}')

        want = self.expected_chains()
        have = {n: c for n, c in st.chains.items() if n not in SKELETON_RULES}
        names = {a.chain: a for a in self.present}
        for n in sorted(set(want) | set(have)):
            if n not in have:
                out.append(f'chain {n} of {names.get(n)} is missing')
            elif n not in want:
                out.append(f'chain {n} ({have[n]["comment"]}) exists, expected none')
            elif (have[n]['rules'] != want[n]['rules'] or have[n]['hook'] is not None or
                  not comment_matches(have[n]['comment'], want[n]['comment'])):
                out.append(f'chain {n} of {names.get(n)}: {have[n]} != expected {want[n]}')

        want_o = {a.record: a for a in self.present}
        for n in sorted(set(want_o) | set(st.objects)):
            if n not in st.objects:
                out.append(f'record counter {n} of {want_o[n]} is missing')
            elif n not in want_o:
                out.append(f'{st.objects[n][0]} {n} (comment {st.objects[n][1]!r}) exists, '
                           f'expected none')
            elif (st.objects[n][0] != 'counter' or
                  not comment_matches(st.objects[n][1], want_o[n].comment)):
                out.append(f'record {n} of {want_o[n]}: {st.objects[n]} != counter with comment '
                           f'{want_o[n].comment!r}')

        want_e = self.expected_elements()
        have_e = {(name, key): v for name, elems in st.maps.items() for key, v in elems.items()}
        for k in sorted(set(want_e) | set(have_e)):
            text = f'element {k[0]} {" . ".join(k[1])}'
            if k not in have_e:
                out.append(f'{text} missing (expected {want_e[k]})')
            elif k not in want_e:
                out.append(f'{text} : {have_e[k]} not expected')
            elif (have_e[k][0] != want_e[k][0] or
                  not comment_matches(have_e[k][1], want_e[k][1])):
                out.append(f'{text} : {have_e[k]} != {want_e[k]}')
        return out


COMMENT = re.compile(r'^net=(\S+) id=(\S+) if=(\S+)$')


def cut_suffix(field):
    """'~' and 8 hex digits of FNV-1a-32 of the whole field (ruleset.cpp)."""
    h = 2166136261
    for b in field.encode():
        h = ((h ^ b) * 16777619) & 0xffffffff
    return f'~{h:08x}'


def comment_matches(have, want):
    """Whether a comment read from the kernel is want, or want with fields cut.

    ruleset.hpp keeps comments within nft's 128 bytes by cutting the
    container ID, then the network, then the ifname; a cut field keeps a
    prefix and ends in cut_suffix() of the whole field.
    """
    if have == want:
        return True
    mh, mw = COMMENT.match(have or ''), COMMENT.match(want or '')
    if not mh or not mw or len(have.encode()) > 127:
        return False
    for h, w in zip(mh.groups(), mw.groups()):
        if h == w:
            continue
        suffix = cut_suffix(w)
        if not h.endswith(suffix) or not w.startswith(h[:-len(suffix)]):
            return False
    return True


CONFLICT_MAP = re.compile(r' \(map (\S+)\); nothing was changed$')


def conflict_key(out):
    """(map, key text) of a conflict: the key is its details, the map is named in its message."""
    m = CONFLICT_MAP.search(out.msg or '')
    return (m.group(1) if m else None), out.details


def expect_state(model, what):
    """Compares the kernel with the model; raises Failure listing every difference."""
    st = read_state()
    diff = model.diff(st)
    if diff:
        shown = '\n  '.join(diff[:40])
        more = f'\n  ... {len(diff) - 40} more' if len(diff) > 40 else ''
        raise Failure(f'{what}: the kernel differs from the model:\n  {shown}{more}\n'
                      f'--- nft list table ---\n{st.text}')
    return st


def expect_outcome(expect, out, what):
    ok, why = expect.accepts(out)
    if not ok:
        raise Failure(f'{what}: {why}; got {out}' + (f'\nstderr: {out.stderr}' if out.stderr
                                                       else ''))
