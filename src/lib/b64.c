/* Base64 and base64url (RFC 4648). Decoders are strict: no whitespace, no
 * stray padding, and the unused trailing bits must be zero (§3.5). */
#include "lib/b64.h"

#include <limits.h>
#include <stdint.h>

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
b64url_encoded_len(size_t n)
{
	return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

static char *
b64_encode_alpha(const void *data, size_t n, char *out, const char *alpha, int pad)
{
	const unsigned char *p = data;
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		out[o++] = alpha[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)p[i] << 16;
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		if (pad) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

/* Value of c in the alphabet, or -1. */
static int
b64_value(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* Decodes len characters, none of them padding. */
static long
b64_decode_alpha(const char *s, size_t len, unsigned char *out, size_t outmax, int url)
{
	size_t i, o = 0, rem = len % 4, outlen;
	uint32_t v = 0;
	int d, k = 0;

	if (rem == 1)
		return -1;
	outlen = len / 4 * 3 + (rem ? rem - 1 : 0);
	if (outlen > outmax || outlen > LONG_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		if ((d = b64_value((unsigned char)s[i], url)) < 0)
			return -1;
		v = v << 6 | (uint32_t)d;
		if (++k == 4) {
			out[o++] = (unsigned char)(v >> 16);
			out[o++] = (unsigned char)(v >> 8);
			out[o++] = (unsigned char)v;
			v = 0;
			k = 0;
		}
	}
	if (k == 2) {
		if (v & 0xf)
			return -1;
		out[o++] = (unsigned char)(v >> 4);
	} else if (k == 3) {
		if (v & 0x3)
			return -1;
		out[o++] = (unsigned char)(v >> 10);
		out[o++] = (unsigned char)(v >> 2);
	}
	return (long)o;
}

char *
b64url_encode(const void *data, size_t n, char *out)
{
	return b64_encode_alpha(data, n, out, b64_url, 0);
}

long
b64url_decode(const char *s, size_t len, unsigned char *out, size_t outmax)
{
	return b64_decode_alpha(s, len, out, outmax, 1);
}

char *
b64_encode(const void *data, size_t n, char *out)
{
	return b64_encode_alpha(data, n, out, b64_std, 1);
}

long
b64_decode(const char *s, size_t len, unsigned char *out, size_t outmax)
{
	size_t pad = 0;

	if (len % 4 != 0)
		return -1;
	if (len > 0 && s[len - 1] == '=')
		pad++;
	if (len > 1 && s[len - 2] == '=')
		pad++;
	return b64_decode_alpha(s, len - pad, out, outmax, 0);
}
