/* SPDX-License-Identifier: Apache-2.0 */
/* The ctnetlink requests of the UDP flush, built and read back without a kernel. */
#include <doctest/doctest.h>

#include <array>
#include <cstring>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>

#include "sys/conntrack.hpp"
#include "sys/conntrack_msg.hpp"

using namespace nftpm;
using namespace nftpm::sys::ctmsg;

namespace {

CtPtr udpEntry(Family family, const char *src, const char *dst, std::uint16_t sport, std::uint16_t dport,
	       std::uint8_t proto = IPPROTO_UDP)
{
	CtPtr ct(nfct_new());
	REQUIRE(ct);
	auto s = IpAddress::parse(src);
	auto d = IpAddress::parse(dst);
	REQUIRE(s);
	REQUIRE(d);
	nfct_set_attr_u8(ct.get(), ATTR_ORIG_L3PROTO, static_cast<std::uint8_t>(family));
	if (family == Family::IPv4) {
		nfct_set_attr(ct.get(), ATTR_ORIG_IPV4_SRC, s->data());
		nfct_set_attr(ct.get(), ATTR_ORIG_IPV4_DST, d->data());
	} else {
		nfct_set_attr(ct.get(), ATTR_ORIG_IPV6_SRC, s->data());
		nfct_set_attr(ct.get(), ATTR_ORIG_IPV6_DST, d->data());
	}
	nfct_set_attr_u8(ct.get(), ATTR_ORIG_L4PROTO, proto);
	nfct_set_attr_u16(ct.get(), ATTR_ORIG_PORT_SRC, htons(sport));
	nfct_set_attr_u16(ct.get(), ATTR_ORIG_PORT_DST, htons(dport));
	return ct;
}

const nfgenmsg *nfg(const nlmsghdr *nlh)
{
	return static_cast<const nfgenmsg *>(mnl_nlmsg_get_payload(nlh));
}

/* The top-level attribute of that type, or nullptr. */
const nlattr *topAttr(const nlmsghdr *nlh, std::uint16_t type)
{
	struct Find {
		std::uint16_t type;
		const nlattr *found;
	} find{ type, nullptr };
	mnl_attr_parse(
		nlh, sizeof(nfgenmsg),
		[](const nlattr *a, void *data) {
			auto *f = static_cast<Find *>(data);
			if (mnl_attr_get_type(a) == f->type)
				f->found = a;
			return MNL_CB_OK;
		},
		&find);
	return find.found;
}

std::uint32_t filterFlags(const nlmsghdr *nlh)
{
	const nlattr *filter = topAttr(nlh, CTA_FILTER);
	REQUIRE(filter);
	std::uint32_t flags = 0;
	mnl_attr_parse_nested(
		filter,
		[](const nlattr *a, void *data) {
			if (mnl_attr_get_type(a) == CTA_FILTER_ORIG_FLAGS)
				*static_cast<std::uint32_t *>(data) = mnl_attr_get_u32(a);
			return MNL_CB_OK;
		},
		&flags);
	return flags;
}

constexpr std::uint32_t kProtoNum = 1u << 3;
constexpr std::uint32_t kProtoDstPort = 1u << 5;

} /* namespace */

TEST_CASE("ports are sorted and duplicates dropped")
{
	CHECK(normalizePorts({ 53, 5353, 53, 1, 65535, 1 }) == std::vector<std::uint16_t>{ 1, 53, 5353, 65535 });
	CHECK(normalizePorts({}).empty());
}

TEST_CASE("nf_conntrack_count contents")
{
	CHECK(parseCount("0\n") == 0ul);
	CHECK(parseCount("262144\n") == 262144ul);
	CHECK(parseCount("7") == 7ul);
	CHECK(!parseCount(""));
	CHECK(!parseCount("\n"));
	CHECK(!parseCount("-1\n"));
	CHECK(!parseCount("12 \n"));
	CHECK(!parseCount("x"));
}

TEST_CASE("an empty port list deletes nothing and needs no kernel")
{
	/* Unprivileged and without any conntrack: must still succeed. */
	auto n = sys::flushUdpByDestinationPort(Family::IPv4, {});
	REQUIRE(n);
	CHECK(*n == 0);
}

TEST_CASE("only UDP of the family with a listed ORIGINAL destination port is stale")
{
	const std::vector<std::uint16_t> ports{ 53, 8080 };
	CHECK(isStaleUdp(udpEntry(Family::IPv4, "10.0.0.1", "10.0.0.2", 40000, 53).get(), Family::IPv4, ports));
	CHECK(isStaleUdp(udpEntry(Family::IPv4, "10.0.0.1", "192.0.2.9", 1, 8080).get(), Family::IPv4, ports));
	/* Another port; the port only as source (a reply tuple's view). */
	CHECK(!isStaleUdp(udpEntry(Family::IPv4, "10.0.0.1", "10.0.0.2", 40000, 54).get(), Family::IPv4, ports));
	CHECK(!isStaleUdp(udpEntry(Family::IPv4, "10.0.0.1", "10.0.0.2", 53, 40000).get(), Family::IPv4, ports));
	/* TCP, SCTP on the port. */
	CHECK(!isStaleUdp(udpEntry(Family::IPv4, "10.0.0.1", "10.0.0.2", 40000, 53, IPPROTO_TCP).get(),
			  Family::IPv4, ports));
	CHECK(!isStaleUdp(udpEntry(Family::IPv4, "10.0.0.1", "10.0.0.2", 40000, 53, IPPROTO_SCTP).get(),
			  Family::IPv4, ports));
	/* The other family. */
	auto v6 = udpEntry(Family::IPv6, "fd00::1", "fd00::2", 40000, 53);
	CHECK(!isStaleUdp(v6.get(), Family::IPv4, ports));
	CHECK(isStaleUdp(v6.get(), Family::IPv6, ports));
	/* An object without the attributes. */
	CtPtr empty(nfct_new());
	CHECK(!isStaleUdp(empty.get(), Family::IPv4, ports));
	CHECK(!isStaleUdp(v6.get(), Family::IPv6, {}));
}

TEST_CASE("dump request with the kernel filter: one port")
{
	std::array<char, kRequestSize> buf{};
	const std::vector<std::uint16_t> ports{ 5353 };
	nlmsghdr *nlh = buildUdpDump(buf.data(), Family::IPv6, ports, DumpFilter::Kernel, 42);
	REQUIRE(nlh);
	CHECK(nlh->nlmsg_len <= kRequestSize);
	CHECK(nlh->nlmsg_type == ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET));
	CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
	CHECK(nlh->nlmsg_seq == 42);
	CHECK(nfg(nlh)->nfgen_family == AF_INET6);
	CHECK(filterFlags(nlh) == (kProtoNum | kProtoDstPort));

	/* The tuple the filter compares with, as the library reads it back. */
	CtPtr ct(nfct_new());
	REQUIRE(nfct_nlmsg_parse(nlh, ct.get()) == 0);
	CHECK(nfct_get_attr_u8(ct.get(), ATTR_ORIG_L3PROTO) == AF_INET6);
	CHECK(nfct_get_attr_u8(ct.get(), ATTR_ORIG_L4PROTO) == IPPROTO_UDP);
	CHECK(ntohs(nfct_get_attr_u16(ct.get(), ATTR_ORIG_PORT_DST)) == 5353);
}

TEST_CASE("dump request with the kernel filter: several ports narrow to UDP only")
{
	std::array<char, kRequestSize> buf{};
	const std::vector<std::uint16_t> ports{ 53, 5353 };
	nlmsghdr *nlh = buildUdpDump(buf.data(), Family::IPv4, ports, DumpFilter::Kernel, 7);
	REQUIRE(nlh);
	CHECK(nfg(nlh)->nfgen_family == AF_INET);
	CHECK(filterFlags(nlh) == kProtoNum);
	CtPtr ct(nfct_new());
	REQUIRE(nfct_nlmsg_parse(nlh, ct.get()) == 0);
	CHECK(nfct_get_attr_u8(ct.get(), ATTR_ORIG_L4PROTO) == IPPROTO_UDP);
	CHECK(nfct_get_attr_u16(ct.get(), ATTR_ORIG_PORT_DST) == 0);
}

TEST_CASE("dump request without the kernel filter carries only the family")
{
	std::array<char, kRequestSize> buf{};
	const std::vector<std::uint16_t> ports{ 53 };
	nlmsghdr *nlh = buildUdpDump(buf.data(), Family::IPv4, ports, DumpFilter::Callback, 7);
	REQUIRE(nlh);
	CHECK(nlh->nlmsg_len == mnl_nlmsg_size(sizeof(nfgenmsg)));
	CHECK(nfg(nlh)->nfgen_family == AF_INET);
	CHECK(!topAttr(nlh, CTA_FILTER));
}

TEST_CASE("delete request names exactly the entry seen: tuple, zone and id")
{
	auto seen = udpEntry(Family::IPv6, "fd00::1", "fd00::2", 40000, 53);
	nfct_set_attr_u16(seen.get(), ATTR_ZONE, 5);
	nfct_set_attr_u32(seen.get(), ATTR_ID, 0x01020304);
	/* What a dump also fills in, and a delete must not send. */
	nfct_set_attr_u32(seen.get(), ATTR_TIMEOUT, 30);
	nfct_set_attr_u32(seen.get(), ATTR_MARK, 9);
	nfct_set_attr_u32(seen.get(), ATTR_STATUS, IPS_CONFIRMED);

	std::array<char, kRequestSize> buf{};
	nlmsghdr *nlh = buildDelete(buf.data(), seen.get(), 99);
	REQUIRE(nlh);
	CHECK(nlh->nlmsg_len <= kRequestSize);
	CHECK(nlh->nlmsg_type == ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE));
	CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_ACK));
	CHECK(nlh->nlmsg_seq == 99);
	CHECK(nfg(nlh)->nfgen_family == AF_INET6);

	/* The id travels in network byte order. */
	const nlattr *id = topAttr(nlh, CTA_ID);
	REQUIRE(id);
	CHECK(mnl_attr_get_u32(id) == htonl(0x01020304));
	CHECK(!topAttr(nlh, CTA_TIMEOUT));
	CHECK(!topAttr(nlh, CTA_MARK));
	CHECK(!topAttr(nlh, CTA_STATUS));

	CtPtr back(nfct_new());
	REQUIRE(nfct_nlmsg_parse(nlh, back.get()) == 0);
	CHECK(nfct_cmp(back.get(), seen.get(), NFCT_CMP_ORIG) == 1);
	CHECK(nfct_get_attr_u16(back.get(), ATTR_ZONE) == 5);
	CHECK(nfct_get_attr_u32(back.get(), ATTR_ID) == 0x01020304);
}

TEST_CASE("delete request of an entry without zone or id carries neither")
{
	auto seen = udpEntry(Family::IPv4, "10.0.0.1", "10.0.0.2", 40000, 53);
	std::array<char, kRequestSize> buf{};
	nlmsghdr *nlh = buildDelete(buf.data(), seen.get(), 1);
	REQUIRE(nlh);
	CHECK(nfg(nlh)->nfgen_family == AF_INET);
	CHECK(!topAttr(nlh, CTA_ID));
	CHECK(!topAttr(nlh, CTA_ZONE));
	CHECK(topAttr(nlh, CTA_TUPLE_ORIG));

	CtPtr empty(nfct_new());
	CHECK(!buildDelete(buf.data(), empty.get(), 1));
}
