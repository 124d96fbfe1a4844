/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading set elements: pipelined GETSETELEM lookups of given keys, and the
 * full dump of a set. Split from query.cpp, whose request helpers it uses.
 */
#include "nft/query.hpp"

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string_view>
#include <unordered_map>

#include <arpa/inet.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <libnftnl/common.h>
#include <libnftnl/expr.h>

namespace nftpm::nft {

using detail::dump;
using detail::familyName;
using detail::kDumpAttempts;
using detail::messageType;
using detail::Request;
using detail::setKey;

namespace {

/* GETSETELEM requests sent at once; each answer may take a page of receive buffer. */
constexpr std::size_t kPipelineDepth = 64;
constexpr std::size_t kAnswerBudget = 8192;
constexpr int kAnswerTimeoutMs = 5000;
/* Upper bound of one GETSETELEM request: two names of 256 bytes and a 64-byte key. */
constexpr std::size_t kElemRequestSize = 1024;
constexpr std::size_t kMaxKeySize = 64; /* NFT_DATA_VALUE_MAXLEN */

std::string hex(const std::vector<std::uint8_t> &bytes)
{
	static const char digits[] = "0123456789abcdef";
	std::string s = "0x";
	for (std::uint8_t b : bytes) {
		s += digits[b >> 4];
		s += digits[b & 0xf];
	}
	return s;
}

/* Low 16 bits of the ruleset generation the kernel answered from. */
std::uint16_t answerGeneration(const nlmsghdr *nlh)
{
	return ntohs(static_cast<const nfgenmsg *>(mnl_nlmsg_get_payload(nlh))->res_id);
}

/*
 * libnftnl keeps parsed elements inside their set and has no call to take
 * one out, so the caller gets a copy of every attribute libnftnl exposes
 * (element expressions such as per-element counters are not copied).
 */
SetElemPtr copyElement(nftnl_set_elem *from)
{
	static const std::uint16_t attrs[] = {
		NFTNL_SET_ELEM_FLAGS,	  NFTNL_SET_ELEM_KEY,	     NFTNL_SET_ELEM_KEY_END,
		NFTNL_SET_ELEM_VERDICT,	  NFTNL_SET_ELEM_CHAIN,	     NFTNL_SET_ELEM_DATA,
		NFTNL_SET_ELEM_TIMEOUT,	  NFTNL_SET_ELEM_EXPIRATION, NFTNL_SET_ELEM_USERDATA,
		NFTNL_SET_ELEM_OBJREF,
	};

	SetElemPtr to(nftnl_set_elem_alloc());
	if (!to)
		return to;
	for (std::uint16_t attr : attrs) {
		std::uint32_t len = 0;
		const void *data = nftnl_set_elem_get(from, attr, &len);
		if (data && nftnl_set_elem_set(to.get(), attr, data, len) < 0)
			return nullptr;
	}
	/* Per-element counters (a map declared with "counter") are copied as counters. */
	nftnl_set_elem_expr_foreach(
		from,
		[](nftnl_expr *e, void *data) {
			const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
			if (!name || std::string_view(name) != "counter")
				return 0;
			nftnl_expr *copy = nftnl_expr_alloc("counter");
			if (!copy)
				return -1;
			nftnl_expr_set_u64(copy, NFTNL_EXPR_CTR_PACKETS,
					   nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS));
			nftnl_expr_set_u64(copy, NFTNL_EXPR_CTR_BYTES,
					   nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES));
			nftnl_set_elem_add_expr(static_cast<nftnl_set_elem *>(data), copy);
			return 0;
		},
		to.get());
	return to;
}

/*
 * Where NFTA_SET_ELEM_LIST_ELEMENTS starts in a GETSETELEM request: the
 * kernel's extended ACK points at or past it when the element is missing,
 * and before it (at the table or set name) when those are.
 */
std::uint32_t elementsOffset(const nlmsghdr *nlh)
{
	const auto *tail = static_cast<const char *>(mnl_nlmsg_get_payload_tail(nlh));
	for (auto *attr = static_cast<const nlattr *>(
		     mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
	     mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<const char *>(attr)));
	     attr = mnl_attr_next(attr)) {
		if (mnl_attr_get_type(attr) == NFTA_SET_ELEM_LIST_ELEMENTS)
			return static_cast<std::uint32_t>(reinterpret_cast<const char *>(attr) -
							  reinterpret_cast<const char *>(nlh));
	}
	return nlh->nlmsg_len;
}

/* Appends copies of the elements of a NEWSETELEM message. */
int takeElements(const nlmsghdr *nlh, std::vector<SetElemPtr> &out)
{
	SetPtr tmp(nftnl_set_alloc());
	if (!tmp || nftnl_set_elems_nlmsg_parse(nlh, tmp.get()) < 0)
		return MNL_CB_ERROR;

	struct Sink {
		std::vector<SetElemPtr> &out;
		bool failed = false;
	} sink{ out };
	nftnl_set_elem_foreach(
		tmp.get(),
		[](nftnl_set_elem *e, void *data) {
			auto *k = static_cast<Sink *>(data);
			SetElemPtr copy = copyElement(e);
			if (!copy) {
				k->failed = true;
				return -1;
			}
			k->out.push_back(std::move(copy));
			return 0;
		},
		&sink);
	return sink.failed ? MNL_CB_ERROR : MNL_CB_OK;
}

} /* namespace */

namespace {

/*
 * One round of pipelined GETSETELEM: up to kPipelineDepth requests in one
 * sendmsg(), then their answers, each of which is either the element or an
 * error. Records the generation every found element was read at.
 */
class ElementLookup
{
public:
	ElementLookup(Socket &s, std::uint16_t family, const std::string &table,
		      const std::string &set)
		: s_(s), family_(family), table_(table), set_(set),
		  what_("get element " + familyName(family) + " " + table + " " + set)
	{
	}

	/* false: found elements were read at different generations. */
	Result<bool> run(const std::vector<std::vector<std::uint8_t>> &keys,
			 std::vector<SetElemPtr> &out);

private:
	Result<void> runChunk(const std::vector<std::vector<std::uint8_t>> &keys,
			      std::size_t first, std::size_t count, std::vector<SetElemPtr> &out);
	Result<void> take(const nlmsghdr *nlh, std::size_t index,
			  const std::vector<std::uint8_t> &key, std::vector<SetElemPtr> &out);

	Socket &s_;
	std::uint16_t family_;
	const std::string &table_;
	const std::string &set_;
	std::string what_;

	/* Request of each seq in flight: its key's index and where its element list starts. */
	struct InFlight {
		std::size_t index;
		std::uint32_t elementsOffset;
	};
	std::unordered_map<std::uint32_t, InFlight> inFlight_;
	std::optional<std::uint16_t> generation_;
	bool consistent_ = true;
	bool unplacedEnoent_ = false; /* an ENOENT that did not say which attribute */
};

Result<bool> ElementLookup::run(const std::vector<std::vector<std::uint8_t>> &keys,
				std::vector<SetElemPtr> &out)
{
	out.clear();
	out.resize(keys.size());
	generation_.reset();
	consistent_ = true;
	unplacedEnoent_ = false;

	for (std::size_t first = 0; first < keys.size(); first += kPipelineDepth) {
		auto r = runChunk(keys, first, std::min(kPipelineDepth, keys.size() - first), out);
		if (!r)
			return Unexpected(std::move(r).error());
	}

	/*
	 * An ENOENT without an attribute offset (older kernels) could mean the
	 * set is missing rather than the element: one GETSET tells.
	 */
	if (unplacedEnoent_) {
		auto set = getSet(s_, family_, table_, set_);
		if (!set)
			return Unexpected(std::move(set).error());
	}
	return consistent_;
}

Result<void> ElementLookup::runChunk(const std::vector<std::vector<std::uint8_t>> &keys,
				     std::size_t first, std::size_t count,
				     std::vector<SetElemPtr> &out)
{
	s_.discardPending();
	inFlight_.clear();

	std::vector<char> buf(count * kElemRequestSize);
	std::size_t used = 0;
	for (std::size_t i = first; i < first + count; ++i) {
		if (keys[i].empty() || keys[i].size() > kMaxKeySize)
			return fail(EINVAL, what_ + " " + hex(keys[i]), "bad key length");

		SetPtr req = setKey(family_, table_, set_);
		SetElemPtr e(nftnl_set_elem_alloc());
		nftnl_set_elem_set(e.get(), NFTNL_SET_ELEM_KEY, keys[i].data(),
				   static_cast<std::uint32_t>(keys[i].size()));
		nftnl_set_elem_add(req.get(), e.release());

		std::uint32_t seq = s_.nextSeq();
		nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf.data() + used, NFT_MSG_GETSETELEM, family_,
						      0, seq);
		nftnl_set_elems_nlmsg_build_payload(nlh, req.get());

		inFlight_.emplace(seq, InFlight{ i, elementsOffset(nlh) });
		used += nlh->nlmsg_len;
	}

	/* Every answer is queued within sendmsg(): make room for all of them. */
	s_.reserveReceiveBuffer(count * kAnswerBudget + 64 * 1024);
	iovec iov{ buf.data(), used };
	auto sent = s_.send(&iov, 1, what_);
	if (!sent)
		return sent;

	while (!inFlight_.empty()) {
		auto data = s_.receive(kAnswerTimeoutMs, what_);
		if (!data || data->empty()) {
			s_.markPending();
			if (!data)
				return Unexpected(std::move(data).error());
			return fail(ETIMEDOUT, what_, "no answer from the kernel");
		}

		auto len = static_cast<int>(data->size());
		for (auto *nlh = reinterpret_cast<const nlmsghdr *>(data->data()); mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			auto it = inFlight_.find(nlh->nlmsg_seq);
			if (it == inFlight_.end())
				continue;
			InFlight f = it->second;

			Result<void> r;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				Socket::Ack ack = Socket::parseAck(nlh);
				if (ack.errnum == 0)
					continue; /* an ACK; the answer is still to come */
				if (ack.errnum != ENOENT) {
					r = fail(ack.errnum, what_ + " " + hex(keys[f.index]), ack.detail);
				} else if (!ack.badAttrOffset) {
					unplacedEnoent_ = true;
				} else if (*ack.badAttrOffset < f.elementsOffset) {
					/* The table or the set is missing, not the element. */
					r = fail(ENOENT, "list set " + familyName(family_) + " " +
								 table_ + " " + set_,
						 ack.detail);
				}
			} else if (messageType(nlh) == NFT_MSG_NEWSETELEM) {
				r = take(nlh, f.index, keys[f.index], out);
			} else {
				continue;
			}
			inFlight_.erase(it);
			if (!r) {
				if (!inFlight_.empty())
					s_.markPending();
				return r;
			}
		}
	}
	return {};
}

Result<void> ElementLookup::take(const nlmsghdr *nlh, std::size_t index,
				 const std::vector<std::uint8_t> &key, std::vector<SetElemPtr> &out)
{
	std::vector<SetElemPtr> found;
	if (takeElements(nlh, found) != MNL_CB_OK || found.size() != 1)
		return fail(EPROTO, what_ + " " + hex(key), "malformed answer");
	out[index] = std::move(found.front());

	std::uint16_t gen = answerGeneration(nlh);
	if (generation_ && *generation_ != gen)
		consistent_ = false;
	generation_ = gen;
	return {};
}

} /* namespace */

Result<std::vector<SetElemPtr>> getElements(Socket &s, std::uint16_t family,
					    const std::string &table, const std::string &set,
					    const std::vector<std::vector<std::uint8_t>> &keys)
{
	std::vector<SetElemPtr> out;
	if (keys.empty())
		return out;

	/*
	 * The lookups are separate requests; if the ruleset changed between
	 * them (the answers carry different generations), look again so the
	 * caller gets one consistent picture.
	 */
	ElementLookup lookup(s, family, table, set);
	for (int attempt = 1;; ++attempt) {
		auto consistent = lookup.run(keys, out);
		if (!consistent)
			return Unexpected(std::move(consistent).error());
		if (*consistent || attempt == kDumpAttempts)
			return out;
	}
}

Result<std::vector<SetElemPtr>> dumpElements(Socket &s, std::uint16_t family,
					     const std::string &table, const std::string &set)
{
	std::vector<SetElemPtr> elements;
	auto r = dump(
		s,
		[&] {
			Request req(s, NFT_MSG_GETSETELEM, family, NLM_F_DUMP);
			nftnl_set_elems_nlmsg_build_payload(req.get(), setKey(family, table, set).get());
			return req;
		},
		NFT_MSG_NEWSETELEM, "list set " + familyName(family) + " " + table + " " + set,
		[&] { elements.clear(); },
		[&](const nlmsghdr *nlh) { return takeElements(nlh, elements); });
	if (!r)
		return Unexpected(std::move(r).error());
	return elements;
}

} /* namespace nftpm::nft */
