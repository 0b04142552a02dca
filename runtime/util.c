/* runtime/util.c - small helpers shared by govrt and govagent: futexes,
 * the clock, the run directory. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

int gov_futex_wait(volatile uint32_t *word, uint32_t expected, long timeout_ns)
{
	struct timespec ts = { timeout_ns / 1000000000L, timeout_ns % 1000000000L };
	long r = syscall(SYS_futex, word, FUTEX_WAIT, expected,
			 timeout_ns >= 0 ? &ts : NULL, NULL, 0);
	return r < 0 ? -errno : 0;
}

int gov_futex_wake(volatile uint32_t *word, int count)
{
	return (int)syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
}

uint64_t gov_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int gov_run_dir(char *buf, size_t len)
{
	const char *dir = getenv("GOV_RUN_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;
	if (dir && *dir)
		n = snprintf(buf, len, "%s", dir);
	else if (xdg && *xdg)
		n = snprintf(buf, len, "%s/rhodes", xdg);
	else
		n = snprintf(buf, len, "/tmp/rhodes-%u", (unsigned)getuid());
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int gov_run_path(char *buf, size_t len, const char *resource, const char *suffix)
{
	char dir[PATH_MAX];
	if (gov_run_dir(dir, sizeof dir) < 0)
		return -1;
	int n = snprintf(buf, len, "%s/%s.%s", dir, resource, suffix);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int gov_resource_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n >= GOV_NAME_MAX || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int gov_errno_from_name(const char *s)
{
	char *end;
	long x = strtol(s, &end, 10);
	if (*s && !*end && x > 0 && x < 4096)
		return (int)x;
	for (int e = 1; e < 200; e++) {
		const char *name = strerrorname_np(e);
		if (name && strcmp(name, s) == 0)
			return e;
	}
	return -1;
}
