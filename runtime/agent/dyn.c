/* runtime/agent/dyn.c - dynamic rules in govagent: loading the ones
 * routed to it (objects from the store, or built from a rules file),
 * keeping a rule's state across a reload that does not change it, running
 * one on a call (rules/dynamic/dynrt.c does the safe part), and their
 * counts for the statistics. Not the loading of a mode (rules/dynamic/). */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agent.h"
#include "tasklet.h"
#include "../../rules/dynamic/dynrt.h"
#include "../../rules/dynamic/build.h"
#include "../../rules/dynamic/wasm.h"

static void log_line(const char *line)
{
	agent_log("warning", "rule", "%s", line);
}

int agent_dyn_load(struct agent_rules *r, unsigned i, const void *obj, size_t len,
		   struct agent_rules *old)
{
	if (!r->dyn) {
		r->dyn = calloc(r->v.ndyn + 1, sizeof *r->dyn);
		if (!r->dyn)
			return -1;
	}
	gov_dyn_log_hook = log_line;
	struct agent_dyn *d = &r->dyn[i];
	const struct gov_dyn_spec *spec = &r->v.dyn[i].spec;
	uint64_t h = gov_dyn_hash(obj, len);
	d->obj = malloc(len ? len : 1);
	if (!d->obj)
		return -1;
	memcpy(d->obj, obj, len);
	d->len = len;
	for (unsigned k = 0; old && old->dyn && k < old->v.ndyn; k++) {
		struct gov_dynrule *o = old->dyn[k].rule;
		if (o && o->hash == h && memcmp(&o->spec, spec, sizeof *spec) == 0) {
			d->rule = o;
			old->dyn[k].rule = NULL; /* now ours */
			return 0;
		}
	}
	char err[2048];
	d->rule = gov_dynrule_load(spec, obj, len, err, sizeof err);
	if (!d->rule) {
		agent_log("error", "rule_unloadable", "rule=%s error=\"%s\"", spec->name, err);
		return -1;
	}
	agent_log("info", "rule_loaded", "rule=%s mode=%s placement=%s bytes=%zu", spec->name,
		  spec->mode == GOV_DYN_WASM ? "wasm" : "ebpf",
		  spec->placement == GOV_DYN_IN_PROCESS ? "process" : "agent", len);
	return 0;
}

int agent_dyn_load_files(struct agent_rules *r, const char *rules_path, struct agent_rules *old)
{
	char *copy = strdup(rules_path), *dir = copy ? dirname(copy) : ".";
	for (unsigned i = 0; i < r->v.ndyn; i++) {
		const struct gov_verdict_dyn *e = &r->v.dyn[i];
		char path[PATH_MAX + 520], err[2048];
		if (e->path[0] == '/')
			snprintf(path, sizeof path, "%s", e->path);
		else
			snprintf(path, sizeof path, "%s/%s", dir, e->path);
		void *obj;
		size_t len;
		int rc = e->is_source ? gov_dyn_compile(e->spec.mode, path, &obj, &len, err, sizeof err)
				      : gov_dyn_read(path, &obj, &len, err, sizeof err);
		if (rc < 0) {
			agent_log("error", "rule_unloadable", "rule=%s error=\"%s\"", e->spec.name, err);
			if (!r->dyn && !(r->dyn = calloc(r->v.ndyn + 1, sizeof *r->dyn)))
				break;
			continue;
		}
		agent_dyn_load(r, i, obj, len, old);
		free(obj);
	}
	free(copy);
	return 0;
}

void agent_dyn_free(struct agent_rules *r)
{
	for (unsigned i = 0; r->dyn && i < r->v.ndyn; i++) {
		gov_dynrule_free(r->dyn[i].rule);
		free(r->dyn[i].obj);
	}
	free(r->dyn);
	r->dyn = NULL;
}

void agent_dyn_decide(struct agent *a, struct client *c, unsigned i,
		      const struct gov_wire_call *call, uint8_t *action, int32_t *err, int64_t *value,
		      struct agent_dyn_extra *extra)
{
	const struct gov_wire_req *h = call->hdr;
	struct gov_dynrule *r = i < a->rules.v.ndyn && a->rules.dyn ? a->rules.dyn[i].rule : NULL;
	/* a wasm rule's context is built straight in the thread's instance of
	 * it, so the run copies nothing (rules/dynamic/wasm.h); eBPF's, and a
	 * wasm rule's that has no instance, here */
	struct gov_dyn_ctx own, *ctx = &own;
	if (r && r->spec.mode == GOV_DYN_WASM) {
		struct gov_dyn_ctx *buf = gov_wasm_ctx(r);
		if (buf)
			ctx = buf;
	}
	*ctx = (struct gov_dyn_ctx){
		.site_id = h->site_id, .kind = h->kind, .sysno = h->sysno,
		.func_id = gov_dyn_id(h->callee), .nargs = h->nargs,
		.caller_id = gov_dyn_id(a->cfg.resource), .pid = (uint32_t)c->pid,
		.tid = (uint32_t)(h->seq >> 32), .time_ns = gov_now_ns(),
		.entity = (uint64_t)c->pid << 32 | (uint32_t)(h->seq >> 32),
	};
	for (unsigned k = 0; k < h->nargs && k < GOV_DYN_MAX_ARGS; k++)
		ctx->args[k] = call->value[k];
	int act;
	if (r) {
		act = gov_dynrule_run(r, ctx);
	} else {
		/* it did not load: its fail outcome, as for a fault */
		const struct gov_dyn_spec *s = i < a->rules.v.ndyn ? &a->rules.v.dyn[i].spec : NULL;
		act = s ? s->fail_action : GOV_DYN_NATIVE;
		ctx->err = s ? s->fail_err : 0;
		ctx->value = s ? s->fail_value : 0;
	}
	*err = 0;
	*value = 0;
	extra->forward_to = 0;
	extra->nargs = 0;
	switch (act) {
	case GOV_DYN_DENY:
		*action = GOV_ACT_DENY;
		*err = ctx->err > 0 ? ctx->err : 1 /* EPERM */;
		break;
	case GOV_DYN_EMULATE:
		*action = GOV_ACT_EMULATE;
		*value = ctx->value;
		break;
	case GOV_DYN_SCHEDULE:
		/* the program runs it under its cfs queue (docs/cfs.md):
		 * RULE in a reply carries the classification */
		*action = GOV_ACT_RULE;
		*value = (int64_t)ctx->entity;
		*err = (int32_t)gov_cfs_pack(ctx->weight, ctx->slots);
		break;
	case GOV_DYN_DEFER: { /* queued on a tasklet (docs/tasklet.md) */
		int e = tasklet_defer(a, ctx->tasklet, h, (uint32_t)sizeof *h + h->body_len);
		*action = e ? GOV_ACT_DENY : GOV_ACT_EMULATE;
		*err = e;
		*value = e ? -1 : 0;
		break;
	}
	case GOV_DYN_FORWARD: /* serve.c forwards it (edge.c) */
		*action = GOV_ACT_FORWARD;
		extra->forward_to = ctx->forward_to;
		break;
	case GOV_DYN_NATIVE_ARGS: /* the words travel back in the reply (docs/wire.md) */
		*action = GOV_ACT_NATIVE;
		extra->nargs = h->nargs < GOV_DYN_MAX_ARGS ? h->nargs : GOV_DYN_MAX_ARGS;
		memcpy(extra->args, ctx->args, extra->nargs * sizeof *extra->args);
		break;
	default:
		*action = GOV_ACT_NATIVE;
	}
}

static int by_time(const void *x, const void *y)
{
	const struct gov_region_dynevent *a = x, *b = y;
	return a->time_ns < b->time_ns ? -1 : a->time_ns > b->time_ns;
}

void agent_dyn_figures_add(struct gov_region_dynstat *into, const struct gov_region_dynstat *from,
			   int ring)
{
	if (!from->hash || (into->hash && into->hash != from->hash))
		return;
	into->hash = from->hash;
	into->faults += from->faults;
	into->disabled |= from->disabled;
	for (int k = 0; k < GOV_DYN_COUNTERS; k++)
		into->counters[k] += from->counters[k];
	/* both sets of events, then the newest of them */
	enum { N = GOV_REGION_DYN_EVENTS };
	_Static_assert(GOV_REGION_DYN_EVENTS == GOV_DYN_EVENTS, "a process's ring is a rule's");
	struct gov_region_dynevent all[2 * N];
	unsigned have = into->event_head < N ? (unsigned)into->event_head : N, n = have;
	memcpy(all, into->events, have * sizeof *all);
	uint64_t head = from->event_head;
	for (uint64_t e = head > N ? head - N : 0; e < head; e++)
		all[n++] = from->events[ring ? e % N : e - (head > N ? head - N : 0)];
	qsort(all, n, sizeof *all, by_time);
	unsigned keep = n < N ? n : N;
	memcpy(into->events, all + (n - keep), keep * sizeof *all);
	into->event_head += head;
}

void agent_dyn_note_hashes(struct agent *a)
{
	for (unsigned i = 0; i < GOV_REGION_DYN_MAX; i++) {
		const struct gov_dynrule *r =
			a->rules.dyn && i < a->rules.v.ndyn ? a->rules.dyn[i].rule : NULL;
		atomic_store(&a->dyn_hash[i],
			     r && r->spec.placement == GOV_DYN_IN_PROCESS ? r->hash : 0);
	}
}

/* The processes' figures of r (procs: events oldest first) as one rule for
 * gov_dynrule_json: a copy of r with theirs. NULL if out of memory. */
static struct gov_dynrule *with_processes(const struct gov_dynrule *r,
					  const struct gov_region_dynstat *procs)
{
	struct gov_dynrule *v = malloc(sizeof *v);
	if (!v)
		return NULL;
	memcpy(v, r, sizeof *v);
	atomic_store(&v->runs, 0);
	atomic_store(&v->faults, procs->faults);
	atomic_store(&v->disabled, procs->disabled != 0);
	for (int k = 0; k < GOV_DYN_COUNTERS; k++)
		atomic_store(&v->counters[k], procs->counters[k]);
	/* gov_dynrule_json reads the ring from head - EVENTS on */
	uint64_t head = procs->event_head;
	unsigned keep = head < GOV_REGION_DYN_EVENTS ? (unsigned)head : GOV_REGION_DYN_EVENTS;
	for (unsigned j = 0; j < keep; j++) {
		const struct gov_region_dynevent *ev = &procs->events[j];
		v->events[(head - keep + j) % GOV_DYN_EVENTS] =
			(struct gov_dyn_event){ ev->time_ns, ev->site_id, ev->a, ev->b };
	}
	atomic_store(&v->event_head, head);
	return v;
}

size_t agent_dyn_json(struct agent *a, char *buf, size_t cap, const struct gov_region_dynstat *procs)
{
	size_t o = (size_t)snprintf(buf, cap, "\"rules\":[");
	int first = 1;
	for (unsigned i = 0; a->rules.dyn && i < a->rules.v.ndyn && o + 2 < cap; i++) {
		struct gov_dynrule *r = a->rules.dyn[i].rule;
		if (!r)
			continue;
		if (!first)
			buf[o++] = ',';
		first = 0;
		struct gov_dynrule *v = NULL;
		if (procs && i < GOV_REGION_DYN_MAX && procs[i].hash == r->hash &&
		    r->spec.placement == GOV_DYN_IN_PROCESS)
			v = with_processes(r, &procs[i]);
		o += gov_dynrule_json(v ? v : r, buf + o, cap - o);
		free(v);
	}
	if (o + 2 < cap)
		o += (size_t)snprintf(buf + o, cap - o, "]");
	return o;
}
