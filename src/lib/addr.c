/* Keys of client addresses for limits. */
#include "lib/addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

const char *
addr_limit_key(const char *addr, char out[ADDR_KEY_MAX])
{
	unsigned char bin[16];
	char text[INET6_ADDRSTRLEN];

	if (addr != NULL && inet_pton(AF_INET, addr, bin) == 1 &&
	    inet_ntop(AF_INET, bin, out, ADDR_KEY_MAX) != NULL)
		return out;
	if (addr != NULL && inet_pton(AF_INET6, addr, bin) == 1) {
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

		if (memcmp(bin, mapped, sizeof(mapped)) == 0 &&
		    inet_ntop(AF_INET, bin + 12, out, ADDR_KEY_MAX) != NULL)
			return out;
		memset(bin + 8, 0, 8);
		if (inet_ntop(AF_INET6, bin, text, sizeof(text)) != NULL) {
			snprintf(out, ADDR_KEY_MAX, "%s/64", text);
			return out;
		}
	}
	snprintf(out, ADDR_KEY_MAX, "unknown");
	return out;
}
