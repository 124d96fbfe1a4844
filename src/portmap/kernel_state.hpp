/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading what one attachment owns in the kernel, and who owns map elements.
 * Every read here costs a fixed number of requests per attachment, however
 * many other containers the host has; only findReferences() walks the maps
 * (GC, and DEL's fallback when its chain is still referenced).
 */
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nft/error.hpp"
#include "nft/socket.hpp"
#include "portmap/mapping.hpp"
#include "portmap/ruleset.hpp"

namespace nftpm {

/* One attachment's chains as the kernel has them. */
struct AttachmentState {
	bool dnatChainExists = false;
	bool masqChainExists = false;
	std::vector<ruleset::DnatRule> dnatRules;
	std::vector<ruleset::MasqRule> masqRules;
	/* Rules that are not of the shape we write (someone edited the chain). */
	std::vector<std::string> undecodable;

	bool exists() const { return dnatChainExists || masqChainExists; }
	/* The element keys these rules publish. */
	std::vector<ruleset::ElementKey> keys() const;
};

[[nodiscard]] nft::Result<AttachmentState> readAttachment(nft::Socket &s, const Attachment &who);

/* Whether our table exists at all. */
[[nodiscard]] nft::Result<bool> tableExists(nft::Socket &s);

/*
 * The chain each key's element jumps to, aligned with keys: nullopt when the
 * element does not exist, "" when it exists but is not a jump.
 */
[[nodiscard]] nft::Result<std::vector<std::optional<std::string>>>
elementTargets(nft::Socket &s, const std::vector<ruleset::ElementKey> &keys);

/* Every element of our maps that jumps to one of these chains (walks the maps). */
[[nodiscard]] nft::Result<std::vector<ruleset::ElementKey>>
findReferences(nft::Socket &s, const std::vector<std::string> &chains);

/* The attachment named by a chain's comment, if the chain is one of ours. */
[[nodiscard]] nft::Result<std::optional<Attachment>> chainOwner(nft::Socket &s,
								 const std::string &chain);

} /* namespace nftpm */
