/* Start-up of the shared application state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "auth/app.h"
#include "auth/method.h"
#include "auth/password.h"
#include "auth/shared.h"
#include "conn/cardpki.h"
#include "conn/outbound.h"
#include "conn/sms.h"
#include "http/i18n.h"
#include "http/tmpl.h"
#include "jose/jose.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store.h"

/* Waiting for the store at start: 0.5 s, doubling, at most 10 s apart. */
#define APP_STORE_RETRY_FIRST_MS 500
#define APP_STORE_RETRY_MAX_MS   10000

int64_t
app_now(void)
{
	return (int64_t)time(NULL);
}

struct key_load {
	struct isso_app *app;
	struct jose_keyset *ks; /* the set being filled */
	bool have_es256, have_rs256;
	int err;
	const char *error;
};

static int
load_key(const struct store_key *k, void *ctx)
{
	struct key_load *kl = ctx;
	char *jwk = NULL;
	int ret;

	ret = secret_open(&kl->app->secrets, k->jwk, &jwk);
	if (ret < 0) {
		kl->err = ret;
		kl->error = "cannot decrypt a signing key (wrong master key?)";
		return 1;
	}
	ret = jose_keyset_add(kl->ks, jwk, k->active, &kl->error);
	xfree_secret(jwk);
	if (ret < 0) {
		kl->err = ret;
		return 1;
	}
	if (k->active && strcmp(k->alg, "ES256") == 0)
		kl->have_es256 = true;
	if (k->active && strcmp(k->alg, "RS256") == 0)
		kl->have_rs256 = true;
	return 0;
}

static int
add_new_key(struct isso_app *app, const char *alg, const char **error_r)
{
	char *jwk = NULL, *kid = NULL, *sealed = NULL;
	struct store_key k;
	int ret;

	ret = jose_key_generate(alg, &jwk, &kid);
	if (ret < 0) {
		*error_r = "cannot generate a signing key";
		goto out;
	}
	ret = secret_seal(&app->secrets, jwk, strlen(jwk), &sealed);
	if (ret < 0) {
		*error_r = "cannot seal a signing key";
		goto out;
	}
	memset(&k, 0, sizeof(k));
	k.kid = kid;
	k.alg = (char *)alg;
	k.jwk = sealed;
	k.created_at = app_now();
	k.active = true;
	ret = store_key_add(app->store, &k);
	if (ret < 0) {
		*error_r = "cannot store a signing key";
		goto out;
	}
	ret = jose_keyset_add(app->keys, jwk, true, error_r);
	if (ret == 0)
		log_info("signing_key_created", "kid", kid, "alg", alg, NULL);
out:
	xfree_secret(jwk);
	free(kid);
	free(sealed);
	return ret;
}

/* Reads every key of the store into a new set (*ks_r, NULL on error). */
static int
keys_read(struct isso_app *app, struct jose_keyset **ks_r, struct key_load *kl,
          const char **error_r)
{
	int ret;

	*kl = (struct key_load){.app = app, .ks = jose_keyset_new()};
	/* load_key stops the walk with 1 on a key it cannot take: that is
	 * the failure in kl, not a success with fewer keys */
	ret = store_key_list(app->store, load_key, kl);
	if (ret >= 0 && kl->err < 0) {
		*error_r = kl->error;
		ret = kl->err;
	} else if (ret < 0) {
		*error_r = "cannot read signing keys";
	}
	if (ret < 0) {
		jose_keyset_free(kl->ks);
		kl->ks = NULL;
	}
	*ks_r = kl->ks;
	return ret;
}

int
app_ensure_keys(struct isso_app *app, const char **error_r)
{
	struct jose_keyset *ks;
	struct key_load kl;
	int ret;

	if ((ret = keys_read(app, &ks, &kl, error_r)) < 0)
		return ret;
	jose_keyset_free(app->keys);
	app->keys = ks;
	if (!kl.have_es256 && (ret = add_new_key(app, "ES256", error_r)) < 0)
		return ret;
	if (!kl.have_rs256 && (ret = add_new_key(app, "RS256", error_r)) < 0)
		return ret;
	return 0;
}

int
app_reload_keys(struct isso_app *app)
{
	struct jose_keyset *ks;
	const char *error = NULL;
	struct key_load kl;
	int ret;

	if ((ret = keys_read(app, &ks, &kl, &error)) < 0) {
		log_warn("signing_keys_reload_failed", "reason", error, NULL);
		return ret;
	}
	/* never trade a working set for one that cannot sign (keys being
	 * rotated right now: the next round sees the new ones) */
	if (!kl.have_es256 || !kl.have_rs256) {
		jose_keyset_free(ks);
		return 0;
	}
	if (jose_keyset_swap(app->keys, ks))
		log_info("signing_keys_reloaded", NULL);
	jose_keyset_free(ks);
	return 0;
}

static int
retire_key(const struct store_key *k, void *ctx)
{
	struct isso_app *app = ctx;

	if (k->active && store_key_set_active(app->store, k->kid, false) < 0)
		return 1;
	return 0;
}

int
app_rotate_keys(struct isso_app *app, const char **error_r)
{
	int ret = store_key_list(app->store, retire_key, app);

	if (ret != 0) {
		*error_r = "cannot retire the signing keys";
		return ret < 0 ? ret : ISSO_ERR_STORE;
	}
	store_audit_append(app->store, app_now(), "keys_rotated", NULL);
	return app_ensure_keys(app, error_r);
}

/* Every part's settings: the shared connectors', then each method's (in
 * registry order, so the first offending setting is named). With build
 * false nothing is kept: the settings are parsed and checked only, and
 * a key nobody claimed is refused. With build true the shared connectors
 * are built and each method's init fills app->method_setups. */
static int
parts_init(struct isso_app *app, bool build, const char **error_r)
{
	struct method_setup scratch;
	size_t n = 0;
	int ret;

	if ((ret = shared_sms_init(app, build, error_r)) < 0)
		return ret;
	if ((ret = shared_cardpki_init(app, build, error_r)) < 0)
		return ret;
	while (methods[n] != NULL)
		n++;
	if (build)
		app->method_setups = xcalloc(n, sizeof(*app->method_setups));
	for (size_t i = 0; i < n; i++) {
		struct method_setup *s = build ? &app->method_setups[i] : &scratch;

		memset(&scratch, 0, sizeof(scratch));
		if (methods[i]->init != NULL &&
		    (ret = methods[i]->init(app, build, s, error_r)) < 0)
			return ret;
	}
	return build ? 0 : config_check_claimed(app->cfg, error_r);
}

int
app_check_config(const struct isso_config *cfg, const char **error_r)
{
	struct isso_app app;

	memset(&app, 0, sizeof(app));
	app.cfg = cfg;
	app.issuer = cfg->server.public_url;
	return parts_init(&app, false, error_r);
}

/* One attempt at the store: open (migrating), then load or create the
 * signing keys. On failure nothing of it is kept. */
static int
app_store_attempt(struct isso_app *app, const struct isso_config *cfg, const char *migrations,
                  const char **error_r)
{
	int ret;

	ret = store_open(cfg->store.driver,
	                 strcmp(cfg->store.driver, "sqlite") == 0 ? cfg->store.path
	                                                          : cfg->store.conninfo,
	                 migrations, &app->store, error_r);
	if (ret < 0)
		goto out;
	store_set_pool_wait(app->store, (unsigned int)cfg->store.pool_wait_ms);
	store_set_client_cache(app->store, (unsigned int)cfg->store.client_cache_ms);
	ret = app_ensure_keys(app, error_r);
out:
	if (ret < 0) {
		jose_keyset_free(app->keys);
		app->keys = NULL;
		store_close(app->store);
		app->store = NULL;
	}
	return ret;
}

static int64_t
app_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Failures that waiting may cure: no session with the database server
 * (store_open's ISSO_ERR_IO: not answering, starting, too many clients,
 * a standby during a failover, even a refused login or a missing
 * database an operator is fixing). Once connected, a migration that
 * fails, a bad migration file or a wrong master key is not. */
static bool
app_store_retryable(int ret)
{
	return ret == ISSO_ERR_IO || ret == ISSO_ERR_TIMEOUT;
}

/* The driver's reason on one line (libpq's spans several): runs of
 * white space become one space, none at the ends. */
static const char *
app_one_line(const char *in, char *out, size_t size)
{
	size_t o = 0;
	bool space = false;

	for (; in != NULL && *in != '\0' && o + 1 < size; in++) {
		if (*in == ' ' || *in == '\n' || *in == '\t' || *in == '\r') {
			space = o > 0;
			continue;
		}
		if (space && o + 2 < size)
			out[o++] = ' ';
		space = false;
		out[o++] = *in;
	}
	out[o] = '\0';
	return o > 0 ? out : "?";
}

/* The store, waiting for it with a capped backoff when wait is given. */
static int
app_store_open(struct isso_app *app, const struct isso_config *cfg,
               const struct app_store_wait *wait, const char **error_r)
{
	static char errbuf[640];
	char *path = xasprintf("%s/migrations", cfg->server.datadir);
	int64_t start = app_monotonic_ms(), limit = (int64_t)cfg->store.start_timeout * 1000;
	int64_t delay = APP_STORE_RETRY_FIRST_MS;
	const char *error = NULL;
	/* Only a database server can come up later; a SQLite file that
	 * cannot be opened is a configuration to fix. */
	bool server = strcmp(cfg->store.driver, "sqlite") != 0;
	unsigned int attempt;
	int ret;

	for (attempt = 1;; attempt++) {
		int64_t elapsed, sleep_ms;
		char n[16], in[24], why[512];

		error = NULL;
		ret = app_store_attempt(app, cfg, path, &error);
		if (ret == 0 || wait == NULL || !server || !app_store_retryable(ret))
			break;
		elapsed = app_monotonic_ms() - start;
		if (limit > 0 && elapsed >= limit) {
			snprintf(errbuf, sizeof(errbuf),
			         "the store did not answer within store.start_timeout (%d s, %u "
			         "attempts): %s",
			         cfg->store.start_timeout, attempt,
			         app_one_line(error, why, sizeof(why)));
			error = errbuf;
			break;
		}
		sleep_ms = delay;
		if (limit > 0 && sleep_ms > limit - elapsed)
			sleep_ms = limit - elapsed;
		snprintf(n, sizeof(n), "%u", attempt);
		snprintf(in, sizeof(in), "%lld", (long long)sleep_ms);
		/* The driver's reason names host and port, never the password. */
		log_warn("store_waiting", "attempt", n, "retry_in_ms", in, "reason",
		         app_one_line(error, why, sizeof(why)), NULL);
		if (!wait->sleep(wait->ctx, (unsigned int)sleep_ms)) {
			error = "stopped while waiting for the store";
			ret = ISSO_ERR_IO;
			break;
		}
		delay = delay * 2 > APP_STORE_RETRY_MAX_MS ? APP_STORE_RETRY_MAX_MS : delay * 2;
	}
	if (ret == 0 && attempt > 1) {
		char n[16];

		snprintf(n, sizeof(n), "%u", attempt);
		log_info("store_reached", "attempts", n, NULL);
	}
	if (ret < 0)
		*error_r = error != NULL ? error : isso_strerror(ret);
	free(path);
	return ret;
}

/* What both issod and issoctl need: master key, store, keys, outbound
 * policy. */
static int
app_init_base(struct isso_app *app, const struct isso_config *cfg,
              const struct app_store_wait *wait, const char **error_r)
{
	struct outbound_policy policy;
	unsigned char master[32];
	int ret;

	memset(app, 0, sizeof(*app));
	app->cfg = cfg;
	app->issuer = cfg->server.public_url;
	app->notice_sender = -1;

	/* Out of memory anywhere aborts through one place, jansson included. */
	json_set_alloc_funcs(xmalloc, free);
	/* a refused setting stops the start before anything is written */
	ret = app_check_config(cfg, error_r);
	if (ret < 0)
		goto out;
	ret = secret_init();
	if (ret < 0) {
		*error_r = "libsodium failed to initialise";
		goto out;
	}
	ret = secret_master_load(cfg->keys.master_key_file, true, master, error_r);
	if (ret < 0)
		goto out;
	secret_keys_derive(master, &app->secrets);
	sodium_memzero(master, sizeof(master));

	ret = app_store_open(app, cfg, wait, error_r);
	if (ret < 0)
		goto out;
	/* issoctl checks agencies' URLs against it */
	policy.issuer = cfg->server.public_url;
	policy.allow = cfg->outbound.allow;
	ret = outbound_configure(&policy, error_r);
out:
	return ret;
}

int
app_init_admin(struct isso_app *app, const struct isso_config *cfg, const char **error_r)
{
	return app_init_base(app, cfg, NULL, error_r);
}

int
app_init(struct isso_app *app, const struct isso_config *cfg, const char **error_r)
{
	return app_init_wait(app, cfg, NULL, error_r);
}

int
app_init_wait(struct isso_app *app, const struct isso_config *cfg,
              const struct app_store_wait *wait, const char **error_r)
{
	static char errbuf[512];
	char *path = NULL, *err = NULL;
	int ret;

	ret = app_init_base(app, cfg, wait, error_r);
	if (ret < 0)
		goto out;
	path = xasprintf("%s/templates", cfg->server.datadir);
	app->tmpl = tmpl_set_load(path, &err);
	if (app->tmpl == NULL) {
		snprintf(errbuf, sizeof(errbuf), "templates: %s", err != NULL ? err : "?");
		*error_r = errbuf;
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	free(path);
	path = xasprintf("%s/locales", cfg->server.datadir);
	app->i18n = i18n_load(path, &err);
	if (app->i18n == NULL) {
		snprintf(errbuf, sizeof(errbuf), "locales: %s", err != NULL ? err : "?");
		*error_r = errbuf;
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	ret = parts_init(app, true, error_r);
	if (ret < 0)
		goto out;
	ret = secret_password_hash("isso-no-such-account", app->dummy_password_hash);
	if (ret < 0) {
		*error_r = "cannot hash";
		goto out;
	}
	free(path);
	path = cfg->security.common_passwords[0] != '\0'
	           ? xstrdup(cfg->security.common_passwords)
	           : xasprintf("%s/data/common-passwords.txt", cfg->server.datadir);
	ret = password_policy_load(path, cfg->security.password_min_bits, &app->passwords, error_r);
	if (ret < 0)
		goto out;
out:
	free(path);
	free(err);
	return ret;
}

void
app_free(struct isso_app *app)
{
	for (size_t i = 0; app->method_setups != NULL && methods[i] != NULL; i++) {
		if (methods[i]->free != NULL && app->method_setups[i].state != NULL)
			methods[i]->free(app->method_setups[i].state);
	}
	free(app->method_setups);
	if (app->sms != NULL)
		conn_sms_free(app->sms);
	if (app->cardpki != NULL)
		cardpki_free(app->cardpki);
	if (app->i18n != NULL)
		i18n_free(app->i18n);
	if (app->tmpl != NULL)
		tmpl_set_free(app->tmpl);
	if (app->keys != NULL)
		jose_keyset_free(app->keys);
	if (app->store != NULL)
		store_close(app->store);
	password_policy_free(app->passwords);
	free(app->discovery);
	sodium_memzero(&app->secrets, sizeof(app->secrets));
	memset(app, 0, sizeof(*app));
}
