/* tests/dyn/cfs_arg.c - a cfs rule for tests/t_cfs_rule.c: the calling
 * thread is the entity unless args[2] names one, args[0] its weight and
 * args[1] the queue's slots;
 * a weight of 0 is a helper fault (counter 99), to test fault injection. */
#include "gov/dynrule.h"

GOV_RULE(cfs_arg)
{
	if (ctx->args[0] == 0)
		gov_counter_add(99, 1);
	ctx->weight = (uint32_t)ctx->args[0];
	ctx->slots = (uint32_t)ctx->args[1];
	if (ctx->args[2])
		ctx->entity = ctx->args[2];
	return GOV_DYN_SCHEDULE;
}
