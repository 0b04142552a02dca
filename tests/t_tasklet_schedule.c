/* tests/t_tasklet_schedule.c - govrt_tasklet_schedule end to end, with a
 * real agent and real serving processes: this program (resource ts-drv,
 * the driver) schedules calls of its exported ts_a and ts_b under
 * tasklets "a" and "b"; two serving processes of ts-drv record when each
 * call started and ended.
 *
 *   scheduling returns 0 at once, before the call has run;
 *   calls under one name never overlap and run in the order scheduled;
 *   calls under two names overlap (they run concurrently);
 *   every error: EINVAL (bad name or function, before any request),
 *   ENOENT (not exported here), EAGAIN (queue full), ENOTCONN (no agent,
 *   before it starts and after it stops), and nothing queued for them. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"
#include "tasklet_records.h"

#define DRV "ts-drv"
#define PER 5 /* calls scheduled per tasklet */

static int rec_fd = -1;

/* one line per call, written whole at its end: "NAME SEQ START END" */
static long record(const char *name, long seq)
{
	long long t0 = mono_us();
	usleep(30000);
	char line[96];
	int n = snprintf(line, sizeof line, "%s %ld %lld %lld\n", name, seq, t0, mono_us());
	return write(rec_fd, line, (size_t)n) == n ? 0 : -1;
}
long ts_a(long seq) { return record("a", seq); }
long ts_b(long seq) { return record("b", seq); }

static int serve_main(void)
{
	return harness_serve_records("TS_RECORD", &rec_fd);
}

/* ts_c: exported by another resource, so not this agent's to run */
static const char *rules =
	"resources:\n"
	"  - {name: " DRV ", type: service, exports: [ts_a, ts_b]}\n"
	"  - {name: ts-other, type: service, exports: [ts_c]}\n";

/* -1 with errno want, for what */
static void refused(int got, int want, const char *what)
{
	int e = errno;
	ok(got == -1 && e == want, "%s: -1 with %s (got %d, %s)", what, strerrorname_np(want), got,
	   strerrorname_np(e) ? strerrorname_np(e) : "0");
}

static void bad_arguments(void)
{
	char long_name[80];
	memset(long_name, 'n', 64);
	long_name[64] = 0;
	errno = 0;
	refused(govrt_tasklet_schedule(NULL, "ts_a", 1), EINVAL, "no name");
	refused(govrt_tasklet_schedule("", "ts_a", 1), EINVAL, "an empty name");
	refused(govrt_tasklet_schedule("a b", "ts_a", 1), EINVAL, "a name with a space");
	refused(govrt_tasklet_schedule(".a", "ts_a", 1), EINVAL, "a name starting with a dot");
	refused(govrt_tasklet_schedule(long_name, "ts_a", 1), EINVAL, "a name of 64 bytes");
	refused(govrt_tasklet_schedule("a", NULL, 1), EINVAL, "no function");
	refused(govrt_tasklet_schedule("a", "", 1), EINVAL, "an empty function");
	refused(govrt_tasklet_schedule("a", long_name, 1), EINVAL, "a function of 64 bytes");
}

static char *stats(void)
{
	char *const sargv[] = { GOVAGENT_PATH, "--stats", DRV, NULL };
	char *out = NULL;
	run_capture(sargv, &out);
	return out;
}

static long schedule_a_b(long i)
{
	return (govrt_tasklet_schedule("a", "ts_a", i) != 0) +
	       (govrt_tasklet_schedule("b", "ts_b", i) != 0);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "serve") == 0)
		return serve_main();
	static const char *const env[] = { "GOV_TIMEOUT_MS=3000", NULL };
	harness_reexec(argv, DRV, env);
	char record_path[512], exports[512];
	harness_file(record_path, sizeof record_path, "record", NULL);
	harness_file(exports, sizeof exports, DRV ".exports", "ts_a ll\nts_b ll\n");
	setenv("TS_RECORD", record_path, 1);

	bad_arguments();
	refused(govrt_tasklet_schedule("a", "ts_a", 1), ENOTCONN, "before the agent starts");

	setenv("GOV_TASKLET_QUEUE_MAX", "8", 1); /* for the agent */
	pid_t agent = agent_start(DRV, rules, NULL);
	ok(agent > 0 && wait_connected(1, 5000) == 0, "the driver is connected to its agent");
	bad_arguments(); /* refused here, connected or not */
	refused(govrt_tasklet_schedule("a", "ts_nope", 1), ENOENT, "a function nobody exports");
	refused(govrt_tasklet_schedule("a", "ts_c", 1), ENOENT,
		"a function another resource exports");
	char *log = agent_log_text(DRV);
	ok(log && strstr(log, "event=tasklet_refused resource=" DRV " tasklet=a function=ts_nope "
			      "error=\"this resource does not export it"),
	   "the agent logs the refusal with tasklet, function and why");
	free(log);
	char *st = stats();
	ok(st && strstr(st, "\"tasklets\":[]"), "nothing was queued for the refused calls");
	if (st && !strstr(st, "\"tasklets\":[]"))
		diag("%s", st);
	free(st);

	pid_t servers[2] = { serving_start(argv[0], DRV, exports), serving_start(argv[0], DRV, exports) };
	check_two_tasklets(record_path, PER, schedule_a_b, "a", "b");

	st = stats();
	ok(st && strstr(st, "{\"name\":\"a\",\"scheduled\":5,\"ran\":5,\"failed\":0,\"queued\":0,"
			    "\"refused\":0,\"dropped\":0,\"disabled\":false}") &&
	   strstr(st, "{\"name\":\"b\",\"scheduled\":5,\"ran\":5,\"failed\":0,\"queued\":0,"
		      "\"refused\":0,\"dropped\":0,\"disabled\":false}"),
	   "govagent --stats counts per name");
	free(st);

	/* the bound: one call running (30 ms) and 8 queued; the rest refused */
	int accepted = 0, full = 0, other = 0;
	for (long i = 100; i < 112; i++) {
		errno = 0;
		int rv = govrt_tasklet_schedule("a", "ts_a", i);
		if (rv == 0)
			accepted++;
		else if (rv == -1 && errno == EAGAIN)
			full++;
		else
			other++;
	}
	ok(full >= 2 && accepted >= 8 && accepted <= 10 && other == 0,
	   "a full queue refuses with EAGAIN (%d accepted, %d refused, %d other)", accepted, full,
	   other);

	for (int i = 0; i < 2; i++) {
		kill(servers[i], SIGKILL);
		waitpid(servers[i], NULL, 0);
	}
	agent_stop(agent);
	for (long long end = now_ms() + 5000; now_ms() < end && govrt_connected(); usleep(10000))
		;
	refused(govrt_tasklet_schedule("a", "ts_a", 1), ENOTCONN, "after the agent stopped");
	return done_testing();
}
