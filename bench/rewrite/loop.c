/* bench/rewrite/loop.c - the getppid loop bench/rewrite runs twice, as
 * built and rewritten by govrewrite: N raw `syscall` instructions (number
 * in a `mov $110,%eax`, which the rewriter reads) after a warm-up, timed
 * with CLOCK_MONOTONIC; prints ns per call. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>

__attribute__((noinline)) static long ppid(void)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_getppid) : "rcx", "r11", "memory");
	return r;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000, sum = 0;
	for (long i = 0; i < n / 10; i++)
		sum += ppid();
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		sum += ppid();
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n;
	printf("%.3f %ld\n", ns, sum > 0);
	return 0;
}
