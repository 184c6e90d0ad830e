/* Fuzzes the DPoP htu normaliser (RFC 9449 §4.3): whatever it accepts is
 * an http(s) URL without query, fragment or user-info that normalises to
 * itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/oidc-private.h"

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	char out[2100], again[2100], small[24];
	const char *auth;

	if (in == NULL)
		abort();
	memcpy(in, data, size);
	in[size] = '\0'; /* stops at the first NUL */
	if (oidc_dpop_htu_normalize(in, out, sizeof(out))) {
		if (strncmp(out, "http://", 7) != 0 && strncmp(out, "https://", 8) != 0)
			abort();
		auth = strstr(out, "://") + 3;
		if (strpbrk(out, "?#") != NULL || strchr(auth, '/') == NULL ||
		    memchr(auth, '@', strcspn(auth, "/")) != NULL)
			abort();
		if (!oidc_dpop_htu_normalize(out, again, sizeof(again)) || strcmp(out, again) != 0)
			abort();
	} else if (out[0] != '\0') {
		abort();
	}
	/* A buffer too small is refused, never overrun or cut. */
	if (oidc_dpop_htu_normalize(in, small, sizeof(small)) && strlen(small) >= sizeof(small))
		abort();
	free(in);
	return 0;
}
