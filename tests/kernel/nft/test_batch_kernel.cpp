/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Batch::commit() against the kernel, in the private network namespace of
 * this executable: atomicity, which operation a refusal names, the
 * generation compare-and-swap, and batches of tens of thousands of answers.
 */
#include <cerrno>
#include <cstdio>

#include <sys/socket.h>

#include "helpers.hpp"

using namespace nftpm::nft;
using namespace nftpm::nft::test;

TEST_CASE("a batch creates a table, chains, sets, elements and rules that read back")
{
	Socket s = openSocket();
	std::uint32_t before = generation(s);

	Batch b;
	b.addTable(makeTable("b1").get(), true, "add table inet b1");
	b.addChain(makeBaseChain("b1", "in").get(), true, "add chain inet b1 in");
	b.addChain(makeChain("b1", "c").get(), true, "add chain inet b1 c");
	b.addSet(makeSet("b1", "m", true).get(), "add map inet b1 m");
	b.addRule(makeCounterRule("b1", "c").get(), "add rule inet b1 c counter");
	b.addRule(makeCounterRule("b1", "c").get(), "add rule inet b1 c counter");
	SetPtr e = elementsOf("b1", "m");
	addElement(e.get(), ipKey(1), "c");
	addElement(e.get(), ipKey(2), "c");
	b.addElements(e.get(), true, "add element inet b1 m");
	commitOk(s, b);

	CHECK(generation(s) != before);

	auto t = getTable(s, kInet, "b1");
	REQUIRE(t);
	CHECK(std::string(nftnl_table_get_str(t->get(), NFTNL_TABLE_NAME)) == "b1");

	auto in = getChain(s, kInet, "b1", "in");
	REQUIRE(in);
	CHECK(nftnl_chain_get_u32(in->get(), NFTNL_CHAIN_HOOKNUM) == NF_INET_LOCAL_IN);
	CHECK(std::string(nftnl_chain_get_str(in->get(), NFTNL_CHAIN_TYPE)) == "filter");

	auto m = getSet(s, kInet, "b1", "m");
	REQUIRE(m);
	CHECK(nftnl_set_get_u32(m->get(), NFTNL_SET_KEY_LEN) == 4);
	CHECK((nftnl_set_get_u32(m->get(), NFTNL_SET_FLAGS) & NFT_SET_MAP) != 0);

	auto rules = getRules(s, kInet, "b1", "c");
	REQUIRE(rules);
	CHECK(rules->size() == 2);

	auto elems = dumpElements(s, kInet, "b1", "m");
	REQUIRE(elems);
	CHECK(elems->size() == 2);
}

TEST_CASE("a refused operation is named, and nothing of its batch is applied")
{
	Socket s = openSocket();
	createSkeleton(s, "b2");
	std::uint32_t before = generation(s);

	Batch b;
	b.addChain(makeChain("b2", "fresh").get(), true, "add chain inet b2 fresh");
	SetPtr e = elementsOf("b2", "s");
	addElement(e.get(), ipKey(7));
	b.addElements(e.get(), true, "add element inet b2 s { 10.0.0.7 }");
	b.addRule(makeCounterRule("b2", "nochain").get(), "add rule inet b2 nochain counter");
	b.addChain(makeChain("b2", "later").get(), true, "add chain inet b2 later");

	auto r = b.commit(s);
	REQUIRE(!r);
	CHECK(r.error().errnum == ENOENT);
	CHECK(r.error().operation == "add rule inet b2 nochain counter");
	MESSAGE(r.error().message());

	/* All or nothing: the operations the kernel accepted are not applied either. */
	CHECK(generation(s) == before);
	auto fresh = getChain(s, kInet, "b2", "fresh");
	REQUIRE(!fresh);
	CHECK(fresh.error().errnum == ENOENT);
	CHECK(getChain(s, kInet, "b2", "later").error().errnum == ENOENT);
	auto elems = dumpElements(s, kInet, "b2", "s");
	REQUIRE(elems);
	CHECK(elems->empty());
}

TEST_CASE("an exclusive element that exists is EEXIST for that element only")
{
	Socket s = openSocket();
	createSkeleton(s, "b3");
	{
		Batch b;
		SetPtr e = elementsOf("b3", "m");
		addElement(e.get(), ipKey(1), "c");
		b.addElements(e.get(), true, "add element inet b3 m { 10.0.0.1 : jump c }");
		commitOk(s, b);
	}

	/* Not exclusive: adding the same element again is fine. */
	{
		Batch b;
		SetPtr e = elementsOf("b3", "m");
		addElement(e.get(), ipKey(1), "c");
		b.addElements(e.get(), false, "add element inet b3 m { 10.0.0.1 : jump c }");
		commitOk(s, b);
	}

	Batch b;
	SetPtr two = elementsOf("b3", "m");
	addElement(two.get(), ipKey(2), "c");
	b.addElements(two.get(), true, "add element inet b3 m { 10.0.0.2 : jump c }");
	SetPtr one = elementsOf("b3", "m");
	addElement(one.get(), ipKey(1), "c");
	b.addElements(one.get(), true, "add element inet b3 m { 10.0.0.1 : jump c }");

	auto r = b.commit(s);
	REQUIRE(!r);
	CHECK(r.error().errnum == EEXIST);
	CHECK(r.error().operation == "add element inet b3 m { 10.0.0.1 : jump c }");

	auto got = getElements(s, kInet, "b3", "m", { ipKey(1), ipKey(2) });
	REQUIRE(got);
	CHECK((*got)[0] != nullptr);
	CHECK((*got)[1] == nullptr);
}

TEST_CASE("a stale generation is ERESTART and changes nothing; the current one commits")
{
	Socket s = openSocket();
	createSkeleton(s, "b4");
	std::uint32_t seen = generation(s);

	/* Someone else changes the ruleset after we read it. */
	{
		Socket other = openSocket();
		Batch b;
		b.addChain(makeChain("b4", "theirs").get(), true, "add chain inet b4 theirs");
		commitOk(other, b);
	}

	Batch stale(seen);
	stale.addChain(makeChain("b4", "ours").get(), true, "add chain inet b4 ours");
	auto r = stale.commit(s);
	REQUIRE(!r);
	CHECK(r.error().errnum == ERESTART);
	CHECK(r.error().operation == "commit batch");
	MESSAGE(r.error().message());
	CHECK(getChain(s, kInet, "b4", "ours").error().errnum == ENOENT);

	/* Retry from a fresh read, as callers do. */
	Batch current(generation(s));
	current.addChain(makeChain("b4", "ours").get(), true, "add chain inet b4 ours");
	commitOk(s, current);
	CHECK(getChain(s, kInet, "b4", "ours"));
}

TEST_CASE("flush chain, delete elements, chains and tables")
{
	Socket s = openSocket();
	createSkeleton(s, "b5");
	{
		Batch b;
		b.addRule(makeCounterRule("b5", "c").get(), "add rule inet b5 c counter");
		b.addRule(makeCounterRule("b5", "c").get(), "add rule inet b5 c counter");
		SetPtr e = elementsOf("b5", "s");
		addElement(e.get(), ipKey(1));
		addElement(e.get(), ipKey(2));
		b.addElements(e.get(), true, "add element inet b5 s");
		commitOk(s, b);
	}
	REQUIRE(getRules(s, kInet, "b5", "c")->size() == 2);

	{
		Batch b;
		b.flushChain(kInet, "b5", "c", "flush chain inet b5 c");
		SetPtr e = elementsOf("b5", "s");
		addElement(e.get(), ipKey(2));
		b.deleteElements(e.get(), "delete element inet b5 s { 10.0.0.2 }");
		commitOk(s, b);
	}
	auto rules = getRules(s, kInet, "b5", "c");
	REQUIRE(rules);
	CHECK(rules->empty());
	CHECK(dumpElements(s, kInet, "b5", "s")->size() == 1);

	{
		Batch b;
		b.deleteChain(makeChain("b5", "c").get(), "delete chain inet b5 c");
		commitOk(s, b);
	}
	CHECK(getChain(s, kInet, "b5", "c").error().errnum == ENOENT);

	{
		Batch b;
		b.deleteTable(makeTable("b5").get(), "delete table inet b5");
		commitOk(s, b);
	}
	CHECK(getTable(s, kInet, "b5").error().errnum == ENOENT);

	/* Deleting what is gone names the operation. */
	Batch b;
	b.deleteTable(makeTable("b5").get(), "delete table inet b5");
	auto r = b.commit(s);
	REQUIRE(!r);
	CHECK(r.error().errnum == ENOENT);
	CHECK(r.error().operation == "delete table inet b5");
}

TEST_CASE("an empty batch commits without changing the generation")
{
	Socket s = openSocket();
	std::uint32_t before = generation(s);
	Batch b(before);
	REQUIRE(b.commit(s));
	CHECK(generation(s) == before);
}

TEST_CASE("20,000 element additions in one batch: every answer is read")
{
	constexpr std::uint32_t n = 20000;
	Socket s = openSocket();
	createSkeleton(s, "b6");

	/* One operation per element: 20,000 ACKs come back for one sendmsg(). */
	Batch b(generation(s));
	for (std::uint32_t i = 0; i < n; ++i) {
		SetPtr e = elementsOf("b6", "s");
		addElement(e.get(), ipKey(i));
		b.addElements(e.get(), true, "add element inet b6 s { " + std::to_string(i) + " }");
	}
	Result<void> r;
	double ms = millis([&] { r = b.commit(s); });
	REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
	std::printf("commit of %u one-element operations (%zu bytes): %.1f ms\n", n, b.bytes(), ms);

	auto all = dumpElements(s, kInet, "b6", "s");
	REQUIRE(all);
	CHECK(all->size() == n);

	/* The same number again, as one operation whose elements span several messages. */
	SetPtr every = elementsOf("b6", "s");
	for (std::uint32_t i = 0; i < n; ++i)
		addElement(every.get(), ipKey(i));
	Batch del;
	del.deleteElements(every.get(), "delete element inet b6 s");
	CHECK(del.size() > 1);
	ms = millis([&] { r = del.commit(s); });
	REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
	std::printf("commit of one deletion of %u elements in %zu messages: %.1f ms\n", n,
		    del.size(), ms);
	CHECK(dumpElements(s, kInet, "b6", "s")->empty());

	/* A refusal at the very end of a big batch is still found and named. */
	Batch late;
	for (std::uint32_t i = 0; i < n; ++i) {
		SetPtr e = elementsOf("b6", "s");
		addElement(e.get(), ipKey(i));
		late.addElements(e.get(), true, "add element inet b6 s { " + std::to_string(i) + " }");
	}
	late.addRule(makeCounterRule("b6", "nochain").get(), "add rule inet b6 nochain counter");
	r = late.commit(s);
	REQUIRE(!r);
	CHECK(r.error().operation == "add rule inet b6 nochain counter");
	CHECK(dumpElements(s, kInet, "b6", "s")->empty());
}

TEST_CASE("time of a one-element batch commit (printed, not asserted)")
{
	Socket s = openSocket();
	createSkeleton(s, "b7");

	constexpr int rounds = 50;
	double total = 0, best = 1e9;
	for (int i = 0; i < rounds; ++i) {
		Batch b;
		SetPtr e = elementsOf("b7", "s");
		addElement(e.get(), ipKey(1));
		if (i % 2 == 0)
			b.addElements(e.get(), true, "add element inet b7 s { 10.0.0.1 }");
		else
			b.deleteElements(e.get(), "delete element inet b7 s { 10.0.0.1 }");
		Result<void> r;
		double ms = millis([&] { r = b.commit(s); });
		REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
		total += ms;
		best = std::min(best, ms);
	}
	std::printf("one-element batch commit: mean %.3f ms, best %.3f ms over %d commits\n",
		    total / rounds, best, rounds);

	/* Every commit took effect: the last one deleted the element again. */
	auto got = getElements(s, kInet, "b7", "s", { ipKey(1) });
	REQUIRE(got);
	CHECK(got->front() == nullptr);
}

TEST_CASE("answers lost to a full receive buffer are reported, not waited for")
{
	constexpr std::uint32_t n = 20000;
	Socket s = openSocket();
	createSkeleton(s, "b8");

	auto fill = [&](Batch &b, bool add) {
		for (std::uint32_t i = 0; i < n; ++i) {
			SetPtr e = elementsOf("b8", "s");
			addElement(e.get(), ipKey(i));
			if (add)
				b.addElements(e.get(), true, "add element inet b8 s");
			else
				b.deleteElements(e.get(), "delete element inet b8 s");
		}
	};

	/* A first big commit sizes the buffer; then shrink it behind the socket's back. */
	Batch first;
	fill(first, true);
	commitOk(s, first);
	int tiny = 4096;
	REQUIRE(setsockopt(mnl_socket_get_fd(s.get()), SOL_SOCKET, SO_RCVBUFFORCE, &tiny,
			   sizeof(tiny)) == 0);

	Batch second;
	fill(second, false);
	Result<void> r;
	double ms = millis([&] { r = second.commit(s); });
	REQUIRE(!r);
	CHECK(r.error().errnum == ENOBUFS);
	std::printf("commit whose answers overflowed the receive buffer: failed after %.1f ms\n", ms);

	/* The socket is still good for the next exchange. */
	CHECK(getSet(s, kInet, "b8", "s"));
}
