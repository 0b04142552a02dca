/* govctl/resources.c - the resources: `govctl register`, `resources`, `show`,
 * `unregister` and `matrix`.
 *
 * A resource is a JSON record at /resources/NAME (gov/store_keys.h). Its type
 * is one layer of the layer set in force (/layers, else GOV_DEFAULT_LAYERS),
 * and each of its references must be an edge the layer set allows: `register`
 * checks every edge before anything is written and names each one it refuses.
 *
 * Check, then write: every write is one store transaction that also compares
 * the mod_rev of each key the check read (the layer set, the resource itself,
 * the resources it references or that reference it); if another govctl
 * changed one in between, the transaction fails and the whole check runs
 * again. A check that depends on a key *not* existing yet (no resource
 * references X) cannot be compared that way, so a registration also rewrites
 * each resource it references with its unchanged record: that moves the
 * referenced record's mod_rev, and an `unregister` or `register --replace` of
 * it that checked before this commit then fails its comparison and re-checks.
 *
 * What this file is not for: the layer set is published with `govctl rule
 * publish` (rules.c); agents and counters are agents.c's. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "govctl.h"
#include "gov/abi.h"
#include "gov/store_keys.h"
#include "internal.h"
#include "sitetable.h"
#include "exportlist.h"

/* Check-and-write rounds before giving up on a store that keeps changing.
 * Registrations that reference the same resource all rewrite it, so N of
 * them at once take up to N rounds; a short random pause spreads them. */
#define ATTEMPTS 100

static void pause_before_retry(int attempt)
{
	static unsigned seed;
	if (!seed)
		seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	int cap_us = 200 * (attempt < 20 ? attempt + 1 : 20);
	usleep((useconds_t)(rand_r(&seed) % cap_us));
}

/* ------------------------------------------------------------------ help */

struct help {
	const char *usage; /* printed with a usage error too */
	const char *text;  /* the rest of --help */
};

static const struct help register_help = {
	"usage: govctl register NAME --type TYPE [--ref R1,R2,...] [--privilege user|kernel]\n"
	"                       [--exports F1,F2,...] [--exports-file FILE]\n"
	"                       [--from-binary PATH] [--replace]\n",
	"\n"
	"Registers resource NAME of layer TYPE (a layer of the layer set in force:\n"
	"application, service, driver, hardware by default). Each reference NAME -> R\n"
	"must name a registered resource and be an edge the layer set allows; the\n"
	"check runs before anything is written, and a refusal names every offending\n"
	"edge and the rule it breaks.\n"
	"\n"
	"options:\n"
	"  --type TYPE          the resource's layer (required)\n"
	"  --ref R1,R2          resources it calls (repeatable)\n"
	"  --privilege P        user (default) or kernel\n"
	"  --exports F1,F2      functions it offers; a binary that calls one of them\n"
	"                       references this resource (repeatable)\n"
	"  --exports-file FILE  the same with signatures: an export list (NAME TYPES\n"
	"                       [TAB prototype] per line, docs/abi.md); a bad line is\n"
	"                       refused as FILE:LINE:COL and nothing is written\n"
	"  --from-binary PATH   also reference every resource whose export a site of\n"
	"                       PATH's site table calls (read from the ELF file; the\n"
	"                       program is not run)\n"
	"  --replace            replace NAME if it is registered (checked again,\n"
	"                       including the edges of the resources that call it)\n"
	"\n"
	"NAME is 1-63 of A-Z a-z 0-9 . _ -, not starting with '.'.\n"
	"\n"
	"example:\n"
	"  govctl register nic --type hardware\n"
	"  govctl register net-driver --type driver --ref nic --privilege kernel\n"
	"  govctl register file-system --type service --exports fs_read,fs_write\n"
	"  govctl register vim --type application --from-binary ./vim   # built with GOV_CALL\n"
	"\n"
	"exit status: 0 registered, 1 bad usage, 2 refused (nothing written),\n"
	"4 the store could not be used.\n",
};

static const struct help resources_help = {
	"usage: govctl resources [--json]\n",
	"\n"
	"Lists the registered resources in name order: name, type, privilege and\n"
	"references. With --json, an array of their records.\n"
	"\n"
	"example:\n"
	"  govctl resources\n"
	"  govctl resources --json | python3 -m json.tool\n",
};

static const struct help show_help = {
	"usage: govctl show NAME [--json]\n",
	"\n"
	"Shows one resource: its record, the store revisions that created and last\n"
	"wrote it, and the resources that reference it.\n"
	"\n"
	"example:\n"
	"  govctl show file-system\n"
	"\n"
	"exit status: 0 shown, 1 bad usage, 3 no such resource.\n",
};

static const struct help unregister_help = {
	"usage: govctl unregister NAME [--force]\n",
	"\n"
	"Removes resource NAME. While other resources reference it, it is refused\n"
	"and they are named; with --force it is removed anyway and NAME is taken out\n"
	"of their references in the same transaction.\n"
	"\n"
	"example:\n"
	"  govctl unregister telnet\n"
	"  govctl unregister nic --force\n"
	"\n"
	"exit status: 0 removed, 1 bad usage, 2 refused (nothing written),\n"
	"3 no such resource, 4 the store could not be used.\n",
};

static const struct help matrix_help = {
	"usage: govctl matrix [--csv | --json]\n",
	"\n"
	"Prints the registered resources as sets by layer (A = {...}, S = {...},\n"
	"D = {...}, H = {...} for the default layer set: each layer's initial when\n"
	"those are distinct, else its name), then the invocation matrix M_R over\n"
	"their union: rows and columns in layer order, then name order; 1 where the\n"
	"row references the column, else 0.\n"
	"  --csv    the matrix only, as CSV with a header row of names\n"
	"  --json   {\"sets\":{LAYER:[names]},\"labels\":{LAYER:label},\"order\":[names],\n"
	"            \"matrix\":[[0,1,...],...]}\n"
	"\n"
	"example:\n"
	"  govctl matrix\n"
	"  govctl matrix --csv > matrix.csv\n",
};

static int print_help(const struct help *h)
{
	fputs(h->usage, stdout);
	fputs(h->text, stdout);
	return GOVCTL_OK;
}

__attribute__((format(printf, 3, 4)))
static int usage_error(const char *cmd, const struct help *h, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "govctl: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n%s(see govctl %s --help)\n", h->usage, cmd);
	return GOVCTL_USAGE;
}

/* "--name VALUE" or "--name=VALUE": 1 with *val set; 0 if argv[*i] is
 * another option; -1 if the value is missing. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n) != 0)
		return 0;
	if (argv[*i][n] == '=') {
		*val = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}

static int is_option(const char *arg)
{
	return arg[0] == '-' && arg[1] != '\0';
}

/* ------------------------------------------------------------- the store */

static int store_error(const char *err)
{
	return govctl_fail(GOVCTL_UNAVAILABLE, "%s", err);
}

/* The layer set in force. */
struct layers {
	json_t *doc;
	const char **name; /* into doc */
	size_t n;
	size_t (*edge)[2]; /* indexes into name */
	size_t nedges;
	uint64_t mod_rev;  /* of /layers; 0: absent, the default is in force */
};

static void layers_free(struct layers *L)
{
	json_decref(L->doc);
	free(L->name);
	free(L->edge);
	*L = (struct layers){ 0 };
}

static int layer_index(const struct layers *L, const char *name)
{
	for (size_t i = 0; name && i < L->n; i++)
		if (strcmp(L->name[i], name) == 0)
			return (int)i;
	return -1;
}

static int edge_allowed(const struct layers *L, int from, int to)
{
	for (size_t e = 0; e < L->nedges; e++)
		if ((int)L->edge[e][0] == from && (int)L->edge[e][1] == to)
			return 1;
	return 0;
}

static const char *layers_parse(struct layers *L, const char *text, size_t len)
{
	json_error_t jerr;
	json_t *layers, *edges, *v;
	size_t i;
	L->doc = json_loadb(text, len, 0, &jerr);
	if (!L->doc)
		return "not JSON";
	layers = json_object_get(L->doc, "layers");
	edges = json_object_get(L->doc, "edges");
	if (!json_is_array(layers) || json_array_size(layers) == 0)
		return "\"layers\" is not a non-empty array";
	if (edges && !json_is_array(edges))
		return "\"edges\" is not an array";
	L->name = calloc(json_array_size(layers), sizeof *L->name);
	L->edge = calloc(json_array_size(edges) + 1, sizeof *L->edge);
	if (!L->name || !L->edge)
		return "out of memory";
	json_array_foreach(layers, i, v) {
		if (!json_is_string(v) || layer_index(L, json_string_value(v)) >= 0)
			return "\"layers\" holds a non-string or a repeated layer";
		L->name[L->n++] = json_string_value(v);
	}
	json_array_foreach(edges, i, v) {
		int a = layer_index(L, json_string_value(json_array_get(v, 0)));
		int b = layer_index(L, json_string_value(json_array_get(v, 1)));
		if (!json_is_array(v) || json_array_size(v) != 2 || a < 0 || b < 0)
			return "an edge is not a pair of the set's layers";
		L->edge[L->nedges][0] = (size_t)a;
		L->edge[L->nedges++][1] = (size_t)b;
	}
	return NULL;
}

static int layers_load(struct govctl *g, struct layers *L)
{
	char err[512];
	struct gov_kv kv;
	*L = (struct layers){ 0 };
	int r = gov_store_get(govctl_store(g), GOV_KEY_LAYERS, &kv, err, sizeof err);
	if (r < 0)
		return store_error(err);
	const char *why;
	if (r == GOV_STORE_NOT_FOUND) {
		why = layers_parse(L, GOV_DEFAULT_LAYERS, strlen(GOV_DEFAULT_LAYERS));
	} else {
		L->mod_rev = kv.mod_rev;
		why = layers_parse(L, (const char *)kv.value, kv.len);
		gov_kv_clear(&kv);
	}
	if (why) {
		layers_free(L);
		return govctl_fail(GOVCTL_UNAVAILABLE, "the layer set at %s in %s is damaged: %s; "
				   "publish a valid one with `govctl rule publish`",
				   GOV_KEY_LAYERS, gov_store_url(govctl_store(g)), why);
	}
	return 0;
}

/* "application -> service -> driver -> hardware" when the edges are that
 * chain, else "a -> b, a -> c, ...". */
static void layers_describe(const struct layers *L, char *buf, size_t len)
{
	int chain = L->nedges + 1 == L->n;
	for (size_t i = 0; chain && i + 1 < L->n; i++)
		chain = edge_allowed(L, (int)i, (int)i + 1);
	size_t at = 0;
	buf[0] = '\0';
	if (chain || L->nedges == 0) {
		for (size_t i = 0; i < L->n && at < len; i++)
			at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? (chain ? " -> " : ", ") : "",
					       L->name[i]);
		if (!chain && at < len)
			snprintf(buf + at, len - at, "; no edges");
		return;
	}
	for (size_t e = 0; e < L->nedges && at < len; e++)
		at += (size_t)snprintf(buf + at, len - at, "%s%s -> %s", e ? ", " : "",
				       L->name[L->edge[e][0]], L->name[L->edge[e][1]]);
}

/* "a driver may call only hardware" */
static void layer_rule(const struct layers *L, int from, char *buf, size_t len)
{
	const char *name = L->name[from];
	int an = name[0] && strchr("aeiouAEIOU", name[0]);
	size_t at = (size_t)snprintf(buf, len, "a%s %s may call ", an ? "n" : "", name);
	size_t k = 0;
	for (size_t e = 0; e < L->nedges && at < len; e++)
		if ((int)L->edge[e][0] == from)
			at += (size_t)snprintf(buf + at, len - at, "%s%s", k++ ? " or " : "only ",
					       L->name[L->edge[e][1]]);
	if (k == 0 && at < len)
		snprintf(buf + at, len - at, "no other resource");
}

/* One registered resource. A record that does not parse is kept (so that
 * its name still counts as taken) with rec NULL. */
struct res {
	const char *name;   /* the key's last part */
	json_t *rec;
	const char *type, *privilege;
	json_t *refs, *exports; /* arrays of strings, owned by rec */
	struct gov_kv *kv;
};

struct catalog {
	struct gov_kv *items;
	size_t n;
	struct res *res;
	uint64_t rev;
};

static void catalog_free(struct catalog *C)
{
	for (size_t i = 0; C->res && i < C->n; i++)
		json_decref(C->res[i].rec);
	free(C->res);
	gov_kv_free(C->items, C->n);
	*C = (struct catalog){ 0 };
}

static int string_array(json_t *a)
{
	size_t i;
	json_t *v;
	if (!json_is_array(a))
		return 0;
	json_array_foreach(a, i, v)
		if (!json_is_string(v))
			return 0;
	return 1;
}

static const char *res_parse(struct res *r)
{
	json_error_t jerr;
	json_t *rec = json_loadb((const char *)r->kv->value, r->kv->len, 0, &jerr);
	if (!json_is_object(rec)) {
		json_decref(rec);
		return "not a JSON object";
	}
	const char *name = json_string_value(json_object_get(rec, "name"));
	const char *type = json_string_value(json_object_get(rec, "type"));
	const char *priv = json_string_value(json_object_get(rec, "privilege"));
	json_t *refs = json_object_get(rec, "refs"), *exports = json_object_get(rec, "exports");
	const char *why = !name || strcmp(name, r->name) ? "\"name\" is not the key's name"
			  : !type ? "\"type\" is missing"
			  : refs && !string_array(refs) ? "\"refs\" is not an array of names"
			  : exports && !string_array(exports) ? "\"exports\" is not an array of names"
			  : NULL;
	if (why) {
		json_decref(rec);
		return why;
	}
	/* written by an older govctl or by hand: fill in the defaults */
	if (!refs)
		json_object_set_new(rec, "refs", json_array());
	if (!priv)
		json_object_set_new(rec, "privilege", json_string("user"));
	if (!exports)
		json_object_set_new(rec, "exports", json_array());
	r->rec = rec;
	r->type = type;
	r->privilege = json_string_value(json_object_get(rec, "privilege"));
	r->refs = json_object_get(rec, "refs");
	r->exports = json_object_get(rec, "exports");
	return NULL;
}

static int catalog_load(struct govctl *g, struct catalog *C)
{
	char err[512];
	*C = (struct catalog){ 0 };
	if (gov_store_list(govctl_store(g), GOV_KEY_RESOURCES, &C->items, &C->n, &C->rev,
			   err, sizeof err) < 0)
		return store_error(err);
	C->res = calloc(C->n + 1, sizeof *C->res);
	if (!C->res)
		return govctl_fail(GOVCTL_UNAVAILABLE, "out of memory");
	for (size_t i = 0; i < C->n; i++) {
		struct res *r = &C->res[i];
		r->kv = &C->items[i];
		r->name = C->items[i].key + strlen(GOV_KEY_RESOURCES);
		const char *why = res_parse(r);
		if (why)
			fprintf(stderr, "govctl: warning: %s is not a valid resource record (%s); "
				"`govctl unregister %s` removes it\n", r->kv->key, why, r->name);
	}
	return 0;
}

static struct res *catalog_find(const struct catalog *C, const char *name)
{
	for (size_t i = 0; i < C->n; i++)
		if (strcmp(C->res[i].name, name) == 0)
			return &C->res[i];
	return NULL;
}

static int array_has(json_t *a, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return 1;
	return 0;
}

static void array_add(json_t *a, const char *s)
{
	if (!array_has(a, s))
		json_array_append_new(a, json_string(s));
}

/* "a, b, c" into buf; "-" when empty. */
static const char *array_join(json_t *a, char *buf, size_t len)
{
	size_t i, at = 0;
	json_t *v;
	buf[0] = '\0';
	json_array_foreach(a, i, v)
		if (at < len)
			at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? ", " : "",
					       json_string_value(v));
	return buf[0] ? buf : "-";
}

/* The resources whose refs name `name`, in name order. */
static json_t *referrers(const struct catalog *C, const char *name)
{
	json_t *out = json_array();
	for (size_t i = 0; i < C->n; i++)
		if (C->res[i].rec && strcmp(C->res[i].name, name) != 0 &&
		    array_has(C->res[i].refs, name))
			json_array_append_new(out, json_string(C->res[i].name));
	return out;
}

static char *dump(json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void print_json_flags(json_t *v, size_t flags)
{
	char *s = json_dumps(v, flags | JSON_ENCODE_ANY);
	if (s)
		puts(s);
	free(s);
}


/* ---------------------------------------------------------------- register */

/* Splits "a,b,c" into arr; 0, or the item that breaks the rule ok (or is
 * empty), copied into bad. */
static int split_list(const char *list, json_t *arr, int (*ok)(const char *), char *bad,
		      size_t badlen)
{
	const char *p = list;
	for (;;) {
		size_t n = strcspn(p, ",");
		char item[256];
		snprintf(item, sizeof item, "%.*s", (int)(n < sizeof item ? n : sizeof item - 1), p);
		if (n == 0 || n >= sizeof item || !ok(item)) {
			snprintf(bad, badlen, "%.*s", (int)(n < 200 ? n : 200), p);
			return -1;
		}
		array_add(arr, item);
		if (p[n] == '\0')
			return 0;
		p += n + 1;
	}
}

static int any_name(const char *s)
{
	return s[0] != '\0';
}

struct reg {
	const char *name, *type, *privilege, *binary;
	json_t *refs, *exports;    /* from the command line */
	json_t *signatures;        /* --exports-file: [{name, types, prototype?}] */
	int replace;
	struct gov_sitetable sites;
	/* one attempt's results */
	json_t *derived;           /* [{site..., "reference"}] from the binary */
};

/* The references the binary's sites give: each site whose callee some other
 * registered resource exports. */
static void derive_refs(const struct reg *a, const struct catalog *C, json_t *refs,
			json_t *derived)
{
	for (size_t i = 0; i < a->sites.n; i++) {
		const struct gov_sitetable_site *s = &a->sites.sites[i];
		if (!s->callee)
			continue;
		for (size_t k = 0; k < C->n; k++) {
			const struct res *r = &C->res[k];
			if (!r->rec || strcmp(r->name, a->name) == 0 || !array_has(r->exports, s->callee))
				continue;
			array_add(refs, r->name);
			char id[24];
			snprintf(id, sizeof id, "%016llx", (unsigned long long)s->id);
			json_t *d = json_pack("{s:s,s:s,s:s?,s:I,s:s?,s:s}", "site", id,
					      "callee", s->callee, "file", s->file,
					      "line", (json_int_t)s->line, "caller", s->caller,
					      "reference", r->name);
			if (d)
				json_array_append_new(derived, d);
		}
	}
}

static void print_derived(const struct reg *a, FILE *out)
{
	if (!a->binary || a->derived == NULL)
		return;
	if (!json_array_size(a->derived)) {
		fprintf(out, "%s: %s with %zu sites; none calls a function that a registered "
			"resource exports\n", a->binary, a->sites.what, a->sites.n);
		return;
	}
	fprintf(out, "%s: %s with %zu sites; references from its sites:\n", a->binary,
		a->sites.what, a->sites.n);
	size_t i;
	json_t *d;
	json_array_foreach(a->derived, i, d) {
		const char *file = json_string_value(json_object_get(d, "file"));
		const char *caller = json_string_value(json_object_get(d, "caller"));
		fprintf(out, "  site %s %s:%lld in %s() calls %s -> %s\n",
			json_string_value(json_object_get(d, "site")), file ? file : "?",
			(long long)json_integer_value(json_object_get(d, "line")),
			caller ? caller : "?", json_string_value(json_object_get(d, "callee")),
			json_string_value(json_object_get(d, "reference")));
	}
}

/* Adds "register NAME refused: ..." to the lines of a refusal. */
__attribute__((format(printf, 3, 4)))
static void refuse(json_t *lines, const char *name, const char *fmt, ...)
{
	char line[2048];
	int n = snprintf(line, sizeof line, "register %s refused: ", name);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	json_array_append_new(lines, json_string(line));
}

/* One check-and-write. Returns an exit code, or -1 when the transaction lost
 * a race and the caller should check again. */
static int register_attempt(struct govctl *g, struct reg *a)
{
	struct layers L;
	struct catalog C;
	int code = layers_load(g, &L);
	if (code)
		return code;
	if ((code = catalog_load(g, &C))) {
		layers_free(&L);
		return code;
	}
	char ldesc[512], buf[1024];
	layers_describe(&L, ldesc, sizeof ldesc);
	json_t *refs = json_deep_copy(a->refs);
	json_t *rec = NULL, *refusals = json_array(), *callers = NULL;
	struct gov_txn_cmp *cmps = NULL;
	struct gov_txn_op *ops = NULL;
	char *value = NULL;
	size_t ncmps = 0, nops = 0;
	json_decref(a->derived);
	a->derived = json_array();

	int type = layer_index(&L, a->type);
	struct res *self = catalog_find(&C, a->name);
	if (type < 0) {
		char names[512];
		size_t at = 0;
		names[0] = '\0';
		for (size_t i = 0; i < L.n && at < sizeof names; i++)
			at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", i ? ", " : "",
					       L.name[i]);
		code = govctl_fail(GOVCTL_REFUSED, "register %s refused: unknown type '%s'; the "
				   "layer set in force has %s", a->name, a->type, names);
		goto out;
	}
	if (self && !a->replace) {
		code = govctl_fail(GOVCTL_REFUSED, "register %s refused: %s is already registered "
				   "(type %s); use --replace to replace it, or `govctl unregister "
				   "%s` first", a->name, a->name, self->type ? self->type : "?",
				   a->name);
		goto out;
	}
	if (array_has(refs, a->name)) {
		code = govctl_fail(GOVCTL_REFUSED, "register %s refused: a resource cannot "
				   "reference itself (drop %s from --ref)", a->name, a->name);
		goto out;
	}
	if (a->binary)
		derive_refs(a, &C, refs, a->derived);

	/* every unknown reference and offending edge, one line each */
	size_t i;
	json_t *v;
	json_array_foreach(refs, i, v) {
		const char *ref = json_string_value(v);
		const struct res *r = catalog_find(&C, ref);
		if (!r) {
			refuse(refusals, a->name, "unknown reference '%s': no such resource "
			       "(register it first: govctl register %s --type TYPE)", ref, ref);
		} else if (!r->rec) {
			refuse(refusals, a->name, "reference '%s' has a damaged record (see the "
			       "warning above)", ref);
		} else if (layer_index(&L, r->type) < 0) {
			refuse(refusals, a->name, "%s (%s) -> %s (%s): type %s is not a layer of "
			       "the layer set (%s)", a->name, a->type, ref, r->type, r->type, ldesc);
		} else if (!edge_allowed(&L, type, layer_index(&L, r->type))) {
			layer_rule(&L, type, buf, sizeof buf);
			refuse(refusals, a->name, "%s (%s) -> %s (%s): %s (layer set: %s)", a->name,
			       a->type, ref, r->type, buf, ldesc);
		}
	}
	/* replacing: the resources that call it must still be allowed to */
	callers = referrers(&C, a->name);
	json_array_foreach(callers, i, v) {
		const struct res *q = catalog_find(&C, json_string_value(v));
		int qt = layer_index(&L, q->type);
		if (qt >= 0 && edge_allowed(&L, qt, type))
			continue;
		if (qt >= 0)
			layer_rule(&L, qt, buf, sizeof buf);
		else
			snprintf(buf, sizeof buf, "type %s is not a layer of the layer set", q->type);
		refuse(refusals, a->name, "%s (%s) -> %s (%s): %s (layer set: %s); %s references "
		       "%s", q->name, q->type, a->name, a->type, buf, ldesc, q->name, a->name);
	}
	if (json_array_size(refusals)) {
		print_derived(a, stderr);
		json_array_foreach(refusals, i, v)
			govctl_fail(GOVCTL_REFUSED, "%s", json_string_value(v));
		code = GOVCTL_REFUSED;
		goto out;
	}

	rec = json_pack("{s:s,s:s,s:O,s:s,s:O}", "name", a->name, "type", a->type,
			"refs", refs, "privilege", a->privilege, "exports", a->exports);
	if (rec && json_array_size(a->signatures))
		json_object_set(rec, "signatures", a->signatures);
	size_t nrefs = json_array_size(refs), ncallers = json_array_size(callers);
	cmps = calloc(2 + nrefs + ncallers, sizeof *cmps);
	ops = calloc(2 + nrefs, sizeof *ops);
	if (!rec || !cmps || !ops || !(value = dump(rec))) {
		code = govctl_fail(GOVCTL_UNAVAILABLE, "out of memory");
		goto out;
	}
	char key[sizeof GOV_KEY_RESOURCES + GOV_NAME_MAX];
	snprintf(key, sizeof key, GOV_KEY_RESOURCES "%s", a->name);
	cmps[ncmps++] = (struct gov_txn_cmp){ GOV_KEY_LAYERS, L.mod_rev };
	cmps[ncmps++] = (struct gov_txn_cmp){ key, self ? self->kv->mod_rev : 0 };
	ops[nops++] = (struct gov_txn_op){ GOV_TXN_PUT, key, value, strlen(value) };
	/* a layer-set publish compares this key: see store_keys.h */
	ops[nops++] = (struct gov_txn_op){ GOV_TXN_PUT, GOV_KEY_RESOURCE_EPOCH, a->name,
					   strlen(a->name) };
	json_array_foreach(refs, i, v) {
		const struct res *r = catalog_find(&C, json_string_value(v));
		cmps[ncmps++] = (struct gov_txn_cmp){ r->kv->key, r->kv->mod_rev };
		ops[nops++] = (struct gov_txn_op){ GOV_TXN_PUT, r->kv->key, r->kv->value, r->kv->len };
	}
	json_array_foreach(callers, i, v) {
		const struct res *q = catalog_find(&C, json_string_value(v));
		cmps[ncmps++] = (struct gov_txn_cmp){ q->kv->key, q->kv->mod_rev };
	}
	char err[512];
	uint64_t rev = 0;
	int r = gov_store_txn(govctl_store(g), cmps, ncmps, ops, nops, &rev, err, sizeof err);
	if (r < 0) {
		code = store_error(err);
	} else if (r == GOV_STORE_CONFLICT) {
		code = -1;
	} else if (g->json) {
		json_t *o = json_pack("{s:O,s:I,s:O}", "resource", rec, "revision", (json_int_t)rev,
				      "derived", a->derived);
		govctl_print_json(o);
		json_decref(o);
	} else {
		print_derived(a, stdout);
		printf("%s %s (%s, privilege %s)%s%s at revision %llu\n",
		       self ? "replaced" : "registered", a->name, a->type, a->privilege,
		       json_array_size(refs) ? " -> " : ", no references,",
		       json_array_size(refs) ? array_join(refs, buf, sizeof buf) : "",
		       (unsigned long long)rev);
	}
out:
	free(value);
	free(cmps);
	free(ops);
	json_decref(refusals);
	json_decref(callers);
	json_decref(rec);
	json_decref(refs);
	catalog_free(&C);
	layers_free(&L);
	return code;
}

/* --exports-file: its names join the exports, its signatures are kept
 * with them (a name given twice keeps the file's signature once). */
static int read_exports_file(struct reg *a, const char *path)
{
	char err[1024];
	json_t *list = gov_exportlist_read(path, err, sizeof err);
	if (!list)
		return govctl_fail(GOVCTL_REFUSED, "register: --exports-file: %s; nothing written",
				   err);
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		array_add(a->exports, name);
		size_t k;
		json_t *w;
		int seen = 0;
		json_array_foreach(a->signatures, k, w)
			seen |= strcmp(json_string_value(json_object_get(w, "name")), name) == 0;
		if (!seen)
			json_array_append(a->signatures, v);
	}
	json_decref(list);
	return GOVCTL_OK;
}

int cmd_register(struct govctl *g, int argc, char **argv)
{
	const struct help *h = &register_help;
	if (govctl_wants_help(argc, argv))
		return print_help(h);
	struct reg a = { .privilege = "user", .refs = json_array(), .exports = json_array(),
			 .signatures = json_array() };
	int code = GOVCTL_OK;
	char bad[256];
	for (int i = 1; i < argc && !code; i++) {
		const char *val = NULL;
		int m;
		if ((m = opt_value(argc, argv, &i, "--type", &val))) {
			a.type = val;
		} else if ((m = opt_value(argc, argv, &i, "--ref", &val)) ||
			   (m = opt_value(argc, argv, &i, "--refs", &val))) {
			if (m > 0 && split_list(val, a.refs, any_name, bad, sizeof bad) < 0)
				code = govctl_fail(GOVCTL_REFUSED, "register: --ref '%s': an empty "
						   "name in the list", val);
		} else if ((m = opt_value(argc, argv, &i, "--privilege", &val))) {
			a.privilege = val;
		} else if ((m = opt_value(argc, argv, &i, "--exports", &val))) {
			if (m > 0 && split_list(val, a.exports, gov_export_name_ok, bad, sizeof bad) < 0)
				code = govctl_fail(GOVCTL_REFUSED, "register: --exports '%s': '%s' is "
						   "not a function name (letters, digits, _ . $ @; not "
						   "starting with a digit; under %d characters)", val,
						   bad, GOV_NAME_MAX);
		} else if ((m = opt_value(argc, argv, &i, "--exports-file", &val))) {
			if (m > 0)
				code = read_exports_file(&a, val);
		} else if ((m = opt_value(argc, argv, &i, "--from-binary", &val))) {
			a.binary = val;
		} else if (strcmp(argv[i], "--replace") == 0) {
			a.replace = m = 1;
		} else if (strcmp(argv[i], "--json") == 0) {
			g->json = m = 1;
		} else if (is_option(argv[i])) {
			code = usage_error("register", h, "unknown option '%s'", argv[i]);
		} else if (a.name) {
			code = usage_error("register", h, "unexpected argument '%s' (NAME is '%s')",
					   argv[i], a.name);
		} else {
			a.name = argv[i];
			m = 1;
		}
		if (m < 0)
			code = usage_error("register", h, "%s needs a value", argv[i]);
	}
	if (!code && !a.name)
		code = usage_error("register", h, "NAME is missing");
	if (!code && !a.type)
		code = usage_error("register", h, "--type is missing");
	if (!code && !gov_resource_name_ok(a.name))
		code = govctl_fail(GOVCTL_REFUSED, "register: '%s' is not a valid resource name: "
				   "use 1-63 of A-Z a-z 0-9 . _ -, not starting with '.'", a.name);
	if (!code && strcmp(a.privilege, "user") != 0 && strcmp(a.privilege, "kernel") != 0)
		code = govctl_fail(GOVCTL_REFUSED, "register %s: --privilege '%s': use user or "
				   "kernel", a.name, a.privilege);
	if (!code && a.binary) {
		char err[1024];
		if (gov_sitetable_read(a.binary, &a.sites, err, sizeof err) < 0)
			code = govctl_fail(GOVCTL_REFUSED, "register %s refused: %s", a.name, err);
	}
	for (int attempt = 0; !code; attempt++) {
		if (attempt == ATTEMPTS) {
			code = govctl_fail(GOVCTL_UNAVAILABLE, "register %s: the store changed under "
					   "the check %d times in a row; nothing written, try again",
					   a.name, ATTEMPTS);
			break;
		}
		code = register_attempt(g, &a);
		if (code >= 0)
			break;
		code = 0;
		pause_before_retry(attempt);
	}
	gov_sitetable_free(&a.sites);
	json_decref(a.derived);
	json_decref(a.refs);
	json_decref(a.exports);
	json_decref(a.signatures);
	return code;
}

/* -------------------------------------------------------------- resources */

/* Parses the arguments of a command that takes at most one NAME and the
 * given flags (each stored into *flagvals[i]). */
static int simple_args(struct govctl *g, int argc, char **argv, const struct help *h,
		       int want_name, const char **name, const char *const *flags, int **flagvals)
{
	for (int i = 1; i < argc; i++) {
		int known = 0;
		if (strcmp(argv[i], "--json") == 0) {
			g->json = known = 1;
		}
		for (size_t f = 0; !known && flags && flags[f]; f++)
			if (strcmp(argv[i], flags[f]) == 0)
				*flagvals[f] = known = 1;
		if (known)
			continue;
		if (is_option(argv[i]))
			return usage_error(argv[0], h, "unknown option '%s'", argv[i]);
		if (!want_name || *name)
			return usage_error(argv[0], h, "unexpected argument '%s'", argv[i]);
		*name = argv[i];
	}
	if (want_name && !*name)
		return usage_error(argv[0], h, "NAME is missing");
	return 0;
}

int cmd_resources(struct govctl *g, int argc, char **argv)
{
	if (govctl_wants_help(argc, argv))
		return print_help(&resources_help);
	int code = simple_args(g, argc, argv, &resources_help, 0, NULL, NULL, NULL);
	struct catalog C;
	if (code || (code = catalog_load(g, &C)))
		return code;
	if (g->json) {
		json_t *all = json_array();
		for (size_t i = 0; i < C.n; i++)
			if (C.res[i].rec)
				json_array_append(all, C.res[i].rec);
		govctl_print_json(all);
		json_decref(all);
	} else {
		int w[3] = { 4, 4, 9 };
		for (size_t i = 0; i < C.n; i++) {
			const struct res *r = &C.res[i];
			int l[3] = { (int)strlen(r->name), r->type ? (int)strlen(r->type) : 1,
				     r->privilege ? (int)strlen(r->privilege) : 1 };
			for (int k = 0; k < 3; k++)
				w[k] = l[k] > w[k] ? l[k] : w[k];
		}
		printf("%-*s  %-*s  %-*s  %s\n", w[0], "NAME", w[1], "TYPE", w[2], "PRIVILEGE",
		       "REFS");
		for (size_t i = 0; i < C.n; i++) {
			const struct res *r = &C.res[i];
			char refs[2048];
			printf("%-*s  %-*s  %-*s  %s\n", w[0], r->name, w[1], r->rec ? r->type : "?",
			       w[2], r->rec ? r->privilege : "?",
			       r->rec ? array_join(r->refs, refs, sizeof refs) : "(damaged record)");
		}
	}
	catalog_free(&C);
	return GOVCTL_OK;
}

int cmd_show(struct govctl *g, int argc, char **argv)
{
	if (govctl_wants_help(argc, argv))
		return print_help(&show_help);
	const char *name = NULL;
	int code = simple_args(g, argc, argv, &show_help, 1, &name, NULL, NULL);
	struct catalog C;
	if (code || (code = catalog_load(g, &C)))
		return code;
	const struct res *r = catalog_find(&C, name);
	if (!r) {
		code = govctl_fail(GOVCTL_NOT_FOUND, "show: no resource '%s' (see govctl resources)",
				   name);
	} else if (!r->rec) {
		code = govctl_fail(GOVCTL_UNAVAILABLE, "show: %s holds a damaged record: %.*s",
				   r->kv->key, (int)(r->kv->len > 400 ? 400 : r->kv->len),
				   (const char *)r->kv->value);
	} else if (g->json) {
		json_t *o = json_deep_copy(r->rec);
		json_object_set_new(o, "referenced_by", referrers(&C, name));
		json_object_set_new(o, "create_rev", json_integer((json_int_t)r->kv->create_rev));
		json_object_set_new(o, "mod_rev", json_integer((json_int_t)r->kv->mod_rev));
		govctl_print_json(o);
		json_decref(o);
	} else {
		char b[2048];
		json_t *by = referrers(&C, name);
		printf("name:          %s\n", r->name);
		printf("type:          %s\n", r->type);
		printf("privilege:     %s\n", r->privilege);
		printf("references:    %s\n", array_join(r->refs, b, sizeof b));
		printf("exports:       %s\n", array_join(r->exports, b, sizeof b));
		printf("referenced by: %s\n", array_join(by, b, sizeof b));
		printf("revision:      created %llu, last written %llu\n",
		       (unsigned long long)r->kv->create_rev, (unsigned long long)r->kv->mod_rev);
		json_decref(by);
	}
	catalog_free(&C);
	return code;
}

/* ---------------------------------------------------------------- exports */

static const struct help exports_help = {
	"usage: govctl exports NAME [--json]\n",
	"\n"
	"Prints the functions resource NAME exports as an export list (docs/abi.md\n"
	"\"Export lists\"): `NAME<TAB>TYPES[<TAB>prototype]` for each one registered\n"
	"with a signature (--exports-file), and `# untyped NAME` for each one\n"
	"registered by name only (--exports, a rule document). The output is a\n"
	"valid --exports-file. With --json: {\"resource\", \"exports\": [{\"name\",\n"
	"\"types\" (null when unknown), \"prototype\"?}]}.\n"
	"\n"
	"example:\n"
	"  govctl exports net-driver\n"
	"  gcc -fplugin=govintercept.so -fplugin-arg-govintercept-exports-of=net-driver ...\n"
	"\n"
	"exit status: 0 printed, 1 bad usage, 3 no such resource, 4 the store could\n"
	"not be used.\n",
};

static json_t *signature_of(const struct res *r, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(r->rec, "signatures"), i, v)
		if (json_is_object(v) &&
		    strcmp(json_string_value(json_object_get(v, "name")) ?: "", name) == 0 &&
		    json_is_string(json_object_get(v, "types")))
			return v;
	return NULL;
}

int cmd_exports(struct govctl *g, int argc, char **argv)
{
	if (govctl_wants_help(argc, argv))
		return print_help(&exports_help);
	const char *name = NULL;
	int code = simple_args(g, argc, argv, &exports_help, 1, &name, NULL, NULL);
	struct catalog C;
	if (code || (code = catalog_load(g, &C)))
		return code;
	const struct res *r = catalog_find(&C, name);
	if (!r || !r->rec) {
		code = govctl_fail(r ? GOVCTL_UNAVAILABLE : GOVCTL_NOT_FOUND,
				   r ? "exports: %s holds a damaged record" :
				   "exports: no resource '%s' (see govctl resources)",
				   r ? r->kv->key : name);
		catalog_free(&C);
		return code;
	}
	size_t i;
	json_t *v;
	if (g->json) {
		json_t *list = json_array();
		json_array_foreach(r->exports, i, v) {
			json_t *sig = signature_of(r, json_string_value(v));
			json_array_append_new(list, sig ? json_deep_copy(sig) :
					      json_pack("{s:O,s:n}", "name", v, "types"));
		}
		json_t *o = json_pack("{s:s,s:o}", "resource", name, "exports", list);
		govctl_print_json(o);
		json_decref(o);
	} else {
		printf("# exported by %s\n", name);
		json_array_foreach(r->exports, i, v) {
			json_t *sig = signature_of(r, json_string_value(v));
			const char *proto = sig ? json_string_value(json_object_get(sig, "prototype")) : NULL;
			if (!sig)
				printf("# untyped %s\n", json_string_value(v));
			else
				printf("%s\t%s%s%s\n", json_string_value(v),
				       json_string_value(json_object_get(sig, "types")),
				       proto ? "\t" : "", proto ? proto : "");
		}
	}
	catalog_free(&C);
	return GOVCTL_OK;
}

/* ------------------------------------------------------------- unregister */

static int unregister_attempt(struct govctl *g, const char *name, int force)
{
	struct catalog C;
	int code = catalog_load(g, &C);
	if (code)
		return code;
	const struct res *self = catalog_find(&C, name);
	if (!self) {
		catalog_free(&C);
		return govctl_fail(GOVCTL_NOT_FOUND, "unregister: no resource '%s' (see govctl "
				   "resources)", name);
	}
	char b[2048];
	json_t *by = referrers(&C, name);
	size_t n = json_array_size(by);
	if (n && !force) {
		char by_s[2048];
		array_join(by, by_s, sizeof by_s);
		code = govctl_fail(GOVCTL_REFUSED, "unregister %s refused: referenced by %s; "
				   "unregister or re-register %s first, or use --force to remove "
				   "%s from the references of %s", name, by_s, n > 1 ? "them" : "it",
				   name, by_s);
		json_decref(by);
		catalog_free(&C);
		return code;
	}
	struct gov_txn_cmp *cmps = calloc(n + 1, sizeof *cmps);
	struct gov_txn_op *ops = calloc(n + 1, sizeof *ops);
	char **values = calloc(n + 1, sizeof *values);
	size_t i;
	json_t *v;
	if (!cmps || !ops || !values) {
		fprintf(stderr, "govctl: out of memory\n");
		exit(GOVCTL_UNAVAILABLE);
	}
	cmps[0] = (struct gov_txn_cmp){ self->kv->key, self->kv->mod_rev };
	ops[0] = (struct gov_txn_op){ GOV_TXN_DELETE, self->kv->key, NULL, 0 };
	json_array_foreach(by, i, v) {
		const struct res *q = catalog_find(&C, json_string_value(v));
		json_t *rec = json_deep_copy(q->rec), *refs = json_object_get(rec, "refs");
		for (size_t k = json_array_size(refs); k-- > 0;)
			if (strcmp(json_string_value(json_array_get(refs, k)), name) == 0)
				json_array_remove(refs, k);
		values[i] = dump(rec);
		json_decref(rec);
		if (!values[i])
			code = govctl_fail(GOVCTL_UNAVAILABLE, "out of memory");
		cmps[i + 1] = (struct gov_txn_cmp){ q->kv->key, q->kv->mod_rev };
		ops[i + 1] = (struct gov_txn_op){ GOV_TXN_PUT, q->kv->key, values[i],
						  values[i] ? strlen(values[i]) : 0 };
	}
	char err[512];
	uint64_t rev = 0;
	int r = code ? 0 : gov_store_txn(govctl_store(g), cmps, n + 1, ops, n + 1, &rev, err,
					 sizeof err);
	if (code) {
	} else if (r < 0) {
		code = store_error(err);
	} else if (r == GOV_STORE_CONFLICT) {
		code = -1;
	} else if (g->json) {
		json_t *o = json_pack("{s:s,s:I,s:O}", "unregistered", name, "revision",
				      (json_int_t)rev, "removed_from", by);
		govctl_print_json(o);
		json_decref(o);
	} else {
		printf("unregistered %s at revision %llu\n", name, (unsigned long long)rev);
		if (n)
			printf("removed %s from the references of %s\n", name,
			       array_join(by, b, sizeof b));
	}
	for (i = 0; values && i < n; i++)
		free(values[i]);
	free(values);
	free(cmps);
	free(ops);
	json_decref(by);
	catalog_free(&C);
	return code;
}

int cmd_unregister(struct govctl *g, int argc, char **argv)
{
	if (govctl_wants_help(argc, argv))
		return print_help(&unregister_help);
	const char *name = NULL;
	int force = 0;
	const char *flags[] = { "--force", NULL };
	int *vals[] = { &force };
	int code = simple_args(g, argc, argv, &unregister_help, 1, &name, flags, vals);
	for (int attempt = 0; !code; attempt++) {
		if (attempt == ATTEMPTS)
			return govctl_fail(GOVCTL_UNAVAILABLE, "unregister %s: the store changed "
					   "under the check %d times in a row; nothing written, "
					   "try again", name, ATTEMPTS);
		code = unregister_attempt(g, name, force);
		if (code >= 0)
			break;
		code = 0;
		pause_before_retry(attempt);
	}
	return code;
}

/* ----------------------------------------------------------------- matrix */

/* A group of the matrix: one layer, or a type the layer set does not have
 * (a layer set published after the resource was registered). */
struct group {
	const char *type;
	char label[GOV_NAME_MAX];
};

int cmd_matrix(struct govctl *g, int argc, char **argv)
{
	if (govctl_wants_help(argc, argv))
		return print_help(&matrix_help);
	int csv = 0;
	const char *flags[] = { "--csv", NULL };
	int *vals[] = { &csv };
	int code = simple_args(g, argc, argv, &matrix_help, 0, NULL, flags, vals);
	if (code)
		return code;
	if (csv && g->json)
		return usage_error("matrix", &matrix_help, "--csv and --json exclude each other");
	struct layers L;
	struct catalog C;
	if ((code = layers_load(g, &L)))
		return code;
	if ((code = catalog_load(g, &C))) {
		layers_free(&L);
		return code;
	}
	struct group *grp = calloc(L.n + C.n + 1, sizeof *grp);
	const struct res **order = calloc(C.n + 1, sizeof *order);
	size_t ngrp = 0, n = 0;
	if (!grp || !order) {
		code = govctl_fail(GOVCTL_UNAVAILABLE, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < L.n; i++)
		grp[ngrp++].type = L.name[i];
	for (size_t i = 0; i < C.n; i++) {
		int known = 0;
		for (size_t k = 0; C.res[i].rec && k < ngrp; k++)
			known |= strcmp(grp[k].type, C.res[i].type) == 0;
		if (C.res[i].rec && !known) {
			grp[ngrp++].type = C.res[i].type;
			fprintf(stderr, "govctl: warning: type %s of %s is not a layer of the layer "
				"set in force\n", C.res[i].type, C.res[i].name);
		}
	}
	/* the catalog is in name order already */
	for (size_t k = 0; k < ngrp; k++)
		for (size_t i = 0; i < C.n; i++)
			if (C.res[i].rec && strcmp(C.res[i].type, grp[k].type) == 0)
				order[n++] = &C.res[i];
	int letters = 1;
	for (size_t k = 0; k < ngrp; k++)
		for (size_t j = 0; j < k; j++)
			letters &= grp[k].type[0] && (grp[k].type[0] | 0x20) != (grp[j].type[0] | 0x20);
	for (size_t k = 0; k < ngrp; k++) {
		if (letters)
			snprintf(grp[k].label, sizeof grp[k].label, "%c",
				 grp[k].type[0] >= 'a' && grp[k].type[0] <= 'z' ? grp[k].type[0] - 32
										: grp[k].type[0]);
		else
			snprintf(grp[k].label, sizeof grp[k].label, "%s", grp[k].type);
	}

	if (g->json) {
		json_t *o = json_object(), *sets = json_object(), *labels = json_object();
		json_t *names = json_array(), *m = json_array();
		for (size_t k = 0; k < ngrp; k++) {
			json_t *set = json_array();
			for (size_t i = 0; i < n; i++)
				if (strcmp(order[i]->type, grp[k].type) == 0)
					json_array_append_new(set, json_string(order[i]->name));
			json_object_set_new(sets, grp[k].type, set);
			json_object_set_new(labels, grp[k].type, json_string(grp[k].label));
		}
		for (size_t i = 0; i < n; i++) {
			json_t *row = json_array();
			json_array_append_new(names, json_string(order[i]->name));
			for (size_t j = 0; j < n; j++)
				json_array_append_new(row, json_integer(array_has(order[i]->refs,
										  order[j]->name)));
			json_array_append_new(m, row);
		}
		json_object_set_new(o, "sets", sets);
		json_object_set_new(o, "labels", labels);
		json_object_set_new(o, "order", names);
		json_object_set_new(o, "matrix", m);
		print_json_flags(o, JSON_COMPACT); /* a matrix reads better on one line */
		json_decref(o);
		goto out;
	}
	if (csv) {
		for (size_t j = 0; j < n; j++)
			printf(",%s", order[j]->name);
		putchar('\n');
		for (size_t i = 0; i < n; i++) {
			fputs(order[i]->name, stdout);
			for (size_t j = 0; j < n; j++)
				printf(",%d", array_has(order[i]->refs, order[j]->name));
			putchar('\n');
		}
		goto out;
	}
	for (size_t k = 0; k < ngrp; k++) {
		printf("%s = {", grp[k].label);
		int first = 1;
		for (size_t i = 0; i < n; i++)
			if (strcmp(order[i]->type, grp[k].type) == 0) {
				printf("%s%s", first ? "" : ", ", order[i]->name);
				first = 0;
			}
		printf("}\n");
	}
	printf("\nM_R (1: the row references the column)\n");
	int w0 = 3;
	for (size_t i = 0; i < n; i++)
		w0 = (int)strlen(order[i]->name) > w0 ? (int)strlen(order[i]->name) : w0;
	printf("%-*s", w0, "");
	for (size_t j = 0; j < n; j++)
		printf("  %s", order[j]->name);
	putchar('\n');
	for (size_t i = 0; i < n; i++) {
		printf("%-*s", w0, order[i]->name);
		for (size_t j = 0; j < n; j++)
			printf("  %-*d", j + 1 < n ? (int)strlen(order[j]->name) : 1,
			       array_has(order[i]->refs, order[j]->name));
		putchar('\n');
	}
out:
	free(grp);
	free(order);
	catalog_free(&C);
	layers_free(&L);
	return code;
}

/* ---- resources declared in a rule document (govctl rule publish) ------ */

/* "FILE:LINE:COL: register NAME refused: ..." */
__attribute__((format(printf, 4, 5)))
static void refuse_at(json_t *lines, const char *origin, const struct gov_ruledoc_resource *r,
		      const char *fmt, ...)
{
	char line[2048];
	int n = snprintf(line, sizeof line, "%s:%u:%u: register %s refused: ", origin, r->pos.line,
			 r->pos.column, r->name);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	json_array_append_new(lines, json_string(line));
}

static json_t *doc_record(const struct gov_ruledoc_resource *r)
{
	json_t *refs = json_array(), *exports = json_array();
	for (unsigned i = 0; i < r->nrefs; i++)
		array_add(refs, r->refs[i]);
	for (unsigned i = 0; i < r->nexports; i++)
		array_add(exports, r->exports[i]);
	return json_pack("{s:s,s:s,s:o,s:s,s:o}", "name", r->name, "type", r->type, "refs", refs,
			 "privilege", r->kernel ? "kernel" : "user", "exports", exports);
}

/* The same record, whatever the order of refs and exports. */
static int same_record(json_t *a, json_t *b)
{
	static const char *const fields[] = { "name", "type", "privilege" };
	for (size_t i = 0; i < 3; i++)
		if (!json_equal(json_object_get(a, fields[i]), json_object_get(b, fields[i])))
			return 0;
	static const char *const lists[] = { "refs", "exports" };
	for (size_t i = 0; i < 2; i++) {
		json_t *x = json_object_get(a, lists[i]), *y = json_object_get(b, lists[i]), *v;
		size_t k;
		if (json_array_size(x) != json_array_size(y))
			return 0;
		json_array_foreach(x, k, v)
			if (!array_has(y, json_string_value(v)))
				return 0;
	}
	return 1;
}

int govctl_plan_resources(struct govctl *g, const struct gov_ruledoc *d, const char *origin,
			  const char *layers_json, struct govctl_txn *t)
{
	if (!d->nresources)
		return 0;
	struct layers L, stored;
	struct catalog C;
	int code = layers_load(g, &stored);
	if (code)
		return code;
	if (layers_json) {
		const char *why = layers_parse(&L, layers_json, strlen(layers_json));
		if (why) {
			layers_free(&L);
			layers_free(&stored);
			return govctl_fail(GOVCTL_REFUSED, "%s: layer set: %s", origin, why);
		}
	} else {
		L = stored;
		stored = (struct layers){ 0 };
	}
	if ((code = catalog_load(g, &C))) {
		layers_free(&L);
		layers_free(&stored);
		return code;
	}
	char ldesc[512], buf[1024];
	layers_describe(&L, ldesc, sizeof ldesc);
	json_t *refusals = json_array(), *types = json_object(); /* name -> type, earlier in d */
	for (unsigned i = 0; i < d->nresources; i++) {
		const struct gov_ruledoc_resource *r = &d->resources[i];
		int type = layer_index(&L, r->type);
		json_object_set_new(types, r->name, json_string(r->type));
		if (type < 0) {
			refuse_at(refusals, origin, r, "unknown type '%s' (layer set: %s)", r->type, ldesc);
			continue;
		}
		json_t *rec = doc_record(r);
		const struct res *self = catalog_find(&C, r->name);
		if (self && self->rec && !same_record(self->rec, rec))
			refuse_at(refusals, origin, r, "%s is already registered differently (type %s); "
			       "unregister it or use govctl register %s --replace", r->name,
			       self->type ? self->type : "?", r->name);
		for (unsigned k = 0; k < r->nrefs; k++) {
			const char *ref = r->refs[k];
			const struct res *q = catalog_find(&C, ref);
			const char *rtype = json_string_value(json_object_get(types, ref));
			if (!rtype && q)
				rtype = q->type;
			if (strcmp(ref, r->name) == 0) {
				refuse_at(refusals, origin, r, "a resource cannot reference itself");
			} else if (!rtype) {
				refuse_at(refusals, origin, r, "unknown reference '%s': not registered and "
				       "not declared before it in this file", ref);
			} else if (layer_index(&L, rtype) < 0 ||
				   !edge_allowed(&L, type, layer_index(&L, rtype))) {
				layer_rule(&L, type, buf, sizeof buf);
				refuse_at(refusals, origin, r, "%s (%s) -> %s (%s): %s (layer set: %s)", r->name,
				       r->type, ref, rtype, buf, ldesc);
			} else if (q && q->kv) {
				govctl_txn_cmp(t, q->kv->key, q->kv->mod_rev); /* it must not vanish */
			}
		}
		if (!self) {
			char key[sizeof GOV_KEY_RESOURCES + GOV_NAME_MAX], *value = dump(rec);
			snprintf(key, sizeof key, GOV_KEY_RESOURCES "%s", r->name);
			if (!value || govctl_txn_cmp(t, key, 0) < 0 ||
			    govctl_txn_op(t, GOV_TXN_PUT, key, value, strlen(value)) < 0 ||
			    govctl_txn_op(t, GOV_TXN_PUT, GOV_KEY_RESOURCE_EPOCH, r->name,
					  strlen(r->name)) < 0)
				code = govctl_fail(GOVCTL_UNAVAILABLE, "out of memory");
			free(value);
		}
		json_decref(rec);
	}
	size_t i;
	json_t *v;
	json_array_foreach(refusals, i, v)
		govctl_fail(GOVCTL_REFUSED, "%s", json_string_value(v));
	if (json_array_size(refusals))
		code = GOVCTL_REFUSED;
	else if (!code)
		govctl_txn_cmp(t, GOV_KEY_LAYERS, layers_json ? stored.mod_rev : L.mod_rev);
	json_decref(refusals);
	json_decref(types);
	catalog_free(&C);
	layers_free(&L);
	layers_free(&stored);
	return code;
}
