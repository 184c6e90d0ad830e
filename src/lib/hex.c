#include "lib/hex.h"

#include <string.h>

static const char lower[] = "0123456789abcdef";
static const char upper[] = "0123456789ABCDEF";

int
hex_digit_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char
hex_digit(unsigned int v)
{
	return lower[v & 15];
}

char
hex_digit_upper(unsigned int v)
{
	return upper[v & 15];
}

char *
hex_encode(const void *data, size_t n, char *out)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = lower[p[i] >> 4];
		out[2 * i + 1] = lower[p[i] & 15];
	}
	out[2 * n] = '\0';
	return out;
}

bool
hex_decode(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit_value((unsigned char)s[2 * i]), lo;

		/* s[2i] is checked before s[2i+1] is read: a short string
		 * stops at its NUL. */
		if (hi < 0 || (lo = hex_digit_value((unsigned char)s[2 * i + 1])) < 0) {
			explicit_bzero(out, n);
			return false;
		}
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}
