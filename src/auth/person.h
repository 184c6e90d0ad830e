/* The person directory: one record per human (the stable uuid, 歸戶) with
 * sealed personal data, and the TaipeiPass member accounts that log in with
 * a password. */
#ifndef ISSO_PERSON_H
#define ISSO_PERSON_H

#include <jansson.h>
#include <stdbool.h>

#include "http/http.h"

struct isso_app;

/* A new TaipeiPass member. Strings are checked here: account 4–32 of
 * [a-z0-9._-] starting with a letter (case-folded), phone a mobile number,
 * email optional, password 8–128 characters, id_number optional
 * (valid national / resident ID), birthdate optional (YYYY-MM-DD). */
struct member_new {
	const char *account;
	const char *password;
	const char *phone;
	const char *email;
	const char *name;
	const char *id_number;
	const char *birthdate;
	const char *address;
	bool gold;
	bool phone_verified; /* the phone was proven (SMS code) when enrolling */
	/* The password already hashed (member_hash_password): stored as is;
	 * password is then only checked. NULL: member_create hashes it. */
	const char *password_hash;
};

/* Checks the fields of a new member a citizen chose without writing
 * anything: NULL, or the message key of the first problem. Stricter than
 * member_create: the password must also pass the policy for new
 * passwords (auth/password.h), with the member's account, e-mail, phone
 * and name as context words. */
const char *member_check(struct isso_app *app, const struct member_new *m);

/* Creates person and member in the store; the password (8–128
 * characters: an operator may import an existing member's) is hashed in
 * its NFKC form. Returns 0 with uuid_r, or
 * ISSO_ERR_INVALID with *error_key_r a message key naming the bad field,
 * or ISSO_ERR_CONFLICT (*error_key_r says which: account / phone / e-mail
 * / ID already registered — callers facing the public must not show the
 * phone, e-mail and ID cases). */
int member_create(struct isso_app *app, const struct member_new *m, char uuid_r[37],
                  const char **error_key_r);

/* The policy for a new password (auth/password.h) with context, the
 * member's own words (NULL-terminated). Returns NULL or a message key. */
const char *member_password_problem(struct isso_app *app, const char *password,
                                    const char *const *context);

/* The outcome of a password check (member_authenticate). */
struct member_auth_result {
	/* 0; ISSO_ERR_INVALID (unusable login or password); a store error;
	 * or ISSO_ERR_LIMIT: the server's hashing queue is full, nothing
	 * was checked or counted (answer 503, http_set_busy). */
	int ret;
	bool ok;       /* the password is right: uuid names the member */
	int wait;      /* > 0: refused unchecked, try again in that many seconds */
	char uuid[37]; /* "" unless ok */
};

/* Finishes a request after member_authenticate: done(req, res, ctx) with
 * the outcome, or done(NULL, NULL, ctx) when the request was abandoned
 * (the client left while its password was checked): only release ctx. */
typedef void member_auth_done_fn(struct http_req *req, const struct member_auth_result *res,
                                 void *ctx);

/* Checks a login name (account, e-mail or mobile number) and password for
 * the request req, throttled (auth/throttle.h): per member, however it is
 * named, and per login name when it names nobody, with the same answers
 * and timing; and per client address. Unless the attempt is refused
 * unchecked (res->wait), it spends one argon2id verification, found or
 * not, on the server's hashing pool (http_defer): the request thread is
 * free meanwhile. Calls done exactly once, at once when no hash is needed
 * or the queue is full; the caller returns right after this and responds
 * only in done. The password is copied and the copy wiped after use on
 * every path. A successful check gives the browser a device cookie. An
 * abandoned check stays counted as a failed guess. */
void member_authenticate(struct isso_app *app, struct http_req *req, const char *login,
                         const char *password, member_auth_done_fn *done, void *ctx);

/* Finishes a request after member_hash_password: ret 0 with hash (the
 * argon2id string, wiped after done returns), ISSO_ERR_LIMIT when the
 * hashing queue is full (answer 503, http_set_busy; nothing was done), or
 * ISSO_ERR_INVALID (not UTF-8). req NULL: the request was abandoned, only
 * release ctx. */
typedef void member_hash_done_fn(struct http_req *req, int ret, const char *hash, void *ctx);

/* Hashes a new password (its NFKC form) on the server's hashing pool, for
 * member_create (member_new.password_hash) or member_set_password_hash.
 * Calls done exactly once (at once when the queue is full); the caller
 * returns right after this and responds only in done. The password is
 * copied and the copy wiped after use. */
void member_hash_password(struct http_req *req, const char *password, member_hash_done_fn *done,
                          void *ctx);

/* Looks a member up by normalised mobile number; uuid_r empty when none. */
/* The member a hint names (a counter's login_hint): a national ID (of a
 * person who is a member), a mobile number, an e-mail or an account.
 * uuid_r "" when it names nobody; key_r gets a keyed hash of what was
 * looked up, the same shape either way. 0 or ISSO_ERR_STORE. */
int member_resolve_hint(struct isso_app *app, const char *hint, char uuid_r[37], char key_r[65]);
int member_find_by_phone(struct isso_app *app, const char *phone, char uuid_r[37]);
/* The member's account name and e-mail, for context words (malloc'd,
 * each NULL when unknown; the caller frees). */
int member_context(struct isso_app *app, const char *uuid, char **account_r, char **email_r);
/* Sets a new password (hashed in its NFKC form, on this thread). */
int member_set_password(struct isso_app *app, const char *uuid, const char *password);
/* Sets a password hashed by member_hash_password. */
int member_set_password_hash(struct isso_app *app, const char *uuid, const char *hash);

/* The sealed personal data of uuid as a JSON object (name, id_number,
 * birthdate, email, phone, address, account, level), or NULL. */
int person_pii(struct isso_app *app, const char *uuid, json_t **pii_r);

/* Identity linking (歸戶) for the methods that prove a national ID: the
 * person whose keyed ID hash matches id_number (a national or resident ID,
 * any case), created with sealed PII {id_number, name} when there is none
 * yet, so every method with the same ID lands on the same uuid (a
 * TaipeiPass member enrolled with that ID included). name may be NULL; it
 * is added to a person that has no name yet, never replaces one. Returns
 * 0 with uuid_r, ISSO_ERR_INVALID for an ID that is not valid, or a store
 * or crypto error. */
int person_link_id(struct isso_app *app, const char *id_number, const char *name, char uuid_r[37]);

#endif
