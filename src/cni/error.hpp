/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CNI errors: what the plugin prints on stdout (and exits non-zero with)
 * when a command fails. Codes 0-99 are the spec's; 100 and up are ours.
 */
#pragma once

#include <string>
#include <string_view>

#include "util/expected.hpp"

namespace nftpm::cni {

enum ErrorCode : int {
	/* Well-known codes (CNI spec 1.1.0, "Error" section). */
	ErrIncompatibleVersion = 1,
	ErrUnsupportedField = 2,
	ErrUnknownContainer = 3,
	ErrInvalidEnvironment = 4,
	ErrIo = 5,
	ErrDecode = 6,
	ErrInvalidConfig = 7,
	ErrTryAgainLater = 11,
	/* STATUS only: the plugin cannot service ADD right now. */
	ErrNotAvailable = 50,
	/* STATUS only: as 50, and existing containers may have lost connectivity. */
	ErrNotAvailableLimitedConnectivity = 51,

	/*
	 * Plugin-specific codes.
	 *
	 * 100: a host port of this ADD is already published by another
	 *      attachment; msg names the port, details name the owner.
	 * 101: the kernel refused our nftables batch (nothing was applied);
	 *      msg names the refused operation.
	 * 102: nftables cannot be used at all: netlink socket, permissions,
	 *      missing kernel support.
	 * 103: CHECK found the attachment's state missing or different from
	 *      what ADD builds; msg names the first difference.
	 */
	ErrPortConflict = 100,
	ErrNftablesRefused = 101,
	ErrNftablesUnusable = 102,
	ErrCheckFailed = 103,
};

struct Error {
	int code = 0;
	std::string msg;
	std::string details; /* omitted from the JSON when empty */
};

template<typename T>
using Result = Expected<T, Error>;

inline Unexpected<Error> fail(int code, std::string msg, std::string details = {})
{
	return Unexpected(Error{ code, std::move(msg), std::move(details) });
}

/*
 * The error as the spec prints it, pretty with a 4-space indent and no
 * trailing newline: {"cniVersion", "code", "msg", "details"}. cniVersion is
 * omitted when empty (an error before the configuration was read).
 */
std::string errorJson(const Error &error, std::string_view cniVersion);

} /* namespace nftpm::cni */
