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
#include "oidc/oidc-private.h"
#include "store/store.h"

#define STATE_MAX 4096
#define NONCE_MAX 1024
#define PARAM_MAX 2048

/* Parameters that must appear at most once (RFC 6749 §3.1). */
static const char *const single_params[] = {
    "response_type", "client_id",      "redirect_uri",
    "redirectUri",   "scope",          "state",
    "nonce",         "code_challenge", "code_challenge_method",
    "prompt",        "max_age",        "acr_values",
    "ui_locales",    "login_hint",     "response_mode",
    "request",       "request_uri",    NULL,
};

bool
oidc_uri_listed(json_t *uris, const char *uri)
{
	size_t i;
	json_t *v;

	json_array_foreach(uris, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), uri) == 0)
			return true;
	}
	return false;
}

const char *
oidc_origin(struct pool *pool, const char *uri)
{
	const char *p = strstr(uri, "://");
	size_t n;

	if (p == NULL)
		return pool_strdup(pool, "'none'");
	n = (size_t)(p + 3 - uri) + strcspn(p + 3, "/?#");
	return pool_strndup(pool, uri, n);
}

int
oidc_client_find(struct isso_app *app, const char *client_id, struct store_client **client_r)
{
	struct store_client *c = NULL;
	int ret;

	*client_r = NULL;
	if (client_id == NULL || strlen(client_id) > 128)
		return 0;
	ret = store_client_get(app->store, client_id, &c);
	if (ret < 0)
		return ret;
	if (c != NULL && c->status != CLIENT_APPROVED) {
		store_client_free(c);
		c = NULL;
	}
	*client_r = c;
	return 0;
}

struct store_client *
oidc_client(struct isso_app *app, const char *client_id)
{
	struct store_client *c = NULL;

	(void)oidc_client_find(app, client_id, &c);
	return c;
}

void
oidc_redirect_to_client(struct isso_app *app, struct http_req *req, const char *uri,
                        const char *query, const char *state)
{
	struct pool *pool = http_pool(req);
	struct buf b;

	buf_init(&b, 16384);
	buf_printf(&b, "%s%c%s", uri, strchr(uri, '?') != NULL ? '&' : '?', query);
	if (state != NULL)
		buf_printf(&b, "&state=%s", parse_pct_encode(pool, state));
	buf_printf(&b, "&iss=%s", parse_pct_encode(pool, app->issuer));
	http_csp_allow_form_action(req, oidc_origin(pool, uri));
	http_redirect(req, 303, pool_strdup(pool, b.data));
	buf_free(&b);
}

void
oidc_error_redirect(struct isso_app *app, struct http_req *req, json_t *request, const char *error,
                    const char *description)
{
	struct pool *pool = http_pool(req);
	const char *uri = json_string_value(json_object_get(request, "redirect_uri"));
	const char *state = json_string_value(json_object_get(request, "state"));
	const char *query = pool_printf(pool, "error=%s", error);

	if (description != NULL)
		query = pool_printf(pool, "%s&error_description=%s", query,
		                    parse_pct_encode(pool, description));
	oidc_redirect_to_client(app, req, uri, query, state);
	log_info("authorize_error", "error", error, "client_id",
	         json_string_value(json_object_get(request, "client_id")), NULL);
}

/* Requested scopes that the client was approved for, in request order. */
static char *
scope_allowed(struct pool *pool, const char *requested, const char *approved)
{
	struct buf b;
	const char *p = requested;
	char *out;

	buf_init(&b, PARAM_MAX + 1);
	while (*p != '\0') {
		size_t n = strcspn(p, " ");
		if (n > 0 && n < 64) {
			char word[64];
			memcpy(word, p, n);
			word[n] = '\0';
			if (scope_known(word) && scope_has(approved, word) &&
			    !scope_has(b.data, word)) {
				if (b.len > 0)
					buf_addc(&b, ' ');
				buf_addstr(&b, word);
			}
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	out = pool_strdup(pool, b.data != NULL ? b.data : "");
	buf_free(&b);
	return out;
}

/* scope without the word name. */
static char *
scope_without(struct pool *pool, const char *scope, const char *name)
{
	struct buf b;
	char *out;

	buf_init(&b, PARAM_MAX + 1);
	for (const char *p = scope; *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n > 0 && !(n == strlen(name) && strncmp(p, name, n) == 0)) {
			if (b.len > 0)
				buf_addc(&b, ' ');
			buf_add(&b, p, n);
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	out = pool_strdup(pool, b.data != NULL ? b.data : "");
	buf_free(&b);
	return out;
}

/* The lowest level acceptable for acr_values (the weakest one named, since
 * any of the values satisfies the request); LOA_LOW when none is known. */
static enum loa
min_loa(const char *acr_values)
{
	enum loa best = 0;
	const char *p = acr_values;

	while (p != NULL && *p != '\0') {
		size_t n = strcspn(p, " ");
		char word[64];
		if (n > 0 && n < sizeof(word)) {
			memcpy(word, p, n);
			word[n] = '\0';
			enum loa l = loa_parse(word);
			if (l != 0 && (best == 0 || l < best))
				best = l;
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	return best == 0 ? LOA_LOW : best;
}

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

/* Is the session good enough for this request without a new login? */
static bool
session_satisfies(json_t *session, json_t *request, int64_t now)
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

static void
authorize(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	struct pool *pool = http_pool(req);
	struct store_client *client = NULL;
	json_t *request = NULL, *session = NULL;
	const char *client_id, *redirect_uri, *response_type, *scope, *state, *nonce;
	const char *challenge, *method, *prompt, *max_age, *acr_values, *ui_locales;
	const char *session_key = NULL;
	char *granted = NULL, txn_id[44];
	bool dup = false;

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

	for (const char *const *p = single_params; *p != NULL; p++)
		dup |= http_param_count(req, *p) > 1;

	client_id = http_param(req, "client_id");
	redirect_uri = http_param(req, "redirect_uri");
	if (redirect_uri == NULL) /* the existing iSSO API's spelling */
		redirect_uri = http_param(req, "redirectUri");
	ui_locales = http_param(req, "ui_locales");
	if (ui_locales != NULL && http_query(req, "lang") == NULL && strlen(ui_locales) < 256) {
		/* The agency's choice holds for the pages of this login (a
		 * cookie that ends with it); the citizen's own choice, the
		 * isso_lang cookie, is set only by the language switch. */
		const char *chosen = i18n_negotiate(ui_locales, NULL, "en");
		/* Only when ui_locales names a language we have: then the
		 * fallback cannot change the answer. */
		if (strcmp(chosen, i18n_negotiate(ui_locales, NULL, "zh-TW")) == 0) {
			http_set_locale(req, chosen);
			http_set_cookie(req, "isso_login_lang", chosen, app->cfg->oidc.txn_ttl,
			                HTTP_COOKIE_LAX | HTTP_COOKIE_HTTPONLY);
		}
	}

	/* Until client and redirect_uri are known good, errors are pages:
	 * redirecting to an unchecked URI would make us an open redirector. */
	/* A repeated client_id or redirect_uri leaves no trustworthy place
	 * to redirect to (RFC 6749 §4.1.2.1): an error page. */
	if (http_param_count(req, "client_id") > 1 || http_param_count(req, "redirect_uri") > 1 ||
	    http_param_count(req, "redirectUri") > 1) {
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
	if (redirect_uri == NULL) {
		if (json_array_size(client->redirect_uris) != 1) {
			page_error(app, req, 400, "error.client_title", "error.redirect_missing",
			           NULL);
			goto out;
		}
		redirect_uri = json_string_value(json_array_get(client->redirect_uris, 0));
	} else if (!oidc_uri_listed(client->redirect_uris, redirect_uri)) {
		page_error(app, req, 400, "error.client_title", "error.redirect_unregistered",
		           NULL);
		goto out;
	}

	request = json_object();
	json_object_set_new(request, "client_id", json_string(client->client_id));
	json_object_set_new(request, "redirect_uri", json_string(redirect_uri));
	if (http_param(req, "redirect_uri") != NULL || http_param(req, "redirectUri") != NULL)
		json_object_set_new(request, "redirect_uri_given", json_true());
	state = http_param(req, "state");
	if (state != NULL && strlen(state) <= STATE_MAX)
		json_object_set_new(request, "state", json_string(state));

	if (dup) {
		oidc_error_redirect(app, req, request, "invalid_request", "repeated parameter");
		goto out;
	}
	if (state != NULL && strlen(state) > STATE_MAX) {
		oidc_error_redirect(app, req, request, "invalid_request", "state too long");
		goto out;
	}
	if (http_param(req, "request") != NULL) {
		oidc_error_redirect(app, req, request, "request_not_supported", NULL);
		goto out;
	}
	if (http_param(req, "request_uri") != NULL) {
		oidc_error_redirect(app, req, request, "request_uri_not_supported", NULL);
		goto out;
	}
	response_type = http_param(req, "response_type");
	if (response_type == NULL) {
		oidc_error_redirect(app, req, request, "invalid_request", "response_type missing");
		goto out;
	}
	if (strcmp(response_type, "code") != 0) {
		oidc_error_redirect(app, req, request, "unsupported_response_type", NULL);
		goto out;
	}
	/* A client uses only the grants it was registered for. */
	if (!scope_has(client->grant_types != NULL ? client->grant_types
	                                           : STORE_CLIENT_DEFAULT_GRANTS,
	               "authorization_code")) {
		oidc_security_event(req, "grant_refused", "client_id", client->client_id,
		                    "grant_type", "authorization_code", "error",
		                    "unauthorized_client", NULL);
		oidc_error_redirect(app, req, request, "unauthorized_client",
		                    "the client is not registered for the code flow");
		goto out;
	}
	if (http_param(req, "response_mode") != NULL &&
	    strcmp(http_param(req, "response_mode"), "query") != 0) {
		oidc_error_redirect(app, req, request, "invalid_request",
		                    "only response_mode=query is supported");
		goto out;
	}
	scope = http_param(req, "scope");
	if (scope == NULL || strlen(scope) > PARAM_MAX) {
		oidc_error_redirect(app, req, request, "invalid_scope", "scope missing");
		goto out;
	}
	granted = scope_allowed(pool, scope, client->scope);
	if (granted[0] == '\0') {
		oidc_error_redirect(app, req, request, "invalid_scope",
		                    "no requested scope is approved for this client");
		goto out;
	}
	prompt = http_param(req, "prompt");
	/* OIDC Core §11: offline_access only with prompt=consent (the
	 * citizen is asked every time) and only for a client that may
	 * refresh; otherwise it is ignored. */
	if (scope_has(granted, "offline_access") &&
	    (prompt == NULL || !scope_has(prompt, "consent") ||
	     !scope_has(client->grant_types != NULL ? client->grant_types
	                                            : STORE_CLIENT_DEFAULT_GRANTS,
	                "refresh_token")))
		granted = scope_without(pool, granted, "offline_access");
	if (granted[0] == '\0') {
		oidc_error_redirect(app, req, request, "invalid_scope",
		                    "no requested scope is approved for this client");
		goto out;
	}
	json_object_set_new(request, "scope", json_string(granted));

	nonce = http_param(req, "nonce");
	if (nonce != NULL && strlen(nonce) > NONCE_MAX) {
		oidc_error_redirect(app, req, request, "invalid_request", "nonce too long");
		goto out;
	}
	set_opt(request, "nonce", nonce);

	/* PKCE (RFC 7636): only S256; required of public clients. */
	challenge = http_param(req, "code_challenge");
	method = http_param(req, "code_challenge_method");
	if (challenge != NULL) {
		if (method == NULL || strcmp(method, "S256") != 0) {
			oidc_error_redirect(app, req, request, "invalid_request",
			                    "code_challenge_method must be S256");
			goto out;
		}
		if (!b64url_token_ok(challenge, 43, 43)) {
			oidc_error_redirect(app, req, request, "invalid_request",
			                    "malformed code_challenge");
			goto out;
		}
		json_object_set_new(request, "code_challenge", json_string(challenge));
	} else if (method != NULL) {
		oidc_error_redirect(app, req, request, "invalid_request", "code_challenge missing");
		goto out;
	} else if (client->public_client) {
		oidc_error_redirect(app, req, request, "invalid_request",
		                    "PKCE (S256) is required for public clients");
		goto out;
	}

	if (prompt != NULL) {
		if (scope_has(prompt, "none") && strcmp(prompt, "none") != 0) {
			oidc_error_redirect(app, req, request, "invalid_request",
			                    "prompt=none cannot be combined");
			goto out;
		}
		set_opt(request, "prompt", prompt);
	}
	max_age = http_param(req, "max_age");
	if (max_age != NULL) {
		char *end = NULL;
		long v = strtol(max_age, &end, 10);
		if (max_age[0] == '\0' || *end != '\0' || v < 0 || v > 100000000L) {
			oidc_error_redirect(app, req, request, "invalid_request", "bad max_age");
			goto out;
		}
		json_object_set_new(request, "max_age", json_integer(v));
	}
	acr_values = http_param(req, "acr_values");
	json_object_set_new(request, "min_loa", json_integer(min_loa(acr_values)));
	if (ui_locales != NULL && strlen(ui_locales) < 256)
		set_opt(request, "ui_locales", ui_locales);
	if (http_param(req, "login_hint") != NULL && strlen(http_param(req, "login_hint")) < 256)
		set_opt(request, "login_hint", http_param(req, "login_hint"));
	json_object_set_new(request, "locale", json_string(http_locale(req)));

	/* Single sign-on: a live session that satisfies the request skips the
	 * login; earlier consent covering the scope skips consent too. */
	session = flow_session(app, req, &session_key);
	if (session != NULL && session_satisfies(session, request, app_now())) {
		const char *uuid = json_string_value(json_object_get(session, "uuid"));
		bool need_consent = false;

		if (oidc_consent_needed(app, request, uuid, session, &need_consent) < 0) {
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           NULL);
			goto out;
		}
		json_object_set_new(request, "sso", json_true());
		if (!need_consent) {
			oidc_code_redirect(app, req, request, session, session_key);
			goto out;
		}
		if (prompt != NULL && strcmp(prompt, "none") == 0) {
			oidc_error_redirect(app, req, request, "consent_required", NULL);
			goto out;
		}
		json_object_set(request, "auth", session);
		json_object_set_new(request, "session_key", json_string(session_key));
		if (flow_txn_create(app, req, json_incref(request), txn_id) < 0) {
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           NULL);
			goto out;
		}
		http_redirect(req, 303, flow_url(req, "/consent", txn_id));
		goto out;
	}
	if (prompt != NULL && strcmp(prompt, "none") == 0) {
		oidc_error_redirect(app, req, request, "login_required", NULL);
		goto out;
	}
	if (flow_txn_create(app, req, json_incref(request), txn_id) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
	http_redirect(req, 303, flow_url(req, "/login", txn_id));
out:
	json_decref(session);
	json_decref(request);
	store_client_free(client);
}

void
oidc_authorize_routes(struct isso_app *app, struct http_server *srv)
{
	http_route(srv, HTTP_GET | HTTP_POST, "/authorize", authorize, app);
	/* The path agencies already call on the existing service. */
	http_route(srv, HTTP_GET | HTTP_POST, "/isso/oauth2/authorize", authorize, app);
}
