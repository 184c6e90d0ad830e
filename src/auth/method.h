/* Login methods. Each is a const driver table listed once in methods[]; the
 * portal, the flow engine and the OpenID Provider only ever see this
 * interface, so adding a method touches none of them. */
#ifndef ISSO_METHOD_H
#define ISSO_METHOD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

struct isso_app;

/* Assurance levels, ordered. */
enum loa { LOA_LOW = 1, LOA_SUBSTANTIAL = 2, LOA_HIGH = 3 };

/* What a method's init answers (kept in struct isso_app, indexed like
 * methods[], read-only after start). */
struct method_setup {
	void *state; /* what its handlers use (method_state_of); NULL: none */
	/* Empty: offered. Otherwise it is not, and these are the settings
	 * that would enable it, comma-separated, its own first
	 * ("twfido.url,sms.url": method_setup_unset). */
	char unset[128];
	/* Likewise for its register_path page (the link is hidden). */
	char register_unset[64];
};

/* One page or call of a method, served at /login/<id>[/<name>]. */
enum method_step_flags {
	/* Loads the transaction with flow_txn_load_bound: a browser that did
	 * not start the login gets the method's foreign_page instead. */
	METHOD_STEP_BOUND = 1u << 0,
	/* A JSON call (polled by a page script): a refusal before the step
	 * is answered in JSON ({"state":"none"}), not with a page. */
	METHOD_STEP_JSON = 1u << 1,
};

struct method_step {
	const char *name;      /* "" for the first page; NULL ends the table */
	unsigned http_methods; /* enum http_method: others get 405 */
	unsigned flags;        /* enum method_step_flags */
	/* Serves the step for the login transaction id, loaded as txn (the
	 * dispatcher's reference: json_incref to keep it past the return). */
	void (*handler)(struct isso_app *app, struct http_req *req, const char *id, json_t *txn);
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
	/* Lifecycle, run by app_init in registry order after the shared
	 * connectors (auth/shared.h) are built. init parses the method's own
	 * sections (config_section_parse) and checks them, refusing what a
	 * server for citizens must not run (conn/conn-service.h). With build
	 * false (issoctl, and issod before it opens anything) it stops there
	 * and keeps nothing. With build true it also builds its connectors
	 * into setup->state, or says in setup->unset what would enable it.
	 * Returns 0, or ISSO_ERR_INVALID with *error_r "section.key: why",
	 * which stops the start. May be NULL: nothing to configure. */
	int (*init)(struct isso_app *app, bool build, struct method_setup *setup,
	            const char **error_r);
	/* Releases setup->state at app_free. May be NULL. */
	void (*free)(void *state);
	/* Its steps. The portal serves /login/<id>[/<step>]: an unknown step
	 * is 404, a request method the step does not take 405, then the
	 * login transaction is loaded (its error pages sent by flow) and
	 * the handler called. */
	const struct method_step *steps;
	/* Called for a known step before the 405 check and the transaction;
	 * false when it answered (e.g. 503 without a part it needs). May be
	 * NULL. */
	bool (*prepare)(struct isso_app *app, struct http_req *req, const struct method_step *step);
	/* True: a login asking for more than loa is refused before any step
	 * (403), rather than at flow_complete. */
	bool refuse_above_loa;
	/* The page for a METHOD_STEP_BOUND step opened in another browser. */
	void (*foreign_page)(struct isso_app *app, struct http_req *req);
	/* Its help page, served at GET /<id>/help from this template with
	 * this title (message key) when help_template is not NULL; back_url
	 * leads to the login when the link carries a transaction. help_vars
	 * (may be NULL) adds the template's own variables. */
	const char *help_template, *help_title_key;
	void (*help_vars)(struct isso_app *app, json_t *page);
	/* Registers extra routes (account pages …) at start-up; may be NULL. */
	void (*routes)(struct isso_app *app, struct http_server *srv);
};

/* The registry: every method built in, NULL-terminated, in portal order. */
extern const struct method *const methods[];

const struct method *method_find(const char *id);
/* The step of m named name, or NULL. */
const struct method_step *method_step_find(const struct method *m, const char *name);
/* True when m's init found it configured: only then is it offered on the
 * portal and served under /login/<id>. */
bool method_available(const struct isso_app *app, const struct method *m);
/* True when m's register_path page can be offered. */
bool method_register_available(const struct isso_app *app, const struct method *m);
/* The state m's init built (struct method_setup), or NULL. */
void *method_state_of(const struct isso_app *app, const struct method *m);
/* Adds setting ("sms.url") to a method_setup unset list (dst, of size n). */
void method_setup_unset(char *dst, size_t n, const char *setting);
/* Logs, in one line (methods_unavailable), the methods that are not
 * offered and the settings that would enable them, each once: every
 * method's own setting (the first of its unset list) in portal order,
 * then the shared ones; nothing when all are available. For issod's
 * start. */
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
