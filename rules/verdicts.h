/* rules/verdicts.h - static verdict rules read from a YAML file.
 *
 *     verdicts:
 *       - function: unlink        # or  syscall: getppid
 *         action: deny            # native | deny | emulate | trace
 *         errno: EACCES           # deny only (default EPERM)
 *       - syscall: getuid
 *         action: emulate
 *         value: 0                # emulate only
 *         resource: billing       # optional: only that resource's agent
 *
 * Rows are tried in file order; the first that matches a site decides. The
 * schema is documented in docs/rules.md. A file that does not parse or
 * check is refused whole, with file:line:column and why. */
#ifndef GOV_RULES_VERDICTS_H
#define GOV_RULES_VERDICTS_H

#include <stddef.h>
#include "gov/region.h"

struct gov_verdicts {
	struct gov_decision *rows;
	unsigned nrows;
};

/* Loads path, keeping the rows for `resource` (rows without a resource
 * apply to every resource). Returns 0, or -1 with "path:line:col: why" in
 * err; *out is untouched on failure. */
int gov_verdicts_load(const char *path, const char *resource,
		      struct gov_verdicts *out, char *err, size_t errlen);
void gov_verdicts_free(struct gov_verdicts *v);

#endif
