/* SPDX-License-Identifier: Apache-2.0 */
/* The CNI specification versions the plugin speaks. */
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace nftpm::cni {

/* Oldest first; the last one is what we print when asked for none. */
inline constexpr std::array<std::string_view, 7> kSupportedVersions{
	"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
};
inline constexpr std::string_view kCurrentVersion = kSupportedVersions.back();

bool isSupportedVersion(std::string_view version);

/* Both must be supported versions. */
bool versionAtLeast(std::string_view version, std::string_view minimum);

/* ["0.1.0" "0.2.0" ...], for messages. */
std::string supportedVersionsText();

} /* namespace nftpm::cni */
