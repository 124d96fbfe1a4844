#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A model of nft-portmap's documented behaviour, for testing the test harness.

Debian's reference portmap (1.1.1, iptables) cannot validate the scenarios
that are about nft-portmap's own properties (its table, masqAll, nft
conditions, stateless DEL, GC, exclusive ports, CHECK, `list`). This model
implements DESIGN.md and the layout comment of src/portmap/ruleset.hpp (v2:
data maps, guard maps and chains for conditions, masq sets per prefix
length, records as counter objects) in Python over the `nft` and
`conntrack` CLIs, so every scenario can be shown to pass against
*something* that behaves as specified:

    tests/netns/run_scenario.py --plugin tests/netns/model_plugin.py --type nft-portmap --all

It is not the product and is not installed: it is neither atomic across
its read and write, nor fast (DEL walks every set), nor careful with other
users of the table. Its records hold only the comment, so DEL always takes
the plugin's fallback path (walking the sets by comment).
"""

import ipaddress
import json
import os
import re
import subprocess
import sys

import lib  # tests/netns, next to this script: the skeleton's expected rules

TABLE = 'inet nft-portmap'
SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']
COMMENT_MAX = 127
ERR_CONFLICT, ERR_CHECK, ERR_OTHER = 100, 103, 999

DISPATCH = list(lib.DISPATCH_RULES)
HOOKS = [
    'chain prerouting { type nat hook prerouting priority dstnat; }',
    'chain output { type nat hook output priority -100; }',
    'chain postrouting { type nat hook postrouting priority srcnat; }',
]
STATIC = [
    'add rule {t} prerouting fib daddr type local jump dispatch',
    'add rule {t} output fib daddr type local jump dispatch',
] + ['add rule {t} dispatch ' + r for r in DISPATCH]

SKELETON = f'''
table {TABLE} {{
  map ports4 {{ type inet_proto . inet_service : ipv4_addr . inet_service; counter; }}
  map ports6 {{ type inet_proto . inet_service : ipv6_addr . inet_service; counter; }}
  map addrports4 {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; counter; }}
  map addrports6 {{ type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; counter; }}
  map guard4 {{ type inet_proto . inet_service : verdict; }}
  map guard6 {{ type inet_proto . inet_service : verdict; }}
  map addrguard4 {{ type ipv4_addr . inet_proto . inet_service : verdict; }}
  map addrguard6 {{ type ipv6_addr . inet_proto . inet_service : verdict; }}
  chain dispatch {{ }}
  {chr(10).join(HOOKS)}
}}
'''


class PluginError(Exception):
    def __init__(self, msg, code=ERR_OTHER, details=''):
        super().__init__(msg)
        self.code = code
        self.details = details


def nft(script):
    proc = subprocess.run(['nft', '-f', '-'], input=script, text=True, capture_output=True,
                          check=False)
    if proc.returncode != 0:
        raise PluginError(proc.stderr.strip())


# -- names and comments ---------------------------------------------------------

def fnv(data, bits):
    h, prime = (0xcbf29ce484222325, 0x100000001b3) if bits == 64 else (2166136261, 16777619)
    for b in data:
        h = ((h ^ b) * prime) & ((1 << bits) - 1)
    return h


def record_name(network, cid, ifname):
    return 'pm-%016x' % fnv(b'\0'.join(x.encode() for x in (network, cid, ifname)), 64)


def attachment_comment(network, cid, ifname):
    """"net=N id=I if=F", fields cut (ID first, to no less than 12) to fit 127 bytes."""
    fields = [network, cid, ifname]

    def text():
        return f'net={fields[0]} id={fields[1]} if={fields[2]}'
    for i, keep in ((1, 12), (0, 1), (2, 1)):
        excess = len(text().encode()) - COMMENT_MAX
        if excess > 0:
            f = fields[i]
            target = max(len(f) - excess - 9, keep)
            if target + 9 < len(f):
                fields[i] = f[:target] + '~%08x' % fnv(f.encode(), 32)
    return text()


def parse_comment(comment):
    m = re.fullmatch(r'net=(\S+) id=(\S+) if=(\S+)', comment or '')
    return m.groups() if m else None


def describe_owner(comment):
    owner = parse_comment(comment)
    if owner is None:
        return f'an element with comment "{comment}" (not an nft-portmap attachment)'
    return f'container {owner[1]} (network {owner[0]}, interface {owner[2]})'


def field_matches(field, value):
    if field == value:
        return True
    return (len(field) >= 9 and field[-9] == '~' and value.startswith(field[:-9])
            and len(value) > len(field) - 9 and field[-8:] == '%08x' % fnv(value.encode(), 32))


# -- the table as nft -j shows it -------------------------------------------------

def table_state():
    """Our table's JSON objects, or None if it does not exist."""
    proc = subprocess.run(['nft', '-j', 'list', 'table'] + TABLE.split(), text=True,
                          capture_output=True, check=False)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)['nftables']


def scalar_text(v):
    if isinstance(v, dict) and 'concat' in v:
        return ' . '.join(str(x) for x in v['concat'])
    if isinstance(v, dict) and 'jump' in v:
        return f'jump {v["jump"]["target"]}'
    return str(v)


def elements(objs):
    """{(set, key text): (data text or None, comment, counter)} of every element."""
    out = {}
    for o in objs or []:
        s = o.get('map') or o.get('set')
        if not s:
            continue
        for e in s.get('elem', []):
            key, data = (e[0], e[1]) if isinstance(e, list) and len(e) == 2 else (e, None)
            comment = counter = None
            if isinstance(key, dict) and 'elem' in key:
                comment, counter = key['elem'].get('comment'), key['elem'].get('counter')
                key = key['elem']['val']
            out[(s['name'], scalar_text(key))] = (
                None if data is None else scalar_text(data), comment, counter)
    return out


def of_kind(objs, kind):
    return [o[kind] for o in objs or [] if kind in o]


def masq_rule_sets(objs):
    """{set name: rule handle} of the masquerade rules in postrouting."""
    out = {}
    for r in of_kind(objs, 'rule'):
        if r['chain'] == 'postrouting':
            m = re.search(r'"@(masq[46]-\d+)"', json.dumps(r['expr']))
            if m:
                out[m.group(1)] = r['handle']
    return out


def skeleton_problem(objs):
    rules = of_kind(objs, 'rule')
    chains = {c['name'] for c in of_kind(objs, 'chain')}
    for name, want in (('prerouting', 1), ('output', 1), ('dispatch', len(DISPATCH))):
        if name not in chains:
            return f'chain {name} of table {TABLE} is missing'
        have = sum(1 for r in rules if r['chain'] == name)
        if have != want:
            return f'chain {name} has {have} rules, expected {want}'
    return None


# -- the plan of one attachment -----------------------------------------------------

def container_addresses(prev, ifname):
    """First IPv4 and IPv6 (with prefix) on the sandbox interface, as the reference picks."""
    ifaces = prev.get('interfaces') or []
    found = {}
    for ip in prev.get('ips') or []:
        idx = ip.get('interface')
        if idx is not None and 0 <= idx < len(ifaces):
            if ifaces[idx].get('name') != ifname or not ifaces[idx].get('sandbox'):
                continue
        fam = 6 if ':' in ip['address'] else 4
        found.setdefault(fam, ip['address'])
    return found.get(4), found.get(6)


class Plan:
    """Elements {(set, key): data}, chain rules, masq sets and UDP ports of one ADD."""

    def __init__(self, conf, ifname):
        self.network, self.cid, self.ifname = conf['name'], os.environ['CNI_CONTAINERID'], ifname
        self.name = record_name(self.network, self.cid, ifname)
        self.comment = attachment_comment(self.network, self.cid, ifname)
        self.elements, self.chain_rules, self.masq, self.udp = {}, [], {}, set()
        v4, v6 = container_addresses(conf['prevResult'], ifname)
        self.v4 = v4
        for cidr in (v4, v6):
            if cidr:
                self._family(conf, ipaddress.ip_interface(cidr))

    def _family(self, conf, iface):
        fam, addr = iface.version, str(iface.ip)
        ipk = 'ip' if fam == 4 else 'ip6'
        cond = ' '.join(conf.get(f'conditionsV{fam}') or [])
        used = False
        for m in conf['runtimeConfig']['portMappings']:
            host_ip = m.get('hostIP') or None
            if host_ip and ipaddress.ip_address(host_ip).is_unspecified:
                host_ip = None
            if host_ip and ipaddress.ip_address(host_ip).version != fam:
                continue
            used = True
            proto, hp, cp = m['protocol'].lower(), m['hostPort'], m['containerPort']
            if host_ip:
                key, dmap, gmap = f'{host_ip} . {proto} . {hp}', f'addrports{fam}', f'addrguard{fam}'
            else:
                key, dmap, gmap = f'{proto} . {hp}', f'ports{fam}', f'guard{fam}'
            self.elements.setdefault((dmap, key), f'{addr} . {cp}')
            if cond:
                self.elements.setdefault((gmap, key), f'jump {self.name}')
                daddr = f'{ipk} daddr {host_ip} ' if host_ip else ''
                to = f'{addr}:{cp}' if fam == 4 else f'[{addr}]:{cp}'
                self.chain_rules.append(f'meta nfproto ipv{fam} {daddr}meta l4proto {proto} '
                                        f'th dport {hp} {cond} counter dnat {ipk} to {to}')
            if proto == 'udp':
                self.udp.add(hp)
        if not used or not conf.get('snat', True):
            return
        sources = ([ipaddress.ip_network('0.0.0.0/0' if fam == 4 else '::/0')]
                   if conf.get('masqAll', False) else
                   [iface.network] + ([ipaddress.ip_network('127.0.0.0/8')] if fam == 4 else []))
        for net in sources:
            s = f'masq{fam}-{net.prefixlen}'
            self.masq[s] = (fam, net)
            self.elements[(s, f'{addr} . {net.network_address}')] = None

    def element_lines(self, verb='add'):
        out = []
        for (s, key), data in self.elements.items():
            counter = 'counter ' if 'ports' in s else ''
            tail = f' : {data}' if data else ''
            out.append(f'{verb} element {TABLE} {s} {{ {key} {counter}comment '
                       f'"{self.comment}"{tail} }}')
        return out


def masq_set_lines(name, fam, net):
    ipk = 'ip' if fam == 4 else 'ip6'
    typ = 'ipv4_addr' if fam == 4 else 'ipv6_addr'
    mask = net.netmask
    return [f'add set {TABLE} {name} {{ type {typ} . {typ}; }}',
            f'add rule {TABLE} postrouting ct status dnat {ipk} daddr . {ipk} saddr & {mask} '
            f'@{name} counter masquerade']


def attachment_removal(objs, network, cid, ifname):
    """nft commands that remove everything of one attachment, and its UDP host ports."""
    name = record_name(network, cid, ifname)
    lines, udp = [], set()
    for (s, key), (_, comment, _) in elements(objs).items():
        owner = parse_comment(comment)
        if owner and all(field_matches(f, v) for f, v in zip(owner, (network, cid, ifname))):
            lines.append(f'delete element {TABLE} {s} {{ {key} }}')
            if ' . udp . ' in f' . {key}':
                udp.add(int(key.split(' . ')[-1]))
    chains = {c['name'] for c in of_kind(objs, 'chain')}
    if name in chains:
        lines += [f'flush chain {TABLE} {name}', f'delete chain {TABLE} {name}']
    for c in of_kind(objs, 'counter'):
        if c['name'] == name or c['name'].startswith(name + '-'):
            lines.append(f'delete counter {TABLE} {c["name"]}')
    return lines, udp


def flush_udp(ports):
    for port in ports:
        for fam in ('ipv4', 'ipv6'):
            subprocess.run(['conntrack', '-D', '-f', fam, '-p', 'udp', '--orig-port-dst',
                            str(port)], capture_output=True, check=False)


# -- commands -------------------------------------------------------------------------

def cmd_add(conf):
    prev = conf.get('prevResult')
    if prev is None:
        raise PluginError('must be called as chained plugin')
    if not (conf.get('runtimeConfig') or {}).get('portMappings'):
        return prev
    p = Plan(conf, os.environ['CNI_IFNAME'])
    objs = table_state()
    have = elements(objs)
    # Another owner's key is a conflict (masq keys follow the address: replaced).
    lines = []
    for (s, key) in p.elements:
        old = have.get((s, key))
        if old is None or old[1] == p.comment:
            continue
        if s.startswith('masq'):
            lines.append(f'delete element {TABLE} {s} {{ {key} }}')
            continue
        dmap = s.replace('guard', 'ports')
        parts = key.split(' . ')
        where = f'on {parts[0]}' if len(parts) == 3 else \
            f'on every IPv{dmap[-1]} address'
        raise PluginError(f'host {parts[-2]} port {parts[-1]} {where} is already published by '
                          f'{describe_owner(old[1])} (map {s}); nothing was changed',
                          ERR_CONFLICT, key)
    if objs is None:
        lines = [SKELETON] + [x.format(t=TABLE) for x in STATIC]
        masq = {}
    else:
        removal, _ = attachment_removal(objs, p.network, p.cid, p.ifname)
        lines = removal + lines
        masq = masq_rule_sets(objs)
        if skeleton_problem(objs):
            # `nft flush table`: rewrite the static rules and the masq sets' rules.
            lines = [f'flush chain {TABLE} {c}' for c in ('prerouting', 'output', 'dispatch',
                                                          'postrouting')] + lines
            lines += [x.format(t=TABLE) for x in STATIC]
            sets = {s['name'] for s in of_kind(objs, 'set')}
            for s in sorted(sets):
                m = re.fullmatch(r'masq([46])-(\d+)', s)
                if m:
                    fam = int(m.group(1))
                    net = ipaddress.ip_network(('0.0.0.0' if fam == 4 else '::') + '/' + m.group(2))
                    lines += masq_set_lines(s, fam, net)[1:]
            masq = {s: 0 for s in sets}
    for s, (fam, net) in p.masq.items():
        if s not in masq:
            lines += masq_set_lines(s, fam, net)
    lines.append(f'add counter {TABLE} {p.name} {{ comment "{p.comment}"; }}')
    if p.chain_rules:
        lines.append(f'add chain {TABLE} {p.name} {{ comment "{p.comment}"; }}')
        lines += [f'add rule {TABLE} {p.name} {r}' for r in p.chain_rules + ['accept']]
    lines += p.element_lines('create')
    nft('\n'.join(lines) + '\n')
    if p.v4 and p.masq and not conf.get('masqAll'):
        route = subprocess.run(['ip', '-o', 'route', 'get', p.v4.split('/')[0]],
                               capture_output=True, text=True, check=False).stdout
        dev = re.search(r' dev (\S+)', route)
        if dev:
            with open(f'/proc/sys/net/ipv4/conf/{dev.group(1)}/route_localnet', 'w') as f:
                f.write('1')
    flush_udp(p.udp)
    return prev


def delete_attachment(network, cid, ifname):
    objs = table_state()
    if objs is None:
        return
    lines, udp = attachment_removal(objs, network, cid, ifname)
    if lines:
        nft('\n'.join(lines) + '\n')
    flush_udp(udp)


def cmd_check(conf):
    def failed(what):
        return PluginError(f'CHECK: {what}', ERR_CHECK)
    if conf.get('prevResult') is None:
        raise PluginError('Required prevResult missing')
    if not (conf.get('runtimeConfig') or {}).get('portMappings'):
        return
    p = Plan(conf, os.environ['CNI_IFNAME'])
    objs = table_state()
    if objs is None:
        raise failed(f'table {TABLE} is missing (was the ruleset flushed?)')
    problem = skeleton_problem(objs)
    if problem:
        raise failed(problem)
    if p.name not in {c['name'] for c in of_kind(objs, 'counter')}:
        raise failed(f'record counter {p.name} of this attachment is missing')
    have_rules = masq_rule_sets(objs)
    for s in p.masq:
        if s not in have_rules:
            raise failed(f'chain postrouting has no masquerade rule for set {s}')
    have = elements(objs)
    for (s, key), data in p.elements.items():
        if (s, key) not in have:
            raise failed(f'element {key} is missing from {s}')
        hdata, comment, _ = have[(s, key)]
        if comment != p.comment:
            raise failed(f'element {key} of {s} belongs to {describe_owner(comment)}')
        if hdata != data:
            raise failed(f'element {key} of {s} maps to {hdata}, expected {data}')
    if p.chain_rules and p.name not in {c['name'] for c in of_kind(objs, 'chain')}:
        raise failed(f'chain {p.name} of this attachment is missing')


def cmd_gc(conf):
    valid = {(a['containerID'], a['ifname']) for a in conf.get('cni.dev/valid-attachments', [])}
    objs = table_state()
    owners = {c.get('comment') for c in of_kind(objs, 'counter')}
    owners |= {comment for _, comment, _ in elements(objs).values()}
    for owner in filter(None, map(parse_comment, owners)):
        if field_matches(owner[0], conf['name']) and (owner[1], owner[2]) not in valid:
            delete_attachment(conf['name'], owner[1], owner[2])


def cmd_list(args):
    """`nft-portmap list [--json]`: one row per data-map element."""
    if any(a != '--json' for a in args):
        print(f'unknown option {[a for a in args if a != "--json"][0]}', file=sys.stderr)
        return 2
    objs = table_state()
    rows = []
    if objs is None:
        print(f'table {TABLE} does not exist: nothing is published', file=sys.stderr)
    for (s, key), (data, comment, counter) in sorted(elements(objs).items()):
        if not re.fullmatch(r'(addr)?ports[46]', s) or data is None:
            continue
        owner = parse_comment(comment) or (None, None, None)
        parts, (caddr, cport) = key.split(' . '), data.split(' . ')
        cut = any('~' in f for f in owner if f)
        rows.append({'network': owner[0], 'containerID': owner[1], 'ifname': owner[2],
                     'record': '' if cut or not owner[0] else record_name(*owner),
                     'family': f'ipv{s[-1]}', 'protocol': parts[-2],
                     'hostIP': parts[0] if len(parts) == 3 else None,
                     'hostPort': int(parts[-1]), 'containerIP': caddr,
                     'containerPort': int(cport), 'packets': (counter or {}).get('packets', 0),
                     'bytes': (counter or {}).get('bytes', 0)})
    if args:
        print(json.dumps(rows, indent=2))
    else:
        print('NETWORK CONTAINER IFNAME FAMILY PROTOCOL HOST CONTAINER PACKETS')
        for r in rows:
            print(f'{r["network"]} {r["containerID"]} {r["ifname"]} {r["family"]} '
                  f'{r["protocol"]} {r["hostIP"] or "*"}:{r["hostPort"]} '
                  f'{r["containerIP"]}:{r["containerPort"]} {r["packets"]}')
    return 0


def main(argv):
    if argv[1:2] == ['--help']:
        print('Usage: model_plugin.py [list [--json] | --version]  (or as a CNI plugin)')
        return 0
    if argv[1:2] == ['--version']:
        print('nft-portmap model')
        return 0
    if argv[1:2] == ['list']:
        return cmd_list(argv[2:])
    command = os.environ.get('CNI_COMMAND')
    if command == 'VERSION':
        print(json.dumps({'cniVersion': '1.1.0', 'supportedVersions': SUPPORTED}))
        return 0
    conf = json.load(sys.stdin)
    try:
        if command == 'ADD':
            result = cmd_add(conf)
            result['cniVersion'] = conf['cniVersion']
            print(json.dumps(result))
        elif command == 'DEL':
            delete_attachment(conf['name'], os.environ['CNI_CONTAINERID'],
                              os.environ['CNI_IFNAME'])
        elif command == 'CHECK':
            cmd_check(conf)
        elif command == 'GC':
            cmd_gc(conf)
        elif command != 'STATUS':
            raise PluginError(f'unknown CNI_COMMAND: {command}')
    except PluginError as e:
        out = {'cniVersion': conf.get('cniVersion'), 'code': e.code, 'msg': str(e)}
        if e.details:
            out['details'] = e.details
        print(json.dumps(out))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
