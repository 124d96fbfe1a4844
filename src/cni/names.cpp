/* SPDX-License-Identifier: Apache-2.0 */
#include "cni/names.hpp"

#include <algorithm>
#include <cctype>

#include <net/if.h>

namespace nftpm::cni {

namespace {

bool isAlnum(char c)
{
	return std::isalnum(static_cast<unsigned char>(c));
}

bool isForbiddenInInterfaceName(char c)
{
	return c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c));
}

} /* namespace */

bool isValidName(std::string_view name)
{
	if (name.empty() || !isAlnum(name[0]))
		return false;
	return std::all_of(name.begin() + 1, name.end(), [](char c) {
		return isAlnum(c) || c == '_' || c == '.' || c == '-';
	});
}

const char *interfaceNameProblem(std::string_view name)
{
	if (name.empty())
		return "interface name is empty";
	/* IFNAMSIZ counts the terminating NUL. */
	if (name.size() >= IFNAMSIZ)
		return "interface name is longer than 15 bytes";
	if (name == "." || name == "..")
		return "interface name is . or ..";
	if (std::any_of(name.begin(), name.end(), isForbiddenInInterfaceName))
		return "interface name contains '/', ':' or whitespace";
	return nullptr;
}

} /* namespace nftpm::cni */
