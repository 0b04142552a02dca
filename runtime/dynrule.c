/* runtime/dynrule.c - dynamic rules inside the program (placement
 * process, eBPF): taking the objects the agent put into the region with the
 * decision table, loading them (librte_bpf is opened only then, see
 * rules/dynamic/bpf.c), and handing dispatch.c the rule of a decision.
 * A rule whose object did not change keeps its state; a replaced one is
 * never freed, because a thread may still be running it (rules change
 * rarely). Not the running itself (dispatch.c) nor the fault policy
 * (rules/dynamic/dynrt.c). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "govrt_private.h"
#include "../rules/dynamic/dynrt.h"

_Atomic(struct gov_dynrule *) govrt_dyn_rules[GOV_REGION_DYN_MAX];
uint32_t govrt_dyn_caller_id;
#define rules govrt_dyn_rules

static void warn_line(const char *line)
{
	govrt_warn("%s", line);
}

/* The bytes of the area in use: the directory, and the objects of the
 * entries it counts (an entry whose bounds are bad adds nothing; apply
 * refuses it). The area is 512 KiB and mostly empty: copying all of it was
 * most of what applying a table cost. */
static uint32_t area_used(const struct gov_region_dyn *d, uint32_t cap)
{
	uint32_t used = sizeof *d;
	uint32_t n = d->count < GOV_REGION_DYN_MAX ? d->count : GOV_REGION_DYN_MAX;
	for (uint32_t i = 0; i < n; i++) {
		const struct gov_region_dyn_entry *e = &d->ent[i];
		if (e->len && e->off >= sizeof *d && e->off <= cap && e->len <= cap - e->off &&
		    e->off + e->len > used)
			used = e->off + e->len;
	}
	return used;
}

/* Copies the area's used bytes (*len of them) under the table's sequence
 * lock. */
static struct gov_region_dyn *read_area(struct gov_region_hdr *h, uint32_t *len)
{
	const char *area = (const char *)h + h->dyn_off;
	struct gov_region_dyn *copy = NULL;
	for (;;) {
		uint32_t seq = __atomic_load_n(&h->table_seq, __ATOMIC_ACQUIRE);
		if (seq & 1) {
			sched_yield();
			continue;
		}
		/* the directory first, which says how much more to copy */
		struct gov_region_dyn dir;
		memcpy(&dir, area, sizeof dir);
		uint32_t used = area_used(&dir, h->dyn_cap);
		struct gov_region_dyn *tmp = realloc(copy, used);
		if (!tmp) {
			free(copy);
			return NULL;
		}
		copy = tmp;
		memcpy(copy, &dir, sizeof dir);
		memcpy((char *)copy + sizeof dir, area + sizeof dir, used - sizeof dir);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&h->table_seq, __ATOMIC_RELAXED) == seq) {
			*len = used;
			return copy;
		}
	}
}

void govrt_dyn_apply(struct gov_region_hdr *h)
{
	uint32_t len;
	struct gov_region_dyn *d = read_area(h, &len);
	if (!d) {
		govrt_warn("out of memory reading the dynamic rules; keeping the old ones");
		return;
	}
	gov_dyn_log_hook = warn_line;
	govrt_dyn_caller_id = gov_dyn_id(govrt.cfg.resource);
	uint32_t n = d->count < GOV_REGION_DYN_MAX ? d->count : GOV_REGION_DYN_MAX;
	for (uint32_t i = 0; i < GOV_REGION_DYN_MAX; i++) {
		struct gov_region_dyn_entry *e = &d->ent[i];
		struct gov_dynrule *have = atomic_load(&rules[i]), *want = NULL;
		e->spec.name[sizeof e->spec.name - 1] = 0;
		int mine = i < n && e->len && e->off >= sizeof *d && e->off <= len &&
			   e->len <= len - e->off && e->spec.mode == GOV_DYN_EBPF;
		if (mine && have && have->hash == e->hash && memcmp(&have->spec, &e->spec, sizeof e->spec) == 0)
			continue;
		if (mine) {
			char err[1024];
			want = gov_dynrule_load(&e->spec, (char *)d + e->off, e->len, err, sizeof err);
			if (!want)
				govrt_warn("dynamic rule %s stays with the agent: %s", e->spec.name, err);
			else
				govrt_debug("dynamic rule %s runs in this process", e->spec.name);
		}
		atomic_store_explicit(&rules[i], want, memory_order_release);
	}
	free(d);
}

/* The figures a region gets are what the rules counted since it came
 * (base): the agent kept what an earlier connection's region said, and a
 * forked child's parent reports what the child inherited. */
static struct {
	const struct gov_dynrule *rule; /* whose figures base holds; NULL: none */
	uint64_t faults, head, counters[GOV_DYN_COUNTERS];
} base[GOV_REGION_DYN_MAX];
static pthread_mutex_t figures_lock = PTHREAD_MUTEX_INITIALIZER; /* the watcher and exit */
static const struct gov_dynrule *last[GOV_REGION_DYN_MAX];
static uint64_t last_head[GOV_REGION_DYN_MAX];

static void rebase(void)
{
	for (int i = 0; i < GOV_REGION_DYN_MAX; i++) {
		const struct gov_dynrule *r = atomic_load(&rules[i]);
		base[i].rule = r;
		last[i] = NULL;
		if (!r)
			continue;
		base[i].faults = atomic_load(&r->faults);
		base[i].head = atomic_load(&r->event_head);
		for (int k = 0; k < GOV_DYN_COUNTERS; k++)
			base[i].counters[k] = atomic_load(&r->counters[k]);
	}
}

void govrt_dyn_atfork_child(void)
{
	pthread_mutex_init(&figures_lock, NULL);
	rebase();
}

void govrt_dyn_figures_rebase(void)
{
	pthread_mutex_lock(&figures_lock);
	rebase();
	pthread_mutex_unlock(&figures_lock);
}

/* Each rule's event ring is copied only when the rule or its head changed
 * since the last copy; the rest are a few words. Rules here are never
 * freed (see the top), so reading one that was replaced meanwhile is safe,
 * and its figures are the old version's under the old hash. */
int govrt_dyn_figures(struct gov_region_hdr *h)
{
	_Static_assert(GOV_REGION_DYN_EVENTS == GOV_DYN_EVENTS, "one ring's length");
	if (!h->stats_off)
		return 0;
	struct gov_region_dynstat *st = (struct gov_region_dynstat *)((char *)h + h->stats_off);
	int any = 0;
	pthread_mutex_lock(&figures_lock);
	for (int i = 0; i < GOV_REGION_DYN_MAX; i++) {
		const struct gov_dynrule *r = atomic_load(&rules[i]);
		struct gov_region_dynstat *s = &st[i];
		if (!r) { /* (a store only where there was one: most processes run none) */
			if (__atomic_load_n(&s->hash, __ATOMIC_RELAXED))
				__atomic_store_n(&s->hash, 0, __ATOMIC_RELEASE);
			last[i] = NULL;
			continue;
		}
		any = 1;
		int own = base[i].rule != r; /* else the fork's figures are the parent's */
		uint64_t head = atomic_load(&r->event_head), from = own ? 0 : base[i].head;
		if (last[i] != r || last_head[i] != head || __atomic_load_n(&s->hash, __ATOMIC_RELAXED) != r->hash) {
			__atomic_store_n(&s->hash, 0, __ATOMIC_RELEASE); /* being written */
			/* the ring of events since from, renumbered from 0 */
			uint64_t e = head - from > GOV_DYN_EVENTS ? head - GOV_DYN_EVENTS : from;
			for (; e < head; e++) {
				const struct gov_dyn_event *ev = &r->events[e % GOV_DYN_EVENTS];
				s->events[(e - from) % GOV_DYN_EVENTS] =
					(struct gov_region_dynevent){ ev->time_ns, ev->site_id, ev->a, ev->b };
			}
			s->event_head = head - from;
			last[i] = r;
			last_head[i] = head;
		}
		s->faults = atomic_load(&r->faults) - (own ? 0 : base[i].faults);
		s->disabled = (uint32_t)atomic_load(&r->disabled);
		for (int k = 0; k < GOV_DYN_COUNTERS; k++)
			s->counters[k] = atomic_load(&r->counters[k]) - (own ? 0 : base[i].counters[k]);
		__atomic_store_n(&s->hash, r->hash, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&figures_lock);
	return any;
}
