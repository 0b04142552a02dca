/* tests/t_dyn_file.c - dynamic rules from a rules file (govagent --rules
 * FILE): the agent compiles a source or reads an object relative to the
 * file, a SIGHUP reload replaces the rule live, a rule that no longer
 * builds leaves its calls to its fail outcome (logged, agent alive), and a
 * malformed dynamic entry stops the agent at start with file:line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"

#define R "t-dyn-file"

__attribute__((noinline)) long work(long a, long b) { return a + b + 1000; }
static long gwork(long a, long b) { return GOV_CALL("lll", work, a, b); }

static char rules[1200];

static const char *doc(const char *mode, const char *key, const char *path)
{
	snprintf(rules, sizeof rules,
		 "dynamic:\n  - name: divide\n    mode: %s\n    %s: %s\n    attach: [{function: work}]\n"
		 "    fail: emulate\n    value: -5\n", mode, key, path);
	return rules;
}

int main(int argc, char **argv)
{
	(void)argc;
	harness_reexec(argv, R, NULL);
	char cache[600];
	snprintf(cache, sizeof cache, "%s/cache", harness_run_dir());
	setenv("GOV_CACHE_DIR", cache, 1);
	setenv("GOV_INCLUDE_DIR", DYN_TOP "/include", 1);
	pid_t a = agent_start(R, doc("wasm", "source", DYN_TOP "/tests/dyn/div.c"), NULL);
	ok(a > 0 && wait_connected(1, 5000) == 0 && govrt_wait_table(1, 3000) == 0,
	   "an agent with a wasm rule compiled from its source starts");
	is_long(gwork(0, 4), 25, "the rule answers: 100 / 4");
	agent_set_rules(a, R, doc("ebpf", "object", DYN_OBJS "/tests/dyn/div.bpf.o"));
	ok(govrt_wait_table(2, 3000) == 0, "SIGHUP reloads the file");
	is_long(gwork(0, 5), 20, "the eBPF object now answers: 100 / 5");
	agent_set_rules(a, R, doc("ebpf", "source", "/nonexistent/rule.c"));
	ok(govrt_wait_table(3, 3000) == 0, "a reload whose rule does not build still applies the file");
	is_long(gwork(0, 5), -5, "that rule's calls take its fail outcome");
	char *log = agent_log_text(R);
	has_str(log, "event=rule_unloadable rule=rule/divide", "the agent logged why");
	free(log);
	ok(agent_stat(R, "calls") > 0, "the agent is alive");
	ok(WIFEXITED(agent_stop(a)), "it stops cleanly");

	pid_t b = agent_start(R, "dynamic:\n  - mode: ebpf\n    attach: [{function: work}]\n", NULL);
	int st = b > 0 ? agent_stop(b) : 0;
	log = agent_log_text(R);
	ok(b <= 0 || (WIFEXITED(st) && WEXITSTATUS(st) == 2) || strstr(log ? log : "", "needs 'source'"),
	   "a dynamic entry without source or object stops the agent at start");
	free(log);
	return done_testing();
}
