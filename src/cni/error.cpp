/* SPDX-License-Identifier: Apache-2.0 */
#include "cni/error.hpp"

#include "cni/json.hpp"

namespace nftpm::cni {

std::string errorJson(const Error &error, std::string_view cniVersion)
{
	Json out = Json::object();
	if (!cniVersion.empty())
		out.set("cniVersion", Json::string(std::string(cniVersion)));
	out.set("code", Json::number(error.code));
	out.set("msg", Json::string(error.msg));
	if (!error.details.empty())
		out.set("details", Json::string(error.details));
	return serialize(out, JsonStyle::Pretty);
}

} /* namespace nftpm::cni */
