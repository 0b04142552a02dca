/* tests/t_dyn_modes.c - both modes of dynamic rules, loaded and run on the
 * host as govagent and govrt run them: the deny rule's answers, maps and
 * counters, and fault injection (endless loop, out-of-bounds access,
 * division by zero, helpers with bad arguments, no action), each refused at
 * load or turned into the fail outcome, counted, and the rule disabled
 * after max_faults, with the test process alive throughout. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tap.h"
#include "harness.h"
#include "dyn_load.h"
#include "../rules/dynamic/dynrt.h"
#include "../rules/dynamic/build.h"

static char err[2048];
static int logged_faults;

static void count_log(const char *line)
{
	if (strstr(line, "event=rule_fault"))
		logged_faults++;
}

static struct gov_dynrule *load(int mode, const char *name, const struct gov_dyn_spec *base)
{
	return dyn_load(mode, name, base, err, sizeof err);
}

static struct gov_dyn_ctx call(int sysno, const char *func, uint64_t a0, uint64_t a1, uint64_t a2)
{
	struct gov_dyn_ctx c = { .kind = func ? 1 : 2, .sysno = sysno,
				 .func_id = func ? gov_dyn_id(func) : 0, .nargs = 3,
				 .args = { a0, a1, a2 }, .pid = (uint32_t)getpid() };
	return c;
}

static void deny_rule(int mode, const char *m)
{
	struct gov_dynrule *r = load(mode, "rules/deny/deny", NULL);
	ok(r, "%s: the deny rule loads (%s)", m, err);
	if (!r)
		return;
	struct gov_dyn_ctx c = call(1, NULL, 1, 0, 100);
	is_long(gov_dynrule_run(r, &c), GOV_DYN_NATIVE, "%s: a small write runs", m);
	c = call(1, NULL, 1, 0, 10000);
	is_long(gov_dynrule_run(r, &c), GOV_DYN_DENY, "%s: a write over 4096 bytes is denied", m);
	is_long(c.err, EFBIG, "%s: ... with EFBIG", m);
	c = call(-1, "unlink", 0, 0, 0);
	is_long(gov_dynrule_run(r, &c), GOV_DYN_DENY, "%s: unlink (by GOV_DYN_ID) is denied", m);
	is_long(c.err, EACCES, "%s: ... with EACCES", m);
	c = call(-1, "unlinkat", 0, 0, 0);
	is_long(gov_dynrule_run(r, &c), GOV_DYN_NATIVE, "%s: unlinkat is another function", m);
	is_long(atomic_load(&r->counters[0]), 1, "%s: counter 0 counted the big write", m);
	is_long(atomic_load(&r->counters[1]), 1, "%s: counter 1 counted the unlink", m);
	is_long(atomic_load(&r->faults), 0, "%s: no faults", m);
	gov_dynrule_free(r);
}

static void faults(int mode, const char *m)
{
	struct gov_dyn_spec s = { .fail_action = GOV_DYN_DENY, .fail_err = EIO, .max_faults = 3,
				  .budget_us = 2000 };
	struct gov_dynrule *r;
	struct gov_dyn_ctx c;

	/* endless loop */
	r = load(mode, "tests/dyn/loop", &s);
	if (mode == GOV_DYN_EBPF) {
		ok(!r, "%s: an endless loop is refused at load", m);
		has_str(err, "loops", "%s: ... and the verifier says why: %s", m, err);
	} else {
		ok(r, "%s: a loop passes validation (%s)", m, err);
		c = call(0, NULL, 1, 0, 0);
		long long t0 = now_ms();
		is_long(r ? gov_dynrule_run(r, &c) : -1, GOV_DYN_DENY, "%s: an endless loop is stopped: fail outcome", m);
		ok(now_ms() - t0 < 1000, "%s: ... within its budget and the watchdog's tick (%lld ms)", m, now_ms() - t0);
		is_long(c.err, EIO, "%s: ... with the fail errno", m);
		is_long(r ? (long long)atomic_load(&r->faults) : -1, 1, "%s: ... counted", m);
		gov_dynrule_free(r);
	}

	/* out of bounds */
	r = load(mode, "tests/dyn/oob", &s);
	if (mode == GOV_DYN_EBPF) {
		ok(!r, "%s: an out-of-bounds read is refused at load", m);
		has_str(err, "memory boundary violation", "%s: ... and the verifier says why: %s", m, err);
	} else {
		ok(r, "%s: the out-of-bounds rule validates (%s)", m, err);
		c = call(0, NULL, 0, 0, 0);
		is_long(r ? gov_dynrule_run(r, &c) : -1, GOV_DYN_DENY, "%s: an out-of-bounds read traps: fail outcome", m);
		gov_dynrule_free(r);
	}

	/* division by zero: caught at run time in both modes; disabled after 3 */
	r = load(mode, "tests/dyn/div", &s);
	ok(r, "%s: the dividing rule loads (%s)", m, err);
	if (r) {
		c = call(0, NULL, 0, 4, 0);
		is_long(gov_dynrule_run(r, &c), GOV_DYN_EMULATE, "%s: 100 / 4 emulated", m);
		is_long(c.value, 25, "%s: ... as 25", m);
		int before = logged_faults;
		for (int i = 0; i < 3; i++) {
			c = call(0, NULL, 0, 0, 0);
			is_long(gov_dynrule_run(r, &c), GOV_DYN_DENY, "%s: division by zero %d: fail outcome", m, i + 1);
		}
		is_long(logged_faults - before, 3, "%s: ... each fault logged", m);
		ok(atomic_load(&r->disabled), "%s: the rule is disabled after max_faults = 3", m);
		c = call(0, NULL, 0, 4, 0);
		is_long(gov_dynrule_run(r, &c), GOV_DYN_DENY, "%s: a disabled rule answers its fail outcome", m);
		is_long(atomic_load(&r->runs), 4, "%s: ... without running", m);
		gov_dynrule_free(r);
	}

	/* helpers with bad arguments, and good map use */
	s.fail_action = GOV_DYN_NATIVE;
	s.max_faults = 0;
	r = load(mode, "tests/dyn/badhelper", &s);
	ok(r, "%s: the helper rule loads (%s)", m, err);
	if (r) {
		c = call(0, NULL, 0, 0, 0);
		gov_dynrule_run(r, &c);
		c = call(0, NULL, 0, 0, 0);
		is_long(gov_dynrule_run(r, &c), GOV_DYN_EMULATE, "%s: a map keeps its value between runs", m);
		is_long(c.value, 2, "%s: ... (two runs seen)", m);
		c = call(0, NULL, 1, 0, 0);
		is_long(gov_dynrule_run(r, &c), GOV_DYN_NATIVE, "%s: map 99: fail outcome (native)", m);
		c = call(0, NULL, 2, 0, 0);
		is_long(gov_dynrule_run(r, &c), GOV_DYN_NATIVE, "%s: counter 1000: fail outcome", m);
		is_long(atomic_load(&r->faults), 2, "%s: ... both counted", m);
		ok(!atomic_load(&r->disabled), "%s: max_faults 0 never disables", m);
		gov_dynrule_free(r);
	}

	r = load(mode, "tests/dyn/retbad", &s);
	if (r) {
		c = call(0, NULL, 0, 0, 0);
		is_long(gov_dynrule_run(r, &c), GOV_DYN_NATIVE, "%s: a result that is no action: fail outcome", m);
		is_long(atomic_load(&r->faults), 1, "%s: ... counted", m);
		gov_dynrule_free(r);
	} else {
		ok(0, "%s: retbad loads (%s)", m, err);
	}
}

/* Threads running rules at once: each thread runs its own wasm instance
 * (eBPF: the same code), with no lock; a thread whose runs trap (division
 * by zero) or loop past the budget unwinds only itself, and the others'
 * answers, counters and fault counts stay exact. */
#define NTHREADS 4
#define NRUNS 20000
struct worker {
	struct gov_dynrule *deny, *div, *loop;
	int role;       /* 0: deny runs; 1: dividing by zero; 2: the endless loop */
	long wrong;     /* answers that were not the expected ones */
};

static void *work(void *p)
{
	struct worker *w = p;
	int runs = w->role == 2 ? 3 : NRUNS;
	for (int i = 0; i < runs; i++) {
		struct gov_dyn_ctx c;
		if (w->role == 0) {
			c = call(1, NULL, 1, 0, i & 1 ? 10000 : 100);
			int want = i & 1 ? GOV_DYN_DENY : GOV_DYN_NATIVE;
			if (gov_dynrule_run(w->deny, &c) != want || (want == GOV_DYN_DENY && c.err != EFBIG))
				w->wrong++;
		} else {
			c = call(0, NULL, 0, i & 1 ? 0 : 4, 0);
			struct gov_dynrule *r = w->role == 1 ? w->div : w->loop;
			int want = w->role == 1 && !(i & 1) ? GOV_DYN_EMULATE : GOV_DYN_DENY;
			if (gov_dynrule_run(r, &c) != want)
				w->wrong++;
		}
	}
	return NULL;
}

static void threads(int mode, const char *m)
{
	struct gov_dyn_spec s = { .fail_action = GOV_DYN_DENY, .fail_err = EIO, .max_faults = 0,
				  .budget_us = 2000 };
	struct worker w[NTHREADS] = { { 0 } };
	struct gov_dynrule *deny = load(mode, "rules/deny/deny", NULL), *div = load(mode, "tests/dyn/div", &s);
	struct gov_dynrule *loop = mode == GOV_DYN_WASM ? load(mode, "tests/dyn/loop", &s) : NULL;
	ok(deny && div && (loop || mode == GOV_DYN_EBPF), "%s: rules for the threads load (%s)", m, err);
	if (!deny || !div || (!loop && mode == GOV_DYN_WASM))
		return;
	pthread_t t[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ deny, div, loop, i == 1 ? 1 : i == 2 && loop ? 2 : 0, 0 };
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	long wrong = 0, deniers = 0;
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		wrong += w[i].wrong;
		deniers += w[i].role == 0;
	}
	is_long(wrong, 0, "%s: %d threads at once: every answer right", m, NTHREADS);
	is_long(atomic_load(&deny->counters[0]), deniers * NRUNS / 2, "%s: ... the deny rule counted every big write", m);
	is_long(atomic_load(&deny->faults), 0, "%s: ... and no fault of another thread's rule reached it", m);
	is_long(atomic_load(&div->faults), NRUNS / 2, "%s: ... each division by zero counted once", m);
	if (loop)
		is_long(atomic_load(&loop->faults), 3, "%s: ... each endless run stopped by the budget", m);
	gov_dynrule_free(deny);
	gov_dynrule_free(div);
	gov_dynrule_free(loop);
}

static void bad_objects(void)
{
	struct gov_dyn_spec s = { .mode = GOV_DYN_EBPF, .name = "junk" };
	ok(!gov_dynrule_load(&s, "hello world, not ELF at all, but long enough to look at it twice", 64, err, sizeof err),
	   "ebpf: junk bytes are refused");
	has_str(err, "not an ELF object", "ebpf: ... saying so: %s", err);
	s.mode = GOV_DYN_WASM;
	ok(!gov_dynrule_load(&s, "\0asm\1\0\0\0\1\2\3", 11, err, sizeof err), "wasm: a broken module is refused");
	has_str(err, "wasm-validate failed", "wasm: ... by the validator: %s", err);
	s.mode = 9;
	ok(!gov_dynrule_load(&s, "x", 1, err, sizeof err), "an unknown mode is refused");
	/* a wasm module importing something that is not a helper */
	void *obj;
	size_t len;
	char src[] = "/tmp/gov-dyn-env.XXXXXX.c";
	int fd = mkstemps(src, 2);
	const char *text = "#include \"gov/dynrule.h\"\n"
			   "__attribute__((import_module(\"env\"), import_name(\"system\"))) extern uint64_t sys(uint64_t);\n"
			   "GOV_RULE(r) { return sys(ctx->args[0]) ? 1 : 2; }\n";
	ok(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "wrote a rule importing env.system");
	close(fd);
	setenv("GOV_INCLUDE_DIR", DYN_TOP "/include", 1);
	int r = gov_dyn_compile(GOV_DYN_WASM, src, &obj, &len, err, sizeof err);
	ok(r == 0, "it compiles (%s)", err);
	if (r == 0) {
		s.mode = GOV_DYN_WASM;
		ok(!gov_dynrule_load(&s, obj, len, err, sizeof err), "wasm: an import that is no helper is refused");
		has_str(err, "module 'env'", "wasm: ... naming it: %s", err);
		free(obj);
	}
	unlink(src);
	ok(gov_dyn_compile(GOV_DYN_EBPF, "/nonexistent/rule.c", &obj, &len, err, sizeof err) < 0,
	   "a missing source is refused");
	has_str(err, "cannot compile", "... with the compiler's reason: %s", err);
}

int main(void)
{
	char cache[] = "/tmp/gov-dyn-cache.XXXXXX";
	setenv("GOV_CACHE_DIR", mkdtemp(cache), 1);
	setenv("GOV_INCLUDE_DIR", DYN_TOP "/include", 1);
	gov_dyn_log_hook = count_log;
	deny_rule(GOV_DYN_EBPF, "ebpf");
	deny_rule(GOV_DYN_WASM, "wasm");
	faults(GOV_DYN_EBPF, "ebpf");
	faults(GOV_DYN_WASM, "wasm");
	threads(GOV_DYN_EBPF, "ebpf");
	threads(GOV_DYN_WASM, "wasm");
	bad_objects();
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", cache);
	if (system(cmd)) {}
	return done_testing();
}
