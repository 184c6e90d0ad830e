/* Method choice, consent and home pages. */
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "auth/bind.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "auth/page.h"
#include "auth/person.h"
#include "http/csrf.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "oidc/oidc.h"
#include "portal/account.h"
#include "portal/agency.h"
#include "portal/portal.h"
#include "portal/ops.h"
#include "store/store.h"

/* The method cards for a request needing at least min_loa; txn_id may be
 * NULL (home page: cards without a pending login). */
static json_t *
method_cards(struct isso_app *app, struct http_req *req, enum loa min, const char *txn_id)
{
	json_t *cards = json_array();

	for (const struct method *const *m = methods; *m != NULL; m++) {
		json_t *card, *bullets;
		if ((*m)->loa < min || !method_available(app, *m))
			continue;
		bullets = json_array();
		for (const char *const *b = (*m)->bullet_keys; b != NULL && *b != NULL; b++)
			json_array_append_new(bullets, json_string(page_text(app, req, *b)));
		card = json_pack("{s:s, s:s, s:o}", "id", (*m)->id, "title",
		                 page_text(app, req, (*m)->title_key), "bullets", bullets);
		if (txn_id != NULL)
			json_object_set_new(
			    card, "login_url",
			    json_string(flow_url(
			        req, pool_printf(http_pool(req), "/login/%s", (*m)->id), txn_id)));
		if (method_register_available(app, *m))
			json_object_set_new(
			    card, "register_url",
			    json_string(txn_id != NULL ? flow_url(req, (*m)->register_path, txn_id)
			                               : (*m)->register_path));
		json_array_append_new(cards, card);
	}
	return cards;
}

/* Where a login to iSSO's own pages ("account": true) comes back to: the
 * transaction's "return_to" when it is one of those pages, else
 * /account. */
static const char *
own_page_path(json_t *txn)
{
	static const char *const prefixes[] = {"/agency", "/admin/applications", NULL};
	const char *to = json_string_value(json_object_get(txn, "return_to"));

	if (to == NULL || strstr(to, "//") != NULL || strlen(to) > 200)
		return "/account";
	for (const char *p = to; *p != '\0'; p++) {
		if (*p <= ' ' || *p >= 0x7f || *p == '\\')
			return "/account";
	}
	for (const char *const *p = prefixes; *p != NULL; p++) {
		size_t n = strlen(*p);
		if (strncmp(to, *p, n) == 0 && (to[n] == '\0' || to[n] == '/' || to[n] == '?'))
			return to;
	}
	return "/account";
}

/* The name the method choice shows for a login to iSSO's own pages. */
static const char *
own_page_title(json_t *txn)
{
	const char *to = own_page_path(txn);

	if (strncmp(to, "/agency", 7) == 0)
		return "agency.title";
	if (strncmp(to, "/admin", 6) == 0)
		return "admin.title";
	return "account.title";
}

static void
choose(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *id = NULL;
	json_t *txn = flow_txn_load(app, req, &id);
	struct store_client *c = NULL;
	json_t *page;

	if (txn == NULL)
		return;
	if (json_is_true(json_object_get(txn, "account"))) {
		/* Logging in to iSSO's own pages: /account at any level, the
		 * agencies' and reviewers' pages at the level they ask; binding
		 * a method from /account: only those that prove the ID. */
		json_t *cards = method_cards(
		    app, req, (enum loa)json_integer_value(json_object_get(txn, "min_loa")), id);
		json_t *card;
		size_t i;
		if (bind_txn(txn)) {
			for (i = json_array_size(cards); i-- > 0;) {
				card = json_array_get(cards, i);
				if (!bind_method_ok(json_string_value(json_object_get(card, "id"))))
					json_array_remove(cards, i);
			}
		}
		page = json_pack("{s:o, s:s, s:s}", "methods", cards, "client_name",
		                 page_text(app, req, own_page_title(txn)), "cancel_url",
		                 flow_url(req, "/cancel", id));
		page_render(app, req, 200, "portal", "portal.title", page);
		goto out;
	}
	if (oidc_client_find(app, json_string_value(json_object_get(txn, "client_id")), &c) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
	if (c == NULL) {
		page_error(app, req, 400, "error.client_title", "error.client_unknown", NULL);
		goto out;
	}
	page = json_pack("{s:o, s:s, s:s}", "methods",
	                 method_cards(app, req,
	                              (enum loa)json_integer_value(json_object_get(txn, "min_loa")),
	                              id),
	                 "client_name", c->name, "cancel_url", flow_url(req, "/cancel", id));
	page_render(app, req, 200, "portal", "portal.title", page);
out:
	store_client_free(c);
	json_decref(txn);
}

/* The citizen gives up: the agency hears access_denied. */
static void
cancel(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *id = NULL;
	json_t *txn = flow_txn_load(app, req, &id);

	if (txn == NULL)
		return;
	flow_txn_delete(app, id);
	if (json_is_true(json_object_get(txn, "account")))
		http_redirect(req, 303, "/");
	else
		oidc_error_redirect(app, req, txn, "access_denied", "the citizen cancelled");
	json_decref(txn);
}

/* The scope word that releases a claim ("phone_number" -> "phone"). */
static const char *
claim_scope_word(const char *claim)
{
	unsigned bit = claim_bit_of(claim);

	for (unsigned i = 0; i < claim_scopes_count; i++) {
		if (claim_scopes[i].bit == bit)
			return claim_scopes[i].scope;
	}
	return "";
}

/* Splits the consent rows: the client's optional scopes go, grouped by
 * scope, into optional[] {scope, rows[]} (a checkbox each), the rest stay
 * in fields. */
static json_t *
consent_optional(struct http_req *req, const struct store_client *c, json_t *rows)
{
	json_t *optional = json_array(), *keep = json_array(), *row, *group;
	size_t i, j;

	json_array_foreach(rows, i, row)
	{
		const char *word = json_string_value(json_object_get(row, "scope"));
		const char *value = json_string_value(json_object_get(row, "value"));
		if (!oidc_scope_optional(c, word)) {
			json_array_append(keep, row);
			continue;
		}
		if (page_other_lang(req, value) != NULL)
			json_object_set_new(row, "value_lang",
			                    json_string(page_other_lang(req, value)));
		group = NULL;
		json_array_foreach(optional, j, group)
		{
			if (strcmp(json_string_value(json_object_get(group, "scope")), word) == 0)
				break;
			group = NULL;
		}
		if (group == NULL) {
			group = json_pack("{s:s, s:[]}", "scope", word, "rows");
			json_array_append_new(optional, group);
		}
		json_array_append(json_object_get(group, "rows"), row);
	}
	json_array_clear(rows);
	json_array_extend(rows, keep);
	json_decref(keep);
	return optional;
}

/* The optional scopes of the request the citizen left unticked
 * (space-separated, request memory): every optional claim scope in scope
 * not named by a "share" form value. */
static const char *
consent_declined(struct http_req *req, const struct store_client *c, const char *scope)
{
	const struct http_kvs *form = http_form_all(req);
	struct pool *pool = http_pool(req);
	const char *out = "";

	for (unsigned i = 0; i < claim_scopes_count; i++) {
		const char *word = claim_scopes[i].scope;
		bool ticked = false;
		if (!scope_has(scope, word) || !oidc_scope_optional(c, word))
			continue;
		for (size_t k = 0; form != NULL && k < form->n; k++) {
			if (strcmp(form->v[k].name, "share") == 0 &&
			    strcmp(form->v[k].value, word) == 0)
				ticked = true;
		}
		if (!ticked)
			out = pool_printf(pool, "%s%s%s", out, out[0] != '\0' ? " " : "", word);
	}
	return out;
}

/* One row of the consent list: label and the value that will be sent. */
static void
consent_rows(struct isso_app *app, struct http_req *req, json_t *claims, json_t *rows)
{
	static const struct {
		const char *claim, *label;
	} shown[] = {
	    {"uuid", "claim.uuid"},
	    {"name", "claim.name"},
	    {"account", "claim.account"}, /* the legacy API only */
	    {"id_number", "claim.id_number"},
	    {"phone_number", "claim.phone"},
	    {"email", "claim.email"},
	    {"birthdate", "claim.birthdate"},
	    {"address", "claim.address"},
	    {"member_level", "claim.member_level"},
	    {"organization", "claim.organization"},
	};
	char masked[32];

	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
		json_t *v = json_object_get(claims, shown[i].claim);
		const char *text;
		if (v == NULL)
			continue;
		/* The organisation as its papers name it: name (統一編號 n). */
		if (strcmp(shown[i].claim, "organization") == 0) {
			const char *name = json_string_value(json_object_get(v, "name"));
			const char *ubn = json_string_value(json_object_get(v, "ubn"));
			if (name == NULL || ubn == NULL)
				continue;
			json_array_append_new(
			    rows, json_pack("{s:s, s:s, s:s}", "label",
			                    page_text(app, req, shown[i].label), "value",
			                    pool_printf(http_pool(req), "%s (%s %s)", name,
			                                page_text(app, req, "claim.ubn"), ubn),
			                    "scope", claim_scope_word(shown[i].claim)));
			continue;
		}
		if (json_is_object(v))
			v = json_object_get(v, "formatted");
		text = json_string_value(v);
		if (text == NULL)
			continue;
		/* The whole ID never appears on a page: a shoulder-surfer
		 * learns nothing the citizen didn't already know. */
		if (strcmp(shown[i].claim, "id_number") == 0)
			text = log_mask(text, masked);
		if (strcmp(shown[i].claim, "member_level") == 0)
			text = page_text(app, req,
			                 strcmp(text, "gold") == 0 ? "member.gold"
			                                           : "member.ordinary");
		/* Phones as citizens write them: 0912345678. */
		if (strcmp(shown[i].claim, "phone_number") == 0 && strncmp(text, "+886", 4) == 0)
			text = pool_printf(http_pool(req), "0%s", text + 4);
		json_array_append_new(
		    rows, json_pack("{s:s, s:s, s:s}", "label", page_text(app, req, shown[i].label),
		                    "value", text, "scope", claim_scope_word(shown[i].claim)));
	}
}

static void
consent(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *id = NULL;
	json_t *txn = flow_txn_load(app, req, &id);
	json_t *auth, *claims = NULL, *rows, *page, *optional;
	struct store_client *c = NULL;
	const char *uuid, *scope, *decision, *session_key, *declined;

	if (txn == NULL)
		return;
	auth = json_object_get(txn, "auth");
	uuid = json_string_value(json_object_get(auth, "uuid"));
	scope = json_string_value(json_object_get(txn, "scope"));
	session_key = json_string_value(json_object_get(txn, "session_key"));
	if (uuid == NULL) {
		/* No login yet for this transaction: back to the choice. */
		http_redirect(req, 303, flow_url(req, "/login", id));
		goto out;
	}
	if (json_is_true(json_object_get(txn, "account"))) {
		/* A login to iSSO's own pages releases nothing to anyone. */
		flow_txn_delete(app, id);
		http_redirect(req, 303, own_page_path(txn));
		goto out;
	}
	if (oidc_client_find(app, json_string_value(json_object_get(txn, "client_id")), &c) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
	if (c == NULL) {
		page_error(app, req, 400, "error.client_title", "error.client_unknown", NULL);
		goto out;
	}
	if (http_method(req) == HTTP_POST) {
		if (!csrf_check(req, &app->secrets, "consent")) {
			page_error(app, req, 403, "error.title", "error.csrf", NULL);
			goto out;
		}
		decision = http_form(req, "decision");
		flow_txn_delete(app, id);
		if (decision == NULL || strcmp(decision, "allow") != 0) {
			store_audit_append(
			    app->store, app_now(), "consent_denied",
			    json_pack("{s:s, s:s}", "uuid", uuid, "client_id", c->client_id));
			oidc_error_redirect(app, req, txn, "access_denied", "the citizen declined");
			goto out;
		}
		/* Consent covers the fields the citizen was shown: a scope with
		 * nothing to release today is asked again once it has data. */
		declined = consent_declined(req, c, scope);
		if (oidc_claims(app, uuid, scope, auth, &claims) < 0 ||
		    oidc_consent_record(app, uuid, c->client_id, scope, declined, claims) < 0) {
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           NULL);
			goto out;
		}
		store_audit_append(app->store, app_now(), "consent_granted",
		                   json_pack("{s:s, s:s, s:s, s:s, s:s}", "uuid", uuid, "client_id",
		                             c->client_id, "scope", scope, "declined", declined,
		                             "notice", oidc_consent_notice_version));
		oidc_code_redirect(app, req, txn, auth, session_key);
		goto out;
	}
	/* A returning citizen who already agreed to these scopes for this
	 * service goes straight back to it. */
	{
		bool needed = true;
		if (oidc_consent_needed(app, txn, uuid, auth, &needed) == 0 && !needed) {
			flow_txn_delete(app, id);
			oidc_code_redirect(app, req, txn, auth, session_key);
			goto out;
		}
	}
	if (oidc_claims(app, uuid, scope, auth, &claims) < 0 ||
	    (json_object_get(txn, "legacy") != NULL &&
	     oidc_legacy_claims_add(app, txn, auth, claims) < 0)) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
	rows = json_array();
	consent_rows(app, req, claims, rows);
	optional = consent_optional(req, c, rows);
	page = json_pack("{s:s, s:s, s:s, s:b, s:o, s:s, s:b, s:o}", "client_name", c->name,
	                 "purpose", c->purpose != NULL ? c->purpose : "", "txn", id, "has_fields",
	                 json_array_size(rows) > 0 || json_array_size(optional) > 0, "fields", rows,
	                 "csrf", csrf_token(req, &app->secrets, "consent"), "has_optional",
	                 json_array_size(optional) > 0, "optional", optional);
	json_object_set_new(page, "has_required", json_boolean(json_array_size(rows) > 0));
	/* The agency's own §8 notice, as it applied for it (agency-app.h). */
	{
		const char *n = json_string_value(
		    json_object_get(json_object_get(c->settings, "application"), "notice"));
		if (n != NULL && n[0] != '\0') {
			json_object_set_new(page, "agency_notice", json_string(n));
			if (page_other_lang(req, n) != NULL)
				json_object_set_new(page, "agency_notice_lang",
				                    json_string(page_other_lang(req, n)));
		}
	}
	/* OIDC Core §11: the citizen sees that access outlives the login. */
	if (scope != NULL && scope_has(scope, "offline_access"))
		json_object_set_new(page, "offline", json_true());
	/* The answer to this form redirects to the client: CSP form-action
	 * must allow its origin or the browser stops the redirect. */
	http_csp_allow_form_action(
	    req,
	    oidc_origin(http_pool(req), json_string_value(json_object_get(txn, "redirect_uri"))));
	page_render(app, req, 200, "consent", "consent.title", page);
out:
	json_decref(claims);
	store_client_free(c);
	json_decref(txn);
}

static void
home(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;

	if (strcmp(http_path(req), "/") != 0) {
		page_error(app, req, 404, "error.not_found", "error.not_found.message", "/");
		return;
	}
	page_render(app, req, 200, "home", "portal.title",
	            json_pack("{s:o}", "methods", method_cards(app, req, LOA_LOW, NULL)));
}

static void
method_dispatch(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *rest = http_path_rest(req);
	size_t n = strcspn(rest, "/");
	char id[32];
	const struct method *m;
	const struct method_step *step;
	const char *txn_id = NULL;
	bool foreign = false;
	json_t *txn;

	if (n == 0 || n >= sizeof(id)) {
		page_error(app, req, 404, "error.not_found", "error.not_found.message", "/");
		return;
	}
	memcpy(id, rest, n);
	id[n] = '\0';
	m = method_find(id);
	if (m == NULL) {
		page_error(app, req, 404, "error.not_found", "error.not_found.message", "/");
		return;
	}
	/* a method whose connectors are not configured is not offered */
	if (!method_available(app, m)) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		return;
	}
	step = method_step_find(m, rest[n] == '/' ? rest + n + 1 : "");
	if (step == NULL) {
		page_error(app, req, 404, "error.not_found", "error.not_found.message", "/");
		return;
	}
	if (m->prepare != NULL && !m->prepare(app, req, step))
		return;
	if ((http_method(req) & step->http_methods) == 0) {
		page_error(app, req, 405, "error.method_not_allowed",
		           "error.method_not_allowed.message", "/");
		return;
	}
	if (step->flags & METHOD_STEP_BOUND) {
		txn = flow_txn_load_bound(app, req, &txn_id, &foreign);
		if (foreign && m->foreign_page != NULL)
			m->foreign_page(app, req);
	} else {
		txn = flow_txn_load(app, req, &txn_id);
	}
	if (txn == NULL)
		return;
	/* A login that asks for more than the method reaches is refused
	 * before any step spends a message or a check on it. */
	if (m->refuse_above_loa && json_integer_value(json_object_get(txn, "min_loa")) > m->loa) {
		if (step->flags & METHOD_STEP_JSON)
			http_send_json(req, 403, json_pack("{s:s}", "state", "none"));
		else
			page_error(app, req, 403, "error.loa_title", "error.loa_too_low",
			           flow_url(req, "/login", txn_id));
	} else {
		step->handler(app, req, txn_id, txn);
	}
	json_decref(txn);
}

/* GET /<id>/help: a method's help page, with the way back to the login
 * when the link carries its transaction. */
static void
method_help(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *path = http_path(req), *t = method_keep_txn(req);
	size_t n = strcspn(path + 1, "/");
	char id[32];
	const struct method *m;
	json_t *page;

	if (n == 0 || n >= sizeof(id)) {
		page_error(app, req, 404, "error.not_found", "error.not_found.message", "/");
		return;
	}
	memcpy(id, path + 1, n);
	id[n] = '\0';
	m = method_find(id);
	if (m == NULL || m->help_template == NULL) {
		page_error(app, req, 404, "error.not_found", "error.not_found.message", "/");
		return;
	}
	page = json_object();
	if (t != NULL)
		json_object_set_new(page, "back_url", json_string(flow_url(req, "/login", t)));
	if (m->help_vars != NULL)
		m->help_vars(app, page);
	page_render(app, req, 200, m->help_template, m->help_title_key, page);
}

static void
privacy(struct http_req *req, void *ctx)
{
	page_render(ctx, req, 200, "privacy", "privacy.title", NULL);
}

static void
terms(struct http_req *req, void *ctx)
{
	page_render(ctx, req, 200, "terms", "terms.title", NULL);
}

static void
health(struct http_req *req, void *ctx)
{
	http_send(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

void
portal_routes(struct isso_app *app, struct http_server *srv)
{
	char path[4096];
	app->session_ended = oidc_session_ended;
	app->persons_merged = oidc_persons_merged;
	http_route(srv, HTTP_GET, "/", home, app);
	http_route(srv, HTTP_GET, "/health", health, app);
	ops_routes(app, srv);
	http_route(srv, HTTP_GET, "/privacy", privacy, app);
	http_route(srv, HTTP_GET, "/terms", terms, app);
	account_routes(app, srv);
	agency_routes(app, srv);
	http_route(srv, HTTP_GET, "/login", choose, app);
	http_route(srv, HTTP_GET | HTTP_POST, "/login/", method_dispatch, app);
	http_route(srv, HTTP_GET | HTTP_POST, "/consent", consent, app);
	http_route(srv, HTTP_GET, "/cancel", cancel, app);
	for (const struct method *const *m = methods; *m != NULL; m++) {
		if ((*m)->help_template != NULL) {
			snprintf(path, sizeof(path), "/%s/help", (*m)->id);
			http_route(srv, HTTP_GET, path, method_help, app);
		}
		if ((*m)->routes != NULL)
			(*m)->routes(app, srv);
	}
	oidc_routes(app, srv);
	snprintf(path, sizeof(path), "%s/static", app->cfg->server.datadir);
	http_route_static(srv, "/static/", path);
}
