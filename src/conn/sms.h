/* SMS connector, speaking the Mitake-style gateway contract (REFERENCE.md):
 * POST {url}?CharsetURL=UTF-8, form username, password, dstaddr, smbody;
 * the reply is text whose first line is "[1]" followed by "msgid=…" and
 * "statuscode=…" lines. libcurl types never appear here. */
#ifndef ISSO_CONN_SMS_H
#define ISSO_CONN_SMS_H

struct conn_sms;

/* url: full SmSend endpoint (e.g. http://127.0.0.1:8090/api/mtk/SmSend).
 * timeout_ms bounds the whole exchange. Strings are copied. */
struct conn_sms *conn_sms_new(const char *url, const char *username, const char *password,
                              int timeout_ms);
void conn_sms_free(struct conn_sms *sms);
/* The bound on one exchange, in milliseconds. */
long conn_sms_timeout_ms(const struct conn_sms *sms);
/* Sends body (UTF-8, at most 335 bytes) to phone ("09xxxxxxxx"). Returns 0
 * with *msgid_r (malloc'd, may be NULL), ISSO_ERR_TIMEOUT, ISSO_ERR_IO
 * (unreachable, HTTP error) or ISSO_ERR_DENIED (gateway status code says
 * refused), with *error_r a static English reason. Never logs the body.
 * Thread-safe. ISSO_ERR_INVALID, before anything is sent, when phone or
 * body is malformed (empty, too long, not printable UTF-8). conn_sms_new()
 * returns NULL for a URL that is not http(s). */
int conn_sms_send(struct conn_sms *sms, const char *phone, const char *body, char **msgid_r,
                  const char **error_r);

/* Hands the message to a background sender and returns at once: for
 * answers whose timing or failure must not tell whether a message was
 * really sent (password reset for a number that may have no account).
 * Failures are logged, not returned. Returns 0, ISSO_ERR_LIMIT when the
 * outbox is full (1024 messages) or ISSO_ERR_IO. */
int conn_sms_queue(struct conn_sms *sms, const char *phone, const char *body);

#endif
