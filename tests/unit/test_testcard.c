/* Unit tests for the testcard PKCS#11 module (libisso-testcard.so) over
 * the test PKI's SoftHSM2 tokens: card serials and reader names, the PIN
 * counter and lock, taking a card out and putting it back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

/* The cards the tests use, from the test PKI's cards.json. */
#define LOCK_CARD   0 /* index in "moica": its PIN counter */
#define REMOVE_CARD 1 /* taken out and put back */

struct card {
	char serial[17]; /* as the module reports it, trimmed */
	char pin[16];
	char cert[512]; /* path of its certificate */
};

static const char *pki = ISSO_TEST_PKI; /* the ctest fixture's; $ISSO_TEST_PKI wins */
static void *lib;
static CK_FUNCTION_LIST *p11;
static char work[] = "/tmp/isso-testcard-XXXXXX"; /* --out of the script's card actions */
static char state[sizeof(work) + 16];             /* work/testcard */
static struct card moica[2], rogue, nhi;

static int
run_script(const char *args)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "'%s/scripts/test-pki.sh' %s", ISSO_DATADIR, args);
	return system(cmd);
}

static void
card_action(const char *action, const struct card *c)
{
	char args[512];

	snprintf(args, sizeof(args), "--out '%s' --%s %s", work, action, c->serial);
	assert_int_equal(run_script(args), 0);
}

static void
card_from_json(json_t *o, const char *serial_key, const char *pin, struct card *c_r)
{
	const char *serial = json_string_value(json_object_get(o, serial_key));
	const char *cert = json_string_value(json_object_get(o, "cert"));

	assert_non_null(serial);
	assert_non_null(cert);
	assert_non_null(pin);
	snprintf(c_r->serial, sizeof(c_r->serial), "%s", serial);
	snprintf(c_r->pin, sizeof(c_r->pin), "%s", pin);
	snprintf(c_r->cert, sizeof(c_r->cert), "%s/%s", pki, cert);
}

static int
setup(void **unused)
{
	CK_RV (*get_list)(CK_FUNCTION_LIST **);
	char path[512];
	json_t *cards;
	size_t i;

	if (getenv("ISSO_TEST_PKI") != NULL && getenv("ISSO_TEST_PKI")[0] != '\0')
		pki = getenv("ISSO_TEST_PKI");
	/* Up to date already when ctest's "pki" fixture ran. */
	snprintf(path, sizeof(path), "--out '%s'", pki);
	if (run_script(path) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/cards.json", pki);
	cards = json_load_file(path, 0, NULL);
	if (cards == NULL || json_array_size(json_object_get(cards, "moica")) < 2)
		return -1;
	for (i = 0; i < 2; i++) {
		json_t *c = json_array_get(json_object_get(cards, "moica"), i);
		card_from_json(c, "card_sn", json_string_value(json_object_get(c, "pin")),
		               &moica[i]);
	}
	card_from_json(json_array_get(json_object_get(cards, "rogue"), 0), "card_sn",
	               json_string_value(json_object_get(
	                   json_array_get(json_object_get(cards, "rogue"), 0), "pin")),
	               &rogue);
	card_from_json(json_array_get(json_object_get(cards, "nhi"), 0), "card_no",
	               json_string_value(json_object_get(cards, "nhi_token_pin")), &nhi);
	json_decref(cards);

	if (mkdtemp(work) == NULL)
		return -1;
	snprintf(state, sizeof(state), "%s/testcard", work);
	if (mkdir(state, 0700) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/softhsm2.conf", pki);
	setenv("SOFTHSM2_CONF", path, 1);
	setenv("ISSO_TESTCARD_STATE", state, 1);
	unsetenv("ISSO_TESTCARD_MODULE");

	lib = dlopen(ISSO_TESTCARD_SO, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL)
		return -1;
	get_list = (CK_RV(*)(CK_FUNCTION_LIST **))dlsym(lib, "C_GetFunctionList");
	if (get_list == NULL || get_list(&p11) != CKR_OK)
		return -1;
	return p11->C_Initialize(NULL) == CKR_OK ? 0 : -1;
}

static int
teardown(void **unused)
{
	char cmd[256];

	if (p11 != NULL)
		p11->C_Finalize(NULL);
	if (lib != NULL)
		dlclose(lib);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
	return system(cmd) == 0 ? 0 : -1;
}

static void
trim(char *dst, const unsigned char *field, size_t size)
{
	while (size > 0 && field[size - 1] == ' ')
		size--;
	memcpy(dst, field, size);
	dst[size] = '\0';
}

/* The slot holding the card with this serial, among the present ones;
 * false when it is not there. */
static bool
find_slot(const char *serial, CK_SLOT_ID *slot_r)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	char s[17];

	assert_int_equal(p11->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (i = 0; i < n; i++) {
		assert_int_equal(p11->C_GetTokenInfo(slots[i], &ti), CKR_OK);
		trim(s, ti.serialNumber, sizeof(ti.serialNumber));
		if (strcmp(s, serial) == 0) {
			*slot_r = slots[i];
			return true;
		}
	}
	return false;
}

static CK_FLAGS
token_flags(CK_SLOT_ID slot)
{
	CK_TOKEN_INFO ti;

	assert_int_equal(p11->C_GetTokenInfo(slot, &ti), CKR_OK);
	return ti.flags & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED);
}

static CK_RV
login(CK_SESSION_HANDLE s, const char *pin)
{
	CK_UTF8CHAR buf[16];
	size_t n = strlen(pin);

	memcpy(buf, pin, n);
	return p11->C_Login(s, CKU_USER, buf, n);
}

static CK_SESSION_HANDLE
open_session(CK_SLOT_ID slot)
{
	CK_SESSION_HANDLE s;

	assert_int_equal(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
	return s;
}

/* The counter file's number, or -1 when there is none. */
static int
counter_file(const struct card *c)
{
	char path[512];
	FILE *f;
	int n = -1;

	snprintf(path, sizeof(path), "%s/%s.pin-failures", state, c->serial);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%d", &n) != 1)
		n = -2;
	fclose(f);
	return n;
}

/* No temporary files left behind by the atomic writes. */
static void
assert_no_temp_files(void)
{
	struct dirent *e;
	DIR *d = opendir(state);

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		assert_null(strstr(e->d_name, ".pin-failures."));
	closedir(d);
}

static void
test_serials_and_readers(void **unused)
{
	CK_SLOT_ID all[64], slot;
	CK_ULONG n = 64, i;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_INFO info;
	char text[65], want[65];

	assert_int_equal(p11->C_GetInfo(&info), CKR_OK);
	trim(text, info.libraryDescription, sizeof(info.libraryDescription));
	assert_string_equal(text, "iSSO testcard (test cards only)");

	/* Readers are numbered in the order of all slots, from 0. */
	assert_int_equal(p11->C_GetSlotList(CK_FALSE, all, &n), CKR_OK);
	assert_true(n >= 4);
	for (i = 0; i < n; i++) {
		assert_int_equal(p11->C_GetSlotInfo(all[i], &si), CKR_OK);
		trim(text, si.slotDescription, sizeof(si.slotDescription));
		snprintf(want, sizeof(want), "Generic Smart Card Reader %lu", (unsigned long)i);
		assert_string_equal(text, want);
	}

	/* MOICA tokens report the card_sn; NHI tokens ("NHI <card_no>") the
	 * card_no, blank padded. */
	assert_true(find_slot(moica[LOCK_CARD].serial, &slot));
	assert_int_equal(p11->C_GetTokenInfo(slot, &ti), CKR_OK);
	assert_memory_equal(ti.serialNumber, moica[LOCK_CARD].serial, 16);
	assert_true(find_slot(nhi.serial, &slot));
	assert_int_equal(p11->C_GetTokenInfo(slot, &ti), CKR_OK);
	snprintf(want, sizeof(want), "%-16s", nhi.serial);
	assert_memory_equal(ti.serialNumber, want, 16);
	snprintf(want, sizeof(want), "NHI %-28s", nhi.serial);
	assert_memory_equal(ti.label, want, 32);
	assert_true(find_slot(rogue.serial, &slot));
	assert_false(find_slot("NHI 000000000000", &slot));
}

static void
test_pin_lock(void **unused)
{
	const struct card *c = &moica[LOCK_CARD];
	CK_SESSION_HANDLE s;
	CK_SLOT_ID slot;
	CK_TOKEN_INFO ti;

	assert_true(find_slot(c->serial, &slot));
	s = open_session(slot);
	assert_int_equal(token_flags(slot), 0);
	assert_int_equal(login(s, c->pin), CKR_OK);
	assert_int_equal(p11->C_Logout(s), CKR_OK);

	/* A wrong PIN, then the right one: the count starts again. */
	assert_int_equal(login(s, "99999999"), CKR_PIN_INCORRECT);
	assert_int_equal(counter_file(c), 1);
	assert_int_equal(token_flags(slot), CKF_USER_PIN_COUNT_LOW);
	assert_int_equal(login(s, c->pin), CKR_OK);
	assert_int_equal(p11->C_Logout(s), CKR_OK);
	assert_int_equal(counter_file(c), -1);
	assert_int_equal(token_flags(slot), 0);

	/* Three wrong PINs in a row lock the card. */
	assert_int_equal(login(s, "99999999"), CKR_PIN_INCORRECT);
	assert_int_equal(token_flags(slot), CKF_USER_PIN_COUNT_LOW);
	assert_int_equal(login(s, "88888888"), CKR_PIN_INCORRECT);
	assert_int_equal(token_flags(slot), CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY);
	assert_int_equal(counter_file(c), 2);
	assert_int_equal(login(s, "77777777"), CKR_PIN_LOCKED);
	assert_int_equal(token_flags(slot), CKF_USER_PIN_LOCKED);
	assert_int_equal(counter_file(c), 3);
	/* Locked: even the right PIN is refused, and not counted further. */
	assert_int_equal(login(s, c->pin), CKR_PIN_LOCKED);
	assert_int_equal(counter_file(c), 3);
	/* Another session, as another process would see it. */
	assert_int_equal(p11->C_CloseSession(s), CKR_OK);
	s = open_session(slot);
	assert_int_equal(login(s, c->pin), CKR_PIN_LOCKED);
	assert_int_equal(p11->C_GetTokenInfo(slot, &ti), CKR_OK);
	assert_true((ti.flags & CKF_USER_PIN_LOCKED) != 0);
	assert_no_temp_files();

	/* test-pki.sh --unlock: the right PIN works again. */
	card_action("unlock", c);
	assert_int_equal(counter_file(c), -1);
	assert_int_equal(token_flags(slot), 0);
	assert_int_equal(login(s, c->pin), CKR_OK);
	assert_int_equal(p11->C_CloseSession(s), CKR_OK);
}

/* Starts a signature with the card's key (CKA_ID 01) on session s. */
static CK_RV
sign_init(CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_BYTE id = 1;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, &id, 1}};
	CK_MECHANISM mech = {CKM_SHA256_RSA_PKCS, NULL, 0};
	CK_OBJECT_HANDLE key;
	CK_ULONG found = 0;

	assert_int_equal(p11->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
	assert_int_equal(p11->C_FindObjects(s, &key, 1, &found), CKR_OK);
	assert_int_equal(p11->C_FindObjectsFinal(s), CKR_OK);
	assert_int_equal(found, 1);
	return p11->C_SignInit(s, &mech, key);
}

static void
assert_signature(const struct card *c, const unsigned char *tbs, size_t tbs_len,
                 const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	FILE *f = fopen(c->cert, "r");
	X509 *cert;

	assert_non_null(f);
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(cert);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(cert)),
	                 1);
	assert_int_equal(EVP_DigestVerify(md, sig, sig_len, tbs, tbs_len), 1);
	EVP_MD_CTX_free(md);
	X509_free(cert);
}

static void
test_removal(void **unused)
{
	const struct card *c = &moica[REMOVE_CARD];
	static const unsigned char tbs[] = "login challenge";
	unsigned char sig[512], rnd[8];
	CK_ULONG sig_len = sizeof(sig), n;
	CK_SLOT_ID slot, other, slots[64];
	CK_SESSION_HANDLE s, s2;
	CK_MECHANISM mech = {CKM_SHA256_RSA_PKCS, NULL, 0};
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_ULONG present;

	assert_true(find_slot(c->serial, &slot));
	present = 64;
	assert_int_equal(p11->C_GetSlotList(CK_TRUE, slots, &present), CKR_OK);
	s = open_session(slot);
	assert_int_equal(login(s, c->pin), CKR_OK);
	assert_int_equal(sign_init(s), CKR_OK);

	card_action("remove", c);
	/* The reader stays, empty. */
	assert_false(find_slot(c->serial, &other));
	n = 0;
	assert_int_equal(p11->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
	assert_int_equal(n, present - 1);
	n = 1;
	assert_int_equal(p11->C_GetSlotList(CK_TRUE, slots, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, present - 1);
	assert_int_equal(p11->C_GetSlotInfo(slot, &si), CKR_OK);
	assert_true((si.flags & CKF_TOKEN_PRESENT) == 0);
	assert_int_equal(p11->C_GetTokenInfo(slot, &ti), CKR_TOKEN_NOT_PRESENT);
	assert_int_equal(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s2),
	                 CKR_TOKEN_NOT_PRESENT);
	/* The session opened before: the device is gone. */
	assert_int_equal(p11->C_Sign(s, (CK_BYTE *)tbs, sizeof(tbs) - 1, sig, &sig_len),
	                 CKR_DEVICE_REMOVED);
	assert_int_equal(p11->C_FindObjectsInit(s, NULL, 0), CKR_DEVICE_REMOVED);
	assert_int_equal(p11->C_SignInit(s, &mech, CK_INVALID_HANDLE), CKR_DEVICE_REMOVED);
	assert_int_equal(p11->C_GenerateRandom(s, rnd, sizeof(rnd)), CKR_DEVICE_REMOVED);
	assert_int_equal(login(s, c->pin), CKR_DEVICE_REMOVED);
	/* Other cards are still there. */
	assert_true(find_slot(moica[LOCK_CARD].serial, &other));

	card_action("insert", c);
	assert_true(find_slot(c->serial, &other));
	assert_int_equal(other, slot);
	assert_int_equal(p11->C_GetSlotInfo(slot, &si), CKR_OK);
	assert_true((si.flags & CKF_TOKEN_PRESENT) != 0);
	sig_len = sizeof(sig);
	assert_int_equal(p11->C_Sign(s, (CK_BYTE *)tbs, sizeof(tbs) - 1, sig, &sig_len), CKR_OK);
	assert_signature(c, tbs, sizeof(tbs) - 1, sig, sig_len);
	assert_int_equal(p11->C_CloseSession(s), CKR_OK);
}

/* The NHI card's basic data object, written by test-pki.sh. */
static void
test_nhi_basic_data(void **unused)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	static const char label[] = "NHI basic", app[] = "isso-nhi";
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
	                       {CKA_LABEL, (void *)label, sizeof(label) - 1},
	                       {CKA_APPLICATION, (void *)app, sizeof(app) - 1}};
	unsigned char value[64];
	CK_ATTRIBUTE get = {CKA_VALUE, value, sizeof(value)};
	CK_OBJECT_HANDLE obj;
	CK_ULONG found = 0;
	CK_SESSION_HANDLE s;
	CK_SLOT_ID slot;
	char want[64];

	assert_true(find_slot(nhi.serial, &slot));
	s = open_session(slot);
	/* Readable without the PIN, as on a real card. */
	assert_int_equal(p11->C_FindObjectsInit(s, tmpl, 3), CKR_OK);
	assert_int_equal(p11->C_FindObjects(s, &obj, 1, &found), CKR_OK);
	assert_int_equal(p11->C_FindObjectsFinal(s), CKR_OK);
	assert_int_equal(found, 1);
	assert_int_equal(p11->C_GetAttributeValue(s, obj, &get, 1), CKR_OK);
	assert_int_equal(get.ulValueLen, 50);
	/* 王小明 (A123456789, 1985-03-14) in Big5, padded to 20 bytes. */
	snprintf(want, sizeof(want), "%s\xa4\xfd\xa4\x70\xa9\xfa%14sA1234567890740314M", nhi.serial,
	         "");
	assert_string_equal(nhi.serial, "000012340001");
	assert_memory_equal(value, want, 50);
	assert_int_equal(login(s, nhi.pin), CKR_OK);
	assert_int_equal(p11->C_CloseSession(s), CKR_OK);
}

struct racer {
	CK_SESSION_HANDLE session;
	CK_RV rv;
};

static void *
race_wrong_pin(void *arg)
{
	struct racer *r = arg;

	r->rv = login(r->session, "1111");
	return NULL;
}

/* Wrong PINs from four threads at once: exactly two are counted as
 * incorrect, the third locks, the fourth finds the card locked. */
static void
test_threads_share_the_count(void **unused)
{
	struct racer r[4];
	pthread_t t[4];
	CK_SLOT_ID slot;
	int i, incorrect = 0, locked = 0;

	assert_true(find_slot(nhi.serial, &slot));
	for (i = 0; i < 4; i++)
		r[i].session = open_session(slot);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_wrong_pin, &r[i]), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		incorrect += r[i].rv == CKR_PIN_INCORRECT;
		locked += r[i].rv == CKR_PIN_LOCKED;
	}
	assert_int_equal(incorrect, 2);
	assert_int_equal(locked, 2);
	assert_int_equal(counter_file(&nhi), 3);
	assert_int_equal(login(r[0].session, nhi.pin), CKR_PIN_LOCKED);
	card_action("unlock", &nhi);
	assert_int_equal(login(r[0].session, nhi.pin), CKR_OK);
	assert_int_equal(p11->C_CloseAllSessions(slot), CKR_OK);
	assert_int_equal(p11->C_CloseSession(r[1].session), CKR_SESSION_HANDLE_INVALID);
	assert_no_temp_files();
}

/* Without ISSO_TESTCARD_STATE the count lives in the process only. */
static void
test_state_in_memory(void **unused)
{
	CK_SESSION_HANDLE s;
	CK_SLOT_ID slot;

	assert_int_equal(p11->C_Finalize(NULL), CKR_OK);
	unsetenv("ISSO_TESTCARD_STATE");
	assert_int_equal(p11->C_Initialize(NULL), CKR_OK);

	assert_true(find_slot(rogue.serial, &slot));
	s = open_session(slot);
	assert_int_equal(login(s, "000000"), CKR_PIN_INCORRECT);
	assert_int_equal(token_flags(slot), CKF_USER_PIN_COUNT_LOW);
	assert_int_equal(counter_file(&rogue), -1);
	assert_int_equal(login(s, rogue.pin), CKR_OK);
	assert_int_equal(token_flags(slot), 0);
	assert_int_equal(p11->C_Logout(s), CKR_OK);
	assert_int_equal(login(s, "000000"), CKR_PIN_INCORRECT);
	assert_int_equal(login(s, "000000"), CKR_PIN_INCORRECT);
	assert_int_equal(login(s, "000000"), CKR_PIN_LOCKED);
	assert_int_equal(login(s, rogue.pin), CKR_PIN_LOCKED);
	assert_int_equal(token_flags(slot), CKF_USER_PIN_LOCKED);
	assert_int_equal(counter_file(&rogue), -1);
	/* A card taken out is only seen through the state directory. */
	card_action("remove", &moica[LOCK_CARD]);
	assert_true(find_slot(moica[LOCK_CARD].serial, &slot));
	card_action("insert", &moica[LOCK_CARD]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_serials_and_readers),
	    cmocka_unit_test(test_pin_lock),
	    cmocka_unit_test(test_removal),
	    cmocka_unit_test(test_nhi_basic_data),
	    cmocka_unit_test(test_threads_share_the_count),
	    cmocka_unit_test(test_state_in_memory),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
