/* runtime/agent/serve.c - serving one connected process: its shared
 * region, the worker thread that answers its calls, and the counts.
 *
 * The worker scans the slots below slots_used. Finding work, it keeps
 * scanning; idle, it spins, yielding the CPU after 2 us (a forwarder it
 * just woke may be waiting for it: docs/cfs.md, issue 8); idle for
 * spin_ns, it sets agent_sleeping, scans once more (a
 * request posted before the flag was visible must not be missed) and sleeps
 * on the flag as a futex. A process wakes it only when it sees the flag set,
 * so a busy agent makes no system call. Requests are decoded by the one wire
 * codec and never trusted: a frame that does not decode gets a MALFORMED
 * reply naming the field, and the agent carries on. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include "gov/wire.h"
#include "agent.h"
#include "tasklet.h"
#include "edge.h"
#include "../xcall_io.h"
#include "../../rules/dynamic/dynrt.h"

#define TABLE_CAP 1024
#define DYN_CAP (512 * 1024) /* the dynamic rule area: directory and objects */
#define SLEEP_SLICE_NS (100 * 1000000L) /* to notice a stop request */

static size_t region_size(const struct agent_config *cfg, uint32_t *table_off,
			  uint32_t *dyn_off, uint32_t *stats_off, uint32_t *slots_off)
{
	size_t off = (sizeof(struct gov_region_hdr) + GOV_CACHELINE - 1) & ~(size_t)(GOV_CACHELINE - 1);
	*table_off = (uint32_t)off;
	off += TABLE_CAP * sizeof(struct gov_decision);
	off = (off + 4095) & ~(size_t)4095;
	*dyn_off = (uint32_t)off;
	off += DYN_CAP;
	off = (off + 4095) & ~(size_t)4095;
	*stats_off = (uint32_t)off;
	off += GOV_REGION_STATS_SIZE;
	off = (off + 4095) & ~(size_t)4095;
	*slots_off = (uint32_t)off;
	return off + (size_t)cfg->nslots * cfg->slot_size;
}

/* The dynamic rules' directory, and the objects of those the process runs
 * itself (placement process) while they fit. */
static void write_dyn(struct gov_region_hdr *h, const struct agent_rules *r)
{
	struct gov_region_dyn *d = (struct gov_region_dyn *)((char *)h + h->dyn_off);
	uint32_t used = sizeof *d;
	memset(d, 0, sizeof *d);
	for (unsigned i = 0; i < r->v.ndyn && i < GOV_REGION_DYN_MAX; i++) {
		struct gov_region_dyn_entry *e = &d->ent[i];
		e->spec = r->v.dyn[i].spec;
		const struct agent_dyn *ad = r->dyn ? &r->dyn[i] : NULL;
		if (!ad || !ad->obj)
			continue;
		e->hash = gov_dyn_hash(ad->obj, ad->len);
		if (e->spec.placement != GOV_DYN_IN_PROCESS || ad->len > h->dyn_cap - used) {
			if (e->spec.placement == GOV_DYN_IN_PROCESS)
				agent_log("warning", "rule_too_big", "rule=%s bytes=%zu: the agent runs it",
					  e->spec.name, ad->len);
			continue;
		}
		memcpy((char *)d + used, ad->obj, ad->len);
		e->off = used;
		e->len = (uint32_t)ad->len;
		used += (uint32_t)((ad->len + 7) & ~(size_t)7);
	}
	d->count = r->v.ndyn < GOV_REGION_DYN_MAX ? r->v.ndyn : GOV_REGION_DYN_MAX;
}

static void write_table(struct gov_region_hdr *h, const struct agent_rules *r)
{
	unsigned n = r->v.nrows < h->table_cap ? r->v.nrows : h->table_cap;
	__atomic_store_n(&h->table_seq, h->table_seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	write_dyn(h, r);
	struct gov_decision *t = gov_region_table(h);
	memcpy(t, r->v.rows, n * sizeof *r->v.rows);
	for (unsigned i = 0; i < n; i++)
		if (t[i].action == GOV_ACT_FORWARD && t[i].match == GOV_MATCH_FUNCTION)
			t[i].value = edge_direct_id(&r->edges, t[i].name);
	h->table_count = n;
	h->table_rev = r->rev;
	__atomic_store_n(&h->table_seq, h->table_seq + 1, __ATOMIC_RELEASE);
}

struct client *client_create(struct agent *a, int fd, pid_t pid, uid_t uid,
			     char *why, size_t whylen)
{
	uint32_t table_off, dyn_off, stats_off, slots_off;
	size_t size = region_size(&a->cfg, &table_off, &dyn_off, &stats_off, &slots_off);
	char name[96];
	snprintf(name, sizeof name, "gov-region:%s:%d", a->cfg.resource, (int)pid);
	int mfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0 || ftruncate(mfd, (off_t)size) < 0 ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		snprintf(why, whylen, "cannot create the shared region: %s", strerror(errno));
		if (mfd >= 0)
			close(mfd);
		return NULL;
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	struct client *c = p == MAP_FAILED ? NULL : calloc(1, sizeof *c);
	if (!c) {
		snprintf(why, whylen, "cannot map the shared region: %s", strerror(errno));
		if (p != MAP_FAILED)
			munmap(p, size);
		close(mfd);
		return NULL;
	}
	struct gov_region_hdr *h = p;
	h->magic = GOV_REGION_MAGIC;
	h->version = GOV_REGION_VERSION;
	h->hdr_size = sizeof *h;
	h->size = size;
	h->agent_epoch = a->epoch;
	h->nslots = a->cfg.nslots;
	h->slot_size = a->cfg.slot_size;
	h->slots_off = slots_off;
	h->table_off = table_off;
	h->table_cap = TABLE_CAP;
	h->dyn_off = dyn_off;
	h->dyn_cap = DYN_CAP;
	h->stats_off = stats_off;
	c->dynstats = (const struct gov_region_dynstat *)((char *)p + stats_off);
	pthread_rwlock_rdlock(&a->rules_lock);
	write_table(h, &a->rules);
	pthread_rwlock_unlock(&a->rules_lock);
	c->fd = fd;
	c->pid = pid;
	c->uid = uid;
	c->region = h;
	c->size = size;
	c->region_fd = mfd;
	return c;
}

static struct site_count *site_counter(struct client *c, uint64_t id, const char *callee)
{
	if (!id)
		id = 1;
	for (unsigned i = 0, k = (unsigned)(id % SITE_COUNTS); i < SITE_COUNTS;
	     i++, k = (k + 1) % SITE_COUNTS) {
		struct site_count *s = &c->sites[k];
		uint64_t have = __atomic_load_n(&s->site_id, __ATOMIC_ACQUIRE);
		if (have == id)
			return s;
		if (have == 0) {
			snprintf(s->callee, sizeof s->callee, "%s", callee);
			__atomic_store_n(&s->site_id, id, __ATOMIC_RELEASE);
			return s;
		}
	}
	return NULL;
}

/* Counters have one writer, the worker: no locked add needed, only a
 * store that the statistics reader cannot see torn. */
static void bump(atomic_ullong *n)
{
	atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* The reply for one decoded request, from the rules in force; a dynamic
 * rule's answer may add to it (*extra). */
static void decide(struct agent *a, struct client *c, const struct gov_wire_call *call,
		   uint8_t *action, int32_t *err, int64_t *value, struct agent_dyn_extra *extra)
{
	const struct gov_wire_req *h = call->hdr;
	*action = GOV_ACT_NATIVE;
	*err = 0;
	*value = 0;
	extra->forward_to = 0;
	extra->nargs = 0;
	if (tasklet_is_request(call)) { /* govrt_tasklet_schedule */
		tasklet_request(a, call, action, err, value);
		return;
	}
	const struct gov_verdicts *v = &a->rules.v;
	for (unsigned i = 0; i < v->nrows; i++) {
		const struct gov_decision *d = &v->rows[i];
		if (gov_decision_matches(d, h->kind, h->callee, h->sysno)) {
			if (d->action == GOV_ACT_RULE) {
				agent_dyn_decide(a, c, (unsigned)d->value, call, action, err, value, extra);
				return;
			}
			*action = d->action;
			*err = d->err;
			*value = d->value;
			return;
		}
	}
}

static void serve_slot(struct agent *a, struct client *c, struct gov_slot *s)
{
	uint32_t cap = c->region->slot_size - (uint32_t)sizeof *s;
	uint32_t len = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
	uint64_t seq = s->seq;
	struct gov_wire_call call;
	char why[200];
	uint8_t action;
	int32_t err;
	int64_t value;
	if (len > cap) {
		snprintf(why, sizeof why, "slot field len: %u exceeds the payload's %u bytes", len, cap);
		goto malformed;
	}
	if (gov_wire_decode_req(s->payload, len, &call, why, sizeof why) < 0)
		goto malformed;
	if (call.hdr->seq != seq) {
		snprintf(why, sizeof why, "frame field seq: %llu, the slot says %llu",
			 (unsigned long long)call.hdr->seq, (unsigned long long)seq);
		goto malformed;
	}
	struct agent_dyn_extra extra;
	decide(a, c, &call, &action, &err, &value, &extra);
	struct site_count *sc = site_counter(c, call.hdr->site_id, call.hdr->callee);
	bump(sc ? &sc->calls : &c->other_calls);
	bump(&c->calls);
	uint32_t body = 0;
	if (action == GOV_ACT_FORWARD && edge_forward_async(a, c, s, &call, len, extra.forward_to))
		return; /* a forwarder answers it (edge.c) */
	if (action == GOV_ACT_FORWARD) /* the reply's body, the out-buffers, replaces the request */
		body = edge_forward(a, &call, s->payload, len, s->payload, cap, extra.forward_to,
				    &action, &err, &value);
	gov_wire_encode_rep(&s->rep, s->payload, cap, seq, GOV_WIRE_OK, action, err, value, NULL);
	if (extra.nargs) { /* NATIVE with the words to run it with (docs/wire.md) */
		body = extra.nargs * (uint32_t)sizeof *extra.args;
		memcpy(s->payload, extra.args, body);
	}
	s->rep.body_len = body;
	goto reply;
malformed:
	atomic_fetch_add(&c->malformed, 1);
	agent_log("warning", "malformed_frame", "resource=%s pid=%d error=\"%s\"",
		  a->cfg.resource, (int)c->pid, why);
	gov_wire_encode_rep(&s->rep, s->payload, cap, seq, GOV_WIRE_MALFORMED, GOV_ACT_NATIVE,
			    0, 0, why);
reply:
	;
	uint32_t request = GOV_SLOT_REQUEST;
	if (!__atomic_compare_exchange_n(&s->state, &request, GOV_SLOT_REPLY, 0,
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
		/* the caller gave up while we worked: the slot is ours to free */
		__atomic_store_n(&s->state, GOV_SLOT_IDLE, __ATOMIC_RELAXED);
		__atomic_store_n(&s->owner_tid, 0, __ATOMIC_RELEASE);
		return;
	}
	if (__atomic_load_n(&s->client_sleeping, __ATOMIC_SEQ_CST))
		gov_futex_wake(&s->state, 1);
}

/* One pass over the slots in use; returns how many requests it served. */
static int scan(struct agent *a, struct client *c)
{
	struct gov_region_hdr *h = c->region;
	uint32_t used = __atomic_load_n(&h->slots_used, __ATOMIC_ACQUIRE);
	int served = 0;
	if (used > h->nslots)
		used = h->nslots;
	for (uint32_t i = 0; i < used; i++) {
		struct gov_slot *s = gov_region_slot(h, i);
		/* before the state: a forwarder (edge.c) answers, then lets go */
		if (edge_slot_busy(c, i))
			continue;
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST);
		if (st == GOV_SLOT_REQUEST) {
			pthread_rwlock_rdlock(&a->rules_lock);
			serve_slot(a, c, s);
			pthread_rwlock_unlock(&a->rules_lock);
			served++;
		} else if (st == GOV_SLOT_ABANDONED &&
			   __atomic_compare_exchange_n(&s->state, &st, GOV_SLOT_IDLE, 0,
						       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			__atomic_store_n(&s->owner_tid, 0, __ATOMIC_RELEASE);
		}
	}
	return served;
}

struct worker_arg {
	struct agent *a;
	struct client *c;
};

static void *worker(void *p)
{
	struct worker_arg w = *(struct worker_arg *)p;
	free(p);
	struct gov_region_hdr *h = w.c->region;
	uint64_t last_busy = gov_now_ns();
	unsigned idle = 0;
	while (!atomic_load_explicit(&w.c->stop, memory_order_relaxed)) {
		if (scan(w.a, w.c)) {
			/* spin_ns idle from here: from the wake-up alone, a worker
			 * that handed a call to a forwarder slept just before the
			 * next thread's call came (docs/cfs.md, issue 8) */
			last_busy = gov_now_ns();
			idle = 0;
			continue;
		}
		/* spin_ns 0 means sleep at once: no pause loop either */
		if (w.a->cfg.spin_ns &&
		    ((++idle & 63) != 0 || gov_now_ns() - last_busy < (uint64_t)w.a->cfg.spin_ns)) {
			if (idle & 63)
				__builtin_ia32_pause();
			else if (gov_now_ns() - last_busy > 2000)
				sched_yield(); /* a forwarder it woke may wait for this CPU */
			continue;
		}
		__atomic_store_n(&h->agent_sleeping, 1, __ATOMIC_SEQ_CST);
		if (!scan(w.a, w.c))
			gov_futex_wait(&h->agent_sleeping, 1, SLEEP_SLICE_NS);
		__atomic_store_n(&h->agent_sleeping, 0, __ATOMIC_SEQ_CST);
		last_busy = gov_now_ns();
		idle = 0;
	}
	return NULL;
}

int client_start(struct agent *a, struct client *c)
{
	struct worker_arg *w = malloc(sizeof *w);
	if (!w)
		return -ENOMEM;
	w->a = a;
	w->c = c;
	int r = pthread_create(&c->worker, NULL, worker, w);
	if (r) {
		free(w);
		c->worker = 0;
		return -r;
	}
	return 0;
}

static void merge_counts(struct site_count *into, const struct site_count *from,
			 uint64_t *other)
{
	for (unsigned i = 0; i < SITE_COUNTS; i++) {
		if (!from[i].site_id)
			continue;
		struct site_count *slot = NULL;
		for (unsigned k = 0; k < SITE_COUNTS && !slot; k++) {
			unsigned j = (unsigned)((from[i].site_id + k) % SITE_COUNTS);
			if (into[j].site_id == from[i].site_id || !into[j].site_id)
				slot = &into[j];
		}
		if (!slot) {
			*other += atomic_load(&from[i].calls);
			continue;
		}
		if (!slot->site_id) {
			slot->site_id = from[i].site_id;
			memcpy(slot->callee, from[i].callee, sizeof slot->callee);
		}
		atomic_fetch_add(&slot->calls, atomic_load(&from[i].calls));
	}
}

void client_stop(struct agent *a, struct client *c)
{
	atomic_store(&c->stop, 1);
	if (c->worker) {
		gov_futex_wake(&c->region->agent_sleeping, 1);
		pthread_join(c->worker, NULL);
	}
	edge_client_gone(c); /* forwards in flight write into its region */
	/* wake anyone still waiting: the process sees the socket close */
	struct gov_region_hdr *h = c->region;
	for (uint32_t i = 0; i < h->slots_used && i < h->nslots; i++)
		gov_futex_wake(&gov_region_slot(h, i)->state, INT_MAX);
	merge_counts(a->gone, c->sites, &a->gone_other);
	/* what it ran itself, of the versions in force: a copy first, since
	 * the process writes the area (a process still running may go on) */
	struct gov_region_dynstat *snap = c->dynstats ? malloc(sizeof *snap) : NULL;
	for (int i = 0; snap && i < GOV_REGION_DYN_MAX; i++) {
		struct gov_region_dynstat *g = &a->gone_dyn[i];
		uint64_t want = atomic_load(&a->dyn_hash[i]);
		memcpy(snap, &c->dynstats[i], sizeof *snap);
		if (!want || snap->hash != want)
			continue;
		if (g->hash != want) /* of a version no longer in force */
			memset(g, 0, sizeof *g);
		agent_dyn_figures_add(g, snap, 1);
	}
	free(snap);
	a->gone_other += atomic_load(&c->other_calls);
	a->gone_calls += atomic_load(&c->calls);
	a->gone_malformed += atomic_load(&c->malformed);
	munmap(c->region, c->size);
	if (c->region_fd >= 0)
		close(c->region_fd);
	free(c);
}

void client_publish_table(struct agent *a, struct client *c)
{
	write_table(c->region, &a->rules);
	struct gov_msg m = { .magic = GOV_MSG_MAGIC, .version = GOV_WIRE_VERSION,
			     .type = GOV_MSG_TABLE };
	ssize_t n = send(c->fd, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n; /* a process that is going away finds out by itself */
}

void client_send_grant(struct client *c, uint32_t id, int memfd, const char *to)
{
	if (!c->direct)
		return;
	struct gov_msg m = { .magic = GOV_MSG_MAGIC, .version = GOV_WIRE_VERSION,
			     .type = GOV_MSG_GRANT, .size = id };
	snprintf(m.name, sizeof m.name, "%s", to);
	if (gov_fd_send(c->fd, &m, sizeof m, memfd) < 0)
		agent_log("warning", "send_failed", "pid=%d what=grant error=\"%s\"", (int)c->pid,
			  strerror(errno));
}

/* JSON-escapes s into a static-size buffer; names are plain here, but the
 * callee of a malformed frame could hold anything. */
static const char *json_str(const char *s, char *buf, size_t len)
{
	size_t o = 0;
	for (; *s && o + 7 < len; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			o += (size_t)snprintf(buf + o, len - o, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			o += (size_t)snprintf(buf + o, len - o, "\\u%04x", ch);
		else
			buf[o++] = (char)ch;
	}
	buf[o] = 0;
	return buf;
}

char *agent_stats_json(struct agent *a)
{
	static struct site_count all[SITE_COUNTS];
	uint64_t other, calls, malformed;
	unsigned nclients = 0;
	/* the rules the processes run themselves: their figures, of the
	 * versions in force (procs[i].hash; 0 for the agent's own) */
	struct gov_region_dynstat *procs = calloc(GOV_REGION_DYN_MAX, sizeof *procs);
	for (int i = 0; procs && i < GOV_REGION_DYN_MAX; i++)
		procs[i].hash = atomic_load(&a->dyn_hash[i]);
	pthread_mutex_lock(&a->clients_lock);
	memcpy(all, a->gone, sizeof all);
	other = a->gone_other;
	calls = a->gone_calls;
	malformed = a->gone_malformed;
	for (int i = 0; procs && i < GOV_REGION_DYN_MAX; i++)
		if (procs[i].hash)
			agent_dyn_figures_add(&procs[i], &a->gone_dyn[i], 0);
	for (struct client *c = a->clients; c; c = c->next, nclients++) {
		merge_counts(all, c->sites, &other);
		other += atomic_load(&c->other_calls);
		calls += atomic_load(&c->calls);
		malformed += atomic_load(&c->malformed);
		for (int i = 0; procs && c->dynstats && i < GOV_REGION_DYN_MAX; i++)
			if (procs[i].hash)
				agent_dyn_figures_add(&procs[i], &c->dynstats[i], 1);
	}
	pthread_mutex_unlock(&a->clients_lock);

	size_t cap = 256 + SITE_COUNTS * 2 * (GOV_NAME_MAX * 6 + 96) + (1 << 20), o = 0;
	char *out = malloc(cap), esc[GOV_NAME_MAX * 6 + 8], esc2[GOV_NAME_MAX * 6 + 8];
	if (!out) {
		free(procs);
		return NULL;
	}
	pthread_rwlock_rdlock(&a->rules_lock);
	uint64_t rev = a->rules.rev;
	pthread_rwlock_unlock(&a->rules_lock);
	o += (size_t)snprintf(out + o, cap - o,
			      "{\"resource\":\"%s\",\"pid\":%d,\"rules_rev\":%llu,\"clients\":%u,"
			      "\"calls\":%llu,\"malformed\":%llu,\"sites\":[",
			      json_str(a->cfg.resource, esc, sizeof esc), (int)getpid(),
			      (unsigned long long)rev, nclients, (unsigned long long)calls,
			      (unsigned long long)malformed);
	int first = 1;
	for (unsigned i = 0; i < SITE_COUNTS; i++) {
		if (!all[i].site_id)
			continue;
		o += (size_t)snprintf(out + o, cap - o, "%s{\"site_id\":\"%016llx\",\"callee\":\"%s\",\"calls\":%llu}",
				      first ? "" : ",", (unsigned long long)all[i].site_id,
				      json_str(all[i].callee, esc, sizeof esc),
				      (unsigned long long)atomic_load(&all[i].calls));
		first = 0;
	}
	/* an edge is resource -> callee: the sum over that callee's sites */
	o += (size_t)snprintf(out + o, cap - o, "],\"edges\":[");
	first = 1;
	for (unsigned i = 0; i < SITE_COUNTS; i++) {
		if (!all[i].site_id)
			continue;
		int seen = 0;
		uint64_t sum = 0;
		for (unsigned j = 0; j < SITE_COUNTS; j++) {
			if (!all[j].site_id || strcmp(all[j].callee, all[i].callee) != 0)
				continue;
			if (j < i)
				seen = 1;
			sum += atomic_load(&all[j].calls);
		}
		if (seen)
			continue;
		o += (size_t)snprintf(out + o, cap - o, "%s{\"from\":\"%s\",\"to\":\"%s\",\"calls\":%llu}",
				      first ? "" : ",", json_str(a->cfg.resource, esc2, sizeof esc2),
				      json_str(all[i].callee, esc, sizeof esc), (unsigned long long)sum);
		first = 0;
	}
	o += (size_t)snprintf(out + o, cap - o, "],\"other_calls\":%llu", (unsigned long long)other);
	if (o < cap)
		o += edge_stats_json(out + o, cap - o);
	if (o + 1 < cap)
		out[o++] = ',';
	pthread_rwlock_rdlock(&a->rules_lock);
	if (o < cap)
		o += agent_dyn_json(a, out + o, cap - o, procs);
	pthread_rwlock_unlock(&a->rules_lock);
	free(procs);
	if (o < cap)
		snprintf(out + o, cap - o, "}\n");
	return out;
}
