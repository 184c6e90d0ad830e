/* Parsers for untrusted request data: urlencoded pairs, cookies,
 * Authorization headers, percent-encoding and UTF-8 validation. */
#include <string.h>
#include <strings.h>

#include "http/parse.h"
#include "lib/hex.h"
#include "lib/utf8.h"
#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/pool.h"

/* Longest Authorization header parse_basic_auth() accepts. */
#define PARSE_AUTH_MAX 4096

bool
parse_utf8_valid(const char *s, size_t len)
{
	return utf8_valid(s, len);
}

/* Decodes in[0..len) into out (room for len + 1). Returns the decoded
 * length or -1 on a bad escape, a NUL byte or invalid UTF-8. */
static long
pct_decode_into(const char *in, size_t len, bool plus_is_space, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return -1;
			hi = hex_digit_value((unsigned char)in[i + 1]);
			lo = hex_digit_value((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		}
		if (c == '\0')
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	if (!parse_utf8_valid(out, o))
		return -1;
	return (long)o;
}

int
parse_pct_decode(struct pool *pool, const char *in, size_t len, bool plus_is_space, char **out_r)
{
	char *out;
	int ret = ISSO_ERR_INVALID;

	*out_r = NULL;
	if (in == NULL)
		goto out;
	out = pool_alloc(pool, len + 1);
	if (pct_decode_into(in, len, plus_is_space, out) < 0)
		goto out;
	*out_r = out;
	ret = 0;
out:
	return ret;
}

char *
parse_pct_encode(struct pool *pool, const char *in)
{
	size_t len, o = 0;
	char *out;

	if (in == NULL)
		in = "";
	len = strlen(in);
	out = pool_alloc(pool, len * 3 + 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		/* RFC 3986 §2.3 unreserved */
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex_digit_upper(c >> 4);
			out[o++] = hex_digit_upper(c);
		}
	}
	out[o] = '\0';
	return out;
}

int
parse_urlencoded(struct pool *pool, const char *data, size_t len, size_t max_pairs,
                 struct http_kvs *out)
{
	size_t npairs = 0, i;
	struct http_kv *v = NULL;
	int ret = ISSO_ERR_INVALID;

	out->v = NULL;
	out->n = 0;
	if (data == NULL || len == 0) {
		ret = 0;
		goto out;
	}
	if (memchr(data, '\0', len) != NULL)
		goto out;

	/* First pass: count non-empty segments to bound the allocation. */
	i = 0;
	while (i < len) {
		const char *amp = memchr(data + i, '&', len - i);
		size_t seg = (amp != NULL ? (size_t)(amp - data) : len) - i;

		if (seg > 0 && data[i] != '=')
			npairs++;
		i += seg + 1;
	}
	if (npairs > max_pairs) {
		ret = ISSO_ERR_LIMIT;
		goto out;
	}
	if (npairs == 0) {
		ret = 0;
		goto out;
	}
	v = pool_alloc(pool, npairs * sizeof(*v));

	npairs = 0;
	i = 0;
	while (i < len) {
		const char *amp = memchr(data + i, '&', len - i);
		size_t seg = (amp != NULL ? (size_t)(amp - data) : len) - i;
		const char *s = data + i;
		const char *eq;
		size_t nlen, vlen;
		char *name, *value;

		i += seg + 1;
		/* Empty segments ("a=1&&b=2", a trailing '&') and pairs with
		 * an empty name carry nothing: skip them. */
		if (seg == 0 || s[0] == '=')
			continue;
		eq = memchr(s, '=', seg);
		nlen = eq != NULL ? (size_t)(eq - s) : seg;
		vlen = eq != NULL ? seg - nlen - 1 : 0;
		name = pool_alloc(pool, nlen + 1);
		value = pool_alloc(pool, vlen + 1);
		if (pct_decode_into(s, nlen, true, name) < 0 ||
		    pct_decode_into(eq != NULL ? eq + 1 : "", vlen, true, value) < 0)
			goto out;
		v[npairs].name = name;
		v[npairs].value = value;
		npairs++;
	}
	out->v = v;
	out->n = npairs;
	ret = 0;
out:
	return ret;
}

static bool
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 7230 §3.2.6 tchar */
static bool
is_tchar(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Cookie values: printable ASCII except '"', ',', ';' and '\\' (RFC 6265
 * cookie-octet), plus space and ',', which browsers do send. Anything else
 * (control characters, 8-bit bytes) makes the pair malformed. */
static bool
cookie_value_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == ';' || c == '\\')
			return false;
	}
	return true;
}

int
parse_cookies(struct pool *pool, const char *header, size_t max_pairs, struct http_kvs *out)
{
	size_t cap = 0, n = 0;
	const char *p;
	struct http_kv *v = NULL;

	out->v = NULL;
	out->n = 0;
	if (header == NULL || max_pairs == 0)
		goto out;
	for (p = header; *p != '\0'; p++)
		if (*p == ';')
			cap++;
	cap++;
	if (cap > max_pairs)
		cap = max_pairs;
	v = pool_alloc(pool, cap * sizeof(*v));

	p = header;
	while (*p != '\0' && n < cap) {
		const char *end = strchr(p, ';');
		const char *s, *e, *eq, *vs, *ve;
		bool ok = true;

		if (end == NULL)
			end = p + strlen(p);
		s = p;
		e = end;
		p = *end == ';' ? end + 1 : end;
		while (s < e && is_ows(*s))
			s++;
		while (e > s && is_ows(e[-1]))
			e--;
		eq = memchr(s, '=', (size_t)(e - s));
		if (eq == NULL || eq == s)
			continue;
		for (const char *q = s; q < eq && ok; q++)
			ok = is_tchar((unsigned char)*q);
		if (!ok)
			continue;
		vs = eq + 1;
		ve = e;
		if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
			vs++;
			ve--;
		}
		if (!cookie_value_ok(vs, (size_t)(ve - vs)))
			continue;
		v[n].name = pool_strndup(pool, s, (size_t)(eq - s));
		v[n].value = pool_strndup(pool, vs, (size_t)(ve - vs));
		n++;
	}
	out->v = n > 0 ? v : NULL;
	out->n = n;
out:
	return 0;
}

const char *
http_kvs_get(const struct http_kvs *kvs, const char *name)
{
	if (kvs == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < kvs->n; i++)
		if (strcmp(kvs->v[i].name, name) == 0)
			return kvs->v[i].value;
	return NULL;
}

size_t
http_kvs_count(const struct http_kvs *kvs, const char *name)
{
	size_t n = 0;

	if (kvs == NULL || name == NULL)
		return 0;
	for (size_t i = 0; i < kvs->n; i++)
		if (strcmp(kvs->v[i].name, name) == 0)
			n++;
	return n;
}

/* Matches "<scheme> <rest>" case-insensitively and returns rest with the
 * separating spaces skipped, or NULL. */
static const char *
auth_scheme(const char *header, const char *scheme)
{
	size_t n = strlen(scheme);
	const char *p;

	if (header == NULL || strncasecmp(header, scheme, n) != 0 || header[n] != ' ')
		return NULL;
	p = header + n;
	while (*p == ' ')
		p++;
	return p;
}

int
parse_basic_auth(struct pool *pool, const char *header, char **user_r, char **pass_r)
{
	const char *p;
	size_t len, dmax, ulen, plen;
	unsigned char *dec = NULL;
	const char *colon;
	char *user = NULL, *pass = NULL;
	long n = -1;
	int ret = ISSO_ERR_INVALID;

	*user_r = NULL;
	*pass_r = NULL;
	if (header == NULL)
		goto out;
	len = strnlen(header, PARSE_AUTH_MAX + 1);
	if (len > PARSE_AUTH_MAX) {
		ret = ISSO_ERR_LIMIT;
		goto out;
	}
	p = auth_scheme(header, "Basic");
	if (p == NULL)
		goto out;
	len = strlen(p);
	while (len > 0 && is_ows(p[len - 1]))
		len--;
	if (len == 0)
		goto out;
	dmax = len / 4 * 3 + 3;
	dec = pool_alloc_secret(pool, dmax + 1);
	n = b64_decode(p, len, dec, dmax);
	if (n < 0)
		goto out;
	if (memchr(dec, '\0', (size_t)n) != NULL)
		goto out;
	/* RFC 7617 §2: the user-id cannot contain ':'; the first one splits. */
	colon = memchr(dec, ':', (size_t)n);
	if (colon == NULL)
		goto out;
	ulen = (size_t)(colon - (const char *)dec);
	plen = (size_t)n - ulen - 1;
	/* RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding. */
	user = pool_alloc(pool, ulen + 1);
	pass = pool_alloc_secret(pool, plen + 1);
	if (pct_decode_into((const char *)dec, ulen, true, user) < 0 ||
	    pct_decode_into(colon + 1, plen, true, pass) < 0)
		goto out;
	*user_r = user;
	*pass_r = pass;
	ret = 0;
out:
	return ret;
}

const char *
parse_bearer(const char *header)
{
	return parse_auth_token(header, "Bearer");
}

const char *
parse_auth_token(const char *header, const char *scheme)
{
	const char *p = auth_scheme(header, scheme), *tok;
	const char *ret = NULL;

	if (p == NULL || strlen(p) > PARSE_AUTH_MAX)
		goto out;
	tok = p;
	/* RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" /
	 * "~" / "+" / "/" ) *"=" */
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
	       (*p != '\0' && strchr("-._~+/", *p) != NULL))
		p++;
	if (p == tok)
		goto out;
	while (*p == '=')
		p++;
	if (*p != '\0')
		goto out;
	ret = tok;
out:
	return ret;
}
