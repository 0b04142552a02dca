/* tests/rewrite/shlib.c - a shared object with its own inline syscall
 * (getppid) and a program that calls it (-DMAIN, linked to it; or -DDLOPEN,
 * which loads it with dlopen), for tests/t_rewrite.sh: the library is
 * rewritten, the program is not. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

long shl_getppid(void);

#if !defined(MAIN) && !defined(DLOPEN)
long shl_getppid(void)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_getppid) : "rcx", "r11", "memory");
	return r;
}
#elif defined(DLOPEN)
int main(void)
{
	void *h = dlopen("libshl.so", RTLD_NOW);
	long (*fn)(void) = h ? (long (*)(void))dlsym(h, "shl_getppid") : NULL;
	if (!fn) {
		printf("dlopen: %s\n", dlerror());
		return 1;
	}
	long r = fn();
	printf("shl_getppid %s\n", r > 0 ? "ok" : strerror((int)-r));
	return 0;
}
#else
int main(void)
{
	long r = shl_getppid();
	printf("shl_getppid %s\n", r > 0 ? "ok" : strerror((int)-r));
	return 0;
}
#endif
