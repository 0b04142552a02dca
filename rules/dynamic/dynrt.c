/* rules/dynamic/dynrt.c - the host side of every dynamic rule: loading
 * through a mode, running with the fault policy, and the helpers (maps,
 * counters, time, log, events). A rule's maps and counters live with the
 * loaded rule: per agent for placement agent, per process for placement
 * process. Not a mode (bpf.c, wasm.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dynrt.h"

__thread struct gov_dyn_running gov_dyn_cur __attribute__((tls_model("initial-exec")));

/* wasm.c is linked into govagent and govctl only; govrt runs eBPF alone */
extern const struct gov_dyn_mode_ops gov_dyn_wasm_ops __attribute__((weak));

static void log_stderr(const char *line)
{
	fprintf(stderr, "%s\n", line);
}
void (*gov_dyn_log_hook)(const char *line) = log_stderr;

uint64_t gov_dyn_hash(const void *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ULL;
	return h;
}

struct gov_dynrule *gov_dynrule_load(const struct gov_dyn_spec *spec, const void *obj,
				     size_t len, char *err, size_t errlen)
{
	const struct gov_dyn_mode_ops *ops =
		spec->mode == GOV_DYN_EBPF ? &gov_dyn_ebpf_ops :
		spec->mode == GOV_DYN_WASM && &gov_dyn_wasm_ops ? &gov_dyn_wasm_ops : NULL;
	if (!ops || !ops->load) {
		snprintf(err, errlen, "rule %s: mode %u cannot run here", spec->name, spec->mode);
		return NULL;
	}
	struct gov_dynrule *r = aligned_alloc(GOV_DYN_LINE, sizeof *r);
	if (r)
		memset(r, 0, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "rule %s: out of memory", spec->name);
		return NULL;
	}
	r->spec = *spec;
	r->spec.name[sizeof r->spec.name - 1] = 0;
	r->ops = ops;
	r->hash = gov_dyn_hash(obj, len);
	for (int i = 0; i < GOV_DYN_MAPS; i++)
		atomic_flag_clear(&r->maps[i].lock);
	/* a mode may look at the rule while loading; the rule the thread was
	 * running, if any (a load from a signal handler's call that
	 * reconnected), is put back */
	struct gov_dynrule *outer = gov_dyn_cur.rule;
	gov_dyn_cur.rule = r;
	r->impl = ops->load(obj, len, &r->spec, err, errlen);
	gov_dyn_cur.rule = outer;
	if (!r->impl) {
		free(r);
		return NULL;
	}
	return r;
}

void gov_dynrule_free(struct gov_dynrule *r)
{
	if (!r)
		return;
	r->ops->destroy(r->impl);
	for (int i = 0; i < GOV_DYN_MAPS; i++)
		free(r->maps[i].slot);
	free(r);
}

static void logf_rule(const struct gov_dynrule *r, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logf_rule(const struct gov_dynrule *r, const char *event, const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof line, "event=%s rule=%s ", event, r->spec.name);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	gov_dyn_log_hook(line);
}

static int fail_outcome(const struct gov_dynrule *r, struct gov_dyn_ctx *ctx)
{
	ctx->err = r->spec.fail_err;
	ctx->value = r->spec.fail_value;
	return r->spec.fail_action ? r->spec.fail_action : GOV_DYN_NATIVE;
}

int gov_dynrule_fault(struct gov_dynrule *r, struct gov_dyn_ctx *ctx, uint64_t a,
		      const struct gov_dyn_running *done)
{
	unsigned long long n = atomic_fetch_add(&r->faults, 1) + 1;
	const char *why = done->fault ? done->why : a == GOV_DYN_FAULT ? "trapped or faulted"
							       : "returned no action";
	logf_rule(r, "rule_fault", "faults=%llu why=\"%s\" result=%llu", n, why,
		  (unsigned long long)a);
	if (r->spec.max_faults && n >= r->spec.max_faults) {
		atomic_store_explicit(&r->kept, NULL, memory_order_relaxed);
		if (!atomic_exchange(&r->disabled, 1))
			logf_rule(r, "rule_disabled", "faults=%llu max_faults=%u", n, r->spec.max_faults);
	}
	return fail_outcome(r, ctx);
}

int gov_dynrule_run_slow(struct gov_dynrule *r, struct gov_dyn_ctx *ctx)
{
	if (atomic_load_explicit(&r->disabled, memory_order_relaxed))
		return fail_outcome(r, ctx);
	/* rules do not nest (helpers never dispatch): no need to save it */
	struct gov_dyn_running *cur = &gov_dyn_cur;
	cur->rule = r;
	cur->ctx = ctx;
	cur->fault = 0;
	uint64_t a = r->fast ? r->fast(ctx) : r->ops->run(r, ctx);
	struct gov_dyn_running done = *cur;
	cur->rule = NULL;
	atomic_store_explicit(&r->runs, atomic_load_explicit(&r->runs, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (__builtin_expect(a != GOV_DYN_FAULT && a < GOV_DYN_NACTIONS && !done.fault, 1))
		return (int)a;
	return gov_dynrule_fault(r, ctx, a, &done);
}

/* ---- helpers ---- */

static int bad_arg(const char *why)
{
	gov_dyn_cur.fault = 1;
	gov_dyn_cur.why = why;
	return -1;
}

static struct gov_dyn_map *map_of(uint64_t map)
{
	struct gov_dynrule *r = gov_dyn_cur.rule;
	if (!r || map >= GOV_DYN_MAPS) {
		bad_arg("map number out of range (0..7)");
		return NULL;
	}
	struct gov_dyn_map *m = &r->maps[map];
	while (atomic_flag_test_and_set_explicit(&m->lock, memory_order_acquire))
		__builtin_ia32_pause();
	if (!m->slot && !(m->slot = calloc(GOV_DYN_MAP_CAP, sizeof *m->slot))) {
		atomic_flag_clear_explicit(&m->lock, memory_order_release);
		bad_arg("out of memory for a map");
		return NULL;
	}
	return m;
}

static void map_unlock(struct gov_dyn_map *m)
{
	atomic_flag_clear_explicit(&m->lock, memory_order_release);
}

/* Linear probing; a deleted entry keeps `full` so probes go on past it
 * (marked by value of a tombstone key bit in full = 2). */
static unsigned find(struct gov_dyn_map *m, uint64_t key, int *found)
{
	unsigned i = (unsigned)((key * 0x9e3779b97f4a7c15ULL) >> 54) % GOV_DYN_MAP_CAP;
	unsigned free_at = GOV_DYN_MAP_CAP;
	for (unsigned n = 0; n < GOV_DYN_MAP_CAP; n++, i = (i + 1) % GOV_DYN_MAP_CAP) {
		if (m->slot[i].full == 1 && m->slot[i].key == key) {
			*found = 1;
			return i;
		}
		if (m->slot[i].full != 1 && free_at == GOV_DYN_MAP_CAP)
			free_at = i;
		if (m->slot[i].full == 0)
			break;
	}
	*found = 0;
	return free_at;
}

uint64_t gov_dynh_map_lookup(uint64_t map, uint64_t key, uint64_t dflt)
{
	struct gov_dyn_map *m = map_of(map);
	if (!m)
		return 0;
	int found;
	unsigned i = find(m, key, &found);
	uint64_t v = found ? m->slot[i].value : dflt;
	map_unlock(m);
	return v;
}

uint64_t gov_dynh_map_update(uint64_t map, uint64_t key, uint64_t value)
{
	struct gov_dyn_map *m = map_of(map);
	if (!m)
		return (uint64_t)-1;
	int found;
	unsigned i = find(m, key, &found);
	uint64_t r = 0;
	if (i == GOV_DYN_MAP_CAP) {
		r = (uint64_t)-1;
	} else {
		if (!found)
			m->used++;
		m->slot[i].key = key;
		m->slot[i].value = value;
		m->slot[i].full = 1;
	}
	map_unlock(m);
	return r;
}

uint64_t gov_dynh_map_delete(uint64_t map, uint64_t key)
{
	struct gov_dyn_map *m = map_of(map);
	if (!m)
		return (uint64_t)-1;
	int found;
	unsigned i = find(m, key, &found);
	if (found) {
		m->slot[i].full = 2;
		m->used--;
	}
	map_unlock(m);
	return found ? 0 : (uint64_t)-1;
}

uint64_t gov_dynh_counter_add(uint64_t counter, uint64_t delta)
{
	struct gov_dynrule *r = gov_dyn_cur.rule;
	if (!r || counter >= GOV_DYN_COUNTERS)
		return (uint64_t)bad_arg("counter number out of range (0..15)");
	return atomic_fetch_add_explicit(&r->counters[counter], delta, memory_order_relaxed) + delta;
}

uint64_t gov_dynh_time_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t gov_dynh_log(uint64_t code, uint64_t value)
{
	struct gov_dynrule *r = gov_dyn_cur.rule;
	if (!r)
		return (uint64_t)bad_arg("log outside a rule");
	logf_rule(r, "rule_log", "code=%llu value=%llu", (unsigned long long)code,
		  (unsigned long long)value);
	return 0;
}

uint64_t gov_dynh_event(uint64_t a, uint64_t b)
{
	struct gov_dynrule *r = gov_dyn_cur.rule;
	if (!r)
		return (uint64_t)bad_arg("event outside a rule");
	unsigned long long i = atomic_fetch_add(&r->event_head, 1);
	struct gov_dyn_event *e = &r->events[i % GOV_DYN_EVENTS];
	e->time_ns = gov_dynh_time_ns();
	e->site_id = gov_dyn_cur.ctx ? gov_dyn_cur.ctx->site_id : 0;
	e->a = a;
	e->b = b;
	return i;
}

size_t gov_dynrule_json(const struct gov_dynrule *r, char *buf, size_t cap)
{
	size_t o = 0;
#define PUT(...) do { if (o < cap) o += (size_t)snprintf(buf + o, cap - o, __VA_ARGS__); } while (0)
	PUT("{\"name\":\"%s\",\"mode\":\"%s\",\"placement\":\"%s\",\"runs\":%llu,\"faults\":%llu,"
	    "\"disabled\":%s,\"counters\":[", r->spec.name, r->spec.mode == GOV_DYN_WASM ? "wasm" : "ebpf",
	    r->spec.placement == GOV_DYN_IN_PROCESS ? "process" : "agent",
	    (unsigned long long)atomic_load(&r->runs), (unsigned long long)atomic_load(&r->faults),
	    atomic_load(&r->disabled) ? "true" : "false");
	for (int i = 0; i < GOV_DYN_COUNTERS; i++)
		PUT("%s%llu", i ? "," : "", (unsigned long long)atomic_load(&r->counters[i]));
	PUT("],\"events\":[");
	unsigned long long head = atomic_load(&r->event_head);
	unsigned long long from = head > GOV_DYN_EVENTS ? head - GOV_DYN_EVENTS : 0;
	for (unsigned long long i = from; i < head; i++) {
		const struct gov_dyn_event *e = &r->events[i % GOV_DYN_EVENTS];
		PUT("%s{\"seq\":%llu,\"time_ns\":%llu,\"site_id\":\"%016llx\",\"a\":%llu,\"b\":%llu}",
		    i > from ? "," : "", i, (unsigned long long)e->time_ns,
		    (unsigned long long)e->site_id, (unsigned long long)e->a, (unsigned long long)e->b);
	}
	PUT("]}");
#undef PUT
	return o < cap ? o : cap - 1;
}
