/* runtime/tasklet.c - govrt_tasklet_schedule: a driver asks its agent to
 * queue a call of one of its exported functions under a tasklet's name
 * (docs/tasklet.md).
 *
 * The request is one round trip through a slot, like a governed call of a
 * site govrt makes up (GOV_TASKLET_CALLEE, gov/wire.h); the agent queues it
 * and answers at once. Not here: the queues and running the calls
 * (runtime/agent/tasklet.c). */
#include <errno.h>
#include <string.h>
#include "gov/wire.h"
#include "govrt_private.h"
#include "internal.h"

/* The made-up site: not in any module's table, so no rule decides it; the
 * agent recognises its callee. GOV_RET_RAW: a fail outcome (no answer)
 * comes back negative, the agent's answers are 0 or a positive errno. */
static struct gov_site tasklet_site = {
	.kind = GOV_SITE_CALL,
	.ret_conv = GOV_RET_RAW,
	.nparams = sizeof(GOV_TASKLET_TYPES) - 2,
	.sysno = -1,
	.caller = "govrt_tasklet_schedule",
	.callee = GOV_TASKLET_CALLEE,
	.types = GOV_TASKLET_TYPES,
	.file = __FILE__,
	.line = __LINE__,
};

static int fn_name_ok(const char *fn)
{
	return fn && fn[0] && strnlen(fn, GOV_NAME_MAX) < GOV_NAME_MAX;
}

int govrt_tasklet_schedule(const char *name, const char *fn, long arg)
{
	if (!gov_resource_name_ok(name) || !fn_name_ok(fn)) {
		errno = EINVAL;
		return -1;
	}
	if (!govrt_connected()) {
		errno = ENOTCONN;
		return -1;
	}
	struct gov_call call = { { (uint64_t)(uintptr_t)name, (uint64_t)(uintptr_t)fn,
				   (uint64_t)arg }, 0 };
	int saved = errno;
	if (govrt_ask_agent(&tasklet_site, &call) == GOV_RUN_NATIVE || (long)call.ret < 0) {
		errno = ENOTCONN; /* no answer: the agent went or timed out */
		return -1;
	}
	if (call.ret) {
		errno = (int)call.ret;
		return -1;
	}
	errno = saved;
	return 0;
}
