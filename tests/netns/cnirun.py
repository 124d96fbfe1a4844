#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A network-configuration-list runner that behaves like libcni.

The integration tests must exercise nft-portmap exactly as a container
runtime would: chained behind bridge + host-local, fed the stdin that
libcni builds (injected name, cniVersion, runtimeConfig, prevResult) and
given the cached ADD result on DEL and CHECK. Rather than depend on Go
tooling, this module re-implements the small part of libcni the tests need:

  ADD     plugins in order, each with the previous plugin's result as
          prevResult (none for the first); the final result is cached.
  DEL     plugins in reverse order; prevResult = the cached result when the
          list's cniVersion >= 0.4.0; the cache entry is removed afterwards.
  CHECK   (>= 0.4.0) plugins in order with the cached result as prevResult.
  GC      (>= 1.1.0) DEL for cached attachments that are not valid, then GC
          on every plugin with "cni.dev/valid-attachments".
  STATUS  (>= 1.1.0) every plugin in order.

Usable as a module (CniRunner) and from the command line (see --help).
"""

import argparse
import json
import os
import subprocess
import sys

# Commands that get the cached result as prevResult need at least this version.
PREV_RESULT_ON_DEL_VERSION = (0, 4, 0)
CHECK_VERSION = (0, 4, 0)
GC_VERSION = (1, 1, 0)


class CniError(Exception):
    """A plugin failed; carries the CNI error object it printed."""

    def __init__(self, plugin, command, code, msg, details='', stderr=''):
        self.plugin = plugin
        self.command = command
        self.code = code
        self.msg = msg
        self.details = details
        self.stderr = stderr
        text = f'{plugin} {command} failed: code {code}: {msg}'
        if details:
            text += f' ({details})'
        super().__init__(text)


def parse_version(text):
    """CNI versions compare numerically; an empty version means 0.1.0 (spec)."""
    parts = (text or '0.1.0').split('.')
    return tuple(int(p) for p in parts)


def runtime_config(plugin_conf, capability_args):
    """libcni injects only the capabilities that the plugin declares true."""
    caps = plugin_conf.get('capabilities') or {}
    return {name: value for name, value in (capability_args or {}).items()
            if caps.get(name) is True}


def build_stdin(net_list, plugin_conf, prev_result, capability_args):
    """The exact configuration a plugin sees, as libcni's buildOneConfig makes it."""
    conf = dict(plugin_conf)
    conf['name'] = net_list['name']
    conf['cniVersion'] = net_list['cniVersion']
    if prev_result is not None:
        conf['prevResult'] = prev_result
    rc = runtime_config(plugin_conf, capability_args)
    if rc:
        conf['runtimeConfig'] = rc
    return conf


def format_cni_args(args):
    """CNI_ARGS is 'K=V;K2=V2'; accept a dict or an already formatted string."""
    if args is None:
        return ''
    if isinstance(args, str):
        return args
    return ';'.join(f'{k}={v}' for k, v in args.items())


class CniRunner:
    """Runs one network configuration list for any number of attachments.

    cni_path:    directory (or ':'-separated list) holding the plugin binaries
    cache_dir:   where the final ADD results are kept, like /var/lib/cni
    exec_prefix: command prefix that puts the plugins in the runtime's network
                 namespace, e.g. ['ip', 'netns', 'exec', 'host-ns']
    """

    def __init__(self, net_list, cni_path, cache_dir, exec_prefix=None, timeout=30,
                 log=None):
        self.net_list = net_list
        self.cni_path = cni_path
        self.cache_dir = cache_dir
        self.exec_prefix = list(exec_prefix or [])
        self.timeout = timeout
        self.log = log
        self.version = parse_version(net_list.get('cniVersion'))
        # Each plugin's result of the last ADD, so a test can compare what a
        # chained plugin received (prevResult) with what it returned.
        self.last_results = []

    # -- plugin execution ---------------------------------------------------

    def find_plugin(self, plugin_type):
        """Like libcni's FindInPath: the first executable of that name in CNI_PATH."""
        for directory in self.cni_path.split(':'):
            candidate = os.path.join(directory, plugin_type)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
        raise FileNotFoundError(f'plugin {plugin_type!r} not found in {self.cni_path}')

    def exec_plugin(self, plugin_conf, command, stdin_conf, container_id='', netns='',
                    ifname='', cni_args=None):
        """Runs one plugin; returns its parsed stdout (None if empty) or raises CniError."""
        binary = self.find_plugin(plugin_conf['type'])
        env = dict(os.environ)
        env.update({
            'CNI_COMMAND': command,
            'CNI_CONTAINERID': container_id,
            'CNI_NETNS': netns,
            'CNI_IFNAME': ifname,
            'CNI_PATH': self.cni_path,
            'CNI_ARGS': format_cni_args(cni_args),
        })
        data = json.dumps(stdin_conf).encode()
        self._log(f'exec {plugin_conf["type"]} {command} id={container_id} '
                  f'if={ifname} stdin={data.decode()}')
        proc = subprocess.run(self.exec_prefix + [binary], input=data, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=self.timeout, check=False)
        stdout = proc.stdout.decode(errors='replace').strip()
        stderr = proc.stderr.decode(errors='replace').strip()
        if stderr:
            self._log(f'{plugin_conf["type"]} {command} stderr: {stderr}')
        if proc.returncode != 0:
            raise self._error(plugin_conf['type'], command, proc.returncode, stdout, stderr)
        if not stdout:
            return None
        try:
            return json.loads(stdout)
        except ValueError as e:
            raise CniError(plugin_conf['type'], command, -1,
                           f'unparseable output: {e}: {stdout!r}', stderr=stderr) from e

    @staticmethod
    def _error(plugin, command, returncode, stdout, stderr):
        """The spec puts the error object on stdout; fall back to what we have."""
        try:
            obj = json.loads(stdout)
            return CniError(plugin, command, obj.get('code'), obj.get('msg', ''),
                            obj.get('details', ''), stderr)
        except ValueError:
            return CniError(plugin, command, -1,
                            f'exit {returncode}, stdout {stdout!r}', stderr=stderr)

    def _log(self, text):
        if self.log:
            self.log(text)

    # -- the result cache ---------------------------------------------------

    def cache_file(self, container_id, ifname):
        """libcni keys its cache by network name, container ID and ifname."""
        name = f'{self.net_list["name"]}-{container_id}-{ifname}'
        return os.path.join(self.cache_dir, 'results', name)

    def read_cache(self, container_id, ifname):
        """The cache entry, or None when the attachment is unknown."""
        try:
            with open(self.cache_file(container_id, ifname), encoding='utf-8') as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def cached_result(self, container_id, ifname):
        entry = self.read_cache(container_id, ifname)
        return entry['result'] if entry else None

    def _write_cache(self, container_id, ifname, netns, cni_args, capability_args, result):
        path = self.cache_file(container_id, ifname)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        entry = {
            'kind': 'cniCacheV1',
            'containerId': container_id,
            'ifName': ifname,
            'networkName': self.net_list['name'],
            'netns': netns,
            'cniArgs': format_cni_args(cni_args),
            'capabilityArgs': capability_args or {},
            'config': self.net_list,
            'result': result,
        }
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(entry, f)

    def forget(self, container_id, ifname):
        """Drops a cache entry, as libcni does after DEL (tests use it to lose state)."""
        try:
            os.unlink(self.cache_file(container_id, ifname))
        except FileNotFoundError:
            pass

    def cached_attachments(self):
        """(containerId, ifName) of every cached attachment of this network."""
        directory = os.path.join(self.cache_dir, 'results')
        found = []
        if not os.path.isdir(directory):
            return found
        for name in sorted(os.listdir(directory)):
            with open(os.path.join(directory, name), encoding='utf-8') as f:
                entry = json.load(f)
            if entry.get('networkName') == self.net_list['name']:
                found.append(entry)
        return found

    # -- the commands -------------------------------------------------------

    def plugins(self):
        return self.net_list['plugins']

    def add(self, container_id, netns, ifname, capability_args=None, cni_args=None):
        """ADD the whole list; returns and caches the last plugin's result."""
        prev = None
        self.last_results = []
        for plugin in self.plugins():
            stdin = build_stdin(self.net_list, plugin, prev, capability_args)
            prev = self.exec_plugin(plugin, 'ADD', stdin, container_id, netns, ifname,
                                    cni_args)
            self.last_results.append(prev)
        self._write_cache(container_id, ifname, netns, cni_args, capability_args, prev)
        return prev

    def delete(self, container_id, netns, ifname, capability_args=None, cni_args=None,
               prev_result='cached'):
        """DEL in reverse order; then forget the cache entry.

        prev_result: 'cached' behaves like libcni; None sends no prevResult
        (what a runtime without a cache does); a dict is sent as given.
        """
        if prev_result == 'cached':
            prev_result = None
            if self.version >= PREV_RESULT_ON_DEL_VERSION:
                prev_result = self.cached_result(container_id, ifname)
        for plugin in reversed(self.plugins()):
            stdin = build_stdin(self.net_list, plugin, prev_result, capability_args)
            self.exec_plugin(plugin, 'DEL', stdin, container_id, netns, ifname, cni_args)
        self.forget(container_id, ifname)

    def check(self, container_id, netns, ifname, capability_args=None, cni_args=None):
        """CHECK every plugin with the cached result, as libcni's CheckNetworkList."""
        if self.version < CHECK_VERSION:
            raise ValueError(f'configuration version {self.net_list["cniVersion"]} '
                             'does not support the CHECK command')
        prev = self.cached_result(container_id, ifname)
        if prev is None:
            raise ValueError(f'no cached result for {container_id}/{ifname}')
        for plugin in self.plugins():
            stdin = build_stdin(self.net_list, plugin, prev, capability_args)
            self.exec_plugin(plugin, 'CHECK', stdin, container_id, netns, ifname, cni_args)

    def gc(self, valid_attachments, only_types=None, del_stale=True):
        """GC as libcni's GCNetworkList does.

        valid_attachments: [{'containerID': ..., 'ifname': ...}, ...]
        only_types: GC only plugins of these types (Debian's bridge and
        host-local predate CNI 1.1.0 and refuse the command).
        del_stale: first DEL every cached attachment not in the valid list.
        """
        if self.version < GC_VERSION:
            raise ValueError('GC needs cniVersion 1.1.0')
        valid = {(a['containerID'], a['ifname']) for a in valid_attachments}
        if del_stale:
            for entry in self.cached_attachments():
                key = (entry['containerId'], entry['ifName'])
                if key not in valid:
                    self.delete(entry['containerId'], entry.get('netns', ''),
                                entry['ifName'], entry.get('capabilityArgs'),
                                entry.get('cniArgs'))
        errors = []
        for plugin in self.plugins():
            if only_types is not None and plugin['type'] not in only_types:
                continue
            stdin = build_stdin(self.net_list, plugin, None, None)
            stdin['cni.dev/valid-attachments'] = list(valid_attachments)
            stdin['cni.dev/attachments'] = list(valid_attachments)
            try:
                self.exec_plugin(plugin, 'GC', stdin)
            except CniError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    def status(self, only_types=None):
        """STATUS of every plugin; raises the first plugin's error."""
        if self.version < GC_VERSION:
            raise ValueError('STATUS needs cniVersion 1.1.0')
        for plugin in self.plugins():
            if only_types is not None and plugin['type'] not in only_types:
                continue
            self.exec_plugin(plugin, 'STATUS', build_stdin(self.net_list, plugin, None, None))


# -- command line -----------------------------------------------------------

def parse_capability(text):
    """--cap NAME=JSON, e.g. portMappings='[{"hostPort":8080,...}]'."""
    name, sep, value = text.partition('=')
    if not sep:
        raise argparse.ArgumentTypeError('expected NAME=JSON')
    return name, json.loads(value)


def main(argv=None):
    """Command-line front end; prints the result or the CNI error like a plugin."""
    p = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    p.add_argument('command', choices=['ADD', 'DEL', 'CHECK', 'GC', 'STATUS'])
    p.add_argument('--conflist', required=True, help='network configuration list file')
    p.add_argument('--cni-path', required=True, help='plugin directory (CNI_PATH)')
    p.add_argument('--cache-dir', required=True, help='result cache directory')
    p.add_argument('--netns-exec', metavar='NAME',
                   help='run the plugins inside this named network namespace')
    p.add_argument('--container-id', default='')
    p.add_argument('--netns', default='', help='CNI_NETNS (path)')
    p.add_argument('--ifname', default='eth0')
    p.add_argument('--args', default='', help='CNI_ARGS (K=V;K2=V2)')
    p.add_argument('--cap', action='append', type=parse_capability, default=[],
                   help='runtime capability argument NAME=JSON (repeatable)')
    p.add_argument('--no-prev-result', action='store_true',
                   help='DEL without prevResult (a runtime without a cache)')
    p.add_argument('--valid-attachments', type=json.loads, default=[],
                   help='GC: JSON list of {"containerID":..,"ifname":..}')
    p.add_argument('--only', action='append', help='GC/STATUS: only these plugin types')
    p.add_argument('--verbose', action='store_true', help='log plugin executions to stderr')
    opts = p.parse_args(argv)

    with open(opts.conflist, encoding='utf-8') as f:
        net_list = json.load(f)
    prefix = ['ip', 'netns', 'exec', opts.netns_exec] if opts.netns_exec else None
    log = (lambda t: print(t, file=sys.stderr)) if opts.verbose else None
    runner = CniRunner(net_list, opts.cni_path, opts.cache_dir, prefix, log=log)
    caps = dict(opts.cap)
    ident = (opts.container_id, opts.netns, opts.ifname)
    try:
        if opts.command == 'ADD':
            print(json.dumps(runner.add(*ident, caps, opts.args), indent=4))
        elif opts.command == 'DEL':
            prev = None if opts.no_prev_result else 'cached'
            runner.delete(*ident, caps, opts.args, prev_result=prev)
        elif opts.command == 'CHECK':
            runner.check(*ident, caps, opts.args)
        elif opts.command == 'GC':
            runner.gc(opts.valid_attachments, opts.only)
        else:
            runner.status(opts.only)
    except CniError as e:
        print(json.dumps({'plugin': e.plugin, 'code': e.code, 'msg': e.msg,
                          'details': e.details}, indent=4))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
