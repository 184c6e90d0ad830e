/* Internals shared by the OpenID Provider's endpoint files. */
#ifndef ISSO_OIDC_PRIVATE_H
#define ISSO_OIDC_PRIVATE_H

#include <stdatomic.h>
#include <stdint.h>

#include "oidc/oidc.h"

struct store_client;
struct store_token;
struct worker_pool;
struct oidc_jwks_cache;

/* What the OpenID Provider runs beside its request handlers (issod only;
 * app->oidc is NULL in issoctl). */
struct oidc_runtime {
	struct oidc_jwks_cache *jwks;
	int backchannel_task; /* worker_every id of the sender */
	char node[24];        /* this process's lease owner name for jobs */
	atomic_int backchannel_sending;
};

/* Clients' JWK sets from their jwks_uri (client-jwks.c). max_waiters: how
 * many request threads may wait for a fetch at once. */
struct oidc_jwks_cache *oidc_jwks_cache_new(struct worker_pool *pool, unsigned max_waiters);
void oidc_jwks_cache_free(struct oidc_jwks_cache *cache);
/* The JWK set of client_id at uri: a new reference, or NULL with *why_r
 * (a static reason). Served from the cache while fresh (its HTTP lifetime,
 * 60 s to 24 h); otherwise fetched once on a worker while at most
 * max_waiters requests wait (at most 1.5 s) and the rest fail at once.
 * A failed fetch is remembered for 30 s. refetch: the set lacked the
 * assertion's key, fetch again if it is at least a minute old. */
json_t *oidc_jwks_get(struct oidc_jwks_cache *cache, const char *client_id, const char *uri,
                      bool refetch, const char **why_r);

void oidc_authorize_routes(struct isso_app *app, struct http_server *srv);
void oidc_token_routes(struct isso_app *app, struct http_server *srv);
void oidc_userinfo_routes(struct isso_app *app, struct http_server *srv);
void oidc_logout_routes(struct isso_app *app, struct http_server *srv);

/* Authenticates the client of a token-endpoint-style request (RFC 6749
 * §2.3, OIDC Core §9). On failure sends the invalid_client answer and
 * returns NULL. Caller frees the client. */
struct store_client *oidc_client_auth(struct isso_app *app, struct http_req *req);

/* Redirects (303) to a client's registered uri with query (already
 * encoded "k=v&…"), then state and iss (RFC 9207) appended; allows the
 * uri's origin in CSP form-action (the answer to a form). */
void oidc_redirect_to_client(struct isso_app *app, struct http_req *req, const char *uri,
                             const char *query, const char *state);

/* Sends an OAuth error JSON {"error","error_description"} with status. */
void oidc_json_error(struct http_req *req, int status, const char *error, const char *description);

/* A new random token value into out (44 bytes) and its store hash into
 * hash (65 bytes). */
void oidc_new_token(char out[44], char hash[65]);

/* Looks a presented token up by value; NULL when unknown or expired. */
struct store_token *oidc_token_lookup(struct isso_app *app, const char *value);

/* Seals / opens the claims carried by codes and tokens. */
char *oidc_seal_claims(struct isso_app *app, json_t *claims);
json_t *oidc_open_claims(struct isso_app *app, json_t *data);

/* ---- JWT access tokens (RFC 9068, access-token.c) ---- */

struct jose_keyset;

/* Whether the client registered access_token_format "jwt" (a settings
 * object that fails oidc_client_settings_check means opaque). */
bool oidc_client_jwt_access_tokens(const struct store_client *c);
/* Whether a presented token has the form of a JWT (opaque ones have no
 * dot). */
bool oidc_at_jwt_form(const char *value);
/* Signs a JWT access token of client c, which has no person behind it
 * (client_credentials): typ at+jwt; iss, exp (now + ttl), aud (the
 * client's access_token_audience, else the issuer), sub and client_id (the
 * client), iat, jti (also written to jti_r) and scope unless empty.
 * *jwt_r is malloc'd. */
int oidc_at_jwt_sign(const struct jose_keyset *ks, const char *issuer, const struct store_client *c,
                     const char *scope, int64_t now, int ttl, char **jwt_r, char jti_r[44]);
/* Checks that value is a JWT access token of this issuer, valid at now:
 * typ at+jwt, signed by one of ks's keys, iss, client_id, jti, exp and
 * iat. Revocation is not looked at. 0 with *claims_r, or ISSO_ERR_INVALID
 * with *why_r. */
int oidc_at_jwt_verify(const struct jose_keyset *ks, const char *issuer, const char *value,
                       int64_t now, json_t **claims_r, const char **why_r);
/* The same, and not revoked: 0 with *claims_r (NULL when the token is not
 * active), or < 0 when the store fails. */
int oidc_at_jwt_active(struct isso_app *app, const char *value, json_t **claims_r);
/* Revokes the JWT access token whose verified claims are given, on every
 * node, until it expires. */
int oidc_at_jwt_revoke(struct isso_app *app, json_t *claims);

/* Queues back-channel logout notices for sid to every client in clients
 * (array of client ids) that registered a URI; a background sender
 * delivers them (with retries, surviving restarts). Never waits on a
 * client. */
void oidc_backchannel_logout(struct isso_app *app, const char *uuid, const char *sid,
                             json_t *clients);
/* Starts / stops the back-channel sender on app->workers (logout.c). */
int oidc_backchannel_start(struct isso_app *app);

/* Logs a security event (JSON line, level warn): event with the request's
 * client address and the given string fields (NULL-terminated pairs);
 * never pass a secret. */
void oidc_security_event(struct http_req *req, const char *event, ...) __attribute__((sentinel));

#endif
