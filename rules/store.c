/* rules/store.c - the rule store's front (rules/store.h): resolves the URL
 * to a backend, checks every argument once for all backends, and keeps the
 * helpers they share. It does not store anything itself: store_sqlite.c
 * ("sqlite:PATH", the default) and store_etcd.c ("etcd:http://HOST:PORT")
 * do, through struct store_ops (store_backend.h).
 *
 * Every write goes through one operation, the backend's txn: put and delete
 * are transactions of one operation. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "gov/store_keys.h"
#include "store_backend.h"

int store_fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

char *store_asprintf(const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

long long store_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The first string greater than every string starting with prefix, into
 * *end; NULL when there is none (empty prefix, or only 0xff bytes). Keys
 * compare as bytes in both backends, so a prefix is a key range. -1: out of
 * memory. */
static int prefix_end(const char *prefix, char **end)
{
	size_t n = strlen(prefix);
	*end = NULL;
	while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
		n--;
	if (n == 0)
		return 0;
	if (!(*end = strndup(prefix, n)))
		return -1;
	(*end)[n - 1] = (char)((unsigned char)(*end)[n - 1] + 1);
	return 0;
}

/* mkdir -p, each missing directory with mode. */
static int mkdir_p(const char *dir, mode_t mode)
{
	char *p = strdup(dir);
	if (!p)
		return -1;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != 0)
			continue;
		char c = *s;
		*s = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	struct stat st;
	if (stat(dir, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

/* $GOV_HOME/store.db, GOV_HOME defaulting to $XDG_STATE_HOME/rhodes (the XDG
 * spec ignores a relative XDG_STATE_HOME), else ~/.local/state/rhodes. */
static char *default_path(char *err, size_t errlen)
{
	const char *gov = getenv("GOV_HOME"), *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	char *dir;
	if (gov && *gov)
		dir = strdup(gov);
	else if (xdg && xdg[0] == '/')
		dir = store_asprintf("%s/rhodes", xdg);
	else if (home && *home)
		dir = store_asprintf("%s/.local/state/rhodes", home);
	else {
		store_fail(err, errlen, "default store: none of GOV_HOME, XDG_STATE_HOME, HOME is set");
		return NULL;
	}
	if (!dir) {
		store_fail(err, errlen, "default store: %s", strerror(errno));
		return NULL;
	}
	if (mkdir_p(dir, 0700) < 0) {
		store_fail(err, errlen, "default store: cannot create %s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	char *path = store_asprintf("%s/store.db", dir);
	free(dir);
	if (!path)
		store_fail(err, errlen, "default store: %s", strerror(errno));
	return path;
}

int gov_store_open(const char *url, struct gov_store **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!url || !*url) {
		char *path = default_path(err, errlen);
		if (!path)
			return -1;
		int r = store_sqlite_open(path, out, err, errlen);
		free(path);
		return r;
	}
	if (strncmp(url, "sqlite:", 7) == 0) {
		const char *p = url + 7;
		if (!*p)
			return store_fail(err, errlen, "%s: empty path (want sqlite:PATH)", url);
		/* SQLite would give a private in-memory database: nothing to share or watch. */
		if (strcmp(p, ":memory:") == 0)
			return store_fail(err, errlen, "%s: an in-memory database cannot be shared", url);
		return store_sqlite_open(p, out, err, errlen);
	}
	if (strncmp(url, "etcd:", 5) == 0)
		return store_etcd_open(url + 5, out, err, errlen);
	const char *colon = strchr(url, ':');
	if (!colon)
		return store_fail(err, errlen, "%s: no scheme (want sqlite:PATH or etcd:URL)", url);
	return store_fail(err, errlen,
			  "%s: unknown store scheme '%.*s' (want sqlite:PATH or etcd:URL)",
			  url, (int)(colon - url), url);
}

void gov_store_close(struct gov_store *s)
{
	if (s)
		s->ops->close(s);
}

const char *gov_store_url(const struct gov_store *s)
{
	return s->url;
}

int gov_store_revision(struct gov_store *s, uint64_t *rev, char *err, size_t errlen)
{
	return s->ops->revision(s, rev, err, errlen);
}

int gov_store_get(struct gov_store *s, const char *key, struct gov_kv *out,
		  char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (!key || !*key)
		return store_fail(err, errlen, "get: empty key");
	return s->ops->get(s, key, out, err, errlen);
}

int gov_store_list(struct gov_store *s, const char *prefix, struct gov_kv **items,
		   size_t *n, uint64_t *rev, char *err, size_t errlen)
{
	*items = NULL;
	*n = 0;
	if (!prefix)
		prefix = "";
	char *end;
	if (prefix_end(prefix, &end) < 0)
		return store_fail(err, errlen, "list %s: out of memory", prefix);
	int r = s->ops->list(s, prefix, end, items, n, rev, err, errlen);
	free(end);
	return r;
}

int gov_store_read_begin(struct gov_store *s, char *err, size_t errlen)
{
	return s->ops->read_begin ? s->ops->read_begin(s, err, errlen) : 0;
}

void gov_store_read_end(struct gov_store *s)
{
	if (s->ops->read_end)
		s->ops->read_end(s);
}

int gov_store_routed(struct gov_store *s, const char *resource, gov_routed_fn fn, void *ctx,
		     uint64_t *rev, char *err, size_t errlen)
{
	const char *whom[2] = { resource, GOV_ROUTE_ALL };
	int ret = 0;
	for (int w = 0; w < 2 && !ret; w++) {
		char prefix[300];
		struct gov_kv *items;
		size_t n;
		snprintf(prefix, sizeof prefix, GOV_KEY_ROUTES "%s/", whom[w]);
		/* one listing per prefix; the later revision covers both */
		if (gov_store_list(s, prefix, &items, &n, rev, err, errlen) < 0)
			return -1;
		for (size_t i = 0; i < n && !ret; i++) {
			const char *rule = items[i].key + strlen(prefix);
			uint64_t version = strtoull((char *)items[i].value, NULL, 10);
			char key[300], why[512] = "";
			struct gov_kv text;
			snprintf(key, sizeof key, GOV_RULE_VERSION_FMT, rule, (unsigned long long)version);
			int r = gov_store_get(s, key, &text, why, sizeof why);
			ret = fn(ctx, rule, version, r, r == 0 ? &text : NULL, why);
			if (r == 0)
				gov_kv_clear(&text);
		}
		gov_kv_free(items, n);
	}
	return ret;
}

void gov_kv_clear(struct gov_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof *kv);
}

void gov_kv_free(struct gov_kv *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		gov_kv_clear(&items[i]);
	free(items);
}

void gov_events_free(struct gov_event *evs, int n)
{
	for (int i = 0; evs && i < n; i++)
		gov_kv_clear(&evs[i].kv);
	free(evs);
}

/* Refuses bad arguments before any backend sees them. */
static int check_ops(const char *what, const struct gov_txn_cmp *cmps, size_t ncmps,
		     const struct gov_txn_op *ops, size_t nops, char *err, size_t errlen)
{
	for (size_t i = 0; i < ncmps; i++)
		if (!cmps[i].key || !*cmps[i].key)
			return store_fail(err, errlen, "%s: comparison %zu: empty key", what, i);
	for (size_t i = 0; i < nops; i++) {
		if (!ops[i].key || !*ops[i].key)
			return store_fail(err, errlen, "%s: operation %zu: empty key", what, i);
		if (ops[i].kind != GOV_TXN_PUT && ops[i].kind != GOV_TXN_DELETE)
			return store_fail(err, errlen, "%s: operation %zu (%s): unknown kind %d",
					  what, i, ops[i].key, (int)ops[i].kind);
		if (ops[i].kind == GOV_TXN_PUT && !ops[i].value && ops[i].len)
			return store_fail(err, errlen,
					  "%s: operation %zu (%s): no value but length %zu",
					  what, i, ops[i].key, ops[i].len);
	}
	return 0;
}

static int write_txn(struct gov_store *s, const char *what,
		     const struct gov_txn_cmp *cmps, size_t ncmps,
		     const struct gov_txn_op *ops, size_t nops,
		     uint64_t *rev, int *changed, char *err, size_t errlen)
{
	*changed = 0;
	if (check_ops(what, cmps, ncmps, ops, nops, err, errlen) < 0)
		return -1;
	return s->ops->txn(s, what, cmps, ncmps, ops, nops, rev, changed, err, errlen);
}

int gov_store_put(struct gov_store *s, const char *key, const void *value, size_t len,
		  uint64_t *rev, char *err, size_t errlen)
{
	char what[128];
	snprintf(what, sizeof what, "put %s", key ? key : "");
	struct gov_txn_op op = { GOV_TXN_PUT, key, value, len };
	int changed;
	if (!key || !*key)
		return store_fail(err, errlen, "put: empty key");
	return write_txn(s, what, NULL, 0, &op, 1, rev, &changed, err, errlen);
}

int gov_store_delete(struct gov_store *s, const char *key, uint64_t *rev,
		     char *err, size_t errlen)
{
	char what[128];
	snprintf(what, sizeof what, "delete %s", key ? key : "");
	struct gov_txn_op op = { GOV_TXN_DELETE, key, NULL, 0 };
	int changed;
	if (!key || !*key)
		return store_fail(err, errlen, "delete: empty key");
	int r = write_txn(s, what, NULL, 0, &op, 1, rev, &changed, err, errlen);
	return r == 0 && !changed ? GOV_STORE_NOT_FOUND : r;
}

int gov_store_txn(struct gov_store *s, const struct gov_txn_cmp *cmps, size_t ncmps,
		  const struct gov_txn_op *ops, size_t nops, uint64_t *rev,
		  char *err, size_t errlen)
{
	int changed;
	return write_txn(s, "txn", cmps, ncmps, ops, nops, rev, &changed, err, errlen);
}

int gov_store_watch(struct gov_store *s, const char *prefix, uint64_t from_rev,
		    struct gov_watch **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!prefix)
		prefix = "";
	char *end;
	if (prefix_end(prefix, &end) < 0)
		return store_fail(err, errlen, "watch %s: out of memory", prefix);
	int r = s->ops->watch(s, prefix, end, from_rev, out, err, errlen);
	free(end);
	return r;
}

/* Takes what has arrived; otherwise waits on the watch's descriptor (and at
 * least every recheck_ms) until something arrives or the deadline passes. */
int gov_watch_next(struct gov_watch *w, struct gov_event **evs, int timeout_ms,
		   char *err, size_t errlen)
{
	*evs = NULL;
	long long deadline = timeout_ms < 0 ? -1 : store_now_ns() / 1000000 + timeout_ms;
	for (;;) {
		int n = w->ops->watch_take(w, evs, err, errlen);
		if (n != 0)
			return n;
		int wait = w->ops->recheck_ms;
		if (deadline >= 0) {
			long long left = deadline - store_now_ns() / 1000000;
			if (left <= 0)
				return 0;
			if (wait < 0 || left < wait)
				wait = (int)left;
		}
		struct pollfd p = { .fd = w->ops->watch_fd(w), .events = POLLIN };
		/* EINTR: ask again and keep waiting until the deadline. */
		if (poll(&p, 1, wait) < 0 && errno != EINTR)
			return store_fail(err, errlen, "watch: poll: %s", strerror(errno));
	}
}

int gov_watch_fd(const struct gov_watch *w)
{
	return w->ops->watch_fd(w);
}

void gov_watch_close(struct gov_watch *w)
{
	if (w)
		w->ops->watch_close(w);
}
