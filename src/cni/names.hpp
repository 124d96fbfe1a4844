/* SPDX-License-Identifier: Apache-2.0 */
/* The spec's rules for names given to the plugin. */
#pragma once

#include <string_view>

namespace nftpm::cni {

/* ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$ : container IDs and network names. */
bool isValidName(std::string_view name);

/*
 * Why name is not a usable interface name (empty, longer than 15 bytes,
 * "." or "..", or containing '/', ':' or whitespace); nullptr if it is.
 */
const char *interfaceNameProblem(std::string_view name);

} /* namespace nftpm::cni */
