/* What every endpoint shares about clients: finding a registered client
 * and its settings flags, its redirect URIs, redirecting to it and
 * answering with an OAuth error, security events, and client
 * authentication at token-endpoint-style requests (RFC 6749 §2.3, OIDC
 * Core §9). It calls no endpoint's file. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "auth/page.h"
#include "http/parse.h"
#include "jose/jose.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

bool
oidc_uri_listed(json_t *uris, const char *uri)
{
	size_t i;
	json_t *v;

	json_array_foreach(uris, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), uri) == 0)
			return true;
	}
	return false;
}

const char *
oidc_origin(struct pool *pool, const char *uri)
{
	const char *p = strstr(uri, "://");
	size_t n;

	if (p == NULL)
		return pool_strdup(pool, "'none'");
	n = (size_t)(p + 3 - uri) + strcspn(p + 3, "/?#");
	return pool_strndup(pool, uri, n);
}

int
oidc_client_find(struct isso_app *app, const char *client_id, struct store_client **client_r)
{
	struct store_client *c = NULL;
	int ret;

	*client_r = NULL;
	if (client_id == NULL || strlen(client_id) > 128)
		return 0;
	/* A row up to store.client_cache_ms old: a change made elsewhere
	 * reaches here that late, one made through this process at once. */
	ret = store_client_get_cached(app->store, client_id, &c);
	if (ret < 0)
		return ret;
	if (c != NULL && c->status != CLIENT_APPROVED) {
		store_client_free(c);
		c = NULL;
	}
	*client_r = c;
	return 0;
}

bool
oidc_client_flag(const struct store_client *c, const char *name)
{
	return c != NULL && json_is_true(json_object_get(c->settings, name));
}

struct store_client *
oidc_client(struct isso_app *app, const char *client_id)
{
	struct store_client *c = NULL;

	(void)oidc_client_find(app, client_id, &c);
	return c;
}

void
oidc_redirect_to_client(struct isso_app *app, struct http_req *req, const char *uri,
                        const char *query, const char *state)
{
	struct pool *pool = http_pool(req);
	struct buf b;

	buf_init(&b, 16384);
	buf_printf(&b, "%s%c%s", uri, strchr(uri, '?') != NULL ? '&' : '?', query);
	if (state != NULL)
		buf_printf(&b, "&state=%s", parse_pct_encode(pool, state));
	buf_printf(&b, "&iss=%s", parse_pct_encode(pool, app->issuer));
	http_csp_allow_form_action(req, oidc_origin(pool, uri));
	http_redirect(req, 303, pool_strdup(pool, b.data));
	buf_free(&b);
}

void
oidc_error_redirect(struct isso_app *app, struct http_req *req, json_t *request, const char *error,
                    const char *description)
{
	struct pool *pool = http_pool(req);
	const char *uri = json_string_value(json_object_get(request, "redirect_uri"));
	const char *state = json_string_value(json_object_get(request, "state"));
	const char *query = pool_printf(pool, "error=%s", error);

	if (description != NULL)
		query = pool_printf(pool, "%s&error_description=%s", query,
		                    parse_pct_encode(pool, description));
	oidc_redirect_to_client(app, req, uri, query, state);
	log_info("authorize_error", "error", error, "client_id",
	         json_string_value(json_object_get(request, "client_id")), NULL);
}

#define JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

void
oidc_json_error(struct http_req *req, int status, const char *error, const char *description)
{
	json_t *o = json_pack("{s:s}", "error", error);

	if (description != NULL)
		json_object_set_new(o, "error_description", json_string(description));
	http_send_json(req, status, o);
}

void
oidc_security_event(struct http_req *req, const char *event, ...)
{
	json_t *fields = json_object();
	const char *k, *v;
	va_list ap;

	json_object_set_new(fields, "address", json_string(http_remote_addr(req)));
	va_start(ap, event);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		/* Values may come from the request: bounded, and dropped when
		 * the cut would split a character. */
		if (v != NULL)
			json_object_set_new(fields, k, json_stringn(v, strnlen(v, 128)));
	}
	va_end(ap);
	log_event(LOG_WARN, event, fields);
}

/* Refuses client authentication (401 invalid_client) and logs why. */
static void
client_denied(struct http_req *req, bool basic, const char *client_id, const char *method,
              const char *reason)
{
	oidc_security_event(req, "client_auth_refused", "client_id", client_id, "method", method,
	                    "reason", reason, NULL);
	metrics_client_auth(method, false);
	if (basic)
		http_set_header(req, "WWW-Authenticate", "Basic realm=\"isso\"");
	oidc_json_error(req, 401, "invalid_client", reason);
}

#define ASSERTION_MAX      8192 /* bytes of a client assertion */
#define ASSERTION_MAX_LIFE 300  /* exp at most this long after iat (and now) */
#define CLOCK_SKEW         60   /* tolerated for iat and nbf */

static const char *const assertion_algs[] = {"ES256", "RS256", "PS256", NULL};

/* A JWS compact serialisation of sane size: three base64url parts. */
static bool
compact_jws_form(const char *s)
{
	size_t n = strnlen(s, ASSERTION_MAX + 1), dots = 0;

	if (n == 0 || n > ASSERTION_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '.')
			dots++;
		else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		           (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
	}
	return dots == 2 && s[0] != '.' && s[n - 1] != '.';
}

/* An integer claim; false when present but not an integer. */
static bool
int_claim(json_t *claims, const char *name, bool *present_r, json_int_t *v_r)
{
	json_t *v = json_object_get(claims, name);

	*present_r = v != NULL;
	*v_r = json_integer_value(v);
	return v == NULL || json_is_integer(v);
}

/* private_key_jwt (RFC 7523 §3, FAPI 2.0 §5.3.2.1): everything the
 * payload says is checked first, unverified; only an assertion that would
 * be acceptable makes us look for the client's keys (possibly fetching
 * them), and the signature is checked last. *unavailable_r is set when
 * the store failed: no verdict on the assertion. */
static bool
assertion_ok(struct isso_app *app, struct store_client *c, const char *assertion,
             const char **why_r, bool *unavailable_r)
{
	json_t *header = NULL, *claims = NULL, *verified = NULL, *jwks = NULL, *again = NULL, *aud;
	const char *alg, *jti;
	char *key = NULL;
	int64_t now = app_now();
	json_int_t exp, iat, nbf;
	bool ok = false, has_exp, has_iat, has_nbf, from_uri;
	int counter = 0;

	*unavailable_r = false;
	*why_r = "malformed client assertion";
	if (!compact_jws_form(assertion) || jose_decode_unverified(assertion, &header, &claims) < 0)
		goto out;
	alg = json_string_value(json_object_get(header, "alg"));
	ok = false;
	for (const char *const *a = assertion_algs; alg != NULL && *a != NULL; a++)
		ok |= strcmp(*a, alg) == 0;
	if (!ok) {
		*why_r = "assertion alg not allowed";
		goto out;
	}
	ok = false;
	if (strcmp(json_string_value(json_object_get(claims, "iss")) ?: "", c->client_id) != 0 ||
	    strcmp(json_string_value(json_object_get(claims, "sub")) ?: "", c->client_id) != 0) {
		*why_r = "assertion iss and sub must be the client_id";
		goto out;
	}
	/* The issuer identifier as a single string: an array could name
	 * other audiences the assertion is also good for (FAPI 2.0). */
	aud = json_object_get(claims, "aud");
	if (!json_is_string(aud) || strcmp(json_string_value(aud), app->issuer) != 0) {
		*why_r = "assertion aud must be the issuer identifier, as a single string";
		goto out;
	}
	if (!int_claim(claims, "exp", &has_exp, &exp) ||
	    !int_claim(claims, "iat", &has_iat, &iat) ||
	    !int_claim(claims, "nbf", &has_nbf, &nbf)) {
		*why_r = "assertion exp, iat and nbf must be integers";
		goto out;
	}
	if (!has_exp || exp <= now) {
		*why_r = "assertion expired";
		goto out;
	}
	if (exp > now + ASSERTION_MAX_LIFE + CLOCK_SKEW ||
	    (has_iat && exp - iat > ASSERTION_MAX_LIFE)) {
		*why_r = "assertion valid too long (at most 5 minutes)";
		goto out;
	}
	if (has_iat && iat > now + CLOCK_SKEW) {
		*why_r = "assertion issued in the future";
		goto out;
	}
	if (has_nbf && nbf > now + CLOCK_SKEW) {
		*why_r = "assertion not yet valid";
		goto out;
	}
	jti = json_string_value(json_object_get(claims, "jti"));
	if (jti == NULL || jti[0] == '\0' || strlen(jti) > 256) {
		*why_r = "assertion jti missing";
		goto out;
	}
	key = xasprintf("%s|%s", c->client_id, jti);
	if (store_eph_get(app->store, "jti", key, now, NULL, &counter) < 0) {
		*why_r = "temporarily unavailable";
		*unavailable_r = true;
		goto out;
	}
	if (counter > 0) {
		*why_r = "assertion replayed";
		goto out;
	}
	from_uri = c->jwks == NULL;
	if (!from_uri)
		jwks = json_incref(c->jwks);
	else if (c->jwks_uri != NULL && c->jwks_uri[0] != '\0')
		jwks = oidc_jwks_get(app->oidc != NULL ? app->oidc->jwks : NULL, c->client_id,
		                     c->jwks_uri, false, why_r);
	else
		*why_r = "the client has no JWK set";
	if (jwks == NULL)
		goto out;
	if (jose_verify(assertion, jwks, assertion_algs, &verified, why_r) < 0) {
		/* The client may have rotated its keys since we fetched. */
		if (!from_uri ||
		    (again = oidc_jwks_get(app->oidc->jwks, c->client_id, c->jwks_uri, true,
		                           why_r)) == NULL ||
		    json_equal(again, jwks) ||
		    jose_verify(assertion, again, assertion_algs, &verified, why_r) < 0)
			goto out;
	}
	/* One use per jti while the assertion is valid (RFC 7523 §3 item 7). */
	if (store_eph_incr(app->store, "jti", key, now, exp + CLOCK_SKEW, &counter) < 0) {
		*why_r = "temporarily unavailable";
		*unavailable_r = true;
		goto out;
	}
	if (counter != 1) {
		*why_r = "assertion replayed";
		goto out;
	}
	ok = true;
out:
	free(key);
	json_decref(again);
	json_decref(jwks);
	json_decref(verified);
	json_decref(header);
	json_decref(claims);
	return ok;
}

/* See oidc-private.h. */
bool
oidc_client_assertion_ok(struct isso_app *app, struct store_client *c, const char *assertion,
                         const char **why_r)
{
	bool unavailable = false;

	return assertion_ok(app, c, assertion, why_r, &unavailable);
}

/* Is method one of the two that carry the client secret itself? */
static bool
secret_method(const char *method)
{
	return strcmp(method, "client_secret_basic") == 0 ||
	       strcmp(method, "client_secret_post") == 0;
}

/* RFC 6749 §3.2: request parameters must not repeat. */
static bool
form_repeats(struct http_req *req)
{
	static const char *const names[] = {
	    "grant_type",
	    "code",
	    "redirect_uri",
	    "code_verifier",
	    "refresh_token",
	    "scope",
	    "client_id",
	    "client_secret",
	    "client_assertion",
	    "client_assertion_type",
	    "token",
	    "token_type_hint",
	    "auth_req_id",
	    "login_hint",
	    "binding_message",
	    "requested_expiry",
	    "acr_values",
	    NULL,
	};
	const struct http_kvs *form = http_form_all(req);

	for (const char *const *n = names; *n != NULL; n++) {
		if (http_kvs_count(form, *n) > 1)
			return true;
	}
	return false;
}

struct store_client *
oidc_client_auth(struct isso_app *app, struct http_req *req)
{
	struct pool *pool = http_pool(req);
	const char *authz = http_header(req, "Authorization");
	const char *form_id = http_form(req, "client_id");
	const char *form_secret = http_form(req, "client_secret");
	const char *assertion = http_form(req, "client_assertion");
	const char *assertion_type = http_form(req, "client_assertion_type");
	struct store_client *c = NULL;
	char *user = NULL, *pass = NULL;
	const char *used, *id, *secret = NULL, *why = NULL;
	bool basic = authz != NULL && strncasecmp(authz, "Basic ", 6) == 0;
	bool unavailable = false;
	int n = (basic ? 1 : 0) + (form_secret != NULL ? 1 : 0) + (assertion != NULL ? 1 : 0);
	char hash[65];

	if (n > 1) {
		oidc_json_error(req, 400, "invalid_request",
		                "more than one client authentication method");
		return NULL;
	}
	if (form_repeats(req)) {
		oidc_json_error(req, 400, "invalid_request", "repeated parameter");
		return NULL;
	}
	if (basic) {
		if (parse_basic_auth(pool, authz, &user, &pass) < 0) {
			client_denied(req, true, NULL, "client_secret_basic",
			              "malformed Basic credentials");
			return NULL;
		}
		if (form_id != NULL && strcmp(form_id, user) != 0) {
			oidc_json_error(req, 400, "invalid_request", "client_id mismatch");
			return NULL;
		}
		used = "client_secret_basic";
		id = user;
		secret = pass;
	} else if (assertion != NULL) {
		json_t *claims = NULL;
		if (assertion_type == NULL || strcmp(assertion_type, JWT_BEARER) != 0) {
			oidc_json_error(req, 400, "invalid_request", "bad client_assertion_type");
			return NULL;
		}
		if (!compact_jws_form(assertion) ||
		    jose_decode_unverified(assertion, NULL, &claims) < 0) {
			client_denied(req, false, form_id, "private_key_jwt",
			              "malformed client assertion");
			return NULL;
		}
		id = pool_strdup(pool, json_string_value(json_object_get(claims, "sub")));
		json_decref(claims);
		if (id == NULL || (form_id != NULL && strcmp(form_id, id) != 0)) {
			client_denied(req, false, form_id, "private_key_jwt",
			              "assertion subject mismatch");
			return NULL;
		}
		used = "private_key_jwt";
	} else if (form_secret != NULL) {
		used = "client_secret_post";
		id = form_id;
		secret = form_secret;
	} else {
		used = "none";
		id = form_id;
	}
	if (id == NULL) {
		client_denied(req, basic, NULL, used, "client authentication missing");
		return NULL;
	}
	if (oidc_client_find(app, id, &c) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		return NULL;
	}
	if (c == NULL) {
		client_denied(req, basic, id, used, "unknown client");
		return NULL;
	}
	/* A client uses the method it registered (OIDC Registration
	 * token_endpoint_auth_method), except that a secret client may send
	 * its secret either way: Basic and the form carry the same secret
	 * (RFC 6749 §2.3.1), and common libraries default to the form. */
	if (strcmp(c->auth_method, used) != 0 &&
	    !(secret_method(c->auth_method) && secret_method(used))) {
		client_denied(req, basic, id, used, "client authentication method not allowed");
		goto fail;
	}
	if (secret != NULL) {
		secret_sha256_hex(secret, strlen(secret), hash);
		if (c->secret_hash == NULL || !secret_equal(c->secret_hash, hash)) {
			client_denied(req, basic, id, used, "client authentication failed");
			goto fail;
		}
	} else if (assertion != NULL && !assertion_ok(app, c, assertion, &why, &unavailable)) {
		/* The store could not say whether its jti was used: no
		 * verdict on the client's credentials. */
		if (unavailable) {
			oidc_json_error(req, 503, "temporarily_unavailable", NULL);
			goto fail;
		}
		oidc_security_event(req, "client_assertion_refused", "client_id", id, "reason", why,
		                    NULL);
		client_denied(req, false, id, used, why);
		goto fail;
	}
	metrics_client_auth(used, true);
	return c;
fail:
	store_client_free(c);
	return NULL;
}

/* See oidc-private.h. */
bool
oidc_client_grant(const struct store_client *c, const char *grant_type)
{
	return scope_has(c->grant_types != NULL ? c->grant_types : STORE_CLIENT_DEFAULT_GRANTS,
	                 grant_type);
}
