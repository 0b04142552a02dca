/* tests/t_forward_rule.c - a dynamic rule's FORWARD and NATIVE_ARGS when
 * the agent answers (docs/dynrules.md "Actions"): this program (resource
 * df-app) calls df_work(a, b), which resources df-srv and df-alt export
 * (df-srv is named first: it is the function's exporter); the rule
 * tests/dyn/fwd.c is attached to it, in each mode placed in the agent, and
 * in eBPF placed in the process too (there a FORWARD asks the agent, which
 * runs the rule again). df_work returns 10a + b here, and 1000 + 10a + b
 * on df-srv's serving process, 2000 + 10a + b on df-alt's:
 *
 *   a call the rule leaves native runs here;
 *   forward_to 0: the call runs on the function's exporter, df-srv;
 *   forward_to df-alt's id: runs on df-alt;
 *   forward_to an id no rule names: -1, EHOSTUNREACH, logged with why;
 *   NATIVE_ARGS: runs here with the rule's arguments. */
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

#define APP "df-app"
#define SRV "df-srv"
#define ALT "df-alt"

static long where; /* 0 here; 1000 on df-srv's serving process, 2000 on df-alt's */
static int rec_fd = -1;

long df_work(long a, long b) { return where + 10 * a + b; }
static long work(long a, long b) { return GOV_CALL("lll", df_work, a, b); }

static const char *app_rules(const char *mode, const char *placement)
{
	static char buf[1024];
	snprintf(buf, sizeof buf,
		 "resources:\n  - {name: " SRV ", type: service, exports: [df_work]}\n"
		 "  - {name: " ALT ", type: service, exports: [df_work]}\n"
		 "dynamic:\n  - name: fwd\n    mode: %s\n    source: %s\n"
		 "    attach: [{function: df_work}]\n    placement: %s\n",
		 mode, DYN_TOP "/tests/dyn/fwd.c", placement);
	return buf;
}

static void answers(pid_t app, const char *mode, const char *placement)
{
	set_rules(app, APP, app_rules(mode, placement));
	ok(govrt_wait_table((unsigned long long)agent_stat(APP, "rules_rev"), 20000) == 0,
	   "%s/%s: tests/dyn/fwd.c builds and loads", mode, placement);
	is_long(work(1, 2), 12, "%s/%s: a call the rule leaves native runs here", mode, placement);
	is_long(work(100, 2), 2002, "%s/%s: forward_to 0: runs on the function's exporter, %s", mode,
		placement, SRV);
	is_long(work(7, 3), 2073, "%s/%s: forward_to %s's id: runs there", mode, placement, ALT);
	errno = 0;
	long rv = work(8, 3);
	int e = errno;
	ok(rv == -1 && e == EHOSTUNREACH, "%s/%s: forward_to an id no rule names: -1, EHOSTUNREACH "
	   "(%ld, %s)", mode, placement, rv, strerror(e));
	is_long(work(5, 0), 616, "%s/%s: NATIVE_ARGS: runs here with the rule's arguments (55, 66)",
		mode, placement);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "serve") == 0) {
		where = strcmp(getenv("GOV_RESOURCE"), SRV) == 0 ? 1000 : 2000;
		return harness_serve_records("DF_RECORD", &rec_fd);
	}
	harness_reexec(argv, APP, NULL);
	char exports[512], alt_exports[512], record[512];
	harness_file(exports, sizeof exports, SRV ".exports", "df_work lll\n");
	harness_file(alt_exports, sizeof alt_exports, ALT ".exports", "df_work lll\n");
	harness_file(record, sizeof record, "record", NULL);
	setenv("DF_RECORD", record, 1);
	pid_t srv = agent_start(SRV, "name: srv\n", NULL), alt = agent_start(ALT, "name: alt\n", NULL);
	pid_t app = agent_start(APP, app_rules("ebpf", "agent"), NULL);
	ok(srv > 0 && alt > 0 && app > 0 && wait_connected(1, 5000) == 0,
	   "three agents; this program is connected");
	pid_t servers[2] = { serving_start(argv[0], SRV, exports), serving_start(argv[0], ALT, alt_exports) };
	answers(app, "ebpf", "agent");
	answers(app, "wasm", "agent");
	answers(app, "ebpf", "process");
	ok(agent_log_has(APP, "event=forward_failed from=" APP " function=df_work error=\"the rule's "
			 "forward_to (0x", 2000),
	   "the forward to an unknown id is logged by %s's agent, saying why", APP);
	for (int i = 0; i < 2; i++) {
		kill(servers[i], SIGKILL);
		waitpid(servers[i], NULL, 0);
	}
	ok(agent_stop(app) == 0 && agent_stop(srv) == 0 && agent_stop(alt) == 0,
	   "the agents stop cleanly");
	return done_testing();
}
