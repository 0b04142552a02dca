/* runtime/xcall.c - the caller's side of a cross-resource call in govrt.
 *
 * A forwarded call goes to the agent like any other (dispatch.c, the slot);
 * its reply says FORWARD and carries what the call returned in the other
 * resource: the value (bit for bit, as gov_call.ret), errno, and in the
 * payload the out-buffers, each exactly its capacity (the next `z`
 * argument), padded to 8. This file copies them back to the caller's
 * pointers. A call that could not run, or whose outcome nobody can know,
 * comes back from the agent as a DENY with its errno (docs/xcall.md). It is
 * not the callee's side (invoke.c). */
#include <errno.h>
#include <string.h>
#include "gov/typestr.h"
#include "govrt_private.h"
#include "xcall_io.h"

int govrt_xcall_apply(const struct gov_site *site, struct gov_call *call,
		      const struct gov_wire_rep *rep, const void *payload, size_t cap)
{
	const char *types = site->types && site->types[0] ? site->types : "l";
	uint32_t ocap[GOV_MAX_ARGS];
	struct gov_typestr ts;
	const char *why;
	size_t where;
	long want = gov_xcall_outbufs(types, call->arg, ocap);
	if (want < 0 || gov_typestr_parse(types, &ts, &why, &where) < 0 || (size_t)want > cap || rep->body_len != (uint32_t)want) {
		govrt_warn("%s:%u: forwarded call to %s came back with %u bytes of out-buffers, "
			   "expected %ld", site->file, site->line, site->callee, rep->body_len, want);
		return -1;
	}
	const char *params = ts.top + 1;
	size_t off = 0;
	if (ts.top[0] == GOV_T_STRUCT) {
		void *dst = (void *)(uintptr_t)call->ret;
		if (!dst) {
			govrt_warn("%s:%u: %s returns a struct but the site gave no place for it",
				   site->file, site->line, site->callee);
			return -1;
		}
		memcpy(dst, payload, ts.size[0]);
		off = GOV_XCALL_PAD8(ts.size[0]);
	}
	for (int i = 0; params[i] && i < GOV_MAX_ARGS; i++) {
		if (params[i] != GOV_T_OUTBUF)
			continue;
		void *dst = (void *)(uintptr_t)call->arg[i];
		if (dst && ocap[i])
			memcpy(dst, (const char *)payload + off, ocap[i]);
		off += GOV_XCALL_PAD8(ocap[i]);
	}
	if (ts.top[0] != GOV_T_STRUCT)
		call->ret = rep->value;
	if (rep->err)
		errno = rep->err;
	return GOV_RUN_RETURN;
}
