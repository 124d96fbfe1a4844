/* SPDX-License-Identifier: Apache-2.0 */
/* Errors of the netlink layer: an errno and the operation it belongs to. */
#pragma once

#include <string>

#include "util/expected.hpp"

namespace nftpm::nft {

struct Error {
	int errnum = 0;        /* positive errno: ENOENT, EEXIST, ERESTART, ... */
	std::string operation; /* what was asked, in nft syntax where there is one */
	std::string detail;    /* extended ACK message from the kernel, if any */

	/* "<operation>: <strerror(errnum)>[ (<detail>)]" */
	std::string message() const;
};

template<typename T>
using Result = Expected<T, Error>;

inline Unexpected<Error> fail(int errnum, std::string operation, std::string detail = {})
{
	return Unexpected(Error{ errnum, std::move(operation), std::move(detail) });
}

} /* namespace nftpm::nft */
