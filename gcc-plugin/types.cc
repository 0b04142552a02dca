/* gcc-plugin/types.cc - a site's Rhodes type string from the callee's C types.
 *
 * The codes are gov/types.def's, with the rules the libc table uses:
 *   integers by signedness and width: i u (up to 32 bits), l L (64 bits),
 *     and z for size_t (found through the typedef chain, so std::size_t and
 *     size_type count);
 *   double d, float f; a returned pointer is p;
 *   a pointer followed by a size_t parameter is b (pointee const) or o,
 *     and the size_t is its length z;
 *   otherwise const char * is s and any other pointer or reference is p.
 * Arguments beyond the prototype (variadic, or no prototype) are mapped from
 * their promoted types, or taken from the libc table when it documents them.
 * A struct by value is one item, its layout `{...}` (docs/abi.md "Structs by
 * value"), spelt as govexports spells it: members in declaration order,
 * integers by size and signedness (c h i u l L), a count only for a C
 * array. In a struct parameter the rule of parameters applies to members:
 * a data pointer member followed by a size_t member is a buffer b and the
 * size_t its length z; otherwise a char * (const or not) is a string s.
 * Other size_t members are L and other pointers p, and so are all of them
 * in a returned struct, whose pointers could not travel back. Unions, bit-fields, packed or over-aligned structs, flexible
 * or zero-length arrays, C++ classes passed by invisible reference, long
 * double, complex, vectors and 128-bit integers have no code: such a call
 * is not a site (a warning says why).
 *
 * Not here: choosing the calls (targets.cc) or emitting anything.
 */
#include "govintercept.h"
#include "gov/abi.h"
#include "gov/typestr.h"

static bool is_size_t(tree type)
{
	if (TREE_CODE(type) != INTEGER_TYPE || !TYPE_UNSIGNED(type) ||
	    TYPE_PRECISION(type) != 64)
		return false;
	for (tree t = type; t;) {
		tree name = TYPE_NAME(t);
		if (!name || TREE_CODE(name) != TYPE_DECL)
			return false;
		if (DECL_NAME(name) && strcmp(IDENTIFIER_POINTER(DECL_NAME(name)), "size_t") == 0)
			return true;
		t = DECL_ORIGINAL_TYPE(name);
	}
	return false;
}

static bool is_const_char_pointer(tree type)
{
	if (TREE_CODE(type) != POINTER_TYPE)
		return false;
	tree pointee = TREE_TYPE(type);
	return TYPE_READONLY(pointee) && TYPE_MAIN_VARIANT(pointee) == char_type_node;
}

/* ---- a struct by value as its layout ---- */

static bool struct_layout(tree rec, bool carry, std::string &out, const char **why);

/* A pointer whose pointee's bytes can travel: not a function pointer. */
static bool is_data_pointer(tree type)
{
	return TREE_CODE(type) == POINTER_TYPE && TREE_CODE(TREE_TYPE(type)) != FUNCTION_TYPE &&
	       TREE_CODE(TREE_TYPE(type)) != METHOD_TYPE;
}

/* One member's code (c h i u l L f d p), 0 with *why when it has none. */
static char member_code(tree type, const char **why)
{
	unsigned long size = TYPE_SIZE_UNIT(type) && tree_fits_uhwi_p(TYPE_SIZE_UNIT(type))
		? tree_to_uhwi(TYPE_SIZE_UNIT(type)) : 0;
	switch (TREE_CODE(type)) {
	case BOOLEAN_TYPE:
	case INTEGER_TYPE:
	case ENUMERAL_TYPE:
		switch (size) {
		case 1: return 'c';
		case 2: return 'h';
		case 4: return TYPE_UNSIGNED(type) ? 'u' : 'i';
		case 8: return TYPE_UNSIGNED(type) ? 'L' : 'l';
		}
		break;
	case REAL_TYPE:
		if (!DECIMAL_FLOAT_TYPE_P(type) && size == 8 && TYPE_PRECISION(type) == 64)
			return 'd';
		if (!DECIMAL_FLOAT_TYPE_P(type) && size == 4 && TYPE_PRECISION(type) == 32)
			return 'f';
		break;
	case POINTER_TYPE:
	case REFERENCE_TYPE:
	case NULLPTR_TYPE:
		return 'p';
	default:
		break;
	}
	*why = "a struct member without a code (long double, a vector, a complex)";
	return 0;
}

/* One member: a count for a C array (arrays of arrays multiply), then its
 * code or nested layout. */
static bool struct_member(tree type, bool carry, std::string &out, const char **why)
{
	unsigned long count = 1;
	while (TREE_CODE(type) == ARRAY_TYPE) {
		tree dom = TYPE_DOMAIN(type);
		if (!dom || !TYPE_MAX_VALUE(dom) || !tree_fits_shwi_p(TYPE_MAX_VALUE(dom)) ||
		    !TYPE_MIN_VALUE(dom) || !tree_fits_shwi_p(TYPE_MIN_VALUE(dom)) ||
		    tree_to_shwi(TYPE_MAX_VALUE(dom)) < tree_to_shwi(TYPE_MIN_VALUE(dom))) {
			*why = "a flexible or zero-length array in a struct";
			return false;
		}
		count *= tree_to_shwi(TYPE_MAX_VALUE(dom)) - tree_to_shwi(TYPE_MIN_VALUE(dom)) + 1;
		if (count > GOV_STRUCT_MAX) {
			*why = "an array member of too many elements";
			return false;
		}
		type = TYPE_MAIN_VARIANT(TREE_TYPE(type));
	}
	if (count > 1)
		out += std::to_string(count);
	if (count > 1)
		carry = false; /* an array's elements cannot carry strings or buffers */
	if (TREE_CODE(type) == RECORD_TYPE || TREE_CODE(type) == UNION_TYPE ||
	    TREE_CODE(type) == QUAL_UNION_TYPE)
		return struct_layout(type, carry, out, why);
	char c = member_code(type, why);
	if (!c)
		return false;
	out += c;
	return true;
}

/* The next member of a struct after field f, or NULL. */
static tree next_field(tree f)
{
	for (f = DECL_CHAIN(f); f; f = DECL_CHAIN(f))
		if (TREE_CODE(f) == FIELD_DECL)
			return f;
	return NULL_TREE;
}

/* carry: the struct is a parameter, so its strings and buffers travel
 * (s, b and z members); in a returned one they are p and L. */
static bool struct_layout(tree rec, bool carry, std::string &out, const char **why)
{
	if (TREE_CODE(rec) != RECORD_TYPE) {
		*why = "a union by value";
		return false;
	}
	if (TREE_ADDRESSABLE(rec)) {
		*why = "a C++ class passed by invisible reference (not trivially copyable)";
		return false;
	}
	size_t start = out.size();
	bool length_member = false;
	out += '{';
	for (tree f = TYPE_FIELDS(rec); f; f = DECL_CHAIN(f)) {
		if (TREE_CODE(f) != FIELD_DECL)
			continue;
		if (DECL_BIT_FIELD_TYPE(f)) {
			*why = "a bit-field in a struct";
			return false;
		}
		if (DECL_ARTIFICIAL(f)) {
			*why = "a C++ class with a base or a vtable";
			return false;
		}
		tree type = TREE_TYPE(f), next = next_field(f);
		if (carry && length_member) {
			out += GOV_T_SIZE; /* the length of the buffer before it */
			length_member = false;
		} else if (carry && is_data_pointer(type) && next && !DECL_BIT_FIELD_TYPE(next) &&
			   is_size_t(TREE_TYPE(next))) {
			out += GOV_T_BUF;
			length_member = true;
		} else if (carry && is_data_pointer(type) &&
			   TYPE_MAIN_VARIANT(TREE_TYPE(type)) == char_type_node) {
			out += GOV_T_STR;
		} else if (!struct_member(TYPE_MAIN_VARIANT(type), carry, out, why)) {
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

/* A struct parameter or return as its layout item, checked against GCC's
 * own size and alignment: a packed or over-aligned struct has no natural
 * layout. Empty, with *why, when it cannot be one. */
static std::string struct_item(tree type, bool is_return, const char **why)
{
	std::string out;
	if (!struct_layout(TYPE_MAIN_VARIANT(type), !is_return, out, why))
		return "";
	if (out.size() >= GOV_TYPES_MAX) {
		*why = "a struct whose layout is longer than a type string";
		return "";
	}
	struct gov_typestr ts;
	const char *pwhy = NULL;
	size_t where;
	if (gov_typestr_parse(out.c_str(), &ts, &pwhy, &where) < 0 || ts.n != 1) {
		*why = pwhy ? pwhy : "a struct layout that does not parse";
		return "";
	}
	if (!tree_fits_uhwi_p(TYPE_SIZE_UNIT(type)) ||
	    ts.size[0] != tree_to_uhwi(TYPE_SIZE_UNIT(type)) ||
	    ts.align[0] != TYPE_ALIGN_UNIT(type)) {
		*why = "a struct whose layout is not C's natural one (packed or aligned)";
		return "";
	}
	return out;
}

/* The code of one value of `type`; `next` is the following parameter's type
 * (for b/o), or NULL. 0 with *why when there is none. */
static char type_code(tree type, tree next, bool is_return, const char **why)
{
	switch (TREE_CODE(type)) {
	case VOID_TYPE:
		if (is_return)
			return GOV_T_VOID;
		*why = "a void parameter";
		return 0;
	case BOOLEAN_TYPE:
	case INTEGER_TYPE:
	case ENUMERAL_TYPE:
		if (is_size_t(type))
			return GOV_T_SIZE;
		if (TYPE_PRECISION(type) <= 32)
			return TYPE_UNSIGNED(type) ? GOV_T_UINT : GOV_T_INT;
		if (TYPE_PRECISION(type) <= 64)
			return TYPE_UNSIGNED(type) ? GOV_T_ULONG : GOV_T_LONG;
		*why = "an integer wider than 64 bits";
		return 0;
	case REAL_TYPE:
		if (DECIMAL_FLOAT_TYPE_P(type)) {
			*why = "a decimal floating type";
			return 0;
		}
		if (TYPE_PRECISION(type) == 64 && tree_to_uhwi(TYPE_SIZE_UNIT(type)) == 8)
			return GOV_T_DOUBLE;
		if (TYPE_PRECISION(type) == 32 && tree_to_uhwi(TYPE_SIZE_UNIT(type)) == 4)
			return GOV_T_FLOAT;
		*why = "long double or another floating type wider than 64 bits";
		return 0;
	case POINTER_TYPE:
	case REFERENCE_TYPE:
	case NULLPTR_TYPE:
		if (is_return || TREE_CODE(type) != POINTER_TYPE)
			return GOV_T_PTR;
		if (next && is_size_t(next))
			return TYPE_READONLY(TREE_TYPE(type)) ? GOV_T_BUF : GOV_T_OUTBUF;
		return is_const_char_pointer(type) ? GOV_T_STR : GOV_T_PTR;
	case RECORD_TYPE:
		return GOV_T_STRUCT; /* its layout: type_item() */
	case UNION_TYPE:
	case QUAL_UNION_TYPE:
		*why = "a union by value";
		return 0;
	case COMPLEX_TYPE:
		*why = "a complex number";
		return 0;
	case VECTOR_TYPE:
		*why = "a vector";
		return 0;
	default:
		*why = "a type without a Rhodes type code";
		return 0;
	}
}

/* One item of a type string: a code, or a struct's layout. Empty with *why
 * when there is none. */
static std::string type_item(tree type, tree next, bool is_return, const char **why)
{
	char c = type_code(type, next, is_return, why);
	if (!c)
		return "";
	if (c == GOV_T_STRUCT)
		return struct_item(type, is_return, why);
	return std::string(1, c);
}

/* A whole type string must fit struct gov_site.types. */
static std::string checked(const std::string &out, const char **why)
{
	if (out.size() < GOV_TYPES_MAX)
		return out;
	*why = "its type string (struct layouts) is longer than 47 characters";
	return "";
}

unsigned gov_types_nparams(const std::string &types)
{
	struct gov_typestr ts;
	const char *why;
	size_t where;
	if (gov_typestr_parse(types.c_str(), &ts, &why, &where) < 0)
		return (unsigned)types.size() - 1;
	return ts.n - 1;
}

/* May a value of `type` travel with the table's code c? Codes whose bytes
 * travel (s, b, o) need a real pointer; integer codes need an integer or a
 * pointer; floating codes are never borrowed. */
static bool code_fits(char c, tree type)
{
	if (c && strchr("sbo", c))
		return TREE_CODE(type) == POINTER_TYPE;
	if (c && strchr("iulLzp", c))
		return INTEGRAL_TYPE_P(type) || POINTER_TYPE_P(type);
	return false;
}

std::string gov_call_types(gcall *call, unsigned first, const gov_libc_entry *libc,
			   const char **why)
{
	tree fntype = gimple_call_fntype(call);
	unsigned nargs = gimple_call_num_args(call);

	/* the declared parameter types, as far as the prototype goes */
	std::vector<tree> params;
	if (fntype)
		for (tree a = TYPE_ARG_TYPES(fntype); a && a != void_list_node; a = TREE_CHAIN(a))
			params.push_back(TREE_VALUE(a));
	std::vector<tree> types(nargs);
	for (unsigned i = 0; i < nargs; i++)
		types[i] = i < params.size() ? params[i] : TREE_TYPE(gimple_call_arg(call, i));

	std::string out;
	tree ret = fntype ? TREE_TYPE(fntype) : TREE_TYPE(TREE_TYPE(gimple_call_fndecl(call)));
	std::string item = type_item(ret, NULL_TREE, true, why);
	if (item.empty())
		return "";
	out += item;
	for (unsigned i = first; i < nargs; i++) {
		size_t code_index = i - first + 1;
		if (i >= params.size() && libc && code_index < strlen(libc->types) &&
		    code_fits(libc->types[code_index], types[i])) {
			out += libc->types[code_index];
			continue;
		}
		item = type_item(types[i], i + 1 < nargs ? types[i + 1] : NULL_TREE, false, why);
		if (item.empty())
			return "";
		out += item;
	}
	return checked(out, why);
}

/* The codes of a prototype's return type and declared parameters. */
std::string gov_prototype_types(tree fntype, const char **why)
{
	std::vector<tree> params;
	for (tree a = TYPE_ARG_TYPES(fntype); a && a != void_list_node; a = TREE_CHAIN(a))
		params.push_back(TREE_VALUE(a));
	std::string out = type_item(TREE_TYPE(fntype), NULL_TREE, true, why);
	if (out.empty())
		return "";
	for (size_t i = 0; i < params.size(); i++) {
		std::string item = type_item(params[i], i + 1 < params.size() ? params[i + 1] : NULL_TREE,
					     false, why);
		if (item.empty())
			return "";
		out += item;
	}
	return checked(out, why);
}
