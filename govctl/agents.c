/* govctl/agents.c - `govctl agent start|stop|list|status` and `govctl stats`:
 * govagent processes of this machine, found through their pid files and
 * sockets in the run directory, and the counts they keep. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "govctl.h"
#include "gov/wire.h"
#include "internal.h"

/* govagent beside this govctl, else the one on PATH. */
static void govagent_path(char *buf, size_t len)
{
	char self[PATH_MAX - 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			if (snprintf(buf, len, "%s/govagent", self) < (int)len && access(buf, X_OK) == 0)
				return;
		}
	}
	snprintf(buf, len, "govagent");
}

static pid_t read_pid(const char *resource)
{
	char path[PATH_MAX];
	if (gov_run_path(path, sizeof path, resource, "pid") < 0)
		return -1;
	FILE *f = fopen(path, "r");
	int pid = -1;
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = -1;
		fclose(f);
	}
	return pid;
}

static int alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

int govctl_ask_agent(const char *resource, const char *command, char **json, char *why,
		     size_t whylen)
{
	*json = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (gov_run_path(sa.sun_path, sizeof sa.sun_path, resource, "sock") < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = { 2, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct gov_msg m = { .magic = GOV_MSG_MAGIC, .version = GOV_WIRE_VERSION,
			     .type = GOV_MSG_HELLO, .role = GOV_ROLE_CONTROL, .pid = getpid() };
	snprintf(m.name, sizeof m.name, "%s", resource);
	snprintf(m.text, sizeof m.text, "%s", command ? command : "");
	char *buf = NULL;
	ssize_t n = -1;
	int connected = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	if (connected && send(fd, &m, sizeof m, MSG_NOSIGNAL) == (ssize_t)sizeof m &&
	    (buf = malloc(1 << 20)))
		n = recv(fd, buf, (1 << 20) - 1, 0);
	close(fd);
	if (n <= 0) {
		free(buf);
		return -1;
	}
	const struct gov_msg *r = (const struct gov_msg *)buf;
	if (n >= (ssize_t)offsetof(struct gov_msg, type) && r->magic == GOV_MSG_MAGIC &&
	    (n != (ssize_t)sizeof m || r->version != GOV_WIRE_VERSION)) {
		/* an agent of another wire version: it cannot read our HELLO */
		snprintf(why, whylen, "it speaks wire version %u (%zd-byte messages), this govctl %u",
			 (unsigned)r->version, n, (unsigned)GOV_WIRE_VERSION);
		free(buf);
		return EPROTONOSUPPORT;
	}
	if (n == (ssize_t)sizeof m && r->magic == GOV_MSG_MAGIC) {
		char text[sizeof r->text + 1];
		memcpy(text, r->text, sizeof r->text);
		text[sizeof r->text] = 0;
		snprintf(why, whylen, "%s", text);
		int e = r->status;
		free(buf);
		return e > 0 ? e : EPROTO;
	}
	if (buf[0] != '{') {
		snprintf(why, whylen, "its answer (%zd bytes) is neither JSON nor a WELCOME", n);
		free(buf);
		return EPROTO;
	}
	buf[n] = 0;
	*json = buf;
	return 0;
}

/* The agent's statistics (JSON text, malloc'ed), or NULL. */
char *govctl_query_agent(const char *resource)
{
	char *json, why[8];
	return govctl_ask_agent(resource, NULL, &json, why, sizeof why) == 0 ? json : NULL;
}

int govctl_agent_pid(const char *resource)
{
	pid_t pid = read_pid(resource);
	return pid > 0 ? (int)pid : 0;
}

int govctl_agent_alive(const char *resource)
{
	pid_t pid = read_pid(resource);
	return alive(pid) ? (int)pid : 0;
}

static int agent_start(struct govctl *g, int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-')
		return govctl_fail(GOVCTL_USAGE, "agent start: RESOURCE is missing");
	const char *resource = argv[1];
	if (!gov_resource_name_ok(resource))
		return govctl_fail(GOVCTL_USAGE, "agent start: '%s' is not a resource name", resource);
	pid_t old = read_pid(resource);
	if (alive(old) && govctl_query_agent(resource))
		return govctl_fail(GOVCTL_REFUSED, "an agent for %s already runs (pid %d)", resource, (int)old);
	char agent[PATH_MAX], log[PATH_MAX], dir[PATH_MAX];
	govagent_path(agent, sizeof agent);
	if (gov_run_dir(dir, sizeof dir) < 0 || (mkdir(dir, 0700) < 0 && errno != EEXIST) ||
	    gov_run_path(log, sizeof log, resource, "log") < 0)
		return govctl_fail(GOVCTL_UNAVAILABLE, "cannot use the run directory %s: %s", dir, strerror(errno));
	const char *url = gov_store_url(govctl_store(g));
	const char *args[64] = { agent, "--resource", resource, "--store", url };
	int n = 5;
	for (int i = 2; i < argc && n < 63; i++)
		args[n++] = argv[i]; /* --spin-us, --slots, --allow-uid ... go to govagent */
	args[n] = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		setsid();
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd < 0 || null < 0)
			_exit(126);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		closefrom(3); /* a daemon keeps nothing of its caller's, not even a pipe */
		if (fork() > 0) /* the agent must not be our child: it outlives us */
			_exit(0);
		execvp(args[0], (char *const *)args);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	struct timespec ts = { 0, 5 * 1000000 };
	for (int i = 0; i < 1000; i++) {
		char *stats = govctl_query_agent(resource);
		if (stats) {
			free(stats);
			printf("agent for %s started (pid %d), log %s\n", resource, (int)read_pid(resource), log);
			return GOVCTL_OK;
		}
		nanosleep(&ts, NULL);
	}
	return govctl_fail(GOVCTL_UNAVAILABLE, "the agent for %s did not start; see %s", resource, log);
}

static int agent_stop(struct govctl *g, int argc, char **argv)
{
	(void)g;
	if (argc != 2 || argv[1][0] == '-')
		return govctl_fail(GOVCTL_USAGE, "agent stop: give one RESOURCE");
	pid_t pid = read_pid(argv[1]);
	if (!alive(pid))
		return govctl_fail(GOVCTL_NOT_FOUND, "no agent for %s is running", argv[1]);
	kill(pid, SIGTERM);
	struct timespec ts = { 0, 5 * 1000000 };
	for (int i = 0; i < 1000 && alive(pid); i++)
		nanosleep(&ts, NULL);
	if (alive(pid))
		return govctl_fail(GOVCTL_UNAVAILABLE, "the agent for %s (pid %d) did not stop within 5 s",
				   argv[1], (int)pid);
	printf("agent for %s stopped (pid %d)\n", argv[1], (int)pid);
	return GOVCTL_OK;
}

/* One agent's line: resource, pid, liveness, and what it reports. */
static json_t *agent_record(const char *resource)
{
	pid_t pid = read_pid(resource);
	char *stats = alive(pid) ? govctl_query_agent(resource) : NULL;
	json_t *st = stats ? json_loads(stats, 0, NULL) : NULL;
	free(stats);
	json_t *o = json_pack("{s:s,s:i,s:b}", "resource", resource, "pid", (int)pid, "alive",
			      st != NULL);
	if (st) {
		json_object_set(o, "rules_rev", json_object_get(st, "rules_rev"));
		json_object_set(o, "clients", json_object_get(st, "clients"));
		json_object_set(o, "calls", json_object_get(st, "calls"));
		json_decref(st);
	}
	return o;
}

json_t *govctl_agent_names(void)
{
	char dir[PATH_MAX];
	json_t *out = json_array();
	if (gov_run_dir(dir, sizeof dir) < 0)
		return out;
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		char *dot = strrchr(names[i]->d_name, '.');
		if (dot && strcmp(dot, ".pid") == 0) {
			*dot = 0;
			if (gov_resource_name_ok(names[i]->d_name))
				json_array_append_new(out, json_string(names[i]->d_name));
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	return out;
}

static json_t *all_agents(void)
{
	json_t *names = govctl_agent_names(), *out = json_array(), *n;
	size_t k;
	json_array_foreach(names, k, n)
		json_array_append_new(out, agent_record(json_string_value(n)));
	json_decref(names);
	return out;
}

static void print_agents(json_t *list)
{
	printf("%-24s %8s %6s %10s %8s %12s\n", "RESOURCE", "PID", "ALIVE", "RULES REV", "CLIENTS", "CALLS");
	size_t k;
	json_t *o;
	json_array_foreach(list, k, o) {
		int up = json_is_true(json_object_get(o, "alive"));
		printf("%-24s %8lld %6s", json_string_value(json_object_get(o, "resource")),
		       json_integer_value(json_object_get(o, "pid")), up ? "yes" : "no");
		if (up)
			printf(" %10lld %8lld %12lld\n", json_integer_value(json_object_get(o, "rules_rev")),
			       json_integer_value(json_object_get(o, "clients")),
			       json_integer_value(json_object_get(o, "calls")));
		else
			printf(" %10s %8s %12s\n", "-", "-", "-");
	}
}

static int agent_list(struct govctl *g, int argc, char **argv)
{
	if (argc > 1)
		return govctl_fail(GOVCTL_USAGE, "agent list: unexpected argument '%s'", argv[1]);
	json_t *list = all_agents();
	if (g->json) {
		govctl_print_json(list);
	} else {
		print_agents(list);
	}
	json_decref(list);
	return GOVCTL_OK;
}

static int agent_status(struct govctl *g, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-' || !gov_resource_name_ok(argv[1]))
		return govctl_fail(GOVCTL_USAGE, "agent status: give one RESOURCE");
	if (read_pid(argv[1]) < 0)
		return govctl_fail(GOVCTL_NOT_FOUND, "no agent for %s has run here (no pid file)", argv[1]);
	json_t *o = agent_record(argv[1]), *list = json_array();
	int up = json_is_true(json_object_get(o, "alive"));
	json_array_append(list, o);
	if (g->json) {
		govctl_print_json(o);
	} else {
		print_agents(list);
	}
	json_decref(o);
	json_decref(list);
	return up ? GOVCTL_OK : GOVCTL_UNAVAILABLE;
}

static const char agent_usage[] =
	"usage: govctl agent start RESOURCE [govagent options: --spin-us N --slots N --allow-uid U]\n"
	"       govctl agent stop RESOURCE\n"
	"       govctl agent list [--json]\n"
	"       govctl agent status RESOURCE [--json]\n"
	"\n"
	"Agents run in the background, one per resource, reading their rules from the\n"
	"store govctl uses; sockets, pid files and logs are in the run directory\n"
	"(GOV_RUN_DIR). list and status show whether each is alive and the rule\n"
	"revision it has applied; status exits 4 if the agent is not running.\n"
	"\n"
	"example:\n"
	"  govctl agent start billing\n"
	"  govctl agent list\n"
	"  govctl agent stop billing\n";

int cmd_agent(struct govctl *g, int argc, char **argv)
{
	static const struct {
		const char *verb;
		govctl_cmd *fn;
	} verbs[] = {
		{ "start", agent_start }, { "stop", agent_stop },
		{ "list", agent_list }, { "status", agent_status },
	};
	if (argc < 2 || govctl_wants_help(argc, argv)) {
		fputs(agent_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? GOVCTL_USAGE : GOVCTL_OK;
	}
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (strcmp(argv[1], verbs[i].verb) == 0)
			return verbs[i].fn(g, argc - 1, argv + 1);
	fprintf(stderr, "govctl: unknown agent command '%s'\n\n%s", argv[1], agent_usage);
	return GOVCTL_USAGE;
}

/* Each agent's cross-resource edges (its "xcall" statistics): every
 * forwarded call, the direct ones included. */
static void print_xcall_edges(json_t *agents)
{
	size_t k, j;
	json_t *a, *e;
	int any = 0;
	json_array_foreach(agents, k, a) {
		json_array_foreach(json_object_get(json_object_get(a, "xcall"), "edges"), j, e) {
			if (!any++)
				printf("\ncross-resource edges, every forwarded call (direct: made in the "
				       "callee's serving process through an shm grant):\n"
				       "%-24s %-24s %-9s %10s %10s %10s %8s %8s\n", "FROM", "TO", "PROTOCOL",
				       "CALLS", "DIRECT", "OK", "NOT RUN", "UNKNOWN");
			printf("%-24s %-24s %-9s %10lld %10lld %10lld %8lld %8lld\n",
			       json_string_value(json_object_get(a, "resource")),
			       json_string_value(json_object_get(e, "to")),
			       json_string_value(json_object_get(e, "protocol")),
			       json_integer_value(json_object_get(e, "calls")),
			       json_integer_value(json_object_get(e, "direct")),
			       json_integer_value(json_object_get(e, "ok")),
			       json_integer_value(json_object_get(e, "not_run")),
			       json_integer_value(json_object_get(e, "unknown")));
		}
	}
}

int cmd_stats(struct govctl *g, int argc, char **argv)
{
	if (govctl_wants_help(argc, argv)) {
		puts("usage: govctl stats [--json]\n\n"
		     "Call counts from every running agent of this machine: per function and per\n"
		     "site, the calls each agent decided; per cross-resource edge, every forwarded\n"
		     "call, those made directly in the callee's serving process (shm grants, which\n"
		     "no agent decides one by one) included.\n\n"
		     "example:\n  govctl stats --json");
		return GOVCTL_OK;
	}
	if (argc > 1)
		return govctl_fail(GOVCTL_USAGE, "stats: unexpected argument '%s'", argv[1]);
	json_t *agents = all_agents(), *out = json_array(), *a;
	size_t k;
	json_array_foreach(agents, k, a) {
		const char *r = json_string_value(json_object_get(a, "resource"));
		char *text = json_is_true(json_object_get(a, "alive")) ? govctl_query_agent(r) : NULL;
		json_t *st = text ? json_loads(text, 0, NULL) : NULL;
		free(text);
		if (st)
			json_array_append_new(out, st);
	}
	if (g->json) {
		govctl_print_json(out);
	} else {
		printf("calls decided by the agents, per function and per site:\n");
		printf("%-24s %-32s %12s\n", "FROM", "TO", "CALLS");
		json_array_foreach(out, k, a) {
			size_t j;
			json_t *e;
			json_array_foreach(json_object_get(a, "edges"), j, e)
				printf("%-24s %-32s %12lld\n", json_string_value(json_object_get(e, "from")),
				       json_string_value(json_object_get(e, "to")),
				       json_integer_value(json_object_get(e, "calls")));
		}
		printf("\n%-24s %-18s %-24s %12s\n", "RESOURCE", "SITE", "CALLEE", "CALLS");
		json_array_foreach(out, k, a) {
			size_t j;
			json_t *e;
			json_array_foreach(json_object_get(a, "sites"), j, e)
				printf("%-24s %-18s %-24s %12lld\n",
				       json_string_value(json_object_get(a, "resource")),
				       json_string_value(json_object_get(e, "site_id")),
				       json_string_value(json_object_get(e, "callee")),
				       json_integer_value(json_object_get(e, "calls")));
		}
		print_xcall_edges(out);
	}
	json_decref(out);
	json_decref(agents);
	return GOVCTL_OK;
}
