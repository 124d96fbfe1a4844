/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The nftables layout of nft-portmap, built as libnftnl objects into a Batch,
 * and read back from kernel objects. Everything about names, keys and rule
 * shapes lives here; the commands (engine.cpp) only decide what to add or
 * delete.
 *
 *   table inet nft-portmap {
 *     comment "nft-portmap: container ports published by the nft-portmap CNI plugin"
 *     map ports4     { type inet_proto . inet_service : verdict }            # any IPv4 host address
 *     map ports6     { type inet_proto . inet_service : verdict }            # any IPv6 host address
 *     map addrports4 { type ipv4_addr . inet_proto . inet_service : verdict } # hostIP given
 *     map addrports6 { type ipv6_addr . inet_proto . inet_service : verdict }
 *     map masq4      { type ipv4_addr : verdict }   # container address : jump its masq chain
 *     map masq6      { type ipv6_addr : verdict }
 *       (elements: key comment "<attachmentComment>" : jump <owner's chain>)
 *     chain prerouting  { type nat hook prerouting priority dstnat; policy accept;
 *                         fib daddr type local jump dispatch }
 *     chain output      { type nat hook output priority dstnat; policy accept;
 *                         fib daddr type local jump dispatch }
 *     chain dispatch    { ip daddr . meta l4proto . th dport vmap @addrports4
 *                         meta nfproto ipv4 meta l4proto . th dport vmap @ports4
 *                         ip6 daddr . meta l4proto . th dport vmap @addrports6
 *                         meta nfproto ipv6 meta l4proto . th dport vmap @ports6 }
 *     chain postrouting { type nat hook postrouting priority srcnat; policy accept;
 *                         ct status dnat ip daddr vmap @masq4
 *                         ct status dnat ip6 daddr vmap @masq6 }
 *     chain pm-<hash> {       # one attachment's DNAT; comment "<attachmentComment>"
 *       meta nfproto ipv4 [ip daddr H] meta l4proto tcp th dport 8080 [conditionsV4]
 *         counter dnat ip to 10.88.0.2:80
 *       meta nfproto ipv6 [ip6 daddr H] meta l4proto tcp th dport 8080 [conditionsV6]
 *         counter dnat ip6 to [fd00::2]:80 }
 *     chain pm-<hash>-masq {  # one attachment's hairpin/localhost masquerade; same comment
 *       meta nfproto ipv4 ip daddr 10.88.0.2 ip saddr 10.88.0.0/16 counter masquerade
 *       meta nfproto ipv4 ip daddr 10.88.0.2 ip saddr 127.0.0.0/8 counter masquerade
 *       meta nfproto ipv6 ip6 daddr fd00::2 ip6 saddr fd00::/64 counter masquerade }
 *   }
 *
 * masqAll: one rule per family without the saddr match. Masquerade rules
 * and masq4/masq6 elements exist for a family only when snat is on and the
 * plan has DNAT rules of that family. Rules are listed here as they are
 * built; `nft list` hides the meta nfproto that an ip/ip6 match implies and
 * prints "meta l4proto tcp th dport" as "tcp dport".
 *
 * Every map element jumps to the chain of the attachment that owns it, so
 * ownership is the element's verdict: a DEL removes an element only when it
 * still points to the DEL's own chain.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nft/batch.hpp"
#include "nft/handles.hpp"
#include "portmap/conditions.hpp"
#include "portmap/mapping.hpp"
#include "util/expected.hpp"
#include "util/ip.hpp"

namespace nftpm::ruleset {

inline constexpr char kTableName[] = "nft-portmap";
inline constexpr std::uint16_t kTableFamily = 1; /* NFPROTO_INET */

/* Base-chain priorities; the defaults are nft's dstnat (-100) and srcnat (100). */
struct Priorities {
	int dstnat = -100;
	int srcnat = 100;
};

enum class MapId { Ports4, Ports6, AddrPorts4, AddrPorts6, Masq4, Masq6 };
const char *mapName(MapId m);

/*
 * "pm-" + 16 lowercase hex digits of the 64-bit FNV-1a hash of
 * network NUL containerId NUL ifname: the same in every process, so DEL,
 * CHECK and GC find an attachment's chains by name, without any state.
 */
std::string dnatChainName(const Attachment &a);
/* dnatChainName(a) + "-masq" */
std::string masqChainName(const Attachment &a);

/*
 * The comment of an attachment's chains and map elements:
 * "net=<network> id=<containerId> if=<ifname>", at most 127 bytes so that
 * it fits nft's 128-byte comments with its NUL. When it would be longer,
 * the container ID is cut (to no less than 12 characters), then the
 * network name, then the ifname, each cut field ending in the marker '~'
 * (a character that CNI allows in none of them). The chain name, not the
 * comment, identifies an attachment; the comment is for people and for GC.
 */
std::string attachmentComment(const Attachment &a);
inline constexpr char kCutMarker = '~';
/* The comment of a chain (NFTNL_UDATA_CHAIN_COMMENT), if it has one. */
std::optional<std::string> chainComment(const nftnl_chain *c);

/* One DNAT rule of an attachment: a mapping resolved to one family's container address. */
struct DnatRule {
	PortMapping mapping;     /* hostIP, when set, has the rule's family and is not 0.0.0.0/:: */
	IpAddress containerAddr; /* its family is the rule's family */

	Family family() const { return containerAddr.family(); }
	bool operator==(const DnatRule &) const = default;
};

/* The complete desired state of one attachment. */
struct AttachmentPlan {
	Attachment who;
	std::vector<DnatRule> rules;         /* in rule order */
	std::optional<IpPrefix> containerV4; /* address with its subnet prefix */
	std::optional<IpPrefix> containerV6;
	bool snat = true;
	bool masqAll = false;
	Conditions conditionsV4; /* compiled from conditionsV4 */
	Conditions conditionsV6;

	/* Whether a masq chain and masq4/masq6 elements exist for this plan. */
	bool hasMasquerade() const;
};

/*
 * Resolves mappings against the container addresses as the reference does:
 * a mapping with a hostIP of one family only applies to that family; a
 * mapping without hostIP (or with 0.0.0.0 / ::, which mean the same) applies
 * to every family the container has. Rules follow the mappings' order, IPv4
 * before IPv6 for each; an identical rule is kept once. Two mappings with
 * the same host key but different container ports both get a rule, but
 * only one element: the first rule wins (as with the reference's rule list).
 */
AttachmentPlan makePlan(Attachment who, const std::vector<PortMapping> &mappings,
			std::optional<IpPrefix> containerV4, std::optional<IpPrefix> containerV6,
			bool snat, bool masqAll, Conditions conditionsV4, Conditions conditionsV6);

/* One map element, by key. */
struct ElementKey {
	MapId map;
	std::vector<std::uint8_t> key; /* kernel encoding: fields padded to 4 bytes */
	std::string text;              /* nft syntax: "192.0.2.1 . tcp . 8080" */

	bool operator==(const ElementKey &) const = default;
};

/* The port-map elements (ports4/6, addrports4/6) that rules publish. */
ElementKey portKey(const DnatRule &r);
/* The masq4/masq6 element of one container address. */
ElementKey masqKey(const IpAddress &containerAddr);
/* All element keys a plan owns, port keys first, without duplicates. */
std::vector<ElementKey> planKeys(const AttachmentPlan &p);

/*
 * Table, maps, base chains, dispatch chain and their rules. The table is
 * added with NLM_F_EXCL, so that two plugins racing to build the skeleton
 * cannot both add the static rules: the loser gets EEXIST and retries.
 * repair: the table exists but its static rules were lost or changed (an
 * admin's "nft flush table"): the table is not added exclusively, and the
 * static chains are flushed and written again.
 */
void addSkeleton(nft::Batch &b, const Priorities &prio, bool repair = false);

/*
 * The attachment's chains and rules, and its map elements: one NEWSETELEM
 * per key with NLM_F_EXCL, so a key held by anyone (the attachment itself
 * included: delete its old elements first) fails with EEXIST and the batch
 * error names that element ("add element inet nft-portmap ports4 { tcp .
 * 8080 : jump pm-... }"). A chain that exists is flushed, one that does not
 * is created (exclusively). The masq chain is only touched when the plan
 * has masquerade; deleting a masq chain it no longer needs is the caller's.
 * Anonymous sets of conditions come right before the rule that uses them.
 */
void addAttachment(nft::Batch &b, const AttachmentPlan &p, bool dnatChainExists,
		   bool masqChainExists);

/* DELSETELEM of these keys (each must exist). */
void deleteElements(nft::Batch &b, const std::vector<ElementKey> &keys);

/* Flush and delete an attachment's chain by name (must be unreferenced by then). */
void deleteChain(nft::Batch &b, const std::string &chain);

/*
 * Decodes one rule of a DNAT chain / masq chain built by addAttachment
 * (from a kernel dump or a parsed batch). Conditions are recognised and
 * passed over, not decoded: their anonymous sets are not part of a rule.
 * Any other shape is an error saying what was expected where.
 */
Expected<DnatRule, std::string> decodeDnatRule(const nftnl_rule *r);
struct MasqRule {
	IpAddress containerAddr;
	std::optional<IpPrefix> source; /* nullopt: masquerade every source (masqAll) */

	bool operator==(const MasqRule &) const = default;
};
Expected<MasqRule, std::string> decodeMasqRule(const nftnl_rule *r);
/* The masquerade rules addAttachment writes for a plan, in order. */
std::vector<MasqRule> planMasqRules(const AttachmentPlan &p);

/* The chain a vmap element jumps to, or nullopt if it is not a jump. */
std::optional<std::string> elementTarget(const nftnl_set_elem *e);
/* The comment of an element (NFTNL_UDATA_SET_ELEM_COMMENT), if it has one. */
std::optional<std::string> elementComment(const nftnl_set_elem *e);
/*
 * The chain comment (attachmentComment) parsed back; nullopt if not of that
 * form. A field that was cut keeps its marker: compare with commentMatches().
 */
std::optional<Attachment> parseAttachmentComment(const std::string &comment);
/* Whether a field read from a comment is this value (exactly, or cut from it). */
bool commentFieldMatches(const std::string &fromComment, const std::string &value);
/* Whether an Attachment read from a comment is a (all three fields). */
bool commentMatches(const Attachment &fromComment, const Attachment &a);
/* nft syntax of a key of map m: "192.0.2.1 . tcp . 8080", "tcp . 8080", "10.88.0.2". */
std::string keyText(MapId m, const std::vector<std::uint8_t> &key);
/* keyText() of an element's key. */
std::string keyText(MapId m, const nftnl_set_elem *e);

} /* namespace nftpm::ruleset */
