/* The authorization endpoint (OpenID Connect Core §3.1.2). */
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "auth/page.h"
#include "http/i18n.h"
#include "http/parse.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define STATE_MAX 4096
#define NONCE_MAX 1024
#define PARAM_MAX 2048

/* Parameters that must appear at most once (RFC 6749 §3.1). */
static const char *const single_params[] = {
    "response_type",
    "client_id",
    "redirect_uri",
    "redirectUri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "acr_values",
    "ui_locales",
    "login_hint",
    "response_mode",
    "request",
    "request_uri",
    "dpop_jkt",
    NULL,
};

static bool
b64url_token_ok(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

static void
set_opt(json_t *o, const char *key, const char *value)
{
	if (value != NULL && value[0] != '\0')
		json_object_set_new(o, key, json_string(value));
}

/* See oidc-private.h. */
bool
oidc_session_satisfies(json_t *session, json_t *request, int64_t now)
{
	json_int_t auth_time = json_integer_value(json_object_get(session, "auth_time"));
	json_t *max_age = json_object_get(request, "max_age");
	const char *prompt = json_string_value(json_object_get(request, "prompt"));

	if (prompt != NULL && scope_has(prompt, "login"))
		return false;
	if (json_is_integer(max_age) && now - auth_time > json_integer_value(max_age))
		return false;
	if (json_integer_value(json_object_get(session, "loa")) <
	    json_integer_value(json_object_get(request, "min_loa")))
		return false;
	return true;
}

/* Where an authorization request's parameters come from: the request to
 * /authorize itself, or the form pushed to /par (RFC 9126 §2.1). */
struct authz_params {
	struct http_req *req;
	json_t *pushed;     /* name → string; NULL: req's query or form */
	const char *legacy; /* the legacy API it came in by (legacy.c), or NULL */
};

static const char *
ap_get(const struct authz_params *p, const char *name)
{
	if (p->pushed != NULL)
		return json_string_value(json_object_get(p->pushed, name));
	return http_param(p->req, name);
}

static size_t
ap_count(const struct authz_params *p, const char *name)
{
	if (p->pushed != NULL)
		return json_object_get(p->pushed, name) != NULL ? 1 : 0;
	return http_param_count(p->req, name);
}

/* Why an authorization request was refused: with page set (a message
 * key), nothing may be redirected to; otherwise error and description go
 * back to the client. description is always set. */
struct authz_refusal {
	const char *page;
	const char *error;
	const char *description;
};

static int
refuse(struct authz_refusal *r, const char *page, const char *error, const char *description)
{
	r->page = page;
	r->error = error;
	r->description = description;
	return ISSO_ERR_INVALID;
}

/* Validates the authorization request in p for client (known and
 * approved) and builds the request object a login transaction carries
 * (OIDC Core §3.1.2.2, RFC 7636, RFC 9449 §10). Returns 0 with *request_r;
 * or ISSO_ERR_INVALID with *r and, when r->page is NULL, *request_r the
 * part of the request that an error redirect needs (client_id,
 * redirect_uri, state). The caller frees *request_r. */
static int
authz_validate(struct pool *pool, const struct authz_params *p, const struct store_client *client,
               json_t **request_r, struct authz_refusal *r)
{
	json_t *request = NULL;
	const char *redirect_uri, *response_type, *scope, *state, *nonce, *challenge, *method;
	const char *prompt, *max_age, *acr_values, *ui_locales, *login_hint, *dpop_jkt;
	const char *legacy_scope = NULL;
	const char *grants =
	    client->grant_types != NULL ? client->grant_types : STORE_CLIENT_DEFAULT_GRANTS;
	char *granted = NULL;
	bool dup = false;

	*request_r = NULL;
	/* Until client and redirect_uri are known good, errors are pages:
	 * redirecting to an unchecked URI would make us an open redirector.
	 * A repeated client_id or redirect_uri leaves no trustworthy place
	 * to redirect to (RFC 6749 §4.1.2.1). */
	if (ap_count(p, "client_id") > 1 || ap_count(p, "redirect_uri") > 1 ||
	    ap_count(p, "redirectUri") > 1)
		return refuse(r, "error.redirect_unregistered", "invalid_request",
		              "repeated client_id or redirect_uri");
	redirect_uri = ap_get(p, "redirect_uri");
	if (redirect_uri == NULL && p->legacy != NULL) /* the legacy API's spelling */
		redirect_uri = ap_get(p, "redirectUri");
	if (redirect_uri == NULL) {
		if (json_array_size(client->redirect_uris) != 1)
			return refuse(r, "error.redirect_missing", "invalid_request",
			              "redirect_uri missing");
		redirect_uri = json_string_value(json_array_get(client->redirect_uris, 0));
	} else if (!oidc_uri_listed(client->redirect_uris, redirect_uri)) {
		return refuse(r, "error.redirect_unregistered", "invalid_request",
		              "redirect_uri not registered");
	}

	request = json_object();
	json_object_set_new(request, "client_id", json_string(client->client_id));
	json_object_set_new(request, "redirect_uri", json_string(redirect_uri));
	/* RFC 6749 §4.1.3: a redirect_uri sent here must be sent again with
	 * the code. The legacy token call has no such parameter; its codes
	 * are bound to the client instead (legacy.c). */
	if (p->legacy == NULL && ap_get(p, "redirect_uri") != NULL)
		json_object_set_new(request, "redirect_uri_given", json_true());
	if (p->legacy != NULL)
		json_object_set_new(request, "legacy", json_string(p->legacy));
	state = ap_get(p, "state");
	if (state != NULL && strlen(state) <= STATE_MAX)
		json_object_set_new(request, "state", json_string(state));
	*request_r = request;

	for (const char *const *n = single_params; *n != NULL; n++)
		dup |= ap_count(p, *n) > 1;
	if (dup)
		return refuse(r, NULL, "invalid_request", "repeated parameter");
	if (state != NULL && strlen(state) > STATE_MAX)
		return refuse(r, NULL, "invalid_request", "state too long");
	if (ap_get(p, "request") != NULL)
		return refuse(r, NULL, "request_not_supported",
		              "request objects are not supported");
	/* Here only from /par, where it must not appear (RFC 9126 §2.1). */
	if (ap_get(p, "request_uri") != NULL)
		return refuse(r, NULL, "invalid_request", "request_uri is not allowed here");
	response_type = ap_get(p, "response_type");
	if (response_type == NULL)
		return refuse(r, NULL, "invalid_request", "response_type missing");
	if (strcmp(response_type, "code") != 0)
		return refuse(r, NULL, "unsupported_response_type", "only response_type=code");
	if (p->legacy != NULL && !oidc_legacy_allowed(client)) {
		oidc_security_event(p->req, "legacy_api_refused", "client_id", client->client_id,
		                    NULL);
		return refuse(r, NULL, "unauthorized_client",
		              "the client is not registered for the legacy API");
	}
	/* A client uses only the grants it was registered for. */
	if (!scope_has(grants, "authorization_code")) {
		oidc_security_event(p->req, "grant_refused", "client_id", client->client_id,
		                    "grant_type", "authorization_code", "error",
		                    "unauthorized_client", NULL);
		return refuse(r, NULL, "unauthorized_client",
		              "the client is not registered for the code flow");
	}
	if (ap_get(p, "response_mode") != NULL && strcmp(ap_get(p, "response_mode"), "query") != 0)
		return refuse(r, NULL, "invalid_request", "only response_mode=query is supported");
	scope = ap_get(p, "scope");
	if (scope == NULL || strlen(scope) > PARAM_MAX)
		return refuse(r, NULL, "invalid_scope", "scope missing");
	if (p->legacy != NULL) {
		/* The legacy names, translated to iSSO's scopes; both kept:
		 * the consent and release rules work on iSSO's, the answers
		 * speak the legacy names. */
		legacy_scope = oidc_legacy_scope_parse(pool, scope);
		scope = oidc_legacy_scope_map(pool, legacy_scope);
	}
	prompt = ap_get(p, "prompt");
	granted = oidc_scope_granted(pool, scope, client->scope, prompt, client->grant_types);
	if (granted[0] == '\0')
		return refuse(r, NULL, "invalid_scope",
		              "no requested scope is approved for this client");
	json_object_set_new(request, "scope", json_string(granted));
	if (p->legacy != NULL)
		json_object_set_new(
		    request, "legacy_scope",
		    json_string(oidc_legacy_scope_granted(pool, legacy_scope, granted)));

	nonce = ap_get(p, "nonce");
	if (nonce != NULL && strlen(nonce) > NONCE_MAX)
		return refuse(r, NULL, "invalid_request", "nonce too long");
	set_opt(request, "nonce", nonce);

	/* PKCE (RFC 7636): only S256; required of public clients. */
	challenge = ap_get(p, "code_challenge");
	method = ap_get(p, "code_challenge_method");
	if (challenge != NULL) {
		if (method == NULL || strcmp(method, "S256") != 0)
			return refuse(r, NULL, "invalid_request",
			              "code_challenge_method must be S256");
		if (!b64url_token_ok(challenge, 43, 43))
			return refuse(r, NULL, "invalid_request", "malformed code_challenge");
		json_object_set_new(request, "code_challenge", json_string(challenge));
	} else if (method != NULL) {
		return refuse(r, NULL, "invalid_request", "code_challenge missing");
	} else if (client->public_client) {
		return refuse(r, NULL, "invalid_request",
		              "PKCE (S256) is required for public clients");
	}

	if (prompt != NULL) {
		if (scope_has(prompt, "none") && strcmp(prompt, "none") != 0)
			return refuse(r, NULL, "invalid_request", "prompt=none cannot be combined");
		set_opt(request, "prompt", prompt);
	}
	max_age = ap_get(p, "max_age");
	if (max_age != NULL) {
		char *end = NULL;
		long v = strtol(max_age, &end, 10);
		if (max_age[0] == '\0' || *end != '\0' || v < 0 || v > 100000000L)
			return refuse(r, NULL, "invalid_request", "bad max_age");
		json_object_set_new(request, "max_age", json_integer(v));
	}
	acr_values = ap_get(p, "acr_values");
	json_object_set_new(request, "min_loa", json_integer(oidc_min_loa(acr_values)));
	ui_locales = ap_get(p, "ui_locales");
	if (ui_locales != NULL && strlen(ui_locales) < 256)
		set_opt(request, "ui_locales", ui_locales);
	login_hint = ap_get(p, "login_hint");
	if (login_hint != NULL && strlen(login_hint) < 256)
		set_opt(request, "login_hint", login_hint);
	/* RFC 9449 §10: the code is bound to this DPoP key. */
	dpop_jkt = ap_get(p, "dpop_jkt");
	if (dpop_jkt != NULL) {
		if (!b64url_token_ok(dpop_jkt, 43, 43))
			return refuse(r, NULL, "invalid_request", "malformed dpop_jkt");
		json_object_set_new(request, "dpop_jkt", json_string(dpop_jkt));
	}
	return 0;
}

#define PAR_PREFIX "urn:ietf:params:oauth:request_uri:"

/* The request that client_id pushed as request_uri, taken once (RFC 9126
 * §4): 0 with *request_r, or with NULL when it is unknown, expired,
 * already used or was pushed by another client; < 0 when the store
 * fails. */
static int
par_take(struct isso_app *app, const char *request_uri, const char *client_id, json_t **request_r)
{
	json_t *data = NULL;
	const char *id;
	int64_t now = app_now();
	bool taken = false;
	int ret = 0;

	*request_r = NULL;
	if (strncmp(request_uri, PAR_PREFIX, strlen(PAR_PREFIX)) != 0)
		goto out;
	id = request_uri + strlen(PAR_PREFIX);
	if (!b64url_token_ok(id, 43, 43))
		goto out;
	if ((ret = store_eph_get(app->store, "par", id, now, &data, NULL)) < 0)
		goto out;
	/* Another client's: left for its owner, who may still use it. */
	if (data == NULL ||
	    strcmp(json_string_value(json_object_get(data, "client_id")) ?: "", client_id) != 0 ||
	    !json_is_object(json_object_get(data, "request")))
		goto out;
	if ((ret = store_eph_take(app->store, "par", id, now, &taken)) < 0 || !taken)
		goto out;
	*request_r = json_incref(json_object_get(data, "request"));
out:
	json_decref(data);
	return ret;
}

/* The agency's ui_locales hold for the pages of this login (a cookie
 * that ends with it); the citizen's own choice, the isso_lang cookie, is
 * set only by the language switch and outweighs it. */
static void
ui_locales_apply(struct isso_app *app, struct http_req *req, const char *ui_locales)
{
	const char *chosen;

	if (ui_locales == NULL || strlen(ui_locales) >= 256 || http_query(req, "lang") != NULL)
		return;
	chosen = i18n_negotiate(ui_locales, NULL, "en");
	/* Only when ui_locales names a language we have: then the fallback
	 * cannot change the answer. */
	if (strcmp(chosen, i18n_negotiate(ui_locales, NULL, "zh-TW")) == 0) {
		http_set_locale(req, chosen);
		http_set_cookie(req, "isso_login_lang", chosen, app->cfg->oidc.txn_ttl,
		                HTTP_COOKIE_LAX | HTTP_COOKIE_HTTPONLY);
	}
}

/* Starts a login transaction carrying request and sends the browser to
 * its first page, path ("/login" or "/consent"). */
static void
txn_start(struct isso_app *app, struct http_req *req, json_t *request, const char *path)
{
	char txn_id[44];

	if (flow_txn_create(app, req, json_incref(request), txn_id) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		return;
	}
	http_redirect(req, 303, flow_url(req, path, txn_id));
}

/* Single sign-on, for a live session that satisfies request: the code at
 * once when an earlier consent covers the scope, else the consent page
 * (consent_required for prompt=none). */
static void
sso_answer(struct isso_app *app, struct http_req *req, json_t *request, json_t *session,
           const char *session_key)
{
	const char *uuid = json_string_value(json_object_get(session, "uuid"));
	const char *prompt = json_string_value(json_object_get(request, "prompt"));
	bool need_consent = false;

	if (oidc_consent_needed(app, request, uuid, session, &need_consent) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		return;
	}
	json_object_set_new(request, "sso", json_true());
	if (!need_consent) {
		oidc_code_redirect(app, req, request, session, session_key);
		return;
	}
	if (prompt != NULL && strcmp(prompt, "none") == 0) {
		oidc_error_redirect(app, req, request, "consent_required", NULL);
		return;
	}
	json_object_set(request, "auth", session);
	json_object_set_new(request, "session_key", json_string(session_key));
	txn_start(app, req, request, "/consent");
}

/* The authorization endpoint: the request validated (authz_validate, or
 * the one pushed to /par), then single sign-on (sso_answer) or a login
 * transaction (txn_start). */
void
oidc_authorize_run(struct isso_app *app, struct http_req *req, const char *legacy)
{
	struct pool *pool = http_pool(req);
	struct store_client *client = NULL;
	struct authz_params params = {.req = req, .pushed = NULL, .legacy = legacy};
	struct authz_refusal why;
	json_t *request = NULL, *session = NULL;
	const char *client_id, *request_uri, *prompt;
	const char *session_key = NULL;

	/* An agency's form that POSTs here is another site: the browser
	 * sends no SameSite=Lax session cookie with it, so single sign-on
	 * would be lost. The same request as a GET is a top-level
	 * navigation, which carries it (OIDC Core §3.1.2.1 allows both). */
	if (http_method(req) == HTTP_POST && !flow_session_cookie_sent(req)) {
		const struct http_kvs *form = http_form_all(req);
		struct buf b;

		buf_init(&b, 65536);
		buf_addstr(&b, http_path(req));
		for (size_t i = 0; i < form->n; i++) {
			if (buf_printf(&b, "%c%s=%s", i > 0 ? '&' : '?',
			               parse_pct_encode(pool, form->v[i].name),
			               parse_pct_encode(pool, form->v[i].value)) != 0) {
				page_error(app, req, 400, "error.bad_request",
				           "error.bad_request.message", NULL);
				buf_free(&b);
				goto out;
			}
		}
		http_redirect(req, 303, pool_strdup(pool, b.data));
		buf_free(&b);
		goto out;
	}

	client_id = http_param(req, "client_id");
	/* the legacy API knows no pushed requests: there it is refused below */
	request_uri = legacy == NULL ? http_param(req, "request_uri") : NULL;
	/* Before any page, so that even error pages speak the language
	 * the agency asked for. */
	if (request_uri == NULL)
		ui_locales_apply(app, req, http_param(req, "ui_locales"));
	if (http_param_count(req, "client_id") > 1 || http_param_count(req, "request_uri") > 1) {
		page_error(app, req, 400, "error.client_title", "error.redirect_unregistered",
		           NULL);
		goto out;
	}
	/* A store that cannot answer is not an unknown client. */
	if (oidc_client_find(app, client_id, &client) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
	if (client == NULL) {
		page_error(app, req, 400, "error.client_title", "error.client_unknown", NULL);
		goto out;
	}
	if (request_uri != NULL) {
		/* RFC 9126 §4: the pushed request, and nothing else, counts. */
		if (par_take(app, request_uri, client->client_id, &request) < 0) {
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           NULL);
			goto out;
		}
		if (request == NULL ||
		    !oidc_uri_listed(client->redirect_uris,
		                     json_string_value(json_object_get(request, "redirect_uri")))) {
			log_info("authorize_error", "error", "invalid_request_uri", "client_id",
			         client->client_id, NULL);
			page_error(app, req, 400, "error.client_title", "error.request_uri_invalid",
			           NULL);
			goto out;
		}
	} else if (authz_validate(pool, &params, client, &request, &why) < 0) {
		if (why.page != NULL)
			page_error(app, req, 400, "error.client_title", why.page, NULL);
		else
			oidc_error_redirect(app, req, request, why.error,
			                    strcmp(why.error, "request_not_supported") == 0
			                        ? NULL
			                        : why.description);
		goto out;
	} else if (oidc_client_flag(client, "require_par")) {
		/* RFC 9126 §5: this client's requests come only through /par. */
		oidc_error_redirect(app, req, request, "invalid_request",
		                    "this client must use pushed authorization requests");
		goto out;
	}

	if (request_uri != NULL)
		ui_locales_apply(app, req,
		                 json_string_value(json_object_get(request, "ui_locales")));
	json_object_set_new(request, "locale", json_string(http_locale(req)));
	prompt = json_string_value(json_object_get(request, "prompt"));

	session = flow_session(app, req, &session_key);
	if (session != NULL && oidc_session_satisfies(session, request, app_now())) {
		sso_answer(app, req, request, session, session_key);
		goto out;
	}
	if (prompt != NULL && strcmp(prompt, "none") == 0) {
		oidc_error_redirect(app, req, request, "login_required", NULL);
		goto out;
	}
	txn_start(app, req, request, "/login");
out:
	json_decref(session);
	json_decref(request);
	store_client_free(client);
}

static void
authorize(struct http_req *req, void *ctx)
{
	oidc_authorize_run(ctx, req, NULL);
}

/* Client authentication parameters: never part of a pushed request. */
static const char *const par_ignored[] = {"client_secret", "client_assertion",
                                          "client_assertion_type", NULL};

/* The pushed authorization request endpoint (RFC 9126 §2). */
static void
par_endpoint(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	struct pool *pool = http_pool(req);
	const char *type = http_header(req, "Content-Type");
	const struct http_kvs *form;
	struct store_client *c = NULL;
	struct authz_params params = {.req = req, .pushed = NULL};
	struct authz_refusal why;
	json_t *pushed = NULL, *request = NULL, *row = NULL;
	const char *dpop_why = NULL, *given_jkt;
	char id[44], jkt[44];
	bool dup = false;
	int ret;

	if (type == NULL || strncasecmp(type, "application/x-www-form-urlencoded", 33) != 0) {
		oidc_json_error(req, 400, "invalid_request",
		                "use application/x-www-form-urlencoded");
		return;
	}
	c = oidc_client_auth(app, req);
	if (c == NULL)
		return;
	/* Only the body counts; each parameter once (RFC 9126 §2.1). */
	form = http_form_all(req);
	pushed = json_object();
	for (size_t i = 0; i < form->n; i++) {
		const char *name = form->v[i].name;
		bool skip = false;
		for (const char *const *n = par_ignored; *n != NULL; n++)
			skip |= strcmp(*n, name) == 0;
		if (skip)
			continue;
		dup |= json_object_get(pushed, name) != NULL;
		json_object_set_new(pushed, name, json_string(form->v[i].value));
	}
	if (dup) {
		oidc_json_error(req, 400, "invalid_request", "repeated parameter");
		goto out;
	}
	json_object_set_new(pushed, "client_id", json_string(c->client_id));
	/* RFC 9449 §10.1: a DPoP proof here binds the code to its key. */
	ret = oidc_dpop_check(app, req, NULL, jkt, &dpop_why);
	if (ret == ISSO_ERR_INVALID) {
		oidc_json_error(req, 400, "invalid_dpop_proof", dpop_why);
		goto out;
	}
	if (ret < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	given_jkt = json_string_value(json_object_get(pushed, "dpop_jkt"));
	if (jkt[0] != '\0' && given_jkt != NULL && strcmp(given_jkt, jkt) != 0) {
		oidc_json_error(req, 400, "invalid_dpop_proof",
		                "dpop_jkt does not match the DPoP proof's key");
		goto out;
	}
	if (jkt[0] != '\0')
		json_object_set_new(pushed, "dpop_jkt", json_string(jkt));
	params.pushed = pushed;
	if (authz_validate(pool, &params, c, &request, &why) < 0) {
		oidc_json_error(req, 400, why.error, why.description);
		goto out;
	}
	secret_token(32, id);
	row = json_pack("{s:s, s:O}", "client_id", c->client_id, "request", request);
	/* RFC 9126 §2.2: short-lived (oidc.par_ttl, 60 s by default). */
	if (store_eph_put(app->store, "par", id, row, app_now() + app->cfg->oidc.par_ttl) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	http_send_json(req, 201,
	               json_pack("{s:s, s:i}", "request_uri",
	                         pool_printf(pool, "%s%s", PAR_PREFIX, id), "expires_in",
	                         app->cfg->oidc.par_ttl));
	log_info("par_stored", "client_id", c->client_id, NULL);
out:
	json_decref(row);
	json_decref(request);
	json_decref(pushed);
	store_client_free(c);
}

void
oidc_authorize_routes(struct isso_app *app, struct http_server *srv)
{
	http_route(srv, HTTP_GET | HTTP_POST, "/authorize", authorize, app);
	http_route(srv, HTTP_POST, "/par", par_endpoint, app);
}
