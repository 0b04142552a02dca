/* clang-plugin/tables.cc - the project's two syscall tables as lookups:
 * gov/libc.def (glibc's syscall wrappers, their type strings and return
 * conventions) and gov/syscalls.def (x86-64 numbers and names), and what
 * -gov-syscalls= selects. The same tables and rules as gcc-plugin/targets.cc.
 *
 * Not here: target globs (frontend.cc matches them on clang's declarations).
 */
#include "govintercept-llvm.h"
#include "gov/abi.h"

#include <cstring>

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

const gov_libc_entry *gov_libc_lookup(const std::string &name)
{
	static std::map<std::string, const gov_libc_entry *> by_name;
	if (by_name.empty())
		for (const gov_libc_entry &e : libc_table)
			by_name.emplace(e.name, &e);
	auto it = by_name.find(name);
	return it == by_name.end() ? nullptr : it->second;
}

/* The wrapper of syscall with exactly nparams parameters, whose type codes a
 * syscall(2) site borrows. */
const gov_libc_entry *gov_libc_for_syscall(const char *syscall, size_t nparams)
{
	for (const gov_libc_entry &e : libc_table)
		if (strcmp(e.syscall, syscall) == 0 && strlen(e.types) == nparams + 1 &&
		    !(e.flags & GOV_LIBC_VARIADIC))
			return &e;
	return nullptr;
}

int gov_syscall_number(const std::string &name)
{
	for (const auto &s : syscall_table)
		if (name == s.name)
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

bool gov_syscall_selected(int nr, const char *wrapper)
{
	switch (gov_opts.syscalls) {
	case GOV_SYSCALLS_NONE:
		return false;
	case GOV_SYSCALLS_ALL:
		return true;
	case GOV_SYSCALLS_LIST:
		break;
	}
	const char *name = nr >= 0 ? gov_syscall_name(nr) : nullptr;
	return (name && gov_opts.syscall_names.count(name)) ||
	       (wrapper && gov_opts.syscall_names.count(wrapper));
}
