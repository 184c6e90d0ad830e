/* Agencies' applications (申請介接) and the decisions on them, shared by
 * the web pages (/agency, /admin/applications) and issoctl.
 *
 * One source of truth: an application is the client itself. A client in
 * status pending is unusable (the OpenID Provider serves only approved
 * clients); what the agency asked for and why lives in the client's
 * settings under "application":
 *
 *   {"ubn": owner organisation, "owner": uuid of the applicant,
 *    "notice": the §8 notice text, "contacts": who to call,
 *    "fields": {"phone": {"required": true, "reason": "…"}, …},
 *    "state": "pending" | "approved" | "refused", "refusal": "…",
 *    "suspended_by": "agency" | "city", "suspension": "reason",
 *    "history": [{"at": t, "event": "client_applied", "by": uuid,
 *                 "reason": "…" (refusals, suspensions),
 *                 "side": "agency" | "city" (suspensions)}, …]}
 *
 * The client's scope is what the city approved (openid plus the approved
 * fields); the fields asked for stay in the application, so an approval
 * may narrow them. Approving sets status approved last, so a failure half
 * way leaves the client unusable, never half approved.
 *
 * Credentials are shown once, to the agency, never to the reviewer: the
 * first approval of a client that authenticates with a secret and has
 * none yet (an application from the web) makes the secret, keeps only its hash on the client and
 * the secret itself sealed in a short-lived "reveal" row that the agency's page takes (deletes)
 * when it shows it. */
#ifndef ISSO_AGENCY_APP_H
#define ISSO_AGENCY_APP_H

#include <jansson.h>
#include <stdbool.h>

#include "store/store.h"

struct isso_app;

#define AGENCY_APP_KEY     "application"
#define AGENCY_REVEAL_KIND "reveal"
/* How long an approval's secret waits for the agency to take it. */
#define AGENCY_REVEAL_TTL (14 * 24 * 3600)
/* At most this many decisions are kept in an application's history. */
#define AGENCY_HISTORY_MAX 50
/* Text limits of an application (bytes). */
#define AGENCY_REASON_MAX 1000
#define AGENCY_NOTICE_MAX 8000

/* The application object of a client (borrowed), NULL when it has none. */
json_t *agency_app_of(const struct store_client *c);
/* "pending" | "approved" | "refused" | "suspended": where the client
 * stands, as the agency and the reviewer read it. */
const char *agency_app_state(const struct store_client *c);
/* Whether the client is the organisation ubn's. */
bool agency_app_owned_by(const struct store_client *c, const char *ubn);

/* Whether the client waits for a decision: pending and not refused (a
 * refused application goes back to pending when the agency edits it),
 * or suspended before it was ever approved. */
bool agency_app_decidable(const struct store_client *c);
/* Whether the client is suspended after it was approved (a suspension
 * made by agency_app_suspend, which records who made it): only such a
 * service is resumed; one suspended while pending needs a review. */
bool agency_app_resumable(const struct store_client *c);
/* Whether uuid holds any membership of the organisation that owns the
 * client's application (*member_r): such a city administrator decides
 * nothing on it. */
int agency_app_member(struct isso_app *app, const struct store_client *c, const char *uuid,
                      bool *member_r);

/* Every decision below is one store statement conditional on the client's
 * status and settings as read: of two racing changes one wins, and the
 * loser gets ISSO_ERR_CONFLICT (*why_r set) with nothing changed.
 *
 * Approves client_id waiting for a decision (agency_app_decidable): its scope becomes openid plus
 * the fields asked for, less the claim scopes in drop (space-separated, may be NULL: none); the
 * optional fields asked for stay optional. by names who decided (a uuid, or "issoctl"). Audited as
 * client_approved. 0; ISSO_ERR_INVALID with *why_r (static) when it cannot be approved (not
 * pending, unknown, nothing left); other errors from the store. */
int agency_app_approve(struct isso_app *app, const char *client_id, const char *drop,
                       const char *by, const char **why_r);
/* Refuses client_id waiting for a decision with reason (shown to the agency).
 * Audited as client_refused. Errors as agency_app_approve. */
int agency_app_refuse(struct isso_app *app, const char *client_id, const char *reason,
                      const char *by, const char **why_r);
/* Deletes client_id with its tokens, consents and any untaken secret.
 * Audited as client_deleted. *found_r false when unknown. */
int agency_app_delete(struct isso_app *app, const char *client_id, const char *by, bool *found_r);
/* Takes the secret waiting for client_id (once): *secret_r malloc'd
 * (free with xfree_secret), NULL when none waits (taken or expired). */
int agency_app_reveal(struct isso_app *app, const char *client_id, char **secret_r);
/* Appends a decision to the history in settings' application (created
 * when absent), with reason when not NULL; returns the entry (borrowed). */
json_t *agency_app_history(json_t *settings, const char *event, const char *by, int64_t now,
                           const char *reason);

/* Who suspended a service, recorded as the application's "suspended_by"
 * (and the history entry's "side"): the agency itself (an incident on its
 * side), or the city (issoctl, a city administrator). */
#define AGENCY_BY_AGENCY "agency"
#define AGENCY_BY_CITY   "city"
/* AGENCY_BY_AGENCY or AGENCY_BY_CITY for a suspended client (one that
 * names no one is the city's), NULL when it is not suspended. */
const char *agency_app_suspended_by(const struct store_client *c);
/* Suspends approved client_id: logins and tokens are refused until it is
 * resumed. side is AGENCY_BY_AGENCY or AGENCY_BY_CITY, reason (NULL: none,
 * else 1..1000 bytes) is shown to the agency. The city also suspends a
 * service the agency suspended: the suspension becomes the city's (with
 * its reason), which the agency cannot lift. Audited as client_suspended.
 * ISSO_ERR_INVALID with *why_r when it cannot be suspended (or unknown). */
int agency_app_suspend(struct isso_app *app, const char *client_id, const char *side,
                       const char *reason, const char *by, const char **why_r);
/* Resumes suspended client_id (agency_app_resumable; ISSO_ERR_INVALID
 * otherwise): approved again as it was (a suspended service cannot be
 * edited). The agency (side AGENCY_BY_AGENCY) resumes
 * only its own suspension: ISSO_ERR_DENIED otherwise, and nothing
 * changes. Audited as client_resumed. ISSO_ERR_INVALID when it is not
 * suspended (or unknown). */
int agency_app_resume(struct isso_app *app, const char *client_id, const char *side, const char *by,
                      const char **why_r);

#endif
