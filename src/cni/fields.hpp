/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Typed reading of the members of one configuration object. Every type
 * mismatch is a code 7 error that names the member by its full path and
 * shows the value: `snat: expected a boolean, got "yes"`. An absent member
 * and a null one are the same (as in the reference's Go decoding).
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cni/error.hpp"
#include "cni/json.hpp"

namespace nftpm::cni {

/* The value in compact JSON for messages, shortened when long. */
std::string describeJson(const Json &value);

/* "<path>: expected <what>, got <value>" */
Unexpected<Error> wrongType(std::string_view path, std::string_view expected, const Json &got);

class Fields
{
public:
	/* object must be an object; path names it ("" at the top level). */
	Fields(const Json &object, std::string path);

	/* "runtimeConfig.portMappings[2].hostPort" */
	std::string pathOf(std::string_view key) const;

	/* nullptr when absent or null. */
	const Json *get(std::string_view key) const;

	Result<std::optional<bool>> boolean(std::string_view key) const;
	Result<std::optional<std::string>> string(std::string_view key) const;
	Result<std::optional<std::int64_t>> integer(std::string_view key) const;
	Result<std::optional<std::vector<std::string>>> strings(std::string_view key) const;
	/* The member itself, checked to be an array / an object. */
	Result<const Json *> array(std::string_view key) const;
	Result<const Json *> object(std::string_view key) const;

private:
	const Json &object_;
	std::string path_;
};

/* "<path>[<index>]" */
std::string elementPath(std::string_view path, std::size_t index);

} /* namespace nftpm::cni */
