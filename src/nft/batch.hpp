/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One nf_tables transaction: NFNL_MSG_BATCH_BEGIN, the operations, BATCH_END,
 * sent with one sendmsg() and applied by the kernel atomically or not at all.
 *
 * Every operation carries NLM_F_ACK and a description in nft syntax, so that
 * commit() can say exactly which operation the kernel refused. A batch built
 * with a generation id is a compare-and-swap: the kernel refuses it with
 * ERESTART when the ruleset changed since that generation was read.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/object.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "nft/error.hpp"
#include "nft/socket.hpp"

namespace nftpm::nft {

class Batch final
{
public:
	/* genid: NFNL_BATCH_GENID on BATCH_BEGIN (compare-and-swap); nullopt: none. */
	explicit Batch(std::optional<std::uint32_t> genid = std::nullopt);
	~Batch();
	Batch(const Batch &) = delete;
	Batch &operator=(const Batch &) = delete;
	/* A moved-from Batch may only be destroyed or assigned to. */
	Batch(Batch &&other) noexcept;
	Batch &operator=(Batch &&other) noexcept;

	/* NEWTABLE; exclusive adds NLM_F_EXCL (EEXIST if it exists). */
	void addTable(const nftnl_table *t, bool exclusive, std::string what);
	/* DELTABLE */
	void deleteTable(const nftnl_table *t, std::string what);
	/* NEWCHAIN (base or regular; the object says which). */
	void addChain(const nftnl_chain *c, bool exclusive, std::string what);
	/* DELCHAIN: the chain must be empty and unreferenced. */
	void deleteChain(const nftnl_chain *c, std::string what);
	/* NEWRULE, appended at the end of its chain. */
	void addRule(const nftnl_rule *r, std::string what);
	/* DELRULE with table and chain only: "flush chain <family> <table> <chain>". */
	void flushChain(std::uint16_t family, const std::string &table, const std::string &chain,
			std::string what);
	/* NEWSET (named, or anonymous when the set carries NFT_SET_ANONYMOUS). */
	void addSet(const nftnl_set *s, std::string what);
	/* NEWSETELEM for the elements attached to s; exclusive: NLM_F_EXCL. */
	void addElements(const nftnl_set *s, bool exclusive, std::string what);
	/* DELSETELEM for the elements attached to s. */
	void deleteElements(const nftnl_set *s, std::string what);
	/* NEWOBJ (a named stateful object); exclusive: NLM_F_EXCL. */
	void addObject(const nftnl_obj *o, bool exclusive, std::string what);
	/* DELOBJ by table, name and type. */
	void deleteObject(const nftnl_obj *o, std::string what);

	/* Number of operations (BEGIN and END not counted). */
	std::size_t size() const { return ops_.size(); }
	bool empty() const { return ops_.empty(); }
	/* Bytes of netlink messages built so far. */
	std::size_t bytes() const;

	/*
	 * Sends the batch and reads one answer per operation. On refusal, the
	 * error names the first refused operation's description; ERESTART means
	 * the generation changed (retry from the read).
	 */
	[[nodiscard]] Result<void> commit(Socket &socket);

	/* The encoded messages, BEGIN..END, for tests that parse them back. */
	std::vector<std::uint8_t> encoded() const;

private:
	struct Op {
		std::uint32_t seq;
		std::string what;
	};
	struct Impl;
	Impl *impl_;
	std::vector<Op> ops_;
};

} /* namespace nftpm::nft */
