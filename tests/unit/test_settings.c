/* Unit tests for the settings every part owns (auth/shared.h, the login
 * methods' init, conn/conn-service.h) as app_check_config runs them:
 * production refusals, values checked, unknown keys refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/app.h"
#include "conn/twfido.h"
#include "lib/config.h"
#include "lib/isso.h"

static const char *
write_tmp(const char *text)
{
	static char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/isso-test-settings-%ld.ini", (long)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Loads text and runs every part's settings check: 0 or the error. */
static int
check(const char *text, const char **err_r)
{
	struct isso_config c;
	const char *path = write_tmp(text);
	int r;

	assert_int_equal(config_load(path, &c, err_r), 0);
	r = app_check_config(&c, err_r);
	config_free(&c);
	unlink(path);
	return r;
}

static void
expect_refused(const char *text, const char *needle)
{
	const char *err = NULL;

	if (check(text, &err) != ISSO_ERR_INVALID)
		fail_msg("accepted: %s", text);
	assert_non_null(err);
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

/* An issuer off loopback refuses every simulator setting, naming it. */
static void
test_production(void **state)
{
	static const struct {
		const char *text, *needle;
	} cases[] = {
	    {"[sms]\nmode = sim\n", "sms.mode: sim"},
	    {"[twfido]\nmode = sim\n", "twfido.mode: sim"},
	    {"[telecom]\nmode = sim\n", "telecom.mode: sim"},
	    {"[moica]\nmode = sim\n", "moica.mode: sim"},
	    {"[nhi]\nmode = sim\n", "nhi.mode: sim"},
	    {"[sms]\nurl = http://sms.example.com.tw/api/mtk/SmSend\n", "sms.url: plain http"},
	    {"[twfido]\nurl = HTTP://fido.example.gov.tw\n", "twfido.url: plain http"},
	    {"[telecom]\nurl = http://t.example.com.tw/telecom\n", "telecom.url: plain http"},
	    {"[moica]\nurl = http://m.example.gov.tw/moica\n", "moica.url: plain http"},
	    {"[nhi]\nurl = http://n.example.gov.tw/nhi\n", "nhi.url: plain http"},
	    {"[sms]\npassword = isso-sim\n", "sms.password: isso-sim"},
	    {"[telecom]\nsecret = isso-sim\n", "telecom.secret: isso-sim"},
	    {"[moica]\nsecret = isso-sim\n", "moica.secret: isso-sim"},
	    {"[nhi]\nsecret = isso-sim\n", "nhi.secret: isso-sim"},
	    {"[twfido]\nkey = 6EC249964849D00314F8DFC7D385D2F78768E2F1D249C49DE5849D0E0AFAADD4\n",
	     "twfido.key: the published"},
	    {"[twfido]\nkey = bsJJlkhJ0AMU+N/H04XS94do4vHSScSd5YSdDgr6rdQ=\n",
	     "twfido.key: the published"},
	    {"[moica]\nrevocation = none\n", "moica.revocation: none"},
	};
	static const char *const issuers[] = {"https://isso.gov.taipei", "http://isso.gov.taipei",
	                                      "https://10.0.0.5:8443", "https://[2001:db8::1]",
	                                      "https://localhost.example.gov.tw"};
	const char *err = NULL;

	for (size_t j = 0; j < sizeof(issuers) / sizeof(issuers[0]); j++) {
		setenv("ISSO_SERVER_PUBLIC_URL", issuers[j], 1);
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			expect_refused(cases[i].text, cases[i].needle);
		/* the real services' settings pass */
		if (check("[sms]\nurl = https://sms.example.com.tw/SmSend\n"
		          "password = p\n[twfido]\nkey = "
		          "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
		          "[moica]\nocsp_url = http://ocsp.example.gov.tw/\n"
		          "revocation = ocsp\n",
		          &err) != 0)
			fail_msg("%s refused the real services: %s", issuers[j], err);
	}
	/* on loopback, the simulator is the development set-up */
	static const char *const loopbacks[] = {"http://127.0.0.1:8080",  "http://127.1.2.3",
	                                        "https://localhost:8443", "http://[::1]:8080",
	                                        "http://api.localhost",   "http://LOCALHOST."};
	for (size_t j = 0; j < sizeof(loopbacks) / sizeof(loopbacks[0]); j++) {
		setenv("ISSO_SERVER_PUBLIC_URL", loopbacks[j], 1);
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			if (check(cases[i].text, &err) != 0)
				fail_msg("%s refused %s: %s", loopbacks[j], cases[i].text, err);
		}
	}
	unsetenv("ISSO_SERVER_PUBLIC_URL");
	assert_true(conn_twfido_is_sim_key(
	    "6ec249964849d00314f8dfc7d385d2f78768e2f1d249c49de5849d0e0afaadd4"));
	assert_false(conn_twfido_is_sim_key(""));
	assert_false(conn_twfido_is_sim_key(
	    "6ec249964849d00314f8dfc7d385d2f78768e2f1d249c49de5849d0e0afaadd5"));
}

/* Each section's owner checks its values; a key nobody owns is refused,
 * as it was when lib/config knew every section. */
static void
test_sections(void **state)
{
	const char *err = NULL;

	unsetenv("ISSO_SERVER_PUBLIC_URL");
	expect_refused("[sms]\nmode = smtp\n", "sms.mode: must be sim or http");
	expect_refused("[nhi]\nmode = \n", "nhi.mode: must be sim or http");
	expect_refused("[sms]\ntimeout_ms = 50\n", "sms.timeout_ms: out of range (line 2)");
	expect_refused("[twfido]\ntime_limit = 601\n", "twfido.time_limit: out of range");
	expect_refused("[telecom]\nwindow = 9\n", "telecom.window: out of range");
	expect_refused("[taipeipass]\napp_qr_ttl = x\n", "taipeipass.app_qr_ttl: not an integer");
	expect_refused("[moica]\ncrl_cache_seconds = -1\n",
	               "moica.crl_cache_seconds: out of range");
	expect_refused("[telecom]\nurl = ftp://t.example\n", "telecom.url: must be an http");
	expect_refused("[sms]\nusername = a\nbogus = 1\n", "line 3: unknown key [sms] bogus");
	expect_refused("[cardagent]\nurl = http://localhost:61161\nhint = x\n",
	               "line 3: unknown key [cardagent] hint");
	expect_refused("[nosuch]\nport = 1\n", "line 2: unknown key [nosuch] port");
	expect_refused("port = 1\n", "line 1: unknown key [] port");
	/* the environment is read per key, as before: ISSO_SMS_BOGUS is not
	 * a setting (and the environment holds other ISSO_ variables) */
	setenv("ISSO_SMS_BOGUS", "1", 1);
	setenv("ISSO_TELECOM_WINDOW", "301", 1);
	expect_refused("", "telecom.window: out of range (ISSO_TELECOM_WINDOW)");
	unsetenv("ISSO_TELECOM_WINDOW");
	if (check("", &err) != 0)
		fail_msg("defaults refused: %s", err);
	unsetenv("ISSO_SMS_BOGUS");
	/* every key of every section, claimed by its owner(s) */
	if (check("[sms]\nmode = sim\nurl = http://127.0.0.1:1/SmSend\nusername = u\n"
	          "password = p\ntimeout_ms = 100\n"
	          "[twfido]\nmode = sim\nurl = http://127.0.0.1:1\nsp_service_id = s\n"
	          "key = 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
	          "timeout_ms = 100\ntime_limit = 30\nhint = h\n"
	          "[telecom]\nmode = sim\nurl = http://127.0.0.1:1\nclient_id = c\nsecret = s\n"
	          "timeout_ms = 100\nwindow = 10\n"
	          "[taipeipass]\napp_qr_ttl = 2\n"
	          "[cardagent]\nurl = http://localhost:1\nnhi_url = wss://localhost:2/echo\n"
	          "[moica]\nmode = sim\nurl = http://127.0.0.1:1\nclient_id = c\nsecret = s\n"
	          "timeout_ms = 100\nroots = r.pem\nintermediates = i.pem\n"
	          "ocsp_url = http://127.0.0.1:1/o\ncrl_url = http://127.0.0.1:1/c\n"
	          "revocation = none\ncrl_cache_seconds = 0\n"
	          "[nhi]\nmode = sim\nurl = http://127.0.0.1:1\nclient_id = c\nsecret = s\n"
	          "timeout_ms = 100\n",
	          &err) != 0)
		fail_msg("every documented key: %s", err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_production),
	    cmocka_unit_test(test_sections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
