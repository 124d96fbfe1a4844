/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading what one attachment owns in the kernel, and who owns elements.
 * Every read here costs a fixed number of requests per attachment (its
 * record, its chain if it has conditions, and one pipelined lookup per set
 * of its keys), however many other containers the host has; only
 * findOwnedElements() and findReferences() walk our sets (GC, and the
 * fallbacks for a record or chain that was damaged by hand).
 */
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nft/error.hpp"
#include "nft/socket.hpp"
#include "portmap/mapping.hpp"
#include "portmap/ruleset.hpp"

namespace nftpm {

/* One attachment's record and chain as the kernel has them. */
struct AttachmentState {
	bool recordExists = false;
	unsigned recordParts = 0;  /* objects of the record found (pm-<hash>, -1, ...) */
	ruleset::AttachmentPlan recorded; /* decoded from the record (conditions not included) */
	bool recordValid = false;  /* the record decoded */
	bool chainExists = false;
	std::vector<ruleset::DnatRule> chainRules;
	bool chainClosed = false;  /* its last rule is the closing accept */
	/* What could not be read back: a damaged record, or rules we did not write. */
	std::vector<std::string> problems;

	bool exists() const { return recordExists || chainExists; }
	/* The element keys the record says this attachment published. */
	std::vector<ruleset::ElementKey> keys() const;
};

[[nodiscard]] nft::Result<AttachmentState> readAttachment(nft::Socket &s, const Attachment &who);

/* Whether our table exists at all. */
[[nodiscard]] nft::Result<bool> tableExists(nft::Socket &s);

/* An element as read back: who owns it and what it maps to. */
struct ElementState {
	std::optional<std::string> comment; /* the owner's attachmentComment */
	std::vector<std::uint8_t> data;     /* data maps: container address . port */
	std::string dataText;               /* "10.88.0.2 . 80", "jump pm-...", or empty */
};

/* Each key's element, aligned with keys: nullopt when it does not exist. */
[[nodiscard]] nft::Result<std::vector<std::optional<ElementState>>>
readElements(nft::Socket &s, const std::vector<ruleset::ElementKey> &keys);

/*
 * The static chains: nullopt problem when intact, otherwise what is wrong;
 * and the masq sets that have their postrouting rule. Four requests,
 * whatever the number of containers.
 */
struct SkeletonState {
	std::optional<std::string> problem;
	std::vector<ruleset::MasqSet> masqRules;
};
[[nodiscard]] nft::Result<SkeletonState> readSkeleton(nft::Socket &s);

/* Every masq set of our table (walks the table's sets; there are a few). */
[[nodiscard]] nft::Result<std::vector<ruleset::MasqSet>> listMasqSets(nft::Socket &s);

/* Every element of our sets whose comment matches (walks every set). */
[[nodiscard]] nft::Result<std::vector<ruleset::ElementKey>>
findOwnedElements(nft::Socket &s, const std::function<bool(const std::string &comment)> &match);

} /* namespace nftpm */
