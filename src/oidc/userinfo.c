/* UserInfo (OIDC Core §5.3), revocation (RFC 7009), introspection
 * (RFC 7662), discovery and JWKS. */
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "auth/method.h"
#include "http/parse.h"
#include "jose/jose.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define DPOP_ALGS_TEXT "ES256 RS256 PS256"

/* Answers a refused resource request with a challenge of scheme ("Bearer"
 * or "DPoP", RFC 6750 §3, RFC 9449 §7.1); with no error, both schemes are
 * offered. */
static void
auth_error(struct http_req *req, const char *scheme, int status, const char *error,
           const char *description)
{
	struct pool *pool = http_pool(req);
	const char *algs = strcmp(scheme, "DPoP") == 0 ? ", algs=\"" DPOP_ALGS_TEXT "\"" : "";

	if (error == NULL)
		http_set_header(req, "WWW-Authenticate",
		                "Bearer realm=\"isso\", DPoP realm=\"isso\", algs=\"" DPOP_ALGS_TEXT
		                "\"");
	else
		http_set_header(req, "WWW-Authenticate",
		                pool_printf(pool,
		                            "%s realm=\"isso\", error=\"%s\", "
		                            "error_description=\"%s\"%s",
		                            scheme, error, description, algs));
	if (error == NULL)
		http_send(req, status, "text/plain; charset=utf-8", "", 0);
	else
		oidc_json_error(req, status, error, description);
}

static void
bearer_error(struct http_req *req, int status, const char *error, const char *description)
{
	auth_error(req, "Bearer", status, error, description);
}

/* RFC 9449 §7: a DPoP-bound token (bound: its key's thumbprint) only with
 * the DPoP scheme and a proof of that key for this request; a Bearer
 * token never as DPoP. Answers and returns true when the request is
 * refused. */
static bool
dpop_binding_refused(struct isso_app *app, struct http_req *req, const char *value,
                     const char *bound, bool as_dpop)
{
	const char *why = NULL;
	char jkt[44];
	int ret;

	if (bound != NULL && !as_dpop) {
		auth_error(req, "DPoP", 401, "invalid_token",
		           "the token is DPoP-bound: use the DPoP scheme with a proof");
		return true;
	}
	if (bound == NULL && as_dpop) {
		auth_error(req, "DPoP", 401, "invalid_token", "the token is not DPoP-bound");
		return true;
	}
	if (bound == NULL)
		return false;
	ret = oidc_dpop_check(app, req, value, jkt, &why);
	if (ret == ISSO_ERR_INVALID || (ret == 0 && jkt[0] == '\0')) {
		auth_error(req, "DPoP", 401, "invalid_dpop_proof",
		           why != NULL ? why : "DPoP proof missing");
		return true;
	}
	if (ret < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		return true;
	}
	if (strcmp(jkt, bound) != 0) {
		auth_error(req, "DPoP", 401, "invalid_dpop_proof",
		           "the DPoP proof is signed by another key than the token is bound to");
		return true;
	}
	return false;
}

static void
userinfo(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *header = http_header(req, "Authorization");
	const char *from_bearer = header != NULL ? parse_bearer(header) : NULL;
	const char *from_dpop = header != NULL ? parse_auth_token(header, "DPoP") : NULL;
	const char *from_header = from_bearer != NULL ? from_bearer : from_dpop;
	const char *from_body =
	    http_method(req) == HTTP_POST ? http_form(req, "access_token") : NULL;
	const char *value;
	struct store_token *t = NULL;
	struct store_client *c = NULL;
	json_t *claims = NULL;
	char sub[44];

	/* RFC 6750 §2: exactly one way of sending the token. */
	if (from_header != NULL && from_body != NULL) {
		bearer_error(req, 400, "invalid_request", "token sent twice");
		goto out;
	}
	if (header != NULL && from_header == NULL) {
		bearer_error(req, 401, "invalid_token", "malformed Authorization header");
		goto out;
	}
	value = from_header != NULL ? from_header : from_body;
	if (value == NULL) {
		bearer_error(req, 401, NULL, NULL);
		goto out;
	}
	if (oidc_at_form(value) != OIDC_AT_STORED) {
		/* Self-contained access tokens come only from
		 * client_credentials: no person to tell about, once the token
		 * itself holds. */
		json_t *at = NULL;
		if (oidc_at_active(app, value, &at) < 0) {
			oidc_json_error(req, 503, "temporarily_unavailable", NULL);
			goto out;
		}
		if (at == NULL) {
			auth_error(req, from_dpop != NULL ? "DPoP" : "Bearer", 401, "invalid_token",
			           "unknown, expired or revoked token");
		} else if (!dpop_binding_refused(app, req, value,
		                                 json_string_value(json_object_get(
		                                     json_object_get(at, "cnf"), "jkt")),
		                                 from_dpop != NULL)) {
			if (oidc_client_find(
			        app, json_string_value(json_object_get(at, "client_id")), &c) < 0)
				oidc_json_error(req, 503, "temporarily_unavailable", NULL);
			else if (c == NULL)
				bearer_error(req, 401, "invalid_token",
				             "the client is no longer active");
			else
				bearer_error(req, 403, "insufficient_scope",
				             "the token carries no openid scope");
		}
		json_decref(at);
		goto out;
	}
	if (oidc_token_lookup(app, value, &t) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (t == NULL || t->kind != TOKEN_ACCESS || t->revoked) {
		auth_error(req, from_dpop != NULL ? "DPoP" : "Bearer", 401, "invalid_token",
		           "unknown, expired or revoked token");
		goto out;
	}
	if (dpop_binding_refused(app, req, value,
	                         json_string_value(json_object_get(t->data, "jkt")),
	                         from_dpop != NULL))
		goto out;
	if (t->uuid == NULL || !scope_has(t->scope, "openid")) {
		bearer_error(req, 403, "insufficient_scope", "the token carries no openid scope");
		goto out;
	}
	if (oidc_client_find(app, t->client_id, &c) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (c == NULL) {
		bearer_error(req, 401, "invalid_token", "the client is no longer active");
		goto out;
	}
	claims = oidc_open_claims(app, t->data);
	if (claims == NULL) {
		oidc_json_error(req, 500, "server_error", NULL);
		goto out;
	}
	/* A token narrowed at refresh releases only what its scope names. */
	claims_restrict(claims, t->scope);
	json_object_set_new(claims, "sub", json_string(oidc_sub(app, t->client_id, t->uuid, sub)));
	http_send_json(req, 200, claims);
	claims = NULL;
out:
	json_decref(claims);
	store_token_free(t);
	store_client_free(c);
}

static void
revoke(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	struct store_client *c = oidc_client_auth(app, req);
	struct store_token *t = NULL;
	const char *value;

	if (c == NULL)
		return;
	value = http_form(req, "token");
	if (value == NULL) {
		oidc_json_error(req, 400, "invalid_request", "token missing");
		goto out;
	}
	if (oidc_at_form(value) != OIDC_AT_STORED) {
		json_t *at = NULL;
		const char *why;
		/* An expired or forged one needs nothing; another client's
		 * is not ours to revoke (RFC 7009 §2.1) but answered alike. */
		if (oidc_at_verify(app, value, app_now(), &at, &why) == 0 &&
		    strcmp(json_string_value(json_object_get(at, "client_id")), c->client_id) ==
		        0 &&
		    oidc_at_revoke(app, at) < 0) {
			json_decref(at);
			/* RFC 7009 §2.2.1: the client may retry. */
			oidc_json_error(req, 503, "temporarily_unavailable", NULL);
			goto out;
		}
		json_decref(at);
		http_send(req, 200, "application/json", "{}", 2);
		goto out;
	}
	/* RFC 7009 §2.2.1: when the token cannot be looked up or revoked now,
	 * 503, so the client tries again rather than believe it revoked. */
	if (oidc_token_lookup(app, value, &t) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	/* RFC 7009 §2.2: unknown tokens and other clients' tokens get 200 too. */
	if (t != NULL && strcmp(t->client_id, c->client_id) == 0 && t->kind != TOKEN_CODE &&
	    (t->kind == TOKEN_REFRESH ? store_token_revoke_grant(app->store, t->grant_id)
	                              : store_token_revoke(app->store, t->hash)) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	http_send(req, 200, "application/json", "{}", 2);
out:
	store_token_free(t);
	store_client_free(c);
}

/* RFC 7662 for a self-contained access token (a JWT, RFC 9068, or a
 * sealed one): active only for the client it was issued to, while it is
 * unexpired, not revoked and within the client's approved scope. */
static void
introspect_self(struct isso_app *app, struct http_req *req, const struct store_client *c,
                const char *value)
{
	json_t *at = NULL, *o;
	static const char *const copied[] = {"scope", "client_id", "exp", "iat", "iss",
	                                     "sub",   "aud",       "jti", "cnf", NULL};

	if (oidc_at_active(app, value, &at) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		return;
	}
	/* Nor once the client's approval no longer covers its scope: a
	 * self-contained token cannot be narrowed, only refused. */
	if (at == NULL ||
	    strcmp(json_string_value(json_object_get(at, "client_id")), c->client_id) != 0 ||
	    !oidc_scope_subset(json_string_value(json_object_get(at, "scope")) ?: "", c->scope)) {
		json_decref(at);
		http_send_json(req, 200, json_pack("{s:b}", "active", 0));
		return;
	}
	/* RFC 9449 §6.2: a DPoP-bound one says so, with its key. */
	o = json_pack("{s:b, s:s}", "active", 1, "token_type",
	              json_object_get(at, "cnf") != NULL ? "DPoP" : "Bearer");
	for (const char *const *k = copied; *k != NULL; k++) {
		json_t *v = json_object_get(at, *k);
		if (v != NULL)
			json_object_set(o, *k, v);
	}
	if (json_object_get(o, "scope") == NULL)
		json_object_set_new(o, "scope", json_string(""));
	json_decref(at);
	http_send_json(req, 200, o);
}

static void
introspect(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	struct store_client *c = oidc_client_auth(app, req);
	struct store_token *t = NULL;
	const char *value, *bound;
	json_t *o;
	char sub[44];

	if (c == NULL)
		return;
	value = http_form(req, "token");
	if (value == NULL) {
		oidc_json_error(req, 400, "invalid_request", "token missing");
		goto out;
	}
	if (oidc_at_form(value) != OIDC_AT_STORED) {
		introspect_self(app, req, c, value);
		goto out;
	}
	if (oidc_token_lookup(app, value, &t) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (t == NULL || t->revoked || t->kind == TOKEN_CODE ||
	    (t->kind == TOKEN_REFRESH && t->used) || strcmp(t->client_id, c->client_id) != 0) {
		http_send_json(req, 200, json_pack("{s:b}", "active", 0));
		goto out;
	}
	bound = json_string_value(json_object_get(t->data, "jkt"));
	o = json_pack("{s:b, s:s, s:s, s:I, s:I, s:s, s:s}", "active", 1, "scope", t->scope,
	              "client_id", t->client_id, "exp", (json_int_t)t->expires_at, "iat",
	              (json_int_t)t->created_at, "iss", app->issuer, "token_type",
	              t->kind != TOKEN_ACCESS ? "refresh_token"
	              : bound != NULL         ? "DPoP"
	                                      : "Bearer");
	/* RFC 9449 §6.2: the key the token is bound to. */
	if (bound != NULL)
		json_object_set_new(o, "cnf", json_pack("{s:s}", "jkt", bound));
	if (t->uuid != NULL)
		json_object_set_new(o, "sub",
		                    json_string(oidc_sub(app, t->client_id, t->uuid, sub)));
	http_send_json(req, 200, o);
out:
	store_token_free(t);
	store_client_free(c);
}

static void
discovery(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;

	http_set_header(req, "Cache-Control", "public, max-age=3600");
	http_set_header(req, "Access-Control-Allow-Origin", "*");
	http_send(req, 200, "application/json", app->discovery, strlen(app->discovery));
}

static void
jwks(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	char *text = jose_keyset_jwks_dup(app->keys);

	http_set_header(req, "Cache-Control", "public, max-age=3600");
	http_set_header(req, "Access-Control-Allow-Origin", "*");
	http_send(req, 200, "application/jwk-set+json", text, strlen(text));
	free(text);
}

int
oidc_discovery_build(struct isso_app *app)
{
	const char *iss = app->issuer;
	json_t *d, *extra, *scopes = json_array(), *acrs = json_array();

	json_array_append_new(scopes, json_string("openid"));
	json_array_append_new(scopes, json_string("offline_access"));
	for (unsigned i = 0; i < claim_scopes_count; i++)
		json_array_append_new(scopes, json_string(claim_scopes[i].scope));
	for (int l = LOA_LOW; l <= LOA_HIGH; l++)
		json_array_append_new(acrs, json_string(loa_name((enum loa)l)));
	d = json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:[s], s:[s], s:[s,s,s],"
	    " s:[s], s:[s,s], s:[s,s,s], s:[s,s], s:[s], s:o, s:[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s],"
	    " s:b, s:b, s:b, s:b, s:[s,s], s:[s,s,s], s:[s,s,s]}",
	    "issuer", iss, "authorization_endpoint", "", "token_endpoint", "", "userinfo_endpoint",
	    "", "jwks_uri", "", "revocation_endpoint", "", "introspection_endpoint", "",
	    "end_session_endpoint", "", "scopes_supported", scopes, "response_types_supported",
	    "code", "response_modes_supported", "query", "grant_types_supported",
	    "authorization_code", "refresh_token", "client_credentials", "subject_types_supported",
	    "pairwise", "id_token_signing_alg_values_supported", "ES256", "RS256",
	    "token_endpoint_auth_methods_supported", "client_secret_basic", "client_secret_post",
	    "private_key_jwt", "token_endpoint_auth_signing_alg_values_supported", "ES256", "RS256",
	    "code_challenge_methods_supported", "S256", "acr_values_supported", acrs,
	    "claims_supported", "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr",
	    "amr", "sid", "uuid", "name", "id_number", "phone_number", "email",
	    "claims_parameter_supported", 0, "request_parameter_supported", 0,
	    "backchannel_logout_supported", 1, "backchannel_logout_session_supported", 1,
	    "ui_locales_supported", "zh-TW", "en", "revocation_endpoint_auth_methods_supported",
	    "client_secret_basic", "client_secret_post", "private_key_jwt",
	    "introspection_endpoint_auth_methods_supported", "client_secret_basic",
	    "client_secret_post", "private_key_jwt");
	if (d == NULL)
		return ISSO_ERR_INVALID;
	json_object_set_new(d, "authorization_endpoint", json_sprintf("%s/authorize", iss));
	json_object_set_new(d, "token_endpoint", json_sprintf("%s/token", iss));
	json_object_set_new(d, "userinfo_endpoint", json_sprintf("%s/userinfo", iss));
	json_object_set_new(d, "jwks_uri", json_sprintf("%s/jwks", iss));
	json_object_set_new(d, "revocation_endpoint", json_sprintf("%s/revoke", iss));
	json_object_set_new(d, "introspection_endpoint", json_sprintf("%s/introspect", iss));
	json_object_set_new(d, "end_session_endpoint", json_sprintf("%s/logout", iss));
	json_object_set_new(d, "authorization_response_iss_parameter_supported", json_true());
	/* RFC 9126 §5: PAR is available to all and required per client. */
	json_object_set_new(d, "pushed_authorization_request_endpoint",
	                    json_sprintf("%s/par", iss));
	json_object_set_new(d, "require_pushed_authorization_requests", json_false());
	/* CIBA Core §4: counter identification, poll mode only. */
	json_array_append_new(json_object_get(d, "grant_types_supported"),
	                      json_string(OIDC_CIBA_GRANT));
	json_object_set_new(d, "backchannel_authentication_endpoint",
	                    json_sprintf("%s/bc-authorize", iss));
	json_object_set_new(d, "backchannel_token_delivery_modes_supported",
	                    json_pack("[s]", "poll"));
	json_object_set_new(d, "backchannel_user_code_parameter_supported", json_false());
	/* RFC 9449 §5.1. */
	extra = json_array();
	for (const char *const *a = oidc_dpop_algs; *a != NULL; a++)
		json_array_append_new(extra, json_string(*a));
	json_object_set_new(d, "dpop_signing_alg_values_supported", extra);
	extra = json_pack("[s,s,s,s,s,s]", "phone_number_verified", "email_verified", "birthdate",
	                  "address", "member_level", "organization");
	json_array_extend(json_object_get(d, "claims_supported"), extra);
	json_decref(extra);
	free(app->discovery);
	app->discovery = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	return app->discovery != NULL ? 0 : ISSO_ERR_NOMEM;
}

void
oidc_userinfo_routes(struct isso_app *app, struct http_server *srv)
{
	http_route(srv, HTTP_GET | HTTP_POST, "/userinfo", userinfo, app);
	http_route(srv, HTTP_POST, "/revoke", revoke, app);
	http_route(srv, HTTP_POST, "/introspect", introspect, app);
	http_route(srv, HTTP_GET, "/.well-known/openid-configuration", discovery, app);
	http_route(srv, HTTP_GET, "/jwks", jwks, app);
}

void
oidc_routes(struct isso_app *app, struct http_server *srv)
{
	oidc_authorize_routes(app, srv);
	oidc_token_routes(app, srv);
	oidc_ciba_routes(app, srv);
	oidc_userinfo_routes(app, srv);
	oidc_logout_routes(app, srv);
	oidc_legacy_routes(app, srv);
}
