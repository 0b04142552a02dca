/* tests/dyn_process.c - eBPF rules with placement process: the agent
 * hands the object over in the shared region and govrt runs it on the
 * dispatch path with no round trip; every action (native, native with
 * changed arguments, deny, emulate, forward through the agent); a fault in the
 * program (division by zero) gives the fail outcome, is counted toward
 * disabling the rule, and the program lives on; a new version replaces the
 * running one live; librte_bpf is mapped only once such a rule arrives;
 * two process rules in one version both arrive whole; `govctl trace` shows
 * what a rule placed here counted and logged, and a forked child's own
 * once it exited (not again what it inherited); a child that writes other
 * hashes over its figures before it goes changes nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "gov/region.h"
#include "harness.h"
#include "tap.h"

#define R "t-dyn-process"

__attribute__((noinline)) long work(long a, long b) { return a * 1000 + b; }
static long gwork(long a, long b) { return GOV_CALL("lll", work, a, b); }
__attribute__((noinline)) long work2(long a, long b) { return a * 1000 + b; }
static long gwork2(long a, long b) { return GOV_CALL("lll", work2, a, b); }

#define govctl govctl_run

static unsigned long long publish(const char *object, const char *placement)
{
	char text[1024];
	snprintf(text, sizeof text, "name: proc\ndynamic:\n  - name: modargs\n    mode: ebpf\n    object: %s\n"
		 "    placement: %s\n    attach: [{function: work}]\n    fail: emulate\n    value: -9\n"
		 "    max_faults: 3\n", object, placement);
	return rule_publish(text);
}

static int maps_bpf(void)
{
	char *maps = read_file("/proc/self/maps");
	int has = maps && strstr(maps, "librte_bpf");
	free(maps);
	return has;
}

/* Whether `govctl trace R --json` shows, within ms, the trace rule having
 * counted calls (counter 0) with an event each whose b (the call's first
 * argument) is every one of firsts. */
static int trace_shows(long calls, const long *firsts, int n, int ms)
{
	char want[64], *out = NULL;
	snprintf(want, sizeof want, "\"counters\":[%ld,", calls);
	for (long long end = now_ms() + ms;; usleep(50000)) {
		free(out);
		out = NULL;
		int ok = govctl_call(&out, "trace", R, "--json", NULL) == 0 && out;
		if (ok) { /* its JSON without the layout's blanks */
			char *w = out;
			for (char *r = out; *r; r++)
				if (*r != ' ' && *r != '\n')
					*w++ = *r;
			*w = 0;
			ok = strstr(out, want) != NULL;
		}
		for (int i = 0; ok && i < n; i++) {
			char b[48];
			snprintf(b, sizeof b, "\"b\":%ld}", firsts[i]);
			ok = strstr(out, b) != NULL;
		}
		if (ok || now_ms() >= end) {
			if (!ok)
				diag("govctl trace: %.600s", out ? out : "(nothing)");
			free(out);
			return ok;
		}
	}
}

static uint64_t agent_calls(void)
{
	struct govrt_stats st;
	govrt_stats(&st);
	return st.agent_calls;
}

int main(int argc, char **argv)
{
	(void)argc;
	harness_reexec(argv, R, NULL);
	ok(store_agent_start(R) == 0, "a store-subscribed agent starts and the program connects");
	ok(!maps_bpf(), "no librte_bpf in the program before a process rule arrives");

	unsigned long long rev = publish(DYN_OBJS "/tests/dyn/modargs.bpf.o", "process");
	ok(rev > 0 && govrt_wait_table(rev, 3000) == 0, "an eBPF rule with placement process reaches the program");
	ok(maps_bpf(), "librte_bpf is loaded now (dlopen on the first eBPF rule)");
	uint64_t before = agent_calls();
	is_long(gwork(0, 7), 7, "native: work(0, 7) runs");
	is_long(gwork(1, 7), 1014, "native with changed arguments: work(1, 7) runs as work(1, 14)");
	is_long(gwork(3, 4), 25, "emulate: 100 / 4");
	errno = 0;
	ok(gwork(4, 0) == -1 && errno == ENOSPC, "deny with the rule's errno (ENOSPC)");
	is_long(agent_calls() - before, 0, "none of these went to the agent");
	errno = 0;
	long fw = gwork(2, 7);
	int fe = errno;
	ok(fw == -1 && fe == EHOSTUNREACH, "forward: the agent answers; its copy of the rule forwards "
	   "too, to work's exporter, and none is declared: -1, EHOSTUNREACH (%ld, %s; "
	   "t_forward_rule has forwards that run)", fw, strerror(fe));
	is_long(agent_calls() - before, 1, "... with one round trip");

	/* faults in the program */
	is_long(gwork(3, 0), -9, "a division by zero in the program: the fail outcome (emulate -9)");
	is_long(gwork(3, 0), -9, "again");
	is_long(gwork(3, 4), 25, "the rule still runs after 2 faults");
	is_long(gwork(3, 0), -9, "a third fault");
	is_long(gwork(3, 4), -9, "disables it: every call takes the fail outcome (max_faults 3)");
	is_long(gwork(0, 7), -9, "... even a call the rule would let run");
	is_long(agent_calls() - before, 1, "still without the agent");

	/* a new version replaces it live (and is enabled again) */
	rev = publish(DYN_OBJS "/tests/dyn/div.bpf.o", "process");
	ok(rev > 0 && govrt_wait_table(rev, 3000) == 0, "version 2 (another object) reaches the program");
	is_long(gwork(0, 5), 20, "and runs: work(0, 5) emulated as 100 / 5");
	/* placement agent: the same rule, now answered by the agent */
	rev = publish(DYN_OBJS "/tests/dyn/div.bpf.o", "agent");
	before = agent_calls();
	ok(rev > 0 && govrt_wait_table(rev, 3000) == 0, "version 3 moves it to the agent");
	is_long(gwork(0, 10), 10, "work(0, 10) = 100 / 10");
	is_long(agent_calls() - before, 1, "answered by the agent");

	/* two process rules: govrt copies the area only up to the end of the
	 * last object, so the second one (further in) must arrive whole */
	rev = rule_publish("name: proc\ndynamic:\n"
			   "  - name: first\n    mode: ebpf\n    object: " DYN_OBJS "/tests/dyn/modargs.bpf.o\n"
			   "    placement: process\n    attach: [{function: work}]\n"
			   "  - name: second\n    mode: ebpf\n    object: " DYN_OBJS "/tests/dyn/div.bpf.o\n"
			   "    placement: process\n    attach: [{function: work2}]\n");
	before = agent_calls();
	ok(rev > 0 && govrt_wait_table(rev, 3000) == 0, "version 4 (two process rules) reaches the program");
	is_long(gwork(3, 4), 25, "the first runs: work(3, 4) emulated as 100 / 4");
	is_long(gwork2(0, 5), 20, "the second runs: work2(0, 5) emulated as 100 / 5");
	is_long(agent_calls() - before, 0, "both in the program, neither went to the agent");

	/* the trace rule placed here: its figures reach govctl trace */
	rev = rule_publish("name: proc\ndynamic:\n  - name: trace\n    mode: ebpf\n"
			   "    object: " DYN_OBJS "/rules/trace/trace.bpf.o\n"
			   "    placement: process\n    attach: [{function: work}]\n");
	ok(rev > 0 && govrt_wait_table(rev, 3000) == 0, "the trace rule, placed here, reaches the program");
	before = agent_calls();
	for (long i = 1; i <= 5; i++)
		gwork(i, 0);
	is_long(agent_calls() - before, 0, "five calls, none went to the agent");
	static const long firsts[] = { 1, 2, 3, 4, 5, 11, 12, 13 };
	ok(trace_shows(5, firsts, 5, 3000), "govctl trace shows the 5 calls it counted here, and an "
	   "event each");
	pid_t kid = fork();
	if (kid == 0) {
		/* connected as itself; exit's destructors hand its figures over */
		for (int t = 0; t < 100 && !govrt_connected(); t++)
			usleep(20000);
		for (long i = 11; i <= 13; i++)
			gwork(i, 0);
		exit(0);
	}
	int st = -1;
	waitpid(kid, &st, 0);
	/* once the agent has let the child's connection go: what it keeps */
	for (long long end = now_ms() + 3000; now_ms() < end && agent_stat(R, "clients") != 1;)
		usleep(20000);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && agent_stat(R, "clients") == 1 &&
	   trace_shows(8, firsts, 8, 3000),
	   "... and a forked child's 3 once it exited and is gone: 8, not the 5 it inherited again");
	/* the area is the process's to write: a child that puts another
	 * hash on every entry, then leaves without its exit's copy */
	kid = fork();
	if (kid == 0) {
		for (int t = 0; t < 100 && !govrt_connected(); t++)
			usleep(20000);
		gwork(21, 0);
		usleep(400000); /* its watcher copied the call */
		/* its region, by the memfd's name (the agent names it by pid) */
		char *maps = read_file("/proc/self/maps"), name[64], *at;
		snprintf(name, sizeof name, "gov-region:%s:%d ", R, (int)getpid());
		struct gov_region_hdr *h = NULL;
		if (maps && (at = strstr(maps, name))) {
			while (at > maps && at[-1] != '\n')
				at--;
			h = (struct gov_region_hdr *)(uintptr_t)strtoull(at, NULL, 16);
		}
		struct gov_region_dynstat *figures =
			h && h->stats_off ? (struct gov_region_dynstat *)((char *)h + h->stats_off) : NULL;
		for (int i = 0; figures && i < GOV_REGION_DYN_MAX; i++)
			figures[i].hash = 0x1234567;
		_exit(figures ? 0 : 1);
	}
	waitpid(kid, &st, 0);
	for (long long end = now_ms() + 3000; now_ms() < end && agent_stat(R, "clients") != 1;)
		usleep(20000);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && agent_stat(R, "clients") == 1 &&
	   trace_shows(8, firsts, 8, 3000),
	   "a child that wrote another hash over its figures, gone: still 8, its call not "
	   "counted and nothing lost");
	ok(govctl(NULL, "agent", "stop", R) == 0, "the agent stops");
	return done_testing();
}
