/* The authentication flow engine: login transactions (a pending
 * authorization request and the progress of one login), browser sessions
 * (single sign-on), and the hand-over from a finished method to consent.
 *
 * A transaction lives in the store under an unguessable id carried in the
 * page URLs (?t=), and is bound to the browser that started it by a cookie,
 * so a leaked URL is useless elsewhere. */
#ifndef ISSO_FLOW_H
#define ISSO_FLOW_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/method.h"
#include "http/http.h"

struct isso_app;

/* What a finished method proved. */
struct flow_auth {
	const char *uuid; /* the person */
	const struct method *method;
	enum loa loa;           /* level reached by the path used */
	const char *const *amr; /* NULL: the method's own */
	const char *phone;      /* mobile number verified in this login, or NULL */
	/* Other attributes the method proved in this login (id_number, name,
	 * birthdate), or NULL. Kept sealed in the session. */
	json_t *attrs;
};

/* Creates a transaction holding request (stolen), binds it to this browser
 * and writes its id into id_r (44 bytes). */
int flow_txn_create(struct isso_app *app, struct http_req *req, json_t *request, char id_r[44]);
/* Loads the transaction named by the t parameter (query or form) for this
 * browser; NULL (and an error page already sent) when missing, expired or
 * not this browser's. *id_r points into request memory. */
json_t *flow_txn_load(struct isso_app *app, struct http_req *req, const char **id_r);
/* The same, except that for a live transaction another browser started
 * (a link opened elsewhere, e.g. by a phone app in the default browser)
 * it sends no page and sets *foreign_r: the caller says where to go on.
 * Nothing of the transaction is revealed or changed. */
json_t *flow_txn_load_bound(struct isso_app *app, struct http_req *req, const char **id_r,
                            bool *foreign_r);
/* Saves changes to a loaded transaction. */
int flow_txn_save(struct isso_app *app, const char *id, json_t *txn);
void flow_txn_delete(struct isso_app *app, const char *id);

/* A method has authenticated someone for transaction id: records it, starts
 * (or replaces) the browser session, and redirects to the consent step. */
void flow_complete(struct isso_app *app, struct http_req *req, const char *id, json_t *txn,
                   const struct flow_auth *auth);

/* The browser's current session, or NULL. Its object holds uuid, sid,
 * auth_time, loa, amr, method, attrs (sealed), clients. *key_r (may be NULL) gets the
 * store key (request memory). */
json_t *flow_session(struct isso_app *app, struct http_req *req, const char **key_r);
/* True when the request carries a session cookie, valid or not. A
 * cross-site POST never does: the cookie is SameSite=Lax. */
bool flow_session_cookie_sent(struct http_req *req);
/* A failed login attempt: logs the login_failed security event with
 * fields (an object naming at least the method; the reference is stolen)
 * and counts it in the method's failed logins (lib/metrics.h). Every
 * method reports its failures through here. */
void flow_login_failed(json_t *fields);
/* Adds client_id to the session's list (for back-channel logout). */
void flow_session_add_client(struct isso_app *app, const char *key, json_t *session,
                             const char *client_id);
/* Ends the browser session (cookie and store). */
void flow_session_end(struct isso_app *app, struct http_req *req, const char *key);

/* Whether the session that clients know as sid is still live for uuid:
 * not ended by logout, expiry, another person's login on the browser or
 * a password reset. 0 with *alive_r (and *expires_at_r, may be NULL:
 * when it ends), or < 0 when the store fails (*alive_r false: no verdict).
 * Refresh tokens issued without offline_access live only as long. */
int flow_sid_state(struct isso_app *app, const char *sid, const char *uuid, bool *alive_r,
                   int64_t *expires_at_r);

/* Ends every browser session of uuid (password reset): they stop
 * counting for single sign-on at once. */
int flow_sessions_end_person(struct isso_app *app, const char *uuid);

/* The live browser sessions of uuid, newest first (at most 32): an array
 * of session objects (as flow_session) each with its store "key"; a new
 * reference, empty when none or the store fails. */
json_t *flow_person_sessions(struct isso_app *app, const char *uuid);
/* Ends every browser session of uuid at once (flow_sessions_end_person)
 * and deletes the listed ones with their sids, telling each one's clients
 * through app->session_ended (back-channel logout); current (may be
 * NULL), the caller's own session under current_key, is ended and told
 * once whether listed or not. Refresh tokens bound to them die with
 * them. */
int flow_person_sessions_end_all(struct isso_app *app, const char *uuid, const char *current_key,
                                 json_t *current);

/* URL of a method page for transaction id (request memory). */
const char *flow_url(struct http_req *req, const char *path, const char *id);

#endif
