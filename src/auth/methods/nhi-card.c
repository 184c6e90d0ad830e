/* Method nhi-card (健保卡晶片驗證), steps as the city's briefing draws them:
 *   1 card      insert the card; the page reads its number from the NHI
 *               card component (or isso-cardagent) and the citizen types
 *               the national ID
 *   2 password  the card's registration password (註冊密碼): the page has
 *               the card sign a one-time random of ours (H_Sign) and the
 *               component encrypt the password with that random to the
 *               NHI service's key (EnCrypt), and we ask the NHI service
 *               whether the card, the ID and the password belong together
 *   3 phone     the shared phone + SMS code step (otp_step)
 * then consent, with loa substantial. Neither the password nor anything
 * read from the card but its number reaches us in the clear; the card
 * number the page reports is only a claim until the NHI service has
 * checked the card's signature.
 *
 * State in the login transaction under "nhi_card":
 *   stage    "card" | "password" | "proven"
 *   id       the typed ID, sealed
 *   card     the card number (12 digits) the page reported
 *   random   {v, exp}: the one-time random of the password page and its
 *            expiry (Unix seconds); its hash is also in the store (kind
 *            nhi-rand), taken atomically before the service is asked, so
 *            two POSTs racing with one random cannot both use it
 *   uuid     the person, once proven */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "auth/otp-step.h"
#include "auth/page.h"
#include "auth/person.h"
#include "conn/conn-service.h"
#include "conn/nhi.h"
#include "http/csrf.h"
#include "lib/b64.h"
#include "lib/config.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define STATE_KEY   "nhi_card"
#define CSRF_ID     "nhi"
#define HELP_PATH   "/nhi-card/help"
#define SCRIPT_PATH "/static/card-nhi.js"
/* A random is good for one try within this many seconds; the store keeps
 * its hash under this kind, taken atomically by the one POST that uses it. */
#define RANDOM_TTL  300
#define RANDOM_KIND "nhi-rand"
/* Card-proven attempts per national ID per window, whatever the card: the
 * NHI service suspends a card after 3 wrong passwords, this bounds
 * someone with many cards trying one ID. The count (store kind ID_KIND,
 * under the ID's lookup hash) is read before the NHI service is asked,
 * and raised only by an answer that proved the card (see
 * password_step). */
#define ID_WINDOW 600
#define ID_MAX    10
#define ID_KIND   "nhi-id"
/* Largest card signature / certificate / password blob accepted (b64). */
#define SIG_MAX  2048
#define CERT_MAX 8192

static const char *const amr_nhi[] = {"sc", "pwd", "sms", "otp", "mfa", NULL};
static const char *const bullets[] = {"nhi.bullet1", "nhi.bullet2", NULL};
static const char *const step_keys[] = {"nhi.step1", "nhi.step2", "nhi.step3", NULL};

static void card_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void password_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void phone_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);

static const struct method_step steps[] = {
    {"", HTTP_GET | HTTP_POST, 0, card_step},
    {"password", HTTP_GET | HTTP_POST, 0, password_step},
    {"phone", HTTP_GET | HTTP_POST, 0, phone_step},
    {NULL, 0, 0, NULL},
};

/* Vouches the ID and the number proven by SMS (the briefing: 健保卡 →
 * 身分證號、手機); a linked TaipeiPass member's data flows through
 * linked_member_data (歸戶 by the national ID). */
static int nhi_init(struct isso_app *app, bool build, struct method_setup *setup,
                    const char **error_r);
static void nhi_free(void *state);

const struct method method_nhi_card = {
    .id = "nhi-card",
    .loa = LOA_SUBSTANTIAL,
    .amr = amr_nhi,
    .vouches = CLAIM_UUID | CLAIM_ID_NUMBER | CLAIM_PHONE,
    .linked_member_data = true,
    .title_key = "nhi.title",
    .bullet_keys = bullets,
    .register_path = HELP_PATH,
    .init = nhi_init,
    .free = nhi_free,
    .steps = steps,
    .help_template = "nhi-card-help",
    .help_title_key = "nhi.help_title",
};

/* [nhi]: the NHI card verification service. No working defaults:
 * without a url the method is not offered. */
struct nhi_settings {
	char *mode;      /* "sim" | "http" */
	char *url;       /* NHI card verification API base (/v1/verify appended) */
	char *client_id; /* our account at the NHI service */
	char *secret;
	int timeout_ms; /* 5000 */
};

#define NHI_OPT(key, type, field, def, lo, hi, secret)                                             \
	{                                                                                          \
		key, type, offsetof(struct nhi_settings, field), def, lo, hi, secret               \
	}

static const struct config_option nhi_options[] = {
    NHI_OPT("mode", CONFIG_OPT_STRING, mode, "http", 0, 0, false),
    NHI_OPT("url", CONFIG_OPT_URL, url, "", 0, 0, false),
    NHI_OPT("client_id", CONFIG_OPT_STRING, client_id, "", 0, 0, false),
    NHI_OPT("secret", CONFIG_OPT_STRING, secret, "", 0, 0, true),
    NHI_OPT("timeout_ms", CONFIG_OPT_INT, timeout_ms, "5000", 100, 600000, false),
    {NULL, 0, 0, NULL, 0, 0, false},
};

/* [cardagent] nhi_url: the NHI card component's WebSocket the pages use. */
struct nhi_agent_settings {
	char *nhi_url;
};

static const struct config_option nhi_agent_options[] = {
    {"nhi_url", CONFIG_OPT_STRING, offsetof(struct nhi_agent_settings, nhi_url),
     "wss://iccert.nhi.gov.tw:7777/echo", 0, 0, false},
    {NULL, 0, 0, NULL, 0, 0, false},
};

/* What the handlers use, built at start-up (also when not configured: the
 * help page is served anyway). */
struct nhi_state {
	struct conn_nhi *conn; /* NULL: nhi.url unset, the method not offered */
	char *component_url;   /* cardagent.nhi_url */
};

static int
nhi_init(struct isso_app *app, bool build, struct method_setup *setup, const char **error_r)
{
	struct nhi_settings s = {0};
	struct nhi_agent_settings a = {0};
	struct conn_service svc;
	struct nhi_state *st;
	int ret = config_section_parse(app->cfg, "nhi", nhi_options, &s, error_r);

	if (ret < 0)
		return ret;
	ret = config_section_parse(app->cfg, "cardagent", nhi_agent_options, &a, error_r);
	if (ret < 0)
		goto out;
	svc = (struct conn_service){"nhi",       s.mode,   s.url,   "client_id",
	                            s.client_id, "secret", s.secret};
	ret = conn_service_check(app->cfg, &svc, error_r);
	if (ret < 0 || !build)
		goto out;
	if (s.url[0] == '\0')
		method_setup_unset(setup->unset, sizeof(setup->unset), "nhi.url");
	if (app->sms == NULL)
		method_setup_unset(setup->unset, sizeof(setup->unset), "sms.url");
	st = xcalloc(1, sizeof(*st));
	st->component_url = xstrdup(a.nhi_url);
	setup->state = st;
	if (s.url[0] == '\0' || (ret = conn_service_usable(&svc, error_r)) < 0)
		goto out;
	st->conn = conn_nhi_new(s.url, s.client_id, s.secret, s.timeout_ms);
	if (st->conn == NULL) {
		*error_r = "nhi: bad url or credentials";
		ret = ISSO_ERR_INVALID;
	}
out:
	config_section_free(nhi_options, &s);
	config_section_free(nhi_agent_options, &a);
	return ret;
}

static void
nhi_free(void *state)
{
	struct nhi_state *st = state;

	if (st->conn != NULL)
		conn_nhi_free(st->conn);
	free(st->component_url);
	free(st);
}

static const struct nhi_state *
nhi_state(const struct isso_app *app)
{
	return method_state_of(app, &method_nhi_card);
}

/* The scheme://host[:port] of a ws:// or wss:// URL (for CSP connect-src),
 * in request memory; NULL when url is neither. */
static const char *
ws_origin(struct http_req *req, const char *url)
{
	size_t skip, n;

	if (strncmp(url, "ws://", 5) == 0)
		skip = 5;
	else if (strncmp(url, "wss://", 6) == 0)
		skip = 6;
	else
		return NULL;
	n = skip + strcspn(url + skip, "/?#");
	if (n == skip)
		return NULL;
	return pool_strndup(http_pool(req), url, n);
}

/* The security event for a failed attempt: the method, why, and the
 * client address; never the ID or the password. */
static void
login_failed(struct http_req *req, const char *reason)
{
	flow_login_failed(json_pack("{s:s, s:s, s:s?}", "method", "nhi-card", "reason", reason,
	                            "address", http_remote_addr(req)));
}

/* Has idn had ID_MAX card-proven answers in the window? Asked before the
 * NHI service, so that once the limit is reached the service is not
 * asked at all. A store failure counts as reached. */
static bool
id_limit_reached(struct isso_app *app, const char *idn)
{
	char hash[65];
	int count = 0;

	secret_lookup_hash(&app->secrets, "id", idn, hash);
	if (store_eph_get(app->store, ID_KIND, hash, app_now(), NULL, &count) < 0)
		return true;
	return count >= ID_MAX;
}

/* One more card-proven answer for idn (the window starts at the first). */
static void
id_count(struct isso_app *app, const char *idn)
{
	char hash[65];
	int64_t now = app_now();
	int count = 0;

	secret_lookup_hash(&app->secrets, "id", idn, hash);
	if (store_eph_incr(app->store, ID_KIND, hash, now, now + ID_WINDOW, &count) < 0)
		log_error("nhi_card_id_count_failed", NULL);
}

static const char *
stage_of(json_t *st)
{
	return json_string_value(json_object_get(st, "stage")) ?: "";
}

/* The context every step page shares; current < 0 shows no steps. */
static json_t *
base_ctx(struct isso_app *app, struct http_req *req, const char *id, int current)
{
	const char *url = nhi_state(app)->component_url, *origin = ws_origin(req, url);
	json_t *ctx =
	    json_pack("{s:s, s:s, s:s, s:s}", "txn", id, "back_url", flow_url(req, "/login", id),
	              "page_script", SCRIPT_PATH, "help_url", flow_url(req, HELP_PATH, id));

	if (origin != NULL) {
		http_csp_allow_connect(req, origin);
		json_object_set_new(ctx, "nhi_url", json_string(url));
	} else {
		log_warn("nhi_card_bad_component_url", NULL);
	}
	if (current >= 0)
		json_object_set_new(ctx, "steps", method_steps(app, req, step_keys, current));
	return ctx;
}

static void
set_error(struct isso_app *app, struct http_req *req, json_t *ctx, const char *error_key)
{
	page_form_error(app, req, ctx, error_key, NULL, NULL);
}

static void
refuse_order(struct isso_app *app, struct http_req *req, const char *id)
{
	page_error(app, req, 403, "nhi.order_title", "nhi.order",
	           flow_url(req, "/login/nhi-card", id));
}

static bool
card_no_valid(const char *s)
{
	return s != NULL && strlen(s) == 12 && strspn(s, "0123456789") == 12;
}

/* A base64 field of at most max characters (standard alphabet), or NULL. */
static const char *
form_b64(struct http_req *req, const char *name, size_t max)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
	const char *v = http_form(req, name);
	size_t n = v != NULL ? strlen(v) : 0;

	if (n == 0 || n > max || strspn(v, alphabet) != n)
		return NULL;
	return v;
}

/* A page that ends this attempt: what happened, and the ways on. */
static void
result_page(struct isso_app *app, struct http_req *req, const char *id, int status,
            const char *title_key, const char *message_key, bool retry, int minutes)
{
	json_t *ctx = base_ctx(app, req, id, -1);
	const char *msg = page_text(app, req, message_key);

	if (minutes > 0) {
		/* "%d" in the message: the minutes left of a suspension. */
		const char *mark = strstr(msg, "%d");
		if (mark != NULL)
			msg = pool_printf(http_pool(req), "%.*s%d%s", (int)(mark - msg), msg,
			                  minutes, mark + 2);
	}
	json_object_del(ctx, "page_script");
	json_object_set_new(ctx, "message", json_string(msg));
	if (retry)
		json_object_set_new(ctx, "retry_url",
		                    json_string(flow_url(req, "/login/nhi-card", id)));
	page_render(app, req, status, "nhi-card-result", title_key, ctx);
}

/* ---- step 1: the card and the national ID ---- */

static void
card_page(struct isso_app *app, struct http_req *req, const char *id, int status,
          const char *error_key, const char *typed)
{
	json_t *ctx = base_ctx(app, req, id, 0);

	json_object_set_new(ctx, "csrf", json_string(csrf_token(req, &app->secrets, CSRF_ID)));
	json_object_set_new(ctx, "id_number", json_string(typed != NULL ? typed : ""));
	set_error(app, req, ctx, error_key);
	page_notice(app, req, ctx, id, "nhi-card");
	page_render(app, req, status, "nhi-card-card", "nhi.heading", ctx);
}

static void
card_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	const char *typed, *card;
	char idn[11], *sealed = NULL;
	json_t *st;

	if (http_method(req) != HTTP_POST) {
		card_page(app, req, id, 200, NULL, NULL);
		return;
	}
	if (!csrf_check(req, &app->secrets, CSRF_ID)) {
		card_page(app, req, id, 403, "error.csrf", NULL);
		return;
	}
	typed = http_form(req, "id_number");
	card = http_form(req, "card_no");
	if (typed == NULL || !idnum_normalize(typed, idn) || !idnum_is_valid(idn)) {
		card_page(app, req, id, 400, "nhi.bad_id",
		          typed != NULL && strlen(typed) <= 16 ? typed : NULL);
		goto out;
	}
	if (!card_no_valid(card)) {
		/* No script, no component, or no card read: say which to fix. */
		card_page(app, req, id, 400, "nhi.no_card", idn);
		goto out;
	}
	if (method_addr_limited(app, req, "nhi-card")) {
		card_page(app, req, id, 429, "error.rate_limited", idn);
		goto out;
	}
	if (secret_seal(&app->secrets, idn, strlen(idn), &sealed) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
	/* A new card or ID starts the method over: nothing proven before,
	 * nor a phone code sent on its behalf, survives. */
	st = json_pack("{s:s, s:s, s:s}", "stage", "password", "id", sealed, "card", card);
	json_object_set_new(txn, STATE_KEY, st);
	json_object_del(txn, "otp_step");
	if (!method_txn_save(app, req, id, txn))
		goto out;
	http_redirect(req, 303, flow_url(req, "/login/nhi-card/password", id));
out:
	free(sealed);
	explicit_bzero(idn, sizeof(idn));
}

/* ---- step 2: the registration password ---- */

/* A fresh one-time random in st and in the store, returned (request
 * memory); the previous one is dead. NULL on a store failure. */
static const char *
new_random(struct isso_app *app, struct http_req *req, const char *id, json_t *st)
{
	const char *old = json_string_value(json_object_get(json_object_get(st, "random"), "v"));
	int64_t exp = app_now() + RANDOM_TTL;
	char r[48], key[65];
	json_t *data;
	int ret;

	if (old != NULL)
		(void)store_eph_delete(app->store, RANDOM_KIND,
		                       secret_sha256_hex(old, strlen(old), key));
	secret_token(32, r); /* 43 characters of base64url */
	data = json_pack("{s:s}", "txn", id);
	ret =
	    store_eph_put(app->store, RANDOM_KIND, secret_sha256_hex(r, strlen(r), key), data, exp);
	json_decref(data);
	if (ret < 0)
		return NULL;
	json_object_set_new(st, "random", json_pack("{s:s, s:I}", "v", r, "exp", (json_int_t)exp));
	return pool_strdup(http_pool(req), r);
}

/* The password page with a new random; the transaction is saved first
 * (false: the transaction was gone and an error page sent). */
static bool
password_page(struct isso_app *app, struct http_req *req, const char *id, json_t *txn, int status,
              const char *error_text)
{
	json_t *st = method_state(txn, STATE_KEY), *ctx;
	const char *card = json_string_value(json_object_get(st, "card"));
	const char *random = new_random(app, req, id, st);

	if (random == NULL) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		return false;
	}
	if (!method_txn_save(app, req, id, txn))
		return false;
	ctx = base_ctx(app, req, id, 1);
	json_object_set_new(ctx, "csrf", json_string(csrf_token(req, &app->secrets, CSRF_ID)));
	json_object_set_new(ctx, "random", json_string(random));
	json_object_set_new(ctx, "card_no", json_string(card != NULL ? card : ""));
	/* The page shows only the card number's last four digits. */
	json_object_set_new(ctx, "card_tail",
	                    json_string(card != NULL && strlen(card) == 12 ? card + 8 : ""));
	if (error_text != NULL) {
		json_object_set_new(ctx, "error", json_string(error_text));
		json_object_set_new(ctx, "has_error", json_true());
	}
	page_render(app, req, status, "nhi-card-password", "nhi.heading", ctx);
	return true;
}

/* Takes the page's random out of st and out of the store: true only for
 * the one request that posts the transaction's current random, unexpired
 * and not yet used. Either way st no longer holds it. */
static bool
take_random(struct isso_app *app, json_t *st, const char *posted)
{
	json_t *r = json_object_get(st, "random");
	const char *v = json_string_value(json_object_get(r, "v"));
	json_int_t exp = json_integer_value(json_object_get(r, "exp"));
	bool ok = false, taken = false;
	char key[65];

	if (v != NULL && posted != NULL && secret_equal(v, posted)) {
		secret_sha256_hex(v, strlen(v), key);
		if (exp < app_now())
			(void)store_eph_delete(app->store, RANDOM_KIND, key);
		else if (store_eph_take(app->store, RANDOM_KIND, key, app_now(), &taken) == 0)
			ok = taken;
	}
	json_object_del(st, "random");
	return ok;
}

static void
password_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st = method_state(txn, STATE_KEY);
	const char *card = json_string_value(json_object_get(st, "card"));
	const char *random, *sig, *cert, *blob, *signed_card;
	char *idn = NULL, uuid[37], masked[32], text[512];
	int tries_left = -1, retry_after = 0;
	enum nhi_result r;

	if (strcmp(stage_of(st), "proven") == 0) {
		http_redirect(req, 303, flow_url(req, "/login/nhi-card/phone", id));
		return;
	}
	if (strcmp(stage_of(st), "password") != 0 || !card_no_valid(card)) {
		refuse_order(app, req, id);
		return;
	}
	if (http_method(req) != HTTP_POST) {
		password_page(app, req, id, txn, 200, NULL);
		return;
	}
	if (!csrf_check(req, &app->secrets, CSRF_ID)) {
		login_failed(req, "csrf");
		password_page(app, req, id, txn, 403, page_text(app, req, "error.csrf"));
		return;
	}
	random = http_form(req, "random");
	if (!take_random(app, st, random)) {
		/* Replayed, stale or forged: this try is over, a new one starts. */
		login_failed(req, "random_stale");
		password_page(app, req, id, txn, 400, page_text(app, req, "nhi.stale"));
		return;
	}
	/* The random is spent from here on, whatever happens next. */
	if (!method_txn_save(app, req, id, txn))
		return;
	sig = form_b64(req, "signature", SIG_MAX);
	cert = form_b64(req, "cert", CERT_MAX);
	blob = form_b64(req, "blob", SIG_MAX);
	signed_card = http_form(req, "signed_card_no");
	if (sig == NULL || cert == NULL || blob == NULL) {
		login_failed(req, "malformed");
		password_page(app, req, id, txn, 400, page_text(app, req, "nhi.card_failed"));
		return;
	}
	if (signed_card == NULL || strcmp(signed_card, card) != 0) {
		/* Another card than the one read at step 1 signed. */
		login_failed(req, "card_changed");
		result_page(app, req, id, 409, "nhi.changed_title", "nhi.changed", true, 0);
		return;
	}
	if (method_addr_limited(app, req, "nhi-card")) {
		login_failed(req, "rate_limited");
		password_page(app, req, id, txn, 429, page_text(app, req, "error.rate_limited"));
		return;
	}
	idn = method_state_open(app, st, "id");
	if (idn == NULL) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		return;
	}
	/* The per-ID limit is checked before the NHI service is asked: once
	 * reached, no more guesses for this ID reach the service. */
	if (id_limit_reached(app, idn)) {
		login_failed(req, "id_limited");
		password_page(app, req, id, txn, 429, page_text(app, req, "nhi.id_limited"));
		goto out;
	}
	r = conn_nhi_verify(nhi_state(app)->conn, card, idn, random, sig, cert, blob, &tries_left,
	                    &retry_after);
	/* Tries per ID count only once the card's signature was good (any
	 * answer but "signature" or an error): a stranger posting junk with
	 * someone's ID must not be able to lock that person out. Concurrent
	 * posts for one ID can each pass the check above before either is
	 * counted; each still needs its own random and the card. */
	if (r != NHI_SIGNATURE && r != NHI_ERROR)
		id_count(app, idn);
	if (r != NHI_OK)
		login_failed(req, r == NHI_PASSWORD    ? "wrong_password"
		                  : r == NHI_SUSPENDED ? "suspended"
		                  : r == NHI_MISMATCH  ? "id_mismatch"
		                  : r == NHI_SIGNATURE ? "bad_signature"
		                                       : "service_failed");
	switch (r) {
	case NHI_OK:
		if (person_link_id(app, idn, NULL, uuid) < 0) {
			log_error("nhi_card_link_failed", "id", log_mask(idn, masked), NULL);
			page_error(app, req, 503, "error.unavailable", "error.unavailable.message",
			           NULL);
			goto out;
		}
		json_object_set_new(st, "uuid", json_string(uuid));
		json_object_set_new(st, "stage", json_string("proven"));
		if (!method_txn_save(app, req, id, txn))
			goto out;
		log_info("nhi_card_verified", "id", log_mask(idn, masked), NULL);
		http_redirect(req, 303, flow_url(req, "/login/nhi-card/phone", id));
		break;
	case NHI_PASSWORD:
		log_info("nhi_card_password_wrong", "id", log_mask(idn, masked), NULL);
		if (tries_left > 0) {
			const char *fmt = page_text(app, req, "nhi.password_wrong_n");
			const char *mark = strstr(fmt, "%d");

			if (mark != NULL)
				snprintf(text, sizeof(text), "%.*s%d%s", (int)(mark - fmt), fmt,
				         tries_left, mark + 2);
			else
				snprintf(text, sizeof(text), "%s", fmt);
			password_page(app, req, id, txn, 403, text);
		} else {
			password_page(app, req, id, txn, 403,
			              page_text(app, req, "nhi.password_wrong"));
		}
		break;
	case NHI_SUSPENDED:
		log_info("nhi_card_suspended", "id", log_mask(idn, masked), NULL);
		result_page(app, req, id, 403, "nhi.suspended_title", "nhi.suspended", false,
		            retry_after > 0 ? (retry_after + 59) / 60 : 10);
		break;
	case NHI_MISMATCH:
		/* The same page whether the ID exists or not: only "this card
		 * and this ID do not go together". */
		log_info("nhi_card_mismatch", "id", log_mask(idn, masked), NULL);
		result_page(app, req, id, 403, "nhi.mismatch_title", "nhi.mismatch", true, 0);
		break;
	case NHI_SIGNATURE:
		log_warn("nhi_card_bad_signature", "id", log_mask(idn, masked), NULL);
		result_page(app, req, id, 403, "nhi.signature_title", "nhi.signature", true, 0);
		break;
	default:
		log_warn("nhi_card_service_failed", NULL);
		result_page(app, req, id, 503, "nhi.error_title", "nhi.error", true, 0);
		break;
	}
out:
	xfree_secret(idn);
}

/* ---- step 3: phone and SMS code ---- */

static void
phone_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st = method_state(txn, STATE_KEY);
	const char *uuid = json_string_value(json_object_get(st, "uuid"));
	struct otp_step_view view = {
	    .title_key = "nhi.heading",
	    .step_keys = step_keys,
	    .current = 2,
	    .back_url = flow_url(req, "/login", id),
	};

	if (strcmp(stage_of(st), "proven") != 0 || uuid == NULL) {
		refuse_order(app, req, id);
		return;
	}
	otp_step_complete(app, req, id, txn, &method_nhi_card, &view, st, uuid, LOA_SUBSTANTIAL);
}
