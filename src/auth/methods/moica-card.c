/* Method moica-card (實體自然人憑證), steps as the city's briefing draws them:
 *   1 card   insert the card, type the national ID and the card's PIN: the
 *            page has the citizen's local card component (HiPKI local
 *            server or isso-cardagent, reached through its /popupForm
 *            window) sign a one-time challenge of ours, and posts the
 *            signature and the certificate; we verify both (cardpki: chain
 *            to the GRCA, validity, key usage, revocation), compare the
 *            typed ID's last four digits with the certificate's and ask
 *            the MOICA service whether certificate and ID belong together
 *   2 phone  the shared phone + SMS code step (otp_step)
 * then consent, with loa high. The PIN never reaches us: the field has no
 * name, the page's script hands it to the card component only.
 *
 * A challenge is good for one attempt within CHALLENGE_TTL seconds. Each
 * rendering of the card page makes a new one (the previous one dies): the
 * text to be signed (tbs) is iSSO's login challenge (lib/loginchal.h)
 * "iSSO-LOGIN-v1\n<issuer>\n<nonce>\n<UTC time>", with a 256-bit nonce,
 * the only text isso-cardagent signs in its iSSO profile; the nonce's
 * SHA-256 names a store
 * object (kind "mc-chal") that a POST takes atomically before anything is
 * verified, so a replayed or raced signature is refused however fast it
 * comes. State in the login transaction under "moica_card":
 *
 *   chal   {n, tbs, exp}: the current challenge's nonce, text and expiry
 *          (Unix seconds)
 *   stage  "proven" once card and ID were verified
 *   id     the typed ID, sealed
 *   name   the certificate holder's name (subject CN), sealed
 *   card   the card's serial number as the component reported it
 *   uuid   the person (歸戶 by the national ID)
 *
 * Without the trust anchors (moica.roots / moica.intermediates missing at
 * start-up) app->cardpki is NULL and the method shows a "not available"
 * page instead of its form. Logs carry the verdict and the ID masked,
 * never the ID, the certificate or the signature. */
#include <stddef.h>
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
#include "conn/cardpki.h"
#include "conn/conn-service.h"
#include "conn/moica.h"
#include "http/csrf.h"
#include "lib/config.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/loginchal.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define STATE_KEY   "moica_card"
#define CSRF_ID     "mc"
#define CHAL_KIND   "mc-chal"
#define HELP_PATH   "/moica-card/help"
#define SCRIPT_PATH "/static/card-moica.js"
/* One challenge, one attempt, within this many seconds. */
#define CHALLENGE_TTL 300
/* Card-proven attempts per national ID per window, whatever the card:
 * bounds someone trying IDs against the MOICA service with one card. */
#define ID_WINDOW 600
#define ID_MAX    10
/* Largest signature (PKCS#7 with its certificate) and certificate (b64). */
#define SIG_MAX  16384
#define CERT_MAX 12288
/* How long the page waits for the card component's window to speak. */
#define AGENT_WAIT_MS 5000

static const char *const amr_mc[] = {"sc", "hwk", "pin", "sms", "otp", "mfa", NULL};
static const char *const bullets[] = {"mc.bullet1", "mc.bullet2", NULL};
static const char *const step_keys[] = {"mc.step1", "mc.step2", "mc.step3", NULL};

static void card_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static void phone_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
static bool prepare(struct isso_app *app, struct http_req *req, const struct method_step *step);
static void help_vars(struct isso_app *app, json_t *page);

static const struct method_step steps[] = {
    {"", HTTP_GET | HTTP_POST, 0, card_step},
    {"phone", HTTP_GET | HTTP_POST, 0, phone_step},
    {NULL, 0, 0, NULL},
};

/* The name comes from the certificate's subject; a linked TaipeiPass
 * member's other data flows through linked_member_data (歸戶 by the ID). */
static int mc_init(struct isso_app *app, bool build, struct method_setup *setup,
                   const char **error_r);
static void mc_free(void *state);

const struct method method_moica_card = {
    .id = "moica-card",
    .loa = LOA_HIGH,
    .amr = amr_mc,
    .vouches = CLAIM_UUID | CLAIM_NAME | CLAIM_ID_NUMBER | CLAIM_PHONE,
    .linked_member_data = true,
    .title_key = "mc.title",
    .bullet_keys = bullets,
    .register_path = HELP_PATH,
    .init = mc_init,
    .free = mc_free,
    .steps = steps,
    .prepare = prepare,
    .help_template = "moica-card-help",
    .help_title_key = "mc.help_title",
    .help_vars = help_vars,
};

/* [moica]'s ID check: the card's certificate ↔ the typed ID. The same
 * section's certificate settings (roots, revocation …) are the shared
 * verifier's (auth/shared.h: app->cardpki). No working defaults: without
 * a url the method is not offered. */
struct mc_settings {
	char *mode;      /* "sim" | "http" */
	char *url;       /* MOICA ID-check API base (/v1/id-check appended) */
	char *client_id; /* our account at the MOICA service */
	char *secret;
	int timeout_ms; /* 5000 */
};

#define MC_OPT(key, type, field, def, lo, hi, secret)                                              \
	{                                                                                          \
		key, type, offsetof(struct mc_settings, field), def, lo, hi, secret                \
	}

static const struct config_option mc_options[] = {
    MC_OPT("mode", CONFIG_OPT_STRING, mode, "http", 0, 0, false),
    MC_OPT("url", CONFIG_OPT_URL, url, "", 0, 0, false),
    MC_OPT("client_id", CONFIG_OPT_STRING, client_id, "", 0, 0, false),
    MC_OPT("secret", CONFIG_OPT_STRING, secret, "", 0, 0, true),
    MC_OPT("timeout_ms", CONFIG_OPT_INT, timeout_ms, "5000", 100, 600000, false),
    {NULL, 0, 0, NULL, 0, 0, false},
};

/* [cardagent] url: the HiPKI local server the card pages talk to (HiPKI
 * or isso-cardagent). */
struct mc_agent_settings {
	char *url;
};

static const struct config_option mc_agent_options[] = {
    {"url", CONFIG_OPT_STRING, offsetof(struct mc_agent_settings, url), "http://localhost:61161", 0,
     0, false},
    {NULL, 0, 0, NULL, 0, 0, false},
};

/* What the handlers use, built at start-up (also when not configured: the
 * help page is served anyway). */
struct mc_state {
	struct conn_moica *conn; /* NULL: moica.url unset, the method not offered */
	char *agent_url;         /* cardagent.url */
};

static int
mc_init(struct isso_app *app, bool build, struct method_setup *setup, const char **error_r)
{
	struct mc_settings s = {0};
	struct mc_agent_settings a = {0};
	struct conn_service svc;
	struct mc_state *st;
	int ret = config_section_parse(app->cfg, "moica", mc_options, &s, error_r);

	if (ret < 0)
		return ret;
	ret = config_section_parse(app->cfg, "cardagent", mc_agent_options, &a, error_r);
	if (ret < 0)
		goto out;
	svc = (struct conn_service){"moica",     s.mode,   s.url,   "client_id",
	                            s.client_id, "secret", s.secret};
	ret = conn_service_check(app->cfg, &svc, error_r);
	if (ret < 0 || !build)
		goto out;
	if (s.url[0] == '\0')
		method_setup_unset(setup->unset, sizeof(setup->unset), "moica.url");
	if (app->sms == NULL)
		method_setup_unset(setup->unset, sizeof(setup->unset), "sms.url");
	st = xcalloc(1, sizeof(*st));
	st->agent_url = xstrdup(a.url);
	setup->state = st;
	if (s.url[0] == '\0' || (ret = conn_service_usable(&svc, error_r)) < 0)
		goto out;
	st->conn = conn_moica_new(s.url, s.client_id, s.secret, s.timeout_ms);
	if (st->conn == NULL) {
		*error_r = "moica: bad url or credentials";
		ret = ISSO_ERR_INVALID;
	}
out:
	config_section_free(mc_options, &s);
	config_section_free(mc_agent_options, &a);
	return ret;
}

static void
mc_free(void *state)
{
	struct mc_state *st = state;

	if (st->conn != NULL)
		conn_moica_free(st->conn);
	free(st->agent_url);
	free(st);
}

static const struct mc_state *
mc_state(const struct isso_app *app)
{
	return method_state_of(app, &method_moica_card);
}

/* What the page's script may say, by name, and the message key of each
 * (the script has no text of its own: it reads them from the page). */
static const struct {
	const char *name, *key;
} script_messages[] = {
    {"agent_missing", "mc.js.agent_missing"},
    {"popup_blocked", "mc.js.popup_blocked"},
    {"popup_closed", "mc.js.popup_closed"},
    {"no_answer", "mc.js.no_answer"},
    {"detecting", "mc.js.detecting"},
    {"detect_idle", "mc.detect_idle"},
    {"detect_failed", "mc.js.detect_failed"},
    {"working", "mc.js.working"},
    {"sending", "mc.js.sending"},
    {"card_found", "mc.js.card_found"},
    {"card_empty", "mc.js.card_empty"},
    {"readers_empty", "mc.js.readers_empty"},
    {"card_unknown", "mc.js.card_unknown"},
    {"card_locked", "mc.js.card_locked"},
    {"tries_left", "mc.js.tries_left"},
    {"no_reader", "mc.js.no_reader"},
    {"no_card", "mc.js.no_card"},
    {"no_key", "mc.js.no_key"},
    {"wrong_pin", "mc.js.wrong_pin"},
    {"wrong_pin_nocount", "mc.js.wrong_pin_nocount"},
    {"pin_locked", "mc.js.pin_locked"},
    {"card_removed", "mc.js.card_removed"},
    {"untrusted", "mc.js.untrusted"},
    {"not_login", "mc.js.not_login"},
    {"pin_format", "mc.js.pin_format"},
    {"sign_failed", "mc.js.sign_failed"},
    {"bad_id", "mc.bad_id"},
    {"help", "mc.help_link"},
};

enum refusal {
	REF_WRONG_CHAIN,
	REF_EXPIRED,
	REF_NOT_YET_VALID,
	REF_KEY_USAGE,
	REF_REVOKED,
	REF_SERVICE,     /* revocation or ID-check service unavailable */
	REF_UNAVAILABLE, /* the method is not set up on this server */
};

/* The security event for a failed attempt: the method, why, and the
 * client address; never the ID, a PIN or a password. */
static void
login_failed(struct http_req *req, const char *reason)
{
	flow_login_failed(json_pack("{s:s, s:s, s:s?}", "method", "moica-card", "reason", reason,
	                            "address", http_remote_addr(req)));
}

static const char *
stage_of(json_t *st)
{
	return json_string_value(json_object_get(st, "stage")) ?: "";
}

/* The store key of a challenge nonce (only its hash is kept there). */
static const char *
chal_key(const char *nonce, char out[65])
{
	return secret_sha256_hex(nonce, strlen(nonce), out);
}

/* The agent's origin (scheme://host[:port]) of url, in request memory, or
 * NULL when url is not a plain http(s) URL. */
static const char *
origin_of(struct http_req *req, const char *url)
{
	const char *p;
	size_t n;

	if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return NULL;
	n = strcspn(p, "/?#");
	if (n == 0 || memchr(p, '@', n) != NULL)
		return NULL;
	return pool_strndup(http_pool(req), url, (size_t)(p - url) + n);
}

/* A new challenge for transaction id, recorded in st (the caller saves
 * the transaction). The previous one, if any, is dead from now on.
 * Returns 0 or a store error. */
static int
challenge_new(struct isso_app *app, const char *id, json_t *st)
{
	json_t *old = json_object_get(st, "chal"), *data;
	const char *old_n = json_string_value(json_object_get(old, "n"));
	int64_t now = app_now(), exp = now + CHALLENGE_TTL;
	char nonce[48], key[65], *tbs;
	int ret;

	if (old_n != NULL)
		(void)store_eph_delete(app->store, CHAL_KIND, chal_key(old_n, key));
	secret_token(32, nonce);
	tbs = login_chal_format(app->issuer, nonce, now);
	if (tbs == NULL) {
		/* an issuer the challenge format cannot carry (over 255 bytes) */
		log_error("moica_card_bad_issuer", NULL);
		return ISSO_ERR_INVALID;
	}
	data = json_pack("{s:s}", "txn", id);
	ret = store_eph_put(app->store, CHAL_KIND, chal_key(nonce, key), data, exp);
	json_decref(data);
	if (ret < 0) {
		free(tbs);
		return ret;
	}
	json_object_set_new(
	    st, "chal",
	    json_pack("{s:s, s:s, s:I}", "n", nonce, "tbs", tbs, "exp", (json_int_t)exp));
	free(tbs);
	return 0;
}

enum chal_result { CHAL_OK, CHAL_USED, CHAL_EXPIRED, CHAL_ERROR };

/* The challenge text tbs is in iSSO's format, for our issuer and nonce
 * n, made no more than CHALLENGE_TTL seconds ago (and not in the future,
 * a minute's slack for clock steps). */
static bool
challenge_sound(struct isso_app *app, const char *tbs, const char *n)
{
	struct login_chal ch;
	int64_t now = app_now();

	if (login_chal_parse((const unsigned char *)tbs, strlen(tbs), &ch) != 0 ||
	    strcmp(ch.issuer, app->issuer) != 0 || strcmp(ch.nonce, n) != 0 || ch.time > now + 60 ||
	    ch.time < now - CHALLENGE_TTL - 60) {
		log_error("moica_card_challenge_unsound", NULL);
		return false;
	}
	return true;
}

/* Takes the challenge the form names out of st and out of the store, once:
 * CHAL_OK with *tbs_r (malloc'd) when it is the transaction's current one,
 * unused and unexpired. Whatever the answer, st no longer holds it. */
static enum chal_result
challenge_take(struct isso_app *app, json_t *st, const char *given, char **tbs_r)
{
	json_t *chal = json_object_get(st, "chal");
	const char *n = json_string_value(json_object_get(chal, "n"));
	const char *tbs = json_string_value(json_object_get(chal, "tbs"));
	json_int_t exp = json_integer_value(json_object_get(chal, "exp"));
	enum chal_result r = CHAL_USED;
	bool taken = false;
	char key[65];

	*tbs_r = NULL;
	if (n == NULL || tbs == NULL || given == NULL || strlen(given) != strlen(n) ||
	    !secret_equal(given, n))
		goto out;
	if (app_now() >= exp) {
		(void)store_eph_delete(app->store, CHAL_KIND, chal_key(n, key));
		r = CHAL_EXPIRED;
		goto out;
	}
	if (store_eph_take(app->store, CHAL_KIND, chal_key(n, key), app_now(), &taken) < 0) {
		r = CHAL_ERROR;
		goto out;
	}
	if (!taken)
		goto out;
	/* What the card signs is this text, byte for byte: it must still be
	 * a well-formed challenge naming this issuer, this nonce and a time
	 * within the challenge's life. */
	if (!challenge_sound(app, tbs, n)) {
		r = CHAL_ERROR;
		goto out;
	}
	*tbs_r = xstrdup(tbs);
	r = CHAL_OK;
out:
	json_object_del(st, "chal");
	return r;
}

/* The context every page of the method shares. */
static json_t *
base_ctx(struct isso_app *app, struct http_req *req, const char *id, int current)
{
	json_t *ctx =
	    json_pack("{s:s, s:s, s:s}", "txn", id, "back_url", flow_url(req, "/login", id),
	              "help_url", flow_url(req, HELP_PATH, id));

	if (current >= 0)
		json_object_set_new(ctx, "steps", method_steps(app, req, step_keys, current));
	return ctx;
}

/* A login that cannot go on with this card here: a certificate refused,
 * a service down, or the method not set up. */
static void
result_page(struct isso_app *app, struct http_req *req, const char *id, enum refusal r)
{
	static const struct {
		const char *title, *text;
		int status;
		bool retry;
	} pages[] = {
	    [REF_WRONG_CHAIN] = {"mc.refused_title", "mc.wrong_chain", 403, true},
	    [REF_EXPIRED] = {"mc.refused_title", "mc.cert_expired", 403, true},
	    [REF_NOT_YET_VALID] = {"mc.refused_title", "mc.cert_not_yet_valid", 403, true},
	    [REF_KEY_USAGE] = {"mc.refused_title", "mc.key_usage", 403, true},
	    [REF_REVOKED] = {"mc.refused_title", "mc.revoked", 403, true},
	    [REF_SERVICE] = {"mc.error_title", "mc.error", 503, true},
	    [REF_UNAVAILABLE] = {"mc.unavailable_title", "mc.unavailable", 503, false},
	};
	json_t *ctx = base_ctx(app, req, id, -1);

	json_object_set_new(ctx, "message", json_string(page_text(app, req, pages[r].text)));
	if (pages[r].retry)
		json_object_set_new(ctx, "retry_url",
		                    json_string(flow_url(req, "/login/moica-card", id)));
	if (r == REF_EXPIRED || r == REF_REVOKED || r == REF_NOT_YET_VALID)
		json_object_set_new(ctx, "renew", json_true());
	page_render(app, req, pages[r].status, "moica-card-result", pages[r].title, ctx);
}

/* Step 1's page with a fresh challenge (saved in the transaction), and an
 * error or notice when given. */
static void
card_page(struct isso_app *app, struct http_req *req, const char *id, json_t *txn, int status,
          const char *error_key, const char *typed)
{
	json_t *st = method_state(txn, STATE_KEY), *ctx, *msgs;
	const char *agent = mc_state(app)->agent_url, *origin = origin_of(req, agent);

	if (origin == NULL) {
		log_error("moica_card_bad_agent_url", NULL);
		result_page(app, req, id, REF_UNAVAILABLE);
		return;
	}
	if (challenge_new(app, id, st) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		return;
	}
	if (!method_txn_save(app, req, id, txn))
		return;
	ctx = base_ctx(app, req, id, 0);
	json_object_set_new(ctx, "page_script", json_string(SCRIPT_PATH));
	json_object_set_new(ctx, "csrf", json_string(csrf_token(req, &app->secrets, CSRF_ID)));
	json_object_set_new(ctx, "id_number", json_string(typed != NULL ? typed : ""));
	json_object_set_new(ctx, "agent_url", json_string(agent));
	json_object_set_new(ctx, "agent_origin", json_string(origin));
	json_object_set_new(ctx, "agent_wait", json_integer(AGENT_WAIT_MS));
	json_object_set_new(ctx, "challenge",
	                    json_incref(json_object_get(json_object_get(st, "chal"), "n")));
	json_object_set_new(ctx, "tbs",
	                    json_incref(json_object_get(json_object_get(st, "chal"), "tbs")));
	msgs = json_array();
	for (size_t i = 0; i < ISSO_N_ELEMENTS(script_messages); i++)
		json_array_append_new(msgs, json_pack("{s:s, s:s}", "name", script_messages[i].name,
		                                      "text",
		                                      page_text(app, req, script_messages[i].key)));
	json_object_set_new(ctx, "messages", msgs);
	page_form_error(app, req, ctx, error_key, NULL, NULL);
	page_notice(app, req, ctx, id, "moica-card");
	page_render(app, req, status, "moica-card-form", "mc.heading", ctx);
}

/* A form field no longer than max, or NULL. */
static const char *
field(struct http_req *req, const char *name, size_t max)
{
	const char *v = http_form(req, name);

	return v != NULL && *v != '\0' && strlen(v) <= max ? v : NULL;
}

/* The card serial the component reported, when it looks like one. */
static const char *
card_serial(struct http_req *req)
{
	const char *sn = field(req, "card_sn", 32);
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

	return sn != NULL && strspn(sn, ok) == strlen(sn) ? sn : NULL;
}

/* The card, the ID and the certificate agree: the person is linked and
 * the stage proven (st changed; the caller saves). Returns 0 or < 0. */
static int
proven(struct isso_app *app, json_t *st, const char *idn, const struct cardpki_holder *h,
       const char *card_sn)
{
	char *sealed_id = NULL, *sealed_name = NULL, uuid[37], masked[32];
	int ret;

	ret = secret_seal(&app->secrets, idn, strlen(idn), &sealed_id);
	if (ret == 0 && h->name[0] != '\0')
		ret = secret_seal(&app->secrets, h->name, strlen(h->name), &sealed_name);
	if (ret < 0) {
		log_error("moica_card_seal_failed", NULL);
		goto out;
	}
	ret = person_link_id(app, idn, h->name[0] != '\0' ? h->name : NULL, uuid);
	if (ret < 0) {
		log_error("moica_card_link_failed", "id", log_mask(idn, masked), NULL);
		goto out;
	}
	json_object_set_new(st, "stage", json_string("proven"));
	json_object_set_new(st, "id", json_string(sealed_id));
	if (sealed_name != NULL)
		json_object_set_new(st, "name", json_string(sealed_name));
	if (card_sn != NULL)
		json_object_set_new(st, "card", json_string(card_sn));
	json_object_set_new(st, "uuid", json_string(uuid));
out:
	free(sealed_id);
	free(sealed_name);
	return ret;
}

/* POST of step 1: the signed challenge. */
static void
card_post(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st = method_state(txn, STATE_KEY);
	const char *typed, *sig_type, *sig, *cert, *verdict = "";
	struct cardpki_holder holder;
	enum cardpki_verdict v;
	enum moica_id_result idr;
	enum chal_result cr;
	char idn[11], masked[32], *tbs = NULL;
	bool shown = false;

	memset(&holder, 0, sizeof(holder));
	memset(idn, 0, sizeof(idn));
	if (!csrf_check(req, &app->secrets, CSRF_ID)) {
		login_failed(req, "csrf");
		card_page(app, req, id, txn, 403, "error.csrf", NULL);
		return;
	}
	typed = http_form(req, "id_number");
	if (typed != NULL && strlen(typed) > 16)
		typed = NULL;
	if (method_addr_limited(app, req, "mc")) {
		login_failed(req, "rate_limited");
		card_page(app, req, id, txn, 429, "error.rate_limited", typed);
		return;
	}
	/* A new attempt starts the method over: nothing proven earlier (or
	 * a phone code sent on its behalf) survives it. */
	json_object_del(st, "stage");
	json_object_del(st, "id");
	json_object_del(st, "name");
	json_object_del(st, "card");
	json_object_del(st, "uuid");
	json_object_del(txn, "otp_step");
	cr = challenge_take(app, st, field(req, "challenge", 64), &tbs);
	if (cr != CHAL_OK) {
		log_info("moica_card_challenge", "state",
		         cr == CHAL_EXPIRED ? "expired"
		         : cr == CHAL_USED  ? "used"
		                            : "error",
		         NULL);
		login_failed(req, cr == CHAL_EXPIRED ? "challenge_expired"
		                  : cr == CHAL_USED  ? "challenge_used"
		                                     : "error");
		card_page(app, req, id, txn, cr == CHAL_ERROR ? 503 : 400,
		          cr == CHAL_EXPIRED ? "mc.challenge_expired"
		          : cr == CHAL_USED  ? "mc.challenge_used"
		                             : "error.unavailable.message",
		          typed);
		return;
	}
	sig_type = http_form(req, "sig_type");
	sig = field(req, "signature", SIG_MAX);
	cert = field(req, "certb64", CERT_MAX);
	if (typed == NULL || !idnum_normalize(typed, idn) || !idnum_is_valid(idn)) {
		login_failed(req, "bad_id");
		card_page(app, req, id, txn, 400, "mc.bad_id", typed);
		goto out;
	}
	if (sig == NULL) {
		/* Without script the form posts no signature. */
		login_failed(req, "no_signature");
		card_page(app, req, id, txn, 400, "mc.no_signature", idn);
		goto out;
	}
	if (sig_type == NULL || (strcmp(sig_type, "PKCS7") != 0 && strcmp(sig_type, "PKCS1") != 0))
		v = CARDPKI_MALFORMED;
	else
		v = cardpki_verify(app->cardpki, sig_type, sig, cert, (const unsigned char *)tbs,
		                   strlen(tbs), &holder);
	verdict = cardpki_verdict_name(v);
	switch (v) {
	case CARDPKI_OK:
		break;
	case CARDPKI_MALFORMED:
	case CARDPKI_BAD_SIGNATURE:
	case CARDPKI_CONTENT_MISMATCH:
		card_page(app, req, id, txn, 400, "mc.bad_signature", idn);
		shown = true;
		break;
	case CARDPKI_WRONG_CHAIN:
		result_page(app, req, id, REF_WRONG_CHAIN);
		shown = true;
		break;
	case CARDPKI_EXPIRED:
		result_page(app, req, id, REF_EXPIRED);
		shown = true;
		break;
	case CARDPKI_NOT_YET_VALID:
		result_page(app, req, id, REF_NOT_YET_VALID);
		shown = true;
		break;
	case CARDPKI_KEY_USAGE:
		result_page(app, req, id, REF_KEY_USAGE);
		shown = true;
		break;
	case CARDPKI_REVOKED:
		result_page(app, req, id, REF_REVOKED);
		shown = true;
		break;
	default:
		result_page(app, req, id, REF_SERVICE);
		shown = true;
		break;
	}
	if (shown)
		goto save;
	/* Tries per ID count only for a card that proved itself: a stranger
	 * posting junk with someone's ID must not lock that person out. What
	 * this bounds is one card holder probing IDs. */
	if (method_value_limited(app, "mc-id", "id", idn, ID_WINDOW, ID_MAX)) {
		verdict = "id_limited";
		card_page(app, req, id, txn, 429, "mc.id_limited", idn);
		goto save;
	}
	/* The certificate names the holder by the last four digits of the ID;
	 * the MOICA service confirms the whole ID. Both refusals read the
	 * same, so the answer never tells whether an ID exists. */
	if (!secret_equal(holder.id_last4, idn + 6)) {
		verdict = "id_mismatch";
		card_page(app, req, id, txn, 403, "mc.id_mismatch", idn);
		goto save;
	}
	idr = conn_moica_id_check(mc_state(app)->conn, holder.serial_hex, holder.issuer_key_id_hex,
	                          idn);
	if (idr == MOICA_ID_MISMATCH) {
		verdict = "id_mismatch";
		card_page(app, req, id, txn, 403, "mc.id_mismatch", idn);
		goto save;
	}
	if (idr != MOICA_ID_MATCH) {
		verdict = "id_check_failed";
		result_page(app, req, id, REF_SERVICE);
		goto save;
	}
	if (proven(app, st, idn, &holder, card_serial(req)) < 0) {
		verdict = "error";
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto save;
	}
	if (!method_txn_save(app, req, id, txn))
		goto out;
	log_info("moica_card_result", "state", "proven", "id", log_mask(idn, masked), NULL);
	http_redirect(req, 303, flow_url(req, "/login/moica-card/phone", id));
	goto out;
save:
	/* The challenge is spent (and the earlier proof dropped): the page
	 * shown already carries a new challenge saved with the transaction,
	 * or the transaction is saved here. */
	log_info("moica_card_result", "state", verdict, "id", log_mask(idn, masked), NULL);
	login_failed(req, verdict);
	if (json_object_get(st, "chal") == NULL)
		(void)flow_txn_save(app, id, txn);
out:
	free(tbs);
	explicit_bzero(&holder, sizeof(holder));
	explicit_bzero(idn, sizeof(idn));
}

static void
card_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	if (app->cardpki == NULL || mc_state(app)->conn == NULL) {
		result_page(app, req, id, REF_UNAVAILABLE);
		return;
	}
	if (http_method(req) == HTTP_POST)
		card_post(app, req, id, txn);
	else
		card_page(app, req, id, txn, 200, NULL, NULL);
}

/* ---- step 2: phone and SMS code ---- */

static void
phone_step(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	json_t *st = method_state(txn, STATE_KEY);
	const char *uuid = json_string_value(json_object_get(st, "uuid"));
	struct otp_step_view view = {
	    .title_key = "mc.heading",
	    .step_keys = step_keys,
	    .current = 1,
	    .back_url = flow_url(req, "/login", id),
	};

	if (strcmp(stage_of(st), "proven") != 0 || uuid == NULL) {
		page_error(app, req, 403, "mc.order_title", "mc.order",
		           flow_url(req, "/login/moica-card", id));
		return;
	}
	otp_step_complete(app, req, id, txn, &method_moica_card, &view, st, uuid, LOA_HIGH);
}

/* The card page opens the card component's window and must keep hold of
 * it (window.opener, postMessage) across origins. */
static bool
prepare(struct isso_app *app, struct http_req *req, const struct method_step *step)
{
	(void)app;
	(void)step;
	http_set_header(req, "Cross-Origin-Opener-Policy", "same-origin-allow-popups");
	return true;
}

/* The help page links to the card component's download. */
static void
help_vars(struct isso_app *app, json_t *page)
{
	json_object_set_new(page, "agent_url", json_string(mc_state(app)->agent_url));
}
