/* Tests for the SMS connector and isso-sim's SMS gateway and phone API:
 * the real simulator binary runs as a child on a free loopback port; a few
 * hand-made peers (a fake gateway with canned replies, a socket that never
 * answers, a closed port) cover what the simulator never does. */
#include <arpa/inet.h>
#include <errno.h>
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim-child.h"
#include <curl/curl.h>
#include <jansson.h>

#include "conn/sms.h"
#include "lib/isso.h"
#include "lib/log.h"

#define SMS_USER     "isso"
#define SMS_PASSWORD "isso-sim"

static char sim_sms_url[96]; /* …/api/mtk/SmSend */

/* ---- helpers ---- */

static size_t
collect_cb(char *data, size_t size, size_t n, void *ctx)
{
	struct {
		char *p;
		size_t len;
	} *b = ctx;

	b->p = realloc(b->p, b->len + size * n + 1);
	memcpy(b->p + b->len, data, size * n);
	b->len += size * n;
	b->p[b->len] = '\0';
	return size * n;
}

/* One HTTP exchange with libcurl; returns the status (0 when none) and the
 * body in *body_r (malloc'd; NULL when empty). form NULL: GET. */
static long
http_exchange(const char *method, const char *url, const char *form, char **body_r)
{
	struct {
		char *p;
		size_t len;
	} b = {NULL, 0};
	CURL *curl = curl_easy_init();
	long status = 0;

	assert_non_null(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	if (form != NULL)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
	else if (strcmp(method, "POST") == 0)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (body_r != NULL)
		*body_r = b.p;
	else
		free(b.p);
	return status;
}

/* GET/POST on the simulator; the reply parsed as JSON (NULL when not). */
static json_t *
sim_json(const char *method, const char *path, long *status_r)
{
	char url[256], *body = NULL;
	json_t *j = NULL;

	snprintf(url, sizeof(url), "%s%s", sim_base, path);
	*status_r = http_exchange(method, url, NULL, &body);
	if (body != NULL)
		j = json_loads(body, 0, NULL);
	free(body);
	return j;
}

/* ---- simulator lifecycle ---- */

static int
sim_start(void **state)
{
	static const char *const extra[] = {"--sms-user", SMS_USER, "--sms-password", SMS_PASSWORD,
	                                    NULL};

	log_init(2, LOG_ERROR);
	if (sim_child_start("test_sms", extra) != 0)
		return -1;
	snprintf(sim_sms_url, sizeof(sim_sms_url), "%s/api/mtk/SmSend", sim_base);
	return 0;
}

static int
sim_stop(void **state)
{
	sim_child_stop();
	return 0;
}

static struct conn_sms *
sim_connector(const char *password, int timeout_ms)
{
	struct conn_sms *sms = conn_sms_new(sim_sms_url, SMS_USER, password, timeout_ms);

	assert_non_null(sms);
	return sms;
}

/* ---- through the simulator ---- */

static void
test_health_and_identities(void **state)
{
	json_t *j, *c;
	long status;
	size_t i;
	bool sms = false, foreign = false;

	j = sim_json("GET", "/health", &status);
	assert_int_equal(status, 200);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
	json_array_foreach(json_object_get(j, "services"), i, c)
	{
		sms |= strcmp(json_string_value(c), "sms") == 0;
	}
	assert_true(sms);
	json_decref(j);

	j = sim_json("GET", "/identities", &status);
	assert_int_equal(status, 200);
	assert_non_null(json_string_value(json_object_get(j, "description")));
	assert_true(json_array_size(json_object_get(j, "citizens")) >= 12);
	json_array_foreach(json_object_get(j, "citizens"), i, c)
	{
		foreign |= json_is_true(json_object_get(c, "foreign_resident"));
	}
	assert_true(foreign);
	assert_true(json_array_size(json_object_get(j, "organisations")) >= 1);
	json_decref(j);
}

static void
test_send_and_read_back(void **state)
{
	/* characters that must survive form encoding */
	const char *body1 = "【臺北市政府】驗證碼 483920，5 分鐘內有效。a&b=c+d %20 #x";
	const char *body2 = "第二封 0912345678 代碼 771155";
	struct conn_sms *sms = sim_connector(SMS_PASSWORD, 3000);
	char *msgid1 = NULL, *msgid2 = NULL;
	const char *error = NULL;
	json_t *j, *m;
	long status;

	json_decref(sim_json("POST", "/phone/0922000002/sms/clear", &status));
	assert_int_equal(status, 200);
	assert_int_equal(conn_sms_send(sms, "0922000002", body1, &msgid1, &error), 0);
	assert_null(error);
	assert_non_null(msgid1);
	assert_int_equal(strlen(msgid1), 10);
	assert_int_equal(strspn(msgid1, "0123456789"), 10);

	j = sim_json("GET", "/phone/0922000002/sms/last", &status);
	assert_int_equal(status, 200);
	assert_string_equal(json_string_value(json_object_get(j, "to")), "0922000002");
	assert_string_equal(json_string_value(json_object_get(j, "body")), body1);
	assert_string_equal(json_string_value(json_object_get(j, "msgid")), msgid1);
	assert_string_equal(json_string_value(json_object_get(j, "code")), "483920");
	assert_non_null(json_string_value(json_object_get(j, "sent_at")));
	json_decref(j);

	/* the 10-digit phone number is not a code; the 6-digit run is */
	assert_int_equal(conn_sms_send(sms, "0922000002", body2, &msgid2, &error), 0);
	assert_string_not_equal(msgid1, msgid2);
	j = sim_json("GET", "/phone/0922-000-002/sms", &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_array_size(j), 2);
	m = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(m, "msgid")), msgid2);
	assert_string_equal(json_string_value(json_object_get(m, "code")), "771155");
	m = json_array_get(j, 1);
	assert_string_equal(json_string_value(json_object_get(m, "msgid")), msgid1);
	json_decref(j);

	/* clear empties the outbox */
	j = sim_json("POST", "/phone/0922000002/sms/clear", &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(j, "cleared")), 2);
	json_decref(j);
	j = sim_json("GET", "/phone/0922000002/sms/last", &status);
	assert_int_equal(status, 404);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "no_sms");
	json_decref(j);
	j = sim_json("GET", "/phone/0922000002/sms", &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);

	free(msgid1);
	free(msgid2);
	conn_sms_free(sms);
}

static void
test_body_without_code(void **state)
{
	struct conn_sms *sms = sim_connector(SMS_PASSWORD, 3000);
	char *msgid = NULL;
	json_t *j;
	long status;

	assert_int_equal(conn_sms_send(sms, "0933000003", "碼 1234567 與 12345", &msgid, NULL), 0);
	j = sim_json("GET", "/phone/0933000003/sms/last", &status);
	assert_int_equal(status, 200);
	assert_true(json_is_null(json_object_get(j, "code")));
	json_decref(j);
	free(msgid);
	conn_sms_free(sms);
}

static void
test_phone_api_refuses_bad_requests(void **state)
{
	json_t *j;
	long status;

	j = sim_json("GET", "/phone/12345/sms/last", &status);
	assert_int_equal(status, 400);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "invalid_number");
	json_decref(j);
	j = sim_json("GET", "/phone/0912345678/mail", &status);
	assert_int_equal(status, 404);
	json_decref(j);
	j = sim_json("POST", "/phone/0912345678/sms/last", &status);
	assert_int_equal(status, 405);
	json_decref(j);
	j = sim_json("GET", "/phone/0912345678/sms/clear", &status);
	assert_int_equal(status, 405);
	json_decref(j);
}

static void
test_wrong_password_denied(void **state)
{
	struct conn_sms *sms = sim_connector("not-the-password", 3000);
	char *msgid = (char *)"unchanged";
	const char *error = NULL;
	long status;

	json_decref(sim_json("POST", "/phone/0955000004/sms/clear", &status));
	assert_int_equal(conn_sms_send(sms, "0955000004", "code 123456", &msgid, &error),
	                 ISSO_ERR_DENIED);
	assert_null(msgid);
	assert_non_null(error);
	json_decref(sim_json("GET", "/phone/0955000004/sms/last", &status));
	assert_int_equal(status, 404);
	conn_sms_free(sms);
}

static void
test_invalid_input_refused_before_sending(void **state)
{
	struct conn_sms *sms = sim_connector(SMS_PASSWORD, 3000);
	char big[400], exact[400];
	char *msgid = NULL;
	const char *error = NULL;
	long status;
	size_t n = 0;

	json_decref(sim_json("POST", "/phone/0966000005/sms/clear", &status));
	memset(big, 'x', 336);
	big[336] = '\0';
	assert_int_equal(conn_sms_send(sms, "0966000005", big, &msgid, &error), ISSO_ERR_INVALID);
	assert_non_null(error);
	assert_null(msgid);

	/* exactly 335 bytes of multi-byte text is fine */
	while (n + 3 <= 333) {
		memcpy(exact + n, "驗", 3);
		n += 3;
	}
	memcpy(exact + n, "12", 3);
	assert_int_equal(strlen(exact), 335);
	assert_int_equal(conn_sms_send(sms, "0966000005", exact, &msgid, &error), 0);
	free(msgid);
	msgid = NULL;

	assert_int_equal(conn_sms_send(sms, "0812345678", "hi", &msgid, &error), ISSO_ERR_INVALID);
	assert_int_equal(conn_sms_send(sms, "091234567", "hi", &msgid, &error), ISSO_ERR_INVALID);
	assert_int_equal(conn_sms_send(sms, "09123456789", "hi", &msgid, &error), ISSO_ERR_INVALID);
	assert_int_equal(conn_sms_send(sms, "+886912345678", "hi", &msgid, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_sms_send(sms, NULL, "hi", &msgid, &error), ISSO_ERR_INVALID);
	assert_int_equal(conn_sms_send(sms, "0966000005", "", &msgid, &error), ISSO_ERR_INVALID);
	assert_int_equal(conn_sms_send(sms, "0966000005", NULL, &msgid, &error), ISSO_ERR_INVALID);
	assert_int_equal(conn_sms_send(sms, "0966000005", "bad \xff utf8", &msgid, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_sms_send(sms, "0966000005", "overlong \xc0\xaf", &msgid, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_sms_send(sms, "0966000005", "cut \xe9\xa9", &msgid, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_sms_send(sms, "0966000005", "ctl \x01", &msgid, &error),
	                 ISSO_ERR_INVALID);
	assert_null(msgid);

	/* only the 335-byte message reached the phone */
	json_t *j = sim_json("GET", "/phone/0966000005/sms", &status);
	assert_int_equal(json_array_size(j), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "body")),
	                    exact);
	json_decref(j);

	assert_null(conn_sms_new(NULL, "u", "p", 1000));
	assert_null(conn_sms_new("ftp://127.0.0.1/x", "u", "p", 1000));
	conn_sms_free(NULL);
	conn_sms_free(sms);
}

/* The gateway itself refuses what the connector would not send. */
static void
test_sim_gateway_refusals(void **state)
{
	static const struct {
		const char *query, *form, *status;
	} cases[] = {
	    {"?CharsetURL=UTF-8",
	     "username=isso&password=isso-sim&dstaddr=0977000006&smbody=", "u"},
	    {"?CharsetURL=UTF-8", "username=isso&password=isso-sim&dstaddr=0877000006&smbody=x",
	     "v"},
	    {"?CharsetURL=UTF-8", "username=isso&password=isso-sim&smbody=x", "v"},
	    {"?CharsetURL=UTF-8", "password=isso-sim&dstaddr=0977000006&smbody=x", "c"},
	    {"?CharsetURL=UTF-8", "username=isso&dstaddr=0977000006&smbody=x", "d"},
	    {"?CharsetURL=UTF-8", "username=isso&password=isso-sim2&dstaddr=0977000006&smbody=x",
	     "e"},
	    {"?CharsetURL=UTF-8", "username=isso2&password=isso-sim&dstaddr=0977000006&smbody=x",
	     "e"},
	    {"", "username=isso&password=isso-sim&dstaddr=0977000006&smbody=x", "y"},
	    {"?CharsetURL=UTF-8",
	     "username=isso&password=isso-sim&dstaddr=0977000006&smbody=x&dlvtime=tomorrow", "y"},
	    {"?CharsetURL=UTF-8",
	     "username=isso&password=isso-sim&dstaddr=0977000006&smbody=x&response=javascript:1",
	     "y"},
	};
	char url[160], form[800], *body;
	long status;

	json_decref(sim_json("POST", "/phone/0977000006/sms/clear", &status));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[32];

		snprintf(url, sizeof(url), "%s%s", sim_sms_url, cases[i].query);
		assert_int_equal(http_exchange("POST", url, cases[i].form, &body), 200);
		assert_non_null(body);
		snprintf(want, sizeof(want), "statuscode=%s\r\n", cases[i].status);
		if (strncmp(body, "[1]\r\n", 5) != 0 || strstr(body, want) == NULL ||
		    strstr(body, "msgid=") != NULL)
			fail_msg("case %zu: %s", i, body);
		free(body);
	}

	/* 336 bytes of body */
	snprintf(url, sizeof(url), "%s?CharsetURL=UTF-8", sim_sms_url);
	snprintf(form, sizeof(form), "username=isso&password=isso-sim&dstaddr=0977000006&smbody=");
	memset(form + strlen(form), 'z', 336);
	form[strlen("username=isso&password=isso-sim&dstaddr=0977000006&smbody=") + 336] = '\0';
	assert_int_equal(http_exchange("POST", url, form, &body), 200);
	assert_non_null(strstr(body, "statuscode=y"));
	assert_null(strstr(body, "msgid="));
	free(body);

	json_decref(sim_json("GET", "/phone/0977000006/sms/last", &status));
	assert_int_equal(status, 404);
}

struct burst {
	struct conn_sms *sms;
	int failures;
};

static void *
burst_thread(void *arg)
{
	struct burst *b = arg;

	for (int i = 0; i < 10; i++) {
		char body[64], *msgid = NULL;

		snprintf(body, sizeof(body), "burst %d", i);
		if (conn_sms_send(b->sms, "0988000007", body, &msgid, NULL) != 0 || msgid == NULL)
			b->failures++;
		free(msgid);
	}
	return NULL;
}

/* Four senders at once; the outbox keeps the last 20 with distinct ids. */
static void
test_concurrent_sends_bounded_outbox(void **state)
{
	struct conn_sms *sms = sim_connector(SMS_PASSWORD, 5000);
	struct burst b[4];
	pthread_t t[4];
	json_t *j, *m;
	long status;
	size_t i, k;

	json_decref(sim_json("POST", "/phone/0988000007/sms/clear", &status));
	for (i = 0; i < 4; i++) {
		b[i] = (struct burst){.sms = sms};
		assert_int_equal(pthread_create(&t[i], NULL, burst_thread, &b[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(b[i].failures, 0);
	}
	j = sim_json("GET", "/phone/0988000007/sms", &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_array_size(j), 20);
	json_array_foreach(j, i, m)
	{
		const char *id = json_string_value(json_object_get(m, "msgid"));

		for (k = 0; k < i; k++)
			assert_string_not_equal(
			    id, json_string_value(json_object_get(json_array_get(j, k), "msgid")));
		if (i > 0)
			assert_true(strcmp(json_string_value(json_object_get(m, "sent_at")),
			                   json_string_value(json_object_get(
			                       json_array_get(j, i - 1), "sent_at"))) <= 0);
	}
	json_decref(j);
	conn_sms_free(sms);
}

static void
test_cli_phone(void **state)
{
	struct conn_sms *sms = sim_connector(SMS_PASSWORD, 3000);
	char *msgid = NULL;
	long status;

	json_decref(sim_json("POST", "/phone/0910000008/sms/clear", &status));
	{
		const char *args[] = {"phone", "sms-last", "0910000008", "--sim", sim_base, NULL};

		assert_int_equal(run_sim(args, 5000), 1);
	}
	{
		const char *args[] = {"phone", "sms-list", "0910000008", "--sim", sim_base, NULL};

		assert_int_equal(run_sim(args, 5000), 1);
	}
	assert_int_equal(conn_sms_send(sms, "0910000008", "驗證碼 246810", &msgid, NULL), 0);
	{
		const char *args[] = {"phone", "sms-last", "0910000008", "--sim", sim_base, NULL};

		assert_int_equal(run_sim(args, 5000), 0);
	}
	{
		const char *args[] = {"phone", "sms-list", "0910-000-008", "--sim", sim_base, NULL};

		assert_int_equal(run_sim(args, 5000), 0);
	}
	{
		const char *args[] = {"phone", "sms-last", "12345", "--sim", sim_base, NULL};

		assert_int_equal(run_sim(args, 5000), 2);
	}
	{
		const char *args[] = {"phone", "sms-last", NULL};

		assert_int_equal(run_sim(args, 5000), 2);
	}
	{
		const char *args[] = {
		    "phone", "sms-last", "0910000008", "--sim", "http://192.0.2.1:8090", NULL};

		assert_int_equal(run_sim(args, 5000), 2);
	}
	{
		int port, fd = loopback_socket(-1, &port);
		char url[64];
		const char *args[] = {"phone", "sms-last", "0910000008", "--sim", url, NULL};

		close(fd);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
		assert_int_equal(run_sim(args, 5000), 2);
	}
	free(msgid);
	conn_sms_free(sms);
}

static void
test_bad_identities_file(void **state)
{
	char path[] = "/tmp/isso-test-ident-XXXXXX";
	const char *missing[] = {
	    "serve", "--port", "0", "--identities", "/nonexistent/identities.json", NULL};
	const char *bad[] = {"serve", "--port", "0", "--identities", path, NULL};
	json_t *root, *c;
	int fd;

	assert_int_equal(run_sim(missing, 5000), 1);

	/* the shipped file with one check digit changed */
	root = json_load_file("sim/identities.json", 0, NULL);
	assert_non_null(root);
	c = json_array_get(json_object_get(root, "citizens"), 0);
	json_object_set_new(c, "national_id", json_string("A123456788"));
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(json_dump_file(root, path, 0), 0);
	assert_int_equal(run_sim(bad, 5000), 1);

	/* a duplicate phone number */
	json_object_set_new(c, "national_id", json_string("A123456789"));
	json_object_set_new(c, "phone", json_string("0922000002"));
	assert_int_equal(json_dump_file(root, path, 0), 0);
	assert_int_equal(run_sim(bad, 5000), 1);

	/* not JSON at all */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(write(fd, "{\"citizens\": [", 14) == 14);
	close(fd);
	assert_int_equal(run_sim(bad, 5000), 1);

	unlink(path);
	json_decref(root);
}

/* ---- peers that are not the simulator ---- */

static void
test_unreachable_is_io(void **state)
{
	int port, fd = loopback_socket(-1, &port);
	char url[96], *msgid = NULL;
	const char *error = NULL;
	struct conn_sms *sms;

	close(fd); /* nobody listens there now */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/mtk/SmSend", port);
	sms = conn_sms_new(url, SMS_USER, SMS_PASSWORD, 2000);
	assert_non_null(sms);
	assert_int_equal(conn_sms_send(sms, "0912345678", "x 123456", &msgid, &error), ISSO_ERR_IO);
	assert_non_null(error);
	assert_null(msgid);
	conn_sms_free(sms);
}

static void
test_silent_peer_times_out(void **state)
{
	int port, fd = loopback_socket(8, &port); /* the kernel accepts, nobody answers */
	char url[96], *msgid = NULL;
	const char *error = NULL;
	struct conn_sms *sms;
	struct timespec t0;
	long ms;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/mtk/SmSend", port);
	sms = conn_sms_new(url, SMS_USER, SMS_PASSWORD, 700);
	assert_non_null(sms);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(conn_sms_send(sms, "0912345678", "x 123456", &msgid, &error),
	                 ISSO_ERR_TIMEOUT);
	ms = ms_since(&t0);
	assert_true(ms >= 600);
	assert_true(ms < 2500);
	assert_null(msgid);
	conn_sms_free(sms);
	close(fd);
}

/* A gateway that answers one request with a canned reply and keeps the
 * request for inspection. */
struct fake_gw {
	int fd;
	const char *reply;
	size_t reply_len;
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
	if (send(c, gw->reply, gw->reply_len, MSG_NOSIGNAL) < 0) {
		/* the client may hang up on an oversized reply */
	}
	shutdown(c, SHUT_WR);
	close(c);
	return NULL;
}

#define HTTP_OK "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"

static void
test_reply_parsing(void **state)
{
	static char big[5200];
	static const struct {
		const char *reply;
		int want;
		const char *msgid;
	} cases[] = {
	    {HTTP_OK "[1]\r\nmsgid=1234567890\r\nstatuscode=1\r\nAccountPoint=98\r\n", 0,
	     "1234567890"},
	    {HTTP_OK "[1]\nmsgid=#000000012\nstatuscode=4\n", 0, "#000000012"},
	    {HTTP_OK "[1]\r\nmsgid=77\r\nstatuscode=0\r\n", 0, "77"},
	    {HTTP_OK "[1]\r\nstatuscode=2\r\n", 0, NULL},
	    {HTTP_OK "[1]\r\nmsgid=bad id!\r\nstatuscode=1\r\n", 0, NULL},
	    {HTTP_OK "[1]\r\nmsgid=1\r\nstatuscode=1\r\n[2]\r\nstatuscode=e\r\n", 0, "1"},
	    {HTTP_OK "[1]\r\nstatuscode=5\r\n", ISSO_ERR_DENIED, NULL},
	    {HTTP_OK "[1]\r\nstatuscode=e\r\nError=帳號、密碼錯誤\r\n", ISSO_ERR_DENIED, NULL},
	    {HTTP_OK "[1]\r\nmsgid=1\r\nstatuscode=10\r\n", ISSO_ERR_DENIED, NULL},
	    {HTTP_OK "[1]\r\nmsgid=1\r\nstatuscode=3\r\n", ISSO_ERR_DENIED, NULL},
	    {HTTP_OK "statuscode=k\r\nError=無效的連線位址\r\n", ISSO_ERR_DENIED, NULL},
	    {HTTP_OK "[1]\r\nmsgid=1\r\n", ISSO_ERR_IO, NULL},
	    {HTTP_OK "[1]\r\nstatuscode=1\r\nstatuscode=5\r\n", ISSO_ERR_IO, NULL},
	    {HTTP_OK "<html><body>Service Unavailable</body></html>", ISSO_ERR_IO, NULL},
	    {HTTP_OK "statuscode=1\r\nmsgid=1\r\n", ISSO_ERR_IO, NULL},
	    {HTTP_OK "", ISSO_ERR_IO, NULL},
	    {"HTTP/1.1 500 Internal Server Error\r\nConnection: "
	     "close\r\n\r\n[1]\r\nstatuscode=1\r\n",
	     ISSO_ERR_IO, NULL},
	    {"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n", ISSO_ERR_IO, NULL},
	    {"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nConnection: close\r\n\r\n",
	     ISSO_ERR_IO, NULL},
	    {"garbage\r\n\r\n", ISSO_ERR_IO, NULL},
	    {big, ISSO_ERR_IO, NULL},
	};
	struct fake_gw gw;
	char url[96];
	int port;

	/* a reply over 4 KiB that would otherwise be acceptable */
	snprintf(big, sizeof(big), "%s[1]\r\nmsgid=1\r\nstatuscode=1\r\n", HTTP_OK);
	memset(big + strlen(big), 'a', 5000);
	big[sizeof(big) - 1] = '\0';

	gw.fd = loopback_socket(8, &port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/mtk/SmSend", port);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conn_sms *sms = conn_sms_new(url, "acc", "p@ss&word=1", 3000);
		char *msgid = NULL;
		const char *error = NULL;
		pthread_t t;
		int ret;

		gw.reply = cases[i].reply;
		gw.reply_len = strlen(cases[i].reply);
		assert_int_equal(pthread_create(&t, NULL, fake_gw_thread, &gw), 0);
		ret = conn_sms_send(sms, "0912345678", "碼 135790 & more", &msgid, &error);
		pthread_join(t, NULL);
		if (ret != cases[i].want)
			fail_msg("case %zu: got %d (%s), want %d", i, ret, error ? error : "",
			         cases[i].want);
		if (cases[i].msgid == NULL)
			assert_null(msgid);
		else
			assert_string_equal(msgid, cases[i].msgid);
		assert_true(ret == 0 || error != NULL);
		free(msgid);
		conn_sms_free(sms);

		/* what went over the wire */
		assert_non_null(
		    strstr(gw.request, "POST /api/mtk/SmSend?CharsetURL=UTF-8 HTTP/1.1\r\n"));
		assert_non_null(strcasestr(
		    gw.request, "\r\nContent-Type: application/x-www-form-urlencoded\r\n"));
		assert_non_null(strstr(gw.request,
		                       "\r\n\r\nusername=acc&password=p%40ss%26word%3D1&"
		                       "dstaddr=0912345678&smbody=%E7%A2%BC%20135790%20%"
		                       "26%20more"));
	}
	close(gw.fd);
}

/* An endpoint that already has a query keeps it and gains CharsetURL. */
static void
test_endpoint_with_query(void **state)
{
	static const char reply[] = HTTP_OK "[1]\r\nmsgid=9\r\nstatuscode=1\r\n";
	struct fake_gw gw = {.reply = reply, .reply_len = sizeof(reply) - 1};
	struct conn_sms *sms;
	char url[96], *msgid = NULL;
	pthread_t t;
	int port;

	gw.fd = loopback_socket(8, &port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/mtk/SmSend?objectID=7", port);
	sms = conn_sms_new(url, "acc", "pw", 3000);
	assert_int_equal(pthread_create(&t, NULL, fake_gw_thread, &gw), 0);
	assert_int_equal(conn_sms_send(sms, "0912345678", "hello", &msgid, NULL), 0);
	pthread_join(t, NULL);
	assert_non_null(strstr(gw.request, "POST /api/mtk/SmSend?objectID=7&CharsetURL=UTF-8 "));
	free(msgid);
	conn_sms_free(sms);
	close(gw.fd);
}

int
main(void)
{
	const struct CMUnitTest sim_tests[] = {
	    cmocka_unit_test(test_health_and_identities),
	    cmocka_unit_test(test_send_and_read_back),
	    cmocka_unit_test(test_body_without_code),
	    cmocka_unit_test(test_phone_api_refuses_bad_requests),
	    cmocka_unit_test(test_wrong_password_denied),
	    cmocka_unit_test(test_invalid_input_refused_before_sending),
	    cmocka_unit_test(test_sim_gateway_refusals),
	    cmocka_unit_test(test_concurrent_sends_bounded_outbox),
	    cmocka_unit_test(test_cli_phone),
	    cmocka_unit_test(test_bad_identities_file),
	    cmocka_unit_test(test_unreachable_is_io),
	    cmocka_unit_test(test_silent_peer_times_out),
	    cmocka_unit_test(test_reply_parsing),
	    cmocka_unit_test(test_endpoint_with_query),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("sms", sim_tests, sim_start, sim_stop);
}
