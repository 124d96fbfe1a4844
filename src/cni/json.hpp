/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small owned JSON value. simdjson parses; this keeps what we need to
 * inspect a configuration and to pass a result on unchanged: numbers as
 * their original text (re-encoding is exact, whatever their size) and
 * objects in their original key order.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cni/error.hpp"

namespace nftpm::cni {

class Json
{
public:
	enum class Type { Null, Bool, Number, String, Array, Object };
	using Array = std::vector<Json>;
	using Member = std::pair<std::string, Json>;
	using Object = std::vector<Member>;

	Json() = default; /* null */

	static Json boolean(bool b);
	/* Text must be a valid JSON number; it is printed back verbatim. */
	static Json number(std::string text);
	static Json number(std::int64_t n);
	static Json string(std::string s);
	static Json array(Array elements = {});
	static Json object(Object members = {});

	Type type() const;
	bool isNull() const { return type() == Type::Null; }
	bool isBool() const { return type() == Type::Bool; }
	bool isNumber() const { return type() == Type::Number; }
	bool isString() const { return type() == Type::String; }
	bool isArray() const { return type() == Type::Array; }
	bool isObject() const { return type() == Type::Object; }

	/* Accessors assert the type. */
	bool asBool() const;
	const std::string &numberText() const;
	const std::string &asString() const;
	const Array &asArray() const;
	Array &asArray();
	const Object &asObject() const;
	Object &asObject();

	/* The number as an integer, if its text is one and it fits. */
	std::optional<std::int64_t> asInteger() const;

	/* Object members by key; nullptr when absent (or not an object). */
	const Json *find(std::string_view key) const;
	Json *find(std::string_view key);
	/* Replaces the value in place, or appends the member. */
	void set(std::string key, Json value);
	/* Inserts or replaces the member as the first one. */
	void setFirst(std::string key, Json value);
	void erase(std::string_view key);

	bool operator==(const Json &) const = default;

private:
	struct NumberText {
		std::string text;
		bool operator==(const NumberText &) const = default;
	};

	std::variant<std::monostate, bool, NumberText, std::string, Array, Object> v_;
};

/* Bounds on untrusted input: larger or deeper documents are refused. */
inline constexpr std::size_t kMaxJsonSize = 1 << 20;
inline constexpr unsigned kMaxJsonDepth = 64;

/*
 * Parses one JSON document. Errors are code 6 (ErrDecode), including input
 * over kMaxJsonSize bytes or nested deeper than kMaxJsonDepth. A key that
 * appears twice keeps its first position and its last value. simdjson
 * refuses numbers it cannot represent (integers beyond 64 bits, beyond the
 * range of a double): no CNI field can hold them.
 */
Result<Json> parseJson(std::string_view text);

enum class JsonStyle {
	Compact, /* {"a":[1,2]} */
	Pretty,  /* 4-space indent, "key": value; no trailing newline */
};

std::string serialize(const Json &value, JsonStyle style);

/* "boolean", "number", ... for messages. */
const char *jsonTypeName(Json::Type type);

/*
 * Reads fd to EOF. More than max bytes is code 6 (refused before it is
 * parsed), a read error code 5.
 */
Result<std::string> readAll(int fd, std::size_t max);

} /* namespace nftpm::cni */
