/* tests/dyn/grow.c - a wasm rule asking for more memory: memory.grow by
 * args[0] pages answers -1 for any growth (the host keeps a rule's memory
 * where it is, rules/dynamic/wasm_glue.c) and the current size for 0; it
 * emulates that answer and the size after, in err. eBPF has no memory to
 * grow: it emulates -1. */
#include "gov/dynrule.h"

GOV_RULE(grow)
{
#if defined(__wasm__)
	ctx->value = (int32_t)__builtin_wasm_memory_grow(0, (uint32_t)ctx->args[0]);
	ctx->err = (int32_t)__builtin_wasm_memory_size(0);
#else
	ctx->value = -1;
#endif
	return GOV_DYN_EMULATE;
}
