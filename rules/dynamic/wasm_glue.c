/* rules/dynamic/wasm_glue.c - compiled into every wasm rule's shared
 * object with wabt's wasm-rt-impl.c; wasm2c's translation of the rule
 * (module name "rule") is included here (GOV_WASM_RULE_C), in the same
 * translation unit, so that the rule's entry point inlines into
 * gov_wasm_run. The glue forwards the rule's imports (module "gov") to the
 * host's helpers, tells the host where the context lives in the rule's
 * linear memory (the host builds it there and reads the answer there: no
 * copy), keeps that memory from moving (memory.grow fails), has the host
 * reserve it (its accessible pages, then guard pages to 8 GiB and more:
 * the object is built with WASM_RT_MEMCHECK_SIGNAL_HANDLER=1, so it checks
 * no address and an access out of bounds faults in the guard, which the
 * host turns into a trap), and hands traps to the host, which unwinds.
 * The only symbols the object exports are gov_wasm_*; everything else is
 * hidden. Not run by itself: wasm.c
 * builds and loads it. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gov/dynrule.h"
/* The rule's memory.grow comes here instead of wabt's, which reallocs the
 * memory: the host holds a pointer to the context inside it across a run.
 * A rule has no use for more memory than it declares (its state is in
 * maps), and wasm lets a grow fail: it answers -1. */
#define wasm_rt_grow_memory gov_wasm_grow
/* wabt's own allocation reserves 8 GiB, aborts when it cannot, and frees
 * only the accessible part: the host reserves (and releases) the memory
 * instead, and knows then where its guard is (rules/dynamic/wasm.c). */
#define wasm_rt_allocate_memory gov_wasm_allocate
#define wasm_rt_free_memory gov_wasm_release
#include GOV_WASM_RULE_C
#undef wasm_rt_grow_memory
#undef wasm_rt_allocate_memory
#undef wasm_rt_free_memory

uint32_t gov_wasm_grow(wasm_rt_memory_t *mem, uint32_t delta)
{
	return delta ? (uint32_t)-1 : mem->pages; /* grow(0) asks the size */
}

#if WASM_RT_USE_STACK_DEPTH_COUNT
/* wasm_trap.h's per-thread call depth (wasm2c's counter, where wasm.c
 * keeps it) */
__thread uint32_t gov_wasm_depth_ __attribute__((tls_model("initial-exec"), visibility("hidden")));
#endif

#define EXPORT __attribute__((visibility("default")))

struct gov_wasm_host {
	uint64_t (*map_lookup)(uint64_t, uint64_t, uint64_t);
	uint64_t (*map_update)(uint64_t, uint64_t, uint64_t);
	uint64_t (*map_delete)(uint64_t, uint64_t);
	uint64_t (*counter_add)(uint64_t, uint64_t);
	uint64_t (*time_ns)(void);
	uint64_t (*log)(uint64_t, uint64_t);
	uint64_t (*event)(uint64_t, uint64_t);
	void (*trap)(int code); /* does not return */
	/* the memory of an instance: bytes accessible at the start of a
	 * reservation whose rest faults; NULL if it cannot be had */
	void *(*reserve)(uint64_t bytes);
	void (*release)(void *data);
};
static const struct gov_wasm_host *host;
struct Z_gov_instance_t; /* the imports' module "gov": no state of its own */

/* wasm-rt-impl.c calls this (WASM_RT_TRAP_HANDLER) instead of longjmp to
 * its one global jump buffer: the host keeps a buffer per thread. */
void gov_wasm_trap(int code)
{
	host->trap(code);
	abort();
}

/* Out of memory for an instance: the trap unwinds its making (a host code
 * of its own, TRAP_NOMEM in wasm.c). */
#define GOV_WASM_TRAP_NOMEM 101

void gov_wasm_allocate(wasm_rt_memory_t *mem, uint32_t pages, uint32_t max_pages)
{
	uint64_t bytes = (uint64_t)pages * 65536;
	uint8_t *data = host->reserve(bytes);
	if (!data)
		gov_wasm_trap(GOV_WASM_TRAP_NOMEM);
	mem->data = data;
	mem->size = bytes;
	mem->pages = pages;
	mem->max_pages = max_pages;
}

void gov_wasm_release(wasm_rt_memory_t *mem)
{
	host->release(mem->data);
}

u64 Z_govZ_map_lookup(struct Z_gov_instance_t *g, u64 m, u64 k, u64 d) { (void)g; return host->map_lookup(m, k, d); }
u64 Z_govZ_map_update(struct Z_gov_instance_t *g, u64 m, u64 k, u64 v) { (void)g; return host->map_update(m, k, v); }
u64 Z_govZ_map_delete(struct Z_gov_instance_t *g, u64 m, u64 k) { (void)g; return host->map_delete(m, k); }
u64 Z_govZ_counter_add(struct Z_gov_instance_t *g, u64 c, u64 d) { (void)g; return host->counter_add(c, d); }
u64 Z_govZ_time_ns(struct Z_gov_instance_t *g) { (void)g; return host->time_ns(); }
u64 Z_govZ_log(struct Z_gov_instance_t *g, u64 c, u64 v) { (void)g; return host->log(c, v); }
u64 Z_govZ_event(struct Z_gov_instance_t *g, u64 a, u64 b) { (void)g; return host->event(a, b); }

/* An instance, and where its context lives (gov_ctx, asked once). */
struct gov_wasm_inst {
	Z_rule_instance_t inst;
	uint32_t at;
};

/* A new instance: its own memory and globals. The host makes one per
 * thread that runs the rule; it is then only ever run by that thread.
 * The host calls this with a run's unwind point set: instantiating (or
 * gov_ctx) may trap. */
static void init_module(void)
{
	wasm_rt_init();
	Z_rule_init_module();
}

EXPORT void *gov_wasm_new(const struct gov_wasm_host *h)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	host = h; /* the same host every time */
	pthread_once(&once, init_module);
	struct gov_wasm_inst *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
#if GOV_WASM_IMPORTS
	Z_rule_instantiate(&w->inst, NULL);
#else
	Z_rule_instantiate(&w->inst);
#endif
#if WASM_RT_USE_STACK_DEPTH_COUNT
	wasm_rt_call_stack_depth = 0;
#endif
	w->at = Z_ruleZ_gov_ctx(&w->inst);
	return w;
}

/* Where the instance's context lives, or NULL if the rule put it out of
 * its memory. Fixed for the instance's life: the memory never moves (see
 * gov_wasm_grow) and never shrinks. */
EXPORT struct gov_dyn_ctx *gov_wasm_ctx(void *p)
{
	struct gov_wasm_inst *w = p;
	wasm_rt_memory_t *mem = Z_ruleZ_memory(&w->inst);
	if ((uint64_t)w->at + sizeof(struct gov_dyn_ctx) > mem->size)
		return NULL;
	return (struct gov_dyn_ctx *)(mem->data + w->at);
}

/* One run on the calling thread's instance, on the context the host has
 * filled in place (gov_wasm_ctx; the second argument is unused: the
 * signature is the one gov_wasm_enter calls); the host catches traps and
 * reads the answer where the rule left it. */
EXPORT uint64_t gov_wasm_run(void *p, struct gov_dyn_ctx *unused)
{
	(void)unused;
#if WASM_RT_USE_STACK_DEPTH_COUNT
	wasm_rt_call_stack_depth = 0; /* a trap may have left it anywhere */
#endif
	return Z_ruleZ_gov_rule(&((struct gov_wasm_inst *)p)->inst);
}

EXPORT void gov_wasm_free(void *p)
{
	struct gov_wasm_inst *w = p;
	Z_rule_free(&w->inst);
	free(w);
}
