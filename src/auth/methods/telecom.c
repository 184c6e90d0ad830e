/* Method telecom (手機電信驗證): the carrier confirms that the national ID
 * and birthdate typed are those of the holder of the mobile number, and
 * the phone proves it holds the number by opening a one-time link over
 * the carrier's own mobile network.
 *
 *   ""      the privacy notice with the step-1 form: ID, number,
 *           birthdate, carrier, terms accepted → an SMS code to that number
 *   code    step 2: the code sent to the step-1 number (fixed, not
 *           editable: the number the carrier checks is the one proven)
 *           → then the carrier check (conn_telecom_start)
 *   qr      step 3: the link as a QR code, with the 37 s countdown; the
 *           page polls "status" (JSON) and moves on by itself; a refusal,
 *           an expiry or a failure shows here
 *   status  JSON for the page's script; asks the carrier at most once
 *           every POLL_MS per transaction
 *   done    the confirmed login handed to the flow (then consent)
 *
 * The SMS step uses otp.h directly rather than the shared otp_step():
 * the number is fixed by step 1 and the carrier check must follow the
 * code at once, so the page has no number field to refuse.
 *
 * The progress lives in the login transaction under "telecom":
 *   stage    "code" | "check" | "proven" | "done"
 *   phone    the step-1 number (normalised); carrier its carrier id
 *   who      sealed {"id_number", "birthdate"} (PII at rest)
 *   otp_at   when the code was sent (its timer on the code page)
 *   otp      the SMS challenge id (stage code)
 *   proven   the number proven by SMS in this transaction: a corrected
 *            form with the same number goes straight to the carrier
 *   ver      {id, link (sealed), exp}: the carrier's pending verification
 *   polled   when the carrier was last asked (Unix ms); seen: its last
 *            answer while pending ("pending" | "wifi" | "other_number")
 *   outcome  why there is no verification to show: a refusal name
 *            (telecom_refusal_name), "limited", "expired", "busy", "error"
 *   uuid     the person, once confirmed
 *
 * Each accepted start confirms a birthdate to whoever typed it, so starts
 * are limited per number and per national ID (lookup hashes) and per
 * address, and a transaction never holds two pending verifications. The
 * national ID and birthdate never reach a log; the number only masked. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "auth/otp.h"
#include "auth/page.h"
#include "auth/person.h"
#include "auth/qr.h"
#include "conn/conn-service.h"
#include "conn/telecom.h"
#include "http/csrf.h"
#include "lib/birthdate.h"
#include "lib/config.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/pool.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define STATE_KEY   "telecom"
#define CSRF_FORM   "tel-form"
#define CSRF_CODE   "tel-code"
#define CSRF_QR     "tel-qr"
#define OTP_PURPOSE "telecom"
/* Carrier checks (starts) per number and per national ID in LIMIT_WINDOW:
 * enough for a citizen who mistypes, too few to walk through birthdates. */
#define LIMIT_WINDOW     3600
#define STARTS_PER_PHONE 5
#define STARTS_PER_ID    5
/* The carrier is asked about a verification at most this often per
 * transaction, however often the page (or anyone) asks us. */
#define POLL_MS 2000
/* How long after the window a "pending" answer still counts (clock
 * differences with the carrier), in seconds. */
#define EXPIRY_GRACE 3

static const char *const amr_tel[] = {"sms", "otp", "mca", "mfa", NULL};
static const char *const bullets[] = {"tel.bullet1", "tel.bullet2", "tel.bullet3", NULL};
static const char *const step_keys[] = {"tel.step1", "tel.step2", "tel.step3", NULL};
static const char *const reminder_keys[] = {"tel.remind1", "tel.remind2", "tel.remind3",
                                            "tel.remind4", NULL};

static void form_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void code_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void qr_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void status_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void done_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);

static const struct method_step steps[] = {
    {"", HTTP_GET | HTTP_POST, 0, form_step}, {"code", HTTP_GET | HTTP_POST, 0, code_step},
    {"qr", HTTP_GET | HTTP_POST, 0, qr_step}, {"status", HTTP_GET, METHOD_STEP_JSON, status_step},
    {"done", HTTP_GET, 0, done_step},         {NULL, 0, 0, NULL},
};

/* Vouches the ID, the number and the birthdate it had the carrier check;
 * a linked TaipeiPass member's other data flows through
 * linked_member_data (歸戶 by the national ID). */
static int tel_init(struct isso_app *app, bool build, struct method_setup *setup,
                    const char **error_r);
static void tel_free(void *state);

const struct method method_telecom = {
    .id = "telecom",
    .loa = LOA_SUBSTANTIAL,
    .amr = amr_tel,
    .vouches = CLAIM_UUID | CLAIM_ID_NUMBER | CLAIM_PHONE | CLAIM_BIRTHDATE,
    .linked_member_data = true,
    .title_key = "tel.title",
    .bullet_keys = bullets,
    .register_path = NULL,
    .init = tel_init,
    .free = tel_free,
    .steps = steps,
    /* A login that asks for more than this method reaches is refused
     * before any SMS or carrier check is spent on it. */
    .refuse_above_loa = true,
    .routes = NULL,
};

/* [telecom]: the carriers' aggregator. No working defaults: without a
 * url the method is not offered. */
struct tel_settings {
	char *mode;      /* "sim" | "http" */
	char *url;       /* verification API base (/v1/verifications appended) */
	char *client_id; /* our account at the carriers' aggregator */
	char *secret;
	int timeout_ms; /* 5000 */
	int window;     /* seconds to open the link on the phone, 37 */
};

#define TEL_OPT(key, type, field, def, lo, hi, secret)                                             \
	{                                                                                          \
		key, type, offsetof(struct tel_settings, field), def, lo, hi, secret               \
	}

static const struct config_option tel_options[] = {
    TEL_OPT("mode", CONFIG_OPT_STRING, mode, "http", 0, 0, false),
    TEL_OPT("url", CONFIG_OPT_URL, url, "", 0, 0, false),
    TEL_OPT("client_id", CONFIG_OPT_STRING, client_id, "", 0, 0, false),
    TEL_OPT("secret", CONFIG_OPT_STRING, secret, "", 0, 0, true),
    TEL_OPT("timeout_ms", CONFIG_OPT_INT, timeout_ms, "5000", 100, 600000, false),
    TEL_OPT("window", CONFIG_OPT_INT, window, "37", 10, 300, false),
    {NULL, 0, 0, NULL, 0, 0, false},
};

/* What the handlers use, built at start-up. */
struct tel_state {
	struct conn_telecom *conn;
	int window;
};

static int
tel_init(struct isso_app *app, bool build, struct method_setup *setup, const char **error_r)
{
	struct tel_settings s = {0};
	struct conn_service svc;
	struct tel_state *st;
	int ret = config_section_parse(app->cfg, "telecom", tel_options, &s, error_r);

	if (ret < 0)
		return ret;
	svc = (struct conn_service){"telecom",   s.mode,   s.url,   "client_id",
	                            s.client_id, "secret", s.secret};
	ret = conn_service_check(app->cfg, &svc, error_r);
	if (ret < 0 || !build)
		goto out;
	if (s.url[0] == '\0')
		method_setup_unset(setup->unset, sizeof(setup->unset), "telecom.url");
	if (app->sms == NULL)
		method_setup_unset(setup->unset, sizeof(setup->unset), "sms.url");
	if (s.url[0] == '\0' || (ret = conn_service_usable(&svc, error_r)) < 0)
		goto out;
	st = xcalloc(1, sizeof(*st));
	st->window = s.window;
	st->conn = conn_telecom_new(s.url, s.client_id, s.secret, s.timeout_ms);
	if (st->conn == NULL) {
		free(st);
		*error_r = "telecom: bad url or credentials";
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	setup->state = st;
out:
	config_section_free(tel_options, &s);
	return ret;
}

static void
tel_free(void *state)
{
	struct tel_state *st = state;

	conn_telecom_free(st->conn);
	free(st);
}

static const struct tel_state *
tel_state(const struct isso_app *app)
{
	return method_state_of(app, &method_telecom);
}

/* Outcomes without a verification to show, with their page. */
static const struct outcome_view {
	const char *name;
	const char *title_key;
	const char *message_key;
	int status;
	const char *fix_key; /* button back to the form, or NULL */
	bool restart;        /* offers a new link (POST restart) */
} outcome_views[] = {
    {"mismatch", "tel.refused_title", "tel.mismatch", 403, "tel.fix", false},
    {"prepaid", "tel.unsupported_title", "tel.prepaid", 403, "tel.use_other_number", false},
    {"foreign", "tel.unsupported_title", "tel.foreign", 403, "tel.use_other_number", false},
    {"corporate", "tel.unsupported_title", "tel.corporate", 403, "tel.use_other_number", false},
    {"restricted", "tel.unsupported_title", "tel.restricted", 403, "tel.use_other_number", false},
    {"wrong_carrier", "tel.refused_title", "tel.wrong_carrier", 403, "tel.choose_carrier", false},
    {"unknown_number", "tel.refused_title", "tel.unknown_number", 403, "tel.fix", false},
    {"other", "tel.refused_title", "tel.refused_other", 403, "tel.fix", false},
    {"limited", "tel.limited_title", "tel.limited", 429, NULL, false},
    {"expired", "tel.expired_title", "tel.expired", 200, NULL, true},
    {"busy", "tel.error_title", "tel.busy", 503, NULL, true},
    {"error", "tel.error_title", "tel.error", 503, NULL, false},
};

static const struct outcome_view *
outcome_find(const char *name)
{
	for (size_t i = 0; name != NULL && i < ISSO_N_ELEMENTS(outcome_views); i++) {
		if (strcmp(outcome_views[i].name, name) == 0)
			return &outcome_views[i];
	}
	return NULL;
}

static const char *
sget(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static bool
stage_is(json_t *st, const char *stage)
{
	const char *s = sget(st, "stage");

	return s != NULL && strcmp(s, stage) == 0;
}

/* Counts one carrier check for value (a number or an ID, by its keyed
 * lookup hash); true when over max in the window, or when the store
 * cannot count (fail closed). */
static bool
start_limited(struct isso_app *app, const char *domain, const char *value, int max)
{
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "tel-%s", domain);
	return method_value_limited(app, prefix, domain, value, LIMIT_WINDOW, max);
}

/* The context every page of the method shares. */
static json_t *
base_ctx(struct isso_app *app, struct http_req *req, const char *id, int current)
{
	json_t *ctx =
	    json_pack("{s:s, s:s, s:s}", "txn", id, "back_url", flow_url(req, "/login", id),
	              "form_url", flow_url(req, "/login/telecom", id));

	if (current >= 0)
		json_object_set_new(ctx, "steps", method_steps(app, req, step_keys, current));
	/* isso.js: focus on errors, countdowns, polling, no double submit. */
	json_object_set_new(ctx, "script", json_true());
	return ctx;
}

static void
set_text(struct isso_app *app, struct http_req *req, json_t *ctx, const char *name, const char *key)
{
	if (key != NULL)
		json_object_set_new(ctx, name, json_string(page_text(app, req, key)));
}

/* A step asked for before the earlier one succeeded. */
static void
refuse_order(struct isso_app *app, struct http_req *req, const char *id)
{
	page_error(app, req, 403, "tel.order_title", "tel.order",
	           flow_url(req, "/login/telecom", id));
}

/* Opens the sealed ID and birthdate of st into *who_r (the caller
 * json_decref()s it; its strings are secrets but short-lived). */
static int
who_open(struct isso_app *app, json_t *st, json_t **who_r)
{
	const char *sealed = sget(st, "who");
	char *text = NULL;
	json_t *who;

	*who_r = NULL;
	if (sealed == NULL || secret_open(&app->secrets, sealed, &text) < 0)
		return ISSO_ERR_CRYPTO;
	who = json_loads(text, 0, NULL);
	xfree_secret(text);
	if (!json_is_string(json_object_get(who, "id_number")) ||
	    !json_is_string(json_object_get(who, "birthdate"))) {
		json_decref(who);
		return ISSO_ERR_CRYPTO;
	}
	*who_r = who;
	return 0;
}

/* Is a verification of st still within its window? */
static bool
ver_alive(json_t *st)
{
	json_t *ver = json_object_get(st, "ver");

	return ver != NULL &&
	       app_now() <= json_integer_value(json_object_get(ver, "exp")) + EXPIRY_GRACE;
}

/* Seconds the countdown shows (0 once the window passed). */
static int
seconds_left(json_t *st)
{
	int64_t left =
	    json_integer_value(json_object_get(json_object_get(st, "ver"), "exp")) - app_now();

	return left > 0 ? (int)left : 0;
}

/* Today's date in Taiwan (UTC+8, no daylight saving), "YYYY-MM-DD". */
static const char *
today_taipei(char out[11])
{
	time_t now = time(NULL) + 8 * 3600;
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
	return out;
}

/* The birthdate as typed (西元 or 民國 year, lib/birthdate.h) into out, a
 * real date between 1900-01-01 and today (Taiwan time); NULL, or the
 * message key saying what to type instead. */
static const char *
birthdate_normalize(const char *s, char out[11])
{
	char today[11];

	switch (date_parse_typed(s, today_taipei(today), out)) {
	case DATE_OK:
		return NULL;
	case DATE_INVALID:
		return "tel.birthdate_invalid";
	case DATE_FUTURE:
		return "tel.birthdate_future";
	case DATE_TOO_EARLY:
		return "tel.birthdate_too_early";
	default:
		return "tel.bad_birthdate";
	}
}

/* ---- step 1: the notice and the form ---- */

/* errors: {field: message key}; echo: the typed values to show again. */
static void
form_page(struct isso_app *app, struct http_req *req, const char *id, int status,
          const char *error_key, json_t *errors, json_t *echo)
{
	json_t *ctx = base_ctx(app, req, id, 0);
	json_t *carriers = json_array();
	const char *chosen = sget(echo, "carrier");
	const char *lang = http_locale(req);
	bool en = lang != NULL && strncmp(lang, "en", 2) == 0;

	json_object_set_new(ctx, "csrf", json_string(csrf_token(req, &app->secrets, CSRF_FORM)));
	for (const struct telecom_carrier *c = telecom_carriers; c->id != NULL; c++) {
		json_t *o = json_pack("{s:s, s:s}", "id", c->id, "name", en ? c->name_en : c->name);
		if (chosen != NULL && strcmp(chosen, c->id) == 0)
			json_object_set_new(o, "selected", json_true());
		json_array_append_new(carriers, o);
	}
	json_object_set_new(ctx, "carriers", carriers);
	if (echo != NULL)
		json_object_update(ctx, echo);
	/* Field errors in form order, each linked from the summary. */
	static const char *const order[] = {"id_number", "phone", "birthdate",
	                                    "carrier",   "agree", NULL};
	page_form_error(app, req, ctx, error_key, errors, order);
	page_notice(app, req, ctx, id, "telecom");
	page_render(app, req, status, "telecom-form", "tel.heading", ctx);
}

/* The values a form page shows again: what was typed (bounded), or, on a
 * fresh visit, the number and carrier of this transaction. */
static json_t *
form_echo(struct http_req *req, json_t *st)
{
	json_t *echo = json_object();
	static const struct {
		const char *name;
		size_t max;
	} typed[] = {{"id_number", 16}, {"phone", 16}, {"birthdate", 64}, {"carrier", 8}};

	if (http_method(req) == HTTP_POST) {
		for (size_t i = 0; i < ISSO_N_ELEMENTS(typed); i++) {
			const char *v = http_form(req, typed[i].name);
			if (v != NULL && strlen(v) <= typed[i].max)
				json_object_set_new(echo, typed[i].name, json_string(v));
		}
		if (http_form(req, "agree") != NULL)
			json_object_set_new(echo, "agreed", json_true());
	} else if (st != NULL) {
		if (sget(st, "phone") != NULL)
			json_object_set_new(echo, "phone", json_string(sget(st, "phone")));
		if (sget(st, "carrier") != NULL)
			json_object_set_new(echo, "carrier", json_string(sget(st, "carrier")));
	}
	return echo;
}

static void do_start(struct isso_app *app, struct http_req *req, const char *id, json_t *txn,
                     json_t *st);

static const char *
send_error_key(int ret, int wait)
{
	if (ret == ISSO_ERR_LIMIT)
		return wait > 0 ? "otp.cooldown" : "otp.hourly_limit";
	return "otp.sms_failed";
}

static void
form_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st = method_state(txn, STATE_KEY), *errors = NULL, *echo = NULL, *fresh = NULL,
	       *who = NULL;
	const struct telecom_carrier *carrier = NULL;
	const char *old_phone, *old_stage, *proven, *problem;
	char idn[11] = "", phone[11] = "", birth[11] = "", otp_id[44], *text = NULL, *sealed = NULL;
	int wait = 0, ret;

	echo = form_echo(req, st);
	if (http_method(req) != HTTP_POST) {
		form_page(app, req, id, 200, NULL, NULL, echo);
		goto out;
	}
	if (!csrf_check(req, &app->secrets, CSRF_FORM)) {
		form_page(app, req, id, 403, "error.csrf", NULL, echo);
		goto out;
	}
	errors = json_object();
	if (!idnum_normalize(http_form(req, "id_number") ?: "", idn) || !idnum_is_valid(idn))
		json_object_set_new(errors, "id_number", json_string("tel.bad_id"));
	if (!phone_normalize(http_form(req, "phone") ?: "", phone))
		json_object_set_new(errors, "phone", json_string("tel.bad_phone"));
	if ((problem = birthdate_normalize(http_form(req, "birthdate"), birth)) != NULL)
		json_object_set_new(errors, "birthdate", json_string(problem));
	carrier = telecom_carrier_find(http_form(req, "carrier"));
	if (carrier == NULL)
		json_object_set_new(errors, "carrier", json_string("tel.bad_carrier"));
	if (http_form(req, "agree") == NULL)
		json_object_set_new(errors, "agree", json_string("tel.must_agree"));
	if (json_object_size(errors) > 0) {
		form_page(app, req, id, 400, NULL, errors, echo);
		goto out;
	}
	/* Never two pending checks in one transaction. */
	if (ver_alive(st) && json_object_get(st, "outcome") == NULL) {
		form_page(app, req, id, 409, "tel.busy_pending", NULL, echo);
		goto out;
	}
	if (method_addr_limited(app, req, "tel-form")) {
		form_page(app, req, id, 429, "error.rate_limited", NULL, echo);
		goto out;
	}
	who = json_pack("{s:s, s:s}", "id_number", idn, "birthdate", birth);
	text = json_dumps(who, JSON_COMPACT);
	if (text == NULL || secret_seal(&app->secrets, text, strlen(text), &sealed) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
	/* A new form starts the method over; only a number already proven by
	 * SMS in this transaction, and a code still waiting for the same
	 * number, carry over. */
	old_phone = sget(st, "phone");
	old_stage = sget(st, "stage");
	proven = sget(st, "proven");
	fresh = json_pack("{s:s, s:s, s:s}", "phone", phone, "carrier", carrier->id, "who", sealed);
	if (proven != NULL && strcmp(proven, phone) == 0) {
		json_object_set_new(fresh, "proven", json_string(phone));
		json_object_set_new(fresh, "stage", json_string("check"));
		json_object_set(txn, STATE_KEY, fresh);
		do_start(app, req, id, txn, fresh);
		goto out;
	}
	if (old_stage != NULL && strcmp(old_stage, "code") == 0 && old_phone != NULL &&
	    strcmp(old_phone, phone) == 0 && sget(st, "otp") != NULL) {
		json_object_set_new(fresh, "otp", json_string(sget(st, "otp")));
		if (json_is_integer(json_object_get(st, "otp_at")))
			json_object_set(fresh, "otp_at", json_object_get(st, "otp_at"));
	} else {
		ret = otp_send(app, req, OTP_PURPOSE, phone, NULL, OTP_DELIVER_NOW, otp_id, &wait);
		if (ret < 0) {
			form_page(app, req, id, ret == ISSO_ERR_LIMIT ? 429 : 503,
			          send_error_key(ret, wait), NULL, echo);
			goto out;
		}
		json_object_set_new(fresh, "otp", json_string(otp_id));
		json_object_set_new(fresh, "otp_at", json_integer(app_now()));
	}
	json_object_set_new(fresh, "stage", json_string("code"));
	json_object_set(txn, STATE_KEY, fresh);
	if (!method_txn_save(app, req, id, txn))
		goto out;
	/* Post/redirect/get: a reload sends no second SMS. */
	http_redirect(req, 303, flow_url(req, "/login/telecom/code", id));
out:
	xfree_secret(text);
	free(sealed);
	json_decref(who);
	json_decref(fresh);
	json_decref(errors);
	json_decref(echo);
	explicit_bzero(idn, sizeof(idn));
	explicit_bzero(birth, sizeof(birth));
}

/* ---- step 2: the SMS code ---- */

static void
code_page(struct isso_app *app, struct http_req *req, const char *id, json_t *st, int status,
          const char *error_key, const char *info_key)
{
	json_t *ctx = base_ctx(app, req, id, 1);
	const char *phone = sget(st, "phone");
	char masked[32];
	int left = otp_cooldown_left(app, phone);

	json_object_set_new(ctx, "csrf", json_string(csrf_token(req, &app->secrets, CSRF_CODE)));
	json_object_set_new(ctx, "phone_masked", json_string(log_mask(phone, masked)));
	json_object_set_new(ctx, "cooldown", json_integer(left));
	if (left > 0)
		json_object_set_new(ctx, "cooling", json_true());
	/* The code's time left, for its timer (otp-timer partial). */
	if (json_is_integer(json_object_get(st, "otp_at"))) {
		json_int_t valid = json_integer_value(json_object_get(st, "otp_at")) +
		                   app->cfg->security.otp_ttl - app_now();
		if (valid > 0)
			json_object_set_new(ctx, "code_seconds", json_integer(valid));
	}
	if (error_key != NULL &&
	    (strcmp(error_key, "otp.wrong") == 0 || strcmp(error_key, "tel.code_missing") == 0))
		page_field_error(app, req, ctx, "code", error_key);
	else
		page_form_error(app, req, ctx, error_key, NULL, NULL);
	set_text(app, req, ctx, "info", info_key);
	page_render(app, req, status, "telecom-code", "tel.heading", ctx);
}

static void
code_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st = method_state(txn, STATE_KEY);
	const char *phone = sget(st, "phone"), *action, *code;
	enum otp_result r = OTP_EXPIRED;
	char otp_id[44];
	int wait = 0, left = 0, ret;

	if (stage_is(st, "check") || stage_is(st, "proven")) {
		/* Already past this step. */
		http_redirect(req, 303, flow_url(req, "/login/telecom/qr", id));
		return;
	}
	if (!stage_is(st, "code") || phone == NULL || sget(st, "otp") == NULL) {
		refuse_order(app, req, id);
		return;
	}
	if (http_method(req) != HTTP_POST) {
		code_page(app, req, id, st, 200, NULL, NULL);
		return;
	}
	if (!csrf_check(req, &app->secrets, CSRF_CODE)) {
		code_page(app, req, id, st, 403, "error.csrf", NULL);
		return;
	}
	action = http_form(req, "action");
	if (action != NULL && strcmp(action, "resend") == 0) {
		ret = otp_send(app, req, OTP_PURPOSE, phone, NULL, OTP_DELIVER_NOW, otp_id, &wait);
		if (ret < 0) {
			code_page(app, req, id, st, ret == ISSO_ERR_LIMIT ? 429 : 503,
			          send_error_key(ret, wait), NULL);
			return;
		}
		json_object_set_new(st, "otp", json_string(otp_id));
		json_object_set_new(st, "otp_at", json_integer(app_now()));
		if (method_txn_save(app, req, id, txn))
			code_page(app, req, id, st, 200, NULL, "otp.resent");
		return;
	}
	code = http_form(req, "code");
	if (code == NULL || code[0] == '\0') {
		code_page(app, req, id, st, 400, "tel.code_missing", NULL);
		return;
	}
	ret = otp_check(app, sget(st, "otp"), OTP_PURPOSE, phone, code, &r, &left);
	if (ret == 0 && r == OTP_OK) {
		json_object_del(st, "otp");
		json_object_del(st, "otp_at");
		json_object_set_new(st, "proven", json_string(phone));
		json_object_set_new(st, "stage", json_string("check"));
		do_start(app, req, id, txn, st);
		return;
	}
	if (ret == 0 && r == OTP_WRONG) {
		code_page(app, req, id, st, 400, "otp.wrong", NULL);
		return;
	}
	/* Used up or expired: back to the form, which sends a new code. */
	json_object_del(st, "otp");
	json_object_del(st, "otp_at");
	json_object_del(st, "stage");
	json_object_del(st, "who");
	if (!method_txn_save(app, req, id, txn))
		return;
	{
		json_t *echo = form_echo(req, st);
		json_object_set_new(echo, "phone", json_string(phone));
		json_object_set_new(echo, "carrier", json_string(sget(st, "carrier") ?: ""));
		form_page(app, req, id, 400,
		          r == OTP_EXHAUSTED ? "tel.code_exhausted" : "tel.code_expired", NULL,
		          echo);
		json_decref(echo);
	}
}

/* ---- step 3: the carrier check ---- */

static void
set_outcome(json_t *st, const char *name)
{
	json_object_del(st, "ver");
	json_object_del(st, "polled");
	json_object_del(st, "seen");
	json_object_set_new(st, "outcome", json_string(name));
}

/* Starts the carrier's check for the proven number (unless one is still
 * pending), records the verification or the outcome, and sends the
 * citizen to the QR step, which shows either. */
/* The security event for a failed attempt: the method, why, and the
 * client address; never the ID, birthdate or number. */
static void
login_failed(struct http_req *req, const char *reason)
{
	flow_login_failed(json_pack("{s:s, s:s, s:s?}", "method", "telecom", "reason", reason,
	                            "address", http_remote_addr(req)));
}

static void
do_start(struct isso_app *app, struct http_req *req, const char *id, json_t *txn, json_t *st)
{
	const char *phone = sget(st, "phone"), *proven = sget(st, "proven"), *error = NULL;
	char vid[TELECOM_VERIFICATION_ID_SIZE], masked[32], *link = NULL, *sealed = NULL;
	enum telecom_refusal refusal = TELECOM_REFUSAL_NONE;
	int expires_in = 0, ret;
	bool limited;
	json_t *who = NULL;

	if (!stage_is(st, "check") || phone == NULL || proven == NULL ||
	    strcmp(phone, proven) != 0) {
		refuse_order(app, req, id);
		return;
	}
	if (ver_alive(st) && json_object_get(st, "outcome") == NULL)
		goto done;
	if (who_open(app, st, &who) < 0) {
		set_outcome(st, "error");
		goto done;
	}
	/* Every limit counts every time, so that no order of attempts
	 * escapes one of them. */
	limited = method_addr_limited(app, req, "tel-start");
	limited |= start_limited(app, "phone", phone, STARTS_PER_PHONE);
	limited |= start_limited(app, "id", sget(who, "id_number"), STARTS_PER_ID);
	if (limited) {
		log_info("telecom_limited", "phone", log_mask(phone, masked), NULL);
		set_outcome(st, "limited");
		goto done;
	}
	ret = conn_telecom_start(tel_state(app)->conn, sget(who, "id_number"), phone,
	                         sget(who, "birthdate"), sget(st, "carrier"),
	                         tel_state(app)->window, vid, &link, &expires_in, &refusal, &error);
	if (ret == 0 && secret_seal(&app->secrets, link, strlen(link), &sealed) == 0) {
		json_object_del(st, "outcome");
		json_object_del(st, "polled");
		json_object_set_new(st, "seen", json_string("pending"));
		json_object_set_new(st, "ver",
		                    json_pack("{s:s, s:s, s:I}", "id", vid, "link", sealed, "exp",
		                              (json_int_t)(app_now() + expires_in)));
		log_info("telecom_started", "phone", log_mask(phone, masked), "carrier",
		         sget(st, "carrier"), NULL);
	} else if (ret == ISSO_ERR_DENIED && refusal != TELECOM_REFUSAL_NONE) {
		set_outcome(st, outcome_find(telecom_refusal_name(refusal)) != NULL
		                    ? telecom_refusal_name(refusal)
		                    : "other");
	} else if (ret == ISSO_ERR_LIMIT) {
		set_outcome(st, "busy");
	} else {
		log_warn("telecom_start_failed", "phone", log_mask(phone, masked), "reason",
		         error != NULL ? error : isso_strerror(ret), NULL);
		set_outcome(st, "error");
	}
done:
	if (sget(st, "outcome") != NULL)
		login_failed(req, sget(st, "outcome"));
	if (link != NULL)
		xfree_secret(link);
	free(sealed);
	json_decref(who);
	if (method_txn_save(app, req, id, txn))
		http_redirect(req, 303, flow_url(req, "/login/telecom/qr", id));
}

/* The carrier confirmed: link the person by the national ID (歸戶). */
static void
confirmed(struct isso_app *app, json_t *st)
{
	json_t *who = NULL;
	char uuid[37];

	if (who_open(app, st, &who) < 0 ||
	    person_link_id(app, sget(who, "id_number"), NULL, uuid) < 0) {
		log_error("telecom_link_failed", NULL);
		set_outcome(st, "error");
		goto out;
	}
	json_object_del(st, "ver");
	json_object_del(st, "polled");
	json_object_del(st, "seen");
	json_object_set_new(st, "uuid", json_string(uuid));
	json_object_set_new(st, "stage", json_string("proven"));
out:
	json_decref(who);
}

/* Where the verification stands, asking the carrier at most once per
 * POLL_MS: "done", an outcome name, "pending", "wifi", "other_number", or
 * "none". *changed_r tells whether st must be saved. */
static const char *
poll_once(struct isso_app *app, struct http_req *req, json_t *st, bool *changed_r)
{
	json_t *ver = json_object_get(st, "ver");
	enum telecom_state state = TELECOM_STATE_ERROR;
	const char *error = NULL, *outcome = sget(st, "outcome");
	int64_t ms = method_now_ms();
	bool over;
	int ret;

	*changed_r = false;
	if (stage_is(st, "proven") || stage_is(st, "done"))
		return "done";
	if (outcome != NULL)
		return outcome_find(outcome) != NULL ? outcome : "error";
	if (ver == NULL)
		return "none";
	if (ms - json_integer_value(json_object_get(st, "polled")) < POLL_MS)
		return sget(st, "seen") ?: "pending";
	*changed_r = true;
	json_object_set_new(st, "polled", json_integer(ms));
	over = app_now() > json_integer_value(json_object_get(ver, "exp")) + EXPIRY_GRACE;
	ret = conn_telecom_status(tel_state(app)->conn, sget(ver, "id"), &state, &error);
	if (ret == ISSO_ERR_LIMIT || ret == ISSO_ERR_TIMEOUT) {
		/* Busy or slow: ask again at the next poll, within the window. */
		if (over)
			set_outcome(st, "error");
	} else if (ret < 0) {
		log_warn("telecom_status_failed", "reason",
		         error != NULL ? error : isso_strerror(ret), NULL);
		set_outcome(st, "error");
	} else {
		switch (state) {
		case TELECOM_STATE_CONFIRMED:
			confirmed(app, st);
			break;
		case TELECOM_STATE_PENDING:
		case TELECOM_STATE_WIFI:
		case TELECOM_STATE_OTHER_NUMBER:
			if (over)
				set_outcome(st, "expired");
			else
				json_object_set_new(st, "seen",
				                    json_string(telecom_state_name(state)));
			break;
		case TELECOM_STATE_EXPIRED:
			set_outcome(st, "expired");
			break;
		default:
			set_outcome(st, "error");
			break;
		}
	}
	if (stage_is(st, "proven"))
		return "done";
	if (sget(st, "outcome") != NULL) {
		log_info("telecom_result", "state", sget(st, "outcome"), NULL);
		login_failed(req, sget(st, "outcome"));
		return sget(st, "outcome");
	}
	return sget(st, "seen") ?: "pending";
}

static void
result_page(struct isso_app *app, struct http_req *req, const char *id,
            const struct outcome_view *v)
{
	json_t *ctx = base_ctx(app, req, id, 2);

	set_text(app, req, ctx, "heading", v->title_key);
	set_text(app, req, ctx, "message", v->message_key);
	set_text(app, req, ctx, "fix_label", v->fix_key);
	if (v->restart) {
		json_object_set_new(ctx, "restart", json_true());
		json_object_set_new(ctx, "csrf",
		                    json_string(csrf_token(req, &app->secrets, CSRF_QR)));
	}
	json_object_set_new(ctx, "outcome", json_string(v->name));
	page_render(app, req, v->status, "telecom-result", v->title_key, ctx);
}

static void
qr_page(struct isso_app *app, struct http_req *req, const char *id, json_t *st, const char *seen,
        int status, const char *info_key)
{
	json_t *ctx = base_ctx(app, req, id, 2), *reminders = json_array();
	const char *sealed = sget(json_object_get(st, "ver"), "link");
	char *link = NULL, *svg = NULL, masked[32];
	int seconds = seconds_left(st);

	if (sealed == NULL || secret_open(&app->secrets, sealed, &link) < 0 ||
	    (svg = qr_svg(link, page_text(app, req, "tel.qr_alt"))) == NULL) {
		log_error("telecom_qr_failed", NULL);
		json_decref(ctx);
		json_decref(reminders);
		result_page(app, req, id, outcome_find("error"));
		goto out;
	}
	for (int i = 0; reminder_keys[i] != NULL; i++)
		json_array_append_new(reminders,
		                      json_string(page_text(app, req, reminder_keys[i])));
	json_object_set_new(ctx, "reminders", reminders);
	json_object_set_new(ctx, "csrf", json_string(csrf_token(req, &app->secrets, CSRF_QR)));
	json_object_set_new(ctx, "svg", json_string(svg));
	json_object_set_new(ctx, "link", json_string(link));
	json_object_set_new(ctx, "seconds", json_integer(seconds));
	json_object_set_new(ctx, "phone_masked", json_string(log_mask(sget(st, "phone"), masked)));
	json_object_set_new(
	    ctx, "status_url",
	    json_string(pool_printf(http_pool(req), "%s&shown=%s",
	                            flow_url(req, "/login/telecom/status", id), seen)));
	if (strcmp(seen, "wifi") == 0)
		json_object_set_new(ctx, "wifi", json_true());
	else if (strcmp(seen, "other_number") == 0)
		json_object_set_new(ctx, "other_number", json_true());
	set_text(app, req, ctx, "info", info_key);
	page_render(app, req, status, "telecom-qr", "tel.heading", ctx);
out:
	if (link != NULL)
		xfree_secret(link);
	free(svg);
}

/* Shows what poll_once() said: the QR page, an outcome, or on to done. */
static void
show_state(struct isso_app *app, struct http_req *req, const char *id, json_t *st,
           const char *state, const char *info_key)
{
	const struct outcome_view *v;

	if (strcmp(state, "done") == 0) {
		http_redirect(req, 303, flow_url(req, "/login/telecom/done", id));
	} else if ((v = outcome_find(state)) != NULL) {
		result_page(app, req, id, v);
	} else if (strcmp(state, "none") == 0) {
		refuse_order(app, req, id);
	} else {
		qr_page(app, req, id, st, state, 200, info_key);
	}
}

static void
qr_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st = method_state(txn, STATE_KEY);
	const char *state, *action;
	const struct outcome_view *v;
	bool changed = false;

	if (stage_is(st, "proven") || stage_is(st, "done")) {
		http_redirect(req, 303, flow_url(req, "/login/telecom/done", id));
		return;
	}
	if (!stage_is(st, "check")) {
		refuse_order(app, req, id);
		return;
	}
	if (http_method(req) == HTTP_POST) {
		if (!csrf_check(req, &app->secrets, CSRF_QR)) {
			page_error(app, req, 403, "error.title", "error.csrf",
			           flow_url(req, "/login/telecom/qr", id));
			return;
		}
		action = http_form(req, "action");
		if (action != NULL && strcmp(action, "restart") == 0) {
			/* Only where the page offered it: after an expiry or a
			 * busy carrier. */
			v = outcome_find(sget(st, "outcome"));
			if (v == NULL || !v->restart) {
				http_redirect(req, 303, flow_url(req, "/login/telecom/qr", id));
				return;
			}
			json_object_del(st, "outcome");
			do_start(app, req, id, txn, st);
			return;
		}
	}
	state = poll_once(app, req, st, &changed);
	if (changed && !method_txn_save(app, req, id, txn))
		return;
	/* "check": the page without script asks once. */
	show_state(app, req, id, st, state,
	           http_method(req) == HTTP_POST && strcmp(state, "pending") == 0 ? "tel.waiting"
	                                                                          : NULL);
}

/* GET …/status&shown=S: the QR page's script asks every 2 s; JSON
 * {"state", "seconds" (while open), "next" (when the page must change:
 * the state differs from the one the page shows)}. */
static void
status_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st = method_state(txn, STATE_KEY), *out;
	const char *state, *shown = http_query(req, "shown");
	bool changed = false, open;

	if (!stage_is(st, "check") && !stage_is(st, "proven") && !stage_is(st, "done")) {
		http_send_json(req, 409, json_pack("{s:s}", "state", "none"));
		return;
	}
	state = poll_once(app, req, st, &changed);
	if (changed && flow_txn_save(app, id, txn) < 0) {
		http_send_json(req, 410, json_pack("{s:s}", "state", "gone"));
		return;
	}
	out = json_pack("{s:s}", "state", state);
	open = strcmp(state, "pending") == 0 || strcmp(state, "wifi") == 0 ||
	       strcmp(state, "other_number") == 0;
	if (open)
		json_object_set_new(out, "seconds", json_integer(seconds_left(st)));
	if (strcmp(state, "done") == 0)
		json_object_set_new(out, "next",
		                    json_string(flow_url(req, "/login/telecom/done", id)));
	else if (!open || shown == NULL || strcmp(shown, state) != 0)
		json_object_set_new(out, "next",
		                    json_string(flow_url(req, "/login/telecom/qr", id)));
	http_send_json(req, 200, out);
}

/* ---- the end: hand over to the flow ---- */

static void
done_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st = method_state(txn, STATE_KEY), *who = NULL;
	const char *uuid = sget(st, "uuid"), *phone = sget(st, "phone");
	struct flow_auth auth;

	if (!stage_is(st, "proven") || uuid == NULL || phone == NULL) {
		if (stage_is(st, "done"))
			http_redirect(req, 303, flow_url(req, "/consent", id));
		else
			refuse_order(app, req, id);
		return;
	}
	if (who_open(app, st, &who) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		return;
	}
	/* Once: a reload goes to consent, not to a second session. */
	json_object_set_new(st, "stage", json_string("done"));
	memset(&auth, 0, sizeof(auth));
	auth.uuid = uuid;
	auth.method = &method_telecom;
	auth.loa = LOA_SUBSTANTIAL;
	auth.phone = phone;
	auth.attrs = who;
	flow_complete(app, req, id, txn, &auth);
	json_decref(who);
}
