/* SPDX-License-Identifier: Apache-2.0 */
#include "portmap/engine.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <thread>

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

std::string describeOwner(const std::optional<Attachment> &owner, const std::string &chain)
{
	if (!owner)
		return "chain " + chain + " (not an nft-portmap attachment)";
	return "container " + owner->containerId + " (network " + owner->network + ", interface " +
	       owner->ifname + ")";
}

/*
 * The static part of the table (base chains and the dispatch chain with
 * exactly the rules addSkeleton writes): nullopt when intact, otherwise
 * what is wrong. Four requests, whatever the number of containers.
 */
nft::Result<std::optional<std::string>> skeletonProblem(nft::Socket &s)
{
	struct Expect {
		const char *chain;
		std::size_t rules;
	};
	static constexpr Expect kSkeleton[] = {
		{ "prerouting", 1 }, { "output", 1 }, { "dispatch", 4 }, { "postrouting", 2 }
	};
	for (const auto &e : kSkeleton) {
		auto rules = nft::getRules(s, ruleset::kTableFamily, ruleset::kTableName, e.chain);
		if (!rules) {
			if (rules.error().errnum == ENOENT)
				return std::optional<std::string>(std::string("chain ") + e.chain + " of table inet " +
								  ruleset::kTableName + " is missing");
			return Unexpected(std::move(rules).error());
		}
		if (rules->size() != e.rules)
			return std::optional<std::string>(std::string("chain ") + e.chain + " has " +
							  std::to_string(rules->size()) + " rules, expected " +
							  std::to_string(e.rules));
	}
	return std::optional<std::string>();
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
 * DEL of one attachment: remove the elements that still jump to its chains,
 * then the chains. An element that now belongs to someone else is left alone.
 */
StepResult delAttempt(nft::Socket &s, const Attachment &who, bool scanMaps,
		      std::vector<ruleset::DnatRule> &removedRules)
{
	auto genid = nft::getGeneration(s);
	if (!genid)
		return Unexpected(kernelError(genid.error()));
	auto st = readAttachment(s, who);
	if (!st)
		return Unexpected(kernelError(st.error()));
	if (!st->exists())
		return Step::Done;

	const std::string dnatChain = ruleset::dnatChainName(who);
	const std::string masqChain = ruleset::masqChainName(who);

	std::vector<ElementKey> owned;
	if (scanMaps) {
		auto refs = findReferences(s, { dnatChain, masqChain });
		if (!refs)
			return Unexpected(kernelError(refs.error()));
		owned = std::move(refs).value();
	} else {
		auto keys = st->keys();
		auto targets = elementTargets(s, keys);
		if (!targets)
			return Unexpected(kernelError(targets.error()));
		for (std::size_t i = 0; i < keys.size(); i++) {
			const auto &t = (*targets)[i];
			if (t && (*t == dnatChain || *t == masqChain))
				owned.push_back(keys[i]);
		}
	}

	nft::Batch b(*genid);
	ruleset::deleteElements(b, owned);
	if (st->dnatChainExists)
		ruleset::deleteChain(b, dnatChain);
	if (st->masqChainExists)
		ruleset::deleteChain(b, masqChain);

	auto r = b.commit(s);
	if (r) {
		removedRules = st->dnatRules;
		return Step::Done;
	}
	if (r.error().errnum == ERESTART)
		return Step::Retry;
	/*
	 * EBUSY: an element we could not derive from the chain's rules still
	 * jumps to it (the chain was edited by hand, or lost rules). Find it by
	 * walking the maps once.
	 */
	if (r.error().errnum == EBUSY && !scanMaps)
		return delAttempt(s, who, true, removedRules);
	return Unexpected(kernelError(r.error()));
}

CniResult deleteAttachment(const Attachment &who)
{
	auto s = openSocket();
	if (!s)
		return Unexpected(std::move(s).error());
	FileLock lock(netnsLockPath());

	std::vector<ruleset::DnatRule> removed;
	auto r = withRetries("DEL", [&] { return delAttempt(*s, who, false, removed); });
	if (r)
		flushUdpConntrack(removed);
	return r;
}

/*
 * ADD: one batch that (if needed) builds the skeleton, removes what this
 * attachment published before, and publishes the plan. Port keys held by
 * another attachment are a conflict, reported before anything is sent.
 */
StepResult addAttempt(nft::Socket &s, const ruleset::AttachmentPlan &plan,
		      const ruleset::Priorities &prio)
{
	auto genid = nft::getGeneration(s);
	if (!genid)
		return Unexpected(kernelError(genid.error()));
	auto haveTable = tableExists(s);
	if (!haveTable)
		return Unexpected(kernelError(haveTable.error()));

	const std::string dnatChain = ruleset::dnatChainName(plan.who);
	const std::string masqChain = ruleset::masqChainName(plan.who);

	AttachmentState old;
	std::vector<ElementKey> toDelete;
	bool repairSkeleton = false;
	if (*haveTable) {
		/* Self-healing: static rules lost to "nft flush table" are rebuilt. */
		auto skeleton = skeletonProblem(s);
		if (!skeleton)
			return Unexpected(kernelError(skeleton.error()));
		repairSkeleton = skeleton->has_value();

		auto st = readAttachment(s, plan.who);
		if (!st)
			return Unexpected(kernelError(st.error()));
		old = std::move(st).value();

		/* Everything we published before and everything we want now. */
		std::vector<ElementKey> keys = ruleset::planKeys(plan);
		for (auto &k : old.keys())
			if (std::find(keys.begin(), keys.end(), k) == keys.end())
				keys.push_back(std::move(k));
		auto targets = elementTargets(s, keys);
		if (!targets)
			return Unexpected(kernelError(targets.error()));

		for (std::size_t i = 0; i < keys.size(); i++) {
			const auto &t = (*targets)[i];
			if (!t)
				continue;
			if (*t == dnatChain || *t == masqChain) {
				toDelete.push_back(keys[i]);
				continue;
			}
			if (keys[i].map == ruleset::MapId::Masq4 || keys[i].map == ruleset::MapId::Masq6) {
				/*
				 * IPAM gave this container the address, so a masq
				 * element of another attachment for it is stale.
				 */
				toDelete.push_back(keys[i]);
				continue;
			}
			auto owner = chainOwner(s, *t);
			if (!owner)
				return Unexpected(kernelError(owner.error()));
			/*
			 * No batch checks these reads: they must be of one
			 * generation, or the owner's DEL may have come between
			 * the element and its chain, and the error would name
			 * no owner (or, with the chain re-made, a state that
			 * never existed). Read again then.
			 */
			auto now = nft::getGeneration(s);
			if (!now)
				return Unexpected(kernelError(now.error()));
			if (*now != *genid)
				return Step::Retry;
			return Unexpected(cni::Error{
				cni::ErrPortConflict,
				"host " + portDescription(keys[i]) + " is already published by " +
					describeOwner(*owner, *t) + " (chain " + *t + "); nothing was changed",
				keys[i].text });
		}
	}

	nft::Batch b(*genid);
	if (!*haveTable || repairSkeleton)
		ruleset::addSkeleton(b, prio, repairSkeleton);
	ruleset::deleteElements(b, toDelete);
	ruleset::addAttachment(b, plan, old.dnatChainExists, old.masqChainExists);
	if (!plan.hasMasquerade() && old.masqChainExists)
		ruleset::deleteChain(b, masqChain);

	auto r = b.commit(s);
	if (r)
		return Step::Done;
	/*
	 * ERESTART: the ruleset changed since our read. EEXIST: another
	 * process built the skeleton or took a key meanwhile; the next read
	 * sees it (and reports a conflict if it is one).
	 */
	if (r.error().errnum == ERESTART || r.error().errnum == EEXIST)
		return Step::Retry;
	return Unexpected(kernelError(r.error()));
}

/*
 * Re-reads the kernel to explain an ADD that kept failing: EEXIST that the
 * retries could not resolve ends here as a plain kernel error.
 */

} /* namespace */

CniResult commandAdd(const cni::Config &cfg, const cni::Environment &env)
{
	auto plan = planFor(cfg, env);
	if (!plan)
		return Unexpected(std::move(plan).error());

	/* No address the mappings apply to: replace with nothing, as DEL. */
	if (plan->rules.empty())
		return deleteAttachment(plan->who);

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
	auto r = withRetries("ADD", [&] { return addAttempt(*s, *plan, prio); });
	if (!r)
		return r;

	/* After the rules are in place, so no new stale entry can appear (k8s #59286). */
	flushUdpConntrack(plan->rules);
	return {};
}

CniResult commandDel(const cni::Config &cfg, const cni::Environment &env)
{
	/* Stateless: the attachment's chains say what it owns. */
	return deleteAttachment(Attachment{ cfg.name, env.containerId, env.ifname });
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
	auto skeleton = skeletonProblem(*s);
	if (!skeleton)
		return Unexpected(kernelError(skeleton.error()));
	if (*skeleton)
		return Unexpected(checkFailed(**skeleton));

	auto st = readAttachment(*s, plan->who);
	if (!st)
		return Unexpected(kernelError(st.error()));
	const std::string dnatChain = ruleset::dnatChainName(plan->who);
	const std::string masqChain = ruleset::masqChainName(plan->who);
	if (!st->dnatChainExists)
		return Unexpected(checkFailed("chain " + dnatChain + " of this attachment is missing"));
	if (!st->undecodable.empty())
		return Unexpected(checkFailed("chain " + dnatChain + " holds a rule nft-portmap did not write: " +
					      st->undecodable.front()));
	for (const auto &want : plan->rules)
		if (std::find(st->dnatRules.begin(), st->dnatRules.end(), want) == st->dnatRules.end())
			return Unexpected(checkFailed("DNAT rule " + ruleText(want) + " is missing from chain " +
						      dnatChain));
	if (!sameElements(st->dnatRules, plan->rules))
		return Unexpected(checkFailed("chain " + dnatChain + " holds DNAT rules that the configuration does not ask for"));
	if (plan->hasMasquerade() && !st->masqChainExists)
		return Unexpected(checkFailed("masquerade chain " + masqChain + " is missing"));
	if (!plan->hasMasquerade() && st->masqChainExists)
		return Unexpected(checkFailed("masquerade chain " + masqChain + " exists although snat is off"));
	if (!sameElements(st->masqRules, ruleset::planMasqRules(*plan)))
		return Unexpected(checkFailed("chain " + masqChain + " does not hold the masquerade rules the configuration asks for (" +
					      std::to_string(st->masqRules.size()) + " rules, expected " +
					      std::to_string(ruleset::planMasqRules(*plan).size()) + ")"));

	auto keys = ruleset::planKeys(*plan);
	auto targets = elementTargets(*s, keys);
	if (!targets)
		return Unexpected(kernelError(targets.error()));
	for (std::size_t i = 0; i < keys.size(); i++) {
		const auto &t = (*targets)[i];
		const char *map = ruleset::mapName(keys[i].map);
		if (!t)
			return Unexpected(checkFailed(std::string("element ") + keys[i].text + " is missing from map " + map));
		if (*t != dnatChain && *t != masqChain) {
			auto owner = chainOwner(*s, *t);
			return Unexpected(checkFailed(std::string("element ") + keys[i].text + " of map " + map +
						      " belongs to " +
						      describeOwner(owner ? *owner : std::nullopt, *t)));
		}
	}
	return {};
}

namespace {

bool isCutComment(const Attachment &a)
{
	for (const std::string *f : { &a.network, &a.containerId, &a.ifname })
		if (f->size() > 9 && (*f)[f->size() - 9] == '~')
			return true;
	return false;
}

/* Whether chain is the DNAT or masq chain of the attachment a comment names. */
bool isOwnChainName(const std::string &chain, const Attachment &fromComment)
{
	if (chain.rfind("pm-", 0) != 0)
		return false;
	if (isCutComment(fromComment))
		return true;
	return chain == ruleset::dnatChainName(fromComment) || chain == ruleset::masqChainName(fromComment);
}

/* GC: the chains of this network whose attachment is not valid any more. */
StepResult gcAttempt(nft::Socket &s, const cni::Config &cfg, std::size_t &removed)
{
	auto genid = nft::getGeneration(s);
	if (!genid)
		return Unexpected(kernelError(genid.error()));
	auto chains = nft::dumpChains(s, ruleset::kTableFamily, ruleset::kTableName);
	if (!chains) {
		if (chains.error().errnum == ENOENT)
			return Step::Done;
		return Unexpected(kernelError(chains.error()));
	}

	std::set<std::string> valid;
	for (const auto &va : *cfg.validAttachments) {
		Attachment a{ cfg.name, va.containerId, va.ifname };
		valid.insert(ruleset::dnatChainName(a));
		valid.insert(ruleset::masqChainName(a));
	}

	std::vector<std::string> stale;
	for (const auto &c : *chains) {
		const char *name = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME);
		if (!name || valid.count(name))
			continue;
		auto comment = ruleset::chainComment(c.get());
		if (!comment)
			continue;
		auto owner = ruleset::parseAttachmentComment(*comment);
		/* Only attachments of the network this GC was called for. */
		if (!owner || !ruleset::commentFieldMatches(owner->network, cfg.name))
			continue;
		/*
		 * Only chains we made: an attachment's chain is named after the
		 * hash of the attachment its comment names. (A comment whose
		 * fields were cut cannot be hashed again; its pm- name and the
		 * hashes in its cut fields stand for it.)
		 */
		if (!isOwnChainName(name, *owner))
			continue;
		stale.push_back(name);
	}
	if (stale.empty())
		return Step::Done;

	auto refs = findReferences(s, stale);
	if (!refs)
		return Unexpected(kernelError(refs.error()));

	nft::Batch b(*genid);
	ruleset::deleteElements(b, *refs);
	for (const auto &c : stale)
		ruleset::deleteChain(b, c);
	auto r = commitOrRetry(b, s);
	if (r && *r == Step::Done)
		removed = stale.size();
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
