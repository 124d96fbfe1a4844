/* SPDX-License-Identifier: Apache-2.0 */
#include <doctest/doctest.h>

#include <string>

#include "cni/config.hpp"
#include "fixture.hpp"

using namespace nftpm;
using namespace nftpm::cni;
using namespace nftpm::cni::test;

namespace {

/* A configuration as libcni hands it to the plugin, plus members. */
std::string conf(const std::string &members, const std::string &version = "1.0.0")
{
	return R"({"cniVersion":")" + version + R"(","name":"podnet","type":"nft-portmap")" +
	       (members.empty() ? "" : "," + members) + "}";
}

std::string withMappings(const std::string &entries)
{
	return conf(R"("runtimeConfig":{"portMappings":[)" + entries + "]}");
}

Config parsed(const std::string &json, Command command = Command::Add, const std::string &ifname = "eth0")
{
	Result<Config> c = parseConfig(json, environmentFor(command, ifname));
	REQUIRE_MESSAGE(c.has_value(), json, " -> ", c.error().msg);
	return *c;
}

Error refused(const std::string &json, Command command = Command::Add)
{
	Result<Config> c = parseConfig(json, environmentFor(command));
	REQUIRE_MESSAGE(!c.has_value(), json);
	return c.error();
}

/* The error for json, which must be code 7 with message msg. */
void checkInvalid(const std::string &json, const std::string &msg)
{
	Error e = refused(json);
	CHECK_MESSAGE(e.code == ErrInvalidConfig, json);
	CHECK_MESSAGE(e.msg == msg, json);
}

std::string prevResultWith(const std::string &interfaces, const std::string &ips)
{
	return conf(R"("prevResult":{"cniVersion":"1.0.0","interfaces":[)" + interfaces + R"(],"ips":[)" + ips +
		    "]}");
}

} /* namespace */

TEST_CASE("a minimal configuration gets the reference's defaults")
{
	Config c = parsed(conf(""));
	CHECK(c.cniVersion == "1.0.0");
	CHECK(c.name == "podnet");
	CHECK(c.type == "nft-portmap");
	CHECK(c.snat);
	CHECK(!c.masqAll);
	CHECK(!c.markMasqBit);
	CHECK(!c.backend);
	CHECK(c.conditionsV4.empty());
	CHECK(c.conditionsV6.empty());
	CHECK(c.portMappings.empty());
	CHECK(!c.prevResult);
	CHECK(!c.containerV4);
	CHECK(!c.containerV6);
	CHECK(!c.validAttachments);
	CHECK(c.dstnatPriority == -100);
	CHECK(c.srcnatPriority == 100);
}

TEST_CASE("a configuration as containerd sends it, with a captured bridge result")
{
	std::string json = R"({"cniVersion":"1.0.0","name":"podnet","type":"nft-portmap",
		"capabilities":{"portMappings":true},"snat":false,"masqAll":true,"backend":"nftables",
		"conditionsV4":["ip","saddr","!=","10.0.0.0/8"],"conditionsV6":["ip6","daddr","fd00::1"],
		"dstnatPriority":-110,"srcnatPriority":110,"someFutureKey":{"x":[1]},
		"runtimeConfig":{"portMappings":[
			{"hostPort":8080,"containerPort":80,"protocol":"tcp"},
			{"hostPort":5353,"containerPort":53,"protocol":"udp","hostIP":"127.0.0.1"}]},
		"prevResult":)" + readFixture("bridge-1.0.0.json") +
			   "}";
	Config c = parsed(json);
	CHECK(!c.snat);
	CHECK(c.masqAll);
	CHECK(c.backend == "nftables");
	CHECK(c.conditionsV4 == std::vector<std::string>{ "ip", "saddr", "!=", "10.0.0.0/8" });
	CHECK(c.conditionsV6 == std::vector<std::string>{ "ip6", "daddr", "fd00::1" });
	CHECK(c.dstnatPriority == -110);
	CHECK(c.srcnatPriority == 110);
	REQUIRE(c.portMappings.size() == 2);
	CHECK(c.portMappings[0] == PortMapping{ 8080, 80, Protocol::TCP, std::nullopt });
	CHECK(c.portMappings[1] == PortMapping{ 5353, 53, Protocol::UDP, IpAddress::parse("127.0.0.1") });
	REQUIRE(c.prevResult);
	CHECK(*c.prevResult == *parseJson(readFixture("bridge-1.0.0.json")));
	CHECK(c.containerV4 == IpPrefix::parse("10.88.0.2/16"));
	CHECK(c.containerV6 == IpPrefix::parse("fd00:88::2/64"));
}

TEST_CASE("the configuration must be a JSON object (code 6)")
{
	for (const char *bad : { "[]", "\"x\"", "1", "null" }) {
		Error e = refused(bad);
		CHECK(e.code == ErrDecode);
		CHECK(e.msg.find("network configuration must be a JSON object, got ") == 0);
	}
	CHECK(refused("[]").msg == "network configuration must be a JSON object, got array");
	CHECK(refused("{\"name\":").code == ErrDecode);
	CHECK(refused("").code == ErrDecode);
	CHECK(refused(conf("") + " x").code == ErrDecode);
	CHECK(refused(conf(R"("pad":")" + std::string(kMaxJsonSize, 'a') + "\"")).code == ErrDecode);
}

TEST_CASE("the network name is required and restricted (code 7)")
{
	checkInvalid(R"({"cniVersion":"1.0.0"})", "missing network name");
	checkInvalid(R"({"cniVersion":"1.0.0","name":""})", "missing network name");
	checkInvalid(R"({"cniVersion":"1.0.0","name":null})", "missing network name");
	checkInvalid(R"({"cniVersion":"1.0.0","name":5})", "name: expected a string, got 5");
	for (const char *bad : { "-net", "my net", "net/1", "_x" }) {
		Error e = refused(R"({"cniVersion":"1.0.0","name":")" + std::string(bad) + "\"}");
		CHECK(e.code == ErrInvalidConfig);
		CHECK(e.msg == "invalid characters found in network name");
		CHECK(e.details == bad);
	}
	CHECK(parsed(R"({"cniVersion":"1.0.0","name":"k8s-pod_network.1"})").name == "k8s-pod_network.1");
	/* The name is checked before the version, as the reference does. */
	CHECK(refused(R"({"cniVersion":"9.9.9"})").code == ErrInvalidConfig);
}

TEST_CASE("cniVersion must be one we support (code 1)")
{
	for (const char *v : { "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0" })
		CHECK(parsed(conf("", v), Command::Del).cniVersion == v);
	for (const char *v : { "0.5.0", "1.2.0", "1.0", "v1.0.0" }) {
		Error e = refused(conf("", v));
		CHECK(e.code == ErrIncompatibleVersion);
		CHECK(e.msg == "incompatible CNI versions");
		CHECK(e.details == "config is \"" + std::string(v) +
					   "\", plugin supports [\"0.1.0\" \"0.2.0\" \"0.3.0\" \"0.3.1\" \"0.4.0\" "
					   "\"1.0.0\" \"1.1.0\"]");
	}
	checkInvalid(R"({"cniVersion":1,"name":"n"})", "cniVersion: expected a string, got 1");
}

TEST_CASE("a configuration without cniVersion is 0.1.0")
{
	CHECK(parsed(R"({"name":"n"})", Command::Del).cniVersion == "0.1.0");
	CHECK(parsed(R"({"name":"n","cniVersion":""})", Command::Del).cniVersion == "0.1.0");
	CHECK(refused(R"({"name":"n"})", Command::Add).code == ErrIncompatibleVersion);
}

TEST_CASE("each command needs a recent enough cniVersion (code 1)")
{
	for (const char *v : { "0.1.0", "0.2.0" }) {
		for (Command command : { Command::Add, Command::Check }) {
			Error e = refused(conf("", v), command);
			CHECK(e.code == ErrIncompatibleVersion);
			CHECK(e.msg == "nft-portmap is a chained plugin and needs cniVersion 0.3.0 or later for " +
					       std::string(commandName(command)) +
					       " (prevResult exists only from 0.3.0)");
			CHECK(e.details == "config is \"" + std::string(v) + "\"");
		}
	}
	CHECK(parsed(conf("", "0.3.0"), Command::Add).cniVersion == "0.3.0");

	for (const char *v : { "0.3.0", "0.3.1" }) {
		Error e = refused(conf("", v), Command::Check);
		CHECK(e.code == ErrIncompatibleVersion);
		CHECK(e.msg == "config version does not allow CHECK");
	}
	CHECK(parsed(conf("", "0.4.0"), Command::Check).cniVersion == "0.4.0");

	for (const char *v : { "0.4.0", "1.0.0" }) {
		CHECK(refused(conf("", v), Command::Gc).msg == "config version does not allow GC");
		CHECK(refused(conf("", v), Command::Status).msg == "config version does not allow STATUS");
		CHECK(refused(conf("", v), Command::Gc).code == ErrIncompatibleVersion);
	}
	CHECK(parsed(conf("", "1.1.0"), Command::Gc).cniVersion == "1.1.0");
	CHECK(parsed(conf("", "1.1.0"), Command::Status).cniVersion == "1.1.0");
}

TEST_CASE("every key of the wrong JSON type is refused, naming the key and the value (code 7)")
{
	const std::pair<const char *, const char *> cases[] = {
		{ R"("type":5)", "type: expected a string, got 5" },
		{ R"("snat":"yes")", R"(snat: expected a boolean, got "yes")" },
		{ R"("masqAll":1)", "masqAll: expected a boolean, got 1" },
		{ R"("markMasqBit":"13")", R"(markMasqBit: expected an integer, got "13")" },
		{ R"("markMasqBit":1.5)", "markMasqBit: expected an integer, got 1.5" },
		{ R"("externalSetMarkChain":5)", "externalSetMarkChain: expected a string, got 5" },
		{ R"("backend":true)", "backend: expected a string, got true" },
		{ R"("conditionsV4":"ip saddr 1.2.3.4")",
		  R"(conditionsV4: expected an array, got "ip saddr 1.2.3.4")" },
		{ R"("conditionsV6":["ip6",5])", "conditionsV6[1]: expected a string, got 5" },
		{ R"("dstnatPriority":"-100")", R"(dstnatPriority: expected an integer, got "-100")" },
		{ R"("srcnatPriority":[100])", "srcnatPriority: expected an integer, got [100]" },
		{ R"("runtimeConfig":[])", "runtimeConfig: expected an object, got []" },
		{ R"("runtimeConfig":{"portMappings":{}})", "runtimeConfig.portMappings: expected an array, got {}" },
		{ R"("runtimeConfig":{"portMappings":[5]})",
		  "runtimeConfig.portMappings[0]: expected an object, got 5" },
		{ R"("cni.dev/valid-attachments":{})", "cni.dev/valid-attachments: expected an array, got {}" },
		{ R"("prevResult":[])", "prevResult: expected an object, got []" },
		{ R"("prevResult":"x")", R"(prevResult: expected an object, got "x")" },
	};
	for (auto [member, msg] : cases)
		checkInvalid(conf(member), msg);
}

TEST_CASE("long values are shortened in messages")
{
	Error e = refused(conf(R"("snat":")" + std::string(100, 'a') + "\""));
	CHECK(e.msg == "snat: expected a boolean, got \"" + std::string(63, 'a') + "...");
}

TEST_CASE("null is the same as an absent key")
{
	Config c = parsed(conf(R"("snat":null,"masqAll":null,"markMasqBit":null,"backend":null,
		"conditionsV4":null,"conditionsV6":null,"dstnatPriority":null,"runtimeConfig":null,
		"prevResult":null,"cni.dev/valid-attachments":null)"));
	CHECK(c.snat);
	CHECK(!c.masqAll);
	CHECK(!c.markMasqBit);
	CHECK(c.conditionsV4.empty());
	CHECK(c.dstnatPriority == -100);
	CHECK(!c.prevResult);
	CHECK(!c.validAttachments);
	CHECK(parsed(conf(R"("runtimeConfig":{"portMappings":null})")).portMappings.empty());
}

TEST_CASE("unknown keys, capabilities and other runtimeConfig entries are tolerated")
{
	Config c = parsed(conf(R"("capabilities":{"portMappings":true,"bandwidth":true},"ipam":{},
		"dns":{"nameservers":["10.0.0.1"]},"cniVersions":["1.0.0"],"whatever":[null],
		"runtimeConfig":{"bandwidth":{"ingressRate":1},"portMappings":[{"hostPort":1,"containerPort":2}]})"));
	CHECK(c.portMappings.size() == 1);
}

TEST_CASE("markMasqBit is accepted in 0-31 and never with externalSetMarkChain")
{
	CHECK(parsed(conf(R"("markMasqBit":0)")).markMasqBit == 0);
	CHECK(parsed(conf(R"("markMasqBit":31)")).markMasqBit == 31);
	checkInvalid(conf(R"("markMasqBit":32)"), "markMasqBit: 32 is not between 0 and 31");
	checkInvalid(conf(R"("markMasqBit":-1)"), "markMasqBit: -1 is not between 0 and 31");
	checkInvalid(conf(R"("markMasqBit":13,"externalSetMarkChain":"KUBE-MARK-MASQ")"),
		     "Cannot specify externalSetMarkChain and markMasqBit");

	Error e = refused(conf(R"("externalSetMarkChain":"KUBE-MARK-MASQ")"));
	CHECK(e.code == ErrInvalidConfig);
	CHECK(e.msg == "externalSetMarkChain is an iptables option; it is not supported by this nftables plugin");
	CHECK(e.details == "KUBE-MARK-MASQ");
}

TEST_CASE("backend must be nftables when given")
{
	CHECK(parsed(conf(R"("backend":"nftables")")).backend == "nftables");
	checkInvalid(conf(R"("backend":"iptables")"),
		     "backend \"iptables\": nft-portmap only programs nftables; "
		     "use the reference portmap plugin for iptables");
	checkInvalid(conf(R"("backend":"ebpf")"), "unrecognized backend \"ebpf\"");
	checkInvalid(conf(R"("backend":"")"), "unrecognized backend \"\"");
}

TEST_CASE("priorities are integers in -400..400")
{
	Config c = parsed(conf(R"("dstnatPriority":-400,"srcnatPriority":400)"));
	CHECK(c.dstnatPriority == -400);
	CHECK(c.srcnatPriority == 400);
	checkInvalid(conf(R"("dstnatPriority":-401)"), "dstnatPriority: -401 is not between -400 and 400");
	checkInvalid(conf(R"("srcnatPriority":401)"), "srcnatPriority: 401 is not between -400 and 400");
	checkInvalid(conf(R"("srcnatPriority":9999999999999999999)"),
		     "srcnatPriority: 9999999999999999999 is out of range");
}

TEST_CASE("port mappings: protocols in any case, tcp when absent")
{
	Config c = parsed(withMappings(R"({"hostPort":1,"containerPort":2,"protocol":"TCP"},
		{"hostPort":3,"containerPort":4,"protocol":"Udp"},{"hostPort":5,"containerPort":6,"protocol":"sctp"},
		{"hostPort":7,"containerPort":8},{"hostPort":9,"containerPort":10,"protocol":null})"));
	REQUIRE(c.portMappings.size() == 5);
	CHECK(c.portMappings[0].protocol == Protocol::TCP);
	CHECK(c.portMappings[1].protocol == Protocol::UDP);
	CHECK(c.portMappings[2].protocol == Protocol::SCTP);
	CHECK(c.portMappings[3].protocol == Protocol::TCP);
	CHECK(c.portMappings[4].protocol == Protocol::TCP);
}

TEST_CASE("port mappings: hostIP is an address, or every address")
{
	Config c = parsed(withMappings(R"({"hostPort":1,"containerPort":1,"hostIP":""},
		{"hostPort":2,"containerPort":1,"hostIP":"0.0.0.0"},{"hostPort":3,"containerPort":1,"hostIP":"::"},
		{"hostPort":4,"containerPort":1},{"hostPort":5,"containerPort":1,"hostIP":"192.0.2.7"},
		{"hostPort":6,"containerPort":1,"hostIP":"2001:DB8::7"})"));
	REQUIRE(c.portMappings.size() == 6);
	for (int i = 0; i < 4; i++)
		CHECK(!c.portMappings[i].hostIP);
	CHECK(c.portMappings[4].hostIP == IpAddress::parse("192.0.2.7"));
	CHECK(c.portMappings[5].hostIP == IpAddress::parse("2001:db8::7"));
}

TEST_CASE("port mappings: each invalid field is named with its entry")
{
	const std::pair<const char *, const char *> cases[] = {
		{ R"({"hostPort":70000,"containerPort":80})",
		  "runtimeConfig.portMappings[2].hostPort: 70000 is not a port number (1-65535)" },
		{ R"({"hostPort":0,"containerPort":80})",
		  "runtimeConfig.portMappings[2].hostPort: 0 is not a port number (1-65535)" },
		{ R"({"hostPort":-1,"containerPort":80})",
		  "runtimeConfig.portMappings[2].hostPort: -1 is not a port number (1-65535)" },
		{ R"({"hostPort":80,"containerPort":65536})",
		  "runtimeConfig.portMappings[2].containerPort: 65536 is not a port number (1-65535)" },
		{ R"({"hostPort":80,"containerPort":0})",
		  "runtimeConfig.portMappings[2].containerPort: 0 is not a port number (1-65535)" },
		{ R"({"hostPort":"80","containerPort":80})",
		  R"(runtimeConfig.portMappings[2].hostPort: expected an integer, got "80")" },
		{ R"({"hostPort":80.5,"containerPort":80})",
		  "runtimeConfig.portMappings[2].hostPort: expected an integer, got 80.5" },
		{ R"({"hostPort":9999999999999999999,"containerPort":80})",
		  "runtimeConfig.portMappings[2].hostPort: 9999999999999999999 is out of range" },
		{ R"({"containerPort":80})", "runtimeConfig.portMappings[2].hostPort: missing" },
		{ R"({"hostPort":80})", "runtimeConfig.portMappings[2].containerPort: missing" },
		{ R"({"hostPort":80,"containerPort":80,"protocol":"icmp"})",
		  R"(runtimeConfig.portMappings[2].protocol: "icmp" is not tcp, udp or sctp)" },
		{ R"({"hostPort":80,"containerPort":80,"protocol":""})",
		  R"(runtimeConfig.portMappings[2].protocol: "" is not tcp, udp or sctp)" },
		{ R"({"hostPort":80,"containerPort":80,"protocol":6})",
		  "runtimeConfig.portMappings[2].protocol: expected a string, got 6" },
		{ R"({"hostPort":80,"containerPort":80,"hostIP":"abc"})",
		  R"(runtimeConfig.portMappings[2].hostIP: "abc" is not an IP address)" },
		{ R"({"hostPort":80,"containerPort":80,"hostIP":"10.0.0.1/24"})",
		  R"(runtimeConfig.portMappings[2].hostIP: "10.0.0.1/24" is not an IP address)" },
		{ R"({"hostPort":80,"containerPort":80,"hostIP":1})",
		  "runtimeConfig.portMappings[2].hostIP: expected a string, got 1" },
	};
	const std::string good = R"({"hostPort":1,"containerPort":1},{"hostPort":2,"containerPort":2},)";
	for (auto [entry, msg] : cases)
		checkInvalid(withMappings(good + entry), msg);
}

TEST_CASE("port mappings: exact duplicates are dropped, conflicting ones refused")
{
	Config c = parsed(withMappings(R"({"hostPort":8080,"containerPort":80,"protocol":"tcp"},
		{"hostPort":8080,"containerPort":80,"protocol":"TCP","hostIP":"0.0.0.0"},
		{"hostPort":8080,"containerPort":80},
		{"hostPort":8080,"containerPort":81,"protocol":"udp"},
		{"hostPort":8080,"containerPort":82,"hostIP":"192.0.2.1"},
		{"hostPort":8080,"containerPort":83,"hostIP":"192.0.2.2"},
		{"hostPort":8080,"containerPort":81,"protocol":"udp"})"));
	REQUIRE(c.portMappings.size() == 4);
	CHECK(c.portMappings[0] == PortMapping{ 8080, 80, Protocol::TCP, std::nullopt });
	CHECK(c.portMappings[1] == PortMapping{ 8080, 81, Protocol::UDP, std::nullopt });
	CHECK(c.portMappings[2] == PortMapping{ 8080, 82, Protocol::TCP, IpAddress::parse("192.0.2.1") });
	CHECK(c.portMappings[3] == PortMapping{ 8080, 83, Protocol::TCP, IpAddress::parse("192.0.2.2") });

	checkInvalid(withMappings(R"({"hostPort":8080,"containerPort":80},{"hostPort":9,"containerPort":9},
		{"hostPort":8080,"containerPort":81,"hostIP":"::"})"),
		     "runtimeConfig.portMappings[0] and runtimeConfig.portMappings[2] both publish tcp port 8080 "
		     "on every address, to container ports 80 and 81");
	checkInvalid(withMappings(R"({"hostPort":53,"containerPort":53,"protocol":"udp","hostIP":"fd00::1"},
		{"hostPort":53,"containerPort":5353,"protocol":"UDP","hostIP":"fd00:0::1"})"),
		     "runtimeConfig.portMappings[0] and runtimeConfig.portMappings[1] both publish udp port 53 "
		     "on address fd00::1, to container ports 53 and 5353");
}

TEST_CASE("valid attachments, under the spec's key or the legacy alias")
{
	Config c = parsed(conf(R"("cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"},
		{"containerID":"b","ifname":"net1","extra":1}])",
			       "1.1.0"),
			  Command::Gc);
	REQUIRE(c.validAttachments);
	CHECK(*c.validAttachments == std::vector<ValidAttachment>{ { "a", "eth0" }, { "b", "net1" } });

	c = parsed(conf(R"("cni.dev/attachments":[{"containerID":"c","ifname":"eth0"}])", "1.1.0"), Command::Gc);
	REQUIRE(c.validAttachments);
	CHECK(*c.validAttachments == std::vector<ValidAttachment>{ { "c", "eth0" } });

	c = parsed(conf(R"("cni.dev/attachments":[{"containerID":"old","ifname":"eth0"}],
		"cni.dev/valid-attachments":[{"containerID":"new","ifname":"eth0"}])",
			"1.1.0"),
		   Command::Gc);
	CHECK(*c.validAttachments == std::vector<ValidAttachment>{ { "new", "eth0" } });

	CHECK(parsed(conf(R"("cni.dev/valid-attachments":[])", "1.1.0"), Command::Gc).validAttachments->empty());

	checkInvalid(conf(R"("cni.dev/valid-attachments":[{"containerID":"a"}])"),
		     "cni.dev/valid-attachments[0]: containerID and ifname are required");
	checkInvalid(conf(R"("cni.dev/attachments":[{"containerID":1,"ifname":"eth0"}])"),
		     "cni.dev/attachments[0].containerID: expected a string, got 1");
	checkInvalid(conf(R"("cni.dev/valid-attachments":["a"])"),
		     R"(cni.dev/valid-attachments[0]: expected an object, got "a")");
}

TEST_CASE("container addresses from every captured bridge result")
{
	for (const char *version : kFixtureVersions) {
		CAPTURE(version);
		std::string prev = readFixture(std::string("bridge-") + version + ".json");
		Config c = parsed(conf(R"("prevResult":)" + prev, version));
		CHECK(c.containerV4 == IpPrefix::parse("10.88.0.2/16"));
		CHECK(c.containerV6 == IpPrefix::parse("fd00:88::2/64"));
		REQUIRE(c.prevResult);
		CHECK(*c.prevResult == *parseJson(prev));

		/* eth0 is the only sandbox interface: another ifname finds nothing. */
		Config other = parsed(conf(R"("prevResult":)" + prev, version), Command::Add, "net1");
		CHECK(!other.containerV4);
		CHECK(!other.containerV6);
	}
}

TEST_CASE("container addresses are picked as the reference picks them")
{
	/* The reference's own parsing test. */
	Config c = parsed(prevResultWith(R"({"name":"host"},{"name":"container","sandbox":"netns"})",
					 R"({"version":"4","address":"10.0.0.1/24","gateway":"10.0.0.200","interface":0},
		{"version":"6","address":"2001:db8:1::2/64","gateway":"2001:db8:1::1","interface":1},
		{"version":"4","address":"10.0.0.2/24","gateway":"10.0.0.200","interface":1})"),
			  Command::Add, "container");
	CHECK(c.containerV4 == IpPrefix::parse("10.0.0.2/24"));
	CHECK(c.containerV6 == IpPrefix::parse("2001:db8:1::2/64"));

	const std::string ifaces = R"({"name":"eth0","sandbox":"/run/netns/x"},{"name":"eth0"},
		{"name":"eth0","sandbox":""},{"name":"net1","sandbox":"/run/netns/x"},{"sandbox":"/run/netns/x"})";
	const std::pair<const char *, bool> cases[] = {
		{ "", true },			/* no index */
		{ R"(,"interface":null)", true }, /* null index */
		{ R"(,"interface":0)", true },	/* eth0 in the sandbox */
		{ R"(,"interface":1)", false },	/* no sandbox */
		{ R"(,"interface":2)", false },	/* empty sandbox */
		{ R"(,"interface":3)", false },	/* another interface */
		{ R"(,"interface":4)", false },	/* no name */
		{ R"(,"interface":5)", true },	/* out of range */
		{ R"(,"interface":-1)", true },	/* negative */
	};
	for (const auto &entry : cases) {
		/* Plain variables: doctest's CAPTURE cannot capture bindings. */
		const char *index = entry.first;
		bool taken = entry.second;
		CAPTURE(index);
		Config d = parsed(prevResultWith(ifaces, R"({"address":"10.1.0.5/24")" + std::string(index) +
								 R"(},{"address":"fd01::5/64")" + index + "}"));
		CHECK(d.containerV4.has_value() == taken);
		CHECK(d.containerV6.has_value() == taken);
	}

	/* The first of each family wins; the order of families does not matter. */
	c = parsed(prevResultWith("", R"({"address":"fd01::5/64"},{"address":"10.1.0.5/24"},
		{"address":"fd01::6/64"},{"address":"10.1.0.6/24"})"));
	CHECK(c.containerV4 == IpPrefix::parse("10.1.0.5/24"));
	CHECK(c.containerV6 == IpPrefix::parse("fd01::5/64"));

	/* Single stack, no ips, no interfaces at all. */
	c = parsed(prevResultWith("", R"({"address":"10.1.0.5/24"})"));
	CHECK(c.containerV4);
	CHECK(!c.containerV6);
	c = parsed(conf(R"("prevResult":{"cniVersion":"1.0.0"})"));
	CHECK(c.prevResult);
	CHECK(!c.containerV4);
	CHECK(!c.containerV6);
	/* Interfaces missing while an index is given: out of range. */
	c = parsed(conf(R"("prevResult":{"ips":[{"address":"10.1.0.5/24","interface":0}]})"));
	CHECK(c.containerV4);
}

TEST_CASE("a malformed prevResult is refused, naming the member (code 7)")
{
	const std::pair<std::string, const char *> cases[] = {
		{ R"({"ips":{}})", "prevResult.ips: expected an array, got {}" },
		{ R"({"ips":[5]})", "prevResult.ips[0]: expected an object, got 5" },
		{ R"({"ips":[{"gateway":"10.0.0.1"}]})", "prevResult.ips[0].address: missing" },
		{ R"({"ips":[{"address":"10.0.0.300/24"}]})",
		  R"(prevResult.ips[0].address: "10.0.0.300/24" is not a CIDR address)" },
		{ R"({"ips":[{"address":"10.0.0.3/24"},{"address":7}]})",
		  "prevResult.ips[1].address: expected a string, got 7" },
		{ R"({"ips":[{"address":"10.0.0.3/24","interface":"0"}]})",
		  R"(prevResult.ips[0].interface: expected an integer, got "0")" },
		{ R"({"interfaces":{},"ips":[]})", "prevResult.interfaces: expected an array, got {}" },
		{ R"({"interfaces":[1],"ips":[{"address":"10.0.0.3/24","interface":0}]})",
		  "prevResult.interfaces[0]: expected an object, got 1" },
		{ R"({"interfaces":[{"name":1}],"ips":[{"address":"10.0.0.3/24","interface":0}]})",
		  "prevResult.interfaces[0].name: expected a string, got 1" },
	};
	for (const auto &[prev, msg] : cases)
		checkInvalid(conf(R"("prevResult":)" + prev), msg);
}

TEST_CASE("requestedVersion reads VERSION's stdin leniently")
{
	CHECK(requestedVersion(R"({"cniVersion":"0.4.0"})") == "0.4.0");
	CHECK(requestedVersion(R"({"cniVersion":"9.9.9","name":"x"})") == "9.9.9");
	CHECK(requestedVersion("").empty());
	CHECK(requestedVersion("garbage").empty());
	CHECK(requestedVersion("[]").empty());
	CHECK(requestedVersion(R"({"cniVersion":4})").empty());
}

TEST_CASE("errorVersion is the refused input's version when we know it")
{
	CHECK(errorVersion(R"({"cniVersion":"0.4.0","name":"-bad"})") == "0.4.0");
	CHECK(errorVersion(R"({"cniVersion":"9.9.9","name":"n"})").empty());
	CHECK(errorVersion(R"({"name":"n"})").empty());
	CHECK(errorVersion("{").empty());
}
