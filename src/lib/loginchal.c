/* The card login challenge's text: made by issod, checked by issod and by
 * isso-cardagent. See loginchal.h. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/isso.h"
#include "lib/loginchal.h"
#include "lib/xmalloc.h"

static bool
issuer_ok(const char *s, size_t n)
{
	size_t skip;

	if (n == 0 || n > LOGIN_CHAL_ISSUER_MAX)
		return false;
	if (n > 8 && memcmp(s, "https://", 8) == 0)
		skip = 8;
	else if (n > 7 && memcmp(s, "http://", 7) == 0)
		skip = 7;
	else
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '@' || c == '\\')
			return false;
	}
	/* a host follows the scheme */
	return s[skip] != '/' && s[skip] != ':';
}

static bool
nonce_ok(const char *s, size_t n)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                               "0123456789-_";

	if (n != LOGIN_CHAL_NONCE_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(alphabet, s[i]) == NULL)
			return false;
	return true;
}

/* n decimal digits at s -> *v. */
static bool
digits(const char *s, size_t n, int *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (s[i] - '0');
	}
	return true;
}

/* "YYYY-MM-DDTHH:MM:SSZ", a real calendar date and time. */
static bool
time_parse(const char *s, size_t n, int64_t *t_r)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, se;
	struct tm tm;
	time_t t;

	if (n != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
	    s[19] != 'Z')
		return false;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
	    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
		return false;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    se > 59)
		return false;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*t_r = (int64_t)t;
	return true;
}

char *
login_chal_format(const char *issuer, const char *nonce, int64_t when)
{
	time_t t = (time_t)when;
	char stamp[32];
	struct tm tm;

	if (issuer == NULL || nonce == NULL || !issuer_ok(issuer, strlen(issuer)) ||
	    !nonce_ok(nonce, strlen(nonce)) || when < 0 || gmtime_r(&t, &tm) == NULL ||
	    tm.tm_year + 1900 > 9999 ||
	    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
		return NULL;
	return xasprintf("%s\n%s\n%s\n%s", LOGIN_CHAL_TAG, issuer, nonce, stamp);
}

int
login_chal_parse(const unsigned char *text, size_t len, struct login_chal *out_r)
{
	const char *s = (const char *)text, *end = s + len, *line[4];
	size_t n[4];
	int i;

	memset(out_r, 0, sizeof(*out_r));
	if (text == NULL || len > LOGIN_CHAL_MAX)
		return ISSO_ERR_INVALID;
	for (i = 0; i < 4; i++) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));

		line[i] = s;
		if (i < 3) {
			if (nl == NULL)
				return ISSO_ERR_INVALID;
			n[i] = (size_t)(nl - s);
			s = nl + 1;
		} else {
			if (nl != NULL)
				return ISSO_ERR_INVALID;
			n[i] = (size_t)(end - s);
		}
	}
	if (n[0] != sizeof(LOGIN_CHAL_TAG) - 1 || memcmp(line[0], LOGIN_CHAL_TAG, n[0]) != 0)
		return ISSO_ERR_INVALID;
	if (!issuer_ok(line[1], n[1]) || memchr(line[1], '\0', n[1]) != NULL)
		return ISSO_ERR_INVALID;
	if (!nonce_ok(line[2], n[2]))
		return ISSO_ERR_INVALID;
	if (!time_parse(line[3], n[3], &out_r->time)) {
		memset(out_r, 0, sizeof(*out_r));
		return ISSO_ERR_INVALID;
	}
	memcpy(out_r->issuer, line[1], n[1]);
	memcpy(out_r->nonce, line[2], n[2]);
	return 0;
}

const char *
login_chal_issuer_origin(const char *issuer, char *out, size_t n)
{
	const char *host = strstr(issuer, "://");
	size_t len;

	if (host == NULL)
		return NULL;
	host += 3;
	len = (size_t)(host - issuer) + strcspn(host, "/");
	if (len + 1 > n)
		return NULL;
	memcpy(out, issuer, len);
	out[len] = '\0';
	return out;
}
