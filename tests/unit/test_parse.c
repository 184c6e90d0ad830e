/* Unit tests for src/http/parse.c: the parsers of untrusted request data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/parse.h"
#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/pool.h"

static int
setup(void **state)
{
	*state = pool_new(0);
	return 0;
}

static int
teardown(void **state)
{
	pool_free(*state);
	return 0;
}

static int
urlenc(struct pool *pool, const char *s, size_t max, struct http_kvs *kvs)
{
	return parse_urlencoded(pool, s, strlen(s), max, kvs);
}

static void
test_urlencoded_basic(void **state)
{
	struct http_kvs kvs;

	assert_int_equal(urlenc(*state, "a=1&b=two&c=", 64, &kvs), 0);
	assert_int_equal(kvs.n, 3);
	assert_string_equal(kvs.v[0].name, "a");
	assert_string_equal(kvs.v[0].value, "1");
	assert_string_equal(http_kvs_get(&kvs, "b"), "two");
	assert_string_equal(http_kvs_get(&kvs, "c"), "");
	assert_null(http_kvs_get(&kvs, "d"));
	assert_null(http_kvs_get(NULL, "a"));
	assert_int_equal(http_kvs_count(NULL, "a"), 0);
}

static void
test_urlencoded_duplicates(void **state)
{
	struct http_kvs kvs;

	assert_int_equal(urlenc(*state, "scope=openid&scope=email&x=1", 64, &kvs), 0);
	assert_int_equal(http_kvs_count(&kvs, "scope"), 2);
	assert_int_equal(http_kvs_count(&kvs, "x"), 1);
	assert_int_equal(http_kvs_count(&kvs, "y"), 0);
	assert_string_equal(http_kvs_get(&kvs, "scope"), "openid");
}

static void
test_urlencoded_plus_and_escapes(void **state)
{
	struct http_kvs kvs;

	assert_int_equal(urlenc(*state, "q=a+b%2Bc&n%61me=%E4%B8%AD%e6%96%87&k+1=v", 64, &kvs), 0);
	assert_string_equal(http_kvs_get(&kvs, "q"), "a b+c");
	assert_string_equal(http_kvs_get(&kvs, "name"), "中文");
	assert_string_equal(http_kvs_get(&kvs, "k 1"), "v");
}

static void
test_urlencoded_empty_segments(void **state)
{
	struct http_kvs kvs;

	assert_int_equal(urlenc(*state, "", 64, &kvs), 0);
	assert_int_equal(kvs.n, 0);
	assert_int_equal(parse_urlencoded(*state, NULL, 0, 64, &kvs), 0);
	assert_int_equal(kvs.n, 0);
	assert_int_equal(urlenc(*state, "&&a=1&&&b&=x&", 64, &kvs), 0);
	assert_int_equal(kvs.n, 2);
	assert_string_equal(kvs.v[0].name, "a");
	assert_string_equal(kvs.v[1].name, "b");
	assert_string_equal(kvs.v[1].value, "");
	/* '=' inside a value is kept */
	assert_int_equal(urlenc(*state, "a=b=c", 64, &kvs), 0);
	assert_string_equal(http_kvs_get(&kvs, "a"), "b=c");
}

static void
test_urlencoded_bad(void **state)
{
	static const char *const bad[] = {
	    "a=%",      "a=%4",     "a=%zz",       "a=%4g",          "%=1",   "a=%00", "a%00=1",
	    "a=%C3%28", "a=%C0%AF", "a=%ED%A0%80", "a=%F4%90%80%80", "a=%FF", "a=%80", "a=%E4%B8",
	    "ok=1&a=%",
	};
	struct http_kvs kvs;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = urlenc(*state, bad[i], 64, &kvs);

		if (r != ISSO_ERR_INVALID)
			fail_msg("accepted %s", bad[i]);
	}
	/* a raw NUL inside the data */
	assert_int_equal(parse_urlencoded(*state, "a=1\0b=2", 7, 64, &kvs), ISSO_ERR_INVALID);
	/* raw invalid UTF-8 */
	assert_int_equal(urlenc(*state, "a=\xc3\x28", 64, &kvs), ISSO_ERR_INVALID);
	assert_int_equal(kvs.n, 0);
}

static void
test_urlencoded_limits(void **state)
{
	struct http_kvs kvs;
	char big[64 * 4 + 8] = "";

	assert_int_equal(urlenc(*state, "a=1&b=2", 2, &kvs), 0);
	assert_int_equal(urlenc(*state, "a=1&b=2&c=3", 2, &kvs), ISSO_ERR_LIMIT);
	/* empty segments do not count */
	assert_int_equal(urlenc(*state, "a=1&&&&b=2&&&", 2, &kvs), 0);
	for (int i = 0; i < 65; i++)
		memcpy(big + 4 * i, "a=1&", 4);
	big[4 * 65] = '\0';
	assert_int_equal(urlenc(*state, big, 64, &kvs), ISSO_ERR_LIMIT);
	assert_int_equal(urlenc(*state, big, 65, &kvs), 0);
	assert_int_equal(kvs.n, 65);
}

static void
test_cookies(void **state)
{
	struct http_kvs kvs;

	assert_int_equal(parse_cookies(*state, "a=b; c=d;e=\"quoted\"  ;  f = g", 64, &kvs), 0);
	assert_string_equal(http_kvs_get(&kvs, "a"), "b");
	assert_string_equal(http_kvs_get(&kvs, "c"), "d");
	assert_string_equal(http_kvs_get(&kvs, "e"), "quoted");
	/* "f " is not a token: skipped */
	assert_null(http_kvs_get(&kvs, "f"));
	assert_int_equal(kvs.n, 3);

	/* malformed pairs skipped, values not decoded */
	assert_int_equal(
	    parse_cookies(*state, "novalue; =x; ok=%41; bad=\x01; u=\xc3\xa9; z=", 64, &kvs), 0);
	assert_int_equal(kvs.n, 2);
	assert_string_equal(http_kvs_get(&kvs, "ok"), "%41");
	assert_string_equal(http_kvs_get(&kvs, "z"), "");

	/* at most max_pairs kept */
	assert_int_equal(parse_cookies(*state, "a=1; b=2; c=3", 2, &kvs), 0);
	assert_int_equal(kvs.n, 2);
	assert_null(http_kvs_get(&kvs, "c"));

	assert_int_equal(parse_cookies(*state, NULL, 64, &kvs), 0);
	assert_int_equal(kvs.n, 0);
	assert_int_equal(parse_cookies(*state, ";;; ;", 64, &kvs), 0);
	assert_int_equal(kvs.n, 0);
	/* duplicates: first wins */
	assert_int_equal(parse_cookies(*state, "s=1; s=2", 64, &kvs), 0);
	assert_string_equal(http_kvs_get(&kvs, "s"), "1");
	assert_int_equal(http_kvs_count(&kvs, "s"), 2);
}

static char *
basic_header(struct pool *pool, const char *cred)
{
	char enc[1024];

	b64_encode(cred, strlen(cred), enc);
	return pool_printf(pool, "Basic %s", enc);
}

static void
test_basic_auth(void **state)
{
	struct pool *pool = *state;
	char *u, *p;

	assert_int_equal(parse_basic_auth(pool, basic_header(pool, "client:s3cret"), &u, &p), 0);
	assert_string_equal(u, "client");
	assert_string_equal(p, "s3cret");

	/* RFC 6749 §2.3.1: percent-encoded ':' in the secret, '+' is space */
	assert_int_equal(
	    parse_basic_auth(pool, basic_header(pool, "my%3Aclient:se%3Acr%25et+x:y"), &u, &p), 0);
	assert_string_equal(u, "my:client");
	assert_string_equal(p, "se:cr%et x:y");

	/* empty password is allowed, empty user too */
	assert_int_equal(parse_basic_auth(pool, basic_header(pool, "c:"), &u, &p), 0);
	assert_string_equal(p, "");
	/* lower-case scheme, several spaces */
	assert_int_equal(parse_basic_auth(pool, "basic   YTpi", &u, &p), 0);
	assert_string_equal(u, "a");
	assert_string_equal(p, "b");

	assert_int_equal(parse_basic_auth(pool, basic_header(pool, "nocolon"), &u, &p),
	                 ISSO_ERR_INVALID);
	assert_null(u);
	assert_null(p);
	assert_int_equal(parse_basic_auth(pool, basic_header(pool, "a:%zz"), &u, &p),
	                 ISSO_ERR_INVALID);
	assert_int_equal(parse_basic_auth(pool, basic_header(pool, "a%00:b"), &u, &p),
	                 ISSO_ERR_INVALID);
	assert_int_equal(parse_basic_auth(pool, "Basic !!!!", &u, &p), ISSO_ERR_INVALID);
	assert_int_equal(parse_basic_auth(pool, "Basic YTpi=", &u, &p), ISSO_ERR_INVALID);
	assert_int_equal(parse_basic_auth(pool, "Basic ", &u, &p), ISSO_ERR_INVALID);
	assert_int_equal(parse_basic_auth(pool, "Bearer YTpi", &u, &p), ISSO_ERR_INVALID);
	assert_int_equal(parse_basic_auth(pool, "BasicYTpi", &u, &p), ISSO_ERR_INVALID);
	assert_int_equal(parse_basic_auth(pool, NULL, &u, &p), ISSO_ERR_INVALID);
	/* "a\0:b" decoded */
	assert_int_equal(parse_basic_auth(pool, "Basic YQA6Yg==", &u, &p), ISSO_ERR_INVALID);

	{
		char *big = pool_alloc(pool, 5000);

		memcpy(big, "Basic ", 6);
		memset(big + 6, 'A', 4200);
		assert_int_equal(parse_basic_auth(pool, big, &u, &p), ISSO_ERR_LIMIT);
	}
}

static void
test_bearer(void **state)
{
	assert_string_equal(parse_bearer("Bearer abc.DEF-123_~+/=="), "abc.DEF-123_~+/==");
	assert_string_equal(parse_bearer("bearer  tok"), "tok");
	assert_null(parse_bearer("Bearer "));
	assert_null(parse_bearer("Bearer a b"));
	assert_null(parse_bearer("Bearer a=b"));
	assert_null(parse_bearer("Bearer =="));
	assert_null(parse_bearer("Basic abc"));
	assert_null(parse_bearer("Bearerabc"));
	assert_null(parse_bearer(NULL));
	/* Other token68 schemes (RFC 9449 §7.1 DPoP) by name. */
	assert_string_equal(parse_auth_token("DPoP abc-_.~+/=", "DPoP"), "abc-_.~+/=");
	assert_string_equal(parse_auth_token("dpop tok", "DPoP"), "tok");
	assert_null(parse_auth_token("Bearer tok", "DPoP"));
	assert_null(parse_auth_token("DPoP tok", "Bearer"));
	assert_null(parse_auth_token("DPoPtok", "DPoP"));
	assert_null(parse_auth_token("DPoP a b", "DPoP"));
	assert_null(parse_auth_token("DPoP ", "DPoP"));
}

static void
test_pct(void **state)
{
	struct pool *pool = *state;
	char *out;
	const char *enc;

	enc = parse_pct_encode(pool, "a b&c/é~-._=+");
	assert_string_equal(enc, "a%20b%26c%2F%C3%A9~-._%3D%2B");
	assert_string_equal(parse_pct_encode(pool, NULL), "");
	assert_int_equal(parse_pct_decode(pool, enc, strlen(enc), false, &out), 0);
	assert_string_equal(out, "a b&c/é~-._=+");
	assert_int_equal(parse_pct_decode(pool, "a+b", 3, false, &out), 0);
	assert_string_equal(out, "a+b");
	assert_int_equal(parse_pct_decode(pool, "a+b", 3, true, &out), 0);
	assert_string_equal(out, "a b");
	/* only len bytes are read */
	assert_int_equal(parse_pct_decode(pool, "ab%zz", 2, false, &out), 0);
	assert_string_equal(out, "ab");
	assert_int_equal(parse_pct_decode(pool, "%4", 2, false, &out), ISSO_ERR_INVALID);
	assert_null(out);
	assert_int_equal(parse_pct_decode(pool, "%00", 3, false, &out), ISSO_ERR_INVALID);
	assert_int_equal(parse_pct_decode(pool, "%ED%BF%BF", 9, false, &out), ISSO_ERR_INVALID);
}

static void
test_utf8(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
	    {"", true},
	    {"ascii \x7f", true},
	    {"\xc2\x80", true},          /* U+0080 */
	    {"\xdf\xbf", true},          /* U+07FF */
	    {"\xe0\xa0\x80", true},      /* U+0800 */
	    {"\xef\xbf\xbf", true},      /* U+FFFF */
	    {"\xed\x9f\xbf", true},      /* U+D7FF */
	    {"\xee\x80\x80", true},      /* U+E000 */
	    {"\xf0\x90\x80\x80", true},  /* U+10000 */
	    {"\xf4\x8f\xbf\xbf", true},  /* U+10FFFF */
	    {"\xc0\x80", false},         /* overlong NUL */
	    {"\xc1\xbf", false},         /* overlong */
	    {"\xe0\x80\x80", false},     /* overlong */
	    {"\xe0\x9f\xbf", false},     /* overlong U+07FF */
	    {"\xf0\x80\x80\x80", false}, /* overlong */
	    {"\xf0\x8f\xbf\xbf", false}, /* overlong U+FFFF */
	    {"\xed\xa0\x80", false},     /* U+D800 */
	    {"\xed\xbf\xbf", false},     /* U+DFFF */
	    {"\xf4\x90\x80\x80", false}, /* U+110000 */
	    {"\xf5\x80\x80\x80", false},
	    {"\xff", false},
	    {"\x80", false},                    /* stray continuation */
	    {"\xc3", false},                    /* truncated */
	    {"\xe4\xb8", false},                /* truncated */
	    {"\xf0\x90\x80", false},            /* truncated */
	    {"\xc3\x28", false},                /* bad continuation */
	    {"\xe4\xb8\xad\xe6\x96\x87", true}, /* 中文 */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse_utf8_valid(cases[i].s, strlen(cases[i].s)) != cases[i].ok)
			fail_msg("case %zu", i);
	}
	/* embedded NUL is a valid code point for the validator itself */
	assert_true(parse_utf8_valid("a\0b", 3));
	/* the length bounds the scan */
	assert_true(parse_utf8_valid("\xe4\xb8\xad", 0));
	assert_false(parse_utf8_valid("\xe4\xb8\xad", 2));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_urlencoded_basic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_urlencoded_duplicates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_urlencoded_plus_and_escapes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_urlencoded_empty_segments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_urlencoded_bad, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_urlencoded_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cookies, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_basic_auth, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bearer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pct, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_utf8, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
