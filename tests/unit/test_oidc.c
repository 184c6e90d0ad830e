/* Tests for the OpenID Provider's decisions that need no HTTP request:
 * which scopes an authorization request is granted, the level acr_values
 * ask for, when a browser session spares a new login, which claims a
 * login releases for a scope, when the consent page must be shown and
 * what consent records, pairwise subjects and client lookup. Those that
 * read people, consent and clients run against a real SQLite store and
 * keys (tests/unit/app-fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "app-fixture.h"
#include "auth/claims.h"
#include "auth/method.h"
#include "auth/person.h"
#include "jose/jose.h"
#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/pool.h"
#include "lib/secret.h"
#include "oidc/oidc-private.h"
#include "oidc/oidc.h"
#include "store/store.h"

#define ID_A "A123456789"
#define ID_B "A223456781"

/* ---- scope words ---- */

static void
test_scope_has_whole_words(void **state)
{
	(void)state;
	assert_true(scope_has("openid profile", "profile"));
	assert_true(scope_has("profile", "profile"));
	assert_true(scope_has("openid  phone ", "phone"));
	assert_false(scope_has("openid profiles", "profile"));
	assert_false(scope_has("openid myprofile", "profile"));
	assert_false(scope_has("profile_x openid", "profile"));
	assert_false(scope_has("", "profile"));
	assert_false(scope_has(NULL, "profile"));
	assert_false(scope_has("openid", ""));
	/* a later whole occurrence after a partial one */
	assert_true(scope_has("phones phone", "phone"));
}

static void
test_claims_from_scope_bits(void **state)
{
	(void)state;
	assert_int_equal(claims_from_scope("openid"), 0);
	assert_int_equal(claims_from_scope("openid profile phone"), CLAIM_NAME | CLAIM_PHONE);
	assert_int_equal(claims_from_scope("uuid id_number email birthdate address organization"),
	                 CLAIM_UUID | CLAIM_ID_NUMBER | CLAIM_EMAIL | CLAIM_BIRTHDATE |
	                     CLAIM_ADDRESS | CLAIM_ORGANIZATION);
	/* claim names are not scopes */
	assert_int_equal(claims_from_scope("name phone_number"), 0);
	assert_true(scope_known("openid"));
	assert_true(scope_known("offline_access"));
	assert_true(scope_known("organization"));
	assert_false(scope_known("name"));
	assert_false(scope_known("OPENID"));
	assert_false(scope_known(""));
}

static void
test_claims_restrict_to_scope(void **state)
{
	json_t *c =
	    json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "sub", "x", "uuid", "u", "name",
	              "王小明", "phone_number", "+886912345678", "phone_number_verified", 1,
	              "email", "a@b.tw", "member_level", "gold", "id_number", ID_A);

	(void)state;
	assert_int_equal(claim_bit_of("phone_number_verified"), CLAIM_PHONE);
	assert_int_equal(claim_bit_of("member_level"), CLAIM_NAME);
	assert_int_equal(claim_bit_of("sub"), 0);
	claims_restrict(c, "openid profile phone");
	/* sub is no personal data of a scope: restrict leaves only claims */
	assert_null(json_object_get(c, "sub"));
	assert_null(json_object_get(c, "uuid"));
	assert_null(json_object_get(c, "email"));
	assert_null(json_object_get(c, "id_number"));
	assert_string_equal(json_string_value(json_object_get(c, "name")), "王小明");
	assert_non_null(json_object_get(c, "member_level"));
	assert_non_null(json_object_get(c, "phone_number"));
	assert_non_null(json_object_get(c, "phone_number_verified"));
	claims_restrict(c, "openid");
	assert_int_equal(json_object_size(c), 0);
	json_decref(c);
}

/* ---- the granted scope ---- */

static void
test_scope_granted(void **state)
{
	struct pool *pool = pool_new(4096);
	const char *approved = "openid profile phone offline_access";

	(void)state;
	/* known and approved words, in request order, each once */
	assert_string_equal(oidc_scope_granted(pool, "phone bogus openid  profile phone email",
	                                       approved, NULL, NULL),
	                    "phone openid profile");
	/* nothing approved */
	assert_string_equal(oidc_scope_granted(pool, "email address", approved, NULL, NULL), "");
	assert_string_equal(oidc_scope_granted(pool, "", approved, NULL, NULL), "");
	/* a word iSSO does not know is never granted, even when approved */
	assert_string_equal(oidc_scope_granted(pool, "openid admin", "openid admin", NULL, NULL),
	                    "openid");
	/* an approved word inside a longer one does not count */
	assert_string_equal(oidc_scope_granted(pool, "openid phone", "openid phones", NULL, NULL),
	                    "openid");

	/* offline_access: only with prompt=consent, for a client that refreshes */
	assert_string_equal(oidc_scope_granted(pool, "openid offline_access", approved, NULL, NULL),
	                    "openid");
	assert_string_equal(
	    oidc_scope_granted(pool, "openid offline_access", approved, "login", NULL), "openid");
	assert_string_equal(
	    oidc_scope_granted(pool, "openid offline_access", approved, "login consent", NULL),
	    "openid offline_access");
	assert_string_equal(oidc_scope_granted(pool, "openid offline_access", approved, "consent",
	                                       "authorization_code refresh_token"),
	                    "openid offline_access");
	assert_string_equal(oidc_scope_granted(pool, "openid offline_access", approved, "consent",
	                                       "authorization_code"),
	                    "openid");
	/* offline_access alone, dropped: nothing is left */
	assert_string_equal(oidc_scope_granted(pool, "offline_access", approved, NULL, NULL), "");
	pool_free(pool);
}

static void
test_scope_granted_long_words(void **state)
{
	struct pool *pool = pool_new(4096);
	char req[200];

	(void)state;
	/* a word of 64 characters or more is skipped, not cut */
	memset(req, 'p', 70);
	memcpy(req + 70, " openid", 8);
	assert_string_equal(oidc_scope_granted(pool, req, "openid", NULL, NULL), "openid");
	pool_free(pool);
}

/* ---- levels and sessions ---- */

static void
test_min_loa(void **state)
{
	(void)state;
	assert_int_equal(oidc_min_loa(NULL), LOA_LOW);
	assert_int_equal(oidc_min_loa(""), LOA_LOW);
	assert_int_equal(oidc_min_loa("urn:isso:loa:high"), LOA_HIGH);
	/* any of the values satisfies: the weakest named */
	assert_int_equal(oidc_min_loa("urn:isso:loa:high urn:isso:loa:substantial"),
	                 LOA_SUBSTANTIAL);
	assert_int_equal(oidc_min_loa("bogus  urn:isso:loa:high "), LOA_HIGH);
	assert_int_equal(oidc_min_loa("urn:isso:loa:HIGH"), LOA_LOW);
	assert_int_equal(loa_parse(loa_name(LOA_SUBSTANTIAL)), LOA_SUBSTANTIAL);
	assert_int_equal(loa_parse("urn:isso:loa:medium"), 0);
	assert_string_equal(loa_name(0), "urn:isso:loa:low");
}

static void
test_session_satisfies(void **state)
{
	const int64_t now = 1800000000;
	json_t *session =
	    json_pack("{s:I, s:i}", "auth_time", (json_int_t)(now - 100), "loa", LOA_SUBSTANTIAL);
	json_t *request = json_pack("{s:i}", "min_loa", LOA_SUBSTANTIAL);

	(void)state;
	assert_true(oidc_session_satisfies(session, request, now));
	/* prompt=login always logs in again; other prompts do not */
	json_object_set_new(request, "prompt", json_string("consent login"));
	assert_false(oidc_session_satisfies(session, request, now));
	json_object_set_new(request, "prompt", json_string("consent"));
	assert_true(oidc_session_satisfies(session, request, now));
	/* max_age: the login may be exactly that old, not older */
	json_object_set_new(request, "max_age", json_integer(100));
	assert_true(oidc_session_satisfies(session, request, now));
	json_object_set_new(request, "max_age", json_integer(99));
	assert_false(oidc_session_satisfies(session, request, now));
	json_object_del(request, "max_age");
	/* a stronger level than the session's */
	json_object_set_new(request, "min_loa", json_integer(LOA_HIGH));
	assert_false(oidc_session_satisfies(session, request, now));
	json_object_set_new(request, "min_loa", json_integer(LOA_LOW));
	assert_true(oidc_session_satisfies(session, request, now));
	json_decref(session);
	json_decref(request);
}

/* ---- with a store ---- */

/* A browser session after a login with method; attrs (may be NULL) are
 * what the login vouched for, sealed as flow_complete seals them. */
static json_t *
session_new(struct isso_app *app, const char *method, json_t *attrs)
{
	json_t *s = json_pack("{s:s}", "method", method);

	if (attrs != NULL) {
		char *text = json_dumps(attrs, JSON_COMPACT), *sealed = NULL;

		assert_int_equal(secret_seal(&app->secrets, text, strlen(text), &sealed), 0);
		json_object_set_new(s, "attrs", json_string(sealed));
		free(sealed);
		free(text);
		json_decref(attrs);
	}
	return s;
}

static json_t *
claims_of(struct isso_app *app, const char *uuid, const char *scope, json_t *session)
{
	json_t *c = NULL;

	assert_int_equal(oidc_claims(app, uuid, scope, session, &c), 0);
	assert_true(json_is_object(c));
	return c;
}

static const char all_scopes[] =
    "openid uuid profile id_number phone email birthdate address organization";

static void
test_claims_vouched_by_method(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	char uuid[37];
	json_t *s, *c;

	assert_int_equal(person_link_id(app, ID_A, "王小明", uuid), 0);

	/* The NHI card vouches for the ID and a phone, not for the name. */
	s = session_new(app, "nhi-card", json_pack("{s:s}", "phone", "0912345678"));
	c = claims_of(app, uuid, all_scopes, s);
	assert_string_equal(json_string_value(json_object_get(c, "uuid")), uuid);
	assert_string_equal(json_string_value(json_object_get(c, "id_number")), ID_A);
	assert_string_equal(json_string_value(json_object_get(c, "phone_number")), "+886912345678");
	assert_true(json_is_true(json_object_get(c, "phone_number_verified")));
	assert_null(json_object_get(c, "name"));
	assert_null(json_object_get(c, "email"));
	assert_null(json_object_get(c, "organization"));
	json_decref(c);

	/* Only what the scope asks for. */
	c = claims_of(app, uuid, "openid phone", s);
	assert_int_equal(json_object_size(c), 2);
	assert_non_null(json_object_get(c, "phone_number"));
	json_decref(c);
	json_decref(s);

	/* The MOICA card vouches for the name: the person's, from the store. */
	s = session_new(app, "moica-card", NULL);
	c = claims_of(app, uuid, "openid profile id_number phone", s);
	assert_string_equal(json_string_value(json_object_get(c, "name")), "王小明");
	assert_string_equal(json_string_value(json_object_get(c, "id_number")), ID_A);
	/* no phone proven in this login, none on record */
	assert_null(json_object_get(c, "phone_number"));
	json_decref(c);
	json_decref(s);

	/* A session naming no known method releases only the uuid. */
	s = session_new(app, "no-such-method", json_pack("{s:s}", "name", "冒名"));
	c = claims_of(app, uuid, all_scopes, s);
	assert_int_equal(json_object_size(c), 1);
	assert_string_equal(json_string_value(json_object_get(c, "uuid")), uuid);
	json_decref(c);
	json_decref(s);
}

static void
test_claims_organisation_only_from_its_login(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	char uuid[37];
	json_t *s, *c, *org;

	assert_int_equal(person_link_id(app, ID_A, NULL, uuid), 0);
	s = session_new(
	    app, "moica-card",
	    json_pack("{s:{s:s, s:s}}", "organisation", "ubn", "12345675", "name", "臺北市政府"));
	c = claims_of(app, uuid, "openid organization", s);
	org = json_object_get(c, "organization");
	assert_string_equal(json_string_value(json_object_get(org, "ubn")), "12345675");
	assert_string_equal(json_string_value(json_object_get(org, "name")), "臺北市政府");
	json_decref(c);
	/* not without the scope */
	c = claims_of(app, uuid, "openid profile", s);
	assert_null(json_object_get(c, "organization"));
	json_decref(c);
	json_decref(s);
	/* a malformed organisation is left out */
	s = session_new(app, "moica-card",
	                json_pack("{s:{s:i, s:s}}", "organisation", "ubn", 12345675, "name", "x"));
	c = claims_of(app, uuid, "openid organization", s);
	assert_null(json_object_get(c, "organization"));
	json_decref(c);
	json_decref(s);
}

static void
test_claims_linked_member_data(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	struct member_new m = {
	    .account = "wang01",
	    .password = "correct horse battery staple",
	    .phone = "0922000111",
	    .email = "wang01@example.tw",
	    .name = "王大明",
	    .id_number = ID_B,
	    .birthdate = "1980-02-29",
	    .address = "臺北市信義區市府路1號",
	    .gold = true,
	};
	const char *key = NULL;
	char uuid[37], linked[37];
	json_t *s, *c;

	assert_int_equal(member_create(app, &m, uuid, &key), 0);
	/* The card login of the same ID lands on the member. */
	assert_int_equal(person_link_id(app, ID_B, NULL, linked), 0);
	assert_string_equal(linked, uuid);

	/* TaipeiPass itself: the member's record; a phone not proven when
	 * enrolling is released as unverified. */
	s = session_new(app, "taipeipass", NULL);
	c = claims_of(app, uuid, all_scopes, s);
	assert_string_equal(json_string_value(json_object_get(c, "name")), "王大明");
	assert_string_equal(json_string_value(json_object_get(c, "email")), "wang01@example.tw");
	assert_true(json_is_false(json_object_get(c, "email_verified")));
	assert_string_equal(json_string_value(json_object_get(c, "phone_number")), "+886922000111");
	assert_true(json_is_false(json_object_get(c, "phone_number_verified")));
	assert_string_equal(json_string_value(json_object_get(c, "member_level")), "gold");
	assert_string_equal(json_string_value(json_object_get(c, "birthdate")), "1980-02-29");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(c, "address"), "formatted")),
	    "臺北市信義區市府路1號");
	json_decref(c);
	json_decref(s);

	/* A telecom login of a member releases the member's data too, and
	 * the number it proved wins, verified. */
	s = session_new(app, "telecom", json_pack("{s:s}", "phone", "0933000222"));
	c = claims_of(app, uuid, all_scopes, s);
	assert_string_equal(json_string_value(json_object_get(c, "email")), "wang01@example.tw");
	assert_string_equal(json_string_value(json_object_get(c, "phone_number")), "+886933000222");
	assert_true(json_is_true(json_object_get(c, "phone_number_verified")));
	json_decref(c);
	json_decref(s);
}

static void
client_add(struct isso_app *app, const char *id, int status)
{
	struct store_client c;

	memset(&c, 0, sizeof(c));
	c.client_id = (char *)id;
	c.secret_hash = "00";
	c.name = "測試服務";
	c.redirect_uris = json_pack("[s]", "https://rp.example.tw/cb");
	c.post_logout_redirect_uris = json_array();
	c.scope = "openid profile phone email";
	c.id_token_alg = "ES256";
	c.auth_method = "client_secret_basic";
	c.created_at = 1;
	assert_int_equal(store_client_add(app->store, &c), 0);
	json_decref(c.redirect_uris);
	json_decref(c.post_logout_redirect_uris);
	if (status != CLIENT_PENDING)
		assert_int_equal(store_client_set_status(app->store, id, status), 0);
}

static bool
consent_needed(struct isso_app *app, const char *client_id, const char *scope, const char *prompt,
               const char *uuid, json_t *session)
{
	json_t *request = json_pack("{s:s, s:s}", "client_id", client_id, "scope", scope);
	bool needed = false;

	if (prompt != NULL)
		json_object_set_new(request, "prompt", json_string(prompt));
	assert_int_equal(oidc_consent_needed(app, request, uuid, session, &needed), 0);
	json_decref(request);
	return needed;
}

static void
test_consent_decisions(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	const char *scope = "openid profile phone";
	char uuid[37], *stored = NULL, longword[80];
	json_t *s, *claims;

	client_add(app, "consent-rp", CLIENT_APPROVED);
	client_add(app, "consent-other", CLIENT_APPROVED);
	assert_int_equal(person_link_id(app, "F228033121", "林小美", uuid), 0);
	/* an NHI card login without a phone: profile and phone release nothing */
	s = session_new(app, "nhi-card", NULL);

	/* never granted: the page */
	assert_true(consent_needed(app, "consent-rp", scope, NULL, uuid, s));

	/* what the citizen saw: scopes that showed nothing are marked */
	claims = claims_of(app, uuid, scope, s);
	assert_int_equal(json_object_size(claims), 0);
	assert_int_equal(oidc_consent_record(app, uuid, "consent-rp", scope, NULL, claims), 0);
	json_decref(claims);
	assert_int_equal(store_consent_get(app->store, uuid, "consent-rp", &stored), 0);
	assert_string_equal(stored, "openid profile? phone?");
	free(stored);

	/* granted: no page, for the same scope or less */
	assert_false(consent_needed(app, "consent-rp", scope, NULL, uuid, s));
	assert_false(consent_needed(app, "consent-rp", "openid phone", NULL, uuid, s));
	/* prompt=consent asks again */
	assert_true(consent_needed(app, "consent-rp", scope, "consent", uuid, s));
	assert_true(consent_needed(app, "consent-rp", scope, "login consent", uuid, s));
	assert_false(consent_needed(app, "consent-rp", scope, "login", uuid, s));
	/* a scope not granted yet */
	assert_true(consent_needed(app, "consent-rp", "openid profile phone email", NULL, uuid, s));
	/* another client */
	assert_true(consent_needed(app, "consent-other", scope, NULL, uuid, s));
	/* a word too long to be a scope never counts as granted */
	memset(longword, 'x', 70);
	longword[70] = '\0';
	assert_true(consent_needed(app, "consent-rp", longword, NULL, uuid, s));
	json_decref(s);

	/* phone was granted while it showed nothing: a login that proves a
	 * number would now release it, so the citizen is asked again */
	s = session_new(app, "nhi-card", json_pack("{s:s}", "phone", "0912345678"));
	assert_true(consent_needed(app, "consent-rp", scope, NULL, uuid, s));
	claims = claims_of(app, uuid, scope, s);
	assert_int_equal(oidc_consent_record(app, uuid, "consent-rp", scope, NULL, claims), 0);
	json_decref(claims);
	assert_int_equal(store_consent_get(app->store, uuid, "consent-rp", &stored), 0);
	assert_string_equal(stored, "openid profile? phone");
	free(stored);
	assert_false(consent_needed(app, "consent-rp", scope, NULL, uuid, s));
	json_decref(s);
	/* and once granted with data, a login without it needs no page */
	s = session_new(app, "nhi-card", NULL);
	assert_false(consent_needed(app, "consent-rp", scope, NULL, uuid, s));
	json_decref(s);
}

static void
test_pairwise_sub(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	char a[44], b[44], c[44], again[44];

	oidc_sub(app, "rp-one", "0b7e4f3a-0000-4000-8000-000000000001", a);
	oidc_sub(app, "rp-two", "0b7e4f3a-0000-4000-8000-000000000001", b);
	oidc_sub(app, "rp-one", "0b7e4f3a-0000-4000-8000-000000000002", c);
	oidc_sub(app, "rp-one", "0b7e4f3a-0000-4000-8000-000000000001", again);
	assert_int_equal(strlen(a), 43);
	assert_int_equal(
	    strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
	assert_string_equal(a, again);
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c);
	/* no uuid is readable in a subject */
	assert_null(strstr(a, "0b7e4f3a"));
}

static void
test_sealed_claims_and_tokens(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	json_t *claims = json_pack("{s:s, s:s}", "name", "王小明", "id_number", ID_A);
	json_t *data, *back;
	char *sealed = oidc_seal_claims(app, claims);
	char token[44], hash[65], want[65];
	struct store_token *got;

	/* codes and tokens carry claims sealed: no ID in the clear */
	assert_non_null(sealed);
	assert_null(strstr(sealed, ID_A));
	data = json_pack("{s:s}", "claims", sealed);
	back = oidc_open_claims(app, data);
	assert_true(json_equal(back, claims));
	json_decref(back);
	json_decref(data);
	/* tampered: nothing */
	sealed[strlen(sealed) - 2] = sealed[strlen(sealed) - 2] == 'A' ? 'B' : 'A';
	data = json_pack("{s:s}", "claims", sealed);
	assert_null(oidc_open_claims(app, data));
	json_decref(data);
	/* none sealed: an empty object */
	data = json_object();
	back = oidc_open_claims(app, data);
	assert_true(json_is_object(back));
	assert_int_equal(json_object_size(back), 0);
	json_decref(back);
	json_decref(data);
	free(sealed);
	json_decref(claims);

	/* a token is 43 characters; the store keeps only its SHA-256 */
	oidc_new_token(token, hash);
	assert_int_equal(strlen(token), 43);
	secret_sha256_hex(token, 43, want);
	assert_string_equal(hash, want);
	/* unknown, or not a token's length: looked up as nothing */
	got = (struct store_token *)&got; /* overwritten on every path */
	assert_int_equal(oidc_token_lookup(app, token, &got), 0);
	assert_null(got);
	assert_int_equal(oidc_token_lookup(app, "short", &got), 0);
	assert_null(got);
	assert_int_equal(oidc_token_lookup(app, NULL, &got), 0);
	assert_null(got);
}

static void
test_client_find_only_approved(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	struct store_client *c = NULL;
	char longid[200];

	client_add(app, "find-pending", CLIENT_PENDING);
	client_add(app, "find-approved", CLIENT_APPROVED);
	client_add(app, "find-suspended", CLIENT_SUSPENDED);
	assert_int_equal(oidc_client_find(app, "find-approved", &c), 0);
	assert_non_null(c);
	assert_string_equal(c->client_id, "find-approved");
	store_client_free(c);
	assert_int_equal(oidc_client_find(app, "find-pending", &c), 0);
	assert_null(c);
	assert_int_equal(oidc_client_find(app, "find-suspended", &c), 0);
	assert_null(c);
	assert_int_equal(oidc_client_find(app, "find-nobody", &c), 0);
	assert_null(c);
	assert_int_equal(oidc_client_find(app, NULL, &c), 0);
	assert_null(c);
	memset(longid, 'a', 129);
	longid[129] = '\0';
	assert_int_equal(oidc_client_find(app, longid, &c), 0);
	assert_null(c);
	assert_null(oidc_client(app, "find-pending"));
	c = oidc_client(app, "find-approved");
	assert_non_null(c);
	store_client_free(c);
}

/* ---- private_key_jwt ---- */

static struct jose_keyset *
client_keys(void)
{
	struct jose_keyset *ks = jose_keyset_new();
	char *jwk = NULL, *kid = NULL;
	const char *error = NULL;

	assert_int_equal(jose_key_generate("ES256", &jwk, &kid), 0);
	assert_int_equal(jose_keyset_add(ks, jwk, true, &error), 0);
	free(jwk);
	free(kid);
	return ks;
}

/* An assertion by ks for client id, claims as given over the defaults
 * (iss, sub, aud, a fresh jti, exp in a minute, iat now); a member set
 * to null is left out. */
static char *
assertion(struct isso_app *app, struct jose_keyset *ks, const char *id, json_t *over)
{
	static unsigned jti;
	int64_t now = app_now();
	json_t *c =
	    json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", id, "sub", id, "aud", app->issuer,
	              "jti", "", "exp", (json_int_t)(now + 60), "iat", (json_int_t)now);
	const char *key;
	json_t *v;
	char *jwt = NULL, buf[32];

	snprintf(buf, sizeof(buf), "jti-%u", ++jti);
	json_object_set_new(c, "jti", json_string(buf));
	json_object_foreach(over, key, v)
	{
		if (json_is_null(v))
			json_object_del(c, key);
		else
			json_object_set(c, key, v);
	}
	assert_int_equal(jose_sign(ks, "ES256", NULL, c, &jwt), 0);
	json_decref(c);
	json_decref(over);
	return jwt;
}

static void
refused_assertion(struct isso_app *app, struct store_client *c, char *jwt, const char *why_want)
{
	const char *why = NULL;

	assert_false(oidc_client_assertion_ok(app, c, jwt, &why));
	assert_non_null(why);
	if (why_want != NULL)
		assert_string_equal(why, why_want);
	free(jwt);
}

static void
test_client_assertion(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	struct jose_keyset *ks = client_keys(), *other = client_keys();
	struct store_client c;
	int64_t now = app_now();
	const char *why = NULL;
	char *jwt, *b64, *none;

	memset(&c, 0, sizeof(c));
	c.client_id = "jwt-rp";
	c.auth_method = "private_key_jwt";
	jwt = jose_keyset_jwks_dup(ks);
	c.jwks = json_loads(jwt, 0, NULL);
	free(jwt);
	assert_non_null(c.jwks);

	/* good once; the same jti again is a replay */
	jwt = assertion(app, ks, "jwt-rp", NULL);
	assert_true(oidc_client_assertion_ok(app, &c, jwt, &why));
	why = NULL;
	assert_false(oidc_client_assertion_ok(app, &c, jwt, &why));
	assert_string_equal(why, "assertion replayed");
	free(jwt);
	/* a refused assertion does not use its jti up */
	jwt = assertion(app, other, "jwt-rp", json_pack("{s:s}", "jti", "kept"));
	assert_false(oidc_client_assertion_ok(app, &c, jwt, &why));
	free(jwt);
	jwt = assertion(app, ks, "jwt-rp", json_pack("{s:s}", "jti", "kept"));
	assert_true(oidc_client_assertion_ok(app, &c, jwt, &why));
	free(jwt);

	/* who and for whom */
	refused_assertion(app, &c, assertion(app, ks, "jwt-rp", json_pack("{s:s}", "iss", "x")),
	                  "assertion iss and sub must be the client_id");
	refused_assertion(app, &c, assertion(app, ks, "other-rp", NULL),
	                  "assertion iss and sub must be the client_id");
	refused_assertion(app, &c,
	                  assertion(app, ks, "jwt-rp", json_pack("{s:[s]}", "aud", app->issuer)),
	                  "assertion aud must be the issuer identifier, as a single string");
	refused_assertion(
	    app, &c,
	    assertion(app, ks, "jwt-rp", json_pack("{s:s}", "aud", "https://other.example.tw")),
	    "assertion aud must be the issuer identifier, as a single string");
	/* when */
	refused_assertion(app, &c, assertion(app, ks, "jwt-rp", json_pack("{s:n}", "exp")),
	                  "assertion expired");
	refused_assertion(app, &c,
	                  assertion(app, ks, "jwt-rp", json_pack("{s:I}", "exp", (json_int_t)now)),
	                  "assertion expired");
	refused_assertion(app, &c,
	                  assertion(app, ks, "jwt-rp",
	                            json_pack("{s:I, s:n}", "exp", (json_int_t)(now + 361), "iat")),
	                  "assertion valid too long (at most 5 minutes)");
	refused_assertion(app, &c,
	                  assertion(app, ks, "jwt-rp",
	                            json_pack("{s:I, s:I}", "exp", (json_int_t)(now + 200), "iat",
	                                      (json_int_t)(now - 101))),
	                  "assertion valid too long (at most 5 minutes)");
	refused_assertion(
	    app, &c,
	    assertion(app, ks, "jwt-rp", json_pack("{s:I}", "iat", (json_int_t)(now + 61))),
	    "assertion issued in the future");
	refused_assertion(
	    app, &c,
	    assertion(app, ks, "jwt-rp", json_pack("{s:I}", "nbf", (json_int_t)(now + 61))),
	    "assertion not yet valid");
	refused_assertion(app, &c, assertion(app, ks, "jwt-rp", json_pack("{s:s}", "iat", "now")),
	                  "assertion exp, iat and nbf must be integers");
	/* within the clock skew */
	jwt = assertion(app, ks, "jwt-rp", json_pack("{s:I}", "nbf", (json_int_t)(now + 30)));
	assert_true(oidc_client_assertion_ok(app, &c, jwt, &why));
	free(jwt);
	/* a jti */
	refused_assertion(app, &c, assertion(app, ks, "jwt-rp", json_pack("{s:n}", "jti")),
	                  "assertion jti missing");
	refused_assertion(app, &c, assertion(app, ks, "jwt-rp", json_pack("{s:s}", "jti", "")),
	                  "assertion jti missing");
	/* signed by a key that is not the client's */
	refused_assertion(app, &c, assertion(app, other, "jwt-rp", NULL), NULL);
	/* not a JWS, or not an allowed alg */
	refused_assertion(app, &c, strdup("abc.def"), "malformed client assertion");
	refused_assertion(app, &c, strdup("a b.c.d"), "malformed client assertion");
	b64 = malloc(b64url_encoded_len(strlen("{\"alg\":\"none\"}")) + 1);
	b64url_encode("{\"alg\":\"none\"}", strlen("{\"alg\":\"none\"}"), b64);
	jwt = assertion(app, ks, "jwt-rp", NULL);
	/* the signed payload under a header that says alg none */
	none = xasprintf("%s%s", b64, strchr(jwt, '.'));
	refused_assertion(app, &c, none, "assertion alg not allowed");
	free(jwt);
	free(b64);
	/* a client with no keys at all */
	json_decref(c.jwks);
	c.jwks = NULL;
	refused_assertion(app, &c, assertion(app, ks, "jwt-rp", NULL), "the client has no JWK set");
	jose_keyset_free(ks);
	jose_keyset_free(other);
}

static void
test_uri_listed_exactly(void **state)
{
	json_t *uris =
	    json_pack("[s, s, i]", "https://rp.example.tw/cb", "http://127.0.0.1:3000/cb", 5);
	struct pool *pool = pool_new(1024);

	(void)state;
	assert_true(oidc_uri_listed(uris, "https://rp.example.tw/cb"));
	assert_true(oidc_uri_listed(uris, "http://127.0.0.1:3000/cb"));
	assert_false(oidc_uri_listed(uris, "https://rp.example.tw/cb/"));
	assert_false(oidc_uri_listed(uris, "https://rp.example.tw/cb?x=1"));
	assert_false(oidc_uri_listed(uris, "https://RP.example.tw/cb"));
	assert_false(oidc_uri_listed(uris, "https://rp.example.tw/c"));
	assert_false(oidc_uri_listed(uris, ""));
	assert_string_equal(oidc_origin(pool, "https://rp.example.tw:8443/cb?x=1#f"),
	                    "https://rp.example.tw:8443");
	assert_string_equal(oidc_origin(pool, "http://127.0.0.1?x"), "http://127.0.0.1");
	assert_string_equal(oidc_origin(pool, "not a url"), "'none'");
	pool_free(pool);
	json_decref(uris);
}

/* A counter's login_hint names a member by account, e-mail, mobile number
 * or national ID (through the person); a person who is no member, and a
 * hint that names nobody, give no uuid, and a key of the same shape. */
static void
test_member_resolve_hint(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	struct member_new m = {
	    .account = "counter01",
	    .password = "correct horse battery staple",
	    .phone = "0955000111",
	    .email = "counter01@example.tw",
	    .name = "陳臨櫃",
	    .id_number = "C123456781",
	};
	static const char *const names[] = {
	    "counter01",    "COUNTER01",  "counter01@example.tw", "0955000111",
	    "0955-000-111", "C123456781", "c123456781",           NULL};
	static const char *const nobody[] = {
	    "counter02", "0955000112", "x@example.tw", "D223456784", "A123456788", "???", NULL};
	const char *key = NULL;
	char uuid[37], got[37], k[65], k2[65];

	assert_int_equal(member_create(app, &m, uuid, &key), 0);
	for (const char *const *n = names; *n != NULL; n++) {
		assert_int_equal(member_resolve_hint(app, *n, got, k), 0);
		assert_string_equal(got, uuid);
		assert_int_equal(strlen(k), 64);
	}
	/* A person known by ID (a card login) without a TaipeiPass account. */
	assert_int_equal(person_link_id(app, "D223456784", "林卡片", got), 0);
	for (const char *const *n = nobody; *n != NULL; n++) {
		assert_int_equal(member_resolve_hint(app, *n, got, k), 0);
		assert_string_equal(got, "");
		assert_int_equal(strlen(k), 64);
		assert_int_equal(member_resolve_hint(app, *n, got, k2), 0);
		assert_string_equal(k, k2);
	}
}

/* Only a confidential client registered for the CIBA grant, in poll
 * mode, starts counter requests. */
static void
test_ciba_client(void **state)
{
	struct store_client c;
	json_t *poll = json_pack("{s:s}", "backchannel_token_delivery_mode", "poll");
	json_t *ping = json_pack("{s:s}", "backchannel_token_delivery_mode", "ping");
	json_t *none = json_object();

	(void)state;
	memset(&c, 0, sizeof(c));
	c.client_id = "counter";
	c.grant_types = "authorization_code " OIDC_CIBA_GRANT;
	c.settings = poll;
	assert_true(oidc_ciba_client(&c));
	c.settings = none;
	assert_true(oidc_ciba_client(&c));
	c.settings = ping;
	assert_false(oidc_ciba_client(&c));
	c.settings = poll;
	c.public_client = true;
	assert_false(oidc_ciba_client(&c));
	c.public_client = false;
	c.grant_types = "authorization_code refresh_token";
	assert_false(oidc_ciba_client(&c));
	c.grant_types = NULL;
	assert_false(oidc_ciba_client(&c));
	c.grant_types = "urn:openid:params:grant-type:ciba-not";
	assert_false(oidc_ciba_client(&c));
	json_decref(poll);
	json_decref(ping);
	json_decref(none);
}

int
main(void)
{
	const struct CMUnitTest pure[] = {
	    cmocka_unit_test(test_scope_has_whole_words),
	    cmocka_unit_test(test_claims_from_scope_bits),
	    cmocka_unit_test(test_claims_restrict_to_scope),
	    cmocka_unit_test(test_scope_granted),
	    cmocka_unit_test(test_scope_granted_long_words),
	    cmocka_unit_test(test_min_loa),
	    cmocka_unit_test(test_ciba_client),
	    cmocka_unit_test(test_session_satisfies),
	    cmocka_unit_test(test_uri_listed_exactly),
	};
	const struct CMUnitTest stored[] = {
	    cmocka_unit_test(test_claims_vouched_by_method),
	    cmocka_unit_test(test_claims_organisation_only_from_its_login),
	    cmocka_unit_test(test_claims_linked_member_data),
	    cmocka_unit_test(test_consent_decisions),
	    cmocka_unit_test(test_pairwise_sub),
	    cmocka_unit_test(test_sealed_claims_and_tokens),
	    cmocka_unit_test(test_client_assertion),
	    cmocka_unit_test(test_client_find_only_approved),
	    cmocka_unit_test(test_member_resolve_hint),
	};
	int failed = cmocka_run_group_tests_name("oidc", pure, NULL, NULL);

	failed += cmocka_run_group_tests_name("oidc with a store", stored, app_fixture_setup,
	                                      app_fixture_teardown);
	return failed;
}
