/* tests/t_tasklet_control.c - `govctl tasklet list|flush|disable|enable`
 * against a real agent, and the agent's refusal of bad tasklet settings in
 * its environment (docs/tasklet.md). This program (resource tc-drv)
 * schedules calls of its exported tc_slow (300 ms each) with
 * govrt_tasklet_schedule; one serving process runs them.
 *
 *   GOV_TASKLET_QUEUE_MAX / GOV_TASKLET_DRAIN_MS not a whole number or out
 *   of range: govagent refuses to start, says which and why, and leaves
 *   no socket or pid file;
 *   list shows each tasklet's queued/ran/dropped/refused and its state;
 *   flush drops what is queued (the running call ends), logged and
 *   counted; disable refuses schedulings with ECANCELED (counted), other
 *   tasklets unaffected, a tasklets: name disabled before its first
 *   scheduling; enable takes them again;
 *   errors: unknown tasklet (3), unknown resource (3), agent not running
 *   (4), bad names and usage (1), an unknown control command refused by
 *   the agent itself. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "gov/wire.h"
#include "harness.h"
#include "tap.h"

#define DRV "tc-drv"

static int rec_fd = -1;

long tc_slow(long seq)
{
	usleep(300000);
	char line[32];
	int n = snprintf(line, sizeof line, "%ld\n", seq);
	return write(rec_fd, line, (size_t)n) == n ? 0 : -1;
}

static int serve_main(void)
{
	return harness_serve_records("TC_RECORD", &rec_fd);
}

static const char *rules =
	"resources:\n"
	"  - {name: " DRV ", type: driver, exports: [tc_slow]}\n"
	"tasklets:\n"
	"  - {name: rx, function: tc_slow}\n";

/* govctl ARGS...: its exit code, its output (stdout and stderr) in *out. */
static int govctl(char **out, const char *a1, const char *a2, const char *a3, const char *a4,
		  const char *a5)
{
	char *const argv[] = { GOVCTL_PATH, (char *)a1, (char *)a2, (char *)a3, (char *)a4,
			       (char *)a5, NULL };
	char *text = NULL;
	int st = run_capture(argv, &text);
	if (out)
		*out = text;
	else
		free(text);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static long count_lines(const char *path)
{
	char *t = read_file(path);
	long n = 0;
	for (char *p = t; p && *p; p++)
		n += *p == '\n';
	free(t);
	return n;
}

/* "KEY":N of tasklet name in govctl --json tasklet list DRV, -1 if absent. */
static long field(const char *name, const char *key)
{
	char *out = NULL, pat[96];
	govctl(&out, "--json", "tasklet", "list", DRV, NULL);
	snprintf(pat, sizeof pat, "\"name\": \"%s\"", name);
	char *row = out ? strstr(out, pat) : NULL;
	char *end = row ? strchr(row, '}') : NULL;
	snprintf(pat, sizeof pat, "\"%s\": ", key);
	char *k = row ? strstr(row, pat) : NULL;
	long v = -1;
	if (k && k < end)
		v = strncmp(k + strlen(pat), "true", 4) == 0 ? 1 :
		    strncmp(k + strlen(pat), "false", 5) == 0 ? 0 : strtol(k + strlen(pat), NULL, 10);
	free(out);
	return v;
}

static void bad_env(const char *var, const char *value, const char *why)
{
	char rules_path[600], sock[600], pid[600];
	snprintf(rules_path, sizeof rules_path, "%s/tc-bad.yaml", harness_run_dir());
	snprintf(sock, sizeof sock, "%s/tc-bad.sock", harness_run_dir());
	snprintf(pid, sizeof pid, "%s/tc-bad.pid", harness_run_dir());
	FILE *f = fopen(rules_path, "w");
	fputs("verdicts: []\n", f);
	fclose(f);
	setenv(var, value, 1);
	/* an agent that took the value would run: timeout stops it, and the
	 * check fails instead of hanging */
	char *const argv[] = { "/usr/bin/timeout", "10", GOVAGENT_PATH, "--resource", "tc-bad", "--rules",
			       rules_path, NULL };
	char *out = NULL;
	int st = run_capture(argv, &out);
	unsetenv(var);
	char want[160];
	snprintf(want, sizeof want, "govagent: %s=\"%s\" in the environment: %s", var, value, why);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 1 && out && strstr(out, want),
	   "%s=\"%s\": govagent refuses to start (%s)", var, value, why);
	if (!(out && strstr(out, want)))
		diag("want '%s' in: %s", want, out ? out : "(nothing)");
	ok(access(sock, F_OK) != 0 && access(pid, F_OK) != 0, "... and leaves no socket or pid file");
	free(out);
}

/* A control HELLO whose text is cmd, by hand: the agent's answer. */
static int raw_control(const char *cmd, struct gov_msg *rep)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/" DRV ".sock", harness_run_dir());
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	struct gov_msg m = { .magic = GOV_MSG_MAGIC, .version = GOV_WIRE_VERSION,
			     .type = GOV_MSG_HELLO, .role = GOV_ROLE_CONTROL, .pid = getpid() };
	strcpy(m.name, DRV);
	snprintf(m.text, sizeof m.text, "%s", cmd);
	ssize_t n = -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    send(fd, &m, sizeof m, 0) == (ssize_t)sizeof m)
		n = recv(fd, rep, sizeof *rep, 0);
	close(fd);
	return n == (ssize_t)sizeof *rep && rep->magic == GOV_MSG_MAGIC ? rep->status : -1;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "serve") == 0)
		return serve_main();
	static const char *const env[] = { "GOV_TIMEOUT_MS=3000", NULL };
	harness_reexec(argv, DRV, env);
	char record_path[512], exports[512];
	harness_file(record_path, sizeof record_path, "record", NULL);
	harness_file(exports, sizeof exports, DRV ".exports", "tc_slow ll\n");
	setenv("TC_RECORD", record_path, 1);
	store_env();
	govctl(NULL, "init", NULL, NULL, NULL, NULL);

	bad_env("GOV_TASKLET_QUEUE_MAX", "abc", "not a whole number");
	bad_env("GOV_TASKLET_QUEUE_MAX", "", "not a whole number");
	bad_env("GOV_TASKLET_QUEUE_MAX", "12x", "not a whole number");
	bad_env("GOV_TASKLET_QUEUE_MAX", "0", "out of range");
	bad_env("GOV_TASKLET_QUEUE_MAX", "99999999", "out of range");
	bad_env("GOV_TASKLET_DRAIN_MS", "1e3", "not a whole number");
	bad_env("GOV_TASKLET_DRAIN_MS", "-1", "out of range");
	bad_env("GOV_TASKLET_DRAIN_MS", "600001", "out of range");

	setenv("GOV_TASKLET_QUEUE_MAX", "8", 1); /* in range: taken */
	setenv("GOV_TASKLET_DRAIN_MS", "0", 1); /* in range: taken */
	pid_t agent = agent_start(DRV, rules, NULL);
	unsetenv("GOV_TASKLET_QUEUE_MAX");
	unsetenv("GOV_TASKLET_DRAIN_MS");
	ok(agent > 0 && wait_connected(1, 5000) == 0, "the driver is connected to its agent");
	pid_t server = serving_start(argv[0], DRV, exports);

	char *out = NULL;
	int rc = govctl(&out, "tasklet", "list", DRV, NULL, NULL);
	ok(rc == 0 && out && strstr(out, "no tasklets in the agent of " DRV),
	   "list before any scheduling: none (exit %d)", rc);
	free(out);

	/* one running (300 ms), three queued behind it; four if the worker
	 * has not taken the first yet */
	int bad = 0;
	for (long i = 1; i <= 4; i++)
		bad += govrt_tasklet_schedule("q", "tc_slow", i) != 0;
	is_long(bad, 0, "four calls scheduled on tasklet q");
	rc = govctl(&out, "tasklet", "list", DRV, NULL, NULL);
	ok(rc == 0 && out && strstr(out, "TASKLET") && strstr(out, "QUEUED") && strstr(out, "q ") &&
	   strstr(out, "enabled"), "list shows tasklet q, enabled (exit %d)", rc);
	free(out);
	long queued = field("q", "queued");
	ok(queued == 3 || queued == 4, "list --json: q has 3 or 4 queued (%ld)", queued);

	rc = govctl(&out, "tasklet", "flush", DRV, "q", NULL);
	long dropped = -1;
	char *at = out ? strstr(out, "flushed: ") : NULL;
	if (at)
		dropped = strtol(at + 9, NULL, 10);
	ok(rc == 0 && (dropped == 3 || dropped == 4), "flush drops the queued calls (%ld, exit %d)",
	   dropped, rc);
	free(out);
	is_long(field("q", "queued"), 0, "... none queued after it");
	is_long(field("q", "dropped"), dropped, "... counted as dropped");
	char needle[128];
	snprintf(needle, sizeof needle, "event=tasklet_flushed resource=" DRV " tasklet=q dropped=%ld",
		 dropped);
	char *log = agent_log_text(DRV);
	ok(log && strstr(log, needle), "... and logged");
	free(log);
	usleep(800000);
	ok(count_lines(record_path) <= 1, "only the call that was running ran (%ld)",
	   count_lines(record_path));

	rc = govctl(&out, "tasklet", "disable", DRV, "q", NULL);
	ok(rc == 0 && out && strstr(out, "tasklet q of " DRV " disabled"), "disable q (exit %d)", rc);
	free(out);
	long refused_before = field("q", "refused");
	errno = 0;
	int r = govrt_tasklet_schedule("q", "tc_slow", 10);
	ok(r == -1 && errno == ECANCELED, "a disabled tasklet refuses a scheduling: ECANCELED (%d, %s)",
	   r, strerror(errno));
	is_long(field("q", "refused"), refused_before + 1, "... counted as refused");
	is_long(field("q", "disabled"), 1, "... and list says it is disabled");
	rc = govctl(&out, "tasklet", "list", DRV, NULL, NULL);
	ok(rc == 0 && out && strstr(out, "disabled"), "... in its table too");
	free(out);
	is_long(govrt_tasklet_schedule("other", "tc_slow", 11), 0, "another tasklet still takes calls");

	rc = govctl(&out, "tasklet", "enable", DRV, "q", NULL);
	ok(rc == 0 && out && strstr(out, "tasklet q of " DRV " enabled"), "enable q (exit %d)", rc);
	free(out);
	is_long(govrt_tasklet_schedule("q", "tc_slow", 12), 0, "an enabled tasklet takes calls again");
	is_long(field("q", "disabled"), 0, "... and list says it is enabled");

	rc = govctl(&out, "tasklet", "disable", DRV, "rx", NULL);
	ok(rc == 0, "a tasklet of the rules' tasklets: can be disabled before its first call (exit %d)",
	   rc);
	free(out);
	errno = 0;
	r = govrt_tasklet_schedule("rx", "tc_slow", 13);
	ok(r == -1 && errno == ECANCELED, "... and refuses it (%s)", strerror(errno));

	/* errors */
	rc = govctl(&out, "tasklet", "flush", DRV, "nosuch", NULL);
	ok(rc == 3 && out && strstr(out, "has no tasklet nosuch"), "an unknown tasklet: exit 3 and why");
	free(out);
	rc = govctl(&out, "tasklet", "disable", DRV, "a b", NULL);
	ok(rc == 1 && out && strstr(out, "is not a tasklet name"), "a bad tasklet name: exit 1 and why");
	free(out);
	rc = govctl(&out, "tasklet", "list", "tc-none", NULL, NULL);
	ok(rc == 3 && out && strstr(out, "unknown resource tc-none"),
	   "an unknown resource: exit 3 and why (%d)", rc);
	free(out);
	rc = govctl(&out, "tasklet", "flush", "tc-none", "q", NULL);
	ok(rc == 3 && out && strstr(out, "unknown resource tc-none"), "... for flush too");
	free(out);
	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	char pidfile[600], pid_text[24];
	snprintf(pid_text, sizeof pid_text, "%d\n", (int)dead);
	harness_file(pidfile, sizeof pidfile, "tc-gone.pid", pid_text);
	rc = govctl(&out, "tasklet", "disable", "tc-gone", "q", NULL);
	ok(rc == 4 && out && strstr(out, "the agent of tc-gone is not running"),
	   "an agent that is not running: exit 4 and why (%d)", rc);
	free(out);
	unlink(pidfile);
	rc = govctl(&out, "tasklet", "frob", DRV, "q", NULL);
	ok(rc == 1 && out && strstr(out, "unknown tasklet command 'frob'"), "an unknown verb: exit 1");
	free(out);
	rc = govctl(&out, "tasklet", "flush", DRV, NULL, NULL);
	ok(rc == 1 && out && strstr(out, "give RESOURCE and TASKLET"), "flush without TASKLET: exit 1");
	free(out);
	rc = govctl(&out, "tasklet", "--help", NULL, NULL, NULL);
	ok(rc == 0 && out && strstr(out, "example:"), "tasklet --help has an example");
	free(out);
	struct gov_msg rep;
	r = raw_control("tasklet frob q", &rep);
	ok(r == EINVAL && strstr(rep.text, "unknown tasklet command 'frob'"),
	   "the agent refuses an unknown verb itself, with why");
	r = raw_control("reboot now", &rep);
	ok(r == EINVAL && strstr(rep.text, "unknown control command"),
	   "... and an unknown control command");
	r = raw_control("tasklet flush ../x", &rep);
	ok(r == EINVAL && strstr(rep.text, "is not a tasklet name"), "... and a bad tasklet name");

	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	ok(agent_stop(agent) == 0, "the agent stops cleanly");
	return done_testing();
}
