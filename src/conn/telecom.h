/* Telecom number-verification connector (手機電信驗證). The carriers'
 * contract is not public: this speaks OUR contract, shaped like TWCA's
 * 電話號碼核實 API and meant to be mapped onto the real service at
 * deployment (docs/connectors/telecom.md):
 *
 *   POST {base}/v1/verifications        start: ID, phone, birthdate, carrier
 *        -> {"result":"S", verification_id, link, expires_in}
 *        |  {"result":"F", "reason": mismatch | prepaid | foreign | …}
 *   GET  {base}/v1/verifications/{id}   -> {"result":"S", "state": …}
 *
 * The citizen's phone opens the link over its carrier's own mobile network;
 * the carrier sees the number behind the connection and confirms. Clients
 * authenticate with HTTP Basic (client_id / client_secret, form-encoded
 * first as in RFC 6749 §2.3.1). libcurl types never appear here. */
#ifndef ISSO_CONN_TELECOM_H
#define ISSO_CONN_TELECOM_H

#include <stddef.h>

struct conn_telecom;

/* The method's default window, in seconds, for opening the link (the
 * portal counts it down on the page). */
#define TELECOM_WINDOW_DEFAULT 37
#define TELECOM_WINDOW_MAX     300
/* Size of a verification_id buffer: up to 64 characters [A-Za-z0-9_-]. */
#define TELECOM_VERIFICATION_ID_SIZE 65

/* Why a carrier refused to start a verification. The page explains each
 * one; MISMATCH deliberately covers every disagreement between the ID,
 * the birthdate and the number's holder, so that a refusal never tells a
 * stranger whether an ID exists or which field was wrong. */
enum telecom_refusal {
	TELECOM_REFUSAL_NONE = 0,       /* accepted, or not a refusal of the citizen */
	TELECOM_REFUSAL_MISMATCH,       /* ID / birthdate not the number's holder */
	TELECOM_REFUSAL_PREPAID,        /* 預付卡 */
	TELECOM_REFUSAL_FOREIGN,        /* 外國人 (resident certificate holder) */
	TELECOM_REFUSAL_CORPORATE,      /* 企業門號 */
	TELECOM_REFUSAL_RESTRICTED,     /* 其他功能受限門號 */
	TELECOM_REFUSAL_WRONG_CARRIER,  /* the number is served by another carrier */
	TELECOM_REFUSAL_UNKNOWN_NUMBER, /* no carrier serves this number */
	TELECOM_REFUSAL_OTHER,          /* a reason this build does not know */
};

/* Where a started verification stands. */
enum telecom_state {
	TELECOM_STATE_PENDING = 0,  /* link not yet opened (or only retried) */
	TELECOM_STATE_CONFIRMED,    /* opened over this carrier's mobile network
	                             * by this very number: verified */
	TELECOM_STATE_WIFI,         /* opened, but not over the mobile network
	                             * (Wi-Fi, iCloud Private Relay, VPN): turn
	                             * them off and open the link again */
	TELECOM_STATE_OTHER_NUMBER, /* opened over a mobile network, but by
	                             * another number (dual-SIM phone using the
	                             * other SIM for data): switch and retry */
	TELECOM_STATE_EXPIRED,      /* the window passed without confirmation */
	TELECOM_STATE_ERROR,        /* the carrier no longer knows it, or failed */
};

/* One carrier the method offers. */
struct telecom_carrier {
	const char *id;      /* "cht" | "twm" | "fet" */
	const char *name;    /* 中華電信 … (as the page lists it) */
	const char *name_en; /* Chunghwa Telecom … */
	const char *merged;  /* a former carrier now served by this one, or NULL */
};

/* The carriers, terminated by an entry with a NULL id. Since 2023 台灣之星
 * numbers are served by 台灣大哥大 and 亞太電信 numbers by 遠傳. */
extern const struct telecom_carrier telecom_carriers[];

/* The carrier with this id, or NULL. The former carriers' ids "tstar" and
 * "aptg" give the carrier that absorbed them. */
const struct telecom_carrier *telecom_carrier_find(const char *id);

/* Short English names for logs and tests ("mismatch", "confirmed" …). */
const char *telecom_refusal_name(enum telecom_refusal refusal);
const char *telecom_state_name(enum telecom_state state);

/* base_url: the contract's base (e.g. http://127.0.0.1:8090/telecom),
 * http(s) only, without a query. timeout_ms bounds each exchange (<= 0:
 * 5000). Strings are copied; the secret is wiped on free. NULL when an
 * argument is missing or malformed. */
struct conn_telecom *conn_telecom_new(const char *base_url, const char *client_id,
                                      const char *client_secret, int timeout_ms);
void conn_telecom_free(struct conn_telecom *tel);

/* Asks carrier ("cht" | "twm" | "fet", or "tstar" / "aptg") to verify that
 * id_num (national ID or resident certificate number) and birthdate
 * ("YYYY-MM-DD") belong to the holder of phone ("09…" in any form
 * phone_normalize() takes). window_s is how long the link stays valid
 * (0: TELECOM_WINDOW_DEFAULT; 1..TELECOM_WINDOW_MAX).
 *
 * Returns 0 when the carrier accepted: verification_id_r filled, *link_r
 * the URL the citizen's phone must open over mobile data (malloc'd, the
 * caller frees; show it as a QR code, never log it), *expires_in_r the
 * seconds left. Otherwise *link_r is NULL and:
 *   ISSO_ERR_DENIED with *refusal_r != NONE: the carrier refused (above);
 *   ISSO_ERR_DENIED with *refusal_r == NONE: our credentials were refused
 *     (a configuration fault, not the citizen's);
 *   ISSO_ERR_INVALID: an argument is malformed (nothing was sent);
 *   ISSO_ERR_LIMIT: the carrier is busy (HTTP 429 / 503);
 *   ISSO_ERR_TIMEOUT, ISSO_ERR_IO: no usable answer.
 * *error_r (optional) is a static English reason. Never logs the ID, the
 * birthdate or the link. Thread-safe. */
int conn_telecom_start(struct conn_telecom *tel, const char *id_num, const char *phone,
                       const char *birthdate, const char *carrier, int window_s,
                       char verification_id_r[TELECOM_VERIFICATION_ID_SIZE], char **link_r,
                       int *expires_in_r, enum telecom_refusal *refusal_r, const char **error_r);

/* Where verification_id stands. Returns 0 with *state_r (ERROR when the
 * carrier does not know the id), ISSO_ERR_INVALID for a malformed id,
 * ISSO_ERR_DENIED when our credentials are refused, ISSO_ERR_LIMIT,
 * ISSO_ERR_TIMEOUT or ISSO_ERR_IO; *error_r as above. Thread-safe. */
int conn_telecom_status(struct conn_telecom *tel, const char *verification_id,
                        enum telecom_state *state_r, const char **error_r);

#endif
