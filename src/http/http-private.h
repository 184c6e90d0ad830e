/* Internals shared by the web layer's own modules (server.c, static.c,
 * csrf.c). Not for handlers. */
#ifndef ISSO_HTTP_PRIVATE_H
#define ISSO_HTTP_PRIVATE_H

#include "http/http.h"

/* Memory that lives as long as the server (route contexts). */
struct pool *http_server_pool(struct http_server *srv);
/* Registers fn(arg) to run when the server is freed, after it stopped. */
void http_server_on_free(struct http_server *srv, void (*fn)(void *arg), void *arg);
/* Answers with the server's error page for status (400, 404, …),
 * replacing any response set so far except cookies. */
void http_send_error(struct http_req *req, int status);
/* The Set-Cookie value for name=value: Path=/, Max-Age when max_age >= 0,
 * HttpOnly and SameSite (Strict, Lax or None) from flags (enum
 * http_cookie_flags), Secure when secure or SameSite=None, and the name
 * prefixed "__Host-" when host_prefix (which implies Secure). NULL when
 * name or value cannot be a cookie's. Allocated from pool. */
const char *http_cookie_format(struct pool *pool, const char *name, const char *value, long max_age,
                               unsigned flags, bool secure, bool host_prefix);
/* Value of a cookie already set on this response, or NULL. */
const char *http_response_cookie(const struct http_req *req, const char *name);

#endif
