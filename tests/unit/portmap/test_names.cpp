/* SPDX-License-Identifier: Apache-2.0 */
/* Attachment names and comments: stable across processes, and readable back. */
#include <doctest/doctest.h>

#include <set>

#include "portmap/ruleset.hpp"

using namespace nftpm;
using namespace nftpm::ruleset;

namespace {

const std::string kId64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

} /* namespace */

TEST_CASE("attachment names are FNV-1a of network, container ID and ifname (fixed vectors)")
{
	/* Computed independently: FNV-1a 64 of "podman\0<id>\0eth0" and "cbr0\0abc\0eth1". */
	CHECK(attachmentName({ "podman", kId64, "eth0" }) == "pm-63f2bd6e203647a9");
	CHECK(attachmentName({ "cbr0", "abc", "eth1" }) == "pm-c9aed3c470e5e1c4");
	CHECK(recordName({ "cbr0", "abc", "eth1" }, 0) == "pm-c9aed3c470e5e1c4");
	CHECK(recordName({ "cbr0", "abc", "eth1" }, 2) == "pm-c9aed3c470e5e1c4-2");
	/* The empty attachment still hashes its two separators. */
	CHECK(attachmentName({ "", "", "" }).size() == 19);
}

TEST_CASE("every field takes part in the attachment name, and the separators keep fields apart")
{
	std::set<std::string> names;
	for (const Attachment &a : std::vector<Attachment>{ { "net", "id", "eth0" },
							    { "net2", "id", "eth0" },
							    { "net", "id2", "eth0" },
							    { "net", "id", "eth1" },
							    { "ne", "tid", "eth0" },
							    { "net", "ide", "th0" } })
		names.insert(attachmentName(a));
	CHECK(names.size() == 6);
	for (const auto &n : names) {
		CHECK(n.rfind("pm-", 0) == 0);
		CHECK(n.size() == 19);
		CHECK(n.find_first_not_of("0123456789abcdef", 3) == std::string::npos);
	}
}

TEST_CASE("a short comment names all three fields in clear")
{
	Attachment a{ "podman", kId64, "eth0" };
	std::string c = attachmentComment(a);
	CHECK(c == "net=podman id=" + kId64 + " if=eth0");
	auto back = parseAttachmentComment(c);
	REQUIRE(back);
	CHECK(*back == a);
	CHECK(commentMatches(*back, a));
	CHECK_FALSE(commentMatches(*back, Attachment{ "podman", kId64, "eth1" }));
}

TEST_CASE("a long comment cuts the container ID first and stays within 127 bytes")
{
	Attachment a{ "a-rather-long-network-name-for-the-kubernetes-pods-of-team-x", kId64, "eth0" };
	std::string c = attachmentComment(a);
	CHECK(c.size() == 127);
	auto back = parseAttachmentComment(c);
	REQUIRE(back);
	CHECK(back->network == a.network);
	CHECK(back->ifname == a.ifname);
	/* A cut field: a prefix, "~" and 8 hex digits of the whole field's hash. */
	const std::string &cid = back->containerId;
	REQUIRE(cid.size() > 9);
	CHECK(cid[cid.size() - 9] == kCutMarker);
	CHECK(cid.size() < kId64.size());
	CHECK(kId64.rfind(cid.substr(0, cid.size() - 9), 0) == 0);
	CHECK(commentMatches(*back, a));
	/* Another container whose ID shares the kept prefix also matches: the chain name decides. */
	CHECK_FALSE(commentMatches(*back, Attachment{ a.network, "ffff", "eth0" }));
	CHECK_FALSE(commentFieldMatches(back->containerId, back->containerId.substr(0, 3)));
}

TEST_CASE("a very long network name is cut after the ID reached its minimum")
{
	std::string net(200, 'n');
	Attachment a{ net, kId64, "eth0" };
	std::string c = attachmentComment(a);
	CHECK(c.size() <= 127);
	auto back = parseAttachmentComment(c);
	REQUIRE(back);
	CHECK(back->containerId.substr(0, 13) == kId64.substr(0, 12) + kCutMarker);
	CHECK(back->containerId.size() == 12 + 9);
	CHECK(back->network[back->network.size() - 9] == kCutMarker);
	CHECK(back->ifname == "eth0");
	CHECK(commentMatches(*back, a));
	CHECK(commentFieldMatches(back->network, net));
	CHECK_FALSE(commentFieldMatches(back->network, "other"));
	/* Same prefix, different name: the hash in the cut field tells them apart. */
	CHECK_FALSE(commentFieldMatches(back->network, std::string(199, 'n') + "m"));
	CHECK_FALSE(commentFieldMatches(back->containerId, kId64.substr(0, 12) + "ffff"));
}

TEST_CASE("comments that are not ours do not parse")
{
	for (const char *bad : { "", "hello", "net=x id=y", "id=y if=z", "net= id=y if=z", "net=x id= if=z",
				 "net=x id=y if=" })
		CHECK_MESSAGE(!parseAttachmentComment(bad), bad);
}

TEST_CASE("map names")
{
	CHECK(std::string(mapName(MapId::Ports4)) == "ports4");
	CHECK(std::string(mapName(MapId::Ports6)) == "ports6");
	CHECK(std::string(mapName(MapId::AddrPorts4)) == "addrports4");
	CHECK(std::string(mapName(MapId::AddrPorts6)) == "addrports6");
	CHECK(std::string(mapName(MapId::Masq4)) == "masq4");
	CHECK(std::string(mapName(MapId::Masq6)) == "masq6");
}
