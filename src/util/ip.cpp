/* SPDX-License-Identifier: Apache-2.0 */
#include "util/ip.hpp"

#include <arpa/inet.h>
#include <charconv>
#include <cstring>

namespace nftpm {

const char *familyName(Family f)
{
	return f == Family::IPv4 ? "ipv4" : "ipv6";
}

std::optional<IpAddress> IpAddress::parse(std::string_view text)
{
	/* inet_pton needs a NUL-terminated string; bound the copy. */
	if (text.empty() || text.size() >= INET6_ADDRSTRLEN)
		return std::nullopt;
	char buf[INET6_ADDRSTRLEN];
	std::memcpy(buf, text.data(), text.size());
	buf[text.size()] = '\0';

	IpAddress a;
	if (inet_pton(AF_INET, buf, a.bytes_.data()) == 1) {
		a.family_ = Family::IPv4;
		return a;
	}
	if (inet_pton(AF_INET6, buf, a.bytes_.data()) == 1) {
		a.family_ = Family::IPv6;
		return a;
	}
	return std::nullopt;
}

IpAddress IpAddress::fromBytes(Family family, const void *bytes)
{
	IpAddress a;
	a.family_ = family;
	std::memcpy(a.bytes_.data(), bytes, a.size());
	return a;
}

bool IpAddress::isUnspecified() const
{
	for (std::size_t i = 0; i < size(); i++)
		if (bytes_[i])
			return false;
	return true;
}

bool IpAddress::isLoopback() const
{
	if (family_ == Family::IPv4)
		return bytes_[0] == 127;
	for (std::size_t i = 0; i < 15; i++)
		if (bytes_[i])
			return false;
	return bytes_[15] == 1;
}

std::string IpAddress::toString() const
{
	char buf[INET6_ADDRSTRLEN];
	if (!inet_ntop(static_cast<int>(family_), bytes_.data(), buf, sizeof(buf)))
		return "?";
	return buf;
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text)
{
	auto slash = text.find('/');
	auto addr = IpAddress::parse(text.substr(0, slash));
	if (!addr)
		return std::nullopt;
	unsigned max = addr->size() * 8;
	if (slash == std::string_view::npos)
		return IpPrefix(*addr, static_cast<std::uint8_t>(max));

	std::string_view len = text.substr(slash + 1);
	unsigned value = 0;
	auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), value);
	if (len.empty() || ec != std::errc() || end != len.data() + len.size() || value > max)
		return std::nullopt;
	return IpPrefix(*addr, static_cast<std::uint8_t>(value));
}

static std::uint8_t prefixMask(unsigned byteIndex, unsigned length)
{
	unsigned bitsBefore = byteIndex * 8;
	if (length >= bitsBefore + 8)
		return 0xff;
	if (length <= bitsBefore)
		return 0;
	return static_cast<std::uint8_t>(0xff << (8 - (length - bitsBefore)));
}

IpAddress IpPrefix::network() const
{
	std::uint8_t b[16];
	for (unsigned i = 0; i < addr_.size(); i++)
		b[i] = addr_.data()[i] & prefixMask(i, length_);
	return IpAddress::fromBytes(addr_.family(), b);
}

IpAddress IpPrefix::lastAddress() const
{
	std::uint8_t b[16];
	for (unsigned i = 0; i < addr_.size(); i++)
		b[i] = addr_.data()[i] | static_cast<std::uint8_t>(~prefixMask(i, length_));
	return IpAddress::fromBytes(addr_.family(), b);
}

bool IpPrefix::contains(const IpAddress &a) const
{
	if (a.family() != addr_.family())
		return false;
	for (unsigned i = 0; i < a.size(); i++) {
		std::uint8_t m = prefixMask(i, length_);
		if ((a.data()[i] & m) != (addr_.data()[i] & m))
			return false;
	}
	return true;
}

std::string IpPrefix::toString() const
{
	return addr_.toString() + "/" + std::to_string(length_);
}

} /* namespace nftpm */
