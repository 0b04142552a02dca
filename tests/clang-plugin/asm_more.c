/* tests/clang-plugin/asm_more.c - more inline asm syscalls with arguments in
 * local register variables, for the parity of the two plugins' choices:
 * each function's asm is a site with both or a warning with both (the
 * test compares gcc's listing and warnings with clang's). */
#include <sys/syscall.h>

long g;

long from_memory(void)          /* a global (GCC copies it to a temporary): a site */
{
	register long r10 __asm__("r10") = g;
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "0"(SYS_getpid), "r"(r10) : "rcx", "r11");
	return ret;
}

long reassigned(long a, int c)  /* the last assignment after the branch: a site */
{
	register long r8 __asm__("r8") = 1;
	if (c)
		a++;
	r8 = a;
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "0"(SYS_getpid), "r"(r8) : "rcx", "r11");
	return ret;
}

long changed_between(long a)    /* its source assigned after it: a warning */
{
	register long r9 __asm__("r9") = a;
	a = 5;
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "0"(SYS_getpid), "D"(a), "r"(r9) : "rcx", "r11");
	return ret;
}

long constant(void)             /* a constant, with a gap at rsi and rdx: a site */
{
	register long r10 __asm__("r10") = 42;
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "0"(SYS_getpid), "D"(0L), "r"(r10) : "rcx", "r11");
	return ret;
}

long through_pointer(long *p)   /* through a pointer (a temporary too): a site */
{
	register long r10 __asm__("r10") = *p;
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "0"(SYS_getpid), "r"(r10) : "rcx", "r11");
	return ret;
}
