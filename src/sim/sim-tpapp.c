/* The TaipeiPass app (台北通APP) on the citizen's phone: scans the QR code
 * of issod's TaipeiPass login (`isso-tpapp:<issod>/app/v1/qr/<challenge>`)
 * and answers it at issod's POST /app/v1/qr/approve.
 *
 *   POST /phone/tpapp/approve   JSON {qr, account, password?, issod?, org?}
 *   POST /phone/tpapp/deny      the same
 *
 * answer with issod's HTTP status and JSON reply ({"result":"approved"},
 * {"error":"invalid_credentials"} …), or 502 {"error":"issod_unreachable"}.
 * Without a password the app uses the one the test identities give the
 * account (sim/identities.json: citizens' and organisations' taipeipass).
 * issod defaults to the address in the QR code. org (統一編號) answers an
 * organisation login (組織 / 公司企業) for that organisation.
 *
 * The app's credential is the member's account and password for now; in
 * production the app holds a device key enrolled after a password login.
 *
 *   isso-sim phone tpapp approve|deny QR --account A [--password P]
 *            [--org UBN] [--issod URL] [--identities FILE]
 * does the same from the command line (no running simulator needed).
 * Exit status: 0 issod took the answer, 1 issod refused it, 2 usage or
 * connection error. */
#include "sim/sim.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/isso.h"
#include "lib/xmalloc.h"

#define TPAPP_PREFIX             "isso-tpapp:"
#define TPAPP_QR_PATH            "/app/v1/qr/"
#define TPAPP_DEFAULT_IDENTITIES ISSO_DATADIR "/sim/identities.json"
#define TPAPP_REPLY_MAX          (64 * 1024)

static json_t *tpapp_identities; /* loaded by the service's init */

/* The password the test identities give account (borrowed from ids), or
 * NULL. */
static const char *
tpapp_password_of(const json_t *ids, const char *account)
{
	static const char *const lists[] = {"citizens", "organisations"};

	for (size_t l = 0; l < ISSO_N_ELEMENTS(lists); l++) {
		const json_t *list = json_object_get(ids, lists[l]), *p;
		size_t i;

		json_array_foreach(list, i, p)
		{
			const json_t *tp = json_object_get(p, "taipeipass");
			const char *a = json_string_value(json_object_get(tp, "account"));
			if (a != NULL && strcmp(a, account) == 0)
				return json_string_value(json_object_get(tp, "password"));
		}
	}
	return NULL;
}

struct tpapp_buf {
	char *data;
	size_t len;
};

static size_t
tpapp_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct tpapp_buf *b = userdata;
	size_t n = size * nmemb;

	if (b->len + n > TPAPP_REPLY_MAX)
		return 0;
	b->data = xrealloc(b->data, b->len + n + 1);
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* Sends the app's answer for qr to issod (issod: base URL, or NULL for the
 * one in the QR code; org: the organisation's UBN, or NULL). Returns 0 with *status_r and *reply_r
 * (a new JSON object), or ISSO_ERR_INVALID / ISSO_ERR_IO with *error_r static. */
static int
tpapp_answer(const char *qr, const char *issod, const char *account, const char *password,
             const char *org, const char *decision, int *status_r, json_t **reply_r,
             const char **error_r)
{
	const char *at, *ch;
	char *base = NULL, *url = NULL, *body = NULL;
	struct tpapp_buf reply = {NULL, 0};
	struct curl_slist *headers = NULL;
	CURL *curl = NULL;
	json_t *req = NULL;
	long status = 0;
	int ret = ISSO_ERR_INVALID;

	*reply_r = NULL;
	if (strncmp(qr, TPAPP_PREFIX, strlen(TPAPP_PREFIX)) != 0 ||
	    (at = strstr(qr, TPAPP_QR_PATH)) == NULL) {
		*error_r = "not a TaipeiPass login QR code (isso-tpapp:…/app/v1/qr/…)";
		goto out;
	}
	ch = at + strlen(TPAPP_QR_PATH);
	if (issod == NULL)
		base =
		    xstrndup(qr + strlen(TPAPP_PREFIX), (size_t)(at - qr) - strlen(TPAPP_PREFIX));
	else
		base = xstrdup(issod);
	if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) {
		*error_r = "issod's address is not an http(s) URL";
		goto out;
	}
	url = xasprintf("%s/app/v1/qr/approve", base);
	req = json_pack("{s:s, s:s, s:s, s:s}", "challenge", ch, "account", account, "password",
	                password, "decision", decision);
	if (org != NULL)
		json_object_set_new(req, "organisation", json_string(org));
	body = json_dumps(req, JSON_COMPACT);
	ret = ISSO_ERR_IO;
	curl = curl_easy_init();
	headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (curl == NULL || headers == NULL || body == NULL) {
		*error_r = "cannot build the request";
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "isso-sim-tpapp/1");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, tpapp_write_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
	if (curl_easy_perform(curl) != CURLE_OK) {
		*error_r = "issod unreachable";
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	*reply_r = reply.data != NULL ? json_loadb(reply.data, reply.len, 0, NULL) : NULL;
	if (!json_is_object(*reply_r)) {
		json_decref(*reply_r);
		*reply_r = NULL;
		*error_r = "issod's reply is not a JSON object";
		goto out;
	}
	*status_r = (int)status;
	ret = 0;
out:
	curl_slist_free_all(headers);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	json_decref(req);
	free(body);
	free(reply.data);
	free(url);
	free(base);
	return ret;
}

/* ---- the HTTP API ---- */

static int
tpapp_init(const struct sim_settings *settings, const char **error_r)
{
	json_error_t jerr;

	tpapp_identities = json_load_file(settings->identities_path, 0, &jerr);
	if (tpapp_identities == NULL) {
		*error_r = "tpapp: cannot read the identities file";
		return ISSO_ERR_IO;
	}
	return 0;
}

static void
tpapp_deinit(void)
{
	json_decref(tpapp_identities);
	tpapp_identities = NULL;
}

static void
tpapp_handle(struct http_req *req, const char *decision)
{
	size_t len = 0;
	const char *raw = http_body(req, &len), *qr, *account, *password, *issod, *org;
	const char *error = NULL;
	json_t *in = raw != NULL ? json_loadb(raw, len, 0, NULL) : NULL, *reply = NULL;
	int status = 0;

	qr = json_string_value(json_object_get(in, "qr"));
	account = json_string_value(json_object_get(in, "account"));
	password = json_string_value(json_object_get(in, "password"));
	issod = json_string_value(json_object_get(in, "issod"));
	org = json_string_value(json_object_get(in, "org"));
	if (qr == NULL || account == NULL) {
		sim_send_error(req, 400, "qr_and_account_required");
		goto out;
	}
	if (password == NULL)
		password = tpapp_password_of(tpapp_identities, account);
	if (password == NULL) {
		sim_send_error(req, 404, "unknown_account");
		goto out;
	}
	if (tpapp_answer(qr, issod, account, password, org, decision, &status, &reply, &error) !=
	    0) {
		sim_send_error(req, error != NULL && strstr(error, "QR") != NULL ? 400 : 502,
		               error != NULL && strstr(error, "QR") != NULL ? "not_a_tpapp_qr"
		                                                            : "issod_unreachable");
		goto out;
	}
	http_send_json(req, status, reply);
	reply = NULL;
out:
	json_decref(reply);
	json_decref(in);
}

static void
tpapp_approve_handler(struct http_req *req, void *ctx)
{
	(void)ctx;
	tpapp_handle(req, "approve");
}

static void
tpapp_deny_handler(struct http_req *req, void *ctx)
{
	(void)ctx;
	tpapp_handle(req, "deny");
}

static void
tpapp_routes(struct http_server *srv)
{
	http_route(srv, HTTP_POST, "/phone/tpapp/approve", tpapp_approve_handler, NULL);
	http_route(srv, HTTP_POST, "/phone/tpapp/deny", tpapp_deny_handler, NULL);
}

const struct sim_service sim_service_tpapp = {
    .name = "tpapp",
    .init = tpapp_init,
    .routes = tpapp_routes,
    .deinit = tpapp_deinit,
};

/* ---- isso-sim phone tpapp … ---- */

static int
tpapp_usage(void)
{
	fprintf(stderr, "usage: isso-sim phone tpapp approve|deny QR --account A [--password P]\n"
	                "                [--org UBN] [--issod URL] [--identities FILE]\n"
	                "  --org answers an organisation login for that 統一編號;\n"
	                "  --issod defaults to the address in the QR code; without --password\n"
	                "  the test identities' password for the account is used\n");
	return 2;
}

int
sim_tpapp_phone_cmd(int argc, char **argv)
{
	const char *decision = NULL, *qr = NULL, *account = NULL, *password = NULL;
	const char *issod = NULL, *ids_path = TPAPP_DEFAULT_IDENTITIES, *error = NULL, *org = NULL;
	json_t *ids = NULL, *reply = NULL;
	int status = 0, ret = 2;

	/* argv[0] is "tpapp" */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--account") == 0 && i + 1 < argc)
			account = argv[++i];
		else if (strcmp(argv[i], "--password") == 0 && i + 1 < argc)
			password = argv[++i];
		else if (strcmp(argv[i], "--org") == 0 && i + 1 < argc)
			org = argv[++i];
		else if (strcmp(argv[i], "--issod") == 0 && i + 1 < argc)
			issod = argv[++i];
		else if (strcmp(argv[i], "--identities") == 0 && i + 1 < argc)
			ids_path = argv[++i];
		else if (argv[i][0] == '-')
			return tpapp_usage();
		else if (decision == NULL)
			decision = argv[i];
		else if (qr == NULL)
			qr = argv[i];
		else
			return tpapp_usage();
	}
	if (decision == NULL || qr == NULL || account == NULL ||
	    (strcmp(decision, "approve") != 0 && strcmp(decision, "deny") != 0))
		return tpapp_usage();
	if (password == NULL) {
		ids = json_load_file(ids_path, 0, NULL);
		password = tpapp_password_of(ids, account);
		if (password == NULL) {
			fprintf(stderr, "isso-sim: no password for %s in %s: give --password\n",
			        account, ids_path);
			goto out;
		}
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (tpapp_answer(qr, issod, account, password, org, decision, &status, &reply, &error) !=
	    0) {
		fprintf(stderr, "isso-sim: %s\n", error);
		goto out;
	}
	json_object_set_new(reply, "status", json_integer(status));
	json_dumpf(reply, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	ret = status == 200 ? 0 : 1;
out:
	json_decref(reply);
	json_decref(ids);
	return ret;
}
