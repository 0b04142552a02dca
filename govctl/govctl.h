/* govctl/govctl.h - what govctl's subcommand files share: the store handle,
 * output options, error reporting, and the exit codes (README "Exit codes").
 * Each file implements the subcommands of one noun: resources.c (register,
 * resources, show, exports, unregister, matrix; exportlist.c reads export
 * lists), rules.c (rule ...), agents.c (agent
 * ..., stats). main.c parses the global options and dispatches. */
#ifndef GOVCTL_H
#define GOVCTL_H

#include <jansson.h>
#include <stdio.h>
#include "../rules/store.h"
#include "../rules/ruledoc.h"

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

/* A transaction being built by several parts of govctl: its comparisons
 * and operations, the strings they point to kept alive in `keep`. */
struct govctl_txn {
	struct gov_txn_cmp *cmps;
	size_t ncmps;
	struct gov_txn_op *ops;
	size_t nops;
	json_t *keep;
};
void govctl_txn_init(struct govctl_txn *t);
void govctl_txn_free(struct govctl_txn *t);
/* Appends; the strings are copied into t->keep. Returns -1 out of memory. */
int govctl_txn_cmp(struct govctl_txn *t, const char *key, uint64_t mod_rev);
int govctl_txn_op(struct govctl_txn *t, enum gov_txn_kind kind, const char *key,
		  const void *value, size_t len);

/* resources.c */
govctl_cmd cmd_register, cmd_resources, cmd_show, cmd_exports, cmd_unregister, cmd_matrix;
/* For `rule publish`: checks the resources a document declares, in order,
 * exactly as `register` would (layers_json: the document's own layer set as
 * JSON, or NULL for the one in force), and adds what writes them to t. A
 * resource already registered with the same record is left as it is.
 * Returns 0, or an exit code after printing every refusal with its place. */
int govctl_plan_resources(struct govctl *g, const struct gov_ruledoc *d, const char *origin,
			  const char *layers_json, struct govctl_txn *t);
/* rules.c */
govctl_cmd cmd_rule;
/* agents.c */
govctl_cmd cmd_agent, cmd_stats;
/* The statistics JSON of RESOURCE's running agent (malloc'ed), or NULL. */
char *govctl_query_agent(const char *resource);
/* Says a control HELLO to RESOURCE's agent, with command in its text (NULL:
 * none, the statistics): 0 with its JSON answer in *json (malloc'ed), an
 * errno with the agent's why when it refused, EPROTONOSUPPORT (an agent
 * of another wire version) or EPROTO (an answer govctl cannot read) with
 * why, -1 if no agent answered. */
int govctl_ask_agent(const char *resource, const char *command, char **json, char *why,
		     size_t whylen);
/* The resources that have an agent pid file in the run directory, sorted
 * (a JSON array of strings). */
json_t *govctl_agent_names(void);
/* The pid in RESOURCE's agent pid file, or 0 if it has none. */
int govctl_agent_pid(const char *resource);
/* That pid if its process is still there, else 0. */
int govctl_agent_alive(const char *resource);
/* tasklets.c */
govctl_cmd cmd_tasklet;
/* trace.c */
govctl_cmd cmd_trace;

/* Prints v as indented JSON and a newline on stdout (--json output). */
void govctl_print_json(json_t *v);

/* True if argv holds -h or --help; then the caller prints its help. */
int govctl_wants_help(int argc, char **argv);

#endif
