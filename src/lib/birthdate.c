/* Dates as people type them (西元 and 民國 years). */
#include <stdio.h>
#include <string.h>

#include "lib/birthdate.h"
#include "lib/idnum.h"

#define TYPED_MAX 64

/* One character of the typed text, as a byte the parser reads: digits,
 * the separators - / . and space, Y M D for 年 月 日, R for 民國, A for 西元. */
struct token_map {
	const char *utf8;
	char as;
};

static const struct token_map tokens[] = {
    {"\xE5\xB9\xB4", 'Y'},             /* 年 */
    {"\xE6\x9C\x88", 'M'},             /* 月 */
    {"\xE6\x97\xA5", 'D'},             /* 日 */
    {"\xE6\xB0\x91\xE5\x9C\x8B", 'R'}, /* 民國 */
    {"\xE8\xA5\xBF\xE5\x85\x83", 'A'}, /* 西元 */
    {"\xE3\x80\x80", ' '},             /* ideographic space */
    {"\xEF\xBC\x8D", '-'},             /* full-width - */
    {"\xEF\xBC\x8F", '/'},             /* full-width / */
    {"\xEF\xBC\x8E", '.'},             /* full-width . */
};

/* Maps s onto the parser's bytes in out (size n); false for anything else. */
static bool
simplify(const char *s, char *out, size_t n)
{
	size_t len = 0, i;
	bool found;

	while (*s != '\0') {
		if (len + 1 >= n)
			return false;
		unsigned char c = (unsigned char)*s;
		if ((c >= '0' && c <= '9') || c == '-' || c == '/' || c == '.' || c == ' ') {
			out[len++] = (char)c;
			s++;
			continue;
		}
		/* Full-width digits U+FF10..U+FF19: EF BC 90..99. */
		if (c == 0xEF && (unsigned char)s[1] == 0xBC && (unsigned char)s[2] >= 0x90 &&
		    (unsigned char)s[2] <= 0x99) {
			out[len++] = (char)('0' + ((unsigned char)s[2] - 0x90));
			s += 3;
			continue;
		}
		found = false;
		for (i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
			size_t tl = strlen(tokens[i].utf8);
			if (strncmp(s, tokens[i].utf8, tl) == 0) {
				out[len++] = tokens[i].as;
				s += tl;
				found = true;
				break;
			}
		}
		if (!found)
			return false;
	}
	out[len] = '\0';
	return true;
}

static const char *
skip_spaces(const char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

/* Reads up to max digits; their count in *n_r. */
static const char *
digits(const char *p, int max, int *value_r, int *n_r)
{
	int v = 0, n = 0;

	while (*p >= '0' && *p <= '9' && n < max) {
		v = v * 10 + (*p - '0');
		p++;
		n++;
	}
	*value_r = v;
	*n_r = n;
	return p;
}

static int
value_of(const char *p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++)
		v = v * 10 + (p[i] - '0');
	return v;
}

/* Reads the separator after a part: - / . 年 月 (spaces around allowed) or
 * spaces alone (' '). NULL when there is none. */
static const char *
separator(const char *p, char *sep_r)
{
	const char *q = skip_spaces(p);

	if (*q == '-' || *q == '/' || *q == '.' || *q == 'Y' || *q == 'M') {
		*sep_r = *q;
		return skip_spaces(q + 1);
	}
	if (q != p && *q >= '0' && *q <= '9') {
		*sep_r = ' ';
		return q;
	}
	return NULL;
}

enum date_typed
date_parse_typed(const char *s, const char *today, char out[11])
{
	char buf[TYPED_MAX + 1], date[11];
	const char *p, *start;
	bool roc = false, ad = false;
	int y = 0, m = 0, d = 0, ny = 0, nm = 0, nd = 0, run;
	char sep1 = '\0', sep2 = '\0';

	if (s == NULL || strlen(s) > TYPED_MAX || !simplify(s, buf, sizeof(buf)))
		return DATE_FORMAT;
	p = skip_spaces(buf);
	if (*p == 'R' || *p == 'A') {
		roc = *p == 'R';
		ad = *p == 'A';
		p = skip_spaces(p + 1);
	}
	start = p;
	for (run = 0; p[run] >= '0' && p[run] <= '9'; run++)
		;
	if (*skip_spaces(p + run) == '\0' && run >= 6) {
		/* Digits only: 19850314, 0740314, or 民國 740314. */
		if (run == 8 && !roc) {
			ny = 4;
		} else if (run == 7 && !ad) {
			ny = 3;
			roc = true;
		} else if (run == 6 && roc) {
			ny = 2;
		} else {
			return DATE_FORMAT;
		}
		y = value_of(start, ny);
		m = value_of(start + ny, 2);
		d = value_of(start + ny + 2, 2);
	} else {
		p = digits(p, 4, &y, &ny);
		if (ny == 0 || (p = separator(p, &sep1)) == NULL || sep1 == 'M')
			return DATE_FORMAT;
		p = digits(p, 2, &m, &nm);
		if (nm == 0 || (p = separator(p, &sep2)) == NULL)
			return DATE_FORMAT;
		/* 年 goes with 月; otherwise the same separator twice. */
		if (sep1 == 'Y' ? sep2 != 'M' : sep2 != sep1)
			return DATE_FORMAT;
		p = digits(p, 2, &d, &nd);
		if (nd == 0)
			return DATE_FORMAT;
		p = skip_spaces(p);
		if (*p == 'D' && sep1 == 'Y')
			p = skip_spaces(p + 1);
		if (*p != '\0')
			return DATE_FORMAT;
	}
	/* Which calendar: 民國 when said, or when the year is short. */
	if (ad && ny != 4)
		return DATE_FORMAT;
	if (!ad && (roc || ny < 4)) {
		if (y < 1)
			return DATE_INVALID;
		y += 1911;
	} else if (ny != 4) {
		return DATE_FORMAT;
	}
	if (y < 1900)
		return DATE_TOO_EARLY;
	if (y > 2100)
		return today != NULL ? DATE_FUTURE : DATE_INVALID;
	/* y has four digits, m and d at most two: exactly ten characters. */
	snprintf(date, sizeof(date), "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u,
	         (unsigned)d % 100u);
	if (!date_is_valid(date))
		return DATE_INVALID;
	if (today != NULL && strcmp(date, today) > 0)
		return DATE_FUTURE;
	memcpy(out, date, sizeof(date));
	return DATE_OK;
}
