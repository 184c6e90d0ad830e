/* The existing iSSO and TaipeiPass API (docs/legacy-api.md), for agencies
 * that integrated years ago with plain OAuth 2.0: its authorize paths,
 * its token calls (HTTP Basic at /isso, client_id and client_secret in the
 * body at /tpcd, no redirect_uri) and the TaipeiPass member data call with
 * its envelope. Logins, consent, single sign-on and the release rules are
 * the OpenID Provider's own: a legacy authorize is an OIDC authorize with
 * the legacy names translated (the table below). */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "auth/person.h"
#include "http/parse.h"
#include "jose/jose.h"
#include "lib/buf.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define LEGACY_VERSION "1.0.9"

/* Fields of the answer that no scope fills here (null, as the real
 * service answers for what it does not release). */
static const char *const legacy_unfilled[] = {"idNoUnverified", "citizen", "nativePeople", NULL};

/* A presented code: iSSO's (43 characters) or a short one. 0 with *t_r
 * (NULL when unknown), or < 0 when the store fails. */
static int
legacy_code_lookup(struct isso_app *app, const char *value, struct store_token **t_r)
{
	struct store_token *t = NULL;
	char hash[65];
	int ret;

	*t_r = NULL;
	if (!oidc_legacy_short_code_hash(value, hash))
		return strlen(value) == OIDC_LEGACY_SHORT_CODE_LEN
		           ? 0
		           : oidc_token_lookup(app, value, t_r);
	ret = store_token_get(app->store, hash, app_now(), &t);
	if (ret < 0)
		return ret;
	/* Only codes have the short form. */
	if (t != NULL && t->kind != TOKEN_CODE) {
		store_token_free(t);
		t = NULL;
	}
	*t_r = t;
	return 0;
}

/* ---- authorize ---- */

static void
isso_authorize(struct http_req *req, void *ctx)
{
	oidc_authorize_run(ctx, req, "isso");
}

static void
tpcd_authorize(struct http_req *req, void *ctx)
{
	oidc_authorize_run(ctx, req, "tpcd");
}

/* ---- token ---- */

enum legacy_auth {
	LEGACY_AUTH_BASIC, /* /isso/oauth2/token */
	LEGACY_AUTH_BODY,  /* /tpcd/oauth/token */
};

/* The client of a legacy token call, authenticated the one way its path
 * takes; NULL after answering the OAuth error. */
static struct store_client *
legacy_client_auth(struct isso_app *app, struct http_req *req, enum legacy_auth how)
{
	struct pool *pool = http_pool(req);
	const char *authz = http_header(req, "Authorization");
	const char *form_id = http_form(req, "client_id");
	const char *form_secret = http_form(req, "client_secret");
	const char *method = how == LEGACY_AUTH_BASIC ? "basic" : "body";
	bool basic = authz != NULL && strncasecmp(authz, "Basic ", 6) == 0;
	struct store_client *c = NULL;
	char *user = NULL, *pass = NULL;
	const char *id = NULL, *secret = NULL, *why;
	char hash[65];

	if (how == LEGACY_AUTH_BASIC) {
		if (form_secret != NULL) {
			why = "send the client credentials with HTTP Basic";
			goto denied;
		}
		if (!basic) {
			why = "client authentication missing";
			goto denied;
		}
		if (parse_basic_auth(pool, authz, &user, &pass) < 0) {
			why = "malformed Basic credentials";
			goto denied;
		}
		if (form_id != NULL && strcmp(form_id, user) != 0) {
			oidc_json_error(req, 400, "invalid_request", "client_id mismatch");
			return NULL;
		}
		id = user;
		secret = pass;
	} else {
		if (authz != NULL) {
			why = "send client_id and client_secret in the body";
			goto denied;
		}
		id = form_id;
		secret = form_secret;
		if (id == NULL || secret == NULL) {
			why = "client authentication missing";
			goto denied;
		}
	}
	if (oidc_client_find(app, id, &c) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		return NULL;
	}
	/* Unknown client and wrong secret answer alike. */
	secret_sha256_hex(secret, strlen(secret), hash);
	if (c == NULL || c->secret_hash == NULL || !secret_equal(c->secret_hash, hash)) {
		why = "Bad client credentials";
		goto denied;
	}
	explicit_bzero(hash, sizeof(hash));
	if (!oidc_legacy_allowed(c)) {
		oidc_security_event(req, "legacy_api_refused", "client_id", c->client_id, NULL);
		oidc_json_error(req, 400, "unauthorized_client",
		                "the client is not registered for the legacy API");
		store_client_free(c);
		return NULL;
	}
	return c;
denied:
	explicit_bzero(hash, sizeof(hash));
	oidc_security_event(req, "client_auth_refused", "client_id", id, "method", method, "reason",
	                    why, "api", "legacy", NULL);
	if (how == LEGACY_AUTH_BASIC)
		http_set_header(req, "WWW-Authenticate", "Basic realm=\"isso\"");
	oidc_json_error(req, 401, "invalid_client", why);
	store_client_free(c);
	return NULL;
}

/* Redeems t (oidc_redeem: spent in the same transaction as the new tokens
 * are added) and answers with the token response of the legacy contract:
 * its scope in the legacy names the grant was given for. */
static void
legacy_tokens_send(struct isso_app *app, struct http_req *req, const struct store_client *c,
                   const struct store_token *t, const char *event, const char *description)
{
	json_t *rep = oidc_redeem(app, req, c, t, t->scope, false, "", event, description);

	if (rep == NULL)
		return;
	json_object_del(rep, "id_token");
	json_object_set_new(rep, "token_type", json_string("bearer"));
	json_object_set(rep, "scope", json_object_get(t->data, "legacy_scope"));
	http_send_json(req, 200, rep);
	log_info("legacy_token_issued", "client_id", c->client_id, NULL);
}

static void
legacy_refused(struct http_req *req, const struct store_client *c, const char *grant_type,
               const char *error, const char *description)
{
	oidc_security_event(req, "grant_refused", "client_id", c->client_id, "grant_type",
	                    grant_type, "error", error, "reason", description, "api", "legacy",
	                    NULL);
	oidc_json_error(req, 400, error, description);
}

static void
legacy_grant_code(struct isso_app *app, struct http_req *req, struct store_client *c)
{
	const char *code = http_form(req, "code");
	const char *uri = http_form(req, "redirect_uri");
	const char *verifier = http_form(req, "code_verifier");
	const char *challenge, *want_uri, *why = NULL;
	struct store_token *t = NULL;

	if (code == NULL || code[0] == '\0') {
		oidc_json_error(req, 400, "invalid_request", "code missing");
		goto out;
	}
	if (legacy_code_lookup(app, code, &t) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	/* The code must come from a legacy authorize for this very client:
	 * nothing else stands in for the redirect_uri and PKCE checks. */
	if (t == NULL || t->kind != TOKEN_CODE || t->revoked ||
	    strcmp(t->client_id, c->client_id) != 0 || json_object_get(t->data, "legacy") == NULL) {
		legacy_refused(req, c, "authorization_code", "invalid_grant",
		               "Invalid authorization code");
		goto out;
	}
	/* Not required, but when sent it must be the one used at authorize. */
	want_uri = json_string_value(json_object_get(t->data, "redirect_uri"));
	if (uri != NULL && strcmp(uri, want_uri != NULL ? want_uri : "") != 0)
		why = "redirect_uri mismatch";
	challenge = json_string_value(json_object_get(t->data, "code_challenge"));
	if (why == NULL && challenge != NULL &&
	    (verifier == NULL || !jose_pkce_s256_ok(verifier, challenge)))
		why = "PKCE verification failed";
	/* A code that fails a check is spent all the same; a replay is told
	 * as a replay whatever else is wrong. */
	if (why != NULL) {
		if (oidc_use_once(app, req, t, c, "code_replayed", "Invalid authorization code"))
			legacy_refused(req, c, "authorization_code", "invalid_grant", why);
		goto out;
	}
	legacy_tokens_send(app, req, c, t, "code_replayed", "Invalid authorization code");
out:
	store_token_free(t);
}

static void
legacy_grant_refresh(struct isso_app *app, struct http_req *req, struct store_client *c)
{
	const char *value = http_form(req, "refresh_token");
	struct store_token *t = NULL;
	char *consented = NULL;

	if (value == NULL || value[0] == '\0') {
		oidc_json_error(req, 400, "invalid_request", "refresh_token missing");
		goto out;
	}
	if (oidc_token_lookup(app, value, &t) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (t == NULL || t->kind != TOKEN_REFRESH || t->revoked ||
	    strcmp(t->client_id, c->client_id) != 0 || json_object_get(t->data, "legacy") == NULL) {
		legacy_refused(req, c, "refresh_token", "invalid_grant", "Invalid refresh token");
		goto out;
	}
	/* Consent withdrawn: no refresh token of the grant lives on. */
	if (store_consent_get(app->store, t->uuid, c->client_id, &consented) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (consented == NULL) {
		(void)store_token_revoke_grant(app->store, t->grant_id);
		legacy_refused(req, c, "refresh_token", "invalid_grant", "Invalid refresh token");
		goto out;
	}
	legacy_tokens_send(app, req, c, t, "refresh_token_reused", "Invalid refresh token");
out:
	free(consented);
	store_token_free(t);
}

static void
legacy_token(struct isso_app *app, struct http_req *req, enum legacy_auth how)
{
	static const char *const single[] = {
	    "grant_type",    "code",  "redirect_uri", "refresh_token", "client_id", "client_secret",
	    "code_verifier", "scope", NULL,
	};
	const char *type = http_header(req, "Content-Type");
	const struct http_kvs *form;
	const char *grant_type;
	struct store_client *c = NULL;

	if (type == NULL || strncasecmp(type, "application/x-www-form-urlencoded", 33) != 0) {
		oidc_json_error(req, 400, "invalid_request",
		                "use application/x-www-form-urlencoded");
		return;
	}
	form = http_form_all(req);
	for (const char *const *n = single; *n != NULL; n++) {
		if (http_kvs_count(form, *n) > 1) {
			oidc_json_error(req, 400, "invalid_request", "repeated parameter");
			return;
		}
	}
	grant_type = http_form(req, "grant_type");
	if (grant_type == NULL) {
		oidc_json_error(req, 400, "invalid_request", "grant_type missing");
		return;
	}
	if (strcmp(grant_type, "authorization_code") != 0 &&
	    strcmp(grant_type, "refresh_token") != 0) {
		oidc_json_error(req, 400, "unsupported_grant_type", NULL);
		return;
	}
	c = legacy_client_auth(app, req, how);
	if (c == NULL)
		return;
	if (!scope_has(c->grant_types != NULL ? c->grant_types : STORE_CLIENT_DEFAULT_GRANTS,
	               grant_type))
		legacy_refused(req, c, grant_type, "unauthorized_client",
		               "grant type not registered for this client");
	else if (strcmp(grant_type, "authorization_code") == 0)
		legacy_grant_code(app, req, c);
	else
		legacy_grant_refresh(app, req, c);
	store_client_free(c);
}

static void
isso_token(struct http_req *req, void *ctx)
{
	legacy_token(ctx, req, LEGACY_AUTH_BASIC);
}

static void
tpcd_token(struct http_req *req, void *ctx)
{
	legacy_token(ctx, req, LEGACY_AUTH_BODY);
}

/* ---- member data: GET /tpcd/api/v1.0.9/user/my ---- */

/* A refusal in the resource server's shape: OAuth JSON and a Bearer
 * challenge (RFC 6750 §3). */
static void
legacy_bearer_error(struct http_req *req, int status, const char *error, const char *description)
{
	http_set_header(req, "WWW-Authenticate",
	                pool_printf(http_pool(req),
	                            "Bearer realm=\"isso\", error=\"%s\", error_description=\"%s\"",
	                            error, description));
	oidc_json_error(req, status, error, description);
}

/* "YYYY-MM-DD" as "YYYY/MM/DD"; NULL for anything else. */
static json_t *
legacy_birthday(json_t *birthdate)
{
	const char *s = json_string_value(birthdate);
	char out[11];

	if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return json_null();
	memcpy(out, s, 11);
	out[4] = '/';
	out[7] = '/';
	return json_string(out);
}

/* "+886912345678" as "0912345678" (how the member data answers it). */
static json_t *
legacy_phone(json_t *e164)
{
	const char *s = json_string_value(e164);

	if (s == NULL)
		return json_null();
	if (strncmp(s, "+886", 4) == 0)
		return json_sprintf("0%s", s + 4);
	return json_string(s);
}

/* The value of one legacy field from the sealed claims. */
static json_t *
legacy_field(const struct oidc_legacy_scope *ls, json_t *claims)
{
	json_t *addr = json_object_get(json_object_get(claims, "address"), "formatted");

	if (strcmp(ls->field, "id") == 0)
		return json_incref(json_object_get(claims, "uuid"));
	if (strcmp(ls->field, "account") == 0)
		return json_incref(json_object_get(claims, "account"));
	if (strcmp(ls->field, "memberType") == 0)
		return json_incref(json_object_get(claims, "legacy_member_type"));
	if (strcmp(ls->field, "verifyLevel") == 0)
		return json_incref(json_object_get(claims, "legacy_verify_level"));
	if (strcmp(ls->field, "username") == 0 || strcmp(ls->field, "realName") == 0)
		return json_incref(json_object_get(claims, "name"));
	if (strcmp(ls->field, "email") == 0)
		return json_incref(json_object_get(claims, "email"));
	if (strcmp(ls->field, "phoneNo") == 0)
		return legacy_phone(json_object_get(claims, "phone_number"));
	if (strcmp(ls->field, "idNo") == 0)
		return json_incref(json_object_get(claims, "id_number"));
	if (strcmp(ls->field, "addresses") == 0)
		return addr != NULL ? json_pack("[O]", addr) : json_array();
	if (strcmp(ls->field, "residentAddress") == 0)
		return json_incref(addr);
	if (strcmp(ls->field, "birthday") == 0)
		return legacy_birthday(json_object_get(claims, "birthdate"));
	return NULL;
}

static void
user_my(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *header = http_header(req, "Authorization");
	const char *value = header != NULL ? parse_bearer(header) : NULL;
	const char *legacy_scope;
	struct store_token *t = NULL;
	struct store_client *c = NULL;
	json_t *claims = NULL, *data = NULL, *rep;

	if (header == NULL) {
		/* What the service answered an anonymous call. */
		http_set_header(req, "WWW-Authenticate", "Bearer realm=\"isso\"");
		oidc_json_error(req, 401, "unauthorized",
		                "Full authentication is required to access this resource");
		goto out;
	}
	if (value == NULL) {
		legacy_bearer_error(req, 401, "invalid_token", "Invalid access token");
		goto out;
	}
	if (oidc_token_lookup(app, value, &t) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (t == NULL || t->kind != TOKEN_ACCESS || t->revoked || t->uuid == NULL ||
	    json_object_get(t->data, "legacy") == NULL) {
		legacy_bearer_error(req, 401, "invalid_token", "Invalid access token");
		goto out;
	}
	if (oidc_client_find(app, t->client_id, &c) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (c == NULL || !oidc_legacy_allowed(c)) {
		legacy_bearer_error(req, 401, "invalid_token", "Invalid access token");
		goto out;
	}
	claims = oidc_open_claims(app, t->data);
	if (claims == NULL) {
		oidc_json_error(req, 500, "server_error", NULL);
		goto out;
	}
	/* Every field is in the answer; the ones not asked for, not
	 * approved or not consented to are null. */
	legacy_scope = json_string_value(json_object_get(t->data, "legacy_scope"));
	data = json_object();
	for (size_t i = 0; i < oidc_legacy_scopes_count; i++) {
		const struct oidc_legacy_scope *ls = &oidc_legacy_scopes[i];
		json_t *v = NULL;

		if (scope_has(legacy_scope, ls->name) &&
		    (ls->scope == NULL || scope_has(t->scope, ls->scope)))
			v = legacy_field(ls, claims);
		json_object_set_new(data, ls->field, v != NULL ? v : json_null());
	}
	for (const char *const *f = legacy_unfilled; *f != NULL; f++)
		json_object_set_new(data, *f, json_null());
	rep = json_pack("{s:i, s:s, s:s, s:o, s:I, s:n, s:s}", "status", 0, "name", "SUCCESS",
	                "reasonPhrase", "OK", "data", data, "timestamp",
	                (json_int_t)app_now() * 1000, "extra", "version", LEGACY_VERSION);
	data = NULL;
	http_send_json(req, 200, rep);
out:
	json_decref(data);
	json_decref(claims);
	store_token_free(t);
	store_client_free(c);
}

/* ---- errors on the machine paths ---- */

static bool
legacy_machine_path(const char *path)
{
	if (path == NULL)
		return false;
	if (strncmp(path, "/tpcd/", 6) == 0)
		return strcmp(path, "/tpcd/oauth/authorize") != 0;
	return strncmp(path, "/isso/oauth2/", 13) == 0 &&
	       strcmp(path, "/isso/oauth2/authorize") != 0;
}

bool
oidc_legacy_http_error(struct http_req *req, int status)
{
	const char *error, *description;

	if (!legacy_machine_path(http_path(req)))
		return false;
	switch (status) {
	case 400:
		error = "invalid_request";
		description = "malformed request";
		break;
	case 404:
		error = "not_found";
		description = "no such API";
		break;
	case 405:
		error = "method_not_allowed";
		description = "method not allowed";
		break;
	case 413:
		error = "invalid_request";
		description = "request too large";
		break;
	default:
		error = status >= 500 ? "server_error" : "invalid_request";
		description = NULL;
		break;
	}
	oidc_json_error(req, status, error, description);
	return true;
}

void
oidc_legacy_routes(struct isso_app *app, struct http_server *srv)
{
	http_route(srv, HTTP_GET | HTTP_POST, "/isso/oauth2/authorize", isso_authorize, app);
	http_route(srv, HTTP_POST, "/isso/oauth2/token", isso_token, app);
	http_route(srv, HTTP_GET | HTTP_POST, "/tpcd/oauth/authorize", tpcd_authorize, app);
	http_route(srv, HTTP_POST, "/tpcd/oauth/token", tpcd_token, app);
	http_route(srv, HTTP_GET, "/tpcd/api/v" LEGACY_VERSION "/user/my", user_my, app);
}
