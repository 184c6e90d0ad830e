/* Unit tests for self-contained access tokens (src/oidc/access-token.c):
 * the client settings that choose their form; JWTs (RFC 9068): their
 * claims and header, and the refusal of anything else signed with the same
 * keys (ID tokens), of other issuers, foreign keys, expired and tampered
 * tokens; sealed ones: the same claims, and the refusal of other issuers,
 * other master keys, expired, tampered and truncated ones. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "jose/jose.h"
#include "lib/isso.h"
#include "lib/secret.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define ISS "https://isso.example"
#define NOW 1800000000

static struct jose_keyset *
keyset_with(const char *const *algs)
{
	struct jose_keyset *ks = jose_keyset_new();
	const char *error = NULL;

	for (const char *const *a = algs; *a != NULL; a++) {
		char *jwk = NULL, *kid = NULL;
		assert_int_equal(jose_key_generate(*a, &jwk, &kid), 0);
		assert_int_equal(jose_keyset_add(ks, jwk, true, &error), 0);
		free(jwk);
		free(kid);
	}
	return ks;
}

static void
settings_check(void **state)
{
	static const struct {
		const char *json;
		bool ok;
	} cases[] = {
	    {"{}", true},
	    {"{\"access_token_format\":\"jwt\"}", true},
	    {"{\"access_token_format\":\"opaque\"}", true},
	    {"{\"access_token_format\":\"JWT\"}", false},
	    {"{\"access_token_format\":\"\"}", false},
	    {"{\"access_token_format\":1}", false},
	    {"{\"access_token_format\":null}", false},
	    {"{\"access_token_audience\":\"https://api.example/v1\"}", true},
	    {"{\"access_token_audience\":\"urn:example:api\"}", true},
	    {"{\"access_token_audience\":\"\"}", false},
	    {"{\"access_token_audience\":\"two words\"}", false},
	    {"{\"access_token_audience\":\"quo\\\"te\"}", false},
	    {"{\"access_token_audience\":\"line\\nbreak\"}", false},
	    {"{\"access_token_audience\":[\"a\"]}", false},
	    {"{\"some_other_setting\":true}", true},
	    {"{\"backchannel_token_delivery_mode\":\"poll\"}", true},
	    {"{\"backchannel_token_delivery_mode\":\"ping\"}", false},
	    {"{\"backchannel_token_delivery_mode\":\"push\"}", false},
	    {"{\"backchannel_token_delivery_mode\":true}", false},
	    {"{\"events_uri\":\"https://agency.example/events\"}", true},
	    {"{\"events_uri\":\"http://127.0.0.1:8080/events\"}", true},
	    {"{\"events_uri\":\"ftp://agency.example/events\"}", false},
	    {"{\"events_uri\":\"https://agency.example/a b\"}", false},
	    {"{\"events_uri\":\"\"}", false},
	    {"{\"events_uri\":true}", false},
	    {"[]", false},
	};
	const char *why;
	char long_aud[600];
	json_t *s;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
		assert_non_null(s);
		why = NULL;
		if (cases[i].ok) {
			assert_int_equal(oidc_client_settings_check(s, &why), 0);
		} else {
			assert_int_equal(oidc_client_settings_check(s, &why), ISSO_ERR_INVALID);
			assert_non_null(why);
		}
		json_decref(s);
	}
	memset(long_aud, 'a', sizeof(long_aud) - 1);
	long_aud[sizeof(long_aud) - 1] = '\0';
	s = json_pack("{s:s}", "access_token_audience", long_aud);
	assert_int_equal(oidc_client_settings_check(s, &why), ISSO_ERR_INVALID);
	json_decref(s);
	assert_int_equal(oidc_client_settings_check(NULL, &why), ISSO_ERR_INVALID);
}

static void
format_choice(void **state)
{
	struct store_client c;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.client_id = "svc";
	/* Opaque unless "jwt" is registered, and when the stored object is
	 * not one we accept. */
	assert_false(oidc_client_jwt_access_tokens(&c));
	c.settings = json_object();
	assert_false(oidc_client_jwt_access_tokens(&c));
	json_object_set_new(c.settings, "access_token_format", json_string("opaque"));
	assert_false(oidc_client_jwt_access_tokens(&c));
	json_object_set_new(c.settings, "access_token_format", json_string("jwt"));
	assert_true(oidc_client_jwt_access_tokens(&c));
	json_object_set_new(c.settings, "access_token_audience", json_string("bad audience"));
	assert_false(oidc_client_jwt_access_tokens(&c));
	json_decref(c.settings);

	assert_int_equal(oidc_at_form("a.b.c"), OIDC_AT_JWT);
	assert_int_equal(oidc_at_form("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
	                 OIDC_AT_STORED);
	assert_int_equal(oidc_at_form("a.b"), OIDC_AT_STORED);
	assert_int_equal(oidc_at_form(NULL), OIDC_AT_STORED);
	/* A stored token that happens to begin like a sealed one is 43
	 * characters long; a sealed one is always longer. */
	assert_int_equal(oidc_at_form("isso_at1_abcdefghijklmnopqrstuvwxyz01234567"),
	                 OIDC_AT_STORED);
	assert_int_equal(oidc_at_form("isso_at1_abcdefghijklmnopqrstuvwxyz012345678"),
	                 OIDC_AT_SEALED);
}

static void
keys_from(unsigned char fill, struct secret_keys *keys)
{
	unsigned char master[32];

	memset(master, fill, sizeof(master));
	secret_keys_derive(master, keys);
}

static void
seal_and_open(void **state)
{
	struct secret_keys keys, other;
	struct store_client c;
	json_t *got = NULL, *again = NULL;
	const char *why = NULL;
	char *tok = NULL, *tok2 = NULL, *bad;
	size_t n;

	(void)state;
	keys_from(1, &keys);
	keys_from(2, &other);
	memset(&c, 0, sizeof(c));
	c.client_id = "svc-sealed";
	assert_int_equal(oidc_at_seal(&keys, ISS, &c, "api.read api.write", NULL, NOW, 600, &tok),
	                 0);
	assert_int_equal(oidc_at_form(tok), OIDC_AT_SEALED);
	/* Opaque: nothing of the claims readable in the text. */
	assert_null(strstr(tok, "svc"));
	assert_null(strstr(tok, "eyJ"));
	assert_int_equal(oidc_at_open(&keys, ISS, tok, NOW + 1, &got, &why), 0);
	assert_string_equal(json_string_value(json_object_get(got, "iss")), ISS);
	/* Neither sub nor aud unless one was registered: introspection
	 * answers as it did for a stored token. */
	assert_null(json_object_get(got, "aud"));
	assert_null(json_object_get(got, "sub"));
	assert_string_equal(json_string_value(json_object_get(got, "client_id")), "svc-sealed");
	assert_string_equal(json_string_value(json_object_get(got, "scope")), "api.read api.write");
	assert_int_equal(json_integer_value(json_object_get(got, "iat")), NOW);
	assert_int_equal(json_integer_value(json_object_get(got, "exp")), NOW + 600);
	assert_int_equal(strlen(json_string_value(json_object_get(got, "jti"))),
	                 SECRET_TOKEN_ID_LEN);
	assert_null(json_object_get(got, "cnf"));
	/* A second token of the same claims has another jti. */
	assert_int_equal(oidc_at_seal(&keys, ISS, &c, "api.read api.write", NULL, NOW, 600, &tok2),
	                 0);
	assert_int_equal(oidc_at_open(&keys, ISS, tok2, NOW, &again, &why), 0);
	assert_string_not_equal(json_string_value(json_object_get(got, "jti")),
	                        json_string_value(json_object_get(again, "jti")));
	json_decref(again);
	json_decref(got);
	got = NULL;

	/* Expired at exp; another issuer's, another master key's. */
	assert_int_equal(oidc_at_open(&keys, ISS, tok, NOW + 600, &got, &why), ISSO_ERR_INVALID);
	assert_string_equal(why, "expired");
	assert_int_equal(oidc_at_open(&keys, "https://other.example", tok, NOW, &got, &why),
	                 ISSO_ERR_INVALID);
	assert_int_equal(oidc_at_open(&other, ISS, tok, NOW, &got, &why), ISSO_ERR_INVALID);
	assert_null(got);
	/* Each character changed, the box truncated, or nothing after the
	 * prefix: refused. */
	bad = strdup(tok);
	n = strlen(bad);
	for (size_t i = strlen("isso_at1_"); i < n; i++) {
		char was = bad[i];
		bad[i] = was == 'A' ? 'B' : 'A';
		assert_int_equal(oidc_at_open(&keys, ISS, bad, NOW, &got, &why), ISSO_ERR_INVALID);
		bad[i] = was;
	}
	bad[n - 1] = '\0';
	assert_int_equal(oidc_at_open(&keys, ISS, bad, NOW, &got, &why), ISSO_ERR_INVALID);
	bad[60] = '\0';
	assert_int_equal(oidc_at_open(&keys, ISS, bad, NOW, &got, &why), ISSO_ERR_INVALID);
	assert_int_equal(oidc_at_open(&keys, ISS, "isso_at1_", NOW, &got, &why), ISSO_ERR_INVALID);
	assert_int_equal(oidc_at_open(&keys, ISS, "a.b.c", NOW, &got, &why), ISSO_ERR_INVALID);
	assert_null(got);
	free(bad);
	free(tok);
	free(tok2);
}

static void
sealed_audience_and_dpop(void **state)
{
	struct secret_keys keys;
	struct store_client c;
	json_t *got = NULL;
	const char *why = NULL;
	char *tok = NULL;

	(void)state;
	keys_from(3, &keys);
	memset(&c, 0, sizeof(c));
	c.client_id = "svc-aud";
	c.settings = json_pack("{s:s}", "access_token_audience", "https://api.example/v1");
	assert_int_equal(oidc_at_seal(&keys, ISS, &c, "", "thumbprint-of-the-key", NOW, 60, &tok),
	                 0);
	assert_int_equal(oidc_at_open(&keys, ISS, tok, NOW, &got, &why), 0);
	assert_string_equal(json_string_value(json_object_get(got, "aud")),
	                    "https://api.example/v1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(got, "cnf"), "jkt")),
	                    "thumbprint-of-the-key");
	/* No scope asked: none carried. */
	assert_null(json_object_get(got, "scope"));
	json_decref(got);
	json_decref(c.settings);
	free(tok);
}

static void
sign_and_verify(void **state)
{
	static const char *const both[] = {"ES256", "RS256", NULL};
	struct jose_keyset *ks = keyset_with(both);
	struct store_client c;
	json_t *hdr = NULL, *claims = NULL, *got = NULL;
	const char *why = NULL;
	char *jwt = NULL;
	char jti[44];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.client_id = "svc-1";
	c.settings = json_pack("{s:s}", "access_token_format", "jwt");
	assert_int_equal(oidc_at_jwt_sign(ks, ISS, &c, "api.read", NULL, NOW, 600, &jwt, jti), 0);
	assert_int_equal(jose_decode_unverified(jwt, &hdr, &claims), 0);
	assert_string_equal(json_string_value(json_object_get(hdr, "typ")), "at+jwt");
	assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "ES256");
	assert_non_null(json_object_get(hdr, "kid"));
	assert_string_equal(json_string_value(json_object_get(claims, "iss")), ISS);
	assert_string_equal(json_string_value(json_object_get(claims, "aud")), ISS);
	assert_string_equal(json_string_value(json_object_get(claims, "sub")), "svc-1");
	assert_string_equal(json_string_value(json_object_get(claims, "client_id")), "svc-1");
	assert_string_equal(json_string_value(json_object_get(claims, "scope")), "api.read");
	assert_string_equal(json_string_value(json_object_get(claims, "jti")), jti);
	assert_int_equal(json_integer_value(json_object_get(claims, "iat")), NOW);
	assert_int_equal(json_integer_value(json_object_get(claims, "exp")), NOW + 600);
	json_decref(hdr);
	json_decref(claims);

	assert_int_equal(oidc_at_jwt_verify(ks, ISS, jwt, NOW + 1, &got, &why), 0);
	assert_string_equal(json_string_value(json_object_get(got, "jti")), jti);
	json_decref(got);
	/* Expired at exp; another issuer's; a key set without its key. */
	assert_int_equal(oidc_at_jwt_verify(ks, ISS, jwt, NOW + 600, &got, &why), ISSO_ERR_INVALID);
	assert_null(got);
	assert_int_equal(oidc_at_jwt_verify(ks, "https://other.example", jwt, NOW, &got, &why),
	                 ISSO_ERR_INVALID);
	{
		static const char *const es[] = {"ES256", NULL};
		struct jose_keyset *other = keyset_with(es);
		assert_int_equal(oidc_at_jwt_verify(other, ISS, jwt, NOW, &got, &why),
		                 ISSO_ERR_INVALID);
		jose_keyset_free(other);
	}
	/* One changed character of the payload. */
	{
		char *bad = strdup(jwt);
		char *p = strchr(bad, '.') + 5;
		*p = *p == 'A' ? 'B' : 'A';
		assert_int_equal(oidc_at_jwt_verify(ks, ISS, bad, NOW, &got, &why),
		                 ISSO_ERR_INVALID);
		free(bad);
	}
	free(jwt);
	jwt = NULL;

	/* The registered audience; no scope claim for an empty scope. */
	json_object_set_new(c.settings, "access_token_audience", json_string("urn:example:api"));
	assert_int_equal(oidc_at_jwt_sign(ks, ISS, &c, "", NULL, NOW, 60, &jwt, jti), 0);
	assert_int_equal(oidc_at_jwt_verify(ks, ISS, jwt, NOW, &got, &why), 0);
	assert_string_equal(json_string_value(json_object_get(got, "aud")), "urn:example:api");
	assert_null(json_object_get(got, "scope"));
	json_decref(got);
	free(jwt);
	jwt = NULL;

	/* An ID token: same key, same issuer, but not typ at+jwt. */
	claims =
	    json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", ISS, "sub", "x", "client_id",
	              "svc-1", "exp", (json_int_t)NOW + 600, "iat", (json_int_t)NOW, "jti", "j1");
	assert_int_equal(jose_sign(ks, "ES256", NULL, claims, &jwt), 0);
	assert_int_equal(oidc_at_jwt_verify(ks, ISS, jwt, NOW, &got, &why), ISSO_ERR_INVALID);
	free(jwt);
	jwt = NULL;
	/* typ at+jwt but without jti. */
	json_object_del(claims, "jti");
	assert_int_equal(jose_sign(ks, "ES256", "at+jwt", claims, &jwt), 0);
	assert_int_equal(oidc_at_jwt_verify(ks, ISS, jwt, NOW, &got, &why), ISSO_ERR_INVALID);
	free(jwt);
	json_decref(claims);
	json_decref(c.settings);
	jose_keyset_free(ks);
}

static void
rs256_only_issuer(void **state)
{
	static const char *const rs[] = {"RS256", NULL};
	struct jose_keyset *ks = keyset_with(rs);
	struct store_client c;
	json_t *hdr = NULL, *got = NULL;
	const char *why;
	char *jwt = NULL;
	char jti[44];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.client_id = "svc-2";
	assert_int_equal(oidc_at_jwt_sign(ks, ISS, &c, "s", NULL, NOW, 60, &jwt, jti), 0);
	assert_int_equal(jose_decode_unverified(jwt, &hdr, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "RS256");
	assert_int_equal(oidc_at_jwt_verify(ks, ISS, jwt, NOW, &got, &why), 0);
	json_decref(got);
	json_decref(hdr);
	free(jwt);
	jose_keyset_free(ks);
}

/* After a key rotation the old key, no longer active, still verifies the
 * tokens it signed; a kid the set does not hold verifies nothing. */
static void
rotated_key(void **state)
{
	struct jose_keyset *before = jose_keyset_new(), *after = jose_keyset_new();
	struct store_client c;
	char *old_jwk = NULL, *old_kid = NULL, *new_jwk = NULL, *new_kid = NULL, *jwt = NULL;
	const char *error = NULL, *why = NULL;
	json_t *got = NULL, *hdr = NULL;
	char jti[44];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.client_id = "svc-3";
	assert_int_equal(jose_key_generate("ES256", &old_jwk, &old_kid), 0);
	assert_int_equal(jose_key_generate("ES256", &new_jwk, &new_kid), 0);
	assert_int_equal(jose_keyset_add(before, old_jwk, true, &error), 0);
	assert_int_equal(jose_keyset_add(after, old_jwk, false, &error), 0);
	assert_int_equal(jose_keyset_add(after, new_jwk, true, &error), 0);
	assert_int_equal(oidc_at_jwt_sign(before, ISS, &c, "s", NULL, NOW, 60, &jwt, jti), 0);
	assert_int_equal(oidc_at_jwt_verify(after, ISS, jwt, NOW, &got, &why), 0);
	json_decref(got);
	free(jwt);
	jwt = NULL;
	/* Signed by the new key: the set that only has the old one refuses. */
	assert_int_equal(oidc_at_jwt_sign(after, ISS, &c, "s", NULL, NOW, 60, &jwt, jti), 0);
	assert_int_equal(jose_decode_unverified(jwt, &hdr, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")), new_kid);
	assert_int_equal(oidc_at_jwt_verify(before, ISS, jwt, NOW, &got, &why), ISSO_ERR_INVALID);
	assert_null(got);
	json_decref(hdr);
	free(jwt);
	free(old_jwk);
	free(old_kid);
	free(new_jwk);
	free(new_kid);
	jose_keyset_free(before);
	jose_keyset_free(after);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(settings_check),
	    cmocka_unit_test(format_choice),
	    cmocka_unit_test(sign_and_verify),
	    cmocka_unit_test(rs256_only_issuer),
	    cmocka_unit_test(rotated_key),
	    cmocka_unit_test(seal_and_open),
	    cmocka_unit_test(sealed_audience_and_dpop),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
