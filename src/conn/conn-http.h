/* One JSON-over-HTTP(S) client for the connectors whose contract is ours
 * (telecom, moica, nhi): HTTP Basic client authentication, GET or POST of
 * a JSON object, a JSON object back, through the outbound client (so the
 * outbound policy applies). Private to src/conn. */
#ifndef ISSO_CONN_HTTP_H
#define ISSO_CONN_HTTP_H

#include <jansson.h>

#define CONN_HTTP_DETAIL_SIZE 256 /* OUTBOUND_DETAIL_SIZE */

struct conn_http;

/* base_url: http(s), at most 1024 characters, no query or fragment
 * (trailing '/' dropped); client_id and secret: 1..256 characters.
 * timeout_ms bounds each exchange (<= 0: 5000). reply_max bounds a reply.
 * agent names the caller in User-Agent. Strings are copied; the secret is
 * wiped on free. NULL when an argument is missing or malformed. */
struct conn_http *conn_http_new(const char *base_url, const char *client_id, const char *secret,
                                int timeout_ms, size_t reply_max, const char *agent);
void conn_http_free(struct conn_http *h);

/* POSTs body (a JSON object) to base + path. Returns 0 with *status_r and
 * *reply_r (a JSON object the caller decrefs, NULL when the reply is not
 * one), or ISSO_ERR_TIMEOUT / ISSO_ERR_IO (unreachable, TLS, refused by
 * the outbound policy, reply over reply_max) with *error_r a static reason
 * and detail_r libcurl's words. The request text is wiped after sending (it may carry
 * personal data). Thread-safe (one libcurl handle per call). */
int conn_http_post_json(struct conn_http *h, const char *path, const json_t *body, long *status_r,
                        json_t **reply_r, const char **error_r,
                        char detail_r[CONN_HTTP_DETAIL_SIZE]);

/* GETs base + path; otherwise as conn_http_post_json. */
int conn_http_get_json(struct conn_http *h, const char *path, long *status_r, json_t **reply_r,
                       const char **error_r, char detail_r[CONN_HTTP_DETAIL_SIZE]);

#endif
