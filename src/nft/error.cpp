/* SPDX-License-Identifier: Apache-2.0 */
#include "nft/error.hpp"

#include <cstring>

namespace nftpm::nft {

std::string Error::message() const
{
	/* strerrordesc_np(): thread-safe and locale-independent, unlike strerror(). */
	const char *text = strerrordesc_np(errnum);
	std::string m = operation;
	m += ": ";
	m += text ? text : "error " + std::to_string(errnum);
	if (!detail.empty())
		m += " (" + detail + ")";
	return m;
}

} /* namespace nftpm::nft */
