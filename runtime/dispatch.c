/* runtime/dispatch.c - one governed call: __govrt_dispatch.
 *
 * A site whose verdict byte is set lands here. Decisions govrt can take by
 * itself (deny, emulate) are answered at once from the site's decision; the
 * rest go to the agent through a slot of the shared region:
 *
 *   take a slot (CAS on owner_tid; each thread keeps coming back to the same
 *   one) -> write the request frame -> state = REQUEST -> wake the agent only
 *   if it sleeps -> spin up to GOV_SPIN_US on state, then sleep on it as a
 *   futex (client_sleeping tells the agent to wake us) -> read the reply.
 *
 * A call the agent does not answer in GOV_TIMEOUT_MS, or that finds no
 * agent, takes the fail outcome (GOV_FAIL). A signal that interrupts the
 * wait runs its handler and the wait goes on: the call itself has not run
 * yet, so it keeps its own EINTR behaviour when it does. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "gov/wire.h"
#include "govrt_private.h"
#include "../rules/dynamic/dynrt.h"

#define PURE_SPIN_NS 2000

/* The thread's identity is read once and again only after a fork (a
 * child's only thread has a new tid and pid): no system call per call. */
struct thread_state {
	unsigned gen1;      /* govrt.fork_gen + 1 when tid and pid were read; 0 never */
	uint32_t tid, pid;
	uint32_t slot_hint; /* the slot this thread used last */
	uint32_t counter;   /* per-thread call counter, low half of seq */
};
static __thread struct thread_state me __attribute__((tls_model("initial-exec")));

static __attribute__((noinline)) void read_identity(unsigned gen)
{
	me.tid = (uint32_t)syscall(SYS_gettid);
	me.pid = (uint32_t)getpid();
	me.gen1 = gen + 1;
}

static inline struct thread_state *my_identity(void)
{
	unsigned gen = atomic_load_explicit(&govrt.fork_gen, memory_order_relaxed);
	if (__builtin_expect(me.gen1 != gen + 1, 0))
		read_identity(gen);
	return &me;
}

static uint32_t my_tid(void)
{
	return my_identity()->tid;
}

#define COUNT(name) govrt_count(GOVRT_N_##name)

__thread int govrt_errno_given __attribute__((tls_model("initial-exec")));

/* Fills call->ret for "fail with err" in the site's convention. */
static int return_error(const struct gov_site *site, struct gov_call *call, int err)
{
	switch (site->ret_conv) {
	case GOV_RET_RAW:
		call->ret = -err;
		break;
	case GOV_RET_ERRNUM:
		call->ret = err;
		break;
	case GOV_RET_MAP_FAILED:
		call->ret = -1; /* (void *)-1 */
		govrt_give_errno(err);
		break;
	default:
		call->ret = site->types && site->types[0] == GOV_T_PTR ? 0 : -1;
		govrt_give_errno(err);
	}
	return GOV_RUN_RETURN;
}

static int fail_outcome(const struct gov_site *site, struct gov_call *call)
{
	if (govrt.cfg.fail_closed) {
		COUNT(fail_closed);
		return return_error(site, call, govrt.cfg.fail_errno);
	}
	COUNT(fail_open);
	return GOV_RUN_NATIVE;
}

static int apply(const struct gov_site *site, struct gov_call *call,
		 int action, int err, int64_t value)
{
	switch (action) {
	case GOV_ACT_DENY:
		COUNT(denied);
		return return_error(site, call, err > 0 ? err : EPERM);
	case GOV_ACT_EMULATE:
		COUNT(emulated);
		call->ret = value;
		return GOV_RUN_RETURN;
	default:
		return GOV_RUN_NATIVE;
	}
}

/* Takes slot i if it is free, and makes sure the agent scans that far. */
static struct gov_slot *try_slot(struct gov_region_hdr *h, uint32_t i, uint32_t tid)
{
	struct gov_slot *s = gov_region_slot(h, i);
	uint32_t free_owner = 0;
	if (s->owner_tid != 0 ||
	    !__atomic_compare_exchange_n(&s->owner_tid, &free_owner, tid, 0,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return NULL;
	uint32_t used = __atomic_load_n(&h->slots_used, __ATOMIC_RELAXED);
	while (used < i + 1 &&
	       !__atomic_compare_exchange_n(&h->slots_used, &used, i + 1, 0,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
	return s;
}

/* A free slot, preferring the one this thread used last; waits (yielding)
 * while every slot is taken, up to the call's timeout. */
static struct gov_slot *take_slot(struct govrt_conn *c)
{
	struct gov_region_hdr *h = c->region;
	uint32_t tid = my_tid(), n = h->nslots;
	struct gov_slot *s;
	if (me.slot_hint < n && (s = try_slot(h, me.slot_hint, tid)))
		return s;
	uint64_t deadline = gov_now_ns() + (uint64_t)govrt.cfg.timeout_ns;
	for (int waited = 0;; waited = 1) {
		for (uint32_t i = 0; i < n; i++) {
			if ((s = try_slot(h, i, tid))) {
				me.slot_hint = i;
				if (waited)
					COUNT(slot_waits);
				return s;
			}
		}
		if (gov_now_ns() >= deadline || !atomic_load(&c->alive))
			return NULL;
		sched_yield();
	}
}

/* The state stays REPLY (idle to the agent): writing IDLE would send the
 * state line to this CPU and back once more per call. */
static void release_slot(struct gov_slot *s)
{
	__atomic_store_n(&s->owner_tid, 0, __ATOMIC_RELEASE);
}

static void wake_agent(struct gov_region_hdr *h)
{
	uint32_t sleeping = 1;
	if (__atomic_load_n(&h->agent_sleeping, __ATOMIC_SEQ_CST) &&
	    __atomic_compare_exchange_n(&h->agent_sleeping, &sleeping, 0, 0,
					__ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
		gov_futex_wake(&h->agent_sleeping, 1);
}

/* Waits for REPLY. Returns 1 with the reply there, 0 if the call was
 * abandoned (timeout or agent gone); then the slot stays the agent's to free
 * (or dies with the region). */
static int wait_reply(struct govrt_conn *c, struct gov_slot *s)
{
	/* A hot agent answers within a few dozen polls: only then is the clock
	 * read. After that, spin with pause for 2 us, then with sched_yield so
	 * that on a busy machine the agent, or another caller, gets our CPU;
	 * then sleep. The timeout counts from the first clock read. */
	for (int i = 0; i < 64; i++) {
		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == GOV_SLOT_REPLY)
			return 1;
		__builtin_ia32_pause();
	}
	uint64_t start = gov_now_ns(), deadline = start + (uint64_t)govrt.cfg.timeout_ns;
	uint64_t spin_until = start + (uint64_t)govrt.cfg.spin_ns;
	uint64_t pause_until = start + PURE_SPIN_NS;
	for (unsigned i = 1;; i++) {
		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == GOV_SLOT_REPLY)
			return 1;
		if ((i & 63) == 0) {
			uint64_t now = gov_now_ns();
			if (now >= spin_until || !atomic_load(&c->alive))
				break;
			if (now >= pause_until) {
				sched_yield();
				continue;
			}
		}
		__builtin_ia32_pause();
	}
	for (;;) {
		uint64_t now = gov_now_ns();
		if (!atomic_load(&c->alive) || now >= deadline) {
			uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
			while (st == GOV_SLOT_REQUEST) {
				if (__atomic_compare_exchange_n(&s->state, &st, GOV_SLOT_ABANDONED, 0,
								__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
					return 0;
			}
			return st == GOV_SLOT_REPLY;
		}
		__atomic_store_n(&s->client_sleeping, 1, __ATOMIC_SEQ_CST);
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST);
		if (st != GOV_SLOT_REPLY) {
			long slice = (long)(deadline - now);
			if (slice > 100000000L)
				slice = 100000000L; /* look at alive at least every 100 ms */
			gov_futex_wait(&s->state, st, slice);
		}
		__atomic_store_n(&s->client_sleeping, 0, __ATOMIC_RELAXED);
		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == GOV_SLOT_REPLY)
			return 1;
	}
}

/* The cfs queue of the site's rule (docs/cfs.md). */
static int schedule(const struct gov_site *site, struct gov_call *call, uint32_t rule,
		    const struct gov_dyn_ctx *ctx)
{
	int r = govrt_cfs_run(site, call, rule, ctx);
	return r == GOVRT_CFS_TIMED_OUT ? return_error(site, call, EAGAIN) : r;
}

/* The rule number of a site whose decision runs a dynamic rule. */
static uint32_t site_rule(const struct gov_site *site)
{
	uint32_t di = __atomic_load_n(&site->decision, __ATOMIC_ACQUIRE);
	if (di >= atomic_load_explicit(&govrt.ndecisions, memory_order_acquire) ||
	    govrt.decisions[di].action != GOV_ACT_RULE)
		return GOV_REGION_DYN_MAX; /* no queue: runs unscheduled */
	return (uint32_t)govrt.decisions[di].value;
}

static int ask_agent(struct gov_site *site, struct gov_call *call)
{
	struct govrt_conn *c = govrt_conn_get();
	if (!c) {
		govrt_try_reconnect();
		if (!(c = govrt_conn_get()))
			return fail_outcome(site, call);
	}
	struct gov_slot *s = take_slot(c);
	if (!s) {
		COUNT(timeouts);
		govrt_conn_put(c);
		return fail_outcome(site, call);
	}
	uint32_t cap = c->region->slot_size - (uint32_t)sizeof *s;
	uint64_t seq = ((uint64_t)me.tid << 32) | ++me.counter;
	char why[160];
	long len = gov_wire_encode_req(s->payload, cap, seq, site, call, why, sizeof why);
	if (len < 0) {
		release_slot(s);
		govrt_conn_put(c);
		govrt_warn("%s:%u: call to %s not sent to the agent: %s", site->file,
			   site->line, site->callee, why);
		return fail_outcome(site, call);
	}
	s->len = (uint32_t)len;
	s->seq = seq;
	__atomic_store_n(&s->state, GOV_SLOT_REQUEST, __ATOMIC_SEQ_CST);
	wake_agent(c->region);

	int result, sched = 0;
	struct gov_dyn_ctx cls; /* a SCHEDULE from a rule in the agent */
	if (!wait_reply(c, s)) {
		if (atomic_load(&c->alive))
			COUNT(timeouts);
		result = fail_outcome(site, call);
	} else {
		struct gov_wire_rep rep;
		const char *text;
		if (gov_wire_decode_rep(&s->rep, s->payload, cap, seq, &rep, &text, why, sizeof why) < 0) {
			govrt_warn("bad reply from the agent for %s: %s", site->callee, why);
			result = fail_outcome(site, call);
		} else if (rep.status == GOV_WIRE_MALFORMED) {
			COUNT(malformed);
			govrt_warn("agent refused the call to %s: %s", site->callee,
				   text ? text : "malformed");
			result = fail_outcome(site, call);
		} else if (rep.action == GOV_ACT_RULE) {
			COUNT(agent_calls);
			cls.entity = (uint64_t)rep.value;
			gov_cfs_unpack(rep.err, &cls.weight, &cls.slots);
			sched = 1;
			result = GOV_RUN_NATIVE;
		} else if (rep.action == GOV_ACT_FORWARD) {
			COUNT(agent_calls);
			result = govrt_xcall_apply(site, call, &rep, s->payload, cap);
			if (result < 0)
				result = fail_outcome(site, call);
		} else if (rep.action == GOV_ACT_NATIVE && rep.body_len &&
			   (rep.body_len % sizeof *call->arg ||
			    rep.body_len / sizeof *call->arg > site->nparams ||
			    rep.body_len / sizeof *call->arg > GOV_MAX_ARGS)) {
			govrt_warn("bad reply from the agent for %s: %u bytes of arguments for a call "
				   "of %u", site->callee, rep.body_len, (unsigned)site->nparams);
			result = fail_outcome(site, call);
		} else {
			COUNT(agent_calls);
			/* a NATIVE may bring the words to run the call with (a rule's
			 * NATIVE_ARGS, docs/wire.md) */
			if (rep.action == GOV_ACT_NATIVE && rep.body_len)
				memcpy(call->arg, s->payload, rep.body_len);
			result = apply(site, call, rep.action, rep.err, rep.value);
		}
		release_slot(s);
	}
	govrt_conn_put(c);
	if (sched) /* with the slot free: the call may wait long for its turn */
		result = schedule(site, call, site_rule(site), &cls);
	return result;
}

/* A dynamic rule that runs here (placement process), on a context built
 * on the stack: for rules that may write any of it (see run_kept), and
 * for a call made while the thread's kept context is in use (a signal
 * handler's). The context's time_ns is 0 here (reading the clock would
 * cost more than the rule): a rule that needs the time calls
 * gov_time_ns(). Returns -1 when the agent must answer instead (FORWARD,
 * or the rule is the agent's). */
static __attribute__((noinline)) int run_full(struct gov_site *site, struct gov_call *call,
			      struct gov_dynrule *r, uint32_t i)
{
	static __thread const struct gov_site *id_site __attribute__((tls_model("initial-exec")));
	static __thread uint32_t id __attribute__((tls_model("initial-exec")));
	if (id_site != site) {
		id = gov_dyn_id(site->callee ? site->callee : "");
		id_site = site;
	}
	/* field by field: zeroing the whole context first (rep stos) costs more
	 * than the rule */
	struct gov_dyn_ctx ctx;
	ctx.site_id = site->id;
	ctx.kind = site->kind;
	ctx.sysno = site->sysno;
	ctx.func_id = id;
	ctx.nargs = site->nparams;
	/* word by word: the site has just stored them one by one, and a
	 * 16-byte load spanning two of those stores is not forwarded from the
	 * store buffer (it waits for them to reach the cache, longer than the
	 * rule takes); volatile keeps the compiler from merging the copies.
	 * Written out: as a loop of six (volatile stops the compiler from
	 * unrolling it) it cost 2-3 ns more per call on an AMD EPYC. */
	const volatile uint64_t *arg = call->arg;
	_Static_assert(GOV_DYN_MAX_ARGS == 6, "copy every argument word");
	ctx.args[0] = arg[0];
	ctx.args[1] = arg[1];
	ctx.args[2] = arg[2];
	ctx.args[3] = arg[3];
	ctx.args[4] = arg[4];
	ctx.args[5] = arg[5];
	ctx.caller_id = govrt_dyn_caller_id;
	ctx.callee_id = 0;
	struct thread_state *t = my_identity();
	ctx.pid = t->pid;
	ctx.tid = t->tid;
	ctx.time_ns = 0;
	ctx.value = 0;
	ctx.err = 0;
	ctx.forward_to = 0;
	ctx.entity = (uint64_t)ctx.pid << 32 | ctx.tid;
	ctx.weight = 0;
	ctx.slots = 0;
	ctx.tasklet = 0;
	unsigned n = site->nparams < GOV_DYN_MAX_ARGS ? site->nparams : GOV_DYN_MAX_ARGS;
	/* in a signal handler, the interrupted run's rule, context and fault
	 * flag, put back for its helpers and for the kept path's test */
	struct gov_dyn_running outer = gov_dyn_cur;
	int a = gov_dynrule_run_uncounted(r, &ctx);
	gov_dyn_cur = outer;
	switch (a) {
	case GOV_DYN_DENY:
		return apply(site, call, GOV_ACT_DENY, ctx.err, 0);
	case GOV_DYN_EMULATE:
		return apply(site, call, GOV_ACT_EMULATE, 0, ctx.value);
	case GOV_DYN_NATIVE_ARGS:
		memcpy(call->arg, ctx.args, n * sizeof *call->arg);
		return GOV_RUN_NATIVE;
	case GOV_DYN_FORWARD:
	case GOV_DYN_DEFER: /* the agent queues it (docs/tasklet.md) */
		return -1;
	case GOV_DYN_SCHEDULE:
		return schedule(site, call, i, &ctx);
	default:
		return GOV_RUN_NATIVE;
	}
}


/* The thread's kept context (issue 8): the fields the site and the thread
 * determine are written when the site, the rule or the process (a fork:
 * govrt_dispatch_atfork_child) changes, not on every call; a call writes
 * the argument words, and after the run only the answer words the rule
 * may write are reset (answers, r->ctx_answers found at load by bpf.c).
 * Only for rules that write no read-only field and never let the context
 * pointer go (r->ctx_kept).
 * The thread is inside a run on it while gov_dyn_cur.rule is set (the
 * rule its helpers act on): a signal handler's governed call made then
 * takes run_full, which puts gov_dyn_cur back when it is done. */
struct kept_ctx {
	struct gov_dyn_ctx ctx;
	const struct gov_site *site;    /* whose fields ctx holds; NULL = none */
	const struct gov_dynrule *rule; /* whose answers and number these are */
	uint32_t answers, rule_index;
	/* whether a call copies its argument words in: not when the rule
	 * reads none of the site's (r->ctx_args), which then stay 0 here */
	uint32_t copy_args;
	struct gov_call *call;          /* the call in the run */
};
static __thread struct kept_ctx kept __attribute__((tls_model("initial-exec"), aligned(64)));

/* the context seen as words, for the reset by mask */
typedef uint64_t __attribute__((may_alias)) ctx_word;
_Static_assert(sizeof(struct gov_dyn_ctx) % 8 == 0 && sizeof(struct gov_dyn_ctx) / 8 <= 32,
	       "ctx_answers has a bit per word of the context");
_Static_assert(offsetof(struct gov_dyn_ctx, entity) % 8 == 0, "entity is a word of its own");
#define ANSWER_WORDS (GOV_DYN_WORD(err) | GOV_DYN_WORD(value)) /* every rule's, at least */

static __attribute__((noinline)) void refill(struct kept_ctx *k, const struct gov_site *site,
					     const struct gov_dynrule *r, uint32_t i)
{
	struct thread_state *t = my_identity();
	struct gov_dyn_ctx *c = &k->ctx;
	memset(c, 0, sizeof *c);
	c->site_id = site->id;
	c->kind = site->kind;
	c->sysno = site->sysno;
	c->func_id = gov_dyn_id(site->callee ? site->callee : "");
	c->nargs = site->nparams;
	c->caller_id = govrt_dyn_caller_id;
	c->pid = t->pid;
	c->tid = t->tid;
	c->entity = (uint64_t)t->pid << 32 | t->tid;
	k->site = site;
	k->rule = r;
	k->answers = r->ctx_answers | ANSWER_WORDS;
	k->rule_index = i;
	unsigned n = site->nparams < GOV_DYN_MAX_ARGS ? site->nparams : GOV_DYN_MAX_ARGS;
	k->copy_args = (r->ctx_args & ((1u << n) - 1)) != 0;
}

/* A forked child's only thread: its kept context holds the parent's pid,
 * tid and entity; the next run fills it again (channel.c's atfork
 * handler calls this, so a run need not look at govrt.fork_gen). */
void govrt_dispatch_atfork_child(void)
{
	kept.site = NULL;
}

/* The answer words back to what the runtime sets before a run: 0, but the
 * entity, the calling thread. Most rules answer in err and value alone:
 * two stores, no loop. */
static inline __attribute__((always_inline)) void reset_answers(struct kept_ctx *k)
{
	uint32_t mask = k->answers;
	ctx_word *w = (ctx_word *)&k->ctx;
	if (__builtin_expect(mask == ANSWER_WORDS, 1)) {
		w[offsetof(struct gov_dyn_ctx, value) / 8] = 0;
		w[offsetof(struct gov_dyn_ctx, err) / 8] = 0;
		return;
	}
	const unsigned e = offsetof(struct gov_dyn_ctx, entity) / 8;
	for (; mask; mask &= mask - 1) {
		unsigned b = (unsigned)__builtin_ctz(mask);
		w[b] = b == e ? (uint64_t)k->ctx.pid << 32 | k->ctx.tid : 0;
	}
}

/* After a run: the answer words reset, then the thread is out of the run. */
static inline __attribute__((always_inline)) void kept_done(struct kept_ctx *k)
{
	reset_answers(k);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	gov_dyn_cur.rule = NULL;
}

/* A run's answer other than NATIVE, acted on. -1: the agent answers. */
static int answer(struct gov_site *site, struct gov_call *call, int a, int32_t err, int64_t value)
{
	switch (a) {
	case GOV_DYN_DENY:
		return apply(site, call, GOV_ACT_DENY, err, 0);
	case GOV_DYN_EMULATE:
		return apply(site, call, GOV_ACT_EMULATE, 0, value);
	case GOV_DYN_FORWARD:
	case GOV_DYN_DEFER: /* the agent queues it (docs/tasklet.md) */
		return -1;
	default:
		return GOV_RUN_NATIVE;
	}
}

/* What the fast path leaves out of line (its copies and calls would give
 * it a frame): a fault (the fail outcome), changed arguments, a
 * SCHEDULE's fields (taken before the context is reset: a SCHEDULE may
 * wait long, and the thread may run rules meanwhile). */
static __attribute__((noinline)) int kept_rare(struct gov_site *site, struct gov_call *call, uint64_t a)
{
	struct kept_ctx *k = &kept;
	struct gov_dyn_running *cur = &gov_dyn_cur;
	if (a == GOV_DYN_FAULT || a >= GOV_DYN_NACTIONS || cur->fault) {
		struct gov_dyn_running done = *cur;
		cur->fault = 0;
		a = (uint64_t)gov_dynrule_fault(cur->rule, &k->ctx, a, &done);
	}
	if (a == GOV_DYN_NATIVE_ARGS) {
		/* a rule that writes an argument has them all copied in */
		unsigned n = site->nparams < GOV_DYN_MAX_ARGS ? site->nparams : GOV_DYN_MAX_ARGS;
		if (k->copy_args)
			memcpy(call->arg, k->ctx.args, n * sizeof *call->arg);
		kept_done(k);
		return GOV_RUN_NATIVE;
	}
	if (a == GOV_DYN_SCHEDULE) {
		struct gov_dyn_ctx sched = k->ctx;
		uint32_t i = k->rule_index;
		kept_done(k);
		return schedule(site, call, i, &sched);
	}
	int32_t err = k->ctx.err;
	int64_t value = k->ctx.value;
	kept_done(k);
	return answer(site, call, (int)a, err, value);
}

/* The code of a rule that may run on the kept context now (JIT-compiled,
 * fit for it, enabled: r->kept) with the thread not inside a run already
 * (a signal handler's call); else NULL. */
typedef uint64_t (*rule_code)(void *ctx);
static inline __attribute__((always_inline)) rule_code kept_fits(struct gov_dynrule *r)
{
	rule_code code = atomic_load_explicit(&r->kept, memory_order_relaxed);
	return code && !gov_dyn_cur.rule ? code : NULL;
}

static int via_agent(struct gov_site *site, struct gov_call *call);

/* A run on the kept context whose rule's code returned a, other than
 * NATIVE with no helper fault. */
static __attribute__((noinline)) int kept_answer(uint64_t a)
{
	struct kept_ctx *k = &kept;
	/* the site is k->site: run_kept refilled the context for it */
	struct gov_site *site = (struct gov_site *)k->site;
	struct gov_call *call = k->call;
	int res;
	if (a == GOV_DYN_FAULT || a >= GOV_DYN_NACTIONS || gov_dyn_cur.fault ||
	    a == GOV_DYN_NATIVE_ARGS || a == GOV_DYN_SCHEDULE) {
		res = kept_rare(site, call, a);
	} else {
		/* the answer out, the context clean again, before acting on it */
		int32_t err = k->ctx.err;
		int64_t value = k->ctx.value;
		kept_done(k);
		res = answer(site, call, (int)a, err, value);
	}
	return res >= 0 ? res : via_agent(site, call);
}

/* The rest of a run on the kept context whose rule's code returned a. A
 * NATIVE answer with no helper fault: the answer words reset and the
 * thread out of the run, nothing else; the rest out of line, so that this
 * path has no frame. */
static __attribute__((noinline)) int kept_after(uint64_t a)
{
	if (__builtin_expect(a != GOV_DYN_NATIVE || gov_dyn_cur.fault, 0))
		return kept_answer(a);
	kept_done(&kept);
	return GOV_RUN_NATIVE;
}

/* The call's part of a run on the kept context, the site's fields in
 * place: the argument words (if the rule reads any of the site's), the
 * running rule's context and fault flag, then the JIT-compiled code
 * called directly (gov_dynrule_run's fault policy is in kept_after and
 * kept_answer). Nothing is live across the rule's call but what is in
 * the kept context (the call too): no callee-saved register to push and
 * pop on the way. */
static inline __attribute__((always_inline)) int kept_go(struct gov_call *call, rule_code code)
{
	struct kept_ctx *k = &kept;
	struct gov_dyn_running *cur = &gov_dyn_cur;
	k->call = call;
	if (k->copy_args) {
		/* word by word, as in run_full */
		const volatile uint64_t *arg = call->arg;
		k->ctx.args[0] = arg[0];
		k->ctx.args[1] = arg[1];
		k->ctx.args[2] = arg[2];
		k->ctx.args[3] = arg[3];
		k->ctx.args[4] = arg[4];
		k->ctx.args[5] = arg[5];
	}
	cur->ctx = &k->ctx;
	cur->fault = 0;
	return kept_after(code(&k->ctx));
}

/* A run on the kept context that first fills it for another site, rule or
 * process: out of line, so that the usual run has no frame. */
static __attribute__((noinline)) int kept_refill_go(struct gov_site *site, struct gov_call *call,
						    struct gov_dynrule *r, uint32_t i, rule_code code)
{
	refill(&kept, site, r, i);
	return kept_go(call, code);
}

/* One run on the kept context (kept_fits(r)): the running rule in TLS
 * first (from there on the thread is in the run, and a signal handler's
 * call leaves the kept context alone), the site's fields if they are not
 * this site's, then the call's part. Answers the call, asking the agent
 * when the rule says so. */
static inline __attribute__((always_inline)) int run_kept(struct gov_site *site, struct gov_call *call,
							  struct gov_dynrule *r, uint32_t i, rule_code code)
{
	struct kept_ctx *k = &kept;
	gov_dyn_cur.rule = r;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (__builtin_expect(k->site != site || k->rule != r, 0))
		return kept_refill_go(site, call, r, i, code);
	return kept_go(call, code);
}

/* A dynamic rule that runs here: on the kept context when the rule allows
 * it and it is free. Returns -1 when the agent must answer instead (the
 * kept path asks it itself). */
static inline __attribute__((always_inline)) int run_rule_on(struct gov_site *site, struct gov_call *call,
							     struct gov_dynrule *r, uint32_t i)
{
	rule_code code = kept_fits(r);
	if (__builtin_expect(code != NULL, 1))
		return run_kept(site, call, r, i, code);
	return run_full(site, call, r, i);
}

static int run_rule(struct gov_site *site, struct gov_call *call, uint32_t i)
{
	struct gov_dynrule *r = govrt_dyn_rule(i);
	return r ? run_rule_on(site, call, r, i) : -1;
}

/* Out of line: the frame ask_agent needs (the wire buffers) is not set
 * up on the paths govrt answers by itself. */
static __attribute__((noinline)) int via_agent(struct gov_site *site, struct gov_call *call)
{
	/* the program sees errno as if govrt were not there, unless the
	 * answer gives it one: a forwarded call that succeeds leaves the
	 * caller's errno as a direct call that does not touch it would */
	int saved = errno;
	govrt_errno_given = 0;
	int r = ask_agent(site, call);
	if (!govrt_errno_given)
		errno = saved;
	return r;
}

/* Through the direct grant id, else the agents' way. */
static __attribute__((noinline)) int direct(struct gov_site *site, struct gov_call *call, uint32_t id)
{
	int saved = errno, err = 0;
	govrt_errno_given = 0;
	int r = govrt_direct_call(site, call, id, my_tid(), &err);
	if (r == -2)
		return apply(site, call, GOV_ACT_DENY, err, 0);
	if (!govrt_errno_given)
		errno = saved;
	return r >= 0 ? r : via_agent(site, call);
}

/* govrt's own requests to the agent (runtime/tasklet.c): one round trip,
 * answered as a site's would be. */
int govrt_ask_agent(struct gov_site *site, struct gov_call *call)
{
	uint8_t sel = govrt_sud_hold();
	int r = ask_agent(site, call);
	govrt_sud_release(sel);
	return r;
}

static int dispatch(struct gov_site *site, struct gov_call *call)
{
	govrt_count_inline(GOVRT_N_dispatched);
	uint32_t di = __atomic_load_n(&site->decision, __ATOMIC_ACQUIRE);
	if (di >= atomic_load_explicit(&govrt.ndecisions, memory_order_acquire))
		di = GOVRT_DECISION_AGENT;
	const struct gov_decision *d = &govrt.decisions[di];
	switch (d->action) {
	case GOV_ACT_NATIVE:
		return GOV_RUN_NATIVE;
	case GOV_ACT_DENY:
	case GOV_ACT_EMULATE:
		return apply(site, call, d->action, d->err, d->value);
	case GOV_ACT_RULE: {
		int r = run_rule(site, call, (uint32_t)d->value);
		if (r >= 0)
			return r;
		return via_agent(site, call); /* the agent answers */
	}
	case GOV_ACT_FORWARD:
		if (d->value) /* a direct grant (xcall.c) */
			return direct(site, call, (uint32_t)d->value);
		return via_agent(site, call);
	default:
		return via_agent(site, call);
	}
}

/* With Syscall User Dispatch armed (sud.c), govrt's own syscalls (the
 * agent's futex, a reconnect) must not trap: hold the selector open. */
static __attribute__((noinline)) int dispatch_held(struct gov_site *site, struct gov_call *call)
{
	uint8_t sel = govrt_sud_hold();
	int r = dispatch(site, call);
	govrt_sud_release(sel);
	return r;
}

/* A rule placed in the process with the Syscall User Dispatch selector
 * armed (sud.c): the rule's helpers may make system calls (a log line, a
 * map's first allocation), so the selector is held open around the run. */
static __attribute__((noinline)) int run_rule_held(struct gov_site *site, struct gov_call *call,
						   struct gov_dynrule *r, uint32_t i)
{
	uint8_t sel = govrt_sud_hold();
	int res = run_rule_on(site, call, r, i);
	if (res < 0)
		res = via_agent(site, call);
	govrt_sud_release(sel);
	return res;
}

/* Out of line: its frame is not set up on the kept path. */
static __attribute__((noinline)) int run_full_here(struct gov_site *site, struct gov_call *call,
						   struct gov_dynrule *r, uint32_t i)
{
	int res = run_full(site, call, r, i);
	return res >= 0 ? res : via_agent(site, call);
}

/* A rule placed in the process, on the fast path below: with Syscall User
 * Dispatch off (the selector already open) and the rule fit for the kept
 * context, the run itself; else run_rule_held or run_full. */
static inline __attribute__((always_inline)) int run_rule_here(struct gov_site *site, struct gov_call *call,
							       struct gov_dynrule *r, uint32_t i)
{
	if (__builtin_expect(govrt_sud_selector != GOVRT_SUD_ALLOW, 0))
		return run_rule_held(site, call, r, i);
	rule_code code = kept_fits(r);
	if (__builtin_expect(code != NULL, 1))
		return run_kept(site, call, r, i, code);
	return run_full_here(site, call, r, i);
}

/* The entry of every governed call. The two decisions that need neither the
 * agent nor a system call — NATIVE, and a dynamic rule placed in the
 * process — are taken here, in a function with no frame of its own (the
 * rule's run is a tail call); everything else, and a thread whose counters
 * are not linked yet, goes through dispatch_held. */
int __govrt_dispatch(struct gov_site *site, struct gov_call *call)
{
	struct govrt_thread_counters *t = &govrt_my_counters;
	if (__builtin_expect(t->state != 2, 0))
		return dispatch_held(site, call);
	uint32_t di = __atomic_load_n(&site->decision, __ATOMIC_ACQUIRE);
	if (__builtin_expect(di >= atomic_load_explicit(&govrt.ndecisions, memory_order_acquire), 0))
		return dispatch_held(site, call);
	const struct gov_decision *d = &govrt.decisions[di];
	if (d->action == GOV_ACT_NATIVE) {
		govrt_count_linked(t, GOVRT_N_dispatched);
		return GOV_RUN_NATIVE;
	}
	struct gov_dynrule *r;
	if (d->action == GOV_ACT_RULE && (r = govrt_dyn_rule((uint32_t)d->value))) {
		govrt_count_linked(t, GOVRT_N_dispatched);
		return run_rule_here(site, call, r, (uint32_t)d->value);
	}
	return dispatch_held(site, call);
}
