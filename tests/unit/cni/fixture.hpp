/* SPDX-License-Identifier: Apache-2.0 */
/* Test helpers shared by the cni tests. */
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "cni/env.hpp"

namespace nftpm::cni::test {

/* The CNI versions of the captured bridge + host-local results. */
inline const char *const kFixtureVersions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0" };

/* A file of tests/unit/fixtures, e.g. "bridge-0.4.0.json". */
inline std::string readFixture(const std::string &name)
{
	std::ifstream in(std::string(FIXTURES_DIR) + "/" + name);
	REQUIRE_MESSAGE(in.good(), name);
	std::ostringstream text;
	text << in.rdbuf();
	return text.str();
}

/* What the runtime sets for command on eth0. */
inline Environment environmentFor(Command command, std::string ifname = "eth0")
{
	return Environment{ command, "c0ffee", "/run/netns/x", std::move(ifname), "", "/usr/lib/cni" };
}

} /* namespace nftpm::cni::test */
