/* tests/t_rw_sigmask.c - Syscall User Dispatch and the program's temporary
 * signal masks (runtime/sud.c), with a real agent that denies getppid.
 *
 * ppoll, pselect6, epoll_pwait, epoll_pwait2 and sigsuspend wait with a
 * mask the program gives them; here it blocks every signal but SIGUSR1,
 * SIGSYS included, and SIGUSR1 is pending, so the program's handler runs
 * inside the wait. Its getppid must be governed (denied, not run: govrt
 * makes the waiting syscall with the selector closed) and must not kill
 * the process (a trap with SIGSYS blocked would: govrt waits with a copy
 * of the mask without SIGSYS). The program's sigset is never written, and
 * its own mask is as before after the wait. The same under
 * GOV_SYSCALLS=exhaustive, where the waiting sites are patched lazily.
 * A trapped sigprocmask takes effect (the SIGSYS handler's sigreturn
 * must not undo it). Bad masks (unreadable, wrong size, bad how) fail as
 * they would natively. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"

#define R "t-rw-sigmask"
#define RULES "verdicts:\n  - syscall: getppid\n    action: deny\n    errno: EACCES\n"

static volatile int handler_runs;
static volatile long handler_ret;

static void on_usr1(int sig)
{
	(void)sig;
	handler_runs++;
	handler_ret = gov_raw_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0);
}

enum { W_PPOLL, W_PSELECT, W_EPWAIT, W_EPWAIT2, W_SIGSUSPEND, NWAITS };
static const char *const wait_name[NWAITS] = {
	"ppoll", "pselect6", "epoll_pwait", "epoll_pwait2", "sigsuspend",
};

static int wait_once(int k, const sigset_t *tmp, int epfd)
{
	struct timespec ts = { 2, 0 };
	struct epoll_event ev;
	switch (k) {
	case W_PPOLL:
		return ppoll(NULL, 0, &ts, tmp);
	case W_PSELECT:
		return pselect(0, NULL, NULL, NULL, &ts, tmp);
	case W_EPWAIT:
		return epoll_pwait(epfd, &ev, 1, 2000, tmp);
	case W_EPWAIT2:
		return epoll_pwait2(epfd, &ev, 1, &ts, tmp);
	default:
		return sigsuspend(tmp);
	}
}

/* One wait of kind k, SIGUSR1 pending and unblocked only by the wait's
 * mask. "" when all went as it should, else what did not. */
static const char *check_wait(int k, int epfd)
{
	static char why[160];
	sigset_t usr1, tmp, after;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	sigfillset(&tmp);
	sigdelset(&tmp, SIGUSR1);
	int runs = handler_runs;
	handler_ret = 0;
	raise(SIGUSR1);
	errno = 0;
	int r = wait_once(k, &tmp, epfd);
	int e = errno;
	sigprocmask(SIG_BLOCK, NULL, &after);
	why[0] = 0;
	if (r != -1 || e != EINTR)
		snprintf(why, sizeof why, "returned %d (%s), not EINTR", r, strerror(e));
	else if (handler_runs != runs + 1)
		snprintf(why, sizeof why, "the handler ran %d times", handler_runs - runs);
	else if (handler_ret != -EACCES)
		snprintf(why, sizeof why, "the handler's getppid gave %ld, not -EACCES", handler_ret);
	else if (!sigismember(&tmp, SIGSYS) || sigismember(&tmp, SIGUSR1))
		snprintf(why, sizeof why, "the program's sigset was changed");
	else if (!sigismember(&after, SIGUSR1) || sigismember(&after, SIGSYS))
		snprintf(why, sizeof why, "the mask after the wait is not the one before");
	sigprocmask(SIG_UNBLOCK, &usr1, NULL);
	return why;
}

/* The sigprocmask checks, made under Syscall User Dispatch: each of
 * held[] is 1 when that check held. A trapped sigprocmask takes effect
 * (its handler's sigreturn must not undo it). */
enum { SPM_BLOCK_HOLDS, SPM_UNBLOCK_DELIVERS, SPM_ALL_BUT_SIGSYS, SPM_BAD_ARGS, SPM_N };
static const char *const spm_what[SPM_N] = {
	"sigprocmask(SIG_BLOCK) under Syscall User Dispatch holds: a raised SIGUSR1 stays pending",
	"and is delivered when the program unblocks it",
	"SIG_SETMASK of every signal blocks all but SIGSYS",
	"rt_sigprocmask with a bad how (EINVAL) or an unreadable set (EFAULT), as the kernel",
};

static void sigprocmask_checks(int held[SPM_N])
{
	sigset_t usr1, pend;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	int runs = handler_runs;
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	raise(SIGUSR1);
	sigpending(&pend);
	held[SPM_BLOCK_HOLDS] = handler_runs == runs && sigismember(&pend, SIGUSR1);
	sigprocmask(SIG_UNBLOCK, &usr1, NULL);
	held[SPM_UNBLOCK_DELIVERS] = handler_runs == runs + 1;
	sigset_t all, now;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	sigprocmask(SIG_SETMASK, NULL, &now);
	held[SPM_ALL_BUT_SIGSYS] = !sigismember(&now, SIGSYS) && sigismember(&now, SIGUSR1);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	errno = 0;
	held[SPM_BAD_ARGS] =
		syscall(SYS_rt_sigprocmask, 99, &usr1, NULL, 8) == -1 && errno == EINVAL &&
		syscall(SYS_rt_sigprocmask, SIG_BLOCK, (void *)8, NULL, 8) == -1 && errno == EFAULT;
}

/* The sigprocmask checks, then every kind of wait n times; prints "KIND ok"
 * or "KIND bad: why" (the parent fails on any " bad: "). */
static void all_waits(int n)
{
	int held[SPM_N];
	sigprocmask_checks(held);
	for (int c = 0; c < SPM_N; c++)
		if (!held[c])
			printf("sigprocmask bad: %s\n", spm_what[c]);

	int epfd = epoll_create1(EPOLL_CLOEXEC);
	for (int k = 0; k < NWAITS; k++) {
		const char *why = "";
		for (int i = 0; i < n && !*why; i++)
			why = check_wait(k, epfd);
		if (*why)
			printf("%s bad: %s\n", wait_name[k], why);
		else
			printf("%s ok\n", wait_name[k]);
	}
	close(epfd);
	fflush(stdout);
}

/* A wait that never ends (sigsuspend has no timeout, and every other
 * signal is blocked inside it) must not hang the test run. */
static void *watchdog(void *arg)
{
	(void)arg;
	sleep(60);
	fprintf(stderr, "t_rw_sigmask: a wait never returned\n");
	_exit(9);
}

static void install_handler(void)
{
	pthread_t t;
	pthread_create(&t, NULL, watchdog, NULL);
	pthread_detach(t);
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

static int run_child(const char *mode, const char *env0, char **out)
{
	static char self[4096];
	if (!self[0] && readlink("/proc/self/exe", self, sizeof self - 1) < 0)
		return -1;
	char *args[] = { "/usr/bin/env", (char *)env0, self, "child", (char *)mode, NULL };
	return run_capture(args, out);
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "child") == 0) {
		if (wait_connected(1, 3000) < 0 || govrt_wait_table(1, 3000) < 0)
			return 2;
		install_handler();
		all_waits(3);
		struct govrt_stats st;
		govrt_stats(&st);
		printf("lazy=%llu sites_lazy=%llu\n", (unsigned long long)st.sys_lazy,
		       (unsigned long long)st.sites_lazy);
		return 0;
	}
	harness_reexec(argv, R, (const char *const[]){ "GOV_SYSCALLS=sud", NULL });
	pid_t agent = agent_start(R, RULES, NULL);
	ok(wait_connected(1, 3000) == 0 && govrt_wait_table(1, 2000) == 0,
	   "a real agent that denies getppid; Syscall User Dispatch on");
	install_handler();
	is_long(gov_raw_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), -EACCES,
		"a raw getppid outside any wait is denied");
	int held[SPM_N];
	sigprocmask_checks(held);
	for (int c = 0; c < SPM_N; c++)
		ok(held[c], "%s", spm_what[c]);

	int epfd = epoll_create1(EPOLL_CLOEXEC);
	for (int k = 0; k < NWAITS; k++) {
		const char *why = check_wait(k, epfd);
		if (!*why)
			why = check_wait(k, epfd); /* and again, the site known */
		ok(!*why, "%s with a mask that blocks SIGSYS: the handler that runs inside it is "
		   "governed and not killed; the program's sigset and mask unchanged%s%s",
		   wait_name[k], *why ? ": " : "", why);
	}

	/* bad masks fail as natively, nothing changed */
	struct timespec ts = { 0, 1000 };
	sigset_t set;
	sigfillset(&set);
	errno = 0;
	ok(syscall(SYS_ppoll, NULL, 0, &ts, (void *)8, 8) == -1 && errno == EFAULT,
	   "ppoll with an unreadable mask: EFAULT, as without govrt");
	errno = 0;
	ok(syscall(SYS_ppoll, NULL, 0, &ts, &set, 4) == -1 && errno == EINVAL,
	   "ppoll with a mask size of 4: EINVAL from the kernel, as without govrt");
	errno = 0;
	ok(syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, (void *)8) == -1 && errno == EFAULT,
	   "pselect6 with an unreadable {mask, size} pair: EFAULT");
	struct { const sigset_t *ss; size_t len; } pair = { (const sigset_t *)8, 8 };
	errno = 0;
	ok(syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, &pair) == -1 && errno == EFAULT,
	   "pselect6 whose pair points at an unreadable mask: EFAULT");
	errno = 0;
	ok(syscall(SYS_rt_sigsuspend, (void *)8, 8) == -1 && errno == EFAULT,
	   "rt_sigsuspend with an unreadable mask: EFAULT");
	errno = 0;
	struct epoll_event ev;
	ok(syscall(SYS_epoll_pwait, epfd, &ev, 1, 0, (void *)8, 8) == -1 && errno == EFAULT,
	   "epoll_pwait with an unreadable mask: EFAULT");
	ok(sigismember(&set, SIGSYS) && pair.ss == (const sigset_t *)8,
	   "the program's sigset and pair were not written");
	close(epfd);

	/* A site is patched only while every other thread is blocked outside
	 * its window (runtime/lazypatch.c), which a loaded machine may never
	 * offer in one short run: the child runs up to 3 times until some
	 * syscall took the patched path. A patcher that never patches fails
	 * all three. */
	char *out = NULL;
	int status = 0, bad = 0, child_runs = 0;
	unsigned long long lazy = 0, sites = 0;
	do {
		free(out);
		out = NULL;
		status = run_child("exhaustive", "GOV_SYSCALLS=exhaustive", &out);
		bad = !out || strstr(out, " bad: ") != NULL;
		for (int k = 0; k < NWAITS && out; k++) {
			char want[64];
			snprintf(want, sizeof want, "%s ok\n", wait_name[k]);
			bad |= strstr(out, want) == NULL;
		}
		lazy = sites = 0;
		char *p = out ? strstr(out, "lazy=") : NULL;
		if (p)
			sscanf(p, "lazy=%llu sites_lazy=%llu", &lazy, &sites);
	} while (++child_runs < 3 && status == 0 && !bad && !(lazy >= 1 && sites >= 1));
	ok(status == 0 && !bad, "GOV_SYSCALLS=exhaustive: the sigprocmask checks and every wait, 3 times each, as above");
	ok(lazy >= 1 && sites >= 1, "some of those syscalls took the lazily patched path "
	   "(%llu calls, %llu sites; run %d of at most 3)", lazy, sites, child_runs);
	if (status != 0 || bad)
		diag("%s", out ? out : "(no output)");
	free(out);
	agent_stop(agent);
	return done_testing();
}
