/* Internals shared by the OpenID Provider's endpoint files. */
#ifndef ISSO_OIDC_PRIVATE_H
#define ISSO_OIDC_PRIVATE_H

#include <stdatomic.h>
#include <stdint.h>

#include "auth/method.h"
#include "oidc/oidc.h"

struct store_client;
struct store_token;
struct store_job;
struct worker_pool;
struct pool;
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

/* The authorization endpoint for a request; legacy: NULL for OpenID
 * Connect, or the legacy API it came in by ("isso", "tpcd"): its names
 * (redirectUri, legacy scope names) are translated, only clients
 * registered for it are served, and the code is marked for the legacy
 * token call. */
void oidc_authorize_run(struct isso_app *app, struct http_req *req, const char *legacy);

/* ---- the existing iSSO / TaipeiPass API's names (legacy-scope.c) ---- */

/* One legacy scope name: the iSSO scope whose consent and release rules
 * it follows (NULL: none, it describes the login, like acr), and the
 * field of the member data answer it fills. */
struct oidc_legacy_scope {
	const char *name;
	const char *scope;
	const char *field;
};
extern const struct oidc_legacy_scope oidc_legacy_scopes[];
extern const size_t oidc_legacy_scopes_count;
/* The legacy scope named by the n bytes at word, or NULL. */
const struct oidc_legacy_scope *oidc_legacy_scope_find(const char *word, size_t n);
/* True, with its store hash in hash, when value has the form of a short
 * code (oidc_legacy_new_code): OIDC_LEGACY_SHORT_CODE_LEN letters and
 * digits. */
#define OIDC_LEGACY_SHORT_CODE_LEN 6
bool oidc_legacy_short_code_hash(const char *value, char hash[65]);

/* ---- the existing iSSO / TaipeiPass API (legacy.c: endpoints; legacy-scope.c: names) ---- */

void oidc_legacy_routes(struct isso_app *app, struct http_server *srv);
/* Was the client registered for the legacy API (settings "legacy_api":
 * true, and a client secret)? */
bool oidc_legacy_allowed(const struct store_client *c);
/* The legacy scope names in scope (space- or comma-separated), known ones
 * only, each once, space-separated; "" when none. From pool. */
char *oidc_legacy_scope_parse(struct pool *pool, const char *scope);
/* The iSSO scopes that the legacy names of legacy_scope need. From pool. */
char *oidc_legacy_scope_map(struct pool *pool, const char *legacy_scope);
/* A code of the older TaipeiPass service's form: 6 letters and digits,
 * into out (7 bytes used), and its store hash into hash. Guessing one
 * takes the client's secret first, and it works once, within oidc.code_ttl. */
void oidc_legacy_new_code(char out[44], char hash[65]);
/* The legacy names of legacy_scope that granted (iSSO scopes) covers. */
char *oidc_legacy_scope_granted(struct pool *pool, const char *legacy_scope, const char *granted);

/* Issues access (+ refresh, + ID) tokens for a grant: *rep_r gets the
 * token response as a new object. data carries auth_time, loa, amr, sid,
 * claims (sealed), nonce and, for the legacy API, legacy and
 * legacy_scope. jkt: the DPoP key's thumbprint ("" for none) that the
 * access token, and a public client's refresh token, are bound to
 * (RFC 9449 §5). spend: the hash of the code or refresh token this
 * request redeems (NULL for none), marked used in the same store
 * transaction that adds the new tokens. ISSO_ERR_DENIED when spend was no
 * longer usable (a replay, or another request won the race); any error
 * (a store or signing failure otherwise) issues and writes nothing. */
int oidc_tokens_issue(struct isso_app *app, const struct store_client *c, const char *grant,
                      const char *uuid, const char *sid, const char *scope, const char *grant_scope,
                      json_t *data, bool with_nonce, const char *jkt, const char *spend,
                      json_t **rep_r);
/* Marks a code or refresh token used. The loser of a race, or a replay,
 * is refused (oidc_spent_refused) and false returned. */
bool oidc_use_once(struct isso_app *app, struct http_req *req, const struct store_token *t,
                   const struct store_client *c, const char *event, const char *description);
/* t was already used (or lost a race to be): someone holds a copy, so the
 * whole grant is revoked, event logged and the request answered
 * invalid_grant with description (503 when the revocation cannot be
 * written: the retry revokes it). */
void oidc_spent_refused(struct isso_app *app, struct http_req *req, const struct store_token *t,
                        const struct store_client *c, const char *event, const char *description);
/* Issues tokens for t's grant, spending t in the same transaction
 * (oidc_tokens_issue with t->hash), and handles what can go wrong: a
 * replay or a lost race as oidc_spent_refused, any other failure 503
 * temporarily_unavailable. The token response, or NULL once answered. */
json_t *oidc_redeem(struct isso_app *app, struct http_req *req, const struct store_client *c,
                    const struct store_token *t, const char *scope, bool with_nonce,
                    const char *jkt, const char *event, const char *description);
/* The attributes the login method vouched for, sealed in the session
 * (phone, id_number, name, birthdate, organisation); a new object, empty
 * when none. */
json_t *oidc_session_attrs(struct isso_app *app, json_t *session);

/* ---- scope words (scope.c) ---- */

/* Is every word of sub also in scope? */
bool oidc_scope_subset(const char *sub, const char *scope);
/* The claim_bit of a claim scope word of len bytes, 0 for openid and the
 * like. */
unsigned oidc_scope_bit(const char *word, size_t len);
/* The scope an authorization request is granted: the requested words
 * (space-separated) that iSSO knows and the client was approved for, in
 * request order, each once; offline_access only with prompt=consent and
 * for a client registered for refresh_token (grant_types NULL: the
 * default grants). "" when nothing is left. Allocated from pool. */
char *oidc_scope_granted(struct pool *pool, const char *requested, const char *approved,
                         const char *prompt, const char *grant_types);
/* The lowest level acceptable for acr_values (the weakest one named, since
 * any of the values satisfies the request); LOA_LOW when none is known. */
enum loa oidc_min_loa(const char *acr_values);

/* ---- authorization request decisions (authorize.c) ---- */

/* True when the browser session is good enough for the stored request
 * without a new login: no prompt=login, within max_age at now, and at
 * the request's min_loa. */
bool oidc_session_satisfies(json_t *session, json_t *request, int64_t now);

/* ---- clients: lookup, redirects, errors, authentication (client.c) ---- */

/* Was client c registered for grant_type (grant_types NULL: the default
 * grants)? */
bool oidc_client_grant(const struct store_client *c, const char *grant_type);

/* Authenticates the client of a token-endpoint-style request (RFC 6749
 * §2.3, OIDC Core §9). On failure sends the invalid_client answer and
 * returns NULL. Caller frees the client. */
struct store_client *oidc_client_auth(struct isso_app *app, struct http_req *req);

/* Whether a private_key_jwt client assertion authenticates client c (RFC
 * 7523 §3): ES256, RS256 or PS256; iss and sub the client_id; aud the
 * issuer as a single string; exp in the future and at most 5 minutes
 * after iat and now (60 s of clock skew for iat and nbf); a jti used only
 * once; signed by a key of the client's JWK set (inline, or from its
 * jwks_uri). Counts the jti as used when it succeeds. false with *why_r,
 * a static reason. What oidc_client_auth runs for private_key_jwt. */
bool oidc_client_assertion_ok(struct isso_app *app, struct store_client *c, const char *assertion,
                              const char **why_r);

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

/* Looks a presented token up by value: 0 with *t_r (NULL when unknown,
 * expired, or a refresh token whose session has ended), or < 0 when the
 * store fails (answer 503: the token may well be good). */
int oidc_token_lookup(struct isso_app *app, const char *value, struct store_token **t_r);

/* Seals / opens the claims carried by codes and tokens. */
char *oidc_seal_claims(struct isso_app *app, json_t *claims);
json_t *oidc_open_claims(struct isso_app *app, json_t *data);

/* ---- self-contained access tokens (access-token.c) ---- */

struct jose_keyset;
struct secret_keys;

/* Whether the client registered access_token_format "jwt" (a settings
 * object that fails oidc_client_settings_check means opaque). */
bool oidc_client_jwt_access_tokens(const struct store_client *c);

/* What a presented access token is: a JWT (two dots), a sealed one
 * ("isso_at1_" and more than 43 characters) or a stored row's. */
enum oidc_at_form { OIDC_AT_STORED, OIDC_AT_JWT, OIDC_AT_SEALED };
enum oidc_at_form oidc_at_form(const char *value);

/* A JWT access token (RFC 9068, typ at+jwt) of client c, which has no
 * person behind it (client_credentials): iss, exp (now + ttl), aud (the
 * client's access_token_audience, else the issuer), sub and client_id (the
 * client), iat, jti (also into jti_r), scope unless empty, and cnf.jkt
 * when jkt (a DPoP key's thumbprint) is not NULL or "". *jwt_r is
 * malloc'd. */
int oidc_at_jwt_sign(const struct jose_keyset *ks, const char *issuer, const struct store_client *c,
                     const char *scope, const char *jkt, int64_t now, int ttl, char **jwt_r,
                     char jti_r[44]);
/* Checks that value is a JWT access token of this issuer, valid at now:
 * typ at+jwt, signed by one of ks's keys, iss, client_id, jti, exp and
 * iat. Revocation is not looked at. 0 with *claims_r, or ISSO_ERR_INVALID
 * with *why_r. */
int oidc_at_jwt_verify(const struct jose_keyset *ks, const char *issuer, const char *value,
                       int64_t now, json_t **claims_r, const char **why_r);
/* The opaque form: client_id, iat, exp, and scope, aud (a registered
 * access_token_audience) and cnf.jkt as above, sealed under keys' token
 * key, bound to the token kind and the issuer. *token_r is malloc'd. */
int oidc_at_seal(const struct secret_keys *keys, const char *issuer, const struct store_client *c,
                 const char *scope, const char *jkt, int64_t now, int ttl, char **token_r);
/* Opens a sealed one of this issuer, valid at now: client_id, iat, exp,
 * and scope, aud and cnf when sealed with them; iss and jti added (no
 * sub: introspection answers as it did for the stored form). Revocation
 * is not looked at.
 * 0 with *claims_r, or ISSO_ERR_INVALID with *why_r. */
int oidc_at_open(const struct secret_keys *keys, const char *issuer, const char *value, int64_t now,
                 json_t **claims_r, const char **why_r);

/* Issues client c's access token in the form it registered: the JWT or
 * the sealed one. *token_r is malloc'd. */
int oidc_at_issue(struct isso_app *app, const struct store_client *c, const char *scope,
                  const char *jkt, int ttl, char **token_r);
/* Verifies or opens a self-contained token (either form) of this
 * provider: as oidc_at_jwt_verify. */
int oidc_at_verify(struct isso_app *app, const char *value, int64_t now, json_t **claims_r,
                   const char **why_r);
/* The same, and not revoked: 0 with *claims_r (NULL when the token is not
 * active), or < 0 when the store fails. */
int oidc_at_active(struct isso_app *app, const char *value, json_t **claims_r);
/* Revokes the self-contained access token whose verified claims are
 * given, on every node, until it expires. */
int oidc_at_revoke(struct isso_app *app, json_t *claims);

/* Queues back-channel logout notices for sid (NULL: every session of
 * uuid, the token names the subject only) to every client in clients
 * (array of client ids) that registered a URI; a background sender
 * delivers them (with retries, surviving restarts). Never waits on a
 * client. */
void oidc_backchannel_logout(struct isso_app *app, const char *uuid, const char *sid,
                             json_t *clients);
/* Starts / stops the back-channel sender on app->workers (logout.c). */
int oidc_backchannel_start(struct isso_app *app);

/* ---- Security Event Tokens to agencies (RFC 8417 / 8935), events.c ---- */

/* The store job kind of a queued event; the back-channel sender
 * (logout.c) claims and retries these too. */
#define OIDC_SET_KIND "security_event"
/* The event type of a merge of two persons into one. */
#define OIDC_EVENT_PERSONS_MERGED "https://isso.gov.taipei/events/persons-merged"
/* Delivers one queued event: as backchannel_deliver (1 nothing to do,
 * 0 delivered, < 0 with *why_r). */
int oidc_set_deliver(struct isso_app *app, const struct store_job *job, const char **why_r);
/* Checks a client settings' events_uri value. */
int oidc_events_uri_check(const json_t *v, const char **why_r);

/* ---- DPoP (RFC 9449), dpop.c ---- */

/* How old (seconds) and how far in the future a proof's iat may be. */
#define OIDC_DPOP_IAT_PAST   60
#define OIDC_DPOP_IAT_FUTURE 5

/* The proof algorithms accepted (NULL-terminated). */
extern const char *const oidc_dpop_algs[];

/* Checks the DPoP header of req (RFC 9449 §4.3): exactly one compact JWT
 * with typ dpop+jwt, an accepted alg, a public jwk that verifies it, jti,
 * htm and htu of this request (against the issuer's URL of this path),
 * iat within the window, and, when access_token is not NULL, ath of it;
 * each jti once per key across nodes. Returns 0 with jkt_r the key's RFC
 * 7638 thumbprint, or with jkt_r "" when the request has no DPoP header;
 * ISSO_ERR_INVALID (bad proof) or ISSO_ERR_STORE with *why_r (static). */
int oidc_dpop_check(struct isso_app *app, struct http_req *req, const char *access_token,
                    char jkt_r[44], const char **why_r);
/* RFC 9449 §4.2 ath: base64url of SHA-256 of the access token. */
void oidc_dpop_ath(const char *access_token, char out[44]);
/* Normalises an absolute http(s) URL for the htu comparison (RFC 9449
 * §4.3, RFC 3986 §6.2.2–6.2.3): lower-case scheme and host, no default or
 * empty port, "/" for an empty path, percent-encoding in upper case with
 * unreserved characters decoded, query and fragment dropped. False (out
 * "") for anything else, user-info included, or when out (size n) is too
 * small. */
bool oidc_dpop_htu_normalize(const char *url, char *out, size_t n);

/* A registered per-client flag of its settings object (e.g.
 * "require_par", "require_dpop"); false unless it is JSON true. */
bool oidc_client_flag(const struct store_client *c, const char *name);

/* Logs a security event (JSON line, level warn): event with the request's
 * client address and the given string fields (NULL-terminated pairs);
 * never pass a secret. */
void oidc_security_event(struct http_req *req, const char *event, ...) __attribute__((sentinel));

/* One release of personal data (claims) to request's client: the audit
 * event "release" and the person's release index, the field names only.
 * request carries client_id, scope and sso; session uuid, method, loa and
 * auth_time. */
int oidc_release_record(struct isso_app *app, json_t *request, json_t *session, json_t *claims,
                        int64_t now);
/* ---- identification at the counter: CIBA, poll mode (ciba.c) ---- */
/* Seconds a counter client waits between polls (slow_down when faster). */
#define OIDC_CIBA_INTERVAL 5
/* Whether client c may start counter identifications: confidential,
 * registered for the CIBA grant, delivery mode poll (its settings'
 * backchannel_token_delivery_mode, absent or "poll"). */
bool oidc_ciba_client(const struct store_client *c);
/* The token endpoint's CIBA grant for authenticated client c (jkt: the
 * DPoP key the tokens are bound to, "" for none): authorization_pending,
 * slow_down, access_denied, expired_token or the tokens, once. */
void oidc_ciba_grant(struct isso_app *app, struct http_req *req, struct store_client *c,
                     const char *jkt);
/* /bc-authorize and the app's /app/v1/ciba/ endpoints. */
void oidc_ciba_routes(struct isso_app *app, struct http_server *srv);
#endif
