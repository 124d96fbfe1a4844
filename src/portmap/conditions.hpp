/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conditionsV4 / conditionsV6: the reference plugin pastes these tokens into
 * nft text. We accept a documented subset of that syntax and compile it to
 * expressions; anything outside the subset is an error, never passed on.
 *
 * Subset (each condition is one or more tokens; the whole list is split into
 * matches, ANDed):
 *   ip saddr|daddr [!=|==] <addr>|<prefix>|{ <addr|prefix>, ... }
 *   ip6 saddr|daddr [!=|==] <addr6>|<prefix6>|{ ... }
 *   iifname|oifname [!=|==] <name>|<name*>|{ <name>, ... }
 */
#pragma once

#include <string>
#include <vector>

#include "util/expected.hpp"
#include "util/ip.hpp"

struct nftnl_rule;

namespace nftpm {

namespace nft {
class Batch;
}

struct Condition {
	enum class Field { IpSaddr, IpDaddr, Ip6Saddr, Ip6Daddr, Iifname, Oifname };
	Field field;
	bool negated = false;
	std::vector<IpPrefix> prefixes; /* address fields */
	std::vector<std::string> names; /* interface fields; a trailing '*' is a wildcard */

	bool operator==(const Condition &) const = default;
};

using Conditions = std::vector<Condition>;

/*
 * Parses the tokens of conditionsV4 (family IPv4) or conditionsV6. The error
 * names the offending token and says what was expected.
 */
Expected<Conditions, std::string> parseConditions(Family family,
						  const std::vector<std::string> &tokens);

/* nft syntax of the conditions, for messages and the man page examples. */
std::string conditionsText(const Conditions &c);

} /* namespace nftpm */
