/* tests/dyn/loopfill.c - fault injection: an endless loop that spends
 * most of its time in libc called by the rule's own object (wasm's
 * memory.fill is wasm2c's memset), where the wasm budget cannot unwind it
 * and waits for the watchdog's next signal. eBPF (which has no memset):
 * the loop alone, refused by the verifier (no back edges). */
#include "gov/dynrule.h"

static unsigned char buf[8192];

#ifdef __wasm__
__attribute__((target("bulk-memory"))) /* memory.fill, not a call to memset */
#endif
GOV_RULE(loopfill)
{
	volatile uint64_t x = ctx->args[0];
	while (x != 12345) {
#ifdef __wasm__
		__builtin_memset(buf, (int)x, sizeof buf);
#endif
		x = x * 3 + buf[x & 1023];
	}
	return GOV_DYN_NATIVE;
}
