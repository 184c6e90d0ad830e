/* isso-sim: stands in for every national service iSSO talks to. Each
 * service is one module (sim-<service>.c) behind struct sim_service; main.c
 * holds the one registry, sim_services[]. Command-line subcommands follow
 * the same pattern (struct sim_cmd). */
#ifndef ISSO_SIM_H
#define ISSO_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <openssl/types.h>

#include "http/http.h"

/* Settings of `isso-sim serve`, shared with every service module. */
struct sim_settings {
	const char *listen;          /* "127.0.0.1" */
	int port;                    /* 8090; 0 picks a free port */
	const char *identities_path; /* test identities (sim/identities.json) */
	const char *sms_user;        /* account the SMS gateway accepts */
	const char *sms_password;
	const char *twfido_sp_id;  /* sp_service_id the TW FidO API accepts */
	const char *twfido_key;    /* its AES-256 key: 64 hex digits or base64 */
	int twfido_min_time_limit; /* shortest time_limit accepted: 30 (tests: 1) */
	const char *pki_dir;       /* test PKI (scripts/test-pki.sh), NULL: none */
	int nhi_suspend_seconds;   /* NHI card suspension after 3 wrong passwords: 600 */
	const char *state_dir;     /* the sim's own state (app device keys), NULL: temporary */
};

/* One simulated service. */
struct sim_service {
	const char *name; /* listed by GET /health */
	/* Prepares the module's state before the server starts (may be NULL).
	 * Returns 0, or an ISSO_ERR_* with *error_r a static or long-lived
	 * reason: the simulator then exits 1. */
	int (*init)(const struct sim_settings *settings, const char **error_r);
	/* Registers the module's routes. */
	void (*routes)(struct http_server *srv);
	/* Releases the module's state after the server stopped (may be NULL). */
	void (*deinit)(void);
};

/* The registry: every service module, NULL-terminated (main.c). */
extern const struct sim_service *const sim_services[];

extern const struct sim_service sim_service_ident;   /* sim-ident.c: GET /identities */
extern const struct sim_service sim_service_sms;     /* sim-sms.c: Mitake SmSend */
extern const struct sim_service sim_service_phone;   /* sim-phone.c: the citizen's phone */
extern const struct sim_service sim_service_twfido;  /* sim-twfido.c: TW FidO SP API */
extern const struct sim_service sim_service_telecom; /* sim-telecom.c: number verification */
extern const struct sim_service sim_service_tpapp;   /* sim-tpapp.c: the TaipeiPass app */
extern const struct sim_service sim_service_moica;   /* sim-moica.c: MOICA ID check, CRL, OCSP */
extern const struct sim_service sim_service_nhi;     /* sim-nhi.c: NHI card verification */

/* A command-line subcommand: `isso-sim NAME …`. run gets argv from the
 * subcommand's name on and returns the exit status. */
struct sim_cmd {
	const char *name;
	const char *usage;
	int (*run)(int argc, char **argv);
};

/* `isso-sim phone …` (sim-phone.c). */
int sim_phone_cmd(int argc, char **argv);
/* `isso-sim phone mobilecert …`: the TW FidO app (sim-twfido.c); argv
 * starts at "mobilecert". */
int sim_twfido_phone_cmd(int argc, char **argv);
/* `isso-sim phone tpapp …`: the TaipeiPass app (sim-tpapp.c); argv starts
 * at "tpapp". */
int sim_tpapp_phone_cmd(int argc, char **argv);
/* `isso-sim phone open-link …`, else sim_phone_cmd() (sim-telecom.c). */
int sim_telecom_phone_cmd(int argc, char **argv);

/* ---- test identities (sim-ident.c) ---- */

/* Loads and checks the identities file: formats, check digits, unique
 * keys, member references. Returns 0 or ISSO_ERR_INVALID / ISSO_ERR_IO with
 * *error_r a reason that lives until sim_ident_free() (or is static). */
int sim_ident_load(const char *path, const char **error_r);
void sim_ident_free(void);
/* The citizen with this national ID / phone number, or NULL. The object
 * is borrowed and immutable while the server runs: read it, never change
 * or incref it. */
const json_t *sim_ident_by_id(const char *national_id);
const json_t *sim_ident_by_phone(const char *phone);
/* The citizen holding this MOICA card (cards.moica.card_sn) / NHI card
 * (cards.nhi.card_no), or NULL; borrowed as above. */
const json_t *sim_ident_by_moica_card(const char *card_sn);
const json_t *sim_ident_by_nhi_card(const char *card_no);

/* ---- the test PKI (sim-pki.c) ---- */

/* Files of the test PKI made by scripts/test-pki.sh (--pki DIR) hold at
 * most this many certificates per folder. */
#define SIM_PKI_MAX_CERTS 10000

/* Reads the PEM certificate / private key DIR/name. Returns it (the
 * caller frees it), or NULL with *error_r a reason that lives until the
 * next call. */
X509 *sim_pki_cert(const char *dir, const char *name, const char **error_r);
EVP_PKEY *sim_pki_key(const char *dir, const char *name, const char **error_r);
/* Calls fn(name, cert, ctx) for every DIR/sub/NAME.crt (NAME: 1 to 64
 * characters [A-Za-z0-9_-]; other files are skipped), in name order; fn
 * takes cert over. Stops at fn's first non-zero return and returns it.
 * Returns 0, or ISSO_ERR_IO / ISSO_ERR_INVALID / ISSO_ERR_LIMIT (more than
 * SIM_PKI_MAX_CERTS) with *error_r as above. */
int sim_pki_each_cert(const char *dir, const char *sub,
                      int (*fn)(const char *name, X509 *cert, void *ctx), void *ctx,
                      const char **error_r);
/* Decodes base64 in either alphabet (RFC 4648 §4 or §5), padding
 * optional. Returns the length, or -1 when malformed or over outmax. */
long sim_b64_decode(const char *s, unsigned char *out, size_t outmax);

/* ---- the test MOICA CA's records (sim-moica.c) ---- */

/* Records a certificate the test PKI's MOICA CA issued outside the PKI's
 * files (the mobile certificates of sim-twfido.c): its OCSP then answers
 * good for it, or revoked (and its CRL lists it) when revoked. Keeps the
 * newest SIM_MOICA_RECORDS. Thread-safe. */
#define SIM_MOICA_RECORDS 4096
void sim_moica_record(const ASN1_INTEGER *serial, bool revoked);

/* ---- SMS outbox (sim-sms.c) ---- */

/* At most max messages sent to number ("09…", normalised), newest first,
 * as a new JSON array of {"to","body","msgid","sent_at","code"} objects
 * (empty when none). The caller owns the reference. */
json_t *sim_sms_messages(const char *number, size_t max);
/* Forgets every message sent to number. Returns how many there were. */
size_t sim_sms_clear(const char *number);

/* ---- loopback HTTP client for the CLI (sim-client.c) ---- */

/* Default base URL of a running simulator. */
#define SIM_DEFAULT_URL "http://127.0.0.1:8090"

/* Sends method (GET/POST, empty body) to base_url + path and reads the
 * reply. base_url must be "http://HOST[:PORT]" with HOST a loopback
 * address. Returns 0 with *status_r and *body_r (malloc'd, NUL-terminated,
 * caller frees), or ISSO_ERR_INVALID (bad URL), ISSO_ERR_IO (connection,
 * malformed or oversized reply), ISSO_ERR_TIMEOUT, with *error_r static. */
int sim_client_request(const char *base_url, const char *method, const char *path, int timeout_ms,
                       int *status_r, char **body_r, const char **error_r);

/* Writes a JSON error reply {"error": code}. */
void sim_send_error(struct http_req *req, int status, const char *code);

#endif
