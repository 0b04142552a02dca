/* tests/rw/noplt.c - a program for tests/t_rw_noplt.sh, built with
 * `gcc -fno-plt`: its calls of libc functions are `call *f@GOTPCREL(%rip)`
 * through the GOT slot, and tail_rmdir's is a tail call, `jmp
 * *rmdir@GOTPCREL(%rip)`. Prints what each call returned so that a rule's
 * effect shows: malloc/free N times (argv[1], default 3), getppid, rmdir of
 * a directory that does not exist. Not a test by itself. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) int tail_rmdir(const char *path)
{
	return rmdir(path); /* -O2: a tail call through the GOT slot */
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 3;
	for (int i = 0; i < n; i++) {
		char *volatile p = malloc(64);
		if (!p)
			return 1;
		strcpy(p, "x");
		free(p);
	}
	printf("malloc/free %d ok\n", n);
	errno = 0;
	pid_t pp = getppid();
	printf("getppid %s\n", pp < 0 ? strerror(errno) : "ok");
	errno = 0;
	int r = tail_rmdir("no-such-directory");
	printf("rmdir %d %s\n", r, strerror(errno));
	return 0;
}
