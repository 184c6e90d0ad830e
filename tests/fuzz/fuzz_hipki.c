/* Fuzzes isso-cardagent's HiPKI /sign request reader (hipki_parse_sign in
 * src/cardagent/hipki.c), which reads the JSON body any local program or,
 * through a trusted page, any web page posts: the input is the body.
 * Checks the promises a parsed request makes before the card sees it
 * (the PIN 6 to 8 digits, the text to sign within 1 to 4096 bytes, the
 * error codes), and that hipki_showable answers for the text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cardagent/agent.h"
#include "cardagent/parse.h"
#include "lib/utf8.h"

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sign_args *args;
	const char *why = NULL;
	char *body;
	size_t pin_len;
	int rc = 0;
	bool ok;

	if (size > 64 * 1024)
		return 0;
	/* a copy: the reader wipes the PIN in the parsed JSON, not the body */
	body = malloc(size + 1);
	args = calloc(1, sizeof(*args));
	if (body == NULL || args == NULL)
		abort();
	memcpy(body, data, size);
	ok = hipki_parse_sign(body, size, args, &rc, &why);
	if (!ok) {
		if ((rc != RC_BAD_REQUEST && rc != RC_PIN_FORMAT) || why == NULL || why[0] == '\0')
			abort();
	} else {
		pin_len = strnlen(args->pin, sizeof(args->pin));
		if (pin_len < 6 || pin_len > 8 || strspn(args->pin, "0123456789") != pin_len)
			abort();
		if (args->tbs_len < 1 || args->tbs_len > HIPKI_MAX_TBS)
			abort();
		/* what the popup would show is valid UTF-8 without NUL */
		if (hipki_showable(args->tbs, args->tbs_len) &&
		    (!utf8_valid((const char *)args->tbs, args->tbs_len) ||
		     memchr(args->tbs, '\0', args->tbs_len) != NULL))
			abort();
	}
	/* the same for the raw input */
	if (hipki_showable(data, size) &&
	    (!utf8_valid((const char *)data, size) || memchr(data, '\0', size) != NULL))
		abort();
	free(args);
	free(body);
	return 0;
}
