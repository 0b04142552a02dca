/* rules/cfs/cfs.c - the cfs rule as a dynamic rule (docs/cfs.md): it
 * classifies a governed call into its scheduling entity and weight, and
 * the runtime's run queue (govrt's cfs.c, placement process) runs the
 * calls in order of weighted virtual runtime, at most `slots` at a time.
 * One source for both modes (eBPF and wasm).
 *
 * As shipped: every process is one entity (its threads share its
 * vruntime), weighted by its resource: billing 4096, batch-sync 256, any
 * other 1024; the queue runs as many calls at once as the machine has
 * CPUs (CFS_SLOTS 0). Copy it and change the classification: the entity
 * may be a thread (leave ctx->entity as the runtime set it), a resource
 * (ctx->caller_id) or anything computed from the arguments. Not the
 * scheduler itself: that is C in the runtime. */
#include "gov/dynrule.h"

#ifndef CFS_SLOTS
#define CFS_SLOTS 0
#endif

GOV_RULE(cfs)
{
	ctx->entity = ctx->pid;
	if (ctx->caller_id == GOV_DYN_ID("billing"))
		ctx->weight = 4096;
	else if (ctx->caller_id == GOV_DYN_ID("batch-sync"))
		ctx->weight = 256;
	else
		ctx->weight = 1024;
	ctx->slots = CFS_SLOTS;
	gov_counter_add(0, 1);
	return GOV_DYN_SCHEDULE;
}
