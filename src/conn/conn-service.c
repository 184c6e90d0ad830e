/* The checks every connector section shares (conn/conn-service.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conn/conn-service.h"
#include "conn/outbound.h"
#include "lib/config.h"
#include "lib/isso.h"

static _Thread_local char conn_service_errbuf[512];

int
conn_service_fail(const char **error_r, const char *section, const char *key, const char *why)
{
	snprintf(conn_service_errbuf, sizeof(conn_service_errbuf), "%s.%s: %s", section, key, why);
	*error_r = conn_service_errbuf;
	return ISSO_ERR_INVALID;
}

int
conn_service_check(const struct isso_config *cfg, const struct conn_service *s,
                   const char **error_r)
{
	const char *issuer = cfg->server.public_url;
	char why[384];

	if (strcmp(s->mode, "sim") != 0 && strcmp(s->mode, "http") != 0)
		return conn_service_fail(error_r, s->section, "mode", "must be sim or http");
	/* an issuer that is not on loopback serves citizens */
	if (config_issuer_on_loopback(cfg))
		return 0;
	if (strcmp(s->mode, "sim") == 0) {
		snprintf(why, sizeof(why),
		         "sim (isso-sim) is for development and tests; the issuer %s is not on "
		         "loopback",
		         issuer);
		return conn_service_fail(error_r, s->section, "mode", why);
	}
	if (strncasecmp(s->url, "http://", 7) == 0) {
		snprintf(why, sizeof(why),
		         "plain http; with the issuer %s not on loopback every connector needs "
		         "https",
		         issuer);
		return conn_service_fail(error_r, s->section, "url", why);
	}
	if (s->secret_key != NULL && strcmp(s->secret, CONN_SIM_SECRET) == 0) {
		snprintf(why, sizeof(why),
		         "isso-sim's test secret; the issuer %s is not on loopback", issuer);
		return conn_service_fail(error_r, s->section, s->secret_key, why);
	}
	return 0;
}

int
conn_service_usable(const struct conn_service *s, const char **error_r)
{
	const char *why = NULL;

	if (strcmp(s->mode, "http") == 0 && strncmp(s->url, "https://", 8) != 0)
		return conn_service_fail(error_r, s->section, "url",
		                         "mode http needs an https URL");
	if (outbound_check_url(s->url, &why) < 0)
		return conn_service_fail(error_r, s->section, "url", why);
	if (s->id_key != NULL && s->id[0] == '\0')
		return conn_service_fail(error_r, s->section, s->id_key, "needed with a url");
	if (s->secret_key != NULL && s->secret[0] == '\0')
		return conn_service_fail(error_r, s->section, s->secret_key, "needed with a url");
	return 0;
}
