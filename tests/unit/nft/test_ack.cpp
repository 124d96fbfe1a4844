/* SPDX-License-Identifier: Apache-2.0 */
/* Decoding the kernel's NLMSG_ERROR answers, and the text of an Error. */
#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <linux/netlink.h>

#include "nft/error.hpp"
#include "nft/socket.hpp"

using namespace nftpm::nft;

namespace {

/*
 * An NLMSG_ERROR as the kernel writes it: nlmsgerr (with the request's
 * header), the request's payload unless capped, then the extended ACK TLVs.
 */
std::vector<std::uint32_t> errorMessage(int error, bool capped, const char *text,
					std::optional<std::uint32_t> offset)
{
	std::vector<std::uint32_t> buf(256);
	nlmsghdr *nlh = mnl_nlmsg_put_header(buf.data());
	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = 42;

	constexpr std::size_t requestPayload = 12;
	auto *err = static_cast<nlmsgerr *>(mnl_nlmsg_put_extra_header(nlh, sizeof(nlmsgerr)));
	err->error = error;
	err->msg.nlmsg_len = sizeof(nlmsghdr) + requestPayload;
	err->msg.nlmsg_seq = 42;
	if (capped) {
		nlh->nlmsg_flags |= NLM_F_CAPPED;
	} else {
		/* The echoed request payload: bytes that would read as TLVs if not skipped. */
		auto *echo = static_cast<std::uint8_t *>(mnl_nlmsg_put_extra_header(nlh, requestPayload));
		std::memset(echo, 0x01, requestPayload);
	}
	if (text || offset) {
		nlh->nlmsg_flags |= NLM_F_ACK_TLVS;
		if (text)
			mnl_attr_put_strz(nlh, NLMSGERR_ATTR_MSG, text);
		if (offset)
			mnl_attr_put_u32(nlh, NLMSGERR_ATTR_OFFS, *offset);
	}
	return buf;
}

const nlmsghdr *asNlh(const std::vector<std::uint32_t> &buf)
{
	return reinterpret_cast<const nlmsghdr *>(buf.data());
}

} /* namespace */

TEST_CASE("an ACK decodes to errnum 0")
{
	auto buf = errorMessage(0, true, nullptr, std::nullopt);
	Socket::Ack ack = Socket::parseAck(asNlh(buf));
	CHECK(ack.errnum == 0);
	CHECK(ack.detail.empty());
	CHECK(!ack.badAttrOffset);
}

TEST_CASE("an error decodes to a positive errno with its extended ACK")
{
	for (bool capped : { true, false }) {
		CAPTURE(capped);
		auto buf = errorMessage(-EEXIST, capped, "element exists", 36u);
		Socket::Ack ack = Socket::parseAck(asNlh(buf));
		CHECK(ack.errnum == EEXIST);
		CHECK(ack.detail == "element exists");
		CHECK(ack.badAttrOffset == 36u);
	}

	auto bare = errorMessage(-ENOENT, true, nullptr, 20u);
	Socket::Ack ack = Socket::parseAck(asNlh(bare));
	CHECK(ack.errnum == ENOENT);
	CHECK(ack.detail.empty());
	CHECK(ack.badAttrOffset == 20u);
}

TEST_CASE("a truncated error message is itself an error")
{
	std::vector<std::uint32_t> buf(16);
	nlmsghdr *nlh = mnl_nlmsg_put_header(buf.data());
	nlh->nlmsg_type = NLMSG_ERROR;
	CHECK(Socket::parseAck(nlh).errnum == EBADMSG);
}

TEST_CASE("Error::message names the operation, the errno and the detail")
{
	Error e{ EEXIST, "add element inet t s { 10.0.0.1 }", {} };
	CHECK(e.message() == "add element inet t s { 10.0.0.1 }: File exists");
	e.detail = "held by pm-0123";
	CHECK(e.message() == "add element inet t s { 10.0.0.1 }: File exists (held by pm-0123)");
	Error r{ ERESTART, "commit batch", {} };
	CHECK(r.message() == "commit batch: Interrupted system call should be restarted");
}
