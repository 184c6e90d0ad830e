/* Fuzzes the TW FidO connector's readers of what the service and the app
 * send back (src/conn/twfido.c). Byte 0 (mod 4) picks one; the rest, cut
 * at the first NUL, is its input:
 *   0  a reply's error_code (tf_code_split, as ATH-02 reads it);
 *   1  an sp_ticket from ATH-01/03 (tf_ticket_decode, for transaction
 *      FUZZ_TXN);
 *   2  an app link (twfido_app_link_parse), which must build again to the
 *      same values;
 *   3  "payload\nchecksum" for twfido_checksum_verify under a fixed key; a
 *      checksum sealed over the payload must verify, the input's only
 *      when it decrypts to the payload's hash.
 * Checks what each reader promises of the values it hands on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conn/twfido-private.h"
#include "lib/isso.h"
#include "lib/log.h"

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_TXN "0f6f2b7e-3c1a-4d5e-9f00-112233445566"

static const char fuzz_token_set[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "abcdefghijklmnopqrstuvwxyz-_.+/=";

static bool
fuzz_token(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n >= 1 && n <= max && strspn(s, fuzz_token_set) == n;
}

static bool
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return m <= n && strcmp(s + n - m, tail) == 0;
}

static void
fuzz_code(const char *raw)
{
	char name[TWFIDO_CODE_MAX], sys[TWFIDO_CODE_MAX];
	size_t n;

	memset(name, 'x', sizeof(name));
	memset(sys, 'x', sizeof(sys));
	if (!tf_code_split(raw, "SP-API-ATH-02", name, sys))
		return;
	if (memchr(name, '\0', sizeof(name)) == NULL || memchr(sys, '\0', sizeof(sys)) == NULL)
		abort();
	n = strlen(sys);
	if (n == 0 ||
	    strspn(sys, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_") != n)
		abort();
	/* the name is the interface's, ending in the system code */
	if (strncmp(name, "SP-API-", 7) != 0 || !ends_with(name, sys))
		abort();
}

static void
fuzz_ticket(const char *ticket)
{
	struct twfido_ticket t;
	const char *error = NULL;
	int r;

	memset(&t, 0, sizeof(t));
	r = tf_ticket_decode(ticket, FUZZ_TXN, &t, &error);
	if (r != 0) {
		if (r != ISSO_ERR_IO || error == NULL || t.sp_ticket_id[0] != '\0' ||
		    t.hashed_id_num[0] != '\0')
			abort();
		return;
	}
	if (!fuzz_token(t.sp_ticket_id, TWFIDO_TICKET_ID_MAX) ||
	    (t.hashed_id_num[0] != '\0' && !fuzz_token(t.hashed_id_num, TWFIDO_HASHED_ID_MAX)))
		abort();
	if (t.sp_ticket != NULL)
		abort();
}

static void
fuzz_link(const char *link)
{
	enum twfido_mode mode, mode2;
	char *ticket, *url, *val, *again, *ticket2, *url2, *val2;

	if (twfido_app_link_parse(link, &mode, &ticket, &url, &val) != 0) {
		if (ticket != NULL || url != NULL || val != NULL)
			abort();
		return;
	}
	if ((mode != TWFIDO_MODE_APP2APP && mode != TWFIDO_MODE_MWEB2APP) ||
	    !fuzz_token(ticket, 8192) || strlen(url) > TWFIDO_RTN_URL_MAX ||
	    strlen(val) > TWFIDO_RTN_VAL_MAX ||
	    (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
		abort();
	for (const char *p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			abort();
	/* what was read back builds the same link's values again */
	again = conn_twfido_app_link(mode, ticket, url, val);
	if (again == NULL || twfido_app_link_parse(again, &mode2, &ticket2, &url2, &val2) != 0)
		abort();
	if (mode2 != mode || strcmp(ticket2, ticket) != 0 || strcmp(url2, url) != 0 ||
	    strcmp(val2, val) != 0)
		abort();
	free(again);
	free(ticket2);
	free(url2);
	free(val2);
	free(ticket);
	free(url);
	free(val);
}

static void
fuzz_checksum(const char *text)
{
	static const unsigned char key[TWFIDO_KEY_LEN] = {
	    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54,
	    0x76, 0x98, 0xba, 0xdc, 0xfe, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
	    0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
	static const unsigned char iv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	const char *nl = strchr(text, '\n');
	size_t plen = nl != NULL ? (size_t)(nl - text) : strlen(text);
	char sealed[TWFIDO_CHECKSUM_LEN + 1];

	if (nl != NULL)
		(void)twfido_checksum_verify(key, text, plen, nl + 1);
	if (twfido_checksum_seal(key, iv, text, plen, sealed) != 0 ||
	    strlen(sealed) != TWFIDO_CHECKSUM_LEN ||
	    !twfido_checksum_verify(key, text, plen, sealed))
		abort();
	/* one flipped digit of the ciphertext or tag no longer verifies */
	sealed[TWFIDO_CHECKSUM_LEN - 1] = sealed[TWFIDO_CHECKSUM_LEN - 1] == '0' ? '1' : '0';
	if (twfido_checksum_verify(key, text, plen, sealed))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool started;
	char *text;

	if (!started) {
		log_init(2, LOG_ERROR);
		started = true;
	}
	if (size < 1 || size > 64 * 1024)
		return 0;
	text = malloc(size);
	if (text == NULL)
		abort();
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	switch (data[0] % 4) {
	case 0:
		fuzz_code(text);
		break;
	case 1:
		fuzz_ticket(text);
		break;
	case 2:
		fuzz_link(text);
		break;
	default:
		fuzz_checksum(text);
		break;
	}
	free(text);
	return 0;
}
