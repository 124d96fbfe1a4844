/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The nft-portmap layout against the real kernel, in this executable's own
 * network namespace: what the kernel accepts, what it gives back (decoded
 * with the plugin's decoders), how `nft list` shows it, and whether packets
 * take the path the rules describe (TCP over the loopback, where the output
 * hook DNATs exactly as it does for a container's published port).
 */
#include <doctest/doctest.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netfilter/nf_tables.h>

#include "nft/batch.hpp"
#include "nft/expr.hpp"
#include "nft/query.hpp"
#include "nft/socket.hpp"
#include "portmap/ruleset.hpp"

using namespace nftpm;
using namespace nftpm::ruleset;

namespace {

nft::Socket openSocket()
{
	auto s = nft::Socket::open();
	REQUIRE_MESSAGE(s, (s ? "" : s.error().message()));
	return std::move(s).value();
}

void commitOk(nft::Socket &s, nft::Batch &b)
{
	auto r = b.commit(s);
	REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
}

/* Every test starts without our table (they share this executable's netns). */
void dropTable(nft::Socket &s)
{
	auto t = nft::getTable(s, kTableFamily, kTableName);
	if (!t)
		return;
	nft::Batch b;
	b.deleteTable(t->get(), "delete table");
	commitOk(s, b);
}

IpAddress ip(const char *s)
{
	return *IpAddress::parse(s);
}

PortMapping pm(std::uint16_t host, std::uint16_t cont, Protocol p = Protocol::TCP,
	       std::optional<IpAddress> hostIP = std::nullopt)
{
	return { host, cont, p, hostIP };
}

Conditions conds(Family f, const std::string &text)
{
	auto c = parseConditions(f, { text });
	REQUIRE_MESSAGE(c, (c ? "" : c.error()));
	return *c;
}

const Attachment kA{ "podman", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "eth0" };
const Attachment kB{ "podman", "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", "eth0" };

AttachmentPlan planA(Conditions c4 = {}, Conditions c6 = {})
{
	return makePlan(kA,
			{ pm(8080, 80), pm(5353, 53, Protocol::UDP, ip("192.0.2.1")),
			  pm(9000, 90, Protocol::SCTP, ip("2001:db8::1")) },
			IpPrefix::parse("10.88.0.2/16"), IpPrefix::parse("fd00::2/64"), true, false,
			std::move(c4), std::move(c6));
}

AttachmentPlan planB()
{
	return makePlan(kB, { pm(8081, 81), pm(8080, 80, Protocol::TCP, ip("192.0.2.1")) },
			IpPrefix::parse("10.88.0.3/16"), std::nullopt, true, true, {}, {});
}

/* What a fresh ADD of a plan writes (the engine does the same after its reads). */
void addAttachment(nft::Batch &b, const AttachmentPlan &p, const std::vector<MasqSet> &haveMasq = {})
{
	for (const auto &m : planMasqSets(p))
		if (std::find(haveMasq.begin(), haveMasq.end(), m) == haveMasq.end())
			addMasqSet(b, m);
	addRecord(b, p);
	addChain(b, p, false);
	addElements(b, planElements(p), attachmentComment(p.who), attachmentName(p.who));
}

/* The plan an attachment's record describes. */
AttachmentPlan readRecord(nft::Socket &s, const Attachment &a)
{
	auto o = nft::getObject(s, kTableFamily, kTableName, NFT_OBJECT_COUNTER, recordName(a, 0));
	REQUIRE_MESSAGE(o, (o ? "" : o.error().message()));
	CHECK(objectComment(o->get()) == attachmentComment(a));
	auto p = decodeRecord(a, { o->get() });
	REQUIRE_MESSAGE(p, (p ? "" : p.error()));
	return *p;
}

/* The DNAT rules of an attachment's chain (conditions only), without the closing accept. */
std::vector<DnatRule> readChain(nft::Socket &s, const Attachment &a)
{
	auto rules = nft::getRules(s, kTableFamily, kTableName, attachmentName(a));
	REQUIRE_MESSAGE(rules, (rules ? "" : rules.error().message()));
	REQUIRE_FALSE(rules->empty());
	CHECK(isAcceptRule(rules->back().get()));
	std::vector<DnatRule> out;
	for (std::size_t i = 0; i + 1 < rules->size(); i++) {
		auto d = decodeDnatRule((*rules)[i].get());
		REQUIRE_MESSAGE(d, (d ? "" : d.error()));
		out.push_back(*d);
	}
	return out;
}

/* The element of one key, or nullptr. */
nft::SetElemPtr readElement(nft::Socket &s, const ElementKey &k)
{
	auto elems = nft::getElements(s, kTableFamily, kTableName, k.setName(), { k.key });
	REQUIRE_MESSAGE(elems, (elems ? "" : elems.error().message()));
	REQUIRE(elems->size() == 1);
	return std::move((*elems)[0]);
}

/* Packets counted by the element of a data-map key. */
std::uint64_t elementPackets(nft::Socket &s, const ElementKey &k)
{
	auto e = readElement(s, k);
	REQUIRE_MESSAGE(e, k.text);
	auto c = elementCounter(e.get());
	REQUIRE(c);
	return c->first;
}

/* The packets counted by the counter of each rule of a chain. */
std::vector<std::uint64_t> counters(nft::Socket &s, const std::string &chain)
{
	auto rules = nft::getRules(s, kTableFamily, kTableName, chain);
	REQUIRE_MESSAGE(rules, (rules ? "" : rules.error().message()));
	std::vector<std::uint64_t> out;
	for (const auto &r : *rules) {
		std::uint64_t packets = 0;
		nftnl_expr_iter *it = nftnl_expr_iter_create(r.get());
		for (nftnl_expr *e = nftnl_expr_iter_next(it); e; e = nftnl_expr_iter_next(it))
			if (std::strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter") == 0)
				packets = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		nftnl_expr_iter_destroy(it);
		out.push_back(packets);
	}
	return out;
}

std::string run(const std::string &cmd)
{
	std::string out;
	FILE *p = popen((cmd + " 2>&1").c_str(), "r");
	if (!p)
		return out;
	char buf[4096];
	std::size_t n;
	while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
		out.append(buf, n);
	pclose(p);
	return out;
}

bool haveCommand(const char *name)
{
	return std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0;
}

/* ---- Sockets for the packet path ---- */

struct Fd {
	int fd = -1;
	explicit Fd(int f) : fd(f) {}
	Fd(const Fd &) = delete;
	Fd &operator=(const Fd &) = delete;
	~Fd()
	{
		if (fd >= 0)
			close(fd);
	}
};

sockaddr_storage sockaddrOf(const IpAddress &a, std::uint16_t port, socklen_t &len)
{
	sockaddr_storage ss{};
	if (a.family() == Family::IPv4) {
		auto *sin = reinterpret_cast<sockaddr_in *>(&ss);
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		std::memcpy(&sin->sin_addr, a.data(), 4);
		len = sizeof(sockaddr_in);
	} else {
		auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		std::memcpy(&sin6->sin6_addr, a.data(), 16);
		len = sizeof(sockaddr_in6);
	}
	return ss;
}

std::string addrText(const sockaddr_storage &ss)
{
	char buf[INET6_ADDRSTRLEN] = "?";
	if (ss.ss_family == AF_INET) {
		const auto *sin = reinterpret_cast<const sockaddr_in *>(&ss);
		inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
		return std::string(buf) + ":" + std::to_string(ntohs(sin->sin_port));
	}
	const auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
	inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
	return "[" + std::string(buf) + "]:" + std::to_string(ntohs(sin6->sin6_port));
}

/* A TCP listener on addr:port. */
int listenOn(const IpAddress &addr, std::uint16_t port)
{
	int fd = socket(addr.family() == Family::IPv4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(fd >= 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	socklen_t len;
	auto ss = sockaddrOf(addr, port, len);
	REQUIRE_MESSAGE(bind(fd, reinterpret_cast<sockaddr *>(&ss), len) == 0, std::strerror(errno));
	REQUIRE(listen(fd, 8) == 0);
	return fd;
}

struct Connection {
	int error = 0;            /* 0, or the errno of connect() */
	std::string peerSeenByServer; /* the client address the listener accepted */
};

/*
 * Connects from src to dst:port; on success, accepts on the listener and
 * reports the peer address it sees (masquerade changes it).
 */
Connection connectFrom(const IpAddress &src, const IpAddress &dst, std::uint16_t port, int listener)
{
	Connection out;
	Fd c(socket(src.family() == Family::IPv4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
	REQUIRE(c.fd >= 0);
	socklen_t len;
	auto from = sockaddrOf(src, 0, len);
	REQUIRE_MESSAGE(bind(c.fd, reinterpret_cast<sockaddr *>(&from), len) == 0, std::strerror(errno));
	auto to = sockaddrOf(dst, port, len);
	timeval tv{ 2, 0 };
	setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c.fd, reinterpret_cast<sockaddr *>(&to), len) != 0) {
		out.error = errno;
		return out;
	}
	pollfd p{ listener, POLLIN, 0 };
	REQUIRE(poll(&p, 1, 2000) == 1);
	sockaddr_storage peer{};
	socklen_t plen = sizeof(peer);
	Fd a(accept4(listener, reinterpret_cast<sockaddr *>(&peer), &plen, SOCK_CLOEXEC));
	REQUIRE(a.fd >= 0);
	out.peerSeenByServer = addrText(peer);
	return out;
}

void sh(const std::string &cmd)
{
	INFO(cmd);
	REQUIRE(std::system(cmd.c_str()) == 0);
}

/* A fresh table with the skeleton and one attachment, as a first ADD writes it. */
void publishFresh(nft::Socket &s, const AttachmentPlan &p)
{
	dropTable(s);
	nft::Batch batch;
	addSkeleton(batch, {});
	addAttachment(batch, p);
	commitOk(s, batch);
}

/*
 * The packet-path tests put every address on the loopback of this
 * namespace: locally generated connections go through the output hook,
 * where the same dispatch DNATs them. False (and a message) without ip.
 */
bool loopbackAddresses(std::initializer_list<const char *> addresses)
{
	if (!haveCommand("ip")) {
		MESSAGE("iproute2 is not installed; not checking the packet path");
		return false;
	}
	sh("ip link set lo up");
	for (const char *a : addresses)
		sh(std::string("ip addr add ") + a + " dev lo" + (std::strchr(a, ':') ? " nodad" : "") +
		   " 2>/dev/null || true");
	return true;
}

} /* namespace */

TEST_CASE("skeleton and two attachments: accepted, and read back exactly")
{
	auto s = openSocket();

	const AttachmentPlan a = planA(conds(Family::IPv4, "ip saddr != { 10.99.0.0/16, 192.0.2.7 } iifname != { \"veth*\", lo }"),
				       conds(Family::IPv6, "ip6 saddr != fd00:99::/32"));
	const AttachmentPlan b = planB();
	publishFresh(s, a);
	{
		nft::Batch batch;
		addAttachment(batch, b, planMasqSets(a));
		commitOk(s, batch);
	}

	/* The records say what each attachment published. */
	auto ra = readRecord(s, kA);
	CHECK(ra.rules == a.rules);
	CHECK(ra.guardedV4);
	CHECK(ra.guardedV6);
	CHECK(planKeys(ra) == planKeys(a));
	auto rb = readRecord(s, kB);
	CHECK(rb.rules == b.rules);
	CHECK(rb.masqAll);
	CHECK(planKeys(rb) == planKeys(b));

	/* A has conditions: its chain holds its DNAT rules; B has none and no chain. */
	CHECK(readChain(s, kA) == a.rules);
	CHECK(nft::getChain(s, kTableFamily, kTableName, attachmentName(kB)).error().errnum == ENOENT);

	/* Every element names its owner and maps to what the plan says. */
	for (const auto *p : { &a, &b }) {
		for (const auto &want : planElements(*p)) {
			auto e = readElement(s, want.key);
			REQUIRE_MESSAGE(e, want.key.text);
			CHECK(elementComment(e.get()) == attachmentComment(p->who));
			CHECK(elementDataText(want.key.map, e.get()) == want.dataText);
			CHECK(elementKey(want.key.map, want.key.sourceLength, e.get()) == want.key);
		}
	}

	/* The static chains: eight lookups in dispatch, one masquerade rule per masq set. */
	auto dispatch = nft::getRules(s, kTableFamily, kTableName, "dispatch");
	REQUIRE(dispatch);
	CHECK(dispatch->size() == 8);
	for (const auto &r : *dispatch)
		CHECK_FALSE(decodeDnatRule(r.get()));
	auto post = nft::getRules(s, kTableFamily, kTableName, "postrouting");
	REQUIRE(post);
	std::vector<MasqSet> masq;
	for (const auto &r : *post) {
		auto m = decodeMasqRule(r.get());
		REQUIRE_MESSAGE(m, (m ? "" : m.error()));
		masq.push_back(*m);
	}
	CHECK(masq == std::vector<MasqSet>{ { Family::IPv4, 16 }, { Family::IPv4, 8 }, { Family::IPv6, 64 },
					    { Family::IPv4, 0 } });

	/* A second skeleton is refused: the table is created exclusively. */
	nft::Batch again;
	addSkeleton(again, {});
	auto r = again.commit(s);
	REQUIRE_FALSE(r);
	CHECK(r.error().errnum == EEXIST);
}

TEST_CASE("nft list shows the table readably")
{
	if (!haveCommand("nft")) {
		MESSAGE("nft is not installed; not checking its listing");
		return;
	}
	auto s = openSocket();
	publishFresh(s, planA(conds(Family::IPv4, "ip saddr != { 10.99.0.0/16, 192.0.2.7 } iifname != { \"veth*\", lo }")));

	std::string out = run("nft list table inet nft-portmap");
	MESSAGE(out);
	const std::string name = attachmentName(kA);
	const std::string comment = attachmentComment(kA);
	for (const std::string &want : {
		     std::string("comment \"nft-portmap: "),
		     std::string("counter ") + name + " {\n\t\tcomment \"" + comment + "\"",
		     std::string("map ports4 {\n\t\ttype inet_proto . inet_service : ipv4_addr . inet_service\n\t\tcounter"),
		     std::string("map ports6 {\n\t\ttype inet_proto . inet_service : ipv6_addr . inet_service\n\t\tcounter"),
		     std::string("map addrports4 {\n\t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service"),
		     std::string("map addrports6 {\n\t\ttype ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service"),
		     std::string("map guard4 {\n\t\ttype inet_proto . inet_service : verdict"),
		     std::string("set masq4-16 {\n\t\ttype ipv4_addr . ipv4_addr"),
		     std::string("tcp . 8080 counter packets 0 bytes 0 comment \"") + comment + "\" : 10.88.0.2 . 80",
		     std::string("tcp . 8080 counter packets 0 bytes 0 comment \"") + comment + "\" : fd00::2 . 80",
		     std::string("tcp . 8080 comment \"") + comment + "\" : jump " + name,
		     std::string("192.0.2.1 . udp . 5353 counter packets 0 bytes 0 comment \""),
		     std::string("2001:db8::1 . sctp . 9000 counter packets 0 bytes 0 comment \""),
		     std::string("10.88.0.2 . 10.88.0.0 comment \"") + comment + "\"",
		     std::string("10.88.0.2 . 127.0.0.0 comment \""),
		     std::string("fd00::2 . fd00:: comment \""),
		     std::string("ip daddr . meta l4proto . th dport vmap @addrguard4"),
		     std::string("dnat ip to ip daddr . meta l4proto . th dport map @addrports4"),
		     std::string("meta nfproto ipv4 meta l4proto . th dport vmap @guard4"),
		     std::string("meta nfproto ipv4 dnat ip to meta l4proto . th dport map @ports4"),
		     std::string("dnat ip6 to ip6 daddr . meta l4proto . th dport map @addrports6"),
		     std::string("meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @ports6"),
		     std::string("type nat hook prerouting priority dstnat; policy accept;"),
		     std::string("fib daddr type local jump dispatch"),
		     std::string("type nat hook postrouting priority srcnat; policy accept;"),
		     std::string("ct status dnat ip daddr . ip saddr & 255.255.0.0 @masq4-16 counter packets 0 bytes 0 masquerade"),
		     std::string("ct status dnat ip daddr . ip saddr & 255.0.0.0 @masq4-8 counter packets 0 bytes 0 masquerade"),
		     std::string("ct status dnat ip6 daddr . ip6 saddr & ffff:ffff:ffff:ffff:: @masq6-64 counter packets 0 bytes 0 masquerade"),
		     std::string("chain ") + name + " {\n\t\tcomment \"" + comment + "\"",
		     std::string("tcp dport 8080 ip saddr != { 10.99.0.0/16, 192.0.2.7 } iifname != { \"lo\", \"veth*\" } counter packets 0 bytes 0 dnat ip to 10.88.0.2:80"),
		     std::string("ip daddr 192.0.2.1 udp dport 5353 "),
		     std::string("\t\taccept\n"),
	     })
		CHECK_MESSAGE(out.find(want) != std::string::npos, want);
	/* nft prints what it cannot type as raw payload or hex. */
	CHECK(out.find("@nh,") == std::string::npos);
	CHECK(out.find("@th,") == std::string::npos);
	CHECK(out.find("0x") == std::string::npos);
}

TEST_CASE("a key that is already published is refused with EEXIST and nothing changes")
{
	auto s = openSocket();
	publishFresh(s, planA());
	auto gen = nft::getGeneration(s);
	REQUIRE(gen);

	/* C wants tcp . 8080 on every IPv4 address, which A holds. */
	Attachment c{ "other-net", "c3", "eth1" };
	auto plan = makePlan(c, { pm(7000, 70), pm(8080, 80) }, IpPrefix::parse("10.89.0.5/16"),
			     std::nullopt, false, false, {}, {});
	nft::Batch batch;
	addAttachment(batch, plan);
	auto r = batch.commit(s);
	REQUIRE_FALSE(r);
	CHECK(r.error().errnum == EEXIST);
	CHECK(r.error().operation == "add element inet nft-portmap ports4 { tcp . 8080 : 10.89.0.5 . 80 }");

	/* Atomic: neither C's record nor its other key exist, A's element is untouched. */
	auto gen2 = nft::getGeneration(s);
	REQUIRE(gen2);
	CHECK(*gen2 == *gen);
	CHECK(nft::getObject(s, kTableFamily, kTableName, NFT_OBJECT_COUNTER, recordName(c, 0)).error().errnum == ENOENT);
	auto keys = planKeys(plan);
	REQUIRE(keys.size() == 2);
	CHECK_FALSE(readElement(s, keys[0])); /* tcp . 7000 */
	auto held = readElement(s, keys[1]);
	REQUIRE(held);
	CHECK(elementComment(held.get()) == attachmentComment(kA));
	CHECK(elementDataText(MapId::Ports4, held.get()) == "10.88.0.2 . 80");
}

TEST_CASE("deleting removes elements, record and chain; a chain a guard still jumps to is busy")
{
	auto s = openSocket();
	const AttachmentPlan a = planA(conds(Family::IPv4, "ip saddr 10.0.0.0/8"));
	publishFresh(s, a);

	/* The chain is referenced by A's guard elements: deleting it alone is refused. */
	{
		nft::Batch busy;
		deleteChain(busy, attachmentName(kA));
		auto r = busy.commit(s);
		REQUIRE_FALSE(r);
		CHECK(r.error().errnum == EBUSY);
	}

	/* DEL: elements first, then the chain and the record, in one batch. */
	{
		nft::Batch batch;
		deleteElements(batch, planKeys(a));
		deleteChain(batch, attachmentName(kA));
		deleteRecord(batch, kA, 1);
		commitOk(s, batch);
	}
	CHECK(nft::getChain(s, kTableFamily, kTableName, attachmentName(kA)).error().errnum == ENOENT);
	CHECK(nft::getObject(s, kTableFamily, kTableName, NFT_OBJECT_COUNTER, recordName(kA, 0)).error().errnum == ENOENT);
	std::vector<std::string> sets = { "ports4", "ports6", "addrports4", "addrports6", "guard4", "guard6",
					  "addrguard4", "addrguard6" };
	for (const auto &m : planMasqSets(a))
		sets.push_back(masqSetName(m.family, m.sourceLength));
	for (const auto &set : sets) {
		auto all = nft::dumpElements(s, kTableFamily, kTableName, set);
		REQUIRE(all);
		CHECK_MESSAGE(all->empty(), set);
	}
	auto objs = nft::dumpObjects(s, kTableFamily, kTableName, NFT_OBJECT_COUNTER);
	REQUIRE(objs);
	CHECK(objs->empty());
}

TEST_CASE("packet path without conditions: the data maps DNAT, their elements count")
{
	if (!loopbackAddresses({ "192.0.2.1/32", "192.0.2.2/32", "10.88.0.2/32", "10.77.0.5/32", "2001:db8::1/128",
				 "fd00::2/128" }))
		return;
	auto s = openSocket();

	auto plan = makePlan(kA, { pm(8080, 80), pm(8443, 443, Protocol::TCP, ip("192.0.2.2")) },
			     IpPrefix::parse("10.88.0.2/16"), IpPrefix::parse("fd00::2/64"), true, false, {}, {});
	publishFresh(s, plan);
	const auto elems = planElements(plan);
	Fd l80(listenOn(ip("10.88.0.2"), 80));
	Fd l443(listenOn(ip("10.88.0.2"), 443));
	Fd l6(listenOn(ip("fd00::2"), 80));

	auto c = connectFrom(ip("10.77.0.5"), ip("192.0.2.1"), 8080, l80.fd);
	REQUIRE_MESSAGE(c.error == 0, std::strerror(c.error));
	CHECK(c.peerSeenByServer.rfind("10.77.0.5:", 0) == 0);
	CHECK(elementPackets(s, elems[0].key) == 1);

	/* The hostIP key only answers on its address. */
	auto h = connectFrom(ip("10.77.0.5"), ip("192.0.2.2"), 8443, l443.fd);
	REQUIRE_MESSAGE(h.error == 0, std::strerror(h.error));
	auto wrong = connectFrom(ip("10.77.0.5"), ip("192.0.2.1"), 8443, l443.fd);
	CHECK(wrong.error == ECONNREFUSED);

	auto v6 = connectFrom(ip("2001:db8::1"), ip("2001:db8::1"), 8080, l6.fd);
	REQUIRE_MESSAGE(v6.error == 0, std::strerror(v6.error));
	CHECK(v6.peerSeenByServer.rfind("[2001:db8::1]:", 0) == 0);
}

TEST_CASE("packet path: dispatch, DNAT with interval-set conditions, hairpin and localhost masquerade")
{
	/*
	 * 192.0.2.1 is a host address, 10.88.0.2 the "container", 10.88.0.9
	 * a sibling in its subnet, 10.77.0.5 an outside client, 10.99.0.5 a
	 * client the conditions exclude.
	 */
	if (!loopbackAddresses({ "192.0.2.1/32", "10.88.0.2/32", "10.88.0.9/32", "10.77.0.5/32", "10.99.0.5/32",
				 "2001:db8::1/128", "fd00::2/128", "fd00:99::5/128" }))
		return;
	auto s = openSocket();

	auto plan = makePlan(kA, { pm(8080, 80), pm(9000, 90, Protocol::TCP, ip("2001:db8::1")) },
			     IpPrefix::parse("10.88.0.2/16"), IpPrefix::parse("fd00::2/64"), true, false,
			     conds(Family::IPv4, "ip saddr != { 10.99.0.0/16, 192.0.2.7 } iifname != { \"veth*\", eth0 }"),
			     conds(Family::IPv6, "ip6 saddr != { fd00:99::/32 }"));
	publishFresh(s, plan);

	Fd l4(listenOn(ip("10.88.0.2"), 80));
	Fd l6(listenOn(ip("fd00::2"), 90));
	/* postrouting: masq4-16 (hairpin), masq4-8 (localhost), masq6-64 */
	auto masqCounters = [&s] { return counters(s, "postrouting"); };

	SUBCASE("an outside client reaches the container through the host port, unmasqueraded")
	{
		auto c = connectFrom(ip("10.77.0.5"), ip("192.0.2.1"), 8080, l4.fd);
		REQUIRE_MESSAGE(c.error == 0, std::strerror(c.error));
		CHECK(c.peerSeenByServer.rfind("10.77.0.5:", 0) == 0);
		CHECK(counters(s, attachmentName(kA))[0] == 1);
		CHECK(masqCounters() == std::vector<std::uint64_t>{ 0, 0, 0 });
	}
	SUBCASE("a client in the excluded interval is not DNATed (nothing listens on 8080)")
	{
		auto c = connectFrom(ip("10.99.0.5"), ip("192.0.2.1"), 8080, l4.fd);
		CHECK(c.error == ECONNREFUSED);
		CHECK(counters(s, attachmentName(kA))[0] == 0);
	}
	SUBCASE("a sibling in the container subnet is masqueraded (hairpin)")
	{
		auto c = connectFrom(ip("10.88.0.9"), ip("192.0.2.1"), 8080, l4.fd);
		REQUIRE_MESSAGE(c.error == 0, std::strerror(c.error));
		CHECK(c.peerSeenByServer.rfind("10.88.0.9:", 0) != 0);
		auto m = masqCounters();
		REQUIRE(m.size() == 3);
		CHECK(m[0] == 1);
		CHECK(m[1] == 0);
	}
	SUBCASE("127.0.0.1:hostPort is DNATed and masqueraded")
	{
		auto c = connectFrom(ip("127.0.0.1"), ip("127.0.0.1"), 8080, l4.fd);
		REQUIRE_MESSAGE(c.error == 0, std::strerror(c.error));
		CHECK(c.peerSeenByServer.rfind("127.0.0.1:", 0) != 0);
		auto m = masqCounters();
		REQUIRE(m.size() == 3);
		CHECK(m[1] == 1);
	}
	SUBCASE("IPv6 with a hostIP: addrports6, dnat ip6; the excluded prefix is not DNATed")
	{
		auto c = connectFrom(ip("2001:db8::1"), ip("2001:db8::1"), 9000, l6.fd);
		REQUIRE_MESSAGE(c.error == 0, std::strerror(c.error));
		auto excluded = connectFrom(ip("fd00:99::5"), ip("2001:db8::1"), 9000, l6.fd);
		CHECK(excluded.error == ECONNREFUSED);
		/* Another host address is not the hostIP: no DNAT. */
		auto other = connectFrom(ip("2001:db8::1"), ip("fd00:99::5"), 9000, l6.fd);
		CHECK(other.error == ECONNREFUSED);
	}
}

TEST_CASE("interval sets of names and of addresses look up as nft would: real packets")
{
	if (!loopbackAddresses({ "192.0.2.1/32", "10.88.0.2/32", "10.0.255.255/32", "10.1.0.0/32", "11.0.0.0/32",
				 "172.16.0.1/32", "255.255.255.254/32" }))
		return;
	auto s = openSocket();

	/* Only sources in { 10.0.0.0/16, 172.16.0.0/12, 255.255.255.0/24 } are published. */
	auto plan = makePlan(kA, { pm(8080, 80) }, IpPrefix::parse("10.88.0.2/16"), std::nullopt, false,
			     false, conds(Family::IPv4, "ip saddr { 10.0.0.0/16, 172.16.0.0/12, 255.255.255.0/24 }"), {});
	publishFresh(s, plan);
	Fd l4(listenOn(ip("10.88.0.2"), 80));

	struct Probe {
		const char *src;
		bool dnat;
	};
	/* Both edges of every interval, and the addresses just outside. */
	for (const Probe &p : { Probe{ "10.0.255.255", true }, Probe{ "10.1.0.0", false },
				Probe{ "172.16.0.1", true }, Probe{ "11.0.0.0", false },
				Probe{ "255.255.255.254", true }, Probe{ "192.0.2.1", false } }) {
		CAPTURE(p.src);
		auto c = connectFrom(ip(p.src), ip("192.0.2.1"), 8080, l4.fd);
		CHECK(c.error == (p.dnat ? 0 : ECONNREFUSED));
	}
}
