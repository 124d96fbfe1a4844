/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layout built into a Batch, parsed back message by message with
 * libnftnl, and decoded with the decoders the plugin uses on kernel dumps:
 * what addSkeleton, addRecord, addChain and addElements write, the decoders
 * (decodeRecord, decodeDnatRule, decodeMasqRule, elementDnat) must read back.
 */
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>

#include <libnftnl/expr.h>
#include <libnftnl/object.h>
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

TEST_CASE("skeleton: table, eight typed maps, nat base chains at the given priorities, dispatch")
{
	auto ops = build([](nft::Batch &b) { addSkeleton(b, Priorities{ -110, 120 }); });
	REQUIRE(ops.size() == 1 + 8 + 4 + 2 + 8);

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
		std::optional<std::uint32_t> dataType; /* nullopt: verdict */
		std::uint32_t dataLen;
	};
	/* Concatenated nft type ids, 6 bits each, the first field highest. */
	const std::uint32_t addr4port = (7u << 6) | 13u, addr6port = (8u << 6) | 13u;
	const MapWant maps[] = {
		{ "ports4", (12u << 6) | 13u, 8, addr4port, 8 },
		{ "ports6", (12u << 6) | 13u, 8, addr6port, 20 },
		{ "addrports4", 0x730d, 12, addr4port, 8 }, /* as nft 1.0.6 writes ipv4_addr . inet_proto . inet_service */
		{ "addrports6", (8u << 12) | (12u << 6) | 13u, 24, addr6port, 20 },
		{ "guard4", (12u << 6) | 13u, 8, std::nullopt, 0 },
		{ "guard6", (12u << 6) | 13u, 8, std::nullopt, 0 },
		{ "addrguard4", 0x730d, 12, std::nullopt, 0 },
		{ "addrguard6", (8u << 12) | (12u << 6) | 13u, 24, std::nullopt, 0 },
	};
	for (std::size_t i = 0; i < 8; i++) {
		const Op &op = ops[1 + i];
		REQUIRE(op.type == NFT_MSG_NEWSET);
		nftnl_set *s = op.set.get();
		CHECK(str(nftnl_set_get_str(s, NFTNL_SET_NAME)) == maps[i].name);
		CHECK(nftnl_set_get_u32(s, NFTNL_SET_FLAGS) == NFT_SET_MAP);
		CHECK(nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE) == maps[i].type);
		CHECK(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) == maps[i].len);
		CHECK(nftnl_set_is_set(s, NFTNL_SET_ID));
		CHECK(setComment(s).has_value());
		/* A data map counts per element: its set carries a counter expression. */
		int counters = 0;
		nftnl_set_expr_foreach(
			s,
			[](nftnl_expr *e, void *data) {
				*static_cast<int *>(data) += str(nftnl_expr_get_str(e, NFTNL_EXPR_NAME)) == "counter";
				return 0;
			},
			&counters);
		if (maps[i].dataType) {
			CHECK(nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE) == *maps[i].dataType);
			CHECK(nftnl_set_get_u32(s, NFTNL_SET_DATA_LEN) == maps[i].dataLen);
			CHECK(counters == 1);
		} else {
			CHECK(nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE) == NFT_DATA_VERDICT);
			CHECK(counters == 0);
		}
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
		const Op &op = ops[9 + i];
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
	for (std::size_t i : { 13, 14 }) {
		REQUIRE(ops[i].type == NFT_MSG_NEWRULE);
		CHECK(chainOf(ops[i]) == (i == 13 ? "prerouting" : "output"));
		nft::expr::Reader rd(ops[i].rule.get());
		CHECK(rd.fibDaddrType(NFT_REG_1));
		std::uint32_t local = RTN_LOCAL;
		Bytes v(4);
		std::memcpy(v.data(), &local, 4);
		CHECK(rd.cmp(NFT_REG_1, NFT_CMP_EQ) == v);
		CHECK(rd.verdict(NFT_JUMP) == "dispatch");
		CHECK(rd.done());
	}

	/* dispatch: per family, hostIP keys first; the guard vmap before the data map of the same key */
	struct Lookup {
		std::uint8_t nfproto;
		std::optional<std::uint32_t> daddrOffset, daddrLen;
		std::uint32_t protoReg, portReg;
		const char *map;
		std::optional<std::uint32_t> natPortReg; /* nullopt: a vmap */
	};
	const Lookup lookups[] = {
		{ NFPROTO_IPV4, 16, 4, NFT_REG32_01, NFT_REG32_02, "addrguard4", std::nullopt },
		{ NFPROTO_IPV4, 16, 4, NFT_REG32_01, NFT_REG32_02, "addrports4", NFT_REG32_01 },
		{ NFPROTO_IPV4, std::nullopt, std::nullopt, NFT_REG_1, NFT_REG32_01, "guard4", std::nullopt },
		{ NFPROTO_IPV4, std::nullopt, std::nullopt, NFT_REG_1, NFT_REG32_01, "ports4", NFT_REG32_01 },
		{ NFPROTO_IPV6, 24, 16, NFT_REG32_04, NFT_REG32_05, "addrguard6", std::nullopt },
		{ NFPROTO_IPV6, 24, 16, NFT_REG32_04, NFT_REG32_05, "addrports6", NFT_REG32_04 },
		{ NFPROTO_IPV6, std::nullopt, std::nullopt, NFT_REG_1, NFT_REG32_01, "guard6", std::nullopt },
		{ NFPROTO_IPV6, std::nullopt, std::nullopt, NFT_REG_1, NFT_REG32_01, "ports6", NFT_REG32_04 },
	};
	for (std::size_t i = 0; i < 8; i++) {
		const Op &op = ops[15 + i];
		CAPTURE(lookups[i].map);
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
		CHECK_FALSE(l->invert);
		if (lookups[i].natPortReg) {
			/* dnat ip to <key> map @ports4: the address lands in reg 1, the port after it */
			CHECK(l->dreg == std::optional<std::uint32_t>(NFT_REG_1));
			CHECK(rd.dnat(NFT_REG_1, *lookups[i].natPortReg) ==
			      std::optional<std::uint32_t>(lookups[i].nfproto));
		} else {
			CHECK(l->dreg == std::optional<std::uint32_t>(NFT_REG_VERDICT));
		}
		CHECK(rd.done());
		/* Not a DNAT rule of an attachment chain, and the decoder says where it stopped. */
		CHECK_FALSE(decodeDnatRule(op.rule.get()));
	}
}

TEST_CASE("masq sets: one hash set per source prefix length, and its rule decodes back")
{
	for (const MasqSet m : { MasqSet{ Family::IPv4, 16 }, MasqSet{ Family::IPv4, 0 }, MasqSet{ Family::IPv6, 64 } }) {
		auto ops = build([&m](nft::Batch &b) { addMasqSet(b, m); });
		REQUIRE(ops.size() == 2);
		REQUIRE(ops[0].type == NFT_MSG_NEWSET);
		nftnl_set *s = ops[0].set.get();
		CHECK(str(nftnl_set_get_str(s, NFTNL_SET_NAME)) == masqSetName(m.family, m.sourceLength));
		/* A plain hash set: neither a map nor an interval set (both cost O(n) per commit). */
		CHECK(nftnl_set_get_u32(s, NFTNL_SET_FLAGS) == 0);
		CHECK(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) == (m.family == Family::IPv4 ? 8u : 32u));
		REQUIRE(ops[1].type == NFT_MSG_NEWRULE);
		CHECK(chainOf(ops[1]) == "postrouting");
		auto back = decodeMasqRule(ops[1].rule.get());
		REQUIRE_MESSAGE(back, back.error());
		CHECK(*back == m);
		/* ct status dnat ip daddr . ip saddr & <mask> @set */
		nft::expr::Reader rd(ops[1].rule.get());
		CHECK(rd.ct(NFT_CT_STATUS, NFT_REG_1));
		std::uint32_t dnat = 0x20, zero = 0;
		Bytes mk(4), z(4);
		std::memcpy(mk.data(), &dnat, 4);
		std::memcpy(z.data(), &zero, 4);
		CHECK(rd.bitwise(NFT_REG_1) == mk);
		CHECK(rd.cmp(NFT_REG_1, NFT_CMP_NEQ) == z);
	}
	/* The skeleton repaired writes the rules of the masq sets it is given, sets untouched. */
	auto ops = build([](nft::Batch &b) {
		addSkeleton(b, Priorities{}, true, { MasqSet{ Family::IPv4, 24 }, MasqSet{ Family::IPv6, 0 } });
	});
	std::vector<MasqSet> rules;
	std::size_t flushes = 0;
	for (const auto &op : ops) {
		flushes += op.type == NFT_MSG_DELRULE;
		if (op.type == NFT_MSG_NEWRULE && chainOf(op) == "postrouting")
			rules.push_back(*decodeMasqRule(op.rule.get()));
		if (op.type == NFT_MSG_NEWSET)
			CHECK(str(nftnl_set_get_str(op.set.get(), NFTNL_SET_NAME)).rfind("masq", 0) != 0);
	}
	CHECK(flushes == 4);
	CHECK((ops[0].flags & NLM_F_EXCL) == 0);
	CHECK(rules == std::vector<MasqSet>{ { Family::IPv4, 24 }, { Family::IPv6, 0 } });
}

TEST_CASE("attachment: a record object, then one exclusive element per key with the owner's comment")
{
	const AttachmentPlan plan = samplePlan();
	REQUIRE(plan.rules.size() == 4);
	const auto elements = planElements(plan);
	auto ops = build([&](nft::Batch &b) {
		addRecord(b, plan);
		addChain(b, plan, false);
		addElements(b, elements, attachmentComment(kWho), attachmentName(kWho));
	});

	/* counter pm-<hash> { comment "..." }, exclusive; no chain without conditions */
	REQUIRE(ops.size() == 1 + elements.size());
	REQUIRE(ops[0].type == NFT_MSG_NEWOBJ);
	CHECK((ops[0].flags & NLM_F_EXCL) != 0);
	CHECK(str(nftnl_obj_get_str(ops[0].obj.get(), NFTNL_OBJ_NAME)) == attachmentName(kWho));
	CHECK(nftnl_obj_get_u32(ops[0].obj.get(), NFTNL_OBJ_TYPE) == NFT_OBJECT_COUNTER);
	CHECK(objectComment(ops[0].obj.get()) == attachmentComment(kWho));
	auto back = decodeRecord(kWho, { ops[0].obj.get() });
	REQUIRE_MESSAGE(back, back.error());
	CHECK(back->rules == plan.rules);
	CHECK(back->containerV4 == plan.containerV4);
	CHECK(back->containerV6 == plan.containerV6);
	CHECK(planKeys(*back) == planKeys(plan));

	for (std::size_t i = 0; i < elements.size(); i++) {
		const Op &op = ops[1 + i];
		const ElementKey &k = elements[i].key;
		REQUIRE(op.type == NFT_MSG_NEWSETELEM);
		CHECK((op.flags & NLM_F_EXCL) != 0);
		CHECK(str(nftnl_set_get_str(op.set.get(), NFTNL_SET_NAME)) == k.setName());
		auto elems = elementsOf(op.set.get());
		REQUIRE(elems.size() == 1);
		CHECK(elementKey(elems[0]) == k.key);
		CHECK(elementComment(elems[0]) == attachmentComment(kWho));
		CHECK(elementData(elems[0]) == elements[i].data);
		CHECK(elementDataText(k.map, elems[0]) == elements[i].dataText);
		if (k.map == MapId::Ports4 || k.map == MapId::Ports6 || k.map == MapId::AddrPorts4 ||
		    k.map == MapId::AddrPorts6) {
			/* The element alone says what it DNATs to. */
			auto d = elementDnat(k.map, elems[0]);
			REQUIRE(d);
			CHECK(std::find(plan.rules.begin(), plan.rules.end(), *d) != plan.rules.end());
		}
	}
}

TEST_CASE("records: round trip of every field, continuation objects when the rules do not fit")
{
	AttachmentPlan plan = samplePlan(false, true);
	plan.guardedV6 = true;
	auto parts = encodeRecord(plan);
	REQUIRE(parts.size() == 1);
	CHECK(parts[0].size() <= 256);

	/* 300 mappings need continuation objects pm-<hash>-1, -2, ... */
	std::vector<PortMapping> many;
	for (std::uint16_t p = 1; p <= 300; p++)
		many.push_back(pm(static_cast<std::uint16_t>(10000 + p), p, p % 2 ? Protocol::TCP : Protocol::UDP,
				  p % 3 ? std::nullopt : std::optional(ip("192.0.2.1"))));
	AttachmentPlan big = makePlan(kWho, many, IpPrefix::parse("10.88.0.2/16"), IpPrefix::parse("fd00::2/64"),
				      true, false, {}, {});
	REQUIRE(big.rules.size() == 500); /* 200 without hostIP in both families, 100 with an IPv4 hostIP */
	auto ops = build([&](nft::Batch &b) { addRecord(b, big); });
	REQUIRE(ops.size() > 1);
	std::vector<const nftnl_obj *> objs;
	for (std::size_t i = 0; i < ops.size(); i++) {
		REQUIRE(ops[i].type == NFT_MSG_NEWOBJ);
		CHECK(str(nftnl_obj_get_str(ops[i].obj.get(), NFTNL_OBJ_NAME)) == recordName(kWho, static_cast<unsigned>(i)));
		std::uint32_t len = 0;
		nftnl_obj_get_data(ops[i].obj.get(), NFTNL_OBJ_USERDATA, &len);
		CHECK(len <= 256);
		objs.push_back(ops[i].obj.get());
	}
	auto n = recordParts(objs[0]);
	REQUIRE(n);
	CHECK(*n == ops.size());
	auto back = decodeRecord(kWho, objs);
	REQUIRE_MESSAGE(back, back.error());
	CHECK(back->rules == big.rules);
	CHECK(back->snat);
	CHECK_FALSE(back->masqAll);
	CHECK(encodeRecord(*back) == encodeRecord(big));

	/* Conditions are recorded as a fingerprint: other conditions, another record. */
	auto c1 = parseConditions(Family::IPv4, { "iifname eth0" });
	auto c2 = parseConditions(Family::IPv4, { "ip saddr 192.0.2.0/24" });
	REQUIRE(c1);
	REQUIRE(c2);
	AttachmentPlan g1 = samplePlan(true, false, *c1), g2 = samplePlan(true, false, *c2);
	CHECK(g1.conditionsHashV4 != 0);
	CHECK(g1.conditionsHashV6 == 0);
	CHECK(g1.conditionsHashV4 != g2.conditionsHashV4);
	CHECK(encodeRecord(g1) != encodeRecord(g2));
	auto g1ops = build([&](nft::Batch &b) { addRecord(b, g1); });
	REQUIRE(g1ops.size() == 1);
	auto g1back = decodeRecord(kWho, { g1ops[0].obj.get() });
	REQUIRE(g1back);
	CHECK(g1back->conditionsHashV4 == g1.conditionsHashV4);
	CHECK(g1back->guardedV4);
	CHECK(encodeRecord(*g1back) == encodeRecord(g1));

	/* A missing part is an error, not a shorter record. */
	objs.pop_back();
	auto partial = decodeRecord(kWho, objs);
	CHECK((!partial || partial->rules != big.rules));
}

TEST_CASE("conditions: a chain with the guarded DNAT rules, closed by accept, and guard elements")
{
	auto c4 = parseConditions(Family::IPv4, { "ip saddr != { 10.99.0.0/16, 192.0.2.7 } iifname != veth*" });
	auto c6 = parseConditions(Family::IPv6, { "ip6 saddr fd00::/8" });
	REQUIRE(c4);
	REQUIRE(c6);
	const AttachmentPlan plan = samplePlan(true, false, *c4, *c6);
	const std::string name = attachmentName(kWho);
	auto ops = build([&](nft::Batch &b) {
		addChain(b, plan, false);
		addElements(b, planElements(plan), attachmentComment(kWho), name);
	});

	REQUIRE(ops[0].type == NFT_MSG_NEWCHAIN);
	CHECK((ops[0].flags & NLM_F_EXCL) != 0);
	CHECK(chainOf(ops[0]) == name);
	CHECK(chainComment(ops[0].chain.get()) == attachmentComment(kWho));
	std::vector<DnatRule> decoded;
	std::size_t anonSets = 0, accepts = 0, guards = 0;
	for (std::size_t i = 1; i < ops.size(); i++) {
		const Op &op = ops[i];
		if (op.type == NFT_MSG_NEWSET) {
			/* The set and its elements come right before the rule that uses them. */
			anonSets++;
			CHECK((nftnl_set_get_u32(op.set.get(), NFTNL_SET_FLAGS) & NFT_SET_ANONYMOUS) != 0);
			REQUIRE(i + 2 < ops.size());
			CHECK(ops[i + 1].type == NFT_MSG_NEWSETELEM);
			CHECK(ops[i + 2].type == NFT_MSG_NEWRULE);
		}
		if (op.type == NFT_MSG_NEWSETELEM && str(nftnl_set_get_str(op.set.get(), NFTNL_SET_NAME)).find("guard") != std::string::npos) {
			guards++;
			auto elems = elementsOf(op.set.get());
			REQUIRE(elems.size() == 1);
			CHECK(elementDataText(MapId::Guard4, elems[0]) == "jump " + name);
		}
		if (op.type != NFT_MSG_NEWRULE || chainOf(op) != name)
			continue;
		if (isAcceptRule(op.rule.get())) {
			accepts++;
			CHECK(i + 1 < ops.size());
			continue;
		}
		CHECK(accepts == 0);
		auto d = decodeDnatRule(op.rule.get());
		REQUIRE_MESSAGE(d, d.error());
		decoded.push_back(*d);
	}
	CHECK(anonSets == 2); /* one per IPv4 rule; the IPv6 condition is a single prefix */
	CHECK(decoded == plan.rules);
	CHECK(accepts == 1);
	CHECK(guards == plan.rules.size());

	/* Re-adding flushes the existing chain instead of creating it. */
	auto again = build([&](nft::Batch &b) { addChain(b, plan, true); });
	REQUIRE(again[0].type == NFT_MSG_DELRULE);
	CHECK(chainOf(again[0]) == name);
	CHECK_FALSE(nftnl_rule_is_set(again[0].rule.get(), NFTNL_RULE_HANDLE));
	for (const auto &op : again)
		CHECK(op.type != NFT_MSG_NEWCHAIN);
}

TEST_CASE("deleting: one DELSETELEM per key, the record objects, a chain flushed then deleted")
{
	const auto keys = planKeys(samplePlan());
	auto ops = build([&keys](nft::Batch &b) {
		deleteElements(b, keys);
		deleteChain(b, "pm-0123456789abcdef");
		deleteRecord(b, kWho, 2);
	});
	REQUIRE(ops.size() == keys.size() + 4);
	for (std::size_t i = 0; i < keys.size(); i++) {
		CHECK(ops[i].type == NFT_MSG_DELSETELEM);
		CHECK(str(nftnl_set_get_str(ops[i].set.get(), NFTNL_SET_NAME)) == keys[i].setName());
		auto elems = elementsOf(ops[i].set.get());
		REQUIRE(elems.size() == 1);
		CHECK(elementKey(elems[0]) == keys[i].key);
	}
	CHECK(ops[keys.size()].type == NFT_MSG_DELRULE);
	CHECK(chainOf(ops[keys.size()]) == "pm-0123456789abcdef");
	CHECK(ops[keys.size() + 1].type == NFT_MSG_DELCHAIN);
	CHECK(chainOf(ops[keys.size() + 1]) == "pm-0123456789abcdef");
	for (unsigned i = 0; i < 2; i++) {
		const Op &op = ops[keys.size() + 2 + i];
		CHECK(op.type == NFT_MSG_DELOBJ);
		CHECK(str(nftnl_obj_get_str(op.obj.get(), NFTNL_OBJ_NAME)) == recordName(kWho, i));
		CHECK(nftnl_obj_get_u32(op.obj.get(), NFTNL_OBJ_TYPE) == NFT_OBJECT_COUNTER);
	}
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
		CHECK(d.error() == "not an nft-portmap masquerade rule: expected ct status dnat at expression 1, found end of rule");
	}
}

TEST_CASE("element readers: data, jumps, comments and counters")
{
	nft::SetElemPtr e(nftnl_set_elem_alloc());
	CHECK(elementDataText(MapId::Ports4, e.get()).empty());
	CHECK(elementData(e.get()).empty());
	CHECK_FALSE(elementComment(e.get()));
	CHECK_FALSE(elementCounter(e.get()));
	CHECK_FALSE(elementDnat(MapId::Ports4, e.get()));

	const Bytes key{ 17, 0, 0, 0, 0, 53, 0, 0 }, data{ 10, 0, 0, 9, 0x13, 0x88, 0, 0 };
	nftnl_set_elem_set(e.get(), NFTNL_SET_ELEM_KEY, key.data(), 8);
	nftnl_set_elem_set(e.get(), NFTNL_SET_ELEM_DATA, data.data(), 8);
	CHECK(elementDataText(MapId::Ports4, e.get()) == "10.0.0.9 . 5000");
	auto d = elementDnat(MapId::Ports4, e.get());
	REQUIRE(d);
	CHECK(d->mapping == pm(53, 5000, Protocol::UDP));
	CHECK(d->containerAddr == ip("10.0.0.9"));
	/* IPv6 data is 20 bytes: 8 bytes are not an IPv6 DNAT. */
	CHECK_FALSE(elementDnat(MapId::Ports6, e.get()));

	nftnl_expr *ctr = nftnl_expr_alloc("counter");
	nftnl_expr_set_u64(ctr, NFTNL_EXPR_CTR_PACKETS, 3);
	nftnl_expr_set_u64(ctr, NFTNL_EXPR_CTR_BYTES, 180);
	nftnl_set_elem_add_expr(e.get(), ctr);
	CHECK(elementCounter(e.get()) == std::optional(std::pair<std::uint64_t, std::uint64_t>(3, 180)));

	nft::SetElemPtr g(nftnl_set_elem_alloc());
	nftnl_set_elem_set_u32(g.get(), NFTNL_SET_ELEM_VERDICT, static_cast<std::uint32_t>(NFT_JUMP));
	nftnl_set_elem_set_str(g.get(), NFTNL_SET_ELEM_CHAIN, "pm-x");
	CHECK(elementDataText(MapId::Guard4, g.get()) == "jump pm-x");
}
