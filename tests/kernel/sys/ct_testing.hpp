/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of the conntrack kernel tests: make the namespace track
 * connections, create entries (by real traffic or through ctnetlink), and
 * list what is there, with the plain libnetfilter_conntrack API so that the
 * code under test is not checked with itself.
 */
#pragma once

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/ip.hpp"

namespace cttest {

using nftpm::Family;
using nftpm::IpAddress;

/* Runs a shell command in this (the test's own) network namespace. */
inline void sh(const std::string &cmd)
{
	int status = std::system(cmd.c_str());
	INFO(cmd);
	REQUIRE(status != -1);
	REQUIRE(WIFEXITED(status));
	REQUIRE(WEXITSTATUS(status) == 0);
}

/*
 * Conntrack only follows packets in a namespace once something there
 * needs it: one `ct state` rule registers its hooks. Loopback up, so that
 * datagrams to 127.0.0.1 and ::1 go out (and get tracked).
 */
inline void trackConnections()
{
	static bool done = false;
	if (done)
		return;
	sh("ip link set lo up");
	sh("nft -f - <<'EOF'\n"
	   "table inet nftpm_ct_test {\n"
	   "  chain out { type filter hook output priority 0; ct state new counter; }\n"
	   "}\n"
	   "EOF");
	done = true;
}

struct Entry {
	Family family;
	std::uint8_t proto;
	std::uint16_t sport;
	std::uint16_t dport;
	std::uint16_t zone;
};

inline int collectEntry(enum nf_conntrack_msg_type, struct nf_conntrack *ct, void *data)
{
	auto *out = static_cast<std::vector<Entry> *>(data);
	Entry e{};
	e.family = static_cast<Family>(nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO));
	e.proto = nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO);
	e.sport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC));
	e.dport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
	e.zone = nfct_attr_is_set(ct, ATTR_ZONE) > 0 ? nfct_get_attr_u16(ct, ATTR_ZONE) : 0;
	out->push_back(e);
	return NFCT_CB_CONTINUE;
}

/* Every entry of this namespace, both families. */
inline std::vector<Entry> listEntries()
{
	std::vector<Entry> out;
	nfct_handle *h = nfct_open(CONNTRACK, 0);
	REQUIRE(h);
	nfct_callback_register(h, NFCT_T_ALL, collectEntry, &out);
	std::uint32_t family = AF_UNSPEC;
	int r = nfct_query(h, NFCT_Q_DUMP, &family);
	int err = errno;
	nfct_close(h);
	INFO(std::strerror(err));
	REQUIRE(r == 0);
	return out;
}

inline unsigned count(Family family, std::uint8_t proto, std::uint16_t dport)
{
	unsigned n = 0;
	for (const Entry &e : listEntries())
		if (e.family == family && e.proto == proto && e.dport == dport)
			n++;
	return n;
}

/* Empties the table of this namespace (both families). */
inline void flushAll()
{
	nfct_handle *h = nfct_open(CONNTRACK, 0);
	REQUIRE(h);
	std::uint32_t family = AF_UNSPEC;
	int r = nfct_query(h, NFCT_Q_FLUSH, &family);
	nfct_close(h);
	REQUIRE(r == 0);
	REQUIRE(listEntries().empty());
}

/*
 * Puts an entry into the table through ctnetlink, as `conntrack -I` does:
 * no packet needed, so thousands are quick to make.
 */
class Creator
{
public:
	Creator() : h_(nfct_open(CONNTRACK, 0)) { REQUIRE(h_); }
	~Creator() { nfct_close(h_); }
	Creator(const Creator &) = delete;
	Creator &operator=(const Creator &) = delete;

	void add(std::uint8_t proto, const char *src, const char *dst, std::uint16_t sport, std::uint16_t dport,
		 std::uint16_t zone = 0)
	{
		auto s = IpAddress::parse(src);
		auto d = IpAddress::parse(dst);
		REQUIRE(s);
		REQUIRE(d);
		nf_conntrack *ct = nfct_new();
		REQUIRE(ct);
		const bool v4 = s->family() == Family::IPv4;
		const std::uint8_t l3 = static_cast<std::uint8_t>(s->family());
		nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, l3);
		nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, l3);
		nfct_set_attr(ct, v4 ? ATTR_ORIG_IPV4_SRC : ATTR_ORIG_IPV6_SRC, s->data());
		nfct_set_attr(ct, v4 ? ATTR_ORIG_IPV4_DST : ATTR_ORIG_IPV6_DST, d->data());
		nfct_set_attr(ct, v4 ? ATTR_REPL_IPV4_SRC : ATTR_REPL_IPV6_SRC, d->data());
		nfct_set_attr(ct, v4 ? ATTR_REPL_IPV4_DST : ATTR_REPL_IPV6_DST, s->data());
		nfct_set_attr_u8(ct, ATTR_ORIG_L4PROTO, proto);
		nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, proto);
		nfct_set_attr_u16(ct, ATTR_ORIG_PORT_SRC, htons(sport));
		nfct_set_attr_u16(ct, ATTR_ORIG_PORT_DST, htons(dport));
		nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(dport));
		nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(sport));
		if (proto == IPPROTO_TCP)
			nfct_set_attr_u8(ct, ATTR_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
		if (zone)
			nfct_set_attr_u16(ct, ATTR_ZONE, zone);
		nfct_set_attr_u32(ct, ATTR_TIMEOUT, 600);
		int r = nfct_query(h_, NFCT_Q_CREATE, ct);
		int err = errno;
		nfct_destroy(ct);
		INFO(src, " -> ", dst, ":", dport, ": ", std::strerror(err));
		REQUIRE(r == 0);
	}

private:
	nfct_handle *h_;
};

/* One datagram from a new socket (so a new source port): one new entry. */
inline void sendUdp(Family family, std::uint16_t port)
{
	int fd = socket(static_cast<int>(family), SOCK_DGRAM | SOCK_CLOEXEC, 0);
	REQUIRE(fd >= 0);
	sockaddr_storage ss{};
	socklen_t len;
	if (family == Family::IPv4) {
		auto *sin = reinterpret_cast<sockaddr_in *>(&ss);
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	} else {
		auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	}
	ssize_t n = sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr *>(&ss), len);
	int err = errno;
	close(fd);
	INFO(std::strerror(err));
	REQUIRE(n == 1);
}

/* A TCP connection to 127.0.0.1:port (listener and client both here). */
class TcpFlow
{
public:
	explicit TcpFlow(std::uint16_t port)
	{
		sockaddr_in sin{};
		sin.sin_family = AF_INET;
		sin.sin_port = htons(port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		auto *sa = reinterpret_cast<sockaddr *>(&sin);
		listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		REQUIRE(listener_ >= 0);
		int one = 1;
		setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		REQUIRE(bind(listener_, sa, sizeof(sin)) == 0);
		REQUIRE(listen(listener_, 1) == 0);
		client_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		REQUIRE(client_ >= 0);
		REQUIRE(connect(client_, sa, sizeof(sin)) == 0);
	}
	~TcpFlow()
	{
		close(client_);
		close(listener_);
	}
	TcpFlow(const TcpFlow &) = delete;
	TcpFlow &operator=(const TcpFlow &) = delete;

private:
	int listener_ = -1;
	int client_ = -1;
};

} /* namespace cttest */
