/* tests/dyn/fwd.c - a rule that forwards and that changes arguments
 * (t_forward_rule.c), by the call's first argument: 100 or more, FORWARD
 * to the function's exporter (forward_to 0); 7, FORWARD to the resource
 * df-alt by its id; 8, FORWARD to df-none, which no rule names; 5, run
 * natively with the arguments 55 and 66 (NATIVE_ARGS); else NATIVE. */
#include "gov/dynrule.h"

GOV_RULE(fwd)
{
	uint64_t a = ctx->args[0];
	if (a >= 100) {
		ctx->forward_to = 0;
		return GOV_DYN_FORWARD;
	}
	if (a == 7 || a == 8) {
		ctx->forward_to = a == 7 ? GOV_DYN_ID("df-alt") : GOV_DYN_ID("df-none");
		return GOV_DYN_FORWARD;
	}
	if (a == 5) {
		ctx->args[0] = 55;
		ctx->args[1] = 66;
		return GOV_DYN_NATIVE_ARGS;
	}
	return GOV_DYN_NATIVE;
}
