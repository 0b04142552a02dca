/* govctl/main.c - govctl's entry point: global options, `govctl init`, and
 * dispatch to the subcommands (git and kubectl style: govctl VERB or
 * govctl NOUN VERB). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "govctl.h"
#include "gov/store_keys.h"

static const char usage[] =
	"usage: govctl [--store URL] [--json] COMMAND [ARGS]\n"
	"\n"
	"Registers resources, checks them against the layer hierarchy, and publishes\n"
	"rules into the rule store, from which agents apply them live.\n"
	"\n"
	"commands:\n"
	"  init                         create the store (and the default layer set)\n"
	"  register NAME --type T ...   register a resource (checked against the hierarchy)\n"
	"  resources                    list resources\n"
	"  show NAME                    one resource\n"
	"  exports NAME                 the functions it exports, as an export list\n"
	"  unregister NAME [--force]    remove a resource\n"
	"  matrix [--csv]               the sets A, S, D, H and the invocation matrix\n"
	"  rule publish|list|show|history|diff|rollback|watch ...\n"
	"  agent start|stop|list|status ...\n"
	"  stats                        per-edge and per-site call counts from the agents\n"
	"  trace RESOURCE               dynamic rules' counters and event rings in its agent\n"
	"  tasklet list|flush|disable|enable ...\n"
	"\n"
	"options:\n"
	"  --store URL   sqlite:PATH (default: sqlite:$GOV_HOME/store.db) or etcd:http://HOST:PORT;\n"
	"                also from GOV_STORE\n"
	"  --json        listings as JSON on stdout\n"
	"  -h, --help    this text; `govctl COMMAND --help` for a command's, with an example\n"
	"\n"
	"example:\n"
	"  govctl init\n"
	"  govctl register nic --type hardware\n"
	"  govctl register net-driver --type driver --ref nic\n"
	"  govctl rule publish rules/examples/deny-unlink.yaml\n"
	"\n"
	"exit status: 0 ok, 1 bad usage, 2 refused (invalid input or a broken rule;\n"
	"nothing written), 3 not found, 4 the store or an agent could not be used.\n";

int govctl_fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("govctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return code;
}

struct gov_store *govctl_store(struct govctl *g)
{
	if (!g->store) {
		char err[512];
		if (gov_store_open(g->store_url, &g->store, err, sizeof err) < 0) {
			govctl_fail(GOVCTL_UNAVAILABLE, "%s", err);
			exit(GOVCTL_UNAVAILABLE);
		}
	}
	return g->store;
}

void govctl_txn_init(struct govctl_txn *t)
{
	*t = (struct govctl_txn){ .keep = json_array() };
}

void govctl_txn_free(struct govctl_txn *t)
{
	free(t->cmps);
	free(t->ops);
	json_decref(t->keep);
	*t = (struct govctl_txn){ 0 };
}

/* A string that lives as long as the transaction. */
static const char *kept(struct govctl_txn *t, const char *s, size_t len)
{
	json_t *v = json_stringn_nocheck(s, len);
	if (!v || json_array_append_new(t->keep, v) < 0)
		return NULL;
	return json_string_value(v);
}

int govctl_txn_cmp(struct govctl_txn *t, const char *key, uint64_t mod_rev)
{
	struct gov_txn_cmp *c = realloc(t->cmps, (t->ncmps + 1) * sizeof *c);
	if (!c)
		return -1;
	t->cmps = c;
	if (!(c[t->ncmps].key = kept(t, key, strlen(key))))
		return -1;
	c[t->ncmps++].mod_rev = mod_rev;
	return 0;
}

int govctl_txn_op(struct govctl_txn *t, enum gov_txn_kind kind, const char *key,
		  const void *value, size_t len)
{
	struct gov_txn_op *o = realloc(t->ops, (t->nops + 1) * sizeof *o);
	if (!o)
		return -1;
	t->ops = o;
	o[t->nops] = (struct gov_txn_op){ kind, kept(t, key, strlen(key)), NULL, len };
	if (!o[t->nops].key || (value && !(o[t->nops].value = kept(t, value, len))))
		return -1;
	t->nops++;
	return 0;
}

void govctl_print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (s)
		puts(s);
	free(s);
}

int govctl_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
	return 0;
}

static int cmd_init(struct govctl *g, int argc, char **argv)
{
	if (govctl_wants_help(argc, argv)) {
		puts("usage: govctl init\n\n"
		     "Creates the rule store if it does not exist and writes the default layer\n"
		     "set (application -> service -> driver -> hardware) if none is published.\n"
		     "Running it again changes nothing.\n\n"
		     "example:\n  GOV_HOME=/var/lib/rhodes govctl init");
		return GOVCTL_OK;
	}
	if (argc > 1)
		return govctl_fail(GOVCTL_USAGE, "init: unexpected argument '%s'", argv[1]);
	struct gov_store *s = govctl_store(g);
	char err[512];
	uint64_t rev;
	struct gov_txn_cmp absent = { GOV_KEY_LAYERS, 0 };
	struct gov_txn_op put = { GOV_TXN_PUT, GOV_KEY_LAYERS, GOV_DEFAULT_LAYERS,
				  strlen(GOV_DEFAULT_LAYERS) };
	int r = gov_store_txn(s, &absent, 1, &put, 1, &rev, err, sizeof err);
	if (r < 0)
		return govctl_fail(GOVCTL_UNAVAILABLE, "%s", err);
	if (gov_store_revision(s, &rev, err, sizeof err) < 0)
		return govctl_fail(GOVCTL_UNAVAILABLE, "%s", err);
	printf("store %s at revision %llu%s\n", gov_store_url(s), (unsigned long long)rev,
	       r == GOV_STORE_CONFLICT ? "" : " (default layer set written)");
	return GOVCTL_OK;
}

static const struct {
	const char *name;
	govctl_cmd *fn;
} commands[] = {
	{ "init", cmd_init },
	{ "register", cmd_register },
	{ "resources", cmd_resources },
	{ "show", cmd_show },
	{ "exports", cmd_exports },
	{ "unregister", cmd_unregister },
	{ "matrix", cmd_matrix },
	{ "rule", cmd_rule },
	{ "agent", cmd_agent },
	{ "stats", cmd_stats },
	{ "trace", cmd_trace },
	{ "tasklet", cmd_tasklet },
};

int main(int argc, char **argv)
{
	struct govctl g = { .store_url = getenv("GOV_STORE") };
	/* --json may stand anywhere; take it out so commands need not know */
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--json") == 0)
			g.json = 1;
		else
			argv[n++] = argv[i];
	}
	argc = n;
	argv[argc] = NULL;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
			g.store_url = argv[++i];
		} else if (strncmp(argv[i], "--store=", 8) == 0) {
			g.store_url = argv[i] + 8;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return GOVCTL_OK;
		} else {
			fprintf(stderr, "govctl: unknown option '%s'\n\n%s", argv[i], usage);
			return GOVCTL_USAGE;
		}
	}
	if (i == argc) {
		fputs(usage, stderr);
		return GOVCTL_USAGE;
	}
	for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
		if (strcmp(argv[i], commands[c].name) == 0) {
			int r = commands[c].fn(&g, argc - i, argv + i);
			if (g.store)
				gov_store_close(g.store);
			return r;
		}
	}
	fprintf(stderr, "govctl: unknown command '%s' (see govctl --help)\n", argv[i]);
	return GOVCTL_USAGE;
}
