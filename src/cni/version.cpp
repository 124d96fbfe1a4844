/* SPDX-License-Identifier: Apache-2.0 */
#include "cni/version.hpp"

#include <algorithm>
#include <cassert>

namespace nftpm::cni {

namespace {

std::size_t versionIndex(std::string_view version)
{
	return static_cast<std::size_t>(
		std::find(kSupportedVersions.begin(), kSupportedVersions.end(), version) -
		kSupportedVersions.begin());
}

} /* namespace */

bool isSupportedVersion(std::string_view version)
{
	return versionIndex(version) < kSupportedVersions.size();
}

bool versionAtLeast(std::string_view version, std::string_view minimum)
{
	assert(isSupportedVersion(version) && isSupportedVersion(minimum));
	return versionIndex(version) >= versionIndex(minimum);
}

std::string supportedVersionsText()
{
	std::string text = "[";
	for (std::string_view v : kSupportedVersions) {
		if (text.size() > 1)
			text += ' ';
		text += '"';
		text += v;
		text += '"';
	}
	return text + "]";
}

} /* namespace nftpm::cni */
