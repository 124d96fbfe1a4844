#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A model of nft-portmap's documented behaviour, for testing the test harness.

Debian's reference portmap (1.1.1, iptables) cannot validate the scenarios
that are about nft-portmap's own properties (its table, masqAll, nft
conditions, stateless DEL, GC, exclusive ports, CHECK). This model
implements DESIGN.md and the layout comment of src/portmap/ruleset.hpp in a
few lines of Python over the `nft` and `conntrack` CLIs, so every scenario
can be shown to pass against *something* that behaves as specified:

    tests/netns/run_scenario.py --plugin tests/netns/model_plugin.py --type nft-portmap --all

It is not the product and is not installed: it is neither atomic across
its read and write, nor fast, nor careful with other users of the table.
"""

import hashlib
import ipaddress
import json
import os
import re
import subprocess
import sys

TABLE = 'inet nft-portmap'
SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']

SKELETON = f'''
table {TABLE} {{
  map ports4 {{ type inet_proto . inet_service : verdict; }}
  map ports6 {{ type inet_proto . inet_service : verdict; }}
  map addrports4 {{ type ipv4_addr . inet_proto . inet_service : verdict; }}
  map addrports6 {{ type ipv6_addr . inet_proto . inet_service : verdict; }}
  map masq4 {{ type ipv4_addr : verdict; }}
  map masq6 {{ type ipv6_addr : verdict; }}
  chain dispatch {{
    ip daddr . meta l4proto . th dport vmap @addrports4
    meta nfproto ipv4 meta l4proto . th dport vmap @ports4
    ip6 daddr . meta l4proto . th dport vmap @addrports6
    meta nfproto ipv6 meta l4proto . th dport vmap @ports6
  }}
  chain prerouting {{ type nat hook prerouting priority dstnat; fib daddr type local jump dispatch; }}
  chain output {{ type nat hook output priority -100; fib daddr type local jump dispatch; }}
  chain postrouting {{
    type nat hook postrouting priority srcnat;
    ct status dnat ip daddr vmap @masq4
    ct status dnat ip6 daddr vmap @masq6
  }}
}}
'''


class PluginError(Exception):
    pass


def nft(script):
    proc = subprocess.run(['nft', '-f', '-'], input=script, text=True, capture_output=True,
                          check=False)
    if proc.returncode != 0:
        raise PluginError(proc.stderr.strip())


def table_state():
    """(json objects, text listing) of our table, or (None, '') if it does not exist."""
    proc = subprocess.run(['nft', '-j', 'list', 'table'] + TABLE.split(), text=True,
                          capture_output=True, check=False)
    if proc.returncode != 0:
        return None, ''
    text = subprocess.run(['nft', 'list', 'table'] + TABLE.split(), text=True,
                          capture_output=True, check=False).stdout
    return json.loads(proc.stdout)['nftables'], text


def chain_comments(text):
    """{chain name: comment} from the text listing (nft 1.0.6 JSON omits chain comments)."""
    return dict(re.findall(r'chain (\S+) \{\n\s+comment "([^"]*)"', text))


def elements(objs):
    """(map, key text, target chain) of every element."""
    out = []
    for o in objs or []:
        m = o.get('map')
        if not m:
            continue
        for key, value in m.get('elem', []):
            parts = key['concat'] if isinstance(key, dict) and 'concat' in key else [key]
            target = value.get('jump', {}).get('target')
            out.append((m['name'], ' . '.join(str(p) for p in parts), target))
    return out


def chain_names(objs):
    return {o['chain']['name'] for o in objs or [] if 'chain' in o}


def names_of(network, cid, ifname):
    digest = hashlib.sha256(f'{network}\0{cid}\0{ifname}'.encode()).hexdigest()[:16]
    return f'pm-{digest}', f'pm-{digest}-masq'


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


def unspecified(host_ip):
    return host_ip in (None, '', '0.0.0.0', '::')


def removal(objs, chains, existing):
    """nft commands that delete every element jumping to `chains`, then the chains."""
    lines = []
    for mapname, key, target in elements(objs):
        if target in chains:
            lines.append(f'delete element {TABLE} {mapname} {{ {key} }}')
    for c in chains:
        if c in existing:
            lines += [f'flush chain {TABLE} {c}', f'delete chain {TABLE} {c}']
    return lines


def flush_udp(ports):
    for port in ports:
        for fam in ('ipv4', 'ipv6'):
            subprocess.run(['conntrack', '-D', '-f', fam, '-p', 'udp', '--orig-port-dst',
                            str(port)], capture_output=True, check=False)


def udp_ports(objs, chains):
    return {int(key.split(' . ')[-1]) for _, key, target in elements(objs)
            if target in chains and ' . udp . ' in f' . {key}'}


class Plan:
    """What one ADD installs: chains, their rules, and the map elements pointing to them."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def plan(conf, ifname):
    """The Plan of one attachment from its configuration and prevResult."""
    network, cid = conf['name'], os.environ['CNI_CONTAINERID']
    dnat, masq = names_of(network, cid, ifname)
    v4, v6 = container_addresses(conf['prevResult'], ifname)
    snat = conf.get('snat', True)
    masq_all = conf.get('masqAll', False)
    rules, elems, mrules, melems, udp = [], [], [], [], set()
    for cidr, fam in ((v4, 4), (v6, 6)):
        if not cidr:
            continue
        addr = cidr.split('/')[0]
        ipk = 'ip' if fam == 4 else 'ip6'
        cond = ' '.join(conf.get(f'conditionsV{fam}') or [])
        for m in conf['runtimeConfig']['portMappings']:
            host_ip = m.get('hostIP')
            if not unspecified(host_ip) and (':' in host_ip) != (fam == 6):
                continue
            proto, hp, cp = m['protocol'], m['hostPort'], m['containerPort']
            daddr = '' if unspecified(host_ip) else f'{ipk} daddr {host_ip} '
            to = f'{addr}:{cp}' if fam == 4 else f'[{addr}]:{cp}'
            rules.append(f'meta nfproto ipv{fam} {daddr}meta l4proto {proto} th dport {hp} '
                         f'{cond} counter dnat {ipk} to {to}')
            if unspecified(host_ip):
                elems.append(f'ports{fam} {{ {proto} . {hp} : jump {dnat} }}')
            else:
                elems.append(f'addrports{fam} {{ {host_ip} . {proto} . {hp} : jump {dnat} }}')
            if proto == 'udp':
                udp.add(hp)
        if snat:
            if masq_all:
                mrules.append(f'{ipk} daddr {addr} counter masquerade')
            else:
                net = ipaddress.ip_interface(cidr).network
                mrules.append(f'{ipk} daddr {addr} {ipk} saddr {net} counter masquerade')
                if fam == 4:
                    mrules.append(f'{ipk} daddr {addr} {ipk} saddr 127.0.0.0/8 counter masquerade')
            melems.append(f'masq{fam} {{ {addr} : jump {masq} }}')
    return Plan(dnat=dnat, masq=masq, rules=list(dict.fromkeys(rules)),
                elems=list(dict.fromkeys(elems)), mrules=mrules, melems=melems, udp=udp, v4=v4)


def owner_of(error, text):
    """The attachment comment of the chain that holds the key the kernel refused."""
    m = re.search(r'create element \S+ \S+ (\S+) \{ (.*) : jump', error)
    if not m:
        return None
    objs, _ = table_state()
    for mapname, key, target in elements(objs):
        if mapname == m.group(1) and key == m.group(2):
            return chain_comments(text).get(target, target)
    return None


def cmd_add(conf):
    prev = conf.get('prevResult')
    if prev is None:
        raise PluginError('must be called as chained plugin')
    if not (conf.get('runtimeConfig') or {}).get('portMappings'):
        return prev
    ifname = os.environ['CNI_IFNAME']
    p = plan(conf, ifname)
    objs, text = table_state()
    lines = [SKELETON] if objs is None else removal(objs, [p.dnat, p.masq], chain_names(objs))
    comment = f'net={conf["name"]} id={os.environ["CNI_CONTAINERID"]} if={ifname}'[:127]
    lines.append(f'add chain {TABLE} {p.dnat} {{ comment "{comment}"; }}')
    lines += [f'add rule {TABLE} {p.dnat} {r}' for r in p.rules]
    if p.mrules:
        lines.append(f'add chain {TABLE} {p.masq} {{ comment "{comment}"; }}')
        lines += [f'add rule {TABLE} {p.masq} {r}' for r in p.mrules]
    lines += [f'create element {TABLE} {e}' for e in p.elems + p.melems]
    try:
        nft('\n'.join(lines) + '\n')
    except PluginError as e:
        owner = owner_of(str(e), text)
        if owner:
            raise PluginError(f'port already published by {owner}') from e
        raise
    if p.v4 and p.mrules and not conf.get('masqAll'):
        route = subprocess.run(['ip', '-o', 'route', 'get', p.v4.split('/')[0]],
                               capture_output=True, text=True, check=False).stdout
        dev = re.search(r' dev (\S+)', route)
        if dev:
            with open(f'/proc/sys/net/ipv4/conf/{dev.group(1)}/route_localnet', 'w') as f:
                f.write('1')
    flush_udp(p.udp)
    return prev


def delete_attachment(network, cid, ifname):
    objs, _ = table_state()
    if objs is None:
        return
    chains = list(names_of(network, cid, ifname))
    lines = removal(objs, chains, chain_names(objs))
    if lines:
        nft('\n'.join(lines) + '\n')
    flush_udp(udp_ports(objs, chains))


def cmd_check(conf):
    ifname = os.environ['CNI_IFNAME']
    if conf.get('prevResult') is None:
        raise PluginError('Required prevResult missing')
    if not (conf.get('runtimeConfig') or {}).get('portMappings'):
        return
    p = plan(conf, ifname)
    objs, _ = table_state()
    if objs is None:
        raise PluginError('table inet nft-portmap is missing')
    have = {f'{m} {{ {k} : jump {t} }}' for m, k, t in elements(objs)}
    missing = [e for e in p.elems + p.melems if e not in have]
    if missing:
        raise PluginError(f'missing map elements: {missing}')


def cmd_gc(conf):
    valid = {(a['containerID'], a['ifname']) for a in conf.get('cni.dev/valid-attachments', [])}
    objs, text = table_state()
    for comment in chain_comments(text).values():
        m = re.match(r'net=(\S+) id=(\S+) if=(\S+)$', comment)
        if m and m.group(1) == conf['name'] and (m.group(2), m.group(3)) not in valid:
            delete_attachment(*m.groups())


def main():
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
        print(json.dumps({'cniVersion': conf.get('cniVersion'), 'code': 999, 'msg': str(e)}))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
