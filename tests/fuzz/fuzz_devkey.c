/* Fuzzes what the TaipeiPass app sends about its device key (auth/devkey.h):
 * the public JWK of an enrolment and the JWS of an answer. Neither may
 * crash; a key that is accepted is accepted again in its canonical form,
 * unchanged; and no input verifies against a fixed key (forging an ECDSA
 * signature is beyond any fuzzer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/devkey.h"

/* A P-256 public key (RFC 7515 A.3's). */
#define FIXED_JWK                                                                                  \
	"{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\"," \
	"\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}"

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *jwk = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL), *again = NULL;
	const char *error = NULL;
	char *canon = NULL, *canon2 = NULL, *text;

	if (devkey_jwk_check(jwk, &canon, &error) == 0) {
		again = json_loads(canon, 0, NULL);
		if (again == NULL || devkey_jwk_check(again, &canon2, &error) != 0 ||
		    strcmp(canon, canon2) != 0)
			abort();
	}
	json_decref(again);
	json_decref(jwk);
	free(canon);
	free(canon2);

	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	{
		json_t *claims = NULL;

		if (devkey_verify(FIXED_JWK, text, &claims, &error) == 0)
			abort();
		if (claims != NULL)
			abort();
	}
	free(text);
	return 0;
}
