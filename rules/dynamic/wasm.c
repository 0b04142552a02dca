/* rules/dynamic/wasm.c - wasm mode, in the agent: a module built with
 * `clang --target=wasm32` is validated (wasm-validate), translated to C by
 * wabt's wasm2c and compiled with wasm-rt-impl.c and wasm_glue.c into a
 * shared object the agent loads. The object is cached by the module's hash
 * (<cache dir>/wasm-HASH-gN.so, see build.h), so a module is translated once
 * per machine: at publish by govctl (which is also how it is checked), and
 * by an agent only if the cache lacks it.
 *
 * Isolation: the rule sees only its own linear memory (bounds checked on
 * every access: WASM_RT_MEMCHECK_SIGNAL_HANDLER=0) and its imports, which
 * are the helpers of module "gov" and nothing else (an object with any
 * other import does not link: -z defs). A trap (out of bounds, division by
 * zero, unreachable, stack exhausted) unwinds to the run, per thread.
 * Budget: a watchdog thread sends SIGGOVBUDGET to a thread whose run has
 * used budget_us of CPU time (seen at the watchdog's 1 ms tick, so to
 * within about a millisecond; a run costs the thread two stores, not a
 * clock read); the
 * handler unwinds unless the rule is inside a helper, which then traps on
 * return. Runs of one rule are serialised (one instance, one memory).
 * Not the fault policy (dynrt.c). */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "build.h"
#include "dynrt.h"

#ifndef GOV_WASM_GLUE_DIR
#define GOV_WASM_GLUE_DIR "/usr/local/share/rhodes"
#endif
#ifndef GOV_INCLUDE_DIR
#define GOV_INCLUDE_DIR "/usr/local/include"
#endif
#define WABT_RT "/usr/share/wabt/wasm2c"
#define SIGGOVBUDGET (SIGRTMIN + 4)
#define TRAP_BUDGET 100
#define GLUE_VERSION 2

struct gov_wasm_host {
	uint64_t (*map_lookup)(uint64_t, uint64_t, uint64_t);
	uint64_t (*map_update)(uint64_t, uint64_t, uint64_t);
	uint64_t (*map_delete)(uint64_t, uint64_t);
	uint64_t (*counter_add)(uint64_t, uint64_t);
	uint64_t (*time_ns)(void);
	uint64_t (*log)(uint64_t, uint64_t);
	uint64_t (*event)(uint64_t, uint64_t);
	void (*trap)(int code);
};

struct wasm_rule {
	void *so;
	void *inst;
	uint64_t (*call)(void *, struct gov_dyn_ctx *);
	void (*free_inst)(void *);
	atomic_flag lock;    /* one instance: runs are serialised */
	uint64_t budget_ns;
};

/* ---- per-thread unwinding and the budget watchdog ---- */

/* A thread's runs as the watchdog sees them: the thread bumps `run` (odd
 * while running) and sets budget_ns, two plain stores and no clock read;
 * the watchdog notes when it first saw a given odd `run` and signals the
 * thread once that run has lasted budget_ns. */
struct watch_rec {
	pthread_t thread;
	clockid_t cpu;              /* the thread's CPU-time clock */
	atomic_ulong run;
	atomic_ullong budget_ns;
	unsigned long seen_run;     /* watchdog's own */
	uint64_t seen_cpu;
	int signalled;
	struct watch_rec *next, **pprev;
};

static uint64_t cpu_ns(clockid_t c)
{
	struct timespec ts;
	if (clock_gettime(c, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct watch_rec *watched;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;
static pthread_key_t watch_key;

static __thread sigjmp_buf *tls_jb;
static __thread volatile sig_atomic_t tls_in_wasm, tls_in_helper, tls_expired;
static __thread struct watch_rec *tls_rec;

static void trap(int code)
{
	siglongjmp(*tls_jb, code ? code : 99);
}

static void on_budget(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	if (!tls_in_wasm || !tls_jb)
		return;
	if (tls_in_helper) {
		tls_expired = 1; /* a helper may hold a map's lock: trap on its way out */
		return;
	}
	siglongjmp(*tls_jb, TRAP_BUDGET); /* the signal stays blocked: unblocked after */
}

static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec tick = { 0, 1000000 };
		nanosleep(&tick, NULL);
		/* CPU time, not wall time: a run whose thread was preempted on a
		 * busy machine has not used its budget */
		pthread_mutex_lock(&watch_lock);
		for (struct watch_rec *w = watched; w; w = w->next) {
			unsigned long run = atomic_load(&w->run);
			if (!(run & 1)) {
				w->seen_run = 0;
				continue;
			}
			uint64_t now = cpu_ns(w->cpu);
			if (run != w->seen_run) {
				/* first sight of this run (it may have begun up to a tick
				 * before: the budget is kept to within a tick) */
				w->seen_run = run;
				w->seen_cpu = now;
				w->signalled = 0;
			} else if (!w->signalled && now - w->seen_cpu >= atomic_load(&w->budget_ns)) {
				w->signalled = 1; /* one signal per run */
				pthread_kill(w->thread, SIGGOVBUDGET);
			}
		}
		pthread_mutex_unlock(&watch_lock);
	}
	return NULL;
}

static void unwatch(void *p)
{
	struct watch_rec *w = p;
	pthread_mutex_lock(&watch_lock);
	*w->pprev = w->next;
	if (w->next)
		w->next->pprev = w->pprev;
	pthread_mutex_unlock(&watch_lock);
	free(w);
}

static void start_watchdog(void)
{
	struct sigaction sa = { .sa_sigaction = on_budget, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGGOVBUDGET, &sa, NULL);
	pthread_key_create(&watch_key, unwatch);
	pthread_t t;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&t, NULL, watchdog, NULL) == 0)
		pthread_detach(t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static __attribute__((noinline)) struct watch_rec *watch_self(void)
{
	if (tls_rec)
		return tls_rec;
	pthread_once(&watch_once, start_watchdog);
	struct watch_rec *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->thread = pthread_self();
	if (pthread_getcpuclockid(w->thread, &w->cpu) != 0)
		w->cpu = CLOCK_THREAD_CPUTIME_ID; /* (not for another thread: then budgets go unchecked) */
	pthread_mutex_lock(&watch_lock);
	w->next = watched;
	w->pprev = &watched;
	if (watched)
		watched->pprev = &w->next;
	watched = w;
	pthread_mutex_unlock(&watch_lock);
	pthread_setspecific(watch_key, w);
	return tls_rec = w;
}

/* The helpers as the rule reaches them: a budget that ran out while one
 * was working traps when it returns. */
#define WRAP(name, params, args)                                    \
	static uint64_t w_##name params                             \
	{                                                           \
		tls_in_helper = 1;                                  \
		uint64_t r = gov_dynh_##name args;                  \
		tls_in_helper = 0;                                  \
		if (tls_expired)                                    \
			siglongjmp(*tls_jb, TRAP_BUDGET);           \
		return r;                                           \
	}
WRAP(map_lookup, (uint64_t m, uint64_t k, uint64_t d), (m, k, d))
WRAP(map_update, (uint64_t m, uint64_t k, uint64_t v), (m, k, v))
WRAP(map_delete, (uint64_t m, uint64_t k), (m, k))
WRAP(counter_add, (uint64_t c, uint64_t d), (c, d))
WRAP(time_ns, (void), ())
WRAP(log, (uint64_t c, uint64_t v), (c, v))
WRAP(event, (uint64_t a, uint64_t b), (a, b))

static const struct gov_wasm_host host = {
	w_map_lookup, w_map_update, w_map_delete, w_counter_add, w_time_ns, w_log, w_event, trap,
};

static const char *trap_name(int code)
{
	switch (code) {
	case TRAP_BUDGET: return "over its time budget (budget_us)";
	case 1: return "wasm trap: out of bounds or stack exhausted";
	case 2: return "wasm trap: integer overflow";
	case 3: return "wasm trap: division by zero";
	case 4: return "wasm trap: invalid conversion";
	case 5: return "wasm trap: unreachable";
	default: return "wasm trap";
	}
}

/* ---- building and loading ---- */

/* The modules the rule imports from, as wasm2c's header declares them in
 * Z_rule_instantiate's parameters: none, or "gov" alone. Tells the glue
 * which form to call (GOV_WASM_IMPORTS). */
static int check_imports(const char *hdr, char **compile, char *err, size_t errlen)
{
	void *text;
	size_t len;
	if (gov_dyn_read(hdr, &text, &len, err, errlen) < 0)
		return -1;
	char *t = realloc(text, len + 1);
	if (!t) {
		free(text);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	t[len] = 0;
	char *decl = strstr(t, "void Z_rule_instantiate(");
	char *end = decl ? strchr(decl, ')') : NULL;
	int r = 0, gov = 0;
	if (!end) {
		snprintf(err, errlen, "wasm2c's header lacks Z_rule_instantiate");
		r = -1;
	} else {
		*end = 0;
		for (char *p = decl; (p = strstr(p, "struct Z_")); p += 9) {
			char mod[64] = "";
			sscanf(p + 9, "%63[^_ ]", mod);
			if (strcmp(mod, "gov") == 0) {
				gov = 1;
				continue;
			}
			snprintf(err, errlen, "the module imports from module '%s': a rule may import only "
				 "the helpers of module 'gov' (gov/dynrule.h)", mod);
			r = -1;
			break;
		}
	}
	free(t);
	for (int i = 0; compile[i]; i++)
		if (strcmp(compile[i], "-DGOV_WASM_IMPORTS=0") == 0 && gov)
			compile[i] = "-DGOV_WASM_IMPORTS=1";
	return r;
}

/* <cache>/wasm-HASH.so, built if missing (wasm-validate, wasm2c, cc). */
static int build_so(const void *obj, size_t len, char *so, size_t solen, char *err, size_t errlen)
{
	char dir[PATH_MAX - 64];
	if (gov_dyn_cache_dir(dir, sizeof dir, err, errlen) < 0)
		return -1;
	/* the object depends on the module and on wasm_glue.c: bump GLUE_VERSION
	 * when the glue changes, so that no stale object is taken */
	unsigned long long h = (unsigned long long)gov_dyn_hash(obj, len);
	snprintf(so, solen, "%s/wasm-%016llx-g%d.so", dir, h, GLUE_VERSION);
	if (access(so, R_OK) == 0)
		return 0;
	char wasm[PATH_MAX], c[PATH_MAX], hdr[PATH_MAX], tmp[PATH_MAX], inc[PATH_MAX + 2];
	char glue[PATH_MAX], trap_h[PATH_MAX];
	/* wasm_glue.c and wasm_trap.h: GOV_WASM_GLUE_DIR (an installed copy,
	 * make install puts them in PREFIX/share/rhodes), else the source tree */
	const char *gd = getenv("GOV_WASM_GLUE_DIR");
	snprintf(glue, sizeof glue, "%s/wasm_glue.c", gd && *gd ? gd : GOV_WASM_GLUE_DIR);
	snprintf(trap_h, sizeof trap_h, "%s/wasm_trap.h", gd && *gd ? gd : GOV_WASM_GLUE_DIR);
	snprintf(wasm, sizeof wasm, "%s/wasm-%016llx.%d.wasm", dir, h, (int)getpid());
	snprintf(c, sizeof c, "%s/wasm-%016llx.%d.c", dir, h, (int)getpid());
	snprintf(hdr, sizeof hdr, "%s/wasm-%016llx.%d.h", dir, h, (int)getpid());
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", so, (int)getpid());
	const char *gi = getenv("GOV_INCLUDE_DIR");
	snprintf(inc, sizeof inc, "-I%s", gi && *gi ? gi : GOV_INCLUDE_DIR);
	FILE *f = fopen(wasm, "wb");
	int ok = f && fwrite(obj, 1, len, f) == len;
	if (f && fclose(f) != 0)
		ok = 0;
	if (!ok) {
		snprintf(err, errlen, "cannot write %s: %s", wasm, strerror(errno));
		unlink(wasm);
		return -1;
	}
	char *validate[] = { "wasm-validate", wasm, NULL };
	char *translate[] = { "wasm2c", "-n", "rule", wasm, "-o", c, NULL };
	char *compile[] = { "cc", "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-Wl,-z,defs",
			    "-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0",
			    "-DWASM_RT_TRAP_HANDLER=gov_wasm_trap", "-DGOV_WASM_IMPORTS=0", "-I" WABT_RT, inc,
			    "-include", trap_h, "-include", hdr,
			    glue, c, WABT_RT "/wasm-rt-impl.c", "-o", tmp, "-lm", NULL };
	int r = gov_dyn_cmd(validate, err, errlen);
	if (r == 0)
		r = gov_dyn_cmd(translate, err, errlen);
	if (r == 0)
		r = check_imports(hdr, compile, err, errlen);
	if (r == 0)
		r = gov_dyn_cmd(compile, err, errlen); /* an unknown helper: undefined reference */
	if (r == 0 && rename(tmp, so) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", so, strerror(errno));
		r = -1;
	}
	unlink(wasm);
	unlink(c);
	unlink(hdr);
	unlink(tmp);
	return r;
}

static void *wasm_load(const void *obj, size_t len, const struct gov_dyn_spec *spec,
		       char *err, size_t errlen)
{
	char so[PATH_MAX], why[1600];
	if (len < 8 || memcmp(obj, "\0asm", 4) != 0) {
		snprintf(err, errlen, "rule %s: not a wasm module (build it with clang --target=wasm32)",
			 spec->name);
		return NULL;
	}
	if (build_so(obj, len, so, sizeof so, why, sizeof why) < 0) {
		snprintf(err, errlen, "rule %s: refused: %s", spec->name, why);
		return NULL;
	}
	struct wasm_rule *w = calloc(1, sizeof *w);
	if (!w || !(w->so = dlopen(so, RTLD_NOW | RTLD_LOCAL))) {
		snprintf(err, errlen, "rule %s: cannot load %s: %s", spec->name, so,
			 w ? dlerror() : "out of memory");
		free(w);
		return NULL;
	}
	void *(*make)(const struct gov_wasm_host *) = (void *(*)(const struct gov_wasm_host *))dlsym(w->so, "gov_wasm_new");
	*(void **)&w->call = dlsym(w->so, "gov_wasm_call");
	*(void **)&w->free_inst = dlsym(w->so, "gov_wasm_free");
	if (!make || !w->call || !w->free_inst || !(w->inst = make(&host))) {
		snprintf(err, errlen, "rule %s: %s is not a rule object", spec->name, so);
		dlclose(w->so);
		free(w);
		return NULL;
	}
	atomic_flag_clear(&w->lock);
	w->budget_ns = (uint64_t)(spec->budget_us ? spec->budget_us : 1000) * 1000;
	return w;
}

static uint64_t wasm_run(struct gov_dynrule *r, struct gov_dyn_ctx *ctx)
{
	struct wasm_rule *w = r->impl;
	struct watch_rec *rec = watch_self();
	volatile uint64_t a = GOV_DYN_FAULT;
	sigjmp_buf buf, *saved = tls_jb;
	while (atomic_flag_test_and_set_explicit(&w->lock, memory_order_acquire))
		__builtin_ia32_pause();
	/* no signal mask saved: that would be a system call per run; the one
	 * path that needs it (the budget signal) unblocks it below */
	int code = sigsetjmp(buf, 0);
	if (code == 0) {
		tls_jb = &buf;
		tls_expired = 0;
		if (rec) {
			atomic_store_explicit(&rec->budget_ns, w->budget_ns, memory_order_relaxed);
			atomic_store_explicit(&rec->run, atomic_load_explicit(&rec->run, memory_order_relaxed) + 1,
					      memory_order_release);
		}
		tls_in_wasm = 1;
		a = w->call(w->inst, ctx);
	} else {
		gov_dyn_cur.fault = 1;
		gov_dyn_cur.why = trap_name(code);
		if (code == TRAP_BUDGET) {
			sigset_t s;
			sigemptyset(&s);
			sigaddset(&s, SIGGOVBUDGET);
			pthread_sigmask(SIG_UNBLOCK, &s, NULL);
		}
	}
	tls_in_wasm = 0;
	tls_in_helper = 0;
	if (rec)
		atomic_store_explicit(&rec->run, atomic_load_explicit(&rec->run, memory_order_relaxed) + 1,
				      memory_order_release);
	tls_jb = saved;
	atomic_flag_clear_explicit(&w->lock, memory_order_release);
	return a;
}

static void wasm_destroy(void *impl)
{
	struct wasm_rule *w = impl;
	w->free_inst(w->inst);
	/* the object stays mapped: a thread may be returning from it */
	free(w);
}

const struct gov_dyn_mode_ops gov_dyn_wasm_ops = {
	.name = "wasm", .load = wasm_load, .run = wasm_run, .destroy = wasm_destroy,
};
