/* SPDX-License-Identifier: Apache-2.0 */
/* IP addresses and prefixes as the plugin and the kernel see them. */
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sys/socket.h>

namespace nftpm {

enum class Family : std::uint8_t {
	IPv4 = AF_INET,
	IPv6 = AF_INET6,
};

/* "ipv4" / "ipv6", for messages. */
const char *familyName(Family f);

class IpAddress
{
public:
	IpAddress() = default;

	/* Accepts dotted quad or RFC 4291 text (no zone, no brackets). */
	static std::optional<IpAddress> parse(std::string_view text);
	static IpAddress fromBytes(Family family, const void *bytes);

	Family family() const { return family_; }
	/* 4 or 16: the address length on the wire. */
	std::size_t size() const { return family_ == Family::IPv4 ? 4 : 16; }
	const std::uint8_t *data() const { return bytes_.data(); }
	/* 0.0.0.0 or :: */
	bool isUnspecified() const;
	bool isLoopback() const;
	std::string toString() const;

	auto operator<=>(const IpAddress &) const = default;

private:
	Family family_ = Family::IPv4;
	std::array<std::uint8_t, 16> bytes_{};
};

class IpPrefix
{
public:
	IpPrefix() = default;
	IpPrefix(IpAddress addr, std::uint8_t length) : addr_(addr), length_(length) {}

	/* "10.88.0.2/16", "fd00::2/64"; a bare address gets the full length. */
	static std::optional<IpPrefix> parse(std::string_view text);

	const IpAddress &address() const { return addr_; }
	std::uint8_t length() const { return length_; }
	Family family() const { return addr_.family(); }
	/* The address with the host bits cleared: 10.88.0.0 for 10.88.0.2/16. */
	IpAddress network() const;
	/* The last address of the prefix: 10.88.255.255 for 10.88.0.2/16. */
	IpAddress lastAddress() const;
	bool contains(const IpAddress &a) const;
	std::string toString() const;

	auto operator<=>(const IpPrefix &) const = default;

private:
	IpAddress addr_;
	std::uint8_t length_ = 0;
};

} /* namespace nftpm */
