/* CSRF tokens: a random per-browser cookie and, per form, an HMAC of it
 * bound to the form's purpose (a variant of the signed double-submit
 * cookie pattern). */
#include <string.h>

#include "http/csrf.h"
#include "http/http-private.h"
#include "lib/pool.h"
#include "lib/secret.h"

#define CSRF_COOKIE      "isso_b"
#define CSRF_FIELD       "csrf"
#define CSRF_COOKIE_LEN  43 /* secret_token(32) */
#define CSRF_COOKIE_LIFE (365L * 24 * 3600)

/* A browser cookie we could have issued: 43 base64url characters. */
static bool
browser_id_ok(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return false;
	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return n == CSRF_COOKIE_LEN;
}

/* MAC of "<browser id>|<purpose>" into out. */
static void
csrf_mac(struct http_req *req, const struct secret_keys *keys, const char *browser,
         const char *purpose, char out[44])
{
	char *msg = pool_printf(http_pool(req), "%s|%s", browser, purpose != NULL ? purpose : "");

	secret_mac(keys, msg, out);
	explicit_bzero(msg, strlen(msg));
}

const char *
csrf_token(struct http_req *req, const struct secret_keys *keys, const char *purpose)
{
	const char *browser = http_response_cookie(req, CSRF_COOKIE);
	char fresh[64];
	char mac[44];
	const char *ret;

	if (!browser_id_ok(browser))
		browser = http_cookie(req, CSRF_COOKIE);
	if (!browser_id_ok(browser)) {
		secret_token(32, fresh);
		http_set_cookie(req, CSRF_COOKIE, fresh, CSRF_COOKIE_LIFE,
		                HTTP_COOKIE_HTTPONLY | HTTP_COOKIE_LAX);
		browser = fresh;
	}
	csrf_mac(req, keys, browser, purpose, mac);
	ret = pool_strdup(http_pool(req), mac);
	explicit_bzero(fresh, sizeof(fresh));
	explicit_bzero(mac, sizeof(mac));
	return ret;
}

bool
csrf_check(struct http_req *req, const struct secret_keys *keys, const char *purpose)
{
	const char *browser = http_cookie(req, CSRF_COOKIE);
	const char *sent = http_form(req, CSRF_FIELD);
	char mac[44];
	bool ok = false;

	if (!browser_id_ok(browser) || sent == NULL)
		goto out;
	csrf_mac(req, keys, browser, purpose, mac);
	ok = secret_equal(mac, sent);
	explicit_bzero(mac, sizeof(mac));
out:
	return ok;
}
