/* tests/t_dyn_agent.c - dynamic rules published with govctl and run by a
 * real store-subscribed agent for a real governed program (placement
 * agent), in both modes: answers, live replacement by a new version,
 * rollback, faults in the agent (division by zero, an endless wasm loop)
 * turned into the fail outcome, counted and disabling the rule without
 * taking the agent down, and publishes refused with the reason and nothing
 * written (a rule the verifier refuses, wasm placed in the process, bad
 * fields). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"

#define R "t-dyn-agent"

__attribute__((noinline)) long work(long a, long b) { return a + b + 1000; }
static long gwork(long a, long b) { return GOV_CALL("lll", work, a, b); }
__attribute__((noinline)) long unlink_like(const char *p) { (void)p; return 0; }

static __attribute__((noinline)) int govctl(char **out, const char *a1, const char *a2, const char *a3, const char *a4,
		  const char *a5)
{
	char *const argv[] = { GOVCTL_PATH, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, NULL };
	char *o;
	int st = run_capture(argv, &o);
	if (out)
		*out = o;
	else
		free(o);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *write_rule(const char *name, const char *fmt, const char *a, const char *b)
{
	static char path[600];
	snprintf(path, sizeof path, "%s/%s.yaml", harness_run_dir(), name);
	FILE *f = fopen(path, "w");
	fprintf(f, fmt, a, b);
	fclose(f);
	return path;
}

/* Publishes; returns the revision (0 if refused), output in *out. */
static unsigned long long publish(const char *file, char **out)
{
	char *o = NULL;
	int rc = govctl(&o, "rule", "publish", file, NULL, NULL);
	unsigned long long rev = 0;
	if (rc == 0 && o && strstr(o, "at revision "))
		rev = strtoull(strstr(o, "at revision ") + 12, NULL, 10);
	if (out)
		*out = o;
	else
		free(o);
	return rev;
}

static const char divide[] =
	"name: div\n"
	"dynamic:\n"
	"  - name: divide\n"
	"    mode: %s\n"
	"    object: %s\n"
	"    attach: [{function: work}]\n"
	"    fail: deny\n"
	"    errno: EIO\n"
	"    max_faults: 2\n";

static char *stats(void)
{
	char *const argv[] = { GOVAGENT_PATH, "--stats", R, NULL };
	char *o;
	run_capture(argv, &o);
	return o;
}

int main(int argc, char **argv)
{
	(void)argc;
	harness_reexec(argv, R, NULL);
	store_env();
	setenv("GOV_INCLUDE_DIR", DYN_TOP "/include", 1);
	char *out, *hist;
	govctl(NULL, "init", NULL, NULL, NULL, NULL);
	unsigned long long rev = publish(write_rule("v1", divide, "ebpf", DYN_OBJS "/tests/dyn/div.bpf.o"), &out);
	ok(rev > 0, "an eBPF rule (placement agent) is published: %s", out);
	free(out);
	is_long(govctl(&out, "agent", "start", R, NULL, NULL), 0, "a store-subscribed agent starts");
	free(out);
	ok(wait_connected(1, 3000) == 0 && govrt_wait_table(rev, 2000) == 0, "the program connects and has the table");
	struct govrt_stats st;
	govrt_stats(&st);
	uint64_t before = st.agent_calls;
	is_long(gwork(0, 4), 25, "ebpf in the agent: work(0, 4) emulated as 100 / 4");
	govrt_stats(&st);
	is_long(st.agent_calls - before, 1, "... answered by the agent");
	errno = 0;
	ok(gwork(0, 0) == -1 && errno == EIO, "a division by zero in the rule: the fail outcome (EIO)");
	out = stats();
	has_str(out, "\"faults\":1", "the agent counted the fault");
	free(out);
	errno = 0;
	ok(gwork(0, 0) == -1 && errno == EIO, "a second fault");
	out = stats();
	has_str(out, "\"disabled\":true", "... disables the rule (max_faults 2)");
	free(out);
	errno = 0;
	ok(gwork(0, 4) == -1 && errno == EIO, "a disabled rule answers its fail outcome");
	ok(agent_stat(R, "calls") > 0, "the agent is alive");

	/* a new version replaces the running one live: wasm this time */
	rev = publish(write_rule("v2", divide, "wasm", DYN_OBJS "/tests/dyn/div.wasm"), &out);
	ok(rev > 0, "version 2 (the same rule in wasm) is published: %s", out);
	free(out);
	ok(govrt_wait_table(rev, 3000) == 0, "the program gets the new table");
	is_long(gwork(0, 5), 20, "wasm in the agent: work(0, 5) emulated as 20 (the new version, enabled)");
	errno = 0;
	ok(gwork(0, 0) == -1 && errno == EIO, "wasm: a division by zero traps: fail outcome");

	/* refusals: nothing written */
	govctl(&hist, "rule", "history", "div", NULL, NULL);
	ok(publish(write_rule("loop", divide, "ebpf", DYN_OBJS "/tests/dyn/loop.bpf.o"), &out) == 0,
	   "an eBPF rule with a loop is refused at publish");
	has_str(out, "loop.yaml:3:5: dynamic rule divide refused: rule divide: refused by the eBPF verifier",
		"with file:line:col and the verifier's reason");
	has_str(out, "loops", "naming the loop");
	has_str(out, "nothing published", "and nothing is published");
	free(out);
	ok(publish(write_rule("oob", divide, "ebpf", DYN_OBJS "/tests/dyn/oob.bpf.o"), &out) == 0,
	   "an out-of-bounds eBPF rule is refused at publish");
	has_str(out, "memory boundary violation", "with the verifier's reason");
	free(out);
	ok(publish(write_rule("proc", "name: div\ndynamic:\n  - mode: wasm\n    object: %s\n    placement: process\n"
			      "    attach: [{function: work}]\n%s", DYN_OBJS "/tests/dyn/div.wasm", ""), &out) == 0,
	   "wasm with placement process is refused");
	has_str(out, "proc.yaml:5:16: placement 'process' is eBPF only", "with where and why");
	free(out);
	ok(publish(write_rule("junk", divide, "wasm", DYN_OBJS "/tests/dyn/div.bpf.o"), &out) == 0,
	   "an eBPF object given as wasm is refused");
	has_str(out, "not a wasm module", "saying so");
	free(out);
	ok(publish(write_rule("missing", divide, "ebpf", "/nonexistent.o"), &out) == 0, "a missing object is refused");
	has_str(out, "cannot open", "saying so");
	free(out);
	ok(publish(write_rule("nosrc", "name: div\ndynamic:\n  - mode: ebpf\n    source: %s\n"
			      "    attach: [{function: work}]\n%s", "/nonexistent.c", ""), &out) == 0,
	   "a source that does not compile is refused");
	has_str(out, "cannot compile", "with the compiler's reason");
	free(out);
	static const char *const bad[][2] = {
		{ "    attach: []\n", "'attach' must be a non-empty list" },
		{ "    attach: [{syscall: nosuch}]\n", "unknown syscall 'nosuch'" },
		{ "    attach: [{function: work}]\n    fail: maybe\n", "unknown fail outcome 'maybe'" },
		{ "    attach: [{function: work}]\n    errno: EIO\n", "'errno' only goes with fail: deny" },
		{ "    attach: [{function: work}]\n    budget_us: 5\n", "'budget_us' is the budget of a wasm rule" },
		{ "    attach: [{function: work}]\n    max_faults: -1\n", "out of range" },
		{ "    attach: [{function: work}]\n    colour: red\n", "unknown field 'colour'" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ok(publish(write_rule("bad", "name: div\ndynamic:\n  - mode: ebpf\n    object: %s\n%s",
				      DYN_OBJS "/tests/dyn/div.bpf.o", bad[i][0]), &out) == 0,
		   "refused: %s", bad[i][1]);
		has_str(out, bad[i][1], "... saying so");
		free(out);
	}
	ok(publish(write_rule("bad", "name: div\nverdicts:\n  - function: work\n    action: rule\n%s%s", "", ""), &out) == 0,
	   "action 'rule' by hand is refused");
	free(out);
	govctl(&out, "rule", "history", "div", NULL, NULL);
	ok(strcmp(out, hist) == 0, "the rule's history is unchanged by all the refusals");
	free(out);
	free(hist);
	is_long(gwork(0, 5), 20, "and the program's behaviour too");

	/* rollback republishes version 1 with version 1's object */
	is_long(govctl(&out, "rule", "rollback", "div", "--to", "1"), 0, "rollback to version 1");
	rev = strtoull(strstr(out, "at revision ") ? strstr(out, "at revision ") + 12 : "0", NULL, 10);
	free(out);
	ok(govrt_wait_table(rev, 3000) == 0 && gwork(0, 10) == 10, "the eBPF version runs again, with fresh state");

	/* the deny rule from its C source, compiled at publish */
	rev = publish(write_rule("deny", "name: deny\ndynamic:\n  - name: guard\n    mode: ebpf\n    source: %s\n"
				 "    attach: [{function: unlink}]\n%s", DYN_TOP "/rules/deny/deny.c", ""), &out);
	ok(rev > 0, "the deny rule is published from its source: %s", out);
	free(out);
	ok(govrt_wait_table(rev, 3000) == 0, "... and reaches the program");
	errno = 0;
	ok(GOV_CALL("lp", unlink, "/nonexistent/t-dyn-agent") == -1 && errno == EACCES,
	   "unlink is denied with EACCES by the rule (not ENOENT)");

	/* a wasm rule that never ends: the agent stops it and carries on */
	rev = publish(write_rule("v9", "name: div\ndynamic:\n  - name: divide\n    mode: wasm\n    object: %s\n"
				 "    attach: [{function: work}]\n    fail: emulate\n    value: -7\n    budget_us: 2000\n%s",
				 DYN_OBJS "/tests/dyn/loop.wasm", ""), &out);
	ok(rev > 0, "an endless wasm loop is published (validation cannot see it)");
	free(out);
	long long t0 = now_ms();
	ok(govrt_wait_table(rev, 3000) == 0 && gwork(1, 1) == -7, "its run is stopped: fail outcome (emulate -7)");
	diag("stopped after %lld ms", now_ms() - t0);
	ok(gwork(1, 1) == -7 && agent_stat(R, "calls") > 0, "again, and the agent is alive");
	char *log = agent_log_text(R);
	has_str(log, "over its time budget", "the agent logged why");
	free(log);

	/* the other wasm faults in the agent, where the context is built in
	 * the rule's memory: an out-of-bounds read, helpers with bad arguments */
	static const char faulty[] = "name: div\ndynamic:\n  - name: divide\n    mode: wasm\n    object: %s\n"
				     "    attach: [{function: work}]\n    fail: emulate\n    value: -9\n"
				     "    max_faults: 0\n%s";
	rev = publish(write_rule("v10", faulty, DYN_OBJS "/tests/dyn/oob.wasm", ""), &out);
	free(out);
	ok(rev > 0 && govrt_wait_table(rev, 3000) == 0 && gwork(1, 1) == -9,
	   "wasm in the agent: an out-of-bounds read traps: fail outcome (emulate -9)");
	ok(gwork(1, 1) == -9 && agent_stat(R, "calls") > 0, "again, and the agent is alive");
	/* the edges of its memory, where guard pages (no bounds check) stop
	 * the rule: args[0] picks the access (tests/dyn/oob_edge.c) */
	rev = publish(write_rule("v10e", faulty, DYN_OBJS "/tests/dyn/oob_edge.wasm", ""), &out);
	free(out);
	ok(rev > 0 && govrt_wait_table(rev, 3000) == 0 && gwork(0, 0) == 0,
	   "wasm in the agent: the last word of the rule's memory is read (0)");
	is_long(gwork(1, 0), -9, "a read just past its memory traps: fail outcome (emulate -9)");
	is_long(gwork(3, 1), -9, "a write near 4 GiB traps: fail outcome");
	long calls = agent_stat(R, "calls");
	ok(gwork(0, 0) == 0 && agent_stat(R, "calls") > calls, "the rule runs on, and the agent is alive and serving");
	rev = publish(write_rule("v11", faulty, DYN_OBJS "/tests/dyn/badhelper.wasm", ""), &out);
	free(out);
	ok(rev > 0 && govrt_wait_table(rev, 3000) == 0, "the helper rule is published");
	long seen1 = gwork(0, 0), seen2 = gwork(0, 0);
	ok(seen1 == 1 && seen2 == 2, "wasm in the agent: its map counts the calls (%ld, %ld)", seen1, seen2);
	is_long(gwork(1, 0), -9, "map 99: fail outcome (emulate -9)");
	is_long(gwork(2, 0), -9, "counter 1000: fail outcome");
	is_long(gwork(0, 0), 5, "the rule runs on (its map saw five calls)");
	log = agent_log_text(R);
	has_str(log, "map number out of range", "the agent logged why");
	free(log);
	is_long(govctl(&out, "agent", "stop", R, NULL, NULL), 0, "the agent stops cleanly");
	free(out);
	return done_testing();
}
