/* clang-plugin/frontend.cc - the clang half of govintercept-llvm.so: the
 * gov_native attribute, and an AST consumer that finds every site of the
 * unit and describes it (caller, callee, type codes, file:line, id), for
 * pass.cc to rewrite in the IR.
 *
 * Why the AST: the IR has lost what a site record needs. `size_t` and
 * `unsigned long` are both i64, `const char *` and `char *` both i8*,
 * `int` and `unsigned` both i32, and a C++ callee is only its mangled
 * name. So the sites are chosen here, on clang's declarations, with the
 * GCC plugin's rules, and each is keyed by its line and column: clang's
 * code generator puts the same position on the call it emits, as a !dbg
 * location, when it tracks locations at all (-Rpass=govintercept or -g;
 * without either the plugin stops with an error saying so).
 *
 * The consumer runs before clang's code generator (AddBeforeMainAction)
 * and only reads the AST.
 *
 * Not here: the IR (pass.cc), options (options.cc).
 */
#include "govintercept-llvm.h"
#include "gov/abi.h"
#include "frontend.h"

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <fnmatch.h>

#include "clang/AST/ASTConsumer.h"
#include "clang/AST/Attr.h"
#include "clang/AST/Mangle.h"
#include "clang/AST/ParentMapContext.h"
#include "clang/AST/RecursiveASTVisitor.h"
#include "clang/Basic/SourceManager.h"
#include "clang/Frontend/CompilerInstance.h"
#include "clang/Frontend/FrontendPluginRegistry.h"
#include "clang/Lex/Preprocessor.h"
#include "clang/Sema/ParsedAttr.h"
#include "clang/Sema/Sema.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

using namespace clang;

gov_unit gov_this_unit;

namespace {

/* ---- __attribute__((gov_native)): stored as annotate("gov_native") ---- */

struct native_attr_info : public ParsedAttrInfo {
	native_attr_info()
	{
		static constexpr Spelling spellings[] = {
			{ ParsedAttr::AS_GNU, "gov_native" },
			{ ParsedAttr::AS_C2x, "gov_native" },
			{ ParsedAttr::AS_CXX11, "gov_native" },
			{ ParsedAttr::AS_CXX11, "gov::native" },
		};
		Spellings = spellings;
	}
	bool diagAppertainsToDecl(Sema &s, const ParsedAttr &attr, const Decl *d) const override
	{
		if (isa<FunctionDecl>(d))
			return true;
		DiagnosticsEngine &diags = s.getDiagnostics();
		diags.Report(attr.getLoc(), gov_warning_id(diags,
			"'gov_native' attribute applies only to functions"));
		return false;
	}
	AttrHandling handleDeclAttribute(Sema &s, Decl *d, const ParsedAttr &attr) const override
	{
		d->addAttr(AnnotateAttr::Create(s.Context, "gov_native", nullptr, 0, attr.getRange()));
		return AttributeApplied;
	}
};
ParsedAttrInfoRegistry::Add<native_attr_info> native_attr("gov_native", "");

/* clang 14's __has_attribute does not ask plugins (clang 16 does), so
 * `#if __has_attribute(gov_native)` would hide the attribute from the
 * programs that test for it. The plugin predefines
 *     #define gov_native no_instrument_function
 * (clang expands macros inside __has_attribute): the test succeeds and
 * __attribute__((gov_native)) arrives as no_instrument_function, which
 * therefore keeps a function native too. */
const char native_predefine[] = "#define gov_native no_instrument_function\n";

bool is_native(const FunctionDecl *fd)
{
	if (fd->hasAttr<NoInstrumentFunctionAttr>())
		return true;
	for (const FunctionDecl *d : fd->redecls())
		for (const AnnotateAttr *a : d->specific_attrs<AnnotateAttr>())
			if (a->getAnnotation() == "gov_native")
				return true;
	return false;
}

bool has_wildcard(const std::string &glob)
{
	return glob.find_first_of("*?[") != std::string::npos;
}

std::string strip_01(std::string s)
{
	return !s.empty() && s[0] == '\01' ? s.substr(1) : s;
}

/* ---- the walk ---- */

class site_finder {
public:
	site_finder(CompilerInstance &ci, ASTContext &ctx)
		: ci(ci), ctx(ctx), sm(ctx.getSourceManager()), names(ctx),
		  glob_matched(gov_opts.targets.size(), false),
		  header_matched(gov_opts.headers.size(), false)
	{
		DiagnosticsEngine &d = ctx.getDiagnostics();
		warn_id = gov_warning_id(d, "%0");
		remark_id = d.getCustomDiagID(DiagnosticsEngine::Remark, "%0");
	}

	void function(FunctionDecl *fd);
	void finish();

	CompilerInstance &ci;
	ASTContext &ctx;
	SourceManager &sm;
	ASTNameGenerator names;
	std::vector<bool> glob_matched;
	std::vector<bool> header_matched;
	unsigned warn_id, remark_id;

	/* the function being walked */
	FunctionDecl *caller = nullptr;
	std::set<std::string> caller_ir;
	std::string caller_name;
	std::vector<gov_site_desc> found;
	/* GCC's line and column of the call (body_walker), 0 0: its own */
	std::pair<unsigned, unsigned> gcc_at = { 0, 0 };

	void call(CallExpr *ce);
	void syscall2(CallExpr *ce, FunctionDecl *fd, bool targeted);
	void inline_asm(GCCAsmStmt *as);
	void describe(gov_site_desc &d, SourceLocation loc);
	bool targets(FunctionDecl *fd, bool *named);
	bool match_targets(FunctionDecl *fd, bool *named);
	std::map<const FunctionDecl *, std::pair<bool, bool>> target_cache;
	void warn(SourceLocation loc, const std::string &msg)
	{
		ctx.getDiagnostics().Report(loc, warn_id) << msg;
	}
	void remark(SourceLocation loc, const std::string &msg)
	{
		ctx.getDiagnostics().Report(loc, remark_id) << msg;
	}
	std::string printable(const FunctionDecl *fd);
	std::string file_of(SourceLocation loc);
};

/* The calls and asm statements of a body in GCC's gimplification order,
 * which numbers the sites sharing a line (callee#n): a call's arguments
 * right to left (x86-64 GCC evaluates them so), each before the call, and
 * everything else left to right. GCC also gives a call that is directly
 * another call's argument the outer call's position (gimplify_arg), line
 * and column: a site records that line, and orders by that column, so
 * records and ids agree with the GCC plugin's. Lambdas and blocks are
 * functions of their own. */
struct body_walker {
	site_finder &f;
	explicit body_walker(site_finder &f) : f(f) {}

	void walk(Stmt *s, std::pair<unsigned, unsigned> inherited)
	{
		if (!s || isa<LambdaExpr>(s) || isa<BlockExpr>(s))
			return;
		if (auto *ce = dyn_cast<CallExpr>(s)) {
			SourceManager &sm = f.sm;
			PresumedLoc p = sm.getPresumedLoc(sm.getExpansionLoc(ce->getExprLoc()));
			std::pair<unsigned, unsigned> at = inherited;
			if (!at.first && p.isValid())
				at = { p.getLine(), p.getColumn() };
			walk(ce->getCallee(), { 0, 0 });
			for (unsigned i = ce->getNumArgs(); i-- > 0;) {
				Expr *arg = ce->getArg(i);
				Expr *bare = arg->IgnoreParens();
				walk(arg, isa<CallExpr>(bare) ? at : std::make_pair(0u, 0u));
			}
			f.gcc_at = at;
			f.call(ce);
			return;
		}
		for (Stmt *child : s->children())
			walk(child, { 0, 0 });
		if (auto *as = dyn_cast<GCCAsmStmt>(s)) {
			f.gcc_at = { 0, 0 };
			f.inline_asm(as);
		}
	}
};

struct function_walker : public RecursiveASTVisitor<function_walker> {
	site_finder &f;
	explicit function_walker(site_finder &f) : f(f) {}
	bool shouldVisitTemplateInstantiations() const { return true; }
	bool VisitFunctionDecl(FunctionDecl *fd) { f.function(fd); return true; }
};

std::string site_finder::printable(const FunctionDecl *fd)
{
	std::string s;
	llvm::raw_string_ostream os(s);
	PrintingPolicy policy(ctx.getLangOpts());
	fd->getNameForDiagnostic(os, policy, true);
	return os.str();
}

/* The file as __FILE__ spells it (-fmacro-prefix-map applies). */
std::string site_finder::file_of(SourceLocation loc)
{
	PresumedLoc p = sm.getPresumedLoc(sm.getExpansionLoc(loc));
	if (p.isInvalid())
		return "";
	llvm::SmallString<256> path(p.getFilename());
	for (const auto &m : ci.getLangOpts().MacroPrefixMap)
		if (llvm::sys::path::replace_path_prefix(path, m.first, m.second))
			break;
	return std::string(path.str());
}

void site_finder::describe(gov_site_desc &d, SourceLocation loc)
{
	SourceLocation x = sm.getExpansionLoc(loc);
	PresumedLoc p = sm.getPresumedLoc(x);
	d.file = file_of(loc);
	d.key_line = d.line = p.isValid() ? p.getLine() : 0;
	d.column = p.isValid() ? p.getColumn() : 0;
	if (gcc_at.first)
		d.line = gcc_at.first;
	d.caller = caller_name;
	d.caller_ir = caller_ir;
	d.loc = loc.getRawEncoding();
	d.order_col = gcc_at.first ? gcc_at.second : d.column;
}

void site_finder::function(FunctionDecl *fd)
{
	if (!fd->doesThisDeclarationHaveABody() || fd->isDependentContext() ||
	    fd->isInvalidDecl() || is_native(fd) || gov_pragma_native(fd, sm) ||
	    fd->hasAttr<NakedAttr>() ||
	    sm.isInSystemHeader(sm.getExpansionLoc(fd->getLocation())))
		return;
	caller = fd;
	caller_name = printable(fd);
	caller_ir.clear();
	if (isa<CXXConstructorDecl>(fd) || isa<CXXDestructorDecl>(fd))
		for (const std::string &n : names.getAllManglings(fd))
			caller_ir.insert(strip_01(n));
	else
		caller_ir.insert(strip_01(names.getName(fd)));
	found.clear();
	body_walker w(*this);
	w.walk(fd->getBody(), { 0, 0 });
	if (found.empty())
		return;

	std::vector<gov_site_desc *> descs;
	for (gov_site_desc &d : found)
		descs.push_back(&d);
	gov_assign_ids(descs);
	for (gov_site_desc &d : found) {
		gov_this_unit.sites.emplace(std::make_pair(d.key_line, d.column), d);
		if (gov_opts.verbose) {
			char id[17];
			snprintf(id, sizeof id, "%016" PRIx64, d.id);
			remark(SourceLocation::getFromRawEncoding(d.loc), std::string(GOV_PLUGIN_NAME) + ": site " + id + ": " + d.caller +
			       " calls " + d.callee + " (types " + d.types + ")");
		}
	}
}

bool site_finder::targets(FunctionDecl *fd, bool *named)
{
	/* asked at every call: once per callee is enough (the globs it
	 * matched are marked the first time) */
	auto cached = target_cache.find(fd->getCanonicalDecl());
	if (cached != target_cache.end()) {
		*named = cached->second.second;
		return cached->second.first;
	}
	bool hit = match_targets(fd, named);
	target_cache[fd->getCanonicalDecl()] = { hit, *named };
	return hit;
}

bool site_finder::match_targets(FunctionDecl *fd, bool *named)
{
	*named = false;
	std::string list[3];
	list[0] = fd->getIdentifier() ? fd->getName().str() : printable(fd);
	list[1] = printable(fd);
	list[2] = strip_01(names.getName(fd));
	bool hit = false;
	for (size_t i = 0; i < gov_opts.targets.size(); i++) {
		for (const std::string &n : list) {
			if (fnmatch(gov_opts.targets[i].c_str(), n.c_str(), 0) == 0) {
				glob_matched[i] = true;
				hit = true;
				*named |= !has_wildcard(gov_opts.targets[i]);
				break;
			}
		}
	}
	if (!gov_opts.headers.empty()) {
		/* GCC keeps the position of a definition, else of the first
		 * declaration: the header is matched the same way */
		const FunctionDecl *where = fd->getDefinition() ? fd->getDefinition() : fd->getFirstDecl();
		FileID id = sm.getFileID(sm.getExpansionLoc(where->getLocation()));
		const FileEntry *fe = sm.getFileEntryForID(id);
		if (fe) {
			std::string real = fe->tryGetRealPathName().str();
			char *r = realpath(fe->getName().str().c_str(), nullptr);
			if (r)
				real = r;
			free(r);
			for (size_t i = 0; i < gov_opts.headers.size(); i++)
				if (real == gov_opts.headers[i]) {
					hit = true;
					header_matched[i] = true;
				}
		}
	}
	return hit;
}

bool starts_with(const std::string &s, const char *prefix)
{
	return s.compare(0, strlen(prefix), prefix) == 0;
}

bool returns_twice(const FunctionDecl *fd)
{
	static const char *const names[] = { "setjmp", "_setjmp", "__sigsetjmp", "sigsetjmp",
		"savectx", "vfork", "getcontext", "qsetjmp", nullptr };
	if (fd->hasAttr<ReturnsTwiceAttr>())
		return true;
	if (!fd->getIdentifier() || !fd->isExternC())
		return false;
	for (const char *const *n = names; *n; n++)
		if (fd->getName() == *n)
			return true;
	return false;
}

/* The prototype's parameter types (this first for a member call) and the
 * types of the arguments actually passed (promoted, for variadic ones). */
void call_types(ASTContext &ctx, CallExpr *ce, FunctionDecl *fd, std::vector<QualType> *params,
		std::vector<QualType> *args)
{
	const CXXMethodDecl *md = dyn_cast<CXXMethodDecl>(fd);
	bool member = md && md->isInstance();
	if (member) {
		params->push_back(ctx.VoidPtrTy);
		args->push_back(ctx.VoidPtrTy);
	}
	const FunctionProtoType *proto = fd->getType()->getAs<FunctionProtoType>();
	if (proto)
		for (QualType p : proto->getParamTypes())
			params->push_back(p);
	unsigned skip = isa<CXXOperatorCallExpr>(ce) && member ? 1 : 0;
	for (unsigned i = skip; i < ce->getNumArgs(); i++)
		args->push_back(ce->getArg(i)->getType());
}

void site_finder::call(CallExpr *ce)
{
	FunctionDecl *fd = ce->getDirectCallee();
	if (!fd || isa<CUDAKernelCallExpr>(ce) || isa<UserDefinedLiteral>(ce))
		return;
	std::string name = fd->getIdentifier() ? fd->getName().str() : "";
	unsigned builtin = fd->getBuiltinID();
	/* govrt itself; builtins without a library function of that name */
	if (starts_with(name, "__govrt_") ||
	    (builtin && !ctx.BuiltinInfo.isLibFunction(builtin) && !ctx.BuiltinInfo.isPredefinedLibFunction(builtin)))
		return;
	if (builtin && starts_with(name, "__"))
		return;

	/* a virtual call goes through the vtable: no callee to match in the
	 * IR, as for GCC (OBJ_TYPE_REF); Base::f() names its callee */
	if (auto *md = dyn_cast<CXXMethodDecl>(fd)) {
		auto *me = dyn_cast<MemberExpr>(ce->getCallee()->IgnoreParenImpCasts());
		if (md->isVirtual() && !(me && me->hasQualifier()) && !md->hasAttr<FinalAttr>() &&
		    !(md->getParent() && md->getParent()->hasAttr<FinalAttr>()))
			return;
	}
	std::string mangled = strip_01(names.getName(fd));
	bool libc_linkage = fd->isExternC() && fd->isExternallyVisible() && !name.empty() &&
			    mangled == name && !fd->hasAttr<AsmLabelAttr>();
	bool named;
	bool targeted = targets(fd, &named);
	if (libc_linkage && name == "syscall") {
		syscall2(ce, fd, targeted);
		return;
	}
	const gov_libc_entry *libc = libc_linkage ? gov_libc_lookup(name.c_str()) : nullptr;
	int sysno = libc ? gov_syscall_number(libc->syscall) : -1;
	bool wrapper = libc && gov_syscall_selected(sysno, libc->name);
	if (!targeted && !wrapper)
		return;

	SourceLocation loc = ce->getExprLoc();
	gov_site_desc d;
	d.kind = GOV_SITE_CALL;
	d.ret_conv = libc ? libc->ret_conv : GOV_RET_LIBC;
	d.sysno = sysno;
	d.callee = printable(fd);
	d.callee_ir = mangled;
	describe(d, loc);

	std::vector<QualType> params, args;
	call_types(ctx, ce, fd, &params, &args);
	const char *why = nullptr;
	bool quiet = false;
	if (libc_linkage && name == "alloca") {
		/* the slow path would allocate in its own frame, and clang emits
		 * alloca as an instruction: no library function to call */
		why = "it allocates in its caller's frame (alloca)";
	} else if (fd->isNoReturn()) {
		quiet = true;
		why = "it does not return";
	} else if (returns_twice(fd)) {
		quiet = true;
		why = "it returns twice";
	} else if (args.size() > GOV_MAX_ARGS) {
		why = "it passes more arguments than a site holds (GOV_MAX_ARGS)";
	} else {
		d.types = gov_call_types(ctx, params, args, ce->getCallReturnType(ctx), 0, libc, &why);
	}
	if (d.types.empty()) {
		std::string msg = std::string(GOV_PLUGIN_NAME) + ": call to '" + d.callee + "' at " +
				  d.file + ":" + std::to_string(d.line) + " is not instrumented: " + why;
		if (!quiet && (named || wrapper))
			warn(loc, msg);
		else if (gov_opts.verbose)
			remark(loc, msg);
		return;
	}
	d.nwords = args.size();
	d.named = named || wrapper;
	found.push_back(d);
}

/* syscall(2): a site of kind syscall when the number is a constant; the
 * number stays an operand, the site passes the other arguments. */
void site_finder::syscall2(CallExpr *ce, FunctionDecl *fd, bool targeted)
{
	if (!targeted && gov_opts.syscalls == GOV_SYSCALLS_NONE)
		return;
	SourceLocation loc = ce->getExprLoc();
	Expr::EvalResult nr;
	if (ce->getNumArgs() == 0 || ce->getArg(0)->isValueDependent() ||
	    !ce->getArg(0)->EvaluateAsInt(nr, ctx)) {
		PresumedLoc p = sm.getPresumedLoc(sm.getExpansionLoc(loc));
		warn(loc, std::string(GOV_PLUGIN_NAME) + ": syscall(2) with a number not known at "
		     "compile time at " + file_of(loc) + ":" + std::to_string(p.getLine()) +
		     " is not instrumented; govrt's run-time fallback covers it");
		return;
	}
	int sysno = (int)nr.Val.getInt().getExtValue();
	if (!targeted && !gov_syscall_selected(sysno, nullptr))
		return;
	gov_site_desc d;
	d.kind = GOV_SITE_SYSCALL;
	d.ret_conv = GOV_RET_LIBC;
	d.sysno = sysno;
	const char *sname = gov_syscall_name(sysno);
	d.callee = sname ? sname : "syscall";
	d.callee_ir = "syscall";
	d.first_arg = 1;
	describe(d, loc);

	std::vector<QualType> params, args;
	call_types(ctx, ce, fd, &params, &args);
	const char *why = nullptr;
	if (args.size() - 1 > GOV_MAX_ARGS)
		why = "it passes more arguments than a site holds (GOV_MAX_ARGS)";
	else
		d.types = gov_call_types(ctx, params, args, ce->getCallReturnType(ctx), 1,
			sname ? gov_libc_for_syscall(sname, args.size() - 1) : nullptr, &why);
	if (d.types.empty()) {
		warn(loc, std::string(GOV_PLUGIN_NAME) + ": syscall(2) of '" + d.callee + "' at " +
		     d.file + ":" + std::to_string(d.line) + " is not instrumented: " + why);
		return;
	}
	d.nwords = args.size() - 1;
	d.named = true;
	found.push_back(d);
}

bool has_syscall_insn(const std::string &s)
{
	for (size_t p = s.find("syscall"); p != std::string::npos; p = s.find("syscall", p + 1)) {
		bool start = p == 0 || strchr(" \t\n;", s[p - 1]);
		bool end = p + 7 >= s.size() || strchr(" \t\n;#", s[p + 7]);
		if (start && end)
			return true;
	}
	return false;
}

/* A local register variable: only the asm operand itself is guaranteed to
 * be in that register, so such operands are not rewritten. */
bool hard_register(const Expr *e)
{
	const DeclRefExpr *ref = dyn_cast<DeclRefExpr>(e->IgnoreParenImpCasts());
	const VarDecl *v = ref ? dyn_cast<VarDecl>(ref->getDecl()) : nullptr;
	return v && v->getStorageClass() == SC_Register && v->hasAttr<AsmLabelAttr>();
}

/* The register a local register variable lives in ("r10"), or "". */
std::string register_of(const Expr *e)
{
	const DeclRefExpr *ref = dyn_cast<DeclRefExpr>(e->IgnoreParenImpCasts());
	const VarDecl *v = ref ? dyn_cast<VarDecl>(ref->getDecl()) : nullptr;
	if (!v || v->getStorageClass() != SC_Register || !v->hasAttr<AsmLabelAttr>())
		return "";
	std::string r = v->getAttr<AsmLabelAttr>()->getLabel().str();
	r.erase(0, r.find_first_not_of("*%"));
	return r;
}

/* Statements that end a basic block in GCC's CFG: the register variable's
 * assignment must be in the asm's own block, as the GCC plugin requires. */
bool has_control_flow(const Stmt *s)
{
	if (!s)
		return false;
	if (isa<IfStmt>(s) || isa<ForStmt>(s) || isa<WhileStmt>(s) || isa<DoStmt>(s) ||
	    isa<SwitchStmt>(s) || isa<GotoStmt>(s) || isa<IndirectGotoStmt>(s) ||
	    isa<LabelStmt>(s) || isa<SwitchCase>(s) || isa<ReturnStmt>(s) ||
	    isa<BreakStmt>(s) || isa<ContinueStmt>(s) || isa<AbstractConditionalOperator>(s) ||
	    isa<CXXTryStmt>(s) || isa<CXXThrowExpr>(s) || isa<StmtExpr>(s))
		return true;
	if (auto *bo = dyn_cast<BinaryOperator>(s))
		if (bo->isLogicalOp())
			return true;
	for (const Stmt *c : s->children())
		if (has_control_flow(c))
			return true;
	return false;
}

/* The variables a statement may assign: plain and compound assignments,
 * ++ and --, asm outputs; a variable whose address is taken counts too. */
void assigned_in(const Stmt *s, std::set<const VarDecl *> *out)
{
	if (!s)
		return;
	const Expr *target = nullptr;
	if (auto *bo = dyn_cast<BinaryOperator>(s)) {
		if (bo->isAssignmentOp())
			target = bo->getLHS();
	} else if (auto *uo = dyn_cast<UnaryOperator>(s)) {
		if (uo->isIncrementDecrementOp() || uo->getOpcode() == UO_AddrOf)
			target = uo->getSubExpr();
	} else if (auto *as = dyn_cast<GCCAsmStmt>(s)) {
		for (unsigned i = 0; i < as->getNumOutputs(); i++)
			if (auto *r = dyn_cast<DeclRefExpr>(as->getOutputExpr(i)->IgnoreParenImpCasts()))
				if (auto *v = dyn_cast<VarDecl>(r->getDecl()))
					out->insert(v);
	}
	if (target)
		if (auto *r = dyn_cast<DeclRefExpr>(target->IgnoreParenImpCasts()))
			if (auto *v = dyn_cast<VarDecl>(r->getDecl()))
				out->insert(v);
	for (const Stmt *c : s->children())
		assigned_in(c, out);
}

/* A value GCC's register_value() accepts. GCC gimplifies `r10 = X` into
 * `tmp = X; r10 = tmp` unless X is a constant, a parameter or a local whose
 * address is not taken, so anything else arrives in a fresh temporary and
 * is accepted; a parameter or local must not be assigned between the
 * register variable's assignment and the asm. */
bool register_value_ok(const Expr *x, const std::set<const VarDecl *> &assigned)
{
	if (!x || x->isValueDependent())
		return false;
	auto *r = dyn_cast<DeclRefExpr>(x->IgnoreParenImpCasts());
	const VarDecl *v = r ? dyn_cast<VarDecl>(r->getDecl()) : nullptr;
	return !(v && v->hasLocalStorage() && assigned.count(v));
}

/* The register variable's last assignment before the asm, in the asm's own
 * block with no control flow in between, gives an acceptable value. */
bool register_assigned_here(ASTContext &ctx, const GCCAsmStmt *as, const VarDecl *var)
{
	auto parents = ctx.getParents(*as);
	const CompoundStmt *block = parents.empty() ? nullptr : parents[0].get<CompoundStmt>();
	if (!block)
		return false;
	std::vector<const Stmt *> before;
	for (const Stmt *c : block->body()) {
		if (c == as)
			break;
		before.push_back(c);
	}
	std::set<const VarDecl *> assigned;
	for (size_t i = before.size(); i-- > 0;) {
		const Stmt *st = before[i];
		if (auto *ds = dyn_cast<DeclStmt>(st))
			for (const Decl *d : ds->decls())
				if (d == var)
					return register_value_ok(var->getInit(), assigned);
		if (auto *bo = dyn_cast<BinaryOperator>(st))
			if (bo->getOpcode() == BO_Assign)
				if (auto *r = dyn_cast<DeclRefExpr>(bo->getLHS()->IgnoreParenImpCasts()))
					if (r->getDecl() == var)
						return register_value_ok(bo->getRHS(), assigned);
		if (has_control_flow(st))
			return false;
		assigned_in(st, &assigned);
	}
	return false;
}

const VarDecl *var_of(const Expr *e)
{
	const DeclRefExpr *ref = dyn_cast<DeclRefExpr>(e->IgnoreParenImpCasts());
	return ref ? dyn_cast<VarDecl>(ref->getDecl()) : nullptr;
}

void site_finder::inline_asm(GCCAsmStmt *as)
{
	std::string text = as->getAsmString()->getString().str();
	if (!has_syscall_insn(text) || gov_opts.syscalls == GOV_SYSCALLS_NONE)
		return;
	SourceLocation loc = as->getAsmLoc();

	/* the safe forms, as in the GCC plugin: "syscall" : "=a"(ret) :
	 * "a"/"0"(NR), "D", "S", "d", and "r" operands that are local register
	 * variables in r10, r8, r9 : "rcx", "r11". The IR passes a register
	 * variable's value as the asm's operand ({r10}), so the rewriting is
	 * the same as for "D"; the conditions on its assignment are GCC's, for
	 * the same sites and warnings. */
	text.erase(0, text.find_first_not_of(" \t\n"));
	size_t last = text.find_last_not_of(" \t\n;");
	text.erase(last == std::string::npos ? 0 : last + 1);
	bool rcx = false, r11 = false;
	for (unsigned i = 0; i < as->getNumClobbers(); i++) {
		std::string c = as->getClobber(i).str();
		if (!c.empty() && c[0] == '%')
			c.erase(0, 1);
		rcx |= c == "rcx";
		r11 |= c == "r11";
	}
	bool ok = text == "syscall" && as->getNumOutputs() == 1 && !as->isAsmGoto() && rcx && r11;
	if (ok) {
		const Expr *out = as->getOutputExpr(0);
		QualType t = out->getType().getCanonicalType();
		ok = as->getOutputConstraint(0) == "=a" && t->isIntegralOrEnumerationType() &&
		     ctx.getTypeSize(t) == 64 && !hard_register(out);
	}
	int sysno = -1;
	int ops[6] = { -1, -1, -1, -1, -1, -1 };
	for (unsigned i = 0; ok && i < as->getNumInputs(); i++) {
		std::string con = as->getInputConstraint(i).str();
		const Expr *value = as->getInputExpr(i);
		std::string reg = register_of(value);
		int word = con == "D" ? 0 : con == "S" ? 1 : con == "d" ? 2
			 : con != "r" ? -1 : reg == "r10" ? 3 : reg == "r8" ? 4 : reg == "r9" ? 5 : -1;
		if (con == "a" || con == "0") {
			Expr::EvalResult nr;
			ok = sysno < 0 && !value->isValueDependent() && value->EvaluateAsInt(nr, ctx);
			if (ok)
				sysno = (int)nr.Val.getInt().getExtValue();
			continue;
		}
		QualType t = value->getType().getCanonicalType();
		ok = word >= 0 && ops[word] < 0 &&
		     (t->isIntegralOrEnumerationType() || t->isPointerType()) &&
		     ctx.getTypeSize(t) <= 64;
		if (ok && word >= 3)
			ok = register_assigned_here(ctx, as, var_of(value));
		else if (ok)
			ok = !hard_register(value);
		if (ok)
			ops[word] = i;
	}
	PresumedLoc p = sm.getPresumedLoc(sm.getExpansionLoc(loc));
	if (!ok || sysno < 0) {
		warn(loc, std::string(GOV_PLUGIN_NAME) + ": inline asm syscall at " + file_of(loc) +
		     ":" + std::to_string(p.getLine()) + " is not instrumented; govrt's run-time "
		     "fallback covers it");
		return;
	}
	if (!gov_syscall_selected(sysno, nullptr))
		return;
	int n = 6;
	while (n > 0 && ops[n - 1] < 0)
		n--;
	gov_site_desc d;
	d.kind = GOV_SITE_SYSCALL;
	d.ret_conv = GOV_RET_RAW;
	d.sysno = sysno;
	const char *sname = gov_syscall_name(sysno);
	d.callee = sname ? sname : "syscall";
	d.callee_ir = "";
	d.types = std::string(n + 1, GOV_T_LONG);
	d.nwords = n;
	for (int i = 0; i < 6; i++)
		d.asm_ops[i] = i < n ? ops[i] : -1;
	d.named = true;
	describe(d, loc);
	found.push_back(d);
}

/* "'a', 'b'" */
std::string quoted_list(const std::vector<std::string> &names)
{
	std::string out;
	for (const std::string &n : names)
		out += (out.empty() ? "'" : ", '") + n + "'";
	return out;
}

/*
 * Targets that matched nothing, as in the GCC plugin: one warning per unit
 * for the names and globs of -gov-targets and for each -gov-targets-header
 * that declared no callee (typed for this build: a typo there would
 * silently instrument nothing); the bulk lists (-gov-targets-file,
 * -gov-exports-of) name far more functions than one unit calls, so their
 * misses are remarks with -gov-verbose only.
 */
void site_finder::finish()
{
	DiagnosticsEngine &diags = ctx.getDiagnostics();
	if (diags.hasErrorOccurred())
		return;
	const std::string &unit = gov_this_unit.main_file;
	std::vector<std::string> named;
	for (size_t i = 0; i < gov_opts.targets.size(); i++)
		if (!glob_matched[i] && gov_opts.target_origins[i] == GOV_TARGET_FROM_OPTION)
			named.push_back(gov_opts.targets[i]);
	if (!named.empty() && gov_opts.warn_unmatched)
		diags.Report(warn_id) << std::string(GOV_PLUGIN_NAME) + ": targets= " +
			quoted_list(named) + " matched no function called in " + unit +
			" (-gov-unmatched=ignore silences this)";
	for (size_t i = 0; i < gov_opts.headers.size(); i++)
		if (!header_matched[i] && gov_opts.warn_unmatched)
			diags.Report(warn_id) << std::string(GOV_PLUGIN_NAME) + ": targets-header '" +
				gov_opts.header_args[i] + "' declares no function called in " + unit +
				" (-gov-unmatched=ignore silences this)";
	if (!gov_opts.verbose)
		return;
	for (size_t i = 0; i < gov_opts.targets.size(); i++) {
		gov_target_origin o = gov_opts.target_origins[i];
		if (!glob_matched[i] && o != GOV_TARGET_FROM_OPTION)
			diags.Report(remark_id) << std::string(GOV_PLUGIN_NAME) + ": " +
				(o == GOV_TARGET_FROM_FILE ? "targets-file" : "exports-of") +
				" target '" + gov_opts.targets[i] + "' matches no function called in " +
				unit;
	}
}

class consumer : public ASTConsumer {
public:
	explicit consumer(CompilerInstance &ci) : ci(ci) {}
	void HandleTranslationUnit(ASTContext &ctx) override
	{
		site_finder f(ci, ctx);
		function_walker w(f);
		w.TraverseDecl(ctx.getTranslationUnitDecl());
		f.finish();
		gov_pragma_finish(ctx.getDiagnostics());
	}

private:
	CompilerInstance &ci;
};

bool emits_code(frontend::ActionKind k)
{
	return k == frontend::EmitObj || k == frontend::EmitAssembly || k == frontend::EmitBC ||
	       k == frontend::EmitLLVM || k == frontend::EmitLLVMOnly ||
	       k == frontend::EmitCodeGenOnly;
}

class action : public PluginASTAction {
protected:
	std::unique_ptr<ASTConsumer> CreateASTConsumer(CompilerInstance &ci, llvm::StringRef file) override
	{
		DiagnosticsEngine &d = ci.getDiagnostics();
		unsigned err = d.getCustomDiagID(DiagnosticsEngine::Error, "%0");
		std::vector<std::string> errors;
		gov_load_options(&errors);
		for (const std::string &e : errors)
			d.Report(err) << std::string(GOV_PLUGIN_NAME) + ": " + e;
		Preprocessor &pp = ci.getPreprocessor();
		pp.setPredefines(pp.getPredefines() + native_predefine);
		gov_this_unit = gov_unit();
		gov_this_unit.seen = true;
		gov_this_unit.main_file = file.str();
		gov_this_unit.has_locations =
			ci.getCodeGenOpts().getDebugInfo() != codegenoptions::NoDebugInfo;
		if (!gov_this_unit.has_locations && emits_code(ci.getFrontendOpts().ProgramAction))
			d.Report(err) << std::string(GOV_PLUGIN_NAME) + ": the IR will have no source "
				"positions to find sites by: add -Rpass=" GOV_PLUGIN_NAME " (it tracks "
				"locations without emitting debug info) or -g";
		return std::make_unique<consumer>(ci);
	}
	bool ParseArgs(const CompilerInstance &ci, const std::vector<std::string> &args) override
	{
		if (args.empty())
			return true;
		DiagnosticsEngine &d = ci.getDiagnostics();
		d.Report(d.getCustomDiagID(DiagnosticsEngine::Error, "%0"))
			<< std::string(GOV_PLUGIN_NAME) + ": unknown option '" + args[0] +
			   "': options are -mllvm -gov-KEY=VALUE (-mllvm -gov-help lists them)";
		return false;
	}
	ActionType getActionType() override { return AddBeforeMainAction; }
};

} // namespace

/* A custom diagnostic keeps the level it was made with: clang applies -w
 * and -Werror only to its own warnings. The plugin's warnings follow them,
 * as the GCC plugin's do. */
unsigned gov_warning_id(DiagnosticsEngine &d, const char *format)
{
	DiagnosticsEngine::Level level = DiagnosticsEngine::Warning;
	if (d.getIgnoreAllWarnings())
		level = DiagnosticsEngine::Ignored;
	else if (d.getWarningsAsErrors())
		level = DiagnosticsEngine::Error;
	return d.getDiagnosticIDs()->getCustomDiagID((DiagnosticIDs::Level)level, format);
}

static FrontendPluginRegistry::Add<action> registered(GOV_PLUGIN_NAME,
	"Rhodes: find call and syscall sites for govintercept's IR pass");

/* ---- ids, shared with gcc-plugin/site_table.cc's rule ---- */

void gov_assign_ids(std::vector<gov_site_desc *> &sites)
{
	std::stable_sort(sites.begin(), sites.end(), [](const gov_site_desc *a, const gov_site_desc *b) {
		return a->line != b->line ? a->line < b->line : a->order_col < b->order_col;
	});
	std::map<std::string, unsigned> seen;
	for (gov_site_desc *d : sites) {
		std::string key = d->file + ":" + std::to_string(d->line) + ":" + d->caller + ":" + d->callee;
		unsigned n = ++seen[key];
		std::string callee = n == 1 ? d->callee : d->callee + "#" + std::to_string(n);
		d->id = gov_site_id(d->file.c_str(), d->line, d->caller.c_str(), callee.c_str());
	}
}
