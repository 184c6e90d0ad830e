/* The token endpoint (RFC 6749 §3.2, OIDC Core §3.1.3) and client
 * authentication. */
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "auth/method.h"
#include "http/parse.h"
#include "jose/jose.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

void
oidc_json_error(struct http_req *req, int status, const char *error, const char *description)
{
	json_t *o = json_pack("{s:s}", "error", error);

	if (description != NULL)
		json_object_set_new(o, "error_description", json_string(description));
	http_send_json(req, status, o);
}

static void
client_denied(struct http_req *req, bool basic, const char *description)
{
	if (basic)
		http_set_header(req, "WWW-Authenticate", "Basic realm=\"isso\"");
	oidc_json_error(req, 401, "invalid_client", description);
}

#define JWKS_MAX       (64 * 1024)
#define JWKS_CACHE_TTL 300

static size_t
jwks_write(char *data, size_t size, size_t n, void *ctx)
{
	return buf_add(ctx, data, size * n) == 0 ? size * n : 0;
}

/* The client's JWK set: registered inline, or fetched from its jwks_uri
 * (cached five minutes, bounded in size and time). New reference or NULL. */
static json_t *
client_jwks(struct isso_app *app, const struct store_client *c)
{
	json_t *jwks = NULL;
	struct buf body;
	CURL *curl = NULL;
	long status = 0;
	int64_t now = app_now();

	if (c->jwks != NULL)
		return json_incref(c->jwks);
	if (c->jwks_uri == NULL || c->jwks_uri[0] == '\0')
		return NULL;
	if (store_eph_get(app->store, "jwks", c->client_id, now, &jwks, NULL) == 0 && jwks != NULL)
		return jwks;
	buf_init(&body, JWKS_MAX);
	curl = curl_easy_init();
	if (curl == NULL)
		goto out;
	curl_easy_setopt(curl, CURLOPT_URL, c->jwks_uri);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, jwks_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
	if (curl_easy_perform(curl) != CURLE_OK)
		goto out;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		goto out;
	jwks = json_loadb(body.data, body.len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_array(json_object_get(jwks, "keys"))) {
		json_decref(jwks);
		jwks = NULL;
		goto out;
	}
	(void)store_eph_put(app->store, "jwks", c->client_id, jwks, now + JWKS_CACHE_TTL);
out:
	if (jwks == NULL)
		log_warn("client_jwks_unavailable", "client_id", c->client_id, NULL);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	buf_free(&body);
	return jwks;
}

/* private_key_jwt (RFC 7523 §3): the assertion is signed by a key of the
 * client's registered JWK set and names the client as iss and sub. */
static bool
assertion_ok(struct isso_app *app, struct store_client *c, const char *assertion,
             const char **why_r)
{
	static const char *const algs[] = {"ES256", "RS256", "PS256", NULL};
	json_t *claims = NULL, *aud, *jwks = NULL;
	const char *jti;
	char *token_url = NULL, *key = NULL;
	int64_t now = app_now();
	json_int_t exp;
	bool ok = false, aud_ok = false;
	int counter = 0;

	*why_r = "client assertion rejected";
	jwks = client_jwks(app, c);
	if (jwks == NULL) {
		*why_r = "the client's JWK set is unavailable";
		goto out;
	}
	if (jose_verify(assertion, jwks, algs, &claims, why_r) < 0)
		goto out;
	if (strcmp(json_string_value(json_object_get(claims, "iss")) ?: "", c->client_id) != 0 ||
	    strcmp(json_string_value(json_object_get(claims, "sub")) ?: "", c->client_id) != 0) {
		*why_r = "assertion iss and sub must be the client_id";
		goto out;
	}
	token_url = xasprintf("%s/token", app->issuer);
	aud = json_object_get(claims, "aud");
	if (json_is_string(aud)) {
		aud_ok = strcmp(json_string_value(aud), token_url) == 0 ||
		         strcmp(json_string_value(aud), app->issuer) == 0;
	} else if (json_is_array(aud)) {
		size_t i;
		json_t *v;
		json_array_foreach(aud, i, v)
		{
			const char *s = json_string_value(v) ?: "";
			aud_ok |= strcmp(s, token_url) == 0 || strcmp(s, app->issuer) == 0;
		}
	}
	if (!aud_ok) {
		*why_r = "assertion audience is not this server";
		goto out;
	}
	exp = json_integer_value(json_object_get(claims, "exp"));
	if (exp <= now || exp > now + 600) {
		*why_r = "assertion expired or valid too long";
		goto out;
	}
	jti = json_string_value(json_object_get(claims, "jti"));
	if (jti == NULL || strlen(jti) > 256) {
		*why_r = "assertion jti missing";
		goto out;
	}
	/* One use per jti while the assertion is valid. */ key =
	    xasprintf("%s|%s", c->client_id, jti);
	if (store_eph_incr(app->store, "jti", key, now, exp + 60, &counter) < 0)
		goto out;
	if (counter != 1) {
		*why_r = "assertion replayed";
		goto out;
	}
	ok = true;
out:
	free(token_url);
	free(key);
	json_decref(jwks);
	json_decref(claims);
	return ok;
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
			client_denied(req, true, "malformed Basic credentials");
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
		if (jose_decode_unverified(assertion, NULL, &claims) < 0) {
			client_denied(req, false, "malformed client assertion");
			return NULL;
		}
		id = pool_strdup(pool, json_string_value(json_object_get(claims, "sub")));
		json_decref(claims);
		if (id == NULL || (form_id != NULL && strcmp(form_id, id) != 0)) {
			client_denied(req, false, "assertion subject mismatch");
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
		client_denied(req, basic, "client authentication missing");
		return NULL;
	}
	c = oidc_client(app, id);
	if (c == NULL) {
		client_denied(req, basic, "unknown client");
		return NULL;
	}
	/* A client uses the one method it registered (OIDC Registration
	 * token_endpoint_auth_method). */
	if (strcmp(c->auth_method, used) != 0) {
		client_denied(req, basic, "client authentication method not allowed");
		goto fail;
	}
	if (secret != NULL) {
		secret_sha256_hex(secret, strlen(secret), hash);
		if (c->secret_hash == NULL || !secret_equal(c->secret_hash, hash)) {
			client_denied(req, basic, "client authentication failed");
			log_info("client_auth_failed", "client_id", c->client_id, NULL);
			goto fail;
		}
	} else if (assertion != NULL && !assertion_ok(app, c, assertion, &why)) {
		client_denied(req, false, why);
		goto fail;
	}
	return c;
fail:
	store_client_free(c);
	return NULL;
}

/* Stores a new token of kind for the grant; writes its value to value_r. */
static int
token_put(struct isso_app *app, int kind, const char *grant, const struct store_client *c,
          const char *uuid, const char *sid, const char *scope, json_t *data, int ttl,
          char value_r[44])
{
	struct store_token t;
	char hash[65];
	int64_t now = app_now();

	oidc_new_token(value_r, hash);
	memset(&t, 0, sizeof(t));
	t.hash = hash;
	t.kind = kind;
	t.grant_id = (char *)grant;
	t.client_id = c->client_id;
	t.uuid = (char *)uuid;
	t.sid = (char *)sid;
	t.scope = (char *)scope;
	t.data = data;
	t.created_at = now;
	t.expires_at = now + ttl;
	return store_token_add(app->store, &t);
}

/* Issues access (+ refresh, + ID) tokens for a grant and answers. data
 * carries auth_time, loa, amr, sid, claims (sealed) and nonce. */
static void
issue_tokens(struct isso_app *app, struct http_req *req, const struct store_client *c,
             const char *grant, const char *uuid, const char *sid, const char *scope,
             const char *grant_scope, json_t *data, bool with_nonce)
{
	const struct isso_config *cfg = app->cfg;
	char access[44], refresh[44], sub[44], at_hash[64];
	json_t *tdata = json_object(), *rep = NULL, *idt = NULL;
	char *jwt = NULL;
	int64_t now = app_now();

	if (json_object_get(data, "claims") != NULL)
		json_object_set(tdata, "claims", json_object_get(data, "claims"));
	if (token_put(app, TOKEN_ACCESS, grant, c, uuid, sid, scope, tdata,
	              cfg->oidc.access_token_ttl, access) < 0)
		goto fail;
	rep = json_pack("{s:s, s:s, s:i, s:s}", "access_token", access, "token_type", "Bearer",
	                "expires_in", cfg->oidc.access_token_ttl, "scope", scope);
	if (uuid != NULL) {
		json_t *rdata = json_deep_copy(data);
		json_object_del(rdata, "nonce");
		json_object_del(rdata, "redirect_uri");
		json_object_del(rdata, "redirect_uri_given");
		json_object_del(rdata, "code_challenge");
		/* RFC 6749 §6: the new refresh token keeps the grant's scope,
		 * whatever this access token was narrowed to. */
		int ret = token_put(app, TOKEN_REFRESH, grant, c, uuid, sid, grant_scope, rdata,
		                    cfg->oidc.refresh_token_ttl, refresh);
		json_decref(rdata);
		if (ret < 0)
			goto fail;
		json_object_set_new(rep, "refresh_token", json_string(refresh));
	}
	if (uuid != NULL && scope_has(scope, "openid")) {
		enum loa loa = (enum loa)json_integer_value(json_object_get(data, "loa"));
		jose_half_hash(c->id_token_alg, access, at_hash);
		idt = json_pack(
		    "{s:s, s:s, s:s, s:I, s:I, s:O, s:s, s:O, s:s, s:s}", "iss", app->issuer, "sub",
		    oidc_sub(app, c->client_id, uuid, sub), "aud", c->client_id, "exp",
		    (json_int_t)(now + cfg->oidc.id_token_ttl), "iat", (json_int_t)now, "auth_time",
		    json_object_get(data, "auth_time"), "acr", loa_name(loa), "amr",
		    json_object_get(data, "amr"), "azp", c->client_id, "at_hash", at_hash);
		if (sid != NULL)
			json_object_set_new(idt, "sid", json_string(sid));
		if (with_nonce && json_object_get(data, "nonce") != NULL)
			json_object_set(idt, "nonce", json_object_get(data, "nonce"));
		if (jose_sign(app->keys, c->id_token_alg, NULL, idt, &jwt) < 0)
			goto fail;
		json_object_set_new(rep, "id_token", json_string(jwt));
	}
	http_send_json(req, 200, rep);
	rep = NULL;
	goto out;
fail:
	oidc_json_error(req, 503, "temporarily_unavailable", NULL);
out:
	free(jwt);
	json_decref(idt);
	json_decref(rep);
	json_decref(tdata);
}

/* Marks a code or refresh token used. The loser of a race, or a replay,
 * revokes the whole grant and is answered invalid_grant. */
static bool
use_once(struct isso_app *app, struct http_req *req, const struct store_token *t,
         const struct store_client *c, const char *event, const char *description)
{
	bool won = false;

	if (store_token_use(app->store, t->hash, app_now(), &won) < 0) {
		oidc_json_error(req, 503, "temporarily_unavailable", NULL);
		return false;
	}
	if (!won) {
		(void)store_token_revoke_grant(app->store, t->grant_id);
		log_warn(event, "client_id", c->client_id, NULL);
		oidc_json_error(req, 400, "invalid_grant", description);
	}
	return won;
}

static void
grant_code(struct isso_app *app, struct http_req *req, struct store_client *c)
{
	const char *code = http_form(req, "code");
	const char *uri = http_form(req, "redirect_uri");
	const char *verifier = http_form(req, "code_verifier");
	struct store_token *t = NULL;
	const char *challenge, *want_uri;

	if (code == NULL) {
		oidc_json_error(req, 400, "invalid_request", "code missing");
		goto out;
	}
	t = oidc_token_lookup(app, code);
	if (t == NULL || t->kind != TOKEN_CODE || t->revoked) {
		oidc_json_error(req, 400, "invalid_grant", "unknown, expired or used code");
		goto out;
	}
	if (strcmp(t->client_id, c->client_id) != 0) {
		oidc_json_error(req, 400, "invalid_grant", "code was issued to another client");
		goto out;
	}
	/* RFC 6749 §4.1.2: a replayed code revokes what it issued. */
	if (!use_once(app, req, t, c, "code_replayed", "unknown, expired or used code"))
		goto out;
	want_uri = json_string_value(json_object_get(t->data, "redirect_uri"));
	if (json_object_get(t->data, "redirect_uri_given") != NULL &&
	    (uri == NULL || strcmp(uri, want_uri ?: "") != 0)) {
		oidc_json_error(req, 400, "invalid_grant", "redirect_uri mismatch");
		goto out;
	}
	if (uri != NULL && strcmp(uri, want_uri ?: "") != 0) {
		oidc_json_error(req, 400, "invalid_grant", "redirect_uri mismatch");
		goto out;
	}
	challenge = json_string_value(json_object_get(t->data, "code_challenge"));
	if (challenge != NULL) {
		if (verifier == NULL || !jose_pkce_s256_ok(verifier, challenge)) {
			oidc_json_error(req, 400, "invalid_grant", "PKCE verification failed");
			goto out;
		}
	} else if (verifier != NULL) {
		oidc_json_error(req, 400, "invalid_grant", "no code_challenge was sent");
		goto out;
	}
	issue_tokens(app, req, c, t->grant_id, t->uuid, t->sid, t->scope, t->scope, t->data, true);
out:
	store_token_free(t);
}

/* Is every word of sub also in scope? */
static bool
scope_subset(const char *sub, const char *scope)
{
	for (const char *p = sub; *p != '\0';) {
		size_t n = strcspn(p, " ");
		char w[64];
		if (n >= sizeof(w))
			return false;
		memcpy(w, p, n);
		w[n] = '\0';
		if (n > 0 && !scope_has(scope, w))
			return false;
		p += n;
		while (*p == ' ')
			p++;
	}
	return true;
}

static void
grant_refresh(struct isso_app *app, struct http_req *req, struct store_client *c)
{
	const char *value = http_form(req, "refresh_token");
	const char *scope = http_form(req, "scope");
	struct store_token *t = NULL;

	if (value == NULL) {
		oidc_json_error(req, 400, "invalid_request", "refresh_token missing");
		goto out;
	}
	t = oidc_token_lookup(app, value);
	if (t == NULL || t->kind != TOKEN_REFRESH || t->revoked ||
	    strcmp(t->client_id, c->client_id) != 0) {
		oidc_json_error(req, 400, "invalid_grant", "unknown, expired or revoked token");
		goto out;
	}
	if (scope != NULL && (strlen(scope) > 2048 || !scope_subset(scope, t->scope))) {
		oidc_json_error(req, 400, "invalid_scope", "scope exceeds the original grant");
		goto out;
	}
	/* Reuse of a rotated refresh token: someone holds a copy, so the
	 * whole family goes (OAuth 2.0 Security BCP §4.14). */
	if (!use_once(app, req, t, c, "refresh_token_reused", "unknown, expired or revoked token"))
		goto out;
	issue_tokens(app, req, c, t->grant_id, t->uuid, t->sid, scope != NULL ? scope : t->scope,
	             t->scope, t->data, false);
out:
	store_token_free(t);
}

static void
grant_client_credentials(struct isso_app *app, struct http_req *req, struct store_client *c)
{
	const char *scope = http_form(req, "scope");
	char grant[44];
	json_t *data = json_object();

	if (c->public_client) {
		oidc_json_error(req, 400, "unauthorized_client",
		                "public clients cannot use client_credentials");
		goto out;
	}
	/* No person is involved: personal-data scopes make no sense here. */
	if (scope != NULL &&
	    (strlen(scope) > 2048 || claims_from_scope(scope) != 0 || scope_has(scope, "openid"))) {
		oidc_json_error(req, 400, "invalid_scope", "client_credentials carry no person");
		goto out;
	}
	secret_token(16, grant);
	issue_tokens(app, req, c, grant, NULL, NULL, scope != NULL ? scope : "",
	             scope != NULL ? scope : "", data, false);
out:
	json_decref(data);
}

static void
token_endpoint(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;
	const char *type = http_header(req, "Content-Type");
	const char *grant_type;
	struct store_client *c = NULL;

	if (type == NULL || strncasecmp(type, "application/x-www-form-urlencoded", 33) != 0) {
		oidc_json_error(req, 400, "invalid_request",
		                "use application/x-www-form-urlencoded");
		return;
	}
	grant_type = http_form(req, "grant_type");
	if (grant_type == NULL) {
		oidc_json_error(req, 400, "invalid_request", "grant_type missing");
		return;
	}
	if (strcmp(grant_type, "authorization_code") != 0 &&
	    strcmp(grant_type, "refresh_token") != 0 &&
	    strcmp(grant_type, "client_credentials") != 0) {
		oidc_json_error(req, 400, "unsupported_grant_type", NULL);
		return;
	}
	c = oidc_client_auth(app, req);
	if (c == NULL)
		return;
	if (strcmp(grant_type, "authorization_code") == 0)
		grant_code(app, req, c);
	else if (strcmp(grant_type, "refresh_token") == 0)
		grant_refresh(app, req, c);
	else
		grant_client_credentials(app, req, c);
	store_client_free(c);
}

void
oidc_token_routes(struct isso_app *app, struct http_server *srv)
{
	http_route(srv, HTTP_POST, "/token", token_endpoint, app);
	http_route(srv, HTTP_POST, "/isso/oauth2/token", token_endpoint, app);
}
