/* SPDX-License-Identifier: Apache-2.0 */
/* conditionsV4/V6: the accepted subset, its errors, and the expressions and sets it compiles to. */
#include <doctest/doctest.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <libnftnl/udata.h>

#include "nft/batch.hpp"
#include "nft/expr.hpp"
#include "parsed_batch.hpp"
#include "portmap/conditions.hpp"

using namespace nftpm;
using namespace nftpm::test;
using Field = Condition::Field;
using Bytes = std::vector<std::uint8_t>;

namespace {

Conditions parseOk(Family f, const std::vector<std::string> &tokens)
{
	auto c = parseConditions(f, tokens);
	if (!c)
		FAIL_CHECK("unexpected error: " << c.error());
	return c ? *c : Conditions{};
}

std::string parseErr(Family f, const std::vector<std::string> &tokens)
{
	auto c = parseConditions(f, tokens);
	if (c)
		FAIL_CHECK("accepted: " << conditionsText(*c));
	return c ? std::string() : c.error();
}

IpPrefix prefix(const char *s)
{
	return *IpPrefix::parse(s);
}

} /* namespace */

TEST_CASE("the reference's token style and free text mean the same")
{
	auto a = parseOk(Family::IPv4, { "ip", "daddr", "!=", "{ 127.0.0.0/8, 198.19.254.254 }" });
	auto b = parseOk(Family::IPv4, { "ip daddr != {127.0.0.0/8,198.19.254.254}" });
	CHECK(a == b);
	REQUIRE(a.size() == 1);
	CHECK(a[0].field == Field::IpDaddr);
	CHECK(a[0].negated);
	CHECK(a[0].set);
	CHECK(a[0].prefixes == std::vector<IpPrefix>{ prefix("127.0.0.0/8"), prefix("198.19.254.254") });
	CHECK(conditionsText(a) == "ip daddr != { 127.0.0.0/8, 198.19.254.254 }");
}

TEST_CASE("several matches, operators, quoted and wildcard names")
{
	auto c = parseOk(Family::IPv4, { "ip", "saddr", "10.0.0.1", "ip saddr == 10.1.2.3/16", "iifname",
					 "\"eth0\"", "meta iifname != { \"veth*\", lo }" });
	REQUIRE(c.size() == 4);
	CHECK(c[0] == Condition{ Field::IpSaddr, false, false, { prefix("10.0.0.1/32") }, {} });
	/* Host bits are cleared: only the prefix takes part. */
	CHECK(c[1] == Condition{ Field::IpSaddr, false, false, { prefix("10.1.0.0/16") }, {} });
	CHECK(c[2] == Condition{ Field::Iifname, false, false, {}, { "eth0" } });
	CHECK(c[3] == Condition{ Field::Iifname, true, true, {}, { "veth*", "lo" } });
	CHECK(conditionsText(c) ==
	      "ip saddr 10.0.0.1 ip saddr 10.1.0.0/16 iifname \"eth0\" iifname != { \"veth*\", \"lo\" }");

	auto v6 = parseOk(Family::IPv6, { "ip6 saddr != fd00::/8", "ip6", "daddr", "{ ::1, 2001:db8::/32 }" });
	REQUIRE(v6.size() == 2);
	CHECK(v6[0] == Condition{ Field::Ip6Saddr, true, false, { prefix("fd00::/8") }, {} });
	CHECK(v6[1].prefixes == std::vector<IpPrefix>{ prefix("::1"), prefix("2001:db8::/32") });

	CHECK(parseOk(Family::IPv4, {}).empty());
	CHECK(parseOk(Family::IPv4, { "" }).empty());
	CHECK(parseOk(Family::IPv4, { "  " }).empty());
}

TEST_CASE("errors name the offending token")
{
	struct Case {
		Family family;
		std::vector<std::string> tokens;
		std::string error;
	};
	const std::vector<Case> cases = {
		{ Family::IPv4, { "tcp", "dport", "80" },
		  "\"tcp\" is not a supported match (expected ip saddr, ip daddr or iifname)" },
		{ Family::IPv6, { "-s", "1.2.3.4" },
		  "\"-s\" is not a supported match (expected ip6 saddr, ip6 daddr or iifname)" },
		{ Family::IPv4, { "ip", "protocol", "tcp" }, "\"ip\" must be followed by saddr or daddr, not \"protocol\"" },
		{ Family::IPv4, { "ip" }, "\"ip\" must be followed by saddr or daddr" },
		{ Family::IPv4, { "ip6", "saddr", "::1" },
		  "\"ip6 saddr\" cannot be used in conditionsV4 (it applies to IPv6 packets only)" },
		{ Family::IPv6, { "ip", "daddr", "1.2.3.4" },
		  "\"ip daddr\" cannot be used in conditionsV6 (it applies to IPv4 packets only)" },
		{ Family::IPv4, { "ip", "saddr" }, "\"ip saddr\" needs a value" },
		{ Family::IPv4, { "ip", "saddr", "!=" }, "\"ip saddr !=\" needs a value" },
		{ Family::IPv4, { "ip", "saddr", "10.0.0.300" },
		  "\"10.0.0.300\" after \"ip saddr\" is not an IPv4 address or prefix" },
		{ Family::IPv4, { "ip", "saddr", "10.0.0.0/33" },
		  "\"10.0.0.0/33\" after \"ip saddr\" is not an IPv4 address or prefix" },
		{ Family::IPv4, { "ip", "saddr", "fd00::1" }, "\"fd00::1\" is an IPv6 address, \"ip saddr\" needs IPv4" },
		{ Family::IPv6, { "ip6", "daddr", "{ ::1, 10.0.0.1 }" },
		  "\"10.0.0.1\" is an IPv4 address, \"ip6 daddr\" needs IPv6" },
		{ Family::IPv4, { "ip", "saddr", "\"10.0.0.1\"" },
		  "\"10.0.0.1\" after \"ip saddr\" must be an address without quotes" },
		{ Family::IPv4, { "ip", "saddr", "{", "10.0.0.1" }, "\"{\" after \"ip saddr\" has no matching \"}\"" },
		{ Family::IPv4, { "ip saddr { }" }, "empty set \"{ }\" after \"ip saddr\"" },
		{ Family::IPv4, { "ip saddr { 10.0.0.1 10.0.0.2 }" },
		  "missing \",\" before \"10.0.0.2\" in the set after \"ip saddr\"" },
		{ Family::IPv4, { "ip saddr { , 10.0.0.2 }" }, "unexpected \",\" in the set after \"ip saddr\"" },
		{ Family::IPv4, { "ip saddr }" }, "unexpected \"}\" where a value of \"ip saddr\" was expected" },
		{ Family::IPv4, { "ip saddr != == 10.0.0.1" },
		  "unexpected \"==\" where a value of \"ip saddr\" was expected" },
		{ Family::IPv4, { "ip saddr 10.0.0.1 }" }, "\"}\" is not a supported match (expected ip saddr, ip daddr or iifname)" },
		{ Family::IPv4, { "oifname", "eth0" },
		  "\"oifname\" is not supported: the conditions guard DNAT in prerouting, where no output "
		  "interface is known yet, so it could never match" },
		{ Family::IPv4, { "iifname", "averylonginterfacename" },
		  "interface name \"averylonginterfacename\" is longer than 15 characters" },
		{ Family::IPv4, { "iifname", "\"\"" }, "empty interface name \"\"" },
		{ Family::IPv4, { "iifname", "*" }, "interface name \"*\" would match every interface" },
		{ Family::IPv4, { "iifname", "e*th" }, "interface name \"e*th\": '*' is only allowed at the end (a prefix match)" },
		{ Family::IPv4, { "iifname", "a/b" }, "interface name \"a/b\" contains '/'" },
		{ Family::IPv4, { "iifname", "\"eth0" }, "unterminated quote in \"eth0" },
	};
	for (const auto &c : cases) {
		std::string joined;
		for (const auto &t : c.tokens)
			joined += "[" + t + "]";
		CAPTURE(joined);
		CHECK(parseErr(c.family, c.tokens) == c.error);
	}
}

namespace {

nft::RulePtr ruleIn(const char *table)
{
	nft::RulePtr r(nftnl_rule_alloc());
	nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table);
	nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, "c");
	return r;
}

struct ElementView {
	Bytes key;
	bool end;
	bool open;
};

std::vector<ElementView> elementViews(nftnl_set *s)
{
	std::vector<ElementView> out;
	for (nftnl_set_elem *e : elementsOf(s)) {
		ElementView v{ elementKey(e), false, false };
		if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS))
			v.end = nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END;
		if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_USERDATA)) {
			std::uint32_t len = 0;
			const void *d = nftnl_set_elem_get(e, NFTNL_SET_ELEM_USERDATA, &len);
			/* One TLV: NFTNL_UDATA_SET_ELEM_FLAGS = INTERVAL_OPEN */
			const auto *b = static_cast<const std::uint8_t *>(d);
			v.open = len == 6 && b[0] == NFTNL_UDATA_SET_ELEM_FLAGS && b[1] == 4 &&
				 b[2] == NFTNL_SET_ELEM_F_INTERVAL_OPEN;
		}
		out.push_back(v);
	}
	return out;
}

Bytes name16(const char *s)
{
	Bytes b(16, 0);
	std::memcpy(b.data(), s, std::strlen(s));
	return b;
}

/* Compiles c into a rule of a batch; returns the ops and the rule. */
struct Compiled {
	std::vector<Op> ops;
	nft::RulePtr rule;
};

Compiled compile(Family f, const std::vector<std::string> &tokens)
{
	nft::Batch b;
	Compiled out;
	out.rule = ruleIn("t");
	addConditionExprs(b, out.rule.get(), parseOk(f, tokens));
	bool ok = false;
	out.ops = parseBatch(b, ok);
	CHECK(ok);
	return out;
}

} /* namespace */

TEST_CASE("single values compile to compares, prefixes to mask and compare")
{
	auto c = compile(Family::IPv4, { "ip saddr 192.0.2.1 ip daddr != 10.1.0.0/16 iifname eth0 iifname != veth*" });
	CHECK(c.ops.empty());
	nft::expr::Reader rd(c.rule.get());
	CHECK(rd.payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1));
	CHECK(rd.cmp(NFT_REG_1, NFT_CMP_EQ) == Bytes{ 192, 0, 2, 1 });
	CHECK(rd.payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG_1));
	CHECK(rd.bitwise(NFT_REG_1) == Bytes{ 255, 255, 0, 0 });
	CHECK(rd.cmp(NFT_REG_1, NFT_CMP_NEQ) == Bytes{ 10, 1, 0, 0 });
	CHECK(rd.meta(NFT_META_IIFNAME, NFT_REG_1));
	CHECK(rd.cmp(NFT_REG_1, NFT_CMP_EQ) == name16("eth0"));
	CHECK(rd.meta(NFT_META_IIFNAME, NFT_REG_1));
	CHECK(rd.cmp(NFT_REG_1, NFT_CMP_NEQ) == Bytes{ 'v', 'e', 't', 'h' });
	CHECK(rd.done());

	nft::expr::Reader again(c.rule.get());
	CHECK(skipConditionExprs(again) == 4);
	CHECK(again.done());

	auto v6 = compile(Family::IPv6, { "ip6 daddr fd00::/8" });
	nft::expr::Reader rd6(v6.rule.get());
	CHECK(rd6.payload(NFT_PAYLOAD_NETWORK_HEADER, 24, 16, NFT_REG_1));
	Bytes mask(16, 0);
	mask[0] = 0xff;
	CHECK(rd6.bitwise(NFT_REG_1) == mask);
	Bytes net(16, 0);
	net[0] = 0xfd;
	CHECK(rd6.cmp(NFT_REG_1, NFT_CMP_EQ) == net);
	CHECK(rd6.done());
}

TEST_CASE("a set of addresses is an anonymous constant hash set, looked up by id")
{
	auto c = compile(Family::IPv4, { "ip saddr != { 192.0.2.1, 192.0.2.9, 192.0.2.1 }" });
	REQUIRE(c.ops.size() == 2);
	CHECK(c.ops[0].type == NFT_MSG_NEWSET);
	nftnl_set *s = c.ops[0].set.get();
	CHECK(str(nftnl_set_get_str(s, NFTNL_SET_NAME)) == "__set%d");
	CHECK(str(nftnl_set_get_str(s, NFTNL_SET_TABLE)) == "t");
	CHECK(nftnl_set_get_u32(s, NFTNL_SET_FLAGS) == (NFT_SET_ANONYMOUS | NFT_SET_CONSTANT));
	CHECK(nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE) == 7);
	CHECK(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) == 4);
	CHECK(nftnl_set_get_u32(s, NFTNL_SET_DESC_SIZE) == 2);
	const std::uint32_t id = nftnl_set_get_u32(s, NFTNL_SET_ID);

	CHECK(c.ops[1].type == NFT_MSG_NEWSETELEM);
	CHECK((c.ops[1].flags & NLM_F_EXCL) == 0);
	CHECK(nftnl_set_get_u32(c.ops[1].set.get(), NFTNL_SET_ID) == id);
	auto elems = elementViews(c.ops[1].set.get());
	REQUIRE(elems.size() == 2);
	CHECK(elems[0].key == Bytes{ 192, 0, 2, 1 });
	CHECK(elems[1].key == Bytes{ 192, 0, 2, 9 });
	CHECK_FALSE(elems[0].end);

	nft::expr::Reader rd(c.rule.get());
	CHECK(rd.payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1));
	auto l = rd.lookup(NFT_REG_1);
	REQUIRE(l);
	CHECK(l->set == "__set%d");
	CHECK(l->invert);
	CHECK_FALSE(l->dreg);
	CHECK(rd.done());
	const nftnl_expr *e = nullptr;
	nftnl_expr_iter *it = nftnl_expr_iter_create(c.rule.get());
	for (nftnl_expr *x = nftnl_expr_iter_next(it); x; x = nftnl_expr_iter_next(it))
		e = x;
	nftnl_expr_iter_destroy(it);
	REQUIRE(e);
	CHECK(nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_SET_ID) == id);
}

TEST_CASE("prefixes make an interval set: merged ranges, end elements, open last range")
{
	auto c = compile(Family::IPv4, { "ip saddr { 10.1.0.0/16, 192.0.2.1, 10.0.0.0/8, 255.255.255.0/24 }" });
	REQUIRE(c.ops.size() == 2);
	CHECK(nftnl_set_get_u32(c.ops[0].set.get(), NFTNL_SET_FLAGS) ==
	      (NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_INTERVAL));
	auto e = elementViews(c.ops[1].set.get());
	REQUIRE(e.size() == 6);
	/* As nft encodes it: an end at zero, then [start, end) per merged range. */
	CHECK(e[0].key == Bytes{ 0, 0, 0, 0 });
	CHECK(e[0].end);
	CHECK(e[1].key == Bytes{ 10, 0, 0, 0 });
	CHECK_FALSE(e[1].end);
	CHECK(e[2].key == Bytes{ 11, 0, 0, 0 });
	CHECK(e[2].end);
	CHECK(e[3].key == Bytes{ 192, 0, 2, 1 });
	CHECK(e[4].key == Bytes{ 192, 0, 2, 2 });
	CHECK(e[4].end);
	CHECK(e[5].key == Bytes{ 255, 255, 255, 0 });
	CHECK_FALSE(e[5].end);
	CHECK(e[5].open);
	CHECK_FALSE(e[3].open);
}

TEST_CASE("adjacent ranges merge; a range from zero needs no leading end")
{
	auto c = compile(Family::IPv4, { "ip daddr { 10.0.1.0/24, 0.0.0.0/8, 10.0.0.0/24 }" });
	auto e = elementViews(c.ops[1].set.get());
	REQUIRE(e.size() == 4);
	CHECK(e[0].key == Bytes{ 0, 0, 0, 0 });
	CHECK_FALSE(e[0].end);
	CHECK(e[1].key == Bytes{ 1, 0, 0, 0 });
	CHECK(e[1].end);
	CHECK(e[2].key == Bytes{ 10, 0, 0, 0 });
	CHECK(e[3].key == Bytes{ 10, 0, 2, 0 });
	CHECK(e[3].end);

	auto all = compile(Family::IPv6, { "ip6 saddr { ::/0 }" });
	auto a = elementViews(all.ops[1].set.get());
	REQUIRE(a.size() == 1);
	CHECK(a[0].key == Bytes(16, 0));
	CHECK(a[0].open);
	CHECK(nftnl_set_get_u32(all.ops[0].set.get(), NFTNL_SET_KEY_TYPE) == 8);
	CHECK(nftnl_set_get_u32(all.ops[0].set.get(), NFTNL_SET_KEY_LEN) == 16);
}

TEST_CASE("interface names with a wildcard make an interval set of 16-byte names")
{
	auto c = compile(Family::IPv4, { "iifname { \"eth*\", lo }" });
	REQUIRE(c.ops.size() == 2);
	nftnl_set *s = c.ops[0].set.get();
	CHECK(nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE) == 41); /* nft's ifname */
	CHECK(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) == 16);
	CHECK((nftnl_set_get_u32(s, NFTNL_SET_FLAGS) & NFT_SET_INTERVAL) != 0);
	auto e = elementViews(c.ops[1].set.get());
	REQUIRE(e.size() == 5);
	CHECK(e[0].key == Bytes(16, 0));
	CHECK(e[0].end);
	CHECK(e[1].key == name16("eth"));
	CHECK(e[2].key == name16("eti"));
	CHECK(e[2].end);
	CHECK(e[3].key == name16("lo"));
	Bytes loEnd = name16("lo");
	loEnd[15] = 1;
	CHECK(e[4].key == loEnd);
	CHECK(e[4].end);

	/* Without a wildcard it is a plain hash set of names. */
	auto plain = compile(Family::IPv4, { "iifname { eth0, eth1 }" });
	CHECK(nftnl_set_get_u32(plain.ops[0].set.get(), NFTNL_SET_FLAGS) ==
	      (NFT_SET_ANONYMOUS | NFT_SET_CONSTANT));
	auto p = elementViews(plain.ops[1].set.get());
	REQUIRE(p.size() == 2);
	CHECK(p[1].key == name16("eth1"));
}

TEST_CASE("each set of a rule gets its own id")
{
	auto c = compile(Family::IPv4, { "ip saddr { 10.0.0.1, 10.0.0.2 } iifname { a, b }" });
	REQUIRE(c.ops.size() == 4);
	CHECK(nftnl_set_get_u32(c.ops[0].set.get(), NFTNL_SET_ID) !=
	      nftnl_set_get_u32(c.ops[2].set.get(), NFTNL_SET_ID));
	nft::expr::Reader rd(c.rule.get());
	CHECK(skipConditionExprs(rd) == 2);
	CHECK(rd.done());
}
