/* Identification at the counter: OpenID Connect Client-Initiated
 * Backchannel Authentication (CIBA Core 1.0), poll mode only. A counter
 * client asks at /bc-authorize for a citizen named by a login_hint; the
 * citizen's TaipeiPass app lists the request (/app/v1/ciba/pending),
 * shows the agency, the binding message and the fields (the agency's
 * optional ones the citizen may decline), and answers it with a
 * signature of its device key (/app/v1/ciba/answer); the counter polls
 * /token with the CIBA grant.
 *
 * The store (ephemeral rows only):
 *   "ciba"      id → {client_id, hash (of the auth_req_id's secret part),
 *               scope (once approved, without the optional fields the
 *               citizen declined), binding, exp, state
 *               pending|approved|denied, nonce,
 *               uuid (absent when the hint named nobody), and once
 *               approved loa, amr, auth_time, claims (sealed)}; kept
 *               CIBA_GRACE s after exp to answer expired_token
 *   "ciba_seq"  member uuid (or the hint's keyed hash) → counter n
 *   "ciba_slot" "<key>:<n>" → {id}: the member's n-th request
 *   "ciba_poll" id → a live row while the client must not poll again
 *   "ciba_jti"  hash of device and jti → a used listing signature
 * An auth_req_id is "<id>.<secret>"; only the secret's SHA-256 is kept. */
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "auth/appsig.h"
#include "auth/claims.h"
#include "auth/method.h"
#include "auth/person.h"
#include "http/parse.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/pool.h"
#include "lib/secret.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define CIBA_KIND           "ciba"
#define CIBA_SEQ            "ciba_seq"
#define CIBA_SLOT           "ciba_slot"
#define CIBA_POLL           "ciba_poll"
#define CIBA_JTI            "ciba_jti"
#define CIBA_EXPIRY_DEFAULT 120 /* seconds a request waits for the citizen */
#define CIBA_EXPIRY_MIN     1
#define CIBA_EXPIRY_MAX     600
#define CIBA_GRACE          300 /* expired_token is answered this long */
#define CIBA_LIST_MAX       10  /* a member's latest requests looked at */
#define CIBA_BINDING_MAX    20  /* characters of a binding message */
#define CIBA_HINT_MAX       254 /* bytes of a login_hint */
#define CIBA_CLIENT_RATE    120 /* requests a minute one counter client may start */
#define CIBA_ID_LEN         22  /* 16 random bytes, base64url */
#define CIBA_SECRET_LEN     43  /* 32 random bytes, base64url */

bool
oidc_ciba_client(const struct store_client *c)
{
	const char *mode =
	    json_string_value(json_object_get(c->settings, "backchannel_token_delivery_mode"));

	return !c->public_client && c->grant_types != NULL &&
	       scope_has(c->grant_types, OIDC_CIBA_GRANT) &&
	       (mode == NULL || strcmp(mode, "poll") == 0);
}

static bool
b64url_token(const char *s, size_t len)
{
	if (s == NULL || strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

/* A binding message fit for the app and the counter's screen: printable
 * UTF-8 of 1 to CIBA_BINDING_MAX characters. */
static bool
binding_ok(const char *s)
{
	size_t len, chars = 0;

	if (s == NULL || (len = strnlen(s, 4 * CIBA_BINDING_MAX + 1)) == 0 ||
	    len > 4 * CIBA_BINDING_MAX || !utf8_printable(s, len, false))
		return false;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			chars++;
	return chars <= CIBA_BINDING_MAX;
}

/* requested_expiry (CIBA §7.1): a positive integer of seconds; the default
 * when absent, -1 when malformed. At most CIBA_EXPIRY_MAX. */
static long
expiry_of(const char *s)
{
	char *end = NULL;
	long v;

	if (s == NULL)
		return CIBA_EXPIRY_DEFAULT;
	if (s[0] < '0' || s[0] > '9' || strlen(s) > 9)
		return -1;
	v = strtol(s, &end, 10);
	if (end == NULL || *end != '\0' || v < CIBA_EXPIRY_MIN)
		return -1;
	return v > CIBA_EXPIRY_MAX ? CIBA_EXPIRY_MAX : v;
}

/* Looked up in place of a member the hint did not name, so that the
 * store is asked the same questions either way. */
static const char nobody[] = "00000000-0000-0000-0000-000000000000";

/* Whether the member has a device that can approve. */
static int
has_device(struct isso_app *app, const char *uuid, bool *yes_r)
{
	struct store_device *list = NULL;
	size_t n = 0;
	int ret;

	*yes_r = false;
	ret = store_device_list(app->store, uuid, STORE_DEVICES_MAX, &list, &n);
	for (size_t i = 0; ret == 0 && i < n; i++)
		if (list[i].revoked_at == 0)
			*yes_r = true;
	store_device_list_free(list, n);
	return ret;
}

static void
ciba_refused(struct http_req *req, const struct store_client *c, const char *error,
             const char *description)
{
	oidc_security_event(req, "ciba_refused", "client_id", c->client_id, "error", error,
	                    "reason", description, NULL);
	oidc_json_error(req, 400, error, description);
}

/* Files the request under key (the member's uuid, or for a hint that
 * names nobody the hint's keyed hash: the same writes either way). */
static int
index_add(struct isso_app *app, const char *key, const char *id, int64_t now, long expiry)
{
	json_t *slot = json_pack("{s:s}", "id", id);
	char *slot_key = NULL;
	int n = 0, ret;

	ret =
	    store_eph_incr(app->store, CIBA_SEQ, key, now, now + CIBA_EXPIRY_MAX + CIBA_GRACE, &n);
	if (ret == 0) {
		slot_key = xasprintf("%s:%d", key, n);
		ret = store_eph_put(app->store, CIBA_SLOT, slot_key, slot, now + expiry);
	}
	free(slot_key);
	json_decref(slot);
	return ret;
}

/* POST /bc-authorize (CIBA §7): answers 200 to every well-formed request
 * of a registered counter client, whether or not its login_hint names a
 * citizen who can approve: a request for nobody simply expires. */
static void
bc_authorize(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *type = http_header(req, "Content-Type");
	const char *scope, *hint, *binding, *acr;
	struct store_client *c = NULL;
	char *granted, *auth_req_id = NULL;
	char uuid[37], key[65], id[CIBA_ID_LEN + 1], secret[CIBA_SECRET_LEN + 1], hash[65],
	    nonce[44];
	json_t *data = NULL;
	int64_t now = app_now();
	bool device = false;
	long expiry;
	int count = 0;

	secret[0] = '\0';
	if (type == NULL || strncasecmp(type, "application/x-www-form-urlencoded", 33) != 0) {
		oidc_json_error(req, 400, "invalid_request",
		                "use application/x-www-form-urlencoded");
		return;
	}
	c = oidc_client_auth(app, req);
	if (c == NULL)
		return;
	if (!oidc_ciba_client(c)) {
		ciba_refused(req, c, "unauthorized_client",
		             "this client is not registered for CIBA (poll mode)");
		goto out;
	}
	if (http_form(req, "request") != NULL || http_form(req, "login_hint_token") != NULL ||
	    http_form(req, "id_token_hint") != NULL) {
		ciba_refused(req, c, "invalid_request",
		             "only login_hint is supported: no request object, login_hint_token or "
		             "id_token_hint");
		goto out;
	}
	scope = http_form(req, "scope");
	hint = http_form(req, "login_hint");
	binding = http_form(req, "binding_message");
	acr = http_form(req, "acr_values");
	if (scope == NULL || strlen(scope) > 2048 || !scope_has(scope, "openid")) {
		ciba_refused(req, c, "invalid_scope", "scope must include openid");
		goto out;
	}
	granted = oidc_scope_granted(http_pool(req), scope, c->scope, NULL, "");
	if (!scope_has(granted, "openid")) {
		ciba_refused(req, c, "invalid_scope", "openid is not approved for this client");
		goto out;
	}
	if (hint == NULL || hint[0] == '\0' || strlen(hint) > CIBA_HINT_MAX ||
	    !utf8_printable(hint, strlen(hint), false)) {
		ciba_refused(req, c, "invalid_request", "login_hint missing or malformed");
		goto out;
	}
	if (!binding_ok(binding)) {
		ciba_refused(req, c, "invalid_binding_message",
		             "binding_message is required: 1 to 20 printable characters");
		goto out;
	}
	expiry = expiry_of(http_form(req, "requested_expiry"));
	if (expiry < 0) {
		ciba_refused(req, c, "invalid_request",
		             "requested_expiry must be a positive integer");
		goto out;
	}
	/* An app approval proves one factor: loa low (taipeipass-app.md). */
	if (acr != NULL && (strlen(acr) > 512 || oidc_min_loa(acr) > LOA_LOW)) {
		ciba_refused(req, c, "invalid_request",
		             "acr_values: an approval in the TaipeiPass app is urn:isso:loa:low");
		goto out;
	}
	/* Bounds what one counter can push to citizens' phones. */
	if (store_rate_hit(app->store, pool_printf(http_pool(req), "ciba:%s", c->client_id), 60,
	                   now, &count) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (count > CIBA_CLIENT_RATE) {
		oidc_security_event(req, "ciba_rate_limited", "client_id", c->client_id, NULL);
		http_set_header(req, "Retry-After", "60");
		oidc_json_error(req, 429, "slow_down",
		                "too many requests from this client: retry later");
		goto out;
	}
	if (member_resolve_hint(app, hint, uuid, key) < 0 ||
	    has_device(app, uuid[0] != '\0' ? uuid : nobody, &device) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (!device)
		uuid[0] = '\0';
	secret_token(16, id);
	secret_token(32, secret);
	secret_token(32, nonce);
	secret_sha256_hex(secret, strlen(secret), hash);
	data = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "client_id", c->client_id, "hash",
	                 hash, "scope", granted, "binding", binding, "exp",
	                 (json_int_t)(now + expiry), "state", "pending", "nonce", nonce);
	if (data == NULL) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (uuid[0] != '\0')
		json_object_set_new(data, "uuid", json_string(uuid));
	if (store_eph_put(app->store, CIBA_KIND, id, data, now + expiry + CIBA_GRACE) < 0 ||
	    index_add(app, uuid[0] != '\0' ? uuid : key, id, now, expiry) < 0) {
		(void)store_eph_delete(app->store, CIBA_KIND, id);
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	auth_req_id = xasprintf("%s.%s", id, secret);
	log_info("ciba_requested", "client_id", c->client_id, NULL);
	http_set_header(req, "Cache-Control", "no-store");
	http_send_json(req, 200,
	               json_pack("{s:s, s:i, s:i}", "auth_req_id", auth_req_id, "expires_in",
	                         (int)expiry, "interval", OIDC_CIBA_INTERVAL));
out:
	explicit_bzero(secret, sizeof(secret));
	xfree_secret(auth_req_id);
	json_decref(data);
	store_client_free(c);
}

/* ---- the token grant (CIBA §10.1, §11) ---- */

/* The request row of an auth_req_id issued to client c (a new
 * reference into *data_r, its id into id_r): 0 with *data_r NULL for an
 * unknown, used or foreign one, < 0 when the store fails. */
static int
ciba_row(struct isso_app *app, const struct store_client *c, const char *auth_req_id,
         char id_r[CIBA_ID_LEN + 1], json_t **data_r)
{
	json_t *data = NULL;
	const char *want;
	char hash[65];
	int ret;

	*data_r = NULL;
	if (auth_req_id == NULL || strlen(auth_req_id) != CIBA_ID_LEN + 1 + CIBA_SECRET_LEN ||
	    auth_req_id[CIBA_ID_LEN] != '.')
		return 0;
	memcpy(id_r, auth_req_id, CIBA_ID_LEN);
	id_r[CIBA_ID_LEN] = '\0';
	if (!b64url_token(id_r, CIBA_ID_LEN) ||
	    !b64url_token(auth_req_id + CIBA_ID_LEN + 1, CIBA_SECRET_LEN))
		return 0;
	ret = store_eph_get(app->store, CIBA_KIND, id_r, app_now(), &data, NULL);
	if (ret < 0 || data == NULL)
		return ret;
	secret_sha256_hex(auth_req_id + CIBA_ID_LEN + 1, CIBA_SECRET_LEN, hash);
	want = json_string_value(json_object_get(data, "hash"));
	if (want == NULL || strlen(want) != 64 || !secret_equal(want, hash) ||
	    strcmp(json_string_value(json_object_get(data, "client_id")) ?: "", c->client_id) !=
	        0) {
		json_decref(data);
		return 0;
	}
	*data_r = data;
	return 0;
}

/* A taken approval whose tokens could not be issued (the store failed
 * after the take): put it back as it was, so the counter's next poll
 * gets the tokens instead of invalid_grant. Best effort: with the store
 * down, the counter asks the citizen again. */
static void
ciba_give_back(struct isso_app *app, const char *id, json_t *data)
{
	int64_t exp = json_integer_value(json_object_get(data, "exp"));

	if (store_eph_put(app->store, CIBA_KIND, id, data, exp + CIBA_GRACE) < 0)
		log_warn("ciba_approval_lost", "reason", "store", NULL);
}

void
oidc_ciba_grant(struct isso_app *app, struct http_req *req, struct store_client *c, const char *jkt)
{
	json_t *data = NULL, *tdata = NULL, *rep = NULL, *request = NULL, *session = NULL;
	json_t *claims = NULL;
	const char *state, *uuid, *scope;
	char id[CIBA_ID_LEN + 1], grant[44];
	int64_t now = app_now();
	bool taken = false;
	int polls = 0;

	if (ciba_row(app, c, http_form(req, "auth_req_id"), id, &data) < 0) {
		/* invalid_grant would end the counter's polling for good */
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (data == NULL) {
		oidc_security_event(req, "grant_refused", "client_id", c->client_id, "grant_type",
		                    OIDC_CIBA_GRANT, "error", "invalid_grant", NULL);
		oidc_json_error(req, 400, "invalid_grant", "unknown, used or foreign auth_req_id");
		goto out;
	}
	if (json_integer_value(json_object_get(data, "exp")) <= now) {
		oidc_json_error(req, 400, "expired_token", "the request was not answered in time");
		goto out;
	}
	/* One poll per interval, counted in the store for every node. */
	if (store_eph_incr(app->store, CIBA_POLL, id, now, now + OIDC_CIBA_INTERVAL, &polls) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (polls > 1) {
		oidc_json_error(req, 400, "slow_down", "poll at most once per interval");
		goto out;
	}
	state = json_string_value(json_object_get(data, "state")) ?: "";
	if (strcmp(state, "pending") == 0) {
		oidc_json_error(req, 400, "authorization_pending", NULL);
		goto out;
	}
	if (strcmp(state, "approved") != 0) {
		(void)store_eph_delete(app->store, CIBA_KIND, id);
		oidc_json_error(req, 400, "access_denied", "the citizen declined");
		goto out;
	}
	/* Single use, even for two polls at once. */
	if (store_eph_take(app->store, CIBA_KIND, id, now, &taken) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	if (!taken) {
		oidc_json_error(req, 400, "invalid_grant", NULL);
		goto out;
	}
	uuid = json_string_value(json_object_get(data, "uuid"));
	scope = json_string_value(json_object_get(data, "scope"));
	tdata = json_pack("{s:O, s:O, s:O, s:O}", "auth_time", json_object_get(data, "auth_time"),
	                  "loa", json_object_get(data, "loa"), "amr", json_object_get(data, "amr"),
	                  "claims", json_object_get(data, "claims"));
	secret_token(16, grant);
	if (uuid == NULL || scope == NULL || tdata == NULL ||
	    oidc_tokens_issue(app, c, grant, uuid, NULL, scope, scope, tdata, false, jkt, NULL,
	                      &rep) < 0) {
		ciba_give_back(app, id, data);
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	claims = oidc_open_claims(app, data);
	request = json_pack("{s:s, s:s, s:b}", "client_id", c->client_id, "scope", scope, "sso", 0);
	session = json_pack("{s:s, s:s, s:O, s:O}", "uuid", uuid, "method", "taipeipass", "loa",
	                    json_object_get(data, "loa"), "auth_time",
	                    json_object_get(data, "auth_time"));
	if (claims == NULL || oidc_release_record(app, request, session, claims, now) < 0) {
		(void)store_token_revoke_grant(app->store, grant);
		ciba_give_back(app, id, data);
		json_decref(rep);
		rep = NULL;
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		goto out;
	}
	log_info("ciba_tokens_issued", "client_id", c->client_id, NULL);
	http_send_json(req, 200, rep);
	rep = NULL;
out:
	json_decref(claims);
	json_decref(request);
	json_decref(session);
	json_decref(rep);
	json_decref(tdata);
	json_decref(data);
}

/* ---- the app's side: /app/v1/ciba/pending, /app/v1/ciba/answer ---- */

static void
app_reply(struct http_req *req, int status, const char *key, const char *value)
{
	http_set_header(req, "Cache-Control", "no-store");
	http_send_json(req, status, json_pack("{s:s}", key, value));
}

/* The app's JSON request body (a new reference), NULL when not an object
 * of sane size. */
static json_t *
app_body(struct http_req *req)
{
	size_t len = 0;
	const char *raw = http_body(req, &len);
	json_t *body = raw != NULL && len <= 16384 ? json_loadb(raw, len, 0, NULL) : NULL;

	if (!json_is_object(body)) {
		json_decref(body);
		return NULL;
	}
	return body;
}

static bool
releases_claims(const char *word, const void *ctx)
{
	return claims_from_scope(word) != 0;
}

/* The fields a request's scope would release, as the app lists them. */
static json_t *
scope_fields(const char *scope)
{
	return oidc_scope_words_where(scope, releases_claims, NULL);
}

static bool
list_claims_match(json_t *claims, void *ctx)
{
	const char *jti = json_string_value(json_object_get(claims, "jti"));

	(void)ctx;
	return strcmp(json_string_value(json_object_get(claims, "action")) ?: "", "ciba_pending") ==
	           0 &&
	       jti != NULL && strlen(jti) >= 16 && strlen(jti) <= 64;
}

/* The member's request filed in slot n, when still pending for them:
 * what the app shows (its fields, and which of them the agency marked
 * optional: the citizen may decline those). NULL otherwise. */
static json_t *
pending_entry(struct isso_app *app, const char *uuid, int n, int64_t now)
{
	json_t *slot = NULL, *data = NULL, *out = NULL;
	struct store_client *c = NULL;
	char *slot_key = xasprintf("%s:%d", uuid, n);
	const char *id, *scope;
	int64_t exp;

	if (store_eph_get(app->store, CIBA_SLOT, slot_key, now, &slot, NULL) < 0 || slot == NULL)
		goto out;
	id = json_string_value(json_object_get(slot, "id"));
	if (id == NULL || store_eph_get(app->store, CIBA_KIND, id, now, &data, NULL) < 0 ||
	    data == NULL)
		goto out;
	exp = json_integer_value(json_object_get(data, "exp"));
	if (exp <= now ||
	    strcmp(json_string_value(json_object_get(data, "state")) ?: "", "pending") ||
	    strcmp(json_string_value(json_object_get(data, "uuid")) ?: "", uuid) != 0)
		goto out;
	c = oidc_client(app, json_string_value(json_object_get(data, "client_id")));
	if (c == NULL)
		goto out;
	scope = json_string_value(json_object_get(data, "scope"));
	out = json_pack("{s:s, s:s, s:O, s:o, s:o, s:s, s:I, s:O}", "request", id, "service",
	                c->name, "binding_message", json_object_get(data, "binding"), "fields",
	                scope_fields(scope), "optional", oidc_scope_optional_list(c, scope), "acr",
	                loa_name(LOA_LOW), "expires_in", (json_int_t)(exp - now), "nonce",
	                json_object_get(data, "nonce"));
out:
	store_client_free(c);
	json_decref(slot);
	json_decref(data);
	free(slot_key);
	return out;
}

/* POST /app/v1/ciba/pending: the counter requests waiting for the
 * device's member, newest first. The body is {device, signature}, the
 * signature's payload {device, action "ciba_pending", jti, iat}; each
 * jti works once. */
static void
app_pending_route(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	json_t *body = app_body(req), *claims = NULL, *list = NULL, *e;
	const char *device, *sig, *error = NULL;
	char uuid[37], jti_key[65];
	int64_t now = app_now();
	int ret, n = 0, used = 0;

	if (method_addr_limited(app, req, "tpapp-ciba")) {
		http_set_header(req, "Retry-After", "60");
		app_reply(req, 429, "error", "rate_limited");
		goto out;
	}
	device = json_string_value(json_object_get(body, "device"));
	sig = json_string_value(json_object_get(body, "signature"));
	if (body == NULL || !b64url_token(device, 43) || sig == NULL || sig[0] == '\0') {
		app_reply(req, 401, "error", "device_key_required");
		goto out;
	}
	ret = appsig_check(app, device, sig, list_claims_match, NULL, uuid, &claims, &error);
	if (ret == ISSO_ERR_DENIED) {
		app_reply(req, 401, "error", "unknown_device");
		goto out;
	}
	if (ret == ISSO_ERR_INVALID) {
		app_reply(req, 401, "error", "invalid_signature");
		goto out;
	}
	if (ret == 0) {
		/* The signature is good: its jti, once. */
		char *k =
		    xasprintf("%s|%s", device, json_string_value(json_object_get(claims, "jti")));
		secret_sha256_hex(k, strlen(k), jti_key);
		free(k);
		ret = store_eph_incr(app->store, CIBA_JTI, jti_key, now, now + 2 * APPSIG_SKEW,
		                     &used);
	}
	if (ret < 0) {
		app_reply(req, ret == ISSO_ERR_INVALID ? 401 : 503, "error",
		          ret == ISSO_ERR_INVALID ? "invalid_signature" : "unavailable");
		goto out;
	}
	if (used != 1) {
		log_info("tpapp_bad_signature", "reason", "replayed", NULL);
		app_reply(req, 401, "error", "invalid_signature");
		goto out;
	}
	if (store_eph_get(app->store, CIBA_SEQ, uuid, now, NULL, &n) < 0) {
		app_reply(req, 503, "error", "unavailable");
		goto out;
	}
	list = json_array();
	for (int i = n; i > 0 && i > n - CIBA_LIST_MAX; i--)
		if ((e = pending_entry(app, uuid, i, now)) != NULL)
			json_array_append_new(list, e);
	http_set_header(req, "Cache-Control", "no-store");
	http_send_json(req, 200, json_pack("{s:o}", "requests", list));
out:
	json_decref(claims);
	json_decref(body);
}

struct answer_ctx {
	const char *request;
	const char *decision;
	const char *nonce;
	const json_t *declined; /* the body's, NULL when it has none */
};

static bool
answer_claims_match(json_t *claims, void *ctx)
{
	struct answer_ctx *a = ctx;

	return appsig_nonce_ok(claims, a->nonce) &&
	       strcmp(json_string_value(json_object_get(claims, "request")) ?: "", a->request) ==
	           0 &&
	       strcmp(json_string_value(json_object_get(claims, "decision")) ?: "", a->decision) ==
	           0 &&
	       appsig_same(claims, "declined", a->declined);
}

/* The citizen's approval: the fields of released (the request's scope
 * without the optional ones declined) are released with their consent,
 * recorded as on the consent page; the grant then carries released. */
static int
approve(struct isso_app *app, json_t *data, const char *uuid, const char *declined,
        const char *released, int64_t now)
{
	const char *client_id = json_string_value(json_object_get(data, "client_id"));
	const char *scope = json_string_value(json_object_get(data, "scope"));
	json_t *session = json_pack("{s:s, s:s}", "uuid", uuid, "method", "taipeipass");
	json_t *claims = NULL;
	char *sealed = NULL;
	int ret;

	ret = oidc_claims(app, uuid, released, session, &claims);
	if (ret == 0 && (sealed = oidc_seal_claims(app, claims)) == NULL)
		ret = ISSO_ERR_CRYPTO;
	if (ret == 0)
		ret = oidc_consent_record(app, uuid, client_id, scope, declined, claims);
	if (ret == 0) {
		store_audit_append(app->store, now, "consent_granted",
		                   json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "uuid", uuid,
		                             "client_id", client_id, "scope", scope, "declined",
		                             declined, "notice", oidc_consent_notice_version, "via",
		                             "ciba"));
		json_object_set_new(data, "scope", json_string(released));
		json_object_set_new(data, "state", json_string("approved"));
		json_object_set_new(data, "loa", json_integer(LOA_LOW));
		json_object_set_new(data, "amr", json_pack("[s]", "swk"));
		json_object_set_new(data, "auth_time", json_integer(now));
		json_object_set_new(data, "claims", json_string(sealed));
	}
	free(sealed);
	json_decref(claims);
	json_decref(session);
	return ret;
}

/* POST /app/v1/ciba/answer: {request, device, decision approve|deny,
 * declined?, signature}, the signature's payload {request, device,
 * decision, declined (exactly when the body has it), nonce (the
 * listing's), iat}. declined names optional fields the citizen leaves out
 * (none when absent); any other word is invalid_request and changes
 * nothing. A request that is not the device's member's answers expired,
 * like one that is gone. */
static void
app_answer_route(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	json_t *body = app_body(req), *data = NULL;
	struct store_client *c = NULL;
	struct answer_ctx a;
	const char *device, *sig, *error = NULL;
	char uuid[37], *declined = NULL, *released = NULL;
	int64_t now = app_now();
	bool yes, found = false;
	int ret, uses = 0;

	if (method_addr_limited(app, req, "tpapp-ciba")) {
		http_set_header(req, "Retry-After", "60");
		app_reply(req, 429, "error", "rate_limited");
		goto out;
	}
	a.request = json_string_value(json_object_get(body, "request"));
	a.decision = json_string_value(json_object_get(body, "decision"));
	device = json_string_value(json_object_get(body, "device"));
	sig = json_string_value(json_object_get(body, "signature"));
	a.declined = json_object_get(body, "declined");
	if (body == NULL || !b64url_token(a.request, CIBA_ID_LEN) || a.decision == NULL ||
	    (strcmp(a.decision, "approve") != 0 && strcmp(a.decision, "deny") != 0) ||
	    (a.declined != NULL && !json_is_array(a.declined))) {
		app_reply(req, 400, "error", "invalid_request");
		goto out;
	}
	if (!b64url_token(device, 43) || sig == NULL || sig[0] == '\0') {
		app_reply(req, 401, "error", "device_key_required");
		goto out;
	}
	yes = strcmp(a.decision, "approve") == 0;
	if (store_eph_get(app->store, CIBA_KIND, a.request, now, &data, NULL) < 0) {
		app_reply(req, 503, "error", "unavailable");
		goto out;
	}
	if (data == NULL || json_integer_value(json_object_get(data, "exp")) <= now) {
		app_reply(req, 404, "error", "expired");
		goto out;
	}
	a.nonce = json_string_value(json_object_get(data, "nonce"));
	ret = appsig_check(app, device, sig, answer_claims_match, &a, uuid, NULL, &error);
	if (ret == ISSO_ERR_DENIED || ret == ISSO_ERR_INVALID || ret < 0) {
		app_reply(req, ret == ISSO_ERR_DENIED || ret == ISSO_ERR_INVALID ? 401 : 503,
		          "error",
		          ret == ISSO_ERR_DENIED    ? "unknown_device"
		          : ret == ISSO_ERR_INVALID ? "invalid_signature"
		                                    : "unavailable");
		goto out;
	}
	if (strcmp(json_string_value(json_object_get(data, "uuid")) ?: "", uuid) != 0) {
		app_reply(req, 404, "error", "expired");
		goto out;
	}
	if (strcmp(json_string_value(json_object_get(data, "state")) ?: "", "pending") != 0) {
		app_reply(req, 409, "error", "already_used");
		goto out;
	}
	/* Only the agency's optional fields may be declined; the check comes
	 * before the answer is taken, so a refused one leaves it pending. */
	if (oidc_client_find(app, json_string_value(json_object_get(data, "client_id")), &c) < 0) {
		app_reply(req, 503, "error", "unavailable");
		goto out;
	}
	if (oidc_scope_decline(c, json_string_value(json_object_get(data, "scope")), a.declined,
	                       &declined, &released) < 0) {
		app_reply(req, 400, "error", "invalid_request");
		goto out;
	}
	/* One answer per request, even from two phones at once. */
	if (store_eph_bump(app->store, CIBA_KIND, a.request, now, &uses) < 0 || uses != 1) {
		app_reply(req, uses < 0 ? 404 : 409, "error",
		          uses < 0 ? "expired" : "already_used");
		goto out;
	}
	if (yes)
		ret = approve(app, data, uuid, declined, released, now);
	else
		json_object_set_new(data, "state", json_string("denied"));
	if (ret < 0 || store_eph_update(app->store, CIBA_KIND, a.request, data, now, &found) < 0) {
		app_reply(req, 503, "error", "unavailable");
		goto out;
	}
	if (!found) {
		app_reply(req, 404, "error", "expired");
		goto out;
	}
	log_info("ciba_answer", "decision", yes ? "approved" : "denied", "client_id",
	         json_string_value(json_object_get(data, "client_id")), NULL);
	app_reply(req, 200, "result", yes ? "approved" : "denied");
out:
	store_client_free(c);
	free(declined);
	free(released);
	json_decref(body);
	json_decref(data);
}

void
oidc_ciba_routes(struct isso_app *app, struct http_server *srv)
{
	http_route(srv, HTTP_POST, "/bc-authorize", bc_authorize, app);
	http_route(srv, HTTP_POST, "/app/v1/ciba/pending", app_pending_route, app);
	http_route(srv, HTTP_POST, "/app/v1/ciba/answer", app_answer_route, app);
}
