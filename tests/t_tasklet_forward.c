/* tests/t_tasklet_forward.c - a dynamic rule's DEFER of a function that
 * lives in another resource (docs/tasklet.md "Another resource's
 * function"): this program (resource tf-app) calls tf_work(dev, seq),
 * which resource tf-drv exports; the tasklet rule (rules/tasklet/tasklet.c,
 * eBPF, placement agent) in tf-app's agent defers each call with dev >= 0
 * into tasklet dev0 or dev1. The deferral goes over the edge (DEFER,
 * gov/xcall.h) to tf-drv's agent, which queues it on its own tasklet and
 * runs it on tf-drv's serving processes. On every protocol:
 *
 *   each deferred call returns 0 at once, before it has run;
 *   every one ran once, on tf-drv's serving processes (never here);
 *   each tasklet ran its calls in order, one at a time;
 *   tf-drv's agent counts them under its tasklets' names (dev1 from its
 *   tasklets: section, dev0 by id), tf-app's agent queued none and counts
 *   them as deferred on the edge;
 *
 * the same from tf-app's own tasklets: section (no rule): the call is
 * sent to tf-drv's agent and queued there, and ENOSYS when tf-drv does
 * not export it there;
 *
 * then the refusals, each with nothing queued: a call with an out-buffer
 * (EINVAL, refused by tf-app's agent), a full tasklet there
 * (EAGAIN), tf-drv not exporting it there (ENOSYS), tf-drv's agent stopping
 * (ESHUTDOWN) and down (EHOSTUNREACH), an agent of an older version that
 * does not take DEFER (EPROTONOSUPPORT, never sent), and DEFER frames
 * spoken by hand with a bad body or a bad tasklet id (MALFORMED). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "gov/dynrule.h"
#include "gov/govrt.h"
#include "gov/wire.h"
#include "gov/xcall.h"
#include "harness.h"
#include "tap.h"
#include "tasklet_records.h"
#include "xcall_io.h"

#define APP "tf-app"
#define DRV "tf-drv"
#define OLD "tf-old" /* an agent of an older version, spoken by hand */
#define PER 3        /* calls per device and protocol */
#define LOCAL 7777
#define SLOW_SEQ 1000 /* tf_work sleeps 1 s for seq >= this */

static int in_server, rec_fd = -1;

/* one line per call, written whole at its end: "dDEV SEQ START END" */
long tf_work(long dev, long seq)
{
	if (!in_server)
		return LOCAL;
	long long t0 = mono_us();
	usleep(seq >= SLOW_SEQ ? 1000000 : 30000);
	return record_call(rec_fd, dev, seq, t0);
}
long tf_old(long dev, long seq) { return dev + seq; }
long tf_fill(void *out, size_t cap)
{
	memset(out, 'y', cap);
	return (long)cap;
}
static long work(long dev, long seq) { return GOV_CALL("lll", tf_work, dev, seq); }
static long work0(long seq) { return work(0, seq); }
static long old_work(long dev, long seq) { return GOV_CALL("lll", tf_old, dev, seq); }

static int serve_main(void)
{
	in_server = 1;
	return harness_serve_records("TF_RECORD", &rec_fd);
}

static char record_path[512];

static const char *app_rules(const char *proto)
{
	static char buf[1024];
	snprintf(buf, sizeof buf,
		 "dynamic:\n  - name: tasklet\n    mode: ebpf\n    source: %s\n"
		 "    attach: [{function: tf_work}, {function: tf_old}]\n    placement: agent\n"
		 "resources:\n  - {name: " DRV ", type: driver, exports: [tf_work]}\n"
		 "  - {name: " OLD ", type: driver, exports: [tf_old]}\n"
		 "protocols:\n  - {from: " APP ", to: " DRV ", protocol: %s}\n",
		 DYN_TOP "/rules/tasklet/tasklet.c", proto);
	return buf;
}

/* tf-drv's own: it exports tf_work, and names tasklet dev1 (dev0 goes by
 * its id); exports 0 leaves the exports out. */
static const char *drv_rules(int exports)
{
	return exports ? "resources:\n  - {name: " DRV ", type: driver, exports: [tf_work]}\n"
			 "tasklets:\n  - {name: dev1, function: tf_work}\n"
		       : "tasklets:\n  - {name: dev1, function: tf_work}\n";
}



static unsigned long long table_rev = 1;

/* The deferred calls of one protocol; round counts the protocols so far. */
static void on_protocol(pid_t app, const char *proto, int round)
{
	set_rules(app, APP, app_rules(proto));
	if (round == 1)
		ok(govrt_wait_table(++table_rev, 20000) == 0, "the tasklet rule builds and loads");
	truncate(record_path, 0);
	long bad = 0, local = 0;
	/* timed, interleaved with a call the rule runs now (the round trip to
	 * this program's agent alone): for the diagnostic below, not checked */
	long long defer_us[2 * PER], now_us[PER], t0 = mono_us();
	for (long i = 1; i <= PER; i++) {
		long long a = mono_us();
		bad += work(0, i) != 0;
		long long b = mono_us();
		bad += work(1, i) != 0;
		long long c = mono_us();
		local += work(-1, i) == LOCAL;
		defer_us[2 * i - 2] = b - a;
		defer_us[2 * i - 1] = c - b;
		now_us[i - 1] = mono_us() - c;
	}
	long long took = mono_us() - t0;
	struct rec r[2 * PER + 4];
	int early = read_records(record_path, r, 2 * PER + 4);
	is_long(bad, 0, "%s: every deferred call of %s's function returned 0", proto, DRV);
	ok(early < 2 * PER, "%s: ... at once (%d of %d had run, %lld us)", proto, early, 2 * PER, took);
	is_long(local, PER, "%s: a call the rule does not defer runs in the program", proto);
	diag("timing %s defer_us %lld %lld %lld %lld %lld %lld now_us %lld %lld %lld", proto,
	     defer_us[0], defer_us[1], defer_us[2], defer_us[3], defer_us[4], defer_us[5], now_us[0],
	     now_us[1], now_us[2]);

	int n = wait_records(record_path, r, 2 * PER + 4, 2 * PER);
	is_long(n, 2 * PER, "%s: every deferred call ran once, on %s's serving processes", proto, DRV);
	struct rec_check c = check_records(r, n, "d0");
	is_long(c.overlap_same, 0, "%s: calls of one tasklet never overlap", proto);
	ok(c.order_ok, "%s: each tasklet ran its calls in order", proto);

	char *st = stats_of(DRV), want[2][160];
	snprintf(want[0], sizeof want[0], "{\"name\":\"tasklet-%08x\",\"scheduled\":%d,\"ran\":%d,",
		 GOV_DYN_ID("dev0"), PER * round, PER * round);
	snprintf(want[1], sizeof want[1], "{\"name\":\"dev1\",\"scheduled\":%d,\"ran\":%d,",
		 PER * round, PER * round);
	ok(st && strstr(st, want[0]) && strstr(st, want[1]),
	   "%s: %s's agent queued and ran them, dev1 by its tasklets: name, dev0 by id", proto, DRV);
	if (st && !(strstr(st, want[0]) && strstr(st, want[1])))
		diag("want %s and %s in %s", want[0], want[1], st);
	free(st);
	st = stats_of(APP);
	char dfr[64];
	snprintf(dfr, sizeof dfr, "\"deferred\":%d}", 2 * PER * round);
	ok(st && strstr(st, "\"tasklets\":[]") && strstr(st, dfr),
	   "%s: %s's agent queued none itself and counts %d deferred on the edge", proto, APP,
	   2 * PER * round);
	if (st && !(strstr(st, "\"tasklets\":[]") && strstr(st, dfr)))
		diag("want \"tasklets\":[] and %s in %s", dfr, st);
	free(st);
}

static long drv_scheduled(void);

/* tf-app's own rules, with no dynamic rule: tf_work forwarded, and named
 * by a tasklets: entry for every agent (no resource:), tasklet dev1. */
static const char *section_rules(void)
{
	return "verdicts:\n  - {function: tf_work, action: forward}\n"
	       "  - {function: tf_fill, action: forward}\n"
	       "resources:\n  - {name: " DRV ", type: driver, exports: [tf_work, tf_fill]}\n"
	       "tasklets:\n  - {name: dev1, function: tf_work}\n"
	       "  - {name: fill, function: tf_fill}\n"
	       "protocols:\n  - {from: " APP ", to: " DRV ", protocol: unix}\n";
}


/* The tasklets: section's path: a governed call of tf_work, which tf-drv
 * exports, listed under this resource's tasklets: is queued by tf-drv's
 * agent (a DEFER, as a rule's), never by tf-app's. */
static void section_path(pid_t app, pid_t drv)
{
	set_rules(app, APP, section_rules());
	ok(govrt_wait_table((unsigned long long)agent_stat(APP, "rules_rev"), 20000) == 0,
	   "tasklets: section: tf-app's rules forward tf_work and list it as tasklet dev1");
	truncate(record_path, 0);
	long before = tasklet_figure(DRV, "dev1", "scheduled");
	long bad = 0;
	long long us[PER]; /* for the diagnostic below, not checked */
	for (long i = 1; i <= PER; i++) {
		long long t0 = mono_us();
		bad += work(1, i) != 0;
		us[i - 1] = mono_us() - t0;
	}
	is_long(bad, 0, "tasklets: section: each call of %s's function returned 0", DRV);
	diag("timing section unix defer_us %lld %lld %lld", us[0], us[1], us[2]);
	struct rec r[PER + 2];
	int n = wait_records(record_path, r, PER + 2, PER);
	is_long(n, PER, "tasklets: section: every call ran once, on %s's serving processes", DRV);
	struct rec_check c = check_records(r, n, "d1");
	ok(c.overlap_same == 0 && c.order_ok, "tasklets: section: in order, one at a time");
	is_long(tasklet_figure(DRV, "dev1", "scheduled") - before, PER,
		"tasklets: section: %s's agent queued them on its tasklet dev1", DRV);
	char *st = stats_of(APP);
	ok(st && strstr(st, "\"tasklets\":[]"), "tasklets: section: %s's agent queued none itself", APP);
	if (!(st && strstr(st, "\"tasklets\":[]")))
		diag("%s", st ? st : "(no stats)");
	free(st);

	/* the same answers as a rule's DEFER: tf-drv not exporting it there */
	set_rules(drv, DRV, drv_rules(0));
	before = drv_scheduled();
	errno = 0;
	long rv = work(1, 1);
	ok(rv == -1 && errno == ENOSYS,
	   "tasklets: section: %s not exporting it there: -1, ENOSYS (%ld, %s)", DRV, rv,
	   strerror(errno));
	is_long(drv_scheduled(), before, "tasklets: section: ... nothing queued there");
	st = stats_of(APP);
	ok(st && strstr(st, "\"tasklets\":[]"), "tasklets: section: ... nor here");
	free(st);
	set_rules(drv, DRV, drv_rules(1));

	/* a call that wants its out-buffer back cannot be queued: refused by
	 * tf-app's agent, before any DEFER */
	char buf[16];
	memset(buf, 'x', sizeof buf);
	before = drv_scheduled();
	errno = 0;
	rv = GOV_CALL("loz", tf_fill, buf, sizeof buf);
	int e = errno;
	ok(rv == -1 && e == EINVAL, "tasklets: section: tf_fill (an out-buffer) of tasklet fill: -1, "
	   "EINVAL (%ld, %s)", rv, strerror(e));
	ok(buf[0] == 'x' && buf[sizeof buf - 1] == 'x', "tasklets: section: ... the buffer untouched");
	st = stats_of(APP);
	ok(drv_scheduled() == before && st && strstr(st, "\"tasklets\":[]"),
	   "tasklets: section: ... nothing queued, here or on %s", DRV);
	free(st);
	ok(agent_log_has(APP, "function=tf_fill error=\"its type string loz asks for out-buffers", 2000),
	   "tasklets: section: ... logged by %s's agent, saying why", APP);
}

/* The tasklets' figures in tf-drv's stats: "scheduled" of both summed. */
static long drv_scheduled(void)
{
	char *st = stats_of(DRV);
	long sum = 0;
	for (char *p = st; p && (p = strstr(p, "\"scheduled\":")); p++)
		sum += strtol(p + 12, NULL, 10);
	free(st);
	return sum;
}

/* ---- an agent of an older version: WELCOME without GOV_XCALL_FEAT_DEFER ---- */
static int old_lfd = -1, old_frames = -1;

static void *old_agent(void *p)
{
	(void)p;
	struct pollfd pfd = { .fd = old_lfd, .events = POLLIN };
	int fd = poll(&pfd, 1, 5000) == 1 ? accept(old_lfd, NULL, NULL) : -1;
	struct gov_xcall_hdr h;
	static unsigned char body[GOV_XCALL_BODY_MAX];
	if (fd < 0 || gov_xcall_recv(fd, 1, &h, body, sizeof body, 5000, NULL, 0) != 1) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	gov_xcall_init(&h, GOV_XCALL_WELCOME);
	h.req_id = 4242;
	strcpy(h.name, OLD); /* features: 0, as an older agent's padding */
	gov_xcall_send(fd, 1, &h, NULL);
	int n = 0;
	while (gov_xcall_recv(fd, 1, &h, body, sizeof body, 1500, NULL, 0) == 1)
		n++;
	old_frames = n;
	close(fd);
	return NULL;
}

static void older_agent(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s.edge", harness_run_dir(), OLD);
	old_lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ok(old_lfd >= 0 && bind(old_lfd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	   listen(old_lfd, 4) == 0, "an older agent of %s, spoken by hand, listens", OLD);
	pthread_t t;
	pthread_create(&t, NULL, old_agent, NULL);
	errno = 0;
	long rv = old_work(0, 1);
	int e = errno;
	ok(rv == -1 && e == EPROTONOSUPPORT,
	   "a DEFER to an agent whose WELCOME lacks the feature: -1, EPROTONOSUPPORT (%ld, %s)", rv,
	   strerror(e));
	pthread_join(t, NULL);
	is_long(old_frames, 0, "... and no frame was sent to it after HELLO");
	ok(agent_log_has(APP, "is of an older version: it cannot queue a deferred call", 2000),
	   "... and the caller's agent logs why");
	close(old_lfd);
	unlink(sa.sun_path);
}

/* ---- DEFER frames spoken by hand to tf-drv's agent ---- */
static int raw_link(void)
{
	struct gov_xcall_hdr welcome;
	int fd = harness_edge_hello(DRV, "tf-raw", 999, &welcome);
	if (fd >= 0 && !(welcome.features & GOV_XCALL_FEAT_DEFER)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int raw_defer(int fd, uint64_t id, int64_t tasklet, const void *body, uint32_t len,
		     struct gov_xcall_hdr *rep)
{
	struct gov_xcall_hdr h;
	gov_xcall_init(&h, GOV_XCALL_DEFER);
	h.caller_epoch = 999;
	h.req_id = id;
	h.value = tasklet;
	h.body_len = len;
	gov_xcall_send(fd, 1, &h, body);
	static unsigned char out[GOV_XCALL_BODY_MAX];
	return gov_xcall_recv(fd, 1, rep, out, sizeof out, 3000, NULL, 0);
}

static void by_hand(void)
{
	int fd = raw_link();
	ok(fd >= 0, "a link to %s's agent, spoken by hand; its WELCOME offers DEFER", DRV);
	long before = drv_scheduled();
	struct gov_xcall_hdr rep;
	char junk[24] = "not a call frame.......";
	int r = raw_defer(fd, 1, GOV_DYN_ID("dev0"), junk, sizeof junk, &rep);
	ok(r == 1 && rep.status == GOV_XCALL_MALFORMED && rep.err == EBADMSG,
	   "a DEFER whose body is not a call frame: MALFORMED (%d, status %d)", r, r == 1 ? rep.status : -1);
	if (r == 1)
		diag("why: %s", rep.text);
	ok(r == 1 && strstr(rep.text, "frame"), "... and the answer says what was wrong");
	const struct gov_site site = { .kind = GOV_SITE_CALL, .nparams = 2, .sysno = -1,
				       .callee = "tf_work", .types = "lll" };
	struct gov_call call = { { 0, 1 }, 0 };
	unsigned char frame[512];
	long len = gov_wire_encode_req(frame, sizeof frame, 1, &site, &call, NULL, 0);
	r = raw_defer(fd, 2, -5, frame, (uint32_t)len, &rep);
	ok(r == 1 && rep.status == GOV_XCALL_MALFORMED && strstr(rep.text, "not a tasklet id"),
	   "a DEFER whose value is not a tasklet id: MALFORMED, and says so");
	r = raw_defer(fd, 3, (int64_t)1 << 40, frame, (uint32_t)len, &rep);
	ok(r == 1 && rep.status == GOV_XCALL_MALFORMED, "... nor one past 32 bits");
	is_long(drv_scheduled(), before, "none of them was queued");
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "serve") == 0)
		return serve_main();
	static const char *const env[] = { "GOV_TIMEOUT_MS=4000", NULL };
	harness_reexec(argv, APP, env);
	char exports[512], cache[600];
	harness_file(record_path, sizeof record_path, "record", NULL);
	harness_file(exports, sizeof exports, DRV ".exports", "tf_work lll\n");
	harness_file(cache, sizeof cache, "cache", NULL);
	setenv("GOV_CACHE_DIR", cache, 1);
	setenv("GOV_INCLUDE_DIR", DYN_TOP "/include", 1);
	setenv("TF_RECORD", record_path, 1);

	setenv("GOV_TASKLET_QUEUE_MAX", "4", 1); /* for tf-drv's agent */
	const char *const drv_extra[] = { "--edge-tcp", "127.0.0.1:0", NULL };
	pid_t drv = agent_start(DRV, drv_rules(1), drv_extra);
	unsetenv("GOV_TASKLET_QUEUE_MAX");
	pid_t app = agent_start(APP, "verdicts: []\n", NULL);
	ok(drv > 0 && app > 0 && wait_connected(1, 5000) == 0, "two agents; this program is connected");
	pid_t servers[2] = { serving_start(argv[0], DRV, exports), serving_start(argv[0], DRV, exports) };

	const char *protos[] = { "unix", "tcp", "msgqueue", "shm" };
	for (int i = 0; i < 4; i++)
		on_protocol(app, protos[i], i + 1);
	section_path(app, drv);
	set_rules(app, APP, app_rules("unix"));
	ok(govrt_wait_table((unsigned long long)agent_stat(APP, "rules_rev"), 20000) == 0,
	   "the tasklet rule is back in force");

	/* full: one call running (1 s) and 4 queued in tf-drv's agent; 5
	 * queued if the worker has not taken the first yet */
	int accepted = work(0, SLOW_SEQ) == 0;
	struct harness_tally t = harness_tally(work0, 100, 109);
	accepted += t.ok;
	int full = t.again, other = t.other;
	ok(full >= 2 && accepted >= 4 && accepted <= 6 && other == 0,
	   "a full tasklet in %s's agent refuses with EAGAIN (%d accepted, %d refused, %d other)", DRV,
	   accepted, full, other);
	char *st = stats_of(DRV);
	char want[96];
	snprintf(want, sizeof want, "\"refused\":%d,", full);
	ok(st && strstr(st, want), "... counted as refused there");
	free(st);
	usleep(1500000); /* the queue drains */

	/* tf-drv's agent no longer says it exports tf_work */
	set_rules(drv, DRV, drv_rules(0));
	long before = drv_scheduled();
	errno = 0;
	long rv = work(1, 1);
	ok(rv == -1 && errno == ENOSYS, "a DEFER of a function %s does not export there: ENOSYS (%ld, %s)",
	   DRV, rv, strerror(errno));
	is_long(drv_scheduled(), before, "... nothing queued");
	ok(agent_log_has(DRV, "event=tasklet_refused resource=" DRV " from=" APP, 2000) &&
	   agent_log_has(APP, "event=defer_failed from=" APP " to=" DRV " function=tf_work", 2000),
	   "... logged by both agents");
	set_rules(drv, DRV, drv_rules(1));

	by_hand();
	older_agent();

	/* stopping: a slow call holds the drain, during which tf-drv refuses */
	ok(work(0, SLOW_SEQ) == 0, "a slow call (1 s) deferred");
	usleep(100000);
	kill(drv, SIGTERM);
	int shut = 0;
	for (long long end = now_ms() + 3000; now_ms() < end && !shut; usleep(20000)) {
		errno = 0;
		rv = work(1, 2);
		shut = rv == -1 && errno == ESHUTDOWN;
	}
	ok(shut, "while %s's agent drains its tasklets a DEFER gets ESHUTDOWN", DRV);
	int status = -1;
	waitpid(drv, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s's agent stopped cleanly", DRV);

	errno = 0;
	rv = work(0, 1);
	ok(rv == -1 && errno == EHOSTUNREACH, "with %s's agent down: EHOSTUNREACH (%ld, %s)", DRV, rv,
	   strerror(errno));
	st = stats_of(APP);
	ok(st && strstr(st, "\"tasklets\":[]"), "... and nothing is queued in %s's agent instead", APP);
	free(st);

	for (int i = 0; i < 2; i++) {
		kill(servers[i], SIGKILL);
		waitpid(servers[i], NULL, 0);
	}
	ok(agent_stop(app) == 0, "%s's agent stops cleanly", APP);
	return done_testing();
}
