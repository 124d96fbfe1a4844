/* SPDX-License-Identifier: Apache-2.0 */
/* The domain: what one attachment publishes, independent of CNI and netlink. */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/ip.hpp"

namespace nftpm {

enum class Protocol : std::uint8_t {
	TCP = 6,   /* IPPROTO_TCP */
	UDP = 17,  /* IPPROTO_UDP */
	SCTP = 132 /* IPPROTO_SCTP */
};

/* "tcp", "udp", "sctp" */
const char *protocolName(Protocol p);
/* Case-insensitive; nullopt for anything else. */
std::optional<Protocol> parseProtocol(std::string_view name);

/* One runtimeConfig.portMappings entry, validated. */
struct PortMapping {
	std::uint16_t hostPort = 0;
	std::uint16_t containerPort = 0;
	Protocol protocol = Protocol::TCP;
	/* nullopt: every local address ("", "0.0.0.0" and "::" in the config). */
	std::optional<IpAddress> hostIP;

	bool operator==(const PortMapping &) const = default;
};

/*
 * Who owns kernel state: one CNI attachment. The same container attached to
 * two networks, or twice to one network through two interfaces, owns two
 * independent sets of mappings.
 */
struct Attachment {
	std::string network;     /* config "name" */
	std::string containerId; /* CNI_CONTAINERID */
	std::string ifname;      /* CNI_IFNAME */

	bool operator==(const Attachment &) const = default;
};

} /* namespace nftpm */
