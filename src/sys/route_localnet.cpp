/* SPDX-License-Identifier: Apache-2.0 */
#include "sys/route_localnet.hpp"

#include <array>
#include <cerrno>
#include <cstring>

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include "sys/netlink_socket.hpp"
#include "sys/small_file.hpp"

namespace nftpm::sys {

namespace {

/*
 * How the kernel answers a route lookup that finds nothing to send on: no
 * route at all or a "throw" (ENETUNREACH), an "unreachable" route
 * (EHOSTUNREACH), "prohibit" (EACCES), "blackhole" (EINVAL).
 */
bool meansNoRoute(int err)
{
	return err == ENETUNREACH || err == EHOSTUNREACH || err == EACCES || err == EINVAL;
}

int collectOif(const nlmsghdr *nlh, void *data)
{
	auto *oif = static_cast<std::optional<unsigned> *>(data);
	if (auto found = rtnl::outputInterface(nlh))
		*oif = found;
	return MNL_CB_OK;
}

int findOif(const nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) == RTA_OIF && mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
		*static_cast<std::optional<unsigned> *>(data) = mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

} /* namespace */

namespace rtnl {

nlmsghdr *buildGetRoute(void *buf, const IpAddress &dst, std::uint32_t seq)
{
	/* ip route get <dst>: one answer, the route an outgoing packet takes */
	nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	auto *rtm = static_cast<struct rtmsg *>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct rtmsg)));
	rtm->rtm_family = static_cast<unsigned char>(dst.family());
	rtm->rtm_dst_len = static_cast<unsigned char>(dst.size() * 8);
	mnl_attr_put(nlh, RTA_DST, dst.size(), dst.data());
	return nlh;
}

std::optional<unsigned> outputInterface(const nlmsghdr *nlh)
{
	if (nlh->nlmsg_type != RTM_NEWROUTE || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct rtmsg)))
		return std::nullopt;
	std::optional<unsigned> oif;
	if (mnl_attr_parse(nlh, sizeof(struct rtmsg), findOif, &oif) < 0)
		return std::nullopt;
	return oif;
}

} /* namespace rtnl */

std::optional<std::string> routeLocalnetPath(std::string_view ifname)
{
	if (ifname.empty() || ifname.size() >= IFNAMSIZ || ifname == "." || ifname == ".." ||
	    ifname.find('/') != std::string_view::npos || ifname.find('\0') != std::string_view::npos)
		return std::nullopt;
	std::string path = "/proc/sys/net/ipv4/conf/";
	path += ifname;
	path += "/route_localnet";
	return path;
}

bool sysctlIsOne(std::string_view contents)
{
	while (!contents.empty() && (contents.back() == '\n' || contents.back() == ' '))
		contents.remove_suffix(1);
	return contents == "1";
}

Expected<std::optional<std::string>, std::string> enableRouteLocalnet(const IpAddress &containerV4)
{
	if (containerV4.family() != Family::IPv4)
		return Unexpected("route_localnet: " + containerV4.toString() + " is not an IPv4 address");

	auto sock = NetlinkSocket::open(NETLINK_ROUTE);
	if (!sock)
		return Unexpected(std::string("route_localnet: opening the netlink socket: ") +
				  std::strerror(sock.error()));
	std::array<char, rtnl::kRequestSize> buf{};
	nlmsghdr *req = rtnl::buildGetRoute(buf.data(), containerV4, sock->nextSeq());
	std::optional<unsigned> oif;
	auto r = sock->exchange(req, collectOif, &oif);
	if (!r) {
		if (meansNoRoute(r.error()))
			return std::optional<std::string>();
		return Unexpected("route_localnet: looking up the route to " + containerV4.toString() + ": " +
				  std::strerror(r.error()));
	}
	if (!oif)
		return std::optional<std::string>();

	/* Gone since the lookup (ENXIO): nothing left to configure. */
	std::array<char, IF_NAMESIZE> name{};
	if (!if_indextoname(*oif, name.data()))
		return std::optional<std::string>();
	std::string ifname(name.data());

	auto path = routeLocalnetPath(ifname);
	if (!path)
		return Unexpected("route_localnet: unusable interface name \"" + ifname + "\"");
	/*
	 * Written only when not 1 already: a /proc/sys that is read-only (a
	 * host or runtime that set it up front) is then no obstacle.
	 */
	auto current = readSmallFile(*path);
	if (!current || !sysctlIsOne(*current)) {
		auto w = writeSmallFile(*path, "1");
		if (!w)
			return Unexpected("route_localnet: " + w.error());
	}
	return std::optional<std::string>(std::move(ifname));
}

} /* namespace nftpm::sys */
