/* SPDX-License-Identifier: Apache-2.0 */
#include "portmap/ruleset.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>

#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/udata.h>

#include "nft/expr.hpp"

namespace nftpm::ruleset {

namespace {

namespace expr = nft::expr;
using expr::Bytes;

/* ---- Names ------------------------------------------------------------- */

constexpr char kPrerouting[] = "prerouting";
constexpr char kOutput[] = "output";
constexpr char kPostrouting[] = "postrouting";
constexpr char kDispatch[] = "dispatch";
constexpr char kTableComment[] = "nft-portmap: container ports published by the nft-portmap CNI plugin";

constexpr std::size_t kCommentMax = 127; /* nft's 128 bytes, with the NUL */
constexpr std::size_t kMinCutId = 12;
constexpr std::size_t kCutSuffix = 9; /* "~" + 8 hex digits */

std::string tableText()
{
	return std::string("inet ") + kTableName;
}

/* ---- Types of map keys --------------------------------------------------- */

/* nft's datatype ids: only `nft list` reads them, to print keys. */
enum DataType : std::uint32_t {
	kIpv4Addr = 7,
	kIpv6Addr = 8,
	kInetProto = 12,
	kInetService = 13,
};
constexpr unsigned kTypeBits = 6;

struct MapSpec {
	MapId id;
	const char *name;
	std::vector<DataType> key;
	std::vector<DataType> data; /* empty: a verdict map */
	const char *comment;
};

const std::vector<MapSpec> &mapSpecs()
{
	static const std::vector<MapSpec> specs = {
		{ MapId::Ports4, "ports4", { kInetProto, kInetService }, { kIpv4Addr, kInetService },
		  "host port on every IPv4 address : container address . port" },
		{ MapId::Ports6, "ports6", { kInetProto, kInetService }, { kIpv6Addr, kInetService },
		  "host port on every IPv6 address : container address . port" },
		{ MapId::AddrPorts4, "addrports4", { kIpv4Addr, kInetProto, kInetService },
		  { kIpv4Addr, kInetService }, "host port on one IPv4 address : container address . port" },
		{ MapId::AddrPorts6, "addrports6", { kIpv6Addr, kInetProto, kInetService },
		  { kIpv6Addr, kInetService }, "host port on one IPv6 address : container address . port" },
		{ MapId::Guard4, "guard4", { kInetProto, kInetService }, {},
		  "host port on every IPv4 address, with conditions : attachment chain" },
		{ MapId::Guard6, "guard6", { kInetProto, kInetService }, {},
		  "host port on every IPv6 address, with conditions : attachment chain" },
		{ MapId::AddrGuard4, "addrguard4", { kIpv4Addr, kInetProto, kInetService }, {},
		  "host port on one IPv4 address, with conditions : attachment chain" },
		{ MapId::AddrGuard6, "addrguard6", { kIpv6Addr, kInetProto, kInetService }, {},
		  "host port on one IPv6 address, with conditions : attachment chain" },
		{ MapId::Masq4, "masq4", { kIpv4Addr, kIpv4Addr }, {},
		  "DNATed to this container address . from this source network" },
		{ MapId::Masq6, "masq6", { kIpv6Addr, kIpv6Addr }, {},
		  "DNATed to this container address . from this source network" },
	};
	return specs;
}

const MapSpec &spec(MapId m)
{
	for (const auto &s : mapSpecs())
		if (s.id == m)
			return s;
	std::abort();
}

bool isMasq(MapId m)
{
	return m == MapId::Masq4 || m == MapId::Masq6;
}

std::uint32_t fieldLen(DataType t)
{
	switch (t) {
	case kIpv4Addr:
		return 4;
	case kIpv6Addr:
		return 16;
	case kInetProto:
	case kInetService:
		return 4; /* 1 and 2 bytes, padded to a register of 4 */
	}
	std::abort();
}

/*
 * A concatenation's type, as nft writes it: the fields' ids packed in 6 bits
 * each, the first field in the highest bits.
 */
std::uint32_t keyType(const std::vector<DataType> &fields)
{
	std::uint32_t t = 0;
	for (DataType f : fields)
		t = (t << kTypeBits) | f;
	return t;
}

std::uint32_t keyLen(const std::vector<DataType> &fields)
{
	std::uint32_t n = 0;
	for (DataType f : fields)
		n += fieldLen(f);
	return n;
}

/* ---- Object construction ------------------------------------------------- */

nft::UdataPtr newUdata()
{
	nftnl_udata_buf *u = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
	if (!u)
		std::abort();
	return nft::UdataPtr(u);
}

/* A udata buffer holding one NUL-terminated comment TLV. */
nft::UdataPtr commentUdata(std::uint8_t type, const std::string &comment)
{
	auto u = newUdata();
	nftnl_udata_put_strz(u.get(), type, comment.c_str());
	return u;
}

nft::TablePtr newTable()
{
	nft::TablePtr t(nftnl_table_alloc());
	if (!t)
		std::abort();
	nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, kTableFamily);
	nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, kTableName);
	return t;
}

nft::ChainPtr newChain(const std::string &name)
{
	nft::ChainPtr c(nftnl_chain_alloc());
	if (!c)
		std::abort();
	nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, kTableFamily);
	nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, kTableName);
	nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, name.c_str());
	return c;
}

nft::ChainPtr newBaseChain(const char *name, std::uint32_t hook, int priority)
{
	nft::ChainPtr c = newChain(name);
	nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, "nat");
	nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, hook);
	nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, priority);
	nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
	return c;
}

nft::RulePtr newRule(const std::string &chain)
{
	nft::RulePtr r(nftnl_rule_alloc());
	if (!r)
		std::abort();
	nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, kTableFamily);
	nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, kTableName);
	nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain.c_str());
	return r;
}

/* A set object naming one of our sets or maps, to carry elements. */
nft::SetPtr setRef(const std::string &name)
{
	nft::SetPtr s(nftnl_set_alloc());
	if (!s)
		std::abort();
	nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, kTableFamily);
	nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, kTableName);
	nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
	return s;
}

/* ---- Byte encodings ------------------------------------------------------ */

Bytes addressBytes(const IpAddress &a)
{
	return Bytes(a.data(), a.data() + a.size());
}

Bytes be16(std::uint16_t v)
{
	return { static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v & 0xff) };
}

std::uint8_t nfproto(Family f)
{
	return f == Family::IPv4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
}

/* Offsets of the addresses in the IPv4 / IPv6 header. */
std::uint32_t daddrOffset(Family f)
{
	return f == Family::IPv4 ? 16 : 24;
}

std::uint32_t saddrOffset(Family f)
{
	return f == Family::IPv4 ? 12 : 8;
}

std::uint32_t addrLen(Family f)
{
	return f == Family::IPv4 ? 4 : 16;
}

const char *ipKeyword(Family f)
{
	return f == Family::IPv4 ? "ip" : "ip6";
}

/* ---- Rule fragments (each names the nft syntax it builds) ---------------- */

/* meta nfproto ipv4|ipv6 */
void matchNfproto(nftnl_rule *r, Family f)
{
	const std::uint8_t proto = nfproto(f);
	expr::meta(r, NFT_META_NFPROTO, NFT_REG_1);
	expr::cmp(r, NFT_REG_1, NFT_CMP_EQ, std::span(&proto, 1));
}

bool readNfproto(expr::Reader &rd, Family &f)
{
	if (!rd.meta(NFT_META_NFPROTO, NFT_REG_1))
		return false;
	auto v = rd.cmp(NFT_REG_1, NFT_CMP_EQ);
	if (!v || v->size() != 1)
		return false;
	if ((*v)[0] == NFPROTO_IPV4)
		f = Family::IPv4;
	else if ((*v)[0] == NFPROTO_IPV6)
		f = Family::IPv6;
	else
		return false;
	return true;
}

/* ip daddr|saddr <addr>, ip6 daddr|saddr <addr> */
void matchAddress(nftnl_rule *r, std::uint32_t offset, const IpAddress &a)
{
	expr::payload(r, NFT_PAYLOAD_NETWORK_HEADER, offset, static_cast<std::uint32_t>(a.size()),
		      NFT_REG_1);
	expr::cmp(r, NFT_REG_1, NFT_CMP_EQ, addressBytes(a));
}

std::optional<IpAddress> readAddress(expr::Reader &rd, Family f, std::uint32_t offset)
{
	const std::size_t start = rd.position();
	if (!rd.payload(NFT_PAYLOAD_NETWORK_HEADER, offset, addrLen(f), NFT_REG_1))
		return std::nullopt;
	auto v = rd.cmp(NFT_REG_1, NFT_CMP_EQ);
	if (!v || v->size() != addrLen(f)) {
		rd.rewind(start);
		return std::nullopt;
	}
	return IpAddress::fromBytes(f, v->data());
}

/* meta l4proto tcp */
void matchL4proto(nftnl_rule *r, Protocol p)
{
	const std::uint8_t proto = static_cast<std::uint8_t>(p);
	expr::meta(r, NFT_META_L4PROTO, NFT_REG_1);
	expr::cmp(r, NFT_REG_1, NFT_CMP_EQ, std::span(&proto, 1));
}

std::optional<Protocol> protocolFromNumber(std::uint8_t n)
{
	switch (n) {
	case static_cast<std::uint8_t>(Protocol::TCP):
		return Protocol::TCP;
	case static_cast<std::uint8_t>(Protocol::UDP):
		return Protocol::UDP;
	case static_cast<std::uint8_t>(Protocol::SCTP):
		return Protocol::SCTP;
	}
	return std::nullopt;
}

/* th dport 8080: the destination port of TCP, UDP and SCTP alike, at offset 2 */
void matchDport(nftnl_rule *r, std::uint16_t port)
{
	expr::payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
	expr::cmp(r, NFT_REG_1, NFT_CMP_EQ, be16(port));
}

/*
 * <key> vmap @map / <key> map @map: load the key's fields into consecutive
 * 4-byte registers starting at register 1 (an IPv6 address takes four),
 * then look it up. dreg: NFT_REG_VERDICT for a vmap; for a data map the
 * register the data goes to.
 */
void dispatchLookup(nftnl_rule *r, std::optional<Family> addrFamily, const std::string &map,
		    std::uint32_t dreg)
{
	std::uint32_t reg = NFT_REG32_00;
	if (addrFamily) {
		/* ip daddr / ip6 daddr */
		expr::payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddrOffset(*addrFamily),
			      addrLen(*addrFamily), NFT_REG_1);
		reg += addrLen(*addrFamily) / 4;
	}
	/* . meta l4proto */
	expr::meta(r, NFT_META_L4PROTO, reg == NFT_REG32_00 ? std::uint32_t{ NFT_REG_1 } : reg);
	/* . th dport */
	expr::payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg + 1);
	expr::lookup(r, NFT_REG_1, map, std::nullopt, dreg, false);
}

/*
 * The register of the port in a lookup's "address . port" data: right after
 * the address, which takes one 4-byte register (IPv4) or four (IPv6).
 */
std::uint32_t dataPortRegister(Family f)
{
	return NFT_REG32_00 + addrLen(f) / 4;
}

/* ct status dnat: (ct status & IPS_DST_NAT) != 0, ct status in host byte order */
void matchCtStatusDnat(nftnl_rule *r)
{
	std::uint32_t mask = IPS_DST_NAT, zero = 0;
	Bytes m(4), z(4);
	std::memcpy(m.data(), &mask, 4);
	std::memcpy(z.data(), &zero, 4);
	expr::ct(r, NFT_CT_STATUS, NFT_REG_1);
	expr::bitwise(r, NFT_REG_1, m);
	expr::cmp(r, NFT_REG_1, NFT_CMP_NEQ, z);
}

/* ---- Keys ---------------------------------------------------------------- */

Bytes protoPortKey(Protocol p, std::uint16_t port)
{
	/* meta l4proto fills a 4-byte register with 1 byte, th dport with 2. */
	return { static_cast<std::uint8_t>(p), 0, 0, 0, static_cast<std::uint8_t>(port >> 8),
		 static_cast<std::uint8_t>(port & 0xff), 0, 0 };
}

std::string protocolText(std::uint8_t n)
{
	auto p = protocolFromNumber(n);
	return p ? protocolName(*p) : std::to_string(n);
}

std::string hexText(const std::vector<std::uint8_t> &b)
{
	std::string out = "0x";
	char buf[3];
	for (std::uint8_t x : b) {
		std::snprintf(buf, sizeof(buf), "%02x", x);
		out += buf;
	}
	return out;
}

std::uint64_t fnv1a64(const std::string &text)
{
	std::uint64_t h = 0xcbf29ce484222325ull;
	for (unsigned char c : text) {
		h ^= c;
		h *= 0x100000001b3ull;
	}
	return h;
}

std::uint64_t fnv1a(const Attachment &a)
{
	/* The NULs keep ("ab", "c") and ("a", "bc") apart. */
	return fnv1a64(a.network + '\0' + a.containerId + '\0' + a.ifname);
}

std::string chainText(const std::string &chain)
{
	return tableText() + " " + chain;
}

std::string ruleText(const DnatRule &r)
{
	Family f = r.family();
	std::string s = std::string("meta nfproto ") + familyName(f);
	if (r.mapping.hostIP)
		s += std::string(" ") + ipKeyword(f) + " daddr " + r.mapping.hostIP->toString();
	s += std::string(" ") + protocolName(r.mapping.protocol) + " dport " +
	     std::to_string(r.mapping.hostPort) + " counter dnat " + ipKeyword(f) + " to ";
	if (f == Family::IPv4)
		s += r.containerAddr.toString();
	else
		s += "[" + r.containerAddr.toString() + "]";
	return s + ":" + std::to_string(r.mapping.containerPort);
}

const Conditions &conditionsFor(const AttachmentPlan &p, Family f)
{
	return f == Family::IPv4 ? p.conditionsV4 : p.conditionsV6;
}

const std::optional<IpPrefix> &containerFor(const AttachmentPlan &p, Family f)
{
	return f == Family::IPv4 ? p.containerV4 : p.containerV6;
}

bool hasRulesOf(const AttachmentPlan &p, Family f)
{
	return std::any_of(p.rules.begin(), p.rules.end(),
			   [f](const DnatRule &r) { return r.family() == f; });
}

/*
 * The source prefixes masqueraded towards one family's container address:
 * its subnet (hairpin: the container itself and its siblings) and, for
 * IPv4, 127.0.0.0/8 (127.0.0.1:hostPort from the host, with
 * route_localnet; ::1 cannot leave the host); masqAll: every source, /0.
 */
std::vector<IpPrefix> masqSources(const AttachmentPlan &p, Family f)
{
	const auto &c = containerFor(p, f);
	if (!p.snat || !c || !hasRulesOf(p, f))
		return {};
	if (p.masqAll)
		return { IpPrefix(f == Family::IPv4 ? *IpAddress::parse("0.0.0.0") : *IpAddress::parse("::"), 0) };
	std::vector<IpPrefix> out{ IpPrefix(c->network(), c->length()) };
	if (f == Family::IPv4)
		out.push_back(IpPrefix(*IpAddress::parse("127.0.0.0"), 8));
	return out;
}

/* "10.88.0.2 . 80" from a data map's data. */
std::string dataText(Family f, const std::vector<std::uint8_t> &data)
{
	if (data.size() != addrLen(f) + 4)
		return hexText(data);
	return IpAddress::fromBytes(f, data.data()).toString() + " . " +
	       std::to_string((data[addrLen(f)] << 8) | data[addrLen(f) + 1]);
}

Family familyOfMap(MapId m)
{
	switch (m) {
	case MapId::Ports4:
	case MapId::AddrPorts4:
	case MapId::Guard4:
	case MapId::AddrGuard4:
	case MapId::Masq4:
		return Family::IPv4;
	default:
		return Family::IPv6;
	}
}

/* Each data map and the guard vmap that shares its keys. */
constexpr std::pair<MapId, MapId> kGuards[] = {
	{ MapId::Ports4, MapId::Guard4 },
	{ MapId::Ports6, MapId::Guard6 },
	{ MapId::AddrPorts4, MapId::AddrGuard4 },
	{ MapId::AddrPorts6, MapId::AddrGuard6 },
};

MapId guardOf(MapId m)
{
	for (const auto &[data, guard] : kGuards)
		if (data == m)
			return guard;
	std::abort();
}

std::string elementText(const ElementKey &k, const std::string &data)
{
	return "add element " + tableText() + " " + k.setName() + " { " + k.text +
	       (data.empty() ? std::string() : " : " + data) + " }";
}

/* libnftnl's element getters only read, but their prototypes are not const. */
nftnl_set_elem *mut(const nftnl_set_elem *e)
{
	return const_cast<nftnl_set_elem *>(e);
}

/* A string TLV of udata, if present and NUL-terminated. */
std::optional<std::string> udataString(const void *data, std::uint32_t len, std::uint8_t type)
{
	if (!data || !len)
		return std::nullopt;
	struct Found {
		std::uint8_t type;
		std::optional<std::string> value;
	} found{ type, std::nullopt };
	nftnl_udata_parse(
		data, len,
		[](const nftnl_udata *attr, void *arg) -> int {
			auto *f = static_cast<Found *>(arg);
			if (nftnl_udata_type(attr) != f->type)
				return 0;
			std::uint8_t n = nftnl_udata_len(attr);
			const auto *v = static_cast<const char *>(nftnl_udata_get(attr));
			if (n == 0 || v[n - 1] != '\0')
				return 0;
			f->value = std::string(v, n - 1);
			return 0;
		},
		&found);
	return found.value;
}

/* "~" and 8 hex digits of FNV-1a-32 of the whole field: the end of a cut field. */
std::string cutSuffix(const std::string &field)
{
	std::uint32_t h = 2166136261u;
	for (unsigned char ch : field) {
		h ^= ch;
		h *= 16777619u;
	}
	char buf[16];
	std::snprintf(buf, sizeof(buf), "%c%08x", kCutMarker, h);
	return buf;
}

/* The fields of a comment, each cut to its share when the whole is too long. */
std::string commentOf(std::string net, std::string id, std::string ifn)
{
	auto text = [&] { return "net=" + net + " id=" + id + " if=" + ifn; };
	/*
	 * A cut field keeps a prefix and ends in "~" plus 8 hex digits of a
	 * hash of the whole field, so that matching a cut field (GC compares
	 * network names) cannot confuse two names with the same prefix.
	 */
	auto cut = [](std::string &field, std::size_t excess, std::size_t keep) {
		std::size_t target = field.size() > excess + kCutSuffix ? field.size() - excess - kCutSuffix : 0;
		target = std::max(target, keep);
		if (target + kCutSuffix < field.size())
			field = field.substr(0, target) + cutSuffix(field);
	};
	if (text().size() > kCommentMax)
		cut(id, text().size() - kCommentMax, kMinCutId);
	if (text().size() > kCommentMax)
		cut(net, text().size() - kCommentMax, 1);
	if (text().size() > kCommentMax)
		cut(ifn, text().size() - kCommentMax, 1);
	return text();
}


/* ---- The record: TLVs in a counter object's userdata --------------------- */

/* After NFTNL_UDATA_OBJ_COMMENT (0), which nft shows; nft ignores the others. */
enum RecordTlv : std::uint8_t {
	kRecFormat = 1, /* version, flags, number of objects */
	kRecV4 = 2,     /* container IPv4 address (4 bytes) and prefix length */
	kRecV6 = 3,     /* container IPv6 address (16 bytes) and prefix length */
	kRecRules = 4,  /* DNAT rules, in order (continued in the next objects) */
	kRecConditions = 5, /* conditionsHashV4, conditionsHashV6: 8 bytes each, big endian */
};
constexpr std::uint8_t kRecVersion = 1;
enum RecordFlag : std::uint8_t {
	kRecSnat = 1,
	kRecMasqAll = 2,
	kRecGuardedV4 = 4,
	kRecGuardedV6 = 8,
};
/* Rule entry: flags, protocol, host port, container port, [host address]. */
enum RuleFlag : std::uint8_t {
	kRuleV6 = 1,
	kRuleHostIP = 2,
};
constexpr std::size_t kUdataMax = NFT_USERDATA_MAXLEN;
constexpr std::size_t kTlvMax = 255;

Bytes encodeRule(const DnatRule &r)
{
	Bytes e;
	std::uint8_t flags = (r.family() == Family::IPv6 ? kRuleV6 : 0) |
			     (r.mapping.hostIP ? kRuleHostIP : 0);
	e.push_back(flags);
	e.push_back(static_cast<std::uint8_t>(r.mapping.protocol));
	for (std::uint16_t port : { r.mapping.hostPort, r.mapping.containerPort }) {
		Bytes b = be16(port);
		e.insert(e.end(), b.begin(), b.end());
	}
	if (r.mapping.hostIP) {
		Bytes a = addressBytes(*r.mapping.hostIP);
		e.insert(e.end(), a.begin(), a.end());
	}
	return e;
}

void putTlv(Bytes &out, std::uint8_t type, const Bytes &value)
{
	out.push_back(type);
	out.push_back(static_cast<std::uint8_t>(value.size()));
	out.insert(out.end(), value.begin(), value.end());
}

Bytes prefixBytes(const IpPrefix &p)
{
	Bytes b = addressBytes(p.address());
	b.push_back(p.length());
	return b;
}

/* The TLVs of one object's userdata, in order. */
std::vector<std::pair<std::uint8_t, Bytes>> parseTlvs(const nftnl_obj *o)
{
	std::vector<std::pair<std::uint8_t, Bytes>> out;
	auto *obj = const_cast<nftnl_obj *>(o);
	if (!nftnl_obj_is_set(obj, NFTNL_OBJ_USERDATA))
		return out;
	std::uint32_t len = 0;
	const auto *p = static_cast<const std::uint8_t *>(nftnl_obj_get_data(obj, NFTNL_OBJ_USERDATA, &len));
	for (std::uint32_t i = 0; p && i + 2 <= len;) {
		std::uint8_t type = p[i], n = p[i + 1];
		if (i + 2 + n > len)
			break;
		out.emplace_back(type, Bytes(p + i + 2, p + i + 2 + n));
		i += 2u + n;
	}
	return out;
}

nft::ObjPtr newRecordObject(const std::string &name)
{
	nft::ObjPtr o(nftnl_obj_alloc());
	if (!o)
		std::abort();
	nftnl_obj_set_u32(o.get(), NFTNL_OBJ_FAMILY, kTableFamily);
	nftnl_obj_set_str(o.get(), NFTNL_OBJ_TABLE, kTableName);
	nftnl_obj_set_str(o.get(), NFTNL_OBJ_NAME, name.c_str());
	nftnl_obj_set_u32(o.get(), NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	return o;
}

/* ---- Masquerade ------------------------------------------------------------ */

Bytes masqKeyBytes(const IpAddress &container, const IpPrefix &source)
{
	Bytes k = addressBytes(container);
	Bytes n = addressBytes(source.network());
	k.insert(k.end(), n.begin(), n.end());
	return k;
}

Bytes maskOfLength(Family f, unsigned length)
{
	Bytes m(addrLen(f), 0);
	for (unsigned bit = 0; bit < length && bit < addrLen(f) * 8; bit++)
		m[bit / 8] |= static_cast<std::uint8_t>(0x80 >> (bit % 8));
	return m;
}

std::string maskText(Family f, unsigned length)
{
	Bytes m = maskOfLength(f, length);
	return IpAddress::fromBytes(f, m.data()).toString();
}

} /* namespace */

/* ---- Public: names ---------------------------------------------------------- */

const char *mapName(MapId m)
{
	return spec(m).name;
}

std::string masqSetName(Family f, unsigned prefixLength)
{
	return std::string(f == Family::IPv4 ? "masq4-" : "masq6-") + std::to_string(prefixLength);
}

std::optional<MasqSet> parseMasqSetName(const std::string &name)
{
	Family f;
	if (name.rfind("masq4-", 0) == 0)
		f = Family::IPv4;
	else if (name.rfind("masq6-", 0) == 0)
		f = Family::IPv6;
	else
		return std::nullopt;
	std::string digits = name.substr(6);
	if (digits.empty() || digits.size() > 3 ||
	    !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
		return std::nullopt;
	unsigned n = static_cast<unsigned>(std::stoul(digits));
	if (n > addrLen(f) * 8 || masqSetName(f, n) != name)
		return std::nullopt;
	return MasqSet{ f, static_cast<std::uint8_t>(n) };
}

bool MasqSet::operator<(const MasqSet &o) const
{
	return std::pair(family == Family::IPv6, sourceLength) <
	       std::pair(o.family == Family::IPv6, o.sourceLength);
}

MapId dataMapOf(MapId m)
{
	for (const auto &[data, guard] : kGuards)
		if (guard == m)
			return data;
	return m;
}

std::string ElementKey::setName() const
{
	if (isMasq(map))
		return masqSetName(familyOfMap(map), sourceLength);
	return mapName(map);
}

bool ElementKey::operator<(const ElementKey &o) const
{
	return std::tie(map, sourceLength, key) < std::tie(o.map, o.sourceLength, o.key);
}

std::string attachmentName(const Attachment &a)
{
	char buf[20];
	std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(fnv1a(a)));
	return std::string("pm-") + buf;
}

std::string recordName(const Attachment &a, unsigned part)
{
	return part == 0 ? attachmentName(a) : attachmentName(a) + "-" + std::to_string(part);
}

std::string attachmentComment(const Attachment &a)
{
	return commentOf(a.network, a.containerId, a.ifname);
}

std::optional<std::string> chainComment(const nftnl_chain *c)
{
	if (!nftnl_chain_is_set(c, NFTNL_CHAIN_USERDATA))
		return std::nullopt;
	std::uint32_t len = 0;
	const void *data = nftnl_chain_get_data(c, NFTNL_CHAIN_USERDATA, &len);
	return udataString(data, len, NFTNL_UDATA_CHAIN_COMMENT);
}

std::optional<Attachment> parseAttachmentComment(const std::string &comment)
{
	/* Neither a network name, a container ID nor an ifname contains a space. */
	if (comment.rfind("net=", 0) != 0)
		return std::nullopt;
	std::size_t ifPos = comment.rfind(" if=");
	if (ifPos == std::string::npos)
		return std::nullopt;
	std::size_t idPos = comment.rfind(" id=", ifPos);
	if (idPos == std::string::npos || idPos < 4)
		return std::nullopt;
	Attachment a{ comment.substr(4, idPos - 4), comment.substr(idPos + 4, ifPos - idPos - 4),
		      comment.substr(ifPos + 4) };
	if (a.network.empty() || a.containerId.empty() || a.ifname.empty())
		return std::nullopt;
	return a;
}

bool commentFieldMatches(const std::string &fromComment, const std::string &value)
{
	if (fromComment == value)
		return true;
	if (fromComment.size() < kCutSuffix || fromComment[fromComment.size() - kCutSuffix] != kCutMarker)
		return false;
	std::string prefix = fromComment.substr(0, fromComment.size() - kCutSuffix);
	return value.size() > prefix.size() && value.compare(0, prefix.size(), prefix) == 0 &&
	       fromComment.compare(prefix.size(), kCutSuffix, cutSuffix(value)) == 0;
}

bool isCutComment(const Attachment &a)
{
	for (const std::string *f : { &a.network, &a.containerId, &a.ifname })
		if (f->size() >= kCutSuffix && (*f)[f->size() - kCutSuffix] == kCutMarker)
			return true;
	return false;
}

bool commentMatches(const Attachment &fromComment, const Attachment &a)
{
	return commentFieldMatches(fromComment.network, a.network) &&
	       commentFieldMatches(fromComment.containerId, a.containerId) &&
	       commentFieldMatches(fromComment.ifname, a.ifname);
}

std::optional<std::string> objectComment(const nftnl_obj *o)
{
	auto *obj = const_cast<nftnl_obj *>(o);
	if (!nftnl_obj_is_set(obj, NFTNL_OBJ_USERDATA))
		return std::nullopt;
	std::uint32_t len = 0;
	const void *data = nftnl_obj_get_data(obj, NFTNL_OBJ_USERDATA, &len);
	return udataString(data, len, NFTNL_UDATA_OBJ_COMMENT);
}

/* ---- Public: the plan -------------------------------------------------------- */

bool AttachmentPlan::hasChain() const
{
	return !chainRules().empty();
}

std::vector<DnatRule> AttachmentPlan::chainRules() const
{
	std::vector<DnatRule> out;
	for (const auto &r : rules)
		if (guarded(r.family()))
			out.push_back(r);
	return out;
}

AttachmentPlan makePlan(Attachment who, const std::vector<PortMapping> &mappings,
			std::optional<IpPrefix> containerV4, std::optional<IpPrefix> containerV6,
			bool snat, bool masqAll, Conditions conditionsV4, Conditions conditionsV6)
{
	AttachmentPlan p;
	p.who = std::move(who);
	p.containerV4 = containerV4;
	p.containerV6 = containerV6;
	p.snat = snat;
	p.masqAll = masqAll;
	p.conditionsV4 = std::move(conditionsV4);
	p.conditionsV6 = std::move(conditionsV6);
	p.guardedV4 = !p.conditionsV4.empty();
	p.guardedV6 = !p.conditionsV6.empty();
	p.conditionsHashV4 = p.guardedV4 ? fnv1a64(conditionsText(p.conditionsV4)) : 0;
	p.conditionsHashV6 = p.guardedV6 ? fnv1a64(conditionsText(p.conditionsV6)) : 0;

	for (const auto &m : mappings) {
		PortMapping mm = m;
		/* 0.0.0.0 and :: mean "every address", as no hostIP does. */
		if (mm.hostIP && mm.hostIP->isUnspecified())
			mm.hostIP.reset();
		for (const auto &c : { containerV4, containerV6 }) {
			if (!c)
				continue;
			/* A hostIP of the other family: this mapping is not for this family. */
			if (mm.hostIP && mm.hostIP->family() != c->family())
				continue;
			DnatRule r{ mm, c->address() };
			if (std::find(p.rules.begin(), p.rules.end(), r) == p.rules.end())
				p.rules.push_back(r);
		}
	}
	return p;
}

PlannedElement portElement(const DnatRule &r)
{
	PlannedElement e;
	ElementKey &k = e.key;
	Bytes pp = protoPortKey(r.mapping.protocol, r.mapping.hostPort);
	if (r.mapping.hostIP) {
		k.map = r.family() == Family::IPv4 ? MapId::AddrPorts4 : MapId::AddrPorts6;
		k.key = addressBytes(*r.mapping.hostIP);
		k.key.insert(k.key.end(), pp.begin(), pp.end());
	} else {
		k.map = r.family() == Family::IPv4 ? MapId::Ports4 : MapId::Ports6;
		k.key = pp;
	}
	k.text = keyText(k.map, k.key);
	/* container address . port, the port padded to a register of 4 bytes */
	e.data = addressBytes(r.containerAddr);
	Bytes port = be16(r.mapping.containerPort);
	e.data.insert(e.data.end(), { port[0], port[1], 0, 0 });
	e.dataText = dataText(r.family(), e.data);
	return e;
}

std::vector<PlannedElement> planElements(const AttachmentPlan &p)
{
	std::vector<PlannedElement> out;
	auto addUnique = [&out](PlannedElement e) {
		for (const auto &have : out)
			if (have.key == e.key)
				return;
		out.push_back(std::move(e));
	};
	for (const auto &r : p.rules)
		addUnique(portElement(r));
	for (const auto &r : p.rules) {
		if (!p.guarded(r.family()))
			continue;
		PlannedElement g;
		g.key = portElement(r).key;
		g.key.map = guardOf(g.key.map);
		g.dataText = "jump " + attachmentName(p.who);
		addUnique(std::move(g));
	}
	for (Family f : { Family::IPv4, Family::IPv6 }) {
		for (const auto &src : masqSources(p, f)) {
			PlannedElement m;
			m.key.map = f == Family::IPv4 ? MapId::Masq4 : MapId::Masq6;
			m.key.sourceLength = src.length();
			m.key.key = masqKeyBytes(containerFor(p, f)->address(), src);
			m.key.text = keyText(m.key.map, m.key.key);
			addUnique(std::move(m));
		}
	}
	return out;
}

std::vector<ElementKey> planKeys(const AttachmentPlan &p)
{
	std::vector<ElementKey> out;
	for (auto &e : planElements(p))
		out.push_back(std::move(e.key));
	return out;
}

std::vector<MasqSet> planMasqSets(const AttachmentPlan &p)
{
	std::vector<MasqSet> out;
	for (Family f : { Family::IPv4, Family::IPv6 })
		for (const auto &src : masqSources(p, f)) {
			MasqSet m{ f, src.length() };
			if (std::find(out.begin(), out.end(), m) == out.end())
				out.push_back(m);
		}
	return out;
}

std::string keyText(MapId m, const std::vector<std::uint8_t> &key)
{
	const MapSpec &s = spec(m);
	std::uint32_t len = 0;
	for (DataType f : s.key)
		len += fieldLen(f);
	if (key.size() != len)
		return hexText(key);
	std::string out;
	std::size_t off = 0;
	for (DataType f : s.key) {
		if (!out.empty())
			out += " . ";
		switch (f) {
		case kIpv4Addr:
			out += IpAddress::fromBytes(Family::IPv4, key.data() + off).toString();
			break;
		case kIpv6Addr:
			out += IpAddress::fromBytes(Family::IPv6, key.data() + off).toString();
			break;
		case kInetProto:
			out += protocolText(key[off]);
			break;
		case kInetService:
			out += std::to_string((key[off] << 8) | key[off + 1]);
			break;
		}
		off += fieldLen(f);
	}
	return out;
}

ElementKey elementKey(MapId m, std::uint8_t sourceLength, const nftnl_set_elem *e)
{
	ElementKey k;
	k.map = m;
	k.sourceLength = sourceLength;
	std::uint32_t len = 0;
	const void *data = nftnl_set_elem_get(mut(e), NFTNL_SET_ELEM_KEY, &len);
	if (data) {
		const auto *b = static_cast<const std::uint8_t *>(data);
		k.key.assign(b, b + len);
	}
	k.text = keyText(m, k.key);
	return k;
}

/* ---- Public: building ---------------------------------------------------------- */

void addSkeleton(nft::Batch &b, const Priorities &prio, bool repair,
		 const std::vector<MasqSet> &masqSets)
{
	/* table inet nft-portmap { comment "..." } */
	nft::TablePtr t = newTable();
	{
		auto ud = commentUdata(NFTNL_UDATA_TABLE_COMMENT, kTableComment);
		nftnl_table_set_data(t.get(), NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(ud.get()),
				     nftnl_udata_buf_len(ud.get()));
	}
	b.addTable(t.get(), !repair, "add table " + tableText());

	/*
	 * map <name> { type <key> : <data>; counter; comment "..." }
	 * map <name> { type <key> : verdict; comment "..." }
	 */
	for (const auto &ms : mapSpecs()) {
		if (isMasq(ms.id))
			continue;
		nft::SetPtr s = setRef(ms.name);
		nftnl_set_set_u32(s.get(), NFTNL_SET_ID, expr::nextSetId());
		nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, NFT_SET_MAP);
		nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, keyType(ms.key));
		nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, keyLen(ms.key));
		if (ms.data.empty()) {
			nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
		} else {
			nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, keyType(ms.data));
			nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_LEN, keyLen(ms.data));
			/* counter: every element counts the connections it DNATs */
			nftnl_expr *ctr = nftnl_expr_alloc("counter");
			if (!ctr)
				std::abort();
			nftnl_set_add_expr(s.get(), ctr);
		}
		/*
		 * What nft itself writes for such a map: key byte order
		 * (none for a concatenation), data byte order none, and the
		 * comment.
		 */
		auto ud = newUdata();
		nftnl_udata_put_u32(ud.get(), NFTNL_UDATA_SET_KEYBYTEORDER, 0);
		nftnl_udata_put_u32(ud.get(), NFTNL_UDATA_SET_DATABYTEORDER, 0);
		nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_SET_COMMENT, ms.comment);
		nftnl_set_set_data(s.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud.get()),
				   nftnl_udata_buf_len(ud.get()));
		b.addSet(s.get(), std::string("add map ") + tableText() + " " + ms.name);
	}

	/* chain prerouting { type nat hook prerouting priority dstnat; policy accept; } */
	auto pre = newBaseChain(kPrerouting, NF_INET_PRE_ROUTING, prio.dstnat);
	/* chain output { type nat hook output priority dstnat; policy accept; } */
	auto out = newBaseChain(kOutput, NF_INET_LOCAL_OUT, prio.dstnat);
	/* chain postrouting { type nat hook postrouting priority srcnat; policy accept; } */
	auto post = newBaseChain(kPostrouting, NF_INET_POST_ROUTING, prio.srcnat);
	auto dispatch = newChain(kDispatch);
	b.addChain(dispatch.get(), false, "add chain " + chainText(kDispatch));
	b.addChain(pre.get(), false, "add chain " + chainText(kPrerouting));
	b.addChain(out.get(), false, "add chain " + chainText(kOutput));
	b.addChain(post.get(), false, "add chain " + chainText(kPostrouting));
	/* Repairing: the static rules are written again from scratch. */
	if (repair)
		for (const char *chain : { kDispatch, kPrerouting, kOutput, kPostrouting })
			b.flushChain(kTableFamily, kTableName, chain,
				     std::string("flush chain ") + chainText(chain));

	/* prerouting, output: fib daddr type local jump dispatch */
	for (const char *chain : { kPrerouting, kOutput }) {
		auto r = newRule(chain);
		const std::uint32_t local = RTN_LOCAL;
		Bytes v(4);
		std::memcpy(v.data(), &local, 4);
		expr::fibDaddrType(r.get(), NFT_REG_1);
		expr::cmp(r.get(), NFT_REG_1, NFT_CMP_EQ, v);
		expr::verdict(r.get(), NFT_JUMP, kDispatch);
		b.addRule(r.get(), "add rule " + chainText(chain) + " fib daddr type local jump dispatch");
	}

	/*
	 * dispatch: hostIP-specific keys first; within each, the guard vmap
	 * (attachments with conditions) before the data map that claims the
	 * same key.
	 */
	for (Family f : { Family::IPv4, Family::IPv6 }) {
		const bool v4 = f == Family::IPv4;
		struct Lookup {
			MapId map;
			bool addr;
		};
		const Lookup lookups[] = {
			{ v4 ? MapId::AddrGuard4 : MapId::AddrGuard6, true },
			{ v4 ? MapId::AddrPorts4 : MapId::AddrPorts6, true },
			{ v4 ? MapId::Guard4 : MapId::Guard6, false },
			{ v4 ? MapId::Ports4 : MapId::Ports6, false },
		};
		for (const auto &l : lookups) {
			const std::string map = mapName(l.map);
			const bool vmap = spec(l.map).data.empty();
			const std::string key = l.addr ? std::string(ipKeyword(f)) + " daddr . meta l4proto . th dport"
						       : "meta l4proto . th dport";
			auto r = newRule(kDispatch);
			/* meta nfproto ipv4 */
			matchNfproto(r.get(), f);
			if (vmap) {
				/* <key> vmap @guard4 */
				dispatchLookup(r.get(), l.addr ? std::optional(f) : std::nullopt, map,
					       NFT_REG_VERDICT);
				b.addRule(r.get(), "add rule " + chainText(kDispatch) + " meta nfproto " +
							   familyName(f) + " " + key + " vmap @" + map);
			} else {
				/* dnat ip to <key> map @ports4: address in reg 1, port after it */
				dispatchLookup(r.get(), l.addr ? std::optional(f) : std::nullopt, map, NFT_REG_1);
				expr::dnat(r.get(), nfproto(f), NFT_REG_1, dataPortRegister(f));
				b.addRule(r.get(), "add rule " + chainText(kDispatch) + " meta nfproto " +
							   familyName(f) + " dnat " + ipKeyword(f) + " to " + key +
							   " map @" + map);
			}
		}
	}

	for (const auto &m : masqSets)
		addMasqRule(b, m);
}

void addMasqSet(nft::Batch &b, const MasqSet &m)
{
	/* set masq4-16 { type ipv4_addr . ipv4_addr; comment "..." } */
	const std::string name = masqSetName(m.family, m.sourceLength);
	const MapSpec &ms = spec(m.family == Family::IPv4 ? MapId::Masq4 : MapId::Masq6);
	nft::SetPtr s = setRef(name);
	nftnl_set_set_u32(s.get(), NFTNL_SET_ID, expr::nextSetId());
	nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, 0);
	nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, keyType(ms.key));
	nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, keyLen(ms.key));
	auto ud = newUdata();
	nftnl_udata_put_u32(ud.get(), NFTNL_UDATA_SET_KEYBYTEORDER, 0);
	nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_SET_COMMENT,
			     (std::string(ms.comment) + " /" + std::to_string(m.sourceLength)).c_str());
	nftnl_set_set_data(s.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud.get()),
			   nftnl_udata_buf_len(ud.get()));
	b.addSet(s.get(), "add set " + tableText() + " " + name);
	addMasqRule(b, m);
}

void addMasqRule(nft::Batch &b, const MasqSet &m)
{
	/*
	 * ct status dnat meta nfproto ipv4 ip daddr . ip saddr & <mask>
	 *   @masq4-<n> counter masquerade
	 */
	const Family f = m.family;
	const std::string name = masqSetName(f, m.sourceLength);
	auto r = newRule(kPostrouting);
	matchCtStatusDnat(r.get());
	matchNfproto(r.get(), f);
	const std::uint32_t sourceReg = NFT_REG32_00 + addrLen(f) / 4;
	expr::payload(r.get(), NFT_PAYLOAD_NETWORK_HEADER, daddrOffset(f), addrLen(f), NFT_REG_1);
	expr::payload(r.get(), NFT_PAYLOAD_NETWORK_HEADER, saddrOffset(f), addrLen(f), sourceReg);
	expr::bitwise(r.get(), sourceReg, maskOfLength(f, m.sourceLength));
	expr::lookup(r.get(), NFT_REG_1, name, std::nullopt, std::nullopt, false);
	expr::counter(r.get());
	expr::masquerade(r.get());
	b.addRule(r.get(), "add rule " + chainText(kPostrouting) + " ct status dnat " + ipKeyword(f) +
				   " daddr . " + ipKeyword(f) + " saddr & " + maskText(f, m.sourceLength) +
				   " @" + name + " counter masquerade");
}

std::vector<std::vector<std::uint8_t>> encodeRecord(const AttachmentPlan &p)
{
	Bytes head;
	{
		/* The comment, as nftnl_udata_put_strz writes it. */
		std::string c = attachmentComment(p.who);
		Bytes v(c.begin(), c.end());
		v.push_back(0);
		putTlv(head, NFTNL_UDATA_OBJ_COMMENT, v);
	}
	if (p.containerV4)
		putTlv(head, kRecV4, prefixBytes(*p.containerV4));
	if (p.containerV6)
		putTlv(head, kRecV6, prefixBytes(*p.containerV6));
	if (p.conditionsHashV4 || p.conditionsHashV6) {
		Bytes h;
		for (std::uint64_t v : { p.conditionsHashV4, p.conditionsHashV6 })
			for (int shift = 56; shift >= 0; shift -= 8)
				h.push_back(static_cast<std::uint8_t>(v >> shift));
		putTlv(head, kRecConditions, h);
	}
	const std::size_t formatSize = 2 + 3;

	/* Rule entries, packed into rule TLVs: the first in what the head leaves. */
	std::vector<Bytes> chunks(1);
	std::size_t room = kUdataMax - head.size() - formatSize - 2;
	for (const auto &r : p.rules) {
		Bytes e = encodeRule(r);
		if (chunks.back().size() + e.size() > std::min(room, kTlvMax)) {
			chunks.emplace_back();
			room = kUdataMax - 2;
		}
		chunks.back().insert(chunks.back().end(), e.begin(), e.end());
	}

	std::uint8_t flags = (p.snat ? kRecSnat : 0) | (p.masqAll ? kRecMasqAll : 0) |
			     (p.guardedV4 ? kRecGuardedV4 : 0) | (p.guardedV6 ? kRecGuardedV6 : 0);
	putTlv(head, kRecFormat, { kRecVersion, flags, static_cast<std::uint8_t>(chunks.size()) });
	std::vector<Bytes> out;
	for (const auto &chunk : chunks) {
		Bytes part = out.empty() ? head : Bytes();
		putTlv(part, kRecRules, chunk);
		out.push_back(std::move(part));
	}
	return out;
}

Expected<unsigned, std::string> recordParts(const nftnl_obj *first)
{
	for (const auto &[type, value] : parseTlvs(first))
		if (type == kRecFormat) {
			if (value.size() != 3 || value[0] != kRecVersion || value[2] == 0)
				return Unexpected(std::string("record of an unknown format"));
			return static_cast<unsigned>(value[2]);
		}
	return Unexpected(std::string("not an nft-portmap record (no format in its userdata)"));
}

Expected<AttachmentPlan, std::string> decodeRecord(const Attachment &who,
						   const std::vector<const nftnl_obj *> &objects)
{
	AttachmentPlan p;
	p.who = who;
	if (objects.empty())
		return Unexpected(std::string("record without objects"));
	Bytes rules;
	bool haveFormat = false;
	for (std::size_t i = 0; i < objects.size(); i++) {
		for (const auto &[type, value] : parseTlvs(objects[i])) {
			if (type == kRecRules) {
				rules.insert(rules.end(), value.begin(), value.end());
				continue;
			}
			if (i != 0)
				continue;
			if (type == kRecFormat && value.size() == 3) {
				haveFormat = true;
				p.snat = value[1] & kRecSnat;
				p.masqAll = value[1] & kRecMasqAll;
				p.guardedV4 = value[1] & kRecGuardedV4;
				p.guardedV6 = value[1] & kRecGuardedV6;
			} else if (type == kRecV4 && value.size() == 5 && value[4] <= 32) {
				p.containerV4 = IpPrefix(IpAddress::fromBytes(Family::IPv4, value.data()), value[4]);
			} else if (type == kRecV6 && value.size() == 17 && value[16] <= 128) {
				p.containerV6 = IpPrefix(IpAddress::fromBytes(Family::IPv6, value.data()), value[16]);
			} else if (type == kRecConditions && value.size() == 16) {
				for (std::size_t b = 0; b < 8; b++) {
					p.conditionsHashV4 = (p.conditionsHashV4 << 8) | value[b];
					p.conditionsHashV6 = (p.conditionsHashV6 << 8) | value[8 + b];
				}
			}
		}
	}
	if (!haveFormat)
		return Unexpected(std::string("record without its format"));

	for (std::size_t i = 0; i < rules.size();) {
		if (i + 6 > rules.size())
			return Unexpected(std::string("record: truncated rule entry"));
		std::uint8_t flags = rules[i];
		Family f = flags & kRuleV6 ? Family::IPv6 : Family::IPv4;
		const auto &c = f == Family::IPv4 ? p.containerV4 : p.containerV6;
		auto proto = protocolFromNumber(rules[i + 1]);
		if (!c || !proto)
			return Unexpected(std::string("record: rule entry of a family without container address, or of an unknown protocol"));
		DnatRule r;
		r.containerAddr = c->address();
		r.mapping.protocol = *proto;
		r.mapping.hostPort = static_cast<std::uint16_t>((rules[i + 2] << 8) | rules[i + 3]);
		r.mapping.containerPort = static_cast<std::uint16_t>((rules[i + 4] << 8) | rules[i + 5]);
		i += 6;
		if (flags & kRuleHostIP) {
			if (i + addrLen(f) > rules.size())
				return Unexpected(std::string("record: truncated host address"));
			r.mapping.hostIP = IpAddress::fromBytes(f, rules.data() + i);
			i += addrLen(f);
		}
		p.rules.push_back(r);
	}
	return p;
}

void addRecord(nft::Batch &b, const AttachmentPlan &p)
{
	const auto parts = encodeRecord(p);
	for (std::size_t i = 0; i < parts.size(); i++) {
		/* counter pm-<hash>[-i] { comment "net=... id=... if=..." } */
		const std::string objName = recordName(p.who, static_cast<unsigned>(i));
		nft::ObjPtr o = newRecordObject(objName);
		nftnl_obj_set_data(o.get(), NFTNL_OBJ_USERDATA, parts[i].data(),
				   static_cast<std::uint32_t>(parts[i].size()));
		b.addObject(o.get(), true, "add counter " + tableText() + " " + objName);
	}
}

void addChain(nft::Batch &b, const AttachmentPlan &p, bool chainExists)
{
	const std::string name = attachmentName(p.who);
	if (!p.hasChain())
		return;
	if (chainExists) {
		b.flushChain(kTableFamily, kTableName, name, "flush chain " + chainText(name));
	} else {
		/* chain pm-<hash> { comment "net=... id=... if=..." } */
		auto c = newChain(name);
		auto ud = commentUdata(NFTNL_UDATA_CHAIN_COMMENT, attachmentComment(p.who));
		nftnl_chain_set_data(c.get(), NFTNL_CHAIN_USERDATA, nftnl_udata_buf_data(ud.get()),
				     nftnl_udata_buf_len(ud.get()));
		b.addChain(c.get(), true, "add chain " + chainText(name));
	}
	for (const auto &dr : p.chainRules()) {
		const Family f = dr.family();
		/*
		 * meta nfproto ipv4 [ip daddr H] meta l4proto tcp th dport P
		 *   <conditions> counter dnat ip to A:p
		 */
		auto r = newRule(name);
		matchNfproto(r.get(), f);
		if (dr.mapping.hostIP)
			matchAddress(r.get(), daddrOffset(f), *dr.mapping.hostIP);
		matchL4proto(r.get(), dr.mapping.protocol);
		matchDport(r.get(), dr.mapping.hostPort);
		addConditionExprs(b, r.get(), conditionsFor(p, f));
		expr::counter(r.get());
		expr::immediate(r.get(), NFT_REG_1, addressBytes(dr.containerAddr));
		expr::immediate(r.get(), NFT_REG_2, be16(dr.mapping.containerPort));
		expr::dnat(r.get(), nfproto(f), NFT_REG_1, NFT_REG_2);
		std::string text = ruleText(dr);
		const Conditions &conds = conditionsFor(p, f);
		if (!conds.empty())
			text.insert(text.find(" counter"), " " + conditionsText(conds));
		b.addRule(r.get(), "add rule " + chainText(name) + " " + text);
	}
	/* accept: conditions that did not hold leave the packet alone (the key's claim in the data map must not DNAT it) */
	auto r = newRule(name);
	expr::verdict(r.get(), NF_ACCEPT);
	b.addRule(r.get(), "add rule " + chainText(name) + " accept");
}

void addElements(nft::Batch &b, const std::vector<PlannedElement> &elements,
		 const std::string &comment, const std::string &chain)
{
	for (const auto &pe : elements) {
		const ElementKey &k = pe.key;
		nft::SetPtr s = setRef(k.setName());
		nftnl_set_elem *e = nftnl_set_elem_alloc();
		if (!e)
			std::abort();
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, k.key.data(), static_cast<std::uint32_t>(k.key.size()));
		std::string data = pe.dataText;
		if (!pe.data.empty()) {
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, pe.data.data(),
					   static_cast<std::uint32_t>(pe.data.size()));
		} else if (!isMasq(k.map)) {
			/* a guard: jump to the attachment's chain */
			nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, static_cast<std::uint32_t>(NFT_JUMP));
			nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, chain.c_str());
			data = "jump " + chain;
		}
		auto ud = commentUdata(NFTNL_UDATA_SET_ELEM_COMMENT, comment);
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(ud.get()),
				   nftnl_udata_buf_len(ud.get()));
		nftnl_set_elem_add(s.get(), e);
		b.addElements(s.get(), true, elementText(k, data));
	}
}

void deleteElements(nft::Batch &b, const std::vector<ElementKey> &keys)
{
	/* One message per element, so that a refusal names the element. */
	for (const auto &k : keys) {
		nft::SetPtr s = setRef(k.setName());
		nftnl_set_elem *e = nftnl_set_elem_alloc();
		if (!e)
			std::abort();
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, k.key.data(),
				   static_cast<std::uint32_t>(k.key.size()));
		nftnl_set_elem_add(s.get(), e);
		b.deleteElements(s.get(), "delete element " + tableText() + " " + k.setName() + " { " +
						  k.text + " }");
	}
}

void deleteRecord(nft::Batch &b, const Attachment &who, unsigned parts)
{
	for (unsigned i = 0; i < parts; i++)
		deleteRecordObject(b, recordName(who, i));
}

void deleteRecordObject(nft::Batch &b, const std::string &name)
{
	nft::ObjPtr o = newRecordObject(name);
	b.deleteObject(o.get(), "delete counter " + tableText() + " " + name);
}

void deleteChain(nft::Batch &b, const std::string &chain)
{
	b.flushChain(kTableFamily, kTableName, chain, "flush chain " + chainText(chain));
	auto c = newChain(chain);
	b.deleteChain(c.get(), "delete chain " + chainText(chain));
}

/* ---- Public: reading back --------------------------------------------------------- */

Expected<DnatRule, std::string> decodeDnatRule(const nftnl_rule *rule)
{
	expr::Reader rd(rule);
	auto fail = [&rd](const char *expected) {
		return Unexpected("not an nft-portmap DNAT rule: expected " + std::string(expected) +
				  " at expression " + std::to_string(rd.position() + 1) + ", found " +
				  rd.nextName());
	};

	Family f;
	if (!readNfproto(rd, f))
		return fail("meta nfproto ipv4|ipv6");
	DnatRule out;
	out.mapping.hostIP = readAddress(rd, f, daddrOffset(f));

	if (!rd.meta(NFT_META_L4PROTO, NFT_REG_1))
		return fail("meta l4proto");
	auto proto = rd.cmp(NFT_REG_1, NFT_CMP_EQ);
	if (!proto || proto->size() != 1)
		return fail("a compare with the protocol");
	auto protocol = protocolFromNumber((*proto)[0]);
	if (!protocol)
		return Unexpected("not an nft-portmap DNAT rule: protocol " + std::to_string((*proto)[0]) +
				  " is not tcp, udp or sctp");
	out.mapping.protocol = *protocol;

	if (!rd.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1))
		return fail("th dport");
	auto port = rd.cmp(NFT_REG_1, NFT_CMP_EQ);
	if (!port || port->size() != 2)
		return fail("a compare with the host port");
	out.mapping.hostPort = static_cast<std::uint16_t>(((*port)[0] << 8) | (*port)[1]);

	skipConditionExprs(rd);
	if (!rd.counter())
		return fail("a condition or counter");

	auto addr = rd.immediate(NFT_REG_1);
	if (!addr || addr->size() != addrLen(f))
		return fail("the container address");
	out.containerAddr = IpAddress::fromBytes(f, addr->data());
	auto cport = rd.immediate(NFT_REG_2);
	if (!cport || cport->size() != 2)
		return fail("the container port");
	out.mapping.containerPort = static_cast<std::uint16_t>(((*cport)[0] << 8) | (*cport)[1]);

	auto natFamily = rd.dnat(NFT_REG_1, NFT_REG_2);
	if (!natFamily)
		return fail(f == Family::IPv4 ? "dnat ip to" : "dnat ip6 to");
	if (*natFamily != nfproto(f))
		return Unexpected(std::string("not an nft-portmap DNAT rule: dnat of NFPROTO ") +
				  std::to_string(*natFamily) + " in an " + familyName(f) + " rule");
	if (!rd.done())
		return fail("the end of the rule");
	return out;
}

bool isAcceptRule(const nftnl_rule *rule)
{
	expr::Reader rd(rule);
	return rd.verdict(NF_ACCEPT) && rd.done();
}

Expected<MasqSet, std::string> decodeMasqRule(const nftnl_rule *rule)
{
	expr::Reader rd(rule);
	auto fail = [&rd](const char *expected) {
		return Unexpected("not an nft-portmap masquerade rule: expected " + std::string(expected) +
				  " at expression " + std::to_string(rd.position() + 1) + ", found " +
				  rd.nextName());
	};

	/* ct status dnat */
	if (!rd.ct(NFT_CT_STATUS, NFT_REG_1) || !rd.bitwise(NFT_REG_1) || !rd.cmp(NFT_REG_1, NFT_CMP_NEQ))
		return fail("ct status dnat");
	Family f;
	if (!readNfproto(rd, f))
		return fail("meta nfproto ipv4|ipv6");
	const std::uint32_t sourceReg = NFT_REG32_00 + addrLen(f) / 4;
	if (!rd.payload(NFT_PAYLOAD_NETWORK_HEADER, daddrOffset(f), addrLen(f), NFT_REG_1))
		return fail(f == Family::IPv4 ? "ip daddr" : "ip6 daddr");
	if (!rd.payload(NFT_PAYLOAD_NETWORK_HEADER, saddrOffset(f), addrLen(f), sourceReg))
		return fail(f == Family::IPv4 ? "ip saddr" : "ip6 saddr");
	auto mask = rd.bitwise(sourceReg);
	if (!mask)
		return fail("a source prefix mask");
	auto l = rd.lookup(NFT_REG_1);
	if (!l || l->dreg || l->invert)
		return fail("a lookup in a masq set");
	auto m = parseMasqSetName(l->set);
	if (!m || m->family != f || *mask != maskOfLength(f, m->sourceLength))
		return Unexpected("not an nft-portmap masquerade rule: set " + l->set +
				  " does not match the rule's family and mask");
	if (!rd.counter())
		return fail("counter");
	if (!rd.masquerade())
		return fail("masquerade");
	if (!rd.done())
		return fail("the end of the rule");
	return *m;
}

std::vector<std::uint8_t> elementData(const nftnl_set_elem *e)
{
	if (!nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA))
		return {};
	std::uint32_t len = 0;
	const auto *d = static_cast<const std::uint8_t *>(nftnl_set_elem_get(mut(e), NFTNL_SET_ELEM_DATA, &len));
	if (!d)
		return {};
	return std::vector<std::uint8_t>(d, d + len);
}

std::string elementDataText(MapId m, const nftnl_set_elem *e)
{
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN)) {
		const char *chain = nftnl_set_elem_get_str(mut(e), NFTNL_SET_ELEM_CHAIN);
		return std::string("jump ") + (chain ? chain : "?");
	}
	auto d = elementData(e);
	if (d.empty())
		return {};
	return dataText(familyOfMap(m), d);
}

std::optional<DnatRule> elementDnat(MapId m, const nftnl_set_elem *e)
{
	if (m != MapId::Ports4 && m != MapId::Ports6 && m != MapId::AddrPorts4 && m != MapId::AddrPorts6)
		return std::nullopt;
	const Family f = familyOfMap(m);
	auto d = elementData(e);
	ElementKey k = elementKey(m, 0, e);
	const bool addr = m == MapId::AddrPorts4 || m == MapId::AddrPorts6;
	const std::size_t keyLen = (addr ? addrLen(f) : 0) + 8;
	if (d.size() != addrLen(f) + 4 || k.key.size() != keyLen)
		return std::nullopt;
	const std::uint8_t *pp = k.key.data() + (addr ? addrLen(f) : 0);
	auto proto = protocolFromNumber(pp[0]);
	if (!proto)
		return std::nullopt;
	DnatRule r;
	r.containerAddr = IpAddress::fromBytes(f, d.data());
	r.mapping.protocol = *proto;
	r.mapping.hostPort = static_cast<std::uint16_t>((pp[4] << 8) | pp[5]);
	r.mapping.containerPort = static_cast<std::uint16_t>((d[addrLen(f)] << 8) | d[addrLen(f) + 1]);
	if (addr)
		r.mapping.hostIP = IpAddress::fromBytes(f, k.key.data());
	return r;
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> elementCounter(const nftnl_set_elem *e)
{
	std::optional<std::pair<std::uint64_t, std::uint64_t>> out;
	nftnl_set_elem_expr_foreach(
		mut(e),
		[](nftnl_expr *x, void *data) {
			const char *name = nftnl_expr_get_str(x, NFTNL_EXPR_NAME);
			if (name && std::strcmp(name, "counter") == 0)
				*static_cast<std::optional<std::pair<std::uint64_t, std::uint64_t>> *>(data) =
					std::pair(nftnl_expr_get_u64(x, NFTNL_EXPR_CTR_PACKETS),
						  nftnl_expr_get_u64(x, NFTNL_EXPR_CTR_BYTES));
			return 0;
		},
		&out);
	return out;
}

std::optional<std::string> elementComment(const nftnl_set_elem *e)
{
	if (!nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_USERDATA))
		return std::nullopt;
	std::uint32_t len = 0;
	const void *data = nftnl_set_elem_get(mut(e), NFTNL_SET_ELEM_USERDATA, &len);
	return udataString(data, len, NFTNL_UDATA_SET_ELEM_COMMENT);
}

} /* namespace nftpm::ruleset */
