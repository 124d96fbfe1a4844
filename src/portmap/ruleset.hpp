/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The nftables layout of nft-portmap, built as libnftnl objects into a Batch,
 * and read back from kernel objects. Everything about names, keys and rule
 * shapes lives here; the commands (engine.cpp) only decide what to add or
 * delete.
 *
 *   table inet nft-portmap {
 *     comment "nft-portmap: container ports published by the nft-portmap CNI plugin"
 *     map ports4     { type inet_proto . inet_service : ipv4_addr . inet_service; counter }
 *     map ports6     { type inet_proto . inet_service : ipv6_addr . inet_service; counter }
 *     map addrports4 { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; counter }
 *     map addrports6 { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; counter }
 *       (elements: host key counter comment "<attachmentComment>" : container address . port)
 *     map guard4, guard6, addrguard4, addrguard6 { same keys : verdict }
 *       (only attachments with conditions: key comment "..." : jump pm-<hash>)
 *     set masq4-<n>  { type ipv4_addr . ipv4_addr }  # one per source prefix length n in use
 *     set masq6-<n>  { type ipv6_addr . ipv6_addr }
 *       (elements: container address . source network comment "<attachmentComment>")
 *     counter pm-<hash> { comment "<attachmentComment>" }   # the attachment's record
 *     chain prerouting  { type nat hook prerouting priority dstnat; policy accept;
 *                         fib daddr type local jump dispatch }
 *     chain output      { type nat hook output priority dstnat; policy accept;
 *                         fib daddr type local jump dispatch }
 *     chain dispatch    { ip daddr . meta l4proto . th dport vmap @addrguard4
 *                         dnat ip to ip daddr . meta l4proto . th dport map @addrports4
 *                         meta nfproto ipv4 meta l4proto . th dport vmap @guard4
 *                         meta nfproto ipv4 dnat ip to meta l4proto . th dport map @ports4
 *                         (the same four for ip6) }
 *     chain postrouting { type nat hook postrouting priority srcnat; policy accept;
 *                         ct status dnat ip daddr . ip saddr & 255.255.0.0 @masq4-16 counter masquerade
 *                         (one rule per masq set, added with its set) }
 *     chain pm-<hash> {   # only for conditions: the attachment's guarded DNAT rules
 *       meta nfproto ipv4 [ip daddr H] meta l4proto tcp th dport 8080 <conditionsV4>
 *         counter dnat ip to 10.88.0.2:80
 *       accept }
 *   }
 *
 * Why this shape: a commit costs the kernel nothing per container only when
 * it adds no jump to a per-container chain (each such jump makes the kernel
 * re-validate every chain reachable from the base chains) and when there is
 * no per-container chain at all (every commit walks the chain list). So
 * DNAT is one lookup in a data map, hairpin masquerade one lookup per
 * prefix length in a hash set of (container, source network) pairs, and
 * what an attachment owns is recorded in a named counter object, found by
 * name in a hash table. Only attachments with conditions keep a chain: their
 * keys are claimed in the data map as well (so that NLM_F_EXCL keeps every
 * host key exclusive) and looked up first in a guard vmap that jumps to the
 * chain, which ends in accept so that the claim never DNATs by itself.
 *
 * masqAll uses the source prefix of length 0; localhost uses 127.0.0.0/8.
 * Rules are listed here as they are built; `nft list` hides the meta
 * nfproto that an ip/ip6 match implies and prints "meta l4proto tcp th
 * dport" as "tcp dport".
 *
 * Every element carries its owner's comment, so ownership is the element's
 * comment: a DEL removes an element only while it still carries its own.
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

enum class MapId {
	Ports4, Ports6, AddrPorts4, AddrPorts6, /* data maps: host key : container address . port */
	Guard4, Guard6, AddrGuard4, AddrGuard6, /* verdict maps of attachments with conditions */
	Masq4, Masq6,                           /* masq4-<n>, masq6-<n>: one set per prefix length */
};
/* The name of a fixed map; for Masq4/Masq6 see masqSetName(). */
const char *mapName(MapId m);
/* The data map whose keys a guard map shares (any other map: itself). */
MapId dataMapOf(MapId m);
/* "masq4-16": the set of (container, source network) pairs of one prefix length. */
std::string masqSetName(Family f, unsigned prefixLength);

/*
 * "pm-" + 16 lowercase hex digits of the 64-bit FNV-1a hash of
 * network NUL containerId NUL ifname: the same in every process, so DEL,
 * CHECK and GC find an attachment's record (and chain) by name, without any
 * state. Continuation records are named "<name>-1", "<name>-2", ...
 */
std::string attachmentName(const Attachment &a);
std::string recordName(const Attachment &a, unsigned part);

/*
 * The comment of an attachment's record, chain and elements:
 * "net=<network> id=<containerId> if=<ifname>", at most 127 bytes so that
 * it fits nft's 128-byte comments with its NUL. When it would be longer,
 * the container ID is cut (to no less than 12 characters), then the
 * network name, then the ifname, each cut field ending in the marker '~'
 * (a character that CNI allows in none of them) and 8 hex digits of a hash
 * of the whole field.
 */
std::string attachmentComment(const Attachment &a);
inline constexpr char kCutMarker = '~';
/* The comment of a chain (NFTNL_UDATA_CHAIN_COMMENT), if it has one. */
std::optional<std::string> chainComment(const nftnl_chain *c);
/* The comment of an object (NFTNL_UDATA_OBJ_COMMENT), if it has one. */
std::optional<std::string> objectComment(const nftnl_obj *o);

/* One DNAT of an attachment: a mapping resolved to one family's container address. */
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
	/* Whether the family's DNATs go through the guard maps and chain (conditions given). */
	bool guardedV4 = false;
	bool guardedV6 = false;

	/*
	 * FNV-1a 64 of conditionsText() of each family (0: none): what the
	 * record keeps of the conditions, so that CHECK can tell when they
	 * changed (the chain's rules hold them compiled, with anonymous sets).
	 */
	std::uint64_t conditionsHashV4 = 0;
	std::uint64_t conditionsHashV6 = 0;

	bool guarded(Family f) const { return f == Family::IPv4 ? guardedV4 : guardedV6; }
	/* Whether the attachment has a chain (some family is guarded and has rules). */
	bool hasChain() const;
	/* The rules of guarded families: the DNAT rules of the chain, in order. */
	std::vector<DnatRule> chainRules() const;
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

/* One element of one of our sets, by key. */
struct ElementKey {
	MapId map;
	std::uint8_t sourceLength = 0; /* Masq4/Masq6: the prefix length of the set */
	std::vector<std::uint8_t> key; /* kernel encoding: fields padded to 4 bytes */
	std::string text;              /* nft syntax: "192.0.2.1 . tcp . 8080" */

	std::string setName() const;
	bool operator==(const ElementKey &) const = default;
	bool operator<(const ElementKey &o) const;
};

/* An element a plan publishes: its key and its data. */
struct PlannedElement {
	ElementKey key;
	/* Data maps: container address . port (kernel encoding); empty for sets and guards. */
	std::vector<std::uint8_t> data;
	std::string dataText; /* "10.88.0.2 . 80", "jump pm-...", or empty */
};

/* The data-map element of one DNAT rule. */
PlannedElement portElement(const DnatRule &r);
/* Every element of a plan, data maps first, then guards, then masq sets; unique by key. */
std::vector<PlannedElement> planElements(const AttachmentPlan &p);
/* The keys of planElements(). */
std::vector<ElementKey> planKeys(const AttachmentPlan &p);

/* A masquerade set in use: its family and source prefix length. */
struct MasqSet {
	Family family;
	std::uint8_t sourceLength;
	bool operator==(const MasqSet &) const = default;
	bool operator<(const MasqSet &o) const;
};
/* The masq sets a plan's masq elements are in. */
std::vector<MasqSet> planMasqSets(const AttachmentPlan &p);

/*
 * Table, maps, base chains and the dispatch chain with its rules. The table
 * is added with NLM_F_EXCL, so that two plugins racing to build the skeleton
 * cannot both add the static rules: the loser gets EEXIST and retries.
 * repair: the table exists but its static rules were lost or changed (an
 * admin's "nft flush table"): the table is not added exclusively, the static
 * chains are flushed and written again, and postrouting gets the rules of
 * the masq sets in masqSets again.
 */
void addSkeleton(nft::Batch &b, const Priorities &prio, bool repair = false,
		 const std::vector<MasqSet> &masqSets = {});

/* A masq set and its postrouting rule (the set is added without NLM_F_EXCL). */
void addMasqSet(nft::Batch &b, const MasqSet &m);
/* Only the postrouting rule of an existing masq set. */
void addMasqRule(nft::Batch &b, const MasqSet &m);

/*
 * The attachment's record: counter pm-<hash> (and pm-<hash>-1, ... when the
 * rules do not fit one object's userdata), added exclusively: delete the
 * old one first (deleteRecord).
 */
void addRecord(nft::Batch &b, const AttachmentPlan &p);

/*
 * The chain of an attachment with conditions and its rules, ending in
 * accept. A chain that exists is flushed, one that does not is created
 * (exclusively).
 */
void addChain(nft::Batch &b, const AttachmentPlan &p, bool chainExists);

/*
 * NEWSETELEM of these elements, each in a message of its own with
 * NLM_F_EXCL, so a key held by anyone fails with EEXIST and the batch error
 * names that element ("add element inet nft-portmap ports4 { tcp . 8080 :
 * 10.88.0.2 . 80 }"). comment: the owner's attachmentComment.
 */
void addElements(nft::Batch &b, const std::vector<PlannedElement> &elements,
		 const std::string &comment, const std::string &chain);

/* DELSETELEM of these keys (each must exist). */
void deleteElements(nft::Batch &b, const std::vector<ElementKey> &keys);

/* Delete the record objects pm-<hash> and its continuations 1..parts-1. */
void deleteRecord(nft::Batch &b, const Attachment &who, unsigned parts);
/* Delete one record object by name (GC). */
void deleteRecordObject(nft::Batch &b, const std::string &name);

/* Flush and delete an attachment's chain by name (must be unreferenced by then). */
void deleteChain(nft::Batch &b, const std::string &chain);

/*
 * The record: a plan without its conditions (which only the chain's rules
 * carry), encoded in the userdata of one or more counter objects. Returns
 * the udata TLV blobs, one per object; the first carries the comment.
 */
std::vector<std::vector<std::uint8_t>> encodeRecord(const AttachmentPlan &p);
/* The number of objects a record says it spans (from the first object's userdata). */
Expected<unsigned, std::string> recordParts(const nftnl_obj *first);
/* The plan a record's objects describe (who is taken from the caller). */
Expected<AttachmentPlan, std::string> decodeRecord(const Attachment &who,
						   const std::vector<const nftnl_obj *> &objects);

/*
 * Decodes one DNAT rule of an attachment chain built by addRecordAndChain
 * (from a kernel dump or a parsed batch). Conditions are recognised and
 * passed over, not decoded: their anonymous sets are not part of a rule.
 * Any other shape is an error saying what was expected where.
 */
Expected<DnatRule, std::string> decodeDnatRule(const nftnl_rule *r);
/* Whether a rule is the chain's closing "accept". */
bool isAcceptRule(const nftnl_rule *r);
/* The masq set a postrouting rule looks up, if the rule is of our shape. */
Expected<MasqSet, std::string> decodeMasqRule(const nftnl_rule *r);
/* A masq set name parsed back ("masq4-16"). */
std::optional<MasqSet> parseMasqSetName(const std::string &name);

/* The data of a data-map element as text ("10.88.0.2 . 80"), or "jump <chain>". */
std::string elementDataText(MapId m, const nftnl_set_elem *e);
/* The raw data bytes of an element (data maps), empty when it has none. */
std::vector<std::uint8_t> elementData(const nftnl_set_elem *e);
/* The comment of an element (NFTNL_UDATA_SET_ELEM_COMMENT), if it has one. */
std::optional<std::string> elementComment(const nftnl_set_elem *e);
/* Packets and bytes of an element's counter, if it has one. */
std::optional<std::pair<std::uint64_t, std::uint64_t>> elementCounter(const nftnl_set_elem *e);
/*
 * The comment (attachmentComment) parsed back; nullopt if not of that
 * form. A field that was cut keeps its marker: compare with commentMatches().
 */
std::optional<Attachment> parseAttachmentComment(const std::string &comment);
/* Whether a field read from a comment is this value (exactly, or cut from it). */
bool commentFieldMatches(const std::string &fromComment, const std::string &value);
/* Whether a field of an Attachment read from a comment was cut. */
bool isCutComment(const Attachment &fromComment);
/* Whether an Attachment read from a comment is a (all three fields). */
bool commentMatches(const Attachment &fromComment, const Attachment &a);
/* nft syntax of a key: "192.0.2.1 . tcp . 8080", "tcp . 8080", "10.88.0.2 . 10.88.0.0". */
std::string keyText(MapId m, const std::vector<std::uint8_t> &key);
/* The key of an element as an ElementKey of set m (sourceLength for masq sets). */
ElementKey elementKey(MapId m, std::uint8_t sourceLength, const nftnl_set_elem *e);
/* The DNAT rule a data-map element stands for (nullopt if its data does not decode). */
std::optional<DnatRule> elementDnat(MapId m, const nftnl_set_elem *e);

} /* namespace nftpm::ruleset */
