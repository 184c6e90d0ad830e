/* RFC 6455 framing for a server: the handshake's accept value, parsing a
 * client's frames (masked, size-limited) and writing unmasked frames. */
#ifndef ISSO_CARDAGENT_WS_H
#define ISSO_CARDAGENT_WS_H

#include <stdbool.h>
#include <stddef.h>

#define WS_MAX_MESSAGE 8192 /* one message, all fragments together */
#define WS_MAX_CONTROL 125  /* §5.5 */
#define WS_MAX_HEADER  14

enum ws_opcode {
	WS_CONT = 0x0,
	WS_TEXT = 0x1,
	WS_BINARY = 0x2,
	WS_CLOSE = 0x8,
	WS_PING = 0x9,
	WS_PONG = 0xA,
};

/* Close codes (§7.4.1). */
#define WS_CLOSE_NORMAL     1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL   1002
#define WS_CLOSE_DATA       1003
#define WS_CLOSE_BAD_TEXT   1007
#define WS_CLOSE_TOO_BIG    1009

struct ws_frame {
	bool fin;
	int opcode;
	unsigned char *payload; /* inside the parsed buffer, unmasked */
	size_t len;
};

/* Sec-WebSocket-Accept (§4.2.2) for a Sec-WebSocket-Key, which must be
 * base64 of 16 bytes. Returns false for a bad key. */
bool ws_accept(const char *key, char out[29]);

/* Parses the frame at the start of buf[0..len): returns its total size and
 * fills *f (the payload unmasked in place), 0 when more bytes are needed,
 * or minus a close code: reserved bits or opcodes, an unmasked frame, a
 * fragmented or long control frame (1002), a data frame longer than
 * WS_MAX_MESSAGE (1009). */
long ws_parse(unsigned char *buf, size_t len, struct ws_frame *f);

/* Writes the header of an unfragmented server frame into out (room for
 * WS_MAX_HEADER bytes); returns its length. */
size_t ws_header(unsigned char *out, int opcode, size_t len);

/* True when a close frame's payload is acceptable (§5.5.1, §7.4): empty,
 * or a valid code followed by UTF-8. *code_r is the code to echo. */
bool ws_close_payload_ok(const unsigned char *p, size_t len, int *code_r);

#endif
