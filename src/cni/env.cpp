/* SPDX-License-Identifier: Apache-2.0 */
#include "cni/env.hpp"

#include <array>
#include <optional>
#include <string_view>
#include <vector>

#include "cni/names.hpp"

namespace nftpm::cni {

namespace {

constexpr std::array<std::pair<Command, const char *>, 6> kCommands{ {
	{ Command::Add, "ADD" },
	{ Command::Del, "DEL" },
	{ Command::Check, "CHECK" },
	{ Command::Gc, "GC" },
	{ Command::Status, "STATUS" },
	{ Command::Version, "VERSION" },
} };

const char kMissingCommand[] = "required env variables [CNI_COMMAND] missing";

std::optional<Command> parseCommand(std::string_view name)
{
	for (const auto &[command, text] : kCommands)
		if (name == text)
			return command;
	return std::nullopt;
}

struct Requirements {
	bool containerId;
	bool netns;
	bool ifname;
};

Requirements requirementsOf(Command command)
{
	switch (command) {
	case Command::Add:
	case Command::Check:
		return { true, true, true };
	case Command::Del:
		return { true, false, true };
	case Command::Gc:
	case Command::Status:
	case Command::Version:
		break;
	}
	return { false, false, false };
}

std::string missingVariables(const Environment &env, Requirements req)
{
	std::vector<const char *> missing;
	if (req.containerId && env.containerId.empty())
		missing.push_back("CNI_CONTAINERID");
	if (req.netns && env.netns.empty())
		missing.push_back("CNI_NETNS");
	if (req.ifname && env.ifname.empty())
		missing.push_back("CNI_IFNAME");

	std::string list;
	for (const char *name : missing) {
		if (!list.empty())
			list += ',';
		list += name;
	}
	return list;
}

Result<void> validate(const Environment &env, Requirements req)
{
	std::string missing = missingVariables(env, req);
	if (!missing.empty())
		return fail(ErrInvalidEnvironment, "required env variables [" + missing + "] missing");

	if (req.containerId && !isValidName(env.containerId))
		return fail(ErrInvalidEnvironment, "invalid characters in CNI_CONTAINERID", env.containerId);

	if (req.ifname) {
		if (const char *problem = interfaceNameProblem(env.ifname))
			return fail(ErrInvalidEnvironment,
				    "invalid CNI_IFNAME \"" + env.ifname + "\": " + problem, env.ifname);
	}
	return {};
}

} /* namespace */

const char *commandName(Command command)
{
	for (const auto &[c, text] : kCommands)
		if (c == command)
			return text;
	return "?";
}

Result<Environment> readEnvironment(const std::function<const char *(const char *)> &getenv)
{
	auto read = [&getenv](const char *name) {
		const char *value = getenv(name);
		return std::string(value ? value : "");
	};

	std::string commandText = read("CNI_COMMAND");
	if (commandText.empty())
		return fail(ErrInvalidEnvironment, kMissingCommand);
	std::optional<Command> command = parseCommand(commandText);
	if (!command)
		return fail(ErrInvalidEnvironment, "unknown CNI_COMMAND: " + commandText);

	Environment env;
	env.command = *command;
	env.containerId = read("CNI_CONTAINERID");
	env.netns = read("CNI_NETNS");
	env.ifname = read("CNI_IFNAME");
	env.args = read("CNI_ARGS");
	env.path = read("CNI_PATH");

	if (auto ok = validate(env, requirementsOf(env.command)); !ok)
		return Unexpected(std::move(ok).error());
	return env;
}

bool isMissingCommand(const Error &error)
{
	return error.code == ErrInvalidEnvironment && error.msg == kMissingCommand;
}

} /* namespace nftpm::cni */
