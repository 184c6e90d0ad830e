/* Binding a verified login method to a TaipeiPass member (歸戶): see
 * bind.h. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/app.h"
#include "auth/bind.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "auth/page.h"
#include "auth/person.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "store/store.h"

/* The transaction's member holding what binding needs ("bind" is the
 * browser the transaction belongs to, auth/flow.c). */
#define BIND_KEY "link"

/* The methods that prove a national ID from a certificate or card. */
static const char *const bind_methods[] = {"moica-card", "moica-mobile", "nhi-card", NULL};

bool
bind_method_ok(const char *method_id)
{
	for (const char *const *m = bind_methods; method_id != NULL && *m != NULL; m++) {
		if (strcmp(*m, method_id) == 0)
			return true;
	}
	return false;
}

enum bind_outcome
bind_decide(const char *member_uuid, bool is_member, const char *member_id_hash,
            const char *proven_hash, const char *found_uuid, bool found_is_member)
{
	if (!is_member)
		return BIND_NOT_MEMBER;
	if (member_id_hash != NULL)
		return strcmp(member_id_hash, proven_hash) == 0 ? BIND_SAME : BIND_OTHER_ID;
	if (found_uuid == NULL)
		return BIND_NEW;
	if (strcmp(found_uuid, member_uuid) == 0)
		return BIND_SAME;
	return found_is_member ? BIND_TAKEN : BIND_MERGE;
}

json_t *
bind_pii(const json_t *pii, const json_t *attrs, const char *id_number)
{
	static const char *const proven[] = {"name", "birthdate", NULL};
	json_t *out = json_is_object(pii) ? json_deep_copy(pii) : json_object();

	if (out == NULL)
		return NULL;
	json_object_set_new(out, "id_number", json_string(id_number));
	for (const char *const *k = proven; *k != NULL; k++) {
		const char *v = json_string_value(json_object_get(attrs, *k));
		if (v != NULL && v[0] != '\0' && strlen(v) <= 120)
			json_object_set_new(out, *k, json_string(v));
	}
	/* The level is the member's row; a stale copy must not disagree. */
	json_object_del(out, "level");
	return out;
}

bool
bind_txn(const json_t *txn)
{
	return json_is_object(json_object_get(txn, BIND_KEY));
}

int
bind_start(struct isso_app *app, struct http_req *req, json_t *session, const char *session_key,
           const char *method_id, char txn_id_r[44])
{
	const char *uuid = json_string_value(json_object_get(session, "uuid"));
	json_t *request;

	if (uuid == NULL || session_key == NULL || !bind_method_ok(method_id))
		return ISSO_ERR_INVALID;
	/* The binding belongs to this member's session on this browser: the
	 * completion checks both again. */
	request = json_pack("{s:b, s:i, s:s, s:{s:s, s:s, s:s}}", "account", true, "min_loa",
	                    LOA_SUBSTANTIAL, "locale", http_locale(req), BIND_KEY, "uuid", uuid,
	                    "session", session_key, "method", method_id);
	if (request == NULL)
		return ISSO_ERR_NOMEM;
	return flow_txn_create(app, req, request, txn_id_r);
}

/* Ends the transaction and shows a refusal (nothing was changed). */
static void
refuse(struct isso_app *app, struct http_req *req, const char *id, int status,
       const char *message_key)
{
	flow_txn_delete(app, id);
	page_error(app, req, status, "bind.refused_title", message_key, "/account");
}

/* The clients that held a consent of the merged person (told of the
 * merge). */
static int
consent_client(const struct store_consent *c, void *arg)
{
	json_array_append_new(arg, json_string(c->client_id));
	return 0;
}

void
bind_complete(struct isso_app *app, struct http_req *req, const char *id, json_t *txn,
              const struct flow_auth *auth)
{
	json_t *bind = json_object_get(txn, BIND_KEY);
	const char *uuid = json_string_value(json_object_get(bind, "uuid"));
	const char *want_key = json_string_value(json_object_get(bind, "session"));
	const char *key = NULL, *proven_id;
	json_t *session = flow_session(app, req, &key), *pii = NULL, *newpii = NULL;
	json_t *clients = json_array();
	struct store_person *person = NULL, *found = NULL;
	struct store_member *member = NULL, *found_member = NULL;
	char idn[11], hash[65], *text = NULL, *sealed = NULL;
	enum bind_outcome outcome;
	int ret;

	memset(idn, 0, sizeof(idn));
	/* Same browser, same live session, same member as at the start. */
	if (session == NULL || key == NULL || want_key == NULL || strcmp(key, want_key) != 0 ||
	    uuid == NULL ||
	    strcmp(json_string_value(json_object_get(session, "uuid")) ?: "", uuid) != 0) {
		refuse(app, req, id, 403, "bind.session_lost");
		goto out;
	}
	/* Only an ID the method itself proved. */
	proven_id = json_string_value(json_object_get(auth->attrs, "id_number"));
	if (!bind_method_ok(auth->method->id) || proven_id == NULL ||
	    !idnum_normalize(proven_id, idn) || !idnum_is_valid(idn)) {
		refuse(app, req, id, 400, "bind.not_proven");
		goto out;
	}
	secret_lookup_hash(&app->secrets, "id", idn, hash);
	ret = store_person_get(app->store, uuid, &person);
	if (ret == 0)
		ret = store_member_get(app->store, uuid, &member);
	if (ret == 0)
		ret = store_person_find_by_id_hash(app->store, hash, &found);
	if (ret == 0 && found != NULL && strcmp(found->uuid, uuid) != 0)
		ret = store_member_get(app->store, found->uuid, &found_member);
	if (ret < 0 || person == NULL)
		goto unavailable;
	outcome = bind_decide(uuid, member != NULL, person->id_hash, hash,
	                      found != NULL ? found->uuid : NULL, found_member != NULL);
	switch (outcome) {
	case BIND_NOT_MEMBER:
		refuse(app, req, id, 403, "bind.not_member");
		goto out;
	case BIND_OTHER_ID:
		refuse(app, req, id, 409, "bind.other_id");
		goto out;
	case BIND_TAKEN:
		refuse(app, req, id, 409, "bind.taken");
		store_audit_append(app->store, app_now(), "bind_refused",
		                   json_pack("{s:s, s:s, s:s}", "uuid", uuid, "method",
		                             auth->method->id, "reason", "taken"));
		goto out;
	default:
		break;
	}
	if (outcome == BIND_MERGE &&
	    store_consent_list(app->store, found->uuid, consent_client, clients) < 0)
		goto unavailable;
	if (person_pii(app, uuid, &pii) < 0)
		goto unavailable;
	newpii = bind_pii(pii, auth->attrs, idn);
	text = newpii != NULL ? json_dumps(newpii, JSON_COMPACT) : NULL;
	if (text == NULL || secret_seal(&app->secrets, text, strlen(text), &sealed) < 0)
		goto unavailable;
	ret = store_person_bind(app->store, uuid, outcome == BIND_MERGE ? found->uuid : NULL, hash,
	                        sealed, app_now());
	if (ret == ISSO_ERR_CONFLICT) {
		/* Another binding of the same ID or member won meanwhile. */
		refuse(app, req, id, 409, "bind.taken");
		goto out;
	}
	if (ret < 0)
		goto unavailable;
	/* The merged person's browser sessions end (their single sign-on
	 * would name a uuid that is gone). */
	if (outcome == BIND_MERGE)
		(void)flow_person_sessions_end_all(app, found->uuid, NULL, NULL);
	/* The binding login itself links the card's ID to a person (created
	 * then when the ID was new): that record, made during this
	 * transaction and known to no agency, is absorbed without a word.
	 * A person who existed before is announced. */
	if (outcome == BIND_MERGE &&
	    (found->created_at < json_integer_value(json_object_get(txn, "created_at")) ||
	     json_array_size(clients) > 0)) {
		store_audit_append(app->store, app_now(), "persons_merged",
		                   json_pack("{s:s, s:s, s:O}", "kept", uuid, "merged", found->uuid,
		                             "clients", clients));
		if (app->persons_merged != NULL)
			app->persons_merged(app, uuid, found->uuid, clients);
	}
	store_audit_append(app->store, app_now(), "person_bound",
	                   json_pack("{s:s, s:s}", "uuid", uuid, "method", auth->method->id));
	log_info("person_bound", "method", auth->method->id, NULL);
	flow_txn_delete(app, id);
	http_redirect(req, 303, "/account?done=bound#member");
	goto out;
unavailable:
	flow_txn_delete(app, id);
	page_error(app, req, 503, "error.unavailable", "error.unavailable.message", "/account");
out:
	sodium_memzero(idn, sizeof(idn));
	xfree_secret(text);
	free(sealed);
	json_decref(pii);
	json_decref(newpii);
	json_decref(clients);
	json_decref(session);
	store_person_free(person);
	store_person_free(found);
	store_member_free(member);
	store_member_free(found_member);
}
