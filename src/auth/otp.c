/* SMS one-time codes. */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "auth/app.h"
#include "auth/otp.h"
#include "conn/sms.h"
#include "http/i18n.h"
#include "lib/addr.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define SMS_PER_NUMBER_HOUR 10
#define SMS_PER_ADDR_HOUR   30

static void
code_hash(const char *id, const char *code, char out[65])
{
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "%s|%s", id, code);

	secret_sha256_hex(msg, (size_t)n, out);
	sodium_memzero(msg, sizeof(msg));
}

/* The SMS text: the catalogue's template with {code} replaced. */
static char *
sms_text(const char *tmpl, const char *code)
{
	const char *at = strstr(tmpl, "{code}");

	if (at == NULL)
		return xasprintf("%s %s", tmpl, code);
	return xasprintf("%.*s%s%s", (int)(at - tmpl), tmpl, code, at + 6);
}

int
otp_cooldown_left(struct isso_app *app, const char *phone)
{
	char hash[65];
	json_t *cool = NULL;
	int64_t now = app_now(), until;
	int left = 0;

	secret_lookup_hash(&app->secrets, "phone", phone, hash);
	if (store_eph_get(app->store, "otp-cool", hash, now, &cool, NULL) == 0 && cool != NULL) {
		until = json_integer_value(json_object_get(cool, "until"));
		left = until > now ? (int)(until - now) : 0;
	}
	json_decref(cool);
	return left;
}

int
otp_send(struct isso_app *app, struct http_req *req, const char *purpose, const char *phone,
         const char *notice_key, enum otp_delivery delivery, char id_r[44], int *wait_r)
{
	const struct i18n_catalog *zh = i18n_catalog(app->i18n, "zh-TW");
	char hash[65], key[128], code[OTP_DIGITS + 1], chash[65], addr[ADDR_KEY_MAX];
	char *body = NULL, *msgid = NULL;
	const char *error = NULL;
	json_t *o = NULL;
	int64_t now = app_now();
	int count = 0, ret;

	*wait_r = 0;
	id_r[0] = '\0';
	secret_lookup_hash(&app->secrets, "phone", phone, hash);
	if ((*wait_r = otp_cooldown_left(app, phone)) > 0)
		return ISSO_ERR_LIMIT;
	snprintf(key, sizeof(key), "sms-phone:%s", hash);
	ret = store_rate_hit(app->store, key, 3600, now, &count);
	if (ret < 0)
		return ret;
	if (count > SMS_PER_NUMBER_HOUR)
		return ISSO_ERR_LIMIT;
	snprintf(key, sizeof(key), "sms-addr:%s", addr_limit_key(http_remote_addr(req), addr));
	ret = store_rate_hit(app->store, key, 3600, now, &count);
	if (ret < 0)
		return ret;
	if (count > SMS_PER_ADDR_HOUR)
		return ISSO_ERR_LIMIT;

	secret_token(32, id_r);
	secret_digits(OTP_DIGITS, code);
	code_hash(id_r, code, chash);
	o = json_pack("{s:s, s:s, s:s, s:I}", "purpose", purpose, "phone", hash, "code", chash,
	              "sent_at", (json_int_t)now);
	ret = store_eph_put(app->store, "otp", id_r, o, now + app->cfg->security.otp_ttl);
	if (ret < 0)
		goto out;
	if (delivery == OTP_DELIVER_NONE)
		goto cool;
	if (notice_key != NULL)
		body = xasprintf("%s", i18n_get(zh, notice_key));
	else
		body = sms_text(i18n_get(zh, "otp.sms"), code);
	if (delivery == OTP_DELIVER_QUEUED)
		ret = conn_sms_queue(app->sms, phone, body);
	else
		ret = conn_sms_send(app->sms, phone, body, &msgid, &error);
	if (ret < 0) {
		log_warn("sms_failed", "reason", error != NULL ? error : "?", NULL);
		(void)store_eph_delete(app->store, "otp", id_r);
		id_r[0] = '\0';
		goto out;
	}
cool:
	json_decref(o);
	o = json_pack("{s:I}", "until", (json_int_t)(now + OTP_COOLDOWN));
	ret = store_eph_put(app->store, "otp-cool", hash, o, now + OTP_COOLDOWN);
	if (delivery != OTP_DELIVER_NONE)
		log_info("otp_sent", "purpose", purpose, NULL);
out:
	sodium_memzero(code, sizeof(code));
	xfree_secret(body);
	free(msgid);
	json_decref(o);
	return ret;
}

int
otp_check(struct isso_app *app, const char *id, const char *purpose, const char *phone,
          const char *code, enum otp_result *result_r, int *tries_left_r)
{
	char hash[65], chash[65], key[128];
	json_t *o = NULL;
	int64_t now = app_now();
	int tries = 0, attempts = 0, ret;
	bool digits = strlen(code) == OTP_DIGITS, taken = false;

	*result_r = OTP_EXPIRED;
	if (tries_left_r != NULL)
		*tries_left_r = 0;
	if (id == NULL || strlen(id) != 43)
		return 0;
	ret = store_eph_get(app->store, "otp", id, now, &o, NULL);
	if (ret < 0 || o == NULL)
		goto out;
	secret_lookup_hash(&app->secrets, "phone", phone, hash);
	if (!secret_equal(json_string_value(json_object_get(o, "phone")) ?: "", hash) ||
	    strcmp(json_string_value(json_object_get(o, "purpose")) ?: "", purpose) != 0)
		goto out;
	/* Across challenges too: a number gets a bounded number of guesses
	 * an hour, however many codes are asked for. */
	snprintf(key, sizeof(key), "otp-verify:%s", hash);
	ret = store_rate_hit(app->store, key, 3600, now, &attempts);
	if (ret < 0)
		goto out;
	if (attempts > OTP_VERIFY_PER_NUMBER_HOUR) {
		(void)store_eph_delete(app->store, "otp", id);
		*result_r = OTP_EXHAUSTED;
		goto out;
	}
	/* Count the try before comparing: parallel guesses cannot all slip
	 * under the limit. */
	ret = store_eph_bump(app->store, "otp", id, now, &tries);
	if (ret < 0 || tries < 0)
		goto out;
	if (tries > OTP_MAX_TRIES) {
		(void)store_eph_delete(app->store, "otp", id);
		*result_r = OTP_EXHAUSTED;
		goto out;
	}
	for (size_t i = 0; digits && i < OTP_DIGITS; i++)
		digits = code[i] >= '0' && code[i] <= '9';
	code_hash(id, digits ? code : "", chash);
	if (digits && secret_equal(json_string_value(json_object_get(o, "code")) ?: "", chash)) {
		/* Single use: only the caller that removes it wins. */
		ret = store_eph_take(app->store, "otp", id, now, &taken);
		if (ret == 0 && taken)
			*result_r = OTP_OK;
		goto out;
	}
	if (tries >= OTP_MAX_TRIES) {
		(void)store_eph_delete(app->store, "otp", id);
		*result_r = OTP_EXHAUSTED;
	} else {
		*result_r = OTP_WRONG;
		if (tries_left_r != NULL)
			*tries_left_r = OTP_MAX_TRIES - tries;
	}
out:
	json_decref(o);
	return ret;
}
