/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conditionsV4 / conditionsV6: the reference plugin pastes these tokens into
 * nft text. We accept a documented subset of that syntax and compile it to
 * expressions; anything outside the subset is an error, never passed on.
 *
 * The tokens are joined with spaces (as the reference does) and read again,
 * so ["ip", "daddr", "!=", "{ 127.0.0.0/8, 198.19.254.254 }"] and
 * ["ip daddr != {127.0.0.0/8,198.19.254.254}"] mean the same. Subset (a list
 * of matches, all of which must hold):
 *
 *   ip saddr|daddr [==|!=] <addr>|<prefix>|{ <addr|prefix>, ... }    conditionsV4 only
 *   ip6 saddr|daddr [==|!=] <addr6>|<prefix6>|{ ... }                conditionsV6 only
 *   iifname [==|!=] <name>|"<name>"|{ <name>, ... }
 *
 * An interface name ending in '*' matches every name with that prefix
 * ("veth*"). oifname is refused: the conditions guard DNAT rules that run
 * in prerouting, before routing has chosen an output interface, so an
 * oifname match there could never be true (nft accepts it and silently
 * never matches; we say so instead).
 *
 * Compiled inside each DNAT rule, after the port match (ruleset.hpp):
 *   single address        payload + cmp eq|neq
 *   single prefix         payload + bitwise mask + cmp eq|neq
 *   { ... }               payload + lookup of an anonymous constant set
 *                         (NFT_LOOKUP_F_INV for !=), an interval set when a
 *                         prefix or a wildcard name is in it
 *   iifname "eth0"        meta iifname + cmp of the 16-byte name
 *   iifname "veth*"       meta iifname + cmp of the prefix bytes only
 */
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "util/expected.hpp"
#include "util/ip.hpp"

struct nftnl_rule;

namespace nftpm {

namespace nft {
class Batch;
namespace expr {
class Reader;
}
} /* namespace nft */

struct Condition {
	enum class Field { IpSaddr, IpDaddr, Ip6Saddr, Ip6Daddr, Iifname };
	Field field;
	bool negated = false;
	bool set = false;               /* written as { ... } (even with one value) */
	std::vector<IpPrefix> prefixes; /* address fields; a bare address has full length */
	std::vector<std::string> names; /* iifname; a trailing '*' is a wildcard */

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

/*
 * Appends the conditions' expressions to r, whose table and family must be
 * set. An anonymous set that a condition needs is added to b (NEWSET and
 * its NEWSETELEM) before the caller adds r, and r refers to it by set id.
 * Register 1 is used as scratch; address conditions assume the rule has
 * already matched "meta nfproto" of their family.
 */
void addConditionExprs(nft::Batch &b, nftnl_rule *r, const Conditions &c);

/*
 * Moves rd past the expressions of as many conditions as follow (shapes
 * addConditionExprs writes) and returns how many it passed. The contents of
 * anonymous sets are not in a rule dump, so this recognises, not decodes.
 */
std::size_t skipConditionExprs(nft::expr::Reader &rd);

} /* namespace nftpm */
