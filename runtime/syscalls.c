/* runtime/syscalls.c - number <-> name for x86-64 Linux syscalls, from the
 * project's one table, include/gov/syscalls.def. */
#include <string.h>
#include "internal.h"

static const struct { int nr; const char *name; } table[] = {
#define GOV_SYSCALL_ENTRY(nr, name) { nr, #name },
#include "gov/syscalls.def"
#undef GOV_SYSCALL_ENTRY
};

const char *gov_syscall_name(int nr)
{
	for (size_t i = 0; i < GOV_ARRAY_LEN(table); i++)
		if (table[i].nr == nr)
			return table[i].name;
	return NULL;
}

int gov_syscall_number(const char *name)
{
	for (size_t i = 0; i < GOV_ARRAY_LEN(table); i++)
		if (strcmp(table[i].name, name) == 0)
			return table[i].nr;
	return -1;
}
