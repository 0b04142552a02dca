/* runtime/govrt_private.h - govrt's process-wide state, shared by its three
 * files: govrt.c (configuration, module registry, decisions, counters),
 * channel.c (the connection to the agent) and dispatch.c (one governed
 * call). Not used by govagent. */
#ifndef GOV_GOVRT_PRIVATE_H
#define GOV_GOVRT_PRIVATE_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include "gov/govrt.h"
#include "gov/region.h"
#include "internal.h"

struct govrt_config {
	char resource[GOV_NAME_MAX]; /* "" = this process is not governed */
	int resource_from_env;       /* GOV_RESOURCE was set */
	int fail_closed;             /* GOV_FAIL=closed[:ERRNO] */
	int fail_errno;              /* default EPERM */
	long timeout_ns;             /* GOV_TIMEOUT_MS, default 2000 */
	long spin_ns;                /* GOV_SPIN_US, default 50 */
	int verbose;                 /* GOV_LOG=debug */
};

/* One connection to the agent. Dispatching threads count themselves in
 * `users` while they touch the region, so a dead connection's region is
 * unmapped only once nobody is inside it. */
/* A direct grant this process took (xcall.c, docs/xcall.md "Direct
 * calls"): kept mapped until its connection is reaped, since a thread may
 * be inside it. */
#define GOVRT_DIRECT_MAX 32
struct gov_xcall_direct;
struct govrt_direct {
	uint32_t id;
	int pidfd;                        /* the serving process: readable once it ended */
	struct gov_xcall_direct *d;
};

struct govrt_conn {
	int fd;
	struct gov_region_hdr *region;
	size_t size;
	uint64_t epoch;
	atomic_int alive;
	atomic_int users;
	struct govrt_conn *next_retired;
	struct govrt_direct direct[GOVRT_DIRECT_MAX];
	atomic_uint ndirect;              /* entries filled, in order (watcher only) */
};

#define GOVRT_MAX_DECISIONS 4096
#define GOVRT_DECISION_NATIVE 0 /* index of the native decision */
#define GOVRT_DECISION_AGENT 1  /* index of "ask the agent" */

struct govrt_module {
	struct gov_site *start, *stop;
};

/* govrt's counters (struct govrt_stats). Each thread counts in its own
 * block, written by that thread only, so counting costs no locked
 * instruction on the data path; govrt_stats() sums the blocks, and a thread
 * that ends folds its counts into `ended`. */
#define GOVRT_COUNTERS(X) X(dispatched) X(denied) X(emulated) X(agent_calls) \
	X(fail_open) X(fail_closed) X(timeouts) X(malformed) X(slot_waits) X(connects)

enum govrt_counter {
#define GOVRT_COUNTER_ENUM(name) GOVRT_N_##name,
	GOVRT_COUNTERS(GOVRT_COUNTER_ENUM)
#undef GOVRT_COUNTER_ENUM
	GOVRT_NCOUNTERS
};

struct govrt_thread_counters {
	uint64_t n[GOVRT_NCOUNTERS];
	int state; /* 0 new, 1 being linked, 2 linked */
	struct govrt_thread_counters *next, **pprev;
};

/* The fields every governed call reads come first, on cache lines that
 * only a new decision or a fork writes: the control path's fields (the
 * lock, the connection, the threads' counter list, locked and written as
 * threads come and go) start on a line of their own, so a write there
 * never costs a dispatching thread on another CPU a cache miss. */
#define GOVRT_LINE 64
struct govrt {
	_Alignas(GOVRT_LINE) atomic_uint ndecisions;
	atomic_uint fork_gen;              /* bumped in a forked child */
	/* Distinct decisions, append-only so that a site's 32-bit index
	 * always names a complete, unchanging record. */
	struct gov_decision decisions[GOVRT_MAX_DECISIONS];
	/* the control path */
	_Alignas(GOVRT_LINE) struct govrt_config cfg;
	pthread_mutex_t lock;  /* control path only: modules, connect, table */
	struct govrt_module *modules;
	size_t nmodules;
	atomic_ullong table_rev;
	int have_table;
	_Atomic(struct govrt_conn *) conn; /* NULL while disconnected */
	struct govrt_conn *retired;
	atomic_ullong last_attempt_ns;     /* last connect attempt */
	uint64_t outage_start_ns;
	int watcher_running;
	int warned_outage;                 /* one warning line per outage */
	pthread_mutex_t counters_lock;
	struct govrt_thread_counters *threads; /* live threads' blocks */
	uint64_t ended[GOVRT_NCOUNTERS];       /* ended threads' counts */
	atomic_ullong unlinked[GOVRT_NCOUNTERS]; /* counts made while linking */
};

extern struct govrt govrt;

/* dispatch.c: a request of govrt's own (runtime/tasklet.c) */
int govrt_ask_agent(struct gov_site *site, struct gov_call *call);

/* govrt.c */
void govrt_init(void);
void govrt_count(enum govrt_counter c);
/* govrt_count's common case inline, for the dispatch path: the thread's
 * block is linked, one add to it (see govrt_count) */
extern __thread struct govrt_thread_counters govrt_my_counters __attribute__((tls_model("initial-exec")));
static inline void govrt_count_linked(struct govrt_thread_counters *t, enum govrt_counter c)
{
	__asm__ volatile("addq $1, %0" : "+m"(t->n[c]));
}
static inline void govrt_count_inline(enum govrt_counter c)
{
	struct govrt_thread_counters *t = &govrt_my_counters;
	if (__builtin_expect(t->state == 2, 1))
		govrt_count_linked(t, c);
	else
		govrt_count(c);
}
void govrt_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void govrt_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void govrt_apply_table(struct govrt_conn *c); /* lock held */
void govrt_mark_all_agent(void);              /* lock held */

/* rewritten.c: modules rewritten by govrewrite (gov/rewrite.h) */
struct gov_rewrite_frame;
void govrt_rewritten_scan(void);    /* finds and registers them; again after dlopen */
void govrt_rewritten_refresh(void); /* lock held: verdicts changed */
/* The trampolines' entry (gov_rewrite_entry_fn), for sites patched in memory
 * too; and the verdict byte for syscall sites whose number is unknown
 * statically (set while any syscall is governed). */
int govrt_rewritten_entry(struct gov_site *site, struct gov_rewrite_frame *frame);
extern uint8_t govrt_any_syscall_verdict;
/* An answer that gives the call its errno (a deny, the fail outcome, a
 * forwarded call's callee) says so here; the paths that talk to an agent
 * or a serving process put the program's errno back otherwise, so that
 * govrt's own system calls never show through (dispatch.c). */
extern __thread int govrt_errno_given __attribute__((tls_model("initial-exec")));
static inline void govrt_give_errno(int err)
{
	errno = err;
	govrt_errno_given = 1;
}
/* xcall.c: a FORWARD reply into the caller's call; GOV_RUN_RETURN or -1 */
struct gov_wire_rep;
int govrt_xcall_apply(const struct gov_site *site, struct gov_call *call,
		      const struct gov_wire_rep *rep, const void *payload, size_t cap);
/* A GRANT message with its memfd (watcher thread); the grants' mappings
 * when a connection is reaped. */
struct gov_msg;
void govrt_direct_take(struct govrt_conn *c, const struct gov_msg *m, int memfd);
void govrt_direct_free(struct govrt_conn *c);
/* A FORWARD site whose row names grant id, called through it: a GOV_RUN_*
 * result; -1: take the agents' path (no such grant, revoked, every box
 * busy); -2: failed with *err (ECONNABORTED, ETIMEDOUT, the callee's
 * ENOSYS...), to be answered as a deny. */
int govrt_direct_call(struct gov_site *site, struct gov_call *call, uint32_t id, uint32_t tid,
		      int *err);
/* dynrule.c: dynamic rules that run in the process */
struct gov_dynrule;
void govrt_dyn_apply(struct gov_region_hdr *h);   /* lock held, before the table */
/* The figures of the rules this process runs (counters, faults, event
 * ring) copied into h's area for the agent's statistics; 1 if it runs
 * any. From the watcher thread, and at exit. */
int govrt_dyn_figures(struct gov_region_hdr *h);
void govrt_dyn_atfork_child(void); /* a child's figures start at the fork */
void govrt_dyn_figures_rebase(void); /* ... and a new connection's at it */
extern _Atomic(struct gov_dynrule *) govrt_dyn_rules[GOV_REGION_DYN_MAX];
static inline struct gov_dynrule *govrt_dyn_rule(uint32_t i) /* NULL: ask the agent */
{
	return i < GOV_REGION_DYN_MAX ? atomic_load_explicit(&govrt_dyn_rules[i], memory_order_acquire)
				      : NULL;
}
extern uint32_t govrt_dyn_caller_id;            /* gov_dyn_id(this resource) */
void govrt_dispatch_atfork_child(void);         /* dispatch.c: the kept context refilled */
void govrt_cfs_atfork_child(void);              /* cfs.c: the run queues start empty */
/* cfs.c: the cfs rule's run queues in the process (docs/cfs.md). Runs the
 * call under rule's queue as ctx->entity: GOV_RUN_RETURN with its value,
 * GOV_RUN_NATIVE if the function cannot be called from there (unscheduled),
 * or GOVRT_CFS_TIMED_OUT if it waited past the call's timeout, not run. */
struct gov_dyn_ctx;
#define GOVRT_CFS_TIMED_OUT (-2)
int govrt_cfs_run(const struct gov_site *site, struct gov_call *call, uint32_t rule,
		  const struct gov_dyn_ctx *ctx);
struct govrt_cfs_stats {
	unsigned long long calls, waited, timed_out, kept;
	unsigned long long handed;   /* slots given to a waiter (each one a wake-up) */
	unsigned long long expired;  /* kept slots whose caller did not come back in time */
	unsigned long long released; /* kept slots given up by their thread exiting */
	unsigned long long steered;  /* hand-overs that pinned the waiter to another CPU than it slept on */
	/* from a slot given to a waiter to that waiter running again (Linux's
	 * wake-up latency: the slot is idle meanwhile), summed, and the most */
	unsigned long long wake_ns, wake_max_ns;
	unsigned slots, running, max_running;
};
int govrt_cfs_stats(unsigned rule, struct govrt_cfs_stats *out);

/* channel.c */
void govrt_channel_start(void);          /* first connection, from init */
struct govrt_conn *govrt_conn_get(void); /* users++; NULL if none */
void govrt_conn_put(struct govrt_conn *c);
void govrt_conn_lost(struct govrt_conn *c, const char *why);
void govrt_try_reconnect(void);          /* rate-limited, never blocks on the lock */
void govrt_channel_atfork_child(void);

/* ---- exhaustive syscalls (sud.c, lazypatch.c, loadrewrite.c) ----------
 * The selector byte of Syscall User Dispatch: BLOCK while the program
 * runs, ALLOW while govrt does, so govrt's own syscalls are never trapped.
 * Off (GOV_SYSCALLS unset) it is never BLOCK and holding it costs a TLS
 * load and store on the dispatch path only. */
#define GOVRT_SUD_ALLOW 0
#define GOVRT_SUD_BLOCK 1
extern __thread uint8_t govrt_sud_selector __attribute__((tls_model("initial-exec")));
static inline uint8_t govrt_sud_hold(void)
{
	uint8_t s = govrt_sud_selector;
	govrt_sud_selector = GOVRT_SUD_ALLOW;
	return s;
}
static inline void govrt_sud_release(uint8_t s) { govrt_sud_selector = s; }

/* How a syscall reached govrt (struct govrt_stats, GOV_REPORT). */
enum govrt_sys_path {
	GOVRT_SYS_DISK, /* a site of a binary rewritten on disk */
	GOVRT_SYS_LOAD, /* a site rewritten in memory at load time */
	GOVRT_SYS_LAZY, /* a site patched in memory after its first trap */
	GOVRT_SYS_SUD,  /* trapped by Syscall User Dispatch */
	GOVRT_SYS_NPATHS
};
#define GOVRT_SYS_NR_MAX 512 /* x86-64 numbers are below; the last counts the rest */

struct govrt_sud_site {
	struct gov_site site;
	uintptr_t addr;       /* the syscall instruction */
	uintptr_t clone_stub[2]; /* in the gate, for clone/fork/vfork sites */
	int patched;          /* lazypatch.c: 1 lazily, 2 at load, -1 cannot be */
	int trapped;          /* Syscall User Dispatch has seen it */
	int disk;             /* in a trampoline of a module rewritten on disk */
};

struct govrt_sud_row {
	struct gov_decision d;
	uint32_t decision;    /* interned index, or GOVRT_DECISION_NATIVE */
};

/* struct sigaction as the rt_sigaction syscall takes it */
struct govrt_ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

struct govrt_sud {
	int on, lazy;                   /* GOV_SYSCALLS=sud / exhaustive */
	const char *report;             /* GOV_REPORT: "1" = stderr, else a file */
	int reported, report_fd;        /* report_fd: stderr, duplicated at start */
	void *gate_rx, *gate_rw;        /* the allowed range, two views */
	intptr_t tpoff;                 /* the selector's offset from %fs:0 */
	uint32_t nstubs;
	int lock;                       /* spinlock: sites, rows, stubs */
	struct govrt_sud_site *sites;   /* SUD_MAX_SITES, mmap'ed */
	uint32_t nsites, overflow;
	uint32_t *hash;                 /* index + 1 into sites */
	struct govrt_sud_row *rows;     /* the decision table in force */
	size_t rows_bytes;
	uint32_t nrows;
	int have_rows, all_agent;
	struct govrt_ksigaction program_sigsys; /* what the program asked for SIGSYS */
	uint64_t sites_trapped, sites_patched, sites_load, sites_load_left;
	uint64_t counts[GOVRT_SYS_NPATHS][GOVRT_SYS_NR_MAX];
};
extern struct govrt_sud govrt_sud;

uint32_t govrt_intern_decision(const struct gov_decision *d); /* govrt.c, lock held */
void govrt_sud_table(const struct gov_decision *rows, uint32_t n); /* lock held */
void govrt_sud_mark_all_agent(void);
void govrt_sud_fill_stats(struct govrt_stats *o);
void govrt_sud_report(void);
int govrt_sud_enabled(void);
void govrt_sys_count(enum govrt_sys_path path, long nr);
/* Makes syscall nr natively (from the gate when it exists); returns rax. */
long govrt_sys_raw(long nr, const long a[6]);
/* Unwind information for trampolines (struct gre_cfi headers in
 * [start, end)) and for a leaf of govrt's own, registered with libgcc's
 * unwinder when it is there (runtime/rewritten.c). They allocate. */
void govrt_register_tramp_cfi(uintptr_t start, uintptr_t end);
void govrt_register_leaf_cfi(uintptr_t start, size_t len);
/* Runs syscall nr with args a under site s's verdict; returns rax. */
long govrt_sys_govern(struct gov_site *s, long nr, const long a[6]);
/* clone, fork, vfork, rt_sigreturn, rt_sigaction, rt_sigprocmask,
 * exit_group: not to be run from a trampoline or handler as is. */
int govrt_sys_is_special(long nr);
/* Whether addr is in the trampolines of a module rewritten on disk. */
int govrt_in_rewritten_tramp(uintptr_t addr);
/* The run-time site of syscall nr at addr, created on first sight (NULL
 * when the table is full). */
struct govrt_sud_site *govrt_sud_site_get(uintptr_t addr, long nr);
/* lazypatch.c: 1 if patched; *restart: resume the thread at the site.
 * Weak: a program linked with the static libgovrt.a pulls lazypatch.o (and
 * with it the engine and capstone) only if it asks for it, with
 * -Wl,-u,govrt_lazy_patch -lcapstone; without, it gets SUD alone. */
int govrt_lazy_patch(uintptr_t at, long nr, struct govrt_sud_site *s, int *restart)
	__attribute__((weak));
/* lazypatch.c: prepares the loaded code for patching (lazy: all of it),
 * rewrites what GOV_REWRITE names (which: "libc", "all" or NULL). */
void govrt_patch_prepare(int lazy, const char *which) __attribute__((weak));

#endif
