/* MOICA ID-check connector: checks its arguments, posts them through
 * conn-http and reads the one-word answer strictly. See
 * docs/connectors/moica.md. */
#include "conn/moica.h"

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

#define MOICA_REPLY_MAX      4096
#define MOICA_SERIAL_HEX_MAX 64  /* 32 bytes; RFC 5280 allows 20 */
#define MOICA_KEYID_HEX_MAX  128 /* 64 bytes */

struct conn_moica {
	struct conn_http *http;
};

static const char *const moica_result_names[] = {
    [MOICA_ID_MATCH] = "match",
    [MOICA_ID_MISMATCH] = "mismatch",
    [MOICA_ID_ERROR] = "error",
};

const char *
moica_id_result_name(enum moica_id_result r)
{
	if ((size_t)r >= ISSO_N_ELEMENTS(moica_result_names))
		return "?";
	return moica_result_names[r];
}

struct conn_moica *
conn_moica_new(const char *base_url, const char *client_id, const char *secret, int timeout_ms)
{
	struct conn_http *http =
	    conn_http_new(base_url, client_id, secret, timeout_ms, MOICA_REPLY_MAX, "isso-moica/1");
	struct conn_moica *c = NULL;

	if (http != NULL) {
		c = xcalloc(1, sizeof(*c));
		c->http = http;
	}
	return c;
}

void
conn_moica_free(struct conn_moica *c)
{
	if (c == NULL)
		return;
	conn_http_free(c->http);
	free(c);
}

/* Copies 1..max hex digits lowercased into out (room for max+1); with
 * whole_bytes, an even count. Leading zeros are kept. */
static bool
moica_hex_lower(const char *s, size_t max, bool whole_bytes, char *out)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strspn(s, "0123456789abcdefABCDEF");
	if (n == 0 || n > max || s[n] != '\0' || (whole_bytes && n % 2 != 0))
		return false;
	for (size_t i = 0; i <= n; i++)
		out[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] + ('a' - 'A') : s[i]);
	return true;
}

enum moica_id_result
conn_moica_id_check(struct conn_moica *c, const char *cert_serial_hex,
                    const char *issuer_key_id_hex, const char *national_id)
{
	char serial[MOICA_SERIAL_HEX_MAX + 1], keyid[MOICA_KEYID_HEX_MAX + 1], id[11] = "";
	char detail[CONN_HTTP_DETAIL_SIZE] = "", code[16];
	const char *error = NULL, *result;
	json_t *req = NULL, *reply = NULL;
	long status = 0;
	enum moica_id_result r = MOICA_ID_ERROR;

	if (c == NULL) {
		error = "no MOICA connector";
		goto out;
	}
	if (!moica_hex_lower(cert_serial_hex, MOICA_SERIAL_HEX_MAX, false, serial) ||
	    !moica_hex_lower(issuer_key_id_hex, MOICA_KEYID_HEX_MAX, true, keyid)) {
		error = "malformed certificate serial or issuer key id";
		goto out;
	}
	if (national_id == NULL || !idnum_normalize(national_id, id) || !idnum_is_valid(id)) {
		error = "not a national ID or resident certificate number";
		goto out;
	}
	req = json_pack("{s:s, s:s, s:s}", "cert_serial", serial, "issuer_key_id", keyid,
	                "national_id", id);
	if (req == NULL)
		abort();
	if (conn_http_post_json(c->http, "/v1/id-check", req, &status, &reply, &error, detail) != 0)
		goto out;
	if (status == 401 || status == 403) {
		error = "MOICA service refused our credentials";
		goto out;
	}
	if (status != 200) {
		error = status == 400 ? "MOICA service found the request malformed"
		                      : "MOICA service answered with an HTTP error";
		goto out;
	}
	result = json_string_value(json_object_get(reply, "result"));
	if (result != NULL && strcmp(result, "match") == 0)
		r = MOICA_ID_MATCH;
	else if (result != NULL && strcmp(result, "mismatch") == 0)
		r = MOICA_ID_MISMATCH;
	else
		error = "MOICA service reply has no valid result";
out:
	if (r == MOICA_ID_ERROR) {
		snprintf(code, sizeof(code), "%ld", status);
		log_warn("moica_id_check_error", "reason", error, "http_status", code, "detail",
		         detail, NULL);
	}
	explicit_bzero(id, sizeof(id));
	json_decref(req);
	json_decref(reply);
	return r;
}
