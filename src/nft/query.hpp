/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading kernel state. Every function costs one request and does not grow
 * with the number of containers on the host, except the explicitly named
 * dumps (used by GC and `nft-portmap list`, which may walk our own table).
 * Missing objects are Error{ENOENT}.
 */
#pragma once

#include <cstdint>
#include <functional>
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

/* Dump of every set of one table (GC, skeleton repair: our table has few). */
[[nodiscard]] Result<std::vector<SetPtr>> dumpSets(Socket &s, std::uint16_t family,
						   const std::string &table);

/* NFT_MSG_GETOBJ of one named object of a type (NFT_OBJECT_*): a hash lookup in the kernel. */
[[nodiscard]] Result<ObjPtr> getObject(Socket &s, std::uint16_t family, const std::string &table,
				       std::uint32_t type, const std::string &name);

/* Dump of every object of one type in one table (GC, list). */
[[nodiscard]] Result<std::vector<ObjPtr>> dumpObjects(Socket &s, std::uint16_t family,
						      const std::string &table, std::uint32_t type);

/*
 * NFT_MSG_GETSETELEM for each key (raw key bytes as the kernel stores them,
 * concatenation fields padded to 4 bytes). The result is aligned with keys:
 * nullptr where the element does not exist; a missing set or table is
 * Error{ENOENT}. The requests are pipelined (one sendmsg() per 64 keys);
 * of element expressions, per-element counters are carried over.
 */
[[nodiscard]] Result<std::vector<SetElemPtr>>
getElements(Socket &s, std::uint16_t family, const std::string &table, const std::string &set,
	    const std::vector<std::vector<std::uint8_t>> &keys);

/* Dump of every element of one set (GC, list). */
[[nodiscard]] Result<std::vector<SetElemPtr>> dumpElements(Socket &s, std::uint16_t family,
							   const std::string &table,
							   const std::string &set);

/*
 * Request building and dumping shared by query.cpp and elements.cpp; not
 * meant for callers of the functions above.
 */
namespace detail {

/* A dump interrupted by a concurrent ruleset change (NLM_F_DUMP_INTR) is retried. */
inline constexpr int kDumpAttempts = 3;

/* "inet", "ip", ... as nft names the family, for error messages. */
std::string familyName(std::uint16_t family);

/* The nf_tables message type (NFT_MSG_*) of an answer. */
std::uint16_t messageType(const nlmsghdr *nlh);

/* A request message being built in a buffer of its own. */
class Request
{
public:
	Request(Socket &s, std::uint16_t type, std::uint16_t family, std::uint16_t flags);
	nlmsghdr *get() { return reinterpret_cast<nlmsghdr *>(buf_.data()); }
	const nlmsghdr *get() const { return reinterpret_cast<const nlmsghdr *>(buf_.data()); }

private:
	std::vector<char> buf_;
};

/*
 * Runs a dump, handing each message of replyType to take; starts over
 * (after reset) when the kernel flags the dump as interrupted.
 */
[[nodiscard]] Result<void> dump(Socket &s, const std::function<Request()> &makeRequest,
				std::uint16_t replyType, const std::string &what,
				const std::function<void()> &reset,
				const std::function<int(const nlmsghdr *)> &take);

/* A set object that names one set, the key of set and element requests. */
SetPtr setKey(std::uint16_t family, const std::string &table, const std::string &set);

} /* namespace detail */

} /* namespace nftpm::nft */
