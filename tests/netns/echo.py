#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Echo server and probe client for the netns tests, run via `ip netns exec`.

The server answers every TCP connection, UDP datagram and SCTP association
with one line "<server-name> <peer-address> <peer-port>": the name tells
which container a published port reached, the peer address tells whether
the packet was masqueraded on the way.

  echo.py serve NAME PROTO:PORT [PROTO:PORT ...]   prints "ready" once bound
  echo.py probe PROTO ADDR PORT [--timeout S] [--sport N]
                                                   prints one JSON object:
                                                   {"ok": true, "reply": "..."}
                                                   {"ok": false, "error": "..."}
"""

import argparse
import json
import selectors
import socket
import struct
import sys

IPPROTO_SCTP = 132
IP_PKTINFO = getattr(socket, 'IP_PKTINFO', 8)  # Linux value; Python < 3.13 lacks it


def socket_type(proto):
    """SOCK_STREAM for tcp and (one-to-one style) sctp, SOCK_DGRAM for udp."""
    if proto == 'udp':
        return socket.SOCK_DGRAM, 0
    if proto == 'sctp':
        return socket.SOCK_STREAM, IPPROTO_SCTP
    return socket.SOCK_STREAM, 0


def plain_address(addr):
    """Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; print a.b.c.d."""
    return addr[7:] if addr.startswith('::ffff:') else addr


def bind_any(proto, port):
    """One dual-stack listening socket per port, so IPv4 and IPv6 clients share it."""
    kind, number = socket_type(proto)
    try:
        s = socket.socket(socket.AF_INET6, kind, number)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('::', port))
    except OSError:
        # IPv6 disabled in this namespace: IPv4 only.
        s = socket.socket(socket.AF_INET, kind, number)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('0.0.0.0', port))
    if kind == socket.SOCK_STREAM:
        s.listen(16)
    return s


def bind_udp(port):
    """UDP sockets, one per family, that report each datagram's destination address.

    A reply must leave from the address the request was sent to: with two
    addresses on an interface (the host has .1 and .3) the kernel would
    otherwise pick the source by route, and the client's connected socket
    would drop the answer.
    """
    v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v4.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    v4.bind(('0.0.0.0', port))
    socks = [v4]
    try:
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        v6.bind(('::', port))
        socks.append(v6)
    except OSError:
        pass  # IPv6 disabled in this namespace
    return socks


def answer_udp(name, s):
    """Replies to one datagram from the address it was sent to (see bind_udp)."""
    _, ancdata, _, peer = s.recvmsg(2048, socket.CMSG_SPACE(32))
    cmsgs = []
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
            # struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
            _, _, dst = struct.unpack('i4s4s', data[:12])
            cmsgs.append((level, kind, struct.pack('i4s4s', 0, dst, bytes(4))))
        elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
            # struct in6_pktinfo { in6_addr addr; int ifindex; }
            dst, _ = struct.unpack('16si', data[:20])
            cmsgs.append((level, kind, struct.pack('16si', dst, 0)))
    s.sendmsg([answer(name, peer)], cmsgs, 0, peer)


def answer(name, peer):
    return f'{name} {plain_address(peer[0])} {peer[1]}\n'.encode()


def serve(name, endpoints):
    """Single-threaded select loop: replies are one short line, never blocking."""
    sel = selectors.DefaultSelector()
    for proto, port in endpoints:
        for s in bind_udp(port) if proto == 'udp' else [bind_any(proto, port)]:
            sel.register(s, selectors.EVENT_READ, proto)
    print('ready', flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if key.data == 'udp':
                try:
                    answer_udp(name, s)
                except OSError:
                    pass
                continue
            try:
                conn, peer = s.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.sendall(answer(name, peer))
                except OSError:
                    pass


def probe(proto, addr, port, timeout, sport):
    """One request; returns the reply line or raises OSError (timeout included)."""
    family = socket.AF_INET6 if ':' in addr else socket.AF_INET
    kind, number = socket_type(proto)
    with socket.socket(family, kind, number) as s:
        s.settimeout(timeout)
        if sport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('::' if family == socket.AF_INET6 else '0.0.0.0', sport))
        s.connect((addr, port))
        if proto == 'udp':
            s.send(b'ping\n')
        data = s.recv(2048)
        if not data:
            raise ConnectionResetError('closed without a reply')
        return data.decode().strip()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('serve')
    s.add_argument('name')
    s.add_argument('endpoints', nargs='+', help='PROTO:PORT')
    c = sub.add_parser('probe')
    c.add_argument('proto', choices=['tcp', 'udp', 'sctp'])
    c.add_argument('addr')
    c.add_argument('port', type=int)
    c.add_argument('--timeout', type=float, default=2.0)
    c.add_argument('--sport', type=int, default=0)
    opts = p.parse_args(argv)

    if opts.cmd == 'serve':
        endpoints = []
        for e in opts.endpoints:
            proto, _, port = e.partition(':')
            endpoints.append((proto, int(port)))
        serve(opts.name, endpoints)
        return 0
    try:
        reply = probe(opts.proto, opts.addr, opts.port, opts.timeout, opts.sport)
        print(json.dumps({'ok': True, 'reply': reply}))
    except OSError as e:
        print(json.dumps({'ok': False, 'error': f'{type(e).__name__}: {e}'}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
