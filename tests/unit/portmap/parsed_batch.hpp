/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Batch's encoded messages parsed back into libnftnl objects, in the
 * manner of libnftnl's own build-then-parse tests.
 */
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "nft/batch.hpp"
#include "nft/handles.hpp"

namespace nftpm::test {

struct Op {
	std::uint16_t type = 0; /* NFT_MSG_* */
	std::uint16_t flags = 0;
	nft::TablePtr table;
	nft::ChainPtr chain;
	nft::RulePtr rule;
	nft::SetPtr set; /* NEWSET, or the set of NEWSETELEM/DELSETELEM with its elements */
	nft::ObjPtr obj; /* NEWOBJ, DELOBJ */
};

/*
 * libnftnl numbers the nested elements of an element list 1, 2, 3, ... when
 * it builds one (the kernel ignores those types), but its parser accepts
 * only NFTA_LIST_ELEM (1) there. Renumber them so that lists of more than
 * one element parse back.
 */
inline void renumberElements(nlmsghdr *nlh)
{
	auto *tail = static_cast<char *>(mnl_nlmsg_get_payload_tail(nlh));
	for (auto *attr = static_cast<nlattr *>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
	     mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<char *>(attr)));
	     attr = mnl_attr_next(attr)) {
		if (mnl_attr_get_type(attr) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		auto *end = static_cast<char *>(mnl_attr_get_payload(attr)) + mnl_attr_get_payload_len(attr);
		for (auto *elem = static_cast<nlattr *>(mnl_attr_get_payload(attr));
		     mnl_attr_ok(elem, static_cast<int>(end - reinterpret_cast<char *>(elem)));
		     elem = mnl_attr_next(elem))
			elem->nla_type = static_cast<std::uint16_t>((elem->nla_type & ~NLA_TYPE_MASK) |
								    NFTA_LIST_ELEM);
	}
}

/* Every operation of b, between BATCH_BEGIN and BATCH_END; ok is false on any parse failure. */
inline std::vector<Op> parseBatch(const nft::Batch &b, bool &ok)
{
	ok = true;
	std::vector<std::uint8_t> bytes = b.encoded();
	std::vector<std::uint32_t> aligned((bytes.size() + 3) / 4);
	std::memcpy(aligned.data(), bytes.data(), bytes.size());

	std::vector<Op> out;
	int len = static_cast<int>(bytes.size());
	for (auto *nlh = reinterpret_cast<nlmsghdr *>(aligned.data()); mnl_nlmsg_ok(nlh, len);
	     nlh = mnl_nlmsg_next(nlh, &len)) {
		if (nlh->nlmsg_type == NFNL_MSG_BATCH_BEGIN || nlh->nlmsg_type == NFNL_MSG_BATCH_END)
			continue;
		Op op;
		op.type = NFNL_MSG_TYPE(nlh->nlmsg_type);
		op.flags = nlh->nlmsg_flags;
		int r = -1;
		switch (op.type) {
		case NFT_MSG_NEWTABLE:
		case NFT_MSG_DELTABLE:
			op.table.reset(nftnl_table_alloc());
			r = nftnl_table_nlmsg_parse(nlh, op.table.get());
			break;
		case NFT_MSG_NEWCHAIN:
		case NFT_MSG_DELCHAIN:
			op.chain.reset(nftnl_chain_alloc());
			r = nftnl_chain_nlmsg_parse(nlh, op.chain.get());
			break;
		case NFT_MSG_NEWRULE:
		case NFT_MSG_DELRULE:
			op.rule.reset(nftnl_rule_alloc());
			r = nftnl_rule_nlmsg_parse(nlh, op.rule.get());
			break;
		case NFT_MSG_NEWSET:
			op.set.reset(nftnl_set_alloc());
			r = nftnl_set_nlmsg_parse(nlh, op.set.get());
			break;
		case NFT_MSG_NEWSETELEM:
		case NFT_MSG_DELSETELEM:
			renumberElements(nlh);
			op.set.reset(nftnl_set_alloc());
			r = nftnl_set_elems_nlmsg_parse(nlh, op.set.get());
			break;
		case NFT_MSG_NEWOBJ:
		case NFT_MSG_DELOBJ:
			op.obj.reset(nftnl_obj_alloc());
			r = nftnl_obj_nlmsg_parse(nlh, op.obj.get());
			break;
		default:
			break;
		}
		if (r < 0)
			ok = false;
		out.push_back(std::move(op));
	}
	if (len != 0)
		ok = false;
	return out;
}

/* The elements of a parsed set, in order (borrowed from the set). */
inline std::vector<nftnl_set_elem *> elementsOf(nftnl_set *s)
{
	std::vector<nftnl_set_elem *> out;
	nftnl_set_elem_foreach(
		s,
		[](nftnl_set_elem *e, void *data) {
			static_cast<std::vector<nftnl_set_elem *> *>(data)->push_back(e);
			return 0;
		},
		&out);
	return out;
}

inline std::vector<std::uint8_t> elementKey(nftnl_set_elem *e)
{
	std::uint32_t len = 0;
	const auto *p = static_cast<const std::uint8_t *>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len));
	return p ? std::vector<std::uint8_t>(p, p + len) : std::vector<std::uint8_t>();
}

inline std::string str(const char *s)
{
	return s ? s : "";
}

} /* namespace nftpm::test */
