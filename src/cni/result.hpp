/* SPDX-License-Identifier: Apache-2.0 */
/* What the plugin prints on success. */
#pragma once

#include <string>
#include <string_view>

#include "cni/config.hpp"
#include "cni/error.hpp"
#include "cni/json.hpp"

namespace nftpm::cni {

/*
 * Re-encodes a result in the shape of cniVersion (0.3.0 or later):
 *   0.3.0, 0.3.1, 0.4.0: every ips[] entry has "version" ("4"/"6", from
 *                        its address) and "dns" is present ({} if absent);
 *   1.0.0, 1.1.0:        ips[] entries have no "version".
 * Top-level "cniVersion" is set to cniVersion. Everything else, unknown
 * fields included, is kept as it was, in its order.
 */
Json convertResult(Json result, std::string_view cniVersion);

/*
 * ADD's output: config.prevResult converted to config.cniVersion, pretty
 * with a 4-space indent, no trailing newline. Code 7 without prevResult
 * (the plugin must be chained), code 1 for a version below 0.3.0.
 */
Result<std::string> addResultJson(const Config &config);

/*
 * VERSION's output, compact, no trailing newline:
 * {"cniVersion":"<requested, or the newest we know>","supportedVersions":[...]}
 */
std::string versionJson(std::string_view requested);

} /* namespace nftpm::cni */
