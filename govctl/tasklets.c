/* govctl/tasklets.c - `govctl tasklet list|flush|disable|enable`: the
 * tasklets running agents keep (docs/tasklet.md). list reads each agent's
 * statistics; flush, disable and enable are control commands to one agent
 * (a control HELLO whose text names them, runtime/agent/main.c), which
 * acts on its queue at once; disable and enable are also kept in the rule
 * store (/tasklets/RESOURCE/NAME), which the agent follows, so they hold
 * across its restarts, and with the agent down they are written there
 * alone, the name checked against the rules the store routes to
 * RESOURCE. Not the rules that make tasklets. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "govctl.h"
#include "gov/store_keys.h"
#include "internal.h"

static const char tasklet_usage[] =
	"usage: govctl tasklet list [RESOURCE] [--json]\n"
	"       govctl tasklet flush RESOURCE TASKLET\n"
	"       govctl tasklet disable RESOURCE TASKLET\n"
	"       govctl tasklet enable RESOURCE TASKLET\n"
	"\n"
	"list shows, per running agent (or RESOURCE's), each tasklet's calls queued,\n"
	"run, failed, dropped and refused, and whether it is disabled. flush drops the\n"
	"calls TASKLET has queued in RESOURCE's agent (a call already running ends;\n"
	"the agent logs event=tasklet_flushed and counts them as dropped). disable\n"
	"makes the agent refuse new schedulings of TASKLET (the caller gets -1 with\n"
	"ECANCELED, counted as refused) until enable, across the agent's restarts (the\n"
	"rule store keeps it); what is queued still runs.\n"
	"TASKLET is a name the agent has queued under, or one of its resource's\n"
	"tasklets: rules. With RESOURCE's agent not running, disable and enable only\n"
	"write the rule store, TASKLET checked against the tasklets: of the rules the\n"
	"store routes to RESOURCE; the agent started next with --store takes it.\n"
	"Exit 3 for an unknown resource or tasklet, 4 if its agent does not run\n"
	"(flush) or does not answer, is older than these commands, or the store\n"
	"cannot be used.\n"
	"\n"
	"example:\n"
	"  govctl tasklet list net-driver\n"
	"  govctl tasklet disable net-driver rx\n"
	"  govctl tasklet flush net-driver rx\n";

/* Why RESOURCE's agent did not answer: not running (4), or no such
 * resource at all (3). */
static int no_agent(struct govctl *g, const char *resource)
{
	int pid = govctl_agent_pid(resource);
	if (pid)
		return govctl_fail(GOVCTL_UNAVAILABLE, "tasklet: the agent of %s is not running "
				   "(pid %d is gone; govctl agent start %s)", resource, pid, resource);
	char key[sizeof GOV_KEY_RESOURCES + GOV_NAME_MAX], err[256];
	snprintf(key, sizeof key, GOV_KEY_RESOURCES "%s", resource);
	struct gov_kv kv;
	int r = gov_store_get(govctl_store(g), key, &kv, err, sizeof err);
	if (r == 0) {
		gov_kv_clear(&kv);
		return govctl_fail(GOVCTL_UNAVAILABLE, "tasklet: no agent runs for %s (govctl agent "
				   "start %s)", resource, resource);
	}
	if (r == GOV_STORE_NOT_FOUND)
		return govctl_fail(GOVCTL_NOT_FOUND, "tasklet: unknown resource %s: not registered "
				   "(govctl resources) and no agent runs for it", resource);
	return govctl_fail(GOVCTL_UNAVAILABLE, "tasklet: no agent runs for %s, and the store "
			   "could not say whether it is registered: %s", resource, err);
}

/* One agent's tasklets, each with "resource" added, appended to out. */
static void add_tasklets(json_t *out, const char *resource, json_t *st)
{
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(json_object_get(st, "xcall"), "tasklets"), i, t) {
		json_t *row = json_deep_copy(t);
		json_object_set_new(row, "resource", json_string(resource));
		json_array_append_new(out, row);
	}
}

static void print_tasklets(json_t *rows)
{
	printf("%-24s %-24s %8s %8s %8s %8s %8s %s\n", "RESOURCE", "TASKLET", "QUEUED", "RAN",
	       "FAILED", "DROPPED", "REFUSED", "STATE");
	size_t i;
	json_t *t;
	json_array_foreach(rows, i, t)
		printf("%-24s %-24s %8lld %8lld %8lld %8lld %8lld %s\n",
		       json_string_value(json_object_get(t, "resource")),
		       json_string_value(json_object_get(t, "name")),
		       json_integer_value(json_object_get(t, "queued")),
		       json_integer_value(json_object_get(t, "ran")),
		       json_integer_value(json_object_get(t, "failed")),
		       json_integer_value(json_object_get(t, "dropped")),
		       json_integer_value(json_object_get(t, "refused")),
		       json_is_true(json_object_get(t, "disabled")) ? "disabled" : "enabled");
}

static int tasklet_list(struct govctl *g, int argc, char **argv)
{
	const char *resource = NULL;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' || resource)
			return govctl_fail(GOVCTL_USAGE, "tasklet list: unexpected '%s' (see --help)", argv[i]);
		resource = argv[i];
	}
	if (resource && !gov_resource_name_ok(resource))
		return govctl_fail(GOVCTL_USAGE, "tasklet list: '%s' is not a resource name", resource);
	json_t *names = resource ? json_pack("[s]", resource) : govctl_agent_names();
	json_t *rows = json_array(), *n;
	size_t k;
	json_array_foreach(names, k, n) {
		const char *r = json_string_value(n);
		char *text = govctl_query_agent(r);
		json_t *st = text ? json_loads(text, 0, NULL) : NULL;
		free(text);
		if (!st && resource) {
			json_decref(names);
			json_decref(rows);
			return no_agent(g, resource);
		}
		if (st)
			add_tasklets(rows, r, st);
		json_decref(st);
	}
	json_decref(names);
	if (g->json)
		govctl_print_json(rows);
	else if (!json_array_size(rows))
		printf("no tasklets in %s%s\n", resource ? "the agent of " : "the running agents",
		       resource ? resource : "");
	else
		print_tasklets(rows);
	json_decref(rows);
	return GOVCTL_OK;
}

/* Why an agent did not take `tasklet VERB`: it is older than the
 * command, or of another wire version (exit 4, nothing changed). */
static int older_agent(const char *verb, const char *resource, const char *what, int wire)
{
	return govctl_fail(GOVCTL_UNAVAILABLE, "tasklet %s: the agent of %s is %s (%s); nothing "
			   "changed. Restart it with this version's govagent (govctl agent stop %s; "
			   "govctl agent start %s)", verb, resource, wire ? "of another version than "
			   "this govctl" : "older than the tasklet commands", what, resource, resource);
}

#define AGENT_DOWN (-1) /* ask: no agent answered, and none runs */

/* Asks RESOURCE's agent `tasklet VERB NAME`: GOVCTL_OK with its JSON
 * answer in *o, AGENT_DOWN when down_ok and no agent runs for it, or the
 * exit code after saying why. */
static int ask(struct govctl *g, const char *verb, const char *resource, const char *name,
	       int down_ok, json_t **o)
{
	char command[160], why[200] = "", *json = NULL;
	snprintf(command, sizeof command, "tasklet %s %s", verb, name);
	*o = NULL;
	int r = govctl_ask_agent(resource, command, &json, why, sizeof why);
	int pid = r < 0 && down_ok ? govctl_agent_alive(resource) : 0;
	if (pid)
		return govctl_fail(GOVCTL_UNAVAILABLE, "tasklet %s: the agent of %s (pid %d) runs but "
				   "does not answer on its socket; nothing changed", verb, resource, pid);
	if (r < 0)
		return down_ok ? AGENT_DOWN : no_agent(g, resource);
	if (r == ENOENT)
		return govctl_fail(GOVCTL_NOT_FOUND, "tasklet %s: %s (see govctl tasklet list %s)", verb,
				   why, resource);
	if (r == EPROTONOSUPPORT)
		return older_agent(verb, resource, why, 1);
	if (r == EPROTO)
		return govctl_fail(GOVCTL_UNAVAILABLE, "tasklet %s: the agent of %s answered what "
				   "govctl cannot read: %s; nothing changed", verb, resource, why);
	/* govctl checked the verb and the name: an agent that does not know
	 * the command is older than it */
	if (r == EINVAL && strncmp(why, "unknown ", 8) == 0)
		return older_agent(verb, resource, why, 0);
	if (r)
		return govctl_fail(GOVCTL_REFUSED, "tasklet %s: the agent of %s refused: %s", verb,
				   resource, why);
	*o = json_loads(json, 0, NULL);
	free(json);
	if (!json_object_get(*o, "done")) {
		/* its statistics: an agent that ignores a control HELLO's text */
		json_decref(*o);
		*o = NULL;
		return older_agent(verb, resource, "it answered with its statistics, as agents "
				   "before them do", 0);
	}
	return GOVCTL_OK;
}

/* disable and enable are kept in the rule store, which RESOURCE's agent
 * watches, so they hold across its restarts: disable puts
 * /tasklets/RESOURCE/NAME, enable deletes it. 0, or -1 with why. */
static int keep_state(struct govctl *g, const char *resource, const char *name, int disable,
		      char *why, size_t whylen)
{
	char key[sizeof GOV_KEY_TASKLETS + 2 * GOV_NAME_MAX];
	snprintf(key, sizeof key, GOV_TASKLET_STATE_FMT, resource, name);
	uint64_t rev;
	int r = disable ? gov_store_put(govctl_store(g), key, GOV_TASKLET_DISABLED,
					strlen(GOV_TASKLET_DISABLED), &rev, why, whylen)
			: gov_store_delete(govctl_store(g), key, &rev, why, whylen);
	return r < 0 ? -1 : 0;
}

/* routed_tasklets, per rule routed to the resource: its tasklets: names
 * for the resource (no resource:, or this one) added as keys of names, as
 * the agent would read them. A version absent or that does not parse is
 * left out, as the agent leaves it out; one the store cannot read stops
 * the walk, with why. */
struct tasklet_names {
	const char *resource;
	json_t *names;
	char *why;
	size_t whylen;
};

static int add_routed(void *ctx, const char *rule, uint64_t version, int r,
		      const struct gov_kv *text, const char *why)
{
	struct tasklet_names *t = ctx;
	if (r == GOV_STORE_NOT_FOUND)
		return 0;
	if (r < 0) {
		snprintf(t->why, t->whylen, "%s", why);
		return -1;
	}
	char origin[300], bad[256];
	snprintf(origin, sizeof origin, "%s version %llu", rule, (unsigned long long)version);
	struct gov_ruledoc d;
	if (gov_ruledoc_parse((char *)text->value, text->len, origin, &d, bad, sizeof bad) < 0)
		return 0;
	for (unsigned i = 0; i < d.ntasklets; i++)
		if (!d.tasklets[i].resource[0] || strcmp(d.tasklets[i].resource, t->resource) == 0)
			json_object_set_new(t->names, d.tasklets[i].name, json_true());
	gov_ruledoc_free(&d);
	return 0;
}

/* The tasklets: names of the rules the store routes to resource, at the
 * versions routed (gov_store_routed): those an agent of resource started
 * from this store knows. A JSON object whose keys are the names, or NULL
 * with why. */
static json_t *routed_tasklets(struct govctl *g, const char *resource, char *why, size_t whylen)
{
	struct tasklet_names t = { resource, json_object(), why, whylen };
	uint64_t rev;
	if (t.names && gov_store_routed(govctl_store(g), resource, add_routed, &t, &rev, why,
					whylen) != 0) {
		json_decref(t.names);
		return NULL;
	}
	return t.names;
}

/* disable or enable while RESOURCE's agent is down: the name checked
 * against the rules the store routes to it (or a disable the store already
 * keeps, so that one can be undone), then the store key written, which an
 * agent started with --store reads at its start. */
static int act_down(struct govctl *g, const char *verb, const char *resource, const char *name,
		    int disable)
{
	char key[sizeof GOV_KEY_TASKLETS + 2 * GOV_NAME_MAX], why[512] = "";
	snprintf(key, sizeof key, GOV_KEY_RESOURCES "%s", resource);
	struct gov_kv kv;
	int r = gov_store_get(govctl_store(g), key, &kv, why, sizeof why);
	if (r == GOV_STORE_NOT_FOUND)
		return govctl_fail(GOVCTL_NOT_FOUND, "tasklet %s: unknown resource %s: not registered "
				   "(govctl resources) and no agent runs for it", verb, resource);
	if (r < 0)
		return govctl_fail(GOVCTL_UNAVAILABLE, "tasklet %s: no agent runs for %s, and the store "
				   "could not say whether it is registered: %s; nothing written", verb,
				   resource, why);
	gov_kv_clear(&kv);
	snprintf(key, sizeof key, GOV_TASKLET_STATE_FMT, resource, name);
	r = gov_store_get(govctl_store(g), key, &kv, why, sizeof why);
	json_t *names = r < 0 ? NULL : routed_tasklets(g, resource, why, sizeof why);
	if (!names)
		return govctl_fail(GOVCTL_UNAVAILABLE, "tasklet %s: no agent runs for %s, and the rule "
				   "store could not be read: %s; nothing written", verb, resource, why);
	int kept = r == 0;
	if (kept)
		gov_kv_clear(&kv);
	if (!kept && !json_object_get(names, name)) {
		char list[400] = "";
		size_t o = 0;
		const char *k;
		json_t *v;
		json_object_foreach(names, k, v)
			if (o < sizeof list)
				o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "", k);
		json_decref(names);
		return govctl_fail(GOVCTL_NOT_FOUND, "tasklet %s: the agent of %s is not running, and "
				   "no rule the store routes to %s names tasklet %s in its tasklets: "
				   "(they name: %s); nothing written. A tasklet named only when called "
				   "(govrt_tasklet_schedule, a dynamic rule's id) is known to its "
				   "running agent: govctl agent start %s first", verb, resource, resource,
				   name, o ? list : "none", resource);
	}
	json_decref(names);
	if (kept != disable && keep_state(g, resource, name, disable, why, sizeof why) < 0)
		return govctl_fail(GOVCTL_UNAVAILABLE, "tasklet %s: the rule store could not keep it: "
				   "%s; nothing changed", verb, why);
	if (g->json) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:b,s:s,s:b}", "resource", resource, "tasklet",
				      name, "done", verb, "dropped", 0, "was_disabled", kept, "store",
				      gov_store_url(govctl_store(g)), "agent_running", 0);
		govctl_print_json(o);
		json_decref(o);
	} else {
		printf("tasklet %s of %s %sd in the rule store (its agent is not running; started "
		       "with --store %s, it starts with %s %s)\n", name, resource, verb,
		       gov_store_url(govctl_store(g)), name, disable ? "disabled" : "enabled");
	}
	return GOVCTL_OK;
}

static int tasklet_act(struct govctl *g, int argc, char **argv)
{
	const char *verb = argv[0];
	if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-')
		return govctl_fail(GOVCTL_USAGE, "tasklet %s: give RESOURCE and TASKLET (see --help)", verb);
	const char *resource = argv[1], *name = argv[2];
	if (!gov_resource_name_ok(resource))
		return govctl_fail(GOVCTL_USAGE, "tasklet %s: '%s' is not a resource name", verb, resource);
	if (!gov_resource_name_ok(name))
		return govctl_fail(GOVCTL_USAGE, "tasklet %s: '%s' is not a tasklet name (1-63 of "
				   "[A-Za-z0-9._-], not starting with '.')", verb, name);
	int flush = strcmp(verb, "flush") == 0, disable = strcmp(verb, "disable") == 0;
	if (!flush)
		govctl_store(g); /* before the agent acts: no store, nothing changes (exit 4) */
	json_t *o;
	int rc = ask(g, verb, resource, name, !flush, &o);
	if (rc == AGENT_DOWN)
		return act_down(g, verb, resource, name, disable);
	if (rc != GOVCTL_OK)
		return rc;
	char why[256];
	if (!flush && keep_state(g, resource, name, disable, why, sizeof why) < 0) {
		/* the store could not keep it: the agent goes back as it was */
		int was = json_is_true(json_object_get(o, "was_disabled")), back = GOVCTL_OK;
		if (was != disable) {
			json_t *undo = NULL;
			back = ask(g, was ? "disable" : "enable", resource, name, 0, &undo);
			json_decref(undo);
		}
		json_decref(o);
		return govctl_fail(GOVCTL_UNAVAILABLE, "tasklet %s: the rule store could not keep it: "
				   "%s; %s", verb, why, back == GOVCTL_OK ? "the agent's state is back as "
				   "it was" : "and the agent's state could not be put back");
	}
	const char *follows = json_string_value(json_object_get(o, "store"));
	if (!flush && follows && strcmp(follows, gov_store_url(govctl_store(g))) != 0)
		fprintf(stderr, "govctl: note: the agent of %s does not follow the rule store %s (%s): "
			"this holds only until it restarts\n", resource,
			gov_store_url(govctl_store(g)),
			follows[0] ? follows : "it reads a rule file");
	if (g->json)
		govctl_print_json(o);
	else if (flush)
		printf("tasklet %s of %s flushed: %lld queued calls dropped\n", name, resource,
		       json_integer_value(json_object_get(o, "dropped")));
	else
		printf("tasklet %s of %s %sd%s\n", name, resource, verb,
		       disable ? " (kept in the rule store until enable)" : "");
	json_decref(o);
	return GOVCTL_OK;
}

int cmd_tasklet(struct govctl *g, int argc, char **argv)
{
	if (argc < 2 || govctl_wants_help(argc, argv)) {
		fputs(tasklet_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? GOVCTL_USAGE : GOVCTL_OK;
	}
	if (strcmp(argv[1], "list") == 0)
		return tasklet_list(g, argc - 1, argv + 1);
	if (strcmp(argv[1], "flush") == 0 || strcmp(argv[1], "disable") == 0 ||
	    strcmp(argv[1], "enable") == 0)
		return tasklet_act(g, argc - 1, argv + 1);
	fprintf(stderr, "govctl: unknown tasklet command '%s'\n\n%s", argv[1], tasklet_usage);
	return GOVCTL_USAGE;
}
