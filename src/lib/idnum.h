/* Taiwan identity formats (see REFERENCE.md "Formats"). All predicates take
 * untrusted strings and never read past the terminating NUL. */
#ifndef ISSO_IDNUM_H
#define ISSO_IDNUM_H

#include <stdbool.h>
#include <stddef.h>

/* National ID: [A-Z][12] + 8 digits with a valid check digit. */
bool idnum_is_national_id(const char *s);
/* Resident certificate (ARC/UI): old style (second letter A-D) or 2021
 * style (second digit 8 or 9), same checksum. */
bool idnum_is_resident_id(const char *s);
/* Either of the above. */
bool idnum_is_valid(const char *s);
/* Copies s upper-cased and trimmed of surrounding spaces into out (11
 * bytes); false when it cannot be an ID (wrong length). */
bool idnum_normalize(const char *s, char out[11]);

/* Taiwan mobile number 09 + 8 digits. Accepts "0912-345-678",
 * "0912 345 678" and "+886912345678"; writes "0912345678" into out. */
bool phone_normalize(const char *s, char out[11]);
/* E.164 form of a normalised number: "+886912345678" (out: 14 bytes). */
void phone_to_e164(const char *normalized, char out[14]);

/* Organisation number (統一編號): 8 digits, weights 1,2,1,2,1,2,4,1 with the
 * 2020 rule (sum divisible by 5; seventh digit 7 also accepts sum+1). */
bool idnum_is_ubn(const char *s);

/* A date "YYYY-MM-DD" that exists in the Gregorian calendar. */
bool date_is_valid(const char *s);

#endif
