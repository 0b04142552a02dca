/* tests/t_process.c - governed programs doing what real programs do: fork,
 * exec, threads that come and go, more callers than slots, signals in the
 * middle of a wait (with a governed call in the handler), an agent that
 * hangs, and an argument too large for a slot. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"

#define R "t-process"
#define SLOTS "4"

__attribute__((noinline)) long add(long a, long b) { return a + b; }
__attribute__((noinline)) long sum(const void *p, size_t n)
{
	long s = 0;
	for (size_t i = 0; i < n; i++)
		s += ((const unsigned char *)p)[i];
	return s;
}

static long gadd(long a, long b) { return GOV_CALL("lll", add, a, b); }

static uint64_t agent_calls(void)
{
	struct govrt_stats st;
	govrt_stats(&st);
	return st.agent_calls;
}

static int some_calls_served(int n)
{
	uint64_t before = agent_calls();
	for (int i = 0; i < n; i++)
		if (gadd(i, 1) != i + 1)
			return 0;
	return agent_calls() - before == (uint64_t)n;
}

static void test_fork(void)
{
	ok(some_calls_served(10), "before fork: calls are served by the agent");
	pid_t pid = fork();
	if (pid == 0) {
		/* the child has its own connection: its counters start from the
		 * parent's, and only its own round trips add to them */
		_exit(some_calls_served(100) && govrt_connected() ? 0 : 1);
	}
	int ok_parent = some_calls_served(100);
	int st;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "after fork: the child's calls are served");
	ok(ok_parent && some_calls_served(10), "after fork: the parent's calls are still served");
}

static void test_exec(char **argv)
{
	pid_t pid = fork();
	if (pid == 0) {
		char *args[] = { argv[0], "exec-child", NULL };
		execv("/proc/self/exe", args);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "after exec: the new image registers again and its calls are served");
}

static void *ten_calls(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)some_calls_served(10);
}

static void test_thread_churn(void)
{
	int good = 0;
	uint64_t before = agent_calls();
	for (int i = 0; i < 300; i++) {
		pthread_t t;
		void *r;
		pthread_create(&t, NULL, ten_calls, NULL);
		pthread_join(t, &r);
		good += r != NULL;
	}
	is_long(good, 300, "300 threads created and ended one after another: all served");
	is_long(agent_calls() - before, 3000, "3000 calls answered with only " SLOTS " slots");
	is_long(govrt_slots_held(), 0, "no slot is left held by a thread that ended");
}

static atomic_int go;
static void *contend(void *arg)
{
	(void)arg;
	while (!atomic_load(&go))
		;
	for (int i = 0; i < 2000; i++)
		if (gadd(i, 1) != i + 1)
			return NULL;
	return (void *)1;
}

static void test_full_slots(void)
{
	pthread_t t[16];
	struct govrt_stats before, after;
	govrt_stats(&before);
	atomic_store(&go, 0);
	for (int i = 0; i < 16; i++)
		pthread_create(&t[i], NULL, contend, NULL);
	atomic_store(&go, 1);
	int good = 0;
	for (int i = 0; i < 16; i++) {
		void *r;
		pthread_join(t[i], &r);
		good += r != NULL;
	}
	govrt_stats(&after);
	is_long(good, 16, "16 threads on " SLOTS " slots: every answer right");
	/* With GOV_TIMEOUT_MS=300 on a loaded machine (CI shares it) a call can
	 * outwait its timeout; it then takes the fail outcome, as designed. */
	uint64_t timeouts = after.timeouts - before.timeouts;
	if (timeouts)
		diag("%llu call(s) outwaited GOV_TIMEOUT_MS=300 (machine load)", (unsigned long long)timeouts);
	is_long(after.agent_calls - before.agent_calls + timeouts, 16 * 2000,
		"every call served by the agent (or, past its timeout, failed open): none lost");
	ok(after.slot_waits > before.slot_waits, "callers that found every slot taken waited (%llu)",
	   (unsigned long long)(after.slot_waits - before.slot_waits));
	is_long(after.fail_open - before.fail_open, (long)timeouts,
		"none fell back to the fail outcome but for a timeout");
}

static atomic_int alarms, nested_bad;
static void on_alarm(int sig)
{
	(void)sig;
	atomic_fetch_add(&alarms, 1);
	int saved = errno;
	if (gadd(40, 2) != 42) /* a governed call inside the handler */
		atomic_fetch_add(&nested_bad, 1);
	errno = saved;
}

static void test_signals(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 300 }, { 0, 300 } };
	setitimer(ITIMER_REAL, &it, NULL);
	uint64_t before = agent_calls();
	int bad = 0, calls = 0;
	for (long long end = now_ms() + 300; now_ms() < end; calls++)
		bad += gadd(calls, 2) != calls + 2;
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_DFL);
	ok(atomic_load(&alarms) > 10, "signals arrived during governed calls (%d)", atomic_load(&alarms));
	is_long(bad, 0, "every interrupted call still got its own answer");
	is_long(atomic_load(&nested_bad), 0, "governed calls made inside the signal handler were answered");
	is_long(agent_calls() - before, calls + atomic_load(&alarms),
		"each call, interrupted or nested, was answered exactly once");
}

static void test_hung_agent(pid_t agent)
{
	kill(agent, SIGSTOP);
	ok(wait_stopped(agent) == 0, "the agent is stopped (SIGSTOP)");
	struct govrt_stats before, after;
	govrt_stats(&before);
	long long t0 = now_ms();
	long r = gadd(20, 22);
	long long took = now_ms() - t0;
	govrt_stats(&after);
	is_long(r, 42, "a call to a hung agent fails open: it runs natively");
	ok(took >= 250 && took < 1500, "after its timeout (%lld ms, GOV_TIMEOUT_MS=300)", took);
	is_long(after.timeouts - before.timeouts, 1, "and is counted as a timeout");
	kill(agent, SIGCONT);
	ok(some_calls_served(100), "when the agent resumes, calls are served again");
	is_long(govrt_slots_held(), 0, "the abandoned slot was given back by the agent");
}

static void test_oversized(void)
{
	size_t n = 300000;
	unsigned char *big = malloc(n);
	memset(big, 1, n);
	struct govrt_stats before, after;
	govrt_stats(&before);
	long r = GOV_CALL("lbz", sum, (const void *)big, n);
	govrt_stats(&after);
	is_long(r, (long)n, "an argument larger than a slot: the call still runs (fail-open)");
	is_long(after.fail_open - before.fail_open, 1, "and is counted as fail-open, not lost");
	unsigned char small[1000];
	memset(small, 2, sizeof small);
	uint64_t calls = agent_calls();
	is_long(GOV_CALL("lbz", sum, (const void *)small, sizeof small), 2000,
		"a buffer that fits travels to the agent");
	is_long(agent_calls() - calls, 1, "and is answered");
	free(big);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "exec-child") == 0) {
		wait_connected(1, 3000);
		return some_calls_served(50) ? 0 : 1;
	}
	harness_reexec(argv, R, (const char *const[]){ "GOV_TIMEOUT_MS=300", NULL });
	pid_t agent = agent_start(R,
				  "verdicts:\n  - function: add\n    action: trace\n"
				  "  - function: sum\n    action: trace\n",
				  (const char *const[]){ "--slots", SLOTS, "--spin-us", "0", NULL });
	ok(agent > 0 && wait_connected(1, 3000) == 0 && govrt_wait_table(1, 1000) == 0,
	   "govrt connects to a sleeping agent with " SLOTS " slots");
	test_fork();
	test_exec(argv);
	test_thread_churn();
	test_full_slots();
	test_signals();
	test_hung_agent(agent);
	test_oversized();
	agent_stop(agent);
	return done_testing();
}
