/* tests/clang-plugin/dumpsites.c - linked into a test program (built
 * without a plugin): with GOV_DUMP_SITES set, prints every record of the
 * module's site table, one line each, and exits before main. Used to check
 * that gcc and clang emit the same records (types, ret_conv, sysno, ...). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include "gov/abi.h"

extern struct gov_site __start_gov_sites[] __attribute__((weak, visibility("hidden")));
extern struct gov_site __stop_gov_sites[] __attribute__((weak, visibility("hidden")));

__attribute__((constructor(101))) static void dump_sites(void)
{
	if (!getenv("GOV_DUMP_SITES"))
		return;
	for (struct gov_site *s = __start_gov_sites; s < __stop_gov_sites; s++)
		printf("%016" PRIx64 " kind=%u ret=%u n=%u sysno=%d %s %s %s %s:%u\n", s->id,
		       s->kind, s->ret_conv, s->nparams, s->sysno, s->caller, s->callee,
		       s->types, s->file, s->line);
	exit(0);
}
