/* tests/tasklet_records.h - what the tasklet tests (t_tasklet.c,
 * t_tasklet_schedule.c, t_tasklet_forward.c) share: the record file their
 * serving processes write (harness_serve_records), one line per call, whole at
 * its end ("NAME SEQ START END", µs of CLOCK_MONOTONIC), and the checks
 * made on it: each name's calls ran in order and never overlapped, and
 * calls of different names did overlap.
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

#endif
