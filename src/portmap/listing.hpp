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
	std::optional<Attachment> owner; /* nullopt: chain comment missing or foreign */
	std::string chain;
	ruleset::DnatRule rule;
	std::uint64_t packets = 0; /* connections DNATed: only a flow's first packet passes NAT */
	std::uint64_t bytes = 0;
};

/* ENOENT when our table does not exist. */
[[nodiscard]] nft::Result<std::vector<PublishedPort>> listPublished(nft::Socket &s);

/* An aligned text table, one line per published port. */
std::string formatPublishedTable(const std::vector<PublishedPort> &ports);
/* A JSON array of objects (stable keys, for scripts). */
std::string formatPublishedJson(const std::vector<PublishedPort> &ports);

} /* namespace nftpm */
