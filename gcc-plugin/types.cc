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
 * Structs and unions by value, long double, complex, vectors and 128-bit
 * integers have no code: such a call is not a site (a warning says so).
 *
 * Not here: choosing the calls (targets.cc) or emitting anything.
 */
#include "govintercept.h"
#include "gov/abi.h"

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
	case UNION_TYPE:
	case QUAL_UNION_TYPE:
		*why = is_return ? "it returns a struct or union" : "a struct or union passed by value";
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
	char c = type_code(ret, NULL_TREE, true, why);
	if (!c)
		return "";
	out += c;
	for (unsigned i = first; i < nargs; i++) {
		size_t code_index = i - first + 1;
		if (i >= params.size() && libc && code_index < strlen(libc->types) &&
		    code_fits(libc->types[code_index], types[i])) {
			out += libc->types[code_index];
			continue;
		}
		c = type_code(types[i], i + 1 < nargs ? types[i + 1] : NULL_TREE, false, why);
		if (!c)
			return "";
		out += c;
	}
	return out;
}

/* The codes of a prototype's return type and declared parameters. */
std::string gov_prototype_types(tree fntype, const char **why)
{
	std::vector<tree> params;
	for (tree a = TYPE_ARG_TYPES(fntype); a && a != void_list_node; a = TREE_CHAIN(a))
		params.push_back(TREE_VALUE(a));
	char c = type_code(TREE_TYPE(fntype), NULL_TREE, true, why);
	if (!c)
		return "";
	std::string out(1, c);
	for (size_t i = 0; i < params.size(); i++) {
		c = type_code(params[i], i + 1 < params.size() ? params[i + 1] : NULL_TREE, false, why);
		if (!c)
			return "";
		out += c;
	}
	return out;
}
