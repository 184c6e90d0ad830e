/* Unit tests for src/oidc/dpop.c: the htu comparison (RFC 9449 §4.3) and
 * ath (§4.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "oidc/oidc-private.h"

static void
same(const char *url, const char *want)
{
	char out[2100];

	if (!oidc_dpop_htu_normalize(url, out, sizeof(out)))
		fail_msg("refused: %s", url);
	assert_string_equal(out, want);
}

static void
refused(const char *url)
{
	char out[2100];

	if (oidc_dpop_htu_normalize(url, out, sizeof(out)))
		fail_msg("accepted: %s as %s", url, out);
	assert_string_equal(out, "");
}

static void
test_htu_normalize(void **state)
{
	(void)state;
	same("https://sso.gov.taipei/token", "https://sso.gov.taipei/token");
	/* RFC 3986 §6.2.2.1: scheme and host case. */
	same("HTTPS://SSO.Gov.Taipei/token", "https://sso.gov.taipei/token");
	/* The path keeps its case. */
	same("https://sso.gov.taipei/Token", "https://sso.gov.taipei/Token");
	/* §6.2.3: default ports and an empty port go, others stay. */
	same("https://sso.gov.taipei:443/token", "https://sso.gov.taipei/token");
	same("http://127.0.0.1:80/token", "http://127.0.0.1/token");
	same("https://sso.gov.taipei:/token", "https://sso.gov.taipei/token");
	same("https://sso.gov.taipei:0443/token", "https://sso.gov.taipei/token");
	same("https://sso.gov.taipei:8443/token", "https://sso.gov.taipei:8443/token");
	same("http://127.0.0.1:443/token", "http://127.0.0.1:443/token");
	same("https://[::1]:443/token", "https://[::1]/token");
	same("http://[::1]:8080/userinfo", "http://[::1]:8080/userinfo");
	/* An empty path is "/". */
	same("https://sso.gov.taipei", "https://sso.gov.taipei/");
	same("https://sso.gov.taipei?x=1", "https://sso.gov.taipei/");
	/* RFC 9449 §4.3: query and fragment are ignored. */
	same("https://sso.gov.taipei/token?a=b", "https://sso.gov.taipei/token");
	same("https://sso.gov.taipei/token#frag", "https://sso.gov.taipei/token");
	/* §6.2.2.2: unreserved decoded, the rest upper-case hex. */
	same("https://sso.gov.taipei/%74oken", "https://sso.gov.taipei/token");
	same("https://sso.gov.taipei/a%2fb", "https://sso.gov.taipei/a%2Fb");

	refused(NULL);
	refused("");
	refused("/token");
	refused("ftp://sso.gov.taipei/token");
	refused("https:///token");
	refused("https://user@sso.gov.taipei/token");
	refused("https://sso.gov.taipei:44a/token");
	refused("https://sso.gov.taipei:123456/token");
	refused("https://sso.gov.taipei/%zz");
	refused("https://sso.gov.taipei/%4");
	refused("https://sso.gov.taipei/a b");
	refused("https://[::1/token");
	refused("https://sso%2egov.taipei/token");
}

static void
test_htu_bounds(void **state)
{
	char big[2100], small[20];

	(void)state;
	/* Too long for the buffer: refused, never cut. */
	assert_false(oidc_dpop_htu_normalize("https://sso.gov.taipei/token", small, sizeof(small)));
	assert_string_equal(small, "");
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "https://x/", 10);
	big[sizeof(big) - 1] = '\0';
	refused(big);
}

static void
test_ath(void **state)
{
	char out[44];

	(void)state;
	/* RFC 9449 §7.1 example: the token and its ath. */
	oidc_dpop_ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU", out);
	assert_string_equal(out, "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_htu_normalize),
	    cmocka_unit_test(test_htu_bounds),
	    cmocka_unit_test(test_ath),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
