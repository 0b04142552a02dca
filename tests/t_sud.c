/* tests/t_sud.c - exhaustive syscalls (runtime/sud.c, runtime/lazypatch.c)
 * with a real agent: code nobody rewrote or instrumented is governed all
 * the same. Syscalls from inline asm in this program, from libc, from a
 * library loaded with dlopen, from a new thread, a forked child and an
 * exec'd image are denied or emulated by the agent's rules; a lazily
 * patched site stops taking signals; libc rewritten at load time; the
 * program's own SIGSYS handler and SIGSYS masks; bad settings. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"

#define R "t-sud"
#define RULES "verdicts:\n" \
	"  - syscall: getppid\n    action: deny\n    errno: EACCES\n" \
	"  - syscall: getuid\n    action: emulate\n    value: 4242\n" \
	"  - syscall: chdir\n    action: deny\n    errno: ENOTDIR\n"

/* The raw instruction, in this program's own code, which no tool touched. */
__attribute__((noinline)) static long asm_getppid(void)
{
	return gov_raw_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0);
}

/* 4 threads x 250 calls; each returns how many were not denied. */
static void *thread_main(void *arg)
{
	(void)arg;
	long wrong = 0;
	for (int i = 0; i < 250; i++)
		wrong += asm_getppid() != -EACCES;
	return (void *)wrong;
}

static volatile int program_sigsys;
static void on_program_sigsys(int sig)
{
	(void)sig;
	program_sigsys++;
}

/* A library this program loads later, built now: its getppid is a raw
 * syscall instruction of its own. */
static void *build_and_open_library(void)
{
	char src[512], so[512], cmd[1400];
	snprintf(src, sizeof src, "%s/lib.c", harness_run_dir());
	snprintf(so, sizeof so, "%s/libsudt.so", harness_run_dir());
	FILE *f = fopen(src, "w");
	if (!f)
		return NULL;
	fputs("long lib_getppid(void) { long r; __asm__ volatile(\"syscall\" : \"=a\"(r) "
	      ": \"a\"(110L) : \"rcx\", \"r11\", \"memory\"); return r; }\n", f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "cc -shared -fPIC -O1 -o %s %s", so, src);
	if (system(cmd) != 0)
		return NULL;
	return dlopen(so, RTLD_NOW);
}

/* Runs this test's binary as "child MODE" with extra environment; returns
 * its output (malloc'ed) and exit status. */
static int run_child(const char *mode, const char *const env[], char **out)
{
	static char self[4096];
	if (!self[0] && readlink("/proc/self/exe", self, sizeof self - 1) < 0)
		return -1;
	char *args[16] = { "/usr/bin/env" };
	int n = 1;
	for (int i = 0; env[i]; i++)
		args[n++] = (char *)env[i];
	args[n++] = self;
	args[n++] = "child";
	args[n++] = (char *)mode;
	args[n] = NULL;
	return run_capture(args, out);
}

/* ---- children ---- */

static void print_stats(const char *tag)
{
	struct govrt_stats st;
	govrt_stats(&st);
	printf("%s sud=%llu lazy=%llu load=%llu sites_sud=%llu sites_lazy=%llu sites_load=%llu\n",
	       tag, (unsigned long long)st.sys_sud, (unsigned long long)st.sys_lazy,
	       (unsigned long long)st.sys_load, (unsigned long long)st.sites_sud,
	       (unsigned long long)st.sites_lazy, (unsigned long long)st.sites_load);
}

static int child(const char *mode)
{
	if (strcmp(mode, "exec") == 0) /* the exec'd image: armed again? */
		return asm_getppid() == -EACCES ? 0 : 3;
	if (strcmp(mode, "lazy") == 0) {
		/* one site, 1000 calls: one trap, then the trampoline */
		if (wait_connected(1, 3000) < 0 || govrt_wait_table(1, 3000) < 0)
			return 2;
		long bad = 0;
		for (int i = 0; i < 1000; i++)
			bad += asm_getppid() != -EACCES;
		print_stats("before"); /* patched by now, unless a thread stood in the way */
		for (int i = 0; i < 1000; i++)
			bad += asm_getppid() != -EACCES;
		print_stats("after");
		printf("wrong=%ld\n", bad);
		return 0;
	}
	if (strcmp(mode, "load") == 0) {
		if (wait_connected(1, 3000) < 0 || govrt_wait_table(1, 3000) < 0)
			return 2;
		long bad = 0;
		for (int i = 0; i < 1000; i++)
			bad += getuid() != 4242;
		print_stats("after");
		printf("wrong=%ld\n", bad);
		return 0;
	}
	if (strcmp(mode, "plain") == 0)
		return getpid() > 0 ? 0 : 4;
	return 1;
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "child") == 0)
		return child(argv[2]);
	harness_reexec(argv, R, (const char *const[]){ "GOV_SYSCALLS=sud", NULL });
	pid_t agent = agent_start(R, RULES, NULL);
	ok(wait_connected(1, 3000) == 0 && govrt_wait_table(1, 2000) == 0,
	   "a real agent with deny and emulate rules for syscalls");

	struct govrt_stats st0, st1;
	govrt_stats(&st0);
	is_long(asm_getppid(), -EACCES, "a raw syscall in this program's code is denied (-EACCES)");
	errno = 0;
	ok(chdir("/") == -1 && errno == ENOTDIR, "libc's chdir() is denied with the rule's errno");
	is_long((long)getuid(), 4242, "libc's getuid() is emulated");
	ok(getpid() > 1, "an ungoverned syscall runs natively");
	govrt_stats(&st1);
	ok(st1.sys_sud >= st0.sys_sud + 4, "each of them was trapped by Syscall User Dispatch (%llu)",
	   (unsigned long long)(st1.sys_sud - st0.sys_sud));
	ok(st1.denied >= st0.denied + 2 && st1.emulated >= st0.emulated + 1,
	   "and decided by govrt from the agent's table");
	ok(st1.sites_sud >= 4, "run-time sites were made for them (%llu)",
	   (unsigned long long)st1.sites_sud);

	void *lib = build_and_open_library();
	ok(lib != NULL, "a library is built and loaded with dlopen");
	long (*lib_getppid)(void) = lib ? (long (*)(void))dlsym(lib, "lib_getppid") : NULL;
	is_long(lib_getppid ? lib_getppid() : 0, -EACCES, "its own syscall instruction is denied too");

	pthread_t t[4];
	long thread_wrong = 0, started = 0;
	govrt_stats(&st0);
	for (int i = 0; i < 4; i++)
		started += pthread_create(&t[i], NULL, thread_main, NULL) == 0;
	for (int i = 0; i < started; i++) {
		void *tr = NULL;
		pthread_join(t[i], &tr);
		thread_wrong += (long)tr;
	}
	govrt_stats(&st1);
	ok(started == 4, "4 threads start and end under Syscall User Dispatch");
	is_long(thread_wrong, 0L, "each of their 1000 syscalls is denied (the child of clone is armed)");
	ok(st1.sys_sud - st0.sys_sud >= 1000, "all of them trapped (%llu)",
	   (unsigned long long)(st1.sys_sud - st0.sys_sud));

	pid_t pid = fork();
	if (pid == 0)
		_exit(asm_getppid() == -EACCES ? 0 : 3);
	int status = -1;
	waitpid(pid, &status, 0);
	ok(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "a forked child's syscalls are governed (status %#x)", status);

	pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "t_sud", "child", "exec", (char *)NULL);
		_exit(5);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "an exec'd image (which clears Syscall User Dispatch) is armed again by its govrt (status %#x)",
	   status);

	/* the program's own view of SIGSYS */
	struct sigaction sa = { .sa_handler = on_program_sigsys }, old;
	ok(sigaction(SIGSYS, &sa, &old) == 0, "the program installs a SIGSYS handler");
	kill(getpid(), SIGSYS);
	is_long((long)program_sigsys, 1L, "a SIGSYS from kill() reaches the program's handler");
	is_long(asm_getppid(), -EACCES, "while dispatch traps still reach govrt");
	sigset_t all;
	sigfillset(&all);
	ok(sigprocmask(SIG_BLOCK, &all, NULL) == 0, "the program blocks every signal");
	is_long(asm_getppid(), -EACCES, "and is still governed, not killed (SIGSYS stays open)");
	sigprocmask(SIG_UNBLOCK, &all, NULL);

	/* lazily patched: a site stops taking signals */
	const char *lazy_env[] = { "GOV_SYSCALLS=exhaustive", NULL };
	char *out = NULL;
	status = run_child("lazy", lazy_env, &out);
	unsigned long long b_sud = 0, b_lazy = 0, a_sud = 0, a_lazy = 0, a_sites = 0;
	long wrong = -1;
	char *p = out ? strstr(out, "before ") : NULL;
	if (p)
		sscanf(p, "before sud=%llu lazy=%llu", &b_sud, &b_lazy);
	p = out ? strstr(out, "after ") : NULL;
	if (p)
		sscanf(p, "after sud=%llu lazy=%llu load=%*u sites_sud=%*u sites_lazy=%llu",
		       &a_sud, &a_lazy, &a_sites);
	p = out ? strstr(out, "wrong=") : NULL;
	if (p)
		wrong = atol(p + 6);
	ok(status == 0 && wrong == 0, "GOV_SYSCALLS=exhaustive: 2000 calls of a site, every one denied");
	ok(b_sud >= 1 && a_sud == b_sud && a_lazy - b_lazy >= 1000,
	   "the site was trapped (%llu), then patched: the next 1000 calls took no signal "
	   "(trapped %llu, patched path %llu)", b_sud, a_sud - b_sud, a_lazy - b_lazy);
	ok(a_sites >= 1, "the site is counted as patched lazily");
	if (getenv("T_SUD_DEBUG") || !(status == 0 && wrong == 0))
		diag("%s", out ? out : "(no output)");
	free(out);

	const char *load_env[] = { "GOV_SYSCALLS=exhaustive", "GOV_REWRITE=libc", NULL };
	status = run_child("load", load_env, &out);
	unsigned long long l_sud = 0, l_load = 0, l_sites = 0;
	p = out ? strstr(out, "after ") : NULL;
	if (p)
		sscanf(p, "after sud=%llu lazy=%*u load=%llu sites_sud=%*u sites_lazy=%*u sites_load=%llu",
		       &l_sud, &l_load, &l_sites);
	p = out ? strstr(out, "wrong=") : NULL;
	wrong = p ? atol(p + 6) : -1;
	ok(status == 0 && wrong == 0, "GOV_REWRITE=libc: libc's getuid() emulated 1000 times");
	ok(l_load >= 1000 && l_sites > 100,
	   "through libc rewritten in memory at load time (%llu calls, %llu sites rewritten)",
	   l_load, l_sites);
	if (!(status == 0 && wrong == 0))
		diag("%s", out ? out : "(no output)");
	free(out);

	/* bad settings: a clear warning, and the program runs natively */
	const char *bad1[] = { "GOV_SYSCALLS=everything", NULL };
	status = run_child("plain", bad1, &out);
	ok(status == 0, "GOV_SYSCALLS=everything: the program still runs");
	has_str(out, "GOV_SYSCALLS=everything is not off, sud or exhaustive; using off",
		"and govrt says what is wrong");
	free(out);
	const char *bad2[] = { "GOV_SYSCALLS=sud", "GOV_REWRITE=kernel", NULL };
	status = run_child("plain", bad2, &out);
	ok(status == 0, "GOV_REWRITE=kernel: the program still runs");
	has_str(out, "GOV_REWRITE=kernel is not off, libc or all; nothing rewritten",
		"and govrt says what is wrong");
	free(out);
	const char *bad3[] = { "GOV_SYSCALLS=off", "GOV_REWRITE=libc", NULL };
	status = run_child("plain", bad3, &out);
	ok(status == 0, "GOV_REWRITE without GOV_SYSCALLS: the program still runs");
	has_str(out, "GOV_REWRITE=libc needs GOV_SYSCALLS=sud or exhaustive; ignored",
		"and govrt says why nothing is rewritten");
	free(out);

	agent_stop(agent);
	return done_testing();
}
