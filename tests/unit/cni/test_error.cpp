/* SPDX-License-Identifier: Apache-2.0 */
#include <doctest/doctest.h>

#include "cni/error.hpp"

using namespace nftpm::cni;

TEST_CASE("error codes have the spec's values")
{
	CHECK(ErrIncompatibleVersion == 1);
	CHECK(ErrUnsupportedField == 2);
	CHECK(ErrUnknownContainer == 3);
	CHECK(ErrInvalidEnvironment == 4);
	CHECK(ErrIo == 5);
	CHECK(ErrDecode == 6);
	CHECK(ErrInvalidConfig == 7);
	CHECK(ErrTryAgainLater == 11);
	CHECK(ErrNotAvailable == 50);
	CHECK(ErrNotAvailableLimitedConnectivity == 51);
	CHECK(ErrPortConflict == 100);
	CHECK(ErrNftablesRefused == 101);
	CHECK(ErrNftablesUnusable == 102);
}

TEST_CASE("errorJson prints the spec's error object")
{
	Error e{ ErrInvalidConfig, "bad \"thing\"", "line\n2" };
	CHECK(errorJson(e, "1.1.0") == "{\n"
				       "    \"cniVersion\": \"1.1.0\",\n"
				       "    \"code\": 7,\n"
				       "    \"msg\": \"bad \\\"thing\\\"\",\n"
				       "    \"details\": \"line\\n2\"\n"
				       "}");
}

TEST_CASE("errorJson leaves out empty details and an unknown version")
{
	CHECK(errorJson(Error{ ErrPortConflict, "taken", "" }, "0.4.0") == "{\n"
									     "    \"cniVersion\": \"0.4.0\",\n"
									     "    \"code\": 100,\n"
									     "    \"msg\": \"taken\"\n"
									     "}");
	CHECK(errorJson(Error{ ErrInvalidEnvironment, "m", "d" }, "") == "{\n"
									   "    \"code\": 4,\n"
									   "    \"msg\": \"m\",\n"
									   "    \"details\": \"d\"\n"
									   "}");
}

TEST_CASE("fail() builds an Unexpected error")
{
	Result<int> r = fail(ErrIo, "read", "EIO");
	REQUIRE(!r.has_value());
	CHECK(r.error().code == ErrIo);
	CHECK(r.error().msg == "read");
	CHECK(r.error().details == "EIO");
}
