/* Stored consent: which scopes a person granted a client, and whether each
 * released anything when granted. A scope granted while it had nothing to
 * show is stored as "word?" and asked again once it would release data, so
 * no field reaches a client that the citizen did not see on the page. */
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/xmalloc.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

/* Change with the text of the consent page's notice (consent.notice and
 * the page around it), so each consent records what the citizen read. */
const char oidc_consent_notice_version[] = "2026-12-consent-1";

static unsigned
claims_present(json_t *claims)
{
	unsigned present = 0;
	const char *key;
	json_t *v;

	json_object_foreach(claims, key, v)
	{
		present |= claim_bit_of(key);
	}
	return present;
}

int
oidc_consent_record(struct isso_app *app, const char *uuid, const char *client_id,
                    const char *scope, const char *declined, json_t *claims)
{
	unsigned present = claims_present(claims);
	json_t *record, *no = json_array();
	struct buf b;
	char w[66];
	int ret;

	buf_init(&b, 4096);
	for (const char *p = scope; *p != '\0';) {
		size_t len = strcspn(p, " ");
		unsigned bit = oidc_scope_bit(p, len);
		if (len > 0 && len + 1 < sizeof(w)) {
			memcpy(w, p, len);
			w[len] = '\0';
			if (b.len > 0)
				buf_addc(&b, ' ');
			buf_add(&b, p, len);
			/* Declined (an optional field left unticked) is a choice,
			 * remembered as "word-"; it counts as answered. */
			if (bit != 0 && declined != NULL && scope_has(declined, w)) {
				buf_addc(&b, '-');
				json_array_append_new(no, json_string(w));
			} else if (bit != 0 && (present & bit) == 0) {
				buf_addc(&b, '?');
			}
		}
		p += len;
		while (*p == ' ')
			p++;
	}
	record = json_pack("{s:s, s:o}", "notice", oidc_consent_notice_version, "declined", no);
	ret = record != NULL
	          ? store_consent_record(app->store, uuid, client_id, b.data, record, app_now())
	          : ISSO_ERR_NOMEM;
	json_decref(record);
	buf_free(&b);
	return ret;
}

int
oidc_consent_needed(struct isso_app *app, json_t *request, const char *uuid, json_t *session,
                    bool *needed_r)
{
	const char *prompt = json_string_value(json_object_get(request, "prompt"));
	const char *scope = json_string_value(json_object_get(request, "scope"));
	const char *client_id = json_string_value(json_object_get(request, "client_id"));
	struct store_client *client = NULL;
	char *consented = NULL, w[66];
	json_t *claims = NULL;
	int ret;

	*needed_r = true;
	if (prompt != NULL && scope_has(prompt, "consent"))
		return 0;
	ret = store_consent_get(app->store, uuid, client_id, &consented);
	if (ret < 0 || consented == NULL || scope == NULL)
		goto out;
	*needed_r = false;
	for (const char *p = scope; *p != '\0' && !*needed_r;) {
		size_t n = strcspn(p, " ");
		if (n + 2 > sizeof(w)) {
			*needed_r = true;
			break;
		}
		memcpy(w, p, n);
		w[n] = '\0';
		if (n > 0 && !scope_has(consented, w)) {
			w[n] = '-';
			w[n + 1] = '\0';
			if (scope_has(consented, w)) {
				/* Declined on the page: answered while the agency
				 * still marks it optional; asked again once it
				 * makes it required. */
				if (client == NULL &&
				    (ret = oidc_client_find(app, client_id, &client)) < 0)
					goto out;
				w[n] = '\0';
				if (!oidc_scope_optional(client, w))
					*needed_r = true;
				p += n;
				while (*p == ' ')
					p++;
				continue;
			}
			w[n] = '?';
			if (!scope_has(consented, w)) {
				*needed_r = true;
			} else {
				/* Granted when empty: still empty? */
				if (claims == NULL &&
				    (ret = oidc_claims(app, uuid, scope, session, &claims)) < 0)
					goto out;
				if (claims_present(claims) & oidc_scope_bit(p, n))
					*needed_r = true;
			}
		}
		p += n;
		while (*p == ' ')
			p++;
	}
out:
	store_client_free(client);
	json_decref(claims);
	free(consented);
	return ret;
}

int
oidc_consent_withdraw(struct isso_app *app, const char *uuid, const char *client_id)
{
	json_t *clients;
	int ret;

	/* Tokens first: once the consent is gone nothing the client holds
	 * may still work, and a failure here leaves the consent listed. */
	ret = store_token_revoke_client_person(app->store, client_id, uuid);
	if (ret == 0)
		ret = store_consent_delete(app->store, uuid, client_id);
	if (ret < 0)
		return ret;
	clients = json_pack("[s]", client_id);
	oidc_backchannel_logout(app, uuid, NULL, clients);
	json_decref(clients);
	store_audit_append(app->store, app_now(), "consent_withdrawn",
	                   json_pack("{s:s, s:s}", "uuid", uuid, "client_id", client_id));
	return 0;
}
