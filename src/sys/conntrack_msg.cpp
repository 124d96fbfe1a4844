/* SPDX-License-Identifier: Apache-2.0 */
#include "sys/conntrack_msg.hpp"

#include <algorithm>
#include <charconv>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>

namespace nftpm::sys::ctmsg {

namespace {

/*
 * CTA_FILTER_ORIG_FLAGS bits: which fields of the CTA_TUPLE_ORIG sent with
 * the dump have to match. The kernel keeps them in
 * net/netfilter/nf_internals.h rather than in a uapi header, and
 * libnetfilter_conntrack 1.0.9 has no API that sends them; they are ABI all
 * the same, since only user space ever sets them.
 */
constexpr std::uint32_t kFilterProtoNum = 1u << 3;
constexpr std::uint32_t kFilterProtoDstPort = 1u << 5;

/* What identifies one entry to IPCTNL_MSG_CT_DELETE (the id goes apart). */
constexpr nf_conntrack_attr kIdentity[] = {
	ATTR_ORIG_L3PROTO,  ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_SRC,
	ATTR_ORIG_IPV6_DST, ATTR_ORIG_L4PROTO,  ATTR_ORIG_PORT_SRC, ATTR_ORIG_PORT_DST,
	ATTR_ORIG_ZONE,     ATTR_ZONE,
};

nlmsghdr *putHeader(void *buf, std::uint8_t msgType, std::uint16_t flags, std::uint8_t family,
		    std::uint32_t seq)
{
	nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | msgType;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	auto *nfg = static_cast<nfgenmsg *>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
	nfg->nfgen_family = family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	return nlh;
}

bool isSet(const nf_conntrack *ct, nf_conntrack_attr attr)
{
	return nfct_attr_is_set(ct, attr) > 0;
}

} /* namespace */

std::vector<std::uint16_t> normalizePorts(std::vector<std::uint16_t> ports)
{
	std::sort(ports.begin(), ports.end());
	ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
	return ports;
}

nlmsghdr *buildUdpDump(void *buf, Family family, std::span<const std::uint16_t> sortedPorts,
		       DumpFilter filter, std::uint32_t seq)
{
	/* conntrack -L -f <family> */
	nlmsghdr *nlh = putHeader(buf, IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP,
				  static_cast<std::uint8_t>(family), seq);
	if (filter == DumpFilter::Callback)
		return nlh;

	/* ... -p udp [--orig-port-dst <port>]: the tuple the filter compares with */
	CtPtr tuple(nfct_new());
	if (!tuple)
		return nullptr;
	nfct_set_attr_u8(tuple.get(), ATTR_ORIG_L3PROTO, static_cast<std::uint8_t>(family));
	nfct_set_attr_u8(tuple.get(), ATTR_ORIG_L4PROTO, IPPROTO_UDP);
	std::uint32_t flags = kFilterProtoNum;
	/*
	 * The filter holds one tuple, so one port at most; with several the
	 * kernel narrows to UDP and the callback picks the ports.
	 */
	if (sortedPorts.size() == 1) {
		nfct_set_attr_u16(tuple.get(), ATTR_ORIG_PORT_DST, htons(sortedPorts[0]));
		flags |= kFilterProtoDstPort;
	}
	if (nfct_nlmsg_build(nlh, tuple.get()) < 0)
		return nullptr;

	/* ... and which fields of that tuple count (the addresses do not) */
	nlattr *nest = mnl_attr_nest_start(nlh, CTA_FILTER);
	mnl_attr_put_u32(nlh, CTA_FILTER_ORIG_FLAGS, flags);
	mnl_attr_nest_end(nlh, nest);
	return nlh;
}

bool isStaleUdp(const nf_conntrack *ct, Family family, std::span<const std::uint16_t> sortedPorts)
{
	if (!isSet(ct, ATTR_ORIG_L3PROTO) || !isSet(ct, ATTR_ORIG_L4PROTO) || !isSet(ct, ATTR_ORIG_PORT_DST))
		return false;
	if (nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO) != static_cast<std::uint8_t>(family) ||
	    nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != IPPROTO_UDP)
		return false;
	std::uint16_t port = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
	return std::binary_search(sortedPorts.begin(), sortedPorts.end(), port);
}

nlmsghdr *buildDelete(void *buf, const nf_conntrack *seen, std::uint32_t seq)
{
	if (!isSet(seen, ATTR_ORIG_L3PROTO))
		return nullptr;

	/* conntrack -D -f <family> -p udp -s <src> -d <dst> --sport <p> --dport <p> [-w <zone>] [--id <id>] */
	nlmsghdr *nlh = putHeader(buf, IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK,
				  nfct_get_attr_u8(seen, ATTR_ORIG_L3PROTO), seq);
	CtPtr del(nfct_new());
	if (!del)
		return nullptr;
	for (nf_conntrack_attr a : kIdentity)
		if (isSet(seen, a))
			nfct_set_attr(del.get(), a, nfct_get_attr(seen, a));
	if (nfct_nlmsg_build(nlh, del.get()) < 0)
		return nullptr;

	/*
	 * nfct_nlmsg_build() leaves the id out. With it the kernel deletes
	 * only the very entry we saw, not one that took over its tuple since.
	 */
	if (isSet(seen, ATTR_ID))
		mnl_attr_put_u32(nlh, CTA_ID, htonl(nfct_get_attr_u32(seen, ATTR_ID)));
	return nlh;
}

std::optional<unsigned long> parseCount(std::string_view contents)
{
	while (!contents.empty() && contents.back() == '\n')
		contents.remove_suffix(1);
	unsigned long n = 0;
	auto [end, ec] = std::from_chars(contents.data(), contents.data() + contents.size(), n);
	if (contents.empty() || ec != std::errc() || end != contents.data() + contents.size())
		return std::nullopt;
	return n;
}

} /* namespace nftpm::sys::ctmsg */
