/* gcc-plugin/instrument_pass.cc - the "govintercept" GIMPLE pass: rewrites
 * every site of a function into gov/govrt.h's GOV_CALL shape.
 *
 * The pass runs right after "cfg", in the lowering passes that cgraph runs
 * on each function as it analyses the unit: the IL is low GIMPLE with a CFG
 * and EH landing pads, but not yet SSA, and nothing has been inlined,
 * folded or optimised, at any -O. So every call the source makes is still
 * there with its own location, C types still carry their typedef names
 * (size_t), the same source gives the same sites at -O0 and -O3, and with
 * -flto the rewritten bodies are what gets streamed. cgraph edges for the
 * calls we add are built by "*build_cgraph_edges", which follows us.
 *
 * A site `lhs = callee(a, b)` in block BB becomes (blocks are GCC's basic
 * blocks: straight-line statements ending in at most one branch):
 *
 *   BB:     ...
 *           v = site.verdict;                  volatile load of one byte
 *           if (v != 0) goto SLOW; else goto FAST;
 *   FAST:   lhs = callee(a, b);                the original statement
 *   JOIN:   ...
 *   SLOW:   lhs = __gov_slow.K(&site, &callee, a, b);   goto JOIN;
 *
 * where __gov_slow.K, shared by every call of the same shape in the unit,
 * packs the words, asks __govrt_dispatch and makes the call or returns
 * govrt's word (see "the slow path of a call site" below for why it is
 * out of line). SLOW is placed at the end of the function and calls a cold
 * function, so GCC predicts it very unlikely and moves it to .text.unlikely;
 * JOIN is the rest of BB (or, when the call ended BB, a block on the edge
 * after it), and when lhs
 * is one of the SSA names the gimplifier already made, both paths assign a
 * variable that JOIN copies into it (an SSA name has one definition). The
 * same shape serves syscall(2) (the helper passes the arguments after the
 * number). The one inline asm form we can rewrite safely ("syscall" with
 * the number a constant "a" input, arguments in "D", "S", "d" and the
 * result in "=a", GOV_RET_RAW) cannot be handed to a helper, so its slow
 * path stays inline:
 *
 *   SLOW:   c = {};  MEM<typeof a>[&c.arg[0]] = a;  ...
 *           if (__govrt_dispatch(&site, &c) == GOV_RUN_NATIVE) goto NATIVE;
 *           else goto RET;
 *   NATIVE: the asm again, with the words govrt may have changed; goto JOIN;
 *   RET:    lhs = MEM<long>[&c.ret];  goto JOIN;
 *
 * Any other inline asm containing a syscall instruction gets a warning
 * with its file:line.
 *
 * Debugging: -fdump-tree-all writes each function after this pass, with one
 * ";; govintercept: site ..." line per site, to FILE.c.NNNt.govintercept
 * (GCC parses -fdump-tree-NAME before plugins add passes, so a plugin pass
 * cannot be named there); -fplugin-arg-govintercept-verify runs GCC's IL
 * and CFG verifiers after every rewritten function (Debian's GCC is built
 * without checking, so they do not run otherwise); debug_gimple_stmt() and
 * debug_bb() from gdb on cc1.
 */
#include "govintercept.h"
#include "gov/abi.h"

namespace {

/* One site found in the function, before anything is changed. */
struct candidate {
	gimple *stmt;            /* the gcall or gasm */
	std::vector<int> ops;    /* operand of stmt passed in each word (-1: none) */
	tree lhs;                /* where the result goes, or NULL_TREE */
	gov_site_desc desc;
	/* inline asm: a word passed in a local register variable (r10, r8,
	 * r9), and the value last assigned to it before the asm */
	std::vector<tree> regvar, regval;
};

struct rewriter {
	function *fun;
	tree call_var = NULL_TREE;   /* this function's struct gov_call */
	std::vector<candidate> sites;

	void consider_call(gcall *call);
	void consider_syscall2(gcall *call, tree fndecl);
	void consider_asm(gasm *as);
	bool rewritable(gcall *call, unsigned first, const char **why, bool *quiet);
	void describe(candidate &c, location_t loc);
	void rewrite(candidate &c, tree site);
};

bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

location_t stmt_location(function *fun, gimple *stmt)
{
	location_t loc = gimple_location(stmt);
	return loc != UNKNOWN_LOCATION ? loc : DECL_SOURCE_LOCATION(fun->decl);
}

/* The file as __FILE__ would spell it (-fmacro-prefix-map applies). */
std::string site_file(location_t loc)
{
	expanded_location x = expand_location(loc);
	return x.file ? remap_macro_filename(x.file) : "";
}

/* ---- which statements are sites ---- */

void rewriter::describe(candidate &c, location_t loc)
{
	expanded_location x = expand_location(loc);
	c.desc.file = site_file(loc);
	c.desc.line = x.line;
	c.desc.column = x.column;
	c.desc.caller = gov_function_name(fun->decl);
}

/* Calls we do not rewrite: their control flow is not a plain call's, or
 * their arguments do not fit the words of a struct gov_call. `quiet` marks
 * the reasons that are a property of the callee, reported only in verbose
 * mode (every call to _exit would warn otherwise). */
bool rewriter::rewritable(gcall *call, unsigned first, const char **why, bool *quiet)
{
	int flags = gimple_call_flags(call);
	*quiet = false;
	if (flags & ECF_NORETURN) {
		*quiet = true;
		*why = "it does not return";
	} else if (flags & ECF_RETURNS_TWICE) {
		*quiet = true;
		*why = "it returns twice";
	} else if (flags & ECF_MAY_BE_ALLOCA) {
		/* the helper would allocate in its own frame, and alloca has
		 * no library function to call through a pointer */
		*why = "it allocates in its caller's frame (alloca)";
	} else if (gimple_call_must_tail_p(call)) {
		*why = "it is a musttail call";
	} else if (gimple_call_chain(call)) {
		*why = "it passes a static chain";
	} else if (gimple_call_va_arg_pack_p(call)) {
		*why = "it forwards __builtin_va_arg_pack ()";
	} else if (stmt_can_make_abnormal_goto(call)) {
		*why = "it can make an abnormal goto";
	} else if (gimple_call_lhs(call) &&
		   !is_gimple_reg_type(TREE_TYPE(gimple_call_lhs(call))) &&
		   TREE_CODE(TREE_TYPE(gimple_call_lhs(call))) != RECORD_TYPE) {
		/* a struct's layout is types.cc's to judge */
		*why = "it returns a union or an array";
	} else if (gimple_call_num_args(call) - first > GOV_MAX_ARGS) {
		*why = "it passes more arguments than a site holds (GOV_MAX_ARGS)";
	} else {
		return true;
	}
	return false;
}

void rewriter::consider_call(gcall *call)
{
	if (gimple_call_internal_p(call))
		return;
	tree fndecl = gimple_call_fndecl(call);
	if (!fndecl || !DECL_NAME(fndecl))
		return;
	const char *name = IDENTIFIER_POINTER(DECL_NAME(fndecl));
	/* govrt itself; GCC's builtins without a library function of that name
	 * (__builtin_*, __atomic_*, __sync_*: some need constant operands,
	 * which the repeated call would not have) */
	if (starts_with(name, "__govrt_") ||
	    (fndecl_built_in_p(fndecl, BUILT_IN_NORMAL) && starts_with(name, "__")) ||
	    fndecl_built_in_p(fndecl, BUILT_IN_MD) || fndecl_built_in_p(fndecl, BUILT_IN_FRONTEND))
		return;

	/* glibc's functions: public, with C linkage (so not a C++ overload) */
	const char *asmname = IDENTIFIER_POINTER(DECL_ASSEMBLER_NAME(fndecl));
	bool libc_linkage = TREE_PUBLIC(fndecl) && strcmp(asmname, name) == 0;
	if (libc_linkage && strcmp(name, "syscall") == 0) {
		consider_syscall2(call, fndecl);
		return;
	}
	const gov_libc_entry *libc = libc_linkage ? gov_libc_lookup(name) : NULL;
	int sysno = libc ? gov_syscall_number(libc->syscall) : -1;
	bool named;
	bool targeted = gov_target_matches(fndecl, &named);
	bool wrapper = libc && gov_syscall_selected(sysno, libc->name);
	if (!targeted && !wrapper)
		return;

	location_t loc = stmt_location(fun, call);
	candidate c;
	c.stmt = call;
	c.lhs = gimple_call_lhs(call);
	c.desc.kind = GOV_SITE_CALL;
	c.desc.ret_conv = libc ? libc->ret_conv : GOV_RET_LIBC;
	c.desc.sysno = sysno;
	c.desc.callee = gov_function_name(fndecl);
	describe(c, loc);

	const char *why = NULL;
	bool quiet;
	if (rewritable(call, 0, &why, &quiet))
		c.desc.types = gov_call_types(call, 0, libc, &why);
	/* A call the user named (a target without wildcards, or a selected
	 * syscall wrapper) that cannot be a site is worth a warning; one that
	 * only a wildcard or a header reached is worth a note in verbose mode. */
	if (c.desc.types.empty()) {
		if (!quiet && (named || wrapper))
			warning_at(loc, 0, "%s: call to %qs at %s:%u is not instrumented: %s",
				   GOV_PLUGIN_NAME, c.desc.callee.c_str(), c.desc.file.c_str(),
				   c.desc.line, why);
		else if (gov_opts.verbose)
			inform(loc, "%s: call to %qs at %s:%u is not instrumented: %s",
			       GOV_PLUGIN_NAME, c.desc.callee.c_str(), c.desc.file.c_str(),
			       c.desc.line, why);
		return;
	}
	for (unsigned i = 0; i < gimple_call_num_args(call); i++)
		c.ops.push_back(i);
	sites.push_back(c);
}

/* syscall(2): a site of kind syscall when the number is a constant; the
 * number stays an operand, the site passes the other arguments. */
void rewriter::consider_syscall2(gcall *call, tree fndecl)
{
	bool named;
	bool targeted = gov_target_matches(fndecl, &named);
	if (!targeted && gov_opts.syscalls == GOV_SYSCALLS_NONE)
		return;
	location_t loc = stmt_location(fun, call);
	unsigned nargs = gimple_call_num_args(call);
	tree nr = nargs ? gimple_call_arg(call, 0) : NULL_TREE;
	if (!nr || TREE_CODE(nr) != INTEGER_CST || !tree_fits_shwi_p(nr)) {
		expanded_location x = expand_location(loc);
		warning_at(loc, 0, "%s: syscall(2) with a number not known at compile time at "
			   "%s:%u is not instrumented; govrt's run-time fallback covers it",
			   GOV_PLUGIN_NAME, site_file(loc).c_str(), x.line);
		return;
	}
	int sysno = (int)tree_to_shwi(nr);
	if (!targeted && !gov_syscall_selected(sysno, NULL))
		return;

	candidate c;
	c.stmt = call;
	c.lhs = gimple_call_lhs(call);
	c.desc.kind = GOV_SITE_SYSCALL;
	c.desc.ret_conv = GOV_RET_LIBC;   /* syscall(2) returns -1 and sets errno */
	c.desc.sysno = sysno;
	const char *sname = gov_syscall_name(sysno);
	c.desc.callee = sname ? sname : "syscall";
	describe(c, loc);

	const char *why = NULL;
	bool quiet;
	if (rewritable(call, 1, &why, &quiet))
		c.desc.types = gov_call_types(call, 1,
			sname ? gov_libc_for_syscall(sname, nargs - 1) : NULL, &why);
	if (c.desc.types.empty()) {
		warning_at(loc, 0, "%s: syscall(2) of %qs at %s:%u is not instrumented: %s",
			   GOV_PLUGIN_NAME, c.desc.callee.c_str(), c.desc.file.c_str(),
			   c.desc.line, why);
		return;
	}
	for (unsigned i = 1; i < nargs; i++)
		c.ops.push_back(i);
	sites.push_back(c);
}

/* Does the template contain a syscall instruction (a whole word)? */
bool has_syscall_insn(const char *s)
{
	for (const char *p = strstr(s, "syscall"); p; p = strstr(p + 1, "syscall")) {
		bool start = p == s || strchr(" \t\n;", p[-1]);
		bool end = !p[7] || strchr(" \t\n;#", p[7]);
		if (start && end)
			return true;
	}
	return false;
}

std::string constraint(tree op)
{
	return TREE_STRING_POINTER(TREE_VALUE(TREE_PURPOSE(op)));
}

bool clobbers(gasm *as, const char *reg)
{
	for (unsigned i = 0; i < gimple_asm_nclobbers(as); i++) {
		const char *c = TREE_STRING_POINTER(TREE_VALUE(gimple_asm_clobber_op(as, i)));
		if (c[0] == '%')
			c++;
		if (strcmp(c, reg) == 0)
			return true;
	}
	return false;
}

/* A local register variable: only the asm operand itself is guaranteed to
 * be in that register, so such operands are not rewritten. */
bool hard_register(tree t)
{
	return VAR_P(t) && DECL_HARD_REGISTER(t);
}

/* The register a local register variable lives in ("r10"), or "". */
std::string register_of(tree var)
{
	if (!hard_register(var) || !DECL_ASSEMBLER_NAME_SET_P(var))
		return "";
	const char *r = IDENTIFIER_POINTER(DECL_ASSEMBLER_NAME(var));
	while (*r == '*' || *r == '%')
		r++;
	return r;
}

/*
 * The value a local register variable holds at the asm: its last
 * assignment before the asm in the same block, `var = X` with X a constant,
 * an SSA name, or a parameter or local variable whose address is not taken
 * and that nothing between assigns again. Anything else (assigned in another block, from memory,
 * through a pointer) is NULL: the asm is then left alone with a warning.
 * Only the asm operand itself is guaranteed to be in the register, so the
 * slow path packs X, and sets the variable again right before the asm it
 * repeats.
 */
tree register_value(gasm *as, tree var)
{
	gimple_stmt_iterator gsi = gsi_for_stmt(as);
	std::vector<tree> assigned;     /* variables assigned after the candidate */
	for (gsi_prev(&gsi); !gsi_end_p(gsi); gsi_prev(&gsi)) {
		gimple *g = gsi_stmt(gsi);
		if (is_gimple_debug(g))
			continue;
		if (gimple_assign_single_p(g) && gimple_assign_lhs(g) == var) {
			tree x = gimple_assign_rhs1(g);
			if (TREE_CODE(x) == INTEGER_CST || TREE_CODE(x) == SSA_NAME)
				return x;
			if ((TREE_CODE(x) == PARM_DECL || (VAR_P(x) && !is_global_var(x) &&
							   !hard_register(x))) &&
			    !TREE_ADDRESSABLE(x) &&
			    std::find(assigned.begin(), assigned.end(), x) == assigned.end())
				return x;
			return NULL_TREE;
		}
		if (gasm *other = dyn_cast<gasm *>(g))
			for (unsigned i = 0; i < gimple_asm_noutputs(other); i++)
				assigned.push_back(TREE_VALUE(gimple_asm_output_op(other, i)));
		else if (is_gimple_assign(g))
			assigned.push_back(gimple_assign_lhs(g));
		else if (is_gimple_call(g) && gimple_call_lhs(g))
			assigned.push_back(gimple_call_lhs(g));
	}
	return NULL_TREE;
}

void rewriter::consider_asm(gasm *as)
{
	if (!has_syscall_insn(gimple_asm_string(as)) || gov_opts.syscalls == GOV_SYSCALLS_NONE)
		return;
	location_t loc = stmt_location(fun, as);

	/* the safe forms: "syscall" : "=a"(ret) : "a"/"0"(NR), "D", "S", "d",
	 * and "r" operands that are local register variables in r10, r8, r9
	 * : "rcx", "r11" -- a constant number, the arguments in the syscall
	 * ABI's registers, each in an operand we can rewrite */
	std::string text = gimple_asm_string(as);
	text.erase(0, text.find_first_not_of(" \t\n"));
	text.erase(text.find_last_not_of(" \t\n;") + 1);
	int sysno = -1;
	std::vector<int> ops(6, -1);
	std::vector<tree> regvar(6, NULL_TREE), regval(6, NULL_TREE);
	bool ok = text == "syscall" && gimple_asm_noutputs(as) == 1 &&
		  gimple_asm_nlabels(as) == 0 && clobbers(as, "rcx") && clobbers(as, "r11");
	if (ok) {
		tree out = gimple_asm_output_op(as, 0);
		tree outtype = TREE_TYPE(TREE_VALUE(out));
		ok = constraint(out) == "=a" && INTEGRAL_TYPE_P(outtype) &&
		     TYPE_PRECISION(outtype) == 64 && !hard_register(TREE_VALUE(out));
	}
	for (unsigned i = 0; ok && i < gimple_asm_ninputs(as); i++) {
		tree in = gimple_asm_input_op(as, i);
		std::string con = constraint(in);
		tree value = TREE_VALUE(in);
		std::string reg = register_of(value);
		int word = con == "D" ? 0 : con == "S" ? 1 : con == "d" ? 2
			 : con != "r" ? -1 : reg == "r10" ? 3 : reg == "r8" ? 4 : reg == "r9" ? 5 : -1;
		if (con == "a" || con == "0") {
			ok = sysno < 0 && TREE_CODE(value) == INTEGER_CST && tree_fits_shwi_p(value);
			if (ok)
				sysno = (int)tree_to_shwi(value);
			continue;
		}
		ok = word >= 0 && ops[word] < 0 && is_gimple_reg_type(TREE_TYPE(value)) &&
		     tree_to_uhwi(TYPE_SIZE_UNIT(TREE_TYPE(value))) <= 8;
		if (ok && word >= 3) {
			regvar[word] = value;
			regval[word] = register_value(as, value);
			ok = regval[word] != NULL_TREE;
		} else if (ok) {
			ok = !hard_register(value);
		}
		ops[word < 0 ? 0 : word] = i;
	}
	expanded_location x = expand_location(loc);
	if (!ok || sysno < 0) {
		warning_at(loc, 0, "%s: inline asm syscall at %s:%u is not instrumented; govrt's "
			   "run-time fallback covers it", GOV_PLUGIN_NAME, site_file(loc).c_str(), x.line);
		return;
	}
	if (!gov_syscall_selected(sysno, NULL))
		return;
	while (!ops.empty() && ops.back() < 0)
		ops.pop_back();

	candidate c;
	c.stmt = as;
	c.ops = ops;
	c.regvar = regvar;
	c.regval = regval;
	c.lhs = TREE_VALUE(gimple_asm_output_op(as, 0));
	c.desc.kind = GOV_SITE_SYSCALL;
	c.desc.ret_conv = GOV_RET_RAW;
	c.desc.sysno = sysno;
	const char *sname = gov_syscall_name(sysno);
	c.desc.callee = sname ? sname : "syscall";
	c.desc.types = std::string(ops.size() + 1, GOV_T_LONG);
	describe(c, loc);
	sites.push_back(c);
}

/* ---- rewriting one site ---- */

bool has_regvar(const candidate &c, size_t word)
{
	return word < c.regvar.size() && c.regvar[word];
}

tree operand(gimple *stmt, int op)
{
	if (gcall *call = dyn_cast<gcall *>(stmt))
		return gimple_call_arg(call, op);
	return TREE_VALUE(gimple_asm_input_op(as_a<gasm *>(stmt), op));
}

void set_operand(gimple *stmt, int op, tree value)
{
	if (gcall *call = dyn_cast<gcall *>(stmt))
		gimple_call_set_arg(call, op, value);
	else
		TREE_VALUE(gimple_asm_input_op(as_a<gasm *>(stmt), op)) = value;
}

/* MEM<type>[&var + offset]: a word of the struct gov_call seen as `type`,
 * the GIMPLE form of govrt.h's memcpy into the low bytes. */
tree word(tree var, unsigned offset, tree type)
{
	return build2(MEM_REF, type, build_fold_addr_expr(var),
		      build_int_cst(build_pointer_type(char_type_node), offset));
}

void add(gimple_seq *seq, gimple *g, location_t loc)
{
	gimple_set_location(g, loc);
	gimple_seq_add_stmt(seq, g);
}

void append(basic_block bb, gimple_seq seq)
{
	gimple_stmt_iterator gsi = gsi_last_bb(bb);
	gsi_insert_seq_after(&gsi, seq, GSI_CONTINUE_LINKING);
}

basic_block new_block(function *fun, basic_block after, basic_block like)
{
	basic_block bb = create_empty_bb(after);
	if (current_loops)
		add_bb_to_loop(bb, like->loop_father);
	return bb;
}

void set_result(gimple *stmt, tree value)
{
	if (gcall *call = dyn_cast<gcall *>(stmt))
		gimple_call_set_lhs(call, value);
	else
		TREE_VALUE(gimple_asm_output_op(as_a<gasm *>(stmt), 0)) = value;
}

/* ---- the slow path of a call site, out of line ---- */

/*
 * The slow path is the bulk of a site's code (packing the words,
 * __govrt_dispatch, unpacking, the call again, the returned word), and a
 * unit with many sites (bzip2.c: 215 in 2000 lines, most of them fprintf)
 * would double in size if every site kept its own: every pass after ours
 * would compile all of it. So a call site's slow path is one call,
 *
 *     lhs = (T) __gov_slow.K(&site, &callee, a, b);
 *
 * to a static, cold, never-inlined helper, made once per unit for each
 * *shape* of call:
 *
 *     static R __gov_slow.K(struct gov_site *s, R (*fn)(A, B), A a, B b)
 *     {
 *             struct gov_call c = {};
 *             MEM<A>[&c.arg[0]] = a;  MEM<B>[&c.arg[1]] = b;
 *             if (__govrt_dispatch(s, &c) == GOV_RUN_NATIVE)
 *                     return fn(MEM<A>[&c.arg[0]], MEM<B>[&c.arg[1]]);
 *             return MEM<R>[&c.ret];
 *     }
 *
 * which is govrt.h's GOV_CALL slow branch with the site and the callee as
 * parameters. A struct by value (docs/abi.md "Structs by value") is a
 * parameter of the helper of its own type: its word is the address of that
 * copy. A callee returning a struct gets a zeroed local `r` whose address
 * is c.ret, and the helper returns r when govrt answered (zeroed after a
 * deny or the fail outcome) - even when the site ignores the value, as
 * govrt writes through c.ret.
 *
 * The shape is the call's types reduced to what the x86-64 calling
 * convention distinguishes (a struct keeps its type): a pointer or integer
 * of 4 or 8 bytes is an unsigned integer of that size, a smaller one keeps
 * its signedness (the caller extends it), float and double stay; a
 * variadic callee keeps its number of fixed parameters (a variadic call
 * sets %al). So fprintf(stderr, "%s", s) and fputs(s, f) share one helper,
 * and bzip2.c needs a dozen, not 215 slow paths. Every value keeps its bits: the words govrt sees are the
 * ones GOV_CALL would pack. A callee whose type names a calling convention
 * (ms_abi, regparm...) keeps its exact type; a call that can throw returns the
 * site's own type (the call ends its block, nothing can follow it).
 *
 * Helpers are built as GENERIC and handed to cgraph like the registration
 * constructor (site_table.cc); they carry gov_native, so the pass leaves
 * their own call alone. An exception from the callee unwinds through the
 * helper (no handlers there) to the site's landing pad. The helper is cold,
 * so GCC also predicts the branch to it as very unlikely.
 */
static std::map<std::string, tree> helpers;   /* key -> FUNCTION_DECL, this unit */
static unsigned helper_count;                 /* names __gov_slow.N */

/* What the calling convention sees of a parameter or result type. */
tree value_class(tree type, bool exact)
{
	type = TYPE_MAIN_VARIANT(type);
	if (exact || TREE_CODE(type) == REAL_TYPE || VOID_TYPE_P(type) || AGGREGATE_TYPE_P(type))
		return type;
	unsigned bits = tree_to_uhwi(TYPE_SIZE(type));
	bool uns = bits >= 32 || TYPE_UNSIGNED(type) || POINTER_TYPE_P(type);
	return build_nonstandard_integer_type(bits, uns);
}

/* A calling convention of its own: such a callee keeps its exact type. */
bool abi_attributes(tree fntype)
{
	static const char *const abi[] = { "ms_abi", "sysv_abi", "regparm", "stdcall",
					   "fastcall", "thiscall", "cdecl", "sseregparm" };
	for (const char *a : abi)
		if (lookup_attribute(a, TYPE_ATTRIBUTES(fntype)))
			return true;
	return false;
}

struct shape {
	tree fntype;              /* the helper's type */
	tree fnptr;               /* type of its fn parameter */
	tree ret;                 /* what it returns (void_type_node: nothing) */
	std::vector<tree> args;   /* the classes of the call's arguments */
	std::string key;
};

shape call_shape(gcall *call, const std::vector<int> &ops, tree lhs, bool nothrow)
{
	shape sh;
	tree fntype = gimple_call_fntype(call);
	bool exact = abi_attributes(fntype);
	unsigned nargs = gimple_call_num_args(call);
	for (unsigned i = 0; i < nargs; i++)
		sh.args.push_back(value_class(TREE_TYPE(gimple_call_arg(call, i)), exact));

	/* the callee's type, as a shape */
	tree callee_ret = value_class(TREE_TYPE(fntype), exact);
	tree canon = fntype;
	int nfixed = -1;          /* variadic: the fixed parameters */
	if (!exact) {
		if (!prototype_p(fntype) || stdarg_p(fntype)) {
			nfixed = prototype_p(fntype) ? list_length(TYPE_ARG_TYPES(fntype)) : 0;
			canon = build_varargs_function_type_array(callee_ret, nfixed, sh.args.data());
		} else {
			canon = build_function_type_array(callee_ret, nargs, sh.args.data());
		}
	}
	sh.fnptr = build_pointer_type(canon);
	/* a call that throws ends its block: the helper returns lhs's type */
	sh.ret = !lhs ? void_type_node
		      : nothrow ? callee_ret : TYPE_MAIN_VARIANT(TREE_TYPE(lhs));

	tree site_ptr = TREE_VALUE(TYPE_ARG_TYPES(TREE_TYPE(gov_dispatch_decl())));
	std::vector<tree> params = { site_ptr, sh.fnptr };
	params.insert(params.end(), sh.args.begin(), sh.args.end());
	sh.fntype = build_function_type_array(sh.ret, params.size(), params.data());

	sh.key = std::to_string(TYPE_UID(canon)) + "/" + std::to_string(TYPE_UID(sh.ret)) +
		 "/" + std::to_string(nfixed) + (nothrow ? "n" : "t") + "@";
	for (tree a : sh.args)
		sh.key += std::to_string(TYPE_UID(a)) + ",";
	sh.key += "@";
	for (int op : ops)
		sh.key += std::to_string(op) + ",";
	return sh;
}

tree build_helper(const shape &sh, const std::vector<int> &ops, bool nothrow)
{
	location_t loc = BUILTINS_LOCATION;
	char name[32];
	snprintf(name, sizeof name, "__gov_slow.%u", helper_count++);
	tree decl = build_decl(loc, FUNCTION_DECL, get_identifier(name), sh.fntype);
	SET_DECL_ASSEMBLER_NAME(decl, get_identifier(name));
	TREE_STATIC(decl) = 1;
	TREE_USED(decl) = 1;
	DECL_ARTIFICIAL(decl) = 1;
	DECL_IGNORED_P(decl) = 1;
	DECL_UNINLINABLE(decl) = 1;
	TREE_NOTHROW(decl) = nothrow;
	DECL_ATTRIBUTES(decl) = tree_cons(get_identifier("gov_native"), NULL_TREE,
		tree_cons(get_identifier("cold"), NULL_TREE,
			  tree_cons(get_identifier("noinline"), NULL_TREE, NULL_TREE)));
	tree result = build_decl(loc, RESULT_DECL, NULL_TREE, sh.ret);
	DECL_ARTIFICIAL(result) = 1;
	DECL_IGNORED_P(result) = 1;
	DECL_CONTEXT(result) = decl;
	DECL_RESULT(decl) = result;

	/* parameters: s, fn, then one per argument of the call */
	std::vector<tree> parms;
	for (tree t = TYPE_ARG_TYPES(sh.fntype); t && !VOID_TYPE_P(TREE_VALUE(t)); t = TREE_CHAIN(t)) {
		tree p = build_decl(loc, PARM_DECL, NULL_TREE, TREE_VALUE(t));
		DECL_ARG_TYPE(p) = TREE_VALUE(t);
		DECL_CONTEXT(p) = decl;
		DECL_ARTIFICIAL(p) = 1;
		TREE_USED(p) = 1;
		parms.push_back(p);
	}
	tree chain = NULL_TREE;
	for (size_t i = parms.size(); i-- > 0;) {
		DECL_CHAIN(parms[i]) = chain;
		chain = parms[i];
	}
	DECL_ARGUMENTS(decl) = chain;

	tree c = build_decl(loc, VAR_DECL, get_identifier("c"), gov_call_type());
	DECL_CONTEXT(c) = decl;
	DECL_ARTIFICIAL(c) = 1;
	TREE_ADDRESSABLE(c) = 1;
	TREE_USED(c) = 1;

	tree body = alloc_stmt_list();
	append_to_statement_list(build2(MODIFY_EXPR, void_type_node, c,
					build_constructor(gov_call_type(), NULL)), &body);
	tree callee_ret = TREE_TYPE(TREE_TYPE(sh.fnptr));
	tree r = NULL_TREE;    /* a struct return's temporary */
	if (AGGREGATE_TYPE_P(callee_ret)) {
		r = build_decl(loc, VAR_DECL, get_identifier("r"), callee_ret);
		DECL_CONTEXT(r) = decl;
		DECL_ARTIFICIAL(r) = 1;
		TREE_ADDRESSABLE(r) = 1;
		TREE_USED(r) = 1;
		DECL_CHAIN(c) = r;
		append_to_statement_list(build2(MODIFY_EXPR, void_type_node, r,
						build_constructor(callee_ret, NULL)), &body);
		append_to_statement_list(build2(MODIFY_EXPR, void_type_node,
			word(c, offsetof(gov_call, ret), ptr_type_node),
			build_fold_addr_expr(r)), &body);
	}
	size_t nargs = sh.args.size();
	std::vector<tree> args(nargs);
	for (size_t i = 0; i < nargs; i++)
		args[i] = parms[i + 2];
	for (size_t w = 0; w < ops.size(); w++) {
		tree p = parms[ops[w] + 2];
		if (AGGREGATE_TYPE_P(TREE_TYPE(p))) {
			/* the word is the address of the helper's copy, which
			 * the native call passes on */
			TREE_ADDRESSABLE(p) = 1;
			append_to_statement_list(build2(MODIFY_EXPR, void_type_node,
				word(c, 8 * w, ptr_type_node), build_fold_addr_expr(p)), &body);
			continue;
		}
		append_to_statement_list(build2(MODIFY_EXPR, void_type_node,
						word(c, 8 * w, TREE_TYPE(p)), p), &body);
		args[ops[w]] = word(c, 8 * w, TREE_TYPE(p));
	}
	tree dispatch = build_call_expr_loc(loc, gov_dispatch_decl(), 2, parms[0],
					    build_fold_addr_expr(c));
	tree native = build_call_array_loc(loc, TREE_TYPE(TREE_TYPE(sh.fnptr)), parms[1],
					   nargs, args.data());
	tree is_native = build2(EQ_EXPR, boolean_type_node, dispatch,
				build_int_cst(integer_type_node, GOV_RUN_NATIVE));
	if (!VOID_TYPE_P(sh.ret)) {
		if (!AGGREGATE_TYPE_P(sh.ret))
			native = fold_convert(sh.ret, native);
		tree give = build1(RETURN_EXPR, void_type_node,
				   build2(MODIFY_EXPR, sh.ret, result, native));
		append_to_statement_list(build3(COND_EXPR, void_type_node, is_native, give,
						NULL_TREE), &body);
		tree answer = r ? r : word(c, offsetof(gov_call, ret), sh.ret);
		append_to_statement_list(build1(RETURN_EXPR, void_type_node,
			build2(MODIFY_EXPR, sh.ret, result, answer)), &body);
	} else {
		append_to_statement_list(build3(COND_EXPR, void_type_node, is_native, native,
						NULL_TREE), &body);
	}
	tree block = make_node(BLOCK);
	BLOCK_VARS(block) = c;
	BLOCK_SUPERCONTEXT(block) = decl;
	TREE_USED(block) = 1;
	DECL_INITIAL(decl) = block;
	DECL_SAVED_TREE(decl) = build3(BIND_EXPR, void_type_node, c, body, block);

	/* as cgraph_build_static_cdtor does, with the function being
	 * rewritten put aside */
	location_t saved = input_location;
	input_location = loc;
	push_cfun(NULL);
	current_function_decl = decl;
	allocate_struct_function(decl, false);
	gimplify_function_tree(decl);
	cgraph_node::add_new_function(decl, false);
	set_cfun(NULL);
	current_function_decl = NULL_TREE;
	pop_cfun();
	input_location = saved;
	return decl;
}

/* value, as type (same size, same bits), appended to seq when a statement
 * is needed */
tree as_class(gimple_seq *seq, tree value, tree type, location_t loc)
{
	if (useless_type_conversion_p(type, TREE_TYPE(value)))
		return value;
	if (TREE_CODE(value) == INTEGER_CST)
		return fold_convert(type, value);
	tree t = create_tmp_var(type, "gov_word");
	add(seq, gimple_build_assign(t, NOP_EXPR, value), loc);
	return t;
}

/* SLOW: lhs = (T) __gov_slow.K(&site, &callee, args...); goto JOIN. */
void slow_call(candidate &c, tree site, tree lhs, basic_block slow, basic_block join)
{
	gcall *call = as_a<gcall *>(c.stmt);
	location_t loc = gimple_location(call);
	int lp = lookup_stmt_eh_lp(call);
	bool nothrow = lp <= 0;
	shape sh = call_shape(call, c.ops, lhs, nothrow);
	auto it = helpers.find(sh.key);
	if (it == helpers.end())
		it = helpers.emplace(sh.key, build_helper(sh, c.ops, nothrow)).first;

	gimple_seq seq = NULL;
	vec<tree> args = vNULL;
	args.safe_push(build_fold_addr_expr(site));
	tree fn = create_tmp_var(sh.fnptr, "gov_fn");
	add(&seq, gimple_build_assign(fn, NOP_EXPR, unshare_expr(gimple_call_fn(call))), loc);
	args.safe_push(fn);
	for (unsigned i = 0; i < gimple_call_num_args(call); i++) {
		tree a = gimple_call_arg(call, i);
		args.safe_push(AGGREGATE_TYPE_P(TREE_TYPE(a)) ? unshare_expr(a)
				: as_class(&seq, a, sh.args[i], loc));
	}
	gcall *g = gimple_build_call_vec(it->second, args);
	args.release();
	if (nothrow)
		gimple_call_set_nothrow(g, true);
	if (lhs && useless_type_conversion_p(TREE_TYPE(lhs), sh.ret)) {
		gimple_call_set_lhs(g, unshare_expr(lhs));
		add(&seq, g, loc);
	} else if (lhs) {
		/* only a call that cannot throw gets here (call_shape) */
		tree r = create_tmp_var(sh.ret, "gov_ret");
		gimple_call_set_lhs(g, r);
		add(&seq, g, loc);
		tree t = create_tmp_var(TYPE_MAIN_VARIANT(TREE_TYPE(lhs)), "gov_ret");
		add(&seq, gimple_build_assign(t, NOP_EXPR, r), loc);
		add(&seq, gimple_build_assign(unshare_expr(lhs), t), loc);
	} else {
		add(&seq, g, loc);
	}
	append(slow, seq);
	if (lp)
		add_stmt_to_eh_lp(g, lp);
	make_single_succ_edge(slow, join, EDGE_FALLTHRU);
	if (lp > 0)
		make_eh_edges(g);
}

void rewriter::rewrite(candidate &c, tree site)
{
	gimple *stmt = c.stmt;
	location_t loc = gimple_location(stmt);

	/* The gimplifier already makes SSA names of some temporaries, and an SSA
	 * name has one definition: the three paths assign a variable instead,
	 * and JOIN copies it to the name (into-SSA renames the variable). */
	tree lhs = c.lhs, ssa_lhs = NULL_TREE;
	if (lhs && TREE_CODE(lhs) == SSA_NAME) {
		ssa_lhs = lhs;
		lhs = create_tmp_var(TREE_TYPE(ssa_lhs), "gov_value");
		set_result(stmt, lhs);
	}

	/* isolate the statement: BB (everything before) -> FAST -> JOIN */
	basic_block bb = gimple_bb(stmt);
	gimple_stmt_iterator gsi = gsi_for_stmt(stmt);
	gsi_prev(&gsi);
	edge to_fast = split_block(bb, gsi_end_p(gsi) ? NULL : gsi_stmt(gsi));
	basic_block fast = to_fast->dest;
	gsi = gsi_for_stmt(stmt);
	gsi_next(&gsi);
	/* JOIN: the rest of the block when there is one (a new block, FAST its
	 * only predecessor), else a block on the edge to the successor */
	basic_block join;
	if (!gsi_end_p(gsi)) {
		join = split_block(fast, stmt)->dest;
	} else {
		edge to_join = find_fallthru_edge(fast->succs);
		gcc_assert(to_join);
		join = split_edge(to_join);
	}
	if (ssa_lhs) {
		gimple_stmt_iterator at = gsi_start_bb(join);
		gimple *copy = gimple_build_assign(ssa_lhs, lhs);
		gimple_set_location(copy, loc);
		gsi_insert_before(&at, copy, GSI_NEW_STMT);
	}

	/* BB: the fast path test */
	gimple_seq seq = NULL;
	tree field = gov_site_verdict_field();
	tree verdict = build3(COMPONENT_REF, TREE_TYPE(field), site, field, NULL_TREE);
	TREE_THIS_VOLATILE(verdict) = 1;
	TREE_SIDE_EFFECTS(verdict) = 1;
	tree v = create_tmp_var(unsigned_char_type_node, "gov_verdict");
	add(&seq, gimple_build_assign(v, verdict), loc);
	if (is_a<gcall *>(stmt)) {
		/* the slow path calls a cold helper: GCC predicts it very
		 * unlikely by itself (PRED_COLD_FUNCTION) */
		add(&seq, gimple_build_cond(NE_EXPR, v, build_int_cst(unsigned_char_type_node, 0),
					    NULL_TREE, NULL_TREE), loc);
	} else {
		tree vl = create_tmp_var(long_integer_type_node, "gov_verdict");
		add(&seq, gimple_build_assign(vl, NOP_EXPR, v), loc);
		tree expected = create_tmp_var(long_integer_type_node, "gov_expect");
		gcall *expect = gimple_build_call(builtin_decl_explicit(BUILT_IN_EXPECT), 2, vl,
						  build_int_cst(long_integer_type_node, 0));
		gimple_call_set_lhs(expect, expected);
		add(&seq, expect, loc);
		add(&seq, gimple_build_cond(NE_EXPR, expected, build_int_cst(long_integer_type_node, 0),
					    NULL_TREE, NULL_TREE), loc);
	}
	append(bb, seq);

	basic_block slow = new_block(fun, EXIT_BLOCK_PTR_FOR_FN(fun)->prev_bb, bb);
	edge to_slow = make_edge(bb, slow, EDGE_TRUE_VALUE);
	to_slow->probability = profile_probability::very_unlikely();
	to_fast->flags = (to_fast->flags & ~EDGE_FALLTHRU) | EDGE_FALSE_VALUE;
	to_fast->probability = to_slow->probability.invert();
	if (is_a<gcall *>(stmt)) {
		slow_call(c, site, lhs, slow, join);
		return;
	}

	/* inline asm: the statement cannot be passed to a helper, so its
	 * slow path stays inline */
	basic_block native = new_block(fun, slow, bb);
	basic_block ret = new_block(fun, native, bb);

	/* SLOW: pack the words, ask govrt */
	if (!call_var) {
		call_var = create_tmp_var(gov_call_type(), "gov_call");
		TREE_ADDRESSABLE(call_var) = 1;
	}
	seq = NULL;
	add(&seq, gimple_build_assign(call_var, build_constructor(gov_call_type(), NULL)), loc);
	for (size_t i = 0; i < c.ops.size(); i++) {
		if (c.ops[i] < 0)
			continue;
		tree value = operand(stmt, c.ops[i]);
		tree type = TYPE_MAIN_VARIANT(TREE_TYPE(value));
		if (has_regvar(c, i))
			value = fold_convert(type, c.regval[i]);
		add(&seq, gimple_build_assign(word(call_var, 8 * i, type), value), loc);
	}
	tree result = create_tmp_var(integer_type_node, "gov_result");
	gcall *dispatch = gimple_build_call(gov_dispatch_decl(), 2, build_fold_addr_expr(site),
					    build_fold_addr_expr(call_var));
	gimple_call_set_lhs(dispatch, result);
	add(&seq, dispatch, loc);
	add(&seq, gimple_build_cond(EQ_EXPR, result, build_int_cst(integer_type_node, GOV_RUN_NATIVE),
				    NULL_TREE, NULL_TREE), loc);
	append(slow, seq);
	make_edge(slow, native, EDGE_TRUE_VALUE)->probability = profile_probability::even();
	make_edge(slow, ret, EDGE_FALSE_VALUE)->probability = profile_probability::even();

	/* NATIVE: the original statement again, with the words govrt may have
	 * changed */
	seq = NULL;
	gimple *again = gimple_copy(stmt);
	for (size_t i = 0; i < c.ops.size(); i++) {
		if (c.ops[i] < 0)
			continue;
		tree type = TYPE_MAIN_VARIANT(TREE_TYPE(operand(stmt, c.ops[i])));
		tree t = create_tmp_var(type, "gov_arg");
		add(&seq, gimple_build_assign(t, word(call_var, 8 * i, type)), loc);
		if (has_regvar(c, i))    /* the variable, set right before the asm */
			add(&seq, gimple_build_assign(c.regvar[i], t), loc);
		else
			set_operand(again, c.ops[i], t);
	}
	add(&seq, again, loc);
	append(native, seq);
	int lp = lookup_stmt_eh_lp(stmt);
	if (lp)
		add_stmt_to_eh_lp(again, lp);
	make_single_succ_edge(native, join, EDGE_FALLTHRU);
	if (lp > 0)
		make_eh_edges(again);

	/* RET: what govrt returned, bit for bit from the low bytes of c.ret */
	seq = NULL;
	if (lhs) {
		tree type = TYPE_MAIN_VARIANT(TREE_TYPE(lhs));
		tree t = create_tmp_var(type, "gov_ret");
		add(&seq, gimple_build_assign(t, word(call_var, offsetof(gov_call, ret), type)), loc);
		add(&seq, gimple_build_assign(unshare_expr(lhs), t), loc);
		append(ret, seq);
	}
	make_single_succ_edge(ret, join, EDGE_FALLTHRU);
}

/* ---- the pass ---- */

const pass_data instrument_pass_data = {
	GIMPLE_PASS,
	"govintercept",          /* name, for -fdump-tree-govintercept */
	OPTGROUP_NONE,
	TV_NONE,
	PROP_gimple_lcf | PROP_gimple_leh | PROP_cfg,
	0, 0, 0, 0,
};

class instrument_pass : public gimple_opt_pass {
public:
	instrument_pass(gcc::context *ctxt) : gimple_opt_pass(instrument_pass_data, ctxt) {}

	/* In lto1 the bodies were rewritten when each unit was compiled. */
	bool gate(function *) final override { return !in_lto_p && !seen_error(); }
	unsigned int execute(function *fun) final override;
};

unsigned int instrument_pass::execute(function *fun)
{
	/* __attribute__((gov_native)), code from system headers (glibc's
	 * inline wrappers, libstdc++'s templates) and naked functions (no
	 * frame for the slow path) keep their bodies */
	if (gov_function_is_native(fun->decl) || DECL_IN_SYSTEM_HEADER(fun->decl) ||
	    lookup_attribute("naked", DECL_ATTRIBUTES(fun->decl)))
		return 0;

	rewriter r;
	r.fun = fun;
	basic_block bb;
	FOR_EACH_BB_FN(bb, fun) {
		for (gimple_stmt_iterator gsi = gsi_start_bb(bb); !gsi_end_p(gsi); gsi_next(&gsi)) {
			gimple *stmt = gsi_stmt(gsi);
			if (gcall *call = dyn_cast<gcall *>(stmt))
				r.consider_call(call);
			else if (gasm *as = dyn_cast<gasm *>(stmt))
				r.consider_asm(as);
		}
	}
	if (r.sites.empty())
		return 0;

	std::vector<gov_site_desc *> descs;
	for (candidate &c : r.sites)
		descs.push_back(&c.desc);
	gov_assign_ids(descs);
	/* the blocks we add are not in the dominator tree; whoever needs it
	 * next computes it again */
	free_dominance_info(CDI_DOMINATORS);
	free_dominance_info(CDI_POST_DOMINATORS);
	for (candidate &c : r.sites) {
		tree site = gov_emit_site(c.desc);
		r.rewrite(c, site);
		if (dump_file)
			fprintf(dump_file, ";; govintercept: site %016llx %s %s -> %s at %s:%u (%s)\n",
				(unsigned long long)c.desc.id,
				c.desc.kind == GOV_SITE_SYSCALL ? "syscall" : "call",
				c.desc.caller.c_str(), c.desc.callee.c_str(), c.desc.file.c_str(),
				c.desc.line, c.desc.types.c_str());
		if (gov_opts.verbose) {
			char id[17];
			snprintf(id, sizeof id, "%016llx", (unsigned long long)c.desc.id);
			inform(gimple_location(c.stmt), "%s: site %s: %s calls %s (types %s)",
			       GOV_PLUGIN_NAME, id, c.desc.caller.c_str(), c.desc.callee.c_str(),
			       c.desc.types.c_str());
		}
	}
	if (current_loops)
		loops_state_set(LOOPS_NEED_FIXUP);
	if (gov_opts.verify) {
		verify_gimple_in_cfg(fun, false);
		verify_flow_info();
	}
	return 0;
}

} // namespace

opt_pass *gov_make_instrument_pass(gcc::context *ctxt)
{
	return new instrument_pass(ctxt);
}
