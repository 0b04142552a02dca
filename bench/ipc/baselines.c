/* baselines.c — Linux IPC baselines for the Rhodes round-trip benchmark.
 *
 * What this is for: timing a request/reply round trip (client sends `size`
 * bytes, server reads and checks all of it, replies with 8 bytes) over stock
 * Linux mechanisms, so that bench/ipc can put its govrt numbers next to them.
 *
 * What this is not for: a reusable IPC layer, or tuning any of these
 * mechanisms beyond what a fair comparison needs. Only the timing helpers
 * (ipc_now_ns, ipc_thread_cpu_ns, ipc_summarize) are meant for reuse.
 *
 * Where the server runs:
 *  - pipe, unix, mq: in a child process forked for the run, because these
 *    are cross-process mechanisms and that is how they are used; a thread
 *    would let the kernel skip the address-space switch and flatter them.
 *  - futex, spin: in a thread, because the interesting cost is the handoff
 *    itself. They still use a MAP_SHARED|MAP_ANONYMOUS region and (for
 *    futex) process-shared futex words, so the kernel does the same work it
 *    would do between processes.
 *
 * Every request is stamped with its sequence number (first and last bytes)
 * and every reply echoes it, so a transport that drops, duplicates or
 * truncates messages fails instead of looking fast.
 *
 * Not safe to run concurrently from several threads of one process: a fork
 * for one run would inherit the other run's descriptors and EOF would never
 * come. Sequential calls are fine; each call cleans up everything it made.
 *
 * Link with -lrt -lpthread.
 */
#ifndef _GNU_SOURCE	/* the Makefile passes -D_GNU_SOURCE already */
#define _GNU_SOURCE
#endif
#include "baselines.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The reply a server sends when it rejects a request, so that a client
 * blocked on the reply wakes up and fails instead of hanging. Sequence
 * numbers never get this large. */
#define POISON UINT64_MAX

#define MQ_MSGSIZE_MAX_PATH "/proc/sys/fs/mqueue/msgsize_max"
#define PIPE_MAX_SIZE_PATH "/proc/sys/fs/pipe-max-size"

/* Shared between client and server for every kind: futex/spin carry their
 * requests through it; all kinds use it to get the server's CPU time back.
 * Client-written and server-written words live on separate cache lines so
 * the spin baseline measures the handoff, not false sharing. */
struct shared {
	/* Written by the client. */
	_Alignas(64) uint32_t req;	/* seq+1 of the last posted request */
	uint32_t stop;			/* client gave up: thread server must exit */
	/* Written by the server. */
	_Alignas(64) uint32_t rep;	/* seq+1 of the last answered request */
	uint64_t reply;			/* the 8-byte reply (futex/spin) */
	uint64_t server_cpu_ns;		/* server CPU time over the timed phase */
	/* The request payload (futex/spin), on cache lines of its own. */
	_Alignas(64) unsigned char payload[];
};

struct run;

/* One IPC mechanism. open() creates its channels before the server starts;
 * call() is one client round trip; recv()/reply() are the server's halves.
 * recv() returns 0 with the request in r->sbuf, 1 if the client went away,
 * -1 on error (already reported). abort() unblocks a thread server. */
struct kind {
	const char *name;
	bool process;		/* server in a forked child (else a thread) */
	int (*open)(struct run *r);
	int (*call)(struct run *r, uint64_t seq, uint64_t *reply);
	int (*recv)(struct run *r, uint64_t seq);
	int (*reply)(struct run *r, uint64_t seq, uint64_t val);
	void (*abort)(struct run *r);
};

/* Everything one ipc_baseline() call owns; torn down by run_teardown(). */
struct run {
	const struct kind *k;
	size_t size;
	long warmup, total;		/* total = warmup + timed iterations */
	unsigned char *cbuf;		/* client's private request buffer */
	unsigned char *sbuf;		/* server's private receive buffer */
	struct shared *sh;
	size_t sh_len;
	int c_rd, c_wr, s_rd, s_wr;	/* pipe/unix descriptors, -1 if unused */
	mqd_t mq_req, mq_rep;		/* (mqd_t)-1 if unused */
	struct timespec mq_deadline;	/* CLOCK_REALTIME watchdog for mq */
	pid_t child;			/* process server, -1 if none */
	pthread_t thread;		/* thread server, if thread_started */
	int server_cpu;			/* spin: the server thread's CPU, or -1 */
	cpu_set_t saved_affinity;	/* spin: caller's mask, if affinity_saved */
	bool affinity_saved;
	bool thread_started;
	int server_rc;			/* thread server's result */
};

/* ---- reporting ---------------------------------------------------------
 * Messages are formatted into a stack buffer and written with write(2): the
 * forked server may only use async-signal-safe calls (the benchmark can be
 * multithreaded), so no stdio and no locale-dependent strerror there. */

static const char *errtext(int err)
{
	const char *s = strerrordesc_np(err);
	return s ? s : "unknown error";
}

__attribute__((format(printf, 2, 3)))
static void say(const struct run *r, const char *fmt, ...)
{
	char msg[320];
	int n = snprintf(msg, sizeof msg, "ipc_baseline(%s): ", r->k->name);
	va_list ap;

	va_start(ap, fmt);
	n += vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof msg - 2)
		n = (int)sizeof msg - 2;
	msg[n++] = '\n';
	(void)!write(STDERR_FILENO, msg, (size_t)n);
}

/* Reports `call` failing with errno and returns -1, for `return fail(...)`. */
static int fail(const struct run *r, const char *call)
{
	int err = errno;

	say(r, "%s: %s", call, errtext(err));
	errno = err;
	return -1;
}

/* ---- clocks and statistics --------------------------------------------- */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ipc_now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t ipc_thread_cpu_ns(void)
{
	return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void ipc_summarize(double *samples_ns, long n, struct ipc_result *out)
{
	if (n <= 0) {
		out->median_ns = out->p99_ns = out->max_ns = 0;
		return;
	}
	qsort(samples_ns, (size_t)n, sizeof *samples_ns, cmp_double);
	out->median_ns = n % 2 ? samples_ns[n / 2]
			       : (samples_ns[n / 2 - 1] + samples_ns[n / 2]) / 2;
	/* Nearest-rank p99: the smallest sample >= 99% of all samples. */
	long rank = (n * 99 + 99) / 100;
	out->p99_ns = samples_ns[rank - 1];
	out->max_ns = samples_ns[n - 1];
}

/* ---- request stamps ----------------------------------------------------
 * The sequence number goes into the first and last 8 bytes; requests too
 * small for two non-overlapping copies carry its low byte at both ends. */

static void stamp(unsigned char *buf, size_t size, uint64_t seq)
{
	if (size >= 2 * sizeof seq) {
		memcpy(buf, &seq, sizeof seq);
		memcpy(buf + size - sizeof seq, &seq, sizeof seq);
	} else {
		buf[0] = (unsigned char)seq;
		buf[size - 1] = (unsigned char)seq;
	}
}

static bool stamp_ok(const unsigned char *buf, size_t size, uint64_t seq)
{
	uint64_t head, tail;

	if (size < 2 * sizeof seq)
		return buf[0] == (unsigned char)seq &&
		       buf[size - 1] == (unsigned char)seq;
	memcpy(&head, buf, sizeof head);
	memcpy(&tail, buf + size - sizeof tail, sizeof tail);
	return head == seq && tail == seq;
}

/* ---- small system helpers ---------------------------------------------- */

/* 0 on success, 1 on EOF before len bytes, -1 on error (errno set). */
static int read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n == 0) {
			return 1;
		} else if (errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n >= 0) {
			p += n;
			len -= (size_t)n;
		} else if (errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

static int read_long_file(const char *path, long *val)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	*val = strtol(buf, NULL, 10);
	return 0;
}

static int write_long_file(const char *path, long val)
{
	char buf[32];
	int len = snprintf(buf, sizeof buf, "%ld\n", val);
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	int rc = write_full(fd, buf, (size_t)len);
	int err = errno;
	close(fd);
	errno = err;
	return rc;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* unix uses one socket per side for both directions: close it once. */
static void close_pair(int *rd, int *wr)
{
	if (*wr == *rd)
		*wr = -1;
	close_fd(rd);
	close_fd(wr);
}

static size_t max_size(size_t a, size_t b)
{
	return a > b ? a : b;
}

/* ---- pipe and unix: byte streams, looping on partial transfers --------- */

/* Room for the largest request we are asked about (64 KiB) and then some,
 * so a request normally fits the pipe in one go; larger ones still work
 * through the read/write loops. Capped at pipe-max-size, which is as far as
 * an unprivileged process may go. */
static int pipe_open(struct run *r)
{
	int req[2], rep[2];
	long want = (long)max_size(r->size, 65536) + 4096, cap;

	if (pipe2(req, O_CLOEXEC) < 0)
		return fail(r, "pipe2");
	r->s_rd = req[0];
	r->c_wr = req[1];
	if (pipe2(rep, O_CLOEXEC) < 0)
		return fail(r, "pipe2");
	r->c_rd = rep[0];
	r->s_wr = rep[1];
	if (read_long_file(PIPE_MAX_SIZE_PATH, &cap) == 0 && want > cap)
		want = cap;
	if (want > INT_MAX)
		want = INT_MAX;
	if (fcntl(r->c_wr, F_SETPIPE_SZ, (int)want) < 0)
		return fail(r, "fcntl(F_SETPIPE_SZ)");
	return 0;
}

/* One SOCK_STREAM socketpair carries both directions. The buffers are set
 * large enough for a 64 KiB request so the writer is not throttled by the
 * default socket limits; the kernel doubles and caps the values itself. */
static int unix_open(struct run *r)
{
	int sv[2];
	int buf = (int)max_size(r->size, 65536) + 16384;

	if (r->size > INT_MAX / 2)
		buf = INT_MAX / 2;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return fail(r, "socketpair");
	r->c_rd = r->c_wr = sv[0];
	r->s_rd = r->s_wr = sv[1];
	for (int i = 0; i < 2; i++) {
		if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf) < 0)
			return fail(r, "setsockopt(SO_SNDBUF)");
		if (setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf) < 0)
			return fail(r, "setsockopt(SO_RCVBUF)");
	}
	return 0;
}

static int fd_call(struct run *r, uint64_t seq, uint64_t *reply)
{
	stamp(r->cbuf, r->size, seq);
	if (write_full(r->c_wr, r->cbuf, r->size) < 0)
		return fail(r, "write (request)");
	int rc = read_full(r->c_rd, reply, sizeof *reply);
	if (rc < 0)
		return fail(r, "read (reply)");
	if (rc > 0) {
		say(r, "read (reply): server closed the connection");
		return -1;
	}
	return 0;
}

static int fd_recv(struct run *r, uint64_t seq)
{
	(void)seq;
	int rc = read_full(r->s_rd, r->sbuf, r->size);
	if (rc < 0)
		return fail(r, "server: read (request)");
	return rc;	/* 1: EOF, the client went away */
}

static int fd_reply(struct run *r, uint64_t seq, uint64_t val)
{
	(void)seq;
	if (write_full(r->s_wr, &val, sizeof val) < 0)
		return fail(r, "server: write (reply)");
	return 0;
}

/* ---- mq: POSIX message queues ------------------------------------------ */

/* Opens a fresh queue. When the message size is over the system limit and
 * we lack CAP_SYS_RESOURCE, mq_open says EINVAL; as root we then raise
 * /proc/sys/fs/mqueue/msgsize_max just for the open (the limit is only
 * checked there) and put the old value back, leaving the system as found. */
static int mq_create(struct run *r, const char *tag, long msgsize, mqd_t *out)
{
	char name[96];
	struct mq_attr attr = { .mq_maxmsg = 1, .mq_msgsize = msgsize };
	const int flags = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC;
	long limit;

	/* pid, tid and a timestamp: unique across processes and calls. */
	snprintf(name, sizeof name, "/rhodes-ipc-%d-%d-%" PRIx64 "-%s",
		 (int)getpid(), (int)gettid(), ipc_now_ns(), tag);
	mqd_t q = mq_open(name, flags, 0600, &attr);
	if (q == (mqd_t)-1 && errno == EINVAL &&
	    read_long_file(MQ_MSGSIZE_MAX_PATH, &limit) == 0 && msgsize > limit) {
		if (geteuid() != 0) {
			say(r, "mq_open: message size %ld exceeds %s (%ld) and we are not root",
			    msgsize, MQ_MSGSIZE_MAX_PATH, limit);
			return -1;
		}
		if (write_long_file(MQ_MSGSIZE_MAX_PATH, msgsize) < 0)
			return fail(r, "raising " MQ_MSGSIZE_MAX_PATH);
		q = mq_open(name, flags, 0600, &attr);
		int err = errno;
		if (write_long_file(MQ_MSGSIZE_MAX_PATH, limit) < 0)
			say(r, "could not restore %s to %ld: %s",
			    MQ_MSGSIZE_MAX_PATH, limit, errtext(errno));
		errno = err;
	}
	if (q == (mqd_t)-1 && errno == EMFILE) {
		/* Also what mq_open says when the queue would exceed the
		 * per-user byte budget, which is the likelier cause here. */
		say(r, "mq_open: %s (a %ld-byte queue may exceed RLIMIT_MSGQUEUE)",
		    errtext(errno), msgsize);
		return -1;
	}
	if (q == (mqd_t)-1)
		return fail(r, "mq_open");
	*out = q;
	/* The forked server inherits the descriptor, so both sides have the
	 * queue open from here on: the name is no longer needed. */
	if (mq_unlink(name) < 0)
		return fail(r, "mq_unlink");
	return 0;
}

static int mq_open_pair(struct run *r)
{
	struct timespec now;

	if (r->size > LONG_MAX) {
		say(r, "mq_open: request too large");
		return -1;
	}
	if (mq_create(r, "req", (long)r->size, &r->mq_req) < 0 ||
	    mq_create(r, "rep", (long)sizeof(uint64_t), &r->mq_rep) < 0)
		return -1;
	/* A message queue gives no EOF when the server dies, so the client
	 * waits with a whole-run deadline (30 s + 1 ms per round trip) rather
	 * than forever. It is computed once here so no clock read lands in the
	 * timed region; the kernel's hrtimer setup when the client sleeps is
	 * the only extra cost, well under 1% of an mq round trip. */
	clock_gettime(CLOCK_REALTIME, &now);
	long extra_ms = r->total;
	r->mq_deadline.tv_sec = now.tv_sec + 30 + extra_ms / 1000;
	r->mq_deadline.tv_nsec = now.tv_nsec + (extra_ms % 1000) * 1000000;
	if (r->mq_deadline.tv_nsec >= 1000000000) {
		r->mq_deadline.tv_sec++;
		r->mq_deadline.tv_nsec -= 1000000000;
	}
	return 0;
}

static int mq_call(struct run *r, uint64_t seq, uint64_t *reply)
{
	ssize_t n;

	stamp(r->cbuf, r->size, seq);
	while (mq_send(r->mq_req, (const char *)r->cbuf, r->size, 0) < 0)
		if (errno != EINTR)
			return fail(r, "mq_send (request)");
	do
		n = mq_timedreceive(r->mq_rep, (char *)reply, sizeof *reply,
				    NULL, &r->mq_deadline);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == ETIMEDOUT) {
		say(r, "mq_timedreceive (reply): no reply before the run's deadline; server gone?");
		return -1;
	}
	if (n < 0)
		return fail(r, "mq_timedreceive (reply)");
	if (n != sizeof *reply) {
		say(r, "mq_timedreceive (reply): got %zd bytes, want %zu",
		    n, sizeof *reply);
		return -1;
	}
	return 0;
}

/* The server needs no deadline: it dies with its parent (PR_SET_PDEATHSIG)
 * and is killed if the client gives up. */
static int mq_recv(struct run *r, uint64_t seq)
{
	ssize_t n;

	(void)seq;
	do
		n = mq_receive(r->mq_req, (char *)r->sbuf, r->size, NULL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(r, "server: mq_receive (request)");
	if ((size_t)n != r->size) {
		say(r, "server: mq_receive (request): got %zd bytes, want %zu",
		    n, r->size);
		return -1;
	}
	return 0;
}

static int mq_reply(struct run *r, uint64_t seq, uint64_t val)
{
	(void)seq;
	while (mq_send(r->mq_rep, (const char *)&val, sizeof val, 0) < 0)
		if (errno != EINTR)
			return fail(r, "server: mq_send (reply)");
	return 0;
}

/* ---- futex and spin: handoff through the shared region -----------------
 * Both copy the payload in (client) and out (server) of the shared region,
 * the same two copies a pipe makes, so the comparison is fair. */

static uint32_t load_acq(const uint32_t *w)
{
	return __atomic_load_n(w, __ATOMIC_ACQUIRE);
}

static void store_rel(uint32_t *w, uint32_t v)
{
	__atomic_store_n(w, v, __ATOMIC_RELEASE);
}

/* No FUTEX_PRIVATE_FLAG: the shared-futex path (keyed on the page, not the
 * mm) is what two processes would pay. */
static long futex(uint32_t *word, int op, uint32_t val)
{
	return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

static int futex_wake(struct run *r, uint32_t *word, const char *what)
{
	if (futex(word, FUTEX_WAKE, 1) < 0)
		return fail(r, what);
	return 0;
}

/* Sleeps until *word == want. Checks *stop (if given) on every wake-up so
 * the client can release a server thread it is abandoning. Returns 0 when
 * the value arrived, 1 when stopped, -1 on error. */
static int futex_await(struct run *r, uint32_t *word, uint32_t want,
		       const uint32_t *stop, const char *what)
{
	for (;;) {
		uint32_t v = load_acq(word);

		if (stop && __atomic_load_n(stop, __ATOMIC_RELAXED))
			return 1;
		if (v == want)
			return 0;
		if (futex(word, FUTEX_WAIT, v) < 0 && errno != EAGAIN &&
		    errno != EINTR)
			return fail(r, what);
	}
}

static void shm_post_request(struct run *r, uint64_t seq)
{
	stamp(r->cbuf, r->size, seq);
	memcpy(r->sh->payload, r->cbuf, r->size);
	store_rel(&r->sh->req, (uint32_t)(seq + 1));
}

static void shm_post_reply(struct run *r, uint64_t seq, uint64_t val)
{
	__atomic_store_n(&r->sh->reply, val, __ATOMIC_RELAXED);
	store_rel(&r->sh->rep, (uint32_t)(seq + 1));
}

static int futex_call(struct run *r, uint64_t seq, uint64_t *reply)
{
	shm_post_request(r, seq);
	/* Wake unconditionally: this baseline is "always a syscall each way". */
	if (futex_wake(r, &r->sh->req, "futex(FUTEX_WAKE) (request)") < 0)
		return -1;
	if (futex_await(r, &r->sh->rep, (uint32_t)(seq + 1), NULL,
			"futex(FUTEX_WAIT) (reply)") < 0)
		return -1;
	*reply = __atomic_load_n(&r->sh->reply, __ATOMIC_RELAXED);
	return 0;
}

static int futex_recv(struct run *r, uint64_t seq)
{
	int rc = futex_await(r, &r->sh->req, (uint32_t)(seq + 1), &r->sh->stop,
			     "server: futex(FUTEX_WAIT) (request)");

	if (rc == 0)
		memcpy(r->sbuf, r->sh->payload, r->size);
	return rc;
}

static int futex_reply(struct run *r, uint64_t seq, uint64_t val)
{
	shm_post_reply(r, seq, val);
	return futex_wake(r, &r->sh->rep, "server: futex(FUTEX_WAKE) (reply)");
}

static void cpu_relax(void)
{
	__builtin_ia32_pause();
}

/* Two busy-waiters on one CPU hand over only when the scheduler preempts
 * one of them, which measures the timeslice, not the handoff; and this
 * VM's scheduler was seen to leave both spinners on one vCPU for whole
 * runs. So the spin baseline pins client and server to two distinct CPUs
 * (the caller's mask is restored afterwards), and refuses to run with
 * fewer than two. */
static int spin_open(struct run *r)
{
	cpu_set_t one;
	int here = sched_getcpu();

	int err = pthread_getaffinity_np(pthread_self(), sizeof r->saved_affinity,
					 &r->saved_affinity);
	if (err) {
		errno = err;
		return fail(r, "pthread_getaffinity_np");
	}
	if (CPU_COUNT(&r->saved_affinity) < 2) {
		say(r, "pthread_getaffinity_np: spinning needs at least 2 CPUs, have %d",
		    CPU_COUNT(&r->saved_affinity));
		return -1;
	}
	int client_cpu = -1;
	if (here >= 0 && CPU_ISSET(here, &r->saved_affinity))
		client_cpu = here;
	for (int c = 0; c < CPU_SETSIZE && (client_cpu < 0 || r->server_cpu < 0); c++) {
		if (!CPU_ISSET(c, &r->saved_affinity))
			continue;
		if (client_cpu < 0)
			client_cpu = c;
		else if (c != client_cpu)
			r->server_cpu = c;
	}
	CPU_ZERO(&one);
	CPU_SET(client_cpu, &one);
	err = pthread_setaffinity_np(pthread_self(), sizeof one, &one);
	if (err) {
		errno = err;
		return fail(r, "pthread_setaffinity_np");
	}
	r->affinity_saved = true;
	return 0;
}

static int spin_call(struct run *r, uint64_t seq, uint64_t *reply)
{
	shm_post_request(r, seq);
	while (load_acq(&r->sh->rep) != (uint32_t)(seq + 1))
		cpu_relax();
	*reply = __atomic_load_n(&r->sh->reply, __ATOMIC_RELAXED);
	return 0;
}

static int spin_recv(struct run *r, uint64_t seq)
{
	/* stop shares req's cache line, so checking it costs no extra miss.
	 * It is checked before the match: an abort may bump req to `want`. */
	for (;;) {
		uint32_t v = load_acq(&r->sh->req);

		if (__atomic_load_n(&r->sh->stop, __ATOMIC_RELAXED))
			return 1;
		if (v == (uint32_t)(seq + 1))
			break;
		cpu_relax();
	}
	memcpy(r->sbuf, r->sh->payload, r->size);
	return 0;
}

static int spin_reply(struct run *r, uint64_t seq, uint64_t val)
{
	shm_post_reply(r, seq, val);
	return 0;
}

/* Tells a thread server waiting for a request that none will come. */
static void shm_abort(struct run *r)
{
	__atomic_store_n(&r->sh->stop, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&r->sh->req, 1, __ATOMIC_RELEASE);
	futex(&r->sh->req, FUTEX_WAKE, INT_MAX);
}

/* ---- the kinds ---------------------------------------------------------- */

static const struct kind kinds[] = {
	{ "pipe",  true,  pipe_open,    fd_call,    fd_recv,    fd_reply,    NULL },
	{ "unix",  true,  unix_open,    fd_call,    fd_recv,    fd_reply,    NULL },
	{ "mq",    true,  mq_open_pair, mq_call,    mq_recv,    mq_reply,    NULL },
	{ "futex", false, NULL,         futex_call, futex_recv, futex_reply, shm_abort },
	{ "spin",  false, spin_open,    spin_call,  spin_recv,  spin_reply,  shm_abort },
};

const char *const ipc_baseline_kinds[] = { "pipe", "unix", "mq", "futex", "spin", NULL };

_Static_assert(sizeof kinds / sizeof kinds[0] ==
	       sizeof ipc_baseline_kinds / sizeof ipc_baseline_kinds[0] - 1,
	       "ipc_baseline_kinds must list every entry of kinds[]");

static const struct kind *find_kind(const char *name)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	return NULL;
}

/* ---- server side ---------------------------------------------------------
 * The same loop runs in the thread or in the child. Its CPU clock is read
 * when the warm-up is over and after the last reply, so warm-up and setup
 * are not charged to the timed calls. */

static int serve(struct run *r)
{
	uint64_t cpu0 = ipc_thread_cpu_ns();

	for (long i = 0; i < r->total; i++) {
		if (i == r->warmup)
			cpu0 = ipc_thread_cpu_ns();
		int rc = r->k->recv(r, (uint64_t)i);
		if (rc > 0)
			return 1;	/* the client gave up and said so */
		if (rc < 0) {
			r->k->reply(r, (uint64_t)i, POISON);
			return -1;
		}
		if (!stamp_ok(r->sbuf, r->size, (uint64_t)i)) {
			say(r, "server: request %ld does not carry its sequence number", i);
			r->k->reply(r, (uint64_t)i, POISON);
			return -1;
		}
		if (r->k->reply(r, (uint64_t)i, (uint64_t)i) < 0)
			return -1;
	}
	r->sh->server_cpu_ns = ipc_thread_cpu_ns() - cpu0;
	return 0;
}

static void *server_thread(void *arg)
{
	struct run *r = arg;

	r->server_rc = serve(r);
	return NULL;
}

/* Runs in the forked child; never returns. Exit status: 0 done, 1 error
 * (reported), 2 orphaned or client gone. */
static void server_child(struct run *r, pid_t parent)
{
	/* Die with the benchmark rather than linger blocked on a queue. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(2);
	/* Drop the client's ends so that the client's death reads as EOF. */
	close_pair(&r->c_rd, &r->c_wr);
	int rc = serve(r);
	_exit(rc == 0 ? 0 : rc < 0 ? 1 : 2);
}

static int start_server(struct run *r)
{
	if (!r->k->process) {
		pthread_attr_t attr;
		cpu_set_t one;
		int err = pthread_attr_init(&attr);

		if (!err && r->server_cpu >= 0) {
			CPU_ZERO(&one);
			CPU_SET(r->server_cpu, &one);
			err = pthread_attr_setaffinity_np(&attr, sizeof one, &one);
		}
		if (!err)
			err = pthread_create(&r->thread, &attr, server_thread, r);
		pthread_attr_destroy(&attr);
		if (err) {
			errno = err;
			return fail(r, "pthread_create");
		}
		r->thread_started = true;
		return 0;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return fail(r, "fork");
	if (pid == 0)
		server_child(r, parent);
	r->child = pid;
	/* Drop the server's ends so that the server's death reads as EOF. */
	close_pair(&r->s_rd, &r->s_wr);
	return 0;
}

/* Waits for the server to finish. If the client failed, the server is told
 * to stop (thread) or killed (process) first, and its status is not judged:
 * the failure has been reported already. */
static int stop_server(struct run *r, bool client_failed)
{
	int status;

	if (r->thread_started) {
		if (client_failed && r->k->abort)
			r->k->abort(r);
		pthread_join(r->thread, NULL);
		r->thread_started = false;
		if (!client_failed && r->server_rc != 0) {
			say(r, "server thread failed");
			return -1;
		}
		return 0;
	}
	if (r->child <= 0)
		return 0;
	if (client_failed)
		kill(r->child, SIGKILL);
	while (waitpid(r->child, &status, 0) < 0) {
		if (errno != EINTR) {
			r->child = -1;
			return fail(r, "waitpid");
		}
	}
	r->child = -1;
	if (client_failed)
		return 0;
	if (WIFSIGNALED(status)) {
		say(r, "server process killed by signal %d", WTERMSIG(status));
		return -1;
	}
	if (WEXITSTATUS(status) != 0) {
		say(r, "server process exited with status %d", WEXITSTATUS(status));
		return -1;
	}
	return 0;
}

/* ---- client side -------------------------------------------------------- */

static int client_call(struct run *r, uint64_t seq)
{
	uint64_t reply;

	if (r->k->call(r, seq, &reply) < 0)
		return -1;
	if (reply == POISON) {
		say(r, "server rejected request %" PRIu64, seq);
		return -1;
	}
	if (reply != seq) {
		say(r, "reply %" PRIu64 " to request %" PRIu64, reply, seq);
		return -1;
	}
	return 0;
}

/* Warm-up, then the timed round trips, one clock pair around each. */
static int measure(struct run *r, long iters, struct ipc_result *out)
{
	double *samples = malloc((size_t)iters * sizeof *samples);

	if (!samples)
		return fail(r, "malloc (samples)");
	/* Touch every page now: after fork they are copy-on-write, and the
	 * faults must not land in the timed loop. */
	memset(samples, 0, (size_t)iters * sizeof *samples);

	for (long i = 0; i < r->warmup; i++)
		if (client_call(r, (uint64_t)i) < 0)
			goto fail;

	uint64_t cpu0 = ipc_thread_cpu_ns();
	uint64_t wall0 = ipc_now_ns();
	for (long i = 0; i < iters; i++) {
		uint64_t t0 = ipc_now_ns();
		if (client_call(r, (uint64_t)(r->warmup + i)) < 0)
			goto fail;
		samples[i] = (double)(ipc_now_ns() - t0);
	}
	uint64_t wall = ipc_now_ns() - wall0;
	uint64_t cpu = ipc_thread_cpu_ns() - cpu0;

	double secs = (double)wall / 1e9;
	out->calls_per_s = (double)iters / secs;
	out->mb_per_s = (double)r->size * (double)iters / secs / 1e6;
	out->cpu_client_ns = (double)cpu / (double)iters;
	ipc_summarize(samples, iters, out);
	free(samples);
	return 0;
fail:
	free(samples);
	return -1;
}

/* ---- setup and teardown ------------------------------------------------- */

static int run_setup(struct run *r)
{
	long page = sysconf(_SC_PAGESIZE);

	r->cbuf = malloc(r->size);
	r->sbuf = malloc(r->size);
	if (!r->cbuf || !r->sbuf)
		return fail(r, "malloc (buffers)");
	/* Real, distinct bytes (not zero pages) and pre-faulted buffers. */
	for (size_t i = 0; i < r->size; i++)
		r->cbuf[i] = (unsigned char)(i * 131 + 7);
	memset(r->sbuf, 0, r->size);

	r->sh_len = (sizeof(struct shared) + r->size + (size_t)page - 1) &
		    ~((size_t)page - 1);
	void *p = mmap(NULL, r->sh_len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		r->sh_len = 0;
		return fail(r, "mmap");
	}
	r->sh = p;
	return r->k->open ? r->k->open(r) : 0;
}

static void run_teardown(struct run *r)
{
	close_pair(&r->c_rd, &r->c_wr);
	close_pair(&r->s_rd, &r->s_wr);
	if (r->mq_req != (mqd_t)-1)
		mq_close(r->mq_req);
	if (r->mq_rep != (mqd_t)-1)
		mq_close(r->mq_rep);
	r->mq_req = r->mq_rep = (mqd_t)-1;
	if (r->sh)
		munmap(r->sh, r->sh_len);
	r->sh = NULL;
	free(r->cbuf);
	free(r->sbuf);
	r->cbuf = r->sbuf = NULL;
	if (r->affinity_saved)
		pthread_setaffinity_np(pthread_self(), sizeof r->saved_affinity,
				       &r->saved_affinity);
	r->affinity_saved = false;
}

/* A server that dies mid-run turns the client's next pipe write into
 * SIGPIPE, which would kill the whole benchmark. Block it in this thread
 * for the run (EPIPE is handled instead), swallow one we caused, and put
 * the mask back. The forked server inherits the blocked mask, which is
 * what it wants too. */
struct sigpipe_guard {
	sigset_t old;
	bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
	sigset_t set, pending;
	const struct timespec zero = { 0, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	if (!g->was_pending && sigismember(&pending, SIGPIPE) == 1)
		sigtimedwait(&set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

int ipc_baseline(const char *kind, size_t size, long iters, struct ipc_result *out)
{
	const struct kind *k = kind ? find_kind(kind) : NULL;

	if (!k) {
		fprintf(stderr, "ipc_baseline(%s): unknown kind\n", kind ? kind : "(null)");
		return -1;
	}
	struct run r = {
		.k = k, .size = size,
		.warmup = iters / 10, .total = iters / 10 + iters,
		.c_rd = -1, .c_wr = -1, .s_rd = -1, .s_wr = -1,
		.mq_req = (mqd_t)-1, .mq_rep = (mqd_t)-1,
		.child = -1, .server_cpu = -1,
	};
	if (size == 0 || iters < 1 || !out) {
		say(&r, "bad arguments (size %zu, iters %ld, out %p)", size, iters,
		    (void *)out);
		return -1;
	}
	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", k->name);
	out->size = size;
	out->iters = iters;

	struct sigpipe_guard guard;
	sigpipe_block(&guard);
	int rc = run_setup(&r);
	if (rc == 0)
		rc = start_server(&r);
	if (rc == 0)
		rc = measure(&r, iters, out);
	if (stop_server(&r, rc != 0) < 0)
		rc = -1;
	if (rc == 0)
		out->cpu_server_ns = (double)r.sh->server_cpu_ns / (double)iters;
	run_teardown(&r);
	sigpipe_restore(&guard);
	return rc ? -1 : 0;
}
