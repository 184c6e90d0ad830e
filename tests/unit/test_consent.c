/* Optional fields: which scopes a client may mark optional, and what a
 * stored consent with declined fields leaves to release, and what a
 * counter approval (CIBA) may decline. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "auth/appsig.h"
#include "lib/isso.h"
#include "oidc/oidc.h"
#include "store/store.h"

static int
check(const char *settings_json, const char *scope)
{
	json_t *settings = json_loads(settings_json, 0, NULL);
	const char *why = NULL;
	int ret;

	assert_non_null(settings);
	ret = oidc_optional_scopes_check(settings, scope, &why);
	if (ret < 0)
		assert_non_null(why);
	else
		assert_null(why);
	json_decref(settings);
	return ret;
}

static void
test_optional_scopes_check(void **state)
{
	(void)state;
	assert_int_equal(check("{}", "openid"), 0);
	assert_int_equal(check("{\"optional_scopes\": []}", "openid"), 0);
	assert_int_equal(
	    check("{\"optional_scopes\": [\"email\", \"phone\"]}", "openid profile email phone"),
	    0);
	/* Only claim scopes the client is approved for, each once. */
	assert_int_equal(check("{\"optional_scopes\": [\"email\"]}", "openid profile"),
	                 ISSO_ERR_INVALID);
	assert_int_equal(check("{\"optional_scopes\": [\"openid\"]}", "openid"), ISSO_ERR_INVALID);
	assert_int_equal(
	    check("{\"optional_scopes\": [\"offline_access\"]}", "openid offline_access"),
	    ISSO_ERR_INVALID);
	assert_int_equal(check("{\"optional_scopes\": [\"email\", \"email\"]}", "openid email"),
	                 ISSO_ERR_INVALID);
	assert_int_equal(check("{\"optional_scopes\": \"email\"}", "openid email"),
	                 ISSO_ERR_INVALID);
	assert_int_equal(check("{\"optional_scopes\": [7]}", "openid email"), ISSO_ERR_INVALID);
	assert_int_equal(check("{\"optional_scopes\": [\"emai\"]}", "openid email"),
	                 ISSO_ERR_INVALID);
}

static void
test_scope_optional(void **state)
{
	struct store_client c;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.settings = json_loads("{\"optional_scopes\": [\"email\"]}", 0, NULL);
	assert_true(oidc_scope_optional(&c, "email"));
	assert_false(oidc_scope_optional(&c, "phone"));
	assert_false(oidc_scope_optional(&c, "emai"));
	assert_false(oidc_scope_optional(&c, NULL));
	assert_false(oidc_scope_optional(NULL, "email"));
	json_decref(c.settings);
	c.settings = json_object();
	assert_false(oidc_scope_optional(&c, "email"));
	json_decref(c.settings);
}

static void
expect_released(const char *scope, const char *consented, const char *want)
{
	char *got = oidc_scope_consented(scope, consented);

	assert_string_equal(got, want);
	free(got);
}

static void
test_scope_consented(void **state)
{
	(void)state;
	/* Declined words ("word-") are left out; "word?" and plain stay. */
	expect_released("openid profile email phone", "openid profile email- phone?",
	                "openid profile phone");
	expect_released("openid email", "openid email", "openid email");
	expect_released("openid email", NULL, "openid email");
	expect_released("openid  email-x email", "openid email-", "openid email-x");
	expect_released("", "openid email-", "");
}

static void
test_scope_optional_list(void **state)
{
	struct store_client c;
	json_t *list;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.settings = json_loads("{\"optional_scopes\": [\"phone\", \"email\"]}", 0, NULL);
	/* In the request's order, only words it asks for. */
	list = oidc_scope_optional_list(&c, "openid uuid email profile phone");
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_array_get(list, 0)), "email");
	assert_string_equal(json_string_value(json_array_get(list, 1)), "phone");
	json_decref(list);
	list = oidc_scope_optional_list(&c, "openid profile");
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
	list = oidc_scope_optional_list(NULL, "openid email");
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
	json_decref(c.settings);
}

/* Declines the JSON array text (NULL: no array) from scope: the return
 * code, and on success the declined and released words. */
static int
decline(const struct store_client *c, const char *scope, const char *json, const char *want_no,
        const char *want_yes)
{
	json_t *declined =
	    json != NULL ? json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
	char *no = (char *)"x", *yes = (char *)"x";
	int ret;

	if (json != NULL)
		assert_non_null(declined);
	ret = oidc_scope_decline(c, scope, declined, &no, &yes);
	if (ret == 0) {
		assert_string_equal(no, want_no);
		assert_string_equal(yes, want_yes);
	} else {
		assert_null(no);
		assert_null(yes);
	}
	free(no);
	free(yes);
	json_decref(declined);
	return ret;
}

static void
test_scope_decline(void **state)
{
	const char *scope = "openid uuid profile email phone";
	struct store_client c;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.settings = json_loads("{\"optional_scopes\": [\"email\", \"phone\"]}", 0, NULL);
	/* Nothing declined: everything is released (older apps). */
	assert_int_equal(decline(&c, scope, NULL, "", scope), 0);
	assert_int_equal(decline(&c, scope, "[]", "", scope), 0);
	assert_int_equal(decline(&c, scope, "[\"email\"]", "email", "openid uuid profile phone"),
	                 0);
	assert_int_equal(
	    decline(&c, scope, "[\"phone\", \"email\"]", "email phone", "openid uuid profile"), 0);
	/* Required, unknown, not asked for, repeated, or not words at all. */
	assert_int_equal(decline(&c, scope, "[\"profile\"]", NULL, NULL), ISSO_ERR_INVALID);
	assert_int_equal(decline(&c, scope, "[\"openid\"]", NULL, NULL), ISSO_ERR_INVALID);
	assert_int_equal(decline(&c, scope, "[\"emai\"]", NULL, NULL), ISSO_ERR_INVALID);
	assert_int_equal(decline(&c, scope, "[\"email\", \"email\"]", NULL, NULL),
	                 ISSO_ERR_INVALID);
	assert_int_equal(decline(&c, scope, "[\"email\", 3]", NULL, NULL), ISSO_ERR_INVALID);
	assert_int_equal(decline(&c, scope, "[\"email\\u0000x\"]", NULL, NULL), ISSO_ERR_INVALID);
	assert_int_equal(decline(&c, scope, "[\"email phone\"]", NULL, NULL), ISSO_ERR_INVALID);
	assert_int_equal(decline(&c, scope, "\"email\"", NULL, NULL), ISSO_ERR_INVALID);
	assert_int_equal(decline(&c, scope, "{\"email\": true}", NULL, NULL), ISSO_ERR_INVALID);
	assert_int_equal(decline(&c, "openid uuid profile", "[\"email\"]", NULL, NULL),
	                 ISSO_ERR_INVALID);
	assert_int_equal(decline(&c, NULL, NULL, NULL, NULL), ISSO_ERR_INVALID);
	/* A client gone or without optional fields: nothing may be declined. */
	assert_int_equal(decline(NULL, scope, "[\"email\"]", NULL, NULL), ISSO_ERR_INVALID);
	assert_int_equal(decline(NULL, scope, NULL, "", scope), 0);
	json_decref(c.settings);
}

static void
test_appsig_same(void **state)
{
	json_t *claims = json_loads("{\"declined\": [\"email\"], \"n\": 1}", 0, NULL);
	json_t *email = json_loads("[\"email\"]", 0, NULL);
	json_t *none = json_array(), *two = json_loads("[\"email\", \"phone\"]", 0, NULL);

	(void)state;
	assert_true(appsig_same(claims, "declined", email));
	/* The body may not drop, widen or add what was signed. */
	assert_false(appsig_same(claims, "declined", NULL));
	assert_false(appsig_same(claims, "declined", none));
	assert_false(appsig_same(claims, "declined", two));
	assert_false(appsig_same(claims, "other", email));
	assert_true(appsig_same(claims, "other", NULL));
	assert_false(appsig_same(claims, "n", json_object_get(claims, "declined")));
	json_decref(claims);
	json_decref(email);
	json_decref(none);
	json_decref(two);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_optional_scopes_check),
	    cmocka_unit_test(test_scope_optional),
	    cmocka_unit_test(test_scope_consented),
	    cmocka_unit_test(test_scope_optional_list),
	    cmocka_unit_test(test_scope_decline),
	    cmocka_unit_test(test_appsig_same),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
