/* govctl/exportlist.c - the export list reader for `govctl register
 * --exports-file`: one function per line, `NAME TYPES`, optionally a TAB
 * and the C prototype; blank lines and lines starting with '#' are skipped
 * (docs/abi.md "Export lists" is the contract). Every problem is reported
 * as FILE:LINE:COL so a generated list can be fixed where it broke.
 *
 * Not for: storing the list (resources.c) or writing one (`govctl exports`
 * prints, libclang's tool generates).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "exportlist.h"
#include "gov/abi.h"
#include "gov/typestr.h"

int gov_export_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= GOV_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$@",
			    s[i]))
			return 0;
	return 1;
}

static int is_name_char(char c)
{
	return c && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$@", c);
}

static int type_code(char c)
{
	switch (c) {
#define GOV_TYPE(code, name, desc, class) case code:
#include "gov/types.def"
#undef GOV_TYPE
		return c != 'c' && c != 'h'; /* struct members only */
	}
	return 0;
}

/* NULL, or what is wrong with the type string t (*col: its offset). The
 * grammar (structs and their layout) is gov/typestr.h's one parser; the
 * codes are checked here, and the pairing of b/o parameters with z is left
 * to govrt (a b member's with its z is the parser's). */
static const char *check_types(const char *t, size_t n, size_t *col)
{
	char buf[GOV_TYPES_MAX];
	struct gov_typestr ts;
	const char *why;
	if (n >= sizeof buf) {
		*col = sizeof buf - 1;
		return "a type string is at most 47 characters";
	}
	memcpy(buf, t, n);
	buf[n] = 0;
	if (gov_typestr_parse(buf, &ts, &why, col) < 0)
		return strcmp(why, "more than 6 parameters") ? why
			: "more than six parameters (GOV_MAX_ARGS): list it as "
			  "'# skipped NAME: REASON'";
	for (unsigned i = 0; i < ts.n; i++) {
		*col = ts.at[i];
		if (!type_code(ts.top[i]))
			return "not a type code of gov/types.def";
		if (i > 0 && ts.top[i] == 'v')
			return "'v' (void) is a return type only";
	}
	*col = ts.at[0];
	if (ts.nptr && ts.ptr[0].item == 0)
		return "a returned struct cannot hold a string or buffer (s, b): its pointers "
		       "would point into the callee's memory";
	return NULL;
}

/* One line (without its newline); 0, or -1 with err filled. */
static int parse_line(const char *path, unsigned lineno, char *s, json_t *out, char *err,
		      size_t errlen)
{
	const char *why = NULL;
	size_t col = 0;
	char *p = s;
	while (is_name_char(*p))
		p++;
	size_t namelen = (size_t)(p - s);
	if (namelen == 0) {
		why = "expected a function name (letters, digits, _ . $ @)";
		goto bad;
	}
	if (*p != ' ' && *p != '\t') {
		col = namelen;
		why = *p ? "expected a space or a TAB after the name" : "the type string is missing";
		goto bad;
	}
	*p = '\0';
	if (!gov_export_name_ok(s)) {
		why = "not a function name (not starting with a digit, under 64 characters)";
		goto bad;
	}
	char *t = p + 1;
	while (*t == ' ' || *t == '\t')
		t++;
	char *e = t;
	while (*e && *e != ' ' && *e != '\t')
		e++;
	if (e == t) {
		col = (size_t)(t - s);
		why = "the type string is missing";
		goto bad;
	}
	why = check_types(t, (size_t)(e - t), &col);
	if (why) {
		col += (size_t)(t - s);
		goto bad;
	}
	const char *proto = NULL;
	if (*e == '\t' && e[1]) {
		proto = e + 1;
	} else if (*e == ' ' || (*e == '\t' && !e[1])) {
		char *q = e;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q) {
			col = (size_t)(e - s);
			why = "the prototype follows the types after one TAB";
			goto bad;
		}
	}
	*e = '\0';
	size_t i;
	json_t *v;
	json_array_foreach(out, i, v)
		if (strcmp(json_string_value(json_object_get(v, "name")), s) == 0) {
			why = "listed twice";
			goto bad;
		}
	json_t *o = json_pack("{s:s,s:s}", "name", s, "types", t);
	if (o && proto)
		json_object_set_new(o, "prototype", json_string(proto));
	if (!o || json_array_append_new(out, o) < 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "%s:%u:%zu: %s", path, lineno, col + 1, why);
	return -1;
}

json_t *gov_exportlist_read(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	json_t *out = json_array();
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned lineno = 0;
	int rc = 0;
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (memchr(line, '\0', (size_t)n)) {
			snprintf(err, errlen, "%s:%u:%zu: a NUL byte", path, lineno,
				 strlen(line) + 1);
			rc = -1;
			break;
		}
		const char *s = line + strspn(line, " \t");
		if (*s == '\0' || *s == '#')
			continue;
		if (s != line) {
			snprintf(err, errlen, "%s:%u:1: a line starts with the function name, "
				 "not with a space", path, lineno);
			rc = -1;
			break;
		}
		rc = parse_line(path, lineno, line, out, err, errlen);
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	free(line);
	fclose(f);
	if (rc < 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}
