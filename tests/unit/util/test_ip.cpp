/* SPDX-License-Identifier: Apache-2.0 */
#include <doctest/doctest.h>

#include "util/ip.hpp"

using namespace nftpm;

TEST_CASE("IPv4 and IPv6 addresses parse and print back")
{
	auto a = IpAddress::parse("10.88.0.2");
	REQUIRE(a);
	CHECK(a->family() == Family::IPv4);
	CHECK(a->toString() == "10.88.0.2");
	auto b = IpAddress::parse("FD00:0::2");
	REQUIRE(b);
	CHECK(b->family() == Family::IPv6);
	CHECK(b->toString() == "fd00::2");
	CHECK(IpAddress::parse("0.0.0.0")->isUnspecified());
	CHECK(IpAddress::parse("::")->isUnspecified());
	CHECK(IpAddress::parse("::1")->isLoopback());
	CHECK(IpAddress::parse("127.1.2.3")->isLoopback());
}

TEST_CASE("invalid addresses are refused")
{
	for (const char *bad : { "", "10.88.0", "10.88.0.256", "fd00::2%eth0", "[::1]", "host", " 10.0.0.1",
				 "10.0.0.1/24" })
		CHECK_MESSAGE(!IpAddress::parse(bad), bad);
}

TEST_CASE("prefixes")
{
	auto p = IpPrefix::parse("10.88.7.2/16");
	REQUIRE(p);
	CHECK(p->network().toString() == "10.88.0.0");
	CHECK(p->lastAddress().toString() == "10.88.255.255");
	CHECK(p->contains(*IpAddress::parse("10.88.200.1")));
	CHECK(!p->contains(*IpAddress::parse("10.89.0.1")));
	CHECK(!p->contains(*IpAddress::parse("fd00::1")));
	auto q = IpPrefix::parse("fd00:1:0:1::5/63");
	REQUIRE(q);
	CHECK(q->network().toString() == "fd00:1::");
	CHECK(IpPrefix::parse("10.0.0.1")->length() == 32);
	CHECK(!IpPrefix::parse("10.0.0.1/33"));
	CHECK(!IpPrefix::parse("10.0.0.1/"));
	CHECK(!IpPrefix::parse("10.0.0.1/2x"));
	CHECK(!IpPrefix::parse("fd00::1/129"));
}
