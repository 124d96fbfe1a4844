/* SPDX-License-Identifier: Apache-2.0 */
/* The CNI_* environment variables of one invocation. */
#pragma once

#include <functional>
#include <string>

#include "cni/error.hpp"

namespace nftpm::cni {

enum class Command { Add, Del, Check, Gc, Status, Version };

/* "ADD", "DEL", ... as in CNI_COMMAND. */
const char *commandName(Command command);

struct Environment {
	Command command = Command::Version;
	std::string containerId; /* CNI_CONTAINERID */
	std::string netns;       /* CNI_NETNS */
	std::string ifname;      /* CNI_IFNAME */
	std::string args;        /* CNI_ARGS, unparsed */
	std::string path;        /* CNI_PATH, unparsed */
};

/*
 * Reads and validates the environment the way the spec asks per command:
 * ADD and CHECK need CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME; DEL needs
 * CNI_CONTAINERID and CNI_IFNAME; GC, STATUS and VERSION only CNI_COMMAND.
 * An empty variable counts as missing. All errors are code 4; all missing
 * variables are named in one error. CNI_PATH is never required (the spec
 * does not ask for it, unlike the reference's library).
 *
 * getenv is injectable for tests; it returns nullptr for an unset variable.
 */
Result<Environment> readEnvironment(const std::function<const char *(const char *)> &getenv);

/*
 * True for the error readEnvironment() returns when CNI_COMMAND is not set
 * at all: someone ran the plugin by hand, and it should print what it is
 * (on stderr) rather than a CNI error.
 */
bool isMissingCommand(const Error &error);

} /* namespace nftpm::cni */
