/* JOSE for the OpenID Provider, on cjose: signing keys (ES256 default,
 * RS256), the published JWK set, compact JWS signing, and verification of
 * JWTs that clients send (private_key_jwt assertions). cjose types never
 * appear here. */
#ifndef ISSO_JOSE_H
#define ISSO_JOSE_H

#include <stdbool.h>
#include <jansson.h>

struct jose_keyset;

/* Generates a private key for alg ("ES256": P-256, "RS256": RSA 2048) as a
 * private JWK JSON text with "kid" (RFC 7638 thumbprint), "alg" and
 * "use":"sig". *jwk_r and *kid_r are malloc'd; wipe and free *jwk_r. */
int jose_key_generate(const char *alg, char **jwk_r, char **kid_r);

/* RFC 7638 JWK thumbprint (SHA-256, base64url) of an EC or RSA JWK (public
 * or private; only the required public members count) into out. Returns 0
 * or ISSO_ERR_INVALID. */
int jose_jwk_thumbprint(const json_t *jwk, char out[44]);

/* True when a JWK (JSON object) carries any private or symmetric key
 * member (RFC 7518 §6: d, p, q, dp, dq, qi, k) or is not an object. */
bool jose_jwk_has_private(const json_t *jwk);

/* Checks a JWK set a client registers for its signed requests
 * (private_key_jwt assertions, request objects): an object whose "keys"
 * holds 1 to JOSE_MAX_CLIENT_KEYS public signing keys, each usable with
 * an algorithm we accept (P-256 for ES256, RSA of at least 2048 bits),
 * importable, without private members, "use" sig when given, kids
 * distinct when given. 0, or ISSO_ERR_INVALID with *why_r (static). */
#define JOSE_MAX_CLIENT_KEYS 10
int jose_jwks_check(const json_t *jwks, const char **why_r);

struct jose_keyset *jose_keyset_new(void);
void jose_keyset_free(struct jose_keyset *ks);
/* Adds a private JWK (text). The newest active key of each alg signs; every
 * added key is published. ISSO_ERR_INVALID with *error_r on a bad key. */
int jose_keyset_add(struct jose_keyset *ks, const char *jwk, bool active, const char **error_r);
/* The public JWK set {"keys":[…]} as JSON text (computed once after the
 * last add), malloc'd: the set may be replaced while the caller uses it. */
char *jose_keyset_jwks_dup(struct jose_keyset *ks);
/* Exchanges the keys of ks and other (a set being built by the caller,
 * which nobody else uses) while ks's readers wait: how a running server
 * takes up the keys reloaded from the store. The caller frees other, now
 * holding the old keys. True when the published sets differ. */
bool jose_keyset_swap(struct jose_keyset *ks, struct jose_keyset *other);
/* True when alg has an active signing key. Every function here but
 * jose_keyset_new/free is thread-safe. */
bool jose_keyset_has_alg(const struct jose_keyset *ks, const char *alg);

/* Signs claims (a JSON object, not stolen) as a compact JWS with header
 * {"alg","kid","typ"} using the active key of alg. typ may be NULL
 * ("JWT"), or "logout+jwt" for back-channel logout tokens. *jwt_r is
 * malloc'd. Thread-safe. */
int jose_sign(const struct jose_keyset *ks, const char *alg, const char *typ, json_t *claims,
              char **jwt_r);

/* Verifies a compact JWS against a JWK set (JSON object with "keys") and
 * returns its claims. alg must be one of allowed (NULL-terminated list;
 * "none" is never accepted); the key is chosen by kid, or the only key of
 * a matching type. Returns 0 with *claims_r (new reference), or
 * ISSO_ERR_INVALID / ISSO_ERR_CRYPTO with *error_r. Does not check any
 * claim: callers check iss/aud/exp. Input is untrusted: length-limited to
 * 16 KiB. */
int jose_verify(const char *jwt, json_t *jwks, const char *const *allowed_algs, json_t **claims_r,
                const char **error_r);

/* The same against our own key set (every key in it, active or not): for
 * tokens we issued, without parsing the published set each time. */
int jose_keyset_verify(const struct jose_keyset *ks, const char *jwt,
                       const char *const *allowed_algs, json_t **claims_r, const char **error_r);

/* Splits and decodes a compact JWS without verifying (header and claims
 * must be JSON objects). For diagnostics and fuzzing only. */
int jose_decode_unverified(const char *jwt, json_t **header_r, json_t **claims_r);

/* OIDC Core §3.1.3.6 at_hash / c_hash: base64url of the left half of the
 * hash of value, the hash chosen by alg (SHA-256 for ES256/RS256). out: 64
 * bytes. */
int jose_half_hash(const char *alg, const char *value, char out[64]);

/* RFC 7636 S256: true when base64url(SHA-256(verifier)) equals challenge,
 * compared in constant time; also checks verifier syntax (43–128 chars of
 * [A-Za-z0-9-._~]). */
bool jose_pkce_s256_ok(const char *verifier, const char *challenge);

#endif
