/* tests/xcall/peer.c - the C side of tests/t_python.sh: a C program that
 * calls a Python service's functions ("call": prints name=result lines),
 * and one that serves C functions to Python callers ("serve", exports from
 * $GOV_EXPORTS). Not a test by itself. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>
#include "gov/govrt.h"

static int serving;
#define LOCAL (-7777)

/* ---- served to Python ---- */
long c_mul(long a, long b) { return serving ? a * b : LOCAL; }
double c_scale(double x, float f) { return serving ? x * f : LOCAL; }
long c_upper(const char *s, void *out, size_t cap)
{
	if (!serving)
		return LOCAL;
	size_t n = strlen(s);
	for (size_t i = 0; i < n && i < cap; i++)
		((char *)out)[i] = (char)toupper((unsigned char)s[i]);
	return (long)n;
}
long c_bsum(const void *b, size_t n)
{
	long s = 0;
	for (size_t i = 0; i < n; i++)
		s += ((const unsigned char *)b)[i];
	return serving ? s : LOCAL;
}
int c_err(int e) { errno = e; return serving ? -1 : LOCAL; }
/* a struct by value both ways: {int; double} and a 24-byte one (memory) */
struct pt { int a; double b; };
struct tri { long v[3]; };
struct pt c_pt(struct pt p, int k) { return serving ? (struct pt){ p.a * k, p.b * k } : (struct pt){ LOCAL, 0 }; }
double c_tri(struct tri t) { return serving ? (double)(t.v[0] + t.v[1] + t.v[2]) : LOCAL; }
/* structs with string and buffer members (tests/gcc-plugin/structs.h) */
struct rec { const char *name; int n; const void *data; size_t len; };
struct doc { char tag; struct rec r; char *title; };
static long rec_value(struct rec r)
{
	long sum = 0;
	for (size_t i = 0; r.data && i < r.len; i++)
		sum += ((const unsigned char *)r.data)[i];
	return (r.name ? (long)strlen(r.name) : -1) * 1000 + sum * 10 + r.n;
}
long c_rec(struct rec r, long k) { return serving ? rec_value(r) + k : LOCAL; }
struct f3 { float x, y, z; };
struct c2 { char a, b; };
struct lc { long l; char c; };
struct lc c_mix3(struct f3 v, struct c2 s, struct lc l)
{
	if (!serving)
		return (struct lc){ LOCAL, 0 };
	return (struct lc){ l.l + s.a * 100 + s.b * 1000 + (long)(v.x + v.y + v.z), (char)(l.c + 1) };
}
long c_doc(struct doc d)
{
	return serving ? d.tag + rec_value(d.r) + (d.title ? (long)strlen(d.title) : -1) * 100000 : LOCAL;
}

/* ---- Python's, called from C: local versions say they ran here ---- */
long py_add(long a, long b) { (void)a; (void)b; return LOCAL; }
double py_avg(double a, double b) { (void)a; (void)b; return LOCAL; }
float py_half(float f) { (void)f; return LOCAL; }
long py_greet(const char *name, void *out, size_t cap) { (void)name; (void)out; (void)cap; return LOCAL; }
long py_len(const void *b, size_t n) { (void)b; (void)n; return LOCAL; }
int py_fail(int e) { (void)e; return LOCAL; }
long py_boom(void) { return LOCAL; }
struct pt py_pt(struct pt p, int k) { (void)p; (void)k; return (struct pt){ LOCAL, 0 }; }
long py_rec(struct doc d, long k) { (void)d; (void)k; return LOCAL; }

/* GOV_CALL takes no struct by value: this is the site a compiler plugin
 * emits for one (docs/abi.md): the argument word is the address of the
 * caller's copy, `ret` the address of the site's zeroed return temporary. */
static struct pt call_py_pt(struct pt p, int k)
{
	static struct gov_site site __attribute__((section(GOV_SITES_SECTION), used, aligned(8))) = {
		.kind = GOV_SITE_CALL, .ret_conv = GOV_RET_LIBC, .nparams = 2, .sysno = -1,
		.caller = "call_py_pt", .callee = "py_pt", .types = "{id}{id}i",
		.file = __FILE__, .line = __LINE__ };
	struct pt r = { 0, 0 };
	struct gov_call c = { { (uint64_t)(uintptr_t)&p, (uint32_t)k }, (int64_t)(uintptr_t)&r };
	if (!site.verdict || __govrt_dispatch(&site, &c) == GOV_RUN_NATIVE)
		return py_pt(p, k);
	return r;
}

/* a struct with string and buffer members, nested: l{c{sibz}s}l */
static long call_py_rec(struct doc d, long k)
{
	static struct gov_site site __attribute__((section(GOV_SITES_SECTION), used, aligned(8))) = {
		.kind = GOV_SITE_CALL, .ret_conv = GOV_RET_LIBC, .nparams = 2, .sysno = -1,
		.caller = "call_py_rec", .callee = "py_rec", .types = "l{c{sibz}s}l",
		.file = __FILE__, .line = __LINE__ };
	struct gov_call c = { { (uint64_t)(uintptr_t)&d, (uint64_t)k }, 0 };
	if (!site.verdict || __govrt_dispatch(&site, &c) == GOV_RUN_NATIVE)
		return py_rec(d, k);
	return c.ret;
}

static int call_main(void)
{
	char out[64] = "";
	unsigned char buf[1000];
	for (int i = 0; i < 1000; i++)
		buf[i] = (unsigned char)i;
	printf("py_add=%ld\n", GOV_CALL("lll", py_add, 40L, 2L));
	printf("py_avg=%.3f\n", GOV_CALL("ddd", py_avg, 1.5, 2.0));
	printf("py_half=%.3f\n", (double)GOV_CALL("ff", py_half, 5.0f));
	long n = GOV_CALL("lsoz", py_greet, "rhodes", out, sizeof out);
	printf("py_greet=%ld %s\n", n, out);
	printf("py_len=%ld\n", GOV_CALL("lbz", py_len, buf, sizeof buf));
	errno = 0;
	int r = GOV_CALL("ii", py_fail, EACCES);
	printf("py_fail=%d errno=%s\n", r, errno == EACCES ? "EACCES" : strerror(errno));
	errno = 0;
	long b = GOV_CALL("l", py_boom);
	printf("py_boom=%ld errno=%s\n", b, errno == EIO ? "EIO" : strerror(errno));
	struct pt p = call_py_pt((struct pt){ 7, 1.25 }, 3);
	printf("py_pt=%d %.3f\n", p.a, p.b);
	char title[] = "title";
	printf("py_rec=%ld\n", call_py_rec((struct doc){ 'D', { "name", 3, buf, 10 }, title }, 1));
	printf("py_rec_null=%ld\n", call_py_rec((struct doc){ 'D', { NULL, 3, NULL, 10 }, NULL }, 1));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "serve") == 0) {
		char err[256];
		serving = 1;
		if (govrt_serve_start(NULL, err, sizeof err) < 0) {
			fprintf(stderr, "peer: %s\n", err);
			return 1;
		}
		for (;;)
			pause();
	}
	if (argc > 1 && strcmp(argv[1], "call") == 0)
		return call_main();
	fprintf(stderr, "usage: peer call|serve\n");
	return 1;
}
