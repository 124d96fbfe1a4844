/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The NETLINK_NETFILTER socket and the plain request/answer exchange on it.
 *
 * Every exchange is matched by sequence number: answers that belong to an
 * earlier exchange which stopped reading early are skipped, and such an
 * exchange leaves a mark so that the next one drains the socket first.
 */
#include "nft/socket.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <utility>

#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace nftpm::nft {

namespace {

/*
 * Big enough for any one datagram of nf_tables: the kernel sizes dump
 * buffers after the largest read (at most 32 KiB) and single answers are
 * smaller than that.
 */
constexpr std::size_t kRxBufferSize = 64 * 1024;

/*
 * nfnetlink answers synchronously, within sendmsg(), so answers are queued
 * before we read; this only bounds the wait if a kernel ever differs.
 */
constexpr int kAnswerTimeoutMs = 5000;

int socketBuffer(int fd, int option)
{
	int value = 0;
	socklen_t len = sizeof(value);
	if (getsockopt(fd, SOL_SOCKET, option, &value, &len) < 0)
		return 0;
	return value;
}

/*
 * Sets SO_{RCV,SND}BUF, first with the FORCE variant that ignores the
 * system-wide maximum (needs CAP_NET_ADMIN, which the plugin has anyway),
 * and returns what the kernel granted (it doubles the value for overhead).
 */
std::size_t growBuffer(int fd, int force, int plain, std::size_t bytes)
{
	int value = static_cast<int>(std::min<std::size_t>(bytes, INT_MAX / 2));
	if (setsockopt(fd, SOL_SOCKET, force, &value, sizeof(value)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, plain, &value, sizeof(value));
	return static_cast<std::size_t>(socketBuffer(fd, plain));
}

/* Extended ACK attributes, which start at offset in the payload of nlh. */
void parseAckTlvs(const nlmsghdr *nlh, std::size_t offset, Socket::Ack &ack)
{
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || mnl_nlmsg_get_payload_len(nlh) < offset)
		return;

	/* mnl_attr_for_each() spelled for C++ (it assigns from void *). */
	const auto *tail = static_cast<const char *>(mnl_nlmsg_get_payload_tail(nlh));
	for (auto *attr = static_cast<const nlattr *>(mnl_nlmsg_get_payload_offset(nlh, offset));
	     mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<const char *>(attr)));
	     attr = mnl_attr_next(attr)) {
		switch (mnl_attr_get_type(attr)) {
		case NLMSGERR_ATTR_MSG:
			if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
				ack.detail = mnl_attr_get_str(attr);
			break;
		case NLMSGERR_ATTR_OFFS:
			if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
				ack.badAttrOffset = mnl_attr_get_u32(attr);
			break;
		default:
			break;
		}
	}
}

/* State of one request(), shared with the mnl callbacks below. */
struct Exchange {
	std::uint32_t seq;
	const std::function<int(const nlmsghdr *)> &cb;
	Socket::Ack ack;
	bool finished = false;       /* DONE or ACK or error seen */
	bool kernelError = false;    /* ack.errnum tells which */
	bool callbackFailed = false; /* cb returned MNL_CB_ERROR */
};

int onData(const nlmsghdr *nlh, void *data)
{
	auto *x = static_cast<Exchange *>(data);
	if (nlh->nlmsg_seq != x->seq)
		return MNL_CB_OK; /* late answer to an earlier exchange */

	int ret = x->cb(nlh);
	if (ret == MNL_CB_ERROR)
		x->callbackFailed = true;
	return ret;
}

int onError(const nlmsghdr *nlh, void *data)
{
	auto *x = static_cast<Exchange *>(data);
	if (nlh->nlmsg_seq != x->seq)
		return MNL_CB_OK;

	x->finished = true;
	x->ack = Socket::parseAck(nlh);
	if (x->ack.errnum == 0)
		return MNL_CB_STOP;
	x->kernelError = true;
	return MNL_CB_ERROR;
}

int onDone(const nlmsghdr *nlh, void *data)
{
	auto *x = static_cast<Exchange *>(data);
	if (nlh->nlmsg_seq != x->seq)
		return MNL_CB_OK;

	x->finished = true;

	/* A dump that failed half-way puts the negative errno in NLMSG_DONE. */
	int err = 0;
	if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(err))
		std::memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
	if (err >= 0)
		return MNL_CB_STOP;

	x->kernelError = true;
	x->ack.errnum = -err;
	parseAckTlvs(nlh, sizeof(err), x->ack);
	return MNL_CB_ERROR;
}

} /* namespace */

Result<Socket> Socket::open()
{
	auto opened = openNetlink(NETLINK_NETFILTER);
	if (!opened)
		return fail(opened.error().errnum,
			    opened.error().step == OpenNetlinkError::Step::Open
				    ? "open netlink socket"
				    : "bind netlink socket");

	Socket s;
	s.nl_ = std::move(opened->nl);
	s.portid_ = opened->portid;

	/*
	 * Extended ACKs name the refused attribute and sometimes say why;
	 * capped ACKs do not echo the request back, which keeps the ACKs of
	 * a batch of thousands of operations small. Both are best effort.
	 */
	int one = 1;
	(void)mnl_socket_setsockopt(s.nl_.get(), NETLINK_EXT_ACK, &one, sizeof(one));
	(void)mnl_socket_setsockopt(s.nl_.get(), NETLINK_CAP_ACK, &one, sizeof(one));

	int fd = mnl_socket_get_fd(s.nl_.get());
	s.rcvbuf_ = static_cast<std::size_t>(socketBuffer(fd, SO_RCVBUF));
	s.sndbuf_ = static_cast<std::size_t>(socketBuffer(fd, SO_SNDBUF));
	s.rx_ = RawBuffer(kRxBufferSize);
	return s;
}

void Socket::reserveReceiveBuffer(std::size_t bytes)
{
	if (bytes <= rcvbuf_)
		return;
	rcvbuf_ = growBuffer(mnl_socket_get_fd(nl_.get()), SO_RCVBUFFORCE, SO_RCVBUF, bytes);
}

void Socket::reserveSendBuffer(std::size_t bytes)
{
	if (bytes <= sndbuf_)
		return;
	sndbuf_ = growBuffer(mnl_socket_get_fd(nl_.get()), SO_SNDBUFFORCE, SO_SNDBUF, bytes);
}

Socket::Ack Socket::parseAck(const nlmsghdr *nlh)
{
	Ack ack;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(nlmsgerr)) {
		ack.errnum = EBADMSG;
		ack.detail = "truncated netlink error message";
		return ack;
	}

	const auto *err = static_cast<const nlmsgerr *>(mnl_nlmsg_get_payload(nlh));
	ack.errnum = err->error < 0 ? -err->error : err->error;

	/* The TLVs follow the echoed request, which is only its header when capped. */
	std::size_t offset = sizeof(*err);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED) && err->msg.nlmsg_len > sizeof(nlmsghdr))
		offset += NLMSG_ALIGN(err->msg.nlmsg_len - sizeof(nlmsghdr));
	parseAckTlvs(nlh, offset, ack);
	return ack;
}

Result<void> Socket::send(const iovec *iov, std::size_t count, const std::string &operation)
{
	sockaddr_nl kernel{};
	kernel.nl_family = AF_NETLINK;

	msghdr msg{};
	msg.msg_name = &kernel;
	msg.msg_namelen = sizeof(kernel);
	msg.msg_iov = const_cast<iovec *>(iov);
	msg.msg_iovlen = count;

	ssize_t sent;
	do {
		sent = sendmsg(mnl_socket_get_fd(nl_.get()), &msg, 0);
	} while (sent < 0 && errno == EINTR);
	if (sent < 0)
		return fail(errno, operation);
	return {};
}

Result<std::span<const std::uint8_t>> Socket::receive(int timeoutMs, const std::string &operation)
{
	using Clock = std::chrono::steady_clock;
	const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeoutMs, 0));
	const int fd = mnl_socket_get_fd(nl_.get());

	for (;;) {
		sockaddr_nl from{};
		iovec iov{ rx_.data(), rx_.size() };
		msghdr msg{};
		msg.msg_name = &from;
		msg.msg_namelen = sizeof(from);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;

		ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (n >= 0) {
			if (msg.msg_flags & MSG_TRUNC)
				return fail(EMSGSIZE, operation, "answer larger than the receive buffer");
			if (from.nl_pid != 0)
				continue; /* not from the kernel */
			return std::span<const std::uint8_t>(rx_.data(), static_cast<std::size_t>(n));
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return fail(errno, operation);

		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
		if (left.count() <= 0)
			return std::span<const std::uint8_t>{};
		pollfd p{ fd, POLLIN, 0 };
		if (poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR)
			return fail(errno, operation);
	}
}

void Socket::discardPending()
{
	if (!pending_)
		return;
	pending_ = false;

	/* Reading also lets a half-read dump run to its end. */
	for (;;) {
		auto r = receive(0, "discard stale answers");
		if (r ? r->empty() : r.error().errnum != ENOBUFS)
			return;
	}
}

Result<void> Socket::request(const nlmsghdr *nlh, const std::string &operation,
			     const std::function<int(const nlmsghdr *)> &cb)
{
	discardPending();

	/*
	 * The end of an answer is NLMSG_DONE for a dump and the ACK otherwise;
	 * a plain GET gets only its reply unless it asks for the ACK, so ask.
	 */
	std::vector<std::uint8_t> copy;
	if (!(nlh->nlmsg_flags & (NLM_F_DUMP | NLM_F_ACK))) {
		nlmsghdr hdr = *nlh;
		hdr.nlmsg_flags |= NLM_F_ACK;
		const auto *head = reinterpret_cast<const std::uint8_t *>(&hdr);
		const auto *body = reinterpret_cast<const std::uint8_t *>(nlh) + sizeof(hdr);
		copy.assign(head, head + sizeof(hdr));
		copy.insert(copy.end(), body, body + (nlh->nlmsg_len - sizeof(hdr)));
		nlh = reinterpret_cast<const nlmsghdr *>(copy.data());
	}

	iovec iov{ const_cast<nlmsghdr *>(nlh), nlh->nlmsg_len };
	auto sent = send(&iov, 1, operation);
	if (!sent)
		return sent;

	mnl_cb_t ctl[NLMSG_MIN_TYPE] = {};
	ctl[NLMSG_ERROR] = onError;
	ctl[NLMSG_DONE] = onDone;

	Exchange x{ nlh->nlmsg_seq, cb };
	for (;;) {
		auto data = receive(kAnswerTimeoutMs, operation);
		if (!data) {
			pending_ = true;
			return Unexpected(std::move(data).error());
		}
		if (data->empty()) {
			pending_ = true;
			return fail(ETIMEDOUT, operation, "no answer from the kernel");
		}

		int ret = mnl_cb_run2(data->data(), data->size(), 0, portid_, onData, &x, ctl,
				      NLMSG_MIN_TYPE);
		if (ret > MNL_CB_STOP)
			continue;

		/* Stopped before the end: the rest of the answer is still queued. */
		if (!x.finished)
			pending_ = true;
		if (ret == MNL_CB_STOP)
			return {};
		if (x.kernelError)
			return fail(x.ack.errnum, operation, std::move(x.ack.detail));
		if (x.callbackFailed)
			return fail(EPROTO, operation, "malformed answer");
		if (errno == EINTR)
			return fail(EINTR, operation, "dump interrupted by a ruleset change");
		return fail(errno, operation);
	}
}

} /* namespace nftpm::nft */
