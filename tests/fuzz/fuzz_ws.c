/* Fuzzes isso-cardagent's WebSocket framing (src/cardagent/ws.c), which
 * reads bytes any local program or web page can send: the input is a
 * stream of client frames, parsed one after another as the agent does,
 * checking ws_parse's promises on each, and close payloads on the way. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cardagent/ws.h"

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf, hdr[WS_MAX_HEADER];
	size_t off = 0;
	int code;

	if (size > 64 * 1024)
		return 0;
	/* A copy: ws_parse unmasks in place. */
	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	while (off < size) {
		struct ws_frame f;
		long n;

		memset(&f, 0, sizeof(f));
		n = ws_parse(buf + off, size - off, &f);
		if (n == 0)
			break; /* needs more bytes */
		if (n < 0) {
			/* a close code the agent sends back */
			if (-n < 1000 || -n > 1015)
				abort();
			break;
		}
		if ((size_t)n > size - off || f.len > WS_MAX_MESSAGE)
			abort();
		if (f.len > 0 &&
		    (f.payload < buf + off || f.payload + f.len > buf + off + (size_t)n))
			abort();
		if (f.opcode >= WS_CLOSE) {
			if (f.len > WS_MAX_CONTROL || !f.fin)
				abort();
			if (f.opcode == WS_CLOSE && ws_close_payload_ok(f.payload, f.len, &code) &&
			    (code < 1000 || code > 4999))
				abort();
		}
		/* Writing a header for a frame of this size stays in bounds. */
		if (ws_header(hdr, WS_TEXT, f.len) > WS_MAX_HEADER)
			abort();
		off += (size_t)n;
	}
	free(buf);
	return 0;
}
