#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Where an nft-portmap ADD and DEL spend their time, in a throw-away namespace.

Run through bench/run.sh --profile (root). Writes a text report with:
  - start-up alone: /bin/true, the plugin without CNI_COMMAND (it only
    prints its name), and a trivial C++ program linked statically and
    dynamically, timed like the benchmark does (spawn_timer);
  - LD_DEBUG=statistics of one ADD (the dynamic loader's share);
  - strace -c of one ADD and one DEL, and strace -T of a DEL (slow calls);
  - perf: where ADD and DEL block (sched_switch stacks of the plugin's own
    sleeps) and where their CPU time goes, by object and by symbol.

With --compare NAME=PATH (repeated), it instead compares builds of the
plugin (for example linked differently) in the same namespaces: start-up
alone and ADD/DEL pairs, interleaved round by round so that the machine's
load falls on every build alike, and LD_DEBUG=statistics of one ADD each.
"""

import argparse
import collections
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def run(ns, argv, env=None, stdin=None, check=False):
    full = ['ip', 'netns', 'exec', ns] + argv
    return subprocess.run(full, input=stdin, capture_output=True, text=True, env=env, check=check)


def cni_env(bed, command):
    return {'CNI_COMMAND': command, 'CNI_CONTAINERID': 'bench-test-container',
            'CNI_NETNS': f'/var/run/netns/{bed.ctr}', 'CNI_IFNAME': 'eth0',
            'CNI_PATH': '/usr/lib/cni', 'PATH': '/usr/sbin:/usr/bin:/sbin:/bin'}


def timed(bed, tools, jobs):
    res = bed.run_jobs(tools, jobs)
    wall = statistics.median(r[1] for r in res) / 1e6
    cpu = statistics.median(r[3] for r in res) / 1e3
    rss = max(r[2] for r in res) / 1024
    return f'median {wall:6.3f} ms wall, {cpu:6.3f} ms CPU, peak RSS {rss:5.2f} MiB'


def startup_section(bed, tools, tmp, out):
    triv = os.path.join(tmp, 'triv.cpp')
    with open(triv, 'w') as f:
        f.write('#include <string>\n#include <vector>\n'
                'int main(int argc, char **) { std::vector<std::string> v(argc, "x"); return v.empty(); }\n')
    libs = ['-Wl,--no-as-needed', '-lnftnl', '-lmnl', '-lnetfilter_conntrack', '-lnfnetlink', '-lsimdjson']
    variants = [
        ('/bin/true', None),
        ('C++, libstdc++ shared', ['g++', '-O2', '-o', os.path.join(tmp, 'triv-cxx'), triv]),
        ('C++, the plugin\'s shared libraries', ['g++', '-O2', '-o', os.path.join(tmp, 'triv-libs'), triv] + libs),
        ('C++, -static-libstdc++ -static-libgcc, libnftnl.a, libmnl shared',
         ['g++', '-O2', '-static-libstdc++', '-static-libgcc', '-o', os.path.join(tmp, 'triv-semi'), triv,
          '-Wl,--no-as-needed', '-l:libnftnl.a', '-lmnl']),
        ('C++, -static', ['g++', '-O2', '-static', '-o', os.path.join(tmp, 'triv-static'), triv]),
    ]
    out.append('## Start-up alone (300 runs each, same harness as the benchmark)\n')
    for name, cc in variants:
        prog = '/bin/true' if cc is None else cc[cc.index('-o') + 1]
        if cc is not None:
            subprocess.run(cc, check=True)
        jobs = [f'x\t{prog}\tA=1\t\n'] * 300
        out.append(f'{name:70s} {timed(bed, tools, jobs)}')
    jobs = [f'x\t{bed.plugin}\tA=1\t\n'] * 300
    out.append(f'{"nft-portmap without CNI_COMMAND (prints its name)":70s} {timed(bed, tools, jobs)}')
    out.append(f'{"nft-portmap ADD and DEL (100 pairs)":70s} ' + timed_pairs(bed, tools))
    out.append('')


def timed_pairs(bed, tools):
    jobs = []
    for _ in range(100):
        jobs += [bed.test_job('add', 'ADD'), bed.test_job('del', 'DEL')]
    res = bed.run_jobs(tools, jobs)
    text = []
    for op in ('add', 'del'):
        sel = [r for r in res if r[0] == op]
        text.append(f'{op.upper()} median {statistics.median(r[1] for r in sel) / 1e6:.3f} ms wall, '
                    f'{statistics.median(r[3] for r in sel) / 1e3:.3f} ms CPU, '
                    f'peak RSS {max(r[2] for r in sel) / 1024:.2f} MiB')
    return '; '.join(text)


def loader_section(bed, out):
    cfg = bed.config('bench-test-container', bench.TEST_IP, bench.TEST_PORTS)
    env = dict(cni_env(bed, 'ADD'), LD_DEBUG='statistics')
    p = run(bed.host, [bed.plugin], env=env, stdin=cfg)
    run(bed.host, [bed.plugin], env=cni_env(bed, 'DEL'), stdin=cfg)
    out.append('## LD_DEBUG=statistics, one ADD\n')
    # `ip netns exec` is the same process before it execs the plugin: skip its block.
    blocks = p.stderr.split('runtime linker statistics:')[2:]
    for block in blocks:
        out.append('    runtime linker statistics:')
        out += ['    ' + re.sub(r'^\s*\d+:\s*', '', l) for l in block.splitlines() if l.strip(' \t0123456789:')]
    out.append('')


def loader_statistics(bed, plugin, runs=15):
    """LD_DEBUG=statistics of ADD (each followed by a DEL) of plugin, the
    median of each figure over runs: {name: value}."""
    cfg = bed.config('bench-test-container', bench.TEST_IP, bench.TEST_PORTS)
    env = dict(cni_env(bed, 'ADD'), LD_DEBUG='statistics')
    values = collections.defaultdict(list)
    for _ in range(runs):
        p = run(bed.host, [plugin], env=env, stdin=cfg)
        run(bed.host, [plugin], env=cni_env(bed, 'DEL'), stdin=cfg)
        # `ip netns exec` is the same process before it execs the plugin: skip its block.
        for block in p.stderr.split('runtime linker statistics:')[2:]:
            for line in block.splitlines():
                m = re.match(r'^\s*\d+:\s*([^:]+):\s*(\d+)', line)
                if m:
                    values[m.group(1).strip()].append(int(m.group(2)))
    return {k: int(statistics.median(v)) for k, v in values.items()}


def compare_builds(bed, tools, builds, rounds, out):
    """Start-up and ADD/DEL of several builds, interleaved: one round runs
    /bin/true, then each build's start-ups and ADD/DEL pairs, 10 of each."""
    samples = collections.defaultdict(list)
    for i in range(rounds):
        jobs = [bed.true_job()] * 10
        for name, path in builds:
            jobs += [f'{name}/up\t{path}\tA=1\t\n'] * 10
            bed.plugin = path
            for _ in range(10):
                jobs += [bed.test_job(f'{name}/ADD', 'ADD'), bed.test_job(f'{name}/DEL', 'DEL')]
        for label, ns, rss, cpu in bed.run_jobs(tools, jobs):
            samples[label].append((ns, rss, cpu))
        bench.log(f'round {i + 1}/{rounds}')

    def row(label, key):
        s = samples[key]
        return (f'| {label} | {statistics.median(x[0] for x in s) / 1e6:.3f} | '
                f'{statistics.median(x[2] for x in s) / 1e3:.3f} | '
                f'{statistics.median(x[1] for x in s) / 1024:.2f} | {max(x[1] for x in s) / 1024:.2f} |')

    out.append(f'## Builds compared ({rounds} rounds of 10 of each, interleaved)\n')
    for name, path in builds:
        out.append(f'- `{name}`: `{path}`')
    out.append('')
    out.append('| run | median wall ms | median CPU ms | median RSS MiB | peak RSS MiB |')
    out.append('|---|---|---|---|---|')
    out.append(row('/bin/true', 'true'))
    for what in ('up', 'ADD', 'DEL'):
        for name, _ in builds:
            out.append(row(f'{name} {"start-up (prints its name)" if what == "up" else what}', f'{name}/{what}'))
    out.append('')
    out.append('## LD_DEBUG=statistics of ADD (median of 15)\n')
    keys = ['total startup time in dynamic loader', 'time needed for relocation',
            'number of relocations', 'number of relocations from cache',
            'number of relative relocations', 'time needed to load objects']
    stats = {name: loader_statistics(bed, path) for name, path in builds}
    out.append('| build | ' + ' | '.join(keys) + ' |')
    out.append('|---' * (len(keys) + 1) + '|')
    for name, _ in builds:
        out.append(f'| {name} | ' + ' | '.join(str(stats[name].get(k, '-')) for k in keys) + ' |')
    out.append('')


def strace_section(bed, tmp, out):
    cfg = bed.config('bench-test-container', bench.TEST_IP, bench.TEST_PORTS)
    for command in ('ADD', 'DEL'):
        path = os.path.join(tmp, f'strace-{command}.txt')
        run(bed.host, ['strace', '-f', '-c', '-o', path, bed.plugin], env=cni_env(bed, command), stdin=cfg)
        out.append(f'## strace -c, one {command}\n')
        out += ['    ' + l for l in open(path).read().splitlines()]
        out.append('')
    run(bed.host, [bed.plugin], env=cni_env(bed, 'ADD'), stdin=cfg)
    path = os.path.join(tmp, 'strace-T.txt')
    run(bed.host, ['strace', '-T', '-o', path, bed.plugin], env=cni_env(bed, 'DEL'), stdin=cfg)
    out.append('## strace -T, one DEL: calls over 0.5 ms\n')
    for line in open(path):
        m = re.search(r'<(\d+\.\d+)>\s*$', line)
        if m and float(m.group(1)) > 0.0005:
            out.append('    ' + line.rstrip()[:70] + ' ... ' + m.group(0).strip())
    out.append('')


def perf_section(bed, tmp, out, others):
    cfg = os.path.join(tmp, 'cfg.json')
    with open(cfg, 'w') as f:
        f.write(bed.config('bench-test-container', bench.TEST_IP, bench.TEST_PORTS))
    e = cni_env(bed, 'X')
    exports = ' '.join(f'{k}={v}' for k, v in e.items() if k != 'CNI_COMMAND')
    loop = (f'for i in $(seq 50); do env {exports} CNI_COMMAND=ADD {bed.plugin} < {cfg} >/dev/null; '
            f'env {exports} CNI_COMMAND=DEL {bed.plugin} < {cfg}; done')
    comm = os.path.basename(bed.plugin)[:15]

    sw = os.path.join(tmp, 'sw.data')
    run(bed.host, ['perf', 'record', '-q', '-e', 'sched:sched_switch', '-g', '-o', sw, '--', 'sh', '-c', loop])
    script = subprocess.run(['perf', 'script', '-i', sw], capture_output=True, text=True).stdout
    sleeps = collections.Counter()
    for block in script.split('\n\n'):
        lines = block.strip().split('\n')
        if not lines or f'prev_comm={comm}' not in lines[0]:
            continue
        state = re.search(r'prev_state=(\S+)', lines[0]).group(1)
        if state == 'R':
            continue  # preempted: the machine's load, not the plugin
        frames = [l.split()[1].split('+')[0] for l in lines[1:] if len(l.split()) > 1]
        frames = [f for f in frames if not f.startswith(('__schedule', 'schedule', 'entry_SYSCALL',
                                                         'do_syscall', '[unknown]'))]
        sleeps[f'{state} ' + ' < '.join(frames[:9])] += 1
    out.append(f'## perf, {others:,} other containers: where 50 ADD + 50 DEL went to sleep '
               '(sched_switch, not preemptions)\n')
    for k, v in sleeps.most_common(8):
        out.append(f'    {v:4d}  {k}')
    out.append('')

    cpu = os.path.join(tmp, 'cpu.data')
    run(bed.host, ['perf', 'record', '-q', '-F', '10000', '-o', cpu, '--', 'sh', '-c', loop])
    samples = subprocess.run(['perf', 'script', '-i', cpu, '-F', 'comm,ip,sym,dso'],
                             capture_output=True, text=True).stdout.splitlines()
    by_dso, by_sym, total = collections.Counter(), collections.Counter(), 0
    for line in samples:
        parts = line.split()
        if not parts or parts[0] != comm:
            continue
        total += 1
        dso = parts[-1].strip('()')
        by_dso[os.path.basename(dso)] += 1
        by_sym[' '.join(parts[2:-1]) + '  (' + os.path.basename(dso) + ')'] += 1
    out.append(f'## perf, {others:,} other containers: CPU of 50 ADD + 50 DEL by object '
               f'({total} samples at 10 kHz)\n')
    for k, v in by_dso.most_common(10):
        out.append(f'    {100 * v / max(total, 1):5.1f}%  {k}')
    out.append(f'\n## perf, {others:,} other containers: ... by symbol\n')
    for k, v in by_sym.most_common(25):
        out.append(f'    {100 * v / max(total, 1):5.1f}%  {k}')
    out.append('')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--nft', required=True)
    ap.add_argument('--tools', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--prefix', default=f'nftpmb{os.getpid()}')
    ap.add_argument('--nft-rev', default='')
    ap.add_argument('--others', type=int, default=2000,
                    help='profile again with this many other containers published (0: do not)')
    ap.add_argument('--compare', action='append', metavar='NAME=PATH', default=[],
                    help='compare these builds of the plugin instead (repeat the option)')
    ap.add_argument('--rounds', type=int, default=20, help='rounds of --compare')
    args, _ = ap.parse_known_args()
    if args.compare:
        compare_main(args)
        return

    bench.PLUGIN_NAMES['prof'] = 'nft-portmap'
    bed = bench.Bed('prof', args.nft, args.prefix)
    out = [f'# nft-portmap profile — {datetime.datetime.now():%Y-%m-%d %H:%M}', '',
           f'Plugin `{args.nft}` (source {args.nft_rev or "?"}); kernel {os.uname().release}; load average '
           f'{" ".join(open("/proc/loadavg").read().split()[:3])}.', '']
    try:
        bed.create()
        with tempfile.TemporaryDirectory() as tmp:
            startup_section(bed, args.tools, tmp, out)
            loader_section(bed, out)
            strace_section(bed, tmp, out)
            perf_section(bed, tmp, out, 0)
            if args.others > 0:
                bench.log(f'publishing {args.others:,} other containers')
                bench.populate(bed, args.tools, args.others, 500)
                out.append(f'## {args.others:,} other containers\n')
                out.append('nft-portmap ADD and DEL (100 pairs): ' + timed_pairs(bed, args.tools))
                out.append('')
                perf_section(bed, tmp, out, args.others)
    finally:
        bed.destroy()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f'profile-{datetime.datetime.now():%Y-%m-%d}.md')
    with open(path, 'w') as f:
        f.write('\n'.join(out) + '\n')
    print('\n'.join(out))
    bench.log(f'written: {path}')


def compare_main(args):
    builds = [tuple(c.split('=', 1)) for c in args.compare]
    for name, path in builds:
        if not os.access(path, os.X_OK) or '/' in name or '\t' in name:
            sys.exit(f'profile.py: --compare {name}={path}: not an executable, or a bad name')
    bench.PLUGIN_NAMES['prof'] = 'nft-portmap'
    bed = bench.Bed('prof', builds[0][1], args.prefix)
    out = [f'# nft-portmap builds compared — {datetime.datetime.now():%Y-%m-%d %H:%M}', '',
           f'Kernel {os.uname().release}; load average '
           f'{" ".join(open("/proc/loadavg").read().split()[:3])}.', '']
    try:
        bed.create()
        compare_builds(bed, args.tools, builds, args.rounds, out)
    finally:
        bed.destroy()
    print('\n'.join(out))


if __name__ == '__main__':
    main()
