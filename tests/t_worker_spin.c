/* tests/t_worker_spin.c - how long the agent's worker for a process spins
 * before it sleeps (runtime/agent/serve.c, docs/region.md): --spin-us from
 * the last request it served, not from the moment it was last woken. A
 * worker that counted from its wake-up slept just before the next request
 * of a process whose requests come in turn from several threads, and each
 * one then paid a wake-up (docs/cfs.md, issue 8).
 *
 * Observed through the region's agent_sleeping flag, which the worker
 * sets before it sleeps, with a raw client (tests/harness.h) so that
 * nothing else posts or wakes. The spin is 3 s and the check has 1 s of
 * margin either way, so a loaded machine does not change the outcome. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "gov/wire.h"
#include "harness.h"
#include "internal.h"
#include "tap.h"

#define R "t-worker-spin"
#define SPIN_MS 3000

static int sleeping(struct gov_region_hdr *h)
{
	return (int)__atomic_load_n(&h->agent_sleeping, __ATOMIC_SEQ_CST);
}

/* 1 once the worker sleeps, 0 if not within ms. */
static int wait_sleeping(struct gov_region_hdr *h, int ms)
{
	for (long long end = now_ms() + ms; now_ms() < end; usleep(10000))
		if (sleeping(h))
			return 1;
	return 0;
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

int main(int argc, char **argv)
{
	(void)argc;
	harness_reexec(argv, R, NULL);
	char spin[16];
	snprintf(spin, sizeof spin, "%d", SPIN_MS * 1000);
	const char *const extra[] = { "--spin-us", spin, NULL };
	pid_t agent = agent_start(R, "verdicts:\n  - function: add\n    action: trace\n", extra);
	int fd = harness_raw_connect(R), rfd = -1;
	struct gov_msg w;
	ok(agent > 0 && fd >= 0 && harness_raw_hello(fd, R, &w, &rfd) == 0 && w.status == 0 &&
	   rfd >= 0, "a raw client is welcomed by an agent with --spin-us %s", spin);
	struct gov_region_hdr *h = mmap(NULL, w.size, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
	if (h == MAP_FAILED || gov_region_check(h, w.size) != NULL) {
		ok(0, "its region maps and passes the checks");
		agent_stop(agent);
		return done_testing();
	}
	ok(wait_sleeping(h, SPIN_MS + 10000), "idle, its worker sleeps");

	static const struct gov_site site = { .id = 5, .kind = GOV_SITE_CALL, .sysno = -1,
		.callee = "add", .types = "lll", .caller = "x", .file = "x.c", .line = 1 };
	struct gov_call call = { { 1, 2 }, 0 };
	char frame[1024], err[200];
	struct gov_wire_rep rep;
	const char *text;
	long len = gov_wire_encode_req(frame, sizeof frame, 1, &site, &call, err, sizeof err);
	long long t0 = now_ms();
	ok(harness_post(h, frame, (uint32_t)len, 1, &rep, &text) == 0 && rep.status == GOV_WIRE_OK,
	   "a request wakes it and is answered");
	pause_ms(SPIN_MS - 1000);
	len = gov_wire_encode_req(frame, sizeof frame, 2, &site, &call, err, sizeof err);
	ok(harness_post(h, frame, (uint32_t)len, 2, &rep, &text) == 0 && rep.status == GOV_WIRE_OK,
	   "a second one, 2 s later, is answered");
	long long t1 = now_ms();
	/* the first sleep after it: at t1 + 3 s spinning from the request; at
	 * t0 + 3 s = t1 + 1 s from the wake-up. It sleeps in slices of 100 ms
	 * (a slice that ends with no request counts as a wake-up), each seen
	 * by a look every 5 ms: a missed one only makes the next later. */
	long long seen = -1;
	for (long long end = t1 + SPIN_MS + 10000; seen < 0 && now_ms() < end; usleep(5000))
		if (sleeping(h))
			seen = now_ms();
	ok(seen >= 0, "then, idle, it sleeps");
	ok(seen - t1 >= SPIN_MS - 1000, "%lld ms after the second request, %lld after the wake-up: "
	   "its spin counts from the last request served (>= %d ms)", seen - t1, seen - t0,
	   SPIN_MS - 1000);
	len = gov_wire_encode_req(frame, sizeof frame, 3, &site, &call, err, sizeof err);
	ok(harness_post(h, frame, (uint32_t)len, 3, &rep, &text) == 0 && rep.status == GOV_WIRE_OK,
	   "a request after that wakes it again");
	munmap(h, w.size);
	close(rfd);
	close(fd);
	agent_stop(agent);
	return done_testing();
}
