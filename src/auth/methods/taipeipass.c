/* Method taipeipass (台北通會員帳號): password login of TaipeiPass members,
 * login by the TaipeiPass app (a QR code scanned by the app, or on the
 * same phone an app link), registration and password reset by SMS code.
 * Every path is loa low. The password paths are amr pwd; the app answers
 * with a signature of a device key it enrolled once with the member's
 * account and password (amr swk: possession of that key, nothing more is
 * proven at the approval, so still loa low).
 *
 * The app login:
 *   step "app"         the page: `isso-tpapp:<public_url>/app/v1/qr/<c>`
 *                      as a QR code, with c a one-time 256-bit challenge,
 *                      the agency service's name and a two-digit number
 *                      to pick in the app (number matching); the same
 *                      challenge as an app link
 *                      `isso-tpapp:<public_url>/app/v1/link/<c>` for the
 *                      app on this phone (first on a phone); countdown,
 *                      regenerate, and a button that asks once (no script)
 *   step "app-status"  JSON for the page's [data-poll] script (paced)
 *   step "app-done"    takes a scanned approval (once) → consent
 *   step "app-return"  where the app returns the browser after approving
 *                      through the app link: needs the browser that
 *                      started the login and the app's one-time return
 *                      code (r) → consent
 *   step "org"         組織 / 公司企業: marks the login as an organisation
 *                      login (txn "org") and leads to the same QR page
 *   POST /app/v1/device/enrol  account, password and a P-256 public key
 *                      (JWK) → a device id (store table devices)
 *   POST /app/v1/qr/details   what the app shows: service name,
 *                      organisation or not, three numbers to choose from,
 *                      and the nonce the app signs
 *   POST /app/v1/qr/approve   the app's answer (JSON or form): challenge
 *                      (or the whole QR text), device, signature (ES256
 *                      JWS over the answer, the nonce and the time),
 *                      decision approve|deny, number (picked; a wrong one
 *                      ends the challenge "refused"), via scan|link, and
 *                      for an organisation login organisation (統一編號):
 *                      the member must belong to it, else "refused"
 * The challenge lives in the store (kind "tpapp", expiring after
 * taipeipass.app_qr_ttl) as {txn, state pending|approved|denied|refused,
 * reason, service, number, choices, uuid, org (an organisation login),
 * organisation {ubn, name}, link + return_hash (approved through the app
 * link)}, bound to the login transaction, which holds {ch, exp, number,
 * service, outcome, reason} under "tpapp". The enrolment's password is
 * checked by member_authenticate, with the login page's guess delays; a
 * password never answers a challenge. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "auth/app.h"
#include "auth/appsig.h"
#include "auth/claims.h"
#include "auth/devkey.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "auth/notice.h"
#include "auth/otp.h"
#include "auth/page.h"
#include "auth/person.h"
#include "auth/qr.h"
#include "auth/throttle.h"
#include "http/csrf.h"
#include "http/i18n.h"
#include "lib/config.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define PENDING_TTL 900

static const char *const amr_pwd[] = {"pwd", NULL};
/* RFC 8176 swk: proof of possession of a software-secured key. */
static const char *const amr_swk[] = {"swk", NULL};
static const char *const bullets[] = {"tp.bullet1", "tp.bullet2", "tp.bullet3", NULL};

static void login_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void org_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void app_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void app_status_step(struct isso_app *app, struct http_req *req, const char *id,
                            json_t *txn);
static void app_done_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void app_return_step(struct isso_app *app, struct http_req *req, const char *id,
                            json_t *txn);
static void routes(struct isso_app *app, struct http_server *srv);

static const struct method_step steps[] = {
    {"", HTTP_GET | HTTP_POST, 0, login_step},
    {"app", HTTP_GET | HTTP_POST, 0, app_step},
    {"app-status", HTTP_GET, METHOD_STEP_JSON, app_status_step},
    {"app-done", HTTP_GET, 0, app_done_step},
    {"app-return", HTTP_GET, 0, app_return_step},
    {"org", HTTP_GET, 0, org_step},
    {NULL, 0, 0, NULL},
};

static int tp_init(struct isso_app *app, bool build, struct method_setup *setup,
                   const char **error_r);

const struct method method_taipeipass = {
    .id = "taipeipass",
    .loa = LOA_LOW, /* the app too: its device key is a single factor */
    .amr = amr_pwd,
    .vouches = CLAIM_UUID | CLAIM_NAME | CLAIM_ID_NUMBER | CLAIM_PHONE | CLAIM_EMAIL |
               CLAIM_BIRTHDATE | CLAIM_ADDRESS,
    .linked_member_data = true,
    .title_key = "tp.title",
    .bullet_keys = bullets,
    .register_path = "/taipeipass/register",
    .init = tp_init,
    .free = free,
    .steps = steps,
    /* No path of this method proves more than a password: a login that
     * asks for more is refused before any step (flow_complete would
     * refuse it too). */
    .refuse_above_loa = true,
    .routes = routes,
};

/* [taipeipass] */
struct tp_settings {
	int app_qr_ttl; /* seconds a TaipeiPass app QR code stays valid, 120 */
};

static const struct config_option tp_options[] = {
    {"app_qr_ttl", CONFIG_OPT_INT, offsetof(struct tp_settings, app_qr_ttl), "120", 2, 600, false},
    {NULL, 0, 0, NULL, 0, 0, false},
};

/* The password login needs no connector; registration sends SMS codes. */
static int
tp_init(struct isso_app *app, bool build, struct method_setup *setup, const char **error_r)
{
	struct tp_settings s = {0};
	int ret = config_section_parse(app->cfg, "taipeipass", tp_options, &s, error_r);

	if (ret < 0 || !build)
		return ret;
	if (app->sms == NULL)
		method_setup_unset(setup->register_unset, sizeof(setup->register_unset), "sms.url");
	struct tp_settings *st = xmalloc(sizeof(*st));

	*st = s;
	setup->state = st;
	return 0;
}

static const struct tp_settings *
tp_settings(const struct isso_app *app)
{
	return method_state_of(app, &method_taipeipass);
}

/* The field a message is about, so that the page's error summary links
 * to it and the field is marked invalid (page_form_error); NULL: the page
 * as a whole (limits, an expired form, the SMS gateway). */
static const char *
error_field(const char *key)
{
	static const struct {
		const char *key, *field;
	} fields[] = {
	    {"tp.missing", "account"},
	    {"tp.bad_login", "account"},
	    {"register.missing", "account"},
	    {"register.bad_account", "account"},
	    {"register.account_taken", "account"},
	    {"register.bad_name", "name"},
	    {"register.bad_phone", "phone"},
	    {"register.contact_taken", "phone"},
	    {"register.bad_email", "email"},
	    {"register.must_agree", "agree"},
	    {"password.mismatch", "password2"},
	    {"otp.wrong", "code"},
	};

	if (key == NULL)
		return NULL;
	for (size_t i = 0; i < ISSO_N_ELEMENTS(fields); i++) {
		if (strcmp(fields[i].key, key) == 0)
			return fields[i].field;
	}
	if (strncmp(key, "password.", 9) == 0)
		return "password";
	return NULL;
}

/* Puts error_key on ctx in the shared pattern (see error_field). */
static void
set_error(struct isso_app *app, struct http_req *req, json_t *ctx, const char *error_key)
{
	const char *field = error_field(error_key);

	if (error_key == NULL)
		return;
	if (field != NULL)
		page_field_error(app, req, ctx, field, error_key);
	else
		page_form_error(app, req, ctx, error_key, NULL, NULL);
}

static void
login_page_wait(struct isso_app *app, struct http_req *req, const char *id, json_t *txn, int status,
                const char *error_key, const char *account, int wait)
{
	json_t *ctx = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "txn", id, "csrf",
	                        csrf_token(req, &app->secrets, "tp-login"), "register_url",
	                        flow_url(req, "/taipeipass/register", id), "forgot_url",
	                        flow_url(req, "/taipeipass/forgot", id), "back_url",
	                        flow_url(req, "/login", id), "app_url",
	                        flow_url(req, "/login/taipeipass/app", id));

	set_error(app, req, ctx, error_key);
	if (account != NULL)
		json_object_set_new(ctx, "account", json_string(account));
	if (wait > 0)
		json_object_set_new(ctx, "wait", json_integer(wait));
	page_notice(app, req, ctx, id, "taipeipass");
	page_render(app, req, status, "login-taipeipass", "tp.login_title", ctx);
}

static void
login_page(struct isso_app *app, struct http_req *req, const char *id, json_t *txn, int status,
           const char *error_key, const char *account)
{
	login_page_wait(app, req, id, txn, status, error_key, account, 0);
}

static bool app_set_org(struct isso_app *app, json_t *txn, bool org);
static bool app_save(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);

/* A login form waiting for its password check. */
struct login_check {
	struct isso_app *app;
	const char *id;
	json_t *txn;
};

/* The login form's second half, once the password was checked. */
static void
login_checked(struct http_req *req, const struct member_auth_result *res, void *ctx)
{
	struct login_check *lc = ctx;
	struct isso_app *app = lc->app;
	const char *account;
	struct flow_auth auth;
	char retry[16];

	if (req == NULL)
		goto out;
	account = http_form(req, "account");
	if (res->ret == ISSO_ERR_LIMIT) {
		/* Too many passwords being checked: come back soon, never a
		 * hang; the same for every account. */
		http_set_busy(req);
		login_page(app, req, lc->id, lc->txn, 503, "tp.busy", account);
		goto out;
	}
	if (res->ret < 0) {
		login_page(app, req, lc->id, lc->txn, 400, "tp.bad_login", account);
		goto out;
	}
	if (res->wait > 0) {
		/* Guessing is slowed, never locked out; the same words whether
		 * or not the account exists. */
		snprintf(retry, sizeof(retry), "%d", res->wait);
		http_set_header(req, "Retry-After", retry);
		login_page_wait(app, req, lc->id, lc->txn, 429, "tp.wait", account, res->wait);
		goto out;
	}
	if (!res->ok) {
		login_page(app, req, lc->id, lc->txn, 401, "tp.bad_login", account);
		goto out;
	}
	memset(&auth, 0, sizeof(auth));
	auth.uuid = res->uuid;
	auth.method = &method_taipeipass;
	auth.loa = LOA_LOW; /* flow_complete refuses it when more was asked */
	flow_complete(app, req, lc->id, lc->txn, &auth);
out:
	json_decref(lc->txn);
	lc->txn = NULL;
}

/* /login/taipeipass/org: the app's QR code for an organisation account. */
static void
org_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	if (app_set_org(app, txn, true) && !app_save(app, req, id, txn))
		return;
	http_redirect(req, 303, flow_url(req, "/login/taipeipass/app", id));
}

/* /login/taipeipass: the account and password form, and its answer. */
static void
login_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	const char *account, *password;
	struct login_check *lc;

	if (http_method(req) != HTTP_POST) {
		const char *hint = json_string_value(json_object_get(txn, "login_hint"));
		/* Back on the login page: the next QR code is a personal one. */
		if (app_set_org(app, txn, false) && !app_save(app, req, id, txn))
			return;
		login_page(app, req, id, txn, 200, NULL, hint);
		return;
	}
	if (!csrf_check(req, &app->secrets, "tp-login")) {
		login_page(app, req, id, txn, 403, "error.csrf", NULL);
		return;
	}
	account = http_form(req, "account");
	password = http_form(req, "password");
	if (account == NULL || account[0] == '\0' || password == NULL || password[0] == '\0') {
		login_page(app, req, id, txn, 400, "tp.missing", account);
		return;
	}
	if (method_addr_limited(app, req, "login")) {
		login_page(app, req, id, txn, 429, "error.rate_limited", account);
		return;
	}
	lc = pool_alloc(http_pool(req), sizeof(*lc));
	lc->app = app;
	lc->id = id;
	lc->txn = json_incref(txn); /* login_checked's */
	member_authenticate(app, req, account, password, login_checked, lc);
}

/* ---- the TaipeiPass app: QR login and the same-phone app link ---- */

#define APP_KIND    "tpapp"
#define APP_CSRF    "tp-app"
#define APP_PREFIX  "isso-tpapp:"
#define APP_QR_PATH "/app/v1/qr/"
/* The same challenge handed to the app on this phone: the app knows it
 * came by link (not by its camera) and answers with via "link". */
#define APP_LINK_PATH "/app/v1/link/"
/* The page asks every 2 s; more than this per minute per login is not
 * the page's script. */
#define APP_POLL_MAX 90
/* Number matching: the page shows one two-digit number, the app offers
 * it among APP_CHOICES. */
#define APP_CHOICES 3

enum app_outcome {
	APP_NONE,
	APP_PENDING,
	APP_APPROVED,  /* scanned and approved: the polling page completes */
	APP_RETURNING, /* approved through the app link: only the return completes */
	APP_DENIED,
	APP_EXPIRED,
	APP_REFUSED,
};

static const char *const app_outcome_names[] = {
    [APP_NONE] = "none",           [APP_PENDING] = "pending", [APP_APPROVED] = "approved",
    [APP_RETURNING] = "returning", [APP_DENIED] = "denied",   [APP_EXPIRED] = "expired",
    [APP_REFUSED] = "refused",
};

static bool
is_token(const char *s)
{
	static const char b64url[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	return s != NULL && strlen(s) == 43 && strspn(s, b64url) == 43;
}

/* The method's app state in txn (borrowed), or NULL. */
static json_t *
app_state(json_t *txn)
{
	json_t *st = json_object_get(txn, APP_KIND);

	return json_is_object(st) ? st : NULL;
}

/* Is this an organisation login (組織 / 公司企業)? */
static bool
app_is_org(json_t *txn)
{
	return json_is_true(json_object_get(txn, "org"));
}

/* Switches the login between personal and organisation; a challenge of
 * the other kind dies. Returns true when txn changed (save it). */
static bool
app_set_org(struct isso_app *app, json_t *txn, bool org)
{
	json_t *st = app_state(txn);

	if (app_is_org(txn) == org)
		return false;
	if (st != NULL && is_token(json_string_value(json_object_get(st, "ch"))))
		(void)store_eph_delete(app->store, APP_KIND,
		                       json_string_value(json_object_get(st, "ch")));
	json_object_del(txn, APP_KIND);
	if (org)
		json_object_set_new(txn, "org", json_true());
	else
		json_object_del(txn, "org");
	return true;
}

/* A two-digit number, 10 to 99, none of the n in avoid. */
static int
app_random_number(const int *avoid, size_t n)
{
	for (;;) {
		int v = 10 + (int)randombytes_uniform(90);
		size_t i;

		for (i = 0; i < n && avoid[i] != v; i++)
			;
		if (i == n)
			return v;
	}
}

/* A new challenge for transaction id, recorded in txn (not yet saved):
 * the number the page shows, the choices the app offers (the number at a
 * random place among decoys) and the agency service's name. */
/* The service the app names for a login to the citizen's own page. */
#define ACCOUNT_SERVICE_NAME "臺北市政府單一身分驗證入口 我的帳戶 (iSSO account)"

static int
app_issue(struct isso_app *app, const char *id, json_t *txn)
{
	int64_t exp = app_now() + tp_settings(app)->app_qr_ttl;
	json_t *st = app_state(txn), *data, *choices;
	struct store_client *client = NULL;
	int picks[APP_CHOICES], right;
	char ch[44], nonce[44];
	int ret;

	/* The previous code is dead from now on. */
	if (st != NULL && is_token(json_string_value(json_object_get(st, "ch"))))
		(void)store_eph_delete(app->store, APP_KIND,
		                       json_string_value(json_object_get(st, "ch")));
	/* A login to /account names no agency: the app shows iSSO's own. */
	if (json_is_true(json_object_get(txn, "account"))) {
		client = calloc(1, sizeof(*client));
		if (client == NULL || (client->name = strdup(ACCOUNT_SERVICE_NAME)) == NULL) {
			free(client);
			return ISSO_ERR_NOMEM;
		}
	} else {
		ret = store_client_get(
		    app->store, json_string_value(json_object_get(txn, "client_id")), &client);
		if (ret < 0)
			return ret;
	}
	if (client == NULL)
		return ISSO_ERR_INVALID;
	for (size_t i = 0; i < APP_CHOICES; i++)
		picks[i] = app_random_number(picks, i);
	right = picks[randombytes_uniform(APP_CHOICES)];
	choices = json_array();
	for (size_t i = 0; i < APP_CHOICES; i++)
		json_array_append_new(choices, json_integer(picks[i]));
	secret_token(32, ch);
	secret_token(32, nonce);
	data = json_pack("{s:s, s:s, s:s, s:i, s:o, s:s}", "txn", id, "state", "pending", "service",
	                 client->name, "number", right, "choices", choices, "nonce", nonce);
	if (app_is_org(txn))
		json_object_set_new(data, "org", json_true());
	ret = store_eph_put(app->store, APP_KIND, ch, data, exp);
	json_decref(data);
	if (ret == 0)
		json_object_set_new(txn, APP_KIND,
		                    json_pack("{s:s, s:I, s:i, s:s}", "ch", ch, "exp",
		                              (json_int_t)exp, "number", right, "service",
		                              client->name));
	store_client_free(client);
	return ret;
}

/* Where the challenge of transaction id stands; *uuid_r (37 bytes, may be
 * NULL) gets the member once approved, *org_r (may be NULL) the
 * organisation {ubn, name} they act for (a new reference, NULL for a
 * personal login), and *ret_hash_r (65 bytes, may be NULL) the hash of
 * the return code of an approval through the app link. Records a final
 * outcome in txn and sets *changed_r when txn must be saved. */
static enum app_outcome
app_check(struct isso_app *app, const char *id, json_t *txn, char *uuid_r, json_t **org_r,
          char *ret_hash_r, bool *changed_r)
{
	json_t *st = app_state(txn), *data = NULL;
	const char *ch, *state, *uuid, *reason = NULL;
	enum app_outcome o = APP_NONE;

	*changed_r = false;
	if (st == NULL)
		return APP_NONE;
	state = json_string_value(json_object_get(st, "outcome"));
	if (state != NULL)
		return strcmp(state, "denied") == 0    ? APP_DENIED
		       : strcmp(state, "refused") == 0 ? APP_REFUSED
		                                       : APP_EXPIRED;
	ch = json_string_value(json_object_get(st, "ch"));
	if (!is_token(ch))
		return APP_NONE;
	if (store_eph_get(app->store, APP_KIND, ch, app_now(), &data, NULL) < 0 || data == NULL) {
		o = APP_EXPIRED;
	} else if (strcmp(json_string_value(json_object_get(data, "txn")) ?: "", id) != 0) {
		o = APP_NONE; /* never: the challenge names its own login */
	} else {
		state = json_string_value(json_object_get(data, "state")) ?: "";
		uuid = json_string_value(json_object_get(data, "uuid"));
		if (strcmp(state, "approved") == 0 && uuid != NULL && strlen(uuid) == 36 &&
		    (!app_is_org(txn) || json_is_object(json_object_get(data, "organisation")))) {
			const char *rh = json_string_value(json_object_get(data, "return_hash"));
			o = json_is_true(json_object_get(data, "link")) ? APP_RETURNING
			                                                : APP_APPROVED;
			if (o == APP_RETURNING && (rh == NULL || strlen(rh) != 64))
				o = APP_PENDING; /* never: a link approval has its code */
			if (uuid_r != NULL)
				memcpy(uuid_r, uuid, 37);
			if (org_r != NULL && app_is_org(txn))
				*org_r = json_incref(json_object_get(data, "organisation"));
			if (ret_hash_r != NULL && o == APP_RETURNING)
				memcpy(ret_hash_r, rh, 65);
		} else if (strcmp(state, "denied") == 0) {
			o = APP_DENIED;
		} else if (strcmp(state, "refused") == 0) {
			o = APP_REFUSED;
			reason = json_string_value(json_object_get(data, "reason"));
		} else {
			o = APP_PENDING;
		}
	}
	if (o == APP_DENIED || o == APP_EXPIRED || o == APP_REFUSED) {
		(void)store_eph_delete(app->store, APP_KIND, ch);
		json_object_set_new(txn, APP_KIND,
		                    json_pack("{s:s}", "outcome", app_outcome_names[o]));
		if (reason != NULL)
			json_object_set_new(app_state(txn), "reason", json_string(reason));
		*changed_r = true;
	}
	json_decref(data);
	return o;
}

static int
app_seconds_left(json_t *txn)
{
	int64_t left =
	    (int64_t)json_integer_value(json_object_get(app_state(txn), "exp")) - app_now();

	return left > 0 ? (int)left : 0;
}

/* Is the browser likely on a phone? Client hints when sent, else the
 * User-Agent. Only the order of the page depends on it: both ways are
 * always offered. */
static bool
app_on_phone(struct http_req *req)
{
	static const char *const marks[] = {"Mobi", "Android", "iPhone", "iPod"};
	const char *hint = http_header(req, "Sec-CH-UA-Mobile");
	const char *ua = http_header(req, "User-Agent");

	if (hint != NULL && strcmp(hint, "?1") == 0)
		return true;
	if (hint != NULL && strcmp(hint, "?0") == 0)
		return false;
	for (size_t i = 0; ua != NULL && i < ISSO_N_ELEMENTS(marks); i++) {
		if (strstr(ua, marks[i]) != NULL)
			return true;
	}
	return false;
}

/* The page's message for a finished challenge. */
static const char *
app_outcome_key(json_t *st)
{
	const char *outcome = json_string_value(json_object_get(st, "outcome"));
	const char *reason = json_string_value(json_object_get(st, "reason"));

	if (outcome == NULL)
		return NULL;
	if (strcmp(outcome, "denied") == 0)
		return "tp.app_denied";
	if (strcmp(outcome, "refused") == 0)
		return reason != NULL && strcmp(reason, "number") == 0 ? "tp.app_wrong_number"
		                                                       : "tp.org_refused";
	return "tp.app_expired";
}

static void
app_page(struct isso_app *app, struct http_req *req, const char *id, json_t *txn, int status,
         const char *error_key, const char *info_key)
{
	json_t *ctx = json_pack("{s:s, s:s, s:s, s:b}", "txn", id, "csrf",
	                        csrf_token(req, &app->secrets, APP_CSRF), "back_url",
	                        flow_url(req, "/login", id), "script", 1);
	json_t *st = app_state(txn);
	const char *ch = json_string_value(json_object_get(st, "ch"));
	bool org = app_is_org(txn);

	if (org) {
		json_object_set_new(ctx, "org", json_true());
		json_object_set_new(ctx, "personal_url",
		                    json_string(flow_url(req, "/login/taipeipass", id)));
	} else {
		json_object_set_new(ctx, "password_url",
		                    json_string(flow_url(req, "/login/taipeipass", id)));
	}
	if (app_outcome_key(st) != NULL) {
		error_key = app_outcome_key(st);
	} else if (is_token(ch)) {
		const char *base = app->cfg->server.public_url;
		size_t n = strlen(base);
		char *text, *svg;

		while (n > 0 && base[n - 1] == '/')
			n--;
		text = pool_printf(http_pool(req), APP_PREFIX "%.*s" APP_QR_PATH "%s", (int)n, base,
		                   ch);
		svg = qr_svg(text, page_text(app, req, "tp.app_qr_alt"));
		if (svg == NULL) {
			json_decref(ctx);
			log_error("tpapp_qr_failed", NULL);
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           flow_url(req, "/login", id));
			return;
		}
		json_object_set_new(ctx, "svg", json_string(svg));
		json_object_set_new(ctx, "qr_text", json_string(text));
		json_object_set_new(
		    ctx, "app_link",
		    json_string(pool_printf(http_pool(req), APP_PREFIX "%.*s" APP_LINK_PATH "%s",
		                            (int)n, base, ch)));
		json_object_set_new(ctx, "pending", json_true());
		json_object_set_new(ctx, "phone", json_boolean(app_on_phone(req)));
		json_object_set_new(ctx, "seconds", json_integer(app_seconds_left(txn)));
		json_object_set_new(
		    ctx, "number",
		    json_sprintf("%02d", (int)json_integer_value(json_object_get(st, "number"))));
		json_object_set(ctx, "service", json_object_get(st, "service"));
		json_object_set_new(ctx, "status_url",
		                    json_string(flow_url(req, "/login/taipeipass/app-status", id)));
		free(svg);
	}
	page_form_error(app, req, ctx, error_key, NULL, NULL);
	if (info_key != NULL)
		json_object_set_new(ctx, "info", json_string(page_text(app, req, info_key)));
	page_notice(app, req, ctx, id, "taipeipass-app");
	page_render(app, req, status, "taipeipass-app", org ? "tp.org_heading" : "tp.app_heading",
	            ctx);
}

/* Saves txn; false (and an error page sent) when it expired meanwhile. */
static bool
app_save(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	if (flow_txn_save(app, id, txn) == 0)
		return true;
	page_error(app, req, 400, "error.txn_title", "error.txn_expired", NULL);
	return false;
}

/* Where the page goes next: only a scanned approval moves the polling
 * page on; an approval through the app link completes where the app
 * returns (app-return), never here. */
static const char *
app_next_url(struct http_req *req, const char *id, enum app_outcome o)
{
	return flow_url(
	    req, o == APP_APPROVED ? "/login/taipeipass/app-done" : "/login/taipeipass/app", id);
}

/* GET: the QR code (a new one when there is none); POST: regenerate, or
 * "check" (asks once: the page without script). */
static void
app_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	const char *action;
	enum app_outcome o;
	bool changed = false;

	if (http_method(req) != HTTP_POST) {
		o = app_check(app, id, txn, NULL, NULL, NULL, &changed);
		if (o == APP_APPROVED) {
			http_redirect(req, 303, app_next_url(req, id, o));
			return;
		}
		if (o == APP_NONE) {
			if (method_addr_limited(app, req, "tpapp-qr")) {
				page_error(app, req, 429, "tp.app_heading", "error.rate_limited",
				           flow_url(req, "/login", id));
				return;
			}
			if (app_issue(app, id, txn) < 0) {
				page_error(app, req, 503, "error.unavailable",
				           "error.unavailable.message", NULL);
				return;
			}
			changed = true;
		}
		if (changed && !app_save(app, req, id, txn))
			return;
		app_page(app, req, id, txn, 200, NULL,
		         o == APP_RETURNING ? "tp.app_returning" : NULL);
		return;
	}
	if (!csrf_check(req, &app->secrets, APP_CSRF)) {
		app_page(app, req, id, txn, 403, "error.csrf", NULL);
		return;
	}
	action = http_form(req, "action");
	if (action != NULL && strcmp(action, "regenerate") == 0) {
		if (method_addr_limited(app, req, "tpapp-qr")) {
			app_page(app, req, id, txn, 429, "error.rate_limited", NULL);
			return;
		}
		if (app_issue(app, id, txn) < 0) {
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           NULL);
			return;
		}
		if (app_save(app, req, id, txn))
			http_redirect(req, 303, flow_url(req, "/login/taipeipass/app", id));
		return;
	}
	o = app_check(app, id, txn, NULL, NULL, NULL, &changed);
	if (changed && !app_save(app, req, id, txn))
		return;
	if (o == APP_PENDING || o == APP_NONE || o == APP_RETURNING)
		app_page(app, req, id, txn, 200, NULL,
		         o == APP_RETURNING ? "tp.app_returning" : "tp.app_waiting");
	else
		http_redirect(req, 303, app_next_url(req, id, o));
}

/* GET …/app-status: the page's script asks every 2 s; JSON
 * {"state": "pending"|"approved"|"returning"|"denied"|"expired"|"refused",
 * "seconds": n, "next": url}. "returning" (approved through the app link)
 * has no next: that login completes only where the app returns. */
static void
app_status_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	enum app_outcome o;
	bool changed = false;
	char key[80];
	int count = 0;
	json_t *out;

	snprintf(key, sizeof(key), "tpapp-poll:%.43s", id);
	if (store_rate_hit(app->store, key, 60, app_now(), &count) < 0 || count > APP_POLL_MAX) {
		http_set_header(req, "Retry-After", "10");
		http_send_json(req, 429, json_pack("{s:s}", "state", "slow_down"));
		return;
	}
	o = app_check(app, id, txn, NULL, NULL, NULL, &changed);
	if (changed && flow_txn_save(app, id, txn) < 0) {
		http_send_json(req, 410, json_pack("{s:s}", "state", "gone"));
		return;
	}
	if (o == APP_NONE) {
		http_send_json(req, 409, json_pack("{s:s}", "state", "none"));
		return;
	}
	out = json_pack("{s:s}", "state", app_outcome_names[o]);
	if (o == APP_PENDING || o == APP_RETURNING)
		json_object_set_new(out, "seconds", json_integer(app_seconds_left(txn)));
	else
		json_object_set_new(out, "next", json_string(app_next_url(req, id, o)));
	http_send_json(req, 200, out);
}

/* Takes the approved challenge (once) and completes the login: loa low,
 * amr swk: the app proved its enrolled device key, one factor. */
static void
app_finish(struct isso_app *app, struct http_req *req, const char *id, json_t *txn,
           const char *uuid, json_t *org)
{
	struct flow_auth auth;
	const char *ch = json_string_value(json_object_get(app_state(txn), "ch"));
	bool taken = false;

	if (store_eph_take(app->store, APP_KIND, ch, app_now(), &taken) < 0 || !taken) {
		page_error(app, req, 409, "tp.app_used_title", "tp.app_used",
		           flow_url(req, "/login/taipeipass/app", id));
		return;
	}
	json_object_del(txn, APP_KIND);
	memset(&auth, 0, sizeof(auth));
	auth.uuid = uuid;
	auth.method = &method_taipeipass;
	auth.loa = LOA_LOW;
	auth.amr = amr_swk;
	if (org != NULL) {
		auth.attrs = json_pack("{s:O}", "organisation", org);
		json_object_del(txn, "org");
		log_info("tpapp_org_login", "ubn", json_string_value(json_object_get(org, "ubn")),
		         NULL);
	} else {
		log_info("tpapp_login", NULL);
	}
	flow_complete(app, req, id, txn, &auth);
	json_decref(auth.attrs);
}

/* GET …/app-done: a scanned approval completes the polling page's login. */
static void
app_done_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	enum app_outcome o;
	bool changed = false;
	char uuid[37];
	json_t *org = NULL;

	o = app_check(app, id, txn, uuid, &org, NULL, &changed);
	if (o != APP_APPROVED) {
		if (changed && !app_save(app, req, id, txn))
			goto out;
		http_redirect(req, 303, flow_url(req, "/login/taipeipass/app", id));
		goto out;
	}
	app_finish(app, req, id, txn, uuid, org);
out:
	json_decref(org);
}

/* GET …/app-return?t=…&r=…: the app brings the citizen back to the
 * browser on the same phone after approving through the app link. The
 * login completes only for the browser that started it (flow_txn_load
 * checked its binding cookie) and only with the one-time return code the
 * app received: an app link forwarded from another person's login
 * approves nothing for them (their page never completes a link approval)
 * and returns the approver to a browser that does not hold their login. */
static void
app_return_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	const char *code = http_param(req, "r");
	enum app_outcome o;
	bool changed = false;
	char uuid[37], want[65], got[65];
	json_t *org = NULL;

	o = app_check(app, id, txn, uuid, &org, want, &changed);
	if (changed && !app_save(app, req, id, txn))
		goto out;
	if (o != APP_RETURNING || !is_token(code)) {
		log_info("tpapp_return_refused", "state", app_outcome_names[o], NULL);
		page_error(app, req, 400, "tp.app_return_title", "tp.app_return_invalid",
		           flow_url(req, "/login/taipeipass/app", id));
		goto out;
	}
	secret_sha256_hex(code, strlen(code), got);
	if (!secret_equal(got, want)) {
		log_info("tpapp_return_refused", "state", "wrong_code", NULL);
		page_error(app, req, 400, "tp.app_return_title", "tp.app_return_invalid",
		           flow_url(req, "/login/taipeipass/app", id));
		goto out;
	}
	app_finish(app, req, id, txn, uuid, org);
out:
	json_decref(org);
}

/* ---- the app's API: /app/v1/device/enrol, /app/v1/qr/details, /app/v1/qr/approve ---- */

static void
app_reply(struct http_req *req, int status, const char *key, const char *value)
{
	http_set_header(req, "Cache-Control", "no-store");
	http_send_json(req, status, json_pack("{s:s}", key, value));
}

/* The app's request body as a JSON object (a new reference): JSON as
 * sent, or the form fields named in names (NULL-ended) as strings. NULL
 * for malformed JSON. */
static json_t *
app_request(struct http_req *req, const char *const *names)
{
	const char *ctype = http_header(req, "Content-Type");
	json_t *body;

	if (ctype != NULL && strncasecmp(ctype, "application/json", 16) == 0) {
		size_t len = 0;
		const char *raw = http_body(req, &len);
		body = raw != NULL ? json_loadb(raw, len, 0, NULL) : NULL;
		if (!json_is_object(body)) {
			json_decref(body);
			return NULL;
		}
		return body;
	}
	body = json_object();
	for (; *names != NULL; names++) {
		const char *v = http_form(req, *names);
		if (v != NULL)
			json_object_set_new(body, *names, json_string(v));
	}
	return body;
}

/* The challenge named by body's "challenge", or the last segment of the
 * QR text or app link in "qr" (borrowed from body), when well-formed. */
static const char *
app_challenge(json_t *body)
{
	const char *ch = json_string_value(json_object_get(body, "challenge"));

	if (ch == NULL)
		ch = json_string_value(json_object_get(body, "qr"));
	if (ch != NULL && strrchr(ch, '/') != NULL)
		ch = strrchr(ch, '/') + 1;
	return is_token(ch) ? ch : NULL;
}

static const char *const app_fields[] = {
    "challenge", "qr",  "account", "password",  "decision", "organisation",
    "number",    "via", "device",  "signature", NULL,
};

/* The app's pending challenge ch (a new reference), after the per-address
 * limit named limit_key; NULL when the answer (429, 404 expired, 409
 * already used) has been sent. */
static json_t *
app_pending(struct isso_app *app, struct http_req *req, const char *limit_key, const char *ch)
{
	json_t *data = NULL;

	if (method_addr_limited(app, req, limit_key)) {
		http_set_header(req, "Retry-After", "60");
		app_reply(req, 429, "error", "rate_limited");
		return NULL;
	}
	if (store_eph_get(app->store, APP_KIND, ch, app_now(), &data, NULL) < 0 || data == NULL) {
		app_reply(req, 404, "error", "expired");
		return NULL;
	}
	if (strcmp(json_string_value(json_object_get(data, "state")) ?: "", "pending") != 0) {
		app_reply(req, 409, "error", "already_used");
		json_decref(data);
		return NULL;
	}
	return data;
}

/* POST /app/v1/qr/details: what the app shows before the citizen
 * decides: the agency service's name, whether it is an organisation
 * login, and the numbers to choose from (never which one is right). */
static void
app_details_route(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	json_t *body = app_request(req, app_fields), *data = NULL, *out;
	const char *ch = app_challenge(body);

	if (ch == NULL) {
		app_reply(req, 400, "error", "invalid_request");
		goto out;
	}
	if ((data = app_pending(app, req, "tpapp-details", ch)) == NULL)
		goto out;
	out = json_pack("{s:O, s:b, s:O, s:O}", "service", json_object_get(data, "service"),
	                "organisation", json_is_true(json_object_get(data, "org")), "choices",
	                json_object_get(data, "choices"), "nonce", json_object_get(data, "nonce"));
	http_set_header(req, "Cache-Control", "no-store");
	http_send_json(req, 200, out);
out:
	json_decref(body);
	json_decref(data);
}

/* The number the app's citizen picked: a JSON integer or a string of two
 * digits; -1 when absent or malformed. */
static int
app_picked(json_t *body)
{
	json_t *v = json_object_get(body, "number");
	const char *s = json_string_value(v);

	if (json_is_integer(v))
		return json_integer_value(v) >= 0 && json_integer_value(v) <= 99
		           ? (int)json_integer_value(v)
		           : -1;
	if (s != NULL && strlen(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9')
		return (s[0] - '0') * 10 + (s[1] - '0');
	return -1;
}

/* The password in the app's request body is wiped before the body goes. */
static void
app_wipe_password(json_t *body)
{
	const char *pw = json_string_value(json_object_get(body, "password"));

	if (pw != NULL)
		explicit_bzero((char *)pw, strlen(pw));
}

static void app_approve_finish(struct isso_app *app, struct http_req *req, json_t *body,
                               json_t *data, const char *uuid);

/* An optional string member: NULL when absent or "". */
static const char *
app_opt(json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(obj, key));

	return v != NULL && v[0] != '\0' ? v : NULL;
}

static bool
app_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

struct app_answer {
	json_t *body;
	const char *challenge;
	const char *nonce;
};

/* Does the signed payload say what the request says, for this challenge
 * and this challenge's nonce? (appsig_check has checked the device and
 * iat.) */
static bool
app_claims_match(json_t *claims, void *ctx)
{
	struct app_answer *a = ctx;
	json_t *body = a->body;
	const char *via = app_opt(body, "via"), *cvia = app_opt(claims, "via");

	return appsig_nonce_ok(claims, a->nonce) &&
	       app_same(json_string_value(json_object_get(claims, "challenge")), a->challenge) &&
	       app_same(app_opt(claims, "decision"), app_opt(body, "decision")) &&
	       app_same(cvia != NULL ? cvia : "scan", via != NULL ? via : "scan") &&
	       app_same(app_opt(claims, "organisation"), app_opt(body, "organisation")) &&
	       app_picked(claims) == app_picked(body);
}

/* POST /app/v1/qr/approve: the app's answer: challenge (or the QR text /
 * app link), device (the enrolled device's id), signature (a compact
 * ES256 JWS by that device's key whose payload repeats challenge, device,
 * decision, number, via and organisation, with the details' nonce and
 * iat), decision approve|deny, number (the one picked: required to
 * approve a scanned code), via "link" (the app was opened by the app link
 * on this phone: no number, and the reply carries the return_url to open
 * in the browser), organisation (統一編號) for an organisation login. An
 * account and password approve nothing. */
static void
app_approve_route(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *ch, *decision, *ubn, *via, *device, *sig, *error = NULL;
	json_t *body = app_request(req, app_fields), *data = NULL;
	struct app_answer answer;
	char uuid[37];
	bool approve, org_login, link;
	int picked, ret;

	if (body == NULL) {
		app_reply(req, 400, "error", "invalid_request");
		goto out;
	}
	ch = app_challenge(body);
	decision = json_string_value(json_object_get(body, "decision"));
	ubn = app_opt(body, "organisation");
	via = json_string_value(json_object_get(body, "via"));
	device = json_string_value(json_object_get(body, "device"));
	sig = json_string_value(json_object_get(body, "signature"));
	picked = app_picked(body);
	if (ch == NULL || decision == NULL ||
	    (strcmp(decision, "approve") != 0 && strcmp(decision, "deny") != 0) ||
	    (via != NULL && strcmp(via, "link") != 0 && strcmp(via, "scan") != 0)) {
		app_reply(req, 400, "error", "invalid_request");
		goto out;
	}
	/* The password no longer answers anything: only an enrolled device's
	 * signature does. */
	if (!is_token(device) || sig == NULL || sig[0] == '\0' || strlen(sig) > 4096) {
		log_info("tpapp_no_device_key", NULL);
		app_reply(req, 401, "error", "device_key_required");
		goto out;
	}
	approve = strcmp(decision, "approve") == 0;
	link = via != NULL && strcmp(via, "link") == 0;
	/* A scanned code is approved with the number the page shows. */
	if (approve && !link && picked < 0) {
		app_reply(req, 400, "error", "number_required");
		goto out;
	}
	if ((data = app_pending(app, req, "tpapp", ch)) == NULL)
		goto out;
	/* An organisation login is approved for a named organisation; a
	 * personal one never carries one (the app must not believe it acted
	 * for an organisation when it did not). */
	org_login = json_is_true(json_object_get(data, "org"));
	if (org_login && approve && (ubn == NULL || !idnum_is_ubn(ubn))) {
		app_reply(req, 400, "error", "organisation_required");
		goto out;
	}
	if (!org_login && ubn != NULL) {
		app_reply(req, 400, "error", "not_an_organisation_login");
		goto out;
	}
	answer.body = body;
	answer.challenge = ch;
	answer.nonce = json_string_value(json_object_get(data, "nonce"));
	ret = appsig_check(app, device, sig, app_claims_match, &answer, uuid, NULL, &error);
	if (ret == ISSO_ERR_DENIED) {
		app_reply(req, 401, "error", "unknown_device");
		goto out;
	}
	if (ret == ISSO_ERR_INVALID) {
		app_reply(req, 401, "error", "invalid_signature");
		goto out;
	}
	if (ret < 0) {
		app_reply(req, 503, "error", "unavailable");
		goto out;
	}
	app_approve_finish(app, req, body, data, uuid);
out:
	app_wipe_password(body);
	json_decref(body);
	json_decref(data);
}

/* ---- device enrolment: POST /app/v1/device/enrol ---- */

static const char *const enrol_fields[] = {"account", "password", "public_key", "name", NULL};

/* Longest device name kept (bytes of UTF-8). */
#define APP_DEVICE_NAME_MAX 64

/* An enrolment waiting for its password check. */
struct app_enrol {
	struct isso_app *app;
	char *jwk;  /* checked public key */
	char *name; /* may be "" */
};

/* A device name: printable, at most APP_DEVICE_NAME_MAX bytes; "" for
 * none. NULL when unfit. */
static const char *
app_device_name(json_t *body)
{
	json_t *v = json_object_get(body, "name");
	const char *s = json_string_value(v);

	if (v == NULL || json_is_null(v))
		return "";
	if (s == NULL || strlen(s) > APP_DEVICE_NAME_MAX)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return NULL;
	}
	return s;
}

static void app_enrol_checked(struct http_req *req, const struct member_auth_result *res,
                              void *ctx);

/* POST /app/v1/device/enrol (JSON or form): account, password,
 * public_key (an EC P-256 JWK; a form sends it as JSON text), name
 * (optional). Once the password is right (the login page's guess delays
 * apply), records the key as a new device of the member: 201 {device}. */
static void
app_enrol_route(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	json_t *body = app_request(req, enrol_fields), *key = NULL;
	const char *account, *password, *name, *error = NULL;
	struct app_enrol *st;
	char *jwk = NULL;

	if (body == NULL) {
		app_reply(req, 400, "error", "invalid_request");
		goto out;
	}
	account = json_string_value(json_object_get(body, "account"));
	password = json_string_value(json_object_get(body, "password"));
	name = app_device_name(body);
	key = json_incref(json_object_get(body, "public_key"));
	if (json_is_string(key)) {
		const char *text = json_string_value(key);
		json_t *parsed = strlen(text) <= 1024 ? json_loads(text, 0, NULL) : NULL;
		json_decref(key);
		key = parsed;
	}
	if (account == NULL || account[0] == '\0' || password == NULL || password[0] == '\0' ||
	    name == NULL) {
		app_reply(req, 400, "error", "invalid_request");
		goto out;
	}
	if (devkey_jwk_check(key, &jwk, &error) < 0) {
		log_info("tpapp_enrol_bad_key", "reason", error, NULL);
		app_reply(req, 400, "error", "invalid_key");
		goto out;
	}
	if (method_addr_limited(app, req, "tpapp-enrol")) {
		http_set_header(req, "Retry-After", "60");
		app_reply(req, 429, "error", "rate_limited");
		goto out;
	}
	st = pool_alloc(http_pool(req), sizeof(*st));
	st->app = app;
	st->jwk = jwk;
	st->name = xstrdup(name);
	jwk = NULL;
	member_authenticate(app, req, account, password, app_enrol_checked, st);
out:
	free(jwk);
	json_decref(key);
	app_wipe_password(body);
	json_decref(body);
}

/* Tells the member by SMS that a device was enrolled (a stolen password
 * that enrols the thief's phone does not go unnoticed). Best effort: the
 * enrolment stands either way. */
static void
app_enrol_notify(struct isso_app *app, const char *uuid)
{
	const struct i18n_catalog *zh = i18n_catalog(app->i18n, "zh-TW");
	json_t *pii = NULL;
	const char *phone;

	if (app->sms == NULL || person_pii(app, uuid, &pii) < 0 || pii == NULL)
		goto out;
	phone = json_string_value(json_object_get(pii, "phone"));
	if (phone != NULL && phone[0] != '\0' &&
	    notice_sms_queue(app, phone, i18n_get(zh, "tp.device_enrolled_sms")) < 0)
		log_warn("tpapp_enrol_notice_failed", NULL);
out:
	json_decref(pii);
}

/* Records the device once the password was right. */
static void
app_enrol_finish(struct isso_app *app, struct http_req *req, struct app_enrol *st, const char *uuid)
{
	struct store_device *list = NULL, d;
	size_t n = 0, in_use = 0;
	char id[44];
	int ret;

	if (store_device_list(app->store, uuid, 1000, &list, &n) < 0) {
		app_reply(req, 503, "error", "unavailable");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		in_use += list[i].revoked_at == 0;
	if (in_use >= STORE_DEVICES_MAX || n >= 1000) {
		log_info("tpapp_enrol_refused", "reason", "too_many_devices", NULL);
		app_reply(req, 409, "error", "too_many_devices");
		goto out;
	}
	secret_token(32, id);
	memset(&d, 0, sizeof(d));
	d.id = id;
	d.uuid = (char *)uuid;
	d.jwk = st->jwk;
	d.name = st->name;
	d.created_at = app_now();
	ret = store_device_add(app->store, &d);
	if (ret < 0) {
		app_reply(req, 503, "error", "unavailable");
		goto out;
	}
	store_audit_append(app->store, app_now(), "tpapp_device_enrolled",
	                   json_pack("{s:s, s:s}", "uuid", uuid, "device", id));
	log_info("tpapp_device_enrolled", NULL);
	app_enrol_notify(app, uuid);
	http_set_header(req, "Cache-Control", "no-store");
	http_send_json(req, 201, json_pack("{s:s}", "device", id));
out:
	store_device_list_free(list, n);
}

static void
app_enrol_checked(struct http_req *req, const struct member_auth_result *res, void *ctx)
{
	struct app_enrol *st = ctx;
	char retry[16];

	if (req == NULL)
		goto out;
	if (res->ret == ISSO_ERR_LIMIT) {
		http_set_busy(req);
		app_reply(req, 503, "error", "busy");
	} else if (res->ret < 0 || (res->wait <= 0 && !res->ok)) {
		app_reply(req, 401, "error", "invalid_credentials");
	} else if (res->wait > 0) {
		snprintf(retry, sizeof(retry), "%d", res->wait);
		http_set_header(req, "Retry-After", retry);
		app_reply(req, 429, "error", "slow_down");
	} else {
		app_enrol_finish(st->app, req, st, res->uuid);
	}
out:
	free(st->jwk);
	free(st->name);
	st->jwk = st->name = NULL;
}

/* The app's verified answer: the challenge is answered (approved, denied
 * or refused). */
static void
app_approve_finish(struct isso_app *app, struct http_req *req, json_t *body, json_t *data,
                   const char *uuid)
{
	const char *ch, *decision, *ubn, *via;
	struct store_org *org = NULL;
	char *role = NULL, *return_url = NULL;
	bool approve, found = false, org_login, refused = false;
	bool link, wrong_number = false;
	char code[44], code_hash[65];
	int uses = 0, picked;

	ch = app_challenge(body);
	decision = json_string_value(json_object_get(body, "decision"));
	ubn = json_string_value(json_object_get(body, "organisation"));
	via = json_string_value(json_object_get(body, "via"));
	picked = app_picked(body);
	if (ubn != NULL && ubn[0] == '\0')
		ubn = NULL;
	approve = strcmp(decision, "approve") == 0;
	link = via != NULL && strcmp(via, "link") == 0;
	org_login = json_is_true(json_object_get(data, "org"));
	/* A wrong pick ends this code: the citizen may be looking at someone
	 * else's screen. */
	if (approve && !link)
		wrong_number = picked != json_integer_value(json_object_get(data, "number"));
	if (org_login && approve && !wrong_number) {
		/* An unknown organisation and one the member does not belong to
		 * answer alike. */
		if (store_org_get(app->store, ubn, &org) < 0 ||
		    (org != NULL && store_org_member_role(app->store, ubn, uuid, &role) < 0)) {
			app_reply(req, 503, "error", "unavailable");
			goto out;
		}
		refused = org == NULL || role == NULL;
	}
	/* One answer per challenge, even from two phones at once. */
	if (store_eph_bump(app->store, APP_KIND, ch, app_now(), &uses) < 0 || uses != 1) {
		app_reply(req, uses < 0 ? 404 : 409, "error",
		          uses < 0 ? "expired" : "already_used");
		goto out;
	}
	json_object_set_new(data, "state",
	                    json_string(refused || wrong_number ? "refused"
	                                : approve               ? "approved"
	                                                        : "denied"));
	if (wrong_number)
		json_object_set_new(data, "reason", json_string("number"));
	else if (refused)
		json_object_set_new(data, "reason", json_string("organisation"));
	if (approve && !refused && !wrong_number) {
		json_object_set_new(data, "uuid", json_string(uuid));
		if (org != NULL)
			json_object_set_new(
			    data, "organisation",
			    json_pack("{s:s, s:s}", "ubn", org->ubn, "name", org->name));
		if (link) {
			const char *base = app->cfg->server.public_url;
			size_t n = strlen(base);

			while (n > 0 && base[n - 1] == '/')
				n--;
			secret_token(32, code);
			secret_sha256_hex(code, strlen(code), code_hash);
			json_object_set_new(data, "link", json_true());
			json_object_set_new(data, "return_hash", json_string(code_hash));
			return_url =
			    xasprintf("%.*s/login/taipeipass/app-return?t=%s&r=%s", (int)n, base,
			              json_string_value(json_object_get(data, "txn")), code);
			explicit_bzero(code, sizeof(code));
		}
	}
	if (store_eph_update(app->store, APP_KIND, ch, data, app_now(), &found) < 0 || !found) {
		app_reply(req, 404, "error", "expired");
		goto out;
	}
	if (wrong_number) {
		log_info("tpapp_wrong_number", NULL);
		app_reply(req, 403, "error", "wrong_number");
		goto out;
	}
	if (refused) {
		log_info("tpapp_org_refused", "ubn", ubn, NULL);
		app_reply(req, 403, "error", "not_a_member");
		goto out;
	}
	log_info("tpapp_answer", "decision", approve ? "approved" : "denied", "via",
	         link ? "link" : "scan", NULL);
	if (return_url != NULL) {
		http_set_header(req, "Cache-Control", "no-store");
		http_send_json(
		    req, 200,
		    json_pack("{s:s, s:s}", "result", "approved", "return_url", return_url));
		goto out;
	}
	app_reply(req, 200, "result", approve ? "approved" : "denied");
out:
	xfree_secret(return_url);
	store_org_free(org);
	free(role);
}

/* ---- registration ---- */

static void
register_page(struct isso_app *app, struct http_req *req, int status, const char *error_key,
              json_t *fields)
{
	json_t *ctx = fields != NULL ? json_deep_copy(fields) : json_object();
	const char *t = method_keep_txn(req);

	json_object_set_new(ctx, "csrf", json_string(csrf_token(req, &app->secrets, "tp-reg")));
	if (t != NULL)
		json_object_set_new(ctx, "txn", json_string(t));
	/* A tick survives an error on another field (passwords do not). */
	if (http_method(req) == HTTP_POST && http_form(req, "agree") != NULL)
		json_object_set_new(ctx, "agreed", json_true());
	set_error(app, req, ctx, error_key);
	page_notice(app, req, ctx, t, "taipeipass-register");
	page_render(app, req, status, "register", "tp.register_title", ctx);
}

/* The code step of a pending registration or reset (data: its "phone",
 * "otp_at" when its code was sent, "proven" once the code was right). */
static void
verify_page(struct isso_app *app, struct http_req *req, const char *tmpl, const char *purpose,
            const char *pending, json_t *data, int status, const char *error_key)
{
	const char *phone = json_string_value(json_object_get(data, "phone"));
	char masked[32];
	json_t *ctx =
	    json_pack("{s:s, s:s, s:s, s:i}", "csrf", csrf_token(req, &app->secrets, purpose),
	              "pending", pending, "phone_masked", log_mask(phone, masked), "cooldown",
	              otp_cooldown_left(app, phone));
	const char *t = method_keep_txn(req);

	const char *code = http_form(req, "code");

	if (t != NULL)
		json_object_set_new(ctx, "txn", json_string(t));
	/* The code's time left, for its timer; none once the code was
	 * proven (a reset that only needs a better password). */
	if (json_is_integer(json_object_get(data, "otp_at")) &&
	    !json_is_true(json_object_get(data, "proven"))) {
		json_int_t valid = json_integer_value(json_object_get(data, "otp_at")) +
		                   app->cfg->security.otp_ttl - app_now();
		if (valid > 0)
			json_object_set_new(ctx, "code_seconds", json_integer(valid));
	}
	if (error_key != NULL && strcmp(error_key, "otp.resent") == 0) {
		json_object_set_new(ctx, "info", json_string(page_text(app, req, error_key)));
		error_key = NULL;
	}
	/* The code survives an error on another field (a new password);
	 * it is only six digits the citizen typed, never a wrong one. */
	if (code != NULL && error_field(error_key) != NULL &&
	    strcmp(error_field(error_key), "code") != 0 && strlen(code) == OTP_DIGITS &&
	    strspn(code, "0123456789") == OTP_DIGITS)
		json_object_set_new(ctx, "code", json_string(code));
	set_error(app, req, ctx, error_key);
	page_render(app, req, status, tmpl, "otp.title", ctx);
}

static const char *
otp_error_key(int ret, int wait)
{
	if (ret == ISSO_ERR_LIMIT)
		return wait > 0 ? "otp.cooldown" : "otp.hourly_limit";
	return "otp.sms_failed";
}

static void
register_start(struct isso_app *app, struct http_req *req)
{
	const char *account = http_form(req, "account");
	const char *password = http_form(req, "password");
	const char *password2 = http_form(req, "password2");
	const char *phone_in = http_form(req, "phone");
	const char *email = http_form(req, "email");
	const char *name = http_form(req, "name");
	const char *problem = NULL;
	char phone[11], pending[44], otp_id[44], uuid[37];
	char *sealed = NULL;
	json_t *echo, *data = NULL;
	int wait = 0, ret;

	echo = json_pack("{s:s, s:s, s:s, s:s}", "account", account ?: "", "phone", phone_in ?: "",
	                 "email", email ?: "", "name", name ?: "");
	if (account == NULL || password == NULL || password2 == NULL || phone_in == NULL) {
		register_page(app, req, 400, "register.missing", echo);
		goto out;
	}
	if (http_form(req, "agree") == NULL) {
		register_page(app, req, 400, "register.must_agree", echo);
		goto out;
	}
	if (!phone_normalize(phone_in, phone)) {
		register_page(app, req, 400, "register.bad_phone", echo);
		goto out;
	}
	if (strcmp(password, password2) != 0) {
		register_page(app, req, 400, "password.mismatch", echo);
		goto out;
	}
	{
		/* Every field is checked before an SMS is spent on it. */
		struct member_new m = {.account = account,
		                       .password = password,
		                       .phone = phone,
		                       .email = email,
		                       .name = name};
		if ((problem = member_check(app, &m)) != NULL) {
			register_page(app, req, 400, problem, echo);
			goto out;
		}
	}
	if (method_addr_limited(app, req, "register")) {
		register_page(app, req, 429, "error.rate_limited", echo);
		goto out;
	}
	/* Whether the account name or the number is taken, the answer is
	 * this same SMS step: a number that already has an account gets a
	 * notice instead of a code, so the page tells a stranger nothing; a
	 * taken account name shows only once the number is proven (the code),
	 * and no step here does argon2 work for one case and not the other. */
	if (member_find_by_phone(app, phone, uuid) < 0) {
		register_page(app, req, 503, "error.unavailable", echo);
		goto out;
	}
	ret = otp_send(app, req, "register", phone, uuid[0] != '\0' ? "otp.sms_registered" : NULL,
	               OTP_DELIVER_NOW, otp_id, &wait);
	if (ret < 0) {
		register_page(app, req, ret == ISSO_ERR_LIMIT ? 429 : 503, otp_error_key(ret, wait),
		              echo);
		goto out;
	}
	if (secret_seal(&app->secrets, password, strlen(password), &sealed) < 0) {
		register_page(app, req, 503, "error.unavailable", echo);
		goto out;
	}
	secret_token(32, pending);
	data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "account", account, "phone", phone,
	                 "email", email ?: "", "name", name ?: "", "password", sealed, "otp",
	                 otp_id, "otp_at", (json_int_t)app_now());
	if (store_eph_put(app->store, "reg", pending, data, app_now() + PENDING_TTL) < 0) {
		register_page(app, req, 503, "error.unavailable", echo);
		goto out;
	}
	verify_page(app, req, "register-verify", "tp-reg", pending, data, 200, NULL);
out:
	json_decref(echo);
	free(sealed);
	json_decref(data);
}

/* Loads a pending registration or reset named by the "pending" field. */
static json_t *
pending_load(struct isso_app *app, struct http_req *req, const char *kind, const char **id_r)
{
	const char *id = http_form(req, "pending");
	json_t *data = NULL;

	*id_r = NULL;
	if (id == NULL || strlen(id) != 43)
		return NULL;
	if (store_eph_get(app->store, kind, id, app_now(), &data, NULL) < 0)
		return NULL;
	*id_r = id;
	return data;
}

static const char *
otp_result_key(enum otp_result r)
{
	switch (r) {
	case OTP_WRONG:
		return "otp.wrong";
	case OTP_EXHAUSTED:
		return "otp.exhausted";
	default:
		return "otp.expired";
	}
}

static void
done_page(struct isso_app *app, struct http_req *req, const char *title_key, const char *text_key)
{
	const char *t = method_keep_txn(req);
	json_t *ctx = json_pack("{s:s}", "message", page_text(app, req, text_key));

	json_object_set_new(ctx, "next_url",
	                    json_string(t != NULL ? flow_url(req, "/login/taipeipass", t) : "/"));
	page_render(app, req, 200, "done", title_key, ctx);
}

/* A reset's SMS: queued for a member (its timing and any gateway failure
 * must look like the no-account case), sent to nobody otherwise. */
static enum otp_delivery
reset_delivery(json_t *data)
{
	return json_is_true(json_object_get(data, "no_account")) ? OTP_DELIVER_NONE
	                                                         : OTP_DELIVER_QUEUED;
}

/* Resend for a pending registration or reset (after the cool-down). */
static void
resend(struct isso_app *app, struct http_req *req, const char *kind, const char *purpose,
       const char *tmpl, const char *pending, json_t *data)
{
	const char *phone = json_string_value(json_object_get(data, "phone"));
	const char *notice = NULL;
	char otp_id[44], uuid[37];
	int wait = 0, ret;

	if (strcmp(kind, "reg") == 0) {
		if (member_find_by_phone(app, phone, uuid) == 0 && uuid[0] != '\0')
			notice = "otp.sms_registered";
		ret = otp_send(app, req, "register", phone, notice, OTP_DELIVER_NOW, otp_id, &wait);
	} else {
		ret = otp_send(app, req, "reset", phone, NULL, reset_delivery(data), otp_id, &wait);
	}
	if (ret < 0) {
		verify_page(app, req, tmpl, purpose, pending, data,
		            ret == ISSO_ERR_LIMIT ? 429 : 503, otp_error_key(ret, wait));
		return;
	}
	json_object_set_new(data, "otp", json_string(otp_id));
	json_object_set_new(data, "otp_at", json_integer(app_now()));
	bool found = false;
	(void)store_eph_update(app->store, kind, pending, data, app_now(), &found);
	verify_page(app, req, tmpl, purpose, pending, data, 200, "otp.resent");
}

/* A registration whose SMS code is being checked, its password hashed
 * meanwhile. */
struct reg_check {
	struct isso_app *app;
	const char *pending;
	json_t *data;
	char *password;
};

/* The registration's second half, once the password is hashed: the code,
 * then the new member. */
static void
register_hashed(struct http_req *req, int hret, const char *hash, void *ctx)
{
	struct reg_check *rc = ctx;
	struct isso_app *app = rc->app;
	const char *code, *phone, *error_key = NULL;
	char uuid[37];
	enum otp_result r;
	int left = 0, ret;
	struct member_new m;

	if (req == NULL)
		goto out;
	code = http_form(req, "code");
	phone = json_string_value(json_object_get(rc->data, "phone"));
	if (hret == ISSO_ERR_LIMIT) {
		/* Nothing was checked: the same code works once more. */
		http_set_busy(req);
		verify_page(app, req, "register-verify", "tp-reg", rc->pending, rc->data, 503,
		            "tp.busy");
		goto out;
	}
	if (hret < 0) {
		(void)store_eph_delete(app->store, "reg", rc->pending);
		register_page(app, req, 400, "otp.expired", NULL);
		goto out;
	}
	if (otp_check(app, json_string_value(json_object_get(rc->data, "otp")), "register", phone,
	              code, &r, &left) < 0) {
		verify_page(app, req, "register-verify", "tp-reg", rc->pending, rc->data, 400,
		            "otp.wrong");
		goto out;
	}
	if (r != OTP_OK) {
		if (r == OTP_WRONG) {
			verify_page(app, req, "register-verify", "tp-reg", rc->pending, rc->data,
			            400, otp_result_key(r));
		} else {
			(void)store_eph_delete(app->store, "reg", rc->pending);
			register_page(app, req, 400, otp_result_key(r), NULL);
		}
		goto out;
	}
	(void)store_eph_delete(app->store, "reg", rc->pending);
	memset(&m, 0, sizeof(m));
	m.account = json_string_value(json_object_get(rc->data, "account"));
	m.phone = phone;
	m.email = json_string_value(json_object_get(rc->data, "email"));
	m.name = json_string_value(json_object_get(rc->data, "name"));
	m.password = rc->password;
	m.password_hash = hash;
	m.phone_verified = true; /* by the code just checked */
	ret = member_create(app, &m, uuid, &error_key);
	if (ret < 0) {
		/* Taken by a concurrent registration, or a field that the
		 * first page could not check (e-mail in use). */
		register_page(app, req, ret == ISSO_ERR_CONFLICT ? 409 : 400,
		              error_key != NULL ? error_key : "error.unavailable", NULL);
		goto out;
	}
	store_audit_append(app->store, app_now(), "member_registered",
	                   json_pack("{s:s}", "uuid", uuid));
	done_page(app, req, "tp.register_done_title", "tp.register_done");
out:
	xfree_secret(rc->password);
	rc->password = NULL;
	json_decref(rc->data);
	rc->data = NULL;
}

static void
register_verify(struct isso_app *app, struct http_req *req)
{
	const char *pending = NULL;
	json_t *data = pending_load(app, req, "reg", &pending);
	const char *code = http_form(req, "code");
	char *password = NULL;
	struct reg_check *rc;

	if (data == NULL) {
		register_page(app, req, 400, "otp.expired", NULL);
		goto out;
	}
	if (http_form(req, "resend") != NULL) {
		resend(app, req, "reg", "tp-reg", "register-verify", pending, data);
		goto out;
	}
	if (code == NULL) {
		verify_page(app, req, "register-verify", "tp-reg", pending, data, 400, "otp.wrong");
		goto out;
	}
	if (secret_open(&app->secrets, json_string_value(json_object_get(data, "password")),
	                &password) < 0) {
		(void)store_eph_delete(app->store, "reg", pending);
		register_page(app, req, 400, "otp.expired", NULL);
		goto out;
	}
	/* The password is hashed on the hashing pool while the code waits:
	 * each code tried costs one hash, as many as the code allows tries. */
	rc = pool_alloc(http_pool(req), sizeof(*rc));
	rc->app = app;
	rc->pending = pending;
	rc->data = data;
	rc->password = password;
	data = NULL;
	password = NULL;
	member_hash_password(req, rc->password, register_hashed, rc);
out:
	xfree_secret(password);
	json_decref(data);
}

static void
register_route(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;

	if (http_method(req) != HTTP_POST) {
		register_page(app, req, 200, NULL, NULL);
		return;
	}
	if (!csrf_check(req, &app->secrets, "tp-reg")) {
		register_page(app, req, 403, "error.csrf", NULL);
		return;
	}
	if (http_form(req, "pending") != NULL)
		register_verify(app, req);
	else
		register_start(app, req);
}

/* ---- forgotten password ---- */

static void
forgot_page(struct isso_app *app, struct http_req *req, int status, const char *error_key)
{
	const char *t = method_keep_txn(req);
	json_t *ctx = json_pack("{s:s}", "csrf", csrf_token(req, &app->secrets, "tp-forgot"));

	const char *phone = http_form(req, "phone");

	if (t != NULL)
		json_object_set_new(ctx, "txn", json_string(t));
	if (phone != NULL && strlen(phone) <= 16)
		json_object_set_new(ctx, "phone", json_string(phone));
	set_error(app, req, ctx, error_key);
	page_render(app, req, status, "forgot", "tp.forgot_title", ctx);
}

static void
forgot_start(struct isso_app *app, struct http_req *req)
{
	const char *phone_in = http_form(req, "phone");
	char phone[11], uuid[37], otp_id[44], pending[44];
	json_t *data = NULL;
	int wait = 0, ret;

	if (phone_in == NULL || !phone_normalize(phone_in, phone)) {
		forgot_page(app, req, 400, "register.bad_phone");
		return;
	}
	if (method_addr_limited(app, req, "forgot")) {
		forgot_page(app, req, 429, "error.rate_limited");
		return;
	}
	if (member_find_by_phone(app, phone, uuid) < 0) {
		forgot_page(app, req, 503, "error.unavailable");
		return;
	}
	data = json_pack("{s:s, s:b}", "phone", phone, "no_account", uuid[0] == '\0');
	ret = otp_send(app, req, "reset", phone, NULL, reset_delivery(data), otp_id, &wait);
	if (ret < 0) {
		json_decref(data);
		forgot_page(app, req, ret == ISSO_ERR_LIMIT ? 429 : 503, otp_error_key(ret, wait));
		return;
	}
	secret_token(32, pending);
	json_object_set_new(data, "otp", json_string(otp_id));
	json_object_set_new(data, "otp_at", json_integer(app_now()));
	if (store_eph_put(app->store, "reset", pending, data, app_now() + PENDING_TTL) < 0) {
		forgot_page(app, req, 503, "error.unavailable");
		json_decref(data);
		return;
	}
	verify_page(app, req, "forgot-verify", "tp-forgot", pending, data, 200, NULL);
	json_decref(data);
}

/* Tells the member by SMS, on the number the reset was proven with, that
 * the password changed and earlier logins ended, so a reset the member did
 * not make (a SIM swap) does not go unnoticed. A store job (notice.h), so
 * it is sent even when this node dies first. iSSO has no e-mail sender:
 * members with an e-mail address get the SMS only. */
static void
reset_notify(struct isso_app *app, const char *phone)
{
	const struct i18n_catalog *zh = i18n_catalog(app->i18n, "zh-TW");

	if (notice_sms_queue(app, phone, i18n_get(zh, "tp.reset_notice_sms")) < 0)
		log_warn("reset_notice_failed", NULL);
}

/* A password reset whose SMS code is being checked, the new password
 * hashed meanwhile. */
struct reset_check {
	struct isso_app *app;
	const char *pending;
	json_t *data;
};

/* The reset's second half, once the new password is hashed. */
static void
forgot_hashed(struct http_req *req, int hret, const char *hash, void *ctx)
{
	struct reset_check *fc = ctx;
	struct isso_app *app = fc->app;
	const char *pending = fc->pending, *code, *password, *phone, *problem;
	json_t *data = fc->data;
	char uuid[37], *account = NULL, *email = NULL;
	enum otp_result r = OTP_EXPIRED;
	int left = 0;
	bool found = false;

	if (req == NULL)
		goto out;
	code = http_form(req, "code");
	password = http_form(req, "password");
	phone = json_string_value(json_object_get(data, "phone"));
	if (hret == ISSO_ERR_LIMIT) {
		/* Nothing was checked: the same code works once more. */
		http_set_busy(req);
		verify_page(app, req, "forgot-verify", "tp-forgot", pending, data, 503, "tp.busy");
		goto out;
	}
	if (hret < 0) {
		verify_page(app, req, "forgot-verify", "tp-forgot", pending, data, 400,
		            "password.too_short");
		goto out;
	}
	/* A reset whose code was right but whose password contained the
	 * member's own words goes on without a second code. */
	if (!json_is_true(json_object_get(data, "proven")) &&
	    (code == NULL ||
	     otp_check(app, json_string_value(json_object_get(data, "otp")), "reset", phone, code,
	               &r, &left) < 0 ||
	     r != OTP_OK)) {
		if (r == OTP_EXHAUSTED || r == OTP_EXPIRED) {
			(void)store_eph_delete(app->store, "reset", pending);
			forgot_page(app, req, 400, otp_result_key(r));
		} else {
			verify_page(app, req, "forgot-verify", "tp-forgot", pending, data, 400,
			            "otp.wrong");
		}
		goto out;
	}
	if (member_find_by_phone(app, phone, uuid) < 0 || uuid[0] == '\0') {
		(void)store_eph_delete(app->store, "reset", pending);
		forgot_page(app, req, 400, "otp.expired");
		goto out;
	}
	(void)member_context(app, uuid, &account, &email);
	{
		const char *context[] = {phone, account, email, NULL};
		if ((problem = member_password_problem(app, password, context)) != NULL) {
			json_object_set_new(data, "proven", json_true());
			if (store_eph_update(app->store, "reset", pending, data, app_now(),
			                     &found) < 0 ||
			    !found) {
				forgot_page(app, req, 400, "otp.expired");
				goto out;
			}
			verify_page(app, req, "forgot-verify", "tp-forgot", pending, data, 400,
			            "password.context_proven");
			goto out;
		}
	}
	(void)store_eph_delete(app->store, "reset", pending);
	if (member_set_password_hash(app, uuid, hash) < 0) {
		forgot_page(app, req, 400, "otp.expired");
		goto out;
	}
	/* Whoever held the old password loses what it gave them, the app
	 * devices enrolled with it included. */
	(void)store_token_revoke_person(app->store, uuid);
	(void)store_device_revoke(app->store, uuid, NULL, app_now(), NULL);
	(void)flow_sessions_end_person(app, uuid);
	/* This browser proved the member's phone: it may skip the delays
	 * strangers' guesses put on the account. */
	throttle_trust_browser(app, req, uuid);
	store_audit_append(app->store, app_now(), "password_reset",
	                   json_pack("{s:s}", "uuid", uuid));
	reset_notify(app, phone);
	done_page(app, req, "tp.reset_done_title", "tp.reset_done");
out:
	free(account);
	free(email);
	json_decref(data);
	fc->data = NULL;
}

static void
forgot_verify(struct isso_app *app, struct http_req *req)
{
	const char *pending = NULL;
	json_t *data = pending_load(app, req, "reset", &pending);
	const char *code = http_form(req, "code");
	const char *password = http_form(req, "password");
	const char *password2 = http_form(req, "password2");
	const char *phone, *problem;
	struct reset_check *fc;

	if (data == NULL) {
		forgot_page(app, req, 400, "otp.expired");
		goto out;
	}
	phone = json_string_value(json_object_get(data, "phone"));
	if (http_form(req, "resend") != NULL) {
		resend(app, req, "reset", "tp-forgot", "forgot-verify", pending, data);
		goto out;
	}
	if (password == NULL || password2 == NULL || strcmp(password, password2) != 0) {
		verify_page(app, req, "forgot-verify", "tp-forgot", pending, data, 400,
		            "password.mismatch");
		goto out;
	}
	/* Before the code, only what the requester typed counts as context:
	 * the member's own words would tell a stranger about the account. */
	{
		const char *context[] = {phone, NULL};
		if ((problem = member_password_problem(app, password, context)) != NULL) {
			verify_page(app, req, "forgot-verify", "tp-forgot", pending, data, 400,
			            problem);
			goto out;
		}
	}
	if (!json_is_true(json_object_get(data, "proven")) && code == NULL) {
		verify_page(app, req, "forgot-verify", "tp-forgot", pending, data, 400,
		            "otp.wrong");
		goto out;
	}
	/* The new password is hashed on the hashing pool while the code
	 * waits: each code tried costs one hash, as many as the code allows. */
	fc = pool_alloc(http_pool(req), sizeof(*fc));
	fc->app = app;
	fc->pending = pending;
	fc->data = data;
	data = NULL;
	member_hash_password(req, password, forgot_hashed, fc);
out:
	json_decref(data);
}

static void
forgot_route(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;

	if (http_method(req) != HTTP_POST) {
		forgot_page(app, req, 200, NULL);
		return;
	}
	if (!csrf_check(req, &app->secrets, "tp-forgot")) {
		forgot_page(app, req, 403, "error.csrf");
		return;
	}
	if (http_form(req, "pending") != NULL)
		forgot_verify(app, req);
	else
		forgot_start(app, req);
}

static void
routes(struct isso_app *app, struct http_server *srv)
{
	http_route(srv, HTTP_GET | HTTP_POST, "/taipeipass/register", register_route, app);
	http_route(srv, HTTP_GET | HTTP_POST, "/taipeipass/forgot", forgot_route, app);
	http_route(srv, HTTP_POST, "/app/v1/device/enrol", app_enrol_route, app);
	http_route(srv, HTTP_POST, "/app/v1/qr/details", app_details_route, app);
	http_route(srv, HTTP_POST, "/app/v1/qr/approve", app_approve_route, app);
}
