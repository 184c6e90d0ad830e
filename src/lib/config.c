/* Configuration loading: defaults, then the INI file, then the environment.
 * Every setting is one row of config_table; adding one is a one-line change
 * plus the field in struct isso_config. */
#include "lib/hex.h"
#include "lib/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <strings.h>

#include <ini.h>

#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xmalloc.h"

#ifndef ISSO_DATADIR
#define ISSO_DATADIR "."
#endif

/* The longest string value (the file's lines are limited by inih to about
 * 200 bytes; longer values can come from the environment). */
#define CONFIG_VALUE_MAX 4096

enum config_type { CONFIG_INT, CONFIG_STRING };

struct config_item {
	const char *section, *key;
	enum config_type type;
	size_t offset;
	const char *def;     /* CONFIG_STRING */
	long idef, min, max; /* CONFIG_INT */
};

#define CS(sec, field, d)                                                                          \
	{                                                                                          \
#sec, #field, CONFIG_STRING, offsetof(struct isso_config, sec.field), d, 0, 0, 0   \
	}
#define CI(sec, field, d, lo, hi)                                                                  \
	{                                                                                          \
#sec, #field, CONFIG_INT, offsetof(struct isso_config, sec.field), NULL, d, lo, hi \
	}

static const struct config_item config_table[] = {
    CS(server, listen, "127.0.0.1"),
    CI(server, port, 8080, 1, 65535),
    CS(server, public_url, "http://127.0.0.1:8080"),
    CI(server, threads, 0, 0, 1024),
    CI(server, max_body, 65536, 1024, 64 * 1024 * 1024),
    CS(server, datadir, ISSO_DATADIR),
    CI(server, trust_proxy, 0, 0, 1),
    CS(server, trusted_proxies, "127.0.0.1, ::1"),
    CI(server, hash_workers, 0, 0, 64),
    CI(server, hash_queue, 64, 1, 65536),
    CS(store, driver, "sqlite"),
    CS(store, path, "var/isso.db"),
    CS(store, conninfo, ""),
    CI(store, start_timeout, 300, 0, 86400),
    CI(store, pool_wait_ms, 3000, 100, 600000),
    CS(keys, master_key_file, "var/master.key"),
    CI(keys, reload_interval, 60, 1, 3600),
    CS(log, level, "info"),
    CI(oidc, code_ttl, 60, 1, 3600),
    CI(oidc, access_token_ttl, 600, 1, 86400),
    CI(oidc, refresh_token_ttl, 2592000, 0, 31536000),
    CI(oidc, id_token_ttl, 600, 1, 86400),
    CI(oidc, session_ttl, 28800, 1, 2592000),
    CI(oidc, txn_ttl, 900, 1, 86400),
    CI(oidc, par_ttl, 60, 1, 600),
    CI(security, ip_rate_per_min, 30, 1, 1000000),
    CI(security, otp_ttl, 300, 2, 3600),
    CI(security, guess_memory, 900, 1, 86400),
    CI(security, account_free_failures, 3, 0, 1000000),
    CI(security, account_delay_max, 10, 0, 10),
    CI(security, address_free_failures, 10, 0, 1000000),
    CI(security, address_delay_max, 60, 0, 3600),
    CI(security, device_cookie_days, 90, 0, 400),
    CI(security, device_cookie_max_failures, 10, 1, 1000),
    CI(security, device_cookie_lock_seconds, 3600, 1, 2592000),
    CI(security, password_min_bits, 30, 0, 128),
    CS(security, common_passwords, ""),
    CS(outbound, allow, ""),
    CI(metrics, enabled, 1, 0, 1),
    CS(metrics, allow, "127.0.0.1, ::1"),
    /* The connectors have no working defaults: a connector without a url
     * is unconfigured and its login methods are not offered. The
     * simulator's settings (mode sim, isso-sim's address and secrets, the
     * published TW FidO test key) belong in the development and test
     * configuration (scripts/run.sh, tests/integration/lib/harness.mjs). */
    CS(sms, mode, "http"),
    CS(sms, url, ""),
    CS(sms, username, ""),
    CS(sms, password, ""),
    CI(sms, timeout_ms, 5000, 100, 600000),
    CS(twfido, mode, "http"),
    CS(twfido, url, ""),
    CS(twfido, sp_service_id, ""),
    CS(twfido, key, ""),
    CI(twfido, timeout_ms, 5000, 100, 600000),
    CI(twfido, time_limit, 60, 30, 600),
    CS(twfido, hint, "臺北市政府單一身分驗證入口登入"),
    CS(telecom, mode, "http"),
    CS(telecom, url, ""),
    CS(telecom, client_id, ""),
    CS(telecom, secret, ""),
    CI(telecom, timeout_ms, 5000, 100, 600000),
    CI(telecom, window, 37, 10, 300),
    CI(taipeipass, app_qr_ttl, 120, 2, 600),
    CI(audit, checkpoint_interval, 300, 0, 86400),
    CS(cardagent, url, "http://localhost:61161"),
    CS(cardagent, nhi_url, "wss://iccert.nhi.gov.tw:7777/echo"),
    CS(moica, mode, "http"),
    CS(moica, url, ""),
    CS(moica, client_id, ""),
    CS(moica, secret, ""),
    CI(moica, timeout_ms, 5000, 100, 600000),
    CS(moica, roots, "var/pki/roots.pem"),
    CS(moica, intermediates, "var/pki/chain.pem"),
    CS(moica, ocsp_url, ""),
    CS(moica, crl_url, ""),
    CS(moica, revocation, "ocsp,crl"),
    CI(moica, crl_cache_seconds, 3600, 0, 604800),
    CS(nhi, mode, "http"),
    CS(nhi, url, ""),
    CS(nhi, client_id, ""),
    CS(nhi, secret, ""),
    CI(nhi, timeout_ms, 5000, 100, 600000),
};

#define CONFIG_N ISSO_N_ELEMENTS(config_table)

struct config_ctx {
	struct isso_config *cfg;
	bool seen[CONFIG_N]; /* set by the file or the environment */
	int line;            /* current line of the file */
	bool at_line_start;
	FILE *fp;
	const char *error;
	int error_line; /* line of error */
};

/* The message behind *error_r; per thread so that loads never race. */
static _Thread_local char config_errbuf[512];

static const char *config_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *
config_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(config_errbuf, sizeof(config_errbuf), fmt, ap);
	va_end(ap);
	return config_errbuf;
}

static char **
config_str(struct isso_config *cfg, const struct config_item *it)
{
	return (char **)((char *)cfg + it->offset);
}

static int *
config_int(struct isso_config *cfg, const struct config_item *it)
{
	return (int *)((char *)cfg + it->offset);
}

static const struct config_item *
config_find(const char *section, const char *key, size_t *idx_r)
{
	size_t i;

	for (i = 0; i < CONFIG_N; i++) {
		if (strcmp(config_table[i].section, section) == 0 &&
		    strcmp(config_table[i].key, key) == 0) {
			*idx_r = i;
			return &config_table[i];
		}
	}
	return NULL;
}

/* Stores value into the item; on error returns a reason (static). */
static const char *
config_set(struct isso_config *cfg, const struct config_item *it, const char *value)
{
	char **sp, *end;
	long v;

	if (it->type == CONFIG_STRING) {
		if (strlen(value) > CONFIG_VALUE_MAX)
			return "value too long";
		sp = config_str(cfg, it);
		if (*sp != NULL) {
			explicit_bzero(*sp, strlen(*sp));
			free(*sp);
		}
		*sp = xstrdup(value);
		return NULL;
	}
	errno = 0;
	v = strtol(value, &end, 10);
	if (end == value || *end != '\0' || isspace((unsigned char)value[0]))
		return "not an integer";
	if (errno == ERANGE || v < it->min || v > it->max)
		return "out of range";
	*config_int(cfg, it) = (int)v;
	return NULL;
}

/* fgets-style reader for inih that counts lines and refuses long ones. */
static char *
config_reader(char *str, int num, void *stream)
{
	struct config_ctx *ctx = stream;
	size_t n;

	if (ctx->error != NULL)
		return NULL;
	if (fgets(str, num, ctx->fp) == NULL)
		return NULL;
	if (ctx->at_line_start)
		ctx->line++;
	n = strlen(str);
	ctx->at_line_start = n > 0 && str[n - 1] == '\n';
	if (!ctx->at_line_start && !feof(ctx->fp)) {
		ctx->error = config_fail("line %d: too long", ctx->line);
		ctx->error_line = ctx->line;
		return NULL;
	}
	return str;
}

static int
config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct config_ctx *ctx = user;
	const struct config_item *it;
	const char *why;
	size_t i;

	if (ctx->error != NULL)
		return 0;
	ctx->error_line = ctx->line;
	if ((it = config_find(section, name, &i)) == NULL) {
		ctx->error =
		    config_fail("line %d: unknown key [%.64s] %.64s", ctx->line, section, name);
		return 0;
	}
	if (ctx->seen[i]) {
		ctx->error =
		    config_fail("line %d: [%s] %s given twice", ctx->line, it->section, it->key);
		return 0;
	}
	if ((why = config_set(ctx->cfg, it, value)) != NULL) {
		ctx->error =
		    config_fail("line %d: [%s] %s: %s", ctx->line, it->section, it->key, why);
		return 0;
	}
	ctx->seen[i] = true;
	return 1;
}

static const char *
config_parse_file(struct config_ctx *ctx, const char *path)
{
	int r;

	if ((ctx->fp = fopen(path, "re")) == NULL)
		return config_fail("%s: %s", path, strerror(errno));
	ctx->line = 0;
	ctx->at_line_start = true;
	r = ini_parse_stream(config_reader, ctx, config_handler, ctx);
	/* inih goes on after a syntax error: report whichever came first. */
	if (r > 0 && (ctx->error == NULL || r < ctx->error_line))
		ctx->error = config_fail("line %d: syntax error", r);
	else if (ctx->error == NULL && ferror(ctx->fp))
		ctx->error = config_fail("%s: read error", path);
	else if (ctx->error == NULL && r < 0)
		ctx->error = config_fail("%s: cannot parse", path);
	fclose(ctx->fp);
	ctx->fp = NULL;
	return ctx->error;
}

static const char *
config_parse_env(struct config_ctx *ctx)
{
	char name[96], *p;
	const char *value, *why;
	size_t i;

	for (i = 0; i < CONFIG_N; i++) {
		const struct config_item *it = &config_table[i];

		snprintf(name, sizeof(name), "ISSO_%s_%s", it->section, it->key);
		for (p = name; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
		if ((value = getenv(name)) == NULL)
			continue;
		if ((why = config_set(ctx->cfg, it, value)) != NULL)
			return config_fail("%s: %s", name, why);
		ctx->seen[i] = true;
	}
	return NULL;
}

static bool
config_seen(const struct config_ctx *ctx, const char *section, const char *key)
{
	size_t i;

	return config_find(section, key, &i) != NULL && ctx->seen[i];
}

/* isso-sim's secrets: a connector carrying one talks to the simulator. */
#define CONFIG_SIM_SECRET "isso-sim"
/* isso-sim's TW FidO SP key, published with iSSO (src/sim/main.c). */
static const unsigned char config_sim_twfido_key[32] = {
    0x6e, 0xc2, 0x49, 0x96, 0x48, 0x49, 0xd0, 0x03, 0x14, 0xf8, 0xdf, 0xc7, 0xd3, 0x85, 0xd2, 0xf7,
    0x87, 0x68, 0xe2, 0xf1, 0xd2, 0x49, 0xc4, 0x9d, 0xe5, 0x84, 0x9d, 0x0e, 0x0a, 0xfa, 0xad, 0xd4,
};

/* The connectors with a mode, a url and a shared secret, for the checks
 * a production issuer needs. */
static const struct {
	const char *section;
	size_t mode, url, secret;
	const char *secret_key;
} config_connectors[] = {
    {"sms", offsetof(struct isso_config, sms.mode), offsetof(struct isso_config, sms.url),
     offsetof(struct isso_config, sms.password), "password"},
    {"twfido", offsetof(struct isso_config, twfido.mode), offsetof(struct isso_config, twfido.url),
     0, NULL},
    {"telecom", offsetof(struct isso_config, telecom.mode),
     offsetof(struct isso_config, telecom.url), offsetof(struct isso_config, telecom.secret),
     "secret"},
    {"moica", offsetof(struct isso_config, moica.mode), offsetof(struct isso_config, moica.url),
     offsetof(struct isso_config, moica.secret), "secret"},
    {"nhi", offsetof(struct isso_config, nhi.mode), offsetof(struct isso_config, nhi.url),
     offsetof(struct isso_config, nhi.secret), "secret"},
};

static const char *
config_at(const struct isso_config *cfg, size_t offset)
{
	return *(char *const *)(const void *)((const char *)cfg + offset);
}

bool
config_is_sim_twfido_key(const char *text)
{
	unsigned char k[48];
	size_t len = strlen(text);
	bool same;

	if (len == 64) {
		for (size_t i = 0; i < 32; i++) {
			int hi = hex_digit_value((unsigned char)text[2 * i]),
			    lo = hex_digit_value((unsigned char)text[2 * i + 1]);

			if (hi < 0 || lo < 0)
				goto base64;
			k[i] = (unsigned char)(hi << 4 | lo);
		}
		same = memcmp(k, config_sim_twfido_key, 32) == 0;
		explicit_bzero(k, sizeof(k));
		return same;
	}
base64:
	if (b64_decode(text, len, k, sizeof(k)) != 32)
		return false;
	same = memcmp(k, config_sim_twfido_key, 32) == 0;
	explicit_bzero(k, sizeof(k));
	return same;
}

bool
config_issuer_on_loopback(const struct isso_config *cfg)
{
	const char *url = cfg->server.public_url, *host, *end;
	char name[256];
	unsigned char a[16];
	size_t n;

	host = strstr(url, "://");
	if (host == NULL)
		return false;
	host += 3;
	if (*host == '[') {
		end = strchr(host, ']');
		if (end == NULL)
			return false;
		host++;
	} else {
		end = host + strcspn(host, ":/");
	}
	n = (size_t)(end - host);
	if (n == 0 || n >= sizeof(name))
		return false;
	memcpy(name, host, n);
	name[n] = '\0';
	if (inet_pton(AF_INET, name, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, name, a) == 1) {
		static const unsigned char loop6[16] = {[15] = 1};
		static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};

		return memcmp(a, loop6, 16) == 0 || (memcmp(a, mapped, 12) == 0 && a[12] == 127);
	}
	if (n > 0 && name[n - 1] == '.')
		name[--n] = '\0';
	return strcasecmp(name, "localhost") == 0 ||
	       (n > 10 && strcasecmp(name + n - 10, ".localhost") == 0);
}

/* An issuer that is not on loopback serves citizens: no connector may
 * talk to the simulator or in clear, and card revocation must be checked.
 * Returns the first offending setting's reason, or NULL. */
static const char *
config_check_production(const struct isso_config *cfg)
{
	if (config_issuer_on_loopback(cfg))
		return NULL;
	for (size_t i = 0; i < ISSO_N_ELEMENTS(config_connectors); i++) {
		const char *sec = config_connectors[i].section;

		if (strcmp(config_at(cfg, config_connectors[i].mode), "sim") == 0)
			return config_fail(
			    "%s.mode: sim (isso-sim) is for development and tests; the "
			    "issuer %s is not on loopback",
			    sec, cfg->server.public_url);
		if (strncasecmp(config_at(cfg, config_connectors[i].url), "http://", 7) == 0)
			return config_fail("%s.url: plain http; with the issuer %s not on loopback "
			                   "every connector needs https",
			                   sec, cfg->server.public_url);
		if (config_connectors[i].secret_key != NULL &&
		    strcmp(config_at(cfg, config_connectors[i].secret), CONFIG_SIM_SECRET) == 0)
			return config_fail("%s.%s: isso-sim's test secret; the issuer %s is not on "
			                   "loopback",
			                   sec, config_connectors[i].secret_key,
			                   cfg->server.public_url);
	}
	if (config_is_sim_twfido_key(cfg->twfido.key))
		return config_fail("twfido.key: the published isso-sim test key; the issuer %s is "
		                   "not on loopback",
		                   cfg->server.public_url);
	if (strcmp(cfg->moica.revocation, "none") == 0)
		return config_fail("moica.revocation: none turns certificate revocation checking "
		                   "off; the issuer %s is not on loopback",
		                   cfg->server.public_url);
	return NULL;
}

/* Derived values and checks across settings. */
static const char *
config_finish(struct config_ctx *ctx)
{
	struct isso_config *cfg = ctx->cfg;
	const char *host = cfg->server.listen, *scheme_end, *why = NULL;
	struct metrics_allow allow;
	char *url;
	size_t n;

	if (config_seen(ctx, "server", "port") && !config_seen(ctx, "server", "public_url")) {
		if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || host[0] == '\0')
			host = "127.0.0.1";
		url = xasprintf(strchr(host, ':') != NULL ? "http://[%s]:%d" : "http://%s:%d", host,
		                cfg->server.port);
		free(cfg->server.public_url);
		cfg->server.public_url = url;
	}
	url = cfg->server.public_url;
	if (strncmp(url, "http://", 7) == 0)
		scheme_end = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		scheme_end = url + 8;
	else
		return "server.public_url: must start with http:// or https://";
	n = strlen(url);
	while (n > (size_t)(scheme_end - url) && url[n - 1] == '/')
		url[--n] = '\0';
	if (url + n == scheme_end)
		return "server.public_url: no host";
	if (strpbrk(url, "?# \t\r\n") != NULL)
		return "server.public_url: no query, fragment or space allowed";
	if (cfg->server.listen[0] == '\0')
		return "server.listen: empty";
	if (cfg->server.datadir[0] == '\0')
		return "server.datadir: empty";
	if (strcmp(cfg->store.driver, "sqlite") != 0 &&
	    strcmp(cfg->store.driver, "postgresql") != 0)
		return "store.driver: must be sqlite or postgresql";
	if (strcmp(cfg->store.driver, "sqlite") == 0 && cfg->store.path[0] == '\0')
		return "store.path: empty";
	if (cfg->keys.master_key_file[0] == '\0')
		return "keys.master_key_file: empty";
	if (log_level_parse(cfg->log.level) < 0)
		return "log.level: must be debug, info, warn or error";
	if (strcmp(cfg->sms.mode, "sim") != 0 && strcmp(cfg->sms.mode, "http") != 0)
		return "sms.mode: must be sim or http";
	if (strcmp(cfg->twfido.mode, "sim") != 0 && strcmp(cfg->twfido.mode, "http") != 0)
		return "twfido.mode: must be sim or http";
	if (strcmp(cfg->telecom.mode, "sim") != 0 && strcmp(cfg->telecom.mode, "http") != 0)
		return "telecom.mode: must be sim or http";
	if (strcmp(cfg->moica.mode, "sim") != 0 && strcmp(cfg->moica.mode, "http") != 0)
		return "moica.mode: must be sim or http";
	if (strcmp(cfg->nhi.mode, "sim") != 0 && strcmp(cfg->nhi.mode, "http") != 0)
		return "nhi.mode: must be sim or http";
	if (metrics_allow_parse(cfg->metrics.allow, &allow, &why) < 0)
		return config_fail("metrics.allow: %s", why);
	if (metrics_allow_parse(cfg->server.trusted_proxies, &allow, &why) < 0)
		return config_fail("server.trusted_proxies: %s", why);
	return config_check_production(cfg);
}

int
config_load(const char *path, struct isso_config *cfg, const char **error_r)
{
	struct config_ctx ctx;
	const char *error = NULL;
	size_t i;
	int ret = ISSO_ERR_INVALID;

	memset(cfg, 0, sizeof(*cfg));
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = cfg;
	for (i = 0; i < CONFIG_N; i++) {
		if (config_table[i].type == CONFIG_STRING)
			*config_str(cfg, &config_table[i]) = xstrdup(config_table[i].def);
		else
			*config_int(cfg, &config_table[i]) = (int)config_table[i].idef;
	}
	if (path != NULL && (error = config_parse_file(&ctx, path)) != NULL)
		goto out;
	if ((error = config_parse_env(&ctx)) != NULL)
		goto out;
	if ((error = config_finish(&ctx)) != NULL)
		goto out;
	ret = 0;
out:
	if (ret < 0)
		config_free(cfg);
	if (error_r != NULL)
		*error_r = error;
	return ret;
}

void
config_free(struct isso_config *cfg)
{
	char **sp;
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < CONFIG_N; i++) {
		if (config_table[i].type != CONFIG_STRING)
			continue;
		sp = config_str(cfg, &config_table[i]);
		if (*sp != NULL) {
			explicit_bzero(*sp, strlen(*sp));
			free(*sp);
			*sp = NULL;
		}
	}
}
