/* Password guessing is slowed, never turned into a lock-out that a
 * stranger can cause (OWASP "Slow Down Online Guessing Attacks with Device
 * Cookies", with delays in place of its lock-out):
 *
 * - Every password attempt counts in two leaky buckets (store_throttle_*):
 *   one per account (the member, however named; for a login name that
 *   names nobody, that name, so both look alike) and one per client
 *   address (IPv4, or IPv6 by its /64). A failure is forgotten after
 *   security.guess_memory seconds.
 * - Past a number of free failures, each failure holds the next attempt
 *   back for 1, 2, 4 … seconds: per account at most
 *   security.account_delay_max (10 s at most, so the owner waits no longer
 *   than that), per address at most security.address_delay_max. An attempt
 *   inside a hold is answered "try again in N seconds" at once, without
 *   checking the password or counting anything; the server never sleeps.
 * - A successful login gives the browser a device cookie: signed, naming
 *   the member (a keyed hash) and a random nonce. A browser presenting a
 *   valid device cookie for the account it tries is exempt from both
 *   delays; its failures count against the cookie alone, and
 *   security.device_cookie_max_failures of them lock that cookie (it
 *   loses the exemption) for security.device_cookie_lock_seconds.
 *
 * Security events (JSON log lines, never the account or the password):
 * login_failed, login_delayed, device_cookie_used, device_cookie_locked,
 * each with the method, a keyed hash of the account and the address. */
#ifndef ISSO_THROTTLE_H
#define ISSO_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

struct isso_app;
struct secret_keys;

#define THROTTLE_DEVICE_COOKIE "isso_dev"
/* The longest device cookie value we read. */
#define THROTTLE_DEVICE_COOKIE_MAX 160

/* One password attempt between throttle_begin and throttle_end. */
struct throttle_attempt {
	const char *method; /* for the security events */
	char account[72];   /* bucket keys */
	char address[72];
	char device[32];      /* "" unless a device cookie vouches */
	char log_account[17]; /* keyed hash of the account for the log */
	bool counted_account, counted_address, counted_device;
	int wait; /* > 0: refused, try again in wait seconds */
};

/* Before a password is checked. account_key names the account (a keyed
 * hash, never the login itself); uuid is the member it names, or NULL
 * when it names nobody. On return a->wait > 0 means the attempt must not
 * go on (nothing was counted; login_delayed was logged); otherwise it is
 * counted, and throttle_end must follow. Returns 0 or a store error. */
int throttle_begin(struct isso_app *app, struct http_req *req, const char *method,
                   const char *account_key, const char *uuid, struct throttle_attempt *a);
/* After the check. ok: the hold this attempt placed is taken back, the
 * account's failures are forgotten and the browser gets a new device
 * cookie for uuid. Otherwise login_failed is logged with reason (a short
 * word such as "wrong_password"), and a device cookie that failed too
 * often is locked. */
void throttle_end(struct isso_app *app, struct http_req *req, struct throttle_attempt *a, bool ok,
                  const char *uuid, const char *reason);

/* Instead of throttle_end when the password could not be checked at all
 * (the server stopped before the check was queued): what the attempt
 * counted is given back (store_throttle_give, which also lifts holds),
 * and nothing is logged as a failure. */
void throttle_cancel(struct isso_app *app, struct throttle_attempt *a);

/* Gives the browser a new device cookie for member uuid (unless
 * security.device_cookie_days is 0): after a successful login, or a
 * password reset proven by an SMS code. */
void throttle_trust_browser(struct isso_app *app, struct http_req *req, const char *uuid);

/* Seconds a failure holds back the next attempt, after failures counted
 * (this one included): none for the first free_failures, then 1, 2, 4 …
 * up to cap. */
int throttle_delay(int failures, int free_failures, int cap);

/* A device cookie value for member uuid, valid until exp: "tag.nonce.exp.mac"
 * (tag a keyed hash of uuid, nonce random, mac an HMAC over the rest).
 * out holds THROTTLE_DEVICE_COOKIE_MAX bytes. */
void throttle_device_cookie(const struct secret_keys *keys, const char *uuid, int64_t exp,
                            char out[THROTTLE_DEVICE_COOKIE_MAX]);
/* Is cookie a device cookie we made for uuid, unexpired at now? Its nonce
 * goes to nonce_r (23 bytes). */
bool throttle_device_cookie_valid(const struct secret_keys *keys, const char *cookie,
                                  const char *uuid, int64_t now, char nonce_r[23]);

#endif
