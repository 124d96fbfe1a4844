/* SPDX-License-Identifier: Apache-2.0 */
#include "cni/prevresult.hpp"

#include <string>

#include "cni/fields.hpp"

namespace nftpm::cni {

namespace {

const char kPath[] = "prevResult";

/* Whether interfaces[index] is ifname inside the container. */
Result<bool> isContainerInterface(const Json &interfaces, std::size_t index, std::string_view ifname)
{
	const Json &interface = interfaces.asArray()[index];
	std::string path = elementPath(std::string(kPath) + ".interfaces", index);
	if (!interface.isObject())
		return wrongType(path, "an object", interface);
	Fields fields(interface, path);

	Result<std::optional<std::string>> name = fields.string("name");
	if (!name)
		return Unexpected(std::move(name).error());
	Result<std::optional<std::string>> sandbox = fields.string("sandbox");
	if (!sandbox)
		return Unexpected(std::move(sandbox).error());
	return *name == ifname && sandbox->value_or("") != "";
}

/* Whether the ips entry belongs to the container's ifname (see header). */
Result<bool> isContainerAddress(const Fields &ip, const Json *interfaces, std::string_view ifname)
{
	Result<std::optional<std::int64_t>> index = ip.integer("interface");
	if (!index)
		return Unexpected(std::move(index).error());
	if (!*index || !interfaces || **index < 0 ||
	    static_cast<std::size_t>(**index) >= interfaces->asArray().size())
		return true;
	return isContainerInterface(*interfaces, static_cast<std::size_t>(**index), ifname);
}

Result<IpPrefix> readAddress(const Fields &ip)
{
	Result<std::optional<std::string>> text = ip.string("address");
	if (!text)
		return Unexpected(std::move(text).error());
	if (!*text)
		return fail(ErrInvalidConfig, ip.pathOf("address") + ": missing");
	std::optional<IpPrefix> prefix = IpPrefix::parse(**text);
	if (!prefix)
		return fail(ErrInvalidConfig,
			    ip.pathOf("address") + ": \"" + **text + "\" is not a CIDR address");
	return *prefix;
}

} /* namespace */

Result<ContainerAddresses> selectContainerAddresses(const Json &prevResult, std::string_view ifname)
{
	if (!prevResult.isObject())
		return wrongType(kPath, "an object", prevResult);
	Fields result(prevResult, kPath);

	Result<const Json *> interfaces = result.array("interfaces");
	if (!interfaces)
		return Unexpected(std::move(interfaces).error());
	Result<const Json *> ips = result.array("ips");
	if (!ips)
		return Unexpected(std::move(ips).error());

	ContainerAddresses found;
	if (!*ips)
		return found;

	const Json::Array &entries = (*ips)->asArray();
	for (std::size_t i = 0; i < entries.size(); i++) {
		std::string path = elementPath(result.pathOf("ips"), i);
		if (!entries[i].isObject())
			return wrongType(path, "an object", entries[i]);
		Fields ip(entries[i], path);

		/* Every entry is checked, even after both families are found. */
		Result<IpPrefix> address = readAddress(ip);
		if (!address)
			return Unexpected(std::move(address).error());
		Result<bool> ours = isContainerAddress(ip, *interfaces, ifname);
		if (!ours)
			return Unexpected(std::move(ours).error());
		if (!*ours)
			continue;

		std::optional<IpPrefix> &slot = address->family() == Family::IPv4 ? found.v4 : found.v6;
		if (!slot)
			slot = *address;
	}
	return found;
}

} /* namespace nftpm::cni */
