/* Optional fields: which scopes a client may mark optional, and what a
 * stored consent with declined fields leaves to release. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_optional_scopes_check),
	    cmocka_unit_test(test_scope_optional),
	    cmocka_unit_test(test_scope_consented),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
