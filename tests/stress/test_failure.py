#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Failure safety: a refused batch changes nothing; a lost table is rebuilt; CAS retries.

    test_failure.py --plugin build/src/nft-portmap [NAME ...]

  full_map         the kernel refuses an element (our map made `size 1` by hand)
  refused_expr     the kernel refuses masquerade / dnat (base chains made filter chains)
  flush            `nft flush ruleset` and smaller losses: CHECK names them, ADD rebuilds
  cas_admin        gdb stops the plugin right before its commit while an admin changes
                   the ruleset: the generation check refuses the stale batch and the
                   plugin retries from a fresh read (also: the netns lock serialises;
                   a ruleset that always changes makes ADD give up with code 11)
  lockless_cas     the same with other plugin processes changing the ruleset
                   (without the lock, which would make them wait), also stopped
                   before ADD's element lookup and while it names a port's owner
  check_masq, readd_skeleton
                   lost masquerade rules and static rules: CHECK names them, ADD repairs
  del_lost_record, check_conditions, skeleton_type_changed
                   known gaps (meson.build): DEL after the record counter was lost;
                   CHECK of other conditions; a base chain whose type was changed

Refusals are compared with `nft -a list ruleset` (text and JSON, with
handles) before and after; successes with the model (harness.Model).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (CODE_CHECK_FAILED, CODE_CONFLICT, CODE_REFUSED, CODE_TRY_AGAIN,  # noqa: E402
                     TABLE, Attachment, Conf, Failure, Mapping, Model, Plugin, check, config,
                     expect_outcome, expect_state, gc_config, lib, log, nft, owner_named,
                     parse_outcome, read_state, ruleset_snapshot)


def att(cid, n, net='netA', v6=True):
    return Attachment(net, cid, 'eth0', f'10.30.{n}.2/24', f'fd00:30:{n:x}::2/64' if v6 else None)


def plugin_skeleton(p):
    """The plugin's skeleton as nft text, without masq sets (ADD with snat off, then DEL)."""
    a = att('skel', 250)
    check(p.add(a, Conf((Mapping('tcp', 1, 1),), snat=False)).ok, 'ADD for the skeleton')
    check(p.delete(a).ok, 'DEL for the skeleton')
    text = nft('list', 'table', *TABLE).stdout
    check('set masq' not in text and 'masquerade' not in text,
          f'a skeleton without masq sets:\n{text}')
    nft('delete', 'table', *TABLE)
    return text


def expect_refused(p, a, conf, what, needle):
    before = ruleset_snapshot()
    out = p.add(a, conf)
    check(out.code == CODE_REFUSED, f'{what}: expected code 101, got {out}')
    check(needle in out.msg, f'{what}: the error must name the refused operation '
          f'({needle!r}): {out.msg}')
    check(ruleset_snapshot() == before, f'{what}: the refused batch changed the ruleset')
    log(f'{what}: refused, ruleset unchanged: {out.msg}')


def full_map(opts):
    p = Plugin(opts.plugin)
    skel = plugin_skeleton(p)
    small = re.sub(r'(map ports4 \{\n)', r'\1\t\tsize 1\n', skel)
    check(small != skel, 'could not make ports4 small')
    nft('-f', '-', input=small)
    a, b = att('a', 1), att('b', 2, v6=False)
    check(p.add(a, Conf((Mapping('tcp', 8080, 80),))).ok, 'ADD of a (the one element that fits)')
    # b's batch: its record, an element ports4 has no room for, its masq elements.
    expect_refused(p, b, Conf((Mapping('tcp', 8081, 81),)), 'ADD into a full map',
                   'add element inet nft-portmap ports4 { tcp . 8081 : 10.30.2.2 . 81 }')
    expect_refused(p, b, Conf((Mapping('udp', 53, 53, '192.0.2.1'), Mapping('tcp', 8082, 82))),
                   'ADD whose second element does not fit', 'ports4 { tcp . 8082')
    # a's re-ADD with two ports: its element stays, one more is added; the
    # kernel refuses, and a keeps its old state.
    expect_refused(p, a, Conf((Mapping('tcp', 8080, 80), Mapping('tcp', 8083, 83))),
                   're-ADD of a that grows past the map size', 'ports4 { tcp . 8083')
    # The same with a retargeted port and conditions: its element is deleted and
    # added again, a chain and guard elements appear; all or nothing.
    expect_refused(p, a, Conf((Mapping('tcp', 8080, 81), Mapping('tcp', 8083, 83)),
                              cond_v4=('iifname', 'eth0')),
                   're-ADD of a with conditions that grows past the map size', 'ports4')
    check(p.check(a, Conf((Mapping('tcp', 8080, 80),))).ok, 'a still passes CHECK')
    # Still usable: other maps are not full, and DEL frees the room.
    check(p.add(b, Conf((Mapping('tcp', 8081, 81, '192.0.2.1'),))).ok, 'ADD into addrports4')
    check(p.delete(a).ok, 'DEL of a')
    check(p.add(b, Conf((Mapping('tcp', 8081, 81),))).ok, 'ADD of b after DEL of a')


def refused_expr(opts):
    p = Plugin(opts.plugin)
    skel = plugin_skeleton(p)
    # masquerade is only valid in chains reached from nat hooks: the first
    # ADD with snat adds a masq set and its masquerade rule.
    filt = skel.replace('type nat hook postrouting', 'type filter hook postrouting')
    check(filt != skel, 'could not rewrite the postrouting chain')
    nft('-f', '-', input=filt)
    a = att('a', 1)
    expect_refused(p, a, Conf((Mapping('tcp', 8080, 80),)), 'masquerade from a filter chain',
                   'counter masquerade')
    # snat off: no masquerade, so the ADD is fine.
    check(p.add(a, Conf((Mapping('tcp', 8080, 80),), snat=False)).ok, 'ADD with snat off')
    nft('delete', 'table', *TABLE)

    # dnat is only valid in chains reached from nat hooks: an admin's filter
    # chain jumps to dispatch while it is empty (allowed then). The next
    # ADD repairs dispatch with its dnat rules: the kernel refuses them.
    nft('-f', '-', input=skel)
    nft('flush', 'chain', *TABLE, 'dispatch')
    nft('add', 'chain', *TABLE, 'admin-filter', '{ type filter hook input priority 0; }')
    nft('add', 'rule', *TABLE, 'admin-filter', 'jump', 'dispatch')
    expect_refused(p, a, Conf((Mapping('tcp', 8080, 80),), snat=False),
                   'dnat reached from a filter chain',
                   'add rule inet nft-portmap dispatch meta nfproto ipv4 dnat ip to')


def skeleton_type_changed(opts):
    """A base chain of ours made a filter chain by hand: ADD must fail naming what was refused.

    (ruleset v2: the skeleton repair adds the chain again as a nat chain; the
    kernel answers EEXIST (the type cannot change), which the plugin takes
    for a concurrent ADD and retries 40 times, then answers code 11 "the
    ruleset kept changing" although nothing changed.)
    """
    p = Plugin(opts.plugin)
    skel = plugin_skeleton(p)
    filt = skel.replace('type nat hook prerouting', 'type filter hook prerouting')
    filt = re.sub(r'(chain dispatch \{\n)(.*?\n)(\t\})', r'\1\3', filt, flags=re.S)
    check('dnat' not in filt and 'filter hook prerouting' in filt,
          f'could not empty the dispatch chain:\n{filt}')
    nft('-f', '-', input=filt)
    expect_refused(p, att('a', 1), Conf((Mapping('tcp', 8080, 80),), snat=False),
                   'skeleton repair under a filter prerouting chain',
                   'add chain inet nft-portmap prerouting')


def flush(opts):
    p = Plugin(opts.plugin)
    m = Model()
    a, b, c = att('a', 1), att('b', 2), att('c', 3)
    conf_a = Conf((Mapping('tcp', 8080, 80), Mapping('udp', 8080, 80, '192.0.2.1')))
    conf_b = Conf((Mapping('tcp', 9090, 90),))
    conf_c = Conf((Mapping('tcp', 7070, 70), Mapping('tcp', 7071, 71)), cond_v4=('iifname', 'eth0'))
    confs = {a: conf_a, b: conf_b, c: conf_c}
    for x, conf in confs.items():
        expect_outcome(m.add(x, conf), p.add(x, conf), f'ADD {x}')
    expect_state(m, 'after the ADDs')

    def check_fails(needle, what, x=a):
        out = p.check(x, confs[x])
        check(out.code == CODE_CHECK_FAILED and needle in out.msg,
              f'CHECK of {x} after {what}: expected code 103 mentioning {needle!r}, got {out}')
        log(f'CHECK after {what}: {out.msg}')

    def heal(what, x=a):
        expect_outcome(m.add(x, confs[x]), p.add(x, confs[x]), f're-ADD after {what}')
        expect_state(m, f're-ADD after {what}')
        check(p.check(x, confs[x]).ok, f'CHECK after the re-ADD that followed {what}')

    lib.run(['nft', 'flush', 'ruleset'])
    m.flush()
    check_fails('table inet nft-portmap is missing', 'nft flush ruleset')
    out = p.delete(b)
    check(out.ok, f'DEL after the flush: {out}')
    expect_outcome(m.add(b, conf_b), p.add(b, conf_b), 'first ADD after the flush')
    expect_state(m, 'the first ADD after the flush rebuilt one skeleton')
    check_fails(f'record counter {a.record} of this attachment is missing',
                'the flush, for a container not re-added')
    heal('nft flush ruleset')
    heal('nft flush ruleset', c)

    table = ' '.join(TABLE)

    def by_hand(*args):
        return lambda: nft(*args)

    def delete_rule(chain, pattern):
        def do():
            listing = nft('-a', 'list', 'chain', *TABLE, chain).stdout
            found = re.search(pattern + r'.* # handle (\d+)', listing)
            check(found, f'no rule matching {pattern!r} in chain {chain}:\n{listing}')
            nft('delete', 'rule', *TABLE, chain, 'handle', found.group(1))
        return do

    def replace_element(mapname, key, comment, data=None):
        """The element deleted and added again with this comment (and data)."""
        value = f' : {data}' if data else ''
        return lambda: nft('-f', '-', input=(
            f'delete element {table} {mapname} {{ {key} }}\n'
            f'add element {table} {mapname} {{ {key} comment "{comment}"{value} }}\n'))

    losses = [
        (by_hand('delete', 'element', *TABLE, 'ports4', '{ tcp . 8080 }'),
         'element tcp . 8080 is missing from ports4', 'an element deleted by hand', a),
        (by_hand('delete', 'element', *TABLE, 'addrports4', '{ 192.0.2.1 . udp . 8080 }'),
         'element 192.0.2.1 . udp . 8080 is missing from addrports4',
         'a hostIP element deleted by hand', a),
        (by_hand('delete', 'element', *TABLE, 'masq4-24', '{ 10.30.1.2 . 10.30.1.0 }'),
         'element 10.30.1.2 . 10.30.1.0 is missing from masq4-24',
         'a masquerade element deleted by hand', a),
        (by_hand('delete', 'counter', *TABLE, a.record),
         f'record counter {a.record} of this attachment is missing',
         'the record deleted by hand', a),
        (replace_element('ports6', 'tcp . 8080', a.comment, 'fd00:30:1::9 . 80'),
         'element tcp . 8080 of ports6 maps to fd00:30:1::9 . 80, expected fd00:30:1::2 . 80',
         'an element retargeted by hand', a),
        (replace_element('masq4-8', '10.30.1.2 . 127.0.0.0', b.comment),
         'element 10.30.1.2 . 127.0.0.0 of masq4-8 belongs to container b (network netA, '
         'interface eth0)', 'a masquerade element given to another container', a),
        (delete_rule('postrouting', '@masq4-24 '),
         'chain postrouting has no masquerade rule for set masq4-24',
         'a masquerade rule deleted by hand', a),
        (by_hand('add', 'rule', *TABLE, 'postrouting', 'tcp', 'dport', '1', 'counter'),
         'chain postrouting holds a rule nft-portmap did not write', 'a rule added to postrouting',
         a),
        (delete_rule(c.chain, 'tcp dport 7071 '),
         f'DNAT rule tcp *:7071 -> 10.30.3.2:71 is missing from chain {c.chain}',
         'a DNAT rule of the attachment\'s chain deleted by hand', c),
        (by_hand('insert', 'rule', *TABLE, c.chain, 'tcp', 'dport', '1', 'counter'),
         f'chain {c.chain} holds a rule nft-portmap did not write',
         'a rule added to the attachment\'s chain', c),
        (delete_rule(c.chain, 'accept'), 'does not end in accept',
         'the accept of the attachment\'s chain deleted by hand', c),
        (by_hand('delete', 'element', *TABLE, 'guard4', '{ tcp . 7070 }'),
         'element tcp . 7070 is missing from guard4', 'a guard element deleted by hand', c),
        (by_hand('flush', 'chain', *TABLE, c.chain), 'is missing from chain',
         'the attachment\'s chain flushed by hand', c),
    ]
    for do, needle, what, x in losses:
        do()
        check_fails(needle, what, x)
        heal(what, x)

    # The table deleted by hand (what `nft flush ruleset` does to it alone).
    nft('delete', 'table', *TABLE)
    m.flush()
    check_fails('table inet nft-portmap is missing', 'the table deleted by hand')
    heal('the table deleted by hand')
    out = p.check(b, conf_b)
    check(out.code == CODE_CHECK_FAILED, f'b was not re-added: CHECK must fail, got {out}')

    # A shared chain emptied by hand: CHECK of every attachment names it.
    nft('flush', 'chain', *TABLE, 'dispatch')
    check_fails('chain dispatch has 0 rules', 'the dispatch chain flushed by hand')
    heal('the dispatch chain flushed by hand')
    log(f'flush: {len(losses) + 3} losses, each named by CHECK and repaired by a re-ADD')


# -- compare-and-swap, with gdb holding the plugin between its reads and its commit -------

GDB_SCRIPT = r'''set breakpoint pending on
set pagination off
set confirm off
set $nftpm_hits = 0
break {function}
commands
silent
set $nftpm_hits = $nftpm_hits + 1
printf "NFTPM-COMMIT %d\n", $nftpm_hits
if $nftpm_hits == 1
shell echo stopped > {stopped} && cat {go} > /dev/null
end
{every_hit}
continue
end
run < {stdin} > {stdout}
'''


COMMIT = 'nftpm::nft::Batch::commit'
# ADD's lookup of the elements it wants (engine.cpp addAttempt, after the
# generation id, the skeleton and the record were read).
READ_ELEMENTS = 'nftpm::readElements'
# A conflict's owner taken from the element's comment (engine.cpp describeOwner).
NAME_OWNER = 'nftpm::ruleset::parseAttachmentComment'


class Stopped:
    """The plugin under gdb, stopped at the first call of function until go().

    By default Batch::commit: the plugin has read what it needed and built
    its batch. go() answers how often function was called in all.
    """

    def __init__(self, plugin, command, conf, a=None, function=COMMIT, every_hit=''):
        if not shutil.which('gdb'):
            raise lib.Skip('gdb not found (apt-get install gdb)')
        self.dir = tempfile.mkdtemp(prefix='nftpm-gdb-')
        f = {k: os.path.join(self.dir, k) for k in ('stopped', 'go', 'stdin', 'stdout', 'gdb')}
        os.mkfifo(f['stopped'])
        os.mkfifo(f['go'])
        with open(f['stdin'], 'w', encoding='utf-8') as fh:
            import json
            json.dump(conf, fh)
        with open(f['gdb'], 'w', encoding='utf-8') as fh:
            fh.write(GDB_SCRIPT.format(function=function, every_hit=every_hit, **f))
        self.files = f
        self.function = function
        env = plugin.env(command, a)
        # LeakSanitizer cannot work under ptrace (sanitizer builds).
        env['ASAN_OPTIONS'] = ':'.join(filter(None, [env.get('ASAN_OPTIONS'), 'detect_leaks=0']))
        self.proc = subprocess.Popen(['gdb', '-q', '-nx', '-batch', '-x', f['gdb'], plugin.path],
                                     env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self._wait_stopped()

    def _wait_stopped(self, timeout=60):
        """Until the plugin has reached the function (by default: is about to commit)."""
        fd = os.open(self.files['stopped'], os.O_RDONLY | os.O_NONBLOCK)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if os.read(fd, 64):
                    return
                if self.proc.poll() is not None:
                    out = self.proc.stdout.read()
                    raise Failure(f'the plugin ended without calling {self.function}:\n{out}')
                time.sleep(0.02)
            self.proc.kill()
            self.proc.wait()
            raise Failure(f'the plugin did not reach {self.function} within {timeout} s')
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        finally:
            os.close(fd)

    def go(self):
        """Lets the plugin go on; returns (Outcome, number of calls of the function)."""
        with open(self.files['go'], 'w', encoding='utf-8') as fh:
            fh.write('go\n')
        out, _ = self.proc.communicate(timeout=120)
        commits = len(re.findall(r'^NFTPM-COMMIT \d+$', out, re.M))
        m = re.search(r'\[Inferior 1 \(process \d+\) exited (normally|with code (\d+))\]', out)
        check(m is not None, f'gdb: the plugin did not exit:\n{out}')
        rc = int(m.group(2), 8) if m.group(2) else 0
        with open(self.files['stdout'], encoding='utf-8') as fh:
            stdout = fh.read().strip()
        shutil.rmtree(self.dir, ignore_errors=True)
        return parse_outcome(rc, stdout, out), commits


def stopped(p, command, conf, a=None, function=COMMIT):
    return Stopped(p, command, conf, a, function)


def expect_retry(result, expect, calls, what, function='commit attempt'):
    out, n = result
    expect_outcome(expect, out, what)
    check(n == calls, f'{what}: {n} {function}s, expected {calls} (a first attempt made stale '
          'must be refused by the generation check)')
    log(f'{what}: {out} after {n} {function}(s)')


def cas_admin(opts):
    """The admin changes the ruleset while the plugin is between read and write."""
    p = Plugin(opts.plugin)
    m = Model()
    a = att('a', 1)
    conf1 = Conf((Mapping('tcp', 8080, 80),))
    conf2 = Conf((Mapping('tcp', 8080, 80), Mapping('tcp', 8081, 81)), cond_v4=('iifname', 'eth0'))
    expect_outcome(m.add(a, conf1), p.add(a, conf1), 'ADD a')

    # re-ADD of a (with conditions: a chain and guard elements); meanwhile
    # a's record and elements vanish. The stale batch (replace the record,
    # keep the element it found) must not be applied; the retry builds a
    # from scratch.
    s = stopped(p, 'ADD', config(a, conf2), a)
    nft('-f', '-', input=delete_attachment_text(a))
    m.delete(a)
    expect_retry(s.go(), m.add(a, conf2), 2, 're-ADD whose record vanished before the commit')
    expect_state(m, 're-ADD after the vanished record')

    # DEL of a; meanwhile the admin deletes a (record, elements, chain): the
    # retry finds nothing to do.
    s = stopped(p, 'DEL', config(a, conf2), a)
    nft('-f', '-', input=delete_attachment_text(a))
    expect_retry(s.go(), m.delete(a), 1, 'DEL of an attachment deleted meanwhile')
    expect_state(m, 'DEL after the admin deleted it')

    # Any change of the ruleset (here another table) makes the batch stale.
    s = stopped(p, 'ADD', config(a, conf1), a)
    nft('add', 'table', 'ip', 'admin-table')
    expect_retry(s.go(), m.add(a, conf1), 2, 'ADD while another table was added')
    expect_state(m, 'ADD after an unrelated change')
    check('ip admin-table' in nft('list', 'tables').stdout, 'the admin table is untouched')

    # The admin takes a's new port with an element of his own meanwhile:
    # ADD retries, then reports the conflict and applies nothing.
    s = stopped(p, 'ADD', config(a, conf2), a)
    nft('add', 'element', *TABLE, 'ports4', '{ tcp . 8081 : 192.0.2.99 . 81 }')
    before = ruleset_snapshot()
    out, n = s.go()
    check(out.code == CODE_CONFLICT and 'without an owner comment' in out.msg and n == 1 and
          out.details == 'tcp . 8081',
          f'ADD of a port taken meanwhile: expected code 100 naming the admin\'s element '
          f'(tcp . 8081, without an owner comment) after one refused commit, got {out} after {n}')
    check(ruleset_snapshot() == before, 'the conflicting ADD changed the ruleset')
    log(f'ADD of a port taken meanwhile: {out.msg}')
    nft('delete', 'element', *TABLE, 'ports4', '{ tcp . 8081 }')
    expect_state(m, 'after the admin removed his element')

    # With the lock (the normal case), a second plugin waits for the first.
    b = att('b', 2)
    conf_b = Conf((Mapping('tcp', 9090, 90),))
    s = stopped(p, 'ADD', config(a, conf1), a)
    waiting = p.start('ADD', config(b, conf_b), b)
    waiting.release()
    time.sleep(0.5)
    check(waiting.proc.poll() is None, 'a second plugin did not wait for the netns lock')
    expect_retry(s.go(), m.add(a, conf1), 1, 'ADD holding the lock')
    expect_outcome(m.add(b, conf_b), waiting.wait(), 'the ADD that waited for the lock')
    expect_state(m, 'after the serialised ADDs')
    log('the netns lock made the second plugin wait for the first')

    # A ruleset that changes before every commit (gdb adds a table each
    # time): the retries are bounded, the answer is code 11, nothing applied.
    before = ruleset_snapshot()
    meddle = 'eval "shell nft add table ip meddle%d", $nftpm_hits'
    s = Stopped(p, 'ADD', config(a, conf2), a, every_hit=meddle)
    out, n = s.go()
    check(out.code == CODE_TRY_AGAIN, f'ADD against a ruleset that always changes: expected '
          f'code 11, got {out} after {n} commit attempts')
    m_attempts = re.search(r'during (\d+) attempts', out.msg)
    check(m_attempts and int(m_attempts.group(1)) == n and 2 <= n <= 100,
          f'the error must give the number of attempts ({n}): {out.msg}')
    for i in range(1, n + 1):
        nft('delete', 'table', 'ip', f'meddle{i}')
    check(ruleset_snapshot() == before, 'the ADD that gave up changed the ruleset')
    log(f'ADD against a ruleset that changed before each commit: gave up after {n} attempts: '
        f'{out.msg}')


def delete_attachment_text(a):
    """nft -f input deleting an attachment by hand: its elements, chain and record."""
    state = read_state()
    out = [f'delete element {" ".join(TABLE)} {name} {{ {" . ".join(key)} }}'
           for name, elems in state.maps.items()
           for key, (_, comment) in elems.items() if comment == a.comment]
    check(out, f'{a} has no elements to delete by hand')
    if a.chain in state.chains:
        out.append(f'delete chain {" ".join(TABLE)} {a.chain}')
    if a.record in state.objects:
        out.append(f'delete counter {" ".join(TABLE)} {a.record}')
    return '\n'.join(out) + '\n'


def lockless_cas(opts):
    """Other plugins change the ruleset while one is between read and write."""
    p = Plugin(opts.plugin)
    m = Model()
    a, b, c = att('a', 1), att('b', 2), att('c', 3)
    conf = Conf((Mapping('tcp', 8080, 80),))

    # ADD of b; meanwhile c takes the port: b reports c as the owner.
    s = stopped(p, 'ADD', config(b, conf), b)
    expect_outcome(m.add(c, conf), p.add(c, conf), 'ADD c (meanwhile)')
    expect_retry(s.go(), m.add(b, conf), 1, 'ADD of a port another plugin took meanwhile')
    expect_state(m, 'after the lost race for the port')

    # ADD of a has read the generation, the skeleton and its record, and is
    # about to look up its elements; right then c is deleted. The element
    # lookup finds the port free, and the commit is refused (the reads
    # before it are stale): the retry reads again and takes the port.
    s = stopped(p, 'ADD', config(a, conf), a, function=READ_ELEMENTS)
    expect_outcome(m.delete(c), p.delete(c), 'DEL c (meanwhile)')
    expect_retry(s.go(), m.add(a, conf), 2, 'ADD whose element lookup came after c\'s DEL',
                 'element lookup')
    expect_state(m, 'a took the port c released while a was reading')
    expect_outcome(m.delete(a), p.delete(a), 'DEL a')
    expect_outcome(m.add(c, conf), p.add(c, conf), 'ADD c again')

    # ADD of a finds the port held by c and is naming the owner from the
    # element's comment; right then c is deleted. The owner comes from the
    # same read as the element (the first version read c's chain again and
    # named "not an nft-portmap attachment"): the conflict names c, as it was
    # when a looked, and nothing is applied.
    s = stopped(p, 'ADD', config(a, conf), a, function=NAME_OWNER)
    expect_outcome(m.delete(c), p.delete(c), 'DEL c (meanwhile)')
    out, n = s.go()
    check(out.code == CODE_CONFLICT and owner_named(out.msg, c) and n == 1,
          f'ADD that met c\'s port while c was deleted: expected the conflict naming c as read, '
          f'got {out} after {n} owner lookups')
    expect_state(m, 'the conflicting ADD applied nothing')
    log(f'ADD that met c\'s port while c was deleted: {out.msg}')
    expect_outcome(m.add(c, conf), p.add(c, conf), 'ADD c again')

    # DEL of c, stale: meanwhile c is deleted and a takes its port. The
    # stale DEL must not remove a's element (same key, other owner).
    s = stopped(p, 'DEL', config(c, conf), c)
    expect_outcome(m.delete(c), p.delete(c), 'DEL c (meanwhile)')
    expect_outcome(m.add(a, conf), p.add(a, conf), 'ADD a on c\'s old port (meanwhile)')
    expect_retry(s.go(), m.delete(c), 1, 'stale DEL of c after a took its port')
    expect_state(m, 'a keeps the port after the stale DEL of c')

    # GC of netA with only a valid: it is about to remove stale1 when
    # stale1 moves to another port, stale2 appears, and netB's other takes
    # stale1's old port. The retry removes stale1 and stale2, never other.
    stale1, stale2, other = att('stale1', 4), att('stale2', 5), att('other', 6, net='netB')
    c7000, c7001, c5353 = (Conf((Mapping('tcp', port, 70),)) for port in (7000, 7001, 5353))
    c7001 = Conf(c7001.mappings, cond_v4=('iifname', 'eth0'))  # and a chain of its own
    expect_outcome(m.add(stale1, c7000), p.add(stale1, c7000), 'ADD stale1')
    s = stopped(p, 'GC', gc_config('netA', [(a.cid, a.ifname)]))
    expect_outcome(m.add(stale1, c7001), p.add(stale1, c7001), 're-ADD stale1 (meanwhile)')
    expect_outcome(m.add(other, c7000), p.add(other, c7000), 'ADD netB other (meanwhile)')
    expect_outcome(m.add(stale2, c5353), p.add(stale2, c5353), 'ADD stale2 (meanwhile)')
    m.gc('netA', {(a.cid, a.ifname)})
    out, n = s.go()
    check(out.ok and n == 2, f'GC racing with ADDs: expected success after 2 commit attempts, '
          f'got {out} after {n}')
    expect_state(m, 'GC after concurrent ADDs: the stale ones removed, netB kept')
    log(f'GC racing with ADDs: {out} after {n} commit attempts')


# -- gaps found before (fixed since), and known ones (meson.build: known_gaps) ----------

def check_masq(opts):
    """CHECK must notice lost masquerade rules (hairpin, localhost); a re-ADD repairs them."""
    p = Plugin(opts.plugin)
    m = Model()
    a = att('a', 1)
    conf = Conf((Mapping('tcp', 8080, 80),))
    expect_outcome(m.add(a, conf), p.add(a, conf), 'ADD')
    nft('flush', 'chain', *TABLE, 'postrouting')
    out = p.check(a, conf)
    check(out.code == CODE_CHECK_FAILED and 'masquerade rule for set masq4-24' in out.msg,
          f'CHECK after the postrouting chain was emptied by hand: expected 103 naming the '
          f'masquerade rule of masq4-24, got {out}')
    expect_outcome(m.add(a, conf), p.add(a, conf), 're-ADD')
    expect_state(m, 're-ADD after the masquerade rules were lost: one rule per masq set again')
    out = p.check(a, conf)
    check(out.ok, f'CHECK after the re-ADD: {out}')


def readd_skeleton(opts):
    """A re-ADD must repair the shared chains it relies on (CHECK fails, the runtime re-ADDs)."""
    p = Plugin(opts.plugin)
    m = Model()
    a = att('a', 1)
    conf = Conf((Mapping('tcp', 8080, 80),))
    expect_outcome(m.add(a, conf), p.add(a, conf), 'ADD')
    nft('flush', 'chain', *TABLE, 'dispatch')
    check(p.check(a, conf).code == CODE_CHECK_FAILED, 'CHECK notices the emptied dispatch chain')
    expect_outcome(m.add(a, conf), p.add(a, conf), 're-ADD')
    expect_state(m, 're-ADD after the dispatch chain was emptied')
    out = p.check(a, conf)
    check(out.ok, f'CHECK after the re-ADD: the dispatch chain is still broken: {out}')


def del_lost_record(opts):
    """DEL removes an attachment's elements even when its record counter was lost.

    The record names what the attachment published; without it, DEL looks up
    the keys the runtime's configuration names (portMappings and prevResult,
    which containerd, CRI-O and Podman pass on DEL too) and removes those
    that still carry the attachment's comment. The port is free at once for
    another container.
    """
    p = Plugin(opts.plugin)
    m = Model()
    a, b = att('a', 1), att('b', 2)
    conf = Conf((Mapping('tcp', 8080, 80),))
    expect_outcome(m.add(a, conf), p.add(a, conf), 'ADD a')
    nft('delete', 'counter', *TABLE, a.record)
    expect_outcome(m.delete(a), p.delete(a, conf), 'DEL a (with its configuration) after its record was deleted by hand')
    expect_state(m, 'DEL of an attachment whose record was lost')
    expect_outcome(m.add(b, conf), p.add(b, conf), 'ADD b on the port a had')


def check_conditions(opts):
    """CHECK must fail when the configuration asks for other conditions than the chain has.

    (ruleset v2: the record keeps whether a family has conditions, and CHECK
    compares the chain's DNAT rules without their conditions.)
    """
    p = Plugin(opts.plugin)
    a = att('a', 1)
    have = Conf((Mapping('tcp', 8080, 80),), cond_v4=('iifname', 'eth0'))
    other = Conf(have.mappings, cond_v4=('ip', 'saddr', '==', '192.0.2.0/24'))
    check(p.add(a, have).ok, 'ADD')
    check(p.check(a, have).ok, 'CHECK of the same conditions')
    out = p.check(a, other)
    check(out.code == CODE_CHECK_FAILED, f'CHECK of other conditionsV4 than the chain has: '
          f'expected 103, got {out}')


TESTS = {'full_map': full_map, 'refused_expr': refused_expr, 'flush': flush,
         'cas_admin': cas_admin, 'lockless_cas': lockless_cas,
         'check_masq': check_masq, 'readd_skeleton': readd_skeleton,
         'del_lost_record': del_lost_record, 'check_conditions': check_conditions,
         'skeleton_type_changed': skeleton_type_changed}

if __name__ == '__main__':
    from harness import run_main
    run_main(__file__, TESTS)
