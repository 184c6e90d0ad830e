/* Unit tests for the legacy API's scope names (src/oidc/legacy.c): the
 * translation to iSSO's scopes and back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/pool.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define ALL_LEGACY                                                                                 \
	"uuid account member_type verify_level formatted_name real_name email phone_no id_no "     \
	"addresses resident_address"

static void
test_parse(void **state)
{
	struct pool *pool = pool_new(0);

	(void)state;
	assert_string_equal(oidc_legacy_scope_parse(pool, ALL_LEGACY), ALL_LEGACY);
	/* commas, repeats, unknown names and OIDC names */
	assert_string_equal(oidc_legacy_scope_parse(pool, "uuid,id_no  uuid openid profile x"),
	                    "uuid id_no");
	assert_string_equal(oidc_legacy_scope_parse(pool, ""), "");
	assert_string_equal(oidc_legacy_scope_parse(pool, NULL), "");
	/* a prefix or suffix of a name is not the name */
	assert_string_equal(oidc_legacy_scope_parse(pool, "uuidx id_n real_names"), "");
	pool_free(pool);
}

static void
test_map(void **state)
{
	struct pool *pool = pool_new(0);

	(void)state;
	assert_string_equal(oidc_legacy_scope_map(pool, ALL_LEGACY),
	                    "uuid profile email phone id_number address");
	assert_string_equal(oidc_legacy_scope_map(pool, "verify_level member_type"), "");
	assert_string_equal(oidc_legacy_scope_map(pool, "birthday real_name"), "profile birthdate");
	assert_string_equal(oidc_legacy_scope_map(pool, "id_no"), "id_number");
	pool_free(pool);
}

static void
test_granted(void **state)
{
	struct pool *pool = pool_new(0);

	(void)state;
	/* approved for uuid only: the login-describing names come along */
	assert_string_equal(oidc_legacy_scope_granted(pool, ALL_LEGACY, "uuid"),
	                    "uuid member_type verify_level");
	assert_string_equal(oidc_legacy_scope_granted(pool, ALL_LEGACY,
	                                              "uuid profile email phone id_number address"),
	                    ALL_LEGACY);
	/* id_no only with id_number */
	assert_string_equal(oidc_legacy_scope_granted(pool, "id_no email", "email"), "email");
	pool_free(pool);
}

static void
test_allowed(void **state)
{
	struct store_client c;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.secret_hash = "00";
	c.settings = json_object();
	assert_false(oidc_legacy_allowed(&c));
	json_object_set_new(c.settings, "legacy_api", json_string("true"));
	assert_false(oidc_legacy_allowed(&c)); /* only JSON true */
	json_object_set_new(c.settings, "legacy_api", json_true());
	assert_true(oidc_legacy_allowed(&c));
	c.secret_hash = NULL;
	assert_false(oidc_legacy_allowed(&c)); /* no secret, no legacy API */
	c.secret_hash = "00";
	c.public_client = true;
	assert_false(oidc_legacy_allowed(&c));
	assert_false(oidc_legacy_allowed(NULL));
	json_decref(c.settings);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_map),
	    cmocka_unit_test(test_granted),
	    cmocka_unit_test(test_allowed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
