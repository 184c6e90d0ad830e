/* Unit tests for JWT access tokens (RFC 9068, src/oidc/access-token.c):
 * the client settings that choose them, their claims and header, and the
 * refusal of anything else signed with the same keys (ID tokens), of
 * other issuers, foreign keys, expired and tampered tokens. */
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

	assert_true(oidc_at_jwt_form("a.b.c"));
	assert_false(oidc_at_jwt_form("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"));
	assert_false(oidc_at_jwt_form("a.b"));
	assert_false(oidc_at_jwt_form(NULL));
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
	    cmocka_unit_test(settings_check),  cmocka_unit_test(format_choice),
	    cmocka_unit_test(sign_and_verify), cmocka_unit_test(rs256_only_issuer),
	    cmocka_unit_test(rotated_key),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
