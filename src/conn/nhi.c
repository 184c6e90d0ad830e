/* NHI card verification connector: checks its arguments, posts them
 * through conn-http and reads the answer strictly. See
 * docs/connectors/nhi.md. */
#include "conn/nhi.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conn/conn-http.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define NHI_REPLY_MAX  4096
#define NHI_RANDOM_MAX 128
#define NHI_B64_MAX    16384 /* signature, blob, certificate */
#define NHI_TRIES      3
#define NHI_RETRY_MAX  86400 /* a longer retry_after is not believed */

struct conn_nhi {
	struct conn_http *http;
};

static const char *const nhi_result_names[] = {
    [NHI_OK] = "ok",
    [NHI_SIGNATURE] = "signature",
    [NHI_MISMATCH] = "mismatch",
    [NHI_PASSWORD] = "password",
    [NHI_SUSPENDED] = "suspended",
    [NHI_ERROR] = "error",
};

const char *
nhi_result_name(enum nhi_result r)
{
	if ((size_t)r >= ISSO_N_ELEMENTS(nhi_result_names))
		return "?";
	return nhi_result_names[r];
}

struct conn_nhi *
conn_nhi_new(const char *base_url, const char *client_id, const char *secret, int timeout_ms)
{
	struct conn_http *http =
	    conn_http_new(base_url, client_id, secret, timeout_ms, NHI_REPLY_MAX, "isso-nhi/1");
	struct conn_nhi *c = NULL;

	if (http != NULL) {
		c = xcalloc(1, sizeof(*c));
		c->http = http;
	}
	return c;
}

void
conn_nhi_free(struct conn_nhi *c)
{
	if (c == NULL)
		return;
	conn_http_free(c->http);
	free(c);
}

/* s is made of 1..max characters of set. */
static bool
nhi_chars(const char *s, size_t max, const char *set)
{
	size_t n = s != NULL ? strspn(s, set) : 0;

	return n > 0 && n <= max && s[n] == '\0';
}

#define NHI_B64_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_"

/* Reads the reply (HTTP 200). Returns the result; the numbers when the
 * reason needs them. */
static enum nhi_result
nhi_parse(const json_t *reply, int *tries_left_r, int *retry_after_r, const char **error_r)
{
	const char *result = json_string_value(json_object_get(reply, "result"));
	const char *reason = json_string_value(json_object_get(reply, "reason"));
	const json_t *n;

	if (result != NULL && strcmp(result, "ok") == 0)
		return NHI_OK;
	if (result == NULL || strcmp(result, "fail") != 0 || reason == NULL) {
		*error_r = "NHI service reply has no valid result";
		return NHI_ERROR;
	}
	if (strcmp(reason, "signature") == 0)
		return NHI_SIGNATURE;
	if (strcmp(reason, "mismatch") == 0)
		return NHI_MISMATCH;
	if (strcmp(reason, "password") == 0) {
		n = json_object_get(reply, "tries_left");
		if (!json_is_integer(n) || json_integer_value(n) < 1 ||
		    json_integer_value(n) >= NHI_TRIES) {
			*error_r = "NHI service reply has no valid tries_left";
			return NHI_ERROR;
		}
		*tries_left_r = (int)json_integer_value(n);
		return NHI_PASSWORD;
	}
	if (strcmp(reason, "suspended") == 0) {
		n = json_object_get(reply, "retry_after");
		if (!json_is_integer(n) || json_integer_value(n) < 1 ||
		    json_integer_value(n) > NHI_RETRY_MAX) {
			*error_r = "NHI service reply has no valid retry_after";
			return NHI_ERROR;
		}
		*retry_after_r = (int)json_integer_value(n);
		return NHI_SUSPENDED;
	}
	*error_r = "NHI service reply has an unknown reason";
	return NHI_ERROR;
}

enum nhi_result
conn_nhi_verify(struct conn_nhi *c, const char *card_no, const char *national_id,
                const char *random, const char *signature_b64, const char *cert_b64,
                const char *blob_b64, int *tries_left_r, int *retry_after_r)
{
	char id[11] = "", detail[CONN_HTTP_DETAIL_SIZE] = "", code[16];
	const char *error = NULL;
	json_t *req = NULL, *reply = NULL;
	long status = 0;
	int tries_left = -1, retry_after = -1;
	enum nhi_result r = NHI_ERROR;

	if (c == NULL) {
		error = "no NHI connector";
		goto out;
	}
	if (!nhi_chars(card_no, 12, "0123456789") || strlen(card_no) != 12) {
		error = "card number is not 12 digits";
		goto out;
	}
	if (national_id == NULL || !idnum_normalize(national_id, id) || !idnum_is_valid(id)) {
		error = "not a national ID or resident certificate number";
		goto out;
	}
	if (!nhi_chars(random, NHI_RANDOM_MAX,
	               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")) {
		error = "malformed random";
		goto out;
	}
	if (!nhi_chars(signature_b64, NHI_B64_MAX, NHI_B64_CHARS) ||
	    !nhi_chars(blob_b64, NHI_B64_MAX, NHI_B64_CHARS) ||
	    (cert_b64 != NULL && !nhi_chars(cert_b64, NHI_B64_MAX, NHI_B64_CHARS))) {
		error = "signature, password blob or certificate is not base64";
		goto out;
	}
	req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "card_no", card_no, "national_id", id,
	                "random", random, "signature", signature_b64, "password_blob", blob_b64);
	if (req == NULL)
		abort();
	if (cert_b64 != NULL)
		json_object_set_new(req, "cert", json_string(cert_b64));
	if (conn_http_post_json(c->http, "/v1/verify", req, &status, &reply, &error, detail) != 0)
		goto out;
	if (status == 401 || status == 403) {
		error = "NHI service refused our credentials";
		goto out;
	}
	if (status != 200) {
		error = status == 400 ? "NHI service found the request malformed"
		                      : "NHI service answered with an HTTP error";
		goto out;
	}
	r = nhi_parse(reply, &tries_left, &retry_after, &error);
out:
	if (r == NHI_ERROR) {
		snprintf(code, sizeof(code), "%ld", status);
		log_warn("nhi_verify_error", "reason", error, "http_status", code, "detail", detail,
		         NULL);
	}
	if (tries_left_r != NULL)
		*tries_left_r = tries_left;
	if (retry_after_r != NULL)
		*retry_after_r = retry_after;
	explicit_bzero(id, sizeof(id));
	json_decref(req);
	json_decref(reply);
	return r;
}
