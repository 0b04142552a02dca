/* tests/t_failclosed.c - GOV_FAIL=closed:ERRNO: with no agent every site
 * fails with the errno; with an agent the rules apply; when the agent dies,
 * calls that need it fail with the errno while local decisions stay. Also
 * the warnings for a bad GOV_FAIL and GOV_TIMEOUT_MS. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"

#define R "t-closed"

__attribute__((noinline)) long add(long a, long b) { return a + b; }
__attribute__((noinline)) long sub(long a, long b) { return a - b; }
static long gadd(long a, long b) { return GOV_CALL("lll", add, a, b); }
static long gsub(long a, long b) { return GOV_CALL("lll", sub, a, b); }
static long gppid(void) { return GOV_SYSCALL(SYS_getppid); }

static void bad_env(const char *assignment, const char *expect)
{
	char *out, self[4096] = "";
	if (readlink("/proc/self/exe", self, sizeof self - 1) < 0)
		return;
	char *const args[] = { "/usr/bin/env", (char *)assignment, self, "child", NULL };
	int st = run_capture(args, &out);
	ok(st == 0, "%s: the program still runs", assignment);
	has_str(out, expect, "and govrt says what is wrong");
	free(out);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "child") == 0)
		return gsub(3, 1), 0; /* governed or not: it must run */
	harness_reexec(argv, R, (const char *const[]){ "GOV_FAIL=closed:ECONNREFUSED", NULL });
	errno = 0;
	ok(gadd(1, 2) == -1 && errno == ECONNREFUSED, "no agent yet: a call fails with the configured errno");
	is_long(gppid(), -ECONNREFUSED, "and a raw syscall site returns -errno");

	pid_t agent = agent_start(R,
				  "verdicts:\n  - function: add\n    action: trace\n"
				  "  - function: sub\n    action: deny\n    errno: EACCES\n", NULL);
	ok(wait_connected(1, 3000) == 0 && govrt_wait_table(1, 1000) == 0, "an agent arrives");
	is_long(gadd(1, 2), 3, "a traced call is served");
	is_long(gppid(), getppid(), "an ungoverned site runs natively");
	agent_kill(agent);
	ok(wait_connected(0, 2000) == 0, "the agent dies");
	errno = 0;
	ok(gadd(1, 2) == -1 && errno == ECONNREFUSED, "a call that needs the agent fails closed");
	errno = 0;
	ok(gsub(1, 2) == -1 && errno == EACCES, "a deny stays a deny, not the fail errno");
	is_long(gppid(), getppid(), "a native site stays native");
	struct govrt_stats st;
	govrt_stats(&st);
	ok(st.fail_closed >= 3, "fail-closed outcomes are counted (%llu)", (unsigned long long)st.fail_closed);

	bad_env("GOV_FAIL=sideways", "GOV_FAIL=sideways is not open, closed or closed:ERRNO; using open");
	bad_env("GOV_TIMEOUT_MS=soon", "GOV_TIMEOUT_MS=soon is not a number");
	bad_env("GOV_RESOURCE=bad/name", "GOV_RESOURCE=bad/name is not a resource name");
	return done_testing();
}
