/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Move-only owners of libnftnl objects. A raw pointer is only ever borrowed;
 * ownership moves with std::unique_ptr, and handing an object to a parent
 * (an expression to a rule, an element to a set) is spelled release().
 */
#pragma once

#include <memory>

#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

namespace nftpm::nft {

#define NFTPM_DEFINE_OWNER(Name, Type, freeFn)                         \
	struct Name##Deleter {                                         \
		void operator()(Type *p) const noexcept { freeFn(p); } \
	};                                                             \
	using Name##Ptr = std::unique_ptr<Type, Name##Deleter>;

NFTPM_DEFINE_OWNER(Table, nftnl_table, nftnl_table_free)
NFTPM_DEFINE_OWNER(Chain, nftnl_chain, nftnl_chain_free)
NFTPM_DEFINE_OWNER(Rule, nftnl_rule, nftnl_rule_free)
NFTPM_DEFINE_OWNER(Expr, nftnl_expr, nftnl_expr_free)
NFTPM_DEFINE_OWNER(Set, nftnl_set, nftnl_set_free)
NFTPM_DEFINE_OWNER(SetElem, nftnl_set_elem, nftnl_set_elem_free)
NFTPM_DEFINE_OWNER(Udata, nftnl_udata_buf, nftnl_udata_buf_free)
NFTPM_DEFINE_OWNER(Gen, nftnl_gen, nftnl_gen_free)
NFTPM_DEFINE_OWNER(Obj, nftnl_obj, nftnl_obj_free)

#undef NFTPM_DEFINE_OWNER

} /* namespace nftpm::nft */
