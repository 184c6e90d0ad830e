/* The card certificate verifier's settings ([moica]: roots, revocation …)
 * and its building (auth/shared.h). The MOICA ID check in the same section
 * is the moica-card method's own (src/auth/methods/moica-card.c). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/app.h"
#include "auth/shared.h"
#include "conn/cardpki.h"
#include "conn/conn-service.h"
#include "conn/outbound.h"
#include "lib/config.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

struct pki_settings {
	char *mode;            /* "sim" | "http" */
	char *url;             /* the MOICA service; "": no card certificates checked */
	int timeout_ms;        /* 5000, also for OCSP and CRL fetches */
	char *roots;           /* PEM file: trusted roots (GRCA) */
	char *intermediates;   /* PEM file: MOICA CA certificates (all generations) */
	char *ocsp_url;        /* "" : {url}/ocsp in sim mode, else the cert's AIA */
	char *crl_url;         /* "" : {url}/crl in sim mode, else the cert's CDP */
	char *revocation;      /* order of checks: "ocsp,crl" | "ocsp" | "crl" */
	int crl_cache_seconds; /* a fetched CRL is reused until min(nextUpdate, this) */
};

#define PKI_OPT(key, type, field, def, lo, hi)                                                     \
	{                                                                                          \
		key, type, offsetof(struct pki_settings, field), def, lo, hi, false                \
	}

static const struct config_option pki_options[] = {
    PKI_OPT("mode", CONFIG_OPT_STRING, mode, "http", 0, 0),
    PKI_OPT("url", CONFIG_OPT_URL, url, "", 0, 0),
    PKI_OPT("timeout_ms", CONFIG_OPT_INT, timeout_ms, "5000", 100, 600000),
    PKI_OPT("roots", CONFIG_OPT_STRING, roots, "var/pki/roots.pem", 0, 0),
    PKI_OPT("intermediates", CONFIG_OPT_STRING, intermediates, "var/pki/chain.pem", 0, 0),
    PKI_OPT("ocsp_url", CONFIG_OPT_URL, ocsp_url, "", 0, 0),
    PKI_OPT("crl_url", CONFIG_OPT_URL, crl_url, "", 0, 0),
    PKI_OPT("revocation", CONFIG_OPT_STRING, revocation, "ocsp,crl", 0, 0),
    PKI_OPT("crl_cache_seconds", CONFIG_OPT_INT, crl_cache_seconds, "3600", 0, 604800),
    {NULL, 0, 0, NULL, 0, 0, false},
};

/* Builds app->cardpki from s (moica.url set). */
static int
pki_build(struct isso_app *app, const struct pki_settings *s, const char **error_r)
{
	struct cardpki_settings cs;
	struct conn_service svc = {"moica", s->mode, s->url, NULL, NULL, NULL, NULL};
	char *ocsp = NULL, *crl = NULL;
	const char *why = NULL;
	bool sim = strcmp(s->mode, "sim") == 0;
	int ret;

	ret = conn_service_usable(&svc, error_r);
	if (ret < 0)
		goto out;
	if (!sim && strcmp(s->revocation, "none") == 0) {
		ret = conn_service_fail(error_r, "moica", "revocation",
		                        "none is for tests (mode sim) only");
		goto out;
	}
	/* isso-sim serves OCSP and the CRL beside its ID check. */
	ocsp = sim && s->ocsp_url[0] == '\0' ? xasprintf("%s/ocsp", s->url) : xstrdup(s->ocsp_url);
	crl = sim && s->crl_url[0] == '\0' ? xasprintf("%s/crl", s->url) : xstrdup(s->crl_url);
	/* OCSP responses and CRLs are signed: plain http is theirs */
	if (ocsp[0] != '\0' && outbound_check_url_flags(ocsp, OUTBOUND_PLAIN_HTTP_OK, &why) < 0) {
		ret = conn_service_fail(error_r, "moica", "ocsp_url", why);
		goto out;
	}
	if (crl[0] != '\0' && outbound_check_url_flags(crl, OUTBOUND_PLAIN_HTTP_OK, &why) < 0) {
		ret = conn_service_fail(error_r, "moica", "crl_url", why);
		goto out;
	}
	app->cardpki_configured = true;
	if (access(s->roots, R_OK) != 0 || access(s->intermediates, R_OK) != 0) {
		log_warn("moica_card_unavailable", "reason",
		         "moica.roots or moica.intermediates cannot be read", "roots", s->roots,
		         "intermediates", s->intermediates, NULL);
		ret = 0;
		goto out;
	}
	memset(&cs, 0, sizeof(cs));
	cs.roots_file = s->roots;
	cs.intermediates_file = s->intermediates;
	cs.ocsp_url = ocsp;
	cs.crl_url = crl;
	cs.revocation = s->revocation;
	cs.timeout_ms = s->timeout_ms;
	cs.crl_cache_seconds = s->crl_cache_seconds;
	ret = cardpki_new(&cs, &app->cardpki, error_r);
out:
	free(ocsp);
	free(crl);
	return ret;
}

int
shared_cardpki_init(struct isso_app *app, bool build, const char **error_r)
{
	struct pki_settings s = {0};
	struct conn_service svc;
	char why[384];
	int ret;

	ret = config_section_parse(app->cfg, "moica", pki_options, &s, error_r);
	if (ret < 0)
		return ret;
	svc = (struct conn_service){"moica", s.mode, s.url, NULL, NULL, NULL, NULL};
	ret = conn_service_check(app->cfg, &svc, error_r);
	if (ret < 0)
		goto out;
	/* a server for citizens checks revocation */
	if (!config_issuer_on_loopback(app->cfg) && strcmp(s.revocation, "none") == 0) {
		snprintf(why, sizeof(why),
		         "none turns certificate revocation checking off; the issuer %s is not on "
		         "loopback",
		         app->cfg->server.public_url);
		ret = conn_service_fail(error_r, "moica", "revocation", why);
		goto out;
	}
	if (build && s.url[0] != '\0')
		ret = pki_build(app, &s, error_r);
out:
	config_section_free(pki_options, &s);
	return ret;
}
