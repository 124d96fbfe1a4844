#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Regenerates the seed corpus of the fuzz targets from the repository's own inputs.

    tests/fuzz/make_corpus.py          (writes tests/fuzz/corpus/{config,result}/)

result/: the captured bridge results (tests/unit/fixtures) and variations.
config/: the nft-portmap entry of every contrib/conflists file as libcni
hands it to the plugin (name and cniVersion injected, runtimeConfig,
prevResult from the fixture of that version), plus GC and STATUS inputs and
refused shapes.
"""

import glob
import hashlib
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, '..', '..')
OUT = os.path.join(HERE, 'corpus')

MAPPINGS = [
    [{'hostPort': 8080, 'containerPort': 80, 'protocol': 'tcp'}],
    [{'hostPort': 53, 'containerPort': 53, 'protocol': 'udp', 'hostIP': '192.0.2.1'},
     {'hostPort': 8443, 'containerPort': 443, 'protocol': 'tcp', 'hostIP': '2001:db8::1'},
     {'hostPort': 9999, 'containerPort': 9, 'protocol': 'sctp', 'hostIP': '0.0.0.0'}],
    [{'hostPort': 8080, 'containerPort': 80, 'protocol': 'tcp'},
     {'hostPort': 8080, 'containerPort': 81, 'protocol': 'tcp'}],  # refused: same host key
]


def write(kind, doc, raw=None):
    data = raw if raw is not None else json.dumps(doc, indent=1).encode()
    name = hashlib.sha1(data).hexdigest()[:16]
    path = os.path.join(OUT, kind, name + '.json')
    with open(path, 'wb') as f:
        f.write(data)


def main():
    for kind in ('config', 'result'):
        os.makedirs(os.path.join(OUT, kind), exist_ok=True)
        for old in glob.glob(os.path.join(OUT, kind, '*.json')):
            os.unlink(old)

    fixtures = {}
    for path in sorted(glob.glob(os.path.join(ROOT, 'tests/unit/fixtures/bridge-*.json'))):
        version = os.path.basename(path)[len('bridge-'):-len('.json')]
        with open(path, 'rb') as f:
            raw = f.read()
        fixtures[version] = json.loads(raw)
        write('result', None, raw)

    # Results: one family, no interfaces, out-of-range indexes, unknown members.
    base = fixtures.get('1.0.0', {'cniVersion': '1.0.0', 'ips': []})
    v4 = dict(base, ips=[ip for ip in base.get('ips', []) if ':' not in ip['address']])
    write('result', v4)
    write('result', dict(base, interfaces=[], ips=[dict(ip, interface=7) for ip in base['ips']]))
    write('result', dict(base, extra={'nested': [1, 2.5e300, -0, True, None, 'é\u2028']}))
    write('result', {'cniVersion': '0.4.0', 'ips': [{'version': '6', 'address': '10.0.0.2/8'}]})

    for path in sorted(glob.glob(os.path.join(ROOT, 'contrib/conflists/*.conflist'))):
        with open(path, encoding='utf-8') as f:
            conflist = json.load(f)
        plugin = next(p for p in conflist['plugins'] if p['type'] == 'nft-portmap')
        versions = conflist.get('cniVersions') or [conflist['cniVersion']]
        for version in versions:
            conf = dict(plugin, name=conflist['name'], cniVersion=version)
            conf.pop('capabilities', None)
            write('config', conf)
            prev = fixtures.get(version) or fixtures.get('1.0.0')
            for mappings in MAPPINGS:
                write('config', dict(conf, runtimeConfig={'portMappings': mappings},
                                     prevResult=prev))
            write('config', dict(conf, cniVersion='1.1.0', **{
                'cni.dev/valid-attachments': [{'containerID': 'abc', 'ifname': 'eth0'}]}))

    # Refused or odd shapes the parser must handle.
    write('config', None, b'')
    write('config', None, b'[' * 70 + b']' * 70)
    write('config', {'cniVersion': '9.9.9', 'name': 'x', 'type': 'nft-portmap'})
    write('config', {'cniVersion': '1.0.0', 'name': 'x', 'type': 'nft-portmap',
                     'externalSetMarkChain': 'KUBE-MARK'})
    write('config', {'cniVersion': '1.0.0', 'name': 'x', 'type': 'nft-portmap',
                     'conditionsV4': ['ip', 'daddr', '!=', '{ 127.0.0.0/8, 198.19.254.254 }'],
                     'conditionsV6': ['iifname', 'veth*'], 'markMasqBit': 13,
                     'runtimeConfig': {'portMappings': MAPPINGS[0]},
                     'prevResult': fixtures.get('0.3.1')})


if __name__ == '__main__':
    main()
