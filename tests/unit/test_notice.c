/* SMS notices as store jobs (auth/notice.h) on a real app (SQLite store,
 * master key): queued sealed, given back with a growing pause when the
 * gateway fails, claimable by another node, given up when they can never
 * be sent or after the bounded number of attempts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "app-fixture.h"
#include "auth/notice.h"
#include "conn/sms.h"
#include "lib/isso.h"
#include "lib/secret.h"
#include "store/store.h"

#define PHONE "0912345678"
#define BODY  "您的台北通密碼已變更。"

/* A gateway nobody listens at: every attempt fails. */
static void
dead_gateway(struct app_fixture *f)
{
	if (f->app.sms == NULL)
		f->app.sms =
		    conn_sms_new("http://127.0.0.1:1/api/mtk/SmSend", "isso", "isso-sim", 2000);
	assert_non_null(f->app.sms);
}

static void
test_queue_needs_gateway(void **state)
{
	struct app_fixture *f = *state;
	struct conn_sms *sms = f->app.sms;
	struct store_job *job = NULL;

	f->app.sms = NULL;
	assert_int_equal(notice_sms_queue(&f->app, PHONE, BODY), ISSO_ERR_INVALID);
	f->app.sms = sms;
	dead_gateway(f);
	assert_int_equal(notice_sms_queue(&f->app, "", BODY), ISSO_ERR_INVALID);
	assert_int_equal(notice_sms_queue(&f->app, PHONE, ""), ISSO_ERR_INVALID);
	assert_int_equal(
	    store_job_claim(f->app.store, NOTICE_SMS_KIND, "other", app_now() + 60, 30, &job), 0);
	assert_null(job);
}

static void
test_sealed_retried_claimable(void **state)
{
	struct app_fixture *f = *state;
	struct store_job *job = NULL;
	const char *to, *body;
	char *plain = NULL;
	int64_t now = app_now();

	dead_gateway(f);
	assert_int_equal(notice_sms_queue(&f->app, PHONE, BODY), 0);
	/* the gateway fails: given back for later */
	assert_int_equal(notice_send_due(&f->app), 1);
	assert_int_equal(store_job_claim(f->app.store, NOTICE_SMS_KIND, "other", now, 30, &job), 0);
	assert_null(job);
	/* another node claims it once due: the second attempt */
	assert_int_equal(store_job_claim(f->app.store, NOTICE_SMS_KIND, "other", now + 5, 30, &job),
	                 0);
	assert_non_null(job);
	assert_int_equal(job->attempts, 2);
	to = json_string_value(json_object_get(job->data, "to"));
	body = json_string_value(json_object_get(job->data, "body"));
	assert_non_null(to);
	assert_non_null(body);
	assert_null(strstr(to, PHONE));
	assert_null(strstr(body, BODY));
	assert_int_equal(secret_open(&f->app.secrets, to, &plain), 0);
	assert_string_equal(plain, PHONE);
	xfree_secret(plain);
	assert_int_equal(secret_open(&f->app.secrets, body, &plain), 0);
	assert_string_equal(plain, BODY);
	xfree_secret(plain);
	assert_true(job->expires_at > now + 3600);
	assert_int_equal(store_job_done(f->app.store, job->id, "other"), 0);
	store_job_free(job);
}

static void
test_unsendable_given_up(void **state)
{
	struct app_fixture *f = *state;
	struct store_job *job = NULL;

	dead_gateway(f);
	/* no number the connector accepts: given up at the first attempt */
	assert_int_equal(notice_sms_queue(&f->app, "not a phone", BODY), 0);
	assert_int_equal(notice_send_due(&f->app), 1);
	assert_int_equal(
	    store_job_claim(f->app.store, NOTICE_SMS_KIND, "other", app_now() + 60, 30, &job), 0);
	assert_null(job);
}

static void
test_retry_policy(void **state)
{
	int64_t at, now = 1000000, expires = now + 21600, total = 0;
	int attempts;

	(void)state;
	assert_true(notice_retry_at(1, now, expires, &at));
	assert_int_equal(at, now + 1);
	assert_true(notice_retry_at(2, now, expires, &at));
	assert_int_equal(at, now + 2);
	assert_true(notice_retry_at(5, now, expires, &at));
	assert_int_equal(at, now + 16);
	assert_true(notice_retry_at(15, now, expires, &at));
	assert_int_equal(at, now + 900);
	/* bounded: some attempt gives up, within the notice's lifetime */
	for (attempts = 1; notice_retry_at(attempts, now + total, expires, &at); attempts++) {
		total = at - now;
		assert_true(attempts < 100);
	}
	assert_int_equal(attempts, 20);
	assert_true(total < 21600);
	/* past its lifetime it is given up whatever the count */
	assert_false(notice_retry_at(1, expires - 1, expires, &at));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_queue_needs_gateway),
	    cmocka_unit_test(test_sealed_retried_claimable),
	    cmocka_unit_test(test_unsendable_given_up),
	    cmocka_unit_test(test_retry_policy),
	};

	return cmocka_run_group_tests_name("notice", tests, app_fixture_setup,
	                                   app_fixture_teardown);
}
