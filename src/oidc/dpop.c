/* DPoP (RFC 9449): checking the proof a client sends in the DPoP header,
 * and the URL comparison its htu claim needs. */
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "http/http.h"
#include "jose/jose.h"
#include "lib/b64.h"
#include "lib/hex.h"
#include "lib/isso.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define DPOP_MAX     8192 /* bytes of a proof */
#define DPOP_JTI_MAX 256
#define DPOP_URL_MAX 2048

const char *const oidc_dpop_algs[] = {"ES256", "RS256", "PS256", NULL};

static bool
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Appends c to out (size n) at *len; false when it does not fit. */
static bool
put(char *out, size_t n, size_t *len, char c)
{
	if (*len + 1 >= n)
		return false;
	out[(*len)++] = c;
	out[*len] = '\0';
	return true;
}

bool
oidc_dpop_htu_normalize(const char *url, char *out, size_t n)
{
	const char *p, *auth, *auth_end, *port = NULL, *host_end;
	size_t len = 0, slen;
	bool https, ok = false;

	if (n == 0)
		return false;
	out[0] = '\0';
	if (url == NULL || strnlen(url, DPOP_URL_MAX + 1) > DPOP_URL_MAX)
		goto out;
	for (p = url; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			goto out;
	}
	/* RFC 3986 §6.2.2.1: scheme and host are case-insensitive. */
	p = strstr(url, "://");
	if (p == NULL)
		goto out;
	slen = (size_t)(p - url);
	if (slen == 5 && strncasecmp(url, "https", 5) == 0)
		https = true;
	else if (slen == 4 && strncasecmp(url, "http", 4) == 0)
		https = false;
	else
		goto out;
	for (const char *s = https ? "https://" : "http://"; *s != '\0'; s++) {
		if (!put(out, n, &len, *s))
			goto out;
	}
	auth = p + 3;
	auth_end = auth + strcspn(auth, "/?#");
	if (auth_end == auth || memchr(auth, '@', (size_t)(auth_end - auth)) != NULL ||
	    memchr(auth, '%', (size_t)(auth_end - auth)) != NULL)
		goto out;
	if (*auth == '[') {
		host_end = memchr(auth, ']', (size_t)(auth_end - auth));
		if (host_end == NULL)
			goto out;
		host_end++;
	} else {
		host_end = memchr(auth, ':', (size_t)(auth_end - auth));
		if (host_end == NULL)
			host_end = auth_end;
	}
	if (host_end == auth)
		goto out;
	for (const char *h = auth; h < host_end; h++) {
		char c = *h;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!put(out, n, &len, c))
			goto out;
	}
	if (host_end < auth_end) {
		if (*host_end != ':')
			goto out;
		port = host_end + 1;
		if (strspn(port, "0123456789") != (size_t)(auth_end - port) || auth_end - port > 5)
			goto out;
		while (port < auth_end - 1 && *port == '0')
			port++;
		/* §6.2.3: the scheme's default port, or an empty one, is left
		 * out. */
		if (port == auth_end ||
		    (https && auth_end - port == 3 && strncmp(port, "443", 3) == 0) ||
		    (!https && auth_end - port == 2 && strncmp(port, "80", 2) == 0))
			port = NULL;
	}
	if (port != NULL) {
		if (!put(out, n, &len, ':'))
			goto out;
		for (const char *d = port; d < auth_end; d++) {
			if (!put(out, n, &len, *d))
				goto out;
		}
	}
	/* §6.2.3: an empty path is "/". */
	if (*auth_end != '/' && !put(out, n, &len, '/'))
		goto out;
	/* The path; RFC 9449 §4.3 ignores query and fragment. */
	for (p = auth_end; *p != '\0' && *p != '?' && *p != '#'; p++) {
		if (*p == '%') {
			int hi = hex_digit_value((unsigned char)p[1]),
			    lo = hi < 0 ? -1 : hex_digit_value((unsigned char)p[2]);
			unsigned char c;
			if (hi < 0 || lo < 0)
				goto out;
			c = (unsigned char)(hi * 16 + lo);
			/* §6.2.2.1–2: upper-case hex, unreserved decoded. */
			if (is_unreserved(c)) {
				if (!put(out, n, &len, (char)c))
					goto out;
			} else if (!put(out, n, &len, '%') ||
			           !put(out, n, &len, hex_digit_upper(c >> 4)) ||
			           !put(out, n, &len, hex_digit_upper(c))) {
				goto out;
			}
			p += 2;
		} else if (!put(out, n, &len, *p)) {
			goto out;
		}
	}
	ok = true;
out:
	if (!ok)
		out[0] = '\0';
	return ok;
}

void
oidc_dpop_ath(const char *access_token, char out[44])
{
	unsigned char md[32];

	secret_sha256(access_token, strlen(access_token), md);
	b64url_encode(md, sizeof(md), out);
}

/* Three base64url parts separated by dots, of sane size. */
static bool
compact_form(const char *s)
{
	size_t n = strnlen(s, DPOP_MAX + 1), dots = 0;

	if (n == 0 || n > DPOP_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.')
			dots++;
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		           (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return dots == 2;
}

static const char *
method_name(struct http_req *req)
{
	switch (http_method(req)) {
	case HTTP_GET:
		return "GET";
	case HTTP_HEAD:
		return "HEAD";
	case HTTP_POST:
		return "POST";
	default:
		return "";
	}
}

int
oidc_dpop_check(struct isso_app *app, struct http_req *req, const char *access_token,
                char jkt_r[44], const char **why_r)
{
	json_t *hdr = NULL, *claims = NULL, *verified = NULL, *jwks = NULL, *key = NULL, *v;
	const char *proof, *typ, *alg, *jti, *htm, *htu, *ath;
	char jkt[44], want_ath[44], got[DPOP_URL_MAX + 1], want[DPOP_URL_MAX + 1], id[65];
	char *expected = NULL, *replay = NULL;
	int64_t now = app_now();
	double iat;
	int counter = 0, ret = ISSO_ERR_INVALID;
	bool alg_ok = false;

	jkt_r[0] = '\0';
	*why_r = NULL;
	switch (http_header_count(req, "DPoP")) {
	case 0:
		return 0;
	case 1:
		break;
	default:
		*why_r = "more than one DPoP header";
		goto out;
	}
	/* RFC 9449 §4.3: one well-formed JWT with typ, alg and a public jwk. */
	proof = http_header(req, "DPoP");
	*why_r = "malformed DPoP proof";
	if (proof == NULL || !compact_form(proof) ||
	    jose_decode_unverified(proof, &hdr, &claims) < 0)
		goto out;
	typ = json_string_value(json_object_get(hdr, "typ"));
	if (typ == NULL || strcasecmp(typ, "dpop+jwt") != 0) {
		*why_r = "DPoP proof typ must be dpop+jwt";
		goto out;
	}
	alg = json_string_value(json_object_get(hdr, "alg"));
	for (const char *const *a = oidc_dpop_algs; alg != NULL && *a != NULL; a++)
		alg_ok |= strcmp(*a, alg) == 0;
	if (!alg_ok) {
		*why_r = "DPoP proof alg not supported";
		goto out;
	}
	v = json_object_get(hdr, "jwk");
	if (!json_is_object(v) || jose_jwk_has_private(v)) {
		*why_r = "DPoP proof jwk missing or not a public key";
		goto out;
	}
	if (jose_jwk_thumbprint(v, jkt) < 0) {
		*why_r = "DPoP proof jwk not usable";
		goto out;
	}
	key = json_deep_copy(v);
	/* The key is the one in the header: a kid there names it. */
	if (json_is_string(json_object_get(hdr, "kid")))
		json_object_set(key, "kid", json_object_get(hdr, "kid"));
	else
		json_object_del(key, "kid");
	jwks = json_pack("{s:[O]}", "keys", key);
	if (jwks == NULL || jose_verify(proof, jwks, oidc_dpop_algs, &verified, why_r) < 0) {
		*why_r = "DPoP proof signature invalid";
		goto out;
	}
	jti = json_string_value(json_object_get(verified, "jti"));
	if (jti == NULL || jti[0] == '\0' || strlen(jti) > DPOP_JTI_MAX) {
		*why_r = "DPoP proof jti missing";
		goto out;
	}
	htm = json_string_value(json_object_get(verified, "htm"));
	if (htm == NULL || strcmp(htm, method_name(req)) != 0) {
		*why_r = "DPoP proof htm does not match the request method";
		goto out;
	}
	htu = json_string_value(json_object_get(verified, "htu"));
	expected = xasprintf("%s%s", app->issuer, http_path(req));
	if (htu == NULL || !oidc_dpop_htu_normalize(htu, got, sizeof(got)) ||
	    !oidc_dpop_htu_normalize(expected, want, sizeof(want)) || strcmp(got, want) != 0) {
		*why_r = "DPoP proof htu does not match the request URI";
		goto out;
	}
	v = json_object_get(verified, "iat");
	if (!json_is_number(v)) {
		*why_r = "DPoP proof iat missing";
		goto out;
	}
	iat = json_number_value(v);
	if (iat < (double)(now - OIDC_DPOP_IAT_PAST) ||
	    iat > (double)(now + OIDC_DPOP_IAT_FUTURE)) {
		*why_r = "DPoP proof iat outside the accepted window";
		goto out;
	}
	if (access_token != NULL) {
		oidc_dpop_ath(access_token, want_ath);
		ath = json_string_value(json_object_get(verified, "ath"));
		if (ath == NULL || strcmp(ath, want_ath) != 0) {
			*why_r = "DPoP proof ath does not match the access token";
			goto out;
		}
	}
	/* §11.1: each proof once, on every node, while its iat is
	 * acceptable. */
	replay = xasprintf("%s|%s", jkt, jti);
	secret_sha256_hex(replay, strlen(replay), id);
	if (store_eph_incr(app->store, "dpop_jti", id, now,
	                   now + OIDC_DPOP_IAT_PAST + OIDC_DPOP_IAT_FUTURE + 1, &counter) < 0) {
		*why_r = "temporarily unavailable";
		ret = ISSO_ERR_STORE;
		goto out;
	}
	if (counter != 1) {
		*why_r = "DPoP proof replayed";
		goto out;
	}
	memcpy(jkt_r, jkt, sizeof(jkt));
	*why_r = NULL;
	ret = 0;
out:
	free(replay);
	free(expected);
	json_decref(key);
	json_decref(jwks);
	json_decref(verified);
	json_decref(hdr);
	json_decref(claims);
	return ret;
}
