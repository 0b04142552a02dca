/* bench/sites/main.c - what the compiler plugins cost when nobody governs:
 * issues 4 and 5's three targets, measured in one run for GCC with
 * govintercept.so and for clang with govintercept-llvm.so, each against
 * its own compiler's plain build.
 *
 *  1. call: a tight loop calling a small external function (loop.c calling
 *     callee.c's sites_callee), built plain and with the plugin
 *     (targets=sites_callee); each run pinned to one CPU, ns per call as
 *     the loop measures it; REPS runs of each, alternating.
 *  2. bzip2: bzip2 from Debian's source (tests/t_gcc_bzip2.sh --prepare
 *     fetches and builds it, tests/t_clang_bzip2.sh --prepare builds the
 *     clang pair, or both reuse their builds) plain and with every
 *     syscall wrapper and every call into libc instrumented, compressing a
 *     generated 120 MB text (`bzip2 -c FILE >/dev/null`, pinned), no agent;
 *     ROUNDS runs of each, alternating.
 *  3. compile: bzip2's 9 sources compiled one at a time with bzip2's own
 *     flags, plain and with the plugin, alternating file by file, ROUNDS
 *     times; CPU time of the compiler and everything it ran.
 *
 * No agent runs and GOV_RESOURCE is unset: every site is ungoverned. It is
 * not a test: it asserts nothing, it reports. With --markdown FILE it
 * replaces its own section of FILE (BENCHMARKS.md), keeping the others. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../common.h"

#ifndef SITES_TOP
#define SITES_TOP "."
#endif
#ifndef SITES_BUILD
#define SITES_BUILD SITES_TOP "/build"
#endif

#define MAXREPS 31
#define MAXROUNDS 9
#define NFILES 9
#define BZFLAGS "-Wall", "-Winline", "-O2", "-g", "-D_FILE_OFFSET_BITS=64"

static const char *const files[NFILES] = { "blocksort.c", "huffman.c", "crctable.c",
					   "randtable.c", "compress.c", "decompress.c",
					   "bzlib.c", "bzip2.c", "bzip2recover.c" };

static int reps = 15, rounds = 5, crounds = 5;
static long call_iters = 150000000;
static long data_bytes = 120000000;
static int cpu = 0;
/* paths: PB under build/ or the top; PL a file under those */
#define PB (PATH_MAX + 64)
#define PL (PATH_MAX + 192)
#define PO (PL + 64) /* an option naming such a file */
static char top[PATH_MAX], work[PB], cache[PB], libdir[PB];
static char errlog[PL];

/* ---- the two toolchains --------------------------------------------------- */

/* One compiler with its plugin: how to load it with the options of a site
 * build, and where its bzip2 builds are. */
struct toolchain {
	const char *name;       /* "GCC 12", "clang 14" */
	const char *cc;         /* the driver */
	const char *plugin_name;
	char plugin[PB];
	const char *plain_dir, *gov_dir;   /* under build/cache */
	const char *prepare;    /* the test script that builds them */
	char opt[8][PO];        /* option buffers for plugin_args */
};

/* Appends the plugin options to argv at n: targets= (a glob list), or a
 * targets-file= when file, syscalls=all when sys, list= when list; returns
 * the new n. */
static int plugin_args(struct toolchain *t, char **argv, int n, const char *targets,
		       const char *file, int sys, const char *list)
{
	int gcc = strcmp(t->cc, "gcc") == 0;
	int o = 0;
	if (gcc) {
		snprintf(t->opt[o], PO, "-fplugin=%s", t->plugin);
		argv[n++] = t->opt[o++];
	} else {
		snprintf(t->opt[o], PO, "-fpass-plugin=%s", t->plugin);
		argv[n++] = t->opt[o++];
		argv[n++] = "-Xclang";
		argv[n++] = "-load";
		argv[n++] = "-Xclang";
		argv[n++] = t->plugin;
		argv[n++] = "-Rpass=govintercept";
	}
	const char *pre = gcc ? "-fplugin-arg-govintercept-" : "-gov-";
#define OPT(fmt, v)                                                   \
	do {                                                          \
		if (!gcc)                                             \
			argv[n++] = "-mllvm";                         \
		snprintf(t->opt[o], PO, "%s" fmt, pre, v);            \
		argv[n++] = t->opt[o++];                              \
	} while (0)
	if (targets)
		OPT("targets=%s", targets);
	if (file)
		OPT("targets-file=%s", file);
	if (sys)
		OPT("syscalls=%s", "all");
	if (list)
		OPT("list=%s", list);
#undef OPT
	return n;
}

static struct toolchain chains[2] = {
	{ "GCC 12", "gcc", "govintercept.so", "", "bzip2-plain-work", "bzip2-gov-work",
	  "t_gcc_bzip2.sh", { "" } },
	{ "clang 14", "clang", "govintercept-llvm.so", "", "bzip2-clang-plain-work",
	  "bzip2-clang-gov-work", "t_clang_bzip2.sh", { "" } },
};

/* ---- running things ------------------------------------------------------ */

struct run {
	double wall_ns, cpu_ns;
	int status;
};

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static double children_cpu_ns(void)
{
	struct rusage u;
	getrusage(RUSAGE_CHILDREN, &u);
	return ((double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec) * 1e9 +
	       ((double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_usec) * 1e3;
}

/* Runs argv in dir (or here), pinned to cpu when pin, stdout to out (a path,
 * or captured into cap when cap), stderr to errlog. CPU time is that of the
 * process and of every descendant it waited for (gcc's cc1 and as). */
static int run(char *const argv[], const char *dir, int pin, const char *out, char *cap,
	       size_t capsz, struct run *r)
{
	int pfd[2] = { -1, -1 };
	if (cap && pipe(pfd) < 0)
		return -1;
	double c0 = children_cpu_ns();
	uint64_t t0 = now_ns();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (dir && chdir(dir) < 0)
			_exit(126);
		if (pin) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			sched_setaffinity(0, sizeof set, &set);
		}
		int o = cap ? pfd[1] : open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (o < 0 || e < 0)
			_exit(126);
		dup2(o, 1);
		dup2(e, 2);
		if (cap)
			close(pfd[0]);
		execvp(argv[0], argv);
		_exit(127);
	}
	size_t n = 0;
	if (cap) {
		close(pfd[1]);
		char buf[512];
		for (ssize_t k; (k = read(pfd[0], buf, sizeof buf)) > 0 || (k < 0 && errno == EINTR);) {
			size_t m = k > 0 ? (size_t)k : 0;
			if (m > capsz - 1 - n)
				m = capsz - 1 - n;
			memcpy(cap + n, buf, m);
			n += m;
		}
		cap[n] = 0;
		close(pfd[0]);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	r->wall_ns = (double)(now_ns() - t0);
	r->cpu_ns = children_cpu_ns() - c0;
	r->status = status;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void show_errlog(const char *what)
{
	fprintf(stderr, "bench/sites: %s failed:\n", what);
	FILE *f = fopen(errlog, "r");
	char line[512];
	for (int i = 0; f && i < 20 && fgets(line, sizeof line, f); i++)
		fprintf(stderr, "  %s", line);
	if (f)
		fclose(f);
}





static long count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = 0;
	for (int c; f && (c = getc(f)) != EOF;)
		n += c == '\n';
	if (f)
		fclose(f);
	return f ? n : -1;
}

/* ---- 1. an ungoverned call against the plain call ------------------------ */

struct call_result {
	int ok;
	double plain[MAXREPS], inst[MAXREPS], diff[MAXREPS];
	double plain_med, inst_med, diff_med;
	long sites;
};

static int measure_call(struct call_result *c, struct toolchain *t)
{
	char callee_c[PL], loop_c[PL], obj[PL], lp[PL],
		lg[PL], list[PL], fL[PL], fr[PL];
	snprintf(callee_c, sizeof callee_c, "%s/bench/sites/callee.c", top);
	snprintf(loop_c, sizeof loop_c, "%s/bench/sites/loop.c", top);
	snprintf(obj, sizeof obj, "%s/callee-%s.o", work, t->cc);
	snprintf(lp, sizeof lp, "%s/loop-%s-plain", work, t->cc);
	snprintf(lg, sizeof lg, "%s/loop-%s-gov", work, t->cc);
	snprintf(list, sizeof list, "%s/loop-%s.sites", work, t->cc);
	snprintf(fL, sizeof fL, "-L%s", libdir);
	snprintf(fr, sizeof fr, "-Wl,-rpath,%s", libdir);
	unlink(list);
	struct run r;
	char *cc_callee[] = { (char *)t->cc, "-O2", "-c", callee_c, "-o", obj, NULL };
	char *cc_plain[] = { (char *)t->cc, "-O2", loop_c, obj, "-o", lp, NULL };
	char *cc_gov[32] = { (char *)t->cc, "-O2" };
	int n = plugin_args(t, cc_gov, 2, "sites_callee", NULL, 0, list);
	char *rest[] = { loop_c, obj, "-o", lg, fL, fr, "-lgovrt", NULL };
	memcpy(cc_gov + n, rest, sizeof rest);
	if (run(cc_callee, NULL, 0, NULL, NULL, 0, &r) < 0 || run(cc_plain, NULL, 0, NULL, NULL, 0, &r) < 0 ||
	    run(cc_gov, NULL, 0, NULL, NULL, 0, &r) < 0) {
		show_errlog("building loop.c");
		return -1;
	}
	c->sites = count_lines(list);
	char iters[32];
	snprintf(iters, sizeof iters, "%ld", call_iters);
	for (int i = 0; i < reps; i++) {
		for (int k = 0; k < 2; k++) {
			int gov = (i + k) % 2; /* plain first in even reps, instrumented first in odd */
			char *argv[] = { gov ? lg : lp, iters, NULL }, out[128];
			if (run(argv, NULL, 1, NULL, out, sizeof out, &r) < 0) {
				show_errlog(argv[0]);
				return -1;
			}
			(gov ? c->inst : c->plain)[i] = strtod(out, NULL);
		}
		c->diff[i] = c->inst[i] - c->plain[i];
	}
	c->plain_med = bench_median(c->plain, reps);
	c->inst_med = bench_median(c->inst, reps);
	c->diff_med = bench_median(c->diff, reps);
	c->ok = 1;
	return 0;
}

/* ---- 2. bzip2 compressing 120 MB ----------------------------------------- */

/* the text of tests/t_gcc_bzip2.sh's generator: words of a fixed
 * vocabulary chosen with a skew, numbers now and then, lines of 60-80 */
static int generate(const char *path, long want)
{
	struct stat st;
	if (stat(path, &st) == 0 && st.st_size >= want && st.st_size < want + 200)
		return 0;
	char tmp[PO];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	unsigned long long s = 0x9e3779b97f4a7c15ULL;
#define NEXT() (s ^= s << 13, s ^= s >> 7, s ^= s << 17, s)
	static char words[4096][12];
	for (int i = 0; i < 4096; i++) {
		int len = 2 + (int)(NEXT() % 9);
		for (int j = 0; j < len; j++)
			words[i][j] = (char)('a' + NEXT() % 26);
		words[i][len] = 0;
	}
	long n = 0;
	int col = 0;
	while (n < want) {
		unsigned long long r = NEXT();
		unsigned k = (unsigned)((r & 4095) * ((r >> 12) & 4095) >> 12);
		int w = (r >> 24) % 16 == 0 ? fprintf(f, "%llu", (r >> 32) % 100000) : fprintf(f, "%s", words[k]);
		n += w;
		col += w;
		if (col > 60 + (int)((r >> 40) % 20)) {
			putc('\n', f);
			col = 0;
		} else {
			putc(' ', f);
		}
		n++;
	}
#undef NEXT
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		return -1;
	return 0;
}

struct bz_result {
	int ok;
	const char *why;
	long bytes, out_bytes, sites;
	double wall[2][MAXROUNDS], cpu[2][MAXROUNDS], ratio_cpu[MAXROUNDS], ratio_wall[MAXROUNDS];
	double wall_med[2], cpu_med[2], ratio_cpu_med, ratio_wall_med;
};

static int measure_bzip2(struct bz_result *b, const struct toolchain *t, const char *data)
{
	char bin[2][PL];
	snprintf(bin[0], sizeof bin[0], "%s/%s/bzip2", cache, t->plain_dir);
	snprintf(bin[1], sizeof bin[1], "%s/%s/bzip2", cache, t->gov_dir);
	struct stat st;
	if (stat(data, &st) < 0)
		return -1;
	b->bytes = (long)st.st_size;
	char outp[PL];
	snprintf(outp, sizeof outp, "%s/out.bz2", work);
	for (int i = 0; i < rounds; i++) {
		for (int k = 0; k < 2; k++) {
			int gov = (i + k) % 2;
			char *argv[] = { bin[gov], "-c", (char *)data, NULL };
			struct run r;
			/* the first run of each writes its output, to report its size */
			if (run(argv, NULL, 1, i < 2 ? outp : NULL, NULL, 0, &r) < 0) {
				show_errlog(bin[gov]);
				return -1;
			}
			if (i < 2 && stat(outp, &st) == 0)
				b->out_bytes = (long)st.st_size;
			b->wall[gov][i] = r.wall_ns;
			b->cpu[gov][i] = r.cpu_ns;
		}
		b->ratio_cpu[i] = b->cpu[1][i] / b->cpu[0][i];
		b->ratio_wall[i] = b->wall[1][i] / b->wall[0][i];
		fprintf(stderr, "bench/sites: %s: bzip2 round %d of %d: plain %.2f s, instrumented %.2f s (CPU)\n",
			t->cc, i + 1, rounds, b->cpu[0][i] / 1e9, b->cpu[1][i] / 1e9);
	}
	unlink(outp);
	for (int g = 0; g < 2; g++) {
		b->wall_med[g] = bench_median(b->wall[g], rounds);
		b->cpu_med[g] = bench_median(b->cpu[g], rounds);
	}
	b->ratio_cpu_med = bench_median(b->ratio_cpu, rounds);
	b->ratio_wall_med = bench_median(b->ratio_wall, rounds);
	b->ok = 1;
	return 0;
}

/* ---- 3. compile time ------------------------------------------------------ */

/* 0 plain; 1 the plugin with syscalls=all only; 2 the test's configuration
 * (syscalls=all and every function libc.so.6 exports, ~2600 names);
 * 3 the same sites named by the ~40 libc functions bzip2 calls */
#define NCONF 4
static const char *const conf_names[NCONF] = {
	"plain",
	"syscalls=all",
	"syscalls=all + every libc function (the test's build)",
	"syscalls=all + only the libc functions bzip2 calls",
};

struct cc_result {
	int ok;
	double cpu[NCONF][MAXROUNDS][NFILES], wall[NCONF][MAXROUNDS];
	double total[NCONF][MAXROUNDS], ratio[NCONF][MAXROUNDS];
	double total_med[NCONF], ratio_med[NCONF], file_med[NCONF][NFILES], wall_med[NCONF];
	long sites[NCONF][NFILES], sites_all[NCONF], names_all, names_used;
	char used[PL];
};

static int compile_one(struct cc_result *c, struct toolchain *t, int conf, int file,
		       const char *list, struct run *r)
{
	char src[PL], all[PL];
	snprintf(src, sizeof src, "%s/bzip2/src", cache);
	snprintf(all, sizeof all, "%s/libc-functions.txt", cache);
	char *argv[40] = { (char *)t->cc, BZFLAGS };
	int n = 6;
	if (conf > 0)
		n = plugin_args(t, argv, n, NULL, conf == 1 ? NULL : conf == 2 ? all : c->used, 1, list);
	argv[n++] = "-c";
	argv[n++] = (char *)files[file];
	argv[n++] = "-o";
	argv[n++] = "/dev/null";
	argv[n] = NULL;
	if (run(argv, src, 0, NULL, NULL, 0, r) < 0) {
		show_errlog(files[file]);
		return -1;
	}
	return 0;
}

static int measure_compile(struct cc_result *c, struct toolchain *t)
{
	/* the callees of the test's listing: the libc functions bzip2 calls */
	char cmd[4 * PL];
	snprintf(c->used, sizeof c->used, "%s/libc-used-%s.txt", work, t->cc);
	snprintf(cmd, sizeof cmd, "cut -d' ' -f4 '%s/%s.sites' | sort -u >'%s'", cache, t->gov_dir, c->used);
	if (system(cmd) != 0)
		return -1;
	char all[PL];
	snprintf(all, sizeof all, "%s/libc-functions.txt", cache);
	c->names_all = count_lines(all);
	c->names_used = count_lines(c->used);
	/* untimed: each file once with the plugin, listing its sites (and
	 * warming the caches); configuration 3 has the sites of 2 */
	for (int k = 0; k < NCONF; k++) {
		c->sites_all[k] = 0;
		if (k == 0 || k == 3) { /* no sites; the same sites as 2 */
			for (int f = 0; f < NFILES; f++) {
				c->sites[k][f] = k ? c->sites[2][f] : 0;
				c->sites_all[k] += c->sites[k][f];
			}
			continue;
		}
		for (int f = 0; f < NFILES; f++) {
			char list[PL];
			snprintf(list, sizeof list, "%s/cc%d-%s.sites", work, k, t->cc);
			unlink(list);
			struct run r;
			if (compile_one(c, t, k, f, k ? list : NULL, &r) < 0)
				return -1;
			c->sites[k][f] = k && access(list, F_OK) == 0 ? count_lines(list) : 0;
			c->sites_all[k] += c->sites[k][f];
			unlink(list);
		}
	}
	for (int i = 0; i < crounds; i++) {
		for (int k = 0; k < NCONF; k++)
			c->total[k][i] = c->wall[k][i] = 0;
		for (int f = 0; f < NFILES; f++)
			for (int j = 0; j < NCONF; j++) {
				int k = (i + f + j) % NCONF; /* each configuration in every position */
				struct run r;
				if (compile_one(c, t, k, f, NULL, &r) < 0)
					return -1;
				c->cpu[k][i][f] = r.cpu_ns;
				c->total[k][i] += r.cpu_ns;
				c->wall[k][i] += r.wall_ns;
			}
		for (int k = 0; k < NCONF; k++)
			c->ratio[k][i] = c->total[k][i] / c->total[0][i];
		fprintf(stderr, "bench/sites: %s: compile round %d of %d: plain %.2f s, the test's build %.2f s (CPU)\n",
			t->cc, i + 1, crounds, c->total[0][i] / 1e9, c->total[2][i] / 1e9);
	}
	for (int k = 0; k < NCONF; k++) {
		c->total_med[k] = bench_median(c->total[k], crounds);
		c->ratio_med[k] = bench_median(c->ratio[k], crounds);
		c->wall_med[k] = bench_median(c->wall[k], crounds);
		for (int f = 0; f < NFILES; f++) {
			double v[MAXROUNDS];
			for (int i = 0; i < crounds; i++)
				v[i] = c->cpu[k][i][f];
			c->file_med[k][f] = bench_median(v, crounds);
		}
	}
	c->ok = 1;
	return 0;
}

/* ---- the report ------------------------------------------------------------ */

struct report {
	const char *command, *skip_bzip2;
	struct call_result *call[2];
	struct bz_result *bz[2];
	struct cc_result *cc[2];
	long sites_test[2];
};

static void print_chain(FILE *f, const struct report *R, int t)
{
	const struct toolchain *T = &chains[t];
	const struct call_result *c = R->call[t];
	const struct bz_result *b = R->bz[t];
	const struct cc_result *k = R->cc[t];
	fprintf(f, "### %s with %s\n\n", T->name, T->plugin_name);
	if (c->ok) {
		fprintf(f, "**Call.** `bench/sites/loop.c` calls `sites_callee` (`bench/sites/callee.c`, "
			   "another unit, `return x + 1`) %ld times in a loop; built by `%s -O2` plain and with "
			   "`targets=sites_callee` (%ld sites: the warm-up loop's and the timed loop's). %d runs of each, alternating, each pinned; "
			   "ns per call as the loop times it.\n\n",
			call_iters, T->cc, c->sites, reps);
		fprintf(f, "| build | median ns per call | min | max |\n|---|---:|---:|---:|\n");
		fprintf(f, "| plain | %.3f | %.3f | %.3f |\n", c->plain_med, bench_min(c->plain, reps), bench_max(c->plain, reps));
		fprintf(f, "| %s | %.3f | %.3f | %.3f |\n\n", T->plugin_name, c->inst_med, bench_min(c->inst, reps),
			bench_max(c->inst, reps));
		fprintf(f, "Difference of the medians %+.3f ns; median of the %d pairwise differences %+.3f ns "
			   "(%+.3f to %+.3f).\n\n",
			c->inst_med - c->plain_med, reps, c->diff_med, bench_min(c->diff, reps), bench_max(c->diff, reps));
	}
	if (b->ok) {
		fprintf(f, "**bzip2.** Debian's bzip2 1.0.8 source, built by its own Makefile (bzip2 and "
			   "libbz2.so, `%s -O2 -g`) plain and as in `tests/%s`: "
			   "`syscalls=all` and `targets-file=` every function libc.so.6 exports, "
			   "%ld sites. `bzip2 -c` of a generated text of %ld bytes (words of a "
			   "fixed vocabulary, %.2f:1) to /dev/null, pinned; %d runs of each, alternating. "
			   "Ratios are medians of the per-round ratios.\n\n",
			T->cc, T->prepare, R->sites_test[t], b->bytes,
			(double)b->bytes / (double)(b->out_bytes ? b->out_bytes : 1), rounds);
		fprintf(f, "| build | median CPU s | median wall s | MB/s (wall) |\n|---|---:|---:|---:|\n");
		for (int g = 0; g < 2; g++)
			fprintf(f, "| %s | %.3f | %.3f | %.1f |\n", g ? T->plugin_name : "plain", b->cpu_med[g] / 1e9,
				b->wall_med[g] / 1e9, (double)b->bytes / 1e6 / (b->wall_med[g] / 1e9));
		fprintf(f, "\nInstrumented / plain: CPU %.4f× (rounds %.4f to %.4f), wall %.4f× (%.4f to %.4f); "
			   "fastest run against fastest run: CPU %.4f×, wall %.4f×. The target is judged on CPU "
			   "time, which other processes on the CPU do not inflate.\n\n",
			b->ratio_cpu_med, bench_min(b->ratio_cpu, rounds), bench_max(b->ratio_cpu, rounds), b->ratio_wall_med,
			bench_min(b->ratio_wall, rounds), bench_max(b->ratio_wall, rounds),
			bench_min(b->cpu[1], rounds) / bench_min(b->cpu[0], rounds),
			bench_min(b->wall[1], rounds) / bench_min(b->wall[0], rounds));
	}
	if (k->ok) {
		fprintf(f, "**Compile time.** bzip2's %d sources (the ones its Makefile compiles), each "
			   "`%s -Wall -Winline -O2 -g -D_FILE_OFFSET_BITS=64 -c`, one compile at a time, "
			   "the configurations alternating file by file; %d rounds. CPU time of the compiler and "
			   "what it runs; ratios are medians of the per-round ratios of the totals.\n\n",
			NFILES, T->cc, crounds);
		fprintf(f, "| configuration | sites | median CPU s | median wall s | ratio |\n|---|---:|---:|---:|---:|\n");
		for (int j = 0; j < NCONF; j++)
			fprintf(f, "| %s | %ld | %.3f | %.3f | %.3f× |\n", conf_names[j], k->sites_all[j],
				k->total_med[j] / 1e9, k->wall_med[j] / 1e9, k->ratio_med[j]);
		fprintf(f, "\nThe last two make the same sites; they differ in the names each call is matched "
			   "against: the %ld functions libc.so.6 exports, or the %ld of them bzip2 calls.\n",
			k->names_all, k->names_used);
		fprintf(f, "\nPer file, median CPU ms (plain; the test's build, its sites and ratio):\n\n");
		fprintf(f, "| file | plain ms | instrumented ms | sites | ratio |\n|---|---:|---:|---:|---:|\n");
		for (int i = 0; i < NFILES; i++)
			fprintf(f, "| %s | %.0f | %.0f | %ld | %.2f× |\n", files[i], k->file_med[0][i] / 1e6,
				k->file_med[2][i] / 1e6, k->sites[2][i], k->file_med[2][i] / k->file_med[0][i]);
		fprintf(f, "\n");
	}
}

static void print_report(FILE *f, void *arg)
{
	const struct report *R = arg;
	fprintf(f, "## bench/sites: ungoverned sites of govintercept.so (GCC) and govintercept-llvm.so (clang), and their compile time\n\n");
	bench_machine_line(f, R->command);
	fprintf(f, "Each compiler at -O2 against its own plain build; no agent and GOV_RESOURCE unset, so every "
		   "site is ungoverned (one byte load and a branch before the call). Pinned runs are on CPU %d.\n\n",
		cpu);
	if (R->skip_bzip2)
		fprintf(f, "**bzip2** and **compile time**: not measured: %s.\n\n", R->skip_bzip2);
	for (int t = 0; t < 2; t++)
		print_chain(f, R, t);
	fprintf(f, "### Targets, side by side\n\n| target | %s | %s |\n|---|---|---|\n", chains[0].name,
		chains[1].name);
	fprintf(f, "| ungoverned instrumented call ≤ 1 ns more than the plain call |");
	for (int t = 0; t < 2; t++) {
		const struct call_result *c = R->call[t];
		if (c->ok)
			fprintf(f, " %.3f → %.3f ns: %+.3f ns, %s |", c->plain_med, c->inst_med,
				c->inst_med - c->plain_med, c->inst_med - c->plain_med <= 1.0 ? "met" : "missed");
		else
			fprintf(f, " not measured |");
	}
	fprintf(f, "\n| bzip2, %ld MB, no agent ≤ 1.02× plain |", data_bytes / 1000000);
	for (int t = 0; t < 2; t++) {
		const struct bz_result *b = R->bz[t];
		if (b->ok)
			fprintf(f, " CPU %.4f× (%.2f → %.2f s), wall %.4f×: %s |", b->ratio_cpu_med,
				b->cpu_med[0] / 1e9, b->cpu_med[1] / 1e9, b->ratio_wall_med,
				b->ratio_cpu_med <= 1.02 ? "met" : "missed");
		else
			fprintf(f, " not measured |");
	}
	fprintf(f, "\n| compile time with the plugin ≤ 1.10× without |");
	for (int t = 0; t < 2; t++) {
		const struct cc_result *k = R->cc[t];
		if (k->ok)
			fprintf(f, " %.3f× (%.2f → %.2f s CPU, %ld sites); syscalls=all alone %.3f×: %s |",
				k->ratio_med[2], k->total_med[0] / 1e9, k->total_med[2] / 1e9, k->sites_all[2],
				k->ratio_med[1], k->ratio_med[2] <= 1.10 ? "met" : "missed");
		else
			fprintf(f, " not measured |");
	}
	fprintf(f, "\n\n");
}

static int last_cpu(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) < 0)
		return 0;
	int last = 0;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			last = i;
	return last;
}

int main(int argc, char **argv)
{
	const char *markdown = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--markdown") == 0 && i + 1 < argc) {
			markdown = argv[++i];
		} else if (strcmp(argv[i], "--quick") == 0) {
			reps = 5;
			rounds = 3;
			crounds = 3;
			call_iters = 30000000;
			data_bytes = 20000000;
		} else {
			fprintf(stderr, "usage: %s [--quick] [--markdown FILE]\n"
					"  --quick: fewer runs and a 20 MB file, for trying it out\n",
				argv[0]);
			return 1;
		}
	}
	uint64_t t_start = now_ns();
	if (!realpath(SITES_TOP, top)) {
		fprintf(stderr, "bench/sites: %s: %s\n", SITES_TOP, strerror(errno));
		return 1;
	}
	char build[PATH_MAX];
	if (!realpath(SITES_BUILD, build)) {
		fprintf(stderr, "bench/sites: %s: %s (run make)\n", SITES_BUILD, strerror(errno));
		return 1;
	}
	snprintf(work, sizeof work, "%s/bench/sites-work", build);
	snprintf(cache, sizeof cache, "%s/cache", build);
	snprintf(libdir, sizeof libdir, "%s/lib", build);
	snprintf(errlog, sizeof errlog, "%s/last.err", work);
	char cmd[4 * PL];
	snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s'", work, cache);
	if (system(cmd) != 0)
		return 1;
	for (int t = 0; t < 2; t++) {
		snprintf(chains[t].plugin, sizeof chains[t].plugin, "%s/lib/%s", build, chains[t].plugin_name);
		if (access(chains[t].plugin, R_OK) < 0) {
			fprintf(stderr, "bench/sites: %s is missing: run make\n", chains[t].plugin);
			return 1;
		}
	}
	unsetenv("GOV_RESOURCE");
	unsetenv("GOV_FAIL");
	cpu = last_cpu();

	static struct call_result call[2];
	static struct bz_result bz[2];
	static struct cc_result cc[2];
	struct report R = { markdown ? "make bench" : argv[0], NULL, { &call[0], &call[1] },
			    { &bz[0], &bz[1] }, { &cc[0], &cc[1] }, { 0, 0 } };

	for (int t = 0; t < 2; t++) {
		fprintf(stderr, "bench/sites: %s: an ungoverned call against the plain call, %d × %ld calls each...\n",
			chains[t].cc, reps, call_iters);
		if (measure_call(&call[t], &chains[t]) < 0)
			return 1;
	}

	/* t_clang_bzip2.sh --prepare runs t_gcc_bzip2.sh --prepare first */
	fprintf(stderr, "bench/sites: bzip2's source and builds (tests/t_clang_bzip2.sh --prepare)...\n");
	snprintf(cmd, sizeof cmd, "sh '%s/tests/t_clang_bzip2.sh' --prepare >&2", top);
	int rc = system(cmd);
	rc = WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
	if (rc == 77) {
		R.skip_bzip2 = "bzip2's Debian source could not be fetched";
	} else if (rc != 0) {
		fprintf(stderr, "bench/sites: building bzip2 failed\n");
		return 1;
	} else {
		char lockp[PL], data[PL], sites[PL];
		snprintf(lockp, sizeof lockp, "%s/bzip2.lock", cache);
		int lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (lock >= 0)
			flock(lock, LOCK_SH); /* no rebuild by the test while measuring */
		for (int t = 0; t < 2; t++) {
			snprintf(sites, sizeof sites, "%s/%s.sites", cache, chains[t].gov_dir);
			snprintf(cmd, sizeof cmd, "sort -u '%s' | wc -l", sites);
			FILE *p = popen(cmd, "r");
			if (p && fscanf(p, "%ld", &R.sites_test[t]) != 1)
				R.sites_test[t] = -1;
			if (p)
				pclose(p);
		}
		snprintf(data, sizeof data, "%s/sites-%ldM.txt", cache, data_bytes / 1000000);
		fprintf(stderr, "bench/sites: %s...\n", data);
		if (generate(data, data_bytes) < 0) {
			fprintf(stderr, "bench/sites: cannot write %s: %s\n", data, strerror(errno));
			return 1;
		}
		for (int t = 0; t < 2; t++) {
			fprintf(stderr, "bench/sites: %s: bzip2 -c, %d runs each...\n", chains[t].cc, rounds);
			if (measure_bzip2(&bz[t], &chains[t], data) < 0)
				return 1;
		}
		for (int t = 0; t < 2; t++) {
			fprintf(stderr, "bench/sites: %s: compiling bzip2's sources, %d rounds...\n",
				chains[t].cc, crounds);
			if (measure_compile(&cc[t], &chains[t]) < 0)
				return 1;
		}
		if (lock >= 0)
			close(lock);
	}
	print_report(stdout, &R);
	if (markdown && bench_write_section(markdown, "bench/sites", print_report, &R) < 0) {
		fprintf(stderr, "bench/sites: cannot write %s: %s\n", markdown, strerror(errno));
		return 1;
	}
	fprintf(stderr, "bench/sites: %.0f s in all\n", (double)(now_ns() - t_start) / 1e9);
	return 0;
}
