/* Hexadecimal digits, encoding and decoding: the one place iSSO spells
 * them out. */
#ifndef ISSO_HEX_H
#define ISSO_HEX_H

#include <stdbool.h>
#include <stddef.h>

/* The value of a hex digit of either case, or -1. */
int hex_digit_value(int c);

/* The digit for v & 15: lower case, or upper case (as RFC 3986
 * percent-encoding prefers). */
char hex_digit(unsigned int v);
char hex_digit_upper(unsigned int v);

/* n bytes as 2n lower-case hex digits and a NUL into out (room for
 * 2n+1). Returns out. */
char *hex_encode(const void *data, size_t n, char *out);

/* Exactly 2n hex digits of either case from s into out (n bytes); false,
 * with out wiped, when any of them is not a hex digit. s need not be
 * NUL-terminated. */
bool hex_decode(const char *s, unsigned char *out, size_t n);

#endif
