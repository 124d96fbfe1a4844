#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""nft-portmap against the reference portmap, side by side, in one run.

Run through bench/run.sh (which builds the helpers and the plugin). For each
plugin, a throw-away "host" namespace gets a bridge (10.0.0.1/8), one real
container namespace (10.255.255.2, a TCP server on port 80) and a client
namespace (198.18.0.2, the benchmarking range) on a veth whose host end is
198.18.0.1. The plugins are run in the host namespace, never in the
machine's own.

At each level N of "other containers" (each published with two TCP
mappings through a synthetic prevResult, distinct container address and
host ports) the run measures, for each plugin, /bin/true, ADD and DEL of the
test container, interleaved, from spawn to reaping (spawn_timer): median,
p90, CPU time and ADD's peak RSS. The levels are interleaved between the
plugins so that the load of the machine at any moment falls on both alike.

Then, for each plugin, the rate of TCP handshakes from the client to
198.18.0.1:8080, which the plugin publishes to the real container's port 80
(conn_rate), in alternating trials with 1 published container (a second
set of namespaces) and with N + 1 (the largest level the plugin reached).

--replot RESULTS.json rewrites the table and the plot of an earlier run.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time

BRIDGE_NET = '10.0.0.1/8'
TEST_IP = '10.255.255.2'
HOST_CLIENT_SIDE = '198.18.0.1'
CLIENT_IP = '198.18.0.2'
TEST_PORTS = [(8080, 80), (8443, 443)]
BG_PORT_BASE = 20000  # background container i: 20000+2i, 20001+2i
MAX_BG = (65535 - BG_PORT_BASE) // 2
CONN_PORT = 8080
CONN_CONCURRENCY = 64

PLUGIN_NAMES = {'nft': 'nft-portmap', 'ref': 'reference portmap'}


def log(msg):
    print(f'[{time.strftime("%H:%M:%S")}] {msg}', file=sys.stderr, flush=True)


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, **kw)


def bg_ip(i):
    n = 16 + i  # 10.0.0.16 upwards, away from the bridge's address
    return f'10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}'


def percentile(values, q):
    s = sorted(values)
    if not s:
        return None
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Bed:
    """The namespaces of one plugin and the CNI requests it is sent."""

    def __init__(self, key, plugin, prefix):
        self.key = key
        self.plugin = plugin
        self.host = f'{prefix}-{key}-host'
        self.ctr = f'{prefix}-{key}-ctr'
        self.cli = f'{prefix}-{key}-cli'
        self.count = 0  # background containers published
        self.server = None

    def create(self):
        for ns in (self.host, self.ctr, self.cli):
            sh('ip', 'netns', 'add', ns)
            sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
        h, c, k = self.host, self.ctr, self.cli
        sh('ip', '-n', h, 'link', 'add', 'br0', 'type', 'bridge')
        sh('ip', '-n', h, 'addr', 'add', BRIDGE_NET, 'dev', 'br0')
        sh('ip', '-n', h, 'link', 'set', 'br0', 'up')
        sh('ip', '-n', h, 'link', 'add', 'vctr', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c)
        sh('ip', '-n', h, 'link', 'set', 'vctr', 'master', 'br0', 'up')
        sh('ip', '-n', c, 'addr', 'add', TEST_IP + '/8', 'dev', 'eth0')
        sh('ip', '-n', c, 'link', 'set', 'eth0', 'up')
        sh('ip', '-n', c, 'route', 'add', 'default', 'via', '10.0.0.1')
        sh('ip', '-n', h, 'link', 'add', 'vcli', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', k)
        sh('ip', '-n', h, 'addr', 'add', HOST_CLIENT_SIDE + '/30', 'dev', 'vcli')
        sh('ip', '-n', h, 'link', 'set', 'vcli', 'up')
        sh('ip', '-n', k, 'addr', 'add', CLIENT_IP + '/30', 'dev', 'eth0')
        sh('ip', '-n', k, 'link', 'set', 'eth0', 'up')
        sh('ip', '-n', k, 'route', 'add', 'default', 'via', HOST_CLIENT_SIDE)
        self.sysctl(h, 'net.ipv4.ip_forward', '1')
        self.sysctl(c, 'net.core.somaxconn', '4096')
        self.sysctl(k, 'net.ipv4.ip_local_port_range', '1024 65535')

    @staticmethod
    def sysctl(ns, key, value, check=True):
        return sh('ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', f'{key}={value}', check=check,
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def destroy(self):
        self.stop_server()
        for ns in (self.host, self.ctr, self.cli):
            sh('ip', 'netns', 'del', ns, check=False, stderr=subprocess.DEVNULL)

    # --- CNI requests ---

    def config(self, cid, ip, ports):
        return json.dumps({
            'cniVersion': '1.0.0',
            'name': 'bench',
            'type': os.path.basename(self.plugin),
            'capabilities': {'portMappings': True},
            'runtimeConfig': {'portMappings': [
                {'hostPort': hp, 'containerPort': cp, 'protocol': 'tcp'} for hp, cp in ports]},
            'prevResult': {
                'cniVersion': '1.0.0',
                'interfaces': [{'name': 'br0'}, {'name': 'veth' + cid[-8:]},
                               {'name': 'eth0', 'sandbox': f'/var/run/netns/{self.ctr}'}],
                'ips': [{'address': ip + '/8', 'gateway': '10.0.0.1', 'interface': 2}],
            },
        }, separators=(',', ':'))

    def job(self, label, command, cid, ip, ports):
        env = ' '.join([
            f'CNI_COMMAND={command}', f'CNI_CONTAINERID={cid}',
            f'CNI_NETNS=/var/run/netns/{self.ctr}', 'CNI_IFNAME=eth0',
            'CNI_PATH=/usr/lib/cni', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin'])
        return f'{label}\t{self.plugin}\t{env}\t{self.config(cid, ip, ports)}\n'

    def bg_job(self, i):
        return self.job('pop', 'ADD', f'bench-bg-{i:05d}', bg_ip(i),
                        [(BG_PORT_BASE + 2 * i, 80), (BG_PORT_BASE + 2 * i + 1, 443)])

    def test_job(self, label, command):
        return self.job(label, command, 'bench-test-container', TEST_IP, TEST_PORTS)

    @staticmethod
    def true_job():
        return 'true\t/bin/true\tCNI_COMMAND=NONE PATH=/usr/sbin:/usr/bin:/sbin:/bin\t\n'

    def run_jobs(self, tools, jobs):
        """Runs jobs in the host namespace; returns [(label, ns, maxrss_kib, cpu_us)]."""
        p = subprocess.run(['ip', 'netns', 'exec', self.host, os.path.join(tools, 'spawn_timer')],
                           input=''.join(jobs), capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f'{PLUGIN_NAMES[self.key]}: a job failed:\n{p.stderr[-3000:]}')
        out = []
        for line in p.stdout.splitlines():
            label, ns, rss, _, cpu = line.split('\t')
            out.append((label, int(ns), int(rss), int(cpu)))
        return out

    # --- the packet path ---

    def start_server(self, tools, lifetime):
        self.server = subprocess.Popen(
            ['ip', 'netns', 'exec', self.ctr, os.path.join(tools, 'conn_rate'), 'server', '80',
             str(lifetime)], stdout=subprocess.PIPE, text=True)
        if self.server.stdout.readline().strip() != 'listening':
            raise RuntimeError('the connection server did not start')

    def stop_server(self):
        if self.server is not None:
            if self.server.poll() is None:
                self.server.terminate()
                try:
                    self.server.wait(5)
                except subprocess.TimeoutExpired:
                    self.server.kill()
                    self.server.wait()
            self.server = None

    def conn_trial(self, tools, seconds):
        p = sh('ip', 'netns', 'exec', self.cli, os.path.join(tools, 'conn_rate'), 'client',
               HOST_CLIENT_SIDE, str(CONN_PORT), str(seconds), str(CONN_CONCURRENCY),
               capture_output=True, text=True)
        done, failed, elapsed = p.stdout.split()
        return int(done), int(failed), float(elapsed)


def summarize(samples):
    ms = [s / 1e6 for s in samples]
    return {'n': len(ms), 'median_ms': statistics.median(ms), 'p90_ms': percentile(ms, 0.9),
            'min_ms': min(ms), 'max_ms': max(ms)}


def measure_level(bed, tools, runs, warmup):
    jobs = []
    for r in range(warmup + runs):
        jobs += [Bed.true_job(), bed.test_job('add', 'ADD'), bed.test_job('del', 'DEL')]
    t0 = time.monotonic()
    res = bed.run_jobs(tools, jobs)[3 * warmup:]
    wall = time.monotonic() - t0
    by = {'true': [], 'add': [], 'del': []}
    rss = {'true': [], 'add': [], 'del': []}
    cpu = {'true': [], 'add': [], 'del': []}
    for label, ns, kib, us in res:
        by[label].append(ns)
        rss[label].append(kib)
        cpu[label].append(us)
    out = {k: summarize(v) for k, v in by.items()}
    for k, v in cpu.items():
        out[k]['cpu_median_ms'] = statistics.median(v) / 1000
    out['samples_ns'] = by
    out['samples_cpu_us'] = cpu
    out['maxrss_kib'] = {k: {'median': statistics.median(v), 'max': max(v)} for k, v in rss.items()}
    out['wall_s'] = wall
    return out


def measure_conn(small, big, tools, trials, seconds):
    """Handshakes/s through the published port of the test container, in a bed
    with no other container (small) and in the populated one (big).

    The trials alternate between the two so that the load of the machine
    falls on both alike."""
    beds = (small, big)
    for bed in beds:
        bed.run_jobs(tools, [bed.test_job('add', 'ADD')])
    rates = {b.count: [] for b in beds}
    failed = {b.count: 0 for b in beds}
    try:
        for bed in beds:
            bed.start_server(tools, 2 * trials * (seconds + 2) + 60)
            bed.conn_trial(tools, 1)  # warm-up (neighbours, caches), not counted
        for _ in range(trials):
            for bed in beds:
                done, fail, elapsed = bed.conn_trial(tools, seconds)
                failed[bed.count] += fail
                rates[bed.count].append(done / elapsed)
    finally:
        for bed in beds:
            bed.stop_server()
            bed.run_jobs(tools, [bed.test_job('del', 'DEL')])
    out = {}
    for count, r in rates.items():
        if max(r) <= 0:
            raise RuntimeError(f'{PLUGIN_NAMES[big.key]}: no connection went through the published port')
        out[str(count)] = {'trials': trials, 'seconds': seconds, 'rates': r, 'median': statistics.median(r),
                           'min': min(r), 'max': max(r), 'failed': failed[count]}
    return out


def populate(bed, tools, target, chunk, deadline=None):
    """ADDs background containers up to target; returns (seconds, per-ADD ns) or None on timeout."""
    t0 = time.monotonic()
    per_add = []
    while bed.count < target:
        n = min(chunk, target - bed.count)
        res = bed.run_jobs(tools, [bed.bg_job(i) for i in range(bed.count, bed.count + n)])
        per_add += [ns for _, ns, _, _ in res]
        bed.count += n
        if target - bed.count > 0:
            log(f'  {PLUGIN_NAMES[bed.key]}: {bed.count}/{target} containers published '
                f'({time.monotonic() - t0:.0f} s)')
        if deadline is not None and time.monotonic() > deadline and bed.count < target:
            return None
    return time.monotonic() - t0, per_add


def fmt(v, digits=2):
    return '–' if v is None else f'{v:.{digits}f}'


def build_table(meta, results, targets):
    L = []
    L.append(f'# nft-portmap vs reference portmap — {meta["date"]}')
    L.append('')
    L.append(f'Machine: {meta["cpu"]}, {meta["cores"]} cores, kernel {meta["kernel"]}; '
             f'load average {meta["load_start"]} at start, {meta["load_end"]} at end.  ')
    rev = f', source {meta["nft_rev"]}' if meta.get('nft_rev') else ''
    L.append(f'nft-portmap: `{meta["nft_plugin"]}` ({meta["nft_version"]}{rev}); reference: '
             f'`{meta["ref_plugin"]}` ({meta["ref_version"]}, iptables backend, {meta["iptables"]}).  ')
    L.append(f'Command: `{meta["command"]}`; total {meta["wall_s"]:.0f} s.')
    L.append('')
    L.append('Times are whole processes, from posix_spawn to wait4, by the same harness for '
             '`/bin/true` (the floor), ADD and DEL, interleaved; each container has two TCP '
             'mappings; ADD/DEL are of one more container (the test container) on top of N others. '
             '"work" = median − `/bin/true` median; "CPU" = median user + system time of the '
             'process and of the children it waited for (iptables, for the reference).')
    L.append('')
    L.append('## ADD and DEL')
    L.append('')
    L.append('| plugin | other containers | runs | /bin/true median ms | ADD median ms | ADD p90 ms '
             '| ADD work ms | ADD CPU ms | DEL median ms | DEL p90 ms | DEL work ms | DEL CPU ms '
             '| ADD peak RSS MiB |')
    L.append('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for key in ('nft', 'ref'):
        for lvl in sorted(results[key]['levels'], key=int):
            r = results[key]['levels'][lvl]
            t, a, d = r['true'], r['add'], r['del']
            L.append(f'| {PLUGIN_NAMES[key]} | {int(lvl):,} | {a["n"]} | {fmt(t["median_ms"])} | '
                     f'{fmt(a["median_ms"])} | {fmt(a["p90_ms"])} | '
                     f'{fmt(a["median_ms"] - t["median_ms"])} | {fmt(a["cpu_median_ms"])} | '
                     f'{fmt(d["median_ms"])} | {fmt(d["p90_ms"])} | {fmt(d["median_ms"] - t["median_ms"])} | '
                     f'{fmt(d["cpu_median_ms"])} | '
                     f'{r["maxrss_kib"]["add"]["max"] / 1024:.2f} |')
    L.append('')
    floor_rss = [results[k]['levels'][l]['maxrss_kib']['true']['max'] / 1024
                 for k in results for l in results[k]['levels']]
    if floor_rss:
        L.append(f'Peak RSS is wait4\'s ru_maxrss, the largest over the runs (for the reference, of the '
                 f'plugin or of one of its iptables children); `/bin/true` measured the same way peaks '
                 f'at {max(floor_rss):.2f} MiB.')
        L.append('')
    for note in results['ref'].get('notes', []) + results['nft'].get('notes', []):
        L.append(f'Note: {note}')
        L.append('')
    L.append('## New TCP connections through the published port')
    L.append('')
    L.append('Handshakes per second from the client namespace to 198.18.0.1:8080, DNATed to the '
             f'container; {CONN_CONCURRENCY} connects in flight, reset on completion.')
    L.append('')
    L.append('| plugin | published containers | trials × s | median conn/s | min | max | failed |')
    L.append('|---|---:|---:|---:|---:|---:|---:|')
    for key in ('nft', 'ref'):
        for lvl in sorted(results[key]['conn'], key=int):
            c = results[key]['conn'][lvl]
            L.append(f'| {PLUGIN_NAMES[key]} | {int(lvl) + 1:,} | {c["trials"]} × {c["seconds"]} | '
                     f'{c["median"]:,.0f} | {c["min"]:,.0f} | {c["max"]:,.0f} | {c["failed"]} |')
    L.append('')
    L.append('## Publishing the other containers')
    L.append('')
    L.append('| plugin | containers | seconds | mean ms per ADD | last 100 ADDs median ms |')
    L.append('|---|---|---:|---:|---:|')
    for key in ('nft', 'ref'):
        for p in results[key]['populate']:
            L.append(f'| {PLUGIN_NAMES[key]} | {p["from"]:,} → {p["to"]:,} | {p["seconds"]:.1f} | '
                     f'{fmt(p["mean_ms"])} | {fmt(p["last100_median_ms"])} |')
    L.append('')
    L.append('## Targets (nft-portmap)')
    L.append('')
    L.append('| target | measured | met |')
    L.append('|---|---|---|')
    for t in targets:
        L.append(f'| {t["target"]} | {t["measured"]} | {"yes" if t["met"] else "**no**"} |')
    L.append('')
    return '\n'.join(L)


def evaluate(results):
    out = []
    nft = results['nft']['levels']
    ref = results['ref']['levels']
    levels = sorted(nft, key=int)
    for lvl in levels:
        r = nft[lvl]
        for op in ('add', 'del'):
            work = r[op]['median_ms'] - r['true']['median_ms']
            out.append({'target': f'{op.upper()} work at {int(lvl):,} ≤ 1 ms', 'measured': f'{work:.2f} ms',
                        'met': work <= 1.0})
    for lvl in levels:
        if lvl not in ref:
            continue
        for op in ('add', 'del'):
            ratio = ref[lvl][op]['median_ms'] / nft[lvl][op]['median_ms']
            wr = ((ref[lvl][op]['median_ms'] - ref[lvl]['true']['median_ms']) /
                  max(nft[lvl][op]['median_ms'] - nft[lvl]['true']['median_ms'], 1e-3))
            out.append({'target': f'{op.upper()} at {int(lvl):,}: ≥ 30× faster than the reference '
                                  '(whole process)',
                        'measured': f'{ratio:.1f}× (work only: {wr:.0f}×)', 'met': ratio >= 30})
    lo, hi = levels[0], levels[-1]
    if lo != hi:
        for op in ('add', 'del'):
            ratio = nft[hi][op]['median_ms'] / nft[lo][op]['median_ms']
            out.append({'target': f'{op.upper()} at {int(hi):,} ≤ 1.25× at {int(lo):,}',
                        'measured': f'{ratio:.2f}×', 'met': ratio <= 1.25})
    conn = results['nft']['conn']
    if len(conn) >= 2:
        cl = sorted(conn, key=int)
        ratio = conn[cl[-1]]['median'] / conn[cl[0]]['median']
        out.append({'target': f'connection rate with {int(cl[-1]) + 1:,} ≥ 0.9× with {int(cl[0]) + 1:,}',
                    'measured': f'{ratio:.2f}×', 'met': ratio >= 0.9})
    peak = max(r['maxrss_kib']['add']['max'] for r in nft.values()) / 1024
    out.append({'target': 'ADD peak RSS ≤ 4 MiB', 'measured': f'{peak:.2f} MiB', 'met': peak <= 4.0})
    return out


def plot(results, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    # Top: whole-process wall time, what a runtime waits for. Bottom: the
    # CPU time of the same processes, which the load of the machine moves
    # much less (the wall time also holds waits for the kernel and for a CPU).
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.2), sharey='row')
    styles = {'nft': ('tab:blue', 'o'), 'ref': ('tab:red', 's')}
    for row, metric in enumerate(('wall', 'cpu')):
        for col, op in enumerate(('add', 'del')):
            ax = axes[row][col]
            floor = {}
            for key in ('nft', 'ref'):
                lv = results[key]['levels']
                if not lv:
                    continue
                xs = sorted(lv, key=int)
                x = [int(v) for v in xs]
                color, marker = styles[key]
                if metric == 'wall':
                    ax.plot(x, [lv[v][op]['median_ms'] for v in xs], marker=marker, color=color,
                            label=f'{PLUGIN_NAMES[key]} median')
                    ax.plot(x, [lv[v][op]['p90_ms'] for v in xs], linestyle=':', color=color,
                            label=f'{PLUGIN_NAMES[key]} p90')
                    for v in xs:
                        floor.setdefault(int(v), []).append(lv[v]['true']['median_ms'])
                else:
                    ax.plot(x, [lv[v][op]['cpu_median_ms'] for v in xs], marker=marker, color=color,
                            label=f'{PLUGIN_NAMES[key]} median')
                    for v in xs:
                        floor.setdefault(int(v), []).append(lv[v]['true']['cpu_median_ms'])
            if floor:
                fx = sorted(floor)
                ax.plot(fx, [statistics.mean(floor[x]) for x in fx], color='gray', linestyle='--',
                        linewidth=1, label='/bin/true (process floor)')
            ax.set_yscale('log')
            what = 'whole process, spawn to reaping' if metric == 'wall' else 'CPU time (user + system)'
            ax.set_title(f'CNI {op.upper()}: {what}', fontsize=10)
            if row == 1:
                ax.set_xlabel('other containers already published (2 TCP mappings each)')
            ax.grid(True, which='both', alpha=0.3)
        axes[row][0].set_ylabel('milliseconds, median (log scale)')
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc='lower center', ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=100)


def write_outputs(out_dir, stem_name, meta, results):
    targets = evaluate(results)
    table = build_table(meta, results, targets)
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, stem_name)
    with open(stem + '.md', 'w') as f:
        f.write(table + '\n')
    with open(stem + '.json', 'w') as f:
        json.dump({'meta': meta, 'results': results, 'targets': targets}, f, indent=1)
    plot(results, os.path.join(out_dir, 'add_del.png'))
    print(table)
    log(f'written: {stem}.md, {stem}.json, {os.path.join(out_dir, "add_del.png")}')


def parse_levels(text):
    levels = sorted({int(x) for x in text.split(',') if x.strip() != ''})
    if not levels or levels[0] < 0 or levels[-1] > MAX_BG:
        raise argparse.ArgumentTypeError(f'levels must be 0..{MAX_BG}')
    return levels


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--nft', required=True, help='the nft-portmap binary')
    ap.add_argument('--ref', default='/usr/lib/cni/portmap', help='the reference portmap binary')
    ap.add_argument('--tools', required=True, help='directory of spawn_timer and conn_rate')
    ap.add_argument('--out', required=True, help='results directory')
    ap.add_argument('--prefix', default=f'nftpmb{os.getpid()}', help='namespace name prefix')
    ap.add_argument('--levels', type=parse_levels, default=parse_levels('0,250,500,1000,2500,5000,10000'),
                    help='numbers of other containers, comma-separated (default 0,250,500,1000,2500,5000,10000)')
    ap.add_argument('--runs', type=int, default=200, help='ADD/DEL pairs per level (nft-portmap)')
    ap.add_argument('--ref-runs', type=int, default=50, help='ADD/DEL pairs per level (reference)')
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--ref-budget', type=float, default=900,
                    help='seconds the reference may spend publishing background containers')
    ap.add_argument('--conn-trials', type=int, default=5)
    ap.add_argument('--conn-seconds', type=int, default=3)
    ap.add_argument('--command', default='bench/run.sh', help='shown in the output')
    ap.add_argument('--nft-rev', default='', help='source revision of the nft-portmap binary, shown in the output')
    args = ap.parse_args()

    meta = {
        'date': datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
        'kernel': platform.release(),
        'cores': os.cpu_count(),
        'cpu': next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')),
                    platform.machine()),
        'load_start': ' '.join(open('/proc/loadavg').read().split()[:3]),
        'nft_plugin': args.nft, 'nft_rev': args.nft_rev, 'ref_plugin': args.ref, 'command': args.command,
        'levels': args.levels, 'runs': args.runs,
        'ref_runs': args.ref_runs, 'warmup': args.warmup,
        'iptables': subprocess.run(['iptables', '--version'], capture_output=True, text=True).stdout.strip(),
    }
    meta['nft_version'] = subprocess.run(
        [args.nft], capture_output=True, text=True, env={}).stderr.splitlines()[0:1]
    meta['nft_version'] = (meta['nft_version'] or ['?'])[0]
    meta['ref_version'] = (subprocess.run([args.ref], capture_output=True, text=True, env={})
                           .stderr.splitlines() or ['?'])[0]

    beds = {'nft': Bed('nft', args.nft, args.prefix), 'ref': Bed('ref', args.ref, args.prefix)}
    results = {k: {'levels': {}, 'conn': {}, 'populate': [], 'notes': []} for k in beds}

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f'signal {signum}')
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    t_start = time.monotonic()
    ref_stopped = None
    ref_pop_spent = 0.0
    extra = []
    try:
        for bed in beds.values():
            bed.create()
        for lvl in args.levels:
            for key, bed in beds.items():
                if key == 'ref' and ref_stopped:
                    continue
                runs = args.runs if key == 'nft' else args.ref_runs
                name = PLUGIN_NAMES[key]
                if key == 'ref' and lvl > bed.count:
                    # Would publishing up to lvl fit in the budget? The cost of one
                    # ADD grows with the count: extrapolate linearly from the levels so far.
                    done = sorted(results['ref']['levels'], key=int)
                    if done:
                        c1 = results['ref']['levels'][done[-1]]['add']['median_ms']
                        slope = 0.0
                        if len(done) >= 2:
                            c0 = results['ref']['levels'][done[-2]]['add']['median_ms']
                            slope = max(0.0, (c1 - c0) / (int(done[-1]) - int(done[-2])))
                        c2 = c1 + slope * (lvl - bed.count)
                        estimate = (lvl - bed.count) * (c1 + c2) / 2 / 1000
                        remaining = args.ref_budget - ref_pop_spent
                        if estimate > remaining:
                            ref_stopped = (f'the reference was not measured with {lvl:,} or more other containers: '
                                           f'publishing them would take about {estimate:.0f} s '
                                           f'(extrapolated; {remaining:.0f} s of its {args.ref_budget:.0f} s '
                                           'budget left).')
                            log(ref_stopped)
                            results['ref']['notes'].append(ref_stopped)
                            continue
                if lvl > bed.count:
                    log(f'{name}: publishing {lvl - bed.count:,} more containers')
                    start = bed.count
                    deadline = None
                    if key == 'ref':
                        deadline = time.monotonic() + (args.ref_budget - ref_pop_spent)
                    pop = populate(bed, args.tools, lvl, 250 if key == 'nft' else 50, deadline)
                    if pop is None:
                        ref_stopped = (f'the reference was not measured with {lvl:,} or more other containers: '
                                       f'its {args.ref_budget:.0f} s budget for publishing ran out at '
                                       f'{bed.count:,}.')
                        log(ref_stopped)
                        results['ref']['notes'].append(ref_stopped)
                        continue
                    seconds, per_add = pop
                    if key == 'ref':
                        ref_pop_spent += seconds
                    results[key]['populate'].append({
                        'from': start, 'to': lvl, 'seconds': seconds,
                        'mean_ms': statistics.mean(per_add) / 1e6,
                        'last100_median_ms': statistics.median(per_add[-100:]) / 1e6})
                log(f'{name}: {runs} × (/bin/true, ADD, DEL) with {lvl:,} other containers')
                results[key]['levels'][str(lvl)] = m = measure_level(bed, args.tools, runs, args.warmup)
                log(f'  true {m["true"]["median_ms"]:.2f} ms, ADD {m["add"]["median_ms"]:.2f} ms '
                    f'(p90 {m["add"]["p90_ms"]:.2f}), DEL {m["del"]["median_ms"]:.2f} ms '
                    f'(p90 {m["del"]["p90_ms"]:.2f}), ADD peak RSS {m["maxrss_kib"]["add"]["max"]} KiB')
        # The reference stopped early: its largest count is a level too.
        ref = beds['ref']
        if ref_stopped and ref.count > 0 and str(ref.count) not in results['ref']['levels']:
            log(f'{PLUGIN_NAMES["ref"]}: {args.ref_runs} × (/bin/true, ADD, DEL) with {ref.count:,} others')
            results['ref']['levels'][str(ref.count)] = measure_level(ref, args.tools, args.ref_runs, args.warmup)
        for key, bed in beds.items():
            small = Bed(key, bed.plugin, args.prefix + '-z')
            extra.append(small)
            small.create()
            log(f'{PLUGIN_NAMES[key]}: connection rate with 1 and with {bed.count + 1:,} published '
                f'containers, {args.conn_trials} alternating trials of {args.conn_seconds} s')
            results[key]['conn'] = c = measure_conn(small, bed, args.tools, args.conn_trials,
                                                    args.conn_seconds)
            for count, r in c.items():
                log(f'  {int(count) + 1:,}: {r["median"]:,.0f} conn/s (min {r["min"]:,.0f}, '
                    f'max {r["max"]:,.0f}, failed {r["failed"]})')
            small.destroy()
    finally:
        for bed in list(beds.values()) + extra:
            bed.destroy()

    meta['wall_s'] = time.monotonic() - t_start
    meta['load_end'] = ' '.join(open('/proc/loadavg').read().split()[:3])
    write_outputs(args.out, datetime.datetime.now().strftime('%Y-%m-%d'), meta, results)


def replot(path):
    """Rewrites the table and the plot of an earlier run from its JSON."""
    with open(path) as f:
        data = json.load(f)
    out_dir = os.path.dirname(os.path.abspath(path))
    write_outputs(out_dir, os.path.splitext(os.path.basename(path))[0], data['meta'], data['results'])


if __name__ == '__main__':
    try:
        if len(sys.argv) == 3 and sys.argv[1] == '--replot':
            replot(sys.argv[2])
            sys.exit(0)
        main()
    except KeyboardInterrupt as e:
        log(f'interrupted ({e}); namespaces removed')
        sys.exit(130)
