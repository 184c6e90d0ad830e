/* An answer signed by a TaipeiPass app's enrolled device key: the one
 * check that the QR approvals and the counter (CIBA) approvals share
 * (docs/taipeipass-app.md). */
#ifndef ISSO_AUTH_APPSIG_H
#define ISSO_AUTH_APPSIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct isso_app;

/* Seconds a signed answer's iat may lie from now. */
#define APPSIG_SKEW 300

/* Does the signed payload say what the request says? ctx is the
 * caller's. */
typedef bool appsig_match_fn(json_t *claims, void *ctx);

/* Checks sig (a compact ES256 JWS, at most 4096 bytes) by device (an
 * enrolled device's id): the device exists and is not revoked, the
 * signature verifies with its key, the payload names this device, its
 * iat lies within APPSIG_SKEW of now, and match accepts it; then notes the
 * device's use. Returns 0 with uuid_r the device's member;
 * ISSO_ERR_DENIED (unknown or revoked device), ISSO_ERR_INVALID (not its
 * signature, or a payload that does not match; *error_r a static
 * reason) or ISSO_ERR_STORE. Logs the refusals (never the member). */
int appsig_check(struct isso_app *app, const char *device, const char *sig, appsig_match_fn *match,
                 void *ctx, char uuid_r[37], json_t **claims_r, const char **error_r);

/* Whether the payload's nonce equals nonce (constant time; false when
 * either is missing). */
bool appsig_nonce_ok(json_t *claims, const char *nonce);
/* Whether the payload's member key says exactly what the request body
 * carries (value, NULL when the body has none): both absent, or equal
 * JSON. So a body cannot add, drop or change what the key signed. */
bool appsig_same(json_t *claims, const char *key, const json_t *value);

#endif
