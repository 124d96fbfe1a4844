/* SPDX-License-Identifier: Apache-2.0 */
#include "portmap/kernel_state.hpp"

#include <algorithm>
#include <cerrno>
#include <map>

#include <libnftnl/udata.h>

#include "nft/query.hpp"

namespace nftpm {

using ruleset::ElementKey;
using ruleset::kTableFamily;
using ruleset::kTableName;
using ruleset::MapId;

std::vector<ElementKey> AttachmentState::keys() const
{
	std::vector<ElementKey> out;
	auto addUnique = [&out](ElementKey k) {
		if (std::find(out.begin(), out.end(), k) == out.end())
			out.push_back(std::move(k));
	};
	for (const auto &r : dnatRules)
		addUnique(ruleset::portKey(r));
	for (const auto &m : masqRules)
		addUnique(ruleset::masqKey(m.containerAddr));
	return out;
}

/* The rules of one chain; a missing table or chain is an empty, absent chain. */
static nft::Result<std::optional<std::vector<nft::RulePtr>>> chainRules(nft::Socket &s,
									 const std::string &chain)
{
	auto rules = nft::getRules(s, kTableFamily, kTableName, chain);
	if (!rules) {
		if (rules.error().errnum == ENOENT)
			return std::optional<std::vector<nft::RulePtr>>();
		return Unexpected(std::move(rules).error());
	}
	return std::optional<std::vector<nft::RulePtr>>(std::move(rules).value());
}

nft::Result<AttachmentState> readAttachment(nft::Socket &s, const Attachment &who)
{
	AttachmentState st;

	auto dnat = chainRules(s, ruleset::dnatChainName(who));
	if (!dnat)
		return Unexpected(std::move(dnat).error());
	if (*dnat) {
		st.dnatChainExists = true;
		for (const auto &r : **dnat) {
			auto d = ruleset::decodeDnatRule(r.get());
			if (d)
				st.dnatRules.push_back(*d);
			else
				st.undecodable.push_back(d.error());
		}
	}

	auto masq = chainRules(s, ruleset::masqChainName(who));
	if (!masq)
		return Unexpected(std::move(masq).error());
	if (*masq) {
		st.masqChainExists = true;
		for (const auto &r : **masq) {
			auto m = ruleset::decodeMasqRule(r.get());
			if (m)
				st.masqRules.push_back(*m);
			else
				st.undecodable.push_back(m.error());
		}
	}
	return st;
}

nft::Result<bool> tableExists(nft::Socket &s)
{
	auto t = nft::getTable(s, kTableFamily, kTableName);
	if (t)
		return true;
	if (t.error().errnum == ENOENT)
		return false;
	return Unexpected(std::move(t).error());
}

nft::Result<std::vector<std::optional<std::string>>>
elementTargets(nft::Socket &s, const std::vector<ElementKey> &keys)
{
	std::vector<std::optional<std::string>> targets(keys.size());

	/* One request per map, however many keys it has. */
	std::map<MapId, std::vector<std::size_t>> byMap;
	for (std::size_t i = 0; i < keys.size(); i++)
		byMap[keys[i].map].push_back(i);

	for (const auto &[map, indices] : byMap) {
		std::vector<std::vector<std::uint8_t>> raw;
		for (std::size_t i : indices)
			raw.push_back(keys[i].key);
		auto elems = nft::getElements(s, kTableFamily, kTableName, ruleset::mapName(map), raw);
		if (!elems) {
			/* No table or map: no element exists. */
			if (elems.error().errnum == ENOENT)
				continue;
			return Unexpected(std::move(elems).error());
		}
		for (std::size_t j = 0; j < indices.size(); j++) {
			const auto &e = (*elems)[j];
			if (e)
				targets[indices[j]] = ruleset::elementTarget(e.get()).value_or("");
		}
	}
	return targets;
}

nft::Result<std::vector<ElementKey>> findReferences(nft::Socket &s,
						    const std::vector<std::string> &chains)
{
	static constexpr MapId kMaps[] = { MapId::Ports4,     MapId::Ports6, MapId::AddrPorts4,
					   MapId::AddrPorts6, MapId::Masq4,  MapId::Masq6 };
	std::vector<ElementKey> out;
	for (MapId map : kMaps) {
		auto elems = nft::dumpElements(s, kTableFamily, kTableName, ruleset::mapName(map));
		if (!elems) {
			if (elems.error().errnum == ENOENT)
				continue;
			return Unexpected(std::move(elems).error());
		}
		for (const auto &e : *elems) {
			auto target = ruleset::elementTarget(e.get());
			if (!target || std::find(chains.begin(), chains.end(), *target) == chains.end())
				continue;
			std::uint32_t len = 0;
			const void *key = nftnl_set_elem_get(e.get(), NFTNL_SET_ELEM_KEY, &len);
			if (!key)
				continue;
			const auto *bytes = static_cast<const std::uint8_t *>(key);
			out.push_back(ElementKey{ map, std::vector<std::uint8_t>(bytes, bytes + len),
						  ruleset::keyText(map, e.get()) });
		}
	}
	return out;
}

nft::Result<std::optional<Attachment>> chainOwner(nft::Socket &s, const std::string &chain)
{
	auto c = nft::getChain(s, kTableFamily, kTableName, chain);
	if (!c) {
		if (c.error().errnum == ENOENT)
			return std::optional<Attachment>();
		return Unexpected(std::move(c).error());
	}
	auto comment = ruleset::chainComment(c->get());
	if (!comment)
		return std::optional<Attachment>();
	return ruleset::parseAttachmentComment(*comment);
}

} /* namespace nftpm */
