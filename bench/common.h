/* bench/common.h - what every benchmark here shares: the CPU time a
 * process burnt, the line that says which machine measured, and writing
 * one benchmark's section of BENCHMARKS.md without touching the others. */
#ifndef GOV_BENCH_COMMON_H
#define GOV_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* CPU time of every thread of pid so far, in ns (schedstat is ns-precise). */
uint64_t bench_process_cpu_ns(pid_t pid);

/* Order statistics of n samples (n >= 1); v is left as it was. */
double bench_median(const double *v, int n);
/* the median of v, with its lower and upper quartiles (v[n/4], v[3n/4]
 * of the sorted values) in q1 and q3 */
double bench_quartiles(const double *v, int n, double *q1, double *q3);
double bench_min(const double *v, int n);
double bench_max(const double *v, int n);

/* "Command: `command`. Measured DATE on KERNEL, N CPUs (MODEL).\n" */
void bench_machine_line(FILE *f, const char *command);

/* Replaces the section of path between "<!-- NAME: begin -->" and
 * "<!-- NAME: end -->" with what body(f, arg) prints, or appends it; the
 * file is written aside and renamed, so a crash leaves the old one. */
int bench_write_section(const char *path, const char *name,
			void (*body)(FILE *f, void *arg), void *arg);

/* A benchmark that is itself a governed resource: govrt reads GOV_RUN_DIR
 * and GOV_RESOURCE before main, so the first run makes a run directory
 * /tmp/bench-NAME.XXXXXX, sets them (resource, and GOV_TIMEOUT_MS to
 * timeout_ms) and runs argv again; it returns only if that fails (-1).
 * Run again, it copies the run directory's path into dir and returns 0;
 * the benchmark removes the directory when done. */
int bench_governed_run(const char *name, const char *resource, long timeout_ms, char **argv,
		       char *dir, size_t len);

#endif
