/* clang-plugin/govexports.c - govexports: the functions a header declares,
 * as an export list (docs/abi.md, "Export lists"), read with libclang.
 *
 *   govexports HEADER [-- CLANG-ARGS...]
 *
 * prints one line per function with external linkage that the header
 * itself declares (not the headers it includes):
 *
 *   NAME<TAB>TYPES<TAB>PROTOTYPE
 *
 * TYPES with the site table's rules (clang-plugin/types.cc, gcc-plugin/
 * types.cc): return code, then one code per parameter; a struct by value
 * is its layout, `{id}` (gov/typestr.h). A function whose signature has no
 * codes (a union, packed struct or bit-field by value, long double, more
 * than six parameters, variadic, no prototype) is a comment line
 * `# skipped NAME: REASON`. An unreadable header or a header clang cannot
 * parse is an error (file:line: message for each) and prints nothing.
 *
 * Not here: storing the list (govctl), using it (the plugins' targets).
 */
#include <clang-c/Index.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gov/abi.h"
#include "gov/typestr.h"

struct fn {
	char *name, *line;
};

static struct fn *fns;
static size_t nfns;
static CXFile main_file;

static int is_size_t(CXType t)
{
	if (clang_getCanonicalType(t).kind != CXType_ULong)
		return 0;
	for (int depth = 0; depth < 32; depth++) {
		if (t.kind == CXType_Elaborated) {
			t = clang_Type_getNamedType(t);
			continue;
		}
		if (t.kind != CXType_Typedef)
			return 0;
		CXString name = clang_getTypedefName(t);
		int yes = strcmp(clang_getCString(name), "size_t") == 0;
		clang_disposeString(name);
		if (yes)
			return 1;
		t = clang_getTypedefDeclUnderlyingType(clang_getTypeDeclaration(t));
	}
	return 0;
}

/* The code of one value of type t (next: the following parameter, for b/o);
 * 0 with *why when there is none. */
static char code(CXType t, const CXType *next, int is_return, const char **why)
{
	CXType c = clang_getCanonicalType(t);
	if (c.kind == CXType_Enum)
		c = clang_getCanonicalType(clang_getEnumDeclIntegerType(clang_getTypeDeclaration(c)));
	switch (c.kind) {
	case CXType_Void:
		if (is_return)
			return GOV_T_VOID;
		*why = "a void parameter";
		return 0;
	case CXType_Bool: case CXType_Char_U: case CXType_UChar: case CXType_UShort:
	case CXType_UInt: case CXType_Char16: case CXType_Char32:
		return GOV_T_UINT;
	case CXType_Char_S: case CXType_SChar: case CXType_Short: case CXType_Int:
	case CXType_WChar:
		return GOV_T_INT;
	case CXType_Long: case CXType_LongLong:
		return GOV_T_LONG;
	case CXType_ULong: case CXType_ULongLong:
		return is_size_t(t) ? GOV_T_SIZE : GOV_T_ULONG;
	case CXType_Int128: case CXType_UInt128:
		*why = "an integer wider than 64 bits";
		return 0;
	case CXType_Float:
		return GOV_T_FLOAT;
	case CXType_Double:
		return GOV_T_DOUBLE;
	case CXType_LongDouble: case CXType_Float128: case CXType_Half: case CXType_Float16:
		*why = "long double or another floating type wider than 64 bits";
		return 0;
	case CXType_LValueReference: case CXType_RValueReference: case CXType_NullPtr:
	case CXType_BlockPointer:
		return GOV_T_PTR;
	case CXType_Pointer: {
		if (is_return)
			return GOV_T_PTR;
		CXType pointee = clang_getPointeeType(c);
		if (next && is_size_t(*next))
			return clang_isConstQualifiedType(pointee) ? GOV_T_BUF : GOV_T_OUTBUF;
		CXType pc = clang_getCanonicalType(pointee);
		if (clang_isConstQualifiedType(pointee) &&
		    (pc.kind == CXType_Char_S || pc.kind == CXType_Char_U))
			return GOV_T_STR;
		return GOV_T_PTR;
	}
	case CXType_Record:
		return GOV_T_STRUCT; /* its layout: struct_item() */
	case CXType_Complex:
		*why = "a complex number";
		return 0;
	case CXType_Vector: case CXType_ExtVector:
		*why = "a vector";
		return 0;
	default:
		*why = "a type without a Rhodes type code";
		return 0;
	}
}

/* ---- a struct by value as its layout (docs/abi.md "Structs by value") ---- */

struct fields {
	CXCursor f[256];
	unsigned n;
};

static enum CXVisitorResult field_cb(CXCursor c, CXClientData data)
{
	struct fields *fs = data;
	if (fs->n == 256)
		return CXVisit_Break;
	fs->f[fs->n++] = c;
	return CXVisit_Continue;
}

static int put(char *buf, size_t cap, size_t *n, const char *s)
{
	size_t l = strlen(s);
	if (*n + l >= cap)
		return -1;
	memcpy(buf + *n, s, l + 1);
	*n += l;
	return 0;
}

static int struct_layout(CXType rec, int carry, char *buf, size_t cap, size_t *n,
			 const char **why);

/* One member: a count for an array, then its code or nested layout. carry:
 * strings and buffers may travel in it (not an array element). */
static int member(CXType t, int carry, char *buf, size_t cap, size_t *n, const char **why)
{
	CXType c = clang_getCanonicalType(t);
	long long count = 1;
	while (c.kind == CXType_ConstantArray) {
		count *= clang_getArraySize(c);
		c = clang_getCanonicalType(clang_getArrayElementType(c));
	}
	if (count < 1 || count > GOV_STRUCT_MAX) {
		*why = "an array member of no or too many elements";
		return -1;
	}
	char num[24] = "";
	if (count > 1)
		snprintf(num, sizeof num, "%lld", count);
	if (put(buf, cap, n, num) < 0)
		goto long_;
	if (c.kind == CXType_Enum)
		c = clang_getCanonicalType(clang_getEnumDeclIntegerType(clang_getTypeDeclaration(c)));
	if (c.kind == CXType_Record)
		return struct_layout(c, carry && count == 1, buf, cap, n, why);
	char one[2] = { 0, 0 };
	long long size = clang_Type_getSizeOf(c);
	switch (c.kind) {
	case CXType_Float: case CXType_Double: case CXType_Pointer:
		one[0] = c.kind == CXType_Float ? 'f' : c.kind == CXType_Double ? 'd' : 'p';
		break;
	case CXType_Bool: case CXType_Char_U: case CXType_UChar: case CXType_UShort:
	case CXType_UInt: case CXType_ULong: case CXType_ULongLong: case CXType_Char16:
	case CXType_Char32: case CXType_Char_S: case CXType_SChar: case CXType_Short:
	case CXType_Int: case CXType_Long: case CXType_LongLong: case CXType_WChar: {
		int is_unsigned = c.kind == CXType_Bool || c.kind == CXType_Char_U ||
				  c.kind == CXType_UChar || c.kind == CXType_UShort ||
				  c.kind == CXType_UInt || c.kind == CXType_ULong ||
				  c.kind == CXType_ULongLong || c.kind == CXType_Char16 ||
				  c.kind == CXType_Char32;
		one[0] = size == 1 ? 'c' : size == 2 ? 'h' : size == 4 ? (is_unsigned ? 'u' : 'i')
			: size == 8 ? (is_unsigned ? 'L' : 'l') : 0;
		break;
	}
	default:
		break;
	}
	if (!one[0]) {
		*why = "a struct member without a code (long double, a vector, a complex)";
		return -1;
	}
	if (put(buf, cap, n, one) == 0)
		return 0;
long_:
	*why = "a struct whose layout is longer than a type string";
	return -1;
}

/* A pointer whose pointee's bytes can travel: not a function pointer. */
static int is_data_pointer(CXType t)
{
	CXType c = clang_getCanonicalType(t);
	if (c.kind != CXType_Pointer)
		return 0;
	CXType pk = clang_getCanonicalType(clang_getPointeeType(c));
	return pk.kind != CXType_FunctionProto && pk.kind != CXType_FunctionNoProto;
}

static int is_char_pointer(CXType t)
{
	CXType pk = clang_getCanonicalType(clang_getPointeeType(clang_getCanonicalType(t)));
	return is_data_pointer(t) && (pk.kind == CXType_Char_S || pk.kind == CXType_Char_U);
}

/* The rule of parameters applied to members (docs/abi.md "Structs by
 * value"): a data pointer followed by a size_t member is a buffer b and the
 * size_t its length z; otherwise a char * (const or not) is a string s. */
static int struct_layout(CXType rec, int carry, char *buf, size_t cap, size_t *n,
			 const char **why)
{
	CXCursor decl = clang_getTypeDeclaration(rec);
	if (clang_getCursorKind(decl) == CXCursor_UnionDecl) {
		*why = "a union by value";
		return -1;
	}
	struct fields fs = { .n = 0 };
	clang_Type_visitFields(rec, field_cb, &fs);
	if (fs.n == 0 || fs.n == 256) {
		*why = fs.n ? "a struct of too many members" : "a struct with no members";
		return -1;
	}
	int length_member = 0;
	if (put(buf, cap, n, "{") < 0)
		goto long_;
	for (unsigned i = 0; i < fs.n; i++) {
		if (clang_Cursor_isBitField(fs.f[i])) {
			*why = "a bit-field in a struct";
			return -1;
		}
		CXType t = clang_getCursorType(fs.f[i]);
		const char *code = NULL;
		if (carry && length_member)
			code = "z", length_member = 0;
		else if (carry && is_data_pointer(t) && i + 1 < fs.n &&
			 !clang_Cursor_isBitField(fs.f[i + 1]) &&
			 is_size_t(clang_getCursorType(fs.f[i + 1])))
			code = "b", length_member = 1;
		else if (carry && is_char_pointer(t))
			code = "s";
		if (code ? put(buf, cap, n, code) < 0 : member(t, carry, buf, cap, n, why) < 0) {
			if (code)
				goto long_;
			return -1;
		}
	}
	if (put(buf, cap, n, "}") == 0)
		return 0;
long_:
	*why = "a struct whose layout is longer than a type string";
	return -1;
}

/* The layout item of a struct type, checked against clang's own size and
 * alignment: a packed or over-aligned struct has no natural layout. */
static int struct_item(CXType t, char *buf, size_t cap, size_t *n, const char **why)
{
	size_t start = *n;
	CXType c = clang_getCanonicalType(t);
	if (struct_layout(c, 1, buf, cap, n, why) < 0)
		return -1;
	struct gov_typestr ts;
	const char *pwhy;
	size_t where;
	if (gov_typestr_parse(buf + start, &ts, &pwhy, &where) < 0 || ts.n != 1) {
		*why = pwhy ? pwhy : "a struct layout that does not parse";
		return -1;
	}
	if ((long long)ts.size[0] != clang_Type_getSizeOf(c) ||
	    (long long)ts.align[0] != clang_Type_getAlignOf(c)) {
		*why = "a struct whose layout is not C's natural one (packed or aligned)";
		return -1;
	}
	return 0;
}

static char *spelling(CXType t)
{
	CXString s = clang_getTypeSpelling(t);
	char *out = strdup(clang_getCString(s));
	clang_disposeString(s);
	return out;
}

/* "long nd_send(const void *buf, size_t len)" */
static void prototype(CXCursor cur, const char *name, char *buf, size_t size)
{
	CXType ft = clang_getCursorType(cur);
	char *ret = spelling(clang_getResultType(ft));
	size_t n = (size_t)snprintf(buf, size, "%s%s%s(", ret,
				   ret[strlen(ret) - 1] == '*' ? "" : " ", name);
	free(ret);
	int nargs = clang_Cursor_getNumArguments(cur);
	for (int i = 0; i < nargs && n < size; i++) {
		CXCursor arg = clang_Cursor_getArgument(cur, (unsigned)i);
		char *type = spelling(clang_getCursorType(arg));
		CXString an = clang_getCursorSpelling(arg);
		const char *pn = clang_getCString(an);
		n += (size_t)snprintf(buf + n, size - n, "%s%s%s%s", i ? ", " : "", type,
				      *pn && type[strlen(type) - 1] != '*' ? " " : "", pn);
		clang_disposeString(an);
		free(type);
	}
	if (n < size && clang_isFunctionTypeVariadic(ft))
		n += (size_t)snprintf(buf + n, size - n, "%s...", nargs ? ", " : "");
	if (n < size)
		n += (size_t)snprintf(buf + n, size - n, "%s)", nargs || clang_isFunctionTypeVariadic(ft) ? "" : "void");
}

static void add(const char *name, const char *line)
{
	for (size_t i = 0; i < nfns; i++)
		if (strcmp(fns[i].name, name) == 0)
			return;   /* declared again: the first one stands */
	fns = realloc(fns, (nfns + 1) * sizeof *fns);
	if (!fns) {
		perror("govexports");
		exit(1);
	}
	fns[nfns].name = strdup(name);
	fns[nfns].line = strdup(line);
	nfns++;
}

static void function(CXCursor cur)
{
	CXString ns = clang_getCursorSpelling(cur);
	char name[512], line[2048], proto[1400];
	snprintf(name, sizeof name, "%s", clang_getCString(ns));
	clang_disposeString(ns);
	if (clang_getCursorLinkage(cur) != CXLinkage_External)
		return;
	if (clang_getCursorLanguage(cur) == CXLanguage_CPlusPlus) {
		CXString mangled = clang_Cursor_getMangling(cur);
		int cxx = strcmp(clang_getCString(mangled), name) != 0;
		clang_disposeString(mangled);
		if (cxx) {
			snprintf(line, sizeof line, "# skipped %s: C++ linkage (no C symbol)", name);
			add(name, line);
			return;
		}
	}
	CXType ft = clang_getCursorType(cur);
	const char *why = NULL;
	int nargs = clang_getNumArgTypes(ft);
	char types[GOV_TYPES_MAX] = "";
	if (ft.kind == CXType_FunctionNoProto || nargs < 0)
		why = "no prototype";
	else if (clang_isFunctionTypeVariadic(ft))
		why = "variadic";
	else if (nargs > GOV_MAX_ARGS)
		why = "more than 6 parameters";
	size_t n = 0;
	for (int i = -1; !why && i < nargs; i++) {
		CXType t = i < 0 ? clang_getResultType(ft) : clang_getArgType(ft, (unsigned)i);
		CXType next = i + 1 < nargs ? clang_getArgType(ft, (unsigned)i + 1) : ft;
		char c = code(t, i >= 0 && i + 1 < nargs ? &next : NULL, i < 0, &why);
		if (c == GOV_T_STRUCT)
			struct_item(t, types, sizeof types, &n, &why);
		else if (c && n + 1 < sizeof types)
			types[n++] = c, types[n] = 0;
		else if (c)
			why = "a type string longer than 47 characters";
	}
	struct gov_typestr ts;
	size_t where;
	/* the rules of a signature: a returned struct holding a string or a
	 * buffer cannot travel back (its pointers point into the callee) */
	if (!why && gov_typestr_check(types, &ts, &why, &where) == 0)
		why = NULL;
	if (why) {
		snprintf(line, sizeof line, "# skipped %s: %s", name, why);
	} else {
		prototype(cur, name, proto, sizeof proto);
		snprintf(line, sizeof line, "%s\t%s\t%s", name, types, proto);
	}
	add(name, line);
}

static enum CXChildVisitResult visit(CXCursor cur, CXCursor parent, CXClientData data)
{
	(void)parent, (void)data;
	CXFile file;
	clang_getExpansionLocation(clang_getCursorLocation(cur), &file, NULL, NULL, NULL);
	if (!file || !clang_File_isEqual(file, main_file))
		return CXChildVisit_Continue;
	switch (clang_getCursorKind(cur)) {
	case CXCursor_FunctionDecl:
		function(cur);
		return CXChildVisit_Continue;
	case CXCursor_LinkageSpec:
	case CXCursor_Namespace:
		return CXChildVisit_Recurse;
	default:
		return CXChildVisit_Continue;
	}
}

/* Errors and fatal errors, as file:line:col: message; 1 when there are any. */
static int report(CXTranslationUnit tu)
{
	int bad = 0;
	for (unsigned i = 0; i < clang_getNumDiagnostics(tu); i++) {
		CXDiagnostic d = clang_getDiagnostic(tu, i);
		if (clang_getDiagnosticSeverity(d) >= CXDiagnostic_Error) {
			CXString s = clang_formatDiagnostic(d, CXDiagnostic_DisplaySourceLocation |
							       CXDiagnostic_DisplayColumn);
			fprintf(stderr, "govexports: %s\n", clang_getCString(s));
			clang_disposeString(s);
			bad = 1;
		}
		clang_disposeDiagnostic(d);
	}
	return bad;
}

static void usage(void)
{
	fprintf(stderr, "usage: govexports HEADER [-- CLANG-ARGS...]\n"
		"prints the functions HEADER declares as an export list: NAME<TAB>TYPES<TAB>PROTOTYPE\n"
		"(docs/abi.md, \"Export lists\"); CLANG-ARGS are given to clang (-I, -D, -x c++)\n");
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage();
		return argc < 2 ? 2 : 0;
	}
	const char *header = argv[1];
	if (argc > 2 && strcmp(argv[2], "--") != 0) {
		fprintf(stderr, "govexports: unexpected argument '%s' (clang's arguments go after --)\n",
			argv[2]);
		usage();
		return 2;
	}
	FILE *f = fopen(header, "r");
	if (!f) {
		fprintf(stderr, "govexports: cannot read '%s': %s\n", header, strerror(errno));
		return 1;
	}
	char probe;
	if (fread(&probe, 1, 1, f) != 1 && ferror(f)) {
		fprintf(stderr, "govexports: cannot read '%s': %s\n", header, strerror(errno));
		fclose(f);
		return 1;
	}
	fclose(f);

	/* a header alone: parsed as a C header unless the arguments say otherwise */
	const char *args[256];
	int nargs = 0;
	args[nargs++] = "-xc-header";
	for (int i = 3; i < argc && nargs < 255; i++)
		args[nargs++] = argv[i];

	CXIndex index = clang_createIndex(0, 0);
	CXTranslationUnit tu = NULL;
	enum CXErrorCode err = clang_parseTranslationUnit2(index, header, args, nargs, NULL, 0,
		CXTranslationUnit_SkipFunctionBodies | CXTranslationUnit_Incomplete, &tu);
	if (err != CXError_Success || !tu) {
		fprintf(stderr, "govexports: clang cannot parse '%s' (libclang error %d)\n", header, err);
		return 1;
	}
	if (report(tu)) {
		fprintf(stderr, "govexports: '%s' does not parse: no list written\n", header);
		return 1;
	}
	main_file = clang_getFile(tu, header);
	clang_visitChildren(clang_getTranslationUnitCursor(tu), visit, NULL);
	printf("# exported by %s (govexports)\n", header);
	for (size_t i = 0; i < nfns; i++)
		printf("%s\n", fns[i].line);
	clang_disposeTranslationUnit(tu);
	clang_disposeIndex(index);
	return 0;
}
