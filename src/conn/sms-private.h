/* The SMS gateway's reply reader, inside the connector (sms.c); declared
 * here only for tests/fuzz/fuzz_sms.c. */
#ifndef ISSO_CONN_SMS_PRIVATE_H
#define ISSO_CONN_SMS_PRIVATE_H

#include "conn/sms.h"

/* The longest msgid kept; a longer or odd one is dropped (NULL). */
#define SMS_MSGID_MAX 32

/* Reads the gateway's reply text (NUL-terminated, at most 4096 bytes,
 * modified in place). Returns 0 when the message was accepted (status 0,
 * 1, 2 or 4) with *msgid_r malloc'd ([0-9A-Za-z#], 1 to SMS_MSGID_MAX
 * characters) or NULL; ISSO_ERR_DENIED when the gateway refused it;
 * ISSO_ERR_IO when it is not the gateway's answer. status_r gets the
 * status code (at most 7 characters, "" when none). *error_r is a static
 * English reason when it is not 0. */
int sms_parse_reply(char *text, char **msgid_r, char status_r[8], const char **error_r);

#endif
