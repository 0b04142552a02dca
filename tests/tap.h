/* tests/tap.h - TAP output for the C tests; prove(1) runs them and counts.
 * Each test binary prints "ok N - what" / "not ok N - what" lines and ends
 * with done_testing(), which prints the plan and its exit status. */
#ifndef GOV_TAP_H
#define GOV_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed;

__attribute__((format(printf, 4, 5), unused))
static int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%sok %d - ", pass ? "" : "not ", ++tap_count);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	if (!pass) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return pass;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_long(got, want, ...) do {                                          \
	long long tap_g = (long long)(got), tap_w = (long long)(want);        \
	if (!ok(tap_g == tap_w, __VA_ARGS__))                                 \
		printf("#   got %lld, want %lld\n", tap_g, tap_w);            \
} while (0)
#define has_str(hay, needle, ...) do {                                        \
	const char *tap_h = (hay), *tap_n = (needle);                         \
	if (!ok(tap_h && strstr(tap_h, tap_n), __VA_ARGS__))                  \
		printf("#   \"%s\" does not contain \"%s\"\n",                \
		       tap_h ? tap_h : "(null)", tap_n);                      \
} while (0)

__attribute__((format(printf, 1, 2), unused))
static void diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

__attribute__((unused)) static int done_testing(void)
{
	printf("1..%d\n", tap_count);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

#endif
