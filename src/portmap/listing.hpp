/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `nft-portmap list`: the published ports as the kernel has them, per
 * network, container and interface, for people and scripts. It walks our
 * own table (the CNI commands never do).
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nft/error.hpp"
#include "nft/socket.hpp"
#include "portmap/mapping.hpp"
#include "portmap/ruleset.hpp"

namespace nftpm {

struct PublishedPort {
	std::optional<Attachment> owner; /* nullopt: element comment missing or foreign */
	std::string record; /* pm-<hash> of the owner ("" when unknown; a cut comment names a close guess) */
	ruleset::DnatRule rule;
	std::uint64_t packets = 0; /* connections DNATed: only a flow's first packet passes NAT */
	/* (the element's counter; for a port with conditions, the chain's rule counts instead) */
	std::uint64_t bytes = 0;
};

/* ENOENT when our table does not exist. */
[[nodiscard]] nft::Result<std::vector<PublishedPort>> listPublished(nft::Socket &s);

/* An aligned text table, one line per published port. */
std::string formatPublishedTable(const std::vector<PublishedPort> &ports);
/* A JSON array of objects (stable keys, for scripts). */
std::string formatPublishedJson(const std::vector<PublishedPort> &ports);

} /* namespace nftpm */
