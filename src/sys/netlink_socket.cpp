/* SPDX-License-Identifier: Apache-2.0 */
#include "sys/netlink_socket.hpp"

#include <cerrno>
#include <ctime>
#include <utility>

namespace nftpm::sys {

Expected<NetlinkSocket, int> NetlinkSocket::open(int bus)
{
	auto opened = openNetlink(bus);
	if (!opened)
		return Unexpected(opened.error().errnum);

	NetlinkSocket s;
	s.nl_ = std::move(opened->nl);
	s.portid_ = opened->portid;
	/* Not 0: libmnl treats seq 0 as "do not check". */
	s.seq_ = static_cast<std::uint32_t>(std::time(nullptr)) | 1u;
	s.buffer_ = RawBuffer(kBufferSize);
	return s;
}

Expected<void, int> NetlinkSocket::exchange(const nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	if (mnl_socket_sendto(nl_.get(), nlh, nlh->nlmsg_len) < 0)
		return Unexpected(errno);

	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl_.get(), buffer_.data(), buffer_.size());
		if (n < 0) {
			/* A signal, not the kernel: nothing was lost, read again. */
			if (errno == EINTR)
				continue;
			return Unexpected(errno);
		}
		int ret = mnl_cb_run(buffer_.data(), static_cast<std::size_t>(n), nlh->nlmsg_seq,
				     portid_, cb, data);
		if (ret == MNL_CB_STOP)
			return {};
		if (ret < 0)
			return Unexpected(errno);
	}
}

} /* namespace nftpm::sys */
