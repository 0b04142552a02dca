/* bench/sud/main.c - what exhaustive syscall coverage costs per syscall, in
 * one run, as ratios over the raw syscall:
 *
 *   raw       the getppid instruction in this program, govrt off
 *   libc      libc's getppid(), govrt off
 *   sud       the same instruction, trapped by Syscall User Dispatch every
 *             time (GOV_SYSCALLS=sud)
 *   lazy      the same instruction patched in memory after its first trap
 *             (GOV_SYSCALLS=exhaustive)
 *   load      libc's getppid() with libc rewritten in memory at load time
 *             (GOV_SYSCALLS=exhaustive GOV_REWRITE=libc)
 *
 * Each variant is a child process (govrt reads its environment at start)
 * timing ITERS calls; REPS children per variant, alternating, pinned to one
 * CPU; medians and spread of ns per call. No agent, no rule: every syscall
 * is native after govrt's look at it. Also the coverage of libc.so.6 at
 * load time: sites rewritten in memory vs left to Syscall User Dispatch.
 * It asserts nothing; with --markdown FILE it replaces its section of FILE. */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "../common.h"

#define REPS 7
#define NVAR 5

struct variant {
	const char *name, *what, *env1, *env2;
	int libc;
	long iters;
	double ns[REPS];
	unsigned long long sites_load, sites_left, trapped;
};

static struct variant vars[NVAR] = {
	{ "raw", "the syscall instruction, govrt off", NULL, NULL, 0, 2000000, { 0 }, 0, 0, 0 },
	{ "libc", "libc's getppid(), govrt off", NULL, NULL, 1, 2000000, { 0 }, 0, 0, 0 },
	{ "sud", "trapped by Syscall User Dispatch every time", "GOV_SYSCALLS=sud", NULL, 0,
	  100000, { 0 }, 0, 0, 0 },
	{ "lazy", "patched in memory after its first trap", "GOV_SYSCALLS=exhaustive", NULL, 0,
	  2000000, { 0 }, 0, 0, 0 },
	{ "load", "libc's getppid(), libc rewritten in memory at load", "GOV_SYSCALLS=exhaustive",
	  "GOV_REWRITE=libc", 1, 2000000, { 0 }, 0, 0, 0 },
};

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

__attribute__((noinline)) static long asm_getppid(void)
{
	return gov_raw_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0);
}

/* The child: warm up, time iters calls, print ns per call and govrt's view. */
static int child(int libc, long iters)
{
	long sum = 0;
	for (int i = 0; i < 1000; i++)
		sum += libc ? getppid() : asm_getppid();
	uint64_t t0 = now_ns();
	for (long i = 0; i < iters; i++)
		sum += libc ? getppid() : asm_getppid();
	uint64_t t1 = now_ns();
	struct govrt_stats st;
	govrt_stats(&st);
	printf("%.3f %llu %llu %llu %ld\n", (double)(t1 - t0) / (double)iters,
	       (unsigned long long)st.sites_load, (unsigned long long)st.sites_load_left,
	       (unsigned long long)st.sys_sud, sum > 0 ? 0L : 1L);
	return 0;
}

static int run_variant(struct variant *v, int rep, const char *self)
{
	int fd[2];
	if (pipe(fd) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0, &set);
		sched_setaffinity(0, sizeof set, &set);
		dup2(fd[1], 1);
		close(fd[0]);
		unsetenv("GOV_SYSCALLS");
		unsetenv("GOV_REWRITE");
		unsetenv("GOV_RESOURCE");
		if (v->env1)
			putenv((char *)v->env1);
		if (v->env2)
			putenv((char *)v->env2);
		char iters[32];
		snprintf(iters, sizeof iters, "%ld", v->iters);
		execl(self, self, "child", v->libc ? "libc" : "asm", iters, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	char buf[256] = "";
	ssize_t n = read(fd[0], buf, sizeof buf - 1);
	close(fd[0]);
	int status;
	waitpid(pid, &status, 0);
	if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	buf[n] = 0;
	if (sscanf(buf, "%lf %llu %llu %llu", &v->ns[rep], &v->sites_load, &v->sites_left,
		   &v->trapped) != 4)
		return -1;
	return 0;
}



static void body(FILE *f, void *arg)
{
	(void)arg;
	fprintf(f, "## bench/sud: a syscall under exhaustive coverage (getppid)\n\n");
	bench_machine_line(f, "make bench BENCH=sud");
	double load[3] = { 0 };
	getloadavg(load, 3);
	fprintf(f, "\nLoad average when it started: %.1f (2 vCPUs: above 1, other work shares "
		   "the CPUs and the figures are noisy). ", load[0]);
	fprintf(f, "No agent and no rule, so "
		   "every syscall is native once govrt has looked at it. %d runs of each "
		   "variant, alternating, each a child process pinned to one CPU.\n\n", REPS);
	fprintf(f, "| variant | what | calls per run | median ns per call | min | max | "
		   "over raw (ns) | ratio |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
	double raw = bench_median(vars[0].ns, REPS);
	for (int i = 0; i < NVAR; i++) {
		double m = bench_median(vars[i].ns, REPS);
		double lo = bench_min(vars[i].ns, REPS), hi = bench_max(vars[i].ns, REPS);
		fprintf(f, "| %s | %s | %ld | %.1f | %.1f | %.1f | %+.1f | %.2fx |\n", vars[i].name,
			vars[i].what, vars[i].iters, m, lo, hi, m - raw, m / raw);
	}
	fprintf(f, "\nlazy and load still run with Syscall User Dispatch armed (it catches "
		   "whatever was not patched): the kernel then sends every syscall of the "
		   "thread through its slow entry path (perf: syscall_trace_enter, "
		   "syscall_user_dispatch), on top of the trampoline and govrt's entry; govrt "
		   "makes the syscall from the gate so the kernel does not also read the "
		   "selector byte.\n");
	struct variant *ld = &vars[NVAR - 1];
	unsigned long long total = ld->sites_load + ld->sites_left;
	fprintf(f, "\n**Coverage of libc.so.6** (GOV_REWRITE=libc): %llu syscall instructions; "
		   "%llu (%.1f%%) rewritten in memory at load time, %llu (%.1f%%) left to Syscall "
		   "User Dispatch (special — clone, vfork, rt_sigreturn, exit_group ... — or no "
		   "safe window). Together 100%% are caught.\n",
		total, ld->sites_load, total ? 100.0 * ld->sites_load / total : 0.0, ld->sites_left,
		total ? 100.0 * ld->sites_left / total : 0.0);
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "child") == 0)
		return child(strcmp(argv[2], "libc") == 0, atol(argv[3]));
	const char *markdown = argc == 3 && strcmp(argv[1], "--markdown") == 0 ? argv[2] : NULL;
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return 1;
	self[n] = 0;
	for (int rep = 0; rep < REPS; rep++)
		for (int i = 0; i < NVAR; i++)
			if (run_variant(&vars[i], rep, self) < 0) {
				fprintf(stderr, "bench/sud: the %s run failed\n", vars[i].name);
				return 1;
			}
	body(stdout, NULL);
	if (markdown && bench_write_section(markdown, "bench/sud", body, NULL) < 0) {
		perror(markdown);
		return 1;
	}
	return 0;
}
