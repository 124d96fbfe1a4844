/* SPDX-License-Identifier: Apache-2.0 */
/* Reading and writing the one-line files of /proc/sys. */
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/expected.hpp"

namespace nftpm::sys {

/* The first bytes (up to 64) of a file, or nullopt if it cannot be read. */
std::optional<std::string> readSmallFile(const std::string &path);

/* Writes contents in one write(2); the error is "<path>: <strerror>". */
[[nodiscard]] Expected<void, std::string> writeSmallFile(const std::string &path, std::string_view contents);

} /* namespace nftpm::sys */
