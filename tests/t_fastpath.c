/* tests/t_fastpath.c - a governed program with no agent and no rules: its
 * site table is registered and filled in, every site behaves exactly like
 * the plain call, and govrt says nothing. Built twice: against libgovrt.so
 * and against libgovrt.a. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"

__attribute__((noinline)) long add(long a, long b) { return a + b; }
__attribute__((noinline)) double scale(double x, float f) { return x * f; }
__attribute__((noinline)) const char *pick(const char *a, const char *b, int which) { return which ? b : a; }
static int touched;
__attribute__((noinline)) void touch(int v) { touched = v; }
__attribute__((noinline)) int six(int a, int b, int c, int d, int e, int f) { return a + b + c + d + e + f; }
__attribute__((noinline)) int none(void) { errno = EINTR; return -1; }

static void behaviour(void)
{
	is_long(GOV_CALL("lll", add, 40L, 2L), 42, "a call with no agent returns what the plain call does");
	ok(GOV_CALL("ddf", scale, 1.5, 2.0f) == 3.0, "floating point arguments and results pass through");
	ok(strcmp(GOV_CALL("pssi", pick, "x", "y", 1), "y") == 0, "pointers pass through");
	GOV_CALL_VOID("vi", touch, 7);
	is_long(touched, 7, "a void call runs");
	is_long(GOV_CALL("iiiiiii", six, 1, 2, 3, 4, 5, 6), 21, "six arguments pass through");
	errno = 0;
	ok(GOV_CALL("i", none) == -1 && errno == EINTR, "errno set by the callee reaches the caller");
	is_long(GOV_SYSCALL(SYS_getppid), getppid(), "a raw syscall site returns the syscall's result");
	is_long(GOV_SYSCALL(SYS_close, -1), -EBADF, "and its -errno");
	int i = 0;
	long r = GOV_CALL("lll", add, (long)i++, 10L);
	ok(r == 10 && i == 1, "arguments are evaluated once");
	struct govrt_stats st;
	govrt_stats(&st);
	is_long(st.dispatched, 0, "no site left the fast path");
	ok(!govrt_connected(), "no agent, no connection");
}

static void site_table(void)
{
	size_t n = (size_t)(__stop_gov_sites - __start_gov_sites);
	ok(n >= 10, "the module's site table holds its sites (%zu)", n);
	int ids = 1, syscall_named = 0, typed = 1;
	for (struct gov_site *s = __start_gov_sites; s < __stop_gov_sites; s++) {
		ids &= s->id != 0;
		typed &= s->types && strlen(s->types) == (size_t)s->nparams + 1;
		if (s->kind == GOV_SITE_SYSCALL && s->sysno == SYS_getppid)
			syscall_named = s->callee && strcmp(s->callee, "getppid") == 0;
		if (s->kind == GOV_SITE_CALL && strcmp(s->callee, "add") == 0 && strcmp(s->caller, "behaviour") == 0)
			ok(s->line > 0 && strstr(s->file, "t_fastpath.c") &&
			   s->id == gov_site_id(s->file, s->line, s->caller, s->callee),
			   "a call site records caller, file, line and its stable id");
		ok(s->verdict == GOV_VERDICT_NATIVE, "site %s at line %u is native", s->callee, s->line);
	}
	ok(ids, "govrt gave every site an id at registration");
	ok(typed, "every site's type string matches its parameter count");
	ok(syscall_named, "a raw syscall site is named from the syscall table");
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "quiet") == 0)
		return GOV_CALL("lll", add, 1L, 1L) == 2 ? 0 : 1;
	behaviour();
	site_table();
	char *out;
	char *const args[] = { "/proc/self/exe", "quiet", NULL };
	unsetenv("GOV_RESOURCE");
	int st = run_capture(args, &out);
	ok(st == 0 && out[0] == 0, "with no resource named, govrt prints nothing at all");
	free(out);
	return done_testing();
}
