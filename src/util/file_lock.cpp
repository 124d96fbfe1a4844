/* SPDX-License-Identifier: Apache-2.0 */
#include "util/file_lock.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace nftpm {

static constexpr char kLockDir[] = "/run/nft-portmap";

FileLock::FileLock(const std::string &path)
{
	/* The directory may not exist yet after a reboot (tmpfs). */
	if (mkdir(kLockDir, 0700) < 0 && errno != EEXIST)
		return;
	fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd_ < 0)
		return;
	int r;
	do {
		r = flock(fd_, LOCK_EX);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		close(fd_);
		fd_ = -1;
	}
}

FileLock::~FileLock()
{
	/* Closing the descriptor releases the lock. */
	if (fd_ >= 0)
		close(fd_);
}

std::string netnsLockPath()
{
	struct stat st {};
	/* Namespaces are identified by the inode of their nsfs file. */
	if (stat("/proc/self/ns/net", &st) < 0)
		return std::string(kLockDir) + "/netns-unknown.lock";
	return std::string(kLockDir) + "/netns-" + std::to_string(st.st_ino) + ".lock";
}

} /* namespace nftpm */
