/* SPDX-License-Identifier: Apache-2.0 */
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "cni/env.hpp"

using namespace nftpm::cni;

namespace {

using Vars = std::map<std::string, std::string>;

Result<Environment> readFrom(const Vars &vars)
{
	return readEnvironment([&vars](const char *name) -> const char * {
		auto it = vars.find(name);
		return it == vars.end() ? nullptr : it->second.c_str();
	});
}

Vars addVars()
{
	return { { "CNI_COMMAND", "ADD" },
		 { "CNI_CONTAINERID", "c0ffee" },
		 { "CNI_NETNS", "/run/netns/x" },
		 { "CNI_IFNAME", "eth0" },
		 { "CNI_ARGS", "K8S_POD_NAME=p;IgnoreUnknown=1" },
		 { "CNI_PATH", "/usr/lib/cni" } };
}

Error errorFor(const Vars &vars)
{
	Result<Environment> env = readFrom(vars);
	REQUIRE(!env.has_value());
	CHECK(env.error().code == ErrInvalidEnvironment);
	return env.error();
}

} /* namespace */

TEST_CASE("a complete ADD environment is read as given")
{
	Result<Environment> env = readFrom(addVars());
	REQUIRE(env.has_value());
	CHECK(env->command == Command::Add);
	CHECK(env->containerId == "c0ffee");
	CHECK(env->netns == "/run/netns/x");
	CHECK(env->ifname == "eth0");
	CHECK(env->args == "K8S_POD_NAME=p;IgnoreUnknown=1");
	CHECK(env->path == "/usr/lib/cni");
}

TEST_CASE("every command name is recognised, exactly")
{
	const std::pair<const char *, Command> commands[] = {
		{ "ADD", Command::Add },	   { "DEL", Command::Del },
		{ "CHECK", Command::Check },	   { "GC", Command::Gc },
		{ "STATUS", Command::Status },	   { "VERSION", Command::Version },
	};
	for (const auto &entry : commands) {
		/* Plain variables: doctest's message lambdas cannot capture bindings. */
		const char *name = entry.first;
		Command command = entry.second;
		Vars vars = addVars();
		vars["CNI_COMMAND"] = name;
		Result<Environment> env = readFrom(vars);
		REQUIRE_MESSAGE(env.has_value(), name);
		CHECK(env->command == command);
		CHECK(std::string(commandName(command)) == name);
	}

	Error e = errorFor({ { "CNI_COMMAND", "add" } });
	CHECK(e.msg == "unknown CNI_COMMAND: add");
	CHECK(errorFor({ { "CNI_COMMAND", "FROB" } }).msg == "unknown CNI_COMMAND: FROB");
}

TEST_CASE("a missing CNI_COMMAND is told apart from other errors")
{
	Error none = errorFor({});
	CHECK(isMissingCommand(none));
	CHECK(isMissingCommand(errorFor({ { "CNI_COMMAND", "" } })));
	CHECK(!isMissingCommand(errorFor({ { "CNI_COMMAND", "ADD" } })));
	CHECK(!isMissingCommand(errorFor({ { "CNI_COMMAND", "X" } })));
}

TEST_CASE("ADD and CHECK need CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME, named together")
{
	for (const char *command : { "ADD", "CHECK" }) {
		CHECK(errorFor({ { "CNI_COMMAND", command } }).msg ==
		      "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing");
		Vars vars = addVars();
		vars["CNI_COMMAND"] = command;
		vars.erase("CNI_NETNS");
		vars["CNI_IFNAME"] = "";
		CHECK(errorFor(vars).msg == "required env variables [CNI_NETNS,CNI_IFNAME] missing");
	}
}

TEST_CASE("DEL does not need CNI_NETNS")
{
	Vars vars = addVars();
	vars["CNI_COMMAND"] = "DEL";
	vars.erase("CNI_NETNS");
	Result<Environment> env = readFrom(vars);
	REQUIRE(env.has_value());
	CHECK(env->netns.empty());

	vars.erase("CNI_CONTAINERID");
	CHECK(errorFor(vars).msg == "required env variables [CNI_CONTAINERID] missing");
}

TEST_CASE("GC, STATUS and VERSION need only CNI_COMMAND, and CNI_PATH is never required")
{
	for (const char *command : { "GC", "STATUS", "VERSION" }) {
		Result<Environment> env = readFrom({ { "CNI_COMMAND", command } });
		CHECK_MESSAGE(env.has_value(), command);
	}
	Vars vars = addVars();
	vars.erase("CNI_PATH");
	CHECK(readFrom(vars).has_value());
}

TEST_CASE("the container ID must match the spec's pattern")
{
	for (const char *good : { "a", "0", "c0ffee", "A.b-c_d", "k8s_pod.1-2" }) {
		Vars vars = addVars();
		vars["CNI_CONTAINERID"] = good;
		CHECK_MESSAGE(readFrom(vars).has_value(), good);
	}
	for (const char *bad : { "-a", "_a", ".a", "a b", "a/b", "a:b", "a;b", "é" }) {
		Vars vars = addVars();
		vars["CNI_CONTAINERID"] = bad;
		Error e = errorFor(vars);
		CHECK(e.msg == "invalid characters in CNI_CONTAINERID");
		CHECK(e.details == bad);
	}
}

TEST_CASE("the interface name must be usable by the kernel")
{
	for (const char *good : { "eth0", "e", "net1.100", "a-b_c", "123456789012345" }) {
		Vars vars = addVars();
		vars["CNI_IFNAME"] = good;
		CHECK_MESSAGE(readFrom(vars).has_value(), good);
	}
	const std::pair<const char *, const char *> bad[] = {
		{ "1234567890123456", "interface name is longer than 15 bytes" },
		{ ".", "interface name is . or .." },
		{ "..", "interface name is . or .." },
		{ "eth/0", "interface name contains '/', ':' or whitespace" },
		{ "eth:0", "interface name contains '/', ':' or whitespace" },
		{ "eth 0", "interface name contains '/', ':' or whitespace" },
		{ "eth\t0", "interface name contains '/', ':' or whitespace" },
	};
	for (auto [name, problem] : bad) {
		Vars vars = addVars();
		vars["CNI_IFNAME"] = name;
		Error e = errorFor(vars);
		CHECK(e.msg == "invalid CNI_IFNAME \"" + std::string(name) + "\": " + problem);
		CHECK(e.details == name);
	}
}

TEST_CASE("names are only validated for the commands that need them")
{
	Result<Environment> env = readFrom({ { "CNI_COMMAND", "GC" }, { "CNI_IFNAME", "a/b" } });
	REQUIRE(env.has_value());
	CHECK(env->ifname == "a/b");
}
