/* SPDX-License-Identifier: Apache-2.0 */
#include "nft/expr.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>

namespace nftpm::nft::expr {

namespace {

nftnl_expr *alloc(const char *name)
{
	nftnl_expr *e = nftnl_expr_alloc(name);
	if (!e)
		std::abort(); /* out of memory, or a libnftnl without this expression */
	return e;
}

void setData(nftnl_expr *e, std::uint16_t attr, std::span<const std::uint8_t> data)
{
	nftnl_expr_set(e, attr, data.data(), static_cast<std::uint32_t>(data.size()));
}

Bytes getData(const nftnl_expr *e, std::uint16_t attr)
{
	std::uint32_t len = 0;
	const void *p = nftnl_expr_get(e, attr, &len);
	if (!p)
		return {};
	const auto *b = static_cast<const std::uint8_t *>(p);
	return Bytes(b, b + len);
}

/* The attribute, or 0 when the kernel left it out (its meaning of "none"). */
std::uint32_t getU32(const nftnl_expr *e, std::uint16_t attr)
{
	return nftnl_expr_is_set(e, attr) ? nftnl_expr_get_u32(e, attr) : 0;
}

/* Index of the 4-byte slot a register starts at; the verdict register is 0. */
std::uint32_t registerSlot(std::uint32_t reg)
{
	if (reg >= NFT_REG32_00)
		return reg - NFT_REG32_00 + 4;
	return reg * 4;
}

} /* namespace */

void meta(nftnl_rule *r, std::uint32_t key, std::uint32_t dreg)
{
	nftnl_expr *e = alloc("meta");
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

void payload(nftnl_rule *r, std::uint32_t base, std::uint32_t offset, std::uint32_t len,
	     std::uint32_t dreg)
{
	nftnl_expr *e = alloc("payload");
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

void cmp(nftnl_rule *r, std::uint32_t sreg, std::uint32_t op, std::span<const std::uint8_t> data)
{
	nftnl_expr *e = alloc("cmp");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	setData(e, NFTNL_EXPR_CMP_DATA, data);
	nftnl_rule_add_expr(r, e);
}

void bitwise(nftnl_rule *r, std::uint32_t reg, std::span<const std::uint8_t> mask)
{
	/* The xor operand of a plain mask is zero, of the same length. */
	const Bytes zero(mask.size(), 0);
	nftnl_expr *e = alloc("bitwise");
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, static_cast<std::uint32_t>(mask.size()));
	setData(e, NFTNL_EXPR_BITWISE_MASK, mask);
	setData(e, NFTNL_EXPR_BITWISE_XOR, zero);
	nftnl_rule_add_expr(r, e);
}

void immediate(nftnl_rule *r, std::uint32_t dreg, std::span<const std::uint8_t> data)
{
	nftnl_expr *e = alloc("immediate");
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, dreg);
	setData(e, NFTNL_EXPR_IMM_DATA, data);
	nftnl_rule_add_expr(r, e);
}

void verdict(nftnl_rule *r, int code, const std::string &chain)
{
	nftnl_expr *e = alloc("immediate");
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<std::uint32_t>(code));
	if (!chain.empty())
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain.c_str());
	nftnl_rule_add_expr(r, e);
}

void lookup(nftnl_rule *r, std::uint32_t sreg, const std::string &set,
	    std::optional<std::uint32_t> setId, std::optional<std::uint32_t> dreg, bool invert)
{
	nftnl_expr *e = alloc("lookup");
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set.c_str());
	if (setId)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, *setId);
	if (dreg)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, *dreg);
	if (invert)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	nftnl_rule_add_expr(r, e);
}

void ct(nftnl_rule *r, std::uint32_t key, std::uint32_t dreg)
{
	nftnl_expr *e = alloc("ct");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

void fibDaddrType(nftnl_rule *r, std::uint32_t dreg)
{
	nftnl_expr *e = alloc("fib");
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

void counter(nftnl_rule *r)
{
	nftnl_rule_add_expr(r, alloc("counter"));
}

void dnat(nftnl_rule *r, std::uint32_t family, std::uint32_t addrReg, std::uint32_t protoReg)
{
	nftnl_expr *e = alloc("nat");
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, family);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, addrReg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, protoReg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
	nftnl_rule_add_expr(r, e);
}

void masquerade(nftnl_rule *r)
{
	nftnl_rule_add_expr(r, alloc("masq"));
}

std::uint32_t nextSetId()
{
	static std::atomic<std::uint32_t> id{ 1 };
	return id.fetch_add(1, std::memory_order_relaxed);
}

bool sameRegister(std::uint32_t a, std::uint32_t b)
{
	return registerSlot(a) == registerSlot(b);
}

Reader::Reader(const nftnl_rule *r)
{
	nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	if (!it)
		std::abort();
	for (nftnl_expr *e = nftnl_expr_iter_next(it); e; e = nftnl_expr_iter_next(it))
		exprs_.push_back(e);
	nftnl_expr_iter_destroy(it);
}

std::string Reader::nextName() const
{
	if (done())
		return "end of rule";
	const char *name = nftnl_expr_get_str(exprs_[pos_], NFTNL_EXPR_NAME);
	return name ? name : "?";
}

const nftnl_expr *Reader::next(const char *name) const
{
	if (done())
		return nullptr;
	const char *n = nftnl_expr_get_str(exprs_[pos_], NFTNL_EXPR_NAME);
	if (!n || std::strcmp(n, name) != 0)
		return nullptr;
	return exprs_[pos_];
}

bool Reader::meta(std::uint32_t key, std::uint32_t dreg)
{
	const nftnl_expr *e = next("meta");
	if (!e || !nftnl_expr_is_set(e, NFTNL_EXPR_META_DREG) ||
	    getU32(e, NFTNL_EXPR_META_KEY) != key ||
	    !sameRegister(getU32(e, NFTNL_EXPR_META_DREG), dreg))
		return false;
	pos_++;
	return true;
}

bool Reader::payload(std::uint32_t base, std::uint32_t offset, std::uint32_t len, std::uint32_t dreg)
{
	const nftnl_expr *e = next("payload");
	/* A payload with SREG is a write ("set"), not a load. */
	if (!e || nftnl_expr_is_set(e, NFTNL_EXPR_PAYLOAD_SREG) ||
	    getU32(e, NFTNL_EXPR_PAYLOAD_BASE) != base ||
	    getU32(e, NFTNL_EXPR_PAYLOAD_OFFSET) != offset ||
	    getU32(e, NFTNL_EXPR_PAYLOAD_LEN) != len ||
	    !sameRegister(getU32(e, NFTNL_EXPR_PAYLOAD_DREG), dreg))
		return false;
	pos_++;
	return true;
}

std::optional<Bytes> Reader::cmp(std::uint32_t sreg, std::uint32_t op)
{
	const nftnl_expr *e = next("cmp");
	if (!e || getU32(e, NFTNL_EXPR_CMP_OP) != op ||
	    !sameRegister(getU32(e, NFTNL_EXPR_CMP_SREG), sreg))
		return std::nullopt;
	pos_++;
	return getData(e, NFTNL_EXPR_CMP_DATA);
}

std::optional<Bytes> Reader::bitwise(std::uint32_t reg)
{
	const nftnl_expr *e = next("bitwise");
	if (!e || getU32(e, NFTNL_EXPR_BITWISE_OP) != NFT_BITWISE_BOOL ||
	    !sameRegister(getU32(e, NFTNL_EXPR_BITWISE_SREG), reg) ||
	    !sameRegister(getU32(e, NFTNL_EXPR_BITWISE_DREG), reg))
		return std::nullopt;
	Bytes mask = getData(e, NFTNL_EXPR_BITWISE_MASK);
	Bytes x = getData(e, NFTNL_EXPR_BITWISE_XOR);
	if (mask.size() != getU32(e, NFTNL_EXPR_BITWISE_LEN) || x.size() != mask.size())
		return std::nullopt;
	for (std::uint8_t b : x)
		if (b)
			return std::nullopt;
	pos_++;
	return mask;
}

std::optional<Bytes> Reader::immediate(std::uint32_t dreg)
{
	const nftnl_expr *e = next("immediate");
	if (!e || !nftnl_expr_is_set(e, NFTNL_EXPR_IMM_DATA) ||
	    !sameRegister(getU32(e, NFTNL_EXPR_IMM_DREG), dreg) || dreg == NFT_REG_VERDICT)
		return std::nullopt;
	pos_++;
	return getData(e, NFTNL_EXPR_IMM_DATA);
}

std::optional<std::string> Reader::verdict(int code)
{
	const nftnl_expr *e = next("immediate");
	if (!e || getU32(e, NFTNL_EXPR_IMM_DREG) != NFT_REG_VERDICT ||
	    !nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT) ||
	    static_cast<int>(nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT)) != code)
		return std::nullopt;
	pos_++;
	const char *chain = nftnl_expr_is_set(e, NFTNL_EXPR_IMM_CHAIN)
				    ? nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN)
				    : nullptr;
	return std::string(chain ? chain : "");
}

std::optional<Reader::Lookup> Reader::lookup(std::uint32_t sreg)
{
	const nftnl_expr *e = next("lookup");
	if (!e || !sameRegister(getU32(e, NFTNL_EXPR_LOOKUP_SREG), sreg))
		return std::nullopt;
	std::uint32_t flags = getU32(e, NFTNL_EXPR_LOOKUP_FLAGS);
	if (flags & ~static_cast<std::uint32_t>(NFT_LOOKUP_F_INV))
		return std::nullopt;
	Lookup l;
	const char *set = nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET);
	l.set = set ? set : "";
	if (nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_DREG))
		l.dreg = nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_DREG);
	l.invert = flags & NFT_LOOKUP_F_INV;
	pos_++;
	return l;
}

bool Reader::ct(std::uint32_t key, std::uint32_t dreg)
{
	const nftnl_expr *e = next("ct");
	/* A direction would make it "ct original ...": not ours. */
	if (!e || nftnl_expr_is_set(e, NFTNL_EXPR_CT_DIR) || nftnl_expr_is_set(e, NFTNL_EXPR_CT_SREG) ||
	    getU32(e, NFTNL_EXPR_CT_KEY) != key || !sameRegister(getU32(e, NFTNL_EXPR_CT_DREG), dreg))
		return false;
	pos_++;
	return true;
}

bool Reader::fibDaddrType(std::uint32_t dreg)
{
	const nftnl_expr *e = next("fib");
	if (!e || getU32(e, NFTNL_EXPR_FIB_FLAGS) != NFTA_FIB_F_DADDR ||
	    getU32(e, NFTNL_EXPR_FIB_RESULT) != NFT_FIB_RESULT_ADDRTYPE ||
	    !sameRegister(getU32(e, NFTNL_EXPR_FIB_DREG), dreg))
		return false;
	pos_++;
	return true;
}

bool Reader::counter()
{
	if (!next("counter"))
		return false;
	pos_++;
	return true;
}

std::optional<std::uint32_t> Reader::dnat(std::uint32_t addrReg, std::uint32_t protoReg)
{
	const nftnl_expr *e = next("nat");
	if (!e || getU32(e, NFTNL_EXPR_NAT_TYPE) != NFT_NAT_DNAT)
		return std::nullopt;
	/* The kernel dumps max == min when only min was given, and adds MAP_IPS. */
	auto regIs = [e](std::uint16_t attr, std::uint32_t want, bool optional) {
		if (!nftnl_expr_is_set(e, attr))
			return optional;
		return sameRegister(nftnl_expr_get_u32(e, attr), want);
	};
	std::uint32_t flags = getU32(e, NFTNL_EXPR_NAT_FLAGS);
	const std::uint32_t allowed = NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED;
	if (!regIs(NFTNL_EXPR_NAT_REG_ADDR_MIN, addrReg, false) ||
	    !regIs(NFTNL_EXPR_NAT_REG_ADDR_MAX, addrReg, true) ||
	    !regIs(NFTNL_EXPR_NAT_REG_PROTO_MIN, protoReg, false) ||
	    !regIs(NFTNL_EXPR_NAT_REG_PROTO_MAX, protoReg, true) ||
	    !(flags & NF_NAT_RANGE_PROTO_SPECIFIED) || (flags & ~allowed))
		return std::nullopt;
	pos_++;
	return getU32(e, NFTNL_EXPR_NAT_FAMILY);
}

bool Reader::masquerade()
{
	const nftnl_expr *e = next("masq");
	if (!e || getU32(e, NFTNL_EXPR_MASQ_FLAGS) != 0 ||
	    nftnl_expr_is_set(e, NFTNL_EXPR_MASQ_REG_PROTO_MIN) ||
	    nftnl_expr_is_set(e, NFTNL_EXPR_MASQ_REG_PROTO_MAX))
		return false;
	pos_++;
	return true;
}

} /* namespace nftpm::nft::expr */
