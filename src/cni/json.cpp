/* SPDX-License-Identifier: Apache-2.0 */
#include "cni/json.hpp"

#include <cctype>
#include <charconv>
#include <cerrno>
#include <cstring>

#include <simdjson.h>
#include <unistd.h>

namespace nftpm::cni {

namespace od = simdjson::ondemand;

Json Json::boolean(bool b)
{
	Json j;
	j.v_ = b;
	return j;
}

Json Json::number(std::string text)
{
	Json j;
	j.v_ = NumberText{ std::move(text) };
	return j;
}

Json Json::number(std::int64_t n)
{
	return number(std::to_string(n));
}

Json Json::string(std::string s)
{
	Json j;
	j.v_ = std::move(s);
	return j;
}

Json Json::array(Array elements)
{
	Json j;
	j.v_ = std::move(elements);
	return j;
}

Json Json::object(Object members)
{
	Json j;
	j.v_ = std::move(members);
	return j;
}

Json::Type Json::type() const
{
	/* The variant's alternatives are declared in the order of Type. */
	return static_cast<Type>(v_.index());
}

bool Json::asBool() const
{
	return std::get<bool>(v_);
}

const std::string &Json::numberText() const
{
	return std::get<NumberText>(v_).text;
}

const std::string &Json::asString() const
{
	return std::get<std::string>(v_);
}

const Json::Array &Json::asArray() const
{
	return std::get<Array>(v_);
}

Json::Array &Json::asArray()
{
	return std::get<Array>(v_);
}

const Json::Object &Json::asObject() const
{
	return std::get<Object>(v_);
}

Json::Object &Json::asObject()
{
	return std::get<Object>(v_);
}

std::optional<std::int64_t> Json::asInteger() const
{
	if (!isNumber())
		return std::nullopt;
	/* Only plain integers: 80, -3; never 80.0 or 8e1. */
	const std::string &text = numberText();
	std::int64_t n = 0;
	auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
	if (ec != std::errc() || end != text.data() + text.size())
		return std::nullopt;
	return n;
}

const Json *Json::find(std::string_view key) const
{
	if (!isObject())
		return nullptr;
	for (const Member &m : asObject())
		if (m.first == key)
			return &m.second;
	return nullptr;
}

Json *Json::find(std::string_view key)
{
	return const_cast<Json *>(std::as_const(*this).find(key));
}

void Json::set(std::string key, Json value)
{
	if (Json *existing = find(key)) {
		*existing = std::move(value);
		return;
	}
	asObject().emplace_back(std::move(key), std::move(value));
}

void Json::setFirst(std::string key, Json value)
{
	erase(key);
	Object &members = asObject();
	members.emplace(members.begin(), std::move(key), std::move(value));
}

void Json::erase(std::string_view key)
{
	std::erase_if(asObject(), [key](const Member &m) { return m.first == key; });
}

const char *jsonTypeName(Json::Type type)
{
	switch (type) {
	case Json::Type::Null:
		return "null";
	case Json::Type::Bool:
		return "boolean";
	case Json::Type::Number:
		return "number";
	case Json::Type::String:
		return "string";
	case Json::Type::Array:
		return "array";
	case Json::Type::Object:
		return "object";
	}
	return "?";
}

/* --- parsing ------------------------------------------------------------ */

/*
 * Two passes over the (at most 1 MiB) input. simdjson's DOM parser
 * validates everything strictly, including what the on-demand API leaves
 * unchecked (trailing content, literals and strings it is not asked for),
 * but turns numbers into doubles. The on-demand pass then builds the value
 * from the validated text, keeping every number's original token.
 */

namespace {

Unexpected<Error> decodeError(simdjson::error_code e)
{
	return fail(ErrDecode, std::string("invalid JSON: ") + simdjson::error_message(e));
}

Unexpected<Error> tooDeep()
{
	return fail(ErrDecode, "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
}

/* raw_json_token() includes the whitespace up to the next token. */
std::string_view trimRight(std::string_view s)
{
	while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
		s.remove_suffix(1);
	return s;
}

Result<Json> fromValue(od::value value, unsigned depth);

Result<Json> fromArray(od::array array, unsigned depth)
{
	if (depth > kMaxJsonDepth)
		return tooDeep();
	Json::Array elements;
	for (auto element : array) {
		od::value v;
		if (auto e = element.get(v))
			return decodeError(e);
		Result<Json> j = fromValue(v, depth);
		if (!j)
			return Unexpected(std::move(j).error());
		elements.push_back(std::move(*j));
	}
	return Json::array(std::move(elements));
}

Result<Json> fromObject(od::object object, unsigned depth)
{
	if (depth > kMaxJsonDepth)
		return tooDeep();
	Json result = Json::object();
	for (auto field : object) {
		std::string_view key;
		if (auto e = field.unescaped_key().get(key))
			return decodeError(e);
		/* The key's storage is reused by the parser: copy it first. */
		std::string ownedKey(key);
		od::value v;
		if (auto e = field.value().get(v))
			return decodeError(e);
		Result<Json> j = fromValue(v, depth);
		if (!j)
			return Unexpected(std::move(j).error());
		result.set(std::move(ownedKey), std::move(*j));
	}
	return result;
}

Result<Json> fromScalar(od::value value, od::json_type type)
{
	switch (type) {
	case od::json_type::boolean: {
		bool b = false;
		if (auto e = value.get_bool().get(b))
			return decodeError(e);
		return Json::boolean(b);
	}
	case od::json_type::number:
		return Json::number(std::string(trimRight(value.raw_json_token())));
	case od::json_type::string: {
		std::string_view s;
		if (auto e = value.get_string().get(s))
			return decodeError(e);
		return Json::string(std::string(s));
	}
	default:
		return Json();
	}
}

/* depth: how many arrays and objects enclose value. */
Result<Json> fromValue(od::value value, unsigned depth)
{
	od::json_type type;
	if (auto e = value.type().get(type))
		return decodeError(e);
	if (type == od::json_type::array) {
		od::array a;
		if (auto e = value.get_array().get(a))
			return decodeError(e);
		return fromArray(a, depth + 1);
	}
	if (type == od::json_type::object) {
		od::object o;
		if (auto e = value.get_object().get(o))
			return decodeError(e);
		return fromObject(o, depth + 1);
	}
	return fromScalar(value, type);
}

Result<void> validate(std::string_view text)
{
	simdjson::padded_string padded(text);
	simdjson::dom::parser parser;
	simdjson::dom::element root;
	simdjson::error_code e = parser.parse(padded).get(root);
	if (e == simdjson::DEPTH_ERROR)
		return tooDeep();
	if (e)
		return decodeError(e);
	return {};
}

/*
 * The on-demand API has no value for a scalar root document: parse the
 * validated text as the only element of an array instead.
 */
Result<Json> build(std::string_view text)
{
	std::string wrapped;
	wrapped.reserve(text.size() + 2);
	wrapped.append("[").append(text).append("]");
	simdjson::padded_string padded(wrapped);

	od::parser parser;
	od::document doc;
	od::array outer;
	if (auto e = parser.iterate(padded).get(doc))
		return decodeError(e);
	if (auto e = doc.get_array().get(outer))
		return decodeError(e);
	od::value root;
	if (auto e = outer.at(0).get(root))
		return decodeError(e);
	return fromValue(root, 0);
}

} /* namespace */

Result<Json> parseJson(std::string_view text)
{
	if (text.size() > kMaxJsonSize)
		return fail(ErrDecode, "JSON input larger than " + std::to_string(kMaxJsonSize) + " bytes");
	if (auto ok = validate(text); !ok)
		return Unexpected(std::move(ok).error());
	return build(text);
}

/* --- serializing -------------------------------------------------------- */

namespace {

void appendEscaped(std::string &out, std::string_view s)
{
	static const char hex[] = "0123456789abcdef";

	out += '"';
	for (char c : s) {
		switch (c) {
		case '"':
			out += "\\\"";
			break;
		case '\\':
			out += "\\\\";
			break;
		case '\n':
			out += "\\n";
			break;
		case '\r':
			out += "\\r";
			break;
		case '\t':
			out += "\\t";
			break;
		case '\b':
			out += "\\b";
			break;
		case '\f':
			out += "\\f";
			break;
		default:
			if (static_cast<unsigned char>(c) < 0x20) {
				out += "\\u00";
				out += hex[(c >> 4) & 0xf];
				out += hex[c & 0xf];
			} else {
				out += c;
			}
		}
	}
	out += '"';
}

class Writer
{
public:
	explicit Writer(JsonStyle style) : pretty_(style == JsonStyle::Pretty) {}

	void write(const Json &v, unsigned level);
	std::string take() { return std::move(out_); }

private:
	void newline(unsigned level);
	void writeArray(const Json::Array &a, unsigned level);
	void writeObject(const Json::Object &o, unsigned level);

	bool pretty_;
	std::string out_;
};

void Writer::newline(unsigned level)
{
	if (!pretty_)
		return;
	out_ += '\n';
	out_.append(4 * level, ' ');
}

void Writer::writeArray(const Json::Array &a, unsigned level)
{
	out_ += '[';
	for (std::size_t i = 0; i < a.size(); i++) {
		if (i)
			out_ += ',';
		newline(level + 1);
		write(a[i], level + 1);
	}
	if (!a.empty())
		newline(level);
	out_ += ']';
}

void Writer::writeObject(const Json::Object &o, unsigned level)
{
	out_ += '{';
	for (std::size_t i = 0; i < o.size(); i++) {
		if (i)
			out_ += ',';
		newline(level + 1);
		appendEscaped(out_, o[i].first);
		out_ += pretty_ ? ": " : ":";
		write(o[i].second, level + 1);
	}
	if (!o.empty())
		newline(level);
	out_ += '}';
}

void Writer::write(const Json &v, unsigned level)
{
	switch (v.type()) {
	case Json::Type::Null:
		out_ += "null";
		break;
	case Json::Type::Bool:
		out_ += v.asBool() ? "true" : "false";
		break;
	case Json::Type::Number:
		out_ += v.numberText();
		break;
	case Json::Type::String:
		appendEscaped(out_, v.asString());
		break;
	case Json::Type::Array:
		writeArray(v.asArray(), level);
		break;
	case Json::Type::Object:
		writeObject(v.asObject(), level);
		break;
	}
}

} /* namespace */

std::string serialize(const Json &value, JsonStyle style)
{
	Writer w(style);
	w.write(value, 0);
	return w.take();
}

/* --- input -------------------------------------------------------------- */

Result<std::string> readAll(int fd, std::size_t max)
{
	std::string data;
	char buf[65536];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(ErrIo, std::string("reading input: ") + std::strerror(errno));
		if (n == 0)
			return data;
		if (data.size() + static_cast<std::size_t>(n) > max)
			return fail(ErrDecode, "input larger than " + std::to_string(max) + " bytes");
		data.append(buf, static_cast<std::size_t>(n));
	}
}

} /* namespace nftpm::cni */
