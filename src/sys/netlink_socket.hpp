/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A libmnl socket for one request/answer exchange at a time, on any netlink
 * bus (NETLINK_NETFILTER for conntrack, NETLINK_ROUTE for the route lookup).
 * The nft layer has its own socket with batch handling; the helpers here
 * only ever need a single message and its answer.
 */
#pragma once

#include <cstdint>
#include <vector>

#include <libmnl/libmnl.h>

#include "util/expected.hpp"
#include "util/mnl_socket.hpp"
#include "util/raw_buffer.hpp"

namespace nftpm::sys {

class NetlinkSocket final
{
public:
	/* Opens and binds a socket of that bus; failure is the positive errno. */
	[[nodiscard]] static Expected<NetlinkSocket, int> open(int bus);

	NetlinkSocket(NetlinkSocket &&other) noexcept = default;
	NetlinkSocket &operator=(NetlinkSocket &&other) noexcept = default;
	NetlinkSocket(const NetlinkSocket &) = delete;
	NetlinkSocket &operator=(const NetlinkSocket &) = delete;
	~NetlinkSocket() = default;

	std::uint32_t nextSeq() { return seq_++; }

	/*
	 * Sends nlh (its nlmsg_seq must come from nextSeq()) and feeds every
	 * answer message to cb until NLMSG_DONE or the final ACK. A kernel
	 * error, or MNL_CB_ERROR from cb, comes back as the positive errno;
	 * EINTR also means a dump the kernel flagged as interrupted
	 * (NLM_F_DUMP_INTR). After an error in the middle of a dump the rest of
	 * it is still queued: such a socket must not be used again.
	 */
	[[nodiscard]] Expected<void, int> exchange(const nlmsghdr *nlh, mnl_cb_t cb, void *data);

	/*
	 * Large enough for the biggest datagram the kernel builds for a dump:
	 * it sizes dump messages to the reader's buffer, up to 32 KiB.
	 */
	static constexpr std::size_t kBufferSize = 32768;

private:
	NetlinkSocket() = default;

	MnlSocketPtr nl_;
	std::uint32_t portid_ = 0;
	std::uint32_t seq_ = 1;
	RawBuffer buffer_;
};

} /* namespace nftpm::sys */
