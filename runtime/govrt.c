/* runtime/govrt.c - govrt's process-wide part: configuration from the
 * environment, the registry of modules and their sites, turning the agent's
 * decision table into verdict bytes, and the counters.
 *
 * Everything here runs on the control path (start-up, a new module, a new
 * table), under govrt.lock. The data path is in dispatch.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "govrt_private.h"

struct govrt govrt = { .lock = PTHREAD_MUTEX_INITIALIZER,
		       .counters_lock = PTHREAD_MUTEX_INITIALIZER };
__thread struct govrt_thread_counters govrt_my_counters __attribute__((tls_model("initial-exec")));
static pthread_key_t counters_key;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void vlog(const char *level, const char *fmt, va_list ap)
{
	char line[512];
	int n = snprintf(line, sizeof line, "govrt[%d]: %s: ", (int)getpid(), level);
	if (n < 0)
		return;
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	size_t len = strnlen(line, sizeof line - 2);
	line[len++] = '\n';
	/* one write, so lines of concurrent processes do not interleave */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void govrt_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog("warning", fmt, ap);
	va_end(ap);
}

void govrt_debug(const char *fmt, ...)
{
	if (!govrt.cfg.verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog("debug", fmt, ap);
	va_end(ap);
}

static long env_long(const char *name, long dflt, long min, long max)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return dflt;
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || *end || x < min || x > max) {
		govrt_warn("%s=%s is not a number in %ld..%ld; using %ld", name, v, min, max, dflt);
		return dflt;
	}
	return x;
}

static void read_config(struct govrt_config *cfg)
{
	const char *res = getenv("GOV_RESOURCE");
	if (res && *res) {
		if (gov_resource_name_ok(res)) {
			snprintf(cfg->resource, sizeof cfg->resource, "%s", res);
			cfg->resource_from_env = 1;
		} else {
			govrt_warn("GOV_RESOURCE=%s is not a resource name (1-63 of A-Z a-z 0-9 . _ -); ignored", res);
		}
	}
	cfg->fail_errno = EPERM;
	const char *fail = getenv("GOV_FAIL");
	if (fail && *fail && strcmp(fail, "open") != 0) {
		if (strcmp(fail, "closed") == 0) {
			cfg->fail_closed = 1;
		} else if (strncmp(fail, "closed:", 7) == 0 && gov_errno_from_name(fail + 7) > 0) {
			cfg->fail_closed = 1;
			cfg->fail_errno = gov_errno_from_name(fail + 7);
		} else {
			govrt_warn("GOV_FAIL=%s is not open, closed or closed:ERRNO; using open", fail);
		}
	}
	cfg->timeout_ns = env_long("GOV_TIMEOUT_MS", 2000, 1, 86400000) * 1000000L;
	cfg->spin_ns = env_long("GOV_SPIN_US", 50, 0, 1000000) * 1000L;
	const char *log = getenv("GOV_LOG");
	cfg->verbose = log && strcmp(log, "debug") == 0;
}

static void init_once_fn(void)
{
	read_config(&govrt.cfg);
	govrt.decisions[GOVRT_DECISION_NATIVE].action = GOV_ACT_NATIVE;
	govrt.decisions[GOVRT_DECISION_AGENT].action = GOV_ACT_TRACE;
	atomic_store(&govrt.ndecisions, 2);
}

void govrt_init(void)
{
	pthread_once(&init_once, init_once_fn);
}

/* The index of a decision equal to d (action, errno, value), added if new. */
uint32_t govrt_intern_decision(const struct gov_decision *d)
{
	uint32_t n = atomic_load(&govrt.ndecisions);
	for (uint32_t i = 0; i < n; i++) {
		const struct gov_decision *e = &govrt.decisions[i];
		if (e->action == d->action && e->err == d->err && e->value == d->value)
			return i;
	}
	if (n == GOVRT_MAX_DECISIONS) {
		govrt_warn("more than %d distinct decisions; the rest are asked of the agent",
			   GOVRT_MAX_DECISIONS);
		return GOVRT_DECISION_AGENT;
	}
	struct gov_decision *e = &govrt.decisions[n];
	memset(e, 0, sizeof *e);
	e->action = d->action;
	e->err = d->err;
	e->value = d->value;
	atomic_store_explicit(&govrt.ndecisions, n + 1, memory_order_release);
	return n;
}

/* A site's decision first, then its verdict byte, so a thread that sees the
 * new verdict also sees the decision it stands for. */
static void set_site(struct gov_site *s, uint32_t decision)
{
	__atomic_store_n(&s->decision, decision, __ATOMIC_RELEASE);
	__atomic_store_n(&s->verdict,
			 decision == GOVRT_DECISION_NATIVE ? GOV_VERDICT_NATIVE
							   : GOV_VERDICT_DISPATCH,
			 __ATOMIC_RELEASE);
}

static void apply_rows(const struct gov_decision *rows, uint32_t nrows,
		       struct govrt_module *m)
{
	for (struct gov_site *s = m->start; s < m->stop; s++) {
		uint32_t d = GOVRT_DECISION_NATIVE;
		for (uint32_t r = 0; r < nrows; r++) {
			if (gov_decision_matches(&rows[r], s->kind, s->callee, s->sysno)) {
				if (rows[r].action != GOV_ACT_NATIVE)
					d = govrt_intern_decision(&rows[r]);
				break;
			}
		}
		set_site(s, d);
	}
}

/* Copies the table out of the region under its sequence lock. */
static struct gov_decision *read_table(struct gov_region_hdr *h, uint32_t *n,
				       uint64_t *rev)
{
	struct gov_decision *rows = NULL;
	for (;;) {
		uint32_t seq = __atomic_load_n(&h->table_seq, __ATOMIC_ACQUIRE);
		if (seq & 1) {
			sched_yield();
			continue;
		}
		uint32_t count = h->table_count;
		if (count > h->table_cap)
			count = h->table_cap;
		struct gov_decision *tmp = realloc(rows, (count ? count : 1) * sizeof *rows);
		if (!tmp) {
			free(rows);
			return NULL;
		}
		rows = tmp;
		memcpy(rows, gov_region_table(h), count * sizeof *rows);
		*rev = h->table_rev;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&h->table_seq, __ATOMIC_RELAXED) == seq) {
			*n = count;
			return rows;
		}
	}
}

void govrt_apply_table(struct govrt_conn *c)
{
	uint32_t n;
	uint64_t rev;
	govrt_dyn_apply(c->region);
	struct gov_decision *rows = read_table(c->region, &n, &rev);
	if (!rows) {
		govrt_warn("out of memory reading the decision table; keeping the old one");
		return;
	}
	for (uint32_t r = 0; r < n; r++)
		rows[r].name[sizeof rows[r].name - 1] = 0;
	for (size_t i = 0; i < govrt.nmodules; i++)
		apply_rows(rows, n, &govrt.modules[i]);
	govrt_rewritten_refresh();
	govrt_sud_table(rows, n); /* run-time sites (sud.c) */
	free(rows);
	govrt.have_table = 1;
	atomic_store(&govrt.table_rev, rev);
	govrt_debug("decision table rev %llu applied (%u rows)", (unsigned long long)rev, n);
}

/* Fail-closed before any table: every site must ask the agent, and with no
 * agent that means the fail errno. */
void govrt_mark_all_agent(void)
{
	for (size_t i = 0; i < govrt.nmodules; i++)
		for (struct gov_site *s = govrt.modules[i].start; s < govrt.modules[i].stop; s++)
			set_site(s, GOVRT_DECISION_AGENT);
	govrt_rewritten_refresh();
	govrt_sud_mark_all_agent();
}

static void prepare_sites(struct gov_site *start, struct gov_site *stop)
{
	for (struct gov_site *s = start; s < stop; s++) {
		if (s->kind == GOV_SITE_SYSCALL && !s->callee)
			s->callee = gov_syscall_name(s->sysno);
		if (!s->id)
			s->id = gov_site_id(s->file, s->line, s->caller, s->callee);
	}
}

static void register_module(const struct gov_module *m);

/* Registration runs from constructors, maybe with Syscall User Dispatch
 * armed: govrt's own syscalls must not trap. */
void __govrt_register_module(const struct gov_module *m)
{
	uint8_t sel = govrt_sud_hold();
	register_module(m);
	govrt_sud_release(sel);
}

static void register_module(const struct gov_module *m)
{
	govrt_init();
	if (m->abi_version != GOV_ABI_VERSION) {
		govrt_warn("module with site table ABI %u ignored (this govrt speaks %u)",
			   m->abi_version, GOV_ABI_VERSION);
		return;
	}
	int start_channel = 0;
	pthread_mutex_lock(&govrt.lock);
	/* an empty table (libgovrt's own translation units include
	 * gov/govrt.h) is not kept: no allocation from the program's heap */
	int known = !m->start || m->start == m->stop;
	for (size_t i = 0; i < govrt.nmodules; i++)
		known |= govrt.modules[i].start == m->start;
	if (!known) {
		struct govrt_module *mods =
			realloc(govrt.modules, (govrt.nmodules + 1) * sizeof *mods);
		if (!mods) {
			pthread_mutex_unlock(&govrt.lock);
			govrt_warn("out of memory registering a module; its sites stay native");
			return;
		}
		govrt.modules = mods;
		struct govrt_module *mod = &govrt.modules[govrt.nmodules++];
		mod->start = m->start;
		mod->stop = m->start ? m->stop : m->start;
		prepare_sites(mod->start, mod->stop);
		struct govrt_conn *c = atomic_load(&govrt.conn);
		if (c)
			govrt_apply_table(c);
		else if (govrt.cfg.fail_closed && !govrt.have_table)
			govrt_mark_all_agent();
	}
	if (!govrt.cfg.resource[0] && m->resource && gov_resource_name_ok(m->resource))
		snprintf(govrt.cfg.resource, sizeof govrt.cfg.resource, "%s", m->resource);
	start_channel = govrt.cfg.resource[0] && !govrt.watcher_running;
	pthread_mutex_unlock(&govrt.lock);
	if (start_channel)
		govrt_channel_start();
}

static void counters_thread_exit(void *p)
{
	struct govrt_thread_counters *t = p;
	pthread_mutex_lock(&govrt.counters_lock);
	for (int i = 0; i < GOVRT_NCOUNTERS; i++)
		govrt.ended[i] += t->n[i];
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	t->state = 0;
	pthread_mutex_unlock(&govrt.counters_lock);
}

static void counters_key_once(void)
{
	pthread_key_create(&counters_key, counters_thread_exit);
}

/* A thread's first count links its block into the list; a count made while
 * that is under way (from a signal handler) goes to a shared atomic. */
void govrt_count(enum govrt_counter c)
{
	struct govrt_thread_counters *t = &govrt_my_counters;
	if (__builtin_expect(t->state == 2, 1)) {
		/* One instruction: a signal handler on this thread that counts
		 * too cannot land between a load and a store and have its count
		 * overwritten. No lock prefix: only this thread writes its block;
		 * readers in govrt_stats see whole 64-bit values. */
		__asm__ volatile("addq $1, %0" : "+m"(t->n[c]));
		return;
	}
	if (t->state == 1) {
		atomic_fetch_add(&govrt.unlinked[c], 1);
		return;
	}
	t->state = 1;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, counters_key_once);
	pthread_mutex_lock(&govrt.counters_lock);
	t->next = govrt.threads;
	t->pprev = &govrt.threads;
	if (govrt.threads)
		govrt.threads->pprev = &t->next;
	govrt.threads = t;
	pthread_mutex_unlock(&govrt.counters_lock);
	pthread_setspecific(counters_key, t);
	t->n[c]++;
	__atomic_store_n(&t->state, 2, __ATOMIC_RELEASE);
}

void govrt_stats(struct govrt_stats *o)
{
	uint8_t sel = govrt_sud_hold();
	uint64_t n[GOVRT_NCOUNTERS];
	pthread_mutex_lock(&govrt.counters_lock);
	for (int i = 0; i < GOVRT_NCOUNTERS; i++)
		n[i] = govrt.ended[i] + atomic_load(&govrt.unlinked[i]);
	for (struct govrt_thread_counters *t = govrt.threads; t; t = t->next)
		for (int i = 0; i < GOVRT_NCOUNTERS; i++)
			n[i] += __atomic_load_n(&t->n[i], __ATOMIC_RELAXED);
	pthread_mutex_unlock(&govrt.counters_lock);
	memset(o, 0, sizeof *o);
#define GOVRT_COUNTER_COPY(name) o->name = n[GOVRT_N_##name];
	GOVRT_COUNTERS(GOVRT_COUNTER_COPY)
#undef GOVRT_COUNTER_COPY
	o->table_rev = atomic_load(&govrt.table_rev);
	govrt_sud_fill_stats(o);
	govrt_sud_release(sel);
}

int govrt_wait_table(uint64_t rev, int timeout_ms)
{
	uint64_t deadline = gov_now_ns() + (uint64_t)timeout_ms * 1000000u;
	while (atomic_load(&govrt.table_rev) < rev) {
		if (gov_now_ns() >= deadline)
			return -1;
		usleep(500);
	}
	return 0;
}
