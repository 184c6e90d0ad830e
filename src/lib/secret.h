/* Small cryptographic helpers on libsodium/OpenSSL: random tokens, hashes,
 * password hashing, and the at-rest encryption of personal data. */
#ifndef ISSO_SECRET_H
#define ISSO_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Must be called once at start-up (sodium_init). Returns 0 or ISSO_ERR_CRYPTO. */
int secret_init(void);

/* nbytes random bytes as base64url into out (room for 4*nbytes/3+3).
 * 32 bytes gives a 43-character token. Returns out. */
char *secret_token(size_t nbytes, char *out);
/* A random RFC 4122 version 4 UUID, lower case, into out (37 bytes). */
char *secret_uuid(char out[37]);
/* n random decimal digits into out (n+1 bytes), uniformly distributed. */
char *secret_digits(size_t n, char *out);

/* SHA-256 of data as 64 lower-case hex characters into out (65 bytes). */
char *secret_sha256_hex(const void *data, size_t len, char out[65]);
/* SHA-256 raw. */
void secret_sha256(const void *data, size_t len, unsigned char out[32]);
/* Constant-time equality of two NUL-terminated strings (lengths may leak). */
bool secret_equal(const char *a, const char *b);

/* Password hashing, argon2id (libsodium's crypto_pwhash_str, interactive
 * limits). out must hold 128 bytes. Returns 0 or ISSO_ERR_NOMEM. */
int secret_password_hash(const char *password, char out[128]);
bool secret_password_verify(const char *hash, const char *password);

/* The master key protects personal data at rest and derives the lookup and
 * cookie keys. 32 bytes. */
struct secret_keys {
	unsigned char data[32];   /* XChaCha20-Poly1305 for PII */
	unsigned char lookup[32]; /* keyed BLAKE2b for ID / e-mail / phone lookups */
	unsigned char cookie[32]; /* HMAC for CSRF tokens and signed cookies */
	unsigned char sub[32];    /* pairwise subject identifiers */
	unsigned char token[32];  /* XChaCha20-Poly1305 for self-contained tokens */
};
/* Derives the subkeys from a 32-byte master key. */
void secret_keys_derive(const unsigned char master[32], struct secret_keys *keys);
/* Loads a 32-byte key from a file holding 64 hex characters, creating it
 * (mode 0600) when absent and create is true. */
int secret_master_load(const char *path, bool create, unsigned char master[32],
                       const char **error_r);

/* Encrypts plaintext (authenticated, random nonce). *out_r is malloc'd
 * base64url text; the caller frees. */
int secret_seal(const struct secret_keys *keys, const char *plaintext, size_t len, char **out_r);
/* Decrypts; *out_r is malloc'd and NUL-terminated, the caller frees
 * (wipe with xfree_secret). ISSO_ERR_CRYPTO when tampered. */
int secret_open(const struct secret_keys *keys, const char *sealed, char **out_r);
/* Self-contained tokens: at most SECRET_TOKEN_MAX bytes of plaintext,
 * encrypted and authenticated under the token key and bound to ad (e.g.
 * the issuer: a token of another deployment never opens here). *out_r is
 * malloc'd base64url of a random 24-byte nonce, the ciphertext and its
 * tag; id_r receives the nonce as base64url (SECRET_TOKEN_ID_LEN
 * characters), an identifier unique to the token. Open fails with
 * ISSO_ERR_CRYPTO for anything not sealed so; *out_r is NUL-terminated,
 * the caller frees it. */
#define SECRET_TOKEN_MAX    4096
#define SECRET_TOKEN_ID_LEN 32
int secret_token_seal(const struct secret_keys *keys, const char *ad, const char *plaintext,
                      size_t len, char **out_r, char id_r[SECRET_TOKEN_ID_LEN + 1]);
int secret_token_open(const struct secret_keys *keys, const char *ad, const char *sealed,
                      char **out_r, char id_r[SECRET_TOKEN_ID_LEN + 1]);
/* Keyed hash for lookups: hex(BLAKE2b-256(lookup key, domain ‖ 0 ‖ value))
 * into out (65 bytes). domain separates kinds ("id", "email", "phone"). */
char *secret_lookup_hash(const struct secret_keys *keys, const char *domain, const char *value,
                         char out[65]);
/* HMAC-SHA256 with the cookie key, base64url into out (44 bytes). */
char *secret_mac(const struct secret_keys *keys, const char *msg, char out[44]);

#endif
