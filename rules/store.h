/* rules/store.h - the rule store: the only API in the project that touches
 * storage. Keys are byte strings ordered as strings ("/rules/deny/v/3");
 * values are opaque bytes. Every write is one transaction that gets the next
 * revision (1, 2, 3, ... per store); a watcher can start from any revision
 * still in the history and then follows live, missing none.
 *
 * Backends, chosen by URL:
 *   sqlite:PATH            embedded, on disk (the default; WAL mode)
 *   etcd:http://HOST:PORT  an etcd v3 cluster (its client endpoint), for
 *                          agents on many machines; see store_etcd.c
 * NULL or "" means sqlite:$GOV_HOME/store.db, GOV_HOME defaulting to
 * $XDG_STATE_HOME/rhodes, else ~/.local/state/rhodes.
 *
 * Functions return 0 on success, GOV_STORE_NOT_FOUND or GOV_STORE_CONFLICT
 * where documented, and -1 on error with "what: why" in err. A failed call
 * changes nothing. A store handle is for one thread at a time and must not be
 * carried across fork(): a child opens its own. Empty or NULL keys are
 * errors; a NULL value is allowed only with length 0. Every commit is
 * fsynced (an acknowledged rule survives a power cut). */
#ifndef GOV_RULES_STORE_H
#define GOV_RULES_STORE_H

#include <stddef.h>
#include <stdint.h>

#define GOV_STORE_NOT_FOUND 1
#define GOV_STORE_CONFLICT 2

struct gov_store;

struct gov_kv {
	char *key;
	unsigned char *value; /* NUL-terminated for convenience; len excludes it */
	size_t len;
	uint64_t create_rev;  /* revision that created the key */
	uint64_t mod_rev;     /* revision that last wrote it */
	uint64_t version;     /* writes since it was created: 1, 2, ... */
};

int gov_store_open(const char *url, struct gov_store **out, char *err, size_t errlen);
void gov_store_close(struct gov_store *s);
/* The URL the store was opened with (the default resolved). */
const char *gov_store_url(const struct gov_store *s);

/* The store's current revision (0 for an empty store). */
int gov_store_revision(struct gov_store *s, uint64_t *rev, char *err, size_t errlen);

/* GOV_STORE_NOT_FOUND if key is absent. */
int gov_store_get(struct gov_store *s, const char *key, struct gov_kv *out,
		  char *err, size_t errlen);
int gov_store_put(struct gov_store *s, const char *key, const void *value, size_t len,
		  uint64_t *rev, char *err, size_t errlen);
/* GOV_STORE_NOT_FOUND (and no new revision) if key is absent. */
int gov_store_delete(struct gov_store *s, const char *key, uint64_t *rev,
		     char *err, size_t errlen);
/* Every key starting with prefix, in key order, as of revision *rev. */
int gov_store_list(struct gov_store *s, const char *prefix, struct gov_kv **items,
		   size_t *n, uint64_t *rev, char *err, size_t errlen);
void gov_kv_free(struct gov_kv *items, size_t n);  /* frees the keys and values too */
void gov_kv_clear(struct gov_kv *kv);              /* one kv from gov_store_get */

/* Reads as one batch: between gov_store_read_begin and gov_store_read_end,
 * gov_store_get, gov_store_list and gov_store_routed on this handle all see
 * one revision of the store. On sqlite: one read transaction, whose locks
 * and page checks they share instead of each taking its own (what an agent
 * re-reading its routes pays per change); on etcd every read is its own
 * request as before. On sqlite, writes on the handle and a second begin
 * fail until gov_store_read_end. 0, or -1 with err. */
int gov_store_read_begin(struct gov_store *s, char *err, size_t errlen);
void gov_store_read_end(struct gov_store *s);

/* The rule documents the store routes to resource (gov/store_keys.h:
 * the routes of resource, then those of every resource, STAR), each at
 * the version its route names, as an agent of resource reads them. fn
 * gets the rule's name, that version and its text: r is 0 with text, or
 * GOV_STORE_NOT_FOUND or -1 with why when it cannot be read; it returns
 * 0 to go on. *rev: the revision of the later listing. 0; -1 with err
 * when a listing fails; or fn's nonzero return. */
typedef int (*gov_routed_fn)(void *ctx, const char *rule, uint64_t version, int r,
			     const struct gov_kv *text, const char *why);
int gov_store_routed(struct gov_store *s, const char *resource, gov_routed_fn fn, void *ctx,
		     uint64_t *rev, char *err, size_t errlen);

/* An atomic multi-key transaction: if every comparison holds, apply every
 * operation, in order, under one new revision; otherwise change nothing and
 * return GOV_STORE_CONFLICT (*rev is then the current revision). A
 * comparison holds when key's mod_rev equals mod_rev (0: the key must not
 * exist). A transaction that changes nothing (no operations, or only deletes
 * of absent keys) returns 0 without a new revision, so revisions have no
 * gaps. */
struct gov_txn_cmp {
	const char *key;
	uint64_t mod_rev;
};
enum gov_txn_kind { GOV_TXN_PUT = 1, GOV_TXN_DELETE = 2 };
struct gov_txn_op {
	enum gov_txn_kind kind;
	const char *key;
	const void *value;
	size_t len;
};
int gov_store_txn(struct gov_store *s, const struct gov_txn_cmp *cmps, size_t ncmps,
		  const struct gov_txn_op *ops, size_t nops, uint64_t *rev,
		  char *err, size_t errlen);

/* Watching. Events come in revision order; one transaction's events share
 * its revision. A watch from revision R first delivers every event with
 * revision >= R under prefix (catching up), then new ones as they commit
 * (woken within a millisecond: inotify on the store's revision file). */
enum gov_event_kind { GOV_EVENT_PUT = 1, GOV_EVENT_DELETE = 2 };
struct gov_event {
	enum gov_event_kind kind;
	struct gov_kv kv;     /* for DELETE: key, mod_rev = the delete's revision,
			       * value "" (len 0), create_rev 0, version 0 */
};
struct gov_watch;
/* from_rev 0: only what commits after the watch is created. Each watch holds
 * its own inotify instance (Linux allows 128 per user by default). */
int gov_store_watch(struct gov_store *s, const char *prefix, uint64_t from_rev,
		    struct gov_watch **out, char *err, size_t errlen);
/* Waits up to timeout_ms (-1: forever; a signal does not cut it short) for
 * events; returns how many (0 on timeout) in *evs, or -1. While catching up
 * it returns whole revisions, about 4096 events at a time (one large
 * transaction may exceed that). Free them with gov_events_free. */
int gov_watch_next(struct gov_watch *w, struct gov_event **evs, int timeout_ms,
		   char *err, size_t errlen);
void gov_events_free(struct gov_event *evs, int n);
/* A descriptor that becomes readable when the store may have changed, for
 * an event loop; then call gov_watch_next with timeout 0. */
int gov_watch_fd(const struct gov_watch *w);
void gov_watch_close(struct gov_watch *w);

#endif
