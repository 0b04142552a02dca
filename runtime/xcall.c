/* runtime/xcall.c - the caller's side of a cross-resource call in govrt.
 *
 * A forwarded call goes to the agent like any other (dispatch.c, the slot);
 * its reply says FORWARD and carries what the call returned in the other
 * resource: the value (bit for bit, as gov_call.ret), errno, and in the
 * payload the out-buffers, each exactly its capacity (the next `z`
 * argument), padded to 8. This file copies them back to the caller's
 * pointers. A call that could not run, or whose outcome nobody can know,
 * comes back from the agent as a DENY with its errno (docs/xcall.md).
 *
 * Direct calls (docs/xcall.md "Direct calls"): when the FORWARD row names
 * a grant this process holds, the call goes into one of the grant's boxes
 * and the serving process answers there, with no agent on the path; a
 * revoked grant, or every box busy, sends it the agents' way. It is not
 * the callee's side (invoke.c). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "gov/typestr.h"
#include "gov/wire.h"
#include "gov/xcall.h"
#include "govrt_private.h"
#include "xcall_io.h"

#define DIRECT_SLICE_MS 20 /* a waiting caller looks at the serving process this often */

/* The reply applied with the site's type string parsed (ts, or NULL if
 * it does not parse). */
static int apply_ts(const struct gov_site *site, struct gov_call *call,
		    const struct gov_wire_rep *rep, const void *payload, size_t cap,
		    const struct gov_typestr *plan)
{
	uint32_t ocap[GOV_MAX_ARGS];
	long want = plan ? gov_xcall_outbufs_ts(plan, call->arg, ocap) : -1;
	if (want < 0 || (size_t)want > cap || rep->body_len != (uint32_t)want) {
		govrt_warn("%s:%u: forwarded call to %s came back with %u bytes of out-buffers, "
			   "expected %ld", site->file, site->line, site->callee, rep->body_len, want);
		return -1;
	}
	const struct gov_typestr ts = *plan;
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
		govrt_give_errno(rep->err);
	return GOV_RUN_RETURN;
}

int govrt_xcall_apply(const struct gov_site *site, struct gov_call *call,
		      const struct gov_wire_rep *rep, const void *payload, size_t cap)
{
	const char *types = site->types && site->types[0] ? site->types : "l";
	struct gov_typestr ts;
	const char *why;
	size_t where;
	int ok = gov_typestr_parse(types, &ts, &why, &where) == 0;
	return apply_ts(site, call, rep, payload, cap, ok ? &ts : NULL);
}

/* A site's type string parsed once per thread: each thread keeps the
 * plans of the last few sites it called directly. An entry is keyed by
 * the string's text, not its address (a library unloaded and another
 * loaded in its place may put another string there). NULL if the type
 * string does not parse (the codec then says why). */
#define PLANS 4
static const struct gov_typestr *site_plan(const struct gov_site *site)
{
	static __thread struct plan {
		char types[GOV_TYPES_MAX];
		struct gov_typestr ts;
	} plans[PLANS];
	/* the codec's reading: a site with no type string passes a long */
	const char *types = site->types ? site->types : "l";
	size_t n = strnlen(types, GOV_TYPES_MAX);
	if (!n || n == GOV_TYPES_MAX)
		return NULL;
	struct plan *p = &plans[((uintptr_t)site->types >> 3) % PLANS];
	if (memcmp(p->types, types, n + 1) != 0) {
		const char *why;
		size_t where;
		p->types[0] = 0;
		if (gov_typestr_check(types, &p->ts, &why, &where) < 0)
			return NULL;
		memcpy(p->types, types, n + 1);
	}
	return &p->ts;
}

/* ---- direct calls ---- */

void govrt_direct_take(struct govrt_conn *c, const struct gov_msg *m, int memfd)
{
	errno = 0;
	struct gov_xcall_direct *d = memfd >= 0 ? gov_xcall_direct_map(memfd) : NULL;
	if (!d) {
		/* the agent believes this process holds it: say why it does not */
		int e = errno;
		govrt_warn("direct grant %llu to %s not taken: %s%s; its calls take the agents' path",
			   (unsigned long long)m->size, m->name, memfd < 0 ? "no memfd came with it"
			   : e == EINVAL ? "its memory is not a direct grant" : "cannot map its memory: ",
			   memfd >= 0 && e != EINVAL ? strerror(e) : "");
		return;
	}
	int pidfd = d && d->server_pid > 0 ? (int)syscall(SYS_pidfd_open, (pid_t)d->server_pid, 0) : -1;
	unsigned n = atomic_load(&c->ndirect);
	const char *no = pidfd < 0 ? "its serving process is gone"
		       : n == GOVRT_DIRECT_MAX ? "this connection holds as many grants as it can" : NULL;
	if (no) {
		govrt_debug("direct grant %llu to %s not taken (%s): its calls take the agents' path",
			    (unsigned long long)m->size, m->name, no);
		if (pidfd >= 0)
			close(pidfd);
		munmap(d, sizeof *d);
		return;
	}
	c->direct[n] = (struct govrt_direct){ .id = (uint32_t)m->size, .pidfd = pidfd, .d = d };
	atomic_store_explicit(&c->ndirect, n + 1, memory_order_release);
	govrt_debug("direct grant %llu to %s: calls go to process %d", (unsigned long long)m->size,
		    m->name, (int)d->server_pid);
}

void govrt_direct_free(struct govrt_conn *c)
{
	for (unsigned i = 0; i < atomic_load(&c->ndirect); i++) {
		close(c->direct[i].pidfd);
		munmap(c->direct[i].d, sizeof *c->direct[i].d);
	}
}

/* Requests up to this size are encoded on the stack (call_in_box). */
#define SMALL_REQ 1024

/* Copies n bytes from src to the box's dst, leaving alone each 16 bytes
 * that are already equal: writing them would take the line away from the
 * reader's cache for nothing. */
static void copy_changed(unsigned char *dst, const unsigned char *src, size_t n)
{
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		if (memcmp(dst + i, src + i, 16) != 0)
			memcpy(dst + i, src + i, 16);
	if (i < n && memcmp(dst + i, src + i, n - i) != 0)
		memcpy(dst + i, src + i, n - i);
}

static int server_gone(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	return poll(&p, 1, 0) != 0;
}

/* One call through box b (taken). The box is released, or kept LOST when
 * a RESULT may still come. */
static int call_in_box(struct govrt_direct *g, struct gov_xcall_dbox *b, struct gov_site *site,
		       struct gov_call *call, int *err)
{
	struct gov_xcall_mailbox *in = &b->box.mb[0], *out = &b->box.mb[1];
	static __thread uint64_t counter;
	char why[160];
	struct gov_xcall_dhdr h = { .type = GOV_XCALL_CALL, .req_id = ++counter }, rep;
	/* A small request is encoded here and copied into the box only where
	 * it differs from the box's last one: a line left alone stays in the
	 * serving process's cache, where its last read put it. Calls of one
	 * site mostly differ in the header and the arguments, not in the
	 * callee's name and type string, two of a one-argument call's four
	 * lines. A larger one is encoded in place. */
	_Alignas(64) unsigned char small[SMALL_REQ];
	const struct gov_typestr *plan = site_plan(site);
	long len = !plan ? -1 : gov_wire_encode_req_ts(small + sizeof h, sizeof small - sizeof h,
						       h.req_id, site, call, plan, NULL, 0);
	if (len >= 0) {
		h.body_len = (uint32_t)len;
		memcpy(small, &h, sizeof h);
		copy_changed(in->data, small, sizeof h + (size_t)len);
	} else {
		len = gov_wire_encode_req(in->data + sizeof h, GOV_XCALL_BODY_MAX, h.req_id, site,
					  call, why, sizeof why);
		if (len < 0) {
			__atomic_store_n(&b->owner, 0, __ATOMIC_RELEASE);
			return -1; /* the agents' path says why */
		}
		h.body_len = (uint32_t)len;
		memcpy(in->data, &h, sizeof h);
	}
	uint64_t t0 = gov_now_ns(), end = t0 + (uint64_t)g->d->timeout_ms * 1000000u;
	gov_xcall_box_post(in, (uint32_t)(sizeof h + (size_t)len));
	uint32_t seen = b->reply_seen;
	long spin = govrt.cfg.spin_ns;
	int left = (int)g->d->timeout_ms, r;
	for (;;) {
		r = gov_xcall_box_wait(out, &seen, -1, spin, DIRECT_SLICE_MS, left);
		if (r != 0)
			break;
		spin = 0;
		if (server_gone(g->pidfd)) {
			r = -ECONNABORTED;
			break;
		}
		uint64_t now = gov_now_ns();
		left = now >= end ? 0 : (int)((end - now) / 1000000u) + 1;
	}
	if (r == 1)
		r = gov_xcall_dframe_get(out, &rep, NULL, why, sizeof why);
	b->reply_seen = seen;
	b->calls++;
	b->ns += gov_now_ns() - t0;
	if (r == 1 && (rep.type != GOV_XCALL_RESULT || rep.req_id != h.req_id)) {
		snprintf(why, sizeof why, "the answer is not this call's RESULT");
		r = -EPROTO;
	}
	if (r != 1) {
		/* it may have run; a RESULT may still come: nobody uses this box again */
		b->unknown++;
		__atomic_store_n(&b->owner, GOV_XCALL_DBOX_LOST, __ATOMIC_RELEASE);
		if (r == -ECONNABORTED) /* nobody serves the grant now */
			__atomic_store_n(&g->d->revoked, 1, __ATOMIC_SEQ_CST);
		govrt_warn("%s:%u: direct call to %s in %s: %s", site->file, site->line, site->callee,
			   g->d->to, r == -ETIMEDOUT ? "no answer in time" : r == -ECONNABORTED
			   ? "the serving process died mid-call" : why);
		*err = r == -ETIMEDOUT ? ETIMEDOUT : ECONNABORTED;
		return -2;
	}
	int result = -2;
	if (rep.status == GOV_XCALL_OK) {
		struct gov_wire_rep wr = { .err = rep.err, .body_len = rep.body_len, .value = rep.value };
		result = apply_ts(site, call, &wr, out->data + sizeof rep, GOV_XCALL_BODY_MAX, plan);
		b->ok++;
		if (result < 0) {
			result = -2;
			*err = EPROTO;
		}
	} else {
		if (rep.status == GOV_XCALL_UNKNOWN)
			b->unknown++;
		else
			b->not_run++;
		*err = rep.err ? rep.err : EHOSTUNREACH;
	}
	__atomic_store_n(&b->owner, 0, __ATOMIC_RELEASE);
	return result;
}

int govrt_direct_call(struct gov_site *site, struct gov_call *call, uint32_t id, uint32_t tid,
		      int *err)
{
	struct govrt_conn *c = govrt_conn_get();
	if (!c)
		return -1;
	struct govrt_direct *g = NULL;
	for (unsigned i = atomic_load_explicit(&c->ndirect, memory_order_acquire); i-- > 0;)
		if (c->direct[i].id == id) {
			g = &c->direct[i];
			break;
		}
	int r = -1;
	struct gov_xcall_direct *d = g ? g->d : NULL;
	for (int i = 0; d && !d->revoked && i < GOV_XCALL_DIRECT_BOXES; i++) {
		struct gov_xcall_dbox *b = &d->dbox[i];
		uint32_t free_box = 0;
		if (b->owner != 0 || !__atomic_compare_exchange_n(&b->owner, &free_box, tid, 0,
								   __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
			continue;
		/* owner first, then revoked: a revoker that then waits for the
		 * owners has seen us, or we see it (gov/xcall.h) */
		if (__atomic_load_n(&d->revoked, __ATOMIC_SEQ_CST))
			__atomic_store_n(&b->owner, 0, __ATOMIC_RELEASE);
		else
			r = call_in_box(g, b, site, call, err);
		break;
	}
	govrt_conn_put(c);
	return r;
}
