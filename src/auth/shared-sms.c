/* The SMS gateway's section ([sms]) and connector (auth/shared.h). */
#include <stddef.h>

#include "auth/app.h"
#include "auth/shared.h"
#include "conn/conn-service.h"
#include "conn/sms.h"
#include "lib/config.h"
#include "lib/isso.h"

struct sms_settings {
	char *mode;     /* "sim" | "http" */
	char *url;      /* Mitake-style SmSend endpoint; "": not configured */
	char *username; /* gateway account */
	char *password;
	int timeout_ms;
};

#define SMS_OPT(key, type, field, def, lo, hi, secret)                                             \
	{                                                                                          \
		key, type, offsetof(struct sms_settings, field), def, lo, hi, secret               \
	}

/* No working defaults: the simulator's settings belong in the
 * development and test configuration (scripts/run.sh, tests' harness). */
static const struct config_option sms_options[] = {
    SMS_OPT("mode", CONFIG_OPT_STRING, mode, "http", 0, 0, false),
    SMS_OPT("url", CONFIG_OPT_URL, url, "", 0, 0, false),
    SMS_OPT("username", CONFIG_OPT_STRING, username, "", 0, 0, false),
    SMS_OPT("password", CONFIG_OPT_STRING, password, "", 0, 0, true),
    SMS_OPT("timeout_ms", CONFIG_OPT_INT, timeout_ms, "5000", 100, 600000, false),
    {NULL, 0, 0, NULL, 0, 0, false},
};

int
shared_sms_init(struct isso_app *app, bool build, const char **error_r)
{
	struct sms_settings s = {0};
	struct conn_service svc;
	int ret;

	ret = config_section_parse(app->cfg, "sms", sms_options, &s, error_r);
	if (ret < 0)
		return ret;
	svc = (struct conn_service){"sms",      s.mode,     s.url,     "username",
	                            s.username, "password", s.password};
	ret = conn_service_check(app->cfg, &svc, error_r);
	if (ret < 0 || !build || s.url[0] == '\0')
		goto out;
	ret = conn_service_usable(&svc, error_r);
	if (ret < 0)
		goto out;
	app->sms = conn_sms_new(s.url, s.username, s.password, s.timeout_ms);
	if (app->sms == NULL)
		ret = conn_service_fail(error_r, "sms", "url", "must be an http(s) URL");
out:
	config_section_free(sms_options, &s);
	return ret;
}
