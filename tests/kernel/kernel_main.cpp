/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Main of the privileged C++ tests: before any test runs, the process moves
 * into a new, empty network namespace of its own, so nothing it does can
 * reach the ruleset of the machine's namespace. Without the privilege to do
 * so the whole executable is skipped (exit 77, meson's "skip").
 */
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sched.h>

int main(int argc, char **argv)
{
	if (unshare(CLONE_NEWNET) < 0) {
		std::fprintf(stderr, "skipped: cannot create a network namespace: %s\n",
			     std::strerror(errno));
		return 77;
	}
	doctest::Context ctx(argc, argv);
	return ctx.run();
}
