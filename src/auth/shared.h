/* The connectors several parts use, each owning its configuration section:
 * the SMS gateway ([sms]: one-time codes, device enrolment and reset
 * notices) and the card certificate verifier ([moica] roots, revocation:
 * moica-card, moica-mobile's certificate check, /account binding). app_init
 * builds them before the methods, which find them in struct isso_app. */
#ifndef ISSO_AUTH_SHARED_H
#define ISSO_AUTH_SHARED_H

#include <stdbool.h>

struct isso_app;

/* Parses and checks [sms]; with build, also builds app->sms (left NULL
 * when sms.url is empty). 0 or ISSO_ERR_INVALID with *error_r
 * "sms.key: why". */
int shared_sms_init(struct isso_app *app, bool build, const char **error_r);
/* Parses and checks [moica]'s certificate settings (roots,
 * intermediates, ocsp_url, crl_url, revocation, crl_cache_seconds, and
 * mode, url, timeout_ms); with build and moica.url set, also sets
 * app->cardpki_configured and builds app->cardpki (left NULL, with a
 * warning, when the roots cannot be read: the card pages then say "not
 * available"). 0 or ISSO_ERR_INVALID with *error_r "moica.key: why". */
int shared_cardpki_init(struct isso_app *app, bool build, const char **error_r);

#endif
