/* baselines.h — Linux IPC baselines for the Rhodes round-trip benchmark.
 *
 * What this is for: giving the govrt numbers of bench/ipc a yardstick, by
 * timing the same request/reply round trip over stock Linux mechanisms
 * (pipe, unix socketpair, POSIX message queue, futex handoff, spin handoff),
 * plus the few timing helpers the main benchmark reuses.
 *
 * What this is not for: a general-purpose IPC library, or a measurement of
 * govrt itself. Nothing here is tuned beyond what a fair baseline needs.
 *
 * A round trip: the client sends a request of `size` bytes, the server reads
 * all of it, checks it, and replies with an 8-byte message which the client
 * reads. See baselines.c for where each kind's server runs and why.
 */
#ifndef RHODES_BENCH_IPC_BASELINES_H
#define RHODES_BENCH_IPC_BASELINES_H

#include <stddef.h>
#include <stdint.h>

struct ipc_result {
	char name[32];			/* the kind */
	size_t size;			/* request bytes */
	long iters;
	double median_ns, p99_ns, max_ns; /* per round trip, from individual timings */
	double calls_per_s;		/* iters / total wall time */
	double mb_per_s;		/* request bytes per second / 1e6 */
	double cpu_client_ns, cpu_server_ns; /* CPU time per call burnt by each side */
};

/* Runs `iters` round trips (after `iters/10` warm-up ones, not timed) of
 * `kind` with requests of `size` bytes. Returns 0, or -1 with a message on
 * stderr naming the kind and the failing call. */
int ipc_baseline(const char *kind, size_t size, long iters, struct ipc_result *out);

/* The kinds ipc_baseline knows, NULL-terminated. */
extern const char *const ipc_baseline_kinds[];

/* Helpers the main benchmark reuses for its own (govrt) measurements: */
uint64_t ipc_now_ns(void);		/* CLOCK_MONOTONIC */
uint64_t ipc_thread_cpu_ns(void);	/* CLOCK_THREAD_CPUTIME_ID */
/* Sorts samples; fills median/p99/max. */
void ipc_summarize(double *samples_ns, long n, struct ipc_result *out);

#endif /* RHODES_BENCH_IPC_BASELINES_H */
