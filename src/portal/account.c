/* /account: the citizen's own page (我的帳戶). What iSSO holds about the
 * person and the login methods linked to it; the live sessions, with
 * "log out everywhere"; each agency holding a consent (fields, since when,
 * purpose) with withdrawal; and the release history — every release of
 * data, to whom and when, fresh login or single sign-on.
 *
 * iSSO is its own relying party here: without a session /account starts a
 * login transaction that names no client ("account": true); any method
 * at any level finishes it and comes back here instead of to consent.
 * Changes are POSTs with a CSRF token bound to the page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/app.h"
#include "auth/bind.h"
#include "auth/claims.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "auth/page.h"
#include "auth/person.h"
#include "http/csrf.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "oidc/oidc.h"
#include "portal/account.h"
#include "store/store.h"

#define ACCOUNT_CSRF     "account"
#define HISTORY_SHOWN    100 /* releases on the page, newest first */
#define CLIENT_ID_MAX    128
#define CLIENT_NAMES_MAX 256 /* distinct agencies looked up per page */
#define DEVICES_SHOWN    100 /* a member's devices read, revoked ones too */
#define DEVICE_ID_LEN    43  /* base64url of 32 bytes */

static void
set_time(struct http_req *req, json_t *o, const char *key, int64_t ts)
{
	const char *text, *iso;
	char iso_key[64];

	page_taipei_time(req, ts, &text, &iso);
	snprintf(iso_key, sizeof(iso_key), "%s_iso", key);
	json_object_set_new(o, key, json_string(text));
	json_object_set_new(o, iso_key, json_string(iso));
}

/* The message key naming a level of assurance. */
static const char *
loa_key(enum loa loa)
{
	switch (loa) {
	case LOA_HIGH:
		return "account.loa_high";
	case LOA_SUBSTANTIAL:
		return "account.loa_substantial";
	default:
		return "account.loa_low";
	}
}

static const char *
method_title(struct isso_app *app, struct http_req *req, const char *id)
{
	const struct method *m = method_find(id);

	return m != NULL ? page_text(app, req, m->title_key)
	                 : page_text(app, req, "account.unknown");
}

/* The label of a released claim by its name, NULL for protocol claims. */
static const char *
claim_label_key(const char *claim)
{
	unsigned bit = claim_bit_of(claim);

	if (strcmp(claim, "member_level") == 0)
		return "claim.member_level";
	if (strcmp(claim, "phone_number_verified") == 0 || strcmp(claim, "email_verified") == 0)
		return NULL;
	for (unsigned i = 0; i < claim_scopes_count; i++) {
		if (claim_scopes[i].bit == bit)
			return claim_scopes[i].label;
	}
	return NULL;
}

/* The agencies' names, looked up once per page. */
struct names {
	json_t *by_id; /* client_id -> {name, purpose} */
	unsigned lookups;
};

static json_t *
client_info(struct isso_app *app, struct names *n, const char *client_id)
{
	json_t *info = json_object_get(n->by_id, client_id);
	struct store_client *c = NULL;

	if (info != NULL)
		return info;
	if (n->lookups >= CLIENT_NAMES_MAX || strlen(client_id) > CLIENT_ID_MAX)
		return NULL;
	n->lookups++;
	/* Any status: a suspended agency still holds what it received. */
	if (store_client_get(app->store, client_id, &c) < 0 || c == NULL)
		info = json_object();
	else
		info = json_pack("{s:s, s:s}", "name", c->name, "purpose",
		                 c->purpose != NULL ? c->purpose : "");
	store_client_free(c);
	json_object_set_new(n->by_id, client_id, info);
	return info;
}

static void
set_client(struct isso_app *app, struct http_req *req, struct names *n, json_t *o,
           const char *client_id)
{
	json_t *info = client_info(app, n, client_id);
	const char *name = json_string_value(json_object_get(info, "name"));
	const char *purpose = json_string_value(json_object_get(info, "purpose"));

	json_object_set_new(
	    o, "client_name",
	    json_string(name != NULL ? name : page_text(app, req, "account.unknown_agency")));
	if (page_other_lang(req, name) != NULL)
		json_object_set_new(o, "client_name_lang", json_string(page_other_lang(req, name)));
	if (purpose != NULL && purpose[0] != '\0') {
		json_object_set_new(o, "purpose", json_string(purpose));
		if (page_other_lang(req, purpose) != NULL)
			json_object_set_new(o, "purpose_lang",
			                    json_string(page_other_lang(req, purpose)));
	}
}

/* The field labels of a scope string's claim scopes, in consent order,
 * skipping "word?" (nothing to release when granted) and "word-"
 * (declined). */
static json_t *
scope_fields(struct isso_app *app, struct http_req *req, const char *scope)
{
	json_t *out = json_array();

	for (unsigned i = 0; i < claim_scopes_count; i++) {
		if (scope_has(scope, claim_scopes[i].scope))
			json_array_append_new(
			    out, json_string(page_text(app, req, claim_scopes[i].label)));
	}
	return out;
}

struct consent_ctx {
	struct isso_app *app;
	struct http_req *req;
	struct names *names;
	json_t *list;
};

static int
consent_item(const struct store_consent *c, void *arg)
{
	struct consent_ctx *x = arg;
	json_t *item = json_object(), *fields, *declined = json_array(), *v;
	const char *notice = json_string_value(json_object_get(c->record, "notice"));
	size_t i;

	json_object_set_new(item, "client_id", json_string(c->client_id));
	set_client(x->app, x->req, x->names, item, c->client_id);
	fields = scope_fields(x->app, x->req, c->scope);
	json_object_set_new(item, "has_fields", json_boolean(json_array_size(fields) > 0));
	json_object_set_new(item, "fields", fields);
	json_array_foreach(json_object_get(c->record, "declined"), i, v)
	{
		for (unsigned k = 0; k < claim_scopes_count; k++) {
			if (json_is_string(v) &&
			    strcmp(json_string_value(v), claim_scopes[k].scope) == 0)
				json_array_append_new(
				    declined,
				    json_string(page_text(x->app, x->req, claim_scopes[k].label)));
		}
	}
	json_object_set_new(item, "has_declined", json_boolean(json_array_size(declined) > 0));
	json_object_set_new(item, "declined", declined);
	if (scope_has(c->scope, "offline_access"))
		json_object_set_new(item, "offline", json_true());
	set_time(x->req, item, "since", c->created_at);
	if (c->updated_at != c->created_at)
		set_time(x->req, item, "updated", c->updated_at);
	if (notice != NULL)
		json_object_set_new(item, "notice", json_string(notice));
	json_array_append_new(x->list, item);
	return 0;
}

struct release_ctx {
	struct isso_app *app;
	struct http_req *req;
	struct names *names;
	json_t *list;
};

static int
release_item(const struct store_release *r, void *arg)
{
	struct release_ctx *x = arg;
	json_t *item = json_object(), *fields = json_array(), *v;
	const char *method = json_string_value(json_object_get(r->data, "method"));
	enum loa loa = loa_parse(json_string_value(json_object_get(r->data, "acr")) ?: "");
	size_t i;

	set_client(x->app, x->req, x->names, item, r->client_id);
	set_time(x->req, item, "when", r->ts);
	json_array_foreach(json_object_get(r->data, "fields"), i, v)
	{
		const char *key = json_is_string(v) ? claim_label_key(json_string_value(v)) : NULL;
		if (key != NULL)
			json_array_append_new(fields, json_string(page_text(x->app, x->req, key)));
	}
	json_object_set_new(item, "has_fields", json_boolean(json_array_size(fields) > 0));
	json_object_set_new(item, "fields", fields);
	json_object_set_new(item, "method",
	                    json_string(method_title(x->app, x->req, method ?: "")));
	json_object_set_new(item, "level",
	                    json_string(page_text(x->app, x->req, loa_key(loa ?: LOA_LOW))));
	json_object_set_new(item, "kind",
	                    json_string(page_text(x->app, x->req,
	                                          json_is_true(json_object_get(r->data, "sso"))
	                                              ? "account.kind_sso"
	                                              : "account.kind_login")));
	if (json_is_true(json_object_get(r->data, "sso")))
		json_object_set_new(item, "sso", json_true());
	json_array_append_new(x->list, item);
	return 0;
}

/* What iSSO holds about the person, as the citizen reads it. */
static json_t *
member_rows(struct isso_app *app, struct http_req *req, json_t *pii)
{
	static const struct {
		const char *key, *label;
	} shown[] = {
	    {"name", "claim.name"},           {"id_number", "claim.id_number"},
	    {"birthdate", "claim.birthdate"}, {"phone", "claim.phone"},
	    {"email", "claim.email"},         {"address", "claim.address"},
	};
	json_t *rows = json_array();
	char masked[32];

	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
		const char *v = json_string_value(json_object_get(pii, shown[i].key));
		json_t *row;
		if (v == NULL || v[0] == '\0')
			continue;
		/* The whole ID never appears on a page. */
		if (strcmp(shown[i].key, "id_number") == 0)
			v = log_mask(v, masked);
		row = json_pack("{s:s, s:s}", "label", page_text(app, req, shown[i].label), "value",
		                v);
		if (page_other_lang(req, v) != NULL)
			json_object_set_new(row, "value_lang",
			                    json_string(page_other_lang(req, v)));
		json_array_append_new(rows, row);
	}
	return rows;
}

/* The login methods linked to the person: a TaipeiPass account, and the
 * national ID proven by a card or certificate (which every ID method then
 * lands on). */
static json_t *
linked_methods(struct isso_app *app, struct http_req *req, const char *uuid, json_t *page,
               int *ret_r)
{
	struct store_member *m = NULL;
	struct store_person *p = NULL;
	json_t *out = json_array();

	*ret_r = store_member_get(app->store, uuid, &m);
	if (*ret_r == 0)
		*ret_r = store_person_get(app->store, uuid, &p);
	if (*ret_r < 0)
		goto out;
	if (m != NULL) {
		json_t *item =
		    json_pack("{s:s, s:s}", "title", page_text(app, req, "tp.title"), "detail",
		              pool_printf(http_pool(req), "%s %s（%s）",
		                          page_text(app, req, "account.account"), m->account,
		                          page_text(app, req,
		                                    m->level == MEMBER_GOLD ? "member.gold"
		                                                            : "member.ordinary")));
		json_array_append_new(out, item);
	}
	if (p != NULL && p->id_hash != NULL)
		json_array_append_new(
		    out, json_pack("{s:s, s:s}", "title", page_text(app, req, "account.id_linked"),
		                   "detail", page_text(app, req, "account.id_linked_detail")));
	/* A member not yet proven (gold) may bind a method that proves the
	 * national ID. */
	if (m != NULL && (m->level != MEMBER_GOLD || p == NULL || p->id_hash == NULL)) {
		json_t *options = json_array();
		for (const struct method *const *mt = methods; *mt != NULL; mt++) {
			if (bind_method_ok((*mt)->id) && method_available(app, *mt))
				json_array_append_new(
				    options, json_pack("{s:s, s:s}", "id", (*mt)->id, "title",
				                       page_text(app, req, (*mt)->title_key)));
		}
		json_object_set_new(page, "can_bind", json_boolean(json_array_size(options) > 0));
		json_object_set_new(page, "bind_methods", options);
	}
	if (m != NULL && m->level == MEMBER_GOLD)
		json_object_set_new(page, "gold", json_true());
out:
	store_member_free(m);
	store_person_free(p);
	return out;
}

/* The TaipeiPass app's devices of a member that are in use, each with
 * its name and when it was enrolled and last used; nothing for a person
 * who is no member. */
static int
member_devices(struct isso_app *app, struct http_req *req, const char *uuid, json_t *page)
{
	struct store_member *m = NULL;
	struct store_device *list = NULL;
	json_t *out;
	size_t n = 0;
	int ret;

	ret = store_member_get(app->store, uuid, &m);
	if (ret < 0 || m == NULL)
		goto out;
	json_object_set_new(page, "is_member", json_true());
	/* Revoked ones are listed too: room for all of them. */
	ret = store_device_list(app->store, uuid, DEVICES_SHOWN, &list, &n);
	if (ret < 0)
		goto out;
	out = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *item;
		if (list[i].revoked_at != 0)
			continue;
		item = json_pack("{s:s, s:s}", "id", list[i].id, "name",
		                 list[i].name != NULL && list[i].name[0] != '\0'
		                     ? list[i].name
		                     : page_text(app, req, "account.device_unnamed"));
		set_time(req, item, "enrolled", list[i].created_at);
		if (list[i].last_used_at != 0)
			set_time(req, item, "used", list[i].last_used_at);
		json_array_append_new(out, item);
	}
	json_object_set_new(page, "has_devices", json_boolean(json_array_size(out) > 0));
	json_object_set_new(page, "devices", out);
out:
	store_device_list_free(list, n);
	store_member_free(m);
	return ret;
}

/* Sends the citizen to pick a method; the login comes back to /account. */
static void
account_login(struct isso_app *app, struct http_req *req)
{
	json_t *request = json_pack("{s:b, s:i, s:s}", "account", true, "min_loa", LOA_LOW,
	                            "locale", http_locale(req));
	char txn_id[44];

	if (flow_txn_create(app, req, request, txn_id) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		return;
	}
	http_redirect(req, 303, flow_url(req, "/login", txn_id));
}

static void
account_page(struct isso_app *app, struct http_req *req, json_t *session, const char *key,
             const char *notice_key)
{
	const char *uuid = json_string_value(json_object_get(session, "uuid"));
	struct names names = {.by_id = json_object()};
	json_t *page = NULL, *pii = NULL, *sessions = NULL, *list, *s;
	struct consent_ctx cx;
	struct release_ctx rx;
	size_t i;
	int ret;

	ret = person_pii(app, uuid, &pii);
	if (ret < 0)
		goto fail;
	page = json_pack("{s:s, s:o}", "csrf", csrf_token(req, &app->secrets, ACCOUNT_CSRF),
	                 "member", member_rows(app, req, pii));
	json_object_set_new(page, "methods", linked_methods(app, req, uuid, page, &ret));
	if (ret < 0)
		goto fail;
	json_object_set_new(page, "has_member",
	                    json_boolean(json_array_size(json_object_get(page, "member")) > 0));
	json_object_set_new(page, "has_methods",
	                    json_boolean(json_array_size(json_object_get(page, "methods")) > 0));

	/* Sessions: this browser's first. */
	sessions = flow_person_sessions(app, uuid);
	list = json_array();
	json_array_foreach(sessions, i, s)
	{
		bool here = strcmp(json_string_value(json_object_get(s, "key")) ?: "", key) == 0;
		json_t *item = json_object();
		json_object_set_new(
		    item, "method",
		    json_string(method_title(
		        app, req, json_string_value(json_object_get(s, "method")) ?: "")));
		json_object_set_new(item, "level",
		                    json_string(page_text(app, req,
		                                          loa_key((enum loa)json_integer_value(
		                                              json_object_get(s, "loa"))))));
		set_time(req, item, "since", json_integer_value(json_object_get(s, "auth_time")));
		json_object_set_new(
		    item, "services",
		    json_integer((json_int_t)json_array_size(json_object_get(s, "clients"))));
		if (here) {
			json_object_set_new(item, "here", json_true());
			json_array_insert_new(list, 0, item);
		} else {
			json_array_append_new(list, item);
		}
	}
	if (!json_is_true(json_object_get(json_array_get(list, 0), "here"))) {
		/* This browser's session is not indexed (begun before the index
		 * existed, or dropped by a race): listed all the same. */
		json_t *item = json_pack(
		    "{s:s, s:s, s:b, s:i}", "method",
		    method_title(app, req,
		                 json_string_value(json_object_get(session, "method")) ?: ""),
		    "level",
		    page_text(
		        app, req,
		        loa_key((enum loa)json_integer_value(json_object_get(session, "loa")))),
		    "here", 1, "services",
		    (int)json_array_size(json_object_get(session, "clients")));
		set_time(req, item, "since",
		         json_integer_value(json_object_get(session, "auth_time")));
		json_array_insert_new(list, 0, item);
	}
	json_object_set_new(page, "sessions", list);
	if (member_devices(app, req, uuid, page) < 0)
		goto fail;
	json_object_set_new(page, "session_count", json_integer((json_int_t)json_array_size(list)));

	cx = (struct consent_ctx){app, req, &names, json_array()};
	json_object_set_new(page, "consents", cx.list);
	ret = store_consent_list(app->store, uuid, consent_item, &cx);
	if (ret < 0)
		goto fail;
	json_object_set_new(page, "has_consents", json_boolean(json_array_size(cx.list) > 0));

	rx = (struct release_ctx){app, req, &names, json_array()};
	json_object_set_new(page, "releases", rx.list);
	ret = store_release_list(app->store, uuid, HISTORY_SHOWN, release_item, &rx);
	if (ret < 0)
		goto fail;
	json_object_set_new(page, "has_releases", json_boolean(json_array_size(rx.list) > 0));
	if (notice_key != NULL)
		json_object_set_new(page, "notice", json_string(page_text(app, req, notice_key)));
	page_render(app, req, 200, "account", "account.title", page);
	page = NULL;
	goto out;
fail:
	page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
out:
	json_decref(page);
	json_decref(pii);
	json_decref(sessions);
	json_decref(names.by_id);
}

static void
account(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *key = NULL, *done = http_query(req, "done");
	json_t *session = flow_session(app, req, &key);
	const char *notice = NULL;

	if (session == NULL) {
		account_login(app, req);
		return;
	}
	/* What the last change did, said once in a status message. */
	if (done != NULL && strcmp(done, "withdrawn") == 0)
		notice = "account.withdrawn";
	else if (done != NULL && strcmp(done, "bound") == 0)
		notice = "account.bound";
	else if (done != NULL && strcmp(done, "device_revoked") == 0)
		notice = "account.device_revoked";
	account_page(app, req, session, key, notice);
	json_decref(session);
}

/* The start of a POST of /account: the citizen's session (a login page
 * when it ended since the page was shown) and the form's CSRF token.
 * NULL when the answer has been sent. */
static json_t *
account_post_session(struct isso_app *app, struct http_req *req, const char **key_r)
{
	json_t *session = flow_session(app, req, key_r);

	if (session == NULL) {
		account_login(app, req);
		return NULL;
	}
	if (!csrf_check(req, &app->secrets, ACCOUNT_CSRF)) {
		page_error(app, req, 403, "error.title", "error.csrf", "/account");
		json_decref(session);
		return NULL;
	}
	return session;
}

/* POST /account/withdraw: client_id. */
static void
withdraw(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *key = NULL, *client_id = http_form(req, "client_id");
	json_t *session = account_post_session(app, req, &key);
	const char *uuid;
	char *scope = NULL;

	if (session == NULL)
		return;
	uuid = json_string_value(json_object_get(session, "uuid"));
	if (client_id == NULL || client_id[0] == '\0' || strlen(client_id) > CLIENT_ID_MAX) {
		page_error(app, req, 400, "error.bad_request", "error.bad_request.message",
		           "/account");
		goto out;
	}
	/* Only a consent this person holds: anything else is the same answer
	 * as a consent already withdrawn (nothing about other clients leaks). */
	if (store_consent_get(app->store, uuid, client_id, &scope) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
		           "/account");
		goto out;
	}
	if (scope != NULL && oidc_consent_withdraw(app, uuid, client_id) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
		           "/account");
		goto out;
	}
	http_redirect(req, 303, "/account?done=withdrawn#consents");
out:
	free(scope);
	json_decref(session);
}

/* POST /account/logout-all: every session of the person ends. */
static void
logout_all(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *key = NULL;
	json_t *session = flow_session(app, req, &key);
	const char *uuid;

	if (session == NULL) {
		page_render(app, req, 200, "logged-out", "logout.done_title", NULL);
		return;
	}
	if (!csrf_check(req, &app->secrets, ACCOUNT_CSRF)) {
		page_error(app, req, 403, "error.title", "error.csrf", "/account");
		goto out;
	}
	uuid = json_string_value(json_object_get(session, "uuid"));
	if (flow_person_sessions_end_all(app, uuid, key, session) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
		           "/account");
		goto out;
	}
	flow_session_end(app, req, key);
	store_audit_append(app->store, app_now(), "logout_everywhere",
	                   json_pack("{s:s}", "uuid", uuid));
	page_render(
	    app, req, 200, "logged-out", "logout.done_title",
	    json_pack("{s:s}", "everywhere", page_text(app, req, "account.logged_out_all")));
out:
	json_decref(session);
}

/* POST /account/device/revoke: device. The app on that device can no
 * longer approve logins. */
static void
device_revoke(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *key = NULL, *device = http_form(req, "device");
	json_t *session = account_post_session(app, req, &key);
	const char *uuid;
	int n = 0;

	if (session == NULL)
		return;
	if (device == NULL || strlen(device) != DEVICE_ID_LEN ||
	    strspn(device, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
	        DEVICE_ID_LEN) {
		page_error(app, req, 400, "error.bad_request", "error.bad_request.message",
		           "/account");
		goto out;
	}
	uuid = json_string_value(json_object_get(session, "uuid"));
	/* Only this member's device: another's, or one revoked already, gets
	 * the same answer and nothing changes. */
	if (store_device_revoke(app->store, uuid, device, app_now(), &n) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
		           "/account");
		goto out;
	}
	if (n > 0)
		store_audit_append(app->store, app_now(), "tpapp_device_revoked",
		                   json_pack("{s:s, s:s, s:i, s:s}", "uuid", uuid, "device", device,
		                             "count", n, "by", "citizen"));
	http_redirect(req, 303, "/account?done=device_revoked#devices");
out:
	json_decref(session);
}

/* POST /account/bind: method. A member proves the national ID with a
 * card or certificate login in this session (auth/bind.h). */
static void
bind_post(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *key = NULL, *method_id = http_form(req, "method");
	json_t *session = account_post_session(app, req, &key);
	struct store_member *member = NULL;
	const struct method *m;
	char txn_id[44];
	int ret;

	if (session == NULL)
		return;
	/* Only a TaipeiPass member binds (checked again at the end). */
	if (store_member_get(app->store, json_string_value(json_object_get(session, "uuid")),
	                     &member) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
		           "/account");
		goto out;
	}
	if (member == NULL) {
		page_error(app, req, 403, "bind.refused_title", "bind.not_member", "/account");
		goto out;
	}
	m = method_id != NULL ? method_find(method_id) : NULL;
	if (m == NULL || !bind_method_ok(m->id) || !method_available(app, m)) {
		page_error(app, req, 400, "error.bad_request", "error.bad_request.message",
		           "/account");
		goto out;
	}
	ret = bind_start(app, req, session, key, m->id, txn_id);
	if (ret < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
		           "/account");
		goto out;
	}
	http_redirect(req, 303,
	              flow_url(req, pool_printf(http_pool(req), "/login/%s", m->id), txn_id));
out:
	store_member_free(member);
	json_decref(session);
}

void
account_routes(struct isso_app *app, struct http_server *srv)
{
	http_route(srv, HTTP_POST, "/account/bind", bind_post, app);
	http_route(srv, HTTP_POST, "/account/device/revoke", device_revoke, app);
	http_route(srv, HTTP_GET, "/account", account, app);
	http_route(srv, HTTP_POST, "/account/withdraw", withdraw, app);
	http_route(srv, HTTP_POST, "/account/logout-all", logout_all, app);
}
