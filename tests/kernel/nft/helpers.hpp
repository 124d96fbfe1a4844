/* SPDX-License-Identifier: Apache-2.0 */
/* Shared bits of the kernel tests of the netlink layer (run in a private netns). */
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "../../unit/nft/objects.hpp"
#include "nft/batch.hpp"
#include "nft/query.hpp"
#include "nft/socket.hpp"

namespace nftpm::nft::test {

inline Socket openSocket()
{
	auto s = Socket::open();
	REQUIRE_MESSAGE(s, (s ? "" : s.error().message()));
	return std::move(s).value();
}

inline void commitOk(Socket &s, Batch &b)
{
	auto r = b.commit(s);
	REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
}

inline std::uint32_t generation(Socket &s)
{
	auto g = getGeneration(s);
	REQUIRE_MESSAGE(g, (g ? "" : g.error().message()));
	return *g;
}

/* "table inet <t> { chain c; map m { ipv4_addr : verdict }; set s { ipv4_addr } }" */
inline void createSkeleton(Socket &s, const std::string &t)
{
	Batch b;
	b.addTable(makeTable(t).get(), true, "add table inet " + t);
	b.addChain(makeChain(t, "c").get(), true, "add chain inet " + t + " c");
	b.addSet(makeSet(t, "m", true, 1).get(), "add map inet " + t + " m");
	b.addSet(makeSet(t, "s", false, 2).get(), "add set inet " + t + " s");
	commitOk(s, b);
}

template<typename F>
double millis(F &&f)
{
	auto start = std::chrono::steady_clock::now();
	f();
	return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
		.count();
}

} /* namespace nftpm::nft::test */
