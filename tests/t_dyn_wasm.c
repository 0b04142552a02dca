/* tests/t_dyn_wasm.c - a wasm rule run on a context built in place, in the
 * thread's instance of it (gov_wasm_ctx, rules/dynamic/wasm.h), as
 * govagent runs one: answers read where the rule left them, one buffer per
 * thread, a context built elsewhere still copied, every fault (endless
 * loop, out-of-bounds access, division by zero, helpers with bad
 * arguments, no action) turned into the fail outcome in the buffer and the
 * instance usable after it, the caller's callee-saved registers intact
 * after a run that trapped, memory.grow refused, and a thread running
 * short runs back to back never taken for one over its budget. The guard
 * pages that stand for bounds checks: accesses just past the memory,
 * straddling its end, near 4 GiB and at the far end of the reservation
 * trap, on any thread, and while an instance is made; a segfault of the
 * host's own still ends the process (or goes to the handler it had);
 * recursion (a cycle of calls, call_indirect) is still stopped.
 * Loading and the copying path are t_dyn_modes'. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tap.h"
#include "harness.h"
#include "dyn_load.h"
#include "../rules/dynamic/dynrt.h"
#include "../rules/dynamic/build.h"
#include "../rules/dynamic/wasm.h"

static char err[2048];

static char last_line[1024]; /* the last fault report (gov_dyn_log_hook) */

static void quiet(const char *line)
{
	snprintf(last_line, sizeof last_line, "%s", line);
}

static struct gov_dynrule *load(int mode, const char *name, const struct gov_dyn_spec *base)
{
	return dyn_load(mode, name, base, err, sizeof err);
}

/* Loads a test rule in wasm and takes this thread's context buffer in its
 * memory, checking both ("WHAT loads, with a buffer"). */
static struct gov_dyn_ctx *in_place(const char *name, const struct gov_dyn_spec *s,
				    struct gov_dynrule **r, const char *what)
{
	*r = load(GOV_DYN_WASM, name, s);
	struct gov_dyn_ctx *c = *r ? gov_wasm_ctx(*r) : NULL;
	ok(c, "%s loads, with a buffer (%s)", what, err);
	return c;
}


/* Fills c (all of it, as a caller must) and runs r on it. */
static int run(struct gov_dynrule *r, struct gov_dyn_ctx *c, int sysno, const char *func,
	       uint64_t a0, uint64_t a1, uint64_t a2)
{
	*c = (struct gov_dyn_ctx){ .kind = func ? 1 : 2, .sysno = sysno,
				   .func_id = func ? gov_dyn_id(func) : 0, .nargs = 3,
				   .args = { a0, a1, a2 }, .pid = (uint32_t)getpid() };
	return gov_dynrule_run(r, c);
}

static void answers(void)
{
	struct gov_dynrule *r = load(GOV_DYN_WASM, "rules/deny/deny", NULL);
	struct gov_dynrule *bpf = load(GOV_DYN_EBPF, "rules/deny/deny", NULL);
	ok(r && bpf, "deny loads in both modes (%s)", err);
	if (!r || !bpf)
		return;
	struct gov_dyn_ctx *c = gov_wasm_ctx(r);
	ok(c, "a wasm rule has a context buffer for this thread");
	ok(c && gov_wasm_ctx(r) == c, "... the same one each time");
	ok(!gov_wasm_ctx(bpf), "an eBPF rule has none (its context is the caller's)");
	if (!c)
		goto out;
	is_long(run(r, c, 1, NULL, 1, 0, 100), GOV_DYN_NATIVE, "in place: a small write runs");
	is_long(run(r, c, 1, NULL, 1, 0, 10000), GOV_DYN_DENY, "in place: a write over 4096 bytes is denied");
	is_long(c->err, EFBIG, "... the errno read where the rule wrote it");
	is_long(run(r, c, -1, "unlink", 0, 0, 0), GOV_DYN_DENY, "in place: unlink is denied");
	is_long(c->err, EACCES, "... with EACCES");
	/* a context built elsewhere, between runs in place: copied both ways */
	struct gov_dyn_ctx own;
	is_long(run(r, &own, -1, "unlink", 0, 0, 0), GOV_DYN_DENY, "a context of the caller's own still works");
	is_long(own.err, EACCES, "... its answer copied out");
	is_long(run(r, c, -1, "unlinkat", 0, 0, 0), GOV_DYN_NATIVE, "in place again after it: unlinkat runs");
	/* another rule run on this one's context, right after a run in place:
	 * its own code runs (the context copied into its instance), not the
	 * code of the thread's last run on that context */
	struct gov_dynrule *other = load(GOV_DYN_WASM, "tests/dyn/ctxid", NULL);
	ok(other, "ctxid loads (%s)", err);
	if (other) { /* (loading it made this thread's instance of it: run r in place again) */
		is_long(run(r, c, 1, NULL, 1, 0, 100), GOV_DYN_NATIVE, "in place after another rule's load");
		*c = (struct gov_dyn_ctx){ .kind = 2, .sysno = 1, .nargs = 3, .args = { 6, 1, 100 } };
		is_long(gov_dynrule_run(other, c), GOV_DYN_EMULATE, "another rule on this one's context runs its own code");
		is_long(c->value, 101, "... and answers there");
		gov_dynrule_free(other);
	}
	is_long(atomic_load(&r->counters[0]) + atomic_load(&r->counters[1]), 3, "counters counted all three denials");
	is_long(atomic_load(&r->runs), 6, "six runs of its own");
	is_long(atomic_load(&r->faults), 0, "no faults");
out:
	gov_dynrule_free(r);
	gov_dynrule_free(bpf);
}

/* Another thread: its own buffer, its runs in place beside ours. */
struct other {
	struct gov_dynrule *r;
	struct gov_dyn_ctx *buf;
	int denied;
};

static void *other_thread(void *p)
{
	struct other *o = p;
	o->buf = gov_wasm_ctx(o->r);
	for (int i = 0; o->buf && i < 10000; i++)
		o->denied += run(o->r, o->buf, 1, NULL, 1, 0, 5000) == GOV_DYN_DENY && o->buf->err == EFBIG;
	return NULL;
}

static void threads(void)
{
	struct gov_dynrule *r = load(GOV_DYN_WASM, "rules/deny/deny", NULL);
	ok(r, "deny loads (%s)", err);
	if (!r)
		return;
	struct other o = { r, NULL, 0 };
	pthread_t t;
	pthread_create(&t, NULL, other_thread, &o);
	struct gov_dyn_ctx *c = gov_wasm_ctx(r);
	int native = 0;
	for (int i = 0; c && i < 10000; i++)
		native += run(r, c, 1, NULL, 1, 0, 100) == GOV_DYN_NATIVE;
	pthread_join(t, NULL);
	ok(c && o.buf && c != o.buf, "another thread gets a buffer of its own");
	is_long(native, 10000, "this thread's runs all answered native");
	is_long(o.denied, 10000, "the other's, at the same time, all denied with EFBIG");
	gov_dynrule_free(r);
}

/* The fault injections, run in place: the fail outcome lands in the buffer
 * and the instance runs on after. */
static void faults(void)
{
	struct gov_dyn_spec s = { .fail_action = GOV_DYN_DENY, .fail_err = EIO, .max_faults = 3,
				  .budget_us = 2000 };
	struct gov_dynrule *r;
	struct gov_dyn_ctx *c;
	if ((c = in_place("tests/dyn/loop", &s, &r, "the endless loop"))) {
		long long t0 = now_ms();
		is_long(run(r, c, 0, NULL, 1, 0, 0), GOV_DYN_DENY, "in place: an endless loop is stopped: fail outcome");
		ok(now_ms() - t0 < 1000, "... within its budget and the watchdog's tick (%lld ms)", now_ms() - t0);
		is_long(c->err, EIO, "... the fail errno in the buffer");
		is_long(run(r, c, 0, NULL, 12345, 0, 0), GOV_DYN_NATIVE, "the next run (one that ends) goes on");
		is_long(atomic_load(&r->faults), 1, "one fault counted");
	}
	gov_dynrule_free(r);

	/* the budget running out where the run cannot be unwound at once: in
	 * a helper (and the libc it calls), which traps on its way out; in
	 * libc called by the rule's own object, left to the next signal */
	static const char *const away[][2] = {
		{ "tests/dyn/loophelper", "an endless loop mostly in a helper" },
		{ "tests/dyn/loopfill", "an endless loop mostly in libc's memset (memory.fill)" },
	};
	for (size_t i = 0; i < sizeof away / sizeof *away; i++) {
		if ((c = in_place(away[i][0], &s, &r, away[i][1]))) {
			long long t0 = now_ms();
			is_long(run(r, c, 0, NULL, 1, 0, 0), GOV_DYN_DENY, "in place: %s is stopped: fail outcome",
				away[i][1]);
			ok(now_ms() - t0 < 1000, "... within its budget and a few watchdog ticks (%lld ms)",
			   now_ms() - t0);
			is_long(c->err, EIO, "... the fail errno in the buffer");
			has_str(last_line, "over its time budget", "... reported as over its budget: %s", last_line);
			is_long(run(r, c, 0, NULL, 12345, 0, 0), GOV_DYN_NATIVE, "the next run (one that ends) goes on");
			is_long(atomic_load(&r->faults), 1, "one fault counted");
		}
		gov_dynrule_free(r);
	}

	if ((c = in_place("tests/dyn/oob", &s, &r, "the out-of-bounds rule"))) {
		is_long(run(r, c, 0, NULL, 0, 0, 0), GOV_DYN_DENY, "in place: an out-of-bounds read traps: fail outcome");
		is_long(c->err, EIO, "... the fail errno in the buffer");
	}
	gov_dynrule_free(r);

	if ((c = in_place("tests/dyn/div", &s, &r, "the dividing rule"))) {
		is_long(run(r, c, 0, NULL, 0, 0, 0), GOV_DYN_DENY, "in place: division by zero: fail outcome");
		is_long(run(r, c, 0, NULL, 0, 4, 0), GOV_DYN_EMULATE, "the instance runs on after the trap: 100 / 4");
		is_long(c->value, 25, "... as 25");
		run(r, c, 0, NULL, 0, 0, 0);
		run(r, c, 0, NULL, 0, 0, 0);
		ok(atomic_load(&r->disabled), "disabled after max_faults = 3");
		ok(!gov_wasm_ctx(r), "a disabled rule hands out no buffer (nothing runs)");
		struct gov_dyn_ctx own;
		is_long(run(r, &own, 0, NULL, 0, 4, 0), GOV_DYN_DENY, "... and answers its fail outcome");
	}
	gov_dynrule_free(r);

	s.fail_action = GOV_DYN_NATIVE;
	s.max_faults = 0;
	if ((c = in_place("tests/dyn/badhelper", &s, &r, "the helper rule"))) {
		run(r, c, 0, NULL, 0, 0, 0);
		is_long(run(r, c, 0, NULL, 0, 0, 0), GOV_DYN_EMULATE, "in place: a map keeps its value between runs");
		is_long(c->value, 2, "... (two runs seen)");
		is_long(run(r, c, 0, NULL, 1, 0, 0), GOV_DYN_NATIVE, "in place: map 99: fail outcome (native)");
		is_long(run(r, c, 0, NULL, 2, 0, 0), GOV_DYN_NATIVE, "in place: counter 1000: fail outcome");
		is_long(atomic_load(&r->faults), 2, "... both counted");
	}
	gov_dynrule_free(r);

	if ((c = in_place("tests/dyn/retbad", &s, &r, "retbad"))) {
		is_long(run(r, c, 0, NULL, 0, 0, 0), GOV_DYN_NATIVE, "in place: no action: fail outcome");
		is_long(atomic_load(&r->faults), 1, "... counted");
	}
	gov_dynrule_free(r);

	/* a rule writing over the context's first block: the caller fills
	 * all of it again, so nothing leaks into the next run */
	if ((c = in_place("tests/dyn/modargs", &s, &r, "modargs"))) {
		is_long(run(r, c, 0, NULL, 1, 21, 0), GOV_DYN_NATIVE_ARGS, "in place: the rule changes args[1]");
		is_long((long long)c->args[1], 42, "... to 42, read in the buffer");
		is_long(run(r, c, 0, NULL, 3, 4, 0), GOV_DYN_EMULATE, "the next run sees the caller's args again");
		is_long(c->value, 25, "... (100 / 4)");
	}
	gov_dynrule_free(r);
}

/* Calls fn(arg) with known values in every callee-saved register and
 * stores what they hold after it into out[6]: a run that traps must come
 * back with them as a C call does. */
void regs_around(uint64_t (*fn)(void *), void *arg, uint64_t out[6]);
__asm__(".text\n"
	".p2align 4\n"
	".type regs_around,@function\n"
	"regs_around:\n"
	"	push %rbp\n	push %rbx\n	push %r12\n	push %r13\n	push %r14\n	push %r15\n"
	"	push %rdx\n"
	"	movabs $0x1111111111111111, %rbx\n"
	"	movabs $0x2222222222222222, %rbp\n"
	"	movabs $0x3333333333333333, %r12\n"
	"	movabs $0x4444444444444444, %r13\n"
	"	movabs $0x5555555555555555, %r14\n"
	"	movabs $0x6666666666666666, %r15\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rdi\n"
	"	call *%rax\n"
	"	pop %rdx\n"
	"	mov %rbx, (%rdx)\n	mov %rbp, 8(%rdx)\n	mov %r12, 16(%rdx)\n"
	"	mov %r13, 24(%rdx)\n	mov %r14, 32(%rdx)\n	mov %r15, 40(%rdx)\n"
	"	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %rbx\n	pop %rbp\n"
	"	ret\n"
	".size regs_around, .-regs_around\n");

static int regs_kept(const uint64_t got[6])
{
	static const uint64_t want[6] = { 0x1111111111111111, 0x2222222222222222, 0x3333333333333333,
					  0x4444444444444444, 0x5555555555555555, 0x6666666666666666 };
	return memcmp(got, want, sizeof want) == 0;
}

/* The mode's own entry (what gov_dynrule_run calls), on a context in place
 * and on one of the caller's, for a rule that traps each way. */
static void registers(void)
{
	static const struct { const char *rule; uint64_t a0, a1; const char *what; } t[] = {
		{ "tests/dyn/oob", 0, 0, "an out-of-bounds read" },
		{ "tests/dyn/div", 0, 0, "a division by zero" },
		{ "tests/dyn/badhelper", 1, 0, "a helper given a bad argument" },
		{ "tests/dyn/loop", 1, 0, "an endless loop stopped by the budget" },
		{ "tests/dyn/loophelper", 1, 0, "an endless loop in a helper stopped by the budget" },
		{ "tests/dyn/loopfill", 1, 0, "an endless loop in libc stopped by the budget" },
		{ "tests/dyn/div", 0, 4, "a run that ends well" },
	};
	struct gov_dyn_spec s = { .fail_action = GOV_DYN_DENY, .fail_err = EIO, .budget_us = 2000 };
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		struct gov_dynrule *r = load(GOV_DYN_WASM, t[i].rule, &s);
		struct gov_dyn_ctx *c = r ? gov_wasm_ctx(r) : NULL, own;
		ok(c && r->fast, "%s loads, with a buffer and an entry (%s)", t[i].rule, err);
		if (!c || !r->fast) {
			gov_dynrule_free(r);
			continue;
		}
		for (int in_place = 1; in_place >= 0; in_place--) {
			struct gov_dyn_ctx *x = in_place ? c : &own;
			run(r, x, 0, NULL, t[i].a0, t[i].a1, 0);
			*x = (struct gov_dyn_ctx){ .nargs = 2, .args = { t[i].a0, t[i].a1 } };
			uint64_t got[6];
			gov_dyn_cur.rule = r;
			gov_dyn_cur.ctx = x;
			gov_dyn_cur.fault = 0;
			regs_around(r->fast, x, got);
			gov_dyn_cur.rule = NULL;
			ok(regs_kept(got), "%s (%s): the caller's callee-saved registers are kept",
			   t[i].what, in_place ? "in place" : "copied");
		}
		gov_dynrule_free(r);
	}
}

static void grow(void)
{
	struct gov_dynrule *r = load(GOV_DYN_WASM, "tests/dyn/grow", NULL);
	struct gov_dyn_ctx *c = r ? gov_wasm_ctx(r) : NULL;
	ok(c, "the growing rule loads, with a buffer (%s)", err);
	if (!c)
		return;
	is_long(run(r, c, 0, NULL, 0, 0, 0), GOV_DYN_EMULATE, "memory.grow(0) runs");
	long long pages = c->value;
	ok(pages > 0 && c->err == pages, "... and answers the size, %lld pages", pages);
	struct gov_dyn_ctx *before = c;
	is_long(run(r, c, 0, NULL, 1, 0, 0), GOV_DYN_EMULATE, "memory.grow(1) runs");
	is_long(c->value, -1, "... and is refused (-1)");
	is_long(c->err, pages, "... the memory keeps its size");
	ok(gov_wasm_ctx(r) == before, "... and its place: the buffer did not move");
	is_long(atomic_load(&r->faults), 0, "no faults");
	gov_dynrule_free(r);
}

/* Short runs back to back for longer than the budget, many watchdog ticks:
 * each run is new to the watchdog, none is stopped. */
static void budget_per_run(void)
{
	struct gov_dyn_spec s = { .fail_action = GOV_DYN_DENY, .fail_err = EIO, .budget_us = 1000 };
	struct gov_dynrule *r = load(GOV_DYN_WASM, "rules/deny/deny", &s);
	struct gov_dyn_ctx *c = r ? gov_wasm_ctx(r) : NULL;
	ok(c, "deny loads with a 1 ms budget (%s)", err);
	if (!c)
		return;
	long n = 0, native = 0;
	for (long long end = now_ms() + 300; now_ms() < end; n++)
		native += run(r, c, 1, NULL, 1, 0, 100) == GOV_DYN_NATIVE;
	is_long(native, n, "%ld short runs over 300 ms: all native", n);
	is_long(atomic_load(&r->faults), 0, "... none taken for a run over its budget");
	gov_dynrule_free(r);
}

static void *edge_thread(void *p);

/* The process's mappings of 4 GiB or more: wasm instances' memories'
 * guards (each instance's reservation, 8 GiB, is its accessible pages and
 * then its guard, two mappings of the kernel's). */
static int reservations(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0;
	unsigned long lo, hi;
	char line[512];
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && hi - lo >= (4ul << 30))
			n++;
	if (f)
		fclose(f);
	return n;
}

/* An access out of the memory, with no bounds check in the rule's code:
 * its guard pages fault, and the host ends the run as a trap. */
static void guard(void)
{
	struct gov_dyn_spec s = { .fail_action = GOV_DYN_DENY, .fail_err = EIO };
	struct gov_dynrule *r;
	struct gov_dyn_ctx *c;
	int before = reservations();
	if ((c = in_place("tests/dyn/oob_edge", &s, &r, "the memory's edges"))) {
		is_long(reservations(), before + 1, "its instance reserves 8 GiB of address space");
		is_long(run(r, c, 0, NULL, 0, 0, 0), GOV_DYN_EMULATE, "the memory's last 8 bytes are read");
		is_long(c->value, 0, "... as zeros");
		is_long(run(r, c, 0, NULL, 0, 1, 77), GOV_DYN_EMULATE, "... and written");
		is_long(run(r, c, 0, NULL, 0, 0, 0), GOV_DYN_EMULATE, "... and read back");
		is_long(c->value, 77, "... as written (77)");
		static const char *const where[] = { NULL, "just past the memory", "straddling its end",
						     "near 4 GiB" };
		for (int a = 1; a <= 3; a++)
			for (int write = 0; write <= 1; write++) {
				last_line[0] = 0;
				is_long(run(r, c, 0, NULL, (uint64_t)a, (uint64_t)write, 5), GOV_DYN_DENY,
					"a %s %s traps: fail outcome", write ? "write" : "read", where[a]);
				is_long(c->err, EIO, "... the fail errno in the buffer");
				has_str(last_line, "out of bounds", "... reported: %s", last_line);
				is_long(run(r, c, 0, NULL, 0, 0, 0), GOV_DYN_EMULATE, "... and the rule runs on");
				is_long(c->value, 77, "... its memory as it was (the write did not land)");
			}
		struct gov_dyn_ctx own;
		is_long(run(r, &own, 0, NULL, 1, 0, 0), GOV_DYN_DENY, "on a context of the caller's own: traps too");
		is_long(own.err, EIO, "... its fail errno copied out");
		is_long(atomic_load(&r->faults), 7, "seven faults counted");
		ok(!atomic_load(&r->disabled), "max_faults = 0: still enabled");
		/* another thread: its own instance and reservation */
		struct other o = { r, NULL, 0 };
		pthread_t t;
		pthread_create(&t, NULL, edge_thread, &o);
		pthread_join(t, NULL);
		is_long(o.denied, 3, "another thread's reads past its own instance's memory trap as well");
		is_long(reservations(), before + 2, "... in a reservation of its own");
	}
	gov_dynrule_free(r);
	is_long(reservations(), before, "freeing the rule gives both back");

	if ((c = in_place("tests/dyn/far", &s, &r, "the far end of the reservation"))) {
		static const uint64_t at[] = { 0, 0x7fffffff, 0xfffffff8, 0xffffffff };
		for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
			is_long(run(r, c, 0, NULL, at[i], 0, 0), GOV_DYN_DENY,
				"a read at %#llx + 0xffffffff traps: fail outcome", (unsigned long long)at[i]);
			is_long(c->err, EIO, "... the fail errno in the buffer");
		}
		is_long(atomic_load(&r->faults), 4, "four faults counted");
	}
	gov_dynrule_free(r);

	/* the start function runs while the instance is made, before the
	 * rule runs: its fault is the rule's too, and refuses the load */
	before = reservations();
	for (int i = 0; i < 3; i++) {
		r = load(GOV_DYN_WASM, "tests/dyn/startoob", &s);
		gov_dynrule_free(r);
	}
	ok(!r, "a module whose start function reads out of its memory is refused");
	has_str(err, "instantiating it traps", "... saying why: %s", err);
	is_long(reservations(), before, "... and its memory's reservation is given back (three tries)");
}

static void *edge_thread(void *p)
{
	struct other *o = p;
	o->buf = gov_wasm_ctx(o->r);
	for (int a = 1; o->buf && a <= 3; a++)
		o->denied += run(o->r, o->buf, 0, NULL, (uint64_t)a, 0, 0) == GOV_DYN_DENY && o->buf->err == EIO;
	return NULL;
}

/* Recursion, directly or through call_indirect: the module keeps wasm2c's
 * call-depth counter, which stops it before the thread's stack runs out. */
static void recursion(void)
{
	struct gov_dyn_spec s = { .fail_action = GOV_DYN_DENY, .fail_err = EIO };
	static const char *const mods[][2] = {
		{ "tests/dyn/recurse", "mutual recursion" },
		{ "tests/dyn/indirect", "recursion through call_indirect" },
	};
	for (size_t i = 0; i < sizeof mods / sizeof *mods; i++) {
		struct gov_dynrule *r;
		struct gov_dyn_ctx *c = in_place(mods[i][0], &s, &r, mods[i][1]);
		if (c) {
			is_long(run(r, c, 0, NULL, 100, 0, 0), GOV_DYN_EMULATE, "%s 100 deep runs", mods[i][1]);
			is_long(c->value, 100, "... and answers 100");
			last_line[0] = 0;
			is_long(run(r, c, 0, NULL, 10000000, 0, 0), GOV_DYN_DENY,
				"%s ten million deep traps: fail outcome", mods[i][1]);
			has_str(last_line, "stack exhausted", "... reported: %s", last_line);
			is_long(run(r, c, 0, NULL, 300, 0, 0), GOV_DYN_EMULATE, "... and the rule runs on (300 deep)");
			is_long(c->value, 300, "... answering 300");
		}
		gov_dynrule_free(r);
	}
}

/* ---- a segfault that is not a rule's: in a child, whose status says ---- */

static void on_segv_exit(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	_exit(42);
}

/* The child's part: with the rule loaded and having trapped once out of
 * its memory (exit 3 if it did not), a segfault of its own. */
static volatile int *volatile bad; /* NULL */

static void child(int own_handler, int sent)
{
	if (own_handler) {
		struct sigaction sa = { .sa_sigaction = on_segv_exit, .sa_flags = SA_SIGINFO };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGSEGV, &sa, NULL);
	}
	struct gov_dyn_spec s = { .fail_action = GOV_DYN_DENY, .fail_err = EIO };
	struct gov_dynrule *r = load(GOV_DYN_WASM, "tests/dyn/oob_edge", &s);
	struct gov_dyn_ctx *c = r ? gov_wasm_ctx(r) : NULL;
	if (!c || run(r, c, 0, NULL, 1, 0, 0) != GOV_DYN_DENY)
		_exit(3);
	if (sent)
		kill(getpid(), SIGSEGV);
	else
		*bad = 1;
	_exit(0);
}

static int child_status(int own_handler, int sent)
{
	fflush(NULL);
	pid_t p = fork();
	if (p == 0)
		child(own_handler, sent);
	int st = 0;
	waitpid(p, &st, 0);
	return st;
}

/* Before any rule is loaded here: the handler the process had before the
 * first load is the one chained to. */
static void host_faults(void)
{
	int st = child_status(0, 0);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
	   "a null write of the host's own, after a rule trapped, ends the process by SIGSEGV (status %#x)", st);
	st = child_status(0, 1);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "so does a SIGSEGV sent by kill (status %#x)", st);
	st = child_status(1, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 42,
	   "with a SIGSEGV handler of its own installed first: the rule's fault still traps, the host's "
	   "goes to that handler (status %#x)", st);
}

/* An instance whose memory cannot be reserved (an address-space limit, a
 * child's own): the load is refused, saying why, and nothing else breaks. */
static void no_room(void)
{
	fflush(NULL);
	pid_t p = fork();
	if (p == 0) {
		unsigned long pages = 0;
		FILE *f = fopen("/proc/self/statm", "r");
		if (!f || fscanf(f, "%lu", &pages) != 1)
			_exit(3);
		fclose(f);
		/* room for loading the object, not for an 8 GiB reservation */
		struct rlimit rl = { pages * (unsigned long)sysconf(_SC_PAGESIZE) + (1ul << 30), 0 };
		rl.rlim_max = rl.rlim_cur;
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(3);
		struct gov_dynrule *r = load(GOV_DYN_WASM, "tests/dyn/oob_edge", NULL);
		_exit(r ? 1 : strstr(err, "out of memory for the thread's instance") ? 0 : 2);
	}
	int st = 0;
	waitpid(p, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "with no address space for its memory, a rule is refused at load: out of memory for the "
	   "instance (status %#x: 1 loaded, 2 another reason)", st);
}

int main(void)
{
	gov_dyn_log_hook = quiet;
	host_faults();
	guard();
	no_room();
	recursion();
	answers();
	threads();
	faults();
	registers();
	grow();
	budget_per_run();
	return done_testing();
}
