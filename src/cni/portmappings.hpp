/* SPDX-License-Identifier: Apache-2.0 */
/* runtimeConfig.portMappings: the portMappings capability (CONVENTIONS.md). */
#pragma once

#include <string_view>
#include <vector>

#include "cni/error.hpp"
#include "cni/json.hpp"
#include "portmap/mapping.hpp"

namespace nftpm::cni {

/*
 * Validates and normalises the entries of the array at path: ports
 * 1-65535, protocol tcp/udp/sctp in any case (tcp when absent), hostIP an
 * address or ""/0.0.0.0/:: for "every address" (stored as nullopt). Exact
 * duplicates are dropped; two entries publishing the same host port (same
 * hostIP and protocol) to different container ports are an error. Errors
 * are code 7 and name the entry by its path.
 */
Result<std::vector<PortMapping>> parsePortMappings(const Json &array, std::string_view path);

} /* namespace nftpm::cni */
