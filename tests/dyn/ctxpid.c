/* tests/dyn/ctxpid.c - a rule that writes read-only fields of its context
 * (pid, site_id): govrt must run it on a fresh context every call (the
 * full path, docs/dynrules.md). Emulates the pid it saw plus the site id's
 * low bit, then scribbles over both. */
#include "gov/dynrule.h"

GOV_RULE(ctxpid)
{
	ctx->value = (int64_t)ctx->pid * 2 + (int64_t)(ctx->site_id & 1);
	ctx->pid = 1;
	ctx->site_id = 0;
	return GOV_DYN_EMULATE;
}
