#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""STATUS (CNI 1.1.0): success when nftables can be used, code 50 with the reason if not.

    test_status.py --plugin build/src/nft-portmap [status]

Without CAP_NET_ADMIN (dropped from a root process with setpriv, or as
the user nobody) the kernel refuses every nf_tables request: STATUS must
say so with code 50, and ADD must fail without changing anything.
"""

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import lib  # noqa: E402
from harness import (CODE_INCOMPATIBLE, CODE_NOT_AVAILABLE, CODE_UNUSABLE, Attachment,  # noqa: E402
                     Conf, Mapping, Plugin, check, log, ruleset_snapshot)

# Root, but without CAP_NET_ADMIN in any set the plugin could get it from.
NO_NET_ADMIN = ['setpriv', '--bounding-set', '-net_admin', '--inh-caps', '-net_admin',
                '--ambient-caps', '-net_admin', '--']
# An ordinary user with no capabilities at all.
NOBODY = ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups',
          '--inh-caps', '-all', '--']


def status(opts):
    if not shutil.which('setpriv'):
        raise lib.Skip('setpriv (util-linux) not found')
    root = Plugin(opts.plugin)
    out = root.status()
    check(out.ok and out.stdout == '', f'STATUS as root: expected success and no output, got {out}')
    log('STATUS as root: success')

    out = root.status(cni_version='1.0.0')
    check(out.code == CODE_INCOMPATIBLE, f'STATUS with cniVersion 1.0.0: code 1, got {out}')

    att = Attachment('netA', 'c1', 'eth0', '10.1.0.2/24', 'fd00:1::2/64')
    conf = Conf((Mapping('tcp', 8080, 80),))
    check(root.add(att, conf).ok, 'ADD as root')
    before = ruleset_snapshot()

    # nobody may not be able to reach the build directory: a copy it can run.
    copy_dir = tempfile.mkdtemp(prefix='nftpm-status-')
    os.chmod(copy_dir, 0o755)
    public = shutil.copy(opts.plugin, os.path.join(copy_dir, 'nft-portmap'))
    os.chmod(public, 0o755)
    try:
        for label, prefix in (('root without CAP_NET_ADMIN', NO_NET_ADMIN), ('nobody', NOBODY)):
            unprivileged(public, label, prefix, att, before)
    finally:
        shutil.rmtree(copy_dir, ignore_errors=True)

    # Our own network namespace inside a user namespace: CAP_NET_ADMIN
    # there is enough (nftables is per network namespace).
    p = Plugin(opts.plugin, prefix=['unshare', '--user', '--map-root-user', '--net', '--'])
    out = p.status()
    if out.ok:
        log('STATUS as root of a new user + network namespace: success')
    else:
        # Some kernels forbid nf_tables in user namespaces; say so, do not fail.
        log(f'STATUS in a user namespace: {out} (nf_tables not allowed there?)')


def unprivileged(path, label, prefix, att, before):
    """STATUS code 50, and ADD/DEL/GC code 102, all without changing anything."""
    p = Plugin(path, prefix=prefix)
    out = p.status()
    check(out.code == CODE_NOT_AVAILABLE,
          f'STATUS as {label}: expected code 50, got {out} (stderr {out.stderr!r})')
    check('Operation not permitted' in out.msg or 'permission' in out.msg.lower(),
          f'STATUS as {label}: the message must give the reason: {out.msg!r}')
    log(f'STATUS as {label}: code {out.code}: {out.msg}')

    # The other commands fail too, naming the reason, and change nothing.
    other = Attachment('netA', 'c2', 'eth0', '10.1.0.3/24', None)
    for command, result in (('ADD', p.add(other, Conf((Mapping('tcp', 8081, 80),)))),
                            ('DEL', p.delete(att)),
                            ('GC', p.gc('netA', []))):
        check(result.code == CODE_UNUSABLE and 'CAP_NET_ADMIN' in result.msg,
              f'{command} as {label}: expected code 102 naming CAP_NET_ADMIN, got {result}')
    check(ruleset_snapshot() == before, f'commands as {label} changed the ruleset')
    log(f'ADD, DEL and GC as {label}: code 102, ruleset unchanged')


TESTS = {'status': status}

if __name__ == '__main__':
    from harness import run_main
    run_main(__file__, TESTS)
