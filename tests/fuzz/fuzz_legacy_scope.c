/* Fuzzes the legacy API's scope names (src/oidc/legacy.c): whatever an
 * agency sends, the parsed list holds known legacy names only, each once;
 * its translation holds only iSSO scopes; what is granted is a part of
 * what was asked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/claims.h"
#include "lib/pool.h"
#include "oidc/oidc-private.h"

#define SCOPE_MAX 2048 /* what the authorize endpoint lets through */

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Calls check for each word of list; aborts on an empty word. */
static void
each_word(const char *list, void (*check)(const char *w, const char *ctx), const char *ctx)
{
	for (const char *p = list; *p != '\0';) {
		size_t n = strcspn(p, " ");
		char w[64];

		if (n == 0 || n >= sizeof(w))
			abort();
		memcpy(w, p, n);
		w[n] = '\0';
		check(w, ctx);
		p += n;
		if (*p == ' ')
			p++;
	}
}

static void
check_legacy(const char *w, const char *parsed)
{
	struct pool *pool = pool_new(0);
	size_t n = strlen(w), seen = 0;

	/* a known legacy name: it parses to itself */
	if (strcmp(oidc_legacy_scope_parse(pool, w), w) != 0)
		abort();
	/* once only */
	for (const char *p = parsed; *p != '\0';) {
		size_t len = strcspn(p, " ");
		seen += len == n && strncmp(p, w, n) == 0;
		p += len;
		if (*p == ' ')
			p++;
	}
	if (seen != 1)
		abort();
	pool_free(pool);
}

static void
check_isso(const char *w, const char *ctx)
{
	(void)ctx;
	if (!scope_known(w) || strcmp(w, "openid") == 0 || strcmp(w, "offline_access") == 0)
		abort();
}

static void
check_in(const char *w, const char *list)
{
	if (!scope_has(list, w))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pool *pool = pool_new(0);
	char *scope, *parsed, *mapped, *granted, *none;

	if (size > SCOPE_MAX)
		size = SCOPE_MAX;
	scope = pool_strndup(pool, (const char *)data, size);
	parsed = oidc_legacy_scope_parse(pool, scope);
	each_word(parsed, check_legacy, parsed);
	mapped = oidc_legacy_scope_map(pool, parsed);
	each_word(mapped, check_isso, NULL);
	granted = oidc_legacy_scope_granted(pool, parsed, mapped);
	each_word(granted, check_in, parsed);
	/* everything asked is granted when every scope it needs is */
	if (strcmp(granted, parsed) != 0)
		abort();
	/* approved for nothing: only the names that need no scope */
	none = oidc_legacy_scope_granted(pool, parsed, "");
	each_word(none, check_in, parsed);
	if (strcmp(oidc_legacy_scope_map(pool, none), "") != 0)
		abort();
	pool_free(pool);
	return 0;
}
