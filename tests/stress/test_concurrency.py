#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Many plugin processes at once against one namespace's table.

    test_concurrency.py --plugin build/src/nft-portmap [--seed N] [--scale F] [NAME ...]

  fight        two containers of two networks fighting for one port with
               concurrent ADD/DEL (and GC of one network), many rounds; after
               each round the kernel must equal the result of some order of
               the operations that respects their real-time order and their
               answers (a linearizability check).
  parallel64   64 plugin processes released at once, ADD/DEL/CHECK of
               different containers, from an empty ruleset; then 64 ADDs of one
               port (one winner, 63 conflicts naming it); then 64 DELs.
  random       a seeded random sequence of thousands of ADD/DEL/CHECK/GC
               operations run by parallel workers; each round's operations
               are planned against a model so that every answer is known in
               advance, and the kernel is compared with the model after
               every round.
  lockless_*   the same without the plugin's netns lock (harness.enable_lockless):
               only the generation-id compare-and-swap keeps them correct.
               A command that runs out of attempts answers code 11 (try again);
               the worker then repeats it, as a runtime would; the counts of
               those are printed. With the lock, code 11 is a failure.

The seed is printed; --seed repeats a run. NFTPM_STRESS_SCALE (or --scale)
multiplies rounds and operations.
"""

import concurrent.futures
import dataclasses
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (CODE_CONFLICT, CODE_INVALID_CONFIG, CODE_TRY_AGAIN,  # noqa: E402
                     CONDITIONS_V4, CONDITIONS_V6, TABLE, Attachment, Conf, Expect, Failure,
                     Mapping, Model, Plugin, check, config, expect_outcome, expect_state,
                     gc_config, is_masq, log, nft, owner_named, read_state)

HOST_IPS = [None] * 6 + ['192.0.2.1', '198.51.100.7', '2001:db8::1', '0.0.0.0']
PROTOS = ('tcp', 'udp', 'sctp')


def seed_of(opts):
    return opts.seed if opts.seed is not None else random.SystemRandom().randrange(1 << 32)


@dataclasses.dataclass
class Op:
    kind: str          # ADD DEL CHECK GC
    att: Attachment = None
    conf: Conf = Conf()
    net: str = None    # GC
    valid: frozenset = None
    expect: Expect = None
    out: object = None
    retries: int = 0
    label: str = ''

    version: str = '1.0.0'

    def stdin(self):
        if self.kind == 'GC':
            return gc_config(self.net, sorted(self.valid))
        if self.label == 'invalid':
            c = config(self.att, self.conf)
            pm = c['runtimeConfig']['portMappings']
            pm.append(dict(pm[0], containerPort=pm[0]['containerPort'] % 65535 + 1))
            return c
        # DEL is stateless: without prevResult (a runtime without a cache) too.
        return config(self.att, self.conf, cni_version=self.version,
                      prev_result=self.label != 'bare')

    def __str__(self):
        if self.kind == 'GC':
            return f'GC {self.net} valid={sorted(self.valid)}'
        maps = ','.join(f'{m.proto}/{m.host_port}' + (f'@{m.host_ip}' if m.host_ip else '')
                        for m in self.conf.mappings)
        return f'{self.kind} {self.att} [{maps}]' + (f' ({self.label})' if self.label else '')


class Runner:
    """Runs operations; without the lock, repeats those that answer code 11."""

    def __init__(self, opts):
        self.p = Plugin(opts.plugin)
        self.lockless = opts.lockless
        self.try_again = 0

    def run(self, op):
        t0 = None
        while True:
            out = self.p.run(op.kind, op.stdin(), op.att)
            t0 = t0 if t0 is not None else out.t0
            if out.code != CODE_TRY_AGAIN or not self.lockless or op.retries >= 20:
                break
            op.retries += 1
            self.try_again += 1
        out.t0 = t0
        op.out = out
        if out.code == CODE_TRY_AGAIN and not self.lockless:
            raise Failure(f'{op}: code 11 with the netns lock held: {out}')
        return out

    def run_workers(self, sequences):
        """One thread per sequence; the operations of a sequence run in order."""
        def worker(seq):
            for op in seq:
                self.run(op)
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(sequences))) as ex:
            for f in [ex.submit(worker, s) for s in sequences]:
                f.result()


def overlaps(ops):
    """Pairs of operations that ran at the same time (evidence of concurrency)."""
    spans = sorted((op.out.t0, op.out.t1) for op in ops if op.out)
    n = 0
    for i, (a0, a1) in enumerate(spans):
        for b0, _ in spans[i + 1:]:
            if b0 >= a1:
                break
            n += 1
    return n


def sensitivity_check(model):
    """The comparison must see a change: remove one element by hand and expect a diff."""
    st = read_state()
    for name, elems in st.maps.items():
        for key in elems:
            nft('delete', 'element', *TABLE, name, '{ ' + ' . '.join(key) + ' }')
            diff = model.diff(read_state())
            check(diff, 'the model comparison did not notice an element deleted by hand')
            return
    check(model.diff(read_state()) == [], 'model and kernel differ at the end')


# -- fight --------------------------------------------------------------------------------

def fight(opts):
    seed = seed_of(opts)
    rng = random.Random(seed)
    rounds = max(1, int(150 * opts.scale))
    runner = Runner(opts)
    a = Attachment('netA', 'fighter-a', 'eth0', '10.50.0.2/24', 'fd00:50::2/64')
    b = Attachment('netB', 'fighter-b', 'eth0', '10.51.0.2/24', None)
    s = Attachment('netA', 'stale', 'eth0', '10.50.0.9/24', None)
    confs = {
        a: [Conf((Mapping('tcp', 8080, 80),)),
            Conf((Mapping('tcp', 8080, 80), Mapping('udp', 8080, 80)))],
        # b's second configuration has conditions: a chain and guard elements.
        b: [Conf((Mapping('tcp', 8080, 81),)),
            Conf((Mapping('tcp', 8080, 81), Mapping('udp', 8080, 81, '192.0.2.1')),
                 cond_v4=('iifname', 'eth0'))],
    }
    s_conf = Conf((Mapping('tcp', 9000, 90),))
    log(f'fight: seed {seed}, {rounds} rounds, fighters {a} and {b} for tcp/8080, GC of netA '
        f'in some rounds, {"no lock" if opts.lockless else "with the netns lock"}')
    model = Model()
    stats = {'ops': 0, 'won': 0, 'conflicts': 0, 'overlaps': 0, 'gc': 0, 'orders': 0}
    t_start = time.monotonic()
    for rnd in range(rounds):
        seqs = []
        for x in (a, b):
            seq = []
            for _ in range(rng.randint(1, 3)):
                if rng.random() < 0.6:
                    seq.append(Op('ADD', x, rng.choice(confs[x])))
                else:
                    seq.append(Op('DEL', x, Conf()))
            seqs.append(seq)
        if rng.random() < 0.3:
            if s not in model.present:
                expect_outcome(model.add(s, s_conf), runner.run(Op('ADD', s, s_conf)),
                               f'round {rnd}: ADD of the stale attachment')
            seqs.append([Op('GC', net='netA', valid=frozenset({(a.cid, a.ifname)}))])
            stats['gc'] += 1
        runner.run_workers(seqs)
        st = read_state()
        orders = linearizations(model, seqs, st)
        if not orders:
            lines = '\n'.join(f'  {op}: {op.out} [{op.out.t0:.4f}..{op.out.t1:.4f}]'
                              for seq in seqs for op in seq)
            raise Failure(f'round {rnd}: no order of the operations explains their answers and '
                          f'the kernel state:\n{lines}\n--- nft list table ---\n{st.text}')
        model = orders[0]
        flat = [op for seq in seqs for op in seq]
        stats['ops'] += len(flat)
        stats['won'] += sum(1 for op in flat if op.kind == 'ADD' and op.out.ok)
        stats['conflicts'] += sum(1 for op in flat if op.out.code == CODE_CONFLICT)
        stats['overlaps'] += overlaps(flat)
        stats['orders'] += len(orders)
    elapsed = time.monotonic() - t_start
    sensitivity_check(model)
    log(f'fight: seed {seed}: {rounds} rounds, {stats["ops"]} operations ({stats["won"]} ADDs '
        f'won, {stats["conflicts"]} conflicts, {stats["gc"]} GCs), {stats["overlaps"]} pairs of '
        f'operations overlapped in time, {runner.try_again} code-11 repeats, {elapsed:.1f} s')


def linearizations(start, seqs, state, limit=8):
    """Models after orders of seqs that match every answer, real-time order and state."""
    found = []
    pos = [0] * len(seqs)
    placed = set()

    def candidates():
        pending = [(i, seqs[i][pos[i]]) for i in range(len(seqs)) if pos[i] < len(seqs[i])]
        unplaced = [op for seq in seqs for op in seq if id(op) not in placed]
        for i, op in pending:
            # Everything that had finished before op started must come first.
            if all(not (o.out.t1 < op.out.t0) for o in unplaced if o is not op):
                yield i, op

    def step(model):
        if len(found) >= limit:
            return
        if all(pos[i] == len(seqs[i]) for i in range(len(seqs))):
            if not model.diff(state):
                found.append(model)
            return
        for i, op in list(candidates()):
            m = model.clone()
            if op.out.code == CODE_TRY_AGAIN:
                pass  # ran out of attempts: changed nothing
            elif op.kind == 'ADD':
                if not m.add(op.att, op.conf).accepts(op.out)[0]:
                    continue
            elif op.kind == 'DEL':
                m.delete(op.att)
                if not op.out.ok:
                    continue
            elif op.kind == 'GC':
                m.gc(op.net, op.valid)
                if not op.out.ok:
                    continue
            pos[i] += 1
            placed.add(id(op))
            step(m)
            placed.discard(id(op))
            pos[i] -= 1

    step(start)
    return found


# -- parallel64 ----------------------------------------------------------------------------

def container(i, n_ports=2, base=20000, net=None):
    net = net or ('netA' if i % 2 == 0 else 'netB')
    fam = i % 5
    v4 = f'10.{60 + i // 250}.{i % 250}.2/24' if fam != 4 else None
    v6 = f'fd00:60:{i:x}::2/64' if fam != 3 else None
    att = Attachment(net, f'p{i:03d}', 'eth0', v4, v6)
    maps = tuple(Mapping(PROTOS[(i + k) % 3], base + i * n_ports + k, 80 + k,
                         '192.0.2.1' if k == 1 and v4 else None) for k in range(n_ports))
    # Some with conditions (a chain and guard elements), some with masqAll (/0 sets).
    cond_v4 = ('iifname', 'eth0') if i % 6 == 0 else ()
    cond_v6 = ('ip6 daddr fd00::/16',) if i % 6 == 1 else ()
    return att, Conf(maps, masq_all=i % 9 == 4, cond_v4=cond_v4, cond_v6=cond_v6)


def burst(runner, ops, what):
    """Starts every operation's plugin, then releases them all at once."""
    started = [runner.p.start(op.kind, op.stdin(), op.att) for op in ops]
    t0 = time.monotonic()
    for s in started:
        s.release()
    for op, s in zip(ops, started):
        op.out = s.wait()
    elapsed = time.monotonic() - t0
    # Without the lock, code 11 is allowed: repeat it, as a runtime would.
    for op in ops:
        if op.out.code == CODE_TRY_AGAIN:
            if not runner.lockless:
                raise Failure(f'{what}: {op}: code 11 with the netns lock: {op.out}')
            runner.try_again += 1
            runner.run(op)
    log(f'{what}: {len(ops)} plugin processes released at once, all done after {elapsed:.2f} s')
    return elapsed


def modelled_burst(runner, model, ops, label, state_what):
    """One burst whose every outcome and the state after it are compared with the model."""
    for op in ops:
        op.expect = apply(model, op)
    burst(runner, ops, label)
    for op in ops:
        expect_outcome(op.expect, op.out, f'{label.split(":")[0]}: {op}')
    return expect_state(model, state_what)


def parallel64(opts):
    runner = Runner(opts)
    model = Model()
    n = 64
    log(f'parallel64: {n} processes per burst, {"no lock" if opts.lockless else "netns lock"}')
    check(not read_state().exists, 'the namespace starts without our table')
    total = 0

    # 1. 64 ADDs from an empty ruleset: one skeleton, 64 attachments.
    first = [container(i) for i in range(n)]
    ops = [Op('ADD', att, conf) for att, conf in first]
    for op in ops:
        op.expect = model.add(op.att, op.conf)
    burst(runner, ops, 'burst 1: ADD x64 from an empty ruleset')
    for op in ops:
        expect_outcome(op.expect, op.out, f'burst 1: {op}')
    expect_state(model, 'after 64 concurrent ADDs')
    total += len(ops)

    # 2. DEL 21, CHECK 21, ADD 22 new ones.
    new = [container(i) for i in range(n, n + 22)]
    ops = ([Op('DEL', att, conf) for att, conf in first[:21]] +
           [Op('CHECK', att, conf) for att, conf in first[21:42]] +
           [Op('ADD', att, conf) for att, conf in new])
    modelled_burst(runner, model, ops, 'burst 2: DEL x21, CHECK x21, ADD x22', 'after burst 2')
    total += len(ops)

    # 3. Re-ADD 22 with new ports, CHECK the 22 new ones, DEL 20 deleted ones again.
    ops = ([Op('ADD', att, container(i + 200)[1]) for i, (att, _) in
            enumerate(first[42:], start=42)] +
           [Op('CHECK', att, conf) for att, conf in new] +
           [Op('DEL', att, conf) for att, conf in first[:20]])
    modelled_burst(runner, model, ops, 'burst 3: re-ADD x22, CHECK x22, repeated DEL x20', 'after burst 3')
    total += len(ops)

    # 4. 64 new containers want the same port: exactly one wins.
    contest = Conf((Mapping('tcp', 7777, 80),))
    # All dual-stack: a v4-only and a v6-only rival would both win (other keys).
    rivals = [Attachment('netA' if i % 2 else 'netB', f'rival{i:02d}', 'eth0',
                         f'10.62.{i}.2/24', f'fd00:62:{i:x}::2/64') for i in range(n)]
    ops = [Op('ADD', att, contest) for att in rivals]
    burst(runner, ops, 'burst 4: ADD x64 of the same port tcp/7777')
    winners = [op.att for op in ops if op.out.ok]
    check(len(winners) == 1, f'burst 4: {len(winners)} winners: {list(map(str, winners))}')
    winner = winners[0]
    model.add(winner, contest)
    for op in ops:
        if op.att != winner:
            check(op.out.code == CODE_CONFLICT and owner_named(op.out.msg, winner),
                  f'burst 4: {op.att} must fail naming the winner {winner}: {op.out}')
    expect_state(model, 'after the contest')
    total += len(ops)
    log(f'burst 4: {winner} won tcp/7777; 63 conflicts named it')

    # 5. DEL of everything present, and of some absent ones, at once.
    present = list(model.present)
    absent = [x for x in rivals if x != winner][:max(0, n - len(present))]
    ops = [Op('DEL', att) for att in present + absent]
    st = modelled_burst(runner, model, ops, f'burst 5: DEL x{len(ops)}', 'after deleting everything')
    check(not model.present and all(not e for e in st.maps.values()),
          'nothing but the skeleton is left')
    total += len(ops)
    log(f'parallel64: {total} operations in 5 bursts of 64 or more, exact state after each; '
        f'{runner.try_again} code-11 repeats')


def apply(model, op):
    if op.kind == 'ADD':
        if op.label == 'invalid':
            return Expect((CODE_INVALID_CONFIG,), note='invalid')
        return model.add(op.att, op.conf)
    if op.kind == 'DEL':
        return model.delete(op.att)
    if op.kind == 'CHECK':
        return model.check(op.att, op.conf)
    if op.kind == 'GC':
        model.gc(op.net, op.valid)
        return Expect(note='gc')
    raise ValueError(op.kind)


# -- random ----------------------------------------------------------------------------------

def random_world():
    atts = []
    for i in range(28):
        net = 'netA' if i < 16 else 'netB'
        cid = f'r{i:02d}'
        ifname = 'eth0'
        if 16 <= i < 20:
            cid = f'r{i - 16:02d}'  # the same containers on the second network
        if i in (7, 23):
            cid, ifname = f'r{i - 1:02d}', 'eth1'  # a second interface
        fam = i % 7
        n = 0 if net == 'netA' else 1
        v4 = f'10.{70 + n}.{i}.2/24' if fam != 5 else None
        v6 = f'fd00:70:{n}:{i:x}::2/64' if fam != 3 else None
        atts.append(Attachment(net, cid, ifname, v4, v6))
    return atts


def held_ports(model, att):
    return {int(k[1][-1]) for k, o in model.owner.items() if o == att and not is_masq(k[0])}


def random_conf(rng, pool):
    if not pool:
        return Conf()
    maps, keys = [], set()
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        m = Mapping(rng.choice(PROTOS), rng.choice(pool), rng.randint(1, 65535),
                    rng.choice(HOST_IPS))
        key = (m.proto, m.host_port, None if m.host_ip == '0.0.0.0' else m.host_ip)
        if key not in keys:
            keys.add(key)
            maps.append(m)
    r = rng.random()
    cond_v4 = rng.choice(sorted(CONDITIONS_V4)) if rng.random() < 0.2 else ()
    cond_v6 = rng.choice(sorted(CONDITIONS_V6)) if rng.random() < 0.15 else ()
    return Conf(tuple(maps), snat=r > 0.15, masq_all=0.15 < r < 0.25, cond_v4=cond_v4,
                cond_v6=cond_v6)


def plan_round(model, rng, atts, ports, workers, per_worker, ops_per_worker, gc_net=None):
    """Operations for each worker, such that every answer is determined.

    Each host port belongs to one worker for the round (the ports its
    containers hold, and a share of the others), and each container to one
    worker: no two workers touch the same key. GC gets the attachments it
    will remove, and their ports.
    """
    seqs, excluded_ports, excluded = [], set(), set()
    if gc_net is not None:
        mine = [x for x in atts if x.net == gc_net]
        valid = frozenset((x.cid, x.ifname) for x in mine if rng.random() < 0.6)
        victims = [x for x in model.present if x.net == gc_net and (x.cid, x.ifname) not in valid]
        for v in victims:
            excluded_ports |= held_ports(model, v)
        # Attachments GC may remove must not be touched by anyone else.
        excluded = {x for x in mine if (x.cid, x.ifname) not in valid}
        op = Op('GC', net=gc_net, valid=valid)
        op.expect = apply(model, op)
        seqs.append([op])
    candidates = [x for x in atts if x not in excluded and
                  not (held_ports(model, x) & excluded_ports)]
    active = rng.sample(candidates, min(len(candidates), workers * per_worker))

    # Containers that share a port go to the same worker (union-find).
    parent = {x: x for x in active}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    by_port = {}
    for x in active:
        for port in held_ports(model, x):
            if port in by_port:
                parent[find(x)] = find(by_port[port])
            else:
                by_port[port] = x
    groups = {}
    for x in active:
        groups.setdefault(find(x), []).append(x)
    assigned = [[] for _ in range(workers)]
    for g in sorted(groups.values(), key=len, reverse=True):
        min(assigned, key=len).extend(g)
    pools = [set() for _ in range(workers)]
    for w, group in enumerate(assigned):
        for x in group:
            pools[w] |= held_ports(model, x)
    taken = set().union(*pools) | excluded_ports
    for port in ports:
        if port not in taken:
            pools[rng.randrange(workers)].add(port)

    for w in range(workers):
        if not assigned[w]:
            continue
        pool = sorted(pools[w])
        seq = []
        for _ in range(ops_per_worker):
            x = rng.choice(assigned[w])
            have = model.present.get(x)
            r = rng.random()
            if r < 0.40:
                op = Op('ADD', x, random_conf(rng, pool),
                        version=rng.choice(('0.3.1', '0.4.0', '1.0.0', '1.1.0')))
            elif r < 0.50:
                op = Op('ADD', x, have or random_conf(rng, pool), label='again' if have else '')
            elif r < 0.53 and pool:
                conf = random_conf(rng, pool)
                op = Op('ADD', x, conf, label='invalid') if conf.mappings else Op('DEL', x)
            elif r < 0.72:
                op = Op('DEL', x, random_conf(rng, pool) if rng.random() < 0.3 else Conf(),
                        label='bare' if rng.random() < 0.3 else '')
            elif r < 0.92:
                op = Op('CHECK', x, have or random_conf(rng, pool))
            else:
                conf = have or random_conf(rng, pool)
                if conf.mappings:
                    m0 = conf.mappings[0]
                    conf = dataclasses.replace(conf, mappings=(dataclasses.replace(
                        m0, container_port=m0.container_port % 65535 + 1),) + conf.mappings[1:])
                op = Op('CHECK', x, conf, label='changed')
            op.expect = apply(model, op)
            seq.append(op)
        seqs.append(seq)
    return seqs


def random_ops(opts):
    seed = seed_of(opts)
    rng = random.Random(seed)
    workers = 8
    rounds = max(2, int((20 if opts.lockless else 36) * opts.scale))
    per_round = 8  # operations per worker
    runner = Runner(opts)
    atts = random_world()
    ports = list(range(30000, 30020))
    model = Model()
    log(f'random: seed {seed}, {rounds} rounds x {workers} workers x {per_round} operations, '
        f'{len(atts)} attachments on 2 networks, {len(ports)} host ports, '
        f'{"no lock" if opts.lockless else "with the netns lock"} '
        f'(repeat with --seed {seed})')
    counts = {}
    total = overlapping = 0
    t_start = time.monotonic()
    for rnd in range(rounds):
        if rnd == rounds // 2:
            nft('flush', 'ruleset')
            model.flush()
            log(f'round {rnd}: nft flush ruleset')
        gc_net = rng.choice(('netA', 'netB')) if rnd % 4 == 3 else None
        seqs = plan_round(model, rng, atts, ports, workers, 3, per_round, gc_net)
        runner.run_workers(seqs)
        flat = [op for seq in seqs for op in seq]
        for op in flat:
            expect_outcome(op.expect, op.out, f'round {rnd} (seed {seed}): {op}')
            kind = op.kind + ('' if op.out.ok else f'/{op.out.code}')
            counts[kind] = counts.get(kind, 0) + 1
        expect_state(model, f'after round {rnd} (seed {seed})')
        total += len(flat)
        overlapping += overlaps(flat)
    elapsed = time.monotonic() - t_start
    sensitivity_check(model)
    summary = ', '.join(f'{k} {v}' for k, v in sorted(counts.items()))
    log(f'random: seed {seed}: {rounds} rounds, {workers} workers, {total} operations '
        f'({summary}); {overlapping} overlapping pairs; {runner.try_again} code-11 repeats; '
        f'{len(model.present)} attachments at the end; {elapsed:.1f} s')


def with_lock(fn, lockless_mode):
    def run(opts):
        opts.lockless = lockless_mode
        return fn(opts)
    return run


TESTS = {
    'fight': with_lock(fight, False),
    'lockless_fight': with_lock(fight, True),
    'parallel64': with_lock(parallel64, False),
    'lockless_parallel64': with_lock(parallel64, True),
    'random': with_lock(random_ops, False),
    'lockless_random': with_lock(random_ops, True),
}

if __name__ == '__main__':
    from harness import run_main
    run_main(__file__, TESTS)
