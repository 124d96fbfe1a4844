/* SPDX-License-Identifier: Apache-2.0 */
/* route_localnet: the sysctl path, its contents, and the route lookup messages. */
#include <doctest/doctest.h>

#include <array>
#include <cstring>

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

#include "sys/route_localnet.hpp"

using namespace nftpm;
using namespace nftpm::sys;

TEST_CASE("the sysctl path keeps the interface name as one component")
{
	CHECK(routeLocalnetPath("eth0") == "/proc/sys/net/ipv4/conf/eth0/route_localnet");
	/* A VLAN: sysctl(8) would read the dot as a separator, the path must not. */
	CHECK(routeLocalnetPath("eth0.100") == "/proc/sys/net/ipv4/conf/eth0.100/route_localnet");
	CHECK(routeLocalnetPath("123456789012345") == "/proc/sys/net/ipv4/conf/123456789012345/route_localnet");
}

TEST_CASE("names no interface can have give no path")
{
	for (std::string_view bad : { "", ".", "..", "a/b", "/", "1234567890123456", "../../../etc" })
		CHECK_MESSAGE(!routeLocalnetPath(bad), bad);
	CHECK(!routeLocalnetPath(std::string_view("a\0b", 3)));
}

TEST_CASE("sysctl contents")
{
	CHECK(sysctlIsOne("1\n"));
	CHECK(sysctlIsOne("1"));
	CHECK(!sysctlIsOne("0\n"));
	CHECK(!sysctlIsOne(""));
	CHECK(!sysctlIsOne("\n"));
	CHECK(!sysctlIsOne("11\n"));
	CHECK(!sysctlIsOne("-1\n"));
}

TEST_CASE("the route lookup asks for one IPv4 host route, no dump")
{
	std::array<char, rtnl::kRequestSize> buf{};
	auto dst = IpAddress::parse("10.88.0.7");
	REQUIRE(dst);
	nlmsghdr *nlh = rtnl::buildGetRoute(buf.data(), *dst, 5);
	REQUIRE(nlh);
	CHECK(nlh->nlmsg_len <= rtnl::kRequestSize);
	CHECK(nlh->nlmsg_type == RTM_GETROUTE);
	CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_ACK));
	CHECK(nlh->nlmsg_seq == 5);
	const auto *rtm = static_cast<const rtmsg *>(mnl_nlmsg_get_payload(nlh));
	CHECK(rtm->rtm_family == AF_INET);
	CHECK(rtm->rtm_dst_len == 32);

	const nlattr *rtaDst = nullptr;
	mnl_attr_parse(
		nlh, sizeof(rtmsg),
		[](const nlattr *a, void *data) {
			if (mnl_attr_get_type(a) == RTA_DST)
				*static_cast<const nlattr **>(data) = a;
			return MNL_CB_OK;
		},
		&rtaDst);
	REQUIRE(rtaDst);
	REQUIRE(mnl_attr_get_payload_len(rtaDst) == 4);
	CHECK(std::memcmp(mnl_attr_get_payload(rtaDst), dst->data(), 4) == 0);
}

namespace {

/* An RTM_NEWROUTE answer like the kernel's, with or without RTA_OIF. */
nlmsghdr *routeAnswer(char *buf, std::uint16_t type, std::optional<std::uint32_t> oif)
{
	nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	auto *rtm = static_cast<rtmsg *>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 32;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put_u32(nlh, RTA_TABLE, RT_TABLE_MAIN);
	const std::uint8_t dst[4] = { 10, 88, 0, 7 };
	mnl_attr_put(nlh, RTA_DST, sizeof(dst), dst);
	if (oif)
		mnl_attr_put_u32(nlh, RTA_OIF, *oif);
	mnl_attr_put_u32(nlh, RTA_UID, 0);
	return nlh;
}

} /* namespace */

TEST_CASE("the output interface is read from RTA_OIF")
{
	std::array<char, 512> buf{};
	CHECK(rtnl::outputInterface(routeAnswer(buf.data(), RTM_NEWROUTE, 7)) == 7u);
	CHECK(!rtnl::outputInterface(routeAnswer(buf.data(), RTM_NEWROUTE, std::nullopt)));
	CHECK(!rtnl::outputInterface(routeAnswer(buf.data(), RTM_DELROUTE, 7)));

	/* Truncated before the rtmsg: not an answer to read. */
	nlmsghdr *nlh = mnl_nlmsg_put_header(buf.data());
	nlh->nlmsg_type = RTM_NEWROUTE;
	CHECK(!rtnl::outputInterface(nlh));
}

TEST_CASE("route_localnet is IPv4 only")
{
	auto r = enableRouteLocalnet(*IpAddress::parse("fd00::2"));
	REQUIRE(!r);
	CHECK(r.error().find("fd00::2") != std::string::npos);
}
