/* New passwords as NIST SP 800-63B §5.1.1.2 asks: 8 to 128 characters
 * (Unicode code points after NFKC normalisation), no composition rules,
 * refused when on the shipped list of common passwords
 * (data/common-passwords.txt), when they contain the member's own account
 * name, e-mail or phone number, or when zxcvbn estimates them weaker than
 * security.password_min_bits. Passwords are normalised (NFKC) before they
 * are hashed and before they are checked at login. */
#ifndef ISSO_PASSWORD_H
#define ISSO_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#define PASSWORD_MIN_CHARS 8
#define PASSWORD_MAX_CHARS 128

struct password_policy;

/* Loads the list of common passwords at path (one per line, '#' starts a
 * comment line; compared case-insensitively) for a policy asking for at
 * least min_bits of estimated entropy. Returns 0 with *policy_r (free
 * with password_policy_free), or ISSO_ERR_IO / ISSO_ERR_INVALID with
 * *error_r (static or thread-local). */
int password_policy_load(const char *path, int min_bits, struct password_policy **policy_r,
                         const char **error_r);
void password_policy_free(struct password_policy *policy);

/* The NFKC form of password (UTF-8), malloc'd (wipe and free with
 * xfree_secret), or NULL when password is not valid UTF-8. */
char *password_normalize(const char *password);

/* Why a new password is refused, as a message key, or NULL when it is
 * acceptable: "password.too_short", "password.too_long", "password.common",
 * "password.context" (it contains one of context, a NULL-terminated list
 * of the member's own words: account, e-mail, phone, name; NULL entries
 * and empty words are skipped), "password.weak" (zxcvbn). password is
 * checked in its NFKC form. policy NULL checks the length only. */
const char *password_problem(const struct password_policy *policy, const char *password,
                             const char *const *context);

/* Unicode code points in a valid UTF-8 string. */
size_t password_chars(const char *s);

#endif
