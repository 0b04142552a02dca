/* runtime/static/govrt_static.c - govrt-static: the runtime a static
 * program rewritten by govrewrite carries inside (docs/rewrite.md, "Static
 * outputs"). govrewrite points e_entry at govrt_static_start (start.S),
 * which calls govrt_static_init here and then jumps to the program's own
 * entry with its stack and rdx as the kernel left them.
 *
 * It speaks to govagent exactly as libgovrt does - the same HELLO/WELCOME
 * handshake, region, slots and frames (runtime/hello.c, wire.c,
 * decision.c, syscalls.c and util.c are compiled in as they are, over
 * shim.c) - but
 * owns nothing of the program's: no libc, no TLS, no malloc (memory is
 * mmap'ed), no errno, so it can run before the program's libc has set
 * itself up and while it is in the middle of anything. Per-thread state is
 * the slot a thread takes by CAS of its tid, as in libgovrt; the control
 * path (connecting, applying a table) is under one spin lock.
 *
 * Not here: libgovrt's dispatch.c/channel.c/govrt.c themselves (they need
 * pthreads and initial-exec TLS, which a static program's libc owns);
 * Syscall User Dispatch, dynamic eBPF rules and cross-resource forwarding
 * (a static output has none of them: see docs/rewrite.md). */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <elf.h>
#include "gov/rewrite.h"
#include "gov/wire.h"
#include "hello.h"
#include "internal.h"
#include "sys.h"

#define NSYSNO 512
#define MAX_DECISIONS 4096
#define DECISION_NATIVE 0
#define DECISION_AGENT 1
#define RETRY_FAST_NS (10 * 1000000L)
#define RETRY_SLOW_NS (250 * 1000000L)
#define RETRY_FAST_FOR_NS (2000 * 1000000L)
#define WATCHER_STACK (64 * 1024)
#define PURE_SPIN_NS 2000
#define KCMP_VM 1

struct conn {
	int fd;
	int alive;
	struct gov_region_hdr *region;
	uint64_t size;
};

struct cfg {
	char resource[GOV_NAME_MAX];
	int fail_closed, fail_errno, verbose;
	long timeout_ns, spin_ns;
};

/* Everything govrt-static keeps, in one anonymous mapping. */
struct state {
	struct cfg cfg;
	struct gov_rewrite_hdr *hdr;
	struct gov_site *sites;
	uint32_t nsites;
	int pid;                       /* the process the connection is for */
	int lock;                      /* control path: connect, table */
	struct conn *conn;             /* NULL while disconnected */
	uint64_t last_attempt_ns, outage_start_ns;
	int warned_outage, have_table, watcher_running;
	uint64_t seq;
	volatile uint8_t *probe;       /* MADV_WIPEONFORK page: 0 in a fork child */
	uint32_t ndecisions;
	char last_problem[256];
	struct gov_site by_number[NSYSNO];
	struct gov_decision decisions[MAX_DECISIONS]; /* append-only */
};
static struct state *st;

extern long govrt_static_clone(unsigned long flags, void *stack_top, void (*fn)(void *), void *arg);
extern const Elf64_Dyn _DYNAMIC[] __attribute__((visibility("hidden")));
extern const char __ehdr_start[] __attribute__((visibility("hidden")));

/* Filled by govrewrite in OUT (gov/rewrite.h). */
__attribute__((used, visibility("hidden")))
struct gov_static_link govrt_static_link = { .magic = GOV_STATIC_LINK_MAGIC };

/* ---- logging -------------------------------------------------------------- */
static void vlog(const char *level, const char *fmt, __builtin_va_list ap)
{
	char line[320];
	int n = snprintf(line, sizeof line, "govrt[%d]: %s: ", (int)sys0(SYS_getpid), level);
	vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	size_t len = strnlen(line, sizeof line - 2);
	line[len++] = '\n';
	sys3(SYS_write, 2, line, len); /* one write: lines of processes do not mix */
}

__attribute__((format(printf, 1, 2))) static void warn(const char *fmt, ...)
{
	__builtin_va_list ap;
	__builtin_va_start(ap, fmt);
	vlog("warning", fmt, ap);
	__builtin_va_end(ap);
}

__attribute__((format(printf, 1, 2))) static void debug(const char *fmt, ...)
{
	if (!st->cfg.verbose)
		return;
	__builtin_va_list ap;
	__builtin_va_start(ap, fmt);
	vlog("debug", fmt, ap);
	__builtin_va_end(ap);
}

/* Each distinct connection problem once, until a connection succeeds. */
__attribute__((format(printf, 1, 2))) static void conn_warn(const char *fmt, ...)
{
	char msg[256];
	__builtin_va_list ap;
	__builtin_va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	__builtin_va_end(ap);
	if (strcmp(msg, st->last_problem) == 0)
		return;
	memcpy(st->last_problem, msg, sizeof msg);
	warn("%s", msg);
}

/* ---- the control lock ----------------------------------------------------- */
static void lock(void)
{
	while (__atomic_exchange_n(&st->lock, 1, __ATOMIC_ACQUIRE))
		sys0(SYS_sched_yield);
}

static int trylock(void)
{
	return !__atomic_exchange_n(&st->lock, 1, __ATOMIC_ACQUIRE);
}

static void unlock(void)
{
	__atomic_store_n(&st->lock, 0, __ATOMIC_RELEASE);
}

static void *map_anon(size_t n)
{
	long p = sys6(SYS_mmap, 0, (long)n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p < 0 && p > -4096 ? NULL : (void *)p;
}

/* ---- configuration (as libgovrt reads it: runtime/README.md) -------------- */
static long env_long(const char *name, long dflt, long min, long max)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return dflt;
	char *end;
	long x = strtol(v, &end, 10);
	if (*end || x < min || x > max) {
		warn("%s=%s is not a number in %ld..%ld; using %ld", name, v, min, max, dflt);
		return dflt;
	}
	return x;
}

static void read_config(struct cfg *c, const char *built_in)
{
	const char *res = getenv("GOV_RESOURCE");
	if (res && *res && !gov_resource_name_ok(res)) {
		warn("GOV_RESOURCE=%s is not a resource name (1-63 of A-Z a-z 0-9 . _ -); ignored", res);
		res = NULL;
	}
	if (!res || !*res)
		res = built_in && gov_resource_name_ok(built_in) ? built_in : "";
	snprintf(c->resource, sizeof c->resource, "%s", res);
	c->fail_errno = 1; /* EPERM */
	const char *fail = getenv("GOV_FAIL");
	if (fail && *fail && strcmp(fail, "open") != 0) {
		if (strcmp(fail, "closed") == 0) {
			c->fail_closed = 1;
		} else if (strncmp(fail, "closed:", 7) == 0 && gov_errno_from_name(fail + 7) > 0) {
			c->fail_closed = 1;
			c->fail_errno = gov_errno_from_name(fail + 7);
		} else {
			warn("GOV_FAIL=%s is not open, closed or closed:ERRNO; using open", fail);
		}
	}
	c->timeout_ns = env_long("GOV_TIMEOUT_MS", 2000, 1, 86400000) * 1000000L;
	c->spin_ns = env_long("GOV_SPIN_US", 50, 0, 1000000) * 1000L;
	const char *log = getenv("GOV_LOG");
	c->verbose = log && strcmp(log, "debug") == 0;
}

/* ---- decisions -> verdict bytes ------------------------------------------- */
static uint32_t intern(const struct gov_decision *d)
{
	for (uint32_t i = 2; i < st->ndecisions; i++)
		if (memcmp(&st->decisions[i], d, sizeof *d) == 0)
			return i;
	if (st->ndecisions >= MAX_DECISIONS)
		return DECISION_AGENT;
	st->decisions[st->ndecisions] = *d;
	__atomic_store_n(&st->ndecisions, st->ndecisions + 1, __ATOMIC_RELEASE);
	return st->ndecisions - 1;
}

static void set_site(struct gov_site *s, uint32_t d)
{
	__atomic_store_n(&s->decision, d, __ATOMIC_RELEASE);
	__atomic_store_n(&s->verdict, d == DECISION_NATIVE ? GOV_VERDICT_NATIVE : GOV_VERDICT_DISPATCH,
			 __ATOMIC_RELEASE);
}

static void apply_rows(const struct gov_decision *rows, uint32_t n, struct gov_site *s,
		       struct gov_site *end)
{
	for (; s < end; s++) {
		uint32_t d = DECISION_NATIVE;
		for (uint32_t r = 0; r < n; r++) {
			if (gov_decision_matches(&rows[r], s->kind, s->callee, s->sysno)) {
				if (rows[r].action != GOV_ACT_NATIVE)
					d = intern(&rows[r]);
				break;
			}
		}
		set_site(s, d);
	}
}

/* The module's shared byte for sites whose number only rax knows. */
static void refresh_any(void)
{
	uint8_t any = 0;
	for (int nr = 0; nr < NSYSNO; nr++)
		any |= st->by_number[nr].verdict;
	__atomic_store_n(&st->hdr->any_syscall_verdict, any, __ATOMIC_RELEASE);
}

/* Copies the table out of the region under its sequence lock and sets
 * every verdict byte. Lock held. */
static void apply_table(struct conn *c)
{
	struct gov_region_hdr *h = c->region;
	uint32_t cap = h->table_cap ? h->table_cap : 1;
	size_t bytes = cap * sizeof(struct gov_decision);
	struct gov_decision *rows = map_anon(bytes);
	if (!rows) {
		warn("out of memory reading the decision table; keeping the old one");
		return;
	}
	uint32_t n;
	for (;;) {
		uint32_t seq = __atomic_load_n(&h->table_seq, __ATOMIC_ACQUIRE);
		if (seq & 1) {
			sys0(SYS_sched_yield);
			continue;
		}
		n = h->table_count < h->table_cap ? h->table_count : h->table_cap;
		memcpy(rows, gov_region_table(h), n * sizeof *rows);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&h->table_seq, __ATOMIC_RELAXED) == seq)
			break;
	}
	for (uint32_t r = 0; r < n; r++)
		rows[r].name[sizeof rows[r].name - 1] = 0;
	apply_rows(rows, n, st->sites, st->sites + st->nsites);
	apply_rows(rows, n, st->by_number, st->by_number + NSYSNO);
	refresh_any();
	st->have_table = 1;
	sys2(SYS_munmap, rows, bytes);
	debug("decision table rev %llu applied (%u rows)", (unsigned long long)h->table_rev, n);
}

/* Fail-closed before any table: every site asks, and without an agent
 * that means the fail errno. */
static void mark_all_agent(void)
{
	for (uint32_t i = 0; i < st->nsites; i++)
		set_site(&st->sites[i], DECISION_AGENT);
	for (int nr = 0; nr < NSYSNO; nr++)
		set_site(&st->by_number[nr], DECISION_AGENT);
	refresh_any();
}

/* ---- the connection (the handshake of docs/wire.md) ----------------------- */
/* One attempt; lock held. Returns 0 or -errno. */
static int connect_once(int quiet)
{
	char path[108];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (gov_run_path(path, sizeof path, st->cfg.resource, "sock") < 0) {
		if (!quiet)
			conn_warn("run directory path too long for a unix socket");
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = (int)sys3(SYS_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	int err = (int)sys3(SYS_connect, fd, &sa, sizeof sa);
	struct gov_msg m;
	struct gov_region_hdr *r = NULL;
	char why[256];
	if (err < 0) {
		if (!quiet)
			conn_warn("no agent for resource %s at %s (error %d); governed calls %s",
				  st->cfg.resource, path, -err,
				  st->cfg.fail_closed ? "fail with an errno" : "run natively");
	} else if (!(r = gov_hello(fd, st->cfg.resource, 0, &m, &err, why, sizeof why)) && why[0]) {
		conn_warn("%s", why);
	}
	struct conn *c = r ? map_anon(sizeof *c) : NULL;
	if (!c) {
		if (r)
			sys2(SYS_munmap, r, m.size);
		sys1(SYS_close, fd);
		return err ? err : -ENOMEM;
	}
	*c = (struct conn){ .fd = fd, .alive = 1, .region = r, .size = m.size };
	apply_table(c);
	__atomic_store_n(&st->conn, c, __ATOMIC_RELEASE);
	st->warned_outage = 0;
	st->last_problem[0] = 0;
	debug("connected to agent %s (epoch %llu)", m.name, (unsigned long long)m.epoch);
	return 0;
}

/* The watcher saw the agent go: callers waiting on a slot are woken, the
 * region stays mapped (a caller may still be reading it; an outage costs
 * one mapping) and calls take the fail outcome until an agent returns. */
static void conn_lost(struct conn *c, const char *why)
{
	lock();
	if (__atomic_exchange_n(&c->alive, 0, __ATOMIC_ACQ_REL)) {
		struct conn *expect = c;
		__atomic_compare_exchange_n(&st->conn, &expect, NULL, 0, __ATOMIC_ACQ_REL,
					    __ATOMIC_RELAXED);
		struct gov_region_hdr *h = c->region;
		uint32_t used = h->slots_used < h->nslots ? h->slots_used : h->nslots;
		for (uint32_t i = 0; i < used; i++)
			gov_futex_wake(&gov_region_slot(h, i)->state, 0x7fffffff);
		sys1(SYS_close, c->fd);
		st->outage_start_ns = gov_now_ns();
		if (!st->warned_outage) {
			st->warned_outage = 1;
			warn("lost the agent for %s (%s); governed calls %s until it returns",
			     st->cfg.resource, why,
			     st->cfg.fail_closed ? "fail with an errno" : "run natively");
		}
	}
	unlock();
}

static long retry_interval(void)
{
	return gov_now_ns() - st->outage_start_ns < RETRY_FAST_FOR_NS ? RETRY_FAST_NS : RETRY_SLOW_NS;
}

static void handle_message(struct conn *c)
{
	struct gov_msg m;
	long n = sys6(SYS_recvfrom, c->fd, (long)&m, sizeof m, MSG_DONTWAIT, 0, 0);
	if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR)) {
		conn_lost(c, n == 0 ? "it closed the connection" : "the connection broke");
		return;
	}
	if (n < 0)
		return;
	const char *bad = gov_msg_check(&m, (size_t)n);
	if (bad) {
		warn("ignored a message from the agent: field %s is wrong", bad);
		return;
	}
	if (m.type == GOV_MSG_TABLE) {
		lock();
		if (__atomic_load_n(&c->alive, __ATOMIC_ACQUIRE))
			apply_table(c);
		unlock();
	}
}

/* The watcher: a bare thread (raw clone, no TLS, every signal blocked)
 * that sleeps on the socket, applies new tables and reconnects. */
static void watcher(void *arg)
{
	int pid = (int)(long)arg;
	while (__atomic_load_n(&st->pid, __ATOMIC_RELAXED) == pid) {
		struct conn *c = __atomic_load_n(&st->conn, __ATOMIC_ACQUIRE);
		if (!c) {
			struct timespec ts = { 0, retry_interval() };
			sys2(SYS_nanosleep, &ts, 0);
			lock();
			if (!st->conn)
				connect_once(1);
			unlock();
			continue;
		}
		struct pollfd pfd = { c->fd, POLLIN, 0 };
		long r = sys3(SYS_poll, &pfd, 1, 1000);
		if (r > 0 && (pfd.revents & POLLIN))
			handle_message(c);
		else if (r > 0)
			conn_lost(c, "the connection broke");
	}
}

static void start_watcher(void)
{
	uint64_t all = ~0ull, old;
	char *stack = map_anon(WATCHER_STACK);
	if (!stack) {
		warn("cannot start govrt's watcher thread; rules will not change live");
		return;
	}
	sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, 8);
	long r = govrt_static_clone(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				    CLONE_SYSVSEM, stack + WATCHER_STACK, watcher,
				    (void *)(long)st->pid);
	sys4(SYS_rt_sigprocmask, SIG_SETMASK, &old, 0, 8);
	if (r < 0)
		warn("cannot start govrt's watcher thread (error %ld); rules will not change live", -r);
	else
		st->watcher_running = 1;
}

/* Whether this process shares its memory with the connected one: the
 * probe page is wiped in a fork child only; without it (a kernel before
 * 4.14) kcmp says, and where kcmp is refused, assume shared. */
static int shares_memory(int pid)
{
	if (st->probe)
		return *st->probe != 0;
	long same = sys5(SYS_kcmp, pid, st->pid, KCMP_VM, 0, 0);
	return same == 0 || (same < 0 && same != -ESRCH);
}

/* A process that is not the one connected: a fork child (its own memory)
 * drops the parent's connection and connects as itself; a vfork child (or
 * a clone sharing the parent's memory without being a thread) must not
 * touch the parent's state, so its agent calls take the fail outcome. */
static int own_process(void)
{
	int pid = (int)sys0(SYS_getpid);
	if (pid == __atomic_load_n(&st->pid, __ATOMIC_RELAXED))
		return 1;
	if (shares_memory(pid))
		return 0;
	if (st->probe)
		*st->probe = 1;
	st->lock = 0;
	struct conn *c = st->conn;
	if (c) {
		sys1(SYS_close, c->fd);
		sys2(SYS_munmap, c->region, c->size);
	}
	st->conn = NULL;
	st->pid = pid;
	st->outage_start_ns = gov_now_ns();
	lock();
	connect_once(1);
	unlock();
	start_watcher();
	return 1;
}

static void try_reconnect(void)
{
	uint64_t now = gov_now_ns(), last = __atomic_load_n(&st->last_attempt_ns, __ATOMIC_RELAXED);
	if (now - last < (uint64_t)retry_interval() ||
	    !__atomic_compare_exchange_n(&st->last_attempt_ns, &last, now, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_RELAXED))
		return;
	if (!trylock())
		return;
	if (!st->conn)
		connect_once(1);
	unlock();
}

/* ---- one governed call (the protocol of runtime/dispatch.c) --------------- */

/* "Fail with err" in the site's convention. A static program's errno is
 * its libc's TLS, which govrt-static does not touch: a call site that
 * reports errors through errno returns its error value with errno as it
 * was (docs/rewrite.md). */
static int return_error(const struct gov_site *site, struct gov_call *call, int err)
{
	switch (site->ret_conv) {
	case GOV_RET_RAW: call->ret = -err; break;
	case GOV_RET_ERRNUM: call->ret = err; break;
	case GOV_RET_MAP_FAILED: call->ret = -1; break;
	default: call->ret = site->types && site->types[0] == GOV_T_PTR ? 0 : -1;
	}
	return GOV_RUN_RETURN;
}

static int fail_outcome(const struct gov_site *site, struct gov_call *call)
{
	return st->cfg.fail_closed ? return_error(site, call, st->cfg.fail_errno) : GOV_RUN_NATIVE;
}

static int apply(const struct gov_site *site, struct gov_call *call, int action, int err,
		 int64_t value)
{
	switch (action) {
	case GOV_ACT_DENY: return return_error(site, call, err > 0 ? err : 1);
	case GOV_ACT_EMULATE: call->ret = value; return GOV_RUN_RETURN;
	default: return GOV_RUN_NATIVE;
	}
}

static struct gov_slot *try_slot(struct gov_region_hdr *h, uint32_t i, uint32_t tid)
{
	struct gov_slot *s = gov_region_slot(h, i);
	uint32_t free_owner = 0;
	if (s->owner_tid != 0 ||
	    !__atomic_compare_exchange_n(&s->owner_tid, &free_owner, tid, 0, __ATOMIC_ACQUIRE,
					 __ATOMIC_RELAXED))
		return NULL;
	uint32_t used = __atomic_load_n(&h->slots_used, __ATOMIC_RELAXED);
	while (used < i + 1 && !__atomic_compare_exchange_n(&h->slots_used, &used, i + 1, 0,
							    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
	return s;
}

/* A free slot: first the one this tid hashes to, so a thread tends to come
 * back to the same one (no TLS to remember it in). */
static struct gov_slot *take_slot(struct conn *c, uint32_t tid)
{
	struct gov_region_hdr *h = c->region;
	uint32_t n = h->nslots;
	uint64_t deadline = 0;
	for (;;) {
		for (uint32_t k = 0; k < n; k++) {
			struct gov_slot *s = try_slot(h, (tid + k) % n, tid);
			if (s)
				return s;
		}
		uint64_t now = gov_now_ns();
		if (!deadline)
			deadline = now + (uint64_t)st->cfg.timeout_ns;
		if (now >= deadline || !__atomic_load_n(&c->alive, __ATOMIC_ACQUIRE))
			return NULL;
		sys0(SYS_sched_yield);
	}
}

static void wake_agent(struct gov_region_hdr *h)
{
	uint32_t sleeping = 1;
	if (__atomic_load_n(&h->agent_sleeping, __ATOMIC_SEQ_CST) &&
	    __atomic_compare_exchange_n(&h->agent_sleeping, &sleeping, 0, 0, __ATOMIC_SEQ_CST,
					__ATOMIC_RELAXED))
		gov_futex_wake(&h->agent_sleeping, 1);
}

static int replied(struct gov_slot *s)
{
	return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == GOV_SLOT_REPLY;
}

/* Spin, then yield, then sleep on the state word; 1 with the reply there,
 * 0 abandoned (timeout or agent gone). */
static int wait_reply(struct conn *c, struct gov_slot *s)
{
	for (int i = 0; i < 64; i++) {
		if (replied(s))
			return 1;
		__builtin_ia32_pause();
	}
	uint64_t start = gov_now_ns(), deadline = start + (uint64_t)st->cfg.timeout_ns;
	uint64_t spin_until = start + (uint64_t)st->cfg.spin_ns, pause_until = start + PURE_SPIN_NS;
	for (unsigned i = 1;; i++) {
		if (replied(s))
			return 1;
		if ((i & 63) == 0) {
			uint64_t now = gov_now_ns();
			if (now >= spin_until || !__atomic_load_n(&c->alive, __ATOMIC_ACQUIRE))
				break;
			if (now >= pause_until) {
				sys0(SYS_sched_yield);
				continue;
			}
		}
		__builtin_ia32_pause();
	}
	for (;;) {
		uint64_t now = gov_now_ns();
		if (!__atomic_load_n(&c->alive, __ATOMIC_ACQUIRE) || now >= deadline) {
			uint32_t sv = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
			while (sv == GOV_SLOT_REQUEST)
				if (__atomic_compare_exchange_n(&s->state, &sv, GOV_SLOT_ABANDONED, 0,
								__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
					return 0;
			return sv == GOV_SLOT_REPLY;
		}
		__atomic_store_n(&s->client_sleeping, 1, __ATOMIC_SEQ_CST);
		uint32_t sv = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST);
		if (sv != GOV_SLOT_REPLY) {
			long slice = (long)(deadline - now);
			gov_futex_wait(&s->state, sv, slice > 100000000L ? 100000000L : slice);
		}
		__atomic_store_n(&s->client_sleeping, 0, __ATOMIC_RELAXED);
		if (replied(s))
			return 1;
	}
}

static int read_reply(struct gov_site *site, struct gov_call *call, struct gov_slot *s,
		      uint32_t cap, uint64_t seq)
{
	struct gov_wire_rep rep;
	const char *text;
	char why[160];
	if (gov_wire_decode_rep(&s->rep, s->payload, cap, seq, &rep, &text, why, sizeof why) < 0) {
		warn("bad reply from the agent for %s: %s", site->callee, why);
		return fail_outcome(site, call);
	}
	if (rep.status == GOV_WIRE_MALFORMED) {
		warn("agent refused the call to %s: %s", site->callee, text ? text : "malformed");
		return fail_outcome(site, call);
	}
	if (rep.action == GOV_ACT_FORWARD) /* no libffi, no serving here */
		return fail_outcome(site, call);
	return apply(site, call, rep.action, rep.err, rep.value);
}

static int ask_agent(struct gov_site *site, struct gov_call *call)
{
	if (!own_process())
		return fail_outcome(site, call);
	struct conn *c = __atomic_load_n(&st->conn, __ATOMIC_ACQUIRE);
	if (!c) {
		try_reconnect();
		if (!(c = __atomic_load_n(&st->conn, __ATOMIC_ACQUIRE)))
			return fail_outcome(site, call);
	}
	uint32_t tid = (uint32_t)sys0(SYS_gettid);
	struct gov_slot *s = take_slot(c, tid);
	if (!s)
		return fail_outcome(site, call);
	uint32_t cap = c->region->slot_size - (uint32_t)sizeof *s;
	uint64_t seq = ((uint64_t)tid << 32) | (uint32_t)__atomic_add_fetch(&st->seq, 1, __ATOMIC_RELAXED);
	char why[160];
	long len = gov_wire_encode_req(s->payload, cap, seq, site, call, why, sizeof why);
	if (len < 0) {
		__atomic_store_n(&s->owner_tid, 0, __ATOMIC_RELEASE);
		warn("%s:%u: call to %s not sent to the agent: %s", site->file, site->line,
		     site->callee, why);
		return fail_outcome(site, call);
	}
	s->len = (uint32_t)len;
	s->seq = seq;
	__atomic_store_n(&s->state, GOV_SLOT_REQUEST, __ATOMIC_SEQ_CST);
	wake_agent(c->region);
	if (!wait_reply(c, s))
		return fail_outcome(site, call);
	int r = read_reply(site, call, s, cap, seq);
	__atomic_store_n(&s->owner_tid, 0, __ATOMIC_RELEASE);
	return r;
}

static int dispatch(struct gov_site *site, struct gov_call *call)
{
	uint32_t di = __atomic_load_n(&site->decision, __ATOMIC_ACQUIRE);
	if (di >= __atomic_load_n(&st->ndecisions, __ATOMIC_ACQUIRE))
		di = DECISION_AGENT;
	const struct gov_decision *d = &st->decisions[di];
	switch (d->action) {
	case GOV_ACT_NATIVE: return GOV_RUN_NATIVE;
	case GOV_ACT_DENY:
	case GOV_ACT_EMULATE: return apply(site, call, d->action, d->err, d->value);
	default: return ask_agent(site, call); /* trace, rule, forward: the agent answers */
	}
}

/* The entry of gov/rewrite.h, written into the header's entry_slot. */
static int entry(struct gov_site *site, struct gov_rewrite_frame *f)
{
	struct gov_site *s = site;
	if (site->kind == GOV_SITE_SYSCALL && site->sysno < 0) {
		if (f->rax >= NSYSNO)
			return 0;
		s = &st->by_number[f->rax];
		if (!__atomic_load_n(&s->verdict, __ATOMIC_ACQUIRE))
			return 0;
	}
	struct gov_call call = { .arg = { f->rdi, f->rsi, f->rdx, f->a3, f->r8, f->r9 } };
	int r = dispatch(s, &call);
	f->rdi = call.arg[0], f->rsi = call.arg[1], f->rdx = call.arg[2];
	f->a3 = call.arg[3], f->r8 = call.arg[4], f->r9 = call.arg[5];
	if (r == GOV_RUN_RETURN)
		f->rax = (uint64_t)call.ret;
	return r == GOV_RUN_RETURN;
}

/* ---- start-up ------------------------------------------------------------- */

/* govrt-static is linked at 0 as a position-independent blob: before any
 * pointer in its data is used, add where it was loaded (R_X86_64_RELATIVE
 * is the only relocation its link leaves: runtime/static/static.mk checks). */
static void relocate_self(uintptr_t base)
{
	const Elf64_Rela *rela = 0;
	uint64_t relasz = 0;
	for (const Elf64_Dyn *d = _DYNAMIC; d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_RELA)
			rela = (const Elf64_Rela *)(base + d->d_un.d_ptr);
		else if (d->d_tag == DT_RELASZ)
			relasz = d->d_un.d_val;
	}
	for (uint64_t i = 0; rela && i < relasz / sizeof *rela; i++)
		if (ELF64_R_TYPE(rela[i].r_info) == R_X86_64_RELATIVE)
			*(uint64_t *)(base + rela[i].r_offset) = base + (uint64_t)rela[i].r_addend;
}

static void prepare_by_number(void)
{
	for (int nr = 0; nr < NSYSNO; nr++) {
		struct gov_site *s = &st->by_number[nr];
		const char *name = gov_syscall_name(nr);
		s->kind = GOV_SITE_SYSCALL;
		s->ret_conv = GOV_RET_RAW;
		s->nparams = 6;
		s->sysno = name ? nr : -1;
		s->callee = name ? name : "syscall";
		s->caller = "?";
		s->types = "lllllll";
		s->file = "?";
		s->id = gov_site_id(s->file, s->line, s->caller, s->callee); /* as libgovrt derives it */
	}
}

/* Called by start.S with the initial stack (argc, argv, envp, auxv);
 * returns the program's own entry. Fail-open: whatever goes wrong here,
 * the sites stay native and the program runs as if not rewritten. */
uintptr_t govrt_static_init(long *sp)
{
	uintptr_t base = (uintptr_t)__ehdr_start;
	relocate_self(base);
	struct gov_static_link *l = &govrt_static_link;
	uint64_t bias = base - l->base;
	uintptr_t program_entry = l->entry + bias;
	govrt_static_envp = (char **)(sp + 1 + sp[0] + 1);
	struct gov_rewrite_hdr *h = (struct gov_rewrite_hdr *)(l->hdr + bias);
	if (h->magic != GOV_REWRITE_MAGIC || h->version != GOV_REWRITE_VERSION)
		return program_entry;
	gov_rewrite_relocate(h, bias);
	struct cfg cfg = { 0 };
	read_config(&cfg, (const char *)(uintptr_t)h->resource);
	if (!cfg.resource[0])
		return program_entry; /* not governed: verdicts stay native, nothing more to do */
	if (!(st = map_anon(sizeof *st)))
		return program_entry;
	st->cfg = cfg;
	st->hdr = h;
	st->sites = (struct gov_site *)(uintptr_t)h->sites;
	st->nsites = h->nsites;
	st->pid = (int)sys0(SYS_getpid);
	st->decisions[DECISION_NATIVE].action = GOV_ACT_NATIVE;
	st->decisions[DECISION_AGENT].action = GOV_ACT_TRACE;
	st->ndecisions = 2;
	prepare_by_number();
	__atomic_store_n(&h->entry_slot, (uint64_t)(uintptr_t)entry, __ATOMIC_RELEASE);
	st->probe = map_anon(4096);
	if (st->probe && sys3(SYS_madvise, st->probe, 4096, MADV_WIPEONFORK) < 0)
		st->probe = NULL;
	if (st->probe)
		*st->probe = 1;
	lock();
	st->outage_start_ns = gov_now_ns();
	if (connect_once(0) < 0 && st->cfg.fail_closed)
		mark_all_agent();
	unlock();
	start_watcher();
	return program_entry;
}
