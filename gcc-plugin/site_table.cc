/* gcc-plugin/site_table.cc - the site records of a translation unit and its
 * registration with govrt (the contract of gov/abi.h and docs/abi.md).
 *
 * Each site is one static, `used`, 8-byte aligned struct gov_site in the
 * section "gov_sites", built as a GCC variable with a constant initializer;
 * the linker gathers every unit's records between __start_gov_sites and
 * __stop_gov_sites. With the first site of a unit we also emit what
 * gov/govrt.h's per-unit constructor does by hand:
 *
 *     static const struct gov_module __gov_module =
 *         { GOV_ABI_VERSION, 0, __start_gov_sites, __stop_gov_sites, resource };
 *     static void ctor(void) { __govrt_register_module(&__gov_module); }
 *
 * where the two bounds are weak hidden references and the constructor is a
 * real GCC function (cgraph_build_static_cdtor), so -fPIC, -flto, CET and
 * unwind tables are GCC's business, not ours. Only units with sites
 * reference govrt at all.
 *
 * Ids are computed here, at build time, with gov/abi.h's own gov_site_id():
 * the plugin is C++ and includes the header, so there is one FNV-1a.
 *
 * Not here: choosing sites (targets.cc), rewriting them (instrument_pass.cc).
 */
#include "govintercept.h"
#include "gov/abi.h"
#include <algorithm>
#include <cinttypes>
#include <cstddef>

/* Trees that live across functions. GCC's garbage collector must see them:
 * govintercept.cc registers gov_ggc_roots with PLUGIN_REGISTER_GGC_ROOTS. */
static tree site_type, site_verdict, call_type, module_type;
static tree dispatch_decl, register_decl, module_var;

extern const struct ggc_root_tab gov_ggc_roots[];
const struct ggc_root_tab gov_ggc_roots[] = {
#define GOV_ROOT(v) { &v, 1, sizeof(v), &gt_ggc_mx_tree_node, &gt_pch_nx_tree_node }
	GOV_ROOT(site_type), GOV_ROOT(site_verdict), GOV_ROOT(call_type),
	GOV_ROOT(module_type), GOV_ROOT(dispatch_decl), GOV_ROOT(register_decl),
	GOV_ROOT(module_var),
#undef GOV_ROOT
	LAST_GGC_ROOT_TAB
};

static unsigned site_count;                  /* names __gov_site.N */
static std::vector<std::string> listing;     /* lines for list= */

std::string gov_function_name(tree fndecl)
{
	const char *name = lang_hooks.decl_printable_name(fndecl, 1);
	return name ? name : IDENTIFIER_POINTER(DECL_NAME(fndecl));
}

/* ---- the record types, mirroring gov/abi.h ---- */

static tree const_char_ptr(void)
{
	return build_pointer_type(build_qualified_type(char_type_node, TYPE_QUAL_CONST));
}

/* Fields are given in declaration order; finish_builtin_struct wants them
 * chained in reverse. */
static tree record(const char *name, const std::vector<std::pair<const char *, tree>> &fields,
		   std::vector<tree> *decls)
{
	tree type = make_node(RECORD_TYPE);
	tree chain = NULL_TREE;
	for (const auto &f : fields) {
		tree d = build_decl(BUILTINS_LOCATION, FIELD_DECL, get_identifier(f.first), f.second);
		DECL_CHAIN(d) = chain;
		chain = d;
		if (decls)
			decls->push_back(d);
	}
	finish_builtin_struct(type, name, chain, NULL_TREE);
	return type;
}

static void check_layout(tree type, const std::vector<tree> &fields, size_t size,
			 const std::vector<size_t> &offsets)
{
	/* the x86-64 layout; another target (-m32, -mx32) cannot have sites */
	if (tree_to_uhwi(TYPE_SIZE_UNIT(type)) != size)
		fatal_error(UNKNOWN_LOCATION, "%s: %qT is not the size gov/abi.h says on "
			    "x86-64 (a 64-bit target is needed)", GOV_PLUGIN_NAME, type);
	for (size_t i = 0; i < fields.size(); i++)
		if ((size_t)int_byte_position(fields[i]) != offsets[i])
			fatal_error(UNKNOWN_LOCATION, "%s: field %qD of %qT is not where gov/abi.h "
				    "has it on x86-64", GOV_PLUGIN_NAME, fields[i], type);
}

static void build_types(void)
{
	if (site_type)
		return;
	tree u8 = unsigned_char_type_node, u32 = unsigned_type_node;
	tree u64 = long_unsigned_type_node, str = const_char_ptr();
	std::vector<tree> f;
	site_type = record("gov_site", {
		{ "id", u64 }, { "kind", u8 }, { "ret_conv", u8 }, { "nparams", u8 },
		{ "reserved", u8 }, { "sysno", integer_type_node }, { "caller", str },
		{ "callee", str }, { "types", str }, { "file", str }, { "line", u32 },
		{ "verdict", build_qualified_type(u8, TYPE_QUAL_VOLATILE) },
		{ "pad", build_array_type_nelts(u8, 3) }, { "decision", u32 }, { "pad2", u32 },
	}, &f);
	check_layout(site_type, f, sizeof(struct gov_site), {
		offsetof(gov_site, id), offsetof(gov_site, kind), offsetof(gov_site, ret_conv),
		offsetof(gov_site, nparams), offsetof(gov_site, reserved),
		offsetof(gov_site, sysno), offsetof(gov_site, caller),
		offsetof(gov_site, callee), offsetof(gov_site, types), offsetof(gov_site, file),
		offsetof(gov_site, line), offsetof(gov_site, verdict), offsetof(gov_site, pad),
		offsetof(gov_site, decision), offsetof(gov_site, pad2) });
	site_verdict = f[11];

	f.clear();
	call_type = record("gov_call", {
		{ "arg", build_array_type_nelts(u64, GOV_MAX_ARGS) },
		{ "ret", long_integer_type_node },
	}, &f);
	check_layout(call_type, f, sizeof(struct gov_call),
		     { offsetof(gov_call, arg), offsetof(gov_call, ret) });

	f.clear();
	tree site_ptr = build_pointer_type(site_type);
	module_type = record("gov_module", {
		{ "abi_version", u32 }, { "reserved", u32 }, { "start", site_ptr },
		{ "stop", site_ptr }, { "resource", str },
	}, &f);
	check_layout(module_type, f, sizeof(struct gov_module), {
		offsetof(gov_module, abi_version), offsetof(gov_module, reserved),
		offsetof(gov_module, start), offsetof(gov_module, stop),
		offsetof(gov_module, resource) });
}

tree gov_site_verdict_field(void)
{
	build_types();
	return site_verdict;
}

tree gov_call_type(void)
{
	build_types();
	return call_type;
}

/* ---- declarations of govrt's entry points ---- */

/* An existing declaration of `name` in this unit (the program may include
 * gov/govrt.h itself), so that one symbol has one decl. */
static tree find_function(const char *name)
{
	cgraph_node *node;
	FOR_EACH_FUNCTION(node) {
		tree d = node->decl;
		if (DECL_NAME(d) && strcmp(IDENTIFIER_POINTER(DECL_NAME(d)), name) == 0 &&
		    TREE_PUBLIC(d))
			return d;
	}
	return NULL_TREE;
}

static tree extern_function(const char *name, tree type)
{
	tree d = find_function(name);
	if (d)
		return d;
	d = build_decl(BUILTINS_LOCATION, FUNCTION_DECL, get_identifier(name), type);
	SET_DECL_ASSEMBLER_NAME(d, get_identifier(name));
	TREE_PUBLIC(d) = 1;
	DECL_EXTERNAL(d) = 1;
	DECL_ARTIFICIAL(d) = 1;
	TREE_NOTHROW(d) = 1;
	DECL_VISIBILITY(d) = VISIBILITY_DEFAULT;
	DECL_VISIBILITY_SPECIFIED(d) = 1;
	return d;
}

tree gov_dispatch_decl(void)
{
	if (!dispatch_decl) {
		build_types();
		/* int __govrt_dispatch(struct gov_site *, struct gov_call *) */
		dispatch_decl = extern_function("__govrt_dispatch",
			build_function_type_list(integer_type_node, build_pointer_type(site_type),
						 build_pointer_type(call_type), NULL_TREE));
	}
	return dispatch_decl;
}

/* __start_gov_sites / __stop_gov_sites: weak, hidden, as in gov/govrt.h, so a
 * shared object finds its own table and a module without one links. */
static tree section_bound(const char *name)
{
	varpool_node *node;
	FOR_EACH_VARIABLE(node) {
		tree d = node->decl;
		if (DECL_NAME(d) && strcmp(IDENTIFIER_POINTER(DECL_NAME(d)), name) == 0 &&
		    DECL_EXTERNAL(d))
			return d;
	}
	tree d = build_decl(BUILTINS_LOCATION, VAR_DECL, get_identifier(name),
			    build_array_type(site_type, NULL_TREE));
	SET_DECL_ASSEMBLER_NAME(d, get_identifier(name));
	TREE_PUBLIC(d) = 1;
	DECL_EXTERNAL(d) = 1;
	DECL_ARTIFICIAL(d) = 1;
	TREE_USED(d) = 1;
	DECL_VISIBILITY(d) = VISIBILITY_HIDDEN;
	DECL_VISIBILITY_SPECIFIED(d) = 1;
	declare_weak(d);
	return d;
}

static tree string_constant(const std::string &s)
{
	return fold_convert(const_char_ptr(), build_string_literal(s.size() + 1, s.c_str()));
}

static tree site_pointer(tree bound)
{
	return fold_convert(build_pointer_type(site_type), build_fold_addr_expr(bound));
}

/* The module record and the constructor that registers it; once per unit.
 * Called from inside the pass, so the function being rewritten is put aside
 * while GCC builds the constructor's own. */
static void register_module_once(void)
{
	if (module_var)
		return;
	vec<constructor_elt, va_gc> *init = NULL;
	tree field = TYPE_FIELDS(module_type);
	CONSTRUCTOR_APPEND_ELT(init, field, build_int_cst(unsigned_type_node, GOV_ABI_VERSION));
	field = DECL_CHAIN(DECL_CHAIN(field));
	CONSTRUCTOR_APPEND_ELT(init, field, site_pointer(section_bound("__start_gov_sites")));
	field = DECL_CHAIN(field);
	CONSTRUCTOR_APPEND_ELT(init, field, site_pointer(section_bound("__stop_gov_sites")));
	field = DECL_CHAIN(field);
	CONSTRUCTOR_APPEND_ELT(init, field, gov_opts.resource.empty()
			       ? build_int_cst(const_char_ptr(), 0)
			       : string_constant(gov_opts.resource));

	tree var = build_decl(BUILTINS_LOCATION, VAR_DECL, get_identifier("__gov_module"),
			      module_type);
	SET_DECL_ASSEMBLER_NAME(var, get_identifier("__gov_module"));
	TREE_STATIC(var) = 1;
	TREE_READONLY(var) = 1;
	TREE_ADDRESSABLE(var) = 1;
	TREE_USED(var) = 1;
	DECL_ARTIFICIAL(var) = 1;
	DECL_IGNORED_P(var) = 1;
	DECL_INITIAL(var) = build_constructor(module_type, init);
	TREE_CONSTANT(DECL_INITIAL(var)) = 1;
	TREE_STATIC(DECL_INITIAL(var)) = 1;
	varpool_node::finalize_decl(var);
	module_var = var;

	/* void __govrt_register_module(const struct gov_module *) */
	register_decl = extern_function("__govrt_register_module",
		build_function_type_list(void_type_node,
			build_pointer_type(build_qualified_type(module_type, TYPE_QUAL_CONST)),
			NULL_TREE));
	tree body = build_call_expr(register_decl, 1, build_fold_addr_expr(module_var));

	location_t saved = input_location;
	input_location = BUILTINS_LOCATION;
	push_cfun(NULL);
	cgraph_build_static_cdtor('I', body, DEFAULT_INIT_PRIORITY);
	pop_cfun();
	input_location = saved;
}

/* ---- sites ---- */

void gov_assign_ids(std::vector<gov_site_desc *> &sites)
{
	/* source order within a line: column, then the order we met them */
	std::stable_sort(sites.begin(), sites.end(), [](const gov_site_desc *a, const gov_site_desc *b) {
		return a->line != b->line ? a->line < b->line : a->column < b->column;
	});
	std::map<std::string, unsigned> seen;
	for (gov_site_desc *d : sites) {
		std::string key = d->file + ":" + std::to_string(d->line) + ":" + d->caller + ":" + d->callee;
		unsigned n = ++seen[key];
		std::string callee = n == 1 ? d->callee : d->callee + "#" + std::to_string(n);
		d->id = gov_site_id(d->file.c_str(), d->line, d->caller.c_str(), callee.c_str());
	}
}

/* Fields of a listing line are separated by spaces, and C++ names can hold
 * some ("tmpl<short int>"): space, tab, newline and backslash are written as
 * octal escapes, the way /proc/self/mounts does (\040 for a space). */
static std::string list_field(const std::string &s)
{
	std::string out;
	for (char c : s) {
		if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
			char esc[5];
			snprintf(esc, sizeof esc, "\\%03o", (unsigned char)c);
			out += esc;
		} else {
			out += c;
		}
	}
	return out;
}

tree gov_emit_site(const gov_site_desc &d)
{
	build_types();
	register_module_once();

	vec<constructor_elt, va_gc> *init = NULL;
	tree f = TYPE_FIELDS(site_type);
	auto next = [&](tree value) {
		CONSTRUCTOR_APPEND_ELT(init, f, value);
		f = DECL_CHAIN(f);
	};
	next(build_int_cstu(long_unsigned_type_node, d.id));
	next(build_int_cst(unsigned_char_type_node, d.kind));
	next(build_int_cst(unsigned_char_type_node, d.ret_conv));
	next(build_int_cst(unsigned_char_type_node, gov_types_nparams(d.types)));
	next(build_int_cst(unsigned_char_type_node, 0));
	next(build_int_cst(integer_type_node, d.sysno));
	next(string_constant(d.caller));
	next(string_constant(d.callee));
	next(string_constant(d.types));
	next(string_constant(d.file));
	next(build_int_cst(unsigned_type_node, d.line));
	/* verdict, pad, decision, pad2 start as zero: left out */

	char name[32];
	snprintf(name, sizeof name, "__gov_site.%u", site_count++);
	tree var = build_decl(BUILTINS_LOCATION, VAR_DECL, get_identifier(name), site_type);
	SET_DECL_ASSEMBLER_NAME(var, get_identifier(name));
	TREE_STATIC(var) = 1;
	TREE_ADDRESSABLE(var) = 1;
	TREE_USED(var) = 1;
	DECL_ARTIFICIAL(var) = 1;
	DECL_IGNORED_P(var) = 1;
	DECL_PRESERVE_P(var) = 1;        /* __attribute__((used)) */
	SET_DECL_ALIGN(var, 64);         /* __attribute__((aligned(8))): no more, */
	DECL_USER_ALIGN(var) = 1;        /* or padding would split the array */
	set_decl_section_name(var, GOV_SITES_SECTION);
	DECL_INITIAL(var) = build_constructor(site_type, init);
	TREE_STATIC(DECL_INITIAL(var)) = 1;
	varpool_node::finalize_decl(var);

	char line[64];
	snprintf(line, sizeof line, "%016" PRIx64 " %s ", d.id,
		 d.kind == GOV_SITE_SYSCALL ? "syscall" : "call");
	listing.push_back(std::string(line) + list_field(d.caller) + " " + list_field(d.callee) +
			  " " + list_field(d.file) + ":" + std::to_string(d.line) + "\n");
	return var;
}

/* One write(2) per line on an O_APPEND descriptor: lines of compilers running
 * in parallel interleave whole. */
void gov_write_listing(void)
{
	if (gov_opts.list_path.empty() || listing.empty() || seen_error())
		return;
	const char *path = gov_opts.list_path.c_str();
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0) {
		error("%s: cannot open list %qs: %s", GOV_PLUGIN_NAME, path, xstrerror(errno));
		return;
	}
	for (const std::string &l : listing) {
		if (write(fd, l.data(), l.size()) != (ssize_t)l.size()) {
			error("%s: cannot write list %qs: %s", GOV_PLUGIN_NAME, path,
			      xstrerror(errno));
			break;
		}
	}
	close(fd);
	listing.clear();
}
