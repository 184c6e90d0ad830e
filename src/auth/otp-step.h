/* The shared "mobile number + SMS code" step of the login methods that
 * verify a phone (moica-mobile, telecom, moica-card, nhi-card): one page
 * to send a code to a number and enter it, with the resend cool-down
 * shown as a live countdown. Its state lives in the login transaction
 * under "otp_step", so a method only calls otp_step() from the handler of
 * the step where it wants a verified phone. */
#ifndef ISSO_OTP_STEP_H
#define ISSO_OTP_STEP_H

#include <jansson.h>
#include <stdbool.h>

#include "auth/method.h"
#include "http/http.h"

struct isso_app;

/* How the page shows where the citizen is: the method's step labels
 * (message keys, NULL-ended) and the index (0-based) of this step. */
struct otp_step_view {
	const char *title_key;
	const char *const *step_keys;
	int current;
	const char *back_url; /* "choose another method" link, may be NULL */
};

/* Serves the step for transaction txn_id at the current URL. Returns true
 * when the citizen has just proven a number: phone_r holds it (normalised)
 * and nothing was sent, so the caller continues (usually flow_complete).
 * Returns false when a page or redirect was sent. prefill may be NULL. */
bool otp_step(struct isso_app *app, struct http_req *req, const char *txn_id, json_t *txn,
              const struct method *m, const struct otp_step_view *view, const char *prefill,
              char phone_r[11]);

/* The shared ending of the methods that first prove an ID (card,
 * certificate) and then a phone: the SMS step above, then the ID (and
 * the name, when there is one) opened from the sealed "id" and "name" of
 * the method's state st, and flow_complete for person uuid at level loa
 * with the phone proven. The caller has checked that st is at that
 * stage; a sealed ID that cannot be opened is answered with 503. */
void otp_step_complete(struct isso_app *app, struct http_req *req, const char *txn_id, json_t *txn,
                       const struct method *m, const struct otp_step_view *view, json_t *st,
                       const char *uuid, enum loa loa);

#endif
