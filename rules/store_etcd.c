/* rules/store_etcd.c - the rule store's "etcd:http://HOST:PORT" backend, for
 * agents that span machines: the store API (rules/store.h) on an etcd v3
 * cluster, spoken through etcd's JSON gateway (/v3/kv/range, /v3/kv/txn,
 * /v3/watch) with libcurl and jansson. It is the only file in the project
 * that talks to etcd. It does not run or configure etcd.
 *
 * The mapping is direct: etcd's keys, revisions, create/mod revisions and
 * versions are the store's (etcd's revision counter is cluster-wide and
 * starts at 1, so an empty cluster is at revision 1, not 0; a cluster shared
 * with other users has gaps between our revisions). Every write is one etcd
 * transaction. etcd refuses two operations on one key in a transaction, so
 * only the last operation on each key is sent: it is the one whose effect
 * remains.
 *
 * A watch is a thread that holds one streaming POST /v3/watch open; it
 * queues the events and makes an eventfd readable (gov_watch_fd). If the
 * stream breaks (etcd restarted, a network cut) the thread opens a new one
 * from the revision after the last event it queued, so no event is lost or
 * repeated; a revision etcd has already compacted away is reported as an
 * error. Keys and values travel base64-encoded, as the gateway wants. */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "store_backend.h"

#define CONNECT_TIMEOUT_MS 3000
#define REQUEST_TIMEOUT_MS 10000
/* A broken watch stream is reopened after this long, doubling up to the max. */
#define REWATCH_MIN_MS 50
#define REWATCH_MAX_MS 1000
/* How long gov_store_watch waits for etcd to confirm a new watch. */
#define WATCH_CREATE_MS 5000

struct etcd_store {
	struct gov_store base;
	char *endpoint;          /* http://HOST:PORT */
	CURL *curl;
};

struct etcd_watch {
	struct gov_watch base;
	char *endpoint;
	char *what;              /* "watch PREFIX", for errors */
	char *prefix, *end;
	int efd;                 /* eventfd: readable while events or an error wait */
	pthread_t thread;
	CURLM *multi;
	atomic_int stop;

	pthread_mutex_t lock;    /* guards everything below */
	pthread_cond_t changed;
	struct gov_event *queue;
	int nqueue, capqueue;
	uint64_t next_rev;       /* the stream (re)starts from this revision */
	int created;             /* etcd confirmed the watch */
	char error[256];         /* a failure that ends the watch, or "" */
};

static const struct store_ops etcd_ops;

/* ---- base64 (the gateway's encoding of bytes) ----------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) |
			     (i + 2 < len ? p[i + 2] : 0);
		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		*o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? b64[v & 63] : '=';
	}
	*o = 0;
	return out;
}

/* Decodes text into a new NUL-terminated buffer; -1 on bad input or memory. */
static int b64_decode(const char *text, unsigned char **out, size_t *len)
{
	size_t n = strlen(text), o = 0;
	unsigned char *buf = malloc(n / 4 * 3 + 1);
	unsigned v = 0;
	int bits = 0;
	if (!buf)
		return -1;
	for (size_t i = 0; i < n && text[i] != '='; i++) {
		const char *c = strchr(b64, text[i]);
		if (!c || !text[i]) {
			free(buf);
			return -1;
		}
		v = v << 6 | (unsigned)(c - b64);
		if ((bits += 6) >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(v >> bits);
		}
	}
	buf[o] = 0;
	*out = buf;
	*len = o;
	return 0;
}

/* ---- JSON ------------------------------------------------------------------- */

/* The gateway writes 64-bit numbers as strings; absent means 0. */
static uint64_t u64_of(const json_t *obj, const char *name)
{
	const json_t *v = json_object_get(obj, name);
	if (json_is_string(v))
		return strtoull(json_string_value(v), NULL, 10);
	if (json_is_integer(v))
		return (uint64_t)json_integer_value(v);
	return 0;
}

static json_t *b64_json(const void *data, size_t len)
{
	char *t = b64_encode(data, len);
	json_t *j = t ? json_string(t) : NULL;
	free(t);
	return j;
}

static json_t *u64_json(uint64_t v)
{
	char t[24];
	snprintf(t, sizeof t, "%" PRIu64, v);
	return json_string(t);
}

/* The kv object of a response into kv (the key and value decoded). */
static int kv_from_json(const json_t *j, struct gov_kv *kv)
{
	const char *key = json_string_value(json_object_get(j, "key"));
	const char *val = json_string_value(json_object_get(j, "value"));
	size_t klen;
	memset(kv, 0, sizeof *kv);
	if (!key || b64_decode(key, (unsigned char **)&kv->key, &klen) < 0 ||
	    b64_decode(val ? val : "", &kv->value, &kv->len) < 0) {
		gov_kv_clear(kv);
		return -1;
	}
	kv->create_rev = u64_of(j, "create_revision");
	kv->mod_rev = u64_of(j, "mod_revision");
	kv->version = u64_of(j, "version");
	return 0;
}

/* ---- requests --------------------------------------------------------------- */

struct body {
	char *data;
	size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	char *d = realloc(b->data, b->len + size * n + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, p, size * n);
	b->data = d;
	b->len += size * n;
	d[b->len] = 0;
	return size * n;
}

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static CURL *new_handle(const char *url, const char *json, struct curl_slist *hdrs)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, curl_init_once);
	CURL *c = curl_easy_init();
	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	return c;
}

/* POSTs req (consumed) to endpoint/path and parses the answer into *resp.
 * etcd's own refusals (a non-200 status) come back as their message. */
static int call(struct etcd_store *s, const char *path, json_t *req, json_t **resp,
		const char *what, char *err, size_t errlen)
{
	char *json = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	char *url = store_asprintf("%s%s", s->endpoint, path);
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	struct body b = { 0 };
	int r = -1;
	*resp = NULL;
	if (!json || !url || !hdrs) {
		store_fail(err, errlen, "%s: out of memory", what);
		goto out;
	}
	if (!s->curl && !(s->curl = new_handle(url, json, hdrs))) {
		store_fail(err, errlen, "%s: cannot start libcurl", what);
		goto out;
	}
	curl_easy_setopt(s->curl, CURLOPT_URL, url);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS, (long)REQUEST_TIMEOUT_MS);
	curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, &b);
	CURLcode rc = curl_easy_perform(s->curl);
	if (rc != CURLE_OK) {
		store_fail(err, errlen, "%s: cannot reach etcd at %s: %s", what, s->endpoint,
			   curl_easy_strerror(rc));
		goto out;
	}
	long status = 0;
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	json_error_t jerr;
	json_t *j = b.data ? json_loadb(b.data, b.len, 0, &jerr) : NULL;
	if (status != 200) {
		const char *msg = json_string_value(json_object_get(j, "message"));
		store_fail(err, errlen, "%s: etcd at %s refused it (HTTP %ld): %s", what,
			   s->endpoint, status, msg ? msg : b.data ? b.data : "no message");
		json_decref(j);
		goto out;
	}
	if (!json_is_object(j)) {
		store_fail(err, errlen, "%s: etcd at %s answered something that is not a JSON "
			   "object", what, s->endpoint);
		json_decref(j);
		goto out;
	}
	*resp = j;
	r = 0;
out:
	free(json);
	free(url);
	free(b.data);
	curl_slist_free_all(hdrs);
	return r;
}

static uint64_t header_rev(const json_t *resp)
{
	return u64_of(json_object_get(resp, "header"), "revision");
}

/* ---- opening ---------------------------------------------------------------- */

static int etcd_revision(struct gov_store *base, uint64_t *rev, char *err, size_t errlen)
{
	json_t *resp;
	static const char zero = 0;
	json_t *req = json_pack("{s:o, s:b}", "key", b64_json(&zero, 1), "count_only", 1);
	if (call((struct etcd_store *)base, "/v3/kv/range", req, &resp, "revision", err,
		 errlen) < 0)
		return -1;
	*rev = header_rev(resp);
	json_decref(resp);
	return 0;
}

static void etcd_close(struct gov_store *base)
{
	struct etcd_store *s = (struct etcd_store *)base;
	if (s->curl)
		curl_easy_cleanup(s->curl);
	free(s->endpoint);
	free(s->base.url);
	free(s);
}

int store_etcd_open(const char *endpoint, struct gov_store **out, char *err, size_t errlen)
{
	if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)
		return store_fail(err, errlen, "etcd:%s: want etcd:http://HOST:PORT (the address "
				  "of an etcd v3 client endpoint)", endpoint);
	const char *host = strstr(endpoint, "//") + 2;
	if (!*host || *host == '/')
		return store_fail(err, errlen, "etcd:%s: no host (want etcd:http://HOST:PORT)",
				  endpoint);
	struct etcd_store *s = calloc(1, sizeof *s);
	if (!s)
		return store_fail(err, errlen, "store: %s", strerror(errno));
	s->base.ops = &etcd_ops;
	s->endpoint = strdup(endpoint);
	s->base.url = store_asprintf("etcd:%s", endpoint);
	if (!s->endpoint || !s->base.url) {
		etcd_close(&s->base);
		return store_fail(err, errlen, "store: %s", strerror(errno));
	}
	size_t n = strlen(s->endpoint);
	if (n && s->endpoint[n - 1] == '/')
		s->endpoint[n - 1] = 0;
	/* Ask once, so that an unreachable cluster fails here and not later. */
	uint64_t rev;
	char why[400];
	if (etcd_revision(&s->base, &rev, why, sizeof why) < 0) {
		store_fail(err, errlen, "%s: %s", s->base.url, why);
		etcd_close(&s->base);
		return -1;
	}
	*out = &s->base;
	return 0;
}

/* ---- reading ---------------------------------------------------------------- */

static int etcd_get(struct gov_store *base, const char *key, struct gov_kv *out,
		    char *err, size_t errlen)
{
	char what[128];
	snprintf(what, sizeof what, "get %s", key);
	json_t *resp;
	if (call((struct etcd_store *)base, "/v3/kv/range",
		 json_pack("{s:o}", "key", b64_json(key, strlen(key))), &resp, what, err,
		 errlen) < 0)
		return -1;
	json_t *kvs = json_object_get(resp, "kvs");
	int r = GOV_STORE_NOT_FOUND;
	if (json_array_size(kvs) > 0)
		r = kv_from_json(json_array_get(kvs, 0), out) < 0
			? store_fail(err, errlen, "%s: etcd sent a malformed key or value", what) : 0;
	json_decref(resp);
	return r;
}

/* etcd's range for "every key from key on": range_end "\0". */
static json_t *range_end_json(const char *end)
{
	static const char zero = 0;
	return end ? b64_json(end, strlen(end)) : b64_json(&zero, 1);
}

static int etcd_list(struct gov_store *base, const char *prefix, const char *end,
		     struct gov_kv **items, size_t *n, uint64_t *rev, char *err, size_t errlen)
{
	char what[64];
	snprintf(what, sizeof what, "list %s", prefix);
	static const char zero = 0;
	json_t *req = json_pack("{s:o, s:o}", "key",
				*prefix ? b64_json(prefix, strlen(prefix)) : b64_json(&zero, 1),
				"range_end", range_end_json(end));
	json_t *resp;
	if (call((struct etcd_store *)base, "/v3/kv/range", req, &resp, what, err, errlen) < 0)
		return -1;
	json_t *kvs = json_object_get(resp, "kvs");
	size_t count = json_array_size(kvs);
	struct gov_kv *out = count ? calloc(count, sizeof *out) : NULL;
	if (count && !out) {
		json_decref(resp);
		return store_fail(err, errlen, "%s: out of memory", what);
	}
	for (size_t i = 0; i < count; i++)
		if (kv_from_json(json_array_get(kvs, i), &out[i]) < 0) {
			gov_kv_free(out, i);
			json_decref(resp);
			return store_fail(err, errlen, "%s: etcd sent a malformed key or value", what);
		}
	if (rev)
		*rev = header_rev(resp);
	json_decref(resp);
	*items = out;
	*n = count;
	return 0;
}

/* ---- writing ---------------------------------------------------------------- */

/* 1 if a later operation of ops writes the same key. */
static int overwritten(const struct gov_txn_op *ops, size_t nops, size_t i)
{
	for (size_t k = i + 1; k < nops; k++)
		if (strcmp(ops[k].key, ops[i].key) == 0)
			return 1;
	return 0;
}

static json_t *txn_request(const struct gov_txn_cmp *cmps, size_t ncmps,
			   const struct gov_txn_op *ops, size_t nops)
{
	json_t *compare = json_array(), *success = json_array();
	for (size_t i = 0; i < ncmps; i++)
		json_array_append_new(compare, json_pack(
			"{s:o, s:s, s:s, s:o}", "key", b64_json(cmps[i].key, strlen(cmps[i].key)),
			"target", "MOD", "result", "EQUAL", "mod_revision",
			u64_json(cmps[i].mod_rev)));
	for (size_t i = 0; i < nops; i++) {
		if (overwritten(ops, nops, i))
			continue;
		json_t *key = b64_json(ops[i].key, strlen(ops[i].key));
		json_array_append_new(success, ops[i].kind == GOV_TXN_PUT
			? json_pack("{s:{s:o, s:o}}", "request_put", "key", key, "value",
				    b64_json(ops[i].value ? ops[i].value : "", ops[i].len))
			: json_pack("{s:{s:o}}", "request_delete_range", "key", key));
	}
	return json_pack("{s:o, s:o}", "compare", compare, "success", success);
}

static int etcd_txn(struct gov_store *base, const char *what,
		    const struct gov_txn_cmp *cmps, size_t ncmps,
		    const struct gov_txn_op *ops, size_t nops,
		    uint64_t *rev, int *changed, char *err, size_t errlen)
{
	json_t *resp;
	if (call((struct etcd_store *)base, "/v3/kv/txn", txn_request(cmps, ncmps, ops, nops),
		 &resp, what, err, errlen) < 0)
		return -1;
	if (rev)
		*rev = header_rev(resp);
	if (!json_is_true(json_object_get(resp, "succeeded"))) {
		json_decref(resp);
		return GOV_STORE_CONFLICT;
	}
	/* A put always changes the store; a delete only when the key was there. */
	json_t *answers = json_object_get(resp, "responses"), *a;
	size_t i;
	json_array_foreach(answers, i, a) {
		const json_t *del = json_object_get(a, "response_delete_range");
		if (json_object_get(a, "response_put") || (del && u64_of(del, "deleted") > 0))
			*changed = 1;
	}
	json_decref(resp);
	return 0;
}

/* ---- watching --------------------------------------------------------------- */

static void watch_fail(struct etcd_watch *w, const char *fmt, const char *detail)
{
	pthread_mutex_lock(&w->lock);
	if (!w->error[0])
		snprintf(w->error, sizeof w->error, fmt, w->what, detail);
	pthread_cond_broadcast(&w->changed);
	pthread_mutex_unlock(&w->lock);
	uint64_t one = 1;
	ssize_t r = write(w->efd, &one, sizeof one);
	(void)r; /* the counter cannot overflow in practice */
}

/* One message of the stream: the creation, a batch of events, or the end. */
static int watch_message(struct etcd_watch *w, const char *text, size_t len)
{
	json_error_t jerr;
	json_t *msg = json_loadb(text, len, 0, &jerr);
	json_t *res = json_object_get(msg, "result");
	if (!res) {
		const char *m = json_string_value(json_object_get(
			json_object_get(msg, "error"), "message"));
		watch_fail(w, "%s: etcd ended the watch: %s", m ? m : "malformed message");
		json_decref(msg);
		return -1;
	}
	uint64_t compacted = u64_of(res, "compact_revision");
	if (compacted) {
		char d[96];
		snprintf(d, sizeof d, "the revisions before %" PRIu64 " were compacted", compacted);
		watch_fail(w, "%s: cannot catch up: %s", d);
		json_decref(msg);
		return -1;
	}
	json_t *events = json_object_get(res, "events"), *e;
	size_t i;
	pthread_mutex_lock(&w->lock);
	if (json_is_true(json_object_get(res, "created")))
		w->created = 1;
	json_array_foreach(events, i, e) {
		if (w->nqueue == w->capqueue) {
			int cap = w->capqueue ? w->capqueue * 2 : 64;
			struct gov_event *q = realloc(w->queue, (size_t)cap * sizeof *q);
			if (!q)
				break;
			w->queue = q;
			w->capqueue = cap;
		}
		struct gov_event *ev = &w->queue[w->nqueue];
		const char *type = json_string_value(json_object_get(e, "type"));
		ev->kind = type && strcmp(type, "DELETE") == 0 ? GOV_EVENT_DELETE : GOV_EVENT_PUT;
		if (kv_from_json(json_object_get(e, "kv"), &ev->kv) < 0)
			break;
		if (ev->kind == GOV_EVENT_DELETE)
			ev->kv.create_rev = ev->kv.version = 0;
		w->nqueue++;
		w->next_rev = ev->kv.mod_rev + 1;
	}
	int short_read = i < json_array_size(events);
	pthread_cond_broadcast(&w->changed);
	pthread_mutex_unlock(&w->lock);
	json_decref(msg);
	if (short_read) {
		watch_fail(w, "%s: %s", "out of memory, or etcd sent a malformed event");
		return -1;
	}
	uint64_t one = 1;
	ssize_t r = write(w->efd, &one, sizeof one);
	(void)r;
	return 0;
}

struct stream {
	struct etcd_watch *w;
	struct body buf;
	int failed;
};

/* The gateway ends each message of the stream with a newline. */
static size_t stream_data(char *p, size_t size, size_t n, void *arg)
{
	struct stream *st = arg;
	if (collect(p, size, n, &st->buf) != size * n)
		return 0;
	char *nl;
	while ((nl = memchr(st->buf.data, '\n', st->buf.len))) {
		size_t len = (size_t)(nl - st->buf.data) + 1;
		if (len > 1 && watch_message(st->w, st->buf.data, len - 1) < 0) {
			st->failed = 1;
			return 0;
		}
		memmove(st->buf.data, nl + 1, st->buf.len - len);
		st->buf.len -= len;
	}
	return size * n;
}

/* Holds one stream open until it ends; 1 if the watch must end for good. */
static int watch_stream(struct etcd_watch *w)
{
	pthread_mutex_lock(&w->lock);
	uint64_t from = w->next_rev;
	pthread_mutex_unlock(&w->lock);
	static const char zero = 0;
	json_t *req = json_pack("{s:{s:o, s:o, s:o}}", "create_request",
				"key", *w->prefix ? b64_json(w->prefix, strlen(w->prefix))
						  : b64_json(&zero, 1),
				"range_end", range_end_json(w->end), "start_revision", u64_json(from));
	char *json = json_dumps(req, JSON_COMPACT), *url = store_asprintf("%s/v3/watch", w->endpoint);
	json_decref(req);
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	struct stream st = { .w = w };
	CURL *c = json && url && hdrs ? new_handle(url, json, hdrs) : NULL;
	int final = 0;
	if (!c) {
		watch_fail(w, "%s: %s", "out of memory");
		final = 1;
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, stream_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &st);
	curl_multi_add_handle(w->multi, c);
	int running = 1;
	while (running && !atomic_load(&w->stop)) {
		curl_multi_perform(w->multi, &running);
		if (running)
			curl_multi_poll(w->multi, NULL, 0, 1000, NULL);
	}
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(w->multi, &left)))
		if (m->msg == CURLMSG_DONE && m->data.result != CURLE_OK && !st.failed) {
			pthread_mutex_lock(&w->lock);
			int created = w->created;
			pthread_mutex_unlock(&w->lock);
			/* Before etcd ever confirmed the watch, a failure is the answer. */
			if (!created) {
				watch_fail(w, "%s: cannot reach etcd: %s",
					   curl_easy_strerror(m->data.result));
				final = 1;
			}
		}
	curl_multi_remove_handle(w->multi, c);
	curl_easy_cleanup(c);
	if (st.failed)
		final = 1;
out:
	free(json);
	free(url);
	free(st.buf.data);
	curl_slist_free_all(hdrs);
	return final;
}

static void *watch_thread(void *arg)
{
	struct etcd_watch *w = arg;
	int pause_ms = REWATCH_MIN_MS;
	while (!atomic_load(&w->stop) && !watch_stream(w)) {
		/* The stream ended without an error of ours: reopen it from the
		 * revision after the last event, after a growing pause. */
		for (int slept = 0; slept < pause_ms && !atomic_load(&w->stop); slept += 10)
			usleep(10000);
		pause_ms = pause_ms * 2 > REWATCH_MAX_MS ? REWATCH_MAX_MS : pause_ms * 2;
	}
	return NULL;
}

static void etcd_watch_close(struct gov_watch *base)
{
	struct etcd_watch *w = (struct etcd_watch *)base;
	if (w->multi) {
		atomic_store(&w->stop, 1);
		curl_multi_wakeup(w->multi);
		pthread_join(w->thread, NULL);
		curl_multi_cleanup(w->multi);
	}
	if (w->efd >= 0)
		close(w->efd);
	gov_events_free(w->queue, w->nqueue);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->changed);
	free(w->endpoint);
	free(w->what);
	free(w->prefix);
	free(w->end);
	free(w);
}

static int etcd_watch(struct gov_store *base, const char *prefix, const char *end,
		      uint64_t from_rev, struct gov_watch **out, char *err, size_t errlen)
{
	struct etcd_store *s = (struct etcd_store *)base;
	struct etcd_watch *w = calloc(1, sizeof *w);
	if (!w)
		return store_fail(err, errlen, "watch %s: %s", prefix, strerror(errno));
	w->base.ops = &etcd_ops;
	w->efd = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->changed, NULL);
	w->what = store_asprintf("watch %s", prefix);
	w->endpoint = strdup(s->endpoint);
	w->prefix = strdup(prefix);
	w->end = end ? strdup(end) : NULL;
	if (!w->what || !w->endpoint || !w->prefix || (end && !w->end)) {
		store_fail(err, errlen, "watch %s: out of memory", prefix);
		goto bad;
	}
	/* from 0: what commits after now, as the SQLite backend does. */
	if (from_rev == 0) {
		if (etcd_revision(base, &from_rev, err, errlen) < 0)
			goto bad;
		from_rev++;
	}
	w->next_rev = from_rev;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0 || !(w->multi = curl_multi_init())) {
		store_fail(err, errlen, "%s: %s", w->what, w->efd < 0 ? strerror(errno)
								      : "cannot start libcurl");
		goto bad;
	}
	if (pthread_create(&w->thread, NULL, watch_thread, w) != 0) {
		curl_multi_cleanup(w->multi);
		w->multi = NULL;
		store_fail(err, errlen, "%s: cannot start its thread", w->what);
		goto bad;
	}
	/* Wait for etcd to confirm, so that a refused watch fails here. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WATCH_CREATE_MS / 1000;
	pthread_mutex_lock(&w->lock);
	while (!w->created && !w->error[0])
		if (pthread_cond_timedwait(&w->changed, &w->lock, &until) != 0)
			break;
	int ok = w->created && !w->error[0];
	if (!ok)
		store_fail(err, errlen, "%s", w->error[0] ? w->error
			   : "watch: etcd did not confirm the watch in time");
	pthread_mutex_unlock(&w->lock);
	if (!ok)
		goto bad;
	*out = &w->base;
	return 0;
bad:
	etcd_watch_close(&w->base);
	return -1;
}

/* Takes every queued event; 0 when none, -1 once the watch has failed. */
static int etcd_watch_take(struct gov_watch *base, struct gov_event **evs, char *err, size_t errlen)
{
	struct etcd_watch *w = (struct etcd_watch *)base;
	uint64_t count;
	ssize_t r = read(w->efd, &count, sizeof count);
	(void)r; /* EAGAIN: nothing new, which the queue says too */
	pthread_mutex_lock(&w->lock);
	int n = w->nqueue;
	if (n) {
		*evs = w->queue;
		w->queue = NULL;
		w->nqueue = w->capqueue = 0;
	} else if (w->error[0]) {
		n = store_fail(err, errlen, "%s", w->error);
		/* keep the descriptor readable: the failure stays */
		uint64_t one = 1;
		r = write(w->efd, &one, sizeof one);
	}
	pthread_mutex_unlock(&w->lock);
	return n;
}


static int etcd_watch_fd(const struct gov_watch *base)
{
	return ((const struct etcd_watch *)base)->efd;
}

static const struct store_ops etcd_ops = {
	.close = etcd_close,
	.revision = etcd_revision,
	.get = etcd_get,
	.list = etcd_list,
	.txn = etcd_txn,
	.watch = etcd_watch,
	.watch_take = etcd_watch_take,
	.recheck_ms = -1,
	.watch_fd = etcd_watch_fd,
	.watch_close = etcd_watch_close,
};
