/* runtime/cfs.c - the cfs rule's native mode, inside govrt (placement
 * process): threads of one program calling a governed function take turns
 * by weighted virtual runtime, and the chosen ones run the function
 * themselves, natively, with no agent on the path.
 *
 * A dynamic rule that answers GOV_DYN_SCHEDULE (gov/dynrule.h) names the
 * call's scheduling entity and weight; every call it schedules goes through
 * the run queue of that rule (one queue per loaded rule: a rule attached to
 * all of a callee's functions is that callee's scheduler). A queue lets at
 * most `slots` calls run at once (default: the online CPUs, as Linux runs
 * one task per CPU); the others wait in a red-black tree keyed by
 * (vruntime, arrival) - libbsd's header-only BSD RB_* macros, as in the
 * agent's cfs.c - and each freed slot goes to the leftmost waiter. An
 * entity's vruntime grows by each call's time x 1024 / weight; an entity
 * back from idling starts at the queue's least vruntime, so idleness is not
 * saved up as credit.
 *
 * The call site has no hook after the call, so the chosen thread calls the
 * function from here (dlsym of the callee's name, libffi for its type
 * string: functions of the executable need -rdynamic) and the site returns
 * its value. A function that cannot be found runs natively, unscheduled,
 * with one warning. libffi is referenced weakly: libgovrt.so links it, and
 * a static program that does not is not made to (its scheduled calls run
 * unscheduled, with the warning, unless libffi is linked in).
 *
 * Not here: the rule that classifies the call (rules/cfs/, run by
 * dispatch.c), the agent's scheduler of forwarded calls (agent/cfs.c).
 * Documented in docs/cfs.md. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ffi.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* tree.h marks its static functions __unused, which glibc does not define */
#ifndef __unused
#define __unused __attribute__((unused))
#endif
#include <bsd/sys/tree.h>
#include "govrt_private.h"
#include "gov/dynrule.h"

#pragma weak ffi_prep_cif
#pragma weak ffi_call
#pragma weak ffi_type_void
#pragma weak ffi_type_sint32
#pragma weak ffi_type_uint32
#pragma weak ffi_type_sint64
#pragma weak ffi_type_uint64
#pragma weak ffi_type_double
#pragma weak ffi_type_float
#pragma weak ffi_type_pointer

#define WEIGHT_DEFAULT 1024u
#define WEIGHT_MAX 1048576u
#define ENTITIES 1024 /* per queue; a full table starts over (all at min) */
/* An entity back from idling starts no further than this behind the
 * queue's least vruntime (Linux: half its scheduling latency), so a short
 * gap between two calls of a thread costs it nothing. */
#define IDLE_CREDIT_NS 3000000ull
/* A caller that ends a call still owed service (its vruntime less than
 * KEEP_GRAN_NS ahead of the leftmost waiter's) keeps its slot this long
 * for its next call, as Linux does not preempt a task for a waker that is
 * not ahead of it: without this, a thread calling in a loop would always
 * find the other waiting and strict alternation would ignore the
 * weights. */
#define RESERVE_NS 1000000ull
/* "Still owed" with hysteresis, as Linux's wakeup granularity: without
 * it, entities of equal weight (threads, with a rule that leaves the
 * entity as the runtime set it) took turns one call each, every turn a
 * wake-up of 20-800 us on a 2-CPU machine (bench/cfs --per-thread: 18k
 * hand-overs for 31k calls, makespan 2x direct at 16-32 threads). Each
 * entity's share over time still follows its weight. */
#define KEEP_GRAN_NS 1000000ull
/* ... and a caller whose next waiter is its own entity keeps it for
 * consecutive calls up to a slice (Linux's minimal granularity is about
 * this), so threads of one entity do not switch on every call. The slice
 * is wall time less the time Linux kept the caller waiting for a CPU (on
 * a shared machine a preempted caller would otherwise lose its slice
 * while it could not use it, go to the back of the queue, and a thread's
 * run of calls would end up interleaved with all the others'). No wall
 * limit: a preempted holder still owed is charged its wall time in
 * vruntime, so it stops being owed; one whose waiters are its own
 * entity's threads only delays those, as Linux would have. */
#define SLICE_NS 2000000ull
#define DELAY_UNKNOWN UINT64_MAX
/* One waiter at a time, the watcher, looks at a kept slot this often: a
 * caller that does not come back for it within RESERVE_NS loses it. The
 * watcher hands the role on when it stops waiting, so the others sleep
 * until they are handed a slot; POLL_NS is only their safety net (each
 * poll is a wake-up that takes a CPU from a slot holder). */
#define WATCH_NS 500000ull
#define POLL_NS 50000000ull
/* Each slot holder keeps its own slot (one per running call, as a CPU
 * stays with its task until the slice ends): with one kept slot per queue,
 * the second holder to end a call found it taken and handed its slot over,
 * then came back to find none and slept, a wake-up and a sleep per turn
 * (bench/cfs at 16-32 threads: 100-200 context switches a run where
 * Linux has a handful). A queue with more slots than this keeps at most
 * this many. */
#define KEPT_MAX 64
/* A slot freed by a thread that is leaving its CPU (it exits with the
 * slot kept, or it is the watcher going back to sleep) goes to a waiter
 * that runs there: one woken on another CPU waited in that CPU's queue
 * behind the other slot holder, this CPU idle, until Linux balanced (up
 * to milliseconds; in bench/cfs at 16-32 threads, most hand-overs are
 * such exits and their wake-ups most of the idle time, perf sched). So
 * the slot goes to the leftmost waiter, or to one of the next few of the
 * same entity that went to sleep on that CPU (threads of one entity share
 * its vruntime: the order between entities is kept), but only while the
 * leftmost has waited less than AFFINE_WAIT_NS: it is never passed over
 * for long. */
#define AFFINE_LOOK 4
#define AFFINE_WAIT_NS 4000000ull
/* PIN: a waiter handed a slot freed by a thread leaving its CPU (above)
 * is pinned, its affinity set to one CPU before it is woken, and runs pinned
 * until it gives the slot up: the slot's CPU, one of its affinity no other
 * slot holder runs on (the freeing CPU first; one pinned holder per CPU,
 * of any queue). Linux placed woken holders by its own heuristics: at
 * 16-32 threads the two holders often shared a CPU, and a woken holder
 * queued behind the other while a CPU idled, for up to milliseconds
 * (bench/cfs: holders runnable but off a CPU for 22 % of the time they
 * held a slot, CPUs busy 1.5 of 2 against 1.75 direct). A holder that took
 * a free slot at once (nobody waiting) is not pinned: uncontended calls
 * cost no system call and Linux places them. Nor is a waiter handed a slot
 * at the end of a call (its caller ahead, or its slice over): the caller
 * goes on running there, and Linux sees the other CPU idle; pinned away
 * from the caller's CPU, one slot's two threads took the two CPUs in turn,
 * each always the same one, so one busy with another process's work slowed
 * one of them only, charged in wall time (t_cfs_rule's 3:1 weights read
 * 4-5:1 at load 4). A pinned holder gets its own affinity back when it
 * gives its slot up (one system call), or from the watcher if its kept
 * slot expires; not when it exits. A waiter whose affinity is one CPU, or
 * with no CPU free (more slots than CPUs), is not pinned. A program that
 * reads a pinned holder's affinity sees one CPU; one that changes it
 * meanwhile sees it undone when the slot is given up. */

/* LEASE: a caller that keeps its slot (above) holds it on a lease, in its
 * own thread-local memory: until LEASE_NS after it was granted, its calls
 * of the same entity start and end without the queue's lock, their run
 * time charged to the entity when the lease ends (a call that ends after
 * it, the thread's exit, or its next call that the lease does not cover).
 * With the lock taken twice a call and the queue written, its cache lines
 * crossed between the CPUs of two slot holders on every call: the cfs
 * path cost 0.7 us a call with two threads against 0.2 alone (a 60 ns
 * task), 5-10 % of bench/cfs's 5-11 us task; 0.1 us with leases. A slot
 * is kept so even with nobody waiting (spare): a newcomer that finds
 * every slot kept takes a spare one whose keeper is not in a call, as it
 * would have found it free. A call that starts waiting moves wait_gen,
 * and each lease holder's next call start or end takes the lock and the
 * keep is decided again, as at the end of a call. The watcher takes a
 * lease's slot back as any kept slot, RESERVE_NS after its last call,
 * never during a call. A pinned caller keeps no spare slot: it gives it
 * up to have its own affinity back. */
#define LEASE_NS 200000ull
enum { LEASE_IDLE, LEASE_IN_CALL, LEASE_REVOKED };

struct entity {
	uint64_t key, vruntime;
	int used;
};

/* A call waiting for a slot, then running (in the other tree). */
struct waiter {
	RB_ENTRY(waiter) node;
	uint64_t vruntime, seq, key;
	uint64_t slice_start; /* when its caller's run of kept slots began */
	uint64_t slice_delay; /* its run_delay_ns() then (or later), or DELAY_UNKNOWN */
	uint64_t handed_at;   /* when its slot was given to it */
	uint64_t since;       /* when it began to wait */
	int cpu;     /* the CPU it went to sleep on (-1: unknown) */
	uint32_t go; /* futex word: 1 = the slot is this waiter's */
	pid_t tid;
	int pin;                    /* the CPU it was pinned to when handed its slot, or -1 */
	unsigned fork_gen;          /* govrt.fork_gen when it entered */
	const cpu_set_t *own;       /* its affinity while it waits (on enter's
				     * stack: not zeroed on every call), or NULL */
};

/* A thread's pin (PIN): the CPU its affinity is set to while it holds a
 * slot handed to it, and the affinity to give back. Thread-local; a kept
 * slot points to its keeper's, for the watcher to unpin it. One per
 * thread: pinned by one queue, a thread waiting in another has one CPU
 * in its affinity, and that one does not pin it. */
struct runq;
struct pin {
	int held; /* pinned, to cpu, by q's slot */
	int cpu;
	pid_t tid;
	const struct runq *q;
	cpu_set_t own;
};
static __thread struct pin my_pin __attribute__((tls_model("initial-exec")));

/* A thread's lease (LEASE) on the slot it keeps in q. The owner alone
 * writes it, but for state, which the watcher moves from IDLE to REVOKED
 * (under q's lock) when it takes the slot back, and until, which the
 * watcher reads. */
struct lease {
	_Atomic unsigned state;
	_Atomic uint64_t until;  /* the slot may be taken back from then on */
	const struct runq *q;    /* NULL: no lease */
	uint64_t key;            /* the entity its calls are of */
	uint64_t end;            /* its calls start until then */
	unsigned slots;          /* the slots it was granted with */
	uint64_t vruntime, calls; /* charged and counted when it ends */
	uint64_t slice_start, slice_delay;
	unsigned gen;             /* the queue's wait_gen when granted */
};
static __thread struct lease my_lease __attribute__((tls_model("initial-exec")));

/* A slot kept by the caller that ended a call on it, for its next call. */
struct kept {
	uint64_t key, until, slice_start, slice_delay;
	pthread_t thread;     /* only this caller takes it back */
	struct pin *pin;      /* its pin (the keeper's thread-local) */
	struct lease *lease;  /* its lease (the keeper's thread-local), or NULL */
	int spare;            /* kept with nobody waiting: a newcomer takes it
			       * from a keeper not in a call */
	uint64_t vruntime;    /* its entity's when kept: for min_vruntime */
	int cpu;              /* where its keeper ran: for placement (PIN) */
};

static int waiter_cmp(struct waiter *a, struct waiter *b)
{
	if (a->vruntime != b->vruntime)
		return a->vruntime < b->vruntime ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

RB_HEAD(waiters, waiter);
RB_GENERATE_STATIC(waiters, waiter, node, waiter_cmp)

struct runq {
	pthread_mutex_t lock;
	struct waiters tree, running_tree;
	unsigned running, slots;
	unsigned nkept;          /* slots kept for their callers (kept[0..nkept)) */
	struct kept kept[KEPT_MAX];
	struct waiter *watcher;
	uint64_t min_vruntime, seq;
	struct govrt_cfs_stats st;
	/* moves when a call starts waiting: lease holders look at it on
	 * each call (read-mostly, on its own cache line) and decide again */
	_Atomic unsigned wait_gen __attribute__((aligned(64)));
	unsigned nentities __attribute__((aligned(64)));
	struct entity ent[ENTITIES];
};

static _Atomic(struct runq *) queues[GOV_REGION_DYN_MAX];
static pthread_mutex_t queues_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned default_slots(void)
{
	static unsigned slots;
	if (!slots) {
		const char *e = getenv("GOV_CFS_SLOTS");
		long n = e ? strtol(e, NULL, 10) : 0;
		if (n <= 0)
			n = sysconf(_SC_NPROCESSORS_ONLN);
		slots = n > 0 ? (unsigned)n : 1;
	}
	return slots;
}

static struct runq *queue_get(uint32_t rule)
{
	struct runq *q = atomic_load_explicit(&queues[rule], memory_order_acquire);
	if (q)
		return q;
	pthread_mutex_lock(&queues_lock);
	q = atomic_load(&queues[rule]);
	if (!q && (q = aligned_alloc(64, sizeof *q))) {
		memset(q, 0, sizeof *q);
		pthread_mutex_init(&q->lock, NULL);
		RB_INIT(&q->tree);
		RB_INIT(&q->running_tree);
		q->slots = default_slots();
		atomic_store_explicit(&queues[rule], q, memory_order_release);
	}
	pthread_mutex_unlock(&queues_lock);
	return q;
}

/* q->lock held. Never NULL: a full table starts over. */
static struct entity *entity_get(struct runq *q, uint64_t key)
{
	uint64_t h = key * 0x9E3779B97F4A7C15ull;
	for (;;) {
		for (unsigned i = 0; i < ENTITIES; i++) {
			struct entity *e = &q->ent[(h + i) % ENTITIES];
			if (e->used && e->key == key)
				return e;
			if (!e->used && q->nentities < ENTITIES * 3 / 4) {
				*e = (struct entity){ key, q->min_vruntime, 1 };
				q->nentities++;
				return e;
			}
			if (!e->used)
				break;
		}
		memset(q->ent, 0, sizeof q->ent);
		q->nentities = 0;
	}
}

/* q->lock held: min_vruntime follows the least vruntime of the calls
 * running (as they started), waiting, and of the kept slots' entities
 * (as kept: their keepers' calls under a lease are nowhere else), and
 * never goes back. */
static void update_min(struct runq *q)
{
	struct waiter *r = RB_MIN(waiters, &q->running_tree), *w = RB_MIN(waiters, &q->tree);
	uint64_t v = UINT64_MAX;
	if (r)
		v = r->vruntime;
	if (w && w->vruntime < v)
		v = w->vruntime;
	for (unsigned i = 0; i < q->nkept; i++)
		if (q->kept[i].vruntime < v)
			v = q->kept[i].vruntime;
	if (v != UINT64_MAX && v > q->min_vruntime)
		q->min_vruntime = v;
}

/* q->lock held: the waiter a slot freed on `cpu` goes to (AFFINE_LOOK). */
static struct waiter *next_waiter(struct runq *q, int cpu, uint64_t now)
{
	struct waiter *first = RB_MIN(waiters, &q->tree);
	if (!first || cpu < 0 || first->cpu == cpu || now - first->since >= AFFINE_WAIT_NS)
		return first;
	struct waiter *w = first;
	for (unsigned i = 0; i < AFFINE_LOOK && (w = RB_NEXT(waiters, &q->tree, w)); i++)
		if (w->key == first->key && w->cpu == cpu)
			return w;
	return first;
}

static int pins_usable(void);

/* The CPUs pinned holders hold (PIN), of every queue: one per CPU in the
 * process (two queues handing slots over at one thread's exit pinned
 * both waiters to its CPU). Taken and given back atomically: each queue
 * has its own lock. */
static _Atomic uint64_t pinned_cpus[CPU_SETSIZE / 64];

static int pin_taken(int c)
{
	return c >= 0 && c < CPU_SETSIZE &&
	       (atomic_load_explicit(&pinned_cpus[c / 64], memory_order_relaxed) >> (c % 64) & 1);
}

/* 1 if CPU c was free and is now taken. */
static int pin_take(int c)
{
	uint64_t bit = 1ull << (c % 64);
	return !(atomic_fetch_or(&pinned_cpus[c / 64], bit) & bit);
}

static void pin_give_back(int c)
{
	atomic_fetch_and(&pinned_cpus[c / 64], ~(1ull << (c % 64)));
}

/* q->lock held: takes the CPU to pin w to (PIN), one of its affinity that
 * no slot holder runs on (a pinned one, or a running call of q last seen
 * there), `prefer` first. -1 if there is none, or if w cannot be pinned. */
static int slot_cpu(struct runq *q, const struct waiter *w, int prefer)
{
	if (!w->own || CPU_COUNT(w->own) < 2 || !pins_usable())
		return -1;
	cpu_set_t running;
	CPU_ZERO(&running);
	struct waiter *r;
	RB_FOREACH(r, waiters, &q->running_tree)
		if (r != w && r->cpu >= 0 && r->cpu < CPU_SETSIZE)
			CPU_SET(r->cpu, &running);
	for (unsigned i = 0; i < q->nkept; i++) /* keepers: in calls under a lease, or back soon */
		if (q->kept[i].cpu >= 0 && q->kept[i].cpu < CPU_SETSIZE)
			CPU_SET(q->kept[i].cpu, &running);
	if (prefer >= 0 && prefer < CPU_SETSIZE && CPU_ISSET(prefer, w->own) &&
	    !CPU_ISSET(prefer, &running) && pin_take(prefer))
		return prefer;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, w->own) && !CPU_ISSET(c, &running) && !pin_taken(c) && pin_take(c))
			return c;
	return -1;
}

/* q->lock held, before w's go is set: pins w (PIN), as slot_cpu says. */
static void pin_waiter(struct runq *q, struct waiter *w, int prefer)
{
	w->pin = slot_cpu(q, w, prefer);
	if (w->pin < 0)
		return;
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(w->pin, &one);
	if (sched_setaffinity(w->tid, sizeof one, &one) != 0) {
		pin_give_back(w->pin);
		w->pin = -1;
		return;
	}
	if (w->pin != w->cpu)
		q->st.steered++;
	w->cpu = w->pin;
}

/* q->lock held: the kept slot k's keeper, pinned, is not to hold its CPU
 * any longer: its own affinity back (by its thread id: it is not here). */
static void unpin_keeper(struct runq *q, struct kept *k)
{
	struct pin *p = k->pin;
	if (!p || !p->held || p->q != q)
		return;
	pin_give_back(p->cpu);
	sched_setaffinity(p->tid, sizeof p->own, &p->own);
	p->held = 0;
}

/* q->lock held: the calling thread gives its pin up (its CPU free for
 * another holder). 1 if it was pinned: its own affinity is then to be
 * set back (after the lock, if it likes). */
static int unpin_me(struct runq *q)
{
	if (!my_pin.held || my_pin.q != q)
		return 0;
	pin_give_back(my_pin.cpu);
	my_pin.held = 0;
	return 1;
}

/* q->lock held: hands free slots to the waiters. A slot freed on `cpu` by
 * a thread leaving that CPU goes to a waiter that slept there if one is
 * near the front, else to the leftmost, and each waiter handed one then
 * is pinned (PIN), to `cpu` first if no holder runs there. With cpu -1
 * (the caller goes on running where it is), to the leftmost, placed by
 * Linux. Returns the waiters to wake (after the lock is dropped), up to
 * max. */
static unsigned hand_over(struct runq *q, int cpu, struct waiter **wake, unsigned max)
{
	unsigned n = 0;
	struct waiter *w;
	uint64_t now = gov_now_ns();
	int crowded = 0;
	struct waiter *r;
	RB_FOREACH(r, waiters, &q->running_tree)
		crowded |= cpu >= 0 && r->cpu == cpu;
	for (unsigned i = 0; i < q->nkept; i++)
		crowded |= cpu >= 0 && q->kept[i].cpu == cpu;
	crowded |= pin_taken(cpu);
	while (q->running + q->nkept < q->slots && n < max &&
	       (w = next_waiter(q, n || crowded ? -1 : cpu, now))) {
		RB_REMOVE(waiters, &q->tree, w);
		RB_INSERT(waiters, &q->running_tree, w);
		q->running++;
		q->st.handed++;
		w->handed_at = now;
		if (cpu >= 0)
			pin_waiter(q, w, n ? -1 : cpu);
		__atomic_store_n(&w->go, 1, __ATOMIC_RELEASE);
		wake[n++] = w;
	}
	update_min(q);
	return n;
}

/* q->lock held: drops the kept slot i. */
static void unkeep(struct runq *q, unsigned i)
{
	q->kept[i] = q->kept[--q->nkept];
}

/* q->lock held: the calling thread's kept slot, or -1. */
static int kept_by_me(struct runq *q)
{
	pthread_t me = pthread_self();
	for (unsigned i = 0; i < q->nkept; i++)
		if (pthread_equal(q->kept[i].thread, me))
			return (int)i;
	return -1;
}

/* q->lock held: kept slots whose callers did not come back in time go;
 * a leased one not while its caller is in a call (LEASE). */
static void expire(struct runq *q, uint64_t now)
{
	for (unsigned i = q->nkept; i-- > 0;) {
		struct kept *k = &q->kept[i];
		struct lease *l = k->lease && k->lease->q == q ? k->lease : NULL;
		if (now < (l ? atomic_load_explicit(&l->until, memory_order_acquire) : k->until))
			continue;
		unsigned idle = LEASE_IDLE;
		if (l && !atomic_compare_exchange_strong(&l->state, &idle, LEASE_REVOKED))
			continue;
		unpin_keeper(q, k);
		unkeep(q, i);
		q->st.expired++;
	}
}

/* q->lock held: a slot kept spare (nobody waited when it was kept) whose
 * keeper is not in a call is free for the calling thread, as it would
 * have been without the lease (LEASE): the keeper's next call takes the
 * lock. */
static void take_spare(struct runq *q)
{
	for (unsigned i = 0; i < q->nkept; i++) {
		struct kept *k = &q->kept[i];
		unsigned idle = LEASE_IDLE;
		if (k->spare && k->lease && k->lease->q == q &&
		    atomic_compare_exchange_strong(&k->lease->state, &idle, LEASE_REVOKED)) {
			unkeep(q, i);
			return;
		}
	}
}

/* q->lock held: the calling thread's lease on q, if any, ends: its calls'
 * run time is charged to their entity and counted. Its kept slot (unless
 * the watcher took it back) is still in kept[], for the caller to take or
 * give up. */
static void lease_end(struct runq *q)
{
	struct lease *l = &my_lease;
	if (l->q != q)
		return;
	entity_get(q, l->key)->vruntime += l->vruntime;
	q->st.calls += l->calls;
	int i = kept_by_me(q);
	if (i >= 0 && q->kept[i].lease == l) /* due back after its last call, not its grant */
		q->kept[i].until = atomic_load_explicit(&l->until, memory_order_relaxed);
	l->q = NULL;
}

/* The lease on q covers a call of key that starts now: it is in a call,
 * the watcher keeps off. 0: the call takes the lock (no lease, or not
 * one for this call). */
static int lease_enter(struct runq *q, uint64_t key, unsigned slots, uint64_t now)
{
	struct lease *l = &my_lease;
	unsigned idle = LEASE_IDLE;
	return l->q == q && l->key == key && now < l->end && (!slots || slots == l->slots) &&
	       atomic_load_explicit(&q->wait_gen, memory_order_relaxed) == l->gen &&
	       atomic_compare_exchange_strong(&l->state, &idle, LEASE_IN_CALL);
}

/* A call under the lease on q ended at now, to be charged vruntime: 1 if
 * the lease goes on (the slot is kept for the next call, as at the end of
 * a call), 0 if leave() is to decide: the lease is over, or a call began
 * waiting meanwhile. */
static int lease_leave(struct runq *q, uint64_t vruntime, uint64_t now)
{
	struct lease *l = &my_lease;
	if (l->q != q)
		return 1; /* forked in the call: the child's queue started empty */
	l->vruntime += vruntime;
	l->calls++;
	if (now >= l->end || atomic_load_explicit(&q->wait_gen, memory_order_relaxed) != l->gen)
		return 0;
	atomic_store_explicit(&l->until, now + RESERVE_NS, memory_order_relaxed);
	atomic_store(&l->state, LEASE_IDLE);
	/* a call that started waiting meanwhile either sees the slot idle
	 * (take_spare after its wait_gen move) or is seen here: both seq_cst */
	if (atomic_load(&q->wait_gen) == l->gen)
		return 1;
	unsigned idle = LEASE_IDLE;
	atomic_compare_exchange_strong(&l->state, &idle, LEASE_IN_CALL); /* else taken: leave() copes */
	return 0;
}

/* A waiter may return as soon as it sees go, before our wake: its stack
 * word is still mapped, and a stray wake is only a spurious one. */
static void wake_all(struct waiter **wake, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		gov_futex_wake(&wake[i]->go, 1);
}

/* How long Linux has kept the calling thread runnable but off a CPU, in
 * ns (the second field of /proc/thread-self/schedstat), or DELAY_UNKNOWN
 * where the kernel does not say. A few microseconds: read at most twice
 * per slice, and only when someone waits. */
static uint64_t run_delay_ns(void)
{
	static int unavailable;
	char buf[96];
	int fd = unavailable ? -1 : open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		unavailable = 1;
		return DELAY_UNKNOWN;
	}
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	unsigned long long on_cpu, delay;
	if (n <= 0)
		return DELAY_UNKNOWN;
	buf[n] = 0;
	return sscanf(buf, "%llu %llu", &on_cpu, &delay) == 2 ? delay : DELAY_UNKNOWN;
}

/* The part of w's slice its caller has used by now: wall time less the
 * time it waited for a CPU since w->slice_delay was read (the first time
 * it kept a slot in this slice). Reads that baseline when it has none. */
static uint64_t slice_used(struct waiter *w, uint64_t now)
{
	uint64_t wall = now - w->slice_start;
	if (w->slice_delay == DELAY_UNKNOWN) {
		w->slice_delay = run_delay_ns();
		return wall;
	}
	if (wall < SLICE_NS)
		return wall;
	uint64_t d = run_delay_ns();
	if (d == DELAY_UNKNOWN || d < w->slice_delay)
		return wall;
	return d - w->slice_delay < wall ? wall - (d - w->slice_delay) : 0;
}

/* A kept slot whose caller did not come back in time goes to the waiters. */
static void reclaim(struct runq *q)
{
	struct waiter *wake[8];
	unsigned n = 0;
	/* most polls find nothing kept: do not take the lock the slot
	 * holders need (a racy look; the decision is made under it) */
	if (!__atomic_load_n(&q->nkept, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&q->lock);
	unsigned before = q->nkept;
	expire(q, gov_now_ns());
	if (q->nkept < before)
		n = hand_over(q, sched_getcpu(), wake, 8);
	pthread_mutex_unlock(&q->lock);
	wake_all(wake, n);
}

/* A thread that exits while slots are kept for it will not come back for
 * them: give them to the waiters now rather than after RESERVE_NS (a
 * pool's workers ending their run of calls left a slot idle for 1-1.5 ms
 * each). Every queue is looked at: a thread may keep slots in several,
 * and a kept slot points to the thread's pin, which goes with it. */
static pthread_key_t keeper_key;
static pthread_once_t keeper_once = PTHREAD_ONCE_INIT;

static __thread int keeper_noted, keeper_gone __attribute__((tls_model("initial-exec")));

static void keeper_exit(void *unused)
{
	(void)unused;
	keeper_gone = 1; /* a governed call made later in its exit keeps nothing */
	for (unsigned r = 0; r < GOV_REGION_DYN_MAX; r++) {
		struct runq *q = atomic_load_explicit(&queues[r], memory_order_acquire);
		/* racy, and enough: only this thread makes its own kept slots
		 * (a lease taken back left its calls to charge) */
		if (!q || (my_lease.q != q && !__atomic_load_n(&q->nkept, __ATOMIC_RELAXED)))
			continue;
		struct waiter *wake[8];
		unsigned n = 0;
		pthread_mutex_lock(&q->lock);
		lease_end(q);
		int i = kept_by_me(q);
		if (i >= 0) {
			unpin_me(q); /* exiting: its affinity goes with it */
			unkeep(q, (unsigned)i);
			q->st.released++;
			n = hand_over(q, sched_getcpu(), wake, 8);
		}
		pthread_mutex_unlock(&q->lock);
		wake_all(wake, n);
	}
}

static void keeper_init(void)
{
	if (pthread_key_create(&keeper_key, keeper_exit) != 0)
		keeper_key = (pthread_key_t)-1;
}

/* Pins need keeper_exit: without it, a pinned thread that exits keeping
 * its slot would leave the watcher its freed thread-local pin. */
static int pins_usable(void)
{
	pthread_once(&keeper_once, keeper_init);
	return keeper_key != (pthread_key_t)-1;
}

/* The calling thread kept a slot: its exit is to give it up (keeper_exit).
 * A plain TLS check first: pthread_setspecific once per thread. 0 if its
 * exit will not (no key, or no memory for it), or is under way
 * (keeper_exit ran: a destructor after it made a governed call). */
static int keeper_note(void)
{
	if (keeper_noted || keeper_gone)
		return keeper_noted && !keeper_gone;
	pthread_once(&keeper_once, keeper_init);
	keeper_noted = keeper_key != (pthread_key_t)-1 &&
		       pthread_setspecific(keeper_key, &keeper_noted) == 0;
	return keeper_noted;
}

/* q->lock held: the watcher stops waiting; the leftmost waiter (if any)
 * takes its place, woken here with its slot not yet given: it claims the
 * role and sleeps WATCH_NS from then on. Under the lock, so it is still
 * waiting (its word still mapped) when woken. */
static void pass_watch(struct runq *q)
{
	struct waiter *w = RB_MIN(waiters, &q->tree);
	if (w)
		gov_futex_wake(&w->go, 1);
}

/* Waits for a slot of q as key; w lives until leave. 0: run; -1: waited
 * past the call's timeout. */
static int enter(struct runq *q, uint64_t key, unsigned slots, struct waiter *wp)
{
	struct waiter *wake[8];
	pthread_mutex_lock(&q->lock);
	lease_end(q);
	if (slots && slots != q->slots)
		q->slots = slots;
	struct entity *e = entity_get(q, key);
	if (e->vruntime + IDLE_CREDIT_NS < q->min_vruntime)
		e->vruntime = q->min_vruntime - IDLE_CREDIT_NS; /* idleness is not credit */
	q->st.calls++;
	uint64_t now = gov_now_ns();
	*wp = (struct waiter){ .vruntime = e->vruntime, .seq = ++q->seq, .key = key, .since = now,
			       .pin = -1,
			       .fork_gen = atomic_load_explicit(&govrt.fork_gen, memory_order_relaxed) };
	if (q->nkept)
		expire(q, now);
	int mine = q->nkept ? kept_by_me(q) : -1;
	if (mine >= 0 && q->running >= q->slots) {
		unkeep(q, (unsigned)mine); /* the slots shrank meanwhile */
		mine = -1;
	}
	if (mine < 0 && unpin_me(q)) /* pinned, its slot gone: not its CPU now */
		sched_setaffinity(0, sizeof my_pin.own, &my_pin.own);
	if (mine < 0 && q->running + q->nkept >= q->slots && RB_EMPTY(&q->tree))
		take_spare(q);
	if (mine >= 0 || (q->running + q->nkept < q->slots && RB_EMPTY(&q->tree))) {
		if (mine >= 0) {
			wp->slice_start = q->kept[mine].slice_start;
			wp->slice_delay = q->kept[mine].slice_delay;
			unkeep(q, (unsigned)mine);
		} else {
			wp->slice_start = gov_now_ns();
			wp->slice_delay = DELAY_UNKNOWN;
		}
		wp->cpu = sched_getcpu(); /* for slot_cpu */
		q->running++;
		RB_INSERT(waiters, &q->running_tree, wp);
		update_min(q);
		if (q->running > q->st.max_running)
			q->st.max_running = q->running;
		pthread_mutex_unlock(&q->lock);
		return 0;
	}
	wp->cpu = sched_getcpu();
	wp->tid = gettid();
	cpu_set_t own;
	wp->own = sched_getaffinity(0, sizeof own, &own) == 0 ? &own : NULL;
	RB_INSERT(waiters, &q->tree, wp);
	atomic_fetch_add(&q->wait_gen, 1); /* seq_cst: see lease_leave */
	take_spare(q); /* a keeper that ended its call meanwhile */
	q->st.waited++;
	unsigned n = hand_over(q, -1, wake, 8); /* slots may have grown */
	pthread_mutex_unlock(&q->lock);
	wake_all(wake, n);
	uint64_t deadline = gov_now_ns() + (uint64_t)govrt.cfg.timeout_ns;
	int watching = 0;
	while (!__atomic_load_n(&wp->go, __ATOMIC_ACQUIRE)) {
		uint64_t now = gov_now_ns();
		if (now >= deadline)
			break;
		struct waiter *none = NULL;
		watching = watching || __atomic_compare_exchange_n(&q->watcher, &none, wp, 0,
								   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
		uint64_t poll = watching ? WATCH_NS : POLL_NS;
		uint64_t slice = deadline - now < poll ? deadline - now : poll;
		gov_futex_wait(&wp->go, 0, (long)slice);
		if (!__atomic_load_n(&wp->go, __ATOMIC_ACQUIRE))
			reclaim(q); /* a kept slot nobody came back for */
	}
	if (watching)
		__atomic_store_n(&q->watcher, NULL, __ATOMIC_RELEASE);
	uint64_t woke = gov_now_ns();
	pthread_mutex_lock(&q->lock);
	int got = (int)wp->go; /* a slot given after the timeout is still taken */
	wp->own = NULL; /* enter's frame: not to be read once it returns */
	if (!got) {
		RB_REMOVE(waiters, &q->tree, wp);
		q->st.timed_out++;
	} else {
		wp->slice_start = woke;
		wp->slice_delay = DELAY_UNKNOWN;
		wp->cpu = sched_getcpu();
		if (wp->pin >= 0) { /* until it gives the slot up */
			my_pin = (struct pin){ 1, wp->pin, wp->tid, q, own };
		}
		uint64_t wake = wp->slice_start - wp->handed_at;
		q->st.wake_ns += wake;
		if (wake > q->st.wake_max_ns)
			q->st.wake_max_ns = wake;
		if (q->running > q->st.max_running)
			q->st.max_running = q->running;
	}
	if (watching)
		pass_watch(q);
	pthread_mutex_unlock(&q->lock);
	return got ? 0 : -1;
}

/* The call of w ends (w NULL: a call under the lease, ended after it,
 * whose slot is the caller's kept one): it is charged, and its slot is
 * kept for the caller (on a lease) or handed over. */
static void leave(struct runq *q, uint64_t key, unsigned weight, uint64_t ns, struct waiter *w,
		  uint64_t now)
{
	struct waiter *wake[8], leased;
	pthread_mutex_lock(&q->lock);
	if (w ? w->fork_gen != atomic_load_explicit(&govrt.fork_gen, memory_order_relaxed)
	      : my_lease.q != q) {
		/* forked inside the call: this child's queue started empty */
		pthread_mutex_unlock(&q->lock);
		return;
	}
	if (!w) {
		leased = (struct waiter){ .slice_start = my_lease.slice_start,
					  .slice_delay = my_lease.slice_delay };
		w = &leased;
		lease_end(q);
		int i = kept_by_me(q); /* there: the watcher keeps off calls */
		if (i >= 0)
			unkeep(q, (unsigned)i);
	} else {
		RB_REMOVE(waiters, &q->running_tree, w);
		q->running--;
	}
	struct entity *e = entity_get(q, key);
	e->vruntime += ns * WEIGHT_DEFAULT / weight;
	struct waiter *next = RB_MIN(waiters, &q->tree);
	unsigned n = 0;
	/* A keeper whose exit would not come by (not noted) stays unpinned
	 * and unleased: the watcher must not reach for its thread-local pin
	 * or lease after it. The thread's one lease may be another queue's
	 * (a call of this queue made in or after one of that queue's). */
	int noted = keeper_note(), leasable = noted && !my_lease.q;
	/* a pinned caller that nobody waits for gives its slot up, to have
	 * its own affinity back (no watcher would take a kept slot back) */
	int pinned = my_pin.held && my_pin.q == q;
	if (q->nkept < KEPT_MAX && q->running + q->nkept < q->slots &&
	    (next ? (next->vruntime + KEEP_GRAN_NS > e->vruntime || next->key == key) &&
			    slice_used(w, now) < SLICE_NS
		  : leasable && !pinned)) {
		/* the caller is still owed (within the granularity), or the
		 * next is its own entity: keep the slot for this caller's
		 * next call (the watcher looks for it), on a lease if it can;
		 * or nobody waits: keep it spare, on a lease (LEASE) */
		int was = noted ? 0 : unpin_me(q);
		if (!next) { /* its slice starts when someone waits */
			w->slice_start = now;
			w->slice_delay = DELAY_UNKNOWN;
		}
		q->kept[q->nkept++] = (struct kept){ key, now + RESERVE_NS, w->slice_start,
						     w->slice_delay, pthread_self(),
						     noted ? &my_pin : NULL,
						     leasable ? &my_lease : NULL, !next, e->vruntime,
						     sched_getcpu() };
		q->st.kept++;
		update_min(q);
		if (leasable) {
			struct lease *l = &my_lease;
			l->q = q;
			l->key = key;
			l->end = now + LEASE_NS;
			l->slots = q->slots;
			l->vruntime = l->calls = 0;
			l->slice_start = w->slice_start;
			l->slice_delay = w->slice_delay;
			l->gen = atomic_load_explicit(&q->wait_gen, memory_order_relaxed);
			atomic_store_explicit(&l->until, now + RESERVE_NS, memory_order_relaxed);
			atomic_store_explicit(&l->state, LEASE_IDLE, memory_order_release);
		}
		pthread_mutex_unlock(&q->lock);
		if (was)
			sched_setaffinity(0, sizeof my_pin.own, &my_pin.own);
		return;
	}
	int was = unpin_me(q);
	n = hand_over(q, -1, wake, 8); /* the caller goes on running on its CPU */
	pthread_mutex_unlock(&q->lock);
	wake_all(wake, n);
	if (was)
		sched_setaffinity(0, sizeof my_pin.own, &my_pin.own);
}

/* ---- calling the function from here ---- */

struct native {
	const struct gov_site *site;
	void (*fn)(void);
	ffi_cif cif;
	ffi_type *args[GOV_MAX_ARGS];
};

#define NATIVES 256
static struct native natives[NATIVES];
static unsigned nnatives;
static pthread_mutex_t natives_lock = PTHREAD_MUTEX_INITIALIZER;

static ffi_type *ffi_of(char code)
{
	switch (code) {
	case GOV_T_VOID: return &ffi_type_void;
	case GOV_T_INT: return &ffi_type_sint32;
	case GOV_T_UINT: return &ffi_type_uint32;
	case GOV_T_LONG: return &ffi_type_sint64;
	case GOV_T_ULONG:
	case GOV_T_SIZE: return &ffi_type_uint64;
	case GOV_T_DOUBLE: return &ffi_type_double;
	case GOV_T_FLOAT: return &ffi_type_float;
	case GOV_T_PTR:
	case GOV_T_STR:
	case GOV_T_BUF:
	case GOV_T_OUTBUF: return &ffi_type_pointer;
	default: return NULL;
	}
}

/* natives_lock held. 0, or -1 with why. */
static int prepare(struct native *n, const struct gov_site *site, const char **why)
{
	unsigned np = site->nparams;
	if (!&ffi_prep_cif || !&ffi_call || !&ffi_type_pointer) {
		*why = "libffi is not linked into this program (static: add -lffi)";
		return -1;
	}
	if (site->kind != GOV_SITE_CALL || !site->callee || !site->types ||
	    np > GOV_MAX_ARGS || strlen(site->types) != np + 1u) {
		*why = "not a call to a function with a type string";
		return -1;
	}
	ffi_type *ret = ffi_of(site->types[0]);
	for (unsigned k = 0; k < np; k++)
		if (!(n->args[k] = ffi_of(site->types[k + 1])) || n->args[k] == &ffi_type_void)
			ret = NULL;
	if (!ret) {
		*why = "a type code libffi cannot pass here";
		return -1;
	}
	if (!(n->fn = (void (*)(void))dlsym(RTLD_DEFAULT, site->callee))) {
		*why = "not found by dlsym (link the program with -rdynamic)";
		return -1;
	}
	if (ffi_prep_cif(&n->cif, FFI_DEFAULT_ABI, np, ret, n->args) != FFI_OK) {
		*why = "libffi refused its type string";
		return -1;
	}
	return 0;
}

/* The site's prepared call, or NULL (warned once per site). */
static const struct native *native_of(const struct gov_site *site)
{
	static __thread const struct native *last __attribute__((tls_model("initial-exec")));
	if (last && last->site == site)
		return last->fn ? last : NULL;
	unsigned n = __atomic_load_n(&nnatives, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n; i++)
		if (natives[i].site == site)
			return (last = &natives[i])->fn ? last : NULL;
	pthread_mutex_lock(&natives_lock);
	const struct native *r = NULL;
	unsigned i;
	for (i = 0; i < nnatives && natives[i].site != site; i++)
		;
	if (i < nnatives) {
		r = &natives[i];
	} else if (nnatives < NATIVES) {
		struct native *nv = &natives[nnatives];
		const char *why = NULL;
		nv->site = site;
		if (prepare(nv, site, &why) < 0) {
			nv->fn = NULL;
			govrt_warn("%s:%u: %s runs unscheduled (cfs): %s", site->file, site->line,
				   site->callee ? site->callee : "?", why);
		}
		__atomic_store_n(&nnatives, nnatives + 1, __ATOMIC_RELEASE);
		r = nv;
	}
	pthread_mutex_unlock(&natives_lock);
	if (!r)
		return NULL;
	last = r;
	return r->fn ? r : NULL;
}

/* The queue whose scheduled call the calling thread is in, if any. */
static __thread const struct runq *calling __attribute__((tls_model("initial-exec")));

static uint64_t call_native(const struct native *nv, const struct gov_site *site,
			    struct gov_call *call)
{
	void *argp[GOV_MAX_ARGS];
	for (unsigned k = 0; k < site->nparams; k++)
		argp[k] = &call->arg[k]; /* little-endian: the low bytes are the value */
	uint64_t rv = 0;
	ffi_call((ffi_cif *)&nv->cif, nv->fn, &rv, argp);
	return rv;
}

int govrt_cfs_run(const struct gov_site *site, struct gov_call *call, uint32_t rule,
		  const struct gov_dyn_ctx *ctx)
{
	const struct native *nv = native_of(site);
	struct runq *q = rule < GOV_REGION_DYN_MAX ? queue_get(rule) : NULL;
	if (!nv || !q)
		return GOV_RUN_NATIVE;
	uint64_t rv;
	if (calling == q) {
		/* inside a call of q (nested, or a signal handler's): the thread
		 * holds a slot of q already, and the outer call's time covers
		 * this one's (a slot of its own would deadlock with one slot,
		 * or be the outer call's own kept one) */
		rv = call_native(nv, site, call);
		memcpy(&call->ret, &rv, sizeof call->ret);
		return GOV_RUN_RETURN;
	}
	unsigned weight = ctx->weight ? ctx->weight : WEIGHT_DEFAULT;
	if (weight > WEIGHT_MAX)
		weight = WEIGHT_MAX;
	unsigned slots = ctx->slots;
	struct waiter w;
	uint64_t t0 = gov_now_ns();
	int leased = lease_enter(q, ctx->entity, slots, t0);
	if (!leased) {
		if (enter(q, ctx->entity, slots, &w) < 0)
			return GOVRT_CFS_TIMED_OUT;
		t0 = gov_now_ns();
	}
	const struct runq *outer = calling;
	calling = q;
	rv = call_native(nv, site, call);
	calling = outer;
	uint64_t t1 = gov_now_ns(), ns = t1 - t0;
	int saved = errno;
	if (!leased || !lease_leave(q, ns * WEIGHT_DEFAULT / weight, t1))
		leave(q, ctx->entity, weight, leased ? 0 : ns, leased ? NULL : &w, t1);
	memcpy(&call->ret, &rv, sizeof call->ret);
	errno = saved;
	return GOV_RUN_RETURN;
}

/* A forked child's only thread: the parent's slot holders and waiters
 * are threads the child does not have (a waiter handed a slot here would
 * hold it for ever, and the child's calls would wait for slots nobody
 * gives back), so each queue starts empty, as a new process's; its
 * weights' history (the entities) and counters go too. A call the
 * forking thread was in returns without touching its queue (leave: the
 * waiter's fork generation). Its pin, if it held one, is undone: the
 * child is not the parent's slot holder. Locks are made anew: another
 * thread of the parent may have held one. Called by channel.c's atfork
 * child handler, after govrt.fork_gen moved. */
void govrt_cfs_atfork_child(void)
{
	pthread_mutex_init(&queues_lock, NULL);
	pthread_mutex_init(&natives_lock, NULL);
	for (unsigned r = 0; r < GOV_REGION_DYN_MAX; r++) {
		struct runq *q = atomic_load(&queues[r]);
		if (!q)
			continue;
		unsigned slots = q->slots;
		memset(q, 0, sizeof *q);
		pthread_mutex_init(&q->lock, NULL);
		RB_INIT(&q->tree);
		RB_INIT(&q->running_tree);
		q->slots = slots;
	}
	for (unsigned i = 0; i < CPU_SETSIZE / 64; i++)
		atomic_store(&pinned_cpus[i], 0);
	if (my_pin.held) {
		sched_setaffinity(0, sizeof my_pin.own, &my_pin.own);
		my_pin.held = 0;
	}
	my_lease.q = NULL;
}

/* GOV_CFS_STATS=1: each queue's counters on stderr at exit, to see where
 * a workload's time goes (hand-overs are wake-ups; expired kept slots are
 * idle slot time) without a debugger. */
__attribute__((destructor)) static void stats_at_exit(void)
{
	if (!getenv("GOV_CFS_STATS"))
		return;
	for (unsigned r = 0; r < GOV_REGION_DYN_MAX; r++) {
		struct govrt_cfs_stats st;
		if (govrt_cfs_stats(r, &st) == 0)
			fprintf(stderr, "govrt: cfs queue %u: calls %llu waited %llu handed %llu "
				"kept %llu expired %llu released %llu steered %llu timed_out %llu "
				"max_running %u/%u wake-up avg %.1f us max %.1f us\n",
				r, st.calls, st.waited, st.handed, st.kept, st.expired, st.released,
				st.steered, st.timed_out, st.max_running, st.slots,
				st.handed ? (double)st.wake_ns / 1e3 / (double)st.handed : 0.0,
				(double)st.wake_max_ns / 1e3);
	}
}

int govrt_cfs_stats(unsigned rule, struct govrt_cfs_stats *out)
{
	struct runq *q = rule < GOV_REGION_DYN_MAX ? atomic_load(&queues[rule]) : NULL;
	if (!q) {
		errno = ENOENT;
		return -1;
	}
	pthread_mutex_lock(&q->lock);
	*out = q->st;
	if (my_lease.q == q) /* the caller's own calls under a lease (others' when theirs end) */
		out->calls += my_lease.calls;
	out->slots = q->slots;
	out->running = q->running;
	pthread_mutex_unlock(&q->lock);
	return 0;
}
