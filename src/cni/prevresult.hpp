/* SPDX-License-Identifier: Apache-2.0 */
/* What the plugin needs from the previous plugin's result. */
#pragma once

#include <optional>
#include <string_view>

#include "cni/error.hpp"
#include "cni/json.hpp"
#include "util/ip.hpp"

namespace nftpm::cni {

struct ContainerAddresses {
	std::optional<IpPrefix> v4;
	std::optional<IpPrefix> v6;
};

/*
 * The container's addresses as the reference picks them: the first IPv4
 * and the first IPv6 entry of "ips", skipping an entry only when its
 * "interface" index points into "interfaces" at an interface that is not
 * ifname or has no sandbox. An absent, negative or out-of-range index is
 * accepted. The prefix length is kept (10.88.0.2/16). Works on both result
 * shapes (0.3.x/0.4.0 with ips[].version, 1.x without). Malformed entries
 * are code 7 errors naming them.
 */
Result<ContainerAddresses> selectContainerAddresses(const Json &prevResult, std::string_view ifname);

} /* namespace nftpm::cni */
