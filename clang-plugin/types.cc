/* clang-plugin/types.cc - a site's Rhodes type string from clang's types,
 * with the rules of gcc-plugin/types.cc (and of the libc table):
 *   integers by signedness and width: i u (up to 32 bits), l L (64 bits),
 *     and z for size_t (through the typedef chain: std::size_t, size_type);
 *   double d, float f; a returned pointer is p;
 *   a pointer followed by a size_t parameter is b (pointee const) or o;
 *   otherwise const char * is s and any other pointer or reference p.
 * Arguments beyond the prototype take the libc table's codes when they fit,
 * else their promoted types. No code for structs and unions by value, long
 * double, complex, vectors, 128-bit integers: such a call is not a site.
 *
 * Not here: choosing calls (frontend.cc).
 */
#include "govintercept-llvm.h"
#include "gov/abi.h"
#include "frontend.h"

#include <cstring>

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
		*why = is_return ? "it returns a struct or union" : "a struct or union passed by value";
		return 0;
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
	char c = gov_type_code(ctx, ret, nullptr, true, why);
	if (!c)
		return "";
	std::string out(1, c);
	for (size_t i = first; i < nargs; i++) {
		size_t code_index = i - first + 1;
		if (i >= params.size() && libc && code_index < strlen(libc->types) &&
		    code_fits(libc->types[code_index], types[i])) {
			out += libc->types[code_index];
			continue;
		}
		c = gov_type_code(ctx, types[i], i + 1 < nargs ? &types[i + 1] : nullptr, false, why);
		if (!c)
			return "";
		out += c;
	}
	return out;
}
