/* The store: every piece of persistent state goes through this interface.
 * Backends implement struct store_driver in store-private.h: the SQL
 * ones (SQLite, PostgreSQL) are one set of operations, store-sql.c, over
 * the statement layer sql.h; no SQL exists outside src/store.
 *
 * Conventions: functions return 0 or a negative ISSO_ERR_*; "not found" is
 * 0 with a NULL result. Records returned through _r parameters are
 * malloc'd and freed with the matching _free function. Times are Unix
 * seconds. All functions are safe to call from several threads (each
 * thread gets its own connection). */
#ifndef ISSO_STORE_H
#define ISSO_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

struct store;

/* Opens the store named by driver ("sqlite" | "postgresql") at dsn (a file
 * path or connection string) and applies pending migrations from
 * migrations_dir/<driver>/NNNN-*.sql. */
int store_open(const char *driver, const char *dsn, const char *migrations_dir,
               struct store **store_r, const char **error_r);
void store_close(struct store *store);
/* How long a call waits for a connection when every pooled one is busy,
 * in ms (store.pool_wait_ms; 0: without a deadline). Past it the call
 * fails with ISSO_ERR_STORE, as when the store is down, so a request
 * answers 503 instead of hanging. Set once after store_open, before the
 * store is shared by threads. */
void store_set_pool_wait(struct store *store, unsigned int wait_ms);
/* How long store_client_get_cached may serve a client row it read
 * before, in ms (store.client_cache_ms, at most 60000; 0, the default
 * after store_open: no cache, every lookup reads the store). Set once
 * after store_open, before the store is shared by threads. */
void store_set_client_cache(struct store *store, unsigned int ttl_ms);
/* The schema version after migrations. */
int store_schema_version(struct store *store, int *version_r);
/* A cheap round trip that says whether the store can serve requests
 * (readiness): 0, or ISSO_ERR_STORE / ISSO_ERR_TIMEOUT with *error_r
 * (static; may be NULL) saying why. Bounded by the backend's own short
 * timeout; never waits on a client's lock for long. */
int store_ping(struct store *store, const char **error_r);

/* ---- clients: agencies' applications ---- */

enum store_client_status {
	CLIENT_PENDING = 0, /* applied, not yet approved: unusable */
	CLIENT_APPROVED = 1,
	CLIENT_SUSPENDED = 2,
};

struct store_client {
	char *client_id;
	char *secret_hash;     /* sha256 hex of the secret; NULL for public clients */
	char *name;            /* the agency service's name shown on consent */
	char *purpose;         /* its declared purpose (個資蒐集目的), may be NULL */
	json_t *redirect_uris; /* array of strings */
	json_t *post_logout_redirect_uris; /* array of strings */
	char *backchannel_logout_uri;      /* may be NULL */
	char *scope;                       /* approved scopes, space-separated */
	bool public_client;
	char *id_token_alg; /* "ES256" | "RS256" */
	char *auth_method;  /* client_secret_basic | client_secret_post | private_key_jwt | none */
	char *jwks_uri;     /* for private_key_jwt, may be NULL */
	json_t *jwks;       /* inline JWK set for private_key_jwt, may be NULL */
	/* grant types it was registered for, space-separated; NULL on add:
	 * STORE_CLIENT_DEFAULT_GRANTS */
	char *grant_types;
	int status; /* enum store_client_status */
	int64_t created_at;
	/* Further registered settings, a JSON object that src/oidc validates
	 * and reads (e.g. per-client protocol requirements); the store keeps
	 * it opaque. NULL on add: {}. Never NULL when read. */
	json_t *settings;
	/* The settings exactly as the store holds them, set when read: the
	 * condition of store_client_set_state and store_client_update;
	 * ignored on add. */
	char *settings_text;
};

#define STORE_CLIENT_DEFAULT_GRANTS "authorization_code refresh_token"

int store_client_add(struct store *store, const struct store_client *client);
int store_client_get(struct store *store, const char *client_id, struct store_client **client_r);
/* store_client_get for the OpenID endpoints' hot paths: the same answer
 * (*client_r a private deep copy the caller owns and frees with
 * store_client_free, whatever its status; NULL when unknown), but it may
 * come from a per-store cache of rows read at most store_set_client_cache
 * ms ago (monotonic clock). So a change made by another process or node
 * is seen up to that long late; a change made through this same struct
 * store (every store_client_* write empties the cache when it returns) is
 * seen by the next call. Unknown client ids and store errors are never
 * cached: a client added elsewhere is found at once. The cache holds at
 * most STORE_CLIENT_CACHE_MAX rows. Not for a read whose settings_text
 * conditions a write (store_client_set_state, store_client_update): read
 * those with store_client_get. */
int store_client_get_cached(struct store *store, const char *client_id,
                            struct store_client **client_r);
#define STORE_CLIENT_CACHE_MAX 4096
/* Calls fn for each client ordered by created_at; stops when fn returns
 * non-zero and returns that value. */
int store_client_list(struct store *store, int (*fn)(const struct store_client *c, void *ctx),
                      void *ctx);
int store_client_set_status(struct store *store, const char *client_id, int status);
int store_client_set_secret(struct store *store, const char *client_id, const char *secret_hash);
/* Replaces the client's settings object (a JSON object, not NULL). */
int store_client_set_settings(struct store *store, const char *client_id, const json_t *settings);
/* Replaces what an agency or a reviewer may change of a client (name,
 * purpose, URIs, scope, auth method, JWKS, status, settings; not the id,
 * public flag, ID token alg, grant types or creation time) in one
 * statement. The secret is never written back from a read: a NULL
 * secret_hash removes it (a service turning to private_key_jwt), any
 * other value keeps the stored one (a rotation in between stays). All
 * that only while its status is still status_before and,
 * when client carries the settings_text it was read with (a copy of a
 * client read from the store), its settings are still that text: *found_r
 * false when not (or no such client), and nothing changed. Two decisions
 * racing on one client: one wins. */
int store_client_update(struct store *store, const struct store_client *client, int status_before,
                        bool *found_r);
/* A decision on a client read with store_client_get (before): sets its
 * status and settings (a JSON object), and its scope and secret hash
 * when not NULL (NULL: unchanged), nothing else, in one statement, only
 * while its status and settings are still exactly as before read them:
 * *found_r false when they are not (another change came between the read
 * and this write, or the client is gone), and nothing changed. A change
 * of anything else meanwhile (a secret rotated, ...) is kept. */
int store_client_set_state(struct store *store, const struct store_client *before, int status,
                           const char *scope, const char *secret_hash, const json_t *settings,
                           bool *found_r);
/* Deletes the client with every token issued to it and every consent
 * given to it, in one transaction (the release history stays: it is the
 * citizens'). *found_r false when there was no such client. */
int store_client_delete(struct store *store, const char *client_id, bool *found_r);
void store_client_free(struct store_client *client);

/* ---- persons: one per human, the stable uuid (歸戶) ---- */

struct store_person {
	char *uuid;
	char *id_hash; /* keyed hash of the national ID, NULL when unknown */
	char *pii;     /* sealed JSON of personal data (secret_seal) */
	int64_t created_at, updated_at;
};

/* ISSO_ERR_CONFLICT when uuid or id_hash is taken. */
int store_person_add(struct store *store, const struct store_person *person);
int store_person_get(struct store *store, const char *uuid, struct store_person **person_r);
int store_person_find_by_id_hash(struct store *store, const char *id_hash,
                                 struct store_person **person_r);
/* Replaces pii (and id_hash when not NULL). */
int store_person_update(struct store *store, const char *uuid, const char *id_hash, const char *pii,
                        int64_t now);
/* Deletes a person that has nothing linked to it (undoing a registration
 * that lost a race); ISSO_ERR_CONFLICT when something still refers to it. */
int store_person_delete(struct store *store, const char *uuid);
void store_person_free(struct store_person *person);
/* Binds a proven national ID to member uuid in one transaction (歸戶):
 * the person gets id_hash and pii (sealed) and the member becomes
 * MEMBER_GOLD. merged (may be NULL) is another person, not a member, who
 * is that same human: first its consents move to uuid (uuid's own consent
 * to a client wins), its release records move, its tokens are revoked
 * and it is deleted. ISSO_ERR_CONFLICT, with nothing changed, when uuid
 * already has another ID, when id_hash is still another person's, or
 * when merged is a member or gone; ISSO_ERR_INVALID when uuid is not a
 * member. */
int store_person_bind(struct store *store, const char *uuid, const char *merged,
                      const char *id_hash, const char *pii, int64_t now);

/* ---- TaipeiPass members (台北通) ---- */

enum store_member_level { MEMBER_ORDINARY = 0, MEMBER_GOLD = 1 };

struct store_member {
	char *uuid;          /* the person */
	char *account;       /* login name, lower case, unique */
	char *email_hash;    /* lookup hash of the normalised e-mail, unique, may be NULL */
	char *phone_hash;    /* lookup hash of the mobile number, unique */
	char *password_hash; /* argon2id string */
	int level;           /* enum store_member_level */
	int failed_logins;   /* consecutive failures */
	int64_t locked_until;
	int64_t created_at;
};

/* ISSO_ERR_CONFLICT when account, email_hash or phone_hash is taken. */
int store_member_add(struct store *store, const struct store_member *member);
/* Finds by account name, e-mail hash or phone hash (whichever matches). */
int store_member_find(struct store *store, const char *account, const char *email_hash,
                      const char *phone_hash, struct store_member **member_r);
int store_member_get(struct store *store, const char *uuid, struct store_member **member_r);
/* Counts a failed password: increments failed_logins and, when it reaches
 * max_failures, sets locked_until = now + lock_seconds and resets the count.
 * Atomic. *failures_r gets the count after the update (max_failures when
 * this failure locked the account, although the stored count is reset). */
int store_member_login_failed(struct store *store, const char *uuid, int max_failures, int64_t now,
                              int lock_seconds, int *failures_r);
int store_member_login_ok(struct store *store, const char *uuid);
int store_member_set_password(struct store *store, const char *uuid, const char *password_hash);
void store_member_free(struct store_member *member);

/* ---- organisations (組織 / 公司企業) and the members acting for them ---- */

struct store_org {
	char *ubn;  /* 統一編號, 8 digits (the caller validates with idnum_is_ubn) */
	char *name; /* registered name shown on consent and released as a claim */
	int64_t created_at;
};

/* ISSO_ERR_CONFLICT when ubn is taken. */
int store_org_add(struct store *store, const struct store_org *org);
/* The organisation, NULL when unknown; free with store_org_free. */
int store_org_get(struct store *store, const char *ubn, struct store_org **org_r);
void store_org_free(struct store_org *org);

/* Lets member uuid act for organisation ubn in role (may be NULL: none).
 * ISSO_ERR_CONFLICT when already a member; ISSO_ERR_INVALID when the
 * organisation or the member does not exist. */
int store_org_member_add(struct store *store, const char *ubn, const char *uuid, const char *role,
                         int64_t now);
/* The member's role in the organisation (malloc'd, "" when none), NULL
 * when uuid is not a member of ubn. */
int store_org_member_role(struct store *store, const char *ubn, const char *uuid, char **role_r);

/* At most this many organisations are listed. */
#define STORE_ORG_LIST_MAX 1000
/* At most this many organisations of one member are listed. */
#define STORE_MEMBERSHIPS_MAX 50

/* The organisations by ubn, at most max: *list_r (free with
 * store_org_list_free) and *n_r. */
int store_org_list(struct store *store, size_t max, struct store_org **list_r, size_t *n_r);
void store_org_list_free(struct store_org *list, size_t n);
/* Deletes organisation ubn and its members' right to act for it, in one
 * transaction; *found_r false when unknown. The caller refuses first
 * while the organisation still owns services. */
int store_org_remove(struct store *store, const char *ubn, bool *found_r);
/* Member uuid no longer acts for ubn; *found_r false when it did not. */
int store_org_member_remove(struct store *store, const char *ubn, const char *uuid, bool *found_r);

struct store_org_membership {
	char *ubn;
	char *role; /* "" when none */
};

/* The organisations uuid acts for, by ubn, at most max: *list_r (free
 * with store_org_memberships_free) and *n_r. */
int store_org_memberships(struct store *store, const char *uuid, size_t max,
                          struct store_org_membership **list_r, size_t *n_r);
void store_org_memberships_free(struct store_org_membership *list, size_t n);

/* ---- iSSO's own roles (table roles) ---- */

/* A city administrator: reviews agencies' applications (/admin). */
#define STORE_ROLE_CITY_ADMIN "city_admin"

/* Grants role to person uuid. ISSO_ERR_CONFLICT when held already. */
int store_role_grant(struct store *store, const char *uuid, const char *role, int64_t now);
/* *found_r false when uuid did not hold role. */
int store_role_revoke(struct store *store, const char *uuid, const char *role, bool *found_r);
int store_role_has(struct store *store, const char *uuid, const char *role, bool *has_r);

/* ---- consents ---- */

/* The scopes the person granted the client, NULL when never. */
int store_consent_get(struct store *store, const char *uuid, const char *client_id, char **scope_r);
int store_consent_put(struct store *store, const char *uuid, const char *client_id,
                      const char *scope, int64_t now);
int store_consent_delete(struct store *store, const char *uuid, const char *client_id);

/* ---- tokens: authorization codes, access and refresh tokens ---- */

enum store_token_kind { TOKEN_CODE = 1, TOKEN_ACCESS = 2, TOKEN_REFRESH = 3 };

struct store_token {
	char *hash;     /* sha256 hex of the token value (the value is never stored) */
	int kind;       /* enum store_token_kind */
	char *grant_id; /* all tokens issued from one authorization share it */
	char *client_id;
	char *uuid; /* the person; NULL for client_credentials */
	char *sid;  /* browser session, may be NULL */
	char *scope;
	json_t *data; /* kind-specific: nonce, redirect_uri, PKCE, claims, acr, amr … */
	int64_t created_at, expires_at;
	bool used; /* codes and refresh tokens: already exchanged */
	bool revoked;
};

int store_token_add(struct store *store, const struct store_token *token);
/* The token (even used or revoked, so callers can detect replays); NULL
 * when unknown or expired. */
int store_token_get(struct store *store, const char *hash, int64_t now,
                    struct store_token **token_r);
/* Atomically marks an unused, unrevoked, unexpired token used. *won_r is
 * true only for the one caller that flipped it. */
int store_token_use(struct store *store, const char *hash, int64_t now, bool *won_r);
/* At most this many tokens are added by one exchange. */
#define STORE_TOKEN_EXCHANGE_MAX 4
/* A token request's writes as one transaction: spends token spend (marks
 * it used exactly as store_token_use: only while unused, unrevoked and
 * unexpired at now) and adds tokens[0..n), 1 <= n <=
 * STORE_TOKEN_EXCHANGE_MAX. All of it or nothing: *won_r is true only for
 * the one caller, of any node, that spent it, and when it is false nothing
 * was written; an error (a token's hash taken: ISSO_ERR_CONFLICT) leaves
 * spend unused and adds no token. spend NULL: the tokens are only added,
 * together (*won_r true). */
int store_token_exchange(struct store *store, const char *spend, int64_t now,
                         const struct store_token *tokens, size_t n, bool *won_r);
int store_token_revoke(struct store *store, const char *hash);
/* Revokes every token of a grant (code replay, refresh-token reuse). */
int store_token_revoke_grant(struct store *store, const char *grant_id);
/* Revokes every token of a person for a client (consent withdrawn). */
int store_token_revoke_client_person(struct store *store, const char *client_id, const char *uuid);
/* Revokes every token of a person (password reset, account closed). */
int store_token_revoke_person(struct store *store, const char *uuid);
void store_token_free(struct store_token *token);

/* ---- short-lived objects: sessions, login transactions, OTP challenges ---- */

/* Each is a JSON object under (kind, id) with an expiry and a counter. kinds
 * in use: "session", "txn", "otp", "reset", "twfido_poll" (one TW FidO
 * poll turn per transaction for all nodes), and others. */
int store_eph_put(struct store *store, const char *kind, const char *id, json_t *data,
                  int64_t expires_at);
/* NULL when absent or expired. data_r and counter_r may each be NULL;
 * *counter_r gets the counter (0 when absent). */
int store_eph_get(struct store *store, const char *kind, const char *id, int64_t now,
                  json_t **data_r, int *counter_r);
/* Replaces data only if the object still exists and is unexpired; *found_r
 * tells. */
int store_eph_update(struct store *store, const char *kind, const char *id, json_t *data,
                     int64_t now, bool *found_r);
int store_eph_delete(struct store *store, const char *kind, const char *id);
/* The number of unexpired objects of kind (e.g. live sessions). Costs a
 * scan of that kind's rows: callers cache it. ISSO_ERR_INVALID when the
 * backend cannot count. */
int store_eph_count(struct store *store, const char *kind, int64_t now, int64_t *count_r);
/* Atomically increments the counter; *counter_r gets the new value, or -1
 * when the object is absent or expired. */
int store_eph_bump(struct store *store, const char *kind, const char *id, int64_t now,
                   int *counter_r);

/* Deletes the object if it exists and is unexpired; *taken_r is true only
 * for the one caller that removed it (single use under concurrency). */
int store_eph_take(struct store *store, const char *kind, const char *id, int64_t now,
                   bool *taken_r);
/* Atomically counts one more for (kind, id): creates the object (data {},
 * counter 1, expiring at expires_at) when absent or expired, else
 * increments. *counter_r gets the new count. */
int store_eph_incr(struct store *store, const char *kind, const char *id, int64_t now,
                   int64_t expires_at, int *counter_r);

/* Fixed-window rate limit: counts one hit for key in the window of
 * window_seconds containing now; *count_r gets the hits so far (this one
 * included). */
int store_rate_hit(struct store *store, const char *key, int window_seconds, int64_t now,
                   int *count_r);

/* ---- guess throttling: leaky buckets (src/auth/throttle.c) ---- */

/* Times here are in milliseconds (Unix time × 1000), so that a hold of
 * one second is a whole second. A bucket's level is a time: each counted
 * attempt adds weight, and it drains by one per millisecond, so it is the
 * time until every attempt is forgotten. next_at is the earliest time of
 * the next attempt. store_purge removes drained buckets. */
struct store_throttle {
	int64_t level;   /* drained to now */
	int64_t next_at; /* 0 when never held */
};

/* Reads the bucket of key drained to now (all zero when absent). */
int store_throttle_get(struct store *store, const char *key, int64_t now,
                       struct store_throttle *t_r);
/* Counts one attempt under key unless it is held (next_at > now): then
 * nothing changes. Atomic. The level, drained to now, grows by weight and
 * is capped at cap; the row lives until now + cap + hold_max at least.
 * *t_r gets the bucket after the call; t_r->next_at > now means it was
 * held and nothing was counted. */
int store_throttle_take(struct store *store, const char *key, int64_t now, int64_t weight,
                        int64_t cap, int64_t hold_max, struct store_throttle *t_r);
/* Holds key until next_at (a later hold already in place is kept). */
int store_throttle_hold(struct store *store, const char *key, int64_t next_at);
/* Takes back one counted attempt (weight) and ends the hold: the attempt
 * turned out right. */
int store_throttle_give(struct store *store, const char *key, int64_t now, int64_t weight);
/* Forgets key. */
int store_throttle_clear(struct store *store, const char *key);

/* ---- signing keys ---- */

struct store_key {
	char *kid;
	char *alg; /* ES256 | RS256 */
	char *jwk; /* sealed private JWK (secret_seal) */
	int64_t created_at;
	bool active; /* used for signing; inactive keys stay published until retired */
};

int store_key_add(struct store *store, const struct store_key *key);
/* Calls fn for each key, newest first. */
int store_key_list(struct store *store, int (*fn)(const struct store_key *k, void *ctx), void *ctx);
int store_key_set_active(struct store *store, const char *kid, bool active);

/* ---- audit log: append-only, hash-chained ---- */

/* Appends an event; the backend computes hash = sha256(prev_hash ‖ seq ‖ ts
 * ‖ event ‖ data) inside one transaction. data is a JSON object (stolen
 * reference may be NULL) that never holds a national ID or secret. */
int store_audit_append(struct store *store, int64_t now, const char *event, json_t *data);
/* Walks the chain; *ok_r false and *bad_seq_r set at the first broken link. */
int store_audit_verify(struct store *store, bool *ok_r, int64_t *bad_seq_r);
/* Calls fn(seq, ts, event, data_json, hash) in order. */
int store_audit_list(struct store *store, int64_t since_seq,
                     int (*fn)(int64_t seq, int64_t ts, const char *event, const char *data,
                               const char *hash, void *ctx),
                     void *ctx);

/* ---- jobs: durable background work shared by every node ---- */

struct store_job {
	char *id;
	char *kind;
	json_t *data; /* the job's own JSON object */
	int attempts; /* claims so far, this one included */
	int64_t created_at, expires_at;
};

/* Queues a job of kind with data (an object, not stolen) due at run_at;
 * it is given up (and purged) at expires_at. *id_r (may be NULL, 33
 * bytes) gets its id. */
int store_job_add(struct store *store, const char *kind, json_t *data, int64_t now, int64_t run_at,
                  int64_t expires_at, char id_r[33]);
/* Claims the most overdue job of kind that is due, unexpired and not
 * leased: owner holds it until now + lease_seconds, and its attempts
 * counter grows by one. Atomic across processes sharing the store: two
 * claimants never get the same job while a lease runs. NULL when none is
 * due. Free with store_job_free. */
int store_job_claim(struct store *store, const char *kind, const char *owner, int64_t now,
                    int lease_seconds, struct store_job **job_r);
/* Deletes a job owner holds (done, or given up). */
int store_job_done(struct store *store, const char *id, const char *owner);
/* Gives a held job back, due again at run_at. */
int store_job_retry(struct store *store, const char *id, const char *owner, int64_t run_at);
void store_job_free(struct store_job *job);

/* ---- housekeeping ---- */

/* Deletes expired tokens, short-lived objects, rate windows and jobs; *n_r (may be
 * NULL) gets the number of rows removed. */
int store_purge(struct store *store, int64_t now, int *n_r);

/* ---- consent records and releases: what the citizen sees on /account ---- */

/* At most this many consents of one person are listed. */
#define STORE_CONSENT_LIST_MAX 1000
/* At most this many releases are listed at once. */
#define STORE_RELEASE_LIST_MAX 500

struct store_consent {
	char *client_id;
	char *scope;
	/* the consent record: {"notice": version seen, "declined": [optional
	 * scopes left unticked]}; {} for consents recorded by
	 * store_consent_put. Never NULL when read. */
	json_t *record;
	int64_t created_at, updated_at;
};

/* store_consent_put with the record (a JSON object, not stolen) beside
 * the scopes, replacing any earlier one; created_at is kept. */
int store_consent_record(struct store *store, const char *uuid, const char *client_id,
                         const char *scope, const json_t *record, int64_t now);
/* Calls fn for each consent of uuid (at most STORE_CONSENT_LIST_MAX), in
 * the order they were first given; stops when fn returns non-zero and
 * returns that value. The records are freed after fn returns. */
int store_consent_list(struct store *store, const char *uuid,
                       int (*fn)(const struct store_consent *c, void *ctx), void *ctx);

struct store_release {
	int64_t ts;
	char *client_id;
	json_t *data; /* what the audit event "release" holds; never NULL when read */
};

/* Records a release of uuid's data to client_id (data: a JSON object, not
 * stolen, naming fields, never holding their values). */
int store_release_add(struct store *store, const char *uuid, const char *client_id, int64_t now,
                      const json_t *data);
/* Calls fn for the newest releases of uuid (at most limit, capped at
 * STORE_RELEASE_LIST_MAX), newest first; stops when fn returns non-zero
 * and returns that value. */
int store_release_list(struct store *store, const char *uuid, int limit,
                       int (*fn)(const struct store_release *r, void *ctx), void *ctx);
/* Issues an authorization code with the record of the release it carries,
 * in one transaction: adds code (kind TOKEN_CODE; its uuid and client_id
 * name the release), records the release of its data (release, as
 * store_release_add) and appends (now, "release", audit) to the audit log
 * (as store_audit_append, but audit, not NULL, is not stolen). All of it
 * or nothing. */
int store_code_add(struct store *store, const struct store_token *code, int64_t now,
                   const json_t *release, const json_t *audit);

/* ---- TaipeiPass app device keys ---- */

/* A device key the TaipeiPass app enrolled for a member: the app signs
 * its QR approvals with the private half (docs/taipeipass-app.md). */
struct store_device {
	char *id;   /* 43 characters, base64url of 32 random bytes */
	char *uuid; /* the member */
	char *jwk;  /* the public key: an EC P-256 JWK, JSON text */
	char *name; /* what the app called itself ("" when nothing) */
	int64_t created_at;
	int64_t last_used_at; /* 0: never */
	int64_t revoked_at;   /* 0: in use */
};

/* A member holds at most this many devices in use. */
#define STORE_DEVICES_MAX 10

/* Records a new device (last_used_at and revoked_at as given, normally
 * 0). ISSO_ERR_CONFLICT when the id is taken; an error when the member
 * does not exist. */
int store_device_add(struct store *store, const struct store_device *d);
/* The device (revoked or not), NULL when unknown; free with
 * store_device_free. */
int store_device_get(struct store *store, const char *id, struct store_device **d_r);
/* The member's devices, revoked ones too, oldest first, at most max:
 * *list_r (free with store_device_list_free) and *n_r. */
int store_device_list(struct store *store, const char *uuid, size_t max,
                      struct store_device **list_r, size_t *n_r);
/* Notes a use of device id at now; *found_r false when it is unknown or
 * revoked (nothing changes). */
int store_device_use(struct store *store, const char *id, int64_t now, bool *found_r);
/* Revokes member uuid's device id, or every device of theirs when id is
 * NULL, at now; *n_r (may be NULL) gets how many were still in use. */
int store_device_revoke(struct store *store, const char *uuid, const char *id, int64_t now,
                        int *n_r);
void store_device_free(struct store_device *d);
void store_device_list_free(struct store_device *list, size_t n);

#endif
