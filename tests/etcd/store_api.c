/* tests/etcd/store_api.c - the rule store API (rules/store.h) on its etcd
 * backend, against a real etcd whose client URL is in RHODES_TEST_STORE_URL
 * (t_etcd.sh starts one and runs this). Revisions are checked relative to
 * each other, since etcd's counter is the cluster's. TAP output. */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store.h"
#include "tap.h"

static char err[512];

static struct gov_store *open_store(const char *url)
{
	struct gov_store *s = NULL;
	if (gov_store_open(url, &s, err, sizeof err) != 0)
		diag("open %s: %s", url, err);
	return s;
}

static uint64_t rev_now(struct gov_store *s)
{
	uint64_t r = 0;
	if (gov_store_revision(s, &r, err, sizeof err) != 0)
		diag("revision: %s", err);
	return r;
}

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

static void test_kv(struct gov_store *s)
{
	uint64_t r0 = rev_now(s), r1 = 0, r2 = 0, r3 = 0;
	ok(gov_store_put(s, "/t/a", "one", 3, &r1, err, sizeof err) == 0 && r1 == r0 + 1,
	   "a put makes the next revision (%" PRIu64 " -> %" PRIu64 ")", r0, r1);
	gov_store_put(s, "/t/a", "two", 3, &r2, err, sizeof err);
	struct gov_kv kv;
	ok(gov_store_get(s, "/t/a", &kv, err, sizeof err) == 0 && strcmp((char *)kv.value, "two") == 0 &&
	   kv.create_rev == r1 && kv.mod_rev == r2 && kv.version == 2,
	   "get gives the value, create and mod revisions and version");
	gov_kv_clear(&kv);
	static const unsigned char bin[] = { 0, 0xff, 'x', 0 };
	gov_store_put(s, "/t/bin", bin, sizeof bin, NULL, err, sizeof err);
	ok(gov_store_get(s, "/t/bin", &kv, err, sizeof err) == 0 && kv.len == sizeof bin &&
	   memcmp(kv.value, bin, sizeof bin) == 0, "binary values round-trip (NUL and 0xff bytes)");
	gov_kv_clear(&kv);
	ok(gov_store_get(s, "/t/none", &kv, err, sizeof err) == GOV_STORE_NOT_FOUND, "an absent key: not found");
	gov_store_put(s, "/t/b", "b", 1, NULL, err, sizeof err);
	gov_store_put(s, "/u/c", "c", 1, NULL, err, sizeof err);
	struct gov_kv *items;
	size_t n;
	ok(gov_store_list(s, "/t/", &items, &n, &r3, err, sizeof err) == 0 && n == 3 &&
	   strcmp(items[0].key, "/t/a") == 0 && strcmp(items[2].key, "/t/bin") == 0 && r3 == rev_now(s),
	   "list by prefix: only the prefix's keys, in key order, with the revision");
	gov_kv_free(items, n);
	uint64_t before = rev_now(s), rd = 0;
	ok(gov_store_delete(s, "/t/none", &rd, err, sizeof err) == GOV_STORE_NOT_FOUND && rev_now(s) == before,
	   "deleting an absent key: not found, no new revision");
	ok(gov_store_delete(s, "/t/b", &rd, err, sizeof err) == 0 && rd == before + 1 &&
	   strcmp(value_of(s, "/t/b"), "(absent)") == 0, "a delete removes the key under a new revision");
	ok(gov_store_put(s, "", "x", 1, NULL, err, sizeof err) == -1 && strstr(err, "empty key"),
	   "an empty key is refused before reaching etcd");
	/* etcd refuses a request over its --max-request-bytes (1.5 MiB by default) */
	size_t big = 2u << 20;
	char *huge = malloc(big);
	memset(huge, 'x', big);
	uint64_t rb = rev_now(s);
	ok(gov_store_put(s, "/t/huge", huge, big, NULL, err, sizeof err) == -1 &&
	   strstr(err, "refused it") && strcmp(value_of(s, "/t/huge"), "(absent)") == 0 && rev_now(s) == rb,
	   "a value etcd refuses: its message (%.80s), nothing written", err);
	free(huge);
}

static void test_txn(struct gov_store *s)
{
	struct gov_kv kv;
	gov_store_get(s, "/t/a", &kv, err, sizeof err);
	uint64_t mod = kv.mod_rev, r = 0, now = rev_now(s);
	gov_kv_clear(&kv);
	struct gov_txn_cmp stale = { "/t/a", mod - 1 }, fresh = { "/t/a", mod }, absent = { "/t/new", 0 };
	struct gov_txn_op ops[] = {
		{ GOV_TXN_PUT, "/t/a", "three", 5 },
		{ GOV_TXN_PUT, "/t/new", "n", 1 },
		{ GOV_TXN_DELETE, "/u/c", NULL, 0 },
	};
	ok(gov_store_txn(s, &stale, 1, ops, 3, &r, err, sizeof err) == GOV_STORE_CONFLICT &&
	   r == now && strcmp(value_of(s, "/t/a"), "two") == 0 && strcmp(value_of(s, "/t/new"), "(absent)") == 0,
	   "a failed comparison: conflict, nothing changed");
	struct gov_txn_cmp both[] = { fresh, absent };
	ok(gov_store_txn(s, both, 2, ops, 3, &r, err, sizeof err) == 0 && r == now + 1 &&
	   strcmp(value_of(s, "/t/a"), "three") == 0 && strcmp(value_of(s, "/t/new"), "n") == 0 &&
	   strcmp(value_of(s, "/u/c"), "(absent)") == 0, "comparisons that hold: every operation, one revision");
	struct gov_txn_op twice[] = {
		{ GOV_TXN_PUT, "/t/twice", "first", 5 },
		{ GOV_TXN_PUT, "/t/twice", "last", 4 },
	};
	ok(gov_store_txn(s, NULL, 0, twice, 2, &r, err, sizeof err) == 0 &&
	   strcmp(value_of(s, "/t/twice"), "last") == 0, "two puts of one key in a transaction: the last wins (%s)", err);
	now = rev_now(s);
	struct gov_txn_op noop = { GOV_TXN_DELETE, "/t/ghost", NULL, 0 };
	ok(gov_store_txn(s, NULL, 0, &noop, 1, &r, err, sizeof err) == 0 && r == now && rev_now(s) == now,
	   "a transaction that changes nothing makes no revision");
	struct gov_txn_op bad = { 7, "/t/x", NULL, 0 };
	ok(gov_store_txn(s, NULL, 0, &bad, 1, &r, err, sizeof err) == -1 && strstr(err, "unknown kind"),
	   "an operation of an unknown kind is refused");
}

/* Collects events until want arrived or timeout_ms passed. */
static int collect(struct gov_watch *w, struct gov_event *into, int want, int timeout_ms)
{
	int got = 0;
	while (got < want) {
		struct gov_event *evs;
		int n = gov_watch_next(w, &evs, timeout_ms, err, sizeof err);
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			if (got < want) {
				into[got++] = evs[i];
				memset(&evs[i].kv, 0, sizeof evs[i].kv);
			}
		}
		gov_events_free(evs, n);
	}
	return got;
}

static void test_watch(struct gov_store *s)
{
	uint64_t from = rev_now(s) + 1, r1, r2, r3;
	gov_store_put(s, "/w/1", "a", 1, &r1, err, sizeof err);
	gov_store_put(s, "/other", "x", 1, NULL, err, sizeof err);
	gov_store_put(s, "/w/2", "b", 1, &r2, err, sizeof err);
	gov_store_delete(s, "/w/1", &r3, err, sizeof err);
	struct gov_watch *w;
	ok(gov_store_watch(s, "/w/", from, &w, err, sizeof err) == 0, "a watch from an old revision starts");
	struct gov_event ev[8];
	int n = collect(w, ev, 3, 2000);
	ok(n == 3 && ev[0].kind == GOV_EVENT_PUT && strcmp(ev[0].kv.key, "/w/1") == 0 && ev[0].kv.mod_rev == r1 &&
	   ev[1].kv.mod_rev == r2 && ev[2].kind == GOV_EVENT_DELETE && ev[2].kv.mod_rev == r3 &&
	   ev[2].kv.len == 0, "it catches up: the prefix's events, in order, the delete included");
	for (int i = 0; i < n; i++)
		gov_kv_clear(&ev[i].kv);
	struct pollfd p = { .fd = gov_watch_fd(w), .events = POLLIN };
	uint64_t r4;
	gov_store_put(s, "/w/3", "c", 1, &r4, err, sizeof err);
	ok(poll(&p, 1, 2000) == 1, "its descriptor becomes readable on a new event");
	n = collect(w, ev, 1, 2000);
	ok(n == 1 && ev[0].kv.mod_rev == r4 && strcmp((char *)ev[0].kv.value, "c") == 0, "and follows live");
	if (n == 1)
		gov_kv_clear(&ev[0].kv);
	ok(collect(w, ev, 1, 200) == 0, "nothing else arrives (timeout gives 0)");
	gov_watch_close(w);

	/* compact the history, then ask for what is gone */
	char cmd[700];
	snprintf(cmd, sizeof cmd, "curl -sf -X POST %s/v3/kv/compaction -d '{\"revision\":\"%" PRIu64 "\"}' >/dev/null",
		 getenv("RHODES_TEST_STORE_URL") + 5, r4);
	ok(system(cmd) == 0, "etcd compacts its history up to revision %" PRIu64, r4);
	int r = gov_store_watch(s, "/w/", from, &w, err, sizeof err);
	if (r == 0) {
		struct gov_event *evs;
		r = gov_watch_next(w, &evs, 2000, err, sizeof err);
		gov_watch_close(w);
	}
	ok(r == -1 && strstr(err, "compacted"), "a watch from a compacted revision fails, saying so (%s)", err);
}

int main(void)
{
	const char *url = getenv("RHODES_TEST_STORE_URL");
	if (!url || strncmp(url, "etcd:", 5) != 0) {
		printf("Bail out! RHODES_TEST_STORE_URL must name an etcd store (t_etcd.sh sets it)\n");
		return 1;
	}
	struct gov_store *s = open_store(url);
	ok(s != NULL, "the etcd store opens");
	if (!s)
		return done_testing();
	ok(strcmp(gov_store_url(s), url) == 0, "and keeps its URL");
	test_kv(s);
	test_txn(s);
	test_watch(s);
	gov_store_close(s);
	struct gov_store *bad = (struct gov_store *)&bad;
	ok(gov_store_open("etcd:http://127.0.0.1:1", &bad, err, sizeof err) == -1 && bad == NULL &&
	   strstr(err, "cannot reach etcd"), "an unreachable etcd is refused at open, saying so");
	ok(gov_store_open("etcd:localhost:2379", &bad, err, sizeof err) == -1 &&
	   strstr(err, "want etcd:http://HOST:PORT"), "a URL without http:// is refused, saying what to write");
	return done_testing();
}
