/* tests/gcc-plugin/asm_regs.c - inline asm syscalls with arguments in local
 * register variables (r10, r8, r9): pread64 (offset in r10) and mmap (all
 * six registers). Built with syscalls=all they are sites; with no agent, and
 * under an agent that traces them (the slow path packs the registers'
 * values and sets the variables again before repeating the asm), the output
 * is the plain build's. regs_too_far() assigns r10 in another block: a
 * warning, not a site. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static long raw_pread(int fd, void *buf, long n, long off)
{
	register long r10 __asm__("r10") = off;
	long ret;
	__asm__ volatile("syscall" : "=a"(ret)
			 : "0"(SYS_pread64), "D"((long)fd), "S"(buf), "d"(n), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}

static long raw_mmap(long len, long prot, long flags, long fd, long off)
{
	register long r10 __asm__("r10") = flags;
	register long r8 __asm__("r8") = fd;
	register long r9 __asm__("r9") = off;
	long ret;
	__asm__ volatile("syscall" : "=a"(ret)
			 : "0"(SYS_mmap), "D"(0L), "S"(len), "d"(prot), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

long regs_too_far(long nr, long a, long d, int c)
{
	register long r10 __asm__("r10") = d;
	if (c)
		a++;
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "0"(SYS_getpid), "D"(a), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret + nr;
}

int main(int argc, char **argv)
{
	char buf[16] = { 0 };
	int fd = open(argv[0], O_RDONLY);
	long n = raw_pread(fd, buf, 3, 1);   /* an ELF file: "ELF" at offset 1 */
	printf("pread=%ld %.3s\n", n, n == 3 ? buf : "???");
	long p = raw_mmap(4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p < 0 && p > -4096) {
		printf("mmap=%ld\n", p);
	} else {
		strcpy((char *)p, "mapped");
		printf("mmap=%s\n", (char *)p);
	}
	close(fd);
	return argc > 5 ? (int)regs_too_far(0, 0, 0, 1) : 0;
}
