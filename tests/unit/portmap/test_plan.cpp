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
	CHECK(planMasqSets(none).empty());
	CHECK(planKeys(none).empty());
}

TEST_CASE("identical mappings give one rule")
{
	auto p = makePlan(kWho, { pm(8080, 80), pm(8080, 80) }, prefix("10.88.0.2/16"), std::nullopt,
			  true, false, {}, {});
	CHECK(p.rules.size() == 1);
}

TEST_CASE("port elements: keys padded to 4 bytes per field, data is container address . port")
{
	PlannedElement any4 = portElement({ pm(8080, 80), ip("10.88.0.2") });
	CHECK(any4.key.map == MapId::Ports4);
	CHECK(any4.key.key == Bytes{ 6, 0, 0, 0, 0x1f, 0x90, 0, 0 });
	CHECK(any4.key.text == "tcp . 8080");
	CHECK(any4.key.setName() == "ports4");
	CHECK(any4.data == Bytes{ 10, 88, 0, 2, 0, 80, 0, 0 });
	CHECK(any4.dataText == "10.88.0.2 . 80");

	PlannedElement any6 = portElement({ pm(53, 53, Protocol::UDP), ip("fd00::2") });
	CHECK(any6.key.map == MapId::Ports6);
	CHECK(any6.key.key == Bytes{ 17, 0, 0, 0, 0, 53, 0, 0 });
	CHECK(any6.key.text == "udp . 53");
	REQUIRE(any6.data.size() == 20);
	CHECK(Bytes(any6.data.begin() + 16, any6.data.end()) == Bytes{ 0, 53, 0, 0 });
	CHECK(any6.dataText == "fd00::2 . 53");

	PlannedElement addr4 = portElement({ pm(65535, 1, Protocol::SCTP, ip("192.0.2.1")), ip("10.88.0.2") });
	CHECK(addr4.key.map == MapId::AddrPorts4);
	CHECK(addr4.key.key == Bytes{ 192, 0, 2, 1, 132, 0, 0, 0, 0xff, 0xff, 0, 0 });
	CHECK(addr4.key.text == "192.0.2.1 . sctp . 65535");

	PlannedElement addr6 = portElement({ pm(443, 8443, Protocol::TCP, ip("2001:db8::1")), ip("fd00::2") });
	CHECK(addr6.key.map == MapId::AddrPorts6);
	REQUIRE(addr6.key.key.size() == 24);
	CHECK(Bytes(addr6.key.key.begin(), addr6.key.key.begin() + 16) ==
	      Bytes{ 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 });
	CHECK(Bytes(addr6.key.key.begin() + 16, addr6.key.key.end()) == Bytes{ 6, 0, 0, 0, 0x01, 0xbb, 0, 0 });
	CHECK(addr6.key.text == "2001:db8::1 . tcp . 443");
	CHECK(addr6.dataText == "fd00::2 . 8443");
}

TEST_CASE("keyText renders what the kernel stores, and bytes of a wrong length as hex")
{
	CHECK(keyText(MapId::Ports4, Bytes{ 6, 0, 0, 0, 0, 80, 0, 0 }) == "tcp . 80");
	CHECK(keyText(MapId::Ports4, Bytes{ 1, 0, 0, 0, 0, 80, 0, 0 }) == "1 . 80");
	CHECK(keyText(MapId::Masq4, Bytes{ 1, 2, 3 }) == "0x010203");
	CHECK(keyText(MapId::Masq4, Bytes{ 10, 88, 0, 2, 10, 88, 0, 0 }) == "10.88.0.2 . 10.88.0.0");
	CHECK(keyText(MapId::AddrPorts4, Bytes{ 127, 0, 0, 1, 17, 0, 0, 0, 0x13, 0x88, 0, 0 }) ==
	      "127.0.0.1 . udp . 5000");
}

TEST_CASE("planElements: port keys in rule order without duplicates, then masquerade pairs")
{
	auto p = makePlan(kWho,
			  { pm(8080, 80), pm(8080, 81, Protocol::TCP, ip("0.0.0.0")),
			    pm(9090, 90, Protocol::UDP, ip("192.0.2.1")) },
			  prefix("10.88.0.2/16"), prefix("fd00::2/64"), true, false, {}, {});
	auto elems = planElements(p);
	std::vector<std::string> texts, sets, data;
	for (const auto &e : elems) {
		texts.push_back(e.key.text);
		sets.push_back(e.key.setName());
		data.push_back(e.dataText);
	}
	/* The first rule for a key wins: tcp . 8080 goes to port 80, not 81. */
	CHECK(texts == std::vector<std::string>{ "tcp . 8080", "tcp . 8080", "192.0.2.1 . udp . 9090",
						  "10.88.0.2 . 10.88.0.0", "10.88.0.2 . 127.0.0.0",
						  "fd00::2 . fd00::" });
	CHECK(sets == std::vector<std::string>{ "ports4", "ports6", "addrports4", "masq4-16", "masq4-8",
						 "masq6-64" });
	CHECK(data == std::vector<std::string>{ "10.88.0.2 . 80", "fd00::2 . 80", "10.88.0.2 . 90", "", "", "" });
	CHECK(planKeys(p).size() == elems.size());
	CHECK(planMasqSets(p) == std::vector<MasqSet>{ { Family::IPv4, 16 }, { Family::IPv4, 8 }, { Family::IPv6, 64 } });
}

TEST_CASE("masquerade follows snat, masqAll and the families that have rules")
{
	auto v4only = makePlan(kWho, { pm(1, 1, Protocol::TCP, ip("192.0.2.1")) }, prefix("10.88.0.2/16"),
			       prefix("fd00::2/64"), true, false, {}, {});
	CHECK(planMasqSets(v4only) == std::vector<MasqSet>{ { Family::IPv4, 16 }, { Family::IPv4, 8 } });
	CHECK(planKeys(v4only).size() == 3);

	auto nosnat = makePlan(kWho, { pm(1, 1) }, prefix("10.88.0.2/16"), prefix("fd00::2/64"), false,
			       false, {}, {});
	CHECK(planMasqSets(nosnat).empty());
	CHECK(planKeys(nosnat).size() == 2);

	/* masqAll: every source, the prefix of length 0, instead of subnet and localhost. */
	auto all = makePlan(kWho, { pm(1, 1) }, prefix("10.88.0.2/16"), prefix("fd00::2/64"), true, true, {}, {});
	CHECK(planMasqSets(all) == std::vector<MasqSet>{ { Family::IPv4, 0 }, { Family::IPv6, 0 } });
	auto keys = planKeys(all);
	REQUIRE(keys.size() == 4);
	CHECK(keys[2].text == "10.88.0.2 . 0.0.0.0");
	CHECK(keys[2].setName() == "masq4-0");
	CHECK(keys[3].text == "fd00::2 . ::");
}

TEST_CASE("conditions guard their family: a guard element and a chain rule per DNAT of that family")
{
	Condition c;
	c.field = Condition::Field::IpSaddr;
	c.prefixes = { prefix("192.0.2.0/24") };
	auto p = makePlan(kWho, { pm(8080, 80) }, prefix("10.88.0.2/16"), prefix("fd00::2/64"), false, false,
			  { c }, {});
	CHECK(p.guardedV4);
	CHECK_FALSE(p.guardedV6);
	CHECK(p.hasChain());
	REQUIRE(p.chainRules().size() == 1);
	CHECK(p.chainRules()[0].family() == Family::IPv4);
	std::vector<std::string> sets;
	for (const auto &e : planElements(p))
		sets.push_back(e.key.setName() + " " + e.dataText);
	CHECK(sets == std::vector<std::string>{ "ports4 10.88.0.2 . 80", "ports6 fd00::2 . 80",
						 "guard4 jump " + attachmentName(kWho) });
}

TEST_CASE("masq set names parse back, and nothing else does")
{
	CHECK(masqSetName(Family::IPv4, 16) == "masq4-16");
	CHECK(parseMasqSetName("masq4-16") == MasqSet{ Family::IPv4, 16 });
	CHECK(parseMasqSetName("masq6-128") == MasqSet{ Family::IPv6, 128 });
	CHECK(parseMasqSetName("masq4-0") == MasqSet{ Family::IPv4, 0 });
	for (const char *bad : { "masq4-33", "masq4-016", "masq4-", "masq4-x", "masq6-129", "ports4", "masq5-1" })
		CHECK_FALSE(parseMasqSetName(bad));
}
