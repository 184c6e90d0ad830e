/* Tests for the telecom number-verification connector and isso-sim's
 * stand-in: the real simulator runs as a child on a free loopback port
 * with a copy of the test identities that adds a corporate number and a
 * restricted line; hand-made peers (canned replies, a silent socket, a
 * closed port) cover what the simulator never does. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim-child.h"
#include <curl/curl.h>
#include <jansson.h>

#include "conn/telecom.h"
#include "lib/isso.h"
#include "lib/log.h"

#define CLIENT_ID     "isso"
#define CLIENT_SECRET "isso-sim"
#define CORP_PHONE    "0911000099" /* added to organisations[0] for these tests */
#define RESTR_PHONE   "0988000007" /* B120200311, marked restricted for these tests */

static char ident_path[] = "/tmp/isso-test-telecom-XXXXXX";
static char tel_base[96]; /* …/telecom */

/* ---- helpers ---- */

struct collected {
	char *p;
	size_t len;
};

static size_t
collect_cb(char *data, size_t size, size_t n, void *ctx)
{
	struct collected *b = ctx;

	b->p = realloc(b->p, b->len + size * n + 1);
	memcpy(b->p + b->len, data, size * n);
	b->len += size * n;
	b->p[b->len] = '\0';
	return size * n;
}

/* One HTTP exchange; returns the status (0 when none) and the reply as
 * JSON in *json_r (NULL when not JSON). body NULL: no body. */
static long
http_json(const char *method, const char *url, const char *userpwd, const char *body,
          json_t **json_r)
{
	struct collected b = {NULL, 0};
	CURL *curl = curl_easy_init();
	long status = 0;

	assert_non_null(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	if (userpwd != NULL)
		curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd);
	if (body != NULL)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (json_r != NULL)
		*json_r = b.p != NULL ? json_loads(b.p, 0, NULL) : NULL;
	free(b.p);
	return status;
}

/* The phone opens link; network NULL sends no network parameter. Returns
 * the HTTP status; *error_r the reply's error (static copy) or "". */
static long
open_link(const char *link, const char *network, const char *from, char error_r[32])
{
	char url[2300];
	json_t *j = NULL;
	long status;

	snprintf(url, sizeof(url), "%s%s%s%s%s", link, network != NULL ? "?network=" : "",
	         network != NULL ? network : "", from != NULL ? "&from=" : "",
	         from != NULL ? from : "");
	status = http_json("GET", url, NULL, NULL, &j);
	snprintf(error_r, 32, "%s",
	         json_string_value(json_object_get(j, "error")) != NULL
	             ? json_string_value(json_object_get(j, "error"))
	             : "");
	json_decref(j);
	return status;
}

/* ---- simulator lifecycle ---- */

/* The shipped identities plus a corporate number and a restricted line. */
static int
write_identities(void)
{
	json_t *root = json_load_file("sim/identities.json", 0, NULL), *c;
	size_t i;
	int fd, ret = -1;

	if (root == NULL)
		return -1;
	json_object_set_new(json_array_get(json_object_get(root, "organisations"), 0), "phone",
	                    json_string(CORP_PHONE));
	json_object_set_new(json_array_get(json_object_get(root, "organisations"), 0), "carrier",
	                    json_pack("{s:s, s:s}", "id", "cht", "name", "中華電信"));
	json_array_foreach(json_object_get(root, "citizens"), i, c)
	{
		if (strcmp(json_string_value(json_object_get(c, "phone")), RESTR_PHONE) == 0)
			json_object_set_new(c, "restricted", json_true());
	}
	fd = mkstemp(ident_path);
	if (fd >= 0) {
		close(fd);
		ret = json_dump_file(root, ident_path, 0);
	}
	json_decref(root);
	return ret;
}

static int
sim_start(void **state)
{
	static const char *const extra[] = {"--identities", ident_path, NULL};

	log_init(2, LOG_ERROR);
	if (write_identities() != 0) {
		fprintf(stderr, "test_telecom: cannot write the identities copy\n");
		return -1;
	}
	if (sim_child_start("test_telecom", extra) != 0)
		return -1;
	snprintf(tel_base, sizeof(tel_base), "%s/telecom", sim_base);
	return 0;
}

static int
sim_stop(void **state)
{
	sim_child_stop();
	unlink(ident_path);
	return 0;
}

static struct conn_telecom *
sim_connector(const char *secret, int timeout_ms)
{
	struct conn_telecom *tel = conn_telecom_new(tel_base, CLIENT_ID, secret, timeout_ms);

	assert_non_null(tel);
	return tel;
}

/* A start through the simulator. */
struct started {
	int ret;
	char vid[TELECOM_VERIFICATION_ID_SIZE];
	char *link;
	int expires_in;
	enum telecom_refusal refusal;
	const char *error;
};

static struct started
start(struct conn_telecom *tel, const char *id, const char *phone, const char *birth,
      const char *carrier, int window)
{
	struct started s = {0};

	s.ret = conn_telecom_start(tel, id, phone, birth, carrier, window, s.vid, &s.link,
	                           &s.expires_in, &s.refusal, &s.error);
	if (s.ret != 0) {
		assert_null(s.link);
		assert_string_equal(s.vid, "");
		assert_non_null(s.error);
	}
	return s;
}

static enum telecom_state
state_of(struct conn_telecom *tel, const char *vid)
{
	enum telecom_state st = TELECOM_STATE_PENDING;
	const char *error = NULL;

	assert_int_equal(conn_telecom_status(tel, vid, &st, &error), 0);
	return st;
}

/* ---- through the simulator ---- */

static void
test_health_lists_telecom(void **state)
{
	char url[128];
	json_t *j, *s;
	size_t i;
	bool found = false;

	snprintf(url, sizeof(url), "%s/health", sim_base);
	assert_int_equal(http_json("GET", url, NULL, NULL, &j), 200);
	json_array_foreach(json_object_get(j, "services"), i, s)
	{
		found |= strcmp(json_string_value(s), "telecom") == 0;
	}
	assert_true(found);
	json_decref(j);
}

static void
test_confirmed_over_mobile(void **state)
{
	struct conn_telecom *tel = sim_connector(CLIENT_SECRET, 3000);
	struct started s;
	char err[32];

	/* any form phone_normalize() takes, lower-case ID */
	s = start(tel, "a123456789", "0912-345-678", "1985-03-14", "cht", 0);
	assert_int_equal(s.ret, 0);
	assert_int_equal(s.refusal, TELECOM_REFUSAL_NONE);
	assert_null(s.error);
	assert_int_equal(s.expires_in, TELECOM_WINDOW_DEFAULT);
	assert_true(strlen(s.vid) > 10);
	assert_non_null(s.link);
	assert_int_equal(strncmp(s.link, sim_base, strlen(sim_base)), 0);
	/* the link carries neither the ID nor the number */
	assert_null(strstr(s.link, "A123456789"));
	assert_null(strstr(s.link, "0912345678"));
	assert_int_equal(state_of(tel, s.vid), TELECOM_STATE_PENDING);

	assert_int_equal(open_link(s.link, "mobile", NULL, err), 200);
	assert_int_equal(state_of(tel, s.vid), TELECOM_STATE_CONFIRMED);
	/* a link opens once */
	assert_int_equal(open_link(s.link, "mobile", NULL, err), 410);
	assert_string_equal(err, "link_used");
	assert_int_equal(open_link(s.link, "wifi", NULL, err), 410);
	assert_int_equal(state_of(tel, s.vid), TELECOM_STATE_CONFIRMED);
	free(s.link);
	conn_telecom_free(tel);
}

static void
test_wifi_then_mobile(void **state)
{
	struct conn_telecom *tel = sim_connector(CLIENT_SECRET, 3000);
	struct started s = start(tel, "H187654320", "0966000005", "1962-05-05", "twm", 30);
	char err[32];

	assert_int_equal(s.ret, 0);
	assert_int_equal(s.expires_in, 30);
	/* no network parameter is what a browser on Wi-Fi looks like */
	assert_int_equal(open_link(s.link, NULL, NULL, err), 403);
	assert_string_equal(err, "not_mobile_network");
	assert_int_equal(state_of(tel, s.vid), TELECOM_STATE_WIFI);
	assert_int_equal(open_link(s.link, "wifi", NULL, err), 403);
	assert_int_equal(state_of(tel, s.vid), TELECOM_STATE_WIFI);
	/* Wi-Fi off, within the window: confirmed */
	assert_int_equal(open_link(s.link, "mobile", "0966000005", err), 200);
	assert_int_equal(state_of(tel, s.vid), TELECOM_STATE_CONFIRMED);
	free(s.link);
	conn_telecom_free(tel);
}

static void
test_other_number_then_own(void **state)
{
	struct conn_telecom *tel = sim_connector(CLIENT_SECRET, 3000);
	struct started s = start(tel, "A224680138", "0910000008", "1988-02-29", "twm", 0);
	char err[32];

	assert_int_equal(s.ret, 0);
	/* a dual-SIM phone whose data SIM is another number */
	assert_int_equal(open_link(s.link, "mobile", "0912345678", err), 403);
	assert_string_equal(err, "other_number");
	assert_int_equal(state_of(tel, s.vid), TELECOM_STATE_OTHER_NUMBER);
	assert_int_equal(open_link(s.link, "mobile", "0910000008", err), 200);
	assert_int_equal(state_of(tel, s.vid), TELECOM_STATE_CONFIRMED);
	free(s.link);
	conn_telecom_free(tel);
}

/* Every disagreement between ID, birthdate and holder gets one answer. */
static void
test_mismatch_is_one_refusal(void **state)
{
	static const struct {
		const char *id, *birth;
	} cases[] = {
	    {"A123456789", "1985-03-15"}, /* wrong birthdate */
	    {"A223456781", "1985-03-14"}, /* another citizen's ID */
	    {"A120000007", "1985-03-14"}, /* a valid ID nobody in the file holds */
	    {"A223456781", "1990-07-02"}, /* another citizen's ID and birthdate */
	    {"A120000007", "2000-01-01"}, /* nothing right but the number */
	};
	struct conn_telecom *tel = sim_connector(CLIENT_SECRET, 3000);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct started s = start(tel, cases[i].id, "0912345678", cases[i].birth, "cht", 0);

		if (s.ret != ISSO_ERR_DENIED || s.refusal != TELECOM_REFUSAL_MISMATCH)
			fail_msg("case %zu: %d %s", i, s.ret, telecom_refusal_name(s.refusal));
	}
	conn_telecom_free(tel);
}

static void
test_unsupported_numbers(void **state)
{
	static const struct {
		const char *id, *phone, *birth, *carrier;
		enum telecom_refusal want;
	} cases[] = {
	    {"F228033121", "0955000004", "2001-01-30", "cht", TELECOM_REFUSAL_PREPAID},
	    /* the number's kind shows whoever types it, right ID or not */
	    {"A120000007", "0955000004", "2001-01-30", "cht", TELECOM_REFUSAL_PREPAID},
	    {"A131415925", "0952000011", "1993-08-08", "cht", TELECOM_REFUSAL_PREPAID},
	    {"A911223347", "0970000013", "1992-12-01", "fet", TELECOM_REFUSAL_FOREIGN},
	    /* a resident certificate number says "foreigner" whatever the number */
	    {"A911223347", "0912345678", "1985-03-14", "cht", TELECOM_REFUSAL_FOREIGN},
	    /* but the holder's status does not show to a stranger */
	    {"A123456789", "0970000013", "1992-12-01", "fet", TELECOM_REFUSAL_MISMATCH},
	    {"A123456789", CORP_PHONE, "1985-03-14", "cht", TELECOM_REFUSAL_CORPORATE},
	    {"B120200311", RESTR_PHONE, "1999-12-31", "cht", TELECOM_REFUSAL_RESTRICTED},
	    {"A123456789", "0912345678", "1985-03-14", "twm", TELECOM_REFUSAL_WRONG_CARRIER},
	    {"A123456789", "0912345678", "1985-03-14", "fet", TELECOM_REFUSAL_WRONG_CARRIER},
	    {"A123456789", CORP_PHONE, "1985-03-14", "fet", TELECOM_REFUSAL_WRONG_CARRIER},
	    {"A123456789", "0999999999", "1985-03-14", "cht", TELECOM_REFUSAL_UNKNOWN_NUMBER},
	};
	struct conn_telecom *tel = sim_connector(CLIENT_SECRET, 3000);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct started s =
		    start(tel, cases[i].id, cases[i].phone, cases[i].birth, cases[i].carrier, 0);

		if (s.ret != ISSO_ERR_DENIED || s.refusal != cases[i].want)
			fail_msg("case %zu: %d %s, want %s", i, s.ret,
			         telecom_refusal_name(s.refusal),
			         telecom_refusal_name(cases[i].want));
	}
	conn_telecom_free(tel);
}

/* 台灣之星 numbers are 台灣大哥大's, 亞太's are 遠傳's. */
static void
test_merged_carriers(void **state)
{
	struct conn_telecom *tel = sim_connector(CLIENT_SECRET, 3000);
	struct started s = start(tel, "A223456781", "0922000002", "1990-07-02", "tstar", 0);

	assert_int_equal(s.ret, 0);
	free(s.link);
	s = start(tel, "A113579248", "0933000003", "1978-11-23", "aptg", 0);
	assert_int_equal(s.ret, 0);
	free(s.link);
	assert_string_equal(telecom_carrier_find("tstar")->id, "twm");
	assert_string_equal(telecom_carrier_find("aptg")->id, "fet");
	assert_string_equal(telecom_carrier_find("cht")->name, "中華電信");
	assert_null(telecom_carrier_find("gt"));
	assert_null(telecom_carrier_find(NULL));
	conn_telecom_free(tel);
}

static void
test_expiry(void **state)
{
	struct conn_telecom *tel = sim_connector(CLIENT_SECRET, 3000);
	struct started a = start(tel, "A109876547", "0920000009", "2005-06-15", "fet", 2);
	struct started b = start(tel, "E222223335", "0930000010", "1970-04-01", "cht", 2);
	char err[32];

	assert_int_equal(a.ret, 0);
	assert_int_equal(a.expires_in, 2);
	assert_int_equal(b.ret, 0);
	assert_int_equal(open_link(b.link, "wifi", NULL, err), 403);
	sleep_ms(2300);
	assert_int_equal(state_of(tel, a.vid), TELECOM_STATE_EXPIRED);
	assert_int_equal(state_of(tel, b.vid), TELECOM_STATE_EXPIRED);
	assert_int_equal(open_link(a.link, "mobile", NULL, err), 410);
	assert_string_equal(err, "link_expired");
	assert_int_equal(open_link(b.link, "mobile", NULL, err), 410);
	assert_int_equal(state_of(tel, a.vid), TELECOM_STATE_EXPIRED);
	free(a.link);
	free(b.link);
	conn_telecom_free(tel);
}

static void
test_bad_credentials(void **state)
{
	struct conn_telecom *good = sim_connector(CLIENT_SECRET, 3000);
	struct conn_telecom *bad = sim_connector("not-the-secret", 3000);
	struct conn_telecom *bad_id = conn_telecom_new(tel_base, "nobody", CLIENT_SECRET, 3000);
	struct started s = start(good, "A227182817", "0963000012", "1982-10-10", "twm", 0);
	struct started r;
	enum telecom_state st;
	const char *error = NULL;

	assert_int_equal(s.ret, 0);
	r = start(bad, "A227182817", "0963000012", "1982-10-10", "twm", 0);
	assert_int_equal(r.ret, ISSO_ERR_DENIED);
	assert_int_equal(r.refusal, TELECOM_REFUSAL_NONE);
	r = start(bad_id, "A227182817", "0963000012", "1982-10-10", "twm", 0);
	assert_int_equal(r.ret, ISSO_ERR_DENIED);
	assert_int_equal(r.refusal, TELECOM_REFUSAL_NONE);
	assert_int_equal(conn_telecom_status(bad, s.vid, &st, &error), ISSO_ERR_DENIED);
	assert_non_null(error);
	assert_int_equal(state_of(good, s.vid), TELECOM_STATE_PENDING);
	free(s.link);
	conn_telecom_free(good);
	conn_telecom_free(bad);
	conn_telecom_free(bad_id);
}

static void
test_unknown_verification(void **state)
{
	struct conn_telecom *tel = sim_connector(CLIENT_SECRET, 3000);
	enum telecom_state st = TELECOM_STATE_PENDING;
	const char *error = NULL;
	char long_id[80];

	assert_int_equal(conn_telecom_status(tel, "AAAAAAAAAAAAAAAAAAAAAA", &st, &error), 0);
	assert_int_equal(st, TELECOM_STATE_ERROR);
	assert_non_null(error);
	assert_int_equal(conn_telecom_status(tel, "../x", &st, &error), ISSO_ERR_INVALID);
	assert_int_equal(conn_telecom_status(tel, "", &st, &error), ISSO_ERR_INVALID);
	assert_int_equal(conn_telecom_status(tel, NULL, &st, &error), ISSO_ERR_INVALID);
	memset(long_id, 'a', 65);
	long_id[65] = '\0';
	assert_int_equal(conn_telecom_status(tel, long_id, &st, &error), ISSO_ERR_INVALID);
	assert_int_equal(conn_telecom_status(NULL, "abc", &st, &error), ISSO_ERR_INVALID);
	conn_telecom_free(tel);
}

static void
test_invalid_input_refused_before_sending(void **state)
{
	static const struct {
		const char *id, *phone, *birth, *carrier;
		int window;
	} cases[] = {
	    {"A123456788", "0912345678", "1985-03-14", "cht", 0}, /* check digit */
	    {"A12345678", "0912345678", "1985-03-14", "cht", 0},
	    {NULL, "0912345678", "1985-03-14", "cht", 0},
	    {"A123456789", "0812345678", "1985-03-14", "cht", 0},
	    {"A123456789", "091234567", "1985-03-14", "cht", 0},
	    {"A123456789", NULL, "1985-03-14", "cht", 0},
	    {"A123456789", "0912345678", "1985-02-30", "cht", 0},
	    {"A123456789", "0912345678", "1985/03/14", "cht", 0},
	    {"A123456789", "0912345678", NULL, "cht", 0},
	    {"A123456789", "0912345678", "1985-03-14", "gt", 0},
	    {"A123456789", "0912345678", "1985-03-14", "CHT", 0},
	    {"A123456789", "0912345678", "1985-03-14", NULL, 0},
	    {"A123456789", "0912345678", "1985-03-14", "cht", -1},
	    {"A123456789", "0912345678", "1985-03-14", "cht", 301},
	};
	/* a peer that would notice any request: a closed port gives IO */
	int port, fd = loopback_socket(-1, &port);
	char url[64];
	struct conn_telecom *tel;
	char vid[TELECOM_VERIFICATION_ID_SIZE], *link = NULL;
	int exp = 0;
	enum telecom_refusal refusal;

	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/telecom", port);
	tel = conn_telecom_new(url, CLIENT_ID, CLIENT_SECRET, 1000);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct started s = start(tel, cases[i].id, cases[i].phone, cases[i].birth,
		                         cases[i].carrier, cases[i].window);

		if (s.ret != ISSO_ERR_INVALID)
			fail_msg("case %zu: %d", i, s.ret);
	}
	assert_int_equal(conn_telecom_start(tel, "A123456789", "0912345678", "1985-03-14", "cht", 0,
	                                    vid, NULL, &exp, &refusal, NULL),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_telecom_start(NULL, "A123456789", "0912345678", "1985-03-14", "cht",
	                                    0, vid, &link, &exp, &refusal, NULL),
	                 ISSO_ERR_INVALID);
	assert_null(link);
	conn_telecom_free(tel);

	assert_null(conn_telecom_new(NULL, "a", "b", 1000));
	assert_null(conn_telecom_new("ftp://127.0.0.1/x", "a", "b", 1000));
	assert_null(conn_telecom_new("http://127.0.0.1/x?y=1", "a", "b", 1000));
	assert_null(conn_telecom_new("http://127.0.0.1/x y", "a", "b", 1000));
	assert_null(conn_telecom_new("http://127.0.0.1/x", "", "b", 1000));
	assert_null(conn_telecom_new("http://127.0.0.1/x", "a", "", 1000));
	assert_null(conn_telecom_new("http://127.0.0.1/x", NULL, "b", 1000));
	conn_telecom_free(NULL);
}

/* What the simulator itself refuses, below the connector. */
static void
test_sim_refuses_bad_requests(void **state)
{
	static const char *const bodies[] = {
	    "not json",
	    "[1]",
	    "{\"id_num\":\"A123456789\",\"phone\":\"0912345678\",\"birthdate\":\"1985-03-14\"}",
	    "{\"id_num\":\"a123456789\",\"phone\":\"0912345678\",\"birthdate\":\"1985-03-14\","
	    "\"carrier\":\"cht\"}",
	    "{\"id_num\":\"A123456789\",\"phone\":\"+886912345678\",\"birthdate\":\"1985-03-14\","
	    "\"carrier\":\"cht\"}",
	    "{\"id_num\":\"A123456789\",\"phone\":\"0912345678\",\"birthdate\":\"1985-03-14\","
	    "\"carrier\":\"cht\",\"window\":0}",
	    "{\"id_num\":\"A123456789\",\"phone\":\"0912345678\",\"birthdate\":\"1985-03-14\","
	    "\"carrier\":\"cht\",\"window\":\"37\"}",
	    "{\"id_num\":\"A123456789\",\"id_num\":\"A123456789\",\"phone\":\"0912345678\","
	    "\"birthdate\":\"1985-03-14\",\"carrier\":\"cht\"}",
	};
	char url[160], link[256], err[32];
	json_t *j;

	snprintf(url, sizeof(url), "%s/v1/verifications", tel_base);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		long st = http_json("POST", url, CLIENT_ID ":" CLIENT_SECRET, bodies[i], &j);

		if (st != 400 ||
		    strcmp(json_string_value(json_object_get(j, "error")), "invalid_request") != 0)
			fail_msg("body %zu: HTTP %ld", i, st);
		json_decref(j);
	}
	/* no credentials at all */
	assert_int_equal(http_json("POST", url, NULL, bodies[3], &j), 401);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "invalid_client");
	json_decref(j);
	snprintf(url, sizeof(url), "%s/v1/verifications/x", tel_base);
	assert_int_equal(http_json("GET", url, NULL, NULL, &j), 401);
	json_decref(j);
	/* wrong methods */
	snprintf(url, sizeof(url), "%s/v1/verifications", tel_base);
	assert_int_equal(http_json("GET", url, CLIENT_ID ":" CLIENT_SECRET, NULL, &j), 405);
	json_decref(j);

	/* the phone side */
	snprintf(link, sizeof(link), "%s/v1/link/nosuchtoken", tel_base);
	assert_int_equal(open_link(link, "mobile", NULL, err), 404);
	assert_string_equal(err, "unknown_link");
	assert_int_equal(open_link(link, "satellite", NULL, err), 400);
	assert_int_equal(open_link(link, "mobile", "12345", err), 400);
	assert_int_equal(http_json("POST", link, NULL, "", NULL), 405);
}

/* A link previewer's HEAD does not count as opening it. */
static void
test_head_does_not_open(void **state)
{
	struct conn_telecom *tel = sim_connector(CLIENT_SECRET, 3000);
	struct started s = start(tel, "A220000125", "0977000006", "1955-09-09", "fet", 0);
	char url[2300], err[32];

	assert_int_equal(s.ret, 0);
	snprintf(url, sizeof(url), "%s?network=mobile", s.link);
	assert_int_equal(http_json("HEAD", url, NULL, NULL, NULL), 405);
	assert_int_equal(state_of(tel, s.vid), TELECOM_STATE_PENDING);
	assert_int_equal(open_link(s.link, "mobile", NULL, err), 200);
	free(s.link);
	conn_telecom_free(tel);
}

static void
test_cli_open_link(void **state)
{
	struct conn_telecom *tel = sim_connector(CLIENT_SECRET, 3000);
	struct started s = start(tel, "A123456789", "0912345678", "1985-03-14", "cht", 0);

	assert_int_equal(s.ret, 0);
	{
		const char *args[] = {"phone", "open-link", s.link, "--network", "wifi", NULL};

		assert_int_equal(run_sim(args, 5000), 1);
	}
	assert_int_equal(state_of(tel, s.vid), TELECOM_STATE_WIFI);
	{
		const char *args[] = {"phone",  "open-link", s.link,       "--network",
		                      "mobile", "--from",    "0922000002", NULL};

		assert_int_equal(run_sim(args, 5000), 1);
	}
	assert_int_equal(state_of(tel, s.vid), TELECOM_STATE_OTHER_NUMBER);
	{
		const char *args[] = {
		    "phone", "open-link", s.link, "--network=mobile", "--from=0912-345-678", NULL};

		assert_int_equal(run_sim(args, 5000), 0);
	}
	assert_int_equal(state_of(tel, s.vid), TELECOM_STATE_CONFIRMED);
	{
		const char *args[] = {"phone", "open-link", s.link, "--network", "mobile", NULL};

		assert_int_equal(run_sim(args, 5000), 1); /* used */
	}
	{
		const char *args[] = {"phone", "open-link", s.link, NULL};

		assert_int_equal(run_sim(args, 5000), 2);
	}
	{
		const char *args[] = {"phone", "open-link", s.link, "--network", "lte", NULL};

		assert_int_equal(run_sim(args, 5000), 2);
	}
	{
		const char *args[] = {"phone",     "open-link", "https://192.0.2.1/x",
		                      "--network", "mobile",    NULL};

		assert_int_equal(run_sim(args, 5000), 2);
	}
	{
		const char *args[] = {"phone",     "open-link", "http://192.0.2.1/x",
		                      "--network", "mobile",    NULL};

		assert_int_equal(run_sim(args, 5000), 2);
	}
	{
		/* the SMS phone commands still answer under `phone` */
		const char *args[] = {"phone", "sms-last", "0912345678", "--sim", sim_base, NULL};

		assert_int_equal(run_sim(args, 5000), 1);
	}
	free(s.link);
	conn_telecom_free(tel);
}

/* A corporate number that is also a citizen's stops the simulator. */
static void
test_bad_org_number(void **state)
{
	char path[] = "/tmp/isso-test-telecom-org-XXXXXX";
	const char *args[] = {"serve", "--port", "0", "--identities", path, NULL};
	json_t *root = json_load_file(ident_path, 0, NULL);
	json_t *org = json_array_get(json_object_get(root, "organisations"), 0);
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	json_object_set_new(org, "phone", json_string("0912345678"));
	assert_int_equal(json_dump_file(root, path, 0), 0);
	assert_int_equal(run_sim(args, 5000), 1);
	json_object_set_new(org, "phone", json_string(CORP_PHONE));
	json_object_set_new(org, "carrier", json_pack("{s:s}", "id", "gt"));
	assert_int_equal(json_dump_file(root, path, 0), 0);
	assert_int_equal(run_sim(args, 5000), 1);
	unlink(path);
	json_decref(root);
}

/* ---- peers that are not the simulator ---- */

static void
test_unreachable_is_io(void **state)
{
	int port, fd = loopback_socket(-1, &port);
	char url[96];
	struct conn_telecom *tel;
	enum telecom_state st;
	struct started s;

	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/telecom", port);
	tel = conn_telecom_new(url, CLIENT_ID, CLIENT_SECRET, 2000);
	s = start(tel, "A123456789", "0912345678", "1985-03-14", "cht", 0);
	assert_int_equal(s.ret, ISSO_ERR_IO);
	assert_int_equal(conn_telecom_status(tel, "abc", &st, NULL), ISSO_ERR_IO);
	conn_telecom_free(tel);
}

static void
test_silent_peer_times_out(void **state)
{
	int port, fd = loopback_socket(8, &port); /* the kernel accepts, nobody answers */
	char url[96];
	struct conn_telecom *tel;
	struct timespec t0;
	enum telecom_state st;
	struct started s;
	long ms;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/telecom", port);
	tel = conn_telecom_new(url, CLIENT_ID, CLIENT_SECRET, 700);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s = start(tel, "A123456789", "0912345678", "1985-03-14", "cht", 0);
	ms = ms_since(&t0);
	assert_int_equal(s.ret, ISSO_ERR_TIMEOUT);
	assert_true(ms >= 600 && ms < 2500);
	assert_int_equal(conn_telecom_status(tel, "abc", &st, NULL), ISSO_ERR_TIMEOUT);
	conn_telecom_free(tel);
	close(fd);
}

/* A gateway that answers one request with a canned reply and keeps the
 * request for inspection. */
struct fake_gw {
	int fd;
	const char *reply;
	char request[16384];
	size_t request_len;
};

static void *
fake_gw_thread(void *arg)
{
	struct fake_gw *gw = arg;
	int c = accept(gw->fd, NULL, NULL);
	const char *end = NULL;
	size_t want = SIZE_MAX;

	if (c < 0)
		return NULL;
	gw->request_len = 0;
	while (gw->request_len < want && gw->request_len < sizeof(gw->request) - 1) {
		ssize_t n = recv(c, gw->request + gw->request_len,
		                 sizeof(gw->request) - 1 - gw->request_len, 0);

		if (n <= 0)
			break;
		gw->request_len += (size_t)n;
		gw->request[gw->request_len] = '\0';
		if (end == NULL && (end = strstr(gw->request, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(gw->request, "\r\nContent-Length:");

			want = (size_t)(end + 4 - gw->request) +
			       (cl != NULL ? strtoul(cl + 17, NULL, 10) : 0);
		}
	}
	if (send(c, gw->reply, strlen(gw->reply), MSG_NOSIGNAL) < 0) {
		/* the client may hang up on an oversized reply */
	}
	shutdown(c, SHUT_WR);
	close(c);
	return NULL;
}

#define HTTP_OK   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
#define GOOD_LINK "\"link\":\"https://verify.example.net/l/abc\""

static void
test_start_reply_parsing(void **state)
{
	static char big[9000];
	static const struct {
		const char *reply;
		int want;
		enum telecom_refusal refusal;
	} cases[] = {
	    {HTTP_OK "{\"result\":\"S\",\"verification_id\":\"v-1_A\"," GOOD_LINK
	             ",\"expires_in\":37}",
	     0, TELECOM_REFUSAL_NONE},
	    {HTTP_OK "{\"result\":\"F\",\"reason\":\"mismatch\"}", ISSO_ERR_DENIED,
	     TELECOM_REFUSAL_MISMATCH},
	    {HTTP_OK "{\"result\":\"F\",\"reason\":\"restricted\",\"message\":\"x\"}",
	     ISSO_ERR_DENIED, TELECOM_REFUSAL_RESTRICTED},
	    {HTTP_OK "{\"result\":\"F\",\"reason\":\"suspended\"}", ISSO_ERR_DENIED,
	     TELECOM_REFUSAL_OTHER},
	    {HTTP_OK "{\"result\":\"F\",\"reason\":\"none\"}", ISSO_ERR_DENIED,
	     TELECOM_REFUSAL_OTHER},
	    {HTTP_OK "{\"result\":\"F\"}", ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {HTTP_OK "{\"result\":\"X\"}", ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {HTTP_OK "{}", ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {HTTP_OK "[\"S\"]", ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {HTTP_OK "<html>Service Unavailable</html>", ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {HTTP_OK "", ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {HTTP_OK "{\"result\":\"S\"," GOOD_LINK ",\"expires_in\":37}", ISSO_ERR_IO,
	     TELECOM_REFUSAL_NONE},
	    {HTTP_OK "{\"result\":\"S\",\"verification_id\":\"a/b\"," GOOD_LINK
	             ",\"expires_in\":37}",
	     ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {HTTP_OK "{\"result\":\"S\",\"verification_id\":\"v1\","
	             "\"link\":\"javascript:alert(1)\",\"expires_in\":37}",
	     ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {HTTP_OK "{\"result\":\"S\",\"verification_id\":\"v1\","
	             "\"link\":\"https://x/a b\",\"expires_in\":37}",
	     ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {HTTP_OK "{\"result\":\"S\",\"verification_id\":\"v1\"," GOOD_LINK ",\"expires_in\":0}",
	     ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {HTTP_OK "{\"result\":\"S\",\"verification_id\":\"v1\"," GOOD_LINK
	             ",\"expires_in\":\"37\"}",
	     ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {HTTP_OK "{\"result\":\"S\",\"result\":\"F\"}", ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n", ISSO_ERR_DENIED,
	     TELECOM_REFUSAL_NONE},
	    {"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n", ISSO_ERR_LIMIT,
	     TELECOM_REFUSAL_NONE},
	    {"HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\n\r\n", ISSO_ERR_LIMIT,
	     TELECOM_REFUSAL_NONE},
	    {"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n{\"result\":\"F\","
	     "\"reason\":\"mismatch\"}",
	     ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n", ISSO_ERR_IO,
	     TELECOM_REFUSAL_NONE},
	    {"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nConnection: close\r\n\r\n",
	     ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	    {big, ISSO_ERR_IO, TELECOM_REFUSAL_NONE},
	};
	struct fake_gw gw;
	char url[96];
	int port;

	/* a reply over 8 KiB that would otherwise be acceptable */
	snprintf(big, sizeof(big),
	         "%s{\"result\":\"S\",\"verification_id\":\"v1\"," GOOD_LINK
	         ",\"expires_in\":37,\"pad\":\"",
	         HTTP_OK);
	memset(big + strlen(big), 'a', 8500);

	gw.fd = loopback_socket(8, &port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/carrier/", port);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conn_telecom *tel = conn_telecom_new(url, "rp:1", "s3cr%t&=", 3000);
		struct started s;
		pthread_t t;

		gw.reply = cases[i].reply;
		assert_int_equal(pthread_create(&t, NULL, fake_gw_thread, &gw), 0);
		s = start(tel, "A123456789", "0912345678", "1985-03-14", "tstar", 0);
		pthread_join(t, NULL);
		if (s.ret != cases[i].want || s.refusal != cases[i].refusal)
			fail_msg("case %zu: got %d %s (%s)", i, s.ret,
			         telecom_refusal_name(s.refusal), s.error != NULL ? s.error : "");
		if (s.ret == 0) {
			assert_string_equal(s.vid, "v-1_A");
			assert_string_equal(s.link, "https://verify.example.net/l/abc");
			assert_int_equal(s.expires_in, 37);
		}
		free(s.link);
		conn_telecom_free(tel);

		/* what went over the wire: base without its trailing '/', Basic with
		 * both parts form-encoded (RFC 6749 §2.3.1), the carrier's current id */
		assert_non_null(strstr(gw.request, "POST /carrier/v1/verifications HTTP/1.1\r\n"));
		/* base64("rp%3A1:s3cr%25t%26%3D") */
		assert_non_null(strstr(
		    gw.request, "\r\nAuthorization: Basic cnAlM0ExOnMzY3IlMjV0JTI2JTNE\r\n"));
		assert_non_null(strcasestr(gw.request, "\r\nContent-Type: application/json\r\n"));
		assert_non_null(strstr(
		    gw.request, "\r\n\r\n{\"id_num\":\"A123456789\",\"phone\":\"0912345678\","
		                "\"birthdate\":\"1985-03-14\",\"carrier\":\"twm\","
		                "\"window\":37}"));
	}
	close(gw.fd);
}

static void
test_status_reply_parsing(void **state)
{
	static const struct {
		const char *reply;
		int want;
		enum telecom_state st;
	} cases[] = {
	    {HTTP_OK "{\"result\":\"S\",\"state\":\"pending\",\"expires_in\":3}", 0,
	     TELECOM_STATE_PENDING},
	    {HTTP_OK "{\"result\":\"S\",\"state\":\"confirmed\"}", 0, TELECOM_STATE_CONFIRMED},
	    {HTTP_OK "{\"result\":\"S\",\"state\":\"wifi\"}", 0, TELECOM_STATE_WIFI},
	    {HTTP_OK "{\"result\":\"S\",\"state\":\"other_number\"}", 0,
	     TELECOM_STATE_OTHER_NUMBER},
	    {HTTP_OK "{\"result\":\"S\",\"state\":\"expired\"}", 0, TELECOM_STATE_EXPIRED},
	    {HTTP_OK "{\"result\":\"S\",\"state\":\"error\"}", 0, TELECOM_STATE_ERROR},
	    {"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n", 0, TELECOM_STATE_ERROR},
	    {HTTP_OK "{\"result\":\"S\",\"state\":\"done\"}", ISSO_ERR_IO, TELECOM_STATE_ERROR},
	    {HTTP_OK "{\"result\":\"S\"}", ISSO_ERR_IO, TELECOM_STATE_ERROR},
	    {HTTP_OK "{\"result\":\"F\",\"state\":\"confirmed\"}", ISSO_ERR_IO,
	     TELECOM_STATE_ERROR},
	    {HTTP_OK "{\"state\":\"confirmed\"}", ISSO_ERR_IO, TELECOM_STATE_ERROR},
	    {HTTP_OK "confirmed", ISSO_ERR_IO, TELECOM_STATE_ERROR},
	    {"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n", ISSO_ERR_DENIED,
	     TELECOM_STATE_ERROR},
	    {"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n", ISSO_ERR_IO,
	     TELECOM_STATE_ERROR},
	};
	struct fake_gw gw;
	char url[96];
	int port;

	gw.fd = loopback_socket(8, &port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/carrier", port);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conn_telecom *tel = conn_telecom_new(url, CLIENT_ID, CLIENT_SECRET, 3000);
		enum telecom_state st = TELECOM_STATE_PENDING;
		const char *error = NULL;
		pthread_t t;
		int ret;

		gw.reply = cases[i].reply;
		assert_int_equal(pthread_create(&t, NULL, fake_gw_thread, &gw), 0);
		ret = conn_telecom_status(tel, "Vid-42_x", &st, &error);
		pthread_join(t, NULL);
		if (ret != cases[i].want || (ret == 0 && st != cases[i].st))
			fail_msg("case %zu: got %d %s (%s)", i, ret, telecom_state_name(st),
			         error != NULL ? error : "");
		assert_non_null(
		    strstr(gw.request, "GET /carrier/v1/verifications/Vid-42_x HTTP/1.1"));
		conn_telecom_free(tel);
	}
	close(gw.fd);
}

static void
test_names(void **state)
{
	assert_string_equal(telecom_refusal_name(TELECOM_REFUSAL_MISMATCH), "mismatch");
	assert_string_equal(telecom_refusal_name(TELECOM_REFUSAL_UNKNOWN_NUMBER), "unknown_number");
	assert_string_equal(telecom_refusal_name((enum telecom_refusal)99), "?");
	assert_string_equal(telecom_state_name(TELECOM_STATE_WIFI), "wifi");
	assert_string_equal(telecom_state_name((enum telecom_state)99), "?");
	for (size_t i = 0; telecom_carriers[i].id != NULL; i++)
		assert_ptr_equal(telecom_carrier_find(telecom_carriers[i].id),
		                 &telecom_carriers[i]);
}

/* An http gateway (isso-sim) may hand out http links; an https one may
 * not (not exercised here: no TLS peer in unit tests). */
static void
test_http_link_from_http_gateway(void **state)
{
	static const char reply[] =
	    HTTP_OK "{\"result\":\"S\",\"verification_id\":\"v1\","
	            "\"link\":\"http://verify.example.net/l/abc\",\"expires_in\":5}";
	struct fake_gw gw = {.reply = reply};
	struct conn_telecom *tel;
	struct started s;
	char url[96];
	pthread_t t;
	int port;

	gw.fd = loopback_socket(8, &port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/carrier", port);
	tel = conn_telecom_new(url, CLIENT_ID, CLIENT_SECRET, 3000);
	assert_int_equal(pthread_create(&t, NULL, fake_gw_thread, &gw), 0);
	s = start(tel, "A123456789", "0912345678", "1985-03-14", "cht", 5);
	pthread_join(t, NULL);
	assert_int_equal(s.ret, 0);
	assert_string_equal(s.link, "http://verify.example.net/l/abc");
	assert_int_equal(s.expires_in, 5);
	free(s.link);
	conn_telecom_free(tel);
	close(gw.fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_health_lists_telecom),
	    cmocka_unit_test(test_confirmed_over_mobile),
	    cmocka_unit_test(test_wifi_then_mobile),
	    cmocka_unit_test(test_other_number_then_own),
	    cmocka_unit_test(test_mismatch_is_one_refusal),
	    cmocka_unit_test(test_unsupported_numbers),
	    cmocka_unit_test(test_merged_carriers),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_bad_credentials),
	    cmocka_unit_test(test_unknown_verification),
	    cmocka_unit_test(test_invalid_input_refused_before_sending),
	    cmocka_unit_test(test_sim_refuses_bad_requests),
	    cmocka_unit_test(test_head_does_not_open),
	    cmocka_unit_test(test_cli_open_link),
	    cmocka_unit_test(test_bad_org_number),
	    cmocka_unit_test(test_unreachable_is_io),
	    cmocka_unit_test(test_silent_peer_times_out),
	    cmocka_unit_test(test_start_reply_parsing),
	    cmocka_unit_test(test_status_reply_parsing),
	    cmocka_unit_test(test_http_link_from_http_gateway),
	    cmocka_unit_test(test_names),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("telecom", tests, sim_start, sim_stop);
}
