/* runtime/dynrule.c - dynamic rules inside the program (placement
 * process, eBPF): taking the objects the agent put into the region with the
 * decision table, loading them (librte_bpf is opened only then, see
 * rules/dynamic/bpf.c), and handing dispatch.c the rule of a decision.
 * A rule whose object did not change keeps its state; a replaced one is
 * never freed, because a thread may still be running it (rules change
 * rarely). Not the running itself (dispatch.c) nor the fault policy
 * (rules/dynamic/dynrt.c). */
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
