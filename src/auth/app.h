/* The daemon's shared state: configuration, store, keys, templates, the
 * shared connectors and each login method's state, built once at start-up and read-only afterwards,
 * so request handlers on every thread can use it without locks. */
#ifndef ISSO_APP_H
#define ISSO_APP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/secret.h"

struct store;
struct jose_keyset;
struct tmpl_set;
struct i18n;
struct conn_sms;
struct cardpki;
struct method_setup;
struct http_server;
struct worker_pool;
struct oidc_runtime;
struct password_policy;

struct isso_app {
	const struct isso_config *cfg;
	const char *issuer; /* cfg->server.public_url */
	struct store *store;
	struct jose_keyset *keys;
	struct secret_keys secrets;
	struct tmpl_set *tmpl;
	struct i18n *i18n;
	/* The connectors several parts share (auth/shared.h), each parsing
	 * its own section. */
	struct conn_sms *sms;    /* the SMS gateway; NULL when sms.url is unset */
	struct cardpki *cardpki; /* card certificate verification; NULL when
	                          * moica.url is unset or moica.roots /
	                          * intermediates cannot be read */
	bool cardpki_configured; /* moica.url is set (roots readable or not) */
	/* What each method's init answered, indexed like methods[]
	 * (method_state_of, method_available). */
	struct method_setup *method_setups;
	char *discovery; /* the discovery document, built once */
	/* Told when a browser session ends other than by logout (another
	 * person logged in on the same browser), so its clients can be
	 * informed (back-channel logout). May be NULL. */
	void (*session_ended)(struct isso_app *app, json_t *session);
	/* Person merged is now kept (auth/bind.h): clients, the client ids
	 * that held merged's consents, are told (oidc/events.c). May be NULL. */
	void (*persons_merged)(struct isso_app *app, const char *kept, const char *merged,
	                       json_t *clients);
	/* Background threads (issod only, NULL elsewhere): outbound calls and
	 * other work that must not hold a request thread. */
	struct worker_pool *workers;
	/* The SMS notice sender (auth/notice.h): its worker_every id, -1
	 * when none runs here, and this process's lease owner name. */
	int notice_sender;
	char notice_node[24];
	/* The OpenID Provider's background state (oidc_start), or NULL. */
	struct oidc_runtime *oidc;
	/* A precomputed argon2id hash, verified against when a login names no
	 * account, so both answers take the same time. */
	char dummy_password_hash[128];
	/* What a new password must pass (common list, zxcvbn). */
	struct password_policy *passwords;
};

/* Checks every part's settings (app_init_admin), opens the store
 * (migrating it), loads or creates the master key and the signing keys,
 * compiles templates and catalogues, builds the shared connectors and
 * runs each method's init. Returns 0 or an
 * ISSO_ERR_* with *error_r (static or owned by app). */
int app_init(struct isso_app *app, const struct isso_config *cfg, const char **error_r);
/* How issod waits at start for a store that does not answer yet. */
struct app_store_wait {
	/* Sleeps up to ms; false when the wait must end (issod was told to
	 * stop). */
	bool (*sleep)(void *ctx, unsigned int ms);
	void *ctx;
};
/* app_init, but while the store does not answer (a connection refused, a
 * server starting) it tries again, 0.5 s doubling to 10 s apart, one
 * store_waiting log line per attempt, until store.start_timeout seconds
 * have passed (0: for ever) or wait->sleep says stop. A refused
 * configuration or migration, and a SQLite store, fail at once. wait
 * NULL: app_init. */
int app_init_wait(struct isso_app *app, const struct isso_config *cfg,
                  const struct app_store_wait *wait, const char **error_r);
/* Parses and checks every part's settings (the shared connectors', each
 * method's init without building) and refuses a key no part claimed:
 * what issod and issoctl do first, before anything is opened or written.
 * 0 or ISSO_ERR_INVALID with *error_r naming the setting. */
int app_check_config(const struct isso_config *cfg, const char **error_r);
/* What issoctl needs and nothing more: every part's settings parsed and
 * checked (production refusals, unknown keys) before anything is opened,
 * then the master key, the store (migrated), the signing keys and the
 * outbound policy; no templates, catalogues, connectors or certificate
 * roots. app_free frees it. */
int app_init_admin(struct isso_app *app, const struct isso_config *cfg, const char **error_r);
void app_free(struct isso_app *app);
/* Creates an ES256 and an RS256 signing key when the store has none of
 * that algorithm (first start, or issoctl keys rotate with force). */
int app_ensure_keys(struct isso_app *app, const char **error_r);
/* Takes up the store's keys as they are now (another node's first keys,
 * a rotation by issoctl) while requests sign with the set: called
 * periodically by issod. A set that cannot sign with both algorithms is
 * not taken. 0, or an error already logged. */
int app_reload_keys(struct isso_app *app);
/* Retires the active signing keys (they stay published, so tokens signed
 * with them still verify) and creates new ES256 and RS256 keys. Running
 * issods take them up within keys.reload_interval (app_reload_keys). */
int app_rotate_keys(struct isso_app *app, const char **error_r);
/* Current time, Unix seconds. */
int64_t app_now(void);

/* Routes of every part: portal, methods, OpenID Provider. */
void app_routes(struct isso_app *app, struct http_server *srv);

#endif
