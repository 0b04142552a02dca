/* plugin-common/tables.cc - the project's two syscall tables as lookups for
 * both plugins: gov/libc.def (glibc's syscall wrappers, their type strings
 * and return conventions) and gov/syscalls.def (x86-64 numbers and names),
 * and what a syscalls= selection takes.
 *
 * Not here: target globs (each plugin matches them on its own declarations).
 */
#include "plugin_common.h"
#include "gov/abi.h"

#include <cstring>
#include <map>

static const gov_libc_entry libc_table[] = {
#define GOV_LIBC_ENTRY(name, syscall, types, ret_conv, flags) \
	{ #name, #syscall, types, ret_conv, flags },
#include "gov/libc.def"
#undef GOV_LIBC_ENTRY
};

static const struct {
	int nr;
	const char *name;
} syscall_table[] = {
#define GOV_SYSCALL_ENTRY(nr, name) { nr, #name },
#include "gov/syscalls.def"
#undef GOV_SYSCALL_ENTRY
};

/* Asked for every call of a unit: a map, not a walk of the whole table. */
const gov_libc_entry *gov_libc_lookup(const char *name)
{
	static std::map<std::string, const gov_libc_entry *> by_name;
	if (by_name.empty())
		for (const gov_libc_entry &e : libc_table)
			by_name.emplace(e.name, &e);
	auto it = by_name.find(name);
	return it == by_name.end() ? nullptr : it->second;
}

const gov_libc_entry *gov_libc_for_syscall(const char *syscall, size_t nparams)
{
	for (const gov_libc_entry &e : libc_table)
		if (strcmp(e.syscall, syscall) == 0 && strlen(e.types) == nparams + 1 &&
		    !(e.flags & GOV_LIBC_VARIADIC))
			return &e;
	return nullptr;
}

int gov_syscall_number(const char *name)
{
	for (const auto &s : syscall_table)
		if (strcmp(s.name, name) == 0)
			return s.nr;
	return -1;
}

const char *gov_syscall_name(int nr)
{
	for (const auto &s : syscall_table)
		if (s.nr == nr)
			return s.name;
	return nullptr;
}

bool gov_syscall_in(gov_syscall_mode mode, const std::set<std::string> &names, int nr,
		    const char *wrapper)
{
	switch (mode) {
	case GOV_SYSCALLS_NONE:
		return false;
	case GOV_SYSCALLS_ALL:
		return true;
	case GOV_SYSCALLS_LIST:
		break;
	}
	const char *name = nr >= 0 ? gov_syscall_name(nr) : nullptr;
	return (name && names.count(name)) || (wrapper && names.count(wrapper));
}
