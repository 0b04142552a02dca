/* govctl/rules.c - `govctl rule ...`: publishing rule documents as
 * immutable versions, reading them back, and watching the store.
 *
 * A rule NAME lives at /rules/NAME/v/<N> (the text as published, never
 * changed) and /rules/NAME/current (N). Publishing checks the whole document
 * first (rules/ruledoc.c, then against the registered resources and, for a
 * new layer set, against every registered resource's edges), then writes
 * version N+1 and moves current in one transaction that also compares what
 * the checks relied on; a concurrent publish makes it retry, never lose. */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "govctl.h"
#include "gov/store_keys.h"
#include "../rules/ruledoc.h"
#include "../rules/dynamic/dynrt.h"
#include "../rules/dynamic/build.h"
#include "internal.h"

#define MAX_TRIES 1000

static int store_fail(const char *err)
{
	return govctl_fail(GOVCTL_UNAVAILABLE, "%s", err);
}

static int read_file(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t cap = 8192, n = 0;
	char *buf = malloc(cap);
	for (size_t r; buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
		n += r;
		if (cap - n < 1024) {
			char *t = realloc(buf, cap *= 2);
			if (!t) {
				free(buf);
				buf = NULL;
			}
			buf = t;
		}
	}
	int bad = ferror(f) || !buf;
	fclose(f);
	if (bad) {
		free(buf);
		return -1;
	}
	buf[n] = 0;
	*text = buf;
	*len = n;
	return 0;
}

/* The current version of rule name (0 if none) and that key's mod_rev. */
static int current_version(struct gov_store *s, const char *name, uint64_t *version,
			   uint64_t *mod_rev, char *err, size_t errlen)
{
	char key[256];
	struct gov_kv kv;
	snprintf(key, sizeof key, GOV_RULE_CURRENT_FMT, name);
	int r = gov_store_get(s, key, &kv, err, errlen);
	*version = 0;
	*mod_rev = 0;
	if (r == GOV_STORE_NOT_FOUND)
		return 0;
	if (r < 0)
		return -1;
	*version = strtoull((char *)kv.value, NULL, 10);
	*mod_rev = kv.mod_rev;
	gov_kv_clear(&kv);
	return 0;
}

static int get_version_text(struct gov_store *s, const char *name, uint64_t v,
			    struct gov_kv *kv, char *err, size_t errlen)
{
	char key[256];
	snprintf(key, sizeof key, GOV_RULE_VERSION_FMT, name, (unsigned long long)v);
	return gov_store_get(s, key, kv, err, errlen);
}

/* Resources named by the document must be registered: checked here, with
 * the document's positions; their mod_revs go into the transaction. */
struct guard {
	struct gov_txn_cmp cmp[256];
	char keys[256][GOV_NAME_MAX + 16];
	size_t n;
};

static int guard_resource(struct gov_store *s, struct guard *g, const struct gov_ruledoc *d,
			  const char *origin, const char *name, struct gov_ruledoc_pos pos,
			  char *why, size_t whylen)
{
	for (unsigned i = 0; i < d->nresources; i++)
		if (strcmp(d->resources[i].name, name) == 0)
			return 0; /* declared here: govctl_plan_resources checks it */
	char key[sizeof g->keys[0]];
	snprintf(key, sizeof key, GOV_KEY_RESOURCES "%s", name);
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->cmp[i].key, key) == 0)
			return 0;
	if (g->n == sizeof g->cmp / sizeof g->cmp[0]) {
		snprintf(why, whylen, "%s: names more than %zu resources", origin, g->n);
		return GOVCTL_REFUSED;
	}
	memcpy(g->keys[g->n], key, sizeof key);
	struct gov_kv kv;
	char err[512];
	int r = gov_store_get(s, g->keys[g->n], &kv, err, sizeof err);
	if (r < 0) {
		snprintf(why, whylen, "%s", err);
		return GOVCTL_UNAVAILABLE;
	}
	if (r == GOV_STORE_NOT_FOUND) {
		snprintf(why, whylen, "%s:%u:%u: unknown resource '%s' (register it first: govctl register %s --type TYPE)",
			 origin, pos.line, pos.column, name, name);
		return GOVCTL_REFUSED;
	}
	g->cmp[g->n].key = g->keys[g->n];
	g->cmp[g->n].mod_rev = kv.mod_rev;
	g->n++;
	gov_kv_clear(&kv);
	return 0;
}

/* A new layer set must still hold every registered resource and edge. */
static int check_layers_against_resources(struct gov_store *s, const struct gov_ruledoc *d,
					  const char *origin, char *why, size_t whylen)
{
	struct gov_kv *items;
	size_t n;
	uint64_t rev;
	char err[512];
	if (gov_store_list(s, GOV_KEY_RESOURCES, &items, &n, &rev, err, sizeof err) < 0) {
		snprintf(why, whylen, "%s", err);
		return GOVCTL_UNAVAILABLE;
	}
	json_t **res = calloc(n + 1, sizeof *res);
	for (size_t i = 0; res && i < n; i++)
		res[i] = json_loadb((char *)items[i].value, items[i].len, 0, NULL);
	size_t o = 0;
	why[0] = 0;
	for (size_t i = 0; res && i < n; i++) {
		const char *name = json_string_value(json_object_get(res[i], "name"));
		const char *type = json_string_value(json_object_get(res[i], "type"));
		int ti = -1;
		for (unsigned l = 0; type && l < d->nlayers; l++)
			if (strcmp(d->layers[l], type) == 0)
				ti = (int)l;
		if (ti < 0) {
			o += (size_t)snprintf(why + o, whylen - o, "%s%s: the layer set drops layer '%s' of resource %s",
					      o ? "\n" : "", origin, type ? type : "?", name ? name : "?");
			continue;
		}
		json_t *ref;
		size_t k;
		json_array_foreach(json_object_get(res[i], "refs"), k, ref) {
			const char *rname = json_string_value(ref);
			const char *rtype = NULL;
			for (size_t j = 0; j < n && rname; j++)
				if (strcmp(json_string_value(json_object_get(res[j], "name")) ?: "", rname) == 0)
					rtype = json_string_value(json_object_get(res[j], "type"));
			int allowed = 0;
			for (unsigned e = 0; rtype && e < d->nedges; e++)
				allowed |= strcmp(d->layers[d->edges[e][0]], type) == 0 &&
					   strcmp(d->layers[d->edges[e][1]], rtype) == 0;
			if (!allowed && o < whylen)
				o += (size_t)snprintf(why + o, whylen - o,
						      "%s%s: the layer set no longer allows %s (%s) -> %s (%s)",
						      o ? "\n" : "", origin, name, type, rname ? rname : "?",
						      rtype ? rtype : "?");
		}
	}
	for (size_t i = 0; res && i < n; i++)
		json_decref(res[i]);
	free(res);
	gov_kv_free(items, n);
	return why[0] ? GOVCTL_REFUSED : 0;
}

static char *layers_json(const struct gov_ruledoc *d)
{
	json_t *o = json_object(), *layers = json_array(), *edges = json_array();
	for (unsigned i = 0; i < d->nlayers; i++)
		json_array_append_new(layers, json_string(d->layers[i]));
	for (unsigned i = 0; i < d->nedges; i++)
		json_array_append_new(edges, json_pack("[ss]", d->layers[d->edges[i][0]],
						       d->layers[d->edges[i][1]]));
	json_object_set_new(o, "layers", layers);
	json_object_set_new(o, "edges", edges);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* The agents a document is routed to: every resource its verdicts or
 * protocols name, the callee of each cfs: entry (whose agent dispatches
 * under it), the resource of each tasklets: entry, and every agent ("*")
 * if a verdict or a tasklet names none. */
static json_t *route_targets(const struct gov_ruledoc *d)
{
	json_t *set = json_object();
	for (unsigned i = 0; i < d->nrows; i++)
		json_object_set_new(set, d->row_resource[i][0] ? d->row_resource[i] : GOV_ROUTE_ALL,
				    json_true());
	for (unsigned i = 0; i < d->nprotocols; i++) {
		json_object_set_new(set, d->protocols[i].from, json_true());
		json_object_set_new(set, d->protocols[i].to, json_true());
	}
	for (unsigned i = 0; i < d->ncfs; i++)
		json_object_set_new(set, d->cfs[i].to, json_true());
	for (unsigned i = 0; i < d->ntasklets; i++)
		json_object_set_new(set, d->tasklets[i].resource[0] ? d->tasklets[i].resource : GOV_ROUTE_ALL,
				    json_true());
	json_t *list = json_array(), *v;
	const char *k;
	json_object_foreach(set, k, v)
		json_array_append_new(list, json_string(k));
	json_decref(set);
	return list;
}

/* The route operations of a publish: new routes put, dropped ones deleted,
 * the rule's route list replaced. Returns a malloc'ed array of *n ops whose
 * strings live in keep. */
static struct gov_txn_op *route_ops(struct gov_store *s, const char *name, uint64_t version,
				    json_t *targets, json_t *keep, size_t *n)
{
	char key[256], err[512];
	struct gov_kv kv;
	size_t i;
	json_t *old = NULL, *t;
	snprintf(key, sizeof key, GOV_RULE_ROUTES_FMT, name);
	if (gov_store_get(s, key, &kv, err, sizeof err) == 0) {
		old = json_loadb((char *)kv.value, kv.len, 0, NULL);
		gov_kv_clear(&kv);
	}
	struct gov_txn_op *ops = calloc(json_array_size(targets) + json_array_size(old) + 1, sizeof *ops);
	if (!ops) {
		json_decref(old);
		return NULL;
	}
	*n = 0;
	json_t *vtext = json_sprintf("%llu", (unsigned long long)version);
	json_array_append_new(keep, vtext);
	json_array_foreach(targets, i, t) {
		json_t *k = json_sprintf(GOV_ROUTE_FMT, json_string_value(t), name);
		json_array_append_new(keep, k);
		ops[(*n)++] = (struct gov_txn_op){ GOV_TXN_PUT, json_string_value(k),
						   json_string_value(vtext), strlen(json_string_value(vtext)) };
	}
	json_array_foreach(old, i, t) {
		int still = 0;
		size_t j;
		json_t *u;
		json_array_foreach(targets, j, u)
			still |= json_equal(t, u);
		if (still || !json_is_string(t))
			continue;
		json_t *k = json_sprintf(GOV_ROUTE_FMT, json_string_value(t), name);
		json_array_append_new(keep, k);
		ops[(*n)++] = (struct gov_txn_op){ GOV_TXN_DELETE, json_string_value(k), NULL, 0 };
	}
	json_decref(old);
	char *list = json_dumps(targets, JSON_COMPACT);
	json_t *lk = json_string(key), *lv = json_string(list);
	free(list);
	json_array_append_new(keep, lk);
	json_array_append_new(keep, lv);
	ops[(*n)++] = (struct gov_txn_op){ GOV_TXN_PUT, json_string_value(lk), json_string_value(lv),
					   strlen(json_string_value(lv)) };
	return ops;
}

/* The objects of a document's dynamic entries, each built or read and
 * then loaded exactly as an agent will load it (verified by librte_bpf,
 * validated and translated by wabt), so a rule that would be refused there
 * is refused here, with the reason and nothing written. From a file, paths
 * are relative to its folder; a rollback takes the objects of the version it
 * republishes (from_rule, from_version). */
struct dyn_objects {
	void **obj;
	size_t *len;
	char (*key)[300];
	unsigned n;
};

static void dyn_objects_free(struct dyn_objects *o)
{
	for (unsigned i = 0; i < o->n; i++)
		free(o->obj[i]);
	free(o->obj);
	free(o->len);
	free(o->key);
	memset(o, 0, sizeof *o);
}

static int dyn_objects_get(struct gov_store *s, const struct gov_ruledoc *d, const char *origin,
			   const char *from_rule, uint64_t from_version, struct dyn_objects *o,
			   char *why, size_t whylen)
{
	o->n = d->ndyn;
	o->obj = calloc(d->ndyn + 1, sizeof *o->obj);
	o->len = calloc(d->ndyn + 1, sizeof *o->len);
	o->key = calloc(d->ndyn + 1, sizeof *o->key);
	if (!o->obj || !o->len || !o->key) {
		snprintf(why, whylen, "out of memory");
		return GOVCTL_UNAVAILABLE;
	}
	char *copy = strdup(origin), *dir = copy ? dirname(copy) : ".";
	int code = 0;
	for (unsigned i = 0; i < d->ndyn && !code; i++) {
		const struct gov_ruledoc_dynamic *e = &d->dyn[i];
		char path[1100], err[2048];
		int rc;
		if (from_rule) {
			char key[300];
			struct gov_kv kv;
			snprintf(key, sizeof key, GOV_RULE_OBJ_FMT, from_rule, (unsigned long long)from_version, i);
			rc = gov_store_get(s, key, &kv, err, sizeof err);
			if (rc != 0) {
				snprintf(why, whylen, "%s: the object of dynamic rule %s is not in the store (%s)",
					 origin, e->spec.name, rc < 0 ? err : key);
				code = rc < 0 ? GOVCTL_UNAVAILABLE : GOVCTL_REFUSED;
				break;
			}
			o->obj[i] = malloc(kv.len + 1);
			if (o->obj[i])
				memcpy(o->obj[i], kv.value, kv.len);
			o->len[i] = kv.len;
			gov_kv_clear(&kv);
			rc = o->obj[i] ? 0 : -1;
			snprintf(err, sizeof err, "out of memory");
		} else {
			if (e->path[0] == '/')
				snprintf(path, sizeof path, "%s", e->path);
			else
				snprintf(path, sizeof path, "%s/%s", dir, e->path);
			rc = e->is_source ? gov_dyn_compile(e->spec.mode, path, &o->obj[i], &o->len[i], err, sizeof err)
					  : gov_dyn_read(path, &o->obj[i], &o->len[i], err, sizeof err);
		}
		struct gov_dynrule *r = NULL;
		if (rc == 0) {
			struct gov_dyn_spec spec = e->spec;
			r = gov_dynrule_load(&spec, o->obj[i], o->len[i], err, sizeof err);
		}
		if (!r) {
			snprintf(why, whylen, "%s:%u:%u: dynamic rule %s refused: %s", origin, e->pos.line,
				 e->pos.column, e->spec.name, err);
			code = GOVCTL_REFUSED;
		}
		gov_dynrule_free(r);
	}
	free(copy);
	return code;
}

/* Checks and writes one new version of name with text; returns an exit code. */
static int publish_text(struct govctl *g, const char *name, const char *text, size_t len,
			const char *origin, const char *what, const char *from_rule, uint64_t from_version)
{
	struct gov_store *s = govctl_store(g);
	struct gov_ruledoc d;
	char err[1024], why[4096];
	if (gov_ruledoc_parse(text, len, origin, &d, err, sizeof err) < 0)
		return govctl_fail(GOVCTL_REFUSED, "%s; nothing published", err);
	if (d.name[0] && strcmp(d.name, name) != 0) {
		gov_ruledoc_free(&d);
		return govctl_fail(GOVCTL_REFUSED, "%s: the document names rule '%s', not '%s'; nothing published",
				   origin, d.name, name);
	}
	int code = 0;
	char *layers = NULL;
	struct dyn_objects objs = { 0 };
	if (d.ndyn) {
		code = dyn_objects_get(s, &d, origin, from_rule, from_version, &objs, why, sizeof why);
		if (code) {
			govctl_fail(code, "%s\ngovctl: nothing published", why);
			goto out;
		}
	}
	for (int tries = 0; tries < MAX_TRIES; tries++) {
		struct guard guard = { .n = 0 };
		/* a layer set is checked against every resource: a registration
		 * that commits after the check must make this publish retry */
		if (d.nlayers) {
			struct gov_kv kv;
			int r = gov_store_get(s, GOV_KEY_RESOURCE_EPOCH, &kv, err, sizeof err);
			if (r < 0) {
				code = store_fail(err);
				goto out;
			}
			guard.cmp[guard.n++] = (struct gov_txn_cmp){ GOV_KEY_RESOURCE_EPOCH,
								     r == 0 ? kv.mod_rev : 0 };
			if (r == 0)
				gov_kv_clear(&kv);
		}
		for (unsigned i = 0; !code && i < d.nrows; i++)
			if (d.row_resource[i][0])
				code = guard_resource(s, &guard, &d, origin, d.row_resource[i],
						      d.row_pos[i], why, sizeof why);
		for (unsigned i = 0; !code && i < d.nprotocols; i++) {
			code = guard_resource(s, &guard, &d, origin, d.protocols[i].from,
					      d.protocols[i].pos, why, sizeof why);
			if (!code)
				code = guard_resource(s, &guard, &d, origin, d.protocols[i].to,
						      d.protocols[i].pos, why, sizeof why);
		}
		for (unsigned i = 0; !code && i < d.ncfs; i++) {
			code = guard_resource(s, &guard, &d, origin, d.cfs[i].from, d.cfs[i].pos, why,
					      sizeof why);
			if (!code)
				code = guard_resource(s, &guard, &d, origin, d.cfs[i].to, d.cfs[i].pos,
						      why, sizeof why);
		}
		if (!code && d.nlayers)
			code = check_layers_against_resources(s, &d, origin, why, sizeof why);
		if (code)
			break;
		struct govctl_txn rt;
		govctl_txn_init(&rt);
		if (d.nresources) {
			char *lj = d.nlayers ? layers_json(&d) : NULL;
			int rc = govctl_plan_resources(g, &d, origin, lj, &rt);
			free(lj);
			if (rc) {
				govctl_txn_free(&rt);
				code = rc;
				why[0] = 0; /* the refusals are printed already */
				break;
			}
		}
		uint64_t version, cur_rev, rev;
		if (current_version(s, name, &version, &cur_rev, err, sizeof err) < 0) {
			code = store_fail(err);
			goto out;
		}
		char vkey[256], ckey[256], num[32];
		snprintf(vkey, sizeof vkey, GOV_RULE_VERSION_FMT, name, (unsigned long long)version + 1);
		snprintf(ckey, sizeof ckey, GOV_RULE_CURRENT_FMT, name);
		snprintf(num, sizeof num, "%llu", (unsigned long long)version + 1);
		json_t *targets = route_targets(&d), *keep = json_array();
		size_t nroutes = 0;
		struct gov_txn_op *routes = route_ops(s, name, version + 1, targets, keep, &nroutes);
		struct gov_txn_op *ops = routes ? calloc(nroutes + 3 + rt.nops + objs.n, sizeof *ops) : NULL;
		struct gov_txn_cmp *cmps = calloc(guard.n + 1 + rt.ncmps, sizeof *cmps);
		if (!ops || !cmps) {
			free(routes);
			free(ops);
			free(cmps);
			govctl_txn_free(&rt);
			json_decref(targets);
			json_decref(keep);
			code = govctl_fail(GOVCTL_UNAVAILABLE, "out of memory");
			goto out;
		}
		ops[0] = (struct gov_txn_op){ GOV_TXN_PUT, vkey, text, len };
		ops[1] = (struct gov_txn_op){ GOV_TXN_PUT, ckey, num, strlen(num) };
		memcpy(ops + 2, routes, nroutes * sizeof *ops);
		free(routes);
		size_t nops = 2 + nroutes;
		if (d.nlayers) {
			free(layers);
			layers = layers_json(&d);
			ops[nops++] = (struct gov_txn_op){ GOV_TXN_PUT, GOV_KEY_LAYERS, layers, strlen(layers) };
		}
		guard.cmp[guard.n++] = (struct gov_txn_cmp){ ckey, cur_rev };
		memcpy(cmps, guard.cmp, guard.n * sizeof *cmps);
		memcpy(cmps + guard.n, rt.cmps, rt.ncmps * sizeof *cmps);
		memcpy(ops + nops, rt.ops, rt.nops * sizeof *ops);
		nops += rt.nops;
		for (unsigned i = 0; i < objs.n; i++) {
			snprintf(objs.key[i], sizeof objs.key[i], GOV_RULE_OBJ_FMT, name,
				 (unsigned long long)version + 1, i);
			ops[nops++] = (struct gov_txn_op){ GOV_TXN_PUT, objs.key[i], objs.obj[i], objs.len[i] };
		}
		int r = gov_store_txn(s, cmps, guard.n + rt.ncmps, ops, nops, &rev, err, sizeof err);
		free(ops);
		free(cmps);
		govctl_txn_free(&rt);
		json_decref(targets);
		json_decref(keep);
		if (r < 0) {
			code = store_fail(err);
			goto out;
		}
		if (r == 0) {
			printf("%s rule %s version %llu at revision %llu\n", what, name,
			       (unsigned long long)version + 1, (unsigned long long)rev);
			goto out;
		}
		usleep((useconds_t)(100 + rand() % 400)); /* another publish got there first */
	}
	if (!code)
		code = govctl_fail(GOVCTL_UNAVAILABLE, "rule %s: gave up after %d conflicting publishes",
				   name, MAX_TRIES);
	else if (why[0])
		govctl_fail(code, "%s%s", why, code == GOVCTL_REFUSED ? "\ngovctl: nothing published" : "");
	else
		govctl_fail(code, "nothing published");
out:
	free(layers);
	dyn_objects_free(&objs);
	gov_ruledoc_free(&d);
	return code;
}

static int rule_publish(struct govctl *g, int argc, char **argv)
{
	const char *file = NULL, *name = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (argv[i][0] == '-')
			return govctl_fail(GOVCTL_USAGE, "rule publish: unknown option '%s'", argv[i]);
		else if (!file)
			file = argv[i];
		else
			return govctl_fail(GOVCTL_USAGE, "rule publish: one FILE at a time");
	}
	if (!file)
		return govctl_fail(GOVCTL_USAGE, "rule publish: FILE is missing (see --help)");
	char *text;
	size_t len;
	if (read_file(file, &text, &len) < 0)
		return govctl_fail(GOVCTL_REFUSED, "%s: cannot read: %s", file, strerror(errno));
	char base[GOV_RULE_NAME_MAX] = "";
	if (!name) {
		/* the document's own name, else the file's base name */
		struct gov_ruledoc d;
		char err[1024];
		if (gov_ruledoc_parse(text, len, file, &d, err, sizeof err) < 0) {
			free(text);
			return govctl_fail(GOVCTL_REFUSED, "%s; nothing published", err);
		}
		if (d.name[0]) {
			snprintf(base, sizeof base, "%s", d.name);
		} else {
			char *copy = strdup(file), *b = basename(copy), *dot = strrchr(b, '.');
			if (dot && dot != b)
				*dot = 0;
			snprintf(base, sizeof base, "%s", b);
			free(copy);
		}
		gov_ruledoc_free(&d);
		name = base;
	}
	int r;
	if (!gov_resource_name_ok(name))
		r = govctl_fail(GOVCTL_REFUSED, "'%s' is not a rule name (1-63 of A-Z a-z 0-9 . _ -; use --name)", name);
	else
		r = publish_text(g, name, text, len, file, "published", NULL, 0);
	free(text);
	return r;
}

/* Rule names with their current version, from the keys under /rules/. */
static int rule_list(struct govctl *g, int argc, char **argv)
{
	if (argc > 1)
		return govctl_fail(GOVCTL_USAGE, "rule list: unexpected argument '%s'", argv[1]);
	struct gov_kv *items;
	size_t n;
	uint64_t rev;
	char err[512];
	if (gov_store_list(govctl_store(g), GOV_KEY_RULES, &items, &n, &rev, err, sizeof err) < 0)
		return store_fail(err);
	json_t *out = json_array();
	for (size_t i = 0; i < n; i++) {
		const char *k = items[i].key + strlen(GOV_KEY_RULES), *slash = strchr(k, '/');
		if (!slash || strcmp(slash, "/current") != 0)
			continue;
		json_array_append_new(out, json_pack("{s:s%,s:I,s:I}", "name", k, (size_t)(slash - k),
						     "version", (json_int_t)strtoll((char *)items[i].value, NULL, 10),
						     "mod_rev", (json_int_t)items[i].mod_rev));
	}
	if (g->json) {
		govctl_print_json(out);
	} else {
		printf("%-32s %8s %10s\n", "RULE", "VERSION", "REVISION");
		size_t k;
		json_t *r;
		json_array_foreach(out, k, r)
			printf("%-32s %8lld %10lld\n", json_string_value(json_object_get(r, "name")),
			       json_integer_value(json_object_get(r, "version")),
			       json_integer_value(json_object_get(r, "mod_rev")));
	}
	json_decref(out);
	gov_kv_free(items, n);
	return GOVCTL_OK;
}

static int need_rule(struct govctl *g, const char *name, uint64_t *current)
{
	char err[512];
	uint64_t mod;
	if (!gov_resource_name_ok(name))
		return govctl_fail(GOVCTL_USAGE, "'%s' is not a rule name", name);
	if (current_version(govctl_store(g), name, current, &mod, err, sizeof err) < 0)
		return store_fail(err);
	if (!*current)
		return govctl_fail(GOVCTL_NOT_FOUND, "no rule named %s (see govctl rule list)", name);
	return 0;
}

static int parse_version(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || !*s || *end || *v == 0 ? -1 : 0;
}

static int fetch_version(struct govctl *g, const char *name, uint64_t v, struct gov_kv *kv)
{
	char err[512];
	int r = get_version_text(govctl_store(g), name, v, kv, err, sizeof err);
	if (r < 0)
		return store_fail(err);
	if (r == GOV_STORE_NOT_FOUND)
		return govctl_fail(GOVCTL_NOT_FOUND, "rule %s has no version %llu (see govctl rule history %s)",
				   name, (unsigned long long)v, name);
	return 0;
}

static int rule_show(struct govctl *g, int argc, char **argv)
{
	const char *name = NULL;
	uint64_t v = 0, cur;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0 && i + 1 < argc) {
			if (parse_version(argv[++i], &v) < 0)
				return govctl_fail(GOVCTL_USAGE, "rule show: --version %s is not a version number", argv[i]);
		} else if (argv[i][0] == '-' || name) {
			return govctl_fail(GOVCTL_USAGE, "rule show: unexpected '%s'", argv[i]);
		} else {
			name = argv[i];
		}
	}
	if (!name)
		return govctl_fail(GOVCTL_USAGE, "rule show: NAME is missing");
	int r = need_rule(g, name, &cur);
	struct gov_kv kv;
	if (r || (r = fetch_version(g, name, v ? v : cur, &kv)))
		return r;
	if (g->json) {
		json_t *o = json_pack("{s:s,s:I,s:b,s:I,s:s%}", "name", name, "version",
				      (json_int_t)(v ? v : cur), "current", !v || v == cur, "mod_rev",
				      (json_int_t)kv.mod_rev, "text", (char *)kv.value, kv.len);
		govctl_print_json(o);
		json_decref(o);
	} else {
		fwrite(kv.value, 1, kv.len, stdout);
	}
	gov_kv_clear(&kv);
	return GOVCTL_OK;
}

static int rule_history(struct govctl *g, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return govctl_fail(GOVCTL_USAGE, "rule history: give one NAME");
	uint64_t cur;
	int r = need_rule(g, argv[1], &cur);
	if (r)
		return r;
	char prefix[256], err[512];
	snprintf(prefix, sizeof prefix, GOV_KEY_RULES "%s/v/", argv[1]);
	struct gov_kv *items;
	size_t n;
	uint64_t rev;
	if (gov_store_list(govctl_store(g), prefix, &items, &n, &rev, err, sizeof err) < 0)
		return store_fail(err);
	json_t *out = json_array();
	for (size_t i = 0; i < n; i++) {
		uint64_t v = strtoull(items[i].key + strlen(prefix), NULL, 10);
		json_array_append_new(out, json_pack("{s:I,s:I,s:b,s:I}", "version", (json_int_t)v,
						     "mod_rev", (json_int_t)items[i].mod_rev,
						     "current", v == cur, "bytes", (json_int_t)items[i].len));
	}
	if (g->json) {
		govctl_print_json(out);
	} else {
		printf("%8s %10s %8s\n", "VERSION", "REVISION", "BYTES");
		size_t k;
		json_t *o;
		json_array_foreach(out, k, o)
			printf("%8lld %10lld %8lld%s\n", json_integer_value(json_object_get(o, "version")),
			       json_integer_value(json_object_get(o, "mod_rev")),
			       json_integer_value(json_object_get(o, "bytes")),
			       json_is_true(json_object_get(o, "current")) ? "  (current)" : "");
	}
	json_decref(out);
	gov_kv_free(items, n);
	return GOVCTL_OK;
}

static int write_temp(const char *text, size_t len, char *path)
{
	strcpy(path, "/tmp/govctl-diff.XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, text, len);
	close(fd);
	return w == (ssize_t)len ? 0 : -1;
}

/* A unified diff of two versions, by diff(1) from diffutils. Exit 0 either
 * way: a difference is the answer, not an error. */
static int rule_diff(struct govctl *g, int argc, char **argv)
{
	uint64_t a, b, cur;
	if (argc != 4 || parse_version(argv[2], &a) < 0 || parse_version(argv[3], &b) < 0)
		return govctl_fail(GOVCTL_USAGE, "rule diff: give NAME and two version numbers");
	int r = need_rule(g, argv[1], &cur);
	struct gov_kv ka, kb;
	if (r || (r = fetch_version(g, argv[1], a, &ka)))
		return r;
	if ((r = fetch_version(g, argv[1], b, &kb))) {
		gov_kv_clear(&ka);
		return r;
	}
	char pa[64], pb[64], la[300], lb[300];
	snprintf(la, sizeof la, "%s version %llu", argv[1], (unsigned long long)a);
	snprintf(lb, sizeof lb, "%s version %llu", argv[1], (unsigned long long)b);
	if (write_temp((char *)ka.value, ka.len, pa) < 0 || write_temp((char *)kb.value, kb.len, pb) < 0) {
		r = govctl_fail(GOVCTL_UNAVAILABLE, "rule diff: cannot write temporary files: %s", strerror(errno));
	} else {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			execlp("diff", "diff", "-u", "--label", la, "--label", lb, pa, pb, (char *)NULL);
			_exit(127);
		}
		int st;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) > 1)
			r = govctl_fail(GOVCTL_UNAVAILABLE, "rule diff: diff(1) failed (is diffutils installed?)");
	}
	unlink(pa);
	unlink(pb);
	gov_kv_clear(&ka);
	gov_kv_clear(&kb);
	return r;
}

static int rule_rollback(struct govctl *g, int argc, char **argv)
{
	uint64_t to, cur;
	if (argc != 4 || strcmp(argv[2], "--to") != 0 || parse_version(argv[3], &to) < 0)
		return govctl_fail(GOVCTL_USAGE, "rule rollback: give NAME --to VERSION");
	int r = need_rule(g, argv[1], &cur);
	struct gov_kv kv;
	if (r || (r = fetch_version(g, argv[1], to, &kv)))
		return r;
	char origin[300];
	snprintf(origin, sizeof origin, "%s version %llu", argv[1], (unsigned long long)to);
	r = publish_text(g, argv[1], (char *)kv.value, kv.len, origin, "rolled back: published", argv[1], to);
	gov_kv_clear(&kv);
	return r;
}

static volatile sig_atomic_t stop_watching;
static void on_stop(int sig)
{
	(void)sig;
	stop_watching = 1;
}

static int rule_watch(struct govctl *g, int argc, char **argv)
{
	const char *prefix = NULL;
	uint64_t from = 0;
	long count = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--from-rev") == 0 && i + 1 < argc) {
			if (parse_version(argv[++i], &from) < 0)
				return govctl_fail(GOVCTL_USAGE, "rule watch: --from-rev %s is not a revision", argv[i]);
		} else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			count = strtol(argv[++i], NULL, 10);
			if (count <= 0)
				return govctl_fail(GOVCTL_USAGE, "rule watch: --count needs a positive number");
		} else if (argv[i][0] == '-' || prefix) {
			return govctl_fail(GOVCTL_USAGE, "rule watch: unexpected '%s'", argv[i]);
		} else {
			prefix = argv[i];
		}
	}
	if (!prefix)
		prefix = GOV_KEY_RULES;
	struct gov_store *s = govctl_store(g);
	char err[512];
	uint64_t now;
	if (gov_store_revision(s, &now, err, sizeof err) < 0)
		return store_fail(err);
	struct gov_watch *w;
	if (gov_store_watch(s, prefix, from, &w, err, sizeof err) < 0)
		return store_fail(err);
	if (from)
		printf("watching %s from revision %llu (the store is at %llu)\n", prefix,
		       (unsigned long long)from, (unsigned long long)now);
	else
		printf("watching %s from revision %llu (changes after the current one)\n", prefix,
		       (unsigned long long)now + 1);
	fflush(stdout);
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int r = GOVCTL_OK;
	while (!stop_watching && count != 0) {
		struct gov_event *ev;
		int n = gov_watch_next(w, &ev, 500, err, sizeof err);
		if (n < 0) {
			if (!stop_watching)
				r = store_fail(err);
			break;
		}
		for (int i = 0; i < n && count != 0; i++, count--) {
			if (g->json) {
				json_t *o = json_pack("{s:I,s:s,s:s,s:s%}", "rev", (json_int_t)ev[i].kv.mod_rev,
						      "type", ev[i].kind == GOV_EVENT_PUT ? "PUT" : "DELETE",
						      "key", ev[i].kv.key, "value",
						      ev[i].kv.value ? (char *)ev[i].kv.value : "",
						      ev[i].kv.value ? ev[i].kv.len : 0);
				json_dumpf(o, stdout, JSON_COMPACT);
				putchar('\n');
				json_decref(o);
			} else {
				printf("rev %llu %s %s", (unsigned long long)ev[i].kv.mod_rev,
				       ev[i].kind == GOV_EVENT_PUT ? "PUT" : "DELETE", ev[i].kv.key);
				if (ev[i].kind == GOV_EVENT_PUT && ev[i].kv.len < 64 &&
				    !memchr(ev[i].kv.value, '\n', ev[i].kv.len))
					printf(" %.*s", (int)ev[i].kv.len, (char *)ev[i].kv.value);
				else if (ev[i].kind == GOV_EVENT_PUT)
					printf(" (%zu bytes)", ev[i].kv.len);
				putchar('\n');
			}
		}
		fflush(stdout);
		gov_events_free(ev, n);
	}
	gov_watch_close(w);
	return r;
}

static const char rule_usage[] =
	"usage: govctl rule publish FILE [--name NAME]\n"
	"       govctl rule list [--json]\n"
	"       govctl rule show NAME [--version N] [--json]\n"
	"       govctl rule history NAME [--json]\n"
	"       govctl rule diff NAME A B\n"
	"       govctl rule rollback NAME --to N\n"
	"       govctl rule watch [PREFIX] [--from-rev N] [--count N] [--json]\n"
	"\n"
	"publish   checks the whole rule file (docs/rules.md) and the resources it names,\n"
	"          then stores it as the rule's next immutable version; agents apply it live.\n"
	"          The rule's name is the file's `name:`, else --name, else the file's base name.\n"
	"rollback  publishes version N again, as a new version.\n"
	"watch     prints each change under PREFIX (default /rules/) as it commits, from\n"
	"          revision N (default: the next one), saying first where it starts; like\n"
	"          etcdctl watch --rev, it misses none. Stops on SIGINT or after --count events.\n"
	"\n"
	"example:\n"
	"  govctl rule publish rules/examples/deny-unlink.yaml\n"
	"  govctl rule history deny-unlink\n"
	"  govctl rule diff deny-unlink 1 2\n"
	"  govctl rule rollback deny-unlink --to 1\n"
	"  govctl rule watch /rules/ --from-rev 1\n";

int cmd_rule(struct govctl *g, int argc, char **argv)
{
	static const struct {
		const char *verb;
		govctl_cmd *fn;
	} verbs[] = {
		{ "publish", rule_publish }, { "list", rule_list }, { "show", rule_show },
		{ "history", rule_history }, { "diff", rule_diff }, { "rollback", rule_rollback },
		{ "watch", rule_watch },
	};
	if (argc < 2 || govctl_wants_help(argc, argv)) {
		fputs(rule_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? GOVCTL_USAGE : GOVCTL_OK;
	}
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (strcmp(argv[1], verbs[i].verb) == 0)
			return verbs[i].fn(g, argc - 1, argv + 1);
	fprintf(stderr, "govctl: unknown rule command '%s'\n\n%s", argv[1], rule_usage);
	return GOVCTL_USAGE;
}
