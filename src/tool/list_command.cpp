/* SPDX-License-Identifier: Apache-2.0 */
#include "tool/list_command.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "nft/socket.hpp"
#include "portmap/listing.hpp"
#include "portmap/ruleset.hpp"

namespace nftpm {

namespace {

constexpr char kUsage[] =
	"Usage: nft-portmap list [--json]\n"
	"       nft-portmap --help | --version\n"
	"\n"
	"As a CNI plugin, nft-portmap is run by a container runtime with CNI_COMMAND\n"
	"set and a configuration on stdin. Run by hand with arguments, it reads the\n"
	"kernel's state in the current network namespace:\n"
	"\n"
	"  list         the published ports, per network, container and interface,\n"
	"               with the number of connections (packets) DNATed so far\n"
	"  list --json  the same as a JSON array, for scripts\n"
	"\n"
	"See nft-portmap(8).\n";

int usageError(const char *what)
{
	std::fprintf(stderr, "nft-portmap: %s\n\n%s", what, kUsage);
	return 2;
}

int list(bool json)
{
	auto s = nft::Socket::open();
	if (!s) {
		std::fprintf(stderr, "nft-portmap: cannot open a netlink socket to nftables: %s\n",
			     s.error().message().c_str());
		return 1;
	}
	auto ports = listPublished(*s);
	if (!ports) {
		int err = ports.error().errnum;
		if (err == ENOENT) {
			/* Not an error: nothing was ever published in this namespace. */
			std::fprintf(stderr, "nft-portmap: table inet %s does not exist: no port is published "
					     "in this network namespace\n",
				     ruleset::kTableName);
			if (json)
				std::fputs("[]\n", stdout);
			return 0;
		}
		if (err == EPERM || err == EACCES)
			std::fprintf(stderr, "nft-portmap: reading nftables needs CAP_NET_ADMIN (run as root): %s\n",
				     ports.error().message().c_str());
		else
			std::fprintf(stderr, "nft-portmap: cannot read nftables: %s\n",
				     ports.error().message().c_str());
		return 1;
	}
	std::string out = json ? formatPublishedJson(*ports) : formatPublishedTable(*ports);
	std::fwrite(out.data(), 1, out.size(), stdout);
	return 0;
}

} /* namespace */

int runTool(int argc, char **argv)
{
	std::string cmd = argv[1];
	if (cmd == "--help" || cmd == "-h" || cmd == "help") {
		std::fputs(kUsage, stdout);
		return 0;
	}
	if (cmd == "--version") {
		std::printf("nft-portmap %s\n", NFT_PORTMAP_VERSION);
		return 0;
	}
	if (cmd != "list")
		return usageError(("unknown command \"" + cmd + "\"").c_str());

	bool json = false;
	for (int i = 2; i < argc; i++) {
		if (std::strcmp(argv[i], "--json") == 0)
			json = true;
		else if (std::strcmp(argv[i], "--help") == 0) {
			std::fputs(kUsage, stdout);
			return 0;
		} else
			return usageError((std::string("unknown option \"") + argv[i] + "\"").c_str());
	}
	return list(json);
}

} /* namespace nftpm */
