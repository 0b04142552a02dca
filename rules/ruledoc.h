/* rules/ruledoc.h - a rule document: what a person writes in a rule file
 * and `govctl rule publish` stores as one immutable version.
 *
 *     name: billing-policy          # the rule's name (else the file's base name)
 *     verdicts:                     # verdict rules on sites and syscalls
 *       - function: unlink          #   or  syscall: getppid
 *         action: deny              #   native | deny | emulate | trace | forward
 *         errno: EACCES             #   deny only (default EPERM)
 *         resource: billing         #   optional: only that resource's agent
 *       - syscall: getuid
 *         action: emulate
 *         value: 0                  #   emulate only
 *       - function: nd_send
 *         action: forward           #   run it in another resource (docs/xcall.md)
 *         to: net-driver            #   forward only; default: the resource exporting it
 *     layers: [application, service, driver, hardware]   # a layer set ...
 *     edges:                        # ... and the calls it allows, acyclic
 *       - [application, service]
 *     protocols:                    # the protocol of an edge between resources
 *       - {from: httpclient, to: net-service, protocol: msgqueue}  # shm | msgqueue | unix | tcp
 *                                   #   tcp may add address: HOST:PORT (the callee agent's)
 *     cfs:                          # weights of callers of a callee (docs/cfs.md)
 *       - {from: billing, to: db-service, weight: 2048}   # default weight 1024
 *     tasklets:                     # deferred calls run by the agent (docs/tasklet.md)
 *       - {name: rx, function: nd_rx_bh, resource: net-driver}
 *     resources:                    # resources to register (checked like govctl register)
 *       - {name: vim, type: application, refs: [file-system], privilege: user, exports: []}
 *     dynamic:                      # dynamic rules (docs/dynrules.md)
 *       - name: guard
 *         mode: ebpf                #   ebpf | wasm
 *         source: guard.c           #   or object: guard.bpf.o (relative to the file)
 *         attach: [{syscall: write}, {function: unlink}]
 *         placement: process        #   agent (default) | process (ebpf only)
 *         fail: deny                #   native (default) | deny | emulate, with errno / value
 *         max_faults: 10            #   disabled after that many; 0 = never
 *
 * Every section is optional. Rows are tried in order; the first that matches
 * a site decides. A document that does not parse or check is refused whole
 * with ORIGIN:LINE:COLUMN and why. Schema: docs/rules.md. */
#ifndef GOV_RULES_RULEDOC_H
#define GOV_RULES_RULEDOC_H

#include <stddef.h>
#include "gov/region.h"
#include "gov/dynrule.h"

#define GOV_RULE_NAME_MAX 64

/* Where in the document something was written, for errors found later
 * (e.g. by govctl, which knows which resources exist). */
struct gov_ruledoc_pos {
	unsigned line, column;
};

struct gov_ruledoc_protocol {
	char from[GOV_NAME_MAX], to[GOV_NAME_MAX];
	char protocol[16];
	char address[96];                   /* tcp: the callee agent's HOST:PORT, or "" */
	struct gov_ruledoc_pos pos;
};

/* One entry of `cfs:`: the callee's agent dispatches forwarded calls in
 * order of weighted virtual runtime; from's weight there (docs/cfs.md). */
#define GOV_CFS_WEIGHT_DEFAULT 1024u
#define GOV_CFS_WEIGHT_MAX 1048576u
struct gov_ruledoc_cfs {
	char from[GOV_NAME_MAX], to[GOV_NAME_MAX];
	unsigned weight;                    /* 1 .. GOV_CFS_WEIGHT_MAX */
	struct gov_ruledoc_pos pos;
};

/* One entry of `tasklets:`: a forwarded call of function is answered at
 * once and run later by the agent, one at a time per name (docs/tasklet.md). */
struct gov_ruledoc_tasklet {
	char name[GOV_NAME_MAX], function[GOV_NAME_MAX];
	char resource[GOV_NAME_MAX];        /* "" = every agent */
	struct gov_ruledoc_pos pos;
};

struct gov_ruledoc_resource {
	char name[GOV_NAME_MAX], type[GOV_NAME_MAX];
	char (*refs)[GOV_NAME_MAX];
	unsigned nrefs;
	char (*exports)[GOV_NAME_MAX];
	unsigned nexports;
	int kernel;                         /* privilege: kernel (else user) */
	/* calls its serving processes may each run at once (docs/xcall.md
	 * "Several calls in one serving process"); 0 = not said: one */
	unsigned concurrency;
	struct gov_ruledoc_pos pos;
};
#define GOV_RULEDOC_CONCURRENCY_MAX 64

/* One entry of `dynamic:`. Its attach rows are rows of the document with
 * action GOV_ACT_RULE and value = the entry's index. */
struct gov_ruledoc_dynamic {
	struct gov_dyn_spec spec;           /* name is the entry's own name */
	char path[512];                     /* source or object, as written */
	int is_source;
	char resource[GOV_NAME_MAX];        /* "" = every agent */
	struct gov_ruledoc_pos pos;         /* of the entry */
};

struct gov_ruledoc {
	char name[GOV_RULE_NAME_MAX];       /* "" if the document names none */
	struct gov_decision *rows;
	char (*row_resource)[GOV_NAME_MAX]; /* per row: its resource, or "" */
	struct gov_ruledoc_pos *row_pos;    /* per row: where its resource was named */
	char (*row_to)[GOV_NAME_MAX];       /* per row: forward's callee resource, or "" */
	unsigned nrows;
	char (*layers)[GOV_NAME_MAX];
	unsigned nlayers;
	unsigned (*edges)[2];               /* indexes into layers */
	unsigned nedges;
	struct gov_ruledoc_protocol *protocols;
	unsigned nprotocols;
	struct gov_ruledoc_cfs *cfs;
	unsigned ncfs;
	struct gov_ruledoc_tasklet *tasklets;
	unsigned ntasklets;
	struct gov_ruledoc_resource *resources;
	unsigned nresources;
	struct gov_ruledoc_dynamic *dyn;
	unsigned ndyn;
};

/* Parses len bytes of YAML text; origin names it in errors. Returns 0, or -1
 * with "origin:line:col: why" in err and *out untouched. */
int gov_ruledoc_parse(const char *text, size_t len, const char *origin,
		      struct gov_ruledoc *out, char *err, size_t errlen);
/* Reads and parses a file. */
int gov_ruledoc_load(const char *path, struct gov_ruledoc *out, char *err, size_t errlen);
void gov_ruledoc_free(struct gov_ruledoc *d);

/* A dynamic rule routed to an agent: its spec (name "RULE/ENTRY") and
 * where its object is (entry `entry` of the document it came from). */
struct gov_verdict_dyn {
	struct gov_dyn_spec spec;
	unsigned entry;
	char path[512];                     /* source or object, as written */
	int is_source;
};

/* The verdict rows of a document that apply to one resource, and the
 * dynamic rules they run (a GOV_ACT_RULE row's value indexes dyn). */
struct gov_verdicts {
	struct gov_decision *rows;
	unsigned nrows;
	struct gov_verdict_dyn *dyn;
	unsigned ndyn;
};
/* Appends to *v the rows of d for resource (rows without a resource apply
 * to all), and its dynamic entries for resource with their rows' values
 * renumbered. Returns 0 or -1 (out of memory). */
int gov_verdicts_append(struct gov_verdicts *v, const struct gov_ruledoc *d,
			const char *resource);
/* A file's rows for resource, in one call (govagent --rules). */
int gov_verdicts_load(const char *path, const char *resource,
		      struct gov_verdicts *out, char *err, size_t errlen);
void gov_verdicts_free(struct gov_verdicts *v);

#endif
