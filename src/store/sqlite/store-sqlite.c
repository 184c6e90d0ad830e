/* The SQLite store backend: a small pool of connections (each used by one
 * thread at a time, opened lazily), statements prepared once per
 * connection, WAL journal. Multi-step operations are either one statement
 * (UPDATE … RETURNING, upsert) or run under BEGIN IMMEDIATE. */
#include "store/store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/isso.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_MAX_CONNS       16
#define SQ_PAGE            128 /* rows fetched per round in list walks */
#define SQ_PURGE_BATCH     500 /* rows deleted per statement in purge */

#define SQ_CLIENT_COLS                                                                             \
	"client_id, secret_hash, name, purpose, redirect_uris, post_logout_redirect_uris, "        \
	"backchannel_logout_uri, scope, public_client, id_token_alg, auth_method, jwks_uri, "      \
	"jwks, status, created_at, grant_types, settings"
#define SQ_PERSON_COLS "uuid, id_hash, pii, created_at, updated_at"
#define SQ_MEMBER_COLS                                                                             \
	"uuid, account, email_hash, phone_hash, password_hash, level, failed_logins, "             \
	"locked_until, created_at"
#define SQ_TOKEN_COLS                                                                              \
	"hash, kind, grant_id, client_id, uuid, sid, scope, data, created_at, expires_at, "        \
	"used, revoked"
#define SQ_KEY_COLS "kid, alg, jwk, created_at, active"

enum sq_id {
	SQ_BEGIN,
	SQ_COMMIT,
	SQ_ROLLBACK,
	SQ_VERSION,
	SQ_VERSION_ADD,
	SQ_CLIENT_ADD,
	SQ_CLIENT_GET,
	SQ_CLIENT_PAGE,
	SQ_CLIENT_STATUS,
	SQ_CLIENT_SECRET,
	SQ_CLIENT_SETTINGS,
	SQ_PERSON_ADD,
	SQ_PERSON_GET,
	SQ_PERSON_BY_ID_HASH,
	SQ_PERSON_UPDATE,
	SQ_PERSON_DELETE,
	SQ_MEMBER_ADD,
	SQ_MEMBER_FIND,
	SQ_MEMBER_GET,
	SQ_MEMBER_FAILED,
	SQ_MEMBER_OK,
	SQ_MEMBER_PASSWORD,
	SQ_ORG_ADD,
	SQ_ORG_GET,
	SQ_ORG_MEMBER_ADD,
	SQ_ORG_MEMBER_ROLE,
	SQ_CONSENT_GET,
	SQ_CONSENT_PUT,
	SQ_CONSENT_DELETE,
	SQ_TOKEN_ADD,
	SQ_TOKEN_GET,
	SQ_TOKEN_USE,
	SQ_TOKEN_REVOKE,
	SQ_TOKEN_REVOKE_GRANT,
	SQ_TOKEN_REVOKE_CLIENT_PERSON,
	SQ_TOKEN_REVOKE_PERSON,
	SQ_EPH_PUT,
	SQ_EPH_GET,
	SQ_EPH_UPDATE,
	SQ_EPH_DELETE,
	SQ_EPH_COUNT,
	SQ_EPH_BUMP,
	SQ_EPH_TAKE,
	SQ_EPH_INCR,
	SQ_RATE_HIT,
	SQ_THROTTLE_GET,
	SQ_THROTTLE_TAKE,
	SQ_THROTTLE_HOLD,
	SQ_THROTTLE_GIVE,
	SQ_THROTTLE_CLEAR,
	SQ_KEY_ADD,
	SQ_KEY_PAGE,
	SQ_KEY_ACTIVE,
	SQ_AUDIT_LAST,
	SQ_AUDIT_ADD,
	SQ_AUDIT_PAGE,
	SQ_PURGE_TOKENS,
	SQ_PURGE_EPH,
	SQ_PURGE_RATE,
	SQ_JOB_ADD,
	SQ_JOB_CLAIM,
	SQ_JOB_DONE,
	SQ_JOB_RETRY,
	SQ_PURGE_JOBS,
	SQ_PURGE_THROTTLE,
	SQ_DEVICE_ADD,
	SQ_DEVICE_GET,
	SQ_DEVICE_LIST,
	SQ_DEVICE_USE,
	SQ_DEVICE_REVOKE,
	SQ_DEVICE_REVOKE_ALL,
	SQ_COUNT
};

#define SQ_DEVICE_COLS "id, uuid, jwk, name, created_at, last_used_at, revoked_at"

static const char *const sq_sql[SQ_COUNT] = {
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_version",
    [SQ_VERSION_ADD] = "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
    [SQ_CLIENT_ADD] =
        "INSERT INTO clients (" SQ_CLIENT_COLS ") VALUES "
        "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    [SQ_CLIENT_GET] = "SELECT " SQ_CLIENT_COLS " FROM clients WHERE client_id = ?1",
    [SQ_CLIENT_PAGE] = "SELECT " SQ_CLIENT_COLS " FROM clients "
                       "WHERE ?3 OR (created_at, client_id) > (?1, ?2) "
                       "ORDER BY created_at, client_id LIMIT ?4",
    [SQ_CLIENT_STATUS] = "UPDATE clients SET status = ?2 WHERE client_id = ?1",
    [SQ_CLIENT_SECRET] = "UPDATE clients SET secret_hash = ?2 WHERE client_id = ?1",
    [SQ_CLIENT_SETTINGS] = "UPDATE clients SET settings = ?2 WHERE client_id = ?1",
    [SQ_PERSON_ADD] = "INSERT INTO persons (" SQ_PERSON_COLS ") VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQ_PERSON_GET] = "SELECT " SQ_PERSON_COLS " FROM persons WHERE uuid = ?1",
    [SQ_PERSON_BY_ID_HASH] = "SELECT " SQ_PERSON_COLS " FROM persons WHERE id_hash = ?1",
    [SQ_PERSON_UPDATE] = "UPDATE persons SET id_hash = COALESCE(?2, id_hash), pii = ?3, "
                         "updated_at = ?4 WHERE uuid = ?1",
    /* Only a person nothing refers to (members would cascade). */
    [SQ_PERSON_DELETE] = "DELETE FROM persons WHERE uuid = ?1 AND NOT EXISTS "
                         "(SELECT 1 FROM members WHERE members.uuid = ?1)",
    [SQ_MEMBER_ADD] = "INSERT INTO members (" SQ_MEMBER_COLS ") VALUES "
                      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [SQ_MEMBER_FIND] = "SELECT " SQ_MEMBER_COLS " FROM members "
                       "WHERE account = ?1 OR email_hash = ?2 OR phone_hash = ?3 "
                       "ORDER BY CASE WHEN account = ?1 THEN 0 WHEN email_hash = ?2 THEN 1 "
                       "ELSE 2 END LIMIT 1",
    [SQ_MEMBER_GET] = "SELECT " SQ_MEMBER_COLS " FROM members WHERE uuid = ?1",
    [SQ_MEMBER_FAILED] = "UPDATE members SET "
                         "failed_logins = CASE WHEN failed_logins + 1 >= ?2 THEN 0 "
                         "ELSE failed_logins + 1 END, "
                         "locked_until = CASE WHEN failed_logins + 1 >= ?2 THEN ?3 + ?4 "
                         "ELSE locked_until END "
                         "WHERE uuid = ?1 RETURNING failed_logins",
    [SQ_MEMBER_OK] = "UPDATE members SET failed_logins = 0, locked_until = 0 WHERE uuid = ?1",
    [SQ_MEMBER_PASSWORD] = "UPDATE members SET password_hash = ?2 WHERE uuid = ?1",
    [SQ_ORG_ADD] = "INSERT INTO organisations (ubn, name, created_at) VALUES (?1, ?2, ?3)",
    [SQ_ORG_GET] = "SELECT ubn, name, created_at FROM organisations WHERE ubn = ?1",
    [SQ_ORG_MEMBER_ADD] = "INSERT INTO org_members (ubn, uuid, role, created_at) "
                          "VALUES (?1, ?2, ?3, ?4)",
    [SQ_ORG_MEMBER_ROLE] = "SELECT role FROM org_members WHERE ubn = ?1 AND uuid = ?2",
    [SQ_CONSENT_GET] = "SELECT scope FROM consents WHERE uuid = ?1 AND client_id = ?2",
    [SQ_CONSENT_PUT] = "INSERT INTO consents (uuid, client_id, scope, created_at, updated_at) "
                       "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (uuid, client_id) DO UPDATE "
                       "SET scope = excluded.scope, updated_at = excluded.updated_at",
    [SQ_CONSENT_DELETE] = "DELETE FROM consents WHERE uuid = ?1 AND client_id = ?2",
    [SQ_TOKEN_ADD] = "INSERT INTO tokens (" SQ_TOKEN_COLS ") VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [SQ_TOKEN_GET] = "SELECT " SQ_TOKEN_COLS " FROM tokens WHERE hash = ?1 AND expires_at > ?2",
    [SQ_TOKEN_USE] = "UPDATE tokens SET used = 1 WHERE hash = ?1 AND used = 0 AND revoked = 0 "
                     "AND expires_at > ?2",
    [SQ_TOKEN_REVOKE] = "UPDATE tokens SET revoked = 1 WHERE hash = ?1",
    [SQ_TOKEN_REVOKE_GRANT] = "UPDATE tokens SET revoked = 1 WHERE grant_id = ?1",
    [SQ_TOKEN_REVOKE_PERSON] = "UPDATE tokens SET revoked = 1 WHERE uuid = ?1",
    [SQ_TOKEN_REVOKE_CLIENT_PERSON] =
        "UPDATE tokens SET revoked = 1 WHERE client_id = ?1 AND uuid = ?2",
    /* A put replaces the object, counter included. */
    [SQ_EPH_PUT] = "INSERT INTO eph (kind, id, data, counter, expires_at) "
                   "VALUES (?1, ?2, ?3, 0, ?4) ON CONFLICT (kind, id) DO UPDATE SET "
                   "data = excluded.data, counter = 0, expires_at = excluded.expires_at",
    [SQ_EPH_GET] = "SELECT data, counter FROM eph WHERE kind = ?1 AND id = ?2 "
                   "AND expires_at > ?3",
    [SQ_EPH_UPDATE] = "UPDATE eph SET data = ?3 WHERE kind = ?1 AND id = ?2 "
                      "AND expires_at > ?4",
    [SQ_EPH_DELETE] = "DELETE FROM eph WHERE kind = ?1 AND id = ?2",
    [SQ_EPH_COUNT] = "SELECT COUNT(*) FROM eph WHERE kind = ?1 AND expires_at > ?2",
    [SQ_EPH_TAKE] = "DELETE FROM eph WHERE kind = ?1 AND id = ?2 AND expires_at > ?3",
    /* An expired row left for purge starts again from one. */
    [SQ_EPH_INCR] = "INSERT INTO eph (kind, id, data, counter, expires_at) "
                    "VALUES (?1, ?2, '{}', 1, ?4) ON CONFLICT (kind, id) DO UPDATE SET "
                    "counter = CASE WHEN eph.expires_at > ?3 THEN eph.counter + 1 ELSE 1 END, "
                    "data = CASE WHEN eph.expires_at > ?3 THEN eph.data ELSE '{}' END, "
                    "expires_at = CASE WHEN eph.expires_at > ?3 THEN eph.expires_at "
                    "ELSE excluded.expires_at END RETURNING counter",
    [SQ_EPH_BUMP] = "UPDATE eph SET counter = counter + 1 WHERE kind = ?1 AND id = ?2 "
                    "AND expires_at > ?3 RETURNING counter",
    /* A hit stamped in an older window (another node's clock) counts in
     * the newer one: windows only move forward. */
    [SQ_RATE_HIT] = "INSERT INTO rate (key, window_start, count, expires_at) "
                    "VALUES (?1, ?2, 1, ?3) ON CONFLICT (key) DO UPDATE SET "
                    "count = CASE WHEN rate.window_start >= excluded.window_start "
                    "THEN rate.count + 1 ELSE 1 END, "
                    "window_start = max(rate.window_start, excluded.window_start), "
                    "expires_at = max(rate.expires_at, excluded.expires_at) "
                    "RETURNING count",
    /* Levels drain one per second since updated_at; a clock that went
     * back drains nothing. A held bucket (next_at > now) counts nothing. */
    [SQ_THROTTLE_GET] = "SELECT max(0, level - max(0, ?2 - updated_at)), next_at "
                        "FROM throttle WHERE key = ?1 AND expires_at > ?2",
    [SQ_THROTTLE_TAKE] =
        "INSERT INTO throttle (key, level, updated_at, next_at, expires_at) "
        "VALUES (?1, min(?3, ?4), ?2, 0, ?5) ON CONFLICT (key) DO UPDATE SET "
        "level = CASE WHEN throttle.next_at > ?2 THEN throttle.level "
        "ELSE min(?4, max(0, throttle.level - max(0, ?2 - throttle.updated_at)) + ?3) END, "
        "updated_at = CASE WHEN throttle.next_at > ?2 THEN throttle.updated_at "
        "ELSE max(throttle.updated_at, ?2) END, "
        "expires_at = CASE WHEN throttle.next_at > ?2 THEN throttle.expires_at "
        "ELSE max(throttle.expires_at, ?5) END "
        "RETURNING level, next_at",
    [SQ_THROTTLE_HOLD] = "UPDATE throttle SET next_at = max(next_at, ?2), "
                         "expires_at = max(expires_at, ?2) WHERE key = ?1",
    [SQ_THROTTLE_GIVE] = "UPDATE throttle SET "
                         "level = max(0, level - max(0, ?2 - updated_at) - ?3), "
                         "updated_at = max(updated_at, ?2), next_at = min(next_at, ?2) "
                         "WHERE key = ?1",
    [SQ_THROTTLE_CLEAR] = "DELETE FROM throttle WHERE key = ?1",
    [SQ_KEY_ADD] = "INSERT INTO signing_keys (" SQ_KEY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQ_KEY_PAGE] = "SELECT " SQ_KEY_COLS " FROM signing_keys "
                    "WHERE ?3 OR (created_at, kid) < (?1, ?2) "
                    "ORDER BY created_at DESC, kid DESC LIMIT ?4",
    [SQ_KEY_ACTIVE] = "UPDATE signing_keys SET active = ?2 WHERE kid = ?1",
    [SQ_AUDIT_LAST] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [SQ_AUDIT_ADD] = "INSERT INTO audit (seq, ts, event, data, prev_hash, hash) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [SQ_AUDIT_PAGE] = "SELECT seq, ts, event, data, prev_hash, hash FROM audit "
                      "WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    [SQ_PURGE_TOKENS] = "DELETE FROM tokens WHERE rowid IN "
                        "(SELECT rowid FROM tokens WHERE expires_at <= ?1 LIMIT ?2)",
    [SQ_PURGE_EPH] = "DELETE FROM eph WHERE rowid IN "
                     "(SELECT rowid FROM eph WHERE expires_at <= ?1 LIMIT ?2)",
    [SQ_PURGE_RATE] = "DELETE FROM rate WHERE rowid IN "
                      "(SELECT rowid FROM rate WHERE expires_at <= ?1 LIMIT ?2)",
    [SQ_JOB_ADD] = "INSERT INTO jobs (id, kind, data, attempts, run_at, lease_owner, "
                   "lease_until, created_at, expires_at) VALUES (?1, ?2, ?3, 0, ?5, NULL, 0, "
                   "?4, ?6)",
    /* One statement under SQLite's write lock: the pick and the lease
     * cannot interleave with another claimant's. */
    [SQ_JOB_CLAIM] = "UPDATE jobs SET lease_owner = ?2, lease_until = ?3 + ?4, "
                     "attempts = attempts + 1 WHERE id = (SELECT id FROM jobs "
                     "WHERE kind = ?1 AND run_at <= ?3 AND lease_until <= ?3 "
                     "AND expires_at > ?3 ORDER BY run_at LIMIT 1) AND lease_until <= ?3 "
                     "RETURNING id, kind, data, attempts, created_at, expires_at",
    [SQ_JOB_DONE] = "DELETE FROM jobs WHERE id = ?1 AND lease_owner = ?2",
    [SQ_JOB_RETRY] = "UPDATE jobs SET run_at = ?3, lease_owner = NULL, lease_until = 0 "
                     "WHERE id = ?1 AND lease_owner = ?2",
    [SQ_PURGE_JOBS] = "DELETE FROM jobs WHERE rowid IN "
                      "(SELECT rowid FROM jobs WHERE expires_at <= ?1 LIMIT ?2)",
    [SQ_PURGE_THROTTLE] = "DELETE FROM throttle WHERE rowid IN "
                          "(SELECT rowid FROM throttle WHERE expires_at <= ?1 LIMIT ?2)",
    [SQ_DEVICE_ADD] = "INSERT INTO devices (" SQ_DEVICE_COLS ") "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SQ_DEVICE_GET] = "SELECT " SQ_DEVICE_COLS " FROM devices WHERE id = ?1",
    [SQ_DEVICE_LIST] = "SELECT " SQ_DEVICE_COLS " FROM devices WHERE uuid = ?1 "
                       "ORDER BY created_at, id LIMIT ?2",
    [SQ_DEVICE_USE] = "UPDATE devices SET last_used_at = ?2 WHERE id = ?1 AND revoked_at = 0",
    [SQ_DEVICE_REVOKE] = "UPDATE devices SET revoked_at = ?3 "
                         "WHERE uuid = ?1 AND id = ?2 AND revoked_at = 0",
    [SQ_DEVICE_REVOKE_ALL] =
        "UPDATE devices SET revoked_at = ?2 WHERE uuid = ?1 AND revoked_at = 0",
};

static const char sq_bootstrap_sql[] = "CREATE TABLE IF NOT EXISTS schema_version ("
                                       "version INTEGER PRIMARY KEY, "
                                       "applied_at INTEGER NOT NULL)";

struct sq_conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[SQ_COUNT];
	struct sq_conn *next;
};

struct sq_backend {
	struct store_backend base;
	char *path;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sq_conn *idle; /* connections not in use */
	unsigned int n_conns; /* open connections, idle or not */
	unsigned int max_conns;
};

/* ---- connections ---- */

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

static void
sq_conn_close(struct sq_conn *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < SQ_COUNT; i++)
		sqlite3_finalize(c->stmts[i]);
	if (sqlite3_close(c->db) != SQLITE_OK)
		log_error("store_sqlite_close", "error", sqlite3_errmsg(c->db), NULL);
	free(c);
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
sq_conn_open(struct sq_backend *b, struct sq_conn **conn_r, const char **error_r)
{
	static const char pragmas[] = "PRAGMA journal_mode = WAL; "
	                              "PRAGMA synchronous = NORMAL; "
	                              "PRAGMA foreign_keys = ON;";
	struct sq_conn *c = xcalloc(1, sizeof(*c));
	int rc, ret = 0;

	*conn_r = NULL;
	rc = sqlite3_open_v2(b->path, &c->db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
	                         SQLITE_OPEN_URI,
	                     NULL);
	if (rc != SQLITE_OK) {
		*error_r =
		    store_error_fmt("cannot open sqlite database %s: %s", b->path,
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
	if (rc != SQLITE_OK) {
		*error_r = store_error_fmt("cannot configure sqlite database %s: %s", b->path,
		                           sqlite3_errmsg(c->db));
		ret = ISSO_ERR_STORE;
		goto out;
	}
	*conn_r = c;
	c = NULL;
out:
	sq_conn_close(c);
	return ret;
}

/* Takes a connection from the pool, opening one when none is idle and the
 * pool is not full, else waiting for one. */
static int
sq_acquire(struct sq_backend *b, struct sq_conn **conn_r)
{
	struct sq_conn *c = NULL;
	const char *error = NULL;
	int ret = 0;

	*conn_r = NULL;
	pthread_mutex_lock(&b->lock);
	while (b->idle == NULL && b->n_conns >= b->max_conns)
		pthread_cond_wait(&b->cond, &b->lock);
	if (b->idle != NULL) {
		c = b->idle;
		b->idle = c->next;
		c->next = NULL;
		pthread_mutex_unlock(&b->lock);
		goto out;
	}
	b->n_conns++;
	pthread_mutex_unlock(&b->lock);

	ret = sq_conn_open(b, &c, &error);
	if (ret < 0) {
		log_error("store_sqlite_connect", "error", error, NULL);
		pthread_mutex_lock(&b->lock);
		b->n_conns--;
		pthread_cond_signal(&b->cond);
		pthread_mutex_unlock(&b->lock);
	}
out:
	*conn_r = c;
	return ret;
}

static void
sq_release(struct sq_backend *b, struct sq_conn *c)
{
	if (c == NULL)
		return;
	/* Never hand on a connection with a transaction open. */
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_lock(&b->lock);
	c->next = b->idle;
	b->idle = c;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* The connection's cached statement id, prepared on first use. */
static int
sq_stmt(struct sq_conn *c, enum sq_id id, sqlite3_stmt **stmt_r)
{
	int rc;

	*stmt_r = NULL;
	if (c->stmts[id] == NULL) {
		rc = sqlite3_prepare_v3(c->db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
		                        &c->stmts[id], NULL);
		if (rc != SQLITE_OK)
			return sq_error(c->db, rc, "prepare");
	}
	*stmt_r = c->stmts[id];
	return 0;
}

/* Acquires a connection and its statement id. */
static int
sq_begin_op(struct sq_backend *b, enum sq_id id, struct sq_conn **conn_r, sqlite3_stmt **stmt_r)
{
	int ret;

	*stmt_r = NULL;
	ret = sq_acquire(b, conn_r);
	if (ret == 0)
		ret = sq_stmt(*conn_r, id, stmt_r);
	return ret;
}

static void
sq_reset(sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Resets the statement and gives the connection back. */
static void
sq_end_op(struct sq_backend *b, struct sq_conn *c, sqlite3_stmt *st)
{
	sq_reset(st);
	sq_release(b, c);
}

/* Binding: the first failure is kept in *rc. Texts are bound without
 * copying; every caller resets the statement before they go away. */
static void
sq_bind_text(sqlite3_stmt *st, int i, const char *s, int *rc)
{
	int r =
	    s != NULL ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);

	if (*rc == SQLITE_OK)
		*rc = r;
}

static void
sq_bind_int(sqlite3_stmt *st, int i, int64_t v, int *rc)
{
	int r = sqlite3_bind_int64(st, i, v);

	if (*rc == SQLITE_OK)
		*rc = r;
}

static char *
sq_col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s != NULL ? xstrdup((const char *)s) : NULL;
}

/* Steps a statement that returns no rows (or whose rows are ignored) to
 * completion; *changes_r (may be NULL) gets the rows changed. */
static int
sq_exec(struct sq_conn *c, sqlite3_stmt *st, int bind_rc, const char *op, int *changes_r)
{
	int rc;

	if (bind_rc != SQLITE_OK)
		return sq_error(c->db, bind_rc, op);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		return sq_error(c->db, rc, op);
	if (changes_r != NULL)
		*changes_r = sqlite3_changes(c->db);
	return 0;
}

/* Runs one of BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
static int
sq_txn(struct sq_conn *c, enum sq_id id)
{
	sqlite3_stmt *st = NULL;
	int ret;

	ret = sq_stmt(c, id, &st);
	if (ret == 0)
		ret = sq_exec(c, st, SQLITE_OK, sq_sql[id], NULL);
	sq_reset(st);
	return ret;
}

static void
sq_rollback(struct sq_conn *c)
{
	if (!sqlite3_get_autocommit(c->db))
		(void)sq_txn(c, SQ_ROLLBACK);
}

/* An operation that binds texts/ints and changes rows. */
static int
sq_simple(struct sq_backend *b, enum sq_id id, const char *op, int *changes_r, const char *t1,
          const char *t2, const char *t3)
{
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, id, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, t1, &rc);
	if (t2 != NULL)
		sq_bind_text(st, 2, t2, &rc);
	if (t3 != NULL)
		sq_bind_text(st, 3, t3, &rc);
	ret = sq_exec(c, st, rc, op, changes_r);
out:
	sq_end_op(b, c, st);
	return ret;
}

/* ---- open, migrations, close ---- */

static int
sq_version(struct sq_conn *c, int *version_r)
{
	sqlite3_stmt *st = NULL;
	int ret, rc;

	*version_r = 0;
	ret = sq_stmt(c, SQ_VERSION, &st);
	if (ret < 0)
		goto out;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		ret = sq_error(c->db, rc, "schema_version");
		goto out;
	}
	*version_r = sqlite3_column_int(st, 0);
out:
	sq_reset(st);
	return ret;
}

/* Applies one migration in its own transaction unless the database is
 * already at or past it (checked inside the transaction, so two processes
 * opening at once apply it once). */
static int
sq_migrate_one(struct sq_conn *c, const struct store_migration *m, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	char *sql = NULL, *errmsg = NULL;
	int ret, rc = SQLITE_OK, version;

	ret = sq_txn(c, SQ_BEGIN);
	if (ret < 0) {
		*error_r = store_error_fmt("cannot lock the database for %s", m->path);
		goto out;
	}
	ret = sq_version(c, &version);
	if (ret < 0 || version >= m->version)
		goto out;
	ret = store_migration_read(m, &sql, error_r);
	if (ret < 0)
		goto out;
	if (sqlite3_exec(c->db, sql, NULL, NULL, &errmsg) != SQLITE_OK) {
		*error_r = store_error_fmt("migration %s failed: %s", m->path,
		                           errmsg != NULL ? errmsg : "unknown error");
		ret = ISSO_ERR_STORE;
		goto out;
	}
	ret = sq_stmt(c, SQ_VERSION_ADD, &st);
	if (ret < 0)
		goto out;
	sq_bind_int(st, 1, m->version, &rc);
	sq_bind_int(st, 2, (int64_t)time(NULL), &rc);
	ret = sq_exec(c, st, rc, "migrate", NULL);
	if (ret < 0)
		goto out;
	ret = sq_txn(c, SQ_COMMIT);
	if (ret == 0)
		log_info("store_migrated", "file", m->path, NULL);
out:
	sq_reset(st);
	if (ret < 0 && *error_r == NULL)
		*error_r = store_error_fmt("migration %s failed", m->path);
	sq_rollback(c);
	sqlite3_free(errmsg);
	free(sql);
	return ret;
}

static int
sq_migrate(struct sq_backend *b, const char *migrations_dir, const char **error_r)
{
	struct store_migration *list = NULL;
	struct sq_conn *c = NULL;
	size_t count = 0, i;
	int ret, version, latest;

	ret = store_migrations_scan(migrations_dir, "sqlite", &list, &count, error_r);
	if (ret < 0)
		goto out;
	ret = sq_acquire(b, &c);
	if (ret < 0) {
		*error_r = store_error_fmt("cannot open sqlite database %s", b->path);
		goto out;
	}
	if (sqlite3_exec(c->db, sq_bootstrap_sql, NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = store_error_fmt("cannot create schema_version in %s: %s", b->path,
		                           sqlite3_errmsg(c->db));
		ret = ISSO_ERR_STORE;
		goto out;
	}
	for (i = 0; i < count; i++) {
		ret = sq_migrate_one(c, &list[i], error_r);
		if (ret < 0)
			goto out;
	}
	ret = sq_version(c, &version);
	if (ret < 0) {
		*error_r = "cannot read the schema version";
		goto out;
	}
	latest = count > 0 ? list[count - 1].version : 0;
	if (version > latest) {
		*error_r = store_error_fmt("database schema version %d is newer than the "
		                           "migrations in %s (%d)",
		                           version, migrations_dir, latest);
		ret = ISSO_ERR_INVALID;
		goto out;
	}
out:
	sq_release(b, c);
	store_migrations_free(list, count);
	return ret;
}

static void
sq_close(struct store_backend *base)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c;

	if (b == NULL)
		return;
	pthread_mutex_lock(&b->lock);
	while ((c = b->idle) != NULL) {
		b->idle = c->next;
		b->n_conns--;
		sq_conn_close(c);
	}
	if (b->n_conns != 0)
		log_error("store_sqlite_close_busy", "detail",
		          "store closed while connections were in use", NULL);
	pthread_mutex_unlock(&b->lock);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b->path);
	free(b);
}

static int
sq_open(const char *dsn, const char *migrations_dir, struct store_backend **backend_r,
        const char **error_r)
{
	struct sq_backend *b = NULL;
	int ret = 0;

	*backend_r = NULL;
	if (sqlite3_threadsafe() == 0) {
		*error_r = "sqlite was built without thread support";
		ret = ISSO_ERR_STORE;
		goto out;
	}
	ret = sq_create_file(dsn, error_r);
	if (ret < 0)
		goto out;
	b = xcalloc(1, sizeof(*b));
	b->base.driver = &store_driver_sqlite;
	b->path = xstrdup(dsn);
	b->max_conns = sq_dsn_is_memory(dsn) ? 1 : SQ_MAX_CONNS;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	ret = sq_migrate(b, migrations_dir, error_r);
	if (ret < 0)
		goto out;
	*backend_r = &b->base;
	b = NULL;
out:
	sq_close(b != NULL ? &b->base : NULL);
	return ret;
}

static int
sq_schema_version(struct store_backend *base, int *version_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	int ret;

	*version_r = 0;
	ret = sq_acquire(b, &c);
	if (ret == 0)
		ret = sq_version(c, version_r);
	sq_release(b, c);
	return ret;
}

/* Readiness: the file we opened is still the one at the path (a database
 * moved or deleted under a running daemon keeps answering from the
 * orphaned inode, and every write would be lost), and a query answers. */
static int
sq_ping(struct store_backend *base, const char **error_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	int ret, version = 0, moved = 0;

	ret = sq_acquire(b, &c);
	if (ret < 0) {
		*error_r = "cannot open the database";
		goto out;
	}
	if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK &&
	    moved) {
		*error_r = "the database file was moved or removed";
		ret = ISSO_ERR_STORE;
		goto out;
	}
	ret = sq_version(c, &version);
	if (ret < 0)
		*error_r = "the database does not answer";
out:
	sq_release(b, c);
	return ret;
}

/* ---- clients ---- */

static char *
sq_json_text(const json_t *j, const char *dflt)
{
	if (j == NULL)
		return dflt != NULL ? xstrdup(dflt) : NULL;
	return json_dumps(j, JSON_COMPACT);
}

static int
sq_client_add(struct store_backend *base, const struct store_client *cl)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	char *uris = NULL, *logout_uris = NULL, *jwks = NULL, *settings = NULL;
	int ret, rc = SQLITE_OK;

	uris = sq_json_text(cl->redirect_uris, "[]");
	logout_uris = sq_json_text(cl->post_logout_redirect_uris, "[]");
	jwks = sq_json_text(cl->jwks, NULL);
	settings = sq_json_text(cl->settings, "{}");
	if (uris == NULL || logout_uris == NULL || settings == NULL ||
	    (cl->jwks != NULL && jwks == NULL)) {
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	ret = sq_begin_op(b, SQ_CLIENT_ADD, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, cl->client_id, &rc);
	sq_bind_text(st, 2, cl->secret_hash, &rc);
	sq_bind_text(st, 3, cl->name, &rc);
	sq_bind_text(st, 4, cl->purpose, &rc);
	sq_bind_text(st, 5, uris, &rc);
	sq_bind_text(st, 6, logout_uris, &rc);
	sq_bind_text(st, 7, cl->backchannel_logout_uri, &rc);
	sq_bind_text(st, 8, cl->scope != NULL ? cl->scope : "", &rc);
	sq_bind_int(st, 9, cl->public_client ? 1 : 0, &rc);
	sq_bind_text(st, 10, cl->id_token_alg, &rc);
	sq_bind_text(st, 11, cl->auth_method, &rc);
	sq_bind_text(st, 12, cl->jwks_uri, &rc);
	sq_bind_text(st, 13, jwks, &rc);
	sq_bind_int(st, 14, cl->status, &rc);
	sq_bind_int(st, 15, cl->created_at, &rc);
	sq_bind_text(st, 16,
	             cl->grant_types != NULL ? cl->grant_types : STORE_CLIENT_DEFAULT_GRANTS, &rc);
	sq_bind_text(st, 17, settings, &rc);
	ret = sq_exec(c, st, rc, "client_add", NULL);
out:
	sq_end_op(b, c, st);
	free(uris);
	free(logout_uris);
	free(jwks);
	free(settings);
	return ret;
}

static int
sq_client_row(sqlite3_stmt *st, struct store_client **client_r)
{
	struct store_client *cl = xcalloc(1, sizeof(*cl));
	int ret;

	*client_r = NULL;
	cl->client_id = sq_col_text(st, 0);
	cl->secret_hash = sq_col_text(st, 1);
	cl->name = sq_col_text(st, 2);
	cl->purpose = sq_col_text(st, 3);
	cl->backchannel_logout_uri = sq_col_text(st, 6);
	cl->scope = sq_col_text(st, 7);
	cl->public_client = sqlite3_column_int(st, 8) != 0;
	cl->id_token_alg = sq_col_text(st, 9);
	cl->auth_method = sq_col_text(st, 10);
	cl->jwks_uri = sq_col_text(st, 11);
	cl->status = sqlite3_column_int(st, 13);
	cl->created_at = sqlite3_column_int64(st, 14);
	cl->grant_types = sq_col_text(st, 15);
	ret = store_json_parse((const char *)sqlite3_column_text(st, 4), JSON_ARRAY,
	                       &cl->redirect_uris);
	if (ret == 0)
		ret = store_json_parse((const char *)sqlite3_column_text(st, 5), JSON_ARRAY,
		                       &cl->post_logout_redirect_uris);
	if (ret == 0)
		ret = store_json_parse((const char *)sqlite3_column_text(st, 12), JSON_OBJECT,
		                       &cl->jwks);
	if (ret == 0)
		ret = store_json_parse((const char *)sqlite3_column_text(st, 16), JSON_OBJECT,
		                       &cl->settings);
	if (ret == 0 && (cl->redirect_uris == NULL || cl->post_logout_redirect_uris == NULL ||
	                 cl->settings == NULL))
		ret = ISSO_ERR_STORE;
	if (ret < 0) {
		log_error("store_sqlite_corrupt", "table", "clients", NULL);
		store_client_free(cl);
		return ret;
	}
	*client_r = cl;
	return 0;
}

static int
sq_client_get(struct store_backend *base, const char *client_id, struct store_client **client_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_CLIENT_GET, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, client_id, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		ret = sq_client_row(st, client_r);
	else if (rc != SQLITE_DONE)
		ret = sq_error(c->db, rc, "client_get");
out:
	sq_end_op(b, c, st);
	return ret;
}

/* Reads up to SQ_PAGE clients after (*created_at, *client_id) into page;
 * the connection is given back before any callback runs, so a callback may
 * use the store itself. */
static int
sq_client_page(struct sq_backend *b, bool first, int64_t created_at, const char *client_id,
               struct store_client **page, size_t *n_r)
{
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;
	size_t n = 0;

	ret = sq_begin_op(b, SQ_CLIENT_PAGE, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_int(st, 1, created_at, &rc);
	sq_bind_text(st, 2, client_id != NULL ? client_id : "", &rc);
	sq_bind_int(st, 3, first ? 1 : 0, &rc);
	sq_bind_int(st, 4, SQ_PAGE, &rc);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = sq_client_row(st, &page[n]);
		if (ret < 0)
			goto out;
		n++;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		ret = sq_error(c->db, rc, "client_list");
out:
	sq_end_op(b, c, st);
	*n_r = n;
	return ret;
}

static int
sq_client_list(struct store_backend *base, int (*fn)(const struct store_client *c, void *ctx),
               void *ctx)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct store_client *page[SQ_PAGE];
	int64_t last_created = 0;
	char *last_id = NULL;
	bool first = true;
	size_t n = 0, i;
	int ret = 0;

	do {
		ret = sq_client_page(b, first, last_created, last_id, page, &n);
		for (i = 0; i < n; i++) {
			if (ret == 0)
				ret = fn(page[i], ctx);
			if (i + 1 == n) {
				free(last_id);
				last_id = xstrdup(page[i]->client_id);
				last_created = page[i]->created_at;
			}
			store_client_free(page[i]);
		}
		first = false;
	} while (ret == 0 && n == SQ_PAGE);
	free(last_id);
	return ret;
}

static int
sq_client_set_status(struct store_backend *base, const char *client_id, int status)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_CLIENT_STATUS, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, client_id, &rc);
	sq_bind_int(st, 2, status, &rc);
	ret = sq_exec(c, st, rc, "client_set_status", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_client_set_secret(struct store_backend *base, const char *client_id, const char *secret_hash)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	/* Not sq_simple: a NULL secret_hash (public client) is bound as NULL. */
	ret = sq_begin_op(b, SQ_CLIENT_SECRET, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, client_id, &rc);
	sq_bind_text(st, 2, secret_hash, &rc);
	ret = sq_exec(c, st, rc, "client_set_secret", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_client_set_settings(struct store_backend *base, const char *client_id, const char *settings)
{
	return sq_simple((struct sq_backend *)base, SQ_CLIENT_SETTINGS, "client_set_settings", NULL,
	                 client_id, settings, NULL);
}

/* ---- persons ---- */

static int
sq_person_add(struct store_backend *base, const struct store_person *p)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_PERSON_ADD, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, p->uuid, &rc);
	sq_bind_text(st, 2, p->id_hash, &rc);
	sq_bind_text(st, 3, p->pii, &rc);
	sq_bind_int(st, 4, p->created_at, &rc);
	sq_bind_int(st, 5, p->updated_at != 0 ? p->updated_at : p->created_at, &rc);
	ret = sq_exec(c, st, rc, "person_add", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_person_lookup(struct sq_backend *b, enum sq_id id, const char *key,
                 struct store_person **person_r)
{
	struct store_person *p = NULL;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, id, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, key, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		p = xcalloc(1, sizeof(*p));
		p->uuid = sq_col_text(st, 0);
		p->id_hash = sq_col_text(st, 1);
		p->pii = sq_col_text(st, 2);
		p->created_at = sqlite3_column_int64(st, 3);
		p->updated_at = sqlite3_column_int64(st, 4);
		*person_r = p;
	} else if (rc != SQLITE_DONE) {
		ret = sq_error(c->db, rc, "person_get");
	}
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_person_get(struct store_backend *base, const char *uuid, struct store_person **person_r)
{
	return sq_person_lookup((struct sq_backend *)base, SQ_PERSON_GET, uuid, person_r);
}

static int
sq_person_find_by_id_hash(struct store_backend *base, const char *id_hash,
                          struct store_person **person_r)
{
	return sq_person_lookup((struct sq_backend *)base, SQ_PERSON_BY_ID_HASH, id_hash, person_r);
}

static int
sq_person_update(struct store_backend *base, const char *uuid, const char *id_hash, const char *pii,
                 int64_t now)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_PERSON_UPDATE, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, uuid, &rc);
	sq_bind_text(st, 2, id_hash, &rc);
	sq_bind_text(st, 3, pii, &rc);
	sq_bind_int(st, 4, now, &rc);
	ret = sq_exec(c, st, rc, "person_update", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_person_delete(struct store_backend *base, const char *uuid)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct store_person *still = NULL;
	int changes = 0, ret;

	ret = sq_simple(b, SQ_PERSON_DELETE, "person_delete", &changes, uuid, NULL, NULL);
	if (ret == 0 && changes == 0) {
		ret = sq_person_lookup(b, SQ_PERSON_GET, uuid, &still);
		if (ret == 0 && still != NULL)
			ret = ISSO_ERR_CONFLICT;
		store_person_free(still);
	}
	return ret;
}

/* ---- members ---- */

static int
sq_member_add(struct store_backend *base, const struct store_member *m)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_MEMBER_ADD, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, m->uuid, &rc);
	sq_bind_text(st, 2, m->account, &rc);
	sq_bind_text(st, 3, m->email_hash, &rc);
	sq_bind_text(st, 4, m->phone_hash, &rc);
	sq_bind_text(st, 5, m->password_hash, &rc);
	sq_bind_int(st, 6, m->level, &rc);
	sq_bind_int(st, 7, m->failed_logins, &rc);
	sq_bind_int(st, 8, m->locked_until, &rc);
	sq_bind_int(st, 9, m->created_at, &rc);
	ret = sq_exec(c, st, rc, "member_add", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static struct store_member *
sq_member_row(sqlite3_stmt *st)
{
	struct store_member *m = xcalloc(1, sizeof(*m));

	m->uuid = sq_col_text(st, 0);
	m->account = sq_col_text(st, 1);
	m->email_hash = sq_col_text(st, 2);
	m->phone_hash = sq_col_text(st, 3);
	m->password_hash = sq_col_text(st, 4);
	m->level = sqlite3_column_int(st, 5);
	m->failed_logins = sqlite3_column_int(st, 6);
	m->locked_until = sqlite3_column_int64(st, 7);
	m->created_at = sqlite3_column_int64(st, 8);
	return m;
}

static int
sq_member_find(struct store_backend *base, const char *account, const char *email_hash,
               const char *phone_hash, struct store_member **member_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_MEMBER_FIND, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, account, &rc);
	sq_bind_text(st, 2, email_hash, &rc);
	sq_bind_text(st, 3, phone_hash, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*member_r = sq_member_row(st);
	else if (rc != SQLITE_DONE)
		ret = sq_error(c->db, rc, "member_find");
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_member_get(struct store_backend *base, const char *uuid, struct store_member **member_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_MEMBER_GET, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, uuid, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*member_r = sq_member_row(st);
	else if (rc != SQLITE_DONE)
		ret = sq_error(c->db, rc, "member_get");
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_member_login_failed(struct store_backend *base, const char *uuid, int max_failures, int64_t now,
                       int lock_seconds, int *failures_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK, count = -1;

	ret = sq_begin_op(b, SQ_MEMBER_FAILED, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, uuid, &rc);
	sq_bind_int(st, 2, max_failures, &rc);
	sq_bind_int(st, 3, now, &rc);
	sq_bind_int(st, 4, lock_seconds, &rc);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		count = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		ret = sq_error(c->db, rc, "member_login_failed");
		goto out;
	}
	/* The stored count is reset on lockout: report the count reached. */
	if (count == 0)
		*failures_r = max_failures;
	else if (count > 0)
		*failures_r = count;
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_member_login_ok(struct store_backend *base, const char *uuid)
{
	return sq_simple((struct sq_backend *)base, SQ_MEMBER_OK, "member_login_ok", NULL, uuid,
	                 NULL, NULL);
}

static int
sq_member_set_password(struct store_backend *base, const char *uuid, const char *password_hash)
{
	return sq_simple((struct sq_backend *)base, SQ_MEMBER_PASSWORD, "member_set_password", NULL,
	                 uuid, password_hash, NULL);
}

/* ---- organisations ---- */

static int
sq_org_add(struct store_backend *base, const struct store_org *org)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_ORG_ADD, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, org->ubn, &rc);
	sq_bind_text(st, 2, org->name, &rc);
	sq_bind_int(st, 3, org->created_at, &rc);
	ret = sq_exec(c, st, rc, "org_add", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_org_get(struct store_backend *base, const char *ubn, struct store_org **org_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	struct store_org *org;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_ORG_GET, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, ubn, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		org = xcalloc(1, sizeof(*org));
		org->ubn = sq_col_text(st, 0);
		org->name = sq_col_text(st, 1);
		org->created_at = sqlite3_column_int64(st, 2);
		*org_r = org;
	} else if (rc != SQLITE_DONE) {
		ret = sq_error(c->db, rc, "org_get");
	}
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_org_member_add(struct store_backend *base, const char *ubn, const char *uuid, const char *role,
                  int64_t now)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_ORG_MEMBER_ADD, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, ubn, &rc);
	sq_bind_text(st, 2, uuid, &rc);
	sq_bind_text(st, 3, role, &rc);
	sq_bind_int(st, 4, now, &rc);
	ret = sq_exec(c, st, rc, "org_member_add", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_org_member_role(struct store_backend *base, const char *ubn, const char *uuid, char **role_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_ORG_MEMBER_ROLE, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, ubn, &rc);
	sq_bind_text(st, 2, uuid, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*role_r = sq_col_text(st, 0);
	else if (rc != SQLITE_DONE)
		ret = sq_error(c->db, rc, "org_member_role");
out:
	sq_end_op(b, c, st);
	return ret;
}

/* ---- consents ---- */

static int
sq_consent_get(struct store_backend *base, const char *uuid, const char *client_id, char **scope_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_CONSENT_GET, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, uuid, &rc);
	sq_bind_text(st, 2, client_id, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*scope_r = sq_col_text(st, 0);
	else if (rc != SQLITE_DONE)
		ret = sq_error(c->db, rc, "consent_get");
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_consent_put(struct store_backend *base, const char *uuid, const char *client_id,
               const char *scope, int64_t now)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_CONSENT_PUT, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, uuid, &rc);
	sq_bind_text(st, 2, client_id, &rc);
	sq_bind_text(st, 3, scope, &rc);
	sq_bind_int(st, 4, now, &rc);
	ret = sq_exec(c, st, rc, "consent_put", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_consent_delete(struct store_backend *base, const char *uuid, const char *client_id)
{
	return sq_simple((struct sq_backend *)base, SQ_CONSENT_DELETE, "consent_delete", NULL, uuid,
	                 client_id, NULL);
}

/* ---- tokens ---- */

static int
sq_token_add(struct store_backend *base, const struct store_token *t)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	char *data = NULL;
	int ret, rc = SQLITE_OK;

	data = sq_json_text(t->data, "{}");
	if (data == NULL) {
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	ret = sq_begin_op(b, SQ_TOKEN_ADD, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, t->hash, &rc);
	sq_bind_int(st, 2, t->kind, &rc);
	sq_bind_text(st, 3, t->grant_id, &rc);
	sq_bind_text(st, 4, t->client_id, &rc);
	sq_bind_text(st, 5, t->uuid, &rc);
	sq_bind_text(st, 6, t->sid, &rc);
	sq_bind_text(st, 7, t->scope, &rc);
	sq_bind_text(st, 8, data, &rc);
	sq_bind_int(st, 9, t->created_at, &rc);
	sq_bind_int(st, 10, t->expires_at, &rc);
	sq_bind_int(st, 11, t->used ? 1 : 0, &rc);
	sq_bind_int(st, 12, t->revoked ? 1 : 0, &rc);
	ret = sq_exec(c, st, rc, "token_add", NULL);
out:
	sq_end_op(b, c, st);
	free(data);
	return ret;
}

static int
sq_token_get(struct store_backend *base, const char *hash, int64_t now,
             struct store_token **token_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct store_token *t = NULL;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_TOKEN_GET, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, hash, &rc);
	sq_bind_int(st, 2, now, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		goto out;
	if (rc != SQLITE_ROW) {
		ret = sq_error(c->db, rc, "token_get");
		goto out;
	}
	t = xcalloc(1, sizeof(*t));
	t->hash = sq_col_text(st, 0);
	t->kind = sqlite3_column_int(st, 1);
	t->grant_id = sq_col_text(st, 2);
	t->client_id = sq_col_text(st, 3);
	t->uuid = sq_col_text(st, 4);
	t->sid = sq_col_text(st, 5);
	t->scope = sq_col_text(st, 6);
	t->created_at = sqlite3_column_int64(st, 8);
	t->expires_at = sqlite3_column_int64(st, 9);
	t->used = sqlite3_column_int(st, 10) != 0;
	t->revoked = sqlite3_column_int(st, 11) != 0;
	ret = store_json_parse((const char *)sqlite3_column_text(st, 7), JSON_OBJECT, &t->data);
	if (ret == 0 && t->data == NULL)
		ret = ISSO_ERR_STORE;
	if (ret < 0) {
		log_error("store_sqlite_corrupt", "table", "tokens", NULL);
		goto out;
	}
	*token_r = t;
	t = NULL;
out:
	sq_end_op(b, c, st);
	store_token_free(t);
	return ret;
}

static int
sq_token_use(struct store_backend *base, const char *hash, int64_t now, bool *won_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK, changes = 0;

	/* One conditional UPDATE: the write lock serialises racing callers and
	 * only the first sees used = 0. */
	ret = sq_begin_op(b, SQ_TOKEN_USE, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, hash, &rc);
	sq_bind_int(st, 2, now, &rc);
	ret = sq_exec(c, st, rc, "token_use", &changes);
	*won_r = ret == 0 && changes == 1;
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_token_revoke(struct store_backend *base, const char *hash)
{
	return sq_simple((struct sq_backend *)base, SQ_TOKEN_REVOKE, "token_revoke", NULL, hash,
	                 NULL, NULL);
}

static int
sq_token_revoke_grant(struct store_backend *base, const char *grant_id)
{
	return sq_simple((struct sq_backend *)base, SQ_TOKEN_REVOKE_GRANT, "token_revoke_grant",
	                 NULL, grant_id, NULL, NULL);
}

static int
sq_token_revoke_client_person(struct store_backend *base, const char *client_id, const char *uuid)
{
	return sq_simple((struct sq_backend *)base, SQ_TOKEN_REVOKE_CLIENT_PERSON,
	                 "token_revoke_client_person", NULL, client_id, uuid, NULL);
}

static int
sq_token_revoke_person(struct store_backend *base, const char *uuid)
{
	return sq_simple((struct sq_backend *)base, SQ_TOKEN_REVOKE_PERSON, "token_revoke_person",
	                 NULL, uuid, NULL, NULL);
}

/* ---- short-lived objects ---- */

static int
sq_eph_put(struct store_backend *base, const char *kind, const char *id, const char *data,
           int64_t expires_at)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_EPH_PUT, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, kind, &rc);
	sq_bind_text(st, 2, id, &rc);
	sq_bind_text(st, 3, data, &rc);
	sq_bind_int(st, 4, expires_at, &rc);
	ret = sq_exec(c, st, rc, "eph_put", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_eph_get(struct store_backend *base, const char *kind, const char *id, int64_t now,
           json_t **data_r, int *counter_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_EPH_GET, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, kind, &rc);
	sq_bind_text(st, 2, id, &rc);
	sq_bind_int(st, 3, now, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret =
		    store_json_parse((const char *)sqlite3_column_text(st, 0), JSON_OBJECT, data_r);
		if (ret == 0 && *data_r == NULL)
			ret = ISSO_ERR_STORE;
		if (ret < 0)
			log_error("store_sqlite_corrupt", "table", "eph", NULL);
		else
			*counter_r = sqlite3_column_int(st, 1);
	} else if (rc != SQLITE_DONE) {
		ret = sq_error(c->db, rc, "eph_get");
	}
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_eph_update(struct store_backend *base, const char *kind, const char *id, const char *data,
              int64_t now, bool *found_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK, changes = 0;

	ret = sq_begin_op(b, SQ_EPH_UPDATE, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, kind, &rc);
	sq_bind_text(st, 2, id, &rc);
	sq_bind_text(st, 3, data, &rc);
	sq_bind_int(st, 4, now, &rc);
	ret = sq_exec(c, st, rc, "eph_update", &changes);
	*found_r = ret == 0 && changes > 0;
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_eph_delete(struct store_backend *base, const char *kind, const char *id)
{
	return sq_simple((struct sq_backend *)base, SQ_EPH_DELETE, "eph_delete", NULL, kind, id,
	                 NULL);
}

static int
sq_eph_count(struct store_backend *base, const char *kind, int64_t now, int64_t *count_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_EPH_COUNT, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, kind, &rc);
	sq_bind_int(st, 2, now, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		ret = sq_error(c->db, rc, "eph_count");
		goto out;
	}
	*count_r = sqlite3_column_int64(st, 0);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_eph_bump(struct store_backend *base, const char *kind, const char *id, int64_t now,
            int *counter_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK, counter = -1;

	ret = sq_begin_op(b, SQ_EPH_BUMP, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, kind, &rc);
	sq_bind_text(st, 2, id, &rc);
	sq_bind_int(st, 3, now, &rc);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		counter = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		ret = sq_error(c->db, rc, "eph_bump");
		goto out;
	}
	*counter_r = counter;
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_eph_take(struct store_backend *base, const char *kind, const char *id, int64_t now,
            bool *taken_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK, changes = 0;

	ret = sq_begin_op(b, SQ_EPH_TAKE, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, kind, &rc);
	sq_bind_text(st, 2, id, &rc);
	sq_bind_int(st, 3, now, &rc);
	ret = sq_exec(c, st, rc, "eph_take", &changes);
	*taken_r = ret == 0 && changes == 1;
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_eph_incr(struct store_backend *base, const char *kind, const char *id, int64_t now,
            int64_t expires_at, int *counter_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK, counter = 0;

	ret = sq_begin_op(b, SQ_EPH_INCR, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, kind, &rc);
	sq_bind_text(st, 2, id, &rc);
	sq_bind_int(st, 3, now, &rc);
	sq_bind_int(st, 4, expires_at, &rc);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		counter = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		ret = sq_error(c->db, rc, "eph_incr");
		goto out;
	}
	*counter_r = counter;
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_rate_hit(struct store_backend *base, const char *key, int64_t window_start, int64_t expires_at,
            int *count_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK, count = 0;

	ret = sq_begin_op(b, SQ_RATE_HIT, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, key, &rc);
	sq_bind_int(st, 2, window_start, &rc);
	sq_bind_int(st, 3, expires_at, &rc);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		count = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		ret = sq_error(c->db, rc, "rate_hit");
		goto out;
	}
	*count_r = count;
out:
	sq_end_op(b, c, st);
	return ret;
}

/* ---- guess throttling ---- */

/* Steps st (bound, rc the binding result) and reads one row of (level,
 * next_at) into t_r when there is one. */
static int
sq_throttle_row(struct sq_conn *c, sqlite3_stmt *st, int rc, const char *op,
                struct store_throttle *t_r)
{
	if (rc != SQLITE_OK)
		return sq_error(c->db, rc, op);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		t_r->level = sqlite3_column_int64(st, 0);
		t_r->next_at = sqlite3_column_int64(st, 1);
	}
	if (rc != SQLITE_DONE)
		return sq_error(c->db, rc, op);
	return 0;
}

static int
sq_throttle_get(struct store_backend *base, const char *key, int64_t now,
                struct store_throttle *t_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_THROTTLE_GET, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, key, &rc);
	sq_bind_int(st, 2, now, &rc);
	ret = sq_throttle_row(c, st, rc, "throttle_get", t_r);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_throttle_take(struct store_backend *base, const char *key, int64_t now, int64_t weight,
                 int64_t cap, int64_t expires_at, struct store_throttle *t_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_THROTTLE_TAKE, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, key, &rc);
	sq_bind_int(st, 2, now, &rc);
	sq_bind_int(st, 3, weight, &rc);
	sq_bind_int(st, 4, cap, &rc);
	sq_bind_int(st, 5, expires_at, &rc);
	ret = sq_throttle_row(c, st, rc, "throttle_take", t_r);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_throttle_hold(struct store_backend *base, const char *key, int64_t next_at)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_THROTTLE_HOLD, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, key, &rc);
	sq_bind_int(st, 2, next_at, &rc);
	ret = sq_exec(c, st, rc, "throttle_hold", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_throttle_give(struct store_backend *base, const char *key, int64_t now, int64_t weight)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_THROTTLE_GIVE, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, key, &rc);
	sq_bind_int(st, 2, now, &rc);
	sq_bind_int(st, 3, weight, &rc);
	ret = sq_exec(c, st, rc, "throttle_give", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_throttle_clear(struct store_backend *base, const char *key)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_THROTTLE_CLEAR, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, key, &rc);
	ret = sq_exec(c, st, rc, "throttle_clear", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

/* ---- signing keys ---- */

static int
sq_key_add(struct store_backend *base, const struct store_key *k)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_KEY_ADD, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, k->kid, &rc);
	sq_bind_text(st, 2, k->alg, &rc);
	sq_bind_text(st, 3, k->jwk, &rc);
	sq_bind_int(st, 4, k->created_at, &rc);
	sq_bind_int(st, 5, k->active ? 1 : 0, &rc);
	ret = sq_exec(c, st, rc, "key_add", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static void
sq_key_free(struct store_key *k)
{
	if (k == NULL)
		return;
	free(k->kid);
	free(k->alg);
	xfree_secret(k->jwk);
	free(k);
}

static int
sq_key_page(struct sq_backend *b, bool first, int64_t created_at, const char *kid,
            struct store_key **page, size_t *n_r)
{
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	struct store_key *k;
	int ret, rc = SQLITE_OK;
	size_t n = 0;

	ret = sq_begin_op(b, SQ_KEY_PAGE, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_int(st, 1, created_at, &rc);
	sq_bind_text(st, 2, kid != NULL ? kid : "", &rc);
	sq_bind_int(st, 3, first ? 1 : 0, &rc);
	sq_bind_int(st, 4, SQ_PAGE, &rc);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		k = xcalloc(1, sizeof(*k));
		k->kid = sq_col_text(st, 0);
		k->alg = sq_col_text(st, 1);
		k->jwk = sq_col_text(st, 2);
		k->created_at = sqlite3_column_int64(st, 3);
		k->active = sqlite3_column_int(st, 4) != 0;
		page[n++] = k;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		ret = sq_error(c->db, rc, "key_list");
out:
	sq_end_op(b, c, st);
	*n_r = n;
	return ret;
}

static int
sq_key_list(struct store_backend *base, int (*fn)(const struct store_key *k, void *ctx), void *ctx)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct store_key *page[SQ_PAGE];
	int64_t last_created = 0;
	char *last_kid = NULL;
	bool first = true;
	size_t n = 0, i;
	int ret = 0;

	do {
		ret = sq_key_page(b, first, last_created, last_kid, page, &n);
		for (i = 0; i < n; i++) {
			if (ret == 0)
				ret = fn(page[i], ctx);
			if (i + 1 == n) {
				free(last_kid);
				last_kid = xstrdup(page[i]->kid);
				last_created = page[i]->created_at;
			}
			sq_key_free(page[i]);
		}
		first = false;
	} while (ret == 0 && n == SQ_PAGE);
	free(last_kid);
	return ret;
}

static int
sq_key_set_active(struct store_backend *base, const char *kid, bool active)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_KEY_ACTIVE, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, kid, &rc);
	sq_bind_int(st, 2, active ? 1 : 0, &rc);
	ret = sq_exec(c, st, rc, "key_set_active", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

/* ---- audit ---- */

static int
sq_audit_append(struct store_backend *base, int64_t ts, const char *event, const char *data)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	char prev[65], hash[65];
	int64_t seq = 1;
	int ret, rc = SQLITE_OK;

	memcpy(prev, STORE_AUDIT_GENESIS, sizeof(prev));
	ret = sq_acquire(b, &c);
	if (ret < 0)
		goto out;
	/* The write lock is taken before reading the chain's end, so two
	 * appenders cannot both link to the same row. */
	ret = sq_txn(c, SQ_BEGIN);
	if (ret < 0)
		goto out;
	ret = sq_stmt(c, SQ_AUDIT_LAST, &st);
	if (ret < 0)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 1);

		if (h == NULL || strlen((const char *)h) != 64) {
			log_error("store_sqlite_corrupt", "table", "audit", NULL);
			ret = ISSO_ERR_STORE;
			goto out;
		}
		seq = sqlite3_column_int64(st, 0) + 1;
		memcpy(prev, h, sizeof(prev));
	} else if (rc != SQLITE_DONE) {
		ret = sq_error(c->db, rc, "audit_append");
		goto out;
	}
	sq_reset(st);
	store_audit_hash(prev, seq, ts, event, data, hash);
	ret = sq_stmt(c, SQ_AUDIT_ADD, &st);
	if (ret < 0)
		goto out;
	rc = SQLITE_OK;
	sq_bind_int(st, 1, seq, &rc);
	sq_bind_int(st, 2, ts, &rc);
	sq_bind_text(st, 3, event, &rc);
	sq_bind_text(st, 4, data, &rc);
	sq_bind_text(st, 5, prev, &rc);
	sq_bind_text(st, 6, hash, &rc);
	ret = sq_exec(c, st, rc, "audit_append", NULL);
	if (ret < 0)
		goto out;
	sq_reset(st);
	st = NULL;
	ret = sq_txn(c, SQ_COMMIT);
out:
	sq_reset(st);
	if (c != NULL)
		sq_rollback(c);
	sq_release(b, c);
	return ret;
}

struct sq_audit_page {
	struct store_audit_row rows[SQ_PAGE];
	size_t n;
};

static void
sq_audit_page_clear(struct sq_audit_page *page)
{
	for (size_t i = 0; i < page->n; i++) {
		free((char *)page->rows[i].event);
		free((char *)page->rows[i].data);
		free((char *)page->rows[i].prev_hash);
		free((char *)page->rows[i].hash);
	}
	page->n = 0;
}

static int
sq_audit_fetch(struct sq_backend *b, int64_t since_seq, struct sq_audit_page *page)
{
	struct store_audit_row *r;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_AUDIT_PAGE, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_int(st, 1, since_seq, &rc);
	sq_bind_int(st, 2, SQ_PAGE, &rc);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = &page->rows[page->n++];
		r->seq = sqlite3_column_int64(st, 0);
		r->ts = sqlite3_column_int64(st, 1);
		r->event = sq_col_text(st, 2);
		r->data = sq_col_text(st, 3);
		r->prev_hash = sq_col_text(st, 4);
		r->hash = sq_col_text(st, 5);
		if (r->event == NULL || r->data == NULL || r->prev_hash == NULL ||
		    r->hash == NULL) {
			log_error("store_sqlite_corrupt", "table", "audit", NULL);
			ret = ISSO_ERR_STORE;
			goto out;
		}
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		ret = sq_error(c->db, rc, "audit_list");
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_audit_walk(struct store_backend *base, int64_t since_seq,
              int (*fn)(const struct store_audit_row *row, void *ctx), void *ctx)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_audit_page *page = xcalloc(1, sizeof(*page));
	size_t n, i;
	int ret = 0;

	do {
		ret = sq_audit_fetch(b, since_seq, page);
		n = page->n;
		for (i = 0; i < n && ret == 0; i++) {
			ret = fn(&page->rows[i], ctx);
			since_seq = page->rows[i].seq;
		}
		sq_audit_page_clear(page);
	} while (ret == 0 && n == SQ_PAGE);
	free(page);
	return ret;
}

/* ---- jobs ---- */

static int
sq_job_add(struct store_backend *base, const char *id, const char *kind, const char *data,
           int64_t now, int64_t run_at, int64_t expires_at)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_JOB_ADD, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, id, &rc);
	sq_bind_text(st, 2, kind, &rc);
	sq_bind_text(st, 3, data, &rc);
	sq_bind_int(st, 4, now, &rc);
	sq_bind_int(st, 5, run_at, &rc);
	sq_bind_int(st, 6, expires_at, &rc);
	ret = sq_exec(c, st, rc, "job_add", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_job_claim(struct store_backend *base, const char *kind, const char *owner, int64_t now,
             int lease_seconds, struct store_job **job_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct store_job *job = NULL;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_JOB_CLAIM, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, kind, &rc);
	sq_bind_text(st, 2, owner, &rc);
	sq_bind_int(st, 3, now, &rc);
	sq_bind_int(st, 4, lease_seconds, &rc);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (job == NULL) {
			job = xcalloc(1, sizeof(*job));
			job->id = sq_col_text(st, 0);
			job->kind = sq_col_text(st, 1);
			ret = store_json_parse((const char *)sqlite3_column_text(st, 2),
			                       JSON_OBJECT, &job->data);
			job->attempts = sqlite3_column_int(st, 3);
			job->created_at = sqlite3_column_int64(st, 4);
			job->expires_at = sqlite3_column_int64(st, 5);
		}
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		ret = sq_error(c->db, rc, "job_claim");
		goto out;
	}
	if (job != NULL && (ret < 0 || job->id == NULL || job->data == NULL)) {
		log_error("store_sqlite_corrupt", "table", "jobs", NULL);
		ret = ISSO_ERR_STORE;
		goto out;
	}
	*job_r = job;
	job = NULL;
out:
	sq_end_op(b, c, st);
	store_job_free(job);
	return ret;
}

static int
sq_job_done(struct store_backend *base, const char *id, const char *owner)
{
	return sq_simple((struct sq_backend *)base, SQ_JOB_DONE, "job_done", NULL, id, owner, NULL);
}

static int
sq_job_retry(struct store_backend *base, const char *id, const char *owner, int64_t run_at)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_JOB_RETRY, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, id, &rc);
	sq_bind_text(st, 2, owner, &rc);
	sq_bind_int(st, 3, run_at, &rc);
	ret = sq_exec(c, st, rc, "job_retry", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

/* ---- housekeeping ---- */

static int
sq_purge(struct store_backend *base, int64_t now, int *n_r)
{
	static const enum sq_id ids[] = {SQ_PURGE_TOKENS, SQ_PURGE_EPH, SQ_PURGE_RATE,
	                                 SQ_PURGE_JOBS, SQ_PURGE_THROTTLE};
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc, changes, total = 0;
	size_t i;

	ret = sq_acquire(b, &c);
	if (ret < 0)
		goto out;
	/* Small batches, each its own transaction, so writers are never held
	 * up for long behind a large purge. */
	for (i = 0; i < ISSO_N_ELEMENTS(ids); i++) {
		ret = sq_stmt(c, ids[i], &st);
		if (ret < 0)
			goto out;
		do {
			rc = SQLITE_OK;
			/* throttle rows count in milliseconds */
			sq_bind_int(st, 1, ids[i] == SQ_PURGE_THROTTLE ? now * 1000 : now, &rc);
			sq_bind_int(st, 2, SQ_PURGE_BATCH, &rc);
			changes = 0;
			ret = sq_exec(c, st, rc, "purge", &changes);
			sq_reset(st);
			if (ret < 0)
				goto out;
			total += changes;
		} while (changes == SQ_PURGE_BATCH);
		st = NULL;
	}
out:
	sq_end_op(b, c, st);
	*n_r = total;
	return ret;
}

/* ---- TaipeiPass app device keys ---- */

static int
sq_device_add(struct store_backend *base, const struct store_device *d)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_DEVICE_ADD, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, d->id, &rc);
	sq_bind_text(st, 2, d->uuid, &rc);
	sq_bind_text(st, 3, d->jwk, &rc);
	sq_bind_text(st, 4, d->name != NULL ? d->name : "", &rc);
	sq_bind_int(st, 5, d->created_at, &rc);
	sq_bind_int(st, 6, d->last_used_at, &rc);
	sq_bind_int(st, 7, d->revoked_at, &rc);
	ret = sq_exec(c, st, rc, "device_add", NULL);
out:
	sq_end_op(b, c, st);
	return ret;
}

static void
sq_device_row(sqlite3_stmt *st, struct store_device *d)
{
	d->id = sq_col_text(st, 0);
	d->uuid = sq_col_text(st, 1);
	d->jwk = sq_col_text(st, 2);
	d->name = sq_col_text(st, 3);
	d->created_at = sqlite3_column_int64(st, 4);
	d->last_used_at = sqlite3_column_int64(st, 5);
	d->revoked_at = sqlite3_column_int64(st, 6);
}

static int
sq_device_get(struct store_backend *base, const char *id, struct store_device **d_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	struct store_device *d;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_DEVICE_GET, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, id, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		d = xcalloc(1, sizeof(*d));
		sq_device_row(st, d);
		*d_r = d;
	} else if (rc != SQLITE_DONE) {
		ret = sq_error(c->db, rc, "device_get");
	}
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_device_list(struct store_backend *base, const char *uuid, size_t max,
               struct store_device **list_r, size_t *n_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	struct store_device *list = xcalloc(max, sizeof(*list));
	size_t n = 0;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, SQ_DEVICE_LIST, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, uuid, &rc);
	sq_bind_int(st, 2, (int64_t)max, &rc);
	while (rc == SQLITE_OK || rc == SQLITE_ROW) {
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW || n == max)
			break;
		sq_device_row(st, &list[n++]);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = sq_error(c->db, rc, "device_list");
out:
	sq_end_op(b, c, st);
	if (ret < 0) {
		store_device_list_free(list, n);
		return ret;
	}
	*list_r = list;
	*n_r = n;
	return 0;
}

static int
sq_device_use(struct store_backend *base, const char *id, int64_t now, bool *found_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK, changes = 0;

	ret = sq_begin_op(b, SQ_DEVICE_USE, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, id, &rc);
	sq_bind_int(st, 2, now, &rc);
	ret = sq_exec(c, st, rc, "device_use", &changes);
	*found_r = ret == 0 && changes > 0;
out:
	sq_end_op(b, c, st);
	return ret;
}

static int
sq_device_revoke(struct store_backend *base, const char *uuid, const char *id, int64_t now,
                 int *n_r)
{
	struct sq_backend *b = (struct sq_backend *)base;
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int ret, rc = SQLITE_OK;

	ret = sq_begin_op(b, id != NULL ? SQ_DEVICE_REVOKE : SQ_DEVICE_REVOKE_ALL, &c, &st);
	if (ret < 0)
		goto out;
	sq_bind_text(st, 1, uuid, &rc);
	if (id != NULL) {
		sq_bind_text(st, 2, id, &rc);
		sq_bind_int(st, 3, now, &rc);
	} else {
		sq_bind_int(st, 2, now, &rc);
	}
	ret = sq_exec(c, st, rc, "device_revoke", n_r);
out:
	sq_end_op(b, c, st);
	return ret;
}

const struct store_driver store_driver_sqlite = {
    .name = "sqlite",
    .flags = STORE_DRIVER_FLAG_RETURNING,
    .open = sq_open,
    .close = sq_close,
    .schema_version = sq_schema_version,
    .client_add = sq_client_add,
    .client_get = sq_client_get,
    .client_list = sq_client_list,
    .client_set_status = sq_client_set_status,
    .client_set_secret = sq_client_set_secret,
    .client_set_settings = sq_client_set_settings,
    .person_add = sq_person_add,
    .person_get = sq_person_get,
    .person_find_by_id_hash = sq_person_find_by_id_hash,
    .person_update = sq_person_update,
    .person_delete = sq_person_delete,
    .member_add = sq_member_add,
    .member_find = sq_member_find,
    .member_get = sq_member_get,
    .member_login_failed = sq_member_login_failed,
    .member_login_ok = sq_member_login_ok,
    .member_set_password = sq_member_set_password,
    .org_add = sq_org_add,
    .org_get = sq_org_get,
    .org_member_add = sq_org_member_add,
    .org_member_role = sq_org_member_role,
    .consent_get = sq_consent_get,
    .consent_put = sq_consent_put,
    .consent_delete = sq_consent_delete,
    .token_add = sq_token_add,
    .token_get = sq_token_get,
    .token_use = sq_token_use,
    .token_revoke = sq_token_revoke,
    .token_revoke_grant = sq_token_revoke_grant,
    .token_revoke_client_person = sq_token_revoke_client_person,
    .token_revoke_person = sq_token_revoke_person,
    .eph_put = sq_eph_put,
    .eph_get = sq_eph_get,
    .eph_update = sq_eph_update,
    .eph_delete = sq_eph_delete,
    .eph_count = sq_eph_count,
    .eph_bump = sq_eph_bump,
    .eph_take = sq_eph_take,
    .eph_incr = sq_eph_incr,
    .rate_hit = sq_rate_hit,
    .throttle_get = sq_throttle_get,
    .throttle_take = sq_throttle_take,
    .throttle_hold = sq_throttle_hold,
    .throttle_give = sq_throttle_give,
    .throttle_clear = sq_throttle_clear,
    .key_add = sq_key_add,
    .key_list = sq_key_list,
    .key_set_active = sq_key_set_active,
    .audit_append = sq_audit_append,
    .audit_walk = sq_audit_walk,
    .job_add = sq_job_add,
    .job_claim = sq_job_claim,
    .job_done = sq_job_done,
    .job_retry = sq_job_retry,
    .purge = sq_purge,
    .ping = sq_ping,
    .device_add = sq_device_add,
    .device_get = sq_device_get,
    .device_list = sq_device_list,
    .device_use = sq_device_use,
    .device_revoke = sq_device_revoke,
};
