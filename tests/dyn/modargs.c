/* tests/dyn/modargs.c - every action by args[0]: 1 runs the call with
 * args[1] doubled, 2 forwards it to the agent, 3 emulates 100 / args[1]
 * (a fault when args[1] is 0), 4 denies with ENOSPC; else native. */
#include "gov/dynrule.h"

GOV_RULE(modargs)
{
	switch (ctx->args[0]) {
	case 1:
		ctx->args[1] *= 2;
		return GOV_DYN_NATIVE_ARGS;
	case 2:
		return GOV_DYN_FORWARD;
	case 3:
		ctx->value = (int64_t)(100 / ctx->args[1]);
		return GOV_DYN_EMULATE;
	case 4:
		ctx->err = 28;
		return GOV_DYN_DENY;
	}
	return GOV_DYN_NATIVE;
}
