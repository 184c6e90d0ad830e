/* For store backends only: the driver table every backend fills in, the
 * registry of backends, and helpers shared so that all backends behave
 * (and hash the audit chain) identically. Nothing outside src/store
 * includes this header. */
#ifndef ISSO_STORE_PRIVATE_H
#define ISSO_STORE_PRIVATE_H

#include <stddef.h>

#include "store/store.h"

/* The first member of every backend's own state struct (dovecot's struct
 * sql_db pattern): a backend casts it back to its own type. */
struct store_backend {
	const struct store_driver *driver;
};

/* One row of the audit log as backends hand it to store.c. */
struct store_audit_row {
	int64_t seq;
	int64_t ts;
	const char *event;
	const char *data;
	const char *prev_hash;
	const char *hash;
};

/* Driver flags. */
#define STORE_DRIVER_FLAG_RETURNING 0x01 /* atomic ops are single statements */

/* A backend. Arguments have been validated by store.c (non-NULL where the
 * public contract requires it); JSON values are passed already serialised
 * where store.c can do it once for all backends. */
struct store_driver {
	const char *name;
	unsigned int flags;

	/* Opens dsn and applies migrations from migrations_dir/<name>/. */
	int (*open)(const char *dsn, const char *migrations_dir, struct store_backend **backend_r,
	            const char **error_r);
	void (*close)(struct store_backend *b);
	int (*schema_version)(struct store_backend *b, int *version_r);
	/* Readiness: a cheap query with a short timeout. Optional (NULL:
	 * store_ping asks for the schema version instead). */
	int (*ping)(struct store_backend *b, const char **error_r);
	/* How long a call waits for a pooled connection (store_set_pool_wait).
	 * Optional: a backend without a pool has no such wait. */
	void (*set_pool_wait)(struct store_backend *b, unsigned int wait_ms);

	int (*client_add)(struct store_backend *b, const struct store_client *client);
	int (*client_get)(struct store_backend *b, const char *client_id,
	                  struct store_client **client_r);
	int (*client_list)(struct store_backend *b,
	                   int (*fn)(const struct store_client *c, void *ctx), void *ctx);
	int (*client_set_status)(struct store_backend *b, const char *client_id, int status);
	int (*client_set_secret)(struct store_backend *b, const char *client_id,
	                         const char *secret_hash);
	/* settings is the serialised JSON object. */
	int (*client_set_settings)(struct store_backend *b, const char *client_id,
	                           const char *settings);

	int (*person_add)(struct store_backend *b, const struct store_person *person);
	int (*person_get)(struct store_backend *b, const char *uuid,
	                  struct store_person **person_r);
	int (*person_find_by_id_hash)(struct store_backend *b, const char *id_hash,
	                              struct store_person **person_r);
	int (*person_delete)(struct store_backend *b, const char *uuid);
	int (*person_update)(struct store_backend *b, const char *uuid, const char *id_hash,
	                     const char *pii, int64_t now);

	int (*member_add)(struct store_backend *b, const struct store_member *member);
	int (*member_find)(struct store_backend *b, const char *account, const char *email_hash,
	                   const char *phone_hash, struct store_member **member_r);
	int (*member_get)(struct store_backend *b, const char *uuid,
	                  struct store_member **member_r);
	int (*member_login_failed)(struct store_backend *b, const char *uuid, int max_failures,
	                           int64_t now, int lock_seconds, int *failures_r);
	int (*member_login_ok)(struct store_backend *b, const char *uuid);
	int (*member_set_password)(struct store_backend *b, const char *uuid,
	                           const char *password_hash);

	int (*org_add)(struct store_backend *b, const struct store_org *org);
	int (*org_get)(struct store_backend *b, const char *ubn, struct store_org **org_r);
	/* role is never NULL here ("" for none). */
	int (*org_member_add)(struct store_backend *b, const char *ubn, const char *uuid,
	                      const char *role, int64_t now);
	int (*org_member_role)(struct store_backend *b, const char *ubn, const char *uuid,
	                       char **role_r);

	int (*consent_get)(struct store_backend *b, const char *uuid, const char *client_id,
	                   char **scope_r);
	int (*consent_put)(struct store_backend *b, const char *uuid, const char *client_id,
	                   const char *scope, int64_t now);
	int (*consent_delete)(struct store_backend *b, const char *uuid, const char *client_id);

	int (*token_add)(struct store_backend *b, const struct store_token *token);
	int (*token_get)(struct store_backend *b, const char *hash, int64_t now,
	                 struct store_token **token_r);
	int (*token_use)(struct store_backend *b, const char *hash, int64_t now, bool *won_r);
	int (*token_revoke)(struct store_backend *b, const char *hash);
	int (*token_revoke_grant)(struct store_backend *b, const char *grant_id);
	int (*token_revoke_person)(struct store_backend *b, const char *uuid);
	int (*token_revoke_client_person)(struct store_backend *b, const char *client_id,
	                                  const char *uuid);

	/* data is the serialised JSON object. */
	int (*eph_put)(struct store_backend *b, const char *kind, const char *id, const char *data,
	               int64_t expires_at);
	int (*eph_get)(struct store_backend *b, const char *kind, const char *id, int64_t now,
	               json_t **data_r, int *counter_r);
	int (*eph_update)(struct store_backend *b, const char *kind, const char *id,
	                  const char *data, int64_t now, bool *found_r);
	int (*eph_delete)(struct store_backend *b, const char *kind, const char *id);
	/* Optional (NULL: store_eph_count answers ISSO_ERR_INVALID). */
	int (*eph_count)(struct store_backend *b, const char *kind, int64_t now, int64_t *count_r);
	int (*eph_take)(struct store_backend *b, const char *kind, const char *id, int64_t now,
	                bool *taken_r);
	int (*eph_incr)(struct store_backend *b, const char *kind, const char *id, int64_t now,
	                int64_t expires_at, int *counter_r);
	int (*eph_bump)(struct store_backend *b, const char *kind, const char *id, int64_t now,
	                int *counter_r);

	/* window_start and expires_at are computed by store.c. */
	int (*rate_hit)(struct store_backend *b, const char *key, int64_t window_start,
	                int64_t expires_at, int *count_r);

	int (*throttle_get)(struct store_backend *b, const char *key, int64_t now,
	                    struct store_throttle *t_r);
	int (*throttle_take)(struct store_backend *b, const char *key, int64_t now, int64_t weight,
	                     int64_t cap, int64_t expires_at, struct store_throttle *t_r);
	int (*throttle_hold)(struct store_backend *b, const char *key, int64_t next_at);
	int (*throttle_give)(struct store_backend *b, const char *key, int64_t now, int64_t weight);
	int (*throttle_clear)(struct store_backend *b, const char *key);

	int (*key_add)(struct store_backend *b, const struct store_key *key);
	int (*key_list)(struct store_backend *b, int (*fn)(const struct store_key *k, void *ctx),
	                void *ctx);
	int (*key_set_active)(struct store_backend *b, const char *kid, bool active);

	/* Appends (ts, event, data) in one transaction, taking the last row's
	 * hash and computing the new one with store_audit_hash(). */
	int (*audit_append)(struct store_backend *b, int64_t ts, const char *event,
	                    const char *data);
	/* Calls fn for each row with seq > since_seq, in order. */
	int (*audit_walk)(struct store_backend *b, int64_t since_seq,
	                  int (*fn)(const struct store_audit_row *row, void *ctx), void *ctx);

	/* data is the serialised JSON object. */
	int (*job_add)(struct store_backend *b, const char *id, const char *kind, const char *data,
	               int64_t now, int64_t run_at, int64_t expires_at);
	int (*job_claim)(struct store_backend *b, const char *kind, const char *owner, int64_t now,
	                 int lease_seconds, struct store_job **job_r);
	int (*job_done)(struct store_backend *b, const char *id, const char *owner);
	int (*job_retry)(struct store_backend *b, const char *id, const char *owner,
	                 int64_t run_at);

	int (*purge)(struct store_backend *b, int64_t now, int *n_r);

	/* record and data are serialised JSON objects. The lists call fn
	 * after the connection has been given back. */
	int (*consent_record)(struct store_backend *b, const char *uuid, const char *client_id,
	                      const char *scope, const char *record, int64_t now);
	int (*consent_list)(struct store_backend *b, const char *uuid,
	                    int (*fn)(const struct store_consent *c, void *ctx), void *ctx);
	int (*release_add)(struct store_backend *b, const char *uuid, const char *client_id,
	                   int64_t now, const char *data);
	int (*release_list)(struct store_backend *b, const char *uuid, int limit,
	                    int (*fn)(const struct store_release *r, void *ctx), void *ctx);
	int (*device_add)(struct store_backend *b, const struct store_device *d);
	int (*device_get)(struct store_backend *b, const char *id, struct store_device **d_r);
	int (*device_list)(struct store_backend *b, const char *uuid, size_t max,
	                   struct store_device **list_r, size_t *n_r);
	int (*device_use)(struct store_backend *b, const char *id, int64_t now, bool *found_r);
	/* id NULL: every device of uuid. */
	int (*device_revoke)(struct store_backend *b, const char *uuid, const char *id, int64_t now,
	                     int *n_r);
	int (*person_bind)(struct store_backend *b, const char *uuid, const char *merged,
	                   const char *id_hash, const char *pii, int64_t now);
	int (*client_delete)(struct store_backend *b, const char *client_id, bool *found_r);
	int (*org_list)(struct store_backend *b, size_t max, struct store_org **list_r,
	                size_t *n_r);
	int (*org_remove)(struct store_backend *b, const char *ubn, bool *found_r);
	int (*org_member_remove)(struct store_backend *b, const char *ubn, const char *uuid,
	                         bool *found_r);
	int (*org_memberships)(struct store_backend *b, const char *uuid, size_t max,
	                       struct store_org_membership **list_r, size_t *n_r);
	int (*role_grant)(struct store_backend *b, const char *uuid, const char *role, int64_t now);
	int (*role_revoke)(struct store_backend *b, const char *uuid, const char *role,
	                   bool *found_r);
	int (*role_has)(struct store_backend *b, const char *uuid, const char *role, bool *has_r);
	int (*client_update)(struct store_backend *b, const struct store_client *client,
	                     int status_before, bool *found_r);
	/* spend may be NULL; 1 <= n <= STORE_TOKEN_EXCHANGE_MAX, each token
	 * checked as for token_add. */
	int (*token_exchange)(struct store_backend *b, const char *spend, int64_t now,
	                      const struct store_token *tokens, size_t n, bool *won_r);
	/* release and audit are serialised JSON objects (audit's keys
	 * sorted, as audit_append's data). */
	int (*code_add)(struct store_backend *b, const struct store_token *code, int64_t now,
	                const char *release, const char *audit);
	/* scope and secret_hash NULL: unchanged; before->settings_text not
	 * NULL; settings serialised. */
	int (*client_set_state)(struct store_backend *b, const struct store_client *before,
	                        int status, const char *scope, const char *secret_hash,
	                        const char *settings, bool *found_r);
};

/* The registry, NULL-terminated: the only place a build option selects
 * backends. */
extern const struct store_driver *const store_drivers[];

extern const struct store_driver store_driver_sqlite;
extern const struct store_driver store_driver_pgsql;

/* The prev_hash of the first audit row. */
#define STORE_AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

/* hash = sha256_hex(prev_hash "\n" seq "\n" ts "\n" event "\n" data) into
 * out (65 bytes). Returns out. */
char *store_audit_hash(const char *prev_hash, int64_t seq, int64_t ts, const char *event,
                       const char *data, char out[65]);

/* A migration file migrations_dir/<driver>/NNNN-name.sql. */
struct store_migration {
	int version;
	char *path;
};

/* Lists the migrations of a driver sorted by version; duplicate versions
 * and *.sql files not named NNNN-*.sql are errors (ISSO_ERR_INVALID), a
 * missing directory is ISSO_ERR_IO. Free with store_migrations_free(). */
int store_migrations_scan(const char *migrations_dir, const char *driver,
                          struct store_migration **list_r, size_t *count_r, const char **error_r);
void store_migrations_free(struct store_migration *list, size_t count);
/* Reads a migration file (at most 4 MiB) into a malloc'd string. */
int store_migration_read(const struct store_migration *m, char **sql_r, const char **error_r);

/* A reason for error_r, formatted into a thread-local buffer that stays
 * valid until the next call in this thread. Returns the buffer. */
const char *store_error_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses stored JSON text; ISSO_ERR_STORE when it is not of the expected
 * type (JSON_ARRAY or JSON_OBJECT). NULL text gives NULL. */
int store_json_parse(const char *text, json_type type, json_t **json_r);

#endif
