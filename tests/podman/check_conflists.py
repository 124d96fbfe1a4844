#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The example conflists in contrib/conflists are what operators copy.

Checked without privileges: each file is JSON, is a chained list whose
nft-portmap entry asks for portMappings, uses only keys the plugin
documents, differs from a reference `portmap` entry in its type only
(unless it demonstrates our own keys), and the set covers cniVersion 0.4.0,
1.0.0, 1.1.0 with cniVersions, and dual-stack.

With --plugin and root: the plugin itself must accept every example. Each
nft-portmap entry is fed to the plugin as libcni would on a DEL from
containerd (name and cniVersion injected, runtimeConfig.portMappings set)
in a throw-away network namespace; DEL parses and validates the whole
configuration and succeeds when nothing is published. A broken copy of
each entry must be refused with error 7, so the check can fail.
"""

import argparse
import copy
import glob
import json
import os
import subprocess
import sys

SPEC_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']
# Keys of the reference portmap plugin (plus the standard ones).
REFERENCE_KEYS = {'type', 'capabilities', 'snat', 'masqAll', 'markMasqBit',
                  'externalSetMarkChain', 'conditionsV4', 'conditionsV6', 'backend'}
# Keys only nft-portmap has.
OWN_KEYS = {'dstnatPriority', 'srcnatPriority'}

failures = []


def fail(path, text):
    failures.append(f'{os.path.basename(path)}: {text}')


def vkey(v):
    return tuple(int(x) for x in v.split('.'))


def chosen_version(conf):
    """The version a 1.1.0 runtime uses: the highest of cniVersion and cniVersions."""
    versions = [conf['cniVersion']] + list(conf.get('cniVersions', []))
    return max((v for v in versions if v in SPEC_VERSIONS), key=vkey)


def check_file(path):
    try:
        with open(path) as f:
            conf = json.load(f)
    except (OSError, ValueError) as e:
        fail(path, f'not JSON: {e}')
        return None
    version = conf.get('cniVersion')
    if version not in SPEC_VERSIONS:
        fail(path, f'cniVersion {version!r} is not a CNI spec version')
        return None
    if not isinstance(conf.get('name'), str) or not conf['name']:
        fail(path, 'no network name')
    plugins = conf.get('plugins')
    if not isinstance(plugins, list) or not plugins:
        fail(path, 'no plugins list')
        return None
    if 'cniVersions' in conf:
        cv = conf['cniVersions']
        if not isinstance(cv, list) or not all(isinstance(v, str) for v in cv):
            fail(path, 'cniVersions must be a list of strings')
        elif version not in cv:
            fail(path, 'cniVersions does not list cniVersion')
        elif any(v not in SPEC_VERSIONS for v in cv):
            fail(path, f'cniVersions has an unknown version: {cv}')
    ours = [i for i, p in enumerate(plugins) if p.get('type') == 'nft-portmap']
    if len(ours) != 1:
        fail(path, f'{len(ours)} nft-portmap entries, want 1')
        return None
    if ours[0] == 0:
        fail(path, 'nft-portmap is a chained plugin; it cannot come first')
    entry = plugins[ours[0]]
    if entry.get('capabilities', {}).get('portMappings') is not True:
        fail(path, 'nft-portmap entry without capabilities.portMappings = true')
    unknown = set(entry) - REFERENCE_KEYS - OWN_KEYS
    if unknown:
        fail(path, f'undocumented keys {sorted(unknown)}')
    if 'backend' in entry and entry['backend'] != 'nftables':
        fail(path, 'backend must be absent or "nftables"')
    if 'externalSetMarkChain' in entry:
        fail(path, 'externalSetMarkChain is refused by nft-portmap')
    return conf, entry


def run_plugin(plugin, stdin, command, env_extra=None):
    env = {
        'PATH': os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin'),
        'CNI_COMMAND': command,
        'CNI_CONTAINERID': 'conflist-check',
        'CNI_IFNAME': 'eth0',
        'CNI_PATH': os.path.dirname(os.path.abspath(plugin)),
    }
    env.update(env_extra or {})
    # A throw-away network namespace: whatever the plugin does stays there.
    return subprocess.run(['unshare', '-n', plugin], input=json.dumps(stdin),
                          capture_output=True, text=True, env=env, timeout=30)


def check_with_plugin(plugin, path, conf, entry):
    version = chosen_version(conf)
    p = run_plugin(plugin, {'cniVersion': version}, 'VERSION')
    try:
        supported = json.loads(p.stdout)['supportedVersions']
    except (ValueError, KeyError, TypeError):
        fail(path, f'plugin VERSION printed {p.stdout!r} (exit {p.returncode})')
        return
    if version not in supported:
        fail(path, f'plugin does not support cniVersion {version}: {supported}')
        return

    stdin = copy.deepcopy(entry)
    stdin['name'] = conf['name']
    stdin['cniVersion'] = version
    stdin['runtimeConfig'] = {'portMappings': [
        {'hostPort': 8080, 'containerPort': 80, 'protocol': 'tcp'}]}
    p = run_plugin(plugin, stdin, 'DEL')
    if p.returncode != 0:
        fail(path, f'plugin refused the entry on DEL (exit {p.returncode}): '
                   f'{p.stdout.strip()} {p.stderr.strip()}')
        return

    # The negative control: a wrong type for snat must be refused (code 7).
    broken = copy.deepcopy(stdin)
    broken['snat'] = 'yes'
    p = run_plugin(plugin, broken, 'DEL')
    code = None
    try:
        code = json.loads(p.stdout).get('code')
    except ValueError:
        pass
    if p.returncode == 0 or code != 7:
        fail(path, f'a broken copy ("snat": "yes") was not refused with code 7 '
                   f'(exit {p.returncode}, stdout {p.stdout.strip()!r})')


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('dir', help='contrib/conflists')
    ap.add_argument('--plugin', help='the nft-portmap binary (needs root)')
    opts = ap.parse_args()

    paths = sorted(glob.glob(os.path.join(opts.dir, '*.conflist')))
    if not paths:
        print(f'FAIL: no conflists in {opts.dir}')
        return 1
    checked = {}
    for path in paths:
        r = check_file(path)
        if r:
            checked[path] = r

    # Coverage the examples promise in their README.
    versions = {c['cniVersion'] for c, _ in checked.values()}
    for want in ('0.4.0', '1.0.0', '1.1.0'):
        if want not in versions:
            failures.append(f'no example for cniVersion {want}')
    if not any('cniVersions' in c for c, _ in checked.values()):
        failures.append('no example with cniVersions')

    def families(conf):
        fams = set()
        for p in conf['plugins']:
            for rng in p.get('ipam', {}).get('ranges', []):
                for r in rng:
                    fams.add(6 if ':' in r.get('subnet', '') else 4)
        return fams
    if not any(families(c) == {4, 6} for c, _ in checked.values()):
        failures.append('no dual-stack example')
    # "Only the type changes": every example but the one demonstrating our
    # own keys must be a valid reference entry once its type is portmap.
    plain = [p for p, (_, e) in checked.items() if not set(e) & OWN_KEYS]
    if len(plain) < 4:
        failures.append('fewer than 4 examples that are plain reference entries')

    ran_plugin = False
    if opts.plugin:
        if os.geteuid() != 0:
            print('note: not root, the plugin does not see the examples')
        elif not os.access(opts.plugin, os.X_OK):
            failures.append(f'{opts.plugin} is not an executable')
        else:
            ran_plugin = True
            for path, (conf, entry) in checked.items():
                check_with_plugin(opts.plugin, path, conf, entry)

    for path in paths:
        status = 'FAIL' if any(f.startswith(os.path.basename(path) + ':')
                               for f in failures) else 'ok'
        print(f'{status:4} {os.path.basename(path)}'
              + (' (and accepted by the plugin)' if ran_plugin and status == 'ok' else ''))
    for f in failures:
        print('FAIL: ' + f)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
