/* tests/dyn_process.c - eBPF rules with placement process: the agent
 * hands the object over in the shared region and govrt runs it on the
 * dispatch path with no round trip; every action (native, native with
 * changed arguments, deny, emulate, forward through the agent); a fault in the
 * program (division by zero) gives the fail outcome, is counted toward
 * disabling the rule, and the program lives on; a new version replaces the
 * running one live; librte_bpf is mapped only once such a rule arrives;
 * two process rules in one version both arrive whole. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
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
	ok(govctl(NULL, "agent", "stop", R) == 0, "the agent stops");
	return done_testing();
}
