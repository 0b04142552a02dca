/* tests/gcc-plugin/warn.c - sites govintercept cannot rewrite: each gets a
 * warning with its file:line and stays a plain call (or asm). Compiled with
 * targets=by_value:seven, syscalls=all. */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>

struct pair { long a, b; };
long by_value(struct pair p);
long seven(int a, int b, int c, int d, int e, int f, int g);

long hard_regs(long nr, long a, long d)
{
	register long r10 __asm__("r10") = d;
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "r"(r10) : "rcx", "r11", "memory");
	return ret;
}

long unknown_number(long nr)
{
	return syscall(nr, 0);
}

long structs(void)
{
	struct pair p = { 1, 2 };
	return by_value(p) + seven(1, 2, 3, 4, 5, 6, 7);
}
