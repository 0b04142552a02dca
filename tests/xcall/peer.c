/* tests/xcall/peer.c - the C side of tests/t_python.sh: a C program that
 * calls a Python service's functions ("call": prints name=result lines),
 * and one that serves C functions to Python callers ("serve", exports from
 * $GOV_EXPORTS). Not a test by itself. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- Python's, called from C: local versions say they ran here ---- */
long py_add(long a, long b) { (void)a; (void)b; return LOCAL; }
double py_avg(double a, double b) { (void)a; (void)b; return LOCAL; }
float py_half(float f) { (void)f; return LOCAL; }
long py_greet(const char *name, void *out, size_t cap) { (void)name; (void)out; (void)cap; return LOCAL; }
long py_len(const void *b, size_t n) { (void)b; (void)n; return LOCAL; }
int py_fail(int e) { (void)e; return LOCAL; }
long py_boom(void) { return LOCAL; }

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
