/* tests/t_load.c - the data path under load: 32 threads x 100k governed
 * calls with no lost, duplicated or mismatched answer; then the agent killed
 * with SIGKILL in the middle of such a load, every call returning per the
 * fail policy within its timeout, and the program reconnecting to a new
 * agent (the outage is measured and printed). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"

#define R "t-load"
#define THREADS 32
#define CALLS 100000
#define TIMEOUT_MS 1000

__attribute__((noinline)) long add(long a, long b) { return a + b; }
__attribute__((noinline)) long mark(long a) { return a; }

static atomic_long mismatches, done_calls, max_call_ns;
static atomic_int stop;

static void *fixed_load(void *arg)
{
	long t = (long)arg;
	for (long i = 0; i < CALLS; i++)
		if (GOV_CALL("lll", add, t * 1000000 + i, 1L) != t * 1000000 + i + 1)
			atomic_fetch_add(&mismatches, 1);
	return NULL;
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *open_load(void *arg)
{
	long t = (long)arg;
	for (long i = 0; !atomic_load(&stop); i++) {
		long long t0 = now_ns();
		if (GOV_CALL("lll", add, t * 1000000 + i % 1000000, 1L) != t * 1000000 + i % 1000000 + 1)
			atomic_fetch_add(&mismatches, 1);
		long d = (long)(now_ns() - t0), m = atomic_load(&max_call_ns);
		while (d > m && !atomic_compare_exchange_weak(&max_call_ns, &m, d))
			;
		atomic_fetch_add(&done_calls, 1);
	}
	return NULL;
}

static void run(void *(*fn)(void *), pthread_t *th)
{
	for (long t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, fn, (void *)t);
}

static void join(pthread_t *th)
{
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
}

static void many_threads(void)
{
	pthread_t th[THREADS];
	struct govrt_stats before, after;
	govrt_stats(&before);
	long long t0 = now_ms();
	run(fixed_load, th);
	join(th);
	long long ms = now_ms() - t0;
	govrt_stats(&after);
	diag("%d threads x %d governed calls in %lld ms", THREADS, CALLS, ms);
	is_long(atomic_load(&mismatches), 0, "every answer matched its call");
	is_long(after.agent_calls - before.agent_calls, (long)THREADS * CALLS,
		"every call got exactly one answer from the agent");
	is_long(agent_stat(R, "calls"), (long)THREADS * CALLS, "the agent saw each call exactly once");
	is_long(after.fail_open + after.fail_closed - before.fail_open - before.fail_closed, 0,
		"no call fell back to the fail outcome");
	is_long(govrt_slots_held(), 0, "every slot was given back");
}

static void kill_mid_load(pid_t agent)
{
	pthread_t th[THREADS];
	atomic_store(&max_call_ns, 0);
	run(open_load, th);
	usleep(300000);
	struct govrt_stats st;
	govrt_stats(&st);
	ok(st.agent_calls > 0, "calls are being served before the kill");
	long long t_kill = now_ns();
	agent_kill(agent);
	usleep(200000);
	govrt_stats(&st);
	uint64_t served_at_restart = st.agent_calls;
	long calls_during = atomic_load(&done_calls);
	agent = agent_start(R, "verdicts:\n  - function: add\n    action: trace\n", NULL);
	ok(agent > 0, "a new agent starts");
	long long t_served = 0;
	for (long long end = now_ms() + 5000; now_ms() < end; usleep(100)) {
		govrt_stats(&st);
		if (st.agent_calls > served_at_restart) {
			t_served = now_ns();
			break;
		}
	}
	ok(t_served > 0, "the program reconnects and the new agent serves its calls");
	diag("outage: %.1f ms from SIGKILL to the first call served by the new agent "
	     "(the new agent was started %.0f ms after the kill)",
	     (t_served - t_kill) / 1e6, 200.0);
	usleep(100000);
	atomic_store(&stop, 1);
	long long t_stop = now_ms();
	join(th);
	ok(now_ms() - t_stop < TIMEOUT_MS + 500, "no thread hangs: all stop within the timeout");
	is_long(atomic_load(&mismatches), 0, "every answer during the outage was right (fail-open)");
	ok(atomic_load(&done_calls) > calls_during, "calls kept returning during the outage");
	govrt_stats(&st);
	ok(st.fail_open > 0, "calls during the outage took the fail-open outcome (%llu)",
	   (unsigned long long)st.fail_open);
	ok(atomic_load(&max_call_ns) < (TIMEOUT_MS + 200) * 1000000L,
	   "no call took longer than its timeout (longest %.1f ms)", atomic_load(&max_call_ns) / 1e6);
	agent_stop(agent);
}

int main(int argc, char **argv)
{
	(void)argc;
	harness_reexec(argv, R, (const char *const[]){ "GOV_TIMEOUT_MS=1000", NULL });
	pid_t agent = agent_start(R, "verdicts:\n  - function: add\n    action: trace\n", NULL);
	ok(agent > 0 && wait_connected(1, 3000) == 0 && govrt_wait_table(1, 1000) == 0,
	   "govrt connects to the agent");
	many_threads();
	kill_mid_load(agent);
	return done_testing();
}
