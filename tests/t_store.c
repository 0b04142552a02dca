/* tests/t_store.c - the rule store (rules/store.h) on its SQLite backend:
 * keys, revisions and transactions; watches that catch up and then follow
 * live, woken across processes; concurrent writers that lose nothing; a
 * writer killed mid-transaction that leaves all or nothing; and bad input
 * refused with a reason and nothing changed; reads batched in one snapshot;
 * watches of one store sharing a connection, from several threads, seeing
 * every commit (no stale page cache) and outliving their store. Each test has its own
 * directory under /tmp. Handles never cross fork(): children open their own. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "store.h"
#include "tap.h"

static char err[512];
static char *dirs[32];
static int ndirs;

static long long mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const char *new_dir(void)
{
	char tmpl[] = "/tmp/t_store.XXXXXX";
	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		exit(1);
	}
	return dirs[ndirs++] = strdup(tmpl);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static void remove_dirs(void)
{
	for (int i = 0; i < ndirs; i++)
		nftw(dirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *url_in(const char *dir)
{
	static char url[600];
	snprintf(url, sizeof url, "sqlite:%s/store.db", dir);
	return url;
}

static struct gov_store *open_in(const char *dir)
{
	struct gov_store *s;
	err[0] = 0;
	if (gov_store_open(url_in(dir), &s, err, sizeof err) != 0) {
		diag("cannot open the store in %s: %s", dir, err);
		return NULL;
	}
	return s;
}

static uint64_t revision(struct gov_store *s)
{
	uint64_t rev = 0;
	if (gov_store_revision(s, &rev, err, sizeof err) != 0)
		diag("revision: %s", err);
	return rev;
}

static int put_str(struct gov_store *s, const char *key, const char *value, uint64_t *rev)
{
	err[0] = 0;
	int r = gov_store_put(s, key, value, strlen(value), rev, err, sizeof err);
	if (r != 0)
		diag("put %s: %d %s", key, r, err);
	return r;
}

/* The value of key, or "(absent)" / "(error)". */
static const char *value_of(struct gov_store *s, const char *key)
{
	static char buf[256];
	struct gov_kv kv;
	int r = gov_store_get(s, key, &kv, err, sizeof err);
	if (r == GOV_STORE_NOT_FOUND)
		return "(absent)";
	if (r != 0)
		return "(error)";
	snprintf(buf, sizeof buf, "%s", (const char *)kv.value);
	gov_kv_clear(&kv);
	return buf;
}

static size_t count_prefix(struct gov_store *s, const char *prefix)
{
	struct gov_kv *items;
	size_t n = 0;
	if (gov_store_list(s, prefix, &items, &n, NULL, err, sizeof err) != 0) {
		diag("list %s: %s", prefix, err);
		return (size_t)-1;
	}
	gov_kv_free(items, n);
	return n;
}

/* Events gathered from a watch until want of them arrived or timeout_ms passed. */
struct seen {
	struct gov_event *ev;
	int n, cap;
};

static void gather(struct gov_watch *w, struct seen *all, int want, int timeout_ms)
{
	long long end = mono_ns() + timeout_ms * 1000000LL;
	while (all->n < want) {
		long long left = (end - mono_ns()) / 1000000;
		if (left < 0)
			left = 0;
		struct gov_event *evs;
		int n = gov_watch_next(w, &evs, (int)left, err, sizeof err);
		if (n < 0) {
			diag("watch: %s", err);
			return;
		}
		if (all->n + n > all->cap) {
			all->cap = (all->n + n) * 2;
			all->ev = realloc(all->ev, (size_t)all->cap * sizeof *all->ev);
		}
		if (n)
			memcpy(all->ev + all->n, evs, (size_t)n * sizeof *evs);
		all->n += n;
		free(evs); /* the keys and values now belong to all */
		if (n == 0 && left == 0)
			return;
	}
}

static void seen_free(struct seen *all)
{
	gov_events_free(all->ev, all->n);
	memset(all, 0, sizeof *all);
}

/* ---- 1. keys and revisions ---------------------------------------------- */

static void test_basic(void)
{
	const char *dir = new_dir();
	struct gov_store *s = open_in(dir);
	if (!ok(s, "a new store opens (%s)", err))
		return;
	has_str(gov_store_url(s), "/store.db", "the store tells its URL");
	is_long(revision(s), 0, "a new store is at revision 0");

	struct gov_kv kv;
	uint64_t rev = 99;
	is_long(gov_store_get(s, "/a/1", &kv, err, sizeof err), GOV_STORE_NOT_FOUND,
		"get of an absent key: GOV_STORE_NOT_FOUND");
	is_long(gov_store_delete(s, "/a/1", &rev, err, sizeof err), GOV_STORE_NOT_FOUND,
		"delete of an absent key: GOV_STORE_NOT_FOUND");
	is_long(revision(s), 0, "and it makes no revision");

	static const char *const keys[] = { "/a/2", "/a/1", "/b/1", "/a/10", "/a" };
	int steps = 1;
	for (int i = 0; i < 5; i++) {
		put_str(s, keys[i], keys[i], &rev);
		if (rev != (uint64_t)i + 1)
			steps = 0;
	}
	ok(steps, "five puts make revisions 1 to 5");

	ok(gov_store_get(s, "/a/2", &kv, err, sizeof err) == 0 && strcmp(kv.key, "/a/2") == 0 &&
	   kv.len == 4 && strcmp((char *)kv.value, "/a/2") == 0, "get returns the key and value");
	ok(kv.create_rev == 1 && kv.mod_rev == 1 && kv.version == 1,
	   "a new key: create_rev = mod_rev = its revision, version 1");
	gov_kv_clear(&kv);
	put_str(s, "/a/2", "again", &rev);
	is_long(rev, 6, "a second put of a key makes revision 6");
	ok(gov_store_get(s, "/a/2", &kv, err, sizeof err) == 0 && kv.create_rev == 1 &&
	   kv.mod_rev == 6 && kv.version == 2 && strcmp((char *)kv.value, "again") == 0,
	   "and keeps create_rev, moves mod_rev, counts version 2");
	gov_kv_clear(&kv);

	struct gov_kv *items;
	size_t n;
	uint64_t lrev = 0;
	ok(gov_store_list(s, "/a/", &items, &n, &lrev, err, sizeof err) == 0, "list /a/ (%s)", err);
	ok(n == 3 && strcmp(items[0].key, "/a/1") == 0 && strcmp(items[1].key, "/a/10") == 0 &&
	   strcmp(items[2].key, "/a/2") == 0, "list /a/: the three keys under it in key order, "
	   "not /a nor /b/1");
	is_long(lrev, 6, "list tells the revision it read");
	ok(n == 3 && strcmp((char *)items[2].value, "again") == 0 && items[2].version == 2,
	   "list returns values and versions");
	gov_kv_free(items, n);
	is_long(count_prefix(s, ""), 5, "list of the empty prefix: every key");
	is_long(count_prefix(s, "/zz"), 0, "list of a prefix with no key: none");

	/* Prefix bounds at the end of the byte range. */
	put_str(s, "/p\xff\xff", "1", NULL);
	put_str(s, "/p\xff", "2", NULL);
	put_str(s, "/q", "3", NULL);
	put_str(s, "/p\xfe\xff", "4", NULL);
	is_long(count_prefix(s, "/p\xff"), 2, "a prefix ending in 0xff bytes: the keys under it");
	is_long(count_prefix(s, "/p"), 3, "a prefix followed by 0xfe and 0xff bytes: all of them");
	rev = revision(s);

	static const char bin[] = { 'x', 0, 'y', 0, 0, 'z' };
	ok(gov_store_put(s, "/bin", bin, sizeof bin, NULL, err, sizeof err) == 0,
	   "a value with NULs is stored");
	ok(gov_store_get(s, "/bin", &kv, err, sizeof err) == 0 && kv.len == 6 &&
	   memcmp(kv.value, bin, 6) == 0 && kv.value[6] == 0,
	   "and comes back byte for byte, NUL-terminated after its length");
	gov_kv_clear(&kv);
	ok(gov_store_put(s, "/empty", NULL, 0, NULL, err, sizeof err) == 0, "an empty value is stored");
	ok(gov_store_get(s, "/empty", &kv, err, sizeof err) == 0 && kv.len == 0 && kv.value &&
	   kv.value[0] == 0, "and comes back as \"\", length 0");
	gov_kv_clear(&kv);
	is_long(revision(s), rev + 2, "each of them one revision");

	uint64_t drev;
	ok(gov_store_delete(s, "/a/1", &drev, err, sizeof err) == 0 && drev == rev + 3,
	   "delete makes the next revision");
	is_long(gov_store_get(s, "/a/1", &kv, err, sizeof err), GOV_STORE_NOT_FOUND,
		"a deleted key is gone");
	is_long(gov_store_delete(s, "/a/1", &rev, err, sizeof err), GOV_STORE_NOT_FOUND,
		"deleting it again: GOV_STORE_NOT_FOUND");
	is_long(revision(s), drev, "and no revision");
	put_str(s, "/a/1", "back", &rev);
	ok(gov_store_get(s, "/a/1", &kv, err, sizeof err) == 0 && kv.create_rev == rev &&
	   kv.version == 1, "a key put again after its delete starts over: create_rev new, version 1");
	gov_kv_clear(&kv);

	gov_store_close(s);
	s = open_in(dir);
	ok(s && revision(s) == rev && strcmp(value_of(s, "/a/2"), "again") == 0,
	   "closed and opened again: the revision and the values are there");
	gov_store_close(s);
}

/* ---- 2. transactions ------------------------------------------------------ */

static void test_txn(void)
{
	struct gov_store *s = open_in(new_dir());
	if (!ok(s, "a store for transactions"))
		return;
	uint64_t r0, rev;
	put_str(s, "/t/old", "old", &r0);
	put_str(s, "/t/keep", "keep", NULL);

	struct gov_txn_cmp cmps[] = { { "/t/x", 0 }, { "/t/old", r0 } };
	struct gov_txn_op ops[] = {
		{ GOV_TXN_PUT, "/t/x", "x", 1 },
		{ GOV_TXN_PUT, "/t/y", "y", 1 },
		{ GOV_TXN_DELETE, "/t/old", NULL, 0 },
	};
	ok(gov_store_txn(s, cmps, 2, ops, 3, &rev, err, sizeof err) == 0,
	   "a transaction whose comparisons hold commits (%s)", err);
	is_long(rev, r0 + 2, "as one revision");
	is_long(revision(s), r0 + 2, "the store is at that revision");
	struct gov_kv kv;
	ok(gov_store_get(s, "/t/x", &kv, err, sizeof err) == 0 && kv.mod_rev == rev &&
	   kv.create_rev == rev, "its puts carry the transaction's revision");
	gov_kv_clear(&kv);
	ok(strcmp(value_of(s, "/t/y"), "y") == 0 && strcmp(value_of(s, "/t/old"), "(absent)") == 0,
	   "every put and delete is applied");

	uint64_t before = rev, got = 0;
	struct gov_txn_cmp stale[] = { { "/t/keep", 0 }, { "/t/x", rev - 1 } };
	struct gov_txn_op more[] = {
		{ GOV_TXN_PUT, "/t/x", "changed", 7 },
		{ GOV_TXN_DELETE, "/t/y", NULL, 0 },
		{ GOV_TXN_PUT, "/t/new", "new", 3 },
	};
	is_long(gov_store_txn(s, stale + 1, 1, more, 3, &got, err, sizeof err), GOV_STORE_CONFLICT,
		"a stale mod_rev: GOV_STORE_CONFLICT");
	is_long(got, before, "and *rev tells the current revision");
	is_long(gov_store_txn(s, stale, 1, more, 3, &got, err, sizeof err), GOV_STORE_CONFLICT,
		"\"must not exist\" (0) on a key that exists: GOV_STORE_CONFLICT");
	is_long(revision(s), before, "a failed transaction makes no revision");
	ok(strcmp(value_of(s, "/t/x"), "x") == 0 && strcmp(value_of(s, "/t/y"), "y") == 0 &&
	   strcmp(value_of(s, "/t/new"), "(absent)") == 0, "and changes no value");

	struct gov_txn_cmp fresh[] = { { "/t/x", before } };
	ok(gov_store_txn(s, fresh, 1, more, 3, &got, err, sizeof err) == 0 && got == before + 1,
	   "with the right mod_rev it commits");
	ok(strcmp(value_of(s, "/t/x"), "changed") == 0 && strcmp(value_of(s, "/t/y"), "(absent)") == 0 &&
	   strcmp(value_of(s, "/t/new"), "new") == 0, "all of it");

	struct gov_txn_op twice[] = {
		{ GOV_TXN_PUT, "/t/z", "1", 1 },
		{ GOV_TXN_PUT, "/t/z", "2", 1 },
	};
	ok(gov_store_txn(s, NULL, 0, twice, 2, &got, err, sizeof err) == 0 &&
	   strcmp(value_of(s, "/t/z"), "2") == 0, "operations apply in order: the last put wins");

	before = revision(s);
	ok(gov_store_txn(s, NULL, 0, NULL, 0, &got, err, sizeof err) == 0 && got == before,
	   "a transaction without operations succeeds and makes no revision");
	struct gov_txn_op absent[] = { { GOV_TXN_DELETE, "/t/none", NULL, 0 } };
	ok(gov_store_txn(s, NULL, 0, absent, 1, &got, err, sizeof err) == 0 && got == before &&
	   revision(s) == before, "nor does one whose only delete finds nothing");
	gov_store_close(s);
}

/* ---- 3. watches ----------------------------------------------------------- */

static void test_watch(void)
{
	struct gov_store *s = open_in(new_dir());
	if (!ok(s, "a store for watches"))
		return;
	put_str(s, "/w/1", "a", NULL);                                /* 1 */
	put_str(s, "/x/1", "b", NULL);                                /* 2 */
	put_str(s, "/w/2", "c", NULL);                                /* 3 */
	gov_store_delete(s, "/w/1", NULL, err, sizeof err);           /* 4 */
	struct gov_txn_op ops[] = {
		{ GOV_TXN_PUT, "/w/3", "d", 1 },
		{ GOV_TXN_PUT, "/x/2", "e", 1 },
	};
	gov_store_txn(s, NULL, 0, ops, 2, NULL, err, sizeof err);     /* 5 */

	struct gov_watch *w, *w0, *wp;
	ok(gov_store_watch(s, "", 2, &w, err, sizeof err) == 0, "watch everything from revision 2 (%s)", err);
	ok(gov_store_watch(s, "", 0, &w0, err, sizeof err) == 0, "watch from 0: only what comes");
	ok(gov_store_watch(s, "/w/", 1, &wp, err, sizeof err) == 0, "watch /w/ from revision 1");

	struct gov_event *evs;
	int n = gov_watch_next(w, &evs, 0, err, sizeof err);
	is_long(n, 5, "the watch from 2 catches up with the 5 events of revisions 2 to 5");
	if (n == 5) {
		ok(evs[0].kind == GOV_EVENT_PUT && strcmp(evs[0].kv.key, "/x/1") == 0 &&
		   evs[0].kv.mod_rev == 2 && strcmp((char *)evs[0].kv.value, "b") == 0 &&
		   evs[0].kv.version == 1 && evs[0].kv.create_rev == 2, "first the put of revision 2");
		ok(evs[1].kv.mod_rev == 3 && evs[2].kind == GOV_EVENT_DELETE &&
		   strcmp(evs[2].kv.key, "/w/1") == 0 && evs[2].kv.mod_rev == 4,
		   "then revision 3, then the delete of revision 4 with its revision");
		ok(evs[3].kv.mod_rev == 5 && evs[4].kv.mod_rev == 5 &&
		   strcmp(evs[3].kv.key, "/w/3") == 0 && strcmp(evs[4].kv.key, "/x/2") == 0,
		   "then both events of the transaction, sharing revision 5, in order");
	}
	gov_events_free(evs, n);
	is_long(gov_watch_next(w, &evs, 0, err, sizeof err), 0, "then nothing (timeout 0)");
	is_long(gov_watch_next(w0, &evs, 0, err, sizeof err), 0, "the watch from 0 has nothing yet");

	n = gov_watch_next(wp, &evs, 0, err, sizeof err);
	ok(n == 4 && strcmp(evs[0].kv.key, "/w/1") == 0 && strcmp(evs[1].kv.key, "/w/2") == 0 &&
	   evs[2].kind == GOV_EVENT_DELETE && strcmp(evs[3].kv.key, "/w/3") == 0,
	   "the /w/ watch gets the 4 events under /w/ only");
	gov_events_free(evs, n);

	struct pollfd p = { .fd = gov_watch_fd(w0), .events = POLLIN };
	ok(poll(&p, 1, 0) == 0, "the watch descriptor is quiet");
	put_str(s, "/x/3", "live", NULL);                             /* 6 */
	ok(poll(&p, 1, 1000) == 1, "a commit makes it readable");
	n = gov_watch_next(w0, &evs, 0, err, sizeof err);
	ok(n == 1 && evs[0].kv.mod_rev == 6 && strcmp(evs[0].kv.key, "/x/3") == 0,
	   "the watch from 0 gets only the new event");
	gov_events_free(evs, n);
	ok(poll(&p, 1, 0) == 0, "and gov_watch_next drained the descriptor");
	n = gov_watch_next(w, &evs, 1000, err, sizeof err);
	ok(n == 1 && evs[0].kv.mod_rev == 6, "the caught-up watch follows live");
	gov_events_free(evs, n);
	long long t0 = mono_ns();
	n = gov_watch_next(wp, &evs, 100, err, sizeof err);
	long long waited = (mono_ns() - t0) / 1000000;
	ok(n == 0 && waited >= 90 && waited < 2000,
	   "the /w/ watch ignores it and times out after 100 ms (%lld ms)", waited);

	struct gov_watch *wf;
	ok(gov_store_watch(s, "", 8, &wf, err, sizeof err) == 0, "a watch from a future revision (8)");
	put_str(s, "/x/4", "7", NULL);                                /* 7 */
	put_str(s, "/x/5", "8", NULL);                                /* 8 */
	n = gov_watch_next(wf, &evs, 1000, err, sizeof err);
	ok(n == 1 && evs[0].kv.mod_rev == 8, "gets nothing before it, then revision 8");
	gov_events_free(evs, n);
	gov_watch_close(wf);

	/* The revision file deleted under a watcher: the watch re-arms itself. */
	char revfile[600];
	snprintf(revfile, sizeof revfile, "%s.rev", url_in(dirs[ndirs - 1]) + 7);
	n = gov_watch_next(w0, &evs, 0, err, sizeof err);
	gov_events_free(evs, n);
	unlink(revfile);
	n = gov_watch_next(w0, &evs, 0, err, sizeof err);
	gov_events_free(evs, n);
	put_str(s, "/x/6", "9", NULL);                                /* 9 */
	t0 = mono_ns();
	n = gov_watch_next(w0, &evs, 5000, err, sizeof err);
	waited = (mono_ns() - t0) / 1000000;
	ok(n == 1 && evs[0].kv.mod_rev == 9 && waited < 500,
	   "after its revision file was deleted, a watch still wakes on the next commit (%lld ms)",
	   waited);
	gov_events_free(evs, n);

	gov_watch_close(w);
	gov_watch_close(w0);
	gov_watch_close(wp);
	gov_store_close(s);
}

/* ---- 3b. read batches and the watches' shared connection ----------------- */

static void test_batch(void)
{
	const char *dir = new_dir();
	struct gov_store *s = open_in(dir), *other = open_in(dir);
	if (!ok(s && other, "two handles on one store"))
		return;
	uint64_t rev0 = 0, rev = 0;
	put_str(s, "/b/1", "a", NULL);
	put_str(s, "/b/2", "b", &rev0);
	ok(gov_store_read_begin(s, err, sizeof err) == 0, "a read batch begins (%s)", err);
	ok(strcmp(value_of(s, "/b/1"), "a") == 0, "a get in the batch");
	put_str(other, "/b/1", "A", NULL);
	put_str(other, "/b/3", "c", NULL);
	ok(strcmp(value_of(s, "/b/1"), "a") == 0, "another handle's commits are not seen in the batch");
	struct gov_kv *items;
	size_t n = 0;
	int listed = gov_store_list(s, "/b/", &items, &n, &rev, err, sizeof err);
	ok(listed == 0 && n == 2 && rev == rev0,
	   "a listing in the batch: the same snapshot (%zu keys, revision %llu of %llu)", n,
	   (unsigned long long)rev, (unsigned long long)rev0);
	if (n)
		gov_kv_free(items, n);
	err[0] = 0;
	ok(gov_store_put(s, "/b/9", "x", 1, NULL, err, sizeof err) < 0 && strstr(err, "read batch"),
	   "a write on the handle is refused with why (%s)", err);
	err[0] = 0;
	ok(gov_store_read_begin(s, err, sizeof err) < 0 && strstr(err, "already"),
	   "and a second batch (%s)", err);
	gov_store_read_end(s);
	ok(strcmp(value_of(other, "/b/9"), "(absent)") == 0, "the refused write changed nothing");
	ok(strcmp(value_of(s, "/b/1"), "A") == 0, "after the batch the handle sees the commits");
	is_long((long)count_prefix(s, "/b/"), 3, "all 3 keys");
	ok(put_str(s, "/b/9", "x", NULL) == 0, "and writes again");
	gov_store_close(s);
	gov_store_close(other);
}

struct follower {
	struct gov_watch *w;
	struct seen all;
	int want;
};

static void *follow(void *arg)
{
	struct follower *f = arg;
	gather(f->w, &f->all, f->want, 20000);
	return NULL;
}

static int in_order(const struct seen *all, const char *prefix)
{
	for (int i = 0; i < all->n; i++) {
		char want[64];
		snprintf(want, sizeof want, "%s%03d", prefix, i);
		if (strcmp(all->ev[i].kv.key, want) != 0)
			return 0;
	}
	return 1;
}

static void test_shared_watches(void)
{
	const char *dir = new_dir();
	struct gov_store *s = open_in(dir), *other = open_in(dir);
	if (!ok(s && other, "a store for watches sharing a connection"))
		return;
	struct gov_watch *wa, *wb;
	ok(gov_store_watch(s, "/a/", 0, &wa, err, sizeof err) == 0 &&
	   gov_store_watch(s, "/b/", 0, &wb, err, sizeof err) == 0, "two watches of one store");
	struct gov_event *evs;
	put_str(other, "/a/x", "1", NULL);
	int n = gov_watch_next(wa, &evs, 1000, err, sizeof err);
	ok(n == 1 && strcmp(evs[0].kv.key, "/a/x") == 0, "the first watch takes its event");
	gov_events_free(evs, n);
	/* the connection has read the store at that commit; the next commit
	 * must still be seen by the other watch */
	struct gov_txn_op ops[] = { { GOV_TXN_PUT, "/a/y", "2", 1 }, { GOV_TXN_PUT, "/b/y", "3", 1 } };
	gov_store_txn(other, NULL, 0, ops, 2, NULL, err, sizeof err);
	n = gov_watch_next(wb, &evs, 1000, err, sizeof err);
	ok(n == 1 && strcmp(evs[0].kv.key, "/b/y") == 0, "the second sees the next commit");
	gov_events_free(evs, n);
	n = gov_watch_next(wa, &evs, 1000, err, sizeof err);
	ok(n == 1 && strcmp(evs[0].kv.key, "/a/y") == 0, "and so does the first");
	gov_events_free(evs, n);

	/* a read batch of the store runs on the watches' connection */
	put_str(other, "/a/x", "changed", NULL);
	n = gov_watch_next(wa, &evs, 1000, err, sizeof err);
	gov_events_free(evs, n);
	put_str(other, "/a/x", "again", NULL);
	ok(gov_store_read_begin(s, err, sizeof err) == 0, "a read batch of the watched store");
	ok(strcmp(value_of(s, "/a/x"), "again") == 0,
	   "sees the commit after the one the watch read last");
	err[0] = 0;
	n = gov_watch_next(wa, &evs, 0, err, sizeof err);
	ok(n < 0 && strstr(err, "inside a read batch"),
	   "a watch of the store taken inside the batch is refused with why (%s)", err);
	gov_store_read_end(s);
	n = gov_watch_next(wa, &evs, 1000, err, sizeof err);
	ok(n == 1 && strcmp((char *)evs[0].kv.value, "again") == 0, "and after it gets its event");
	gov_events_free(evs, n);

	/* each in its own thread while another handle commits */
	enum { COMMITS = 60 };
	struct follower fa = { wa, { 0 }, COMMITS }, fb = { wb, { 0 }, COMMITS };
	pthread_t ta, tb;
	pthread_create(&ta, NULL, follow, &fa);
	pthread_create(&tb, NULL, follow, &fb);
	for (int i = 0; i < COMMITS; i++) {
		char ka[32], kb[32];
		snprintf(ka, sizeof ka, "/a/%03d", i);
		snprintf(kb, sizeof kb, "/b/%03d", i);
		struct gov_txn_op two[] = { { GOV_TXN_PUT, ka, "v", 1 }, { GOV_TXN_PUT, kb, "v", 1 } };
		gov_store_txn(other, NULL, 0, two, 2, NULL, err, sizeof err);
	}
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	ok(fa.all.n == COMMITS && in_order(&fa.all, "/a/") && fb.all.n == COMMITS &&
	   in_order(&fb.all, "/b/"), "two threads following a watch each get all %d of theirs, "
	   "in order (%d, %d)", COMMITS, fa.all.n, fb.all.n);
	seen_free(&fa.all);
	seen_free(&fb.all);

	ok(gov_store_read_begin(s, err, sizeof err) == 0, "a batch left open when its store closes");
	gov_store_close(s);
	put_str(other, "/a/z", "after", NULL);
	n = gov_watch_next(wa, &evs, 1000, err, sizeof err);
	ok(n == 1 && strcmp(evs[0].kv.key, "/a/z") == 0, "a watch outlives its store");
	gov_events_free(evs, n);
	gov_watch_close(wa);
	put_str(other, "/b/z", "after", NULL);
	n = gov_watch_next(wb, &evs, 1000, err, sizeof err);
	ok(n == 1 && strcmp(evs[0].kv.key, "/b/z") == 0, "and the other one its sibling");
	gov_events_free(evs, n);
	gov_watch_close(wb);
	gov_store_close(other);
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

/* A writer in another process commits one put each time the watcher asks
 * (a byte on go), with the monotonic time just before the put as the value,
 * and sends back the time the put returned: the revision file is written
 * last, so that is within microseconds of the wake-up signal. */
static void latency_writer(const char *dir, int go, int back, int rounds)
{
	struct gov_store *s = open_in(dir);
	if (!s)
		_exit(1);
	char c, key[32];
	for (int i = 0; i < rounds && read(go, &c, 1) == 1; i++) {
		snprintf(key, sizeof key, "/lat/%04d", i);
		long long t0 = mono_ns();
		if (gov_store_put(s, key, &t0, sizeof t0, NULL, err, sizeof err) != 0)
			_exit(2);
		long long t1 = mono_ns();
		if (write(back, &t1, sizeof t1) != sizeof t1)
			_exit(3);
	}
	_exit(0);
}

static void test_latency(void)
{
	enum { ROUNDS = 200 };
	const char *dir = new_dir();
	struct gov_store *s = open_in(dir);
	gov_store_close(s);
	int go[2], back[2];
	if (pipe(go) < 0 || pipe(back) < 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(back[0]);
		latency_writer(dir, go[0], back[1], ROUNDS);
	}
	close(go[0]);
	close(back[1]);
	struct gov_watch *w = NULL;
	s = open_in(dir);
	if (!s || gov_store_watch(s, "/lat/", 0, &w, err, sizeof err) != 0) {
		ok(0, "a watch for the latency test (%s)", err);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return;
	}
	static long long lat[ROUNDS], put[ROUNDS], wake[ROUNDS];
	int got = 0, inorder = 1;
	for (int i = 0; i < ROUNDS; i++) {
		if (write(go[1], "g", 1) != 1)
			break;
		struct gov_event *evs;
		int n = gov_watch_next(w, &evs, 5000, err, sizeof err);
		long long seen = mono_ns();
		if (n != 1 || evs[0].kv.len != sizeof(long long)) {
			diag("round %d: %d events (%s)", i, n, n < 0 ? err : "");
			gov_events_free(evs, n);
			break;
		}
		long long t0;
		memcpy(&t0, evs[0].kv.value, sizeof t0);
		if (evs[0].kv.mod_rev != (uint64_t)i + 1)
			inorder = 0;
		gov_events_free(evs, n);
		lat[got] = seen - t0;
		long long t1;
		if (read(back[0], &t1, sizeof t1) != sizeof t1)
			break;
		put[got] = t1 - t0;
		wake[got] = seen - t1;
		got++;
	}
	close(go[1]);
	int status;
	waitpid(pid, &status, 0);
	close(back[0]);
	is_long(got, ROUNDS, "a watcher sees each of %d commits made by another process", ROUNDS);
	ok(inorder, "one event each, in revision order");
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writer process succeeded");
	if (got) {
		qsort(lat, (size_t)got, sizeof *lat, cmp_ll);
		qsort(put, (size_t)got, sizeof *put, cmp_ll);
		qsort(wake, (size_t)got, sizeof *wake, cmp_ll);
		diag("over %d commits by another process: the watcher holds the event a median "
		     "%.0f us (90%% %.0f, max %.0f) after the writer's put returned",
		     got, wake[got / 2] / 1e3, wake[got * 9 / 10] / 1e3, wake[got - 1] / 1e3);
		diag("and %.0f us (90%% %.0f, max %.0f) after it began; the put itself "
		     "(BEGIN IMMEDIATE .. COMMIT with its fsync) takes a median %.0f us",
		     lat[got / 2] / 1e3, lat[got * 9 / 10] / 1e3, lat[got - 1] / 1e3,
		     put[got / 2] / 1e3);
		ok(lat[got / 2] < 50 * 1000000LL, "median wake-up latency under 50 ms");
	}
	gov_watch_close(w);
	gov_store_close(s);
}

/* ---- 4. concurrent writers ------------------------------------------------ */

static void concurrent_writer(const char *dir, int barrier, int who, int count)
{
	struct gov_store *s = open_in(dir);
	if (!s)
		_exit(1);
	char c, key[32], val[32];
	if (read(barrier, &c, 1) != 0) /* returns 0 when the parent lets go */
		_exit(2);
	for (int i = 0; i < count; i++) {
		snprintf(key, sizeof key, "/c/%d/%04d", who, i);
		snprintf(val, sizeof val, "%d:%d", who, i);
		if (gov_store_put(s, key, val, strlen(val), NULL, err, sizeof err) != 0) {
			fprintf(stderr, "writer %d: %s\n", who, err);
			_exit(3);
		}
	}
	gov_store_close(s);
	_exit(0);
}

/* Every event's revision is the previous one's + 1, starting at first. */
static int consecutive(const struct seen *all, uint64_t first)
{
	for (int i = 0; i < all->n; i++)
		if (all->ev[i].kv.mod_rev != first + (uint64_t)i) {
			diag("event %d has revision %" PRIu64 ", want %" PRIu64, i,
			     all->ev[i].kv.mod_rev, first + (uint64_t)i);
			return 0;
		}
	return 1;
}

static void test_concurrent(void)
{
	enum { EACH = 1000 };
	const char *dir = new_dir();
	struct gov_store *s;
	int barrier[2];
	if (pipe(barrier) < 0)
		return;
	pid_t pids[2];
	for (int k = 0; k < 2; k++)
		if ((pids[k] = fork()) == 0) {
			close(barrier[1]);
			concurrent_writer(dir, barrier[0], k, EACH);
		}
	close(barrier[0]);
	/* No database yet: the three processes create it at the same time. */
	s = open_in(dir);
	ok(s, "three processes create a new store at the same time (%s)", err);
	struct gov_watch *live = NULL;
	if (!s || gov_store_watch(s, "", 1, &live, err, sizeof err) != 0)
		diag("watch: %s", err);
	long long t0 = mono_ns();
	close(barrier[1]);
	struct seen all = { 0 };
	if (live)
		gather(live, &all, 2 * EACH, 30000);
	int ok_children = 1;
	for (int k = 0; k < 2; k++) {
		int status;
		waitpid(pids[k], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ok_children = 0;
	}
	double secs = (mono_ns() - t0) / 1e9;
	ok(ok_children, "two processes each made %d puts at the same time, none failed", EACH);
	diag("%d concurrent puts in %.2f s", 2 * EACH, secs);
	if (!s)
		return;
	is_long(revision(s), 2 * EACH, "the store is at revision %d", 2 * EACH);
	struct gov_kv *items;
	size_t n = 0;
	int every = gov_store_list(s, "/c/", &items, &n, NULL, err, sizeof err) == 0 &&
		    n == 2 * EACH;
	for (size_t i = 0; every && i < n; i++) {
		char key[32];
		snprintf(key, sizeof key, "/c/%d/%04d", (int)(i / EACH), (int)(i % EACH));
		every = strcmp(items[i].key, key) == 0 && items[i].version == 1;
	}
	gov_kv_free(items, n);
	ok(every, "every key is there, written once");
	is_long(all.n, 2 * EACH, "a watcher following live saw %d events", 2 * EACH);
	ok(consecutive(&all, 1), "with consecutive revisions from 1");
	seen_free(&all);

	struct gov_watch *later;
	if (gov_store_watch(s, "", 1, &later, err, sizeof err) == 0) {
		gather(later, &all, 2 * EACH + 1, 200);
		is_long(all.n, 2 * EACH, "a watcher from revision 1 afterwards sees exactly %d events",
			2 * EACH);
		ok(consecutive(&all, 1), "with consecutive revisions from 1");
		seen_free(&all);
		gov_watch_close(later);
	}
	gov_watch_close(live);
	gov_store_close(s);
}

/* ---- 5. a writer killed mid-transaction ------------------------------------ */

enum { CRASH_KEYS = 20000 };

static struct gov_txn_op crash_ops[CRASH_KEYS];

static void make_big_txn(int round)
{
	static char keys[CRASH_KEYS][24];
	static char value[64];
	memset(value, 'v', sizeof value - 1);
	for (int i = 0; i < CRASH_KEYS; i++) {
		snprintf(keys[i], sizeof keys[i], "/crash/%d/%05d", round, i);
		crash_ops[i] = (struct gov_txn_op){ GOV_TXN_PUT, keys[i], value, sizeof value - 1 };
	}
}

static int big_txn(struct gov_store *s)
{
	return gov_store_txn(s, NULL, 0, crash_ops, CRASH_KEYS, NULL, err, sizeof err);
}

static void test_crash(void)
{
	enum { ROUNDS = 6 };
	const char *dir = new_dir();
	struct gov_store *s = open_in(dir);
	if (!ok(s, "a store for the crash test"))
		return;
	put_str(s, "/before", "x", NULL);
	make_big_txn(0);
	long long t0 = mono_ns();
	ok(big_txn(s) == 0, "a transaction of %d puts commits (%s)", CRASH_KEYS, err);
	long long took_us = (mono_ns() - t0) / 1000;
	diag("a transaction of %d puts takes %lld ms", CRASH_KEYS, took_us / 1000);
	is_long(count_prefix(s, "/crash/0/"), CRASH_KEYS, "all of its keys are there");
	gov_store_close(s);

	srand((unsigned)(mono_ns() ^ getpid()));
	int whole = 1, committed = 0, none = 0;
	for (int round = 1; round <= ROUNDS; round++) {
		s = open_in(dir);
		uint64_t old = s ? revision(s) : 0;
		gov_store_close(s);
		int ready[2];
		if (pipe(ready) < 0)
			return;
		pid_t pid = fork();
		if (pid == 0) {
			close(ready[0]);
			struct gov_store *c = open_in(dir);
			make_big_txn(round);
			if (!c || write(ready[1], "r", 1) != 1)
				_exit(1);
			big_txn(c);
			_exit(0);
		}
		close(ready[1]);
		char c;
		/* The child is about to begin; a delay of up to 1.5 times the
		 * transaction's time lets some commit first. */
		long long delay = rand() % (took_us * 3 / 2 + 1);
		if (read(ready[0], &c, 1) == 1)
			usleep((useconds_t)delay);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(ready[0]);

		char prefix[32];
		snprintf(prefix, sizeof prefix, "/crash/%d/", round);
		s = open_in(dir);
		uint64_t rev = s ? revision(s) : 0;
		size_t n = s ? count_prefix(s, prefix) : 0;
		if (rev == old + 1 && n == CRASH_KEYS) {
			committed++;
			diag("killed after %lld ms: it had committed", delay / 1000);
		} else if (rev == old && n == 0) {
			none++;
			diag("killed after %lld ms: nothing of it is there", delay / 1000);
		} else {
			whole = 0;
			diag("round %d: revision %" PRIu64 " (was %" PRIu64 "), %zu keys", round, rev,
			     old, n);
		}
		gov_store_close(s);
	}
	ok(whole, "%d writers killed at a random moment of a %d-put transaction: each left all "
	   "or nothing, at the old or the next revision", ROUNDS, CRASH_KEYS);
	diag("%d committed before the kill, %d left nothing", committed, none);
	s = open_in(dir);
	uint64_t rev = s ? revision(s) : 0, r2 = 0;
	ok(s && put_str(s, "/after", "y", &r2) == 0 && r2 == rev + 1 &&
	   strcmp(value_of(s, "/before"), "x") == 0, "and the store goes on from there");

	/* Its history replays whole: one event per put, one revision per
	 * transaction, the large ones delivered whole. */
	struct gov_watch *w;
	if (s && gov_store_watch(s, "", 1, &w, err, sizeof err) == 0) {
		struct seen all = { 0 };
		gather(w, &all, INT32_MAX, 300);
		int want = 1 + CRASH_KEYS * (1 + committed) + 1, steps = all.n == want;
		for (int i = 1; steps && i < all.n; i++) {
			uint64_t a = all.ev[i - 1].kv.mod_rev, b = all.ev[i].kv.mod_rev;
			steps = b == a || b == a + 1;
		}
		ok(steps && all.n && all.ev[all.n - 1].kv.mod_rev == r2,
		   "a watch from revision 1 replays its %d events, revisions without a gap", want);
		seen_free(&all);
		gov_watch_close(w);
	}
	gov_store_close(s);
}

/* ---- 6. bad input ---------------------------------------------------------- */

static void refused(const char *url, const char *why, const char *what)
{
	struct gov_store *s = (struct gov_store *)&s;
	err[0] = 0;
	ok(gov_store_open(url, &s, err, sizeof err) == -1 && s == NULL, "%s is refused", what);
	has_str(err, why, "saying why");
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void test_bad(void)
{
	const char *dir = new_dir();
	char url[320], path[256];
	refused("redis:x", "unknown store scheme 'redis'", "an unknown scheme");
	refused("etcd:http://127.0.0.1:1", "cannot reach etcd", "an unreachable etcd");
	refused("/tmp/store.db", "no scheme", "a URL without a scheme");
	refused("sqlite:", "empty path", "sqlite: without a path");

	snprintf(url, sizeof url, "sqlite:%s/missing/x.db", dir);
	snprintf(path, sizeof path, "%s/missing", dir);
	refused(url, "cannot open: unable to open database file", "a path in a missing directory");
	has_str(err, url, "naming the URL");
	ok(!exists(path), "and the directory is not created");

	/* Garbage: larger than a page, and shorter than the header. */
	static const char *const junk[] = {
		"this is not a database\n",
		NULL,
	};
	char big[8192];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)("garbage!\n"[i % 9]);
	for (int k = 0; k < 2; k++) {
		const char *bytes = junk[k] ? junk[k] : big;
		size_t len = junk[k] ? strlen(junk[k]) : sizeof big;
		snprintf(path, sizeof path, "%s/junk%d.db", dir, k);
		FILE *f = fopen(path, "wb");
		fwrite(bytes, 1, len, f);
		fclose(f);
		snprintf(url, sizeof url, "sqlite:%s", path);
		refused(url, "not a database", k ? "a file of 8 KiB of garbage" : "a short garbage file");
		size_t got = 0;
		char *now = slurp(path, &got);
		ok(now && got == len && memcmp(now, bytes, len) == 0, "and the file is left as it was");
		free(now);
		char side[700];
		snprintf(side, sizeof side, "%s-wal", path);
		int extra = exists(side);
		snprintf(side, sizeof side, "%s.rev", path);
		ok(!extra && !exists(side), "with no -wal or .rev file beside it");
	}

	/* Another program's SQLite database. */
	snprintf(path, sizeof path, "%s/other.db", dir);
	sqlite3 *db;
	if (sqlite3_open(path, &db) == SQLITE_OK) {
		sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)", NULL, NULL, NULL);
		sqlite3_close(db);
	}
	size_t before_len = 0, after_len = 0;
	char *before = slurp(path, &before_len);
	snprintf(url, sizeof url, "sqlite:%s", path);
	refused(url, "not a rule store", "another program's SQLite database");
	char *after = slurp(path, &after_len);
	ok(before && after && before_len == after_len && memcmp(before, after, before_len) == 0,
	   "and it is left as it was");
	free(before);
	free(after);

	struct gov_store *s = open_in(dir);
	if (!ok(s, "a good store beside them"))
		return;
	uint64_t rev;
	put_str(s, "/k", "v", &rev);
	struct gov_kv kv;
	err[0] = 0;
	is_long(gov_store_put(s, "", "x", 1, NULL, err, sizeof err), -1, "put of an empty key fails");
	has_str(err, "empty key", "saying why");
	is_long(gov_store_put(s, NULL, "x", 1, NULL, err, sizeof err), -1, "put of a NULL key fails");
	is_long(gov_store_get(s, "", &kv, err, sizeof err), -1, "get of an empty key fails");
	is_long(gov_store_delete(s, "", NULL, err, sizeof err), -1, "delete of an empty key fails");
	has_str(err, "empty key", "saying why");
	is_long(gov_store_put(s, "/n", NULL, 5, NULL, err, sizeof err), -1,
		"put of no value with a length fails");
	struct gov_txn_op ops[] = {
		{ GOV_TXN_PUT, "/k", "changed", 7 },
		{ GOV_TXN_PUT, "", "x", 1 },
	};
	is_long(gov_store_txn(s, NULL, 0, ops, 2, NULL, err, sizeof err), -1,
		"a transaction with an empty key fails");
	has_str(err, "operation 1: empty key", "naming the operation");
	struct gov_txn_op odd[] = { { GOV_TXN_PUT, "/k", "changed", 7 }, { 9, "/k", NULL, 0 } };
	is_long(gov_store_txn(s, NULL, 0, odd, 2, NULL, err, sizeof err), -1,
		"a transaction with an unknown operation fails");
	has_str(err, "unknown kind 9", "saying so");
	ok(revision(s) == rev && strcmp(value_of(s, "/k"), "v") == 0 && count_prefix(s, "") == 1,
	   "none of them changed anything");
	gov_store_close(s);
}

/* ---- the default location -------------------------------------------------- */

static void expect_default(const char *url, const char *want, const char *what)
{
	struct gov_store *s;
	err[0] = 0;
	if (!ok(gov_store_open(url, &s, err, sizeof err) == 0, "%s (%s)", what, err))
		return;
	ok(strcmp(gov_store_url(s), want) == 0, "is %s", want);
	if (strcmp(gov_store_url(s), want) != 0)
		diag("got %s", gov_store_url(s));
	gov_store_close(s);
}

static void test_default(void)
{
	const char *dir = new_dir();
	char want[320], sub[256];
	char *saved[3];
	static const char *const names[3] = { "GOV_HOME", "XDG_STATE_HOME", "HOME" };
	for (int i = 0; i < 3; i++) {
		saved[i] = getenv(names[i]) ? strdup(getenv(names[i])) : NULL;
		unsetenv(names[i]);
	}

	snprintf(sub, sizeof sub, "%s/gov/home", dir);
	setenv("GOV_HOME", sub, 1);
	snprintf(want, sizeof want, "sqlite:%s/store.db", sub);
	expect_default(NULL, want, "the default store with GOV_HOME");
	struct stat st;
	ok(stat(sub, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
	   "GOV_HOME is created, mode 0700");
	unsetenv("GOV_HOME");

	snprintf(sub, sizeof sub, "%s/state", dir);
	setenv("XDG_STATE_HOME", sub, 1);
	snprintf(want, sizeof want, "sqlite:%s/state/rhodes/store.db", dir);
	expect_default("", want, "the default store (\"\") with XDG_STATE_HOME");
	unsetenv("XDG_STATE_HOME");

	snprintf(sub, sizeof sub, "%s/home", dir);
	setenv("HOME", sub, 1);
	snprintf(want, sizeof want, "sqlite:%s/home/.local/state/rhodes/store.db", dir);
	expect_default(NULL, want, "the default store with HOME only");
	unsetenv("HOME");
	refused(NULL, "none of GOV_HOME, XDG_STATE_HOME, HOME", "the default store without HOME");

	for (int i = 0; i < 3; i++)
		if (saved[i]) {
			setenv(names[i], saved[i], 1);
			free(saved[i]);
		}
}

int main(void)
{
	long long t0 = mono_ns();
	test_basic();
	test_txn();
	test_watch();
	test_batch();
	test_shared_watches();
	test_latency();
	test_concurrent();
	test_crash();
	test_bad();
	test_default();
	remove_dirs();
	diag("t_store ran in %.1f s", (mono_ns() - t0) / 1e9);
	return done_testing();
}
