/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Builders of small libnftnl objects for the tests of the netlink layer
 * (unit tests parse them back, kernel tests commit them).
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <libnftnl/expr.h>

#include "nft/handles.hpp"

namespace nftpm::nft::test {

inline constexpr std::uint16_t kInet = NFPROTO_INET;

/* table inet <name> */
inline TablePtr makeTable(const std::string &name, std::uint16_t family = kInet)
{
	TablePtr t(nftnl_table_alloc());
	nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, family);
	nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, name.c_str());
	return t;
}

/* chain inet <table> <name> { } -- a regular chain */
inline ChainPtr makeChain(const std::string &table, const std::string &name,
			  std::uint16_t family = kInet)
{
	ChainPtr c(nftnl_chain_alloc());
	nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, family);
	nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
	nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, name.c_str());
	return c;
}

/* chain inet <table> <name> { type filter hook input priority 0; policy accept; } */
inline ChainPtr makeBaseChain(const std::string &table, const std::string &name)
{
	ChainPtr c = makeChain(table, name);
	nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, "filter");
	nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, NF_INET_LOCAL_IN);
	nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, 0);
	nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
	return c;
}

/* add rule inet <table> <chain> counter */
inline RulePtr makeCounterRule(const std::string &table, const std::string &chain)
{
	RulePtr r(nftnl_rule_alloc());
	nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, kInet);
	nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.c_str());
	nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain.c_str());
	nftnl_rule_add_expr(r.get(), nftnl_expr_alloc("counter"));
	return r;
}

/* set inet <table> <name> { type ipv4_addr; }, or a map ipv4_addr : verdict */
inline SetPtr makeSet(const std::string &table, const std::string &name, bool verdictMap,
		      std::uint32_t id = 1)
{
	SetPtr s(nftnl_set_alloc());
	nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, kInet);
	nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
	nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
	nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
	nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, 7); /* nft's ipv4_addr */
	nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, 4);
	if (verdictMap) {
		nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, NFT_SET_MAP);
		nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
	}
	return s;
}

/* The key of IPv4 address 10.0.x.y for n = x * 256 + y: network byte order. */
inline std::vector<std::uint8_t> ipKey(std::uint32_t n)
{
	std::uint32_t be = htonl(0x0a000000u + n);
	const auto *p = reinterpret_cast<const std::uint8_t *>(&be);
	return { p, p + 4 };
}

/* Adds "<key>" (set) or "<key> : jump <chain>" (map, chain not empty) to s. */
inline void addElement(nftnl_set *s, const std::vector<std::uint8_t> &key,
		       const std::string &jumpTo = {})
{
	SetElemPtr e(nftnl_set_elem_alloc());
	nftnl_set_elem_set(e.get(), NFTNL_SET_ELEM_KEY, key.data(),
			   static_cast<std::uint32_t>(key.size()));
	if (!jumpTo.empty()) {
		nftnl_set_elem_set_u32(e.get(), NFTNL_SET_ELEM_VERDICT,
				       static_cast<std::uint32_t>(NFT_JUMP));
		nftnl_set_elem_set_str(e.get(), NFTNL_SET_ELEM_CHAIN, jumpTo.c_str());
	}
	nftnl_set_elem_add(s, e.release());
}

/* A set object carrying only names (and elements added later): for element operations. */
inline SetPtr elementsOf(const std::string &table, const std::string &set)
{
	SetPtr s(nftnl_set_alloc());
	nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, kInet);
	nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
	nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.c_str());
	return s;
}

} /* namespace nftpm::nft::test */
