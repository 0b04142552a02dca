/* runtime/govrt_private.h - govrt's process-wide state, shared by its three
 * files: govrt.c (configuration, module registry, decisions, counters),
 * channel.c (the connection to the agent) and dispatch.c (one governed
 * call). Not used by govagent. */
#ifndef GOV_GOVRT_PRIVATE_H
#define GOV_GOVRT_PRIVATE_H

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
struct govrt_conn {
	int fd;
	struct gov_region_hdr *region;
	size_t size;
	uint64_t epoch;
	atomic_int alive;
	atomic_int users;
	struct govrt_conn *next_retired;
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

struct govrt {
	struct govrt_config cfg;
	pthread_mutex_t lock;  /* control path only: modules, connect, table */
	struct govrt_module *modules;
	size_t nmodules;
	/* Distinct decisions, append-only so that a site's 32-bit index
	 * always names a complete, unchanging record. */
	struct gov_decision decisions[GOVRT_MAX_DECISIONS];
	atomic_uint ndecisions;
	atomic_ullong table_rev;
	int have_table;
	_Atomic(struct govrt_conn *) conn; /* NULL while disconnected */
	struct govrt_conn *retired;
	atomic_ullong last_attempt_ns;     /* last connect attempt */
	uint64_t outage_start_ns;
	int watcher_running;
	int warned_outage;                 /* one warning line per outage */
	atomic_uint fork_gen;              /* bumped in a forked child */
	pthread_mutex_t counters_lock;
	struct govrt_thread_counters *threads; /* live threads' blocks */
	uint64_t ended[GOVRT_NCOUNTERS];       /* ended threads' counts */
	atomic_ullong unlinked[GOVRT_NCOUNTERS]; /* counts made while linking */
};

extern struct govrt govrt;

/* govrt.c */
void govrt_init(void);
void govrt_count(enum govrt_counter c);
void govrt_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void govrt_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void govrt_apply_table(struct govrt_conn *c); /* lock held */
void govrt_mark_all_agent(void);              /* lock held */

/* dynrule.c: dynamic rules that run in the process */
struct gov_dynrule;
void govrt_dyn_apply(struct gov_region_hdr *h);   /* lock held, before the table */
extern _Atomic(struct gov_dynrule *) govrt_dyn_rules[GOV_REGION_DYN_MAX];
static inline struct gov_dynrule *govrt_dyn_rule(uint32_t i) /* NULL: ask the agent */
{
	return i < GOV_REGION_DYN_MAX ? atomic_load_explicit(&govrt_dyn_rules[i], memory_order_acquire)
				      : NULL;
}
extern uint32_t govrt_dyn_caller_id;            /* gov_dyn_id(this resource) */

/* channel.c */
void govrt_channel_start(void);          /* first connection, from init */
struct govrt_conn *govrt_conn_get(void); /* users++; NULL if none */
void govrt_conn_put(struct govrt_conn *c);
void govrt_conn_lost(struct govrt_conn *c, const char *why);
void govrt_try_reconnect(void);          /* rate-limited, never blocks on the lock */
void govrt_channel_atfork_child(void);

#endif
