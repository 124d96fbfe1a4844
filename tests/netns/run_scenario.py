#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Runs netns integration scenarios against a portmap plugin binary.

    run_scenario.py --plugin build/src/nft-portmap dual_protocols
    run_scenario.py --plugin /usr/lib/cni/portmap basic_tcp    # reference sanity run
    run_scenario.py --list

Exit status follows meson's convention: 0 passed, 1 failed, 77 skipped (not
root, no network namespaces, or a scenario that does not apply to the
reference plugin). Set NFTPM_KEEP_NETNS=1 to keep the namespaces of a
failing run for inspection (delete them with `ip netns delete`).
"""

import argparse
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
import scenarios  # noqa: E402


def plugin_type_for(path):
    """The conflist `type`: the reference is called portmap, ours nft-portmap."""
    return 'portmap' if os.path.basename(path) == 'portmap' else 'nft-portmap'


def run_one(name, plugin, plugin_type, family=None):
    """Runs one scenario in its own Topology; returns a meson exit status."""
    sc = scenarios.SCENARIOS[name]
    family = family or sc.family
    if plugin_type == 'portmap' and not sc.reference:
        lib.log(f'SKIP {name}: an nft-portmap property the reference plugin does not have')
        return lib.EXIT_SKIP
    lib.log(f'scenario {name}: {sc.doc}')
    try:
        with lib.Topology(plugin, plugin_type, family=family, label=name[:12]) as t:
            sc.func(t)
    except lib.Skip as e:
        lib.log(f'SKIP {name}: {e}')
        return lib.EXIT_SKIP
    except Exception:  # noqa: BLE001 - any failure is reported, then the next runs
        traceback.print_exc(file=sys.stdout)
        lib.log(f'FAIL {name}')
        return 1
    lib.log(f'PASS {name}')
    return 0


def check_list(names):
    """meson.build lists the scenarios by hand; fail when it drifts from scenarios.py."""
    missing = [n for n in scenarios.SCENARIOS if n not in names]
    extra = [n for n in names if n not in scenarios.SCENARIOS]
    for n in missing:
        print(f'scenario {n} is not registered in tests/netns/meson.build')
    for n in extra:
        print(f'tests/netns/meson.build names {n}, which scenarios.py does not define')
    return 1 if missing or extra else 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n', 1)[1])
    p.add_argument('names', nargs='*', help='scenario names (see --list)')
    p.add_argument('--plugin', default=os.environ.get('NFTPM_PLUGIN', 'build/src/nft-portmap'),
                   help='the plugin binary under test (default: $NFTPM_PLUGIN or %(default)s)')
    p.add_argument('--type', help='its conflist type (default: from the file name)')
    p.add_argument('--family', choices=lib.FAMILIES,
                   help="override the scenario's address family (the reference plugin 1.1.1 "
                        'fails CHECK on dual-stack, so run its CHECK sanity runs with ipv4)')
    p.add_argument('--list', action='store_true', help='print the scenario names and exit')
    p.add_argument('--all', action='store_true', help='run every scenario')
    p.add_argument('--check-list', action='store_true',
                   help='only compare NAMES with the registered scenarios (meson.build sync)')
    opts = p.parse_args(argv)

    if opts.check_list:
        return check_list(opts.names)

    if opts.list:
        for sc in scenarios.SCENARIOS.values():
            print(f'{sc.name}' if not sys.stdout.isatty() else f'{sc.name:28} {sc.doc}')
        return 0
    names = list(scenarios.SCENARIOS) if opts.all else opts.names
    unknown = [n for n in names if n not in scenarios.SCENARIOS]
    if unknown or not names:
        p.error(f'unknown scenario(s) {unknown}' if unknown else 'name a scenario or --all')
    lib.install_sigterm_handler()
    plugin_type = opts.type or plugin_type_for(opts.plugin)
    statuses = {n: run_one(n, opts.plugin, plugin_type, opts.family) for n in names}
    if len(names) == 1:
        return statuses[names[0]]
    passed = sum(1 for s in statuses.values() if s == 0)
    failed = [n for n, s in statuses.items() if s not in (0, lib.EXIT_SKIP)]
    skipped = sum(1 for s in statuses.values() if s == lib.EXIT_SKIP)
    for n in failed:
        print(f'FAILED: {n}')
    print(f'{passed} passed, {len(failed)} failed, {skipped} skipped')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
