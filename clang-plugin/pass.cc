/* clang-plugin/pass.cc - the LLVM half of govintercept-llvm.so: a module
 * pass at the start of every pipeline (-O0 included) that rewrites each
 * call frontend.cc described into gov/govrt.h's GOV_CALL shape, emits the
 * site records and the module's registration, and writes the listing.
 *
 * A site `%r = call T @callee(a, b)` becomes
 *
 *   head:   %v = load volatile i8, gov_site.N.verdict
 *           br (%v != 0), %slow, %fast            !prof: slow very unlikely
 *   fast:   %r1 = call T @callee(a, b)            the original instruction
 *           br %join
 *   slow:   %r2 = call T @gov_site.N.slow(a, b)   the slow path, out of line
 *           br %join
 *   join:   %r = phi [%r1, fast], [%r2, slow]
 *
 * and the slow path, a function of its own (rewriter::slow_path), packs
 * the words, calls __govrt_dispatch, and makes the call natively with the
 * words govrt may have changed or returns what govrt wrote.
 *
 * A struct by value (docs/abi.md "Structs by value") is already lowered by
 * the x86-64 ABI when the pass sees the call: one passed in memory is a
 * `byval` pointer to the caller's copy, which is its word; one passed in
 * registers is one IR value per eightbyte, stored at 0 and 8 in a slot of
 * the slow path (gov.struct.N) whose address is its word, and loaded back
 * for the native call. A struct return is an `sret` pointer, zeroed and
 * put in `ret`, or a coerced value (`{ i32, double }`, `i16`) loaded from a
 * zeroed slot whose address is `ret`; the type string, parsed with
 * gov/typestr.h, says which words are structs and their sizes.
 *
 * An invoke (C++) keeps its unwind edge on both calls (the slow path is
 * invoked). The same shape
 * serves syscall(2) (the number stays) and the one inline asm form the
 * front end accepts (its D, S, d inputs are the words).
 *
 * Why at PipelineStartEP: it runs first in every pipeline clang builds,
 * -O0 to -O3, and in the pre-link half of -flto (the bitcode carries the
 * rewritten bodies and the table), before any inlining or folding, so each
 * call still has the position the front end recorded.
 *
 * Not here: choosing sites (frontend.cc).
 */
#include "govintercept-llvm.h"
#include "gov/abi.h"
#include "gov/typestr.h"

#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "llvm/IR/Constants.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/DiagnosticInfo.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/InlineAsm.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/IntrinsicInst.h"
#include "llvm/IR/MDBuilder.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/PassManager.h"
#include "llvm/IR/Verifier.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Passes/PassPlugin.h"
#include "llvm/Transforms/Utils/BasicBlockUtils.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"

using namespace llvm;

namespace {

struct emitter {
	Module &m;
	LLVMContext &c;
	const DataLayout &dl;
	StructType *site_ty = nullptr, *call_ty = nullptr, *module_ty = nullptr;
	FunctionCallee dispatch;
	unsigned count = 0;
	std::vector<std::string> listing;

	explicit emitter(Module &m) : m(m), c(m.getContext()), dl(m.getDataLayout()) {}
	bool build_types();
	Constant *string(const std::string &s);
	GlobalVariable *site(const gov_site_desc &d);
	void register_module();
	void error(const std::string &msg)
	{
		c.emitError(std::string(GOV_PLUGIN_NAME) + ": " + msg);
	}
	void warn(const std::string &msg)
	{
		/* LLVM 14 has no generic warning diagnostic: clang's format, by hand */
		errs() << "warning: " GOV_PLUGIN_NAME ": " << msg << "\n";
	}
};

/* The records of gov/abi.h as LLVM types; the layout is checked against
 * the header's offsetof()s, so a 32-bit target stops here. */
bool emitter::build_types()
{
	Type *i8 = Type::getInt8Ty(c), *i32 = Type::getInt32Ty(c), *i64 = Type::getInt64Ty(c);
	Type *str = Type::getInt8PtrTy(c);
	site_ty = StructType::create(c, { i64, i8, i8, i8, i8, i32, str, str, str, str, i32, i8,
					  ArrayType::get(i8, 3), i32, i32 }, "gov.site");
	call_ty = StructType::create(c, { ArrayType::get(i64, GOV_MAX_ARGS), i64 }, "gov.call");
	module_ty = StructType::create(c, { i32, i32, site_ty->getPointerTo(),
					    site_ty->getPointerTo(), str }, "gov.module");
	const StructLayout *sl = dl.getStructLayout(site_ty);
	static const size_t offsets[] = {
		offsetof(gov_site, id), offsetof(gov_site, kind), offsetof(gov_site, ret_conv),
		offsetof(gov_site, nparams), offsetof(gov_site, reserved), offsetof(gov_site, sysno),
		offsetof(gov_site, caller), offsetof(gov_site, callee), offsetof(gov_site, types),
		offsetof(gov_site, file), offsetof(gov_site, line), offsetof(gov_site, verdict),
		offsetof(gov_site, pad), offsetof(gov_site, decision), offsetof(gov_site, pad2),
	};
	bool ok = sl->getSizeInBytes() == sizeof(gov_site) &&
		  dl.getTypeAllocSize(call_ty) == sizeof(gov_call) &&
		  dl.getTypeAllocSize(module_ty) == sizeof(gov_module);
	for (unsigned i = 0; ok && i < 15; i++)
		ok = sl->getElementOffset(i) == offsets[i];
	if (!ok) {
		error("the target's layout of struct gov_site is not gov/abi.h's x86-64 one "
		      "(a 64-bit target is needed)");
		return false;
	}
	dispatch = m.getOrInsertFunction("__govrt_dispatch",
		FunctionType::get(i32, { site_ty->getPointerTo(), call_ty->getPointerTo() }, false));
	return true;
}

Constant *emitter::string(const std::string &s)
{
	Constant *data = ConstantDataArray::getString(c, s);
	auto *gv = new GlobalVariable(m, data->getType(), true, GlobalValue::PrivateLinkage, data,
				      ".gov.str");
	gv->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
	gv->setAlignment(Align(1));
	return ConstantExpr::getPointerCast(gv, Type::getInt8PtrTy(c));
}

std::string list_field(const std::string &s)
{
	std::string out;
	for (char ch : s) {
		if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\\') {
			char esc[5];
			snprintf(esc, sizeof esc, "\\%03o", (unsigned char)ch);
			out += esc;
		} else {
			out += ch;
		}
	}
	return out;
}

GlobalVariable *emitter::site(const gov_site_desc &d)
{
	if (count == 0)
		register_module();
	Type *i8 = Type::getInt8Ty(c), *i32 = Type::getInt32Ty(c), *i64 = Type::getInt64Ty(c);
	Constant *init = ConstantStruct::get(site_ty, {
		ConstantInt::get(i64, d.id), ConstantInt::get(i8, d.kind),
		ConstantInt::get(i8, d.ret_conv), ConstantInt::get(i8, d.nwords),
		ConstantInt::get(i8, 0), ConstantInt::get(i32, (uint32_t)d.sysno),
		string(d.caller), string(d.callee), string(d.types), string(d.file),
		ConstantInt::get(i32, d.line), ConstantInt::get(i8, 0),
		ConstantAggregateZero::get(ArrayType::get(i8, 3)), ConstantInt::get(i32, 0),
		ConstantInt::get(i32, 0) });
	auto *gv = new GlobalVariable(m, site_ty, false, GlobalValue::InternalLinkage, init,
				      "__gov_site." + std::to_string(count++));
	gv->setSection(GOV_SITES_SECTION);
	gv->setAlignment(Align(8));   /* no more: padding would split the array */
	appendToUsed(m, { gv });

	char line[64];
	snprintf(line, sizeof line, "%016" PRIx64 " %s ", d.id,
		 d.kind == GOV_SITE_SYSCALL ? "syscall" : "call");
	listing.push_back(std::string(line) + list_field(d.caller) + " " + list_field(d.callee) +
			  " " + list_field(d.file) + ":" + std::to_string(d.line) + "\n");
	return gv;
}

/* __start_gov_sites / __stop_gov_sites: weak hidden, as in gov/govrt.h. */
Constant *section_bound(Module &m, StructType *site_ty, const char *name)
{
	GlobalVariable *gv = m.getNamedGlobal(name);
	if (!gv) {
		gv = new GlobalVariable(m, ArrayType::get(site_ty, 0), false,
					GlobalValue::ExternalWeakLinkage, nullptr, name);
		gv->setVisibility(GlobalValue::HiddenVisibility);
	}
	return ConstantExpr::getPointerCast(gv, site_ty->getPointerTo());
}

/* What gov/govrt.h's per-unit constructor does by hand:
 *   static const struct gov_module __gov_module = { GOV_ABI_VERSION, 0,
 *       __start_gov_sites, __stop_gov_sites, resource };
 *   static void ctor(void) { __govrt_register_module(&__gov_module); } */
void emitter::register_module()
{
	Type *i32 = Type::getInt32Ty(c);
	Constant *resource = gov_opts.resource.empty()
		? ConstantPointerNull::get(Type::getInt8PtrTy(c)) : string(gov_opts.resource);
	Constant *init = ConstantStruct::get(module_ty, {
		ConstantInt::get(i32, GOV_ABI_VERSION), ConstantInt::get(i32, 0),
		section_bound(m, site_ty, "__start_gov_sites"),
		section_bound(m, site_ty, "__stop_gov_sites"), resource });
	auto *mod = new GlobalVariable(m, module_ty, true, GlobalValue::InternalLinkage, init,
				       "__gov_module");
	mod->setAlignment(Align(8));

	FunctionCallee reg = m.getOrInsertFunction("__govrt_register_module",
		FunctionType::get(Type::getVoidTy(c), { module_ty->getPointerTo() }, false));
	Function *ctor = Function::Create(FunctionType::get(Type::getVoidTy(c), false),
					  GlobalValue::InternalLinkage, "__gov_register_module", m);
	ctor->addFnAttr(Attribute::NoUnwind);
	ctor->addFnAttr(Attribute::UWTable);
	IRBuilder<> b(BasicBlock::Create(c, "", ctor));
	b.CreateCall(reg, { mod });
	b.CreateRetVoid();
	appendToGlobalCtors(m, ctor, 65535);
}

/* ---- rewriting one function ---- */

/* Where a site's word comes from in the IR call: `n` operands from `op`;
 * for a struct (size > 0) its byval pointer, or its eightbytes. */
struct word_src {
	int op = -1;            /* -1: an asm word not passed (zero) */
	unsigned n = 1;
	uint32_t size = 0;      /* a struct's size, 0 for a scalar */
	bool byval = false;
};

/* The IR operands of each word, reading the ABI's lowering (above); false
 * when the call does not have the shape the type string implies. */
static bool word_sources(CallBase *cb, const gov_site_desc &d, std::vector<word_src> &w,
			 bool *sret, uint32_t *ret_size)
{
	*sret = false;
	*ret_size = 0;
	if (cb->isInlineAsm()) {
		for (unsigned i = 0; i < d.nwords; i++)
			w.push_back({ d.asm_ops[i], 1, 0, false });
		return true;
	}
	struct gov_typestr ts;
	const char *why;
	size_t where;
	if (gov_typestr_parse(d.types.c_str(), &ts, &why, &where) < 0 || ts.n != d.nwords + 1)
		return false;
	unsigned op = d.first_arg;
	*ret_size = ts.size[0];
	if (ts.top[0] == GOV_T_STRUCT && cb->arg_size() > op && cb->paramHasAttr(op, Attribute::StructRet)) {
		*sret = true;
		op++;
	}
	if (ts.top[0] == GOV_T_STRUCT && !*sret && cb->getType()->isVoidTy())
		return false;
	for (unsigned i = 0; i < d.nwords; i++) {
		word_src s{ (int)op, 1, 0, false };
		if (ts.top[i + 1] == GOV_T_STRUCT) {
			s.size = ts.size[i + 1];
			s.byval = op < cb->arg_size() && cb->paramHasAttr(op, Attribute::ByVal);
			s.n = s.byval ? 1 : (s.size + 7) / 8;
			if (!s.byval && s.n > 2)
				return false;
		}
		w.push_back(s);
		op += s.n;
	}
	return op == cb->arg_size();
}

/* A zeroed-on-use slot of 16 bytes or more at b's place (a function's
 * entry). */
static AllocaInst *slot(IRBuilder<> &b, uint64_t size)
{
	AllocaInst *a = b.CreateAlloca(ArrayType::get(b.getInt8Ty(), size < 16 ? 16 : (size + 7) & ~7ull),
				       nullptr, "gov.struct");
	a->setAlignment(Align(16));
	return a;
}

static Value *at(IRBuilder<> &b, Value *base, unsigned off, Type *t)
{
	Value *p = b.CreatePointerCast(base, b.getInt8PtrTy());
	p = b.CreateConstInBoundsGEP1_32(b.getInt8Ty(), p, off);
	return b.CreatePointerCast(p, t->getPointerTo());
}

/* Attributes of the caller that do not hold for its slow path (it
 * returns, writes memory, is not to be inlined back). */
static const Attribute::AttrKind not_for_slow[] = {
	Attribute::AlwaysInline, Attribute::InlineHint, Attribute::NoReturn, Attribute::Naked,
	Attribute::ReadNone, Attribute::ReadOnly, Attribute::WriteOnly, Attribute::ArgMemOnly,
	Attribute::InaccessibleMemOnly, Attribute::InaccessibleMemOrArgMemOnly,
	Attribute::Speculatable, Attribute::NoFree, Attribute::NoSync, Attribute::WillReturn,
};

struct rewriter {
	emitter &e;
	Function &f;

	rewriter(emitter &e, Function &f) : e(e), f(f) {}
	Function *slow_path(CallBase *cb, const gov_site_desc &d, const std::vector<word_src> &w,
			    bool sret, uint32_t ret_size, GlobalVariable *site);
	void rewrite(CallBase *cb, const gov_site_desc &d, const std::vector<word_src> &w, bool sret,
		     uint32_t ret_size, GlobalVariable *site);
};

/* The site's slow path, out of line: `T <site>.slow(the call's operands)`,
 * internal, cold and never inlined, taking what the call would pass and
 * returning what it would return:
 *
 *   entry:  store zeroinitializer, %gov.call
 *           store a -> word 0, b -> word 1        bit for bit, low bytes
 *           %d = call i32 @__govrt_dispatch(site, %gov.call)
 *           br (%d == GOV_RUN_NATIVE), %native, %ret
 *   native: %r = call T @callee(word 0, word 1)   the words govrt may change
 *           ret %r
 *   ret:    ret (load T, gov.call.ret)            denied or emulated
 *
 * Inline in the caller, around each site, the slow paths took registers
 * and stack in functions whose hot loops were nowhere near a site (bzip2's
 * BZ2_blockSort: 5 % more instructions, clang-plugin/README.md "Cost").
 * The native call inside is the site's call (its callee or asm, calling
 * convention, attributes: byval and sret copy or point as they did);
 * an exception it throws leaves through the caller's invoke of this. */
Function *rewriter::slow_path(CallBase *cb, const gov_site_desc &d, const std::vector<word_src> &w,
			      bool sret, uint32_t ret_size, GlobalVariable *site)
{
	LLVMContext &c = e.c;
	std::vector<Type *> params;
	for (Value *a : cb->args())
		params.push_back(a->getType());
	Type *rt = cb->getType();
	Function *h = Function::Create(FunctionType::get(rt, params, false),
				       GlobalValue::InternalLinkage, site->getName() + ".slow",
				       f.getParent());
	AttributeList fa = AttributeList::get(c, f.getAttributes().getFnAttrs(), AttributeSet(), {});
	for (Attribute::AttrKind k : not_for_slow)
		fa = fa.removeFnAttribute(c, k);
	h->setAttributes(fa);
	h->addFnAttr(Attribute::NoInline);
	h->addFnAttr(Attribute::Cold);
	if (!h->hasFnAttribute(Attribute::OptimizeNone)) /* -O0: they conflict */
		h->addFnAttr(Attribute::OptimizeForSize);
	h->setCallingConv(CallingConv::C);

	BasicBlock *entry = BasicBlock::Create(c, "entry", h);
	BasicBlock *native = BasicBlock::Create(c, "gov.native", h);
	BasicBlock *ret = BasicBlock::Create(c, "gov.ret", h);
	IRBuilder<> b(entry);
	AllocaInst *call_var = b.CreateAlloca(e.call_ty, nullptr, "gov.call");
	call_var->setAlignment(Align(8));
	auto word_ptr = [&](unsigned i, Type *t) {
		Value *p = b.CreateConstInBoundsGEP2_32(e.call_ty, call_var, 0, 0);
		p = b.CreateConstInBoundsGEP2_32(ArrayType::get(b.getInt64Ty(), GOV_MAX_ARGS), p, 0, i);
		return b.CreatePointerCast(p, t->getPointerTo());
	};
	/* a struct in registers gets a slot for its bytes; a struct return
	 * not through sret one for govrt to write it in */
	std::vector<AllocaInst *> slots(w.size(), nullptr);
	for (unsigned i = 0; i < w.size(); i++)
		if (w[i].size && !w[i].byval)
			slots[i] = slot(b, w[i].size);
	const DataLayout &layout = f.getParent()->getDataLayout();
	uint64_t ret_bytes = !ret_size ? 0 : sret ? ret_size : layout.getTypeAllocSize(rt);
	AllocaInst *ret_slot = ret_size && !sret ? slot(b, ret_bytes) : nullptr;

	/* pack the words, ask govrt */
	b.CreateStore(ConstantAggregateZero::get(e.call_ty), call_var);
	for (unsigned i = 0; i < w.size(); i++) {
		if (w[i].op < 0)
			continue;
		Value *a = h->getArg(w[i].op);
		if (slots[i]) { /* its eightbytes, as in memory */
			for (unsigned k = 0; k < w[i].n; k++) {
				Value *piece = h->getArg(w[i].op + k);
				b.CreateStore(piece, at(b, slots[i], 8 * k, piece->getType()));
			}
			a = slots[i];
		}
		b.CreateStore(a, word_ptr(i, a->getType()));
	}
	Value *ret_place = sret ? static_cast<Value *>(h->getArg(d.first_arg)) : ret_slot;
	if (ret_place) { /* zeroed: a deny returns zeroes */
		b.CreateMemSet(ret_place, b.getInt8(0), ret_bytes, MaybeAlign(1));
		Value *rp = b.CreateConstInBoundsGEP2_32(e.call_ty, call_var, 0, 1);
		b.CreateStore(b.CreatePtrToInt(ret_place, b.getInt64Ty()),
			      b.CreatePointerCast(rp, b.getInt64Ty()->getPointerTo()));
	}
	Value *res = b.CreateCall(e.dispatch, { site, call_var }, "gov.result");
	MDBuilder md(c);
	b.CreateCondBr(b.CreateICmpEQ(res, b.getInt32(GOV_RUN_NATIVE)), native, ret,
		       md.createBranchWeights(1, 1));

	/* native: the site's call, with the words govrt may have changed */
	b.SetInsertPoint(native);
	std::vector<Value *> args;
	for (Argument &a : h->args())
		args.push_back(&a);
	for (unsigned i = 0; i < w.size(); i++) {
		if (w[i].op < 0)
			continue;
		if (slots[i]) { /* the eightbytes from the struct the word points at */
			Value *base = b.CreateLoad(slots[i]->getType(), word_ptr(i, slots[i]->getType()),
						   "gov.arg");
			for (unsigned k = 0; k < w[i].n; k++) {
				Type *t = params[w[i].op + k];
				args[w[i].op + k] = b.CreateLoad(t, at(b, base, 8 * k, t), "gov.arg");
			}
			continue;
		}
		Type *t = params[w[i].op];
		args[w[i].op] = b.CreateLoad(t, word_ptr(i, t), "gov.arg");
	}
	SmallVector<OperandBundleDef, 1> bundles;
	cb->getOperandBundlesAsDefs(bundles);
	CallInst *again = b.CreateCall(cb->getFunctionType(), cb->getCalledOperand(), args, bundles);
	again->setCallingConv(cb->getCallingConv());
	again->setAttributes(cb->getAttributes());
	if (rt->isVoidTy())
		b.CreateRetVoid();
	else
		b.CreateRet(again);

	/* ret: what govrt returned, bit for bit from the low bytes of c.ret */
	b.SetInsertPoint(ret);
	if (ret_slot) { /* govrt wrote the struct in the slot: the coerced value */
		b.CreateRet(b.CreateLoad(rt, b.CreatePointerCast(ret_slot, rt->getPointerTo()), "gov.ret"));
	} else if (!rt->isVoidTy()) {
		Value *p = b.CreateConstInBoundsGEP2_32(e.call_ty, call_var, 0, 1);
		b.CreateRet(b.CreateLoad(rt, b.CreatePointerCast(p, rt->getPointerTo()), "gov.ret"));
	} else {
		b.CreateRetVoid();
	}
	return h;
}

/* The site's head and its two ways: the original call, or the slow path
 * (slow_path) with the same operands, invoked if the call was. */
void rewriter::rewrite(CallBase *cb, const gov_site_desc &d, const std::vector<word_src> &w,
		       bool sret, uint32_t ret_size, GlobalVariable *site)
{
	LLVMContext &c = e.c;
	DebugLoc dl = cb->getDebugLoc();
	Function *h = slow_path(cb, d, w, sret, ret_size, site);

	BasicBlock *head = cb->getParent();
	BasicBlock *fast = head->splitBasicBlock(cb, "gov.fast");
	BasicBlock *join;
	auto *inv = dyn_cast<InvokeInst>(cb);
	if (inv)
		join = SplitEdge(fast, inv->getNormalDest());
	else
		join = fast->splitBasicBlock(cb->getNextNode(), "gov.join");
	join->setName("gov.join");
	BasicBlock *slow = BasicBlock::Create(c, "gov.slow", &f);

	/* head: the verdict byte */
	head->getTerminator()->eraseFromParent();
	IRBuilder<> b(head);
	b.SetCurrentDebugLocation(dl);
	Value *verdict = b.CreateConstInBoundsGEP2_32(e.site_ty, site, 0, 11);
	LoadInst *v = b.CreateLoad(b.getInt8Ty(), verdict, true, "gov.verdict");
	Value *cond = b.CreateICmpNE(v, b.getInt8(0));
	MDBuilder md(c);
	b.CreateCondBr(cond, slow, fast, md.createBranchWeights(1, (1u << 20) - 1));

	/* slow: the out-of-line slow path, as the call was made */
	b.SetInsertPoint(slow);
	std::vector<Value *> args(cb->arg_begin(), cb->arg_end());
	CallBase *r2;
	if (inv) {
		r2 = b.CreateInvoke(h, join, inv->getUnwindDest(), args);
		/* the landing pad gets the same incoming values from slow */
		for (PHINode &phi : inv->getUnwindDest()->phis())
			phi.addIncoming(phi.getIncomingValueForBlock(fast), slow);
	} else {
		r2 = b.CreateCall(h, args);
		b.CreateBr(join);
	}

	Type *rt = cb->getType();
	if (!rt->isVoidTy() && !cb->use_empty()) {
		PHINode *phi = PHINode::Create(rt, 2, "gov.value", &join->front());
		phi->setDebugLoc(dl);
		std::vector<Use *> uses;
		for (Use &u : cb->uses())
			uses.push_back(&u);
		for (Use *u : uses)
			u->set(phi);
		phi->addIncoming(cb, fast);
		phi->addIncoming(r2, slow);
	}
}

/* ---- matching IR calls to the front end's sites ---- */

gov_site_desc *find_site(Function &f, CallBase *cb)
{
	const DebugLoc &loc = cb->getDebugLoc();
	if (!loc)
		return nullptr;
	std::string callee;
	bool is_asm = cb->isInlineAsm();
	if (!is_asm) {
		Function *fn = dyn_cast<Function>(cb->getCalledOperand()->stripPointerCasts());
		if (!fn)
			return nullptr;
		callee = fn->getName().str();
	}
	/* positions inside an inlined scope belong to another function */
	if (loc.getInlinedAt())
		return nullptr;
	unsigned line = loc.getLine(), col = loc.getCol();
	gov_site_desc *best = nullptr;
	auto range = gov_this_unit.sites.equal_range({ line, col });
	for (auto it = range.first; it != range.second; ++it) {
		gov_site_desc &d = it->second;
		if (!d.used && d.callee_ir == callee && d.caller_ir.count(f.getName().str()) &&
		    (is_asm == d.callee_ir.empty()))
			return &d;
	}
	/* the column differs: the leftmost unused site of that callee on the line */
	for (auto it = gov_this_unit.sites.lower_bound({ line, 0u });
	     it != gov_this_unit.sites.end() && it->first.first == line; ++it) {
		gov_site_desc &d = it->second;
		if (!d.used && d.callee_ir == callee && d.caller_ir.count(f.getName().str()) &&
		    (is_asm == d.callee_ir.empty()) && !best)
			best = &d;
	}
	return best;
}

void write_listing(emitter &e)
{
	if (gov_opts.list_path.empty() || e.listing.empty())
		return;
	const char *path = gov_opts.list_path.c_str();
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0) {
		e.error(std::string("cannot open list '") + path + "': " + strerror(errno));
		return;
	}
	for (const std::string &l : e.listing) {
		if (write(fd, l.data(), l.size()) != (ssize_t)l.size()) {
			e.error(std::string("cannot write list '") + path + "': " + strerror(errno));
			break;
		}
	}
	close(fd);
}

/* A site the front end found, with no call at its position in the IR but
 * an LLVM intrinsic there: clang lowered it (memcpy, memset, memmove, some
 * math). A warning when the user named the callee, a note with
 * -gov-verbose. A site with nothing at all at its position was dead code
 * clang did not emit (a switch on a constant): it never runs, nothing to
 * say. */
void unmatched(Module &m, emitter &e)
{
	std::set<std::pair<unsigned, unsigned>> intrinsics;
	std::set<std::string> defined;
	for (Function &f : m) {
		if (f.isDeclaration())
			continue;
		for (BasicBlock &bb : f)
			for (Instruction &i : bb)
				if (auto *ii = dyn_cast<IntrinsicInst>(&i))
					if (!isa<DbgInfoIntrinsic>(ii) && ii->getDebugLoc())
						intrinsics.insert({ ii->getDebugLoc().getLine(),
								    ii->getDebugLoc().getCol() });
	}
	for (auto &s : gov_this_unit.sites) {
		const gov_site_desc &d = s.second;
		if (d.used || (!d.named && !gov_opts.verbose) || !intrinsics.count(s.first))
			continue;
		std::string msg = "call to '" + d.callee + "' at " + d.file + ":" + std::to_string(d.line) +
				  " is not instrumented: clang emits it as an LLVM intrinsic";
		if (d.named)
			e.warn(msg);
		else
			errs() << "note: " GOV_PLUGIN_NAME ": " << msg << "\n";
	}
}

struct gov_pass : PassInfoMixin<gov_pass> {
	PreservedAnalyses run(Module &m, ModuleAnalysisManager &);
	static bool isRequired() { return true; }
};

PreservedAnalyses gov_pass::run(Module &m, ModuleAnalysisManager &)
{
	emitter e(m);
	if (!gov_this_unit.seen) {
		e.error("the clang half is not loaded: add -Xclang -load -Xclang with the "
			"plugin's path next to -fpass-plugin");
		return PreservedAnalyses::all();
	}
	if (gov_this_unit.sites.empty())
		return PreservedAnalyses::all();
	if (!e.build_types())
		return PreservedAnalyses::all();

	bool changed = false;
	std::vector<Function *> defined; /* not the slow paths added on the way */
	for (Function &f : m)
		if (!f.isDeclaration())
			defined.push_back(&f);
	for (Function *fp : defined) {
		Function &f = *fp;
		std::vector<std::pair<CallBase *, gov_site_desc *>> todo;
		for (BasicBlock &bb : f)
			for (Instruction &i : bb)
				if (auto *cb = dyn_cast<CallBase>(&i))
					if (gov_site_desc *d = find_site(f, cb)) {
						d->used = true;
						todo.emplace_back(cb, d);
					}
		std::stable_sort(todo.begin(), todo.end(), [](const auto &a, const auto &b) {
			return a.second->line != b.second->line ? a.second->line < b.second->line
								: a.second->column < b.second->column;
		});
		rewriter r(e, f);
		for (auto &t : todo) {
			CallBase *cb = t.first;
			const gov_site_desc &d = *t.second;
			std::vector<word_src> w;
			bool sret = false;
			uint32_t ret_size = 0;
			if (cb->isMustTailCall() || isa<CallBrInst>(cb) ||
			    !word_sources(cb, d, w, &sret, &ret_size)) {
				e.warn("call to '" + d.callee + "' at " + d.file + ":" +
				       std::to_string(d.line) + " is not instrumented: " +
				       (cb->isMustTailCall() ? "it is a musttail call"
							     : "its IR call does not pass one value per argument"));
				continue;
			}
			r.rewrite(cb, d, w, sret, ret_size, e.site(d));
			changed = true;
		}
	}
	unmatched(m, e);
	write_listing(e);
	if (gov_opts.verify && verifyModule(m, &errs()))
		e.error("the IR verifier rejects the rewritten module (above)");
	return changed ? PreservedAnalyses::none() : PreservedAnalyses::all();
}

} // namespace

extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo llvmGetPassPluginInfo()
{
	return { LLVM_PLUGIN_API_VERSION, GOV_PLUGIN_NAME, "1", [](PassBuilder &pb) {
		pb.registerPipelineStartEPCallback([](ModulePassManager &mpm, OptimizationLevel) {
			mpm.addPass(gov_pass());
		});
	} };
}
