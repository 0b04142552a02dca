/* tests/gcc-plugin/calls.c - calls through sites and syscall sites; prints
 * what they return. Built plain and with govintercept (targets from
 * helper.h, syscalls=all); with no agent both print the same bytes. Under an
 * agent the rules of tests/t_gcc_plugin.sh change what some lines say. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "helper.h"

/* The truth, from code the plugin must leave alone; __has_attribute tells
 * whether govintercept is loaded. */
#if __has_attribute(gov_native)
#define GOV_NATIVE __attribute__((gov_native))
#else
#define GOV_NATIVE
#endif
GOV_NATIVE static long real_ppid(void) { return getppid(); }
GOV_NATIVE static long real_pid(void) { return getpid(); }
GOV_NATIVE static long native_twice(long x) { return twice(x); }

/* The one inline asm form the plugin rewrites: a constant number in rax. */
static long raw_getppid(void)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"(SYS_getppid) : "rcx", "r11", "memory");
	return r;
}
static long raw_getpid(void)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"(SYS_getpid) : "rcx", "r11", "memory");
	return r;
}

static const char *said(long v, long truth)
{
	static char buf[4][48];
	static int n;
	char *b = buf[n++ % 4];
	if (v == truth)
		return "real";
	if (v == -1)
		snprintf(b, 48, "-1/%s", strerrorname_np(errno));
	else
		snprintf(b, 48, "%ld", v);
	return b;
}

int main(void)
{
	unsigned char buf[16] = { 1, 0, 2, 0, 3 };
	char text[32];

	printf("twice %ld\n", twice(21));
	printf("pair %ld\n", twice(1) + twice(2));
	printf("native_twice %ld\n", native_twice(5));
	printf("scale %.4f\n", scale(2.5, 1.5f));
	printf("sum6 %d\n", sum6(1, -2, 3, -4, 5, -6));
	printf("count %zu\n", count_nonzero(buf, sizeof buf));
	size_t filled = fill(buf, 8, 250);
	printf("fill %zu %u\n", filled, buf[7]);
	printf("greet %s\n", greet("rhodes"));
	printf("neg16 %d\n", neg16(-300));
	printf("low8 %u\n", low8(0x1234abcdUL));
	printf("mix %u\n", mix(0xdeadbeefu, -123456789012LL, 1));
	note(5);
	note(-2);
	printf("noted %d\n", noted);
	printf("other %ld\n", from_other_unit(4));

	char path[] = "gp-file.txt";
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	printf("open %s\n", fd >= 0 ? "ok" : "failed");
	printf("write %ld\n", (long)write(fd, "data\n", 5));
	printf("close %d\n", close(fd));
	fd = openat(AT_FDCWD, path, O_RDONLY);
	ssize_t n = read(fd, text, sizeof text - 1);
	text[n > 0 ? n : 0] = 0;
	printf("read %ld %s", (long)n, text);
	close(fd);
	errno = 0;
	int u = unlink(path);
	printf("unlink %s, file %s\n", said(u, 0), access(path, F_OK) == 0 ? "stays" : "gone");
	unlink(path);

	long ppid = real_ppid(), pid = real_pid();
	errno = 0;
	const char *w = said(getppid(), ppid);
	const char *s = said(syscall(SYS_getppid), ppid);
	printf("getppid wrapper=%s syscall=%s asm=%s\n", w, s, said(raw_getppid(), ppid));
	errno = 0;
	w = said(getpid(), pid);
	errno = 0;
	s = said(syscall(SYS_getpid), pid);
	printf("getpid wrapper=%s syscall=%s asm=%s\n", w, s, said(raw_getpid(), pid));
	return 0;
}
