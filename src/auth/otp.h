/* The SMS one-time-code step shared by registration, password reset and
 * the methods that verify a phone: 6 digits, valid 5 minutes (security.otp_ttl), 5 wrong tries
 * end the challenge, a 35-second cool-down between sends to one number, and
 * hourly sending limits per number and per client address. Codes are never
 * stored or logged in clear (only a hash bound to the challenge id). */
#ifndef ISSO_OTP_H
#define ISSO_OTP_H

#include "http/http.h"

struct isso_app;

#define OTP_DIGITS 6

#define OTP_MAX_TRIES 5
#define OTP_COOLDOWN  35
/* Code checks per number per hour, across all its challenges. */
#define OTP_VERIFY_PER_NUMBER_HOUR 30

enum otp_result {
	OTP_OK = 0,
	OTP_WRONG,     /* wrong code, tries remain */
	OTP_EXPIRED,   /* unknown, used or expired challenge */
	OTP_EXHAUSTED, /* the fifth wrong code: the challenge is gone */
};

/* How the SMS of a challenge leaves. */
enum otp_delivery {
	OTP_DELIVER_NOW,    /* sent before returning; gateway failures are returned */
	OTP_DELIVER_QUEUED, /* handed to the background outbox: timing and failures
	                       tell the requester nothing */
	OTP_DELIVER_NONE,   /* sent to nobody: for numbers that must not be revealed
	                       as unknown (same limits, challenge and cool-down) */
};

/* Issues a new code for purpose to phone (normalised) and writes the
 * challenge id to id_r (44 bytes). When notice_key is not NULL, the SMS
 * carries that message instead of a code (e.g. "this number is already
 * registered"), while the caller's page looks the same either way.
 * Returns 0; ISSO_ERR_LIMIT with *wait_r seconds (cool-down) or 0 (hourly
 * limit reached); ISSO_ERR_IO / ISSO_ERR_TIMEOUT when the gateway failed
 * (OTP_DELIVER_NOW only). */
int otp_send(struct isso_app *app, struct http_req *req, const char *purpose, const char *phone,
             const char *notice_key, enum otp_delivery delivery, char id_r[44], int *wait_r);
/* Checks code against challenge id for purpose and phone. A correct code
 * consumes the challenge. *tries_left_r (may be NULL) after a wrong code. */
int otp_check(struct isso_app *app, const char *id, const char *purpose, const char *phone,
              const char *code, enum otp_result *result_r, int *tries_left_r);
/* Seconds left of the resend cool-down for phone (0 when none). */
int otp_cooldown_left(struct isso_app *app, const char *phone);

#endif
