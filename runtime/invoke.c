/* runtime/invoke.c - the callee side of a cross-resource call, inside govrt:
 * a process that exports functions serves them to its agent.
 *
 * govrt_serve_start(EXPORTS) reads the export list (one function a line,
 * `NAME TYPES`, then optionally a TAB and its C prototype; '#' comments),
 * finds each function with dlsym (functions of the executable need
 * -rdynamic), prepares a libffi call interface for its type string, and
 * starts one thread. The thread connects to the resource's agent as a
 * server (HELLO, role GOV_ROLE_SERVER, asking for a shared mailbox, through
 * which the frames then travel), then answers each CALL frame: the
 * call's request frame is decoded by the one wire codec, its name and type
 * string must be those of an exported function, the arguments are laid out
 * for libffi (strings and input buffers point into the frame; each output
 * buffer is a zeroed buffer of the capacity its `z` names) and the
 * function runs; RESULT carries the return value, errno and the output
 * buffers back. The thread reconnects when the agent goes and comes back.
 * The agent may also hand it a direct grant (GRANT, gov/xcall.h): boxes
 * that a caller's govrt writes calls into itself, each served by a thread
 * of its own here; calls still run one at a time in the process (the run
 * gate), as they do when the agent brings them, unless the resource's
 * declaration allows more (`concurrency:`, which the agent passes on). A
 * grant ends when either agent revokes it or this process loses its agent. A thread of each connection
 * answers the agent's liveness probes, so that a call waiting behind a long
 * one does not make the agent take the process for hung.
 *
 * It is not the caller's side (xcall.c) nor any transport between agents
 * (agent/edge*.c). Documented in docs/xcall.md. */
#include <dlfcn.h>
#include <errno.h>
#include <ffi.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "gov/typestr.h"
#include "gov/wire.h"
#include "govrt_private.h"
#include "xcall_io.h"

#define RECONNECT_NS (50 * 1000000L)
#define IDLE_SLICE_MS 100 /* an idle server thread looks around this often */

struct export {
	char name[GOV_NAME_MAX];
	char types[GOV_TYPES_MAX];
	struct gov_typestr ts;
	void (*fn)(void);
	ffi_cif cif;
	ffi_type *args[GOV_MAX_ARGS];
};

static struct {
	struct export *ex;
	unsigned n;
	pthread_t thread;
	int started;
	atomic_ullong served;
	atomic_int connected;
	atomic_ullong direct_served;
	atomic_uint concurrency; /* from the agent: calls at once (0: one) */
} srv;

/* Exported functions run one at a time in the process, whichever thread
 * brought the call: a library's functions need not be thread-safe. A
 * resource declared with `concurrency: N` lets N run at once. A counter
 * and a futex rather than a mutex, as cheap when nobody waits. */
static struct {
	atomic_uint running, waiters;
} gate;

static void gate_wait(unsigned seen)
{
	atomic_fetch_add(&gate.waiters, 1);
	/* a leaver that saw no waiter changed running before we sleep on it */
	gov_futex_wait((volatile uint32_t *)&gate.running, seen, -1);
	atomic_fetch_sub(&gate.waiters, 1);
}

static void run_enter(void)
{
	for (;;) {
		unsigned n = atomic_load(&gate.running), max = atomic_load(&srv.concurrency);
		if (n < (max ? max : 1)) {
			if (atomic_compare_exchange_weak(&gate.running, &n, n + 1))
				return;
			continue;
		}
		gate_wait(n);
	}
}

static void run_leave(void)
{
	atomic_fetch_sub(&gate.running, 1);
	if (atomic_load(&gate.waiters))
		gov_futex_wake((volatile uint32_t *)&gate.running, INT_MAX);
}

/* Returns once no exported function runs here. */
static void run_idle(void)
{
	for (unsigned n; (n = atomic_load(&gate.running)) != 0;)
		gate_wait(n);
}

/* The agent's word on concurrency: a raised limit lets waiters in. */
static void take_concurrency(const struct gov_xcall_serve *sv)
{
	unsigned n = __atomic_load_n(&sv->concurrency, __ATOMIC_SEQ_CST);
	if (atomic_exchange(&srv.concurrency, n) != n && atomic_load(&gate.waiters))
		gov_futex_wake((volatile uint32_t *)&gate.running, INT_MAX);
}

static ffi_type *ffi_of(char code)
{
	switch (code) {
	case GOV_T_VOID: return &ffi_type_void;
	case GOV_T_INT: return &ffi_type_sint32;
	case GOV_T_UINT: return &ffi_type_uint32;
	case GOV_T_LONG: return &ffi_type_sint64;
	case GOV_T_ULONG: case GOV_T_SIZE: return &ffi_type_uint64;
	case GOV_T_DOUBLE: return &ffi_type_double;
	case GOV_T_FLOAT: return &ffi_type_float;
	case GOV_T_PTR: case GOV_T_STR: case GOV_T_BUF: case GOV_T_OUTBUF: return &ffi_type_pointer;
	}
	return NULL;
}

/* The libffi type of the struct at t[*pos] ('{'): an array member is its
 * element repeated (libffi has no arrays; the x86-64 SysV classification
 * looks at eightbytes, where both are the same). Kept for as long as the
 * export is. NULL if out of memory. */
static ffi_type *ffi_struct(const char *t, size_t *pos)
{
	size_t n = 0, cap = 8;
	ffi_type **el = malloc(cap * sizeof *el), *st = calloc(1, sizeof *st);
	if (!el || !st)
		goto oom;
	for ((*pos)++; t[*pos] != '}';) {
		unsigned long count = 1;
		if (t[*pos] >= '1' && t[*pos] <= '9')
			count = strtoul(t + *pos, NULL, 10);
		while (t[*pos] >= '0' && t[*pos] <= '9')
			(*pos)++;
		ffi_type *m;
		if (t[*pos] == '{')
			m = ffi_struct(t, pos);
		else
			m = t[*pos] == 'c' ? &ffi_type_uint8 : t[*pos] == 'h' ? &ffi_type_uint16
									   : ffi_of(t[*pos]), (*pos)++;
		if (!m)
			goto oom;
		for (unsigned long k = 0; k < count; k++) {
			if (n + 2 > cap) {
				ffi_type **grown = realloc(el, (cap *= 2) * sizeof *el);
				if (!grown)
					goto oom;
				el = grown;
			}
			el[n++] = m;
		}
	}
	(*pos)++;
	el[n] = NULL;
	st->type = FFI_TYPE_STRUCT;
	st->elements = el;
	return st;
oom:
	free(el);
	free(st);
	return NULL;
}

/* The libffi type of item i of a parsed type string. */
static ffi_type *ffi_item(const char *types, const struct gov_typestr *ts, unsigned i)
{
	size_t pos = ts->at[i];
	return ts->top[i] == GOV_T_STRUCT ? ffi_struct(types, &pos) : ffi_of(ts->top[i]);
}

static int parse_line(char *line, const char *path, unsigned lineno, struct export *e,
		      char *err, size_t errlen)
{
	char *tab = strchr(line, '\t');
	if (tab)
		*tab = 0; /* the C prototype after the TAB is for people and tools */
	char name[256], types[256], extra[8];
	int k = sscanf(line, "%255s %255s %7s", name, types, extra);
	if (k != 2) {
		snprintf(err, errlen, "%s:%u: expected 'NAME TYPES' (then optionally a TAB and the prototype)",
			 path, lineno);
		return -1;
	}
	if (strlen(name) >= GOV_NAME_MAX) {
		snprintf(err, errlen, "%s:%u: function name %s is longer than %d characters", path,
			 lineno, name, GOV_NAME_MAX - 1);
		return -1;
	}
	const char *why;
	size_t where;
	memset(e, 0, sizeof *e);
	if (gov_typestr_check(types, &e->ts, &why, &where) < 0) {
		snprintf(err, errlen, "%s:%u: %s: type string \"%s\" at character %zu: %s", path,
			 lineno, name, types, where + 1, why);
		return -1;
	}
	strcpy(e->name, name);
	strcpy(e->types, types);
	dlerror();
	e->fn = (void (*)(void))dlsym(RTLD_DEFAULT, name);
	if (!e->fn) {
		snprintf(err, errlen, "%s:%u: %s is not a function of this process "
			 "(link the executable with -rdynamic, or load the library that has it)",
			 path, lineno, name);
		return -1;
	}
	unsigned np = e->ts.n - 1;
	ffi_type *rt = ffi_item(types, &e->ts, 0);
	for (unsigned i = 0; i < np; i++)
		if (!(e->args[i] = ffi_item(types, &e->ts, i + 1)))
			rt = NULL;
	if (!rt || ffi_prep_cif(&e->cif, FFI_DEFAULT_ABI, np, rt, e->args) != FFI_OK) {
		snprintf(err, errlen, "%s:%u: %s: libffi cannot call type string %s", path, lineno,
			 name, types);
		return -1;
	}
	return 0;
}

static int load_exports(const char *path, struct export **out, unsigned *nout,
			char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open the export list: %s", path, strerror(errno));
		return -1;
	}
	struct export *ex = NULL;
	unsigned n = 0;
	char line[1024];
	int rc = 0;
	for (unsigned lineno = 1; fgets(line, sizeof line, f); lineno++) {
		line[strcspn(line, "\n")] = 0;
		char *hash = strchr(line, '#'), *p = line;
		if (hash)
			*hash = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			continue;
		struct export *grown = realloc(ex, (n + 1) * sizeof *ex);
		if (!grown) {
			snprintf(err, errlen, "%s: out of memory", path);
			rc = -1;
			break;
		}
		ex = grown;
		if ((rc = parse_line(p, path, lineno, &ex[n], err, errlen)) < 0)
			break;
		for (unsigned i = 0; i < n; i++)
			if (strcmp(ex[i].name, ex[n].name) == 0) {
				snprintf(err, errlen, "%s:%u: %s is listed twice", path, lineno, ex[n].name);
				rc = -1;
			}
		if (rc < 0)
			break;
		n++;
	}
	fclose(f);
	if (!rc && !n) {
		snprintf(err, errlen, "%s: the export list names no function", path);
		rc = -1;
	}
	if (rc < 0) {
		free(ex);
		return -1;
	}
	/* the array moved as it grew: each call interface points at its own
	 * export's argument types */
	for (unsigned i = 0; i < n; i++)
		ex[i].cif.arg_types = ex[i].args;
	*out = ex;
	*nout = n;
	return 0;
}

static const struct export *find_export(const char *name)
{
	for (unsigned i = 0; i < srv.n; i++)
		if (strcmp(srv.ex[i].name, name) == 0)
			return &srv.ex[i];
	return NULL;
}

/* The return value in a gov_call word: bit for bit in the low bytes. */
static int64_t ret_word(char code, const void *rv)
{
	int64_t w = 0;
	switch (code) {
	case GOV_T_VOID: return 0;
	case GOV_T_INT: return (int32_t)*(const ffi_sarg *)rv;
	case GOV_T_UINT: return (uint32_t)*(const ffi_arg *)rv;
	case GOV_T_FLOAT: memcpy(&w, rv, sizeof(float)); return w;
	default: memcpy(&w, rv, 8); return w;
	}
}

/* Runs one decoded call. Fills rep (status, value, err, text) and the
 * out-buffers into out; returns the RESULT body's length. */
static uint32_t invoke(const struct export *e, const struct gov_wire_call *c,
		       struct gov_xcall_hdr *rep, unsigned char *out)
{
	if (!e || strcmp(e->types, c->hdr->types) != 0) {
		rep->status = GOV_XCALL_NOT_RUN;
		rep->err = ENOSYS;
		snprintf(rep->text, sizeof rep->text, e ? "%s is exported as %s, called as %s"
						     : "%s is not exported by this process",
			 c->hdr->callee, e ? e->types : "", c->hdr->types);
		return 0;
	}
	const char *params = e->ts.top + 1;
	uint32_t cap[GOV_MAX_ARGS];
	long body = gov_xcall_outbufs_ts(&e->ts, c->value, cap);
	if (body < 0) {
		rep->status = GOV_XCALL_NOT_RUN;
		rep->err = EMSGSIZE;
		snprintf(rep->text, sizeof rep->text, "out-buffers of %.40s exceed %u bytes", e->name,
			 GOV_XCALL_BODY_MAX);
		return 0;
	}
	memset(out, 0, (size_t)body);
	union { int32_t i; uint32_t u; int64_t l; uint64_t L; double d; float f; const void *p; }
		a[GOV_MAX_ARGS];
	void *argp[GOV_MAX_ARGS];
	static const char empty[8];
	_Alignas(16) unsigned char rebuilt[GOV_MAX_ARGS * GOV_STRUCT_MAX];
	size_t used = 0;
	/* a struct return is written first in the body, the out-buffers after */
	size_t off = e->ts.top[0] == GOV_T_STRUCT ? GOV_XCALL_PAD8(e->ts.size[0]) : 0;
	for (int i = 0; params[i]; i++) {
		uint64_t v = c->value[i];
		switch (params[i]) {
		case GOV_T_INT: a[i].i = (int32_t)v; break;
		case GOV_T_UINT: a[i].u = (uint32_t)v; break;
		case GOV_T_DOUBLE: memcpy(&a[i].d, &v, 8); break;
		case GOV_T_FLOAT: memcpy(&a[i].f, &v, 4); break;
		case GOV_T_STR: case GOV_T_BUF:
			/* NULL stays NULL; a zero-length buffer still points somewhere */
			a[i].p = c->data[i] ? c->data[i] : v ? (const void *)empty : NULL;
			break;
		case GOV_T_OUTBUF:
			a[i].p = v ? out + off : NULL;
			off += GOV_XCALL_PAD8(cap[i]);
			break;
		default: a[i].L = v;
		}
		/* a struct by value: libffi reads it from its bytes in the frame
		 * (the decoder checked there are exactly its size of them); one
		 * with string or buffer members is rebuilt on the stack with them
		 * pointing at their bytes in the frame, which outlives the call */
		argp[i] = params[i] == GOV_T_STRUCT ? (void *)c->data[i] : (void *)&a[i];
		if (params[i] == GOV_T_STRUCT && c->len[i] != e->ts.size[i + 1]) {
			gov_wire_struct_rebuild(c, i, rebuilt + used);
			argp[i] = rebuilt + used;
			used += GOV_XCALL_PAD8(e->ts.size[i + 1]);
		}
	}
	union { ffi_arg r; double d; float f; } rv = { 0 };
	/* libffi writes a struct return where it is told; the body has room
	 * for it padded to 8 (and at least an ffi_arg, which a small one is
	 * widened to) */
	void *rp = e->ts.top[0] == GOV_T_STRUCT ? (e->ts.size[0] < sizeof(ffi_arg) ? (void *)&rv : out)
						: (void *)&rv;
	errno = 0;
	ffi_call((ffi_cif *)&e->cif, e->fn, rp, argp);
	rep->err = errno;
	if (rp == &rv && e->ts.top[0] == GOV_T_STRUCT)
		memcpy(out, &rv, e->ts.size[0]);
	rep->value = e->ts.top[0] == GOV_T_STRUCT ? 0 : ret_word(e->types[0], &rv);
	rep->status = GOV_XCALL_OK;
	atomic_fetch_add(&srv.served, 1);
	return (uint32_t)body;
}

/* One CALL's body (in, len bytes) answered into rep (a RESULT header its
 * caller made) and out. */
static void serve_one(const unsigned char *in, uint32_t len, struct gov_xcall_hdr *rep,
		      unsigned char *out)
{
	struct gov_wire_call call;
	char why[160];
	/* the export first, from the name (looked at only if it is a string):
	 * a request with its type string is then decoded with the export's
	 * parse of it, not a new one */
	const struct gov_wire_req *req = (const void *)in;
	const struct export *e = len >= sizeof *req && memchr(req->callee, 0, sizeof req->callee)
				 ? find_export(req->callee) : NULL;
	if (gov_wire_decode_req_known(in, len, e ? e->types : NULL, e ? &e->ts : NULL, &call,
				      why, sizeof why) < 0) {
		rep->status = GOV_XCALL_MALFORMED;
		rep->err = EPROTO;
		snprintf(rep->text, sizeof rep->text, "%.95s", why);
		return;
	}
	run_enter();
	rep->body_len = invoke(e, &call, rep, out);
	run_leave();
}

/* ---- direct grants ---- */

/* A grant this process serves: one thread per box; the last one to leave
 * unmaps it. */
struct grant {
	struct gov_xcall_direct *d;
	atomic_int threads;
	struct grant *next;   /* on the connection's list (serve_conn) */
};
struct box_arg {
	struct grant *g;
	int i;
};

/* A box's thread: serves the frames put in it until the grant is revoked
 * and no call is in the box. A caller takes the box (owner) before it
 * looks at revoked, so a thread that sees revoked with no owner has seen
 * the last call it could get. */
static void *box_thread(void *p)
{
	struct box_arg ba = *(struct box_arg *)p;
	free(p);
	struct gov_xcall_direct *d = ba.g->d;
	struct gov_xcall_dbox *db = &d->dbox[ba.i];
	unsigned char *in = malloc(GOV_XCALL_BODY_MAX), *out = malloc(GOV_XCALL_BODY_MAX);
	uint32_t seen = 0; /* a fresh box: a call may be in it before this thread runs */
	long spin = govrt.cfg.spin_ns;
	struct gov_xcall_dhdr h;
	struct gov_xcall_hdr rep;
	while (in && out) {
		int r = gov_xcall_box_wait(&db->box.mb[0], &seen, -1, spin, IDLE_SLICE_MS, -1);
		if (r == 0) { /* a slice went by with no frame */
			/* revoked first, then the owner: a caller takes the
			 * owner before it reads revoked (gov/xcall.h), so one
			 * that saw no revocation is seen here as the owner */
			int gone = __atomic_load_n(&d->revoked, __ATOMIC_SEQ_CST);
			uint32_t o = __atomic_load_n(&db->owner, __ATOMIC_SEQ_CST);
			if (gone && (o == 0 || o == GOV_XCALL_DBOX_LOST))
				break;
			spin = 0; /* idle: sleep at once next time */
			continue;
		}
		spin = govrt.cfg.spin_ns;
		/* the body is copied out before it is decoded: the caller's
		 * process shares the box and could change it under the decoder */
		r = gov_xcall_dframe_get(&db->box.mb[0], &h, in, NULL, 0);
		gov_xcall_init(&rep, GOV_XCALL_RESULT);
		rep.status = GOV_XCALL_MALFORMED; /* a caller wrote garbage: answer */
		rep.err = EPROTO;                 /* it, so it does not wait for its timeout */
		if (r == 1 && h.type == GOV_XCALL_CALL) {
			serve_one(in, h.body_len, &rep, out);
			atomic_fetch_add(&srv.direct_served, 1);
		}
		struct gov_xcall_dhdr a = { .type = GOV_XCALL_RESULT, .status = rep.status,
					    .body_len = rep.body_len, .req_id = r == 1 ? h.req_id : 0,
					    .value = rep.value, .err = rep.err };
		gov_xcall_dframe_send(&db->box.mb[1], &a, out);
	}
	free(in);
	free(out);
	if (atomic_fetch_sub(&ba.g->threads, 1) == 1) {
		munmap(d, sizeof *d);
		free(ba.g);
	}
	return NULL;
}

/* The grants a connection brought. While it has any, a watcher thread
 * revokes them the moment the agent goes: the thread that serves the
 * agent's own calls may be inside a long one and notice late. */
struct conn_grants {
	int fd;
	pthread_mutex_t lock;
	struct grant *list;
	atomic_int stop;
	pthread_t watcher;
	int watching;
};

static void revoke_all(struct conn_grants *cg)
{
	pthread_mutex_lock(&cg->lock);
	for (struct grant *g = cg->list; g; g = g->next)
		__atomic_store_n(&g->d->revoked, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&cg->lock);
}

static void *grants_watcher(void *p)
{
	struct conn_grants *cg = p;
	while (!atomic_load(&cg->stop)) {
		struct pollfd pf = { .fd = cg->fd, .events = POLLIN | POLLRDHUP };
		int r = poll(&pf, 1, IDLE_SLICE_MS);
		if (r <= 0)
			continue;
		if ((pf.revents & (POLLHUP | POLLERR | POLLRDHUP)) || gov_xcall_peer_gone(cg->fd)) {
			revoke_all(cg);
			break;
		}
		/* a GRANT's packet the serving thread has yet to read */
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* GRANT from the agent: the memfd comes beside it on the socket. Starts
 * the box threads; the RESULT says whether this process took it. */
static void take_grant(struct conn_grants *cg, struct gov_xcall_hdr *rep)
{
	int fd = cg->fd;
	char byte;
	int memfd;
	long n = gov_fd_recv(fd, &byte, 1, 2000, &memfd);
	struct gov_xcall_direct *d = memfd >= 0 ? gov_xcall_direct_map(memfd) : NULL;
	if (memfd >= 0)
		close(memfd);
	rep->status = GOV_XCALL_NOT_RUN;
	rep->err = EINVAL;
	if (!d) {
		snprintf(rep->text, sizeof rep->text, n == 1 && memfd >= 0
			 ? "the grant's memory is not a direct grant" : "no memfd came with GRANT");
		return;
	}
	struct grant *g = calloc(1, sizeof *g);
	if (!g) {
		munmap(d, sizeof *d);
		rep->err = ENOMEM;
		snprintf(rep->text, sizeof rep->text, "out of memory");
		return;
	}
	g->d = d;
	atomic_store(&g->threads, GOV_XCALL_DIRECT_BOXES + 1); /* +1: ours, until started */
	int started = 0;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < GOV_XCALL_DIRECT_BOXES; i++) {
		struct box_arg *ba = malloc(sizeof *ba);
		pthread_t t;
		if (ba) {
			*ba = (struct box_arg){ g, i };
			if (pthread_create(&t, &at, box_thread, ba) == 0) {
				started++;
				continue;
			}
			free(ba);
		}
		atomic_fetch_sub(&g->threads, 1);
	}
	pthread_attr_destroy(&at);
	if (started < GOV_XCALL_DIRECT_BOXES) {
		/* a box nobody serves would hang its caller: refuse it whole */
		__atomic_store_n(&d->revoked, 1, __ATOMIC_SEQ_CST);
		rep->err = EAGAIN;
		snprintf(rep->text, sizeof rep->text, "could start only %d of %d box threads",
			 started, GOV_XCALL_DIRECT_BOXES);
	} else {
		__atomic_store_n(&d->server_pid, (int32_t)getpid(), __ATOMIC_RELEASE);
		rep->status = GOV_XCALL_OK;
		rep->err = 0;
	}
	pthread_mutex_lock(&cg->lock);
	g->next = cg->list;
	cg->list = g;
	pthread_mutex_unlock(&cg->lock);
	if (!cg->watching && rep->status == GOV_XCALL_OK)
		cg->watching = pthread_create(&cg->watcher, NULL, grants_watcher, cg) == 0;
}

/* The agent went: its grants go with it (callers take the agents' path,
 * which finds the new agent's rules). */
static void drop_grants(struct conn_grants *cg)
{
	atomic_store(&cg->stop, 1);
	if (cg->watching)
		pthread_join(cg->watcher, NULL);
	struct grant *list = cg->list;
	cg->list = NULL;
	while (list) {
		struct grant *g = list;
		list = g->next;
		__atomic_store_n(&g->d->revoked, 1, __ATOMIC_SEQ_CST);
		if (atomic_fetch_sub(&g->threads, 1) == 1) {
			munmap(g->d, sizeof *g->d);
			free(g);
		}
	}
}

/* Answers the agent's liveness probes (struct gov_xcall_serve) for as
 * long as the connection lasts, from a thread of its own: the threads that
 * serve calls may wait behind a long one, and the agent must not take a
 * busy process for a hung one. Idle, it sleeps on the probe word. */
struct prober {
	struct gov_xcall_serve *sv;
	atomic_int stop;
	pthread_t thread;
};

static void *prober_thread(void *p)
{
	struct prober *pr = p;
	uint32_t seen = __atomic_load_n(&pr->sv->ping, __ATOMIC_SEQ_CST);
	while (!atomic_load(&pr->stop)) {
		uint32_t now = __atomic_load_n(&pr->sv->ping, __ATOMIC_SEQ_CST);
		if (now == seen) {
			gov_futex_wait(&pr->sv->ping, seen, -1);
			continue;
		}
		seen = now;
		take_concurrency(pr->sv);
		__atomic_store_n(&pr->sv->pong, now, __ATOMIC_SEQ_CST);
		gov_futex_wake(&pr->sv->pong, 1);
	}
	return NULL;
}

static void prober_stop(struct prober *pr)
{
	atomic_store(&pr->stop, 1);
	/* a changed word: the thread cannot go to sleep on it after this */
	__atomic_add_fetch(&pr->sv->ping, 1, __ATOMIC_SEQ_CST);
	gov_futex_wake(&pr->sv->ping, 1);
	pthread_join(pr->thread, NULL);
}

static int connect_agent(struct gov_xcall_serve **sv)
{
	char path[PATH_MAX];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (gov_run_path(path, sizeof path, govrt.cfg.resource, "sock") < 0 ||
	    strlen(path) >= sizeof sa.sun_path)
		return -1;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct gov_msg m = { .magic = GOV_MSG_MAGIC, .version = GOV_WIRE_VERSION,
			     .type = GOV_MSG_HELLO, .role = GOV_ROLE_SERVER,
			     .size = GOV_XCALL_SERVE_SHARED, .pid = (int32_t)getpid() };
	snprintf(m.name, sizeof m.name, "%s", govrt.cfg.resource);
	struct timeval tv = { 2, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    send(fd, &m, sizeof m, MSG_NOSIGNAL) != (ssize_t)sizeof m) {
		close(fd);
		return -1;
	}
	int memfd;
	/* WELCOME, with the mailbox's memfd if the agent made one */
	long n = gov_fd_recv(fd, &m, sizeof m, 2000, &memfd);
	const char *bad = n < 0 ? strerror((int)-n) : gov_msg_check(&m, (size_t)n);
	*sv = NULL;
	if (!bad && memfd >= 0 && !(*sv = gov_xcall_serve_map(memfd)))
		bad = "size (of the mailbox)";
	if (memfd >= 0)
		close(memfd);
	if (bad || m.type != GOV_MSG_WELCOME || m.status != 0) {
		govrt_warn("agent of %s refused to take this process's exports: %s",
			   govrt.cfg.resource, bad ? bad : m.text);
		if (*sv)
			munmap(*sv, sizeof **sv);
		close(fd);
		return -1;
	}
	tv.tv_sec = 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

/* Serves one connection until the agent goes: frames in the mailbox if the
 * agent gave one, else on the socket. An idle thread looks at the socket
 * every IDLE_SLICE_MS to notice that the agent went. */
static void serve_conn(int fd, struct gov_xcall_serve *sv, unsigned char *in, unsigned char *out)
{
	struct gov_xcall_hdr h, rep;
	char why[160];
	struct conn_grants grants = { .fd = fd, .lock = PTHREAD_MUTEX_INITIALIZER };
	struct gov_xcall_box *box = sv ? &sv->box : NULL;
	struct prober pr = { .sv = sv };
	if (sv)
		take_concurrency(sv);
	/* without it the agent takes a long call for a hang, as a socket
	 * server's */
	int probing = sv && pthread_create(&pr.thread, NULL, prober_thread, &pr) == 0;
	/* a fresh mailbox: the agent may put a call in it before we look */
	uint32_t seen = 0;
	for (;;) {
		int r = box ? gov_xcall_box_recv(&box->mb[0], &seen, fd, govrt.cfg.spin_ns,
						 IDLE_SLICE_MS, -1, &h, in, GOV_XCALL_BODY_MAX,
						 why, sizeof why)
			    : gov_xcall_recv(fd, 0, &h, in, GOV_XCALL_BODY_MAX, -1, why, sizeof why);
		if (r <= 0) {
			if (r == -EPROTO) {
				govrt_warn("agent sent a frame this govrt cannot read: %s", why);
				continue;
			}
			break;
		}
		if (h.type == GOV_XCALL_GRANT && box) {
			gov_xcall_init(&rep, GOV_XCALL_RESULT);
			rep.req_id = h.req_id;
			take_grant(&grants, &rep);
			gov_xcall_box_send(&box->mb[1], &rep, out);
			continue;
		}
		if (h.type != GOV_XCALL_CALL)
			continue;
		gov_xcall_init(&rep, GOV_XCALL_RESULT);
		rep.caller_epoch = h.caller_epoch;
		rep.req_id = h.req_id;
		serve_one(in, h.body_len, &rep, out);
		if (box)
			gov_xcall_box_send(&box->mb[1], &rep, out);
		else if (gov_xcall_send(fd, 0, &rep, out) < 0)
			break;
	}
	drop_grants(&grants);
	if (probing)
		prober_stop(&pr);
}

static void *serve_thread(void *arg)
{
	(void)arg;
	unsigned char *in = malloc(GOV_XCALL_BODY_MAX), *out = malloc(GOV_XCALL_BODY_MAX);
	if (!in || !out) {
		govrt_warn("cannot serve exports: out of memory");
		return NULL;
	}
	for (;;) {
		/* not back to an agent while a direct call still runs here:
		 * its first call would wait behind it */
		run_idle();
		struct gov_xcall_serve *sv;
		int fd = connect_agent(&sv);
		if (fd < 0) {
			struct timespec ts = { 0, RECONNECT_NS };
			nanosleep(&ts, NULL);
			continue;
		}
		atomic_store(&srv.connected, 1);
		serve_conn(fd, sv, in, out);
		atomic_store(&srv.connected, 0);
		if (sv)
			munmap(sv, sizeof *sv);
		close(fd);
	}
	return NULL;
}

int govrt_serve_start(const char *exports_path, char *err, size_t errlen)
{
	char dummy[8];
	if (!err) {
		err = dummy;
		errlen = sizeof dummy;
	}
	govrt_init();
	if (!exports_path)
		exports_path = getenv("GOV_EXPORTS");
	if (!exports_path || !*exports_path) {
		snprintf(err, errlen, "no export list: pass a path or set GOV_EXPORTS");
		return -1;
	}
	if (!govrt.cfg.resource[0]) {
		snprintf(err, errlen, "this process belongs to no resource (set GOV_RESOURCE)");
		return -1;
	}
	pthread_mutex_lock(&govrt.lock);
	int rc = -1;
	if (srv.started) {
		snprintf(err, errlen, "this process already serves its exports");
	} else if (load_exports(exports_path, &srv.ex, &srv.n, err, errlen) == 0) {
		int r = pthread_create(&srv.thread, NULL, serve_thread, NULL);
		if (r)
			snprintf(err, errlen, "cannot start the serving thread: %s", strerror(r));
		else {
			srv.started = 1;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&govrt.lock);
	return rc;
}

uint64_t govrt_served(void)
{
	return atomic_load(&srv.served);
}

uint64_t govrt_served_direct(void)
{
	return atomic_load(&srv.direct_served);
}

int govrt_serving(void)
{
	return atomic_load(&srv.connected);
}
