/* TW FidO (行動自然人憑證, the mobile natural-person certificate) connector:
 * the relying-party side of MOI's SP API v2.9 for logins.
 *
 *   ATH-01 POST {base}/moise/sp/getSpTicket        -> sp_ticket: the QR code
 *          (I-SCAN) or the app link's ticket (APP2APP, MWEB2APP)
 *   ATH-03 POST {base}/moise/sp/requestAthOrSignPush -> sp_ticket; the
 *          service pushes the request to the citizen's bound phone
 *   ATH-02 POST {base}/moise/sp/getAthOrSignResult -> pending / result
 *   APP-API-01 mobilemoica://…/verifySign?…        the app link (built here)
 *
 * Both directions carry a checksum: hex(IV ‖ AES-256-GCM(key, lower-case
 * hex SHA-256 of the interface's fields concatenated) ‖ tag). The contract,
 * field orders and code mapping are in docs/connectors/twfido.md. libcurl
 * and OpenSSL types never appear here. */
#ifndef ISSO_CONN_TWFIDO_H
#define ISSO_CONN_TWFIDO_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct conn_twfido;

/* True when text, in either form twfido.key takes (64 hex digits or
 * base64 of 32 bytes), is isso-sim's published test key: refused in mode
 * http and behind an issuer off loopback. */
bool conn_twfido_is_sim_key(const char *text);

/* What the service says about a login. */
enum twfido_state {
	TWFIDO_PENDING,      /* ticket issued; the citizen has not answered yet */
	TWFIDO_OK,           /* approved in the app; idp_checksum verified */
	TWFIDO_DENIED,       /* the citizen refused in the app */
	TWFIDO_EXPIRED,      /* time_limit passed without an answer */
	TWFIDO_NOT_ENROLLED, /* the ID has no mobile certificate / bound device */
	TWFIDO_UNREACHABLE,  /* ATH-03: the push could not reach the phone (PS_*) */
	TWFIDO_ERROR,        /* anything else; see status.code */
};

#define TWFIDO_TIME_LIMIT_MIN     30 /* seconds, per the spec */
#define TWFIDO_TIME_LIMIT_MAX     600
#define TWFIDO_TIME_LIMIT_DEFAULT 60   /* the portal's ~58 s QR countdown */
#define TWFIDO_POLL_INTERVAL_MS   4000 /* ATH-02: not more often than this */
#define TWFIDO_HINT_MAX           256  /* bytes of UTF-8 shown in the app */
#define TWFIDO_CODE_MAX           96   /* "SP-API-ATH-02-SPTKTID_TXNLOG_NF" */
#define TWFIDO_TICKET_ID_MAX      128
#define TWFIDO_HASHED_ID_MAX      128
#define TWFIDO_NAME_MAX           120                  /* bytes of the holder's name from cert */
#define TWFIDO_KEY_LEN            32                   /* AES-256 */
#define TWFIDO_CHECKSUM_LEN       (2 * (12 + 64 + 16)) /* hex characters */

/* How the citizen receives a login request (ATH-01's op_mode, or ATH-03). */
enum twfido_mode {
	TWFIDO_MODE_ISCAN,    /* a QR code shown on the page */
	TWFIDO_MODE_APP2APP,  /* an app link opened by another app */
	TWFIDO_MODE_MWEB2APP, /* an app link opened by the phone's browser */
	TWFIDO_MODE_PUSH,     /* ATH-03: pushed to the bound phone */
};

#define TWFIDO_RTN_URL_MAX 1024 /* bytes of an app link's return URL */
#define TWFIDO_RTN_VAL_MAX 256

/* The outcome of one exchange. code is the service's error_code, named
 * "{interface}-{code}" (a bare code gets the interface prefixed), "0" on
 * success, "" when the service gave no usable answer. */
struct twfido_status {
	enum twfido_state state;
	char code[TWFIDO_CODE_MAX];
};

/* An issued ticket. The method keeps transaction_id and sp_ticket_id to
 * poll with, and hashed_id_num to compare with the result's. */
struct twfido_ticket {
	char transaction_id[37];                      /* our UUID */
	char sp_ticket_id[TWFIDO_TICKET_ID_MAX + 1];  /* from the ticket's payload */
	char hashed_id_num[TWFIDO_HASHED_ID_MAX + 1]; /* likewise; "" when absent */
	char *sp_ticket;                              /* malloc'd: what the QR code carries */
	time_t expires_at; /* our clock: time of the request + time_limit */
};

/* base_url: scheme and host of the API, e.g. "https://fidoapi.moi.gov.tw"
 * (a trailing '/' is ignored; the /moise/sp/… paths are appended).
 * sp_service_id: the ID MOI assigned. key: the SP's AES-256 key as 64 hex
 * digits or as standard base64 of 32 bytes (the form MOI hands out).
 * timeout_ms bounds each exchange (<= 0: 5000). Strings are copied; the
 * key is kept only in decoded form and wiped by conn_twfido_free().
 * Returns NULL for a URL that is not http(s), an empty or over-long
 * sp_service_id, or a key that is not 32 bytes. */
struct conn_twfido *conn_twfido_new(const char *base_url, const char *sp_service_id,
                                    const char *key, int timeout_ms);
void conn_twfido_free(struct conn_twfido *tf);

/* For tests against `isso-sim --twfido-min-time-limit N` only: lets
 * conn_twfido_get_ticket() accept time limits down to seconds (>= 1)
 * instead of 30. */
void conn_twfido_set_min_time_limit(struct conn_twfido *tf, int seconds);

/* ATH-01 getSpTicket, op_code ATH, op_mode I-SCAN, for id_num (national ID
 * or resident certificate number; lower case and surrounding spaces are
 * normalised). hint (may be NULL: "") is shown in the app: UTF-8, at most
 * TWFIDO_HINT_MAX bytes, no control characters. time_limit: 30 to 600
 * seconds.
 *
 * Returns 0 when the service answered: status_r->state is TWFIDO_PENDING
 * with *ticket_r filled (free with conn_twfido_ticket_clear()), or
 * TWFIDO_NOT_ENROLLED (nothing issued). Otherwise status_r->state is
 * TWFIDO_ERROR and it returns ISSO_ERR_INVALID (bad arguments, nothing
 * sent), ISSO_ERR_TIMEOUT, ISSO_ERR_CRYPTO (idp_checksum does not verify)
 * or ISSO_ERR_IO (unreachable, HTTP error, a reply that is not the API's
 * JSON, or any other error code, named in status_r->code). *error_r is a
 * static English reason. Never logs the ID or the key. Thread-safe. */
int conn_twfido_get_ticket(struct conn_twfido *tf, const char *id_num, const char *hint,
                           int time_limit, struct twfido_ticket *ticket_r,
                           struct twfido_status *status_r, const char **error_r);
/* The same for any mode: ATH-01 with op_mode I-SCAN, APP2APP or MWEB2APP,
 * or, for TWFIDO_MODE_PUSH, ATH-03 requestAthOrSignPush (no op_mode, no
 * device_user_def_desc: every bound device of the ID is asked). Besides
 * what conn_twfido_get_ticket() answers, a push may end as
 * TWFIDO_UNREACHABLE (returns 0): the service could not push to the phone
 * (its PS_* codes, e.g. PS_FCM_NOT_FOUND when the app was not opened for a
 * long time); status_r->code names it. */
int conn_twfido_request(struct conn_twfido *tf, enum twfido_mode mode, const char *id_num,
                        const char *hint, int time_limit, struct twfido_ticket *ticket_r,
                        struct twfido_status *status_r, const char **error_r);

/* APP-API-01: the link that opens the MOI app on this phone for an
 * APP2APP or MWEB2APP ticket:
 *   mobilemoica://moica.moi.gov.tw/{a2a|w2a}/verifySign?sp_ticket=…
 *       &rtn_url=base64url(rtn_url)&rtn_val=base64url(rtn_val)
 * rtn_url (http or https, at most TWFIDO_RTN_URL_MAX bytes, no spaces or
 * control characters) is where the app sends the citizen back; rtn_val
 * (printable, at most TWFIDO_RTN_VAL_MAX bytes) is handed back with it.
 * Returns the malloc'd link, or NULL for bad arguments. */
char *conn_twfido_app_link(enum twfido_mode mode, const char *sp_ticket, const char *rtn_url,
                           const char *rtn_val);
/* Reads such a link back (isso-sim's app, tests): *mode_r, and malloc'd
 * *sp_ticket_r, *rtn_url_r and *rtn_val_r (decoded). 0 or
 * ISSO_ERR_INVALID. */
int twfido_app_link_parse(const char *link, enum twfido_mode *mode_r, char **sp_ticket_r,
                          char **rtn_url_r, char **rtn_val_r);

/* Frees what a ticket holds and empties it. */
void conn_twfido_ticket_clear(struct twfido_ticket *ticket);

/* ATH-02 getAthOrSignResult for a ticket. Returns 0 when the service
 * answered: status_r->state is TWFIDO_PENDING, TWFIDO_OK (then
 * *hashed_id_num_r, malloc'd, is the approving person's hashed ID and the
 * idp_checksum has been verified; and *cert_r, when cert_r is not NULL,
 * is the result's `cert` as sent: standard base64 of the citizen's DER
 * certificate, malloc'd, NULL when absent or unusable (no error). The cert
 * is not covered by idp_checksum and nothing here checks it: the caller
 * verifies it with the card PKI code (cardpki_check_cert) before it
 * believes a word of it), TWFIDO_DENIED, TWFIDO_EXPIRED or
 * TWFIDO_NOT_ENROLLED. ISSO_ERR_LIMIT, with the state TWFIDO_PENDING and
 * nothing sent, when this transaction was polled less than
 * TWFIDO_POLL_INTERVAL_MS ago (the connector remembers the last poll of up
 * to 8192 transactions; in a multi-node deployment each node enforces it
 * for the polls it sends, so the method takes each poll's turn in the
 * store too: see poll_turn() in auth/methods/moica-mobile.c). Otherwise
 * the state is TWFIDO_ERROR and it returns ISSO_ERR_INVALID, _TIMEOUT,
 * _CRYPTO or _IO as conn_twfido_get_ticket() does. Thread-safe. */
int conn_twfido_poll(struct conn_twfido *tf, const char *transaction_id, const char *sp_ticket_id,
                     struct twfido_status *status_r, char **hashed_id_num_r, char **cert_r,
                     const char **error_r);

/* The pause callers keep between polls of one transaction (ms). */
int conn_twfido_poll_interval(void);

/* True when the result's hashed_id_num is the one the service put in the
 * ticket issued for the typed ID: the approving person is the one whose
 * ID was typed. This holds whatever hash the service uses, so it is the
 * check the method relies on. Constant time; false if either is empty. */
bool conn_twfido_same_person(const char *ticket_hashed_id_num, const char *hashed_id_num);
/* True when hashed_id_num is the lower-case hex SHA-256 of id_num (upper
 * case). The real service's hash is not public: this is what isso-sim
 * uses and our best reading; prefer conn_twfido_same_person(). */
bool conn_twfido_id_matches(const char *hashed_id_num, const char *id_num);

/* ---- the checksum, shared with isso-sim ---- */

/* Decodes a key given as 64 hex digits or base64 of 32 bytes. Returns 0
 * or ISSO_ERR_INVALID. */
int twfido_key_parse(const char *text, unsigned char key[TWFIDO_KEY_LEN]);
/* Computes the checksum over payload (the concatenated fields) into out:
 * hex(iv ‖ ciphertext ‖ tag). iv NULL: 12 random bytes (what we send);
 * tests pass a fixed one. Returns 0 or ISSO_ERR_CRYPTO. */
int twfido_checksum_seal(const unsigned char key[TWFIDO_KEY_LEN], const unsigned char *iv,
                         const char *payload, size_t len, char out[TWFIDO_CHECKSUM_LEN + 1]);
/* True when checksum (hex, either case, any IV) decrypts under key to the
 * lower-case hex SHA-256 of payload. Constant-time comparison. */
bool twfido_checksum_verify(const unsigned char key[TWFIDO_KEY_LEN], const char *payload,
                            size_t len, const char *checksum);

#endif
