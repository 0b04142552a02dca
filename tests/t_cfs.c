/* tests/t_cfs.c - the cfs rule end to end, with real agents and processes:
 * three caller resources, each its own agent and process, forward calls to
 * one callee (cf-svc) whose serving process records the order it runs
 * them in. With a cfs: section on the callee's agent the share of each
 * caller follows its weight (docs/cfs.md); without one the callers simply
 * take turns. Also: the cfs: section's bad input, and the statistics.
 *
 * Every caller agent has one call in flight at a time (docs/xcall.md), so
 * when a call ends the caller that made it is not waiting yet: the choice
 * is between the other two. With weights 8192 (hi), 2048 (mid) and 1024
 * (lo) that gives hi about half the calls and mid about twice lo's; taking
 * turns gives each about a third. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "ruledoc.h"
#include "tap.h"

#define SVC "cf-svc"
#define NCALLERS 3
static const char *const callers[NCALLERS] = { "cf-hi", "cf-mid", "cf-lo" };
#define LOCAL (-7777)
#define RECORDED 150   /* calls the server records per round */
#define WARMUP 6       /* first calls, before all three are queued */

/* ---- the callee: runs a call for ~2 ms and records its caller's tag ---- */
static int in_server, order_fd = -1;

long cf_work(long tag)
{
	if (!in_server)
		return LOCAL;
	usleep(2000);
	char c = (char)('0' + tag);
	if (write(order_fd, &c, 1) != 1)
		return -1;
	return tag;
}

static int serve_main(void)
{
	in_server = 1;
	order_fd = open(getenv("CFS_ORDER"), O_WRONLY | O_APPEND | O_CREAT, 0644);
	char err[256];
	if (order_fd < 0 || govrt_serve_start(NULL, err, sizeof err) < 0) {
		fprintf(stderr, "serve: %s\n", order_fd < 0 ? strerror(errno) : err);
		return 1;
	}
	for (;;)
		pause();
}

/* ---- a caller: calls until the stop file appears ---- */
static long c_work(long tag) { return GOV_CALL("ll", cf_work, tag); }

static int call_main(long tag)
{
	const char *stop = getenv("CFS_STOP"), *go = getenv("CFS_GO");
	long bad = 0, n = 0;
	/* all three start together, once each is connected to its agent */
	for (long long end = now_ms() + 10000; now_ms() < end && access(go, F_OK) != 0;)
		usleep(1000);
	for (long long end = now_ms() + 20000; now_ms() < end && access(stop, F_OK) != 0; n++)
		if (c_work(tag) != tag)
			bad++;
	if (bad)
		fprintf(stderr, "caller %ld: %ld of %ld calls did not come back from " SVC "\n",
			tag, bad, n);
	return bad ? 1 : 0;
}

/* ---- the test ---- */
static char order_path[512], stop_path[512], go_path[512], exports_path[512];
static pid_t agents[NCALLERS], svc_agent, server;

static pid_t spawn(char *self, const char *resource, const char *what)
{
	pid_t pid = fork();
	if (pid == 0) {
		setenv("GOV_RESOURCE", resource, 1);
		setenv("GOV_EXPORTS", exports_path, 1);
		execl("/proc/self/exe", self, what, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

/* One round: the three callers call at once until RECORDED calls ran.
 * counts[i]: calls of caller i after the warm-up. Returns 0, or -1. */
static int round_of_calls(char *self, long counts[NCALLERS])
{
	unlink(stop_path);
	unlink(go_path);
	/* emptied, not replaced: the server appends to the file it opened */
	if (truncate(order_path, 0) < 0)
		return -1;
	pid_t kids[NCALLERS];
	char tag[8];
	for (int i = 0; i < NCALLERS; i++) {
		snprintf(tag, sizeof tag, "%d", i);
		kids[i] = spawn(self, callers[i], tag);
	}
	for (int i = 0; i < NCALLERS; i++) {
		long want = agent_stat(callers[i], "clients");
		for (long long end = now_ms() + 5000; now_ms() < end && want < 1; usleep(5000))
			want = agent_stat(callers[i], "clients");
	}
	write_file(go_path, "");
	char *order = NULL;
	for (long long end = now_ms() + 15000; now_ms() < end; usleep(5000)) {
		free(order);
		order = read_file(order_path);
		if (order && strlen(order) >= RECORDED)
			break;
	}
	write_file(stop_path, "");
	int failed = 0;
	for (int i = 0; i < NCALLERS; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	memset(counts, 0, NCALLERS * sizeof *counts);
	size_t len = order ? strlen(order) : 0;
	for (size_t k = WARMUP; k < len && k < RECORDED; k++)
		if (order[k] >= '0' && order[k] < '0' + NCALLERS)
			counts[order[k] - '0']++;
	diag("order: %.*s", (int)(len < RECORDED ? len : RECORDED), order ? order : "");
	free(order);
	if (failed || len < RECORDED) {
		char *log = agent_log_text(callers[0]);
		diag("%s's agent log:\n%s", callers[0], log ? log : "(none)");
		free(log);
		return -1;
	}
	return 0;
}

static const char *caller_rules =
	"verdicts:\n  - {function: cf_work, action: forward, to: " SVC "}\n";

static const char *cfs_rules =
	"cfs:\n"
	"  - {from: cf-hi, to: " SVC ", weight: 8192}\n"
	"  - {from: cf-mid, to: " SVC ", weight: 2048}\n"
	"  - {from: cf-lo, to: " SVC "}\n"
	"  - {from: cf-hi, to: some-other-callee, weight: 1}\n";

static void bad_documents(void)
{
	static const struct { const char *what, *text, *where, *why; } cases[] = {
		{ "cfs that is not a list", "cfs:\n  from: a\n", ":2:3:", "'cfs' must be a list" },
		{ "a cfs entry that is not a mapping", "cfs:\n  - a\n", ":2:5:", "is a mapping" },
		{ "a weight of 0", "cfs:\n  - {from: a, to: b, weight: 0}\n", ":2:30:",
		  "'weight' must be an integer from 1 to 1048576 (got '0')" },
		{ "a negative weight", "cfs:\n  - {from: a, to: b, weight: -5}\n", ":2:30:",
		  "(got '-5')" },
		{ "a weight that is not a number", "cfs:\n  - {from: a, to: b, weight: lots}\n",
		  ":2:30:", "(got 'lots')" },
		{ "a weight too large", "cfs:\n  - {from: a, to: b, weight: 1048577}\n", ":2:30:",
		  "(got '1048577')" },
		{ "no to", "cfs:\n  - {from: a, weight: 3}\n", ":2:5:", "needs from and to" },
		{ "no from", "cfs:\n  - {to: a}\n", ":2:5:", "needs from and to" },
		{ "an unknown field", "cfs:\n  - {from: a, to: b, nice: 3}\n", ":2:22:",
		  "unknown field 'nice' in a cfs rule" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[512];
		ok(document_refused(cases[i].text, cases[i].where, cases[i].why, err, sizeof err),
		   "refused: %s (%s)", cases[i].what, err);
	}
	struct gov_ruledoc d;
	char err[512] = "";
	int r = gov_ruledoc_parse(cfs_rules, strlen(cfs_rules), "doc", &d, err, sizeof err);
	ok(r == 0 && d.ncfs == 4 && d.cfs[0].weight == 8192 &&
	   d.cfs[2].weight == GOV_CFS_WEIGHT_DEFAULT && strcmp(d.cfs[1].from, "cf-mid") == 0,
	   "a good cfs section parses, weight defaults to 1024 (%s)", err);
	if (r == 0)
		gov_ruledoc_free(&d);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "serve") == 0)
		return serve_main();
	if (argc > 1 && argv[1][0] >= '0' && argv[1][0] <= '9')
		return call_main(atol(argv[1]));
	static const char *const env[] = { "GOV_TIMEOUT_MS=5000", NULL };
	harness_reexec(argv, NULL, env);
	const char *dir = harness_run_dir();
	snprintf(order_path, sizeof order_path, "%s/order", dir);
	snprintf(stop_path, sizeof stop_path, "%s/stop", dir);
	snprintf(go_path, sizeof go_path, "%s/go", dir);
	setenv("CFS_GO", go_path, 1);
	snprintf(exports_path, sizeof exports_path, "%s/" SVC ".exports", dir);
	setenv("CFS_ORDER", order_path, 1);
	setenv("CFS_STOP", stop_path, 1);
	write_file(exports_path, "cf_work ll\tlong cf_work(long tag)\n");

	bad_documents();

	/* first with no cfs rule: the callers take turns */
	const char *const fwd_extra[] = { "--forward-timeout-ms", "4000", NULL };
	svc_agent = agent_start(SVC, "verdicts: []\n", fwd_extra);
	ok(svc_agent > 0, "the callee's agent runs");
	for (int i = 0; i < NCALLERS; i++)
		agents[i] = agent_start(callers[i], caller_rules, fwd_extra);
	server = spawn(argv[0], SVC, "serve");
	char needle[96];
	snprintf(needle, sizeof needle, "event=server_connected resource=" SVC " pid=%d", (int)server);
	ok(agent_log_has(SVC, needle, 5000), "the callee's process serves cf_work");

	long n[NCALLERS];
	ok(round_of_calls(argv[0], n) == 0, "without cfs: every call of every caller came back");
	diag("without cfs: hi %ld, mid %ld, lo %ld", n[0], n[1], n[2]);
	ok(n[0] * 10 < n[2] * 13 && n[1] * 10 < n[2] * 13,
	   "without cfs the callers take turns (hi %ld, mid %ld, lo %ld)", n[0], n[1], n[2]);

	/* then with weights 8192, 2048 and 1024 */
	long rev = agent_stat(SVC, "rules_rev");
	agent_set_rules(svc_agent, SVC, cfs_rules);
	for (long long end = now_ms() + 5000; now_ms() < end && agent_stat(SVC, "rules_rev") <= rev;)
		usleep(5000);
	ok(agent_stat(SVC, "rules_rev") > rev, "the callee's agent took the cfs rule");
	ok(round_of_calls(argv[0], n) == 0, "with cfs: every call of every caller came back");
	diag("with cfs: hi %ld, mid %ld, lo %ld", n[0], n[1], n[2]);
	ok(n[0] * 10 >= n[1] * 13 && n[0] * 10 >= n[2] * 20,
	   "the heaviest caller is served most (hi %ld, mid %ld, lo %ld)", n[0], n[1], n[2]);
	ok(n[1] * 10 >= n[2] * 15, "weight 2048 is served more than weight 1024 (mid %ld, lo %ld)",
	   n[1], n[2]);

	char *const sargv[] = { GOVAGENT_PATH, "--stats", SVC, NULL };
	char *stats = NULL;
	run_capture(sargv, &stats);
	ok(stats && strstr(stats, "\"cfs\":{\"timed_out\":0,\"callers\":[") &&
	   strstr(stats, "{\"from\":\"cf-hi\",\"calls\":"),
	   "govagent --stats shows cfs per caller");
	if (stats && !strstr(stats, "\"cfs\""))
		diag("%s", stats);
	free(stats);

	/* a bad cfs rule is refused at reload; the rules in force stay */
	rev = agent_stat(SVC, "rules_rev");
	agent_set_rules(svc_agent, SVC, "cfs:\n  - {from: cf-hi, to: " SVC ", weight: 0}\n");
	ok(agent_log_has(SVC, "event=reload_failed", 5000), "a bad cfs rule is refused with why");
	is_long(agent_stat(SVC, "rules_rev"), rev, "the rules in force are kept");

	/* on shm edges a cfs rule keeps the calls on the agents' path: the
	 * callee's agent refuses the direct grant (docs/xcall.md) */
	for (int i = 0; i < NCALLERS; i++) {
		char rules[512];
		snprintf(rules, sizeof rules, "%sprotocols:\n  - {from: %s, to: " SVC ", protocol: shm}\n",
			 caller_rules, callers[i]);
		long crev = agent_stat(callers[i], "rules_rev");
		agent_set_rules(agents[i], callers[i], rules);
		for (long long end = now_ms() + 5000; now_ms() < end && agent_stat(callers[i], "rules_rev") <= crev;)
			usleep(5000);
	}
	ok(round_of_calls(argv[0], n) == 0, "on shm with cfs: every call of every caller came back");
	diag("on shm with cfs: hi %ld, mid %ld, lo %ld", n[0], n[1], n[2]);
	ok(n[0] * 10 >= n[2] * 20, "the heaviest caller is still served most (hi %ld, lo %ld)", n[0], n[2]);
	ok(agent_log_has(callers[0], "a cfs rule schedules the calls into " SVC, 5000),
	   "the callee's agent refused the direct grant, saying why");
	is_long(agent_stat(callers[0], "direct"), 0, "no call went around the cfs queue");

	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	for (int i = 0; i < NCALLERS; i++)
		agent_stop(agents[i]);
	agent_stop(svc_agent);
	return done_testing();
}
