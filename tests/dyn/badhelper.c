/* tests/dyn/badhelper.c - fault injection: helpers called with bad
 * arguments (map 99, counter 1000) when args[0] is 1; else a good map
 * round trip that emulates the number of calls seen. */
#include "gov/dynrule.h"

GOV_RULE(badhelper)
{
	if (ctx->args[0] == 1)
		gov_map_update(99, 1, 1);
	if (ctx->args[0] == 2)
		gov_counter_add(1000, 1);
	uint64_t n = gov_map_lookup(0, 7, 0) + 1;
	gov_map_update(0, 7, n);
	ctx->value = (int64_t)n;
	return GOV_DYN_EMULATE;
}
