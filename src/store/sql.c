/* The dialect-independent half of the statement layer: statement texts,
 * placeholder translation, the connection pool, and the calls that
 * dispatch to the dialect driver (sqlite/sql-sqlite.c, pgsql/sql-pgsql.c). */
#include "store/sql-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/isso.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xmalloc.h"
#include "store/store-private.h"

/* ---- statement texts ---- */

/* sql_translate; *max_r gets the highest placeholder number. */
static int
sql_translate_count(const char *sql, char mark, char **out_r, unsigned int *max_r)
{
	size_t len = strlen(sql), o = 0;
	unsigned int max = 0;
	char *out = xmalloc(len + 1), quote = '\0';
	const char *p = sql;

	*out_r = NULL;
	while (*p != '\0') {
		if (quote != '\0') {
			if (*p == quote)
				quote = '\0';
			out[o++] = *p++;
			continue;
		}
		if (*p == '\'' || *p == '"') {
			quote = *p;
			out[o++] = *p++;
			continue;
		}
		if (*p == '?' || *p == '$') {
			unsigned int n = 0, digits = 0;

			out[o++] = mark;
			p++;
			while (*p >= '0' && *p <= '9' && digits < 3) {
				n = n * 10 + (unsigned int)(*p - '0');
				out[o++] = *p++;
				digits++;
			}
			if (digits == 0 || n == 0 || n > 99 || (*p >= '0' && *p <= '9'))
				goto fail;
			if (n > max)
				max = n;
			continue;
		}
		out[o++] = *p++;
	}
	if (quote != '\0')
		goto fail;
	out[o] = '\0';
	*out_r = out;
	*max_r = max;
	return 0;
fail:
	free(out);
	return ISSO_ERR_INVALID;
}

int
sql_translate(const char *sql, char mark, char **out_r)
{
	unsigned int max;

	return sql_translate_count(sql, mark, out_r, &max);
}

static const char *
sql_variant(const struct sql_dialect *dialect, const struct sql_statement *s)
{
	if (strcmp(dialect->name, "sqlite") == 0 && s->sqlite != NULL)
		return s->sqlite;
	if (strcmp(dialect->name, "postgresql") == 0 && s->pgsql != NULL)
		return s->pgsql;
	return s->sql;
}

/* ---- the database ---- */

void
sql_db_close(struct sql_db *db)
{
	struct sql_conn *c;

	if (db == NULL)
		return;
	pthread_mutex_lock(&db->lock);
	while ((c = db->idle) != NULL) {
		db->idle = c->next;
		db->n_conns--;
		db->dialect->disconnect(c);
	}
	if (db->n_conns != 0)
		log_error("store_sql_close_busy", "driver", db->dialect->name, "detail",
		          "store closed while connections were in use", NULL);
	pthread_mutex_unlock(&db->lock);
	pthread_cond_destroy(&db->cond);
	pthread_mutex_destroy(&db->lock);
	for (unsigned int i = 0; db->sql != NULL && i < db->n_stmts; i++)
		free(db->sql[i]);
	free(db->sql);
	free(db->n_params);
	if (db->dsn != NULL)
		xfree_secret(db->dsn);
	free(db);
}

int
sql_db_open(const struct sql_dialect *dialect, const char *dsn, const struct sql_statement *stmts,
            unsigned int n_stmts, struct sql_db **db_r, const char **error_r)
{
	struct sql_db *db = xcalloc(1, sizeof(*db));
	pthread_condattr_t attr;
	int ret;

	*db_r = NULL;
	db->dialect = dialect;
	db->dsn = xstrdup(dsn);
	db->stmts = stmts;
	db->n_stmts = n_stmts;
	db->sql = xcalloc(n_stmts > 0 ? n_stmts : 1, sizeof(*db->sql));
	db->n_params = xcalloc(n_stmts > 0 ? n_stmts : 1, sizeof(*db->n_params));
	db->max_conns = 1;
	db->wait_ms = SQL_POOL_WAIT_MS;
	pthread_mutex_init(&db->lock, NULL);
	/* The pool's deadline is on the monotonic clock: setting the time
	 * of day must not cut a wait short or stretch it. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&db->cond, &attr);
	pthread_condattr_destroy(&attr);
	for (unsigned int i = 0; i < n_stmts; i++) {
		const char *text = sql_variant(dialect, &stmts[i]);

		ret = text != NULL ? sql_translate_count(text, dialect->placeholder, &db->sql[i],
		                                         &db->n_params[i])
		                   : ISSO_ERR_INVALID;
		if (ret < 0) {
			*error_r = store_error_fmt("statement %s: bad placeholders",
			                           stmts[i].name != NULL ? stmts[i].name : "?");
			goto out;
		}
	}
	ret = dialect->init(db, error_r);
	if (ret < 0)
		goto out;
	*db_r = db;
	db = NULL;
out:
	sql_db_close(db);
	return ret;
}

void
sql_db_pool(struct sql_db *db, unsigned int max_conns, unsigned int wait_ms)
{
	pthread_mutex_lock(&db->lock);
	if (max_conns != 0 && max_conns < db->max_conns)
		db->max_conns = max_conns;
	db->wait_ms = wait_ms;
	pthread_mutex_unlock(&db->lock);
}

const char *
sql_db_dialect_name(const struct sql_db *db)
{
	return db->dialect->name;
}

/* ---- the pool ---- */

/* With db->lock held: waits until a connection is idle or may be opened.
 * false when the pool's deadline passed first. */
static bool
sql_pool_wait(struct sql_db *db)
{
	struct timespec deadline;
	bool waited = false, ok = true;

	while (db->idle == NULL && db->n_conns >= db->max_conns) {
		if (!waited) {
			waited = true;
			clock_gettime(CLOCK_MONOTONIC, &deadline);
			deadline.tv_sec += (time_t)(db->wait_ms / 1000);
			deadline.tv_nsec += (long)(db->wait_ms % 1000) * 1000000L;
			if (deadline.tv_nsec >= 1000000000L) {
				deadline.tv_sec++;
				deadline.tv_nsec -= 1000000000L;
			}
		}
		if (db->wait_ms == 0) {
			pthread_cond_wait(&db->cond, &db->lock);
		} else if (pthread_cond_timedwait(&db->cond, &db->lock, &deadline) == ETIMEDOUT &&
		           db->idle == NULL && db->n_conns >= db->max_conns) {
			ok = false;
			break;
		}
	}
	if (waited)
		metrics_store_pool_wait(!ok);
	return ok;
}

int
sql_acquire(struct sql_db *db, struct sql_conn **conn_r, const char **error_r)
{
	struct sql_conn *c = NULL;
	const char *error = NULL;
	int ret;

	*conn_r = NULL;
	pthread_mutex_lock(&db->lock);
	for (;;) {
		if (!sql_pool_wait(db)) {
			pthread_mutex_unlock(&db->lock);
			log_warn("store_pool_timeout", "driver", db->dialect->name, "detail",
			         "no connection of the pool became free in time", NULL);
			if (error_r != NULL)
				*error_r = "every connection of the pool is busy";
			return ISSO_ERR_STORE;
		}
		if (db->idle == NULL)
			break;
		c = db->idle;
		db->idle = c->next;
		c->next = NULL;
		if (db->dialect->alive(c)) {
			pthread_mutex_unlock(&db->lock);
			c->reused = true;
			c->n_run = 0;
			*conn_r = c;
			return 0;
		}
		/* Lost while idle: drop it and look again. */
		db->n_conns--;
		db->dialect->disconnect(c);
		c = NULL;
	}
	db->n_conns++;
	pthread_mutex_unlock(&db->lock);

	ret = db->dialect->connect(db, &c, &error);
	if (ret < 0) {
		if (error_r != NULL)
			*error_r = error;
		else
			log_error("store_sql_connect", "driver", db->dialect->name, "error", error,
			          NULL);
		pthread_mutex_lock(&db->lock);
		db->n_conns--;
		pthread_cond_signal(&db->cond);
		pthread_mutex_unlock(&db->lock);
		return ret;
	}
	c->db = db;
	c->reused = false;
	c->n_run = 0;
	*conn_r = c;
	return 0;
}

void
sql_release(struct sql_conn *c)
{
	struct sql_db *db;
	bool keep;

	if (c == NULL)
		return;
	db = c->db;
	/* Never hand on a connection with a transaction open. */
	sql_rollback(c);
	keep = db->dialect->healthy(c);
	pthread_mutex_lock(&db->lock);
	if (keep) {
		c->next = db->idle;
		db->idle = c;
	} else {
		db->n_conns--;
	}
	pthread_cond_signal(&db->cond);
	pthread_mutex_unlock(&db->lock);
	if (!keep)
		db->dialect->disconnect(c);
}

/* ---- statements ---- */

int
sql_prepare(struct sql_conn *c, unsigned int id, struct sql_stmt **stmt_r)
{
	int ret;

	*stmt_r = NULL;
	if (id >= c->db->n_stmts)
		return ISSO_ERR_INVALID;
	ret = c->db->dialect->prepare(c, id, stmt_r);
	if (ret == 0) {
		(*stmt_r)->conn = c;
		(*stmt_r)->id = id;
		(*stmt_r)->owns_conn = false;
		(*stmt_r)->error = 0;
	}
	return ret;
}

int
sql_query(struct sql_db *db, unsigned int id, struct sql_stmt **stmt_r)
{
	struct sql_conn *c = NULL;
	int ret;

	*stmt_r = NULL;
	ret = sql_acquire(db, &c, NULL);
	if (ret == 0)
		ret = sql_prepare(c, id, stmt_r);
	if (ret < 0) {
		sql_release(c);
		return ret;
	}
	(*stmt_r)->owns_conn = true;
	return 0;
}

void
sql_finish(struct sql_stmt *st)
{
	struct sql_conn *c;
	bool owns;

	if (st == NULL)
		return;
	c = st->conn;
	owns = st->owns_conn;
	c->db->dialect->reset(st);
	st->error = 0;
	st->owns_conn = false;
	if (owns)
		sql_release(c);
}

void
sql_bind_text(struct sql_stmt *st, int i, const char *s)
{
	int ret = st->conn->db->dialect->bind_text(st, i, s);

	if (st->error == 0)
		st->error = ret;
}

void
sql_bind_int(struct sql_stmt *st, int i, int64_t v)
{
	int ret = st->conn->db->dialect->bind_int(st, i, v);

	if (st->error == 0)
		st->error = ret;
}

void
sql_bind_null(struct sql_stmt *st, int i)
{
	sql_bind_text(st, i, NULL);
}

int
sql_step(struct sql_stmt *st)
{
	if (st->error < 0)
		return st->error;
	return st->conn->db->dialect->step(st);
}

int
sql_exec(struct sql_stmt *st, int *changes_r)
{
	int ret;

	if (changes_r != NULL)
		*changes_r = 0;
	while ((ret = sql_step(st)) > 0)
		;
	if (ret == 0 && changes_r != NULL)
		*changes_r = st->conn->db->dialect->changes(st);
	return ret;
}

bool
sql_col_null(struct sql_stmt *st, int i)
{
	return st->conn->db->dialect->col_null(st, i);
}

const char *
sql_col_text(struct sql_stmt *st, int i)
{
	return st->conn->db->dialect->col_text(st, i);
}

char *
sql_col_dup(struct sql_stmt *st, int i)
{
	const char *s = sql_col_text(st, i);

	return s != NULL ? xstrdup(s) : NULL;
}

int64_t
sql_col_int(struct sql_stmt *st, int i)
{
	return st->conn->db->dialect->col_int(st, i);
}

/* ---- transactions and scripts ---- */

int
sql_begin(struct sql_conn *c)
{
	return c->db->dialect->command(c, c->db->dialect->begin_sql, "begin");
}

int
sql_commit(struct sql_conn *c)
{
	return c->db->dialect->command(c, "COMMIT", "commit");
}

void
sql_rollback(struct sql_conn *c)
{
	if (c != NULL && c->db->dialect->in_transaction(c))
		(void)c->db->dialect->command(c, "ROLLBACK", "rollback");
}

int
sql_lock(struct sql_conn *c, const char *table)
{
	if (table != NULL) {
		for (const char *p = table; *p != '\0'; p++) {
			if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
				return ISSO_ERR_INVALID;
		}
	}
	return c->db->dialect->lock != NULL ? c->db->dialect->lock(c, table) : 0;
}

int
sql_script(struct sql_conn *c, const char *sql, const char **error_r)
{
	return c->db->dialect->script(c, sql, error_r);
}

int
sql_check(struct sql_conn *c, const char **error_r)
{
	return c->db->dialect->check != NULL ? c->db->dialect->check(c, error_r) : 0;
}
