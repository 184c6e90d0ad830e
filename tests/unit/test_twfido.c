/* Tests for the TW FidO connector and isso-sim's TW FidO SP API and phone
 * side: checksum vectors computed independently (node:crypto), the real
 * simulator binary as a child on a free loopback port, and hand-made
 * peers (canned replies, a closed port, a socket that never answers) for
 * what the simulator never does. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim-child.h"
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/x509.h>

#include "conn/twfido.h"
#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"

/* isso-sim's defaults (src/sim/main.c) */
#define SIM_SP_ID "TPE-ISSO-SIM"
#define SIM_KEY   "6ec249964849d00314f8dfc7d385d2f78768e2f1d249c49de5849d0e0afaadd4"

#define ID_ENROLLED      "A123456789" /* mobile_cert_enrolled: true */
#define ID_ENROLLED_2    "H187654320" /* likewise */
#define ID_NOT_ENROLLED  "A223456781" /* in the file, false */
#define ID_NOT_IN_FILE   "Q123456782" /* valid, unknown to the sim */
#define HASH_ID_ENROLLED "51ff20a57253f7f0ee3a9bffe86a86a2141c716b2f554b2bf6429df50e538c13"
#define HINT             "臺北市政府單一身分驗證入口登入"

/* ---- helpers ---- */

static size_t
collect_cb(char *data, size_t size, size_t n, void *ctx)
{
	struct {
		char *p;
		size_t len;
	} *b = ctx;

	b->p = realloc(b->p, b->len + size * n + 1);
	memcpy(b->p + b->len, data, size * n);
	b->len += size * n;
	b->p[b->len] = '\0';
	return size * n;
}

/* One exchange with the simulator: method on path, an optional JSON body;
 * the reply parsed as JSON (NULL when not) and the HTTP status. */
static json_t *
sim_call(const char *method, const char *path, const char *json_body, long *status_r)
{
	struct {
		char *p;
		size_t len;
	} b = {NULL, 0};
	CURL *curl = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[4096];
	json_t *j = NULL;

	assert_non_null(curl);
	snprintf(url, sizeof(url), "%s%s", sim_base, path);
	*status_r = 0;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	if (json_body != NULL) {
		h = curl_slist_append(NULL, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	}
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status_r);
	curl_easy_cleanup(curl);
	curl_slist_free_all(h);
	if (b.p != NULL)
		j = json_loads(b.p, 0, NULL);
	free(b.p);
	return j;
}

static void
key_bytes(const char *text, unsigned char key[TWFIDO_KEY_LEN])
{
	assert_int_equal(twfido_key_parse(text, key), 0);
}

/* sp_checksum over the fields with the simulator's key. */
static void
seal_fields(const char *key_text, const char *const *fields, size_t n,
            char out[TWFIDO_CHECKSUM_LEN + 1])
{
	unsigned char key[TWFIDO_KEY_LEN];
	char payload[4096] = "";

	for (size_t i = 0; i < n; i++)
		strncat(payload, fields[i], sizeof(payload) - strlen(payload) - 1);
	key_bytes(key_text, key);
	assert_int_equal(twfido_checksum_seal(key, NULL, payload, strlen(payload), out), 0);
}

/* ---- simulator lifecycle ---- */

static int
sim_start(void **state)
{
	static const char *const extra[] = {"--twfido-min-time-limit", "1", NULL};

	log_init(2, LOG_ERROR);
	if (secret_init() != 0)
		return -1;
	if (sim_child_start("test_twfido", extra) != 0)
		return -1;
	return 0;
}

static int
sim_stop(void **state)
{
	sim_child_stop();
	return 0;
}

static struct conn_twfido *
sim_connector(void)
{
	struct conn_twfido *tf = conn_twfido_new(sim_base, SIM_SP_ID, SIM_KEY, 3000);

	assert_non_null(tf);
	return tf;
}

static void
issue(struct conn_twfido *tf, const char *id, int time_limit, struct twfido_ticket *t)
{
	struct twfido_status st;
	const char *error = NULL;
	int ret = conn_twfido_get_ticket(tf, id, HINT, time_limit, t, &st, &error);

	if (ret != 0)
		fail_msg("get_ticket: %d %s (%s)", ret, error != NULL ? error : "", st.code);
	assert_int_equal(st.state, TWFIDO_PENDING);
	assert_string_equal(st.code, "0");
	assert_non_null(t->sp_ticket);
}

/* POST /phone/mobilecert/{action}?ticket=…[&as=…]; returns the status. */
static long
phone_answer(const char *action, const char *ticket, const char *as)
{
	char path[4096];
	long status;
	json_t *j;

	snprintf(path, sizeof(path), "/phone/mobilecert/%s?ticket=%s%s%s", action, ticket,
	         as != NULL ? "&as=" : "", as != NULL ? as : "");
	j = sim_call("POST", path, NULL, &status);
	assert_non_null(j);
	json_decref(j);
	return status;
}

/* ---- checksum ---- */

#define VEC_KEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define VEC_KEY_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define VEC_TXN     "3f1c0a52-6a37-4c1e-9d0f-2b9a5e7c8d41"
/* ATH-01 sp_checksum payload: transaction_id, sp_service_id, id_num,
 * op_code, op_mode, hint, sign_data ("") */
#define VEC_P1                                                                                     \
	VEC_TXN "TPE-ISSO-SIM"                                                                     \
	        "A123456789"                                                                       \
	        "ATH"                                                                              \
	        "I-SCAN"                                                                           \
	        "臺北市政府單一身分驗證入口登入"
/* ATH-02 idp_checksum payload: transaction_id, error_code, hashed_id_num,
 * signed_response ("") */
#define VEC_P2                                                                                     \
	VEC_TXN "0"                                                                                \
	        "1f2e"
/* computed with node:crypto (aes-256-gcm, 16-byte tag) */
#define VEC_C1_ZERO_IV                                                                             \
	"0000000000000000000000003ad98cba821fe1d93a91ca047e1df4aceb7a37651ab3031de2a78ab3f5c73"    \
	"c637c3bd6d91a97803505f144c3f4fd5b77cf3279d31b1427c633d05a402f047dd00b396191009c5fb29"     \
	"d2e8918d69b05b7"
#define VEC_C1_IV                                                                                  \
	"0102030405060708090a0b0c318f63b1dba792e27e9b007676228f1d7b7a80c8a55f33f7c366c014ae8e1"    \
	"7f0b680abba5ed0d4ac869e8fd3f0e8ca64f8c377d5b6fc5712551b69ab0a650738f652e7d121dc177a8"     \
	"4fdb13ed4a89266"
#define VEC_C2                                                                                     \
	"a0a1a2a3a4a5a6a7a8a9aaabd57a4b1d72ad3adb5b5db6e43e43f7e641943f25a18f230fa56d43e21cca1"    \
	"063b34e7ecc97106b086efa67ff6f49b7c97128257c55e32f4f726d6e6bc214e3d48008a92cb1e74c443"     \
	"2f6ecbf348d0add"

static void
test_checksum_vectors(void **state)
{
	static const unsigned char iv0[12] = {0};
	static const unsigned char iv1[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	static const unsigned char iv2[12] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5,
	                                      0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab};
	unsigned char key[TWFIDO_KEY_LEN], key2[TWFIDO_KEY_LEN];
	char out[TWFIDO_CHECKSUM_LEN + 1], upper[TWFIDO_CHECKSUM_LEN + 1];

	key_bytes(VEC_KEY_HEX, key);
	key_bytes(VEC_KEY_B64, key2);
	assert_memory_equal(key, key2, sizeof(key));
	assert_int_equal(strlen(VEC_C1_ZERO_IV), TWFIDO_CHECKSUM_LEN);

	/* our seal gives the independent implementation's bytes */
	assert_int_equal(twfido_checksum_seal(key, iv0, VEC_P1, strlen(VEC_P1), out), 0);
	assert_string_equal(out, VEC_C1_ZERO_IV);
	assert_int_equal(twfido_checksum_seal(key, iv1, VEC_P1, strlen(VEC_P1), out), 0);
	assert_string_equal(out, VEC_C1_IV);
	assert_int_equal(twfido_checksum_seal(key, iv2, VEC_P2, strlen(VEC_P2), out), 0);
	assert_string_equal(out, VEC_C2);

	/* and our verify accepts them, whatever the IV */
	assert_true(twfido_checksum_verify(key, VEC_P1, strlen(VEC_P1), VEC_C1_ZERO_IV));
	assert_true(twfido_checksum_verify(key, VEC_P1, strlen(VEC_P1), VEC_C1_IV));
	assert_true(twfido_checksum_verify(key, VEC_P2, strlen(VEC_P2), VEC_C2));
	for (size_t i = 0; i <= TWFIDO_CHECKSUM_LEN; i++)
		upper[i] =
		    VEC_C2[i] >= 'a' && VEC_C2[i] <= 'f' ? (char)(VEC_C2[i] - 32) : VEC_C2[i];
	assert_true(twfido_checksum_verify(key, VEC_P2, strlen(VEC_P2), upper));

	/* a random IV round-trips and differs each time */
	{
		char a[TWFIDO_CHECKSUM_LEN + 1], b[TWFIDO_CHECKSUM_LEN + 1];

		assert_int_equal(twfido_checksum_seal(key, NULL, VEC_P1, strlen(VEC_P1), a), 0);
		assert_int_equal(twfido_checksum_seal(key, NULL, VEC_P1, strlen(VEC_P1), b), 0);
		assert_string_not_equal(a, b);
		assert_true(twfido_checksum_verify(key, VEC_P1, strlen(VEC_P1), a));
		assert_true(twfido_checksum_verify(key, VEC_P1, strlen(VEC_P1), b));
	}

	/* tampering anywhere (IV, ciphertext, tag), another payload, another
	 * key, a wrong length or non-hex: refused */
	{
		static const size_t where[] = {0, 23, 24, 100, 167, 168, 183};

		for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
			memcpy(out, VEC_C2, sizeof(out));
			out[where[i]] = out[where[i]] == '0' ? '1' : '0';
			assert_false(twfido_checksum_verify(key, VEC_P2, strlen(VEC_P2), out));
		}
	}
	assert_false(twfido_checksum_verify(key, VEC_P2 "x", strlen(VEC_P2) + 1, VEC_C2));
	assert_false(twfido_checksum_verify(key, "", 0, VEC_C2));
	key2[5] ^= 1;
	assert_false(twfido_checksum_verify(key2, VEC_P2, strlen(VEC_P2), VEC_C2));
	memcpy(out, VEC_C2, sizeof(out));
	out[TWFIDO_CHECKSUM_LEN - 2] = '\0';
	assert_false(twfido_checksum_verify(key, VEC_P2, strlen(VEC_P2), out));
	memcpy(out, VEC_C2, sizeof(out));
	out[50] = 'g';
	assert_false(twfido_checksum_verify(key, VEC_P2, strlen(VEC_P2), out));
	assert_false(twfido_checksum_verify(key, VEC_P2, strlen(VEC_P2), ""));
	assert_false(twfido_checksum_verify(key, VEC_P2, strlen(VEC_P2), NULL));

	/* keys: 64 hex digits or base64 of exactly 32 bytes */
	assert_int_equal(twfido_key_parse(NULL, key), ISSO_ERR_INVALID);
	assert_int_equal(twfido_key_parse("", key), ISSO_ERR_INVALID);
	assert_int_equal(twfido_key_parse(VEC_KEY_HEX "00", key), ISSO_ERR_INVALID);
	assert_int_equal(
	    twfido_key_parse("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c"
	                     "1d1e1f",
	                     key),
	    ISSO_ERR_INVALID);
	assert_int_equal(twfido_key_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", key),
	                 ISSO_ERR_INVALID); /* 31 bytes */
}

static void
test_identity_checks(void **state)
{
	assert_true(conn_twfido_id_matches(HASH_ID_ENROLLED, ID_ENROLLED));
	assert_true(conn_twfido_id_matches(HASH_ID_ENROLLED, " a123456789 "));
	assert_true(conn_twfido_id_matches(
	    "51FF20A57253F7F0EE3A9BFFE86A86A2141C716B2F554B2BF6429DF50E538C13", ID_ENROLLED));
	assert_false(conn_twfido_id_matches(HASH_ID_ENROLLED, ID_ENROLLED_2));
	assert_false(conn_twfido_id_matches(HASH_ID_ENROLLED, NULL));
	assert_false(conn_twfido_id_matches(NULL, ID_ENROLLED));
	assert_false(conn_twfido_id_matches("51ff", ID_ENROLLED));

	assert_true(conn_twfido_same_person("abc", "abc"));
	assert_false(conn_twfido_same_person("abc", "abd"));
	assert_false(conn_twfido_same_person("abc", "abcd"));
	assert_false(conn_twfido_same_person("", ""));
	assert_false(conn_twfido_same_person(NULL, "abc"));
	assert_int_equal(conn_twfido_poll_interval(), 4000);
}

/* ---- through the simulator ---- */

/* The subject CN of a certificate in standard base64 (malloc'd UTF-8),
 * or NULL. */
static char *
cert_cn(const char *b64)
{
	unsigned char der[8192], *utf8 = NULL;
	const unsigned char *p = der;
	long n = b64_decode(b64, strlen(b64), der, sizeof(der));
	X509 *x = n > 0 ? d2i_X509(NULL, &p, n) : NULL;
	const X509_NAME *subject = x != NULL ? X509_get_subject_name(x) : NULL;
	int idx = subject != NULL ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
	char *out = NULL;
	int len;

	if (idx >= 0) {
		len = ASN1_STRING_to_UTF8(
		    &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
		if (len > 0)
			out = strndup((const char *)utf8, (size_t)len);
	}
	OPENSSL_free(utf8);
	X509_free(x);
	return out;
}

/* The citizen's name in sim/identities.json (malloc'd), or NULL. */
static char *
identity_name(const char *id_num)
{
	json_t *root = json_load_file("sim/identities.json", 0, NULL), *c;
	char *name = NULL;
	size_t i;

	json_array_foreach(json_object_get(root, "citizens"), i, c)
	{
		const char *v = json_string_value(json_object_get(c, "national_id"));

		if (v != NULL && strcmp(v, id_num) == 0 &&
		    json_string_value(json_object_get(c, "name")) != NULL)
			name = strdup(json_string_value(json_object_get(c, "name")));
	}
	json_decref(root);
	return name;
}

static void
test_flow_approve(void **state)
{
	struct conn_twfido *tf = sim_connector();
	struct twfido_ticket t;
	struct twfido_status st;
	const char *error = NULL;
	char *hashed = NULL, *name = NULL, path[128];
	json_t *j, *m;
	long status;
	bool listed = false;
	size_t i;

	issue(tf, ID_ENROLLED, 60, &t);
	assert_int_equal(strlen(t.transaction_id), 36);
	assert_true(strlen(t.sp_ticket_id) > 0);
	assert_string_equal(t.hashed_id_num, HASH_ID_ENROLLED);
	assert_non_null(strchr(t.sp_ticket, '.'));
	assert_true(t.expires_at > time(NULL) + 50);

	/* nobody has scanned yet */
	assert_int_equal(
	    conn_twfido_poll(tf, t.transaction_id, t.sp_ticket_id, &st, &hashed, &name, &error), 0);
	assert_int_equal(st.state, TWFIDO_PENDING);
	assert_string_equal(st.code, "SP-API-ATH-02-SPTKTID_TXNLOG_NF");
	assert_null(hashed);
	assert_null(name);

	/* the phone finds it */
	snprintf(path, sizeof(path), "/phone/mobilecert/pending?id_num=%s", ID_ENROLLED);
	j = sim_call("GET", path, NULL, &status);
	assert_int_equal(status, 200);
	json_array_foreach(j, i, m)
	{
		if (strcmp(json_string_value(json_object_get(m, "transaction_id")),
		           t.transaction_id) == 0) {
			listed = true;
			assert_string_equal(json_string_value(json_object_get(m, "sp_ticket")),
			                    t.sp_ticket);
			assert_string_equal(json_string_value(json_object_get(m, "hint")), HINT);
			assert_true(json_integer_value(json_object_get(m, "expires_in_ms")) >
			            50000);
		}
	}
	assert_true(listed);
	json_decref(j);

	/* scan the QR and approve */
	assert_int_equal(phone_answer("approve", t.sp_ticket, NULL), 200);
	assert_int_equal(phone_answer("approve", t.sp_ticket, NULL), 409);
	assert_int_equal(phone_answer("deny", t.transaction_id, NULL), 409);

	/* polled again at once: refused without asking */
	assert_int_equal(
	    conn_twfido_poll(tf, t.transaction_id, t.sp_ticket_id, &st, &hashed, NULL, &error),
	    ISSO_ERR_LIMIT);
	assert_int_equal(st.state, TWFIDO_PENDING);
	assert_null(hashed);
	sleep_ms(conn_twfido_poll_interval() + 100);

	assert_int_equal(
	    conn_twfido_poll(tf, t.transaction_id, t.sp_ticket_id, &st, &hashed, &name, &error), 0);
	assert_int_equal(st.state, TWFIDO_OK);
	assert_string_equal(st.code, "0");
	assert_non_null(hashed);
	assert_true(conn_twfido_same_person(t.hashed_id_num, hashed));
	assert_true(conn_twfido_id_matches(hashed, ID_ENROLLED));
	/* the certificate the result carries, as sent: the holder's name is
	 * its subject CN (the method checks it with the card PKI code) */
	{
		char *want = identity_name(ID_ENROLLED), *cn;

		assert_non_null(name);
		cn = cert_cn(name);
		assert_non_null(cn);
		assert_string_equal(cn, want);
		free(cn);
		free(want);
	}

	/* no longer pending for the phone */
	j = sim_call("GET", path, NULL, &status);
	json_array_foreach(j, i, m)
	{
		assert_string_not_equal(json_string_value(json_object_get(m, "transaction_id")),
		                        t.transaction_id);
	}
	json_decref(j);

	free(hashed);
	free(name);
	conn_twfido_ticket_clear(&t);
	assert_null(t.sp_ticket);
	conn_twfido_free(tf);
}

static void
test_flow_deny(void **state)
{
	struct conn_twfido *tf = sim_connector();
	struct twfido_ticket t;
	struct twfido_status st;
	char *hashed = NULL;

	issue(tf, ID_ENROLLED_2, 60, &t);
	{
		const char *args[] = {"phone", "mobilecert", "deny", t.transaction_id,
		                      "--sim", sim_base,     NULL};

		assert_int_equal(run_sim(args, 5000), 0);
		/* answered already */
		assert_int_equal(run_sim(args, 5000), 1);
	}
	assert_int_equal(
	    conn_twfido_poll(tf, t.transaction_id, t.sp_ticket_id, &st, &hashed, NULL, NULL), 0);
	assert_int_equal(st.state, TWFIDO_DENIED);
	assert_string_equal(st.code, "SP-API-ATH-02-APP_USER_CANCEL");
	assert_null(hashed);
	conn_twfido_ticket_clear(&t);
	conn_twfido_free(tf);
}

static void
test_not_enrolled(void **state)
{
	const char *ids[] = {ID_NOT_ENROLLED, ID_NOT_IN_FILE};
	struct conn_twfido *tf = sim_connector();

	for (size_t i = 0; i < 2; i++) {
		struct twfido_ticket t;
		struct twfido_status st;
		const char *error = NULL;

		assert_int_equal(conn_twfido_get_ticket(tf, ids[i], HINT, 60, &t, &st, &error), 0);
		assert_int_equal(st.state, TWFIDO_NOT_ENROLLED);
		assert_string_equal(st.code, "SP-API-ATH-01-IDNUM_USERPROF_NF");
		assert_null(t.sp_ticket);
	}
	conn_twfido_free(tf);
}

static void
test_flow_expired(void **state)
{
	struct conn_twfido *tf = sim_connector();
	struct twfido_ticket t;
	struct twfido_status st;
	const char *error = NULL;
	char *hashed = NULL;

	/* below 30 s only when allowed, for the simulator */
	assert_int_equal(conn_twfido_get_ticket(tf, ID_ENROLLED, HINT, 1, &t, &st, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(st.state, TWFIDO_ERROR);
	conn_twfido_set_min_time_limit(tf, 1);
	issue(tf, ID_ENROLLED, 1, &t);
	sleep_ms(1300);
	assert_int_equal(
	    conn_twfido_poll(tf, t.transaction_id, t.sp_ticket_id, &st, &hashed, NULL, &error), 0);
	assert_int_equal(st.state, TWFIDO_EXPIRED);
	assert_string_equal(st.code, "SP-API-ATH-02-SPTKT_OVD");
	assert_null(hashed);
	/* too late for the phone too */
	assert_int_equal(phone_answer("approve", t.sp_ticket, NULL), 410);
	conn_twfido_ticket_clear(&t);
	conn_twfido_free(tf);
}

/* Another person's phone approves: the result says so. */
static void
test_approved_by_someone_else(void **state)
{
	struct conn_twfido *tf = sim_connector();
	struct twfido_ticket t;
	struct twfido_status st;
	char *hashed = NULL;

	issue(tf, ID_ENROLLED, 60, &t);
	assert_int_equal(phone_answer("approve", t.transaction_id, ID_NOT_ENROLLED), 403);
	assert_int_equal(phone_answer("approve", t.transaction_id, "A12345678X"), 400);
	assert_int_equal(phone_answer("approve", t.transaction_id, ID_ENROLLED_2), 200);
	assert_int_equal(
	    conn_twfido_poll(tf, t.transaction_id, t.sp_ticket_id, &st, &hashed, NULL, NULL), 0);
	assert_int_equal(st.state, TWFIDO_OK);
	assert_false(conn_twfido_same_person(t.hashed_id_num, hashed));
	assert_false(conn_twfido_id_matches(hashed, ID_ENROLLED));
	assert_true(conn_twfido_id_matches(hashed, ID_ENROLLED_2));
	free(hashed);
	conn_twfido_ticket_clear(&t);
	conn_twfido_free(tf);
}

static void
test_cli_phone(void **state)
{
	struct conn_twfido *tf = sim_connector();
	struct twfido_ticket t;
	char tampered[8192];

	{
		/* E222223335 never has a ticket in these tests */
		const char *args[] = {"phone", "mobilecert", "pending", "E222223335",
		                      "--sim", sim_base,     NULL};

		assert_int_equal(run_sim(args, 5000), 1);
	}
	issue(tf, "E222223335", 60, &t);
	{
		const char *args[] = {"phone", "mobilecert", "pending", "e222223335",
		                      "--sim", sim_base,     NULL};

		assert_int_equal(run_sim(args, 5000), 0);
	}
	snprintf(tampered, sizeof(tampered), "%sx", t.sp_ticket);
	{
		/* a ticket whose digest part was altered is not the one issued */
		const char *args[] = {"phone", "mobilecert", "approve", tampered,
		                      "--sim", sim_base,     NULL};

		assert_int_equal(run_sim(args, 5000), 1);
	}
	{
		const char *args[] = {"phone", "mobilecert", "approve", t.sp_ticket,
		                      "--sim", sim_base,     NULL};

		assert_int_equal(run_sim(args, 5000), 0);
		assert_int_equal(run_sim(args, 5000), 1);
	}
	{
		const char *args[] = {"phone", "mobilecert", "approve", "no-such-transaction",
		                      "--sim", sim_base,     NULL};

		assert_int_equal(run_sim(args, 5000), 1);
	}
	{
		const char *bad[][7] = {
		    {"phone", "mobilecert", "pending", "A12345678", "--sim", sim_base, NULL},
		    {"phone", "mobilecert", "approve", "bad ticket!", "--sim", sim_base, NULL},
		    {"phone", "mobilecert", "frobnicate", "x", "--sim", sim_base, NULL},
		    {"phone", "mobilecert", "approve", NULL},
		    {"phone", "mobilecert", "pending", ID_ENROLLED, "--sim", "http://192.0.2.1:1",
		     NULL},
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (run_sim(bad[i], 5000) != 2)
				fail_msg("case %zu", i);
		}
	}
	conn_twfido_ticket_clear(&t);
	conn_twfido_free(tf);
}

/* ---- push (ATH-03) and the app link (APP-API-01) ---- */

#define ID_NO_PUSH "A224680138" /* enrolled, mobile_cert_push: false */

static void
issue_mode(struct conn_twfido *tf, enum twfido_mode mode, const char *id, struct twfido_ticket *t)
{
	struct twfido_status st;
	const char *error = NULL;
	int ret = conn_twfido_request(tf, mode, id, HINT, 60, t, &st, &error);

	if (ret != 0)
		fail_msg("request: %d %s (%s)", ret, error != NULL ? error : "", st.code);
	assert_int_equal(st.state, TWFIDO_PENDING);
	assert_string_equal(st.code, "0");
	assert_non_null(t->sp_ticket);
}

/* The op_mode isso-sim lists for a transaction on the phone. */
static char *
pending_mode(const char *id, const char *txn)
{
	char path[128], *mode = NULL;
	json_t *j, *m;
	long status;
	size_t i;

	snprintf(path, sizeof(path), "/phone/mobilecert/pending?id_num=%s", id);
	j = sim_call("GET", path, NULL, &status);
	assert_int_equal(status, 200);
	json_array_foreach(j, i, m)
	{
		if (strcmp(json_string_value(json_object_get(m, "transaction_id")), txn) == 0)
			mode = strdup(json_string_value(json_object_get(m, "op_mode")));
	}
	json_decref(j);
	return mode;
}

static void
test_push_flow(void **state)
{
	struct conn_twfido *tf = sim_connector();
	struct twfido_ticket t, older;
	struct twfido_status st;
	char *hashed = NULL, *mode;

	/* two pushes: approving "by ID" answers the newest */
	issue_mode(tf, TWFIDO_MODE_PUSH, "E222223335", &older);
	issue_mode(tf, TWFIDO_MODE_PUSH, "E222223335", &t);
	assert_true(strlen(t.sp_ticket_id) > 0);
	mode = pending_mode("E222223335", t.transaction_id);
	assert_non_null(mode);
	assert_string_equal(mode, "PUSH");
	free(mode);
	{
		const char *args[] = {"phone", "mobilecert", "approve", "e222223335",
		                      "--sim", sim_base,     NULL};

		assert_int_equal(run_sim(args, 5000), 0);
	}
	assert_int_equal(
	    conn_twfido_poll(tf, t.transaction_id, t.sp_ticket_id, &st, &hashed, NULL, NULL), 0);
	assert_int_equal(st.state, TWFIDO_OK);
	assert_true(conn_twfido_same_person(t.hashed_id_num, hashed));
	free(hashed);
	hashed = NULL;
	/* the older one is still waiting; deny it by ID, then none is left */
	assert_int_equal(conn_twfido_poll(tf, older.transaction_id, older.sp_ticket_id, &st,
	                                  &hashed, NULL, NULL),
	                 0);
	assert_int_equal(st.state, TWFIDO_PENDING);
	{
		const char *args[] = {"phone", "mobilecert", "deny", "E222223335",
		                      "--sim", sim_base,     NULL};

		assert_int_equal(run_sim(args, 5000), 0);
		assert_int_equal(run_sim(args, 5000), 1);
	}
	sleep_ms(conn_twfido_poll_interval() + 100);
	assert_int_equal(conn_twfido_poll(tf, older.transaction_id, older.sp_ticket_id, &st,
	                                  &hashed, NULL, NULL),
	                 0);
	assert_int_equal(st.state, TWFIDO_DENIED);
	assert_null(hashed);
	{
		/* by ID answers pushes only, and --as goes with a ticket */
		const char *args[] = {"phone",     "mobilecert", "approve", ID_ENROLLED_2, "--as",
		                      ID_ENROLLED, "--sim",      sim_base,  NULL};

		assert_int_equal(run_sim(args, 5000), 2);
	}
	conn_twfido_ticket_clear(&t);
	conn_twfido_ticket_clear(&older);
	conn_twfido_free(tf);
}

static void
test_push_refused(void **state)
{
	struct conn_twfido *tf = sim_connector();
	struct twfido_ticket t;
	struct twfido_status st;
	const char *error = NULL;

	assert_int_equal(
	    conn_twfido_request(tf, TWFIDO_MODE_PUSH, ID_NO_PUSH, HINT, 60, &t, &st, &error), 0);
	assert_int_equal(st.state, TWFIDO_UNREACHABLE);
	assert_string_equal(st.code, "SP-API-ATH-03-PS_FCM_NOT_FOUND");
	assert_null(t.sp_ticket);
	/* the same ID still gets a QR code */
	issue_mode(tf, TWFIDO_MODE_ISCAN, ID_NO_PUSH, &t);
	conn_twfido_ticket_clear(&t);
	assert_int_equal(
	    conn_twfido_request(tf, TWFIDO_MODE_PUSH, ID_NOT_ENROLLED, HINT, 60, &t, &st, &error),
	    0);
	assert_int_equal(st.state, TWFIDO_NOT_ENROLLED);
	assert_string_equal(st.code, "SP-API-ATH-03-IDNUM_USERPROF_NF");
	assert_int_equal(
	    conn_twfido_request(tf, (enum twfido_mode)7, ID_ENROLLED, HINT, 60, &t, &st, &error),
	    ISSO_ERR_INVALID);
	conn_twfido_free(tf);
}

/* Percent-encodes everything but unreserved characters. */
static void
pct(const char *in, char *out, size_t max)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p != '\0' && o + 4 < max; p++) {
		if ((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= 'a' && *p <= 'z') || *p == '-' || *p == '_' || *p == '.') {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
}

static json_t *
open_link(const char *link, const char *answer, long *status_r)
{
	char enc[16384], path[17000];

	pct(link, enc, sizeof(enc));
	snprintf(path, sizeof(path), "/phone/mobilecert/open-link?link=%s%s%s", enc,
	         answer != NULL ? "&answer=" : "", answer != NULL ? answer : "");
	return sim_call("POST", path, NULL, status_r);
}

#define RTN_URL "https://isso.example/login/moica-mobile/return?t=abc_DEF-123"

static void
test_app_link(void **state)
{
	struct conn_twfido *tf = sim_connector();
	struct twfido_ticket t, qr;
	struct twfido_status st;
	enum twfido_mode mode;
	char *link, *ticket, *url, *val, *hashed = NULL, *m;
	json_t *j;
	long status;

	issue_mode(tf, TWFIDO_MODE_MWEB2APP, ID_ENROLLED, &t);
	m = pending_mode(ID_ENROLLED, t.transaction_id);
	assert_string_equal(m, "MWEB2APP");
	free(m);
	link = conn_twfido_app_link(TWFIDO_MODE_MWEB2APP, t.sp_ticket, RTN_URL, "v+1/=");
	assert_non_null(link);
	assert_true(strncmp(link, "mobilemoica://moica.moi.gov.tw/w2a/verifySign?sp_ticket=", 56) ==
	            0);
	assert_null(strchr(link, ' '));
	assert_int_equal(twfido_app_link_parse(link, &mode, &ticket, &url, &val), 0);
	assert_int_equal(mode, TWFIDO_MODE_MWEB2APP);
	assert_string_equal(ticket, t.sp_ticket);
	assert_string_equal(url, RTN_URL);
	assert_string_equal(val, "v+1/=");
	free(ticket);
	free(url);
	free(val);

	/* the app refuses a link of the other kind for this ticket */
	{
		char *a2a = conn_twfido_app_link(TWFIDO_MODE_APP2APP, t.sp_ticket, RTN_URL, "");

		assert_non_null(strstr(a2a, "/a2a/verifySign?"));
		j = open_link(a2a, NULL, &status);
		assert_int_equal(status, 400);
		assert_string_equal(json_string_value(json_object_get(j, "error")), "wrong_mode");
		json_decref(j);
		free(a2a);
	}
	/* and a QR ticket opened as a link */
	issue_mode(tf, TWFIDO_MODE_ISCAN, ID_ENROLLED, &qr);
	{
		char *l = conn_twfido_app_link(TWFIDO_MODE_MWEB2APP, qr.sp_ticket, RTN_URL, "");

		j = open_link(l, NULL, &status);
		assert_int_equal(status, 400);
		json_decref(j);
		free(l);
	}
	j = open_link("mobilemoica://evil.example/w2a/verifySign?sp_ticket=a.b", NULL, &status);
	assert_int_equal(status, 400);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "invalid_link");
	json_decref(j);
	j = open_link(link, "maybe", &status);
	assert_int_equal(status, 400);
	json_decref(j);

	/* approved in the app: it says where the browser goes back to */
	j = open_link(link, NULL, &status);
	assert_int_equal(status, 200);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "approved");
	assert_string_equal(json_string_value(json_object_get(j, "return_url")), RTN_URL);
	assert_string_equal(json_string_value(json_object_get(j, "transaction_id")),
	                    t.transaction_id);
	json_decref(j);
	{
		const char *args[] = {"phone", "mobilecert", "open-link", link,
		                      "--sim", sim_base,     NULL};

		/* answered already */
		assert_int_equal(run_sim(args, 5000), 1);
	}
	assert_int_equal(
	    conn_twfido_poll(tf, t.transaction_id, t.sp_ticket_id, &st, &hashed, NULL, NULL), 0);
	assert_int_equal(st.state, TWFIDO_OK);
	assert_true(conn_twfido_same_person(t.hashed_id_num, hashed));
	free(hashed);
	free(link);
	conn_twfido_ticket_clear(&t);

	/* denied through the CLI */
	issue_mode(tf, TWFIDO_MODE_MWEB2APP, ID_ENROLLED_2, &t);
	link = conn_twfido_app_link(TWFIDO_MODE_MWEB2APP, t.sp_ticket, RTN_URL, "");
	{
		const char *args[] = {"phone",  "mobilecert", "open-link", link,
		                      "--deny", "--sim",      sim_base,    NULL};

		assert_int_equal(run_sim(args, 5000), 0);
	}
	assert_int_equal(
	    conn_twfido_poll(tf, t.transaction_id, t.sp_ticket_id, &st, &hashed, NULL, NULL), 0);
	assert_int_equal(st.state, TWFIDO_DENIED);
	free(link);
	conn_twfido_ticket_clear(&t);
	conn_twfido_ticket_clear(&qr);
	conn_twfido_free(tf);
}

static void
test_app_link_refusals(void **state)
{
	static const char *const bad_urls[] = {
	    "javascript:alert(1)", "ftp://x/", "https://a b/",   "https://a/\"x",
	    "https://a/<",         "",         "https://a/\x01",
	};
	enum twfido_mode mode;
	char *a, *b, *c, *d, big[TWFIDO_RTN_URL_MAX + 16];

	assert_null(conn_twfido_app_link(TWFIDO_MODE_ISCAN, "a.b", RTN_URL, ""));
	assert_null(conn_twfido_app_link(TWFIDO_MODE_PUSH, "a.b", RTN_URL, ""));
	assert_null(conn_twfido_app_link(TWFIDO_MODE_MWEB2APP, "a b", RTN_URL, ""));
	assert_null(conn_twfido_app_link(TWFIDO_MODE_MWEB2APP, NULL, RTN_URL, ""));
	assert_null(conn_twfido_app_link(TWFIDO_MODE_MWEB2APP, "a.b", RTN_URL, "x\ny"));
	for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
		if (conn_twfido_app_link(TWFIDO_MODE_MWEB2APP, "a.b", bad_urls[i], "") != NULL)
			fail_msg("url %zu", i);
	}
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "https://", 8);
	big[sizeof(big) - 1] = '\0';
	assert_null(conn_twfido_app_link(TWFIDO_MODE_MWEB2APP, "a.b", big, ""));
	/* a ticket with '+', '/' and '=' survives the query */
	a = conn_twfido_app_link(TWFIDO_MODE_APP2APP, "a+b/c=.d", RTN_URL, "");
	assert_non_null(a);
	assert_null(strchr(strchr(a, '?'), '+'));
	assert_int_equal(twfido_app_link_parse(a, &mode, &b, &c, &d), 0);
	assert_int_equal(mode, TWFIDO_MODE_APP2APP);
	assert_string_equal(b, "a+b/c=.d");
	free(a);
	free(b);
	free(c);
	free(d);

	assert_int_equal(twfido_app_link_parse("https://x/?sp_ticket=a.b", &mode, &a, &b, &c),
	                 ISSO_ERR_INVALID);
	assert_null(a);
	assert_int_equal(twfido_app_link_parse("mobilemoica://moica.moi.gov.tw/w2a/verifySign?"
	                                       "sp_ticket=a.b&rtn_url=!!",
	                                       &mode, &a, &b, &c),
	                 ISSO_ERR_INVALID);
	assert_int_equal(twfido_app_link_parse("mobilemoica://moica.moi.gov.tw/w2a/verifySign?"
	                                       "sp_ticket=a.b&rtn_url=amF2YXNjcmlwdDp4",
	                                       &mode, &a, &b, &c),
	                 ISSO_ERR_INVALID); /* javascript:x */
	assert_int_equal(twfido_app_link_parse("mobilemoica://moica.moi.gov.tw/w2a/verifySign?"
	                                       "sp_ticket=a.b%2&rtn_url=",
	                                       &mode, &a, &b, &c),
	                 ISSO_ERR_INVALID);
	assert_int_equal(twfido_app_link_parse(NULL, &mode, &a, &b, &c), ISSO_ERR_INVALID);
}

/* What the simulator refuses, spoken to directly. */
static void
test_sim_refusals(void **state)
{
	static const char *txn = "0b7c7a8e-0000-4000-8000-000000000001";
	char checksum[TWFIDO_CHECKSUM_LEN + 1], body[4096];
	json_t *j;
	long status;

	j = sim_call("POST", "/moise/sp/getSpTicket", "not json", &status);
	assert_int_equal(status, 400);
	json_decref(j);
	j = sim_call("GET", "/moise/sp/getSpTicket", NULL, &status);
	assert_int_equal(status, 405);
	json_decref(j);

	struct {
		const char *sp_id, *key, *id, *op_code, *time_limit, *want;
	} cases[] = {
	    {"WRONG", SIM_KEY, ID_ENROLLED, "ATH", "60", "SP-API-ATH-01-SPSVCID_NF"},
	    {SIM_SP_ID, VEC_KEY_HEX, ID_ENROLLED, "ATH", "60", "SP-API-ATH-01-INV_SP_CHECKSUM"},
	    {SIM_SP_ID, SIM_KEY, "A12345678", "ATH", "60", "SP-API-ATH-01-PM_IDN_FT_ERR"},
	    {SIM_SP_ID, SIM_KEY, ID_ENROLLED, "SIGN", "60", "SP-API-ATH-01-TGT_INV"},
	    {SIM_SP_ID, SIM_KEY, ID_ENROLLED, "ATH", "\"abc\"", "SP-API-ATH-01-SPTKT_TIME_FT_ERR"},
	    {SIM_SP_ID, SIM_KEY, ID_ENROLLED, "ATH", "601", "SP-API-ATH-01-SPTKT_TIME_ORV"},
	    {SIM_SP_ID, SIM_KEY, ID_ENROLLED, "ATH", "0", "SP-API-ATH-01-SPTKT_TIME_ORV"},
	    {SIM_SP_ID, SIM_KEY, ID_ENROLLED, "ATH", "\"60\"", "0"},
	    /* the same transaction_id again */
	    {SIM_SP_ID, SIM_KEY, ID_ENROLLED, "ATH", "60", "SP-API-ATH-01-TXNLOG_INS_ERR"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *fields[] = {
		    txn, cases[i].sp_id, cases[i].id, cases[i].op_code, "I-SCAN", "hi"};

		seal_fields(cases[i].key, fields, 6, checksum);
		snprintf(
		    body, sizeof(body),
		    "{\"transaction_id\":\"%s\",\"sp_service_id\":\"%s\",\"sp_checksum\":\"%s\","
		    "\"id_num\":\"%s\",\"op_code\":\"%s\",\"op_mode\":\"I-SCAN\",\"hint\":\"hi\","
		    "\"time_limit\":%s}",
		    txn, cases[i].sp_id, checksum, cases[i].id, cases[i].op_code,
		    cases[i].time_limit);
		j = sim_call("POST", "/moise/sp/getSpTicket", body, &status);
		assert_int_equal(status, 200);
		if (strcmp(json_string_value(json_object_get(j, "error_code")), cases[i].want) != 0)
			fail_msg("case %zu: %s", i,
			         json_string_value(json_object_get(j, "error_code")));
		json_decref(j);
	}

	/* a field missing */
	j = sim_call("POST", "/moise/sp/getSpTicket", "{\"transaction_id\":\"x\"}", &status);
	assert_string_equal(json_string_value(json_object_get(j, "error_code")),
	                    "SP-API-ATH-01-PM_INV_NF");
	json_decref(j);

	/* ATH-02 for a ticket id that was never issued */
	{
		const char *fields[] = {txn, SIM_SP_ID, "nope"};

		seal_fields(SIM_KEY, fields, 3, checksum);
		snprintf(
		    body, sizeof(body),
		    "{\"transaction_id\":\"%s\",\"sp_service_id\":\"%s\",\"sp_checksum\":\"%s\","
		    "\"sp_ticket_id\":\"nope\"}",
		    txn, SIM_SP_ID, checksum);
		j = sim_call("POST", "/moise/sp/getAthOrSignResult", body, &status);
		assert_string_equal(json_string_value(json_object_get(j, "error_code")),
		                    "SP-API-ATH-02-SPTKTID_SPTKT_NF");
		json_decref(j);
		checksum[10] = checksum[10] == '0' ? '1' : '0';
		snprintf(
		    body, sizeof(body),
		    "{\"transaction_id\":\"%s\",\"sp_service_id\":\"%s\",\"sp_checksum\":\"%s\","
		    "\"sp_ticket_id\":\"nope\"}",
		    txn, SIM_SP_ID, checksum);
		j = sim_call("POST", "/moise/sp/getAthOrSignResult", body, &status);
		assert_string_equal(json_string_value(json_object_get(j, "error_code")),
		                    "SP-API-ATH-02-INV_SP_CHECKSUM");
		json_decref(j);
	}

	/* the phone API */
	j = sim_call("GET", "/phone/mobilecert/pending?id_num=A12345678", NULL, &status);
	assert_int_equal(status, 400);
	json_decref(j);
	assert_int_equal(phone_answer("approve", "bad%20ticket", NULL), 400);
	assert_int_equal(phone_answer("approve", "0b7c7a8e-0000-4000-8000-00000000ffff", NULL),
	                 404);

	/* the connector with a wrong key or SP id: the service's code, as I/O */
	{
		struct conn_twfido *tf = conn_twfido_new(sim_base, SIM_SP_ID, VEC_KEY_HEX, 3000);
		struct conn_twfido *tf2 = conn_twfido_new(sim_base, "OTHER-SP", SIM_KEY, 3000);
		struct twfido_ticket t;
		struct twfido_status st;
		const char *error = NULL;

		assert_int_equal(conn_twfido_get_ticket(tf, ID_ENROLLED, HINT, 60, &t, &st, &error),
		                 ISSO_ERR_IO);
		assert_int_equal(st.state, TWFIDO_ERROR);
		assert_string_equal(st.code, "SP-API-ATH-01-INV_SP_CHECKSUM");
		assert_non_null(error);
		assert_int_equal(
		    conn_twfido_get_ticket(tf2, ID_ENROLLED, HINT, 60, &t, &st, &error),
		    ISSO_ERR_IO);
		assert_string_equal(st.code, "SP-API-ATH-01-SPSVCID_NF");
		conn_twfido_free(tf);
		conn_twfido_free(tf2);
	}
}

static void
test_invalid_arguments(void **state)
{
	struct conn_twfido *tf = sim_connector();
	struct twfido_ticket t;
	struct twfido_status st;
	const char *error = NULL;
	char *hashed = NULL, long_hint[300];

	memset(long_hint, 'x', 257);
	long_hint[257] = '\0';
	assert_int_equal(conn_twfido_get_ticket(tf, "A123456788", HINT, 60, &t, &st, &error),
	                 ISSO_ERR_INVALID);
	assert_non_null(error);
	assert_int_equal(conn_twfido_get_ticket(tf, NULL, HINT, 60, &t, &st, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_twfido_get_ticket(tf, ID_ENROLLED, "tab\there", 60, &t, &st, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_twfido_get_ticket(tf, ID_ENROLLED, "bad \xff", 60, &t, &st, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_twfido_get_ticket(tf, ID_ENROLLED, long_hint, 60, &t, &st, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_twfido_get_ticket(tf, ID_ENROLLED, HINT, 29, &t, &st, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_twfido_get_ticket(tf, ID_ENROLLED, HINT, 601, &t, &st, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_twfido_get_ticket(tf, ID_ENROLLED, HINT, 60, NULL, &st, &error),
	                 ISSO_ERR_INVALID);
	assert_null(t.sp_ticket);
	/* 30 and 600 s, a 256-byte hint and none at all are fine */
	long_hint[256] = '\0';
	issue(tf, ID_ENROLLED, 30, &t);
	conn_twfido_ticket_clear(&t);
	assert_int_equal(conn_twfido_get_ticket(tf, ID_ENROLLED, long_hint, 600, &t, &st, &error),
	                 0);
	conn_twfido_ticket_clear(&t);
	assert_int_equal(conn_twfido_get_ticket(tf, ID_ENROLLED, NULL, 60, &t, &st, &error), 0);
	assert_int_equal(st.state, TWFIDO_PENDING);
	conn_twfido_ticket_clear(&t);

	assert_int_equal(conn_twfido_poll(tf, "", "x", &st, &hashed, NULL, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_twfido_poll(tf, "a b", "x", &st, &hashed, NULL, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_twfido_poll(tf, "abc", NULL, &st, &hashed, NULL, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(conn_twfido_poll(tf, "abc", "x", &st, NULL, NULL, &error),
	                 ISSO_ERR_INVALID);
	assert_int_equal(st.state, TWFIDO_ERROR);
	assert_int_equal(conn_twfido_poll(NULL, "abc", "x", &st, &hashed, NULL, &error),
	                 ISSO_ERR_INVALID);

	assert_null(conn_twfido_new(NULL, SIM_SP_ID, SIM_KEY, 1000));
	assert_null(conn_twfido_new("ftp://127.0.0.1", SIM_SP_ID, SIM_KEY, 1000));
	assert_null(conn_twfido_new(sim_base, "", SIM_KEY, 1000));
	assert_null(conn_twfido_new(sim_base, "has space", SIM_KEY, 1000));
	assert_null(conn_twfido_new(sim_base, SIM_SP_ID, "short", 1000));
	assert_null(conn_twfido_new("http://127.0.0.1/x?y=1", SIM_SP_ID, SIM_KEY, 1000));
	conn_twfido_free(NULL);
	conn_twfido_ticket_clear(NULL);
	conn_twfido_free(tf);
}

/* ---- peers that are not the simulator ---- */

static void
test_unreachable_is_io(void **state)
{
	int port, fd = loopback_socket(-1, &port);
	char url[64], *hashed = NULL;
	struct conn_twfido *tf;
	struct twfido_ticket t;
	struct twfido_status st;
	const char *error = NULL;

	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	tf = conn_twfido_new(url, SIM_SP_ID, SIM_KEY, 2000);
	assert_non_null(tf);
	assert_int_equal(conn_twfido_get_ticket(tf, ID_ENROLLED, HINT, 60, &t, &st, &error),
	                 ISSO_ERR_IO);
	assert_int_equal(st.state, TWFIDO_ERROR);
	assert_string_equal(st.code, "");
	assert_non_null(error);
	assert_int_equal(conn_twfido_poll(tf, "txn-unreachable", "tid", &st, &hashed, NULL, &error),
	                 ISSO_ERR_IO);
	assert_int_equal(st.state, TWFIDO_ERROR);
	conn_twfido_free(tf);
}

/* The connector remembers up to 8192 recent polls: a full map of fresh
 * ones refuses a new transaction rather than forget the rule, and frees
 * them once they are 4 s old. */
static void
test_poll_map_bound(void **state)
{
	int port, fd = loopback_socket(-1, &port);
	char url[64], txn[32], *hashed = NULL;
	struct conn_twfido *tf;
	struct twfido_status st;
	struct timespec t0;
	long fill_ms;

	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	tf = conn_twfido_new(url, SIM_SP_ID, SIM_KEY, 2000);
	assert_non_null(tf);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 8192; i++) {
		snprintf(txn, sizeof(txn), "fill-%d", i);
		assert_int_equal(conn_twfido_poll(tf, txn, "tid", &st, &hashed, NULL, NULL),
		                 ISSO_ERR_IO);
	}
	fill_ms = ms_since(&t0);
	/* (a very slow machine took longer than the interval: nothing to see) */
	if (fill_ms < 3000) {
		assert_int_equal(conn_twfido_poll(tf, "fill-0", "tid", &st, &hashed, NULL, NULL),
		                 ISSO_ERR_LIMIT);
		assert_int_equal(conn_twfido_poll(tf, "one-more", "tid", &st, &hashed, NULL, NULL),
		                 ISSO_ERR_LIMIT);
		assert_int_equal(st.state, TWFIDO_PENDING);
	}
	sleep_ms(4100);
	assert_int_equal(conn_twfido_poll(tf, "one-more", "tid", &st, &hashed, NULL, NULL),
	                 ISSO_ERR_IO);
	assert_int_equal(conn_twfido_poll(tf, "one-more", "tid", &st, &hashed, NULL, NULL),
	                 ISSO_ERR_LIMIT);
	assert_int_equal(conn_twfido_poll(tf, "fill-8191", "tid", &st, &hashed, NULL, NULL),
	                 ISSO_ERR_IO);
	conn_twfido_free(tf);
}

static void
test_silent_peer_times_out(void **state)
{
	int port, fd = loopback_socket(8, &port); /* the kernel accepts, nobody answers */
	char url[64], *hashed = NULL;
	struct conn_twfido *tf;
	struct twfido_ticket t;
	struct twfido_status st;
	struct timespec t0;
	long ms;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	tf = conn_twfido_new(url, SIM_SP_ID, SIM_KEY, 700);
	assert_non_null(tf);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(conn_twfido_get_ticket(tf, ID_ENROLLED, HINT, 60, &t, &st, NULL),
	                 ISSO_ERR_TIMEOUT);
	ms = ms_since(&t0);
	assert_true(ms >= 600);
	assert_true(ms < 2500);
	assert_int_equal(st.state, TWFIDO_ERROR);
	assert_int_equal(conn_twfido_poll(tf, "txn-silent", "tid", &st, &hashed, NULL, NULL),
	                 ISSO_ERR_TIMEOUT);
	conn_twfido_free(tf);
	close(fd);
}

/* A service that answers one request with what reply() makes of it, and
 * keeps the request for inspection. */
struct fake {
	int fd;
	char *(*reply)(const char *body, const void *arg);
	const void *arg;
	char request[16384];
	const char *body;
};

static void *
fake_thread(void *p)
{
	struct fake *f = p;
	int c = accept(f->fd, NULL, NULL);
	size_t got = 0, want = SIZE_MAX;
	const char *end = NULL;
	char *reply;

	if (c < 0)
		return NULL;
	f->body = "";
	while (got < want && got < sizeof(f->request) - 1) {
		ssize_t n = recv(c, f->request + got, sizeof(f->request) - 1 - got, 0);

		if (n <= 0)
			break;
		got += (size_t)n;
		f->request[got] = '\0';
		if (end == NULL && (end = strstr(f->request, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(f->request, "\r\nContent-Length:");

			want = (size_t)(end + 4 - f->request) +
			       (cl != NULL ? strtoul(cl + 17, NULL, 10) : 0);
			f->body = end + 4;
		}
	}
	reply = f->reply(f->body, f->arg);
	if (send(c, reply, strlen(reply), MSG_NOSIGNAL) < 0) {
		/* the client may hang up on an oversized reply */
	}
	free(reply);
	shutdown(c, SHUT_WR);
	close(c);
	return NULL;
}

#define HTTP_OK "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"

static char *
http_ok(const char *json)
{
	size_t len = strlen(HTTP_OK) + strlen(json) + 1;
	char *s = malloc(len);

	assert_non_null(s);
	snprintf(s, len, "%s%s", HTTP_OK, json);
	return s;
}

static char *
reply_canned(const char *body, const void *arg)
{
	return strdup(arg);
}

/* {"error_code": arg} */
static char *
reply_code(const char *body, const void *arg)
{
	json_t *o = json_pack("{s:s, s:s}", "error_code", (const char *)arg, "error_message", "m");
	char *text = json_dumps(o, 0), *s = http_ok(text);

	free(text);
	json_decref(o);
	return s;
}

enum result_kind {
	RESULT_GOOD,
	RESULT_SIGNED,
	RESULT_TAMPERED,
	RESULT_NO_CHECKSUM,
	RESULT_BAD_CERT
};

/* ATH-02 success for the request's transaction_id, sealed with the
 * simulator's key (or spoilt, by kind). */
static char *
reply_result(const char *body, const void *arg)
{
	enum result_kind kind = *(const enum result_kind *)arg;
	json_t *req = json_loads(body, 0, NULL), *o;
	const char *txn = json_string_value(json_object_get(req, "transaction_id"));
	const char *signed_response = kind == RESULT_SIGNED ? "c2lnbmVk" : "";
	char checksum[TWFIDO_CHECKSUM_LEN + 1], *text, *s;
	const char *fields[] = {txn != NULL ? txn : "", "0", HASH_ID_ENROLLED, signed_response};

	seal_fields(SIM_KEY, fields, 4, checksum);
	if (kind == RESULT_TAMPERED)
		checksum[100] = checksum[100] == '0' ? '1' : '0';
	o = json_pack("{s:s, s:s, s:{s:s}}", "error_code", "0", "error_message", "", "result",
	              "hashed_id_num", HASH_ID_ENROLLED);
	if (kind != RESULT_NO_CHECKSUM)
		json_object_set_new(json_object_get(o, "result"), "idp_checksum",
		                    json_string(checksum));
	if (kind == RESULT_SIGNED)
		json_object_set_new(json_object_get(o, "result"), "signed_response",
		                    json_string(signed_response));
	/* a cert that is no certificate: handed over as sent (the method's
	 * card PKI check refuses it) */
	if (kind == RESULT_BAD_CERT)
		json_object_set_new(json_object_get(o, "result"), "cert",
		                    json_string("bm90IGEgY2VydGlmaWNhdGU="));
	text = json_dumps(o, 0);
	s = http_ok(text);
	free(text);
	json_decref(o);
	json_decref(req);
	return s;
}

enum ticket_kind { TICKET_GOOD, TICKET_OTHER_TXN, TICKET_TAMPERED, TICKET_NOT_B64 };

/* ATH-01 success: a ticket for the request's transaction_id. */
static char *
reply_ticket(const char *body, const void *arg)
{
	enum ticket_kind kind = *(const enum ticket_kind *)arg;
	json_t *req = json_loads(body, 0, NULL), *payload, *o;
	const char *txn = json_string_value(json_object_get(req, "transaction_id"));
	char checksum[TWFIDO_CHECKSUM_LEN + 1], seg[2048], dig[64], ticket[4096];
	unsigned char digest[32];
	char *pj, *text, *s;

	payload = json_pack("{s:s, s:s, s:s}", "transaction_id",
	                    kind == TICKET_OTHER_TXN ? "another" : txn, "sp_ticket_id", "TID-1",
	                    "hashed_id_num", HASH_ID_ENROLLED);
	pj = json_dumps(payload, JSON_COMPACT);
	b64url_encode(pj, strlen(pj), seg);
	secret_sha256(seg, strlen(seg), digest);
	b64url_encode(digest, sizeof(digest), dig);
	snprintf(ticket, sizeof(ticket), "%s.%s", kind == TICKET_NOT_B64 ? "!!" : seg, dig);
	{
		const char *fields[] = {txn, "0", ticket};

		seal_fields(SIM_KEY, fields, 3, checksum);
	}
	if (kind == TICKET_TAMPERED)
		checksum[30] = checksum[30] == '0' ? '1' : '0';
	o = json_pack("{s:s, s:s, s:{s:s, s:s}}", "error_code", "0", "error_message", "", "result",
	              "sp_ticket", ticket, "idp_checksum", checksum);
	text = json_dumps(o, 0);
	s = http_ok(text);
	free(text);
	free(pj);
	json_decref(o);
	json_decref(payload);
	json_decref(req);
	return s;
}

static void
test_fake_service_poll(void **state)
{
	static const enum result_kind good = RESULT_GOOD, signed_ = RESULT_SIGNED,
	                              tampered = RESULT_TAMPERED, none = RESULT_NO_CHECKSUM,
	                              bad_cert = RESULT_BAD_CERT;
	static char big[70000];
	static const struct {
		char *(*reply)(const char *, const void *);
		const void *arg;
		int want_ret;
		enum twfido_state want_state;
		const char *want_code;
	} cases[] = {
	    {reply_code, "20002", 0, TWFIDO_PENDING, "SP-API-ATH-02-20002"},
	    {reply_code, "20003", 0, TWFIDO_PENDING, "SP-API-ATH-02-20003"},
	    {reply_code, "SP-API-ATH-02-SPTKTID_TXNLOG_NF", 0, TWFIDO_PENDING,
	     "SP-API-ATH-02-SPTKTID_TXNLOG_NF"},
	    {reply_code, "SPTKTID_TXNLOG_NF", 0, TWFIDO_PENDING, "SP-API-ATH-02-SPTKTID_TXNLOG_NF"},
	    {reply_code, "SP-API-ATH-02-SPTKT_OVD: 逾期", 0, TWFIDO_EXPIRED,
	     "SP-API-ATH-02-SPTKT_OVD"},
	    {reply_code, "APP_USER_CANCEL", 0, TWFIDO_DENIED, "SP-API-ATH-02-APP_USER_CANCEL"},
	    {reply_code, "SP-API-ATH-02-IDNUM_DEVPROF_NF", 0, TWFIDO_NOT_ENROLLED,
	     "SP-API-ATH-02-IDNUM_DEVPROF_NF"},
	    {reply_code, "SP-API-ATH-02-SPTKTID_SPTKT_RDM", ISSO_ERR_IO, TWFIDO_ERROR,
	     "SP-API-ATH-02-SPTKTID_SPTKT_RDM"},
	    {reply_code, "DB_CONN_ERR", ISSO_ERR_IO, TWFIDO_ERROR, "SP-API-ATH-02-DB_CONN_ERR"},
	    {reply_code, "bad code!", ISSO_ERR_IO, TWFIDO_ERROR, ""},
	    {reply_code, "", ISSO_ERR_IO, TWFIDO_ERROR, ""},
	    {reply_result, &good, 0, TWFIDO_OK, "0"},
	    {reply_result, &signed_, 0, TWFIDO_OK, "0"},
	    {reply_result, &bad_cert, 0, TWFIDO_OK, "0"},
	    {reply_result, &tampered, ISSO_ERR_CRYPTO, TWFIDO_ERROR, "0"},
	    {reply_result, &none, ISSO_ERR_IO, TWFIDO_ERROR, "0"},
	    {reply_canned, HTTP_OK "<html>busy</html>", ISSO_ERR_IO, TWFIDO_ERROR, ""},
	    {reply_canned, HTTP_OK "[\"error_code\"]", ISSO_ERR_IO, TWFIDO_ERROR, ""},
	    {reply_canned, HTTP_OK "{\"error_message\":\"x\"}", ISSO_ERR_IO, TWFIDO_ERROR, ""},
	    {reply_canned, HTTP_OK "{\"error_code\":0}", ISSO_ERR_IO, TWFIDO_ERROR, ""},
	    {reply_canned, HTTP_OK "{\"error_code\":\"0\"}", ISSO_ERR_IO, TWFIDO_ERROR, "0"},
	    {reply_canned,
	     "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n"
	     "{\"error_code\":\"20002\"}",
	     ISSO_ERR_IO, TWFIDO_ERROR, ""},
	    {reply_canned, "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\n\r\n",
	     ISSO_ERR_IO, TWFIDO_ERROR, ""},
	    {reply_canned, big, ISSO_ERR_IO, TWFIDO_ERROR, ""},
	};
	struct fake f;
	char url[64];
	int port;

	/* a reply over 64 KiB that would otherwise be a pending answer */
	snprintf(big, sizeof(big), "%s{\"error_code\":\"20002\",\"error_message\":\"", HTTP_OK);
	memset(big + strlen(big), 'a', sizeof(big) - 3 - strlen(big));
	memcpy(big + sizeof(big) - 3, "\"}", 3);

	f.fd = loopback_socket(8, &port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conn_twfido *tf = conn_twfido_new(url, SIM_SP_ID, SIM_KEY, 3000);
		struct twfido_status st;
		const char *error = NULL;
		char *hashed = NULL, *name = NULL, txn[48];
		json_t *req;
		pthread_t th;
		int ret;

		snprintf(txn, sizeof(txn), "fake-%zu", i);
		f.reply = cases[i].reply;
		f.arg = cases[i].arg;
		assert_int_equal(pthread_create(&th, NULL, fake_thread, &f), 0);
		ret = conn_twfido_poll(tf, txn, "TID-1", &st, &hashed, &name, &error);
		pthread_join(th, NULL);
		if (ret != cases[i].want_ret || st.state != cases[i].want_state ||
		    strcmp(st.code, cases[i].want_code) != 0)
			fail_msg("case %zu: got %d state %d code '%s' (%s)", i, ret, st.state,
			         st.code, error != NULL ? error : "");
		if (st.state == TWFIDO_OK)
			assert_string_equal(hashed, HASH_ID_ENROLLED);
		else
			assert_null(hashed);
		assert_true(ret == 0 || error != NULL);
		if (cases[i].reply == reply_result && cases[i].arg == &bad_cert)
			assert_string_equal(name, "bm90IGEgY2VydGlmaWNhdGU=");
		else
			assert_null(name);
		free(name);
		free(hashed);

		/* what went over the wire */
		assert_non_null(
		    strstr(f.request, "POST /moise/sp/getAthOrSignResult HTTP/1.1\r\n"));
		assert_non_null(strcasestr(f.request, "\r\nContent-Type: application/json"));
		req = json_loads(f.body, 0, NULL);
		assert_non_null(req);
		assert_int_equal(json_object_size(req), 4);
		assert_string_equal(json_string_value(json_object_get(req, "transaction_id")), txn);
		assert_string_equal(json_string_value(json_object_get(req, "sp_service_id")),
		                    SIM_SP_ID);
		assert_string_equal(json_string_value(json_object_get(req, "sp_ticket_id")),
		                    "TID-1");
		{
			unsigned char key[TWFIDO_KEY_LEN];
			char payload[256];

			key_bytes(SIM_KEY, key);
			snprintf(payload, sizeof(payload), "%s%s%s", txn, SIM_SP_ID, "TID-1");
			assert_true(twfido_checksum_verify(
			    key, payload, strlen(payload),
			    json_string_value(json_object_get(req, "sp_checksum"))));
		}
		json_decref(req);
		conn_twfido_free(tf);
	}
	close(f.fd);
}

static void
test_fake_service_ticket(void **state)
{
	static const enum ticket_kind good = TICKET_GOOD, other = TICKET_OTHER_TXN,
	                              tampered = TICKET_TAMPERED, not_b64 = TICKET_NOT_B64;
	static const struct {
		char *(*reply)(const char *, const void *);
		const void *arg;
		int want_ret;
		enum twfido_state want_state;
		const char *want_code;
	} cases[] = {
	    {reply_ticket, &good, 0, TWFIDO_PENDING, "0"},
	    {reply_ticket, &other, ISSO_ERR_IO, TWFIDO_ERROR, "0"},
	    {reply_ticket, &tampered, ISSO_ERR_CRYPTO, TWFIDO_ERROR, "0"},
	    {reply_ticket, &not_b64, ISSO_ERR_IO, TWFIDO_ERROR, "0"},
	    {reply_code, "SP-API-ATH-01-IDNUM_DEVPROF_NF", 0, TWFIDO_NOT_ENROLLED,
	     "SP-API-ATH-01-IDNUM_DEVPROF_NF"},
	    {reply_code, "SP-API-ATH-01-SPSVCID_NF", ISSO_ERR_IO, TWFIDO_ERROR,
	     "SP-API-ATH-01-SPSVCID_NF"},
	    {reply_code, "20002", ISSO_ERR_IO, TWFIDO_ERROR, "SP-API-ATH-01-20002"},
	    {reply_canned, HTTP_OK "{\"error_code\":\"0\",\"result\":{\"sp_ticket\":\"a.b\"}}",
	     ISSO_ERR_IO, TWFIDO_ERROR, "0"},
	};
	struct fake f;
	char url[64];
	int port;

	f.fd = loopback_socket(8, &port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conn_twfido *tf = conn_twfido_new(url, SIM_SP_ID, SIM_KEY, 3000);
		struct twfido_ticket t;
		struct twfido_status st;
		const char *error = NULL;
		json_t *req;
		pthread_t th;
		int ret;

		f.reply = cases[i].reply;
		f.arg = cases[i].arg;
		assert_int_equal(pthread_create(&th, NULL, fake_thread, &f), 0);
		ret = conn_twfido_get_ticket(tf, " a123456789", "你好", 90, &t, &st, &error);
		pthread_join(th, NULL);
		if (ret != cases[i].want_ret || st.state != cases[i].want_state ||
		    strcmp(st.code, cases[i].want_code) != 0)
			fail_msg("case %zu: got %d state %d code '%s' (%s)", i, ret, st.state,
			         st.code, error != NULL ? error : "");
		if (st.state == TWFIDO_PENDING) {
			assert_string_equal(t.sp_ticket_id, "TID-1");
			assert_string_equal(t.hashed_id_num, HASH_ID_ENROLLED);
			assert_non_null(t.sp_ticket);
		} else {
			assert_null(t.sp_ticket);
		}
		conn_twfido_ticket_clear(&t);

		assert_non_null(strstr(f.request, "POST /moise/sp/getSpTicket HTTP/1.1\r\n"));
		req = json_loads(f.body, 0, NULL);
		assert_non_null(req);
		assert_string_equal(json_string_value(json_object_get(req, "id_num")), ID_ENROLLED);
		assert_string_equal(json_string_value(json_object_get(req, "op_code")), "ATH");
		assert_string_equal(json_string_value(json_object_get(req, "op_mode")), "I-SCAN");
		assert_string_equal(json_string_value(json_object_get(req, "hint")), "你好");
		assert_int_equal(json_integer_value(json_object_get(req, "time_limit")), 90);
		assert_null(json_object_get(req, "sign_info"));
		{
			unsigned char key[TWFIDO_KEY_LEN];
			char payload[256];

			key_bytes(SIM_KEY, key);
			snprintf(payload, sizeof(payload), "%s%s%s%s%s%s",
			         json_string_value(json_object_get(req, "transaction_id")),
			         SIM_SP_ID, ID_ENROLLED, "ATH", "I-SCAN", "你好");
			assert_true(twfido_checksum_verify(
			    key, payload, strlen(payload),
			    json_string_value(json_object_get(req, "sp_checksum"))));
		}
		json_decref(req);
		conn_twfido_free(tf);
	}
	close(f.fd);
}

/* ATH-03 on the wire: its path, no op_mode, its checksum's field order,
 * and the push service's codes. */
static void
test_fake_service_push(void **state)
{
	static const enum ticket_kind good = TICKET_GOOD;
	static const struct {
		char *(*reply)(const char *, const void *);
		const void *arg;
		int want_ret;
		enum twfido_state want_state;
		const char *want_code;
	} cases[] = {
	    {reply_ticket, &good, 0, TWFIDO_PENDING, "0"},
	    {reply_code, "SP-API-ATH-03-PS_FCM_UNAVAILABLE", 0, TWFIDO_UNREACHABLE,
	     "SP-API-ATH-03-PS_FCM_UNAVAILABLE"},
	    {reply_code, "PS_CONNECT_500", 0, TWFIDO_UNREACHABLE, "SP-API-ATH-03-PS_CONNECT_500"},
	    {reply_code, "IDNUM_DEVPROF_NF", 0, TWFIDO_NOT_ENROLLED,
	     "SP-API-ATH-03-IDNUM_DEVPROF_NF"},
	    {reply_code, "DEV_DESC_MISMATCH", ISSO_ERR_IO, TWFIDO_ERROR,
	     "SP-API-ATH-03-DEV_DESC_MISMATCH"},
	};
	struct fake f;
	char url[64];
	int port;

	f.fd = loopback_socket(8, &port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conn_twfido *tf = conn_twfido_new(url, SIM_SP_ID, SIM_KEY, 3000);
		struct twfido_ticket t;
		struct twfido_status st;
		const char *error = NULL;
		json_t *req;
		pthread_t th;
		int ret;

		f.reply = cases[i].reply;
		f.arg = cases[i].arg;
		assert_int_equal(pthread_create(&th, NULL, fake_thread, &f), 0);
		ret = conn_twfido_request(tf, TWFIDO_MODE_PUSH, ID_ENROLLED, "你好", 90, &t, &st,
		                          &error);
		pthread_join(th, NULL);
		if (ret != cases[i].want_ret || st.state != cases[i].want_state ||
		    strcmp(st.code, cases[i].want_code) != 0)
			fail_msg("case %zu: got %d state %d code '%s' (%s)", i, ret, st.state,
			         st.code, error != NULL ? error : "");
		if (st.state == TWFIDO_PENDING)
			assert_string_equal(t.sp_ticket_id, "TID-1");
		else
			assert_null(t.sp_ticket);
		conn_twfido_ticket_clear(&t);
		assert_non_null(
		    strstr(f.request, "POST /moise/sp/requestAthOrSignPush HTTP/1.1\r\n"));
		req = json_loads(f.body, 0, NULL);
		assert_non_null(req);
		assert_null(json_object_get(req, "op_mode"));
		assert_null(json_object_get(req, "device_user_def_desc"));
		assert_string_equal(json_string_value(json_object_get(req, "op_code")), "ATH");
		assert_int_equal(json_integer_value(json_object_get(req, "time_limit")), 90);
		{
			unsigned char key[TWFIDO_KEY_LEN];
			char payload[256];

			key_bytes(SIM_KEY, key);
			/* transaction_id sp_service_id id_num device_user_def_desc
			 * op_code hint sign_data */
			snprintf(payload, sizeof(payload), "%s%s%s%s%s%s",
			         json_string_value(json_object_get(req, "transaction_id")),
			         SIM_SP_ID, ID_ENROLLED, "", "ATH", "你好");
			assert_true(twfido_checksum_verify(
			    key, payload, strlen(payload),
			    json_string_value(json_object_get(req, "sp_checksum"))));
		}
		json_decref(req);
		conn_twfido_free(tf);
	}
	close(f.fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_checksum_vectors),
	    cmocka_unit_test(test_identity_checks),
	    cmocka_unit_test(test_flow_approve),
	    cmocka_unit_test(test_flow_deny),
	    cmocka_unit_test(test_not_enrolled),
	    cmocka_unit_test(test_flow_expired),
	    cmocka_unit_test(test_approved_by_someone_else),
	    cmocka_unit_test(test_cli_phone),
	    cmocka_unit_test(test_push_flow),
	    cmocka_unit_test(test_push_refused),
	    cmocka_unit_test(test_app_link),
	    cmocka_unit_test(test_app_link_refusals),
	    cmocka_unit_test(test_sim_refusals),
	    cmocka_unit_test(test_invalid_arguments),
	    cmocka_unit_test(test_unreachable_is_io),
	    cmocka_unit_test(test_poll_map_bound),
	    cmocka_unit_test(test_silent_peer_times_out),
	    cmocka_unit_test(test_fake_service_poll),
	    cmocka_unit_test(test_fake_service_ticket),
	    cmocka_unit_test(test_fake_service_push),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("twfido", tests, sim_start, sim_stop);
}
