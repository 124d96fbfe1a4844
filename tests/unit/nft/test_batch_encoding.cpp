/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Batch encoding: build batches, take encoded(), split the netlink messages
 * and parse every one back with libnftnl.
 */
#include <doctest/doctest.h>

#include <cstring>
#include <set>

#include "messages.hpp"
#include "nft/batch.hpp"
#include "objects.hpp"

using namespace nftpm::nft;
using namespace nftpm::nft::test;

namespace {

using Keys = std::vector<std::vector<std::uint8_t>>;

constexpr std::uint16_t kAck = NLM_F_REQUEST | NLM_F_ACK;

/* The NFNL_BATCH_GENID attribute of a BATCH_BEGIN message, if any. */
std::optional<std::uint32_t> beginGenid(const Message &m)
{
	std::optional<std::uint32_t> genid;
	const nlmsghdr *nlh = m.nlh();
	const auto *tail = static_cast<const char *>(mnl_nlmsg_get_payload_tail(nlh));
	for (auto *a = static_cast<const nlattr *>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
	     mnl_attr_ok(a, static_cast<int>(tail - reinterpret_cast<const char *>(a)));
	     a = mnl_attr_next(a)) {
		if (mnl_attr_get_type(a) == NFNL_BATCH_GENID)
			genid = ntohl(mnl_attr_get_u32(a));
	}
	return genid;
}

void checkMarkers(const std::vector<Message> &msgs)
{
	REQUIRE(msgs.size() >= 2);
	const Message &begin = msgs.front();
	const Message &end = msgs.back();
	CHECK(begin.nlh()->nlmsg_type == NFNL_MSG_BATCH_BEGIN);
	CHECK(end.nlh()->nlmsg_type == NFNL_MSG_BATCH_END);
	for (const Message *m : { &begin, &end }) {
		CHECK(m->flags() == NLM_F_REQUEST);
		CHECK(ntohs(m->nfg()->res_id) == NFNL_SUBSYS_NFTABLES);
		CHECK(m->nfg()->nfgen_family == AF_UNSPEC);
	}
	for (std::size_t i = 1; i + 1 < msgs.size(); ++i)
		CHECK(msgs[i].subsystem() == NFNL_SUBSYS_NFTABLES);
}

std::vector<Message> encode(const Batch &b)
{
	auto bytes = b.encoded();
	CHECK(bytes.size() == b.bytes());
	int rest = -1;
	auto msgs = splitMessages(bytes, &rest);
	CHECK(rest == 0);
	checkMarkers(msgs);
	return msgs;
}

/* Keys of the elements of a NEWSETELEM/DELSETELEM message, in order. */
Keys elementKeys(Message m, SetPtr &parsed)
{
	renumberElementList(m.nlh());
	parsed.reset(nftnl_set_alloc());
	REQUIRE(nftnl_set_elems_nlmsg_parse(m.nlh(), parsed.get()) == 0);
	std::vector<std::vector<std::uint8_t>> keys;
	nftnl_set_elem_foreach(
		parsed.get(),
		[](nftnl_set_elem *e, void *data) {
			std::uint32_t len = 0;
			const auto *k = static_cast<const std::uint8_t *>(
				nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len));
			static_cast<std::vector<std::vector<std::uint8_t>> *>(data)->emplace_back(k, k + len);
			return 0;
		},
		&keys);
	return keys;
}

} /* namespace */

TEST_CASE("an empty batch is BEGIN and END, and BEGIN has no generation")
{
	Batch b;
	CHECK(b.empty());
	auto msgs = encode(b);
	REQUIRE(msgs.size() == 2);
	CHECK(!beginGenid(msgs[0]));
	CHECK(msgs[0].seq() != msgs[1].seq());
}

TEST_CASE("BEGIN carries NFNL_BATCH_GENID, big-endian, when a generation is given")
{
	Batch b(0x01020304u);
	auto msgs = encode(b);
	REQUIRE(msgs.size() == 2);
	CHECK(beginGenid(msgs[0]) == 0x01020304u);

	/* The raw attribute is big-endian: 01 02 03 04 in memory. */
	auto bytes = b.encoded();
	const std::uint8_t be[] = { 1, 2, 3, 4 };
	CHECK(std::search(bytes.begin(), bytes.end(), std::begin(be), std::end(be)) != bytes.end());

	Batch zero(0u);
	CHECK(beginGenid(encode(zero)[0]) == 0u);
}

TEST_CASE("tables, chains and rules: message types, flags and names")
{
	Batch b;
	b.addTable(makeTable("t").get(), false, "add table inet t");
	b.addTable(makeTable("u").get(), true, "create table inet u");
	b.addChain(makeBaseChain("t", "in").get(), false, "add chain inet t in");
	b.addChain(makeChain("t", "c").get(), true, "create chain inet t c");
	b.addRule(makeCounterRule("t", "c").get(), "add rule inet t c counter");
	b.deleteChain(makeChain("t", "old").get(), "delete chain inet t old");
	b.deleteTable(makeTable("u").get(), "delete table inet u");
	CHECK(b.size() == 7);

	auto msgs = encode(b);
	REQUIRE(msgs.size() == 9);

	struct Expect {
		std::uint16_t type;
		std::uint16_t flags;
	};
	const Expect expect[] = {
		{ NFT_MSG_NEWTABLE, kAck | NLM_F_CREATE },
		{ NFT_MSG_NEWTABLE, kAck | NLM_F_CREATE | NLM_F_EXCL },
		{ NFT_MSG_NEWCHAIN, kAck | NLM_F_CREATE },
		{ NFT_MSG_NEWCHAIN, kAck | NLM_F_CREATE | NLM_F_EXCL },
		{ NFT_MSG_NEWRULE, kAck | NLM_F_CREATE | NLM_F_APPEND },
		{ NFT_MSG_DELCHAIN, kAck },
		{ NFT_MSG_DELTABLE, kAck },
	};
	for (std::size_t i = 0; i < std::size(expect); ++i) {
		CAPTURE(i);
		CHECK(msgs[i + 1].type() == expect[i].type);
		CHECK(msgs[i + 1].flags() == expect[i].flags);
		CHECK(msgs[i + 1].nfg()->nfgen_family == NFPROTO_INET);
	}

	TablePtr t(nftnl_table_alloc());
	REQUIRE(nftnl_table_nlmsg_parse(msgs[2].nlh(), t.get()) == 0);
	CHECK(std::string(nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME)) == "u");
	CHECK(nftnl_table_get_u32(t.get(), NFTNL_TABLE_FAMILY) == NFPROTO_INET);

	ChainPtr base(nftnl_chain_alloc());
	REQUIRE(nftnl_chain_nlmsg_parse(msgs[3].nlh(), base.get()) == 0);
	CHECK(std::string(nftnl_chain_get_str(base.get(), NFTNL_CHAIN_TABLE)) == "t");
	CHECK(std::string(nftnl_chain_get_str(base.get(), NFTNL_CHAIN_NAME)) == "in");
	CHECK(std::string(nftnl_chain_get_str(base.get(), NFTNL_CHAIN_TYPE)) == "filter");
	CHECK(nftnl_chain_get_u32(base.get(), NFTNL_CHAIN_HOOKNUM) == NF_INET_LOCAL_IN);

	ChainPtr plain(nftnl_chain_alloc());
	REQUIRE(nftnl_chain_nlmsg_parse(msgs[4].nlh(), plain.get()) == 0);
	CHECK(std::string(nftnl_chain_get_str(plain.get(), NFTNL_CHAIN_NAME)) == "c");
	CHECK(!nftnl_chain_is_set(plain.get(), NFTNL_CHAIN_HOOKNUM));

	RulePtr r(nftnl_rule_alloc());
	REQUIRE(nftnl_rule_nlmsg_parse(msgs[5].nlh(), r.get()) == 0);
	CHECK(std::string(nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE)) == "t");
	CHECK(std::string(nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN)) == "c");
	int exprs = 0;
	nftnl_expr_foreach(
		r.get(), [](nftnl_expr *, void *n) { return ++*static_cast<int *>(n), 0; }, &exprs);
	CHECK(exprs == 1);

	ChainPtr gone(nftnl_chain_alloc());
	REQUIRE(nftnl_chain_nlmsg_parse(msgs[6].nlh(), gone.get()) == 0);
	CHECK(std::string(nftnl_chain_get_str(gone.get(), NFTNL_CHAIN_NAME)) == "old");
}

TEST_CASE("flush chain is DELRULE naming only table and chain")
{
	Batch b;
	b.flushChain(NFPROTO_INET, "t", "c", "flush chain inet t c");
	auto msgs = encode(b);
	REQUIRE(msgs.size() == 3);
	const Message &m = msgs[1];
	CHECK(m.type() == NFT_MSG_DELRULE);
	CHECK(m.flags() == kAck);
	CHECK(m.nfg()->nfgen_family == NFPROTO_INET);

	RulePtr r(nftnl_rule_alloc());
	REQUIRE(nftnl_rule_nlmsg_parse(m.nlh(), r.get()) == 0);
	CHECK(std::string(nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE)) == "t");
	CHECK(std::string(nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN)) == "c");
	CHECK(!nftnl_rule_is_set(r.get(), NFTNL_RULE_HANDLE));
	CHECK(!nftnl_rule_is_set(r.get(), NFTNL_RULE_POSITION));
	int exprs = 0;
	nftnl_expr_foreach(
		r.get(), [](nftnl_expr *, void *n) { return ++*static_cast<int *>(n), 0; }, &exprs);
	CHECK(exprs == 0);
}

TEST_CASE("sets and elements: flags, names, keys and verdicts")
{
	SetPtr map = makeSet("t", "m", true);
	SetPtr add = elementsOf("t", "m");
	addElement(add.get(), ipKey(1), "c");
	addElement(add.get(), ipKey(2), "d");
	SetPtr del = elementsOf("t", "m");
	addElement(del.get(), ipKey(3));

	Batch b;
	b.addSet(map.get(), "add map inet t m");
	b.addElements(add.get(), false, "add element inet t m");
	b.addElements(add.get(), true, "create element inet t m");
	b.deleteElements(del.get(), "delete element inet t m");
	auto msgs = encode(b);
	REQUIRE(msgs.size() == 6);

	CHECK(msgs[1].type() == NFT_MSG_NEWSET);
	CHECK(msgs[1].flags() == (kAck | NLM_F_CREATE));
	SetPtr s(nftnl_set_alloc());
	REQUIRE(nftnl_set_nlmsg_parse(msgs[1].nlh(), s.get()) == 0);
	CHECK(std::string(nftnl_set_get_str(s.get(), NFTNL_SET_NAME)) == "m");
	CHECK(std::string(nftnl_set_get_str(s.get(), NFTNL_SET_TABLE)) == "t");
	CHECK(nftnl_set_get_u32(s.get(), NFTNL_SET_KEY_LEN) == 4);
	CHECK(nftnl_set_get_u32(s.get(), NFTNL_SET_FLAGS) == NFT_SET_MAP);
	CHECK(nftnl_set_get_u32(s.get(), NFTNL_SET_DATA_TYPE) == NFT_DATA_VERDICT);

	CHECK(msgs[2].type() == NFT_MSG_NEWSETELEM);
	CHECK(msgs[2].flags() == (kAck | NLM_F_CREATE));
	CHECK(msgs[3].type() == NFT_MSG_NEWSETELEM);
	CHECK(msgs[3].flags() == (kAck | NLM_F_CREATE | NLM_F_EXCL));
	CHECK(msgs[4].type() == NFT_MSG_DELSETELEM);
	CHECK(msgs[4].flags() == kAck);

	SetPtr parsed;
	auto keys = elementKeys(msgs[3], parsed);
	CHECK(keys == Keys{ ipKey(1), ipKey(2) });
	CHECK(std::string(nftnl_set_get_str(parsed.get(), NFTNL_SET_NAME)) == "m");
	CHECK(std::string(nftnl_set_get_str(parsed.get(), NFTNL_SET_TABLE)) == "t");

	/* The verdicts came through: jump c, jump d. */
	std::vector<std::string> chains;
	nftnl_set_elem_foreach(
		parsed.get(),
		[](nftnl_set_elem *e, void *data) {
			CHECK(static_cast<int>(nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT)) ==
			      NFT_JUMP);
			static_cast<std::vector<std::string> *>(data)->push_back(
				nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN));
			return 0;
		},
		&chains);
	CHECK(chains == std::vector<std::string>{ "c", "d" });

	CHECK(elementKeys(msgs[4], parsed) == Keys{ ipKey(3) });
}

TEST_CASE("a long element list is split at 64 KiB into operations of its own")
{
	constexpr std::uint32_t n = 12000;
	SetPtr add = elementsOf("t", "s");
	for (std::uint32_t i = 0; i < n; ++i)
		addElement(add.get(), ipKey(i));

	Batch b;
	b.addElements(add.get(), true, "add element inet t s");
	auto msgs = encode(b);
	REQUIRE(msgs.size() > 3);
	CHECK(b.size() == msgs.size() - 2);

	std::vector<std::vector<std::uint8_t>> all;
	for (std::size_t i = 1; i + 1 < msgs.size(); ++i) {
		CHECK(msgs[i].type() == NFT_MSG_NEWSETELEM);
		CHECK(msgs[i].flags() == (kAck | NLM_F_CREATE | NLM_F_EXCL));
		CHECK(msgs[i].nlh()->nlmsg_len < 64 * 1024 + 1024);
		SetPtr parsed;
		auto keys = elementKeys(msgs[i], parsed);
		CHECK(!keys.empty());
		all.insert(all.end(), keys.begin(), keys.end());
	}
	REQUIRE(all.size() == n);
	for (std::uint32_t i = 0; i < n; ++i)
		REQUIRE(all[i] == ipKey(i));
}

TEST_CASE("tens of thousands of operations span pages intact")
{
	constexpr std::uint32_t n = 20000;
	Batch b(7);
	for (std::uint32_t i = 0; i < n; ++i) {
		SetPtr one = elementsOf("t", "s");
		addElement(one.get(), ipKey(i));
		b.addElements(one.get(), true, "add element inet t s { " + std::to_string(i) + " }");
	}
	CHECK(b.size() == n);

	auto msgs = encode(b);
	REQUIRE(msgs.size() == n + 2);
	CHECK(beginGenid(msgs[0]) == 7u);

	std::set<std::uint32_t> seqs;
	for (std::uint32_t i = 0; i < n; ++i) {
		const Message &m = msgs[i + 1];
		REQUIRE(m.type() == NFT_MSG_NEWSETELEM);
		REQUIRE(m.flags() == (kAck | NLM_F_CREATE | NLM_F_EXCL));
		SetPtr parsed;
		REQUIRE(elementKeys(m, parsed) == Keys{ ipKey(i) });
		seqs.insert(m.seq());
	}
	seqs.insert(msgs.front().seq());
	seqs.insert(msgs.back().seq());
	CHECK(seqs.size() == n + 2);
}

TEST_CASE("sequence numbers are unique within and across batches")
{
	std::set<std::uint32_t> seqs;
	std::size_t count = 0;
	for (int round = 0; round < 3; ++round) {
		Batch b(round == 1 ? std::optional<std::uint32_t>(5) : std::nullopt);
		b.addTable(makeTable("t").get(), false, "add table inet t");
		b.addChain(makeChain("t", "c").get(), false, "add chain inet t c");
		b.flushChain(NFPROTO_INET, "t", "c", "flush chain inet t c");
		for (const Message &m : encode(b)) {
			seqs.insert(m.seq());
			++count;
		}
	}
	CHECK(count == 15);
	CHECK(seqs.size() == count);
}

TEST_CASE("an empty element set adds no operation")
{
	Batch b;
	SetPtr none = elementsOf("t", "s");
	b.addElements(none.get(), true, "add element inet t s");
	b.deleteElements(none.get(), "delete element inet t s");
	CHECK(b.empty());
	CHECK(encode(b).size() == 2);
}

TEST_CASE("a batch moves with its operations")
{
	Batch a(3);
	a.addTable(makeTable("t").get(), false, "add table inet t");
	auto bytes = a.encoded();

	Batch b(std::move(a));
	CHECK(b.size() == 1);
	CHECK(b.encoded() == bytes);

	Batch c;
	c = std::move(b);
	CHECK(c.size() == 1);
	CHECK(c.encoded() == bytes);
}
