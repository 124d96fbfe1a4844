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
from harness import (CODE_CHECK_FAILED, CODE_CONFLICT, MAPS, SKELETON_HOOKS,  # noqa: E402
                     SKELETON_RULES, Attachment, Conf, KernelState, Mapping, Model, Outcome,
                     chain_rule_texts, comment_matches, cut_suffix, masq_rule_text, parse_chains,
                     parse_element, plan_keys, plan_rules, port_words)

A = Attachment('netA', 'a', 'eth0', '10.1.0.2/24', 'fd00:1::2/64')
B = Attachment('netB', 'b', 'eth0', '10.2.0.2/24', None)
P8080 = Conf((Mapping('tcp', 8080, 80),))
GUARDED = Conf((Mapping('tcp', 8080, 80), Mapping('udp', 53, 53, '192.0.2.1')),
               cond_v4=('iifname', 'eth0'))


def conflict(owner, key='tcp . 8080', mapname='ports4'):
    words = port_words(mapname, key.split(' . '))
    return Outcome(1, CODE_CONFLICT, f'host {words} is already published by container '
                   f'{owner.cid} (network {owner.net}, interface {owner.ifname}) (map {mapname}); '
                   'nothing was changed', key)


def state_of(model):
    """The KernelState a correct plugin would leave for this model."""
    maps = {m: {} for m in MAPS + tuple(model.masq_sets)}
    for (name, key), value in model.expected_elements().items():
        maps[name][key] = value
    chains = {n: {'comment': None, 'hook': SKELETON_HOOKS[n], 'rules': list(r or [])}
              for n, r in SKELETON_RULES.items()}
    chains['postrouting']['rules'] = [masq_rule_text(n) for n in model.masq_sets]
    chains.update(model.expected_chains())
    objects = {a.record: ('counter', a.comment) for a in model.present}
    return KernelState(model.skeleton, ['inet nft-portmap'] if model.skeleton else [], maps, {},
                       objects, chains, '')


class Names(unittest.TestCase):
    def test_record_names_are_the_plugins(self):
        # Values from tests/unit/portmap/test_names.cpp and a kernel listing.
        kid64 = '0123456789abcdef' * 4
        self.assertEqual(Attachment('podman', kid64, 'eth0').record, 'pm-63f2bd6e203647a9')
        self.assertEqual(Attachment('cbr0', 'abc', 'eth1').chain, 'pm-c9aed3c470e5e1c4')
        self.assertEqual(Attachment('netA', 'c1', 'eth0').chain, 'pm-11a47da683f434f6')

    def test_cut_comments(self):
        cid = 'k8s-' + 'f' * 120
        full = f'net=n id={cid} if=eth0'
        cut = f'net=n id={cid[:40]}{cut_suffix(cid)} if=eth0'
        self.assertTrue(comment_matches(cut, full))
        self.assertFalse(comment_matches(cut, f'net=n id={cid[:-1]}e if=eth0'))
        self.assertFalse(comment_matches(f'net=n id={cid[:40]}~00000000 if=eth0', full))
        self.assertFalse(comment_matches('net=m id=x if=eth0', 'net=n id=x if=eth0'))

    def test_masq_rules_and_port_words(self):
        # As nft 1.0.6 lists them (ruleset.hpp).
        self.assertEqual(masq_rule_text('masq4-16'),
                         'ct status dnat ip daddr . ip saddr & 255.255.0.0 @masq4-16 counter '
                         'masquerade')
        self.assertEqual(masq_rule_text('masq6-64'),
                         'ct status dnat ip6 daddr . ip6 saddr & ffff:ffff:ffff:ffff:: @masq6-64 '
                         'counter masquerade')
        self.assertEqual(masq_rule_text('masq4-0'),
                         'ct status dnat ip daddr . ip saddr & 0.0.0.0 @masq4-0 counter masquerade')
        self.assertEqual(port_words('ports6', ('udp', '53')), 'udp port 53 on every IPv6 address')
        self.assertEqual(port_words('addrguard4', ('192.0.2.1', 'tcp', '1')),
                         'tcp port 1 on 192.0.2.1')


class Plans(unittest.TestCase):
    def test_families_and_host_ips(self):
        conf = Conf((Mapping('tcp', 80, 8080), Mapping('udp', 53, 53, '192.0.2.1'),
                     Mapping('tcp', 443, 443, '2001:db8::1'), Mapping('sctp', 9, 9, '0.0.0.0')))
        self.assertEqual([(f, m.host_port) for f, m, _ in plan_rules(B, conf)],
                         [(4, 80), (4, 53), (4, 9)])
        ports = [
            ('ports4', ('tcp', '80')), ('ports6', ('tcp', '80')),
            ('addrports4', ('192.0.2.1', 'udp', '53')),
            ('addrports6', ('2001:db8::1', 'tcp', '443')),
            ('ports4', ('sctp', '9')), ('ports6', ('sctp', '9'))]
        self.assertEqual(plan_keys(A, conf), ports + [
            ('masq4-24', ('10.1.0.2', '10.1.0.0')), ('masq4-8', ('10.1.0.2', '127.0.0.0')),
            ('masq6-64', ('fd00:1::2', 'fd00:1::'))])
        self.assertEqual(plan_keys(A, Conf(conf.mappings, snat=False)), ports)
        self.assertEqual(plan_keys(A, Conf(conf.mappings, masq_all=True)), ports + [
            ('masq4-0', ('10.1.0.2', '0.0.0.0')), ('masq6-0', ('fd00:1::2', '::'))])
        guarded = Conf(conf.mappings, snat=False, cond_v4=('iifname', 'eth0'))
        self.assertEqual(plan_keys(A, guarded), ports + [
            ('guard4', ('tcp', '80')), ('addrguard4', ('192.0.2.1', 'udp', '53')),
            ('guard4', ('sctp', '9'))])

    def test_chain_of_an_attachment_with_conditions(self):
        self.assertIsNone(chain_rule_texts(A, P8080))
        self.assertEqual(chain_rule_texts(A, GUARDED), [
            'meta nfproto ipv4 tcp dport 8080 iifname "eth0" counter dnat ip to 10.1.0.2:80',
            'ip daddr 192.0.2.1 udp dport 53 iifname "eth0" counter dnat ip to 10.1.0.2:53',
            'accept'])
        # As nft 1.0.6 lists it: an ip address match hides "meta nfproto".
        conf = Conf(P8080.mappings, cond_v4=('ip', 'saddr', '==', '192.0.2.0/24'),
                    cond_v6=('iifname', 'eth0'))
        self.assertEqual(chain_rule_texts(A, conf), [
            'tcp dport 8080 ip saddr 192.0.2.0/24 counter dnat ip to 10.1.0.2:80',
            'meta nfproto ipv6 tcp dport 8080 iifname "eth0" counter dnat ip6 to [fd00:1::2]:80',
            'accept'])
        with self.assertRaises(KeyError):
            chain_rule_texts(A, Conf(P8080.mappings, cond_v4=('iifname', 'unknown')))

    def test_listing_parser(self):
        text = ('table inet nft-portmap {\n\tcounter pm-1 {\n\t\tcomment "net=a id=b if=c"\n'
                '\t\tpackets 0 bytes 0\n\t}\n\n\tchain pm-1 {\n\t\tcomment "net=a id=b if=c"\n'
                '\t\tmeta nfproto ipv4 tcp dport 1 iifname "x" counter packets 3 bytes 180 '
                'dnat ip to 10.0.0.1:2\n\t\taccept\n\t}\n}\n')
        self.assertEqual(parse_chains(text), {'pm-1': {
            'comment': 'net=a id=b if=c', 'hook': None,
            'rules': ['meta nfproto ipv4 tcp dport 1 iifname "x" counter dnat ip to 10.0.0.1:2',
                      'accept']}})

    def test_json_elements(self):
        # The shapes of `nft -j list table` (nft 1.0.6).
        data = [{'elem': {'val': {'concat': ['tcp', 8080]}, 'comment': 'net=a id=b if=c',
                          'counter': {'packets': 0, 'bytes': 0}}},
                {'concat': ['10.1.0.2', 80]}]
        self.assertEqual(parse_element(data),
                         (('tcp', '8080'), ('10.1.0.2', '80'), 'net=a id=b if=c'))
        guard = [{'elem': {'val': {'concat': ['tcp', 8080]}, 'comment': 'x'}},
                 {'jump': {'target': 'pm-1'}}]
        self.assertEqual(parse_element(guard), (('tcp', '8080'), 'jump pm-1', 'x'))
        masq = {'elem': {'val': {'concat': ['fd00:1:0::2', 'fd00:1::']}, 'comment': 'x'}}
        self.assertEqual(parse_element(masq), (('fd00:1::2', 'fd00:1::'), None, 'x'))
        bare = [{'concat': ['tcp', 5000]}, {'concat': ['192.0.2.9', 50]}]
        self.assertEqual(parse_element(bare), (('tcp', '5000'), ('192.0.2.9', '50'), None))


class ModelAndAnswers(unittest.TestCase):
    def test_conflict_must_name_the_owner(self):
        m = Model()
        self.assertTrue(m.add(A, P8080).accepts(Outcome(0))[0])
        expect = m.add(B, P8080)
        self.assertTrue(expect.accepts(conflict(A))[0])
        self.assertFalse(expect.accepts(Outcome(0))[0], 'a second owner of the port')
        self.assertFalse(expect.accepts(conflict(B))[0], 'naming the wrong owner')
        self.assertFalse(expect.accepts(conflict(A, 'tcp . 9090'))[0], 'naming another port')
        self.assertFalse(expect.accepts(conflict(A, mapname='ports6'))[0], 'naming another map')
        self.assertFalse(expect.accepts(Outcome(1, CODE_CHECK_FAILED, 'x'))[0], 'another code')

    def test_masq_elements_follow_the_address(self):
        m = Model()
        m.add(A, P8080)
        twin = Attachment('netA', 'twin', 'eth0', A.v4, A.v6)
        self.assertEqual(m.add(twin, Conf((Mapping('tcp', 9090, 90),))).codes, (0,))
        self.assertEqual(m.owner[('masq4-24', ('10.1.0.2', '10.1.0.0'))], twin)
        self.assertEqual(m.owner[('ports4', ('tcp', '8080'))], A)
        self.assertEqual(m.check(A, P8080).codes, (CODE_CHECK_FAILED,), 'A lost its masq elements')
        m.delete(A)
        self.assertEqual(m.owner[('masq6-64', ('fd00:1::2', 'fd00:1::'))], twin)
        self.assertEqual(m.masq_sets, {'masq4-24', 'masq4-8', 'masq6-64'})

    def test_check_and_gc(self):
        m = Model()
        m.add(A, P8080)
        self.assertEqual(m.check(A, P8080).codes, (0,))
        self.assertEqual(m.check(A, Conf((Mapping('tcp', 8080, 81),))).codes, (CODE_CHECK_FAILED,))
        self.assertEqual(m.check(A, Conf(P8080.mappings, snat=False)).codes, (CODE_CHECK_FAILED,))
        self.assertEqual(m.check(A, Conf(P8080.mappings, cond_v4=('iifname', 'eth0'))).codes,
                         (CODE_CHECK_FAILED,))
        self.assertEqual(m.check(B, P8080).codes, (CODE_CHECK_FAILED,))
        m.add(B, Conf((Mapping('udp', 1, 1),)))
        self.assertEqual(m.gc('netA', set()), [A])
        self.assertEqual(list(m.present), [B])
        self.assertEqual(m.masq_sets, {'masq4-24', 'masq4-8', 'masq6-64'}, 'sets stay')

    def test_diff_sees_every_kind_of_difference(self):
        m = Model()
        m.add(A, Conf((Mapping('tcp', 8080, 80), Mapping('udp', 53, 53, '192.0.2.1'))))
        # B is IPv4 only, with conditionsV4: a chain and guard elements.
        guarded = Conf((Mapping('tcp', 9090, 90), Mapping('udp', 53, 53, '192.0.2.2')),
                       cond_v4=GUARDED.cond_v4)
        self.assertEqual(m.add(B, guarded).codes, (0,))
        good = state_of(m)
        self.assertEqual(m.diff(good), [])
        cases = []

        def case(what, change):
            bad = state_of(m)
            change(bad)
            cases.append((what, bad))

        case('a data-map element missing', lambda st: st.maps['ports6'].pop(('tcp', '8080')))
        case('an element owned by another', lambda st: st.maps['ports4'].update(
            {('tcp', '8080'): (('10.1.0.2', '80'), B.comment)}))
        case('an element mapping elsewhere', lambda st: st.maps['ports4'].update(
            {('tcp', '8080'): (('10.1.0.2', '81'), A.comment)}))
        case('a masq element missing', lambda st: st.maps['masq4-8'].pop(('10.1.0.2', '127.0.0.0')))
        case('a guard element missing', lambda st: st.maps['addrguard4'].clear())
        case('a guard jumping elsewhere', lambda st: st.maps['guard4'].update(
            {('tcp', '9090'): (f'jump {A.chain}', B.comment)}))
        case('an element nobody owns', lambda st: st.maps['ports6'].update(
            {('udp', '1'): (('fd00::9', '1'), None)}))
        case('a masq set missing', lambda st: st.maps.pop('masq6-64'))
        case('a masq set too many', lambda st: st.maps.update({'masq6-48': {}}))
        case('a masquerade rule missing', lambda st: st.chains['postrouting']['rules'].pop())
        case('a masquerade rule twice', lambda st: st.chains['postrouting']['rules'].append(
            st.chains['postrouting']['rules'][0]))
        case('a record missing', lambda st: st.objects.pop(A.record))
        case('a record with another comment', lambda st: st.objects.update(
            {A.record: ('counter', B.comment)}))
        case('a record nobody owns', lambda st: st.objects.update(
            {'pm-0000000000000000': ('counter', 'net=x id=y if=z')}))
        case('chain rules reordered', lambda st: st.chains[B.chain]['rules'].reverse())
        case('chain without its accept', lambda st: st.chains[B.chain]['rules'].pop())
        case('chain missing', lambda st: st.chains.pop(B.chain))
        case('a skeleton rule added twice', lambda st: st.chains['dispatch']['rules'].append(
            st.chains['dispatch']['rules'][0]))
        case('a base chain of another type', lambda st: st.chains['postrouting'].update(
            hook='type filter hook postrouting priority srcnat; policy accept;'))
        case('a chain nobody owns', lambda st: st.chains.update(
            {A.chain: {'comment': A.comment, 'hook': None, 'rules': []}}))
        for what, bad in cases:
            self.assertTrue(m.diff(bad), what)


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
