/* runtime/agent/tasklet.c - the tasklet rule: deferred callbacks a driver
 * registers and its agent runs, one at a time per tasklet, different
 * tasklets at the same time.
 *
 * A governed call of a function that the rules list under `tasklets:`
 * reaches the agent as a forward (docs/tasklet.md); edge.c hands its frame
 * here and answers the caller at once with 0. Each tasklet (by name) has a
 * FIFO queue and one worker thread: the worker runs the queued calls in
 * order, each through a serving process of this resource (edge_run_local,
 * the generic invocation of docs/xcall.md), so a tasklet never runs twice
 * at once; workers of different tasklets run side by side on different
 * serving processes when there are several. A call that fails (no serving
 * process, not exported, died) is logged and counted, not retried: a
 * tasklet runs at most once per scheduling. A tasklet's queue is bounded
 * (GOV_TASKLET_QUEUE_MAX in the agent's environment, default 4096 calls):
 * a scheduling that finds it full is refused with EAGAIN and counted.
 * An agent told to stop first drains the queues (tasklet_drain): it
 * refuses new schedulings and lets the workers finish what is queued,
 * for at most GOV_TASKLET_DRAIN_MS (default 2000 ms, under the 5 s
 * govctl agent stop waits); what is still queued then is logged as
 * dropped, per tasklet, never lost silently.
 *
 * A driver may also schedule by name with govrt_tasklet_schedule: its
 * request (GOV_TASKLET_CALLEE, gov/wire.h) is answered by tasklet_request,
 * which makes the call's frame and queues it the same way; and a dynamic
 * rule may answer DEFER (gov/dynrule.h): tasklet_defer queues the call's
 * own frame on the tasklet the rule names, or, for a function another
 * resource exports, has edge.c send it to that resource's agent (DEFER,
 * gov/xcall.h), whose tasklet_forwarded queues it there. A plain CALL
 * forwarded by an agent that does not read the tasklets: entry (it names
 * resource: this one) is queued here too (tasklet_called); as this agent
 * then cannot let direct grants pass its queues, edge.c asks
 * tasklet_listed before it gives one.
 *
 * govctl tasklet flush|disable|enable reaches tasklet_control (main.c's
 * control HELLO): a flush drops what is queued (counted as dropped), a
 * disabled tasklet refuses schedulings with ECANCELED; govctl also keeps
 * a disable in the rule store, which main.c follows (tasklet_set_disabled),
 * so it holds across the agent's restarts until enable. The queue limit and
 * the drain time come from the environment, checked at start
 * (tasklet_config): a bad value stops the agent, never a silent default.
 *
 * Not here: which functions are tasklets (rules, edge.c) and the running
 * itself (edge.c, runtime/invoke.c). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "agent.h"
#include "gov/dynrule.h"
#include "gov/typestr.h"
#include "gov/wire.h"
#include "internal.h"
#include "tasklet.h"
#include "../xcall_io.h"

struct item {
	struct item *next;
	uint32_t len;
	unsigned char frame[];
};

struct tasklet {
	char name[GOV_NAME_MAX];
	struct item *head, *tail;
	unsigned long long scheduled, ran, failed, queued, refused, dropped;
	int running;                /* its worker is in a call */
	int disabled;               /* govctl tasklet disable: refuses schedulings */
	pthread_cond_t more;
	struct tasklet *next;
};

static struct {
	pthread_mutex_t lock;
	struct tasklet *list;
	unsigned long long next_id;
	int stopping;               /* tasklet_drain began: no new schedulings */
	pthread_cond_t progress;    /* a worker finished a call (for the drain) */
} T = { .lock = PTHREAD_MUTEX_INITIALIZER, .progress = PTHREAD_COND_INITIALIZER };

struct worker_arg {
	struct agent *a;
	struct tasklet *t;
};

/* Takes the next call of t, waiting for one; T.lock held. */
static struct item *next_item(struct tasklet *t)
{
	while (!t->head)
		pthread_cond_wait(&t->more, &T.lock);
	struct item *it = t->head;
	t->head = it->next;
	if (!t->head)
		t->tail = NULL;
	t->queued--;
	return it;
}

static void *worker(void *p)
{
	struct worker_arg wa = *(struct worker_arg *)p;
	free(p);
	struct tasklet *t = wa.t;
	void *out = malloc(GOV_XCALL_BODY_MAX);
	for (;;) {
		pthread_mutex_lock(&T.lock);
		struct item *it = next_item(t);
		uint64_t id = ++T.next_id;
		t->running = 1;
		pthread_mutex_unlock(&T.lock);
		struct gov_xcall_hdr h, rep;
		gov_xcall_init(&h, GOV_XCALL_CALL);
		h.caller_epoch = wa.a->epoch;
		h.req_id = id;
		h.body_len = it->len;
		int st = out ? edge_run_local(wa.a, &h, it->frame, &rep, out) : GOV_XCALL_NOT_RUN;
		pthread_mutex_lock(&T.lock);
		if (st == GOV_XCALL_OK)
			t->ran++;
		else
			t->failed++;
		t->running = 0;
		pthread_cond_broadcast(&T.progress);
		pthread_mutex_unlock(&T.lock);
		if (st != GOV_XCALL_OK)
			agent_log("warning", "tasklet_failed", "resource=%s tasklet=%s function=%s "
				  "error=\"%s\"", wa.a->cfg.resource, t->name,
				  ((const struct gov_wire_req *)it->frame)->callee,
				  out ? rep.text : "out of memory");
		free(it);
	}
	return NULL;
}

/* T.lock held. The tasklet named name, made with its worker if new. */
static struct tasklet *tasklet_get(struct agent *a, const char *name)
{
	struct tasklet *t = T.list;
	while (t && strcmp(t->name, name) != 0)
		t = t->next;
	if (t)
		return t;
	struct worker_arg *wa = malloc(sizeof *wa);
	if (!wa || !(t = calloc(1, sizeof *t))) {
		free(wa);
		return NULL;
	}
	snprintf(t->name, sizeof t->name, "%s", name);
	pthread_cond_init(&t->more, NULL);
	*wa = (struct worker_arg){ a, t };
	pthread_t th;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int r = pthread_create(&th, &at, worker, wa);
	pthread_attr_destroy(&at);
	if (r) {
		free(wa);
		free(t);
		return NULL;
	}
	t->next = T.list;
	T.list = t;
	return t;
}

#define QUEUE_MAX_DEFAULT 4096
#define QUEUE_MAX_MAX 1048576L
#define DRAIN_MS_DEFAULT 2000
#define DRAIN_MS_MAX 600000L

/* Set once by tasklet_config, before any thread reads them. */
static unsigned long long queue_limit = QUEUE_MAX_DEFAULT;
static long drain_limit_ms = DRAIN_MS_DEFAULT;

static unsigned long long queue_max(void)
{
	return queue_limit;
}

/* Reads the variable name as a whole number in min..max into *out (left
 * alone when it is unset); -1 with why otherwise. */
static int env_num(const char *name, long min, long max, const char *unit, long dflt, long *out,
		   char *why, size_t whylen)
{
	const char *v = getenv(name);
	if (!v)
		return 0;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (!errno && *v && !*end && n >= min && n <= max) {
		*out = n;
		return 0;
	}
	snprintf(why, whylen, "%s=\"%.40s\" in the environment: %s (give %ld to %ld %s, or "
		 "unset it for the default %ld)", name, v,
		 errno || !*v || *end ? "not a whole number" : "out of range", min, max, unit, dflt);
	return -1;
}

int tasklet_config(char *why, size_t whylen)
{
	long q = QUEUE_MAX_DEFAULT, d = DRAIN_MS_DEFAULT;
	if (env_num("GOV_TASKLET_QUEUE_MAX", 1, QUEUE_MAX_MAX, "calls", QUEUE_MAX_DEFAULT, &q, why,
		    whylen) < 0 ||
	    env_num("GOV_TASKLET_DRAIN_MS", 0, DRAIN_MS_MAX, "milliseconds", DRAIN_MS_DEFAULT, &d, why,
		    whylen) < 0)
		return -1;
	queue_limit = (unsigned long long)q;
	drain_limit_ms = d;
	return 0;
}

int tasklet_schedule(struct agent *a, const char *name, const void *frame, uint32_t len)
{
	struct item *it = malloc(sizeof *it + len);
	if (!it)
		return -ENOMEM;
	it->next = NULL;
	it->len = len;
	memcpy(it->frame, frame, len);
	pthread_mutex_lock(&T.lock);
	if (T.stopping) {
		pthread_mutex_unlock(&T.lock);
		free(it);
		return -ESHUTDOWN;
	}
	struct tasklet *t = tasklet_get(a, name);
	if (!t) {
		pthread_mutex_unlock(&T.lock);
		free(it);
		return -ENOMEM;
	}
	if (t->disabled || t->queued >= queue_max()) {
		t->refused++;
		int e = t->disabled ? ECANCELED : EAGAIN;
		pthread_mutex_unlock(&T.lock);
		free(it);
		return -e;
	}
	if (t->tail)
		t->tail->next = it;
	else
		t->head = it;
	t->tail = it;
	t->scheduled++;
	t->queued++;
	pthread_cond_signal(&t->more);
	pthread_mutex_unlock(&T.lock);
	return 0;
}

static long drain_ms(void)
{
	return drain_limit_ms;
}

/* T.lock held: frees what t has queued (its worker takes no more of it),
 * counted as dropped. */
static void drop_queued(struct tasklet *t)
{
	for (struct item *it = t->head, *next; it; it = next) {
		next = it->next;
		free(it);
	}
	t->head = t->tail = NULL;
	t->dropped += t->queued;
	t->queued = 0;
}

/* T.lock held: 1 while some tasklet has a call queued or running. */
static int any_pending(void)
{
	for (struct tasklet *t = T.list; t; t = t->next)
		if (t->head || t->running)
			return 1;
	return 0;
}

void tasklet_drain(struct agent *a)
{
	pthread_mutex_lock(&T.lock);
	T.stopping = 1;
	if (!any_pending()) {
		pthread_mutex_unlock(&T.lock);
		return;
	}
	long ms = drain_ms();
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	int timed_out = 0;
	while (any_pending() && !timed_out)
		timed_out = pthread_cond_timedwait(&T.progress, &T.lock, &until) == ETIMEDOUT;
	unsigned long long dropped = 0;
	for (struct tasklet *t = T.list; t; t = t->next) {
		if (!t->head)
			continue;
		agent_log("warning", "tasklet_dropped", "resource=%s tasklet=%s dropped=%llu "
			  "error=\"the agent stopped before they ran (GOV_TASKLET_DRAIN_MS=%ld)\"",
			  a->cfg.resource, t->name, t->queued, ms);
		dropped += t->queued;
		drop_queued(t);
	}
	agent_log("info", "tasklets_drained", "resource=%s dropped=%llu", a->cfg.resource, dropped);
	pthread_mutex_unlock(&T.lock);
}

size_t tasklet_stats_json(char *out, size_t cap)
{
	size_t o = 0;
	pthread_mutex_lock(&T.lock);
	o += (size_t)snprintf(out + o, cap - o, ",\"tasklets\":[");
	for (struct tasklet *t = T.list; t && o < cap; t = t->next)
		o += (size_t)snprintf(out + o, cap - o,
				      "%s{\"name\":\"%s\",\"scheduled\":%llu,\"ran\":%llu,"
				      "\"failed\":%llu,\"queued\":%llu,\"refused\":%llu,"
				      "\"dropped\":%llu,\"disabled\":%s}",
				      t == T.list ? "" : ",", t->name, t->scheduled, t->ran, t->failed,
				      t->queued, t->refused, t->dropped, t->disabled ? "true" : "false");
	pthread_mutex_unlock(&T.lock);
	if (o < cap)
		o += (size_t)snprintf(out + o, cap - o, "]");
	return o < cap ? o : cap;
}

int tasklet_is_request(const struct gov_wire_call *call)
{
	return call->hdr->kind == GOV_SITE_CALL &&
	       strcmp(call->hdr->callee, GOV_TASKLET_CALLEE) == 0;
}

/* 1 if the rules say this agent's resource exports fn (it is the only
 * resource whose serving processes the queued call can reach). */
static int exported_here(struct agent *a, const char *fn)
{
	const struct edge_rules *er = &a->rules.edges;
	for (unsigned i = 0; i < er->nexporters; i++)
		if (strcmp(er->exporters[i].fn, fn) == 0 &&
		    strcmp(er->exporters[i].to, a->cfg.resource) == 0)
			return 1;
	return 0;
}

/* The arguments, checked again here: the request comes from another
 * process. 0, or the errno to answer. */
static int request_args(const struct gov_wire_call *call, const char **name, const char **fn,
			long *arg)
{
	if (strcmp(call->hdr->types, GOV_TASKLET_TYPES) != 0)
		return EINVAL;
	*name = call->data[0];
	*fn = call->data[1];
	*arg = (long)call->value[2];
	if (!gov_resource_name_ok(*name) || !(*fn)[0] || strlen(*fn) >= GOV_NAME_MAX)
		return EINVAL;
	return 0;
}

void tasklet_request(struct agent *a, const struct gov_wire_call *call, uint8_t *action,
		     int32_t *err, int64_t *value)
{
	const char *name, *fn;
	long arg;
	int e = request_args(call, &name, &fn, &arg);
	if (!e && !exported_here(a, fn))
		e = ENOENT;
	if (!e) {
		/* the frame a governed site of `long fn(long)` would send */
		struct gov_site site = { .kind = GOV_SITE_CALL, .nparams = 1, .sysno = -1,
					 .callee = fn, .types = "ll" };
		struct gov_call c = { { (uint64_t)arg }, 0 };
		unsigned char frame[sizeof(struct gov_wire_req) + sizeof(struct gov_wire_arg)];
		char why[160];
		long len = gov_wire_encode_req(frame, sizeof frame, call->hdr->seq, &site, &c, why,
					       sizeof why);
		e = len < 0 ? EINVAL : -tasklet_schedule(a, name, frame, (uint32_t)len);
	}
	if (e && e != EAGAIN && e != ECANCELED) /* counted as refused, not logged each */
		agent_log("warning", "tasklet_refused", "resource=%s tasklet=%s function=%s "
			  "error=\"%s\"", a->cfg.resource, e == EINVAL ? "?" : name,
			  e == EINVAL ? "?" : fn, e == ENOENT ? "this resource does not export it "
			  "(declare it in the rules' resources: exports:)" : strerror(e));
	*action = GOV_ACT_EMULATE;
	*err = 0;
	*value = e;
}

/* 1 if a call's type string asks for something back besides the value
 * (an out-buffer `o`, a struct returned), which a queued call cannot give:
 * scheduled as a tasklet, such a call is refused with EINVAL, nothing
 * queued (tasklet_defer, tasklet_called). */
static int wants_result(const char *types)
{
	struct gov_typestr ts;
	const char *why;
	size_t where;
	if (gov_typestr_parse(types, &ts, &why, &where) < 0)
		return 0; /* run_on_server's decoding says what is wrong with it */
	if (ts.top[0] == GOV_T_STRUCT)
		return 1;
	return strchr(ts.top + 1, GOV_T_OUTBUF) != NULL;
}

/* Queues a deferred call here, on the tasklet whose id the rule gave. */
static int defer_local(struct agent *a, uint32_t id, const void *frame, uint32_t len)
{
	const struct edge_rules *er = &a->rules.edges;
	char name[GOV_NAME_MAX];
	snprintf(name, sizeof name, "tasklet-%08x", id);
	for (unsigned i = 0; i < er->ntasklets; i++)
		if (gov_dyn_id(er->tasklets[i].name) == id) {
			snprintf(name, sizeof name, "%s", er->tasklets[i].name);
			break;
		}
	return -tasklet_schedule(a, name, frame, len);
}

int tasklet_defer(struct agent *a, uint32_t id, const void *frame, uint32_t len)
{
	const struct gov_wire_req *req = frame;
	if (wants_result(req->types)) { /* refused: nothing queued */
		agent_log("warning", "tasklet_refused", "resource=%s tasklet=%08x function=%s "
			  "error=\"its type string %s asks for out-buffers or a struct back, which "
			  "a queued call cannot give\"", a->cfg.resource, id, req->callee, req->types);
		return EINVAL;
	}
	/* a function of another resource runs on its serving processes:
	 * its agent queues it (edge.c, DEFER) */
	const char *to = edge_callee(&a->rules.edges, req->callee);
	if (to && strcmp(to, a->cfg.resource) != 0)
		return edge_defer(a, to, id, frame, len);
	return defer_local(a, id, frame, len);
}

int tasklet_forwarded(struct agent *a, const char *from, uint32_t id, const void *frame,
		      uint32_t len, char *why, size_t whylen)
{
	struct gov_wire_call call;
	if (gov_wire_decode_req(frame, len, &call, why, whylen) < 0)
		return EBADMSG;
	const char *fn = call.hdr->callee;
	int e = exported_here(a, fn) ? defer_local(a, id, frame, len) : ENOSYS;
	if (e == ENOSYS)
		snprintf(why, whylen, "%s does not export %s", a->cfg.resource, fn);
	else if (e)
		snprintf(why, whylen, "%s", e == EAGAIN ? "the tasklet's queue is full" :
			 e == ESHUTDOWN ? "the agent is stopping" :
			 e == ECANCELED ? "the tasklet is disabled (govctl tasklet enable)" : strerror(e));
	if (e && e != EAGAIN && e != ECANCELED)
		agent_log("warning", "tasklet_refused", "resource=%s from=%s tasklet=%08x function=%s "
			  "error=\"%s\"", a->cfg.resource, from, id, fn, why);
	return e;
}

/* The tasklet this agent's rules name for fn when its resource exports fn
 * (a tasklets: entry with no resource:, or this resource's), or NULL. */
static const char *listed_here(struct agent *a, const char *fn)
{
	const struct edge_rules *er = &a->rules.edges;
	for (unsigned i = 0; i < er->ntasklets; i++)
		if (strcmp(er->tasklets[i].fn, fn) == 0)
			return exported_here(a, fn) ? er->tasklets[i].name : NULL;
	return NULL;
}

int tasklet_listed(struct agent *a)
{
	int listed = 0;
	pthread_rwlock_rdlock(&a->rules_lock);
	const struct edge_rules *er = &a->rules.edges;
	for (unsigned i = 0; i < er->ntasklets && !listed; i++)
		listed = exported_here(a, er->tasklets[i].fn);
	pthread_rwlock_unlock(&a->rules_lock);
	return listed;
}

int tasklet_called(struct agent *a, const char *from, const struct gov_xcall_hdr *h,
		   const void *body, struct gov_xcall_hdr *rep)
{
	struct gov_wire_call call;
	char why[256] = "", name[GOV_NAME_MAX] = "";
	pthread_rwlock_rdlock(&a->rules_lock);
	/* most resources have no tasklets: their calls skip the decoding */
	const char *listed = NULL;
	if (a->rules.edges.ntasklets &&
	    gov_wire_decode_req(body, h->body_len, &call, why, sizeof why) == 0)
		listed = listed_here(a, call.hdr->callee);
	if (listed)
		snprintf(name, sizeof name, "%s", listed);
	pthread_rwlock_unlock(&a->rules_lock);
	if (!name[0])
		return 0; /* not a tasklet here: it runs now (a frame that does not decode too) */
	const char *fn = call.hdr->callee;
	int e = wants_result(call.hdr->types) ? EINVAL
					      : -tasklet_schedule(a, name, body, h->body_len);
	if (e == EINVAL)
		snprintf(why, sizeof why, "%s of %s is tasklet %s: its type string %s asks for "
			 "out-buffers or a struct back, which a queued call cannot give", fn,
			 a->cfg.resource, name, call.hdr->types);
	else if (e)
		snprintf(why, sizeof why, "%s", e == EAGAIN ? "the tasklet's queue is full" :
			 e == ESHUTDOWN ? "the agent is stopping" :
			 e == ECANCELED ? "the tasklet is disabled (govctl tasklet enable)" : strerror(e));
	if (e && e != EAGAIN && e != ECANCELED) /* counted as refused, not logged each */
		agent_log("warning", "tasklet_refused", "resource=%s from=%s tasklet=%s function=%s "
			  "error=\"%s\"", a->cfg.resource, from, name, fn, why);
	gov_xcall_init(rep, GOV_XCALL_RESULT);
	rep->caller_epoch = h->caller_epoch;
	rep->req_id = h->req_id;
	rep->status = e ? GOV_XCALL_NOT_RUN : GOV_XCALL_OK;
	rep->err = e;
	rep->value = e ? -1 : 0;
	snprintf(rep->text, sizeof rep->text, "%s", why);
	return 1;
}

int tasklet_set_disabled(struct agent *a, const char *name, int disabled)
{
	if (!gov_resource_name_ok(name))
		return -EINVAL;
	pthread_mutex_lock(&T.lock);
	struct tasklet *t = T.list;
	while (t && strcmp(t->name, name) != 0)
		t = t->next;
	if (!t && disabled)
		t = tasklet_get(a, name); /* disabled before its first scheduling */
	if (t)
		t->disabled = disabled;
	pthread_mutex_unlock(&T.lock);
	return t || !disabled ? 0 : -ENOMEM;
}

/* T.lock held: 1 if name is a tasklet this agent knows of: one with a
 * queue, or one its resource's tasklets: name (rules_lock held). */
static int known(struct agent *a, const char *name, struct tasklet **out)
{
	struct tasklet *t = T.list;
	while (t && strcmp(t->name, name) != 0)
		t = t->next;
	*out = t;
	const struct edge_rules *er = &a->rules.edges;
	for (unsigned i = 0; !t && i < er->ntasklets; i++)
		if (strcmp(er->tasklets[i].name, name) == 0)
			return 1;
	return t != NULL;
}

int tasklet_control(struct agent *a, const char *verb, const char *name, char *out, size_t cap)
{
	int flush = strcmp(verb, "flush") == 0, disable = strcmp(verb, "disable") == 0;
	if (!flush && !disable && strcmp(verb, "enable") != 0) {
		snprintf(out, cap, "unknown tasklet command '%s' (flush, disable, enable)", verb);
		return EINVAL;
	}
	if (!gov_resource_name_ok(name)) {
		snprintf(out, cap, "'%s' is not a tasklet name (1-63 of [A-Za-z0-9._-])", name);
		return EINVAL;
	}
	pthread_rwlock_rdlock(&a->rules_lock);
	pthread_mutex_lock(&T.lock);
	struct tasklet *t;
	int e = 0;
	if (!known(a, name, &t)) {
		e = ENOENT;
		snprintf(out, cap, "the agent of %s has no tasklet %s (none scheduled, none in its "
			 "tasklets: rules)", a->cfg.resource, name);
	} else if (!t && !flush && !(t = tasklet_get(a, name))) {
		e = ENOMEM; /* disabled before its first scheduling: it needs its queue */
		snprintf(out, cap, "out of memory");
	}
	unsigned long long dropped = 0;
	int was_disabled = t && t->disabled;
	if (!e && flush && t) {
		dropped = t->queued;
		drop_queued(t);
	} else if (!e && !flush) {
		t->disabled = disable;
	}
	pthread_mutex_unlock(&T.lock);
	pthread_rwlock_unlock(&a->rules_lock);
	if (e)
		return e;
	if (flush)
		agent_log("warning", "tasklet_flushed", "resource=%s tasklet=%s dropped=%llu "
			  "error=\"flushed by govctl tasklet flush\"", a->cfg.resource, name, dropped);
	else
		agent_log("info", disable ? "tasklet_disabled" : "tasklet_enabled",
			  "resource=%s tasklet=%s", a->cfg.resource, name);
	snprintf(out, cap, "{\"resource\":\"%s\",\"tasklet\":\"%s\",\"done\":\"%s\","
		 "\"dropped\":%llu,\"was_disabled\":%s,\"store\":\"%s\"}", a->cfg.resource, name,
		 verb, dropped, was_disabled ? "true" : "false",
		 a->cfg.store_url ? a->cfg.store_url : "");
	return 0;
}
