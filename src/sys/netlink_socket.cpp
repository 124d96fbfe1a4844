/* SPDX-License-Identifier: Apache-2.0 */
#include "sys/netlink_socket.hpp"

#include <cerrno>
#include <ctime>
#include <utility>

namespace nftpm::sys {

Expected<NetlinkSocket, int> NetlinkSocket::open(int bus)
{
	NetlinkSocket s;
	s.nl_ = mnl_socket_open2(bus, SOCK_CLOEXEC);
	if (!s.nl_)
		return Unexpected(errno);
	if (mnl_socket_bind(s.nl_, 0, MNL_SOCKET_AUTOPID) < 0)
		return Unexpected(errno);
	s.portid_ = mnl_socket_get_portid(s.nl_);
	/* Not 0: libmnl treats seq 0 as "do not check". */
	s.seq_ = static_cast<std::uint32_t>(std::time(nullptr)) | 1u;
	s.buffer_.resize(kBufferSize);
	return s;
}

NetlinkSocket::NetlinkSocket(NetlinkSocket &&other) noexcept
	: nl_(std::exchange(other.nl_, nullptr)), portid_(other.portid_), seq_(other.seq_),
	  buffer_(std::move(other.buffer_))
{
}

NetlinkSocket &NetlinkSocket::operator=(NetlinkSocket &&other) noexcept
{
	if (this != &other) {
		if (nl_)
			mnl_socket_close(nl_);
		nl_ = std::exchange(other.nl_, nullptr);
		portid_ = other.portid_;
		seq_ = other.seq_;
		buffer_ = std::move(other.buffer_);
	}
	return *this;
}

NetlinkSocket::~NetlinkSocket()
{
	if (nl_)
		mnl_socket_close(nl_);
}

Expected<void, int> NetlinkSocket::exchange(const nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0)
		return Unexpected(errno);

	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl_, buffer_.data(), buffer_.size());
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
