/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading kernel state. Every function costs one request and does not grow
 * with the number of containers on the host, except the explicitly named
 * dumps (used by GC and `nft-portmap list`, which may walk our own table).
 * Missing objects are Error{ENOENT}.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nft/error.hpp"
#include "nft/handles.hpp"
#include "nft/socket.hpp"

namespace nftpm::nft {

/* NFT_MSG_GETGEN: the ruleset generation, for Batch's compare-and-swap. */
[[nodiscard]] Result<std::uint32_t> getGeneration(Socket &s);

/* NFT_MSG_GETTABLE of one table. */
[[nodiscard]] Result<TablePtr> getTable(Socket &s, std::uint16_t family, const std::string &table);

/* NFT_MSG_GETCHAIN of one chain (hash lookup in the kernel). */
[[nodiscard]] Result<ChainPtr> getChain(Socket &s, std::uint16_t family, const std::string &table,
					const std::string &chain);

/*
 * Dump of the rules of one chain (the kernel looks the chain up by name).
 * The kernel answers an empty dump for a missing chain, so an empty answer
 * costs one GETCHAIN more to tell "no rules" from ENOENT.
 */
[[nodiscard]] Result<std::vector<RulePtr>> getRules(Socket &s, std::uint16_t family,
						    const std::string &table, const std::string &chain);

/*
 * Dump of every chain of one table (GC, list). The kernel filters chain
 * dumps by family only, so this walks every chain of the family; an empty
 * answer costs one GETTABLE more (ENOENT for a missing table).
 */
[[nodiscard]] Result<std::vector<ChainPtr>> dumpChains(Socket &s, std::uint16_t family,
						       const std::string &table);

/* NFT_MSG_GETSET of one named set. */
[[nodiscard]] Result<SetPtr> getSet(Socket &s, std::uint16_t family, const std::string &table,
				    const std::string &set);

/*
 * NFT_MSG_GETSETELEM for each key (raw key bytes as the kernel stores them,
 * concatenation fields padded to 4 bytes). The result is aligned with keys:
 * nullptr where the element does not exist; a missing set or table is
 * Error{ENOENT}. The requests are pipelined (one sendmsg() per 64 keys);
 * element expressions (per-element counters) are not carried over.
 */
[[nodiscard]] Result<std::vector<SetElemPtr>>
getElements(Socket &s, std::uint16_t family, const std::string &table, const std::string &set,
	    const std::vector<std::vector<std::uint8_t>> &keys);

/* Dump of every element of one set (GC, list). */
[[nodiscard]] Result<std::vector<SetElemPtr>> dumpElements(Socket &s, std::uint16_t family,
							   const std::string &table,
							   const std::string &set);

} /* namespace nftpm::nft */
