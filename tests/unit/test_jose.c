/* Unit tests for src/jose: key generation and RFC 7638 thumbprints, the
 * published JWK set, signing and verification (including vectors made by
 * the node "jose" package), refusal of hostile tokens, at_hash and PKCE. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "jose/jose.h"
#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/xmalloc.h"

/* Made with node jose 6 (tests/node_modules/jose): a JWK set with an EC
 * P-256 key "node-ec" and an RSA 2048 key "node-rsa", tokens signed with
 * them, a 1024-bit RSA key with a token (signed with node:crypto, since
 * jose refuses short keys), and a P-384 private key. */
/* The key set's published JWKs text; valid until the next call (the
 * tests read it at once). */
static const char *
ks_jwks(struct jose_keyset *ks)
{
	static char *last;

	free(last);
	last = jose_keyset_jwks_dup(ks);
	return last;
}

static const char node_jwks[] =
    "{\"keys\":[{\"kty\":\"EC\",\"x\":\"ar9capZ1ZKk5pnboRlJY8fGraTR42YeHQXX5doOBk9o\",\"y\":\"e"
    "vACM_4VgimQJ12wZTsjoslTiG9E3kKB_XbyLYzaUeA\",\"crv\":\"P-256\",\"kid\":\"node-ec\",\"use\""
    ":\"sig\"},{\"kty\":\"RSA\",\"n\":\"pIMODV9n4L_y0gjFlgL0b-l5DGpyWsLDtj9FOTNFK1l2scxLJECRXub"
    "gUALDel-gBIR0IIArVhM9YIBmq8qW5ptc01WzsRl1W2GTMrKk98-XKWlMO5eqRnTp4TgYHgJg-4IIuxfNs3lVMm9Uj"
    "cS-esMcmIt25IKKYLSmGQqT4m5M-u0RC6Jqfl5ovU2aBHTUelXUfw03QdpK4o6kf-9Lhoh2TBcPqgGTGlAN6UHWsuh"
    "aXUn8SCdkpJnq6tksLMfqiEA2NFsUj13VQv4KcAaY6z3GyS5Db3XfJDaycomL3MIP8QVWu21rSaKPHB1UG4n094sOM"
    "KEi7R2ZvvIRptgIjw\",\"e\":\"AQAB\",\"kid\":\"node-rsa\"}]}";

static const char node_es256[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6Im5vZGUtZWMiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2NsaWVudC5"
    "leGFtcGxlIiwic3ViIjoibm9kZS1jbGllbnQiLCJhdWQiOiJodHRwczovL2lzc28uZXhhbXBsZS90b2tlbiIsImlhd"
    "CI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwLCJqdGkiOiJuMSJ9.Tvnm6mgPjOROzHMd6KTDom-u7AJWntgKsy"
    "oFndc6JT6ty9CASww4E44VAxCKK5wN34TCawIJDvaewVXRzYxNWQ";

static const char node_es256_nokid[] =
    "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2NsaWVudC5leGFtcGxlIiwic3ViIjoibm9kZS1jbGllbnQiL"
    "CJhdWQiOiJodHRwczovL2lzc28uZXhhbXBsZS90b2tlbiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODA"
    "wLCJqdGkiOiJuMSJ9.DjaIxTiBJmV-PWsuriQusSYhJd2-muh4_5DaiJEcvnNP35I_anXm23D0ACp-nfpL3IAgEdIO"
    "QxTkOK7ed3-rvA";

static const char node_rs256[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6Im5vZGUtcnNhIn0.eyJpc3MiOiJodHRwczovL2NsaWVudC5leGFtcGxlIiwic3"
    "ViIjoibm9kZS1jbGllbnQiLCJhdWQiOiJodHRwczovL2lzc28uZXhhbXBsZS90b2tlbiIsImlhdCI6MTcwMDAwMDAw"
    "MCwiZXhwIjo0MTAyNDQ0ODAwLCJqdGkiOiJuMSJ9.Iwu6T3CVEsbMN4d5Ess80myZuGAeJaGW4-vMajj9jILEiP2yx"
    "bs9TlJaFCZnUqD9IyudewZCC5-LQs7GvpxhXcuXbK21nFkNFGa9V5IY1l7NVsvmo3nB0kYHEgoNAzgoY84WH3X7XwO"
    "J3JYOQeJl0iOPag0Vb13XyUcZw4EWJIOAKnjh1eykE61Cac-K6o_nmfWfwLAeFfnntVuf3bRULusHuRcxkGgXflVDM"
    "Q6KlrW0OM4uVQFnvGL3XW_StEETmoYRQVpn1dsV_zeZFUURsutF8SQvsYaRPFfL1yC6xMsUYnJYhMofM37GVtsKfnz"
    "IjoyrGMMQ9cZwLyKZ_eIevA";

static const char node_ps256[] =
    "eyJhbGciOiJQUzI1NiIsImtpZCI6Im5vZGUtcnNhIn0.eyJpc3MiOiJodHRwczovL2NsaWVudC5leGFtcGxlIiwic3"
    "ViIjoibm9kZS1jbGllbnQiLCJhdWQiOiJodHRwczovL2lzc28uZXhhbXBsZS90b2tlbiIsImlhdCI6MTcwMDAwMDAw"
    "MCwiZXhwIjo0MTAyNDQ0ODAwLCJqdGkiOiJuMSJ9.RpBLmTuECNIWv_xpM99kp9T23nCGwgC68MH17GxXrLQiMQ12z"
    "I1RdXVDN2cZ95xUBIzWOkj_6cF4EZXSWRE_nft4pv5J3d7p5XWs2jhnREu-NVzNFIRwMzZs8JkQQHMzxvyW5saVXJv"
    "CCqSn3KbjaTaIiOP6C6nwt7Ga_BZtC4yN3_Zel1DtSlnfUVLHqlbDPxB1OnzNU8MvBbbwZDVBTOwPnv4Bby6HyDIn0"
    "LasiY89jWeosIhMLjj7q6fQ44qRgKIZt1_virabrIITBasjnzhywNrWSDrOrcM0Aw7T--Mgwgxw57XeK4LyHOKY1vL"
    "Qxrzl2oqB5P7h_yqhfQZG5w";

static const char node_small_jwks[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"n_ZmDBqZ8XC1cPRYpVwe0XV3S_PPA03IdGG9sOzHNO4mMjorH6iq7o"
    "tKlsdK-XCQq3U2HR6FuYVFZCkkVWmNxyvuUBfL_gvTts8V5u27a0IxFGk9LVeHspUHePdtEHkdBtN9d5B41i-Hn6al"
    "TInanL4Op7HYS9FJf0BNFmW1jhs\",\"e\":\"AQAB\",\"kid\":\"small\"}]}";

static const char node_rs256_small[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InNtYWxsIn0.eyJpc3MiOiJodHRwczovL2NsaWVudC5leGFtcGxlIiwic3ViIj"
    "oibm9kZS1jbGllbnQiLCJhdWQiOiJodHRwczovL2lzc28uZXhhbXBsZS90b2tlbiIsImlhdCI6MTcwMDAwMDAwMCwi"
    "ZXhwIjo0MTAyNDQ0ODAwLCJqdGkiOiJuMSJ9.BaWPNHqIkNz5ofwyf8IWEuHiO4zMAKd2xf-WYkiLQfhvthBVzSfCD"
    "gYrl7r2Ldv0d1gbm69jF_rUx9EO_CaJkZ5G3cyD1Q9ekBBAO_fxWq-PWuOL0S-v0hYWbCYDAtxhlVkF25yqIe5okZ8"
    "OKleb-O8tuJ-WO7D-lNLIoD3eklI";

static const char node_small_priv[] =
    "{\"kty\":\"RSA\",\"n\":\"n_ZmDBqZ8XC1cPRYpVwe0XV3S_PPA03IdGG9sOzHNO4mMjorH6iq7otKlsdK-XCQq"
    "3U2HR6FuYVFZCkkVWmNxyvuUBfL_gvTts8V5u27a0IxFGk9LVeHspUHePdtEHkdBtN9d5B41i-Hn6alTInanL4Op7H"
    "YS9FJf0BNFmW1jhs\",\"e\":\"AQAB\",\"d\":\"OInir8yHNOtddjsnSesxiV83d0UJmmVXwKr7XRmTn4W9QmuE"
    "6n-3SvE4v-pY-alruO6I3en34gbU6_4OtZHFZl1OsVkF8yby_peZvPgPHjTHH32dFdF9_S0-6Ez_Fl2ajPR_fbPr5l"
    "tGVlfEVQkaXSCfqhDKT_L1XqT4odQbwQE\",\"p\":\"1CRdwAHsyZTAK-p0rmIRGbYO1mdFLc0yVZntQWGP1uEKOJ"
    "Db0ehssxt8kZ0ZebHgd5vOPeyX14G8avDZgaNJYQ\",\"q\":\"wQhs4vWQkEp7-tPd6il-5RhZjs5xOA22XXF2iYk"
    "k_GfPs6zLRdzR6TT-XhNrRyifVMNGjKwU6BVIFxp4yFYc-w\",\"dp\":\"MAH20U_eNRQblRSeySPaONZRb0W5iw7"
    "nuCV4YpZghcExnfFyPYN6reGnhBBoRnjxkj_JIYxcJGHwsMbGgibgoQ\",\"dq\":\"b40f57TDey8gIJ6pQrYCOAB"
    "vWOCieyMpfSyhtO-FaTvQwuObgN8Qi3Vtfg4406F9Gi3TKl4Tot8RjxBkNlnVWw\",\"qi\":\"veTS0yeBKt2nwYW"
    "k-iy8uTgPiZk5zhvusLvQtg96OCcyiGZCi9lDqnq4U-vgBjz6jBjZJ2fIbzWknoAQDW9RZA\"}";

static const char node_p384_priv[] =
    "{\"kty\":\"EC\",\"x\":\"sWom_fH8DOAAM3IZCqInuAVppC1MdSLofHE0qSGnCxvmcq0-AJ--TyifpUbO2Ig0\""
    ",\"y\":\"UaOUT9ByxgGR-pmhfaTwH5IHZVZeqAM8cULXdtl_j4ZXa3-POKFkwztC3N-cN3bi\",\"crv\":\"P-38"
    "4\",\"d\":\"gDvAtZI9A4zMWZ7RJx8256Sm2Fm8VfS_0er9Q5FzQhEPg4CwiBwpQc_g_KRUXrLl\"}";

/* The claims node signed; verification must return exactly these. */
static const char node_claims[] =
    "{\"iss\":\"https://client.example\",\"sub\":\"node-client\",\"aud\":\"https://"
    "isso.example/token\",\"iat\":1700000000,\"exp\":4102444800,\"jti\":\"n1\"}";

/* RFC 7638 §3.1. */
static const char rfc7638_key[] =
    "{\"kty\":\"RSA\",\"n\":"
    "\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7"
    "aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4"
    "QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNL"
    "yrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDK"
    "gw\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";

static const char *const algs_all[] = {"ES256", "RS256", "PS256", NULL};
static const char *const algs_es[] = {"ES256", NULL};
static const char *const algs_rs[] = {"RS256", NULL};

static char *
b64url_str(const char *s)
{
	char *out = xmalloc(b64url_encoded_len(strlen(s)) + 1);

	return b64url_encode(s, strlen(s), out);
}

/* header.payload.sig from JSON texts and an already encoded signature. */
static char *
mk_token(const char *hdr, const char *claims, const char *sig)
{
	char *h = b64url_str(hdr), *c = b64url_str(claims);
	char *t = xasprintf("%s.%s.%s", h, c, sig);

	free(h);
	free(c);
	return t;
}

/* The n-th (0-based) dot-separated segment of a token, malloc'd. */
static char *
segment(const char *jwt, int n)
{
	const char *p = jwt, *e;

	while (n-- > 0)
		p = strchr(p, '.') + 1;
	e = strchr(p, '.');
	return e != NULL ? xstrndup(p, (size_t)(e - p)) : xstrdup(p);
}

static json_t *
load(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	return j;
}

/* Verifies jwt against the JWK set text; returns the result code and
 * checks that failures leave no claims and give a reason. */
static int
verify_text(const char *jwt, const char *jwks_text, const char *const *algs, json_t **claims_r)
{
	json_t *jwks = load(jwks_text), *claims = NULL;
	const char *error = NULL;
	int ret = jose_verify(jwt, jwks, algs, &claims, &error);

	if (ret < 0) {
		assert_null(claims);
		assert_non_null(error);
	}
	if (claims_r != NULL)
		*claims_r = claims;
	else
		json_decref(claims);
	json_decref(jwks);
	return ret;
}

static struct jose_keyset *
keyset_with(const char *alg, char **kid_r)
{
	struct jose_keyset *ks = jose_keyset_new();
	char *jwk = NULL, *kid = NULL;
	const char *error = NULL;

	assert_int_equal(jose_key_generate(alg, &jwk, &kid), 0);
	assert_int_equal(jose_keyset_add(ks, jwk, true, &error), 0);
	assert_null(error);
	xfree_secret(jwk);
	if (kid_r != NULL)
		*kid_r = kid;
	else
		free(kid);
	return ks;
}

static char *
sign_text(const struct jose_keyset *ks, const char *alg, const char *typ, const char *claims)
{
	json_t *c = load(claims);
	char *jwt = NULL;

	assert_int_equal(jose_sign(ks, alg, typ, c, &jwt), 0);
	assert_non_null(jwt);
	json_decref(c);
	return jwt;
}

static void
test_jwk_has_private(void **state)
{
	static const char *const private_keys[] = {
	    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\",\"d\":\"AA\"}",
	    "{\"kty\":\"RSA\",\"n\":\"AA\",\"e\":\"AQAB\",\"p\":\"AA\"}",
	    "{\"kty\":\"RSA\",\"n\":\"AA\",\"e\":\"AQAB\",\"qi\":\"AA\"}",
	    "{\"kty\":\"oct\",\"k\":\"AAAA\"}",
	    "[]",
	};
	json_t *j = load(rfc7638_key);

	(void)state;
	assert_false(jose_jwk_has_private(j));
	json_decref(j);
	j = load("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}");
	assert_false(jose_jwk_has_private(j));
	json_decref(j);
	for (size_t i = 0; i < sizeof(private_keys) / sizeof(private_keys[0]); i++) {
		j = load(private_keys[i]);
		assert_true(jose_jwk_has_private(j));
		json_decref(j);
	}
	assert_true(jose_jwk_has_private(NULL));
}

static void
test_thumbprint_rfc7638(void **state)
{
	json_t *j = load(rfc7638_key);
	char out[44];

	assert_int_equal(jose_jwk_thumbprint(j, out), 0);
	assert_string_equal(out, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	json_decref(j);

	j = load("{\"kty\":\"RSA\",\"e\":\"AQAB\"}");
	assert_int_equal(jose_jwk_thumbprint(j, out), ISSO_ERR_INVALID);
	json_decref(j);
	j = load("{\"kty\":\"oct\",\"k\":\"AAAA\"}");
	assert_int_equal(jose_jwk_thumbprint(j, out), ISSO_ERR_INVALID);
	json_decref(j);
	/* A value that would need JSON escaping is not base64url. */
	j = load("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"a\\\"b\",\"y\":\"AA\"}");
	assert_int_equal(jose_jwk_thumbprint(j, out), ISSO_ERR_INVALID);
	json_decref(j);
	j = load("[]");
	assert_int_equal(jose_jwk_thumbprint(j, out), ISSO_ERR_INVALID);
	json_decref(j);
}

/* Generate, publish, sign, verify for one algorithm. */
static void
roundtrip(const char *alg, const char *kty)
{
	static const char claims_text[] =
	    "{\"iss\":\"https://"
	    "isso.example\",\"sub\":\"u1\",\"n\":42,\"name\":\"\\u81fa\\u5317\"}";
	struct jose_keyset *ks = jose_keyset_new();
	char *jwk = NULL, *kid = NULL, *jwt = NULL, *sig = NULL, tp[44];
	json_t *j, *hdr = NULL, *claims = NULL, *keys, *want;
	const char *error = NULL;

	assert_int_equal(jose_key_generate(alg, &jwk, &kid), 0);
	j = load(jwk);
	assert_string_equal(json_string_value(json_object_get(j, "kid")), kid);
	assert_string_equal(json_string_value(json_object_get(j, "alg")), alg);
	assert_string_equal(json_string_value(json_object_get(j, "use")), "sig");
	assert_string_equal(json_string_value(json_object_get(j, "kty")), kty);
	assert_true(json_is_string(json_object_get(j, "d")));
	assert_int_equal(jose_jwk_thumbprint(j, tp), 0);
	assert_string_equal(tp, kid);
	json_decref(j);

	assert_false(jose_keyset_has_alg(ks, alg));
	assert_int_equal(jose_keyset_add(ks, jwk, true, &error), 0);
	assert_true(jose_keyset_has_alg(ks, alg));
	xfree_secret(jwk);

	j = load(ks_jwks(ks));
	keys = json_object_get(j, "keys");
	assert_int_equal(json_array_size(keys), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 0), "kid")),
	                    kid);
	assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 0), "alg")),
	                    alg);
	assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 0), "use")),
	                    "sig");
	assert_null(json_object_get(json_array_get(keys, 0), "d"));
	assert_null(json_object_get(json_array_get(keys, 0), "p"));
	json_decref(j);

	jwt = sign_text(ks, alg, NULL, claims_text);
	assert_int_equal(jose_decode_unverified(jwt, &hdr, &claims), 0);
	assert_string_equal(json_string_value(json_object_get(hdr, "alg")), alg);
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")), kid);
	assert_string_equal(json_string_value(json_object_get(hdr, "typ")), "JWT");
	assert_int_equal(json_object_size(hdr), 3);
	json_decref(hdr);
	json_decref(claims);
	sig = segment(jwt, 2);
	/* ES256: raw R||S, 64 bytes (RFC 7518 §3.4); RSA 2048: 256 bytes. */
	assert_int_equal(strlen(sig), strcmp(kty, "EC") == 0 ? 86 : 342);
	free(sig);

	assert_int_equal(verify_text(jwt, ks_jwks(ks), algs_all, &claims), 0);
	want = load(claims_text);
	assert_true(json_equal(claims, want));
	json_decref(want);
	json_decref(claims);
	free(jwt);

	jwt = sign_text(ks, alg, "logout+jwt", "{\"events\":{}}");
	assert_int_equal(jose_decode_unverified(jwt, &hdr, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(hdr, "typ")), "logout+jwt");
	json_decref(hdr);
	assert_int_equal(verify_text(jwt, ks_jwks(ks), algs_all, NULL), 0);
	free(jwt);

	free(kid);
	jose_keyset_free(ks);
}

static void
test_roundtrip_es256(void **state)
{
	roundtrip("ES256", "EC");
}

static void
test_roundtrip_rs256(void **state)
{
	roundtrip("RS256", "RSA");
}

static void
test_generate_bad_alg(void **state)
{
	char *jwk = (char *)"x", *kid = (char *)"x";

	assert_int_equal(jose_key_generate("HS256", &jwk, &kid), ISSO_ERR_INVALID);
	assert_null(jwk);
	assert_null(kid);
	assert_int_equal(jose_key_generate("none", &jwk, &kid), ISSO_ERR_INVALID);
	assert_int_equal(jose_key_generate(NULL, &jwk, &kid), ISSO_ERR_INVALID);
}

/* Every way of altering a good ES256 token must fail. */
static void
test_tampered(void **state)
{
	struct jose_keyset *ks;
	char *kid = NULL, *jwt, *h, *c, *s, *t, *hdr;
	const char *jwks;

	ks = keyset_with("ES256", &kid);
	jwks = ks_jwks(ks);
	jwt = sign_text(ks, "ES256", NULL, "{\"sub\":\"alice\",\"admin\":false}");
	assert_int_equal(verify_text(jwt, jwks, algs_es, NULL), 0);
	h = segment(jwt, 0);
	c = segment(jwt, 1);
	s = segment(jwt, 2);

	/* other claims under the original signature */
	t = b64url_str("{\"sub\":\"alice\",\"admin\":true}");
	free(jwt);
	jwt = xasprintf("%s.%s.%s", h, t, s);
	assert_int_equal(verify_text(jwt, jwks, algs_es, NULL), ISSO_ERR_CRYPTO);
	free(t);
	free(jwt);

	/* one character of the payload changed */
	t = xstrdup(c);
	t[3] = t[3] == 'A' ? 'B' : 'A';
	jwt = xasprintf("%s.%s.%s", h, t, s);
	assert_true(verify_text(jwt, jwks, algs_es, NULL) < 0);
	free(t);
	free(jwt);

	/* one character of the signature changed */
	t = xstrdup(s);
	t[10] = t[10] == 'A' ? 'B' : 'A';
	jwt = xasprintf("%s.%s.%s", h, c, t);
	assert_int_equal(verify_text(jwt, jwks, algs_es, NULL), ISSO_ERR_CRYPTO);
	free(t);
	free(jwt);

	/* signature truncated, extended, or empty */
	t = xstrndup(s, strlen(s) - 4);
	jwt = xasprintf("%s.%s.%s", h, c, t);
	assert_true(verify_text(jwt, jwks, algs_es, NULL) < 0);
	free(t);
	free(jwt);
	jwt = xasprintf("%s.%s.AA%s", h, c, s);
	assert_true(verify_text(jwt, jwks, algs_es, NULL) < 0);
	free(jwt);
	jwt = xasprintf("%s.%s.", h, c);
	assert_true(verify_text(jwt, jwks, algs_es, NULL) < 0);
	free(jwt);

	/* another header under the original signature */
	hdr = xasprintf("{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"JOSE\"}", kid);
	t = b64url_str(hdr);
	jwt = xasprintf("%s.%s.%s", t, c, s);
	assert_int_equal(verify_text(jwt, jwks, algs_es, NULL), ISSO_ERR_CRYPTO);
	free(t);
	free(jwt);
	free(hdr);

	/* crit is refused (RFC 7515 §4.1.11) */
	hdr = xasprintf("{\"alg\":\"ES256\",\"kid\":\"%s\",\"crit\":[\"b64\"],\"b64\":false}", kid);
	t = b64url_str(hdr);
	jwt = xasprintf("%s.%s.%s", t, c, s);
	assert_int_equal(verify_text(jwt, jwks, algs_es, NULL), ISSO_ERR_INVALID);
	free(t);
	free(jwt);
	free(hdr);

	/* a fourth segment */
	jwt = xasprintf("%s.%s.%s.%s", h, c, s, s);
	assert_int_equal(verify_text(jwt, jwks, algs_es, NULL), ISSO_ERR_INVALID);
	free(jwt);

	free(h);
	free(c);
	free(s);
	free(kid);
	jose_keyset_free(ks);
}

static void
test_alg_none(void **state)
{
	static const char *const with_none[] = {"none", "ES256", "RS256", NULL};
	char *jwt;
	const char *error = NULL;
	json_t *jwks = load(node_jwks), *claims = NULL;

	jwt = mk_token("{\"alg\":\"none\"}", node_claims, "");
	assert_int_equal(jose_verify(jwt, jwks, with_none, &claims, &error), ISSO_ERR_INVALID);
	assert_null(claims);
	assert_string_equal(error, "alg none refused");
	free(jwt);
	jwt = mk_token("{\"alg\":\"none\",\"kid\":\"node-ec\"}", node_claims, "c2ln");
	assert_int_equal(jose_verify(jwt, jwks, with_none, &claims, &error), ISSO_ERR_INVALID);
	free(jwt);
	/* case variants are unknown algorithms, also refused */
	jwt = mk_token("{\"alg\":\"None\"}", node_claims, "");
	assert_int_equal(jose_verify(jwt, jwks, with_none, &claims, &error), ISSO_ERR_INVALID);
	free(jwt);
	/* a duplicate alg member must not smuggle anything through */
	jwt = mk_token("{\"alg\":\"ES256\",\"alg\":\"none\"}", node_claims, "");
	assert_int_equal(jose_verify(jwt, jwks, with_none, &claims, &error), ISSO_ERR_INVALID);
	free(jwt);
	json_decref(jwks);
}

static void
test_alg_not_allowed(void **state)
{
	static const char *const with_hs[] = {"HS256", "ES256", "RS256", NULL};
	static const char *const none_allowed[] = {NULL};
	unsigned char mac[32];
	unsigned int maclen = 0;
	char *si, *jwt, sig[64], *h;
	json_t *jwks = load(node_jwks);
	const char *error = NULL;

	assert_int_equal(verify_text(node_es256, node_jwks, algs_rs, NULL), ISSO_ERR_INVALID);
	assert_int_equal(verify_text(node_rs256, node_jwks, algs_es, NULL), ISSO_ERR_INVALID);
	assert_int_equal(verify_text(node_ps256, node_jwks, algs_rs, NULL), ISSO_ERR_INVALID);
	assert_int_equal(verify_text(node_es256, node_jwks, none_allowed, NULL), ISSO_ERR_INVALID);
	{
		json_t *claims = NULL;

		assert_int_equal(jose_verify(node_es256, jwks, NULL, &claims, &error),
		                 ISSO_ERR_INVALID);
		assert_null(claims);
		assert_string_equal(error, "alg not allowed");
	}

	/* Algorithm confusion: HS256 keyed with the public JWK set text. */
	h = b64url_str("{\"alg\":\"HS256\",\"kid\":\"node-rsa\"}");
	si = xasprintf("%s.%s", h, strchr(node_rs256, '.') + 1);
	*strrchr(si, '.') = '\0';
	HMAC(EVP_sha256(), node_jwks, (int)strlen(node_jwks), (const unsigned char *)si, strlen(si),
	     mac, &maclen);
	jwt = xasprintf("%s.%s", si, b64url_encode(mac, maclen, sig));
	assert_int_equal(verify_text(jwt, node_jwks, with_hs, NULL), ISSO_ERR_INVALID);
	free(jwt);
	free(si);
	free(h);

	/* Header alg that does not suit the key with that kid. */
	h = b64url_str("{\"alg\":\"ES256\",\"kid\":\"node-rsa\"}");
	si = xasprintf("%s.%s", h, strchr(node_rs256, '.') + 1);
	assert_int_equal(verify_text(si, node_jwks, algs_all, NULL), ISSO_ERR_INVALID);
	free(si);
	free(h);
	h = b64url_str("{\"alg\":\"RS256\",\"kid\":\"node-ec\"}");
	si = xasprintf("%s.%s", h, strchr(node_es256, '.') + 1);
	assert_int_equal(verify_text(si, node_jwks, algs_all, NULL), ISSO_ERR_INVALID);
	free(si);
	free(h);
	/* Algorithms we do not implement, even when allowed. */
	h = b64url_str("{\"alg\":\"ES384\",\"kid\":\"node-ec\"}");
	si = xasprintf("%s.%s", h, strchr(node_es256, '.') + 1);
	assert_int_equal(verify_text(si, node_jwks, (const char *const[]){"ES384", NULL}, NULL),
	                 ISSO_ERR_INVALID);
	free(si);
	free(h);
	json_decref(jwks);
}

static void
test_wrong_key(void **state)
{
	struct jose_keyset *a, *b;
	char *kid_a = NULL, *jwt, *swapped;
	json_t *jwks_b, *key;

	a = keyset_with("ES256", &kid_a);
	b = keyset_with("ES256", NULL);
	jwt = sign_text(a, "ES256", NULL, "{\"sub\":\"x\"}");
	/* b's set has no key with a's kid */
	assert_int_equal(verify_text(jwt, ks_jwks(b), algs_all, NULL), ISSO_ERR_INVALID);
	/* b's key published under a's kid */
	jwks_b = load(ks_jwks(b));
	key = json_array_get(json_object_get(jwks_b, "keys"), 0);
	json_object_set_new(key, "kid", json_string(kid_a));
	swapped = json_dumps(jwks_b, JSON_COMPACT);
	assert_int_equal(verify_text(jwt, swapped, algs_all, NULL), ISSO_ERR_CRYPTO);
	/* a key restricted to another use or alg is not chosen */
	json_object_set_new(key, "use", json_string("enc"));
	free(swapped);
	swapped = json_dumps(jwks_b, JSON_COMPACT);
	assert_int_equal(verify_text(jwt, swapped, algs_all, NULL), ISSO_ERR_INVALID);
	free(swapped);
	json_decref(jwks_b);
	free(jwt);

	/* the node RSA key does not verify our RS256 token */
	jose_keyset_free(b);
	b = keyset_with("RS256", NULL);
	jwt = sign_text(b, "RS256", NULL, "{\"sub\":\"x\"}");
	assert_int_equal(verify_text(jwt, node_jwks, algs_all, NULL), ISSO_ERR_INVALID);
	free(jwt);

	free(kid_a);
	jose_keyset_free(a);
	jose_keyset_free(b);
}

static void
test_node_vectors(void **state)
{
	json_t *claims = NULL, *want = load(node_claims);

	assert_int_equal(verify_text(node_es256, node_jwks, algs_all, &claims), 0);
	assert_true(json_equal(claims, want));
	json_decref(claims);
	/* no kid: the only EC P-256 key of the set */
	assert_int_equal(verify_text(node_es256_nokid, node_jwks, algs_es, &claims), 0);
	assert_true(json_equal(claims, want));
	json_decref(claims);
	assert_int_equal(verify_text(node_rs256, node_jwks, algs_all, &claims), 0);
	assert_true(json_equal(claims, want));
	json_decref(claims);
	assert_int_equal(
	    verify_text(node_ps256, node_jwks, (const char *const[]){"PS256", NULL}, &claims), 0);
	assert_true(json_equal(claims, want));
	json_decref(claims);

	/* RSA below 2048 bits is refused (for signing: see test_keyset) */
	assert_int_equal(verify_text(node_rs256_small, node_small_jwks, algs_all, NULL),
	                 ISSO_ERR_INVALID);
	json_decref(want);
}

static void
test_jwks_selection(void **state)
{
	json_t *jwks = load(node_jwks), *keys = json_object_get(jwks, "keys"), *ec, *dup;
	char *text;

	/* entries cjose cannot import, or that are not keys, are skipped */
	json_array_insert_new(
	    keys, 0, load("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}"));
	json_array_insert_new(keys, 0, load("{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}"));
	json_array_insert_new(keys, 0, json_string("not a key"));
	json_array_insert_new(keys, 0, json_integer(7));
	json_array_insert_new(keys, 0,
	                      load("{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"node-ec\"}"));
	text = json_dumps(jwks, JSON_COMPACT);
	assert_int_equal(verify_text(node_es256, text, algs_all, NULL), 0);
	assert_int_equal(verify_text(node_es256_nokid, text, algs_all, NULL), 0);
	assert_int_equal(verify_text(node_rs256, text, algs_all, NULL), 0);
	free(text);

	/* without kid, two suitable keys are ambiguous */
	ec = json_array_get(keys, json_array_size(keys) - 2);
	dup = json_deep_copy(ec);
	json_object_set_new(dup, "kid", json_string("other"));
	json_array_append_new(keys, dup);
	text = json_dumps(jwks, JSON_COMPACT);
	assert_int_equal(verify_text(node_es256_nokid, text, algs_all, NULL), ISSO_ERR_INVALID);
	assert_int_equal(verify_text(node_es256, text, algs_all, NULL), 0);
	free(text);
	json_decref(jwks);

	/* malformed sets */
	assert_int_equal(verify_text(node_es256, "{}", algs_all, NULL), ISSO_ERR_INVALID);
	assert_int_equal(verify_text(node_es256, "{\"keys\":{}}", algs_all, NULL),
	                 ISSO_ERR_INVALID);
	assert_int_equal(verify_text(node_es256, "{\"keys\":[]}", algs_all, NULL),
	                 ISSO_ERR_INVALID);
	assert_int_equal(verify_text(node_es256, "[1,2]", algs_all, NULL), ISSO_ERR_INVALID);
}

static void
test_garbage(void **state)
{
	static const char *const inputs[] = {
	    "",
	    ".",
	    "..",
	    "...",
	    "a",
	    "a.b",
	    "a.b.c",
	    "!!!.???.***",
	    "eyJ.eyJ.",
	    "e30.e30.",                          /* {} . {} : no alg */
	    "W10.e30.",                          /* [] header */
	    "e30.W10.",                          /* [] payload */
	    "eyJhbGciOiJFUzI1NiJ9=.e30.",        /* padding */
	    "eyJhbGciOiJFUzI1NiJ9.e30.AAAA=",    /* padding in signature */
	    "eyJhbGciOiJFUzI1NiJ9.e30.A",        /* impossible length */
	    "eyJhbGciOiJFUzI1NiJ9.e30.AB",       /* non-zero trailing bits */
	    "eyJhbGciOiJFUzI1NiJ9.bnVsbA.",      /* payload null */
	    "eyJhbGciOiJFUzI1NiJ9.aGVsbG8.",     /* payload "hello" */
	    "eyJhbGciOiJFUzI1NiJ9.e30.\xff\xfe", /* bytes outside ASCII */
	    " eyJhbGciOiJFUzI1NiJ9.e30.",
	    "eyJhbGciOiJFUzI1NiJ9.e30.AAAA AAAA",
	    "eyJhbGciOjEyfQ.e30.",                  /* alg is a number */
	    "eyJhbGciOiJFUzI1NiIsImtpZCI6MX0.e30.", /* kid is a number */
	};
	char *huge, *mid;
	json_t *h = NULL, *c = NULL;
	size_t i, len;

	for (i = 0; i < ISSO_N_ELEMENTS(inputs); i++) {
		assert_true(verify_text(inputs[i], node_jwks, algs_all, NULL) < 0);
		/* 9, 21 and 22 are well-formed, only unusable for verification */
		if (i == 9 || i == 21 || i == 22) {
			assert_int_equal(jose_decode_unverified(inputs[i], &h, &c), 0);
			assert_true(json_is_object(h) && json_is_object(c));
			json_decref(h);
			json_decref(c);
			h = c = NULL;
		} else {
			assert_int_equal(jose_decode_unverified(inputs[i], &h, &c),
			                 ISSO_ERR_INVALID);
			assert_null(h);
			assert_null(c);
		}
	}

	/* over 16 KiB is refused before parsing, even a valid-looking token */
	huge = xmalloc(20001);
	memset(huge, 'A', 20000);
	huge[20000] = '\0';
	mid = xasprintf("%s.%s", node_es256, huge);
	assert_int_equal(verify_text(huge, node_jwks, algs_all, NULL), ISSO_ERR_INVALID);
	assert_int_equal(verify_text(mid, node_jwks, algs_all, NULL), ISSO_ERR_INVALID);
	assert_int_equal(jose_decode_unverified(mid, &h, &c), ISSO_ERR_INVALID);
	free(mid);
	/* exactly 16 KiB goes through to the signature check; one more does
	 * not (the signature segment is padded with 'A') */
	mid = xstrndup(node_es256, (size_t)(strrchr(node_es256, '.') + 1 - node_es256));
	len = strlen(mid);
	memcpy(huge, mid, len);
	huge[16384] = '\0';
	assert_int_equal(verify_text(huge, node_jwks, algs_all, NULL), ISSO_ERR_CRYPTO);
	assert_int_equal(jose_decode_unverified(huge, NULL, NULL), 0);
	huge[16384] = 'A';
	huge[16385] = '\0';
	assert_int_equal(verify_text(huge, node_jwks, algs_all, NULL), ISSO_ERR_INVALID);
	assert_int_equal(jose_decode_unverified(huge, NULL, NULL), ISSO_ERR_INVALID);
	free(mid);
	free(huge);

	assert_true(verify_text(NULL, node_jwks, algs_all, NULL) < 0);
	assert_int_equal(jose_decode_unverified(NULL, &h, &c), ISSO_ERR_INVALID);
}

static void
test_keyset(void **state)
{
	struct jose_keyset *ks = jose_keyset_new();
	char *j1 = NULL, *k1 = NULL, *j2 = NULL, *k2 = NULL, *j3 = NULL, *k3 = NULL, *jr = NULL,
	     *kr = NULL, *jwt, *text, tp[44];
	json_t *h = NULL, *j, *other, *keys;
	const char *error = NULL;

	assert_string_equal(ks_jwks(ks), "{\"keys\":[]}");
	assert_int_equal(jose_key_generate("ES256", &j1, &k1), 0);
	assert_int_equal(jose_key_generate("ES256", &j2, &k2), 0);
	assert_int_equal(jose_key_generate("ES256", &j3, &k3), 0);
	assert_int_equal(jose_key_generate("RS256", &jr, &kr), 0);

	j = load("{}");
	assert_int_equal(jose_sign(ks, "ES256", NULL, j, &jwt), ISSO_ERR_INVALID);
	assert_null(jwt);
	json_decref(j);

	/* active k1, then an inactive k2: k1 signs, both are published */
	assert_int_equal(jose_keyset_add(ks, j1, true, &error), 0);
	assert_int_equal(jose_keyset_add(ks, j2, false, &error), 0);
	jwt = sign_text(ks, "ES256", NULL, "{}");
	assert_int_equal(jose_decode_unverified(jwt, &h, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(h, "kid")), k1);
	json_decref(h);
	/* a newer active k3 takes over; k1's tokens still verify */
	assert_int_equal(jose_keyset_add(ks, j3, true, &error), 0);
	assert_int_equal(verify_text(jwt, ks_jwks(ks), algs_all, NULL), 0);
	free(jwt);
	jwt = sign_text(ks, "ES256", NULL, "{}");
	assert_int_equal(jose_decode_unverified(jwt, &h, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(h, "kid")), k3);
	json_decref(h);
	free(jwt);
	assert_false(jose_keyset_has_alg(ks, "RS256"));
	assert_int_equal(jose_keyset_add(ks, jr, true, &error), 0);
	assert_true(jose_keyset_has_alg(ks, "RS256"));
	assert_false(jose_keyset_has_alg(ks, "PS256"));
	j = load(ks_jwks(ks));
	assert_int_equal(json_array_size(json_object_get(j, "keys")), 4);
	json_decref(j);

	/* claims must be an object */
	j = load("[1]");
	assert_int_equal(jose_sign(ks, "ES256", NULL, j, &jwt), ISSO_ERR_INVALID);
	json_decref(j);
	assert_int_equal(jose_sign(ks, "HS256", NULL, NULL, &jwt), ISSO_ERR_INVALID);

	/* refused keys */
	assert_int_equal(jose_keyset_add(ks, j1, true, &error), ISSO_ERR_INVALID);
	assert_string_equal(error, "duplicate kid");
	assert_int_equal(jose_keyset_add(ks, "{", true, &error), ISSO_ERR_INVALID);
	assert_int_equal(jose_keyset_add(ks, NULL, true, &error), ISSO_ERR_INVALID);
	assert_int_equal(jose_keyset_add(ks, node_small_priv, true, &error), ISSO_ERR_INVALID);
	assert_int_equal(jose_keyset_add(ks, node_p384_priv, true, &error), ISSO_ERR_INVALID);
	j = load(node_jwks); /* public keys only */
	text = json_dumps(json_array_get(json_object_get(j, "keys"), 0), JSON_COMPACT);
	assert_int_equal(jose_keyset_add(ks, text, true, &error), ISSO_ERR_INVALID);
	assert_string_equal(error, "key is not a private key");
	free(text);
	json_decref(j);

	j = load(j2);
	json_object_set_new(j, "kid", json_string("fresh"));
	json_object_set_new(j, "use", json_string("enc"));
	text = json_dumps(j, JSON_COMPACT);
	assert_int_equal(jose_keyset_add(ks, text, true, &error), ISSO_ERR_INVALID);
	xfree_secret(text);
	json_object_set_new(j, "use", json_string("sig"));
	json_object_set_new(j, "alg", json_string("RS256"));
	text = json_dumps(j, JSON_COMPACT);
	assert_int_equal(jose_keyset_add(ks, text, true, &error), ISSO_ERR_INVALID);
	xfree_secret(text);
	json_object_set_new(j, "alg", json_string("ES256"));
	json_object_set_new(j, "kid", json_string("bad kid with spaces"));
	text = json_dumps(j, JSON_COMPACT);
	assert_int_equal(jose_keyset_add(ks, text, true, &error), ISSO_ERR_INVALID);
	xfree_secret(text);
	/* private d of another key: the pair does not match */
	other = load(j1);
	json_object_set(j, "d", json_object_get(other, "d"));
	json_object_set_new(j, "kid", json_string("mismatch"));
	text = json_dumps(j, JSON_COMPACT);
	assert_int_equal(jose_keyset_add(ks, text, true, &error), ISSO_ERR_INVALID);
	assert_non_null(error);
	xfree_secret(text);
	json_decref(other);
	json_decref(j);

	/* RSA private members of another key under this modulus */
	{
		static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi"};
		char *jo = NULL, *ko = NULL;

		assert_int_equal(jose_key_generate("RS256", &jo, &ko), 0);
		j = load(jr);
		other = load(jo);
		for (size_t i = 0; i < ISSO_N_ELEMENTS(priv); i++)
			json_object_set(j, priv[i], json_object_get(other, priv[i]));
		json_object_set_new(j, "kid", json_string("rsa-mismatch"));
		text = json_dumps(j, JSON_COMPACT);
		assert_int_equal(jose_keyset_add(ks, text, true, &error), ISSO_ERR_INVALID);
		xfree_secret(text);
		json_object_del(j, "p");
		json_object_del(j, "q");
		json_object_del(j, "dp");
		json_object_del(j, "dq");
		json_object_del(j, "qi");
		text = json_dumps(j, JSON_COMPACT);
		assert_int_equal(jose_keyset_add(ks, text, true, &error), ISSO_ERR_INVALID);
		assert_string_equal(error, "private and public key do not match");
		xfree_secret(text);
		json_decref(other);
		json_decref(j);
		xfree_secret(jo);
		free(ko);
	}

	/* without kid, the RFC 7638 thumbprint becomes the kid */
	jose_keyset_free(ks);
	ks = jose_keyset_new();
	j = load(j1);
	json_object_del(j, "kid");
	json_object_del(j, "alg");
	json_object_del(j, "use");
	text = json_dumps(j, JSON_COMPACT);
	assert_int_equal(jose_keyset_add(ks, text, true, &error), 0);
	xfree_secret(text);
	assert_int_equal(jose_jwk_thumbprint(j, tp), 0);
	assert_string_equal(tp, k1);
	json_decref(j);
	j = load(ks_jwks(ks));
	keys = json_object_get(j, "keys");
	assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 0), "kid")), k1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 0), "alg")),
	                    "ES256");
	json_decref(j);

	xfree_secret(j1);
	xfree_secret(j2);
	xfree_secret(j3);
	xfree_secret(jr);
	free(k1);
	free(k2);
	free(k3);
	free(kr);
	jose_keyset_free(ks);
}

/* RSA signatures must be exactly the modulus size. */
static void
test_rsa_signature_length(void **state)
{
	char *kid = NULL;
	struct jose_keyset *ks = keyset_with("RS256", &kid);
	char *jwt = sign_text(ks, "RS256", NULL, "{\"a\":1}"), *hc, *sig, *t, *h, *hdr, *text;
	json_t *jwks;
	unsigned char raw[300];
	char enc[420];
	long n;

	sig = segment(jwt, 2);
	hc = xstrndup(jwt, (size_t)(strrchr(jwt, '.') - jwt));
	n = b64url_decode(sig, strlen(sig), raw + 1, sizeof(raw) - 1);
	assert_int_equal(n, 256);
	raw[0] = 0;
	t = xasprintf("%s.%s", hc, b64url_encode(raw, (size_t)n + 1, enc));
	assert_int_equal(verify_text(t, ks_jwks(ks), algs_all, NULL), ISSO_ERR_CRYPTO);
	free(t);
	assert_int_equal(verify_text(jwt, ks_jwks(ks), algs_all, NULL), 0);
	/* the same RS256 signature presented as PS256: the published key is
	 * restricted to RS256, and without that restriction PSS fails */
	hdr = xasprintf("{\"alg\":\"PS256\",\"kid\":\"%s\",\"typ\":\"JWT\"}", kid);
	h = b64url_str(hdr);
	t = xasprintf("%s.%s", h, strchr(jwt, '.') + 1);
	assert_int_equal(verify_text(t, ks_jwks(ks), algs_all, NULL), ISSO_ERR_INVALID);
	jwks = load(ks_jwks(ks));
	json_object_del(json_array_get(json_object_get(jwks, "keys"), 0), "alg");
	text = json_dumps(jwks, JSON_COMPACT);
	assert_int_equal(verify_text(t, text, algs_all, NULL), ISSO_ERR_CRYPTO);
	assert_int_equal(verify_text(jwt, text, algs_all, NULL), 0);
	free(text);
	json_decref(jwks);
	free(t);
	free(h);
	free(hdr);
	free(kid);
	free(sig);
	free(hc);
	free(jwt);
	jose_keyset_free(ks);
}

static void
test_half_hash(void **state)
{
	char out[64];

	/* OIDC Core 1.0 Appendix A.3 / A.4 */
	assert_int_equal(
	    jose_half_hash("RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", out), 0);
	assert_string_equal(out, "77QmUPtjPfzWtF2AnpK9RQ");
	assert_int_equal(
	    jose_half_hash("RS256", "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk",
	                   out),
	    0);
	assert_string_equal(out, "LDktKdoQak3Pk0cnXxCltA");
	/* computed by node:crypto */
	assert_int_equal(jose_half_hash("ES256", "access-token-for-at_hash-test", out), 0);
	assert_string_equal(out, "HuQK6q2-ZO0pQTLK6f5Isw");
	assert_int_equal(jose_half_hash("PS256", "access-token-for-at_hash-test", out), 0);
	assert_string_equal(out, "HuQK6q2-ZO0pQTLK6f5Isw");

	assert_int_equal(jose_half_hash("HS256", "x", out), ISSO_ERR_INVALID);
	assert_string_equal(out, "");
	assert_int_equal(jose_half_hash("none", "x", out), ISSO_ERR_INVALID);
	assert_int_equal(jose_half_hash(NULL, "x", out), ISSO_ERR_INVALID);
	assert_int_equal(jose_half_hash("ES256", NULL, out), ISSO_ERR_INVALID);
}

static void
test_pkce(void **state)
{
	char v[130], ch[44];
	unsigned char md[32];

	/* RFC 7636 Appendix B */
	assert_true(jose_pkce_s256_ok("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
	                              "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
	assert_false(jose_pkce_s256_ok("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
	                               "E9cVqR0oZm1v8Fj0H5P9GkW2GH6rZBgz3r3NRXBBh1Y"));
	assert_false(jose_pkce_s256_ok("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
	                               "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM="));
	assert_false(jose_pkce_s256_ok("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
	                               "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"));
	assert_false(jose_pkce_s256_ok("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
	                               "e9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
	/* the plain method's challenge (= verifier) is not S256 */
	assert_false(jose_pkce_s256_ok("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
	                               "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
	assert_false(jose_pkce_s256_ok(NULL, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
	assert_false(jose_pkce_s256_ok("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", NULL));

	/* verifier syntax: 43..128 of [A-Za-z0-9-._~] */
	memset(v, 'a', sizeof(v));
	for (size_t len = 42; len <= 129; len++) {
		v[len] = '\0';
		v[0] = '~';
		v[1] = '.';
		SHA256((const unsigned char *)v, len, md);
		b64url_encode(md, sizeof(md), ch);
		assert_int_equal(jose_pkce_s256_ok(v, ch), len >= 43 && len <= 128);
		v[len] = 'a';
	}
	memset(v, 'a', 50);
	v[50] = '\0';
	v[20] = '+';
	SHA256((const unsigned char *)v, 50, md);
	b64url_encode(md, sizeof(md), ch);
	assert_false(jose_pkce_s256_ok(v, ch));
	v[20] = '/';
	SHA256((const unsigned char *)v, 50, md);
	b64url_encode(md, sizeof(md), ch);
	assert_false(jose_pkce_s256_ok(v, ch));
}

struct sign_job {
	const struct jose_keyset *ks;
	json_t *jwks;
	const char *alg;
	int failures;
};

static void *
sign_worker(void *arg)
{
	struct sign_job *job = arg;
	json_t *claims, *out;
	const char *error;
	char *jwt;
	int i;

	for (i = 0; i < 25; i++) {
		claims = json_pack("{s:s, s:i}", "sub", "thread", "i", i);
		jwt = NULL;
		out = NULL;
		if (jose_sign(job->ks, job->alg, NULL, claims, &jwt) != 0 ||
		    jose_verify(jwt, job->jwks, algs_all, &out, &error) != 0 ||
		    json_integer_value(json_object_get(out, "i")) != i)
			job->failures++;
		json_decref(out);
		json_decref(claims);
		free(jwt);
	}
	return NULL;
}

/* jose_sign and jose_verify on one loaded key set from several threads. */
static void
test_threads(void **state)
{
	struct jose_keyset *ks = keyset_with("ES256", NULL);
	char *jwk = NULL, *kid = NULL;
	struct sign_job jobs[4];
	pthread_t th[4];
	json_t *jwks;
	size_t i;

	assert_int_equal(jose_key_generate("RS256", &jwk, &kid), 0);
	assert_int_equal(jose_keyset_add(ks, jwk, true, NULL), 0);
	xfree_secret(jwk);
	free(kid);
	jwks = load(ks_jwks(ks));
	for (i = 0; i < 4; i++) {
		jobs[i] =
		    (struct sign_job){.ks = ks, .jwks = jwks, .alg = i % 2 ? "RS256" : "ES256"};
		assert_int_equal(pthread_create(&th[i], NULL, sign_worker, &jobs[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(jobs[i].failures, 0);
	}
	json_decref(jwks);
	jose_keyset_free(ks);
}

struct swap_job {
	struct jose_keyset *ks;
	const char *jwk[2];
	int changed;
};

static void *
swap_worker(void *arg)
{
	struct swap_job *job = arg;

	for (int i = 0; i < 40; i++) {
		struct jose_keyset *fresh = jose_keyset_new();

		/* the same keys, imported anew: the old copies are freed while
		 * signers may be using them unless the swap waits for them */
		if (jose_keyset_add(fresh, job->jwk[0], true, NULL) != 0 ||
		    jose_keyset_add(fresh, job->jwk[1], true, NULL) != 0 ||
		    jose_keyset_swap(job->ks, fresh))
			job->changed++;
		jose_keyset_free(fresh);
	}
	return NULL;
}

/* A running server reloads its keys (jose_keyset_swap) under signers. */
static void
test_swap_under_signers(void **state)
{
	struct jose_keyset *ks = jose_keyset_new(), *other;
	char *jwk[3] = {NULL}, *kid[3] = {NULL}, *text;
	struct sign_job jobs[2];
	struct swap_job swap;
	pthread_t th[3];
	json_t *jwks;
	size_t i;

	(void)state;
	assert_int_equal(jose_key_generate("ES256", &jwk[0], &kid[0]), 0);
	assert_int_equal(jose_key_generate("RS256", &jwk[1], &kid[1]), 0);
	assert_int_equal(jose_key_generate("ES256", &jwk[2], &kid[2]), 0);
	assert_int_equal(jose_keyset_add(ks, jwk[0], true, NULL), 0);
	assert_int_equal(jose_keyset_add(ks, jwk[1], true, NULL), 0);
	jwks = load(ks_jwks(ks));
	swap = (struct swap_job){.ks = ks, .jwk = {jwk[0], jwk[1]}};
	for (i = 0; i < 2; i++) {
		jobs[i] = (struct sign_job){.ks = ks, .jwks = jwks, .alg = i ? "RS256" : "ES256"};
		assert_int_equal(pthread_create(&th[i], NULL, sign_worker, &jobs[i]), 0);
	}
	assert_int_equal(pthread_create(&th[2], NULL, swap_worker, &swap), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(jobs[0].failures, 0);
	assert_int_equal(jobs[1].failures, 0);
	assert_int_equal(swap.changed, 0);
	json_decref(jwks);

	/* a set with another key: the swap says the published set changed,
	 * the new key signs, the caller's set now holds the old keys */
	other = jose_keyset_new();
	assert_int_equal(jose_keyset_add(other, jwk[2], true, NULL), 0);
	assert_true(jose_keyset_swap(ks, other));
	text = sign_text(ks, "ES256", NULL, "{}");
	assert_int_equal(verify_text(text, ks_jwks(ks), algs_all, NULL), 0);
	assert_int_equal(verify_text(text, ks_jwks(other), algs_all, NULL), ISSO_ERR_INVALID);
	free(text);
	assert_false(jose_keyset_has_alg(ks, "RS256"));
	assert_true(jose_keyset_has_alg(other, "RS256"));
	jose_keyset_free(other);
	jose_keyset_free(ks);
	for (i = 0; i < 3; i++) {
		xfree_secret(jwk[i]);
		free(kid[i]);
	}
}

/* A client's registered JWK set: public signing keys we accept only. */
static void
test_jwks_check(void **state)
{
	char *priv_text = NULL, *kid = NULL, *rsa_text = NULL, *rkid = NULL;
	json_t *priv, *pub, *rsa, *set;
	const char *why = NULL;

	assert_int_equal(jose_key_generate("ES256", &priv_text, &kid), 0);
	assert_int_equal(jose_key_generate("RS256", &rsa_text, &rkid), 0);
	priv = json_loads(priv_text, 0, NULL);
	rsa = json_loads(rsa_text, 0, NULL);
	pub = json_deep_copy(priv);
	json_object_del(pub, "d");
	json_object_del(rsa, "d");
	json_object_del(rsa, "p");
	json_object_del(rsa, "q");
	json_object_del(rsa, "dp");
	json_object_del(rsa, "dq");
	json_object_del(rsa, "qi");

	set = json_pack("{s:[O, O]}", "keys", pub, rsa);
	assert_int_equal(jose_jwks_check(set, &why), 0);
	assert_null(why);
	json_decref(set);

	/* private members, a symmetric key, an encryption key, another curve */
	set = json_pack("{s:[O]}", "keys", priv);
	assert_int_equal(jose_jwks_check(set, &why), ISSO_ERR_INVALID);
	assert_non_null(strstr(why, "private"));
	json_decref(set);
	set = json_pack("{s:[{s:s, s:s}]}", "keys", "kty", "oct", "k", "c2VjcmV0");
	assert_int_equal(jose_jwks_check(set, &why), ISSO_ERR_INVALID);
	json_decref(set);
	set = json_pack("{s:[o]}", "keys", json_deep_copy(pub));
	json_object_set_new(json_array_get(json_object_get(set, "keys"), 0), "use",
	                    json_string("enc"));
	assert_int_equal(jose_jwks_check(set, &why), ISSO_ERR_INVALID);
	json_decref(set);
	set = json_pack("{s:[o]}", "keys", json_deep_copy(pub));
	json_object_set_new(json_array_get(json_object_get(set, "keys"), 0), "crv",
	                    json_string("P-384"));
	assert_int_equal(jose_jwks_check(set, &why), ISSO_ERR_INVALID);
	json_decref(set);
	/* a point not on the curve cannot be read */
	set = json_pack("{s:[o]}", "keys", json_deep_copy(pub));
	json_object_set_new(json_array_get(json_object_get(set, "keys"), 0), "x",
	                    json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	assert_int_equal(jose_jwks_check(set, &why), ISSO_ERR_INVALID);
	json_decref(set);
	/* two keys, one kid; eleven keys; no keys; not a set */
	set = json_pack("{s:[O, O]}", "keys", pub, pub);
	assert_int_equal(jose_jwks_check(set, &why), ISSO_ERR_INVALID);
	assert_non_null(strstr(why, "kid"));
	json_decref(set);
	set = json_pack("{s:[]}", "keys");
	for (int i = 0; i < JOSE_MAX_CLIENT_KEYS + 1; i++) {
		json_t *k = json_deep_copy(pub);
		char name[16];

		snprintf(name, sizeof(name), "k%d", i);
		json_object_set_new(k, "kid", json_string(name));
		json_array_append_new(json_object_get(set, "keys"), k);
	}
	assert_int_equal(jose_jwks_check(set, &why), ISSO_ERR_INVALID);
	json_array_remove(json_object_get(set, "keys"), 0);
	assert_int_equal(jose_jwks_check(set, &why), 0);
	json_decref(set);
	set = json_pack("{s:[]}", "keys");
	assert_int_equal(jose_jwks_check(set, &why), ISSO_ERR_INVALID);
	json_decref(set);
	assert_int_equal(jose_jwks_check(NULL, &why), ISSO_ERR_INVALID);
	assert_int_equal(jose_jwks_check(pub, &why), ISSO_ERR_INVALID);

	json_decref(priv);
	json_decref(pub);
	json_decref(rsa);
	free(priv_text);
	free(kid);
	free(rsa_text);
	free(rkid);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_thumbprint_rfc7638),
	    cmocka_unit_test(test_roundtrip_es256),
	    cmocka_unit_test(test_roundtrip_rs256),
	    cmocka_unit_test(test_generate_bad_alg),
	    cmocka_unit_test(test_tampered),
	    cmocka_unit_test(test_alg_none),
	    cmocka_unit_test(test_alg_not_allowed),
	    cmocka_unit_test(test_wrong_key),
	    cmocka_unit_test(test_node_vectors),
	    cmocka_unit_test(test_jwks_selection),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_keyset),
	    cmocka_unit_test(test_rsa_signature_length),
	    cmocka_unit_test(test_half_hash),
	    cmocka_unit_test(test_pkce),
	    cmocka_unit_test(test_jwk_has_private),
	    cmocka_unit_test(test_jwks_check),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_swap_under_signers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
