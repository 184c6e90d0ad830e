/* Login transactions and browser sessions. */
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "auth/bind.h"
#include "auth/flow.h"
#include "auth/page.h"
#include "http/parse.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "store/store.h"

static bool ended_by_person(struct isso_app *app, json_t *session);

#define BIND_COOKIE    "isso_bind"
#define SESSION_COOKIE "isso_sid"

/* The browser's binding secret, created when absent. */
static const char *
browser_bind(struct http_req *req)
{
	const char *v = http_cookie(req, BIND_COOKIE);
	char *fresh;

	if (v != NULL && strlen(v) == 43)
		return v;
	fresh = pool_alloc(http_pool(req), 48);
	secret_token(32, fresh);
	http_set_cookie(req, BIND_COOKIE, fresh, -1, HTTP_COOKIE_HTTPONLY | HTTP_COOKIE_LAX);
	return fresh;
}

int
flow_txn_create(struct isso_app *app, struct http_req *req, json_t *request, char id_r[44])
{
	char bind[65];
	int64_t now = app_now();
	int ret;

	secret_token(32, id_r);
	secret_sha256_hex(browser_bind(req), 43, bind);
	json_object_set_new(request, "bind", json_string(bind));
	json_object_set_new(request, "created_at", json_integer(now));
	ret = store_eph_put(app->store, "txn", id_r, request, now + app->cfg->oidc.txn_ttl);
	json_decref(request);
	return ret;
}

/* Any form of a login may be answered, through /consent, by a redirect to
 * the client (consent given before): CSP form-action must allow the
 * client's origin or the browser stops that redirect. */
static void
allow_client_origin(struct http_req *req, json_t *txn)
{
	const char *uri = json_string_value(json_object_get(txn, "redirect_uri"));
	const char *host = uri != NULL ? strstr(uri, "://") : NULL;

	if (host == NULL)
		return;
	http_csp_allow_form_action(
	    req,
	    pool_strndup(http_pool(req), uri, (size_t)(host + 3 - uri) + strcspn(host + 3, "/?#")));
}

static json_t *
txn_load(struct isso_app *app, struct http_req *req, const char **id_r, bool *foreign_r)
{
	const char *id = http_param(req, "t");
	const char *cookie = http_cookie(req, BIND_COOKIE);
	json_t *txn = NULL;
	char bind[65];
	const char *want;

	*id_r = NULL;
	if (id == NULL || strlen(id) != 43)
		goto expired;
	if (store_eph_get(app->store, "txn", id, app_now(), &txn, NULL) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		return NULL;
	}
	if (txn == NULL)
		goto expired;
	want = json_string_value(json_object_get(txn, "bind"));
	if (want == NULL)
		goto expired;
	if (cookie == NULL)
		goto foreign;
	secret_sha256_hex(cookie, strlen(cookie), bind);
	if (!secret_equal(bind, want))
		goto foreign;
	allow_client_origin(req, txn);
	*id_r = id;
	return txn;
foreign:
	if (foreign_r != NULL) {
		json_decref(txn);
		*foreign_r = true;
		return NULL;
	}
expired:
	json_decref(txn);
	page_error(app, req, 400, "error.txn_title", "error.txn_expired", NULL);
	return NULL;
}

json_t *
flow_txn_load(struct isso_app *app, struct http_req *req, const char **id_r)
{
	return txn_load(app, req, id_r, NULL);
}

json_t *
flow_txn_load_bound(struct isso_app *app, struct http_req *req, const char **id_r, bool *foreign_r)
{
	*foreign_r = false;
	return txn_load(app, req, id_r, foreign_r);
}

int
flow_txn_save(struct isso_app *app, const char *id, json_t *txn)
{
	bool found = false;
	int ret = store_eph_update(app->store, "txn", id, txn, app_now(), &found);

	if (ret == 0 && !found)
		ret = ISSO_ERR_INVALID;
	return ret;
}

void
flow_txn_delete(struct isso_app *app, const char *id)
{
	(void)store_eph_delete(app->store, "txn", id);
}

const char *
flow_url(struct http_req *req, const char *path, const char *id)
{
	return pool_printf(http_pool(req), "%s?t=%s", path, id);
}

/* Sessions are keyed by cookie; each person's are also listed (by store
 * key) in one short-lived row, so /account can show them and end them
 * one by one. The list is an index, pruned of ended sessions when read;
 * the sessions-ended marker, not the list, is what ends them all. */
#define PERSON_SESSIONS_KIND "person-sessions"
#define PERSON_SESSIONS_MAX  32

static void
person_sessions_add(struct isso_app *app, const char *uuid, const char *key, int64_t now)
{
	json_t *idx = NULL, *keys, *fresh = json_array();
	size_t i, n;

	if (store_eph_get(app->store, PERSON_SESSIONS_KIND, uuid, now, &idx, NULL) < 0)
		idx = NULL;
	keys = json_object_get(idx, "keys");
	json_array_append_new(fresh, json_string(key));
	n = json_array_size(keys);
	/* The newest first; the oldest beyond the cap are no longer listed
	 * (they still end with the marker). */
	for (i = 0; i < n && json_array_size(fresh) < PERSON_SESSIONS_MAX; i++) {
		const char *k = json_string_value(json_array_get(keys, i));
		if (k != NULL && strlen(k) == 64 && strcmp(k, key) != 0)
			json_array_append_new(fresh, json_string(k));
	}
	json_decref(idx);
	idx = json_pack("{s:o}", "keys", fresh);
	if (store_eph_put(app->store, PERSON_SESSIONS_KIND, uuid, idx,
	                  now + app->cfg->oidc.session_ttl) < 0)
		log_warn("person_sessions_index", "error", "store", NULL);
	json_decref(idx);
}

json_t *
flow_person_sessions(struct isso_app *app, const char *uuid)
{
	json_t *idx = NULL, *out = json_array();
	int64_t now = app_now();
	size_t i;
	json_t *v;

	if (store_eph_get(app->store, PERSON_SESSIONS_KIND, uuid, now, &idx, NULL) < 0 ||
	    idx == NULL)
		goto out;
	json_array_foreach(json_object_get(idx, "keys"), i, v)
	{
		const char *key = json_string_value(v);
		json_t *session = NULL;
		if (key == NULL ||
		    store_eph_get(app->store, "session", key, now, &session, NULL) < 0 ||
		    session == NULL)
			continue;
		/* Another person's login on that browser replaced it, or a
		 * reset ended it. */
		if (strcmp(json_string_value(json_object_get(session, "uuid")) ?: "", uuid) != 0 ||
		    ended_by_person(app, session)) {
			json_decref(session);
			continue;
		}
		json_object_set_new(session, "key", json_string(key));
		json_array_append_new(out, session);
	}
out:
	json_decref(idx);
	return out;
}

int
flow_person_sessions_end_all(struct isso_app *app, const char *uuid, const char *current_key,
                             json_t *current)
{
	json_t *sessions = flow_person_sessions(app, uuid);
	bool current_listed = false;
	size_t i;
	json_t *s;
	int ret;

	/* The marker first: whatever happens next, no session of uuid that
	 * began until now counts any more. */
	ret = flow_sessions_end_person(app, uuid);
	if (ret < 0)
		goto out;
	json_array_foreach(sessions, i, s)
	{
		const char *sid = json_string_value(json_object_get(s, "sid"));
		const char *key = json_string_value(json_object_get(s, "key"));
		if (current_key != NULL && strcmp(key, current_key) == 0)
			current_listed = true;
		(void)store_eph_delete(app->store, "session", key);
		if (sid != NULL)
			(void)store_eph_delete(app->store, "sid", sid);
		if (app->session_ended != NULL)
			app->session_ended(app, s);
	}
	/* The caller's own session, begun before the index listed it. */
	if (current != NULL && !current_listed) {
		const char *sid = json_string_value(json_object_get(current, "sid"));
		if (sid != NULL)
			(void)store_eph_delete(app->store, "sid", sid);
		if (current_key != NULL)
			(void)store_eph_delete(app->store, "session", current_key);
		if (app->session_ended != NULL)
			app->session_ended(app, current);
	}
	(void)store_eph_delete(app->store, PERSON_SESSIONS_KIND, uuid);
out:
	json_decref(sessions);
	return ret;
}

static json_t *
amr_array(const struct flow_auth *auth)
{
	const char *const *amr = auth->amr != NULL ? auth->amr : auth->method->amr;
	json_t *a = json_array();

	for (; amr != NULL && *amr != NULL; amr++)
		json_array_append_new(a, json_string(*amr));
	return a;
}

void
flow_complete(struct isso_app *app, struct http_req *req, const char *id, json_t *txn,
              const struct flow_auth *auth)
{
	const char *old_key = NULL;
	json_t *old = flow_session(app, req, &old_key);
	json_t *session = json_object();
	char token[48], key[65], sid[48];
	int64_t now = app_now();
	int ret;

	/* The one place no method can skip: a login weaker than the request
	 * asked for (acr_values) never reaches consent. */
	if ((json_int_t)auth->loa < json_integer_value(json_object_get(txn, "min_loa"))) {
		json_decref(old);
		json_decref(session);
		page_error(app, req, 403, "error.loa_title", "error.loa_too_low",
		           flow_url(req, "/login", id));
		return;
	}
	/* A binding from /account: the proven ID links to the member whose
	 * session this is; that session stays as it was. */
	if (bind_txn(txn)) {
		json_decref(old);
		json_decref(session);
		bind_complete(app, req, id, txn, auth);
		return;
	}
	/* A new login always gets a new session id (no fixation); the clients
	 * list survives only when the same person logs in again. */
	if (old != NULL) {
		const char *olduuid = json_string_value(json_object_get(old, "uuid"));
		if (olduuid != NULL && strcmp(olduuid, auth->uuid) == 0) {
			/* Clients already know this session by its sid: keep
			 * it, so a later back-channel logout names what they hold. */
			json_object_set(session, "clients", json_object_get(old, "clients"));
			json_object_set(session, "sid", json_object_get(old, "sid"));
		}
		(void)store_eph_delete(app->store, "session", old_key);
		if (olduuid == NULL || strcmp(olduuid, auth->uuid) != 0) {
			const char *oldsid = json_string_value(json_object_get(old, "sid"));
			if (oldsid != NULL)
				(void)store_eph_delete(app->store, "sid", oldsid);
			if (app->session_ended != NULL)
				app->session_ended(app, old);
		}
		json_decref(old);
	}
	if (json_object_get(session, "clients") == NULL)
		json_object_set_new(session, "clients", json_array());
	secret_token(32, token);
	secret_token(16, sid);
	secret_sha256_hex(token, strlen(token), key);
	json_object_set_new(session, "uuid", json_string(auth->uuid));
	if (!json_is_string(json_object_get(session, "sid")))
		json_object_set_new(session, "sid", json_string(sid));
	json_object_set_new(session, "auth_time", json_integer(now));
	json_object_set_new(session, "loa", json_integer(auth->loa));
	json_object_set_new(session, "amr", amr_array(auth));
	json_object_set_new(session, "method", json_string(auth->method->id));
	/* What the method proved about the person, sealed like all personal
	 * data at rest; the phone is the one verified in this login. */
	{
		json_t *attrs = auth->attrs != NULL ? json_deep_copy(auth->attrs) : json_object();
		char *text, *sealed = NULL;
		if (auth->phone != NULL)
			json_object_set_new(attrs, "phone", json_string(auth->phone));
		text = json_dumps(attrs, JSON_COMPACT);
		json_decref(attrs);
		if (text == NULL || secret_seal(&app->secrets, text, strlen(text), &sealed) < 0) {
			xfree_secret(text);
			json_decref(session);
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           NULL);
			return;
		}
		xfree_secret(text);
		json_object_set_new(session, "attrs", json_string(sealed));
		free(sealed);
	}
	ret = store_eph_put(app->store, "session", key, session, now + app->cfg->oidc.session_ttl);
	if (ret == 0) {
		/* The session as clients know it (by sid), for tokens bound
		 * to it: it lives exactly as long. */
		json_t *live =
		    json_pack("{s:s, s:I, s:I}", "uuid", auth->uuid, "auth_time", (json_int_t)now,
		              "expires_at", (json_int_t)(now + app->cfg->oidc.session_ttl));
		ret = store_eph_put(app->store, "sid",
		                    json_string_value(json_object_get(session, "sid")), live,
		                    now + app->cfg->oidc.session_ttl);
		json_decref(live);
	}
	if (ret < 0) {
		json_decref(session);
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		return;
	}
	http_set_cookie(req, SESSION_COOKIE, token, -1, HTTP_COOKIE_HTTPONLY | HTTP_COOKIE_LAX);
	person_sessions_add(app, auth->uuid, key, now);

	/* The transaction records this login: consent reads it from there, so
	 * the released phone is the one verified now. */
	json_object_set_new(txn, "auth", session);
	json_object_set_new(txn, "session_key", json_string(key));
	json_object_del(txn, "sso"); /* a fresh login, not single sign-on */
	if (flow_txn_save(app, id, txn) < 0) {
		page_error(app, req, 400, "error.txn_title", "error.txn_expired", NULL);
		return;
	}
	store_audit_append(app->store, now, "login",
	                   json_pack("{s:s, s:s, s:s}", "uuid", auth->uuid, "method",
	                             auth->method->id, "client_id",
	                             json_string_value(json_object_get(txn, "client_id")) ?: ""));
	metrics_login(auth->method->id, true);
	http_redirect(req, 303, flow_url(req, "/consent", id));
}

void
flow_login_failed(json_t *fields)
{
	metrics_login(json_string_value(json_object_get(fields, "method")), false);
	log_event(LOG_WARN, "login_failed", fields);
}

bool
flow_session_cookie_sent(struct http_req *req)
{
	return http_cookie(req, SESSION_COOKIE) != NULL;
}

json_t *
flow_session(struct isso_app *app, struct http_req *req, const char **key_r)
{
	const char *token = http_cookie(req, SESSION_COOKIE);
	json_t *session = NULL;
	char *key;

	if (key_r != NULL)
		*key_r = NULL;
	if (token == NULL || strlen(token) != 43)
		return NULL;
	key = pool_alloc(http_pool(req), 65);
	secret_sha256_hex(token, strlen(token), key);
	if (store_eph_get(app->store, "session", key, app_now(), &session, NULL) < 0)
		return NULL;
	if (session != NULL && ended_by_person(app, session)) {
		(void)store_eph_delete(app->store, "session", key);
		json_decref(session);
		session = NULL;
	}
	if (session != NULL && key_r != NULL)
		*key_r = key;
	return session;
}

/* Sessions of a person end all at once (password reset) through a marker
 * that outlives the longest session: sessions that began before it are
 * void. Sessions are keyed by cookie, not person, so they cannot be found
 * and deleted one by one. */
static bool
ended_by_person(struct isso_app *app, json_t *session)
{
	const char *uuid = json_string_value(json_object_get(session, "uuid"));
	json_t *mark = NULL;
	bool ended = false;

	if (uuid == NULL)
		return true;
	if (store_eph_get(app->store, "sessions-ended", uuid, app_now(), &mark, NULL) == 0 &&
	    mark != NULL)
		ended = json_integer_value(json_object_get(session, "auth_time")) <=
		        json_integer_value(json_object_get(mark, "before"));
	json_decref(mark);
	return ended;
}

int
flow_sessions_end_person(struct isso_app *app, const char *uuid)
{
	int64_t now = app_now();
	json_t *mark = json_pack("{s:I}", "before", (json_int_t)now);
	int ret = store_eph_put(app->store, "sessions-ended", uuid, mark,
	                        now + app->cfg->oidc.session_ttl + 1);

	json_decref(mark);
	return ret;
}

void
flow_session_add_client(struct isso_app *app, const char *key, json_t *session,
                        const char *client_id)
{
	json_t *clients = json_object_get(session, "clients");
	size_t i;
	json_t *v;
	bool found = false;

	if (!json_is_array(clients)) {
		clients = json_array();
		json_object_set_new(session, "clients", clients);
	}
	json_array_foreach(clients, i, v)
	{
		if (strcmp(json_string_value(v) ?: "", client_id) == 0)
			return;
	}
	json_array_append_new(clients, json_string(client_id));
	(void)store_eph_update(app->store, "session", key, session, app_now(), &found);
}

int
flow_sid_state(struct isso_app *app, const char *sid, const char *uuid, bool *alive_r,
               int64_t *expires_at_r)
{
	json_t *live = NULL, *mark = NULL;
	int64_t now = app_now();
	int ret = 0;

	*alive_r = false;
	if (expires_at_r != NULL)
		*expires_at_r = 0;
	if (sid == NULL || uuid == NULL)
		return 0;
	ret = store_eph_get(app->store, "sid", sid, now, &live, NULL);
	if (ret < 0 || live == NULL)
		goto out;
	if (strcmp(json_string_value(json_object_get(live, "uuid")) ?: "", uuid) != 0)
		goto out;
	/* A password reset ends every session that began before it. */
	ret = store_eph_get(app->store, "sessions-ended", uuid, now, &mark, NULL);
	if (ret < 0)
		goto out;
	if (mark != NULL && json_integer_value(json_object_get(live, "auth_time")) <=
	                        json_integer_value(json_object_get(mark, "before")))
		goto out;
	*alive_r = true;
	if (expires_at_r != NULL)
		*expires_at_r = json_integer_value(json_object_get(live, "expires_at"));
out:
	json_decref(mark);
	json_decref(live);
	return ret;
}

void
flow_session_end(struct isso_app *app, struct http_req *req, const char *key)
{
	json_t *session = NULL;

	if (key != NULL) {
		/* Tokens bound to the session die with it. */
		if (store_eph_get(app->store, "session", key, app_now(), &session, NULL) == 0 &&
		    json_is_string(json_object_get(session, "sid")))
			(void)store_eph_delete(app->store, "sid",
			                       json_string_value(json_object_get(session, "sid")));
		json_decref(session);
		(void)store_eph_delete(app->store, "session", key);
	}
	http_set_cookie(req, SESSION_COOKIE, "", 0, HTTP_COOKIE_HTTPONLY | HTTP_COOKIE_LAX);
}
