/* runtime/channel.c - govrt's connection to its resource's agent.
 *
 * The process connects to <run dir>/<resource>.sock (SOCK_SEQPACKET), says
 * HELLO, and gets back WELCOME with the shared region's memfd. A watcher
 * thread then sleeps on the socket: a TABLE message means the decision
 * table changed; end of file means the agent is gone, and the watcher wakes
 * every thread waiting on a slot, retires the region and retries the
 * connection (every 10 ms for two seconds, then every 250 ms) until an agent
 * answers again. It is not the place for the data path (dispatch.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "gov/wire.h"
#include "govrt_private.h"
#include "hello.h"
#include "xcall_io.h"

#define RETRY_FAST_NS (10 * 1000000L)
#define RETRY_SLOW_NS (250 * 1000000L)
#define RETRY_FAST_FOR_NS (2000 * 1000000L)

/* Connection problems are retried every few milliseconds; each distinct
 * problem is reported once, until a connection succeeds. */
static char last_problem[256];

__attribute__((format(printf, 1, 2)))
static void conn_warn(const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (strcmp(msg, last_problem) == 0)
		return;
	snprintf(last_problem, sizeof last_problem, "%s", msg);
	govrt_warn("%s", msg);
}

/* One attempt. On success the new connection is installed and its table
 * applied; returns 0 or -errno. Called with govrt.lock held. */
static int connect_once(int quiet)
{
	char path[PATH_MAX];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (gov_run_path(path, sizeof path, govrt.cfg.resource, "sock") < 0 ||
	    strlen(path) >= sizeof sa.sun_path) {
		if (!quiet)
			conn_warn("run directory path too long for a unix socket");
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int err = 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		err = -errno;
		if (!quiet)
			conn_warn("no agent for resource %s at %s (%s); governed calls %s",
				   govrt.cfg.resource, path, strerror(-err),
				   govrt.cfg.fail_closed ? "fail with an errno" : "run natively");
		goto fail;
	}
	char why[256];
	struct gov_msg m;
	void *p = gov_hello(fd, govrt.cfg.resource, GOV_HELLO_DIRECT, &m, &err, why, sizeof why);
	if (!p) {
		if (why[0])
			conn_warn("%s", why);
		goto fail;
	}

	struct govrt_conn *c = calloc(1, sizeof *c);
	if (!c) {
		munmap(p, m.size);
		err = -ENOMEM;
		goto fail;
	}
	c->fd = fd;
	c->region = p;
	c->size = m.size;
	c->epoch = m.epoch;
	atomic_store(&c->alive, 1);
	govrt_dyn_figures_rebase(); /* the agent kept what the last region said */
	govrt_apply_table(c);
	atomic_store(&govrt.conn, c);
	govrt_count(GOVRT_N_connects);
	govrt.warned_outage = 0;
	last_problem[0] = 0;
	govrt_debug("connected to agent %s (epoch %llu)", m.name, (unsigned long long)m.epoch);
	return 0;
fail:
	close(fd);
	return err;
}

/* Unmaps retired regions nobody is inside any more. Lock held. */
static void reap_retired(void)
{
	struct govrt_conn **pp = &govrt.retired;
	while (*pp) {
		struct govrt_conn *c = *pp;
		if (atomic_load(&c->users) == 0) {
			*pp = c->next_retired;
			munmap(c->region, c->size);
			govrt_direct_free(c);
			free(c);
		} else {
			pp = &c->next_retired;
		}
	}
}

void govrt_conn_lost(struct govrt_conn *c, const char *why)
{
	pthread_mutex_lock(&govrt.lock);
	if (atomic_exchange(&c->alive, 0) == 1) {
		struct govrt_conn *expect = c;
		atomic_compare_exchange_strong(&govrt.conn, &expect, NULL);
		/* wake every caller sleeping on a slot of this region */
		struct gov_region_hdr *h = c->region;
		uint32_t used = h->slots_used < h->nslots ? h->slots_used : h->nslots;
		for (uint32_t i = 0; i < used; i++)
			gov_futex_wake(&gov_region_slot(h, i)->state, INT_MAX);
		close(c->fd);
		c->next_retired = govrt.retired;
		govrt.retired = c;
		govrt.outage_start_ns = gov_now_ns();
		if (!govrt.warned_outage) {
			govrt.warned_outage = 1;
			govrt_warn("lost the agent for %s (%s); governed calls %s until it returns",
				   govrt.cfg.resource, why,
				   govrt.cfg.fail_closed ? "fail with an errno" : "run natively");
		}
	}
	reap_retired();
	pthread_mutex_unlock(&govrt.lock);
}

struct govrt_conn *govrt_conn_get(void)
{
	struct govrt_conn *c = atomic_load_explicit(&govrt.conn, memory_order_acquire);
	if (!c)
		return NULL;
	atomic_fetch_add(&c->users, 1);
	if (!atomic_load(&c->alive) || atomic_load(&govrt.conn) != c) {
		atomic_fetch_sub(&c->users, 1);
		return NULL;
	}
	return c;
}

void govrt_conn_put(struct govrt_conn *c)
{
	atomic_fetch_sub_explicit(&c->users, 1, memory_order_release);
}

int govrt_connected(void)
{
	return atomic_load(&govrt.conn) != NULL;
}

unsigned govrt_slots_held(void)
{
	struct govrt_conn *c = govrt_conn_get();
	unsigned held = 0;
	if (!c)
		return 0;
	struct gov_region_hdr *h = c->region;
	for (uint32_t i = 0; i < h->slots_used && i < h->nslots; i++)
		held += gov_region_slot(h, i)->owner_tid != 0;
	govrt_conn_put(c);
	return held;
}

static long retry_interval(void)
{
	uint64_t since = gov_now_ns() - govrt.outage_start_ns;
	return since < RETRY_FAST_FOR_NS ? RETRY_FAST_NS : RETRY_SLOW_NS;
}

void govrt_try_reconnect(void)
{
	uint64_t now = gov_now_ns(), last = atomic_load(&govrt.last_attempt_ns);
	if (now - last < (uint64_t)retry_interval() ||
	    !atomic_compare_exchange_strong(&govrt.last_attempt_ns, &last, now))
		return;
	if (pthread_mutex_trylock(&govrt.lock) != 0)
		return;
	if (!atomic_load(&govrt.conn))
		connect_once(1);
	pthread_mutex_unlock(&govrt.lock);
}

static void handle_message(struct govrt_conn *c)
{
	struct gov_msg m;
	int fd;
	long n = gov_fd_recv(c->fd, &m, sizeof m, 0, &fd);
	if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR && n != -ETIMEDOUT)) {
		govrt_conn_lost(c, n == 0 ? "it closed the connection" : strerror((int)-n));
		return;
	}
	if (n < 0)
		return;
	const char *bad = gov_msg_check(&m, (size_t)n);
	if (bad) {
		govrt_warn("ignored a message from the agent: field %s is wrong", bad);
	} else if (m.type == GOV_MSG_GRANT) {
		govrt_direct_take(c, &m, fd);
	}
	if (fd >= 0)
		close(fd);
	if (!bad && m.type == GOV_MSG_TABLE) {
		pthread_mutex_lock(&govrt.lock);
		if (atomic_load(&c->alive))
			govrt_apply_table(c);
		pthread_mutex_unlock(&govrt.lock);
	}
}

#define FIGURES_MS 200

/* At exit, the last figures of the rules this process ran, before the
 * connection closes and the agent keeps what its region says. */
__attribute__((destructor)) static void figures_at_exit(void)
{
	struct govrt_conn *c = govrt_conn_get();
	if (c) {
		govrt_dyn_figures(c->region);
		govrt_conn_put(c);
	}
}

static void *watcher(void *arg)
{
	unsigned gen = (unsigned)(uintptr_t)arg;
	int runs_rules = 0;
	while (atomic_load(&govrt.fork_gen) == gen) {
		struct govrt_conn *c = govrt_conn_get();
		if (!c) {
			long wait = retry_interval();
			struct timespec ts = { 0, wait };
			nanosleep(&ts, NULL);
			atomic_store(&govrt.last_attempt_ns, 0);
			pthread_mutex_lock(&govrt.lock);
			if (!atomic_load(&govrt.conn))
				connect_once(1);
			reap_retired();
			pthread_mutex_unlock(&govrt.lock);
			continue;
		}
		struct pollfd pfd = { c->fd, POLLIN, 0 };
		/* rules this process runs: their figures reach the agent's
		 * statistics at most FIGURES_MS late */
		int r = poll(&pfd, 1, runs_rules ? FIGURES_MS : 1000);
		if (r > 0 && (pfd.revents & POLLIN))
			handle_message(c);
		else if (r > 0)
			govrt_conn_lost(c, "the connection broke");
		runs_rules = govrt_dyn_figures(c->region);
		govrt_conn_put(c);
	}
	return NULL;
}

/* Starts the watcher with every signal blocked, so signals meant for the
 * program are never delivered to govrt's thread. Lock held. */
static void start_watcher(void)
{
	sigset_t all, old;
	pthread_t t;
	pthread_attr_t attr;
	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	uintptr_t gen = atomic_load(&govrt.fork_gen);
	if (pthread_create(&t, &attr, watcher, (void *)gen) == 0)
		govrt.watcher_running = 1;
	else
		govrt_warn("cannot start govrt's watcher thread; rules will not change live");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
}

static void atfork_prepare(void) { pthread_mutex_lock(&govrt.lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&govrt.lock); }

/* In the child only the forking thread exists: it drops the parent's
 * connection (the agent counts that one as the parent's), keeps the
 * decisions in force, and connects as itself. */
static void atfork_child(void);

/* The forking thread may be armed for Syscall User Dispatch (sud.c): the
 * reconnection and the watcher thread are govrt's, not the program's. */
void govrt_channel_atfork_child(void)
{
	uint8_t sel = govrt_sud_hold();
	atfork_child();
	govrt_sud_release(sel);
}

static void atfork_child(void)
{
	pthread_mutex_init(&govrt.lock, NULL);
	pthread_mutex_init(&govrt.counters_lock, NULL);
	atomic_fetch_add(&govrt.fork_gen, 1);
	govrt_dispatch_atfork_child();
	govrt_dyn_atfork_child();
	govrt_cfs_atfork_child();
	struct govrt_conn *c = atomic_exchange(&govrt.conn, NULL);
	if (c) {
		close(c->fd);
		munmap(c->region, c->size);
		free(c);
	}
	while (govrt.retired) {
		struct govrt_conn *r = govrt.retired;
		govrt.retired = r->next_retired;
		munmap(r->region, r->size);
		free(r);
	}
	govrt.watcher_running = 0;
	govrt.outage_start_ns = gov_now_ns();
	atomic_store(&govrt.last_attempt_ns, 0);
	if (govrt.cfg.resource[0]) {
		connect_once(1);
		start_watcher();
	}
}

static void register_atfork(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, govrt_channel_atfork_child);
}

void govrt_channel_start(void)
{
	static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
	pthread_mutex_lock(&govrt.lock);
	if (!govrt.watcher_running) {
		govrt.outage_start_ns = gov_now_ns();
		connect_once(!govrt.cfg.resource_from_env);
		start_watcher();
	}
	pthread_mutex_unlock(&govrt.lock);
	pthread_once(&atfork_once, register_atfork);
}
