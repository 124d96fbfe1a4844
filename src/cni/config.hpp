/* SPDX-License-Identifier: Apache-2.0 */
/* The network configuration one invocation receives on stdin. */
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cni/env.hpp"
#include "cni/error.hpp"
#include "cni/json.hpp"
#include "portmap/mapping.hpp"
#include "util/ip.hpp"

namespace nftpm::cni {

/* One entry of cni.dev/valid-attachments (GC). */
struct ValidAttachment {
	std::string containerId; /* "containerID" */
	std::string ifname;

	bool operator==(const ValidAttachment &) const = default;
};

struct Config {
	std::string cniVersion; /* "0.1.0" when the config has none */
	std::string name;
	std::string type;

	/* Keys of the reference plugin. */
	bool snat = true;
	bool masqAll = false;
	/* Accepted and validated (0-31) for compatibility; unused by nftables.
	 * (externalSetMarkChain, iptables only, is refused.) */
	std::optional<int> markMasqBit;
	/* nullopt or "nftables". */
	std::optional<std::string> backend;
	/* Raw nft tokens; the engine compiles them. */
	std::vector<std::string> conditionsV4;
	std::vector<std::string> conditionsV6;

	/* runtimeConfig.portMappings, validated, exact duplicates removed. */
	std::vector<PortMapping> portMappings;

	/* As received, to be passed on (see result.hpp). */
	std::optional<Json> prevResult;
	/* Chosen from prevResult for CNI_IFNAME (see prevresult.hpp). */
	std::optional<IpPrefix> containerV4;
	std::optional<IpPrefix> containerV6;

	/* cni.dev/valid-attachments, or its legacy alias cni.dev/attachments. */
	std::optional<std::vector<ValidAttachment>> validAttachments;

	/* Our own keys: base chain priorities, -400..400. */
	int dstnatPriority = -100;
	int srcnatPriority = 100;
};

/*
 * Parses and validates the configuration for env.command. Errors:
 *   6  not JSON, too large or too deep, or not a JSON object;
 *   7  missing or invalid name, a key of the wrong type or out of range,
 *      an invalid or conflicting port mapping, an iptables-only option;
 *   1  unsupported cniVersion, or one too old for the command (ADD and
 *      CHECK need 0.3.0 for prevResult, CHECK 0.4.0, GC and STATUS 1.1.0).
 * Unknown keys (and "capabilities") are ignored.
 */
Result<Config> parseConfig(std::string_view json, const Environment &env);

/*
 * The "cniVersion" string of stdin, read leniently: "" when the input is
 * not JSON, not an object or has none. For VERSION, whose stdin carries
 * nothing else.
 */
std::string requestedVersion(std::string_view input);

/*
 * The cniVersion to print in the error about an input parseConfig()
 * refused: its cniVersion when that is a version we support, else "".
 */
std::string errorVersion(std::string_view input);

} /* namespace nftpm::cni */
