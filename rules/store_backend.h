/* rules/store_backend.h - what a rule store backend gives rules/store.c, the
 * front that implements rules/store.h. Not for anyone else: the rest of the
 * project sees only store.h.
 *
 * A backend's store and watch structures start with struct gov_store /
 * struct gov_watch, so the front can call through their ops. The front has
 * already checked the arguments (keys not empty, operations well formed) and
 * computed each prefix's end before it calls a backend. */
#ifndef GOV_RULES_STORE_BACKEND_H
#define GOV_RULES_STORE_BACKEND_H

#include "store.h"

struct store_ops {
	void (*close)(struct gov_store *s);
	int (*revision)(struct gov_store *s, uint64_t *rev, char *err, size_t errlen);
	int (*get)(struct gov_store *s, const char *key, struct gov_kv *out,
		   char *err, size_t errlen);
	/* end: the first key after every key with prefix; NULL: none */
	int (*list)(struct gov_store *s, const char *prefix, const char *end,
		    struct gov_kv **items, size_t *n, uint64_t *rev, char *err, size_t errlen);
	/* Every write is a transaction. *changed: whether a revision was made. */
	int (*txn)(struct gov_store *s, const char *what,
		   const struct gov_txn_cmp *cmps, size_t ncmps,
		   const struct gov_txn_op *ops, size_t nops,
		   uint64_t *rev, int *changed, char *err, size_t errlen);
	/* gov_store_read_begin / _end; NULL: reads are not batched */
	int (*read_begin)(struct gov_store *s, char *err, size_t errlen);
	void (*read_end)(struct gov_store *s);
	int (*watch)(struct gov_store *s, const char *prefix, const char *end,
		     uint64_t from_rev, struct gov_watch **out, char *err, size_t errlen);
	/* The events that have arrived, without waiting: n, 0, or -1. */
	int (*watch_take)(struct gov_watch *w, struct gov_event **evs, char *err, size_t errlen);
	int (*watch_fd)(const struct gov_watch *w);
	void (*watch_close)(struct gov_watch *w);
	/* A waiting watch asks watch_take at least this often even when its
	 * descriptor stays quiet (-1: only when it is readable). */
	int recheck_ms;
};

struct gov_store {
	const struct store_ops *ops;
	char *url;
};

struct gov_watch {
	const struct store_ops *ops;
};

/* The backends: each opens the store named by its part of the URL. */
int store_sqlite_open(const char *path, struct gov_store **out, char *err, size_t errlen);
int store_etcd_open(const char *endpoint, struct gov_store **out, char *err, size_t errlen);

/* Shared by the front and the backends (rules/store.c). */
int store_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
char *store_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
long long store_now_ns(void);

#endif
