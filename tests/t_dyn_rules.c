/* tests/t_dyn_rules.c - the rules shipped in rules/, each in both modes
 * from its one source: deny (by syscall with an argument predicate, and by
 * function), ratelimit (a token bucket per caller: the burst passes, the
 * next call is denied with EAGAIN, time refills it, another caller has its
 * own bucket), trace (counters, per-call map, event ring); then trace in a
 * real agent read back with `govctl trace`, and every example rule file in
 * rules/ published (so they stay valid). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"
#include "../rules/dynamic/dynrt.h"
#include "../rules/dynamic/build.h"

#define R "t-dyn-rules"

static char err[2048];

static void quiet(const char *line) { (void)line; }

static struct gov_dynrule *load(int mode, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/rules/%s/%s%s", DYN_OBJS, name, name,
		 mode == GOV_DYN_EBPF ? ".bpf.o" : ".wasm");
	void *obj;
	size_t len;
	if (gov_dyn_read(path, &obj, &len, err, sizeof err) < 0)
		return NULL;
	struct gov_dyn_spec s = { .mode = (uint8_t)mode, .budget_us = 100000 };
	snprintf(s.name, sizeof s.name, "%s", name);
	struct gov_dynrule *r = gov_dynrule_load(&s, obj, len, err, sizeof err);
	free(obj);
	return r;
}

static int run(struct gov_dynrule *r, uint32_t pid, int sysno, uint64_t a0, struct gov_dyn_ctx *out)
{
	struct gov_dyn_ctx c = { .kind = sysno >= 0 ? 2 : 1, .sysno = sysno, .pid = pid,
				 .func_id = sysno < 0 ? gov_dyn_id("unlink") : 0, .args = { a0, 0, a0 }, .site_id = 77 };
	int a = gov_dynrule_run(r, &c);
	if (out)
		*out = c;
	return a;
}

static void ratelimit(int mode, const char *m)
{
	struct gov_dynrule *r = load(mode, "ratelimit");
	ok(r, "%s: ratelimit loads (%s)", m, err);
	if (!r)
		return;
	int passed = 0;
	for (int i = 0; i < 10; i++)
		passed += run(r, 100, 42, 0, NULL) == GOV_DYN_NATIVE;
	is_long(passed, 10, "%s: a burst of 10 passes", m);
	struct gov_dyn_ctx c;
	is_long(run(r, 100, 42, 0, &c), GOV_DYN_DENY, "%s: the 11th call is denied", m);
	is_long(c.err, EAGAIN, "%s: ... with EAGAIN", m);
	is_long(run(r, 200, 42, 0, NULL), GOV_DYN_NATIVE, "%s: another caller has its own bucket", m);
	usleep(30000); /* 100 calls/s: 30 ms refill 3 tokens */
	is_long(run(r, 100, 42, 0, NULL), GOV_DYN_NATIVE, "%s: time refills the bucket", m);
	is_long(atomic_load(&r->counters[0]), 1, "%s: counter 0 counted the denial", m);
	is_long(atomic_load(&r->counters[1]), 12, "%s: counter 1 the admitted calls", m);
	is_long(atomic_load(&r->faults), 0, "%s: no faults", m);
	gov_dynrule_free(r);
}

static void trace(int mode, const char *m)
{
	struct gov_dynrule *r = load(mode, "trace");
	ok(r, "%s: trace loads (%s)", m, err);
	if (!r)
		return;
	for (int i = 0; i < 3; i++)
		is_long(run(r, 1, 1, (uint64_t)i, NULL), GOV_DYN_NATIVE, "%s: trace lets write %d run", m, i);
	run(r, 1, -1, 9, NULL);
	is_long(atomic_load(&r->counters[0]), 4, "%s: 4 calls counted", m);
	is_long(atomic_load(&r->counters[1]), 3, "%s: 3 syscalls", m);
	is_long(atomic_load(&r->counters[2]), 1, "%s: 1 function call", m);
	is_long(atomic_load(&r->event_head), 4, "%s: 4 events in the ring", m);
	is_long(r->events[2].a, 1, "%s: event 3 says syscall 1", m);
	is_long(r->events[2].b, 2, "%s: ... with its first argument", m);
	is_long(r->events[3].a, gov_dyn_id("unlink"), "%s: event 4 says unlink (by its id)", m);
	is_long(r->events[0].site_id, 77, "%s: ... and the site", m);
	gov_dyn_cur.rule = r;
	is_long(gov_dynh_map_lookup(0, 1, 0), 3, "%s: map 0 counts per syscall", m);
	gov_dyn_cur.rule = NULL;
	gov_dynrule_free(r);
}

static void deny(int mode, const char *m)
{
	struct gov_dynrule *r = load(mode, "deny");
	ok(r, "%s: deny loads (%s)", m, err);
	if (!r)
		return;
	struct gov_dyn_ctx c;
	is_long(run(r, 1, 1, 5000, &c), GOV_DYN_DENY, "%s: write of 5000 bytes denied", m);
	is_long(c.err, EFBIG, "%s: ... EFBIG", m);
	is_long(run(r, 1, 1, 10, NULL), GOV_DYN_NATIVE, "%s: write of 10 bytes runs", m);
	is_long(run(r, 1, 0, 5000, NULL), GOV_DYN_NATIVE, "%s: read of 5000 bytes runs", m);
	is_long(run(r, 1, -1, 0, &c), GOV_DYN_DENY, "%s: unlink denied", m);
	gov_dynrule_free(r);
}

#define govctl govctl_run

__attribute__((noinline)) long unlink_probe(long x) { return x; }

static void end_to_end(void)
{
	char path[600], *out = NULL;
	snprintf(path, sizeof path, "%s/trace.yaml", harness_run_dir());
	FILE *f = fopen(path, "w");
	fprintf(f, "name: tr\ndynamic:\n  - name: trace\n    mode: wasm\n    source: %s/rules/trace/trace.c\n"
		"    attach: [{function: unlink_probe}]\n", DYN_TOP);
	fclose(f);
	ok(govctl(&out, "rule", "publish", path) == 0, "the trace rule (wasm) is published: %s", out ? out : "");
	unsigned long long rev = out && strstr(out, "at revision ") ? strtoull(strstr(out, "at revision ") + 12, NULL, 10) : 0;
	free(out);
	ok(govctl(NULL, "agent", "start", R) == 0, "an agent starts");
	ok(wait_connected(1, 3000) == 0 && govrt_wait_table(rev, 3000) == 0, "the program has the rule");
	for (long i = 0; i < 5; i++)
		GOV_CALL("ll", unlink_probe, 40 + i);
	ok(govctl(&out, "trace", R, NULL) == 0, "govctl trace reads the agent");
	has_str(out, "rule tr/trace (wasm, in the agent): runs 5, faults 0", "runs and faults");
	has_str(out, "counter 0: 5", "the counters");
	has_str(out, "a 4009571315 b 44", "and the event ring (the last call: unlink_probe's id, argument 44)");
	free(out);
	ok(govctl(&out, "trace", R, "--json") == 0, "govctl trace --json");
	has_str(out, "\"events\"", "has the events");
	free(out);
	ok(govctl(&out, "trace", "no-such-agent", NULL) == 4, "govctl trace of a resource with no agent: exit 4");
	has_str(out, "no agent runs for no-such-agent", "saying so");
	free(out);
	ok(govctl(&out, "trace", NULL, NULL) == 1, "govctl trace without a resource: exit 1");
	free(out);
	static const char *const files[] = { "deny/deny.yaml", "ratelimit/ratelimit.yaml", "trace/trace.yaml" };
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s/rules/%s", DYN_TOP, files[i]);
		ok(govctl(&out, "rule", "publish", path) == 0, "rules/%s publishes: %s", files[i], out ? out : "");
		free(out);
	}
	govctl(NULL, "agent", "stop", R);
}

int main(int argc, char **argv)
{
	(void)argc;
	harness_reexec(argv, R, NULL);
	store_env();
	setenv("GOV_INCLUDE_DIR", DYN_TOP "/include", 1);
	gov_dyn_log_hook = quiet;
	deny(GOV_DYN_EBPF, "ebpf");
	deny(GOV_DYN_WASM, "wasm");
	ratelimit(GOV_DYN_EBPF, "ebpf");
	ratelimit(GOV_DYN_WASM, "wasm");
	trace(GOV_DYN_EBPF, "ebpf");
	trace(GOV_DYN_WASM, "wasm");
	govctl(NULL, "init", NULL, NULL);
	end_to_end();
	return done_testing();
}
