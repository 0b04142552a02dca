/* rules/dynamic/wasm_glue.c - compiled into every wasm rule's shared
 * object, next to wasm2c's translation of the rule (module name "rule",
 * its header given with -include) and wabt's wasm-rt-impl.c: the rule's
 * imports (module "gov") forwarded to the host's helpers, the copy of the
 * context in and the answer out of the rule's linear memory, and traps
 * handed to the host, which unwinds. The only symbols the object exports
 * are gov_wasm_*; everything else is hidden. Not run by itself: wasm.c
 * builds and loads it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gov/dynrule.h"

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

u64 Z_govZ_map_lookup(struct Z_gov_instance_t *g, u64 m, u64 k, u64 d) { (void)g; return host->map_lookup(m, k, d); }
u64 Z_govZ_map_update(struct Z_gov_instance_t *g, u64 m, u64 k, u64 v) { (void)g; return host->map_update(m, k, v); }
u64 Z_govZ_map_delete(struct Z_gov_instance_t *g, u64 m, u64 k) { (void)g; return host->map_delete(m, k); }
u64 Z_govZ_counter_add(struct Z_gov_instance_t *g, u64 c, u64 d) { (void)g; return host->counter_add(c, d); }
u64 Z_govZ_time_ns(struct Z_gov_instance_t *g) { (void)g; return host->time_ns(); }
u64 Z_govZ_log(struct Z_gov_instance_t *g, u64 c, u64 v) { (void)g; return host->log(c, v); }
u64 Z_govZ_event(struct Z_gov_instance_t *g, u64 a, u64 b) { (void)g; return host->event(a, b); }

EXPORT void *gov_wasm_new(const struct gov_wasm_host *h)
{
	host = h;
	static int inited;
	if (!inited) {
		wasm_rt_init();
		Z_rule_init_module();
		inited = 1;
	}
	Z_rule_instance_t *inst = calloc(1, sizeof *inst);
	if (inst)
#if GOV_WASM_IMPORTS
		Z_rule_instantiate(inst, NULL);
#else
		Z_rule_instantiate(inst);
#endif
	return inst;
}

/* One run; the host serialises runs of one instance and catches traps. */
EXPORT uint64_t gov_wasm_call(void *p, struct gov_dyn_ctx *ctx)
{
	Z_rule_instance_t *inst = p;
#if WASM_RT_USE_STACK_DEPTH_COUNT
	wasm_rt_call_stack_depth = 0; /* a trap may have left it anywhere */
#endif
	uint32_t at = Z_ruleZ_gov_ctx(inst);
	wasm_rt_memory_t *mem = Z_ruleZ_memory(inst);
	if ((uint64_t)at + sizeof *ctx > mem->size)
		return GOV_DYN_FAULT;
	memcpy(mem->data + at, ctx, sizeof *ctx);
	uint64_t a = Z_ruleZ_gov_rule(inst);
	struct gov_dyn_ctx *out = (struct gov_dyn_ctx *)(mem->data + at);
	memcpy(ctx->args, out->args, sizeof ctx->args);
	ctx->value = out->value;
	ctx->err = out->err;
	ctx->forward_to = out->forward_to;
	ctx->entity = out->entity; /* SCHEDULE's answer (docs/cfs.md) */
	ctx->weight = out->weight;
	ctx->slots = out->slots;
	return a;
}

EXPORT void gov_wasm_free(void *p)
{
	Z_rule_free(p);
	free(p);
}
