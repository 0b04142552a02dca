/* tests/dyn/loophelper.c - fault injection: an endless loop that spends
 * most of its time in a helper (gov_time_ns: the host's code and the
 * clock in libc), so the wasm budget runs out there as often as in the
 * rule's own code. eBPF: refused by the verifier (no back edges). */
#include "gov/dynrule.h"

GOV_RULE(loophelper)
{
	volatile uint64_t x = ctx->args[0];
	while (x != 12345)
		x = x * 3 + gov_time_ns();
	return GOV_DYN_NATIVE;
}
