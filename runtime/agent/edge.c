/* runtime/agent/edge.c - cross-resource calls in govagent.
 *
 * Caller's side: a slot's call whose decision is FORWARD goes to the agent
 * of the callee resource (the rule's `to:`, else the resource whose
 * declaration exports the function) over the edge's protocol (the rules'
 * protocols: section, default unix). An edge has up to GOV_XCALL_LANES
 * lanes, each a link with one call on it, so several calls are in flight
 * at once; each caller thread waits for its own call, so its calls keep
 * their order. Calls hold the edge's gate shared; a protocol switch holds
 * it exclusive, so it happens when every call in flight has been answered
 * (drain, then switch), with none lost or duplicated.
 *
 * At most once: every call gets a request id, new per call of this agent.
 * A link that breaks before the answer is reopened once and the same id
 * sent again, but only if the callee's agent is the same one (same epoch):
 * that agent remembers each caller's (and lane's) last id and its result, and answers a
 * resend from there. Anything else (the callee agent restarted, the second
 * try fails, no answer in --forward-timeout-ms) means the call may or may
 * not have run: the caller gets the fail outcome, ECONNABORTED or
 * ETIMEDOUT, never a guess. A call that certainly did not run (no agent to
 * reach, no process serving the function) fails with EHOSTUNREACH/ENOSYS.
 *
 * Callee's side: links come in on <run dir>/<resource>.edge (and tcp);
 * each has a thread that takes a CALL, dedups it, hands it to a process of
 * this resource that serves its exports (a server, HELLO role server) and
 * sends the RESULT back.
 *
 * Direct grants (docs/xcall.md "Direct calls"): once an shm call has gone
 * well, the caller's agent offers the callee's agent a memfd of boxes
 * (GRANT); the callee's agent hands it to a serving process, unless a cfs
 * rule schedules calls into its resource or its tasklets: name one of its
 * exports (the agent queues those calls), and the caller's agent passes it
 * to its processes, whose govrt then calls the serving process through it
 * with no agent on the path. Either agent revokes it: the caller's at a
 * protocol switch (after the direct calls in flight drain), the callee's
 * when the link that brought it closes or a cfs rule appears. It is not
 * the transport (edge_link.c). */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"
#include "cfs.h"
#include "gov/dynrule.h"
#include "edge.h"
#include "tasklet.h"
#include "../xcall_io.h"

/* ---- rules ---- */

static int grow(void **p, unsigned n, size_t size)
{
	void *q = realloc(*p, (n + 1) * size);
	if (!q)
		return -1;
	*p = q;
	return 0;
}

int edge_rules_add(struct edge_rules *e, const struct gov_ruledoc *d, const char *me)
{
	for (unsigned i = 0; i < d->nrows; i++) {
		if (d->rows[i].action != GOV_ACT_FORWARD)
			continue;
		if (d->row_resource[i][0] && strcmp(d->row_resource[i], me) != 0)
			continue;
		if (grow((void **)&e->fwd, e->nfwd, sizeof *e->fwd) < 0)
			return -1;
		struct edge_fwd *f = &e->fwd[e->nfwd++];
		snprintf(f->fn, sizeof f->fn, "%s", d->rows[i].name);
		snprintf(f->to, sizeof f->to, "%s", d->row_to ? d->row_to[i] : "");
	}
	for (unsigned i = 0; i < d->nresources; i++)
		if (strcmp(d->resources[i].name, me) == 0 && d->resources[i].concurrency)
			e->concurrency = d->resources[i].concurrency;
	for (unsigned i = 0; i < d->nresources; i++)
		for (unsigned k = 0; k < d->resources[i].nexports; k++) {
			if (grow((void **)&e->exporters, e->nexporters, sizeof *e->exporters) < 0)
				return -1;
			struct edge_fwd *f = &e->exporters[e->nexporters++];
			snprintf(f->fn, sizeof f->fn, "%s", d->resources[i].exports[k]);
			snprintf(f->to, sizeof f->to, "%s", d->resources[i].name);
		}
	for (unsigned i = 0; i < d->nprotocols; i++) {
		if (strcmp(d->protocols[i].from, me) != 0)
			continue;
		if (grow((void **)&e->protos, e->nprotos, sizeof *e->protos) < 0)
			return -1;
		struct edge_proto *p = &e->protos[e->nprotos++];
		snprintf(p->to, sizeof p->to, "%s", d->protocols[i].to);
		p->proto = gov_xcall_proto_from_word(d->protocols[i].protocol);
		snprintf(p->address, sizeof p->address, "%s", d->protocols[i].address);
	}
	for (unsigned i = 0; i < d->ncfs; i++) {
		if (strcmp(d->cfs[i].to, me) != 0)
			continue;
		if (grow((void **)&e->cfs, e->ncfs, sizeof *e->cfs) < 0)
			return -1;
		struct edge_cfs *w = &e->cfs[e->ncfs++];
		snprintf(w->from, sizeof w->from, "%s", d->cfs[i].from);
		w->weight = d->cfs[i].weight;
		e->cfs_on = 1;
	}
	for (unsigned i = 0; i < d->ntasklets; i++) {
		if (d->tasklets[i].resource[0] && strcmp(d->tasklets[i].resource, me) != 0)
			continue;
		if (grow((void **)&e->tasklets, e->ntasklets, sizeof *e->tasklets) < 0)
			return -1;
		struct edge_tasklet *t = &e->tasklets[e->ntasklets++];
		snprintf(t->name, sizeof t->name, "%s", d->tasklets[i].name);
		snprintf(t->fn, sizeof t->fn, "%s", d->tasklets[i].function);
	}
	return 0;
}

int edge_rules_add_resource(struct edge_rules *e, const char *json, size_t len)
{
	json_t *r = json_loadb(json, len, 0, NULL);
	const char *name = r ? json_string_value(json_object_get(r, "name")) : NULL;
	json_t *ex = r ? json_object_get(r, "exports") : NULL;
	int rc = 0;
	for (size_t i = 0; name && i < json_array_size(ex) && !rc; i++) {
		const char *fn = json_string_value(json_array_get(ex, i));
		if (!fn)
			continue;
		if (grow((void **)&e->exporters, e->nexporters, sizeof *e->exporters) < 0) {
			rc = -1;
			break;
		}
		struct edge_fwd *f = &e->exporters[e->nexporters++];
		snprintf(f->fn, sizeof f->fn, "%s", fn);
		snprintf(f->to, sizeof f->to, "%s", name);
	}
	json_decref(r);
	return rc;
}

void edge_rules_free(struct edge_rules *e)
{
	free(e->fwd);
	free(e->exporters);
	free(e->protos);
	free(e->cfs);
	free(e->tasklets);
	memset(e, 0, sizeof *e);
}

/* The later rule wins: documents are appended in order. */
static const struct edge_proto *proto_for(const struct edge_rules *e, const char *to)
{
	const struct edge_proto *found = NULL;
	for (unsigned i = 0; i < e->nprotos; i++)
		if (strcmp(e->protos[i].to, to) == 0)
			found = &e->protos[i];
	return found;
}

static const char *callee_of(const struct edge_rules *e, const char *fn)
{
	for (unsigned i = 0; i < e->nfwd; i++)
		if (strcmp(e->fwd[i].fn, fn) == 0) {
			if (e->fwd[i].to[0])
				return e->fwd[i].to;
			break;
		}
	for (unsigned i = 0; i < e->nexporters; i++)
		if (strcmp(e->exporters[i].fn, fn) == 0)
			return e->exporters[i].to;
	return NULL;
}

/* ---- state ---- */

/* One link of an edge and the call on it. Calls on an edge take a free
 * lane (its link opened on first use), so up to GOV_XCALL_LANES run at
 * once; the callee dedups per lane (its ids grow, one call at a time). */
struct lane {
	struct edge_link *link;
	uint64_t callee_epoch;  /* of the agent this lane's link reached */
	int busy;
	int no_link;            /* could not be opened: not used until a switch */
};

struct edge {
	char to[GOV_NAME_MAX];
	/* calls hold the gate shared for a round trip; a switch holds it
	 * exclusive, so it waits for every call in flight (drain) and calls
	 * that come meanwhile wait for it (writers are preferred) */
	pthread_rwlock_t gate;
	int proto;              /* changed only with the gate held exclusive */
	char address[96];
	pthread_mutex_t lanes_lock;
	pthread_cond_t lane_free;
	struct lane lanes[GOV_XCALL_LANES];
	atomic_uint in_flight, in_flight_max;
	atomic_ullong calls, ok, not_run, unknown, resent, switches, ns, deferred;
	/* its direct grant (E.lock), set up after an shm call went well; the
	 * counts of grants gone are kept in gone[] (enum direct_count) */
	struct gov_xcall_direct *direct;
	int direct_fd;
	uint32_t direct_id;
	int direct_asking;
	uint64_t direct_retry_ns;
	uint64_t gone[5];
	struct edge *next;
};

/* A grant this agent handed to a serving process (callee's side), on the
 * list until the link that brought it closes. */
struct grant {
	struct gov_xcall_direct *d;
	char from[GOV_NAME_MAX];
	pid_t server;
	struct grant *next;
};

struct server {
	int fd;                 /* its socket; its end of file says it is gone */
	struct gov_xcall_serve *sv; /* its mailbox and probe, if it asked */
	struct gov_xcall_box *box; /* &sv->box: frames travel here, else on fd */
	uint32_t seen;
	pid_t pid;
	pthread_mutex_t lock;   /* one call at a time on its socket */
	int dead;
	/* a call given up on while the process was alive and busy: its RESULT
	 * is still to come, and is taken out of the mailbox before the next
	 * call goes in (under lock; read unlocked by pick_server) */
	atomic_int late;
	int users;              /* link threads holding it (under E.lock) */
	int unlinked;           /* off the list: the last user frees it */
	struct server *next;
};

/* A caller agent's last request to us and its result (at most once).
 * The result is kept only until the caller's next request acknowledges it
 * (a caller resends only its last request), and in exactly its size; the
 * entry of a caller agent epoch silent for longer than E.keep_ms is
 * dropped (docs/xcall.md "At most once"). */
struct dedup {
	uint64_t caller_epoch, last_id;
	unsigned lane;
	uint64_t seen_ns;       /* the last CALL of this epoch on this lane */
	int running;
	struct gov_xcall_hdr rep;
	unsigned char *body;    /* rep.body_len bytes, or NULL */
	struct dedup *next;
};

static struct {
	struct agent *a;
	char tcp_listen[128];
	int timeout_ms;
	pthread_mutex_t lock;   /* edges, servers, dedup */
	pthread_cond_t done;    /* a dedup entry finished running */
	struct edge *edges;
	struct server *servers;
	struct dedup *dedup;
	struct grant *grants;   /* handed out (callee's side) */
	uint32_t next_grant;
	int no_direct;          /* --no-direct */
	uint64_t keep_ms;       /* --resend-keep-s */
	atomic_ullong next_req;
	atomic_ullong served, dup_answered;
	int lfd[2];
	char edge_path[PATH_MAX], tcp_path[PATH_MAX];
	pthread_t acceptor;
	int running;
} E = { .timeout_ms = 1500, .keep_ms = GOV_XCALL_RESEND_KEEP_S * 1000ull, .lock = PTHREAD_MUTEX_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER, .lfd = { -1, -1 } };

void edge_resend_keep(long seconds)
{
	E.keep_ms = (uint64_t)seconds * 1000u;
}

void edge_no_direct(void)
{
	E.no_direct = 1;
}

void edge_config(const char *tcp_listen, long forward_timeout_ms)
{
	if (tcp_listen)
		snprintf(E.tcp_listen, sizeof E.tcp_listen, "%s", tcp_listen);
	if (forward_timeout_ms > 0)
		E.timeout_ms = (int)forward_timeout_ms;
}

static struct edge *edge_get(const char *to)
{
	pthread_mutex_lock(&E.lock);
	struct edge *e = E.edges;
	while (e && strcmp(e->to, to) != 0)
		e = e->next;
	if (!e && (e = calloc(1, sizeof *e))) {
		snprintf(e->to, sizeof e->to, "%s", to);
		pthread_rwlockattr_t at;
		pthread_rwlockattr_init(&at);
		pthread_rwlockattr_setkind_np(&at, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&e->gate, &at);
		pthread_rwlockattr_destroy(&at);
		pthread_mutex_init(&e->lanes_lock, NULL);
		pthread_cond_init(&e->lane_free, NULL);
		e->proto = -1;
		e->direct_fd = -1;
		e->next = E.edges;
		E.edges = e;
	}
	pthread_mutex_unlock(&E.lock);
	return e;
}

static void log_switch(struct agent *a, struct edge *e, int proto)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	agent_log("info", "edge_switched", "from=%s to=%s protocol=%s old=%s at=%lld.%09ld calls=%llu",
		  a->cfg.resource, e->to, gov_xcall_proto_word(proto),
		  gov_xcall_proto_word(e->proto), (long long)ts.tv_sec, ts.tv_nsec,
		  (unsigned long long)atomic_load(&e->calls));
}

static int proto_in_force(const struct edge *e, const struct edge_proto *p)
{
	return e->proto == (p ? p->proto : GOV_PROTO_UNIX) &&
	       strcmp(e->address, p ? p->address : "") == 0;
}

/* ---- caller's side: the edge's direct grant ---- */

enum direct_count { D_CALLS, D_OK, D_NOT_RUN, D_UNKNOWN, D_NS };
#define DIRECT_RETRY_NS (10 * 1000000000ull) /* after a refusal, ask again this late */

/* Adds the counts of grant d's boxes to n. */
static void direct_add(uint64_t n[5], const struct gov_xcall_direct *d)
{
	for (int i = 0; i < GOV_XCALL_DIRECT_BOXES; i++) {
		const struct gov_xcall_dbox *b = &d->dbox[i];
		n[D_CALLS] += b->calls;
		n[D_OK] += b->ok;
		n[D_NOT_RUN] += b->not_run;
		n[D_UNKNOWN] += b->unknown;
		n[D_NS] += b->ns;
	}
}

/* The edge's direct calls so far: the grants gone and the one in force.
 * E.lock held. */
static void direct_counts(const struct edge *e, uint64_t n[5])
{
	memcpy(n, e->gone, sizeof e->gone);
	if (e->direct)
		direct_add(n, e->direct);
}

/* Revokes the edge's grant, waits for the direct calls in flight (drain)
 * and keeps their counts. Its processes' govrt see it revoked and take the
 * agents' path from their next call. */
static void direct_drop(struct agent *a, struct edge *e, const char *why)
{
	/* taken off the edge first: a second dropper finds nothing to do */
	pthread_mutex_lock(&E.lock);
	struct gov_xcall_direct *d = e->direct;
	int fd = e->direct_fd;
	uint32_t id = e->direct_id;
	e->direct = NULL;
	e->direct_fd = -1;
	pthread_mutex_unlock(&E.lock);
	if (!d)
		return;
	unsigned busy = gov_xcall_direct_revoke(d, E.timeout_ms);
	pthread_mutex_lock(&E.lock);
	direct_add(e->gone, d);
	uint64_t n[5];
	direct_counts(e, n);
	pthread_mutex_unlock(&E.lock);
	agent_log("info", "direct_revoked", "from=%s to=%s grant=%u calls=%llu busy=%u why=\"%s\"",
		  a->cfg.resource, e->to, id, (unsigned long long)n[D_CALLS], busy, why);
	munmap(d, sizeof *d);
	close(fd);
}

/* A new memfd of boxes for edge e, or -1. */
static int direct_create(struct agent *a, struct edge *e, struct gov_xcall_direct **out)
{
	int fd = memfd_create("gov-direct", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	struct gov_xcall_direct *d = MAP_FAILED;
	if (ftruncate(fd, sizeof *d) == 0)
		d = mmap(NULL, sizeof *d, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (d == MAP_FAILED) {
		close(fd);
		return -1;
	}
	d->magic = GOV_XCALL_DIRECT_MAGIC;
	d->version = GOV_XCALL_DIRECT_VERSION;
	d->timeout_ms = (uint32_t)E.timeout_ms;
	snprintf(d->from, sizeof d->from, "%s", a->cfg.resource);
	snprintf(d->to, sizeof d->to, "%s", e->to);
	*out = d;
	return fd;
}

/* After a call went well on an shm link: offers the callee's agent a grant
 * on that link (lane l, held). Returns 1 if the edge got one (its
 * processes must then hear of it: direct_publish). */
static int direct_ask(struct agent *a, struct edge *e, struct lane *l, int li)
{
	uint64_t now = gov_now_ns();
	pthread_mutex_lock(&E.lock);
	int go = !E.no_direct && !e->direct && !e->direct_asking && now >= e->direct_retry_ns;
	if (go)
		e->direct_asking = 1;
	pthread_mutex_unlock(&E.lock);
	if (!go)
		return 0;
	char why[160] = "";
	struct gov_xcall_direct *d = NULL;
	int fd = direct_create(a, e, &d), r = -1;
	struct gov_xcall_hdr h, rep;
	if (fd < 0) {
		snprintf(why, sizeof why, "no memory for the boxes: %s", strerror(errno));
	} else {
		gov_xcall_init(&h, GOV_XCALL_GRANT);
		h.caller_epoch = a->epoch;
		h.lane = (uint8_t)li;
		h.req_id = atomic_fetch_add(&E.next_req, 1) + 1;
		unsigned char none[8];
		if (edge_link_pass_fd(l->link, fd) < 0 || edge_link_send(l->link, &h, NULL, E.timeout_ms) < 0)
			r = -EPIPE;
		else
			r = edge_link_recv(l->link, &rep, none, sizeof none, E.timeout_ms, why, sizeof why);
		if (r > 0 && (rep.type != GOV_XCALL_RESULT || rep.req_id != h.req_id))
			r = -EPROTO;
		if (r <= 0) {
			/* the link is in an unknown state: the next call opens another */
			edge_link_close(l->link);
			l->link = NULL;
			if (!why[0])
				snprintf(why, sizeof why, "the link broke: %s", r ? strerror(-r) : "closed");
		} else if (rep.status != GOV_XCALL_OK) {
			snprintf(why, sizeof why, "%s", rep.text);
			r = -1;
		}
	}
	int granted = r > 0;
	pthread_mutex_lock(&E.lock);
	e->direct_asking = 0;
	if (granted) {
		e->direct = d;
		e->direct_fd = fd;
		e->direct_id = ++E.next_grant;
	} else {
		e->direct_retry_ns = now + DIRECT_RETRY_NS;
	}
	uint32_t id = e->direct_id;
	pthread_mutex_unlock(&E.lock);
	if (granted) {
		agent_log("info", "direct_granted", "from=%s to=%s grant=%u server=%d", a->cfg.resource,
			  e->to, id, (int)d->server_pid);
		return 1;
	}
	agent_log("info", "direct_refused", "from=%s to=%s error=\"%s\" (calls keep the agents' path)",
		  a->cfg.resource, e->to, why);
	if (d)
		munmap(d, sizeof *d);
	if (fd >= 0)
		close(fd);
	return 0;
}

uint32_t edge_direct_id(const struct edge_rules *er, const char *fn)
{
	for (unsigned i = 0; i < er->ntasklets; i++)
		if (strcmp(er->tasklets[i].fn, fn) == 0)
			return 0; /* the agent queues these */
	const char *to = callee_of(er, fn);
	uint32_t id = 0;
	pthread_mutex_lock(&E.lock);
	for (struct edge *e = E.edges; to && e; e = e->next)
		if (strcmp(e->to, to) == 0 && e->direct && !e->direct->revoked &&
		    e->proto == GOV_PROTO_SHM && proto_in_force(e, proto_for(er, to)))
			id = e->direct_id;
	pthread_mutex_unlock(&E.lock);
	return id;
}

void edge_direct_send(struct client *c)
{
	pthread_mutex_lock(&E.lock);
	for (struct edge *e = E.edges; e; e = e->next)
		if (e->direct && !e->direct->revoked)
			client_send_grant(c, e->direct_id, e->direct_fd, e->to);
	pthread_mutex_unlock(&E.lock);
}

/* A new grant: every process of this resource gets its memfd, then a
 * table whose FORWARD rows to that edge name it. rules_lock held. */
static void direct_publish(struct agent *a)
{
	pthread_mutex_lock(&a->clients_lock);
	for (struct client *c = a->clients; c; c = c->next) {
		edge_direct_send(c);
		client_publish_table(a, c);
	}
	pthread_mutex_unlock(&a->clients_lock);
}

/* Gate held exclusive: every call before has been answered, none is in
 * flight. */
static void edge_set_proto(struct agent *a, struct edge *e, const struct edge_proto *p)
{
	int proto = p ? p->proto : GOV_PROTO_UNIX;
	const char *addr = p ? p->address : "";
	if (proto_in_force(e, p))
		return;
	direct_drop(a, e, "the edge's protocol changes");
	if (e->proto >= 0) {
		log_switch(a, e, proto);
		atomic_fetch_add(&e->switches, 1);
	}
	atomic_store(&e->in_flight_max, 0); /* it says how the protocol in force did */
	for (int i = 0; i < GOV_XCALL_LANES; i++) {
		edge_link_close(e->lanes[i].link);
		e->lanes[i].link = NULL;
		e->lanes[i].no_link = 0;
	}
	e->proto = proto;
	snprintf(e->address, sizeof e->address, "%s", addr);
}

/* An edge with a call in flight is left alone here: edge_forward sets the
 * protocol in force before each call, under the same lock, so the next call
 * switches it (and logs when). The agent's main thread never waits here. */
static void grants_recheck(struct agent *a);
static void servers_concurrency(struct agent *a);

void edge_rules_changed(struct agent *a)
{
	grants_recheck(a);
	servers_concurrency(a);
	pthread_mutex_lock(&E.lock);
	struct edge *list = E.edges; /* edges are never freed while the agent runs */
	pthread_mutex_unlock(&E.lock);
	for (struct edge *e = list; e; e = e->next) {
		if (pthread_rwlock_trywrlock(&e->gate) != 0)
			continue;
		pthread_rwlock_rdlock(&a->rules_lock);
		struct edge_proto p, *pp = NULL;
		const struct edge_proto *found = proto_for(&a->rules.edges, e->to);
		if (found) {
			p = *found;
			pp = &p;
		}
		pthread_rwlock_unlock(&a->rules_lock);
		edge_set_proto(a, e, pp);
		pthread_rwlock_unlock(&e->gate);
	}
}

/* ---- caller's side ---- */

static int open_link(struct agent *a, struct edge *e, struct lane *l, char *why, size_t whylen)
{
	uint64_t epoch = 0;
	l->link = edge_link_open(a, e->to, e->proto, e->address, E.timeout_ms, &epoch, why, whylen);
	if (!l->link)
		return -1;
	uint64_t before = l->callee_epoch;
	l->callee_epoch = epoch;
	return before && before != epoch ? 1 : 0; /* 1: a new agent over there */
}

/* A free lane, preferring one whose link is open; waits while all are busy. */
static int lane_take(struct edge *e)
{
	pthread_mutex_lock(&e->lanes_lock);
	int pick = -1;
	for (;;) {
		for (int i = 0; i < GOV_XCALL_LANES; i++)
			if (!e->lanes[i].busy && !e->lanes[i].no_link &&
			    (pick < 0 || (e->lanes[i].link && !e->lanes[pick].link)))
				pick = i;
		if (pick >= 0)
			break;
		pthread_cond_wait(&e->lane_free, &e->lanes_lock);
	}
	e->lanes[pick].busy = 1;
	unsigned n = atomic_fetch_add(&e->in_flight, 1) + 1;
	if (n > atomic_load(&e->in_flight_max))
		atomic_store(&e->in_flight_max, n);
	pthread_mutex_unlock(&e->lanes_lock);
	return pick;
}

static void lane_put(struct edge *e, int i)
{
	pthread_mutex_lock(&e->lanes_lock);
	e->lanes[i].busy = 0;
	atomic_fetch_sub(&e->in_flight, 1);
	pthread_cond_signal(&e->lane_free);
	pthread_mutex_unlock(&e->lanes_lock);
}

/* One round trip on lane l with at most one resend. Returns the RESULT's
 * status; err says why for the others. Gate held shared, lane taken. */
static int round_trip(struct agent *a, struct edge *e, struct lane *l, struct gov_xcall_hdr *h,
		      const void *frame, struct gov_xcall_hdr *rep, void *out, uint32_t cap,
		      int32_t *err, char *why, size_t whylen)
{
	int sent_once = 0;
	uint64_t deadline = gov_now_ns() + (uint64_t)E.timeout_ms * 1000000u;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (l->link && !sent_once && edge_link_gone(l->link)) {
			/* idle since the callee's agent went (its calls took a
			 * direct grant, say): a call sent there would be lost */
			edge_link_close(l->link);
			l->link = NULL;
		}
		if (!l->link) {
			int r = open_link(a, e, l, why, whylen);
			if (r < 0) {
				*err = sent_once ? ECONNABORTED : EHOSTUNREACH;
				return sent_once ? GOV_XCALL_UNKNOWN : GOV_XCALL_NOT_RUN;
			}
			if (r == 1 && sent_once) {
				/* the agent that may have run it is gone, with its memory */
				snprintf(why, whylen, "the agent of %s restarted during the call", e->to);
				*err = ECONNABORTED;
				return GOV_XCALL_UNKNOWN;
			}
		}
		if (h->type == GOV_XCALL_DEFER &&
		    !(edge_link_features(l->link) & GOV_XCALL_FEAT_DEFER)) {
			/* it would refuse the frame and drop the link */
			snprintf(why, whylen, "the agent of %s is of an older version: it cannot "
				 "queue a deferred call", e->to);
			*err = EPROTONOSUPPORT;
			return sent_once ? GOV_XCALL_UNKNOWN : GOV_XCALL_NOT_RUN;
		}
		if (sent_once)
			atomic_fetch_add(&e->resent, 1);
		uint64_t now = gov_now_ns();
		int left = now >= deadline ? 1 : (int)((deadline - now) / 1000000u) + 1;
		int r = edge_link_send(l->link, h, frame, left);
		sent_once = 1;
		if (r == 0) {
			r = edge_link_recv(l->link, rep, out, cap, left, why, whylen);
			if (r > 0 && (rep->type != GOV_XCALL_RESULT || rep->req_id != h->req_id)) {
				snprintf(why, whylen, "the agent of %s answered another call", e->to);
				r = -EPROTO;
			}
			if (r > 0) {
				*err = rep->err;
				return rep->status;
			}
		}
		edge_link_close(l->link);
		l->link = NULL;
		if (r == -ETIMEDOUT) {
			snprintf(why, whylen, "no answer from %s in %d ms", e->to, E.timeout_ms);
			*err = ETIMEDOUT;
			return GOV_XCALL_UNKNOWN;
		}
		if (r == -EPROTO)
			break;
		snprintf(why, whylen, "the link to %s broke: %s", e->to, r ? strerror(-r) : "closed");
	}
	*err = ECONNABORTED;
	return GOV_XCALL_UNKNOWN;
}

const char *edge_callee(const struct edge_rules *er, const char *fn)
{
	return callee_of(er, fn);
}

/* Sends h (CALL or DEFER; the lane and req_id are set here) with its body
 * `copy` to the agent of `to` on a lane of the edge, and waits for the
 * RESULT in rep and out (cap bytes); counted in the edge's figures.
 * Returns the status; err, and why when it is not OK, say why. Called
 * with rules_lock held for reading; lets go of it for the round trip. */
static int edge_trip(struct agent *a, const char *to, struct gov_xcall_hdr *h, const void *copy,
		     struct gov_xcall_hdr *rep, void *out, uint32_t cap, int32_t *err, char *why,
		     size_t whylen)
{
	struct edge *e = edge_get(to);
	if (!e) {
		*err = ENOMEM;
		snprintf(why, whylen, "out of memory");
		return GOV_XCALL_NOT_RUN;
	}
	struct edge_proto p, *pp = NULL;
	const struct edge_proto *found = proto_for(&a->rules.edges, to);
	if (found) {
		p = *found;
		pp = &p;
	}
	uint64_t t0 = gov_now_ns();
	/* the rules may change during the round trip: nothing below reads them */
	pthread_rwlock_unlock(&a->rules_lock);
	/* a call comes this way while the edge has a grant when its process
	 * found it revoked (by the callee's side, or a dead server): drop it,
	 * a later call may get another */
	pthread_mutex_lock(&E.lock);
	int revoked = e->direct && e->direct->revoked;
	pthread_mutex_unlock(&E.lock);
	if (revoked)
		direct_drop(a, e, "revoked by the callee's side");
	for (;;) {
		pthread_rwlock_rdlock(&e->gate);
		if (proto_in_force(e, pp))
			break;
		/* switch first: wait for the calls in flight (drain) */
		pthread_rwlock_unlock(&e->gate);
		pthread_rwlock_wrlock(&e->gate);
		edge_set_proto(a, e, pp);
		pthread_rwlock_unlock(&e->gate);
	}
	int li;
	for (;;) {
		li = lane_take(e);
		struct lane *l = &e->lanes[li];
		/* lane 0 opens in round_trip, which reports why it cannot */
		if (l->link || li == 0 || open_link(a, e, l, why, whylen) >= 0)
			break;
		/* no more links to be had (message queues count against the
		 * user's RLIMIT_MSGQUEUE): the calls share the lanes open */
		l->no_link = 1;
		agent_log("info", "edge_lane_unavailable", "from=%s to=%s lane=%d error=\"%s\" "
			  "(calls share the lanes open)", a->cfg.resource, to, li, why);
		why[0] = 0;
		lane_put(e, li);
	}
	/* taken on the lane: ids grow on each lane, as the callee's dedup needs */
	h->lane = (uint8_t)li;
	h->req_id = atomic_fetch_add(&E.next_req, 1) + 1;
	int st = round_trip(a, e, &e->lanes[li], h, copy, rep, out, cap, err, why, whylen);
	int granted = st == GOV_XCALL_OK && h->type == GOV_XCALL_CALL &&
		      e->proto == GOV_PROTO_SHM && direct_ask(a, e, &e->lanes[li], li);
	lane_put(e, li);
	pthread_rwlock_unlock(&e->gate);
	pthread_rwlock_rdlock(&a->rules_lock);
	if (granted)
		direct_publish(a);
	atomic_fetch_add(&e->calls, 1);
	atomic_fetch_add(&e->ns, gov_now_ns() - t0);
	if (h->type == GOV_XCALL_DEFER)
		atomic_fetch_add(&e->deferred, 1);
	atomic_fetch_add(st == GOV_XCALL_OK ? &e->ok : st == GOV_XCALL_UNKNOWN ? &e->unknown
							      : &e->not_run, 1);
	if (st != GOV_XCALL_OK && !*err)
		*err = EHOSTUNREACH;
	if (st != GOV_XCALL_OK && !why[0])
		snprintf(why, whylen, "%s", rep->text);
	return st;
}

static uint32_t forward_call(struct agent *a, const char *to_in, const void *frame, uint32_t len,
			     void *out, uint32_t cap, uint8_t *action, int32_t *err, int64_t *value);

/* The resource whose gov_dyn_id is id among those the rules name: the
 * exporters (registered resources and the rules' resources:), forward
 * targets and edges; NULL if none is. */
static const char *resource_by_id(const struct edge_rules *e, uint32_t id)
{
	for (unsigned i = 0; i < e->nexporters; i++)
		if (gov_dyn_id(e->exporters[i].to) == id)
			return e->exporters[i].to;
	for (unsigned i = 0; i < e->nfwd; i++)
		if (e->fwd[i].to[0] && gov_dyn_id(e->fwd[i].to) == id)
			return e->fwd[i].to;
	for (unsigned i = 0; i < e->nprotos; i++)
		if (gov_dyn_id(e->protos[i].to) == id)
			return e->protos[i].to;
	return NULL;
}

/* A dynamic rule's FORWARD to the resource it named (forward_to). */
static uint32_t forward_to_id(struct agent *a, const struct gov_wire_call *call, const void *frame,
			      uint32_t len, void *out, uint32_t cap, uint32_t to_id, uint8_t *action,
			      int32_t *err, int64_t *value)
{
	const char *to = resource_by_id(&a->rules.edges, to_id);
	if (!to) {
		*action = GOV_ACT_DENY;
		*value = 0;
		*err = EHOSTUNREACH;
		agent_log("warning", "forward_failed", "from=%s function=%s error=\"the rule's forward_to "
			  "(0x%08x) is no resource the rules name (declare it under resources:)\"",
			  a->cfg.resource, call->hdr->callee, to_id);
		return 0;
	}
	return forward_call(a, to, frame, len, out, cap, action, err, value);
}

uint32_t edge_forward(struct agent *a, const struct gov_wire_call *call, const void *frame,
		      uint32_t len, void *out, uint32_t cap, uint32_t to_id, uint8_t *action,
		      int32_t *err, int64_t *value)
{
	const struct edge_rules *er = &a->rules.edges;
	if (to_id)
		return forward_to_id(a, call, frame, len, out, cap, to_id, action, err, value);
	for (unsigned i = 0; i < er->ntasklets; i++)
		if (strcmp(er->tasklets[i].fn, call->hdr->callee) == 0) {
			/* a tasklet: scheduled now, run later, as a rule's
			 * DEFER is (tasklet.c: here, or by the agent of the
			 * resource that exports it; refused if it wants
			 * out-buffers back) */
			int e = tasklet_defer(a, gov_dyn_id(er->tasklets[i].name), frame, len);
			*action = e ? GOV_ACT_DENY : GOV_ACT_FORWARD;
			*err = e;
			*value = e ? -1 : 0;
			return 0;
		}
	const char *to = callee_of(&a->rules.edges, call->hdr->callee);
	if (!to) {
		*action = GOV_ACT_DENY;
		*value = 0;
		*err = EHOSTUNREACH;
		agent_log("warning", "forward_failed", "from=%s function=%s error=\"no resource exports it "
			  "(give the rule a 'to:', or declare the resource's exports)\"",
			  a->cfg.resource, call->hdr->callee);
		return 0;
	}
	return forward_call(a, to, frame, len, out, cap, action, err, value);
}

/* Forwards the call (frame, len bytes) to the agent of `to` as a CALL;
 * fills the reply as edge_forward does. */
static uint32_t forward_call(struct agent *a, const char *to_in, const void *frame, uint32_t len,
			     void *out, uint32_t cap, uint8_t *action, int32_t *err, int64_t *value)
{
	char to[GOV_NAME_MAX];
	snprintf(to, sizeof to, "%s", to_in); /* the rules may change during the trip */
	*action = GOV_ACT_DENY;
	*value = 0;
	/* out may be where frame is (the slot's payload): a resend needs the frame */
	void *copy = malloc(len);
	if (!copy) {
		*err = ENOMEM;
		return 0;
	}
	memcpy(copy, frame, len);
	const char *fn = ((const struct gov_wire_req *)copy)->callee;
	struct gov_xcall_hdr h, rep;
	gov_xcall_init(&h, GOV_XCALL_CALL);
	h.caller_epoch = a->epoch;
	h.body_len = len;
	char why[200] = "";
	*err = 0;
	int st = edge_trip(a, to, &h, copy, &rep, out, cap, err, why, sizeof why);
	if (st == GOV_XCALL_OK) {
		*action = GOV_ACT_FORWARD;
		*value = rep.value;
		free(copy);
		return rep.body_len;
	}
	agent_log("warning", "forward_failed", "from=%s to=%s function=%s req=%llu outcome=%s error=\"%s\"",
		  a->cfg.resource, to, fn, (unsigned long long)h.req_id,
		  st == GOV_XCALL_UNKNOWN ? "unknown" : "not_run", why);
	free(copy);
	return 0;
}

int edge_defer(struct agent *a, const char *to_in, uint32_t id, const void *frame, uint32_t len)
{
	char to[GOV_NAME_MAX];
	snprintf(to, sizeof to, "%s", to_in); /* it may live in the rules */
	/* a resend needs the frame, and the reply's body must not land on it */
	void *copy = malloc(len), *out = malloc(GOV_XCALL_BODY_MAX);
	if (!copy || !out) {
		free(copy);
		free(out);
		return ENOMEM;
	}
	memcpy(copy, frame, len);
	struct gov_xcall_hdr h, rep;
	gov_xcall_init(&h, GOV_XCALL_DEFER);
	h.caller_epoch = a->epoch;
	h.body_len = len;
	h.value = id;
	char why[200] = "";
	int32_t err = 0;
	int st = edge_trip(a, to, &h, copy, &rep, out, GOV_XCALL_BODY_MAX, &err, why, sizeof why);
	if (st != GOV_XCALL_OK)
		agent_log("warning", "defer_failed", "from=%s to=%s function=%s tasklet=%08x req=%llu "
			  "outcome=%s error=\"%s\"", a->cfg.resource, to,
			  ((const struct gov_wire_req *)copy)->callee, id, (unsigned long long)h.req_id,
			  st == GOV_XCALL_UNKNOWN ? "unknown" : "not_run", why);
	free(copy);
	free(out);
	return st == GOV_XCALL_OK ? 0 : err;
}

/* ---- caller's side: forwards off the worker ----
 *
 * A process's slots are served by one agent worker (serve.c). A forward
 * that it made itself would keep every other thread of that process
 * waiting for the round trip, so while another thread of the process is in
 * a call (holds a slot) the worker hands the slot to a forwarder thread and
 * goes on; the forwarder answers the slot itself and wakes its caller. A
 * call with no other in progress keeps the direct path, with no extra
 * thread hop. Each caller
 * thread waits for its own call, so its calls stay in order. */
#define FWD_SLOTS 64 /* forwards in flight off the workers, per agent */
#define FWD_THREADS 16

struct fwd_job {
	_Atomic(struct client *) c; /* NULL: a free entry */
	_Atomic(struct client *) hold; /* c's region is in use until this is NULL */
	uint32_t idx;
	uint64_t seq;
	struct gov_slot *s;
	uint32_t len;
	uint32_t to_id;             /* edge_forward's */
	struct gov_wire_call call;
	struct fwd_job *next;       /* in the queue */
};

static struct {
	struct fwd_job jobs[FWD_SLOTS];
	atomic_uint used;
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct fwd_job *head, **tail;
	unsigned threads, idle;
} F = { .lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER, .tail = &F.head };

int edge_slot_busy(const struct client *c, uint32_t idx)
{
	if (!atomic_load_explicit(&F.used, memory_order_acquire))
		return 0;
	for (int i = 0; i < FWD_SLOTS; i++)
		if (atomic_load_explicit(&F.jobs[i].c, memory_order_acquire) == c &&
		    F.jobs[i].idx == idx)
			return 1;
	return 0;
}

void edge_client_gone(const struct client *c)
{
	for (int i = 0; i < FWD_SLOTS; i++)
		while (atomic_load(&F.jobs[i].c) == c || atomic_load(&F.jobs[i].hold) == c)
			usleep(1000);
}

/* The reply as serve.c's worker writes it, then the caller woken. */
static void fwd_answer(struct fwd_job *j, uint8_t action, int32_t err, int64_t value,
		       uint32_t body)
{
	struct gov_slot *s = j->s;
	struct client *c = atomic_load(&j->c);
	uint32_t cap = c->region->slot_size - (uint32_t)sizeof *s;
	gov_wire_encode_rep(&s->rep, s->payload, cap, j->seq, GOV_WIRE_OK, action, err, value, NULL);
	s->rep.body_len = body;
	uint32_t request = GOV_SLOT_REQUEST;
	if (!__atomic_compare_exchange_n(&s->state, &request, GOV_SLOT_REPLY, 0,
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
		/* the caller gave up while we worked: the slot is ours to free */
		__atomic_store_n(&s->state, GOV_SLOT_IDLE, __ATOMIC_RELAXED);
		__atomic_store_n(&s->owner_tid, 0, __ATOMIC_RELEASE);
	} else if (__atomic_load_n(&s->client_sleeping, __ATOMIC_SEQ_CST)) {
		gov_futex_wake(&s->state, 1);
	}
}

static void *forwarder(void *p)
{
	struct agent *a = p;
	pthread_mutex_lock(&F.lock);
	for (;;) {
		while (!F.head) {
			F.idle++;
			pthread_cond_wait(&F.work, &F.lock);
			F.idle--;
		}
		struct fwd_job *j = F.head;
		if (!(F.head = j->next))
			F.tail = &F.head;
		pthread_mutex_unlock(&F.lock);
		struct client *c = atomic_load(&j->c);
		uint32_t cap = c->region->slot_size - (uint32_t)sizeof *j->s;
		uint8_t action;
		int32_t err = 0;
		int64_t value = 0;
		uint32_t body = 0;
		action = GOV_ACT_DENY;
		/* a caller that gave up while its call waited here must not
		 * have it run after all: fwd_answer frees its slot */
		if (__atomic_load_n(&j->s->state, __ATOMIC_ACQUIRE) == GOV_SLOT_REQUEST) {
			pthread_rwlock_rdlock(&a->rules_lock);
			body = edge_forward(a, &j->call, j->s->payload, j->len, j->s->payload, cap,
					    j->to_id, &action, &err, &value);
			pthread_rwlock_unlock(&a->rules_lock);
		}
		fwd_answer(j, action, err, value, body);
		/* the caller may already have put its next call in this slot,
		 * which the worker skipped: let it see the slot, and wake it in
		 * case it went to sleep meanwhile */
		atomic_store_explicit(&j->c, NULL, memory_order_seq_cst);
		struct gov_region_hdr *h = c->region;
		if (__atomic_load_n(&h->agent_sleeping, __ATOMIC_SEQ_CST))
			gov_futex_wake(&h->agent_sleeping, 1);
		atomic_store_explicit(&j->hold, NULL, memory_order_release);
		atomic_fetch_sub(&F.used, 1);
		pthread_mutex_lock(&F.lock);
	}
	return NULL;
}

/* 1 if a thread other than the one of slot s is in a governed call (it
 * holds a slot: govrt takes one per call). */
static int other_calls(struct gov_region_hdr *h, const struct gov_slot *s)
{
	uint32_t used = __atomic_load_n(&h->slots_used, __ATOMIC_ACQUIRE);
	if (used > h->nslots)
		used = h->nslots;
	for (uint32_t i = 0; i < used; i++) {
		const struct gov_slot *o = gov_region_slot(h, i);
		if (o != s && __atomic_load_n(&o->owner_tid, __ATOMIC_RELAXED))
			return 1;
	}
	return 0;
}

int edge_forward_async(struct agent *a, struct client *c, struct gov_slot *s,
		       const struct gov_wire_call *call, uint32_t len, uint32_t to_id)
{
	struct gov_region_hdr *h = c->region;
	if (!other_calls(h, s))
		return 0;
	struct fwd_job *j = NULL;
	for (int i = 0; i < FWD_SLOTS && !j; i++) {
		struct client *none = NULL;
		if (!atomic_load(&F.jobs[i].c) && !atomic_load(&F.jobs[i].hold))
			j = &F.jobs[i];
		if (j && !atomic_compare_exchange_strong(&j->c, &none, (struct client *)-1))
			j = NULL;
	}
	if (!j)
		return 0; /* all in use: the worker forwards this one itself */
	j->idx = (uint32_t)(((char *)s - ((char *)h + h->slots_off)) / h->slot_size);
	j->s = s;
	j->seq = call->hdr->seq;
	j->len = len;
	j->to_id = to_id;
	atomic_store(&j->hold, c);
	j->call = *call; /* points into the slot, which stays ours until answered */
	j->next = NULL;
	atomic_fetch_add(&F.used, 1);
	atomic_store_explicit(&j->c, c, memory_order_release);
	pthread_mutex_lock(&F.lock);
	*F.tail = j;
	F.tail = &j->next;
	pthread_t t;
	pthread_attr_t at;
	if (!F.idle && F.threads < FWD_THREADS) {
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &at, forwarder, a) == 0)
			F.threads++;
		pthread_attr_destroy(&at);
	}
	pthread_cond_signal(&F.work);
	pthread_mutex_unlock(&F.lock);
	return 1;
}

/* ---- callee's side: servers ---- */

/* WELCOME, with the mailbox's memfd when there is one. */
static int welcome_server(struct agent *a, int fd, int memfd)
{
	struct gov_msg m = { .magic = GOV_MSG_MAGIC, .version = GOV_WIRE_VERSION,
			     .type = GOV_MSG_WELCOME, .epoch = a->epoch };
	snprintf(m.name, sizeof m.name, "%s", a->cfg.resource);
	if (memfd < 0)
		return send(fd, &m, sizeof m, MSG_NOSIGNAL) == (ssize_t)sizeof m ? 0 : -1;
	m.size = sizeof(struct gov_xcall_serve);
	return gov_fd_send(fd, &m, sizeof m, memfd) == 0 ? 0 : -1;
}

void edge_add_server(struct agent *a, int fd, pid_t pid, int shared)
{
	struct server *s = calloc(1, sizeof *s);
	int memfd = -1;
	if (s && shared) {
		memfd = memfd_create("gov-serve", MFD_CLOEXEC);
		if (memfd < 0 || ftruncate(memfd, sizeof(struct gov_xcall_serve)) < 0 ||
		    !(s->sv = gov_xcall_serve_map(memfd))) {
			agent_log("error", "server_refused", "resource=%s pid=%d error=\"no mailbox: %s\"",
				  a->cfg.resource, (int)pid, strerror(errno));
			free(s);
			s = NULL;
		}
	}
	if (s && s->sv) {
		s->box = &s->sv->box;
		pthread_rwlock_rdlock(&a->rules_lock);
		s->sv->concurrency = a->rules.edges.concurrency; /* read after WELCOME */
		pthread_rwlock_unlock(&a->rules_lock);
	}
	if (!s || welcome_server(a, fd, memfd) < 0) {
		if (s && s->sv)
			munmap(s->sv, sizeof *s->sv);
		free(s);
		if (memfd >= 0)
			close(memfd);
		close(fd);
		return;
	}
	if (memfd >= 0)
		close(memfd);
	struct timeval tv = { 0, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	s->fd = fd;
	s->pid = pid;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_lock(&E.lock);
	struct server **pp = &E.servers;
	while (*pp)
		pp = &(*pp)->next;
	*pp = s; /* appended: the oldest server gets calls first */
	pthread_mutex_unlock(&E.lock);
	servers_concurrency(a); /* in case the rules changed meanwhile */
	agent_log("info", "server_connected", "resource=%s pid=%d via=%s", a->cfg.resource, (int)pid,
		  s->box ? "mailbox" : "socket");
}

/* This resource's declared concurrency, told to server s: written, then
 * a probe the process's answer to which takes it in (nobody waits for the
 * answer). E.lock held, or s not yet on the list. */
static void tell_concurrency(struct server *s, unsigned n)
{
	if (!s->sv || s->sv->concurrency == n)
		return;
	__atomic_store_n(&s->sv->concurrency, n, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&s->sv->ping, 1, __ATOMIC_SEQ_CST);
	gov_futex_wake(&s->sv->ping, 1);
}

static void servers_concurrency(struct agent *a)
{
	pthread_rwlock_rdlock(&a->rules_lock);
	unsigned n = a->rules.edges.concurrency;
	pthread_rwlock_unlock(&a->rules_lock);
	pthread_mutex_lock(&E.lock);
	for (struct server *s = E.servers; s; s = s->next)
		tell_concurrency(s, n);
	pthread_mutex_unlock(&E.lock);
}

static void server_free(struct server *s)
{
	close(s->fd);
	if (s->sv)
		munmap(s->sv, sizeof *s->sv);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The first live server, held (users) until release_server. One whose
 * process has closed its socket (it went away, or gave up on its WELCOME)
 * is taken off the list here rather than sent a call that would then count
 * as lost; it is freed when nobody holds it. */
static struct server *pick_server(int prefer_idle)
{
	pthread_mutex_lock(&E.lock);
	struct server **pp = &E.servers, *s;
	while ((s = *pp) && (s->dead || gov_xcall_peer_gone(s->fd))) {
		*pp = s->next;
		s->unlinked = 1;
		if (!s->users)
			server_free(s);
	}
	for (struct server *t = s; prefer_idle && s && s->users && t; t = t->next)
		if (!t->users && !t->dead) {
			s = t;
			break;
		}
	/* one still busy with a call given up on takes calls last */
	for (struct server *t = s; s && atomic_load(&s->late) && t; t = t->next)
		if (!atomic_load(&t->late) && !t->dead) {
			s = t;
			break;
		}
	if (s)
		s->users++;
	pthread_mutex_unlock(&E.lock);
	return s;
}

static void release_server(struct server *s)
{
	pthread_mutex_lock(&E.lock);
	if (!--s->users && s->unlinked)
		server_free(s);
	pthread_mutex_unlock(&E.lock);
}

/* 1 if the process of server s answers a liveness probe within ms (gov/
 * xcall.h struct gov_xcall_serve): it is alive, whatever its functions are
 * doing. A server on a socket has no probe: 0. s->lock held. */
static int server_answers(struct server *s, int ms)
{
	struct gov_xcall_serve *sv = s->sv;
	if (!sv)
		return 0;
	uint32_t n = __atomic_add_fetch(&sv->ping, 1, __ATOMIC_SEQ_CST);
	gov_futex_wake(&sv->ping, 1);
	uint64_t end = gov_now_ns() + (uint64_t)ms * 1000000u;
	for (;;) {
		uint32_t p = __atomic_load_n(&sv->pong, __ATOMIC_SEQ_CST);
		if (p == n)
			return 1;
		uint64_t now = gov_now_ns();
		if (now >= end || gov_xcall_peer_gone(s->fd))
			return 0;
		uint64_t left = end - now, slice = 10 * 1000000u;
		gov_futex_wait(&sv->pong, p, (long)(left < slice ? left : slice));
	}
}

static int ms_until(uint64_t t)
{
	uint64_t now = gov_now_ns();
	return now >= t ? 0 : (int)((t - now + 999999u) / 1000000u);
}

/* The next frame from server s's mailbox, waited for until `hard` (ns of
 * gov_now_ns). A process silent at `soft` is probed: one that does not
 * answer the probe is hung (-ETIMEDOUT); one that does is busy, and is
 * given until hard (-EBUSY if it is still not done). Else as
 * gov_xcall_box_recv. s->lock held. */
static int await_frame(struct agent *a, struct server *s, uint64_t soft, uint64_t hard,
		       struct gov_xcall_hdr *rep, void *out, char *why, size_t whylen)
{
	int r = gov_xcall_box_recv(&s->box->mb[1], &s->seen, s->fd, a->cfg.spin_ns, 20,
				   ms_until(soft), rep, out, GOV_XCALL_BODY_MAX, why, whylen);
	if (r != -ETIMEDOUT)
		return r;
	if (!server_answers(s, E.timeout_ms / 8))
		return -ETIMEDOUT;
	r = gov_xcall_box_recv(&s->box->mb[1], &s->seen, s->fd, a->cfg.spin_ns, 20,
			       ms_until(hard), rep, out, GOV_XCALL_BODY_MAX, why, whylen);
	return r == -ETIMEDOUT ? -EBUSY : r;
}

/* A server that was late takes its late RESULT out of the mailbox (and
 * drops it: its caller was answered) before anything else goes in.
 * 1 when the mailbox is free, else as await_frame. s->lock held. */
static int settle(struct agent *a, struct server *s, uint64_t soft, uint64_t hard,
		  char *why, size_t whylen)
{
	if (!atomic_load(&s->late))
		return 1;
	struct gov_xcall_hdr late;
	int r = await_frame(a, s, soft, hard, &late, NULL, why, whylen);
	if (r > 0) {
		atomic_store(&s->late, 0);
		agent_log("info", "server_late_answer", "resource=%s pid=%d req=%llu",
			  a->cfg.resource, (int)s->pid, (unsigned long long)late.req_id);
	}
	return r;
}

/* pthread_mutex_lock until `end` (ns of gov_now_ns, CLOCK_MONOTONIC). */
static int lock_until(pthread_mutex_t *m, uint64_t end)
{
	struct timespec ts = { (time_t)(end / 1000000000u), (long)(end % 1000000000u) };
	return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
}

/* Runs a CALL on a server: its status, with the result in rep and out.
 * Answers before the caller's agent gives up on us: a server with a probe
 * that is silent for 3/4 of the forward timeout is probed; a hung one is
 * dropped then, a busy one (a long call runs in it, a direct one say) has
 * until 15/16 and is kept (docs/xcall.md "Busy or hung"). A server on its
 * socket cannot be probed: silent for 3/4, it is dropped. */
static int run_on(struct agent *a, const struct gov_xcall_hdr *h, const void *body,
		  struct gov_xcall_hdr *rep, void *out, int prefer_idle)
{
	uint64_t t0 = gov_now_ns(), span = (uint64_t)E.timeout_ms * 1000000u;
	uint64_t soft = t0 + span / 4 * 3, hard = t0 + span - span / 16;
	struct server *s = pick_server(prefer_idle);
	gov_xcall_init(rep, GOV_XCALL_RESULT);
	rep->caller_epoch = h->caller_epoch;
	rep->req_id = h->req_id;
	if (!s) {
		rep->status = GOV_XCALL_NOT_RUN;
		rep->err = EHOSTUNREACH;
		snprintf(rep->text, sizeof rep->text, "no process of %s serves its exports",
			 a->cfg.resource);
		return rep->status;
	}
	if (lock_until(&s->lock, hard) != 0) {
		/* the calls before it kept the process that long: not sent */
		rep->status = GOV_XCALL_NOT_RUN;
		rep->err = ETIMEDOUT;
		snprintf(rep->text, sizeof rep->text, "the serving process %d of %s was busy for %d ms",
			 (int)s->pid, a->cfg.resource, E.timeout_ms);
		release_server(s);
		return rep->status;
	}
	char why[160] = "";
	int r = 0, sent = 0;
	if (s->box) {
		r = settle(a, s, soft, hard, why, sizeof why);
		if (r > 0) {
			gov_xcall_box_send(&s->box->mb[0], h, body);
			sent = 1;
			r = await_frame(a, s, soft, hard, rep, out, why, sizeof why);
		}
	} else if (!(r = gov_xcall_send(s->fd, 0, h, body))) {
		sent = 1;
		r = gov_xcall_recv(s->fd, 0, rep, out, GOV_XCALL_BODY_MAX, ms_until(soft), why,
				   sizeof why);
	}
	if (r > 0 && (rep->type != GOV_XCALL_RESULT || rep->req_id != h->req_id))
		r = -EPROTO;
	if (r == -EBUSY) {
		/* alive, running something long: this call fails, the process stays */
		if (sent)
			atomic_store(&s->late, 1);
		agent_log("warning", "server_busy", "resource=%s pid=%d req=%llu error=\"no answer in "
			  "%d ms, but it answers its probe: kept\"", a->cfg.resource, (int)s->pid,
			  (unsigned long long)h->req_id, E.timeout_ms);
		gov_xcall_init(rep, GOV_XCALL_RESULT);
		rep->caller_epoch = h->caller_epoch;
		rep->req_id = h->req_id;
		rep->status = sent ? GOV_XCALL_UNKNOWN : GOV_XCALL_NOT_RUN;
		rep->err = ETIMEDOUT;
		snprintf(rep->text, sizeof rep->text, "the serving process %d of %s is busy: "
			 "no answer in time", (int)s->pid, a->cfg.resource);
	} else if (r <= 0) {
		s->dead = 1;
		shutdown(s->fd, SHUT_RDWR);
		agent_log("warning", "server_lost", "resource=%s pid=%d req=%llu error=\"%s\"",
			  a->cfg.resource, (int)s->pid, (unsigned long long)h->req_id,
			  r == 0 ? "it closed its connection" : r == -ETIMEDOUT
			  ? (s->sv ? "no answer in time, nor to its probe" : "no answer in time")
			  : why[0] ? why : strerror(-r));
		gov_xcall_init(rep, GOV_XCALL_RESULT);
		rep->caller_epoch = h->caller_epoch;
		rep->req_id = h->req_id;
		rep->status = sent ? GOV_XCALL_UNKNOWN : GOV_XCALL_NOT_RUN;
		rep->err = r == -ETIMEDOUT ? ETIMEDOUT : sent ? ECONNABORTED : EHOSTUNREACH;
		snprintf(rep->text, sizeof rep->text, "the serving process %d of %s %s %s",
			 (int)s->pid, a->cfg.resource, r == -ETIMEDOUT ? "hung" : "died",
			 sent ? "mid-call" : "before the call");
	} else {
		atomic_fetch_add(&E.served, 1);
	}
	pthread_mutex_unlock(&s->lock);
	release_server(s);
	return rep->status;
}

static int run_on_server(struct agent *a, const struct gov_xcall_hdr *h, const void *body,
			 struct gov_xcall_hdr *rep, void *out)
{
	return run_on(a, h, body, rep, out, 0);
}

int edge_run_local(struct agent *a, const struct gov_xcall_hdr *h, const void *body,
		   struct gov_xcall_hdr *rep, void *out)
{
	return run_on(a, h, body, rep, out, 1);
}

/* Drops the entries of caller agent epochs silent for longer than
 * E.keep_ms, except one whose call is still running. E.lock held. */
static void dedup_expire(uint64_t now)
{
	for (struct dedup **pp = &E.dedup, *d; (d = *pp);) {
		if (!d->running && now - d->seen_ns > E.keep_ms * 1000000u) {
			*pp = d->next;
			free(d->body);
			free(d);
		} else {
			pp = &d->next;
		}
	}
}

static struct dedup *dedup_get(uint64_t caller_epoch, unsigned lane)
{
	uint64_t now = gov_now_ns();
	dedup_expire(now);
	struct dedup *d = E.dedup;
	while (d && (d->caller_epoch != caller_epoch || d->lane != lane))
		d = d->next;
	if (!d && (d = calloc(1, sizeof *d))) {
		d->caller_epoch = caller_epoch;
		d->lane = lane;
		d->next = E.dedup;
		E.dedup = d;
	}
	if (d)
		d->seen_ns = now;
	return d;
}

/* Keeps a result for a resend, in its size. Without the memory for it, a
 * resend gets "outcome unknown", never a second run. E.lock held. */
static void dedup_keep(struct dedup *d, const struct gov_xcall_hdr *rep, const void *out)
{
	d->rep = *rep;
	d->body = rep->body_len ? malloc(rep->body_len) : NULL;
	if (d->body) {
		memcpy(d->body, out, rep->body_len);
	} else if (rep->body_len) {
		d->rep.status = GOV_XCALL_UNKNOWN;
		d->rep.err = ECONNABORTED;
		d->rep.body_len = 0;
		snprintf(d->rep.text, sizeof d->rep.text, "no memory kept the result of a resent call");
	}
}

/* Under a cfs rule naming this resource, a call waits for its caller's
 * turn (cfs.c) before it runs; 0 = the caller has no cfs weight here, -1 =
 * no cfs rule. The later entry for a caller wins, as for protocols. */
static int cfs_weight_in(const struct edge_rules *e, const char *from)
{
	int w = e->cfs_on ? 0 : -1;
	for (unsigned i = 0; i < e->ncfs; i++)
		if (strcmp(e->cfs[i].from, from) == 0)
			w = (int)e->cfs[i].weight;
	return w;
}

static int cfs_weight(struct agent *a, const char *from)
{
	pthread_rwlock_rdlock(&a->rules_lock);
	int w = cfs_weight_in(&a->rules.edges, from);
	pthread_rwlock_unlock(&a->rules_lock);
	return w;
}

/* run_on_server in cfs order when a cfs rule says so. Waiting longer than
 * half the forward timeout answers NOT_RUN (EAGAIN): it certainly did not
 * run, and the caller hears so before its own agent gives up. */
static int run_scheduled(struct agent *a, const char *from, const struct gov_xcall_hdr *h,
			 const void *body, struct gov_xcall_hdr *rep, void *out)
{
	int w = cfs_weight(a, from);
	if (w < 0)
		return run_on_server(a, h, body, rep, out);
	if (cfs_enter(from, E.timeout_ms / 2) < 0) {
		gov_xcall_init(rep, GOV_XCALL_RESULT);
		rep->caller_epoch = h->caller_epoch;
		rep->req_id = h->req_id;
		rep->status = GOV_XCALL_NOT_RUN;
		rep->err = EAGAIN;
		snprintf(rep->text, sizeof rep->text, "queued for %s longer than %d ms (cfs)",
			 a->cfg.resource, E.timeout_ms / 2);
		return rep->status;
	}
	uint64_t t0 = gov_now_ns();
	int st = run_on_server(a, h, body, rep, out);
	cfs_leave(from, (unsigned)w, gov_now_ns() - t0);
	return st;
}

/* A DEFER from a link: queued on this agent's tasklet (tasklet.c), and
 * answered at once; no cfs turn, nothing runs yet. */
static void defer_here(struct agent *a, const char *from, const struct gov_xcall_hdr *h,
		       const void *body, struct gov_xcall_hdr *rep)
{
	gov_xcall_init(rep, GOV_XCALL_RESULT);
	rep->caller_epoch = h->caller_epoch;
	rep->req_id = h->req_id;
	char why[sizeof rep->text] = "";
	int e;
	if (h->value < 0 || h->value > UINT32_MAX) {
		snprintf(why, sizeof why, "DEFER field value: %lld is not a tasklet id",
			 (long long)h->value);
		e = EBADMSG;
	} else {
		pthread_rwlock_rdlock(&a->rules_lock);
		e = tasklet_forwarded(a, from, (uint32_t)h->value, body, h->body_len, why, sizeof why);
		pthread_rwlock_unlock(&a->rules_lock);
	}
	rep->status = !e ? GOV_XCALL_OK : e == EBADMSG ? GOV_XCALL_MALFORMED : GOV_XCALL_NOT_RUN;
	rep->err = e;
	snprintf(rep->text, sizeof rep->text, "%s", why);
}

/* A CALL or DEFER from a link: run (queue) it once, or answer a resend
 * from memory. */
static void handle_call(struct agent *a, const char *from, const struct gov_xcall_hdr *h,
			const void *body, struct gov_xcall_hdr *rep, unsigned char *out)
{
	pthread_mutex_lock(&E.lock);
	struct dedup *d = dedup_get(h->caller_epoch, h->lane);
	if (d && h->req_id <= d->last_id) {
		while (d->running && d->last_id == h->req_id)
			pthread_cond_wait(&E.done, &E.lock);
		if (h->req_id == d->last_id) {
			*rep = d->rep;
			if (d->rep.body_len)
				memcpy(out, d->body, d->rep.body_len);
			atomic_fetch_add(&E.dup_answered, 1);
		} else {
			gov_xcall_init(rep, GOV_XCALL_RESULT);
			rep->caller_epoch = h->caller_epoch;
			rep->req_id = h->req_id;
			rep->status = GOV_XCALL_UNKNOWN;
			rep->err = ECONNABORTED;
			snprintf(rep->text, sizeof rep->text, "request %llu is older than the last one",
				 (unsigned long long)h->req_id);
		}
		pthread_mutex_unlock(&E.lock);
		return;
	}
	if (d) {
		/* a new id acknowledges the previous result: it is never asked again */
		free(d->body);
		d->body = NULL;
		d->rep.body_len = 0;
		d->last_id = h->req_id;
		d->running = 1;
	}
	pthread_mutex_unlock(&E.lock);
	if (h->type == GOV_XCALL_DEFER)
		defer_here(a, from, h, body, rep);
	else if (!tasklet_called(a, from, h, body, rep)) /* one of its tasklets: queued */
		run_scheduled(a, from, h, body, rep, out);
	if (d) {
		pthread_mutex_lock(&E.lock);
		if (d->last_id == h->req_id) {
			dedup_keep(d, rep, out);
			d->running = 0;
		}
		pthread_cond_broadcast(&E.done);
		pthread_mutex_unlock(&E.lock);
	}
}

/* ---- callee's side: direct grants ---- */

/* Hands the grant (memfd fd) to server s through its mailbox: GRANT
 * there, the memfd beside it on its socket. Fills rep from its answer. */
static void grant_to_server(struct agent *a, struct server *s, int fd, struct gov_xcall_hdr *rep)
{
	struct gov_xcall_hdr g, sr;
	unsigned char none[8];
	char why[160] = "";
	gov_xcall_init(&g, GOV_XCALL_GRANT);
	g.req_id = rep->req_id;
	pthread_mutex_lock(&s->lock);
	uint64_t t0 = gov_now_ns(), span = (uint64_t)E.timeout_ms * 1000000u;
	int r = settle(a, s, t0 + span / 4 * 3, t0 + span - span / 16, why, sizeof why);
	if (r == -EBUSY) {
		snprintf(rep->text, sizeof rep->text, "its serving process %d is busy", (int)s->pid);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	r = r > 0 ? gov_fd_send(s->fd, "G", 1, fd) : r == 0 ? -ECONNRESET : r;
	if (!r) {
		gov_xcall_box_send(&s->box->mb[0], &g, NULL);
		r = gov_xcall_box_recv(&s->box->mb[1], &s->seen, s->fd, a->cfg.spin_ns, 20,
				       E.timeout_ms, &sr, none, sizeof none, why, sizeof why);
	}
	if (r > 0 && (sr.type != GOV_XCALL_RESULT || sr.req_id != g.req_id))
		r = -EPROTO;
	if (r <= 0) {
		s->dead = 1;
		shutdown(s->fd, SHUT_RDWR);
		snprintf(rep->text, sizeof rep->text, "the serving process %d did not take it: %s",
			 (int)s->pid, r == 0 ? "it left" : why[0] ? why : strerror(-r));
	} else {
		rep->status = sr.status;
		rep->err = sr.err;
		snprintf(rep->text, sizeof rep->text, "%s", sr.text);
	}
	pthread_mutex_unlock(&s->lock);
}

/* GRANT on a link from `from`: the memfd comes beside it. Answers in rep;
 * a grant taken goes on *mine (the link's) and E.grants. */
static void grant_offered(struct agent *a, const char *from, struct edge_link *l,
			  const struct gov_xcall_hdr *h, struct gov_xcall_hdr *rep,
			  struct grant **mine)
{
	gov_xcall_init(rep, GOV_XCALL_RESULT);
	rep->caller_epoch = h->caller_epoch;
	rep->req_id = h->req_id;
	rep->status = GOV_XCALL_NOT_RUN;
	rep->err = EPERM;
	int fd = edge_link_take_fd(l, 2000);
	struct gov_xcall_direct *d = fd >= 0 ? gov_xcall_direct_map(fd) : NULL;
	struct server *s = NULL;
	if (!d)
		snprintf(rep->text, sizeof rep->text, fd < 0 ? "a grant comes on an shm link with its memfd"
			 : "the memfd that came is not a direct grant");
	else if (E.no_direct)
		snprintf(rep->text, sizeof rep->text, "%s gives no direct grants (--no-direct)",
			 a->cfg.resource);
	else if (strcmp(d->from, from) != 0 || strcmp(d->to, a->cfg.resource) != 0)
		snprintf(rep->text, sizeof rep->text, "the grant names another edge");
	else if (cfs_weight(a, from) >= 0)
		snprintf(rep->text, sizeof rep->text, "a cfs rule schedules the calls into %s",
			 a->cfg.resource);
	else if (tasklet_listed(a))
		snprintf(rep->text, sizeof rep->text, "%s queues the calls of its tasklets",
			 a->cfg.resource);
	else if (!(s = pick_server(0)))
		snprintf(rep->text, sizeof rep->text, "no process of %s serves its exports",
			 a->cfg.resource);
	else if (!s->box)
		snprintf(rep->text, sizeof rep->text, "its serving process takes calls on its socket");
	else
		grant_to_server(a, s, fd, rep);
	struct grant *g = rep->status == GOV_XCALL_OK ? calloc(1, sizeof *g) : NULL;
	if (g) {
		g->d = d;
		g->server = s->pid;
		snprintf(g->from, sizeof g->from, "%s", from);
		pthread_mutex_lock(&E.lock);
		g->next = E.grants;
		E.grants = g;
		pthread_mutex_unlock(&E.lock);
		g = calloc(1, sizeof *g); /* the link's own note of it */
		if (g) {
			g->d = d;
			g->next = *mine;
			*mine = g;
		}
		agent_log("info", "direct_given", "resource=%s from=%s server=%d", a->cfg.resource,
			  from, (int)s->pid);
	} else {
		if (d) {
			__atomic_store_n(&d->revoked, 1, __ATOMIC_SEQ_CST);
			munmap(d, sizeof *d);
		}
		if (rep->status == GOV_XCALL_OK) {
			rep->status = GOV_XCALL_NOT_RUN;
			rep->err = ENOMEM;
			snprintf(rep->text, sizeof rep->text, "out of memory");
		}
	}
	if (s)
		release_server(s);
	if (fd >= 0)
		close(fd);
}

/* The link that brought these grants closed: they end with it. */
static void grants_end(struct grant *mine)
{
	while (mine) {
		struct grant *g = mine;
		mine = g->next;
		__atomic_store_n(&g->d->revoked, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_lock(&E.lock);
		for (struct grant **pp = &E.grants; *pp; pp = &(*pp)->next)
			if ((*pp)->d == g->d) {
				struct grant *dead = *pp;
				*pp = dead->next;
				free(dead);
				break;
			}
		pthread_mutex_unlock(&E.lock);
		munmap(g->d, sizeof *g->d);
		free(g);
	}
}

/* The rules changed: a grant into a resource whose calls a cfs rule now
 * schedules, or whose tasklets: now name one of its exports (tasklet.c
 * queues those calls), or after --no-direct, is revoked (its link keeps it mapped
 * until it closes). */
static void grants_recheck(struct agent *a)
{
	int queues = tasklet_listed(a);
	pthread_rwlock_rdlock(&a->rules_lock);
	pthread_mutex_lock(&E.lock);
	for (struct grant *g = E.grants; g; g = g->next)
		if (!g->d->revoked && (queues || cfs_weight_in(&a->rules.edges, g->from) >= 0)) {
			__atomic_store_n(&g->d->revoked, 1, __ATOMIC_SEQ_CST);
			agent_log("info", "direct_revoked", "resource=%s from=%s why=\"%s\"",
				  a->cfg.resource, g->from, queues ? "it queues the calls of its "
				  "tasklets" : "a cfs rule schedules its calls");
		}
	pthread_mutex_unlock(&E.lock);
	pthread_rwlock_unlock(&a->rules_lock);
}

struct link_arg {
	struct agent *a;
	int fd, is_tcp;
};

/* A unix link is accepted from the agent's own uid or an --allow-uid one,
 * as processes are (main.c). A tcp link cannot be told apart: docs/xcall.md. */
static int peer_allowed(struct agent *a, int fd, char *why, size_t whylen)
{
	struct ucred cr;
	socklen_t len = sizeof cr;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		snprintf(why, whylen, "cannot read the peer's credentials: %s", strerror(errno));
		return 0;
	}
	if (cr.uid == geteuid())
		return 1;
	for (int i = 0; i < a->cfg.nallow; i++)
		if (a->cfg.allow_uid[i] == cr.uid)
			return 1;
	snprintf(why, whylen, "an agent of uid %u may not call into %s (see --allow-uid)",
		 (unsigned)cr.uid, a->cfg.resource);
	return 0;
}

static void *link_thread(void *p)
{
	struct link_arg la = *(struct link_arg *)p;
	free(p);
	struct gov_xcall_hdr h, rep;
	char why[200] = "";
	if (!la.is_tcp && !peer_allowed(la.a, la.fd, why, sizeof why)) {
		agent_log("warning", "link_refused", "resource=%s error=\"%s\"", la.a->cfg.resource, why);
		close(la.fd);
		return NULL;
	}
	struct edge_link *l = edge_link_accept(la.a, la.fd, la.is_tcp, &h, why, sizeof why);
	if (!l) {
		agent_log("warning", "link_refused", "resource=%s error=\"%s\"", la.a->cfg.resource, why);
		close(la.fd);
		return NULL;
	}
	char from[GOV_NAME_MAX];
	snprintf(from, sizeof from, "%s", h.name);
	agent_log("info", "link_accepted", "resource=%s from=%s protocol=%s", la.a->cfg.resource,
		  from, gov_xcall_proto_word(edge_link_proto(l)));
	unsigned char *in = malloc(GOV_XCALL_BODY_MAX), *out = malloc(GOV_XCALL_BODY_MAX);
	struct grant *granted = NULL;
	while (in && out) {
		int r = edge_link_recv(l, &h, in, GOV_XCALL_BODY_MAX, -1, why, sizeof why);
		if (r == -ETIMEDOUT)
			continue;
		if (r <= 0) {
			if (r < 0)
				agent_log("warning", "link_broken", "resource=%s from=%s error=\"%s\"",
					  la.a->cfg.resource, from, r == -EPROTO ? why : strerror(-r));
			break;
		}
		if (h.type == GOV_XCALL_GRANT) {
			grant_offered(la.a, from, l, &h, &rep, &granted);
			rep.lane = h.lane;
			if (edge_link_send(l, &rep, NULL, E.timeout_ms) < 0)
				break;
			continue;
		}
		if (h.type != GOV_XCALL_CALL && h.type != GOV_XCALL_DEFER)
			continue;
		handle_call(la.a, from, &h, in, &rep, out);
		rep.lane = h.lane;
		if (edge_link_send(l, &rep, out, E.timeout_ms) < 0)
			break;
	}
	free(in);
	free(out);
	grants_end(granted);
	edge_link_close(l);
	return NULL;
}

static void *acceptor(void *p)
{
	struct agent *a = p;
	while (__atomic_load_n(&E.running, __ATOMIC_ACQUIRE)) {
		struct pollfd pf[2] = { { .fd = E.lfd[0], .events = POLLIN },
					{ .fd = E.lfd[1], .events = POLLIN } };
		if (poll(pf, 2, 200) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			if (!(pf[i].revents & POLLIN))
				continue;
			int fd = accept4(E.lfd[i], NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			struct link_arg *la = malloc(sizeof *la);
			pthread_t t;
			pthread_attr_t at;
			pthread_attr_init(&at);
			pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
			if (!la) {
				close(fd);
			} else {
				*la = (struct link_arg){ a, fd, i == 1 };
				if (pthread_create(&t, &at, link_thread, la)) {
					close(fd);
					free(la);
				}
			}
			pthread_attr_destroy(&at);
		}
	}
	return NULL;
}

static int listen_unix(struct agent *a, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (gov_run_path(E.edge_path, sizeof E.edge_path, a->cfg.resource, "edge") < 0 ||
	    strlen(E.edge_path) >= sizeof sa.sun_path) {
		snprintf(err, errlen, "edge socket path too long for a unix socket");
		return -1;
	}
	strcpy(sa.sun_path, E.edge_path);
	unlink(E.edge_path); /* main.c already made sure no live agent owns this name */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* anyone may connect, as to the agent's socket; the uid is checked then */
	mode_t old = umask(0);
	int bound = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	umask(old);
	if (!bound || listen(fd, 64) < 0) {
		snprintf(err, errlen, "cannot listen for edges at %s: %s", E.edge_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	E.lfd[0] = fd;
	return 0;
}

static int listen_tcp(struct agent *a, char *err, size_t errlen)
{
	char host[128];
	snprintf(host, sizeof host, "%s", E.tcp_listen);
	char *colon = strrchr(host, ':');
	if (!colon) {
		snprintf(err, errlen, "--edge-tcp %s: expected HOST:PORT", E.tcp_listen);
		return -1;
	}
	*colon = 0;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	int rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "--edge-tcp %s: %s", E.tcp_listen, gai_strerror(rc));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		snprintf(err, errlen, "--edge-tcp %s: cannot listen: %s", E.tcp_listen, strerror(errno));
		freeaddrinfo(res);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	freeaddrinfo(res);
	/* port 0: say which port the kernel chose */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char hbuf[NI_MAXHOST], pbuf[NI_MAXSERV];
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof hbuf, pbuf, sizeof pbuf,
		    NI_NUMERICHOST | NI_NUMERICSERV);
	FILE *f = NULL;
	if (gov_run_path(E.tcp_path, sizeof E.tcp_path, a->cfg.resource, "tcp") == 0)
		f = fopen(E.tcp_path, "w");
	if (f) {
		fprintf(f, "%s:%s\n", strcmp(hbuf, "0.0.0.0") ? hbuf : "127.0.0.1", pbuf);
		fclose(f);
	}
	agent_log("info", "edge_tcp", "resource=%s listen=%s:%s", a->cfg.resource, hbuf, pbuf);
	E.lfd[1] = fd;
	return 0;
}

int edge_start(struct agent *a, char *err, size_t errlen)
{
	E.a = a;
	edge_link_spin(a->cfg.spin_ns);
	if (listen_unix(a, err, errlen) < 0)
		return -1;
	if (E.tcp_listen[0] && listen_tcp(a, err, errlen) < 0)
		return -1;
	E.running = 1;
	if (pthread_create(&E.acceptor, NULL, acceptor, a)) {
		snprintf(err, errlen, "cannot start the edge thread");
		return -1;
	}
	return 0;
}

void edge_stop(void)
{
	if (!E.running)
		return;
	__atomic_store_n(&E.running, 0, __ATOMIC_RELEASE);
	pthread_join(E.acceptor, NULL);
	unlink(E.edge_path);
	if (E.tcp_path[0])
		unlink(E.tcp_path);
}

size_t edge_stats_json(char *out, size_t cap)
{
	size_t o = 0;
	pthread_mutex_lock(&E.lock);
	unsigned long long callers = 0, kept = 0;
	for (struct dedup *d = E.dedup; d; d = d->next, callers++)
		kept += sizeof *d + d->rep.body_len;
	o += (size_t)snprintf(out + o, cap - o, ",\"xcall\":{\"served\":%llu,\"resends_answered\":%llu,"
			      "\"resend_cache_callers\":%llu,\"resend_cache_bytes\":%llu,\"edges\":[",
			      (unsigned long long)atomic_load(&E.served),
			      (unsigned long long)atomic_load(&E.dup_answered), callers, kept);
	for (struct edge *e = E.edges; e && o < cap; e = e->next) {
		/* direct calls count as the edge's calls too, and apart */
		uint64_t d[5];
		direct_counts(e, d);
		uint64_t n = atomic_load(&e->calls) + d[D_CALLS];
		uint64_t ns = atomic_load(&e->ns) + d[D_NS];
		o += (size_t)snprintf(out + o, cap - o,
				      "%s{\"to\":\"%s\",\"protocol\":\"%s\",\"calls\":%llu,\"ok\":%llu,"
				      "\"not_run\":%llu,\"unknown\":%llu,\"resent\":%llu,\"switches\":%llu,"
				      "\"in_flight_max\":%u,\"mean_us\":%.1f,\"direct\":%llu,\"direct_granted\":%s,"
				      "\"deferred\":%llu}",
				      e == E.edges ? "" : ",", e->to, gov_xcall_proto_word(e->proto),
				      (unsigned long long)n, (unsigned long long)(atomic_load(&e->ok) + d[D_OK]),
				      (unsigned long long)(atomic_load(&e->not_run) + d[D_NOT_RUN]),
				      (unsigned long long)(atomic_load(&e->unknown) + d[D_UNKNOWN]),
				      (unsigned long long)atomic_load(&e->resent),
				      (unsigned long long)atomic_load(&e->switches),
				      atomic_load(&e->in_flight_max), n ? (double)ns / (double)n / 1000.0 : 0.0,
				      (unsigned long long)d[D_CALLS],
				      e->direct && !e->direct->revoked ? "true" : "false",
				      (unsigned long long)atomic_load(&e->deferred));
	}
	pthread_mutex_unlock(&E.lock);
	if (o < cap)
		o += (size_t)snprintf(out + o, cap - o, "]");
	if (o < cap)
		o += cfs_stats_json(out + o, cap - o);
	if (o < cap)
		o += tasklet_stats_json(out + o, cap - o);
	if (o < cap)
		o += (size_t)snprintf(out + o, cap - o, "}");
	return o < cap ? o : cap;
}
