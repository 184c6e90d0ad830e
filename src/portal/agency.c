/* Agencies apply for a client (申請介接) and city administrators review
 * the applications, on iSSO's own pages:
 *
 *   /agency                    my organisations' services and applications
 *   /agency/apply              the application form
 *   /agency/service/ID         one service: credentials once, rotate,
 *                              suspend, resume (its own suspension only),
 *                              delete, the review history
 *   /admin/applications        pending applications and suspended
 *                              services (city administrators)
 *   /admin/applications/ID     approve (narrowing fields) or refuse;
 *                              suspend (with a reason) or resume a
 *                              service; the review history
 *
 * iSSO is its own relying party here as on /account, at high assurance:
 * without a session of level high (MOICA card or mobile certificate) a
 * page starts a login transaction naming no client ("account": true,
 * "return_to": the page, "min_loa": high), and the login comes back to
 * the page. Who may act for an agency: a member of the organisation with
 * role "admin" (issoctl org member add … --role admin); who reviews: a
 * person holding the city_admin role (issoctl admin grant). A service of
 * another organisation reads as unknown. Every change is a POST with a
 * CSRF token bound to the page's purpose; every decision an audit event
 * (portal/agency-app.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "auth/page.h"
#include "conn/outbound.h"
#include "http/csrf.h"
#include "jose/jose.h"
#include "lib/buf.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "portal/agency-app.h"
#include "portal/agency.h"
#include "store/store.h"

#define AGENCY_CSRF    "agency"
#define ADMIN_CSRF     "admin-review"
#define AGENCY_ROLE    "admin"
#define CLIENT_ID_MAX  64
#define NAME_MAX_BYTES 200
#define PURPOSE_MAX    1000
#define CONTACTS_MAX   1000
#define URIS_MAX       16
#define URI_MAX        1000
#define JWKS_MAX       16000
#define SERVICES_SHOWN 200
/* An organisation holds at most this many services and applications. */
#define ORG_SERVICES_MAX 100

/* A client id as iSSO makes them (base64url), so that it is safe in a
 * path, a Location header and a return page. */
static bool
id_ok(const char *id)
{
	size_t n = id != NULL ? strlen(id) : 0;

	if (n == 0 || n > CLIENT_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = id[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

/* ---- who is asking ---- */

/* Sends the browser to log in at high assurance and come back to path. */
static void
login_high(struct isso_app *app, struct http_req *req, const char *path)
{
	json_t *request = json_pack("{s:b, s:s, s:i, s:s}", "account", true, "return_to", path,
	                            "min_loa", LOA_HIGH, "locale", http_locale(req));
	char txn_id[44];

	if (flow_txn_create(app, req, request, txn_id) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		return;
	}
	http_redirect(req, 303, flow_url(req, "/login", txn_id));
}

/* The session when it is of level high; otherwise NULL and the browser
 * is on its way to a (step-up) login coming back to back_path. */
static json_t *
high_session(struct isso_app *app, struct http_req *req, const char *back_path)
{
	json_t *session = flow_session(app, req, NULL);

	if (session != NULL && json_integer_value(json_object_get(session, "loa")) >= LOA_HIGH &&
	    json_is_string(json_object_get(session, "uuid")))
		return session;
	json_decref(session);
	login_high(app, req, back_path);
	return NULL;
}

/* The organisations uuid acts for as an agency admin: an array of
 * {ubn, name}; NULL (a page sent) when the store fails. */
static json_t *
staff_orgs(struct isso_app *app, struct http_req *req, const char *uuid)
{
	struct store_org_membership *ms = NULL;
	json_t *out;
	size_t n = 0;

	if (store_org_memberships(app->store, uuid, STORE_MEMBERSHIPS_MAX, &ms, &n) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		return NULL;
	}
	out = json_array();
	for (size_t i = 0; i < n; i++) {
		struct store_org *org = NULL;
		if (strcmp(ms[i].role, AGENCY_ROLE) != 0)
			continue;
		if (store_org_get(app->store, ms[i].ubn, &org) == 0 && org != NULL)
			json_array_append_new(
			    out, json_pack("{s:s, s:s}", "ubn", org->ubn, "name", org->name));
		store_org_free(org);
	}
	store_org_memberships_free(ms, n);
	return out;
}

static bool
orgs_have(json_t *orgs, const char *ubn)
{
	size_t i;
	json_t *o;

	json_array_foreach(orgs, i, o)
	{
		if (ubn != NULL && strcmp(json_string_value(json_object_get(o, "ubn")), ubn) == 0)
			return true;
	}
	return false;
}

static bool
is_city_admin(struct isso_app *app, const char *uuid, int *ret_r)
{
	bool has = false;

	*ret_r = store_role_has(app->store, uuid, STORE_ROLE_CITY_ADMIN, &has);
	return *ret_r == 0 && has;
}

/* ---- what a service looks like on a page ---- */

static const char *
state_key(const char *state)
{
	if (strcmp(state, "approved") == 0)
		return "agency.state_approved";
	if (strcmp(state, "suspended") == 0)
		return "agency.state_suspended";
	if (strcmp(state, "refused") == 0)
		return "agency.state_refused";
	return "agency.state_pending";
}

/* What each decision in an application's history reads as, and whose
 * side made it when the entry does not say. */
static const struct {
	const char *event, *key, *side;
} history_events[] = {
    {"client_applied", "agency.history_applied", AGENCY_BY_AGENCY},
    {"client_edited", "agency.history_edited", AGENCY_BY_AGENCY},
    {"client_approved", "agency.history_approved", AGENCY_BY_CITY},
    {"client_refused", "agency.history_refused", AGENCY_BY_CITY},
    {"client_suspended", "agency.history_suspended", AGENCY_BY_CITY},
    {"client_resumed", "agency.history_resumed", AGENCY_BY_CITY},
};

/* The decisions on a service, newest first: [{when, when_iso, what, who,
 * reason}]. Who is a side (the agency, a city reviewer), never a person:
 * the agency and the reviewer read the same rows. */
static json_t *
history_rows(struct isso_app *app, struct http_req *req, const struct store_client *c)
{
	json_t *a = agency_app_of(c), *h = json_object_get(a, "history"), *rows = json_array();
	/* A refusal recorded before the history kept reasons: the current
	 * one is the application's "refusal". */
	const char *refusal = json_string_value(json_object_get(a, "refusal"));
	size_t n = json_array_size(h);

	for (size_t i = n; i-- > 0;) {
		json_t *e = json_array_get(h, i), *row;
		const char *event = json_string_value(json_object_get(e, "event"));
		const char *side = json_string_value(json_object_get(e, "side"));
		const char *reason = json_string_value(json_object_get(e, "reason"));
		const char *key = "agency.history_other", *when, *when_iso;
		if (!json_is_object(e) || event == NULL)
			continue;
		for (size_t k = 0; k < sizeof(history_events) / sizeof(history_events[0]); k++) {
			if (strcmp(event, history_events[k].event) == 0) {
				key = history_events[k].key;
				if (side == NULL)
					side = history_events[k].side;
				break;
			}
		}
		if (reason == NULL && refusal != NULL && strcmp(event, "client_refused") == 0)
			reason = refusal;
		if (strcmp(event, "client_refused") == 0)
			refusal = NULL; /* only the newest refusal */
		page_taipei_time(req, json_integer_value(json_object_get(e, "at")), &when,
		                 &when_iso);
		row = json_pack("{s:s, s:s, s:s, s:s}", "when", when, "when_iso", when_iso, "what",
		                page_text(app, req, key), "who",
		                page_text(app, req,
		                          side != NULL && strcmp(side, AGENCY_BY_AGENCY) == 0
		                              ? "agency.by_agency"
		                              : "agency.by_city"));
		if (reason != NULL && reason[0] != '\0')
			json_object_set_new(row, "reason", json_string(reason));
		json_array_append_new(rows, row);
	}
	return rows;
}

static json_t *
uris_text(json_t *uris)
{
	json_t *a = json_array(), *v;
	size_t i;

	json_array_foreach(uris, i, v)
	{
		if (json_is_string(v))
			json_array_append(a, v);
	}
	return a;
}

/* The fields asked for: [{label, scope, required, reason, approved}]. */
static json_t *
fields_rows(struct isso_app *app, struct http_req *req, const struct store_client *c)
{
	json_t *fields = json_object_get(agency_app_of(c), "fields");
	json_t *rows = json_array();

	for (unsigned i = 0; i < claim_scopes_count; i++) {
		json_t *f = json_object_get(fields, claim_scopes[i].scope);
		if (!json_is_object(f))
			continue;
		json_array_append_new(
		    rows, json_pack("{s:s, s:s, s:s, s:s, s:b}", "label",
		                    page_text(app, req, claim_scopes[i].label), "scope",
		                    claim_scopes[i].scope, "need",
		                    page_text(app, req,
		                              json_is_true(json_object_get(f, "required"))
		                                  ? "agency.field_required"
		                                  : "agency.field_optional"),
		                    "reason", json_string_value(json_object_get(f, "reason")) ?: "",
		                    "approved",
		                    c->status == CLIENT_APPROVED &&
		                        scope_has(c->scope, claim_scopes[i].scope)));
	}
	return rows;
}

static json_t *
service_json(struct isso_app *app, struct http_req *req, const struct store_client *c)
{
	json_t *a = agency_app_of(c);
	const char *state = agency_app_state(c);
	json_t *o = json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "client_id", c->client_id,
	    "name", c->name, "purpose", c->purpose ?: "", "notice_text",
	    json_string_value(json_object_get(a, "notice")) ?: "", "contacts",
	    json_string_value(json_object_get(a, "contacts")) ?: "", "state", state, "state_text",
	    page_text(app, req, state_key(state)), "redirect_uris", uris_text(c->redirect_uris),
	    "logout_uris", uris_text(c->post_logout_redirect_uris), "fields",
	    fields_rows(app, req, c), "auth_method", c->auth_method);
	const char *refusal = json_string_value(json_object_get(a, "refusal"));

	if (strcmp(state, "refused") == 0 && refusal != NULL)
		json_object_set_new(o, "refusal", json_string(refusal));
	if (strcmp(state, "approved") == 0)
		json_object_set_new(o, "is_approved", json_true());
	if (strcmp(state, "suspended") == 0) {
		const char *reason = json_string_value(json_object_get(a, "suspension"));
		json_object_set_new(o, "is_suspended", json_true());
		if (strcmp(agency_app_suspended_by(c), AGENCY_BY_AGENCY) == 0)
			json_object_set_new(o, "suspended_by_agency", json_true());
		else
			json_object_set_new(o, "suspended_by_city", json_true());
		if (reason != NULL)
			json_object_set_new(o, "suspension", json_string(reason));
	}
	if (c->secret_hash != NULL)
		json_object_set_new(o, "has_secret", json_true());
	if (page_other_lang(req, c->name) != NULL)
		json_object_set_new(o, "name_lang", json_string(page_other_lang(req, c->name)));
	return o;
}

/* ---- /agency ---- */

struct owned_ctx {
	struct isso_app *app;
	struct http_req *req;
	json_t *orgs;
	json_t *list;
};

static int
owned_one(const struct store_client *c, void *arg)
{
	struct owned_ctx *x = arg;
	const char *ubn = json_string_value(json_object_get(agency_app_of(c), "ubn"));

	if (ubn != NULL && orgs_have(x->orgs, ubn) && json_array_size(x->list) < SERVICES_SHOWN)
		json_array_append_new(x->list, service_json(x->app, x->req, c));
	return 0;
}

/* Counts (in list, as nulls) the services of orgs, without a limit. */
static int
owned_one_count(const struct store_client *c, void *arg)
{
	struct owned_ctx *x = arg;

	if (orgs_have(x->orgs, json_string_value(json_object_get(agency_app_of(c), "ubn"))))
		json_array_append_new(x->list, json_null());
	return 0;
}

static void
agency_home(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	json_t *session = high_session(app, req, "/agency"), *orgs, *page;
	const char *done = http_query(req, "done");
	struct owned_ctx x;

	if (session == NULL)
		return;
	orgs = staff_orgs(app, req, json_string_value(json_object_get(session, "uuid")));
	if (orgs == NULL)
		goto out;
	if (json_array_size(orgs) == 0) {
		page_error(app, req, 403, "agency.not_staff_title", "agency.not_staff", "/");
		json_decref(orgs);
		goto out;
	}
	x = (struct owned_ctx){app, req, orgs, json_array()};
	if (store_client_list(app->store, owned_one, &x) < 0) {
		json_decref(x.list);
		json_decref(orgs);
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
	page = json_pack("{s:o, s:o, s:b}", "orgs", orgs, "services", x.list, "has_services",
	                 json_array_size(x.list) > 0);
	if (done != NULL && strcmp(done, "deleted") == 0)
		json_object_set_new(page, "notice",
		                    json_string(page_text(app, req, "agency.deleted")));
	page_render(app, req, 200, "agency", "agency.title", page);
out:
	json_decref(session);
}

/* ---- /agency/apply ---- */

/* Redirect URIs: absolute, no fragment, no credentials; https, or http
 * on a loopback host (development, RFC 8252 §7.3). */
static bool
uri_ok(const char *u)
{
	static const char *const loopback[] = {"127.0.0.1", "localhost", "[::1]", NULL};
	const char *host, *end;
	size_t n = strlen(u);

	if (n == 0 || n > URI_MAX || strchr(u, '#') != NULL || strchr(u, ' ') != NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
			return false;
	}
	if (strncmp(u, "https://", 8) == 0)
		host = u + 8;
	else if (strncmp(u, "http://", 7) == 0)
		host = u + 7;
	else
		return false;
	end = host + strcspn(host, "/?");
	if (end == host || memchr(host, '@', (size_t)(end - host)) != NULL)
		return false;
	if (u[4] == 's')
		return true;
	for (const char *const *l = loopback; *l != NULL; l++) {
		size_t ln = strlen(*l);
		if ((size_t)(end - host) >= ln && strncmp(host, *l, ln) == 0 &&
		    (host + ln == end || host[ln] == ':'))
			return true;
	}
	return false;
}

/* A textarea of URIs, one a line: a JSON array; NULL when one is bad or
 * there are too many. */
static json_t *
uris_parse(const char *text)
{
	json_t *a = json_array();

	for (const char *p = text != NULL ? text : ""; *p != '\0';) {
		size_t n = strcspn(p, "\r\n");
		char u[URI_MAX + 1];
		size_t s = 0, e = n;
		while (s < e && (p[s] == ' ' || p[s] == '\t'))
			s++;
		while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
			e--;
		if (e > s) {
			if (e - s > URI_MAX || json_array_size(a) >= URIS_MAX)
				goto bad;
			memcpy(u, p + s, e - s);
			u[e - s] = '\0';
			if (!uri_ok(u))
				goto bad;
			json_array_append_new(a, json_string(u));
		}
		p += n;
		while (*p == '\r' || *p == '\n')
			p++;
	}
	return a;
bad:
	json_decref(a);
	return NULL;
}

/* Text of at most max bytes, valid UTF-8, without control characters
 * other than line breaks and tabs. */
static bool
text_ok(const char *s, size_t max, bool required)
{
	json_t *j;

	if (s == NULL || s[0] == '\0')
		return !required;
	if (strlen(s) > max)
		return false;
	j = json_string(s); /* NULL when not UTF-8 */
	if (j == NULL)
		return false;
	json_decref(j);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 && *p != '\n' && *p != '\r' && *p != '\t')
			return false;
		if (*p == 0x7f)
			return false;
	}
	return true;
}

/* The form's field choices: for each claim scope a "need" (no, required,
 * optional) and a reason. */
static json_t *
field_choices(struct isso_app *app, struct http_req *req, json_t *asked)
{
	json_t *rows = json_array();

	for (unsigned i = 0; i < claim_scopes_count; i++) {
		const char *w = claim_scopes[i].scope;
		json_t *f = json_object_get(asked, w);
		const char *need = !json_is_object(f)                             ? "no"
		                   : json_is_true(json_object_get(f, "required")) ? "required"
		                                                                  : "optional";
		json_array_append_new(
		    rows,
		    json_pack("{s:s, s:s, s:s, s:b, s:b, s:b}", "scope", w, "label",
		              page_text(app, req, claim_scopes[i].label), "reason",
		              json_string_value(json_object_get(f, "reason")) ?: "", "no",
		              strcmp(need, "no") == 0, "required", strcmp(need, "required") == 0,
		              "optional", strcmp(need, "optional") == 0));
	}
	return rows;
}

static const char *const apply_order[] = {
    "ubn",    "name",        "purpose", "notice", "redirect_uris", "logout_uris", "contacts",
    "fields", "auth_method", "jwks",    NULL,
};

static void
apply_page(struct isso_app *app, struct http_req *req, json_t *orgs, json_t *echo, json_t *errors)
{
	json_t *page = echo != NULL ? json_incref(echo) : json_object();
	size_t i;
	json_t *o;
	const char *ubn = json_string_value(json_object_get(page, "ubn"));

	json_array_foreach(orgs, i, o)
	{
		if (ubn != NULL && strcmp(json_string_value(json_object_get(o, "ubn")), ubn) == 0)
			json_object_set_new(o, "selected", json_true());
	}
	json_object_set(page, "orgs", orgs);
	json_object_set_new(page, "one_org", json_boolean(json_array_size(orgs) == 1));
	if (json_array_size(orgs) == 1)
		json_object_set(page, "only_org", json_array_get(orgs, 0));
	json_object_set_new(page, "csrf", json_string(csrf_token(req, &app->secrets, AGENCY_CSRF)));
	json_object_set_new(page, "field_choices",
	                    field_choices(app, req, json_object_get(page, "asked")));
	if (json_object_get(page, "private_key_jwt") == NULL)
		json_object_set_new(page, "secret_basic", json_true());
	if (json_object_get(page, "form_action") == NULL)
		json_object_set_new(page, "form_action", json_string("/agency/apply"));
	if (errors != NULL && json_object_size(errors) > 0)
		page_form_error(app, req, page, "agency.apply_errors", errors, apply_order);
	page_render(app, req, errors != NULL && json_object_size(errors) > 0 ? 400 : 200,
	            "agency-apply",
	            json_is_true(json_object_get(page, "editing")) ? "agency.edit_title"
	                                                           : "agency.apply_title",
	            page);
}

/* Reads and checks the application form: each field in error goes into
 * errors ({field: message key}), what was typed into echo (for the form
 * shown again). *application_r gets the application object, and
 * *redirects_r, *logouts_r, *jwks_r the parsed URIs and JWK set (NULL when
 * bad or absent); the caller owns (decrefs) all four. */
static void
apply_read(struct http_req *req, json_t *orgs, json_t *echo, json_t *errors, json_t **application_r,
           json_t **redirects_r, json_t **logouts_r, json_t **jwks_r)
{
	const char *ubn = http_form(req, "ubn");
	const char *name = http_form(req, "name"), *purpose = http_form(req, "purpose");
	const char *notice = http_form(req, "notice"), *contacts = http_form(req, "contacts");
	const char *redirects = http_form(req, "redirect_uris");
	const char *logouts = http_form(req, "logout_uris");
	const char *method = http_form(req, "auth_method");
	const char *jwks_text = http_form(req, "jwks"), *jwks_uri = http_form(req, "jwks_uri");
	json_t *asked = json_object(), *a;
	const char *why = NULL;

	*application_r = *redirects_r = *logouts_r = *jwks_r = NULL;
	if (json_array_size(orgs) == 1 && (ubn == NULL || ubn[0] == '\0'))
		ubn = json_string_value(json_object_get(json_array_get(orgs, 0), "ubn"));
	json_object_set_new(echo, "ubn", json_string(text_ok(ubn, 8, true) ? ubn : ""));
	if (ubn == NULL || !orgs_have(orgs, ubn))
		json_object_set_new(errors, "ubn", json_string("agency.err_ubn"));
#define ECHO(k, v, max)                                                                            \
	json_object_set_new(echo, k, json_string(text_ok(v, max, false) && (v) != NULL ? (v) : ""))
	ECHO("name", name, NAME_MAX_BYTES);
	ECHO("purpose", purpose, PURPOSE_MAX);
	ECHO("notice", notice, AGENCY_NOTICE_MAX);
	ECHO("contacts", contacts, CONTACTS_MAX);
	ECHO("redirect_uris", redirects, URIS_MAX * (URI_MAX + 2));
	ECHO("logout_uris", logouts, URIS_MAX * (URI_MAX + 2));
	ECHO("jwks", jwks_text, JWKS_MAX);
	ECHO("jwks_uri", jwks_uri, URI_MAX);
#undef ECHO
	if (!text_ok(name, NAME_MAX_BYTES, true) || strchr(name, '\n') != NULL)
		json_object_set_new(errors, "name", json_string("agency.err_name"));
	if (!text_ok(purpose, PURPOSE_MAX, true))
		json_object_set_new(errors, "purpose", json_string("agency.err_purpose"));
	if (!text_ok(notice, AGENCY_NOTICE_MAX, true))
		json_object_set_new(errors, "notice", json_string("agency.err_notice"));
	if (!text_ok(contacts, CONTACTS_MAX, true))
		json_object_set_new(errors, "contacts", json_string("agency.err_contacts"));
	*redirects_r = uris_parse(redirects);
	if (*redirects_r == NULL || json_array_size(*redirects_r) == 0)
		json_object_set_new(errors, "redirect_uris",
		                    json_string("agency.err_redirect_uris"));
	*logouts_r = uris_parse(logouts);
	if (*logouts_r == NULL)
		json_object_set_new(errors, "logout_uris", json_string("agency.err_logout_uris"));

	/* The fields: each one asked for needs a reason. */
	for (unsigned i = 0; i < claim_scopes_count; i++) {
		char key[64];
		const char *need, *reason;
		snprintf(key, sizeof(key), "need_%s", claim_scopes[i].scope);
		need = http_form(req, key);
		snprintf(key, sizeof(key), "reason_%s", claim_scopes[i].scope);
		reason = http_form(req, key);
		if (need == NULL || strcmp(need, "no") == 0)
			continue;
		if (strcmp(need, "required") != 0 && strcmp(need, "optional") != 0) {
			json_object_set_new(errors, "fields", json_string("agency.err_fields"));
			continue;
		}
		json_object_set_new(
		    asked, claim_scopes[i].scope,
		    json_pack("{s:b, s:s}", "required", strcmp(need, "required") == 0, "reason",
		              text_ok(reason, AGENCY_REASON_MAX, false) && reason != NULL ? reason
		                                                                          : ""));
		if (!text_ok(reason, AGENCY_REASON_MAX, true))
			json_object_set_new(errors, "fields", json_string("agency.err_reason"));
	}
	json_object_set(echo, "asked", asked);

	/* How the service authenticates. */
	if (method != NULL && strcmp(method, "private_key_jwt") == 0) {
		json_object_set_new(echo, "private_key_jwt", json_true());
		if (jwks_text != NULL && jwks_text[0] != '\0') {
			json_error_t jerr;
			*jwks_r =
			    strlen(jwks_text) <= JWKS_MAX ? json_loads(jwks_text, 0, &jerr) : NULL;
			if (jose_jwks_check(*jwks_r, &why) < 0) {
				json_decref(*jwks_r);
				*jwks_r = NULL;
				json_object_set_new(errors, "jwks", json_string("agency.err_jwks"));
			}
		} else if (jwks_uri == NULL || jwks_uri[0] == '\0' || !uri_ok(jwks_uri) ||
		           outbound_check_url(jwks_uri, &why) < 0) {
			json_object_set_new(errors, "jwks", json_string("agency.err_jwks"));
		}
	} else if (method != NULL && strcmp(method, "client_secret_basic") != 0) {
		json_object_set_new(errors, "auth_method", json_string("agency.err_auth_method"));
	}
	a = json_pack("{s:s, s:s, s:s, s:O, s:s}", "ubn", ubn ?: "", "notice", notice ?: "",
	              "contacts", contacts ?: "", "fields", asked, "state", "pending");
	*application_r = a;
	json_decref(asked);
}

static void
apply(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	json_t *session = high_session(app, req, "/agency/apply"), *orgs = NULL;
	json_t *echo = NULL, *errors = NULL, *application = NULL, *redirects = NULL;
	json_t *logouts = NULL, *jwks = NULL, *settings = NULL;
	const char *uuid;
	struct store_client c;
	char client_id[44];
	const char *jwks_uri;
	int64_t now = app_now();

	if (session == NULL)
		return;
	uuid = json_string_value(json_object_get(session, "uuid"));
	orgs = staff_orgs(app, req, uuid);
	if (orgs == NULL)
		goto out;
	if (json_array_size(orgs) == 0) {
		page_error(app, req, 403, "agency.not_staff_title", "agency.not_staff", "/");
		goto out;
	}
	if (http_method(req) != HTTP_POST) {
		apply_page(app, req, orgs, NULL, NULL);
		goto out;
	}
	if (!csrf_check(req, &app->secrets, AGENCY_CSRF)) {
		page_error(app, req, 403, "error.title", "error.csrf", "/agency/apply");
		goto out;
	}
	echo = json_object();
	errors = json_object();
	apply_read(req, orgs, echo, errors, &application, &redirects, &logouts, &jwks);
	if (json_object_size(errors) > 0) {
		apply_page(app, req, orgs, echo, errors);
		goto out;
	}
	{
		/* Bounded: one organisation cannot fill the store. */
		json_t *one = json_pack("[{s:O}]", "ubn", json_object_get(application, "ubn"));
		struct owned_ctx x = {app, req, one, json_array()};
		int ret = store_client_list(app->store, owned_one_count, &x);
		size_t held = json_array_size(x.list);
		json_decref(x.list);
		json_decref(one);
		if (ret < 0) {
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           "/agency/apply");
			goto out;
		}
		if (held >= ORG_SERVICES_MAX) {
			page_error(app, req, 429, "agency.too_many_title", "agency.too_many",
			           "/agency");
			goto out;
		}
	}
	json_object_set_new(application, "owner", json_string(uuid));
	settings = json_object();
	json_object_set(settings, AGENCY_APP_KEY, application);
	agency_app_history(settings, "client_applied", uuid, now, NULL);
	secret_token(16, client_id);
	jwks_uri = json_is_true(json_object_get(echo, "private_key_jwt")) && jwks == NULL
	               ? http_form(req, "jwks_uri")
	               : NULL;
	c = (struct store_client){
	    .client_id = client_id,
	    .name = (char *)http_form(req, "name"),
	    .purpose = (char *)http_form(req, "purpose"),
	    .redirect_uris = redirects,
	    .post_logout_redirect_uris = logouts,
	    .scope = "openid",
	    .id_token_alg = "ES256",
	    .auth_method = json_is_true(json_object_get(echo, "private_key_jwt"))
	                       ? "private_key_jwt"
	                       : "client_secret_basic",
	    .jwks_uri = (char *)jwks_uri,
	    .jwks = jwks,
	    .status = CLIENT_PENDING,
	    .created_at = now,
	    .settings = settings,
	};
	if (store_client_add(app->store, &c) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
		           "/agency/apply");
		goto out;
	}
	store_audit_append(app->store, now, "client_applied",
	                   json_pack("{s:s, s:s, s:s}", "client_id", client_id, "by", uuid, "ubn",
	                             json_string_value(json_object_get(application, "ubn"))));
	http_redirect(req, 303,
	              pool_printf(http_pool(req), "/agency/service/%s?done=applied", client_id));
out:
	json_decref(session);
	json_decref(orgs);
	json_decref(echo);
	json_decref(errors);
	json_decref(application);
	json_decref(redirects);
	json_decref(logouts);
	json_decref(jwks);
	json_decref(settings);
}

/* ---- /agency/service/ID ---- */

/* The client named by the path's rest when it is one of orgs'; NULL
 * (and a page sent) otherwise. Another organisation's service and an
 * unknown id read the same. */
static struct store_client *
owned_client(struct isso_app *app, struct http_req *req, json_t *orgs, const char *id)
{
	struct store_client *c = NULL;

	if (store_client_get(app->store, id, &c) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
		           "/agency");
		return NULL;
	}
	if (c == NULL ||
	    !orgs_have(orgs, json_string_value(json_object_get(agency_app_of(c), "ubn")))) {
		store_client_free(c);
		page_error(app, req, 404, "agency.unknown_title", "agency.unknown", "/agency");
		return NULL;
	}
	return c;
}

static void
service_page(struct isso_app *app, struct http_req *req, const struct store_client *c,
             const char *notice_key, const char *secret)
{
	json_t *page = service_json(app, req, c);
	json_t *row = NULL;

	json_object_set_new(page, "csrf", json_string(csrf_token(req, &app->secrets, AGENCY_CSRF)));
	if (store_eph_get(app->store, AGENCY_REVEAL_KIND, c->client_id, app_now(), &row, NULL) ==
	        0 &&
	    row != NULL)
		json_object_set_new(page, "reveal_waiting", json_true());
	json_decref(row);
	json_object_set_new(page, "history", history_rows(app, req, c));
	if (notice_key != NULL)
		json_object_set_new(page, "notice", json_string(page_text(app, req, notice_key)));
	if (secret != NULL)
		json_object_set_new(page, "secret", json_string(secret));
	page_render(app, req, 200, "agency-service", "agency.service_title", page);
}

/* The application form filled in with the client's values. */
static json_t *
edit_echo(const struct store_client *c, const char *path)
{
	json_t *a = agency_app_of(c), *echo, *v;
	struct buf b;
	size_t i;

	echo = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:s}", "ubn",
	                 json_string_value(json_object_get(a, "ubn")) ?: "", "name", c->name,
	                 "purpose", c->purpose ?: "", "notice",
	                 json_string_value(json_object_get(a, "notice")) ?: "", "contacts",
	                 json_string_value(json_object_get(a, "contacts")) ?: "", "asked",
	                 json_is_object(json_object_get(a, "fields")) ? json_object_get(a, "fields")
	                                                              : json_null(),
	                 "form_action", path);
	buf_init(&b, URIS_MAX * (URI_MAX + 2));
	json_array_foreach(c->redirect_uris, i, v)
	{
		(void)buf_addstr(&b, json_string_value(v) ?: "");
		(void)buf_addc(&b, '\n');
	}
	json_object_set_new(echo, "redirect_uris", json_string(b.data ?: ""));
	buf_reset(&b);
	json_array_foreach(c->post_logout_redirect_uris, i, v)
	{
		(void)buf_addstr(&b, json_string_value(v) ?: "");
		(void)buf_addc(&b, '\n');
	}
	json_object_set_new(echo, "logout_uris", json_string(b.data ?: ""));
	buf_free(&b);
	if (strcmp(c->auth_method, "private_key_jwt") == 0) {
		json_object_set_new(echo, "private_key_jwt", json_true());
		if (c->jwks != NULL) {
			char *text = json_dumps(c->jwks, JSON_COMPACT);
			json_object_set_new(echo, "jwks", json_string(text ?: ""));
			free(text);
		}
		if (c->jwks_uri != NULL)
			json_object_set_new(echo, "jwks_uri", json_string(c->jwks_uri));
	}
	json_object_set_new(echo, "editing", json_true());
	return echo;
}

static bool
same_text(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

/* GET|POST /agency/service/ID/edit: a change of anything citizens see or
 * the review weighed (name, purpose, notice, URIs, fields, how the service
 * authenticates) sends the service back to review: it stays pending, and
 * logins are refused, until a city administrator approves it again. A
 * change of the contacts alone is saved as it is. */
static void
service_edit(struct isso_app *app, struct http_req *req, const struct store_client *c,
             const char *uuid, const char *path)
{
	const char *ubn = json_string_value(json_object_get(agency_app_of(c), "ubn"));
	const char *edit_path = pool_printf(http_pool(req), "%s/edit", path);
	json_t *orgs = json_pack("[{s:s, s:s}]", "ubn", ubn ?: "", "name", "");
	json_t *echo = NULL, *errors = NULL, *application = NULL, *redirects = NULL;
	json_t *logouts = NULL, *jwks = NULL, *settings = NULL, *a, *changed = json_array();
	struct store_client n;
	const char *method, *jwks_uri;
	bool found = false, review;
	int64_t now = app_now();
	int status;

	{
		struct store_org *org = NULL;
		if (ubn != NULL && store_org_get(app->store, ubn, &org) == 0 && org != NULL)
			json_object_set_new(json_array_get(orgs, 0), "name",
			                    json_string(org->name));
		store_org_free(org);
	}
	if (c->status == CLIENT_SUSPENDED) {
		page_error(app, req, 409, "agency.suspended_title", "agency.suspended_no_edit",
		           path);
		goto out;
	}
	if (http_method(req) != HTTP_POST) {
		echo = edit_echo(c, edit_path);
		apply_page(app, req, orgs, echo, NULL);
		goto out;
	}
	if (!csrf_check(req, &app->secrets, AGENCY_CSRF)) {
		page_error(app, req, 403, "error.title", "error.csrf", edit_path);
		goto out;
	}
	echo = json_pack("{s:s, s:b}", "form_action", edit_path, "editing", 1);
	errors = json_object();
	apply_read(req, orgs, echo, errors, &application, &redirects, &logouts, &jwks);
	if (json_object_size(errors) > 0) {
		apply_page(app, req, orgs, echo, errors);
		goto out;
	}
	method = json_is_true(json_object_get(echo, "private_key_jwt")) ? "private_key_jwt"
	                                                                : "client_secret_basic";
	jwks_uri = strcmp(method, "private_key_jwt") == 0 && jwks == NULL
	               ? http_form(req, "jwks_uri")
	               : NULL;
	a = agency_app_of(c);
#define CHANGED(cond, what)                                                                        \
	do {                                                                                       \
		if (cond)                                                                          \
			json_array_append_new(changed, json_string(what));                         \
	} while (0)
	CHANGED(!same_text(c->name, http_form(req, "name")), "name");
	CHANGED(!same_text(c->purpose, http_form(req, "purpose")), "purpose");
	CHANGED(
	    !same_text(json_string_value(json_object_get(a, "notice")), http_form(req, "notice")),
	    "notice");
	CHANGED(!json_equal(c->redirect_uris, redirects), "redirect_uris");
	CHANGED(!json_equal(c->post_logout_redirect_uris, logouts), "logout_uris");
	CHANGED(!json_equal(json_object_get(a, "fields"), json_object_get(application, "fields")),
	        "fields");
	CHANGED(strcmp(c->auth_method, method) != 0 || !same_text(c->jwks_uri, jwks_uri) ||
	            (jwks != NULL) != (c->jwks != NULL) ||
	            (jwks != NULL && !json_equal(jwks, c->jwks)),
	        "auth_method");
	review = json_array_size(changed) > 0;
	CHANGED(!same_text(json_string_value(json_object_get(a, "contacts")),
	                   http_form(req, "contacts")),
	        "contacts");
#undef CHANGED
	if (json_array_size(changed) == 0) {
		http_redirect(req, 303, path);
		goto out;
	}
	settings = json_deep_copy(c->settings);
	a = json_object_get(settings, AGENCY_APP_KEY);
	json_object_set(a, "notice", json_object_get(application, "notice"));
	json_object_set(a, "contacts", json_object_get(application, "contacts"));
	json_object_set(a, "fields", json_object_get(application, "fields"));
	status = c->status;
	if (review) {
		json_object_set_new(a, "state", json_string("pending"));
		json_object_del(a, "refusal");
		status = CLIENT_PENDING;
	}
	agency_app_history(settings, "client_edited", uuid, now, NULL);
	n = *c;
	n.name = (char *)http_form(req, "name");
	n.purpose = (char *)http_form(req, "purpose");
	n.redirect_uris = redirects;
	n.post_logout_redirect_uris = logouts;
	n.auth_method = (char *)method;
	n.jwks_uri = (char *)jwks_uri;
	n.jwks = jwks;
	n.settings = settings;
	n.status = status;
	/* A service that signs with its key has no secret; one that turns to
	 * a secret gets it at the next approval. */
	if (strcmp(method, "private_key_jwt") == 0)
		n.secret_hash = NULL;
	if (store_client_update(app->store, &n, c->status, &found) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
		           edit_path);
		goto out;
	}
	if (!found) {
		page_error(app, req, 409, "admin.conflict_title", "agency.edit_conflict", path);
		goto out;
	}
	store_audit_append(app->store, now, "client_edited",
	                   json_pack("{s:s, s:s, s:O, s:b}", "client_id", c->client_id, "by", uuid,
	                             "changed", changed, "review", review));
	http_redirect(req, 303,
	              pool_printf(http_pool(req), "%s?done=%s", path, review ? "edited" : "saved"));
out:
	json_decref(orgs);
	json_decref(echo);
	json_decref(errors);
	json_decref(application);
	json_decref(redirects);
	json_decref(logouts);
	json_decref(jwks);
	json_decref(settings);
	json_decref(changed);
}

/* The answer to a decision on a service (agency_app_*): 409 with
 * conflict_key (back to conflict_back) when another change came first or
 * it no longer applies, 503 when the store failed (back to back), else a
 * redirect to done. */
static void
decision_answer(struct isso_app *app, struct http_req *req, int ret, const char *conflict_key,
                const char *conflict_back, const char *back, const char *done)
{
	if (ret == ISSO_ERR_INVALID || ret == ISSO_ERR_CONFLICT)
		page_error(app, req, 409, "admin.conflict_title", conflict_key, conflict_back);
	else if (ret < 0)
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", back);
	else
		http_redirect(req, 303, done);
}

static void
service(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *rest = http_path_rest(req);
	size_t n = strlen(rest);
	bool edit = n > 5 && strcmp(rest + n - 5, "/edit") == 0;
	const char *id = edit ? pool_printf(http_pool(req), "%.*s", (int)(n - 5), rest) : rest;
	const char *path = pool_printf(http_pool(req), "/agency/service/%.64s", id);
	json_t *session = NULL, *orgs = NULL;
	struct store_client *c = NULL;
	const char *uuid, *action, *done = http_query(req, "done"), *notice = NULL;
	char *secret = NULL;
	int64_t now = app_now();

	if (!id_ok(id)) {
		page_error(app, req, 404, "agency.unknown_title", "agency.unknown", "/agency");
		return;
	}
	session =
	    high_session(app, req, edit ? pool_printf(http_pool(req), "%s/edit", path) : path);
	if (session == NULL)
		return;
	uuid = json_string_value(json_object_get(session, "uuid"));
	orgs = staff_orgs(app, req, uuid);
	if (orgs == NULL)
		goto out;
	if (json_array_size(orgs) == 0) {
		page_error(app, req, 403, "agency.not_staff_title", "agency.not_staff", "/");
		goto out;
	}
	c = owned_client(app, req, orgs, id);
	if (c == NULL)
		goto out;
	if (edit) {
		service_edit(app, req, c, uuid, path);
		goto out;
	}
	if (http_method(req) != HTTP_POST) {
		if (done != NULL && strcmp(done, "applied") == 0)
			notice = "agency.applied";
		else if (done != NULL && strcmp(done, "edited") == 0)
			notice = "agency.edited";
		else if (done != NULL && strcmp(done, "saved") == 0)
			notice = "agency.saved";
		else if (done != NULL && strcmp(done, "suspended") == 0)
			notice = "agency.suspended";
		else if (done != NULL && strcmp(done, "resumed") == 0)
			notice = "agency.resumed";
		service_page(app, req, c, notice, NULL);
		goto out;
	}
	if (!csrf_check(req, &app->secrets, AGENCY_CSRF)) {
		page_error(app, req, 403, "error.title", "error.csrf", path);
		goto out;
	}
	action = http_form(req, "action");
	if (action == NULL)
		action = "";
	if (strcmp(action, "reveal") == 0) {
		if (agency_app_reveal(app, c->client_id, &secret) < 0) {
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           path);
			goto out;
		}
		if (secret != NULL)
			store_audit_append(
			    app->store, now, "client_secret_revealed",
			    json_pack("{s:s, s:s}", "client_id", c->client_id, "by", uuid));
		service_page(app, req, c, secret != NULL ? NULL : "agency.reveal_gone", secret);
	} else if (strcmp(action, "rotate") == 0 && c->secret_hash != NULL &&
	           c->status == CLIENT_APPROVED) {
		char fresh[44], hash[65];
		secret_token(32, fresh);
		if (store_client_set_secret(app->store, c->client_id,
		                            secret_sha256_hex(fresh, strlen(fresh), hash)) < 0) {
			explicit_bzero(fresh, sizeof(fresh));
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           path);
			goto out;
		}
		/* An older secret still waiting is void now. */
		(void)store_eph_delete(app->store, AGENCY_REVEAL_KIND, c->client_id);
		store_audit_append(app->store, now, "client_secret_rotated",
		                   json_pack("{s:s, s:s}", "client_id", c->client_id, "by", uuid));
		service_page(app, req, c, "agency.rotated", fresh);
		explicit_bzero(fresh, sizeof(fresh));
	} else if (strcmp(action, "suspend") == 0 && c->status == CLIENT_APPROVED) {
		const char *why = NULL;
		int ret = agency_app_suspend(app, c->client_id, AGENCY_BY_AGENCY, NULL, uuid, &why);
		decision_answer(app, req, ret, "admin.conflict_service", path, path,
		                pool_printf(http_pool(req), "%s?done=suspended", path));
	} else if (strcmp(action, "resume") == 0 && c->status == CLIENT_SUSPENDED) {
		const char *why = NULL;
		int ret = agency_app_resume(app, c->client_id, AGENCY_BY_AGENCY, uuid, &why);
		if (ret == ISSO_ERR_DENIED) {
			page_error(app, req, 403, "agency.suspended_title", "agency.resume_city",
			           path);
			goto out;
		}
		decision_answer(app, req, ret, "admin.conflict_service", path, path,
		                pool_printf(http_pool(req), "%s?done=resumed", path));
	} else if (strcmp(action, "delete") == 0 && http_form(req, "confirm") != NULL) {
		bool found = false;
		if (agency_app_delete(app, c->client_id, uuid, &found) < 0) {
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           path);
			goto out;
		}
		http_redirect(req, 303, "/agency?done=deleted");
	} else {
		page_error(app, req, 400, "error.bad_request", "error.bad_request.message", path);
	}
out:
	xfree_secret(secret);
	store_client_free(c);
	json_decref(orgs);
	json_decref(session);
}

/* ---- /admin/applications ---- */

struct pending_ctx {
	struct isso_app *app;
	struct http_req *req;
	json_t *list;      /* applications waiting for review */
	json_t *suspended; /* suspended services */
};

static int
pending_one(const struct store_client *c, void *arg)
{
	struct pending_ctx *x = arg;
	const char *ubn = json_string_value(json_object_get(agency_app_of(c), "ubn"));
	json_t *o, *into;

	if (c->status == CLIENT_PENDING && strcmp(agency_app_state(c), "pending") == 0)
		into = x->list;
	else if (c->status == CLIENT_SUSPENDED)
		into = x->suspended;
	else
		return 0;
	if (json_array_size(into) >= SERVICES_SHOWN)
		return 0;
	o = service_json(x->app, x->req, c);
	json_object_set_new(o, "ubn", json_string(ubn ?: ""));
	json_array_append_new(into, o);
	return 0;
}

/* The session of a city administrator at level high; NULL (and a page
 * sent) otherwise. */
static json_t *
admin_session(struct isso_app *app, struct http_req *req, const char *path)
{
	json_t *session = high_session(app, req, path);
	int ret;

	if (session == NULL)
		return NULL;
	if (!is_city_admin(app, json_string_value(json_object_get(session, "uuid")), &ret)) {
		if (ret < 0)
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           NULL);
		else
			page_error(app, req, 403, "admin.not_admin_title", "admin.not_admin", "/");
		json_decref(session);
		return NULL;
	}
	return session;
}

static void
admin_list(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	json_t *session = admin_session(app, req, "/admin/applications"), *page;
	const char *done = http_query(req, "done");
	struct pending_ctx x;

	if (session == NULL)
		return;
	x = (struct pending_ctx){app, req, json_array(), json_array()};
	if (store_client_list(app->store, pending_one, &x) < 0) {
		json_decref(x.list);
		json_decref(x.suspended);
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
	page = json_pack("{s:o, s:b, s:o, s:b}", "applications", x.list, "has_applications",
	                 json_array_size(x.list) > 0, "suspended", x.suspended, "has_suspended",
	                 json_array_size(x.suspended) > 0);
	if (done != NULL && strcmp(done, "approved") == 0)
		json_object_set_new(page, "notice",
		                    json_string(page_text(app, req, "admin.approved")));
	else if (done != NULL && strcmp(done, "refused") == 0)
		json_object_set_new(page, "notice",
		                    json_string(page_text(app, req, "admin.refused")));
	page_render(app, req, 200, "admin-applications", "admin.title", page);
out:
	json_decref(session);
}

static void
review_page(struct isso_app *app, struct http_req *req, const struct store_client *c,
            json_t *errors, const char *notice_key)
{
	json_t *page = service_json(app, req, c);
	struct store_org *org = NULL;
	const char *ubn = json_string_value(json_object_get(agency_app_of(c), "ubn"));
	static const char *const order[] = {"reason", "suspension", NULL};

	if (ubn != NULL && store_org_get(app->store, ubn, &org) == 0 && org != NULL)
		json_object_set_new(page, "org",
		                    json_pack("{s:s, s:s}", "ubn", org->ubn, "name", org->name));
	store_org_free(org);
	json_object_set_new(page, "csrf", json_string(csrf_token(req, &app->secrets, ADMIN_CSRF)));
	json_object_set_new(page, "reviewable", json_boolean(agency_app_decidable(c)));
	/* The city suspends an approved service, and takes over a
	 * suspension the agency made. */
	json_object_set_new(
	    page, "suspendable",
	    json_boolean(c->status == CLIENT_APPROVED ||
	                 (agency_app_resumable(c) &&
	                  strcmp(agency_app_suspended_by(c), AGENCY_BY_AGENCY) == 0)));
	json_object_set_new(page, "resumable", json_boolean(agency_app_resumable(c)));
	json_object_set_new(page, "history", history_rows(app, req, c));
	if (notice_key != NULL)
		json_object_set_new(page, "notice", json_string(page_text(app, req, notice_key)));
	if (errors != NULL)
		page_form_error(app, req, page, NULL, errors, order);
	page_render(app, req, errors != NULL ? 400 : 200, "admin-application", "admin.review_title",
	            page);
}

static void
admin_review(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *id = http_path_rest(req);
	const char *path = pool_printf(http_pool(req), "/admin/applications/%.64s", id);
	json_t *session;
	struct store_client *c = NULL;
	const char *uuid, *decision, *why = NULL;
	int ret;

	if (!id_ok(id)) {
		page_error(app, req, 404, "agency.unknown_title", "agency.unknown",
		           "/admin/applications");
		return;
	}
	session = admin_session(app, req, path);
	if (session == NULL)
		return;
	uuid = json_string_value(json_object_get(session, "uuid"));
	if (id == NULL || id[0] == '\0' || strlen(id) > CLIENT_ID_MAX ||
	    store_client_get(app->store, id, &c) < 0 || c == NULL) {
		page_error(app, req, 404, "agency.unknown_title", "agency.unknown",
		           "/admin/applications");
		goto out;
	}
	/* Nobody decides on their own application, nor on one of an
	 * organisation they belong to (a colleague's, or their own edit). */
	if (same_text(json_string_value(json_object_get(agency_app_of(c), "owner")), uuid)) {
		page_error(app, req, 403, "admin.own_title", "admin.own", "/admin/applications");
		goto out;
	}
	{
		bool member = false;
		if (agency_app_member(app, c, uuid, &member) < 0) {
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           NULL);
			goto out;
		}
		if (member) {
			page_error(app, req, 403, "admin.own_title", "admin.own_org",
			           "/admin/applications");
			goto out;
		}
	}
	if (http_method(req) != HTTP_POST) {
		const char *done = http_query(req, "done"), *notice = NULL;
		if (done != NULL && strcmp(done, "suspended") == 0)
			notice = "admin.suspended";
		else if (done != NULL && strcmp(done, "resumed") == 0)
			notice = "admin.resumed";
		review_page(app, req, c, NULL, notice);
		goto out;
	}
	if (!csrf_check(req, &app->secrets, ADMIN_CSRF)) {
		page_error(app, req, 403, "error.title", "error.csrf", path);
		goto out;
	}
	decision = http_form(req, "decision");
	if (decision != NULL && strcmp(decision, "approve") == 0) {
		/* Unticked fields are dropped. */
		char drop[512] = "";
		for (unsigned i = 0; i < claim_scopes_count; i++) {
			char key[64];
			snprintf(key, sizeof(key), "keep_%s", claim_scopes[i].scope);
			if (http_form(req, key) != NULL)
				continue;
			if (drop[0] != '\0')
				strncat(drop, " ", sizeof(drop) - strlen(drop) - 1);
			strncat(drop, claim_scopes[i].scope, sizeof(drop) - strlen(drop) - 1);
		}
		ret = agency_app_approve(app, c->client_id, drop, uuid, &why);
		decision_answer(app, req, ret, "admin.conflict", "/admin/applications", path,
		                "/admin/applications?done=approved");
	} else if (decision != NULL && strcmp(decision, "refuse") == 0) {
		const char *reason = http_form(req, "reason");
		if (!text_ok(reason, AGENCY_REASON_MAX, true)) {
			json_t *errors = json_pack("{s:s}", "reason", "admin.err_reason");
			review_page(app, req, c, errors, NULL);
			json_decref(errors);
			goto out;
		}
		ret = agency_app_refuse(app, c->client_id, reason, uuid, &why);
		decision_answer(app, req, ret, "admin.conflict", "/admin/applications", path,
		                "/admin/applications?done=refused");
	} else if (decision != NULL && strcmp(decision, "suspend") == 0) {
		const char *reason = http_form(req, "suspension");
		if (!text_ok(reason, AGENCY_REASON_MAX, true)) {
			json_t *errors = json_pack("{s:s}", "suspension", "admin.err_suspension");
			review_page(app, req, c, errors, NULL);
			json_decref(errors);
			goto out;
		}
		ret = agency_app_suspend(app, c->client_id, AGENCY_BY_CITY, reason, uuid, &why);
		decision_answer(app, req, ret, "admin.conflict_service", path, path,
		                pool_printf(http_pool(req), "%s?done=suspended", path));
	} else if (decision != NULL && strcmp(decision, "resume") == 0) {
		ret = agency_app_resume(app, c->client_id, AGENCY_BY_CITY, uuid, &why);
		decision_answer(app, req, ret, "admin.conflict_service", path, path,
		                pool_printf(http_pool(req), "%s?done=resumed", path));
	} else {
		page_error(app, req, 400, "error.bad_request", "error.bad_request.message", path);
	}
out:
	store_client_free(c);
	json_decref(session);
}

void
agency_routes(struct isso_app *app, struct http_server *srv)
{
	http_route(srv, HTTP_GET, "/agency", agency_home, app);
	http_route(srv, HTTP_GET | HTTP_POST, "/agency/apply", apply, app);
	http_route(srv, HTTP_GET | HTTP_POST, "/agency/service/", service, app);
	http_route(srv, HTTP_GET, "/admin/applications", admin_list, app);
	http_route(srv, HTTP_GET | HTTP_POST, "/admin/applications/", admin_review, app);
}
