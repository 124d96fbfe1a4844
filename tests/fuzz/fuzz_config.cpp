/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the configuration on stdin, parsed as the plugin parses
 * it for each command (fixed environments: the input is stdin only), and
 * everything the plugin prints about it. Oracles beyond "no crash, no
 * sanitizer report": every error and every result printed is JSON that
 * parses again.
 */
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cni/config.hpp"
#include "cni/env.hpp"
#include "cni/error.hpp"
#include "cni/json.hpp"
#include "cni/result.hpp"

using namespace nftpm::cni;

namespace {

Environment environment(Command command)
{
	Environment env;
	env.command = command;
	env.containerId = "0123456789abcdef";
	env.netns = "/run/netns/fuzz";
	env.ifname = "eth0";
	env.path = "/opt/cni/bin";
	return env;
}

/* What the plugin prints must be JSON. */
void mustParse(const std::string &printed)
{
	if (!parseJson(printed))
		std::abort();
}

} /* namespace */

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
	static const Environment kEnvironments[] = {
		environment(Command::Add),   environment(Command::Del),
		environment(Command::Check), environment(Command::Gc),
		environment(Command::Status),
	};
	std::string_view input(reinterpret_cast<const char *>(data), size);

	/* VERSION reads only cniVersion; errors are printed in errorVersion(). */
	mustParse(versionJson(requestedVersion(input)));
	std::string errorIn = errorVersion(input);

	for (const Environment &env : kEnvironments) {
		Result<Config> cfg = parseConfig(input, env);
		if (!cfg) {
			mustParse(errorJson(cfg.error(), errorIn));
			continue;
		}
		if (env.command != Command::Add)
			continue;
		Result<std::string> out = addResultJson(*cfg);
		if (out)
			mustParse(*out);
		else
			mustParse(errorJson(out.error(), cfg->cniVersion));
	}
	return 0;
}
