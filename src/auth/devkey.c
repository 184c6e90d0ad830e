/* TaipeiPass app device keys: checking an enrolled public key and
 * verifying the app's signed answers. */
#include "auth/devkey.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#include "jose/jose.h"
#include "lib/isso.h"

#define DEVKEY_COORD 32 /* bytes of a P-256 coordinate */

/* Decodes a base64url coordinate (no padding) of exactly 32 bytes. */
static bool
devkey_coord(const json_t *v, unsigned char out[DEVKEY_COORD])
{
	const char *s = json_string_value(v);
	size_t len = 0;

	if (s == NULL || strlen(s) != 43)
		return false;
	if (sodium_base642bin(out, DEVKEY_COORD, s, 43, NULL, &len, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return false;
	return len == DEVKEY_COORD;
}

/* Is 04 ‖ x ‖ y a point of P-256 (not infinity)? */
static bool
devkey_on_curve(const unsigned char *x, const unsigned char *y)
{
	unsigned char pub[1 + 2 * DEVKEY_COORD];
	char group[] = "prime256v1";
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL, *check = NULL;
	EVP_PKEY *pkey = NULL;
	bool ok = false;

	pub[0] = 0x04;
	memcpy(pub + 1, x, DEVKEY_COORD);
	memcpy(pub + 1 + DEVKEY_COORD, y, DEVKEY_COORD);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub));
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	ok = check != NULL && EVP_PKEY_public_check(check) == 1;
out:
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return ok;
}

int
devkey_jwk_check(const json_t *jwk, char **jwk_r, const char **error_r)
{
	unsigned char x[DEVKEY_COORD], y[DEVKEY_COORD];
	json_t *out;

	*jwk_r = NULL;
	if (!json_is_object(jwk)) {
		*error_r = "the key is not a JSON object";
		return ISSO_ERR_INVALID;
	}
	if (strcmp(json_string_value(json_object_get(jwk, "kty")) ?: "", "EC") != 0 ||
	    strcmp(json_string_value(json_object_get(jwk, "crv")) ?: "", "P-256") != 0) {
		*error_r = "the key is not an EC P-256 key";
		return ISSO_ERR_INVALID;
	}
	if (json_object_get(jwk, "d") != NULL) {
		*error_r = "the key carries its private part";
		return ISSO_ERR_INVALID;
	}
	if (!devkey_coord(json_object_get(jwk, "x"), x) ||
	    !devkey_coord(json_object_get(jwk, "y"), y)) {
		*error_r = "the key's coordinates are malformed";
		return ISSO_ERR_INVALID;
	}
	if (!devkey_on_curve(x, y)) {
		*error_r = "the key is not a point of P-256";
		return ISSO_ERR_INVALID;
	}
	out = json_pack("{s:s, s:s, s:O, s:O}", "crv", "P-256", "kty", "EC", "x",
	                json_object_get(jwk, "x"), "y", json_object_get(jwk, "y"));
	*jwk_r = out != NULL ? json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(out);
	if (*jwk_r == NULL) {
		*error_r = "the key cannot be serialised";
		return ISSO_ERR_INVALID;
	}
	return 0;
}

int
devkey_verify(const char *jwk, const char *jws, json_t **claims_r, const char **error_r)
{
	static const char *const algs[] = {"ES256", NULL};
	json_t *key = NULL, *jwks = NULL;
	char kid[44];
	int ret = ISSO_ERR_INVALID;

	*claims_r = NULL;
	key = jwk != NULL ? json_loads(jwk, 0, NULL) : NULL;
	if (!json_is_object(key) || jose_jwk_thumbprint(key, kid) < 0) {
		*error_r = "the enrolled key is unusable";
		goto out;
	}
	if (jws == NULL || jws[0] == '\0') {
		*error_r = "no signature";
		goto out;
	}
	json_object_set_new(key, "kid", json_string(kid));
	json_object_set_new(key, "alg", json_string("ES256"));
	jwks = json_pack("{s:[O]}", "keys", key);
	ret = jose_verify(jws, jwks, algs, claims_r, error_r);
out:
	json_decref(key);
	json_decref(jwks);
	return ret;
}
