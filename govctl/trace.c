/* govctl/trace.c - `govctl trace RESOURCE`: what the dynamic rules in
 * RESOURCE's agent have seen: runs, faults, whether disabled, their
 * counters and the newest entries of their event rings (gov_event in
 * gov/dynrule.h; rules/trace fills them). Read from the agent's statistics;
 * a rule placed in the processes shows what they counted and logged
 * (docs/dynrules.md "Helpers"), with runs 0: a process does not count runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "govctl.h"
#include "internal.h"

static const char trace_usage[] =
	"usage: govctl trace RESOURCE [--rule NAME] [--json]\n"
	"\n"
	"Prints each dynamic rule of RESOURCE's running agent: runs, faults, whether it\n"
	"is disabled, its non-zero counters, and its event ring (time, site, a, b),\n"
	"oldest first. --rule keeps one rule (RULE/ENTRY). Exit 4 if no agent runs.\n"
	"\n"
	"example:\n"
	"  govctl rule publish rules/trace/trace.yaml\n"
	"  govctl trace billing\n";

int cmd_trace(struct govctl *g, int argc, char **argv)
{
	const char *resource = NULL, *only = NULL;
	if (govctl_wants_help(argc, argv)) {
		fputs(trace_usage, stdout);
		return GOVCTL_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rule") == 0 && i + 1 < argc)
			only = argv[++i];
		else if (argv[i][0] == '-' || resource)
			return govctl_fail(GOVCTL_USAGE, "trace: unexpected '%s' (see --help)", argv[i]);
		else
			resource = argv[i];
	}
	if (!resource)
		return govctl_fail(GOVCTL_USAGE, "trace: RESOURCE is missing (see --help)");
	if (!gov_resource_name_ok(resource))
		return govctl_fail(GOVCTL_USAGE, "trace: '%s' is not a resource name", resource);
	char *text = govctl_query_agent(resource);
	json_t *st = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	if (!st)
		return govctl_fail(GOVCTL_UNAVAILABLE, "trace: no agent runs for %s (govctl agent start %s)",
				   resource, resource);
	json_t *rules = json_object_get(st, "rules"), *out = json_array(), *r;
	size_t i;
	json_array_foreach(rules, i, r)
		if (!only || strcmp(json_string_value(json_object_get(r, "name")) ?: "", only) == 0)
			json_array_append(out, r);
	if (g->json) {
		govctl_print_json(out);
	} else {
		json_array_foreach(out, i, r) {
			printf("rule %s (%s, in the %s): runs %lld, faults %lld%s\n",
			       json_string_value(json_object_get(r, "name")),
			       json_string_value(json_object_get(r, "mode")),
			       json_string_value(json_object_get(r, "placement")),
			       json_integer_value(json_object_get(r, "runs")),
			       json_integer_value(json_object_get(r, "faults")),
			       json_is_true(json_object_get(r, "disabled")) ? ", DISABLED" : "");
			size_t k;
			json_t *v;
			json_array_foreach(json_object_get(r, "counters"), k, v)
				if (json_integer_value(v))
					printf("  counter %zu: %lld\n", k, json_integer_value(v));
			json_array_foreach(json_object_get(r, "events"), k, v)
				printf("  event %lld: time_ns %lld site %s a %lld b %lld\n",
				       json_integer_value(json_object_get(v, "seq")),
				       json_integer_value(json_object_get(v, "time_ns")),
				       json_string_value(json_object_get(v, "site_id")),
				       json_integer_value(json_object_get(v, "a")),
				       json_integer_value(json_object_get(v, "b")));
		}
		if (!json_array_size(out))
			printf("no dynamic rules%s%s in the agent of %s\n", only ? " named " : "",
			       only ? only : "", resource);
	}
	json_decref(out);
	json_decref(st);
	return GOVCTL_OK;
}
