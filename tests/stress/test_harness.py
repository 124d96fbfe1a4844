#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The stress tests' own logic, without privileges: can they fail?

The model, the answer checks and the linearizability check are what decide
whether the plugin passes; here they are fed hand-made states and answers,
right and wrong, and must tell them apart.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_concurrency as tc  # noqa: E402
from harness import (CODE_CHECK_FAILED, CODE_CONFLICT, Attachment, Conf, KernelState,  # noqa: E402
                     Mapping, Model, Outcome, comment_matches, cut_suffix, parse_chains,
                     plan_keys, plan_rules)

A = Attachment('netA', 'a', 'eth0', '10.1.0.2/24', 'fd00:1::2/64')
B = Attachment('netB', 'b', 'eth0', '10.2.0.2/24', None)
P8080 = Conf((Mapping('tcp', 8080, 80),))


def conflict(owner, key='tcp . 8080', mapname='ports4'):
    return Outcome(1, CODE_CONFLICT, f'host port is already published by container {owner.cid} '
                   f'(network {owner.net}, interface {owner.ifname}); nothing was changed',
                   f'map {mapname} element {key} jumps to chain {owner.chain}')


def state_of(model):
    """The KernelState a correct plugin would leave for this model."""
    maps = {m: {} for m in ('ports4', 'ports6', 'addrports4', 'addrports6', 'masq4', 'masq6')}
    for (mapname, key), owner in model.owner.items():
        target = owner.masq_chain if mapname.startswith('masq') else owner.chain
        maps[mapname][key] = (target, owner.comment)
    import harness
    chains = {n: {'comment': None, 'hook': 'type ...', 'rules': list(r)}
              for n, r in harness.SKELETON_RULES.items()}
    chains.update(model.expected_chains())
    return KernelState(model.skeleton, ['inet nft-portmap'] if model.skeleton else [], maps, {},
                       chains, '')


class Names(unittest.TestCase):
    def test_chain_names_are_the_plugins(self):
        # Values from tests/unit/portmap/test_names.cpp and a kernel listing.
        kid64 = '0123456789abcdef' * 4
        self.assertEqual(Attachment('podman', kid64, 'eth0').chain, 'pm-63f2bd6e203647a9')
        self.assertEqual(Attachment('cbr0', 'abc', 'eth1').masq_chain, 'pm-c9aed3c470e5e1c4-masq')
        self.assertEqual(Attachment('netA', 'c1', 'eth0').chain, 'pm-11a47da683f434f6')

    def test_cut_comments(self):
        cid = 'k8s-' + 'f' * 120
        full = f'net=n id={cid} if=eth0'
        cut = f'net=n id={cid[:40]}{cut_suffix(cid)} if=eth0'
        self.assertTrue(comment_matches(cut, full))
        self.assertFalse(comment_matches(cut, f'net=n id={cid[:-1]}e if=eth0'))
        self.assertFalse(comment_matches(f'net=n id={cid[:40]}~00000000 if=eth0', full))
        self.assertFalse(comment_matches('net=m id=x if=eth0', 'net=n id=x if=eth0'))


class Plans(unittest.TestCase):
    def test_families_and_host_ips(self):
        conf = Conf((Mapping('tcp', 80, 8080), Mapping('udp', 53, 53, '192.0.2.1'),
                     Mapping('tcp', 443, 443, '2001:db8::1'), Mapping('sctp', 9, 9, '0.0.0.0')))
        self.assertEqual([(f, m.host_port) for f, m, _ in plan_rules(B, conf)],
                         [(4, 80), (4, 53), (4, 9)])
        self.assertEqual(plan_keys(A, conf), [
            ('ports4', ('tcp', '80')), ('ports6', ('tcp', '80')),
            ('addrports4', ('192.0.2.1', 'udp', '53')), ('addrports6', ('2001:db8::1', 'tcp', '443')),
            ('ports4', ('sctp', '9')), ('ports6', ('sctp', '9')),
            ('masq4', ('10.1.0.2',)), ('masq6', ('fd00:1::2',))])
        self.assertEqual(plan_keys(A, Conf(conf.mappings, snat=False))[-1],
                         ('ports6', ('sctp', '9')))

    def test_listing_parser(self):
        text = ('table inet nft-portmap {\n\tchain pm-1 {\n\t\tcomment "net=a id=b if=c"\n'
                '\t\tmeta nfproto ipv4 tcp dport 1 counter packets 3 bytes 180 dnat ip to 10.0.0.1:2\n'
                '\t}\n}\n')
        self.assertEqual(parse_chains(text), {'pm-1': {
            'comment': 'net=a id=b if=c', 'hook': None,
            'rules': ['meta nfproto ipv4 tcp dport 1 counter dnat ip to 10.0.0.1:2']}})


class ModelAndAnswers(unittest.TestCase):
    def test_conflict_must_name_the_owner(self):
        m = Model()
        self.assertTrue(m.add(A, P8080).accepts(Outcome(0))[0])
        expect = m.add(B, P8080)
        self.assertTrue(expect.accepts(conflict(A))[0])
        self.assertFalse(expect.accepts(Outcome(0))[0], 'a second owner of the port')
        self.assertFalse(expect.accepts(conflict(B))[0], 'naming the wrong owner')
        self.assertFalse(expect.accepts(conflict(A, 'tcp . 9090'))[0], 'naming another port')
        self.assertFalse(expect.accepts(Outcome(1, CODE_CHECK_FAILED, 'x'))[0], 'another code')

    def test_check_and_gc(self):
        m = Model()
        m.add(A, P8080)
        self.assertEqual(m.check(A, P8080).codes, (0,))
        self.assertEqual(m.check(A, Conf((Mapping('tcp', 8080, 81),))).codes, (CODE_CHECK_FAILED,))
        self.assertEqual(m.check(B, P8080).codes, (CODE_CHECK_FAILED,))
        m.add(B, Conf((Mapping('udp', 1, 1),)))
        self.assertEqual(m.gc('netA', set()), [A])
        self.assertEqual(list(m.present), [B])

    def test_diff_sees_every_kind_of_difference(self):
        m = Model()
        m.add(A, Conf((Mapping('tcp', 8080, 80), Mapping('udp', 53, 53, '192.0.2.1'))))
        good = state_of(m)
        self.assertEqual(m.diff(good), [])
        bad = state_of(m)
        del bad.maps['ports6'][('tcp', '8080')]
        self.assertTrue(m.diff(bad))
        bad = state_of(m)
        bad.maps['ports4'][('tcp', '8080')] = (B.chain, B.comment)
        self.assertTrue(m.diff(bad))
        bad = state_of(m)
        bad.chains[A.chain]['rules'].reverse()
        self.assertTrue(m.diff(bad))
        bad = state_of(m)
        bad.chains['dispatch']['rules'].append(bad.chains['dispatch']['rules'][0])
        self.assertTrue(m.diff(bad), 'a skeleton rule added twice')
        bad = state_of(m)
        bad.chains[B.chain] = {'comment': B.comment, 'hook': None, 'rules': []}
        self.assertTrue(m.diff(bad), 'a chain nobody owns')


class Linearizability(unittest.TestCase):
    def ops(self, *spec):
        seqs = []
        for seq in spec:
            ops = []
            for kind, att, out, t0, t1 in seq:
                op = tc.Op(kind, att, P8080)
                out.t0, out.t1 = t0, t1
                op.out = out
                ops.append(op)
            seqs.append(ops)
        return seqs

    def test_one_winner(self):
        seqs = self.ops([('ADD', A, Outcome(0), 0, 2)], [('ADD', B, conflict(A), 1, 3)])
        final = Model()
        final.add(A, P8080)
        self.assertEqual(len(tc.linearizations(Model(), seqs, state_of(final))), 1)

    def test_two_winners_or_a_wrong_state_are_refused(self):
        seqs = self.ops([('ADD', A, Outcome(0), 0, 2)], [('ADD', B, Outcome(0), 1, 3)])
        final = Model()
        final.add(A, P8080)
        self.assertEqual(tc.linearizations(Model(), seqs, state_of(final)), [])
        seqs = self.ops([('ADD', A, Outcome(0), 0, 2)], [('ADD', B, conflict(A), 1, 3)])
        self.assertEqual(tc.linearizations(Model(), seqs, state_of(Model())), [],
                         'the winner\'s mapping is gone')

    def test_real_time_order(self):
        # B's DEL ended before A's ADD started, and then B's conflict
        # named A: fine. A DEL of A that ended before A's ADD began cannot
        # have removed it.
        seqs = self.ops([('ADD', A, Outcome(0), 5, 6)], [('DEL', A, Outcome(0), 0, 1)])
        final = Model()
        final.add(A, P8080)
        self.assertEqual(len(tc.linearizations(Model(), seqs, state_of(final))), 1)
        self.assertEqual(tc.linearizations(Model(), seqs, state_of(Model())), [])


if __name__ == '__main__':
    unittest.main(verbosity=2)
