/* tests/dyn/loop.c - fault injection: an endless loop. eBPF: refused by
 * the verifier (no back edges); wasm: stopped by the run budget. */
#include "gov/dynrule.h"

GOV_RULE(loop)
{
	volatile uint64_t x = ctx->args[0];
	while (x != 12345)
		x = x * 3 + 1;
	return GOV_DYN_NATIVE;
}
