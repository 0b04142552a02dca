/* rules/verdicts.c - reads the static verdict rules of a YAML file
 * (rules/verdicts.h) with libyaml's document loader, which keeps the line
 * and column of every node for error messages. It checks every field before
 * it returns anything. It is not the rule store (that is issue #3's
 * store.c); an agent reads a file through this until the store exists. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "verdicts.h"
#include "../runtime/internal.h"

struct ctx {
	const char *path;
	yaml_document_t doc;
	char *err;
	size_t errlen;
};

static int fail(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s:%zu:%zu: %s", c->path,
		 n ? n->start_mark.line + 1 : 1, n ? n->start_mark.column + 1 : 1, why);
	return -1;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int parse_long(struct ctx *c, const yaml_node_t *n, const char *field, long long *out)
{
	const char *s = scalar(n);
	char *end;
	if (!s)
		return fail(c, n, "field '%s' must be an integer", field);
	errno = 0;
	*out = strtoll(s, &end, 0);
	if (errno || !*s || *end)
		return fail(c, n, "field '%s': '%s' is not an integer", field, s);
	return 0;
}

static int parse_row(struct ctx *c, yaml_node_t *item, const char *resource,
		     struct gov_decision *row, int *keep)
{
	if (item->type != YAML_MAPPING_NODE)
		return fail(c, item, "a verdict rule must be a mapping (function/syscall, action, ...)");
	memset(row, 0, sizeof *row);
	*keep = 1;
	const yaml_node_t *action_node = NULL, *errno_node = NULL, *value_node = NULL;
	for (yaml_node_pair_t *p = item->data.mapping.pairs.start;
	     p < item->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&c->doc, p->value);
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
				return fail(c, v, "unknown action '%s' (native, deny, emulate, trace)", val);
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
			*keep = !resource || strcmp(val, resource) == 0;
		} else {
			return fail(c, k, "unknown field '%s' in a verdict rule "
				    "(function, syscall, action, errno, value, resource)", key);
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
	if (row->action == GOV_ACT_DENY && !row->err)
		row->err = EPERM;
	return 0;
}

static int parse_doc(struct ctx *c, const char *resource, struct gov_verdicts *out)
{
	yaml_node_t *root = yaml_document_get_root_node(&c->doc);
	if (!root) {
		out->rows = NULL;
		out->nrows = 0;
		return 0; /* an empty file: no rules */
	}
	if (root->type != YAML_MAPPING_NODE)
		return fail(c, root, "the top level must be a mapping with the key 'verdicts'");
	yaml_node_t *list = NULL;
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
	     p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
		const char *key = scalar(k);
		if (!key || strcmp(key, "verdicts") != 0)
			return fail(c, k, "unknown top-level field '%s' (expected 'verdicts')",
				    key ? key : "?");
		list = yaml_document_get_node(&c->doc, p->value);
	}
	if (!list || (list->type != YAML_SEQUENCE_NODE &&
		      !(list->type == YAML_SCALAR_NODE && !*scalar(list))))
		return fail(c, list ? list : root, "'verdicts' must be a list of rules");
	size_t n = list->type == YAML_SEQUENCE_NODE
		? (size_t)(list->data.sequence.items.top - list->data.sequence.items.start) : 0;
	struct gov_decision *rows = calloc(n ? n : 1, sizeof *rows);
	if (!rows)
		return fail(c, list, "out of memory");
	unsigned kept = 0;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = yaml_document_get_node(&c->doc, list->data.sequence.items.start[i]);
		int keep = 1;
		if (parse_row(c, item, resource, &rows[kept], &keep) < 0) {
			free(rows);
			return -1;
		}
		kept += (unsigned)keep;
	}
	out->rows = rows;
	out->nrows = kept;
	return 0;
}

int gov_verdicts_load(const char *path, const char *resource,
		      struct gov_verdicts *out, char *err, size_t errlen)
{
	struct ctx c = { .path = path, .err = err, .errlen = errlen };
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	int rc;
	if (!yaml_parser_load(&parser, &c.doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: %s%s%s", path, parser.problem_mark.line + 1,
			 parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error",
			 parser.context ? " " : "", parser.context ? parser.context : "");
		rc = -1;
	} else {
		struct gov_verdicts v;
		rc = parse_doc(&c, resource, &v);
		if (rc == 0)
			*out = v;
		yaml_document_delete(&c.doc);
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

void gov_verdicts_free(struct gov_verdicts *v)
{
	free(v->rows);
	v->rows = NULL;
	v->nrows = 0;
}
