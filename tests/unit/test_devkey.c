/* Device keys of the TaipeiPass app: what an enrolment accepts as a
 * public key, and which signed answers verify. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "auth/devkey.h"
#include "jose/jose.h"
#include "lib/isso.h"

/* A fresh key pair: *priv_r the private JWK text, *pub_r the public JWK
 * object (without "d" and the generator's extras). */
static void
keypair(const char *alg, char **priv_r, json_t **pub_r)
{
	char *kid = NULL;
	json_t *j;

	assert_int_equal(jose_key_generate(alg, priv_r, &kid), 0);
	free(kid);
	j = json_loads(*priv_r, 0, NULL);
	assert_non_null(j);
	json_object_del(j, "d");
	json_object_del(j, "kid");
	json_object_del(j, "use");
	json_object_del(j, "alg");
	*pub_r = j;
}

static char *
sign(const char *priv, const char *alg, json_t *claims)
{
	struct jose_keyset *ks = jose_keyset_new();
	const char *error = NULL;
	char *jws = NULL;

	assert_int_equal(jose_keyset_add(ks, priv, true, &error), 0);
	assert_int_equal(jose_sign(ks, alg, NULL, claims, &jws), 0);
	jose_keyset_free(ks);
	return jws;
}

static void
test_jwk_check(void **state)
{
	const char *error = NULL;
	char *priv = NULL, *out = NULL, y[44];
	json_t *pub = NULL, *bad, *parsed;

	(void)state;
	keypair("ES256", &priv, &pub);
	json_object_set_new(pub, "extra", json_string("dropped"));
	assert_int_equal(devkey_jwk_check(pub, &out, &error), 0);
	parsed = json_loads(out, 0, NULL);
	assert_int_equal(json_object_size(parsed), 4);
	assert_string_equal(json_string_value(json_object_get(parsed, "crv")), "P-256");
	assert_null(json_object_get(parsed, "extra"));
	json_decref(parsed);
	free(out);
	out = NULL;

	/* The private part is refused. */
	bad = json_loads(priv, 0, NULL);
	assert_int_equal(devkey_jwk_check(bad, &out, &error), ISSO_ERR_INVALID);
	assert_null(out);
	json_decref(bad);

	/* Another curve, another type, a missing or short coordinate. */
	bad = json_deep_copy(pub);
	json_object_set_new(bad, "crv", json_string("P-384"));
	assert_int_equal(devkey_jwk_check(bad, &out, &error), ISSO_ERR_INVALID);
	json_object_set_new(bad, "crv", json_string("P-256"));
	json_object_set_new(bad, "kty", json_string("RSA"));
	assert_int_equal(devkey_jwk_check(bad, &out, &error), ISSO_ERR_INVALID);
	json_object_set_new(bad, "kty", json_string("EC"));
	json_object_set_new(bad, "x", json_string("AAAA"));
	assert_int_equal(devkey_jwk_check(bad, &out, &error), ISSO_ERR_INVALID);
	json_object_del(bad, "x");
	assert_int_equal(devkey_jwk_check(bad, &out, &error), ISSO_ERR_INVALID);
	json_decref(bad);

	/* A point off the curve: y changed by one bit. */
	bad = json_deep_copy(pub);
	snprintf(y, sizeof(y), "%s", json_string_value(json_object_get(pub, "y")));
	y[10] = y[10] == 'A' ? 'B' : 'A';
	json_object_set_new(bad, "y", json_string(y));
	assert_int_equal(devkey_jwk_check(bad, &out, &error), ISSO_ERR_INVALID);
	assert_string_equal(error, "the key is not a point of P-256");
	json_decref(bad);

	bad = json_string("not a key");
	assert_int_equal(devkey_jwk_check(bad, &out, &error), ISSO_ERR_INVALID);
	json_decref(bad);
	assert_null(out);
	json_decref(pub);
	free(priv);
}

static void
test_verify(void **state)
{
	const char *error = NULL;
	char *priv = NULL, *priv2 = NULL, *rpriv = NULL, *jwk = NULL, *jws = NULL;
	json_t *pub = NULL, *pub2 = NULL, *rpub = NULL, *claims, *out = NULL;

	(void)state;
	keypair("ES256", &priv, &pub);
	keypair("ES256", &priv2, &pub2);
	keypair("RS256", &rpriv, &rpub);
	assert_int_equal(devkey_jwk_check(pub, &jwk, &error), 0);
	claims = json_pack("{s:s, s:i}", "challenge", "c", "number", 42);

	/* Signed by the enrolled key (its kid is the key's thumbprint). */
	jws = sign(priv, "ES256", claims);
	assert_int_equal(devkey_verify(jwk, jws, &out, &error), 0);
	assert_int_equal(json_integer_value(json_object_get(out, "number")), 42);
	json_decref(out);
	out = NULL;

	/* A changed payload does not verify. */
	{
		char *dot = strchr(jws, '.');
		dot[1] = dot[1] == 'e' ? 'f' : 'e';
		assert_true(devkey_verify(jwk, jws, &out, &error) < 0);
		assert_null(out);
	}
	free(jws);

	/* Another device's key, another algorithm, nothing at all. */
	jws = sign(priv2, "ES256", claims);
	assert_true(devkey_verify(jwk, jws, &out, &error) < 0);
	free(jws);
	jws = sign(rpriv, "RS256", claims);
	assert_true(devkey_verify(jwk, jws, &out, &error) < 0);
	free(jws);
	assert_true(devkey_verify(jwk, "", &out, &error) < 0);
	assert_true(devkey_verify(jwk, NULL, &out, &error) < 0);
	assert_true(devkey_verify("not json", "a.b.c", &out, &error) < 0);
	assert_null(out);

	json_decref(claims);
	json_decref(pub);
	json_decref(pub2);
	json_decref(rpub);
	free(jwk);
	free(priv);
	free(priv2);
	free(rpriv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jwk_check),
	    cmocka_unit_test(test_verify),
	};

	return cmocka_run_group_tests_name("devkey", tests, NULL, NULL);
}
