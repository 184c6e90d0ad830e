/* The HiPKI local server protocol on http://127.0.0.1:<port>: /pkcs11info,
 * /sign, /popupForm (+ .js), /addDomain, /selfTest.htm.
 *
 * Who may reach the card through /pkcs11info and /sign (a request that
 * fails gets ret_code 0x76000031); an X-HiPKI-Site header, when present,
 * must always be trusted:
 *   - a trusted Origin;
 *   - the agent's own origin (the popup) with a trusted X-HiPKI-Site: the
 *     popup names the site that posted the request to it (event.origin,
 *     which the browser sets and a page cannot forge);
 *   - no Origin (the popup's same-origin GETs, curl) with a trusted
 *     X-HiPKI-Site. A bare request is refused: any page can send a
 *     no-cors GET or a form POST without an Origin reaching us, but not
 *     with a custom header (that needs a CORS preflight, which the agent
 *     never grants).
 * POST /sign also needs Content-Type application/json (not one of the
 * types a cross-site form or no-cors fetch may send).
 *
 * What is signed: in the iSSO profile (the default) only an iSSO login
 * challenge (lib/loginchal.h) whose issuer is the asking site; anything
 * else is refused with RC_NOT_LOGIN before the card is touched. With
 * --general-signer other text is signed too, but only after the citizen
 * confirmed it in the agent's own window (the popup): the first /sign
 * answers RC_CONFIRM with a one-time token and the text, which only the
 * popup can read (no CORS); the popup shows the text and sends the same
 * request again with X-HiPKI-Confirm: <token> when the citizen clicks
 * "sign" there. The token is bound to the text and the site.
 * The Host header must name the agent itself (DNS rebinding). */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cardagent/agent.h"
#include "cardagent/cms.h"
#include "cardagent/parse.h"
#include "lib/hex.h"
#include "lib/b64.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/loginchal.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

#define HIPKI_MAX_BODY (64 * 1024)

#define HIPKI_CSP                                                                                  \
	"default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "            \
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* General signer: texts shown in the popup and waiting for the citizen.
 * A token is good once, for CONFIRM_TTL seconds, for one text and site. */
#define CONFIRM_SLOTS 16
#define CONFIRM_TTL   120

struct confirm {
	char token[65]; /* 64 hex digits; "" when the slot is free */
	unsigned char hash[32];
	char site[AGENT_MAX_ORIGIN];
	time_t exp;
};

struct hipki_server {
	struct agent *a;
	struct MHD_Daemon *d;
	char own[2][64];      /* http://127.0.0.1:<port>, http://localhost:<port> */
	pthread_mutex_t lock; /* pending */
	struct confirm pending[CONFIRM_SLOTS];
};

/* Per-request state: the body (64 KiB at most; it holds a PIN, so it is
 * one buffer that is wiped, never reallocated). */
struct hreq {
	char *body;
	size_t len;
	bool too_large;
};

static const char *const hipki_hosts[] = {"127.0.0.1", "localhost", NULL};

/* ---- the popup ---- */

static const char popup_html[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"zh-Hant-TW\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>晶片卡 Card</title>\n"
    "<link rel=\"stylesheet\" href=\"/popupForm.css\">\n"
    "<script src=\"/popupForm.js\" defer></script>\n"
    "</head>\n"
    "<body>\n"
    "<main>\n"
    "<h1>isso-cardagent</h1>\n"
    "<p id=\"status\" role=\"status\">正在與晶片卡溝通…</p>\n"
    "<p id=\"status-en\" lang=\"en\">Talking to your card…</p>\n"
    "<section id=\"confirm\" hidden aria-labelledby=\"confirm-h\">\n"
    "<h2 id=\"confirm-h\" tabindex=\"-1\">確認要簽署的文字 <span lang=\"en\">Confirm the text "
    "to sign</span></h2>\n"
    "<p><strong id=\"confirm-site\"></strong> 要求您的晶片卡簽署下面的文字。"
    "簽署具有法律效力：請讀完全文，只有您同意時才按「簽署」。</p>\n"
    "<p lang=\"en\"><strong id=\"confirm-site-en\"></strong> asks your card to sign the text "
    "below. A signature is legally binding: read all of it, and press Sign only if you "
    "agree.</p>\n"
    "<pre id=\"confirm-text\" tabindex=\"0\" aria-label=\"要簽署的文字 Text to sign\"></pre>\n"
    "<p class=\"buttons\">"
    "<button type=\"button\" id=\"confirm-yes\" disabled>簽署 <span lang=\"en\">Sign</span>"
    "</button> "
    "<button type=\"button\" id=\"confirm-no\">不簽署 <span lang=\"en\">Do not sign</span>"
    "</button></p>\n"
    "</section>\n"
    "</main>\n"
    "</body>\n"
    "</html>\n";

static const char popup_css[] =
    "body{font-family:system-ui,sans-serif;margin:0;padding:1rem;line-height:1.5;"
    "color:#1a1a1a;background:#fff}\n"
    "h1{font-size:1.1rem;margin:0 0 .5rem}\n"
    "h2{font-size:1.05rem}\n"
    "pre{white-space:pre-wrap;overflow-wrap:anywhere;border:2px solid #1a1a1a;padding:.75rem;"
    "max-height:40vh;overflow:auto;font-size:1rem;background:#f5f5f5}\n"
    "button{font-size:1rem;min-height:44px;min-width:44px;padding:.5rem 1rem;margin:.25rem "
    ".5rem .25rem 0;border:2px solid #1a1a1a;border-radius:4px;background:#fff;color:#1a1a1a}\n"
    "#confirm-yes{background:#0b4f9c;border-color:#0b4f9c;color:#fff}\n"
    "#confirm-yes:disabled{background:#5a5a5a;border-color:#5a5a5a}\n"
    "button:focus{outline:3px solid #c75000;outline-offset:2px}\n";

/* The popupForm exchange: getTbs to the opener, one request back from it,
 * the agent's reply to that origin only, then close. A general signer's
 * text waits here for the citizen's click (never the opener's: it cannot
 * reach this window's document, and the confirmation token never leaves
 * this window). */
static const char popup_js[] =
    "'use strict';\n"
    "(function () {\n"
    "  var opener = window.opener;\n"
    "  var done = false;\n"
    "  var RC_CONFIRM = 0x7600000C, RC_DECLINED = 0x7600000D;\n"
    "  function $(id) { return document.getElementById(id); }\n"
    "  function say(zh, en) {\n"
    "    $('status').textContent = zh;\n"
    "    $('status-en').textContent = en;\n"
    "  }\n"
    "  function finish() { done = true; window.close(); }\n"
    "  if (!opener) {\n"
    "    say('這個視窗只能由網站開啟。', 'This window only works when a site opens it.');\n"
    "    finish();\n"
    "    return;\n"
    "  }\n"
    "  var timer = setTimeout(finish, 60000);\n"
    "  function reply(site, obj) {\n"
    "    try { opener.postMessage(JSON.stringify(obj), site); } catch (e) { /* gone */ }\n"
    "    say('完成。', 'Done.');\n"
    "    finish();\n"
    "  }\n"
    "  function failed(site, func) {\n"
    "    reply(site, { func: func, ret_code: 0x7600000A, last_error: 0,\n"
    "      message: 'the agent did not answer' });\n"
    "  }\n"
    "  function sign(site, body, token) {\n"
    "    var headers = { 'Content-Type': 'application/json', 'X-HiPKI-Site': site };\n"
    "    if (token) headers['X-HiPKI-Confirm'] = token;\n"
    "    return fetch('/sign', { method: 'POST', cache: 'no-store', credentials: 'omit',\n"
    "      headers: headers, body: body }).then(function (r) { return r.json(); });\n"
    "  }\n"
    "  function confirmText(site, body, ask) {\n"
    "    var box = $('confirm'), yes = $('confirm-yes'), no = $('confirm-no'), asked = true;\n"
    "    var limit = setTimeout(function () { decline(); }, 110000);\n"
    "    function decline() {\n"
    "      if (!asked) return;\n"
    "      asked = false;\n"
    "      clearTimeout(limit);\n"
    "      box.hidden = true;\n"
    "      reply(site, { func: 'MakeSignature', ret_code: RC_DECLINED, last_error: 0,\n"
    "        message: 'the citizen did not confirm the text' });\n"
    "    }\n"
    "    $('confirm-site').textContent = site;\n"
    "    $('confirm-site-en').textContent = site;\n"
    "    $('confirm-text').textContent = ask.text;\n"
    "    say('請確認要簽署的文字。', 'Please confirm the text to sign.');\n"
    "    yes.disabled = true;\n"
    "    box.hidden = false;\n"
    "    window.focus();\n"
    "    $('confirm-h').focus();\n"
    "    /* a click aimed at the page that opened this window must not land\n"
    "     * on Sign as the window appears */\n"
    "    setTimeout(function () { yes.disabled = false; }, 1500);\n"
    "    yes.addEventListener('click', function (ev) {\n"
    "      if (!asked || !ev.isTrusted || yes.disabled) return;\n"
    "      asked = false;\n"
    "      clearTimeout(limit);\n"
    "      box.hidden = true;\n"
    "      say('正在與晶片卡溝通…', 'Talking to your card…');\n"
    "      sign(site, body, ask.confirm).then(function (obj) { reply(site, obj); },\n"
    "        function () { failed(site, 'MakeSignature'); });\n"
    "    });\n"
    "    no.addEventListener('click', function (ev) { if (ev.isTrusted) decline(); });\n"
    "  }\n"
    "  window.addEventListener('message', function (event) {\n"
    "    if (done || event.source !== opener) return;\n"
    "    var site = event.origin, req, body;\n"
    "    try {\n"
    "      if (typeof event.data === 'string') { body = event.data; req = JSON.parse(body); }\n"
    "      else { req = event.data; body = JSON.stringify(req); }\n"
    "    } catch (e) { return; }\n"
    "    if (!req || typeof req !== 'object') return;\n"
    "    done = true;\n"
    "    clearTimeout(timer);\n"
    "    if (req.func === 'MakeSignature') {\n"
    "      sign(site, body, null).then(function (obj) {\n"
    "        if (obj && obj.ret_code === RC_CONFIRM && typeof obj.confirm === 'string' &&\n"
    "            typeof obj.text === 'string') confirmText(site, body, obj);\n"
    "        else reply(site, obj);\n"
    "      }, function () { failed(site, 'MakeSignature'); });\n"
    "    } else if (req.func === 'pkcs11info') {\n"
    "      fetch('/pkcs11info?withcert=' + (req.withcert ? 'true' : 'false'),\n"
    "        { cache: 'no-store', credentials: 'omit', headers: { 'X-HiPKI-Site': site } })\n"
    "        .then(function (r) { return r.json(); })\n"
    "        .then(function (obj) { reply(site, obj); }, function () { failed(site, 'pkcs11info'); "
    "});\n"
    "    } else {\n"
    "      reply(site, { func: String(req.func), ret_code: 0x76000001, last_error: 0,\n"
    "        message: 'unknown func' });\n"
    "    }\n"
    "  });\n"
    "  say('正在與晶片卡溝通…', 'Talking to your card…');\n"
    "  opener.postMessage(JSON.stringify({ func: 'getTbs' }), '*');\n"
    "})();\n";

static const char add_domain_html[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"zh-Hant-TW\">\n"
    "<head><meta charset=\"utf-8\"><title>信任的網站 Trusted sites</title></head>\n"
    "<body><main>\n"
    "<h1>信任的網站</h1>\n"
    "<p>這個程式只為設定檔中信任的網站使用晶片卡；網頁無法自行加入。"
    "若要信任一個網站，請由管理者在啟動參數加上 <code>--trust https://網站</code>。</p>\n"
    "<h2 lang=\"en\">Trusted sites</h2>\n"
    "<p lang=\"en\">This agent uses your card only for the sites trusted in its "
    "configuration; a web page cannot add itself. To trust a site, start the agent "
    "with <code>--trust https://site</code> (or ISSO_CARDAGENT_TRUST).</p>\n"
    "</main></body></html>\n";

/* ---- helpers ---- */

static void
html_escape(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '<':
			buf_addstr(b, "&lt;");
			break;
		case '>':
			buf_addstr(b, "&gt;");
			break;
		case '&':
			buf_addstr(b, "&amp;");
			break;
		case '"':
			buf_addstr(b, "&quot;");
			break;
		case '\'':
			buf_addstr(b, "&#39;");
			break;
		default:
			buf_addc(b, *s);
			break;
		}
	}
}

static json_t *
reply_new(const char *func, int rc, unsigned long rv, const char *message)
{
	return json_pack("{s:s, s:I, s:I, s:s}", "func", func, "ret_code", (json_int_t)rc,
	                 "last_error", (json_int_t)rv, "message", message);
}

static const char *
rc_message(int rc)
{
	switch (rc) {
	case RC_OK:
		return "";
	case RC_UNTRUSTED:
		return "this site is not trusted by the card agent";
	case RC_BAD_REQUEST:
		return "bad request";
	case RC_NO_MODULE:
		return "no PKCS#11 module";
	case RC_NO_READER:
		return "no card reader";
	case RC_NO_CARD:
		return "no card";
	case RC_PIN_FORMAT:
		return "the PIN must be 6 to 8 digits";
	case RC_PIN_INCORRECT:
		return "incorrect PIN";
	case RC_PIN_LOCKED:
		return "the PIN is locked";
	case RC_CARD_REMOVED:
		return "the card was removed";
	case RC_NO_KEY:
		return "no signing key and certificate on the card";
	case RC_NOT_LOGIN:
		return "the card agent signs only this site's iSSO login challenge";
	case RC_CONFIRM:
		return "waiting for the citizen to confirm the text in the agent's window";
	case RC_DECLINED:
		return "the citizen did not confirm the text";
	default:
		return "card error";
	}
}

/* See the file comment. */
static bool
allowed(struct hipki_server *srv, struct MHD_Connection *conn, const char **site_r)
{
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	const char *site = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-HiPKI-Site");

	*site_r = site != NULL ? site : origin;
	if (site != NULL && !agent_trusted(srv->a, site))
		return false;
	if (origin == NULL)
		return site != NULL;
	if (agent_trusted(srv->a, origin))
		return true;
	if (strcmp(origin, srv->own[0]) == 0 || strcmp(origin, srv->own[1]) == 0)
		return site != NULL;
	return false;
}

/* Content-Type application/json, parameters (charset) allowed. */
static bool
json_content_type(struct MHD_Connection *conn)
{
	const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, want, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

static void
log_refused(const char *func, const char *site)
{
	log_event(LOG_WARN, "untrusted_site", json_pack("{s:s, s:s?}", "func", func, "site", site));
}

/* ---- /pkcs11info ---- */

static enum MHD_Result
do_info(struct hipki_server *srv, struct MHD_Connection *conn)
{
	const char *wc = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "withcert");
	struct p11_status st = {RC_OK, 0, -1};
	json_t *reply, *info;
	const char *site;

	if (!allowed(srv, conn, &site)) {
		log_refused("pkcs11info", site);
		return agent_send_json(
		    conn, 200, reply_new("pkcs11info", RC_UNTRUSTED, 0, rc_message(RC_UNTRUSTED)));
	}
	if (srv->a->p11 == NULL) {
		reply = reply_new("pkcs11info", RC_NO_MODULE, 0, rc_message(RC_NO_MODULE));
		json_object_set_new(reply, "slots", json_array());
		return agent_send_json(conn, 200, reply);
	}
	info = p11_info(srv->a->p11, wc != NULL && strcmp(wc, "true") == 0, &st);
	reply = reply_new("pkcs11info", st.rc, st.rv, rc_message(st.rc));
	if (info != NULL)
		json_object_update(reply, info);
	else
		json_object_set_new(reply, "slots", json_array());
	json_decref(info);
	return agent_send_json(conn, 200, reply);
}

/* ---- /sign ---- */

static bool
pin_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 6 || n > 8)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* See cardagent/parse.h. */
bool
hipki_parse_sign(const char *body, size_t len, struct sign_args *args, int *rc_r,
                 const char **why_r)
{
	json_t *req = NULL, *v;
	const char *s, *enc = "NONE";
	bool ok = false;
	size_t n;

	*rc_r = RC_BAD_REQUEST;
	req = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(req)) {
		*why_r = "the body is not a JSON object";
		goto out;
	}
	if ((v = json_object_get(req, "func")) != NULL &&
	    (!json_is_string(v) || strcmp(json_string_value(v), "MakeSignature") != 0)) {
		*why_r = "func must be MakeSignature";
		goto out;
	}
	args->pkcs7 = true;
	if ((v = json_object_get(req, "signatureType")) != NULL) {
		s = json_is_string(v) ? json_string_value(v) : "";
		if (strcasecmp(s, "PKCS1") == 0)
			args->pkcs7 = false;
		else if (strcasecmp(s, "PKCS7") != 0) {
			*why_r = "signatureType must be PKCS7 or PKCS1";
			goto out;
		}
	}
	if ((v = json_object_get(req, "hashAlgorithm")) != NULL &&
	    (!json_is_string(v) || strcasecmp(json_string_value(v), "SHA256") != 0)) {
		*why_r = "hashAlgorithm must be SHA256";
		goto out;
	}
	if ((v = json_object_get(req, "tbsEncoding")) != NULL) {
		enc = json_is_string(v) ? json_string_value(v) : "";
		if (strcasecmp(enc, "NONE") != 0 && strcasecmp(enc, "base64") != 0) {
			*why_r = "tbsEncoding must be NONE or base64";
			goto out;
		}
	}
	v = json_object_get(req, "tbs");
	if (!json_is_string(v) || (n = json_string_length(v)) == 0) {
		*why_r = "tbs is missing";
		goto out;
	}
	if (strcasecmp(enc, "base64") == 0) {
		long dn = b64_decode(json_string_value(v), n, args->tbs, sizeof(args->tbs));

		if (dn <= 0) {
			*why_r = "tbs is not base64 of at most 4096 bytes";
			goto out;
		}
		args->tbs_len = (size_t)dn;
	} else {
		if (n > sizeof(args->tbs)) {
			*why_r = "tbs is longer than 4096 bytes";
			goto out;
		}
		memcpy(args->tbs, json_string_value(v), n);
		args->tbs_len = n;
	}
	args->with_sn = true;
	if ((v = json_object_get(req, "withCardSN")) != NULL)
		args->with_sn = json_is_true(v) || (json_is_string(v) &&
		                                    strcasecmp(json_string_value(v), "true") == 0);
	if ((v = json_object_get(req, "slotID")) != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    (unsigned long long)json_integer_value(v) > ULONG_MAX) {
			*why_r = "slotID must be a number";
			goto out;
		}
		args->has_slot = true;
		args->slot = (unsigned long)json_integer_value(v);
	}
	v = json_object_get(req, "pin");
	s = json_is_string(v) ? json_string_value(v) : "";
	if (json_is_string(v) && json_string_length(v) == strlen(s) && pin_ok(s))
		memcpy(args->pin, s, strlen(s) + 1);
	if (json_is_string(v))
		explicit_bzero((char *)s, json_string_length(v));
	if (args->pin[0] == '\0') {
		*rc_r = RC_PIN_FORMAT;
		*why_r = rc_message(RC_PIN_FORMAT);
		goto out;
	}
	ok = true;
out:
	json_decref(req);
	return ok;
}

/* PKCS1: the card signs the tbs bytes themselves. */
static int
prepare_raw(void *ctx, const unsigned char *cert, size_t cert_len, unsigned char **data_r,
            size_t *len_r)
{
	const struct sign_args *args = ctx;

	*data_r = xmalloc(args->tbs_len);
	memcpy(*data_r, args->tbs, args->tbs_len);
	*len_r = args->tbs_len;
	return 0;
}

static char *
b64_new(const unsigned char *b, size_t n)
{
	char *s = xmalloc((n + 2) / 3 * 4 + 1);

	return b64_encode(b, n, s);
}

static json_t *
sign_reply(struct hipki_server *srv, struct sign_args *args, const char *site)
{
	struct p11_sign_req req = {0};
	struct p11_sign_res res = {0};
	struct p11_status st = {RC_OK, 0, -1};
	struct cms_sign cms = {.tbs = args->tbs, .tbs_len = args->tbs_len};
	unsigned char *der = NULL;
	size_t der_len = 0;
	char *sig_b64 = NULL, *cert_b64 = NULL;
	json_t *reply;

	if (srv->a->p11 == NULL) {
		st.rc = RC_NO_MODULE;
		goto out;
	}
	req.has_slot = args->has_slot;
	req.slot = args->slot;
	req.pin = args->pin;
	req.prepare = args->pkcs7 ? cms_prepare : prepare_raw;
	req.ctx = args->pkcs7 ? (void *)&cms : (void *)args;
	p11_sign(srv->a->p11, &req, &res, &st);
	explicit_bzero(args->pin, sizeof(args->pin));
	if (st.rc != RC_OK)
		goto out;
	if (args->pkcs7) {
		if (cms_finish(&cms, res.sig, res.sig_len, &der, &der_len) != 0) {
			st.rc = RC_CARD_ERROR;
			goto out;
		}
		sig_b64 = b64_new(der, der_len);
	} else {
		sig_b64 = b64_new(res.sig, res.sig_len);
	}
	cert_b64 = b64_new(res.cert, res.cert_len);
out:
	reply = reply_new("MakeSignature", st.rc, st.rv, rc_message(st.rc));
	if (st.rc == RC_OK) {
		json_object_set_new(reply, "signature", json_string(sig_b64));
		json_object_set_new(reply, "certb64", json_string(cert_b64));
		if (args->with_sn)
			json_object_set_new(reply, "cardSN", json_string(res.serial));
	}
	if (st.tries_left >= 0)
		json_object_set_new(reply, "pinTriesLeft", json_integer(st.tries_left));
	log_event(st.rc == RC_OK ? LOG_INFO : LOG_WARN, "sign",
	          json_pack("{s:s?, s:s, s:I, s:I}", "site", site, "type",
	                    args->pkcs7 ? "PKCS7" : "PKCS1", "ret_code", (json_int_t)st.rc,
	                    "last_error", (json_int_t)st.rv));
	explicit_bzero(args->pin, sizeof(args->pin));
	cms_clear(&cms);
	p11_sign_res_clear(&res);
	free(der);
	free(sig_b64);
	free(cert_b64);
	return reply;
}

/* ---- what may be signed ---- */

/* See cardagent/parse.h. */
bool
hipki_showable(const unsigned char *s, size_t n)
{
	if (!utf8_valid((const char *)s, n))
		return false;
	/* C0 controls and DEL, but tab, CR and LF (utf8_printable refuses
	 * tabs, which a text to sign may well hold) */
	for (size_t i = 0; i < n; i++)
		if ((s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') || s[i] == 0x7f)
			return false;
	for (size_t i = 0; i < n;) {
		unsigned long c = s[i];
		size_t len = 1;

		if (c >= 0xf0) {
			c = (c & 0x07) << 18 | (unsigned long)(s[i + 1] & 0x3f) << 12 |
			    (unsigned long)(s[i + 2] & 0x3f) << 6 | (s[i + 3] & 0x3f);
			len = 4;
		} else if (c >= 0xe0) {
			c = (c & 0x0f) << 12 | (unsigned long)(s[i + 1] & 0x3f) << 6 |
			    (s[i + 2] & 0x3f);
			len = 3;
		} else if (c >= 0xc0) {
			c = (c & 0x1f) << 6 | (s[i + 1] & 0x3f);
			len = 2;
		}
		if ((c >= 0x80 && c <= 0x9f) || c == 0xad || c == 0x61c || c == 0x180e ||
		    (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) ||
		    (c >= 0x2060 && c <= 0x206f) || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb) ||
		    (c >= 0xe0000 && c <= 0xe007f))
			return false;
		i += len;
	}
	return true;
}

/* The iSSO profile: an iSSO login challenge naming the asking site. */
static bool
login_challenge_for(const struct sign_args *args, const char *site, const char **why_r)
{
	struct login_chal ch;
	char origin[AGENT_MAX_ORIGIN], *norm;
	bool ok;

	if (login_chal_parse(args->tbs, args->tbs_len, &ch) != 0) {
		*why_r = "not_login_challenge";
		return false;
	}
	norm = login_chal_issuer_origin(ch.issuer, origin, sizeof(origin)) != NULL
	           ? agent_origin_normalise(origin)
	           : NULL;
	ok = norm != NULL && site != NULL && strcmp(norm, site) == 0;
	free(norm);
	*why_r = ok ? "" : "other_site";
	return ok;
}

static void
text_hash(const struct sign_args *args, unsigned char out[32])
{
	unsigned int n = 32;

	if (EVP_Digest(args->tbs, args->tbs_len, out, &n, EVP_sha256(), NULL) != 1)
		abort();
}

/* A new confirmation token for the text and site into tok (65 bytes);
 * false when too many texts are waiting. */
static bool
confirm_new(struct hipki_server *srv, const struct sign_args *args, const char *site, char tok[65])
{
	struct confirm *slot = NULL;
	unsigned char rnd[32];
	time_t now = time(NULL);

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return false;
	hex_encode(rnd, sizeof(rnd), tok);
	pthread_mutex_lock(&srv->lock);
	for (size_t i = 0; i < CONFIRM_SLOTS; i++) {
		struct confirm *c = &srv->pending[i];

		if (c->token[0] != '\0' && c->exp <= now)
			memset(c, 0, sizeof(*c));
		if (slot == NULL && c->token[0] == '\0')
			slot = c;
	}
	if (slot != NULL) {
		memcpy(slot->token, tok, 65);
		text_hash(args, slot->hash);
		snprintf(slot->site, sizeof(slot->site), "%s", site);
		slot->exp = now + CONFIRM_TTL;
	}
	pthread_mutex_unlock(&srv->lock);
	return slot != NULL;
}

/* Takes the confirmation token tok for this text and site, once. */
static bool
confirm_take(struct hipki_server *srv, const struct sign_args *args, const char *site,
             const char *tok)
{
	unsigned char hash[32];
	time_t now = time(NULL);
	bool ok = false;

	if (strlen(tok) != 64)
		return false;
	text_hash(args, hash);
	pthread_mutex_lock(&srv->lock);
	for (size_t i = 0; i < CONFIRM_SLOTS && !ok; i++) {
		struct confirm *c = &srv->pending[i];

		if (c->token[0] == '\0' || CRYPTO_memcmp(c->token, tok, 64) != 0)
			continue;
		ok = c->exp > now && CRYPTO_memcmp(c->hash, hash, 32) == 0 &&
		     strcmp(c->site, site) == 0;
		memset(c, 0, sizeof(*c)); /* one use, right or wrong */
	}
	pthread_mutex_unlock(&srv->lock);
	return ok;
}

/* Decides whether args may be signed for site. true: sign now. false:
 * *reply_r is the answer (a refusal, or RC_CONFIRM with the token and the
 * text for the popup). The card is not touched either way. */
static bool
may_sign(struct hipki_server *srv, struct MHD_Connection *conn, const struct sign_args *args,
         const char *site, json_t **reply_r)
{
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	const char *tok = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-HiPKI-Confirm");
	const char *why = "";
	bool popup = origin != NULL &&
	             (strcmp(origin, srv->own[0]) == 0 || strcmp(origin, srv->own[1]) == 0);
	char token[65];
	int rc = RC_NOT_LOGIN;

	if (login_challenge_for(args, site, &why))
		return true;
	if (!srv->a->general_signer)
		goto refuse;
	/* The general signer: only through the popup, only text the citizen
	 * can read, only once confirmed there. */
	if (!popup) {
		why = "general_needs_window";
		goto refuse;
	}
	if (!hipki_showable(args->tbs, args->tbs_len)) {
		why = "not_showable";
		rc = RC_BAD_REQUEST;
		goto refuse;
	}
	if (tok != NULL) {
		if (confirm_take(srv, args, site, tok)) {
			log_event(LOG_INFO, "sign_confirmed", json_pack("{s:s}", "site", site));
			return true;
		}
		why = "bad_confirmation";
		rc = RC_DECLINED;
		goto refuse;
	}
	if (!confirm_new(srv, args, site, token)) {
		why = "too_many_waiting";
		rc = RC_CARD_ERROR;
		goto refuse;
	}
	log_event(LOG_INFO, "sign_confirm_asked", json_pack("{s:s}", "site", site));
	*reply_r = reply_new("MakeSignature", RC_CONFIRM, 0, rc_message(RC_CONFIRM));
	json_object_set_new(*reply_r, "confirm", json_string(token));
	json_object_set_new(*reply_r, "text", json_stringn((const char *)args->tbs, args->tbs_len));
	json_object_set_new(*reply_r, "site", json_string(site));
	explicit_bzero(token, sizeof(token));
	return false;
refuse:
	log_event(
	    LOG_WARN, "sign_refused",
	    json_pack("{s:s?, s:I, s:s}", "site", site, "ret_code", (json_int_t)rc, "reason", why));
	*reply_r =
	    reply_new("MakeSignature", rc, 0,
	              rc == RC_BAD_REQUEST  ? "the text cannot be shown to the citizen as it is"
	              : rc == RC_CARD_ERROR ? "too many texts are waiting for confirmation"
	                                    : rc_message(rc));
	return false;
}

static enum MHD_Result
do_sign(struct hipki_server *srv, struct MHD_Connection *conn, struct hreq *r)
{
	struct sign_args *args;
	const char *site, *why = "";
	json_t *reply;
	int rc;

	if (!allowed(srv, conn, &site)) {
		log_refused("MakeSignature", site);
		return agent_send_json(
		    conn, 200,
		    reply_new("MakeSignature", RC_UNTRUSTED, 0, rc_message(RC_UNTRUSTED)));
	}
	if (!json_content_type(conn)) {
		log_event(LOG_WARN, "sign_refused",
		          json_pack("{s:s?, s:I, s:s}", "site", site, "ret_code",
		                    (json_int_t)RC_BAD_REQUEST, "reason", "content_type"));
		return agent_send_json(conn, 415,
		                       reply_new("MakeSignature", RC_BAD_REQUEST, 0,
		                                 "the Content-Type must be application/json"));
	}
	if (r->too_large)
		return agent_send_json(conn, 413,
		                       reply_new("MakeSignature", RC_BAD_REQUEST, 0,
		                                 "the request is larger than 64 KiB"));
	args = xcalloc(1, sizeof(*args));
	if (!hipki_parse_sign(r->body != NULL ? r->body : "", r->len, args, &rc, &why)) {
		log_event(LOG_WARN, "sign_refused",
		          json_pack("{s:s?, s:I, s:s}", "site", site, "ret_code", (json_int_t)rc,
		                    "reason", why));
		reply = reply_new("MakeSignature", rc, 0, why);
	} else {
		if (r->body != NULL)
			explicit_bzero(r->body, r->len);
		if (may_sign(srv, conn, args, site, &reply))
			reply = sign_reply(srv, args, site);
	}
	explicit_bzero(args, sizeof(*args));
	free(args);
	return agent_send_json(conn, 200, reply);
}

/* ---- pages ---- */

static enum MHD_Result
do_self_test(struct hipki_server *srv, struct MHD_Connection *conn)
{
	struct buf b;
	char desc[80];
	int slots = 0, tokens = 0;
	enum MHD_Result ret;

	buf_init(&b, 64 * 1024);
	buf_addstr(&b, "<!DOCTYPE html>\n<html lang=\"zh-Hant-TW\">\n<head><meta "
	               "charset=\"utf-8\"><title>isso-cardagent 自我檢測 Self test</title>"
	               "</head>\n<body><main>\n<h1>isso-cardagent " AGENT_VERSION "</h1>\n"
	               "<dl>\n");
	buf_addstr(&b, "<dt>PKCS#11 模組 Module</dt><dd>");
	if (srv->a->p11 == NULL) {
		buf_addstr(&b, "未載入 not loaded: ");
		html_escape(&b, srv->a->module_error != NULL ? srv->a->module_error : "none given");
	} else {
		p11_counts(srv->a->p11, &slots, &tokens, desc, sizeof(desc));
		html_escape(&b, desc);
	}
	buf_printf(&b,
	           "</dd>\n<dt>讀卡機 Readers</dt><dd id=\"readers\">%d</dd>\n"
	           "<dt>晶片卡 Cards present</dt><dd id=\"cards\">%d</dd>\n"
	           "<dt>信任的網站 Trusted sites</dt><dd id=\"trusted\">%zu</dd>\n</dl>\n"
	           "</main></body></html>\n",
	           slots, tokens, srv->a->n_trust);
	ret = agent_send(conn, 200, "text/html; charset=utf-8", b.data != NULL ? b.data : "", b.len,
	                 HIPKI_CSP);
	buf_free(&b);
	return ret;
}

/* ---- dispatch ---- */

static enum MHD_Result
dispatch(struct hipki_server *srv, struct MHD_Connection *conn, const char *url, const char *method,
         struct hreq *r)
{
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	bool post = strcmp(method, "POST") == 0;

	if (!agent_host_ok(conn, srv->a->port, hipki_hosts)) {
		log_warn("bad_host", NULL);
		return agent_send_json(conn, 403,
		                       json_pack("{s:s, s:s}", "error", "forbidden", "message",
		                                 "the Host header must name this computer"));
	}
	if (strcmp(url, "/pkcs11info") == 0 && get)
		return do_info(srv, conn);
	if (strcmp(url, "/sign") == 0 && post)
		return do_sign(srv, conn, r);
	if (strcmp(url, "/popupForm") == 0 && get)
		return agent_send(conn, 200, "text/html; charset=utf-8", popup_html,
		                  sizeof(popup_html) - 1, HIPKI_CSP);
	if (strcmp(url, "/popupForm.js") == 0 && get)
		return agent_send(conn, 200, "text/javascript; charset=utf-8", popup_js,
		                  sizeof(popup_js) - 1, HIPKI_CSP);
	if (strcmp(url, "/popupForm.css") == 0 && get)
		return agent_send(conn, 200, "text/css; charset=utf-8", popup_css,
		                  sizeof(popup_css) - 1, HIPKI_CSP);
	if (strcmp(url, "/addDomain") == 0 && get)
		return agent_send(conn, 200, "text/html; charset=utf-8", add_domain_html,
		                  sizeof(add_domain_html) - 1, HIPKI_CSP);
	if (strcmp(url, "/selfTest.htm") == 0 && get)
		return do_self_test(srv, conn);
	if (strcmp(url, "/pkcs11info") == 0 || strcmp(url, "/sign") == 0 ||
	    strcmp(url, "/popupForm") == 0 || strcmp(url, "/popupForm.js") == 0 ||
	    strcmp(url, "/popupForm.css") == 0 || strcmp(url, "/addDomain") == 0 ||
	    strcmp(url, "/selfTest.htm") == 0)
		return agent_send_json(conn, 405,
		                       json_pack("{s:s}", "error", "method_not_allowed"));
	return agent_send_json(conn, 404, json_pack("{s:s}", "error", "not_found"));
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct hipki_server *srv = cls;
	struct hreq *r = *con_cls;

	if (r == NULL) {
		*con_cls = xcalloc(1, sizeof(struct hreq));
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!r->too_large && r->len + *upload_data_size <= HIPKI_MAX_BODY) {
			if (r->body == NULL)
				r->body = xmalloc(HIPKI_MAX_BODY);
			memcpy(r->body + r->len, upload_data, *upload_data_size);
			r->len += *upload_data_size;
		} else {
			r->too_large = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	return dispatch(srv, conn, url, method, r);
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
	struct hreq *r = *con_cls;

	if (r == NULL)
		return;
	if (r->body != NULL) {
		explicit_bzero(r->body, HIPKI_MAX_BODY);
		free(r->body);
	}
	free(r);
	*con_cls = NULL;
}

int
hipki_start(struct agent *a, struct hipki_server **srv_r, const char **error_r)
{
	struct hipki_server *srv = NULL;
	int fd;

	*srv_r = NULL;
	if (agent_listen(a->listen, a->port, &fd, &a->port, error_r) != 0)
		return ISSO_ERR_IO;
	srv = xcalloc(1, sizeof(*srv));
	srv->a = a;
	pthread_mutex_init(&srv->lock, NULL);
	snprintf(srv->own[0], sizeof(srv->own[0]), "http://127.0.0.1:%d", a->port);
	snprintf(srv->own[1], sizeof(srv->own[1]), "http://localhost:%d", a->port);
	srv->d = agent_mhd_start(0, fd, access_cb, srv, completed_cb, NULL, NULL, error_r);
	if (srv->d == NULL) {
		pthread_mutex_destroy(&srv->lock);
		free(srv);
		return ISSO_ERR_IO;
	}
	*srv_r = srv;
	return 0;
}

void
hipki_stop(struct hipki_server *srv)
{
	if (srv == NULL)
		return;
	MHD_stop_daemon(srv->d);
	pthread_mutex_destroy(&srv->lock);
	explicit_bzero(srv->pending, sizeof(srv->pending));
	free(srv);
}
