/* gcc-plugin/govintercept.cc - plugin_init of govintercept.so: options, help,
 * the gov_native attribute, and where the pass goes.
 *
 *   gcc -fplugin=build/lib/govintercept.so \
 *       -fplugin-arg-govintercept-targets='send_*:billing::*' \
 *       -fplugin-arg-govintercept-syscalls=all -c prog.c
 *
 * rewrites every call to a matching function, every call to a glibc syscall
 * wrapper, every syscall(2) with a constant number and the inline asm
 * syscalls it can into govrt sites (instrument_pass.cc explains the shape),
 * and emits the unit's site table and its registration (site_table.cc).
 * Link the result with -lgovrt. gcc-plugin/README.md is the manual.
 */
#include "govintercept.h"
#include "gov/abi.h"
#include "plugin-version.h"

#if GCCPLUGIN_VERSION_MAJOR != 12
#error "govintercept is written for GCC 12's plugin API"
#endif

int plugin_is_GPL_compatible;

gov_options gov_opts;

extern const struct ggc_root_tab gov_ggc_roots[];

static const char help_text[] =
	"Rewrites call sites and syscall sites into govrt sites (Rhodes, docs/abi.md).\n"
	"Options, as -fplugin-arg-govintercept-KEY[=VALUE]:\n"
	"  targets=GLOB[:GLOB...]   calls to functions matching a glob (fnmatch(3); tried on\n"
	"                           the name, the qualified C++ name and the assembler name;\n"
	"                           '::' inside a glob is part of it); repeatable\n"
	"  targets-file=PATH        more globs, one per line; blank lines and # comments skipped\n"
	"  targets-header=PATH      calls to every function declared in that header; repeatable\n"
	"  exports-of=RESOURCE      calls to every function RESOURCE exports, as the rule store\n"
	"                           lists them (govctl exports RESOURCE); repeatable\n"
	"  store=URL                the rule store for exports-of (default: GOV_STORE, as govctl)\n"
	"  govctl=PATH              the govctl to run (default: beside the plugin, else PATH)\n"
	"  syscalls=all|none|NAME[:NAME...]\n"
	"                           calls to glibc syscall wrappers, syscall(2) with a constant\n"
	"                           number and inline asm syscalls, for all syscalls, none\n"
	"                           (the default) or the named syscalls or wrappers\n"
	"  resource=NAME            the resource the module belongs to (GOV_RESOURCE overrides)\n"
	"  list=PATH                append one line per site: id kind caller callee file:line\n"
	"  unmatched=warn|ignore    a targets= name or glob, or a targets-header=, that matches\n"
	"                           no callee of the unit: one warning per unit (the default),\n"
	"                           or none\n"
	"  verbose                  a note per site, and per targets-file= or exports-of= name\n"
	"                           that matches no callee of the unit\n"
	"  verify                   run GCC's IL, CFG and SSA verifiers after the rewriting and\n"
	"                           again after into-SSA (for debugging: costs time)\n"
	"  check-libc               warn where a glibc prototype the unit declares maps to other\n"
	"                           type codes than its gov/libc.def line\n"
	"  help                     print this text\n"
	"__attribute__((gov_native)) on a function keeps its own body uninstrumented;\n"
	"so do #pragma gov_native(NAME[, NAME...]) and #pragma gov_native push ... pop.\n"
	"Debugging: -fdump-tree-all writes FILE.NNNt.govintercept (see gcc-plugin/README.md).\n";

static struct plugin_info govintercept_info = {
	"1",
	help_text,
};

/* ---- the gov_native attribute ---- */

static tree handle_gov_native(tree *node, tree name, tree, int, bool *no_add_attrs)
{
	if (TREE_CODE(*node) != FUNCTION_DECL) {
		warning(OPT_Wattributes, "%qE attribute applies only to functions", name);
		*no_add_attrs = true;
	}
	return NULL_TREE;
}

static const struct attribute_spec gov_native_attribute = {
	"gov_native", 0, 0, true, false, false, false, handle_gov_native, NULL,
};

static void register_attributes(void *, void *)
{
	register_attribute(&gov_native_attribute);
}

/* ---- the pragma form ---- */

/*
 * For code that cannot carry an attribute (generated sources, a block of
 * functions, a header shared with other compilers, which ignore unknown
 * pragmas):
 *
 *     #pragma gov_native(real_ppid, raw_write)   these functions, wherever
 *                                                they are defined in the unit
 *     #pragma gov_native push                    every function defined from
 *     ...                                        here to the matching pop
 *     #pragma gov_native pop
 *
 * Each is the attribute on those definitions. A name is looked up when the
 * pass runs, after the whole unit is parsed, so the pragma may come before
 * or after the definition. A malformed pragma, a pop without a push or a
 * push never popped is a warning (-Wpragmas) with its position.
 */
/* The C and C++ front ends define these; lto1, which loads the plugin too
 * (and needs nothing of it), does not: weak, and checked before use. */
extern void c_register_pragma(const char *, const char *, pragma_handler_1arg)
	__attribute__((weak));
extern enum cpp_ttype pragma_lex(tree *, location_t *) __attribute__((weak));

static std::set<std::string> native_names;
static int native_depth;
static location_t native_push_loc;

static void pragma_gov_native(cpp_reader *)
{
	tree t;
	location_t loc;
	enum cpp_ttype tok = pragma_lex(&t, &loc);
	if (tok == CPP_NAME && (id_equal(t, "push") || id_equal(t, "pop"))) {
		bool push = id_equal(t, "push");
		location_t at = loc;
		if (pragma_lex(&t, &loc) != CPP_EOF) {
			warning_at(loc, OPT_Wpragmas, "%s: junk at the end of %<#pragma gov_native %s%>",
				   GOV_PLUGIN_NAME, push ? "push" : "pop");
		} else if (push) {
			if (native_depth++ == 0)
				native_push_loc = at;
		} else if (native_depth == 0) {
			warning_at(at, OPT_Wpragmas, "%s: %<#pragma gov_native pop%> without a push",
				   GOV_PLUGIN_NAME);
		} else {
			native_depth--;
		}
		return;
	}
	if (tok != CPP_OPEN_PAREN) {
		warning_at(loc, OPT_Wpragmas, "%s: expected %<(%>, %<push%> or %<pop%> after "
			   "%<#pragma gov_native%>", GOV_PLUGIN_NAME);
		return;
	}
	std::vector<std::string> names;
	for (;;) {
		if (pragma_lex(&t, &loc) != CPP_NAME) {
			warning_at(loc, OPT_Wpragmas, "%s: expected a function name in "
				   "%<#pragma gov_native%>", GOV_PLUGIN_NAME);
			return;
		}
		names.push_back(IDENTIFIER_POINTER(t));
		tok = pragma_lex(&t, &loc);
		if (tok == CPP_CLOSE_PAREN)
			break;
		if (tok != CPP_COMMA) {
			warning_at(loc, OPT_Wpragmas, "%s: expected %<,%> or %<)%> in "
				   "%<#pragma gov_native%>", GOV_PLUGIN_NAME);
			return;
		}
	}
	if (pragma_lex(&t, &loc) != CPP_EOF) {
		warning_at(loc, OPT_Wpragmas, "%s: junk at the end of %<#pragma gov_native%>",
			   GOV_PLUGIN_NAME);
		return;
	}
	native_names.insert(names.begin(), names.end());
}

static void register_pragmas(void *, void *)
{
	if (c_register_pragma && pragma_lex)
		c_register_pragma(NULL, "gov_native", pragma_gov_native);
}

/* A definition finished inside push ... pop gets the attribute. */
static void finish_function(void *decl, void *)
{
	tree fndecl = (tree)decl;
	if (native_depth > 0 && TREE_CODE(fndecl) == FUNCTION_DECL &&
	    !gov_function_is_native(fndecl))
		DECL_ATTRIBUTES(fndecl) = tree_cons(get_identifier("gov_native"), NULL_TREE,
						    DECL_ATTRIBUTES(fndecl));
}

bool gov_function_is_native(tree fndecl)
{
	return lookup_attribute("gov_native", DECL_ATTRIBUTES(fndecl)) != NULL_TREE ||
	       (!native_names.empty() && DECL_NAME(fndecl) &&
		native_names.count(IDENTIFIER_POINTER(DECL_NAME(fndecl))));
}

/* ---- options ---- */

/* Splits at ':' but keeps C++'s '::' inside an item. */
static std::vector<std::string> split_list(const char *s)
{
	std::vector<std::string> out(1);
	for (; *s; s++) {
		if (s[0] == ':' && s[1] == ':') {
			out.back() += "::";
			s++;
		} else if (*s == ':') {
			out.emplace_back();
		} else {
			out.back() += *s;
		}
	}
	return out;
}

static bool resource_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= GOV_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!ISALNUM(s[i]) && !strchr("._-", s[i]))
			return false;
	return true;
}

static bool syscalls_option(const char *value)
{
	if (strcmp(value, "all") == 0) {
		gov_opts.syscalls = GOV_SYSCALLS_ALL;
		return true;
	}
	if (strcmp(value, "none") == 0) {
		gov_opts.syscalls = GOV_SYSCALLS_NONE;
		return true;
	}
	bool ok = true;
	for (const std::string &name : split_list(value)) {
		if (gov_syscall_number(name.c_str()) < 0 && !gov_libc_lookup(name.c_str())) {
			error("%s: syscalls=: %qs is neither an x86-64 syscall nor a glibc "
			      "syscall wrapper", GOV_PLUGIN_NAME, name.c_str());
			ok = false;
		}
		gov_opts.syscall_names.insert(name);
	}
	gov_opts.syscalls = GOV_SYSCALLS_LIST;
	return ok;
}

static bool needs_value(const plugin_argument &arg)
{
	if (arg.value && *arg.value)
		return true;
	error("%s: option %qs needs a value (-fplugin-arg-%s-%s=VALUE)", GOV_PLUGIN_NAME,
	      arg.key, GOV_PLUGIN_NAME, arg.key);
	return false;
}

static bool takes_no_value(const plugin_argument &arg)
{
	if (!arg.value)
		return true;
	error("%s: option %qs takes no value", GOV_PLUGIN_NAME, arg.key);
	return false;
}

static bool parse_option(const plugin_argument &arg)
{
	const char *key = arg.key;
	if (strcmp(key, "help") == 0) {
		if (!takes_no_value(arg))
			return false;
		fprintf(stderr, "%s: %s", GOV_PLUGIN_NAME, help_text);
		return true;
	}
	if (strcmp(key, "verbose") == 0)
		return takes_no_value(arg) && (gov_opts.verbose = true);
	if (strcmp(key, "verify") == 0)
		return takes_no_value(arg) && (gov_opts.verify = true);
	if (strcmp(key, "check-libc") == 0)
		return takes_no_value(arg) && (gov_opts.check_libc = true);
	if (strcmp(key, "targets") == 0) {
		if (!needs_value(arg))
			return false;
		for (const std::string &glob : split_list(arg.value))
			if (!glob.empty())
				gov_add_target(glob, GOV_TARGET_FROM_OPTION);
		return true;
	}
	if (strcmp(key, "targets-file") == 0)
		return needs_value(arg) && gov_load_targets_file(arg.value);
	if (strcmp(key, "targets-header") == 0) {
		if (!needs_value(arg))
			return false;
		char *real = realpath(arg.value, NULL);
		if (!real || access(real, R_OK) != 0) {
			error("%s: cannot read targets-header %qs: %s", GOV_PLUGIN_NAME, arg.value,
			      xstrerror(errno));
			free(real);
			return false;
		}
		gov_opts.headers.push_back(real);
		gov_opts.header_args.push_back(arg.value);
		gov_opts.header_matched.push_back(false);
		free(real);
		return true;
	}
	if (strcmp(key, "syscalls") == 0)
		return needs_value(arg) && syscalls_option(arg.value);
	if (strcmp(key, "resource") == 0) {
		if (!needs_value(arg))
			return false;
		if (!resource_name_ok(arg.value)) {
			error("%s: resource=%qs: a resource name is 1-63 of A-Z a-z 0-9 . _ - "
			      "and does not start with '.'", GOV_PLUGIN_NAME, arg.value);
			return false;
		}
		gov_opts.resource = arg.value;
		return true;
	}
	if (strcmp(key, "exports-of") == 0) {
		if (!needs_value(arg))
			return false;
		if (!resource_name_ok(arg.value)) {
			error("%s: exports-of=%qs: a resource name is 1-63 of A-Z a-z 0-9 . _ - "
			      "and does not start with '.'", GOV_PLUGIN_NAME, arg.value);
			return false;
		}
		gov_opts.exports_of.push_back(arg.value);
		return true;
	}
	if (strcmp(key, "store") == 0)
		return needs_value(arg) && (gov_opts.store = arg.value, true);
	if (strcmp(key, "govctl") == 0)
		return needs_value(arg) && (gov_opts.govctl = arg.value, true);
	if (strcmp(key, "unmatched") == 0) {
		if (!needs_value(arg))
			return false;
		if (strcmp(arg.value, "warn") != 0 && strcmp(arg.value, "ignore") != 0) {
			error("%s: unmatched=%qs: the value is %<warn%> or %<ignore%>",
			      GOV_PLUGIN_NAME, arg.value);
			return false;
		}
		gov_opts.warn_unmatched = strcmp(arg.value, "warn") == 0;
		return true;
	}
	if (strcmp(key, "list") == 0) {
		if (!needs_value(arg))
			return false;
		gov_opts.list_path = arg.value;
		return true;
	}
	error("%s: unknown option %qs (-fplugin-arg-%s-%s); "
	      "-fplugin-arg-%s-help lists the options",
	      GOV_PLUGIN_NAME, key, GOV_PLUGIN_NAME, key, GOV_PLUGIN_NAME);
	return false;
}

static void finish_decl(void *decl, void *)
{
	gov_check_libc_decl((tree)decl);
}

/* ---- end of the unit ---- */

/* "'a', 'b'" */
static std::string quoted_list(const std::vector<std::string> &names)
{
	std::string out;
	for (const std::string &n : names)
		out += (out.empty() ? "'" : ", '") + n + "'";
	return out;
}

/*
 * Targets that matched nothing. One warning per unit for the names and
 * globs given in targets= and for each targets-header= that declared no
 * callee: those were typed for this build, and a typo there would silently
 * instrument nothing. The bulk lists (targets-file=, exports-of=) name far
 * more functions than any one unit calls, so their misses are notes, and
 * only with verbose. unmatched=ignore silences the warning, for builds
 * that pass one target list to every unit.
 */
static void report_unmatched(void)
{
	if (seen_error())
		return;
	std::vector<std::string> named = gov_unmatched_targets(GOV_TARGET_FROM_OPTION);
	if (!named.empty() && gov_opts.warn_unmatched)
		warning_at(UNKNOWN_LOCATION, 0, "%s: targets= %s matched no function called "
			   "in %s (unmatched=ignore silences this)", GOV_PLUGIN_NAME,
			   quoted_list(named).c_str(), main_input_filename);
	for (size_t i = 0; i < gov_opts.headers.size(); i++)
		if (!gov_opts.header_matched[i] && gov_opts.warn_unmatched)
			warning_at(UNKNOWN_LOCATION, 0, "%s: targets-header %qs declares no "
				   "function called in %s (unmatched=ignore silences this)",
				   GOV_PLUGIN_NAME, gov_opts.header_args[i].c_str(),
				   main_input_filename);
	if (!gov_opts.verbose)
		return;
	for (gov_target_origin o : { GOV_TARGET_FROM_FILE, GOV_TARGET_FROM_EXPORTS })
		for (const std::string &glob : gov_unmatched_targets(o))
			inform(UNKNOWN_LOCATION, "%s: %s target %qs matches no function called "
			       "in %s", GOV_PLUGIN_NAME,
			       o == GOV_TARGET_FROM_FILE ? "targets-file" : "exports-of",
			       glob.c_str(), main_input_filename);
}

static void finish_unit(void *, void *)
{
	if (in_lto_p)
		return;
	gov_write_listing();
	report_unmatched();
	if (native_depth > 0)
		warning_at(native_push_loc, OPT_Wpragmas, "%s: %<#pragma gov_native push%> "
			   "without a pop", GOV_PLUGIN_NAME);
}

int plugin_init(struct plugin_name_args *info, struct plugin_gcc_version *version)
{
	if (!plugin_default_version_check(version, &gcc_version)) {
		error("%s: built for GCC %s, loaded into GCC %s", GOV_PLUGIN_NAME,
		      gcc_version.basever, version->basever);
		return 1;
	}
	bool ok = true;
	for (int i = 0; i < info->argc; i++)
		ok &= parse_option(info->argv[i]);
	/* after every option: store= and govctl= may come later */
	if (!ok || !gov_load_exports(info->full_name))
		return 1;

	const char *name = info->base_name;
	register_callback(name, PLUGIN_INFO, NULL, &govintercept_info);
	register_callback(name, PLUGIN_REGISTER_GGC_ROOTS, NULL, (void *)gov_ggc_roots);
	register_callback(name, PLUGIN_ATTRIBUTES, register_attributes, NULL);
	register_callback(name, PLUGIN_PRAGMAS, register_pragmas, NULL);
	register_callback(name, PLUGIN_FINISH_PARSE_FUNCTION, finish_function, NULL);
	register_callback(name, PLUGIN_FINISH_UNIT, finish_unit, NULL);
	if (gov_opts.check_libc)
		register_callback(name, PLUGIN_FINISH_DECL, finish_decl, NULL);

	/* right after the CFG is built: see instrument_pass.cc for why */
	struct register_pass_info pass = {
		gov_make_instrument_pass(g), "cfg", 1, PASS_POS_INSERT_AFTER,
	};
	register_callback(name, PLUGIN_PASS_MANAGER_SETUP, NULL, &pass);
	if (gov_opts.verify) {
		struct register_pass_info verify = {
			gov_make_verify_pass(g), "ssa", 1, PASS_POS_INSERT_AFTER,
		};
		register_callback(name, PLUGIN_PASS_MANAGER_SETUP, NULL, &verify);
	}
	return 0;
}
