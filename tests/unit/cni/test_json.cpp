/* SPDX-License-Identifier: Apache-2.0 */
#include <doctest/doctest.h>

#include <string>

#include <sys/mman.h>
#include <unistd.h>

#include "cni/json.hpp"

using namespace nftpm::cni;

namespace {

Json parsed(std::string_view text)
{
	Result<Json> j = parseJson(text);
	REQUIRE_MESSAGE(j.has_value(), text);
	return *j;
}

Error parseError(std::string_view text)
{
	Result<Json> j = parseJson(text);
	REQUIRE_MESSAGE(!j.has_value(), text);
	return j.error();
}

std::string compact(std::string_view text)
{
	return serialize(parsed(text), JsonStyle::Compact);
}

std::string nested(unsigned depth, const char *open, const char *close)
{
	std::string s;
	for (unsigned i = 0; i < depth; i++)
		s += open;
	s += "1";
	for (unsigned i = 0; i < depth; i++)
		s += close;
	return s;
}

} /* namespace */

TEST_CASE("scalars of every type parse, at the root and inside containers")
{
	CHECK(parsed("null").isNull());
	CHECK(parsed(" true ").asBool());
	CHECK(!parsed("false").asBool());
	CHECK(parsed("\"x\"").asString() == "x");
	CHECK(parsed("-12").numberText() == "-12");

	Json a = parsed("[null, true, 1, \"s\", [], {}]");
	REQUIRE(a.asArray().size() == 6);
	CHECK(a.asArray()[0].type() == Json::Type::Null);
	CHECK(a.asArray()[1].type() == Json::Type::Bool);
	CHECK(a.asArray()[2].type() == Json::Type::Number);
	CHECK(a.asArray()[3].type() == Json::Type::String);
	CHECK(a.asArray()[4].type() == Json::Type::Array);
	CHECK(a.asArray()[5].type() == Json::Type::Object);
}

TEST_CASE("numbers keep their text, so re-encoding is exact")
{
	for (const char *n : { "0", "-0", "1.10", "1.5e3", "1E-7", "12345678901234567890123e-3",
			       "1.00000000000000000000000001", "9007199254740993" })
		CHECK(compact(std::string("[") + n + "]") == std::string("[") + n + "]");
}

TEST_CASE("asInteger accepts plain integers only")
{
	CHECK(parsed("80").asInteger() == 80);
	CHECK(parsed("-400").asInteger() == -400);
	CHECK(parsed("0").asInteger() == 0);
	CHECK(!parsed("80.0").asInteger());
	CHECK(!parsed("8e1").asInteger());
	CHECK(parsed("-9223372036854775808").asInteger() == INT64_MIN);
	CHECK(!parsed("9223372036854775808").asInteger());
	CHECK(!parsed("\"80\"").asInteger());
}

TEST_CASE("objects keep key order; a repeated key keeps its place and its last value")
{
	CHECK(compact(R"({"z":1,"a":2,"m":3})") == R"({"z":1,"a":2,"m":3})");
	CHECK(compact(R"({"a":1,"b":2,"a":3})") == R"({"a":3,"b":2})");
}

TEST_CASE("string escapes are decoded and encoded back correctly")
{
	Json s = parsed(R"("q\" b\\ s\/ \b\f\n\r\t \u0001 \u00e9 \ud83d\ude00")");
	CHECK(s.asString() == "q\" b\\ s/ \b\f\n\r\t \x01 \xc3\xa9 \xf0\x9f\x98\x80");
	CHECK(serialize(s, JsonStyle::Compact) ==
	      "\"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0001 \xc3\xa9 \xf0\x9f\x98\x80\"");
	CHECK(serialize(Json::string(std::string("\x1f\x00", 2)), JsonStyle::Compact) == "\"\\u001f\\u0000\"");
	/* Keys are escaped too. */
	CHECK(compact(R"({"a\"b\n":1})") == R"({"a\"b\n":1})");
}

TEST_CASE("pretty printing uses a 4-space indent like the reference plugins")
{
	Json j = parsed(R"({"a":[1,{"b":null}],"c":{},"d":[],"e":"x"})");
	CHECK(serialize(j, JsonStyle::Pretty) == "{\n"
						 "    \"a\": [\n"
						 "        1,\n"
						 "        {\n"
						 "            \"b\": null\n"
						 "        }\n"
						 "    ],\n"
						 "    \"c\": {},\n"
						 "    \"d\": [],\n"
						 "    \"e\": \"x\"\n"
						 "}");
	CHECK(serialize(parsed("7"), JsonStyle::Pretty) == "7");
}

TEST_CASE("malformed JSON is a decode error (code 6)")
{
	for (const char *bad : { "", "   ", "{", "}", "{} x", "{}{}", R"({"a":1}})", "[1,2]]", "[1,]",
				 R"({"a" 1})", R"({"a":tru})", R"({"a":nul})", R"(["\x"])", "01", "1.", "-",
				 "+1", ".5", "1e", "NaN", "[1 2]", "'a'", R"({a:1})", "\"a\xff\"",
				 "18446744073709551616", "1e400" }) {
		Error e = parseError(bad);
		CHECK_MESSAGE(e.code == ErrDecode, bad);
		CHECK_MESSAGE(e.msg.find("invalid JSON") == 0, bad);
	}
}

TEST_CASE("input over 1 MiB is refused before parsing")
{
	std::string big = "\"" + std::string(kMaxJsonSize - 2, 'a') + "\"";
	CHECK(parsed(big).asString().size() == kMaxJsonSize - 2);
	big.insert(1, "a");
	Error e = parseError(big);
	CHECK(e.code == ErrDecode);
	CHECK(e.msg == "JSON input larger than 1048576 bytes");
}

TEST_CASE("nesting is limited to 64 levels, for arrays and objects alike")
{
	CHECK(parsed(nested(64, "[", "]")).isArray());
	CHECK(parsed(nested(64, "{\"a\":", "}")).isObject());
	for (const std::string &deep : { nested(65, "[", "]"), nested(65, "{\"a\":", "}"),
					 nested(100000, "[", "]"), nested(100000, "{\"a\":", "}") }) {
		Error e = parseError(deep);
		CHECK(e.code == ErrDecode);
		CHECK(e.msg == "JSON nested deeper than 64 levels");
	}
}

TEST_CASE("building and editing objects")
{
	Json o = Json::object();
	o.set("b", Json::number(1));
	o.set("c", Json::boolean(true));
	o.setFirst("a", Json::string("x"));
	o.set("b", Json::number(-2));
	CHECK(serialize(o, JsonStyle::Compact) == R"({"a":"x","b":-2,"c":true})");
	o.setFirst("c", Json());
	CHECK(serialize(o, JsonStyle::Compact) == R"({"c":null,"a":"x","b":-2})");
	o.erase("a");
	o.erase("nothing");
	CHECK(serialize(o, JsonStyle::Compact) == R"({"c":null,"b":-2})");
	REQUIRE(o.find("b"));
	CHECK(o.find("b")->asInteger() == -2);
	CHECK(!o.find("a"));
	CHECK(!Json::array().find("a"));
}

TEST_CASE("jsonTypeName")
{
	CHECK(std::string(jsonTypeName(Json::Type::Bool)) == "boolean");
	CHECK(std::string(jsonTypeName(Json::Type::Object)) == "object");
}

TEST_CASE("readAll reads to EOF and refuses more than its limit")
{
	/* Larger than readAll's buffer, so it takes several reads. */
	std::string payload(100000, 'x');
	int fd = memfd_create("stdin", 0);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, payload.data(), payload.size()) == static_cast<ssize_t>(payload.size()));

	REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
	Result<std::string> all = readAll(fd, payload.size());
	REQUIRE(all.has_value());
	CHECK(*all == payload);

	REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
	Result<std::string> tooMuch = readAll(fd, payload.size() - 1);
	REQUIRE(!tooMuch.has_value());
	CHECK(tooMuch.error().code == ErrDecode);
	CHECK(tooMuch.error().msg == "input larger than 99999 bytes");
	close(fd);

	Result<std::string> bad = readAll(-1, 10);
	REQUIRE(!bad.has_value());
	CHECK(bad.error().code == ErrIo);
	CHECK(bad.error().msg == "reading input: Bad file descriptor");
}
