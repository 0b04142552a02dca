/* rules/tasklet/tasklet.c - the tasklet rule as a dynamic rule
 * (docs/tasklet.md): it says which governed calls do not run now but are
 * deferred into a tasklet, and which one; the agent queues them and runs
 * them later on a serving process, one at a time per tasklet, different
 * tasklets at once. One source for both modes (eBPF and wasm).
 *
 * As shipped: a call whose first argument (a device number) is 0 or more
 * is deferred into tasklet "dev0" or "dev1" by that number's parity, so
 * the two devices' calls run side by side and each device's in order; a
 * negative device runs now. Copy it and change the choice. Not the queues
 * or the running: that is C in the agent (runtime/agent/tasklet.c). */
#include "gov/dynrule.h"

GOV_RULE(tasklet)
{
	if ((int64_t)ctx->args[0] < 0)
		return GOV_DYN_NATIVE;
	ctx->tasklet = ctx->args[0] & 1 ? GOV_DYN_ID("dev1") : GOV_DYN_ID("dev0");
	gov_counter_add(0, 1);
	return GOV_DYN_DEFER;
}
