/* tests/t_publish.c - rules published with govctl reach a running governed
 * program through a store-subscribed agent: a verdict published while the
 * program runs changes its behaviour within 100 ms (measured and printed),
 * rollback restores the old behaviour, a refused publish changes nothing,
 * and an agent that was down catches up when it starts. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"

#define R "t-publish"

__attribute__((noinline)) long add(long a, long b) { return a + b; }
static long gadd(long a, long b) { return GOV_CALL("lll", add, a, b); }

static char store_url[600];

/* Runs govctl with args; returns its exit code, output in *out. */
static int govctl(char **out, const char *a1, const char *a2, const char *a3,
		  const char *a4, const char *a5)
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

static const char *write_rule(const char *name, const char *text)
{
	static char path[600];
	snprintf(path, sizeof path, "%s/%s.yaml", harness_run_dir(), name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

/* Publishes and returns the store revision govctl printed, or 0. */
static unsigned long long publish(const char *file, char **out)
{
	char *o;
	int rc = govctl(&o, "rule", "publish", file, NULL, NULL);
	unsigned long long rev = 0;
	char *at = strstr(o, "at revision ");
	if (rc == 0 && at)
		rev = strtoull(at + 12, NULL, 10);
	if (out)
		*out = o;
	else
		free(o);
	return rev;
}

static const char trace[] = "name: policy\nverdicts:\n  - function: add\n    action: trace\n";
static const char deny[] = "name: policy\nverdicts:\n  - function: add\n    action: deny\n    errno: EACCES\n";

int main(int argc, char **argv)
{
	(void)argc;
	harness_reexec(argv, R, NULL);
	/* t_etcd.sh runs this test again on an etcd store */
	const char *url = getenv("RHODES_TEST_STORE_URL");
	if (url && *url)
		snprintf(store_url, sizeof store_url, "%s", url);
	else
		snprintf(store_url, sizeof store_url, "sqlite:%s/store.db", harness_run_dir());
	setenv("GOV_STORE", store_url, 1);
	char *out;
	is_long(govctl(&out, "init", NULL, NULL, NULL, NULL), 0, "govctl init creates the store");
	free(out);
	ok(publish(write_rule("v1", trace), NULL) > 0, "version 1 (trace add) is published");
	is_long(govctl(&out, "agent", "start", R, NULL, NULL), 0, "govctl agent start runs a store-subscribed agent");
	has_str(out, "agent for t-publish started", "and says so");
	free(out);
	is_long(govctl(&out, "agent", "start", R, NULL, NULL), 2, "a second agent for the same resource is refused");
	has_str(out, "already runs", "and says why");
	free(out);
	ok(wait_connected(1, 3000) == 0, "the governed program connects to it");
	uint64_t before = 0;
	struct govrt_stats st;
	govrt_stats(&st);
	before = st.agent_calls;
	ok(gadd(1, 2) == 3, "a traced call runs");
	govrt_stats(&st);
	is_long(st.agent_calls - before, 1, "and went through the agent (the agent took version 1 at start)");

	long long t0 = now_ms();
	unsigned long long rev = publish(write_rule("v2", deny), NULL);
	long long t_published = now_ms();
	ok(rev > 0, "version 2 (deny add) is published at revision %llu", rev);
	int reached = govrt_wait_table(rev, 2000) == 0;
	long long t_applied = now_ms();
	ok(reached, "the program's decision table reaches that revision");
	diag("publish -> applied in the program: %lld ms after govctl returned (%lld ms including govctl)",
	     t_applied - t_published, t_applied - t0);
	ok(t_applied - t_published <= 100, "within 100 ms of the publish");
	errno = 0;
	ok(gadd(1, 2) == -1 && errno == EACCES, "and the program's behaviour changed without a restart");

	char *bad = NULL;
	govctl(&out, "rule", "history", "policy", NULL, NULL);
	char *history_before = out;
	is_long(publish(write_rule("bad", "name: policy\nverdicts:\n  - function: add\n    action: maybe\n"), &bad), 0,
		"a malformed version is refused");
	has_str(bad, "bad.yaml:4:13: unknown action 'maybe'", "with file:line:column and why");
	has_str(bad, "nothing published", "and says nothing was published");
	free(bad);
	govctl(&out, "rule", "history", "policy", NULL, NULL);
	ok(strcmp(out, history_before) == 0, "the rule's history is unchanged");
	free(out);
	free(history_before);
	ok(gadd(1, 2) == -1 && errno == EACCES, "and so is the program's behaviour");

	is_long(govctl(&out, "rule", "rollback", "policy", "--to", "1"), 0, "rollback to version 1");
	has_str(out, "version 3", "publishes it again as version 3");
	rev = strtoull(strstr(out, "at revision ") ? strstr(out, "at revision ") + 12 : "0", NULL, 10);
	free(out);
	ok(govrt_wait_table(rev, 2000) == 0 && gadd(1, 2) == 3, "and the old behaviour is back");
	is_long(govctl(&out, "rule", "diff", "policy", "1", "2"), 0, "rule diff compares two versions");
	has_str(out, "-    action: trace", "showing what version 2 removed");
	has_str(out, "+    action: deny", "and what it added");
	free(out);
	is_long(govctl(&out, "rule", "show", "policy", "--version", "2"), 0, "rule show --version");
	ok(strcmp(out, deny) == 0, "prints the version exactly as published");
	free(out);
	is_long(govctl(&out, "rule", "show", "policy", "--version", "9"), 3, "a version that does not exist: exit 3");
	free(out);

	/* an agent that was down catches up when it comes back */
	is_long(govctl(&out, "agent", "stop", R, NULL, NULL), 0, "govctl agent stop");
	free(out);
	ok(wait_connected(0, 2000) == 0, "the program notices the agent is gone");
	rev = publish(write_rule("v4", deny), NULL);
	ok(rev > 0, "a version is published while the agent is down");
	is_long(govctl(&out, "agent", "start", R, NULL, NULL), 0, "the agent starts again");
	free(out);
	ok(wait_connected(1, 3000) == 0 && govrt_wait_table(rev, 2000) == 0, "and catches up to that revision");
	errno = 0;
	ok(gadd(1, 2) == -1 && errno == EACCES, "whose rule is in force");
	/* routing: a rule naming one resource reaches only that resource's agent */
	govctl(NULL, "register", R, "--type", "application", NULL);
	govctl(NULL, "register", "t-other", "--type", "application", NULL);
	is_long(govctl(&out, "agent", "start", "t-other", NULL, NULL), 0, "a second agent, for t-other");
	free(out);
	long other_before = agent_stat("t-other", "rules_rev");
	rev = publish(write_rule("routed", "name: routed\nverdicts:\n  - function: add\n"
				 "    action: emulate\n    value: 99\n    resource: t-publish\n"), NULL);
	ok(rev > 0 && govrt_wait_table(rev, 2000) == 0, "a rule routed to t-publish reaches its program");
	usleep(100000);
	is_long(agent_stat("t-other", "rules_rev"), other_before,
		"t-other's agent does not even see it (it watches only its routes)");
	rev = publish(write_rule("routed2", "name: routed\nverdicts:\n  - function: add\n"
				 "    action: emulate\n    value: 99\n    resource: t-other\n"), NULL);
	ok(rev > 0 && govrt_wait_table(rev, 2000) == 0,
	   "routing the rule elsewhere withdraws it from t-publish's agent");
	usleep(100000);
	is_long(agent_stat("t-other", "rules_rev"), (long)rev, "and delivers it to t-other's");
	govctl(NULL, "agent", "stop", "t-other", NULL, NULL);
	is_long(govctl(&out, "agent", "list", "--json", NULL, NULL), 0, "agent list --json");
	has_str(out, "\"resource\": \"t-publish\"", "lists the agent");
	has_str(out, "\"alive\": true", "alive");
	free(out);
	is_long(govctl(&out, "agent", "stop", R, NULL, NULL), 0, "the agent stops");
	free(out);
	is_long(govctl(&out, "agent", "stop", R, NULL, NULL), 3, "stopping it again: exit 3");
	free(out);
	return done_testing();
}
