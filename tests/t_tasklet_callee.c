/* tests/t_tasklet_callee.c - a forwarded CALL of a function that the
 * callee's own tasklets: section lists (docs/tasklet.md "A call of the
 * callee's tasklet"): this program (resource tk-app) calls tk_work(dev,
 * seq), tk_now(n) and tk_fill(out, cap), which resource tk-drv exports.
 * tk-app's rules only forward them (no tasklets: entry reaches its agent,
 * so it sends plain CALLs); tk-drv's rules list tk_work as tasklet dev1
 * and tk_fill as tasklet fill, both with resource: tk-drv. On every
 * protocol (unix, tcp, msgqueue, shm):
 *
 *   each call of tk_work returns 0 at once, before it has run;
 *   every one ran once, on tk-drv's serving processes, in order, one at
 *   a time; tk-drv's agent counts them under dev1; tk-app's agent queued
 *   none itself;
 *   tk_now, which no tasklets: entry names, still runs at once and
 *   returns its value;
 *   on shm, the direct grant tk-app's agent offers after a call went well
 *   is refused (a direct call would pass tk-drv's queues), and the calls
 *   after it are queued too;
 *
 * then, each with nothing queued: tk_fill, whose out-buffer a queued call
 * cannot fill, is refused (-1, EINVAL; the caller's buffer untouched,
 * logged there); a full tasklet (EAGAIN, counted as refused); a tasklet
 * disabled with govctl (ECANCELED, counted as refused), and enabled. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"
#include "tasklet_records.h"

#define APP "tk-app"
#define DRV "tk-drv"
#define PER 3         /* calls per batch */
#define LOCAL 7777    /* what the functions return when they run here */
#define SLOW_SEQ 1000 /* tk_work sleeps 2 s for seq >= this */

static int in_server, rec_fd = -1;

/* one line per call, written whole at its end: "dDEV SEQ START END";
 * 300 ms each, so a batch of PER returning before the last has run is
 * no close race */
long tk_work(long dev, long seq)
{
	if (!in_server)
		return LOCAL;
	long long t0 = mono_us();
	usleep(seq >= SLOW_SEQ ? 2000000 : 300000);
	return record_call(rec_fd, dev, seq, t0);
}
long tk_now(long n) { return in_server ? n + 1 : LOCAL; }
long tk_fill(void *out, size_t cap)
{
	memset(out, in_server ? 'F' : 'L', cap);
	return (long)cap;
}
static long work(long dev, long seq) { return GOV_CALL("lll", tk_work, dev, seq); }
static long work1(long seq) { return work(1, seq); }
static long now(long n) { return GOV_CALL("ll", tk_now, n); }
static long fill(void *out, size_t cap) { return GOV_CALL("loz", tk_fill, out, cap); }

static const char *app_rules(const char *proto)
{
	static char buf[1024];
	snprintf(buf, sizeof buf,
		 "verdicts:\n  - {function: tk_work, action: forward}\n"
		 "  - {function: tk_now, action: forward}\n"
		 "  - {function: tk_fill, action: forward}\n"
		 "resources:\n  - {name: " DRV ", type: driver, exports: [tk_work, tk_now, tk_fill]}\n"
		 "protocols:\n  - {from: " APP ", to: " DRV ", protocol: %s}\n", proto);
	return buf;
}

static const char drv_rules[] =
	"resources:\n  - {name: " DRV ", type: driver, exports: [tk_work, tk_now, tk_fill]}\n"
	"tasklets:\n  - {name: dev1, function: tk_work, resource: " DRV "}\n"
	"  - {name: fill, function: tk_fill, resource: " DRV "}\n";



static long scheduled(void)
{
	long n = tasklet_figure(DRV, "dev1", "scheduled");
	return n < 0 ? 0 : n;
}


static char record_path[512];

/* PER calls of tk_work(dev, 1..PER): each returned 0 before the batch
 * had run, then every one ran once, in order, one at a time, and tk-drv's
 * agent queued them on its tasklet dev1 (whatever dev: the function names
 * the tasklet). */
static void batch(const char *proto, long dev)
{
	truncate(record_path, 0);
	long before = scheduled(), bad = 0;
	for (long i = 1; i <= PER; i++)
		bad += work(dev, i) != 0;
	struct rec r[PER + 2];
	int early = read_records(record_path, r, PER + 2);
	is_long(bad, 0, "%s: each CALL of %s's tasklet returned 0", proto, DRV);
	char *log = bad ? agent_log_text(APP) : NULL, *f = log ? strstr(log, "event=forward_failed") : NULL;
	if (f)
		diag("%.300s", f);
	free(log);
	ok(early < PER, "%s: ... before they had all run (%d of %d had)", proto, early, PER);
	int n = wait_records(record_path, r, PER + 2, PER);
	is_long(n, PER, "%s: every call ran once, on %s's serving processes", proto, DRV);
	char name[8];
	snprintf(name, sizeof name, "d%ld", dev);
	struct rec_check c = check_records(r, n, name);
	ok(c.overlap_same == 0 && c.order_ok && (n < 1 || strcmp(r[0].name, name) == 0),
	   "%s: in the order called, one at a time", proto);
	is_long(scheduled() - before, PER, "%s: %s's agent queued them on its tasklet dev1", proto,
		DRV);
}

static void on_protocol(pid_t app, const char *proto)
{
	set_rules(app, APP, app_rules(proto));
	ok(govrt_wait_table((unsigned long long)agent_stat(APP, "rules_rev"), 20000) == 0,
	   "%s: %s's rules forward the calls, and name no tasklet", proto, APP);
	batch(proto, 1);
	char *st = stats_of(APP);
	ok(st && strstr(st, "\"tasklets\":[]"), "%s: %s's agent queued none itself", proto, APP);
	if (!(st && strstr(st, "\"tasklets\":[]")))
		diag("%s", st ? st : "(no stats)");
	free(st);
	is_long(now(41), 42, "%s: tk_now, no tasklet, runs there at once and returns its value",
		proto);
	if (strcmp(proto, "shm") != 0)
		return;
	/* the first call that went well made tk-app's agent offer a grant */
	ok(agent_log_has(APP, "event=direct_refused from=" APP " to=" DRV " error=\"" DRV
			 " queues the calls of its tasklets\"", 5000),
	   "shm: %s's agent refuses a direct grant, which would pass its queues", DRV);
	batch("shm, after the grant was asked", 2);
	is_long(now(1), 2, "shm: tk_now still answers");
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "serve") == 0) {
		in_server = 1;
		return harness_serve_records("TK_RECORD", &rec_fd);
	}
	static const char *const env[] = { "GOV_TIMEOUT_MS=4000", NULL };
	harness_reexec(argv, APP, env);
	char exports[512];
	harness_file(record_path, sizeof record_path, "record", NULL);
	harness_file(exports, sizeof exports, DRV ".exports", "tk_work lll\ntk_now ll\ntk_fill loz\n");
	setenv("TK_RECORD", record_path, 1);

	/* for tk-drv's agent: a batch fits even before its worker took any */
	char queue_max[8];
	snprintf(queue_max, sizeof queue_max, "%d", PER);
	setenv("GOV_TASKLET_QUEUE_MAX", queue_max, 1);
	const char *const drv_extra[] = { "--edge-tcp", "127.0.0.1:0", NULL };
	pid_t drv = agent_start(DRV, drv_rules, drv_extra);
	unsetenv("GOV_TASKLET_QUEUE_MAX");
	pid_t app = agent_start(APP, app_rules("unix"), NULL);
	ok(drv > 0 && app > 0 && wait_connected(1, 5000) == 0, "two agents; this program is connected");
	pid_t servers[2] = { serving_start(argv[0], DRV, exports), serving_start(argv[0], DRV, exports) };

	const char *protos[] = { "unix", "tcp", "msgqueue", "shm" };
	for (int i = 0; i < 4; i++)
		on_protocol(app, protos[i]);

	/* a call that wants its out-buffer back cannot be queued */
	char buf[16];
	memset(buf, 'x', sizeof buf);
	errno = 0;
	long rv = fill(buf, sizeof buf);
	int e = errno;
	ok(rv == -1 && e == EINVAL, "tk_fill (an out-buffer) of tasklet fill: -1, EINVAL (%ld, %s)",
	   rv, strerror(e));
	ok(buf[0] == 'x' && buf[sizeof buf - 1] == 'x', "... the caller's buffer untouched");
	ok(tasklet_figure(DRV, "fill", "scheduled") <= 0, "... nothing queued");
	ok(agent_log_has(DRV, "event=tasklet_refused resource=" DRV " from=" APP " tasklet=fill "
			 "function=tk_fill error=\"tk_fill of " DRV " is tasklet fill", 2000),
	   "... logged by %s's agent, saying why", DRV);

	/* full: one call running (2 s) and PER queued; the first among them
	 * if the worker has not taken it yet */
	long refused = tasklet_figure(DRV, "dev1", "refused");
	int accepted = work(1, SLOW_SEQ) == 0;
	struct harness_tally t = harness_tally(work1, SLOW_SEQ + 1, SLOW_SEQ + 11);
	accepted += t.ok;
	ok(t.again >= 5 && accepted >= PER && accepted <= PER + 2 && t.other == 0,
	   "a full tasklet refuses a CALL with EAGAIN (%d accepted, %d refused, %d other)", accepted,
	   t.again, t.other);
	is_long(tasklet_figure(DRV, "dev1", "refused") - refused, t.again, "... counted as refused");
	for (long long end = now_ms() + 20000;
	     now_ms() < end && tasklet_figure(DRV, "dev1", "queued") != 0;)
		usleep(50000);
	ok(agent_log_has(APP, "event=forward_failed from=" APP " to=" DRV " function=tk_work", 100),
	   "... which %s's agent logs as a forward that did not run", APP);

	/* disabled with govctl (kept in a store the agent does not follow:
	 * it reads a rule file, govctl says so) */
	store_env();
	ok(govctl_call(NULL, "init", NULL) == 0, "a store for govctl");
	char *out = NULL;
	int rc = govctl_call(&out, "tasklet", "disable", DRV, "dev1", NULL);
	ok(rc == 0, "govctl tasklet disable %s dev1 (exit %d)", DRV, rc);
	if (rc != 0)
		diag("%s", out ? out : "");
	free(out);
	refused = tasklet_figure(DRV, "dev1", "refused");
	long before = scheduled();
	errno = 0;
	rv = work(1, 1);
	e = errno;
	ok(rv == -1 && e == ECANCELED, "a CALL of a disabled tasklet: -1, ECANCELED (%ld, %s)", rv,
	   strerror(e));
	is_long(tasklet_figure(DRV, "dev1", "refused") - refused, 1, "... counted as refused");
	is_long(scheduled(), before, "... nothing queued");
	rc = govctl_call(NULL, "tasklet", "enable", DRV, "dev1", NULL);
	ok(rc == 0 && work(1, 1) == 0, "enabled again, it takes calls (exit %d)", rc);

	ok(agent_stop(drv) == 0, "%s's agent stops cleanly (its queue drained)", DRV);
	for (int i = 0; i < 2; i++) {
		kill(servers[i], SIGKILL);
		waitpid(servers[i], NULL, 0);
	}
	ok(agent_stop(app) == 0, "%s's agent stops cleanly", APP);
	return done_testing();
}
