/* Configuration: built-in defaults, then an optional INI file, then
 * ISSO_<SECTION>_<KEY> environment variables (upper case), later winning.
 * No file is needed to run with the defaults. The core sections are typed
 * here; the others belong to the parts that use them (login methods,
 * shared connectors), which parse them with config_section_parse(). */
#ifndef ISSO_CONFIG_H
#define ISSO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct isso_config {
	struct {
		char *listen;     /* address to bind, "127.0.0.1" */
		int port;         /* 8080 */
		char *public_url; /* issuer and base of every URL, "http://127.0.0.1:8080" */
		int threads;      /* worker threads; 0: one per core */
		int max_body;     /* largest request body in bytes, 65536 */
		char *datadir;    /* templates/, static/, locales/, migrations */
		int trust_proxy;  /* 1: a TLS proxy sets X-Forwarded-Proto/-For */
		/* the proxies trust_proxy believes: addresses and CIDRs,
		 * "127.0.0.1, ::1" */
		char *trusted_proxies;
		int hash_workers; /* threads for password hashing; 0: cores - 1 */
		int hash_queue;   /* hashing tasks that may wait for a thread, 64 */
	} server;
	struct {
		char *driver;   /* "sqlite" (default) | "postgresql" */
		char *path;     /* SQLite file, "var/isso.db" */
		char *conninfo; /* PostgreSQL connection string */
		/* seconds issod waits at start for a store it cannot reach,
		 * 300; 0: for ever */
		int start_timeout;
		/* ms a call waits for a pooled connection when all are busy */
		int pool_wait_ms;
		/* ms the OpenID endpoints may use a client row read
		 * before (store_client_get_cached), 1000; 0: no cache */
		int client_cache_ms;
	} store;
	struct {
		char *master_key_file; /* "var/master.key", created on first start */
		int reload_interval;   /* seconds between re-reads of the signing keys */
	} keys;
	struct {
		char *level; /* debug | info | warn | error */
	} log;
	struct {
		int code_ttl;          /* seconds, 60 */
		int access_token_ttl;  /* 600 */
		int refresh_token_ttl; /* 30 days */
		int id_token_ttl;      /* 600 */
		int session_ttl;       /* browser SSO session, 8 hours */
		int txn_ttl;           /* an unfinished login, 15 minutes */
		int par_ttl;           /* a pushed authorization request, 60 */
		/* opaque client_credentials tokens sealed (1) or stored rows (0) */
		int sealed_access_tokens;
	} oidc;
	struct {
		int ip_rate_per_min; /* login / OTP attempts per client address per minute, 30 */
		int otp_ttl;         /* seconds an SMS code stays valid, 300 */

		/* Password guessing is slowed, never locked out (src/auth/throttle.c). */
		int guess_memory;          /* seconds until one failure is forgotten, 900 */
		int account_free_failures; /* failures per account before delays, 3 */
		int account_delay_max;     /* longest delay per account (s), 10 (at most 10) */
		int address_free_failures; /* failures per address (IPv6 /64) before delays, 10 */
		int address_delay_max;     /* longest delay per address (s), 60 */
		int device_cookie_days;    /* lifetime of a device cookie, 90; 0: none issued */
		int device_cookie_max_failures; /* failures that lock a device cookie, 10 */
		int device_cookie_lock_seconds; /* how long, 3600 */
		int password_min_bits;          /* zxcvbn estimate a new password needs, 30 */
		char *common_passwords; /* list file; "": <datadir>/data/common-passwords.txt */
	} security;
	struct {
		/* hosts, addresses and CIDRs outbound requests may reach
		 * although they are not public (conn/outbound.h) */
		char *allow;
	} outbound;
	struct {
		int enabled; /* 1: serve /metrics, 1 */
		/* addresses and CIDRs that may read /metrics, "127.0.0.1, ::1" */
		char *allow;
	} metrics;
	struct {
		/* seconds between signed checkpoints of the audit chain's head,
		 * 300; 0: none written */
		int checkpoint_interval;
	} audit;
	/* Every other section ([sms], [twfido], [moica] …), kept as the file
	 * gave it: its owner (a login method, a shared connector) parses it
	 * with config_section_parse(). */
	struct config_raw *raw;
};

/* Fills cfg from defaults, the file at path (NULL: none) and the
 * environment. Returns 0, or ISSO_ERR_INVALID with *error_r naming the bad
 * key or line (static or owned by cfg). Release with config_free(). */
int config_load(const char *path, struct isso_config *cfg, const char **error_r);
/* True when server.public_url's host is on loopback (127.0.0.0/8, ::1,
 * localhost): a development or test set-up. Otherwise the owners of the
 * connector sections refuse, naming the setting, any connector in mode
 * sim, with a plain http url or isso-sim's secret (conn/conn-service.h). */
bool config_issuer_on_loopback(const struct isso_config *cfg);
void config_free(struct isso_config *cfg);

/* ---- sections parsed by their owners ---- */

enum config_option_type {
	CONFIG_OPT_STRING, /* char *; at most 4096 bytes */
	CONFIG_OPT_INT,    /* int within [min, max] */
	CONFIG_OPT_BOOL,   /* bool: 1 / 0, true / false, yes / no, on / off */
	CONFIG_OPT_URL,    /* char *: "" or an http:// or https:// URL */
};

/* One key of a section: where it lands in the owner's struct (offsetof),
 * its default as text (as it would be written in the file), and whether
 * it is a secret (wiped when freed). A table ends with a NULL key. */
struct config_option {
	const char *key;
	enum config_option_type type;
	size_t offset;
	const char *def;
	long min, max; /* CONFIG_OPT_INT */
	bool secret;
};

/* Fills out (the owner's struct, zeroed by the caller) from section's
 * keys in opts: the default, then the file's value, then the environment
 * variable ISSO_<SECTION>_<KEY>, later winning. The keys read are claimed
 * (config_check_claimed); several owners may read one key. Returns 0, or
 * ISSO_ERR_INVALID with *error_r "section.key: why (where)" (per-thread
 * buffer) and out released. Free out with config_section_free(). */
int config_section_parse(const struct isso_config *cfg, const char *section,
                         const struct config_option *opts, void *out, const char **error_r);
/* Releases the strings config_section_parse() put into out, secrets
 * wiped first; harmless twice. */
void config_section_free(const struct config_option *opts, void *out);
/* A key of the file's sections that no owner parsed is a mistake, as an
 * unknown key of the core sections is: 0, or ISSO_ERR_INVALID with
 * *error_r "line N: unknown key [section] key" for the first one. Call
 * once every part has parsed its sections. */
int config_check_claimed(const struct isso_config *cfg, const char **error_r);

#endif
