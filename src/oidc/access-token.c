/* Self-contained access tokens, and the client settings that the OpenID
 * Provider reads.
 *
 * The client_credentials grant issues self-contained access tokens: no
 * person and no session stand behind them, so nothing at logout, consent
 * withdrawal or a password reset has to reach them, and issuing one writes
 * nothing to the store. Two forms, chosen per client (settings
 * access_token_format):
 *  - "jwt": an RFC 9068 JWT signed with the provider's keys, which a
 *    resource server may verify itself;
 *  - "opaque" (the default): sealed, "isso_at1_" and base64url of an
 *    XChaCha20-Poly1305 box of the same claims under a key derived from
 *    the master key, bound to the token kind and the issuer. Opaque to everyone but this
 *    provider (resource servers introspect it), on every node sharing the
 *    master key, and an AEAD costs a microsecond where a signature costs
 *    thirty.
 * Tokens of a person stay opaque rows (token.c): those are revoked by
 * grant and by person, and UserInfo reads the claims sealed in them. A
 * revoked self-contained token's jti is kept as an ephemeral row
 * ("at_revoked") until the token's own expiry; introspection and UserInfo
 * look it up, so revocation holds on every node. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/app.h"
#include "jose/jose.h"
#include "lib/isso.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define AT_JWT_TYP        "at+jwt"
#define AT_REVOKED_KIND   "at_revoked"
#define AUDIENCE_MAX      512
#define AT_JWT_CLOCK_SKEW 60 /* tolerated for iat in the future */
#define AT_SEALED_PREFIX  "isso_at1_"
#define AT_STORED_LEN     43 /* oidc_new_token: 32 random bytes */

static const char *const at_algs[] = {"ES256", "RS256", NULL};

/* A registered audience: printable ASCII without spaces or quotes. */
static bool
audience_ok(const char *s)
{
	size_t n = strnlen(s, AUDIENCE_MAX + 1);

	if (n == 0 || n > AUDIENCE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
			return false;
	}
	return true;
}

int
oidc_client_settings_check(const json_t *settings, const char **why_r)
{
	const char *key;
	json_t *v;

	*why_r = "client settings must be a JSON object";
	if (!json_is_object(settings))
		return ISSO_ERR_INVALID;
	json_object_foreach((json_t *)settings, key, v)
	{
		if (strcmp(key, "access_token_format") == 0) {
			const char *f = json_string_value(v);
			if (f == NULL || (strcmp(f, "opaque") != 0 && strcmp(f, "jwt") != 0)) {
				*why_r = "access_token_format must be \"opaque\" or \"jwt\"";
				return ISSO_ERR_INVALID;
			}
		} else if (strcmp(key, "access_token_audience") == 0) {
			if (!json_is_string(v) || !audience_ok(json_string_value(v))) {
				*why_r = "access_token_audience must be a URI or identifier of at "
				         "most 512 printable characters";
				return ISSO_ERR_INVALID;
			}
		} else if (strcmp(key, "backchannel_token_delivery_mode") == 0) {
			/* CIBA Core §4: only poll is delivered here. */
			if (!json_is_string(v) || strcmp(json_string_value(v), "poll") != 0) {
				*why_r = "backchannel_token_delivery_mode must be \"poll\"";
				return ISSO_ERR_INVALID;
			}
		} else if (strcmp(key, "events_uri") == 0) {
			if (oidc_events_uri_check(v, why_r) < 0)
				return ISSO_ERR_INVALID;
		}
		/* Other keys belong to other settings, checked where read. */
	}
	*why_r = NULL;
	return 0;
}

bool
oidc_client_jwt_access_tokens(const struct store_client *c)
{
	const char *why;
	const char *f;

	/* Anything unexpected in the stored object means the default. */
	if (c->settings == NULL || oidc_client_settings_check(c->settings, &why) < 0)
		return false;
	f = json_string_value(json_object_get(c->settings, "access_token_format"));
	return f != NULL && strcmp(f, "jwt") == 0;
}

enum oidc_at_form
oidc_at_form(const char *value)
{
	const char *d1 = value != NULL ? strchr(value, '.') : NULL;

	if (d1 != NULL && strchr(d1 + 1, '.') != NULL)
		return OIDC_AT_JWT;
	/* A stored token is 43 base64url characters, a sealed one longer. */
	if (value != NULL && strncmp(value, AT_SEALED_PREFIX, strlen(AT_SEALED_PREFIX)) == 0 &&
	    strnlen(value, AT_STORED_LEN + 1) > AT_STORED_LEN)
		return OIDC_AT_SEALED;
	return OIDC_AT_STORED;
}

/* A sealed token's associated data: its kind and the issuer, so that it
 * opens only as an access token of this deployment (malloc'd). */
static char *
sealed_ad(const char *issuer)
{
	return xasprintf("%s %s", AT_SEALED_PREFIX, issuer);
}

/* The registered audience, or NULL. */
static const char *
client_audience(const struct store_client *c)
{
	const char *why;

	if (c->settings == NULL || oidc_client_settings_check(c->settings, &why) < 0)
		return NULL;
	return json_string_value(json_object_get(c->settings, "access_token_audience"));
}

int
oidc_at_jwt_sign(const struct jose_keyset *ks, const char *issuer, const struct store_client *c,
                 const char *scope, const char *jkt, int64_t now, int ttl, char **jwt_r,
                 char jti_r[44])
{
	const char *aud = client_audience(c);
	const char *alg = jose_keyset_has_alg(ks, "ES256") ? "ES256" : "RS256";
	json_t *claims;
	int ret;

	*jwt_r = NULL;
	secret_token(16, jti_r);
	/* RFC 9068 §2.2; without a person, sub is the client itself. */
	claims = json_pack("{s:s, s:I, s:s, s:s, s:s, s:I, s:s}", "iss", issuer, "exp",
	                   (json_int_t)(now + ttl), "aud", aud != NULL ? aud : issuer, "sub",
	                   c->client_id, "client_id", c->client_id, "iat", (json_int_t)now, "jti",
	                   jti_r);
	if (claims == NULL)
		return ISSO_ERR_NOMEM;
	if (scope != NULL && scope[0] != '\0')
		json_object_set_new(claims, "scope", json_string(scope));
	/* RFC 9449 §6.1: bound to the DPoP key of the token request. */
	if (jkt != NULL && jkt[0] != '\0')
		json_object_set_new(claims, "cnf", json_pack("{s:s}", "jkt", jkt));
	ret = jose_sign(ks, alg, AT_JWT_TYP, claims, jwt_r);
	json_decref(claims);
	return ret;
}

int
oidc_at_jwt_verify(const struct jose_keyset *ks, const char *issuer, const char *value, int64_t now,
                   json_t **claims_r, const char **why_r)
{
	json_t *hdr = NULL, *claims = NULL;
	const char *typ, *jti;
	json_t *exp, *iat;
	int ret = ISSO_ERR_INVALID;

	*claims_r = NULL;
	*why_r = "not an access token";
	/* The header first: ID and logout tokens carry the same signature. */
	if (jose_decode_unverified(value, &hdr, NULL) < 0)
		goto out;
	typ = json_string_value(json_object_get(hdr, "typ"));
	if (typ == NULL || strcmp(typ, AT_JWT_TYP) != 0)
		goto out;
	if (jose_keyset_verify(ks, value, at_algs, &claims, why_r) < 0)
		goto out;
	exp = json_object_get(claims, "exp");
	iat = json_object_get(claims, "iat");
	jti = json_string_value(json_object_get(claims, "jti"));
	if (strcmp(json_string_value(json_object_get(claims, "iss")) ?: "", issuer) != 0 ||
	    !json_is_string(json_object_get(claims, "client_id")) || jti == NULL ||
	    jti[0] == '\0' || strlen(jti) > 64 || !json_is_integer(exp) || !json_is_integer(iat)) {
		*why_r = "not an access token";
		goto out;
	}
	if (json_integer_value(exp) <= now || json_integer_value(iat) > now + AT_JWT_CLOCK_SKEW) {
		*why_r = "expired";
		goto out;
	}
	*claims_r = claims;
	claims = NULL;
	*why_r = NULL;
	ret = 0;
out:
	json_decref(claims);
	json_decref(hdr);
	return ret;
}

int
oidc_at_seal(const struct secret_keys *keys, const char *issuer, const struct store_client *c,
             const char *scope, const char *jkt, int64_t now, int ttl, char **token_r)
{
	const char *aud = client_audience(c);
	char id[SECRET_TOKEN_ID_LEN + 1];
	char *text = NULL, *box = NULL, *ad = NULL;
	json_t *claims;
	int ret = ISSO_ERR_NOMEM;

	*token_r = NULL;
	/* iss and jti are not carried: the issuer is in the box's associated
	 * data, the jti is its nonce. */
	claims = json_pack("{s:s, s:I, s:I}", "client_id", c->client_id, "iat", (json_int_t)now,
	                   "exp", (json_int_t)(now + ttl));
	if (claims == NULL)
		return ISSO_ERR_NOMEM;
	if (scope != NULL && scope[0] != '\0')
		json_object_set_new(claims, "scope", json_string(scope));
	if (aud != NULL)
		json_object_set_new(claims, "aud", json_string(aud));
	if (jkt != NULL && jkt[0] != '\0')
		json_object_set_new(claims, "cnf", json_pack("{s:s}", "jkt", jkt));
	text = json_dumps(claims, JSON_COMPACT);
	if (text == NULL)
		goto out;
	ad = sealed_ad(issuer);
	ret = secret_token_seal(keys, ad, text, strlen(text), &box, id);
	if (ret < 0)
		goto out;
	*token_r = xasprintf("%s%s", AT_SEALED_PREFIX, box);
out:
	free(ad);
	free(box);
	free(text);
	json_decref(claims);
	return ret;
}

int
oidc_at_open(const struct secret_keys *keys, const char *issuer, const char *value, int64_t now,
             json_t **claims_r, const char **why_r)
{
	char id[SECRET_TOKEN_ID_LEN + 1];
	json_t *claims = NULL, *exp, *iat, *cnf;
	const char *client_id;
	char *text = NULL, *ad = NULL;
	int ret = ISSO_ERR_INVALID;

	*claims_r = NULL;
	*why_r = "not an access token";
	if (oidc_at_form(value) != OIDC_AT_SEALED)
		goto out;
	ad = sealed_ad(issuer);
	if (secret_token_open(keys, ad, value + strlen(AT_SEALED_PREFIX), &text, id) < 0)
		goto out;
	/* Sealed by this provider: the checks below catch our own mistakes. */
	claims = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	exp = json_object_get(claims, "exp");
	iat = json_object_get(claims, "iat");
	cnf = json_object_get(claims, "cnf");
	client_id = json_string_value(json_object_get(claims, "client_id"));
	if (!json_is_object(claims) || client_id == NULL || client_id[0] == '\0' ||
	    !json_is_integer(exp) || !json_is_integer(iat) ||
	    (json_object_get(claims, "scope") != NULL &&
	     !json_is_string(json_object_get(claims, "scope"))) ||
	    (json_object_get(claims, "aud") != NULL &&
	     !json_is_string(json_object_get(claims, "aud"))) ||
	    (cnf != NULL && !json_is_string(json_object_get(cnf, "jkt"))))
		goto out;
	if (json_integer_value(exp) <= now || json_integer_value(iat) > now + AT_JWT_CLOCK_SKEW) {
		*why_r = "expired";
		goto out;
	}
	/* Introspection answers what a stored token's did, and its jti. */
	json_object_set_new(claims, "iss", json_string(issuer));
	json_object_set_new(claims, "jti", json_string(id));
	*claims_r = claims;
	claims = NULL;
	*why_r = NULL;
	ret = 0;
out:
	json_decref(claims);
	free(text);
	free(ad);
	return ret;
}

int
oidc_at_issue(struct isso_app *app, const struct store_client *c, const char *scope,
              const char *jkt, int ttl, char **token_r)
{
	char jti[44];

	if (oidc_client_jwt_access_tokens(c))
		return oidc_at_jwt_sign(app->keys, app->issuer, c, scope, jkt, app_now(), ttl,
		                        token_r, jti);
	return oidc_at_seal(&app->secrets, app->issuer, c, scope, jkt, app_now(), ttl, token_r);
}

int
oidc_at_verify(struct isso_app *app, const char *value, int64_t now, json_t **claims_r,
               const char **why_r)
{
	if (oidc_at_form(value) == OIDC_AT_JWT)
		return oidc_at_jwt_verify(app->keys, app->issuer, value, now, claims_r, why_r);
	return oidc_at_open(&app->secrets, app->issuer, value, now, claims_r, why_r);
}

int
oidc_at_active(struct isso_app *app, const char *value, json_t **claims_r)
{
	json_t *claims = NULL;
	const char *why;
	int64_t now = app_now();
	int counter = 0, ret;

	*claims_r = NULL;
	if (oidc_at_verify(app, value, now, &claims, &why) < 0)
		return 0;
	ret = store_eph_get(app->store, AT_REVOKED_KIND,
	                    json_string_value(json_object_get(claims, "jti")), now, NULL, &counter);
	if (ret < 0) {
		json_decref(claims);
		return ret;
	}
	if (counter > 0) {
		json_decref(claims);
		return 0;
	}
	*claims_r = claims;
	return 0;
}

int
oidc_at_revoke(struct isso_app *app, json_t *claims)
{
	int counter = 0;

	/* Counted, not put: revoking twice, or on two nodes at once, is one
	 * marker. It outlives the token by the clock skew we tolerate, so a
	 * node whose clock lags the one that purges it still finds it. */
	return store_eph_incr(app->store, AT_REVOKED_KIND,
	                      json_string_value(json_object_get(claims, "jti")), app_now(),
	                      (int64_t)json_integer_value(json_object_get(claims, "exp")) +
	                          AT_JWT_CLOCK_SKEW,
	                      &counter);
}
