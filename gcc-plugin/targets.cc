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
			gov_add_target(s, GOV_TARGET_FROM_FILE);
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
static std::string find_govctl(const char *plugin_path)
{
	if (!gov_opts.govctl.empty())
		return gov_opts.govctl;
	std::string dir = plugin_path;
	dir = dir.substr(0, dir.find_last_of('/') + 1);
	for (const char *rel : { "../bin/govctl", "../../bin/govctl" }) {
		std::string p = dir + rel;
		if (access(p.c_str(), X_OK) == 0)
			return p;
	}
	return "govctl";   /* execvp searches PATH */
}

/* Runs argv, returns its exit status (-1: could not run it, errno set) and
 * what it printed on stdout and stderr. */
static int run_capture(const std::vector<std::string> &args, std::string *out, std::string *err)
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]);
		close(po[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		std::vector<char *> argv;
		for (const std::string &a : args)
			argv.push_back(const_cast<char *>(a.c_str()));
		argv.push_back(NULL);
		execvp(argv[0], argv.data());
		dprintf(2, "%s", xstrerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	if (pid < 0) {
		int e = errno;
		close(po[0]);
		close(pe[0]);
		errno = e;
		return -1;
	}
	/* stderr is small; read stdout to the end first, then stderr */
	char buf[4096];
	ssize_t n;
	while ((n = read(po[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			out->append(buf, n);
	while ((n = read(pe[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			err->append(buf, n);
	close(po[0]);
	close(pe[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static std::string trim(const std::string &s)
{
	size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
	return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

static bool load_exports_of(const std::string &resource, const std::string &govctl)
{
	std::vector<std::string> args = { govctl };
	if (!gov_opts.store.empty()) {
		args.push_back("--store");
		args.push_back(gov_opts.store);
	}
	args.push_back("exports");
	args.push_back(resource);
	std::string out, err;
	int rc = run_capture(args, &out, &err);
	if (rc == 127 || rc < 0) {
		error("%s: exports-of=%s: cannot run %qs: %s (give its path with "
		      "-fplugin-arg-%s-govctl=PATH)", GOV_PLUGIN_NAME, resource.c_str(),
		      govctl.c_str(), rc < 0 ? xstrerror(errno) : trim(err).c_str(), GOV_PLUGIN_NAME);
		return false;
	}
	if (rc != 0) {
		error("%s: exports-of=%s: %s exited with %d: %s", GOV_PLUGIN_NAME, resource.c_str(),
		      govctl.c_str(), rc, trim(err).c_str());
		return false;
	}
	size_t at = 0;
	while (at < out.size()) {
		size_t nl = out.find('\n', at);
		std::string line = out.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
		at = nl == std::string::npos ? out.size() : nl + 1;
		std::string name;
		if (line.compare(0, 10, "# untyped ") == 0)
			name = trim(line.substr(10));
		else if (!line.empty() && line[0] != '#')
			name = line.substr(0, line.find_first_of(" \t"));
		if (!name.empty())
			gov_add_target(name, GOV_TARGET_FROM_EXPORTS);
	}
	return true;
}

bool gov_load_exports(const char *plugin_path)
{
	if (gov_opts.exports_of.empty())
		return true;
	std::string govctl = find_govctl(plugin_path);
	bool ok = true;
	for (const std::string &r : gov_opts.exports_of)
		ok &= load_exports_of(r, govctl);
	return ok;
}
