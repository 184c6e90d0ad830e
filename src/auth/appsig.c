/* An answer signed by a TaipeiPass app's enrolled device key. */
#include <string.h>

#include "auth/app.h"
#include "auth/appsig.h"
#include "auth/devkey.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "store/store.h"

bool
appsig_nonce_ok(json_t *claims, const char *nonce)
{
	const char *cn = json_string_value(json_object_get(claims, "nonce"));

	return nonce != NULL && cn != NULL && strlen(cn) == strlen(nonce) &&
	       secret_equal(cn, nonce);
}

bool
appsig_same(json_t *claims, const char *key, const json_t *value)
{
	const json_t *signed_value = json_object_get(claims, key);

	if (signed_value == NULL || value == NULL)
		return signed_value == NULL && value == NULL;
	return json_equal(signed_value, value) != 0;
}

int
appsig_check(struct isso_app *app, const char *device, const char *sig, appsig_match_fn *match,
             void *ctx, char uuid_r[37], json_t **claims_r, const char **error_r)
{
	struct store_device *dev = NULL;
	json_t *claims = NULL, *iat;
	const char *why = NULL;
	int64_t now = app_now();
	bool found = false;
	int ret;

	uuid_r[0] = '\0';
	*error_r = NULL;
	if (claims_r != NULL)
		*claims_r = NULL;
	if (device == NULL || sig == NULL || strlen(sig) > 4096) {
		ret = ISSO_ERR_INVALID;
		*error_r = "malformed";
		goto out;
	}
	ret = store_device_get(app->store, device, &dev);
	if (ret < 0)
		goto out;
	/* Unknown and revoked answer alike: the app enrols again. */
	if (dev == NULL || dev->revoked_at != 0 || strlen(dev->uuid) >= 37) {
		log_info("tpapp_unknown_device", NULL);
		ret = ISSO_ERR_DENIED;
		goto out;
	}
	if (devkey_verify(dev->jwk, sig, &claims, &why) < 0) {
		ret = ISSO_ERR_INVALID;
		goto refused;
	}
	iat = json_object_get(claims, "iat");
	why = "claims";
	if (!json_is_integer(iat) || json_integer_value(iat) < now - APPSIG_SKEW ||
	    json_integer_value(iat) > now + APPSIG_SKEW ||
	    strcmp(json_string_value(json_object_get(claims, "device")) ?: "", device) != 0 ||
	    !match(claims, ctx)) {
		ret = ISSO_ERR_INVALID;
		goto refused;
	}
	ret = store_device_use(app->store, device, now, &found);
	if (ret < 0)
		goto out;
	if (!found) {
		ret = ISSO_ERR_DENIED;
		goto out;
	}
	memcpy(uuid_r, dev->uuid, strlen(dev->uuid) + 1);
	if (claims_r != NULL) {
		*claims_r = claims;
		claims = NULL;
	}
	goto out;
refused:
	log_info("tpapp_bad_signature", "reason", why, NULL);
	*error_r = why;
out:
	store_device_free(dev);
	json_decref(claims);
	return ret;
}
