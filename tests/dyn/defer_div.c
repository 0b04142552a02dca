/* tests/dyn/defer_div.c - fault injection for the tasklet rule
 * (docs/tasklet.md): defers every call into tasklet dev0, after a division
 * by args[1] (zero in the test). eBPF: librte_bpf stops the program and
 * returns 0 (a fault); wasm: an integer-divide trap. Either way the call
 * must take the rule's fail outcome and nothing may be queued. */
#include "gov/dynrule.h"

GOV_RULE(defer_div)
{
	ctx->value = (int64_t)(100 / ctx->args[1]);
	ctx->tasklet = GOV_DYN_ID("dev0");
	return GOV_DYN_DEFER;
}
