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
 *   (flush: 4; disable of an unregistered resource: 3), bad names and usage (1), an unknown control command refused by
 *   the agent itself;
 *   an agent older than these commands (a tiny server on the real control
 *   socket path speaking the old answers: its statistics, an unknown
 *   command, an older wire version): exit 4, says so and how to fix it,
 *   and nothing is written; an unreadable answer: exit 4 too. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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
#include "gov/store_keys.h"
#include "gov/wire.h"
#include "harness.h"
#include "store.h"
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
	govctl_call(&out, "--json", "tasklet", "list", DRV, NULL);
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

/* ---- an agent older than the tasklet commands, on the real control
 * socket path: no such binary can be built, so a tiny server speaks the
 * wire format its versions did ---- */
#define OLD "tc-old"
enum old_answer {
	OLD_STATS,      /* ignores the HELLO's text: its statistics */
	OLD_UNKNOWN,    /* knows control commands, not this one */
	OLD_WIRE,       /* another wire version: refuses our HELLO */
	OLD_GARBAGE,    /* neither JSON nor a WELCOME */
};
static int old_lfd = -1;
static enum old_answer old_mode;

static void *old_agent(void *p)
{
	(void)p;
	struct pollfd pfd = { .fd = old_lfd, .events = POLLIN };
	int fd = poll(&pfd, 1, 10000) == 1 ? accept(old_lfd, NULL, NULL) : -1;
	struct gov_msg m;
	if (fd < 0 || recv(fd, &m, sizeof m, 0) != (ssize_t)sizeof m) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct gov_msg w = { .magic = GOV_MSG_MAGIC, .version = GOV_WIRE_VERSION,
			     .type = GOV_MSG_WELCOME };
	strcpy(w.name, OLD);
	const char *text = NULL;
	switch (old_mode) {
	case OLD_STATS:
		text = "{\"resource\":\"" OLD "\",\"pid\":1,\"rules_rev\":1,\"clients\":0,\"calls\":0}";
		break;
	case OLD_UNKNOWN:
		w.status = EINVAL;
		snprintf(w.text, sizeof w.text, "unknown control command '%.100s' (stats only)", m.text);
		break;
	case OLD_WIRE:
		w.version = GOV_WIRE_VERSION - 1;
		w.status = EACCES;
		strcpy(w.text, "malformed hello: field version is wrong");
		break;
	case OLD_GARBAGE:
		text = "OK";
		break;
	}
	ssize_t n = text ? send(fd, text, strlen(text), 0) : send(fd, &w, sizeof w, 0);
	(void)n;
	close(fd);
	return NULL;
}

/* govctl tasklet VERB tc-old q against the old agent answering mode. */
static int ask_old(enum old_answer mode, const char *verb, char **out)
{
	old_mode = mode;
	pthread_t t;
	pthread_create(&t, NULL, old_agent, NULL);
	int rc = govctl_call(out, "tasklet", verb, OLD, "q", NULL);
	pthread_join(t, NULL);
	return rc;
}

static int old_key_written(void)
{
	struct gov_store *s;
	char err[256], key[128];
	struct gov_kv kv;
	snprintf(key, sizeof key, GOV_TASKLET_STATE_FMT, OLD, "q");
	if (gov_store_open(getenv("GOV_STORE"), &s, err, sizeof err) < 0)
		return -1;
	int r = gov_store_get(s, key, &kv, err, sizeof err);
	if (r == 0)
		gov_kv_clear(&kv);
	gov_store_close(s);
	return r == 0 ? 1 : r == GOV_STORE_NOT_FOUND ? 0 : -1;
}

static void older_agents(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/" OLD ".sock", harness_run_dir());
	old_lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	ok(old_lfd >= 0 && bind(old_lfd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	   listen(old_lfd, 4) == 0, "an agent older than the tasklet commands listens at %s",
	   sa.sun_path);
	static const struct {
		enum old_answer mode;
		const char *verb, *what, *want, *is;
	} cases[] = {
		{ OLD_STATS, "disable", "answers with its statistics",
		  "it answered with its statistics", "older than the tasklet commands" },
		{ OLD_STATS, "flush", "answers flush with its statistics",
		  "it answered with its statistics", "older than the tasklet commands" },
		{ OLD_UNKNOWN, "disable", "does not know the command",
		  "unknown control command 'tasklet disable q'", "older than the tasklet commands" },
		{ OLD_WIRE, "enable", "speaks an older wire version",
		  "it speaks wire version 1", "of another version than this govctl" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *out = NULL;
		int rc = ask_old(cases[i].mode, cases[i].verb, &out);
		char is[96];
		snprintf(is, sizeof is, "the agent of " OLD " is %s", cases[i].is);
		ok(rc == 4 && out && strstr(out, is) && strstr(out, cases[i].want) &&
		   strstr(out, "nothing changed") && strstr(out, "govctl agent start " OLD),
		   "tasklet %s, the agent %s: exit 4, says so and how to fix it (%d): %s",
		   cases[i].verb, cases[i].what, rc, out ? out : "");
		free(out);
	}
	is_long(old_key_written(), 0, "... and govctl wrote no disabled state for it in the store");
	char *out = NULL;
	int rc = ask_old(OLD_GARBAGE, "disable", &out);
	ok(rc == 4 && out && strstr(out, "answered what govctl cannot read") &&
	   strstr(out, "neither JSON nor a WELCOME"),
	   "an answer that is neither JSON nor a WELCOME: exit 4 and why (%d)", rc);
	free(out);
	close(old_lfd);
	unlink(sa.sun_path);
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
	govctl_call(NULL, "init", NULL);

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
	int rc = govctl_call(&out, "tasklet", "list", DRV, NULL);
	ok(rc == 0 && out && strstr(out, "no tasklets in the agent of " DRV),
	   "list before any scheduling: none (exit %d)", rc);
	free(out);

	/* one running (300 ms), three queued behind it; four if the worker
	 * has not taken the first yet */
	int bad = 0;
	for (long i = 1; i <= 4; i++)
		bad += govrt_tasklet_schedule("q", "tc_slow", i) != 0;
	is_long(bad, 0, "four calls scheduled on tasklet q");
	rc = govctl_call(&out, "tasklet", "list", DRV, NULL);
	ok(rc == 0 && out && strstr(out, "TASKLET") && strstr(out, "QUEUED") && strstr(out, "q ") &&
	   strstr(out, "enabled"), "list shows tasklet q, enabled (exit %d)", rc);
	free(out);
	long queued = field("q", "queued");
	ok(queued == 3 || queued == 4, "list --json: q has 3 or 4 queued (%ld)", queued);

	rc = govctl_call(&out, "tasklet", "flush", DRV, "q", NULL);
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

	rc = govctl_call(&out, "tasklet", "disable", DRV, "q", NULL);
	ok(rc == 0 && out && strstr(out, "tasklet q of " DRV " disabled"), "disable q (exit %d)", rc);
	ok(out && strstr(out, "note: the agent of " DRV " does not follow the rule store") &&
	   strstr(out, "it reads a rule file") && strstr(out, "only until it restarts"),
	   "... with a note: this agent reads a rule file, so it holds until a restart");
	free(out);
	long refused_before = field("q", "refused");
	errno = 0;
	int r = govrt_tasklet_schedule("q", "tc_slow", 10);
	ok(r == -1 && errno == ECANCELED, "a disabled tasklet refuses a scheduling: ECANCELED (%d, %s)",
	   r, strerror(errno));
	is_long(field("q", "refused"), refused_before + 1, "... counted as refused");
	is_long(field("q", "disabled"), 1, "... and list says it is disabled");
	rc = govctl_call(&out, "tasklet", "list", DRV, NULL);
	ok(rc == 0 && out && strstr(out, "disabled"), "... in its table too");
	free(out);
	is_long(govrt_tasklet_schedule("other", "tc_slow", 11), 0, "another tasklet still takes calls");

	rc = govctl_call(&out, "tasklet", "enable", DRV, "q", NULL);
	ok(rc == 0 && out && strstr(out, "tasklet q of " DRV " enabled"), "enable q (exit %d)", rc);
	free(out);
	is_long(govrt_tasklet_schedule("q", "tc_slow", 12), 0, "an enabled tasklet takes calls again");
	is_long(field("q", "disabled"), 0, "... and list says it is enabled");

	rc = govctl_call(&out, "tasklet", "disable", DRV, "rx", NULL);
	ok(rc == 0, "a tasklet of the rules' tasklets: can be disabled before its first call (exit %d)",
	   rc);
	free(out);
	errno = 0;
	r = govrt_tasklet_schedule("rx", "tc_slow", 13);
	ok(r == -1 && errno == ECANCELED, "... and refuses it (%s)", strerror(errno));

	/* errors */
	rc = govctl_call(&out, "tasklet", "flush", DRV, "nosuch", NULL);
	ok(rc == 3 && out && strstr(out, "has no tasklet nosuch"), "an unknown tasklet: exit 3 and why");
	free(out);
	rc = govctl_call(&out, "tasklet", "disable", DRV, "a b", NULL);
	ok(rc == 1 && out && strstr(out, "is not a tasklet name"), "a bad tasklet name: exit 1 and why");
	free(out);
	rc = govctl_call(&out, "tasklet", "list", "tc-none", NULL);
	ok(rc == 3 && out && strstr(out, "unknown resource tc-none"),
	   "an unknown resource: exit 3 and why (%d)", rc);
	free(out);
	rc = govctl_call(&out, "tasklet", "flush", "tc-none", "q", NULL);
	ok(rc == 3 && out && strstr(out, "unknown resource tc-none"), "... for flush too");
	free(out);
	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	char pidfile[600], pid_text[24];
	snprintf(pid_text, sizeof pid_text, "%d\n", (int)dead);
	harness_file(pidfile, sizeof pidfile, "tc-gone.pid", pid_text);
	rc = govctl_call(&out, "tasklet", "flush", "tc-gone", "q", NULL);
	ok(rc == 4 && out && strstr(out, "the agent of tc-gone is not running"),
	   "flush, the agent not running: exit 4 and why (%d)", rc);
	free(out);
	/* disable and enable go to the store then (t_tasklet_state.c), which
	 * knows no such resource */
	rc = govctl_call(&out, "tasklet", "disable", "tc-gone", "q", NULL);
	ok(rc == 3 && out && strstr(out, "unknown resource tc-gone"),
	   "disable, the agent not running, the resource not registered: exit 3 (%d)", rc);
	free(out);
	unlink(pidfile);
	rc = govctl_call(&out, "tasklet", "frob", DRV, "q", NULL);
	ok(rc == 1 && out && strstr(out, "unknown tasklet command 'frob'"), "an unknown verb: exit 1");
	free(out);
	rc = govctl_call(&out, "tasklet", "flush", DRV, NULL);
	ok(rc == 1 && out && strstr(out, "give RESOURCE and TASKLET"), "flush without TASKLET: exit 1");
	free(out);
	rc = govctl_call(&out, "tasklet", "--help", NULL);
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
	older_agents();

	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	ok(agent_stop(agent) == 0, "the agent stops cleanly");
	return done_testing();
}
