/* SPDX-License-Identifier: Apache-2.0 */
/* Splitting an encoded batch back into its netlink messages. */
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

namespace nftpm::nft::test {

/* One message, copied so that it is suitably aligned for parsing. */
class Message
{
public:
	explicit Message(const nlmsghdr *nlh)
		: words_((nlh->nlmsg_len + sizeof(std::uint32_t) - 1) / sizeof(std::uint32_t))
	{
		std::memcpy(words_.data(), nlh, nlh->nlmsg_len);
	}

	const nlmsghdr *nlh() const { return reinterpret_cast<const nlmsghdr *>(words_.data()); }
	nlmsghdr *nlh() { return reinterpret_cast<nlmsghdr *>(words_.data()); }
	std::uint16_t subsystem() const { return NFNL_SUBSYS_ID(nlh()->nlmsg_type); }
	std::uint16_t type() const { return NFNL_MSG_TYPE(nlh()->nlmsg_type); }
	std::uint16_t flags() const { return nlh()->nlmsg_flags; }
	std::uint32_t seq() const { return nlh()->nlmsg_seq; }
	const nfgenmsg *nfg() const
	{
		return static_cast<const nfgenmsg *>(mnl_nlmsg_get_payload(nlh()));
	}

private:
	std::vector<std::uint32_t> words_;
};

/*
 * libnftnl numbers the element nests of a list 1, 2, 3... when it builds
 * one (the kernel ignores the type) but accepts only NFTA_LIST_ELEM when it
 * parses one: renumber a built message's list so libnftnl can read it.
 */
inline void renumberElementList(nlmsghdr *nlh)
{
	auto *tail = static_cast<char *>(mnl_nlmsg_get_payload_tail(nlh));
	for (auto *a = static_cast<nlattr *>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
	     mnl_attr_ok(a, static_cast<int>(tail - reinterpret_cast<char *>(a)));
	     a = mnl_attr_next(a)) {
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		auto *end = reinterpret_cast<char *>(a) + a->nla_len;
		for (auto *e = static_cast<nlattr *>(mnl_attr_get_payload(a));
		     mnl_attr_ok(e, static_cast<int>(end - reinterpret_cast<char *>(e)));
		     e = mnl_attr_next(e))
			e->nla_type = static_cast<std::uint16_t>((e->nla_type & ~NLA_TYPE_MASK) |
								 NFTA_LIST_ELEM);
	}
}

/* The messages of buf; leftover bytes (a broken encoding) leave rest non-zero. */
inline std::vector<Message> splitMessages(const std::vector<std::uint8_t> &buf, int *rest = nullptr)
{
	std::vector<Message> out;
	std::vector<std::uint32_t> aligned((buf.size() + 3) / 4);
	std::memcpy(aligned.data(), buf.data(), buf.size());

	int len = static_cast<int>(buf.size());
	for (auto *nlh = reinterpret_cast<const nlmsghdr *>(aligned.data()); mnl_nlmsg_ok(nlh, len);
	     nlh = mnl_nlmsg_next(nlh, &len))
		out.emplace_back(nlh);
	if (rest)
		*rest = len;
	return out;
}

} /* namespace nftpm::nft::test */
