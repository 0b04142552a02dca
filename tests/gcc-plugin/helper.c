/* tests/gcc-plugin/helper.c - callees for calls.c. Built with the plugin as
 * well (targets=twice), so from_other_unit's call to twice is a site of this
 * unit: with -flto, twice is called through sites of two units. */
#include <stdio.h>
#include "helper.h"

int noted;

long twice(long x) { return 2 * x; }
double scale(double x, float f) { return x * f; }
int sum6(int a, int b, int c, int d, int e, int f)
{
	return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f;
}
size_t count_nonzero(const void *buf, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((const unsigned char *)buf)[i] != 0;
	return k;
}
size_t fill(void *buf, size_t n, int c)
{
	for (size_t i = 0; i < n; i++)
		((unsigned char *)buf)[i] = (unsigned char)(c + i);
	return n;
}
const char *greet(const char *name)
{
	static char out[64];
	snprintf(out, sizeof out, "hello, %s", name);
	return out;
}
short neg16(short x) { return (short)-x; }
unsigned char low8(unsigned long x) { return (unsigned char)x; }
unsigned mix(unsigned a, long long b, _Bool c) { return a ^ (unsigned)(b >> 3) ^ (c ? 0x80000000u : 0); }
void note(int x) { noted += x; }
long from_other_unit(long x) { return twice(x) + 1; }
