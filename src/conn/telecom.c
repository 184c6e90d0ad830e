/* Telecom number-verification connector: the exchange (Basic auth, JSON
 * both ways, timeouts, no redirects, replies capped) is conn-http's; here
 * are the checks of what we send and strict readers of our contract's two
 * replies. See docs/connectors/telecom.md. */
#include "conn/telecom.h"

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

#define TEL_REPLY_MAX 8192 /* larger replies are not the gateway's */
#define TEL_LINK_MAX  2048 /* link the phone opens (a QR code holds it) */
#define TEL_VID_MAX   (TELECOM_VERIFICATION_ID_SIZE - 1)

const struct telecom_carrier telecom_carriers[] = {
    {"cht", "中華電信", "Chunghwa Telecom", NULL},
    {"twm", "台灣大哥大", "Taiwan Mobile", "台灣之星"},
    {"fet", "遠傳電信", "Far EasTone", "亞太電信"},
    {NULL, NULL, NULL, NULL},
};

/* Former carriers' ids and the one that took their numbers over (2023). */
static const struct {
	const char *id, *now;
} tel_merged[] = {{"tstar", "twm"}, {"aptg", "fet"}};

static const char *const tel_refusal_names[] = {
    [TELECOM_REFUSAL_NONE] = "none",
    [TELECOM_REFUSAL_MISMATCH] = "mismatch",
    [TELECOM_REFUSAL_PREPAID] = "prepaid",
    [TELECOM_REFUSAL_FOREIGN] = "foreign",
    [TELECOM_REFUSAL_CORPORATE] = "corporate",
    [TELECOM_REFUSAL_RESTRICTED] = "restricted",
    [TELECOM_REFUSAL_WRONG_CARRIER] = "wrong_carrier",
    [TELECOM_REFUSAL_UNKNOWN_NUMBER] = "unknown_number",
    [TELECOM_REFUSAL_OTHER] = "other",
};

static const char *const tel_state_names[] = {
    [TELECOM_STATE_PENDING] = "pending", [TELECOM_STATE_CONFIRMED] = "confirmed",
    [TELECOM_STATE_WIFI] = "wifi",       [TELECOM_STATE_OTHER_NUMBER] = "other_number",
    [TELECOM_STATE_EXPIRED] = "expired", [TELECOM_STATE_ERROR] = "error",
};

struct conn_telecom {
	struct conn_http *http; /* the exchange: Basic auth, JSON, limits */
	bool https;             /* links must then be https too */
};

const struct telecom_carrier *
telecom_carrier_find(const char *id)
{
	if (id == NULL)
		return NULL;
	for (size_t i = 0; i < ISSO_N_ELEMENTS(tel_merged); i++) {
		if (strcmp(id, tel_merged[i].id) == 0)
			id = tel_merged[i].now;
	}
	for (size_t i = 0; telecom_carriers[i].id != NULL; i++) {
		if (strcmp(id, telecom_carriers[i].id) == 0)
			return &telecom_carriers[i];
	}
	return NULL;
}

const char *
telecom_refusal_name(enum telecom_refusal refusal)
{
	if ((size_t)refusal >= ISSO_N_ELEMENTS(tel_refusal_names))
		return "?";
	return tel_refusal_names[refusal];
}

const char *
telecom_state_name(enum telecom_state state)
{
	if ((size_t)state >= ISSO_N_ELEMENTS(tel_state_names))
		return "?";
	return tel_state_names[state];
}

/* Printable ASCII without spaces, quotes or angle brackets (a link). */
static bool
tel_url_chars_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s <= 0x20 || *s >= 0x7f || *s == '"' || *s == '<' || *s == '>' || *s == '\\')
			return false;
	}
	return true;
}

static bool
tel_vid_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	for (n = 0; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= TEL_VID_MAX || !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		                          (c >= 'a' && c <= 'z') || c == '-' || c == '_'))
			return false;
	}
	return n > 0;
}

struct conn_telecom *
conn_telecom_new(const char *base_url, const char *client_id, const char *client_secret,
                 int timeout_ms)
{
	struct conn_http *http;
	struct conn_telecom *tel;

	http = conn_http_new(base_url, client_id, client_secret, timeout_ms, TEL_REPLY_MAX,
	                     "isso-telecom/1");
	if (http == NULL)
		return NULL;
	tel = xcalloc(1, sizeof(*tel));
	tel->http = http;
	tel->https = strncmp(base_url, "https://", 8) == 0;
	return tel;
}

void
conn_telecom_free(struct conn_telecom *tel)
{
	if (tel == NULL)
		return;
	conn_http_free(tel->http);
	free(tel);
}

/* Maps an HTTP status other than 200 to a return value. */
static int
tel_http_error(long status, const char **error_r)
{
	int ret = ISSO_ERR_IO;

	if (status == 401 || status == 403) {
		ret = ISSO_ERR_DENIED;
		*error_r = "carrier gateway refused our credentials";
	} else if (status == 429 || status == 503) {
		ret = ISSO_ERR_LIMIT;
		*error_r = "carrier gateway is busy";
	} else if (status == 400) {
		*error_r = "carrier gateway found the request malformed";
	} else {
		*error_r = "carrier gateway answered with an HTTP error";
	}
	return ret;
}

static enum telecom_refusal
tel_refusal_parse(const char *s)
{
	for (size_t i = TELECOM_REFUSAL_MISMATCH; i < TELECOM_REFUSAL_OTHER; i++) {
		if (strcmp(s, tel_refusal_names[i]) == 0)
			return (enum telecom_refusal)i;
	}
	return TELECOM_REFUSAL_OTHER;
}

/* The link must be a plain http(s) URL, https when the gateway is. */
static bool
tel_link_valid(const struct conn_telecom *tel, const char *link)
{
	size_t len = strlen(link);

	if (len == 0 || len > TEL_LINK_MAX || !tel_url_chars_ok(link))
		return false;
	if (strncmp(link, "https://", 8) == 0)
		return len > 8;
	return !tel->https && strncmp(link, "http://", 7) == 0 && len > 7;
}

/* Reads the start reply (HTTP 200). */
static int
tel_parse_start(const struct conn_telecom *tel, const json_t *reply, char vid_r[], char **link_r,
                int *expires_in_r, enum telecom_refusal *refusal_r, const char **error_r)
{
	const char *result = json_string_value(json_object_get(reply, "result"));
	const char *vid, *link, *reason;
	const json_t *exp;
	int ret = ISSO_ERR_IO;

	if (result == NULL) {
		*error_r = "carrier gateway reply has no result";
		goto out;
	}
	if (strcmp(result, "F") == 0) {
		reason = json_string_value(json_object_get(reply, "reason"));
		if (reason == NULL) {
			*error_r = "carrier gateway refusal has no reason";
			goto out;
		}
		*refusal_r = tel_refusal_parse(reason);
		*error_r = "carrier refused the verification";
		ret = ISSO_ERR_DENIED;
		goto out;
	}
	if (strcmp(result, "S") != 0) {
		*error_r = "carrier gateway reply has an unknown result";
		goto out;
	}
	vid = json_string_value(json_object_get(reply, "verification_id"));
	link = json_string_value(json_object_get(reply, "link"));
	exp = json_object_get(reply, "expires_in");
	if (!tel_vid_valid(vid)) {
		*error_r = "carrier gateway reply has no valid verification_id";
		goto out;
	}
	if (link == NULL || !tel_link_valid(tel, link)) {
		*error_r = "carrier gateway reply has no valid link";
		goto out;
	}
	if (!json_is_integer(exp) || json_integer_value(exp) < 1 ||
	    json_integer_value(exp) > TELECOM_WINDOW_MAX) {
		*error_r = "carrier gateway reply has no valid expires_in";
		goto out;
	}
	snprintf(vid_r, TELECOM_VERIFICATION_ID_SIZE, "%s", vid);
	*link_r = xstrdup(link);
	*expires_in_r = (int)json_integer_value(exp);
	ret = 0;
out:
	return ret;
}

int
conn_telecom_start(struct conn_telecom *tel, const char *id_num, const char *phone,
                   const char *birthdate, const char *carrier, int window_s,
                   char verification_id_r[TELECOM_VERIFICATION_ID_SIZE], char **link_r,
                   int *expires_in_r, enum telecom_refusal *refusal_r, const char **error_r)
{
	const struct telecom_carrier *car = NULL;
	const char *error_dummy;
	char id[11] = "", number[11] = "", masked[32];
	char detail[CONN_HTTP_DETAIL_SIZE] = "", code[16];
	json_t *req = NULL, *reply = NULL;
	long http_status = 0;
	int ret = ISSO_ERR_INVALID;

	if (error_r == NULL)
		error_r = &error_dummy;
	*error_r = NULL;
	if (link_r != NULL)
		*link_r = NULL;
	if (refusal_r != NULL)
		*refusal_r = TELECOM_REFUSAL_NONE;
	if (verification_id_r != NULL)
		verification_id_r[0] = '\0';
	if (expires_in_r != NULL)
		*expires_in_r = 0;
	snprintf(masked, sizeof(masked), "-");

	if (tel == NULL || verification_id_r == NULL || link_r == NULL || expires_in_r == NULL ||
	    refusal_r == NULL) {
		*error_r = "no telecom connector or no place for the result";
		goto out;
	}
	if (id_num == NULL || !idnum_normalize(id_num, id) || !idnum_is_valid(id)) {
		*error_r = "not a national ID or resident certificate number";
		goto out;
	}
	if (phone == NULL || !phone_normalize(phone, number)) {
		*error_r = "phone number is not a Taiwan mobile number";
		goto out;
	}
	log_mask(number, masked);
	if (birthdate == NULL || !date_is_valid(birthdate)) {
		*error_r = "birthdate is not a YYYY-MM-DD date";
		goto out;
	}
	car = telecom_carrier_find(carrier);
	if (car == NULL) {
		*error_r = "carrier is not cht, twm or fet";
		goto out;
	}
	if (window_s == 0)
		window_s = TELECOM_WINDOW_DEFAULT;
	if (window_s < 1 || window_s > TELECOM_WINDOW_MAX) {
		*error_r = "window is not 1 to 300 seconds";
		goto out;
	}

	req = json_pack("{s:s, s:s, s:s, s:s, s:i}", "id_num", id, "phone", number, "birthdate",
	                birthdate, "carrier", car->id, "window", window_s);
	if (req == NULL)
		abort();
	ret = conn_http_post_json(tel->http, "/v1/verifications", req, &http_status, &reply,
	                          error_r, detail);
	if (ret != 0)
		goto out;
	if (http_status != 200) {
		ret = tel_http_error(http_status, error_r);
		goto out;
	}
	if (reply == NULL) {
		ret = ISSO_ERR_IO;
		*error_r = "carrier gateway reply is not a JSON object";
		goto out;
	}
	ret = tel_parse_start(tel, reply, verification_id_r, link_r, expires_in_r, refusal_r,
	                      error_r);
out:
	if (ret == ISSO_ERR_DENIED && *refusal_r != TELECOM_REFUSAL_NONE) {
		log_info("telecom_refused", "phone", masked, "carrier", car->id, "reason",
		         telecom_refusal_name(*refusal_r), NULL);
	} else if (ret != 0 && ret != ISSO_ERR_INVALID) {
		snprintf(code, sizeof(code), "%ld", http_status);
		log_warn("telecom_gateway_error", "call", "start", "phone", masked, "reason",
		         *error_r, "http_status", code, "detail", detail, NULL);
	}
	explicit_bzero(id, sizeof(id));
	json_decref(req);
	json_decref(reply);
	return ret;
}

int
conn_telecom_status(struct conn_telecom *tel, const char *verification_id,
                    enum telecom_state *state_r, const char **error_r)
{
	const char *error_dummy, *state;
	char path[32 + TELECOM_VERIFICATION_ID_SIZE];
	char detail[CONN_HTTP_DETAIL_SIZE] = "", code[16];
	json_t *reply = NULL;
	long http_status = 0;
	size_t i;
	int ret = ISSO_ERR_INVALID;

	if (error_r == NULL)
		error_r = &error_dummy;
	*error_r = NULL;
	if (state_r != NULL)
		*state_r = TELECOM_STATE_ERROR;
	if (tel == NULL || state_r == NULL) {
		*error_r = "no telecom connector or no place for the result";
		goto out;
	}
	if (!tel_vid_valid(verification_id)) {
		*error_r = "malformed verification_id";
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/verifications/%s", verification_id);
	ret = conn_http_get_json(tel->http, path, &http_status, &reply, error_r, detail);
	if (ret != 0)
		goto out;
	if (http_status == 404) {
		*error_r = "verification unknown to the carrier";
		goto out;
	}
	ret = ISSO_ERR_IO;
	if (http_status != 200) {
		ret = tel_http_error(http_status, error_r);
		goto out;
	}
	if (reply == NULL || !json_is_string(json_object_get(reply, "result")) ||
	    strcmp(json_string_value(json_object_get(reply, "result")), "S") != 0) {
		*error_r = "carrier gateway status reply is not a success";
		goto out;
	}
	state = json_string_value(json_object_get(reply, "state"));
	for (i = 0; state != NULL && i < ISSO_N_ELEMENTS(tel_state_names); i++) {
		if (strcmp(state, tel_state_names[i]) == 0)
			break;
	}
	if (state == NULL || i == ISSO_N_ELEMENTS(tel_state_names)) {
		*error_r = "carrier gateway status reply has an unknown state";
		goto out;
	}
	*state_r = (enum telecom_state)i;
	ret = 0;
out:
	if (ret != 0 && ret != ISSO_ERR_INVALID) {
		snprintf(code, sizeof(code), "%ld", http_status);
		log_warn("telecom_gateway_error", "call", "status", "reason", *error_r,
		         "http_status", code, "detail", detail, NULL);
	}
	json_decref(reply);
	return ret;
}
