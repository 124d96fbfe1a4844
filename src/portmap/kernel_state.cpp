/* SPDX-License-Identifier: Apache-2.0 */
#include "portmap/kernel_state.hpp"

#include <algorithm>
#include <cerrno>
#include <map>

#include <linux/netfilter/nf_tables.h>

#include "nft/query.hpp"

namespace nftpm {

using ruleset::ElementKey;
using ruleset::kTableFamily;
using ruleset::kTableName;
using ruleset::MapId;

std::vector<ElementKey> AttachmentState::keys() const
{
	if (!recordValid)
		return {};
	return ruleset::planKeys(recorded);
}

namespace {

/* A missing table or object reads as "absent", not as an error. */
template<typename T>
nft::Result<std::optional<T>> absentIfMissing(nft::Result<T> r)
{
	if (r)
		return std::optional<T>(std::move(r).value());
	if (r.error().errnum == ENOENT)
		return std::optional<T>();
	return Unexpected(std::move(r).error());
}

} /* namespace */

nft::Result<AttachmentState> readAttachment(nft::Socket &s, const Attachment &who)
{
	AttachmentState st;

	auto first = absentIfMissing(
		nft::getObject(s, kTableFamily, kTableName, NFT_OBJECT_COUNTER, ruleset::recordName(who, 0)));
	if (!first)
		return Unexpected(std::move(first).error());
	if (*first) {
		st.recordExists = true;
		std::vector<nft::ObjPtr> objects;
		objects.push_back(std::move(**first));
		auto parts = ruleset::recordParts(objects[0].get());
		if (!parts) {
			st.problems.push_back("record " + ruleset::recordName(who, 0) + ": " + parts.error());
			st.recordParts = 1;
		} else {
			for (unsigned i = 1; i < *parts; i++) {
				auto o = absentIfMissing(nft::getObject(s, kTableFamily, kTableName,
									NFT_OBJECT_COUNTER,
									ruleset::recordName(who, i)));
				if (!o)
					return Unexpected(std::move(o).error());
				if (!*o) {
					st.problems.push_back("record part " + ruleset::recordName(who, i) +
							      " is missing");
					break;
				}
				objects.push_back(std::move(**o));
			}
			st.recordParts = static_cast<unsigned>(objects.size());
			if (st.recordParts == *parts) {
				std::vector<const nftnl_obj *> raw;
				for (const auto &o : objects)
					raw.push_back(o.get());
				auto plan = ruleset::decodeRecord(who, raw);
				if (plan) {
					st.recorded = std::move(plan).value();
					st.recordValid = true;
				} else {
					st.problems.push_back("record " + ruleset::recordName(who, 0) + ": " +
							      plan.error());
				}
			}
		}
	}

	/* Only attachments with conditions have a chain (or ones whose record is damaged). */
	if (st.recordValid && !st.recorded.hasChain())
		return st;
	auto rules = absentIfMissing(nft::getRules(s, kTableFamily, kTableName, ruleset::attachmentName(who)));
	if (!rules)
		return Unexpected(std::move(rules).error());
	if (*rules) {
		st.chainExists = true;
		const auto &list = **rules;
		for (std::size_t i = 0; i < list.size(); i++) {
			if (i + 1 == list.size() && ruleset::isAcceptRule(list[i].get())) {
				st.chainClosed = true;
				break;
			}
			auto d = ruleset::decodeDnatRule(list[i].get());
			if (d)
				st.chainRules.push_back(*d);
			else
				st.problems.push_back(d.error());
		}
	}
	return st;
}

nft::Result<bool> tableExists(nft::Socket &s)
{
	auto t = absentIfMissing(nft::getTable(s, kTableFamily, kTableName));
	if (!t)
		return Unexpected(std::move(t).error());
	return t->has_value();
}

nft::Result<std::vector<std::optional<ElementState>>>
readElements(nft::Socket &s, const std::vector<ElementKey> &keys)
{
	std::vector<std::optional<ElementState>> out(keys.size());

	/* One pipelined request per set, however many keys it has. */
	std::map<std::string, std::vector<std::size_t>> bySet;
	for (std::size_t i = 0; i < keys.size(); i++)
		bySet[keys[i].setName()].push_back(i);

	for (const auto &[set, indices] : bySet) {
		std::vector<std::vector<std::uint8_t>> raw;
		for (std::size_t i : indices)
			raw.push_back(keys[i].key);
		auto elems = nft::getElements(s, kTableFamily, kTableName, set, raw);
		if (!elems) {
			/* No table or set: no element exists. */
			if (elems.error().errnum == ENOENT)
				continue;
			return Unexpected(std::move(elems).error());
		}
		for (std::size_t j = 0; j < indices.size(); j++) {
			const auto &e = (*elems)[j];
			if (!e)
				continue;
			const MapId map = keys[indices[j]].map;
			out[indices[j]] = ElementState{ ruleset::elementComment(e.get()),
							ruleset::elementData(e.get()),
							ruleset::elementDataText(map, e.get()) };
		}
	}
	return out;
}

nft::Result<SkeletonState> readSkeleton(nft::Socket &s)
{
	SkeletonState st;
	struct Expect {
		const char *chain;
		std::size_t rules;
	};
	static constexpr Expect kStatic[] = { { "prerouting", 1 }, { "output", 1 }, { "dispatch", 8 } };
	for (const auto &e : kStatic) {
		auto rules = absentIfMissing(nft::getRules(s, kTableFamily, kTableName, e.chain));
		if (!rules)
			return Unexpected(std::move(rules).error());
		if (!*rules) {
			st.problem = std::string("chain ") + e.chain + " of table inet " + kTableName + " is missing";
			return st;
		}
		if ((*rules)->size() != e.rules) {
			st.problem = std::string("chain ") + e.chain + " has " + std::to_string((*rules)->size()) +
				     " rules, expected " + std::to_string(e.rules);
			return st;
		}
	}
	auto post = absentIfMissing(nft::getRules(s, kTableFamily, kTableName, "postrouting"));
	if (!post)
		return Unexpected(std::move(post).error());
	if (!*post) {
		st.problem = std::string("chain postrouting of table inet ") + kTableName + " is missing";
		return st;
	}
	for (const auto &r : **post) {
		auto m = ruleset::decodeMasqRule(r.get());
		if (!m) {
			st.problem = "chain postrouting holds a rule nft-portmap did not write (" + m.error() + ")";
			return st;
		}
		st.masqRules.push_back(*m);
	}
	return st;
}

nft::Result<std::vector<ruleset::MasqSet>> listMasqSets(nft::Socket &s)
{
	auto sets = nft::dumpSets(s, kTableFamily, kTableName);
	if (!sets)
		return Unexpected(std::move(sets).error());
	std::vector<ruleset::MasqSet> out;
	for (const auto &set : *sets) {
		const char *name = nftnl_set_get_str(set.get(), NFTNL_SET_NAME);
		if (!name)
			continue;
		if (auto m = ruleset::parseMasqSetName(name))
			out.push_back(*m);
	}
	std::sort(out.begin(), out.end());
	return out;
}

nft::Result<std::vector<ElementKey>>
findOwnedElements(nft::Socket &s, const std::function<bool(const std::string &comment)> &match)
{
	struct Walk {
		std::string set;
		MapId map;
		std::uint8_t sourceLength;
	};
	std::vector<Walk> walks;
	for (MapId m : { MapId::Ports4, MapId::Ports6, MapId::AddrPorts4, MapId::AddrPorts6, MapId::Guard4,
			 MapId::Guard6, MapId::AddrGuard4, MapId::AddrGuard6 })
		walks.push_back({ ruleset::mapName(m), m, 0 });
	auto masq = listMasqSets(s);
	if (!masq) {
		if (masq.error().errnum == ENOENT)
			return std::vector<ElementKey>();
		return Unexpected(std::move(masq).error());
	}
	for (const auto &m : *masq)
		walks.push_back({ ruleset::masqSetName(m.family, m.sourceLength),
				  m.family == Family::IPv4 ? MapId::Masq4 : MapId::Masq6, m.sourceLength });

	std::vector<ElementKey> out;
	for (const auto &w : walks) {
		auto elems = nft::dumpElements(s, kTableFamily, kTableName, w.set);
		if (!elems) {
			if (elems.error().errnum == ENOENT)
				continue;
			return Unexpected(std::move(elems).error());
		}
		for (const auto &e : *elems) {
			auto comment = ruleset::elementComment(e.get());
			if (comment && match(*comment))
				out.push_back(ruleset::elementKey(w.map, w.sourceLength, e.get()));
		}
	}
	return out;
}

} /* namespace nftpm */
