/* iSSO's card login challenge: the exact text a citizen's card signs to
 * log in (docs/cardagent.md, "The iSSO login challenge"). issod makes it;
 * isso-cardagent, in its iSSO profile, signs nothing else. Four lines
 * separated by a single LF, no CR, no final LF:
 *
 *   iSSO-LOGIN-v1
 *   <issuer>   http(s)://host[:port][/path], printable ASCII, no query,
 *              fragment or user info, at most 255 bytes
 *   <nonce>    43 characters [A-Za-z0-9_-] (256 random bits, base64url)
 *   <time>     YYYY-MM-DDTHH:MM:SSZ (UTC, when the challenge was made)
 */
#ifndef ISSO_LOGINCHAL_H
#define ISSO_LOGINCHAL_H

#include <stddef.h>
#include <stdint.h>

#define LOGIN_CHAL_TAG        "iSSO-LOGIN-v1"
#define LOGIN_CHAL_ISSUER_MAX 255
#define LOGIN_CHAL_NONCE_LEN  43
/* The longest challenge text (the tag, issuer, nonce, time, 3 LFs). */
#define LOGIN_CHAL_MAX                                                                             \
	(sizeof(LOGIN_CHAL_TAG) - 1 + LOGIN_CHAL_ISSUER_MAX + LOGIN_CHAL_NONCE_LEN + 20 + 3)

struct login_chal {
	char issuer[LOGIN_CHAL_ISSUER_MAX + 1];
	char nonce[LOGIN_CHAL_NONCE_LEN + 1];
	int64_t time; /* Unix seconds */
};

/* The challenge text for issuer, nonce and time (Unix seconds), malloc'd;
 * NULL when issuer or nonce does not fit the format. */
char *login_chal_format(const char *issuer, const char *nonce, int64_t when);

/* Reads a challenge text (len bytes, not NUL-terminated); 0, or
 * ISSO_ERR_INVALID when it is anything but the format above. */
int login_chal_parse(const unsigned char *text, size_t len, struct login_chal *out_r);

/* The origin part of a challenge's issuer ("https://isso.gov.taipei/x" ->
 * "https://isso.gov.taipei") into out (size n); NULL if it does not fit. */
const char *login_chal_issuer_origin(const char *issuer, char *out, size_t n);

#endif
