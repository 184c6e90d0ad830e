/* Base64 (RFC 4648 §4) and base64url without padding (§5). */
#ifndef ISSO_B64_H
#define ISSO_B64_H

#include <stddef.h>

/* Encoded length (without NUL) of n bytes. */
size_t b64url_encoded_len(size_t n);
/* Encodes into out (room for b64url_encoded_len(n) + 1); returns out. */
char *b64url_encode(const void *data, size_t n, char *out);
/* Decodes; returns decoded length, or -1 on a character outside the
 * alphabet, padding, or when out (of size outmax) is too small. */
long b64url_decode(const char *s, size_t len, unsigned char *out, size_t outmax);
/* Standard alphabet with padding. */
char *b64_encode(const void *data, size_t n, char *out);
long b64_decode(const char *s, size_t len, unsigned char *out, size_t outmax);

#endif
