/* bench/publish/main.c - publish -> applied in N running agents.
 *
 * Measures how long a rule published to the embedded store (sqlite:, on the
 * temp dir's file system, fsynced as always) takes to be in force in N
 * running governed programs, each served by its own agent (govagent --store,
 * resource bench-pub-0 .. bench-pub-<N-1>, --spin-us 0 so idle agents sleep),
 * for N = 1, 10, 100. Each round this process publishes one new version of
 * one verdict rule with no resource field (so it is routed to every agent),
 * writing what `govctl rule publish` writes: the version, `current`, the
 * route /routes/STAR/RULE and the rule's route list, in one transaction
 * that compares current's mod_rev. The rule alternates between
 * trace and deny, so every table really changes. t0 is CLOCK_MONOTONIC just
 * before the transaction; "applied in all N" is the moment the last of the N
 * programs had that revision's decision table in force, minus t0; "first" is
 * the same for the first program; "commit" is the transaction alone.
 *
 * How a program notices (and what that adds): each program runs with
 * GOV_LOG=debug and its stderr on a pipe that its main thread sleeps on.
 * govrt's watcher thread writes its "decision table rev R applied" line right
 * after it has put the table in force; the main thread wakes, confirms with
 * govrt_stats().table_rev (the public API) and takes the time. So each
 * observation costs one pipe write and one thread wake-up more than the
 * application itself: a few µs on an idle CPU, and no CPU at all between
 * rounds. (govrt_wait_table polls every 500 µs; polling table_rev with a
 * short sleep costs a CPU per few programs on a 2-CPU machine and would slow
 * the agents being measured. --poll-us N measures with that instead.)
 *
 * What it is not: not govctl's cost (no process start, no document check,
 * no resource look-ups before the transaction); not a throughput test (one
 * publish at a time, PAUSE_MS apart, so agents and programs are asleep when
 * it comes, as in real use); not the etcd backend; the programs make no
 * governed calls while it runs. It asserts nothing, it reports. With
 * --markdown FILE it replaces its own section of FILE (BENCHMARKS.md). */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "../common.h"
#include "gov/store_keys.h"
#include "../../rules/ruledoc.h"
#include "../../rules/store.h"

#define RES_PREFIX "bench-pub-"
#define RULE "bench-publish"
#define TARGET_N 10
#define TARGET_NS 1000000.0
#define PAUSE_MS 20
#define WARMUP 5
#define ROUND_TIMEOUT_MS 5000
#define START_TIMEOUT_MS 20000
#define MAX_AGENTS 1000

/* The two versions published in turn. The function is a site the programs
 * declare (bench_target), so the verdict bytes really change. */
static const char text_trace[] =
	"name: " RULE "\nverdicts:\n  - function: bench_target\n    action: trace\n";
static const char text_deny[] =
	"name: " RULE "\nverdicts:\n  - function: bench_target\n    action: deny\n    errno: EACCES\n";

/* Shared between this process and the programs (a memfd each program maps
 * again after exec). seen[] holds, per program and revision, the
 * CLOCK_MONOTONIC time the program first had that revision in force. */
struct shared {
	_Atomic uint64_t init_rev;  /* a program is ready once it has this one */
	_Atomic uint64_t base_rev;  /* seen[c * span + i] is revision base_rev + 1 + i */
	_Atomic int stop;
	_Atomic uint32_t nready;
	uint32_t nclients, span;
	_Atomic uint64_t seen[];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	nanosleep(&ts, NULL);
}

/* ---- the governed program ("client" mode) --------------------------- */

__attribute__((noinline)) long bench_target(long x)
{
	__asm__ volatile("" : "+r"(x));
	return x + 1;
}

/* Never called while measuring: it is here so that the program has a site
 * the published rule names, and applying a table changes its verdict byte. */
__attribute__((noinline, used)) long governed_target(long x)
{
	return GOV_CALL("ll", bench_target, x);
}

/* Reads what govrt wrote on our stderr pipe; passes on every line that is
 * not a debug line (warnings stay visible), drops the rest. */
static void drain_log(int pipefd, int errfd)
{
	static char buf[8192];
	static size_t have;
	for (;;) {
		ssize_t n = read(pipefd, buf + have, sizeof buf - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = 0;
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			if (!strstr(line, ": debug: ") || strstr(line, ": debug: ") > nl) {
				ssize_t w = write(errfd, line, (size_t)(nl + 1 - line));
				(void)w;
			}
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
		if (have == sizeof buf - 1)
			have = 0; /* a line longer than the buffer: drop it */
	}
}

static uint64_t table_rev(void)
{
	struct govrt_stats st;
	govrt_stats(&st);
	return st.table_rev;
}

/* Records "now" for every revision from last + 1 to rev (an agent may
 * apply two commits at once; the later table holds both). */
static void record(struct shared *sh, unsigned idx, uint64_t last, uint64_t rev, uint64_t t)
{
	uint64_t base = atomic_load(&sh->base_rev);
	for (uint64_t r = last + 1; r <= rev; r++) {
		if (r <= base || r - base - 1 >= sh->span)
			continue;
		uint64_t zero = 0;
		atomic_compare_exchange_strong(&sh->seen[(size_t)idx * sh->span + (r - base - 1)],
					       &zero, t);
	}
}

static int client_main(char **argv)
{
	unsigned idx = (unsigned)atoi(argv[2]);
	int shmfd = atoi(argv[3]), pipefd = atoi(argv[4]), errfd = atoi(argv[5]);
	long poll_us = atol(argv[6]);
	struct stat st;
	if (fstat(shmfd, &st) < 0)
		return 1;
	struct shared *sh = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, shmfd, 0);
	if (sh == MAP_FAILED)
		return 1;
	fcntl(pipefd, F_SETFL, O_NONBLOCK);
	/* short sleeps really short (the default slack is 50 µs), for --poll-us */
	prctl(PR_SET_TIMERSLACK, 1UL);
	uint64_t deadline = now_ns() + (uint64_t)START_TIMEOUT_MS * 1000000u;
	while (!govrt_connected() || table_rev() < atomic_load(&sh->init_rev)) {
		drain_log(pipefd, errfd);
		if (now_ns() > deadline || atomic_load(&sh->stop))
			return 1;
		usleep(1000);
	}
	uint64_t last = table_rev();
	atomic_fetch_add(&sh->nready, 1);
	for (unsigned spins = 0; !atomic_load(&sh->stop); spins++) {
		if (poll_us > 0) {
			sleep_ns((uint64_t)poll_us * 1000u);
			if (spins % 256 == 0)
				drain_log(pipefd, errfd);
		} else {
			/* the stop flag is looked at least every 100 ms */
			struct pollfd p = { pipefd, POLLIN, 0 };
			if (poll(&p, 1, 100) > 0)
				drain_log(pipefd, errfd);
		}
		uint64_t rev = table_rev();
		if (rev > last) {
			record(sh, idx, last, rev, now_ns());
			last = rev;
		}
	}
	return 0;
}

/* ---- processes and clean-up ------------------------------------------ */

static char run_dir[PATH_MAX];
static char self_path[PATH_MAX];         /* this binary, for the programs */
static char store_url[PATH_MAX + 16];
static pid_t *agents, *clients;
static unsigned nagents, nclients;
static long inotify_saved = -1;          /* the limit before we raised it */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* SIGTERM, a moment to stop cleanly, then SIGKILL; reaps every one. */
static void stop_all(pid_t *pids, unsigned *n)
{
	for (unsigned i = 0; i < *n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	uint64_t deadline = now_ns() + 3000000000u;
	for (unsigned i = 0; i < *n; i++) {
		if (pids[i] <= 0)
			continue;
		while (waitpid(pids[i], NULL, WNOHANG) == 0) {
			if (now_ns() > deadline) {
				kill(pids[i], SIGKILL);
				waitpid(pids[i], NULL, 0);
				break;
			}
			usleep(1000);
		}
		pids[i] = 0;
	}
	*n = 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void write_inotify_limit(long v)
{
	FILE *f = fopen("/proc/sys/fs/inotify/max_user_instances", "w");
	if (f) {
		fprintf(f, "%ld\n", v);
		fclose(f);
	}
}

/* Every exit path comes here (atexit): programs first, so that they do not
 * warn about their agents going away, then agents, the dir, the limit. */
static void cleanup(void)
{
	stop_all(clients, &nclients);
	stop_all(agents, &nagents);
	if (run_dir[0]) {
		nftw(run_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		run_dir[0] = 0;
	}
	if (inotify_saved >= 0) {
		write_inotify_limit(inotify_saved);
		inotify_saved = -1;
	}
}

/* environ without GOV_*, plus up to three NAME=VALUE strings. */
static char **child_env(const char *a, const char *b, const char *c)
{
	extern char **environ;
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 4, sizeof *env);
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "GOV_", 4) != 0)
			env[k++] = environ[i];
	const char *extra[] = { a, b, c };
	for (int i = 0; i < 3; i++)
		if (extra[i])
			env[k++] = (char *)extra[i];
	return env;
}

/* In a child before exec: stop when we die, whatever kills us (SIGTERM, so
 * that an agent still removes its socket), with default signal handling
 * (an ignored signal would stay ignored across exec). */
static void child_setup(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(127);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
}

static pid_t start_agent(unsigned i)
{
	char name[64], log[PATH_MAX + 32];
	snprintf(name, sizeof name, RES_PREFIX "%u", i);
	snprintf(log, sizeof log, "%s/agent-%u.log", run_dir, i);
	char *const argv[] = { "govagent", "--resource", name, "--store", store_url,
			       "--spin-us", "0", "--run-dir", run_dir, NULL };
	char **env = child_env(NULL, NULL, NULL);
	if (!env)
		return -1;
	pid_t parent = getpid(), pid = fork();
	if (pid == 0) {
		child_setup(parent);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		execve(GOVAGENT_PATH, argv, env);
		dprintf(2, "exec %s: %s\n", GOVAGENT_PATH, strerror(errno));
		_exit(127);
	}
	free(env);
	return pid;
}

static pid_t start_client(unsigned i, int shmfd, long poll_us)
{
	char res[96], dir[PATH_MAX + 16], idx[16], fd1[16], pus[32];
	snprintf(res, sizeof res, "GOV_RESOURCE=" RES_PREFIX "%u", i);
	snprintf(dir, sizeof dir, "GOV_RUN_DIR=%s", run_dir);
	snprintf(idx, sizeof idx, "%u", i);
	snprintf(fd1, sizeof fd1, "%d", shmfd);
	snprintf(pus, sizeof pus, "%ld", poll_us);
	char **env = child_env(res, dir, poll_us > 0 ? NULL : "GOV_LOG=debug");
	if (!env)
		return -1;
	pid_t parent = getpid(), pid = fork();
	if (pid == 0) {
		child_setup(parent);
		int p[2];
		int errfd = dup(2);
		if (pipe(p) < 0 || errfd < 0 || dup2(p[1], 2) < 0)
			_exit(127);
		close(p[1]);
		fcntl(shmfd, F_SETFD, 0); /* created close-on-exec for the agents' sake */
		char pfd[16], efd[16];
		snprintf(pfd, sizeof pfd, "%d", p[0]);
		snprintf(efd, sizeof efd, "%d", errfd);
		char *const argv[] = { "bench-publish", "--client", idx, fd1, pfd, efd, pus, NULL };
		execve(self_path, argv, env);
		_exit(127);
	}
	free(env);
	return pid;
}

/* The agent's log, to say why it did not come up. */
static void show_agent_log(unsigned i)
{
	char path[PATH_MAX + 32], line[512];
	snprintf(path, sizeof path, "%s/agent-%u.log", run_dir, i);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f))
		fprintf(stderr, "  agent %u: %s", i, line);
	if (f)
		fclose(f);
}

/* Agents are up when their sockets exist (a program started before that
 * would wait out govrt's reconnection interval). */
static int wait_agents(unsigned n)
{
	uint64_t deadline = now_ns() + (uint64_t)START_TIMEOUT_MS * 1000000u;
	for (unsigned i = 0; i < n; i++) {
		char sock[PATH_MAX + 32];
		snprintf(sock, sizeof sock, "%s/" RES_PREFIX "%u.sock", run_dir, i);
		while (access(sock, F_OK) < 0) {
			if (waitpid(agents[i], NULL, WNOHANG) == agents[i]) {
				agents[i] = 0;
				fprintf(stderr, "bench/publish: agent %u exited at start\n", i);
				show_agent_log(i);
				return -1;
			}
			if (interrupted)
				return -1;
			if (now_ns() > deadline) {
				fprintf(stderr, "bench/publish: agent %u did not come up\n", i);
				show_agent_log(i);
				return -1;
			}
			usleep(1000);
		}
	}
	return 0;
}

static int wait_clients(struct shared *sh, unsigned n)
{
	uint64_t deadline = now_ns() + (uint64_t)START_TIMEOUT_MS * 1000000u;
	while (atomic_load(&sh->nready) < n) {
		if (interrupted)
			return -1;
		if (now_ns() > deadline) {
			fprintf(stderr, "bench/publish: %u of %u programs connected and took revision %llu\n",
				atomic_load(&sh->nready), n, (unsigned long long)atomic_load(&sh->init_rev));
			return -1;
		}
		usleep(1000);
	}
	return 0;
}

/* ---- inotify: one instance per store watch -------------------------- */

/* Instances an agent holds: one per store watch (govagent --store watches
 * its own routes and every agent's); replaced by what the first agent
 * started really holds. */
static unsigned inotify_per_agent = 2;

/* Inotify instances open in process pid. */
static unsigned inotify_of(const char *pid)
{
	char path[300];
	unsigned n = 0;
	snprintf(path, sizeof path, "/proc/%s/fd", pid);
	DIR *fds = opendir(path);
	for (struct dirent *f; fds && (f = readdir(fds));) {
		char link[600], target[64];
		snprintf(link, sizeof link, "%s/%s", path, f->d_name);
		ssize_t len = readlink(link, target, sizeof target - 1);
		if (len > 0) {
			target[len] = 0;
			n += strcmp(target, "anon_inode:inotify") == 0;
		}
	}
	if (fds)
		closedir(fds);
	return n;
}

/* Inotify instances held by processes of our uid right now. */
static unsigned inotify_in_use(void)
{
	unsigned n = 0;
	DIR *proc = opendir("/proc");
	for (struct dirent *p; proc && (p = readdir(proc));) {
		char path[300];
		struct stat st;
		snprintf(path, sizeof path, "/proc/%s", p->d_name);
		if (p->d_name[0] >= '0' && p->d_name[0] <= '9' && stat(path, &st) == 0 &&
		    st.st_uid == geteuid())
			n += inotify_of(p->d_name);
	}
	if (proc)
		closedir(proc);
	return n;
}

static long inotify_limit(void)
{
	long v = -1;
	FILE *f = fopen("/proc/sys/fs/inotify/max_user_instances", "r");
	if (f && fscanf(f, "%ld", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

/* 0 when n agents' watches fit (raising the limit if we are root and must:
 * said in notes), else -1 with why. */
static int inotify_fit(unsigned n, char *notes, size_t noteslen, char *why, size_t whylen)
{
	long limit = inotify_limit();
	unsigned used = inotify_in_use();
	/* 8: room for what else starts meanwhile */
	long need = (long)used + (long)n * inotify_per_agent + 8;
	if (limit < 0 || limit >= need)
		return 0;
	if (geteuid() == 0) {
		if (inotify_saved < 0)
			inotify_saved = limit;
		write_inotify_limit(need);
		if (inotify_limit() >= need) {
			size_t o = strlen(notes);
			snprintf(notes + o, noteslen - o,
				 "%sfs.inotify.max_user_instances was %ld with %u in use; raised to %ld "
				 "for N = %u (each agent holds %u, one per store watch) and restored "
				 "afterwards.", o ? " " : "", inotify_saved, used, need, n, inotify_per_agent);
			fprintf(stderr, "bench/publish: raised fs.inotify.max_user_instances %ld -> %ld for N = %u\n",
				limit, need, n);
			return 0;
		}
	}
	snprintf(why, whylen, "skipped: %u agents need %ld inotify instances (%u in use, %u per "
		 "agent), fs.inotify.max_user_instances is %ld; raise it as root",
		 n, need, used, inotify_per_agent, limit);
	return -1;
}

/* ---- publishing ------------------------------------------------------- */

static struct gov_store *store;
static const char *next_text = text_deny; /* version 1 is the trace one */

/* RULE's current version (0: none yet) and the mod_rev of its current key. */
static int current_version(uint64_t *version, uint64_t *mod_rev)
{
	char err[512], ckey[256];
	struct gov_kv kv;
	snprintf(ckey, sizeof ckey, GOV_RULE_CURRENT_FMT, RULE);
	*version = *mod_rev = 0;
	int r = gov_store_get(store, ckey, &kv, err, sizeof err);
	if (r < 0) {
		fprintf(stderr, "bench/publish: %s\n", err);
		return -1;
	}
	if (r == 0) {
		*version = strtoull((char *)kv.value, NULL, 10);
		*mod_rev = kv.mod_rev;
		gov_kv_clear(&kv);
	}
	return 0;
}

/* One new version of RULE, as `govctl rule publish` writes it: the version,
 * current, the route to every agent (/routes/STAR/RULE: no row names a
 * resource) and the rule's route list, comparing current's mod_rev. govctl
 * also reads the old route list to delete routes the new version drops; both
 * versions here route to "*" only, so there is never one to delete. t0 is
 * taken just before the transaction, *t1 just after it returned. */
static int publish(uint64_t *rev, uint64_t *t0, uint64_t *t1)
{
	char err[512], ckey[256], vkey[256], rkey[256], lkey[256], num[32];
	static const char route_list[] = "[\"" GOV_ROUTE_ALL "\"]";
	uint64_t version, mod_rev;
	if (current_version(&version, &mod_rev) < 0)
		return -1;
	snprintf(ckey, sizeof ckey, GOV_RULE_CURRENT_FMT, RULE);
	snprintf(vkey, sizeof vkey, GOV_RULE_VERSION_FMT, RULE, (unsigned long long)version + 1);
	snprintf(rkey, sizeof rkey, GOV_ROUTE_FMT, GOV_ROUTE_ALL, RULE);
	snprintf(lkey, sizeof lkey, GOV_RULE_ROUTES_FMT, RULE);
	snprintf(num, sizeof num, "%llu", (unsigned long long)version + 1);
	const char *text = next_text;
	next_text = text == text_deny ? text_trace : text_deny;
	struct gov_txn_cmp cmp = { ckey, mod_rev };
	struct gov_txn_op ops[4] = {
		{ GOV_TXN_PUT, vkey, text, strlen(text) },
		{ GOV_TXN_PUT, ckey, num, strlen(num) },
		{ GOV_TXN_PUT, rkey, num, strlen(num) },
		{ GOV_TXN_PUT, lkey, route_list, strlen(route_list) },
	};
	*t0 = now_ns();
	int r = gov_store_txn(store, &cmp, 1, ops, 4, rev, err, sizeof err);
	*t1 = now_ns();
	if (r != 0) {
		fprintf(stderr, "bench/publish: publish: %s\n",
			r == GOV_STORE_CONFLICT ? "conflict (someone else writes this store?)" : err);
		return -1;
	}
	return 0;
}

/* Both texts must be documents the agents accept, or nothing would apply. */
static int check_texts(void)
{
	const char *texts[] = { text_trace, text_deny };
	for (int i = 0; i < 2; i++) {
		struct gov_ruledoc d;
		char err[512];
		if (gov_ruledoc_parse(texts[i], strlen(texts[i]), "bench text", &d, err, sizeof err) < 0) {
			fprintf(stderr, "bench/publish: %s\n", err);
			return -1;
		}
		gov_ruledoc_free(&d);
	}
	return 0;
}

/* ---- CPU time --------------------------------------------------------- */

static uint64_t total_cpu_ns(const pid_t *pids, unsigned n)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < n; i++)
		sum += bench_process_cpu_ns(pids[i]);
	return sum;
}

/* ---- one N ------------------------------------------------------------ */

struct nresult {
	unsigned n, rounds;
	int skipped;
	char why[256];
	double all_med, all_p99, all_max, first_med, commit_med, commit_p99;
	double agent_cpu, client_cpu; /* ns per publish, per agent and per program */
	uint64_t hist0, hist1;        /* the rule's versions in the store, before and after */
};

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least q of the values at or below it. */
static double quantile(double *v, unsigned n, double q)
{
	qsort(v, n, sizeof *v, cmp_d);
	unsigned k = (unsigned)(q * n + 0.999999);
	return v[k ? k - 1 : 0];
}

/* Waits until every program has had revision rev in force; fills first/last. */
static int wait_round(struct shared *sh, uint64_t rev, uint64_t *first, uint64_t *last)
{
	uint64_t i = rev - atomic_load(&sh->base_rev) - 1;
	uint64_t deadline = now_ns() + (uint64_t)ROUND_TIMEOUT_MS * 1000000u;
	for (;;) {
		unsigned have = 0;
		*first = UINT64_MAX;
		*last = 0;
		for (unsigned c = 0; c < sh->nclients; c++) {
			uint64_t t = atomic_load(&sh->seen[(size_t)c * sh->span + i]);
			if (!t)
				continue;
			have++;
			*first = t < *first ? t : *first;
			*last = t > *last ? t : *last;
		}
		if (have == sh->nclients)
			return 0;
		if (interrupted)
			return -1;
		if (now_ns() > deadline) {
			fprintf(stderr, "bench/publish: revision %llu reached %u of %u programs in %d ms\n",
				(unsigned long long)rev, have, sh->nclients, ROUND_TIMEOUT_MS);
			return -1;
		}
		/* 1 ms: our own wake-ups must not compete with the agents' */
		usleep(1000);
	}
}

static int measure(struct shared *sh, struct nresult *out)
{
	unsigned total = WARMUP + out->rounds;
	double *all = calloc(out->rounds, sizeof *all), *first = calloc(out->rounds, sizeof *first);
	double *commit = calloc(out->rounds, sizeof *commit);
	int rc = -1;
	if (!all || !first || !commit)
		goto out;
	/* idle agents and programs sleep, so what they use while this runs is
	 * what the publishes cost them */
	uint64_t agent0 = total_cpu_ns(agents, nagents), client0 = total_cpu_ns(clients, nclients);
	uint64_t unused;
	if (current_version(&out->hist0, &unused) < 0)
		goto out;
	for (unsigned k = 0; k < total; k++) {
		uint64_t rev, t0, t1, f, l;
		if (publish(&rev, &t0, &t1) < 0)
			goto out;
		/* one publish, one revision: unless something else writes the store */
		if (rev - atomic_load(&sh->base_rev) > sh->span) {
			fprintf(stderr, "bench/publish: revision %llu after %u publishes: does something "
				"else write the store?\n", (unsigned long long)rev, k + 1);
			goto out;
		}
		if (wait_round(sh, rev, &f, &l) < 0)
			goto out;
		if (k >= WARMUP) {
			unsigned j = k - WARMUP;
			all[j] = (double)(l - t0);
			first[j] = (double)(f - t0);
			commit[j] = (double)(t1 - t0);
		}
		sleep_ns((uint64_t)PAUSE_MS * 1000000u);
	}
	if (current_version(&out->hist1, &unused) < 0)
		goto out;
	double per = (double)total * sh->nclients;
	out->agent_cpu = (double)(total_cpu_ns(agents, nagents) - agent0) / per;
	out->client_cpu = (double)(total_cpu_ns(clients, nclients) - client0) / per;
	unsigned n = out->rounds;
	out->all_med = quantile(all, n, 0.5);
	out->all_p99 = quantile(all, n, 0.99);
	out->all_max = all[n - 1]; /* sorted by quantile() */
	out->first_med = quantile(first, n, 0.5);
	out->commit_med = quantile(commit, n, 0.5);
	out->commit_p99 = quantile(commit, n, 0.99);
	rc = 0;
out:
	free(all);
	free(first);
	free(commit);
	return rc;
}

static int run_n(struct nresult *out, long poll_us, char *notes, size_t noteslen)
{
	unsigned n = out->n;
	if (inotify_fit(n, notes, noteslen, out->why, sizeof out->why) < 0) {
		out->skipped = 1;
		fprintf(stderr, "bench/publish: N = %u %s\n", n, out->why);
		return 0;
	}
	char err[512];
	uint64_t rev;
	unsigned span = WARMUP + out->rounds + 16;
	size_t size = sizeof(struct shared) + (size_t)n * span * sizeof(uint64_t);
	int shmfd = memfd_create("bench-publish", MFD_CLOEXEC);
	struct shared *sh = MAP_FAILED;
	if (shmfd < 0 || ftruncate(shmfd, (off_t)size) < 0 ||
	    (sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, shmfd, 0)) == MAP_FAILED) {
		perror("bench/publish: shared memory");
		if (shmfd >= 0)
			close(shmfd);
		return -1;
	}
	int rc = -1;
	sh->nclients = n;
	sh->span = span;
	atomic_store(&sh->base_rev, UINT64_MAX);
	if (gov_store_revision(store, &rev, err, sizeof err) < 0) {
		fprintf(stderr, "bench/publish: %s\n", err);
		goto out;
	}
	atomic_store(&sh->init_rev, rev);
	fprintf(stderr, "bench/publish: N = %u: starting %u agents and programs\n", n, n);
	for (unsigned i = 0; i < n; i++)
		if ((agents[nagents++] = start_agent(i)) < 0)
			goto out;
	if (wait_agents(n) < 0)
		goto out;
	char pid0[16];
	snprintf(pid0, sizeof pid0, "%d", (int)agents[0]);
	unsigned held = inotify_of(pid0);
	if (held)
		inotify_per_agent = held;
	for (unsigned i = 0; i < n; i++)
		if ((clients[nclients++] = start_client(i, shmfd, poll_us)) < 0)
			goto out;
	if (wait_clients(sh, n) < 0)
		goto out;
	/* a moment for start-up work (the agents' and programs' first tables,
	 * page faults) to settle before the first publish */
	sleep_ns(200000000u);
	atomic_store(&sh->base_rev, rev);
	fprintf(stderr, "bench/publish: N = %u: %u rounds (+%d warm-up), %d ms apart\n",
		n, out->rounds, WARMUP, PAUSE_MS);
	if (measure(sh, out) < 0)
		goto out;
	rc = 0;
out:
	atomic_store(&sh->stop, 1);
	stop_all(clients, &nclients);
	stop_all(agents, &nagents);
	munmap(sh, size);
	close(shmfd);
	if (inotify_saved >= 0) {
		write_inotify_limit(inotify_saved);
		inotify_saved = -1;
	}
	return rc;
}

/* ---- the report ------------------------------------------------------- */

static const char *fs_name(const char *path)
{
	struct statfs s;
	if (statfs(path, &s) < 0)
		return "?";
	switch ((unsigned long)s.f_type) {
	case 0xEF53: return "ext4";
	case 0x01021994: return "tmpfs";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x794c7630: return "overlayfs";
	default: return "another file system";
	}
}

static void print_report(FILE *f, const struct nresult *res, unsigned nres, long poll_us,
			 const char *command, const char *store_fs, const char *notes)
{
	fprintf(f, "## bench/publish: publish -> applied in N running agents\n\n");
	bench_machine_line(f, command);
	fprintf(f, "\nEach round publishes one new version of one verdict rule (alternately trace "
		   "and deny, naming no resource, so it is routed to every agent) in one transaction, "
		   "writing what `govctl rule publish` writes, to a `sqlite:` store on %s (a temp "
		   "dir; every commit fsynced). N agents (`govagent --store --spin-us 0`, one resource "
		   "each) each serve one governed program. t0 is taken just before the transaction; "
		   "**all N** is when the last of the N programs had the new decision table in force, "
		   "**first** when the first had; **commit** is the transaction alone, which includes "
		   "the store waking its watchers (it writes the revision file they watch), so with "
		   "many agents on few CPUs it also includes waiting for a CPU behind the agents it "
		   "woke. **CPU per publish** is the agents' (the programs') CPU time during the "
		   "rounds divided by publishes and by N: reading the store, building and sending "
		   "the table (applying it). **versions in the store** is the rule's history before "
		   "and after the rounds, for comparing runs. %d warm-up rounds, then the rounds counted, %d ms apart "
		   "so that agents and programs sleep when a publish comes; p99 is nearest-rank "
		   "(the ⌈0.99 n⌉-th smallest of n rounds).\n\n",
		store_fs, WARMUP, PAUSE_MS);
	if (poll_us > 0)
		fprintf(f, "Programs noticed a new table by polling `govrt_stats().table_rev` every %ld µs, "
			   "which adds up to that, plus the sleep's overshoot, to each program's time.\n",
			poll_us);
	else
		fprintf(f, "Programs noticed a new table by sleeping on govrt's own debug line "
			   "(`GOV_LOG=debug`, stderr on a pipe) and confirming with "
			   "`govrt_stats().table_rev`: one pipe write and one thread wake-up on top of "
			   "the application itself, a few µs on an idle CPU, and no CPU between rounds.\n");
	if (notes[0])
		fprintf(f, "\n%s\n", notes);
	fprintf(f, "\n| agents N | rounds | all N: median ms | all N: p99 ms | all N: max ms "
		   "| first: median ms | commit: median ms | commit: p99 ms "
		   "| CPU per publish: agent µs | program µs | versions in the store |\n");
	fprintf(f, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	const struct nresult *target = NULL;
	for (unsigned i = 0; i < nres; i++) {
		const struct nresult *r = &res[i];
		if (r->skipped) {
			fprintf(f, "| %u | – | %s | | | | | | | | |\n", r->n, r->why);
			continue;
		}
		if (r->n == TARGET_N)
			target = r;
		fprintf(f, "| %u | %u | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.0f | %.0f | %llu–%llu |\n",
			r->n, r->rounds, r->all_med / 1e6, r->all_p99 / 1e6, r->all_max / 1e6,
			r->first_med / 1e6, r->commit_med / 1e6, r->commit_p99 / 1e6,
			r->agent_cpu / 1e3, r->client_cpu / 1e3,
			(unsigned long long)r->hist0, (unsigned long long)r->hist1);
	}
	if (target)
		fprintf(f, "\nTarget: median <= 1 ms for N = %d: %s (%.3f ms)\n\n", TARGET_N,
			target->all_med <= TARGET_NS ? "met" : "missed", target->all_med / 1e6);
	else
		fprintf(f, "\nTarget: median <= 1 ms for N = %d: not measured in this run\n\n", TARGET_N);
}

struct report {
	const struct nresult *res;
	unsigned nres;
	long poll_us;
	const char *command, *store_fs, *notes;
};

static void report_body(FILE *f, void *arg)
{
	const struct report *r = arg;
	print_report(f, r->res, r->nres, r->poll_us, r->command, r->store_fs, r->notes);
}

/* ---- main ------------------------------------------------------------- */

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--quick] [--markdown FILE] [--max-agents N] [--poll-us N]\n"
		"  --quick         a few rounds only, for a fast check\n"
		"  --markdown FILE replace this benchmark's section of FILE (BENCHMARKS.md)\n"
		"  --max-agents N  largest N: runs N = 1, 10, 100 up to it, and N itself (1..%d)\n"
		"  --poll-us N     programs poll table_rev every N µs instead of sleeping on\n"
		"                  govrt's debug line\n",
		argv0, MAX_AGENTS);
}

static long num_arg(const char *v, long min, long max)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	return errno || !*v || *end || x < min || x > max ? -1 : x;
}

int main(int argc, char **argv)
{
	if (argc == 7 && strcmp(argv[1], "--client") == 0)
		return client_main(argv);
	const char *markdown = NULL;
	int quick = 0;
	long max_agents = 100, poll_us = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--markdown") == 0 && i + 1 < argc) {
			markdown = argv[++i];
		} else if (strcmp(argv[i], "--quick") == 0) {
			quick = 1;
		} else if (strcmp(argv[i], "--max-agents") == 0 && i + 1 < argc &&
			   (max_agents = num_arg(argv[++i], 1, MAX_AGENTS)) > 0) {
		} else if (strcmp(argv[i], "--poll-us") == 0 && i + 1 < argc &&
			   (poll_us = num_arg(argv[++i], 1, 1000000)) > 0) {
		} else {
			usage(argv[0]);
			return 1;
		}
	}
	if (getenv("GOV_RESOURCE")) {
		/* this process publishes and must not be governed itself; govrt
		 * read its environment before main, so start again without it */
		unsetenv("GOV_RESOURCE");
		execv("/proc/self/exe", argv);
		perror("execv");
		return 1;
	}
	ssize_t len = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
	if (len <= 0) {
		perror("bench/publish: /proc/self/exe");
		return 1;
	}
	self_path[len] = 0;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	unsigned sizes[4], nsizes = 0;
	static const unsigned std_sizes[] = { 1, 10, 100 };
	for (unsigned i = 0; i < 3; i++)
		if (std_sizes[i] <= (unsigned)max_agents)
			sizes[nsizes++] = std_sizes[i];
	if (sizes[nsizes - 1] != (unsigned)max_agents)
		sizes[nsizes++] = (unsigned)max_agents;
	agents = calloc((size_t)max_agents, sizeof *agents);
	clients = calloc((size_t)max_agents, sizeof *clients);
	if (!agents || !clients || check_texts() < 0)
		return 1;

	char dir[] = "/tmp/govbench-publish.XXXXXX";
	if (!mkdtemp(dir)) {
		perror("bench/publish: mkdtemp");
		return 1;
	}
	snprintf(run_dir, sizeof run_dir, "%s", dir);
	atexit(cleanup);
	snprintf(store_url, sizeof store_url, "sqlite:%s/store.db", run_dir);
	char err[512];
	uint64_t rev, t0, t1;
	if (gov_store_open(store_url, &store, err, sizeof err) < 0) {
		fprintf(stderr, "bench/publish: %s\n", err);
		return 1;
	}
	/* version 1 (trace), in force in every agent from its start */
	next_text = text_trace;
	if (publish(&rev, &t0, &t1) < 0)
		return 1;

	struct nresult res[4];
	char notes[1024] = "";
	int rc = 0;
	memset(res, 0, sizeof res);
	for (unsigned i = 0; i < nsizes && !rc; i++) {
		res[i].n = sizes[i];
		res[i].rounds = quick ? (sizes[i] >= 100 ? 10 : 30) : (sizes[i] >= 100 ? 200 : 500);
		rc = run_n(&res[i], poll_us, notes, sizeof notes);
		if (interrupted)
			rc = -1;
	}
	const char *store_fs = fs_name(run_dir);
	gov_store_close(store);
	if (rc < 0) {
		fprintf(stderr, "bench/publish: %s; no report\n", interrupted ? "interrupted" : "failed");
		return 1;
	}
	/* `make bench` runs it with --markdown only; anything else is said as run */
	char command[1024] = "make bench";
	if (!markdown || argc != 3) {
		size_t o = (size_t)snprintf(command, sizeof command, "%s", argv[0]);
		for (int i = 1; i < argc && o < sizeof command; i++)
			if (strcmp(argv[i], "--markdown") == 0)
				i++;
			else
				o += (size_t)snprintf(command + o, sizeof command - o, " %s", argv[i]);
	}
	print_report(stdout, res, nsizes, poll_us, command, store_fs, notes);
	struct report rep = { res, nsizes, poll_us, command, store_fs, notes };
	if (markdown && bench_write_section(markdown, "bench/publish", report_body, &rep) < 0) {
		fprintf(stderr, "bench/publish: cannot write %s: %s\n", markdown, strerror(errno));
		return 1;
	}
	return 0;
}
