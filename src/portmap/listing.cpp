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

/* The "counter" statement of a rule, if it has one. */
void readCounter(const nftnl_rule *r, PublishedPort &p)
{
	nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	if (!it)
		return;
	for (nftnl_expr *e = nftnl_expr_iter_next(it); e; e = nftnl_expr_iter_next(it)) {
		const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
		if (name && std::strcmp(name, "counter") == 0) {
			p.packets = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
			p.bytes = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
			break;
		}
	}
	nftnl_expr_iter_destroy(it);
}

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
	auto chains = nft::dumpChains(s, ruleset::kTableFamily, ruleset::kTableName);
	if (!chains)
		return Unexpected(std::move(chains).error());

	std::vector<PublishedPort> out;
	for (const auto &c : *chains) {
		const char *name = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME);
		/* Attachment DNAT chains only: pm-<hash>, not pm-<hash>-masq. */
		if (!name || std::strncmp(name, "pm-", 3) != 0 || std::strchr(name + 3, '-'))
			continue;
		std::optional<Attachment> owner;
		if (auto comment = ruleset::chainComment(c.get()))
			owner = ruleset::parseAttachmentComment(*comment);

		auto rules = nft::getRules(s, ruleset::kTableFamily, ruleset::kTableName, name);
		if (!rules) {
			/* Deleted between the two reads. */
			if (rules.error().errnum == ENOENT)
				continue;
			return Unexpected(std::move(rules).error());
		}
		for (const auto &r : *rules) {
			auto d = ruleset::decodeDnatRule(r.get());
			if (!d)
				continue;
			PublishedPort p{ owner, name, *d, 0, 0 };
			readCounter(r.get(), p);
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
		o.emplace_back("chain", cni::Json::string(p.chain));
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
