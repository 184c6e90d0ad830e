/* The store's domain operations, written once over the statement layer
 * (sql.h) for every SQL backend: store_driver_sqlite and store_driver_pgsql
 * are the same functions on a database of another dialect.
 *
 * Adding a domain operation (a new member at the end of struct
 * store_driver):
 *   1. add its statement id at the end of enum ss_id and its text at the
 *      same index of ss_statements[]: written once with ?N placeholders;
 *      a parameter whose type PostgreSQL cannot infer from a column (in
 *      arithmetic, GREATEST/LEAST, a row comparison, LIMIT) is written
 *      CAST(?N AS BIGINT) / CAST(?N AS TEXT); a flag is an integer
 *      compared with "?N = 1". GREATEST and LEAST exist in both dialects.
 *      Only a real difference (row locking) gets a .sqlite/.pgsql variant;
 *   2. write the function as its neighbours are: sql_query(), sql_bind_*
 *      in placeholder order, sql_exec() (changes) or sql_step() (1: a row,
 *      then sql_col_*), sql_finish() on every path. A change of several
 *      statements takes a connection (sql_acquire), runs sql_begin …
 *      sql_commit on it and sql_release()s it (which rolls back whatever
 *      was left open);
 *   3. add it to SS_DRIVER_OPS below: both driver tables get it;
 *   4. test it in tests/unit/test_store.c, which runs on both backends.
 *
 * Semantics kept from the backends before: every change that must be
 * atomic is one statement (UPDATE … RETURNING, INSERT … ON CONFLICT, a job
 * claim that locks its row) or one transaction (the audit chain, under a
 * table lock; a token request's spend with the tokens it issues; a code
 * with the record of its release); purges delete in small batches and
 * re-check expiry on the row they delete; each migration runs in its own
 * transaction under the migration lock, so a failing one leaves the
 * schema as it was. */
#include "store/store-private.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/isso.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/sql.h"

#define SS_PAGE        128 /* rows fetched per round in list walks */
#define SS_PURGE_BATCH 500 /* rows deleted per statement in purge */

#define SS_CLIENT_COLS                                                                             \
	"client_id, secret_hash, name, purpose, redirect_uris, post_logout_redirect_uris, "        \
	"backchannel_logout_uri, scope, public_client, id_token_alg, auth_method, jwks_uri, "      \
	"jwks, status, created_at, grant_types, settings"
#define SS_PERSON_COLS "uuid, id_hash, pii, created_at, updated_at"
#define SS_MEMBER_COLS                                                                             \
	"uuid, account, email_hash, phone_hash, password_hash, level, failed_logins, "             \
	"locked_until, created_at"
#define SS_TOKEN_COLS                                                                              \
	"hash, kind, grant_id, client_id, uuid, sid, scope, data, created_at, expires_at, "        \
	"used, revoked"
#define SS_KEY_COLS    "kid, alg, jwk, created_at, active"
#define SS_DEVICE_COLS "id, uuid, jwk, name, created_at, last_used_at, revoked_at"

/* A job claim: one statement. The pick and the lease cannot interleave
 * with another claimant's: SQLite runs it under its write lock;
 * PostgreSQL locks the picked row, skips rows another claimant holds,
 * and checks the outer condition again on the locked row. */
#define SS_JOB_CLAIM(lock)                                                                         \
	"UPDATE jobs SET lease_owner = ?2, lease_until = CAST(?3 AS BIGINT) + CAST(?4 AS "         \
	"BIGINT), "                                                                                \
	"attempts = attempts + 1 WHERE id = (SELECT id FROM jobs "                                 \
	"WHERE kind = ?1 AND run_at <= CAST(?3 AS BIGINT) AND lease_until <= CAST(?3 AS BIGINT) "  \
	"AND expires_at > CAST(?3 AS BIGINT) ORDER BY run_at LIMIT 1" lock ") "                    \
	"AND lease_until <= CAST(?3 AS BIGINT) "                                                   \
	"RETURNING id, kind, data, attempts, created_at, expires_at"

/* A purge batch: ?1 now, ?2 batch size. The outer test again: a row
 * another node revived (its expiry pushed on) after this statement's
 * snapshot must not go. */
#define SS_PURGE(table, key, cols)                                                                 \
	"DELETE FROM " table " WHERE " key " IN (SELECT " cols " FROM " table                      \
	" WHERE expires_at <= ?1 LIMIT CAST(?2 AS BIGINT)) AND expires_at <= ?1"

enum ss_id {
	SS_VERSION,
	SS_VERSION_ADD,
	SS_CLIENT_ADD,
	SS_CLIENT_GET,
	SS_CLIENT_PAGE,
	SS_CLIENT_STATUS,
	SS_CLIENT_SECRET,
	SS_CLIENT_SETTINGS,
	SS_PERSON_ADD,
	SS_PERSON_GET,
	SS_PERSON_BY_ID_HASH,
	SS_PERSON_UPDATE,
	SS_PERSON_DELETE,
	SS_MEMBER_ADD,
	SS_MEMBER_FIND,
	SS_MEMBER_GET,
	SS_MEMBER_FAILED,
	SS_MEMBER_OK,
	SS_MEMBER_PASSWORD,
	SS_ORG_ADD,
	SS_ORG_GET,
	SS_ORG_MEMBER_ADD,
	SS_ORG_MEMBER_ROLE,
	SS_CONSENT_GET,
	SS_CONSENT_PUT,
	SS_CONSENT_DELETE,
	SS_TOKEN_ADD,
	SS_TOKEN_GET,
	SS_TOKEN_USE,
	SS_TOKEN_REVOKE,
	SS_TOKEN_REVOKE_GRANT,
	SS_TOKEN_REVOKE_CLIENT_PERSON,
	SS_TOKEN_REVOKE_PERSON,
	SS_EPH_PUT,
	SS_EPH_GET,
	SS_EPH_UPDATE,
	SS_EPH_DELETE,
	SS_EPH_COUNT,
	SS_EPH_BUMP,
	SS_EPH_TAKE,
	SS_EPH_INCR,
	SS_RATE_HIT,
	SS_THROTTLE_GET,
	SS_THROTTLE_TAKE,
	SS_THROTTLE_HOLD,
	SS_THROTTLE_GIVE,
	SS_THROTTLE_CLEAR,
	SS_KEY_ADD,
	SS_KEY_PAGE,
	SS_KEY_ACTIVE,
	SS_AUDIT_LAST,
	SS_AUDIT_ADD,
	SS_AUDIT_PAGE,
	SS_JOB_ADD,
	SS_JOB_DUE,
	SS_JOB_CLAIM,
	SS_JOB_DONE,
	SS_JOB_RETRY,
	SS_PURGE_TOKENS,
	SS_PURGE_EPH,
	SS_PURGE_RATE,
	SS_PURGE_JOBS,
	SS_PURGE_THROTTLE,
	SS_CONSENT_RECORD,
	SS_CONSENT_LIST,
	SS_RELEASE_ADD,
	SS_RELEASE_LIST,
	SS_DEVICE_ADD,
	SS_DEVICE_GET,
	SS_DEVICE_LIST,
	SS_DEVICE_USE,
	SS_DEVICE_REVOKE,
	SS_DEVICE_REVOKE_ALL,
	SS_BIND_CONSENTS_MOVE,
	SS_BIND_CONSENTS_DROP,
	SS_BIND_RELEASES_MOVE,
	SS_BIND_TOKENS_REVOKE,
	SS_BIND_PERSON_DROP,
	SS_BIND_PERSON_SET,
	SS_BIND_MEMBER_GOLD,
	SS_CLIENT_DEL_TOKENS,
	SS_CLIENT_DEL_CONSENTS,
	SS_CLIENT_DELETE,
	SS_ORG_LIST,
	SS_ORG_DEL_MEMBERS,
	SS_ORG_DELETE,
	SS_ORG_MEMBER_REMOVE,
	SS_ORG_MEMBERSHIPS,
	SS_ROLE_GRANT,
	SS_ROLE_REVOKE,
	SS_ROLE_HAS,
	SS_CLIENT_UPDATE,
	SS_CLIENT_SET_STATE,
	SS_COUNT
};

#define S(id, text) [id] = {.name = #id, .sql = text}

static const struct sql_statement ss_statements[SS_COUNT] = {
    S(SS_VERSION, "SELECT COALESCE(MAX(version), 0) FROM schema_version"),
    S(SS_VERSION_ADD, "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)"),
    S(SS_CLIENT_ADD,
      "INSERT INTO clients (" SS_CLIENT_COLS ") VALUES "
      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"),
    S(SS_CLIENT_GET, "SELECT " SS_CLIENT_COLS " FROM clients WHERE client_id = ?1"),
    /* Pages (ss_walk): ?1 limit, ?2 and ?4 the cursor, ?3 = 1 on the first. */
    S(SS_CLIENT_PAGE, "SELECT " SS_CLIENT_COLS " FROM clients WHERE ?3 = 1 OR "
                      "(created_at, client_id) > (CAST(?2 AS BIGINT), CAST(?4 AS TEXT)) "
                      "ORDER BY created_at, client_id LIMIT CAST(?1 AS BIGINT)"),
    S(SS_CLIENT_STATUS, "UPDATE clients SET status = ?2 WHERE client_id = ?1"),
    S(SS_CLIENT_SECRET, "UPDATE clients SET secret_hash = ?2 WHERE client_id = ?1"),
    S(SS_CLIENT_SETTINGS, "UPDATE clients SET settings = ?2 WHERE client_id = ?1"),
    S(SS_PERSON_ADD, "INSERT INTO persons (" SS_PERSON_COLS ") VALUES (?1, ?2, ?3, ?4, ?5)"),
    S(SS_PERSON_GET, "SELECT " SS_PERSON_COLS " FROM persons WHERE uuid = ?1"),
    S(SS_PERSON_BY_ID_HASH, "SELECT " SS_PERSON_COLS " FROM persons WHERE id_hash = ?1"),
    S(SS_PERSON_UPDATE, "UPDATE persons SET id_hash = COALESCE(?2, id_hash), pii = ?3, "
                        "updated_at = ?4 WHERE uuid = ?1"),
    /* Only a person nothing refers to (members would cascade). */
    S(SS_PERSON_DELETE, "DELETE FROM persons WHERE uuid = ?1 AND NOT EXISTS "
                        "(SELECT 1 FROM members WHERE members.uuid = ?1)"),
    S(SS_MEMBER_ADD, "INSERT INTO members (" SS_MEMBER_COLS ") VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
    S(SS_MEMBER_FIND, "SELECT " SS_MEMBER_COLS " FROM members "
                      "WHERE account = CAST(?1 AS TEXT) OR email_hash = CAST(?2 AS TEXT) "
                      "OR phone_hash = CAST(?3 AS TEXT) "
                      "ORDER BY CASE WHEN account = CAST(?1 AS TEXT) THEN 0 "
                      "WHEN email_hash = CAST(?2 AS TEXT) THEN 1 ELSE 2 END LIMIT 1"),
    S(SS_MEMBER_GET, "SELECT " SS_MEMBER_COLS " FROM members WHERE uuid = ?1"),
    S(SS_MEMBER_FAILED, "UPDATE members SET "
                        "failed_logins = CASE WHEN failed_logins + 1 >= CAST(?2 AS INTEGER) THEN 0 "
                        "ELSE failed_logins + 1 END, "
                        "locked_until = CASE WHEN failed_logins + 1 >= CAST(?2 AS INTEGER) "
                        "THEN CAST(?3 AS BIGINT) + CAST(?4 AS BIGINT) ELSE locked_until END "
                        "WHERE uuid = ?1 RETURNING failed_logins"),
    S(SS_MEMBER_OK, "UPDATE members SET failed_logins = 0, locked_until = 0 WHERE uuid = ?1"),
    S(SS_MEMBER_PASSWORD, "UPDATE members SET password_hash = ?2 WHERE uuid = ?1"),
    S(SS_ORG_ADD, "INSERT INTO organisations (ubn, name, created_at) VALUES (?1, ?2, ?3)"),
    S(SS_ORG_GET, "SELECT ubn, name, created_at FROM organisations WHERE ubn = ?1"),
    S(SS_ORG_MEMBER_ADD, "INSERT INTO org_members (ubn, uuid, role, created_at) "
                         "VALUES (?1, ?2, ?3, ?4)"),
    S(SS_ORG_MEMBER_ROLE, "SELECT role FROM org_members WHERE ubn = ?1 AND uuid = ?2"),
    S(SS_CONSENT_GET, "SELECT scope FROM consents WHERE uuid = ?1 AND client_id = ?2"),
    S(SS_CONSENT_PUT, "INSERT INTO consents (uuid, client_id, scope, created_at, updated_at) "
                      "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (uuid, client_id) DO UPDATE "
                      "SET scope = excluded.scope, updated_at = excluded.updated_at"),
    S(SS_CONSENT_DELETE, "DELETE FROM consents WHERE uuid = ?1 AND client_id = ?2"),
    S(SS_TOKEN_ADD, "INSERT INTO tokens (" SS_TOKEN_COLS ") VALUES "
                    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
    S(SS_TOKEN_GET, "SELECT " SS_TOKEN_COLS " FROM tokens WHERE hash = ?1 AND expires_at > ?2"),
    /* One conditional UPDATE: racing callers are serialised (SQLite's
     * write lock; on PostgreSQL a racing UPDATE waits for the first and
     * re-checks used = 0 on the row it left): only one wins. */
    S(SS_TOKEN_USE, "UPDATE tokens SET used = 1 WHERE hash = ?1 AND used = 0 AND revoked = 0 "
                    "AND expires_at > ?2"),
    S(SS_TOKEN_REVOKE, "UPDATE tokens SET revoked = 1 WHERE hash = ?1"),
    S(SS_TOKEN_REVOKE_GRANT, "UPDATE tokens SET revoked = 1 WHERE grant_id = ?1"),
    S(SS_TOKEN_REVOKE_CLIENT_PERSON,
      "UPDATE tokens SET revoked = 1 WHERE client_id = ?1 AND uuid = ?2"),
    S(SS_TOKEN_REVOKE_PERSON, "UPDATE tokens SET revoked = 1 WHERE uuid = ?1"),
    /* A put replaces the object, counter included. */
    S(SS_EPH_PUT, "INSERT INTO eph (kind, id, data, counter, expires_at) "
                  "VALUES (?1, ?2, ?3, 0, ?4) ON CONFLICT (kind, id) DO UPDATE SET "
                  "data = excluded.data, counter = 0, expires_at = excluded.expires_at"),
    S(SS_EPH_GET, "SELECT data, counter FROM eph WHERE kind = ?1 AND id = ?2 "
                  "AND expires_at > ?3"),
    S(SS_EPH_UPDATE, "UPDATE eph SET data = ?3 WHERE kind = ?1 AND id = ?2 "
                     "AND expires_at > ?4"),
    S(SS_EPH_DELETE, "DELETE FROM eph WHERE kind = ?1 AND id = ?2"),
    S(SS_EPH_COUNT, "SELECT COUNT(*) FROM eph WHERE kind = ?1 AND expires_at > ?2"),
    S(SS_EPH_BUMP, "UPDATE eph SET counter = counter + 1 WHERE kind = ?1 AND id = ?2 "
                   "AND expires_at > ?3 RETURNING counter"),
    S(SS_EPH_TAKE, "DELETE FROM eph WHERE kind = ?1 AND id = ?2 AND expires_at > ?3"),
    /* An expired row left for purge starts again from one. */
    S(SS_EPH_INCR,
      "INSERT INTO eph (kind, id, data, counter, expires_at) "
      "VALUES (?1, ?2, '{}', 1, CAST(?4 AS BIGINT)) ON CONFLICT (kind, id) DO UPDATE SET "
      "counter = CASE WHEN eph.expires_at > CAST(?3 AS BIGINT) THEN eph.counter + 1 "
      "ELSE 1 END, "
      "data = CASE WHEN eph.expires_at > CAST(?3 AS BIGINT) THEN eph.data ELSE '{}' END, "
      "expires_at = CASE WHEN eph.expires_at > CAST(?3 AS BIGINT) THEN eph.expires_at "
      "ELSE excluded.expires_at END RETURNING counter"),
    /* A hit stamped in an older window (another node's clock) counts in
     * the newer one: windows only move forward. */
    S(SS_RATE_HIT, "INSERT INTO rate (key, window_start, count, expires_at) "
                   "VALUES (?1, ?2, 1, ?3) ON CONFLICT (key) DO UPDATE SET "
                   "count = CASE WHEN rate.window_start >= excluded.window_start "
                   "THEN rate.count + 1 ELSE 1 END, "
                   "window_start = GREATEST(rate.window_start, excluded.window_start), "
                   "expires_at = GREATEST(rate.expires_at, excluded.expires_at) "
                   "RETURNING count"),
    /* Levels drain one per millisecond since updated_at; a clock that went
     * back drains nothing. A held bucket (next_at > now) counts nothing. */
    S(SS_THROTTLE_GET, "SELECT GREATEST(0, level - GREATEST(0, CAST(?2 AS BIGINT) - updated_at)), "
                       "next_at FROM throttle WHERE key = ?1 AND expires_at > CAST(?2 AS BIGINT)"),
    S(SS_THROTTLE_TAKE,
      "INSERT INTO throttle (key, level, updated_at, next_at, expires_at) "
      "VALUES (?1, LEAST(CAST(?3 AS BIGINT), CAST(?4 AS BIGINT)), CAST(?2 AS BIGINT), 0, "
      "CAST(?5 AS BIGINT)) ON CONFLICT (key) DO UPDATE SET "
      "level = CASE WHEN throttle.next_at > CAST(?2 AS BIGINT) THEN throttle.level "
      "ELSE LEAST(CAST(?4 AS BIGINT), GREATEST(0, throttle.level - "
      "GREATEST(0, CAST(?2 AS BIGINT) - throttle.updated_at)) + CAST(?3 AS BIGINT)) END, "
      "updated_at = CASE WHEN throttle.next_at > CAST(?2 AS BIGINT) THEN throttle.updated_at "
      "ELSE GREATEST(throttle.updated_at, CAST(?2 AS BIGINT)) END, "
      "expires_at = CASE WHEN throttle.next_at > CAST(?2 AS BIGINT) THEN throttle.expires_at "
      "ELSE GREATEST(throttle.expires_at, CAST(?5 AS BIGINT)) END "
      "RETURNING level, next_at"),
    S(SS_THROTTLE_HOLD, "UPDATE throttle SET next_at = GREATEST(next_at, CAST(?2 AS BIGINT)), "
                        "expires_at = GREATEST(expires_at, CAST(?2 AS BIGINT)) WHERE key = ?1"),
    S(SS_THROTTLE_GIVE, "UPDATE throttle SET level = GREATEST(0, level - "
                        "GREATEST(0, CAST(?2 AS BIGINT) - updated_at) - CAST(?3 AS BIGINT)), "
                        "updated_at = GREATEST(updated_at, CAST(?2 AS BIGINT)), "
                        "next_at = LEAST(next_at, CAST(?2 AS BIGINT)) WHERE key = ?1"),
    S(SS_THROTTLE_CLEAR, "DELETE FROM throttle WHERE key = ?1"),
    S(SS_KEY_ADD, "INSERT INTO signing_keys (" SS_KEY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5)"),
    [SS_KEY_PAGE] = {.name = "SS_KEY_PAGE",
                     .sql = "SELECT " SS_KEY_COLS " FROM signing_keys WHERE ?3 = 1 OR "
                            "(created_at, kid) < (CAST(?2 AS BIGINT), CAST(?4 AS TEXT)) "
                            "ORDER BY created_at DESC, kid DESC LIMIT CAST(?1 AS BIGINT)",
                     .secret = true},
    S(SS_KEY_ACTIVE, "UPDATE signing_keys SET active = ?2 WHERE kid = ?1"),
    S(SS_AUDIT_LAST, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"),
    S(SS_AUDIT_ADD, "INSERT INTO audit (seq, ts, event, data, prev_hash, hash) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
    S(SS_AUDIT_PAGE, "SELECT seq, ts, event, data, prev_hash, hash FROM audit "
                     "WHERE seq > CAST(?2 AS BIGINT) ORDER BY seq LIMIT CAST(?1 AS BIGINT)"),
    S(SS_JOB_ADD, "INSERT INTO jobs (id, kind, data, attempts, run_at, lease_owner, "
                  "lease_until, created_at, expires_at) VALUES (?1, ?2, ?3, 0, ?5, NULL, 0, "
                  "?4, ?6)"),
    S(SS_JOB_DUE, "SELECT 1 FROM jobs WHERE kind = ?1 AND run_at <= CAST(?2 AS BIGINT) AND "
                  "lease_until <= CAST(?2 AS BIGINT) AND expires_at > CAST(?2 AS BIGINT) LIMIT 1"),
    [SS_JOB_CLAIM] = {.name = "SS_JOB_CLAIM",
                      .sql = SS_JOB_CLAIM(""),
                      .pgsql = SS_JOB_CLAIM(" FOR UPDATE SKIP LOCKED")},
    S(SS_JOB_DONE, "DELETE FROM jobs WHERE id = ?1 AND lease_owner = ?2"),
    S(SS_JOB_RETRY, "UPDATE jobs SET run_at = ?3, lease_owner = NULL, lease_until = 0 "
                    "WHERE id = ?1 AND lease_owner = ?2"),
    S(SS_PURGE_TOKENS, SS_PURGE("tokens", "hash", "hash")),
    S(SS_PURGE_EPH, SS_PURGE("eph", "(kind, id)", "kind, id")),
    S(SS_PURGE_RATE, SS_PURGE("rate", "key", "key")),
    S(SS_PURGE_JOBS, SS_PURGE("jobs", "id", "id")),
    S(SS_PURGE_THROTTLE, SS_PURGE("throttle", "key", "key")),
    S(SS_CONSENT_RECORD, "INSERT INTO consents (uuid, client_id, scope, created_at, updated_at, "
                         "record) VALUES (?1, ?2, ?3, ?4, ?4, ?5) ON CONFLICT (uuid, client_id) "
                         "DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at, "
                         "record = excluded.record"),
    S(SS_CONSENT_LIST, "SELECT client_id, scope, record, created_at, updated_at FROM consents "
                       "WHERE uuid = ?1 ORDER BY created_at, client_id LIMIT CAST(?2 AS BIGINT)"),
    S(SS_RELEASE_ADD, "INSERT INTO releases (uuid, ts, client_id, data) VALUES (?1, ?2, ?3, ?4)"),
    S(SS_RELEASE_LIST, "SELECT ts, client_id, data FROM releases WHERE uuid = ?1 "
                       "ORDER BY ts DESC, id DESC LIMIT CAST(?2 AS BIGINT)"),
    S(SS_DEVICE_ADD,
      "INSERT INTO devices (" SS_DEVICE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
    S(SS_DEVICE_GET, "SELECT " SS_DEVICE_COLS " FROM devices WHERE id = ?1"),
    S(SS_DEVICE_LIST, "SELECT " SS_DEVICE_COLS " FROM devices WHERE uuid = ?1 "
                      "ORDER BY created_at, id LIMIT CAST(?2 AS BIGINT)"),
    S(SS_DEVICE_USE, "UPDATE devices SET last_used_at = ?2 WHERE id = ?1 AND revoked_at = 0"),
    S(SS_DEVICE_REVOKE, "UPDATE devices SET revoked_at = ?3 "
                        "WHERE uuid = ?1 AND id = ?2 AND revoked_at = 0"),
    S(SS_DEVICE_REVOKE_ALL,
      "UPDATE devices SET revoked_at = ?2 WHERE uuid = ?1 AND revoked_at = 0"),
    /* Binding (person_bind): ?1 the kept person, ?2 the merged one. The
     * kept person's consent to a client wins over the merged one's. */
    S(SS_BIND_CONSENTS_MOVE, "UPDATE consents SET uuid = ?1 WHERE uuid = ?2 AND client_id NOT IN "
                             "(SELECT c.client_id FROM consents c WHERE c.uuid = ?1)"),
    S(SS_BIND_CONSENTS_DROP, "DELETE FROM consents WHERE uuid = ?1"),
    S(SS_BIND_RELEASES_MOVE, "UPDATE releases SET uuid = ?1 WHERE uuid = ?2"),
    S(SS_BIND_TOKENS_REVOKE, "UPDATE tokens SET revoked = 1 WHERE uuid = ?1"),
    S(SS_BIND_PERSON_DROP, "DELETE FROM persons WHERE uuid = ?1 AND NOT EXISTS "
                           "(SELECT 1 FROM members WHERE members.uuid = ?1)"),
    S(SS_BIND_PERSON_SET, "UPDATE persons SET id_hash = ?2, pii = ?3, updated_at = ?4 "
                          "WHERE uuid = ?1 AND (id_hash IS NULL OR id_hash = ?2)"),
    S(SS_BIND_MEMBER_GOLD, "UPDATE members SET level = 1 WHERE uuid = ?1"),
    S(SS_CLIENT_DEL_TOKENS, "DELETE FROM tokens WHERE client_id = ?1"),
    S(SS_CLIENT_DEL_CONSENTS, "DELETE FROM consents WHERE client_id = ?1"),
    S(SS_CLIENT_DELETE, "DELETE FROM clients WHERE client_id = ?1"),
    S(SS_ORG_LIST, "SELECT ubn, name, created_at FROM organisations ORDER BY ubn "
                   "LIMIT CAST(?1 AS BIGINT)"),
    S(SS_ORG_DEL_MEMBERS, "DELETE FROM org_members WHERE ubn = ?1"),
    S(SS_ORG_DELETE, "DELETE FROM organisations WHERE ubn = ?1"),
    S(SS_ORG_MEMBER_REMOVE, "DELETE FROM org_members WHERE ubn = ?1 AND uuid = ?2"),
    S(SS_ORG_MEMBERSHIPS, "SELECT ubn, role FROM org_members WHERE uuid = ?1 ORDER BY ubn "
                          "LIMIT CAST(?2 AS BIGINT)"),
    S(SS_ROLE_GRANT, "INSERT INTO roles (uuid, role, created_at) VALUES (?1, ?2, ?3)"),
    S(SS_ROLE_REVOKE, "DELETE FROM roles WHERE uuid = ?1 AND role = ?2"),
    S(SS_ROLE_HAS, "SELECT role FROM roles WHERE uuid = ?1 AND role = ?2"),
    S(SS_CLIENT_UPDATE,
      "UPDATE clients SET secret_hash = CASE WHEN CAST(?2 AS TEXT) IS NULL THEN NULL "
      "ELSE secret_hash END, name = ?3, purpose = ?4, redirect_uris = ?5, "
      "post_logout_redirect_uris = ?6, backchannel_logout_uri = ?7, scope = ?8, "
      "auth_method = ?9, jwks_uri = ?10, jwks = ?11, status = ?12, settings = ?13 "
      "WHERE client_id = ?1 AND status = ?14 "
      "AND (CAST(?15 AS TEXT) IS NULL OR settings = ?15)"),
    /* ?4 and ?5 NULL: unchanged. Conditional on the status and the
     * settings text as read. */
    S(SS_CLIENT_SET_STATE,
      "UPDATE clients SET status = ?2, settings = ?3, scope = COALESCE(?4, scope), "
      "secret_hash = COALESCE(?5, secret_hash) "
      "WHERE client_id = ?1 AND status = ?6 AND settings = ?7"),
};

#undef S

static const char ss_bootstrap_sql[] = "CREATE TABLE IF NOT EXISTS schema_version ("
                                       "version INTEGER PRIMARY KEY, "
                                       "applied_at BIGINT NOT NULL)";

struct ss_backend {
	struct store_backend base;
	struct sql_db *db;
};

static struct sql_db *
ss_db(struct store_backend *base)
{
	return ((struct ss_backend *)base)->db;
}

/* A stored value that does not parse. Names the table only. */
static void
ss_corrupt(const char *table)
{
	log_error("store_sql_corrupt", "table", table, NULL);
}

/* ---- shared shapes ---- */

/* A statement of n (1 or 2) text parameters run for its effect; NULL
 * binds NULL. */
static int
ss_texts(struct store_backend *base, enum ss_id id, int *changes_r, int n, const char *t1,
         const char *t2)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), id, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, t1);
	if (n > 1)
		sql_bind_text(st, 2, t2);
	ret = sql_exec(st, changes_r);
	sql_finish(st);
	return ret;
}

/* A statement of two text parameters returning at most one text. */
static int
ss_text_row(struct store_backend *base, enum ss_id id, const char *t1, const char *t2,
            char **text_r)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), id, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, t1);
	sql_bind_text(st, 2, t2);
	ret = sql_step(st);
	if (ret > 0) {
		*text_r = sql_col_dup(st, 0);
		ret = 0;
	}
	sql_finish(st);
	return ret;
}

/* Steps a bound statement returning one integer column: *value_r gets the
 * last row's value, dflt when there is none. Finishes st. */
static int
ss_int_row(struct sql_stmt *st, int dflt, int *value_r)
{
	int ret, value = dflt;

	while ((ret = sql_step(st)) > 0)
		value = (int)sql_col_int(st, 0);
	sql_finish(st);
	if (ret == 0)
		*value_r = value;
	return ret;
}

static char *
ss_json_text(const json_t *j, const char *dflt)
{
	if (j == NULL)
		return dflt != NULL ? xstrdup(dflt) : NULL;
	return json_dumps(j, JSON_COMPACT);
}

/* Keyset pagination, written once: pages of SS_PAGE rows are read with
 * the statement's connection given back before any callback runs (so a
 * callback may use the store itself), then visited in order until a
 * visit returns non-zero. The page statement binds ?1 the page size, ?2
 * the integer cursor, and, when the walk has a text cursor, ?3 = 1 on the
 * first page and ?4 the text cursor. */
struct ss_walk {
	enum ss_id id;
	bool text_cursor;
	int64_t cursor;
	/* Maps the current row; NULL *row_r with 0 is not possible. */
	int (*row)(struct sql_stmt *st, void **row_r);
	/* The cursor after row: *text_r points into row. */
	void (*next)(const void *row, int64_t *cursor_r, const char **text_r);
	int (*visit)(const void *row, void *ctx);
	void (*free)(void *row);
	void *ctx;
};

static int
ss_walk_page(struct sql_db *db, struct ss_walk *w, bool first, const char *text, void **page,
             size_t *n_r)
{
	struct sql_stmt *st;
	size_t n = 0;
	int ret;

	*n_r = 0;
	ret = sql_query(db, w->id, &st);
	if (ret < 0)
		return ret;
	sql_bind_int(st, 1, SS_PAGE);
	sql_bind_int(st, 2, w->cursor);
	if (w->text_cursor) {
		sql_bind_int(st, 3, first ? 1 : 0);
		sql_bind_text(st, 4, text != NULL ? text : "");
	}
	while (n < SS_PAGE && (ret = sql_step(st)) > 0) {
		page[n] = NULL;
		ret = w->row(st, &page[n]);
		if (ret < 0) {
			if (page[n] != NULL)
				w->free(page[n]);
			break;
		}
		n++;
	}
	sql_finish(st);
	*n_r = n;
	return ret < 0 ? ret : 0;
}

static int
ss_walk(struct store_backend *base, struct ss_walk *w)
{
	void **page = xcalloc(SS_PAGE, sizeof(*page));
	const char *text;
	char *last_text = NULL;
	bool first = true;
	size_t n = 0, i;
	int ret;

	do {
		ret = ss_walk_page(ss_db(base), w, first, last_text, page, &n);
		for (i = 0; i < n; i++) {
			if (ret == 0)
				ret = w->visit(page[i], w->ctx);
			if (i + 1 == n) {
				w->next(page[i], &w->cursor, &text);
				free(last_text);
				last_text = text != NULL ? xstrdup(text) : NULL;
			}
			w->free(page[i]);
		}
		first = false;
	} while (ret == 0 && n == SS_PAGE);
	free(last_text);
	free(page);
	return ret;
}

/* ---- open, migrations, close ---- */

static int
ss_version(struct sql_conn *c, int *version_r)
{
	struct sql_stmt *st;
	int ret;

	*version_r = 0;
	ret = sql_prepare(c, SS_VERSION, &st);
	if (ret < 0)
		return ret;
	ret = sql_step(st);
	if (ret > 0) {
		*version_r = (int)sql_col_int(st, 0);
		ret = 0;
	} else if (ret == 0) {
		ret = ISSO_ERR_STORE;
	}
	sql_finish(st);
	return ret;
}

/* Applies one migration in its own transaction unless the database is
 * already at or past it (checked under the migration lock, so two
 * processes opening at once apply it once). DDL is transactional in both
 * dialects: a migration that fails leaves nothing of itself. */
static int
ss_migrate_one(struct sql_conn *c, const struct store_migration *m, const char **error_r)
{
	struct sql_stmt *st = NULL;
	const char *why = NULL;
	char *sql = NULL;
	int ret, version;

	ret = sql_begin(c);
	if (ret == 0)
		ret = sql_lock(c, NULL);
	if (ret < 0) {
		*error_r = store_error_fmt("cannot lock the database for %s", m->path);
		goto out;
	}
	ret = ss_version(c, &version);
	if (ret < 0 || version >= m->version)
		goto out;
	ret = store_migration_read(m, &sql, error_r);
	if (ret < 0)
		goto out;
	ret = sql_script(c, sql, &why);
	if (ret < 0) {
		*error_r = store_error_fmt("migration %s failed: %s", m->path,
		                           why != NULL ? why : "unknown error");
		goto out;
	}
	ret = sql_prepare(c, SS_VERSION_ADD, &st);
	if (ret < 0)
		goto out;
	sql_bind_int(st, 1, m->version);
	sql_bind_int(st, 2, (int64_t)time(NULL));
	ret = sql_exec(st, NULL);
	sql_finish(st);
	if (ret < 0)
		goto out;
	ret = sql_commit(c);
	if (ret == 0)
		log_info("store_migrated", "file", m->path, NULL);
out:
	if (ret < 0 && *error_r == NULL)
		*error_r = store_error_fmt("migration %s failed", m->path);
	sql_rollback(c);
	free(sql);
	return ret;
}

static int
ss_migrate(struct sql_db *db, const char *migrations_dir, const char **error_r)
{
	struct store_migration *list = NULL;
	struct sql_conn *c = NULL;
	const char *why = NULL;
	size_t count = 0, i;
	int ret, version, latest;

	ret =
	    store_migrations_scan(migrations_dir, sql_db_dialect_name(db), &list, &count, error_r);
	if (ret < 0)
		goto out;
	ret = sql_acquire(db, &c, error_r);
	if (ret < 0)
		goto out;
	ret = sql_begin(c);
	if (ret == 0)
		ret = sql_lock(c, NULL);
	if (ret == 0)
		ret = sql_script(c, ss_bootstrap_sql, &why);
	if (ret == 0)
		ret = sql_commit(c);
	if (ret < 0) {
		*error_r = store_error_fmt("cannot create schema_version: %s",
		                           why != NULL ? why : "the database refused");
		goto out;
	}
	for (i = 0; i < count; i++) {
		ret = ss_migrate_one(c, &list[i], error_r);
		if (ret < 0)
			goto out;
	}
	ret = ss_version(c, &version);
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
	sql_release(c);
	store_migrations_free(list, count);
	return ret;
}

static void
ss_close(struct store_backend *base)
{
	struct ss_backend *b = (struct ss_backend *)base;

	if (b == NULL)
		return;
	sql_db_close(b->db);
	free(b);
}

static int
ss_open(const struct store_driver *driver, const struct sql_dialect *dialect, const char *dsn,
        const char *migrations_dir, struct store_backend **backend_r, const char **error_r)
{
	struct ss_backend *b = xcalloc(1, sizeof(*b));
	int ret;

	*backend_r = NULL;
	b->base.driver = driver;
	ret = sql_db_open(dialect, dsn, ss_statements, SS_COUNT, &b->db, error_r);
	if (ret == 0) {
		/* A session first, apart from the migrations: failing to get one
		 * (no server, a refused login, no such database, too many
		 * clients) is ISSO_ERR_IO, which a caller may wait out; a
		 * migration that fails once connected is not. */
		struct sql_conn *c = NULL;

		ret = sql_acquire(b->db, &c, error_r);
		sql_release(c);
		if (ret < 0)
			ret = ISSO_ERR_IO;
	}
	if (ret == 0)
		ret = ss_migrate(b->db, migrations_dir, error_r);
	if (ret < 0) {
		ss_close(&b->base);
		return ret;
	}
	*backend_r = &b->base;
	return 0;
}

static int
ss_schema_version(struct store_backend *base, int *version_r)
{
	struct sql_conn *c = NULL;
	int ret;

	*version_r = 0;
	ret = sql_acquire(ss_db(base), &c, NULL);
	if (ret == 0)
		ret = ss_version(c, version_r);
	sql_release(c);
	return ret;
}

static void
ss_set_pool_wait(struct store_backend *base, unsigned int wait_ms)
{
	sql_db_pool(ss_db(base), 0, wait_ms);
}

/* Readiness: the dialect's own check, then a query answers. */
static int
ss_ping(struct store_backend *base, const char **error_r)
{
	struct sql_conn *c = NULL;
	int ret, version = 0;

	ret = sql_acquire(ss_db(base), &c, NULL);
	if (ret < 0) {
		*error_r = "cannot open the database";
		return ret;
	}
	ret = sql_check(c, error_r);
	if (ret == 0) {
		ret = ss_version(c, &version);
		if (ret < 0)
			*error_r = "the database does not answer";
	}
	sql_release(c);
	return ret;
}

/* ---- clients ---- */

static int
ss_client_add(struct store_backend *base, const struct store_client *cl)
{
	struct sql_stmt *st = NULL;
	char *uris = NULL, *logout_uris = NULL, *jwks = NULL, *settings = NULL;
	int ret;

	uris = ss_json_text(cl->redirect_uris, "[]");
	logout_uris = ss_json_text(cl->post_logout_redirect_uris, "[]");
	jwks = ss_json_text(cl->jwks, NULL);
	settings = ss_json_text(cl->settings, "{}");
	if (uris == NULL || logout_uris == NULL || settings == NULL ||
	    (cl->jwks != NULL && jwks == NULL)) {
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	ret = sql_query(ss_db(base), SS_CLIENT_ADD, &st);
	if (ret < 0)
		goto out;
	sql_bind_text(st, 1, cl->client_id);
	sql_bind_text(st, 2, cl->secret_hash);
	sql_bind_text(st, 3, cl->name);
	sql_bind_text(st, 4, cl->purpose);
	sql_bind_text(st, 5, uris);
	sql_bind_text(st, 6, logout_uris);
	sql_bind_text(st, 7, cl->backchannel_logout_uri);
	sql_bind_text(st, 8, cl->scope != NULL ? cl->scope : "");
	sql_bind_int(st, 9, cl->public_client ? 1 : 0);
	sql_bind_text(st, 10, cl->id_token_alg);
	sql_bind_text(st, 11, cl->auth_method);
	sql_bind_text(st, 12, cl->jwks_uri);
	sql_bind_text(st, 13, jwks);
	sql_bind_int(st, 14, cl->status);
	sql_bind_int(st, 15, cl->created_at);
	sql_bind_text(st, 16,
	              cl->grant_types != NULL ? cl->grant_types : STORE_CLIENT_DEFAULT_GRANTS);
	sql_bind_text(st, 17, settings);
	ret = sql_exec(st, NULL);
out:
	sql_finish(st);
	free(uris);
	free(logout_uris);
	free(jwks);
	free(settings);
	return ret;
}

static int
ss_client_update(struct store_backend *base, const struct store_client *cl, int status_before,
                 bool *found_r)
{
	struct sql_stmt *st = NULL;
	char *uris = NULL, *logout_uris = NULL, *jwks = NULL, *settings = NULL;
	int ret, changes = 0;

	uris = ss_json_text(cl->redirect_uris, "[]");
	logout_uris = ss_json_text(cl->post_logout_redirect_uris, "[]");
	jwks = ss_json_text(cl->jwks, NULL);
	settings = ss_json_text(cl->settings, "{}");
	if (uris == NULL || logout_uris == NULL || settings == NULL ||
	    (cl->jwks != NULL && jwks == NULL)) {
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	ret = sql_query(ss_db(base), SS_CLIENT_UPDATE, &st);
	if (ret < 0)
		goto out;
	sql_bind_text(st, 1, cl->client_id);
	sql_bind_text(st, 2, cl->secret_hash);
	sql_bind_text(st, 3, cl->name);
	sql_bind_text(st, 4, cl->purpose);
	sql_bind_text(st, 5, uris);
	sql_bind_text(st, 6, logout_uris);
	sql_bind_text(st, 7, cl->backchannel_logout_uri);
	sql_bind_text(st, 8, cl->scope != NULL ? cl->scope : "");
	sql_bind_text(st, 9, cl->auth_method);
	sql_bind_text(st, 10, cl->jwks_uri);
	sql_bind_text(st, 11, jwks);
	sql_bind_int(st, 12, cl->status);
	sql_bind_text(st, 13, settings);
	sql_bind_int(st, 14, status_before);
	sql_bind_text(st, 15, cl->settings_text);
	ret = sql_exec(st, &changes);
	*found_r = ret == 0 && changes > 0;
out:
	sql_finish(st);
	free(uris);
	free(logout_uris);
	free(jwks);
	free(settings);
	return ret;
}

static int
ss_client_set_state(struct store_backend *base, const struct store_client *before, int status,
                    const char *scope, const char *secret_hash, const char *settings, bool *found_r)
{
	struct sql_stmt *st;
	int ret, changes = 0;

	ret = sql_query(ss_db(base), SS_CLIENT_SET_STATE, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, before->client_id);
	sql_bind_int(st, 2, status);
	sql_bind_text(st, 3, settings);
	sql_bind_text(st, 4, scope);
	sql_bind_text(st, 5, secret_hash);
	sql_bind_int(st, 6, before->status);
	sql_bind_text(st, 7, before->settings_text);
	ret = sql_exec(st, &changes);
	*found_r = ret == 0 && changes > 0;
	sql_finish(st);
	return ret;
}

static int
ss_client_row(struct sql_stmt *st, struct store_client **client_r)
{
	struct store_client *cl = xcalloc(1, sizeof(*cl));
	int ret;

	*client_r = NULL;
	cl->client_id = sql_col_dup(st, 0);
	cl->secret_hash = sql_col_dup(st, 1);
	cl->name = sql_col_dup(st, 2);
	cl->purpose = sql_col_dup(st, 3);
	cl->backchannel_logout_uri = sql_col_dup(st, 6);
	cl->scope = sql_col_dup(st, 7);
	cl->public_client = sql_col_int(st, 8) != 0;
	cl->id_token_alg = sql_col_dup(st, 9);
	cl->auth_method = sql_col_dup(st, 10);
	cl->jwks_uri = sql_col_dup(st, 11);
	cl->status = (int)sql_col_int(st, 13);
	cl->created_at = sql_col_int(st, 14);
	cl->grant_types = sql_col_dup(st, 15);
	cl->settings_text = sql_col_dup(st, 16);
	ret = store_json_parse(sql_col_text(st, 4), JSON_ARRAY, &cl->redirect_uris);
	if (ret == 0)
		ret = store_json_parse(sql_col_text(st, 5), JSON_ARRAY,
		                       &cl->post_logout_redirect_uris);
	if (ret == 0)
		ret = store_json_parse(sql_col_text(st, 12), JSON_OBJECT, &cl->jwks);
	if (ret == 0)
		ret = store_json_parse(sql_col_text(st, 16), JSON_OBJECT, &cl->settings);
	if (ret == 0 && (cl->redirect_uris == NULL || cl->post_logout_redirect_uris == NULL ||
	                 cl->settings == NULL))
		ret = ISSO_ERR_STORE;
	if (ret < 0) {
		ss_corrupt("clients");
		store_client_free(cl);
		return ret;
	}
	*client_r = cl;
	return 0;
}

static int
ss_client_get(struct store_backend *base, const char *client_id, struct store_client **client_r)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_CLIENT_GET, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, client_id);
	ret = sql_step(st);
	if (ret > 0)
		ret = ss_client_row(st, client_r);
	sql_finish(st);
	return ret;
}

static int
ss_client_walk_row(struct sql_stmt *st, void **row_r)
{
	return ss_client_row(st, (struct store_client **)row_r);
}

static void
ss_client_walk_next(const void *row, int64_t *cursor_r, const char **text_r)
{
	const struct store_client *cl = row;

	*cursor_r = cl->created_at;
	*text_r = cl->client_id;
}

static void
ss_client_walk_free(void *row)
{
	store_client_free(row);
}

struct ss_client_visit {
	int (*fn)(const struct store_client *c, void *ctx);
	void *ctx;
};

static int
ss_client_walk_visit(const void *row, void *ctx)
{
	struct ss_client_visit *v = ctx;

	return v->fn(row, v->ctx);
}

static int
ss_client_list(struct store_backend *base, int (*fn)(const struct store_client *c, void *ctx),
               void *ctx)
{
	struct ss_client_visit v = {fn, ctx};
	struct ss_walk w = {
	    .id = SS_CLIENT_PAGE,
	    .text_cursor = true,
	    .row = ss_client_walk_row,
	    .next = ss_client_walk_next,
	    .visit = ss_client_walk_visit,
	    .free = ss_client_walk_free,
	    .ctx = &v,
	};

	return ss_walk(base, &w);
}

static int
ss_client_set_status(struct store_backend *base, const char *client_id, int status)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_CLIENT_STATUS, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, client_id);
	sql_bind_int(st, 2, status);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static int
ss_client_set_secret(struct store_backend *base, const char *client_id, const char *secret_hash)
{
	/* A NULL secret_hash (public client) is bound as NULL. */
	return ss_texts(base, SS_CLIENT_SECRET, NULL, 2, client_id, secret_hash);
}

static int
ss_client_set_settings(struct store_backend *base, const char *client_id, const char *settings)
{
	return ss_texts(base, SS_CLIENT_SETTINGS, NULL, 2, client_id, settings);
}

/* ---- persons ---- */

static int
ss_person_add(struct store_backend *base, const struct store_person *p)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_PERSON_ADD, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, p->uuid);
	sql_bind_text(st, 2, p->id_hash);
	sql_bind_text(st, 3, p->pii);
	sql_bind_int(st, 4, p->created_at);
	sql_bind_int(st, 5, p->updated_at != 0 ? p->updated_at : p->created_at);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static int
ss_person_lookup(struct store_backend *base, enum ss_id id, const char *key,
                 struct store_person **person_r)
{
	struct store_person *p;
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), id, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, key);
	ret = sql_step(st);
	if (ret > 0) {
		p = xcalloc(1, sizeof(*p));
		p->uuid = sql_col_dup(st, 0);
		p->id_hash = sql_col_dup(st, 1);
		p->pii = sql_col_dup(st, 2);
		p->created_at = sql_col_int(st, 3);
		p->updated_at = sql_col_int(st, 4);
		*person_r = p;
		ret = 0;
	}
	sql_finish(st);
	return ret;
}

static int
ss_person_get(struct store_backend *base, const char *uuid, struct store_person **person_r)
{
	return ss_person_lookup(base, SS_PERSON_GET, uuid, person_r);
}

static int
ss_person_find_by_id_hash(struct store_backend *base, const char *id_hash,
                          struct store_person **person_r)
{
	return ss_person_lookup(base, SS_PERSON_BY_ID_HASH, id_hash, person_r);
}

static int
ss_person_update(struct store_backend *base, const char *uuid, const char *id_hash, const char *pii,
                 int64_t now)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_PERSON_UPDATE, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, uuid);
	sql_bind_text(st, 2, id_hash);
	sql_bind_text(st, 3, pii);
	sql_bind_int(st, 4, now);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static int
ss_person_delete(struct store_backend *base, const char *uuid)
{
	struct store_person *still = NULL;
	int changes = 0, ret;

	ret = ss_texts(base, SS_PERSON_DELETE, &changes, 1, uuid, NULL);
	if (ret == 0 && changes == 0) {
		/* Not deleted: gone already, or something still refers to it. */
		ret = ss_person_lookup(base, SS_PERSON_GET, uuid, &still);
		if (ret == 0 && still != NULL)
			ret = ISSO_ERR_CONFLICT;
		store_person_free(still);
	}
	return ret;
}

/* ---- members ---- */

static int
ss_member_add(struct store_backend *base, const struct store_member *m)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_MEMBER_ADD, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, m->uuid);
	sql_bind_text(st, 2, m->account);
	sql_bind_text(st, 3, m->email_hash);
	sql_bind_text(st, 4, m->phone_hash);
	sql_bind_text(st, 5, m->password_hash);
	sql_bind_int(st, 6, m->level);
	sql_bind_int(st, 7, m->failed_logins);
	sql_bind_int(st, 8, m->locked_until);
	sql_bind_int(st, 9, m->created_at);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

/* Steps a bound member query; *member_r gets its row when there is one.
 * Finishes st. */
static int
ss_member_row(struct sql_stmt *st, struct store_member **member_r)
{
	struct store_member *m;
	int ret = sql_step(st);

	if (ret > 0) {
		m = xcalloc(1, sizeof(*m));
		m->uuid = sql_col_dup(st, 0);
		m->account = sql_col_dup(st, 1);
		m->email_hash = sql_col_dup(st, 2);
		m->phone_hash = sql_col_dup(st, 3);
		m->password_hash = sql_col_dup(st, 4);
		m->level = (int)sql_col_int(st, 5);
		m->failed_logins = (int)sql_col_int(st, 6);
		m->locked_until = sql_col_int(st, 7);
		m->created_at = sql_col_int(st, 8);
		*member_r = m;
		ret = 0;
	}
	sql_finish(st);
	return ret;
}

static int
ss_member_find(struct store_backend *base, const char *account, const char *email_hash,
               const char *phone_hash, struct store_member **member_r)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_MEMBER_FIND, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, account);
	sql_bind_text(st, 2, email_hash);
	sql_bind_text(st, 3, phone_hash);
	return ss_member_row(st, member_r);
}

static int
ss_member_get(struct store_backend *base, const char *uuid, struct store_member **member_r)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_MEMBER_GET, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, uuid);
	return ss_member_row(st, member_r);
}

static int
ss_member_login_failed(struct store_backend *base, const char *uuid, int max_failures, int64_t now,
                       int lock_seconds, int *failures_r)
{
	struct sql_stmt *st;
	int ret, count = -1;

	ret = sql_query(ss_db(base), SS_MEMBER_FAILED, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, uuid);
	sql_bind_int(st, 2, max_failures);
	sql_bind_int(st, 3, now);
	sql_bind_int(st, 4, lock_seconds);
	ret = ss_int_row(st, -1, &count);
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
ss_member_login_ok(struct store_backend *base, const char *uuid)
{
	return ss_texts(base, SS_MEMBER_OK, NULL, 1, uuid, NULL);
}

static int
ss_member_set_password(struct store_backend *base, const char *uuid, const char *password_hash)
{
	return ss_texts(base, SS_MEMBER_PASSWORD, NULL, 2, uuid, password_hash);
}

/* ---- organisations ---- */

static int
ss_org_add(struct store_backend *base, const struct store_org *org)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_ORG_ADD, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, org->ubn);
	sql_bind_text(st, 2, org->name);
	sql_bind_int(st, 3, org->created_at);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static int
ss_org_get(struct store_backend *base, const char *ubn, struct store_org **org_r)
{
	struct store_org *org;
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_ORG_GET, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, ubn);
	ret = sql_step(st);
	if (ret > 0) {
		org = xcalloc(1, sizeof(*org));
		org->ubn = sql_col_dup(st, 0);
		org->name = sql_col_dup(st, 1);
		org->created_at = sql_col_int(st, 2);
		*org_r = org;
		ret = 0;
	}
	sql_finish(st);
	return ret;
}

static int
ss_org_member_add(struct store_backend *base, const char *ubn, const char *uuid, const char *role,
                  int64_t now)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_ORG_MEMBER_ADD, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, ubn);
	sql_bind_text(st, 2, uuid);
	sql_bind_text(st, 3, role);
	sql_bind_int(st, 4, now);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static int
ss_org_member_role(struct store_backend *base, const char *ubn, const char *uuid, char **role_r)
{
	return ss_text_row(base, SS_ORG_MEMBER_ROLE, ubn, uuid, role_r);
}

/* ---- consents ---- */

static int
ss_consent_get(struct store_backend *base, const char *uuid, const char *client_id, char **scope_r)
{
	return ss_text_row(base, SS_CONSENT_GET, uuid, client_id, scope_r);
}

static int
ss_consent_put(struct store_backend *base, const char *uuid, const char *client_id,
               const char *scope, int64_t now)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_CONSENT_PUT, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, uuid);
	sql_bind_text(st, 2, client_id);
	sql_bind_text(st, 3, scope);
	sql_bind_int(st, 4, now);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static int
ss_consent_delete(struct store_backend *base, const char *uuid, const char *client_id)
{
	return ss_texts(base, SS_CONSENT_DELETE, NULL, 2, uuid, client_id);
}

/* ---- tokens ---- */

/* Binds a token's row to SS_TOKEN_ADD; data is its serialised JSON. */
static void
ss_token_bind(struct sql_stmt *st, const struct store_token *t, const char *data)
{
	sql_bind_text(st, 1, t->hash);
	sql_bind_int(st, 2, t->kind);
	sql_bind_text(st, 3, t->grant_id);
	sql_bind_text(st, 4, t->client_id);
	sql_bind_text(st, 5, t->uuid);
	sql_bind_text(st, 6, t->sid);
	sql_bind_text(st, 7, t->scope);
	sql_bind_text(st, 8, data);
	sql_bind_int(st, 9, t->created_at);
	sql_bind_int(st, 10, t->expires_at);
	sql_bind_int(st, 11, t->used ? 1 : 0);
	sql_bind_int(st, 12, t->revoked ? 1 : 0);
}

static int
ss_token_add(struct store_backend *base, const struct store_token *t)
{
	struct sql_stmt *st;
	char *data;
	int ret;

	data = ss_json_text(t->data, "{}");
	if (data == NULL)
		return ISSO_ERR_INVALID;
	ret = sql_query(ss_db(base), SS_TOKEN_ADD, &st);
	if (ret < 0)
		goto out;
	ss_token_bind(st, t, data);
	ret = sql_exec(st, NULL);
	sql_finish(st);
out:
	free(data);
	return ret;
}

/* One transaction for a token request: the spend first, then the rows.
 * The conditional UPDATE comes first so that a racing redeem of the same
 * code or refresh token (another thread or node) is decided before
 * anything is written: on PostgreSQL the loser's UPDATE waits on the
 * winner's row lock and then finds used = 1, on SQLite BEGIN IMMEDIATE
 * already serialises the two; the loser writes nothing. A failing insert
 * after it rolls the spend back too, so a code is never left used without
 * its tokens (the client may retry), nor tokens added for a code that
 * was not spent. */
static int
ss_token_exchange(struct store_backend *base, const char *spend, int64_t now,
                  const struct store_token *tokens, size_t n, bool *won_r)
{
	struct sql_conn *c = NULL;
	struct sql_stmt *st = NULL;
	char *data = NULL;
	int ret, changes = 0;

	*won_r = false;
	ret = sql_acquire(ss_db(base), &c, NULL);
	if (ret < 0)
		return ret;
	ret = sql_begin(c);
	if (ret < 0)
		goto out;
	if (spend != NULL) {
		ret = sql_prepare(c, SS_TOKEN_USE, &st);
		if (ret < 0)
			goto out;
		sql_bind_text(st, 1, spend);
		sql_bind_int(st, 2, now);
		ret = sql_exec(st, &changes);
		sql_finish(st);
		st = NULL;
		/* Used, revoked, expired or unknown: nothing is written. */
		if (ret < 0 || changes != 1)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		data = ss_json_text(tokens[i].data, "{}");
		if (data == NULL) {
			ret = ISSO_ERR_INVALID;
			goto out;
		}
		ret = sql_prepare(c, SS_TOKEN_ADD, &st);
		if (ret < 0)
			goto out;
		ss_token_bind(st, &tokens[i], data);
		ret = sql_exec(st, NULL);
		sql_finish(st);
		st = NULL;
		free(data);
		data = NULL;
		if (ret < 0)
			goto out;
	}
	ret = sql_commit(c);
	*won_r = ret == 0;
out:
	free(data);
	sql_release(c); /* rolls back whatever is left open */
	return ret;
}

static int
ss_token_get(struct store_backend *base, const char *hash, int64_t now,
             struct store_token **token_r)
{
	struct store_token *t = NULL;
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_TOKEN_GET, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, hash);
	sql_bind_int(st, 2, now);
	ret = sql_step(st);
	if (ret <= 0)
		goto out;
	t = xcalloc(1, sizeof(*t));
	t->hash = sql_col_dup(st, 0);
	t->kind = (int)sql_col_int(st, 1);
	t->grant_id = sql_col_dup(st, 2);
	t->client_id = sql_col_dup(st, 3);
	t->uuid = sql_col_dup(st, 4);
	t->sid = sql_col_dup(st, 5);
	t->scope = sql_col_dup(st, 6);
	t->created_at = sql_col_int(st, 8);
	t->expires_at = sql_col_int(st, 9);
	t->used = sql_col_int(st, 10) != 0;
	t->revoked = sql_col_int(st, 11) != 0;
	ret = store_json_parse(sql_col_text(st, 7), JSON_OBJECT, &t->data);
	if (ret == 0 && t->data == NULL)
		ret = ISSO_ERR_STORE;
	if (ret < 0) {
		ss_corrupt("tokens");
		goto out;
	}
	*token_r = t;
	t = NULL;
out:
	sql_finish(st);
	store_token_free(t);
	return ret;
}

static int
ss_token_use(struct store_backend *base, const char *hash, int64_t now, bool *won_r)
{
	struct sql_stmt *st;
	int ret, changes = 0;

	*won_r = false;
	ret = sql_query(ss_db(base), SS_TOKEN_USE, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, hash);
	sql_bind_int(st, 2, now);
	ret = sql_exec(st, &changes);
	sql_finish(st);
	*won_r = ret == 0 && changes == 1;
	return ret;
}

static int
ss_token_revoke(struct store_backend *base, const char *hash)
{
	return ss_texts(base, SS_TOKEN_REVOKE, NULL, 1, hash, NULL);
}

static int
ss_token_revoke_grant(struct store_backend *base, const char *grant_id)
{
	return ss_texts(base, SS_TOKEN_REVOKE_GRANT, NULL, 1, grant_id, NULL);
}

static int
ss_token_revoke_client_person(struct store_backend *base, const char *client_id, const char *uuid)
{
	return ss_texts(base, SS_TOKEN_REVOKE_CLIENT_PERSON, NULL, 2, client_id, uuid);
}

static int
ss_token_revoke_person(struct store_backend *base, const char *uuid)
{
	return ss_texts(base, SS_TOKEN_REVOKE_PERSON, NULL, 1, uuid, NULL);
}

/* ---- short-lived objects ---- */

/* A statement on (kind, id) whose third parameter is an integer. */
static int
ss_eph_query(struct store_backend *base, enum ss_id id, const char *kind, const char *eid,
             int64_t n, struct sql_stmt **st_r)
{
	int ret = sql_query(ss_db(base), id, st_r);

	if (ret < 0)
		return ret;
	sql_bind_text(*st_r, 1, kind);
	sql_bind_text(*st_r, 2, eid);
	sql_bind_int(*st_r, 3, n);
	return 0;
}

static int
ss_eph_put(struct store_backend *base, const char *kind, const char *id, const char *data,
           int64_t expires_at)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_EPH_PUT, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, kind);
	sql_bind_text(st, 2, id);
	sql_bind_text(st, 3, data);
	sql_bind_int(st, 4, expires_at);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static int
ss_eph_get(struct store_backend *base, const char *kind, const char *id, int64_t now,
           json_t **data_r, int *counter_r)
{
	struct sql_stmt *st;
	int ret;

	ret = ss_eph_query(base, SS_EPH_GET, kind, id, now, &st);
	if (ret < 0)
		return ret;
	ret = sql_step(st);
	if (ret > 0) {
		ret = store_json_parse(sql_col_text(st, 0), JSON_OBJECT, data_r);
		if (ret == 0 && *data_r == NULL)
			ret = ISSO_ERR_STORE;
		if (ret < 0)
			ss_corrupt("eph");
		else
			*counter_r = (int)sql_col_int(st, 1);
	}
	sql_finish(st);
	return ret;
}

static int
ss_eph_update(struct store_backend *base, const char *kind, const char *id, const char *data,
              int64_t now, bool *found_r)
{
	struct sql_stmt *st;
	int ret, changes = 0;

	*found_r = false;
	ret = sql_query(ss_db(base), SS_EPH_UPDATE, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, kind);
	sql_bind_text(st, 2, id);
	sql_bind_text(st, 3, data);
	sql_bind_int(st, 4, now);
	ret = sql_exec(st, &changes);
	sql_finish(st);
	*found_r = ret == 0 && changes > 0;
	return ret;
}

static int
ss_eph_delete(struct store_backend *base, const char *kind, const char *id)
{
	return ss_texts(base, SS_EPH_DELETE, NULL, 2, kind, id);
}

static int
ss_eph_count(struct store_backend *base, const char *kind, int64_t now, int64_t *count_r)
{
	struct sql_stmt *st;
	int ret;

	*count_r = 0;
	ret = sql_query(ss_db(base), SS_EPH_COUNT, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, kind);
	sql_bind_int(st, 2, now);
	ret = sql_step(st);
	if (ret > 0) {
		*count_r = sql_col_int(st, 0);
		ret = 0;
	}
	sql_finish(st);
	return ret;
}

static int
ss_eph_bump(struct store_backend *base, const char *kind, const char *id, int64_t now,
            int *counter_r)
{
	struct sql_stmt *st;
	int ret;

	ret = ss_eph_query(base, SS_EPH_BUMP, kind, id, now, &st);
	if (ret < 0)
		return ret;
	return ss_int_row(st, -1, counter_r);
}

static int
ss_eph_take(struct store_backend *base, const char *kind, const char *id, int64_t now,
            bool *taken_r)
{
	struct sql_stmt *st;
	int ret, changes = 0;

	*taken_r = false;
	ret = ss_eph_query(base, SS_EPH_TAKE, kind, id, now, &st);
	if (ret < 0)
		return ret;
	ret = sql_exec(st, &changes);
	sql_finish(st);
	*taken_r = ret == 0 && changes == 1;
	return ret;
}

static int
ss_eph_incr(struct store_backend *base, const char *kind, const char *id, int64_t now,
            int64_t expires_at, int *counter_r)
{
	struct sql_stmt *st;
	int ret;

	ret = ss_eph_query(base, SS_EPH_INCR, kind, id, now, &st);
	if (ret < 0)
		return ret;
	sql_bind_int(st, 4, expires_at);
	return ss_int_row(st, 0, counter_r);
}

static int
ss_rate_hit(struct store_backend *base, const char *key, int64_t window_start, int64_t expires_at,
            int *count_r)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_RATE_HIT, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, key);
	sql_bind_int(st, 2, window_start);
	sql_bind_int(st, 3, expires_at);
	return ss_int_row(st, 0, count_r);
}

/* ---- guess throttling ---- */

/* Steps a bound statement returning (level, next_at) into t_r when a row
 * comes. Finishes st. */
static int
ss_throttle_row(struct sql_stmt *st, struct store_throttle *t_r)
{
	int ret;

	while ((ret = sql_step(st)) > 0) {
		t_r->level = sql_col_int(st, 0);
		t_r->next_at = sql_col_int(st, 1);
	}
	sql_finish(st);
	return ret;
}

static int
ss_throttle_get(struct store_backend *base, const char *key, int64_t now,
                struct store_throttle *t_r)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_THROTTLE_GET, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, key);
	sql_bind_int(st, 2, now);
	return ss_throttle_row(st, t_r);
}

static int
ss_throttle_take(struct store_backend *base, const char *key, int64_t now, int64_t weight,
                 int64_t cap, int64_t expires_at, struct store_throttle *t_r)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_THROTTLE_TAKE, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, key);
	sql_bind_int(st, 2, now);
	sql_bind_int(st, 3, weight);
	sql_bind_int(st, 4, cap);
	sql_bind_int(st, 5, expires_at);
	return ss_throttle_row(st, t_r);
}

static int
ss_throttle_hold(struct store_backend *base, const char *key, int64_t next_at)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_THROTTLE_HOLD, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, key);
	sql_bind_int(st, 2, next_at);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static int
ss_throttle_give(struct store_backend *base, const char *key, int64_t now, int64_t weight)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_THROTTLE_GIVE, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, key);
	sql_bind_int(st, 2, now);
	sql_bind_int(st, 3, weight);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static int
ss_throttle_clear(struct store_backend *base, const char *key)
{
	return ss_texts(base, SS_THROTTLE_CLEAR, NULL, 1, key, NULL);
}

/* ---- signing keys ---- */

static int
ss_key_add(struct store_backend *base, const struct store_key *k)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_KEY_ADD, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, k->kid);
	sql_bind_text(st, 2, k->alg);
	sql_bind_text(st, 3, k->jwk);
	sql_bind_int(st, 4, k->created_at);
	sql_bind_int(st, 5, k->active ? 1 : 0);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static int
ss_key_walk_row(struct sql_stmt *st, void **row_r)
{
	struct store_key *k = xcalloc(1, sizeof(*k));

	k->kid = sql_col_dup(st, 0);
	k->alg = sql_col_dup(st, 1);
	k->jwk = sql_col_dup(st, 2);
	k->created_at = sql_col_int(st, 3);
	k->active = sql_col_int(st, 4) != 0;
	*row_r = k;
	return 0;
}

static void
ss_key_walk_next(const void *row, int64_t *cursor_r, const char **text_r)
{
	const struct store_key *k = row;

	*cursor_r = k->created_at;
	*text_r = k->kid;
}

static void
ss_key_walk_free(void *row)
{
	struct store_key *k = row;

	if (k == NULL)
		return;
	free(k->kid);
	free(k->alg);
	xfree_secret(k->jwk);
	free(k);
}

struct ss_key_visit {
	int (*fn)(const struct store_key *k, void *ctx);
	void *ctx;
};

static int
ss_key_walk_visit(const void *row, void *ctx)
{
	struct ss_key_visit *v = ctx;

	return v->fn(row, v->ctx);
}

static int
ss_key_list(struct store_backend *base, int (*fn)(const struct store_key *k, void *ctx), void *ctx)
{
	struct ss_key_visit v = {fn, ctx};
	struct ss_walk w = {
	    .id = SS_KEY_PAGE,
	    .text_cursor = true,
	    .row = ss_key_walk_row,
	    .next = ss_key_walk_next,
	    .visit = ss_key_walk_visit,
	    .free = ss_key_walk_free,
	    .ctx = &v,
	};

	return ss_walk(base, &w);
}

static int
ss_key_set_active(struct store_backend *base, const char *kid, bool active)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_KEY_ACTIVE, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, kid);
	sql_bind_int(st, 2, active ? 1 : 0);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

/* ---- audit ---- */

/* Appends to the audit chain inside c's open transaction. The lock is
 * taken before reading the chain's end, so two appenders (of any node)
 * cannot both link to the same row; it is held until the commit. */
static int
ss_audit_append_on(struct sql_conn *c, int64_t ts, const char *event, const char *data)
{
	struct sql_stmt *st = NULL;
	char prev[65], hash[65];
	const char *h;
	int64_t seq = 1;
	int ret;

	memcpy(prev, STORE_AUDIT_GENESIS, sizeof(prev));
	ret = sql_lock(c, "audit");
	if (ret == 0)
		ret = sql_prepare(c, SS_AUDIT_LAST, &st);
	if (ret < 0)
		return ret;
	ret = sql_step(st);
	if (ret > 0) {
		h = sql_col_text(st, 1);
		if (h == NULL || strlen(h) != 64) {
			ss_corrupt("audit");
			sql_finish(st);
			return ISSO_ERR_STORE;
		}
		seq = sql_col_int(st, 0) + 1;
		memcpy(prev, h, sizeof(prev));
		ret = 0;
	}
	sql_finish(st);
	if (ret < 0)
		return ret;
	store_audit_hash(prev, seq, ts, event, data, hash);
	ret = sql_prepare(c, SS_AUDIT_ADD, &st);
	if (ret < 0)
		return ret;
	sql_bind_int(st, 1, seq);
	sql_bind_int(st, 2, ts);
	sql_bind_text(st, 3, event);
	sql_bind_text(st, 4, data);
	sql_bind_text(st, 5, prev);
	sql_bind_text(st, 6, hash);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static int
ss_audit_append(struct store_backend *base, int64_t ts, const char *event, const char *data)
{
	struct sql_conn *c = NULL;
	int ret;

	ret = sql_acquire(ss_db(base), &c, NULL);
	if (ret < 0)
		return ret;
	ret = sql_begin(c);
	if (ret == 0)
		ret = ss_audit_append_on(c, ts, event, data);
	if (ret == 0)
		ret = sql_commit(c);
	sql_release(c); /* rolls back what is left open */
	return ret;
}

static int
ss_audit_walk_row(struct sql_stmt *st, void **row_r)
{
	struct store_audit_row *r = xcalloc(1, sizeof(*r));

	*row_r = r;
	r->seq = sql_col_int(st, 0);
	r->ts = sql_col_int(st, 1);
	r->event = sql_col_dup(st, 2);
	r->data = sql_col_dup(st, 3);
	r->prev_hash = sql_col_dup(st, 4);
	r->hash = sql_col_dup(st, 5);
	if (r->event == NULL || r->data == NULL || r->prev_hash == NULL || r->hash == NULL) {
		ss_corrupt("audit");
		return ISSO_ERR_STORE;
	}
	return 0;
}

static void
ss_audit_walk_next(const void *row, int64_t *cursor_r, const char **text_r)
{
	*cursor_r = ((const struct store_audit_row *)row)->seq;
	*text_r = NULL;
}

static void
ss_audit_walk_free(void *row)
{
	struct store_audit_row *r = row;

	if (r == NULL)
		return;
	free((char *)r->event);
	free((char *)r->data);
	free((char *)r->prev_hash);
	free((char *)r->hash);
	free(r);
}

struct ss_audit_visit {
	int (*fn)(const struct store_audit_row *row, void *ctx);
	void *ctx;
};

static int
ss_audit_walk_visit(const void *row, void *ctx)
{
	struct ss_audit_visit *v = ctx;

	return v->fn(row, v->ctx);
}

static int
ss_audit_walk(struct store_backend *base, int64_t since_seq,
              int (*fn)(const struct store_audit_row *row, void *ctx), void *ctx)
{
	struct ss_audit_visit v = {fn, ctx};
	struct ss_walk w = {
	    .id = SS_AUDIT_PAGE,
	    .cursor = since_seq,
	    .row = ss_audit_walk_row,
	    .next = ss_audit_walk_next,
	    .visit = ss_audit_walk_visit,
	    .free = ss_audit_walk_free,
	    .ctx = &v,
	};

	return ss_walk(base, &w);
}

/* ---- jobs ---- */

static int
ss_job_add(struct store_backend *base, const char *id, const char *kind, const char *data,
           int64_t now, int64_t run_at, int64_t expires_at)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_JOB_ADD, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, id);
	sql_bind_text(st, 2, kind);
	sql_bind_text(st, 3, data);
	sql_bind_int(st, 4, now);
	sql_bind_int(st, 5, run_at);
	sql_bind_int(st, 6, expires_at);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static int
ss_job_claim(struct store_backend *base, const char *kind, const char *owner, int64_t now,
             int lease_seconds, struct store_job **job_r)
{
	struct store_job *job = NULL;
	struct sql_stmt *st;
	int ret, parsed = 0, due = 0;

	*job_r = NULL;
	/* Senders tick every second on every node and mostly find nothing:
	 * a read first, so an idle tick never takes the write lock that
	 * logins wait on. */
	ret = sql_query(ss_db(base), SS_JOB_DUE, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, kind);
	sql_bind_int(st, 2, now);
	while ((ret = sql_step(st)) > 0)
		due = 1;
	sql_finish(st);
	if (ret < 0 || !due)
		return ret;
	ret = sql_query(ss_db(base), SS_JOB_CLAIM, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, kind);
	sql_bind_text(st, 2, owner);
	sql_bind_int(st, 3, now);
	sql_bind_int(st, 4, lease_seconds);
	while ((ret = sql_step(st)) > 0) {
		if (job != NULL)
			continue;
		job = xcalloc(1, sizeof(*job));
		job->id = sql_col_dup(st, 0);
		job->kind = sql_col_dup(st, 1);
		parsed = store_json_parse(sql_col_text(st, 2), JSON_OBJECT, &job->data);
		job->attempts = (int)sql_col_int(st, 3);
		job->created_at = sql_col_int(st, 4);
		job->expires_at = sql_col_int(st, 5);
	}
	if (ret < 0)
		goto out;
	if (job != NULL && (parsed < 0 || job->id == NULL || job->data == NULL)) {
		ss_corrupt("jobs");
		ret = ISSO_ERR_STORE;
		goto out;
	}
	*job_r = job;
	job = NULL;
out:
	sql_finish(st);
	store_job_free(job);
	return ret;
}

static int
ss_job_done(struct store_backend *base, const char *id, const char *owner)
{
	return ss_texts(base, SS_JOB_DONE, NULL, 2, id, owner);
}

static int
ss_job_retry(struct store_backend *base, const char *id, const char *owner, int64_t run_at)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_JOB_RETRY, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, id);
	sql_bind_text(st, 2, owner);
	sql_bind_int(st, 3, run_at);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

/* ---- housekeeping ---- */

static int
ss_purge(struct store_backend *base, int64_t now, int *n_r)
{
	static const enum ss_id ids[] = {SS_PURGE_TOKENS, SS_PURGE_EPH, SS_PURGE_RATE,
	                                 SS_PURGE_JOBS, SS_PURGE_THROTTLE};
	struct sql_conn *c = NULL;
	struct sql_stmt *st;
	int ret, changes, total = 0;
	size_t i;

	*n_r = 0;
	ret = sql_acquire(ss_db(base), &c, NULL);
	if (ret < 0)
		return ret;
	/* Small batches, each its own transaction, so no writer waits long
	 * behind a large purge. */
	for (i = 0; i < ISSO_N_ELEMENTS(ids) && ret == 0; i++) {
		do {
			changes = 0;
			ret = sql_prepare(c, ids[i], &st);
			if (ret < 0)
				break;
			/* throttle rows count in milliseconds */
			sql_bind_int(st, 1, ids[i] == SS_PURGE_THROTTLE ? now * 1000 : now);
			sql_bind_int(st, 2, SS_PURGE_BATCH);
			ret = sql_exec(st, &changes);
			sql_finish(st);
			total += changes;
		} while (ret == 0 && changes == SS_PURGE_BATCH);
	}
	sql_release(c);
	*n_r = total;
	return ret;
}

/* ---- consent records and releases ---- */

static int
ss_consent_record(struct store_backend *base, const char *uuid, const char *client_id,
                  const char *scope, const char *record, int64_t now)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_CONSENT_RECORD, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, uuid);
	sql_bind_text(st, 2, client_id);
	sql_bind_text(st, 3, scope);
	sql_bind_int(st, 4, now);
	sql_bind_text(st, 5, record);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

/* A JSON object column; {} when it is NULL or unreadable. */
static json_t *
ss_col_object(struct sql_stmt *st, int i)
{
	json_t *j = NULL;

	if (store_json_parse(sql_col_text(st, i), JSON_OBJECT, &j) < 0 || j == NULL)
		j = json_object();
	return j;
}

/* A list read whole before anyone is told of it: the rows of id (?1 key,
 * ?2 limit) mapped by row() into elements of size bytes, the statement
 * finished (so that visit may use the store), then visit() for each until
 * it answers non-zero; clear() frees an element's members. */
struct ss_list {
	enum ss_id id;
	size_t size;
	void (*row)(struct sql_stmt *st, void *elem);
	int (*visit)(const void *elem, void *ctx);
	void (*clear)(void *elem);
};

static int
ss_list_visit(struct store_backend *base, const struct ss_list *l, const char *key, int64_t limit,
              void *ctx)
{
	struct sql_stmt *st;
	char *v = NULL;
	size_t n = 0, cap = 0;
	int ret;

	ret = sql_query(ss_db(base), l->id, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, key);
	sql_bind_int(st, 2, limit);
	while ((ret = sql_step(st)) == 1) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			v = xrealloc(v, cap * l->size);
		}
		memset(v + n * l->size, 0, l->size);
		l->row(st, v + n * l->size);
		n++;
	}
	sql_finish(st);
	for (size_t i = 0; ret == 0 && i < n; i++)
		ret = l->visit(v + i * l->size, ctx);
	for (size_t i = 0; i < n; i++)
		l->clear(v + i * l->size);
	free(v);
	return ret;
}

struct ss_consent_visit {
	int (*fn)(const struct store_consent *c, void *ctx);
	void *ctx;
};

static void
ss_consent_row(struct sql_stmt *st, void *elem)
{
	struct store_consent *c = elem;

	c->client_id = sql_col_dup(st, 0);
	c->scope = sql_col_dup(st, 1);
	c->record = ss_col_object(st, 2);
	c->created_at = sql_col_int(st, 3);
	c->updated_at = sql_col_int(st, 4);
}

static int
ss_consent_visit(const void *elem, void *ctx)
{
	const struct ss_consent_visit *v = ctx;

	return v->fn(elem, v->ctx);
}

static void
ss_consent_clear(void *elem)
{
	struct store_consent *c = elem;

	free(c->client_id);
	free(c->scope);
	json_decref(c->record);
}

/* At most STORE_CONSENT_LIST_MAX, oldest first. */
static int
ss_consent_list(struct store_backend *base, const char *uuid,
                int (*fn)(const struct store_consent *c, void *ctx), void *ctx)
{
	static const struct ss_list list = {SS_CONSENT_LIST, sizeof(struct store_consent),
	                                    ss_consent_row, ss_consent_visit, ss_consent_clear};
	struct ss_consent_visit v = {fn, ctx};

	return ss_list_visit(base, &list, uuid, STORE_CONSENT_LIST_MAX, &v);
}

static int
ss_release_add(struct store_backend *base, const char *uuid, const char *client_id, int64_t now,
               const char *data)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_RELEASE_ADD, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, uuid);
	sql_bind_int(st, 2, now);
	sql_bind_text(st, 3, client_id);
	sql_bind_text(st, 4, data);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

/* The code, its release record and the audit event in one transaction;
 * the audit chain last, so its lock is held only until the commit that
 * follows. */
static int
ss_code_add(struct store_backend *base, const struct store_token *code, int64_t now,
            const char *release, const char *audit)
{
	struct sql_conn *c = NULL;
	struct sql_stmt *st = NULL;
	char *data;
	int ret;

	data = ss_json_text(code->data, "{}");
	if (data == NULL)
		return ISSO_ERR_INVALID;
	ret = sql_acquire(ss_db(base), &c, NULL);
	if (ret < 0)
		goto out;
	ret = sql_begin(c);
	if (ret == 0)
		ret = sql_prepare(c, SS_TOKEN_ADD, &st);
	if (ret < 0)
		goto out;
	ss_token_bind(st, code, data);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	if (ret == 0)
		ret = sql_prepare(c, SS_RELEASE_ADD, &st);
	if (ret < 0)
		goto out;
	sql_bind_text(st, 1, code->uuid);
	sql_bind_int(st, 2, now);
	sql_bind_text(st, 3, code->client_id);
	sql_bind_text(st, 4, release);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	if (ret == 0)
		ret = ss_audit_append_on(c, now, "release", audit);
	if (ret == 0)
		ret = sql_commit(c);
out:
	sql_release(c); /* rolls back whatever is left open */
	free(data);
	return ret;
}

struct ss_release_visit {
	int (*fn)(const struct store_release *r, void *ctx);
	void *ctx;
};

static void
ss_release_row(struct sql_stmt *st, void *elem)
{
	struct store_release *r = elem;

	r->ts = sql_col_int(st, 0);
	r->client_id = sql_col_dup(st, 1);
	r->data = ss_col_object(st, 2);
}

static int
ss_release_visit(const void *elem, void *ctx)
{
	const struct ss_release_visit *v = ctx;

	return v->fn(elem, v->ctx);
}

static void
ss_release_clear(void *elem)
{
	struct store_release *r = elem;

	free(r->client_id);
	json_decref(r->data);
}

/* Newest first, at most limit. */
static int
ss_release_list(struct store_backend *base, const char *uuid, int limit,
                int (*fn)(const struct store_release *r, void *ctx), void *ctx)
{
	static const struct ss_list list = {SS_RELEASE_LIST, sizeof(struct store_release),
	                                    ss_release_row, ss_release_visit, ss_release_clear};
	struct ss_release_visit v = {fn, ctx};

	return ss_list_visit(base, &list, uuid, limit, &v);
}

/* ---- TaipeiPass app device keys ---- */

static int
ss_device_add(struct store_backend *base, const struct store_device *d)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_DEVICE_ADD, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, d->id);
	sql_bind_text(st, 2, d->uuid);
	sql_bind_text(st, 3, d->jwk);
	sql_bind_text(st, 4, d->name != NULL ? d->name : "");
	sql_bind_int(st, 5, d->created_at);
	sql_bind_int(st, 6, d->last_used_at);
	sql_bind_int(st, 7, d->revoked_at);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static void
ss_device_row(struct sql_stmt *st, struct store_device *d)
{
	d->id = sql_col_dup(st, 0);
	d->uuid = sql_col_dup(st, 1);
	d->jwk = sql_col_dup(st, 2);
	d->name = sql_col_dup(st, 3);
	d->created_at = sql_col_int(st, 4);
	d->last_used_at = sql_col_int(st, 5);
	d->revoked_at = sql_col_int(st, 6);
}

static int
ss_device_get(struct store_backend *base, const char *id, struct store_device **d_r)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_DEVICE_GET, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, id);
	ret = sql_step(st);
	if (ret == 1) {
		*d_r = xcalloc(1, sizeof(**d_r));
		ss_device_row(st, *d_r);
		ret = 0;
	}
	sql_finish(st);
	return ret;
}

static int
ss_device_list(struct store_backend *base, const char *uuid, size_t max,
               struct store_device **list_r, size_t *n_r)
{
	struct store_device *list = xcalloc(max, sizeof(*list));
	struct sql_stmt *st;
	size_t n = 0;
	int ret;

	ret = sql_query(ss_db(base), SS_DEVICE_LIST, &st);
	if (ret < 0) {
		free(list);
		return ret;
	}
	sql_bind_text(st, 1, uuid);
	sql_bind_int(st, 2, (int64_t)max);
	while (n < max && (ret = sql_step(st)) == 1)
		ss_device_row(st, &list[n++]);
	if (ret == 1)
		ret = 0;
	sql_finish(st);
	if (ret < 0) {
		store_device_list_free(list, n);
		return ret;
	}
	*list_r = list;
	*n_r = n;
	return 0;
}

static int
ss_device_use(struct store_backend *base, const char *id, int64_t now, bool *found_r)
{
	struct sql_stmt *st;
	int ret, changes = 0;

	ret = sql_query(ss_db(base), SS_DEVICE_USE, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, id);
	sql_bind_int(st, 2, now);
	ret = sql_exec(st, &changes);
	sql_finish(st);
	*found_r = ret == 0 && changes > 0;
	return ret;
}

static int
ss_device_revoke(struct store_backend *base, const char *uuid, const char *id, int64_t now,
                 int *n_r)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), id != NULL ? SS_DEVICE_REVOKE : SS_DEVICE_REVOKE_ALL, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, uuid);
	if (id != NULL) {
		sql_bind_text(st, 2, id);
		sql_bind_int(st, 3, now);
	} else {
		sql_bind_int(st, 2, now);
	}
	ret = sql_exec(st, n_r);
	sql_finish(st);
	return ret;
}

/* ---- binding a proven national ID to a member (歸戶) ---- */

/* One statement of a binding on connection c: texts t1, t2 (may be
 * unused), *changes_r the rows changed (may be NULL). */
static int
ss_bind_exec(struct sql_conn *c, enum ss_id id, const char *t1, const char *t2, int *changes_r)
{
	struct sql_stmt *st = NULL;
	int ret;

	ret = sql_prepare(c, id, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, t1);
	if (t2 != NULL)
		sql_bind_text(st, 2, t2);
	ret = sql_exec(st, changes_r);
	sql_finish(st);
	return ret;
}

static int
ss_person_bind(struct store_backend *base, const char *uuid, const char *merged,
               const char *id_hash, const char *pii, int64_t now)
{
	struct sql_conn *c = NULL;
	struct sql_stmt *st = NULL;
	int ret, changes = 0;

	ret = sql_acquire(ss_db(base), &c, NULL);
	if (ret < 0)
		return ret;
	ret = sql_begin(c);
	if (ret < 0)
		goto out;
	if (merged != NULL) {
		ret = ss_bind_exec(c, SS_BIND_CONSENTS_MOVE, uuid, merged, NULL);
		if (ret == 0)
			ret = ss_bind_exec(c, SS_BIND_CONSENTS_DROP, merged, NULL, NULL);
		if (ret == 0)
			ret = ss_bind_exec(c, SS_BIND_RELEASES_MOVE, uuid, merged, NULL);
		if (ret == 0)
			ret = ss_bind_exec(c, SS_BIND_TOKENS_REVOKE, merged, NULL, NULL);
		if (ret == 0)
			ret = ss_bind_exec(c, SS_BIND_PERSON_DROP, merged, NULL, &changes);
		/* A member's person is never merged away; one already gone
		 * (another binding won) leaves nothing to merge either. */
		if (ret == 0 && changes != 1)
			ret = ISSO_ERR_CONFLICT;
		if (ret < 0)
			goto out;
	}
	ret = sql_prepare(c, SS_BIND_PERSON_SET, &st);
	if (ret < 0)
		goto out;
	sql_bind_text(st, 1, uuid);
	sql_bind_text(st, 2, id_hash);
	sql_bind_text(st, 3, pii);
	sql_bind_int(st, 4, now);
	changes = 0;
	ret = sql_exec(st, &changes);
	sql_finish(st);
	/* Bound to another ID already, or the ID is another person's. */
	if (ret == 0 && changes != 1)
		ret = ISSO_ERR_CONFLICT;
	if (ret < 0)
		goto out;
	changes = 0;
	ret = ss_bind_exec(c, SS_BIND_MEMBER_GOLD, uuid, NULL, &changes);
	if (ret == 0 && changes != 1)
		ret = ISSO_ERR_INVALID; /* not a member */
	if (ret == 0)
		ret = sql_commit(c);
out:
	sql_release(c); /* rolls back whatever is left open */
	return ret;
}

/* ---- deleting clients, organisations; roles ---- */

/* Runs statement ids[0..n) with the one text parameter t in one
 * transaction; *changes_r (may be NULL) gets the last one's changes. */
static int
ss_delete_all(struct store_backend *base, const enum ss_id *ids, size_t n, const char *t,
              int *changes_r)
{
	struct sql_conn *c = NULL;
	struct sql_stmt *st = NULL;
	int ret, changes = 0;

	ret = sql_acquire(ss_db(base), &c, NULL);
	if (ret < 0)
		return ret;
	ret = sql_begin(c);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		ret = sql_prepare(c, ids[i], &st);
		if (ret < 0)
			break;
		sql_bind_text(st, 1, t);
		ret = sql_exec(st, &changes);
		sql_finish(st);
		st = NULL;
	}
	if (ret == 0)
		ret = sql_commit(c);
	sql_release(c);
	if (ret == 0 && changes_r != NULL)
		*changes_r = changes;
	return ret;
}

static int
ss_client_delete(struct store_backend *base, const char *client_id, bool *found_r)
{
	static const enum ss_id ids[] = {SS_CLIENT_DEL_TOKENS, SS_CLIENT_DEL_CONSENTS,
	                                 SS_CLIENT_DELETE};
	int changes = 0, ret;

	ret = ss_delete_all(base, ids, sizeof(ids) / sizeof(ids[0]), client_id, &changes);
	*found_r = ret == 0 && changes > 0;
	return ret;
}

static int
ss_org_list(struct store_backend *base, size_t max, struct store_org **list_r, size_t *n_r)
{
	struct store_org *list = NULL;
	struct sql_stmt *st;
	size_t n = 0;
	int ret;

	ret = sql_query(ss_db(base), SS_ORG_LIST, &st);
	if (ret < 0)
		return ret;
	sql_bind_int(st, 1, (int64_t)max);
	list = xcalloc(max > 0 ? max : 1, sizeof(*list));
	while (n < max && (ret = sql_step(st)) > 0) {
		list[n].ubn = sql_col_dup(st, 0);
		list[n].name = sql_col_dup(st, 1);
		list[n].created_at = sql_col_int(st, 2);
		n++;
	}
	sql_finish(st);
	if (ret < 0) {
		store_org_list_free(list, n);
		return ret;
	}
	*list_r = list;
	*n_r = n;
	return 0;
}

static int
ss_org_remove(struct store_backend *base, const char *ubn, bool *found_r)
{
	static const enum ss_id ids[] = {SS_ORG_DEL_MEMBERS, SS_ORG_DELETE};
	int changes = 0, ret;

	ret = ss_delete_all(base, ids, sizeof(ids) / sizeof(ids[0]), ubn, &changes);
	*found_r = ret == 0 && changes > 0;
	return ret;
}

static int
ss_org_member_remove(struct store_backend *base, const char *ubn, const char *uuid, bool *found_r)
{
	int changes = 0, ret;

	ret = ss_texts(base, SS_ORG_MEMBER_REMOVE, &changes, 2, ubn, uuid);
	*found_r = ret == 0 && changes > 0;
	return ret;
}

static int
ss_org_memberships(struct store_backend *base, const char *uuid, size_t max,
                   struct store_org_membership **list_r, size_t *n_r)
{
	struct store_org_membership *list;
	struct sql_stmt *st;
	size_t n = 0;
	int ret;

	ret = sql_query(ss_db(base), SS_ORG_MEMBERSHIPS, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, uuid);
	sql_bind_int(st, 2, (int64_t)max);
	list = xcalloc(max > 0 ? max : 1, sizeof(*list));
	while (n < max && (ret = sql_step(st)) > 0) {
		list[n].ubn = sql_col_dup(st, 0);
		list[n].role = sql_col_dup(st, 1);
		n++;
	}
	sql_finish(st);
	if (ret < 0) {
		store_org_memberships_free(list, n);
		return ret;
	}
	*list_r = list;
	*n_r = n;
	return 0;
}

static int
ss_role_grant(struct store_backend *base, const char *uuid, const char *role, int64_t now)
{
	struct sql_stmt *st;
	int ret;

	ret = sql_query(ss_db(base), SS_ROLE_GRANT, &st);
	if (ret < 0)
		return ret;
	sql_bind_text(st, 1, uuid);
	sql_bind_text(st, 2, role);
	sql_bind_int(st, 3, now);
	ret = sql_exec(st, NULL);
	sql_finish(st);
	return ret;
}

static int
ss_role_revoke(struct store_backend *base, const char *uuid, const char *role, bool *found_r)
{
	int changes = 0, ret;

	ret = ss_texts(base, SS_ROLE_REVOKE, &changes, 2, uuid, role);
	*found_r = ret == 0 && changes > 0;
	return ret;
}

static int
ss_role_has(struct store_backend *base, const char *uuid, const char *role, bool *has_r)
{
	char *found = NULL;
	int ret;

	ret = ss_text_row(base, SS_ROLE_HAS, uuid, role, &found);
	*has_r = ret == 0 && found != NULL;
	free(found);
	return ret;
}

/* ---- the driver tables ---- */

#define SS_DRIVER_OPS                                                                              \
	.flags = STORE_DRIVER_FLAG_RETURNING, .close = ss_close,                                   \
	.schema_version = ss_schema_version, .client_add = ss_client_add,                          \
	.client_get = ss_client_get, .client_list = ss_client_list,                                \
	.client_set_status = ss_client_set_status, .client_set_secret = ss_client_set_secret,      \
	.client_set_settings = ss_client_set_settings, .person_add = ss_person_add,                \
	.person_get = ss_person_get, .person_find_by_id_hash = ss_person_find_by_id_hash,          \
	.person_update = ss_person_update, .person_delete = ss_person_delete,                      \
	.member_add = ss_member_add, .member_find = ss_member_find, .member_get = ss_member_get,   \
	.member_login_failed = ss_member_login_failed, .member_login_ok = ss_member_login_ok,      \
	.member_set_password = ss_member_set_password, .org_add = ss_org_add,                      \
	.org_get = ss_org_get, .org_member_add = ss_org_member_add,                                \
	.org_member_role = ss_org_member_role, .consent_get = ss_consent_get,                      \
	.consent_put = ss_consent_put, .consent_delete = ss_consent_delete,                        \
	.token_add = ss_token_add, .token_get = ss_token_get, .token_use = ss_token_use,           \
	.token_revoke = ss_token_revoke, .token_revoke_grant = ss_token_revoke_grant,              \
	.token_revoke_client_person = ss_token_revoke_client_person,                               \
	.token_revoke_person = ss_token_revoke_person, .eph_put = ss_eph_put,                      \
	.eph_get = ss_eph_get, .eph_update = ss_eph_update, .eph_delete = ss_eph_delete,           \
	.eph_count = ss_eph_count, .eph_bump = ss_eph_bump, .eph_take = ss_eph_take,               \
	.eph_incr = ss_eph_incr, .rate_hit = ss_rate_hit, .throttle_get = ss_throttle_get,         \
	.throttle_take = ss_throttle_take, .throttle_hold = ss_throttle_hold,                      \
	.throttle_give = ss_throttle_give, .throttle_clear = ss_throttle_clear,                    \
	.key_add = ss_key_add, .key_list = ss_key_list, .key_set_active = ss_key_set_active,       \
	.audit_append = ss_audit_append, .audit_walk = ss_audit_walk, .job_add = ss_job_add,       \
	.job_claim = ss_job_claim, .job_done = ss_job_done, .job_retry = ss_job_retry,             \
	.purge = ss_purge, .consent_record = ss_consent_record, .consent_list = ss_consent_list,   \
	.release_add = ss_release_add, .release_list = ss_release_list,                            \
	.device_add = ss_device_add, .device_get = ss_device_get, .device_list = ss_device_list,   \
	.device_use = ss_device_use, .device_revoke = ss_device_revoke,                            \
	.person_bind = ss_person_bind, .client_delete = ss_client_delete, .org_list = ss_org_list, \
	.org_remove = ss_org_remove, .org_member_remove = ss_org_member_remove,                    \
	.org_memberships = ss_org_memberships, .role_grant = ss_role_grant,                        \
	.role_revoke = ss_role_revoke, .role_has = ss_role_has, .client_update = ss_client_update, \
	.set_pool_wait = ss_set_pool_wait, .token_exchange = ss_token_exchange,                    \
	.code_add = ss_code_add, .client_set_state = ss_client_set_state

static int
ss_open_sqlite(const char *dsn, const char *migrations_dir, struct store_backend **backend_r,
               const char **error_r)
{
	return ss_open(&store_driver_sqlite, &sql_dialect_sqlite, dsn, migrations_dir, backend_r,
	               error_r);
}

const struct store_driver store_driver_sqlite = {
    .name = "sqlite",
    .open = ss_open_sqlite,
    .ping = ss_ping,
    SS_DRIVER_OPS,
};

#ifdef HAVE_LIBPQ
static int
ss_open_pgsql(const char *dsn, const char *migrations_dir, struct store_backend **backend_r,
              const char **error_r)
{
	return ss_open(&store_driver_pgsql, &sql_dialect_pgsql, dsn, migrations_dir, backend_r,
	               error_r);
}

/* Readiness is a query (store_ping's schema version). */
const struct store_driver store_driver_pgsql = {
    .name = "postgresql",
    .open = ss_open_pgsql,
    .ping = NULL,
    SS_DRIVER_OPS,
};
#endif
