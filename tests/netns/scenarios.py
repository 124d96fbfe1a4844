# SPDX-License-Identifier: Apache-2.0
"""The nft-portmap integration scenarios, as DESIGN.md specifies them.

Each scenario gets a fresh Topology (see lib.py) and proves one behaviour
with real traffic: a published port answers (or does not) from a given
namespace, and the echo server's reply says which container answered and
which source address it saw; where the DESIGN promises something about
the ruleset (what DEL leaves behind, for instance) the table is read too.

Scenarios about behaviour Debian's reference plugin (/usr/lib/cni/portmap
1.1.1, iptables) does not have are marked reference=False and skip for it;
the others pass with it, minus their nft table inspections (t.is_reference).
That comparison is what tells a harness bug from a plugin bug.

Register with @scenario(name) or, for one body per address family,
@per_family(stem) which makes ipv4_<stem>, ipv6_<stem> and dual_<stem>.
"""

import collections
import copy
import ipaddress
import json
import re
import secrets

import cnirun
import lib
from lib import HOST_V4, HOST_V6, mapping

Scenario = collections.namedtuple('Scenario', 'name func family reference doc')
SCENARIOS = {}


def scenario(name, family='dual', reference=True):
    """Registers func(t) as a scenario run on a Topology of that family."""
    def register(func):
        SCENARIOS[name] = Scenario(name, func, family, reference, (func.__doc__ or '').strip())
        return func
    return register


def per_family(stem, reference=True):
    """Registers func(t) once per address family: ipv4_stem, ipv6_stem, dual_stem."""
    def register(func):
        for family in lib.FAMILIES:
            scenario(f'{family}_{stem}', family, reference)(func)
        return func
    return register


def check(condition, message):
    """assert that survives python -O and reads as a sentence in the log."""
    if not condition:
        raise AssertionError(message)


def expect_cni_error(action, plugin_type, what):
    """Runs action(); it must fail with a CNI error from the plugin under test."""
    try:
        action()
    except cnirun.CniError as e:
        check(e.plugin == plugin_type, f'{what}: failed in {e.plugin}, not in {plugin_type}: {e}')
        check(bool(e.msg), f'{what}: the CNI error has no message: {e}')
        lib.log(f'{what}: failed as expected: code {e.code}: {e.msg}')
        return e
    raise AssertionError(f'{what}: succeeded, expected a CNI error')


def v4(t):
    return t.family in ('ipv4', 'dual')


def v6(t):
    return t.family in ('ipv6', 'dual')


# -- reference sanity --------------------------------------------------------

@scenario('basic_tcp', family='ipv4')
def basic_tcp(t):
    """One TCP port published on IPv4 answers the client, and is gone after DEL."""
    a = t.add_container('a', [mapping(8080, 80)])
    if not t.is_reference:
        expect_present(t, a, [8080])
    t.expect_reply(t.client, 'tcp', HOST_V4, 8080, 'a', peer=lib.CLIENT_V4)
    t.delete_container(a)
    t.expect_no_reply(t.client, 'tcp', HOST_V4, 8080)
    if not t.is_reference:
        expect_clean_of(t, a, [8080])


# -- per family ------------------------------------------------------------------

@per_family('protocols')
def protocols(t):
    """tcp, udp and sctp published on every host address; the client keeps its source."""
    a = t.add_container('a', [mapping(8080, 80, 'tcp'), mapping(8080, 80, 'udp'),
                              mapping(8080, 80, 'sctp'), mapping(8081, 81, 'tcp')])
    protos = ['tcp', 'udp', 'sctp']
    if not lib.sctp_sockets():
        lib.log('kernel has no SCTP sockets: sctp is probed with raw INIT / INIT ACK packets')
    for addr in t.host_addresses():
        client = t.client_address(addr)
        for proto in protos:
            t.expect_reply(t.client, proto, addr, 8080, 'a', peer=client)
        t.expect_reply(t.client, 'tcp', addr, 8081, 'a', peer=client)
        t.expect_no_reply(t.client, 'tcp', addr, 8082)
        t.expect_no_reply(t.client, 'udp', addr, 8081)
        t.expect_no_reply(t.client, 'sctp', addr, 8081, timeout=1.0)
    # Both host addresses of a family are local: a mapping without hostIP
    # answers on all of them.
    for addr in t.host_addresses(alt=True):
        t.expect_reply(t.client, 'tcp', addr, 8080, 'a', peer=t.client_address(addr))
    check(a.ipv4 is not None if v4(t) else a.ipv4 is None, 'IPv4 address as configured')
    check(a.ipv6 is not None if v6(t) else a.ipv6 is None, 'IPv6 address as configured')
    if not t.is_reference:
        expect_present(t, a, [8080, 8081])


@per_family('access_paths')
def access_paths(t):
    """From the host itself, 127.0.0.1 (IPv4), hairpin, and a sibling on the bridge."""
    a = t.add_container('a', [mapping(8080, 80, 'tcp'), mapping(9090, 90, 'udp')])
    b = t.add_container('b', [])
    for addr in t.host_addresses():
        gw = a.gateway(addr)
        # The host connects to its own address: DNAT in the output hook,
        # the source stays the host address.
        t.expect_reply(t.host, 'tcp', addr, 8080, 'a', peer=addr)
        t.expect_reply(t.host, 'udp', addr, 9090, 'a', peer=addr)
        # Hairpin: the container reaches itself through the published port,
        # masqueraded to the bridge address (else it would answer itself).
        t.expect_reply(a.ns, 'tcp', addr, 8080, 'a', peer=gw)
        t.expect_reply(a.ns, 'udp', addr, 9090, 'a', peer=gw)
        # A sibling on the same bridge: masqueraded too, else the reply
        # would go straight over the bridge with the wrong source.
        t.expect_reply(b.ns, 'tcp', addr, 8080, 'a', peer=gw)
        # The bridge address is local too.
        t.expect_reply(b.ns, 'tcp', gw, 8080, 'a', peer=gw)
    if v4(t):
        # 127.0.0.1:hostPort from the host needs route_localnet and the
        # localhost masquerade; ::1 is not supported (as in the reference).
        t.expect_reply(t.host, 'tcp', '127.0.0.1', 8080, 'a', peer=a.gateway(HOST_V4))
        t.expect_reply(t.host, 'udp', '127.0.0.1', 9090, 'a', peer=a.gateway(HOST_V4))


@per_family('host_ip')
def host_ip(t):
    """hostIP publishes on that address only; a hostIP of the other family is skipped."""
    maps = []
    if v4(t):
        maps += [mapping(8080, 80, 'tcp', HOST_V4), mapping(8082, 82, 'tcp', '0.0.0.0')]
    if v6(t):
        maps += [mapping(8081, 81, 'tcp', HOST_V6), mapping(8083, 83, 'tcp', '::')]
    if t.family != 'dual':
        # The other family's hostIP: must be skipped without failing ADD.
        maps += [mapping(8084, 84, 'tcp', HOST_V6 if v4(t) else HOST_V4)]
    a = t.add_container('a', maps, serve=['tcp:80', 'tcp:81', 'tcp:82', 'tcp:83', 'tcp:84'])
    # A second container takes the same port on the other address.
    alt_maps = []
    if v4(t):
        alt_maps.append(mapping(8080, 80, 'tcp', lib.HOST_V4_ALT))
    if v6(t):
        alt_maps.append(mapping(8081, 81, 'tcp', lib.HOST_V6_ALT))
    b = t.add_container('b', alt_maps)
    if not t.is_reference:
        # hostIP keys go to addrports4/6, 0.0.0.0 and :: to ports4/6; the
        # other family's hostIP publishes nothing.
        expect_present(t, a, [p for p in (8080, 8081, 8082, 8083) if any(
            m['hostPort'] == p for m in maps)])
        expect_present(t, b, [m['hostPort'] for m in alt_maps])
    for addr in t.host_addresses():
        own, other = (8081, 8080) if lib.is_v6(addr) else (8080, 8081)
        any_port = 8083 if lib.is_v6(addr) else 8082
        alt = lib.HOST_V6_ALT if lib.is_v6(addr) else lib.HOST_V4_ALT
        t.expect_reply(t.client, 'tcp', addr, own, 'a', peer=t.client_address(addr))
        t.expect_reply(t.client, 'tcp', alt, own, 'b', peer=t.client_address(addr))
        # Unspecified hostIP (0.0.0.0 / ::) means every address.
        t.expect_reply(t.client, 'tcp', addr, any_port, 'a')
        t.expect_reply(t.client, 'tcp', alt, any_port, 'a')
        # The mapping whose hostIP has the other family does not apply here.
        t.expect_no_reply(t.client, 'tcp', addr, other)
        t.expect_no_reply(t.client, 'tcp', addr, 8084)


@per_family('snat_false')
def snat_false(t):
    """snat:false: no hairpin/localhost masquerade, so those fail; the client still works."""
    a = t.add_container('a', [mapping(8080, 80)], portmap={'snat': False})
    if not t.is_reference:
        expect_present(t, a, [8080])   # and no masq element (not planned)
    for addr in t.host_addresses():
        t.expect_reply(t.client, 'tcp', addr, 8080, 'a', peer=t.client_address(addr))
        t.expect_reply(t.host, 'tcp', addr, 8080, 'a', peer=addr)
        t.expect_no_reply(a.ns, 'tcp', addr, 8080)
    if v4(t):
        t.expect_no_reply(t.host, 'tcp', '127.0.0.1', 8080)


@per_family('masq_all', reference=False)
def masq_all(t):
    """masqAll:true: the client's source is masqueraded to the bridge address.

    (Debian's reference plugin 1.1.1 predates masqAll and ignores it.)
    """
    a = t.add_container('a', [mapping(8080, 80), mapping(8080, 80, 'udp')],
                        portmap={'masqAll': True})
    # Only the masq4-0 / masq6-0 elements: no subnet, no localhost ones.
    expect_present(t, a, [8080])
    for addr in t.host_addresses():
        gw = a.gateway(addr)
        t.expect_reply(t.client, 'tcp', addr, 8080, 'a', peer=gw)
        t.expect_reply(t.client, 'udp', addr, 8080, 'a', peer=gw)
        t.expect_reply(a.ns, 'tcp', addr, 8080, 'a', peer=gw)


@per_family('conditions', reference=False)
def conditions(t):
    """conditionsV4/V6 (nft syntax) restrict who may use the published port."""
    pm = {}
    if v4(t):
        pm['conditionsV4'] = ['ip', 'saddr', '!=', lib.CLIENT_V4]
    if t.family == 'ipv6':
        pm['conditionsV6'] = ['ip6', 'saddr', '!=', lib.CLIENT_V6]
    a = t.add_container('a', [mapping(8080, 80)], portmap=pm)
    b = t.add_container('b', [mapping(8081, 81)])
    # A's keys are in the guard maps (jump pm-<hash>) and claimed in the data
    # maps; its chain holds the conditions. B, without conditions, has no chain.
    state_b = expect_present(t, b, [8081])
    expect_present(t, a, [8080])
    guards = {s for s, _ in lib.planned_elements(a) if s in GUARD_MAPS}
    check(guards == {f'guard{k[-1]}' for k in pm}, f'guard maps used: {guards}')
    chain_text = t.nft_text().split(f'chain {a.record_name()} {{', 1)[-1].split('}', 1)[0]
    for k, cond in pm.items():
        check(' '.join(cond) in chain_text,
              f'chain {a.record_name()} holds {k} {" ".join(cond)!r}:\n{chain_text}')
    for addr in t.host_addresses():
        blocked = ('conditionsV6' if lib.is_v6(addr) else 'conditionsV4') in pm
        if blocked:
            t.expect_no_reply(t.client, 'tcp', addr, 8080)
        else:
            # dual-stack with only conditionsV4: IPv6 stays open.
            t.expect_reply(t.client, 'tcp', addr, 8080, 'a', peer=t.client_address(addr))
        # Other sources (the host itself) are not affected by the condition.
        t.expect_reply(t.host, 'tcp', addr, 8080, 'a', peer=addr)
        t.expect_reply(t.client, 'tcp', addr, 8081, 'b', peer=t.client_address(addr))
    # DEL takes the guard elements and the chain with it.
    t.delete_container(a)
    for addr in t.host_addresses():
        t.expect_no_reply(t.host, 'tcp', addr, 8080)
        t.expect_reply(t.client, 'tcp', addr, 8081, 'b', peer=t.client_address(addr))
    expect_clean_of(t, a, [8080], keep={b: state_b})


# -- conntrack ---------------------------------------------------------------------

@scenario('udp_stale_conntrack')
def udp_stale_conntrack(t):
    """A UDP flow to A; DEL A; ADD B on the same hostPort: the same flow reaches B at once."""
    a = t.add_container('a', [mapping(9000, 90, 'udp')])
    sports = {HOST_V4: 40000, HOST_V6: 40001}
    for addr in t.host_addresses():
        t.expect_reply(t.client, 'udp', addr, 9000, 'a', sport=sports[addr])
    t.delete_container(a)
    for addr in t.host_addresses():
        # Keeps the client's flow (a conntrack entry) alive across the swap.
        t.expect_no_reply(t.client, 'udp', addr, 9000, sport=sports[addr], timeout=0.5)
    t.add_container('b', [mapping(9000, 90, 'udp')])
    for addr in t.host_addresses():
        t.expect_reply(t.client, 'udp', addr, 9000, 'b', sport=sports[addr])


@scenario('udp_conntrack_del', reference=False)
def udp_conntrack_del(t):
    """DEL flushes the hostPort's UDP entries: the flow then reaches a host server."""
    a = t.add_container('a', [mapping(9000, 90, 'udp')])
    sports = {HOST_V4: 40010, HOST_V6: 40011}
    for addr in t.host_addresses():
        t.expect_reply(t.client, 'udp', addr, 9000, 'a', sport=sports[addr])
    t.delete_container(a)
    # Like a pod moved to hostNetwork on the same port (reference issue #1190).
    t.start_host_server('host', ['udp:9000'])
    for addr in t.host_addresses():
        t.expect_reply(t.client, 'udp', addr, 9000, 'host', sport=sports[addr])


# -- DEL -------------------------------------------------------------------------------

DATA_MAPS = ('ports4', 'ports6', 'addrports4', 'addrports6')
GUARD_MAPS = ('guard4', 'guard6', 'addrguard4', 'addrguard6')


def key_text(key):
    """nft's spelling of a key or data tuple: "tcp . 8080", "10.88.0.2 . 80"."""
    return ' . '.join(str(k) for k in key)


def attachment_state(table, c):
    """All of c's attachment in our table, counter values left out: its record
    counter, the elements that carry its comment, its chain (comment, rules).
    Two states compare equal when DEL, GC or ADD of others left c alone."""
    name = c.record_name()
    records = table.records()
    chain = None
    if name in table.chains():
        chain = (table.chain_comments().get(name),
                 tuple(table.rule_text(r) for r in table.rules(name)))
    return {
        'record': (name, records[name]) if name in records else None,
        'continuations': sorted(n for n in records if n.startswith(name + '-')),
        'elements': frozenset((e.set, e.key, e.data, e.comment) for e in table.elements()
                              if c.comment_matches(e.comment)),
        'chain': chain,
    }


def chain_dnats(rules):
    """(host port, container address, port) of each DNAT rule of an attachment chain."""
    out = set()
    for r in rules:
        dnat = next((x['dnat'] for x in r['expr'] if 'dnat' in x), None)
        if dnat is None:
            continue
        dports = [x['match']['right'] for x in r['expr'] if 'match' in x
                  and isinstance(x['match']['left'], dict)
                  and x['match']['left'].get('payload', {}).get('field') == 'dport']
        out.add((dports[0] if dports else None, lib.canonical(dnat.get('addr')), dnat.get('port')))
    return out


def expect_present(t, c, host_ports):
    """c's attachment is complete in our table, in ruleset.hpp's layout.

    The record counter pm-<hash> (FNV-1a-64 of network, container ID,
    ifname) has c's comment; every element lib.planned_elements(c) names is
    there with c's comment and the planned data (container address . port,
    jump pm-<hash>), data-map elements with a counter; no other element
    carries c's comment; chain postrouting has a masquerade rule for each
    masq set used; chain pm-<hash> exists exactly when c has conditions, with
    c's comment, one DNAT per guarded key and a closing accept. host_ports
    must be among the published ones (the caller's intent). Returns
    attachment_state().
    """
    table = t.nft_table()
    check(table is not None, 'table inet nft-portmap exists after ADD')
    dump = '\n' + t.nft_text()
    name = c.record_name()
    records = table.records()
    check(name in records, f'record counter {name} of {c.name} is missing' + dump)
    check(c.comment_matches(records[name]),
          f'record {name} has the comment {records[name]!r}, which does not name network '
          f'{c.network}, container {c.id}, interface {c.ifname}')
    want = lib.planned_elements(c)
    published = {k[-1] for (s, k) in want if s in DATA_MAPS}
    check(set(host_ports) <= published,
          f'test error: {c.name} does not publish {set(host_ports) - published}')
    for (s, key), data in want.items():
        e = table.element(s, key)
        where = f'element {key_text(key)} of {s} ({c.name})'
        check(e is not None, f'{where} is missing' + dump)
        check(c.comment_matches(e.comment), f'{where} carries the comment {e.comment!r}')
        check(e.data == data, f'{where} maps to {e.data}, expected {data}')
        if s in DATA_MAPS:
            check(e.counter is not None, f'{where} has no counter')
    extra = {(e.set, e.key) for e in table.elements() if c.comment_matches(e.comment)} - set(want)
    check(not extra, f'elements with the comment of {c.name} that its configuration does not '
          f'ask for: {sorted(extra)}' + dump)
    masq_sets = {s for (s, _) in want if s.startswith('masq')}
    missing = masq_sets - table.masq_rule_sets()
    check(not missing, f'chain postrouting has no masquerade rule for {sorted(missing)}' + dump)
    guards = [(s, k) for (s, k) in want if s in GUARD_MAPS]
    chains = table.chains()
    if guards:
        check(name in chains, f'chain {name} of {c.name} (with conditions) is missing' + dump)
        comment = table.chain_comments().get(name)
        check(c.comment_matches(comment), f'chain {name} has the comment {comment!r}')
        rules = table.rules(name)
        check(rules and rules[-1]['expr'] == [{'accept': None}],
              f'chain {name} does not end in accept' + dump)
        want_dnats = {(k[-1], *want[(s.replace('guard', 'ports'), k)]) for s, k in guards}
        got = chain_dnats(rules[:-1])
        check(got == want_dnats, f'chain {name} DNATs {got}, expected {want_dnats}' + dump)
    else:
        check(name not in chains, f'{c.name} has no conditions, yet chain {name} exists' + dump)
    return attachment_state(table, c)


def expect_clean_of(t, c, host_ports, names=None, keep=None):
    """Nothing in our table mentions c's attachment, and the others are unchanged.

    Gone: its record counter pm-<hash> (and continuations), every element,
    record or chain whose comment names it, chain pm-<hash>, elements keyed
    by its host_ports, anything holding its addresses, and every mention of
    names (default: its container ID; another attachment of the same
    container shares it). keep: {container: attachment_state()} of the
    attachments that must not have changed.
    """
    keep = keep or {}
    table = t.nft_table()
    if table is None:
        check(not keep, f'the table is gone, with {[k.name for k in keep]} that should stay')
        return
    name = c.record_name()
    kept_addrs = {lib.canonical(a) for k in keep for a in (k.ipv4, k.ipv6) if a}
    addrs = {lib.canonical(a) for a in (c.ipv4, c.ipv6) if a} - kept_addrs
    leftovers = []
    for n, comment in table.records().items():
        if n == name or n.startswith(name + '-') or c.comment_matches(comment):
            leftovers.append(f'record counter {n} ({comment!r})')
    for e in table.elements():
        what = f'element {key_text(e.key)} of {e.set} (comment {e.comment!r})'
        if c.comment_matches(e.comment):
            leftovers.append(what)
        elif e.set not in DATA_MAPS + GUARD_MAPS and not e.set.startswith('masq'):
            continue
        elif e.key[-1] in host_ports and e.set in DATA_MAPS + GUARD_MAPS:
            leftovers.append(f'{what}: a host port of {c.name}')
        elif addrs & set(e.key + (e.data or ())):
            leftovers.append(f'{what}: an address of {c.name}')
    for n, comment in table.chain_comments().items():
        if c.comment_matches(comment):
            leftovers.append(f'chain {n} ({comment!r})')
    if name in table.chains():
        leftovers.append(f'chain {name}')
    for r in table.rules():
        if addrs & {lib.canonical(v) for _, v in lib.walk(r['expr'])}:
            leftovers.append(f'rule in chain {r["chain"]} with an address of {c.name}')
    for needle in names or [c.id]:
        leftovers += table.mentions(needle)
    check(not leftovers, f'{c.name} deleted but still in the table:\n  ' + '\n  '.join(leftovers)
          + '\n' + t.nft_text())
    for k, before in keep.items():
        now = attachment_state(table, k)
        check(now == before, f'the state of {k.name} changed:\n  before {before}\n  after  {now}')


@scenario('del_exact')
def del_exact(t):
    """DEL removes exactly one attachment: the other's mappings still answer."""
    a = t.add_container('a', [mapping(8080, 80), mapping(8080, 80, 'udp')])
    b = t.add_container('b', [mapping(8081, 81)])
    if not t.is_reference:
        state_a, state_b = expect_present(t, a, [8080]), expect_present(t, b, [8081])
        check(state_a['record'][0] != state_b['record'][0], 'A and B have records of their own')
    t.delete_container(a)
    for addr in t.host_addresses():
        t.expect_no_reply(t.client, 'tcp', addr, 8080)
        t.expect_no_reply(t.client, 'udp', addr, 8080)
        t.expect_reply(t.client, 'tcp', addr, 8081, 'b', peer=t.client_address(addr))
        t.expect_reply(b.ns, 'tcp', addr, 8081, 'b', peer=b.gateway(addr))
    if not t.is_reference:
        expect_clean_of(t, a, [8080], keep={b: state_b})
        check(expect_present(t, b, [8081]) == state_b, "B's state unchanged")


@scenario('del_without_state', reference=False)
def del_without_state(t):
    """DEL works without prevResult, without runtimeConfig, and without both."""
    cases = {'b': dict(prev_result=None, runtime_config=False),
             'c': dict(prev_result=None, runtime_config=True),
             'd': dict(prev_result='cached', runtime_config=False)}
    ports = {'b': 8082, 'c': 8083, 'd': 8084, 'e': 8085}
    ctrs = {n: t.add_container(n, [mapping(ports[n], 80), mapping(ports[n], 80, 'udp')])
            for n in ports}
    states = {ctrs[n]: expect_present(t, c, [ports[n]]) for n, c in ctrs.items()}
    for name, how in cases.items():
        del states[ctrs[name]]
        t.delete_container(ctrs[name], **how)
        for addr in t.host_addresses():
            t.expect_no_reply(t.client, 'tcp', addr, ports[name])
            t.expect_no_reply(t.client, 'udp', addr, ports[name])
        expect_clean_of(t, ctrs[name], [ports[name]], keep=states)
    for addr in t.host_addresses():
        t.expect_reply(t.client, 'tcp', addr, ports['e'], 'e')
        t.expect_reply(t.client, 'udp', addr, ports['e'], 'e')


@scenario('del_repeated')
def del_repeated(t):
    """DEL is idempotent: again, without cache, unknown container, and with no table."""
    a = t.add_container('a', [mapping(8080, 80)])
    t.delete_container(a)
    t.delete_container(a)                                         # cache already gone
    t.delete_container(a, prev_result=None, runtime_config=False)
    ghost = lib.Container('ghost', a.ns, a.id + '-never-added', 'eth0', a.runner,
                          [mapping(8080, 80)])
    t.delete_container(ghost)
    t.flush_ruleset()
    t.delete_container(a)                                         # no table at all
    t.delete_container(a, prev_result=None, runtime_config=False)
    t.expect_no_reply(t.client, 'tcp', t.host_addresses()[0], 8080)


# -- CHECK, GC, STATUS ---------------------------------------------------------------

@per_family('check', reference=False)
def check_after_flush(t):
    """CHECK names each kind of damage and ADD repairs it; after `nft flush ruleset` the next ADD rebuilds.

    Lost, changed and foreign-owned elements, a lost record, a lost
    masquerade rule, `nft flush table` (static rules gone, sets kept) and
    `nft flush ruleset`: CHECK fails with code 103 and says what it found;
    ADD repairs (but never takes over another owner's element), and real
    traffic, hairpin included, gets through again.

    (Debian's reference plugin 1.1.1 fails every CHECK: it looks for the
    rules of one family in the other family's table, upstream issue #819.)
    """
    a = t.add_container('a', [mapping(8080, 80), mapping(8080, 80, 'udp')])
    t.check_container(a)
    comment = expect_present(t, a, [8080])['record'][1]
    fam = 4 if v4(t) else 6
    addr = t.host_addresses()[0]
    ports, cidr = f'ports{fam}', a.prefixes()[0 if fam == 4 else 1]
    net = ipaddress.ip_interface(cidr).network
    masq = f'masq{fam}-{net.prefixlen}'
    other_port = f'{a.ipv4 if fam == 4 else a.ipv6} . 81'

    def nft(*cmd):
        t.host.run(['nft', *cmd])

    def expect_check_fails(what, damage):
        e = expect_cni_error(lambda: t.check_container(a), t.plugin_type, f'CHECK after {damage}')
        check(e.code == 103, f'CHECK failures are error 103: {e}')
        check(what in e.msg, f'CHECK after {damage} says {what!r}: {e.msg!r}')

    def repair(damage):
        """ADD again repairs A; CHECK passes; a client and A itself (hairpin) get through."""
        readd_portmap(t, a)
        t.check_container(a)
        expect_present(t, a, [8080])
        t.expect_reply(t.client, 'tcp', addr, 8080, 'a', peer=t.client_address(addr))
        t.expect_reply(a.ns, 'tcp', addr, 8080, 'a', peer=a.gateway(addr))
        lib.log(f'repaired after {damage}')

    # One kind of damage at a time, each named by CHECK and repaired by ADD.
    nft('delete', 'element', *lib.NFT_TABLE, ports, '{ tcp . 8080 }')
    expect_check_fails(f'element tcp . 8080 is missing from {ports}', 'a lost element')
    t.expect_no_reply(t.client, 'tcp', addr, 8080)
    repair('a lost element')

    nft('delete', 'element', *lib.NFT_TABLE, ports, '{ tcp . 8080 }')
    nft('add', 'element', *lib.NFT_TABLE, ports,
        f'{{ tcp . 8080 counter comment "{comment}" : {other_port} }}')
    expect_check_fails(f'element tcp . 8080 of {ports} maps to {other_port}, expected',
                       'a changed element')
    repair('a changed element')

    nft('delete', 'element', *lib.NFT_TABLE, ports, '{ tcp . 8080 }')
    nft('add', 'element', *lib.NFT_TABLE, ports,
        f'{{ tcp . 8080 counter comment "net=other id=intruder if=eth0" : {other_port} }}')
    expect_check_fails(f'element tcp . 8080 of {ports} belongs to container intruder '
                       '(network other, interface eth0)', 'an element taken by another')
    # ADD must not take it back: it is somebody else's now.
    e = expect_cni_error(lambda: readd_portmap(t, a), t.plugin_type, 'ADD over a foreign element')
    check(e.code == 100 and 'container intruder' in e.msg, f'the conflict names the owner: {e}')
    nft('delete', 'element', *lib.NFT_TABLE, ports, '{ tcp . 8080 }')
    repair('an element taken by another')

    nft('delete', 'counter', *lib.NFT_TABLE, a.record_name())
    expect_check_fails(f'record counter {a.record_name()} of this attachment is missing',
                       'a lost record')
    repair('a lost record')

    table = t.nft_table()
    handles = [r['handle'] for r in table.rules('postrouting')
               if json.dumps(r['expr']).count(f'"@{masq}"')]
    check(len(handles) == 1, f'one masquerade rule for {masq}: {handles}\n{t.nft_text()}')
    nft('delete', 'rule', *lib.NFT_TABLE, 'postrouting', 'handle', str(handles[0]))
    expect_check_fails(f'chain postrouting has no masquerade rule for set {masq}',
                       'a lost masquerade rule')
    repair('a lost masquerade rule')

    # `nft flush table`: every rule is gone, sets and elements stay. CHECK
    # notices; the next ADD of anybody rewrites the static rules, with one
    # masquerade rule per masq set in use, so A works again, hairpin too.
    nft('flush', 'table', *lib.NFT_TABLE)
    expect_check_fails('CHECK: ', '`nft flush table`')
    c = t.add_container('c', [mapping(8082, 82)])
    t.check_container(a)
    t.check_container(c)
    expect_present(t, a, [8080])
    expect_present(t, c, [8082])
    t.expect_reply(t.client, 'tcp', addr, 8080, 'a', peer=t.client_address(addr))
    t.expect_reply(a.ns, 'tcp', addr, 8080, 'a', peer=a.gateway(addr))
    t.expect_reply(t.client, 'tcp', addr, 8082, 'c', peer=t.client_address(addr))

    t.flush_ruleset()
    expect_check_fails('table inet nft-portmap is missing', 'nft flush ruleset')
    b = t.add_container('b', [mapping(8081, 81)])
    t.check_container(b)
    expect_present(t, b, [8081])
    for addr in t.host_addresses():
        t.expect_reply(t.client, 'tcp', addr, 8081, 'b', peer=t.client_address(addr))


@scenario('gc', reference=False)
def gc(t):
    """GC removes attachments not in cni.dev/valid-attachments and keeps the others."""
    a = t.add_container('a', [mapping(8080, 80), mapping(8080, 80, 'udp')])
    b = t.add_container('b', [mapping(8081, 81)])
    expect_present(t, a, [8080])
    state_b = expect_present(t, b, [8081])
    # A's DEL was lost: the runtime no longer knows it; only the plugin's
    # own state (the kernel's) says it exists.
    a.runner.forget(a.id, a.ifname)
    runner = t.runner(cni_version='1.1.0')
    lib.log('GC with valid attachments = [b]')
    runner.gc([{'containerID': b.id, 'ifname': b.ifname}], only_types=[t.plugin_type])
    for addr in t.host_addresses():
        t.expect_no_reply(t.client, 'tcp', addr, 8080)
        t.expect_reply(t.client, 'tcp', addr, 8081, 'b')
    expect_clean_of(t, a, [8080], keep={b: state_b})
    check(expect_present(t, b, [8081]) == state_b, "B's state unchanged by GC")
    lib.log('STATUS')
    runner.status(only_types=[t.plugin_type])


# -- ADD ------------------------------------------------------------------------------------

def without_empty(obj):
    """Result comparison that ignores empty members a re-encoder may drop ("dns": {})."""
    if isinstance(obj, dict):
        return {k: without_empty(v) for k, v in obj.items() if v not in ({}, [], None)}
    if isinstance(obj, list):
        return [without_empty(v) for v in obj]
    return obj


@scenario('no_port_mappings')
def no_port_mappings(t):
    """ADD without portMappings passes prevResult through and creates no table."""
    prev = {}
    for name, mappings in (('a', None), ('b', [])):
        c = t.add_container(name, mappings)
        prev[name] = c.runner.last_results[-2]
        check(without_empty(c.result) == without_empty(prev[name]),
              f'{name}: result differs from prevResult:\n{c.result}\n{prev[name]}')
        check(c.result.get('cniVersion') == t.cni_version, 'result in the conf version')
        if not t.is_reference:
            check(t.nft_table() is None, f'{name}: a table was created:\n{t.nft_text()}')
        t.check_container(c)
        t.delete_container(c)


@scenario('port_conflict', reference=False)
def port_conflict(t):
    """A port held by A cannot be taken by B: ADD fails naming A, nothing changes."""
    a = t.add_container('a', [mapping(8080, 80)])
    state_a = expect_present(t, a, [8080])
    before = t.nft_text()
    e = expect_cni_error(lambda: t.add_container('b', [mapping(8081, 81), mapping(8080, 80)]),
                         t.plugin_type, 'ADD of a port owned by another container')
    check(e.code == 100, f'a port conflict is error 100: {e}')
    m = re.fullmatch(r'host tcp port 8080 on every IPv([46]) address is already published by '
                     r'container (\S+) \(network (\S+), interface (\S+)\) \(map ports([46])\); '
                     r'nothing was changed', e.msg)
    check(m is not None, f'the conflict message names port, owner and map: {e.msg!r}')
    check(m.groups()[1:4] == (a.id, a.network, a.ifname) and m.group(1) == m.group(5),
          f'the message names the owner {a.id} ({a.network}, {a.ifname}): {e.msg!r}')
    check(e.details == 'tcp . 8080', f'the details are the element key: {e.details!r}')
    check(t.nft_text() == before, 'a failed ADD leaves the table as it was')
    # The runtime cleans up the failed ADD with DEL; A must keep its port.
    b = t.containers[-1]
    t.delete_container(b)
    for addr in t.host_addresses():
        t.expect_reply(t.client, 'tcp', addr, 8080, 'a')
        t.expect_no_reply(t.client, 'tcp', addr, 8081)
    expect_clean_of(t, b, [8081], keep={a: state_a})


def readd_portmap(t, c):
    """ADD of the plugin under test alone again for c, with its current mappings
    and the prevResult it got from the bridge plugin."""
    prev = c.runner.last_results[-2]
    plugin = copy.deepcopy(c.runner.plugins()[-1])
    stdin = cnirun.build_stdin(c.runner.net_list, plugin, prev, c.capability_args())
    lib.log(f'ADD of {t.plugin_type} alone again for {c.name}, mappings={json.dumps(c.mappings)}')
    c.runner.exec_plugin(plugin, 'ADD', stdin, c.id, c.ns.path, c.ifname)


@scenario('readd_replaces', reference=False)
def readd_replaces(t):
    """ADD again for the same attachment replaces its mappings instead of adding to them."""
    a = t.add_container('a', [mapping(8080, 80)], serve=['tcp:80', 'tcp:81'])
    a.mappings = [mapping(8081, 81)]
    readd_portmap(t, a)
    for addr in t.host_addresses():
        t.expect_no_reply(t.client, 'tcp', addr, 8080)
        t.expect_reply(t.client, 'tcp', addr, 8081, 'a')
    # Exactly the new mapping: no element of 8080 is left with A's comment.
    expect_present(t, a, [8081])
    t.delete_container(a)
    expect_clean_of(t, a, [8080, 8081])


@scenario('cni_versions')
def cni_versions(t):
    """ADD/CHECK/DEL for every chained CNI version; the result is in the conf's version."""
    for i, version in enumerate(('0.3.0', '0.3.1', '0.4.0', '1.0.0')):
        port = 8080 + i
        c = t.add_container(f'v{i}', [mapping(port, 80)], cni_version=version)
        check(c.result.get('cniVersion') == version,
              f'result cniVersion {c.result.get("cniVersion")}, expected {version}')
        for addr in t.host_addresses():
            t.expect_reply(t.client, 'tcp', addr, port, f'v{i}')
        if c.runner.version >= cnirun.CHECK_VERSION and not t.is_reference:
            t.check_container(c)  # the reference's CHECK is broken (see check_after_flush)
        t.delete_container(c)
        for addr in t.host_addresses():
            t.expect_no_reply(t.client, 'tcp', addr, port)


# -- identity: network, container ID, ifname ----------------------------------------

@scenario('two_networks')
def two_networks(t):
    """One container on two networks: DEL on one network keeps the other's mappings."""
    a = t.add_container('a', [mapping(8080, 80)])
    a1 = t.add_container('a', [mapping(8081, 81)], container_id=a.id, ns=a.ns, ifname='eth1',
                         net=1)
    if not t.is_reference:
        state, state1 = expect_present(t, a, [8080]), expect_present(t, a1, [8081])
        check(state['record'][0] != state1['record'][0], 'each attachment has a record of its own')
    for addr in t.host_addresses():
        t.expect_reply(t.client, 'tcp', addr, 8080, 'a', peer=t.client_address(addr))
        t.expect_reply(t.client, 'tcp', addr, 8081, 'a', peer=t.client_address(addr))
    # The second network first: the main one holds the container's default
    # route, which the answers of both attachments take.
    t.delete_container(a1)
    for addr in t.host_addresses():
        t.expect_no_reply(t.client, 'tcp', addr, 8081)
        t.expect_reply(t.client, 'tcp', addr, 8080, 'a', peer=t.client_address(addr))
    if not t.is_reference:
        expect_clean_of(t, a1, [8081], names=[t.network_name(1)], keep={a: state})
        check(expect_present(t, a, [8080]) == state, "the main network's state unchanged")
    t.delete_container(a)
    for addr in t.host_addresses():
        t.expect_no_reply(t.client, 'tcp', addr, 8080)
    if not t.is_reference:
        expect_clean_of(t, a, [8080])


@scenario('late_del_keeps_new_owner')
def late_del_keeps_new_owner(t):
    """A repeated DEL of A, after B took A's old port, leaves B's mapping alone."""
    a = t.add_container('a', [mapping(8080, 80), mapping(8080, 80, 'udp')])
    stale_result = a.result
    t.delete_container(a)
    b = t.add_container('b', [mapping(8080, 80), mapping(8080, 80, 'udp')])
    state_b = None if t.is_reference else expect_present(t, b, [8080])
    # containerd repeats DEL; here with A's old prevResult and runtimeConfig.
    t.delete_container(a, prev_result=stale_result)
    t.delete_container(a, prev_result=None, runtime_config=False)
    for addr in t.host_addresses():
        t.expect_reply(t.client, 'tcp', addr, 8080, 'b', peer=t.client_address(addr))
        t.expect_reply(t.client, 'udp', addr, 8080, 'b', peer=t.client_address(addr))
        t.expect_reply(b.ns, 'tcp', addr, 8080, 'b', peer=b.gateway(addr))
    if not t.is_reference:
        # A's names are gone; its host port (and maybe address) now are B's.
        expect_clean_of(t, a, [], keep={b: state_b})
        check(expect_present(t, b, [8080]) == state_b, "B's state unchanged by A's DELs")


@scenario('long_container_id')
def long_container_id(t):
    """A 200-character container ID (beyond nft's 128-byte comments) publishes and deletes."""
    long_id = 'k8s-' + secrets.token_hex(98)
    a = t.add_container('a', [mapping(8080, 80)], container_id=long_id)
    b = t.add_container('b', [mapping(8081, 81)], container_id=long_id[:-1] + 'z')
    if not t.is_reference:
        # The IDs differ in their last character only: both comments are cut
        # to the same prefix and told apart by the hash after the "~".
        state_a, state_b = expect_present(t, a, [8080]), expect_present(t, b, [8081])
        for c, st in ((a, state_a), (b, state_b)):
            comment = st['record'][1]
            check(len(comment.encode()) <= lib.COMMENT_MAX and lib.CUT_MARKER in comment,
                  f'the comment of {c.name} is cut to {lib.COMMENT_MAX} bytes: {comment!r}')
        check(state_a['record'][1] != state_b['record'][1], 'the two cut comments differ')
    for addr in t.host_addresses():
        t.expect_reply(t.client, 'tcp', addr, 8080, 'a', peer=t.client_address(addr))
        t.expect_reply(t.client, 'tcp', addr, 8081, 'b', peer=t.client_address(addr))
    t.delete_container(a)
    for addr in t.host_addresses():
        t.expect_no_reply(t.client, 'tcp', addr, 8080)
        t.expect_reply(t.client, 'tcp', addr, 8081, 'b')
    if not t.is_reference:
        expect_clean_of(t, a, [8080], keep={b: state_b})


@scenario('list_command', reference=False)
def list_command(t):
    """`nft-portmap list` for people: what is published, by whom, with counters."""
    def tool(*args, check_rc=0):
        proc = t.host.run([t.plugin, *args], check=False)
        check(proc.returncode == check_rc,
              f'nft-portmap {" ".join(args)}: exit {proc.returncode}, expected {check_rc}: '
              f'{proc.stderr.strip()}')
        return proc

    empty = tool('list', '--json')
    check(json.loads(empty.stdout) == [], f'no table yet: an empty list, got {empty.stdout!r}')
    check('does not exist' in empty.stderr, f'no table yet: says so on stderr: {empty.stderr!r}')
    check('Usage' in tool('--help').stdout, '--help prints the usage')
    check(tool('--version').stdout.startswith('nft-portmap '), '--version')
    check('unknown option' in tool('list', '--bogus', check_rc=2).stderr, 'a bad option: exit 2')

    a = t.add_container('a', [mapping(8080, 80), mapping(5353, 53, 'udp')])
    b = t.add_container('b', [mapping(8081, 81)])
    for addr in t.host_addresses():
        t.expect_reply(t.client, 'tcp', addr, 8080, 'a')

    rows = json.loads(tool('list', '--json').stdout)
    def rows_of(c):
        return [r for r in rows if r['containerID'] == c.id]
    for c, ports in ((a, {('tcp', 8080, 80), ('udp', 5353, 53)}), (b, {('tcp', 8081, 81)})):
        mine = rows_of(c)
        families = {'ipv4'} if t.family == 'ipv4' else {'ipv6'} if t.family == 'ipv6' \
            else {'ipv4', 'ipv6'}
        want = {(p, h, cp, f) for (p, h, cp) in ports for f in families}
        got = {(r['protocol'], r['hostPort'], r['containerPort'], r['family']) for r in mine}
        check(got == want, f'list rows of {c.name}: {got}, expected {want}')
        for r in mine:
            check(r['network'] == t.network_name() and r['ifname'] == c.ifname,
                  f'row names network and interface: {r}')
            check(r.get('record') == c.record_name(), f'row names the record {c.record_name()}: {r}')
            addr = c.ipv4 if r['family'] == 'ipv4' else c.ipv6
            check(r['containerIP'] == addr, f'row has the container address {addr}: {r}')
    # Every connection above went through a's tcp/8080 element of its family;
    # the rows show the elements' counters.
    table = t.nft_table()
    for r in rows_of(a):
        if r['protocol'] == 'tcp':
            check(r['packets'] >= 1, f'the DNAT counter counted the connection: {r}')
        e = table.element(f'ports{r["family"][-1]}', (r['protocol'], r['hostPort']))
        check(e is not None and e.counter == {'packets': r['packets'], 'bytes': r['bytes']},
              f'the row shows the counter of its element {e}: {r}')

    text = tool('list').stdout
    check(text.splitlines()[0].split()[:3] == ['NETWORK', 'CONTAINER', 'IFNAME'],
          f'a table with a header: {text!r}')
    check(a.id[:12] in text and b.id[:12] in text, f'both containers in the table: {text!r}')

    t.delete_container(a)
    rows = json.loads(tool('list', '--json').stdout)
    check(not rows_of(a) and rows_of(b), f'after DEL of a only b is listed: {rows}')
