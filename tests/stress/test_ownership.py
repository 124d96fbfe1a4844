#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Port ownership: conflicts name their owner and change nothing; re-ADD replaces.

    test_ownership.py --plugin build/src/nft-portmap [conflicts|readd]

Each test runs in a throw-away network namespace; the kernel's table is
compared with the model (harness.Model) after every command, and a refused
ADD must leave `nft -a list ruleset` (text and JSON, with handles)
byte-for-byte as it was.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (CODE_CONFLICT, TABLE, Attachment, Conf, Mapping, Model, Plugin,  # noqa: E402
                     check, conflict_key, expect_outcome, expect_state, log, nft, owner_named,
                     port_words, ruleset_snapshot)


def A(net, cid, n, ifname='eth0', v4=True, v6=True):
    return Attachment(net, cid, ifname, f'10.{n // 256}.{n % 256}.2/16' if v4 else None,
                      f'fd00:{n:x}::2/64' if v6 else None)


def refused(plugin, model, att, conf, owner, key, what, mapname='ports4'):
    """ADD must fail with code 100 naming owner, map and key, and change nothing at all."""
    before = ruleset_snapshot()
    out = plugin.add(att, conf)
    check(not out.ok and out.code == CODE_CONFLICT,
          f'{what}: expected a conflict (code 100), got {out}')
    check(conflict_key(out) == (mapname, key),
          f'{what}: expected the key {key!r} of map {mapname} (details, and "(map ...)" in the '
          f'message), got {conflict_key(out)}: {out}')
    check(f'host {port_words(mapname, key.split(" . "))} is already published by' in out.msg,
          f'{what}: the error must say which host port in words: {out.msg}')
    check(owner_named(out.msg, owner), f'{what}: the error must name the owner {owner} '
          f'(container, network, interface): {out.msg}')
    check(ruleset_snapshot() == before, f'{what}: the refused ADD changed the ruleset')
    expect_state(model, what)
    log(f'{what}: refused as expected: {out.msg}')


def applied(plugin, model, att, conf, what):
    expect = model.add(att, conf)
    expect_outcome(expect, plugin.add(att, conf), what)
    expect_state(model, what)
    plugin_check = plugin.check(att, conf)
    check(plugin_check.ok, f'{what}: CHECK after a successful ADD failed: {plugin_check}')


def conflicts(opts):
    """Every kind of host key is exclusive; the error names network, container, interface."""
    p = Plugin(opts.plugin)
    m = Model()
    owner = A('netA', 'owner', 1)
    owner_conf = Conf((Mapping('tcp', 8080, 80), Mapping('udp', 53, 53, '192.0.2.1'),
                       Mapping('tcp', 443, 8443, '2001:db8::1'), Mapping('sctp', 9999, 9)))
    applied(p, m, owner, owner_conf, 'ADD of the owner')

    other = A('netA', 'other', 2)
    free = Mapping('tcp', 7000, 70)
    cases = [
        (Mapping('tcp', 8080, 81), 'tcp . 8080', 'ports4', 'any-address port'),
        (Mapping('udp', 53, 5353, '192.0.2.1'), '192.0.2.1 . udp . 53', 'addrports4',
         'IPv4 hostIP port'),
        (Mapping('tcp', 443, 443, '2001:db8::1'), '2001:db8::1 . tcp . 443', 'addrports6',
         'IPv6 hostIP port'),
        (Mapping('sctp', 9999, 1), 'sctp . 9999', 'ports4', 'SCTP port'),
        (Mapping('tcp', 8080, 80, '0.0.0.0'), 'tcp . 8080', 'ports4', 'hostIP 0.0.0.0 (= any)'),
    ]
    for mapping, key, mapname, what in cases:
        # The free mapping comes first: nothing of it may be applied either.
        refused(p, m, other, Conf((free, mapping)), owner, key, f'conflict on the {what}', mapname)
        # The same with conditions: the keys of an attachment with
        # conditions are claimed in the data maps as well.
        refused(p, m, other, Conf((free, mapping), cond_v4=('iifname', 'eth0'),
                                  cond_v6=('ip6 daddr fd00::/16',)),
                owner, key, f'conflict on the {what}, ADD with conditions', mapname)

    # The same container ID on another network, and on another interface of
    # the same network: different attachments, so the same conflicts.
    refused(p, m, A('netB', 'owner', 3), Conf((Mapping('tcp', 8080, 80),)), owner,
            'tcp . 8080', 'the owner\'s container on another network')
    refused(p, m, A('netA', 'owner', 4, ifname='eth1'), Conf((Mapping('tcp', 8080, 80),)),
            owner, 'tcp . 8080', 'the owner\'s container on another interface')

    # Different keys do not conflict: protocol, family, a hostIP beside "any".
    applied(p, m, other, Conf((Mapping('udp', 8080, 80), Mapping('tcp', 53, 53, '192.0.2.1'),
                               Mapping('tcp', 8080, 80, '192.0.2.3'))),
            'ADD of other keys of the same ports')
    v4only = A('netA', 'v4only', 5, v6=False)
    v6only = A('netA', 'v6only', 6, v4=False)
    applied(p, m, v4only, Conf((Mapping('tcp', 6000, 60),)), 'ADD of an IPv4-only container')
    applied(p, m, v6only, Conf((Mapping('tcp', 6000, 61),)),
            'ADD of an IPv6-only container on the same port (other family)')
    refused(p, m, A('netA', 'dual', 7), Conf((Mapping('tcp', 6000, 62),)), v4only,
            'tcp . 6000', 'a dual-stack ADD where only IPv4 is taken')

    # An owner with conditions holds its ports as firmly (guard elements and
    # data-map claims): for ADDs with and without conditions.
    guarded = A('netA', 'guarded', 9, v6=False)
    applied(p, m, guarded,
            Conf((Mapping('tcp', 8443, 443), Mapping('udp', 8443, 443, '192.0.2.1')),
                 cond_v4=('ip saddr != { 10.0.0.0/8, 192.0.2.1 }', 'iifname', 'veth*')),
            'ADD of an owner with conditionsV4')
    refused(p, m, other, Conf((Mapping('tcp', 8443, 1),)), guarded, 'tcp . 8443',
            'conflict with an owner with conditions')
    refused(p, m, other, Conf((Mapping('udp', 8443, 1, '192.0.2.1'),), cond_v4=('iifname', 'eth0')),
            guarded, '192.0.2.1 . udp . 8443', 'conflict of conditions with conditions',
            'addrports4')
    applied(p, m, v6only, Conf((Mapping('tcp', 6000, 61), Mapping('tcp', 8443, 1)),
                               cond_v6=('iifname', 'eth0')),
            'the IPv6 key of a port whose IPv4 key has conditions is free')

    # A port held by something that is not ours (an admin's element in our
    # map) is a conflict too, and the message says so.
    late = A('netA', 'late', 8)
    nft('add', 'element', *TABLE, 'ports4', '{ tcp . 5000 : 192.0.2.99 . 50 }')
    nft('add', 'element', *TABLE, 'ports4',
        '{ tcp . 5001 comment "made by hand" : 192.0.2.99 . 51 }')
    for port, says in ((5000, 'an element without an owner comment (not written by nft-portmap)'),
                       (5001, 'an element with comment "made by hand" (not an nft-portmap '
                              'attachment)')):
        before = ruleset_snapshot()
        out = p.add(late, Conf((Mapping('tcp', port, 50),)))
        check(out.code == CODE_CONFLICT and says in out.msg and
              conflict_key(out) == ('ports4', f'tcp . {port}'),
              f'a port held by an admin\'s element: expected code 100 saying {says!r}, got {out}')
        check(ruleset_snapshot() == before, 'the refused ADD changed the ruleset')
        log(f'a port held by an admin\'s element: {out.msg}')
    nft('delete', 'element', *TABLE, 'ports4', '{ tcp . 5000, tcp . 5001 }')

    # DEL of the refused attachments (a runtime cleans up a failed ADD)
    # must leave the owner alone.
    for att in (other, A('netB', 'owner', 3), A('netA', 'owner', 4, ifname='eth1'), late):
        expect_outcome(m.delete(att), p.delete(att), f'DEL of {att}')
    expect_state(m, 'after the DELs of the refused attachments')
    check(p.check(owner, owner_conf).ok, 'the owner passes CHECK after all that')
    check(p.check(guarded, m.present[guarded]).ok, 'the owner with conditions passes CHECK')
    log(f'conflicts: {2 * len(cases) + 7} refused ADDs left the ruleset untouched')


def readd(opts):
    """ADD again for the same attachment replaces its state in one step."""
    p = Plugin(opts.plugin)
    m = Model()
    a = A('netA', 'a', 1)
    b = A('netA', 'b', 2)
    cond_a = ('iifname', 'eth0')
    cond_b = ('ip', 'saddr', '==', '192.0.2.0/24')
    steps = [
        Conf((Mapping('tcp', 8080, 80), Mapping('udp', 8081, 81))),
        Conf((Mapping('tcp', 8080, 80), Mapping('udp', 8081, 81))),   # identical again
        Conf((Mapping('tcp', 8080, 90), Mapping('tcp', 8082, 82))),   # one port kept, retargeted
        Conf((Mapping('tcp', 8090, 80, '192.0.2.1'),)),               # all keys change
        Conf((Mapping('tcp', 8090, 80, '192.0.2.1'),), snat=False),   # masquerade goes
        Conf((Mapping('tcp', 8090, 80, '192.0.2.1'),), masq_all=True),  # and comes back, /0
        # conditions: a chain and guard elements appear, for IPv4 only
        Conf((Mapping('tcp', 8090, 80, '192.0.2.1'), Mapping('tcp', 8091, 81)), cond_v4=cond_a),
        # IPv6 gets conditions too, IPv4 other ones: the chain is rewritten
        Conf((Mapping('tcp', 8090, 80, '192.0.2.1'), Mapping('tcp', 8091, 81)), cond_v4=cond_b,
             cond_v6=('ip6 daddr fd00::/16',)),
        # IPv4 loses its conditions, one DNAT is retargeted
        Conf((Mapping('tcp', 8090, 80, '192.0.2.1'), Mapping('tcp', 8091, 82)),
             cond_v6=('ip6 daddr fd00::/16',)),
        Conf((Mapping('tcp', 8090, 80, '2001:db8::1'),)),             # IPv6 only, no chain
    ]
    for i, conf in enumerate(steps):
        applied(p, m, a, conf, f're-ADD step {i}')
        # The old configuration must not pass CHECK any more (unless identical).
        if i and steps[i - 1] != conf:
            check(not p.check(a, steps[i - 1]).ok, f'step {i}: CHECK of the old config passed')

    applied(p, m, b, Conf((Mapping('tcp', 7000, 70),)), 'ADD of b')
    # A re-ADD of a that would take b's port fails as a whole: a keeps
    # exactly its previous state.
    refused(p, m, a, Conf((Mapping('tcp', 8095, 80), Mapping('tcp', 7000, 70))), b,
            'tcp . 7000', 're-ADD of a onto a port of b')
    check(p.check(a, steps[-1]).ok, 'a keeps its previous state after the refused re-ADD')

    # A re-ADD that keeps b's old port for a after b released it.
    expect_outcome(m.delete(b), p.delete(b), 'DEL of b')
    applied(p, m, a, Conf((Mapping('tcp', 7000, 70),)), 're-ADD of a onto the released port')

    # ADD with mappings none of which apply to a's families: as DEL.
    v4only = A('netA', 'v4', 3, v6=False)
    applied(p, m, v4only, Conf((Mapping('tcp', 6000, 60),)), 'ADD of an IPv4-only container')
    conf = Conf((Mapping('tcp', 6000, 60, '2001:db8::1'),))
    expect_outcome(m.add(v4only, conf), p.add(v4only, conf), 're-ADD with IPv6-only mappings')
    expect_state(m, 're-ADD with nothing applicable removes the attachment\'s state')
    log(f'readd: {len(steps)} replacements, each checked against the model and by CHECK')


def address_reuse(opts):
    """IPAM gives a stale container's address to a new one: the masquerade follows the address."""
    p = Plugin(opts.plugin)
    m = Model()
    stale = A('netA', 'stale', 1)
    new = Attachment('netA', 'new', 'eth0', stale.v4, stale.v6)  # the same addresses
    applied(p, m, stale, Conf((Mapping('tcp', 8080, 80),)), 'ADD of the stale container')
    # The runtime lost track of it (no DEL); the new container gets its
    # addresses: the masq elements of those addresses are taken over, its
    # port elements are not.
    applied(p, m, new, Conf((Mapping('tcp', 9090, 90),)), 'ADD of a container with its addresses')
    refused(p, m, new, Conf((Mapping('tcp', 8080, 80),)), stale, 'tcp . 8080',
            'the new container cannot take the stale one\'s port')
    out = p.check(stale, Conf((Mapping('tcp', 8080, 80),)))
    check(out.code == 103, f'CHECK of the stale container: its masq elements are gone: {out}')
    # The late DEL of the stale container leaves the new one whole.
    expect_outcome(m.delete(stale), p.delete(stale), 'late DEL of the stale container')
    expect_state(m, 'after the late DEL')
    check(p.check(new, Conf((Mapping('tcp', 9090, 90),))).ok, 'the new container passes CHECK')
    log('address reuse: the masquerade elements moved to the new owner; the late DEL kept them')


TESTS = {'conflicts': conflicts, 'readd': readd, 'address_reuse': address_reuse}

if __name__ == '__main__':
    from harness import run_main
    run_main(__file__, TESTS)
