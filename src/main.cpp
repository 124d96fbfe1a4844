/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nft-portmap: with CNI_COMMAND set, a CNI plugin (parse, dispatch, print);
 * with arguments, a tool for people (`nft-portmap list`).
 */
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cni/config.hpp"
#include "cni/env.hpp"
#include "cni/error.hpp"
#include "cni/json.hpp"
#include "cni/result.hpp"
#include "portmap/engine.hpp"
#include "tool/list_command.hpp"

using namespace nftpm;

namespace {

/* Errors go to stdout as JSON (the spec), with a non-zero exit. */
int printError(const cni::Error &e, std::string_view cniVersion)
{
	std::string out = cni::errorJson(e, cniVersion);
	std::fwrite(out.data(), 1, out.size(), stdout);
	return 1;
}

void printAbout()
{
	std::fprintf(stderr,
		     "CNI nft-portmap plugin %s\n"
		     "CNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0\n"
		     "Run by a container runtime with CNI_COMMAND set; see nft-portmap(8).\n"
		     "For people: nft-portmap list [--json]\n",
		     NFT_PORTMAP_VERSION);
}

CniResult dispatch(const cni::Config &cfg, const cni::Environment &env)
{
	switch (env.command) {
	case cni::Command::Add:
		return commandAdd(cfg, env);
	case cni::Command::Del:
		return commandDel(cfg, env);
	case cni::Command::Check:
		return commandCheck(cfg, env);
	case cni::Command::Gc:
		return commandGc(cfg);
	case cni::Command::Status:
		return commandStatus();
	case cni::Command::Version:
		break;
	}
	return {};
}

int runPlugin(const cni::Environment &env)
{
	auto input = cni::readAll(0, cni::kMaxJsonSize);
	if (!input)
		return printError(input.error(), {});

	if (env.command == cni::Command::Version) {
		std::string out = cni::versionJson(cni::requestedVersion(*input));
		std::fwrite(out.data(), 1, out.size(), stdout);
		return 0;
	}

	auto cfg = cni::parseConfig(*input, env);
	if (!cfg)
		return printError(cfg.error(), cni::errorVersion(*input));

	/* ADD without mappings passes the previous result through, touching nothing. */
	if (!(env.command == cni::Command::Add && cfg->portMappings.empty())) {
		if (auto r = dispatch(*cfg, env); !r)
			return printError(r.error(), cfg->cniVersion);
	}

	if (env.command == cni::Command::Add) {
		auto result = cni::addResultJson(*cfg);
		if (!result)
			return printError(result.error(), cfg->cniVersion);
		std::fwrite(result->data(), 1, result->size(), stdout);
	}
	return 0;
}

} /* namespace */

int main(int argc, char **argv)
{
	if (argc > 1)
		return runTool(argc, argv);

	auto env = cni::readEnvironment([](const char *name) { return std::getenv(name); });
	if (!env) {
		if (cni::isMissingCommand(env.error())) {
			printAbout();
			return 0;
		}
		return printError(env.error(), {});
	}
	return runPlugin(*env);
}
