/* Login methods. Each is a const driver table listed once in methods[]; the
 * portal, the flow engine and the OpenID Provider only ever see this
 * interface, so adding a method touches none of them. */
#ifndef ISSO_METHOD_H
#define ISSO_METHOD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/http.h"

struct isso_app;

/* Assurance levels, ordered. */
enum loa { LOA_LOW = 1, LOA_SUBSTANTIAL = 2, LOA_HIGH = 3 };

/* The connectors a method cannot work without. */
enum method_needs {
	METHOD_NEEDS_SMS = 1u << 0,     /* sms.url */
	METHOD_NEEDS_TWFIDO = 1u << 1,  /* twfido.url */
	METHOD_NEEDS_TELECOM = 1u << 2, /* telecom.url */
	METHOD_NEEDS_MOICA = 1u << 3,   /* moica.url */
	METHOD_NEEDS_NHI = 1u << 4,     /* nhi.url */
};

struct method {
	const char *id;          /* "taipeipass": also its URL /login/<id> */
	enum loa loa;            /* level its strongest path reaches */
	const char *const *amr;  /* RFC 8176 values, NULL-terminated */
	unsigned vouches;        /* claim_bit set it can vouch for itself */
	bool linked_member_data; /* may release a linked TaipeiPass member's data */
	/* Message keys for the portal card: title, bullet lines (NULL-ended)
	 * and whether it offers 前往註冊 (register_path, NULL when none). */
	const char *title_key;
	const char *const *bullet_keys;
	const char *register_path;
	/* enum method_needs: connectors the login needs, and those the
	 * register_path page needs (its link is hidden without them). */
	unsigned needs, register_needs;
	/* Serves /login/<id>[/<step>] (GET shows, POST acts) for the login
	 * transaction txn_id; step is "" for the first page. */
	void (*handle)(struct isso_app *app, struct http_req *req, const char *step);
	/* Registers extra routes (account pages …) at start-up; may be NULL. */
	void (*routes)(struct isso_app *app, struct http_server *srv);
};

/* The registry: every method built in, NULL-terminated, in portal order. */
extern const struct method *const methods[];

const struct method *method_find(const char *id);
/* True when every connector in needs (enum method_needs) is configured. */
bool method_connectors_ready(const struct isso_app *app, unsigned needs);
/* True when the method's connectors are configured: only then is it
 * offered on the portal and served under /login/<id>. */
bool method_available(const struct isso_app *app, const struct method *m);
/* Logs, in one line (methods_unavailable), the methods that are not
 * offered for want of a connector and the settings that would enable
 * them; nothing when all are available. For issod's start. */
void method_log_unavailable(const struct isso_app *app);
/* "urn:isso:loa:low" … and back; 0 for an unknown name. */
const char *loa_name(enum loa loa);
enum loa loa_parse(const char *name);

/* ---- helpers for method implementations ---- */

/* True when this client address (an IPv6 address by its /64: see
 * lib/addr.h) made more than security.ip_rate_per_min attempts of kind
 * what in the last minute (this one counted). A store failure counts as
 * limited. */
bool method_addr_limited(struct isso_app *app, struct http_req *req, const char *what);
/* The object under key in the login transaction, created empty when
 * absent (borrowed reference): where a method keeps its steps' state. */
json_t *method_state(json_t *txn, const char *key);
/* Counts one attempt for value (a number, an ID …) under its keyed lookup
 * hash in domain, in a window of window_seconds; true when over max, or
 * when the store cannot count (fail closed). key_prefix names the limit. */
bool method_value_limited(struct isso_app *app, const char *key_prefix, const char *domain,
                          const char *value, int window_seconds, int max);
/* The step indicator of a method's pages: one {label, current, done} per
 * message key of keys (NULL-ended), current being the 0-based step. */
json_t *method_steps(struct isso_app *app, struct http_req *req, const char *const *keys,
                     int current);
/* Saves the login transaction txn (id); false, with an error page sent,
 * when it expired meanwhile. */
bool method_txn_save(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
/* The sealed string under key in a method's state st, opened (malloc'd:
 * free with xfree_secret), or NULL when absent or unreadable. */
char *method_state_open(struct isso_app *app, json_t *st, const char *key);
/* The request's t parameter (query or form) when it is a well-formed
 * transaction id, else NULL: what a page may echo back in a link. */
const char *method_keep_txn(struct http_req *req);
/* Wall-clock milliseconds, for pacing polls. */
int64_t method_now_ms(void);

#endif
