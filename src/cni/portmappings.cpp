/* SPDX-License-Identifier: Apache-2.0 */
#include "cni/portmappings.hpp"

#include <map>
#include <optional>
#include <tuple>

#include "cni/fields.hpp"

namespace nftpm::cni {

namespace {

Result<std::uint16_t> readPort(const Fields &entry, std::string_view key)
{
	Result<std::optional<std::int64_t>> port = entry.integer(key);
	if (!port)
		return Unexpected(std::move(port).error());
	if (!*port)
		return fail(ErrInvalidConfig, entry.pathOf(key) + ": missing");
	if (**port < 1 || **port > 65535)
		return fail(ErrInvalidConfig,
			    entry.pathOf(key) + ": " + std::to_string(**port) + " is not a port number (1-65535)");
	return static_cast<std::uint16_t>(**port);
}

Result<Protocol> readProtocol(const Fields &entry)
{
	Result<std::optional<std::string>> name = entry.string("protocol");
	if (!name)
		return Unexpected(std::move(name).error());
	/* Kubernetes leaves it out for TCP. */
	if (!*name)
		return Protocol::TCP;
	std::optional<Protocol> protocol = parseProtocol(**name);
	if (!protocol)
		return fail(ErrInvalidConfig,
			    entry.pathOf("protocol") + ": \"" + **name + "\" is not tcp, udp or sctp");
	return *protocol;
}

Result<std::optional<IpAddress>> readHostIp(const Fields &entry)
{
	Result<std::optional<std::string>> text = entry.string("hostIP");
	if (!text)
		return Unexpected(std::move(text).error());
	if (!*text || (*text)->empty())
		return std::optional<IpAddress>();
	std::optional<IpAddress> address = IpAddress::parse(**text);
	if (!address)
		return fail(ErrInvalidConfig,
			    entry.pathOf("hostIP") + ": \"" + **text + "\" is not an IP address");
	if (address->isUnspecified())
		return std::optional<IpAddress>();
	return std::optional<IpAddress>(*address);
}

Result<PortMapping> readMapping(const Json &value, const std::string &path)
{
	if (!value.isObject())
		return wrongType(path, "an object", value);
	Fields entry(value, path);

	PortMapping m;
	Result<std::uint16_t> hostPort = readPort(entry, "hostPort");
	if (!hostPort)
		return Unexpected(std::move(hostPort).error());
	m.hostPort = *hostPort;

	Result<std::uint16_t> containerPort = readPort(entry, "containerPort");
	if (!containerPort)
		return Unexpected(std::move(containerPort).error());
	m.containerPort = *containerPort;

	Result<Protocol> protocol = readProtocol(entry);
	if (!protocol)
		return Unexpected(std::move(protocol).error());
	m.protocol = *protocol;

	Result<std::optional<IpAddress>> hostIp = readHostIp(entry);
	if (!hostIp)
		return Unexpected(std::move(hostIp).error());
	m.hostIP = *hostIp;
	return m;
}

/* What the kernel will match on: one host port can go to one place only. */
using HostKey = std::tuple<std::optional<IpAddress>, Protocol, std::uint16_t>;

HostKey hostKey(const PortMapping &m)
{
	return { m.hostIP, m.protocol, m.hostPort };
}

std::string hostText(const PortMapping &m)
{
	std::string where = m.hostIP ? "address " + m.hostIP->toString() : std::string("every address");
	return std::string(protocolName(m.protocol)) + " port " + std::to_string(m.hostPort) + " on " + where;
}

Unexpected<Error> conflict(std::string_view path, std::size_t first, const PortMapping &a, std::size_t second,
			   const PortMapping &b)
{
	return fail(ErrInvalidConfig,
		    elementPath(path, first) + " and " + elementPath(path, second) + " both publish " +
			    hostText(a) + ", to container ports " + std::to_string(a.containerPort) + " and " +
			    std::to_string(b.containerPort));
}

} /* namespace */

Result<std::vector<PortMapping>> parsePortMappings(const Json &array, std::string_view path)
{
	struct Kept {
		std::size_t input;  /* index in the array, for messages */
		std::size_t output; /* index in mappings */
	};
	std::vector<PortMapping> mappings;
	std::map<HostKey, Kept> seen;
	const Json::Array &entries = array.asArray();

	for (std::size_t i = 0; i < entries.size(); i++) {
		Result<PortMapping> m = readMapping(entries[i], elementPath(path, i));
		if (!m)
			return Unexpected(std::move(m).error());

		auto [it, inserted] = seen.emplace(hostKey(*m), Kept{ i, mappings.size() });
		if (inserted) {
			mappings.push_back(*m);
			continue;
		}
		/* Same host key: an exact duplicate unless the target differs. */
		const PortMapping &kept = mappings[it->second.output];
		if (kept.containerPort != m->containerPort)
			return conflict(path, it->second.input, kept, i, *m);
	}
	return mappings;
}

} /* namespace nftpm::cni */
