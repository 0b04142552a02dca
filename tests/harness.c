/* tests/harness.c - real agents for the tests (tests/harness.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "gov/region.h"
#include "gov/wire.h"
#include "gov/xcall.h"
#include "internal.h"
#include "harness.h"
#include "xcall_io.h"

long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	const char *dir = getenv("GOV_RUN_DIR");
	if (getenv("GOV_TEST_KEEP")) {          /* for debugging: logs stay */
		if (dir && getenv("GOV_TEST_OWNER") && atoi(getenv("GOV_TEST_OWNER")) == getpid())
			fprintf(stderr, "# GOV_TEST_KEEP: run directory %s kept\n", dir);
		return;
	}
	if (getenv("GOV_TEST_OWNER") && dir && strncmp(dir, "/tmp/govtest.", 13) == 0 &&
	    atoi(getenv("GOV_TEST_OWNER")) == getpid())
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void harness_reexec(char **argv, const char *resource, const char *const env[])
{
	if (getenv("GOV_TEST_CHILD")) {
		char pid[16];
		snprintf(pid, sizeof pid, "%d", (int)getpid());
		setenv("GOV_TEST_OWNER", pid, 1);
		atexit(cleanup);
		return;
	}
	char tmpl[] = "/tmp/govtest.XXXXXX";
	if (!mkdtemp(tmpl) || chmod(tmpl, 0777) < 0) {
		perror("mkdtemp");
		exit(1);
	}
	setenv("GOV_RUN_DIR", tmpl, 1);
	if (resource)
		setenv("GOV_RESOURCE", resource, 1);
	for (int i = 0; env && env[i]; i++)
		putenv((char *)env[i]);
	setenv("GOV_TEST_CHILD", "1", 1);
	execv("/proc/self/exe", argv);
	perror("execv");
	exit(1);
}

const char *harness_run_dir(void)
{
	return getenv("GOV_RUN_DIR");
}

int harness_serve_records(const char *env, int *fd)
{
	*fd = open(getenv(env), O_WRONLY | O_APPEND | O_CREAT, 0644);
	char err[256];
	if (*fd < 0 || govrt_serve_start(NULL, err, sizeof err) < 0) {
		fprintf(stderr, "serve: %s\n", *fd < 0 ? strerror(errno) : err);
		return 1;
	}
	for (;;)
		pause();
}

int harness_edge_connect(const char *resource)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s.edge", harness_run_dir(), resource);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int harness_edge_hello(const char *resource, const char *name, uint64_t epoch,
		       struct gov_xcall_hdr *welcome)
{
	int fd = harness_edge_connect(resource);
	if (fd < 0)
		return -1;
	struct gov_xcall_hdr h;
	gov_xcall_init(&h, GOV_XCALL_HELLO);
	h.caller_epoch = epoch;
	h.proto = GOV_PROTO_UNIX;
	snprintf(h.name, sizeof h.name, "%s", name);
	if (gov_xcall_send(fd, 1, &h, NULL) != 0 ||
	    gov_xcall_recv(fd, 1, &h, NULL, 0, 2000, NULL, 0) != 1 || h.type != GOV_XCALL_WELCOME ||
	    h.status != 0) {
		close(fd);
		return -1;
	}
	if (welcome)
		*welcome = h;
	return fd;
}

struct harness_tally harness_tally(long (*fn)(long), long from, long to)
{
	struct harness_tally t = { 0, 0, 0 };
	for (long seq = from; seq < to; seq++) {
		errno = 0;
		long rv = fn(seq);
		if (rv == 0)
			t.ok++;
		else if (rv == -1 && errno == EAGAIN)
			t.again++;
		else
			t.other++;
	}
	return t;
}

void harness_file(char *buf, size_t len, const char *name, const char *text)
{
	snprintf(buf, len, "%s/%s", harness_run_dir(), name);
	if (!text)
		return;
	FILE *f = fopen(buf, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(buf);
		exit(1);
	}
}

static void path_of(char *buf, size_t len, const char *resource, const char *suffix)
{
	snprintf(buf, len, "%s/%s.%s", harness_run_dir(), resource, suffix);
}

static void write_text(const char *path, const char *text)
{
	char tmp[512];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
		perror(path);
		exit(1);
	}
}

static int can_connect(const char *resource)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	path_of(sa.sun_path, sizeof sa.sun_path, resource, "sock");
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	close(fd);
	return r == 0;
}

pid_t agent_start(const char *resource, const char *rules, const char *const extra[])
{
	char rules_path[512], log_path[512];
	path_of(rules_path, sizeof rules_path, resource, "yaml");
	path_of(log_path, sizeof log_path, resource, "log");
	if (rules)
		write_text(rules_path, rules);
	const char *argv[32] = { GOVAGENT_PATH, "--resource", resource };
	int n = 3;
	if (rules) {
		argv[n++] = "--rules";
		argv[n++] = rules_path;
	}
	for (int i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = extra[i];
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 2);
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(devnull, 1);
		unsetenv("GOV_RESOURCE"); /* the agent is not a governed program */
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (long long end = now_ms() + 5000; now_ms() < end;) {
		if (can_connect(resource))
			return pid;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "govagent for %s exited at start\n", resource);
			return -1;
		}
		usleep(2000);
	}
	fprintf(stderr, "govagent for %s did not start\n", resource);
	return -1;
}

int agent_stop(pid_t pid)
{
	int st = -1;
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	return st;
}

void agent_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

void agent_set_rules(pid_t pid, const char *resource, const char *rules)
{
	char path[512];
	path_of(path, sizeof path, resource, "yaml");
	write_text(path, rules);
	kill(pid, SIGHUP);
}

int run_capture(char *const argv[], char **out)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	for (ssize_t n; (n = read(p[0], buf + len, cap - len - 1)) > 0;) {
		len += (size_t)n;
		if (cap - len < 2048)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = 0;
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	*out = buf;
	return st;
}

long agent_stat(const char *resource, const char *key)
{
	char *const argv[] = { GOVAGENT_PATH, "--stats", (char *)resource, NULL };
	char *out, pat[64];
	int st = run_capture(argv, &out);
	long v = -1;
	snprintf(pat, sizeof pat, "\"%s\":", key);
	char *p = strstr(out, pat);
	if (st == 0 && p)
		v = strtol(p + strlen(pat), NULL, 10);
	free(out);
	return v;
}

char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	for (size_t n; (n = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
		len += n;
		if (cap - len < 2048)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = 0;
	fclose(f);
	return buf;
}

/* 1 if every thread of pid is stopped, 0 if one is not (or none is seen). */
static int all_stopped(pid_t pid)
{
	char dir[64], path[352], buf[512];
	snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int seen = 0, stopped = 1;
	for (struct dirent *e; stopped && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = 0;
		char *close = strrchr(buf, ')');
		if (!close)
			continue; /* a thread that exited meanwhile */
		seen = 1;
		stopped = close[1] == ' ' && (close[2] == 'T' || close[2] == 't');
	}
	closedir(d);
	return seen && stopped;
}

int wait_stopped(pid_t pid)
{
	for (int i = 0; i < 2000; i++) {
		if (all_stopped(pid))
			return 0;
		usleep(1000);
	}
	return -1;
}

int agent_log_has(const char *resource, const char *needle, int timeout_ms)
{
	for (long long end = now_ms() + timeout_ms; now_ms() < end; usleep(10000)) {
		char *log = agent_log_text(resource);
		int found = log && strstr(log, needle);
		free(log);
		if (found)
			return 1;
	}
	return 0;
}

char *agent_log_text(const char *resource)
{
	char path[512];
	path_of(path, sizeof path, resource, "log");
	char *t = read_file(path);
	return t ? t : strdup("");
}

pid_t serving_start(char *self, const char *resource, const char *exports)
{
	pid_t pid = fork();
	if (pid == 0) {
		setenv("GOV_RESOURCE", resource, 1);
		setenv("GOV_EXPORTS", exports, 1);
		execl("/proc/self/exe", self, "serve", (char *)NULL);
		_exit(127);
	}
	char needle[160];
	snprintf(needle, sizeof needle, "event=server_connected resource=%s pid=%d ", resource,
		 (int)pid);
	for (long long end = now_ms() + 5000; now_ms() < end; usleep(10000)) {
		char *log = agent_log_text(resource);
		int found = log && strstr(log, needle);
		free(log);
		if (found)
			return pid;
	}
	fprintf(stderr, "# serving process %d of %s did not connect in 5 s\n", (int)pid, resource);
	return pid;
}

int wait_connected(int want, int timeout_ms)
{
	for (long long end = now_ms() + timeout_ms; now_ms() < end; usleep(1000))
		if (govrt_connected() == want)
			return 0;
	return govrt_connected() == want ? 0 : -1;
}

/* noinline: inlined, gcc 12 takes *out = o for a dangling pointer */
static __attribute__((noinline)) int govctl_argv(char **out, char *const argv[])
{
	char *o = NULL;
	int st = run_capture(argv, &o);
	if (out)
		*out = o;
	else
		free(o);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int govctl_run(char **out, const char *a1, const char *a2, const char *a3)
{
	char *const argv[] = { GOVCTL_PATH, (char *)a1, (char *)a2, (char *)a3, NULL };
	return govctl_argv(out, argv);
}

int govctl_call(char **out, const char *arg, ...)
{
	char *argv[16] = { GOVCTL_PATH };
	va_list ap;
	va_start(ap, arg);
	for (int n = 1; arg && n < 15; arg = va_arg(ap, const char *))
		argv[n++] = (char *)arg;
	va_end(ap);
	return govctl_argv(out, argv);
}

void store_env(void)
{
	char buf[600];
	snprintf(buf, sizeof buf, "sqlite:%s/store.db", harness_run_dir());
	setenv("GOV_STORE", buf, 1);
	snprintf(buf, sizeof buf, "%s/cache", harness_run_dir());
	setenv("GOV_CACHE_DIR", buf, 1);
}

int store_agent_start(const char *resource)
{
	store_env();
	govctl_run(NULL, "init", NULL, NULL);
	if (govctl_run(NULL, "agent", "start", resource) != 0)
		return -1;
	return wait_connected(1, 3000);
}

unsigned long long rule_publish(const char *text)
{
	char path[600], *out = NULL;
	snprintf(path, sizeof path, "%s/rule.yaml", harness_run_dir());
	FILE *f = fopen(path, "w");
	if (!f)
		return 0;
	fputs(text, f);
	fclose(f);
	unsigned long long rev = 0;
	if (govctl_run(&out, "rule", "publish", path) == 0 && out && strstr(out, "at revision "))
		rev = strtoull(strstr(out, "at revision ") + 12, NULL, 10);
	else
		fprintf(stderr, "# publish failed: %s\n", out ? out : "");
	free(out);
	return rev;
}

int harness_raw_connect(const char *resource)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s.sock", harness_run_dir(), resource);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int harness_raw_hello(int fd, const char *resource, struct gov_msg *welcome, int *region_fd)
{
	struct gov_msg m = { .magic = GOV_MSG_MAGIC, .version = GOV_WIRE_VERSION,
			     .type = GOV_MSG_HELLO, .role = GOV_ROLE_PROCESS, .pid = getpid() };
	snprintf(m.name, sizeof m.name, "%s", resource);
	if (send(fd, &m, sizeof m, 0) != sizeof m)
		return -1;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { welcome, sizeof *welcome };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof cbuf };
	*region_fd = -1;
	if (recvmsg(fd, &mh, 0) != sizeof *welcome)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(region_fd, CMSG_DATA(c), sizeof(int));
	return 0;
}

int harness_post(struct gov_region_hdr *h, const void *frame, uint32_t len, uint64_t seq,
		struct gov_wire_rep *rep, const char **text)
{
	struct gov_slot *s = gov_region_slot(h, 0);
	uint32_t cap = h->slot_size - (uint32_t)sizeof *s;
	s->owner_tid = (uint32_t)getpid();
	memcpy(s->payload, frame, len < cap ? len : 0); /* an oversized len is a lie to test */
	s->len = len;
	s->seq = seq;
	__atomic_store_n(&h->slots_used, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&s->state, GOV_SLOT_REQUEST, __ATOMIC_SEQ_CST);
	if (__atomic_exchange_n(&h->agent_sleeping, 0, __ATOMIC_SEQ_CST))
		gov_futex_wake(&h->agent_sleeping, 1);
	for (long long end = now_ms() + 2000; now_ms() < end;)
		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == GOV_SLOT_REPLY) {
			char err[200];
			int r = gov_wire_decode_rep(&s->rep, s->payload, cap, seq, rep, text, err,
						    sizeof err);
			s->state = GOV_SLOT_IDLE;
			s->owner_tid = 0;
			return r;
		}
	return -1;
}
