/* SPDX-License-Identifier: Apache-2.0 */
#include "cni/result.hpp"

#include "cni/version.hpp"
#include "util/ip.hpp"

namespace nftpm::cni {

namespace {

/* 0.3.0 to 0.4.0 share one result type (ips[] carry "version"). */
bool hasIpVersions(std::string_view cniVersion)
{
	return !versionAtLeast(cniVersion, "1.0.0");
}

/* Adds (first, as the 0.x types print it) or corrects "version". */
void addIpVersion(Json &ip)
{
	const Json *address = ip.find("address");
	if (!address || !address->isString())
		return;
	std::optional<IpPrefix> prefix = IpPrefix::parse(address->asString());
	if (!prefix)
		return;
	Json version = Json::string(prefix->family() == Family::IPv4 ? "4" : "6");
	if (ip.find("version"))
		ip.set("version", std::move(version));
	else
		ip.setFirst("version", std::move(version));
}

void convertIps(Json &result, bool withVersions)
{
	Json *ips = result.find("ips");
	if (!ips || !ips->isArray())
		return;
	for (Json &ip : ips->asArray()) {
		if (!ip.isObject())
			continue;
		if (withVersions)
			addIpVersion(ip);
		else
			ip.erase("version");
	}
}

} /* namespace */

Json convertResult(Json result, std::string_view cniVersion)
{
	bool withVersions = hasIpVersions(cniVersion);
	convertIps(result, withVersions);
	/* The 0.x result types always print "dns", even empty. */
	if (withVersions && !result.find("dns"))
		result.set("dns", Json::object());

	Json version = Json::string(std::string(cniVersion));
	if (result.find("cniVersion"))
		result.set("cniVersion", std::move(version));
	else
		result.setFirst("cniVersion", std::move(version));
	return result;
}

Result<std::string> addResultJson(const Config &config)
{
	if (!config.prevResult)
		return fail(ErrInvalidConfig, "must be called as chained plugin: prevResult is missing");
	if (!isSupportedVersion(config.cniVersion) || !versionAtLeast(config.cniVersion, "0.3.0"))
		return fail(ErrIncompatibleVersion,
			    "cannot print a result for cniVersion \"" + config.cniVersion + "\"");
	return serialize(convertResult(*config.prevResult, config.cniVersion), JsonStyle::Pretty);
}

std::string versionJson(std::string_view requested)
{
	Json::Array versions;
	for (std::string_view v : kSupportedVersions)
		versions.push_back(Json::string(std::string(v)));

	Json out = Json::object();
	std::string_view version = requested.empty() ? kCurrentVersion : requested;
	out.set("cniVersion", Json::string(std::string(version)));
	out.set("supportedVersions", Json::array(std::move(versions)));
	return serialize(out, JsonStyle::Compact);
}

} /* namespace nftpm::cni */
