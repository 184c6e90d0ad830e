/* For sql.c and the dialect drivers only: the dialect driver table and the
 * common head of a database, connection and statement (each dialect's own
 * struct begins with it and casts back). */
#ifndef ISSO_STORE_SQL_PRIVATE_H
#define ISSO_STORE_SQL_PRIVATE_H

#include <pthread.h>

#include "store/sql.h"

struct sql_db {
	const struct sql_dialect *dialect;
	char *dsn; /* may hold a password: wiped on close */
	const struct sql_statement *stmts;
	char **sql;             /* per statement: the dialect's text, translated */
	unsigned int *n_params; /* per statement: its highest placeholder */
	unsigned int n_stmts;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sql_conn *idle; /* connections not in use */
	unsigned int n_conns;  /* open connections, idle or not */
	unsigned int max_conns;
	/* How long sql_acquire waits for a busy pool, ms; 0: no deadline. */
	unsigned int wait_ms;
};

struct sql_conn {
	struct sql_db *db;
	struct sql_conn *next;
	/* Taken from the idle pool (not freshly opened) by this acquire. */
	bool reused;
	/* Commands run since this acquire. */
	unsigned int n_run;
};

struct sql_stmt {
	struct sql_conn *conn;
	unsigned int id;
	bool owns_conn; /* from sql_query(): sql_finish() releases conn */
	int error;      /* the first binding failure, ISSO_ERR_* */
};

struct sql_dialect {
	const char *name;
	char placeholder; /* '?' or '$' */

	/* Checks dsn and sets db->max_conns. */
	int (*init)(struct sql_db *db, const char **error_r);
	int (*connect)(struct sql_db *db, struct sql_conn **conn_r, const char **error_r);
	void (*disconnect)(struct sql_conn *conn);
	/* An idle connection about to be reused: still usable? */
	bool (*alive)(struct sql_conn *conn);
	/* At release, after any rollback: may it go back to the pool? */
	bool (*healthy)(struct sql_conn *conn);
	bool (*in_transaction)(struct sql_conn *conn);

	int (*prepare)(struct sql_conn *conn, unsigned int id, struct sql_stmt **stmt_r);
	void (*reset)(struct sql_stmt *stmt);
	int (*bind_text)(struct sql_stmt *stmt, int i, const char *s);
	int (*bind_int)(struct sql_stmt *stmt, int i, int64_t v);
	int (*step)(struct sql_stmt *stmt);
	int (*changes)(struct sql_stmt *stmt);
	bool (*col_null)(struct sql_stmt *stmt, int i);
	const char *(*col_text)(struct sql_stmt *stmt, int i);
	int64_t (*col_int)(struct sql_stmt *stmt, int i);

	/* A fixed command without values (BEGIN, COMMIT, a lock); op names
	 * it in logs. */
	int (*command)(struct sql_conn *conn, const char *sql, const char *op);
	const char *begin_sql;
	/* sql_lock(table) / sql_lock(NULL); NULL: nothing to run. */
	int (*lock)(struct sql_conn *conn, const char *table);
	int (*script)(struct sql_conn *conn, const char *sql, const char **error_r);
	/* Optional. */
	int (*check)(struct sql_conn *conn, const char **error_r);
};

#endif
