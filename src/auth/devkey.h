/* The TaipeiPass app's device keys: the public key an app enrols (an EC
 * P-256 JWK) and the ES256 signature over each of its QR answers
 * (docs/taipeipass-app.md). Pure: no store, no request. */
#ifndef ISSO_AUTH_DEVKEY_H
#define ISSO_AUTH_DEVKEY_H

#include <jansson.h>

/* Checks a public key the app sends: a JSON object {"kty":"EC",
 * "crv":"P-256", "x", "y"} (x and y 32 bytes each, base64url without
 * padding), no private member "d", the point on the curve. Returns 0 with
 * *jwk_r the key as JSON text holding exactly crv, kty, x, y (malloc'd),
 * or ISSO_ERR_INVALID with *error_r a static reason. */
int devkey_jwk_check(const json_t *jwk, char **jwk_r, const char **error_r);

/* Verifies jws, a compact JWS with alg ES256 (no other), against the
 * public key jwk (text from devkey_jwk_check); the header's kid, when
 * present, must be the key's RFC 7638 thumbprint. Returns 0 with
 * *claims_r (a new reference to the payload, a JSON object), or
 * ISSO_ERR_INVALID / ISSO_ERR_CRYPTO with *error_r a static reason. Checks
 * no claim: the caller does. */
int devkey_verify(const char *jwk, const char *jws, json_t **claims_r, const char **error_r);

#endif
