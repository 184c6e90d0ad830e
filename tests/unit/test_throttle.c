/* Unit tests for slowing password guessing: address keys (IPv6 /64), the
 * delay schedule, device cookies; and the policy for new passwords. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/password.h"
#include "auth/throttle.h"
#include "lib/addr.h"
#include "lib/isso.h"
#include "lib/secret.h"

static struct secret_keys keys, other_keys;

static int
setup(void **state)
{
	unsigned char master[32];

	(void)state;
	if (secret_init() != 0)
		return -1;
	memset(master, 3, sizeof(master));
	secret_keys_derive(master, &keys);
	master[0] = 4;
	secret_keys_derive(master, &other_keys);
	return 0;
}

static const char *
key(const char *addr)
{
	static char out[ADDR_KEY_MAX];

	return addr_limit_key(addr, out);
}

static void
test_addr_key(void **state)
{
	(void)state;
	assert_string_equal(key("127.0.0.3"), "127.0.0.3");
	assert_string_equal(key("198.51.100.7"), "198.51.100.7");
	/* Every address of one /64 is one client; the next /64 another. */
	assert_string_equal(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
	assert_string_equal(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
	assert_string_equal(key("2001:DB8:1:2:a:b:c:d"), "2001:db8:1:2::/64");
	assert_string_equal(key("2001:db8:1:3::1"), "2001:db8:1:3::/64");
	assert_string_equal(key("::1"), "::/64");
	assert_string_equal(key("fe80::1"), "fe80::/64");
	/* IPv4-mapped: the IPv4 address. */
	assert_string_equal(key("::ffff:192.0.2.1"), "192.0.2.1");
	/* Not an address. */
	assert_string_equal(key("unknown"), "unknown");
	assert_string_equal(key(""), "unknown");
	assert_string_equal(key(NULL), "unknown");
	assert_string_equal(key("2001:db8::1%eth0"), "unknown");
	assert_string_equal(key("1.2.3.4/24"), "unknown");
}

static void
test_delay_schedule(void **state)
{
	(void)state;
	/* Free failures first, then doubling, up to the cap. */
	for (int f = 0; f <= 3; f++)
		assert_int_equal(throttle_delay(f, 3, 10), 0);
	assert_int_equal(throttle_delay(4, 3, 10), 1);
	assert_int_equal(throttle_delay(5, 3, 10), 2);
	assert_int_equal(throttle_delay(6, 3, 10), 4);
	assert_int_equal(throttle_delay(7, 3, 10), 8);
	assert_int_equal(throttle_delay(8, 3, 10), 10);
	assert_int_equal(throttle_delay(100, 3, 10), 10);
	assert_int_equal(throttle_delay(1000000, 0, 10), 10);
	/* The per-account cap is what the owner waits at most. */
	for (int f = 0; f < 200; f++)
		assert_true(throttle_delay(f, 0, 10) <= 10);
	assert_int_equal(throttle_delay(17, 10, 60), 60);
	assert_int_equal(throttle_delay(16, 10, 60), 32);
	assert_int_equal(throttle_delay(50, 0, 0), 0);
	assert_int_equal(throttle_delay(-5, 0, 10), 0);
}

static void
test_device_cookie(void **state)
{
	const char *uuid = "0b6c6a3e-6f0e-4a55-9d43-6d2a3c1f2e10";
	const char *other = "9f1d2c3b-1111-4222-8333-444455556666";
	char c[THROTTLE_DEVICE_COOKIE_MAX], c2[THROTTLE_DEVICE_COOKIE_MAX], bad[200], nonce[23];
	char n1[23];

	(void)state;
	throttle_device_cookie(&keys, uuid, 2000000000, c);
	assert_true(strlen(c) < THROTTLE_DEVICE_COOKIE_MAX);
	assert_null(strstr(c, uuid)); /* the member is named by a keyed hash */
	assert_true(throttle_device_cookie_valid(&keys, c, uuid, 1900000000, nonce));
	assert_int_equal(strlen(nonce), 22);
	memcpy(n1, nonce, sizeof(n1));
	/* Each cookie has its own nonce. */
	throttle_device_cookie(&keys, uuid, 2000000000, c2);
	assert_true(throttle_device_cookie_valid(&keys, c2, uuid, 1900000000, nonce));
	assert_string_not_equal(nonce, n1);
	/* Another member, another key, expired. */
	assert_false(throttle_device_cookie_valid(&keys, c, other, 1900000000, nonce));
	assert_false(throttle_device_cookie_valid(&other_keys, c, uuid, 1900000000, nonce));
	assert_false(throttle_device_cookie_valid(&keys, c, uuid, 2000000000, nonce));
	/* Tampering anywhere breaks it. */
	for (size_t i = 0; i < strlen(c); i++) {
		snprintf(bad, sizeof(bad), "%s", c);
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		if (strcmp(bad, c) == 0)
			continue;
		assert_false(throttle_device_cookie_valid(&keys, bad, uuid, 1900000000, nonce));
	}
	/* A later expiry under the old MAC. */
	{
		char *exp = strchr(strchr(c, '.') + 1, '.') + 1, *mac = strchr(exp, '.');
		snprintf(bad, sizeof(bad), "%.*s2100000000%s", (int)(exp - c), c, mac);
		assert_false(throttle_device_cookie_valid(&keys, bad, uuid, 1900000000, nonce));
	}
	assert_false(throttle_device_cookie_valid(&keys, "", uuid, 1, nonce));
	assert_false(throttle_device_cookie_valid(&keys, "a.b.c.d", uuid, 1, nonce));
	assert_false(throttle_device_cookie_valid(&keys, NULL, uuid, 1, nonce));
	memset(bad, 'a', sizeof(bad) - 1);
	bad[sizeof(bad) - 1] = '\0';
	assert_false(throttle_device_cookie_valid(&keys, bad, uuid, 1, nonce));
}

static struct password_policy *
policy(void)
{
	struct password_policy *p = NULL;
	const char *err = NULL;

	assert_int_equal(password_policy_load("data/common-passwords.txt", 30, &p, &err), 0);
	assert_non_null(p);
	return p;
}

static void
test_password_policy(void **state)
{
	struct password_policy *p = policy();
	const char *ctx[] = {"lin.meihua", "meihua.lin@example.tw", "0912345678", NULL};
	char longest[4 * 128 + 1] = "", toolong[4 * 129 + 1] = "";

	(void)state;
	/* Length counts code points, not bytes: 8 CJK characters are 24 bytes. */
	assert_string_equal(password_problem(p, "Ab1-x", NULL), "password.too_short");
	assert_string_equal(password_problem(p, "台北市民密碼", NULL), "password.too_short");
	assert_null(password_problem(p, "台北市民的秘密花園", NULL));
	for (int i = 0; i < 128; i++)
		strcat(longest, i % 2 ? "川" : "k");
	for (int i = 0; i < 129; i++)
		strcat(toolong, "x");
	assert_null(password_problem(p, longest, NULL));
	assert_string_equal(password_problem(p, toolong, NULL), "password.too_long");
	/* No composition rules: letters only, digits only or spaces are fine
	 * when they are hard to guess. */
	assert_null(password_problem(p, "correct horse battery staple", NULL));
	assert_null(password_problem(p, "kx7Qm2vRw", NULL));
	assert_null(password_problem(p, "9184 2750 3361 48", NULL));
	/* Common: on the list, any case. */
	assert_string_equal(password_problem(p, "password1", NULL), "password.common");
	assert_string_equal(password_problem(p, "PassWord1", NULL), "password.common");
	assert_string_equal(password_problem(p, "woaini520", NULL), "password.common");
	assert_string_equal(password_problem(p, "1qaz2wsx", NULL), "password.common");
	assert_string_equal(password_problem(p, "12345678", NULL), "password.common");
	/* Weak by zxcvbn though not on the list. */
	assert_string_equal(password_problem(p, "Password2019", NULL), "password.weak");
	assert_string_equal(password_problem(p, "abcabcabcabc", NULL), "password.weak");
	assert_string_equal(password_problem(p, "19880808", NULL), "password.weak");
	/* The member's own words. */
	assert_string_equal(password_problem(p, "Lin.Meihua-2024-kx7Q", ctx), "password.context");
	assert_string_equal(password_problem(p, "xx-meihua.lin-kx7Qm2", ctx), "password.context");
	assert_string_equal(password_problem(p, "kx7Q912345678", ctx), "password.context");
	assert_null(password_problem(p, "Lin.Meihua-2024-kx7Q", NULL));
	/* NFKC: full-width letters are the ASCII ones. */
	assert_string_equal(password_problem(p, "ｐａｓｓｗｏｒｄ１", NULL), "password.common");
	/* Without a policy, only the length. */
	assert_null(password_problem(NULL, "password1", NULL));
	assert_string_equal(password_problem(NULL, "short", NULL), "password.too_short");
	password_policy_free(p);
}

static void
test_password_normalize(void **state)
{
	char *n;

	(void)state;
	n = password_normalize("ｐａｓｓ　１２");
	assert_string_equal(n, "pass 12");
	free(n);
	n = password_normalize("plain ascii");
	assert_string_equal(n, "plain ascii");
	free(n);
	/* Composed and decomposed forms meet. */
	n = password_normalize("Cafe\xcc\x81");
	assert_string_equal(n, "Caf\xc3\xa9");
	free(n);
	assert_null(password_normalize("\xff\xfe"));
	assert_int_equal(password_chars("台北x"), 3);
}

static void
test_policy_load_errors(void **state)
{
	struct password_policy *p = NULL;
	const char *err = NULL;

	(void)state;
	assert_int_equal(password_policy_load("/nonexistent/list.txt", 30, &p, &err), ISSO_ERR_IO);
	assert_null(p);
	assert_non_null(strstr(err, "/nonexistent/list.txt"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_addr_key),           cmocka_unit_test(test_delay_schedule),
	    cmocka_unit_test(test_device_cookie),      cmocka_unit_test(test_password_policy),
	    cmocka_unit_test(test_password_normalize), cmocka_unit_test(test_policy_load_errors),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
