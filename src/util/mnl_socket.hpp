/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one owner of a libmnl socket, shared by the nft layer's socket and the
 * single-exchange netlink socket of the sys helpers, so that neither has to
 * spell out its own move and close.
 */
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>
#include <utility>

#include <sys/socket.h>

#include <libmnl/libmnl.h>

#include "util/expected.hpp"

namespace nftpm {

struct MnlSocketCloser {
	void operator()(mnl_socket *nl) const noexcept { mnl_socket_close(nl); }
};
using MnlSocketPtr = std::unique_ptr<mnl_socket, MnlSocketCloser>;

/* A socket opened and bound to a kernel-chosen port id. */
struct OpenedNetlink {
	MnlSocketPtr nl;
	std::uint32_t portid = 0;
};

/* Which step of openNetlink() failed, and the positive errno it failed with. */
struct OpenNetlinkError {
	enum class Step { Open, Bind } step;
	int errnum;
};

/* Opens a close-on-exec socket of that netlink bus and binds it (MNL_SOCKET_AUTOPID). */
[[nodiscard]] inline Expected<OpenedNetlink, OpenNetlinkError> openNetlink(int bus)
{
	MnlSocketPtr nl(mnl_socket_open2(bus, SOCK_CLOEXEC));
	if (!nl)
		return Unexpected(OpenNetlinkError{ OpenNetlinkError::Step::Open, errno });
	if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0)
		return Unexpected(OpenNetlinkError{ OpenNetlinkError::Step::Bind, errno });
	std::uint32_t portid = mnl_socket_get_portid(nl.get());
	return OpenedNetlink{ std::move(nl), portid };
}

} /* namespace nftpm */
