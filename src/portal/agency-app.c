/* Agencies' applications and the decisions on them (agency-app.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "oidc/oidc.h"
#include "portal/agency-app.h"

json_t *
agency_app_of(const struct store_client *c)
{
	json_t *a = c != NULL ? json_object_get(c->settings, AGENCY_APP_KEY) : NULL;

	return json_is_object(a) ? a : NULL;
}

const char *
agency_app_state(const struct store_client *c)
{
	const char *s = json_string_value(json_object_get(agency_app_of(c), "state"));

	if (c->status == CLIENT_APPROVED)
		return "approved";
	if (c->status == CLIENT_SUSPENDED)
		return "suspended";
	return s != NULL && strcmp(s, "refused") == 0 ? "refused" : "pending";
}

bool
agency_app_owned_by(const struct store_client *c, const char *ubn)
{
	const char *owner = json_string_value(json_object_get(agency_app_of(c), "ubn"));

	return owner != NULL && ubn != NULL && strcmp(owner, ubn) == 0;
}

json_t *
agency_app_history(json_t *settings, const char *event, const char *by, int64_t now,
                   const char *reason)
{
	json_t *a = json_object_get(settings, AGENCY_APP_KEY), *h, *e;

	if (!json_is_object(a)) {
		a = json_object();
		json_object_set_new(settings, AGENCY_APP_KEY, a);
	}
	h = json_object_get(a, "history");
	if (!json_is_array(h)) {
		h = json_array();
		json_object_set_new(a, "history", h);
	}
	while (json_array_size(h) >= AGENCY_HISTORY_MAX)
		json_array_remove(h, 0);
	e = json_pack("{s:I, s:s, s:s}", "at", (json_int_t)now, "event", event, "by", by);
	if (reason != NULL)
		json_object_set_new(e, "reason", json_string(reason));
	json_array_append_new(h, e);
	return e;
}

const char *
agency_app_suspended_by(const struct store_client *c)
{
	const char *s = json_string_value(json_object_get(agency_app_of(c), "suspended_by"));

	if (c->status != CLIENT_SUSPENDED)
		return NULL;
	/* A suspension that names no one (older, or made outside these
	 * rules) is the city's: only the city lifts it. */
	return s != NULL && strcmp(s, AGENCY_BY_AGENCY) == 0 ? AGENCY_BY_AGENCY : AGENCY_BY_CITY;
}

/* The scope an approval gives: openid, then each claim scope asked for
 * (in the application's fields, or the client's scope when it has no
 * application) that drop does not name. Optional ones go to optional,
 * the ones asked for and dropped to dropped. */
static void
approved_scope(const struct store_client *c, const char *drop, struct buf *scope, json_t *optional,
               json_t *dropped)
{
	json_t *fields = json_object_get(agency_app_of(c), "fields");

	buf_addstr(scope, "openid");
	for (unsigned i = 0; i < claim_scopes_count; i++) {
		const char *w = claim_scopes[i].scope;
		json_t *f = json_object_get(fields, w);
		bool asked = json_is_object(fields) ? json_is_object(f) : scope_has(c->scope, w);
		if (!asked)
			continue;
		if (drop != NULL && scope_has(drop, w)) {
			json_array_append_new(dropped, json_string(w));
			continue;
		}
		buf_addstr(scope, " ");
		buf_addstr(scope, w);
		if (json_is_object(fields) ? json_is_false(json_object_get(f, "required"))
		                           : oidc_scope_optional(c, w))
			json_array_append_new(optional, json_string(w));
	}
	if (!json_is_object(fields) && scope_has(c->scope, "offline_access"))
		buf_addstr(scope, " offline_access");
}

bool
agency_app_decidable(const struct store_client *c)
{
	const char *s = json_string_value(json_object_get(agency_app_of(c), "state"));

	if (s != NULL && strcmp(s, "refused") == 0)
		return false;
	if (c->status == CLIENT_PENDING)
		return true;
	/* Suspended before it was ever approved (issoctl client suspend of
	 * a pending client): only a review puts it to work. */
	return c->status == CLIENT_SUSPENDED && !agency_app_resumable(c);
}

bool
agency_app_resumable(const struct store_client *c)
{
	/* Only a suspension of an approved service records who made it
	 * (agency_app_suspend); resuming takes that record away. */
	return c->status == CLIENT_SUSPENDED &&
	       json_is_string(json_object_get(agency_app_of(c), "suspended_by"));
}

int
agency_app_member(struct isso_app *app, const struct store_client *c, const char *uuid,
                  bool *member_r)
{
	const char *ubn = json_string_value(json_object_get(agency_app_of(c), "ubn"));
	struct store_org_membership *ms = NULL;
	size_t n = 0;
	int ret;

	*member_r = false;
	if (ubn == NULL || uuid == NULL)
		return 0;
	ret = store_org_memberships(app->store, uuid, STORE_MEMBERSHIPS_MAX, &ms, &n);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++)
		if (ms[i].ubn != NULL && strcmp(ms[i].ubn, ubn) == 0)
			*member_r = true;
	store_org_memberships_free(ms, n);
	return 0;
}

/* Loads a client waiting for a decision. */
static int
load_pending(struct isso_app *app, const char *client_id, struct store_client **c_r,
             const char **why_r)
{
	int ret;

	*c_r = NULL;
	ret = store_client_get(app->store, client_id, c_r);
	if (ret < 0)
		return ret;
	if (*c_r == NULL) {
		*why_r = "no such application";
		return ISSO_ERR_INVALID;
	}
	if (!agency_app_decidable(*c_r)) {
		*why_r = "the application is not waiting for a decision";
		store_client_free(*c_r);
		*c_r = NULL;
		return ISSO_ERR_INVALID;
	}
	return 0;
}

int
agency_app_approve(struct isso_app *app, const char *client_id, const char *drop, const char *by,
                   const char **why_r)
{
	struct store_client *c = NULL;
	struct buf scope;
	json_t *settings = NULL, *optional = json_array(), *a, *dropped = json_array();
	char secret[44], hash[65], *sealed = NULL;
	bool with_secret, found = false;
	int64_t now = app_now();
	int ret;

	*why_r = NULL;
	secret[0] = '\0';
	buf_init(&scope, 1024);
	ret = load_pending(app, client_id, &c, why_r);
	if (ret < 0)
		goto out;
	approved_scope(c, drop, &scope, optional, dropped);
	settings = json_deep_copy(c->settings);
	if (!json_is_object(settings)) {
		json_decref(settings);
		settings = json_object();
	}
	if (json_array_size(optional) > 0)
		json_object_set(settings, "optional_scopes", optional);
	else
		json_object_del(settings, "optional_scopes");
	if (oidc_optional_scopes_check(settings, scope.data, why_r) < 0) {
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	agency_app_history(settings, "client_approved", by, now, NULL);
	a = json_object_get(settings, AGENCY_APP_KEY);
	json_object_set_new(a, "state", json_string("approved"));
	json_object_del(a, "refusal");
	json_object_set(a, "dropped", dropped);

	/* A secret only the agency sees, made at the first approval of a
	 * client that has none (an application from the web); a service
	 * approved again after an edit keeps the secret it runs with. */
	with_secret = (strcmp(c->auth_method, "client_secret_basic") == 0 ||
	               strcmp(c->auth_method, "client_secret_post") == 0) &&
	              c->secret_hash == NULL;
	if (with_secret) {
		secret_token(32, secret);
		secret_sha256_hex(secret, strlen(secret), hash);
	}
	/* One statement, only while the application is still as read: of
	 * two reviewers, one decides; an edit meanwhile is reviewed again. */
	ret = store_client_set_state(app->store, c, CLIENT_APPROVED, scope.data,
	                             with_secret ? hash : NULL, settings, &found);
	if (ret < 0)
		goto out;
	if (!found) {
		*why_r = "the application changed meanwhile";
		ret = ISSO_ERR_CONFLICT;
		goto out;
	}
	store_audit_append(app->store, now, "client_approved",
	                   json_pack("{s:s, s:s, s:s, s:O}", "client_id", client_id, "by", by,
	                             "scope", scope.data, "dropped", dropped));
	if (with_secret) {
		json_t *row;
		ret = secret_seal(&app->secrets, secret, strlen(secret), &sealed);
		if (ret < 0)
			goto out;
		row = json_pack("{s:s}", "secret", sealed);
		ret = store_eph_put(app->store, AGENCY_REVEAL_KIND, client_id, row,
		                    now + AGENCY_REVEAL_TTL);
		json_decref(row);
		if (ret < 0)
			log_warn("agency_reveal_lost", "client_id", client_id, NULL);
	}
out:
	explicit_bzero(secret, sizeof(secret));
	store_client_free(c);
	buf_free(&scope);
	json_decref(settings);
	json_decref(optional);
	json_decref(dropped);
	free(sealed);
	return ret;
}

int
agency_app_refuse(struct isso_app *app, const char *client_id, const char *reason, const char *by,
                  const char **why_r)
{
	struct store_client *c = NULL;
	json_t *settings = NULL, *a;
	bool found = false;
	int64_t now = app_now();
	int ret;

	*why_r = NULL;
	if (reason == NULL || reason[0] == '\0' || strlen(reason) > AGENCY_REASON_MAX) {
		*why_r = "a reason (at most 1000 bytes) is required";
		return ISSO_ERR_INVALID;
	}
	ret = load_pending(app, client_id, &c, why_r);
	if (ret < 0)
		return ret;
	settings = json_deep_copy(c->settings);
	if (!json_is_object(settings)) {
		json_decref(settings);
		settings = json_object();
	}
	agency_app_history(settings, "client_refused", by, now, reason);
	a = json_object_get(settings, AGENCY_APP_KEY);
	json_object_set_new(a, "state", json_string("refused"));
	json_object_set_new(a, "refusal", json_string(reason));
	/* As an approval: only while the application is as read. */
	ret = store_client_set_state(app->store, c, c->status, NULL, NULL, settings, &found);
	if (ret == 0 && !found) {
		*why_r = "the application changed meanwhile";
		ret = ISSO_ERR_CONFLICT;
	}
	if (ret == 0)
		store_audit_append(app->store, now, "client_refused",
		                   json_pack("{s:s, s:s}", "client_id", client_id, "by", by));
	store_client_free(c);
	json_decref(settings);
	return ret;
}

/* The client's settings, copied for a change (an object). */
static json_t *
settings_copy(const struct store_client *c)
{
	json_t *settings = json_deep_copy(c->settings);

	if (!json_is_object(settings)) {
		json_decref(settings);
		settings = json_object();
	}
	return settings;
}

int
agency_app_suspend(struct isso_app *app, const char *client_id, const char *side,
                   const char *reason, const char *by, const char **why_r)
{
	struct store_client *c = NULL;
	json_t *settings = NULL, *a, *e, *data;
	bool found = false;
	int64_t now = app_now();
	int ret;

	*why_r = NULL;
	if (reason != NULL && (reason[0] == '\0' || strlen(reason) > AGENCY_REASON_MAX)) {
		*why_r = "a reason is at most 1000 bytes";
		return ISSO_ERR_INVALID;
	}
	ret = store_client_get(app->store, client_id, &c);
	if (ret < 0)
		return ret;
	if (c == NULL) {
		*why_r = "no such client";
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	/* An approved service; or, for the city, one the agency suspended:
	 * the city takes the suspension over (the agency can no longer lift
	 * it). */
	if (c->status != CLIENT_APPROVED &&
	    !(strcmp(side, AGENCY_BY_CITY) == 0 && agency_app_resumable(c) &&
	      strcmp(agency_app_suspended_by(c), AGENCY_BY_AGENCY) == 0)) {
		*why_r = c->status == CLIENT_SUSPENDED
		             ? "the service is already suspended"
		             : "only an approved service can be suspended";
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	settings = settings_copy(c);
	e = agency_app_history(settings, "client_suspended", by, now, reason);
	json_object_set_new(e, "side", json_string(side));
	a = json_object_get(settings, AGENCY_APP_KEY);
	json_object_set_new(a, "suspended_by", json_string(side));
	if (reason != NULL)
		json_object_set_new(a, "suspension", json_string(reason));
	else
		json_object_del(a, "suspension");
	/* Only status and settings, only while both are as read: two
	 * decisions racing, one counts; nothing else is written back. */
	ret = store_client_set_state(app->store, c, CLIENT_SUSPENDED, NULL, NULL, settings, &found);
	if (ret < 0)
		goto out;
	if (!found) {
		*why_r = "the service changed meanwhile";
		ret = ISSO_ERR_CONFLICT;
		goto out;
	}
	data = json_pack("{s:s, s:s, s:s}", "client_id", client_id, "by", by, "suspended_by", side);
	if (reason != NULL)
		json_object_set_new(data, "reason", json_string(reason));
	store_audit_append(app->store, now, "client_suspended", data);
out:
	store_client_free(c);
	json_decref(settings);
	return ret;
}

int
agency_app_resume(struct isso_app *app, const char *client_id, const char *side, const char *by,
                  const char **why_r)
{
	struct store_client *c = NULL;
	json_t *settings = NULL, *a, *e;
	bool found = false;
	int64_t now = app_now();
	int ret;

	*why_r = NULL;
	ret = store_client_get(app->store, client_id, &c);
	if (ret < 0)
		return ret;
	if (c == NULL || c->status != CLIENT_SUSPENDED) {
		*why_r = c == NULL ? "no such client" : "the service is not suspended";
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	/* The agency lifts only its own suspension; the city any. */
	if (strcmp(side, AGENCY_BY_CITY) != 0 &&
	    strcmp(agency_app_suspended_by(c), AGENCY_BY_AGENCY) != 0) {
		*why_r = "the city suspended the service: only the city resumes it";
		ret = ISSO_ERR_DENIED;
		goto out;
	}
	if (!agency_app_resumable(c)) {
		*why_r = "the service was never approved: it needs a review (issoctl application "
		         "approve)";
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	settings = settings_copy(c);
	e = agency_app_history(settings, "client_resumed", by, now, NULL);
	json_object_set_new(e, "side", json_string(side));
	a = json_object_get(settings, AGENCY_APP_KEY);
	json_object_del(a, "suspended_by");
	json_object_del(a, "suspension");
	/* Nothing citizens see can have changed meanwhile (a suspended
	 * service cannot be edited), so it is approved as it was. */
	ret = store_client_set_state(app->store, c, CLIENT_APPROVED, NULL, NULL, settings, &found);
	if (ret < 0)
		goto out;
	if (!found) {
		*why_r = "the service changed meanwhile";
		ret = ISSO_ERR_CONFLICT;
		goto out;
	}
	store_audit_append(app->store, now, "client_resumed",
	                   json_pack("{s:s, s:s, s:s}", "client_id", client_id, "by", by,
	                             "suspended_by", agency_app_suspended_by(c)));
out:
	store_client_free(c);
	json_decref(settings);
	return ret;
}

int
agency_app_delete(struct isso_app *app, const char *client_id, const char *by, bool *found_r)
{
	int ret;

	ret = store_client_delete(app->store, client_id, found_r);
	if (ret < 0 || !*found_r)
		return ret;
	(void)store_eph_delete(app->store, AGENCY_REVEAL_KIND, client_id);
	store_audit_append(app->store, app_now(), "client_deleted",
	                   json_pack("{s:s, s:s}", "client_id", client_id, "by", by));
	return 0;
}

int
agency_app_reveal(struct isso_app *app, const char *client_id, char **secret_r)
{
	json_t *row = NULL;
	bool taken = false;
	int ret;

	*secret_r = NULL;
	ret = store_eph_get(app->store, AGENCY_REVEAL_KIND, client_id, app_now(), &row, NULL);
	if (ret < 0 || row == NULL)
		return ret;
	/* Only the one request that deletes the row shows it. */
	ret = store_eph_take(app->store, AGENCY_REVEAL_KIND, client_id, app_now(), &taken);
	if (ret == 0 && taken) {
		const char *sealed = json_string_value(json_object_get(row, "secret"));
		if (sealed == NULL || secret_open(&app->secrets, sealed, secret_r) < 0)
			ret = ISSO_ERR_CRYPTO;
	}
	json_decref(row);
	return ret;
}
