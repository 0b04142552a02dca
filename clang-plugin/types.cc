/* clang-plugin/types.cc - a site's Rhodes type string from clang's types,
 * with the rules of gcc-plugin/types.cc (and of the libc table):
 *   integers by signedness and width: i u (up to 32 bits), l L (64 bits),
 *     and z for size_t (through the typedef chain: std::size_t, size_type);
 *   double d, float f; a returned pointer is p;
 *   a pointer followed by a size_t parameter is b (pointee const) or o;
 *   otherwise const char * is s and any other pointer or reference p.
 * Arguments beyond the prototype take the libc table's codes when they fit,
 * else their promoted types. A struct by value is its layout `{...}`, spelt
 * as gcc-plugin/types.cc and govexports spell it (docs/abi.md "Structs by
 * value"); pass.cc finds its bytes in the ABI-lowered IR call. No code for
 * unions by value, structs the layout cannot spell, long double, complex,
 * vectors, 128-bit integers: such a call is not a site.
 *
 * Not here: choosing calls (frontend.cc).
 */
#include "govintercept-llvm.h"
#include "gov/abi.h"
#include "frontend.h"
#include "gov/typestr.h"

#include <cstring>

#include "clang/AST/DeclCXX.h"

using namespace clang;

bool gov_is_size_t(QualType t)
{
	QualType canon = t.getCanonicalType();
	if (!canon->isUnsignedIntegerType() || canon->isBooleanType() ||
	    canon->getAs<BuiltinType>() == nullptr ||
	    canon->castAs<BuiltinType>()->getKind() != BuiltinType::ULong)
		return false;
	for (QualType cur = t;;) {
		const TypedefType *tt = cur->getAs<TypedefType>();
		if (!tt)
			return false;
		if (tt->getDecl()->getName() == "size_t")
			return true;
		cur = tt->getDecl()->getUnderlyingType();
	}
}

static bool is_const_char_pointer(ASTContext &ctx, QualType t)
{
	if (!t->isPointerType())
		return false;
	QualType pointee = t->getPointeeType();
	return pointee.isConstQualified() &&
	       ctx.hasSameType(pointee.getUnqualifiedType(), ctx.CharTy);
}

/* ---- a struct by value as its layout ---- */

static bool struct_layout(ASTContext &ctx, QualType rec, bool carry, std::string &out,
			  const char **why);

static bool is_data_pointer(QualType t)
{
	t = t.getCanonicalType();
	return t->isPointerType() && !t->getPointeeType()->isFunctionType();
}

/* One member's scalar code (c h i u l L f d p), 0 with *why. */
static char member_code(ASTContext &ctx, QualType t, const char **why)
{
	t = t.getCanonicalType();
	if (t->isIntegralOrEnumerationType() && !t->isBitIntType()) {
		bool uns = t->isUnsignedIntegerOrEnumerationType();
		switch (ctx.getTypeSize(t)) {
		case 8: return 'c';
		case 16: return 'h';
		case 32: return uns ? 'u' : 'i';
		case 64: return uns ? 'L' : 'l';
		}
	}
	if (const BuiltinType *bt = t->getAs<BuiltinType>()) {
		if (bt->getKind() == BuiltinType::Double)
			return 'd';
		if (bt->getKind() == BuiltinType::Float)
			return 'f';
	}
	if (t->isPointerType() || t->isReferenceType() || t->isNullPtrType())
		return 'p';
	*why = "a struct member without a code (long double, a vector, a complex)";
	return 0;
}

/* One member: a count for a C array (arrays of arrays multiply), then its
 * code or nested layout; an array's elements carry no strings or buffers. */
static bool struct_member(ASTContext &ctx, QualType t, bool carry, std::string &out,
			  const char **why)
{
	uint64_t count = 1;
	t = t.getCanonicalType();
	while (const ConstantArrayType *at = ctx.getAsConstantArrayType(t)) {
		count *= at->getSize().getZExtValue();
		t = at->getElementType().getCanonicalType();
		if (count == 0) {
			*why = "a flexible or zero-length array in a struct";
			return false;
		}
		if (count > GOV_STRUCT_MAX) {
			*why = "an array member of too many elements";
			return false;
		}
	}
	if (t->isArrayType()) {
		*why = "a flexible or zero-length array in a struct";
		return false;
	}
	if (count > 1) {
		out += std::to_string(count);
		carry = false;
	}
	if (t->isRecordType())
		return struct_layout(ctx, t, carry, out, why);
	char c = member_code(ctx, t, why);
	if (!c)
		return false;
	out += c;
	return true;
}

/* carry: a parameter, whose string and buffer members travel (the rule of
 * parameters: a data pointer before a size_t member is b and the size_t z,
 * else a char * is s); a returned struct's pointers are p and size_t L. */
static bool struct_layout(ASTContext &ctx, QualType rec, bool carry, std::string &out,
			  const char **why)
{
	const RecordDecl *rd = rec->getAsRecordDecl();
	if (!rd || rd->isUnion()) {
		*why = "a union by value";
		return false;
	}
	if (const auto *cxx = dyn_cast<CXXRecordDecl>(rd))
		if (cxx->getNumBases() || cxx->isDynamicClass() || !cxx->canPassInRegisters()) {
			*why = "a C++ class with a base, a vtable or a non-trivial copy";
			return false;
		}
	size_t start = out.size();
	out += '{';
	std::vector<const FieldDecl *> fields(rd->field_begin(), rd->field_end());
	bool length_member = false;
	for (size_t i = 0; i < fields.size(); i++) {
		const FieldDecl *f = fields[i];
		if (f->isBitField()) {
			*why = "a bit-field in a struct";
			return false;
		}
		QualType t = f->getType();
		if (carry && length_member) {
			out += GOV_T_SIZE;
			length_member = false;
		} else if (carry && is_data_pointer(t) && i + 1 < fields.size() &&
			   !fields[i + 1]->isBitField() && gov_is_size_t(fields[i + 1]->getType())) {
			out += GOV_T_BUF;
			length_member = true;
		} else if (carry && is_data_pointer(t) &&
			   ctx.hasSameType(t.getCanonicalType()->getPointeeType().getUnqualifiedType(),
					   ctx.CharTy)) {
			out += GOV_T_STR;
		} else if (!struct_member(ctx, t, carry, out, why)) {
			return false;
		}
		if (out.size() >= GOV_TYPES_MAX)
			break;
	}
	if (out.size() == start + 1) {
		*why = "a struct with no members";
		return false;
	}
	out += '}';
	return true;
}

/* A struct parameter or return as its layout item, checked against clang's
 * own size and alignment (a packed or over-aligned struct has no natural
 * layout). Empty, with *why, when there is none. */
static std::string struct_item(ASTContext &ctx, QualType type, bool is_return, const char **why)
{
	std::string out;
	QualType t = type.getCanonicalType();
	if (!struct_layout(ctx, t, !is_return, out, why))
		return "";
	if (out.size() >= GOV_TYPES_MAX) {
		*why = "a struct whose layout is longer than a type string";
		return "";
	}
	struct gov_typestr ts;
	const char *pwhy = nullptr;
	size_t where;
	if (gov_typestr_parse(out.c_str(), &ts, &pwhy, &where) < 0 || ts.n != 1) {
		*why = pwhy ? pwhy : "a struct layout that does not parse";
		return "";
	}
	if (ts.size[0] != ctx.getTypeSizeInChars(t).getQuantity() ||
	    ts.align[0] != ctx.getTypeAlignInChars(t).getQuantity()) {
		*why = "a struct whose layout is not C's natural one (packed or aligned)";
		return "";
	}
	return out;
}

char gov_type_code(ASTContext &ctx, QualType type, const QualType *next, bool is_return,
		   const char **why)
{
	QualType t = type.getCanonicalType();
	if (t->isVoidType()) {
		if (is_return)
			return GOV_T_VOID;
		*why = "a void parameter";
		return 0;
	}
	if (t->isIntegralOrEnumerationType() && !t->isBitIntType()) {
		if (const EnumType *et = t->getAs<EnumType>())
			if (!et->getDecl()->isComplete()) {
				*why = "a type without a Rhodes type code";
				return 0;
			}
		if (gov_is_size_t(type))
			return GOV_T_SIZE;
		uint64_t bits = ctx.getTypeSize(t);
		bool uns = t->isUnsignedIntegerOrEnumerationType();
		if (bits <= 32)
			return uns ? GOV_T_UINT : GOV_T_INT;
		if (bits <= 64)
			return uns ? GOV_T_ULONG : GOV_T_LONG;
		*why = "an integer wider than 64 bits";
		return 0;
	}
	if (t->isRealFloatingType()) {
		const BuiltinType *bt = t->getAs<BuiltinType>();
		if (bt && bt->getKind() == BuiltinType::Double)
			return GOV_T_DOUBLE;
		if (bt && bt->getKind() == BuiltinType::Float)
			return GOV_T_FLOAT;
		*why = "long double or another floating type wider than 64 bits";
		return 0;
	}
	if (t->isPointerType() || t->isReferenceType() || t->isNullPtrType() ||
	    t->isBlockPointerType()) {
		if (is_return || !t->isPointerType())
			return GOV_T_PTR;
		if (next && gov_is_size_t(*next))
			return t->getPointeeType().isConstQualified() ? GOV_T_BUF : GOV_T_OUTBUF;
		return is_const_char_pointer(ctx, t) ? GOV_T_STR : GOV_T_PTR;
	}
	if (t->isRecordType()) {
		if (t->isUnionType()) {
			*why = "a union by value";
			return 0;
		}
		return GOV_T_STRUCT; /* its layout: gov_type_item() */
	}
	if (t->isAnyComplexType()) {
		*why = "a complex number";
		return 0;
	}
	if (t->isVectorType()) {
		*why = "a vector";
		return 0;
	}
	*why = "a type without a Rhodes type code";
	return 0;
}

/* One item of a type string: a code, or a struct's layout. */
static std::string type_item(ASTContext &ctx, QualType type, const QualType *next, bool is_return,
			     const char **why)
{
	char c = gov_type_code(ctx, type, next, is_return, why);
	if (!c)
		return "";
	if (c == GOV_T_STRUCT)
		return struct_item(ctx, type, is_return, why);
	return std::string(1, c);
}

/* May a value of `type` travel with the table's code c? As gcc-plugin's
 * code_fits: s b o need a real pointer, integer codes an integer or a
 * pointer; floating codes are never borrowed. */
static bool code_fits(char c, QualType type)
{
	QualType t = type.getCanonicalType();
	if (c && strchr("sbo", c))
		return t->isPointerType();
	if (c && strchr("iulLzp", c))
		return t->isIntegralOrEnumerationType() || t->isPointerType() ||
		       t->isReferenceType();
	return false;
}

std::string gov_call_types(ASTContext &ctx, const std::vector<QualType> &params,
			   const std::vector<QualType> &args, QualType ret, unsigned first,
			   const gov_libc_entry *libc, const char **why)
{
	size_t nargs = args.size();
	std::vector<QualType> types(nargs);
	for (size_t i = 0; i < nargs; i++)
		types[i] = i < params.size() ? params[i] : args[i];
	std::string out = type_item(ctx, ret, nullptr, true, why);
	if (out.empty())
		return "";
	for (size_t i = first; i < nargs; i++) {
		size_t code_index = i - first + 1;
		if (i >= params.size() && libc && code_index < strlen(libc->types) &&
		    code_fits(libc->types[code_index], types[i])) {
			out += libc->types[code_index];
			continue;
		}
		std::string item = type_item(ctx, types[i], i + 1 < nargs ? &types[i + 1] : nullptr,
					     false, why);
		if (item.empty())
			return "";
		out += item;
	}
	if (out.size() >= GOV_TYPES_MAX) {
		*why = "its type string (struct layouts) is longer than 47 characters";
		return "";
	}
	return out;
}
