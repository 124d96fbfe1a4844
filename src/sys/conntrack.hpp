/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Deleting stale UDP conntrack entries of published ports.
 *
 * A UDP "connection" lives in conntrack for as long as datagrams keep
 * arriving. Entries created before a port was published (or while it pointed
 * at a container that has since been replaced) keep steering the flow to the
 * old destination, so the new mapping never sees it: the reference plugin's
 * issue #123 (after ADD) and #1190 (after DEL). Deleting them lets the next
 * datagram go through the current NAT rules.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/expected.hpp"
#include "util/ip.hpp"

namespace nftpm::sys {

/*
 * Deletes every conntrack entry of that family whose protocol is UDP and
 * whose ORIGINAL-direction destination port is one of ports (any address,
 * any zone), and returns how many were deleted.
 *
 * One dump per call, whatever the number of ports, narrowed in the kernel
 * to UDP of the family (and to the port too when there is only one).
 * Entries that disappear between the dump and their deletion are not
 * errors and are not counted; a dump the kernel reports as interrupted is
 * started again, a bounded number of times. An empty ports list does
 * nothing and never touches the kernel.
 */
[[nodiscard]] Expected<unsigned, std::string>
flushUdpByDestinationPort(Family family, const std::vector<std::uint16_t> &ports);

} /* namespace nftpm::sys */
