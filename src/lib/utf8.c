/* UTF-8 validation. */
#include <stdint.h>

#include "lib/utf8.h"

/* Length of the valid sequence at s[i] (1–4), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t len, size_t i)
{
	unsigned char c = s[i];
	size_t n;
	uint32_t cp, min;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 1;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		/* 0x80-0xc1: stray continuation or overlong lead;
		 * 0xf5-0xff: beyond U+10FFFF. */
		return 0;
	}
	if (len - i <= n)
		return 0;
	for (size_t k = 1; k <= n; k++) {
		if ((s[i + k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i + k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n + 1;
}

bool
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0, n; i < len; i += n) {
		if ((n = utf8_seq(p, len, i)) == 0)
			return false;
	}
	return true;
}

bool
utf8_printable(const char *s, size_t len, bool newlines)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0, n; i < len; i += n) {
		unsigned char c = p[i];
		if (c < 0x20 || c == 0x7f) {
			if (!(newlines && (c == '\n' || c == '\r')))
				return false;
		}
		if ((n = utf8_seq(p, len, i)) == 0)
			return false;
	}
	return true;
}
