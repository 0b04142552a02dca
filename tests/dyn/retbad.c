/* tests/dyn/retbad.c - a rule returning no action (77): counted as a
 * fault like a trap. */
#include "gov/dynrule.h"

GOV_RULE(retbad)
{
	return 77 + ctx->args[5];
}
