/* tests/tasklet_records.h - what the tasklet tests (t_tasklet.c,
 * t_tasklet_schedule.c, t_tasklet_forward.c) share: the record file their
 * serving processes write (harness_serve_records), one line per call, whole at
 * its end ("NAME SEQ START END", µs of CLOCK_MONOTONIC), and the checks
 * made on it: each name's calls ran in order and never overlapped, and
 * calls of different names did overlap; and the agents' figures they
 * read (stats_of, tasklet_figure) and rules they change (set_rules);
 * check_two_tasklets schedules two tasklets' calls and makes the checks.
 * Header-only, static: each test includes it once. */
#ifndef TASKLET_RECORDS_H
#define TASKLET_RECORDS_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "harness.h"
#include "tap.h"

static long long mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

struct rec { char name[8]; long seq; long long t0, t1; };

static int read_records(const char *path, struct rec *r, int max)
{
	FILE *f = fopen(path, "r");
	int n = 0;
	while (f && n < max && fscanf(f, "%7s %ld %lld %lld", r[n].name, &r[n].seq, &r[n].t0,
				      &r[n].t1) == 4)
		n++;
	if (f)
		fclose(f);
	return n;
}

/* Reads the records until there are want of them, 10 s at most. */
static int wait_records(const char *path, struct rec *r, int max, int want)
{
	int n = 0;
	for (long long end = now_ms() + 10000; now_ms() < end && n < want; usleep(20000))
		n = read_records(path, r, max);
	return n;
}

struct rec_check {
	int overlap_same;   /* pairs of one name's calls that overlapped (x2) */
	int overlap_other;  /* pairs of different names' calls that did (x2) */
	int order_ok;       /* each name's seqs ran 1, 2, 3, ... */
};

/* Two names: first and any other. */
static struct rec_check check_records(const struct rec *r, int n, const char *first)
{
	struct rec_check c = { 0, 0, 1 };
	long last[2] = { 0, 0 };
	for (int i = 0; i < n; i++) {
		int k = strcmp(r[i].name, first) != 0;
		if (r[i].seq != last[k] + 1)
			c.order_ok = 0;
		last[k] = r[i].seq;
		for (int j = 0; j < n; j++) {
			if (i == j || r[i].t0 >= r[j].t1 || r[j].t0 >= r[i].t1)
				continue;
			if (strcmp(r[i].name, r[j].name) == 0)
				c.overlap_same++;
			else
				c.overlap_other++;
		}
	}
	return c;
}

/* The record of one call for device dev (named dDEV) that started at t0
 * (mono_us), written whole at its end: 0, or -1 if it could not be. */
static inline long record_call(int fd, long dev, long seq, long long t0)
{
	char line[96];
	int n = snprintf(line, sizeof line, "d%ld %ld %lld %lld\n", dev, seq, t0, mono_us());
	return write(fd, line, (size_t)n) == n ? 0 : -1;
}

/* govagent --stats RESOURCE (malloc'ed), NULL if it did not answer. Not
 * inlined: gcc 12 then warns of a dangling pointer to out that is not. */
static __attribute__((noinline, unused)) char *stats_of(const char *resource)
{
	char *const argv[] = { GOVAGENT_PATH, "--stats", (char *)resource, NULL };
	char *out = NULL;
	run_capture(argv, &out);
	return out;
}

/* "KEY":N of tasklet name in resource's stats, -1 if it has none. */
static inline long tasklet_figure(const char *resource, const char *name, const char *key)
{
	char *st = stats_of(resource), pat[96];
	snprintf(pat, sizeof pat, "{\"name\":\"%s\",", name);
	char *row = st ? strstr(st, pat) : NULL, *end = row ? strchr(row, '}') : NULL;
	snprintf(pat, sizeof pat, "\"%s\":", key);
	char *k = row ? strstr(row, pat) : NULL;
	long v = k && k < end ? strtol(k + strlen(pat), NULL, 10) : -1;
	free(st);
	return v;
}

/* The agent's rules file rewritten, and waited for (20 s at most) until
 * its statistics show a later rules_rev. */
static inline void set_rules(pid_t agent, const char *resource, const char *rules)
{
	long rev = agent_stat(resource, "rules_rev");
	agent_set_rules(agent, resource, rules);
	for (long long end = now_ms() + 20000; now_ms() < end && agent_stat(resource, "rules_rev") <= rev;)
		usleep(5000);
}

/* Schedules per calls of each of two tasklets, call i of both at a time
 * (schedule(i): how many of the two did not return 0), then checks the
 * record: every scheduling returned 0 and none waited for its call, every
 * call ran once, calls of one tasklet never overlapped and ran in the order
 * scheduled, and calls of the two did overlap. first names the first. */
static __attribute__((unused)) void check_two_tasklets(const char *record_path, long per,
						       long (*schedule)(long i),
						       const char *first, const char *second)
{
	long long t0 = mono_us();
	long bad = 0;
	for (long i = 1; i <= per; i++)
		bad += schedule(i);
	long long took = mono_us() - t0;
	int max = 2 * (int)per + 4;
	struct rec r[max];
	int early = read_records(record_path, r, max);
	is_long(bad, 0, "every scheduling returned 0");
	ok(early < 2 * per, "scheduling did not wait for the calls (%d of %ld ran, %lld us)", early,
	   2 * per, took);
	int n = wait_records(record_path, r, max, 2 * (int)per);
	is_long(n, 2 * per, "every scheduled call ran once");
	struct rec_check c = check_records(r, n, first);
	is_long(c.overlap_same, 0, "calls of one tasklet never overlap");
	ok(c.order_ok, "each tasklet ran its calls in the order scheduled");
	ok(c.overlap_other > 0, "calls of %s and %s ran at the same time (%d overlaps)", first,
	   second, c.overlap_other / 2);
}

#endif
