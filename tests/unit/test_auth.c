/* Tests for the parts of src/auth that need no HTTP request: the policy
 * for new passwords (NFKC, length in characters, the common list, the
 * member's own words), the method registry and its assurance levels, the
 * helpers methods keep their state and limits with, the SMS code's
 * attempt logic, and the person directory (identity linking, member
 * registration checks and conflicts). Those that read the store run
 * against a real SQLite store and keys (tests/unit/app-fixture.h). */
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
#include "auth/otp.h"
#include "auth/password.h"
#include "auth/person.h"
#include "lib/isso.h"
#include "lib/secret.h"
#include "store/store.h"

/* ---- new passwords ---- */

static void
test_password_length_in_characters(void **state)
{
	char long_pw[4 * 130 + 1] = "";

	(void)state;
	assert_int_equal(password_chars(""), 0);
	assert_int_equal(password_chars("abc"), 3);
	assert_int_equal(password_chars("臺北市ab"), 5);
	/* without a policy only the length counts */
	assert_string_equal(password_problem(NULL, "1234567", NULL), "password.too_short");
	assert_null(password_problem(NULL, "12345678", NULL));
	/* eight characters of three bytes each: long enough */
	assert_null(password_problem(NULL, "臺北市政府資訊局", NULL));
	assert_string_equal(password_problem(NULL, "臺北市政府資訊", NULL), "password.too_short");
	for (int i = 0; i < 128; i++)
		strcat(long_pw, "密");
	assert_null(password_problem(NULL, long_pw, NULL));
	strcat(long_pw, "密");
	assert_string_equal(password_problem(NULL, long_pw, NULL), "password.too_long");
	/* not UTF-8: refused, never hashed */
	assert_null(password_normalize("abc\xff"));
	assert_string_equal(password_problem(NULL, "abcdefgh\xff", NULL), "password.too_short");
}

static void
test_password_nfkc(void **state)
{
	char *n;

	(void)state;
	/* full-width letters and digits are the ASCII ones */
	n = password_normalize("ＰＡＳＳ１２３");
	assert_non_null(n);
	assert_string_equal(n, "PASS123");
	free(n);
	/* a composed and a decomposed é are one password */
	n = password_normalize("caf\x65\xcc\x81");
	assert_string_equal(n, "caf\xc3\xa9");
	free(n);
}

static void
test_password_policy(void **state)
{
	struct app_fixture *f = *state;
	const struct password_policy *p = f->app.passwords;
	const char *ctx[] = {"wang01", "wang.da@example.tw", "0912345678", "王大明", NULL};

	assert_non_null(p);
	/* on the shipped list, in any case and in full width */
	assert_string_equal(password_problem(p, "password", NULL), "password.common");
	assert_string_equal(password_problem(p, "PassWord", NULL), "password.common");
	assert_string_equal(password_problem(p, "ｐａｓｓｗｏｒｄ", NULL), "password.common");
	assert_string_equal(password_problem(p, "12345678", NULL), "password.common");
	/* the member's own words: account, e-mail's local part, the phone's
	 * last nine digits */
	assert_string_equal(password_problem(p, "zebra-WANG01-lamp", ctx), "password.context");
	assert_string_equal(password_problem(p, "lamp Wang.Da zebra", ctx), "password.context");
	assert_string_equal(password_problem(p, "x912345678 lamp zebra", ctx), "password.context");
	/* words shorter than four characters and empty ones do not count */
	{
		const char *short_ctx[] = {"abc", "", NULL};

		assert_null(password_problem(p, "abc correct horse battery staple", short_ctx));
	}
	/* long enough but guessable */
	assert_string_equal(password_problem(p, "aaaaaaaaaaaa", NULL), "password.weak");
	assert_null(password_problem(p, "correct horse battery staple", ctx));
}

/* ---- methods ---- */

static void
test_method_registry(void **state)
{
	size_t n = 0;

	(void)state;
	for (const struct method *const *m = methods; *m != NULL; m++, n++) {
		assert_ptr_equal(method_find((*m)->id), *m);
		assert_true((*m)->loa >= LOA_LOW && (*m)->loa <= LOA_HIGH);
		assert_non_null((*m)->amr);
		assert_non_null((*m)->amr[0]);
		/* a step table with the first page, each step named once,
		 * served by a handler for at least one request method */
		assert_non_null((*m)->steps);
		assert_ptr_equal(method_step_find(*m, ""), &(*m)->steps[0]);
		for (const struct method_step *s = (*m)->steps; s->name != NULL; s++) {
			assert_non_null(s->handler);
			assert_true((s->http_methods & (HTTP_GET | HTTP_POST)) != 0);
			assert_ptr_equal(method_step_find(*m, s->name), s);
			if (s->flags & METHOD_STEP_BOUND)
				assert_non_null((*m)->foreign_page);
		}
		assert_null(method_step_find(*m, "no-such-step"));
		assert_null(method_step_find(*m, "status/x"));
		/* a help page has its title */
		if ((*m)->help_template != NULL)
			assert_non_null((*m)->help_title_key);
		/* every login names a person */
		assert_true(((*m)->vouches & CLAIM_UUID) != 0);
		/* no method vouches for an organisation: only its login does */
		assert_true(((*m)->vouches & CLAIM_ORGANIZATION) == 0);
		for (const struct method *const *o = methods; *o != *m; o++)
			assert_string_not_equal((*o)->id, (*m)->id);
	}
	assert_true(n >= 5);
	assert_null(method_find(NULL));
	assert_null(method_find(""));
	assert_null(method_find("TAIPEIPASS"));
	/* the levels each method reaches */
	assert_int_equal(method_find("taipeipass")->loa, LOA_LOW);
	assert_int_equal(method_find("telecom")->loa, LOA_SUBSTANTIAL);
	assert_int_equal(method_find("nhi-card")->loa, LOA_SUBSTANTIAL);
	assert_int_equal(method_find("moica-card")->loa, LOA_HIGH);
	assert_int_equal(method_find("moica-mobile")->loa, LOA_HIGH);
	/* a card without a photo-checked holder name does not vouch for one */
	assert_int_equal(method_find("nhi-card")->vouches & CLAIM_NAME, 0);
}

static void
test_loa_names(void **state)
{
	(void)state;
	assert_string_equal(loa_name(LOA_LOW), "urn:isso:loa:low");
	assert_string_equal(loa_name(LOA_SUBSTANTIAL), "urn:isso:loa:substantial");
	assert_string_equal(loa_name(LOA_HIGH), "urn:isso:loa:high");
	/* out of range reads as the lowest, never as more */
	assert_string_equal(loa_name((enum loa)0), "urn:isso:loa:low");
	assert_string_equal(loa_name((enum loa)4), "urn:isso:loa:low");
	for (int l = LOA_LOW; l <= LOA_HIGH; l++)
		assert_int_equal(loa_parse(loa_name((enum loa)l)), l);
	assert_int_equal(loa_parse(NULL), 0);
	assert_int_equal(loa_parse("urn:isso:loa:low "), 0);
}

static void
test_method_connectors(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;

	/* the default configuration has no connector URLs */
	assert_null(app->sms);
	assert_null(app->cardpki);
	assert_false(app->cardpki_configured);
	/* the password login needs nothing; the card logins their services,
	 * each init naming the settings that would enable it */
	assert_true(method_available(app, method_find("taipeipass")));
	assert_false(method_register_available(app, method_find("taipeipass")));
	assert_string_equal(app->method_setups[0].register_unset, "sms.url");
	assert_false(method_available(app, method_find("moica-card")));
	assert_false(method_available(app, method_find("telecom")));
	assert_false(method_available(app, method_find("moica-mobile")));
	assert_false(method_available(app, method_find("nhi-card")));
	for (size_t i = 0; methods[i] != NULL; i++) {
		const char *unset = app->method_setups[i].unset;

		if (strcmp(methods[i]->id, "moica-mobile") == 0)
			assert_string_equal(unset, "twfido.url,sms.url,moica.url");
		else if (strcmp(methods[i]->id, "telecom") == 0)
			assert_string_equal(unset, "telecom.url,sms.url");
		else if (strcmp(methods[i]->id, "moica-card") == 0)
			assert_string_equal(unset, "moica.url,sms.url");
		else if (strcmp(methods[i]->id, "nhi-card") == 0)
			assert_string_equal(unset, "nhi.url,sms.url");
		else
			assert_string_equal(unset, "");
	}
	/* the card methods keep their component's address for the help pages */
	assert_non_null(method_state_of(app, method_find("moica-card")));
	assert_null(method_state_of(app, method_find("telecom")));
}

static void
test_method_state(void **state)
{
	struct app_fixture *f = *state;
	json_t *txn = json_pack("{s:s, s:{s:i}}", "odd", "text", "kept", "n", 1);
	json_t *st;
	char *sealed = NULL, *plain;

	st = method_state(txn, "kept");
	assert_int_equal(json_integer_value(json_object_get(st, "n")), 1);
	/* created when absent, replaced when not an object */
	st = method_state(txn, "new");
	assert_true(json_is_object(st));
	assert_ptr_equal(json_object_get(txn, "new"), st);
	st = method_state(txn, "odd");
	assert_true(json_is_object(st));
	assert_int_equal(json_object_size(st), 0);

	/* sealed values open again; tampered or absent ones do not */
	assert_int_equal(secret_seal(&f->app.secrets, "A123456789", 10, &sealed), 0);
	json_object_set_new(st, "id", json_string(sealed));
	plain = method_state_open(&f->app, st, "id");
	assert_string_equal(plain, "A123456789");
	free(plain);
	sealed[strlen(sealed) / 2] = sealed[strlen(sealed) / 2] == 'A' ? 'B' : 'A';
	json_object_set_new(st, "id", json_string(sealed));
	assert_null(method_state_open(&f->app, st, "id"));
	assert_null(method_state_open(&f->app, st, "none"));
	json_object_set_new(st, "id", json_integer(5));
	assert_null(method_state_open(&f->app, st, "id"));
	free(sealed);
	json_decref(txn);
}

static void
test_method_value_limited(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;

	assert_false(method_value_limited(app, "unit-lim", "id", "A123456789", 600, 2));
	assert_false(method_value_limited(app, "unit-lim", "id", "A123456789", 600, 2));
	assert_true(method_value_limited(app, "unit-lim", "id", "A123456789", 600, 2));
	assert_true(method_value_limited(app, "unit-lim", "id", "A123456789", 600, 2));
	/* another value, another limit, another domain: counted apart */
	assert_false(method_value_limited(app, "unit-lim", "id", "A223456781", 600, 2));
	assert_false(method_value_limited(app, "unit-other", "id", "A123456789", 600, 2));
	assert_false(method_value_limited(app, "unit-lim", "phone", "A123456789", 600, 2));
}

/* ---- SMS codes ---- */

/* A challenge stored the way otp_send() stores it (otp_send needs a
 * request for the client's address): the purpose, the number's lookup
 * hash and the code's hash bound to the challenge id. */
static void
otp_challenge(struct isso_app *app, const char *purpose, const char *phone, const char *code,
              char id_r[44])
{
	char hash[65], chash[65], msg[64];
	json_t *o;

	secret_token(32, id_r);
	secret_lookup_hash(&app->secrets, "phone", phone, hash);
	snprintf(msg, sizeof(msg), "%s|%s", id_r, code);
	secret_sha256_hex(msg, strlen(msg), chash);
	o = json_pack("{s:s, s:s, s:s, s:I}", "purpose", purpose, "phone", hash, "code", chash,
	              "sent_at", (json_int_t)app_now());
	assert_int_equal(store_eph_put(app->store, "otp", id_r, o, app_now() + 300), 0);
	json_decref(o);
}

static enum otp_result
otp_try(struct isso_app *app, const char *id, const char *purpose, const char *phone,
        const char *code, int *left_r)
{
	enum otp_result r = OTP_OK;

	assert_int_equal(otp_check(app, id, purpose, phone, code, &r, left_r), 0);
	return r;
}

static void
test_otp_attempts(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	const char *phone = "0911000001";
	char id[44];
	int left = -1;

	otp_challenge(app, "login", phone, "123456", id);
	assert_int_equal(otp_try(app, id, "login", phone, "000000", &left), OTP_WRONG);
	assert_int_equal(left, OTP_MAX_TRIES - 1);
	/* not six digits: a wrong try like any other */
	assert_int_equal(otp_try(app, id, "login", phone, "12345a", &left), OTP_WRONG);
	assert_int_equal(left, OTP_MAX_TRIES - 2);
	assert_int_equal(otp_try(app, id, "login", phone, "1234567", &left), OTP_WRONG);
	assert_int_equal(left, OTP_MAX_TRIES - 3);
	/* the challenge belongs to one purpose and one number */
	assert_int_equal(otp_try(app, id, "reset", phone, "123456", &left), OTP_EXPIRED);
	assert_int_equal(otp_try(app, id, "login", "0911000002", "123456", &left), OTP_EXPIRED);
	/* the right code, once */
	assert_int_equal(otp_try(app, id, "login", phone, "123456", NULL), OTP_OK);
	assert_int_equal(otp_try(app, id, "login", phone, "123456", NULL), OTP_EXPIRED);
	/* malformed ids */
	assert_int_equal(otp_try(app, NULL, "login", phone, "123456", NULL), OTP_EXPIRED);
	assert_int_equal(otp_try(app, "short", "login", phone, "123456", NULL), OTP_EXPIRED);

	/* the fifth wrong code ends the challenge: the right one is too late */
	otp_challenge(app, "login", phone, "654321", id);
	for (int i = 1; i < OTP_MAX_TRIES; i++)
		assert_int_equal(otp_try(app, id, "login", phone, "111111", &left), OTP_WRONG);
	assert_int_equal(left, 1);
	assert_int_equal(otp_try(app, id, "login", phone, "111111", &left), OTP_EXHAUSTED);
	assert_int_equal(left, 0);
	assert_int_equal(otp_try(app, id, "login", phone, "654321", NULL), OTP_EXPIRED);
}

static void
test_otp_guesses_per_number(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	const char *phone = "0911000003";
	char id[44];
	int checks = 0;

	/* New codes do not buy new guesses: 30 checks an hour per number. */
	while (checks < OTP_VERIFY_PER_NUMBER_HOUR) {
		otp_challenge(app, "login", phone, "222222", id);
		for (int i = 0; i < OTP_MAX_TRIES - 1 && checks < OTP_VERIFY_PER_NUMBER_HOUR;
		     i++, checks++)
			assert_int_equal(otp_try(app, id, "login", phone, "999999", NULL),
			                 OTP_WRONG);
	}
	otp_challenge(app, "login", phone, "222222", id);
	assert_int_equal(otp_try(app, id, "login", phone, "222222", NULL), OTP_EXHAUSTED);
	assert_int_equal(otp_try(app, id, "login", phone, "222222", NULL), OTP_EXPIRED);
	/* another number is not affected */
	otp_challenge(app, "login", "0911000004", "333333", id);
	assert_int_equal(otp_try(app, id, "login", "0911000004", "333333", NULL), OTP_OK);
}

/* ---- the person directory ---- */

static void
test_person_link_id(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	char a[37], b[37], c[37];
	json_t *pii = NULL;

	/* the same ID, any case and spacing, is one person */
	assert_int_equal(person_link_id(app, "H187654320", NULL, a), 0);
	assert_int_equal(person_link_id(app, " h187654320 ", "陳大文", b), 0);
	assert_string_equal(a, b);
	assert_int_equal(person_link_id(app, "A800000014", NULL, c), 0);
	assert_string_not_equal(a, c);
	/* a name is added to a person without one, never replaced */
	assert_int_equal(person_link_id(app, "H187654320", "別人", b), 0);
	assert_int_equal(person_pii(app, a, &pii), 0);
	assert_string_equal(json_string_value(json_object_get(pii, "id_number")), "H187654320");
	assert_string_equal(json_string_value(json_object_get(pii, "name")), "陳大文");
	json_decref(pii);
	/* not an ID: nothing is created */
	assert_int_equal(person_link_id(app, "H187654321", NULL, b), ISSO_ERR_INVALID);
	assert_int_equal(person_link_id(app, "", NULL, b), ISSO_ERR_INVALID);
	/* an unknown uuid has no data */
	pii = json_true(); /* a static value: nothing leaks when it is replaced */
	assert_int_equal(person_pii(app, "00000000-0000-4000-8000-000000000000", &pii), 0);
	assert_null(pii);
}

static void
test_member_checks(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	struct member_new m = {
	    .account = "lin2024",
	    .password = "violet tractor seven rivers",
	    .phone = "0933123456",
	    .email = "lin2024@example.tw",
	    .name = "林美麗",
	};
	struct member_new bad;

	assert_null(member_check(app, &m));
	bad = m;
	bad.account = "9lin";
	assert_string_equal(member_check(app, &bad), "register.bad_account");
	bad.account = "lin";
	assert_string_equal(member_check(app, &bad), "register.bad_account");
	bad = m;
	bad.phone = "0233123456";
	assert_string_equal(member_check(app, &bad), "register.bad_phone");
	bad = m;
	bad.email = "not-an-address";
	assert_string_equal(member_check(app, &bad), "register.bad_email");
	bad = m;
	bad.id_number = "A123456780";
	assert_string_equal(member_check(app, &bad), "register.bad_id");
	bad = m;
	bad.birthdate = "1990-02-30";
	assert_string_equal(member_check(app, &bad), "register.bad_birthdate");
	bad = m;
	bad.password = "short";
	assert_string_equal(member_check(app, &bad), "password.too_short");
	/* the policy, with the member's own words */
	bad = m;
	bad.password = "password";
	assert_string_equal(member_check(app, &bad), "password.common");
	bad = m;
	bad.password = "violet LIN2024 rivers";
	assert_string_equal(member_check(app, &bad), "password.context");
}

static void
test_member_create_conflicts_and_adoption(void **state)
{
	struct app_fixture *f = *state;
	struct isso_app *app = &f->app;
	struct member_new m = {
	    .account = "Chen88",
	    .password = "violet tractor seven rivers",
	    .phone = "0955 123 456",
	    .email = "chen88@example.tw",
	    .id_number = "A900000025",
	};
	struct member_new other;
	const char *key = NULL;
	char card[37], uuid[37], found[37], again[37];
	json_t *pii = NULL;

	/* a card login came first: the member becomes that person (歸戶) */
	assert_int_equal(person_link_id(app, "A900000025", "陳八八", card), 0);
	assert_int_equal(member_create(app, &m, uuid, &key), 0);
	assert_null(key);
	assert_string_equal(uuid, card);
	assert_int_equal(person_pii(app, uuid, &pii), 0);
	/* stored normalised: the account case-folded, the phone's digits */
	assert_string_equal(json_string_value(json_object_get(pii, "account")), "chen88");
	assert_string_equal(json_string_value(json_object_get(pii, "phone")), "0955123456");
	json_decref(pii);
	assert_int_equal(member_find_by_phone(app, "0955123456", found), 0);
	assert_string_equal(found, uuid);
	assert_int_equal(member_find_by_phone(app, "0955000000", found), 0);
	assert_string_equal(found, "");

	/* the same account in another case */
	other = m;
	other.account = "CHEN88";
	other.phone = "0955000001";
	other.email = NULL;
	other.id_number = NULL;
	assert_int_equal(member_create(app, &other, again, &key), ISSO_ERR_CONFLICT);
	assert_string_equal(key, "register.account_taken");
	assert_string_equal(again, "");
	/* the same phone or e-mail under another account */
	other = m;
	other.account = "chen99";
	other.email = NULL;
	other.id_number = NULL;
	assert_int_equal(member_create(app, &other, again, &key), ISSO_ERR_CONFLICT);
	assert_string_equal(key, "register.contact_taken");
	other.phone = "0955000002";
	other.email = "CHEN88@example.tw";
	assert_int_equal(member_create(app, &other, again, &key), ISSO_ERR_CONFLICT);
	assert_string_equal(key, "register.contact_taken");
	/* the same ID: that person has an account already */
	other = m;
	other.account = "chen77";
	other.phone = "0955000003";
	other.email = NULL;
	assert_int_equal(member_create(app, &other, again, &key), ISSO_ERR_CONFLICT);
	assert_string_equal(key, "register.id_taken");
	assert_string_equal(again, "");
	/* a bad field: nothing written */
	other = m;
	other.account = "chen66";
	other.phone = "12345";
	assert_int_equal(member_create(app, &other, again, &key), ISSO_ERR_INVALID);
	assert_string_equal(key, "register.bad_phone");
}

int
main(void)
{
	const struct CMUnitTest pure[] = {
	    cmocka_unit_test(test_password_length_in_characters),
	    cmocka_unit_test(test_password_nfkc),
	    cmocka_unit_test(test_method_registry),
	    cmocka_unit_test(test_loa_names),
	};
	const struct CMUnitTest stored[] = {
	    cmocka_unit_test(test_password_policy),
	    cmocka_unit_test(test_method_connectors),
	    cmocka_unit_test(test_method_state),
	    cmocka_unit_test(test_method_value_limited),
	    cmocka_unit_test(test_otp_attempts),
	    cmocka_unit_test(test_otp_guesses_per_number),
	    cmocka_unit_test(test_person_link_id),
	    cmocka_unit_test(test_member_checks),
	    cmocka_unit_test(test_member_create_conflicts_and_adoption),
	};
	int failed = cmocka_run_group_tests_name("auth", pure, NULL, NULL);

	failed += cmocka_run_group_tests_name("auth with a store", stored, app_fixture_setup,
	                                      app_fixture_teardown);
	return failed;
}
