/* The SQLite dialect of the statement layer: connections opened lazily
 * into the pool (one for an in-memory database, whose data lives in the
 * connection), WAL journal, a busy timeout, statements prepared once per
 * connection. Transactions take the write lock at once (BEGIN
 * IMMEDIATE), which also serialises table locks and migrations.
 * GREATEST and LEAST (integers) are defined on every connection so that
 * statements are written once for both dialects. */
#include "store/sql-private.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/isso.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store-private.h"

#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_MAX_CONNS       16

struct sq_stmt {
	struct sql_stmt base;
	sqlite3_stmt *st;
	int rc; /* of the last step */
};

struct sq_conn {
	struct sql_conn base;
	sqlite3 *db;
	struct sq_stmt *stmts; /* n_stmts, prepared on first use */
};

/* Maps a SQLite result code to an ISSO_ERR_*; logs real failures (the
 * message names tables and columns, never values). */
static int
sq_error(sqlite3 *db, int rc, const char *op)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return ISSO_ERR_CONFLICT;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
	case SQLITE_CONSTRAINT_NOTNULL:
	case SQLITE_CONSTRAINT_CHECK:
		log_warn("store_sqlite_constraint", "op", op, "detail", sqlite3_errmsg(db), NULL);
		return ISSO_ERR_INVALID;
	default:
		log_error("store_sqlite_error", "op", op, "error", sqlite3_errstr(rc), "detail",
		          db != NULL ? sqlite3_errmsg(db) : "", NULL);
		return ISSO_ERR_STORE;
	}
}

static const char *
sq_op(const struct sql_stmt *st)
{
	const char *name = st->conn->db->stmts[st->id].name;

	return name != NULL ? name : "sql";
}

/* GREATEST/LEAST over integers, as PostgreSQL's: NULLs are ignored, all
 * NULL gives NULL. */
static void
sq_extreme(sqlite3_context *ctx, int argc, sqlite3_value **argv, bool greatest)
{
	bool any = false;
	sqlite3_int64 best = 0, v;

	for (int i = 0; i < argc; i++) {
		if (sqlite3_value_type(argv[i]) == SQLITE_NULL)
			continue;
		v = sqlite3_value_int64(argv[i]);
		if (!any || (greatest ? v > best : v < best))
			best = v;
		any = true;
	}
	if (any)
		sqlite3_result_int64(ctx, best);
	else
		sqlite3_result_null(ctx);
}

static void
sq_greatest(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	sq_extreme(ctx, argc, argv, true);
}

static void
sq_least(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	sq_extreme(ctx, argc, argv, false);
}

/* True for DSNs whose database lives in the connection: one connection. */
static bool
sq_dsn_is_memory(const char *dsn)
{
	return dsn[0] == '\0' || strcmp(dsn, ":memory:") == 0 || strstr(dsn, "mode=memory") ||
	       strncmp(dsn, "file::memory:", 13) == 0;
}

/* Creates a plain database file mode 0600 (it holds sealed personal data;
 * SQLite gives its -wal and -shm files the same mode). */
static int
sq_create_file(const char *path, const char **error_r)
{
	int fd;

	if (strncmp(path, "file:", 5) == 0 || sq_dsn_is_memory(path))
		return 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = store_error_fmt("cannot open %s: %s", path, strerror(errno));
		return ISSO_ERR_IO;
	}
	close(fd);
	return 0;
}

static int
sq_init(struct sql_db *db, const char **error_r)
{
	if (sqlite3_threadsafe() == 0) {
		*error_r = "sqlite was built without thread support";
		return ISSO_ERR_STORE;
	}
	db->max_conns = sq_dsn_is_memory(db->dsn) ? 1 : SQ_MAX_CONNS;
	return sq_create_file(db->dsn, error_r);
}

static void
sq_disconnect(struct sql_conn *base)
{
	struct sq_conn *c = (struct sq_conn *)base;

	if (c == NULL)
		return;
	for (unsigned int i = 0; c->stmts != NULL && i < base->db->n_stmts; i++)
		sqlite3_finalize(c->stmts[i].st);
	free(c->stmts);
	if (sqlite3_close(c->db) != SQLITE_OK)
		log_error("store_sqlite_close", "error", sqlite3_errmsg(c->db), NULL);
	free(c);
}

/* Before SQLite's first use in the process: without memory statistics
 * its allocator takes no process-wide mutex, which every statement of
 * every connection otherwise contended for. */
static void
sq_configure_once(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int
sq_connect(struct sql_db *db, struct sql_conn **conn_r, const char **error_r)
{
	static pthread_once_t configured = PTHREAD_ONCE_INIT;
	/* Reads through a memory map: with several connections each write
	 * drops the others' page caches, and pread() of every page again
	 * was a tenth of a token request. Checkpoints (each one fsyncs) come
	 * after 16 MiB of WAL instead of 4, so one page written by many
	 * transactions is copied back once. */
	static const char pragmas[] = "PRAGMA journal_mode = WAL; "
	                              "PRAGMA synchronous = NORMAL; "
	                              "PRAGMA foreign_keys = ON; "
	                              "PRAGMA mmap_size = 268435456; "
	                              "PRAGMA wal_autocheckpoint = 4000;";
	const int fn_flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
	struct sq_conn *c = xcalloc(1, sizeof(*c));
	int rc, ret = 0;

	(void)pthread_once(&configured, sq_configure_once);
	*conn_r = NULL;
	c->base.db = db;
	c->stmts = xcalloc(db->n_stmts > 0 ? db->n_stmts : 1, sizeof(*c->stmts));
	rc = sqlite3_open_v2(db->dsn, &c->db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
	                         SQLITE_OPEN_URI,
	                     NULL);
	if (rc != SQLITE_OK) {
		*error_r =
		    store_error_fmt("cannot open sqlite database %s: %s", db->dsn,
		                    c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		ret = ISSO_ERR_STORE;
		goto out;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, SQ_BUSY_TIMEOUT_MS);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DML, 0, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL);
	rc = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(c->db, "greatest", -1, fn_flags, NULL, sq_greatest,
		                             NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(c->db, "least", -1, fn_flags, NULL, sq_least, NULL,
		                             NULL);
	if (rc != SQLITE_OK) {
		*error_r = store_error_fmt("cannot configure sqlite database %s: %s", db->dsn,
		                           sqlite3_errmsg(c->db));
		ret = ISSO_ERR_STORE;
		goto out;
	}
	*conn_r = &c->base;
	c = NULL;
out:
	if (c != NULL)
		sq_disconnect(&c->base);
	return ret;
}

static bool
sq_alive(struct sql_conn *base)
{
	(void)base;
	return true;
}

static bool
sq_healthy(struct sql_conn *base)
{
	(void)base;
	return true;
}

static bool
sq_in_transaction(struct sql_conn *base)
{
	return !sqlite3_get_autocommit(((struct sq_conn *)base)->db);
}

static int
sq_prepare(struct sql_conn *base, unsigned int id, struct sql_stmt **stmt_r)
{
	struct sq_conn *c = (struct sq_conn *)base;
	struct sq_stmt *s = &c->stmts[id];
	int rc;

	if (s->st == NULL) {
		rc = sqlite3_prepare_v3(c->db, base->db->sql[id], -1, SQLITE_PREPARE_PERSISTENT,
		                        &s->st, NULL);
		if (rc != SQLITE_OK) {
			const char *name = base->db->stmts[id].name;

			return sq_error(c->db, rc, name != NULL ? name : "prepare");
		}
	}
	s->rc = SQLITE_OK;
	*stmt_r = &s->base;
	return 0;
}

static void
sq_reset(struct sql_stmt *base)
{
	struct sq_stmt *s = (struct sq_stmt *)base;

	sqlite3_reset(s->st);
	sqlite3_clear_bindings(s->st);
	s->rc = SQLITE_OK;
}

static int
sq_bind_result(struct sql_stmt *base, int rc)
{
	if (rc == SQLITE_OK)
		return 0;
	return sq_error(((struct sq_conn *)base->conn)->db, rc, sq_op(base));
}

static int
sq_bind_text(struct sql_stmt *base, int i, const char *s)
{
	sqlite3_stmt *st = ((struct sq_stmt *)base)->st;

	return sq_bind_result(base, s != NULL ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC)
	                                      : sqlite3_bind_null(st, i));
}

static int
sq_bind_int(struct sql_stmt *base, int i, int64_t v)
{
	return sq_bind_result(base, sqlite3_bind_int64(((struct sq_stmt *)base)->st, i, v));
}

static int
sq_step(struct sql_stmt *base)
{
	struct sq_stmt *s = (struct sq_stmt *)base;

	if (s->rc == SQLITE_DONE)
		return 0;
	s->rc = sqlite3_step(s->st);
	base->conn->n_run++;
	if (s->rc == SQLITE_ROW)
		return 1;
	if (s->rc == SQLITE_DONE)
		return 0;
	return sq_error(((struct sq_conn *)base->conn)->db, s->rc, sq_op(base));
}

static int
sq_changes(struct sql_stmt *base)
{
	return sqlite3_changes(((struct sq_conn *)base->conn)->db);
}

static bool
sq_col_null(struct sql_stmt *base, int i)
{
	return sqlite3_column_type(((struct sq_stmt *)base)->st, i) == SQLITE_NULL;
}

static const char *
sq_col_text(struct sql_stmt *base, int i)
{
	return (const char *)sqlite3_column_text(((struct sq_stmt *)base)->st, i);
}

static int64_t
sq_col_int(struct sql_stmt *base, int i)
{
	return sqlite3_column_int64(((struct sq_stmt *)base)->st, i);
}

static int
sq_command(struct sql_conn *base, const char *sql, const char *op)
{
	struct sq_conn *c = (struct sq_conn *)base;
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

	base->n_run++;
	return rc == SQLITE_OK ? 0 : sq_error(c->db, rc, op);
}

static int
sq_script(struct sql_conn *base, const char *sql, const char **error_r)
{
	struct sq_conn *c = (struct sq_conn *)base;
	char *errmsg = NULL;
	int ret = 0;

	base->n_run++;
	if (sqlite3_exec(c->db, sql, NULL, NULL, &errmsg) != SQLITE_OK) {
		*error_r = store_error_fmt("%s", errmsg != NULL ? errmsg : sqlite3_errmsg(c->db));
		ret = ISSO_ERR_STORE;
	}
	sqlite3_free(errmsg);
	return ret;
}

/* Readiness: the file we opened is still the one at the path (a database
 * moved or deleted under a running daemon keeps answering from the
 * orphaned inode, and every write would be lost). */
static int
sq_check(struct sql_conn *base, const char **error_r)
{
	struct sq_conn *c = (struct sq_conn *)base;
	int moved = 0;

	if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK &&
	    moved) {
		*error_r = "the database file was moved or removed";
		return ISSO_ERR_STORE;
	}
	return 0;
}

const struct sql_dialect sql_dialect_sqlite = {
    .name = "sqlite",
    .placeholder = '?',
    .init = sq_init,
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .alive = sq_alive,
    .healthy = sq_healthy,
    .in_transaction = sq_in_transaction,
    .prepare = sq_prepare,
    .reset = sq_reset,
    .bind_text = sq_bind_text,
    .bind_int = sq_bind_int,
    .step = sq_step,
    .changes = sq_changes,
    .col_null = sq_col_null,
    .col_text = sq_col_text,
    .col_int = sq_col_int,
    .command = sq_command,
    .begin_sql = "BEGIN IMMEDIATE",
    .lock = NULL,
    .script = sq_script,
    .check = sq_check,
};
