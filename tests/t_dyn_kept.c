/* tests/t_dyn_kept.c - the kept context of an in-process eBPF rule
 * (docs/dynrules.md, runtime/dispatch.c run_kept): a rule run on one
 * context per thread between calls still sees each call's own site, its
 * own arguments, its thread, its process after a fork, and answer fields
 * reset after every run; a signal handler's governed call during a run
 * does not clobber it; a rule that writes a read-only field (pid) takes
 * the full path and sees fresh values on every call; a rule that reads
 * none of a site's argument words (nothing copied in) still runs the
 * call with its own arguments. A real agent, real rules published with
 * govctl. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "gov/dynrule.h"
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"

#define R "t-dyn-kept"

__attribute__((noinline)) long work(long a, long b) { return a * 1000 + b; }
/* two sites of the same function: each has its own id */
static __attribute__((noinline)) long site_a(long a, long b) { return GOV_CALL("lll", work, a, b); }
static __attribute__((noinline)) long site_b(long a, long b) { return GOV_CALL("lll", work, a, b); }

enum { PID = 0, TID = 1, SITE = 2, ENTITY = 3, FUNC = 4, ANSWERS = 5, ARGS = 6, DIRTY = 7, HELPERS = 8 };

static long my_tid(void) { return (long)syscall(SYS_gettid); }
static long entity(void) { return (long)((uint64_t)getpid() << 32 | (uint64_t)my_tid()); }

#define govctl govctl_run

static int publish(const char *object)
{
	char text[1024];
	snprintf(text, sizeof text, "name: kept\ndynamic:\n  - name: ctx\n    mode: ebpf\n    object: %s\n"
		 "    placement: process\n    attach: [{function: work}]\n    fail: native\n", object);
	unsigned long long rev = rule_publish(text);
	return rev > 0 && govrt_wait_table(rev, 3000) == 0;
}

static long id_a, id_b;

static void *thread_main(void *arg)
{
	long *got = arg;
	got[0] = site_a(TID, 0) == my_tid();
	got[1] = site_a(ENTITY, 0) == entity();
	got[2] = site_b(PID, 0) == getpid();
	return NULL;
}

static void *noargs_thread(void *arg)
{
	long *got = arg;
	got[0] = site_a(11, 12) == 11012 && site_b(13, 14) == 13014;
	return NULL;
}

/* signals: the handler makes the other site's call while the main loop
 * may be inside a run on the kept context */
static volatile sig_atomic_t sigs, sig_wrong;
static void on_prof(int sig)
{
	(void)sig;
	int saved = errno;
	if (site_b(SITE, 0) != id_b || site_b(ANSWERS, 0) != 0)
		sig_wrong++;
	sigs++;
	errno = saved;
}

static int after_fork_child(void)
{
	/* the child's only thread: a new pid and tid */
	int bad = 0;
	bad |= site_a(PID, 0) != getpid();
	bad |= site_a(TID, 0) != my_tid();
	bad |= site_a(ENTITY, 0) != entity();
	bad |= site_a(SITE, 0) != id_a;
	return bad;
}

int main(int argc, char **argv)
{
	(void)argc;
	harness_reexec(argv, R, NULL);
	ok(store_agent_start(R) == 0, "a store-subscribed agent starts and the program connects");
	ok(publish(DYN_OBJS "/tests/dyn/ctxid.bpf.o"), "ctxid (writes only answers) reaches the program");

	is_long(site_a(PID, 0), getpid(), "the rule sees the pid");
	is_long(site_a(TID, 0), my_tid(), "... the tid");
	is_long(site_a(ENTITY, 0), entity(), "... the entity, pid << 32 | tid");
	is_long(site_a(FUNC, 0), gov_dyn_id("work"), "... the function id");
	id_a = site_a(SITE, 0);
	id_b = site_b(SITE, 0);
	ok(id_a && id_b && id_a != id_b, "two sites of one function: two site ids");
	is_long(site_a(SITE, 0), id_a, "site a again: its own id");
	is_long(site_b(SITE, 0), id_b, "site b again: its own id");
	is_long(site_a(PID, 0), getpid(), "site a after site b: the pid refilled");
	is_long(site_a(ARGS, 5) - site_a(ARGS, 9), -4, "each call's own arguments");

	/* answers written and not acted on must not leak into the next run */
	is_long(site_a(DIRTY, 3), 7003, "a run that writes every answer field and lets the call run");
	is_long(site_a(ANSWERS, 0), 0, "the next run sees them reset");
	is_long(site_a(ENTITY, 0), entity(), "the entity back to the thread");
	is_long(site_b(DIRTY, 3), 7003, "the same on site b");
	is_long(site_a(ANSWERS, 0), 0, "and on site a after it");

	long got[3] = { 0 };
	pthread_t th;
	ok(pthread_create(&th, NULL, thread_main, got) == 0 && pthread_join(th, NULL) == 0 &&
	   got[0] && got[1] && got[2], "another thread sees its own tid, entity and the pid");
	is_long(site_a(TID, 0), my_tid(), "this thread still its own");

	pid_t child = fork();
	if (child == 0)
		_exit(after_fork_child());
	int st = 0;
	ok(child > 0 && waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "after fork the child sees its own pid, tid and entity on a site the parent used");
	is_long(site_a(PID, 0), getpid(), "the parent still its own");

	/* a signal handler's governed call during a run: the full path on a
	 * context of its own (the busy flag) */
	struct sigaction sa = { .sa_handler = on_prof };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPROF, &sa, NULL);
	struct itimerval it = { .it_interval = { 0, 200 }, .it_value = { 0, 200 } };
	setitimer(ITIMER_PROF, &it, NULL);
	long wrong = 0, calls = 0, helper_wrong = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < 1000; i++, calls++) {
			wrong += site_a(SITE, 0) != id_a || site_a(ANSWERS, 0) != 0;
			/* most of this run is helper calls: the handler's run
			 * lands among them, and must leave the interrupted run
			 * its rule (else its next helper faults) */
			helper_wrong += site_a(HELPERS, i) != i + 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (sigs < 400 && t1.tv_sec - t0.tv_sec < 3);
	struct itimerval off = { 0 };
	setitimer(ITIMER_PROF, &off, NULL);
	diag("%ld calls, %d signals", calls, (int)sigs);
	ok(sigs > 0, "signals arrived during governed calls");
	is_long(wrong, 0, "the interrupted calls saw their own site and clean answers");
	is_long(sig_wrong, 0, "the handlers' calls saw theirs");
	is_long(helper_wrong, 0, "a run interrupted by a handler's run kept its rule for its helpers");

	/* a rule that writes pid and site_id: the full path, fresh each call */
	ok(publish(DYN_OBJS "/tests/dyn/ctxpid.bpf.o"), "ctxpid (writes pid) replaces it");
	is_long(site_a(0, 0), getpid() * 2L + (id_a & 1), "it sees the pid and site a");
	is_long(site_a(0, 0), getpid() * 2L + (id_a & 1), "again: not what it wrote last time");
	is_long(site_b(0, 0), getpid() * 2L + (id_b & 1), "site b: its own");
	child = fork();
	if (child == 0)
		_exit(site_a(0, 0) != getpid() * 2L + (id_a & 1));
	ok(child > 0 && waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "after fork the child sees its own pid");

	/* a helper's fault on the kept path: the fail outcome (native) for
	 * that call only; the flag must not outlive its run */
	ok(publish(DYN_OBJS "/tests/dyn/badhelper.bpf.o"), "badhelper (faults when args[0] is 2)");
	long n1 = site_a(0, 5);
	ok(n1 > 0 && n1 < 1000, "a good run emulates its count (%ld)", n1);
	is_long(site_a(2, 5), 2005, "a bad counter number: the call runs natively");
	is_long(site_a(0, 5), n1 + 2, "the next run is not taken for a faulted one");
	is_long(site_b(0, 5), n1 + 3, "nor one at the other site");

	/* a rule that reads none of the site's argument words: none copied
	 * into the kept context, and its NATIVE_ARGS copies none back */
	ok(publish(DYN_OBJS "/tests/dyn/noargs.bpf.o"), "noargs (reads no argument, answers NATIVE_ARGS)");
	is_long(site_a(3, 4), 3004, "the call runs with its own arguments");
	is_long(site_a(7, 8), 7008, "... on every call");
	is_long(site_b(5, 6), 5006, "... at the other site too");
	ok(pthread_create(&th, NULL, noargs_thread, got) == 0 && pthread_join(th, NULL) == 0 && got[0],
	   "... and in another thread");
	ok(publish(DYN_OBJS "/tests/dyn/argpeek.bpf.o"), "argpeek (reads args[2] alone)");
	is_long(site_a(3, 4), 1, "a word past a two-argument site's reads 0");
	is_long(site_b(9, 9), 1, "... at the other site too");

	ok(publish(DYN_OBJS "/tests/dyn/ctxid.bpf.o"), "ctxid again");
	is_long(site_a(PID, 0), getpid(), "the kept context serves it again: the pid");
	is_long(site_a(ANSWERS, 0), 0, "clean answers");
	ok(govctl(NULL, "agent", "stop", R) == 0, "the agent stops");
	return done_testing();
}
