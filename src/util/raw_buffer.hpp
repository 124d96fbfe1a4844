/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A receive buffer that is not zeroed. The kernel writes what we then read,
 * so zeroing would only touch its pages: a std::vector of 64 KiB costs 16
 * resident pages in every plugin run, this costs the pages an answer fills.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace nftpm {

class RawBuffer
{
public:
	RawBuffer() = default;
	explicit RawBuffer(std::size_t size) : data_(new std::uint8_t[size]), size_(size) {}

	std::uint8_t *data() const { return data_.get(); }
	std::size_t size() const { return size_; }

private:
	std::unique_ptr<std::uint8_t[]> data_; /* default-initialised: not zeroed */
	std::size_t size_ = 0;
};

} /* namespace nftpm */
