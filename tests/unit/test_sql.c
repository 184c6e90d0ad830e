/* The store's statement layer (src/store/sql.h) on its own: placeholder
 * translation, rows and columns, changes, transactions that roll back,
 * errors that leave the connection usable, and the dialect differences
 * the layer hides. Runs on SQLite (a fresh file per test) and, with
 * ISSO_TEST_STORE_DRIVER=postgresql and ISSO_TEST_STORE_DSN (as
 * scripts/pg-test.sh sets them; ctest test_sql_pgsql), on PostgreSQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/isso.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "store/sql.h"

static const char *test_driver = "sqlite";
static const char *env_dsn;

enum t_id {
	T_PUT,
	T_GET,
	T_BUMP,
	T_COUNT,
	T_LIST,
	T_EXTREMES,
	T_DOLLAR,
	T_QUOTE,
	T_BAD,
	T_VARIANT,
	T_COUNT_IDS
};

static const struct sql_statement t_statements[T_COUNT_IDS] = {
    [T_PUT] = {.name = "put", .sql = "INSERT INTO sql_t (k, n, note) VALUES (?1, ?2, ?3)"},
    [T_GET] = {.name = "get", .sql = "SELECT n, note FROM sql_t WHERE k = ?1"},
    [T_BUMP] = {.name = "bump", .sql = "UPDATE sql_t SET n = n + 1 WHERE k = ?1"},
    [T_COUNT] = {.name = "count", .sql = "SELECT COUNT(*) FROM sql_t"},
    [T_LIST] = {.name = "list",
                .sql = "SELECT k FROM sql_t WHERE n >= CAST(?1 AS BIGINT) ORDER BY k"},
    [T_EXTREMES] = {.name = "extremes",
                    .sql = "SELECT GREATEST(CAST(?1 AS BIGINT), NULL, CAST(?2 AS BIGINT)), "
                           "LEAST(CAST(?1 AS BIGINT), CAST(?2 AS BIGINT), NULL)"},
    [T_DOLLAR] = {.name = "dollar", .sql = "SELECT n FROM sql_t WHERE k = $1"},
    [T_QUOTE] = {.name = "quote", .sql = "SELECT '?1 and $2 stay', n FROM sql_t WHERE k = ?1"},
    [T_BAD] = {.name = "bad", .sql = "SELECT no_such_column FROM sql_t"},
    [T_VARIANT] = {.name = "variant",
                   .sql = "SELECT 'common'",
                   .sqlite = "SELECT 'sqlite'",
                   .pgsql = "SELECT 'postgresql'"},
};

static const struct sql_dialect *
driver_dialect(void)
{
	return strcmp(test_driver, "postgresql") == 0 ? &sql_dialect_pgsql : &sql_dialect_sqlite;
}

struct fixture {
	struct sql_db *db;
	char dir[64];
	char path[128];
};

static const char *
fixture_dsn(struct fixture *f)
{
	return env_dsn != NULL ? env_dsn : f->path;
}

/* Runs a script on a connection of the pool. */
static int
script(struct sql_db *db, const char *sql)
{
	struct sql_conn *c = NULL;
	const char *error = NULL;
	int ret;

	ret = sql_acquire(db, &c, NULL);
	if (ret == 0)
		ret = sql_script(c, sql, &error);
	sql_release(c);
	return ret;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *error = NULL;

	assert_non_null(f);
	if (env_dsn == NULL) {
		snprintf(f->dir, sizeof(f->dir), "/tmp/isso-sql-XXXXXX");
		assert_non_null(mkdtemp(f->dir));
		snprintf(f->path, sizeof(f->path), "%s/sql.db", f->dir);
	}
	assert_int_equal(sql_db_open(driver_dialect(), fixture_dsn(f), t_statements, T_COUNT_IDS,
	                             &f->db, &error),
	                 0);
	assert_int_equal(script(f->db, "DROP TABLE IF EXISTS sql_t; CREATE TABLE sql_t "
	                               "(k TEXT PRIMARY KEY, n BIGINT NOT NULL, note TEXT)"),
	                 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[160];

	sql_db_close(f->db);
	if (env_dsn == NULL) {
		static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};

		for (size_t i = 0; i < ISSO_N_ELEMENTS(suffixes); i++) {
			snprintf(path, sizeof(path), "%s%s", f->path, suffixes[i]);
			unlink(path);
		}
		rmdir(f->dir);
	}
	free(f);
	return 0;
}

static int
put(struct sql_db *db, const char *k, int64_t n, const char *note)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(db, T_PUT, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, k);
	sql_bind_int(st, 2, n);
	sql_bind_text(st, 3, note);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

/* n of row k, -1 when there is none. */
static int64_t
get(struct sql_db *db, const char *k)
{
	struct sql_stmt *st;
	int64_t n = -1;
	int ret;

	assert_int_equal(sql_query(db, T_GET, &st), 0);
	sql_bind_text(st, 1, k);
	ret = sql_step(st);
	assert_true(ret >= 0);
	if (ret > 0)
		n = sql_col_int(st, 0);
	assert_int_equal(sql_step(st), 0);
	sql_finish(st);
	return n;
}

/* ---- placeholders ---- */

static void
test_translate(void **state)
{
	char *out = NULL;

	(void)state;
	assert_int_equal(sql_translate("SELECT a FROM t WHERE a = ?1 AND b > ?12", '$', &out), 0);
	assert_string_equal(out, "SELECT a FROM t WHERE a = $1 AND b > $12");
	free(out);
	assert_int_equal(sql_translate("VALUES ($1, $2, ?3)", '?', &out), 0);
	assert_string_equal(out, "VALUES (?1, ?2, ?3)");
	free(out);
	/* Quoted text is left alone, '' included. */
	assert_int_equal(sql_translate("SELECT '?1 it''s $2', \"c?3\" WHERE x = ?4", '$', &out), 0);
	assert_string_equal(out, "SELECT '?1 it''s $2', \"c?3\" WHERE x = $4");
	free(out);
	assert_int_equal(sql_translate("no placeholders", '$', &out), 0);
	assert_string_equal(out, "no placeholders");
	free(out);
	/* A placeholder must be numbered 1 … 99; quotes must close. */
	out = (char *)"unchanged";
	assert_int_equal(sql_translate("SELECT ?", '$', &out), ISSO_ERR_INVALID);
	assert_null(out);
	assert_int_equal(sql_translate("SELECT ?0", '$', &out), ISSO_ERR_INVALID);
	assert_int_equal(sql_translate("SELECT ?100", '$', &out), ISSO_ERR_INVALID);
	assert_int_equal(sql_translate("SELECT $x", '?', &out), ISSO_ERR_INVALID);
	assert_int_equal(sql_translate("SELECT 'open ?1", '$', &out), ISSO_ERR_INVALID);
	assert_null(out);
}

/* A statement table with a bad placeholder does not open. */
static void
test_open_bad_statement(void **state)
{
	static const struct sql_statement bad[] = {
	    {.name = "fine", .sql = "SELECT 1"},
	    {.name = "unnumbered", .sql = "SELECT ? FROM t"},
	};
	struct sql_db *db = NULL;
	const char *error = NULL;

	(void)state;
	assert_int_equal(sql_db_open(&sql_dialect_sqlite, ":memory:", bad, 2, &db, &error),
	                 ISSO_ERR_INVALID);
	assert_null(db);
	assert_non_null(error);
	assert_non_null(strstr(error, "unnumbered"));
}

/* ---- rows ---- */

static void
test_rows(void **state)
{
	struct fixture *f = *state;
	struct sql_stmt *st;
	const char *expect[] = {"b", "c"};
	int changes = -1, i;
	char *dup;

	assert_int_equal(put(f->db, "a", 1, "note a"), 0);
	assert_int_equal(put(f->db, "b", 20, NULL), 0);
	assert_int_equal(put(f->db, "c", 300, ""), 0);

	/* Columns: text, NULL, empty text, integers. */
	assert_int_equal(sql_query(f->db, T_GET, &st), 0);
	sql_bind_text(st, 1, "a");
	assert_int_equal(sql_step(st), 1);
	assert_int_equal(sql_col_int(st, 0), 1);
	assert_false(sql_col_null(st, 1));
	assert_string_equal(sql_col_text(st, 1), "note a");
	dup = sql_col_dup(st, 1);
	assert_string_equal(dup, "note a");
	free(dup);
	assert_int_equal(sql_step(st), 0);
	sql_finish(st);

	assert_int_equal(sql_query(f->db, T_GET, &st), 0);
	sql_bind_text(st, 1, "b");
	assert_int_equal(sql_step(st), 1);
	assert_true(sql_col_null(st, 1));
	assert_null(sql_col_text(st, 1));
	assert_null(sql_col_dup(st, 1));
	sql_finish(st);

	assert_int_equal(sql_query(f->db, T_GET, &st), 0);
	sql_bind_text(st, 1, "c");
	assert_int_equal(sql_step(st), 1);
	assert_false(sql_col_null(st, 1));
	assert_string_equal(sql_col_text(st, 1), "");
	sql_finish(st);

	/* No row. */
	assert_int_equal(get(f->db, "none"), -1);

	/* Several rows, in order; the statement is used again after finish. */
	for (int round = 0; round < 2; round++) {
		assert_int_equal(sql_query(f->db, T_LIST, &st), 0);
		sql_bind_int(st, 1, 10);
		for (i = 0; sql_step(st) > 0; i++) {
			assert_true(i < 2);
			assert_string_equal(sql_col_text(st, 0), expect[i]);
		}
		assert_int_equal(i, 2);
		sql_finish(st);
	}

	/* Changes: one row, then none. */
	assert_int_equal(sql_query(f->db, T_BUMP, &st), 0);
	sql_bind_text(st, 1, "a");
	assert_int_equal(sql_exec(st, &changes), 0);
	assert_int_equal(changes, 1);
	sql_finish(st);
	assert_int_equal(sql_query(f->db, T_BUMP, &st), 0);
	sql_bind_text(st, 1, "none");
	assert_int_equal(sql_exec(st, &changes), 0);
	assert_int_equal(changes, 0);
	sql_finish(st);
	assert_int_equal(get(f->db, "a"), 2);

	/* A unique key taken. */
	assert_int_equal(put(f->db, "a", 5, NULL), ISSO_ERR_CONFLICT);
	assert_int_equal(get(f->db, "a"), 2);

	/* A large integer survives both ways. */
	assert_int_equal(put(f->db, "big", INT64_C(9007199254740993), NULL), 0);
	assert_true(get(f->db, "big") == INT64_C(9007199254740993));
}

/* $N works as ?N does; quoted text keeps its question marks; a dialect
 * variant replaces the common text. */
static void
test_dialect(void **state)
{
	struct fixture *f = *state;
	struct sql_stmt *st;

	assert_int_equal(put(f->db, "k", 7, NULL), 0);
	assert_int_equal(sql_query(f->db, T_DOLLAR, &st), 0);
	sql_bind_text(st, 1, "k");
	assert_int_equal(sql_step(st), 1);
	assert_int_equal(sql_col_int(st, 0), 7);
	sql_finish(st);

	assert_int_equal(sql_query(f->db, T_QUOTE, &st), 0);
	sql_bind_text(st, 1, "k");
	assert_int_equal(sql_step(st), 1);
	assert_string_equal(sql_col_text(st, 0), "?1 and $2 stay");
	assert_int_equal(sql_col_int(st, 1), 7);
	sql_finish(st);

	assert_int_equal(sql_query(f->db, T_VARIANT, &st), 0);
	assert_int_equal(sql_step(st), 1);
	assert_string_equal(sql_col_text(st, 0), sql_db_dialect_name(f->db));
	sql_finish(st);

	/* GREATEST and LEAST, NULLs ignored, on both. */
	assert_int_equal(sql_query(f->db, T_EXTREMES, &st), 0);
	sql_bind_int(st, 1, -5);
	sql_bind_int(st, 2, 12);
	assert_int_equal(sql_step(st), 1);
	assert_int_equal(sql_col_int(st, 0), 12);
	assert_int_equal(sql_col_int(st, 1), -5);
	sql_finish(st);
}

/* ---- transactions ---- */

static void
test_transaction_rollback(void **state)
{
	struct fixture *f = *state;
	struct sql_conn *c = NULL;
	struct sql_stmt *st;

	/* An error inside a transaction: everything of it is undone. */
	assert_int_equal(sql_acquire(f->db, &c, NULL), 0);
	assert_int_equal(sql_begin(c), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sql_prepare(c, T_PUT, &st), 0);
		sql_bind_text(st, 1, "dup");
		sql_bind_int(st, 2, 1);
		sql_bind_null(st, 3);
		assert_int_equal(sql_exec(st, NULL), i == 0 ? 0 : ISSO_ERR_CONFLICT);
		sql_finish(st);
	}
	sql_rollback(c);
	sql_release(c);
	assert_int_equal(get(f->db, "dup"), -1);

	/* A transaction left open is rolled back when the connection goes
	 * back to the pool. */
	assert_int_equal(sql_acquire(f->db, &c, NULL), 0);
	assert_int_equal(sql_begin(c), 0);
	assert_int_equal(sql_lock(c, "sql_t"), 0);
	assert_int_equal(sql_prepare(c, T_PUT, &st), 0);
	sql_bind_text(st, 1, "open");
	sql_bind_int(st, 2, 1);
	assert_int_equal(sql_exec(st, NULL), 0);
	sql_finish(st);
	sql_release(c);
	assert_int_equal(get(f->db, "open"), -1);

	/* A committed one stays. */
	assert_int_equal(sql_acquire(f->db, &c, NULL), 0);
	assert_int_equal(sql_begin(c), 0);
	assert_int_equal(sql_lock(c, NULL), 0);
	assert_int_equal(sql_prepare(c, T_PUT, &st), 0);
	sql_bind_text(st, 1, "kept");
	sql_bind_int(st, 2, 3);
	assert_int_equal(sql_exec(st, NULL), 0);
	sql_finish(st);
	assert_int_equal(sql_commit(c), 0);
	sql_release(c);
	assert_int_equal(get(f->db, "kept"), 3);

	/* A lock names a table by an identifier only. */
	assert_int_equal(sql_acquire(f->db, &c, NULL), 0);
	assert_int_equal(sql_begin(c), 0);
	assert_int_equal(sql_lock(c, "sql_t; DROP TABLE sql_t"), ISSO_ERR_INVALID);
	sql_release(c);
	assert_int_equal(get(f->db, "kept"), 3);

	/* A failing script inside a transaction leaves nothing of itself. */
	assert_int_equal(sql_acquire(f->db, &c, NULL), 0);
	assert_int_equal(sql_begin(c), 0);
	{
		const char *error = NULL;

		assert_true(sql_script(c,
		                       "CREATE TABLE sql_t2 (x BIGINT); "
		                       "INSERT INTO sql_t (k, n) VALUES ('s', 1); "
		                       "INSERT INTO no_such_table VALUES (1)",
		                       &error) < 0);
		assert_non_null(error);
	}
	sql_rollback(c);
	sql_release(c);
	assert_int_equal(get(f->db, "s"), -1);
	assert_int_equal(script(f->db, "CREATE TABLE sql_t2 (x BIGINT); DROP TABLE sql_t2"), 0);
}

/* ---- errors ---- */

static void
test_errors(void **state)
{
	struct fixture *f = *state;
	struct sql_stmt *st = NULL;
	int ret;

	/* A statement the database refuses (at prepare or at run). */
	ret = sql_query(f->db, T_BAD, &st);
	if (ret == 0) {
		assert_true(sql_step(st) < 0);
		sql_finish(st);
	} else {
		assert_int_equal(ret, ISSO_ERR_STORE);
		assert_null(st);
	}
	/* A placeholder out of range: the failure comes with the step. */
	assert_int_equal(sql_query(f->db, T_GET, &st), 0);
	sql_bind_text(st, 1, "x");
	sql_bind_int(st, 40, 1);
	assert_true(sql_step(st) < 0);
	sql_finish(st);
	/* An id past the table. */
	{
		struct sql_conn *c = NULL;

		assert_int_equal(sql_acquire(f->db, &c, NULL), 0);
		assert_int_equal(sql_prepare(c, T_COUNT_IDS, &st), ISSO_ERR_INVALID);
		sql_release(c);
	}
	/* The pool still serves. */
	assert_int_equal(put(f->db, "after", 1, NULL), 0);
	assert_int_equal(get(f->db, "after"), 1);
}

/* ---- PostgreSQL: lost connections ---- */

static bool
pg_admin(const char *sql)
{
	PGconn *db = PQconnectdb(env_dsn);
	PGresult *res;
	bool ok;

	assert_int_equal(PQstatus(db), CONNECTION_OK);
	res = PQexec(db, sql);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	PQfinish(db);
	return ok;
}

/* A change on a connection the server ended is never run twice: every
 * bump that reports success counted once, and none that failed did. */
static void
test_pgsql_change_not_repeated(void **state)
{
	struct fixture *f = *state;
	struct sql_stmt *st;
	int ok = 0, changes;

	if (strcmp(test_driver, "postgresql") != 0)
		skip();
	assert_int_equal(put(f->db, "ctr", 0, NULL), 0);
	for (int round = 0; round < 6; round++) {
		assert_true(
		    pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
		             "WHERE application_name = 'issod' AND pid <> pg_backend_pid()"));
		if (round % 2 == 0)
			usleep(50 * 1000);
		assert_int_equal(sql_query(f->db, T_BUMP, &st), 0);
		sql_bind_text(st, 1, "ctr");
		changes = 0;
		if (sql_exec(st, &changes) == 0 && changes == 1)
			ok++;
		sql_finish(st);
	}
	assert_int_equal(get(f->db, "ctr"), ok);
}

/* ---- the pool's deadline ---- */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct waiter {
	struct sql_db *db;
	int ret;
	bool got_stmt;
	int64_t waited_ms;
};

/* A request's query on another thread, timed. */
static void *
waiter_run(void *arg)
{
	struct waiter *w = arg;
	struct sql_stmt *st = NULL;
	int64_t t0 = now_ms();

	w->ret = sql_query(w->db, T_COUNT, &st);
	w->waited_ms = now_ms() - t0;
	w->got_stmt = st != NULL;
	if (w->ret == 0)
		w->ret = sql_exec(st, NULL);
	sql_finish(st);
	return NULL;
}

/* Every connection of the pool busy: a call waits for the pool's
 * deadline, then fails as if the store were down (ISSO_ERR_STORE), and
 * /metrics counts it; a connection given back in time is taken. */
static void
test_pool_wait_deadline(void **state)
{
	struct fixture *f = *state;
	struct sql_conn *held = NULL;
	struct waiter w = {.db = f->db};
	pthread_t th;
	uint64_t timeouts = metrics_counter_get(&metrics_store_pool_waits, "timeout", NULL);

	sql_db_pool(f->db, 1, 400);
	assert_int_equal(sql_acquire(f->db, &held, NULL), 0);
	assert_int_equal(pthread_create(&th, NULL, waiter_run, &w), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.ret, ISSO_ERR_STORE);
	assert_false(w.got_stmt);
	assert_true(w.waited_ms >= 400);
	assert_true(w.waited_ms < 20000);
	assert_int_equal(metrics_counter_get(&metrics_store_pool_waits, "timeout", NULL),
	                 timeouts + 1);

	/* Given back before the deadline: the waiting call gets it. */
	sql_db_pool(f->db, 1, 30000);
	memset(&w, 0, sizeof(w));
	w.db = f->db;
	assert_int_equal(pthread_create(&th, NULL, waiter_run, &w), 0);
	usleep(200 * 1000);
	sql_release(held);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.ret, 0);
	assert_true(w.got_stmt);
	assert_true(w.waited_ms < 30000);
	assert_int_equal(metrics_counter_get(&metrics_store_pool_waits, "timeout", NULL),
	                 timeouts + 1);
	/* and the pool is whole again */
	assert_int_equal(put(f->db, "after", 1, NULL), 0);
	assert_int_equal(get(f->db, "after"), 1);
}

int
main(void)
{
	const char *drv = getenv("ISSO_TEST_STORE_DRIVER");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_translate),
	    cmocka_unit_test(test_open_bad_statement),
	    cmocka_unit_test_setup_teardown(test_rows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dialect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_transaction_rollback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pgsql_change_not_repeated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pool_wait_deadline, setup, teardown),
	};

	if (drv != NULL && drv[0] != '\0')
		test_driver = drv;
	env_dsn = getenv("ISSO_TEST_STORE_DSN");
	if (env_dsn != NULL && env_dsn[0] == '\0')
		env_dsn = NULL;
	if (strcmp(test_driver, "sqlite") != 0 && strcmp(test_driver, "postgresql") != 0)
		return 1;
	log_init(2, LOG_WARN);
	return cmocka_run_group_tests_name("sql", tests, NULL, NULL);
}
