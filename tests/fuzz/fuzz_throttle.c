/* Fuzzes what the guess throttle reads from clients: the device cookie
 * (throttle_device_cookie_valid) and the client address text keyed for
 * limits (addr_limit_key), checking the promises both make on every
 * input. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/throttle.h"
#include "lib/addr.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_uuid[] = "0b6c6a3e-6f0e-4a55-9d43-6d2a3c1f2e10";

static void
check_addr(const char *text)
{
	char key[ADDR_KEY_MAX], prefix[ADDR_KEY_MAX];
	unsigned char bin[16];
	size_t n;

	addr_limit_key(text, key);
	n = strnlen(key, sizeof(key));
	if (n == 0 || n >= sizeof(key))
		abort();
	if (strcmp(key, "unknown") == 0 || inet_pton(AF_INET, key, bin) == 1)
		return;
	/* else an IPv6 /64: the prefix with its low 64 bits zero */
	if (n < 4 || strcmp(key + n - 3, "/64") != 0)
		abort();
	memcpy(prefix, key, n - 3);
	prefix[n - 3] = '\0';
	if (inet_pton(AF_INET6, prefix, bin) != 1)
		abort();
	for (int i = 8; i < 16; i++)
		if (bin[i] != 0)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct secret_keys keys;
	static char good[THROTTLE_DEVICE_COOKIE_MAX];
	char *text = xstrndup((const char *)data, size); /* stops at the first NUL */
	char nonce[23];

	if (good[0] == '\0') {
		unsigned char master[32];
		if (secret_init() != 0)
			abort();
		memset(master, 9, sizeof(master));
		secret_keys_derive(master, &keys);
		throttle_device_cookie(&keys, fuzz_uuid, 4000000000, good);
		if (!throttle_device_cookie_valid(&keys, good, fuzz_uuid, 1, nonce))
			abort();
	}
	if (throttle_device_cookie_valid(&keys, text, fuzz_uuid, 1000000000, nonce)) {
		/* only what we signed: our own cookie, nonce and all */
		if (strlen(nonce) != 22 || strncmp(text, good, 33) != 0)
			abort();
	} else if (nonce[0] != '\0') {
		abort();
	}
	check_addr(text);
	free(text);
	return 0;
}
