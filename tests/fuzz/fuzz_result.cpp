/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: a previous plugin's result, as ADD prints it again in
 * every CNI version (through parseConfig, as the plugin does, and through
 * convertResult directly), and the JSON layer under it. Oracles: what is
 * printed parses again, and re-encoding is stable (parse(serialize(j))
 * serializes to the same text).
 */
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cni/config.hpp"
#include "cni/env.hpp"
#include "cni/json.hpp"
#include "cni/prevresult.hpp"
#include "cni/result.hpp"

using namespace nftpm::cni;

namespace {

const char *const kVersions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0" };

void stableEncoding(const Json &j)
{
	for (JsonStyle style : { JsonStyle::Compact, JsonStyle::Pretty }) {
		std::string once = serialize(j, style);
		if (once.size() > kMaxJsonSize)
			continue;
		Result<Json> again = parseJson(once);
		if (!again || serialize(*again, style) != once)
			std::abort();
	}
}

} /* namespace */

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
	std::string_view input(reinterpret_cast<const char *>(data), size);
	Result<Json> result = parseJson(input);
	if (!result)
		return 0;
	stableEncoding(*result);

	(void)selectContainerAddresses(*result, "eth0");

	Environment env;
	env.command = Command::Add;
	env.containerId = "fuzz";
	env.netns = "/run/netns/fuzz";
	env.ifname = "eth0";

	for (const char *version : kVersions) {
		/* The stdin a chained plugin gets, with this result as prevResult. */
		Json conf = Json::object();
		conf.set("cniVersion", Json::string(version));
		conf.set("name", Json::string("fuzz"));
		conf.set("type", Json::string("nft-portmap"));
		conf.set("prevResult", *result);
		Result<Config> cfg = parseConfig(serialize(conf, JsonStyle::Compact), env);
		if (cfg) {
			Result<std::string> out = addResultJson(*cfg);
			if (out && !parseJson(*out))
				std::abort();
		}
		/* convertResult's contract: a result object. */
		if (result->isObject())
			stableEncoding(convertResult(*result, version));
	}
	return 0;
}
