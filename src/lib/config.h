/* Configuration: built-in defaults, then an optional INI file, then
 * ISSO_<SECTION>_<KEY> environment variables (upper case), later winning.
 * No file is needed to run with the defaults. */
#ifndef ISSO_CONFIG_H
#define ISSO_CONFIG_H

#include <stdbool.h>

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
		int hash_workers; /* threads for password hashing; 0: one per core */
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
		char *mode;     /* "sim" | "http" */
		char *url;      /* Mitake-style SmSend endpoint */
		char *username; /* gateway account */
		char *password;
		int timeout_ms; /* 5000 */
	} sms;
	struct {
		char *mode;          /* "sim" | "http" */
		char *url;           /* API base: scheme and host (/moise/sp/… appended) */
		char *sp_service_id; /* assigned by MOI */
		char *key;           /* the SP's AES-256 key: 64 hex digits or base64 */
		int timeout_ms;      /* 5000 */
		int time_limit;      /* seconds to approve in the app, 60 */
		char *hint;          /* shown in the app */
	} twfido;
	struct {
		char *mode;      /* "sim" | "http" */
		char *url;       /* verification API base (/v1/verifications appended) */
		char *client_id; /* our account at the carriers' aggregator */
		char *secret;
		int timeout_ms; /* 5000 */
		int window;     /* seconds to open the link on the phone, 37 */
	} telecom;
	struct {
		int enabled; /* 1: serve /metrics, 1 */
		/* addresses and CIDRs that may read /metrics, "127.0.0.1, ::1" */
		char *allow;
	} metrics;
	struct {
		int app_qr_ttl; /* seconds a TaipeiPass app QR code stays valid, 120 */
	} taipeipass;
	struct {
		char *url;     /* the HiPKI local server the card pages talk to,
		                * "http://localhost:61161" (HiPKI or isso-cardagent) */
		char *nhi_url; /* the NHI card component's WebSocket */
	} cardagent;
	struct {
		char *mode;      /* "sim" | "http" */
		char *url;       /* MOICA ID-check API base (/v1/id-check appended) */
		char *client_id; /* our account at the MOICA service */
		char *secret;
		int timeout_ms;        /* 5000, also for OCSP and CRL fetches */
		char *roots;           /* PEM file: trusted roots (GRCA) */
		char *intermediates;   /* PEM file: MOICA CA certificates (all generations) */
		char *ocsp_url;        /* "" : {url}/ocsp in sim mode, else the cert's AIA */
		char *crl_url;         /* "" : {url}/crl in sim mode, else the cert's CDP */
		char *revocation;      /* order of checks: "ocsp,crl" | "ocsp" | "crl" */
		int crl_cache_seconds; /* a fetched CRL is reused until min(nextUpdate, this) */
	} moica;
	struct {
		char *mode;      /* "sim" | "http" */
		char *url;       /* NHI card verification API base (/v1/verify appended) */
		char *client_id; /* our account at the NHI service */
		char *secret;
		int timeout_ms; /* 5000 */
	} nhi;
	struct {
		/* seconds between signed checkpoints of the audit chain's head,
		 * 300; 0: none written */
		int checkpoint_interval;
	} audit;
};

/* Fills cfg from defaults, the file at path (NULL: none) and the
 * environment. Returns 0, or ISSO_ERR_INVALID with *error_r naming the bad
 * key or line (static or owned by cfg). Release with config_free(). */
int config_load(const char *path, struct isso_config *cfg, const char **error_r);
/* True when server.public_url's host is on loopback (127.0.0.0/8, ::1,
 * localhost): a development or test set-up. Otherwise config_load()
 * refuses, naming the setting, any connector in mode sim, with a plain
 * http url or isso-sim's secret, the published TW FidO test key, and
 * moica.revocation none. */
bool config_issuer_on_loopback(const struct isso_config *cfg);
/* True when text, in either form twfido.key takes (64 hex digits or
 * base64 of 32 bytes), is isso-sim's published test key. */
bool config_is_sim_twfido_key(const char *text);
void config_free(struct isso_config *cfg);

#endif
