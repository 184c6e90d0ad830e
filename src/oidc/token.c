/* The token endpoint (RFC 6749 §3.2, OIDC Core §3.1.3) and client
 * authentication. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "http/parse.h"
#include "jose/jose.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

/* Refuses a grant (400) and logs it as a security event. */
static void
grant_refused(struct http_req *req, const struct store_client *c, const char *grant_type,
              const char *error, const char *description)
{
	oidc_security_event(req, "grant_refused", "client_id", c->client_id, "grant_type",
	                    grant_type, "error", error, "reason", description, NULL);
	oidc_json_error(req, 400, error, description);
}

void
oidc_spent_refused(struct isso_app *app, struct http_req *req, const struct store_token *t,
                   const struct store_client *c, const char *event, const char *description)
{
	log_warn(event, "client_id", c->client_id, NULL);
	/* A replay whose grant could not be revoked is answered 503: the
	 * client's retry (or the thief's) revokes it then. */
	if (store_token_revoke_grant(app->store, t->grant_id) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		return;
	}
	oidc_json_error(req, 400, "invalid_grant", description);
}

bool
oidc_use_once(struct isso_app *app, struct http_req *req, const struct store_token *t,
              const struct store_client *c, const char *event, const char *description)
{
	bool won = false;

	if (store_token_use(app->store, t->hash, app_now(), &won) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		return false;
	}
	if (!won)
		oidc_spent_refused(app, req, t, c, event, description);
	return won;
}

json_t *
oidc_redeem(struct isso_app *app, struct http_req *req, const struct store_client *c,
            const struct store_token *t, const char *scope, bool with_nonce, const char *jkt,
            const char *event, const char *description)
{
	json_t *rep = NULL;
	int ret;

	ret = oidc_tokens_issue(app, c, t->grant_id, t->uuid, t->sid, scope, t->scope, t->data,
	                        with_nonce, jkt, t->hash, &rep);
	if (ret == ISSO_ERR_DENIED)
		oidc_spent_refused(app, req, t, c, event, description);
	else if (ret < 0)
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
	return rep;
}

/* A token request's DPoP key (jkt, "" for none) against the key its code
 * or refresh token was bound to (want, NULL for none): NULL when they
 * agree, else why not (answered invalid_dpop_proof, RFC 9449 §5, §10). */
static const char *
dpop_key_refusal(const char *want, const char *jkt)
{
	if (want == NULL)
		return NULL;
	if (jkt[0] == '\0')
		return "the grant is bound to a DPoP key: a DPoP proof is required";
	if (strcmp(want, jkt) != 0)
		return "the DPoP proof is signed by another key than the grant is bound to";
	return NULL;
}

/* Why this request may not redeem code t (NULL when it may), *error_r the
 * OAuth error to answer with. */
static const char *
code_refusal(const struct store_token *t, const char *uri, const char *verifier, const char *jkt,
             const char **error_r)
{
	const char *challenge, *want_uri, *why;

	*error_r = "invalid_grant";
	want_uri = json_string_value(json_object_get(t->data, "redirect_uri"));
	if (json_object_get(t->data, "redirect_uri_given") != NULL &&
	    (uri == NULL || strcmp(uri, want_uri ?: "") != 0))
		return "redirect_uri mismatch";
	if (uri != NULL && strcmp(uri, want_uri ?: "") != 0)
		return "redirect_uri mismatch";
	challenge = json_string_value(json_object_get(t->data, "code_challenge"));
	if (challenge != NULL) {
		if (verifier == NULL || !jose_pkce_s256_ok(verifier, challenge))
			return "PKCE verification failed";
	} else if (verifier != NULL) {
		return "no code_challenge was sent";
	}
	why = dpop_key_refusal(json_string_value(json_object_get(t->data, "dpop_jkt")), jkt);
	if (why != NULL)
		*error_r = "invalid_dpop_proof";
	return why;
}

static void
grant_code(struct isso_app *app, struct http_req *req, struct store_client *c, const char *jkt)
{
	const char *code = http_form(req, "code");
	const char *uri = http_form(req, "redirect_uri");
	const char *verifier = http_form(req, "code_verifier");
	struct store_token *t = NULL;
	const char *why, *error;
	json_t *rep;

	if (code == NULL) {
		oidc_json_error(req, 400, "invalid_request", "code missing");
		goto out;
	}
	if (oidc_token_lookup(app, code, &t) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (t == NULL || t->kind != TOKEN_CODE || t->revoked) {
		grant_refused(req, c, "authorization_code", "invalid_grant",
		              "unknown, expired or used code");
		goto out;
	}
	if (strcmp(t->client_id, c->client_id) != 0) {
		grant_refused(req, c, "authorization_code", "invalid_grant",
		              "code was issued to another client");
		goto out;
	}
	/* A code of the legacy API is redeemed there only (legacy.c). */
	if (json_object_get(t->data, "legacy") != NULL) {
		grant_refused(req, c, "authorization_code", "invalid_grant",
		              "code was issued for the legacy API");
		goto out;
	}
	/* RFC 6749 §4.1.2: a replayed code revokes what it issued. A code
	 * that fails a check is spent all the same (it has been shown), and
	 * a replay is told as a replay whatever else is wrong. */
	why = code_refusal(t, uri, verifier, jkt, &error);
	if (why != NULL) {
		if (oidc_use_once(app, req, t, c, "code_replayed", "unknown, expired or used code"))
			grant_refused(req, c, "authorization_code", error, why);
		goto out;
	}
	rep = oidc_redeem(app, req, c, t, t->scope, true, jkt, "code_replayed",
	                  "unknown, expired or used code");
	if (rep != NULL)
		http_send_json(req, 200, rep);
out:
	store_token_free(t);
}

static void
grant_refresh(struct isso_app *app, struct http_req *req, struct store_client *c, const char *jkt)
{
	const char *value = http_form(req, "refresh_token");
	const char *scope = http_form(req, "scope");
	struct store_token *t = NULL;
	char *consented = NULL;
	const char *why;
	json_t *rep;

	if (value == NULL) {
		oidc_json_error(req, 400, "invalid_request", "refresh_token missing");
		goto out;
	}
	if (oidc_token_lookup(app, value, &t) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (t == NULL || t->kind != TOKEN_REFRESH || t->revoked ||
	    strcmp(t->client_id, c->client_id) != 0 || json_object_get(t->data, "legacy") != NULL) {
		grant_refused(req, c, "refresh_token", "invalid_grant",
		              "unknown, expired or revoked token");
		goto out;
	}
	/* Consent withdrawn: no refresh token of the grant lives on. */
	if (store_consent_get(app->store, t->uuid, c->client_id, &consented) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (consented == NULL) {
		(void)store_token_revoke_grant(app->store, t->grant_id);
		grant_refused(req, c, "refresh_token", "invalid_grant", "consent was withdrawn");
		goto out;
	}
	if (scope != NULL && (strlen(scope) > 2048 || !oidc_scope_subset(scope, t->scope))) {
		grant_refused(req, c, "refresh_token", "invalid_scope",
		              "scope exceeds the original grant");
		goto out;
	}
	/* Before it is used up: a thief without the key must not be able to
	 * spend the holder's refresh token. */
	why = dpop_key_refusal(json_string_value(json_object_get(t->data, "jkt")), jkt);
	if (why != NULL) {
		grant_refused(req, c, "refresh_token", "invalid_dpop_proof", why);
		goto out;
	}
	/* Reuse of a rotated refresh token: someone holds a copy, so the
	 * whole family goes (OAuth 2.0 Security BCP §4.14). */
	rep = oidc_redeem(app, req, c, t, scope != NULL ? scope : t->scope, false, jkt,
	                  "refresh_token_reused", "unknown, expired or revoked token");
	if (rep != NULL)
		http_send_json(req, 200, rep);
out:
	free(consented);
	store_token_free(t);
}

/* A self-contained access token (access-token.c), the form the client
 * registered: nothing is written to the store. */
static void
issue_access_token(struct isso_app *app, struct http_req *req, const struct store_client *c,
                   const char *scope, const char *jkt)
{
	int ttl = app->cfg->oidc.access_token_ttl;
	char *token = NULL;

	if (oidc_at_issue(app, c, scope, jkt, ttl, &token) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		return;
	}
	http_send_json(req, 200,
	               json_pack("{s:s, s:s, s:i, s:s}", "access_token", token, "token_type",
	                         jkt[0] != '\0' ? "DPoP" : "Bearer", "expires_in", ttl, "scope",
	                         scope));
	free(token);
}

static void
grant_client_credentials(struct isso_app *app, struct http_req *req, struct store_client *c,
                         const char *jkt)
{
	const char *scope = http_form(req, "scope");

	if (c->public_client) {
		grant_refused(req, c, "client_credentials", "unauthorized_client",
		              "public clients cannot use client_credentials");
		return;
	}
	/* Only scopes the client was approved for (RFC 6749 §3.3), and no
	 * person is involved: personal-data scopes make no sense here. */
	if (scope != NULL && (strlen(scope) > 2048 || !oidc_scope_subset(scope, c->scope))) {
		grant_refused(req, c, "client_credentials", "invalid_scope",
		              "scope not approved for this client");
		return;
	}
	if (scope != NULL && (claims_from_scope(scope) != 0 || scope_has(scope, "openid") ||
	                      scope_has(scope, "offline_access"))) {
		grant_refused(req, c, "client_credentials", "invalid_scope",
		              "client_credentials carry no person");
		return;
	}
	if (!app->cfg->oidc.sealed_access_tokens && !oidc_client_jwt_access_tokens(c)) {
		/* A stored row, for nodes of a version that cannot open a
		 * sealed token (docs/operating.md, upgrading). */
		json_t *data = json_object(), *rep = NULL;
		char grant[44];
		if (oidc_tokens_issue(app, c, secret_token(16, grant), NULL, NULL, scope ?: "",
		                      scope ?: "", data, false, jkt, NULL, &rep) < 0)
			oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		else
			http_send_json(req, 200, rep);
		json_decref(data);
		return;
	}
	issue_access_token(app, req, c, scope != NULL ? scope : "", jkt);
}

/* The CIBA grant (ciba.c), for a confidential client in poll mode. */
static void
grant_ciba(struct isso_app *app, struct http_req *req, struct store_client *c, const char *jkt)
{
	if (!oidc_ciba_client(c)) {
		grant_refused(req, c, OIDC_CIBA_GRANT, "unauthorized_client",
		              "this client is not registered for CIBA (poll mode)");
		return;
	}
	oidc_ciba_grant(app, req, c, jkt);
}

static void
token_endpoint(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *type = http_header(req, "Content-Type");
	const char *grant_type, *why = NULL;
	struct store_client *c = NULL;
	char jkt[44];
	int ret;

	if (type == NULL || strncasecmp(type, "application/x-www-form-urlencoded", 33) != 0) {
		oidc_json_error(req, 400, "invalid_request",
		                "use application/x-www-form-urlencoded");
		return;
	}
	grant_type = http_form(req, "grant_type");
	if (grant_type == NULL) {
		oidc_json_error(req, 400, "invalid_request", "grant_type missing");
		return;
	}
	if (strcmp(grant_type, "authorization_code") != 0 &&
	    strcmp(grant_type, "refresh_token") != 0 &&
	    strcmp(grant_type, "client_credentials") != 0 &&
	    strcmp(grant_type, OIDC_CIBA_GRANT) != 0) {
		oidc_json_error(req, 400, "unsupported_grant_type", NULL);
		return;
	}
	c = oidc_client_auth(app, req);
	if (c == NULL)
		return;
	/* Each client uses only the grants it was registered for. */
	if (!oidc_client_grant(c, grant_type)) {
		grant_refused(req, c, grant_type, "unauthorized_client",
		              "grant type not registered for this client");
		goto out;
	}
	/* RFC 9449 §5: a valid proof binds the tokens to its key. */
	ret = oidc_dpop_check(app, req, NULL, jkt, &why);
	if (ret == ISSO_ERR_INVALID) {
		grant_refused(req, c, grant_type, "invalid_dpop_proof", why);
		goto out;
	}
	if (ret < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (jkt[0] == '\0' && oidc_client_flag(c, "require_dpop")) {
		grant_refused(req, c, grant_type, "invalid_dpop_proof",
		              "this client must send a DPoP proof");
		goto out;
	}
	if (strcmp(grant_type, "authorization_code") == 0)
		grant_code(app, req, c, jkt);
	else if (strcmp(grant_type, "refresh_token") == 0)
		grant_refresh(app, req, c, jkt);
	else if (strcmp(grant_type, OIDC_CIBA_GRANT) == 0)
		grant_ciba(app, req, c, jkt);
	else
		grant_client_credentials(app, req, c, jkt);
	/* grant_type is one of the four above: a bounded label */
	if (http_response_status(req) == 200)
		metrics_token_issued(grant_type);
out:
	store_client_free(c);
}

void
oidc_token_routes(struct isso_app *app, struct http_server *srv)
{
	http_route(srv, HTTP_POST, "/token", token_endpoint, app);
}
