/* tests/dyn/deny_full.c - the deny rule (rules/deny/deny.c, included, not
 * copied) made to write a read-only field of its context: time_ns, with
 * the 0 it holds in the program. govrt then runs it on a context built
 * afresh for every call (the full path, docs/dynrules.md): bench/rules B's
 * baseline for the kept context. */
#include "gov/dynrule.h"

#pragma push_macro("GOV_RULE")
#undef GOV_RULE
#define GOV_RULE(name) static inline __attribute__((always_inline)) uint64_t name##_body(struct gov_dyn_ctx *ctx)
#include "../../rules/deny/deny.c"
#pragma pop_macro("GOV_RULE")

GOV_RULE(deny_full)
{
	ctx->time_ns = 0; /* a read-only field: the scan sends it to the full path */
	return deny_body(ctx);
}
