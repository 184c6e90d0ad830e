/* Internals shared by the OpenID Provider's endpoint files. */
#ifndef ISSO_OIDC_PRIVATE_H
#define ISSO_OIDC_PRIVATE_H

#include "oidc/oidc.h"

struct store_client;
struct store_token;

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

/* Sends back-channel logout tokens for sid to every client in clients
 * (array of client ids) that registered a URI. Bounded in time. */
void oidc_backchannel_logout(struct isso_app *app, const char *uuid, const char *sid,
                             json_t *clients);

#endif
