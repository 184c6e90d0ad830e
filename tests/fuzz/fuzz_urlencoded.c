/* Fuzzes the request-data parsers: urlencoded pairs (query strings and
 * forms), Cookie headers, Basic and Bearer Authorization headers, and
 * percent-decoding, checking their promises on every accepted input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"
#include "lib/isso.h"
#include "lib/pool.h"

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_kvs(const struct http_kvs *kvs, size_t max, bool utf8)
{
	if (kvs->n > max)
		abort();
	for (size_t i = 0; i < kvs->n; i++) {
		const char *n = kvs->v[i].name, *v = kvs->v[i].value;

		if (n == NULL || v == NULL || *n == '\0')
			abort();
		if (utf8 && (!parse_utf8_valid(n, strlen(n)) || !parse_utf8_valid(v, strlen(v))))
			abort();
		if (http_kvs_get(kvs, n) == NULL || http_kvs_count(kvs, n) == 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pool *pool = pool_new(0);
	struct http_kvs kvs;
	const char *s = (const char *)data;
	char *str = pool_strndup(pool, s, size); /* stops at the first NUL */
	char *hdr, *user, *pass, *dec;
	const char *tok;
	int r;

	r = parse_urlencoded(pool, s, size, 64, &kvs);
	if (r == 0)
		check_kvs(&kvs, 64, true);
	else if (r != ISSO_ERR_INVALID && r != ISSO_ERR_LIMIT)
		abort();
	if (r == 0 && parse_urlencoded(pool, s, size, 4, &kvs) == 0)
		check_kvs(&kvs, 4, true);

	parse_cookies(pool, str, 64, &kvs);
	check_kvs(&kvs, 64, true);

	/* the input as the base64 part and as the whole header */
	hdr = pool_printf(pool, "Basic %s", str);
	if (parse_basic_auth(pool, hdr, &user, &pass) == 0 &&
	    (!parse_utf8_valid(user, strlen(user)) || !parse_utf8_valid(pass, strlen(pass))))
		abort();
	parse_basic_auth(pool, str, &user, &pass);
	tok = parse_bearer(str);
	if (tok != NULL && (tok < str || tok >= str + strlen(str)))
		abort();

	if (parse_pct_decode(pool, s, size, false, &dec) == 0) {
		const char *enc = parse_pct_encode(pool, dec);
		char *back;

		if (parse_pct_decode(pool, enc, strlen(enc), false, &back) != 0 ||
		    strcmp(back, dec) != 0)
			abort();
	}
	pool_free(pool);
	return 0;
}
