/* tests/t_tasklet_rule.c - the tasklet rule as a dynamic rule
 * (rules/tasklet/tasklet.c, docs/tasklet.md), built from its source in
 * both modes, with a real agent and two real serving processes: this
 * program (resource tr-drv) calls tr_work(dev, seq) through a governed
 * site; the rule defers each call with dev >= 0 into tasklet dev0 or dev1
 * and lets dev < 0 run now. In eBPF (placement agent and process) and
 * wasm (placement agent):
 *
 *   a deferred call returns 0 at once, before it has run;
 *   each tasklet runs its calls in order, one at a time;
 *   the two tasklets run at the same time;
 *   a call the rule does not defer runs in the program;
 *   a deferred call with an out-buffer is refused (EINVAL), nothing queued;
 *   govagent --stats counts them under the tasklets' names;
 * then a DEFER rule that faults (tests/dyn/defer_div.c) takes its fail
 * outcome with nothing queued, in each mode; a full tasklet refuses with
 * EAGAIN, and a deferred call no process serves is logged as failed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "gov/dynrule.h"
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"

#define DRV "tr-drv"
#define PER 4 /* calls per device */
#define LOCAL 7777

static int in_server, rec_fd = -1;

static long long mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* one line per call, written whole at its end: "DEV SEQ START END" */
long tr_work(long dev, long seq)
{
	if (!in_server)
		return LOCAL;
	long long t0 = mono_us();
	usleep(30000);
	char line[96];
	int n = snprintf(line, sizeof line, "%ld %ld %lld %lld\n", dev, seq, t0, mono_us());
	return write(rec_fd, line, (size_t)n) == n ? 0 : -1;
}
static long work(long dev, long seq) { return GOV_CALL("lll", tr_work, dev, seq); }
/* an out-buffer: deferred by the rule (its first argument, a pointer, is
 * >= 0), which a queued call cannot fill */
long tr_fill(void *out, size_t cap)
{
	memset(out, 'y', cap);
	return (long)cap;
}
static long work0(long seq) { return work(0, seq); }

static int serve_main(void)
{
	in_server = 1;
	return harness_serve_records("TR_RECORD", &rec_fd);
}

struct rec { long dev, seq; long long t0, t1; };

static int read_records(const char *path, struct rec *r, int max)
{
	FILE *f = fopen(path, "r");
	int n = 0;
	while (f && n < max && fscanf(f, "%ld %ld %lld %lld", &r[n].dev, &r[n].seq, &r[n].t0,
				      &r[n].t1) == 4)
		n++;
	if (f)
		fclose(f);
	return n;
}

static unsigned long long table_rev = 1;

static long dev0_scheduled(void);

static void mode_tests(pid_t a, const char *mode, const char *placement, const char *record_path,
		       int round)
{
	char rules[800];
	snprintf(rules, sizeof rules,
		 "dynamic:\n  - name: tasklet\n    mode: %s\n    source: %s\n"
		 "    attach: [{function: tr_work}, {function: tr_fill}]\n    placement: %s\n",
		 mode, DYN_TOP "/rules/tasklet/tasklet.c", placement);
	agent_set_rules(a, DRV, rules);
	ok(govrt_wait_table(++table_rev, 20000) == 0, "%s/%s: rules/tasklet/tasklet.c builds and loads",
	   mode, placement);
	truncate(record_path, 0);

	long bad = 0;
	long long t0 = mono_us();
	for (long i = 1; i <= PER; i++)
		bad += (work(0, i) != 0) + (work(1, i) != 0);
	long long took = mono_us() - t0;
	struct rec r[2 * PER + 4];
	int early = read_records(record_path, r, 2 * PER + 4);
	is_long(bad, 0, "%s/%s: every deferred call returned 0", mode, placement);
	ok(early < 2 * PER, "%s/%s: ... at once (%d of %d had run, %lld us)", mode, placement, early,
	   2 * PER, took);
	is_long(work(-1, 1), LOCAL, "%s/%s: a call the rule does not defer runs in the program", mode,
		placement);
	char buf[16] __attribute__((aligned(16))); /* an even pointer: tasklet dev0 */
	memset(buf, 'x', sizeof buf);
	long before = dev0_scheduled();
	errno = 0;
	long rv = GOV_CALL("loz", tr_fill, buf, sizeof buf);
	int e = errno;
	ok(rv == -1 && e == EINVAL && buf[0] == 'x' && dev0_scheduled() == before,
	   "%s/%s: a deferred call with an out-buffer is refused: -1, EINVAL (%ld, %s), its buffer "
	   "untouched, nothing queued", mode, placement, rv, strerror(e));

	int n = 0;
	for (long long end = now_ms() + 10000; now_ms() < end && n < 2 * PER; usleep(20000))
		n = read_records(record_path, r, 2 * PER + 4);
	is_long(n, 2 * PER, "%s/%s: every deferred call ran once, on a serving process", mode,
		placement);
	int overlap_same = 0, order_ok = 1, overlap_other = 0;
	long last[2] = { 0, 0 };
	for (int i = 0; i < n; i++) {
		int k = r[i].dev == 1;
		if (r[i].seq != last[k] + 1)
			order_ok = 0;
		last[k] = r[i].seq;
		for (int j = 0; j < n; j++) {
			if (i == j || r[i].t0 >= r[j].t1 || r[j].t0 >= r[i].t1)
				continue;
			if (r[i].dev == r[j].dev)
				overlap_same++;
			else
				overlap_other++;
		}
	}
	is_long(overlap_same, 0, "%s/%s: calls of one tasklet never overlap", mode, placement);
	ok(order_ok, "%s/%s: each tasklet ran its calls in order", mode, placement);
	ok(overlap_other > 0, "%s/%s: the two tasklets ran at the same time (%d overlaps)", mode,
	   placement, overlap_other / 2);

	char *const sargv[] = { GOVAGENT_PATH, "--stats", DRV, NULL };
	char *st = NULL, want[2][160];
	run_capture(sargv, &st);
	for (int d = 0; d < 2; d++)
		snprintf(want[d], sizeof want[d],
			 "{\"name\":\"tasklet-%08x\",\"scheduled\":%d,\"ran\":%d,\"failed\":0,",
			 d ? GOV_DYN_ID("dev1") : GOV_DYN_ID("dev0"), PER * round, PER * round);
	ok(st && strstr(st, want[0]) && strstr(st, want[1]),
	   "%s/%s: govagent --stats counts both tasklets", mode, placement);
	if (st && !(strstr(st, want[0]) && strstr(st, want[1])))
		diag("want %s in %s", want[0], st);
	free(st);
}

/* "scheduled" of tasklet dev0 (by id) in the agent's statistics, 0 if none */
static long dev0_scheduled(void)
{
	char *const sargv[] = { GOVAGENT_PATH, "--stats", DRV, NULL };
	char *st = NULL, pat[80];
	run_capture(sargv, &st);
	snprintf(pat, sizeof pat, "{\"name\":\"tasklet-%08x\",\"scheduled\":", GOV_DYN_ID("dev0"));
	char *p = st ? strstr(st, pat) : NULL;
	long n = p ? strtol(p + strlen(pat), NULL, 10) : 0;
	free(st);
	return n;
}

/* A DEFER rule that faults (tests/dyn/defer_div.c, a division by zero):
 * the call takes the rule's fail outcome, and nothing is queued. */
static void fault_tests(pid_t a, const char *mode, const char *placement, const char *fail)
{
	char rules[800];
	snprintf(rules, sizeof rules,
		 "dynamic:\n  - name: deferfault\n    mode: %s\n    source: %s\n"
		 "    attach: [{function: tr_work}]\n    placement: %s\n    fail: %s\n%s"
		 "    max_faults: 0\n",
		 mode, DYN_TOP "/tests/dyn/defer_div.c", placement, fail,
		 strcmp(fail, "deny") == 0 ? "    errno: EIO\n" : "");
	agent_set_rules(a, DRV, rules);
	int loaded = govrt_wait_table(++table_rev, 20000) == 0;
	ok(loaded, "%s/%s: a DEFER rule that faults loads", mode, placement);
	if (!loaded) {
		char *log = agent_log_text(DRV), *p = log ? strstr(log, "event=rule") : NULL;
		diag("%s", p ? p : "(no rule events)");
		free(log);
	}
	long before = dev0_scheduled();
	int deny = strcmp(fail, "deny") == 0;
	errno = 0;
	long rv = work(0, 0); /* seq 0: the rule divides by zero */
	int e = errno;
	if (deny)
		ok(rv == -1 && e == EIO, "%s/%s: the faulting DEFER rule takes its fail outcome, deny "
		   "EIO (%ld, %s)", mode, placement, rv, strerror(e));
	else
		is_long(rv, LOCAL, "%s/%s: the faulting DEFER rule takes its fail outcome, native: it "
			"runs in the program", mode, placement);
	is_long(dev0_scheduled(), before, "%s/%s: ... and nothing was queued", mode, placement);
	is_long(work(0, 1), 0, "%s/%s: the same rule defers a call it does not fault on", mode,
		placement);
	long after = 0;
	for (long long end = now_ms() + 5000; now_ms() < end && after != before + 1; usleep(20000))
		after = dev0_scheduled();
	is_long(after, before + 1, "%s/%s: ... which is queued once", mode, placement);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "serve") == 0)
		return serve_main();
	static const char *const env[] = { "GOV_TIMEOUT_MS=3000", NULL };
	harness_reexec(argv, DRV, env);
	char record_path[512], exports[512], cache[600];
	snprintf(record_path, sizeof record_path, "%s/record", harness_run_dir());
	snprintf(exports, sizeof exports, "%s/" DRV ".exports", harness_run_dir());
	snprintf(cache, sizeof cache, "%s/cache", harness_run_dir());
	setenv("GOV_CACHE_DIR", cache, 1);
	setenv("GOV_INCLUDE_DIR", DYN_TOP "/include", 1);
	setenv("TR_RECORD", record_path, 1);
	FILE *f = fopen(exports, "w");
	fputs("tr_work lll\n", f);
	fclose(f);

	setenv("GOV_TASKLET_QUEUE_MAX", "8", 1); /* for the agent */
	pid_t a = agent_start(DRV, "verdicts: []\n", NULL);
	ok(a > 0 && wait_connected(1, 5000) == 0, "the driver is connected to its agent");
	pid_t servers[2] = { serving_start(argv[0], DRV, exports), serving_start(argv[0], DRV, exports) };

	mode_tests(a, "ebpf", "agent", record_path, 1);
	mode_tests(a, "wasm", "agent", record_path, 2);
	mode_tests(a, "ebpf", "process", record_path, 3);
	fault_tests(a, "ebpf", "agent", "deny");
	fault_tests(a, "wasm", "agent", "deny");
	fault_tests(a, "ebpf", "process", "deny");
	fault_tests(a, "wasm", "agent", "native");
	/* the tasklet rule again, for the bound and the failure below */
	char rules[800];
	snprintf(rules, sizeof rules,
		 "dynamic:\n  - {name: tasklet, mode: ebpf, source: %s, attach: [{function: tr_work}]}\n",
		 DYN_TOP "/rules/tasklet/tasklet.c");
	agent_set_rules(a, DRV, rules);
	ok(govrt_wait_table(++table_rev, 20000) == 0, "the tasklet rule again");
	usleep(200000); /* the calls the fault tests queued have run */

	/* the bound: one call running (30 ms) and 8 queued; the rest refused */
	struct harness_tally t = harness_tally(work0, 100, 112);
	ok(t.again >= 2 && t.ok >= 8 && t.ok <= 10 && t.other == 0,
	   "a full tasklet refuses a deferred call with EAGAIN (%d accepted, %d refused, %d other)",
	   t.ok, t.again, t.other);

	/* no process serves it any more: deferred all the same, then logged */
	for (int i = 0; i < 2; i++) {
		kill(servers[i], SIGKILL);
		waitpid(servers[i], NULL, 0);
	}
	usleep(500000); /* the queue above drains (or fails) */
	is_long(work(1, 99), 0, "with no serving process a call is still deferred");
	int logged = 0;
	char needle[128];
	snprintf(needle, sizeof needle, "event=tasklet_failed resource=" DRV " tasklet=tasklet-%08x "
		 "function=tr_work", GOV_DYN_ID("dev1"));
	for (long long end = now_ms() + 5000; now_ms() < end && !logged; usleep(20000)) {
		char *log = agent_log_text(DRV);
		logged = log && strstr(log, needle);
		free(log);
	}
	ok(logged, "... and its failure is logged with the tasklet and function");
	ok(agent_stop(a) == 0, "the agent stops cleanly");
	return done_testing();
}
