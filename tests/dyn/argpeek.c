/* tests/dyn/argpeek.c - reads args[2] alone and emulates it plus one: on a
 * site with two arguments govrt copies none in (docs/dynrules.md), and the
 * word past them must read 0, as GOV_CALL leaves it. */
#include "gov/dynrule.h"

GOV_RULE(argpeek)
{
	ctx->value = (int64_t)ctx->args[2] + 1;
	return GOV_DYN_EMULATE;
}
