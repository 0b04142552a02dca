/* bench/ipc/main.c - the round trip app -> agent -> app, beside Linux's own
 * IPC measured by the same harness in the same run (baselines.c).
 *
 * Measures, for requests of 8 B .. 64 KiB: govrt with a spinning agent
 * (pinned to another CPU, like the spin baseline), govrt with a sleeping
 * agent (unpinned, like the blocking baselines), and pipe, unix socket,
 * POSIX mq, futex and spin handoffs; plus an ungoverned site against a direct
 * call. Each configuration runs ROUNDS times interleaved with the others;
 * the table shows the median of the rounds' medians, and the spread (min and
 * max of those medians). CPU per call is reported for both sides.
 *
 * It is not a test: it asserts nothing, it reports. With --markdown FILE it
 * replaces its own section of FILE (BENCHMARKS.md), keeping the others. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "baselines.h"
#include "../common.h"
#include "gov/govrt.h"

#define RESOURCE "bench-ipc"
#define ROUNDS 5
#define NSIZES 5
static const size_t sizes[NSIZES] = { 8, 64, 512, 4096, 65536 };

enum { GOV_SPIN, GOV_SLEEP, NGOV };
static const char *const gov_names[NGOV] = { "govrt, agent spinning", "govrt, agent sleeping" };
static const char *const gov_keys[NGOV] = { "spinning", "sleeping" };
#define NBASE 5
static const char *const base_names[NBASE] = { "pipe", "unix", "mq", "futex", "spin" };
#define NCONF (NGOV + NBASE)

static struct ipc_result results[NCONF][NSIZES][ROUNDS];
static long iters_small = 20000, iters_large = 3000;

__attribute__((noinline)) long bench_sink(const void *buf, size_t n)
{
	__asm__ volatile("" : : "r"(buf) : "memory");
	return (long)n;
}

__attribute__((noinline)) long direct_target(long x)
{
	__asm__ volatile("" : "+r"(x));
	return x + 1;
}

/* ---- the agent -------------------------------------------------------- */

static pid_t agent_pid;

static int agent_cpu_set(cpu_set_t *set, int cpu)
{
	CPU_ZERO(set);
	CPU_SET(cpu, set);
	return 0;
}

static int start_agent(long spin_us, int cpu)
{
	char spin[32], rules[4096];
	snprintf(spin, sizeof spin, "%ld", spin_us);
	snprintf(rules, sizeof rules, "%s/rules.yaml", getenv("GOV_RUN_DIR"));
	FILE *f = fopen(rules, "w");
	if (!f)
		return -1;
	fputs("verdicts:\n  - function: bench_sink\n    action: trace\n", f);
	fclose(f);
	agent_pid = fork();
	if (agent_pid == 0) {
		if (cpu >= 0) {
			cpu_set_t set;
			agent_cpu_set(&set, cpu);
			sched_setaffinity(0, sizeof set, &set);
		}
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 2);
		unsetenv("GOV_RESOURCE");
		execl(GOVAGENT_PATH, "govagent", "--resource", RESOURCE, "--rules", rules,
		      "--spin-us", spin, NULL);
		_exit(127);
	}
	for (int i = 0; i < 3000; i++) {
		struct govrt_stats st;
		govrt_stats(&st);
		if (govrt_connected() && st.table_rev >= 1)
			return 0;
		usleep(1000);
	}
	fprintf(stderr, "bench/ipc: the agent did not come up\n");
	return -1;
}

static void stop_agent(void)
{
	kill(agent_pid, SIGTERM);
	waitpid(agent_pid, NULL, 0);
	for (int i = 0; i < 2000 && govrt_connected(); i++)
		usleep(1000);
}

/* ---- the measurements ------------------------------------------------- */

static int governed(size_t size, long iters, struct ipc_result *out)
{
	static unsigned char *buf;
	if (!buf && !(buf = malloc(65536)))
		return -1;
	memset(buf, 0xab, size);
	double *samples = malloc((size_t)iters * sizeof *samples);
	if (!samples)
		return -1;
	for (long i = 0; i < iters / 10; i++)
		GOV_CALL("lbz", bench_sink, (const void *)buf, size);
	struct govrt_stats before, after;
	govrt_stats(&before);
	uint64_t cpu0 = ipc_thread_cpu_ns(), agent0 = bench_process_cpu_ns(agent_pid);
	uint64_t t0 = ipc_now_ns();
	for (long i = 0; i < iters; i++) {
		uint64_t a = ipc_now_ns();
		long r = GOV_CALL("lbz", bench_sink, (const void *)buf, size);
		samples[i] = (double)(ipc_now_ns() - a);
		if (r != (long)size) {
			fprintf(stderr, "bench/ipc: governed call returned %ld\n", r);
			free(samples);
			return -1;
		}
	}
	uint64_t wall = ipc_now_ns() - t0;
	govrt_stats(&after);
	memset(out, 0, sizeof *out);
	out->size = size;
	out->iters = iters;
	out->cpu_client_ns = (double)(ipc_thread_cpu_ns() - cpu0) / (double)iters;
	out->cpu_server_ns = (double)(bench_process_cpu_ns(agent_pid) - agent0) / (double)iters;
	out->calls_per_s = (double)iters * 1e9 / (double)wall;
	out->mb_per_s = out->calls_per_s * (double)size / 1e6;
	ipc_summarize(samples, iters, out);
	free(samples);
	if (after.agent_calls - before.agent_calls != (uint64_t)iters) {
		fprintf(stderr, "bench/ipc: %llu of %ld calls reached the agent\n",
			(unsigned long long)(after.agent_calls - before.agent_calls), iters);
		return -1;
	}
	return 0;
}

static void pin_self(int cpu)
{
	cpu_set_t set;
	if (cpu < 0) {
		CPU_ZERO(&set);
		for (int c = 0; c < CPU_SETSIZE && c < sysconf(_SC_NPROCESSORS_ONLN); c++)
			CPU_SET(c, &set);
	} else {
		agent_cpu_set(&set, cpu);
	}
	sched_setaffinity(0, sizeof set, &set);
}

static int run_governed(int conf, int round)
{
	int spinning = conf == GOV_SPIN;
	pin_self(spinning ? 0 : -1);
	if (start_agent(spinning ? 10000000 : 0, spinning ? 1 : -1) < 0)
		return -1;
	int rc = 0;
	for (int s = 0; s < NSIZES && rc == 0; s++)
		rc = governed(sizes[s], sizes[s] >= 4096 ? iters_large : iters_small,
			      &results[conf][s][round]);
	stop_agent();
	pin_self(-1);
	return rc;
}

static int run_baseline(int b, int round)
{
	for (int s = 0; s < NSIZES; s++)
		if (ipc_baseline(base_names[b], sizes[s], sizes[s] >= 4096 ? iters_large : iters_small,
				 &results[NGOV + b][s][round]) < 0)
			return -1;
	return 0;
}

/* ns per call of a loop of n calls, direct or through a native site. */
static double loop_ns(int through_site, long n)
{
	long acc = 0;
	uint64_t t0 = ipc_now_ns();
	if (through_site)
		for (long i = 0; i < n; i++)
			acc += GOV_CALL("ll", direct_target, i);
	else
		for (long i = 0; i < n; i++)
			acc += direct_target(i);
	uint64_t t = ipc_now_ns() - t0;
	__asm__ volatile("" : : "r"(acc));
	return (double)t / (double)n;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

struct fastpath { double direct, site, diff, diff_min, diff_max; };

static struct fastpath measure_fastpath(void)
{
	enum { REPS = 15 };
	long n = 50000000;
	double d[REPS], s[REPS], diff[REPS];
	pin_self(0);
	for (int r = 0; r < REPS; r++) {
		d[r] = loop_ns(0, n);
		s[r] = loop_ns(1, n);
		diff[r] = s[r] - d[r];
	}
	pin_self(-1);
	qsort(d, REPS, sizeof d[0], cmp_d);
	qsort(s, REPS, sizeof s[0], cmp_d);
	qsort(diff, REPS, sizeof diff[0], cmp_d);
	return (struct fastpath){ d[REPS / 2], s[REPS / 2], diff[REPS / 2], diff[0], diff[REPS - 1] };
}

/* ---- the report ------------------------------------------------------- */

struct summary { double median, lo, hi, p99, max, cpu_c, cpu_s, mbps; };

static struct summary summarize(int conf, int s)
{
	struct summary o = { 0 };
	double m[ROUNDS], p[ROUNDS], c[ROUNDS], v[ROUNDS], mb[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		const struct ipc_result *x = &results[conf][s][r];
		m[r] = x->median_ns;
		p[r] = x->p99_ns;
		c[r] = x->cpu_client_ns;
		v[r] = x->cpu_server_ns;
		mb[r] = x->mb_per_s;
		if (x->max_ns > o.max)
			o.max = x->max_ns;
	}
	qsort(m, ROUNDS, sizeof m[0], cmp_d);
	qsort(p, ROUNDS, sizeof p[0], cmp_d);
	qsort(c, ROUNDS, sizeof c[0], cmp_d);
	qsort(v, ROUNDS, sizeof v[0], cmp_d);
	qsort(mb, ROUNDS, sizeof mb[0], cmp_d);
	o.median = m[ROUNDS / 2];
	o.lo = m[0];
	o.hi = m[ROUNDS - 1];
	o.p99 = p[ROUNDS / 2];
	o.cpu_c = c[ROUNDS / 2];
	o.cpu_s = v[ROUNDS / 2];
	o.mbps = mb[ROUNDS / 2];
	return o;
}

/* Median over rounds of a/b, each round's two medians measured minutes
 * apart at most: on a shared machine the ratio is steadier than either. */
static double ratio(int a, int b, int s)
{
	double r[ROUNDS];
	for (int k = 0; k < ROUNDS; k++)
		r[k] = results[a][s][k].median_ns / results[b][s][k].median_ns;
	qsort(r, ROUNDS, sizeof r[0], cmp_d);
	return r[ROUNDS / 2];
}

static const char *conf_name(int conf)
{
	return conf < NGOV ? gov_names[conf] : base_names[conf - NGOV];
}

static void us(char *buf, size_t len, double ns)
{
	if (ns < 10000)
		snprintf(buf, len, "%.2f", ns / 1000);
	else
		snprintf(buf, len, "%.1f", ns / 1000);
}

static void print_report(FILE *f, const struct fastpath *fp, const char *command)
{
	fprintf(f, "## bench/ipc: app -> agent -> app round trip\n\n");
	bench_machine_line(f, command);
	fprintf(f, "A round trip sends a request of the given size and gets an 8-byte answer. "
		   "Each cell: median of %d interleaved rounds' medians (µs), with the spread of those "
		   "medians; p99 and max over all rounds; CPU per call on the caller's and the "
		   "other side; MB/s of request payload, one caller. Ratios in the targets are "
		   "medians of per-round ratios, each govrt configuration having run right after "
		   "its baseline.\n"
		   "Small sizes ran %ld round trips per round, 4 KiB and 64 KiB ran %ld. "
		   "govrt spinning and the spin baseline pin the two sides to different CPUs; "
		   "the rest are not pinned.\n\n",
		   ROUNDS, iters_small, iters_large);
	fprintf(f, "| configuration | size | median µs | spread µs | p99 µs | max µs | CPU caller µs | CPU other µs | MB/s |\n");
	fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int c = 0; c < NCONF; c++)
		for (int s = 0; s < NSIZES; s++) {
			struct summary x = summarize(c, s);
			char a[16], b[16], d[16], e[16], g[16], h[16], k[16];
			us(a, sizeof a, x.median);
			us(b, sizeof b, x.lo);
			us(d, sizeof d, x.hi);
			us(e, sizeof e, x.p99);
			us(g, sizeof g, x.max);
			us(h, sizeof h, x.cpu_c);
			us(k, sizeof k, x.cpu_s);
			fprintf(f, "| %s | %zu | %s | %s–%s | %s | %s | %s | %s | %.1f |\n", conf_name(c),
				sizes[s], a, b, d, e, g, h, k, x.mbps);
		}

	struct summary spin64 = summarize(NGOV + 4, 1), futex64 = summarize(NGOV + 3, 1);
	struct summary gspin64 = summarize(GOV_SPIN, 1), gsleep64 = summarize(GOV_SLEEP, 1);
	double r_spin = ratio(GOV_SPIN, NGOV + 4, 1), r_futex = ratio(GOV_SLEEP, NGOV + 3, 1);
	int below_all = 1;
	char worst[128] = "";
	for (int s = 0; s < NSIZES; s++) {
		double g = summarize(GOV_SLEEP, s).median;
		for (int b = 0; b < 3; b++) {
			double o = summarize(NGOV + b, s).median;
			if (g >= o && below_all) {
				below_all = 0;
				snprintf(worst, sizeof worst, " (at %zu B: %.1f µs against %s's %.1f µs)",
					 sizes[s], g / 1000, base_names[b], o / 1000);
			}
		}
	}
	double best_base = 0;
	const char *best_name = "";
	for (int b = 0; b < NBASE; b++) {
		double mb = summarize(NGOV + b, NSIZES - 1).mbps;
		if (mb > best_base) {
			best_base = mb;
			best_name = base_names[b];
		}
	}
	double gbest = summarize(GOV_SPIN, NSIZES - 1).mbps;
	double gsleep_mb = summarize(GOV_SLEEP, NSIZES - 1).mbps;
	if (gsleep_mb > gbest)
		gbest = gsleep_mb;

	fprintf(f, "\nUngoverned site against a direct call (tight loop, 15 × 50M calls, pinned): "
		   "direct %.2f ns, site %.2f ns, difference %.2f ns (spread %.2f to %.2f).\n\n",
		fp->direct, fp->site, fp->diff, fp->diff_min, fp->diff_max);
	fprintf(f, "| target | measured | verdict |\n|---|---|---|\n");
	fprintf(f, "| ungoverned site ≤ 1 ns over a direct call | %+.2f ns | %s |\n", fp->diff,
		fp->diff <= 1.0 ? "met" : "missed");
	fprintf(f, "| 64 B, agent spinning ≤ 2× bare spin handoff | %.2f µs vs %.2f µs; per-round ratio %.2f× | %s |\n",
		gspin64.median / 1000, spin64.median / 1000, r_spin, r_spin <= 2.0 ? "met" : "missed");
	fprintf(f, "| 64 B, agent sleeping ≤ 1.2× futex handoff | %.1f µs vs %.1f µs; per-round ratio %.2f× | %s |\n",
		gsleep64.median / 1000, futex64.median / 1000, r_futex, r_futex <= 1.2 ? "met" : "missed");
	fprintf(f, "| agent sleeping below pipe, unix, mq at every size | %s%s | %s |\n",
		below_all ? "below at every size" : "not everywhere", worst, below_all ? "met" : "missed");
	fprintf(f, "| 64 KiB throughput ≥ best Linux baseline | govrt %.0f MB/s vs %s %.0f MB/s | %s |\n",
		gbest, best_name, best_base, gbest >= best_base ? "met" : "missed");
	fprintf(f, "\n");
}

struct report {
	const struct fastpath *fp;
	const char *command;
};

static void report_body(FILE *f, void *arg)
{
	const struct report *r = arg;
	print_report(f, r->fp, r->command);
}

int main(int argc, char **argv)
{
	const char *markdown = NULL, *only = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--markdown") == 0 && i + 1 < argc) {
			markdown = argv[++i];
		} else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			only = argv[++i];
		} else if (strcmp(argv[i], "--quick") == 0) {
			iters_small = 2000;
			iters_large = 300;
		} else {
			fprintf(stderr, "usage: %s [--quick] [--markdown FILE] [--only spinning|sleeping|pipe|unix|mq|futex|spin]\n"
				"  --only runs one configuration and prints its rows (no targets, no file)\n",
				argv[0]);
			return 1;
		}
	}
	if (!getenv("GOV_RESOURCE")) {
		/* govrt reads its environment before main: set it and start again */
		char dir[] = "/tmp/govbench.XXXXXX";
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			return 1;
		}
		setenv("GOV_RUN_DIR", dir, 1);
		setenv("GOV_RESOURCE", RESOURCE, 1);
		execv("/proc/self/exe", argv);
		perror("execv");
		return 1;
	}
	if (only) {
		for (int c = 0; c < NCONF; c++) {
			if (strcmp(c < NGOV ? gov_keys[c] : base_names[c - NGOV], only) != 0)
				continue;
			for (int round = 0; round < ROUNDS; round++)
				if ((c < NGOV ? run_governed(c, round) : run_baseline(c - NGOV, round)) < 0)
					return 1;
			for (int s = 0; s < NSIZES; s++) {
				struct summary x = summarize(c, s);
				printf("%-24s %6zu B  median %8.3f us (%.3f-%.3f)  p99 %8.3f us  cpu %.3f/%.3f us\n",
				       conf_name(c), sizes[s], x.median / 1000, x.lo / 1000, x.hi / 1000,
				       x.p99 / 1000, x.cpu_c / 1000, x.cpu_s / 1000);
			}
		}
		return 0;
	}
	char command[256] = "make bench";
	if (!markdown)
		snprintf(command, sizeof command, "%s", argv[0]);
	fprintf(stderr, "bench/ipc: ungoverned site against a direct call...\n");
	struct fastpath fp = measure_fastpath();
	/* each govrt configuration right after the baseline it is compared with */
	static const int order[NCONF] = { NGOV + 4, GOV_SPIN, NGOV + 3, GOV_SLEEP, NGOV + 0, NGOV + 1, NGOV + 2 };
	for (int round = 0; round < ROUNDS; round++) {
		fprintf(stderr, "bench/ipc: round %d of %d\n", round + 1, ROUNDS);
		for (int k = 0; k < NCONF; k++) {
			int c = order[k];
			int rc = c < NGOV ? run_governed(c, round) : run_baseline(c - NGOV, round);
			if (rc < 0) {
				fprintf(stderr, "bench/ipc: %s failed\n", conf_name(c));
				return 1;
			}
		}
	}
	print_report(stdout, &fp, command);
	struct report rep = { &fp, command };
	if (markdown && bench_write_section(markdown, "bench/ipc", report_body, &rep) < 0) {
		fprintf(stderr, "bench/ipc: cannot write %s: %s\n", markdown, strerror(errno));
		return 1;
	}
	rmdir(getenv("GOV_RUN_DIR"));
	return 0;
}
