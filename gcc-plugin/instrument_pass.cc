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
 *           if (__builtin_expect(v, 0) != 0)   slow edge very unlikely
 *             goto SLOW; else goto FAST;
 *   FAST:   lhs = callee(a, b);                the original statement
 *   JOIN:   ...
 *   SLOW:   c = {};                            struct gov_call, on the stack
 *           MEM<typeof a>[&c.arg[0]] = a;      bit for bit, low bytes
 *           MEM<typeof b>[&c.arg[1]] = b;
 *           r = __govrt_dispatch(&site, &c);
 *           if (r == GOV_RUN_NATIVE) goto NATIVE; else goto RET;
 *   NATIVE: a' = MEM<typeof a>[&c.arg[0]]; b' = ...;
 *           lhs = callee(a', b');              same EH landing pad as FAST
 *           goto JOIN;
 *   RET:    lhs = MEM<typeof lhs>[&c.ret];     goto JOIN;
 *
 * SLOW, NATIVE and RET are placed at the end of the function; JOIN is a
 * block of its own (the edge after FAST is split), and when lhs is one of
 * the SSA names the gimplifier already made, the three paths assign a
 * variable that JOIN copies into it (an SSA name has one definition). The
 * same shape serves syscall(2) (the number stays a constant operand; the
 * site passes the other arguments) and the one inline asm form we can
 * rewrite safely: "syscall" with the number a constant "a" input,
 * arguments in "D", "S", "d" and the result in "=a" (GOV_RET_RAW). Any
 * other inline asm containing a syscall instruction gets a warning with
 * its file:line.
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
	} else if (gimple_call_must_tail_p(call)) {
		*why = "it is a musttail call";
	} else if (gimple_call_chain(call)) {
		*why = "it passes a static chain";
	} else if (gimple_call_va_arg_pack_p(call)) {
		*why = "it forwards __builtin_va_arg_pack ()";
	} else if (stmt_can_make_abnormal_goto(call)) {
		*why = "it can make an abnormal goto";
	} else if (gimple_call_lhs(call) &&
		   !is_gimple_reg_type(TREE_TYPE(gimple_call_lhs(call)))) {
		*why = "it returns a struct or union";
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

void rewriter::consider_asm(gasm *as)
{
	if (!has_syscall_insn(gimple_asm_string(as)) || gov_opts.syscalls == GOV_SYSCALLS_NONE)
		return;
	location_t loc = stmt_location(fun, as);

	/* the one safe form: "syscall" : "=a"(ret) : "a"/"0"(NR), "D", "S", "d"
	 * : "rcx", "r11" -- a constant number, at most three arguments, all in
	 * operands we can rewrite */
	std::string text = gimple_asm_string(as);
	text.erase(0, text.find_first_not_of(" \t\n"));
	text.erase(text.find_last_not_of(" \t\n;") + 1);
	int sysno = -1;
	std::vector<int> ops(3, -1);
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
		if (con == "a" || con == "0") {
			ok = sysno < 0 && TREE_CODE(value) == INTEGER_CST && tree_fits_shwi_p(value);
			if (ok)
				sysno = (int)tree_to_shwi(value);
		} else if (con == "D" || con == "S" || con == "d") {
			int word = con == "D" ? 0 : con == "S" ? 1 : 2;
			ok = ops[word] < 0 && is_gimple_reg_type(TREE_TYPE(value)) &&
			     tree_to_uhwi(TYPE_SIZE_UNIT(TREE_TYPE(value))) <= 8 &&
			     !hard_register(value);
			ops[word] = i;
		} else {
			ok = false;
		}
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
	edge to_join = !gsi_end_p(gsi) ? split_block(fast, stmt) : find_fallthru_edge(fast->succs);
	gcc_assert(to_join);
	basic_block join = split_edge(to_join);
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
	tree vl = create_tmp_var(long_integer_type_node, "gov_verdict");
	add(&seq, gimple_build_assign(vl, NOP_EXPR, v), loc);
	tree expected = create_tmp_var(long_integer_type_node, "gov_expect");
	gcall *expect = gimple_build_call(builtin_decl_explicit(BUILT_IN_EXPECT), 2, vl,
					  build_int_cst(long_integer_type_node, 0));
	gimple_call_set_lhs(expect, expected);
	add(&seq, expect, loc);
	add(&seq, gimple_build_cond(NE_EXPR, expected, build_int_cst(long_integer_type_node, 0),
				    NULL_TREE, NULL_TREE), loc);
	append(bb, seq);

	basic_block slow = new_block(fun, EXIT_BLOCK_PTR_FOR_FN(fun)->prev_bb, bb);
	basic_block native = new_block(fun, slow, bb);
	basic_block ret = new_block(fun, native, bb);
	edge to_slow = make_edge(bb, slow, EDGE_TRUE_VALUE);
	to_slow->probability = profile_probability::very_unlikely();
	to_fast->flags = (to_fast->flags & ~EDGE_FALLTHRU) | EDGE_FALSE_VALUE;
	to_fast->probability = to_slow->probability.invert();

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
		add(&seq, gimple_build_assign(word(call_var, 8 * i, TYPE_MAIN_VARIANT(TREE_TYPE(value))),
					      value), loc);
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
