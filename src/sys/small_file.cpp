/* SPDX-License-Identifier: Apache-2.0 */
#include "sys/small_file.hpp"

#include <array>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace nftpm::sys {

std::optional<std::string> readSmallFile(const std::string &path)
{
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return std::nullopt;
	std::array<char, 64> buf{};
	ssize_t n;
	do
		n = ::read(fd, buf.data(), buf.size());
	while (n < 0 && errno == EINTR);
	::close(fd);
	if (n < 0)
		return std::nullopt;
	return std::string(buf.data(), static_cast<std::size_t>(n));
}

Expected<void, std::string> writeSmallFile(const std::string &path, std::string_view contents)
{
	int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return Unexpected(path + ": " + std::strerror(errno));
	ssize_t n;
	do
		n = ::write(fd, contents.data(), contents.size());
	while (n < 0 && errno == EINTR);
	int err = errno;
	::close(fd);
	/* A sysctl takes a value in one write or not at all. */
	if (n < 0)
		return Unexpected(path + ": " + std::strerror(err));
	if (static_cast<std::size_t>(n) != contents.size())
		return Unexpected(path + ": short write");
	return {};
}

} /* namespace nftpm::sys */
