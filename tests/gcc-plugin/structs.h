/* tests/gcc-plugin/structs.h - functions taking and returning structs by
 * value, as tests/xcall/c-svc.exports declares c_pt and c_tri (so that a
 * site's type string equals the export's), and structs whose layout a type
 * string cannot express. */
#ifndef STRUCTS_H
#define STRUCTS_H
#include <stddef.h>

struct pt { int a; double b; };
struct tri { long v[3]; };
struct pt c_pt(struct pt p, int k);
double c_tri(struct tri t);

/* every member kind, nested, arrays of arrays, a size_t (L, never z) */
struct inner { float f; int i; };
struct wide { char c; short h; unsigned u; struct inner in; double d[2][2]; size_t n; void *p; };
struct wide mk_wide(long k, struct wide w);

/* strings and buffers as members (c-svc.exports): a data pointer before a
 * size_t member is a buffer, a char * a string, nested too: c_rec is
 * l{sibz}l, c_doc l{c{sibz}s}. Returned (mk_named), pointers are p and
 * size_t L at the site, and govexports skips the function: its pointers
 * would point into the callee. */
struct rec { const char *name; int n; const void *data; size_t len; };
struct doc { char tag; struct rec r; char *title; };
struct named { const char *name; size_t n; };
long c_rec(struct rec r, long k);
long c_doc(struct doc d);
struct named mk_named(long n);

/* small structs in registers, each its own x86-64 class: three floats
 * (<2 x float>, float in clang's IR), two chars (i16), a long and a char
 * ({ i64, i8 }, also returned so) */
struct f3 { float x, y, z; };
struct c2 { char a, b; };
struct lc { long l; char c; };
struct lc c_mix3(struct f3 v, struct c2 s, struct lc l);

/* no layout: each keeps the warning, with its reason */
union either { int i; float f; };
struct bits { int a : 3; int b; };
struct packed { char c; int i; } __attribute__((packed));
struct flex { long n; long v[]; };
/* 26 characters of layout: twice is more than a type string holds */
struct huge { char a; short b; char c; short d; char e; short f; char g; short h;
	      char i; short j; char k; short l; char m; short n; char o; short p;
	      char q; short r; char s; short t; char u; short v; char w; short x; };
long by_union(union either e);
long by_bits(struct bits b);
long by_packed(struct packed p);
long by_flex(struct flex f);
struct huge by_huge(struct huge h);
#endif
