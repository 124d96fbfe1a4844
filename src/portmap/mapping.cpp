/* SPDX-License-Identifier: Apache-2.0 */
#include "portmap/mapping.hpp"

#include <algorithm>
#include <cctype>

namespace nftpm {

const char *protocolName(Protocol p)
{
	switch (p) {
	case Protocol::TCP:
		return "tcp";
	case Protocol::UDP:
		return "udp";
	case Protocol::SCTP:
		return "sctp";
	}
	return "?";
}

std::optional<Protocol> parseProtocol(std::string_view name)
{
	std::string lower(name);
	std::transform(lower.begin(), lower.end(), lower.begin(),
		       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
	if (lower == "tcp")
		return Protocol::TCP;
	if (lower == "udp")
		return Protocol::UDP;
	if (lower == "sctp")
		return Protocol::SCTP;
	return std::nullopt;
}

} /* namespace nftpm */
