/* The OpenID Provider: discovery, JWKS, authorization, token, UserInfo,
 * revocation, introspection and logout endpoints. */
#ifndef ISSO_OIDC_H
#define ISSO_OIDC_H

#include <jansson.h>
#include <stdbool.h>

#include "http/http.h"

struct isso_app;
struct store_client;

/* Registers every OpenID Provider route. */
void oidc_routes(struct isso_app *app, struct http_server *srv);
/* Back-channel logout for a session that ended without a logout request
 * (the app's session_ended hook). */
void oidc_session_ended(struct isso_app *app, json_t *session);
/* Starts what the OpenID Provider runs in the background on app->workers
 * (the JWK set cache of clients, the back-channel logout sender). issod
 * only; 0 or an ISSO_ERR_*. */
int oidc_start(struct isso_app *app);
/* Frees that state; call after app->workers has been stopped. */
void oidc_stop(struct isso_app *app);
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
/* Records consent to scope for the fields in claims (what the citizen was
 * shown): scopes that released nothing are remembered as such. */
int oidc_consent_record(struct isso_app *app, const char *uuid, const char *client_id,
                        const char *scope, json_t *claims);

/* The claims (name → value) that scope releases about uuid after a login
 * described by session (method, verified phone). Only what the method may
 * vouch for is included. *claims_r is a new object. */
int oidc_claims(struct isso_app *app, const char *uuid, const char *scope, json_t *session,
                json_t **claims_r);
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
