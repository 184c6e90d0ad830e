/* The PostgreSQL dialect of the statement layer, on libpq: connections
 * opened lazily into the pool, each statement prepared once per
 * connection and run with text parameters, never built from values.
 *
 * A connection that fails is closed, not pooled: the call fails with
 * ISSO_ERR_STORE and the next call connects again, so the service
 * recovers from a restarted server by itself. A pooled connection the
 * server ended while it was idle fails on its first command: that command
 * runs once more on a new connection when it is a read (SELECT) or the
 * BEGIN of a transaction, never a change, which may have been committed
 * before the connection dropped (a second run would count twice or find
 * its one-time token already used). */
#ifdef HAVE_LIBPQ

#include "store/sql-private.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/isso.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"
#include "store/store-private.h"

#define PG_MAX_CONNS    16
#define PG_MAX_PARAMS   24
#define PG_CONNECT_WAIT "5" /* seconds, unless the conninfo says otherwise */

/* Serialises migrations of every process opening the same database. */
#define PG_MIGRATE_LOCK "SELECT pg_advisory_xact_lock(7305614260218)"

struct pg_stmt {
	struct sql_stmt base;
	int n; /* parameters: the statement's (unbound ones are NULL) */
	const char *v[PG_MAX_PARAMS];
	char buf[PG_MAX_PARAMS][24];
	PGresult *res;
	bool executed;
	int row, n_rows, changes;
};

struct pg_conn {
	struct sql_conn base;
	PGconn *db;
	bool *prepared;
	struct pg_stmt *stmts;
};

/* Server notices and the messages of a connection the server ended go to
 * the log, not to stderr. */
static void
pg_notice(void *arg, const char *message)
{
	char buf[256];
	size_t n;

	(void)arg;
	snprintf(buf, sizeof(buf), "%s", message);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	log_warn("store_pgsql_notice", "message", buf, NULL);
}

/* Maps a failed result to an ISSO_ERR_*; logs real failures (the primary
 * message names tables, columns and constraints, never values: the detail,
 * which may hold values, is never logged). */
static int
pg_error(struct pg_conn *c, const PGresult *res, const char *op)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (state != NULL && strcmp(state, "23505") == 0)
		return ISSO_ERR_CONFLICT;
	if (state != NULL && (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0)) {
		/* integrity constraint or data exception (e.g. invalid UTF-8) */
		log_warn("store_pgsql_constraint", "op", op, "sqlstate", state, "detail",
		         msg != NULL ? msg : "", NULL);
		return ISSO_ERR_INVALID;
	}
	if (PQstatus(c->db) != CONNECTION_OK) {
		log_warn("store_pgsql_connection_lost", "op", op, "error", PQerrorMessage(c->db),
		         NULL);
		return ISSO_ERR_STORE;
	}
	log_error("store_pgsql_error", "op", op, "sqlstate", state != NULL ? state : "", "detail",
	          msg != NULL ? msg : PQerrorMessage(c->db), NULL);
	return ISSO_ERR_STORE;
}

static const char *
pg_op(const struct sql_stmt *st)
{
	const char *name = st->conn->db->stmts[st->id].name;

	return name != NULL ? name : "sql";
}

static int
pg_init(struct sql_db *db, const char **error_r)
{
	if (PQisthreadsafe() == 0) {
		*error_r = "libpq was built without thread support";
		return ISSO_ERR_STORE;
	}
	if (db->dsn[0] == '\0') {
		*error_r = "store.conninfo: empty";
		return ISSO_ERR_INVALID;
	}
	db->max_conns = PG_MAX_CONNS;
	return 0;
}

/* A new session on db's conninfo. */
static int
pg_session(struct sql_db *db, PGconn **pg_r, const char **error_r)
{
	/* Ours first: the conninfo (expanded from dbname) overrides them. */
	/* A server that falls silent (a network partition) must not hold a
	 * request thread for TCP's own quarter of an hour: keepalives and a
	 * user timeout end the connection. (No statement timeout: migrations
	 * run on these connections too.) */
	const char *const keys[] = {"connect_timeout",  "application_name",
	                            "client_encoding",  "keepalives",
	                            "keepalives_idle",  "keepalives_interval",
	                            "keepalives_count", "tcp_user_timeout",
	                            "dbname",           NULL};
	const char *const values[] = {PG_CONNECT_WAIT, "issod", "UTF8", "1", "30", "10", "3",
	                              "30000",         db->dsn, NULL};
	PGconn *pg;
	PGresult *res = NULL;
	int ret = 0;

	*pg_r = NULL;
	pg = PQconnectdbParams(keys, values, 1);
	if (pg == NULL) {
		*error_r = "cannot connect to postgresql: out of memory";
		return ISSO_ERR_STORE;
	}
	if (PQstatus(pg) != CONNECTION_OK) {
		*error_r = store_error_fmt("cannot connect to postgresql: %s", PQerrorMessage(pg));
		ret = ISSO_ERR_STORE;
		goto out;
	}
	PQsetNoticeProcessor(pg, pg_notice, NULL);
	/* Times and counters are plain integers; nothing depends on the
	 * session's time zone. Quiet notices ("already exists, skipping"). */
	res = PQexec(pg, "SET client_min_messages = warning");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		*error_r = store_error_fmt("cannot configure the postgresql session: %s",
		                           PQerrorMessage(pg));
		ret = ISSO_ERR_STORE;
		goto out;
	}
	*pg_r = pg;
	pg = NULL;
out:
	PQclear(res);
	PQfinish(pg);
	return ret;
}

static void
pg_reset(struct sql_stmt *base)
{
	struct pg_stmt *s = (struct pg_stmt *)base;
	int rows, cols;

	if (s->res != NULL && base->conn->db->stmts[base->id].secret) {
		/* Clears the secrets libpq copied into the result. */
		rows = PQntuples(s->res);
		cols = PQnfields(s->res);
		for (int r = 0; r < rows; r++) {
			for (int i = 0; i < cols; i++) {
				if (!PQgetisnull(s->res, r, i))
					explicit_bzero(PQgetvalue(s->res, r, i),
					               (size_t)PQgetlength(s->res, r, i));
			}
		}
	}
	PQclear(s->res);
	s->res = NULL;
	memset(s->v, 0, sizeof(s->v));
	s->executed = false;
	s->row = -1;
	s->n_rows = 0;
	s->changes = 0;
}

static void
pg_disconnect(struct sql_conn *base)
{
	struct pg_conn *c = (struct pg_conn *)base;

	if (c == NULL)
		return;
	for (unsigned int i = 0; c->stmts != NULL && i < base->db->n_stmts; i++)
		PQclear(c->stmts[i].res);
	free(c->stmts);
	free(c->prepared);
	PQfinish(c->db);
	free(c);
}

static int
pg_connect(struct sql_db *db, struct sql_conn **conn_r, const char **error_r)
{
	struct pg_conn *c;
	PGconn *pg = NULL;
	int ret;

	*conn_r = NULL;
	ret = pg_session(db, &pg, error_r);
	if (ret < 0)
		return ret;
	c = xcalloc(1, sizeof(*c));
	c->base.db = db;
	c->db = pg;
	c->prepared = xcalloc(db->n_stmts > 0 ? db->n_stmts : 1, sizeof(*c->prepared));
	c->stmts = xcalloc(db->n_stmts > 0 ? db->n_stmts : 1, sizeof(*c->stmts));
	*conn_r = &c->base;
	return 0;
}

/* Replaces the connection's session with a new one (nothing prepared). */
static int
pg_reconnect(struct pg_conn *c)
{
	const char *error = NULL;
	PGconn *pg = NULL;
	int ret;

	log_info("store_pgsql_reconnect", NULL);
	ret = pg_session(c->base.db, &pg, &error);
	if (ret < 0) {
		log_error("store_pgsql_connect", "error", error, NULL);
		return ret;
	}
	PQfinish(c->db);
	c->db = pg;
	memset(c->prepared, 0, c->base.db->n_stmts * sizeof(*c->prepared));
	c->base.reused = false;
	return 0;
}

/* True when an idle connection is still usable: a server that restarted
 * or ended the session has left an error and EOF on the socket, which
 * reading now turns into CONNECTION_BAD. */
static bool
pg_alive(struct sql_conn *base)
{
	struct pg_conn *c = (struct pg_conn *)base;

	if (PQstatus(c->db) != CONNECTION_OK)
		return false;
	if (PQconsumeInput(c->db) == 0)
		return false;
	return PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) == PQTRANS_IDLE;
}

static bool
pg_healthy(struct sql_conn *base)
{
	struct pg_conn *c = (struct pg_conn *)base;

	return PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) == PQTRANS_IDLE;
}

static bool
pg_in_transaction(struct sql_conn *base)
{
	struct pg_conn *c = (struct pg_conn *)base;

	return PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) != PQTRANS_IDLE;
}

/* Whether a command that failed may run once more on a new connection:
 * the first on a connection taken from the pool, lost, and a read or the
 * start of a transaction. */
static bool
pg_may_retry(struct pg_conn *c, bool first, int attempt, const char *sql)
{
	return attempt == 0 && first && c->base.reused && PQstatus(c->db) != CONNECTION_OK &&
	       (strncmp(sql, "SELECT", 6) == 0 || strcmp(sql, "BEGIN") == 0);
}

static int
pg_prepare(struct sql_conn *base, unsigned int id, struct sql_stmt **stmt_r)
{
	struct pg_conn *c = (struct pg_conn *)base;
	struct pg_stmt *s = &c->stmts[id];

	if (base->db->n_params[id] > PG_MAX_PARAMS) {
		log_error("store_pgsql_error", "op", base->db->stmts[id].name, "detail",
		          "too many parameters", NULL);
		return ISSO_ERR_INVALID;
	}
	s->base.conn = base;
	s->base.id = id;
	pg_reset(&s->base);
	s->n = (int)base->db->n_params[id];
	*stmt_r = &s->base;
	return 0;
}

static int
pg_bind_slot(struct pg_stmt *s, int i)
{
	if (i < 1 || i > s->n) {
		log_error("store_pgsql_error", "op", pg_op(&s->base), "detail",
		          "parameter out of range", NULL);
		return ISSO_ERR_INVALID;
	}
	return 0;
}

static int
pg_bind_text(struct sql_stmt *base, int i, const char *v)
{
	struct pg_stmt *s = (struct pg_stmt *)base;
	int ret = pg_bind_slot(s, i);

	if (ret == 0)
		s->v[i - 1] = v;
	return ret;
}

static int
pg_bind_int(struct sql_stmt *base, int i, int64_t v)
{
	struct pg_stmt *s = (struct pg_stmt *)base;
	int ret = pg_bind_slot(s, i);

	if (ret == 0) {
		snprintf(s->buf[i - 1], sizeof(s->buf[i - 1]), "%" PRId64, v);
		s->v[i - 1] = s->buf[i - 1];
	}
	return ret;
}

/* True when every text parameter is valid UTF-8, which the server
 * requires of text. */
static bool
pg_params_valid(const struct pg_stmt *s)
{
	for (int i = 0; i < s->n; i++) {
		if (s->v[i] != NULL && !utf8_valid(s->v[i], strlen(s->v[i])))
			return false;
	}
	return true;
}

/* Prepares (once per session) and runs the statement. */
static int
pg_run(struct pg_conn *c, struct pg_stmt *s)
{
	const struct sql_db *db = c->base.db;
	unsigned int id = s->base.id;
	const char *op = pg_op(&s->base), *n;
	char name[16];
	PGresult *res;
	ExecStatusType status;
	long v = 0;

	snprintf(name, sizeof(name), "s%u", id);
	if (!c->prepared[id]) {
		res = PQprepare(c->db, name, db->sql[id], 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			int ret = pg_error(c, res, op);

			PQclear(res);
			return ret;
		}
		PQclear(res);
		c->prepared[id] = true;
	}
	res = PQexecPrepared(c->db, name, s->n, s->v, NULL, NULL, 0);
	status = PQresultStatus(res);
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
		int ret = pg_error(c, res, op);

		PQclear(res);
		return ret;
	}
	n = PQcmdTuples(res);
	if (n != NULL && n[0] != '\0') {
		errno = 0;
		v = strtol(n, NULL, 10);
		if (errno != 0 || v < 0 || v > INT32_MAX)
			v = 0;
	}
	s->res = res;
	s->changes = (int)v;
	s->n_rows = PQntuples(res);
	return 0;
}

static int
pg_execute(struct pg_stmt *s)
{
	struct pg_conn *c = (struct pg_conn *)s->base.conn;
	const char *sql = c->base.db->sql[s->base.id];
	bool first;
	int ret;

	/* A key that is not UTF-8 (hostile input) names no stored row, as on
	 * SQLite: lookups and changes find nothing; only a new row is refused. */
	if (!pg_params_valid(s)) {
		if (strncmp(sql, "INSERT", 6) == 0)
			return ISSO_ERR_INVALID;
		return 0;
	}
	for (int attempt = 0;; attempt++) {
		first = c->base.n_run == 0;
		c->base.n_run++;
		ret = pg_run(c, s);
		if (ret == 0 || !pg_may_retry(c, first, attempt, sql))
			break;
		if (pg_reconnect(c) < 0)
			break;
	}
	return ret;
}

static int
pg_step(struct sql_stmt *base)
{
	struct pg_stmt *s = (struct pg_stmt *)base;
	int ret;

	if (!s->executed) {
		ret = pg_execute(s);
		if (ret < 0)
			return ret;
		s->executed = true;
		s->row = -1;
	}
	if (s->row < s->n_rows)
		s->row++;
	return s->row < s->n_rows ? 1 : 0;
}

static int
pg_changes(struct sql_stmt *base)
{
	return ((struct pg_stmt *)base)->changes;
}

static bool
pg_col_null(struct sql_stmt *base, int i)
{
	struct pg_stmt *s = (struct pg_stmt *)base;

	if (s->res == NULL || s->row < 0 || s->row >= s->n_rows || i < 0 || i >= PQnfields(s->res))
		return true;
	return PQgetisnull(s->res, s->row, i) != 0;
}

static const char *
pg_col_text(struct sql_stmt *base, int i)
{
	struct pg_stmt *s = (struct pg_stmt *)base;

	if (pg_col_null(base, i))
		return NULL;
	return PQgetvalue(s->res, s->row, i);
}

/* Integers come back as decimal text; NULL or garbage reads as 0. */
static int64_t
pg_col_int(struct sql_stmt *base, int i)
{
	const char *s = pg_col_text(base, i);
	char *end = NULL;
	long long v;

	if (s == NULL)
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return 0;
	return (int64_t)v;
}

static int
pg_command(struct sql_conn *base, const char *sql, const char *op)
{
	struct pg_conn *c = (struct pg_conn *)base;
	PGresult *res;
	ExecStatusType status;
	bool first;
	int ret;

	for (int attempt = 0;; attempt++) {
		first = base->n_run == 0;
		base->n_run++;
		res = PQexec(c->db, sql);
		status = PQresultStatus(res);
		ret = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK
		          ? 0
		          : pg_error(c, res, op);
		PQclear(res);
		if (ret == 0 || !pg_may_retry(c, first, attempt, sql))
			break;
		if (pg_reconnect(c) < 0)
			break;
	}
	return ret;
}

static int
pg_lock(struct sql_conn *base, const char *table)
{
	char sql[128];

	if (table == NULL)
		return pg_command(base, PG_MIGRATE_LOCK, "migrate");
	/* table is an identifier from code (checked by sql_lock). */
	snprintf(sql, sizeof(sql), "LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", table);
	return pg_command(base, sql, "lock");
}

/* The file's own statements, several in one simple query. */
static int
pg_script(struct sql_conn *base, const char *sql, const char **error_r)
{
	struct pg_conn *c = (struct pg_conn *)base;
	PGresult *res;
	ExecStatusType status;
	int ret = 0;

	base->n_run++;
	res = PQexec(c->db, sql);
	status = PQresultStatus(res);
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		*error_r = store_error_fmt("%s", msg != NULL ? msg : PQerrorMessage(c->db));
		ret = ISSO_ERR_STORE;
	}
	PQclear(res);
	return ret;
}

const struct sql_dialect sql_dialect_pgsql = {
    .name = "postgresql",
    .placeholder = '$',
    .init = pg_init,
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .alive = pg_alive,
    .healthy = pg_healthy,
    .in_transaction = pg_in_transaction,
    .prepare = pg_prepare,
    .reset = pg_reset,
    .bind_text = pg_bind_text,
    .bind_int = pg_bind_int,
    .step = pg_step,
    .changes = pg_changes,
    .col_null = pg_col_null,
    .col_text = pg_col_text,
    .col_int = pg_col_int,
    .command = pg_command,
    .begin_sql = "BEGIN",
    .lock = pg_lock,
    .script = pg_script,
    .check = NULL,
};

#endif
