/* rules/trace/trace.c - the trace rule: counts the calls it is attached to
 * (counter 0 all, counter 1 syscalls, counter 2 function calls; map 0 per
 * syscall number or function id) and appends each to the rule's event ring
 * as {site, a = syscall number or function id, b = first argument}; read
 * them with `govctl trace RESOURCE`. Lets every call run. One source for
 * eBPF and wasm. */
#include "gov/dynrule.h"

GOV_RULE(trace)
{
	uint64_t what = ctx->sysno >= 0 ? (uint64_t)ctx->sysno : ctx->func_id;
	gov_counter_add(0, 1);
	gov_counter_add(ctx->kind == 2 ? 1 : 2, 1);
	gov_map_update(0, what, gov_map_lookup(0, what, 0) + 1);
	gov_event(what, ctx->args[0]);
	return GOV_DYN_NATIVE;
}
