/* SPDX-License-Identifier: Apache-2.0 */
/* The queries against the kernel, in the private network namespace of this executable. */
#include <cerrno>

#include "helpers.hpp"

using namespace nftpm::nft;
using namespace nftpm::nft::test;

namespace {

std::vector<std::uint8_t> keyOf(nftnl_set_elem *e)
{
	std::uint32_t len = 0;
	const auto *k = static_cast<const std::uint8_t *>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len));
	return { k, k + len };
}

template<typename T>
int errnumOf(const Result<T> &r)
{
	return r ? 0 : r.error().errnum;
}

} /* namespace */

TEST_CASE("missing tables, chains and sets are ENOENT from every query")
{
	Socket s = openSocket();
	createSkeleton(s, "q1");

	CHECK(errnumOf(getTable(s, kInet, "nope")) == ENOENT);
	CHECK(errnumOf(getChain(s, kInet, "q1", "nope")) == ENOENT);
	CHECK(errnumOf(getChain(s, kInet, "nope", "c")) == ENOENT);
	CHECK(errnumOf(getSet(s, kInet, "q1", "nope")) == ENOENT);
	CHECK(errnumOf(getRules(s, kInet, "q1", "nope")) == ENOENT);
	CHECK(errnumOf(getRules(s, kInet, "nope", "c")) == ENOENT);
	CHECK(errnumOf(dumpChains(s, kInet, "nope")) == ENOENT);
	CHECK(errnumOf(dumpElements(s, kInet, "q1", "nope")) == ENOENT);
	CHECK(errnumOf(dumpElements(s, kInet, "nope", "s")) == ENOENT);
	/* A missing set is not a missing element. */
	CHECK(errnumOf(getElements(s, kInet, "q1", "nope", { ipKey(1) })) == ENOENT);
	CHECK(errnumOf(getElements(s, kInet, "nope", "m", { ipKey(1) })) == ENOENT);

	/* The other family's table of the same name is another table. */
	CHECK(errnumOf(getTable(s, NFPROTO_IPV4, "q1")) == ENOENT);

	auto e = getTable(s, kInet, "nope");
	CHECK(e.error().operation == "list table inet nope");

	/* The socket stays usable after errors. */
	CHECK(getTable(s, kInet, "q1"));
	CHECK(getSet(s, kInet, "q1", "m"));
}

TEST_CASE("getElements: present keys are elements, absent keys are nullptr, in key order")
{
	Socket s = openSocket();
	createSkeleton(s, "q2");

	/* Even keys are present: 150 lookups take several pipelined rounds. */
	constexpr std::uint32_t n = 150;
	{
		Batch b;
		SetPtr e = elementsOf("q2", "m");
		for (std::uint32_t i = 0; i < n; i += 2)
			addElement(e.get(), ipKey(i), "c");
		b.addElements(e.get(), true, "add element inet q2 m");
		commitOk(s, b);
	}

	std::vector<std::vector<std::uint8_t>> keys;
	for (std::uint32_t i = 0; i < n; ++i)
		keys.push_back(ipKey(i));
	auto got = getElements(s, kInet, "q2", "m", keys);
	REQUIRE_MESSAGE(got, (got ? "" : got.error().message()));
	REQUIRE(got->size() == n);
	for (std::uint32_t i = 0; i < n; ++i) {
		CAPTURE(i);
		nftnl_set_elem *e = (*got)[i].get();
		if (i % 2) {
			CHECK(e == nullptr);
			continue;
		}
		REQUIRE(e != nullptr);
		CHECK(keyOf(e) == keys[i]);
		CHECK(static_cast<int>(nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT)) == NFT_JUMP);
		CHECK(std::string(nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN)) == "c");
	}

	auto none = getElements(s, kInet, "q2", "m", {});
	REQUIRE(none);
	CHECK(none->empty());

	auto bad = getElements(s, kInet, "q2", "m", { {} });
	CHECK(errnumOf(bad) == EINVAL);

	/* Requests after a lookup see no stale answers. */
	CHECK(getSet(s, kInet, "q2", "m"));
	CHECK(getGeneration(s));
}

TEST_CASE("dumps: rules of one chain, chains of one table, elements of one set")
{
	Socket s = openSocket();
	createSkeleton(s, "q3");
	createSkeleton(s, "q3other");
	{
		Batch b;
		b.addChain(makeChain("q3", "d").get(), true, "add chain inet q3 d");
		b.addChain(makeBaseChain("q3", "in").get(), true, "add chain inet q3 in");
		for (int i = 0; i < 3; ++i)
			b.addRule(makeCounterRule("q3", "d").get(), "add rule inet q3 d counter");
		b.addRule(makeCounterRule("q3", "c").get(), "add rule inet q3 c counter");
		b.addRule(makeCounterRule("q3other", "c").get(), "add rule inet q3other c counter");
		SetPtr e = elementsOf("q3", "s");
		for (std::uint32_t i = 0; i < 1000; ++i)
			addElement(e.get(), ipKey(i));
		b.addElements(e.get(), true, "add element inet q3 s");
		commitOk(s, b);
	}

	auto rules = getRules(s, kInet, "q3", "d");
	REQUIRE(rules);
	REQUIRE(rules->size() == 3);
	/* Appended in order: handles grow. */
	std::uint64_t last = 0;
	for (const RulePtr &r : *rules) {
		CHECK(std::string(nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN)) == "d");
		std::uint64_t h = nftnl_rule_get_u64(r.get(), NFTNL_RULE_HANDLE);
		CHECK(h > last);
		last = h;
	}
	CHECK(getRules(s, kInet, "q3", "c")->size() == 1);

	auto chains = dumpChains(s, kInet, "q3");
	REQUIRE(chains);
	std::vector<std::string> names;
	for (const ChainPtr &c : *chains) {
		CHECK(std::string(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE)) == "q3");
		names.emplace_back(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME));
	}
	std::sort(names.begin(), names.end());
	CHECK(names == std::vector<std::string>{ "c", "d", "in" });

	auto elems = dumpElements(s, kInet, "q3", "s");
	REQUIRE(elems);
	CHECK(elems->size() == 1000);
	std::vector<bool> seen(1000);
	for (const SetElemPtr &e : *elems) {
		auto k = keyOf(e.get());
		REQUIRE(k.size() == 4);
		std::uint32_t n = (std::uint32_t(k[2]) << 8 | k[3]);
		REQUIRE(n < 1000);
		seen[n] = true;
	}
	CHECK(std::count(seen.begin(), seen.end(), true) == 1000);

	auto empty = dumpElements(s, kInet, "q3", "m");
	REQUIRE(empty);
	CHECK(empty->empty());
}

TEST_CASE("the generation moves with every committed batch")
{
	Socket s = openSocket();
	std::uint32_t g0 = generation(s);
	CHECK(generation(s) == g0);
	createSkeleton(s, "q4");
	std::uint32_t g1 = generation(s);
	CHECK(g1 != g0);
}
