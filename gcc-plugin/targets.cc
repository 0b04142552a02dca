/* gcc-plugin/targets.cc - which callees are sites.
 *
 * A call is a call site when its callee matches a target: a glob from
 * targets= or targets-file= (fnmatch(3), tried against the callee's
 * identifier, its qualified C++ name and its assembler name), or any
 * function declared in a targets-header= file. A call to a glibc syscall
 * wrapper (the libc table) is a site when syscalls= selects the syscall it
 * makes or the wrapper's name (the tables: plugin-common/tables.cc).
 *
 * Not here: what a site looks like (site_table.cc) or how it is rewritten
 * (instrument_pass.cc).
 */
#include "govintercept.h"
#include "gov/abi.h"

/* ---- targets ---- */

/*
 * Every call of the unit asks whether its callee is a target, and a
 * project's list can be every function libc exports (~2600 names). So the
 * targets are split once: a name without wildcards goes into a hash map
 * (most lists are plain names), only real globs are tried with fnmatch(3),
 * and the answer is remembered per callee (by DECL_UID, which GCC never
 * reuses), so each function is matched once per unit however often it is
 * called.
 */
struct match {
	bool hit, named;
};

static struct {
	size_t ntargets = (size_t)-1;                            /* built for */
	std::unordered_map<std::string, std::vector<size_t>> plain;  /* name -> targets[i] */
	std::vector<size_t> globs;                               /* wildcard targets */
	std::unordered_map<unsigned, match> by_uid;              /* callee -> answer */
	std::vector<bool> matched;                               /* per target */
} tset;

static bool has_wildcard(const std::string &glob)
{
	return glob.find_first_of("*?[\\") != std::string::npos;
}

void gov_add_target(const std::string &glob, gov_target_origin origin)
{
	gov_opts.targets.push_back(glob);
	gov_opts.target_origins.push_back(origin);
}

static void build_target_set(void)
{
	if (tset.ntargets == gov_opts.targets.size())
		return;
	tset.plain.clear();
	tset.globs.clear();
	tset.by_uid.clear();
	for (size_t i = 0; i < gov_opts.targets.size(); i++) {
		if (has_wildcard(gov_opts.targets[i]))
			tset.globs.push_back(i);
		else
			tset.plain[gov_opts.targets[i]].push_back(i);
	}
	tset.matched.assign(gov_opts.targets.size(), false);
	tset.ntargets = gov_opts.targets.size();
}

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

static void mark_plain(const std::string &name, match *m)
{
	auto it = tset.plain.find(name);
	if (it == tset.plain.end())
		return;
	for (size_t i : it->second)
		tset.matched[i] = true;
	m->hit = m->named = true;
}

static match match_decl(tree fndecl)
{
	match m = { false, false };
	std::string names[3];
	names[0] = IDENTIFIER_POINTER(DECL_NAME(fndecl));
	names[1] = gov_function_name(fndecl);
	const char *asmname = IDENTIFIER_POINTER(DECL_ASSEMBLER_NAME(fndecl));
	names[2] = asmname[0] == '*' ? asmname + 1 : asmname;

	for (const std::string &n : names)
		mark_plain(n, &m);
	for (size_t i : tset.globs) {
		for (const std::string &n : names) {
			if (fnmatch(gov_opts.targets[i].c_str(), n.c_str(), 0) == 0) {
				tset.matched[i] = true;
				m.hit = true;
				break;
			}
		}
	}
	if (!gov_opts.headers.empty() && DECL_SOURCE_FILE(fndecl)) {
		const std::string &file = canonical_path(DECL_SOURCE_FILE(fndecl));
		for (size_t i = 0; i < gov_opts.headers.size(); i++)
			if (file == gov_opts.headers[i]) {
				m.hit = true;
				gov_opts.header_matched[i] = true;
			}
	}
	return m;
}

bool gov_target_matches(tree fndecl, bool *named)
{
	build_target_set();
	auto it = tset.by_uid.find(DECL_UID(fndecl));
	if (it == tset.by_uid.end())
		it = tset.by_uid.emplace(DECL_UID(fndecl), match_decl(fndecl)).first;
	*named = it->second.named;
	return it->second.hit;
}

std::vector<std::string> gov_unmatched_targets(gov_target_origin origin)
{
	build_target_set();
	std::vector<std::string> out;
	for (size_t i = 0; i < gov_opts.targets.size(); i++)
		if (!tset.matched[i] && gov_opts.target_origins[i] == origin)
			out.push_back(gov_opts.targets[i]);
	return out;
}

bool gov_syscall_selected(int nr, const char *wrapper)
{
	return gov_syscall_in(gov_opts.syscalls, gov_opts.syscall_names, nr, wrapper);
}

bool gov_load_targets_file(const char *path)
{
	std::vector<std::string> globs;
	if (!gov_read_targets_file(path, &globs)) {
		error("%s: cannot read targets-file %qs: %s", GOV_PLUGIN_NAME, path,
		      xstrerror(errno));
		return false;
	}
	for (const std::string &g : globs)
		gov_add_target(g, GOV_TARGET_FROM_FILE);
	return true;
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

/* ---- exports-of: every function another registered resource exports ---- */

/*
 * exports-of=RESOURCE asks govctl for the resource's export list
 * (`govctl [--store URL] exports RESOURCE`, docs/abi.md "Export lists") and
 * makes each function in it a target: the `NAME TYPES` lines and the
 * `# untyped NAME` lines govctl writes for names registered without a
 * signature. The plugin computes each site's types from the prototype it
 * sees, as for any target. govctl is the one given by govctl=, else the one
 * installed beside the plugin (PREFIX/lib/gcc-plugin -> PREFIX/bin, and
 * build/lib -> build/bin), else the first on PATH.
 */
static bool load_exports_of(const std::string &resource, const std::string &govctl)
{
	std::vector<std::string> names;
	std::string why;
	bool not_run;
	if (!gov_exported_names(govctl, gov_opts.store, resource, &names, &why, &not_run)) {
		if (not_run)
			error("%s: exports-of=%s: %s (give its path with -fplugin-arg-%s-govctl=PATH)",
			      GOV_PLUGIN_NAME, resource.c_str(), why.c_str(), GOV_PLUGIN_NAME);
		else
			error("%s: exports-of=%s: %s", GOV_PLUGIN_NAME, resource.c_str(), why.c_str());
		return false;
	}
	for (const std::string &n : names)
		gov_add_target(n, GOV_TARGET_FROM_EXPORTS);
	return true;
}

bool gov_load_exports(const char *plugin_path)
{
	if (gov_opts.exports_of.empty())
		return true;
	std::string dir = plugin_path;
	std::string govctl = gov_find_govctl(gov_opts.govctl, dir.substr(0, dir.find_last_of('/') + 1));
	bool ok = true;
	for (const std::string &r : gov_opts.exports_of)
		ok &= load_exports_of(r, govctl);
	return ok;
}
