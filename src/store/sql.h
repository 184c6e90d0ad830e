/* A small statement layer under the store (in the manner of dovecot's
 * lib-sql): a database is a dialect driver (SQLite, PostgreSQL) plus a
 * pool of connections; statements are written once, numbered, with ?N
 * placeholders (or $N), and prepared by id once per connection; values are
 * always bound, never built into the text. Store backends are written over
 * this header only (src/store/store-sql.c); nothing outside src/store
 * includes it.
 *
 * Use: sql_query() takes a pooled connection and statement id, the
 * caller binds, steps rows or runs it to completion, and sql_finish()
 * resets the statement and gives the connection back. Several statements
 * on one connection (a transaction, a batch) are sql_acquire(),
 * sql_prepare() … sql_finish() each, sql_release(). Errors are ISSO_ERR_*:
 * a unique key taken is ISSO_ERR_CONFLICT, another constraint or bad data
 * ISSO_ERR_INVALID, anything else ISSO_ERR_STORE (logged by the dialect
 * with the statement's name, never with values). */
#ifndef ISSO_STORE_SQL_H
#define ISSO_STORE_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sql_db;
struct sql_conn;
struct sql_stmt;
struct sql_dialect;

/* The dialects (sql_dialect_pgsql exists in builds with libpq). */
extern const struct sql_dialect sql_dialect_sqlite;
extern const struct sql_dialect sql_dialect_pgsql;

/* One statement of a database's table, found by its index there. */
struct sql_statement {
	const char *name; /* the operation, for logs */
	const char *sql;  /* the text for every dialect … */
	/* … unless the dialect has its own variant here (a real difference
	 * only: row locking, a function only one of them has). */
	const char *sqlite;
	const char *pgsql;
	/* Rows carry secrets: the dialect wipes its copies after use. */
	bool secret;
};

/* Opens a database of dialect at dsn (a path or URI for SQLite, a
 * conninfo for PostgreSQL) whose statements are stmts[0..n_stmts). Every
 * statement's text is chosen and its placeholders translated here, once;
 * no connection is made yet. */
int sql_db_open(const struct sql_dialect *dialect, const char *dsn,
                const struct sql_statement *stmts, unsigned int n_stmts, struct sql_db **db_r,
                const char **error_r);
/* Closes every pooled connection. No connection may be in use. */
void sql_db_close(struct sql_db *db);
/* A request waits at most SQL_POOL_WAIT_MS for a busy pool by default. */
#define SQL_POOL_WAIT_MS 3000
/* Sets how long sql_acquire waits for a connection when the pool is full
 * (wait_ms; 0: without a deadline) and, when max_conns is not 0, lowers
 * the pool to at most max_conns connections (never above the dialect's
 * own limit). Call before the pool is in use. */
void sql_db_pool(struct sql_db *db, unsigned int max_conns, unsigned int wait_ms);
/* "sqlite" or "postgresql" (also the migrations folder's name). */
const char *sql_db_dialect_name(const struct sql_db *db);

/* Rewrites every ?N and $N placeholder of sql outside quotes into mark
 * ('?' or '$') followed by N. A placeholder without a number, or numbered
 * 0 or above 99, is ISSO_ERR_INVALID. *out_r is malloc'd. */
int sql_translate(const char *sql, char mark, char **out_r);

/* Takes a connection from the pool, opening one when none is idle and the
 * pool is not full, else waiting for one, up to the pool's deadline
 * (sql_db_pool): past it ISSO_ERR_STORE, as when the store is down.
 * error_r gets why a new connection failed; when it is NULL the reason
 * is logged here instead. */
int sql_acquire(struct sql_db *db, struct sql_conn **conn_r, const char **error_r);
/* Gives it back; an open transaction is rolled back first, and a broken
 * connection is closed instead of pooled. NULL is a no-op. */
void sql_release(struct sql_conn *conn);

/* The connection's statement id, prepared on first use. A connection has
 * one of each: finish it before preparing the same id again. */
int sql_prepare(struct sql_conn *conn, unsigned int id, struct sql_stmt **stmt_r);
/* sql_acquire + sql_prepare: sql_finish() gives the connection back too.
 * On failure *stmt_r is NULL and nothing is held. */
int sql_query(struct sql_db *db, unsigned int id, struct sql_stmt **stmt_r);
/* Resets the statement (bindings, rows) and, for sql_query's, releases
 * its connection. NULL is a no-op. */
void sql_finish(struct sql_stmt *stmt);

/* Binding, by 1-based placeholder number. Texts are not copied: they must
 * live until sql_finish(). A NULL text binds NULL. The first failure is
 * kept and returned by the next sql_step(). */
void sql_bind_text(struct sql_stmt *stmt, int i, const char *s);
void sql_bind_int(struct sql_stmt *stmt, int i, int64_t v);
void sql_bind_null(struct sql_stmt *stmt, int i);

/* Runs the statement (on the first call) and moves to its next row: 1
 * when there is a row, 0 when there are no more, < 0 on error. */
int sql_step(struct sql_stmt *stmt);
/* Steps to completion, ignoring rows; *changes_r (may be NULL) gets the
 * number of rows the statement changed. */
int sql_exec(struct sql_stmt *stmt, int *changes_r);

/* Columns of the current row, 0-based. */
bool sql_col_null(struct sql_stmt *stmt, int i);
/* Valid until the next step or sql_finish; NULL for NULL. */
const char *sql_col_text(struct sql_stmt *stmt, int i);
/* A malloc'd copy; NULL for NULL. */
char *sql_col_dup(struct sql_stmt *stmt, int i);
/* NULL (or, on PostgreSQL, text that is no integer) reads as 0. */
int64_t sql_col_int(struct sql_stmt *stmt, int i);

/* Transactions on an acquired connection. sql_begin takes the write lock
 * at once on SQLite (BEGIN IMMEDIATE); sql_rollback does nothing outside a
 * transaction. */
int sql_begin(struct sql_conn *conn);
int sql_commit(struct sql_conn *conn);
void sql_rollback(struct sql_conn *conn);
/* Inside a transaction: serialises writers of table (an identifier from
 * code) against each other until commit, readers not held up; NULL: the
 * database's migration lock. SQLite's write lock already does both. */
int sql_lock(struct sql_conn *conn, const char *table);
/* Runs a script of several statements (a migration file), no values;
 * error_r gets the server's reason. */
int sql_script(struct sql_conn *conn, const char *sql, const char **error_r);
/* The dialect's own readiness check beyond a query (SQLite: the database
 * file is still the one at its path). 0 when there is none. */
int sql_check(struct sql_conn *conn, const char **error_r);

#endif
