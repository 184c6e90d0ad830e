/* Configuration loading: defaults, then the INI file, then the environment.
 * Every core setting is one row of config_table; adding one is a one-line
 * change plus the field in struct isso_config. Every other section is kept
 * raw (struct config_raw) for the part that owns it, which reads it with
 * config_section_parse() from its own table of options. */
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
    CI(store, client_cache_ms, 1000, 0, 60000),
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
    CI(oidc, sealed_access_tokens, 1, 0, 1),
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
    CI(audit, checkpoint_interval, 300, 0, 86400),
};

#define CONFIG_N ISSO_N_ELEMENTS(config_table)

/* The most keys the file may give outside the core sections. */
#define CONFIG_RAW_MAX 512

/* A key of a section outside config_table, as the file gave it. */
struct config_raw_entry {
	char *section, *key, *value;
	int line;
	bool claimed; /* some owner parsed it (start-up is single-threaded) */
};

struct config_raw {
	struct config_raw_entry *v;
	size_t n, cap;
};

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

/* True for the sections config_table types; every other one is kept raw
 * for its owner. */
static bool
config_core_section(const char *section)
{
	for (size_t i = 0; i < CONFIG_N; i++) {
		if (strcmp(config_table[i].section, section) == 0)
			return true;
	}
	return false;
}

static struct config_raw_entry *
config_raw_find(const struct config_raw *raw, const char *section, const char *key)
{
	for (size_t i = 0; raw != NULL && i < raw->n; i++) {
		if (strcmp(raw->v[i].section, section) == 0 && strcmp(raw->v[i].key, key) == 0)
			return &raw->v[i];
	}
	return NULL;
}

/* inih handler's part for a key outside the core sections. */
static int
config_raw_add(struct config_ctx *ctx, const char *section, const char *key, const char *value)
{
	struct config_raw *raw = ctx->cfg->raw;
	struct config_raw_entry *e;

	if (config_raw_find(raw, section, key) != NULL) {
		ctx->error =
		    config_fail("line %d: [%.64s] %.64s given twice", ctx->line, section, key);
		return 0;
	}
	if (strlen(value) > CONFIG_VALUE_MAX) {
		ctx->error =
		    config_fail("line %d: [%.64s] %.64s: value too long", ctx->line, section, key);
		return 0;
	}
	if (raw->n == CONFIG_RAW_MAX) {
		ctx->error = config_fail("line %d: too many settings", ctx->line);
		return 0;
	}
	if (raw->n == raw->cap) {
		raw->cap = raw->cap == 0 ? 16 : raw->cap * 2;
		raw->v = xrealloc(raw->v, raw->cap * sizeof(*raw->v));
	}
	e = &raw->v[raw->n++];
	e->section = xstrdup(section);
	e->key = xstrdup(key);
	e->value = xstrdup(value);
	e->line = ctx->line;
	e->claimed = false;
	return 1;
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
	if ((it = config_find(section, name, &i)) == NULL && !config_core_section(section))
		return config_raw_add(ctx, section, name, value);
	if (it == NULL) {
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
	if (metrics_allow_parse(cfg->metrics.allow, &allow, &why) < 0)
		return config_fail("metrics.allow: %s", why);
	if (metrics_allow_parse(cfg->server.trusted_proxies, &allow, &why) < 0)
		return config_fail("server.trusted_proxies: %s", why);
	return NULL;
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
	cfg->raw = xcalloc(1, sizeof(*cfg->raw));
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
	if (cfg->raw != NULL) {
		for (i = 0; i < cfg->raw->n; i++) {
			struct config_raw_entry *e = &cfg->raw->v[i];

			explicit_bzero(e->value, strlen(e->value));
			free(e->value);
			free(e->section);
			free(e->key);
		}
		free(cfg->raw->v);
		free(cfg->raw);
		cfg->raw = NULL;
	}
}

/* Converts text for option o into out; on error returns a reason. */
static const char *
config_option_set(const struct config_option *o, void *out, const char *text)
{
	char **sp = (char **)((char *)out + o->offset), *end;
	long v;

	switch (o->type) {
	case CONFIG_OPT_INT:
		errno = 0;
		v = strtol(text, &end, 10);
		if (end == text || *end != '\0' || isspace((unsigned char)text[0]))
			return "not an integer";
		if (errno == ERANGE || v < o->min || v > o->max)
			return "out of range";
		*(int *)((char *)out + o->offset) = (int)v;
		return NULL;
	case CONFIG_OPT_BOOL:
		if (strcmp(text, "1") == 0 || strcasecmp(text, "true") == 0 ||
		    strcasecmp(text, "yes") == 0 || strcasecmp(text, "on") == 0)
			*(bool *)((char *)out + o->offset) = true;
		else if (strcmp(text, "0") == 0 || strcasecmp(text, "false") == 0 ||
		         strcasecmp(text, "no") == 0 || strcasecmp(text, "off") == 0)
			*(bool *)((char *)out + o->offset) = false;
		else
			return "not a boolean (1 or 0)";
		return NULL;
	case CONFIG_OPT_URL:
		if (text[0] != '\0' && strncasecmp(text, "http://", 7) != 0 &&
		    strncasecmp(text, "https://", 8) != 0)
			return "must be an http:// or https:// URL";
		for (const char *p = text; *p != '\0'; p++) {
			if ((unsigned char)*p <= ' ' || *p == 0x7f)
				return "no space or control character allowed in a URL";
		}
		break;
	case CONFIG_OPT_STRING:
		break;
	}
	if (strlen(text) > CONFIG_VALUE_MAX)
		return "value too long";
	if (*sp != NULL) {
		explicit_bzero(*sp, strlen(*sp));
		free(*sp);
	}
	*sp = xstrdup(text);
	return NULL;
}

int
config_section_parse(const struct isso_config *cfg, const char *section,
                     const struct config_option *opts, void *out, const char **error_r)
{
	char name[128], *p;
	const char *why, *text;
	const struct config_option *o;
	struct config_raw_entry *e;

	for (o = opts; o->key != NULL; o++) {
		if ((why = config_option_set(o, out, o->def != NULL ? o->def : "")) != NULL) {
			*error_r = config_fail("%s.%s: default: %s", section, o->key, why);
			goto fail;
		}
		e = config_raw_find(cfg->raw, section, o->key);
		if (e != NULL) {
			e->claimed = true;
			if ((why = config_option_set(o, out, e->value)) != NULL) {
				*error_r = config_fail("%s.%s: %s (line %d)", section, o->key, why,
				                       e->line);
				goto fail;
			}
		}
		snprintf(name, sizeof(name), "ISSO_%s_%s", section, o->key);
		for (p = name; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
		if ((text = getenv(name)) == NULL)
			continue;
		if ((why = config_option_set(o, out, text)) != NULL) {
			*error_r = config_fail("%s.%s: %s (%s)", section, o->key, why, name);
			goto fail;
		}
	}
	return 0;
fail:
	config_section_free(opts, out);
	return ISSO_ERR_INVALID;
}

void
config_section_free(const struct config_option *opts, void *out)
{
	for (const struct config_option *o = opts; o->key != NULL; o++) {
		char **sp = (char **)((char *)out + o->offset);

		if (o->type != CONFIG_OPT_STRING && o->type != CONFIG_OPT_URL)
			continue;
		if (*sp == NULL)
			continue;
		if (o->secret)
			explicit_bzero(*sp, strlen(*sp));
		free(*sp);
		*sp = NULL;
	}
}

int
config_check_claimed(const struct isso_config *cfg, const char **error_r)
{
	for (size_t i = 0; cfg->raw != NULL && i < cfg->raw->n; i++) {
		const struct config_raw_entry *e = &cfg->raw->v[i];

		if (!e->claimed) {
			*error_r = config_fail("line %d: unknown key [%.64s] %.64s", e->line,
			                       e->section, e->key);
			return ISSO_ERR_INVALID;
		}
	}
	return 0;
}
