/* tests/dyn/oob_edge.c - fault injection at the edges of a wasm rule's
 * memory, where the host's guard pages (not a bounds check) stop it
 * (rules/dynamic/wasm.c). args[0] picks the access: 0 the last 8 bytes of
 * the memory (in bounds: emulates what it reads), 1 the 8 bytes just past
 * it, 2 8 bytes straddling its end, 3 the last 8 bytes below 4 GiB;
 * args[1] non-zero writes args[2] there instead of reading. The far end of
 * the guard (an address near 4 GiB plus an offset near 4 GiB) is
 * tests/dyn/far.wat's. eBPF has no linear memory: it emulates 0. */
#include "gov/dynrule.h"

GOV_RULE(oob_edge)
{
#if defined(__wasm__)
	uint32_t end = (uint32_t)__builtin_wasm_memory_size(0) * 65536u;
	uint32_t at = ctx->args[0] == 0 ? end - 8 : ctx->args[0] == 1 ? end
		    : ctx->args[0] == 2 ? end - 4 : 0xfffffff8u;
	volatile int64_t *p = (volatile int64_t *)(uintptr_t)at;
	if (ctx->args[1])
		*p = (int64_t)ctx->args[2];
	else
		ctx->value = *p;
#else
	ctx->value = 0;
#endif
	return GOV_DYN_EMULATE;
}
