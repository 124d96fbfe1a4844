/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A main() for builds without libFuzzer (gcc, the sanitizer build): feeds
 * every file of the given files and directories to the fuzz target once,
 * so the seed corpus is a regression test everywhere.
 */
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size);

namespace {

bool runFile(const std::filesystem::path &path)
{
	std::ifstream in(path, std::ios::binary);
	if (!in) {
		std::fprintf(stderr, "cannot read %s\n", path.c_str());
		return false;
	}
	std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size());
	return true;
}

} /* namespace */

int main(int argc, char **argv)
{
	std::size_t count = 0;
	bool ok = true;
	for (int i = 1; i < argc; i++) {
		std::error_code ec;
		std::filesystem::path arg(argv[i]);
		if (!std::filesystem::is_directory(arg, ec)) {
			ok = runFile(arg) && ok;
			count++;
			continue;
		}
		for (const auto &entry : std::filesystem::recursive_directory_iterator(arg, ec)) {
			if (!entry.is_regular_file())
				continue;
			ok = runFile(entry.path()) && ok;
			count++;
		}
		if (ec) {
			std::fprintf(stderr, "cannot list %s: %s\n", argv[i], ec.message().c_str());
			ok = false;
		}
	}
	std::printf("%zu inputs replayed\n", count);
	return ok && count > 0 ? 0 : 1;
}
