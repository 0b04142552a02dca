/* bench/xcall/main.c - the round trip of a cross-resource call, per edge
 * protocol, beside the same function called directly and beside Linux
 * pipe, unix-socket and spin-handoff round trips (bench/ipc/baselines.c),
 * all measured in the same run.
 *
 * The path measured: this process (resource bx-app) -> its agent ->
 * the edge (unix, tcp, msgqueue, shm) -> bx-svc's agent -> a serving
 * process (bx-svc) -> back; the call is `long bx_echo(long)`. Two agent
 * configurations: sleeping (--spin-us 0: every wait sleeps at once) and
 * spinning (--spin-us 50, the default: agents' workers and shm links spin
 * 50 µs before sleeping; spinning for good is not an option when the four
 * parties of a call share two vCPUs). Each protocol
 * runs ROUNDS times interleaved with the others; the table shows the median
 * of the rounds' medians and their spread. CPU time per call is reported
 * for the four parties together. It asserts nothing; with --markdown FILE
 * it replaces its own section of FILE (BENCH_NOISY=1 labels the numbers as
 * measured on a busy machine). --protocol PROTO measures that protocol's
 * rows alone, for quick A/B runs. --pin puts the caller and the serving
 * process on two distinct CPUs, as the spin floor's two threads are: on a
 * busy two-CPU machine the scheduler otherwise often leaves both on one
 * CPU, where each handoff waits for a sched_yield and the round trip
 * measures the scheduler rather than the call. --same-cpu puts both on one
 * CPU, that case made certain. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../common.h"
#include "../ipc/baselines.h"
#include "gov/govrt.h"

#define APP "bx-app"
#define SVC "bx-svc"
#define ROUNDS 3
#define NPROTO 4
static const char *const protos[NPROTO] = { "unix", "tcp", "msgqueue", "shm" };
enum { SLEEPING, SPINNING, NODIRECT, NMODE };
static const char *const mode_names[NMODE] = { "agents sleeping", "agents spinning 50 µs",
					       "agents spinning 50 µs, --no-direct" };
/* NODIRECT keeps shm calls on the agents' path: only shm is measured there.
 * --protocol P measures P alone (a quicker A/B run of one row). */
static int only_proto = -1;
static int measured(int mode, int p)
{
	return (mode != NODIRECT || p == 3) && (only_proto < 0 || p == only_proto);
}

static int in_server;
__attribute__((noinline)) long bx_echo(long x)
{
	__asm__ volatile("" : "+r"(x));
	return in_server ? x + 1 : -1;
}

static long iters = 2000;
/* --pin, --same-cpu: the caller's CPU and the serving process's (-1: not
 * pinned) */
static int pin_caller = -1, pin_server = -1, same_cpu;
static cpu_set_t unpinned;

static int pin_to(int cpu)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	return sched_setaffinity(0, sizeof one, &one);
}
static double med[NMODE][NPROTO][ROUNDS], p99[NMODE][NPROTO][ROUNDS], cpu[NMODE][NPROTO][ROUNDS];
/* calls per second: one caller thread, and THREADS of them at once */
#define THREADS 8
static double tput1[NMODE][NPROTO][ROUNDS], tput8[NMODE][NPROTO][ROUNDS];
static double direct_ns;
static struct ipc_result base[3][ROUNDS];
static const char *const base_kinds[3] = { "pipe", "unix", "spin" };
static pid_t app_agent, svc_agent, server;
static char dir[64];

static void path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static pid_t spawn_agent(const char *resource, const char *rules, long spin_us, int no_direct)
{
	char spin[32], log[256];
	snprintf(spin, sizeof spin, "%ld", spin_us);
	path(log, sizeof log, resource);
	strcat(log, ".log");
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 2);
		unsetenv("GOV_RESOURCE");
		const char *nd = no_direct ? "--no-direct" : NULL;
		if (rules)
			execl(GOVAGENT_PATH, "govagent", "--resource", resource, "--rules", rules,
			      "--spin-us", spin, nd, (char *)NULL);
		else
			execl(GOVAGENT_PATH, "govagent", "--resource", resource, "--spin-us", spin,
			      "--edge-tcp", "127.0.0.1:0", nd, (char *)NULL);
		_exit(127);
	}
	char edge[256];
	path(edge, sizeof edge, resource);
	strcat(edge, ".edge");
	for (int i = 0; i < 3000 && access(edge, F_OK) != 0; i++)
		usleep(1000);
	return pid;
}

static void write_rules(const char *proto)
{
	char p[256];
	path(p, sizeof p, "app.yaml");
	FILE *f = fopen(p, "w");
	fprintf(f, "verdicts:\n  - {function: bx_echo, action: forward, to: " SVC "}\n"
		   "protocols:\n  - {from: " APP ", to: " SVC ", protocol: %s}\n", proto);
	fclose(f);
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

static int start_all(long spin_us, int no_direct)
{
	char rules[256], exports[256];
	write_rules("unix");
	path(rules, sizeof rules, "app.yaml");
	path(exports, sizeof exports, SVC ".exports");
	FILE *f = fopen(exports, "w");
	fputs("bx_echo ll\tlong bx_echo(long)\n", f);
	fclose(f);
	svc_agent = spawn_agent(SVC, NULL, spin_us, no_direct);
	app_agent = spawn_agent(APP, rules, spin_us, no_direct);
	server = fork();
	if (server == 0) {
		setenv("GOV_RESOURCE", SVC, 1);
		setenv("GOV_EXPORTS", exports, 1);
		execl("/proc/self/exe", "bench-xcall", "--serve", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 5000; i++) {
		if (govrt_connected() && GOV_CALL("ll", bx_echo, 41L) == 42)
			return 0;
		usleep(1000);
	}
	fprintf(stderr, "bench/xcall: the call path did not come up (logs in %s)\n", dir);
	return -1;
}

static void stop_all(void)
{
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	stop(app_agent);
	stop(svc_agent);
	for (int i = 0; i < 2000 && govrt_connected(); i++)
		usleep(1000);
}

static void use(const char *proto)
{
	struct govrt_stats st;
	govrt_stats(&st);
	write_rules(proto);
	kill(app_agent, SIGHUP);
	/* the agent's reload also rewrites our table: wait for its revision */
	govrt_wait_table(st.table_rev + 1, 5000);
}

static uint64_t all_cpu(void)
{
	return bench_process_cpu_ns(getpid()) + bench_process_cpu_ns(app_agent) +
	       bench_process_cpu_ns(svc_agent) + bench_process_cpu_ns(server);
}

static long thread_bad;
static void *caller_thread(void *arg)
{
	long n = (long)(intptr_t)arg, bad = 0;
	for (long i = 0; i < n; i++)
		bad += GOV_CALL("ll", bx_echo, i) != i + 1;
	__atomic_add_fetch(&thread_bad, bad, __ATOMIC_RELAXED);
	return NULL;
}

/* THREADS threads calling at once (several calls in flight on the edge):
 * calls per second over all of them. */
static double measure_threads(void)
{
	pthread_t t[THREADS];
	long per = iters / THREADS;
	uint64_t a = ipc_now_ns();
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, caller_thread, (void *)(intptr_t)per);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	return (double)(per * THREADS) * 1e9 / (double)(ipc_now_ns() - a);
}

static void measure(int mode, int p, int round)
{
	use(protos[p]);
	double *s = malloc((size_t)iters * sizeof *s);
	for (long i = 0; i < iters / 10; i++)
		GOV_CALL("ll", bx_echo, i);
	uint64_t c0 = all_cpu(), w0 = ipc_now_ns();
	long bad = 0;
	for (long i = 0; i < iters; i++) {
		uint64_t a = ipc_now_ns();
		long r = GOV_CALL("ll", bx_echo, i);
		s[i] = (double)(ipc_now_ns() - a);
		bad += r != i + 1;
	}
	tput1[mode][p][round] = (double)iters * 1e9 / (double)(ipc_now_ns() - w0);
	cpu[mode][p][round] = (double)(all_cpu() - c0) / (double)iters;
	thread_bad = 0;
	tput8[mode][p][round] = measure_threads();
	bad += thread_bad;
	if (bad)
		fprintf(stderr, "bench/xcall: %s: %ld wrong answers\n", protos[p], bad);
	struct ipc_result r;
	ipc_summarize(s, iters, &r);
	med[mode][p][round] = r.median_ns;
	p99[mode][p][round] = r.p99_ns;
	free(s);
}

static double median3(const double *v, double *lo, double *hi)
{
	*lo = bench_min(v, ROUNDS);
	*hi = bench_max(v, ROUNDS);
	return bench_median(v, ROUNDS);
}

static void report(FILE *f, void *arg)
{
	fprintf(f, "## bench/xcall: cross-resource call round trip\n\n");
	bench_machine_line(f, (const char *)arg);
	if (getenv("BENCH_NOISY")) /* set when measured on a busy machine */
		fprintf(f, "\n**Noisy**: measured while other work shared this machine.");
	fprintf(f, "\nPath: caller -> its agent -> edge -> callee's agent -> serving process -> back, "
		   "`long bx_echo(long)`. Each cell: median of %d interleaved rounds' medians "
		   "(%ld calls per round), spread = min–max of the round medians; CPU = all four "
		   "processes' CPU time per call. On shm edges the caller's govrt calls the serving "
		   "process itself once the agents have granted it boxes (docs/xcall.md, \"Direct "
		   "calls\"): two handoffs, no agent on the path; the --no-direct row keeps the "
		   "agents' path (six handoffs) for comparison.\n\n", ROUNDS, iters);
	fprintf(f, "| path | median µs | spread µs | p99 µs | CPU µs/call | × spin floor | × pipe | × unix |\n"
		   "|---|---:|---:|---:|---:|---:|---:|---:|\n");
	fprintf(f, "| direct call, in process | %.4f | | | | | | |\n", direct_ns / 1000);
	double spin_floor = 0, pipe_rt = 0, unix_rt = 0, lo, hi;
	for (int k = 0; k < 3; k++) {
		double v[ROUNDS], q[ROUNDS];
		for (int r = 0; r < ROUNDS; r++) {
			v[r] = base[k][r].median_ns;
			q[r] = base[k][r].p99_ns;
		}
		double l2, h2, pm = median3(q, &l2, &h2), m = median3(v, &lo, &hi);
		if (k == 0)
			pipe_rt = m;
		if (k == 1)
			unix_rt = m;
		if (k == 2)
			spin_floor = m;
		fprintf(f, "| Linux %s round trip, 8 B | %.2f | %.2f–%.2f | %.2f | | | | |\n",
			base_kinds[k], m / 1000, lo / 1000, hi / 1000, pm / 1000);
	}
	double shm[NMODE] = { 0 };
	for (int m = 0; m < NMODE; m++)
		for (int p = 0; p < NPROTO; p++) {
			if (!measured(m, p))
				continue;
			double x = median3(med[m][p], &lo, &hi), l2, h2;
			double q = median3(p99[m][p], &l2, &h2), c = median3(cpu[m][p], &l2, &h2);
			if (p == 3)
				shm[m] = x;
			fprintf(f, "| xcall %s, %s | %.2f | %.2f–%.2f | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
				protos[p], mode_names[m], x / 1000, lo / 1000, hi / 1000, q / 1000,
				c / 1000, spin_floor ? x / spin_floor : 0, pipe_rt ? x / pipe_rt : 0,
				unix_rt ? x / unix_rt : 0);
		}
	fprintf(f, "\nSeveral calls in flight: the same call from %d threads of the caller at once "
		   "(%ld calls per round in all), against one thread. Calls per second, median of "
		   "%d rounds (spread min–max). With fewer CPUs than parties, calls in flight add no "
		   "CPU: waiting callers spin (GOV_SPIN_US) on the CPUs the agents and the serving "
		   "process need, and the serving process runs one call at a time.\n\n",
		   THREADS, iters / THREADS * THREADS, ROUNDS);
	fprintf(f, "| path | 1 thread calls/s | %d threads calls/s | spread | × 1 thread |\n"
		   "|---|---:|---:|---:|---:|\n", THREADS);
	for (int m = 0; m < NMODE; m++)
		for (int p = 0; p < NPROTO; p++) {
			if (!measured(m, p))
				continue;
			double l2, h2, one = median3(tput1[m][p], &l2, &h2);
			double many = median3(tput8[m][p], &lo, &hi);
			fprintf(f, "| xcall %s, %s | %.0f | %.0f | %.0f–%.0f | %.2f |\n", protos[p],
				mode_names[m], one, many, lo, hi, one ? many / one : 0);
		}
	fprintf(f, "\n| target | measured | verdict |\n|---|---|---|\n");
	fprintf(f, "| shm edge ≤ 5 µs median, agents sleeping | %.1f µs | %s |\n", shm[SLEEPING] / 1000,
		shm[SLEEPING] <= 5000 ? "met" : "missed");
	fprintf(f, "| shm edge ≤ 4× spin floor (%.2f µs), agents spinning | %.2f µs = %.1f× | %s |\n",
		spin_floor / 1000, shm[SPINNING] / 1000, spin_floor ? shm[SPINNING] / spin_floor : 0,
		shm[SPINNING] <= 4 * spin_floor ? "met" : "missed");
	if (shm[SLEEPING] > 5000 || shm[SPINNING] > 4 * spin_floor)
		fprintf(f, "\nWhy a target is missed: a direct call still makes two handoffs, the "
			   "caller's request to the serving process's box thread and its answer back; "
			   "each that finds the other side asleep is a futex wake-up (tens of µs when a "
			   "vCPU has to be woken), and the work between them (encoding, checking, libffi) "
			   "adds to the bare spin handoff.\n");
}

/* --profile PROTO SPIN_US: calls on one protocol for 10 s, printing the four
 * parties' pids first, for a profiler (perf trace -s -p PID) to look at. */
static const char *profile_proto;
static long profile_spin;
static int profile(void)
{
	if (start_all(profile_spin, 0) < 0)
		return 1;
	if (pin_caller >= 0)
		pin_to(pin_caller);
	use(profile_proto);
	printf("caller=%d caller_agent=%d callee_agent=%d server=%d\n", (int)getpid(),
	       (int)app_agent, (int)svc_agent, (int)server);
	fflush(stdout);
	uint64_t end = ipc_now_ns() + 10000000000ull;
	long n = 0;
	while (ipc_now_ns() < end)
		n += GOV_CALL("ll", bx_echo, n) > 0;
	printf("%ld calls, %.1f us each\n", n, 10e6 / (double)n);
	stop_all();
	return 0;
}

int main(int argc, char **argv)
{
	const char *markdown = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--serve") == 0) {
			char err[256];
			in_server = 1;
			/* before govrt_serve_start: its threads inherit the mask */
			const char *cpu = getenv("BX_SERVER_CPU");
			if (cpu && pin_to(atoi(cpu)) < 0)
				perror("bench/xcall serve: sched_setaffinity");
			if (govrt_serve_start(NULL, err, sizeof err) < 0) {
				fprintf(stderr, "bench/xcall serve: %s\n", err);
				return 1;
			}
			for (;;)
				pause();
		} else if (strcmp(argv[i], "--markdown") == 0 && i + 1 < argc) {
			markdown = argv[++i];
		} else if (strcmp(argv[i], "--quick") == 0) {
			iters = 300;
		} else if (strcmp(argv[i], "--pin") == 0) {
			pin_caller = 0; /* CPUs chosen below */
		} else if (strcmp(argv[i], "--same-cpu") == 0) {
			pin_caller = 0;
			same_cpu = 1;
		} else if (strcmp(argv[i], "--protocol") == 0 && i + 1 < argc) {
			for (only_proto = NPROTO; only_proto-- > 0;)
				if (strcmp(argv[i + 1], protos[only_proto]) == 0)
					break;
			if (only_proto < 0) {
				fprintf(stderr, "%s: --protocol %s: not one of unix, tcp, msgqueue, shm\n",
					argv[0], argv[i + 1]);
				return 1;
			}
			i++;
		} else if (strcmp(argv[i], "--profile") == 0 && i + 2 < argc) {
			profile_proto = argv[++i];
			profile_spin = atol(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--quick] [--pin | --same-cpu] [--protocol PROTO] [--markdown FILE] [--profile PROTO SPIN_US]\n",
				argv[0]);
			return 1;
		}
	}
	if (bench_governed_run("xcall", APP, 5000, argv, dir, sizeof dir) < 0)
		return 1;
	uint64_t t0 = ipc_now_ns();
	long sum = 0;
	for (long i = 0; i < 10000000; i++)
		sum += bx_echo(i);
	direct_ns = (double)(ipc_now_ns() - t0) / 1e7;
	if (sum == 42)
		puts("");
	if (markdown && (only_proto >= 0 || pin_caller >= 0)) {
		fprintf(stderr, "bench/xcall: --markdown writes the default rows: not with "
			"--protocol, --pin or --same-cpu\n");
		return 1;
	}
	sched_getaffinity(0, sizeof unpinned, &unpinned);
	if (pin_caller >= 0) {
		pin_caller = pin_server = -1;
		for (int c = 0; c < CPU_SETSIZE && pin_server < 0; c++)
			if (CPU_ISSET(c, &unpinned)) {
				if (pin_caller < 0)
					pin_caller = c;
				if (same_cpu || c != pin_caller)
					pin_server = c;
			}
		if (pin_server < 0) {
			fprintf(stderr, "bench/xcall: --pin needs two CPUs this process may use\n");
			return 1;
		}
		char cpu[16];
		snprintf(cpu, sizeof cpu, "%d", pin_server);
		setenv("BX_SERVER_CPU", cpu, 1);
	}
	if (profile_proto)
		return profile();
	for (int m = 0; m < NMODE; m++) {
		if (!measured(m, only_proto < 0 ? 3 : only_proto))
			continue;
		/* the agents, forked here, stay unpinned */
		sched_setaffinity(0, sizeof unpinned, &unpinned);
		if (start_all(m == SLEEPING ? 0 : 50, m == NODIRECT) < 0)
			return 1;
		if (pin_caller >= 0 && pin_to(pin_caller) < 0) {
			perror("bench/xcall: sched_setaffinity");
			return 1;
		}
		for (int r = 0; r < ROUNDS; r++)
			for (int p = 0; p < NPROTO; p++)
				if (measured(m, p))
					measure(m, p, r);
		stop_all();
	}
	/* the spin baseline pins its own two threads */
	sched_setaffinity(0, sizeof unpinned, &unpinned);
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < 3; k++)
			ipc_baseline(base_kinds[k], 8, 20000, &base[k][r]);
	char command[] = "make bench BENCH=xcall";
	report(stdout, command);
	if (markdown && bench_write_section(markdown, "xcall", report, command) < 0)
		return 1;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench/xcall: could not remove %s\n", dir);
	return 0;
}
