/* RFC 6455 framing. Only what a server needs: client frames are always
 * masked (§5.1), ours never are. */
#include "cardagent/ws.h"

#include <string.h>

#include <openssl/sha.h>

#include "lib/b64.h"
#include "lib/utf8.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

bool
ws_accept(const char *key, char out[29])
{
	unsigned char raw[18], md[SHA_DIGEST_LENGTH];
	char cat[24 + sizeof(WS_GUID)];
	size_t n = strlen(key);

	if (n != 24 || b64_decode(key, n, raw, sizeof(raw)) != 16)
		return false;
	memcpy(cat, key, 24);
	memcpy(cat + 24, WS_GUID, sizeof(WS_GUID));
	SHA1((const unsigned char *)cat, strlen(cat), md);
	b64_encode(md, sizeof(md), out);
	return true;
}

long
ws_parse(unsigned char *buf, size_t len, struct ws_frame *f)
{
	size_t hlen = 2, plen;
	unsigned char *mask;

	if (len < 2)
		return 0;
	f->fin = (buf[0] & 0x80) != 0;
	f->opcode = buf[0] & 0x0f;
	if (buf[0] & 0x70)
		return -WS_CLOSE_PROTOCOL; /* no extension was negotiated */
	if (!(buf[1] & 0x80))
		return -WS_CLOSE_PROTOCOL; /* §5.1: clients mask */
	switch (f->opcode) {
	case WS_CONT:
	case WS_TEXT:
	case WS_BINARY:
	case WS_CLOSE:
	case WS_PING:
	case WS_PONG:
		break;
	default:
		return -WS_CLOSE_PROTOCOL;
	}
	plen = buf[1] & 0x7f;
	if (plen == 126) {
		if (len < 4)
			return 0;
		plen = (size_t)buf[2] << 8 | buf[3];
		if (plen < 126)
			return -WS_CLOSE_PROTOCOL; /* §5.2: minimal length encoding */
		hlen = 4;
	} else if (plen == 127) {
		if (len < 10)
			return 0;
		if (buf[2] & 0x80)
			return -WS_CLOSE_PROTOCOL;
		/* 64-bit lengths: anything that needs one is over our limit,
		 * and a shorter length in this form is not minimal (§5.2). */
		if (buf[2] | buf[3] | buf[4] | buf[5] | buf[6] | buf[7])
			return -WS_CLOSE_TOO_BIG;
		return -WS_CLOSE_PROTOCOL;
	}
	if (f->opcode >= WS_CLOSE) {
		if (!f->fin || plen > WS_MAX_CONTROL)
			return -WS_CLOSE_PROTOCOL;
	} else if (plen > WS_MAX_MESSAGE) {
		return -WS_CLOSE_TOO_BIG;
	}
	if (len < hlen + 4 + plen)
		return 0;
	mask = buf + hlen;
	f->payload = buf + hlen + 4;
	f->len = plen;
	for (size_t i = 0; i < plen; i++)
		f->payload[i] ^= mask[i & 3];
	return (long)(hlen + 4 + plen);
}

size_t
ws_header(unsigned char *out, int opcode, size_t len)
{
	out[0] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		out[1] = (unsigned char)len;
		return 2;
	}
	if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (unsigned char)(len >> 8);
		out[3] = (unsigned char)len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (unsigned char)((unsigned long long)len >> (56 - 8 * i));
	return 10;
}

bool
ws_close_payload_ok(const unsigned char *p, size_t len, int *code_r)
{
	int code;

	*code_r = WS_CLOSE_NORMAL;
	if (len == 0)
		return true;
	if (len == 1)
		return false;
	code = p[0] << 8 | p[1];
	/* §7.4.1: 1004-1006 and 1015 are never sent; 1016-2999 are reserved. */
	if (code < 1000 || (code >= 1004 && code <= 1006) || (code >= 1015 && code < 3000) ||
	    code >= 5000)
		return false;
	if (!utf8_valid((const char *)p + 2, len - 2))
		return false;
	*code_r = code;
	return true;
}
