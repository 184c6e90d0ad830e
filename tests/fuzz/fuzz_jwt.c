/* Fuzzes JWT parsing: jose_decode_unverified, and jose_verify against a
 * fixed JWK set (an EC P-256 and an RSA 2048 public key made with node
 * jose; the corpus holds tokens they signed), checking the promises the
 * two make on every input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jose/jose.h"
#include "lib/isso.h"
#include "lib/xmalloc.h"

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_jwks[] =
    "{\"keys\":[{\"kty\":\"EC\",\"x\":\"ar9capZ1ZKk5pnboRlJY8fGraTR42YeHQXX5doOBk9o\",\"y\":\"e"
    "vACM_4VgimQJ12wZTsjoslTiG9E3kKB_XbyLYzaUeA\",\"crv\":\"P-256\",\"kid\":\"node-ec\",\"use\""
    ":\"sig\"},{\"kty\":\"RSA\",\"n\":\"pIMODV9n4L_y0gjFlgL0b-l5DGpyWsLDtj9FOTNFK1l2scxLJECRXub"
    "gUALDel-gBIR0IIArVhM9YIBmq8qW5ptc01WzsRl1W2GTMrKk98-XKWlMO5eqRnTp4TgYHgJg-4IIuxfNs3lVMm9Uj"
    "cS-esMcmIt25IKKYLSmGQqT4m5M-u0RC6Jqfl5ovU2aBHTUelXUfw03QdpK4o6kf-9Lhoh2TBcPqgGTGlAN6UHWsuh"
    "aXUn8SCdkpJnq6tksLMfqiEA2NFsUj13VQv4KcAaY6z3GyS5Db3XfJDaycomL3MIP8QVWu21rSaKPHB1UG4n094sOM"
    "KEi7R2ZvvIRptgIjw\",\"e\":\"AQAB\",\"kid\":\"node-rsa\"}]}";

static const char *const fuzz_algs[] = {"ES256", "RS256", "PS256", NULL};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static json_t *jwks;
	json_t *hdr = NULL, *claims = NULL, *vclaims = NULL;
	const char *error = NULL;
	char *jwt = xstrndup((const char *)data, size); /* stops at the first NUL */
	int dret, vret;

	if (jwks == NULL && (jwks = json_loads(fuzz_jwks, 0, NULL)) == NULL)
		abort();
	dret = jose_decode_unverified(jwt, &hdr, &claims);
	if (dret == 0 ? !json_is_object(hdr) || !json_is_object(claims)
	              : dret != ISSO_ERR_INVALID || hdr != NULL || claims != NULL)
		abort();
	vret = jose_verify(jwt, jwks, fuzz_algs, &vclaims, &error);
	if (vret == 0) {
		/* what verifies also decodes, to the same claims */
		if (dret != 0 || !json_equal(vclaims, claims))
			abort();
	} else if ((vret != ISSO_ERR_INVALID && vret != ISSO_ERR_CRYPTO) || vclaims != NULL ||
	           error == NULL) {
		abort();
	}
	json_decref(vclaims);
	json_decref(hdr);
	json_decref(claims);
	free(jwt);
	return 0;
}
