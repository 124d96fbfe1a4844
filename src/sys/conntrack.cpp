/* SPDX-License-Identifier: Apache-2.0 */
#include "sys/conntrack.hpp"

#include <array>
#include <cerrno>
#include <cstring>

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include "sys/conntrack_msg.hpp"
#include "sys/netlink_socket.hpp"
#include "sys/small_file.hpp"

namespace nftpm::sys {

using namespace ctmsg;

namespace {

/* First try plus two: an interrupted dump is rare, twice in a row rarer. */
constexpr int kMaxAttempts = 3;

/*
 * Worth doing again. EINTR: a dump flagged NLM_F_DUMP_INTR (the netlink
 * way of saying the table changed under it; ctnetlink of 6.18 does not
 * flag its dumps, but nothing promises it never will). EAGAIN: what
 * nfnetlink answers when it had to load the ctnetlink module first.
 */
bool isTransient(int err)
{
	return err == EINTR || err == EAGAIN;
}

std::string failure(Family family, const char *step, int err)
{
	return std::string("conntrack (") + familyName(family) + " udp): " + step + ": " + std::strerror(err);
}

/*
 * How many entries this network namespace's table holds (both families,
 * all zones); nullopt when the kernel does not say.
 */
std::optional<unsigned long> entryCount()
{
	auto contents = readSmallFile("/proc/sys/net/netfilter/nf_conntrack_count");
	if (!contents)
		return std::nullopt;
	return parseCount(*contents);
}

struct DumpState {
	Family family;
	std::span<const std::uint16_t> ports;
	std::vector<CtPtr> matches;
};

int collect(const nlmsghdr *nlh, void *data)
{
	auto *state = static_cast<DumpState *>(data);
	CtPtr ct(nfct_new());
	if (!ct) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nfct_nlmsg_parse(nlh, ct.get()) < 0) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (isStaleUdp(ct.get(), state->family, state->ports))
		state->matches.push_back(std::move(ct));
	return MNL_CB_OK;
}

/* One entry gone: 1, or 0 if it was gone already (ENOENT); else the errno. */
Expected<unsigned, int> deleteOne(NetlinkSocket &sock, const nf_conntrack *seen)
{
	int err = 0;
	for (int attempt = 0; attempt < kMaxAttempts; attempt++) {
		std::array<char, kRequestSize> buf{};
		nlmsghdr *req = buildDelete(buf.data(), seen, sock.nextSeq());
		if (!req)
			return Unexpected(ENOMEM);
		auto r = sock.exchange(req, nullptr, nullptr);
		if (r)
			return 1u;
		err = r.error();
		/* Expired, or deleted by someone else, since the dump. */
		if (err == ENOENT)
			return 0u;
		if (!isTransient(err))
			break;
	}
	return Unexpected(err);
}

} /* namespace */

namespace ctmsg {

Expected<unsigned, std::string> flushUdp(Family family, const std::vector<std::uint16_t> &ports,
					 DumpFilter filter)
{
	const std::vector<std::uint16_t> sorted = normalizePorts(ports);
	if (sorted.empty())
		return 0u;

	/*
	 * A dump walks every bucket of the kernel's hash table, which is
	 * shared by all namespaces and sized for the machine (262144 buckets
	 * here: ~8 ms), even when this namespace has no entry at all. The
	 * per-namespace count answers that case for the price of a read.
	 */
	if (entryCount() == 0ul)
		return 0u;

	int err = 0;
	for (int attempt = 0; attempt < kMaxAttempts; attempt++) {
		/*
		 * A fresh socket each time: after a failed dump its remaining
		 * messages may still be queued on the old one.
		 */
		auto sock = NetlinkSocket::open(NETLINK_NETFILTER);
		if (!sock)
			return Unexpected(failure(family, "opening the netlink socket", sock.error()));

		std::array<char, kRequestSize> buf{};
		nlmsghdr *req = buildUdpDump(buf.data(), family, sorted, filter, sock->nextSeq());
		if (!req)
			return Unexpected(failure(family, "building the dump request", ENOMEM));

		/*
		 * Matches are deleted after the dump, not from its callback:
		 * the dump has the socket until NLMSG_DONE.
		 */
		DumpState state{ family, sorted, {} };
		auto dumped = sock->exchange(req, collect, &state);
		if (!dumped) {
			err = dumped.error();
			if (isTransient(err))
				continue;
			/*
			 * A kernel that refuses the tuple filter (none known:
			 * older ones ignore it): the callback checks alone.
			 */
			if (filter == DumpFilter::Kernel && (err == EINVAL || err == EOPNOTSUPP)) {
				filter = DumpFilter::Callback;
				continue;
			}
			return Unexpected(failure(family, "listing entries", err));
		}

		unsigned deleted = 0;
		for (const CtPtr &ct : state.matches) {
			auto n = deleteOne(*sock, ct.get());
			if (!n)
				return Unexpected(failure(family, "deleting an entry", n.error()));
			deleted += *n;
		}
		return deleted;
	}
	return Unexpected(failure(family, "listing entries (gave up after repeated interruptions)", err));
}

} /* namespace ctmsg */

Expected<unsigned, std::string> flushUdpByDestinationPort(Family family, const std::vector<std::uint16_t> &ports)
{
	return flushUdp(family, ports, DumpFilter::Kernel);
}

} /* namespace nftpm::sys */
