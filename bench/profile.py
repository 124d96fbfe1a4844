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
    args, _ = ap.parse_known_args()

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


if __name__ == '__main__':
    main()
