/* bench/sites/loop.c - a tight loop calling sites_callee (callee.c), built
 * plain and with govintercept (targets=sites_callee) by bench/sites/main.c.
 * Prints the ns per call of N calls (after N/10 to warm up) and the sum. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

long sites_callee(long x);

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000000, s = 0;
	for (long i = 0; i < n / 10; i++)
		s += sites_callee(i);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		s += sites_callee(i);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
	printf("%.4f %ld\n", ns / (double)n, s);
	return 0;
}
