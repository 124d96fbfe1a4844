/* SPDX-License-Identifier: Apache-2.0 */
/* The NETLINK_NETFILTER socket: one per plugin run, move-only. */
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <sys/uio.h>

#include <libmnl/libmnl.h>

#include "nft/error.hpp"
#include "util/mnl_socket.hpp"
#include "util/raw_buffer.hpp"

namespace nftpm::nft {

class Socket final
{
public:
	/* Opens and binds; fails with EPERM without CAP_NET_ADMIN only when used. */
	[[nodiscard]] static Result<Socket> open();

	Socket(Socket &&other) noexcept = default;
	Socket &operator=(Socket &&other) noexcept = default;
	Socket(const Socket &) = delete;
	Socket &operator=(const Socket &) = delete;
	~Socket() = default;

	mnl_socket *get() const { return nl_.get(); }
	std::uint32_t portid() const { return portid_; }
	/* Sequence numbers are unique within this socket's life. */
	std::uint32_t nextSeq() { return seq_++; }

	/*
	 * Sends one request (nlh must carry seq from nextSeq()) and feeds every
	 * reply message to cb until NLMSG_DONE, the ACK, or an error. A kernel
	 * error comes back as Error{errno, operation, extended ACK message}.
	 * A request without NLM_F_DUMP or NLM_F_ACK is sent with NLM_F_ACK so
	 * that its end is seen. A dump the kernel flags as interrupted by a
	 * ruleset change is Error{EINTR}. cb returns MNL_CB_OK to go on,
	 * MNL_CB_STOP to stop early, MNL_CB_ERROR to fail (EPROTO).
	 */
	[[nodiscard]] Result<void> request(const nlmsghdr *nlh, const std::string &operation,
					   const std::function<int(const nlmsghdr *)> &cb);

	/* Grows the kernel receive buffer (SO_RCVBUFFORCE, falling back to SO_RCVBUF). */
	void reserveReceiveBuffer(std::size_t bytes);

	/*
	 * Lower-level pieces for Batch and pipelined queries, which send many
	 * messages at once and match the answers by sequence number.
	 */

	/* An NLMSG_ERROR message, decoded. */
	struct Ack {
		int errnum = 0;     /* positive errno; 0: an ACK */
		std::string detail; /* NLMSGERR_ATTR_MSG, if the kernel gave one */
		/* NLMSGERR_ATTR_OFFS: byte offset of the refused attribute in the request */
		std::optional<std::uint32_t> badAttrOffset;
	};
	static Ack parseAck(const nlmsghdr *nlh);

	/* Grows the kernel send buffer so one sendmsg() of bytes fits (SO_SNDBUFFORCE). */
	void reserveSendBuffer(std::size_t bytes);

	/* One sendmsg() of the buffers, addressed to the kernel. */
	[[nodiscard]] Result<void> send(const iovec *iov, std::size_t count,
					const std::string &operation);

	/*
	 * Receives one datagram from the kernel, waiting at most timeoutMs
	 * (0: only what is queued already). An empty span: nothing came.
	 * Error{ENOBUFS}: the kernel dropped messages for this socket. The
	 * span stays valid until the next receive().
	 */
	[[nodiscard]] Result<std::span<const std::uint8_t>> receive(int timeoutMs,
								    const std::string &operation);

	/*
	 * Answers to an exchange that ended early may still be queued (or a
	 * dump may be half read): markPending() says so, and the next exchange
	 * calls discardPending() first so that it never reads stale answers.
	 */
	void markPending() { pending_ = true; }
	void discardPending();

private:
	Socket() = default;
	MnlSocketPtr nl_;
	std::uint32_t portid_ = 0;
	std::uint32_t seq_ = 1;
	std::size_t rcvbuf_ = 0; /* what reserveReceiveBuffer() last asked for */
	std::size_t sndbuf_ = 0;
	bool pending_ = false;
	RawBuffer rx_;
};

} /* namespace nftpm::nft */
