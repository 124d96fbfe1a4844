/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flushUdpByDestinationPort() against the real conntrack table of this
 * test's own network namespace.
 */
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "ct_testing.hpp"
#include "sys/conntrack.hpp"
#include "sys/conntrack_msg.hpp"

using namespace nftpm;
using namespace cttest;
using sys::ctmsg::DumpFilter;

namespace {

unsigned flushOk(Family family, const std::vector<std::uint16_t> &ports, DumpFilter filter = DumpFilter::Kernel)
{
	auto n = sys::ctmsg::flushUdp(family, ports, filter);
	std::string why = n ? std::string() : n.error();
	INFO(why);
	REQUIRE(n);
	return *n;
}

double microseconds(std::chrono::steady_clock::duration d)
{
	return std::chrono::duration<double, std::micro>(d).count();
}

struct Cost {
	double wall; /* microseconds */
	double cpu;  /* microseconds of this process, user and kernel */
};

double cpuMicroseconds()
{
	timespec t{};
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

/*
 * Medians over reps calls of f. Both: on a loaded machine the wall time
 * mostly measures the wait for a CPU, the CPU time what a call costs.
 */
template<typename F>
Cost medianCost(int reps, F &&f)
{
	std::vector<double> wall, cpu;
	for (int i = 0; i < reps; i++) {
		auto start = std::chrono::steady_clock::now();
		double cpuStart = cpuMicroseconds();
		f();
		cpu.push_back(cpuMicroseconds() - cpuStart);
		wall.push_back(microseconds(std::chrono::steady_clock::now() - start));
	}
	std::sort(wall.begin(), wall.end());
	std::sort(cpu.begin(), cpu.end());
	return { wall[wall.size() / 2], cpu[cpu.size() / 2] };
}

} /* namespace */

TEST_CASE("real UDP flows: the listed port of the family goes, everything else stays")
{
	trackConnections();
	flushAll();
	const std::uint16_t port = 40053, other = 40054;
	for (int i = 0; i < 3; i++)
		sendUdp(Family::IPv4, port);
	sendUdp(Family::IPv4, other);
	sendUdp(Family::IPv6, port);
	sendUdp(Family::IPv6, port);
	TcpFlow tcp(port);

	REQUIRE(count(Family::IPv4, IPPROTO_UDP, port) == 3);
	REQUIRE(count(Family::IPv4, IPPROTO_UDP, other) == 1);
	REQUIRE(count(Family::IPv6, IPPROTO_UDP, port) == 2);
	REQUIRE(count(Family::IPv4, IPPROTO_TCP, port) == 1);

	/* The public entry point. */
	auto n = sys::flushUdpByDestinationPort(Family::IPv4, { port });
	REQUIRE(n);
	CHECK(*n == 3);
	CHECK(count(Family::IPv4, IPPROTO_UDP, port) == 0);
	CHECK(count(Family::IPv4, IPPROTO_UDP, other) == 1);
	CHECK(count(Family::IPv6, IPPROTO_UDP, port) == 2);
	CHECK(count(Family::IPv4, IPPROTO_TCP, port) == 1);

	/* Nothing left to delete: still a success. */
	CHECK(flushOk(Family::IPv4, { port }) == 0);

	/* The other family, with a duplicated port. */
	CHECK(flushOk(Family::IPv6, { port, port }) == 2);
	CHECK(count(Family::IPv6, IPPROTO_UDP, port) == 0);
	CHECK(count(Family::IPv4, IPPROTO_UDP, other) == 1);
	CHECK(count(Family::IPv4, IPPROTO_TCP, port) == 1);
}

TEST_CASE("several ports in one call; a port that is only a source port stays")
{
	for (DumpFilter filter : { DumpFilter::Kernel, DumpFilter::Callback }) {
		CAPTURE(static_cast<int>(filter));
		flushAll();
		{
			Creator c;
			c.add(IPPROTO_UDP, "10.1.0.1", "10.2.0.1", 1000, 100);
			c.add(IPPROTO_UDP, "10.1.0.2", "10.2.0.2", 1001, 100);
			c.add(IPPROTO_UDP, "10.1.0.1", "10.2.0.1", 1000, 200);
			c.add(IPPROTO_UDP, "10.1.0.1", "10.2.0.1", 1000, 300);
			/* 300 as the ORIGINAL source port: its reply goes to 300. */
			c.add(IPPROTO_UDP, "10.1.0.1", "10.2.0.1", 300, 999);
			c.add(IPPROTO_TCP, "10.1.0.1", "10.2.0.1", 1000, 100);
			c.add(IPPROTO_UDP, "fd00::1", "fd00::2", 1000, 100);
		}
		CHECK(flushOk(Family::IPv4, { 300, 100, 4242 }, filter) == 3);
		CHECK(count(Family::IPv4, IPPROTO_UDP, 100) == 0);
		CHECK(count(Family::IPv4, IPPROTO_UDP, 300) == 0);
		CHECK(count(Family::IPv4, IPPROTO_UDP, 200) == 1);
		CHECK(count(Family::IPv4, IPPROTO_UDP, 999) == 1);
		CHECK(count(Family::IPv4, IPPROTO_TCP, 100) == 1);
		CHECK(count(Family::IPv6, IPPROTO_UDP, 100) == 1);
		CHECK(listEntries().size() == 4);
	}
}

TEST_CASE("entries of any conntrack zone are deleted")
{
	for (DumpFilter filter : { DumpFilter::Kernel, DumpFilter::Callback }) {
		CAPTURE(static_cast<int>(filter));
		flushAll();
		{
			Creator c;
			c.add(IPPROTO_UDP, "10.1.0.1", "10.2.0.1", 1000, 53, 7);
			c.add(IPPROTO_UDP, "fd00::1", "fd00::2", 1000, 53, 9);
			c.add(IPPROTO_UDP, "10.1.0.1", "10.2.0.1", 1000, 53);
			c.add(IPPROTO_UDP, "10.1.0.1", "10.2.0.1", 1000, 54, 7);
		}
		auto zones = listEntries();
		REQUIRE(std::count_if(zones.begin(), zones.end(), [](const Entry &e) { return e.zone == 7; }) == 2);

		CHECK(flushOk(Family::IPv4, { 53 }, filter) == 2);
		CHECK(flushOk(Family::IPv6, { 53 }, filter) == 1);
		auto left = listEntries();
		REQUIRE(left.size() == 1);
		CHECK(left[0].dport == 54);
		CHECK(left[0].zone == 7);
	}
}

TEST_CASE("one call on an empty table is cheap")
{
	flushAll();
	CHECK(flushOk(Family::IPv4, { 53 }) == 0);
	Cost empty = medianCost(50, [] { CHECK(flushOk(Family::IPv4, { 53 }) == 0); });

	/*
	 * One unrelated entry: now the namespace's count is not 0 and the
	 * dump has to walk the kernel's whole (shared) hash table.
	 */
	{
		Creator c;
		c.add(IPPROTO_TCP, "10.1.0.1", "10.2.0.1", 1000, 443);
	}
	Cost one = medianCost(20, [] { CHECK(flushOk(Family::IPv4, { 53 }) == 0); });
	Cost three = medianCost(20, [] { CHECK(flushOk(Family::IPv6, { 53, 443, 5353 }) == 0); });
	CHECK(listEntries().size() == 1);

	std::fprintf(stderr,
		     "conntrack flush (median wall/cpu us): empty table %.0f/%.0f; one unrelated entry: "
		     "one port %.0f/%.0f, three ports %.0f/%.0f\n",
		     empty.wall, empty.cpu, one.wall, one.cpu, three.wall, three.cpu);
	/* Orders of magnitude above the measured cost: catches a sleep or a loop, not noise. */
	CHECK(empty.wall < 5000);
	CHECK(one.wall < 100000);
	CHECK(three.wall < 100000);
}

TEST_CASE("a big table: only the matches are deleted; kernel filter against callback filter")
{
	flushAll();
	static constexpr int kTcp = 20000, kOtherUdp = 2000, kStale = 50;
	{
		Creator c;
		char src[32];
		for (int i = 0; i < kTcp; i++) {
			std::snprintf(src, sizeof(src), "10.3.%d.%d", i / 250, i % 250 + 1);
			c.add(IPPROTO_TCP, src, "10.9.0.1", static_cast<std::uint16_t>(1024 + i % 50000), 443);
		}
		for (int i = 0; i < kOtherUdp; i++) {
			std::snprintf(src, sizeof(src), "10.4.%d.%d", i / 250, i % 250 + 1);
			c.add(IPPROTO_UDP, src, "10.9.0.1", 5000, static_cast<std::uint16_t>(6000 + i % 100));
		}
	}
	auto addStale = [] {
		Creator c;
		char src[32];
		for (int i = 0; i < kStale; i++) {
			std::snprintf(src, sizeof(src), "10.5.0.%d", i + 1);
			c.add(IPPROTO_UDP, src, "10.9.0.1", 5000, i % 2 ? 53 : 5353);
		}
	};

	for (DumpFilter filter : { DumpFilter::Kernel, DumpFilter::Callback }) {
		CAPTURE(static_cast<int>(filter));
		const char *name = filter == DumpFilter::Kernel ? "kernel filter" : "callback filter";

		addStale();
		Cost withStale = medianCost(1, [filter] { CHECK(flushOk(Family::IPv4, { 53, 5353 }, filter) == kStale); });
		Cost none = medianCost(5, [filter] { CHECK(flushOk(Family::IPv4, { 53, 5353 }, filter) == 0); });
		Cost onePort = medianCost(5, [filter] { CHECK(flushOk(Family::IPv4, { 53 }, filter) == 0); });

		std::fprintf(stderr,
			     "conntrack flush, %d tcp + %d other udp, %s (wall/cpu us): %d stale deleted %.0f/%.0f; "
			     "none to delete: two ports %.0f/%.0f, one port %.0f/%.0f\n",
			     kTcp, kOtherUdp, name, kStale, withStale.wall, withStale.cpu, none.wall, none.cpu,
			     onePort.wall, onePort.cpu);
		CHECK(count(Family::IPv4, IPPROTO_UDP, 53) == 0);
		CHECK(count(Family::IPv4, IPPROTO_UDP, 5353) == 0);
		CHECK(listEntries().size() == kTcp + kOtherUdp);
	}
}
