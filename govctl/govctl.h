/* govctl/govctl.h - what govctl's subcommand files share: the store handle,
 * output options, error reporting, and the exit codes (README "Exit codes").
 * Each file implements the subcommands of one noun: resources.c (register,
 * resources, show, unregister, matrix), rules.c (rule ...), agents.c (agent
 * ..., stats). main.c parses the global options and dispatches. */
#ifndef GOVCTL_H
#define GOVCTL_H

#include <stdio.h>
#include "../rules/store.h"

enum govctl_exit {
	GOVCTL_OK = 0,
	GOVCTL_USAGE = 1,     /* unknown command or option, missing argument */
	GOVCTL_REFUSED = 2,   /* the input is invalid or breaks a rule; nothing written */
	GOVCTL_NOT_FOUND = 3, /* no such resource, rule or version */
	GOVCTL_UNAVAILABLE = 4, /* the store or an agent could not be used */
};

struct govctl {
	const char *store_url;   /* --store, else GOV_STORE, else the default */
	struct gov_store *store; /* opened on first use */
	int json;                /* --json: listings as JSON on stdout */
};

/* Opens the store on first use; on failure prints the error and exits 4. */
struct gov_store *govctl_store(struct govctl *g);

/* Prints "govctl: <what>" on stderr and returns code (for `return fail(...)`). */
int govctl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A subcommand: argv[0] is its own name. Returns an exit code. */
typedef int govctl_cmd(struct govctl *g, int argc, char **argv);

/* resources.c */
govctl_cmd cmd_register, cmd_resources, cmd_show, cmd_unregister, cmd_matrix;
/* rules.c */
govctl_cmd cmd_rule;
/* agents.c */
govctl_cmd cmd_agent, cmd_stats;

/* True if argv holds -h or --help; then the caller prints its help. */
int govctl_wants_help(int argc, char **argv);

#endif
