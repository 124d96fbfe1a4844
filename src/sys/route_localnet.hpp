/* SPDX-License-Identifier: Apache-2.0 */
/*
 * route_localnet on the host interface towards a container.
 *
 * Traffic to 127.0.0.1:hostPort is DNATed to the container, so it leaves the
 * host with a loopback source (until masquerade rewrites it). The kernel
 * drops such packets as martians unless net.ipv4.conf.<out-if>.route_localnet
 * is 1. IPv6 has no equivalent: [::1]:hostPort cannot be forwarded.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/expected.hpp"
#include "util/ip.hpp"

struct nlmsghdr;

namespace nftpm::sys {

/*
 * Asks the kernel which interface the host routes containerV4 through (one
 * RTM_GETROUTE, as `ip route get`) and sets route_localnet=1 on it, unless
 * it is 1 already. Returns the interface's name; nullopt when the kernel
 * has no usable route to the address (no route, unreachable, prohibit,
 * blackhole) or the interface vanished meanwhile, which is not an error
 * (the reference plugin skips those too). Errors: not an IPv4 address, the
 * netlink exchange itself failing, or the sysctl file that cannot be
 * written (named in the message).
 */
[[nodiscard]] Expected<std::optional<std::string>, std::string> enableRouteLocalnet(const IpAddress &containerV4);

/*
 * /proc/sys/net/ipv4/conf/<ifname>/route_localnet, with the name as one path
 * component, so that dotted names (VLANs like eth0.100) stay whole. nullopt
 * for a name the kernel would never give an interface (empty, longer than
 * 15, ".", "..", or with '/').
 */
std::optional<std::string> routeLocalnetPath(std::string_view ifname);

/* The contents of a boolean sysctl file say 1 ("1\n"). */
bool sysctlIsOne(std::string_view contents);

/* The rtnetlink messages of enableRouteLocalnet(), for unit tests. */
namespace rtnl {

constexpr std::size_t kRequestSize = 128;

/* RTM_GETROUTE (with NLM_F_ACK) for one address; buf holds kRequestSize bytes. */
nlmsghdr *buildGetRoute(void *buf, const IpAddress &dst, std::uint32_t seq);

/* RTA_OIF of an RTM_NEWROUTE answer; nullopt when it has none. */
std::optional<unsigned> outputInterface(const nlmsghdr *nlh);

} /* namespace rtnl */

} /* namespace nftpm::sys */
