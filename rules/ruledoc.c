/* rules/ruledoc.c - parses and checks rule documents (rules/ruledoc.h) with
 * libyaml's document loader, which keeps the line and column of every node
 * for error messages. Nothing is returned unless the whole document checks.
 * It is not the store (store.c) and does not know which resources exist:
 * callers that do check the positions it records. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "ruledoc.h"
#include "../runtime/internal.h"

struct ctx {
	const char *origin;
	yaml_document_t doc;
	char *err;
	size_t errlen;
	struct gov_ruledoc d;
};

static int fail(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s:%zu:%zu: %s", c->origin,
		 n ? n->start_mark.line + 1 : 1, n ? n->start_mark.column + 1 : 1, why);
	return -1;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static struct gov_ruledoc_pos pos_of(const yaml_node_t *n)
{
	return (struct gov_ruledoc_pos){ (unsigned)n->start_mark.line + 1,
					 (unsigned)n->start_mark.column + 1 };
}

static yaml_node_t *node(struct ctx *c, int id)
{
	return yaml_document_get_node(&c->doc, id);
}

#define FOR_PAIRS(c, map, k, v)                                                    \
	for (yaml_node_pair_t *p_ = (map)->data.mapping.pairs.start;               \
	     p_ < (map)->data.mapping.pairs.top &&                                 \
	     ((k) = node(c, p_->key), (v) = node(c, p_->value), 1); p_++)

static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

/* A section that is a list of shape: checks it is a sequence and gives its
 * length and n + 1 zeroed items of size bytes (the last stays zero), or NULL
 * after reporting why. */
static void *list_items(struct ctx *c, yaml_node_t *list, const char *section,
			const char *shape, size_t size, size_t *n)
{
	if (list->type != YAML_SEQUENCE_NODE) {
		fail(c, list, "'%s' must be a list of %s", section, shape);
		return NULL;
	}
	*n = seq_len(list);
	void *items = calloc(*n + 1, size);
	if (!items)
		fail(c, list, "out of memory");
	return items;
}

/* Item i of a list whose items are mappings, or NULL after reporting it. */
static yaml_node_t *mapping_item(struct ctx *c, yaml_node_t *list, size_t i,
				 const char *noun, const char *shape)
{
	yaml_node_t *item = node(c, list->data.sequence.items.start[i]);
	if (item->type != YAML_MAPPING_NODE) {
		fail(c, item, "%s is a mapping %s", noun, shape);
		return NULL;
	}
	return item;
}

static int parse_long(struct ctx *c, const yaml_node_t *n, const char *field, long long *out)
{
	const char *s = scalar(n);
	char *end;
	errno = 0;
	*out = strtoll(s, &end, 0);
	if (errno || !*s || *end)
		return fail(c, n, "field '%s': '%s' is not an integer", field, s);
	return 0;
}

static int name_field(struct ctx *c, const yaml_node_t *v, const char *what, char *out)
{
	const char *val = scalar(v);
	if (!val || !gov_resource_name_ok(val))
		return fail(c, v, "%s must be 1-63 of A-Z a-z 0-9 . _ - (got '%s')", what,
			    val ? val : "a list or mapping");
	strcpy(out, val);
	return 0;
}

static int parse_row(struct ctx *c, yaml_node_t *item, struct gov_decision *row,
		     char *resource, struct gov_ruledoc_pos *rpos, char *to)
{
	const yaml_node_t *to_node = NULL;
	to[0] = 0;
	if (item->type != YAML_MAPPING_NODE)
		return fail(c, item, "a verdict rule must be a mapping (function/syscall, action, ...)");
	memset(row, 0, sizeof *row);
	resource[0] = 0;
	const yaml_node_t *action_node = NULL, *errno_node = NULL, *value_node = NULL, *k, *v;
	FOR_PAIRS(c, item, k, v) {
		const char *key = scalar(k), *val = scalar(v);
		if (!key)
			return fail(c, k, "keys must be plain words");
		if (!val)
			return fail(c, v, "field '%s' must be a single value", key);
		if (strcmp(key, "function") == 0 || strcmp(key, "syscall") == 0) {
			if (row->match)
				return fail(c, k, "a rule names one function or one syscall, not both");
			if (key[0] == 'f') {
				if (!*val || strlen(val) >= sizeof row->name)
					return fail(c, v, "function name must be 1..%zu characters",
						    sizeof row->name - 1);
				row->match = GOV_MATCH_FUNCTION;
				strcpy(row->name, val);
				row->sysno = -1;
			} else {
				int nr = gov_syscall_number(val);
				if (nr < 0)
					return fail(c, v, "unknown syscall '%s' (x86-64 names, e.g. openat)", val);
				row->match = GOV_MATCH_SYSCALL;
				row->sysno = nr;
				snprintf(row->name, sizeof row->name, "%s", val);
			}
		} else if (strcmp(key, "action") == 0) {
			int a = gov_action_from_word(val);
			if (a < 0)
				return fail(c, v, "unknown action '%s' (native, deny, emulate, trace, forward)", val);
			if (a == GOV_ACT_RULE)
				return fail(c, v, "action 'rule' is not written by hand: a 'dynamic:' entry attaches its rule");
			row->action = (uint8_t)a;
			action_node = v;
		} else if (strcmp(key, "errno") == 0) {
			int e = gov_errno_from_name(val);
			if (e <= 0)
				return fail(c, v, "unknown errno '%s' (a name such as EACCES, or a number)", val);
			row->err = e;
			errno_node = v;
		} else if (strcmp(key, "value") == 0) {
			long long x;
			if (parse_long(c, v, "value", &x) < 0)
				return -1;
			row->value = x;
			value_node = v;
		} else if (strcmp(key, "resource") == 0) {
			if (!gov_resource_name_ok(val))
				return fail(c, v, "'%s' is not a resource name", val);
			strcpy(resource, val);
			*rpos = pos_of(v);
		} else if (strcmp(key, "to") == 0) {
			if (name_field(c, v, "'to'", to) < 0)
				return -1;
			to_node = v;
		} else {
			return fail(c, k, "unknown field '%s' in a verdict rule "
				    "(function, syscall, action, errno, value, resource, to)", key);
		}
	}
	if (!row->match)
		return fail(c, item, "a verdict rule needs 'function' or 'syscall'");
	if (!action_node)
		return fail(c, item, "a verdict rule needs 'action'");
	if (errno_node && row->action != GOV_ACT_DENY)
		return fail(c, errno_node, "'errno' only goes with action deny");
	if (value_node && row->action != GOV_ACT_EMULATE)
		return fail(c, value_node, "'value' only goes with action emulate");
	if (to_node && row->action != GOV_ACT_FORWARD)
		return fail(c, to_node, "'to' only goes with action forward");
	if (row->action == GOV_ACT_FORWARD && row->match != GOV_MATCH_FUNCTION)
		return fail(c, item, "action forward applies to a function, not a syscall");
	if (row->action == GOV_ACT_DENY && !row->err)
		row->err = EPERM;
	return 0;
}

static int parse_verdicts(struct ctx *c, yaml_node_t *list)
{
	if (list->type != YAML_SEQUENCE_NODE)
		return fail(c, list, "'verdicts' must be a list of rules");
	size_t n = seq_len(list);
	c->d.rows = calloc(n + 1, sizeof *c->d.rows);
	c->d.row_resource = calloc(n + 1, sizeof *c->d.row_resource);
	c->d.row_pos = calloc(n + 1, sizeof *c->d.row_pos);
	c->d.row_to = calloc(n + 1, sizeof *c->d.row_to);
	if (!c->d.rows || !c->d.row_resource || !c->d.row_pos || !c->d.row_to)
		return fail(c, list, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = node(c, list->data.sequence.items.start[i]);
		if (parse_row(c, item, &c->d.rows[i], c->d.row_resource[i], &c->d.row_pos[i],
			      c->d.row_to[i]) < 0)
			return -1;
		c->d.nrows++;
	}
	return 0;
}

static int layer_index(const struct gov_ruledoc *d, const char *name)
{
	for (unsigned i = 0; i < d->nlayers; i++)
		if (strcmp(d->layers[i], name) == 0)
			return (int)i;
	return -1;
}

static int parse_layers(struct ctx *c, yaml_node_t *list)
{
	if (list->type != YAML_SEQUENCE_NODE || seq_len(list) == 0)
		return fail(c, list, "'layers' must be a non-empty list of layer names");
	size_t n = seq_len(list);
	c->d.layers = calloc(n, sizeof *c->d.layers);
	if (!c->d.layers)
		return fail(c, list, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = node(c, list->data.sequence.items.start[i]);
		if (name_field(c, item, "a layer name", c->d.layers[i]) < 0)
			return -1;
		if (layer_index(&c->d, c->d.layers[i]) >= 0)
			return fail(c, item, "layer '%s' is listed twice", c->d.layers[i]);
		c->d.nlayers++;
	}
	return 0;
}

/* Depth-first search for a cycle; fills path with it. */
static int find_cycle(const struct gov_ruledoc *d, unsigned at, int *state, unsigned *path,
		      unsigned depth, unsigned *len)
{
	state[at] = 1;
	path[depth] = at;
	for (unsigned e = 0; e < d->nedges; e++) {
		if (d->edges[e][0] != at)
			continue;
		unsigned to = d->edges[e][1];
		if (state[to] == 1) {
			unsigned start = 0;
			while (path[start] != to)
				start++;
			for (unsigned i = start; i <= depth; i++)
				path[i - start] = path[i];
			path[depth - start + 1] = to;
			*len = depth - start + 2;
			return 1;
		}
		if (state[to] == 0 && find_cycle(d, to, state, path, depth + 1, len))
			return 1;
	}
	state[at] = 2;
	return 0;
}

static int parse_edges(struct ctx *c, yaml_node_t *list)
{
	if (list->type != YAML_SEQUENCE_NODE)
		return fail(c, list, "'edges' must be a list of [from, to] pairs");
	if (!c->d.nlayers)
		return fail(c, list, "'edges' needs a 'layers' list in the same document");
	size_t n = seq_len(list);
	c->d.edges = calloc(n + 1, sizeof *c->d.edges);
	if (!c->d.edges)
		return fail(c, list, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *e = node(c, list->data.sequence.items.start[i]);
		if (e->type != YAML_SEQUENCE_NODE || seq_len(e) != 2)
			return fail(c, e, "an edge is a pair [from, to]");
		for (int k = 0; k < 2; k++) {
			yaml_node_t *end = node(c, e->data.sequence.items.start[k]);
			const char *s = scalar(end);
			int idx = s ? layer_index(&c->d, s) : -1;
			if (idx < 0)
				return fail(c, end, "'%s' is not one of the layers", s ? s : "?");
			c->d.edges[i][k] = (unsigned)idx;
		}
		c->d.nedges++;
	}
	int *state = calloc(c->d.nlayers, sizeof *state);
	unsigned *path = calloc(c->d.nlayers + 1, sizeof *path), len = 0;
	int cyc = 0;
	for (unsigned l = 0; state && path && l < c->d.nlayers && !cyc; l++)
		if (!state[l])
			cyc = find_cycle(&c->d, l, state, path, 0, &len);
	if (cyc) {
		char desc[512] = "";
		size_t o = 0;
		for (unsigned i = 0; i < len && o < sizeof desc - 80; i++)
			o += (size_t)snprintf(desc + o, sizeof desc - o, "%s%s", i ? " -> " : "",
					      c->d.layers[path[i]]);
		free(state);
		free(path);
		return fail(c, list, "cycle in the layer set: %s", desc);
	}
	free(state);
	free(path);
	return 0;
}

static int parse_protocols(struct ctx *c, yaml_node_t *list)
{
	static const char *const known[] = { "shm", "msgqueue", "unix", "tcp" };
	static const char shape[] = "{from, to, protocol}";
	size_t n;
	if (!(c->d.protocols = list_items(c, list, "protocols", shape, sizeof *c->d.protocols, &n)))
		return -1;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = mapping_item(c, list, i, "a protocol rule", shape), *k, *v;
		struct gov_ruledoc_protocol *p = &c->d.protocols[i];
		if (!item)
			return -1;
		p->pos = pos_of(item);
		FOR_PAIRS(c, item, k, v) {
			const char *key = scalar(k), *val = scalar(v);
			if (key && strcmp(key, "from") == 0) {
				if (name_field(c, v, "'from'", p->from) < 0)
					return -1;
			} else if (key && strcmp(key, "to") == 0) {
				if (name_field(c, v, "'to'", p->to) < 0)
					return -1;
			} else if (key && strcmp(key, "protocol") == 0) {
				int ok = 0;
				for (size_t j = 0; val && j < sizeof known / sizeof known[0]; j++)
					ok |= strcmp(val, known[j]) == 0;
				if (!ok)
					return fail(c, v, "unknown protocol '%s' (shm, msgqueue, unix, tcp)",
						    val ? val : "?");
				snprintf(p->protocol, sizeof p->protocol, "%s", val);
			} else if (key && strcmp(key, "address") == 0) {
				if (!val || !*val || strlen(val) >= sizeof p->address || !strrchr(val, ':'))
					return fail(c, v, "'address' must be HOST:PORT (got '%s')",
						    val ? val : "a list or mapping");
				snprintf(p->address, sizeof p->address, "%s", val);
			} else {
				return fail(c, k, "unknown field '%s' in a protocol rule "
					    "(from, to, protocol, address)", key ? key : "?");
			}
		}
		if (!p->from[0] || !p->to[0] || !p->protocol[0])
			return fail(c, item, "a protocol rule needs from, to and protocol");
		c->d.nprotocols++;
	}
	return 0;
}

/* A count from 1 to max (a cfs weight, a concurrency). */
static int count_field(struct ctx *c, yaml_node_t *v, const char *field, unsigned long max,
		       unsigned *out)
{
	const char *val = scalar(v);
	char *end = NULL;
	errno = 0;
	unsigned long x = val ? strtoul(val, &end, 10) : 0;
	if (!val || !*val || *end || errno || *val == '-' || x < 1 || x > max)
		return fail(c, v, "'%s' must be an integer from 1 to %lu (got '%s')", field, max,
			    val ? val : "a list or mapping");
	*out = (unsigned)x;
	return 0;
}

static int parse_cfs(struct ctx *c, yaml_node_t *list)
{
	static const char shape[] = "{from, to, weight}";
	size_t n;
	if (!(c->d.cfs = list_items(c, list, "cfs", shape, sizeof *c->d.cfs, &n)))
		return -1;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = mapping_item(c, list, i, "a cfs rule", shape), *k, *v;
		struct gov_ruledoc_cfs *w = &c->d.cfs[i];
		if (!item)
			return -1;
		w->pos = pos_of(item);
		w->weight = GOV_CFS_WEIGHT_DEFAULT;
		FOR_PAIRS(c, item, k, v) {
			const char *key = scalar(k);
			if (key && strcmp(key, "from") == 0) {
				if (name_field(c, v, "'from'", w->from) < 0)
					return -1;
			} else if (key && strcmp(key, "to") == 0) {
				if (name_field(c, v, "'to'", w->to) < 0)
					return -1;
			} else if (key && strcmp(key, "weight") == 0) {
				if (count_field(c, v, "weight", GOV_CFS_WEIGHT_MAX, &w->weight) < 0)
					return -1;
			} else {
				return fail(c, k, "unknown field '%s' in a cfs rule (from, to, weight)",
					    key ? key : "?");
			}
		}
		if (!w->from[0] || !w->to[0])
			return fail(c, item, "a cfs rule needs from and to");
		c->d.ncfs++;
	}
	return 0;
}

static int parse_tasklets(struct ctx *c, yaml_node_t *list)
{
	static const char shape[] = "{name, function, resource}";
	size_t n;
	if (!(c->d.tasklets = list_items(c, list, "tasklets", shape, sizeof *c->d.tasklets, &n)))
		return -1;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = mapping_item(c, list, i, "a tasklet", shape), *k, *v;
		struct gov_ruledoc_tasklet *t = &c->d.tasklets[i];
		if (!item)
			return -1;
		t->pos = pos_of(item);
		FOR_PAIRS(c, item, k, v) {
			const char *key = scalar(k);
			char *dst = NULL;
			if (key && strcmp(key, "name") == 0)
				dst = t->name;
			else if (key && strcmp(key, "function") == 0)
				dst = t->function;
			else if (key && strcmp(key, "resource") == 0)
				dst = t->resource;
			else
				return fail(c, k, "unknown field '%s' in a tasklet (name, function, resource)",
					    key ? key : "?");
			char what[16];
			snprintf(what, sizeof what, "'%s'", key);
			if (name_field(c, v, what, dst) < 0)
				return -1;
		}
		if (!t->name[0] || !t->function[0])
			return fail(c, item, "a tasklet needs name and function");
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->d.tasklets[j].function, t->function) == 0 &&
			    strcmp(c->d.tasklets[j].resource, t->resource) == 0)
				return fail(c, item, "function '%s' is already tasklet '%s'", t->function,
					    c->d.tasklets[j].name);
		c->d.ntasklets++;
	}
	return 0;
}

/* A list of names, as a YAML sequence or one comma-separated scalar. */
static int name_list(struct ctx *c, yaml_node_t *v, const char *what,
		     char (**out)[GOV_NAME_MAX], unsigned *n)
{
	size_t cap = v->type == YAML_SEQUENCE_NODE ? seq_len(v) : 1;
	const char *text = scalar(v);
	if (text)
		for (const char *p = text; *p; p++)
			cap += *p == ',';
	*out = calloc(cap + 1, sizeof **out);
	*n = 0;
	if (!*out)
		return fail(c, v, "out of memory");
	if (v->type == YAML_SEQUENCE_NODE) {
		for (size_t i = 0; i < seq_len(v); i++)
			if (name_field(c, node(c, v->data.sequence.items.start[i]), what, (*out)[(*n)++]) < 0)
				return -1;
		return 0;
	}
	if (!text)
		return fail(c, v, "%s must be a list of names", what);
	char *copy = strdup(text), *save = NULL;
	for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (!gov_resource_name_ok(tok)) {
			free(copy);
			return fail(c, v, "%s: '%s' is not a name (1-63 of A-Z a-z 0-9 . _ -)", what, tok);
		}
		strcpy((*out)[(*n)++], tok);
	}
	free(copy);
	return 0;
}

static int parse_resources(struct ctx *c, yaml_node_t *list)
{
	static const char shape[] = "{name, type, refs, privilege, exports, concurrency}";
	size_t n;
	if (!(c->d.resources = list_items(c, list, "resources", shape, sizeof *c->d.resources, &n)))
		return -1;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = mapping_item(c, list, i, "a resource", shape), *k, *v;
		struct gov_ruledoc_resource *r = &c->d.resources[i];
		if (!item)
			return -1;
		r->pos = pos_of(item);
		c->d.nresources++;
		FOR_PAIRS(c, item, k, v) {
			const char *key = scalar(k), *val = scalar(v);
			int rc = 0;
			if (key && strcmp(key, "name") == 0)
				rc = name_field(c, v, "a resource name", r->name);
			else if (key && strcmp(key, "type") == 0)
				rc = name_field(c, v, "a resource type", r->type);
			else if (key && strcmp(key, "refs") == 0)
				rc = name_list(c, v, "'refs'", &r->refs, &r->nrefs);
			else if (key && strcmp(key, "exports") == 0)
				rc = name_list(c, v, "'exports'", &r->exports, &r->nexports);
			else if (key && strcmp(key, "privilege") == 0) {
				if (!val || (strcmp(val, "user") != 0 && strcmp(val, "kernel") != 0))
					return fail(c, v, "privilege is user or kernel");
				r->kernel = val[0] == 'k';
			} else if (key && strcmp(key, "concurrency") == 0) {
				rc = count_field(c, v, "concurrency", GOV_RULEDOC_CONCURRENCY_MAX,
						 &r->concurrency);
			} else
				return fail(c, k, "unknown field '%s' in a resource "
					    "(name, type, refs, privilege, exports, concurrency)",
					    key ? key : "?");
			if (rc < 0)
				return -1;
		}
		if (!r->name[0] || !r->type[0])
			return fail(c, item, "a resource needs a name and a type");
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->d.resources[j].name, r->name) == 0)
				return fail(c, item, "resource '%s' is declared twice", r->name);
	}
	return 0;
}

/* One attach item: {function: NAME} or {syscall: NAME}, as in a verdict. */
static int parse_attach(struct ctx *c, yaml_node_t *item, struct gov_decision *row)
{
	yaml_node_t *k, *v;
	if (item->type != YAML_MAPPING_NODE || item->data.mapping.pairs.top - item->data.mapping.pairs.start != 1)
		return fail(c, item, "an attach item is {function: NAME} or {syscall: NAME}");
	memset(row, 0, sizeof *row);
	FOR_PAIRS(c, item, k, v) {
		const char *key = scalar(k), *val = scalar(v);
		if (!key || !val)
			return fail(c, item, "an attach item is {function: NAME} or {syscall: NAME}");
		if (strcmp(key, "function") == 0) {
			if (!*val || strlen(val) >= sizeof row->name)
				return fail(c, v, "function name must be 1..%zu characters", sizeof row->name - 1);
			row->match = GOV_MATCH_FUNCTION;
			row->sysno = -1;
			strcpy(row->name, val);
		} else if (strcmp(key, "syscall") == 0) {
			int nr = gov_syscall_number(val);
			if (nr < 0)
				return fail(c, v, "unknown syscall '%s' (x86-64 names, e.g. openat)", val);
			row->match = GOV_MATCH_SYSCALL;
			row->sysno = nr;
			snprintf(row->name, sizeof row->name, "%s", val);
		} else {
			return fail(c, k, "unknown field '%s' in an attach item (function, syscall)", key);
		}
	}
	row->action = GOV_ACT_RULE;
	return 0;
}

static int parse_uint(struct ctx *c, yaml_node_t *v, const char *field, long long max, uint32_t *out)
{
	long long x;
	if (!scalar(v))
		return fail(c, v, "field '%s' must be a number", field);
	if (parse_long(c, v, field, &x) < 0)
		return -1;
	if (x < 0 || x > max)
		return fail(c, v, "field '%s': %lld is out of range (0..%lld)", field, x, max);
	*out = (uint32_t)x;
	return 0;
}

static int parse_dyn_entry(struct ctx *c, yaml_node_t *item, unsigned index)
{
	struct gov_ruledoc_dynamic *e = &c->d.dyn[index];
	yaml_node_t *k, *v, *attach = NULL, *errno_node = NULL, *value_node = NULL, *fail_node = NULL;
	yaml_node_t *place_node = NULL, *insns_node = NULL, *budget_node = NULL;
	if (item->type != YAML_MAPPING_NODE)
		return fail(c, item, "a dynamic rule is a mapping (name, mode, source or object, attach, ...)");
	memset(e, 0, sizeof *e);
	e->pos = pos_of(item);
	e->spec.placement = GOV_DYN_IN_AGENT;
	e->spec.fail_action = GOV_DYN_NATIVE;
	e->spec.max_faults = 10;
	e->spec.max_insns = 4096;
	e->spec.budget_us = 1000;
	snprintf(e->spec.name, sizeof e->spec.name, "rule%u", index);
	FOR_PAIRS(c, item, k, v) {
		const char *key = scalar(k), *val = scalar(v);
		if (!key)
			return fail(c, k, "keys must be plain words");
		if (strcmp(key, "attach") == 0) {
			attach = v;
			continue;
		}
		if (!val)
			return fail(c, v, "field '%s' must be a single value", key);
		if (strcmp(key, "name") == 0) {
			if (name_field(c, v, "a dynamic rule's name", e->spec.name) < 0)
				return -1;
		} else if (strcmp(key, "mode") == 0) {
			if (strcmp(val, "ebpf") == 0)
				e->spec.mode = GOV_DYN_EBPF;
			else if (strcmp(val, "wasm") == 0)
				e->spec.mode = GOV_DYN_WASM;
			else
				return fail(c, v, "unknown mode '%s' (ebpf, wasm)", val);
		} else if (strcmp(key, "source") == 0 || strcmp(key, "object") == 0) {
			if (e->path[0])
				return fail(c, k, "a dynamic rule has one source or one object, not both");
			if (!*val || strlen(val) >= sizeof e->path)
				return fail(c, v, "a path must be 1..%zu characters", sizeof e->path - 1);
			strcpy(e->path, val);
			e->is_source = key[0] == 's';
		} else if (strcmp(key, "resource") == 0) {
			if (!gov_resource_name_ok(val))
				return fail(c, v, "'%s' is not a resource name", val);
			strcpy(e->resource, val);
		} else if (strcmp(key, "placement") == 0) {
			if (strcmp(val, "agent") == 0)
				e->spec.placement = GOV_DYN_IN_AGENT;
			else if (strcmp(val, "process") == 0)
				e->spec.placement = GOV_DYN_IN_PROCESS;
			else
				return fail(c, v, "unknown placement '%s' (agent, process)", val);
			place_node = v;
		} else if (strcmp(key, "fail") == 0) {
			if (strcmp(val, "native") == 0)
				e->spec.fail_action = GOV_DYN_NATIVE;
			else if (strcmp(val, "deny") == 0)
				e->spec.fail_action = GOV_DYN_DENY;
			else if (strcmp(val, "emulate") == 0)
				e->spec.fail_action = GOV_DYN_EMULATE;
			else
				return fail(c, v, "unknown fail outcome '%s' (native, deny, emulate)", val);
			fail_node = v;
		} else if (strcmp(key, "errno") == 0) {
			int er = gov_errno_from_name(val);
			if (er <= 0)
				return fail(c, v, "unknown errno '%s' (a name such as EACCES, or a number)", val);
			e->spec.fail_err = er;
			errno_node = v;
		} else if (strcmp(key, "value") == 0) {
			long long x;
			if (parse_long(c, v, "value", &x) < 0)
				return -1;
			e->spec.fail_value = x;
			value_node = v;
		} else if (strcmp(key, "max_faults") == 0) {
			if (parse_uint(c, v, "max_faults", 1000000000, &e->spec.max_faults) < 0)
				return -1;
		} else if (strcmp(key, "max_insns") == 0) {
			if (parse_uint(c, v, "max_insns", 1000000, &e->spec.max_insns) < 0)
				return -1;
			if (!e->spec.max_insns)
				return fail(c, v, "field 'max_insns' must be at least 1");
			insns_node = v;
		} else if (strcmp(key, "budget_us") == 0) {
			if (parse_uint(c, v, "budget_us", 10000000, &e->spec.budget_us) < 0)
				return -1;
			if (!e->spec.budget_us)
				return fail(c, v, "field 'budget_us' must be at least 1");
			budget_node = v;
		} else {
			return fail(c, k, "unknown field '%s' in a dynamic rule (name, mode, source, object, "
				    "attach, resource, placement, fail, errno, value, max_faults, max_insns, "
				    "budget_us)", key);
		}
	}
	for (unsigned j = 0; j < index; j++)
		if (strcmp(c->d.dyn[j].spec.name, e->spec.name) == 0)
			return fail(c, item, "dynamic rule '%s' is declared twice", e->spec.name);
	if (!e->spec.mode)
		return fail(c, item, "a dynamic rule needs 'mode' (ebpf or wasm)");
	if (!e->path[0])
		return fail(c, item, "a dynamic rule needs 'source' (C) or 'object' (built)");
	if (!attach)
		return fail(c, item, "a dynamic rule needs 'attach' (a list of {function: F} or {syscall: S})");
	if (e->spec.mode == GOV_DYN_WASM && e->spec.placement == GOV_DYN_IN_PROCESS)
		return fail(c, place_node, "placement 'process' is eBPF only: a wasm rule runs in the agent "
			    "(placement: agent)");
	if (errno_node && e->spec.fail_action != GOV_DYN_DENY)
		return fail(c, errno_node, "'errno' only goes with fail: deny");
	if (value_node && e->spec.fail_action != GOV_DYN_EMULATE)
		return fail(c, value_node, "'value' only goes with fail: emulate");
	if (fail_node && e->spec.fail_action == GOV_DYN_DENY && !e->spec.fail_err)
		e->spec.fail_err = EPERM;
	if (insns_node && e->spec.mode != GOV_DYN_EBPF)
		return fail(c, insns_node, "'max_insns' is the budget of an eBPF rule; a wasm rule has budget_us");
	if (budget_node && e->spec.mode != GOV_DYN_WASM)
		return fail(c, budget_node, "'budget_us' is the budget of a wasm rule; an eBPF rule has max_insns "
			    "(it cannot loop: its runs are bounded by its length)");
	if (attach->type != YAML_SEQUENCE_NODE || seq_len(attach) == 0)
		return fail(c, attach, "'attach' must be a non-empty list of {function: F} or {syscall: S}");
	size_t n = seq_len(attach);
	struct gov_decision *rows = realloc(c->d.rows, (c->d.nrows + n + 1) * sizeof *rows);
	char (*res)[GOV_NAME_MAX] = rows ? realloc(c->d.row_resource, (c->d.nrows + n + 1) * sizeof *res) : NULL;
	if (rows)
		c->d.rows = rows;
	if (res)
		c->d.row_resource = res;
	struct gov_ruledoc_pos *pos = res ? realloc(c->d.row_pos, (c->d.nrows + n + 1) * sizeof *pos) : NULL;
	if (!pos)
		return fail(c, attach, "out of memory");
	c->d.row_pos = pos;
	for (size_t i = 0; i < n; i++) {
		unsigned r = c->d.nrows;
		if (parse_attach(c, node(c, attach->data.sequence.items.start[i]), &c->d.rows[r]) < 0)
			return -1;
		c->d.rows[r].value = index;
		strcpy(c->d.row_resource[r], e->resource);
		c->d.row_pos[r] = e->pos;
		c->d.nrows++;
	}
	return 0;
}

static int parse_dynamic(struct ctx *c, yaml_node_t *list)
{
	size_t n;
	if (!(c->d.dyn = list_items(c, list, "dynamic", "dynamic rules", sizeof *c->d.dyn, &n)))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (parse_dyn_entry(c, node(c, list->data.sequence.items.start[i]), (unsigned)i) < 0)
			return -1;
		c->d.ndyn++;
	}
	return 0;
}

static int parse_doc(struct ctx *c)
{
	yaml_node_t *root = yaml_document_get_root_node(&c->doc), *k, *v;
	if (!root)
		return 0; /* an empty document: no rules */
	if (root->type != YAML_MAPPING_NODE)
		return fail(c, root, "the top level must be a mapping (name, verdicts, layers, edges, protocols, resources)");
	yaml_node_t *edges = NULL, *dynamic = NULL;
	FOR_PAIRS(c, root, k, v) {
		const char *key = scalar(k);
		int empty = v->type == YAML_SCALAR_NODE && !*scalar(v);
		int r = 0;
		if (!key)
			return fail(c, k, "keys must be plain words");
		if (strcmp(key, "name") == 0)
			r = name_field(c, v, "a rule name", c->d.name);
		else if (strcmp(key, "verdicts") == 0)
			r = empty ? 0 : parse_verdicts(c, v);
		else if (strcmp(key, "layers") == 0)
			r = parse_layers(c, v);
		else if (strcmp(key, "edges") == 0)
			edges = v; /* after layers, wherever it stands */
		else if (strcmp(key, "protocols") == 0)
			r = empty ? 0 : parse_protocols(c, v);
		else if (strcmp(key, "resources") == 0)
			r = empty ? 0 : parse_resources(c, v);
		else if (strcmp(key, "cfs") == 0)
			r = empty ? 0 : parse_cfs(c, v);
		else if (strcmp(key, "tasklets") == 0)
			r = empty ? 0 : parse_tasklets(c, v);
		else if (strcmp(key, "dynamic") == 0)
			dynamic = v; /* after verdicts: its rows come after theirs */
		else
			return fail(c, k, "unknown top-level field '%s' "
				    "(name, verdicts, layers, edges, protocols, resources, cfs, tasklets, dynamic)", key);
		if (r < 0)
			return -1;
	}
	if (dynamic && !(dynamic->type == YAML_SCALAR_NODE && !*scalar(dynamic)) &&
	    parse_dynamic(c, dynamic) < 0)
		return -1;
	if (edges)
		return parse_edges(c, edges);
	if (c->d.nlayers)
		return fail(c, root, "'layers' needs 'edges' (the calls the layer set allows)");
	return 0;
}

int gov_ruledoc_parse(const char *text, size_t len, const char *origin,
		      struct gov_ruledoc *out, char *err, size_t errlen)
{
	struct ctx c = { .origin = origin, .err = err, .errlen = errlen };
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	int rc;
	if (!yaml_parser_load(&parser, &c.doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: %s%s%s", origin, parser.problem_mark.line + 1,
			 parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error",
			 parser.context ? " " : "", parser.context ? parser.context : "");
		rc = -1;
	} else {
		rc = parse_doc(&c);
		yaml_document_delete(&c.doc);
	}
	yaml_parser_delete(&parser);
	if (rc == 0)
		*out = c.d;
	else
		gov_ruledoc_free(&c.d);
	return rc;
}

int gov_ruledoc_load(const char *path, struct gov_ruledoc *out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	char *text = NULL;
	size_t len = 0, cap = 0;
	for (size_t n = 1; n > 0;) {
		if (cap - len < 4096) {
			char *t = realloc(text, cap = cap ? cap * 2 : 8192);
			if (!t) {
				free(text);
				fclose(f);
				snprintf(err, errlen, "%s: out of memory", path);
				return -1;
			}
			text = t;
		}
		n = fread(text + len, 1, cap - len, f);
		len += n;
	}
	int bad = ferror(f);
	fclose(f);
	int rc = bad ? (snprintf(err, errlen, "%s: read error", path), -1)
		     : gov_ruledoc_parse(text, len, path, out, err, errlen);
	free(text);
	return rc;
}

void gov_ruledoc_free(struct gov_ruledoc *d)
{
	free(d->rows);
	free(d->row_resource);
	free(d->row_pos);
	free(d->row_to);
	free(d->layers);
	free(d->edges);
	free(d->protocols);
	free(d->cfs);
	free(d->tasklets);
	for (unsigned i = 0; i < d->nresources; i++) {
		free(d->resources[i].refs);
		free(d->resources[i].exports);
	}
	free(d->resources);
	free(d->dyn);
	memset(d, 0, sizeof *d);
}

int gov_verdicts_append(struct gov_verdicts *v, const struct gov_ruledoc *d,
			const char *resource)
{
	struct gov_decision *rows = realloc(v->rows, (v->nrows + d->nrows + 1) * sizeof *rows);
	if (!rows)
		return -1;
	v->rows = rows;
	struct gov_verdict_dyn *dyn = realloc(v->dyn, (v->ndyn + d->ndyn + 1) * sizeof *dyn);
	if (!dyn)
		return -1;
	v->dyn = dyn;
	unsigned *map = calloc(d->ndyn + 1, sizeof *map);
	if (!map)
		return -1;
	for (unsigned i = 0; i < d->ndyn; i++) {
		const struct gov_ruledoc_dynamic *e = &d->dyn[i];
		if (e->resource[0] && resource && strcmp(e->resource, resource) != 0)
			continue;
		map[i] = v->ndyn;
		struct gov_verdict_dyn *o = &v->dyn[v->ndyn++];
		memset(o, 0, sizeof *o);
		o->spec = e->spec;
		snprintf(o->spec.name, sizeof o->spec.name, "%.30s/%.31s", d->name[0] ? d->name : "rule",
			 e->spec.name);
		o->entry = i;
		snprintf(o->path, sizeof o->path, "%s", e->path);
		o->is_source = e->is_source;
	}
	for (unsigned i = 0; i < d->nrows; i++) {
		if (d->row_resource[i][0] && resource && strcmp(d->row_resource[i], resource) != 0)
			continue;
		v->rows[v->nrows] = d->rows[i];
		if (d->rows[i].action == GOV_ACT_RULE)
			v->rows[v->nrows].value = map[d->rows[i].value];
		v->nrows++;
	}
	free(map);
	return 0;
}

int gov_verdicts_load(const char *path, const char *resource,
		      struct gov_verdicts *out, char *err, size_t errlen)
{
	struct gov_ruledoc d;
	if (gov_ruledoc_load(path, &d, err, errlen) < 0)
		return -1;
	struct gov_verdicts v = { 0 };
	int rc = gov_verdicts_append(&v, &d, resource);
	gov_ruledoc_free(&d);
	if (rc < 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	*out = v;
	return 0;
}

void gov_verdicts_free(struct gov_verdicts *v)
{
	free(v->rows);
	free(v->dyn);
	v->dyn = NULL;
	v->ndyn = 0;
	v->rows = NULL;
	v->nrows = 0;
}
