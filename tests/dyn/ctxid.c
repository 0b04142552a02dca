/* tests/dyn/ctxid.c - shows the rule its own context (govrt's kept
 * context, docs/dynrules.md): args[0] picks what it emulates — 0 the pid,
 * 1 the tid, 2 the site id, 3 the entity, 4 the function id, 5 the answer
 * fields OR'ed together (0 when the runtime reset them), 6 the arguments
 * summed; 7 writes every answer field and runs the call natively (leaves
 * them dirty for the next call to see, if they were not reset); 8 calls a
 * helper 16 times and emulates args[1] + 1 (a helper that finds no running
 * rule faults it: the call then runs natively, the fail outcome). */
#include "gov/dynrule.h"

GOV_RULE(ctxid)
{
	switch (ctx->args[0]) {
	case 0:
		ctx->value = ctx->pid;
		return GOV_DYN_EMULATE;
	case 1:
		ctx->value = ctx->tid;
		return GOV_DYN_EMULATE;
	case 2:
		ctx->value = (int64_t)ctx->site_id;
		return GOV_DYN_EMULATE;
	case 3:
		ctx->value = (int64_t)ctx->entity;
		return GOV_DYN_EMULATE;
	case 4:
		ctx->value = ctx->func_id;
		return GOV_DYN_EMULATE;
	case 5:
		ctx->value = ctx->err | ctx->forward_to | ctx->weight | ctx->slots | ctx->tasklet |
			     (ctx->entity != ((uint64_t)ctx->pid << 32 | ctx->tid));
		return GOV_DYN_EMULATE;
	case 6:
		ctx->value = (int64_t)(ctx->args[1] + ctx->args[2] + ctx->args[3] + ctx->args[4] + ctx->args[5]);
		return GOV_DYN_EMULATE;
	case 7:
		ctx->value = 5;
		ctx->err = 6;
		ctx->forward_to = 7;
		ctx->entity = 8;
		ctx->weight = 9;
		ctx->slots = 10;
		ctx->tasklet = 11;
		return GOV_DYN_NATIVE;
	case 8: {
		uint64_t v = ctx->args[1];
#pragma unroll
		for (int i = 0; i < 16; i++)
			gov_counter_add(0, 1);
		ctx->value = (int64_t)v + 1;
		return GOV_DYN_EMULATE;
	}
	}
	return GOV_DYN_NATIVE;
}
