/* The pure parts of binding a proven national ID to a member (歸戶): which
 * outcome the store's state leads to, and the personal data after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "auth/bind.h"

#define A  "11111111-1111-4111-8111-111111111111"
#define B  "22222222-2222-4222-8222-222222222222"
#define H1 "h1"
#define H2 "h2"

static void
test_decide(void **state)
{
	(void)state;
	/* Only a member binds. */
	assert_int_equal(bind_decide(A, false, NULL, H1, NULL, false), BIND_NOT_MEMBER);
	/* Nobody has the ID yet. */
	assert_int_equal(bind_decide(A, true, NULL, H1, NULL, false), BIND_NEW);
	/* The member has it already (an operator's import, or a second bind). */
	assert_int_equal(bind_decide(A, true, H1, H1, A, false), BIND_SAME);
	/* A member bound to one ID never takes another, whoever holds it. */
	assert_int_equal(bind_decide(A, true, H1, H2, NULL, false), BIND_OTHER_ID);
	assert_int_equal(bind_decide(A, true, H1, H2, B, false), BIND_OTHER_ID);
	assert_int_equal(bind_decide(A, true, H1, H2, B, true), BIND_OTHER_ID);
	/* A card-only person with the ID is merged in; a member is not. */
	assert_int_equal(bind_decide(A, true, NULL, H1, B, false), BIND_MERGE);
	assert_int_equal(bind_decide(A, true, NULL, H1, B, true), BIND_TAKEN);
}

static void
test_pii(void **state)
{
	json_t *pii = json_pack("{s:s, s:s, s:s, s:s}", "name", "王小明（自填）", "phone",
	                        "0912345678", "account", "wang", "level", "ordinary");
	json_t *attrs = json_pack("{s:s, s:s, s:s}", "id_number", "typed-ignored", "name", "王小明",
	                          "birthdate", "1990-01-02");
	json_t *out;

	(void)state;
	out = bind_pii(pii, attrs, "A123456789");
	/* The proven values replace the typed ones; the rest stays. */
	assert_string_equal(json_string_value(json_object_get(out, "id_number")), "A123456789");
	assert_string_equal(json_string_value(json_object_get(out, "name")), "王小明");
	assert_string_equal(json_string_value(json_object_get(out, "birthdate")), "1990-01-02");
	assert_string_equal(json_string_value(json_object_get(out, "phone")), "0912345678");
	assert_string_equal(json_string_value(json_object_get(out, "account")), "wang");
	assert_null(json_object_get(out, "level"));
	/* The input is not changed. */
	assert_string_equal(json_string_value(json_object_get(pii, "name")), "王小明（自填）");
	json_decref(out);

	/* A method that proves only the ID (NHI card) keeps the name; an
	 * empty proven name never blanks one. */
	json_object_set_new(attrs, "name", json_string(""));
	json_object_del(attrs, "birthdate");
	out = bind_pii(pii, attrs, "A123456789");
	assert_string_equal(json_string_value(json_object_get(out, "name")), "王小明（自填）");
	assert_null(json_object_get(out, "birthdate"));
	json_decref(out);
	/* No data yet. */
	out = bind_pii(NULL, NULL, "A123456789");
	assert_int_equal(json_object_size(out), 1);
	json_decref(out);
	json_decref(pii);
	json_decref(attrs);
}

static void
test_methods(void **state)
{
	(void)state;
	assert_true(bind_method_ok("moica-card"));
	assert_true(bind_method_ok("moica-mobile"));
	assert_true(bind_method_ok("nhi-card"));
	/* A password, an SMS or a telecom login proves no ID. */
	assert_false(bind_method_ok("taipeipass"));
	assert_false(bind_method_ok("telecom"));
	assert_false(bind_method_ok(""));
	assert_false(bind_method_ok(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decide),
	    cmocka_unit_test(test_pii),
	    cmocka_unit_test(test_methods),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
