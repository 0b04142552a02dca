/* tests/t_tasklet_state.c - a tasklet's disabled state kept in the rule
 * store (docs/tasklet.md "Controlling tasklets"): `govctl tasklet
 * disable` holds across a real restart of the resource's agent until
 * `enable`. This program (resource ts-drv, tc_slow registered as its
 * export) schedules with govrt_tasklet_schedule on an agent that follows
 * the store (--store):
 *
 *   disable q: refused with ECANCELED; the agent stopped and started
 *   again: q still disabled (list, and a scheduling refused), another
 *   tasklet not; enable q: taken again, and still after another restart;
 *   a key written in the store by someone else while the agent runs
 *   (/tasklets/ts-drv/w) disables w at once, its delete enables it;
 *   a key that names no tasklet is logged and changes nothing;
 *   a govctl that cannot open the store, or cannot write it (another
 *   writer holds its lock): exit 4, the agent's state as it was (nothing
 *   half done);
 *   with the agent stopped: a pid file naming a live process that does
 *   not answer, or a store govctl cannot write, is exit 4 with nothing
 *   written; disable of a name of the tasklets: rules the
 *   store routes to ts-drv is kept in the store, and the agent started
 *   next starts with it disabled; an unknown name or resource is exit 3
 *   with nothing written; enable takes out a disable the store keeps. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "gov/store_keys.h"
#include "harness.h"
#include "store.h"
#include "tap.h"

#define DRV "ts-drv"

long tc_slow(long seq)
{
	return seq;
}

/* "disabled" of tasklet name in govctl --json tasklet list: 1, 0, or -1
 * when the agent has no such tasklet. */
static int disabled(const char *name)
{
	char *out = NULL, pat[96];
	govctl_call(&out, "--json", "tasklet", "list", DRV, NULL);
	snprintf(pat, sizeof pat, "\"name\": \"%s\"", name);
	char *row = out ? strstr(out, pat) : NULL, *end = row ? strchr(row, '}') : NULL;
	char *k = row ? strstr(row, "\"disabled\": ") : NULL;
	int v = k && k < end ? strncmp(k + 12, "true", 4) == 0 : -1;
	free(out);
	return v;
}

/* govrt_tasklet_schedule's errno: 0 when it was queued. */
static int schedule(const char *name)
{
	errno = 0;
	return govrt_tasklet_schedule(name, "tc_slow", 1) == 0 ? 0 : errno;
}

/* An agent just started: tasklet name is disabled (list), refuses a
 * scheduling, and the agent logged that it took that from the store. */
static void from_store(const char *name, const char *when)
{
	char want[160];
	snprintf(want, sizeof want, "event=tasklet_disabled resource=" DRV " tasklet=%s "
		 "source=store", name);
	is_long(disabled(name), 1, "%s: list says %s is disabled", when, name);
	is_long(schedule(name), ECANCELED, "... and %s refuses a scheduling: ECANCELED", name);
	ok(agent_log_has(DRV, want, 5000), "... which the agent took from the store, and logged");
}

static const char *store_extra[] = { "--store", NULL, NULL }; /* the URL set in main */

static pid_t start_agent(void)
{
	pid_t pid = agent_start(DRV, NULL, store_extra);
	return pid > 0 && wait_connected(1, 5000) == 0 ? pid : -1;
}

static pid_t restart(pid_t agent, const char *what)
{
	int st = agent_stop(agent);
	ok(st == 0 && wait_connected(0, 3000) == 0, "%s: the agent stops (status %d)", what, st);
	agent = start_agent();
	ok(agent > 0, "%s: a new agent starts from the store and the program reconnects", what);
	return agent;
}

/* 1 if the store keeps tasklet name of DRV disabled, 0 if not, -1 if it
 * cannot say. */
static int kept(const char *url, const char *name)
{
	struct gov_store *s = NULL;
	char err[256], key[160];
	struct gov_kv kv;
	if (gov_store_open(url, &s, err, sizeof err) < 0)
		return -1;
	snprintf(key, sizeof key, GOV_TASKLET_STATE_FMT, DRV, name);
	int r = gov_store_get(s, key, &kv, err, sizeof err);
	if (r == 0)
		gov_kv_clear(&kv);
	gov_store_close(s);
	return r == 0 ? 1 : r == GOV_STORE_NOT_FOUND ? 0 : -1;
}

/* govctl's output as diagnostics, then freed. */
static void show(char *out)
{
	for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n"))
		diag("%s", line);
	free(out);
}

/* disable and enable with the agent down: checked against the rules the
 * store routes to DRV, kept in the store, taken by the agent started
 * next. Returns the agent running at the end. */
static pid_t while_down(pid_t agent, const char *url)
{
	ok(rule_publish("tasklets:\n  - {name: rx, function: tc_slow, resource: " DRV "}\n") > 0,
	   "a rule naming tasklet rx of " DRV " is published");
	int st = agent_stop(agent);
	ok(st == 0 && wait_connected(0, 3000) == 0, "down: the agent stops (status %d)", st);

	/* a pid file naming a live process that does not answer (this one):
	 * not taken for a stopped agent */
	char pidfile[600], db[600];
	snprintf(pidfile, sizeof pidfile, "%s/" DRV ".pid", harness_run_dir());
	FILE *pf = fopen(pidfile, "w");
	if (pf) {
		fprintf(pf, "%d\n", (int)getpid());
		fclose(pf);
	}
	char *out = NULL;
	int rc = govctl_call(&out, "tasklet", "disable", DRV, "rx", NULL);
	ok(pf && rc == 4 && out && strstr(out, "runs but does not answer on its socket; nothing "
					    "changed") && kept(url, "rx") == 0,
	   "down: a pid file naming a live process that does not answer: exit 4, nothing "
	   "written (%d)", rc);
	show(out);
	unlink(pidfile);
	/* a store govctl cannot write (another writer holds its lock past
	 * the 10 s busy timeout): exit 4, nothing written */
	snprintf(db, sizeof db, "%s/store.db", harness_run_dir());
	sqlite3 *holder = NULL;
	int held = sqlite3_open(db, &holder) == SQLITE_OK &&
		   sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
	rc = govctl_call(&out, "tasklet", "disable", DRV, "rx", NULL);
	sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(holder);
	ok(held && rc == 4 && out && strstr(out, "the rule store could not keep it") &&
	   strstr(out, "nothing changed") && kept(url, "rx") == 0,
	   "down: a store govctl cannot write: exit 4, nothing written (%d)", rc);
	show(out);

	rc = govctl_call(&out, "tasklet", "disable", DRV, "rx", NULL);
	ok(rc == 0 && out && strstr(out, "tasklet rx of " DRV " disabled in the rule store (its "
				    "agent is not running"),
	   "down: disable rx, a name of its tasklets: rules (exit %d)", rc);
	show(out);
	is_long(kept(url, "rx"), 1, "... kept in the store");
	rc = govctl_call(&out, "tasklet", "disable", DRV, "nope", NULL);
	ok(rc == 3 && out && strstr(out, "no rule the store routes to " DRV " names tasklet nope") &&
	   strstr(out, "(they name: rx)") && strstr(out, "nothing written"),
	   "down: an unknown tasklet: exit 3 and why (%d)", rc);
	show(out);
	is_long(kept(url, "nope"), 0, "... nothing written");
	rc = govctl_call(&out, "tasklet", "disable", "ts-none", "rx", NULL);
	ok(rc == 3 && out && strstr(out, "unknown resource ts-none"),
	   "down: an unknown resource: exit 3 (%d)", rc);
	show(out);
	rc = govctl_call(&out, "--json", "tasklet", "enable", DRV, "d", NULL);
	ok(rc == 0 && out && strstr(out, "\"agent_running\": false") &&
	   strstr(out, "\"was_disabled\": true"),
	   "down: enable d, named by no rule but kept disabled (exit %d)", rc);
	show(out);
	is_long(kept(url, "d"), 0, "... taken out of the store");

	agent = start_agent();
	ok(agent > 0, "down: an agent started with --store afterwards");
	from_store("rx", "down: the agent started next");
	is_long(schedule("d"), 0, "... and d takes calls");

	/* the agent up again: today's path, the agent checks the name */
	rc = govctl_call(&out, "tasklet", "disable", DRV, "nope", NULL);
	ok(rc == 3 && out && strstr(out, "the agent of " DRV " has no tasklet nope"),
	   "up: an unknown tasklet is the agent's answer, exit 3 (%d)", rc);
	free(out);
	st = agent_stop(agent);
	rc = govctl_call(NULL, "tasklet", "enable", DRV, "rx", NULL);
	ok(st == 0 && rc == 0 && kept(url, "rx") == 0, "down: enable rx (exit %d)", rc);
	agent = start_agent();
	is_long(schedule("rx"), 0, "... and the agent started next takes calls of rx");
	return agent;
}

int main(int argc, char **argv)
{
	(void)argc;
	static const char *const env[] = { "GOV_TIMEOUT_MS=3000", NULL };
	harness_reexec(argv, DRV, env);
	store_env();
	const char *url = getenv("GOV_STORE");
	store_extra[1] = url;
	ok(govctl_call(NULL, "init", NULL) == 0 &&
	   govctl_call(NULL, "register", DRV, "--type", "driver", "--exports=tc_slow", NULL) == 0,
	   "a store; " DRV " registered, exporting tc_slow");
	pid_t agent = start_agent();
	ok(agent > 0, "an agent that follows the store; the program is connected");

	is_long(schedule("q"), 0, "tasklet q takes a call");
	char *out = NULL;
	int rc = govctl_call(&out, "tasklet", "disable", DRV, "q", NULL);
	ok(rc == 0 && out && strstr(out, "tasklet q of " DRV " disabled (kept in the rule store") &&
	   !strstr(out, "note:"), "disable q (exit %d): %s", rc, out ? out : "");
	free(out);
	is_long(schedule("q"), ECANCELED, "q refuses a scheduling: ECANCELED");

	agent = restart(agent, "disabled");
	from_store("q", "after the restart");
	is_long(schedule("other"), 0, "another tasklet takes calls");

	rc = govctl_call(&out, "tasklet", "enable", DRV, "q", NULL);
	ok(rc == 0 && out && strstr(out, "tasklet q of " DRV " enabled"), "enable q (exit %d)", rc);
	free(out);
	is_long(schedule("q"), 0, "q takes calls again");
	agent = restart(agent, "enabled");
	is_long(schedule("q"), 0, "after another restart q still takes calls");
	is_long(disabled("q"), 0, "... and list says it is enabled");

	/* the store is the source of truth: a key written there by another
	 * writer reaches the running agent */
	struct gov_store *s = NULL;
	char err[256], key[160];
	uint64_t rev;
	ok(gov_store_open(url, &s, err, sizeof err) == 0, "the test opens the store itself");
	snprintf(key, sizeof key, GOV_TASKLET_STATE_FMT, DRV, "w");
	ok(s && gov_store_put(s, key, GOV_TASKLET_DISABLED, strlen(GOV_TASKLET_DISABLED), &rev, err,
			      sizeof err) == 0, "it writes %s", key);
	ok(agent_log_has(DRV, "event=tasklet_disabled resource=" DRV " tasklet=w source=store", 5000),
	   "the running agent follows it: w disabled");
	is_long(schedule("w"), ECANCELED, "... and refuses a scheduling of w");
	ok(s && gov_store_delete(s, key, &rev, err, sizeof err) == 0 &&
	   agent_log_has(DRV, "event=tasklet_enabled resource=" DRV " tasklet=w source=store", 5000),
	   "its delete enables w");
	is_long(schedule("w"), 0, "... which takes calls again");
	snprintf(key, sizeof key, GOV_KEY_TASKLETS DRV "/a b");
	ok(s && gov_store_put(s, key, GOV_TASKLET_DISABLED, strlen(GOV_TASKLET_DISABLED), &rev, err,
			      sizeof err) == 0 &&
	   agent_log_has(DRV, "event=tasklet_state_invalid resource=" DRV " key=\"" GOV_KEY_TASKLETS DRV
		   "/a b\" error=\"not a tasklet name\"", 5000),
	   "a key that names no tasklet is logged");
	is_long(disabled("a b"), -1, "... and makes none");
	gov_store_close(s);

	/* no store for govctl: nothing changes */
	setenv("GOV_STORE", "sqlite:/nonexistent-dir/store.db", 1);
	rc = govctl_call(&out, "tasklet", "disable", DRV, "q", NULL);
	setenv("GOV_STORE", url, 1);
	ok(rc == 4 && out && strstr(out, "/nonexistent-dir/store.db"),
	   "a govctl that cannot open the store: exit 4 and why (%d): %s", rc, out ? out : "");
	free(out);
	is_long(disabled("q"), 0, "... and q is still enabled");
	is_long(schedule("q"), 0, "... and takes calls");

	/* a store govctl opens but cannot write (another writer holds its
	 * write lock, past the store's 10 s busy timeout): the agent goes back */
	ok(schedule("d") == 0 && govctl_call(NULL, "tasklet", "disable", DRV, "d", NULL) == 0 &&
	   disabled("d") == 1, "tasklet d, scheduled once, disabled");
	char db[600];
	snprintf(db, sizeof db, "%s/store.db", harness_run_dir());
	sqlite3 *holder = NULL;
	ok(sqlite3_open(db, &holder) == SQLITE_OK &&
	   sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK,
	   "another writer holds the store's write lock");
	char *again = NULL;
	rc = govctl_call(&out, "tasklet", "disable", DRV, "q", NULL);
	int rc_again = govctl_call(&again, "tasklet", "disable", DRV, "d", NULL);
	sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(holder);
	ok(rc == 4 && out && strstr(out, "the rule store could not keep it") &&
	   strstr(out, "the agent's state is back as it was"),
	   "a store govctl cannot write: exit 4 and why (%d): %s", rc, out ? out : "");
	free(out);
	is_long(disabled("q"), 0, "... and q is enabled again");
	is_long(schedule("q"), 0, "... and takes calls");
	ok(rc_again == 4 && again && strstr(again, "the rule store could not keep it"),
	   "disabling d, already disabled, then: exit 4 too");
	free(again);
	is_long(disabled("d"), 1, "... and d stays disabled (as it was)");
	is_long(schedule("d"), ECANCELED, "... and refuses");

	agent = while_down(agent, url);
	ok(agent_stop(agent) == 0, "the agent stops cleanly");
	return done_testing();
}
