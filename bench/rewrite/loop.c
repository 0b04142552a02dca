/* bench/rewrite/loop.c - the getppid loop bench/rewrite runs as built and
 * rewritten by govrewrite. Two paths make the same syscall:
 *   site: a `mov $110,%eax; syscall` in this file's code, which govrewrite
 *         redirects through a trampoline (verdict native: no agent);
 *   raw:  the same bytes copied at run time into an anonymous page, which
 *         no rewriter sees.
 * Both are called through a function pointer. ROUNDS rounds, each timing a
 * batch of BATCH raw calls and a batch of BATCH site calls (which first
 * alternates), so the machine's noise hits both alike; prints one "raw_ns site_ns" line per
 * round. In the original build both paths are raw: the control. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

__attribute__((noinline)) static long site_ppid(void)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_getppid) : "rcx", "r11", "memory");
	return r;
}

static double batch_ns(long (*fn)(void), long n)
{
	struct timespec a, b;
	long sum = 0;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		sum += fn();
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (sum == 0)
		return -1;
	return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n;
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 100, batch = argc > 2 ? atol(argv[2]) : 20000;
	static const unsigned char stub[] = { 0xb8, SYS_getppid, 0, 0, 0, 0x0f, 0x05, 0xc3 };
	unsigned char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	memcpy(p, stub, sizeof stub);
	if (mprotect(p, 4096, PROT_READ | PROT_EXEC) != 0)
		return 1;
	long (*volatile raw)(void) = (long (*)(void))(void *)p;
	long (*volatile site)(void) = site_ppid;
	batch_ns(raw, batch);
	batch_ns(site, batch);
	for (long r = 0; r < rounds; r++) {
		double a, b; /* which goes first alternates: no order bias */
		if (r & 1)
			b = batch_ns(site, batch), a = batch_ns(raw, batch);
		else
			a = batch_ns(raw, batch), b = batch_ns(site, batch);
		printf("%.3f %.3f\n", a, b);
	}
	return 0;
}
