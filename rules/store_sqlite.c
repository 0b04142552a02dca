/* rules/store_sqlite.c - the rule store's "sqlite:PATH" backend (the
 * default): the store on embedded SQLite, behind rules/store.c's front
 * (store_backend.h). It is the only file in the project that talks to SQLite. It does not know
 * what the keys mean (include/gov/store_keys.h does) and does not parse
 * rules (ruledoc.c does).
 *
 * On disk:
 *   PATH          the database, in WAL mode so that readers and watchers never
 *                 block the writer. Tables:
 *                   meta(rev)                          the current revision
 *                   kv(key, value, create_rev, mod_rev, version)
 *                   log(rev, seq, kind, key, value, create_rev, version)
 *                 The log is the history that watches replay; nothing
 *                 compacts it yet.
 *   PATH.rev      the revision file: after each commit the writer writes the
 *                 new revision into it in place and closes it. Watchers
 *                 hold an inotify watch on it (IN_CLOSE_WRITE), which is
 *                 what wakes them; its content is only
 *                 a hint (two writers may finish in either order), watchers
 *                 always ask the database.
 *
 * Revisions: every write that changes something is one BEGIN IMMEDIATE ...
 * COMMIT that takes revision = current + 1, so revisions have no gaps and
 * every revision has at least one event in the log. Writes that change
 * nothing create no revision: a delete of an absent key (GOV_STORE_NOT_FOUND),
 * a transaction whose comparisons fail (GOV_STORE_CONFLICT), and a transaction
 * whose operations change nothing (no operations, or only deletes of absent
 * keys, which are no-ops inside a transaction): it returns 0 with *rev = the
 * current revision.
 *
 * Watches: gov_store_watch(prefix, from_rev) delivers every event with
 * revision >= from_rev. from_rev 0 means "only what commits from now on":
 * the watch starts after the revision current when it is created. A
 * DELETE event's kv has the key, mod_rev = the delete's revision, value ""
 * (length 0), create_rev and version 0. Catching up, gov_watch_next returns
 * whole revisions, about WATCH_BATCH events at a time.
 *
 * A store has its own SQLite connection, and its watches share one more
 * (under a mutex, so each watch can still live in any thread): a commit
 * makes a connection drop its page cache, so the first watch to look after
 * it reads the pages again and the others find them read, instead of every
 * watch re-reading the same pages; a read batch (gov_store_read_begin) of a
 * store with watches runs on that connection too, holding its mutex. Neither
 * may cross fork(): SQLite's locks are per process, so a child opens its own. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "store_backend.h"

/* Written into the database header so that another program's SQLite file is
 * refused instead of gaining our tables. "Rhod". */
#define STORE_APP_ID 0x52686f64
#define STORE_SCHEMA 1

/* Concurrent writers wait for each other this long before giving up. */
#define BUSY_TIMEOUT_NS (10 * 1000000000LL)
/* A waiting watcher asks the database at least this often, so that a commit
 * whose writer died before touching the revision file is still seen. */
#define WATCH_RECHECK_MS 1000
/* How many events one gov_watch_next returns at most when catching up (a
 * transaction is never split, so a large one may exceed it). */
#define WATCH_BATCH 4096

enum q {
	Q_BEGIN,
	Q_BEGIN_WRITE,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_REV,
	Q_SET_REV,
	Q_GET,
	Q_KEY_META,
	Q_PUT,
	Q_DEL,
	Q_LOG,
	Q_LIST,
	Q_EVENTS,
	Q_COUNT
};

static const char *const q_sql[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN",
	[Q_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_REV] = "SELECT rev FROM meta WHERE id = 1",
	[Q_SET_REV] = "UPDATE meta SET rev = ?1 WHERE id = 1",
	[Q_GET] = "SELECT key, value, create_rev, mod_rev, version FROM kv WHERE key = ?1",
	[Q_KEY_META] = "SELECT create_rev, mod_rev, version FROM kv WHERE key = ?1",
	[Q_PUT] = "INSERT OR REPLACE INTO kv(key, value, create_rev, mod_rev, version) "
		  "VALUES (?1, ?2, ?3, ?4, ?5)",
	[Q_DEL] = "DELETE FROM kv WHERE key = ?1",
	[Q_LOG] = "INSERT INTO log(rev, seq, kind, key, value, create_rev, version) "
		  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	/* ?2 NULL: no upper bound (the prefix is empty or all 0xff bytes);
	 * then X'FF', a blob, which sorts after every text key. Written as one
	 * bound, not "?2 IS NULL OR key < ?2", so that SQLite searches a range
	 * of the primary key instead of reading every key after the prefix. */
	[Q_LIST] = "SELECT key, value, create_rev, mod_rev, version FROM kv "
		   "WHERE key >= ?1 AND key < coalesce(?2, X'FF') ORDER BY key",
	[Q_EVENTS] = "SELECT key, value, create_rev, rev, version, kind FROM log "
		     "WHERE rev > ?1 AND rev <= ?2 AND key >= ?3 AND (?4 IS NULL OR key < ?4) "
		     "ORDER BY rev, seq",
};

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta(id INTEGER PRIMARY KEY CHECK (id = 1),"
	" rev INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta(id, rev) VALUES (1, 0);"
	"CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value BLOB NOT NULL,"
	" create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL)"
	" WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS log(rev INTEGER NOT NULL, seq INTEGER NOT NULL,"
	" kind INTEGER NOT NULL, key TEXT NOT NULL, value BLOB,"
	" create_rev INTEGER NOT NULL, version INTEGER NOT NULL,"
	" PRIMARY KEY (rev, seq)) WITHOUT ROWID;";

/* One SQLite connection with its prepared statements; a store and each watch
 * have their own, so a watch can live in another thread than its store. */
struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[Q_COUNT];
	long long busy_since;
};

/* The connection a store's watches share; the store and each watch hold a
 * reference, since watches may outlive their store. */
struct watch_conn {
	pthread_mutex_t lock;
	struct conn c;
	_Atomic int refs;
	/* the thread whose read batch holds lock (valid while batch is 1) */
	pthread_t batch_owner;
	_Atomic int batch;
};

struct sqlite_store {
	struct gov_store base;
	struct conn c;
	struct watch_conn *wc;  /* made by the first watch */
	char *path;
	char *rev_path;
	/* in gov_store_read_begin's read transaction, on rc: the watches'
	 * connection when there is one (its pages were most likely just read
	 * by the watch that woke), else c */
	int reading;
	struct conn *rc;
};

struct sqlite_watch {
	struct gov_watch base;
	struct watch_conn *wc;
	char *what;     /* "watch PREFIX", for errors */
	char *rev_path;
	char *prefix;
	char *end;      /* the first key after every key with prefix; NULL: none */
	uint64_t last;  /* every event up to this revision has been delivered */
	int ifd, wd;
};

/* ---- connections ---------------------------------------------------------- */

/* SQLite's own busy handler sleeps in steps of 1 to 100 ms; a commit holds the
 * write lock for well under a millisecond, so contended writers would spend
 * most of their time asleep. Poll more finely, for BUSY_TIMEOUT_NS in all. */
static int on_busy(void *arg, int count)
{
	struct conn *c = arg;
	if (count == 0)
		c->busy_since = store_now_ns();
	if (store_now_ns() - c->busy_since > BUSY_TIMEOUT_NS)
		return 0;
	usleep(count < 20 ? 50 : count < 200 ? 200 : 1000);
	return 1;
}

static sqlite3_stmt *stmt(struct conn *c, enum q id)
{
	if (!c->st[id] && sqlite3_prepare_v3(c->db, q_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					     &c->st[id], NULL) != SQLITE_OK)
		return NULL;
	return c->st[id];
}

static void done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows (BEGIN, COMMIT, ...). */
static int run(struct conn *c, enum q id)
{
	sqlite3_stmt *st = stmt(c, id);
	if (!st)
		return -1;
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* "what: why" from the connection's last error; call before anything else
 * touches the connection (a rollback would replace the message). */
static int db_fail(struct conn *c, char *err, size_t errlen, const char *what)
{
	return store_fail(err, errlen, "%s: %s", what, sqlite3_errmsg(c->db));
}

/* Ends a transaction that failed; its error is already in err. */
static void rollback(struct conn *c)
{
	if (!sqlite3_get_autocommit(c->db))
		run(c, Q_ROLLBACK);
}

static void conn_close(struct conn *c)
{
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close_v2(c->db);
	memset(c, 0, sizeof *c);
}

/* create: a store creates its database; a watch only opens its store's. */
static int conn_open(struct conn *c, const char *path, int create, const char *what,
		     char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
				 (create ? SQLITE_OPEN_CREATE : 0), NULL);
	if (rc != SQLITE_OK) {
		store_fail(err, errlen, "%s: cannot open: %s", what,
		     c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		conn_close(c);
		return -1;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_handler(c->db, on_busy, c);
	return 0;
}

/* One integer from a query without parameters (a PRAGMA, a count). */
static int query_int(struct conn *c, const char *sql, long long *out)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* One word from a query without parameters (PRAGMA journal_mode): 0, or
 * SQLite's error code. */
static int query_word(struct conn *c, const char *sql, char *out, size_t len)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(out, len, "%s", sqlite3_column_text(st, 0) ?
			 (const char *)sqlite3_column_text(st, 0) : "");
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc;
}

/* Switching to WAL needs an exclusive lock, and SQLite does not call the
 * busy handler for it (it could deadlock with a reader wanting the same), so
 * processes creating a new store at the same time retry here. */
static int set_wal(struct conn *c, char *mode, size_t len)
{
	long long start = store_now_ns();
	for (;;) {
		int rc = query_word(c, "PRAGMA journal_mode = WAL", mode, len);
		if (rc == 0 || ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) ||
		    store_now_ns() - start > BUSY_TIMEOUT_NS)
			return rc;
		usleep(1000);
	}
}

static int read_rev(struct conn *c, uint64_t *rev)
{
	sqlite3_stmt *st = stmt(c, Q_REV);
	if (!st)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*rev = (uint64_t)sqlite3_column_int64(st, 0);
	done(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Binds text, or NULL when s is NULL (an absent upper bound). */
static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* ---- opening ---------------------------------------------------------------- */

/* Creates the schema in a new database, or checks that an existing one is a
 * rule store of a version we know. Reading first means that a file which is
 * not a database fails before anything is written to it. */
static int init_db(struct conn *c, const char *what, char *err, size_t errlen)
{
	long long app, ver, ntables;
	if (query_int(c, "SELECT count(*) FROM sqlite_master", &ntables) < 0 ||
	    query_int(c, "PRAGMA application_id", &app) < 0)
		return store_fail(err, errlen, "%s: cannot open: %s", what, sqlite3_errmsg(c->db));
	if (app != STORE_APP_ID && (app != 0 || ntables != 0))
		return store_fail(err, errlen, "%s: not a rule store (another program's SQLite "
			    "database: application_id %#llx, %lld table(s))", what, app, ntables);

	/* journal_mode cannot change inside a transaction; it is persistent, so
	 * only a new database needs it. Setting it answers the mode in force. */
	char mode[16];
	if (query_word(c, "PRAGMA journal_mode", mode, sizeof mode) != 0 ||
	    (strcmp(mode, "wal") != 0 && set_wal(c, mode, sizeof mode) != 0))
		return store_fail(err, errlen, "%s: cannot switch to WAL mode: %s", what,
			    sqlite3_errmsg(c->db));
	if (strcmp(mode, "wal") != 0)
		return store_fail(err, errlen, "%s: cannot switch to WAL mode: still in %s mode",
			    what, mode);
	/* FULL: a commit that returned is on disk (one fsync of the WAL); the
	 * store holds security policy, where losing an acknowledged write on a
	 * power cut is worse than half a millisecond per write. */
	if (sqlite3_exec(c->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(c, err, errlen, what);

	if (app == STORE_APP_ID) {
		if (query_int(c, "PRAGMA user_version", &ver) < 0)
			return db_fail(c, err, errlen, what);
		if (ver > STORE_SCHEMA)
			return store_fail(err, errlen, "%s: schema version %lld is newer than this "
				    "program's (%d)", what, ver, STORE_SCHEMA);
		return 0;
	}
	/* A new database; another process may be creating it at the same time,
	 * hence the write lock and the IF NOT EXISTS. */
	char ids[96];
	snprintf(ids, sizeof ids, "PRAGMA application_id = %d; PRAGMA user_version = %d",
		 STORE_APP_ID, STORE_SCHEMA);
	if (run(c, Q_BEGIN_WRITE) < 0 ||
	    sqlite3_exec(c->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(c->db, ids, NULL, NULL, NULL) != SQLITE_OK ||
	    run(c, Q_COMMIT) < 0) {
		db_fail(c, err, errlen, what);
		rollback(c);
		return -1;
	}
	return 0;
}

/* Creates the revision file if needed, so that watchers have a file to watch. */
static int touch_rev_file(const char *path, const char *what, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		return store_fail(err, errlen, "%s: cannot create %s: %s", what, path, strerror(errno));
	close(fd);
	return 0;
}

/* Wakes the watchers: writes the revision in place (no rename: the watchers'
 * inotify watch is on this inode) and closes, which fires the IN_CLOSE_WRITE
 * they wait for (a writer killed in between closes on exit, which fires it
 * too). The commit is done; a failure here cannot be reported as a
 * failed write, and watchers still see the commit within WATCH_RECHECK_MS. */
static void notify(const struct sqlite_store *s, uint64_t rev)
{
	char text[32];
	int n = snprintf(text, sizeof text, "%020llu\n", (unsigned long long)rev);
	int fd = open(s->rev_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		return;
	ssize_t wrote = pwrite(fd, text, (size_t)n, 0);
	(void)wrote; /* see above */
	close(fd);
}

static const struct store_ops sqlite_ops;

static void watch_conn_put(struct watch_conn *wc)
{
	if (wc && atomic_fetch_sub(&wc->refs, 1) == 1) {
		conn_close(&wc->c);
		pthread_mutex_destroy(&wc->lock);
		free(wc);
	}
}

static void sqlite_read_end(struct gov_store *base);

static void sqlite_close(struct gov_store *base)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite_read_end(base); /* a batch left open would keep its watches waiting */
	if (s->c.db)
		conn_close(&s->c);
	watch_conn_put(s->wc);
	free(s->base.url);
	free(s->path);
	free(s->rev_path);
	free(s);
}

int store_sqlite_open(const char *path, struct gov_store **out, char *err, size_t errlen)
{
	struct sqlite_store *s = calloc(1, sizeof *s);
	if (!s)
		return store_fail(err, errlen, "store: %s", strerror(errno));
	s->base.ops = &sqlite_ops;
	s->path = strdup(path);
	s->base.url = store_asprintf("sqlite:%s", path);
	s->rev_path = store_asprintf("%s.rev", path);
	if (!s->path || !s->base.url || !s->rev_path) {
		store_fail(err, errlen, "store: %s", strerror(errno));
		goto bad;
	}
	if (conn_open(&s->c, s->path, 1, s->base.url, err, errlen) < 0 ||
	    init_db(&s->c, s->base.url, err, errlen) < 0 ||
	    touch_rev_file(s->rev_path, s->base.url, err, errlen) < 0)
		goto bad;
	*out = &s->base;
	return 0;
bad:
	sqlite_close(&s->base);
	return -1;
}

/* ---- reading ---------------------------------------------------------------- */

/* Copies a row's key, value, create_rev, mod_rev and version (from column
 * col on) into kv; the value gets a NUL after its length. */
static int kv_from_row(sqlite3_stmt *st, int col, struct gov_kv *kv)
{
	const unsigned char *key = sqlite3_column_text(st, col);
	const void *val = sqlite3_column_blob(st, col + 1);
	size_t len = (size_t)sqlite3_column_bytes(st, col + 1);
	kv->key = strdup(key ? (const char *)key : "");
	kv->value = malloc(len + 1);
	if (!kv->key || !kv->value) {
		gov_kv_clear(kv);
		return -1;
	}
	if (len)
		memcpy(kv->value, val, len);
	kv->value[len] = 0;
	kv->len = len;
	kv->create_rev = (uint64_t)sqlite3_column_int64(st, col + 2);
	kv->mod_rev = (uint64_t)sqlite3_column_int64(st, col + 3);
	kv->version = (uint64_t)sqlite3_column_int64(st, col + 4);
	return 0;
}

static int sqlite_revision(struct gov_store *base, uint64_t *rev, char *err, size_t errlen)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	if (read_rev(&s->c, rev) < 0)
		return db_fail(&s->c, err, errlen, "revision");
	return 0;
}

static int sqlite_get(struct gov_store *base, const char *key, struct gov_kv *out,
		      char *err, size_t errlen)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	struct conn *c = s->reading ? s->rc : &s->c;
	sqlite3_stmt *st = stmt(c, Q_GET);
	if (!st)
		return db_fail(c, err, errlen, "get");
	bind_text(st, 1, key);
	int rc = sqlite3_step(st), r;
	if (rc == SQLITE_ROW)
		r = kv_from_row(st, 0, out) < 0 ? store_fail(err, errlen, "get %s: out of memory", key) : 0;
	else if (rc == SQLITE_DONE)
		r = GOV_STORE_NOT_FOUND;
	else
		r = store_fail(err, errlen, "get %s: %s", key, sqlite3_errmsg(c->db));
	done(st);
	return r;
}

/* Appends one kv to a growing array. */
static struct gov_kv *kv_push(struct gov_kv **items, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct gov_kv *p = realloc(*items, ncap * sizeof *p);
		if (!p)
			return NULL;
		*items = p;
		*cap = ncap;
	}
	return &(*items)[(*n)++];
}

static int sqlite_list(struct gov_store *base, const char *prefix, const char *end,
		       struct gov_kv **items, size_t *n, uint64_t *rev, char *err, size_t errlen)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	char what[64];
	snprintf(what, sizeof what, "list %s", prefix);
	struct conn *c = s->reading ? s->rc : &s->c;
	struct gov_kv *out = NULL;
	size_t count = 0, cap = 0;
	uint64_t r = 0;
	sqlite3_stmt *st = NULL;
	/* One read transaction: the revision and the rows are one snapshot
	 * (the batch's, when in one). */
	if ((!s->reading && run(c, Q_BEGIN) < 0) || read_rev(c, &r) < 0 ||
	    !(st = stmt(c, Q_LIST)))
		goto dberr;
	bind_text(st, 1, prefix);
	bind_text(st, 2, end);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct gov_kv *kv = kv_push(&out, &count, &cap);
		if (!kv || kv_from_row(st, 0, kv) < 0) {
			if (kv)
				count--;
			store_fail(err, errlen, "%s: out of memory", what);
			goto bad;
		}
	}
	if (rc != SQLITE_DONE)
		goto dberr;
	done(st);
	if (!s->reading && run(c, Q_COMMIT) < 0)
		goto dberr;
	*items = out;
	*n = count;
	if (rev)
		*rev = r;
	return 0;
dberr:
	db_fail(c, err, errlen, what);
bad:
	if (st)
		done(st);
	if (!s->reading)
		rollback(c);
	gov_kv_free(out, count);
	return -1;
}

static void sqlite_read_unlock(struct sqlite_store *s)
{
	if (s->rc == &s->c || !s->wc)
		return;
	atomic_store(&s->wc->batch, 0);
	pthread_mutex_unlock(&s->wc->lock);
}

/* One read transaction for the reads until read_end. BEGIN is deferred:
 * the snapshot is taken by the first read. */
static int sqlite_read_begin(struct gov_store *base, char *err, size_t errlen)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	if (s->reading)
		return store_fail(err, errlen, "read batch: already in one");
	s->rc = &s->c;
	if (s->wc) {
		pthread_mutex_lock(&s->wc->lock);
		s->wc->batch_owner = pthread_self();
		atomic_store(&s->wc->batch, 1);
		s->rc = &s->wc->c;
	}
	if (run(s->rc, Q_BEGIN) < 0) {
		db_fail(s->rc, err, errlen, "read batch");
		sqlite_read_unlock(s);
		return -1;
	}
	s->reading = 1;
	return 0;
}

static void sqlite_read_end(struct gov_store *base)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	if (!s->reading)
		return;
	s->reading = 0;
	/* a read transaction: COMMIT only releases it; should it fail, the
	 * rollback does */
	if (run(s->rc, Q_COMMIT) < 0)
		rollback(s->rc);
	sqlite_read_unlock(s);
}

/* ---- writing ---------------------------------------------------------------- */

/* The key's create_rev, mod_rev and version: 1 if present, 0 if absent
 * (all left 0), -1 on error. */
static int key_meta(struct conn *c, const char *key, uint64_t *create_rev,
		    uint64_t *mod_rev, uint64_t *version)
{
	sqlite3_stmt *st = stmt(c, Q_KEY_META);
	if (!st)
		return -1;
	*create_rev = *mod_rev = *version = 0;
	bind_text(st, 1, key);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*create_rev = (uint64_t)sqlite3_column_int64(st, 0);
		*mod_rev = (uint64_t)sqlite3_column_int64(st, 1);
		*version = (uint64_t)sqlite3_column_int64(st, 2);
	}
	done(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int log_event(struct conn *c, uint64_t rev, int seq, enum gov_event_kind kind,
		     const char *key, const void *value, size_t len, uint64_t create_rev,
		     uint64_t version)
{
	sqlite3_stmt *st = stmt(c, Q_LOG);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	sqlite3_bind_int(st, 2, seq);
	sqlite3_bind_int(st, 3, kind);
	bind_text(st, 4, key);
	/* A value too big for SQLite fails here ("string or blob too big"). */
	int rc = kind == GOV_EVENT_PUT ? sqlite3_bind_blob64(st, 5, len ? value : "", len,
							      SQLITE_STATIC)
				       : sqlite3_bind_null(st, 5);
	if (rc != SQLITE_OK) {
		done(st);
		return -1;
	}
	sqlite3_bind_int64(st, 6, (sqlite3_int64)create_rev);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)version);
	rc = sqlite3_step(st);
	done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int put_row(struct conn *c, uint64_t rev, int seq, const char *key,
		   const void *value, size_t len)
{
	uint64_t create_rev, mod_rev, version;
	int found = key_meta(c, key, &create_rev, &mod_rev, &version);
	if (found < 0)
		return -1;
	if (!found)
		create_rev = rev;
	version++;
	sqlite3_stmt *st = stmt(c, Q_PUT);
	if (!st)
		return -1;
	bind_text(st, 1, key);
	/* A zero-length blob, not SQL NULL, for an empty value; a value too big
	 * for SQLite fails here ("string or blob too big"). */
	if (sqlite3_bind_blob64(st, 2, len ? value : "", len, SQLITE_STATIC) != SQLITE_OK) {
		done(st);
		return -1;
	}
	sqlite3_bind_int64(st, 3, (sqlite3_int64)create_rev);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)rev);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)version);
	int rc = sqlite3_step(st);
	done(st);
	if (rc != SQLITE_DONE)
		return -1;
	return log_event(c, rev, seq, GOV_EVENT_PUT, key, value, len, create_rev, version);
}

/* 1 if deleted, 0 if absent, -1 on error. */
static int delete_row(struct conn *c, uint64_t rev, int seq, const char *key)
{
	sqlite3_stmt *st = stmt(c, Q_DEL);
	if (!st)
		return -1;
	bind_text(st, 1, key);
	int rc = sqlite3_step(st);
	done(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (sqlite3_changes(c->db) == 0)
		return 0;
	return log_event(c, rev, seq, GOV_EVENT_DELETE, key, NULL, 0, 0, 0) < 0 ? -1 : 1;
}

/* Every write: one BEGIN IMMEDIATE ... COMMIT. Returns 0 (*changed tells
 * whether a revision was made), GOV_STORE_CONFLICT or -1. *rev is the new
 * revision, or the current one when nothing changed. */
static int sqlite_txn(struct gov_store *base, const char *what,
		     const struct gov_txn_cmp *cmps, size_t ncmps,
		     const struct gov_txn_op *ops, size_t nops,
		     uint64_t *rev, int *changed, char *err, size_t errlen)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	struct conn *c = &s->c;
	uint64_t cur;
	if (s->reading)
		return store_fail(err, errlen, "%s: in a read batch (gov_store_read_begin); "
				  "end it before writing", what);
	if (run(c, Q_BEGIN_WRITE) < 0 || read_rev(c, &cur) < 0)
		goto dberr;
	for (size_t i = 0; i < ncmps; i++) {
		uint64_t create_rev, mod_rev, version;
		if (key_meta(c, cmps[i].key, &create_rev, &mod_rev, &version) < 0)
			goto dberr;
		if (mod_rev != cmps[i].mod_rev) {
			rollback(c);
			if (rev)
				*rev = cur;
			return GOV_STORE_CONFLICT;
		}
	}
	uint64_t next = cur + 1;
	int seq = 0;
	for (size_t i = 0; i < nops; i++) {
		const struct gov_txn_op *op = &ops[i];
		int r = op->kind == GOV_TXN_PUT
			? put_row(c, next, seq, op->key, op->value, op->len)
			: delete_row(c, next, seq, op->key);
		if (r < 0)
			goto dberr;
		if (op->kind == GOV_TXN_PUT || r == 1)
			seq++;
	}
	if (seq == 0) {
		rollback(c);
		if (rev)
			*rev = cur;
		return 0;
	}
	sqlite3_stmt *st = stmt(c, Q_SET_REV);
	if (!st)
		goto dberr;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)next);
	int rc = sqlite3_step(st);
	done(st);
	if (rc != SQLITE_DONE || run(c, Q_COMMIT) < 0)
		goto dberr;
	notify(s, next);
	*changed = 1;
	if (rev)
		*rev = next;
	return 0;
dberr:
	db_fail(c, err, errlen, what);
	rollback(c);
	return -1;
}

/* ---- watching --------------------------------------------------------------- */

/* Watches the revision file: IN_CLOSE_WRITE from writers (once per commit:
 * IN_MODIFY too would wake every watcher twice, the second time for
 * nothing), and the file going away (deleted or renamed: the watch is on
 * the inode), after which drain() watches a new one. */
static int arm(struct sqlite_watch *w, char *err, size_t errlen)
{
	if (touch_rev_file(w->rev_path, w->what, err, errlen) < 0)
		return -1;
	w->wd = inotify_add_watch(w->ifd, w->rev_path, IN_CLOSE_WRITE |
				  IN_DELETE_SELF | IN_MOVE_SELF);
	if (w->wd < 0)
		return store_fail(err, errlen, "%s: inotify on %s: %s", w->what, w->rev_path,
			    strerror(errno));
	return 0;
}

/* Reads every pending inotify event, so that the descriptor is quiet until the
 * next commit; re-arms if the revision file went away. */
static int drain(struct sqlite_watch *w, char *err, size_t errlen)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int rearm = 0;
	for (;;) {
		ssize_t n = read(w->ifd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
				rearm = 1;
			p += sizeof *ev + ev->len;
		}
		/* room left for one more event of any size: the queue was empty
		 * (no second read just to be told EAGAIN) */
		if ((size_t)n <= sizeof buf - sizeof(struct inotify_event) - NAME_MAX - 1)
			break;
	}
	if (!rearm)
		return 0;
	inotify_rm_watch(w->ifd, w->wd);
	return arm(w, err, errlen);
}

/* Q_EVENTS has Q_LIST's columns (mod_rev is the event's revision), then kind. */
static int event_from_row(sqlite3_stmt *st, struct gov_event *ev)
{
	memset(ev, 0, sizeof *ev);
	ev->kind = (enum gov_event_kind)sqlite3_column_int(st, 5);
	return kv_from_row(st, 0, &ev->kv);
}

/* The events after w->last, up to WATCH_BATCH of them (whole revisions), in
 * one read transaction. Advances w->last past revisions without an event
 * under the prefix too, so they are not scanned again. */
static int fetch_locked(struct sqlite_watch *w, struct gov_event **evs, char *err,
			size_t errlen)
{
	struct conn *c = &w->wc->c;
	struct gov_event *out = NULL;
	int count = 0, cap = 0, full = 0;
	uint64_t cur = 0, last = w->last;
	sqlite3_stmt *st = NULL;
	if (run(c, Q_BEGIN) < 0 || read_rev(c, &cur) < 0 || !(st = stmt(c, Q_EVENTS)))
		goto dberr;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)w->last);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)cur);
	bind_text(st, 3, w->prefix);
	bind_text(st, 4, w->end);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t rev = (uint64_t)sqlite3_column_int64(st, 3);
		if (count >= WATCH_BATCH && rev != last) {
			full = 1;
			break;
		}
		if (count == cap) {
			int ncap = cap ? cap * 2 : 16;
			struct gov_event *p = realloc(out, (size_t)ncap * sizeof *p);
			if (!p)
				goto oom;
			out = p;
			cap = ncap;
		}
		if (event_from_row(st, &out[count]) < 0)
			goto oom;
		count++;
		last = rev;
	}
	if (!full && rc != SQLITE_DONE)
		goto dberr;
	done(st);
	if (run(c, Q_COMMIT) < 0)
		goto dberr;
	/* Caught up: everything up to cur has been seen. A watch that starts in
	 * the future (last > cur) stays there. */
	if (!full && cur > last)
		last = cur;
	w->last = last;
	*evs = out;
	return count;
oom:
	store_fail(err, errlen, "%s: out of memory", w->what);
	goto bad;
dberr:
	db_fail(c, err, errlen, w->what);
bad:
	if (st)
		done(st);
	rollback(c);
	gov_events_free(out, count);
	return -1;
}

static int fetch(struct sqlite_watch *w, struct gov_event **evs, char *err, size_t errlen)
{
	/* only this thread could have made itself the owner */
	if (atomic_load(&w->wc->batch) && pthread_equal(w->wc->batch_owner, pthread_self()))
		return store_fail(err, errlen, "%s: inside a read batch of its store "
				  "(gov_store_read_begin); end it first", w->what);
	pthread_mutex_lock(&w->wc->lock);
	int n = fetch_locked(w, evs, err, errlen);
	pthread_mutex_unlock(&w->wc->lock);
	return n;
}

/* The store's watch connection, opened by its first watch; a reference for
 * the caller. NULL with err. */
static struct watch_conn *watch_conn_get(struct sqlite_store *s, const char *what,
					 char *err, size_t errlen)
{
	if (!s->wc) {
		struct watch_conn *wc = calloc(1, sizeof *wc);
		if (!wc) {
			store_fail(err, errlen, "%s: out of memory", what);
			return NULL;
		}
		if (conn_open(&wc->c, s->path, 0, what, err, errlen) < 0) {
			free(wc);
			return NULL;
		}
		pthread_mutex_init(&wc->lock, NULL);
		atomic_init(&wc->refs, 1); /* the store's */
		s->wc = wc;
	}
	atomic_fetch_add(&s->wc->refs, 1);
	return s->wc;
}

static void sqlite_watch_close(struct gov_watch *base);

static int sqlite_watch(struct gov_store *base, const char *prefix, const char *end,
			uint64_t from_rev, struct gov_watch **out, char *err, size_t errlen)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	struct sqlite_watch *w = calloc(1, sizeof *w);
	if (!w)
		return store_fail(err, errlen, "watch %s: %s", prefix, strerror(errno));
	w->base.ops = &sqlite_ops;
	w->ifd = -1;
	w->what = store_asprintf("watch %s", prefix);
	w->rev_path = strdup(s->rev_path);
	w->prefix = strdup(prefix);
	w->end = end ? strdup(end) : NULL;
	if (!w->what || !w->rev_path || !w->prefix || (end && !w->end)) {
		store_fail(err, errlen, "watch %s: out of memory", prefix);
		goto bad;
	}
	/* The watches' connection: they may be used from another thread than
	 * the store, and outlive it. */
	if (!(w->wc = watch_conn_get(s, w->what, err, errlen)))
		goto bad;
	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ifd < 0) {
		store_fail(err, errlen, "%s: inotify: %s", w->what, strerror(errno));
		goto bad;
	}
	/* Armed before the current revision is read, so that no commit falls
	 * between the two unseen. */
	if (arm(w, err, errlen) < 0)
		goto bad;
	if (from_rev == 0) {
		pthread_mutex_lock(&w->wc->lock);
		int r = read_rev(&w->wc->c, &w->last);
		if (r < 0)
			db_fail(&w->wc->c, err, errlen, w->what);
		pthread_mutex_unlock(&w->wc->lock);
		if (r < 0)
			goto bad;
	} else {
		w->last = from_rev - 1;
	}
	*out = &w->base;
	return 0;
bad:
	sqlite_watch_close(&w->base);
	return -1;
}

/* The inotify event only says "something committed", and events coalesce,
 * so the log is the truth: drained first, so that a commit landing after the
 * question makes the descriptor readable again. */
static int sqlite_watch_take(struct gov_watch *base, struct gov_event **evs,
			     char *err, size_t errlen)
{
	struct sqlite_watch *w = (struct sqlite_watch *)base;
	if (drain(w, err, errlen) < 0)
		return -1;
	return fetch(w, evs, err, errlen);
}

static int sqlite_watch_fd(const struct gov_watch *base)
{
	return ((const struct sqlite_watch *)base)->ifd;
}

static void sqlite_watch_close(struct gov_watch *base)
{
	struct sqlite_watch *w = (struct sqlite_watch *)base;
	if (w->ifd >= 0)
		close(w->ifd);
	watch_conn_put(w->wc);
	free(w->what);
	free(w->rev_path);
	free(w->prefix);
	free(w->end);
	free(w);
}

static const struct store_ops sqlite_ops = {
	.close = sqlite_close,
	.revision = sqlite_revision,
	.get = sqlite_get,
	.list = sqlite_list,
	.txn = sqlite_txn,
	.read_begin = sqlite_read_begin,
	.read_end = sqlite_read_end,
	.watch = sqlite_watch,
	.watch_take = sqlite_watch_take,
	.recheck_ms = WATCH_RECHECK_MS,
	.watch_fd = sqlite_watch_fd,
	.watch_close = sqlite_watch_close,
};
