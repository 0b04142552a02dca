/* tests/rewrite/sys.c - a program whose own code makes syscalls with inline
 * `syscall` instructions, for tests/t_rewrite.sh: getppid and getpid with
 * the number in a `mov $N,%eax` (the rewriter reads it), getuid with the
 * number loaded from memory (it cannot: the trampoline passes rax), write
 * to stdout, and a malloc/free pair for --calls. Prints what each returned
 * so that a rule's effect shows. Builds static or dynamic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

static volatile long uid_nr = SYS_getuid;

static long sys0(long nr)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"(nr) : "rcx", "r11", "memory");
	return r;
}

__attribute__((noinline)) static long my_getppid(void) { return sys0(SYS_getppid); }
__attribute__((noinline)) static long my_getpid(void) { return sys0(SYS_getpid); }
__attribute__((noinline)) static long my_getuid(void) { return sys0(uid_nr); }

__attribute__((noinline)) static long my_write(const char *s)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r)
			 : "0"((long)SYS_write), "D"(1L), "S"(s), "d"((long)strlen(s))
			 : "rcx", "r11", "memory");
	return r;
}

int main(int argc, char **argv)
{
	int loops = argc > 1 ? atoi(argv[1]) : 1;
	long ppid = 0, pid = 0, uid = 0;
	for (int i = 0; i < loops; i++) {
		ppid = my_getppid();
		pid = my_getpid();
		uid = my_getuid();
	}
	char *p = malloc(64);
	snprintf(p, 64, "write ok\n");
	my_write(p);
	free(p);
	printf("getppid %s\n", ppid > 0 ? "ok" : ppid == 0 ? "zero" : strerror((int)-ppid));
	printf("getpid %s\n", pid > 0 ? "ok" : strerror((int)-pid));
	printf("getuid %s\n", uid >= 0 ? "ok" : strerror((int)-uid));
	return 0;
}
