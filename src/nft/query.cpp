/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading kernel state: one GET or dump per function. Answers are parsed by
 * libnftnl into objects the caller owns. Set elements are in elements.cpp.
 */
#include "nft/query.hpp"

#include <cerrno>
#include <functional>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <libnftnl/common.h>

namespace nftpm::nft {

namespace detail {

std::string familyName(std::uint16_t family)
{
	switch (family) {
	case NFPROTO_INET: return "inet";
	case NFPROTO_IPV4: return "ip";
	case NFPROTO_IPV6: return "ip6";
	case NFPROTO_ARP: return "arp";
	case NFPROTO_BRIDGE: return "bridge";
	case NFPROTO_NETDEV: return "netdev";
	default: return "family " + std::to_string(family);
	}
}

std::uint16_t messageType(const nlmsghdr *nlh)
{
	return NFNL_MSG_TYPE(nlh->nlmsg_type);
}

Request::Request(Socket &s, std::uint16_t type, std::uint16_t family, std::uint16_t flags)
	: buf_(MNL_SOCKET_BUFFER_SIZE)
{
	nftnl_nlmsg_build_hdr(buf_.data(), type, family, flags, s.nextSeq());
}

Result<void> dump(Socket &s, const std::function<Request()> &makeRequest, std::uint16_t replyType,
		  const std::string &what, const std::function<void()> &reset,
		  const std::function<int(const nlmsghdr *)> &take)
{
	for (int attempt = 1;; ++attempt) {
		reset();
		Request req = makeRequest();
		auto r = s.request(req.get(), what, [&](const nlmsghdr *nlh) {
			return messageType(nlh) == replyType ? take(nlh) : MNL_CB_OK;
		});
		if (r || r.error().errnum != EINTR || attempt == kDumpAttempts)
			return r;
	}
}

SetPtr setKey(std::uint16_t family, const std::string &table, const std::string &set)
{
	SetPtr st(nftnl_set_alloc());
	nftnl_set_set_u32(st.get(), NFTNL_SET_FAMILY, family);
	nftnl_set_set_str(st.get(), NFTNL_SET_TABLE, table.c_str());
	nftnl_set_set_str(st.get(), NFTNL_SET_NAME, set.c_str());
	return st;
}

} /* namespace detail */

using detail::dump;
using detail::familyName;
using detail::messageType;
using detail::Request;
using detail::setKey;

namespace {

/* Sends one GET and keeps the one object of replyType it answers with. */
template<typename Ptr>
Result<Ptr> getOne(Socket &s, const Request &req, std::uint16_t replyType, const std::string &what,
		   const std::function<Ptr()> &alloc,
		   const std::function<int(const nlmsghdr *, typename Ptr::pointer)> &parse)
{
	Ptr obj;
	auto r = s.request(req.get(), what, [&](const nlmsghdr *nlh) {
		if (messageType(nlh) != replyType)
			return MNL_CB_OK;
		Ptr o = alloc();
		if (!o || parse(nlh, o.get()) < 0)
			return MNL_CB_ERROR;
		obj = std::move(o);
		return MNL_CB_OK;
	});
	if (!r)
		return Unexpected(std::move(r).error());
	if (!obj)
		return fail(EPROTO, what, "no object in the answer");
	return obj;
}

/* Runs a dump and keeps every parsed object of replyType that keep() accepts (all without it). */
template<typename Ptr>
Result<std::vector<Ptr>> dumpAll(Socket &s, const std::function<Request()> &makeRequest,
				 std::uint16_t replyType, const std::string &what,
				 const std::function<Ptr()> &alloc,
				 const std::function<int(const nlmsghdr *, typename Ptr::pointer)> &parse,
				 const std::function<bool(typename Ptr::pointer)> &keep = {})
{
	std::vector<Ptr> out;
	auto r = dump(
		s, makeRequest, replyType, what, [&] { out.clear(); },
		[&](const nlmsghdr *nlh) {
			Ptr o = alloc();
			if (!o || parse(nlh, o.get()) < 0)
				return MNL_CB_ERROR;
			if (!keep || keep(o.get()))
				out.push_back(std::move(o));
			return MNL_CB_OK;
		});
	if (!r)
		return Unexpected(std::move(r).error());
	return out;
}

/* An empty dump of a table's objects: ENOENT when the table itself is missing. */
template<typename Ptr>
Result<std::vector<Ptr>> tableMustExist(Socket &s, std::uint16_t family, const std::string &table,
					Result<std::vector<Ptr>> dumped)
{
	if (dumped && dumped->empty()) {
		auto t = getTable(s, family, table);
		if (!t)
			return Unexpected(std::move(t).error());
	}
	return dumped;
}

TablePtr tableKey(std::uint16_t family, const std::string &table)
{
	TablePtr t(nftnl_table_alloc());
	nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, family);
	nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, table.c_str());
	return t;
}

ChainPtr chainKey(std::uint16_t family, const std::string &table, const std::string &chain)
{
	ChainPtr c(nftnl_chain_alloc());
	nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, family);
	nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
	if (!chain.empty())
		nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, chain.c_str());
	return c;
}

} /* namespace */

Result<std::uint32_t> getGeneration(Socket &s)
{
	const std::string what = "get ruleset generation";
	Request req(s, NFT_MSG_GETGEN, AF_UNSPEC, 0);
	auto gen = getOne<GenPtr>(
		s, req, NFT_MSG_NEWGEN, what, [] { return GenPtr(nftnl_gen_alloc()); },
		nftnl_gen_nlmsg_parse);
	if (!gen)
		return Unexpected(std::move(gen).error());
	if (!nftnl_gen_is_set(gen->get(), NFTNL_GEN_ID))
		return fail(EPROTO, what, "no generation id in the answer");
	return nftnl_gen_get_u32(gen->get(), NFTNL_GEN_ID);
}

Result<TablePtr> getTable(Socket &s, std::uint16_t family, const std::string &table)
{
	Request req(s, NFT_MSG_GETTABLE, family, 0);
	nftnl_table_nlmsg_build_payload(req.get(), tableKey(family, table).get());
	return getOne<TablePtr>(
		s, req, NFT_MSG_NEWTABLE, "list table " + familyName(family) + " " + table,
		[] { return TablePtr(nftnl_table_alloc()); }, nftnl_table_nlmsg_parse);
}

Result<ChainPtr> getChain(Socket &s, std::uint16_t family, const std::string &table,
			  const std::string &chain)
{
	Request req(s, NFT_MSG_GETCHAIN, family, 0);
	nftnl_chain_nlmsg_build_payload(req.get(), chainKey(family, table, chain).get());
	return getOne<ChainPtr>(
		s, req, NFT_MSG_NEWCHAIN,
		"list chain " + familyName(family) + " " + table + " " + chain,
		[] { return ChainPtr(nftnl_chain_alloc()); }, nftnl_chain_nlmsg_parse);
}

Result<std::vector<RulePtr>> getRules(Socket &s, std::uint16_t family, const std::string &table,
				      const std::string &chain)
{
	/* The kernel filters a rule dump by the table and chain names it is given. */
	auto rules = dumpAll<RulePtr>(
		s,
		[&] {
			Request req(s, NFT_MSG_GETRULE, family, NLM_F_DUMP);
			RulePtr key(nftnl_rule_alloc());
			nftnl_rule_set_u32(key.get(), NFTNL_RULE_FAMILY, family);
			nftnl_rule_set_str(key.get(), NFTNL_RULE_TABLE, table.c_str());
			nftnl_rule_set_str(key.get(), NFTNL_RULE_CHAIN, chain.c_str());
			nftnl_rule_nlmsg_build_payload(req.get(), key.get());
			return req;
		},
		NFT_MSG_NEWRULE, "list chain " + familyName(family) + " " + table + " " + chain,
		[] { return RulePtr(nftnl_rule_alloc()); }, nftnl_rule_nlmsg_parse);
	if (!rules)
		return rules;

	/* A dump of a chain that does not exist is empty, not an error: ask. */
	if (rules->empty()) {
		auto c = getChain(s, family, table, chain);
		if (!c)
			return Unexpected(std::move(c).error());
	}
	return rules;
}

Result<std::vector<ChainPtr>> dumpChains(Socket &s, std::uint16_t family, const std::string &table)
{
	/* Chain dumps are filtered by family only: the table is filtered here. */
	auto chains = dumpAll<ChainPtr>(
		s,
		[&] {
			Request req(s, NFT_MSG_GETCHAIN, family, NLM_F_DUMP);
			nftnl_chain_nlmsg_build_payload(req.get(), chainKey(family, table, {}).get());
			return req;
		},
		NFT_MSG_NEWCHAIN, "list chains " + familyName(family) + " " + table,
		[] { return ChainPtr(nftnl_chain_alloc()); }, nftnl_chain_nlmsg_parse,
		[&](nftnl_chain *c) {
			const char *t = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE);
			return t && table == t && nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY) == family;
		});
	return tableMustExist(s, family, table, std::move(chains));
}

Result<SetPtr> getSet(Socket &s, std::uint16_t family, const std::string &table,
		      const std::string &set)
{
	Request req(s, NFT_MSG_GETSET, family, 0);
	nftnl_set_nlmsg_build_payload(req.get(), setKey(family, table, set).get());
	return getOne<SetPtr>(
		s, req, NFT_MSG_NEWSET, "list set " + familyName(family) + " " + table + " " + set,
		[] { return SetPtr(nftnl_set_alloc()); }, nftnl_set_nlmsg_parse);
}

Result<std::vector<SetPtr>> dumpSets(Socket &s, std::uint16_t family, const std::string &table)
{
	/* The kernel filters a set dump by the table named in the request. */
	auto sets = dumpAll<SetPtr>(
		s,
		[&] {
			Request req(s, NFT_MSG_GETSET, family, NLM_F_DUMP);
			SetPtr key(nftnl_set_alloc());
			nftnl_set_set_u32(key.get(), NFTNL_SET_FAMILY, family);
			nftnl_set_set_str(key.get(), NFTNL_SET_TABLE, table.c_str());
			nftnl_set_nlmsg_build_payload(req.get(), key.get());
			return req;
		},
		NFT_MSG_NEWSET, "list sets " + familyName(family) + " " + table,
		[] { return SetPtr(nftnl_set_alloc()); }, nftnl_set_nlmsg_parse);
	return tableMustExist(s, family, table, std::move(sets));
}

namespace {

ObjPtr objKey(std::uint16_t family, const std::string &table, std::uint32_t type,
	      const std::string &name)
{
	ObjPtr o(nftnl_obj_alloc());
	if (!o)
		std::abort();
	nftnl_obj_set_u32(o.get(), NFTNL_OBJ_FAMILY, family);
	nftnl_obj_set_str(o.get(), NFTNL_OBJ_TABLE, table.c_str());
	nftnl_obj_set_u32(o.get(), NFTNL_OBJ_TYPE, type);
	if (!name.empty())
		nftnl_obj_set_str(o.get(), NFTNL_OBJ_NAME, name.c_str());
	return o;
}

} /* namespace */

Result<ObjPtr> getObject(Socket &s, std::uint16_t family, const std::string &table,
			 std::uint32_t type, const std::string &name)
{
	Request req(s, NFT_MSG_GETOBJ, family, 0);
	nftnl_obj_nlmsg_build_payload(req.get(), objKey(family, table, type, name).get());
	return getOne<ObjPtr>(
		s, req, NFT_MSG_NEWOBJ, "list object " + familyName(family) + " " + table + " " + name,
		[] { return ObjPtr(nftnl_obj_alloc()); }, nftnl_obj_nlmsg_parse);
}

Result<std::vector<ObjPtr>> dumpObjects(Socket &s, std::uint16_t family, const std::string &table,
					std::uint32_t type)
{
	/* The kernel filters an object dump by table and type; both are checked again. */
	auto objs = dumpAll<ObjPtr>(
		s,
		[&] {
			Request req(s, NFT_MSG_GETOBJ, family, NLM_F_DUMP);
			nftnl_obj_nlmsg_build_payload(req.get(), objKey(family, table, type, {}).get());
			return req;
		},
		NFT_MSG_NEWOBJ, "list objects " + familyName(family) + " " + table,
		[] { return ObjPtr(nftnl_obj_alloc()); }, nftnl_obj_nlmsg_parse,
		[&](nftnl_obj *o) {
			const char *t = nftnl_obj_get_str(o, NFTNL_OBJ_TABLE);
			return t && table == t && nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE) == type;
		});
	return tableMustExist(s, family, table, std::move(objs));
}

} /* namespace nftpm::nft */
