/* tests/t_rules.c - the verdict rule file: what it accepts, and every
 * malformed file refused with file:line:column and why, returning nothing. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "ruledoc.h"
#include "internal.h"
#include "tap.h"

static char path[] = "/tmp/govrules.XXXXXX";
static char err[512];

static int load(const char *text, const char *resource, struct gov_verdicts *v)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	err[0] = 0;
	return gov_verdicts_load(path, resource, v, err, sizeof err);
}

static void good(void)
{
	struct gov_verdicts v;
	int r = load("# comment\n"
		     "verdicts:\n"
		     "  - function: unlink\n"
		     "    action: deny\n"
		     "    errno: EACCES\n"
		     "  - syscall: getppid\n"
		     "    action: emulate\n"
		     "    value: -5\n"
		     "  - function: send\n"
		     "    action: trace\n"
		     "    resource: other\n"
		     "  - syscall: read\n"
		     "    action: deny\n", "app", &v);
	ok(r == 0, "a good file loads (%s)", err);
	is_long(v.nrows, 3, "the row for another resource is left out");
	ok(v.rows[0].match == GOV_MATCH_FUNCTION && strcmp(v.rows[0].name, "unlink") == 0 &&
	   v.rows[0].action == GOV_ACT_DENY && v.rows[0].err == EACCES, "deny with an errno name");
	ok(v.rows[1].match == GOV_MATCH_SYSCALL && v.rows[1].sysno == SYS_getppid &&
	   v.rows[1].value == -5, "emulate on a syscall by name");
	is_long(v.rows[2].err, EPERM, "deny without errno means EPERM");
	gov_verdicts_free(&v);
	ok(load("", "app", &v) == 0 && v.nrows == 0, "an empty file is no rules");
	ok(load("verdicts: []\n", "app", &v) == 0 && v.nrows == 0, "an empty list is no rules");
}

struct bad { const char *what, *text, *where, *why; };

static void bad(void)
{
	static const struct bad cases[] = {
		{ "a syntax error", "verdicts:\n  - function: [x\n", ":3:", "" },
		{ "an unknown top-level field", "rules: []\n", ":1:1:", "unknown top-level field 'rules'" },
		{ "a list that is a mapping", "verdicts:\n  a: b\n", ":2:3:", "must be a list" },
		{ "protocols that are not a list", "protocols: shm\n", ":1:12:",
		  "'protocols' must be a list of {from, to, protocol}" },
		{ "a protocol rule that is not a mapping", "protocols:\n  - shm\n", ":2:5:",
		  "a protocol rule is a mapping {from, to, protocol}" },
		{ "resources that are not a list", "resources: {a: b}\n", ":1:12:",
		  "'resources' must be a list of {name, type, refs, privilege, exports, concurrency}" },
		{ "a resource that is not a mapping", "resources:\n  - nic\n", ":2:5:",
		  "a resource is a mapping {name, type, refs, privilege, exports, concurrency}" },
		{ "dynamic rules that are not a list", "dynamic: x\n", ":1:10:",
		  "'dynamic' must be a list of dynamic rules" },
		{ "an unknown field", "verdicts:\n  - function: f\n    action: deny\n    colour: red\n",
		  ":4:5:", "unknown field 'colour'" },
		{ "an unknown action", "verdicts:\n  - function: f\n    action: zap\n", ":3:13:", "unknown action 'zap'" },
		{ "an unknown syscall", "verdicts:\n  - syscall: frobnicate\n    action: deny\n", ":2:14:",
		  "unknown syscall 'frobnicate'" },
		{ "an unknown errno", "verdicts:\n  - function: f\n    action: deny\n    errno: EWHAT\n",
		  ":4:12:", "unknown errno 'EWHAT'" },
		{ "a value that is not a number", "verdicts:\n  - function: f\n    action: emulate\n    value: ten\n",
		  ":4:12:", "'ten' is not an integer" },
		{ "a value of the wrong type", "verdicts:\n  - function: f\n    action: emulate\n    value: [1]\n",
		  ":4:12:", "must be a single value" },
		{ "errno on a non-deny rule", "verdicts:\n  - function: f\n    action: trace\n    errno: EIO\n",
		  ":4:12:", "only goes with action deny" },
		{ "a rule without action", "verdicts:\n  - function: f\n", ":2:5:", "needs 'action'" },
		{ "a rule without a target", "verdicts:\n  - action: deny\n", ":2:5:", "needs 'function' or 'syscall'" },
		{ "both function and syscall", "verdicts:\n  - function: f\n    syscall: read\n    action: deny\n",
		  ":3:5:", "not both" },
		{ "a bad resource name", "verdicts:\n  - function: f\n    action: deny\n    resource: a/b\n",
		  ":4:15:", "not a resource name" },
		{ "a rule that is not a mapping", "verdicts:\n  - deny everything\n", ":2:5:", "must be a mapping" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct gov_verdicts v = { .rows = (void *)0x1, .nrows = 42 };
		int r = load(cases[i].text, "app", &v);
		ok(r < 0 && strstr(err, path) && strstr(err, cases[i].where) && strstr(err, cases[i].why),
		   "%s is refused with where and why", cases[i].what);
		if (r == 0 || !strstr(err, cases[i].where) || !strstr(err, cases[i].why))
			diag("error was: %s", err);
		ok(v.rows == (void *)0x1 && v.nrows == 42, "and nothing is returned");
	}
	struct gov_verdicts v;
	ok(gov_verdicts_load("/nonexistent/r.yaml", "app", &v, err, sizeof err) < 0 &&
	   strstr(err, "cannot open"), "a missing file is refused");
}

static int parse(const char *text, struct gov_ruledoc *d)
{
	err[0] = 0;
	return gov_ruledoc_parse(text, strlen(text), "doc.yaml", d, err, sizeof err);
}

static void documents(void)
{
	struct gov_ruledoc d;
	int r = parse("name: paper\n"
		      "layers: [app, svc, drv, hw]\n"
		      "edges:\n  - [app, svc]\n  - [svc, drv]\n  - [drv, hw]\n"
		      "protocols:\n  - {from: vim, to: file-system, protocol: msgqueue}\n"
		      "verdicts:\n  - function: f\n    action: trace\n    resource: vim\n", &d);
	ok(r == 0, "a document with every section parses (%s)", err);
	ok(strcmp(d.name, "paper") == 0 && d.nlayers == 4 && d.nedges == 3 && d.nprotocols == 1 &&
	   d.nrows == 1, "and keeps each of them");
	ok(d.edges[1][0] == 1 && d.edges[1][1] == 2, "edges refer to layers by position");
	ok(strcmp(d.protocols[0].protocol, "msgqueue") == 0 && d.protocols[0].pos.line == 8,
	   "a protocol rule records where it was written");
	ok(strcmp(d.row_resource[0], "vim") == 0 && d.row_pos[0].line == 12 && d.row_pos[0].column == 15,
	   "a verdict's resource records its line and column, for checks against the store");
	struct gov_verdicts v = { 0 };
	gov_verdicts_append(&v, &d, "other");
	is_long(v.nrows, 0, "rows of another resource are not an agent's");
	gov_verdicts_append(&v, &d, "vim");
	is_long(v.nrows, 1, "rows of its own are");
	gov_verdicts_free(&v);
	gov_ruledoc_free(&d);

	static const struct bad docs[] = {
		{ "a cycle in the layer set", "layers: [a, b, c]\nedges:\n  - [a, b]\n  - [b, c]\n  - [c, a]\n",
		  "doc.yaml:3:3:", "cycle in the layer set: a -> b -> c -> a" },
		{ "an edge to an unknown layer", "layers: [a, b]\nedges:\n  - [a, z]\n", ":3:9:",
		  "'z' is not one of the layers" },
		{ "edges without layers", "edges:\n  - [a, b]\n", ":2:3:", "needs a 'layers' list" },
		{ "layers without edges", "layers: [a, b]\n", ":1:1:", "'layers' needs 'edges'" },
		{ "a layer listed twice", "layers: [a, a]\nedges: []\n", ":1:13:", "listed twice" },
		{ "an edge that is not a pair", "layers: [a, b]\nedges:\n  - [a]\n", ":3:5:", "a pair" },
		{ "an unknown protocol", "protocols:\n  - {from: a, to: b, protocol: carrier-pigeon}\n",
		  ":2:32:", "unknown protocol 'carrier-pigeon'" },
		{ "a protocol rule without its protocol", "protocols:\n  - {from: a, to: b}\n", ":2:5:",
		  "needs from, to and protocol" },
		{ "a bad rule name", "name: \"no spaces\"\n", ":1:7:", "a rule name must be" },
	};
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		struct gov_ruledoc x = { .nrows = 42 };
		int rc = parse(docs[i].text, &x);
		ok(rc < 0 && strstr(err, docs[i].where) && strstr(err, docs[i].why),
		   "%s is refused with where and why", docs[i].what);
		if (rc == 0 || !strstr(err, docs[i].where) || !strstr(err, docs[i].why))
			diag("error was: %s", err);
		ok(x.nrows == 42 && !x.rows, "and nothing is returned");
	}
}

static void examples(void)
{
	DIR *d = opendir(RULES_EXAMPLES);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		if (!strstr(e->d_name, ".yaml"))
			continue;
		char p[1024];
		struct gov_ruledoc d;
		snprintf(p, sizeof p, "%s/%s", RULES_EXAMPLES, e->d_name);
		err[0] = 0;
		ok(gov_ruledoc_load(p, &d, err, sizeof err) == 0 && (d.nrows > 0 || d.nlayers > 0),
		   "example %s loads (%s)", e->d_name, err);
		gov_ruledoc_free(&d);
		n++;
	}
	if (d)
		closedir(d);
	ok(n >= 2, "the examples were found (%d)", n);
}

int main(void)
{
	int fd = mkstemp(path);
	close(fd);
	good();
	bad();
	documents();
	examples();
	unlink(path);
	return done_testing();
}
