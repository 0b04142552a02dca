/* tests/rewrite/shlib.c - a shared object with its own inline syscall
 * (getppid) and a program that calls it (-DMAIN), for tests/t_rewrite.sh:
 * the library is rewritten, the program is not. */
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

long shl_getppid(void);

#ifndef MAIN
long shl_getppid(void)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_getppid) : "rcx", "r11", "memory");
	return r;
}
#else
int main(void)
{
	long r = shl_getppid();
	printf("shl_getppid %s\n", r > 0 ? "ok" : strerror((int)-r));
	return 0;
}
#endif
