/* SPDX-License-Identifier: Apache-2.0 */
#include "portmap/listing.hpp"

#include <algorithm>
#include <cstring>

#include <libnftnl/expr.h>
#include <libnftnl/rule.h>

#include "cni/json.hpp"
#include "nft/query.hpp"

namespace nftpm {

namespace {

std::string hostText(const ruleset::DnatRule &r)
{
	if (r.mapping.hostIP)
		return r.mapping.hostIP->toString();
	return r.family() == Family::IPv4 ? "0.0.0.0" : "::";
}

std::string endpoint(const std::string &addr, Family f, std::uint16_t port)
{
	if (f == Family::IPv6)
		return "[" + addr + "]:" + std::to_string(port);
	return addr + ":" + std::to_string(port);
}

} /* namespace */

nft::Result<std::vector<PublishedPort>> listPublished(nft::Socket &s)
{
	/* A missing table is ENOENT, as the caller expects. */
	auto table = nft::getTable(s, ruleset::kTableFamily, ruleset::kTableName);
	if (!table)
		return Unexpected(std::move(table).error());

	std::vector<PublishedPort> out;
	/* Every published host key is one element of a data map, with its owner's comment. */
	for (ruleset::MapId map : { ruleset::MapId::Ports4, ruleset::MapId::Ports6, ruleset::MapId::AddrPorts4,
				    ruleset::MapId::AddrPorts6 }) {
		auto elems = nft::dumpElements(s, ruleset::kTableFamily, ruleset::kTableName,
					       ruleset::mapName(map));
		if (!elems) {
			if (elems.error().errnum == ENOENT)
				continue;
			return Unexpected(std::move(elems).error());
		}
		for (const auto &e : *elems) {
			auto rule = ruleset::elementDnat(map, e.get());
			if (!rule)
				continue;
			PublishedPort p{ std::nullopt, {}, *rule, 0, 0 };
			if (auto comment = ruleset::elementComment(e.get()))
				p.owner = ruleset::parseAttachmentComment(*comment);
			if (p.owner && !ruleset::isCutComment(*p.owner))
				p.record = ruleset::attachmentName(*p.owner);
			if (auto c = ruleset::elementCounter(e.get())) {
				p.packets = c->first;
				p.bytes = c->second;
			}
			out.push_back(std::move(p));
		}
	}
	std::stable_sort(out.begin(), out.end(), [](const auto &a, const auto &b) {
		auto key = [](const PublishedPort &p) {
			return std::make_tuple(p.owner ? p.owner->network : std::string(),
					       p.owner ? p.owner->containerId : std::string(), p.rule.mapping.hostPort,
					       static_cast<int>(p.rule.family()));
		};
		return key(a) < key(b);
	});
	return out;
}

std::string formatPublishedTable(const std::vector<PublishedPort> &ports)
{
	std::vector<std::vector<std::string>> rows;
	rows.push_back({ "NETWORK", "CONTAINER", "IFNAME", "PROTO", "HOST", "CONTAINER ADDRESS", "PACKETS",
			 "BYTES" });
	for (const auto &p : ports) {
		const auto &m = p.rule.mapping;
		std::string cid = p.owner ? p.owner->containerId : "?";
		/* Like runtimes print IDs: the first 12 characters identify a container. */
		if (cid.size() > 12)
			cid = cid.substr(0, 12);
		rows.push_back({ p.owner ? p.owner->network : "?", cid, p.owner ? p.owner->ifname : "?",
				 protocolName(m.protocol), endpoint(hostText(p.rule), p.rule.family(), m.hostPort),
				 endpoint(p.rule.containerAddr.toString(), p.rule.family(), m.containerPort),
				 std::to_string(p.packets), std::to_string(p.bytes) });
	}
	std::vector<std::size_t> width(rows.front().size(), 0);
	for (const auto &row : rows)
		for (std::size_t i = 0; i < row.size(); i++)
			width[i] = std::max(width[i], row[i].size());

	std::string out;
	for (const auto &row : rows) {
		std::string line;
		for (std::size_t i = 0; i < row.size(); i++) {
			line += row[i];
			if (i + 1 < row.size())
				line += std::string(width[i] - row[i].size() + 2, ' ');
		}
		out += line + "\n";
	}
	return out;
}

std::string formatPublishedJson(const std::vector<PublishedPort> &ports)
{
	cni::Json::Array items;
	for (const auto &p : ports) {
		const auto &m = p.rule.mapping;
		cni::Json::Object o;
		o.emplace_back("network", p.owner ? cni::Json::string(p.owner->network) : cni::Json());
		o.emplace_back("containerID", p.owner ? cni::Json::string(p.owner->containerId) : cni::Json());
		o.emplace_back("ifname", p.owner ? cni::Json::string(p.owner->ifname) : cni::Json());
		o.emplace_back("record", cni::Json::string(p.record));
		o.emplace_back("family", cni::Json::string(familyName(p.rule.family())));
		o.emplace_back("protocol", cni::Json::string(protocolName(m.protocol)));
		o.emplace_back("hostIP", m.hostIP ? cni::Json::string(m.hostIP->toString()) : cni::Json());
		o.emplace_back("hostPort", cni::Json::number(static_cast<std::int64_t>(m.hostPort)));
		o.emplace_back("containerIP", cni::Json::string(p.rule.containerAddr.toString()));
		o.emplace_back("containerPort", cni::Json::number(static_cast<std::int64_t>(m.containerPort)));
		o.emplace_back("packets", cni::Json::number(std::to_string(p.packets)));
		o.emplace_back("bytes", cni::Json::number(std::to_string(p.bytes)));
		items.push_back(cni::Json::object(std::move(o)));
	}
	return cni::serialize(cni::Json::array(std::move(items)), cni::JsonStyle::Pretty) + "\n";
}

} /* namespace nftpm */
