/* Binding a verified login method to a TaipeiPass member (歸戶): from
 * /account, a member runs a method that proves a national ID (MOICA card,
 * mobile natural-person certificate, NHI card) as a step-up inside the
 * member's own browser session. Its completion, instead of consent, sets
 * the proven ID on the member's person and makes the member gold; a person
 * the same ID had created before (an earlier card login) is merged into
 * the member's. Only the ID the method proved links, never a typed one. */
#ifndef ISSO_BIND_H
#define ISSO_BIND_H

#include <jansson.h>
#include <stdbool.h>

#include "auth/flow.h"
#include "http/http.h"

struct isso_app;

/* What binding a proven ID does, decided from what the store holds. */
enum bind_outcome {
	BIND_NEW,        /* no one has the ID: set it on the member */
	BIND_SAME,       /* the member has this ID already: made gold */
	BIND_MERGE,      /* another person (not a member) has it: merged in */
	BIND_OTHER_ID,   /* the member is bound to another ID: refused */
	BIND_TAKEN,      /* another member has the ID: refused */
	BIND_NOT_MEMBER, /* the logged-in person is no member: refused */
};

/* The decision, pure: member_uuid is the member's person (is_member when
 * a TaipeiPass member), member_id_hash its ID hash (NULL when none),
 * proven_hash the hash of the ID the method proved, found_uuid the person
 * holding proven_hash (NULL when none) and found_is_member whether that
 * person is a member. */
enum bind_outcome bind_decide(const char *member_uuid, bool is_member, const char *member_id_hash,
                              const char *proven_hash, const char *found_uuid,
                              bool found_is_member);

/* The member's personal data after binding, pure: pii (a new reference,
 * may be NULL) with the values the method proved (attrs: id_number, name,
 * birthdate) in place of typed ones; id_number is the normalised ID. */
json_t *bind_pii(const json_t *pii, const json_t *attrs, const char *id_number);

/* True for a method whose login proves a national ID and may bind it. */
bool bind_method_ok(const char *method_id);

/* Starts a binding for the member logged in by session (store key
 * session_key) with method_id: a login transaction for this browser
 * whose completion binds. Returns 0 with txn_id_r, or < 0. */
int bind_start(struct isso_app *app, struct http_req *req, json_t *session, const char *session_key,
               const char *method_id, char txn_id_r[44]);

/* True when transaction txn is a binding (flow_complete hands it here). */
bool bind_txn(const json_t *txn);

/* A method proved auth for binding transaction id: binds (or refuses with
 * a page) and answers the request; the browser session is left as it is. */
void bind_complete(struct isso_app *app, struct http_req *req, const char *id, json_t *txn,
                   const struct flow_auth *auth);

#endif
