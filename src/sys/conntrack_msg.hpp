/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ctnetlink messages behind flushUdpByDestinationPort(), apart from the
 * socket, so that unit tests can build and inspect them without privileges.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "util/expected.hpp"
#include "util/ip.hpp"

struct nlmsghdr;

namespace nftpm::sys::ctmsg {

struct CtDeleter {
	void operator()(nf_conntrack *ct) const { nfct_destroy(ct); }
};
using CtPtr = std::unique_ptr<nf_conntrack, CtDeleter>;

/*
 * How the dump is narrowed down. The callback always checks every entry
 * itself, so Kernel is purely a saving; Callback exists to measure that
 * saving and to prove the user-space check alone is right (kernels before
 * 5.8 ignore the filter).
 */
enum class DumpFilter {
	Kernel,
	Callback,
};

/* Room for any request built here (the largest, an IPv6 delete, is ~150). */
constexpr std::size_t kRequestSize = 512;

/* Sorted and free of duplicates: what the other functions expect. */
std::vector<std::uint16_t> normalizePorts(std::vector<std::uint16_t> ports);

/*
 * IPCTNL_MSG_CT_GET with NLM_F_DUMP for one family (nfgen_family narrows the
 * dump to it). With DumpFilter::Kernel it also carries an ORIGINAL tuple
 * filter (CTA_FILTER, kernel >= 5.8): protocol UDP, plus the destination
 * port when there is exactly one. buf must hold kRequestSize bytes.
 * nullptr when libnetfilter_conntrack cannot build it (ENOMEM).
 */
nlmsghdr *buildUdpDump(void *buf, Family family, std::span<const std::uint16_t> sortedPorts,
		       DumpFilter filter, std::uint32_t seq);

/* True for an entry of that family, UDP, ORIGINAL dport in sortedPorts. */
bool isStaleUdp(const nf_conntrack *ct, Family family, std::span<const std::uint16_t> sortedPorts);

/*
 * IPCTNL_MSG_CT_DELETE (with NLM_F_ACK) of exactly the entry seen in a
 * dump: its ORIGINAL tuple, its zone, and its id, so that a newer entry
 * that reuses the tuple in the meantime is left alone (the kernel answers
 * ENOENT). buf as for buildUdpDump(); nullptr on failure.
 */
nlmsghdr *buildDelete(void *buf, const nf_conntrack *seen, std::uint32_t seq);

/*
 * The number in /proc/sys/net/netfilter/nf_conntrack_count ("12\n");
 * nullopt for anything else.
 */
std::optional<unsigned long> parseCount(std::string_view contents);

/* flushUdpByDestinationPort() with the dump filter chosen by the caller. */
[[nodiscard]] Expected<unsigned, std::string>
flushUdp(Family family, const std::vector<std::uint16_t> &ports, DumpFilter filter);

} /* namespace nftpm::sys::ctmsg */
