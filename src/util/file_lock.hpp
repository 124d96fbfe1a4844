/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An advisory lock that serialises nft-portmap processes working on the same
 * network namespace. Correctness does not depend on it (every change is a
 * generation-checked batch); it only keeps our own processes from making
 * each other retry when a runtime starts many pods at once.
 */
#pragma once

#include <string>

namespace nftpm {

class FileLock final
{
public:
	/* Blocks until the lock is held; on any failure, holds nothing. */
	explicit FileLock(const std::string &path);
	~FileLock();
	FileLock(const FileLock &) = delete;
	FileLock &operator=(const FileLock &) = delete;

	bool held() const { return fd_ >= 0; }

private:
	int fd_ = -1;
};

/* /run/nft-portmap/netns-<inode>.lock for the current network namespace. */
std::string netnsLockPath();

} /* namespace nftpm */
