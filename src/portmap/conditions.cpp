/* SPDX-License-Identifier: Apache-2.0 */
#include "portmap/conditions.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <linux/netfilter/nf_tables.h>

#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>

#include "nft/batch.hpp"
#include "nft/expr.hpp"
#include "nft/handles.hpp"

namespace nftpm {

namespace {

/* ---- Reading the tokens ---------------------------------------------- */

struct Token {
	std::string text;
	bool quoted = false;
};

bool isSeparator(char c)
{
	return c == '{' || c == '}' || c == ',';
}

/*
 * Splits the joined tokens into words, quoted strings, operators and the
 * set punctuation "{", "}" and ",", which need no spaces around them.
 */
Expected<std::vector<Token>, std::string> lex(const std::string &in)
{
	std::vector<Token> out;
	std::size_t i = 0;
	while (i < in.size()) {
		char c = in[i];
		if (std::isspace(static_cast<unsigned char>(c))) {
			i++;
		} else if (isSeparator(c)) {
			out.push_back({ std::string(1, c), false });
			i++;
		} else if ((c == '!' || c == '=') && i + 1 < in.size() && in[i + 1] == '=') {
			out.push_back({ in.substr(i, 2), false });
			i += 2;
		} else if (c == '"') {
			std::size_t end = in.find('"', i + 1);
			if (end == std::string::npos)
				return Unexpected("unterminated quote in " + in.substr(i));
			out.push_back({ in.substr(i + 1, end - i - 1), true });
			i = end + 1;
		} else {
			std::size_t start = i;
			while (i < in.size() && !std::isspace(static_cast<unsigned char>(in[i])) &&
			       !isSeparator(in[i]) && in[i] != '"' &&
			       !((in[i] == '!' || in[i] == '=') && i + 1 < in.size() && in[i + 1] == '='))
				i++;
			out.push_back({ in.substr(start, i - start), false });
		}
	}
	return out;
}

std::string quote(const std::string &s)
{
	return "\"" + s + "\"";
}

const char *fieldText(Condition::Field f)
{
	switch (f) {
	case Condition::Field::IpSaddr:
		return "ip saddr";
	case Condition::Field::IpDaddr:
		return "ip daddr";
	case Condition::Field::Ip6Saddr:
		return "ip6 saddr";
	case Condition::Field::Ip6Daddr:
		return "ip6 daddr";
	case Condition::Field::Iifname:
		return "iifname";
	}
	return "?";
}

bool isAddressField(Condition::Field f)
{
	return f != Condition::Field::Iifname;
}

Family fieldFamily(Condition::Field f)
{
	return (f == Condition::Field::Ip6Saddr || f == Condition::Field::Ip6Daddr) ? Family::IPv6
										    : Family::IPv4;
}

const char *supportedMatches(Family family)
{
	return family == Family::IPv4 ? "ip saddr, ip daddr or iifname"
				      : "ip6 saddr, ip6 daddr or iifname";
}

/* Linux interface names: 1..15 bytes, no '/', ':' or whitespace. */
Expected<std::string, std::string> parseName(const Token &t)
{
	const std::string &n = t.text;
	std::string shown = quote(n);
	if (n.empty())
		return Unexpected(std::string("empty interface name \"\""));
	if (n.size() > 15)
		return Unexpected("interface name " + shown + " is longer than 15 characters");
	for (std::size_t i = 0; i < n.size(); i++) {
		char c = n[i];
		if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) || c == '\\')
			return Unexpected("interface name " + shown + " contains '" + std::string(1, c) +
					  "'");
		if (c == '*' && i + 1 != n.size())
			return Unexpected("interface name " + shown +
					  ": '*' is only allowed at the end (a prefix match)");
	}
	if (n == "*")
		return Unexpected(std::string("interface name \"*\" would match every interface"));
	return n;
}

Expected<IpPrefix, std::string> parseAddress(const Token &t, Condition::Field field)
{
	Family want = fieldFamily(field);
	if (t.quoted)
		return Unexpected(quote(t.text) + " after \"" + fieldText(field) +
				  "\" must be an address without quotes");
	auto p = IpPrefix::parse(t.text);
	if (!p)
		return Unexpected(quote(t.text) + " after \"" + fieldText(field) + "\" is not an " +
				  (want == Family::IPv4 ? "IPv4" : "IPv6") + " address or prefix");
	if (p->family() != want)
		return Unexpected(quote(t.text) + " is an " + (want == Family::IPv4 ? "IPv6" : "IPv4") +
				  " address, \"" + fieldText(field) + "\" needs " +
				  (want == Family::IPv4 ? "IPv4" : "IPv6"));
	/* Host bits do not take part in a prefix match; keep the canonical form. */
	return IpPrefix(p->network(), p->length());
}

class Parser
{
public:
	Parser(Family family, std::vector<Token> tokens) : family_(family), t_(std::move(tokens)) {}

	Expected<Conditions, std::string> run()
	{
		Conditions out;
		while (pos_ < t_.size()) {
			auto c = condition();
			if (!c)
				return Unexpected(std::move(c).error());
			out.push_back(std::move(c).value());
		}
		return out;
	}

private:
	bool atEnd() const { return pos_ >= t_.size(); }
	const Token &peek() const { return t_[pos_]; }
	bool peekIs(const char *s) const { return !atEnd() && !peek().quoted && peek().text == s; }

	Expected<Condition::Field, std::string> field()
	{
		const Token &t = peek();
		std::string word = t.quoted ? std::string() : t.text;
		if (word == "meta" && pos_ + 1 < t_.size() && t_[pos_ + 1].text == "iifname") {
			pos_++;
			word = "iifname";
		}
		if (word == "iifname") {
			pos_++;
			return Condition::Field::Iifname;
		}
		if (word == "oifname")
			return Unexpected(std::string(
				"\"oifname\" is not supported: the conditions guard DNAT in prerouting, "
				"where no output interface is known yet, so it could never match"));
		if (word == "ip" || word == "ip6") {
			pos_++;
			if (atEnd())
				return Unexpected(quote(word) + " must be followed by saddr or daddr");
			const Token &w = peek();
			if (w.quoted || (w.text != "saddr" && w.text != "daddr"))
				return Unexpected(quote(word) + " must be followed by saddr or daddr, not " +
						  quote(w.text));
			pos_++;
			bool v6 = word == "ip6";
			bool src = w.text == "saddr";
			Condition::Field f = v6 ? (src ? Condition::Field::Ip6Saddr : Condition::Field::Ip6Daddr)
						: (src ? Condition::Field::IpSaddr : Condition::Field::IpDaddr);
			if (fieldFamily(f) != family_)
				return Unexpected(std::string("\"") + fieldText(f) + "\" cannot be used in " +
						  (family_ == Family::IPv4 ? "conditionsV4" : "conditionsV6") +
						  " (it applies to " +
						  (v6 ? "IPv6" : "IPv4") + " packets only)");
			return f;
		}
		return Unexpected(quote(t.text) + " is not a supported match (expected " +
				  supportedMatches(family_) + ")");
	}

	Expected<void, std::string> value(Condition &c, const Token &t)
	{
		if (!t.quoted && (t.text == "{" || t.text == "}" || t.text == "," || t.text == "==" ||
				  t.text == "!="))
			return Unexpected("unexpected " + quote(t.text) + " where a value of \"" +
					  fieldText(c.field) + "\" was expected");
		if (isAddressField(c.field)) {
			auto p = parseAddress(t, c.field);
			if (!p)
				return Unexpected(std::move(p).error());
			c.prefixes.push_back(*p);
		} else {
			auto n = parseName(t);
			if (!n)
				return Unexpected(std::move(n).error());
			c.names.push_back(*n);
		}
		return {};
	}

	Expected<Condition, std::string> condition()
	{
		auto f = field();
		if (!f)
			return Unexpected(std::move(f).error());
		Condition c{ *f, false, false, {}, {} };
		std::string what = fieldText(c.field);

		if (peekIs("==") || peekIs("!=")) {
			c.negated = peek().text == "!=";
			what += " " + peek().text;
			pos_++;
		}
		if (atEnd())
			return Unexpected(quote(what) + " needs a value");

		if (!peekIs("{")) {
			auto v = value(c, t_[pos_++]);
			if (!v)
				return Unexpected(std::move(v).error());
			return c;
		}

		c.set = true;
		pos_++;
		bool expectValue = true;
		for (;;) {
			if (atEnd())
				return Unexpected("\"{\" after " + quote(what) + " has no matching \"}\"");
			const Token &t = t_[pos_++];
			if (!t.quoted && t.text == "}") {
				if (c.prefixes.empty() && c.names.empty())
					return Unexpected("empty set \"{ }\" after " + quote(what));
				break;
			}
			if (!t.quoted && t.text == ",") {
				if (expectValue)
					return Unexpected("unexpected \",\" in the set after " + quote(what));
				expectValue = true;
				continue;
			}
			if (!expectValue)
				return Unexpected("missing \",\" before " + quote(t.text) + " in the set after " +
						  quote(what));
			auto v = value(c, t);
			if (!v)
				return Unexpected(std::move(v).error());
			expectValue = false;
		}
		return c;
	}

	Family family_;
	std::vector<Token> t_;
	std::size_t pos_ = 0;
};

/* ---- Building expressions --------------------------------------------- */

using nft::expr::Bytes;

/* nft's datatype ids, which `nft list` uses to print set elements. */
constexpr std::uint32_t kTypeIpv4Addr = 7;
constexpr std::uint32_t kTypeIpv6Addr = 8;
constexpr std::uint32_t kTypeIfname = 41;
/* nft's byte order names in set userdata. */
constexpr std::uint32_t kByteorderHost = 1;
constexpr std::uint32_t kByteorderBig = 2;
constexpr std::size_t kIfnameLen = 16; /* IFNAMSIZ */

struct AddressField {
	std::uint32_t offset;
	std::uint32_t len;
};

/* Offsets in the IPv4 / IPv6 header. */
AddressField addressField(Condition::Field f)
{
	switch (f) {
	case Condition::Field::IpSaddr:
		return { 12, 4 };
	case Condition::Field::IpDaddr:
		return { 16, 4 };
	case Condition::Field::Ip6Saddr:
		return { 8, 16 };
	case Condition::Field::Ip6Daddr:
		return { 24, 16 };
	case Condition::Field::Iifname:
		break;
	}
	std::abort();
}

bool isWildcard(const std::string &name)
{
	return !name.empty() && name.back() == '*';
}

Bytes paddedName(const std::string &name)
{
	Bytes b(kIfnameLen, 0);
	std::memcpy(b.data(), name.data(), std::min(name.size(), kIfnameLen - 1));
	return b;
}

Bytes addressBytes(const IpAddress &a)
{
	return Bytes(a.data(), a.data() + a.size());
}

Bytes prefixMask(const IpPrefix &p)
{
	Bytes m(p.address().size(), 0);
	for (unsigned bit = 0; bit < p.length(); bit++)
		m[bit / 8] |= static_cast<std::uint8_t>(0x80 >> (bit % 8));
	return m;
}

/* An inclusive range of keys, big-endian byte strings of equal length. */
struct Range {
	Bytes low;
	Bytes high;
};

/* low..high of what one value matches. */
Range valueRange(const Condition &c, std::size_t i)
{
	if (isAddressField(c.field)) {
		const IpPrefix &p = c.prefixes[i];
		return { addressBytes(p.network()), addressBytes(p.lastAddress()) };
	}
	const std::string &n = c.names[i];
	if (!isWildcard(n)) {
		Bytes b = paddedName(n);
		return { b, b };
	}
	/* "veth*": every name that starts with "veth". */
	std::string prefix = n.substr(0, n.size() - 1);
	Bytes low(kIfnameLen, 0), high(kIfnameLen, 0xff);
	std::memcpy(low.data(), prefix.data(), prefix.size());
	std::memcpy(high.data(), prefix.data(), prefix.size());
	return { low, high };
}

/* b + 1 as a big-endian number; false when it overflows. */
bool increment(Bytes &b)
{
	for (std::size_t i = b.size(); i-- > 0;) {
		if (++b[i] != 0)
			return true;
	}
	return false;
}

bool isZero(const Bytes &b)
{
	return std::all_of(b.begin(), b.end(), [](std::uint8_t x) { return x == 0; });
}

/* Sorted, with overlapping and adjacent ranges merged (the kernel refuses overlaps). */
std::vector<Range> mergeRanges(std::vector<Range> in)
{
	std::sort(in.begin(), in.end(), [](const Range &a, const Range &b) { return a.low < b.low; });
	std::vector<Range> out;
	for (auto &r : in) {
		if (!out.empty()) {
			Bytes next = out.back().high;
			bool noOverflow = increment(next);
			if (!noOverflow || r.low <= next) {
				if (out.back().high < r.high)
					out.back().high = r.high;
				continue;
			}
		}
		out.push_back(std::move(r));
	}
	return out;
}

struct SetElement {
	Bytes key;
	bool intervalEnd = false;
	bool openEnd = false; /* a start whose range runs to the largest key */
};

/*
 * Interval sets, as nft encodes them: an end element (NFT_SET_ELEM_INTERVAL_END)
 * at zero when the first range does not start there, then each range as a
 * start element at its low key and an end element at high + 1. A range that
 * runs to the largest key has no end; its start is flagged "open" in the
 * element userdata, which is how nft prints it back.
 */
std::vector<SetElement> intervalElements(const std::vector<Range> &ranges)
{
	std::vector<SetElement> out;
	if (!ranges.empty() && !isZero(ranges.front().low))
		out.push_back({ Bytes(ranges.front().low.size(), 0), true, false });
	for (const auto &r : ranges) {
		Bytes end = r.high;
		bool hasEnd = increment(end);
		out.push_back({ r.low, false, !hasEnd });
		if (hasEnd)
			out.push_back({ end, true, false });
	}
	return out;
}

bool needsInterval(const Condition &c)
{
	if (isAddressField(c.field))
		return std::any_of(c.prefixes.begin(), c.prefixes.end(), [](const IpPrefix &p) {
			return p.length() != p.address().size() * 8;
		});
	return std::any_of(c.names.begin(), c.names.end(), isWildcard);
}

std::vector<SetElement> setElements(const Condition &c)
{
	std::size_t n = isAddressField(c.field) ? c.prefixes.size() : c.names.size();
	std::vector<Range> ranges;
	for (std::size_t i = 0; i < n; i++)
		ranges.push_back(valueRange(c, i));
	if (needsInterval(c))
		return intervalElements(mergeRanges(std::move(ranges)));

	std::vector<SetElement> out;
	for (auto &r : ranges)
		if (std::none_of(out.begin(), out.end(), [&r](const SetElement &e) { return e.key == r.low; }))
			out.push_back({ r.low, false, false });
	return out;
}

nft::UdataPtr newUdata()
{
	nftnl_udata_buf *u = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
	if (!u)
		std::abort();
	return nft::UdataPtr(u);
}

/*
 * add set <family> <table> __set%d { type <key>; flags constant[,interval]; elements = { ... } }
 * and the lookup that uses it: "<field> [!=] { ... }".
 */
void addSetLookup(nft::Batch &b, nftnl_rule *r, const Condition &c)
{
	const char *table = nftnl_rule_get_str(r, NFTNL_RULE_TABLE);
	std::uint32_t family = nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY);
	const bool interval = needsInterval(c);
	const std::uint32_t id = nft::expr::nextSetId();
	const char *kName = "__set%d"; /* the kernel picks the number */

	std::uint32_t keyType = kTypeIfname, keyLen = kIfnameLen, byteorder = kByteorderHost;
	if (isAddressField(c.field)) {
		bool v4 = fieldFamily(c.field) == Family::IPv4;
		keyType = v4 ? kTypeIpv4Addr : kTypeIpv6Addr;
		keyLen = v4 ? 4 : 16;
		byteorder = kByteorderBig;
	}
	std::vector<SetElement> elems = setElements(c);

	nft::SetPtr s(nftnl_set_alloc());
	if (!s)
		std::abort();
	nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table ? table : "");
	nftnl_set_set_str(s.get(), NFTNL_SET_NAME, kName);
	nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, family);
	nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
	nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS,
			  NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | (interval ? NFT_SET_INTERVAL : 0));
	nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, keyType);
	nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, keyLen);
	nftnl_set_set_u32(s.get(), NFTNL_SET_DESC_SIZE, static_cast<std::uint32_t>(elems.size()));
	{
		auto ud = newUdata();
		nftnl_udata_put_u32(ud.get(), NFTNL_UDATA_SET_KEYBYTEORDER, byteorder);
		nftnl_set_set_data(s.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud.get()),
				   nftnl_udata_buf_len(ud.get()));
	}

	const std::string text = conditionsText({ c });
	b.addSet(s.get(), std::string("add anonymous set for \"") + text + "\"");

	for (const auto &e : elems) {
		nftnl_set_elem *el = nftnl_set_elem_alloc();
		if (!el)
			std::abort();
		nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, e.key.data(),
				   static_cast<std::uint32_t>(e.key.size()));
		if (e.intervalEnd)
			nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
		if (e.openEnd) {
			auto ud = newUdata();
			nftnl_udata_put_u32(ud.get(), NFTNL_UDATA_SET_ELEM_FLAGS,
					    NFTNL_SET_ELEM_F_INTERVAL_OPEN);
			nftnl_set_elem_set(el, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(ud.get()),
					   nftnl_udata_buf_len(ud.get()));
		}
		nftnl_set_elem_add(s.get(), el); /* the set owns it now */
	}
	b.addElements(s.get(), false, std::string("add elements of the set for \"") + text + "\"");

	nft::expr::lookup(r, NFT_REG_1, kName, id, std::nullopt, c.negated);
}

void addCondition(nft::Batch &b, nftnl_rule *r, const Condition &c)
{
	const std::uint32_t op = c.negated ? NFT_CMP_NEQ : NFT_CMP_EQ;

	if (isAddressField(c.field)) {
		/* [ payload load <4|16>b @ network header + <offset> => reg 1 ]: ip saddr, ip6 daddr, ... */
		AddressField a = addressField(c.field);
		nft::expr::payload(r, NFT_PAYLOAD_NETWORK_HEADER, a.offset, a.len, NFT_REG_1);
		if (c.set || c.prefixes.size() != 1) {
			/* ip saddr [!=] { 10.0.0.0/8, 192.0.2.1 } */
			addSetLookup(b, r, c);
			return;
		}
		const IpPrefix &p = c.prefixes.front();
		if (p.length() == p.address().size() * 8) {
			/* ip saddr [!=] 192.0.2.1 */
			nft::expr::cmp(r, NFT_REG_1, op, addressBytes(p.address()));
			return;
		}
		/* ip saddr [!=] 10.0.0.0/8: (saddr & 255.0.0.0) [!=] 10.0.0.0 */
		nft::expr::bitwise(r, NFT_REG_1, prefixMask(p));
		nft::expr::cmp(r, NFT_REG_1, op, addressBytes(p.network()));
		return;
	}

	/* [ meta load iifname => reg 1 ] */
	nft::expr::meta(r, NFT_META_IIFNAME, NFT_REG_1);
	if (c.set || c.names.size() != 1) {
		/* iifname [!=] { "eth0", "veth*" } */
		addSetLookup(b, r, c);
		return;
	}
	const std::string &n = c.names.front();
	if (isWildcard(n)) {
		/* iifname [!=] "veth*": compare the prefix bytes only */
		std::string prefix = n.substr(0, n.size() - 1);
		nft::expr::cmp(r, NFT_REG_1, op,
			       std::span(reinterpret_cast<const std::uint8_t *>(prefix.data()),
					 prefix.size()));
		return;
	}
	/* iifname [!=] "eth0": the whole 16-byte, NUL-padded name */
	nft::expr::cmp(r, NFT_REG_1, op, paddedName(n));
}

std::string valueText(const Condition &c, std::size_t i)
{
	if (isAddressField(c.field)) {
		const IpPrefix &p = c.prefixes[i];
		if (p.length() == p.address().size() * 8)
			return p.address().toString();
		return p.toString();
	}
	return quote(c.names[i]);
}

} /* namespace */

Expected<Conditions, std::string> parseConditions(Family family,
						  const std::vector<std::string> &tokens)
{
	std::string joined;
	for (const auto &t : tokens) {
		if (!joined.empty())
			joined += ' ';
		joined += t;
	}
	auto lexed = lex(joined);
	if (!lexed)
		return Unexpected(std::move(lexed).error());
	return Parser(family, std::move(lexed).value()).run();
}

std::string conditionsText(const Conditions &cs)
{
	std::string out;
	for (const auto &c : cs) {
		if (!out.empty())
			out += ' ';
		out += fieldText(c.field);
		if (c.negated)
			out += " !=";
		std::size_t n = isAddressField(c.field) ? c.prefixes.size() : c.names.size();
		if (!c.set && n == 1) {
			out += " " + valueText(c, 0);
			continue;
		}
		out += " {";
		for (std::size_t i = 0; i < n; i++)
			out += (i ? ", " : " ") + valueText(c, i);
		out += " }";
	}
	return out;
}

void addConditionExprs(nft::Batch &b, nftnl_rule *r, const Conditions &cs)
{
	for (const auto &c : cs)
		addCondition(b, r, c);
}

std::size_t skipConditionExprs(nft::expr::Reader &rd)
{
	static constexpr Condition::Field kAddressFields[] = {
		Condition::Field::IpSaddr, Condition::Field::IpDaddr, Condition::Field::Ip6Saddr,
		Condition::Field::Ip6Daddr
	};
	std::size_t n = 0;
	for (;;) {
		const std::size_t start = rd.position();
		bool loaded = rd.meta(NFT_META_IIFNAME, NFT_REG_1);
		for (auto f : kAddressFields) {
			if (loaded)
				break;
			AddressField a = addressField(f);
			loaded = rd.payload(NFT_PAYLOAD_NETWORK_HEADER, a.offset, a.len, NFT_REG_1);
		}
		if (!loaded)
			return n;

		bool matched = false;
		if (rd.cmp(NFT_REG_1, NFT_CMP_EQ) || rd.cmp(NFT_REG_1, NFT_CMP_NEQ)) {
			matched = true;
		} else if (rd.bitwise(NFT_REG_1)) {
			matched = rd.cmp(NFT_REG_1, NFT_CMP_EQ) || rd.cmp(NFT_REG_1, NFT_CMP_NEQ);
		} else {
			auto l = rd.lookup(NFT_REG_1);
			matched = l && !l->dreg;
		}
		if (!matched) {
			rd.rewind(start);
			return n;
		}
		n++;
	}
}

} /* namespace nftpm */
