/* RP-initiated logout (OIDC RP-Initiated Logout 1.0) and back-channel
 * logout (OIDC Back-Channel Logout 1.0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "auth/flow.h"
#include "auth/page.h"
#include "conn/outbound.h"
#include "http/csrf.h"
#include "http/parse.h"
#include "jose/jose.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/worker.h"
#include "lib/xmalloc.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define BC_KIND         "backchannel_logout"
#define BC_TIMEOUT_MS   5000  /* one delivery attempt */
#define BC_LEASE        60    /* a claim outlives any attempt */
#define BC_GIVE_UP      86400 /* a notice is kept trying for a day */
#define BC_MAX_ATTEMPTS 40
#define BC_BACKOFF_MAX  3600
#define BC_PARALLEL     2    /* deliveries at once, leaving workers free */
#define BC_TICK_MS      1000 /* how often due notices are looked for */

/* POSTs the form body to uri through the outbound client (its address
 * policy); 0 when the client answered 2xx, else an ISSO_ERR_* with
 * *why_r. */
static int
backchannel_post(const char *uri, const struct buf *form, const char **why_r)
{
	static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
	                                      NULL};
	struct outbound_req rq = {
	    .method = OUTBOUND_POST,
	    .url = uri,
	    .headers = headers,
	    .body = form->data,
	    .body_len = form->len,
	    .agent = "isso-backchannel-logout/1",
	    .timeout_ms = BC_TIMEOUT_MS,
	    .reply_max = 64 * 1024,
	    .purpose = "backchannel_logout",
	};
	struct outbound_resp rs;
	const char *err = NULL;
	int ret;

	ret = outbound_request(&rq, &rs, &err);
	if (ret < 0) {
		*why_r = err != NULL ? err : "no answer";
	} else if (rs.status < 200 || rs.status > 299) {
		*why_r = "HTTP status";
		ret = ISSO_ERR_IO;
	}
	outbound_resp_free(&rs);
	return ret;
}

/* Delivers one queued notice: a fresh logout token (OIDC Back-Channel
 * Logout §2.4) whose jti is the notice's id, so retries name one event.
 * 1 when there is nothing to deliver any more (client gone or without a
 * URI), 0 when delivered, ISSO_ERR_* with *why_r when it failed. */
static int
backchannel_deliver(struct isso_app *app, const struct store_job *job, const char **why_r)
{
	const char *client_id = json_string_value(json_object_get(job->data, "client_id"));
	const char *sub = json_string_value(json_object_get(job->data, "sub"));
	const char *sid = json_string_value(json_object_get(job->data, "sid"));
	struct store_client *c = NULL;
	char *jwt = NULL;
	int64_t now = app_now();
	json_t *claims = NULL;
	struct buf form;
	int ret;

	*why_r = "cannot sign";
	buf_init(&form, 16384);
	/* A store that fails is no "client gone": the notice is tried again. */
	ret = oidc_client_find(app, client_id, &c);
	if (ret < 0) {
		*why_r = "store unavailable";
		goto out;
	}
	ret = 1;
	if (c == NULL || sub == NULL || c->backchannel_logout_uri == NULL ||
	    c->backchannel_logout_uri[0] == '\0')
		goto out;
	ret = ISSO_ERR_CRYPTO;
	/* Without a sid (consent withdrawn: every session of sub at the
	 * client) the token names the subject only (OIDC Back-Channel Logout
	 * §2.4: sub, sid or both). */
	claims = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:{s:{}}}", "iss", app->issuer, "aud",
	                   c->client_id, "iat", (json_int_t)now, "exp", (json_int_t)(now + 120),
	                   "jti", job->id, "sub", sub, "events",
	                   "http://schemas.openid.net/event/backchannel-logout");
	if (claims != NULL && sid != NULL)
		json_object_set_new(claims, "sid", json_string(sid));
	if (claims == NULL || jose_sign(app->keys, c->id_token_alg, "logout+jwt", claims, &jwt) < 0)
		goto out;
	ret = ISSO_ERR_LIMIT;
	*why_r = "logout token too large";
	if (outbound_form_add(&form, "logout_token", jwt) < 0)
		goto out;
	ret = backchannel_post(c->backchannel_logout_uri, &form, why_r);
out:
	buf_free(&form);
	free(jwt);
	json_decref(claims);
	store_client_free(c);
	return ret;
}

struct bc_task {
	struct isso_app *app;
	struct store_job *job;
};

static void
backchannel_send_task(void *arg)
{
	struct bc_task *t = arg;
	struct isso_app *app = t->app;
	struct oidc_runtime *rt = app->oidc;
	struct store_job *job = t->job;
	const char *client_id = json_string_value(json_object_get(job->data, "client_id")) ?: "";
	const char *why = NULL;
	char attempts[16], retry[16];
	int64_t now, delay;
	int ret;

	bool is_set = strcmp(job->kind, OIDC_SET_KIND) == 0;

	ret = is_set ? oidc_set_deliver(app, job, &why) : backchannel_deliver(app, job, &why);
	now = app_now();
	snprintf(attempts, sizeof(attempts), "%d", job->attempts);
	if (ret >= 0) {
		if (ret == 0)
			log_info(is_set ? "security_event_sent" : "backchannel_logout_sent",
			         "client_id", client_id, "attempts", attempts, NULL);
		(void)store_job_done(app->store, job->id, rt->node);
	} else if (worker_stopping(app->workers)) {
		/* Stopping: the next start (or another node) sends it. */
		(void)store_job_retry(app->store, job->id, rt->node, now);
	} else {
		/* Exponential back-off: 1 s, 2 s, 4 s … at most an hour. */
		delay = job->attempts >= 13 ? BC_BACKOFF_MAX : (int64_t)1 << (job->attempts - 1);
		if (delay > BC_BACKOFF_MAX)
			delay = BC_BACKOFF_MAX;
		if (job->attempts >= BC_MAX_ATTEMPTS || now + delay >= job->expires_at) {
			log_warn(is_set ? "security_event_gave_up" : "backchannel_logout_gave_up",
			         "client_id", client_id, "attempts", attempts, "reason", why, NULL);
			(void)store_job_done(app->store, job->id, rt->node);
		} else {
			snprintf(retry, sizeof(retry), "%lld", (long long)delay);
			log_warn(is_set ? "security_event_failed" : "backchannel_logout_failed",
			         "client_id", client_id, "attempts", attempts, "reason", why,
			         "retry_in", retry, NULL);
			(void)store_job_retry(app->store, job->id, rt->node, now + delay);
		}
	}
	store_job_free(job);
	free(t);
	atomic_fetch_sub(&rt->backchannel_sending, 1);
	worker_poke(app->workers, rt->backchannel_task);
}

/* Claims due notices (a lease: no other node sends them meanwhile) and
 * hands each to a worker, a few at a time. */
static void
backchannel_tick(void *ctx)
{
	struct isso_app *app = ctx;
	struct oidc_runtime *rt = app->oidc;

	while (!worker_stopping(app->workers) &&
	       atomic_load(&rt->backchannel_sending) < BC_PARALLEL) {
		struct store_job *job = NULL;
		struct bc_task *t;
		/* Logout notices first, then security events (events.c). */
		if (store_job_claim(app->store, BC_KIND, rt->node, app_now(), BC_LEASE, &job) < 0)
			break;
		if (job == NULL && store_job_claim(app->store, OIDC_SET_KIND, rt->node, app_now(),
		                                   BC_LEASE, &job) < 0)
			break;
		if (job == NULL)
			break;
		t = xcalloc(1, sizeof(*t));
		t->app = app;
		t->job = job;
		atomic_fetch_add(&rt->backchannel_sending, 1);
		if (worker_submit(app->workers, backchannel_send_task, t) < 0) {
			atomic_fetch_sub(&rt->backchannel_sending, 1);
			(void)store_job_retry(app->store, job->id, rt->node, app_now() + 1);
			store_job_free(job);
			free(t);
			break;
		}
	}
}

int
oidc_backchannel_start(struct isso_app *app)
{
	return worker_every(app->workers, BC_TICK_MS, backchannel_tick, app,
	                    &app->oidc->backchannel_task);
}

void
oidc_backchannel_logout(struct isso_app *app, const char *uuid, const char *sid, json_t *clients)
{
	int64_t now = app_now();
	size_t i;
	json_t *v;
	bool queued = false;

	json_array_foreach(clients, i, v)
	{
		struct store_client *c = oidc_client(app, json_string_value(v));
		char sub[44];
		if (c != NULL && c->backchannel_logout_uri != NULL &&
		    c->backchannel_logout_uri[0] != '\0') {
			json_t *data = json_pack("{s:s, s:s}", "client_id", c->client_id, "sub",
			                         oidc_sub(app, c->client_id, uuid, sub));
			if (sid != NULL)
				json_object_set_new(data, "sid", json_string(sid));
			if (store_job_add(app->store, BC_KIND, data, now, now, now + BC_GIVE_UP,
			                  NULL) < 0)
				log_error("backchannel_logout_lost", "client_id", c->client_id,
				          NULL);
			else
				queued = true;
			json_decref(data);
		}
		store_client_free(c);
	}
	if (queued && app->oidc != NULL)
		worker_poke(app->workers, app->oidc->backchannel_task);
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
	char *text = jose_keyset_jwks_dup(app->keys);
	json_t *jwks = json_loads(text, 0, NULL);
	json_t *claims = NULL;
	const char *why = NULL;

	free(text);
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
	if (client_id != NULL && oidc_client_find(app, client_id, &c) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
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
