/* bench/cfs/per_thread.c - the shipped cfs rule (rules/cfs/cfs.c) with one
 * entity per thread instead of per process: the entity is left as the
 * runtime sets it (pid << 32 | tid), weight 1024. `bench/cfs --per-thread`
 * runs the native mode under it, to show what a rule that interleaves the
 * threads does to the median thread's latency and to the makespan
 * (docs/cfs.md). Not shipped as a rule. */
#include "gov/dynrule.h"

GOV_RULE(cfs)
{
	ctx->weight = 1024;
	return GOV_DYN_SCHEDULE;
}
