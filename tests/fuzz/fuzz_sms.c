/* Fuzzes the SMS gateway's reply reader (sms_parse_reply in
 * src/conn/sms.c): the input is the body of a gateway's answer, at most
 * the 4096 bytes the connector reads, without NUL (the connector refuses
 * a reply holding one before reading it). Checks the reader's promises:
 * its result codes, the status code it reports, and the message id it
 * keeps (1 to 32 of [0-9A-Za-z#], only for an accepted message). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conn/sms-private.h"
#include "lib/isso.h"

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *msgid = NULL, status[8];
	const char *error = NULL;
	size_t n;
	int ret;

	if (size > 4096 || memchr(data, '\0', size) != NULL)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	memset(status, 'x', sizeof(status));
	ret = sms_parse_reply(text, &msgid, status, &error);
	if (memchr(status, '\0', sizeof(status)) == NULL)
		abort();
	switch (ret) {
	case 0:
		/* accepted: one of the codes that mean "on its way" */
		if (strcmp(status, "0") != 0 && strcmp(status, "1") != 0 &&
		    strcmp(status, "2") != 0 && strcmp(status, "4") != 0)
			abort();
		if (msgid != NULL) {
			n = strlen(msgid);
			if (n < 1 || n > SMS_MSGID_MAX ||
			    strspn(msgid, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			                  "abcdefghijklmnopqrstuvwxyz#") != n)
				abort();
		}
		break;
	case ISSO_ERR_DENIED:
		if (status[0] == '\0' || msgid != NULL || error == NULL)
			abort();
		break;
	case ISSO_ERR_IO:
		if (msgid != NULL || error == NULL)
			abort();
		break;
	default:
		abort();
	}
	free(msgid);
	free(text);
	return 0;
}
