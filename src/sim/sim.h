/* isso-sim: stands in for every national service iSSO talks to. Each
 * service is one module (sim-<service>.c) behind struct sim_service; main.c
 * holds the one registry, sim_services[]. Command-line subcommands follow
 * the same pattern (struct sim_cmd). */
#ifndef ISSO_SIM_H
#define ISSO_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

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
