/* Parsers for untrusted request data. All return 0 or ISSO_ERR_INVALID /
 * ISSO_ERR_LIMIT; results are allocated from pool. */
#ifndef ISSO_HTTP_PARSE_H
#define ISSO_HTTP_PARSE_H

#include "http/http.h"

/* application/x-www-form-urlencoded (also query strings): '&'-separated
 * pairs, '+' is space, %XX decoded; refuses bad escapes, decoded NUL bytes
 * and invalid UTF-8. At most max_pairs pairs. */
int parse_urlencoded(struct pool *pool, const char *data, size_t len, size_t max_pairs,
                     struct http_kvs *out);
/* Cookie header (RFC 6265 §5.4): "a=b; c=d". Values are not decoded;
 * malformed pairs are skipped, at most max_pairs are kept. */
int parse_cookies(struct pool *pool, const char *header, size_t max_pairs, struct http_kvs *out);
/* Percent-decodes in into a new string; refuses what parse_urlencoded does. */
int parse_pct_decode(struct pool *pool, const char *in, size_t len, bool plus_is_space,
                     char **out_r);
/* Percent-encodes for a query component (RFC 3986 unreserved kept). */
char *parse_pct_encode(struct pool *pool, const char *in);
/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
bool parse_utf8_valid(const char *s, size_t len);
/* First value of name in kvs, or NULL; count of occurrences. */
const char *http_kvs_get(const struct http_kvs *kvs, const char *name);
size_t http_kvs_count(const struct http_kvs *kvs, const char *name);

/* HTTP Basic credentials (RFC 7617) from an Authorization header; user and
 * password are percent-decoded as RFC 6749 §2.3.1 requires. */
int parse_basic_auth(struct pool *pool, const char *header, char **user_r, char **pass_r);
/* Bearer token from an Authorization header (RFC 6750 §2.1), or NULL. */
const char *parse_bearer(const char *header);
/* The token68 credentials of an Authorization header of scheme (compared
 * case-insensitively), e.g. "DPoP" (RFC 9449 §7.1), or NULL. */
const char *parse_auth_token(const char *header, const char *scheme);

#endif
