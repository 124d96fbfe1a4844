#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Unit tests of cnirun.py (no privileges): it must feed plugins what libcni does.

If the runner injected the wrong runtimeConfig or prevResult, every netns
scenario would test the plugin against inputs no runtime sends. A fake
plugin records each invocation (environment and stdin) to check that.
"""

import json
import os
import stat
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cnirun  # noqa: E402

# Records its call and answers with a result naming itself; fails on demand.
FAKE_PLUGIN = '''#!{python}
import json, os, sys
conf = json.load(sys.stdin)
with open(os.environ['FAKE_LOG'], 'a') as f:
    f.write(json.dumps({{'type': conf['type'], 'command': os.environ['CNI_COMMAND'],
                        'env': {{k: v for k, v in os.environ.items() if k.startswith('CNI_')}},
                        'conf': conf}}) + '\\n')
if conf.get('fail') == os.environ['CNI_COMMAND']:
    print(json.dumps({{'code': 7, 'msg': 'asked to fail', 'details': conf['type']}}))
    sys.exit(1)
if os.environ['CNI_COMMAND'] == 'ADD':
    prev = conf.get('prevResult') or {{'cniVersion': conf['cniVersion'], 'ips': []}}
    prev = dict(prev, by=prev.get('by', []) + [conf['type']])
    print(json.dumps(prev))
'''


class RunnerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.bin = os.path.join(self.dir.name, 'bin')
        os.mkdir(self.bin)
        for name in ('first', 'second'):
            path = os.path.join(self.bin, name)
            with open(path, 'w', encoding='utf-8') as f:
                f.write(FAKE_PLUGIN.format(python=sys.executable))
            os.chmod(path, stat.S_IRWXU)
        self.log = os.path.join(self.dir.name, 'calls')
        os.environ['FAKE_LOG'] = self.log

    def runner(self, version='1.0.0', **second):
        net = {'cniVersion': version, 'name': 'net1', 'plugins': [
            {'type': 'first'},
            dict({'type': 'second', 'capabilities': {'portMappings': True, 'bandwidth': False}},
                 **second)]}
        return cnirun.CniRunner(net, self.bin, os.path.join(self.dir.name, 'cache'))

    def calls(self):
        with open(self.log, encoding='utf-8') as f:
            calls = [json.loads(line) for line in f]
        os.unlink(self.log)
        return calls

    def test_add_chains_results_and_injects_declared_capabilities(self):
        caps = {'portMappings': [{'hostPort': 1}], 'bandwidth': {'x': 1}, 'ipRanges': []}
        result = self.runner().add('ctr1', '/run/netns/x', 'eth0', caps, {'K': 'V'})
        self.assertEqual(result['by'], ['first', 'second'])
        first, second = self.calls()
        self.assertNotIn('prevResult', first['conf'])
        self.assertNotIn('runtimeConfig', first['conf'])  # declares no capability
        self.assertEqual(second['conf']['prevResult']['by'], ['first'])
        self.assertEqual(second['conf']['runtimeConfig'], {'portMappings': [{'hostPort': 1}]})
        for call in (first, second):
            self.assertEqual(call['conf']['name'], 'net1')
            self.assertEqual(call['conf']['cniVersion'], '1.0.0')
            self.assertEqual(call['env']['CNI_CONTAINERID'], 'ctr1')
            self.assertEqual(call['env']['CNI_NETNS'], '/run/netns/x')
            self.assertEqual(call['env']['CNI_IFNAME'], 'eth0')
            self.assertEqual(call['env']['CNI_PATH'], self.bin)
            self.assertEqual(call['env']['CNI_ARGS'], 'K=V')

    def test_del_reverse_order_with_cached_result(self):
        r = self.runner()
        added = r.add('ctr1', '/ns', 'eth0')
        self.calls()
        r.delete('ctr1', '/ns', 'eth0')
        calls = self.calls()
        self.assertEqual([c['type'] for c in calls], ['second', 'first'])
        self.assertEqual([c['command'] for c in calls], ['DEL', 'DEL'])
        for c in calls:
            self.assertEqual(c['conf']['prevResult'], added)
        self.assertIsNone(r.read_cache('ctr1', 'eth0'))
        r.delete('ctr1', '/ns', 'eth0')  # cache gone: no prevResult
        for c in self.calls():
            self.assertNotIn('prevResult', c['conf'])

    def test_del_before_0_4_0_sends_no_prev_result(self):
        r = self.runner('0.3.1')
        r.add('ctr1', '/ns', 'eth0')
        self.calls()
        r.delete('ctr1', '/ns', 'eth0')
        for c in self.calls():
            self.assertNotIn('prevResult', c['conf'])

    def test_check_uses_cache_and_needs_0_4_0(self):
        r = self.runner()
        added = r.add('ctr1', '/ns', 'eth0')
        self.calls()
        r.check('ctr1', '/ns', 'eth0')
        calls = self.calls()
        self.assertEqual([c['type'] for c in calls], ['first', 'second'])
        self.assertTrue(all(c['conf']['prevResult'] == added for c in calls))
        with self.assertRaises(ValueError):
            self.runner('0.3.1').check('ctr1', '/ns', 'eth0')

    def test_error_is_raised_with_the_plugins_message(self):
        r = self.runner(fail='ADD')
        with self.assertRaises(cnirun.CniError) as cm:
            r.add('ctr1', '/ns', 'eth0')
        self.assertEqual((cm.exception.plugin, cm.exception.code, cm.exception.msg),
                         ('second', 7, 'asked to fail'))
        self.assertIsNone(r.read_cache('ctr1', 'eth0'))

    def test_gc_deletes_stale_cached_attachments_then_sends_valid_list(self):
        r = self.runner('1.1.0')
        r.add('keep', '/ns1', 'eth0')
        r.add('gone', '/ns2', 'eth0', {'portMappings': [{'hostPort': 2}]})
        self.calls()
        valid = [{'containerID': 'keep', 'ifname': 'eth0'}]
        r.gc(valid)
        calls = self.calls()
        dels = [c for c in calls if c['command'] == 'DEL']
        self.assertEqual({c['env']['CNI_CONTAINERID'] for c in dels}, {'gone'})
        self.assertEqual(dels[0]['conf']['runtimeConfig'], {'portMappings': [{'hostPort': 2}]})
        gcs = [c for c in calls if c['command'] == 'GC']
        self.assertEqual([c['type'] for c in gcs], ['first', 'second'])
        for c in gcs:
            self.assertEqual(c['conf']['cni.dev/valid-attachments'], valid)
            self.assertNotIn('prevResult', c['conf'])
        with self.assertRaises(ValueError):
            self.runner('1.0.0').gc(valid)

    def test_cli_add_prints_the_result(self):
        conf = os.path.join(self.dir.name, 'net.conflist')
        with open(conf, 'w', encoding='utf-8') as f:
            json.dump(self.runner().net_list, f)
        out = os.path.join(self.dir.name, 'out')
        with open(out, 'w', encoding='utf-8') as f:
            saved, sys.stdout = sys.stdout, f
            try:
                rc = cnirun.main(['ADD', '--conflist', conf, '--cni-path', self.bin,
                                  '--cache-dir', os.path.join(self.dir.name, 'c'),
                                  '--container-id', 'x', '--cap', 'portMappings=[]'])
            finally:
                sys.stdout = saved
        self.assertEqual(rc, 0)
        with open(out, encoding='utf-8') as f:
            self.assertEqual(json.load(f)['by'], ['first', 'second'])


if __name__ == '__main__':
    unittest.main(verbosity=2)
