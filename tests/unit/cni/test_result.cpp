/* SPDX-License-Identifier: Apache-2.0 */
#include <doctest/doctest.h>

#include <string>

#include "cni/result.hpp"
#include "fixture.hpp"

using namespace nftpm::cni;
using namespace nftpm::cni::test;

namespace {

const char *const kResultVersions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0" };

Json fixture(const std::string &version)
{
	Result<Json> j = parseJson(readFixture("bridge-" + version + ".json"));
	REQUIRE(j.has_value());
	return *j;
}

Json json(std::string_view text)
{
	Result<Json> j = parseJson(text);
	REQUIRE_MESSAGE(j.has_value(), text);
	return *j;
}

bool hasIpVersions(std::string_view version)
{
	return version[0] == '0';
}

/* Checks result against the shape the spec gives version. */
void checkShape(const Json &result, std::string_view version)
{
	REQUIRE(result.find("cniVersion"));
	CHECK(result.find("cniVersion")->asString() == version);
	CHECK(result.asObject().front().first == "cniVersion");
	for (const Json &ip : result.find("ips")->asArray()) {
		const Json *v = ip.find("version");
		if (!hasIpVersions(version)) {
			CHECK(!v);
			continue;
		}
		REQUIRE(v);
		CHECK(ip.asObject().front().first == "version");
		bool isV4 = ip.find("address")->asString().find(':') == std::string::npos;
		CHECK(v->asString() == (isV4 ? "4" : "6"));
	}
	CHECK(result.find("dns"));
}

} /* namespace */

TEST_CASE("a captured result is printed back byte for byte in its own version")
{
	for (const char *version : kFixtureVersions) {
		CAPTURE(version);
		std::string text = readFixture(std::string("bridge-") + version + ".json");
		CHECK(serialize(convertResult(fixture(version), version), JsonStyle::Pretty) == text);
	}
}

TEST_CASE("every captured result converts to every version and back unchanged")
{
	for (const char *from : kFixtureVersions) {
		for (const char *to : kResultVersions) {
			CAPTURE(from);
			CAPTURE(to);
			Json converted = convertResult(fixture(from), to);
			checkShape(converted, to);
			CHECK(convertResult(converted, from) == fixture(from));
		}
	}
}

TEST_CASE("conversions match what the real plugins print for the other version")
{
	/* The captures differ in MACs and veth names only: align those. */
	Json v040 = fixture("0.4.0");
	Json v100 = fixture("1.0.0");
	v040.set("interfaces", *v100.find("interfaces"));

	CHECK(convertResult(v100, "0.4.0") == v040);
	CHECK(convertResult(v040, "1.0.0") == v100);
	CHECK(serialize(convertResult(v040, "1.0.0"), JsonStyle::Pretty) ==
	      serialize(v100, JsonStyle::Pretty));

	Json v110 = v100;
	v110.set("cniVersion", Json::string("1.1.0"));
	CHECK(convertResult(v040, "1.1.0") == v110);
}

TEST_CASE("conversion keeps unknown fields and their order")
{
	Json in = json(R"({"cniVersion":"1.1.0","x-top":[1.50,{"k":null}],
		"interfaces":[{"name":"eth0","mtu":1450,"socketPath":"/s","pciID":"0000:00:01.0","sandbox":"/ns"}],
		"ips":[{"interface":0,"address":"10.0.0.2/24","x-ip":true}],
		"routes":[{"dst":"0.0.0.0/0","table":10,"scope":0,"priority":5}],
		"dns":{"nameservers":["10.0.0.1"],"search":["a"]}})");
	Json out = convertResult(in, "0.4.0");
	CHECK(serialize(out, JsonStyle::Compact) ==
	      R"({"cniVersion":"0.4.0","x-top":[1.50,{"k":null}],)"
	      R"("interfaces":[{"name":"eth0","mtu":1450,"socketPath":"/s","pciID":"0000:00:01.0","sandbox":"/ns"}],)"
	      R"("ips":[{"version":"4","interface":0,"address":"10.0.0.2/24","x-ip":true}],)"
	      R"("routes":[{"dst":"0.0.0.0/0","table":10,"scope":0,"priority":5}],)"
	      R"("dns":{"nameservers":["10.0.0.1"],"search":["a"]}})");
	CHECK(convertResult(out, "1.1.0") == in);
}

TEST_CASE("0.x results always have dns; 1.x results are not given one")
{
	Json bare = json(R"({"ips":[{"address":"fd00::2/64"}]})");
	CHECK(serialize(convertResult(bare, "0.3.1"), JsonStyle::Compact) ==
	      R"({"cniVersion":"0.3.1","ips":[{"version":"6","address":"fd00::2/64"}],"dns":{}})");
	CHECK(serialize(convertResult(bare, "1.0.0"), JsonStyle::Compact) ==
	      R"({"cniVersion":"1.0.0","ips":[{"address":"fd00::2/64"}]})");
}

TEST_CASE("a wrong ips version is corrected in place")
{
	Json in = json(R"({"cniVersion":"0.4.0","ips":[{"interface":1,"version":"6","address":"10.0.0.2/24"}],"dns":{}})");
	CHECK(serialize(convertResult(in, "0.4.0"), JsonStyle::Compact) ==
	      R"({"cniVersion":"0.4.0","ips":[{"interface":1,"version":"4","address":"10.0.0.2/24"}],"dns":{}})");
}

TEST_CASE("addResultJson prints prevResult in the configuration's version")
{
	std::string prev = readFixture("bridge-1.0.0.json");
	std::string conf = R"({"cniVersion":"0.4.0","name":"podnet","type":"nft-portmap","prevResult":)" + prev + "}";
	Result<Config> config = parseConfig(conf, environmentFor(Command::Add));
	REQUIRE(config.has_value());
	Result<std::string> out = addResultJson(*config);
	REQUIRE(out.has_value());
	CHECK(*out == serialize(convertResult(fixture("1.0.0"), "0.4.0"), JsonStyle::Pretty));
	CHECK(out->find("\"cniVersion\": \"0.4.0\"") != std::string::npos);
	CHECK(out->back() == '}');

	Config small;
	small.cniVersion = "1.1.0";
	small.prevResult = json(R"({"ips":[{"version":"4","address":"10.0.0.2/24"}]})");
	REQUIRE(addResultJson(small).has_value());
	CHECK(*addResultJson(small) == "{\n"
				       "    \"cniVersion\": \"1.1.0\",\n"
				       "    \"ips\": [\n"
				       "        {\n"
				       "            \"address\": \"10.0.0.2/24\"\n"
				       "        }\n"
				       "    ]\n"
				       "}");
}

TEST_CASE("addResultJson needs a prevResult and a version that has one")
{
	Config none;
	none.cniVersion = "1.0.0";
	Result<std::string> r = addResultJson(none);
	REQUIRE(!r.has_value());
	CHECK(r.error().code == ErrInvalidConfig);
	CHECK(r.error().msg == "must be called as chained plugin: prevResult is missing");

	for (const char *old : { "0.1.0", "0.2.0", "7.0.0" }) {
		Config c;
		c.cniVersion = old;
		c.prevResult = Json::object();
		Result<std::string> o = addResultJson(c);
		REQUIRE(!o.has_value());
		CHECK(o.error().code == ErrIncompatibleVersion);
		CHECK(o.error().msg == "cannot print a result for cniVersion \"" + std::string(old) + "\"");
	}
}

TEST_CASE("versionJson")
{
	CHECK(versionJson("") == R"({"cniVersion":"1.1.0","supportedVersions":)"
				 R"(["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]})");
	CHECK(versionJson("0.4.0") == R"({"cniVersion":"0.4.0","supportedVersions":)"
				      R"(["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]})");
}
