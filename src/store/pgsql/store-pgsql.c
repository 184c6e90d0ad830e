/* The PostgreSQL store backend, on libpq: a small pool of connections
 * (each used by one thread at a time, opened lazily), every statement
 * prepared once per connection and bound, never built from values.
 * Multi-step operations are one statement (UPDATE … RETURNING, INSERT … ON
 * CONFLICT, a job claim with FOR UPDATE SKIP LOCKED) or run in a
 * transaction. A connection that fails is closed, not pooled: the call
 * fails with ISSO_ERR_STORE and the next call connects again, so the
 * service recovers from a restarted server by itself. */
#include "store/store-private.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/isso.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

#define PG_MAX_CONNS    16
#define PG_PAGE         128 /* rows fetched per round in list walks */
#define PG_PURGE_BATCH  500 /* rows deleted per statement in purge */
#define PG_MAX_PARAMS   24
#define PG_CONNECT_WAIT "5" /* seconds, unless the conninfo says otherwise */

/* Serialises migrations of every process opening the same database. */
#define PG_MIGRATE_LOCK "SELECT pg_advisory_xact_lock(7305614260218)"

#define PG_CLIENT_COLS                                                                             \
	"client_id, secret_hash, name, purpose, redirect_uris, post_logout_redirect_uris, "        \
	"backchannel_logout_uri, scope, public_client, id_token_alg, auth_method, jwks_uri, "      \
	"jwks, status, created_at, grant_types, settings"
#define PG_PERSON_COLS "uuid, id_hash, pii, created_at, updated_at"
#define PG_MEMBER_COLS                                                                             \
	"uuid, account, email_hash, phone_hash, password_hash, level, failed_logins, "             \
	"locked_until, created_at"
#define PG_TOKEN_COLS                                                                              \
	"hash, kind, grant_id, client_id, uuid, sid, scope, data, created_at, expires_at, "        \
	"used, revoked"
#define PG_KEY_COLS "kid, alg, jwk, created_at, active"

enum pg_id {
	PG_VERSION,
	PG_VERSION_ADD,
	PG_CLIENT_ADD,
	PG_CLIENT_GET,
	PG_CLIENT_PAGE,
	PG_CLIENT_STATUS,
	PG_CLIENT_SECRET,
	PG_CLIENT_SETTINGS,
	PG_PERSON_ADD,
	PG_PERSON_GET,
	PG_PERSON_BY_ID_HASH,
	PG_PERSON_UPDATE,
	PG_PERSON_DELETE,
	PG_MEMBER_ADD,
	PG_MEMBER_FIND,
	PG_MEMBER_GET,
	PG_MEMBER_FAILED,
	PG_MEMBER_OK,
	PG_MEMBER_PASSWORD,
	PG_ORG_ADD,
	PG_ORG_GET,
	PG_ORG_MEMBER_ADD,
	PG_ORG_MEMBER_ROLE,
	PG_CONSENT_GET,
	PG_CONSENT_PUT,
	PG_CONSENT_DELETE,
	PG_TOKEN_ADD,
	PG_TOKEN_GET,
	PG_TOKEN_USE,
	PG_TOKEN_REVOKE,
	PG_TOKEN_REVOKE_GRANT,
	PG_TOKEN_REVOKE_CLIENT_PERSON,
	PG_TOKEN_REVOKE_PERSON,
	PG_EPH_PUT,
	PG_EPH_GET,
	PG_EPH_COUNT,
	PG_EPH_UPDATE,
	PG_EPH_DELETE,
	PG_EPH_BUMP,
	PG_EPH_TAKE,
	PG_EPH_INCR,
	PG_RATE_HIT,
	PG_THROTTLE_GET,
	PG_THROTTLE_TAKE,
	PG_THROTTLE_HOLD,
	PG_THROTTLE_GIVE,
	PG_THROTTLE_CLEAR,
	PG_KEY_ADD,
	PG_KEY_PAGE,
	PG_KEY_ACTIVE,
	PG_AUDIT_LAST,
	PG_AUDIT_ADD,
	PG_AUDIT_PAGE,
	PG_JOB_ADD,
	PG_JOB_CLAIM,
	PG_JOB_DONE,
	PG_JOB_RETRY,
	PG_PURGE_TOKENS,
	PG_PURGE_EPH,
	PG_PURGE_RATE,
	PG_PURGE_JOBS,
	PG_PURGE_THROTTLE,
	PG_DEVICE_ADD,
	PG_DEVICE_GET,
	PG_DEVICE_LIST,
	PG_DEVICE_USE,
	PG_DEVICE_REVOKE,
	PG_DEVICE_REVOKE_ALL,
	PG_COUNT
};

/* Parameters whose type the server cannot infer from a column are cast. */
#define PG_DEVICE_COLS "id, uuid, jwk, name, created_at, last_used_at, revoked_at"

static const char *const pg_sql[PG_COUNT] = {
    [PG_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_version",
    [PG_VERSION_ADD] = "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
    [PG_CLIENT_ADD] =
        "INSERT INTO clients (" PG_CLIENT_COLS ") VALUES "
        "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    [PG_CLIENT_GET] = "SELECT " PG_CLIENT_COLS " FROM clients WHERE client_id = $1",
    [PG_CLIENT_PAGE] = "SELECT " PG_CLIENT_COLS " FROM clients "
                       "WHERE $3::boolean OR (created_at, client_id) > ($1::bigint, $2::text) "
                       "ORDER BY created_at, client_id LIMIT $4::bigint",
    [PG_CLIENT_STATUS] = "UPDATE clients SET status = $2 WHERE client_id = $1",
    [PG_CLIENT_SECRET] = "UPDATE clients SET secret_hash = $2 WHERE client_id = $1",
    [PG_CLIENT_SETTINGS] = "UPDATE clients SET settings = $2 WHERE client_id = $1",
    [PG_PERSON_ADD] = "INSERT INTO persons (" PG_PERSON_COLS ") VALUES ($1, $2, $3, $4, $5)",
    [PG_PERSON_GET] = "SELECT " PG_PERSON_COLS " FROM persons WHERE uuid = $1",
    [PG_PERSON_BY_ID_HASH] = "SELECT " PG_PERSON_COLS " FROM persons WHERE id_hash = $1",
    [PG_PERSON_UPDATE] = "UPDATE persons SET id_hash = COALESCE($2, id_hash), pii = $3, "
                         "updated_at = $4 WHERE uuid = $1",
    /* Only a person nothing refers to (members would cascade). */
    [PG_PERSON_DELETE] = "DELETE FROM persons WHERE uuid = $1 AND NOT EXISTS "
                         "(SELECT 1 FROM members WHERE members.uuid = $1)",
    [PG_MEMBER_ADD] = "INSERT INTO members (" PG_MEMBER_COLS ") VALUES "
                      "($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    [PG_MEMBER_FIND] = "SELECT " PG_MEMBER_COLS " FROM members "
                       "WHERE account = $1::text OR email_hash = $2::text "
                       "OR phone_hash = $3::text "
                       "ORDER BY CASE WHEN account = $1::text THEN 0 "
                       "WHEN email_hash = $2::text THEN 1 ELSE 2 END LIMIT 1",
    [PG_MEMBER_GET] = "SELECT " PG_MEMBER_COLS " FROM members WHERE uuid = $1",
    [PG_MEMBER_FAILED] = "UPDATE members SET "
                         "failed_logins = CASE WHEN failed_logins + 1 >= $2::integer THEN 0 "
                         "ELSE failed_logins + 1 END, "
                         "locked_until = CASE WHEN failed_logins + 1 >= $2::integer "
                         "THEN $3::bigint + $4::bigint ELSE locked_until END "
                         "WHERE uuid = $1 RETURNING failed_logins",
    [PG_MEMBER_OK] = "UPDATE members SET failed_logins = 0, locked_until = 0 WHERE uuid = $1",
    [PG_MEMBER_PASSWORD] = "UPDATE members SET password_hash = $2 WHERE uuid = $1",
    [PG_ORG_ADD] = "INSERT INTO organisations (ubn, name, created_at) VALUES ($1, $2, $3)",
    [PG_ORG_GET] = "SELECT ubn, name, created_at FROM organisations WHERE ubn = $1",
    [PG_ORG_MEMBER_ADD] = "INSERT INTO org_members (ubn, uuid, role, created_at) "
                          "VALUES ($1, $2, $3, $4)",
    [PG_ORG_MEMBER_ROLE] = "SELECT role FROM org_members WHERE ubn = $1 AND uuid = $2",
    [PG_CONSENT_GET] = "SELECT scope FROM consents WHERE uuid = $1 AND client_id = $2",
    [PG_CONSENT_PUT] = "INSERT INTO consents (uuid, client_id, scope, created_at, updated_at) "
                       "VALUES ($1, $2, $3, $4, $4) ON CONFLICT (uuid, client_id) DO UPDATE "
                       "SET scope = excluded.scope, updated_at = excluded.updated_at",
    [PG_CONSENT_DELETE] = "DELETE FROM consents WHERE uuid = $1 AND client_id = $2",
    [PG_TOKEN_ADD] = "INSERT INTO tokens (" PG_TOKEN_COLS ") VALUES "
                     "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    [PG_TOKEN_GET] = "SELECT " PG_TOKEN_COLS " FROM tokens WHERE hash = $1 AND expires_at > $2",
    /* Under READ COMMITTED a racing UPDATE waits for the first and then
     * re-checks used = 0 on the row it left: only one caller wins. */
    [PG_TOKEN_USE] = "UPDATE tokens SET used = 1 WHERE hash = $1 AND used = 0 AND revoked = 0 "
                     "AND expires_at > $2",
    [PG_TOKEN_REVOKE] = "UPDATE tokens SET revoked = 1 WHERE hash = $1",
    [PG_TOKEN_REVOKE_GRANT] = "UPDATE tokens SET revoked = 1 WHERE grant_id = $1",
    [PG_TOKEN_REVOKE_PERSON] = "UPDATE tokens SET revoked = 1 WHERE uuid = $1",
    [PG_TOKEN_REVOKE_CLIENT_PERSON] =
        "UPDATE tokens SET revoked = 1 WHERE client_id = $1 AND uuid = $2",
    /* A put replaces the object, counter included. */
    [PG_EPH_PUT] = "INSERT INTO eph (kind, id, data, counter, expires_at) "
                   "VALUES ($1, $2, $3, 0, $4) ON CONFLICT (kind, id) DO UPDATE SET "
                   "data = excluded.data, counter = 0, expires_at = excluded.expires_at",
    [PG_EPH_GET] = "SELECT data, counter FROM eph WHERE kind = $1 AND id = $2 "
                   "AND expires_at > $3",
    [PG_EPH_COUNT] = "SELECT COUNT(*) FROM eph WHERE kind = $1 AND expires_at > $2",
    [PG_EPH_UPDATE] = "UPDATE eph SET data = $3 WHERE kind = $1 AND id = $2 "
                      "AND expires_at > $4",
    [PG_EPH_DELETE] = "DELETE FROM eph WHERE kind = $1 AND id = $2",
    [PG_EPH_TAKE] = "DELETE FROM eph WHERE kind = $1 AND id = $2 AND expires_at > $3",
    /* An expired row left for purge starts again from one. */
    [PG_EPH_INCR] = "INSERT INTO eph (kind, id, data, counter, expires_at) "
                    "VALUES ($1, $2, '{}', 1, $4::bigint) ON CONFLICT (kind, id) DO UPDATE SET "
                    "counter = CASE WHEN eph.expires_at > $3::bigint THEN eph.counter + 1 "
                    "ELSE 1 END, "
                    "data = CASE WHEN eph.expires_at > $3::bigint THEN eph.data ELSE '{}' END, "
                    "expires_at = CASE WHEN eph.expires_at > $3::bigint THEN eph.expires_at "
                    "ELSE excluded.expires_at END RETURNING counter",
    [PG_EPH_BUMP] = "UPDATE eph SET counter = counter + 1 WHERE kind = $1 AND id = $2 "
                    "AND expires_at > $3 RETURNING counter",
    /* A hit stamped in an older window (another node's clock) counts in
     * the newer one: windows only move forward. */
    [PG_RATE_HIT] = "INSERT INTO rate (key, window_start, count, expires_at) "
                    "VALUES ($1, $2, 1, $3) ON CONFLICT (key) DO UPDATE SET "
                    "count = CASE WHEN rate.window_start >= excluded.window_start "
                    "THEN rate.count + 1 ELSE 1 END, "
                    "window_start = GREATEST(rate.window_start, excluded.window_start), "
                    "expires_at = GREATEST(rate.expires_at, excluded.expires_at) "
                    "RETURNING count",
    /* Levels drain one per millisecond since updated_at; a clock that went
     * back drains nothing. A held bucket (next_at > now) counts nothing. */
    [PG_THROTTLE_GET] = "SELECT GREATEST(0, level - GREATEST(0, $2::bigint - updated_at)), "
                        "next_at FROM throttle WHERE key = $1 AND expires_at > $2::bigint",
    [PG_THROTTLE_TAKE] =
        "INSERT INTO throttle (key, level, updated_at, next_at, expires_at) "
        "VALUES ($1, LEAST($3::bigint, $4::bigint), $2::bigint, 0, $5::bigint) "
        "ON CONFLICT (key) DO UPDATE SET "
        "level = CASE WHEN throttle.next_at > $2::bigint THEN throttle.level "
        "ELSE LEAST($4::bigint, GREATEST(0, throttle.level - "
        "GREATEST(0, $2::bigint - throttle.updated_at)) + $3::bigint) END, "
        "updated_at = CASE WHEN throttle.next_at > $2::bigint THEN throttle.updated_at "
        "ELSE GREATEST(throttle.updated_at, $2::bigint) END, "
        "expires_at = CASE WHEN throttle.next_at > $2::bigint THEN throttle.expires_at "
        "ELSE GREATEST(throttle.expires_at, $5::bigint) END "
        "RETURNING level, next_at",
    [PG_THROTTLE_HOLD] = "UPDATE throttle SET next_at = GREATEST(next_at, $2::bigint), "
                         "expires_at = GREATEST(expires_at, $2::bigint) WHERE key = $1",
    [PG_THROTTLE_GIVE] =
        "UPDATE throttle SET "
        "level = GREATEST(0, level - GREATEST(0, $2::bigint - updated_at) - $3::bigint), "
        "updated_at = GREATEST(updated_at, $2::bigint), "
        "next_at = LEAST(next_at, $2::bigint) WHERE key = $1",
    [PG_THROTTLE_CLEAR] = "DELETE FROM throttle WHERE key = $1",
    [PG_KEY_ADD] = "INSERT INTO signing_keys (" PG_KEY_COLS ") VALUES ($1, $2, $3, $4, $5)",
    [PG_KEY_PAGE] = "SELECT " PG_KEY_COLS " FROM signing_keys "
                    "WHERE $3::boolean OR (created_at, kid) < ($1::bigint, $2::text) "
                    "ORDER BY created_at DESC, kid DESC LIMIT $4::bigint",
    [PG_KEY_ACTIVE] = "UPDATE signing_keys SET active = $2 WHERE kid = $1",
    [PG_AUDIT_LAST] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [PG_AUDIT_ADD] = "INSERT INTO audit (seq, ts, event, data, prev_hash, hash) "
                     "VALUES ($1, $2, $3, $4, $5, $6)",
    [PG_AUDIT_PAGE] = "SELECT seq, ts, event, data, prev_hash, hash FROM audit "
                      "WHERE seq > $1 ORDER BY seq LIMIT $2::bigint",
    [PG_JOB_ADD] = "INSERT INTO jobs (id, kind, data, attempts, run_at, lease_owner, "
                   "lease_until, created_at, expires_at) VALUES ($1, $2, $3, 0, $5, NULL, 0, "
                   "$4, $6)",
    /* The pick locks its row and skips rows another claimant holds; the
     * outer condition is checked again on the locked row. */
    [PG_JOB_CLAIM] = "UPDATE jobs SET lease_owner = $2, lease_until = $3::bigint + $4::bigint, "
                     "attempts = attempts + 1 WHERE id = (SELECT id FROM jobs "
                     "WHERE kind = $1 AND run_at <= $3::bigint AND lease_until <= $3::bigint "
                     "AND expires_at > $3::bigint ORDER BY run_at LIMIT 1 "
                     "FOR UPDATE SKIP LOCKED) AND lease_until <= $3::bigint "
                     "RETURNING id, kind, data, attempts, created_at, expires_at",
    [PG_JOB_DONE] = "DELETE FROM jobs WHERE id = $1 AND lease_owner = $2",
    [PG_JOB_RETRY] = "UPDATE jobs SET run_at = $3, lease_owner = NULL, lease_until = 0 "
                     "WHERE id = $1 AND lease_owner = $2",
    /* The outer test again: a row another node revived (its expiry
     * pushed on) after this statement's snapshot must not go. */
    [PG_PURGE_TOKENS] =
        "DELETE FROM tokens WHERE hash IN "
        "(SELECT hash FROM tokens WHERE expires_at <= $1 LIMIT $2::bigint) AND expires_at <= $1",
    [PG_PURGE_EPH] =
        "DELETE FROM eph WHERE (kind, id) IN "
        "(SELECT kind, id FROM eph WHERE expires_at <= $1 LIMIT $2::bigint) AND expires_at <= $1",
    [PG_PURGE_RATE] =
        "DELETE FROM rate WHERE key IN "
        "(SELECT key FROM rate WHERE expires_at <= $1 LIMIT $2::bigint) AND expires_at <= $1",
    [PG_PURGE_JOBS] =
        "DELETE FROM jobs WHERE id IN "
        "(SELECT id FROM jobs WHERE expires_at <= $1 LIMIT $2::bigint) AND expires_at <= $1",
    [PG_PURGE_THROTTLE] =
        "DELETE FROM throttle WHERE key IN "
        "(SELECT key FROM throttle WHERE expires_at <= $1 LIMIT $2::bigint) AND expires_at <= $1",
    [PG_DEVICE_ADD] = "INSERT INTO devices (" PG_DEVICE_COLS ") "
                      "VALUES ($1, $2, $3, $4, $5, $6, $7)",
    [PG_DEVICE_GET] = "SELECT " PG_DEVICE_COLS " FROM devices WHERE id = $1",
    [PG_DEVICE_LIST] = "SELECT " PG_DEVICE_COLS " FROM devices WHERE uuid = $1 "
                       "ORDER BY created_at, id LIMIT $2::bigint",
    [PG_DEVICE_USE] = "UPDATE devices SET last_used_at = $2 WHERE id = $1 AND revoked_at = 0",
    [PG_DEVICE_REVOKE] = "UPDATE devices SET revoked_at = $3 "
                         "WHERE uuid = $1 AND id = $2 AND revoked_at = 0",
    [PG_DEVICE_REVOKE_ALL] =
        "UPDATE devices SET revoked_at = $2 WHERE uuid = $1 AND revoked_at = 0",
};

static const char pg_bootstrap_sql[] = "CREATE TABLE IF NOT EXISTS schema_version ("
                                       "version INTEGER PRIMARY KEY, "
                                       "applied_at BIGINT NOT NULL)";

struct pg_conn {
	PGconn *db;
	bool prepared[PG_COUNT];
	struct pg_conn *next;
};

struct pg_backend {
	struct store_backend base;
	char *conninfo;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pg_conn *idle; /* connections not in use */
	unsigned int n_conns; /* open connections, idle or not */
};

/* Bound parameters, all in text format. */
struct pg_params {
	int n;
	const char *v[PG_MAX_PARAMS];
	char buf[PG_MAX_PARAMS][24];
};

static void
pp_text(struct pg_params *p, const char *s)
{
	if (p->n >= PG_MAX_PARAMS)
		abort();
	p->v[p->n++] = s;
}

static void
pp_int(struct pg_params *p, int64_t v)
{
	if (p->n >= PG_MAX_PARAMS)
		abort();
	snprintf(p->buf[p->n], sizeof(p->buf[p->n]), "%" PRId64, v);
	p->v[p->n] = p->buf[p->n];
	p->n++;
}

static void
pp_bool(struct pg_params *p, bool v)
{
	pp_text(p, v ? "t" : "f");
}

/* ---- connections ---- */

static void
pg_conn_close(struct pg_conn *c)
{
	if (c == NULL)
		return;
	PQfinish(c->db);
	free(c);
}

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

static int
pg_conn_open(struct pg_backend *b, struct pg_conn **conn_r, const char **error_r)
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
	const char *const values[] = {PG_CONNECT_WAIT, "issod",     "UTF8", "1", "30", "10", "3",
	                              "30000",         b->conninfo, NULL};
	struct pg_conn *c = xcalloc(1, sizeof(*c));
	PGresult *res = NULL;
	int ret = 0;

	*conn_r = NULL;
	c->db = PQconnectdbParams(keys, values, 1);
	if (c->db == NULL) {
		*error_r = "cannot connect to postgresql: out of memory";
		ret = ISSO_ERR_STORE;
		goto out;
	}
	if (PQstatus(c->db) != CONNECTION_OK) {
		*error_r =
		    store_error_fmt("cannot connect to postgresql: %s", PQerrorMessage(c->db));
		ret = ISSO_ERR_STORE;
		goto out;
	}
	PQsetNoticeProcessor(c->db, pg_notice, NULL);
	/* Times and counters are plain integers; nothing depends on the
	 * session's time zone. Quiet notices ("already exists, skipping"). */
	res = PQexec(c->db, "SET client_min_messages = warning");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		*error_r = store_error_fmt("cannot configure the postgresql session: %s",
		                           PQerrorMessage(c->db));
		ret = ISSO_ERR_STORE;
		goto out;
	}
	*conn_r = c;
	c = NULL;
out:
	PQclear(res);
	pg_conn_close(c);
	return ret;
}

/* True when an idle connection is still usable: a server that restarted
 * or ended the session has left an error and EOF on the socket, which
 * reading now turns into CONNECTION_BAD. */
static bool
pg_conn_alive(struct pg_conn *c)
{
	if (PQstatus(c->db) != CONNECTION_OK)
		return false;
	if (PQconsumeInput(c->db) == 0)
		return false;
	return PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) == PQTRANS_IDLE;
}

/* Takes a connection from the pool, opening one when none is idle and the
 * pool is not full, else waiting for one. */
static int
pg_acquire_conn(struct pg_backend *b, struct pg_conn **conn_r, bool *reused_r)
{
	struct pg_conn *c = NULL;
	const char *error = NULL;
	int ret = 0;

	*conn_r = NULL;
	*reused_r = false;
	pthread_mutex_lock(&b->lock);
	for (;;) {
		while (b->idle == NULL && b->n_conns >= PG_MAX_CONNS)
			pthread_cond_wait(&b->cond, &b->lock);
		if (b->idle == NULL)
			break;
		c = b->idle;
		b->idle = c->next;
		c->next = NULL;
		if (pg_conn_alive(c)) {
			pthread_mutex_unlock(&b->lock);
			*conn_r = c;
			*reused_r = true;
			return 0;
		}
		/* Lost while idle: drop it and look again. */
		b->n_conns--;
		pg_conn_close(c);
		c = NULL;
	}
	b->n_conns++;
	pthread_mutex_unlock(&b->lock);

	ret = pg_conn_open(b, &c, &error);
	if (ret < 0) {
		log_error("store_pgsql_connect", "error", error, NULL);
		pthread_mutex_lock(&b->lock);
		b->n_conns--;
		pthread_cond_signal(&b->cond);
		pthread_mutex_unlock(&b->lock);
	}
	*conn_r = c;
	return ret;
}

/* Gives a connection back; a broken one, or one left inside a
 * transaction, is closed instead (the next caller connects again). */
static void
pg_release(struct pg_backend *b, struct pg_conn *c)
{
	bool keep;

	if (c == NULL)
		return;
	keep = PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) == PQTRANS_IDLE;
	pthread_mutex_lock(&b->lock);
	if (keep) {
		c->next = b->idle;
		b->idle = c;
	} else {
		b->n_conns--;
	}
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
	if (!keep)
		pg_conn_close(c);
}

static int
pg_acquire(struct pg_backend *b, struct pg_conn **conn_r)
{
	bool reused;

	return pg_acquire_conn(b, conn_r, &reused);
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

/* Runs a fixed statement without parameters (BEGIN, COMMIT, LOCK …). */
static int
pg_plain(struct pg_conn *c, const char *sql, const char *op)
{
	PGresult *res = PQexec(c->db, sql);
	ExecStatusType s = PQresultStatus(res);
	int ret = 0;

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
		ret = pg_error(c, res, op);
	PQclear(res);
	return ret;
}

static void
pg_rollback(struct pg_conn *c)
{
	if (c != NULL && PQstatus(c->db) == CONNECTION_OK &&
	    PQtransactionStatus(c->db) != PQTRANS_IDLE)
		(void)pg_plain(c, "ROLLBACK", "rollback");
}

/* Runs statement id on c with params p. *res_r (may be NULL) gets the
 * result (free with PQclear), *changes_r (may be NULL) the rows changed
 * or returned. */
static int
pg_run(struct pg_conn *c, enum pg_id id, const struct pg_params *p, const char *op,
       PGresult **res_r, int *changes_r)
{
	char name[16];
	PGresult *res = NULL;
	ExecStatusType s;
	int ret = 0;

	if (res_r != NULL)
		*res_r = NULL;
	if (changes_r != NULL)
		*changes_r = 0;
	snprintf(name, sizeof(name), "s%d", (int)id);
	if (!c->prepared[id]) {
		res = PQprepare(c->db, name, pg_sql[id], 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			ret = pg_error(c, res, op);
			goto out;
		}
		PQclear(res);
		res = NULL;
		c->prepared[id] = true;
	}
	res = PQexecPrepared(c->db, name, p != NULL ? p->n : 0, p != NULL ? p->v : NULL, NULL, NULL,
	                     0);
	s = PQresultStatus(res);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		ret = pg_error(c, res, op);
		goto out;
	}
	if (changes_r != NULL) {
		const char *n = PQcmdTuples(res);
		long v = 0;

		if (n != NULL && n[0] != '\0') {
			errno = 0;
			v = strtol(n, NULL, 10);
			if (errno != 0 || v < 0 || v > INT32_MAX)
				v = 0;
		}
		*changes_r = (int)v;
	}
	if (res_r != NULL) {
		*res_r = res;
		res = NULL;
	}
out:
	PQclear(res);
	return ret;
}

/* True when every text parameter is valid UTF-8, which the server
 * requires of text. */
static bool
pg_params_valid(const struct pg_params *p)
{
	for (int i = 0; p != NULL && i < p->n; i++) {
		if (p->v[i] != NULL && !utf8_valid(p->v[i], strlen(p->v[i])))
			return false;
	}
	return true;
}

/* One statement on a pooled connection. */
static int
pg_query(struct pg_backend *b, enum pg_id id, const struct pg_params *p, const char *op,
         PGresult **res_r, int *changes_r)
{
	struct pg_conn *c = NULL;
	bool reused, lost;
	int ret, attempt;

	/* A key that is not UTF-8 (hostile input) names no stored row, as on
	 * SQLite: lookups and changes find nothing; only a new row is refused. */
	if (!pg_params_valid(p)) {
		if (changes_r != NULL)
			*changes_r = 0;
		if (strncmp(pg_sql[id], "INSERT", 6) == 0) {
			if (res_r != NULL)
				*res_r = NULL;
			return ISSO_ERR_INVALID;
		}
		if (res_r != NULL) {
			*res_r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
			if (*res_r == NULL)
				return ISSO_ERR_NOMEM;
		}
		return 0;
	}

	for (attempt = 0;; attempt++) {
		ret = pg_acquire_conn(b, &c, &reused);
		if (ret == 0)
			ret = pg_run(c, id, p, op, res_r, changes_r);
		lost = ret < 0 && c != NULL && PQstatus(c->db) != CONNECTION_OK;
		pg_release(b, c);
		c = NULL;
		/* A pooled connection the server ended while it was idle (a
		 * restart) fails on first use: once more on a new one. Only a
		 * read is run again: a change may have been committed before
		 * the connection dropped, and a second run would count twice or
		 * find its one-time token already used. */
		if (!lost || !reused || attempt > 0 || strncmp(pg_sql[id], "SELECT", 6) != 0)
			break;
		log_info("store_pgsql_reconnect", "op", op, NULL);
	}
	return ret;
}

static char *
pg_col_text(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return xstrdup(PQgetvalue(res, row, col));
}

/* Integers come back as decimal text; NULL or garbage reads as 0. */
static int64_t
pg_col_int(const PGresult *res, int row, int col)
{
	const char *s;
	char *end = NULL;
	long long v;

	if (PQgetisnull(res, row, col))
		return 0;
	s = PQgetvalue(res, row, col);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return 0;
	return (int64_t)v;
}

static const char *
pg_col_raw(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* ---- open, migrations, close ---- */

static int
pg_version(struct pg_conn *c, int *version_r)
{
	PGresult *res = NULL;
	int ret;

	*version_r = 0;
	ret = pg_run(c, PG_VERSION, NULL, "schema_version", &res, NULL);
	if (ret == 0 && PQntuples(res) == 1)
		*version_r = (int)pg_col_int(res, 0, 0);
	PQclear(res);
	return ret;
}

/* Applies one migration in its own transaction unless the database is
 * already at or past it (checked under the migration lock, so two
 * processes opening at once apply it once). DDL is transactional: a
 * migration that fails leaves nothing of itself. */
static int
pg_migrate_one(struct pg_conn *c, const struct store_migration *m, const char **error_r)
{
	struct pg_params p = {0};
	PGresult *res = NULL;
	char *sql = NULL;
	int ret, version;

	ret = pg_plain(c, "BEGIN", "migrate");
	if (ret == 0)
		ret = pg_plain(c, PG_MIGRATE_LOCK, "migrate");
	if (ret < 0) {
		*error_r = store_error_fmt("cannot lock the database for %s", m->path);
		goto out;
	}
	ret = pg_version(c, &version);
	if (ret < 0 || version >= m->version)
		goto out;
	ret = store_migration_read(m, &sql, error_r);
	if (ret < 0)
		goto out;
	/* The file's own statements, several in one simple query. */
	res = PQexec(c->db, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		*error_r = store_error_fmt("migration %s failed: %s", m->path,
		                           msg != NULL ? msg : PQerrorMessage(c->db));
		ret = ISSO_ERR_STORE;
		goto out;
	}
	pp_int(&p, m->version);
	pp_int(&p, (int64_t)time(NULL));
	ret = pg_run(c, PG_VERSION_ADD, &p, "migrate", NULL, NULL);
	if (ret < 0)
		goto out;
	ret = pg_plain(c, "COMMIT", "migrate");
	if (ret == 0)
		log_info("store_migrated", "file", m->path, NULL);
out:
	if (ret < 0 && *error_r == NULL)
		*error_r = store_error_fmt("migration %s failed", m->path);
	pg_rollback(c);
	PQclear(res);
	free(sql);
	return ret;
}

static int
pg_migrate(struct pg_backend *b, const char *migrations_dir, const char **error_r)
{
	struct store_migration *list = NULL;
	struct pg_conn *c = NULL;
	size_t count = 0, i;
	int ret, version, latest;

	ret = store_migrations_scan(migrations_dir, "postgresql", &list, &count, error_r);
	if (ret < 0)
		goto out;
	ret = pg_conn_open(b, &c, error_r);
	if (ret < 0)
		goto out;
	ret = pg_plain(c, "BEGIN", "migrate");
	if (ret == 0)
		ret = pg_plain(c, PG_MIGRATE_LOCK, "migrate");
	if (ret == 0)
		ret = pg_plain(c, pg_bootstrap_sql, "migrate");
	if (ret == 0)
		ret = pg_plain(c, "COMMIT", "migrate");
	if (ret < 0) {
		*error_r =
		    store_error_fmt("cannot create schema_version: %s", PQerrorMessage(c->db));
		goto out;
	}
	for (i = 0; i < count; i++) {
		ret = pg_migrate_one(c, &list[i], error_r);
		if (ret < 0)
			goto out;
	}
	ret = pg_version(c, &version);
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
	pg_rollback(c);
	pg_conn_close(c);
	store_migrations_free(list, count);
	return ret;
}

static void
pg_close(struct store_backend *base)
{
	struct pg_backend *b = (struct pg_backend *)base;
	struct pg_conn *c;

	if (b == NULL)
		return;
	pthread_mutex_lock(&b->lock);
	while ((c = b->idle) != NULL) {
		b->idle = c->next;
		b->n_conns--;
		pg_conn_close(c);
	}
	if (b->n_conns != 0)
		log_error("store_pgsql_close_busy", "detail",
		          "store closed while connections were in use", NULL);
	pthread_mutex_unlock(&b->lock);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	if (b->conninfo != NULL)
		xfree_secret(b->conninfo); /* may hold a password */
	free(b);
}

static int
pg_open(const char *dsn, const char *migrations_dir, struct store_backend **backend_r,
        const char **error_r)
{
	struct pg_backend *b = NULL;
	int ret = 0;

	*backend_r = NULL;
	if (PQisthreadsafe() == 0) {
		*error_r = "libpq was built without thread support";
		ret = ISSO_ERR_STORE;
		goto out;
	}
	if (dsn[0] == '\0') {
		*error_r = "store.conninfo: empty";
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	b = xcalloc(1, sizeof(*b));
	b->base.driver = &store_driver_pgsql;
	b->conninfo = xstrdup(dsn);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	ret = pg_migrate(b, migrations_dir, error_r);
	if (ret < 0)
		goto out;
	*backend_r = &b->base;
	b = NULL;
out:
	pg_close(b != NULL ? &b->base : NULL);
	return ret;
}

static int
pg_schema_version(struct store_backend *base, int *version_r)
{
	struct pg_backend *b = (struct pg_backend *)base;
	struct pg_conn *c = NULL;
	int ret;

	*version_r = 0;
	ret = pg_acquire(b, &c);
	if (ret == 0)
		ret = pg_version(c, version_r);
	pg_release(b, c);
	return ret;
}

/* A statement whose parameters are all texts, run for its effect. */
static int
pg_simple(struct pg_backend *b, enum pg_id id, const char *op, int *changes_r, int n,
          const char *t1, const char *t2)
{
	struct pg_params p = {0};

	pp_text(&p, t1);
	if (n > 1)
		pp_text(&p, t2);
	return pg_query(b, id, &p, op, NULL, changes_r);
}

/* ---- clients ---- */

static char *
pg_json_text(const json_t *j, const char *dflt)
{
	if (j == NULL)
		return dflt != NULL ? xstrdup(dflt) : NULL;
	return json_dumps(j, JSON_COMPACT);
}

static int
pg_client_add(struct store_backend *base, const struct store_client *cl)
{
	struct pg_backend *b = (struct pg_backend *)base;
	struct pg_params p = {0};
	char *uris = NULL, *logout_uris = NULL, *jwks = NULL, *settings = NULL;
	int ret;

	uris = pg_json_text(cl->redirect_uris, "[]");
	logout_uris = pg_json_text(cl->post_logout_redirect_uris, "[]");
	jwks = pg_json_text(cl->jwks, NULL);
	settings = pg_json_text(cl->settings, "{}");
	if (uris == NULL || logout_uris == NULL || settings == NULL ||
	    (cl->jwks != NULL && jwks == NULL)) {
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	pp_text(&p, cl->client_id);
	pp_text(&p, cl->secret_hash);
	pp_text(&p, cl->name);
	pp_text(&p, cl->purpose);
	pp_text(&p, uris);
	pp_text(&p, logout_uris);
	pp_text(&p, cl->backchannel_logout_uri);
	pp_text(&p, cl->scope != NULL ? cl->scope : "");
	pp_int(&p, cl->public_client ? 1 : 0);
	pp_text(&p, cl->id_token_alg);
	pp_text(&p, cl->auth_method);
	pp_text(&p, cl->jwks_uri);
	pp_text(&p, jwks);
	pp_int(&p, cl->status);
	pp_int(&p, cl->created_at);
	pp_text(&p, cl->grant_types != NULL ? cl->grant_types : STORE_CLIENT_DEFAULT_GRANTS);
	pp_text(&p, settings);
	ret = pg_query(b, PG_CLIENT_ADD, &p, "client_add", NULL, NULL);
out:
	free(uris);
	free(logout_uris);
	free(jwks);
	free(settings);
	return ret;
}

static int
pg_client_row(const PGresult *res, int r, struct store_client **client_r)
{
	struct store_client *cl = xcalloc(1, sizeof(*cl));
	int ret;

	*client_r = NULL;
	cl->client_id = pg_col_text(res, r, 0);
	cl->secret_hash = pg_col_text(res, r, 1);
	cl->name = pg_col_text(res, r, 2);
	cl->purpose = pg_col_text(res, r, 3);
	cl->backchannel_logout_uri = pg_col_text(res, r, 6);
	cl->scope = pg_col_text(res, r, 7);
	cl->public_client = pg_col_int(res, r, 8) != 0;
	cl->id_token_alg = pg_col_text(res, r, 9);
	cl->auth_method = pg_col_text(res, r, 10);
	cl->jwks_uri = pg_col_text(res, r, 11);
	cl->status = (int)pg_col_int(res, r, 13);
	cl->created_at = pg_col_int(res, r, 14);
	cl->grant_types = pg_col_text(res, r, 15);
	ret = store_json_parse(pg_col_raw(res, r, 4), JSON_ARRAY, &cl->redirect_uris);
	if (ret == 0)
		ret = store_json_parse(pg_col_raw(res, r, 5), JSON_ARRAY,
		                       &cl->post_logout_redirect_uris);
	if (ret == 0)
		ret = store_json_parse(pg_col_raw(res, r, 12), JSON_OBJECT, &cl->jwks);
	if (ret == 0)
		ret = store_json_parse(pg_col_raw(res, r, 16), JSON_OBJECT, &cl->settings);
	if (ret == 0 && (cl->redirect_uris == NULL || cl->post_logout_redirect_uris == NULL ||
	                 cl->settings == NULL))
		ret = ISSO_ERR_STORE;
	if (ret < 0) {
		log_error("store_pgsql_corrupt", "table", "clients", NULL);
		store_client_free(cl);
		return ret;
	}
	*client_r = cl;
	return 0;
}

static int
pg_client_get(struct store_backend *base, const char *client_id, struct store_client **client_r)
{
	struct pg_params p = {0};
	PGresult *res = NULL;
	int ret;

	pp_text(&p, client_id);
	ret = pg_query((struct pg_backend *)base, PG_CLIENT_GET, &p, "client_get", &res, NULL);
	if (ret == 0 && PQntuples(res) > 0)
		ret = pg_client_row(res, 0, client_r);
	PQclear(res);
	return ret;
}

/* Reads up to PG_PAGE clients after (created_at, client_id) into page;
 * the connection is given back before any callback runs, so a callback may
 * use the store itself. */
static int
pg_client_page(struct pg_backend *b, bool first, int64_t created_at, const char *client_id,
               struct store_client **page, size_t *n_r)
{
	struct pg_params p = {0};
	PGresult *res = NULL;
	size_t n = 0;
	int ret, rows, i;

	pp_int(&p, created_at);
	pp_text(&p, client_id != NULL ? client_id : "");
	pp_bool(&p, first);
	pp_int(&p, PG_PAGE);
	ret = pg_query(b, PG_CLIENT_PAGE, &p, "client_list", &res, NULL);
	rows = ret == 0 ? PQntuples(res) : 0;
	for (i = 0; i < rows && i < PG_PAGE; i++) {
		ret = pg_client_row(res, i, &page[n]);
		if (ret < 0)
			break;
		n++;
	}
	PQclear(res);
	*n_r = n;
	return ret;
}

static int
pg_client_list(struct store_backend *base, int (*fn)(const struct store_client *c, void *ctx),
               void *ctx)
{
	struct pg_backend *b = (struct pg_backend *)base;
	struct store_client *page[PG_PAGE];
	int64_t last_created = 0;
	char *last_id = NULL;
	bool first = true;
	size_t n = 0, i;
	int ret = 0;

	do {
		ret = pg_client_page(b, first, last_created, last_id, page, &n);
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
	} while (ret == 0 && n == PG_PAGE);
	free(last_id);
	return ret;
}

static int
pg_client_set_status(struct store_backend *base, const char *client_id, int status)
{
	struct pg_params p = {0};

	pp_text(&p, client_id);
	pp_int(&p, status);
	return pg_query((struct pg_backend *)base, PG_CLIENT_STATUS, &p, "client_set_status", NULL,
	                NULL);
}

static int
pg_client_set_secret(struct store_backend *base, const char *client_id, const char *secret_hash)
{
	/* A NULL secret_hash (public client) is bound as NULL. */
	return pg_simple((struct pg_backend *)base, PG_CLIENT_SECRET, "client_set_secret", NULL, 2,
	                 client_id, secret_hash);
}

static int
pg_client_set_settings(struct store_backend *base, const char *client_id, const char *settings)
{
	return pg_simple((struct pg_backend *)base, PG_CLIENT_SETTINGS, "client_set_settings", NULL,
	                 2, client_id, settings);
}

/* ---- persons ---- */

static int
pg_person_add(struct store_backend *base, const struct store_person *pe)
{
	struct pg_params p = {0};

	pp_text(&p, pe->uuid);
	pp_text(&p, pe->id_hash);
	pp_text(&p, pe->pii);
	pp_int(&p, pe->created_at);
	pp_int(&p, pe->updated_at != 0 ? pe->updated_at : pe->created_at);
	return pg_query((struct pg_backend *)base, PG_PERSON_ADD, &p, "person_add", NULL, NULL);
}

static int
pg_person_lookup(struct pg_backend *b, enum pg_id id, const char *key,
                 struct store_person **person_r)
{
	struct store_person *pe;
	struct pg_params p = {0};
	PGresult *res = NULL;
	int ret;

	pp_text(&p, key);
	ret = pg_query(b, id, &p, "person_get", &res, NULL);
	if (ret == 0 && PQntuples(res) > 0) {
		pe = xcalloc(1, sizeof(*pe));
		pe->uuid = pg_col_text(res, 0, 0);
		pe->id_hash = pg_col_text(res, 0, 1);
		pe->pii = pg_col_text(res, 0, 2);
		pe->created_at = pg_col_int(res, 0, 3);
		pe->updated_at = pg_col_int(res, 0, 4);
		*person_r = pe;
	}
	PQclear(res);
	return ret;
}

static int
pg_person_get(struct store_backend *base, const char *uuid, struct store_person **person_r)
{
	return pg_person_lookup((struct pg_backend *)base, PG_PERSON_GET, uuid, person_r);
}

static int
pg_person_find_by_id_hash(struct store_backend *base, const char *id_hash,
                          struct store_person **person_r)
{
	return pg_person_lookup((struct pg_backend *)base, PG_PERSON_BY_ID_HASH, id_hash, person_r);
}

static int
pg_person_update(struct store_backend *base, const char *uuid, const char *id_hash, const char *pii,
                 int64_t now)
{
	struct pg_params p = {0};

	pp_text(&p, uuid);
	pp_text(&p, id_hash);
	pp_text(&p, pii);
	pp_int(&p, now);
	return pg_query((struct pg_backend *)base, PG_PERSON_UPDATE, &p, "person_update", NULL,
	                NULL);
}

static int
pg_person_delete(struct store_backend *base, const char *uuid)
{
	struct pg_backend *b = (struct pg_backend *)base;
	struct store_person *still = NULL;
	int changes = 0, ret;

	ret = pg_simple(b, PG_PERSON_DELETE, "person_delete", &changes, 1, uuid, NULL);
	if (ret == 0 && changes == 0) {
		ret = pg_person_lookup(b, PG_PERSON_GET, uuid, &still);
		if (ret == 0 && still != NULL)
			ret = ISSO_ERR_CONFLICT;
		store_person_free(still);
	}
	return ret;
}

/* ---- members ---- */

static int
pg_member_add(struct store_backend *base, const struct store_member *m)
{
	struct pg_params p = {0};

	pp_text(&p, m->uuid);
	pp_text(&p, m->account);
	pp_text(&p, m->email_hash);
	pp_text(&p, m->phone_hash);
	pp_text(&p, m->password_hash);
	pp_int(&p, m->level);
	pp_int(&p, m->failed_logins);
	pp_int(&p, m->locked_until);
	pp_int(&p, m->created_at);
	return pg_query((struct pg_backend *)base, PG_MEMBER_ADD, &p, "member_add", NULL, NULL);
}

static struct store_member *
pg_member_row(const PGresult *res)
{
	struct store_member *m = xcalloc(1, sizeof(*m));

	m->uuid = pg_col_text(res, 0, 0);
	m->account = pg_col_text(res, 0, 1);
	m->email_hash = pg_col_text(res, 0, 2);
	m->phone_hash = pg_col_text(res, 0, 3);
	m->password_hash = pg_col_text(res, 0, 4);
	m->level = (int)pg_col_int(res, 0, 5);
	m->failed_logins = (int)pg_col_int(res, 0, 6);
	m->locked_until = pg_col_int(res, 0, 7);
	m->created_at = pg_col_int(res, 0, 8);
	return m;
}

static int
pg_member_query(struct pg_backend *b, enum pg_id id, const struct pg_params *p, const char *op,
                struct store_member **member_r)
{
	PGresult *res = NULL;
	int ret;

	ret = pg_query(b, id, p, op, &res, NULL);
	if (ret == 0 && PQntuples(res) > 0)
		*member_r = pg_member_row(res);
	PQclear(res);
	return ret;
}

static int
pg_member_find(struct store_backend *base, const char *account, const char *email_hash,
               const char *phone_hash, struct store_member **member_r)
{
	struct pg_params p = {0};

	pp_text(&p, account);
	pp_text(&p, email_hash);
	pp_text(&p, phone_hash);
	return pg_member_query((struct pg_backend *)base, PG_MEMBER_FIND, &p, "member_find",
	                       member_r);
}

static int
pg_member_get(struct store_backend *base, const char *uuid, struct store_member **member_r)
{
	struct pg_params p = {0};

	pp_text(&p, uuid);
	return pg_member_query((struct pg_backend *)base, PG_MEMBER_GET, &p, "member_get",
	                       member_r);
}

static int
pg_member_login_failed(struct store_backend *base, const char *uuid, int max_failures, int64_t now,
                       int lock_seconds, int *failures_r)
{
	struct pg_params p = {0};
	PGresult *res = NULL;
	int ret, count = -1;

	pp_text(&p, uuid);
	pp_int(&p, max_failures);
	pp_int(&p, now);
	pp_int(&p, lock_seconds);
	ret = pg_query((struct pg_backend *)base, PG_MEMBER_FAILED, &p, "member_login_failed", &res,
	               NULL);
	if (ret == 0 && PQntuples(res) > 0)
		count = (int)pg_col_int(res, 0, 0);
	PQclear(res);
	if (ret < 0)
		return ret;
	/* The stored count is reset on lockout: report the count reached. */
	if (count == 0)
		*failures_r = max_failures;
	else if (count > 0)
		*failures_r = count;
	return 0;
}

static int
pg_member_login_ok(struct store_backend *base, const char *uuid)
{
	return pg_simple((struct pg_backend *)base, PG_MEMBER_OK, "member_login_ok", NULL, 1, uuid,
	                 NULL);
}

static int
pg_member_set_password(struct store_backend *base, const char *uuid, const char *password_hash)
{
	return pg_simple((struct pg_backend *)base, PG_MEMBER_PASSWORD, "member_set_password", NULL,
	                 2, uuid, password_hash);
}

/* ---- organisations ---- */

static int
pg_org_add(struct store_backend *base, const struct store_org *org)
{
	struct pg_params p = {0};

	pp_text(&p, org->ubn);
	pp_text(&p, org->name);
	pp_int(&p, org->created_at);
	return pg_query((struct pg_backend *)base, PG_ORG_ADD, &p, "org_add", NULL, NULL);
}

static int
pg_org_get(struct store_backend *base, const char *ubn, struct store_org **org_r)
{
	struct pg_params p = {0};
	struct store_org *org;
	PGresult *res = NULL;
	int ret;

	pp_text(&p, ubn);
	ret = pg_query((struct pg_backend *)base, PG_ORG_GET, &p, "org_get", &res, NULL);
	if (ret == 0 && PQntuples(res) > 0) {
		org = xcalloc(1, sizeof(*org));
		org->ubn = pg_col_text(res, 0, 0);
		org->name = pg_col_text(res, 0, 1);
		org->created_at = pg_col_int(res, 0, 2);
		*org_r = org;
	}
	PQclear(res);
	return ret;
}

static int
pg_org_member_add(struct store_backend *base, const char *ubn, const char *uuid, const char *role,
                  int64_t now)
{
	struct pg_params p = {0};

	pp_text(&p, ubn);
	pp_text(&p, uuid);
	pp_text(&p, role);
	pp_int(&p, now);
	return pg_query((struct pg_backend *)base, PG_ORG_MEMBER_ADD, &p, "org_member_add", NULL,
	                NULL);
}

/* A statement of two text parameters returning at most one text. */
static int
pg_text2(struct pg_backend *b, enum pg_id id, const char *op, const char *t1, const char *t2,
         char **text_r)
{
	struct pg_params p = {0};
	PGresult *res = NULL;
	int ret;

	pp_text(&p, t1);
	pp_text(&p, t2);
	ret = pg_query(b, id, &p, op, &res, NULL);
	if (ret == 0 && PQntuples(res) > 0)
		*text_r = pg_col_text(res, 0, 0);
	PQclear(res);
	return ret;
}

static int
pg_org_member_role(struct store_backend *base, const char *ubn, const char *uuid, char **role_r)
{
	return pg_text2((struct pg_backend *)base, PG_ORG_MEMBER_ROLE, "org_member_role", ubn, uuid,
	                role_r);
}

/* ---- consents ---- */

static int
pg_consent_get(struct store_backend *base, const char *uuid, const char *client_id, char **scope_r)
{
	return pg_text2((struct pg_backend *)base, PG_CONSENT_GET, "consent_get", uuid, client_id,
	                scope_r);
}

static int
pg_consent_put(struct store_backend *base, const char *uuid, const char *client_id,
               const char *scope, int64_t now)
{
	struct pg_params p = {0};

	pp_text(&p, uuid);
	pp_text(&p, client_id);
	pp_text(&p, scope);
	pp_int(&p, now);
	return pg_query((struct pg_backend *)base, PG_CONSENT_PUT, &p, "consent_put", NULL, NULL);
}

static int
pg_consent_delete(struct store_backend *base, const char *uuid, const char *client_id)
{
	return pg_simple((struct pg_backend *)base, PG_CONSENT_DELETE, "consent_delete", NULL, 2,
	                 uuid, client_id);
}

/* ---- tokens ---- */

static int
pg_token_add(struct store_backend *base, const struct store_token *t)
{
	struct pg_params p = {0};
	char *data;
	int ret;

	data = pg_json_text(t->data, "{}");
	if (data == NULL)
		return ISSO_ERR_INVALID;
	pp_text(&p, t->hash);
	pp_int(&p, t->kind);
	pp_text(&p, t->grant_id);
	pp_text(&p, t->client_id);
	pp_text(&p, t->uuid);
	pp_text(&p, t->sid);
	pp_text(&p, t->scope);
	pp_text(&p, data);
	pp_int(&p, t->created_at);
	pp_int(&p, t->expires_at);
	pp_int(&p, t->used ? 1 : 0);
	pp_int(&p, t->revoked ? 1 : 0);
	ret = pg_query((struct pg_backend *)base, PG_TOKEN_ADD, &p, "token_add", NULL, NULL);
	free(data);
	return ret;
}

static int
pg_token_get(struct store_backend *base, const char *hash, int64_t now,
             struct store_token **token_r)
{
	struct store_token *t = NULL;
	struct pg_params p = {0};
	PGresult *res = NULL;
	int ret;

	pp_text(&p, hash);
	pp_int(&p, now);
	ret = pg_query((struct pg_backend *)base, PG_TOKEN_GET, &p, "token_get", &res, NULL);
	if (ret < 0 || PQntuples(res) == 0)
		goto out;
	t = xcalloc(1, sizeof(*t));
	t->hash = pg_col_text(res, 0, 0);
	t->kind = (int)pg_col_int(res, 0, 1);
	t->grant_id = pg_col_text(res, 0, 2);
	t->client_id = pg_col_text(res, 0, 3);
	t->uuid = pg_col_text(res, 0, 4);
	t->sid = pg_col_text(res, 0, 5);
	t->scope = pg_col_text(res, 0, 6);
	t->created_at = pg_col_int(res, 0, 8);
	t->expires_at = pg_col_int(res, 0, 9);
	t->used = pg_col_int(res, 0, 10) != 0;
	t->revoked = pg_col_int(res, 0, 11) != 0;
	ret = store_json_parse(pg_col_raw(res, 0, 7), JSON_OBJECT, &t->data);
	if (ret == 0 && t->data == NULL)
		ret = ISSO_ERR_STORE;
	if (ret < 0) {
		log_error("store_pgsql_corrupt", "table", "tokens", NULL);
		goto out;
	}
	*token_r = t;
	t = NULL;
out:
	PQclear(res);
	store_token_free(t);
	return ret;
}

static int
pg_token_use(struct store_backend *base, const char *hash, int64_t now, bool *won_r)
{
	struct pg_params p = {0};
	int ret, changes = 0;

	pp_text(&p, hash);
	pp_int(&p, now);
	ret = pg_query((struct pg_backend *)base, PG_TOKEN_USE, &p, "token_use", NULL, &changes);
	*won_r = ret == 0 && changes == 1;
	return ret;
}

static int
pg_token_revoke(struct store_backend *base, const char *hash)
{
	return pg_simple((struct pg_backend *)base, PG_TOKEN_REVOKE, "token_revoke", NULL, 1, hash,
	                 NULL);
}

static int
pg_token_revoke_grant(struct store_backend *base, const char *grant_id)
{
	return pg_simple((struct pg_backend *)base, PG_TOKEN_REVOKE_GRANT, "token_revoke_grant",
	                 NULL, 1, grant_id, NULL);
}

static int
pg_token_revoke_client_person(struct store_backend *base, const char *client_id, const char *uuid)
{
	return pg_simple((struct pg_backend *)base, PG_TOKEN_REVOKE_CLIENT_PERSON,
	                 "token_revoke_client_person", NULL, 2, client_id, uuid);
}

static int
pg_token_revoke_person(struct store_backend *base, const char *uuid)
{
	return pg_simple((struct pg_backend *)base, PG_TOKEN_REVOKE_PERSON, "token_revoke_person",
	                 NULL, 1, uuid, NULL);
}

/* ---- short-lived objects ---- */

static int
pg_eph_put(struct store_backend *base, const char *kind, const char *id, const char *data,
           int64_t expires_at)
{
	struct pg_params p = {0};

	pp_text(&p, kind);
	pp_text(&p, id);
	pp_text(&p, data);
	pp_int(&p, expires_at);
	return pg_query((struct pg_backend *)base, PG_EPH_PUT, &p, "eph_put", NULL, NULL);
}

static int
pg_eph_count(struct store_backend *base, const char *kind, int64_t now, int64_t *count_r)
{
	struct pg_backend *b = (struct pg_backend *)base;
	struct pg_params p = {0};
	PGresult *res = NULL;
	int ret;

	*count_r = 0;
	pp_text(&p, kind);
	pp_int(&p, now);
	ret = pg_query(b, PG_EPH_COUNT, &p, "eph_count", &res, NULL);
	if (ret == 0 && PQntuples(res) == 1)
		*count_r = pg_col_int(res, 0, 0);
	PQclear(res);
	return ret;
}

static int
pg_eph_get(struct store_backend *base, const char *kind, const char *id, int64_t now,
           json_t **data_r, int *counter_r)
{
	struct pg_params p = {0};
	PGresult *res = NULL;
	int ret;

	pp_text(&p, kind);
	pp_text(&p, id);
	pp_int(&p, now);
	ret = pg_query((struct pg_backend *)base, PG_EPH_GET, &p, "eph_get", &res, NULL);
	if (ret == 0 && PQntuples(res) > 0) {
		ret = store_json_parse(pg_col_raw(res, 0, 0), JSON_OBJECT, data_r);
		if (ret == 0 && *data_r == NULL)
			ret = ISSO_ERR_STORE;
		if (ret < 0)
			log_error("store_pgsql_corrupt", "table", "eph", NULL);
		else
			*counter_r = (int)pg_col_int(res, 0, 1);
	}
	PQclear(res);
	return ret;
}

static int
pg_eph_update(struct store_backend *base, const char *kind, const char *id, const char *data,
              int64_t now, bool *found_r)
{
	struct pg_params p = {0};
	int ret, changes = 0;

	pp_text(&p, kind);
	pp_text(&p, id);
	pp_text(&p, data);
	pp_int(&p, now);
	ret = pg_query((struct pg_backend *)base, PG_EPH_UPDATE, &p, "eph_update", NULL, &changes);
	*found_r = ret == 0 && changes > 0;
	return ret;
}

static int
pg_eph_delete(struct store_backend *base, const char *kind, const char *id)
{
	return pg_simple((struct pg_backend *)base, PG_EPH_DELETE, "eph_delete", NULL, 2, kind, id);
}

/* Runs a statement returning one integer column; *value_r gets the first
 * row's value, dflt when there is none. */
static int
pg_int_row(struct pg_backend *b, enum pg_id id, const struct pg_params *p, const char *op, int dflt,
           int *value_r)
{
	PGresult *res = NULL;
	int ret;

	ret = pg_query(b, id, p, op, &res, NULL);
	if (ret == 0)
		*value_r = PQntuples(res) > 0 ? (int)pg_col_int(res, 0, 0) : dflt;
	PQclear(res);
	return ret;
}

static int
pg_eph_bump(struct store_backend *base, const char *kind, const char *id, int64_t now,
            int *counter_r)
{
	struct pg_params p = {0};

	pp_text(&p, kind);
	pp_text(&p, id);
	pp_int(&p, now);
	return pg_int_row((struct pg_backend *)base, PG_EPH_BUMP, &p, "eph_bump", -1, counter_r);
}

static int
pg_eph_take(struct store_backend *base, const char *kind, const char *id, int64_t now,
            bool *taken_r)
{
	struct pg_params p = {0};
	int ret, changes = 0;

	pp_text(&p, kind);
	pp_text(&p, id);
	pp_int(&p, now);
	ret = pg_query((struct pg_backend *)base, PG_EPH_TAKE, &p, "eph_take", NULL, &changes);
	*taken_r = ret == 0 && changes == 1;
	return ret;
}

static int
pg_eph_incr(struct store_backend *base, const char *kind, const char *id, int64_t now,
            int64_t expires_at, int *counter_r)
{
	struct pg_params p = {0};

	pp_text(&p, kind);
	pp_text(&p, id);
	pp_int(&p, now);
	pp_int(&p, expires_at);
	return pg_int_row((struct pg_backend *)base, PG_EPH_INCR, &p, "eph_incr", 0, counter_r);
}

static int
pg_rate_hit(struct store_backend *base, const char *key, int64_t window_start, int64_t expires_at,
            int *count_r)
{
	struct pg_params p = {0};

	pp_text(&p, key);
	pp_int(&p, window_start);
	pp_int(&p, expires_at);
	return pg_int_row((struct pg_backend *)base, PG_RATE_HIT, &p, "rate_hit", 0, count_r);
}

/* ---- guess throttling ---- */

/* Runs a statement returning (level, next_at) into t_r when a row comes. */
static int
pg_throttle_row(struct pg_backend *b, enum pg_id id, const struct pg_params *p, const char *op,
                struct store_throttle *t_r)
{
	PGresult *res = NULL;
	int ret;

	ret = pg_query(b, id, p, op, &res, NULL);
	if (ret == 0 && PQntuples(res) > 0) {
		t_r->level = pg_col_int(res, 0, 0);
		t_r->next_at = pg_col_int(res, 0, 1);
	}
	PQclear(res);
	return ret;
}

static int
pg_throttle_get(struct store_backend *base, const char *key, int64_t now,
                struct store_throttle *t_r)
{
	struct pg_params p = {0};

	pp_text(&p, key);
	pp_int(&p, now);
	return pg_throttle_row((struct pg_backend *)base, PG_THROTTLE_GET, &p, "throttle_get", t_r);
}

static int
pg_throttle_take(struct store_backend *base, const char *key, int64_t now, int64_t weight,
                 int64_t cap, int64_t expires_at, struct store_throttle *t_r)
{
	struct pg_params p = {0};

	pp_text(&p, key);
	pp_int(&p, now);
	pp_int(&p, weight);
	pp_int(&p, cap);
	pp_int(&p, expires_at);
	return pg_throttle_row((struct pg_backend *)base, PG_THROTTLE_TAKE, &p, "throttle_take",
	                       t_r);
}

static int
pg_throttle_hold(struct store_backend *base, const char *key, int64_t next_at)
{
	struct pg_params p = {0};

	pp_text(&p, key);
	pp_int(&p, next_at);
	return pg_query((struct pg_backend *)base, PG_THROTTLE_HOLD, &p, "throttle_hold", NULL,
	                NULL);
}

static int
pg_throttle_give(struct store_backend *base, const char *key, int64_t now, int64_t weight)
{
	struct pg_params p = {0};

	pp_text(&p, key);
	pp_int(&p, now);
	pp_int(&p, weight);
	return pg_query((struct pg_backend *)base, PG_THROTTLE_GIVE, &p, "throttle_give", NULL,
	                NULL);
}

static int
pg_throttle_clear(struct store_backend *base, const char *key)
{
	return pg_simple((struct pg_backend *)base, PG_THROTTLE_CLEAR, "throttle_clear", NULL, 1,
	                 key, NULL);
}

/* ---- signing keys ---- */

static int
pg_key_add(struct store_backend *base, const struct store_key *k)
{
	struct pg_params p = {0};

	pp_text(&p, k->kid);
	pp_text(&p, k->alg);
	pp_text(&p, k->jwk);
	pp_int(&p, k->created_at);
	pp_int(&p, k->active ? 1 : 0);
	return pg_query((struct pg_backend *)base, PG_KEY_ADD, &p, "key_add", NULL, NULL);
}

static void
pg_key_free(struct store_key *k)
{
	if (k == NULL)
		return;
	free(k->kid);
	free(k->alg);
	xfree_secret(k->jwk);
	free(k);
}

/* Clears the sealed keys libpq copied into a result before freeing it. */
static void
pg_clear_secret_result(PGresult *res, int col)
{
	int i, rows = res != NULL ? PQntuples(res) : 0;

	for (i = 0; i < rows; i++) {
		if (!PQgetisnull(res, i, col))
			explicit_bzero(PQgetvalue(res, i, col), (size_t)PQgetlength(res, i, col));
	}
	PQclear(res);
}

static int
pg_key_page(struct pg_backend *b, bool first, int64_t created_at, const char *kid,
            struct store_key **page, size_t *n_r)
{
	struct pg_params p = {0};
	struct store_key *k;
	PGresult *res = NULL;
	size_t n = 0;
	int ret, rows, i;

	pp_int(&p, created_at);
	pp_text(&p, kid != NULL ? kid : "");
	pp_bool(&p, first);
	pp_int(&p, PG_PAGE);
	ret = pg_query(b, PG_KEY_PAGE, &p, "key_list", &res, NULL);
	rows = ret == 0 ? PQntuples(res) : 0;
	for (i = 0; i < rows && i < PG_PAGE; i++) {
		k = xcalloc(1, sizeof(*k));
		k->kid = pg_col_text(res, i, 0);
		k->alg = pg_col_text(res, i, 1);
		k->jwk = pg_col_text(res, i, 2);
		k->created_at = pg_col_int(res, i, 3);
		k->active = pg_col_int(res, i, 4) != 0;
		page[n++] = k;
	}
	pg_clear_secret_result(res, 2);
	*n_r = n;
	return ret;
}

static int
pg_key_list(struct store_backend *base, int (*fn)(const struct store_key *k, void *ctx), void *ctx)
{
	struct pg_backend *b = (struct pg_backend *)base;
	struct store_key *page[PG_PAGE];
	int64_t last_created = 0;
	char *last_kid = NULL;
	bool first = true;
	size_t n = 0, i;
	int ret = 0;

	do {
		ret = pg_key_page(b, first, last_created, last_kid, page, &n);
		for (i = 0; i < n; i++) {
			if (ret == 0)
				ret = fn(page[i], ctx);
			if (i + 1 == n) {
				free(last_kid);
				last_kid = xstrdup(page[i]->kid);
				last_created = page[i]->created_at;
			}
			pg_key_free(page[i]);
		}
		first = false;
	} while (ret == 0 && n == PG_PAGE);
	free(last_kid);
	return ret;
}

static int
pg_key_set_active(struct store_backend *base, const char *kid, bool active)
{
	struct pg_params p = {0};

	pp_text(&p, kid);
	pp_int(&p, active ? 1 : 0);
	return pg_query((struct pg_backend *)base, PG_KEY_ACTIVE, &p, "key_set_active", NULL, NULL);
}

/* ---- audit ---- */

static int
pg_audit_append_on(struct pg_conn *c, int64_t ts, const char *event, const char *data)
{
	struct pg_params p = {0};
	PGresult *res = NULL;
	char prev[65], hash[65];
	int64_t seq = 1;
	int ret;

	memcpy(prev, STORE_AUDIT_GENESIS, sizeof(prev));
	/* The table lock is taken before reading the chain's end, so two
	 * appenders (of any node) cannot both link to the same row; readers
	 * are not held up. */
	ret = pg_plain(c, "BEGIN", "audit_append");
	if (ret == 0)
		ret = pg_plain(c, "LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE", "audit_append");
	if (ret == 0)
		ret = pg_run(c, PG_AUDIT_LAST, NULL, "audit_append", &res, NULL);
	if (ret < 0)
		goto out;
	if (PQntuples(res) > 0) {
		const char *h = pg_col_raw(res, 0, 1);

		if (h == NULL || strlen(h) != 64) {
			log_error("store_pgsql_corrupt", "table", "audit", NULL);
			ret = ISSO_ERR_STORE;
			goto out;
		}
		seq = pg_col_int(res, 0, 0) + 1;
		memcpy(prev, h, sizeof(prev));
	}
	store_audit_hash(prev, seq, ts, event, data, hash);
	pp_int(&p, seq);
	pp_int(&p, ts);
	pp_text(&p, event);
	pp_text(&p, data);
	pp_text(&p, prev);
	pp_text(&p, hash);
	ret = pg_run(c, PG_AUDIT_ADD, &p, "audit_append", NULL, NULL);
	if (ret == 0)
		ret = pg_plain(c, "COMMIT", "audit_append");
out:
	PQclear(res);
	pg_rollback(c);
	return ret;
}

static int
pg_audit_append(struct store_backend *base, int64_t ts, const char *event, const char *data)
{
	struct pg_backend *b = (struct pg_backend *)base;
	struct pg_conn *c = NULL;
	bool reused, lost;
	int ret, attempt;

	for (attempt = 0;; attempt++) {
		ret = pg_acquire_conn(b, &c, &reused);
		if (ret == 0)
			ret = pg_audit_append_on(c, ts, event, data);
		lost = ret < 0 && c != NULL && PQstatus(c->db) != CONNECTION_OK;
		pg_release(b, c);
		c = NULL;
		/* As in pg_query: a connection lost while idle is replaced once. */
		if (!lost || !reused || attempt > 0)
			break;
		log_info("store_pgsql_reconnect", "op", "audit_append", NULL);
	}
	return ret;
}

struct pg_audit_page {
	struct store_audit_row rows[PG_PAGE];
	size_t n;
};

static void
pg_audit_page_clear(struct pg_audit_page *page)
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
pg_audit_fetch(struct pg_backend *b, int64_t since_seq, struct pg_audit_page *page)
{
	struct store_audit_row *r;
	struct pg_params p = {0};
	PGresult *res = NULL;
	int ret, rows, i;

	pp_int(&p, since_seq);
	pp_int(&p, PG_PAGE);
	ret = pg_query(b, PG_AUDIT_PAGE, &p, "audit_list", &res, NULL);
	rows = ret == 0 ? PQntuples(res) : 0;
	for (i = 0; i < rows && i < PG_PAGE; i++) {
		r = &page->rows[page->n++];
		r->seq = pg_col_int(res, i, 0);
		r->ts = pg_col_int(res, i, 1);
		r->event = pg_col_text(res, i, 2);
		r->data = pg_col_text(res, i, 3);
		r->prev_hash = pg_col_text(res, i, 4);
		r->hash = pg_col_text(res, i, 5);
		if (r->event == NULL || r->data == NULL || r->prev_hash == NULL ||
		    r->hash == NULL) {
			log_error("store_pgsql_corrupt", "table", "audit", NULL);
			ret = ISSO_ERR_STORE;
			break;
		}
	}
	PQclear(res);
	return ret;
}

static int
pg_audit_walk(struct store_backend *base, int64_t since_seq,
              int (*fn)(const struct store_audit_row *row, void *ctx), void *ctx)
{
	struct pg_backend *b = (struct pg_backend *)base;
	struct pg_audit_page *page = xcalloc(1, sizeof(*page));
	size_t n, i;
	int ret = 0;

	do {
		ret = pg_audit_fetch(b, since_seq, page);
		n = page->n;
		for (i = 0; i < n && ret == 0; i++) {
			ret = fn(&page->rows[i], ctx);
			since_seq = page->rows[i].seq;
		}
		pg_audit_page_clear(page);
	} while (ret == 0 && n == PG_PAGE);
	free(page);
	return ret;
}

/* ---- jobs ---- */

static int
pg_job_add(struct store_backend *base, const char *id, const char *kind, const char *data,
           int64_t now, int64_t run_at, int64_t expires_at)
{
	struct pg_params p = {0};

	pp_text(&p, id);
	pp_text(&p, kind);
	pp_text(&p, data);
	pp_int(&p, now);
	pp_int(&p, run_at);
	pp_int(&p, expires_at);
	return pg_query((struct pg_backend *)base, PG_JOB_ADD, &p, "job_add", NULL, NULL);
}

static int
pg_job_claim(struct store_backend *base, const char *kind, const char *owner, int64_t now,
             int lease_seconds, struct store_job **job_r)
{
	struct store_job *job = NULL;
	struct pg_params p = {0};
	PGresult *res = NULL;
	int ret;

	pp_text(&p, kind);
	pp_text(&p, owner);
	pp_int(&p, now);
	pp_int(&p, lease_seconds);
	ret = pg_query((struct pg_backend *)base, PG_JOB_CLAIM, &p, "job_claim", &res, NULL);
	if (ret < 0 || PQntuples(res) == 0)
		goto out;
	job = xcalloc(1, sizeof(*job));
	job->id = pg_col_text(res, 0, 0);
	job->kind = pg_col_text(res, 0, 1);
	ret = store_json_parse(pg_col_raw(res, 0, 2), JSON_OBJECT, &job->data);
	job->attempts = (int)pg_col_int(res, 0, 3);
	job->created_at = pg_col_int(res, 0, 4);
	job->expires_at = pg_col_int(res, 0, 5);
	if (ret < 0 || job->id == NULL || job->data == NULL) {
		log_error("store_pgsql_corrupt", "table", "jobs", NULL);
		ret = ISSO_ERR_STORE;
		goto out;
	}
	*job_r = job;
	job = NULL;
out:
	PQclear(res);
	store_job_free(job);
	return ret;
}

static int
pg_job_done(struct store_backend *base, const char *id, const char *owner)
{
	return pg_simple((struct pg_backend *)base, PG_JOB_DONE, "job_done", NULL, 2, id, owner);
}

static int
pg_job_retry(struct store_backend *base, const char *id, const char *owner, int64_t run_at)
{
	struct pg_params p = {0};

	pp_text(&p, id);
	pp_text(&p, owner);
	pp_int(&p, run_at);
	return pg_query((struct pg_backend *)base, PG_JOB_RETRY, &p, "job_retry", NULL, NULL);
}

/* ---- housekeeping ---- */

static int
pg_purge(struct store_backend *base, int64_t now, int *n_r)
{
	static const enum pg_id ids[] = {PG_PURGE_TOKENS, PG_PURGE_EPH, PG_PURGE_RATE,
	                                 PG_PURGE_JOBS, PG_PURGE_THROTTLE};
	struct pg_backend *b = (struct pg_backend *)base;
	struct pg_conn *c = NULL;
	int ret, changes, total = 0;
	size_t i;

	ret = pg_acquire(b, &c);
	if (ret < 0)
		goto out;
	/* Small batches, each its own transaction, so no writer waits long
	 * behind a large purge. */
	for (i = 0; i < ISSO_N_ELEMENTS(ids); i++) {
		do {
			struct pg_params p = {0};

			/* throttle rows count in milliseconds */
			pp_int(&p, ids[i] == PG_PURGE_THROTTLE ? now * 1000 : now);
			pp_int(&p, PG_PURGE_BATCH);
			changes = 0;
			ret = pg_run(c, ids[i], &p, "purge", NULL, &changes);
			if (ret < 0)
				goto out;
			total += changes;
		} while (changes == PG_PURGE_BATCH);
	}
out:
	pg_release(b, c);
	*n_r = total;
	return ret;
}

/* ---- TaipeiPass app device keys ---- */

static int
pg_device_add(struct store_backend *base, const struct store_device *d)
{
	struct pg_params p = {0};

	pp_text(&p, d->id);
	pp_text(&p, d->uuid);
	pp_text(&p, d->jwk);
	pp_text(&p, d->name != NULL ? d->name : "");
	pp_int(&p, d->created_at);
	pp_int(&p, d->last_used_at);
	pp_int(&p, d->revoked_at);
	return pg_query((struct pg_backend *)base, PG_DEVICE_ADD, &p, "device_add", NULL, NULL);
}

static void
pg_device_row(const PGresult *res, int r, struct store_device *d)
{
	d->id = pg_col_text(res, r, 0);
	d->uuid = pg_col_text(res, r, 1);
	d->jwk = pg_col_text(res, r, 2);
	d->name = pg_col_text(res, r, 3);
	d->created_at = pg_col_int(res, r, 4);
	d->last_used_at = pg_col_int(res, r, 5);
	d->revoked_at = pg_col_int(res, r, 6);
}

static int
pg_device_get(struct store_backend *base, const char *id, struct store_device **d_r)
{
	struct pg_params p = {0};
	struct store_device *d;
	PGresult *res = NULL;
	int ret;

	pp_text(&p, id);
	ret = pg_query((struct pg_backend *)base, PG_DEVICE_GET, &p, "device_get", &res, NULL);
	if (ret == 0 && PQntuples(res) > 0) {
		d = xcalloc(1, sizeof(*d));
		pg_device_row(res, 0, d);
		*d_r = d;
	}
	PQclear(res);
	return ret;
}

static int
pg_device_list(struct store_backend *base, const char *uuid, size_t max,
               struct store_device **list_r, size_t *n_r)
{
	struct pg_params p = {0};
	struct store_device *list;
	PGresult *res = NULL;
	size_t n;
	int ret;

	pp_text(&p, uuid);
	pp_int(&p, (int64_t)max);
	ret = pg_query((struct pg_backend *)base, PG_DEVICE_LIST, &p, "device_list", &res, NULL);
	if (ret < 0) {
		PQclear(res);
		return ret;
	}
	n = (size_t)PQntuples(res);
	if (n > max)
		n = max;
	list = xcalloc(max, sizeof(*list));
	for (size_t i = 0; i < n; i++)
		pg_device_row(res, (int)i, &list[i]);
	PQclear(res);
	*list_r = list;
	*n_r = n;
	return 0;
}

static int
pg_device_use(struct store_backend *base, const char *id, int64_t now, bool *found_r)
{
	struct pg_params p = {0};
	int changes = 0, ret;

	pp_text(&p, id);
	pp_int(&p, now);
	ret = pg_query((struct pg_backend *)base, PG_DEVICE_USE, &p, "device_use", NULL, &changes);
	*found_r = ret == 0 && changes > 0;
	return ret;
}

static int
pg_device_revoke(struct store_backend *base, const char *uuid, const char *id, int64_t now,
                 int *n_r)
{
	struct pg_params p = {0};

	pp_text(&p, uuid);
	if (id != NULL)
		pp_text(&p, id);
	pp_int(&p, now);
	return pg_query((struct pg_backend *)base,
	                id != NULL ? PG_DEVICE_REVOKE : PG_DEVICE_REVOKE_ALL, &p, "device_revoke",
	                NULL, n_r);
}

const struct store_driver store_driver_pgsql = {
    .name = "postgresql",
    .flags = STORE_DRIVER_FLAG_RETURNING,
    .open = pg_open,
    .close = pg_close,
    .schema_version = pg_schema_version,
    .client_add = pg_client_add,
    .client_get = pg_client_get,
    .client_list = pg_client_list,
    .client_set_status = pg_client_set_status,
    .client_set_secret = pg_client_set_secret,
    .client_set_settings = pg_client_set_settings,
    .person_add = pg_person_add,
    .person_get = pg_person_get,
    .person_find_by_id_hash = pg_person_find_by_id_hash,
    .person_update = pg_person_update,
    .person_delete = pg_person_delete,
    .member_add = pg_member_add,
    .member_find = pg_member_find,
    .member_get = pg_member_get,
    .member_login_failed = pg_member_login_failed,
    .member_login_ok = pg_member_login_ok,
    .member_set_password = pg_member_set_password,
    .org_add = pg_org_add,
    .org_get = pg_org_get,
    .org_member_add = pg_org_member_add,
    .org_member_role = pg_org_member_role,
    .consent_get = pg_consent_get,
    .consent_put = pg_consent_put,
    .consent_delete = pg_consent_delete,
    .token_add = pg_token_add,
    .token_get = pg_token_get,
    .token_use = pg_token_use,
    .token_revoke = pg_token_revoke,
    .token_revoke_grant = pg_token_revoke_grant,
    .token_revoke_client_person = pg_token_revoke_client_person,
    .token_revoke_person = pg_token_revoke_person,
    .eph_put = pg_eph_put,
    .eph_get = pg_eph_get,
    .eph_count = pg_eph_count,
    .eph_update = pg_eph_update,
    .eph_delete = pg_eph_delete,
    .eph_bump = pg_eph_bump,
    .eph_take = pg_eph_take,
    .eph_incr = pg_eph_incr,
    .rate_hit = pg_rate_hit,
    .throttle_get = pg_throttle_get,
    .throttle_take = pg_throttle_take,
    .throttle_hold = pg_throttle_hold,
    .throttle_give = pg_throttle_give,
    .throttle_clear = pg_throttle_clear,
    .key_add = pg_key_add,
    .key_list = pg_key_list,
    .key_set_active = pg_key_set_active,
    .audit_append = pg_audit_append,
    .audit_walk = pg_audit_walk,
    .job_add = pg_job_add,
    .job_claim = pg_job_claim,
    .job_done = pg_job_done,
    .job_retry = pg_job_retry,
    .purge = pg_purge,
    .device_add = pg_device_add,
    .device_get = pg_device_get,
    .device_list = pg_device_list,
    .device_use = pg_device_use,
    .device_revoke = pg_device_revoke,
};
