/* tests/dyn/div.c - fault injection: a division by args[1] (zero in the
 * test). eBPF: librte_bpf stops the program and returns 0 (a fault); wasm:
 * an integer-divide trap. Otherwise it emulates 100 / args[1]. */
#include "gov/dynrule.h"

GOV_RULE(divide)
{
	ctx->value = (int64_t)(100 / ctx->args[1]);
	return GOV_DYN_EMULATE;
}
