/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One nf_tables transaction. The messages go into a paged nftnl_batch, so
 * that tens of thousands of operations (GC) never copy the batch to grow
 * it, and are sent with one sendmsg() of the pages.
 *
 * How the kernel answers (nfnetlink_rcv_batch(), checked on 6.18): it
 * processes the whole batch inside our sendmsg() and queues the answers
 * before sendmsg() returns:
 *  - every operation with NLM_F_ACK gets one NLMSG_ERROR with its own
 *    sequence number: 0 when accepted, the errno when refused; processing
 *    goes on after a refusal, so a failed batch answers every operation;
 *  - a stale NFNL_BATCH_GENID is refused as a whole before any operation is
 *    looked at: one ERESTART with the sequence number of BATCH_BEGIN;
 *  - a failure of the commit itself, or a lack of privilege, is one error
 *    with the sequence number of the first message (BATCH_BEGIN).
 * So commit() reads what is queued without blocking, and only waits (for a
 * short while) if an answer is missing although nothing was refused.
 */
#include "nft/batch.hpp"

#include <atomic>
#include <cstdlib>
#include <functional>
#include <unordered_map>
#include <utility>

#include <arpa/inet.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/uio.h>

#include <libnftnl/batch.h>
#include <libnftnl/common.h>

#include "nft/handles.hpp"

namespace nftpm::nft {

namespace {

/*
 * Sequence numbers of batch messages come from one counter per process,
 * far above the ones Socket::nextSeq() hands out, so that the answers of
 * different batches and requests on one socket never collide.
 */
std::atomic<std::uint32_t> batchSeq{ 0x40000000u };

std::uint32_t allocSeqs(std::uint32_t count)
{
	return batchSeq.fetch_add(count, std::memory_order_relaxed);
}

/*
 * Pages of 128 KiB; a message may run past the end of a page by up to the
 * overrun before the page is closed. The kernel's 16-bit attribute lengths
 * keep a message near 64 KiB, and libnftnl writes one element beyond a
 * full element list before taking it back, hence twice that.
 */
constexpr std::uint32_t kPageSize = 128 * 1024;
constexpr std::uint32_t kPageOverrun = 2 * 64 * 1024 + 4096;

/*
 * Kernel receive-buffer memory that one answer costs: a small skb is
 * accounted at its truesize (about 768 bytes for an ACK), not its length.
 */
constexpr std::size_t kAnswerBudget = 1024;

/* How long to wait for an answer that is missing though nothing was refused. */
constexpr int kStragglerTimeoutMs = 1000;

const std::string kCommit = "commit batch";

/* NFNL_MSG_BATCH_BEGIN / END: an nfgenmsg whose res_id names the subsystem. */
nlmsghdr *putBatchMarker(void *buf, std::uint16_t type, std::uint32_t seq)
{
	nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;

	auto *nfg = static_cast<nfgenmsg *>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(NFNL_SUBSYS_NFTABLES);
	return nlh;
}

} /* namespace */

struct Batch::Impl {
	nftnl_batch *pages;
	std::optional<std::uint32_t> genid;
	std::uint32_t beginSeq;
	std::uint32_t endSeq;
	std::size_t bytes = 0; /* BEGIN and the operations, END not included */

	explicit Impl(std::optional<std::uint32_t> generation)
		: pages(nftnl_batch_alloc(kPageSize, kPageOverrun)), genid(generation),
		  beginSeq(allocSeqs(2)), endSeq(beginSeq + 1)
	{
		if (!pages)
			std::abort(); /* as nft does: no way on without memory */

		nlmsghdr *nlh = putBatchMarker(nftnl_batch_buffer(pages), NFNL_MSG_BATCH_BEGIN,
					       beginSeq);
		/* Compare-and-swap: the kernel refuses the whole batch with
		 * ERESTART unless the ruleset is still at this generation. */
		if (genid)
			mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(*genid));
		close(nlh);
	}

	~Impl() { nftnl_batch_free(pages); }

	/* Header of the next message, written in place at the end of the batch. */
	nlmsghdr *open(std::uint16_t type, std::uint16_t family, std::uint16_t flags,
		       std::uint32_t seq)
	{
		/* NLM_F_ACK on every operation: each one is answered by its seq. */
		return nftnl_nlmsg_build_hdr(static_cast<char *>(nftnl_batch_buffer(pages)), type,
					     family, flags | NLM_F_ACK, seq);
	}

	void close(const nlmsghdr *nlh)
	{
		bytes += nlh->nlmsg_len;
		if (nftnl_batch_update(pages) < 0)
			std::abort();
	}

	void add(std::vector<Op> &ops, std::uint16_t type, std::uint16_t family,
		 std::uint16_t flags, std::string what,
		 const std::function<void(nlmsghdr *)> &payload)
	{
		std::uint32_t seq = allocSeqs(1);
		nlmsghdr *nlh = open(type, family, flags, seq);
		payload(nlh);
		close(nlh);
		ops.push_back({ seq, std::move(what) });
	}

	/*
	 * The element list of one message is one attribute, limited to 64 KiB
	 * by its 16-bit length: libnftnl fills a message up to that and says
	 * whether elements are left for another one. Each message is its own
	 * operation with the same description.
	 */
	void addElements(std::vector<Op> &ops, std::uint16_t type, std::uint16_t flags,
			 const nftnl_set *s, const std::string &what)
	{
		auto family = static_cast<std::uint16_t>(nftnl_set_get_u32(s, NFTNL_SET_FAMILY));
		nftnl_set_elems_iter *iter = nftnl_set_elems_iter_create(s);
		if (!iter)
			std::abort();

		while (nftnl_set_elems_iter_cur(iter)) {
			int more = 0;
			add(ops, type, family, flags, what, [iter, &more](nlmsghdr *nlh) {
				more = nftnl_set_elems_nlmsg_build_payload_iter(nlh, iter);
			});
			if (more <= 0)
				break;
		}
		nftnl_set_elems_iter_destroy(iter);
	}

	std::vector<std::uint8_t> endMessage() const
	{
		std::vector<std::uint8_t> buf(MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(nfgenmsg)));
		putBatchMarker(buf.data(), NFNL_MSG_BATCH_END, endSeq);
		return buf;
	}

	std::vector<iovec> iovecs() const
	{
		std::vector<iovec> iov(static_cast<std::size_t>(nftnl_batch_iovec_len(pages)));
		nftnl_batch_iovec(pages, iov.data(), static_cast<std::uint32_t>(iov.size()));
		return iov;
	}
};

Batch::Batch(std::optional<std::uint32_t> genid) : impl_(new Impl(genid))
{
}

Batch::~Batch()
{
	delete impl_;
}

Batch::Batch(Batch &&other) noexcept : impl_(std::exchange(other.impl_, nullptr)),
					  ops_(std::move(other.ops_))
{
}

Batch &Batch::operator=(Batch &&other) noexcept
{
	if (this != &other) {
		delete impl_;
		impl_ = std::exchange(other.impl_, nullptr);
		ops_ = std::move(other.ops_);
	}
	return *this;
}

std::size_t Batch::bytes() const
{
	return impl_->bytes + impl_->endMessage().size();
}

void Batch::addTable(const nftnl_table *t, bool exclusive, std::string what)
{
	impl_->add(ops_, NFT_MSG_NEWTABLE,
		   static_cast<std::uint16_t>(nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY)),
		   NLM_F_CREATE | (exclusive ? NLM_F_EXCL : 0), std::move(what),
		   [t](nlmsghdr *nlh) { nftnl_table_nlmsg_build_payload(nlh, t); });
}

void Batch::deleteTable(const nftnl_table *t, std::string what)
{
	impl_->add(ops_, NFT_MSG_DELTABLE,
		   static_cast<std::uint16_t>(nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY)), 0,
		   std::move(what), [t](nlmsghdr *nlh) { nftnl_table_nlmsg_build_payload(nlh, t); });
}

void Batch::addChain(const nftnl_chain *c, bool exclusive, std::string what)
{
	impl_->add(ops_, NFT_MSG_NEWCHAIN,
		   static_cast<std::uint16_t>(nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY)),
		   NLM_F_CREATE | (exclusive ? NLM_F_EXCL : 0), std::move(what),
		   [c](nlmsghdr *nlh) { nftnl_chain_nlmsg_build_payload(nlh, c); });
}

void Batch::deleteChain(const nftnl_chain *c, std::string what)
{
	impl_->add(ops_, NFT_MSG_DELCHAIN,
		   static_cast<std::uint16_t>(nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY)), 0,
		   std::move(what), [c](nlmsghdr *nlh) { nftnl_chain_nlmsg_build_payload(nlh, c); });
}

void Batch::addRule(const nftnl_rule *r, std::string what)
{
	/* libnftnl only reads the rule, but its prototype is not const. */
	auto *rule = const_cast<nftnl_rule *>(r);
	impl_->add(ops_, NFT_MSG_NEWRULE,
		   static_cast<std::uint16_t>(nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY)),
		   NLM_F_CREATE | NLM_F_APPEND, std::move(what),
		   [rule](nlmsghdr *nlh) { nftnl_rule_nlmsg_build_payload(nlh, rule); });
}

void Batch::flushChain(std::uint16_t family, const std::string &table, const std::string &chain,
		       std::string what)
{
	/* DELRULE naming only table and chain deletes every rule of the chain. */
	RulePtr r(nftnl_rule_alloc());
	if (!r)
		std::abort();
	nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, family);
	nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.c_str());
	nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain.c_str());
	impl_->add(ops_, NFT_MSG_DELRULE, family, 0, std::move(what),
		   [&r](nlmsghdr *nlh) { nftnl_rule_nlmsg_build_payload(nlh, r.get()); });
}

void Batch::addSet(const nftnl_set *s, std::string what)
{
	auto *set = const_cast<nftnl_set *>(s);
	impl_->add(ops_, NFT_MSG_NEWSET,
		   static_cast<std::uint16_t>(nftnl_set_get_u32(s, NFTNL_SET_FAMILY)), NLM_F_CREATE,
		   std::move(what), [set](nlmsghdr *nlh) { nftnl_set_nlmsg_build_payload(nlh, set); });
}

void Batch::addElements(const nftnl_set *s, bool exclusive, std::string what)
{
	impl_->addElements(ops_, NFT_MSG_NEWSETELEM, NLM_F_CREATE | (exclusive ? NLM_F_EXCL : 0), s,
			   what);
}

void Batch::deleteElements(const nftnl_set *s, std::string what)
{
	impl_->addElements(ops_, NFT_MSG_DELSETELEM, 0, s, what);
}

void Batch::addObject(const nftnl_obj *o, bool exclusive, std::string what)
{
	/* libnftnl only reads the object, but its prototypes are not const. */
	auto *obj = const_cast<nftnl_obj *>(o);
	impl_->add(ops_, NFT_MSG_NEWOBJ, static_cast<std::uint16_t>(nftnl_obj_get_u32(obj, NFTNL_OBJ_FAMILY)),
		   NLM_F_CREATE | (exclusive ? NLM_F_EXCL : 0), std::move(what),
		   [obj](nlmsghdr *nlh) { nftnl_obj_nlmsg_build_payload(nlh, obj); });
}

void Batch::deleteObject(const nftnl_obj *o, std::string what)
{
	auto *obj = const_cast<nftnl_obj *>(o);
	impl_->add(ops_, NFT_MSG_DELOBJ, static_cast<std::uint16_t>(nftnl_obj_get_u32(obj, NFTNL_OBJ_FAMILY)),
		   0, std::move(what), [obj](nlmsghdr *nlh) { nftnl_obj_nlmsg_build_payload(nlh, obj); });
}

std::vector<std::uint8_t> Batch::encoded() const
{
	std::vector<std::uint8_t> out;
	out.reserve(bytes());
	for (const iovec &v : impl_->iovecs()) {
		const auto *p = static_cast<const std::uint8_t *>(v.iov_base);
		out.insert(out.end(), p, p + v.iov_len);
	}
	auto end = impl_->endMessage();
	out.insert(out.end(), end.begin(), end.end());
	return out;
}

namespace {

/* The answers to one commit, matched to the operations by sequence number. */
class Answers
{
public:
	explicit Answers(const std::unordered_map<std::uint32_t, std::size_t> &bySeq)
		: bySeq_(bySeq), answered_(bySeq.size(), false), missing_(bySeq.size())
	{
	}

	void take(const nlmsghdr *nlh)
	{
		if (nlh->nlmsg_type != NLMSG_ERROR)
			return;
		Socket::Ack ack = Socket::parseAck(nlh);

		auto it = bySeq_.find(nlh->nlmsg_seq);
		if (it == bySeq_.end()) {
			/* BATCH_BEGIN's seq (ERESTART, commit failure) or 0. */
			if (ack.errnum && !batchError_)
				batchError_ = std::move(ack);
			return;
		}

		std::size_t i = it->second;
		if (!answered_[i]) {
			answered_[i] = true;
			--missing_;
		}
		if (ack.errnum && (!refused_ || i < *refused_)) {
			refused_ = i;
			refusedAck_ = std::move(ack);
		}
	}

	bool complete() const { return missing_ == 0; }
	bool anyError() const { return refused_ || batchError_; }
	const std::optional<std::size_t> &refused() const { return refused_; }
	const Socket::Ack &refusedAck() const { return refusedAck_; }
	const std::optional<Socket::Ack> &batchError() const { return batchError_; }

private:
	const std::unordered_map<std::uint32_t, std::size_t> &bySeq_;
	std::vector<bool> answered_;
	std::size_t missing_;
	std::optional<std::size_t> refused_;
	Socket::Ack refusedAck_;
	std::optional<Socket::Ack> batchError_;
};

} /* namespace */

Result<void> Batch::commit(Socket &socket)
{
	if (ops_.empty())
		return {};

	socket.discardPending();

	std::unordered_map<std::uint32_t, std::size_t> bySeq;
	bySeq.reserve(ops_.size());
	for (std::size_t i = 0; i < ops_.size(); ++i)
		bySeq.emplace(ops_[i].seq, i);

	auto end = impl_->endMessage();
	auto iov = impl_->iovecs();
	iov.push_back({ end.data(), end.size() });

	/*
	 * The batch is one datagram, which the kernel refuses with EMSGSIZE
	 * if it exceeds the send buffer; and every answer is queued at once,
	 * so a receive buffer too small for all of them drops some.
	 */
	socket.reserveSendBuffer(bytes() + 4096);
	socket.reserveReceiveBuffer(ops_.size() * kAnswerBudget + 64 * 1024);

	auto sent = socket.send(iov.data(), iov.size(), kCommit);
	if (!sent)
		return sent;

	Answers answers(bySeq);
	bool lost = false;
	while (!answers.complete()) {
		/*
		 * Once something was refused or lost, the answers still due
		 * are queued already or never come.
		 */
		int timeout = answers.anyError() || lost ? 0 : kStragglerTimeoutMs;
		auto data = socket.receive(timeout, kCommit);
		if (!data) {
			if (data.error().errnum == ENOBUFS) {
				lost = true;
				continue;
			}
			socket.markPending();
			return Unexpected(std::move(data).error());
		}
		if (data->empty())
			break;

		auto len = static_cast<int>(data->size());
		for (auto *nlh = reinterpret_cast<const nlmsghdr *>(data->data()); mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len))
			answers.take(nlh);
	}

	if (answers.refused()) {
		const Socket::Ack &ack = answers.refusedAck();
		return fail(ack.errnum, ops_[*answers.refused()].what, ack.detail);
	}
	if (answers.batchError()) {
		const Socket::Ack &ack = answers.batchError().value();
		std::string detail = ack.detail;
		if (ack.errnum == ERESTART && detail.empty())
			detail = "the ruleset changed since generation " +
				 std::to_string(impl_->genid.value_or(0));
		return fail(ack.errnum, kCommit, std::move(detail));
	}
	if (lost)
		return fail(ENOBUFS, kCommit,
			    "answers were lost; the batch may or may not have been applied");
	if (!answers.complete())
		return fail(ETIMEDOUT, kCommit, "not every operation was answered");
	return {};
}

} /* namespace nftpm::nft */
