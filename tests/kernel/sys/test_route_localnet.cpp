/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enableRouteLocalnet() against the real routing table and /proc/sys of
 * this test's own network namespace.
 */
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <set>
#include <sstream>

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ct_testing.hpp"
#include "sys/route_localnet.hpp"

using namespace nftpm;
using cttest::sh;

namespace {

/*
 * veth "rl.7" (a dotted name, like a VLAN's) with 10.123.0.1/24, its peer
 * "rlp.7" down the other end, and 10.124.0.0/16 behind a gateway on it.
 */
void setupOnce()
{
	static bool done = false;
	if (done)
		return;
	sh("ip link add rl.7 type veth peer name rlp.7");
	sh("ip link set rl.7 up && ip link set rlp.7 up");
	sh("ip addr add 10.123.0.1/24 dev rl.7");
	sh("ip route add 10.124.0.0/16 via 10.123.0.2 dev rl.7");
	sh("ip route add unreachable 10.201.0.0/16");
	sh("ip route add prohibit 10.202.0.0/16");
	sh("ip route add blackhole 10.203.0.0/16");
	done = true;
}

std::string readFile(const std::string &path)
{
	std::ifstream in(path);
	std::stringstream s;
	s << in.rdbuf();
	return s.str();
}

std::string sysctl(const std::string &ifname)
{
	return readFile("/proc/sys/net/ipv4/conf/" + ifname + "/route_localnet");
}

std::set<std::string> confDirectory()
{
	std::set<std::string> names;
	DIR *d = opendir("/proc/sys/net/ipv4/conf");
	REQUIRE(d);
	while (dirent *e = readdir(d))
		if (e->d_name[0] != '.')
			names.insert(e->d_name);
	closedir(d);
	return names;
}

std::optional<std::string> enableOk(const char *address)
{
	auto a = IpAddress::parse(address);
	REQUIRE(a);
	auto r = sys::enableRouteLocalnet(*a);
	std::string why = r ? std::string() : r.error();
	INFO(address, ": ", why);
	REQUIRE(r);
	return *r;
}

} /* namespace */

TEST_CASE("/proc/sys/net is the namespace of the calling thread, not the one /proc was mounted in")
{
	/* A fresh namespace: only its own loopback, none of the host's devices. */
	CHECK(confDirectory() == std::set<std::string>{ "all", "default", "lo" });
	setupOnce();
	CHECK(confDirectory() == std::set<std::string>{ "all", "default", "lo", "rl.7", "rlp.7" });
}

TEST_CASE("route_localnet is set on the interface the container address is routed through")
{
	setupOnce();
	REQUIRE(sysctl("rl.7") == "0\n");
	REQUIRE(sysctl("rlp.7") == "0\n");

	CHECK(enableOk("10.123.0.9") == "rl.7");
	CHECK(sysctl("rl.7") == "1\n");
	/* Only the outgoing interface. */
	CHECK(sysctl("rlp.7") == "0\n");
	CHECK(sysctl("lo") == "0\n");
	CHECK(sysctl("all") == "0\n");

	/* Already 1: same answer, nothing to change. */
	CHECK(enableOk("10.123.0.9") == "rl.7");
	CHECK(sysctl("rl.7") == "1\n");

	/* Behind a gateway: the interface of the next hop. */
	sh("echo 0 > /proc/sys/net/ipv4/conf/rl.7/route_localnet");
	CHECK(enableOk("10.124.3.4") == "rl.7");
	CHECK(sysctl("rl.7") == "1\n");
}

TEST_CASE("no usable route is not an error: nothing is written")
{
	setupOnce();
	/* No route at all (no default route here), unreachable, prohibit, blackhole. */
	for (const char *a : { "10.250.0.1", "10.201.0.1", "10.202.0.1", "10.203.0.1" }) {
		CAPTURE(a);
		CHECK(!enableOk(a));
	}
	CHECK(sysctl("lo") == "0\n");
	CHECK(sysctl("rlp.7") == "0\n");
}

TEST_CASE("one lookup costs little")
{
	setupOnce();
	enableOk("10.123.0.9");
	std::vector<double> t;
	for (int i = 0; i < 50; i++) {
		auto start = std::chrono::steady_clock::now();
		enableOk("10.123.0.9");
		t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
	}
	std::sort(t.begin(), t.end());
	MESSAGE("enableRouteLocalnet (already 1), median of 50: " << t[25] << " us");
	std::fprintf(stderr, "enableRouteLocalnet (already 1), median of 50: %.0f us\n", t[25]);
	CHECK(t[25] < 5000);
}

TEST_CASE("a sysctl file that cannot be written is an error naming it")
{
	setupOnce();
	sh("echo 0 > /proc/sys/net/ipv4/conf/rl.7/route_localnet");
	const std::string target = "/proc/sys/net/ipv4/conf/rl.7/route_localnet";

	/*
	 * Hide the file under a read-only bind mount, in a mount namespace of
	 * this process only (private, so the host's mounts never see it).
	 */
	REQUIRE(unshare(CLONE_NEWNS) == 0);
	REQUIRE(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
	char dir[] = "/tmp/nftpm-rl-XXXXXX";
	REQUIRE(mkdtemp(dir));
	const std::string fake = std::string(dir) + "/route_localnet";
	{
		std::ofstream(fake) << "0\n";
	}
	REQUIRE(mount(fake.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) == 0);
	REQUIRE(mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) == 0);

	auto r = sys::enableRouteLocalnet(*IpAddress::parse("10.123.0.9"));
	CHECK(!r);
	if (!r) {
		MESSAGE(r.error());
		CHECK(r.error().find(target) != std::string::npos);
	}

	REQUIRE(umount(target.c_str()) == 0);
	unlink(fake.c_str());
	rmdir(dir);
	/* The real file again, untouched by the failed attempt. */
	CHECK(sysctl("rl.7") == "0\n");
	CHECK(enableOk("10.123.0.9") == "rl.7");
	CHECK(sysctl("rl.7") == "1\n");
}
