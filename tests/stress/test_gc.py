#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""GC (CNI 1.1.0): stale attachments of this network go, everything else stays.

    test_gc.py --plugin build/src/nft-portmap [gc|gc_identity|gc_foreign_chain]

Attachments of several networks (one a prefix of another), several
interfaces of one container, long container IDs, and an admin's own chain
in our table. After each GC the kernel's table must equal the model
exactly: the listed attachments keep their records, elements and chains,
other networks are not touched, and nothing of a removed one is left.
"""

import os
import secrets
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (CODE_INVALID_CONFIG, TABLE, Attachment, Conf, Failure, Mapping,  # noqa: E402
                     Model, Plugin, check, expect_outcome, log, nft, read_state,
                     ruleset_snapshot)


class World:
    """Attachments made by the plugin, the model of them, and an admin's own objects."""

    def __init__(self, plugin):
        self.p = Plugin(plugin)
        self.m = Model()
        self.n = 0
        self.admin = False

    def add(self, net, cid, ifname='eth0'):
        self.n += 1
        n = self.n
        att = Attachment(net, cid, ifname, f'10.20.{n}.2/24', f'fd00:20:{n:x}::2/64')
        # Every third one with conditions: a chain and guard elements to remove too.
        conf = Conf((Mapping('tcp', 9000 + n, 80), Mapping('udp', 9000 + n, 53, '192.0.2.1')),
                    cond_v4=('iifname', 'eth0') if n % 3 == 0 else ())
        expect_outcome(self.m.add(att, conf), self.p.add(att, conf), f'ADD {att}')
        return att

    def add_admin_objects(self):
        """An admin's chains, element and counters in our table: not attachments, never GCed.

        (One counter is named and commented like a record of a stale
        attachment of netA, but its name is not that attachment's pm-<hash>.)
        """
        nft('add', 'chain', *TABLE, 'admin-chain', '{ comment "made by hand"; }')
        nft('add', 'chain', *TABLE, 'admin-plain')
        nft('add', 'element', *TABLE, 'ports4', '{ tcp . 5000 : 192.0.2.99 . 50 }')
        nft('add', 'counter', *TABLE, 'admin-counter')
        nft('add', 'counter', *TABLE, ADMIN_RECORD, '{ comment "net=netA id=admin if=eth0"; }')
        self.admin = True

    def expect(self, what):
        st = read_state()
        if self.admin:
            for c in ADMIN_CHAINS:
                check(c in st.chains, f'{what}: the admin\'s chain {c} was removed')
                del st.chains[c]
            for o in ('admin-counter', ADMIN_RECORD):
                check(o in st.objects, f'{what}: the admin\'s counter {o} was removed')
                del st.objects[o]
            elem = st.maps['ports4'].pop(('tcp', '5000'), None)
            check(elem == (('192.0.2.99', '50'), None),
                  f'{what}: the admin\'s element was removed or changed: {elem}')
        diff = self.m.diff(st)
        if diff:
            raise Failure(f'{what}: the kernel differs from the model:\n  ' +
                          '\n  '.join(diff) + f'\n{st.text}')

    def gc(self, net, valid, what, key='cni.dev/valid-attachments', check_state=True):
        valid = {(cid, ifn) for cid, ifn in valid}
        victims = self.m.gc(net, valid)
        out = self.p.gc(net, sorted(valid), key=key)
        check(out.ok, f'{what}: GC failed: {out}')
        if check_state:
            self.expect(what)
        log(f'{what}: removed {len(victims)} ({", ".join(map(str, victims)) or "none"}), '
            f'{len(self.m.present)} attachments remain')
        return set(victims)


ADMIN_CHAINS = ('admin-chain', 'admin-plain')
ADMIN_RECORD = 'pm-0123456789abcdef'


def gc(opts):
    """Removes exactly the listed network's unlisted attachments."""
    w = World(opts.plugin)

    out = w.p.gc('netA', [])
    check(out.ok and not read_state().exists, f'GC without a table: success, no table ({out})')

    a1 = w.add('netA', 'a1')
    a1b = w.add('netA', 'a1', 'eth1')  # second interface of a1
    a2 = w.add('netA', 'a2')
    a3 = w.add('netA', 'a3')
    a4 = w.add('netA', 'a4')
    b1 = w.add('netB', 'a1')           # same container ID, other network
    b2 = w.add('netB', 'b2')
    p1 = w.add('netA-2', 'a2')         # a network whose name extends netA's
    q1 = w.add('net', 'a3')            # and one whose name is a prefix of it
    w.expect('after the ADDs')
    w.add_admin_objects()

    # Without cni.dev/valid-attachments, GC must refuse rather than remove all.
    before = ruleset_snapshot()
    out = w.p.gc('netA', None)
    check(out.code == CODE_INVALID_CONFIG, f'GC without valid-attachments: code 7, got {out}')
    check(ruleset_snapshot() == before, 'the refused GC changed something')

    victims = w.gc('netA', [('a1', 'eth0'), ('a3', 'eth0'), ('zz', 'eth0')],
                   'GC netA keeping a1/eth0, a3 and one that does not exist')
    check(victims == {a1b, a2, a4}, f'GC netA removed {victims}')
    check(not w.gc('netA', [('a1', 'eth0'), ('a3', 'eth0')], 'GC netA again'), 'idempotent')
    check(w.gc('netB', [('b2', 'eth0')], 'GC netB keeping b2') == {b1}, 'GC netB')
    check(w.gc('netA-2', [], 'GC netA-2 with an empty list') == {p1}, 'GC netA-2')
    check(w.gc('net', [], 'GC net (legacy key cni.dev/attachments)',
               key='cni.dev/attachments') == {q1}, 'GC net')
    check(w.m.present.keys() == {a1, a3, b2}, f'left: {list(map(str, w.m.present))}')
    for att, conf in w.m.present.items():
        out = w.p.check(att, conf)
        check(out.ok, f'{att} passes CHECK after the GCs: {out}')


def gc_identity(opts):
    """Long container IDs and network names (cut in comments) are GCed by identity."""
    w = World(opts.plugin)
    long_id = 'k8s-' + secrets.token_hex(60)
    sibling_id = long_id[:-1] + ('0' if long_id[-1] != '0' else '1')
    keep = w.add('netA', long_id)
    gone = w.add('netA', sibling_id)  # same first 123 characters: another attachment
    other_net = w.add('netB', sibling_id)
    victims = w.gc('netA', [(long_id, 'eth0')], 'GC netA with 124-character container IDs')
    check(victims == {gone}, f'GC removed {victims}')
    check(keep in w.m.present and other_net in w.m.present, 'kept the right ones')

    # A network name so long that the comments must cut it: GC of that
    # network still finds its stale attachments, and GC of a network whose
    # name shares the first 110 characters never touches them (the cut
    # field ends in a hash of the whole name).
    long_net = 'n' + 'x' * 110
    twin_net = long_net[:-1] + 'y'
    stale = w.add(long_net, 'stale-' + secrets.token_hex(30))
    valid = w.add(long_net, 'valid-' + secrets.token_hex(30))
    twin = w.add(twin_net, 'twin-' + secrets.token_hex(30))
    check(not w.gc(twin_net, [(twin.cid, 'eth0')], 'GC of the twin network'), 'twin GC')
    victims = w.gc(long_net, [(valid.cid, 'eth0')], 'GC of a 111-character network name')
    check(victims == {stale}, f'GC removed {victims}')
    check(twin in w.m.present, 'the twin network (same 110 first characters) kept its own')


def gc_foreign_chain(opts):
    """GC must not delete a chain or counter it did not make, whatever its comment says.

    (The first version took any chain of our table whose comment parsed as
    "net=<this network> id=.. if=..", without checking that the chain's name
    is that attachment's pm-<hash> name. Records are counters now: the same
    holds for them.)
    """
    w = World(opts.plugin)
    w.add('netA', 'a1')
    w.add('netA', 'a2')
    w.add('netA', 'a3')  # with conditions: a chain
    nft('add', 'chain', *TABLE, 'admin-chain', '{ comment "net=netA id=x if=y"; }')
    nft('add', 'chain', *TABLE, 'pm-0123456789abcdef', '{ comment "net=netA id=x if=y"; }')
    nft('add', 'counter', *TABLE, 'admin-counter', '{ comment "net=netA id=x if=y"; }')
    nft('add', 'counter', *TABLE, 'pm-0123456789abcdef', '{ comment "net=netA id=x if=y"; }')
    victims = w.gc('netA', [('a1', 'eth0')], 'GC of netA among foreign objects', check_state=False)
    check({a.cid for a in victims} == {'a2', 'a3'}, f'GC removed {victims}')
    st = read_state()
    for c in ('admin-chain', 'pm-0123456789abcdef'):
        check(c in st.chains, f'GC deleted chain {c}, which it did not make (its comment looks '
              'like ours)')
        del st.chains[c]
    for o in ('admin-counter', 'pm-0123456789abcdef'):
        check(o in st.objects, f'GC deleted counter {o}, which it did not make (its comment '
              'looks like ours)')
        del st.objects[o]
    diff = w.m.diff(st)
    check(not diff, 'GC among foreign objects: the kernel differs from the model:\n  ' +
          '\n  '.join(diff) + f'\n{st.text}')


TESTS = {'gc': gc, 'gc_identity': gc_identity, 'gc_foreign_chain': gc_foreign_chain}

if __name__ == '__main__':
    from harness import run_main
    run_main(__file__, TESTS)
