/* gcc-plugin/targets.cc - which callees are sites.
 *
 * A call is a call site when its callee matches a target: a glob from
 * targets= or targets-file= (fnmatch(3), tried against the callee's
 * identifier, its qualified C++ name and its assembler name), or any
 * function declared in a targets-header= file. A call to a glibc syscall
 * wrapper (the libc table) is a site when syscalls= selects the syscall it
 * makes or the wrapper's name. Both tables are the project's own:
 * gov/libc.def (glibc's wrappers) and gov/syscalls.def.
 *
 * Not here: what a site looks like (site_table.cc) or how it is rewritten
 * (instrument_pass.cc).
 */
#include "govintercept.h"
#include "gov/abi.h"

/* ---- the tables ---- */

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

/* Asked for every call of the unit: a map, not a walk of 368 entries. */
const gov_libc_entry *gov_libc_lookup(const char *name)
{
	static std::map<std::string, const gov_libc_entry *> by_name;
	if (by_name.empty())
		for (const gov_libc_entry &e : libc_table)
			by_name.emplace(e.name, &e);
	auto it = by_name.find(name);
	return it == by_name.end() ? NULL : it->second;
}

/* The wrapper of syscall with exactly nparams parameters, to borrow its
 * type codes for a syscall(2) site. */
const gov_libc_entry *gov_libc_for_syscall(const char *syscall, size_t nparams)
{
	for (const gov_libc_entry &e : libc_table)
		if (strcmp(e.syscall, syscall) == 0 && strlen(e.types) == nparams + 1 &&
		    !(e.flags & GOV_LIBC_VARIADIC))
			return &e;
	return NULL;
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
	return NULL;
}

/* ---- targets ---- */

/* One flag per glob of gov_opts.targets: did it match anything here? */
static std::vector<bool> glob_matched;

static const std::string &canonical_path(const char *path)
{
	static std::map<std::string, std::string> cache;
	auto it = cache.find(path);
	if (it != cache.end())
		return it->second;
	char *real = realpath(path, NULL);
	std::string canon = real ? real : path;
	free(real);
	return cache.emplace(path, canon).first->second;
}

static bool has_wildcard(const std::string &glob)
{
	return glob.find_first_of("*?[") != std::string::npos;
}

bool gov_target_matches(tree fndecl, bool *named)
{
	*named = false;
	if (glob_matched.size() != gov_opts.targets.size())
		glob_matched.assign(gov_opts.targets.size(), false);

	std::string names[3];
	names[0] = IDENTIFIER_POINTER(DECL_NAME(fndecl));
	names[1] = gov_function_name(fndecl);
	const char *asmname = IDENTIFIER_POINTER(DECL_ASSEMBLER_NAME(fndecl));
	names[2] = asmname[0] == '*' ? asmname + 1 : asmname;

	bool hit = false;
	for (size_t i = 0; i < gov_opts.targets.size(); i++) {
		for (const std::string &n : names) {
			if (fnmatch(gov_opts.targets[i].c_str(), n.c_str(), 0) == 0) {
				glob_matched[i] = true;
				hit = true;
				*named |= !has_wildcard(gov_opts.targets[i]);
				break;
			}
		}
	}
	if (!gov_opts.headers.empty() && DECL_SOURCE_FILE(fndecl)) {
		const std::string &file = canonical_path(DECL_SOURCE_FILE(fndecl));
		for (const std::string &h : gov_opts.headers)
			hit |= file == h;
	}
	return hit;
}

std::vector<std::string> gov_unmatched_targets(void)
{
	std::vector<std::string> out;
	for (size_t i = 0; i < gov_opts.targets.size(); i++)
		if (i >= glob_matched.size() || !glob_matched[i])
			out.push_back(gov_opts.targets[i]);
	return out;
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
	const char *name = nr >= 0 ? gov_syscall_name(nr) : NULL;
	return (name && gov_opts.syscall_names.count(name)) ||
	       (wrapper && gov_opts.syscall_names.count(wrapper));
}

/* One glob per line; blank lines and # comments are skipped. */
bool gov_read_targets_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		error("%s: cannot read targets-file %qs: %s", GOV_PLUGIN_NAME, path,
		      xstrerror(errno));
		return false;
	}
	char line[4096];
	while (fgets(line, sizeof line, f)) {
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		char *hash = strchr(s, '#');
		if (hash)
			*hash = 0;
		size_t n = strlen(s);
		while (n && strchr(" \t\r\n", s[n - 1]))
			s[--n] = 0;
		if (n)
			gov_opts.targets.push_back(s);
	}
	bool ok = !ferror(f);
	if (!ok)
		error("%s: cannot read targets-file %qs: %s", GOV_PLUGIN_NAME, path,
		      xstrerror(errno));
	fclose(f);
	return ok;
}

/* check-libc: for each glibc wrapper the unit declares, the type string its
 * prototype gives (types.cc, the rules sites use) against gov/libc.def's.
 * A variadic wrapper is compared on its fixed parameters only. Called for
 * every declaration the front end finishes (PLUGIN_FINISH_DECL). */
void gov_check_libc_decl(tree decl)
{
	if (TREE_CODE(decl) != FUNCTION_DECL || !DECL_NAME(decl) || !TREE_PUBLIC(decl))
		return;
	const gov_libc_entry *e = gov_libc_lookup(IDENTIFIER_POINTER(DECL_NAME(decl)));
	tree fntype = TREE_TYPE(decl);
	if (!e || !prototype_p(fntype))
		return;
	const char *why = NULL;
	std::string mine = gov_prototype_types(fntype, &why);
	std::string table = e->types;
	if (stdarg_p(fntype))
		table = table.substr(0, mine.size());
	if (mine != table)
		warning_at(DECL_SOURCE_LOCATION(decl), 0, "%s: %qs: its prototype gives types "
			   "%qs, gov/libc.def says %qs", GOV_PLUGIN_NAME, e->name,
			   mine.empty() ? why : mine.c_str(), e->types);
}
