/* Issuing authorization codes, and the claims they carry. */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "auth/person.h"
#include "auth/page.h"
#include "http/parse.h"
#include "jose/jose.h"
#include "lib/b64.h"
#include "lib/buf.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

void
oidc_new_token(char out[44], char hash[65])
{
	secret_token(32, out);
	secret_sha256_hex(out, strlen(out), hash);
}

int
oidc_token_lookup(struct isso_app *app, const char *value, struct store_token **t_r)
{
	struct store_token *t = NULL;
	bool alive = false;
	char hash[65];
	int ret;

	*t_r = NULL;
	if (value == NULL || strlen(value) != 43)
		return 0;
	secret_sha256_hex(value, 43, hash);
	ret = store_token_get(app->store, hash, app_now(), &t);
	if (ret < 0)
		return ret;
	/* A refresh token without offline_access dies with the session. */
	if (t != NULL && t->kind == TOKEN_REFRESH &&
	    !json_is_true(json_object_get(t->data, "offline"))) {
		ret = flow_sid_state(app, t->sid, t->uuid, &alive, NULL);
		if (ret < 0 || !alive) {
			store_token_free(t);
			return ret;
		}
	}
	*t_r = t;
	return 0;
}

char *
oidc_seal_claims(struct isso_app *app, json_t *claims)
{
	char *text = json_dumps(claims, JSON_COMPACT);
	char *sealed = NULL;

	if (text == NULL || secret_seal(&app->secrets, text, strlen(text), &sealed) < 0)
		sealed = NULL;
	xfree_secret(text);
	return sealed;
}

json_t *
oidc_open_claims(struct isso_app *app, json_t *data)
{
	const char *sealed = json_string_value(json_object_get(data, "claims"));
	char *text = NULL;
	json_t *claims = NULL;

	if (sealed == NULL)
		return json_object();
	if (secret_open(&app->secrets, sealed, &text) == 0)
		claims = json_loads(text, 0, NULL);
	xfree_secret(text);
	return claims;
}

const char *
oidc_sub(struct isso_app *app, const char *client_id, const char *uuid, char out[44])
{
	char *msg = xasprintf("%s|%s", client_id, uuid);
	unsigned char mac[32];

	/* Pairwise: a client cannot correlate its subjects with another's;
	 * the global uuid is released only with the uuid scope. */
	crypto_generichash_blake2b(mac, sizeof(mac), (const unsigned char *)msg, strlen(msg),
	                           app->secrets.sub, sizeof(app->secrets.sub));
	free(msg);
	return b64url_encode(mac, sizeof(mac), out);
}

/* The attributes a method vouched for in this login, sealed in the
 * session (phone, id_number, name, birthdate); an empty object when none. */
json_t *
oidc_session_attrs(struct isso_app *app, json_t *session)
{
	const char *sealed = json_string_value(json_object_get(session, "attrs"));
	char *text = NULL;
	json_t *attrs = NULL;

	if (sealed != NULL && secret_open(&app->secrets, sealed, &text) == 0)
		attrs = json_loads(text, 0, NULL);
	xfree_secret(text);
	if (!json_is_object(attrs)) {
		json_decref(attrs);
		attrs = json_object();
	}
	return attrs;
}

int
oidc_claims(struct isso_app *app, const char *uuid, const char *scope, json_t *session,
            json_t **claims_r)
{
	static const struct {
		unsigned bit;
		const char *key;
	} simple[] = {
	    {CLAIM_NAME, "name"},
	    {CLAIM_ID_NUMBER, "id_number"},
	    {CLAIM_BIRTHDATE, "birthdate"},
	};
	const struct method *m = method_find(json_string_value(json_object_get(session, "method")));
	unsigned want = claims_from_scope(scope), vouched, member = 0;
	json_t *pii = NULL, *attrs = NULL, *c = json_object(), *v;
	const char *phone;
	int ret;

	*claims_r = NULL;
	ret = person_pii(app, uuid, &pii);
	if (ret < 0)
		goto out;
	attrs = oidc_session_attrs(app, session);
	/* What this login proved itself, and — for a citizen with a TaipeiPass
	 * account, when the method may — what the member record holds. */
	vouched = m != NULL ? m->vouches : 0;
	if (m != NULL && m->linked_member_data && pii != NULL &&
	    json_object_get(pii, "account") != NULL)
		member = CLAIM_NAME | CLAIM_EMAIL | CLAIM_ADDRESS | CLAIM_BIRTHDATE |
		         CLAIM_ID_NUMBER | CLAIM_PHONE;
	/* The organisation comes only from the login that acted for it. */
	want &= vouched | member | CLAIM_UUID | CLAIM_ORGANIZATION;
	if (want & CLAIM_UUID)
		json_object_set_new(c, "uuid", json_string(uuid));
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (!(want & simple[i].bit))
			continue;
		v = (vouched & simple[i].bit) ? json_object_get(attrs, simple[i].key) : NULL;
		if (v == NULL && pii != NULL)
			v = json_object_get(pii, simple[i].key);
		if (v != NULL)
			json_object_set(c, simple[i].key, v);
	}
	if ((want & CLAIM_EMAIL) && pii != NULL && (v = json_object_get(pii, "email")) != NULL) {
		json_object_set(c, "email", v);
		json_object_set_new(c, "email_verified", json_false());
	}
	if ((want & CLAIM_ADDRESS) && pii != NULL && (v = json_object_get(pii, "address")) != NULL)
		json_object_set_new(c, "address", json_pack("{s:O}", "formatted", v));
	if (want & CLAIM_PHONE) {
		/* The number verified in this login; else the member's own,
		 * verified only if it was proven when enrolling. */
		bool verified = true;
		phone = json_string_value(json_object_get(attrs, "phone"));
		if (phone == NULL && pii != NULL) {
			phone = json_string_value(json_object_get(pii, "phone"));
			verified = json_is_true(json_object_get(pii, "phone_verified"));
		}
		if (phone != NULL) {
			char e164[14];
			phone_to_e164(phone, e164);
			json_object_set_new(c, "phone_number", json_string(e164));
			json_object_set_new(c, "phone_number_verified", json_boolean(verified));
		}
	}
	if ((want & CLAIM_NAME) && (member & CLAIM_NAME) && (v = json_object_get(pii, "level")))
		json_object_set(c, "member_level", v);
	if ((want & CLAIM_ORGANIZATION) &&
	    json_is_object(v = json_object_get(attrs, "organisation")) &&
	    json_is_string(json_object_get(v, "ubn")) && json_is_string(json_object_get(v, "name")))
		json_object_set_new(c, "organization",
		                    json_pack("{s:O, s:O}", "ubn", json_object_get(v, "ubn"),
		                              "name", json_object_get(v, "name")));
	*claims_r = c;
	c = NULL;
out:
	json_decref(c);
	json_decref(attrs);
	json_decref(pii);
	return ret;
}

/* One release of personal data to a client: the audit event "release"
 * and the person's release index (/account) hold the same record — the
 * names of the fields, never their values. *release_r gets the index's
 * record, *audit_r the audit event's (the same with uuid and client_id). */
static int
release_records(json_t *request, json_t *session, json_t *claims, json_t **release_r,
                json_t **audit_r)
{
	const char *client_id = json_string_value(json_object_get(request, "client_id"));
	const char *uuid = json_string_value(json_object_get(session, "uuid"));
	json_t *fields = json_array(), *data, *audit;
	const char *key;
	json_t *v;

	*release_r = *audit_r = NULL;
	json_object_foreach(claims, key, v)
	{
		json_array_append_new(fields, json_string(key));
	}
	data = json_pack("{s:o, s:s, s:s, s:s, s:b, s:I}", "fields", fields, "scope",
	                 json_string_value(json_object_get(request, "scope")) ?: "", "method",
	                 json_string_value(json_object_get(session, "method")) ?: "", "acr",
	                 loa_name((enum loa)json_integer_value(json_object_get(session, "loa"))),
	                 "sso", json_is_true(json_object_get(request, "sso")), "auth_time",
	                 json_integer_value(json_object_get(session, "auth_time")));
	if (data == NULL || uuid == NULL || client_id == NULL)
		goto fail;
	audit = json_deep_copy(data);
	if (audit == NULL)
		goto fail;
	json_object_set_new(audit, "uuid", json_string(uuid));
	json_object_set_new(audit, "client_id", json_string(client_id));
	*release_r = data;
	*audit_r = audit;
	return 0;
fail:
	json_decref(data);
	return ISSO_ERR_NOMEM;
}

int
oidc_release_record(struct isso_app *app, json_t *request, json_t *session, json_t *claims,
                    int64_t now)
{
	const char *client_id = json_string_value(json_object_get(request, "client_id"));
	const char *uuid = json_string_value(json_object_get(session, "uuid"));
	json_t *data = NULL, *audit = NULL;
	int ret;

	ret = release_records(request, session, claims, &data, &audit);
	if (ret == 0)
		ret = store_release_add(app->store, uuid, client_id, now, data);
	if (ret == 0)
		ret = store_audit_append(app->store, now, "release", json_incref(audit));
	json_decref(data);
	json_decref(audit);
	return ret;
}

void
oidc_code_redirect(struct isso_app *app, struct http_req *req, json_t *request, json_t *session,
                   const char *session_key)
{
	const char *client_id = json_string_value(json_object_get(request, "client_id"));
	const char *uri = json_string_value(json_object_get(request, "redirect_uri"));
	const char *state = json_string_value(json_object_get(request, "state"));
	const char *scope = json_string_value(json_object_get(request, "scope"));
	const char *uuid = json_string_value(json_object_get(session, "uuid"));
	struct store_token t;
	json_t *claims = NULL, *data = NULL, *fresh = NULL, *release = NULL, *audit = NULL;
	char code[44], hash[65], grant[44];
	char *sealed = NULL, *consented = NULL, *released = NULL;
	int64_t now = app_now();

	if (session_key != NULL) {
		/* The session may have ended (logout in another tab) since this
		 * login began, or been replaced by the same person logging in
		 * again; its client list may have grown: use the stored one,
		 * not the transaction's copy. */
		if (store_eph_get(app->store, "session", session_key, now, &fresh, NULL) < 0)
			fresh = NULL;
		if (fresh == NULL) {
			fresh = flow_session(app, req, &session_key);
			if (fresh != NULL &&
			    strcmp(json_string_value(json_object_get(fresh, "uuid")) ?: "", uuid) !=
			        0) {
				json_decref(fresh);
				fresh = NULL;
			}
		}
		if (fresh == NULL) {
			page_error(app, req, 400, "error.txn_title", "error.session_ended", NULL);
			goto out;
		}
	}
	/* Optional fields the citizen left unticked are not released: the
	 * code (so the ID token, UserInfo and refreshes) carries the scope
	 * without them. */
	if (store_consent_get(app->store, uuid, client_id, &consented) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
	released = oidc_scope_consented(scope, consented);
	scope = released;
	json_object_set_new(request, "scope", json_string(released));
	if (oidc_claims(app, uuid, scope, session, &claims) < 0 ||
	    (json_object_get(request, "legacy") != NULL &&
	     oidc_legacy_claims_add(app, request, session, claims) < 0) ||
	    (sealed = oidc_seal_claims(app, claims)) == NULL) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
	/* The older TaipeiPass service's codes are 6 characters, and agencies
	 * pick its token call by that length (docs/legacy-api.md). */
	if (strcmp(json_string_value(json_object_get(request, "legacy")) ?: "", "tpcd") == 0)
		oidc_legacy_new_code(code, hash);
	else
		oidc_new_token(code, hash);
	secret_token(16, grant);
	data = json_pack("{s:s, s:O, s:O, s:O, s:O, s:s}", "redirect_uri", uri, "auth_time",
	                 json_object_get(session, "auth_time"), "loa",
	                 json_object_get(session, "loa"), "amr", json_object_get(session, "amr"),
	                 "sid", json_object_get(session, "sid"), "claims", sealed);
	if (json_object_get(request, "redirect_uri_given") != NULL)
		json_object_set_new(data, "redirect_uri_given", json_true());
	if (json_object_get(request, "nonce") != NULL)
		json_object_set(data, "nonce", json_object_get(request, "nonce"));
	if (json_object_get(request, "code_challenge") != NULL)
		json_object_set(data, "code_challenge", json_object_get(request, "code_challenge"));
	if (json_object_get(request, "legacy") != NULL) {
		json_object_set(data, "legacy", json_object_get(request, "legacy"));
		json_object_set(data, "legacy_scope", json_object_get(request, "legacy_scope"));
	}
	if (json_object_get(request, "dpop_jkt") != NULL)
		json_object_set(data, "dpop_jkt", json_object_get(request, "dpop_jkt"));
	memset(&t, 0, sizeof(t));
	t.hash = hash;
	t.kind = TOKEN_CODE;
	t.grant_id = grant;
	t.client_id = (char *)client_id;
	t.uuid = (char *)uuid;
	t.sid = (char *)json_string_value(json_object_get(session, "sid"));
	t.scope = (char *)scope;
	t.data = data;
	t.created_at = now;
	t.expires_at = now + app->cfg->oidc.code_ttl;
	/* The code and the record of what it releases: one commit, so there
	 * is never a code whose release went unrecorded. */
	if (release_records(request, session, claims, &release, &audit) < 0 ||
	    store_code_add(app->store, &t, now, release, audit) < 0) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		goto out;
	}
	if (fresh != NULL)
		flow_session_add_client(app, session_key, fresh, client_id);

	oidc_redirect_to_client(app, req, uri, pool_printf(http_pool(req), "code=%s", code), state);
	log_info("code_issued", "client_id", client_id, NULL);
out:
	free(consented);
	free(released);
	free(sealed);
	json_decref(fresh);
	json_decref(claims);
	json_decref(data);
	json_decref(release);
	json_decref(audit);
}

/* The legacy API's own fields (docs/legacy-api.md): the account, verifyLevel
 * and memberType, from the person and the login's attributes. */
int
oidc_legacy_claims_add(struct isso_app *app, json_t *request, json_t *session, json_t *claims)
{
	const char *uuid = json_string_value(json_object_get(session, "uuid"));
	json_t *pii = NULL, *attrs = NULL;
	const char *idn, *level, *account;
	bool verified;
	int ret;

	(void)request;
	ret = person_pii(app, uuid, &pii);
	if (ret < 0)
		goto out;
	attrs = oidc_session_attrs(app, session);
	/* The member's login name follows the member data rule of
	 * oidc_claims: released with profile exactly when member_level is. */
	account = json_string_value(json_object_get(pii, "account"));
	if (json_object_get(claims, "member_level") != NULL && account != NULL)
		json_object_set_new(claims, "account", json_string(account));
	/* verifyLevel: "1" when the person's identity is proven, by this
	 * login (a method that checked the national ID itself leaves it in
	 * the login's attributes: MOICA, TW FidO, telecom, NHI) or by the
	 * member's enrolment (gold); "0" otherwise. */
	level = json_string_value(json_object_get(pii, "level"));
	verified = json_is_string(json_object_get(attrs, "id_number")) ||
	           (level != NULL && strcmp(level, "gold") == 0);
	json_object_set_new(claims, "legacy_verify_level", json_string(verified ? "1" : "0"));
	/* memberType: organization for a login on behalf of an organisation;
	 * foreigner for a resident certificate number; else personal. */
	idn = json_string_value(json_object_get(attrs, "id_number"));
	if (idn == NULL)
		idn = json_string_value(json_object_get(pii, "id_number"));
	if (json_is_object(json_object_get(attrs, "organisation")))
		json_object_set_new(claims, "legacy_member_type", json_string("organization"));
	else if (idn != NULL && idnum_is_resident_id(idn))
		json_object_set_new(claims, "legacy_member_type", json_string("foreigner"));
	else
		json_object_set_new(claims, "legacy_member_type", json_string("personal"));
out:
	json_decref(attrs);
	json_decref(pii);
	return ret;
}

/* Fills t with a new token of kind for the grant (its hash in hash_r, its
 * value in value_r); nothing is written yet. */
static void
token_new(struct store_token *t, int kind, const char *grant, const struct store_client *c,
          const char *uuid, const char *sid, const char *scope, json_t *data, int64_t now, int ttl,
          char value_r[44], char hash_r[65])
{
	oidc_new_token(value_r, hash_r);
	memset(t, 0, sizeof(*t));
	t->hash = hash_r;
	t->kind = kind;
	t->grant_id = (char *)grant;
	t->client_id = c->client_id;
	t->uuid = (char *)uuid;
	t->sid = (char *)sid;
	t->scope = (char *)scope;
	t->data = data;
	t->created_at = now;
	t->expires_at = now + ttl;
}

/* Everything that can fail without the store (the values, the answer,
 * the ID token's signature) comes first; the one store transaction comes
 * last, so that nothing is written for an answer that cannot be given,
 * and after it only the answer is sent. */
int
oidc_tokens_issue(struct isso_app *app, const struct store_client *c, const char *grant,
                  const char *uuid, const char *sid, const char *scope, const char *grant_scope,
                  json_t *data, bool with_nonce, const char *jkt, const char *spend, json_t **rep_r)
{
	const struct isso_config *cfg = app->cfg;
	struct store_token rows[2];
	char access[44], refresh[44], sub[44], at_hash[64], ahash[65], rhash[65];
	json_t *tdata = json_object(), *rdata = NULL, *rep = NULL, *idt = NULL;
	char *jwt = NULL;
	int64_t now = app_now();
	size_t n = 0;
	bool won = false;
	int ret = ISSO_ERR_NOMEM;

	*rep_r = NULL;
	if (json_object_get(data, "claims") != NULL)
		json_object_set(tdata, "claims", json_object_get(data, "claims"));
	/* A token of the legacy API answers only there, with its names. */
	if (json_object_get(data, "legacy") != NULL) {
		json_object_set(tdata, "legacy", json_object_get(data, "legacy"));
		json_object_set(tdata, "legacy_scope", json_object_get(data, "legacy_scope"));
	}
	if (jkt[0] != '\0')
		json_object_set_new(tdata, "jkt", json_string(jkt));
	token_new(&rows[n++], TOKEN_ACCESS, grant, c, uuid, sid, scope, tdata, now,
	          cfg->oidc.access_token_ttl, access, ahash);
	rep = json_pack("{s:s, s:s, s:i, s:s}", "access_token", access, "token_type",
	                jkt[0] != '\0' ? "DPoP" : "Bearer", "expires_in",
	                cfg->oidc.access_token_ttl, "scope", scope);
	if (rep == NULL)
		goto out;
	if (uuid != NULL && oidc_client_grant(c, "refresh_token")) {
		/* Without offline_access (OIDC Core §11) a refresh token lives
		 * no longer than the single sign-on session; none at all when
		 * that has already ended. */
		bool offline = scope_has(grant_scope, "offline_access"), alive = false;
		int64_t session_end = 0;
		int ttl = cfg->oidc.refresh_token_ttl;
		/* A store failure here is no "session ended": answered 503
		 * before anything is spent. */
		if (!offline) {
			ret = flow_sid_state(app, sid, uuid, &alive, &session_end);
			if (ret < 0)
				goto out;
			ret = ISSO_ERR_NOMEM;
		}
		if (alive && session_end - now < ttl)
			ttl = (int)(session_end - now);
		if (offline || session_end > now) {
			rdata = json_deep_copy(data);
			json_object_del(rdata, "nonce");
			json_object_del(rdata, "redirect_uri");
			json_object_del(rdata, "redirect_uri_given");
			json_object_del(rdata, "code_challenge");
			json_object_del(rdata, "dpop_jkt");
			/* A confidential client's refresh token is bound by
			 * its authentication; a public client's to the key. */
			json_object_del(rdata, "jkt");
			if (c->public_client && jkt[0] != '\0')
				json_object_set_new(rdata, "jkt", json_string(jkt));
			if (offline)
				json_object_set_new(rdata, "offline", json_true());
			/* RFC 6749 §6: the new refresh token keeps the grant's
			 * scope, whatever this access token was narrowed to. */
			token_new(&rows[n++], TOKEN_REFRESH, grant, c, uuid, sid, grant_scope,
			          rdata, now, ttl, refresh, rhash);
			json_object_set_new(rep, "refresh_token", json_string(refresh));
		}
	}
	if (uuid != NULL && scope_has(scope, "openid")) {
		enum loa loa = (enum loa)json_integer_value(json_object_get(data, "loa"));
		jose_half_hash(c->id_token_alg, access, at_hash);
		idt = json_pack(
		    "{s:s, s:s, s:s, s:I, s:I, s:O, s:s, s:O, s:s, s:s}", "iss", app->issuer, "sub",
		    oidc_sub(app, c->client_id, uuid, sub), "aud", c->client_id, "exp",
		    (json_int_t)(now + cfg->oidc.id_token_ttl), "iat", (json_int_t)now, "auth_time",
		    json_object_get(data, "auth_time"), "acr", loa_name(loa), "amr",
		    json_object_get(data, "amr"), "azp", c->client_id, "at_hash", at_hash);
		if (idt == NULL)
			goto out;
		if (sid != NULL)
			json_object_set_new(idt, "sid", json_string(sid));
		if (with_nonce && json_object_get(data, "nonce") != NULL)
			json_object_set(idt, "nonce", json_object_get(data, "nonce"));
		ret = jose_sign(app->keys, c->id_token_alg, NULL, idt, &jwt);
		if (ret < 0)
			goto out;
		json_object_set_new(rep, "id_token", json_string(jwt));
	}
	/* The code or refresh token spent and the new tokens: one commit. */
	ret = store_token_exchange(app->store, spend, now, rows, n, &won);
	if (ret < 0)
		goto out;
	if (!won) {
		ret = ISSO_ERR_DENIED;
		goto out;
	}
	*rep_r = rep;
	rep = NULL;
out:
	free(jwt);
	json_decref(idt);
	json_decref(rep);
	json_decref(rdata);
	json_decref(tdata);
	return ret;
}
