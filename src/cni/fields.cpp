/* SPDX-License-Identifier: Apache-2.0 */
#include "cni/fields.hpp"

#include <cassert>

namespace nftpm::cni {

namespace {

constexpr std::size_t kMaxDescribed = 64;

/* An integer too large for int64 still reads as one to the user. */
bool looksIntegral(const std::string &numberText)
{
	return numberText.find_first_of(".eE") == std::string::npos;
}

} /* namespace */

std::string describeJson(const Json &value)
{
	std::string text = serialize(value, JsonStyle::Compact);
	if (text.size() > kMaxDescribed)
		text = text.substr(0, kMaxDescribed) + "...";
	return text;
}

Unexpected<Error> wrongType(std::string_view path, std::string_view expected, const Json &got)
{
	return fail(ErrInvalidConfig,
		    std::string(path) + ": expected " + std::string(expected) + ", got " + describeJson(got));
}

Fields::Fields(const Json &object, std::string path) : object_(object), path_(std::move(path))
{
	assert(object_.isObject());
}

std::string Fields::pathOf(std::string_view key) const
{
	return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

const Json *Fields::get(std::string_view key) const
{
	const Json *v = object_.find(key);
	return v && !v->isNull() ? v : nullptr;
}

Result<std::optional<bool>> Fields::boolean(std::string_view key) const
{
	const Json *v = get(key);
	if (!v)
		return std::optional<bool>();
	if (!v->isBool())
		return wrongType(pathOf(key), "a boolean", *v);
	return std::optional<bool>(v->asBool());
}

Result<std::optional<std::string>> Fields::string(std::string_view key) const
{
	const Json *v = get(key);
	if (!v)
		return std::optional<std::string>();
	if (!v->isString())
		return wrongType(pathOf(key), "a string", *v);
	return std::optional<std::string>(v->asString());
}

Result<std::optional<std::int64_t>> Fields::integer(std::string_view key) const
{
	const Json *v = get(key);
	if (!v)
		return std::optional<std::int64_t>();
	if (!v->isNumber())
		return wrongType(pathOf(key), "an integer", *v);
	std::optional<std::int64_t> n = v->asInteger();
	if (!n && looksIntegral(v->numberText()))
		return fail(ErrInvalidConfig, pathOf(key) + ": " + v->numberText() + " is out of range");
	if (!n)
		return wrongType(pathOf(key), "an integer", *v);
	return n;
}

Result<std::optional<std::vector<std::string>>> Fields::strings(std::string_view key) const
{
	Result<const Json *> list = array(key);
	if (!list)
		return Unexpected(std::move(list).error());
	if (!*list)
		return std::optional<std::vector<std::string>>();

	std::vector<std::string> out;
	const Json::Array &elements = (*list)->asArray();
	for (std::size_t i = 0; i < elements.size(); i++) {
		if (!elements[i].isString())
			return wrongType(elementPath(pathOf(key), i), "a string", elements[i]);
		out.push_back(elements[i].asString());
	}
	return std::optional<std::vector<std::string>>(std::move(out));
}

Result<const Json *> Fields::array(std::string_view key) const
{
	const Json *v = get(key);
	if (v && !v->isArray())
		return wrongType(pathOf(key), "an array", *v);
	return v;
}

Result<const Json *> Fields::object(std::string_view key) const
{
	const Json *v = get(key);
	if (v && !v->isObject())
		return wrongType(pathOf(key), "an object", *v);
	return v;
}

std::string elementPath(std::string_view path, std::size_t index)
{
	return std::string(path) + "[" + std::to_string(index) + "]";
}

} /* namespace nftpm::cni */
