/* Person directory and TaipeiPass member accounts. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "auth/app.h"
#include "auth/password.h"
#include "auth/person.h"
#include "auth/throttle.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "store/store.h"

static bool
account_normalize(const char *in, char out[33])
{
	size_t n = strlen(in);

	if (n < 4 || n > 32 || !isalpha((unsigned char)in[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = (char)tolower((unsigned char)in[i]);
		if (!(isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-'))
			return false;
		out[i] = c;
	}
	out[n] = '\0';
	return true;
}

/* A plausible e-mail address, lower-cased into out (255 bytes). */
static bool
email_normalize(const char *in, char out[255])
{
	size_t n = strlen(in);
	const char *at = strchr(in, '@');

	if (n < 3 || n > 254 || at == NULL || at == in || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL || strchr(at + 1, '.') == NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"')
			return false;
		out[i] = (char)tolower(c);
	}
	out[n] = '\0';
	return true;
}

/* The lookup hash of an optional, already normalised e-mail, or NULL. */
static const char *
member_email_hash(struct isso_app *app, const char *given, const char *email, char out[65])
{
	if (given == NULL || given[0] == '\0')
		return NULL;
	return secret_lookup_hash(&app->secrets, "email", email, out);
}

const char *
member_password_problem(struct isso_app *app, const char *password, const char *const *context)
{
	return password_problem(app->passwords, password, context);
}

/* Checks every field of m and writes the normalised forms; returns NULL or
 * the message key of the first problem. */
static const char *
member_problem(const struct member_new *m, char account[33], char phone[11], char email[255],
               char idn[11])
{
	if (m->account == NULL || !account_normalize(m->account, account))
		return "register.bad_account";
	if (m->phone == NULL || !phone_normalize(m->phone, phone))
		return "register.bad_phone";
	if (m->email != NULL && m->email[0] != '\0' && !email_normalize(m->email, email))
		return "register.bad_email";
	if (m->id_number != NULL && m->id_number[0] != '\0' &&
	    !(idnum_normalize(m->id_number, idn) && idnum_is_valid(idn)))
		return "register.bad_id";
	if (m->birthdate != NULL && m->birthdate[0] != '\0' && !date_is_valid(m->birthdate))
		return "register.bad_birthdate";
	if (m->name != NULL && strlen(m->name) > 120)
		return "register.bad_name";
	if (m->password == NULL)
		return "password.too_short";
	return password_problem(NULL, m->password, NULL);
}

const char *
member_check(struct isso_app *app, const struct member_new *m)
{
	char account[33], phone[11], email[255], idn[11];
	const char *problem = member_problem(m, account, phone, email, idn);
	const char *context[] = {account, m->email != NULL ? m->email : "", phone,
	                         m->name != NULL ? m->name : "", NULL};

	if (problem != NULL)
		return problem;
	return member_password_problem(app, m->password, context);
}

/* argon2id of the NFKC form of password into out (128 bytes). */
static int
hash_password(const char *password, char out[128])
{
	char *norm = password_normalize(password);
	int ret;

	if (norm == NULL)
		return ISSO_ERR_INVALID;
	ret = secret_password_hash(norm, out);
	xfree_secret(norm);
	return ret;
}

int
member_create(struct isso_app *app, const struct member_new *m, char uuid_r[37],
              const char **error_key_r)
{
	char account[33], phone[11], email[255], idn[11];
	char phone_hash[65], email_hash[65], id_hash[65];
	struct store_person person;
	struct store_member member;
	json_t *pii = NULL;
	char *text = NULL, *sealed = NULL, pwhash[128];
	int64_t now = app_now();
	int ret = ISSO_ERR_INVALID;
	bool adopted = false;

	*error_key_r = NULL;
	uuid_r[0] = '\0';
	if ((*error_key_r = member_problem(m, account, phone, email, idn)) != NULL)
		goto out;

	pii = json_object();
	json_object_set_new(pii, "account", json_string(account));
	json_object_set_new(pii, "phone", json_string(phone));
	json_object_set_new(pii, "phone_verified", json_boolean(m->phone_verified));
	if (m->email != NULL && m->email[0] != '\0')
		json_object_set_new(pii, "email", json_string(email));
	if (m->name != NULL && m->name[0] != '\0')
		json_object_set_new(pii, "name", json_string(m->name));
	if (m->id_number != NULL && m->id_number[0] != '\0')
		json_object_set_new(pii, "id_number", json_string(idn));
	if (m->birthdate != NULL && m->birthdate[0] != '\0')
		json_object_set_new(pii, "birthdate", json_string(m->birthdate));
	if (m->address != NULL && m->address[0] != '\0')
		json_object_set_new(pii, "address", json_string(m->address));
	text = json_dumps(pii, JSON_COMPACT);
	ret = secret_seal(&app->secrets, text, strlen(text), &sealed);
	if (ret < 0)
		goto out;
	if (m->password_hash != NULL) {
		ret = snprintf(pwhash, sizeof(pwhash), "%s", m->password_hash);
		ret = ret > 0 && (size_t)ret < sizeof(pwhash) ? 0 : ISSO_ERR_INVALID;
	} else {
		ret = hash_password(m->password, pwhash);
	}
	if (ret < 0)
		goto out;

	/* Refuse known conflicts before writing anything. */
	{
		struct store_member *other = NULL;
		ret = store_member_find(
		    app->store, account, member_email_hash(app, m->email, email, email_hash),
		    secret_lookup_hash(&app->secrets, "phone", phone, phone_hash), &other);
		if (ret == 0 && other != NULL) {
			*error_key_r = strcmp(other->account, account) == 0
			                   ? "register.account_taken"
			                   : "register.contact_taken";
			ret = ISSO_ERR_CONFLICT;
		}
		store_member_free(other);
		if (ret < 0)
			goto out;
	}

	/* 歸戶: a person this national ID already logged in as (by a
	 * certificate, say) becomes the member; nobody gets a second uuid. */
	if (m->id_number != NULL && m->id_number[0] != '\0') {
		struct store_person *known = NULL;
		secret_lookup_hash(&app->secrets, "id", idn, id_hash);
		ret = store_person_find_by_id_hash(app->store, id_hash, &known);
		if (ret == 0 && known != NULL) {
			memcpy(uuid_r, known->uuid, strlen(known->uuid) + 1);
			adopted = true;
		}
		store_person_free(known);
		if (ret < 0)
			goto out;
	}
	if (!adopted) {
		secret_uuid(uuid_r);
		memset(&person, 0, sizeof(person));
		person.uuid = uuid_r;
		person.pii = sealed;
		person.created_at = person.updated_at = now;
		if (m->id_number != NULL && m->id_number[0] != '\0')
			person.id_hash = id_hash;
		ret = store_person_add(app->store, &person);
		if (ret == ISSO_ERR_CONFLICT) {
			*error_key_r = "register.id_taken";
			goto out;
		}
		if (ret < 0)
			goto out;
	}

	memset(&member, 0, sizeof(member));
	member.uuid = uuid_r;
	member.account = account;
	member.phone_hash = phone_hash;
	member.email_hash = (char *)member_email_hash(app, m->email, email, email_hash);
	member.password_hash = pwhash;
	member.level = m->gold ? MEMBER_GOLD : MEMBER_ORDINARY;
	member.created_at = now;
	ret = store_member_add(app->store, &member);
	if (ret < 0) {
		/* Lost a race with another registration (or the person already
		 * has an account): leave no person behind without its member. */
		if (!adopted)
			(void)store_person_delete(app->store, uuid_r);
		if (ret == ISSO_ERR_CONFLICT)
			*error_key_r = adopted ? "register.id_taken" : "register.account_taken";
		goto out;
	}
	/* The member's record is now the person's data; what a login proved
	 * stays in that login's session. */
	if (adopted)
		ret = store_person_update(app->store, uuid_r, NULL, sealed, now);
out:
	if (ret < 0)
		uuid_r[0] = '\0';
	sodium_memzero(pwhash, sizeof(pwhash));
	json_decref(pii);
	xfree_secret(text);
	free(sealed);
	return ret;
}

/* Lookup of a member by login name: an account, an e-mail or a phone. */
static int
member_lookup(struct isso_app *app, const char *login, struct store_member **member_r,
              char key_r[65])
{
	char norm[255], hash[65];

	*member_r = NULL;
	if (phone_normalize(login, norm)) {
		secret_lookup_hash(&app->secrets, "phone", norm, hash);
		memcpy(key_r, hash, 65);
		return store_member_find(app->store, NULL, NULL, hash, member_r);
	}
	if (strchr(login, '@') != NULL) {
		if (!email_normalize(login, norm))
			goto unknown;
		secret_lookup_hash(&app->secrets, "email", norm, hash);
		memcpy(key_r, hash, 65);
		return store_member_find(app->store, NULL, hash, NULL, member_r);
	}
	if (!account_normalize(login, norm))
		goto unknown;
	secret_lookup_hash(&app->secrets, "account", norm, key_r);
	return store_member_find(app->store, norm, NULL, NULL, member_r);
unknown:
	secret_lookup_hash(&app->secrets, "login", login, key_r);
	return 0;
}

/* Does password match hash? Checked in its NFKC form, and as typed when
 * that differs (a password set before passwords were normalised). */
static bool
member_password_matches(const char *hash, const char *password)
{
	char *norm = password_normalize(password);
	bool match = false;

	if (norm != NULL)
		match = secret_password_verify(hash, norm);
	if (!match && (norm == NULL || strcmp(norm, password) != 0))
		match = secret_password_verify(hash, password);
	xfree_secret(norm);
	return match;
}

/* One password check in flight: begun on the request thread, verified on
 * the hashing pool, ended back on the request thread. */
struct member_auth {
	struct isso_app *app;
	struct store_member *member;
	struct throttle_attempt attempt;
	char *password; /* a copy, wiped once verified */
	bool match;
	member_auth_done_fn *done;
	void *ctx;
};

static void
member_auth_free(struct member_auth *a)
{
	xfree_secret(a->password);
	store_member_free(a->member);
	sodium_memzero(a, sizeof(*a));
	free(a);
}

/* On the hashing pool: the argon2id verification, nothing else. */
static void
member_auth_work(void *arg)
{
	struct member_auth *a = arg;

	a->match = member_password_matches(a->member != NULL ? a->member->password_hash
	                                                     : a->app->dummy_password_hash,
	                                   a->password);
	xfree_secret(a->password);
	a->password = NULL;
}

static void
member_auth_done(struct http_req *req, void *arg)
{
	struct member_auth *a = arg;
	struct member_auth_result res;

	if (req == NULL) {
		a->done(NULL, NULL, a->ctx);
		goto out;
	}
	memset(&res, 0, sizeof(res));
	if (a->member != NULL && a->match) {
		res.ok = true;
		memcpy(res.uuid, a->member->uuid, strlen(a->member->uuid) + 1);
	}
	throttle_end(a->app, req, &a->attempt, res.ok, res.ok ? res.uuid : NULL,
	             a->member != NULL ? "wrong_password" : "unknown_login");
	a->done(req, &res, a->ctx);
out:
	member_auth_free(a);
}

void
member_authenticate(struct isso_app *app, struct http_req *req, const char *login,
                    const char *password, member_auth_done_fn *done, void *ctx)
{
	struct member_auth *a = xcalloc(1, sizeof(*a));
	struct member_auth_result res;
	const char *method;
	char key[65];

	memset(&res, 0, sizeof(res));
	a->app = app;
	a->done = done;
	a->ctx = ctx;
	if (strlen(login) > 254 || strlen(password) > 1024) {
		res.ret = ISSO_ERR_INVALID;
		goto answer;
	}
	res.ret = member_lookup(app, login, &a->member, key);
	if (res.ret < 0)
		goto answer;
	/* Throttled per member, however it is named (account, e-mail, phone);
	 * for a name that matches nobody, per that name, so the answers and
	 * their timing tell nothing about whether an account exists. */
	if (a->member != NULL)
		secret_lookup_hash(&app->secrets, "member", a->member->uuid, key);
	/* A place in the hashing queue before anything is counted: a full
	 * queue refuses an attempt that counted nothing. */
	if (!http_defer_reserve(req)) {
		res.ret = ISSO_ERR_LIMIT;
		goto answer;
	}
	method = strncmp(http_path(req), "/app/", 5) == 0 ? "taipeipass-app" : "taipeipass";
	res.ret = throttle_begin(app, req, method, key, a->member != NULL ? a->member->uuid : NULL,
	                         &a->attempt);
	if (res.ret < 0)
		goto answer;
	if (a->attempt.wait > 0) {
		res.wait = a->attempt.wait;
		goto answer;
	}
	a->password = xstrdup(password);
	if (http_defer(req, member_auth_work, member_auth_done, a) == 0)
		return; /* a is member_auth_done's now */
	/* The server stops: nothing was checked, the attempt must not count
	 * as a guess. */
	throttle_cancel(app, &a->attempt);
	res.ret = ISSO_ERR_LIMIT;
answer:
	done(req, &res, ctx);
	member_auth_free(a);
}

int
member_resolve_hint(struct isso_app *app, const char *hint, char uuid_r[37], char key_r[65])
{
	struct store_member *member = NULL;
	struct store_person *person = NULL;
	char idn[11], id_hash[65];
	int ret;

	uuid_r[0] = '\0';
	if (idnum_normalize(hint, idn) && idnum_is_valid(idn)) {
		/* A national ID finds the person; only a person who is also a
		 * member has an app to approve with. */
		secret_lookup_hash(&app->secrets, "id", idn, id_hash);
		memcpy(key_r, id_hash, 65);
		explicit_bzero(idn, sizeof(idn));
		ret = store_person_find_by_id_hash(app->store, id_hash, &person);
		/* The same two look-ups whether or not the ID is known. */
		if (ret == 0)
			ret = store_member_get(
			    app->store,
			    person != NULL ? person->uuid : "00000000-0000-0000-0000-000000000000",
			    &member);
	} else {
		ret = member_lookup(app, hint, &member, key_r);
	}
	if (ret == 0 && member != NULL && strlen(member->uuid) < 37)
		memcpy(uuid_r, member->uuid, strlen(member->uuid) + 1);
	store_person_free(person);
	store_member_free(member);
	return ret;
}

int
member_find_by_phone(struct isso_app *app, const char *phone, char uuid_r[37])
{
	struct store_member *member = NULL;
	char hash[65];
	int ret;

	uuid_r[0] = '\0';
	secret_lookup_hash(&app->secrets, "phone", phone, hash);
	ret = store_member_find(app->store, NULL, NULL, hash, &member);
	if (ret == 0 && member != NULL)
		memcpy(uuid_r, member->uuid, strlen(member->uuid) + 1);
	store_member_free(member);
	return ret;
}

int
member_context(struct isso_app *app, const char *uuid, char **account_r, char **email_r)
{
	json_t *pii = NULL;
	const char *v;
	int ret;

	*account_r = *email_r = NULL;
	ret = person_pii(app, uuid, &pii);
	if (ret == 0 && pii != NULL) {
		if ((v = json_string_value(json_object_get(pii, "account"))) != NULL)
			*account_r = xstrdup(v);
		if ((v = json_string_value(json_object_get(pii, "email"))) != NULL)
			*email_r = xstrdup(v);
	}
	json_decref(pii);
	return ret;
}

int
member_set_password(struct isso_app *app, const char *uuid, const char *password)
{
	char hash[128];
	int ret = hash_password(password, hash);

	if (ret == 0)
		ret = store_member_set_password(app->store, uuid, hash);
	sodium_memzero(hash, sizeof(hash));
	return ret;
}

int
member_set_password_hash(struct isso_app *app, const char *uuid, const char *hash)
{
	return store_member_set_password(app->store, uuid, hash);
}

/* One new password being hashed on the hashing pool. */
struct member_hash {
	char *password; /* a copy, wiped once hashed */
	char hash[128];
	int ret;
	member_hash_done_fn *done;
	void *ctx;
};

static void
member_hash_free(struct member_hash *h)
{
	xfree_secret(h->password);
	sodium_memzero(h, sizeof(*h));
	free(h);
}

static void
member_hash_work(void *arg)
{
	struct member_hash *h = arg;

	h->ret = hash_password(h->password, h->hash);
	xfree_secret(h->password);
	h->password = NULL;
}

static void
member_hash_done(struct http_req *req, void *arg)
{
	struct member_hash *h = arg;

	if (req == NULL)
		h->done(NULL, 0, NULL, h->ctx);
	else
		h->done(req, h->ret, h->ret == 0 ? h->hash : NULL, h->ctx);
	member_hash_free(h);
}

void
member_hash_password(struct http_req *req, const char *password, member_hash_done_fn *done,
                     void *ctx)
{
	struct member_hash *h = xcalloc(1, sizeof(*h));

	h->password = xstrdup(password);
	h->done = done;
	h->ctx = ctx;
	if (http_defer(req, member_hash_work, member_hash_done, h) == 0)
		return;
	done(req, ISSO_ERR_LIMIT, NULL, ctx);
	member_hash_free(h);
}

int
person_pii(struct isso_app *app, const char *uuid, json_t **pii_r)
{
	struct store_person *person = NULL;
	struct store_member *member = NULL;
	char *text = NULL;
	int ret;

	*pii_r = NULL;
	ret = store_person_get(app->store, uuid, &person);
	if (ret < 0 || person == NULL)
		goto out;
	ret = secret_open(&app->secrets, person->pii, &text);
	if (ret < 0)
		goto out;
	*pii_r = json_loads(text, 0, NULL);
	if (*pii_r == NULL || !json_is_object(*pii_r)) {
		json_decref(*pii_r);
		*pii_r = NULL;
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	ret = store_member_get(app->store, uuid, &member);
	if (ret == 0 && member != NULL)
		json_object_set_new(
		    *pii_r, "level",
		    json_string(member->level == MEMBER_GOLD ? "gold" : "ordinary"));
out:
	xfree_secret(text);
	store_person_free(person);
	store_member_free(member);
	return ret;
}

/* Adds name to the sealed PII of a person that has none. Best effort: the
 * link itself does not depend on it. */
static int
person_add_name(struct isso_app *app, const struct store_person *person, const char *name)
{
	char *text = NULL, *sealed = NULL;
	json_t *pii = NULL;
	int ret;

	ret = secret_open(&app->secrets, person->pii, &text);
	if (ret < 0)
		goto out;
	pii = json_loads(text, 0, NULL);
	if (!json_is_object(pii)) {
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	if (json_object_get(pii, "name") != NULL)
		goto out;
	json_object_set_new(pii, "name", json_string(name));
	xfree_secret(text);
	text = json_dumps(pii, JSON_COMPACT);
	if (text == NULL) {
		ret = ISSO_ERR_NOMEM;
		goto out;
	}
	ret = secret_seal(&app->secrets, text, strlen(text), &sealed);
	if (ret == 0)
		ret = store_person_update(app->store, person->uuid, NULL, sealed, app_now());
out:
	xfree_secret(text);
	free(sealed);
	json_decref(pii);
	return ret;
}

int
person_link_id(struct isso_app *app, const char *id_number, const char *name, char uuid_r[37])
{
	struct store_person *found = NULL, person;
	char idn[11], id_hash[65];
	char *text = NULL, *sealed = NULL;
	json_t *pii = NULL;
	int ret = ISSO_ERR_INVALID;

	uuid_r[0] = '\0';
	if (id_number == NULL || !idnum_normalize(id_number, idn) || !idnum_is_valid(idn))
		goto out;
	if (name != NULL && (name[0] == '\0' || strlen(name) > 120))
		name = NULL;
	secret_lookup_hash(&app->secrets, "id", idn, id_hash);
	/* Twice at most: a concurrent first login with the same ID may add
	 * the person between our lookup and our insert. */
	for (int attempt = 0; attempt < 2; attempt++) {
		ret = store_person_find_by_id_hash(app->store, id_hash, &found);
		if (ret < 0)
			goto out;
		if (found != NULL) {
			memcpy(uuid_r, found->uuid, strlen(found->uuid) + 1);
			if (name != NULL)
				(void)person_add_name(app, found, name);
			goto out;
		}
		if (sealed == NULL) {
			pii = json_pack("{s:s}", "id_number", idn);
			if (name != NULL)
				json_object_set_new(pii, "name", json_string(name));
			text = json_dumps(pii, JSON_COMPACT);
			if (text == NULL) {
				ret = ISSO_ERR_NOMEM;
				goto out;
			}
			ret = secret_seal(&app->secrets, text, strlen(text), &sealed);
			if (ret < 0)
				goto out;
		}
		secret_uuid(uuid_r);
		memset(&person, 0, sizeof(person));
		person.uuid = uuid_r;
		person.id_hash = id_hash;
		person.pii = sealed;
		person.created_at = person.updated_at = app_now();
		ret = store_person_add(app->store, &person);
		if (ret != ISSO_ERR_CONFLICT)
			goto out;
	}
out:
	if (ret < 0)
		uuid_r[0] = '\0';
	sodium_memzero(idn, sizeof(idn));
	store_person_free(found);
	xfree_secret(text);
	free(sealed);
	json_decref(pii);
	return ret;
}
