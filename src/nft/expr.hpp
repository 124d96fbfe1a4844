/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rule expressions, one small function per kernel expression, each named
 * after the nft statement it is part of. The builders append to a rule; the
 * Reader walks a rule (built here or dumped by the kernel) and matches the
 * same shapes back, so a decoder reads like the builder that wrote it.
 *
 * Registers: NFT_REG_1..4 are the 16-byte registers, NFT_REG32_00..15 the
 * 4-byte views of the same storage (NFT_REG_1 == NFT_REG32_00..03). The
 * kernel dumps a register in the 16-byte name when it is aligned to one,
 * so the Reader compares registers by storage, not by number.
 *
 * Allocation failure of a libnftnl object aborts (as nft does): there is no
 * sensible recovery from it in a short-lived plugin.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <libnftnl/expr.h>
#include <libnftnl/rule.h>

namespace nftpm::nft::expr {

using Bytes = std::vector<std::uint8_t>;

/* Builders. Each appends exactly one expression to r. */

/* [ meta load <key> => reg <dreg> ]            e.g. meta l4proto, meta nfproto, iifname */
void meta(nftnl_rule *r, std::uint32_t key, std::uint32_t dreg);
/* [ payload load <len>b @ <base> header + <offset> => reg <dreg> ]   e.g. ip daddr, th dport */
void payload(nftnl_rule *r, std::uint32_t base, std::uint32_t offset, std::uint32_t len,
	     std::uint32_t dreg);
/* [ cmp <op> reg <sreg> <data> ]               the "== value" / "!= value" of a match */
void cmp(nftnl_rule *r, std::uint32_t sreg, std::uint32_t op, std::span<const std::uint8_t> data);
/* [ bitwise reg <reg> = ( reg <reg> & <mask> ) ^ 0 ]   the "/len" of a prefix match */
void bitwise(nftnl_rule *r, std::uint32_t reg, std::span<const std::uint8_t> mask);
/* [ immediate reg <dreg> <data> ]              a constant operand, e.g. the DNAT address */
void immediate(nftnl_rule *r, std::uint32_t dreg, std::span<const std::uint8_t> data);
/* [ immediate reg 0 <verdict> [-> <chain>] ]    accept, drop, return, jump <chain>, goto <chain> */
void verdict(nftnl_rule *r, int code, const std::string &chain = {});
/*
 * [ lookup reg <sreg> set <set> [dreg 0] [0x1] ]
 * dreg 0 (NFT_REG_VERDICT) makes it a vmap: "<key> vmap @set". invert is
 * NFT_LOOKUP_F_INV: "!= @set". setId names a set added in the same batch.
 */
void lookup(nftnl_rule *r, std::uint32_t sreg, const std::string &set,
	    std::optional<std::uint32_t> setId, std::optional<std::uint32_t> dreg, bool invert);
/* [ ct load <key> => reg <dreg> ]              e.g. ct status */
void ct(nftnl_rule *r, std::uint32_t key, std::uint32_t dreg);
/* [ fib daddr type => reg <dreg> ]             "fib daddr type" (compare with RTN_LOCAL) */
void fibDaddrType(nftnl_rule *r, std::uint32_t dreg);
/* [ counter pkts 0 bytes 0 ]                   "counter" */
void counter(nftnl_rule *r);
/*
 * [ nat dnat <ip|ip6> addr_min reg <addrReg> proto_min reg <protoReg> flags 0x2 ]
 * "dnat ip to A:p" / "dnat ip6 to [A]:p"; the family is NFPROTO_IPV4/IPV6
 * (required in an inet table), flags NF_NAT_RANGE_PROTO_SPECIFIED.
 */
void dnat(nftnl_rule *r, std::uint32_t family, std::uint32_t addrReg, std::uint32_t protoReg);
/* [ masq ]                                     "masquerade" */
void masquerade(nftnl_rule *r);

/*
 * A set id (NFTA_SET_ID) unique within this process, so within any batch:
 * the kernel requires one on every NEWSET, and a lookup or element list
 * refers to a set added in the same batch by it.
 */
std::uint32_t nextSetId();

/* Whether two register numbers name the same storage (NFT_REG_1 == NFT_REG32_00). */
bool sameRegister(std::uint32_t a, std::uint32_t b);

/*
 * A cursor over a rule's expressions. Each match function accepts the next
 * expression only if it has exactly the asked shape, and then moves past it;
 * otherwise it returns false/nullopt and stays, so alternatives can be tried.
 */
class Reader final
{
public:
	explicit Reader(const nftnl_rule *r);

	bool done() const { return pos_ == exprs_.size(); }
	std::size_t position() const { return pos_; }
	/* Back to an earlier position(), after a partial match. */
	void rewind(std::size_t pos) { pos_ = pos < exprs_.size() ? pos : exprs_.size(); }
	/* "payload" for the next expression, "end of rule" when done. */
	std::string nextName() const;

	bool meta(std::uint32_t key, std::uint32_t dreg);
	bool payload(std::uint32_t base, std::uint32_t offset, std::uint32_t len, std::uint32_t dreg);
	/* The compared data. */
	std::optional<Bytes> cmp(std::uint32_t sreg, std::uint32_t op);
	/* The mask of "reg = (reg & mask) ^ 0"; any other bitwise does not match. */
	std::optional<Bytes> bitwise(std::uint32_t reg);
	std::optional<Bytes> immediate(std::uint32_t dreg);
	/* The target chain of "immediate reg 0 <code> -> chain". */
	std::optional<std::string> verdict(int code);

	struct Lookup {
		std::string set;
		std::optional<std::uint32_t> dreg;
		bool invert = false;
	};
	std::optional<Lookup> lookup(std::uint32_t sreg);

	bool ct(std::uint32_t key, std::uint32_t dreg);
	bool fibDaddrType(std::uint32_t dreg);
	bool counter();
	/* The family of a "dnat" that uses these registers and PROTO_SPECIFIED. */
	std::optional<std::uint32_t> dnat(std::uint32_t addrReg, std::uint32_t protoReg);
	bool masquerade();

private:
	const nftnl_expr *next(const char *name) const;
	std::vector<const nftnl_expr *> exprs_;
	std::size_t pos_ = 0;
};

} /* namespace nftpm::nft::expr */
