/* tests/t_agent.c - one governed program and a real govagent: every verdict
 * on calls and syscalls, live reload, statistics, the agent's command line
 * and its bad-input paths, and what stays in force when the agent stops. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"

#define R "t-agent"

__attribute__((noinline)) long add(long a, long b) { return a + b; }
__attribute__((noinline)) long mul(long a, long b) { return a * b; }
__attribute__((noinline)) long sub(long a, long b) { return a - b; }
__attribute__((noinline)) char *name_of(int i) { static char s[16]; s[0] = (char)('a' + i); return s; }

static long call_add(long a, long b) { return GOV_CALL("lll", add, a, b); }
static long call_mul(long a, long b) { return GOV_CALL("lll", mul, a, b); }
static long call_sub(long a, long b) { return GOV_CALL("lll", sub, a, b); }
static char *call_name(int i) { return GOV_CALL("pi", name_of, i); }
static long sys_getppid(void) { return GOV_SYSCALL(SYS_getppid); }

/* Sites as the compiler plugins emit them for wrappers whose errors are not
 * -1/errno: mmap's MAP_FAILED and posix_fadvise's returned error number. */
static struct gov_site map_site __attribute__((section(GOV_SITES_SECTION), used, aligned(8))) = {
	.kind = GOV_SITE_CALL, .ret_conv = GOV_RET_MAP_FAILED, .nparams = 1, .sysno = -1,
	.caller = "test", .callee = "fake_mmap", .types = "pp", .file = "t_agent.c", .line = 1,
};
static struct gov_site errnum_site __attribute__((section(GOV_SITES_SECTION), used, aligned(8))) = {
	.kind = GOV_SITE_CALL, .ret_conv = GOV_RET_ERRNUM, .nparams = 1, .sysno = -1,
	.caller = "test", .callee = "fake_fadvise", .types = "ii", .file = "t_agent.c", .line = 2,
};
static long sys_getuid(void) { return GOV_SYSCALL(SYS_getuid); }

static const char rules1[] =
	"verdicts:\n"
	"  - function: add\n    action: deny\n    errno: EACCES\n"
	"  - function: mul\n    action: emulate\n    value: 42\n"
	"  - function: sub\n    action: trace\n"
	"  - function: name_of\n    action: deny\n    errno: ENOENT\n"
	"  - syscall: getppid\n    action: emulate\n    value: 7\n"
	"  - syscall: getuid\n    action: deny\n    errno: EPERM\n"
	"  - function: fake_mmap\n    action: deny\n    errno: ENOMEM\n"
	"  - function: fake_fadvise\n    action: deny\n    errno: ESPIPE\n";

static void verdicts(void)
{
	errno = 0;
	is_long(call_add(2, 3), -1, "deny: a call returns -1");
	is_long(errno, EACCES, "deny: with the rule's errno");
	is_long(call_mul(2, 3), 42, "emulate: a call returns the rule's value");
	errno = 0;
	is_long(call_sub(9, 4), 5, "trace: the call runs after the agent has seen it");
	is_long(errno, 0, "trace: errno untouched");
	ok(call_name(1) == NULL && errno == ENOENT, "deny on a pointer-returning call gives NULL and errno");
	is_long(sys_getppid(), 7, "emulate: a syscall returns the rule's value");
	is_long(sys_getuid(), -EPERM, "deny: a raw syscall returns -errno");
	struct gov_call c = { { 0 }, 0 };
	errno = 0;
	ok(map_site.verdict && __govrt_dispatch(&map_site, &c) == GOV_RUN_RETURN &&
	   (void *)(intptr_t)c.ret == (void *)-1 && errno == ENOMEM,
	   "deny on an mmap-like site returns MAP_FAILED with errno");
	errno = 0;
	ok(errnum_site.verdict && __govrt_dispatch(&errnum_site, &c) == GOV_RUN_RETURN &&
	   c.ret == ESPIPE && errno == 0, "deny on a posix_fadvise-like site returns the error number");
	for (int i = 0; i < 99; i++)
		call_sub(i, 1);
	is_long(agent_stat(R, "calls"), 100, "the agent counted each traced call once");
	struct govrt_stats st;
	govrt_stats(&st);
	is_long(st.agent_calls, 100, "govrt counted the same round trips");
	char *const argv[] = { GOVAGENT_PATH, "--stats", R, NULL };
	char *out;
	run_capture(argv, &out);
	has_str(out, "\"to\":\"sub\",\"calls\":100", "the edge to sub is counted in --stats");
	free(out);
}

static void reload(pid_t agent)
{
	agent_set_rules(agent, R, "verdicts:\n  - function: sub\n    action: deny\n    errno: EBUSY\n");
	ok(govrt_wait_table(2, 2000) == 0, "a rule change reaches the program (rev 2)");
	errno = 0;
	ok(call_sub(1, 1) == -1 && errno == EBUSY, "the new rule is in force without a restart");
	is_long(call_add(2, 3), 5, "the dropped rule no longer applies");
	is_long(sys_getppid(), getppid(), "the dropped syscall rule no longer applies");

	agent_set_rules(agent, R, "verdicts:\n  - function: sub\n    action: smash\n");
	usleep(200000);
	char *log = agent_log_text(R);
	has_str(log, "event=reload_failed", "a bad rules file on reload is logged");
	has_str(log, ".yaml:3:13: unknown action 'smash'", "with file:line:column and why");
	free(log);
	struct govrt_stats st;
	govrt_stats(&st);
	is_long(st.table_rev, 2, "and the rules in force stay as they were");
	ok(call_sub(1, 1) == -1 && errno == EBUSY, "so the old rule still applies");
}

static int run_agent(const char *const args[], char **out)
{
	const char *argv[16] = { GOVAGENT_PATH };
	int n = 1;
	for (int i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	int st = run_capture((char *const *)argv, out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void command_line(void)
{
	char *out;
	is_long(run_agent((const char *[]){ NULL }, &out), 1, "govagent without --resource exits 1");
	has_str(out, "--resource NAME is required", "and says what is missing");
	free(out);
	is_long(run_agent((const char *[]){ "--resource", "a/b", NULL }, &out), 1, "a bad resource name exits 1");
	free(out);
	is_long(run_agent((const char *[]){ "-r", "x", "--slots", "zero", NULL }, &out), 1, "a bad number exits 1");
	has_str(out, "--slots zero", "naming the option");
	free(out);
	is_long(run_agent((const char *[]){ "--help", NULL }, &out), 0, "--help exits 0");
	has_str(out, "example:", "and shows an example");
	free(out);
	char path[512];
	snprintf(path, sizeof path, "%s/broken.yaml", harness_run_dir());
	FILE *f = fopen(path, "w");
	fputs("verdicts:\n  - function: f\n    action: deny\n    errno: NOPE\n", f);
	fclose(f);
	is_long(run_agent((const char *[]){ "-r", "t-broken", "--rules", path, NULL }, &out), 2,
		"a bad rules file at start exits 2");
	has_str(out, "broken.yaml:4:12: unknown errno 'NOPE'", "with file:line:column and why");
	free(out);
	is_long(run_agent((const char *[]){ "-r", R, NULL }, &out), 2, "a second agent for a live resource exits 2");
	has_str(out, "already listens", "and says why");
	free(out);
	is_long(run_agent((const char *[]){ "--stats", "nobody-here", NULL }, &out), 3,
		"--stats with no agent exits 3");
	free(out);
}

static void agent_stops(pid_t agent)
{
	agent_set_rules(agent, R,
			"verdicts:\n  - function: add\n    action: deny\n    errno: EACCES\n"
			"  - function: sub\n    action: trace\n");
	govrt_wait_table(3, 2000);
	int st = agent_stop(agent);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM stops the agent cleanly");
	char sock[512];
	struct stat sb;
	snprintf(sock, sizeof sock, "%s/%s.sock", harness_run_dir(), R);
	ok(stat(sock, &sb) < 0, "and it removes its socket");
	ok(wait_connected(0, 2000) == 0, "the program notices");
	errno = 0;
	ok(call_add(1, 1) == -1 && errno == EACCES, "a deny stays in force while the agent is away");
	is_long(call_sub(5, 2), 3, "a call that needs the agent fails open (runs natively)");
	struct govrt_stats s;
	govrt_stats(&s);
	ok(s.fail_open >= 1, "and is counted as fail-open");
	agent = agent_start(R, "verdicts:\n  - function: sub\n    action: emulate\n    value: 11\n", NULL);
	ok(wait_connected(1, 3000) == 0, "the program reconnects when an agent returns");
	ok(govrt_wait_table(1, 1000) == 0 && call_sub(5, 2) == 11, "and takes the new agent's rules");
	is_long(call_add(1, 1), 2, "the old deny is gone with the new table");
	agent_stop(agent);
}

int main(int argc, char **argv)
{
	(void)argc;
	harness_reexec(argv, R, NULL);
	is_long(call_add(2, 3), 5, "with no agent, sites run natively");
	pid_t agent = agent_start(R, rules1, NULL);
	ok(agent > 0, "govagent starts");
	ok(wait_connected(1, 3000) == 0, "govrt connects to it");
	ok(govrt_wait_table(1, 1000) == 0, "and has its decision table");
	verdicts();
	reload(agent);
	command_line();
	agent_stops(agent);
	return done_testing();
}
