/* SPDX-License-Identifier: Apache-2.0 */
/* The NETLINK_NETFILTER socket: one per plugin run, move-only. */
#pragma once

#include <cstdint>
#include <functional>

#include <libmnl/libmnl.h>

#include "nft/error.hpp"

namespace nftpm::nft {

class Socket final
{
public:
	/* Opens and binds; fails with EPERM without CAP_NET_ADMIN only when used. */
	[[nodiscard]] static Result<Socket> open();

	Socket(Socket &&other) noexcept;
	Socket &operator=(Socket &&other) noexcept;
	Socket(const Socket &) = delete;
	Socket &operator=(const Socket &) = delete;
	~Socket();

	mnl_socket *get() const { return nl_; }
	std::uint32_t portid() const { return portid_; }
	/* Sequence numbers are unique within this socket's life. */
	std::uint32_t nextSeq() { return seq_++; }

	/*
	 * Sends one request (nlh must carry seq from nextSeq()) and feeds every
	 * reply message to cb until NLMSG_DONE, the ACK, or an error. A kernel
	 * error comes back as Error{errno, operation}.
	 */
	[[nodiscard]] Result<void> request(const nlmsghdr *nlh, const std::string &operation,
					   const std::function<int(const nlmsghdr *)> &cb);

	/* Grows the kernel receive buffer (SO_RCVBUFFORCE, falling back to SO_RCVBUF). */
	void reserveReceiveBuffer(std::size_t bytes);

private:
	Socket() = default;
	mnl_socket *nl_ = nullptr;
	std::uint32_t portid_ = 0;
	std::uint32_t seq_ = 1;
};

} /* namespace nftpm::nft */
