#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Echo server and probe client for the netns tests, run via `ip netns exec`.

The server answers every TCP connection, UDP datagram and SCTP association
with one line "<server-name> <peer-address> <peer-port>": the name tells
which container a published port reached, the peer address tells whether
the packet was masqueraded on the way.

SCTP: when the kernel has no SCTP sockets (CONFIG_IP_SCTP unset, as on the
project's machines) both sides fall back to raw IP sockets: the probe sends
an SCTP INIT and the server answers with an INIT ACK whose state cookie
carries the reply line. That is a real SCTP handshake start as far as
conntrack and NAT are concerned (the DNAT, the reverse translation and the
CRC32c rewrite all happen), without needing the SCTP stack.

  echo.py serve NAME PROTO:PORT [PROTO:PORT ...]   prints "ready" once bound
  echo.py probe PROTO ADDR PORT [--timeout S] [--sport N]
                                                   prints one JSON object:
                                                   {"ok": true, "reply": "..."}
                                                   {"ok": false, "error": "..."}
"""

import argparse
import functools
import json
import os
import selectors
import socket
import struct
import sys
import time

IPPROTO_SCTP = 132
IP_PKTINFO = getattr(socket, 'IP_PKTINFO', 8)  # Linux value; Python < 3.13 lacks it


def sctp_sockets():
    """Whether the kernel implements SCTP sockets (else the raw fallback is used)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP).close()
        return True
    except OSError:
        return False


# -- SCTP over raw sockets -------------------------------------------------------

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C = _crc32c_table()
CHUNK_INIT, CHUNK_INIT_ACK, PARAM_STATE_COOKIE = 1, 2, 7


def crc32c(data):
    """The SCTP checksum (RFC 9260 appendix A); crc32c(b'123456789') == 0xE3069283."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def sctp_packet(sport, dport, vtag, chunk):
    """Common header + one chunk, checksummed (stored little-endian, as Linux does)."""
    header = struct.pack('!HHII', sport, dport, vtag, 0)
    body = header + chunk
    return body[:8] + struct.pack('<I', crc32c(body)) + body[12:]


def init_chunk(tag, cookie=None):
    """INIT (no cookie) or INIT ACK (with a state cookie parameter)."""
    params = b''
    if cookie is not None:
        params = struct.pack('!HH', PARAM_STATE_COOKIE, 4 + len(cookie)) + cookie
        params += bytes(-len(params) % 4)
    ctype = CHUNK_INIT if cookie is None else CHUNK_INIT_ACK
    # initiate tag, a_rwnd, outbound streams, inbound streams, initial TSN
    fixed = struct.pack('!IIHHI', tag, 65536, 1, 1, tag)
    return struct.pack('!BBH', ctype, 0, 4 + len(fixed) + len(params)) + fixed + params


def parse_sctp(data):
    """(sport, dport, vtag, chunk type, chunk) of an SCTP packet, or None."""
    if len(data) < 16:
        return None
    sport, dport, vtag, _ = struct.unpack('!HHII', data[:12])
    ctype, _, length = struct.unpack('!BBH', data[12:16])
    return sport, dport, vtag, ctype, data[12:12 + length]


def raw_payload(family, data):
    """IPv4 raw sockets deliver the IP header too; IPv6 ones do not."""
    if family == socket.AF_INET:
        return data[(data[0] & 0x0F) * 4:]
    return data


def raw_sctp_sockets():
    socks = [socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_SCTP)]
    try:
        socks.append(socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_SCTP))
    except OSError:
        pass
    return socks


def answer_raw_sctp(name, port, s):
    """Answers an INIT for our port with an INIT ACK that carries the reply line."""
    data, peer = s.recvfrom(65535)
    pkt = parse_sctp(raw_payload(s.family, data))
    if not pkt or pkt[1] != port or pkt[3] != CHUNK_INIT or len(pkt[4]) < 20:
        return
    sport, _, _, _, chunk = pkt
    their_tag = struct.unpack('!I', chunk[4:8])[0]
    cookie = answer(name, (peer[0], sport))
    reply = sctp_packet(port, sport, their_tag, init_chunk(0x5C7A0001, cookie))
    s.sendto(reply, (peer[0], 0))


def raw_sctp_probe(addr, port, timeout, sport):
    """Sends an INIT to addr:port and returns the cookie of the matching INIT ACK."""
    family = socket.AF_INET6 if ':' in addr else socket.AF_INET
    sport = sport or 32768 + os.getpid() % 28000
    tag = int.from_bytes(os.urandom(4), 'big') | 1
    with socket.socket(family, socket.SOCK_RAW, IPPROTO_SCTP) as s:
        s.sendto(sctp_packet(sport, port, 0, init_chunk(tag)), (addr, 0))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('timed out (no INIT ACK)')
            s.settimeout(left)
            data, peer = s.recvfrom(65535)
            pkt = parse_sctp(raw_payload(family, data))
            if (pkt and pkt[:3] == (port, sport, tag) and pkt[3] == CHUNK_INIT_ACK
                    and peer[0] == addr):
                return parse_cookie(pkt[4])


def parse_cookie(chunk):
    """The state cookie parameter's value of an INIT ACK chunk."""
    params = chunk[20:]
    while len(params) >= 4:
        ptype, plen = struct.unpack('!HH', params[:4])
        if ptype == PARAM_STATE_COOKIE:
            return params[4:plen]
        params = params[(plen + 3) & ~3:]
    raise ConnectionResetError('INIT ACK without a state cookie')


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


def answer_stream(name, s):
    """Accepts one TCP/SCTP connection and sends the reply line."""
    conn, peer = s.accept()
    with conn:
        conn.sendall(answer(name, peer))


def endpoint_handlers(name, proto, port):
    """(socket, handler) pairs serving one PROTO:PORT endpoint."""
    if proto == 'udp':
        return [(s, functools.partial(answer_udp, name)) for s in bind_udp(port)]
    if proto == 'sctp' and not sctp_sockets():
        return [(s, functools.partial(answer_raw_sctp, name, port)) for s in raw_sctp_sockets()]
    return [(bind_any(proto, port), functools.partial(answer_stream, name))]


def serve(name, endpoints):
    """Single-threaded select loop: replies are one short line, never blocking."""
    sel = selectors.DefaultSelector()
    for proto, port in endpoints:
        for s, handler in endpoint_handlers(name, proto, port):
            sel.register(s, selectors.EVENT_READ, handler)
    print('ready', flush=True)
    while True:
        for key, _ in sel.select():
            try:
                key.data(key.fileobj)
            except OSError:
                pass  # a peer that went away must not stop the server


def probe(proto, addr, port, timeout, sport):
    """One request; returns the reply line or raises OSError (timeout included)."""
    if proto == 'sctp' and not sctp_sockets():
        return raw_sctp_probe(addr, port, timeout, sport).decode().strip()
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
