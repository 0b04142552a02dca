/* runtime/agent/agent.h - govagent's parts: the daemon (main.c: options,
 * socket, signals, clients), serving one process's region (serve.c), and
 * the structured log (log.c). */
#ifndef GOV_AGENT_H
#define GOV_AGENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include "gov/dynrule.h"
#include "gov/region.h"
#include "../internal.h"
#include "../../rules/ruledoc.h"
#include "edge.h"

struct agent_config {
	const char *resource;
	const char *rules_path;   /* NULL: no rules, every site native */
	const char *store_url;    /* the store followed (resolved), NULL: none */
	uint32_t nslots;
	uint32_t slot_size;
	long spin_ns;             /* how long a worker spins before sleeping */
	uid_t allow_uid[16];
	int nallow;
};

struct gov_dynrule;

/* A dynamic rule in force: loaded (it runs here for placement agent, and
 * for a process that cannot run it itself) and its object, which goes into
 * each process's region for placement process. */
struct agent_dyn {
	struct gov_dynrule *rule;
	void *obj;
	size_t len;
};

/* The rules in force; replaced whole on reload, under rules_lock.
 * dyn[i] is the loaded rule of v.dyn[i] (NULL if it failed to load: its
 * calls take its fail outcome). */
struct agent_rules {
	struct gov_verdicts v;
	struct edge_rules edges;  /* forwarding and edge protocols (edge.c) */
	struct agent_dyn *dyn;
	uint64_t rev;
};

/* A counter per site a client has called, filled by its worker only. */
struct site_count {
	uint64_t site_id;         /* 0 = empty */
	char callee[GOV_NAME_MAX];
	atomic_ullong calls;
};
#define SITE_COUNTS 1024 /* open addressing; sites past this share "other" */

struct client {
	int fd;
	pid_t pid;
	uid_t uid;
	struct gov_region_hdr *region;
	size_t size;
	int region_fd;            /* the memfd, until it is sent; then -1 */
	pthread_t worker;
	atomic_int stop;
	atomic_ullong calls, malformed;
	struct site_count sites[SITE_COUNTS];
	atomic_ullong other_calls;
	int direct;               /* its HELLO said GOV_HELLO_DIRECT */
	/* the figures of the rules it runs itself (the region's, where the
	 * agent put them: the process cannot move them) */
	const struct gov_region_dynstat *dynstats;
	struct client *next;
};

struct agent {
	struct agent_config cfg;
	uint64_t epoch;
	pthread_rwlock_t rules_lock;
	struct agent_rules rules;
	pthread_mutex_t clients_lock;
	struct client *clients;
	/* counts of clients that have gone, kept for the statistics */
	struct site_count gone[SITE_COUNTS];
	uint64_t gone_other, gone_calls, gone_malformed;
	/* ... and the figures of the rules they ran themselves, per rule
	 * (agent_dyn_figures_add, events oldest first), of the version in
	 * force: dyn_hash[i], the object hash of rule i if the processes run
	 * it, else 0 (agent_dyn_note_hashes; read without rules_lock) */
	struct gov_region_dynstat gone_dyn[GOV_REGION_DYN_MAX];
	_Atomic uint64_t dyn_hash[GOV_REGION_DYN_MAX];
};

/* serve.c */
struct client *client_create(struct agent *a, int fd, pid_t pid, uid_t uid,
			     char *why, size_t whylen);
int client_start(struct agent *a, struct client *c);
void client_stop(struct agent *a, struct client *c);  /* joins, unmaps, frees */
void client_publish_table(struct agent *a, struct client *c);
/* GRANT: a direct grant's memfd, its id and the callee, to a process that
 * can take it (c->direct); nothing otherwise. */
void client_send_grant(struct client *c, uint32_t id, int memfd, const char *to);
char *agent_stats_json(struct agent *a);  /* malloc'ed */

/* dyn.c: dynamic rules in the agent */
/* Loads v.dyn[i] from obj (copied), reusing a rule of `old` that has the
 * same name and object (so its maps and counters live on). */
int agent_dyn_load(struct agent_rules *r, unsigned i, const void *obj, size_t len,
		   struct agent_rules *old);
/* For a file's rules: reads or compiles each entry relative to the file. */
int agent_dyn_load_files(struct agent_rules *r, const char *rules_path, struct agent_rules *old);
void agent_dyn_free(struct agent_rules *r); /* frees what is not NULL */
/* What a dynamic rule's answer adds to the reply's action: where a
 * FORWARD goes, and the argument words a NATIVE_ARGS runs the call with. */
struct agent_dyn_extra {
	uint32_t forward_to;  /* FORWARD: gov_dyn_id of a resource; 0: the function's exporter */
	unsigned nargs;       /* NATIVE_ARGS: how many of args (0: the call's own) */
	uint64_t args[GOV_DYN_MAX_ARGS];
};
/* Runs dynamic rule i on a decoded call; fills the reply and *extra. */
void agent_dyn_decide(struct agent *a, struct client *c, unsigned i,
		      const struct gov_wire_call *call, uint8_t *action, int32_t *err, int64_t *value,
		      struct agent_dyn_extra *extra);
/* Rules placed in a process run there (runtime/dynrule.c), which copies
 * their figures into its region. into += from, both of one rule (from's
 * hash; into's is set if it had none): faults and counters added,
 * disabled or'ed, and of both events the newest GOV_REGION_DYN_EVENTS by
 * time, kept in into's array oldest first (from's is a ring: ring != 0),
 * event_head the count of all. A from of another rule is left out. */
void agent_dyn_figures_add(struct gov_region_dynstat *into, const struct gov_region_dynstat *from,
			   int ring);
/* a->dyn_hash from the rules in force (rules_lock held for writing). */
void agent_dyn_note_hashes(struct agent *a);
/* Appends "rules":[...] (without braces around) to a JSON text; a rule
 * placed in the processes shows their figures, procs[i] (gathered with
 * agent_dyn_figures_add), not the agent's own runs of it (a call it
 * forwards or defers ran there first), with runs 0: a process does not
 * count its runs. procs NULL: the agent's own figures. */
size_t agent_dyn_json(struct agent *a, char *buf, size_t cap, const struct gov_region_dynstat *procs);

/* log.c: one logfmt line per event on stderr: ts=... level=... event=... */
void agent_log(const char *level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
