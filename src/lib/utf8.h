/* UTF-8 checks for untrusted text (RFC 3629): no overlong forms, no
 * surrogates, nothing beyond U+10FFFF. */
#ifndef ISSO_UTF8_H
#define ISSO_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is valid UTF-8 (NUL bytes included as U+0000). */
bool utf8_valid(const char *s, size_t len);
/* Valid UTF-8 without control characters (C0 and DEL); with newlines,
 * CR and LF are allowed. For text shown to a person: an SMS, an app hint. */
bool utf8_printable(const char *s, size_t len, bool newlines);

#endif
