/* SPDX-License-Identifier: Apache-2.0 */
#include "portmap/engine.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

#include <linux/netfilter/nf_tables.h>

#include "nft/batch.hpp"
#include "nft/query.hpp"
#include "nft/socket.hpp"
#include "portmap/conditions.hpp"
#include "portmap/kernel_state.hpp"
#include "portmap/ruleset.hpp"
#include "sys/conntrack.hpp"
#include "sys/route_localnet.hpp"
#include "util/file_lock.hpp"

namespace nftpm {

using ruleset::ElementKey;

namespace {

/*
 * A batch is refused with ERESTART when anything in the network namespace's
 * ruleset changed between our read and our commit (another table, too).
 * Our own processes are serialised by the netns lock, so retries only come
 * from other software; a few dozen attempts with jitter are plenty.
 */
constexpr int kMaxAttempts = 40;

enum class Step { Done, Retry };
using StepResult = Expected<Step, cni::Error>;

cni::Error kernelError(const nft::Error &e)
{
	if (e.errnum == EPERM || e.errnum == EACCES || e.errnum == EPROTONOSUPPORT)
		return { cni::ErrNftablesUnusable,
			 "nftables is not usable: " + e.message() +
				 " (the plugin needs CAP_NET_ADMIN in the host network namespace and nf_tables in the kernel)",
			 {} };
	if (e.errnum == ENFILE)
		return { cni::ErrNftablesRefused,
			 "nftables refused the change: " + e.operation + ": the set is full (its size limit was reached)",
			 {} };
	return { cni::ErrNftablesRefused, "nftables refused the change: " + e.message(), {} };
}

void backoff(int attempt)
{
	static std::minstd_rand rng(static_cast<unsigned>(
		std::chrono::steady_clock::now().time_since_epoch().count()));
	std::uniform_int_distribution<int> us(50, 200 + 100 * std::min(attempt, 20));
	std::this_thread::sleep_for(std::chrono::microseconds(us(rng)));
}

/* Runs attempt() until it is done, fails, or the attempts run out. */
template<typename Attempt>
CniResult withRetries(const char *command, Attempt attempt)
{
	for (int i = 0; i < kMaxAttempts; i++) {
		StepResult r = attempt();
		if (!r)
			return Unexpected(std::move(r).error());
		if (*r == Step::Done)
			return {};
		backoff(i);
	}
	return Unexpected(cni::Error{
		cni::ErrTryAgainLater,
		std::string(command) + ": the nftables ruleset kept changing during " +
			std::to_string(kMaxAttempts) + " attempts; try again",
		{} });
}

/* Commit, mapping "the ruleset changed" to a retry. */
StepResult commitOrRetry(nft::Batch &b, nft::Socket &s)
{
	auto r = b.commit(s);
	if (r)
		return Step::Done;
	if (r.error().errnum == ERESTART)
		return Step::Retry;
	return Unexpected(kernelError(r.error()));
}

Expected<nft::Socket, cni::Error> openSocket()
{
	auto s = nft::Socket::open();
	if (!s)
		return Unexpected(kernelError(s.error()));
	return std::move(s).value();
}

Expected<ruleset::AttachmentPlan, cni::Error> planFor(const cni::Config &cfg,
						      const cni::Environment &env)
{
	auto c4 = parseConditions(Family::IPv4, cfg.conditionsV4);
	if (!c4)
		return Unexpected(cni::Error{ cni::ErrInvalidConfig, "conditionsV4: " + c4.error(), {} });
	auto c6 = parseConditions(Family::IPv6, cfg.conditionsV6);
	if (!c6)
		return Unexpected(cni::Error{ cni::ErrInvalidConfig, "conditionsV6: " + c6.error(), {} });
	return ruleset::makePlan(Attachment{ cfg.name, env.containerId, env.ifname }, cfg.portMappings,
				 cfg.containerV4, cfg.containerV6, cfg.snat, cfg.masqAll,
				 std::move(c4).value(), std::move(c6).value());
}

/* "container <id> (network <net>, interface <if>)" from an element's comment. */
std::string describeOwner(const std::optional<std::string> &comment)
{
	if (!comment)
		return "an element without an owner comment (not written by nft-portmap)";
	auto owner = ruleset::parseAttachmentComment(*comment);
	if (!owner)
		return "an element with comment \"" + *comment + "\" (not an nft-portmap attachment)";
	return "container " + owner->containerId + " (network " + owner->network + ", interface " +
	       owner->ifname + ")";
}

/*
 * "tcp port 8080 on every IPv4 address" / "udp port 53 on 192.0.2.1", from
 * a port-map key's nft text ("tcp . 8080", "192.0.2.1 . udp . 53").
 */
std::string portDescription(const ElementKey &k)
{
	std::vector<std::string> parts;
	for (std::size_t pos = 0;;) {
		std::size_t sep = k.text.find(" . ", pos);
		parts.push_back(k.text.substr(pos, sep == std::string::npos ? sep : sep - pos));
		if (sep == std::string::npos)
			break;
		pos = sep + 3;
	}
	if (parts.size() == 2)
		return parts[0] + " port " + parts[1] + " on every " +
		       (k.map == ruleset::MapId::Ports4 ? "IPv4" : "IPv6") + " address";
	if (parts.size() == 3)
		return parts[1] + " port " + parts[2] + " on " + parts[0];
	return k.text;
}

/* UDP host ports per family: their stale conntrack entries are deleted. */
void flushUdpConntrack(const std::vector<ruleset::DnatRule> &rules)
{
	for (Family f : { Family::IPv4, Family::IPv6 }) {
		std::vector<std::uint16_t> ports;
		for (const auto &r : rules)
			if (r.family() == f && r.mapping.protocol == Protocol::UDP &&
			    std::find(ports.begin(), ports.end(), r.mapping.hostPort) == ports.end())
				ports.push_back(r.mapping.hostPort);
		if (ports.empty())
			continue;
		auto n = sys::flushUdpByDestinationPort(f, ports);
		/* Like the reference: a conntrack failure is logged, not fatal. */
		if (!n)
			std::fprintf(stderr, "nft-portmap: deleting stale UDP conntrack entries (%s): %s\n",
				     familyName(f), n.error().c_str());
	}
}

/*
 * DEL of one attachment: remove the elements its record names that still
 * carry its comment, its chain (conditions only) and its record. An element
 * that now belongs to someone else is left alone.
 */
StepResult delAttempt(nft::Socket &s, const Attachment &who, const std::vector<ElementKey> &hints,
		      bool walk, std::vector<ruleset::DnatRule> &removedRules)
{
	auto genid = nft::getGeneration(s);
	if (!genid)
		return Unexpected(kernelError(genid.error()));
	auto st = readAttachment(s, who);
	if (!st)
		return Unexpected(kernelError(st.error()));

	const std::string mine = ruleset::attachmentComment(who);
	std::vector<ElementKey> owned;
	if (!st->exists()) {
		/*
		 * No record (gone already, or deleted by hand): the elements
		 * the runtime's configuration names are looked up, so that a
		 * lost record does not keep ports held. Without a
		 * configuration there is nothing to look up cheaply; GC walks.
		 */
		if (hints.empty())
			return Step::Done;
		auto elems = readElements(s, hints);
		if (!elems)
			return Unexpected(kernelError(elems.error()));
		for (std::size_t i = 0; i < hints.size(); i++)
			if ((*elems)[i] && (*elems)[i]->comment == mine)
				owned.push_back(hints[i]);
		if (owned.empty())
			return Step::Done;
	} else if (walk || !st->recordValid) {
		/* A damaged record: find what carries our comment the slow way. */
		auto found = findOwnedElements(s, [&mine](const std::string &c) { return c == mine; });
		if (!found)
			return Unexpected(kernelError(found.error()));
		owned = std::move(found).value();
	} else {
		auto keys = st->keys();
		auto elems = readElements(s, keys);
		if (!elems)
			return Unexpected(kernelError(elems.error()));
		for (std::size_t i = 0; i < keys.size(); i++) {
			const auto &e = (*elems)[i];
			if (e && e->comment == mine)
				owned.push_back(keys[i]);
		}
	}

	nft::Batch b(*genid);
	/* Guard elements before the chain they jump to. */
	ruleset::deleteElements(b, owned);
	if (st->chainExists)
		ruleset::deleteChain(b, ruleset::attachmentName(who));
	if (st->recordExists)
		ruleset::deleteRecord(b, who, std::max(st->recordParts, 1u));

	auto r = b.commit(s);
	if (r) {
		removedRules = st->recorded.rules;
		return Step::Done;
	}
	if (r.error().errnum == ERESTART)
		return Step::Retry;
	/* EBUSY: something the record did not name still jumps to our chain. */
	if (r.error().errnum == EBUSY && !walk)
		return delAttempt(s, who, hints, true, removedRules);
	return Unexpected(kernelError(r.error()));
}

/* hints: element keys the runtime's configuration says the attachment may own. */
CniResult deleteAttachment(const Attachment &who, const std::vector<ElementKey> &hints)
{
	auto s = openSocket();
	if (!s)
		return Unexpected(std::move(s).error());
	FileLock lock(netnsLockPath());

	std::vector<ruleset::DnatRule> removed;
	auto r = withRetries("DEL", [&] { return delAttempt(*s, who, hints, false, removed); });
	if (r)
		flushUdpConntrack(removed);
	return r;
}

bool isGuard(const ElementKey &k)
{
	using ruleset::MapId;
	return k.map == MapId::Guard4 || k.map == MapId::Guard6 || k.map == MapId::AddrGuard4 ||
	       k.map == MapId::AddrGuard6;
}

bool isMasq(const ElementKey &k)
{
	return k.map == ruleset::MapId::Masq4 || k.map == ruleset::MapId::Masq6;
}

/* Whether an element as the kernel has it is what the plan wants. */
bool sameElement(const ElementState &have, const ruleset::PlannedElement &want)
{
	if (isGuard(want.key))
		return have.dataText == want.dataText;
	return have.data == want.data;
}

/*
 * ADD: one batch that (if needed) builds or repairs the skeleton, adds the
 * masq sets the plan needs, removes what this attachment published before
 * and does not publish now, and publishes the plan. Elements that are
 * already exactly as wanted stay (their counters with them). Port keys held
 * by another attachment are a conflict, reported before anything is sent.
 */
/*
 * EEXIST from a race is gone at the next read: the winner's change moved the
 * generation. The same refusal at the same generation is no race.
 */
struct LastRefusal {
	std::optional<std::uint32_t> genid;
	std::string operation;
};

StepResult addAttempt(nft::Socket &s, const ruleset::AttachmentPlan &plan,
		      const ruleset::Priorities &prio, LastRefusal &last)
{
	auto genid = nft::getGeneration(s);
	if (!genid)
		return Unexpected(kernelError(genid.error()));
	auto haveTable = tableExists(s);
	if (!haveTable)
		return Unexpected(kernelError(haveTable.error()));

	const std::string mine = ruleset::attachmentComment(plan.who);
	const std::string name = ruleset::attachmentName(plan.who);
	const auto desired = ruleset::planElements(plan);

	AttachmentState old;
	std::vector<ruleset::MasqSet> masqRules;
	std::vector<ruleset::MasqSet> repairSets;
	bool repair = false;
	std::vector<ElementKey> toDelete;
	std::vector<ruleset::PlannedElement> toAdd;
	if (!*haveTable) {
		toAdd = desired;
	} else {
		/* Self-healing: static rules lost to "nft flush table" are rebuilt. */
		auto sk = readSkeleton(s);
		if (!sk)
			return Unexpected(kernelError(sk.error()));
		if (sk->problem) {
			repair = true;
			auto sets = listMasqSets(s);
			if (!sets)
				return Unexpected(kernelError(sets.error()));
			repairSets = std::move(sets).value();
			masqRules = repairSets;
		} else {
			masqRules = sk->masqRules;
		}

		auto st = readAttachment(s, plan.who);
		if (!st)
			return Unexpected(kernelError(st.error()));
		old = std::move(st).value();

		/* Everything we want now, then everything we published before. */
		std::vector<ElementKey> keys;
		for (const auto &d : desired)
			keys.push_back(d.key);
		std::vector<ElementKey> oldKeys = old.keys();
		if (old.exists() && !old.recordValid) {
			auto found = findOwnedElements(s, [&mine](const std::string &c) { return c == mine; });
			if (!found)
				return Unexpected(kernelError(found.error()));
			oldKeys = std::move(found).value();
		}
		for (auto &k : oldKeys)
			if (std::find(keys.begin(), keys.end(), k) == keys.end())
				keys.push_back(std::move(k));
		auto elems = readElements(s, keys);
		if (!elems)
			return Unexpected(kernelError(elems.error()));

		for (std::size_t i = 0; i < keys.size(); i++) {
			const auto &have = (*elems)[i];
			if (i >= desired.size()) {
				/* Published before, not any more. */
				if (have && have->comment == mine)
					toDelete.push_back(keys[i]);
				continue;
			}
			if (!have) {
				toAdd.push_back(desired[i]);
				continue;
			}
			if (have->comment == mine) {
				if (!sameElement(*have, desired[i])) {
					toDelete.push_back(keys[i]);
					toAdd.push_back(desired[i]);
				}
				continue;
			}
			if (isMasq(keys[i])) {
				/*
				 * IPAM gave this container the address, so a masq
				 * element of another attachment for it is stale.
				 */
				toDelete.push_back(keys[i]);
				toAdd.push_back(desired[i]);
				continue;
			}
			/*
			 * The owner is the element's own comment, read in the
			 * same answer as the element: no second read to race.
			 */
			ElementKey shown = desired[i].key;
			shown.map = ruleset::dataMapOf(shown.map);
			return Unexpected(cni::Error{
				cni::ErrPortConflict,
				"host " + portDescription(shown) + " is already published by " +
					describeOwner(have->comment) + " (map " + keys[i].setName() +
					"); nothing was changed",
				keys[i].text });
		}
	}

	const bool recordSame = old.recordValid && ruleset::encodeRecord(old.recorded) == ruleset::encodeRecord(plan);
	const bool chainNeeded = plan.hasChain();

	nft::Batch b(*genid);
	if (!*haveTable || repair)
		ruleset::addSkeleton(b, prio, repair, repairSets);
	for (const auto &m : ruleset::planMasqSets(plan))
		if (std::find(masqRules.begin(), masqRules.end(), m) == masqRules.end())
			ruleset::addMasqSet(b, m);
	ruleset::deleteElements(b, toDelete);
	if (old.chainExists && !chainNeeded)
		ruleset::deleteChain(b, name);
	if (!recordSame) {
		if (old.recordExists)
			ruleset::deleteRecord(b, plan.who, std::max(old.recordParts, 1u));
		ruleset::addRecord(b, plan);
	}
	ruleset::addChain(b, plan, old.chainExists);
	ruleset::addElements(b, toAdd, mine, name);

	auto r = b.commit(s);
	if (r)
		return Step::Done;
	/*
	 * ERESTART: the ruleset changed since our read. EEXIST: something
	 * our read did not account for; read again, and the next batch
	 * avoids it (or reports a conflict). The same refusal at the same
	 * generation is not a race but a state we cannot build on (a base
	 * chain of another type, for example): say so.
	 */
	if (r.error().errnum == ERESTART)
		return Step::Retry;
	if (r.error().errnum == EEXIST) {
		if (last.genid == *genid && last.operation == r.error().operation)
			return Unexpected(kernelError(r.error()));
		last = { *genid, r.error().operation };
		return Step::Retry;
	}
	return Unexpected(kernelError(r.error()));
}

} /* namespace */

CniResult commandAdd(const cni::Config &cfg, const cni::Environment &env)
{
	auto plan = planFor(cfg, env);
	if (!plan)
		return Unexpected(std::move(plan).error());

	/* No address the mappings apply to: replace with nothing, as DEL. */
	if (plan->rules.empty())
		return deleteAttachment(plan->who, {});

	/* The record holds up to 255 objects of about 40 mappings each. */
	if (ruleset::encodeRecord(*plan).size() > 255)
		return Unexpected(cni::Error{ cni::ErrInvalidConfig,
					      "runtimeConfig.portMappings: " + std::to_string(cfg.portMappings.size()) +
						      " mappings are more than nft-portmap can record for one attachment",
					      {} });

	/*
	 * 127.0.0.1:hostPort is DNATed out of the loopback: the interface
	 * towards the container must accept that (route_localnet). Done before
	 * the batch, so that a failure here leaves the ruleset untouched.
	 */
	if (plan->snat && plan->containerV4) {
		bool hasV4 = std::any_of(plan->rules.begin(), plan->rules.end(),
					 [](const auto &r) { return r.family() == Family::IPv4; });
		if (hasV4) {
			auto rl = sys::enableRouteLocalnet(plan->containerV4->address());
			if (!rl)
				return Unexpected(cni::Error{ cni::ErrIo,
							      "unable to enable route_localnet: " + rl.error(),
							      {} });
		}
	}

	auto s = openSocket();
	if (!s)
		return Unexpected(std::move(s).error());
	FileLock lock(netnsLockPath());

	ruleset::Priorities prio{ cfg.dstnatPriority, cfg.srcnatPriority };
	LastRefusal last;
	auto r = withRetries("ADD", [&] { return addAttempt(*s, *plan, prio, last); });
	if (!r)
		return r;

	/* After the rules are in place, so no new stale entry can appear (k8s #59286). */
	flushUdpConntrack(plan->rules);
	return {};
}

CniResult commandDel(const cni::Config &cfg, const cni::Environment &env)
{
	/*
	 * Stateless: the attachment's record says what it owns. The
	 * configuration, when the runtime passes it, only helps when the
	 * record was lost.
	 */
	std::vector<ElementKey> hints;
	if (auto plan = planFor(cfg, env))
		hints = ruleset::planKeys(*plan);
	return deleteAttachment(Attachment{ cfg.name, env.containerId, env.ifname }, hints);
}

namespace {

template<typename T>
bool sameElements(std::vector<T> a, std::vector<T> b)
{
	if (a.size() != b.size())
		return false;
	for (const auto &x : a) {
		auto it = std::find(b.begin(), b.end(), x);
		if (it == b.end())
			return false;
		b.erase(it);
	}
	return true;
}

std::string ruleText(const ruleset::DnatRule &r)
{
	std::string host = r.mapping.hostIP ? r.mapping.hostIP->toString() : "*";
	return std::string(protocolName(r.mapping.protocol)) + " " + host + ":" +
	       std::to_string(r.mapping.hostPort) + " -> " + r.containerAddr.toString() + ":" +
	       std::to_string(r.mapping.containerPort);
}

cni::Error checkFailed(const std::string &what)
{
	return { cni::ErrCheckFailed, "CHECK: " + what, {} };
}

/* What differs between a record and the plan, in words. */
std::string recordDifference(const ruleset::AttachmentPlan &have, const ruleset::AttachmentPlan &want,
			     const std::string &name)
{
	for (const auto &r : want.rules)
		if (std::find(have.rules.begin(), have.rules.end(), r) == have.rules.end())
			return "DNAT " + ruleText(r) + " is missing from record " + name;
	if (!sameElements(have.rules, want.rules))
		return "record " + name + " holds DNATs that the configuration does not ask for";
	if (have.containerV4 != want.containerV4 || have.containerV6 != want.containerV6)
		return "record " + name + " has other container addresses than the configuration";
	if (have.snat != want.snat || have.masqAll != want.masqAll)
		return "record " + name + " has other snat/masqAll settings than the configuration";
	if (have.conditionsHashV4 != want.conditionsHashV4)
		return "record " + name + " was written for other conditionsV4 than the configuration's";
	if (have.conditionsHashV6 != want.conditionsHashV6)
		return "record " + name + " was written for other conditionsV6 than the configuration's";
	return "record " + name + " differs from the configuration (conditions given or not)";
}

} /* namespace */

CniResult commandCheck(const cni::Config &cfg, const cni::Environment &env)
{
	auto plan = planFor(cfg, env);
	if (!plan)
		return Unexpected(std::move(plan).error());
	auto s = openSocket();
	if (!s)
		return Unexpected(std::move(s).error());

	if (plan->rules.empty())
		return {};

	auto haveTable = tableExists(*s);
	if (!haveTable)
		return Unexpected(kernelError(haveTable.error()));
	if (!*haveTable)
		return Unexpected(checkFailed(std::string("table inet ") + ruleset::kTableName +
					      " is missing (was the ruleset flushed?)"));
	auto sk = readSkeleton(*s);
	if (!sk)
		return Unexpected(kernelError(sk.error()));
	if (sk->problem)
		return Unexpected(checkFailed(*sk->problem));

	auto st = readAttachment(*s, plan->who);
	if (!st)
		return Unexpected(kernelError(st.error()));
	const std::string name = ruleset::attachmentName(plan->who);
	if (!st->recordExists)
		return Unexpected(checkFailed("record counter " + name + " of this attachment is missing"));
	if (!st->recordValid)
		return Unexpected(checkFailed(st->problems.empty() ? "record " + name + " is damaged"
								   : st->problems.front()));
	if (ruleset::encodeRecord(st->recorded) != ruleset::encodeRecord(*plan))
		return Unexpected(checkFailed(recordDifference(st->recorded, *plan, name)));

	for (const auto &m : ruleset::planMasqSets(*plan))
		if (std::find(sk->masqRules.begin(), sk->masqRules.end(), m) == sk->masqRules.end())
			return Unexpected(checkFailed("chain postrouting has no masquerade rule for set " +
						      ruleset::masqSetName(m.family, m.sourceLength)));

	const std::string mine = ruleset::attachmentComment(plan->who);
	const auto desired = ruleset::planElements(*plan);
	std::vector<ElementKey> keys;
	for (const auto &d : desired)
		keys.push_back(d.key);
	auto elems = readElements(*s, keys);
	if (!elems)
		return Unexpected(kernelError(elems.error()));
	for (std::size_t i = 0; i < keys.size(); i++) {
		const auto &have = (*elems)[i];
		const std::string set = keys[i].setName();
		if (!have)
			return Unexpected(checkFailed("element " + keys[i].text + " is missing from " + set));
		if (have->comment != mine)
			return Unexpected(checkFailed("element " + keys[i].text + " of " + set + " belongs to " +
						      describeOwner(have->comment)));
		if (!sameElement(*have, desired[i]))
			return Unexpected(checkFailed("element " + keys[i].text + " of " + set + " maps to " +
						      have->dataText + ", expected " + desired[i].dataText));
	}

	if (plan->hasChain()) {
		if (!st->chainExists)
			return Unexpected(checkFailed("chain " + name + " of this attachment is missing"));
		if (!st->problems.empty())
			return Unexpected(checkFailed("chain " + name + " holds a rule nft-portmap did not write: " +
						      st->problems.front()));
		const auto want = plan->chainRules();
		for (const auto &r : want)
			if (std::find(st->chainRules.begin(), st->chainRules.end(), r) == st->chainRules.end())
				return Unexpected(checkFailed("DNAT rule " + ruleText(r) + " is missing from chain " + name));
		if (!sameElements(st->chainRules, want))
			return Unexpected(checkFailed("chain " + name + " holds DNAT rules that the configuration does not ask for"));
		if (!st->chainClosed)
			return Unexpected(checkFailed("chain " + name + " does not end in accept"));
	}
	return {};
}

namespace {

/* GC: what belongs to this network's attachments that are not valid any more. */
StepResult gcAttempt(nft::Socket &s, const cni::Config &cfg, std::size_t &removed)
{
	auto genid = nft::getGeneration(s);
	if (!genid)
		return Unexpected(kernelError(genid.error()));
	auto objects = nft::dumpObjects(s, ruleset::kTableFamily, ruleset::kTableName, NFT_OBJECT_COUNTER);
	if (!objects) {
		if (objects.error().errnum == ENOENT)
			return Step::Done;
		return Unexpected(kernelError(objects.error()));
	}

	std::vector<Attachment> valid;
	for (const auto &va : *cfg.validAttachments)
		valid.push_back(Attachment{ cfg.name, va.containerId, va.ifname });
	/* A comment of an attachment of this network that is not valid. */
	auto stale = [&](const std::string &comment) {
		auto owner = ruleset::parseAttachmentComment(comment);
		if (!owner || !ruleset::commentFieldMatches(owner->network, cfg.name))
			return false;
		return std::none_of(valid.begin(), valid.end(),
				    [&](const Attachment &v) { return ruleset::commentMatches(*owner, v); });
	};
	/*
	 * Only what we made: an attachment's record and chain are named after
	 * the hash of the attachment their comment names. (A comment whose
	 * fields were cut cannot be hashed again; its pm- name and the hashes
	 * in its cut fields stand for it.)
	 */
	auto ownName = [](const std::string &objName, const std::string &comment) {
		auto owner = ruleset::parseAttachmentComment(comment);
		if (!owner || objName.rfind("pm-", 0) != 0)
			return false;
		return ruleset::isCutComment(*owner) || objName == ruleset::attachmentName(*owner);
	};

	/* A record or chain of ours (by name) whose comment names a stale attachment. */
	auto staleOwn = [&](const char *name, const std::optional<std::string> &comment) {
		return name && comment && stale(*comment) && ownName(name, *comment);
	};

	std::vector<std::string> staleRecords;
	for (const auto &o : *objects)
		if (const char *n = nftnl_obj_get_str(o.get(), NFTNL_OBJ_NAME); staleOwn(n, ruleset::objectComment(o.get())))
			staleRecords.push_back(n);
	/* Continuation parts carry no comment: they go with their first part. */
	std::vector<std::string> staleObjects = staleRecords;
	for (const auto &o : *objects) {
		const std::string objName = nftnl_obj_get_str(o.get(), NFTNL_OBJ_NAME);
		for (const auto &first : staleRecords)
			if (objName.size() > first.size() + 1 && objName.compare(0, first.size() + 1, first + "-") == 0)
				staleObjects.push_back(objName);
	}

	auto chains = nft::dumpChains(s, ruleset::kTableFamily, ruleset::kTableName);
	if (!chains)
		return Unexpected(kernelError(chains.error()));
	std::vector<std::string> staleChains;
	for (const auto &c : *chains)
		if (const char *n = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME); staleOwn(n, ruleset::chainComment(c.get())))
			staleChains.push_back(n);

	auto elements = findOwnedElements(s, stale);
	if (!elements)
		return Unexpected(kernelError(elements.error()));
	if (staleObjects.empty() && staleChains.empty() && elements->empty())
		return Step::Done;

	nft::Batch b(*genid);
	ruleset::deleteElements(b, *elements);
	for (const auto &c : staleChains)
		ruleset::deleteChain(b, c);
	for (const auto &o : staleObjects)
		ruleset::deleteRecordObject(b, o);
	auto r = commitOrRetry(b, s);
	if (r && *r == Step::Done)
		removed = staleRecords.size();
	return r;
}

} /* namespace */

CniResult commandGc(const cni::Config &cfg)
{
	if (!cfg.validAttachments)
		return Unexpected(cni::Error{
			cni::ErrInvalidConfig,
			"GC needs cni.dev/valid-attachments (refusing to treat a missing list as empty)", {} });
	auto s = openSocket();
	if (!s)
		return Unexpected(std::move(s).error());
	FileLock lock(netnsLockPath());
	std::size_t removed = 0;
	return withRetries("GC", [&] { return gcAttempt(*s, cfg, removed); });
}

CniResult commandStatus()
{
	auto s = nft::Socket::open();
	if (!s)
		return Unexpected(cni::Error{ cni::ErrNotAvailable,
					      "nftables is not usable: " + s.error().message(), {} });
	auto genid = nft::getGeneration(*s);
	if (!genid)
		return Unexpected(cni::Error{ cni::ErrNotAvailable,
					      "nftables is not usable: " + genid.error().message(), {} });
	return {};
}

} /* namespace nftpm */
