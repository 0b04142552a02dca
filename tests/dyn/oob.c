/* tests/dyn/oob.c - fault injection: a read far outside the context.
 * eBPF: refused by the verifier; wasm: a trap at run time (out of bounds
 * of the rule's linear memory). */
#include "gov/dynrule.h"

GOV_RULE(oob)
{
	volatile uint64_t *p = (volatile uint64_t *)((char *)ctx + 0x7ff00000u);
	ctx->value = (int64_t)*p;
	return GOV_DYN_EMULATE;
}
