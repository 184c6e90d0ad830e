/* What every national-service connector's section shares: a mode ("sim"
 * talks to isso-sim, "http" to the real service), a url (empty: the
 * connector is not configured) and an account with a shared secret. The
 * checks live here once; each owner (a login method, a shared part) parses
 * its section with config_section_parse() and hands the values over. */
#ifndef ISSO_CONN_SERVICE_H
#define ISSO_CONN_SERVICE_H

#include <stdbool.h>

struct isso_config;

/* isso-sim's shared secrets: a connector carrying one talks to the
 * simulator. */
#define CONN_SIM_SECRET "isso-sim"

struct conn_service {
	const char *section;             /* "telecom" */
	const char *mode, *url;          /* the section's mode and url */
	const char *id_key, *id;         /* "client_id" and its value; NULL key: none */
	const char *secret_key, *secret; /* "secret" and its value; NULL key: none */
};

/* The settings alone, run by issod and issoctl before anything is opened:
 * mode is sim or http; and with an issuer off loopback (a server for
 * citizens) no mode sim, no plain http url, no isso-sim secret. Returns 0
 * or ISSO_ERR_INVALID with *error_r "section.key: why" (per-thread
 * buffer). */
int conn_service_check(const struct isso_config *cfg, const struct conn_service *s,
                       const char **error_r);
/* For a configured connector (url not empty) about to be built: mode http
 * talks https only, the url passes the outbound policy (conn/outbound.h),
 * the account and secret are given. 0 or ISSO_ERR_INVALID as above. */
int conn_service_usable(const struct conn_service *s, const char **error_r);
/* The reason "section.key: why" as *error_r (per-thread buffer);
 * returns ISSO_ERR_INVALID. */
int conn_service_fail(const char **error_r, const char *section, const char *key, const char *why);

#endif
