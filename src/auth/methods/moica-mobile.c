/* Method moica-mobile (行動自然人憑證, TW FidO): the privacy notice, then
 *   1 id     the national ID (or resident certificate number) and the way
 *            the request reaches the MOI app, each a button of its own,
 *            the likely one first (a phone: the app on this phone; a
 *            computer: the QR code):
 *              qr    ATH-01 I-SCAN: a QR code to scan         (…/qr)
 *              app   ATH-01 MWEB2APP: a link that opens the app on this
 *                    phone, which sends the browser back to …/return
 *                                                             (…/app)
 *              push  ATH-03: the service pushes the request to the
 *                    ID's bound phone                         (…/push)
 *   2 wait   the page of that way; it polls ("status", JSON) and moves on
 *            when the citizen approved; it offers the other ways
 *   3 phone  the shared phone + SMS code step (otp_step)
 * and on to consent with loa high. The progress lives in the login
 * transaction under "moica_mobile":
 *
 *   notice  true once the notice was acknowledged
 *   stage   "id" | "qr" (waiting for the app, whatever the way) | "proven"
 *   mode    the way of the current or last ticket: "qr" | "app" | "push"
 *   id      the typed ID, sealed (PII at rest)
 *   ticket  {txn, tid, hash, qr, exp}: transaction_id, sp_ticket_id, the
 *           ticket's hashed_id_num, the sp_ticket (the QR's or the app
 *           link's ticket) and its expiry (Unix seconds, our clock)
 *   polled  when the service was last asked about the ticket (Unix ms)
 *   outcome why the ticket ended without approval: "denied", "expired",
 *           "not_enrolled", "error", "mismatch", "unreachable" (a push
 *           that could not reach the phone), "certificate" (the result's
 *           certificate failed the card PKI check: chain to the MOICA
 *           roots, validity, key usage, revocation, or it names another ID)
 *   uuid    the person, once the app approved (stage "proven")
 *   name    the holder's name from the result's certificate once it
 *           passed the card PKI check (cardpki_check_cert), sealed
 *
 * A later step refuses to run until the earlier one succeeded. The
 * national ID appears in logs only masked (log_mask), and in no page
 * after the ID step. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "auth/otp-step.h"
#include "auth/page.h"
#include "auth/person.h"
#include "auth/qr.h"
#include "conn/cardpki.h"
#include "conn/conn-service.h"
#include "conn/twfido.h"
#include "http/csrf.h"
#include "lib/config.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define STATE_KEY "moica_mobile"
#define CSRF_ID   "mm-id"
#define CSRF_QR   "mm-qr"
/* Tickets per national ID (typed or regenerated), per window: enough for
 * a citizen who fumbles, too few to pester the service about one person. */
#define ID_WINDOW 600
#define ID_MAX    10
/* The countdown ends this much before the ticket does, so a code scanned
 * at the last second still reaches the service in time (60 s → 58). */
#define SHOW_MARGIN 2
/* How long after the ticket's end a "pending" answer still counts as
 * pending (clock differences with the service). */
#define EXPIRY_GRACE 5
#define HELP_PATH    "/moica-mobile/help"
/* The store's row that takes one ATH-02 poll turn per transaction for
 * every node (poll_turn()), and how long it lives (s): past the 4 s
 * interval however the store's whole seconds round. */
#define POLL_KIND   "twfido_poll"
#define POLL_WINDOW (TWFIDO_POLL_INTERVAL_MS / 1000 + 1)
#define RETURN_PATH "/login/moica-mobile/return"

static const char *const amr_mm[] = {"swk", "mca", "sms", "otp", "mfa", NULL};
static const char *const bullets[] = {"mm.bullet1", "mm.bullet2", "mm.bullet3", NULL};
static const char *const step_keys[] = {"mm.step1", "mm.step2", "mm.step3", NULL};

static void notice_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void id_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void qr_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void app_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void push_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void status_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void return_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void phone_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static bool prepare(struct isso_app *app, struct http_req *req, const struct method_step *step);
static void elsewhere_page(struct isso_app *app, struct http_req *req);

static const struct method_step steps[] = {
    {"", HTTP_GET | HTTP_POST, 0, notice_step},
    {"id", HTTP_GET | HTTP_POST, 0, id_step},
    {"qr", HTTP_GET | HTTP_POST, 0, qr_step},
    {"app", HTTP_GET | HTTP_POST, 0, app_step},
    {"push", HTTP_GET | HTTP_POST, 0, push_step},
    {"status", HTTP_GET, 0, status_step},
    /* the app comes back to the default browser, maybe not this one */
    {"return", HTTP_GET, METHOD_STEP_BOUND, return_step},
    {"phone", HTTP_GET | HTTP_POST, 0, phone_step},
    {NULL, 0, 0, NULL},
};

extern const struct method method_moica_mobile;

/* [twfido]: MOI's TW FidO SP API. No working defaults: without a url the
 * method is not offered. */
struct mm_settings {
	char *mode;          /* "sim" | "http" */
	char *url;           /* API base: scheme and host (/moise/sp/… appended) */
	char *sp_service_id; /* assigned by MOI */
	char *key;           /* the SP's AES-256 key: 64 hex digits or base64 */
	int timeout_ms;      /* 5000 */
	int time_limit;      /* seconds to approve in the app, 60 */
	char *hint;          /* shown in the app */
};

#define MM_OPT(key, type, field, def, lo, hi, secret)                                              \
	{                                                                                          \
		key, type, offsetof(struct mm_settings, field), def, lo, hi, secret                \
	}

static const struct config_option mm_options[] = {
    MM_OPT("mode", CONFIG_OPT_STRING, mode, "http", 0, 0, false),
    MM_OPT("url", CONFIG_OPT_URL, url, "", 0, 0, false),
    MM_OPT("sp_service_id", CONFIG_OPT_STRING, sp_service_id, "", 0, 0, false),
    MM_OPT("key", CONFIG_OPT_STRING, key, "", 0, 0, true),
    MM_OPT("timeout_ms", CONFIG_OPT_INT, timeout_ms, "5000", 100, 600000, false),
    MM_OPT("time_limit", CONFIG_OPT_INT, time_limit, "60", 30, 600, false),
    MM_OPT("hint", CONFIG_OPT_STRING, hint, "臺北市政府單一身分驗證入口登入", 0, 0, false),
    {NULL, 0, 0, NULL, 0, 0, false},
};

/* What the handlers use, built at start-up. */
struct mm_state {
	struct conn_twfido *conn;
	int time_limit;
	char *hint;
};

static int
mm_init(struct isso_app *app, bool build, struct method_setup *setup, const char **error_r)
{
	struct mm_settings s = {0};
	struct conn_service svc;
	struct mm_state *st;
	char why[256];
	int ret = config_section_parse(app->cfg, "twfido", mm_options, &s, error_r);

	if (ret < 0)
		return ret;
	svc = (struct conn_service){"twfido",        s.mode, s.url, "sp_service_id",
	                            s.sp_service_id, "key",  s.key};
	ret = conn_service_check(app->cfg, &svc, error_r);
	if (ret < 0)
		goto out;
	if (!config_issuer_on_loopback(app->cfg) && conn_twfido_is_sim_key(s.key)) {
		snprintf(why, sizeof(why),
		         "the published isso-sim test key; the issuer %s is not on "
		         "loopback",
		         app->cfg->server.public_url);
		ret = conn_service_fail(error_r, "twfido", "key", why);
		goto out;
	}
	if (!build)
		goto out;
	/* the result certificate is checked like a MOICA card's */
	if (s.url[0] == '\0')
		method_setup_unset(setup->unset, sizeof(setup->unset), "twfido.url");
	if (app->sms == NULL)
		method_setup_unset(setup->unset, sizeof(setup->unset), "sms.url");
	if (!app->cardpki_configured)
		method_setup_unset(setup->unset, sizeof(setup->unset), "moica.url");
	if (s.url[0] == '\0' || (ret = conn_service_usable(&svc, error_r)) < 0)
		goto out;
	if (strcmp(s.mode, "http") == 0 && conn_twfido_is_sim_key(s.key)) {
		ret = conn_service_fail(error_r, "twfido", "key",
		                        "mode http needs the SP's own key, not isso-sim's");
		goto out;
	}
	st = xcalloc(1, sizeof(*st));
	st->conn = conn_twfido_new(s.url, s.sp_service_id, s.key, s.timeout_ms);
	if (st->conn == NULL) {
		free(st);
		*error_r = "twfido: bad url, sp_service_id or key";
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	st->time_limit = s.time_limit;
	st->hint = xstrdup(s.hint);
	setup->state = st;
out:
	config_section_free(mm_options, &s);
	return ret;
}

static void
mm_free(void *state)
{
	struct mm_state *st = state;

	conn_twfido_free(st->conn);
	free(st->hint);
	free(st);
}

static const struct mm_state *
mm_state(const struct isso_app *app)
{
	return method_state_of(app, &method_moica_mobile);
}

/* The name comes from the subject of the certificate the TW FidO result
 * carries, checked like a MOICA card's (chain, validity, revocation, the
 * typed ID's last four digits; docs/connectors/twfido.md): hence the
 * MOICA settings; a linked TaipeiPass member's other data still flows
 * through linked_member_data. */
static int mm_init(struct isso_app *app, bool build, struct method_setup *setup,
                   const char **error_r);
static void mm_free(void *state);

const struct method method_moica_mobile = {
    .id = "moica-mobile",
    .loa = LOA_HIGH,
    .amr = amr_mm,
    .vouches = CLAIM_UUID | CLAIM_NAME | CLAIM_ID_NUMBER | CLAIM_PHONE,
    .linked_member_data = true,
    .title_key = "mm.title",
    .bullet_keys = bullets,
    .register_path = HELP_PATH,
    .init = mm_init,
    .free = mm_free,
    .steps = steps,
    .prepare = prepare,
    .foreign_page = elsewhere_page,
    .help_template = "moica-mobile-help",
    .help_title_key = "mm.help_title",
};

enum outcome {
	OUT_NONE,    /* no ticket */
	OUT_PENDING, /* ticket alive, no answer yet */
	OUT_DONE,    /* approved by the right person: stage proven */
	OUT_DENIED,
	OUT_EXPIRED,
	OUT_NOT_ENROLLED,
	OUT_ERROR,
	OUT_MISMATCH,
	OUT_UNREACHABLE,
	OUT_CERT, /* the result's certificate failed the card PKI check */
};

static const char *const outcome_names[] = {
    [OUT_NONE] = "none",        [OUT_PENDING] = "pending",   [OUT_DONE] = "done",
    [OUT_DENIED] = "denied",    [OUT_EXPIRED] = "expired",   [OUT_NOT_ENROLLED] = "not_enrolled",
    [OUT_ERROR] = "error",      [OUT_MISMATCH] = "mismatch", [OUT_UNREACHABLE] = "unreachable",
    [OUT_CERT] = "certificate",
};

static enum outcome
outcome_parse(const char *s)
{
	for (int i = OUT_DENIED; s != NULL && i <= OUT_CERT; i++) {
		if (strcmp(outcome_names[i], s) == 0)
			return (enum outcome)i;
	}
	return OUT_NONE;
}

/* The security event for a failed attempt: the method, why, and the
 * client address; never the ID. */
static void
login_failed(struct http_req *req, const char *reason)
{
	flow_login_failed(json_pack("{s:s, s:s, s:s?}", "method", "moica-mobile", "reason", reason,
	                            "address", http_remote_addr(req)));
}

static const char *
stage_of(json_t *st)
{
	return json_string_value(json_object_get(st, "stage")) ?: "";
}

/* ---- the ways a request reaches the app ---- */

enum way { WAY_QR, WAY_APP, WAY_PUSH, WAY_COUNT };

static const struct way_def {
	const char *name;  /* in the state, the form's action, the step's path */
	const char *label; /* the button that chooses it */
	const char *path;
	enum twfido_mode mode;
} ways[WAY_COUNT] = {
    [WAY_QR] = {"qr", "mm.way_qr", "/login/moica-mobile/qr", TWFIDO_MODE_ISCAN},
    [WAY_APP] = {"app", "mm.way_app", "/login/moica-mobile/app", TWFIDO_MODE_MWEB2APP},
    [WAY_PUSH] = {"push", "mm.way_push", "/login/moica-mobile/push", TWFIDO_MODE_PUSH},
};

/* -1 when s names no way. */
static int
way_parse(const char *s)
{
	for (int i = 0; s != NULL && i < WAY_COUNT; i++) {
		if (strcmp(ways[i].name, s) == 0)
			return i;
	}
	return -1;
}

static enum way
way_of(json_t *st)
{
	int w = way_parse(json_string_value(json_object_get(st, "mode")));

	return w < 0 ? WAY_QR : (enum way)w;
}

/* Is the browser on a phone? Client hints first (Sec-CH-UA-Mobile, sent
 * by Chromium browsers unasked), then the user agent's usual markers.
 * Only the order of the buttons depends on it: every way stays offered. */
static bool
on_phone(struct http_req *req)
{
	const char *hint = http_header(req, "Sec-CH-UA-Mobile");
	const char *ua = http_header(req, "User-Agent");

	if (hint != NULL && strcmp(hint, "?1") == 0)
		return true;
	if (hint != NULL && strcmp(hint, "?0") == 0)
		return false;
	if (ua == NULL || strlen(ua) > 1024)
		return false;
	return strstr(ua, "Mobi") != NULL || strstr(ua, "Android") != NULL ||
	       strstr(ua, "iPhone") != NULL || strstr(ua, "iPod") != NULL;
}

/* The ways as buttons, the likely one first; except is left out (the one
 * on screen), or -1 for all. [{"way", "label", "primary"}]. */
static json_t *
way_buttons(struct isso_app *app, struct http_req *req, int except)
{
	static const enum way phone_order[] = {WAY_APP, WAY_PUSH, WAY_QR};
	static const enum way computer_order[] = {WAY_QR, WAY_PUSH, WAY_APP};
	const enum way *order = on_phone(req) ? phone_order : computer_order;
	json_t *list = json_array();

	for (int i = 0; i < WAY_COUNT; i++) {
		if ((int)order[i] == except)
			continue;
		json_array_append_new(list,
		                      json_pack("{s:s, s:s, s:b}", "way", ways[order[i]].name,
		                                "label", page_text(app, req, ways[order[i]].label),
		                                "primary", json_array_size(list) == 0));
	}
	return list;
}

/* Too many tickets for this ID lately? Counted the same for IDs that are
 * enrolled, not enrolled or unknown. */
static bool
id_limited(struct isso_app *app, const char *idn)
{
	return method_value_limited(app, "mm-id", "id", idn, ID_WINDOW, ID_MAX);
}

/* The context every step page shares. */
static json_t *
base_ctx(struct isso_app *app, struct http_req *req, const char *id, int current)
{
	json_t *ctx = json_pack("{s:s, s:s, s:b}", "txn", id, "back_url",
	                        flow_url(req, "/login", id), "script", 1);

	if (current >= 0)
		json_object_set_new(ctx, "steps", method_steps(app, req, step_keys, current));
	return ctx;
}

static void
set_error(struct isso_app *app, struct http_req *req, json_t *ctx, const char *error_key)
{
	page_form_error(app, req, ctx, error_key, NULL, NULL);
}

/* A step asked for out of order. */
static void
refuse_order(struct isso_app *app, struct http_req *req, const char *id)
{
	page_error(app, req, 403, "mm.order_title", "mm.order",
	           flow_url(req, "/login/moica-mobile", id));
}

/* ---- step 0: the privacy notice ---- */

static void
notice_page(struct isso_app *app, struct http_req *req, const char *id, int status,
            const char *error_key)
{
	json_t *ctx = base_ctx(app, req, id, -1);

	json_object_set_new(ctx, "csrf", json_string(csrf_token(req, &app->secrets, CSRF_ID)));
	set_error(app, req, ctx, error_key);
	page_notice(app, req, ctx, id, "moica-mobile");
	page_render(app, req, status, "moica-mobile-notice", "mm.notice_title", ctx);
}

static void
notice_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st;

	if (http_method(req) != HTTP_POST) {
		notice_page(app, req, id, 200, NULL);
		return;
	}
	if (!csrf_check(req, &app->secrets, CSRF_ID)) {
		notice_page(app, req, id, 403, "error.csrf");
		return;
	}
	if (http_form(req, "agree") == NULL) {
		notice_page(app, req, id, 400, "mm.must_agree");
		return;
	}
	st = method_state(txn, STATE_KEY);
	json_object_set_new(st, "notice", json_true());
	if (!method_txn_save(app, req, id, txn))
		return;
	http_redirect(req, 303, flow_url(req, "/login/moica-mobile/id", id));
}

/* ---- step 1: the national ID ---- */

static void
id_page(struct isso_app *app, struct http_req *req, const char *id, int status,
        const char *error_key, const char *typed)
{
	json_t *ctx = base_ctx(app, req, id, 0);

	json_object_set_new(ctx, "csrf", json_string(csrf_token(req, &app->secrets, CSRF_ID)));
	json_object_set_new(ctx, "id_number", json_string(typed != NULL ? typed : ""));
	json_object_set_new(ctx, "ways", way_buttons(app, req, -1));
	set_error(app, req, ctx, error_key);
	page_render(app, req, status, "moica-mobile-id", "mm.heading", ctx);
}

/* The page for a ticket that ended without an approval the method can
 * use, when there is nothing to retry on this step: not enrolled,
 * service failure, another person approved. */
static void
result_page(struct isso_app *app, struct http_req *req, const char *id, enum outcome o)
{
	json_t *ctx = base_ctx(app, req, id, -1);
	const char *title = "mm.error_title";
	int status = 503;

	json_object_set_new(ctx, "retry_url",
	                    json_string(flow_url(req, "/login/moica-mobile/id", id)));
	switch (o) {
	case OUT_NOT_ENROLLED:
		title = "mm.not_enrolled_title";
		status = 200;
		json_object_set_new(ctx, "not_enrolled", json_true());
		json_object_set_new(ctx, "help_url", json_string(flow_url(req, HELP_PATH, id)));
		break;
	case OUT_MISMATCH:
		title = "mm.mismatch_title";
		status = 403;
		json_object_set_new(ctx, "mismatch", json_true());
		break;
	case OUT_CERT:
		title = "mm.cert_title";
		status = 403;
		json_object_set_new(ctx, "cert_refused", json_true());
		break;
	default:
		json_object_set_new(ctx, "failed", json_true());
		break;
	}
	page_render(app, req, status, "moica-mobile-result", title, ctx);
}

/* Asks the service for a ticket for idn, the way w, and records it in st:
 * the ticket (and stage qr), or the outcome. Returns OUT_PENDING,
 * OUT_NOT_ENROLLED, OUT_UNREACHABLE (a push) or OUT_ERROR. */
static enum outcome
issue_ticket(struct isso_app *app, const char *idn, json_t *st, enum way w)
{
	struct twfido_ticket ticket;
	struct twfido_status status;
	const char *error = NULL;
	char masked[32];
	int ret;

	memset(&ticket, 0, sizeof(ticket));
	ret = conn_twfido_request(mm_state(app)->conn, ways[w].mode, idn, mm_state(app)->hint,
	                          mm_state(app)->time_limit, &ticket, &status, &error);
	json_object_del(st, "ticket");
	json_object_del(st, "polled");
	json_object_del(st, "outcome");
	json_object_del(st, "name"); /* a new ticket, a new approval */
	json_object_set_new(st, "mode", json_string(ways[w].name));
	if (ret == 0 && status.state == TWFIDO_UNREACHABLE) {
		log_info("moica_mobile_push_unreachable", "id", log_mask(idn, masked), "code",
		         status.code, NULL);
		json_object_set_new(st, "outcome", json_string(outcome_names[OUT_UNREACHABLE]));
		json_object_set_new(st, "stage", json_string("qr"));
		return OUT_UNREACHABLE;
	}
	if (ret < 0 || status.state == TWFIDO_ERROR) {
		log_warn("moica_mobile_ticket_failed", "id", log_mask(idn, masked), "way",
		         ways[w].name, "code", status.code, "reason", error != NULL ? error : "",
		         NULL);
		conn_twfido_ticket_clear(&ticket);
		json_object_set_new(st, "outcome", json_string(outcome_names[OUT_ERROR]));
		return OUT_ERROR;
	}
	if (status.state == TWFIDO_NOT_ENROLLED) {
		json_object_set_new(st, "outcome", json_string(outcome_names[OUT_NOT_ENROLLED]));
		return OUT_NOT_ENROLLED;
	}
	json_object_set_new(st, "ticket",
	                    json_pack("{s:s, s:s, s:s, s:s, s:I}", "txn", ticket.transaction_id,
	                              "tid", ticket.sp_ticket_id, "hash", ticket.hashed_id_num,
	                              "qr", ticket.sp_ticket, "exp",
	                              (json_int_t)ticket.expires_at));
	json_object_set_new(st, "stage", json_string("qr"));
	conn_twfido_ticket_clear(&ticket);
	return OUT_PENDING;
}

static void
id_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st = method_state(txn, STATE_KEY);
	const char *typed;
	char idn[11], *sealed = NULL;
	enum outcome o;
	int w;

	if (!json_is_true(json_object_get(st, "notice"))) {
		refuse_order(app, req, id);
		return;
	}
	if (http_method(req) != HTTP_POST) {
		id_page(app, req, id, 200, NULL, NULL);
		return;
	}
	if (!csrf_check(req, &app->secrets, CSRF_ID)) {
		id_page(app, req, id, 403, "error.csrf", NULL);
		return;
	}
	typed = http_form(req, "id_number");
	/* the button pressed; Enter presses the first, the likely way */
	w = way_parse(http_form(req, "action"));
	if (w < 0)
		w = on_phone(req) ? WAY_APP : WAY_QR;
	if (typed == NULL || !idnum_normalize(typed, idn) || !idnum_is_valid(idn)) {
		login_failed(req, "bad_id");
		id_page(app, req, id, 400, "mm.bad_id",
		        typed != NULL && strlen(typed) <= 16 ? typed : NULL);
		goto out;
	}
	if (method_addr_limited(app, req, "mm-id")) {
		login_failed(req, "rate_limited");
		id_page(app, req, id, 429, "error.rate_limited", idn);
		goto out;
	}
	if (id_limited(app, idn)) {
		login_failed(req, "id_limited");
		id_page(app, req, id, 429, "mm.id_limited", idn);
		goto out;
	}
	if (secret_seal(&app->secrets, idn, strlen(idn), &sealed) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
	/* A new ID starts the method over: nothing proven for another ID
	 * (or a phone code sent on its behalf) survives. */
	st = json_pack("{s:b, s:s, s:s}", "notice", 1, "stage", "id", "id", sealed);
	json_object_set_new(txn, STATE_KEY, st);
	json_object_del(txn, "otp_step");
	o = issue_ticket(app, idn, st, (enum way)w);
	if (o != OUT_PENDING)
		login_failed(req, outcome_names[o]);
	if (!method_txn_save(app, req, id, txn))
		goto out;
	if (o == OUT_PENDING || o == OUT_UNREACHABLE)
		http_redirect(req, 303, flow_url(req, ways[w].path, id));
	else
		result_page(app, req, id, o);
out:
	free(sealed);
	explicit_bzero(idn, sizeof(idn));
}

/* ---- step 2: the QR code ---- */

/* Seconds the countdown shows for the ticket in st (0 when ended). */
static int
seconds_left(json_t *st)
{
	json_int_t exp = json_integer_value(json_object_get(json_object_get(st, "ticket"), "exp"));
	int64_t left = (int64_t)exp - SHOW_MARGIN - app_now();

	return left > 0 ? (int)left : 0;
}

/* Checks the certificate of an approval (cert: standard base64 of its
 * DER, or NULL) for the typed ID idn with the card PKI code: chain to the
 * configured MOICA roots, validity, key usage, revocation (moica.revocation)
 * and the holder: its subject serialNumber's last four digits are the
 * ID's, as the MOICA card path checks. OUT_DONE with *holder_r filled, or
 * OUT_CERT (OUT_ERROR when no revocation source answered or the PKI is not
 * configured: ours to fix); a refusal is logged and audited. */
static enum outcome
check_cert(struct isso_app *app, const char *idn, const char *cert, struct cardpki_holder *holder_r)
{
	enum cardpki_verdict v;
	const char *verdict;
	char masked[32];

	memset(holder_r, 0, sizeof(*holder_r));
	if (app->cardpki == NULL) {
		log_error("moica_mobile_no_pki", "reason",
		          "moica.roots / moica.intermediates not loaded: certificates cannot be "
		          "checked",
		          NULL);
		return OUT_ERROR;
	}
	v = cert != NULL ? cardpki_check_cert(app->cardpki, cert, holder_r) : CARDPKI_MALFORMED;
	verdict = cert == NULL ? "no_certificate" : cardpki_verdict_name(v);
	if (v == CARDPKI_OK && (strlen(idn) != 10 || !secret_equal(holder_r->id_last4, idn + 6))) {
		v = CARDPKI_MALFORMED;
		verdict = "holder_mismatch";
	}
	if (v == CARDPKI_OK)
		return OUT_DONE;
	explicit_bzero(holder_r, sizeof(*holder_r));
	log_warn("moica_mobile_cert_refused", "verdict", verdict, "id", log_mask(idn, masked),
	         NULL);
	store_audit_append(app->store, app_now(), "moica_mobile_cert_refused",
	                   json_pack("{s:s}", "verdict", verdict));
	return v == CARDPKI_REVOCATION_UNAVAILABLE ? OUT_ERROR : OUT_CERT;
}

/* The approval arrived: is it the typed ID's person, and does the
 * result's certificate pass the card PKI check for that ID? Then link the
 * person with the certificate's name, keep the name for the session and
 * mark the stage proven. Nothing is kept otherwise. */
static enum outcome
approved(struct isso_app *app, json_t *st, const char *hashed, const char *cert)
{
	json_t *ticket = json_object_get(st, "ticket");
	struct cardpki_holder holder;
	char *idn = NULL, *sealed = NULL, uuid[37], masked[32];
	enum outcome o = OUT_ERROR;

	memset(&holder, 0, sizeof(holder));
	idn = method_state_open(app, st, "id");
	if (idn == NULL)
		goto out;
	if (!conn_twfido_same_person(json_string_value(json_object_get(ticket, "hash")), hashed)) {
		log_warn("moica_mobile_mismatch", "id", log_mask(idn, masked), NULL);
		o = OUT_MISMATCH;
		goto out;
	}
	o = check_cert(app, idn, cert, &holder);
	if (o != OUT_DONE)
		goto out;
	o = OUT_ERROR;
	if (secret_seal(&app->secrets, holder.name, strlen(holder.name), &sealed) < 0) {
		log_error("moica_mobile_seal_failed", NULL);
		goto out;
	}
	if (person_link_id(app, idn, holder.name, uuid) < 0) {
		log_error("moica_mobile_link_failed", "id", log_mask(idn, masked), NULL);
		goto out;
	}
	json_object_set_new(st, "name", json_string(sealed));
	json_object_set_new(st, "uuid", json_string(uuid));
	json_object_set_new(st, "stage", json_string("proven"));
	o = OUT_DONE;
out:
	explicit_bzero(&holder, sizeof(holder));
	free(sealed);
	xfree_secret(idn);
	return o;
}

/* Whether this node may send the ATH-02 poll of txn that follows the one
 * stamped `polled` (ms; 0 before the first). The caller has checked that
 * 4 s have passed since then; several nodes may have read the same state
 * at once, so the turn is taken in the store: the first one creates the
 * eph row (kind POLL_KIND, id the SHA-256 of txn and polled), the others
 * count 2 or more and answer "pending". Only the winner stamps the next
 * `polled`, so all nodes together poll one transaction at most every 4 s.
 * The row lives POLL_WINDOW s: should the winner die mid-poll, another
 * node takes the turn after that, still more than 4 s later. When the
 * store fails nothing is sent (the citizen's page keeps polling). */
static bool
poll_turn(struct isso_app *app, const char *txn, int64_t polled)
{
	char id[65];
	char *key;
	int64_t now = app_now();
	int count = 0;

	if (txn == NULL)
		return false;
	key = xasprintf("%s:%lld", txn, (long long)polled);
	secret_sha256_hex(key, strlen(key), id);
	free(key);
	if (store_eph_incr(app->store, POLL_KIND, id, now, now + POLL_WINDOW, &count) < 0) {
		log_warn("moica_mobile_poll_turn_failed", NULL);
		return false;
	}
	return count == 1;
}

/* Asks the service about the current ticket, at most once per poll
 * interval per transaction, and records the answer in st. *changed_r
 * tells whether st must be saved. */
static enum outcome
poll_once(struct isso_app *app, struct http_req *req, json_t *st, bool *changed_r)
{
	json_t *ticket = json_object_get(st, "ticket");
	struct twfido_status status;
	const char *error = NULL;
	char *hashed = NULL, *cert = NULL;
	enum outcome o;
	int64_t polled;
	int ret;

	*changed_r = false;
	if (strcmp(stage_of(st), "proven") == 0)
		return OUT_DONE;
	o = outcome_parse(json_string_value(json_object_get(st, "outcome")));
	if (o != OUT_NONE)
		return o;
	if (ticket == NULL)
		return OUT_NONE;
	polled = json_integer_value(json_object_get(st, "polled"));
	if (method_now_ms() - polled < conn_twfido_poll_interval())
		return OUT_PENDING;
	if (!poll_turn(app, json_string_value(json_object_get(ticket, "txn")), polled))
		return OUT_PENDING;
	ret = conn_twfido_poll(
	    mm_state(app)->conn, json_string_value(json_object_get(ticket, "txn")),
	    json_string_value(json_object_get(ticket, "tid")), &status, &hashed, &cert, &error);
	/* Stamped after the exchange: the connector's own stamp is earlier,
	 * so a poll this method allows is never one the connector refuses. */
	json_object_set_new(st, "polled", json_integer(method_now_ms()));
	*changed_r = true;
	if (ret == ISSO_ERR_LIMIT) {
		o = OUT_PENDING;
	} else if (ret < 0) {
		log_warn("moica_mobile_poll_failed", "code", status.code, "reason",
		         error != NULL ? error : "", NULL);
		o = OUT_ERROR;
	} else {
		switch (status.state) {
		case TWFIDO_PENDING:
			o = app_now() > json_integer_value(json_object_get(ticket, "exp")) +
			                    EXPIRY_GRACE
			        ? OUT_EXPIRED
			        : OUT_PENDING;
			break;
		case TWFIDO_OK:
			o = approved(app, st, hashed, cert);
			break;
		case TWFIDO_DENIED:
			o = OUT_DENIED;
			break;
		case TWFIDO_EXPIRED:
			o = OUT_EXPIRED;
			break;
		case TWFIDO_NOT_ENROLLED:
			o = OUT_NOT_ENROLLED;
			break;
		default:
			o = OUT_ERROR;
			break;
		}
	}
	if (o != OUT_PENDING) {
		/* The ticket is spent either way. */
		json_object_del(st, "ticket");
		json_object_del(st, "polled");
		if (o != OUT_DONE)
			json_object_set_new(st, "outcome", json_string(outcome_names[o]));
		log_info("moica_mobile_result", "state", outcome_names[o], NULL);
		if (o != OUT_DONE)
			login_failed(req, outcome_names[o]);
	}
	free(hashed);
	free(cert);
	return o;
}

/* The page for the way w, waiting for the app (or saying why the last
 * request ended and what to do next). */
static void
wait_page(struct isso_app *app, struct http_req *req, const char *id, json_t *st, enum way w,
          int status, const char *error_key, const char *info_key)
{
	static const char *const templates[WAY_COUNT] = {[WAY_QR] = "moica-mobile-qr",
	                                                 [WAY_APP] = "moica-mobile-app",
	                                                 [WAY_PUSH] = "moica-mobile-push"};
	json_t *ctx = base_ctx(app, req, id, 1);
	json_t *ticket = json_object_get(st, "ticket");
	enum outcome o = outcome_parse(json_string_value(json_object_get(st, "outcome")));
	char *svg = NULL, *link = NULL;

	json_object_set_new(ctx, "csrf", json_string(csrf_token(req, &app->secrets, CSRF_QR)));
	json_object_set_new(
	    ctx, "help_url",
	    json_string(pool_printf(http_pool(req), "%s#faq", flow_url(req, HELP_PATH, id))));
	json_object_set_new(ctx, "action_url", json_string(ways[w].path));
	json_object_set_new(ctx, "others", way_buttons(app, req, (int)w));
	if (o == OUT_DENIED)
		error_key = w == WAY_QR ? "mm.denied" : "mm.denied_again";
	else if (o == OUT_EXPIRED)
		error_key = w == WAY_QR ? "mm.expired" : "mm.expired_again";
	else if (o == OUT_UNREACHABLE)
		error_key = "mm.push_unreachable";
	else if (ticket != NULL) {
		const char *qr = json_string_value(json_object_get(ticket, "qr"));

		if (w == WAY_QR) {
			svg = qr_svg(qr, page_text(app, req, "mm.qr_alt"));
			if (svg != NULL)
				json_object_set_new(ctx, "svg", json_string(svg));
		} else if (w == WAY_APP) {
			const char *rtn = pool_printf(http_pool(req), "%s%s?t=%s",
			                              app->cfg->server.public_url, RETURN_PATH, id);

			/* rtn_val: nothing the return needs (the URL carries the
			 * login, the browser's binding cookie proves whose it is) */
			link =
			    conn_twfido_app_link(TWFIDO_MODE_MWEB2APP, qr, rtn,
			                         json_string_value(json_object_get(ticket, "txn")));
			if (link != NULL)
				json_object_set_new(ctx, "app_link", json_string(link));
		}
		if (w != WAY_PUSH && svg == NULL && link == NULL) {
			json_decref(ctx);
			log_error(w == WAY_QR ? "moica_mobile_qr_failed"
			                      : "moica_mobile_link_failed",
			          NULL);
			page_error(app, req, 503, "mm.error_title", "mm.error",
			           flow_url(req, "/login", id));
			return;
		}
		json_object_set_new(ctx, "pending", json_true());
		json_object_set_new(ctx, "seconds", json_integer(seconds_left(st)));
		json_object_set_new(ctx, "status_url",
		                    json_string(flow_url(req, "/login/moica-mobile/status", id)));
		free(svg);
		free(link);
	}
	set_error(app, req, ctx, error_key);
	if (info_key != NULL)
		json_object_set_new(ctx, "info", json_string(page_text(app, req, info_key)));
	page_render(app, req, status, templates[w], "mm.heading", ctx);
}

/* Where the citizen goes for an outcome: the phone step when done, else
 * the page of the current way, which shows the outcome. */
static const char *
next_url(struct http_req *req, const char *id, json_t *st, enum outcome o)
{
	return flow_url(req, o == OUT_DONE ? "/login/moica-mobile/phone" : ways[way_of(st)].path,
	                id);
}

/* A new request, the way w (the same again, or another). */
static void
regenerate(struct isso_app *app, struct http_req *req, const char *id, json_t *txn, json_t *st,
           enum way w)
{
	char *idn = method_state_open(app, st, "id");
	enum outcome o;

	if (idn == NULL) {
		refuse_order(app, req, id);
		return;
	}
	if (method_addr_limited(app, req, "mm-id")) {
		login_failed(req, "rate_limited");
		wait_page(app, req, id, st, way_of(st), 429, "error.rate_limited", NULL);
		goto out;
	}
	if (id_limited(app, idn)) {
		login_failed(req, "id_limited");
		wait_page(app, req, id, st, way_of(st), 429, "mm.id_limited", NULL);
		goto out;
	}
	o = issue_ticket(app, idn, st, w);
	if (o != OUT_PENDING)
		login_failed(req, outcome_names[o]);
	if (!method_txn_save(app, req, id, txn))
		goto out;
	if (o == OUT_PENDING || o == OUT_UNREACHABLE)
		http_redirect(req, 303, flow_url(req, ways[w].path, id));
	else
		result_page(app, req, id, o);
out:
	xfree_secret(idn);
}

/* Asks the service once (when the pause between polls allows), keeps
 * what changed, and answers: the current way's page with info_key while
 * the request is open, else the next step. */
static void
poll_and_answer(struct isso_app *app, struct http_req *req, const char *id, json_t *txn, json_t *st,
                const char *info_key)
{
	bool changed = false;
	enum outcome o = poll_once(app, req, st, &changed);

	if (changed && !method_txn_save(app, req, id, txn))
		return;
	if (o == OUT_PENDING || o == OUT_NONE)
		wait_page(app, req, id, st, way_of(st), 200, NULL, info_key);
	else
		http_redirect(req, 303, next_url(req, id, st, o));
}

/* …/qr, …/app, …/push: the page of one way (step) */
static void
wait_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn, enum way step)
{
	json_t *st = method_state(txn, STATE_KEY);
	const char *stage = stage_of(st), *action;
	enum outcome o;
	int w;

	if (strcmp(stage, "proven") == 0) {
		http_redirect(req, 303, flow_url(req, "/login/moica-mobile/phone", id));
		return;
	}
	if (strcmp(stage, "qr") != 0) {
		refuse_order(app, req, id);
		return;
	}
	if (http_method(req) != HTTP_POST) {
		if (way_of(st) != step) {
			/* an old tab or bookmark: the current way's page */
			http_redirect(req, 303, flow_url(req, ways[way_of(st)].path, id));
			return;
		}
		o = outcome_parse(json_string_value(json_object_get(st, "outcome")));
		if (o == OUT_NOT_ENROLLED || o == OUT_ERROR || o == OUT_MISMATCH || o == OUT_CERT)
			result_page(app, req, id, o);
		else
			wait_page(app, req, id, st, step, 200, NULL, NULL);
		return;
	}
	if (!csrf_check(req, &app->secrets, CSRF_QR)) {
		wait_page(app, req, id, st, way_of(st), 403, "error.csrf", NULL);
		return;
	}
	action = http_form(req, "action");
	w = way_parse(action);
	if (w >= 0) {
		/* another way, or the same again */
		regenerate(app, req, id, txn, st, (enum way)w);
		return;
	}
	if (action != NULL && strcmp(action, "regenerate") == 0) {
		regenerate(app, req, id, txn, st, way_of(st));
		return;
	}
	/* "check": the page without script asks once. */
	poll_and_answer(app, req, id, txn, st, "mm.waiting");
}

/* GET …/return: where the MOI app sends the browser back after the
 * citizen answered an app link. Asks the service at once (when the pause
 * between polls allows) and moves on; otherwise the app way's page,
 * which keeps asking. Opened in a browser that did not start the login,
 * it only says where to go on. */
static void
return_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st = method_state(txn, STATE_KEY);
	const char *stage = stage_of(st);

	if (strcmp(stage, "proven") == 0) {
		http_redirect(req, 303, flow_url(req, "/login/moica-mobile/phone", id));
		return;
	}
	if (strcmp(stage, "qr") != 0) {
		refuse_order(app, req, id);
		return;
	}
	poll_and_answer(app, req, id, txn, st, "mm.returned");
}

/* GET …/status: the page's script asks every 4 s; JSON
 * {"state": "pending"|"done"|…, "seconds": n, "next": url}. */
static void
status_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st = method_state(txn, STATE_KEY);
	const char *stage = stage_of(st);
	json_t *out;
	enum outcome o;
	bool changed = false;

	if (strcmp(stage, "qr") != 0 && strcmp(stage, "proven") != 0) {
		http_send_json(req, 409, json_pack("{s:s}", "state", "none"));
		return;
	}
	o = poll_once(app, req, st, &changed);
	if (changed && flow_txn_save(app, id, txn) < 0) {
		http_send_json(req, 410, json_pack("{s:s}", "state", "gone"));
		return;
	}
	out = json_pack("{s:s}", "state", outcome_names[o]);
	if (o == OUT_PENDING)
		json_object_set_new(out, "seconds", json_integer(seconds_left(st)));
	else
		json_object_set_new(out, "next", json_string(next_url(req, id, st, o)));
	http_send_json(req, 200, out);
}

/* ---- step 3: phone and SMS code ---- */

static void
phone_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st = method_state(txn, STATE_KEY);
	const char *uuid = json_string_value(json_object_get(st, "uuid"));
	struct otp_step_view view = {
	    .title_key = "mm.heading",
	    .step_keys = step_keys,
	    .current = 2,
	    .back_url = flow_url(req, "/login", id),
	};

	if (strcmp(stage_of(st), "proven") != 0 || uuid == NULL) {
		refuse_order(app, req, id);
		return;
	}
	otp_step_complete(app, req, id, txn, &method_moica_mobile, &view, st, uuid, LOA_HIGH);
}

/* The return from the app in a browser that did not start the login:
 * nothing of the login is shown or changed. */
static void
elsewhere_page(struct isso_app *app, struct http_req *req)
{
	json_t *ctx = json_object();

	page_render(app, req, 400, "moica-mobile-elsewhere", "mm.elsewhere_title", ctx);
}

/* Without the MOICA roots no result certificate can be checked: the
 * method is not available (as the MOICA card's). */
static bool
prepare(struct isso_app *app, struct http_req *req, const struct method_step *step)
{
	(void)step;
	if (app->cardpki == NULL) {
		page_error(app, req, 503, "mm.error_title", "mm.error", "/");
		return false;
	}
	return true;
}

static void
qr_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	wait_step(app, req, id, txn, WAY_QR);
}

static void
app_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	wait_step(app, req, id, txn, WAY_APP);
}

static void
push_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	wait_step(app, req, id, txn, WAY_PUSH);
}
