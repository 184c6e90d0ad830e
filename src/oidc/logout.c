/* RP-initiated logout (OIDC RP-Initiated Logout 1.0) and back-channel
 * logout (OIDC Back-Channel Logout 1.0). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "auth/app.h"
#include "auth/flow.h"
#include "auth/page.h"
#include "http/csrf.h"
#include "http/parse.h"
#include "jose/jose.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define BACKCHANNEL_TIMEOUT_MS 2000 /* one client */
#define BACKCHANNEL_BUDGET_MS  5000 /* all of them */

static size_t
discard(char *p, size_t size, size_t n, void *ctx)
{
	return size * n;
}

static void
backchannel_one(struct isso_app *app, const struct store_client *c, const char *uuid,
                const char *sid, long timeout_ms)
{
	char sub[44], jti[44];
	char *jwt = NULL, *body = NULL, *enc = NULL;
	int64_t now = app_now();
	json_t *claims;
	CURL *curl = NULL;
	CURLcode rc;
	long status = 0;

	secret_token(16, jti);
	claims =
	    json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:{s:{}}}", "iss", app->issuer, "aud",
	              c->client_id, "iat", (json_int_t)now, "exp", (json_int_t)(now + 120), "jti",
	              jti, "sub", oidc_sub(app, c->client_id, uuid, sub), "sid", sid, "events",
	              "http://schemas.openid.net/event/backchannel-logout");
	if (claims == NULL || jose_sign(app->keys, c->id_token_alg, "logout+jwt", claims, &jwt) < 0)
		goto out;
	curl = curl_easy_init();
	if (curl == NULL)
		goto out;
	enc = curl_easy_escape(curl, jwt, 0);
	if (enc == NULL || (body = malloc(strlen(enc) + 16)) == NULL)
		goto out;
	snprintf(body, strlen(enc) + 16, "logout_token=%s", enc);
	curl_easy_setopt(curl, CURLOPT_URL, c->backchannel_logout_uri);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK || status != 200)
		log_warn("backchannel_logout_failed", "client_id", c->client_id, "reason",
		         rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP status", NULL);
out:
	if (enc != NULL)
		curl_free(enc);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	free(body);
	free(jwt);
	json_decref(claims);
}

void
oidc_backchannel_logout(struct isso_app *app, const char *uuid, const char *sid, json_t *clients)
{
	struct timespec start, now;
	size_t i;
	json_t *v;
	long left;

	/* One deadline for all clients, so a logout answers in bounded time
	 * however many services the citizen used. */
	clock_gettime(CLOCK_MONOTONIC, &start);
	json_array_foreach(clients, i, v)
	{
		struct store_client *c = oidc_client(app, json_string_value(v));
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = BACKCHANNEL_BUDGET_MS - ((now.tv_sec - start.tv_sec) * 1000 +
		                                (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left > BACKCHANNEL_TIMEOUT_MS)
			left = BACKCHANNEL_TIMEOUT_MS;
		if (c != NULL && c->backchannel_logout_uri != NULL &&
		    c->backchannel_logout_uri[0] != '\0') {
			if (left < 100)
				log_warn("backchannel_logout_skipped", "client_id", c->client_id,
				         NULL);
			else
				backchannel_one(app, c, uuid, sid, left);
		}
		store_client_free(c);
	}
}

void
oidc_session_ended(struct isso_app *app, json_t *session)
{
	const char *uuid = json_string_value(json_object_get(session, "uuid"));
	const char *sid = json_string_value(json_object_get(session, "sid"));

	if (uuid != NULL && sid != NULL)
		oidc_backchannel_logout(app, uuid, sid, json_object_get(session, "clients"));
}

/* Verifies an id_token_hint we issued (expired ones are fine: OIDC
 * RP-Initiated Logout §2) and returns its claims. */
static json_t *
hint_claims(struct isso_app *app, const char *hint)
{
	static const char *const algs[] = {"ES256", "RS256", NULL};
	json_t *jwks = json_loads(jose_keyset_jwks(app->keys), 0, NULL);
	json_t *claims = NULL;
	const char *why = NULL;

	if (jwks == NULL || strlen(hint) > 8192 ||
	    jose_verify(hint, jwks, algs, &claims, &why) < 0 ||
	    strcmp(json_string_value(json_object_get(claims, "iss")) ?: "", app->issuer) != 0) {
		json_decref(claims);
		claims = NULL;
	}
	json_decref(jwks);
	return claims;
}

static void
logout(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	struct pool *pool = http_pool(req);
	const char *hint = http_param(req, "id_token_hint");
	const char *uri = http_param(req, "post_logout_redirect_uri");
	const char *state = http_param(req, "state");
	const char *client_id = http_param(req, "client_id");
	const char *key = NULL;
	struct store_client *c = NULL;
	json_t *claims = NULL, *session = NULL;
	bool confirmed = false;

	/* An agency's page that POSTs here is another site: the browser sends
	 * no SameSite=Lax session cookie with it, and the citizen would stay
	 * logged in. The same request as a GET is a top-level navigation,
	 * which carries the cookie (RP-Initiated Logout 1.0 §2 allows both).
	 * Our own confirmation form is same-site and goes on. */
	if (http_method(req) == HTTP_POST && http_form(req, "confirm") == NULL &&
	    !flow_session_cookie_sent(req)) {
		static const char *const keep[] = {"id_token_hint", "post_logout_redirect_uri",
		                                   "state",         "client_id",
		                                   "ui_locales",    NULL};
		struct buf b;

		buf_init(&b, 65536);
		buf_addstr(&b, "/logout");
		for (const char *const *k = keep; *k != NULL; k++) {
			const char *v = http_form(req, *k);

			if (v != NULL && buf_printf(&b, "%c%s=%s", b.len > 7 ? '&' : '?', *k,
			                            parse_pct_encode(pool, v)) != 0) {
				page_error(app, req, 400, "logout.title", "error.bad_request",
				           NULL);
				buf_free(&b);
				goto out;
			}
		}
		http_redirect(req, 303, pool_strdup(pool, b.data));
		buf_free(&b);
		goto out;
	}
	if (hint != NULL) {
		claims = hint_claims(app, hint);
		if (claims == NULL) {
			page_error(app, req, 400, "logout.title", "logout.bad_hint", NULL);
			goto out;
		}
		const char *aud = json_string_value(json_object_get(claims, "aud"));
		if (client_id != NULL && aud != NULL && strcmp(client_id, aud) != 0) {
			page_error(app, req, 400, "logout.title", "logout.bad_hint", NULL);
			goto out;
		}
		client_id = aud;
	}
	if (client_id != NULL)
		c = oidc_client(app, client_id);
	if (uri != NULL && (c == NULL || !oidc_uri_listed(c->post_logout_redirect_uris, uri))) {
		page_error(app, req, 400, "logout.title", "logout.bad_redirect", NULL);
		goto out;
	}
	if (state != NULL && strlen(state) > 4096) {
		page_error(app, req, 400, "logout.title", "error.bad_request", NULL);
		goto out;
	}
	session = flow_session(app, req, &key);
	if (session != NULL && claims != NULL) {
		const char *sid = json_string_value(json_object_get(claims, "sid"));
		confirmed =
		    sid != NULL &&
		    strcmp(sid, json_string_value(json_object_get(session, "sid")) ?: "") == 0;
	}
	if (session != NULL && !confirmed) {
		if (http_method(req) == HTTP_POST && http_form(req, "confirm") != NULL) {
			if (!csrf_check(req, &app->secrets, "logout")) {
				page_error(app, req, 403, "error.title", "error.csrf", NULL);
				goto out;
			}
			confirmed = true;
		} else {
			/* Without proof that the session's own client asks, the
			 * citizen confirms (a link must not log them out). */
			json_t *ctx_page =
			    json_pack("{s:s}", "csrf", csrf_token(req, &app->secrets, "logout"));
			if (hint != NULL)
				json_object_set_new(ctx_page, "id_token_hint", json_string(hint));
			if (uri != NULL)
				json_object_set_new(ctx_page, "post_logout_redirect_uri",
				                    json_string(uri));
			if (state != NULL)
				json_object_set_new(ctx_page, "state", json_string(state));
			if (client_id != NULL)
				json_object_set_new(ctx_page, "client_id", json_string(client_id));
			if (c != NULL)
				json_object_set_new(ctx_page, "client_name", json_string(c->name));
			if (uri != NULL)
				http_csp_allow_form_action(req, oidc_origin(pool, uri));
			page_render(app, req, 200, "logout", "logout.title", ctx_page);
			goto out;
		}
	}
	if (session != NULL) {
		const char *uuid = json_string_value(json_object_get(session, "uuid"));
		const char *sid = json_string_value(json_object_get(session, "sid"));
		flow_session_end(app, req, key);
		store_audit_append(app->store, app_now(), "logout",
		                   json_pack("{s:s}", "uuid", uuid));
		oidc_backchannel_logout(app, uuid, sid, json_object_get(session, "clients"));
	}
	if (uri != NULL) {
		struct buf b;
		buf_init(&b, 16384);
		buf_addstr(&b, uri);
		if (state != NULL)
			buf_printf(&b, "%cstate=%s", strchr(uri, '?') != NULL ? '&' : '?',
			           parse_pct_encode(pool, state));
		http_csp_allow_form_action(req, oidc_origin(pool, uri));
		http_redirect(req, 303, pool_strdup(pool, b.data));
		buf_free(&b);
		goto out;
	}
	page_render(app, req, 200, "logged-out", "logout.done_title", NULL);
out:
	json_decref(session);
	json_decref(claims);
	store_client_free(c);
}

void
oidc_logout_routes(struct isso_app *app, struct http_server *srv)
{
	http_route(srv, HTTP_GET | HTTP_POST, "/logout", logout, app);
}
