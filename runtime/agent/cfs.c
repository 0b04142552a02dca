/* runtime/agent/cfs.c - the cfs rule's scheduler on the callee's agent.
 *
 * Where a callee's calls queue (the agent, in front of its serving
 * process), calls run one at a time, and the next one is the waiting call
 * whose caller resource has the least virtual runtime. A caller's virtual
 * runtime grows by each call's service time x (default weight / its
 * weight), so under contention a caller of weight 2048 gets twice the
 * service of one of weight 1024. Waiters are kept in a red-black tree keyed
 * (vruntime, arrival): libbsd's <bsd/sys/tree.h>, the BSD RB_* macros,
 * header only. A caller that comes back after being idle starts at the
 * tree's least virtual runtime, as Linux places a waking task: idleness is
 * not saved up as credit.
 *
 * Not here: which calls are scheduled (every forwarded call to a resource
 * that has a cfs: entry naming it as `to`, edge.c) and the weights
 * (rule documents, docs/cfs.md). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cfs.h"
/* tree.h marks its static functions __unused, which glibc does not define */
#ifndef __unused
#define __unused __attribute__((unused))
#endif
#include <bsd/sys/tree.h>
#include "gov/wire.h"
#include "../../rules/ruledoc.h"

struct caller {
	char name[GOV_NAME_MAX];
	uint64_t vruntime, calls, service_ns;
	struct caller *next;
};

struct waiter {
	RB_ENTRY(waiter) node;
	uint64_t vruntime, seq;
	pthread_cond_t cond;
	int go;
};

static int waiter_cmp(struct waiter *a, struct waiter *b)
{
	if (a->vruntime != b->vruntime)
		return a->vruntime < b->vruntime ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

RB_HEAD(waiters, waiter);
RB_GENERATE_STATIC(waiters, waiter, node, waiter_cmp)

static struct {
	pthread_mutex_t lock;
	struct waiters tree;
	struct caller *callers;
	uint64_t min_vruntime, seq;
	int running;            /* a call holds the callee */
	unsigned long long timed_out;
} S = { .lock = PTHREAD_MUTEX_INITIALIZER, .tree = RB_INITIALIZER(&S.tree) };

/* S.lock held. NULL only when out of memory. */
static struct caller *caller_get(const char *name)
{
	struct caller *c = S.callers;
	while (c && strcmp(c->name, name) != 0)
		c = c->next;
	if (!c && (c = calloc(1, sizeof *c))) {
		snprintf(c->name, sizeof c->name, "%s", name);
		c->vruntime = S.min_vruntime;
		c->next = S.callers;
		S.callers = c;
	}
	return c;
}

int cfs_enter(const char *from, int wait_ms)
{
	pthread_mutex_lock(&S.lock);
	struct caller *c = caller_get(from);
	if (!S.running && RB_EMPTY(&S.tree)) {
		S.running = 1;
		pthread_mutex_unlock(&S.lock);
		return 0;
	}
	struct waiter w = { .seq = ++S.seq };
	uint64_t v = c ? c->vruntime : S.min_vruntime;
	w.vruntime = v < S.min_vruntime ? S.min_vruntime : v; /* no credit for idling */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cond, &ca);
	pthread_condattr_destroy(&ca);
	RB_INSERT(waiters, &S.tree, &w);
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	int r = 0;
	while (!w.go && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&w.cond, &S.lock, &until);
	if (!w.go) {
		RB_REMOVE(waiters, &S.tree, &w);
		S.timed_out++;
	}
	pthread_mutex_unlock(&S.lock);
	pthread_cond_destroy(&w.cond);
	if (w.go)
		return 0;
	errno = ETIMEDOUT;
	return -1;
}

void cfs_leave(const char *from, unsigned weight, uint64_t service_ns)
{
	if (!weight)
		weight = GOV_CFS_WEIGHT_DEFAULT;
	pthread_mutex_lock(&S.lock);
	struct caller *c = caller_get(from);
	if (c) {
		if (c->vruntime < S.min_vruntime)
			c->vruntime = S.min_vruntime;
		c->vruntime += service_ns * GOV_CFS_WEIGHT_DEFAULT / weight;
		c->calls++;
		c->service_ns += service_ns;
	}
	struct waiter *next = RB_MIN(waiters, &S.tree);
	if (next) {
		RB_REMOVE(waiters, &S.tree, next);
		if (next->vruntime > S.min_vruntime)
			S.min_vruntime = next->vruntime;
		next->go = 1; /* S.running stays 1: handed over */
		pthread_cond_signal(&next->cond);
	} else {
		S.running = 0;
	}
	pthread_mutex_unlock(&S.lock);
}

size_t cfs_stats_json(char *out, size_t cap)
{
	size_t o = 0;
	pthread_mutex_lock(&S.lock);
	o += (size_t)snprintf(out + o, cap - o, ",\"cfs\":{\"timed_out\":%llu,\"callers\":[",
			      S.timed_out);
	for (struct caller *c = S.callers; c && o < cap; c = c->next)
		o += (size_t)snprintf(out + o, cap - o,
				      "%s{\"from\":\"%s\",\"calls\":%llu,\"service_us\":%llu,"
				      "\"vruntime_us\":%llu}", c == S.callers ? "" : ",", c->name,
				      (unsigned long long)c->calls,
				      (unsigned long long)(c->service_ns / 1000),
				      (unsigned long long)(c->vruntime / 1000));
	pthread_mutex_unlock(&S.lock);
	if (o < cap)
		o += (size_t)snprintf(out + o, cap - o, "]}");
	return o < cap ? o : cap;
}
