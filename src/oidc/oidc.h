/* The OpenID Provider: discovery, JWKS, authorization, token, UserInfo,
 * revocation, introspection and logout endpoints. */
#ifndef ISSO_OIDC_H
#define ISSO_OIDC_H

#include <jansson.h>
#include <stdbool.h>

#include "http/http.h"

struct isso_app;
struct store_client;

/* The grant type of counter identification (CIBA Core 1.0 §10.1). */
#define OIDC_CIBA_GRANT "urn:openid:params:grant-type:ciba"

/* Registers every OpenID Provider route. */
void oidc_routes(struct isso_app *app, struct http_server *srv);
/* Back-channel logout for a session that ended without a logout request
 * (the app's session_ended hook). */
/* Person merged is now kept (auth/bind.h): queues a signed persons-merged
 * Security Event Token for each client in clients (client ids) that
 * registered an events_uri (docs/agency-integration.md). Never waits on
 * a client. For app->persons_merged. */
void oidc_persons_merged(struct isso_app *app, const char *kept, const char *merged,
                         json_t *clients);
void oidc_session_ended(struct isso_app *app, json_t *session);
/* Starts what the OpenID Provider runs in the background on app->workers
 * (the JWK set cache of clients, the back-channel logout sender). issod
 * only; 0 or an ISSO_ERR_*. */
int oidc_start(struct isso_app *app);
/* Frees that state; call after app->workers has been stopped. */
void oidc_stop(struct isso_app *app);
/* The error answer (status 400, 404, 405, 413, 500 …) on the legacy
 * API's machine paths (/tpcd/… but its authorize, /isso/oauth2/token):
 * OAuth-style JSON, never a page. True when it answered. */
bool oidc_legacy_http_error(struct http_req *req, int status);
/* Builds the discovery document once, at start-up. */
int oidc_discovery_build(struct isso_app *app);

/* Ends an authorization request (as stored in a login transaction) with an
 * error redirect to its redirect_uri, carrying state and iss (RFC 9207). */
void oidc_error_redirect(struct isso_app *app, struct http_req *req, json_t *request,
                         const char *error, const char *description);
/* Issues an authorization code for request to the person of session and
 * redirects to the client. The session is the browser session object; its
 * store key is session_key (for the client list of back-channel logout). */
void oidc_code_redirect(struct isso_app *app, struct http_req *req, json_t *request,
                        json_t *session, const char *session_key);

/* Whether request (a stored authorization request) needs the consent page
 * for uuid after the login described by session: prompt=consent, a scope
 * not yet granted to its client, or a scope granted when it had nothing to
 * release that now would release something. */
int oidc_consent_needed(struct isso_app *app, json_t *request, const char *uuid, json_t *session,
                        bool *needed_r);
/* The version of the notice the consent page shows, recorded with each
 * consent. */
extern const char oidc_consent_notice_version[];
/* Records consent to scope for the fields in claims (what the citizen was
 * shown): scopes that released nothing are remembered as such ("word?"),
 * the optional scopes in declined (space-separated, may be NULL) as left
 * unticked ("word-", and in the record's "declined"), with the notice
 * version. */
int oidc_consent_record(struct isso_app *app, const char *uuid, const char *client_id,
                        const char *scope, const char *declined, json_t *claims);
/* scope without the words the stored consent (consented, may be NULL)
 * marks declined: what is released. malloc'd. */
char *oidc_scope_consented(const char *scope, const char *consented);
/* Whether the client marked the claim scope word optional (its settings'
 * "optional_scopes"): the citizen may untick it on the consent page. */
bool oidc_scope_optional(const struct store_client *c, const char *word);
/* The words of scope the client marked optional, in scope order: what the
 * app may let the citizen decline at a counter. A new array. */
json_t *oidc_scope_optional_list(const struct store_client *c, const char *scope);
/* The words of scope for which keep(word, ctx) is true, in order, as a
 * new JSON array of strings (words of 64 bytes or more are skipped). */
json_t *oidc_scope_words_where(const char *scope, bool (*keep)(const char *word, const void *ctx),
                               const void *ctx);
/* The citizen's declined fields (a JSON array of scope words, NULL for
 * none) checked against scope: each one of its optional words, each once.
 * 0 with *declined_r (the declined words, space-separated) and
 * *released_r (scope without them), both malloc'd; ISSO_ERR_INVALID for
 * anything else (a required or unknown word, not an array of strings). */
int oidc_scope_decline(const struct store_client *c, const char *scope, const json_t *declined,
                       char **declined_r, char **released_r);
/* Validates a client's settings' "optional_scopes" (absent is fine): an
 * array of distinct claim scopes among client_scope. 0, or
 * ISSO_ERR_INVALID with *why_r. */
int oidc_optional_scopes_check(const json_t *settings, const char *client_scope,
                               const char **why_r);

/* The citizen withdraws the consent uuid gave client_id: the consent is
 * deleted, every token of uuid for the client revoked at once, the client
 * told by back-channel logout when it registered a URI, and the audit log
 * records consent_withdrawn. 0, or an ISSO_ERR_* when the store failed
 * (then nothing is claimed to be done). */
int oidc_consent_withdraw(struct isso_app *app, const char *uuid, const char *client_id);

/* The claims (name → value) that scope releases about uuid after a login
 * described by session (method, verified phone). Only what the method may
 * vouch for is included. *claims_r is a new object. */
int oidc_claims(struct isso_app *app, const char *uuid, const char *scope, json_t *session,
                json_t **claims_r);
/* For a request of the legacy API: adds to claims (of oidc_claims for the
 * request's scope) what only that API releases: account (a TaipeiPass
 * member's login name, with profile), legacy_verify_level and
 * legacy_member_type. 0 or an ISSO_ERR_*. */
int oidc_legacy_claims_add(struct isso_app *app, json_t *request, json_t *session, json_t *claims);
/* The pairwise subject of uuid for client_id (43 characters + NUL). */
const char *oidc_sub(struct isso_app *app, const char *client_id, const char *uuid, char out[44]);
/* The client by id, only when approved; NULL otherwise. Caller frees with
 * store_client_free(). */
struct store_client *oidc_client(struct isso_app *app, const char *client_id);
/* The same, telling a store failure (< 0) from an unknown or unapproved
 * client (0 with *client_r NULL). */
int oidc_client_find(struct isso_app *app, const char *client_id, struct store_client **client_r);
/* Checks the settings the OpenID Provider reads from a client's settings
 * object (access_token_format "opaque" | "jwt", access_token_audience);
 * other keys are left to whoever reads them. 0, or ISSO_ERR_INVALID with
 * *why_r (static). */
int oidc_client_settings_check(const json_t *settings, const char **why_r);
/* The origin (scheme://host[:port]) of an absolute URL, for CSP. */
const char *oidc_origin(struct pool *pool, const char *uri);
/* True when uri is one of the JSON array's strings, compared exactly. */
bool oidc_uri_listed(json_t *uris, const char *uri);

#endif
