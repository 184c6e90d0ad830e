/* Suspending and resuming a service (portal/agency-app.h) on a real app
 * (SQLite store): who suspended is recorded, the agency lifts only its
 * own suspension, the city any and takes over the agency's; a refused
 * resume changes nothing; every step lands in the application's history
 * with its reason. Decisions on applications: only a pending one is
 * decided, a refused one waits for the agency's edit; a service suspended
 * before it was approved is not resumed into approval; a member of the
 * organisation is told apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "app-fixture.h"
#include "lib/isso.h"
#include "portal/agency-app.h"
#include "store/store.h"

static void
client_add(struct isso_app *app, const char *id, int status, json_t *settings)
{
	struct store_client c;

	memset(&c, 0, sizeof(c));
	c.client_id = (char *)id;
	c.secret_hash = "00";
	c.name = "停用測試服務";
	c.redirect_uris = json_pack("[s]", "https://rp.example.tw/cb");
	c.post_logout_redirect_uris = json_array();
	c.scope = "openid profile";
	c.id_token_alg = "ES256";
	c.auth_method = "client_secret_basic";
	c.created_at = 1;
	c.settings = settings;
	assert_int_equal(store_client_add(app->store, &c), 0);
	json_decref(c.redirect_uris);
	json_decref(c.post_logout_redirect_uris);
	json_decref(settings);
	if (status != CLIENT_PENDING)
		assert_int_equal(store_client_set_status(app->store, id, status), 0);
}

static struct store_client *
client_get(struct isso_app *app, const char *id)
{
	struct store_client *c = NULL;

	assert_int_equal(store_client_get(app->store, id, &c), 0);
	assert_non_null(c);
	return c;
}

/* The newest history entry of client id. */
static json_t *
last_entry(struct isso_app *app, const char *id)
{
	struct store_client *c = client_get(app, id);
	json_t *h = json_object_get(agency_app_of(c), "history");
	json_t *e = json_deep_copy(json_array_get(h, json_array_size(h) - 1));

	store_client_free(c);
	assert_non_null(e);
	return e;
}

static void
last_event_is(struct isso_app *app, const char *id, const char *event)
{
	json_t *e = last_entry(app, id);

	assert_string_equal(json_string_value(json_object_get(e, "event")), event);
	json_decref(e);
}

static void
assert_state(struct isso_app *app, const char *id, int status, const char *by)
{
	struct store_client *c = client_get(app, id);
	const char *s = agency_app_suspended_by(c);

	assert_int_equal(c->status, status);
	if (by == NULL)
		assert_null(s);
	else
		assert_string_equal(s, by);
	store_client_free(c);
}

static void
test_agency_own_suspension(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	const char *why = NULL;
	json_t *e;

	client_add(app, "svc-own", CLIENT_APPROVED,
	           json_pack("{s:{s:s}}", AGENCY_APP_KEY, "ubn", "04595257"));
	assert_int_equal(
	    agency_app_suspend(app, "svc-own", AGENCY_BY_AGENCY, NULL, "u-staff", &why), 0);
	assert_state(app, "svc-own", CLIENT_SUSPENDED, AGENCY_BY_AGENCY);
	e = last_entry(app, "svc-own");
	assert_string_equal(json_string_value(json_object_get(e, "event")), "client_suspended");
	assert_string_equal(json_string_value(json_object_get(e, "by")), "u-staff");
	assert_string_equal(json_string_value(json_object_get(e, "side")), AGENCY_BY_AGENCY);
	assert_null(json_object_get(e, "reason"));
	json_decref(e);
	/* Suspended once by the agency, not again by it. */
	assert_int_equal(
	    agency_app_suspend(app, "svc-own", AGENCY_BY_AGENCY, NULL, "u-staff", &why),
	    ISSO_ERR_INVALID);
	assert_non_null(why);
	assert_state(app, "svc-own", CLIENT_SUSPENDED, AGENCY_BY_AGENCY);

	assert_int_equal(agency_app_resume(app, "svc-own", AGENCY_BY_AGENCY, "u-staff", &why), 0);
	assert_state(app, "svc-own", CLIENT_APPROVED, NULL);
	e = last_entry(app, "svc-own");
	assert_string_equal(json_string_value(json_object_get(e, "event")), "client_resumed");
	json_decref(e);
	{
		struct store_client *c = client_get(app, "svc-own");
		assert_null(json_object_get(agency_app_of(c), "suspended_by"));
		assert_string_equal(json_string_value(json_object_get(agency_app_of(c), "ubn")),
		                    "04595257");
		store_client_free(c);
	}
	/* Resumed once, not again. */
	assert_int_equal(agency_app_resume(app, "svc-own", AGENCY_BY_AGENCY, "u-staff", &why),
	                 ISSO_ERR_INVALID);
}

static void
test_city_suspension(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	const char *why = NULL;
	struct store_client *before, *after;
	char long_reason[AGENCY_REASON_MAX + 2];
	json_t *e;

	client_add(app, "svc-city", CLIENT_APPROVED,
	           json_pack("{s:{s:s}}", AGENCY_APP_KEY, "ubn", "04595257"));
	memset(long_reason, 'x', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	assert_int_equal(
	    agency_app_suspend(app, "svc-city", AGENCY_BY_CITY, long_reason, "u-admin", &why),
	    ISSO_ERR_INVALID);
	assert_int_equal(agency_app_suspend(app, "svc-city", AGENCY_BY_CITY, "", "u-admin", &why),
	                 ISSO_ERR_INVALID);
	assert_state(app, "svc-city", CLIENT_APPROVED, NULL);

	assert_int_equal(
	    agency_app_suspend(app, "svc-city", AGENCY_BY_CITY, "資安事件調查中", "u-admin", &why),
	    0);
	assert_state(app, "svc-city", CLIENT_SUSPENDED, AGENCY_BY_CITY);
	e = last_entry(app, "svc-city");
	assert_string_equal(json_string_value(json_object_get(e, "reason")), "資安事件調查中");
	assert_string_equal(json_string_value(json_object_get(e, "side")), AGENCY_BY_CITY);
	json_decref(e);

	/* The agency cannot lift it, and nothing changes. */
	before = client_get(app, "svc-city");
	assert_int_equal(agency_app_resume(app, "svc-city", AGENCY_BY_AGENCY, "u-staff", &why),
	                 ISSO_ERR_DENIED);
	assert_non_null(why);
	after = client_get(app, "svc-city");
	assert_int_equal(after->status, CLIENT_SUSPENDED);
	assert_true(json_equal(before->settings, after->settings));
	store_client_free(before);
	store_client_free(after);

	assert_int_equal(agency_app_resume(app, "svc-city", AGENCY_BY_CITY, "u-admin", &why), 0);
	assert_state(app, "svc-city", CLIENT_APPROVED, NULL);
	{
		struct store_client *c = client_get(app, "svc-city");
		assert_null(json_object_get(agency_app_of(c), "suspension"));
		store_client_free(c);
	}
}

static void
test_suspension_edges(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	const char *why = NULL;

	/* Only an approved service is suspended; unknown ids are refused. */
	client_add(app, "svc-pending", CLIENT_PENDING, NULL);
	assert_int_equal(
	    agency_app_suspend(app, "svc-pending", AGENCY_BY_AGENCY, NULL, "u-staff", &why),
	    ISSO_ERR_INVALID);
	assert_state(app, "svc-pending", CLIENT_PENDING, NULL);
	assert_int_equal(agency_app_suspend(app, "no-such", AGENCY_BY_CITY, NULL, "u-admin", &why),
	                 ISSO_ERR_INVALID);
	assert_int_equal(agency_app_resume(app, "no-such", AGENCY_BY_CITY, "u-admin", &why),
	                 ISSO_ERR_INVALID);

	/* A suspension that names no one (a client without an application,
	 * suspended directly) is the city's. */
	client_add(app, "svc-bare", CLIENT_SUSPENDED, NULL);
	assert_state(app, "svc-bare", CLIENT_SUSPENDED, AGENCY_BY_CITY);
	assert_int_equal(agency_app_resume(app, "svc-bare", AGENCY_BY_AGENCY, "u-staff", &why),
	                 ISSO_ERR_DENIED);
	/* Suspended before it was ever approved: no resume turns it into an
	 * approved service, only a review does. */
	{
		struct store_client *c = client_get(app, "svc-bare");
		assert_false(agency_app_resumable(c));
		assert_true(agency_app_decidable(c));
		store_client_free(c);
	}
	assert_int_equal(agency_app_resume(app, "svc-bare", AGENCY_BY_CITY, "issoctl", &why),
	                 ISSO_ERR_INVALID);
	assert_non_null(strstr(why, "application approve"));
	assert_state(app, "svc-bare", CLIENT_SUSPENDED, AGENCY_BY_CITY);
	assert_int_equal(agency_app_approve(app, "svc-bare", NULL, "issoctl", &why), 0);
	assert_state(app, "svc-bare", CLIENT_APPROVED, NULL);
}

/* The city takes over a suspension the agency made: then it is the
 * city's, with the city's reason, and the agency cannot lift it. */
static void
test_city_takes_over(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	const char *why = NULL;
	struct store_client *c;
	json_t *e;

	client_add(app, "svc-take", CLIENT_APPROVED,
	           json_pack("{s:{s:s}}", AGENCY_APP_KEY, "ubn", "04595257"));
	assert_int_equal(
	    agency_app_suspend(app, "svc-take", AGENCY_BY_AGENCY, NULL, "u-staff", &why), 0);
	assert_int_equal(
	    agency_app_suspend(app, "svc-take", AGENCY_BY_CITY, "停權調查", "u-admin", &why), 0);
	assert_state(app, "svc-take", CLIENT_SUSPENDED, AGENCY_BY_CITY);
	c = client_get(app, "svc-take");
	assert_string_equal(json_string_value(json_object_get(agency_app_of(c), "suspension")),
	                    "停權調查");
	store_client_free(c);
	e = last_entry(app, "svc-take");
	assert_string_equal(json_string_value(json_object_get(e, "event")), "client_suspended");
	assert_string_equal(json_string_value(json_object_get(e, "side")), AGENCY_BY_CITY);
	assert_string_equal(json_string_value(json_object_get(e, "reason")), "停權調查");
	json_decref(e);
	assert_int_equal(agency_app_resume(app, "svc-take", AGENCY_BY_AGENCY, "u-staff", &why),
	                 ISSO_ERR_DENIED);
	/* The city's own suspension is not taken over again. */
	assert_int_equal(agency_app_suspend(app, "svc-take", AGENCY_BY_CITY, NULL, "u-admin", &why),
	                 ISSO_ERR_INVALID);
	assert_int_equal(agency_app_resume(app, "svc-take", AGENCY_BY_CITY, "u-admin", &why), 0);
	assert_state(app, "svc-take", CLIENT_APPROVED, NULL);
}

/* Suspending keeps what changed outside status and settings (a secret
 * rotated by the agency): only those two are written. */
static void
test_suspend_keeps_secret(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	const char *why = NULL;
	struct store_client *c;

	client_add(app, "svc-rot", CLIENT_APPROVED, NULL);
	assert_int_equal(store_client_set_secret(app->store, "svc-rot", "11"), 0);
	assert_int_equal(agency_app_suspend(app, "svc-rot", AGENCY_BY_CITY, NULL, "u-admin", &why),
	                 0);
	assert_int_equal(agency_app_resume(app, "svc-rot", AGENCY_BY_CITY, "u-admin", &why), 0);
	c = client_get(app, "svc-rot");
	assert_string_equal(c->secret_hash, "11");
	assert_string_equal(c->name, "停用測試服務");
	store_client_free(c);
}

/* A refused application is decided no further until the agency edits it
 * (state back to pending). */
static void
test_refused_waits_for_edit(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	const char *why = NULL;
	struct store_client *c;
	json_t *settings;

	client_add(
	    app, "svc-ref", CLIENT_PENDING,
	    json_pack("{s:{s:s, s:s}}", AGENCY_APP_KEY, "ubn", "04595257", "state", "pending"));
	assert_int_equal(agency_app_refuse(app, "svc-ref", "目的不明", "u-admin", &why), 0);
	c = client_get(app, "svc-ref");
	assert_string_equal(agency_app_state(c), "refused");
	assert_false(agency_app_decidable(c));
	store_client_free(c);
	assert_int_equal(agency_app_approve(app, "svc-ref", NULL, "u-admin", &why),
	                 ISSO_ERR_INVALID);
	assert_int_equal(agency_app_refuse(app, "svc-ref", "再拒絕", "u-admin", &why),
	                 ISSO_ERR_INVALID);
	assert_state(app, "svc-ref", CLIENT_PENDING, NULL);
	last_event_is(app, "svc-ref", "client_refused");

	/* The agency's edit puts it back to pending: decided again. */
	c = client_get(app, "svc-ref");
	settings = json_deep_copy(c->settings);
	json_object_set_new(json_object_get(settings, AGENCY_APP_KEY), "state",
	                    json_string("pending"));
	assert_int_equal(store_client_set_settings(app->store, "svc-ref", settings), 0);
	json_decref(settings);
	store_client_free(c);
	assert_int_equal(agency_app_approve(app, "svc-ref", NULL, "u-admin", &why), 0);
	assert_state(app, "svc-ref", CLIENT_APPROVED, NULL);
}

/* Membership of the application's organisation, in any role. */
static void
test_member_of_org(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	struct store_person p = {
	    .uuid = "u-colleague", .id_hash = "h-colleague", .pii = "{}", .created_at = 1};
	struct store_member m = {.uuid = "u-colleague",
	                         .account = "colleague",
	                         .phone_hash = "p-colleague",
	                         .password_hash = "x",
	                         .created_at = 1};
	struct store_org org = {.ubn = "04595257", .name = "臺北市政府", .created_at = 1};
	struct store_client *c;
	bool member = true;

	assert_int_equal(store_person_add(app->store, &p), 0);
	assert_int_equal(store_member_add(app->store, &m), 0);
	assert_int_equal(store_org_add(app->store, &org), 0);
	client_add(app, "svc-org", CLIENT_PENDING,
	           json_pack("{s:{s:s}}", AGENCY_APP_KEY, "ubn", "04595257"));
	c = client_get(app, "svc-org");
	assert_int_equal(agency_app_member(app, c, "u-colleague", &member), 0);
	assert_false(member);
	/* A member with no role at all counts. */
	assert_int_equal(store_org_member_add(app->store, "04595257", "u-colleague", NULL, 1), 0);
	assert_int_equal(agency_app_member(app, c, "u-colleague", &member), 0);
	assert_true(member);
	assert_int_equal(agency_app_member(app, c, "u-other", &member), 0);
	assert_false(member);
	store_client_free(c);
	/* A client with no application has no organisation. */
	client_add(app, "svc-noorg", CLIENT_PENDING, NULL);
	c = client_get(app, "svc-noorg");
	assert_int_equal(agency_app_member(app, c, "u-colleague", &member), 0);
	assert_false(member);
	store_client_free(c);
}

static void
test_history_bounded(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	const char *why = NULL;
	struct store_client *c;

	client_add(app, "svc-many", CLIENT_APPROVED, NULL);
	for (int i = 0; i < AGENCY_HISTORY_MAX; i++) {
		assert_int_equal(
		    agency_app_suspend(app, "svc-many", AGENCY_BY_AGENCY, NULL, "u-staff", &why),
		    0);
		assert_int_equal(
		    agency_app_resume(app, "svc-many", AGENCY_BY_AGENCY, "u-staff", &why), 0);
	}
	c = client_get(app, "svc-many");
	assert_int_equal(json_array_size(json_object_get(agency_app_of(c), "history")),
	                 AGENCY_HISTORY_MAX);
	store_client_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_agency_own_suspension),
	    cmocka_unit_test(test_city_suspension),
	    cmocka_unit_test(test_suspension_edges),
	    cmocka_unit_test(test_history_bounded),
	    cmocka_unit_test(test_city_takes_over),
	    cmocka_unit_test(test_suspend_keeps_secret),
	    cmocka_unit_test(test_refused_waits_for_edit),
	    cmocka_unit_test(test_member_of_org),
	};

	return cmocka_run_group_tests_name("agency", tests, app_fixture_setup,
	                                   app_fixture_teardown);
}
