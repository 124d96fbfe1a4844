/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layout built into a Batch, parsed back message by message with
 * libnftnl, and decoded with the decoders the plugin uses on kernel dumps:
 * what addAttachment writes, decodeDnatRule/decodeMasqRule must read back.
 */
#include <doctest/doctest.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>

#include <libnftnl/udata.h>

#include "nft/expr.hpp"
#include "parsed_batch.hpp"
#include "portmap/ruleset.hpp"

using namespace nftpm;
using namespace nftpm::ruleset;
using namespace nftpm::test;
using Bytes = std::vector<std::uint8_t>;

namespace {

IpAddress ip(const char *s)
{
	return *IpAddress::parse(s);
}

PortMapping pm(std::uint16_t host, std::uint16_t cont, Protocol p = Protocol::TCP,
	       std::optional<IpAddress> hostIP = std::nullopt)
{
	return { host, cont, p, hostIP };
}

std::vector<Op> build(const std::function<void(nft::Batch &)> &fill)
{
	nft::Batch b;
	fill(b);
	bool ok = false;
	auto ops = parseBatch(b, ok);
	CHECK(ok);
	return ops;
}

/* A string TLV of a udata blob. */
std::optional<std::string> udataString(const void *data, std::uint32_t len, std::uint8_t type)
{
	const auto *p = static_cast<const std::uint8_t *>(data);
	for (std::uint32_t i = 0; p && i + 2 <= len; i += 2u + p[i + 1]) {
		if (p[i] == type && p[i + 1] > 0 && p[i + 2 + p[i + 1] - 1] == 0)
			return std::string(reinterpret_cast<const char *>(p + i + 2), p[i + 1] - 1u);
	}
	return std::nullopt;
}

std::optional<std::string> setComment(nftnl_set *s)
{
	std::uint32_t len = 0;
	const void *d = nftnl_set_get_data(s, NFTNL_SET_USERDATA, &len);
	return udataString(d, len, NFTNL_UDATA_SET_COMMENT);
}

std::string chainOf(const Op &op)
{
	if (op.rule)
		return str(nftnl_rule_get_str(op.rule.get(), NFTNL_RULE_CHAIN));
	if (op.chain)
		return str(nftnl_chain_get_str(op.chain.get(), NFTNL_CHAIN_NAME));
	return {};
}

const std::string kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const Attachment kWho{ "podman", kId, "eth0" };

AttachmentPlan samplePlan(bool snat = true, bool masqAll = false, Conditions c4 = {}, Conditions c6 = {})
{
	return makePlan(kWho,
			{ pm(8080, 80), pm(5353, 53, Protocol::UDP, ip("192.0.2.1")),
			  pm(9000, 90, Protocol::SCTP, ip("2001:db8::1")) },
			IpPrefix::parse("10.88.0.2/16"), IpPrefix::parse("fd00::2/64"), snat, masqAll,
			std::move(c4), std::move(c6));
}

} /* namespace */

TEST_CASE("skeleton: table, six typed maps, nat base chains at the given priorities, dispatch")
{
	auto ops = build([](nft::Batch &b) { addSkeleton(b, Priorities{ -110, 120 }); });
	REQUIRE(ops.size() == 1 + 6 + 4 + 2 + 4 + 2);

	/* add table inet nft-portmap, exclusively, with a comment */
	REQUIRE(ops[0].type == NFT_MSG_NEWTABLE);
	CHECK((ops[0].flags & NLM_F_EXCL) != 0);
	CHECK(str(nftnl_table_get_str(ops[0].table.get(), NFTNL_TABLE_NAME)) == "nft-portmap");
	CHECK(nftnl_table_get_u32(ops[0].table.get(), NFTNL_TABLE_FAMILY) == NFPROTO_INET);
	std::uint32_t len = 0;
	const void *ud = nftnl_table_get_data(ops[0].table.get(), NFTNL_TABLE_USERDATA, &len);
	CHECK(udataString(ud, len, NFTNL_UDATA_TABLE_COMMENT).value_or("").find("nft-portmap") == 0);

	struct MapWant {
		const char *name;
		std::uint32_t type;
		std::uint32_t len;
	};
	/* Concatenated nft type ids, 6 bits each, the first field highest. */
	const MapWant maps[] = {
		{ "ports4", (12u << 6) | 13u, 8 },
		{ "ports6", (12u << 6) | 13u, 8 },
		{ "addrports4", 0x730d, 12 }, /* as nft 1.0.6 writes ipv4_addr . inet_proto . inet_service */
		{ "addrports6", (8u << 12) | (12u << 6) | 13u, 24 },
		{ "masq4", 7, 4 },
		{ "masq6", 8, 16 },
	};
	for (std::size_t i = 0; i < 6; i++) {
		const Op &op = ops[1 + i];
		REQUIRE(op.type == NFT_MSG_NEWSET);
		nftnl_set *s = op.set.get();
		CHECK(str(nftnl_set_get_str(s, NFTNL_SET_NAME)) == maps[i].name);
		CHECK(nftnl_set_get_u32(s, NFTNL_SET_FLAGS) == NFT_SET_MAP);
		CHECK(nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE) == maps[i].type);
		CHECK(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) == maps[i].len);
		CHECK(nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE) == NFT_DATA_VERDICT);
		CHECK(nftnl_set_is_set(s, NFTNL_SET_ID));
		CHECK(setComment(s).has_value());
	}

	struct ChainWant {
		const char *name;
		std::optional<std::uint32_t> hook;
		int prio;
	};
	const ChainWant chains[] = {
		{ "dispatch", std::nullopt, 0 },
		{ "prerouting", NF_INET_PRE_ROUTING, -110 },
		{ "output", NF_INET_LOCAL_OUT, -110 },
		{ "postrouting", NF_INET_POST_ROUTING, 120 },
	};
	for (std::size_t i = 0; i < 4; i++) {
		const Op &op = ops[7 + i];
		REQUIRE(op.type == NFT_MSG_NEWCHAIN);
		nftnl_chain *c = op.chain.get();
		CHECK(chainOf(op) == chains[i].name);
		CHECK(nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) == chains[i].hook.has_value());
		if (!chains[i].hook)
			continue;
		CHECK(nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) == *chains[i].hook);
		CHECK(nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO) == chains[i].prio);
		CHECK(str(nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE)) == "nat");
		CHECK(nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) == NF_ACCEPT);
	}

	/* prerouting, output: fib daddr type local jump dispatch */
	for (std::size_t i : { 11, 12 }) {
		REQUIRE(ops[i].type == NFT_MSG_NEWRULE);
		CHECK(chainOf(ops[i]) == (i == 11 ? "prerouting" : "output"));
		nft::expr::Reader rd(ops[i].rule.get());
		CHECK(rd.fibDaddrType(NFT_REG_1));
		std::uint32_t local = RTN_LOCAL;
		Bytes v(4);
		std::memcpy(v.data(), &local, 4);
		CHECK(rd.cmp(NFT_REG_1, NFT_CMP_EQ) == v);
		CHECK(rd.verdict(NFT_JUMP) == "dispatch");
		CHECK(rd.done());
	}

	/* dispatch: the vmap lookups, hostIP maps first */
	struct Lookup {
		std::uint8_t nfproto;
		std::optional<std::uint32_t> daddrOffset, daddrLen;
		std::uint32_t protoReg, portReg;
		const char *map;
	};
	const Lookup lookups[] = {
		{ NFPROTO_IPV4, 16, 4, NFT_REG32_01, NFT_REG32_02, "addrports4" },
		{ NFPROTO_IPV4, std::nullopt, std::nullopt, NFT_REG_1, NFT_REG32_01, "ports4" },
		{ NFPROTO_IPV6, 24, 16, NFT_REG32_04, NFT_REG32_05, "addrports6" },
		{ NFPROTO_IPV6, std::nullopt, std::nullopt, NFT_REG_1, NFT_REG32_01, "ports6" },
	};
	for (std::size_t i = 0; i < 4; i++) {
		const Op &op = ops[13 + i];
		CHECK(chainOf(op) == "dispatch");
		nft::expr::Reader rd(op.rule.get());
		CHECK(rd.meta(NFT_META_NFPROTO, NFT_REG_1));
		CHECK(rd.cmp(NFT_REG_1, NFT_CMP_EQ) == Bytes{ lookups[i].nfproto });
		if (lookups[i].daddrOffset)
			CHECK(rd.payload(NFT_PAYLOAD_NETWORK_HEADER, *lookups[i].daddrOffset,
					 *lookups[i].daddrLen, NFT_REG_1));
		CHECK(rd.meta(NFT_META_L4PROTO, lookups[i].protoReg));
		CHECK(rd.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, lookups[i].portReg));
		auto l = rd.lookup(NFT_REG_1);
		REQUIRE(l);
		CHECK(l->set == lookups[i].map);
		CHECK(l->dreg == std::optional<std::uint32_t>(NFT_REG_VERDICT));
		CHECK_FALSE(l->invert);
		CHECK(rd.done());
		/* Not a DNAT rule, and the decoder says where it stopped. */
		auto d = decodeDnatRule(op.rule.get());
		CHECK_FALSE(d);
	}

	/* postrouting: ct status dnat ip daddr vmap @masq4 / ip6 ... @masq6 */
	for (std::size_t i = 0; i < 2; i++) {
		const Op &op = ops[17 + i];
		CHECK(chainOf(op) == "postrouting");
		nft::expr::Reader rd(op.rule.get());
		CHECK(rd.ct(NFT_CT_STATUS, NFT_REG_1));
		std::uint32_t dnat = 0x20, zero = 0;
		Bytes m(4), z(4);
		std::memcpy(m.data(), &dnat, 4);
		std::memcpy(z.data(), &zero, 4);
		CHECK(rd.bitwise(NFT_REG_1) == m);
		CHECK(rd.cmp(NFT_REG_1, NFT_CMP_NEQ) == z);
		CHECK(rd.meta(NFT_META_NFPROTO, NFT_REG_1));
		CHECK(rd.cmp(NFT_REG_1, NFT_CMP_EQ) == Bytes{ i == 0 ? std::uint8_t{ NFPROTO_IPV4 } : std::uint8_t{ NFPROTO_IPV6 } });
		CHECK(rd.payload(NFT_PAYLOAD_NETWORK_HEADER, i == 0 ? 16 : 24, i == 0 ? 4 : 16, NFT_REG_1));
		auto l = rd.lookup(NFT_REG_1);
		REQUIRE(l);
		CHECK(l->set == (i == 0 ? "masq4" : "masq6"));
		CHECK(l->dreg == std::optional<std::uint32_t>(NFT_REG_VERDICT));
		CHECK(rd.done());
	}
}

TEST_CASE("attachment: chains with comments, rules that decode to the plan, owned elements")
{
	const AttachmentPlan plan = samplePlan();
	REQUIRE(plan.rules.size() == 4);
	auto ops = build([&plan](nft::Batch &b) { addAttachment(b, plan, false, false); });

	const std::string dnat = dnatChainName(kWho), masq = masqChainName(kWho);
	std::size_t i = 0;

	REQUIRE(ops[i].type == NFT_MSG_NEWCHAIN);
	CHECK((ops[i].flags & NLM_F_EXCL) != 0);
	CHECK(chainOf(ops[i]) == dnat);
	CHECK_FALSE(nftnl_chain_is_set(ops[i].chain.get(), NFTNL_CHAIN_HOOKNUM));
	CHECK(chainComment(ops[i].chain.get()) == attachmentComment(kWho));
	i++;

	std::vector<DnatRule> decoded;
	for (; i < ops.size() && ops[i].type == NFT_MSG_NEWRULE; i++) {
		CHECK(chainOf(ops[i]) == dnat);
		auto d = decodeDnatRule(ops[i].rule.get());
		REQUIRE_MESSAGE(d, d.error());
		decoded.push_back(*d);
	}
	CHECK(decoded == plan.rules);

	REQUIRE(ops[i].type == NFT_MSG_NEWCHAIN);
	CHECK(chainOf(ops[i]) == masq);
	CHECK(chainComment(ops[i].chain.get()) == attachmentComment(kWho));
	i++;
	std::vector<std::pair<std::string, std::string>> masqRules;
	for (; i < ops.size() && ops[i].type == NFT_MSG_NEWRULE; i++) {
		CHECK(chainOf(ops[i]) == masq);
		auto m = decodeMasqRule(ops[i].rule.get());
		REQUIRE_MESSAGE(m, m.error());
		masqRules.emplace_back(m->containerAddr.toString(), m->source ? m->source->toString() : "*");
		/* And a masquerade rule is not a DNAT rule. */
		CHECK_FALSE(decodeDnatRule(ops[i].rule.get()));
	}
	CHECK(masqRules == std::vector<std::pair<std::string, std::string>>{
				   { "10.88.0.2", "10.88.0.0/16" },
				   { "10.88.0.2", "127.0.0.0/8" },
				   { "fd00::2", "fd00::/64" } });

	/* One exclusive NEWSETELEM per key, jumping to the owner's chain, with its comment. */
	const auto keys = planKeys(plan);
	REQUIRE(ops.size() - i == keys.size());
	for (const auto &k : keys) {
		const Op &op = ops[i++];
		REQUIRE(op.type == NFT_MSG_NEWSETELEM);
		CHECK((op.flags & NLM_F_EXCL) != 0);
		CHECK(str(nftnl_set_get_str(op.set.get(), NFTNL_SET_NAME)) == mapName(k.map));
		auto elems = elementsOf(op.set.get());
		REQUIRE(elems.size() == 1);
		CHECK(elementKey(elems[0]) == k.key);
		CHECK(keyText(k.map, elems[0]) == k.text);
		bool isMasq = k.map == MapId::Masq4 || k.map == MapId::Masq6;
		CHECK(elementTarget(elems[0]) == (isMasq ? masq : dnat));
		CHECK(elementComment(elems[0]) == attachmentComment(kWho));
	}
}

TEST_CASE("re-adding into existing chains flushes them instead of creating them")
{
	const AttachmentPlan plan = samplePlan();
	auto ops = build([&plan](nft::Batch &b) { addAttachment(b, plan, true, true); });
	REQUIRE(ops[0].type == NFT_MSG_DELRULE);
	CHECK(chainOf(ops[0]) == dnatChainName(kWho));
	CHECK_FALSE(nftnl_rule_is_set(ops[0].rule.get(), NFTNL_RULE_HANDLE));
	std::size_t flushes = 0, newChains = 0;
	for (const auto &op : ops) {
		flushes += op.type == NFT_MSG_DELRULE;
		newChains += op.type == NFT_MSG_NEWCHAIN;
	}
	CHECK(flushes == 2);
	CHECK(newChains == 0);
}

TEST_CASE("snat off: no masquerade chain and no masquerade elements; masqAll: no source match")
{
	auto ops = build([](nft::Batch &b) { addAttachment(b, samplePlan(false), false, false); });
	for (const auto &op : ops) {
		CHECK(chainOf(op) != masqChainName(kWho));
		if (op.type == NFT_MSG_NEWSETELEM)
			CHECK(str(nftnl_set_get_str(op.set.get(), NFTNL_SET_NAME)).rfind("masq", 0) != 0);
	}

	auto all = build([](nft::Batch &b) { addAttachment(b, samplePlan(true, true), false, false); });
	std::vector<std::string> addrs;
	for (const auto &op : all) {
		if (op.type != NFT_MSG_NEWRULE || chainOf(op) != masqChainName(kWho))
			continue;
		auto m = decodeMasqRule(op.rule.get());
		REQUIRE_MESSAGE(m, m.error());
		CHECK_FALSE(m->source);
		addrs.push_back(m->containerAddr.toString());
	}
	CHECK(addrs == std::vector<std::string>{ "10.88.0.2", "fd00::2" });
}

TEST_CASE("conditions sit between the port match and the counter and do not disturb decoding")
{
	auto c4 = parseConditions(Family::IPv4, { "ip saddr != { 10.99.0.0/16, 192.0.2.7 } iifname != veth*" });
	auto c6 = parseConditions(Family::IPv6, { "ip6 saddr fd00::/8" });
	REQUIRE(c4);
	REQUIRE(c6);
	const AttachmentPlan plan = samplePlan(true, false, *c4, *c6);
	auto ops = build([&plan](nft::Batch &b) { addAttachment(b, plan, false, false); });

	std::vector<DnatRule> decoded;
	std::size_t anonSets = 0;
	for (std::size_t i = 0; i < ops.size(); i++) {
		const Op &op = ops[i];
		if (op.type == NFT_MSG_NEWSET) {
			/* The set and its elements come right before the rule that uses them. */
			anonSets++;
			CHECK((nftnl_set_get_u32(op.set.get(), NFTNL_SET_FLAGS) & NFT_SET_ANONYMOUS) != 0);
			REQUIRE(i + 2 < ops.size());
			CHECK(ops[i + 1].type == NFT_MSG_NEWSETELEM);
			CHECK(ops[i + 2].type == NFT_MSG_NEWRULE);
		}
		if (op.type != NFT_MSG_NEWRULE || chainOf(op) != dnatChainName(kWho))
			continue;
		auto d = decodeDnatRule(op.rule.get());
		REQUIRE_MESSAGE(d, d.error());
		decoded.push_back(*d);
	}
	CHECK(anonSets == 2); /* one per IPv4 rule; the IPv6 condition is a single prefix */
	CHECK(decoded == plan.rules);
}

TEST_CASE("deleting: one DELSETELEM per key; a chain is flushed, then deleted")
{
	const auto keys = planKeys(samplePlan());
	auto ops = build([&keys](nft::Batch &b) {
		deleteElements(b, keys);
		deleteChain(b, "pm-0123456789abcdef");
	});
	REQUIRE(ops.size() == keys.size() + 2);
	for (std::size_t i = 0; i < keys.size(); i++) {
		CHECK(ops[i].type == NFT_MSG_DELSETELEM);
		CHECK(str(nftnl_set_get_str(ops[i].set.get(), NFTNL_SET_NAME)) == mapName(keys[i].map));
		auto elems = elementsOf(ops[i].set.get());
		REQUIRE(elems.size() == 1);
		CHECK(elementKey(elems[0]) == keys[i].key);
	}
	CHECK(ops[keys.size()].type == NFT_MSG_DELRULE);
	CHECK(chainOf(ops[keys.size()]) == "pm-0123456789abcdef");
	CHECK(ops[keys.size() + 1].type == NFT_MSG_DELCHAIN);
	CHECK(chainOf(ops[keys.size() + 1]) == "pm-0123456789abcdef");
}

namespace {

nft::RulePtr rule()
{
	nft::RulePtr r(nftnl_rule_alloc());
	nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
	return r;
}

void nfprotoV4(nftnl_rule *r)
{
	const std::uint8_t v4 = NFPROTO_IPV4;
	nft::expr::meta(r, NFT_META_NFPROTO, NFT_REG_1);
	nft::expr::cmp(r, NFT_REG_1, NFT_CMP_EQ, std::span(&v4, 1));
}

void tcpDport(nftnl_rule *r, std::uint8_t proto = 6)
{
	nft::expr::meta(r, NFT_META_L4PROTO, NFT_REG_1);
	nft::expr::cmp(r, NFT_REG_1, NFT_CMP_EQ, std::span(&proto, 1));
	const Bytes port{ 0x1f, 0x90 };
	nft::expr::payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
	nft::expr::cmp(r, NFT_REG_1, NFT_CMP_EQ, port);
}

void dnatTail(nftnl_rule *r, std::uint32_t family = NFPROTO_IPV4)
{
	nft::expr::counter(r);
	nft::expr::immediate(r, NFT_REG_1, Bytes{ 10, 0, 0, 2 });
	nft::expr::immediate(r, NFT_REG_2, Bytes{ 0, 80 });
	nft::expr::dnat(r, family, NFT_REG_1, NFT_REG_2);
}

} /* namespace */

TEST_CASE("the decoders refuse shapes nft-portmap does not write, naming where")
{
	{
		auto r = rule();
		nfprotoV4(r.get());
		tcpDport(r.get());
		dnatTail(r.get());
		auto d = decodeDnatRule(r.get());
		REQUIRE_MESSAGE(d, d.error());
		CHECK(d->mapping == pm(8080, 80));
		CHECK(d->containerAddr == ip("10.0.0.2"));
	}
	{
		/* No counter */
		auto r = rule();
		nfprotoV4(r.get());
		tcpDport(r.get());
		nft::expr::immediate(r.get(), NFT_REG_1, Bytes{ 10, 0, 0, 2 });
		auto d = decodeDnatRule(r.get());
		REQUIRE_FALSE(d);
		CHECK(d.error() == "not an nft-portmap DNAT rule: expected a condition or counter at expression 7, found immediate");
	}
	{
		/* icmp is not a protocol we publish */
		auto r = rule();
		nfprotoV4(r.get());
		tcpDport(r.get(), 1);
		dnatTail(r.get());
		auto d = decodeDnatRule(r.get());
		REQUIRE_FALSE(d);
		CHECK(d.error() == "not an nft-portmap DNAT rule: protocol 1 is not tcp, udp or sctp");
	}
	{
		/* dnat ip6 after an IPv4 match */
		auto r = rule();
		nfprotoV4(r.get());
		tcpDport(r.get());
		dnatTail(r.get(), NFPROTO_IPV6);
		auto d = decodeDnatRule(r.get());
		REQUIRE_FALSE(d);
		CHECK(d.error() == "not an nft-portmap DNAT rule: dnat of NFPROTO 10 in an ipv4 rule");
	}
	{
		/* Something after the dnat */
		auto r = rule();
		nfprotoV4(r.get());
		tcpDport(r.get());
		dnatTail(r.get());
		nft::expr::counter(r.get());
		CHECK_FALSE(decodeDnatRule(r.get()));
	}
	{
		auto r = rule();
		auto d = decodeMasqRule(r.get());
		REQUIRE_FALSE(d);
		CHECK(d.error() == "not an nft-portmap masquerade rule: expected meta nfproto ipv4|ipv6 at expression 1, found end of rule");
	}
}

TEST_CASE("elementTarget reads only jumps")
{
	nft::SetElemPtr e(nftnl_set_elem_alloc());
	CHECK_FALSE(elementTarget(e.get()));
	nftnl_set_elem_set_u32(e.get(), NFTNL_SET_ELEM_VERDICT, static_cast<std::uint32_t>(NF_ACCEPT));
	CHECK_FALSE(elementTarget(e.get()));
	nftnl_set_elem_set_u32(e.get(), NFTNL_SET_ELEM_VERDICT, static_cast<std::uint32_t>(NFT_GOTO));
	nftnl_set_elem_set_str(e.get(), NFTNL_SET_ELEM_CHAIN, "pm-x");
	CHECK_FALSE(elementTarget(e.get()));
	nftnl_set_elem_set_u32(e.get(), NFTNL_SET_ELEM_VERDICT, static_cast<std::uint32_t>(NFT_JUMP));
	CHECK(elementTarget(e.get()) == "pm-x");
	CHECK_FALSE(elementComment(e.get()));
}
