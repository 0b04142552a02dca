/* tests/t_tasklet.c - the tasklet rule end to end, with a real agent and
 * real processes: this program (resource tk-drv, the driver) schedules
 * calls of two tasklets, rx (tk_rx) and tx (tk_tx); its agent answers at
 * once and runs them later through two serving processes of tk-drv, which
 * record when each call started and ended.
 *
 *   scheduling returns 0 at once, before the call has run;
 *   calls of one tasklet never overlap and run in the order scheduled;
 *   calls of the two tasklets overlap (they run concurrently);
 *   a tasklet whose function no process serves is logged and counted;
 *   a full queue (GOV_TASKLET_QUEUE_MAX=8) refuses with EAGAIN, counted;
 *   a stopping agent runs what is queued first (a scheduling meanwhile is
 *   refused with ESHUTDOWN), and logs what its drain left as dropped;
 *   bad tasklets: sections are refused with where and why. */
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
#include "ruledoc.h"
#include "tap.h"
#include "tasklet_records.h"

#define DRV "tk-drv"
#define PER 5          /* calls scheduled per tasklet */
#define LOCAL (-7777)

static int in_server, rec_fd = -1;

/* one line per call, written whole at its end: "NAME SEQ START END" */
static long record(const char *name, long seq)
{
	if (!in_server)
		return LOCAL;
	long long t0 = mono_us();
	usleep(30000);
	char line[96];
	int n = snprintf(line, sizeof line, "%s %ld %lld %lld\n", name, seq, t0, mono_us());
	return write(rec_fd, line, (size_t)n) == n ? 0 : -1;
}
long tk_rx(long seq) { return record("rx", seq); }
long tk_tx(long seq) { return record("tx", seq); }
long tk_orphan(long seq) { return in_server ? seq : LOCAL; }

static long s_rx(long seq) { return GOV_CALL("ll", tk_rx, seq); }
static long s_tx(long seq) { return GOV_CALL("ll", tk_tx, seq); }
static long schedule_rx_tx(long i) { return (s_rx(i) != 0) + (s_tx(i) != 0); }
static long s_orphan(long seq) { return GOV_CALL("ll", tk_orphan, seq); }

static int serve_main(void)
{
	in_server = 1;
	return harness_serve_records("TK_RECORD", &rec_fd);
}

static const char *rules =
	"verdicts:\n"
	"  - {function: tk_rx, action: forward}\n"
	"  - {function: tk_tx, action: forward}\n"
	"  - {function: tk_orphan, action: forward}\n"
	"tasklets:\n"
	"  - {name: rx, function: tk_rx, resource: " DRV "}\n"
	"  - {name: tx, function: tk_tx}\n"
	"  - {name: orphan, function: tk_orphan}\n"
	"  - {name: elsewhere, function: tk_rx, resource: another-driver}\n";

static void bad_documents(void)
{
	static const struct { const char *what, *text, *where, *why; } cases[] = {
		{ "tasklets that is not a list", "tasklets:\n  name: a\n", ":2:3:",
		  "'tasklets' must be a list" },
		{ "a tasklet that is not a mapping", "tasklets:\n  - a\n", ":2:5:", "is a mapping" },
		{ "no function", "tasklets:\n  - {name: a}\n", ":2:5:", "needs name and function" },
		{ "no name", "tasklets:\n  - {function: f}\n", ":2:5:", "needs name and function" },
		{ "an unknown field", "tasklets:\n  - {name: a, function: f, prio: 3}\n", ":2:28:",
		  "unknown field 'prio' in a tasklet" },
		{ "a bad name", "tasklets:\n  - {name: 'a b', function: f}\n", ":2:12:",
		  "'name' must be 1-63" },
		{ "one function in two tasklets",
		  "tasklets:\n  - {name: a, function: f}\n  - {name: b, function: f}\n", ":3:5:",
		  "function 'f' is already tasklet 'a'" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[512];
		ok(document_refused(cases[i].text, cases[i].where, cases[i].why, err, sizeof err),
		   "refused: %s (%s)", cases[i].what, err);
	}
	struct gov_ruledoc d;
	char err[512] = "";
	int r = gov_ruledoc_parse(rules, strlen(rules), "doc", &d, err, sizeof err);
	ok(r == 0 && d.ntasklets == 4 && strcmp(d.tasklets[0].resource, DRV) == 0 &&
	   !d.tasklets[1].resource[0], "a good tasklets section parses (%s)", err);
	if (r == 0)
		gov_ruledoc_free(&d);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "serve") == 0)
		return serve_main();
	static const char *const env[] = { "GOV_TIMEOUT_MS=3000", NULL };
	harness_reexec(argv, DRV, env);
	char record_path[512], exports[512];
	harness_file(record_path, sizeof record_path, "record", NULL);
	harness_file(exports, sizeof exports, DRV ".exports",
		     "tk_rx ll\ntk_tx ll\n"); /* tk_orphan: served by nobody */
	setenv("TK_RECORD", record_path, 1);

	bad_documents();

	setenv("GOV_TASKLET_QUEUE_MAX", "8", 1); /* for the agent */
	pid_t agent = agent_start(DRV, rules, NULL);
	ok(agent > 0 && wait_connected(1, 5000) == 0, "the driver is connected to its agent");
	pid_t servers[2] = { serving_start(argv[0], DRV, exports), serving_start(argv[0], DRV, exports) };

	check_two_tasklets(record_path, PER, schedule_rx_tx, "rx", "tx");

	is_long(s_orphan(7), 0, "a tasklet nobody serves is still scheduled");
	int logged = 0;
	for (long long end = now_ms() + 5000; now_ms() < end && !logged; usleep(20000)) {
		char *log = agent_log_text(DRV);
		logged = log && strstr(log, "event=tasklet_failed resource=" DRV " tasklet=orphan "
				       "function=tk_orphan");
		free(log);
	}
	ok(logged, "its failure is logged with the tasklet and function");

	char *const sargv[] = { GOVAGENT_PATH, "--stats", DRV, NULL };
	char *stats = NULL;
	run_capture(sargv, &stats);
	ok(stats && strstr(stats, "{\"name\":\"rx\",\"scheduled\":5,\"ran\":5,\"failed\":0,\"queued\":0,"
			       "\"refused\":0,\"dropped\":0,\"disabled\":false}") &&
	   strstr(stats, "{\"name\":\"orphan\",\"scheduled\":1,\"ran\":0,\"failed\":1,\"queued\":0,"
			 "\"refused\":0,\"dropped\":0,\"disabled\":false}"),
	   "govagent --stats counts per tasklet");
	if (stats && !strstr(stats, "\"tasklets\""))
		diag("%s", stats);
	free(stats);

	/* the bound: one call running (30 ms) and 8 queued; the rest refused */
	struct harness_tally t = harness_tally(s_rx, 100, 112);
	int accepted = t.ok, refused = t.again;
	ok(refused >= 2 && accepted >= 8 && accepted <= 10 && t.other == 0,
	   "a full tasklet queue refuses with EAGAIN (%d accepted, %d refused, %d other)", accepted,
	   refused, t.other);
	stats = NULL;
	run_capture(sargv, &stats);
	char want[64];
	snprintf(want, sizeof want, "\"refused\":%d,", refused);
	ok(stats && strstr(stats, want), "the refusals are counted (%s)", want);
	free(stats);

	/* stopping: the queued calls run before the agent goes, and a
	 * scheduling made meanwhile is refused */
	struct rec all[64];
	int base = 2 * PER + accepted;
	is_long(wait_records(record_path, all, 64, base), base, "the bound's accepted calls ran");
	long bad = 0;
	for (long i = 1; i <= 6; i++)
		bad += s_rx(200 + i) != 0;
	kill(agent, SIGTERM);
	usleep(60000); /* inside the drain: 6 calls of 30 ms */
	errno = 0;
	long late = s_rx(299);
	int late_errno = errno;
	waitpid(agent, NULL, 0);
	int n = read_records(record_path, all, 64);
	ok(bad == 0 && n == base + 6, "stopping the agent ran the 6 queued calls first (%d of 6)",
	   n - base);
	ok(late == -1 && late_errno == ESHUTDOWN,
	   "a scheduling while it drains is refused with ESHUTDOWN (%ld, %s)", late,
	   strerror(late_errno));
	char *log = agent_log_text(DRV);
	ok(log && strstr(log, "event=tasklets_drained resource=" DRV " dropped=0"),
	   "the drain is logged, nothing dropped");
	free(log);

	/* a drain that runs out of time: what is still queued is logged as
	 * dropped, per tasklet, with how many */
	for (int i = 0; i < 2; i++) {
		kill(servers[i], SIGKILL);
		waitpid(servers[i], NULL, 0);
	}
	setenv("GOV_TASKLET_DRAIN_MS", "50", 1); /* for the agent */
	agent = agent_start(DRV, rules, NULL);
	ok(agent > 0 && wait_connected(1, 5000) == 0, "a new agent, the driver connected again");
	servers[0] = serving_start(argv[0], DRV, exports);
	servers[1] = serving_start(argv[0], DRV, exports);
	bad = 0;
	for (long i = 1; i <= 8; i++)
		bad += s_rx(300 + i) != 0;
	agent_stop(agent);
	long dropped = -1;
	log = agent_log_text(DRV);
	const char *at = NULL;
	for (const char *p = log; p && (p = strstr(p, "event=tasklet_dropped resource=" DRV
						   " tasklet=rx dropped=")); p++)
		at = p;
	if (at)
		sscanf(strstr(at, "dropped=") + 8, "%ld", &dropped);
	ok(at && strstr(at, "GOV_TASKLET_DRAIN_MS=50"), "the calls left are logged as dropped, "
	   "with why");
	free(log);
	usleep(100000); /* a call the drain let go mid-run ends in its serving process */
	int ran = wait_records(record_path, all, 64, base + 6 + 8 - (int)dropped) - base - 6;
	ok(bad == 0 && dropped >= 4 && ran + dropped == 8,
	   "each of the 8 scheduled calls either ran or was counted dropped (%d ran, %ld dropped)",
	   ran, dropped);

	for (int i = 0; i < 2; i++) {
		kill(servers[i], SIGKILL);
		waitpid(servers[i], NULL, 0);
	}
	return done_testing();
}
