/* SPDX-License-Identifier: Apache-2.0 */
/* makePlan (which mapping applies to which family) and the map keys it publishes. */
#include <doctest/doctest.h>

#include "portmap/ruleset.hpp"

using namespace nftpm;
using namespace nftpm::ruleset;

namespace {

IpAddress ip(const char *s)
{
	return *IpAddress::parse(s);
}

IpPrefix prefix(const char *s)
{
	return *IpPrefix::parse(s);
}

PortMapping pm(std::uint16_t host, std::uint16_t cont, Protocol p = Protocol::TCP,
	       std::optional<IpAddress> hostIP = std::nullopt)
{
	return { host, cont, p, hostIP };
}

const Attachment kWho{ "net", "c1", "eth0" };

using Bytes = std::vector<std::uint8_t>;

} /* namespace */

TEST_CASE("a mapping without hostIP applies to every family the container has")
{
	auto p = makePlan(kWho, { pm(8080, 80) }, prefix("10.88.0.2/16"), prefix("fd00::2/64"), true,
			  false, {}, {});
	REQUIRE(p.rules.size() == 2);
	CHECK(p.rules[0] == DnatRule{ pm(8080, 80), ip("10.88.0.2") });
	CHECK(p.rules[1] == DnatRule{ pm(8080, 80), ip("fd00::2") });
	CHECK(p.rules[0].family() == Family::IPv4);
	CHECK(p.rules[1].family() == Family::IPv6);

	auto only4 = makePlan(kWho, { pm(8080, 80) }, prefix("10.88.0.2/16"), std::nullopt, true, false,
			      {}, {});
	CHECK(only4.rules.size() == 1);
}

TEST_CASE("a hostIP of one family applies to that family only; 0.0.0.0 and :: mean any")
{
	auto p = makePlan(kWho,
			  { pm(1, 10, Protocol::TCP, ip("192.0.2.1")), pm(2, 20, Protocol::UDP, ip("2001:db8::1")),
			    pm(3, 30, Protocol::SCTP, ip("0.0.0.0")), pm(4, 40, Protocol::TCP, ip("::")) },
			  prefix("10.88.0.2/16"), prefix("fd00::2/64"), true, false, {}, {});
	REQUIRE(p.rules.size() == 6);
	CHECK(p.rules[0] == DnatRule{ pm(1, 10, Protocol::TCP, ip("192.0.2.1")), ip("10.88.0.2") });
	CHECK(p.rules[1] == DnatRule{ pm(2, 20, Protocol::UDP, ip("2001:db8::1")), ip("fd00::2") });
	CHECK(p.rules[2] == DnatRule{ pm(3, 30, Protocol::SCTP), ip("10.88.0.2") });
	CHECK(p.rules[3] == DnatRule{ pm(3, 30, Protocol::SCTP), ip("fd00::2") });
	CHECK(p.rules[4] == DnatRule{ pm(4, 40), ip("10.88.0.2") });
	CHECK(p.rules[5] == DnatRule{ pm(4, 40), ip("fd00::2") });

	/* A v6 hostIP on a v4-only container publishes nothing. */
	auto none = makePlan(kWho, { pm(2, 20, Protocol::TCP, ip("2001:db8::1")) }, prefix("10.88.0.2/16"),
			     std::nullopt, true, false, {}, {});
	CHECK(none.rules.empty());
	CHECK_FALSE(none.hasMasquerade());
	CHECK(planKeys(none).empty());
}

TEST_CASE("identical mappings give one rule")
{
	auto p = makePlan(kWho, { pm(8080, 80), pm(8080, 80) }, prefix("10.88.0.2/16"), std::nullopt,
			  true, false, {}, {});
	CHECK(p.rules.size() == 1);
}

TEST_CASE("port keys: fields padded to 4 bytes, port in network byte order")
{
	ElementKey any4 = portKey({ pm(8080, 80), ip("10.88.0.2") });
	CHECK(any4.map == MapId::Ports4);
	CHECK(any4.key == Bytes{ 6, 0, 0, 0, 0x1f, 0x90, 0, 0 });
	CHECK(any4.text == "tcp . 8080");

	ElementKey any6 = portKey({ pm(53, 53, Protocol::UDP), ip("fd00::2") });
	CHECK(any6.map == MapId::Ports6);
	CHECK(any6.key == Bytes{ 17, 0, 0, 0, 0, 53, 0, 0 });
	CHECK(any6.text == "udp . 53");

	ElementKey addr4 = portKey({ pm(65535, 1, Protocol::SCTP, ip("192.0.2.1")), ip("10.88.0.2") });
	CHECK(addr4.map == MapId::AddrPorts4);
	CHECK(addr4.key == Bytes{ 192, 0, 2, 1, 132, 0, 0, 0, 0xff, 0xff, 0, 0 });
	CHECK(addr4.text == "192.0.2.1 . sctp . 65535");

	ElementKey addr6 = portKey({ pm(443, 8443, Protocol::TCP, ip("2001:db8::1")), ip("fd00::2") });
	CHECK(addr6.map == MapId::AddrPorts6);
	REQUIRE(addr6.key.size() == 24);
	CHECK(Bytes(addr6.key.begin(), addr6.key.begin() + 16) ==
	      Bytes{ 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 });
	CHECK(Bytes(addr6.key.begin() + 16, addr6.key.end()) == Bytes{ 6, 0, 0, 0, 0x01, 0xbb, 0, 0 });
	CHECK(addr6.text == "2001:db8::1 . tcp . 443");

	ElementKey m4 = masqKey(ip("10.88.0.2"));
	CHECK(m4.map == MapId::Masq4);
	CHECK(m4.key == Bytes{ 10, 88, 0, 2 });
	CHECK(m4.text == "10.88.0.2");
	ElementKey m6 = masqKey(ip("fd00::2"));
	CHECK(m6.map == MapId::Masq6);
	CHECK(m6.key.size() == 16);
	CHECK(m6.text == "fd00::2");
}

TEST_CASE("keyText renders what the kernel stores, and bytes of a wrong length as hex")
{
	CHECK(keyText(MapId::Ports4, Bytes{ 6, 0, 0, 0, 0, 80, 0, 0 }) == "tcp . 80");
	CHECK(keyText(MapId::Ports4, Bytes{ 1, 0, 0, 0, 0, 80, 0, 0 }) == "1 . 80");
	CHECK(keyText(MapId::Masq4, Bytes{ 1, 2, 3 }) == "0x010203");
	CHECK(keyText(MapId::AddrPorts4, Bytes{ 127, 0, 0, 1, 17, 0, 0, 0, 0x13, 0x88, 0, 0 }) ==
	      "127.0.0.1 . udp . 5000");
}

TEST_CASE("planKeys: port keys in rule order without duplicates, then masquerade keys")
{
	auto p = makePlan(kWho,
			  { pm(8080, 80), pm(8080, 81, Protocol::TCP, ip("0.0.0.0")),
			    pm(9090, 90, Protocol::UDP, ip("192.0.2.1")) },
			  prefix("10.88.0.2/16"), prefix("fd00::2/64"), true, false, {}, {});
	auto keys = planKeys(p);
	std::vector<std::string> texts;
	std::vector<MapId> maps;
	for (const auto &k : keys) {
		texts.push_back(k.text);
		maps.push_back(k.map);
	}
	CHECK(texts == std::vector<std::string>{ "tcp . 8080", "tcp . 8080", "192.0.2.1 . udp . 9090",
						  "10.88.0.2", "fd00::2" });
	CHECK(maps == std::vector<MapId>{ MapId::Ports4, MapId::Ports6, MapId::AddrPorts4, MapId::Masq4,
					  MapId::Masq6 });
}

TEST_CASE("masquerade follows snat and the families that have rules")
{
	auto v4only = makePlan(kWho, { pm(1, 1, Protocol::TCP, ip("192.0.2.1")) }, prefix("10.88.0.2/16"),
			       prefix("fd00::2/64"), true, false, {}, {});
	CHECK(v4only.hasMasquerade());
	auto keys = planKeys(v4only);
	REQUIRE(keys.size() == 2);
	CHECK(keys[1] == masqKey(ip("10.88.0.2")));

	auto nosnat = makePlan(kWho, { pm(1, 1) }, prefix("10.88.0.2/16"), prefix("fd00::2/64"), false,
			       false, {}, {});
	CHECK_FALSE(nosnat.hasMasquerade());
	CHECK(planKeys(nosnat).size() == 2);
}
