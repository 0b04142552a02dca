/* runtime/agent/main.c - govagent, the agent of one resource.
 *
 *   govagent --resource NAME [--rules FILE] [options]   serve NAME
 *   govagent --stats NAME                               print its counts (JSON)
 *
 * The daemon listens on <run dir>/NAME.sock (SOCK_SEQPACKET), checks each
 * process's credentials (SO_PEERCRED), gives it a shared region and a worker
 * thread (serve.c), reloads its rules on SIGHUP (or follows the store's
 * routes to it, and its tasklets' disabled state) and leaves cleanly on
 * SIGTERM or SIGINT. One thread (this one) handles the socket and signals
 * with epoll; workers only touch their region. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "gov/store_keys.h"
#include "gov/wire.h"
#include "agent.h"
#include "../xcall_io.h"
#include "edge.h"
#include "tasklet.h"
#include "../../rules/store.h"

enum { EXIT_USAGE = 1, EXIT_START = 2 };

static const char usage[] =
	"usage: govagent --resource NAME [--rules FILE] [options]\n"
	"       govagent --stats NAME\n"
	"\n"
	"The agent of resource NAME: governed processes of NAME connect to it at\n"
	"<run dir>/NAME.sock and it answers their governed calls from its rules.\n"
	"\n"
	"  -r, --resource NAME   resource to serve (1-63 of A-Z a-z 0-9 . _ -)\n"
	"  -s, --store URL       take rules from the rule store (sqlite:PATH, default from\n"
	"                        GOV_STORE) and apply every change live\n"
	"  -f, --rules FILE      or take them from a rule file (YAML, docs/rules.md),\n"
	"                        reloaded on SIGHUP\n"
	"      --run-dir DIR     where sockets and pid files live (default: GOV_RUN_DIR,\n"
	"                        else $XDG_RUNTIME_DIR/rhodes, else /tmp/rhodes-UID)\n"
	"      --spin-us N       spin N microseconds for the next call before sleeping\n"
	"                        (default 50; 0 = sleep at once)\n"
	"      --slots N         slots per process, i.e. calls in flight at once (default 64)\n"
	"      --slot-size N     bytes per slot, the largest frame + 64 (default 135168)\n"
	"      --allow-uid UID   also accept processes of UID (default: only the agent's uid)\n"
	"      --stats NAME      print the statistics of NAME's running agent as JSON and exit\n"
	"      --edge-tcp HOST:PORT  also take calls from other agents over tcp (port 0: any;\n"
	"                        the address is written to <run dir>/NAME.tcp)\n"
	"      --edge-key FILE   the key tcp links to and from other agents prove they hold\n"
	"                        (16-4096 bytes, mode 600; docs/xcall.md \"Who may call\")\n"
	"      --resend-keep-s N  forget a caller agent silent for N s: its resends after\n"
	"                        that would run again (default 600; docs/xcall.md)\n"
	"      --forward-timeout-ms N  a forwarded call with no answer in N ms fails with\n"
	"                        ETIMEDOUT (default 1500; keep it below the callers' GOV_TIMEOUT_MS)\n"
	"      --no-direct       keep every call on the agents' path: neither ask for nor give\n"
	"                        direct grants on shm edges (docs/xcall.md \"Direct calls\")\n"
	"  -h, --help            this text\n"
	"\n"
	"example:\n"
	"  govagent --resource billing --rules rules/examples/deny-unlink.yaml &\n"
	"  GOV_RESOURCE=billing ./my-governed-program\n"
	"  govagent --stats billing\n"
	"\n"
	"exit status: 0 stopped cleanly, 1 bad usage, 2 could not start (socket in use,\n"
	"bad rules file, no run directory), 3 --stats found no agent.\n";

static struct agent A;
static const char *store_url;      /* --store: rules come from the store */
static struct gov_store *store;
/* /routes/<resource>/, /routes/STAR/ and /tasklets/<resource>/ */
static struct gov_watch *watch[3];
static char sock_path[PATH_MAX], pid_path[PATH_MAX];

static long parse_num(const char *opt, const char *v, long min, long max)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || !*v || *end || x < min || x > max) {
		fprintf(stderr, "govagent: %s %s: expected a number in %ld..%ld\n", opt, v, min, max);
		exit(EXIT_USAGE);
	}
	return x;
}

/* The objects of the dynamic entries from first on, which came from
 * version `version` of rule `name`: named NAME/ENTRY, read and loaded. */
static void load_objects(struct agent_rules *out, unsigned first, const char *name,
			 uint64_t version, struct agent_rules *old)
{
	struct agent_dyn *grown = realloc(out->dyn, (out->v.ndyn + 1) * sizeof *grown);
	if (!grown)
		return;
	out->dyn = grown;
	memset(out->dyn + first, 0, (out->v.ndyn + 1 - first) * sizeof *grown);
	for (unsigned i = first; i < out->v.ndyn; i++) {
		struct gov_verdict_dyn *e = &out->v.dyn[i];
		const char *entry = strchr(e->spec.name, '/');
		char full[sizeof e->spec.name], key[300], why[512];
		snprintf(full, sizeof full, "%.31s/%.31s", name, entry ? entry + 1 : e->spec.name);
		memcpy(e->spec.name, full, sizeof full);
		snprintf(key, sizeof key, GOV_RULE_OBJ_FMT, name, (unsigned long long)version, e->entry);
		struct gov_kv obj;
		if (gov_store_get(store, key, &obj, why, sizeof why) != 0) {
			agent_log("error", "rule_unreadable", "rule=%s key=%s error=\"%s\"", full, key,
				  why[0] ? why : "no object stored");
			continue;
		}
		agent_dyn_load(out, i, obj.value, obj.len, old);
		gov_kv_clear(&obj);
	}
}

/* One rule routed to this agent (gov_store_routed: as govctl maintains
 * the routes). A version that cannot be read or does not parse (it passed
 * govctl's checks, so something else wrote the store) is logged and left
 * out. */
struct loading {
	struct agent_rules *out, *old;
};

static int load_routed(void *ctx, const char *name, uint64_t version, int r,
		       const struct gov_kv *text, const char *why)
{
	struct loading *l = ctx;
	char origin[256], bad[512];
	snprintf(origin, sizeof origin, "%s version %llu", name, (unsigned long long)version);
	if (r != 0) {
		agent_log("error", "rule_unreadable", "rule=\"%s\" error=\"%s\"", origin, why);
		return 0;
	}
	struct gov_ruledoc d;
	if (gov_ruledoc_parse((char *)text->value, text->len, origin, &d, bad, sizeof bad) < 0) {
		agent_log("error", "rule_invalid", "error=\"%s\"", bad);
		return 0;
	}
	unsigned first = l->out->v.ndyn;
	gov_verdicts_append(&l->out->v, &d, A.cfg.resource);
	edge_rules_add(&l->out->edges, &d, A.cfg.resource);
	gov_ruledoc_free(&d);
	load_objects(l->out, first, name, version, l->old);
	return 0;
}

static int load_from_store(struct agent_rules *out, struct agent_rules *old, char *err, size_t errlen)
{
	uint64_t rev = 0;
	struct loading l = { out, old };
	/* the routes, the versions, their objects and the resources: one
	 * batch of reads, so one snapshot (and on sqlite one transaction) */
	if (gov_store_read_begin(store, err, errlen) < 0)
		return -1;
	if (gov_store_routed(store, A.cfg.resource, load_routed, &l, &rev, err, errlen) < 0) {
		gov_store_read_end(store);
		return -1;
	}
	/* registered exports name the callee of a forward without `to:` */
	struct gov_kv *res;
	size_t nres;
	uint64_t res_rev;
	if (gov_store_list(store, GOV_KEY_RESOURCES, &res, &nres, &res_rev, err, errlen) == 0) {
		for (size_t i = 0; i < nres; i++)
			edge_rules_add_resource(&out->edges, (char *)res[i].value, res[i].len);
		gov_kv_free(res, nres);
	}
	gov_store_read_end(store);
	out->rev = rev;
	return 0;
}

/* old: the rules in force, whose unchanged dynamic rules are taken over
 * (and set to NULL there), or NULL at start. */
static int load_rules(struct agent_rules *out, struct agent_rules *old, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (store)
		return load_from_store(out, old, err, errlen);
	if (!A.cfg.rules_path)
		return 0;
	struct gov_ruledoc d;
	if (gov_ruledoc_load(A.cfg.rules_path, &d, err, errlen) < 0)
		return -1;
	int rc = gov_verdicts_append(&out->v, &d, A.cfg.resource) |
		 edge_rules_add(&out->edges, &d, A.cfg.resource);
	gov_ruledoc_free(&d);
	if (rc < 0) {
		snprintf(err, errlen, "%s: out of memory", A.cfg.rules_path);
		gov_verdicts_free(&out->v);
		edge_rules_free(&out->edges);
		return -1;
	}
	return agent_dyn_load_files(out, A.cfg.rules_path, old);
}

static void reload(void)
{
	struct agent_rules fresh;
	char err[512];
	/* only this thread replaces A.rules: reading it unlocked is safe, and
	 * rules taken over stay in place until the swap below */
	struct agent_rules keep = A.rules;
	keep.dyn = A.rules.dyn ? malloc((A.rules.v.ndyn + 1) * sizeof *keep.dyn) : NULL;
	if (keep.dyn)
		memcpy(keep.dyn, A.rules.dyn, (A.rules.v.ndyn + 1) * sizeof *keep.dyn);
	int loaded = load_rules(&fresh, &keep, err, sizeof err);
	if (loaded < 0) {
		/* whatever fresh took over from keep is still in force */
		for (unsigned i = 0; fresh.dyn && i < fresh.v.ndyn; i++)
			for (unsigned k = 0; A.rules.dyn && k < A.rules.v.ndyn; k++)
				if (fresh.dyn[i].rule == A.rules.dyn[k].rule)
					fresh.dyn[i].rule = NULL;
		free(keep.dyn);
		agent_dyn_free(&fresh);
		gov_verdicts_free(&fresh.v);
		edge_rules_free(&fresh.edges);
		agent_log("error", "reload_failed", "resource=%s error=\"%s\" kept_rev=%llu",
			  A.cfg.resource, err, (unsigned long long)A.rules.rev);
		return;
	}
	pthread_rwlock_wrlock(&A.rules_lock);
	if (!store)
		fresh.rev = A.rules.rev + 1; /* a file has no revisions: count reloads */
	/* the old objects go (fresh has its own copies), before
	 * gov_verdicts_free forgets how many there were; rules fresh took over
	 * are NULL in keep, the rest go below, now that no worker runs them */
	for (unsigned i = 0; A.rules.dyn && i < A.rules.v.ndyn; i++)
		free(A.rules.dyn[i].obj);
	free(A.rules.dyn);
	gov_verdicts_free(&A.rules.v);
	edge_rules_free(&A.rules.edges);
	A.rules = fresh;
	agent_dyn_note_hashes(&A);
	pthread_rwlock_unlock(&A.rules_lock);
	edge_rules_changed(&A);
	for (unsigned i = 0; keep.dyn && i < keep.v.ndyn; i++)
		keep.dyn[i].obj = NULL;
	agent_dyn_free(&keep);
	pthread_mutex_lock(&A.clients_lock);
	for (struct client *c = A.clients; c; c = c->next)
		client_publish_table(&A, c);
	pthread_mutex_unlock(&A.clients_lock);
	agent_log("info", "rules_applied", "resource=%s rev=%llu rows=%u",
		  A.cfg.resource, (unsigned long long)fresh.rev, fresh.v.nrows);
}

/* A tasklet's state kept in the store (key /tasklets/<resource>/NAME, as
 * govctl tasklet disable and enable write it): present, the tasklet is
 * disabled. A key that names no tasklet is logged and left out. */
static void tasklet_state(const char *key, int disabled, const char *how)
{
	const char *name = key + strlen(GOV_KEY_TASKLETS) + strlen(A.cfg.resource) + 1;
	int r = tasklet_set_disabled(&A, name, disabled);
	if (r < 0)
		agent_log("error", "tasklet_state_invalid", "resource=%s key=\"%.200s\" error=\"%s\"",
			  A.cfg.resource, key, r == -EINVAL ? "not a tasklet name" : strerror(-r));
	else
		agent_log("info", disabled ? "tasklet_disabled" : "tasklet_enabled",
			  "resource=%s tasklet=%s source=%s", A.cfg.resource, name, how);
}

static void tasklet_prefix(char *buf, size_t len)
{
	snprintf(buf, len, GOV_KEY_TASKLETS "%s/", A.cfg.resource);
}

/* At start: the tasklets the store says are disabled, and the watch that
 * follows them from the revision listed. 0, or -1 with err. */
static int tasklet_states_load(char *err, size_t errlen)
{
	char prefix[GOV_NAME_MAX + 16];
	tasklet_prefix(prefix, sizeof prefix);
	struct gov_kv *items;
	size_t n;
	uint64_t rev = 0;
	if (gov_store_list(store, prefix, &items, &n, &rev, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		tasklet_state(items[i].key, 1, "store");
	gov_kv_free(items, n);
	return gov_store_watch(store, prefix, rev + 1, &watch[2], err, errlen);
}

static void follow_tasklet_states(void)
{
	struct gov_event *ev;
	char err[512];
	int n = gov_watch_next(watch[2], &ev, 0, err, sizeof err);
	if (n < 0)
		agent_log("error", "watch_failed", "resource=%s error=\"%s\"", A.cfg.resource, err);
	for (int i = 0; i < n; i++)
		tasklet_state(ev[i].kv.key, ev[i].kind == GOV_EVENT_PUT, "store");
	if (n > 0)
		gov_events_free(ev, n);
}

/* A route to this agent changed: take the events (they only say that
 * something changed; the rules are rebuilt from the routes as a whole). */
static void follow_store(void)
{
	int changed = 0;
	for (int w = 0; w < 2; w++) {
		struct gov_event *ev;
		char err[512];
		int n = gov_watch_next(watch[w], &ev, 0, err, sizeof err);
		if (n < 0) {
			agent_log("error", "watch_failed", "resource=%s error=\"%s\"", A.cfg.resource, err);
			continue;
		}
		if (n > 0)
			gov_events_free(ev, n);
		changed |= n > 0;
	}
	if (changed)
		reload();
}

static int uid_allowed(uid_t uid)
{
	if (uid == geteuid())
		return 1;
	for (int i = 0; i < A.cfg.nallow; i++)
		if (A.cfg.allow_uid[i] == uid)
			return 1;
	return 0;
}

static void send_welcome(int fd, int status, const char *text, int region_fd, uint64_t size)
{
	struct gov_msg m = { .magic = GOV_MSG_MAGIC, .version = GOV_WIRE_VERSION,
			     .type = GOV_MSG_WELCOME, .status = status,
			     .epoch = A.epoch, .size = size };
	snprintf(m.name, sizeof m.name, "%s", A.cfg.resource);
	snprintf(m.text, sizeof m.text, "%s", text ? text : "");
	int r = region_fd >= 0 ? gov_fd_send(fd, &m, sizeof m, region_fd)
		: send(fd, &m, sizeof m, MSG_NOSIGNAL) == (ssize_t)sizeof m ? 0 : -errno;
	if (r < 0)
		agent_log("warning", "send_failed", "error=\"%s\"", strerror(-r));
}

static void send_stats(int fd)
{
	char *json = agent_stats_json(&A);
	if (json) {
		ssize_t n = send(fd, json, strlen(json), MSG_NOSIGNAL);
		(void)n;
		free(json);
	}
}

/* A control HELLO whose text is a command (govctl tasklet): "tasklet VERB
 * NAME". Answered with one JSON packet, or a WELCOME that refuses with an
 * errno and why. An agent older than a command answers it with its
 * statistics, which govctl tells apart (docs/tasklet.md). */
static void control_command(int fd, const char *text)
{
	char noun[16], verb[16], name[GOV_NAME_MAX + 1], out[300], extra;
	int n = sscanf(text, "%15s %15s %64s %c", noun, verb, name, &extra);
	int e = EINVAL;
	if (n == 3 && strcmp(noun, "tasklet") == 0)
		e = tasklet_control(&A, verb, name, out, sizeof out);
	else
		snprintf(out, sizeof out, "unknown control command '%.100s' (tasklet flush|disable|"
			 "enable NAME)", text);
	if (e) {
		send_welcome(fd, e, out, -1, 0);
		return;
	}
	ssize_t r = send(fd, out, strlen(out), MSG_NOSIGNAL);
	(void)r;
}

/* A new connection: read HELLO, check who it is, then serve or refuse.
 * Returns the client to watch, or NULL (the fd is closed then). */
static struct client *accept_client(int lfd, int epfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct ucred cred;
	socklen_t clen = sizeof cred;
	struct gov_msg m;
	char why[200] = "";
	struct timeval tv = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	ssize_t n = recv(fd, &m, sizeof m, 0);
	const char *bad = n < 0 ? "length" : gov_msg_check(&m, (size_t)n);
	if (!bad && m.type != GOV_MSG_HELLO)
		bad = "type";
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		snprintf(why, sizeof why, "cannot read peer credentials: %s", strerror(errno));
	} else if (bad) {
		snprintf(why, sizeof why, "malformed hello: field %s is wrong", bad);
	} else if (!uid_allowed(cred.uid)) {
		snprintf(why, sizeof why,
			 "uid %u may not join resource %s (the agent runs as uid %u; see --allow-uid)",
			 (unsigned)cred.uid, A.cfg.resource, (unsigned)geteuid());
	} else if (m.role == GOV_ROLE_CONTROL && m.type == GOV_MSG_HELLO) {
		if (m.text[0])
			control_command(fd, m.text);
		else
			send_stats(fd);
		close(fd);
		return NULL;
	} else if (m.role == GOV_ROLE_SERVER && strcmp(m.name, A.cfg.resource) == 0) {
		/* it serves our exports (edge.c) */
		edge_add_server(&A, fd, cred.pid, m.size == GOV_XCALL_SERVE_SHARED);
		return NULL;
	} else if (m.role != GOV_ROLE_PROCESS) {
		snprintf(why, sizeof why, "malformed hello: field role is wrong");
	} else if (strcmp(m.name, A.cfg.resource) != 0) {
		snprintf(why, sizeof why, "this agent serves resource %s, not %s",
			 A.cfg.resource, m.name);
	}
	if (why[0]) {
		agent_log("warning", "refused", "resource=%s pid=%d uid=%d reason=\"%s\"",
			  A.cfg.resource, (int)cred.pid, (int)cred.uid, why);
		send_welcome(fd, EACCES, why, -1, 0);
		close(fd);
		return NULL;
	}
	struct client *c = client_create(&A, fd, cred.pid, cred.uid, why, sizeof why);
	if (c)
		c->direct = (m.flags & GOV_HELLO_DIRECT) != 0;
	if (!c || client_start(&A, c) < 0) {
		agent_log("error", "client_failed", "pid=%d reason=\"%s\"", (int)cred.pid,
			  why[0] ? why : "cannot start a worker thread");
		send_welcome(fd, ENOMEM, why, -1, 0);
		if (c)
			client_stop(&A, c);
		close(fd);
		return NULL;
	}
	pthread_mutex_lock(&A.clients_lock);
	c->next = A.clients;
	A.clients = c;
	pthread_mutex_unlock(&A.clients_lock);
	send_welcome(fd, 0, NULL, c->region_fd, c->size);
	close(c->region_fd);
	c->region_fd = -1;
	edge_direct_send(c);
	tv.tv_sec = 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
	epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
	agent_log("info", "connected", "resource=%s pid=%d uid=%d", A.cfg.resource,
		  (int)c->pid, (int)c->uid);
	return c;
}

static void drop_client(struct client *c, int epfd)
{
	pthread_mutex_lock(&A.clients_lock);
	for (struct client **pp = &A.clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	agent_log("info", "disconnected", "resource=%s pid=%d calls=%llu", A.cfg.resource,
		  (int)c->pid, (unsigned long long)atomic_load(&c->calls));
	client_stop(&A, c);
	pthread_mutex_unlock(&A.clients_lock);
}

/* Binds the socket, refusing to steal it from a live agent. */
static int listen_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(sock_path) >= sizeof sa.sun_path) {
		fprintf(stderr, "govagent: socket path %s is too long for a unix socket\n", sock_path);
		return -1;
	}
	strcpy(sa.sun_path, sock_path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		fprintf(stderr, "govagent: an agent for %s already listens at %s\n",
			A.cfg.resource, sock_path);
		close(fd);
		return -1;
	}
	close(fd);
	unlink(sock_path); /* stale: its agent died */
	/* Bound under a temporary name and renamed into place once listening:
	 * a program that sees the socket appear can connect at once (between
	 * bind and listen it would be refused). */
	struct sockaddr_un tmp = { .sun_family = AF_UNIX };
	if (snprintf(tmp.sun_path, sizeof tmp.sun_path, "%s.%d", sock_path, (int)getpid()) >=
	    (int)sizeof tmp.sun_path) {
		fprintf(stderr, "govagent: socket path %s is too long for a unix socket\n", sock_path);
		return -1;
	}
	unlink(tmp.sun_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	mode_t old = umask(0);
	int ok = fd >= 0 && bind(fd, (struct sockaddr *)&tmp, sizeof tmp) == 0;
	umask(old);
	if (!ok || listen(fd, 128) < 0 || rename(tmp.sun_path, sock_path) < 0) {
		fprintf(stderr, "govagent: cannot listen at %s: %s\n", sock_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp.sun_path);
		return -1;
	}
	return fd;
}

static int write_pid_file(void)
{
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof tmp, "%s.tmp", pid_path);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 ||
	    rename(tmp, pid_path) < 0) {
		fprintf(stderr, "govagent: cannot write %s: %s\n", pid_path, strerror(errno));
		return -1;
	}
	return 0;
}

static int print_stats(const char *resource)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[PATH_MAX];
	if (!gov_resource_name_ok(resource) ||
	    gov_run_path(path, sizeof path, resource, "sock") < 0 || strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "govagent: --stats %s: not a resource name\n", resource);
		return EXIT_USAGE;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "govagent: no agent for %s at %s: %s\n", resource, path, strerror(errno));
		return 3;
	}
	struct gov_msg m = { .magic = GOV_MSG_MAGIC, .version = GOV_WIRE_VERSION,
			     .type = GOV_MSG_HELLO, .role = GOV_ROLE_CONTROL, .pid = getpid() };
	snprintf(m.name, sizeof m.name, "%s", resource);
	size_t cap = 1 << 20;
	char *buf = malloc(cap);
	ssize_t n = -1;
	if (buf && send(fd, &m, sizeof m, MSG_NOSIGNAL) == (ssize_t)sizeof m)
		n = recv(fd, buf, cap - 1, 0);
	close(fd);
	if (n <= 0) {
		fprintf(stderr, "govagent: the agent for %s sent no statistics\n", resource);
		free(buf);
		return 3;
	}
	if ((size_t)n == sizeof m && ((struct gov_msg *)buf)->magic == GOV_MSG_MAGIC) {
		fprintf(stderr, "govagent: the agent for %s refused: %s\n", resource,
			((struct gov_msg *)buf)->text);
		free(buf);
		return 3;
	}
	fwrite(buf, 1, (size_t)n, stdout);
	free(buf);
	return 0;
}

static void parse_args(int argc, char **argv)
{
	enum { O_RUN_DIR = 256, O_SPIN, O_SLOTS, O_SLOT_SIZE, O_ALLOW, O_STATS, O_EDGE_TCP, O_FWD_TIMEOUT, O_EDGE_KEY, O_RESEND_KEEP, O_NO_DIRECT };
	static const struct option opts[] = {
		{ "resource", required_argument, 0, 'r' },
		{ "rules", required_argument, 0, 'f' },
		{ "store", required_argument, 0, 's' },
		{ "run-dir", required_argument, 0, O_RUN_DIR },
		{ "spin-us", required_argument, 0, O_SPIN },
		{ "slots", required_argument, 0, O_SLOTS },
		{ "slot-size", required_argument, 0, O_SLOT_SIZE },
		{ "allow-uid", required_argument, 0, O_ALLOW },
		{ "stats", required_argument, 0, O_STATS },
		{ "edge-tcp", required_argument, 0, O_EDGE_TCP },
		{ "edge-key", required_argument, 0, O_EDGE_KEY },
		{ "resend-keep-s", required_argument, 0, O_RESEND_KEEP },
		{ "forward-timeout-ms", required_argument, 0, O_FWD_TIMEOUT },
		{ "no-direct", no_argument, 0, O_NO_DIRECT },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	A.cfg.nslots = 64;
	A.cfg.slot_size = 135168;
	A.cfg.spin_ns = 50000;
	for (int o; (o = getopt_long(argc, argv, "r:f:s:h", opts, NULL)) != -1;) {
		switch (o) {
		case 'r': A.cfg.resource = optarg; break;
		case 's': store_url = optarg; break;
		case 'f': A.cfg.rules_path = optarg; break;
		case O_RUN_DIR: setenv("GOV_RUN_DIR", optarg, 1); break;
		case O_SPIN: A.cfg.spin_ns = parse_num("--spin-us", optarg, 0, 10000000) * 1000; break;
		case O_SLOTS: A.cfg.nslots = (uint32_t)parse_num("--slots", optarg, 1, 4096); break;
		case O_SLOT_SIZE:
			A.cfg.slot_size = (uint32_t)parse_num("--slot-size", optarg, 1024, 16 << 20);
			A.cfg.slot_size = (A.cfg.slot_size + GOV_CACHELINE - 1) & ~(uint32_t)(GOV_CACHELINE - 1);
			break;
		case O_ALLOW:
			if (A.cfg.nallow == (int)GOV_ARRAY_LEN(A.cfg.allow_uid)) {
				fprintf(stderr, "govagent: at most %zu --allow-uid\n", GOV_ARRAY_LEN(A.cfg.allow_uid));
				exit(EXIT_USAGE);
			}
			A.cfg.allow_uid[A.cfg.nallow++] = (uid_t)parse_num("--allow-uid", optarg, 0, INT_MAX);
			break;
		case O_STATS: exit(print_stats(optarg));
		case O_EDGE_TCP: edge_config(optarg, 0); break;
		case O_RESEND_KEEP:
			edge_resend_keep(parse_num("--resend-keep-s", optarg, 1, 86400 * 7));
			break;
		case O_EDGE_KEY: {
			char why[PATH_MAX + 100];
			if (edge_auth_load(optarg, why, sizeof why) < 0) {
				fprintf(stderr, "govagent: --edge-key %s\n", why);
				exit(EXIT_USAGE);
			}
			break;
		}
		case O_FWD_TIMEOUT:
			edge_config(NULL, parse_num("--forward-timeout-ms", optarg, 10, 3600000));
			break;
		case O_NO_DIRECT: edge_no_direct(); break;
		case 'h': fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); exit(EXIT_USAGE);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "govagent: unexpected argument '%s'\n%s", argv[optind], usage);
		exit(EXIT_USAGE);
	}
	if (!A.cfg.resource) {
		fprintf(stderr, "govagent: --resource NAME is required\n%s", usage);
		exit(EXIT_USAGE);
	}
	if (!store_url && !A.cfg.rules_path && getenv("GOV_STORE") && *getenv("GOV_STORE"))
		store_url = getenv("GOV_STORE");
	if (store_url && A.cfg.rules_path) {
		fprintf(stderr, "govagent: --store and --rules exclude each other\n");
		exit(EXIT_USAGE);
	}
	if (!gov_resource_name_ok(A.cfg.resource)) {
		fprintf(stderr, "govagent: '%s' is not a resource name (1-63 of A-Z a-z 0-9 . _ -)\n",
			A.cfg.resource);
		exit(EXIT_USAGE);
	}
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	char err[512], dir[PATH_MAX];
	if (tasklet_config(err, sizeof err) < 0) {
		fprintf(stderr, "govagent: %s\n", err);
		return EXIT_USAGE;
	}
	if (store_url && gov_store_open(store_url, &store, err, sizeof err) < 0) {
		fprintf(stderr, "govagent: %s\n", err);
		return EXIT_START;
	}
	if (store)
		A.cfg.store_url = gov_store_url(store);
	if (load_rules(&A.rules, NULL, err, sizeof err) < 0) {
		fprintf(stderr, "govagent: %s\n", err);
		return EXIT_START;
	}
	if (!store)
		A.rules.rev = 1;
	/* follow the store from just after the revision the rules came from,
	 * watching only the routes to this agent (those gov_store_routed
	 * reads) */
	for (int w = 0; store && w < 2; w++) {
		char prefix[GOV_NAME_MAX + 16];
		snprintf(prefix, sizeof prefix, GOV_KEY_ROUTES "%s/",
			 w == 0 ? A.cfg.resource : GOV_ROUTE_ALL);
		if (gov_store_watch(store, prefix, A.rules.rev + 1, &watch[w], err, sizeof err) < 0) {
			fprintf(stderr, "govagent: %s\n", err);
			return EXIT_START;
		}
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	A.epoch = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&A.rules_lock, &ra);
	pthread_mutex_init(&A.clients_lock, NULL);

	if (gov_run_dir(dir, sizeof dir) < 0 || (mkdir(dir, 0700) < 0 && errno != EEXIST) ||
	    gov_run_path(sock_path, sizeof sock_path, A.cfg.resource, "sock") < 0 ||
	    gov_run_path(pid_path, sizeof pid_path, A.cfg.resource, "pid") < 0) {
		fprintf(stderr, "govagent: cannot use the run directory %s: %s\n", dir, strerror(errno));
		return EXIT_START;
	}
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* workers inherit the mask */
	/* after the mask: a disabled tasklet gets its queue, and its worker */
	if (store && tasklet_states_load(err, sizeof err) < 0) {
		fprintf(stderr, "govagent: %s\n", err);
		return EXIT_START;
	}
	int lfd = listen_socket();
	if (lfd < 0)
		return EXIT_START;
	if (write_pid_file() < 0) {
		unlink(sock_path);
		return EXIT_START;
	}
	if (edge_start(&A, err, sizeof err) < 0) {
		fprintf(stderr, "govagent: %s\n", err);
		unlink(sock_path);
		unlink(pid_path);
		return EXIT_START;
	}
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &lfd };
	epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.ptr = &sfd;
	epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);
	int wfd[3] = { -1, -1, -1 };
	for (int w = 0; w < 3 && watch[w]; w++) {
		wfd[w] = gov_watch_fd(watch[w]);
		ev.data.ptr = &wfd[w];
		epoll_ctl(epfd, EPOLL_CTL_ADD, wfd[w], &ev);
	}
	agent_log("info", "started", "resource=%s pid=%d socket=%s rules=%s rev=%llu rows=%u slots=%u spin_us=%ld",
		  A.cfg.resource, (int)getpid(), sock_path,
		  store ? gov_store_url(store) : A.cfg.rules_path ? A.cfg.rules_path : "none",
		  (unsigned long long)A.rules.rev, A.rules.v.nrows, A.cfg.nslots, A.cfg.spin_ns / 1000);

	for (int running = 1; running;) {
		struct epoll_event evs[16];
		int n = epoll_wait(epfd, evs, 16, -1), routes = 0;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &lfd) {
				accept_client(lfd, epfd);
			} else if (evs[i].data.ptr == &wfd[0] || evs[i].data.ptr == &wfd[1]) {
				routes = 1; /* once below: follow_store takes both */
			} else if (evs[i].data.ptr == &wfd[2]) {
				follow_tasklet_states();
			} else if (evs[i].data.ptr == &sfd) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof si) != sizeof si)
					continue;
				if (si.ssi_signo == SIGHUP && !store)
					reload();
				else if (si.ssi_signo != SIGPIPE)
					running = 0;
			} else {
				struct client *c = evs[i].data.ptr;
				char b[sizeof(struct gov_msg)];
				ssize_t r = recv(c->fd, b, sizeof b, MSG_DONTWAIT);
				if (r == 0 || (r < 0 && errno != EAGAIN) ||
				    (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
					drop_client(c, epfd);
			}
		}
		if (routes)
			follow_store();
	}
	tasklet_drain(&A); /* with the serving processes still there */
	edge_stop();
	unlink(sock_path);
	unlink(pid_path);
	close(lfd);
	while (A.clients)
		drop_client(A.clients, epfd);
	agent_log("info", "stopped", "resource=%s", A.cfg.resource);
	agent_dyn_free(&A.rules);
	gov_verdicts_free(&A.rules.v);
	edge_rules_free(&A.rules.edges);
	for (int w = 0; w < 3; w++)
		if (watch[w])
			gov_watch_close(watch[w]);
	if (store)
		gov_store_close(store);
	return 0;
}
