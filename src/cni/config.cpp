/* SPDX-License-Identifier: Apache-2.0 */
#include "cni/config.hpp"

#include "cni/fields.hpp"
#include "cni/names.hpp"
#include "cni/portmappings.hpp"
#include "cni/prevresult.hpp"
#include "cni/version.hpp"

namespace nftpm::cni {

namespace {

constexpr int kMinPriority = -400;
constexpr int kMaxPriority = 400;

Result<void> readIdentity(const Fields &top, Config &config)
{
	Result<std::optional<std::string>> version = top.string("cniVersion");
	if (!version)
		return Unexpected(std::move(version).error());
	/* The spec's rule: a configuration without a version is 0.1.0. */
	config.cniVersion = version->value_or("");
	if (config.cniVersion.empty())
		config.cniVersion = "0.1.0";

	Result<std::optional<std::string>> name = top.string("name");
	if (!name)
		return Unexpected(std::move(name).error());
	if (!*name || (*name)->empty())
		return fail(ErrInvalidConfig, "missing network name");
	if (!isValidName(**name))
		return fail(ErrInvalidConfig, "invalid characters found in network name", **name);
	config.name = **name;

	Result<std::optional<std::string>> type = top.string("type");
	if (!type)
		return Unexpected(std::move(type).error());
	config.type = type->value_or("");
	return {};
}

Result<void> checkVersion(const std::string &version, Command command)
{
	if (!isSupportedVersion(version))
		return fail(ErrIncompatibleVersion, "incompatible CNI versions",
			    "config is \"" + version + "\", plugin supports " + supportedVersionsText());

	bool needsPrevResult = command == Command::Add || command == Command::Check;
	if (needsPrevResult && !versionAtLeast(version, "0.3.0"))
		return fail(ErrIncompatibleVersion,
			    "nft-portmap is a chained plugin and needs cniVersion 0.3.0 or later for " +
				    std::string(commandName(command)) + " (prevResult exists only from 0.3.0)",
			    "config is \"" + version + "\"");
	if (command == Command::Check && !versionAtLeast(version, "0.4.0"))
		return fail(ErrIncompatibleVersion, "config version does not allow CHECK");
	bool needs110 = command == Command::Gc || command == Command::Status;
	if (needs110 && !versionAtLeast(version, "1.1.0"))
		return fail(ErrIncompatibleVersion,
			    std::string("config version does not allow ") + commandName(command));
	return {};
}

Result<void> readMasquerade(const Fields &top, Config &config)
{
	Result<std::optional<bool>> snat = top.boolean("snat");
	if (!snat)
		return Unexpected(std::move(snat).error());
	config.snat = snat->value_or(true);

	Result<std::optional<bool>> masqAll = top.boolean("masqAll");
	if (!masqAll)
		return Unexpected(std::move(masqAll).error());
	config.masqAll = masqAll->value_or(false);
	return {};
}

/*
 * markMasqBit and externalSetMarkChain configure the reference's iptables
 * marks. We masquerade without marks: the bit is accepted (and checked) so
 * configurations written for the reference keep working, but a chain of
 * someone else's that we would have to jump to cannot be honoured.
 */
Result<void> readMarkOptions(const Fields &top, Config &config)
{
	Result<std::optional<std::int64_t>> bit = top.integer("markMasqBit");
	if (!bit)
		return Unexpected(std::move(bit).error());
	Result<std::optional<std::string>> chain = top.string("externalSetMarkChain");
	if (!chain)
		return Unexpected(std::move(chain).error());

	if (*bit && *chain)
		return fail(ErrInvalidConfig, "Cannot specify externalSetMarkChain and markMasqBit");
	if (*chain)
		return fail(ErrInvalidConfig,
			    "externalSetMarkChain is an iptables option; it is not supported by this nftables plugin",
			    **chain);
	if (*bit && (**bit < 0 || **bit > 31))
		return fail(ErrInvalidConfig,
			    "markMasqBit: " + std::to_string(**bit) + " is not between 0 and 31");
	if (*bit)
		config.markMasqBit = static_cast<int>(**bit);
	return {};
}

Result<void> readBackend(const Fields &top, Config &config)
{
	Result<std::optional<std::string>> backend = top.string("backend");
	if (!backend)
		return Unexpected(std::move(backend).error());
	if (!*backend || **backend == "nftables") {
		config.backend = *backend;
		return {};
	}
	if (**backend == "iptables")
		return fail(ErrInvalidConfig,
			    "backend \"iptables\": nft-portmap only programs nftables; "
			    "use the reference portmap plugin for iptables");
	return fail(ErrInvalidConfig, "unrecognized backend \"" + **backend + "\"");
}

Result<void> readConditions(const Fields &top, Config &config)
{
	Result<std::optional<std::vector<std::string>>> v4 = top.strings("conditionsV4");
	if (!v4)
		return Unexpected(std::move(v4).error());
	Result<std::optional<std::vector<std::string>>> v6 = top.strings("conditionsV6");
	if (!v6)
		return Unexpected(std::move(v6).error());
	config.conditionsV4 = v4->value_or(std::vector<std::string>{});
	config.conditionsV6 = v6->value_or(std::vector<std::string>{});
	return {};
}

Result<void> readPriority(const Fields &top, std::string_view key, int &priority)
{
	Result<std::optional<std::int64_t>> value = top.integer(key);
	if (!value)
		return Unexpected(std::move(value).error());
	if (!*value)
		return {};
	if (**value < kMinPriority || **value > kMaxPriority)
		return fail(ErrInvalidConfig, top.pathOf(key) + ": " + std::to_string(**value) + " is not between " +
						      std::to_string(kMinPriority) + " and " +
						      std::to_string(kMaxPriority));
	priority = static_cast<int>(**value);
	return {};
}

Result<void> readPriorities(const Fields &top, Config &config)
{
	if (auto ok = readPriority(top, "dstnatPriority", config.dstnatPriority); !ok)
		return ok;
	return readPriority(top, "srcnatPriority", config.srcnatPriority);
}

Result<void> readRuntimeConfig(const Fields &top, Config &config)
{
	Result<const Json *> runtime = top.object("runtimeConfig");
	if (!runtime)
		return Unexpected(std::move(runtime).error());
	if (!*runtime)
		return {};

	Fields fields(**runtime, top.pathOf("runtimeConfig"));
	Result<const Json *> list = fields.array("portMappings");
	if (!list)
		return Unexpected(std::move(list).error());
	if (!*list)
		return {};

	Result<std::vector<PortMapping>> mappings = parsePortMappings(**list, fields.pathOf("portMappings"));
	if (!mappings)
		return Unexpected(std::move(mappings).error());
	config.portMappings = std::move(*mappings);
	return {};
}

Result<ValidAttachment> readAttachment(const Json &value, const std::string &path)
{
	if (!value.isObject())
		return wrongType(path, "an object", value);
	Fields fields(value, path);

	Result<std::optional<std::string>> id = fields.string("containerID");
	if (!id)
		return Unexpected(std::move(id).error());
	Result<std::optional<std::string>> ifname = fields.string("ifname");
	if (!ifname)
		return Unexpected(std::move(ifname).error());
	if (!*id || !*ifname)
		return fail(ErrInvalidConfig, path + ": containerID and ifname are required");
	return ValidAttachment{ **id, **ifname };
}

/* libcni sends both the spec's key and the older alias (cni#1101). */
Result<void> readValidAttachments(const Fields &top, Config &config)
{
	std::string_view key = top.get("cni.dev/valid-attachments") ? "cni.dev/valid-attachments"
								   : "cni.dev/attachments";
	Result<const Json *> list = top.array(key);
	if (!list)
		return Unexpected(std::move(list).error());
	if (!*list)
		return {};

	std::vector<ValidAttachment> attachments;
	const Json::Array &entries = (*list)->asArray();
	for (std::size_t i = 0; i < entries.size(); i++) {
		Result<ValidAttachment> a = readAttachment(entries[i], elementPath(top.pathOf(key), i));
		if (!a)
			return Unexpected(std::move(a).error());
		attachments.push_back(std::move(*a));
	}
	config.validAttachments = std::move(attachments);
	return {};
}

Result<void> readPrevResult(const Fields &top, std::string_view ifname, Config &config)
{
	const Json *prev = top.get("prevResult");
	if (!prev)
		return {};
	Result<ContainerAddresses> addresses = selectContainerAddresses(*prev, ifname);
	if (!addresses)
		return Unexpected(std::move(addresses).error());
	config.prevResult = *prev;
	config.containerV4 = addresses->v4;
	config.containerV6 = addresses->v6;
	return {};
}

} /* namespace */

Result<Config> parseConfig(std::string_view json, const Environment &env)
{
	Result<Json> doc = parseJson(json);
	if (!doc)
		return Unexpected(std::move(doc).error());
	if (!doc->isObject())
		return fail(ErrDecode, std::string("network configuration must be a JSON object, got ") +
					       jsonTypeName(doc->type()));

	Fields top(*doc, "");
	Config config;
	/* Name first, then version, as the reference's library does. */
	if (auto ok = readIdentity(top, config); !ok)
		return Unexpected(std::move(ok).error());
	if (auto ok = checkVersion(config.cniVersion, env.command); !ok)
		return Unexpected(std::move(ok).error());

	using Step = Result<void> (*)(const Fields &, Config &);
	for (Step step : { readMasquerade, readMarkOptions, readBackend, readConditions, readPriorities,
			   readRuntimeConfig, readValidAttachments }) {
		if (auto ok = step(top, config); !ok)
			return Unexpected(std::move(ok).error());
	}
	if (auto ok = readPrevResult(top, env.ifname, config); !ok)
		return Unexpected(std::move(ok).error());
	return config;
}

std::string requestedVersion(std::string_view input)
{
	Result<Json> doc = parseJson(input);
	if (!doc)
		return "";
	const Json *version = doc->find("cniVersion");
	return version && version->isString() ? version->asString() : "";
}

std::string errorVersion(std::string_view input)
{
	std::string version = requestedVersion(input);
	return isSupportedVersion(version) ? version : "";
}

} /* namespace nftpm::cni */
