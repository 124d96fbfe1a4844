/* SPDX-License-Identifier: Apache-2.0 */
#include "portmap/ruleset.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>

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
	std::vector<DataType> fields;
	const char *comment;
};

const std::vector<MapSpec> &mapSpecs()
{
	static const std::vector<MapSpec> specs = {
		{ MapId::Ports4, "ports4", { kInetProto, kInetService },
		  "host port on every IPv4 address : attachment chain" },
		{ MapId::Ports6, "ports6", { kInetProto, kInetService },
		  "host port on every IPv6 address : attachment chain" },
		{ MapId::AddrPorts4, "addrports4", { kIpv4Addr, kInetProto, kInetService },
		  "host port on one IPv4 address : attachment chain" },
		{ MapId::AddrPorts6, "addrports6", { kIpv6Addr, kInetProto, kInetService },
		  "host port on one IPv6 address : attachment chain" },
		{ MapId::Masq4, "masq4", { kIpv4Addr },
		  "DNATed to this container address : its masquerade chain" },
		{ MapId::Masq6, "masq6", { kIpv6Addr },
		  "DNATed to this container address : its masquerade chain" },
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

/* A set object naming one of our maps, to carry elements. */
nft::SetPtr mapRef(MapId m)
{
	nft::SetPtr s(nftnl_set_alloc());
	if (!s)
		std::abort();
	nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, kTableFamily);
	nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, kTableName);
	nftnl_set_set_str(s.get(), NFTNL_SET_NAME, mapName(m));
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

Bytes prefixMask(const IpPrefix &p)
{
	Bytes m(p.address().size(), 0);
	for (unsigned bit = 0; bit < p.length(); bit++)
		m[bit / 8] |= static_cast<std::uint8_t>(0x80 >> (bit % 8));
	return m;
}

bool isFullLength(const IpPrefix &p)
{
	return p.length() == p.address().size() * 8;
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

/* ip saddr 10.88.0.0/16: (saddr & 255.255.0.0) == 10.88.0.0; a /32 is a plain compare. */
void matchSourcePrefix(nftnl_rule *r, const IpPrefix &p)
{
	Family f = p.family();
	expr::payload(r, NFT_PAYLOAD_NETWORK_HEADER, saddrOffset(f), addrLen(f), NFT_REG_1);
	if (!isFullLength(p))
		expr::bitwise(r, NFT_REG_1, prefixMask(p));
	expr::cmp(r, NFT_REG_1, NFT_CMP_EQ, addressBytes(p.network()));
}

std::optional<IpPrefix> readSourcePrefix(expr::Reader &rd, Family f)
{
	const std::size_t start = rd.position();
	if (!rd.payload(NFT_PAYLOAD_NETWORK_HEADER, saddrOffset(f), addrLen(f), NFT_REG_1))
		return std::nullopt;
	unsigned length = addrLen(f) * 8;
	if (auto mask = rd.bitwise(NFT_REG_1)) {
		/* Only a prefix mask: ones, then zeros. */
		length = 0;
		bool zeros = false;
		for (std::uint8_t byte : *mask)
			for (int bit = 7; bit >= 0; bit--) {
				bool one = byte & (1u << bit);
				if (one && zeros) {
					rd.rewind(start);
					return std::nullopt;
				}
				zeros = zeros || !one;
				length += one;
			}
		if (mask->size() != addrLen(f)) {
			rd.rewind(start);
			return std::nullopt;
		}
	}
	auto v = rd.cmp(NFT_REG_1, NFT_CMP_EQ);
	if (!v || v->size() != addrLen(f)) {
		rd.rewind(start);
		return std::nullopt;
	}
	IpPrefix p(IpAddress::fromBytes(f, v->data()), static_cast<std::uint8_t>(length));
	if (p.network() != p.address()) {
		rd.rewind(start);
		return std::nullopt;
	}
	return p;
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
 * <key> vmap @map: load the key's fields into consecutive 4-byte registers
 * starting at register 1 (an IPv6 address takes four), then look it up.
 */
void dispatchLookup(nftnl_rule *r, std::optional<Family> addrFamily, const char *map)
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
	expr::lookup(r, NFT_REG_1, map, std::nullopt, NFT_REG_VERDICT, false);
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

std::uint64_t fnv1a(const Attachment &a)
{
	std::uint64_t h = 0xcbf29ce484222325ull;
	auto mixByte = [&h](unsigned char c) {
		h ^= c;
		h *= 0x100000001b3ull;
	};
	auto mix = [&mixByte](const std::string &s) {
		for (unsigned char c : s)
			mixByte(c);
	};
	/* The NULs keep ("ab", "c") and ("a", "bc") apart. */
	mix(a.network);
	mixByte(0);
	mix(a.containerId);
	mixByte(0);
	mix(a.ifname);
	return h;
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

/* The masquerade rules of one family: source prefixes, nullopt for "every source". */
std::vector<std::optional<IpPrefix>> masqSources(const AttachmentPlan &p, Family f)
{
	const auto &c = containerFor(p, f);
	if (!p.snat || !c || !hasRulesOf(p, f))
		return {};
	if (p.masqAll)
		return { std::nullopt };
	/* Hairpin: the container itself and its subnet siblings. */
	std::vector<std::optional<IpPrefix>> out{ IpPrefix(c->network(), c->length()) };
	/* 127.0.0.1:hostPort from the host (with route_localnet); ::1 cannot leave the host. */
	if (f == Family::IPv4)
		out.push_back(IpPrefix(*IpAddress::parse("127.0.0.0"), 8));
	return out;
}

void addElement(nft::Batch &b, const ElementKey &k, const std::string &target,
		const std::string &comment)
{
	nft::SetPtr s = mapRef(k.map);
	nftnl_set_elem *e = nftnl_set_elem_alloc();
	if (!e)
		std::abort();
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, k.key.data(), static_cast<std::uint32_t>(k.key.size()));
	nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, static_cast<std::uint32_t>(NFT_JUMP));
	nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, target.c_str());
	auto ud = commentUdata(NFTNL_UDATA_SET_ELEM_COMMENT, comment);
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(ud.get()),
			   nftnl_udata_buf_len(ud.get()));
	nftnl_set_elem_add(s.get(), e);
	b.addElements(s.get(), true,
		      "add element " + tableText() + " " + mapName(k.map) + " { " + k.text +
			      " : jump " + target + " }");
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

} /* namespace */

/* ---- Public: names ---------------------------------------------------------- */

const char *mapName(MapId m)
{
	return spec(m).name;
}

std::string dnatChainName(const Attachment &a)
{
	char buf[20];
	std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(fnv1a(a)));
	return std::string("pm-") + buf;
}

std::string masqChainName(const Attachment &a)
{
	return dnatChainName(a) + "-masq";
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

bool commentMatches(const Attachment &fromComment, const Attachment &a)
{
	return commentFieldMatches(fromComment.network, a.network) &&
	       commentFieldMatches(fromComment.containerId, a.containerId) &&
	       commentFieldMatches(fromComment.ifname, a.ifname);
}

/* ---- Public: the plan -------------------------------------------------------- */

bool AttachmentPlan::hasMasquerade() const
{
	return !masqSources(*this, Family::IPv4).empty() || !masqSources(*this, Family::IPv6).empty();
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

ElementKey portKey(const DnatRule &r)
{
	ElementKey k;
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
	return k;
}

ElementKey masqKey(const IpAddress &containerAddr)
{
	ElementKey k;
	k.map = containerAddr.family() == Family::IPv4 ? MapId::Masq4 : MapId::Masq6;
	k.key = addressBytes(containerAddr);
	k.text = keyText(k.map, k.key);
	return k;
}

std::vector<ElementKey> planKeys(const AttachmentPlan &p)
{
	std::vector<ElementKey> out;
	auto addUnique = [&out](ElementKey k) {
		if (std::find(out.begin(), out.end(), k) == out.end())
			out.push_back(std::move(k));
	};
	for (const auto &r : p.rules)
		addUnique(portKey(r));
	for (Family f : { Family::IPv4, Family::IPv6 })
		if (!masqSources(p, f).empty())
			addUnique(masqKey(containerFor(p, f)->address()));
	return out;
}

std::string keyText(MapId m, const std::vector<std::uint8_t> &key)
{
	const MapSpec &s = spec(m);
	if (key.size() != keyLen(s.fields))
		return hexText(key);
	std::string out;
	std::size_t off = 0;
	for (DataType f : s.fields) {
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

std::string keyText(MapId m, const nftnl_set_elem *e)
{
	std::uint32_t len = 0;
	const void *data = nftnl_set_elem_get(mut(e), NFTNL_SET_ELEM_KEY, &len);
	if (!data)
		return "?";
	const auto *b = static_cast<const std::uint8_t *>(data);
	return keyText(m, std::vector<std::uint8_t>(b, b + len));
}

/* ---- Public: building ---------------------------------------------------------- */

void addSkeleton(nft::Batch &b, const Priorities &prio, bool repair)
{
	/* table inet nft-portmap { comment "..." } */
	nft::TablePtr t = newTable();
	{
		auto ud = commentUdata(NFTNL_UDATA_TABLE_COMMENT, kTableComment);
		nftnl_table_set_data(t.get(), NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(ud.get()),
				     nftnl_udata_buf_len(ud.get()));
	}
	b.addTable(t.get(), !repair, "add table " + tableText());

	/* map <name> { type <key> : verdict; comment "..." } */
	for (const auto &ms : mapSpecs()) {
		nft::SetPtr s = mapRef(ms.id);
		nftnl_set_set_u32(s.get(), NFTNL_SET_ID, expr::nextSetId());
		nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, NFT_SET_MAP);
		nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, keyType(ms.fields));
		nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, keyLen(ms.fields));
		nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
		/*
		 * What nft itself writes for a "type ... : verdict" map: key
		 * byte order (big endian for one address, none for a
		 * concatenation), data byte order none, and the comment.
		 */
		auto ud = newUdata();
		nftnl_udata_put_u32(ud.get(), NFTNL_UDATA_SET_KEYBYTEORDER,
				    ms.fields.size() == 1 ? 2u : 0u);
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
	 * dispatch: hostIP-specific maps first. Elements jump (not goto), so
	 * when an attachment chain does not DNAT (its conditions did not
	 * hold), the next lookup is still tried.
	 */
	for (Family f : { Family::IPv4, Family::IPv6 }) {
		const char *addrMap = mapName(f == Family::IPv4 ? MapId::AddrPorts4 : MapId::AddrPorts6);
		const char *anyMap = mapName(f == Family::IPv4 ? MapId::Ports4 : MapId::Ports6);

		/* ip daddr . meta l4proto . th dport vmap @addrports4 */
		auto r1 = newRule(kDispatch);
		matchNfproto(r1.get(), f);
		dispatchLookup(r1.get(), f, addrMap);
		b.addRule(r1.get(), "add rule " + chainText(kDispatch) + " " + ipKeyword(f) +
					    " daddr . meta l4proto . th dport vmap @" + addrMap);

		/* meta nfproto ipv4 meta l4proto . th dport vmap @ports4 */
		auto r2 = newRule(kDispatch);
		matchNfproto(r2.get(), f);
		dispatchLookup(r2.get(), std::nullopt, anyMap);
		b.addRule(r2.get(), "add rule " + chainText(kDispatch) + " meta nfproto " +
					    familyName(f) + " meta l4proto . th dport vmap @" + anyMap);
	}

	/* postrouting: ct status dnat ip daddr vmap @masq4 (and ip6) */
	for (Family f : { Family::IPv4, Family::IPv6 }) {
		const char *map = mapName(f == Family::IPv4 ? MapId::Masq4 : MapId::Masq6);
		auto r = newRule(kPostrouting);
		matchCtStatusDnat(r.get());
		matchNfproto(r.get(), f);
		expr::payload(r.get(), NFT_PAYLOAD_NETWORK_HEADER, daddrOffset(f), addrLen(f), NFT_REG_1);
		expr::lookup(r.get(), NFT_REG_1, map, std::nullopt, NFT_REG_VERDICT, false);
		b.addRule(r.get(), "add rule " + chainText(kPostrouting) + " ct status dnat " +
					   ipKeyword(f) + " daddr vmap @" + map);
	}
}

void addAttachment(nft::Batch &b, const AttachmentPlan &p, bool dnatChainExists,
		   bool masqChainExists)
{
	const std::string comment = attachmentComment(p.who);
	const std::string dnatChain = dnatChainName(p.who);
	const std::string masqChain = masqChainName(p.who);

	auto chainFor = [&](const std::string &name, bool exists) {
		if (exists) {
			b.flushChain(kTableFamily, kTableName, name, "flush chain " + chainText(name));
			return;
		}
		/* chain pm-<hash> { comment "net=... id=... if=..." } */
		auto c = newChain(name);
		auto ud = commentUdata(NFTNL_UDATA_CHAIN_COMMENT, comment);
		nftnl_chain_set_data(c.get(), NFTNL_CHAIN_USERDATA, nftnl_udata_buf_data(ud.get()),
				     nftnl_udata_buf_len(ud.get()));
		b.addChain(c.get(), true, "add chain " + chainText(name));
	};

	chainFor(dnatChain, dnatChainExists);
	for (const auto &dr : p.rules) {
		const Family f = dr.family();
		/*
		 * meta nfproto ipv4 [ip daddr H] meta l4proto tcp th dport P
		 *   [conditions] counter dnat ip to A:p
		 */
		auto r = newRule(dnatChain);
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
		b.addRule(r.get(), "add rule " + chainText(dnatChain) + " " + text);
	}

	if (p.hasMasquerade()) {
		chainFor(masqChain, masqChainExists);
		for (Family f : { Family::IPv4, Family::IPv6 }) {
			for (const auto &src : masqSources(p, f)) {
				/* meta nfproto ipv4 ip daddr C [ip saddr S/n] counter masquerade */
				const IpAddress &c = containerFor(p, f)->address();
				auto r = newRule(masqChain);
				matchNfproto(r.get(), f);
				matchAddress(r.get(), daddrOffset(f), c);
				if (src)
					matchSourcePrefix(r.get(), *src);
				expr::counter(r.get());
				expr::masquerade(r.get());
				std::string text = std::string(ipKeyword(f)) + " daddr " + c.toString();
				if (src)
					text += std::string(" ") + ipKeyword(f) + " saddr " + src->toString();
				b.addRule(r.get(), "add rule " + chainText(masqChain) + " " + text +
							   " counter masquerade");
			}
		}
	}

	for (const auto &k : planKeys(p)) {
		bool masq = k.map == MapId::Masq4 || k.map == MapId::Masq6;
		addElement(b, k, masq ? masqChain : dnatChain, comment);
	}
}

void deleteElements(nft::Batch &b, const std::vector<ElementKey> &keys)
{
	/* One message per element, so that a refusal names the element. */
	for (const auto &k : keys) {
		nft::SetPtr s = mapRef(k.map);
		nftnl_set_elem *e = nftnl_set_elem_alloc();
		if (!e)
			std::abort();
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, k.key.data(),
				   static_cast<std::uint32_t>(k.key.size()));
		nftnl_set_elem_add(s.get(), e);
		b.deleteElements(s.get(), "delete element " + tableText() + " " + mapName(k.map) +
						  " { " + k.text + " }");
	}
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

std::vector<MasqRule> planMasqRules(const AttachmentPlan &p)
{
	std::vector<MasqRule> out;
	for (Family f : { Family::IPv4, Family::IPv6 })
		for (const auto &src : masqSources(p, f))
			out.push_back(MasqRule{ containerFor(p, f)->address(), src });
	return out;
}

Expected<MasqRule, std::string> decodeMasqRule(const nftnl_rule *rule)
{
	expr::Reader rd(rule);
	auto fail = [&rd](const char *expected) {
		return Unexpected("not an nft-portmap masquerade rule: expected " + std::string(expected) +
				  " at expression " + std::to_string(rd.position() + 1) + ", found " +
				  rd.nextName());
	};

	Family f;
	if (!readNfproto(rd, f))
		return fail("meta nfproto ipv4|ipv6");
	auto daddr = readAddress(rd, f, daddrOffset(f));
	if (!daddr)
		return fail(f == Family::IPv4 ? "ip daddr" : "ip6 daddr");
	MasqRule out{ *daddr, readSourcePrefix(rd, f) };
	if (!rd.counter())
		return fail("a source match or counter");
	if (!rd.masquerade())
		return fail("masquerade");
	if (!rd.done())
		return fail("the end of the rule");
	return out;
}

std::optional<std::string> elementTarget(const nftnl_set_elem *e)
{
	if (!nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT) ||
	    static_cast<int>(nftnl_set_elem_get_u32(mut(e), NFTNL_SET_ELEM_VERDICT)) != NFT_JUMP ||
	    !nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN))
		return std::nullopt;
	const char *chain = nftnl_set_elem_get_str(mut(e), NFTNL_SET_ELEM_CHAIN);
	if (!chain)
		return std::nullopt;
	return std::string(chain);
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
