/* Fuzzes the card login challenge parser (lib/loginchal.h), which
 * isso-cardagent runs on every text a page asks it to sign: it must never
 * crash, and whatever it accepts must be exactly the text that
 * login_chal_format() makes from the parsed parts (one spelling per
 * challenge, so what is checked is what is signed). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/loginchal.h"

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct login_chal ch;
	char origin[LOGIN_CHAL_ISSUER_MAX + 1], *again;

	if (login_chal_parse(data, size, &ch) != 0)
		return 0;
	again = login_chal_format(ch.issuer, ch.nonce, ch.time);
	if (again == NULL || strlen(again) != size || memcmp(again, data, size) != 0)
		abort();
	free(again);
	if (login_chal_issuer_origin(ch.issuer, origin, sizeof(origin)) == NULL ||
	    strncmp(origin, ch.issuer, strlen(origin)) != 0)
		abort();
	return 0;
}
