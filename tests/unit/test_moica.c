/* Tests for the MOICA ID-check connector and isso-sim's MOICA stand-in:
 * the ID check through the connector, and the CRL and OCSP endpoints read
 * with OpenSSL. The real simulator runs as a child with the test PKI
 * (pki-dir.h); hand-made peers (a closed port, a silent socket, canned
 * replies) cover what the simulator never does. */
#include <arpa/inet.h>
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

#include "pki-dir.h"
#include "sim-child.h"
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>

#include "conn/moica.h"
#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/log.h"

#define CLIENT_ID     "isso"
#define CLIENT_SECRET "isso-sim"
#define CARD_WANG     "TP03000000000001" /* A123456789, valid */
#define CARD_CHEN     "TP03000000000002" /* A223456781, valid */
#define CARD_REVOKED  "TP03000000000005" /* H187654320, revoked */
#define CARD_EXPIRED  "TP03000000000010" /* E222223335, expired */
#define CARD_ROGUE    "ROGUE00000000001" /* 王小明's name, issued by the rogue CA */

static char moica_base[96]; /* …/moica */
static X509 *ca, *ocsp_signer;

/* ---- helpers ---- */

struct collected {
	unsigned char *p;
	size_t len;
};

static size_t
collect_cb(char *data, size_t size, size_t n, void *ctx)
{
	struct collected *b = ctx;

	b->p = realloc(b->p, b->len + size * n + 1);
	memcpy(b->p + b->len, data, size * n);
	b->len += size * n;
	b->p[b->len] = '\0';
	return size * n;
}

/* One exchange with the simulator; returns the HTTP status (0 when none),
 * the body in *body_r (caller frees) and its Content-Type in ctype_r. */
static long
fetch(const char *method, const char *url, const char *userpwd, const void *body, size_t body_len,
      const char *content_type, struct collected *body_r, char ctype_r[64])
{
	struct curl_slist *headers = NULL;
	CURL *curl = curl_easy_init();
	char header[96];
	const char *ct = NULL;
	long status = 0;

	assert_non_null(curl);
	body_r->p = NULL;
	body_r->len = 0;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, body_r);
	if (userpwd != NULL)
		curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd);
	if (content_type != NULL) {
		snprintf(header, sizeof(header), "Content-Type: %s", content_type);
		headers = curl_slist_append(NULL, header);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	}
	if (body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)body_len);
	}
	if (curl_easy_perform(curl) == CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
	}
	if (ctype_r != NULL)
		snprintf(ctype_r, 64, "%s", ct != NULL ? ct : "");
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	return status;
}

/* A POST of JSON text to the simulator; the reply as JSON (*json_r). */
static long
post_json(const char *path, const char *userpwd, const char *body, json_t **json_r)
{
	struct collected b;
	char url[256];
	long status;

	snprintf(url, sizeof(url), "%s%s", sim_base, path);
	status = fetch("POST", url, userpwd, body, strlen(body), "application/json", &b, NULL);
	*json_r = b.p != NULL ? json_loadb((const char *)b.p, b.len, 0, NULL) : NULL;
	free(b.p);
	return status;
}

/* The serial and issuer key id of DIR/moica/<card>.crt. */
static void
card_ids(const char *card, char serial_r[80], char keyid_r[130])
{
	char name[64];
	X509 *x;

	snprintf(name, sizeof(name), "moica/%s.crt", card);
	x = pki_cert(name);
	pki_serial_hex(x, serial_r);
	pki_keyid_hex(X509_get0_authority_key_id(x), keyid_r);
	X509_free(x);
}

static struct conn_moica *
sim_connector(const char *secret, int timeout_ms)
{
	struct conn_moica *c = conn_moica_new(moica_base, CLIENT_ID, secret, timeout_ms);

	assert_non_null(c);
	return c;
}

/* ---- simulator lifecycle ---- */

static int
sim_start(void **state)
{
	static const char *extra[] = {"--pki", pki_dir, NULL};

	log_init(2, LOG_ERROR);
	if (pki_dir_setup("test_moica") != 0)
		return -1;
	if (sim_child_start("test_moica", extra) != 0)
		return -1;
	snprintf(moica_base, sizeof(moica_base), "%s/moica", sim_base);
	ca = pki_cert("moica.crt");
	ocsp_signer = pki_cert("moica-ocsp.crt");
	return 0;
}

static int
sim_stop(void **state)
{
	sim_child_stop();
	X509_free(ca);
	X509_free(ocsp_signer);
	return 0;
}

/* ---- the ID check ---- */

static void
test_health_lists_moica(void **state)
{
	struct collected b;
	char url[128];

	snprintf(url, sizeof(url), "%s/health", sim_base);
	assert_int_equal(fetch("GET", url, NULL, NULL, 0, NULL, &b, NULL), 200);
	assert_non_null(strstr((const char *)b.p, "\"moica\""));
	free(b.p);
}

static void
test_id_match(void **state)
{
	struct conn_moica *c = sim_connector(CLIENT_SECRET, 3000);
	char serial[80], keyid[130], upper[80];

	card_ids(CARD_WANG, serial, keyid);
	assert_int_equal(conn_moica_id_check(c, serial, keyid, "A123456789"), MOICA_ID_MATCH);
	/* any case of hex and ID; a leading zero in the serial changes nothing */
	for (size_t i = 0; i <= strlen(serial); i++)
		upper[i] =
		    (char)(serial[i] >= 'a' && serial[i] <= 'f' ? serial[i] - 32 : serial[i]);
	assert_int_equal(conn_moica_id_check(c, upper, keyid, "a123456789"), MOICA_ID_MATCH);
	snprintf(upper, sizeof(upper), "00%s", serial);
	assert_int_equal(conn_moica_id_check(c, upper, keyid, "A123456789"), MOICA_ID_MATCH);

	card_ids(CARD_CHEN, serial, keyid);
	assert_int_equal(conn_moica_id_check(c, serial, keyid, "A223456781"), MOICA_ID_MATCH);
	/* the ID check is about the holder: revocation is cardpki's business */
	card_ids(CARD_REVOKED, serial, keyid);
	assert_int_equal(conn_moica_id_check(c, serial, keyid, "H187654320"), MOICA_ID_MATCH);
	conn_moica_free(c);
}

static void
test_id_mismatch(void **state)
{
	struct conn_moica *c = sim_connector(CLIENT_SECRET, 3000);
	char serial[80], keyid[130];

	card_ids(CARD_WANG, serial, keyid);
	assert_int_equal(conn_moica_id_check(c, serial, keyid, "A223456781"), MOICA_ID_MISMATCH);
	/* a valid ID nobody in the identities has */
	assert_int_equal(conn_moica_id_check(c, serial, keyid, "F228033121"), MOICA_ID_MISMATCH);
	assert_int_equal(conn_moica_id_check(c, serial, keyid, "A800000014"), MOICA_ID_MISMATCH);
	conn_moica_free(c);
}

static void
test_id_unknown_cert(void **state)
{
	struct conn_moica *c = sim_connector(CLIENT_SECRET, 3000);
	char serial[80], keyid[130], rogue_serial[80], rogue_keyid[130];

	card_ids(CARD_WANG, serial, keyid);
	card_ids(CARD_ROGUE, rogue_serial, rogue_keyid);
	assert_string_not_equal(keyid, rogue_keyid);
	/* same answer as a wrong ID: nobody learns which certificates exist */
	assert_int_equal(conn_moica_id_check(c, "1234abcd", keyid, "A123456789"),
	                 MOICA_ID_MISMATCH);
	/* the right serial under another CA key, and the rogue CA's card */
	assert_int_equal(conn_moica_id_check(c, serial, rogue_keyid, "A123456789"),
	                 MOICA_ID_MISMATCH);
	assert_int_equal(conn_moica_id_check(c, rogue_serial, rogue_keyid, "A123456789"),
	                 MOICA_ID_MISMATCH);
	assert_int_equal(conn_moica_id_check(c, rogue_serial, keyid, "A123456789"),
	                 MOICA_ID_MISMATCH);
	conn_moica_free(c);
}

static void
test_id_bad_credentials(void **state)
{
	struct conn_moica *c = sim_connector("wrong-secret", 3000);
	struct conn_moica *other = conn_moica_new(moica_base, "someone", CLIENT_SECRET, 3000);
	char serial[80], keyid[130];

	card_ids(CARD_WANG, serial, keyid);
	assert_int_equal(conn_moica_id_check(c, serial, keyid, "A123456789"), MOICA_ID_ERROR);
	assert_int_equal(conn_moica_id_check(other, serial, keyid, "A123456789"), MOICA_ID_ERROR);
	conn_moica_free(c);
	conn_moica_free(other);
}

static void
test_id_invalid_input(void **state)
{
	struct conn_moica *c = sim_connector(CLIENT_SECRET, 3000);
	char serial[80], keyid[130], big[200];

	card_ids(CARD_WANG, serial, keyid);
	memset(big, 'a', 130);
	big[130] = '\0';
	assert_int_equal(conn_moica_id_check(NULL, serial, keyid, "A123456789"), MOICA_ID_ERROR);
	assert_int_equal(conn_moica_id_check(c, NULL, keyid, "A123456789"), MOICA_ID_ERROR);
	assert_int_equal(conn_moica_id_check(c, "", keyid, "A123456789"), MOICA_ID_ERROR);
	assert_int_equal(conn_moica_id_check(c, "12g4", keyid, "A123456789"), MOICA_ID_ERROR);
	assert_int_equal(conn_moica_id_check(c, big, keyid, "A123456789"), MOICA_ID_ERROR);
	assert_int_equal(conn_moica_id_check(c, serial, "abc", "A123456789"), MOICA_ID_ERROR);
	assert_int_equal(conn_moica_id_check(c, serial, big, "A123456789"), MOICA_ID_ERROR);
	assert_int_equal(conn_moica_id_check(c, serial, keyid, "A123456788"), MOICA_ID_ERROR);
	assert_int_equal(conn_moica_id_check(c, serial, keyid, NULL), MOICA_ID_ERROR);

	assert_null(conn_moica_new("ftp://127.0.0.1/moica", CLIENT_ID, CLIENT_SECRET, 0));
	assert_null(conn_moica_new("http://127.0.0.1/moica?x=1", CLIENT_ID, CLIENT_SECRET, 0));
	assert_null(conn_moica_new(moica_base, "", CLIENT_SECRET, 0));
	assert_null(conn_moica_new(moica_base, CLIENT_ID, NULL, 0));
	conn_moica_free(c);
}

static void
test_sim_refuses_bad_requests(void **state)
{
	static const char *const bodies[] = {
	    "not json",
	    "[]",
	    "{\"cert_serial\":\"zz\",\"issuer_key_id\":\"ab\",\"national_id\":\"A123456789\"}",
	    "{\"cert_serial\":\"ab\",\"issuer_key_id\":\"abc\",\"national_id\":\"A123456789\"}",
	    "{\"cert_serial\":\"ab\",\"issuer_key_id\":\"ab\",\"national_id\":\"A123456788\"}",
	    "{\"cert_serial\":\"ab\",\"issuer_key_id\":\"ab\"}",
	    "{\"cert_serial\":12,\"issuer_key_id\":\"ab\",\"national_id\":\"A123456789\"}",
	};
	json_t *j;

	for (size_t i = 0; i < ISSO_N_ELEMENTS(bodies); i++) {
		assert_int_equal(
		    post_json("/moica/v1/id-check", CLIENT_ID ":" CLIENT_SECRET, bodies[i], &j),
		    400);
		assert_string_equal(json_string_value(json_object_get(j, "error")),
		                    "invalid_request");
		json_decref(j);
	}
	assert_int_equal(post_json("/moica/v1/id-check", NULL, "{}", &j), 401);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "invalid_client");
	json_decref(j);
}

/* ---- CRL ---- */

static X509_CRL *
get_crl(void)
{
	struct collected b;
	const unsigned char *p;
	char url[128], ctype[64];
	X509_CRL *crl;

	snprintf(url, sizeof(url), "%s/crl", moica_base);
	assert_int_equal(fetch("GET", url, NULL, NULL, 0, NULL, &b, ctype), 200);
	assert_string_equal(ctype, "application/pkix-crl");
	p = b.p;
	crl = d2i_X509_CRL(NULL, &p, (long)b.len);
	assert_non_null(crl);
	assert_true(p == b.p + b.len);
	free(b.p);
	return crl;
}

/* The entry for DIR/moica/<card>.crt, or NULL. */
static X509_REVOKED *
crl_entry(X509_CRL *crl, const char *card)
{
	char name[64];
	X509_REVOKED *r = NULL;
	X509 *x;

	snprintf(name, sizeof(name), "moica/%s.crt", card);
	x = pki_cert(name);
	if (X509_CRL_get0_by_serial(crl, &r, X509_get0_serialNumber(x)) != 1)
		r = NULL;
	X509_free(x);
	return r;
}

static void
test_crl(void **state)
{
	X509_CRL *crl = get_crl(), *again;
	ASN1_INTEGER *number, *number2;
	AUTHORITY_KEYID *aki;
	ASN1_ENUMERATED *reason;
	X509_REVOKED *r;
	const ASN1_OBJECT *alg = NULL;
	const X509_ALGOR *sigalg = NULL;
	time_t now = time(NULL);
	int day, sec;
	char ca_ski[130], crl_aki[130];

	/* signed by the CA, named after it, v2 */
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)), 0);
	assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	X509_CRL_get0_signature(crl, NULL, &sigalg);
	X509_ALGOR_get0(&alg, NULL, NULL, sigalg);
	assert_int_equal(OBJ_obj2nid(alg), NID_sha256WithRSAEncryption);
	/* thisUpdate now, nextUpdate in an hour */
	assert_true(X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &(time_t){now + 5}) < 0);
	assert_true(X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &(time_t){now - 5}) > 0);
	assert_int_equal(ASN1_TIME_diff(&day, &sec, X509_CRL_get0_lastUpdate(crl),
	                                X509_CRL_get0_nextUpdate(crl)),
	                 1);
	assert_int_equal(day * 86400 + sec, 3600);
	/* AKI = the CA's SKI */
	aki = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
	assert_non_null(aki);
	pki_keyid_hex(aki->keyid, crl_aki);
	pki_keyid_hex(X509_get0_subject_key_id(ca), ca_ski);
	assert_string_equal(crl_aki, ca_ski);
	AUTHORITY_KEYID_free(aki);

	/* the revoked card only, with a reason */
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
	r = crl_entry(crl, CARD_REVOKED);
	assert_non_null(r);
	assert_true(X509_cmp_time(X509_REVOKED_get0_revocationDate(r), &now) < 0);
	reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
	assert_non_null(reason);
	assert_int_equal(ASN1_ENUMERATED_get(reason), OCSP_REVOKED_STATUS_KEYCOMPROMISE);
	ASN1_ENUMERATED_free(reason);
	assert_null(crl_entry(crl, CARD_WANG));
	assert_null(crl_entry(crl, CARD_EXPIRED));

	/* each CRL has a larger number */
	again = get_crl();
	number = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	number2 = X509_CRL_get_ext_d2i(again, NID_crl_number, NULL, NULL);
	assert_non_null(number);
	assert_non_null(number2);
	assert_true(ASN1_INTEGER_cmp(number, number2) < 0);
	ASN1_INTEGER_free(number);
	ASN1_INTEGER_free(number2);
	X509_CRL_free(again);
	X509_CRL_free(crl);
}

/* ---- OCSP ---- */

enum ocsp_via { VIA_POST, VIA_GET_STD, VIA_GET_URL };

/* Asks the responder about the certificates (each with its issuer, digest
 * md for the CertIDs), with a nonce; returns the verified basic response
 * (caller frees) and checks the OCSP-level status is successful. ours:
 * the certificates are the MOICA CA's (else its responder is not the
 * issuer's delegate and only the signature is checked). */
static OCSP_BASICRESP *
ocsp_ask(X509 *const *certs, X509 *const *issuers, size_t n, const EVP_MD *md, enum ocsp_via via,
         bool ours, OCSP_REQUEST **req_r)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	X509_STORE *store = X509_STORE_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509 *root = pki_cert("grca.crt"), *signer = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	struct collected b;
	char url[12288], ctype[64], *b64, *esc;
	int len;

	assert_non_null(req);
	for (size_t i = 0; i < n; i++)
		assert_non_null(
		    OCSP_request_add0_id(req, OCSP_cert_to_id(md, certs[i], issuers[i])));
	assert_int_equal(OCSP_request_add1_nonce(req, NULL, -1), 1);
	len = i2d_OCSP_REQUEST(req, &der);
	assert_true(len > 0);
	if (via == VIA_POST) {
		snprintf(url, sizeof(url), "%s/ocsp", moica_base);
		assert_int_equal(fetch("POST", url, NULL, der, (size_t)len,
		                       "application/ocsp-request", &b, ctype),
		                 200);
	} else {
		b64 = malloc((size_t)len / 3 * 4 + 5);
		if (via == VIA_GET_STD)
			b64_encode(der, (size_t)len, b64);
		else
			b64url_encode(der, (size_t)len, b64);
		esc = curl_easy_escape(NULL, b64, 0);
		snprintf(url, sizeof(url), "%s/ocsp/%s", moica_base, esc);
		curl_free(esc);
		free(b64);
		assert_int_equal(fetch("GET", url, NULL, NULL, 0, NULL, &b, ctype), 200);
	}
	OPENSSL_free(der);
	assert_string_equal(ctype, "application/ocsp-response");
	p = b.p;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)b.len);
	assert_non_null(resp);
	free(b.p);
	assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_SUCCESSFUL);
	bs = OCSP_response_get1_basic(resp);
	assert_non_null(bs);
	OCSP_RESPONSE_free(resp);

	/* signed by the delegated responder, whose certificate comes along and
	 * chains to the root through the CA */
	X509_STORE_add_cert(store, root);
	sk_X509_push(untrusted, ca);
	if (ours) {
		assert_int_equal(OCSP_basic_verify(bs, untrusted, store, 0), 1);
	} else {
		/* certificates of another CA: the responder is not its delegate */
		assert_int_not_equal(OCSP_basic_verify(bs, untrusted, store, 0), 1);
		assert_int_equal(OCSP_basic_verify(bs, untrusted, store, OCSP_NOCHECKS), 1);
	}
	assert_int_equal(OCSP_resp_get0_signer(bs, &signer, NULL), 1);
	assert_int_equal(X509_cmp(signer, ocsp_signer), 0);
	assert_int_equal(OCSP_check_nonce(req, bs), 1);
	sk_X509_free(untrusted);
	X509_STORE_free(store);
	X509_free(root);
	*req_r = req;
	return bs;
}

/* The status the response gives cert (issued by issuer); checks the
 * times (thisUpdate now, nextUpdate in 10 minutes). */
static int
ocsp_status_of(OCSP_BASICRESP *bs, X509 *cert, X509 *issuer, const EVP_MD *md, int *reason_r)
{
	OCSP_CERTID *id = OCSP_cert_to_id(md, cert, issuer);
	ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
	int status = -1, day, sec;

	*reason_r = -1;
	assert_int_equal(OCSP_resp_find_status(bs, id, &status, reason_r, &rev, &thisupd, &nextupd),
	                 1);
	assert_int_equal(OCSP_check_validity(thisupd, nextupd, 5, -1), 1);
	assert_int_equal(ASN1_TIME_diff(&day, &sec, thisupd, nextupd), 1);
	assert_int_equal(day * 86400 + sec, 600);
	OCSP_CERTID_free(id);
	return status;
}

static void
test_ocsp_post(void **state)
{
	X509 *good = pki_cert("moica/" CARD_WANG ".crt");
	X509 *revoked = pki_cert("moica/" CARD_REVOKED ".crt");
	X509 *expired = pki_cert("moica/" CARD_EXPIRED ".crt");
	X509 *rogue = pki_cert("moica/" CARD_ROGUE ".crt");
	X509 *rogue_ca = pki_cert("rogue-ca.crt");
	X509 *certs[] = {good, revoked, expired};
	X509 *issuers[] = {ca, ca, ca};
	OCSP_REQUEST *req;
	OCSP_BASICRESP *bs;
	int reason;

	bs = ocsp_ask(certs, issuers, 3, EVP_sha1(), VIA_POST, true, &req);
	assert_int_equal(OCSP_resp_count(bs), 3);
	assert_int_equal(ocsp_status_of(bs, good, ca, EVP_sha1(), &reason), V_OCSP_CERTSTATUS_GOOD);
	assert_int_equal(ocsp_status_of(bs, revoked, ca, EVP_sha1(), &reason),
	                 V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
	/* an expired certificate is not revoked */
	assert_int_equal(ocsp_status_of(bs, expired, ca, EVP_sha1(), &reason),
	                 V_OCSP_CERTSTATUS_GOOD);
	OCSP_BASICRESP_free(bs);
	OCSP_REQUEST_free(req);

	/* same issuer name, other key: not ours */
	bs = ocsp_ask(&rogue, &rogue_ca, 1, EVP_sha1(), VIA_POST, false, &req);
	assert_int_equal(ocsp_status_of(bs, rogue, rogue_ca, EVP_sha1(), &reason),
	                 V_OCSP_CERTSTATUS_UNKNOWN);
	OCSP_BASICRESP_free(bs);
	OCSP_REQUEST_free(req);

	/* the rogue card's serial asked under the real CA: unknown too */
	bs = ocsp_ask(&rogue, &ca, 1, EVP_sha256(), VIA_POST, true, &req);
	assert_int_equal(ocsp_status_of(bs, rogue, ca, EVP_sha256(), &reason),
	                 V_OCSP_CERTSTATUS_UNKNOWN);
	OCSP_BASICRESP_free(bs);
	OCSP_REQUEST_free(req);

	X509_free(good);
	X509_free(revoked);
	X509_free(expired);
	X509_free(rogue);
	X509_free(rogue_ca);
}

static void
test_ocsp_get(void **state)
{
	X509 *good = pki_cert("moica/" CARD_CHEN ".crt");
	X509 *revoked = pki_cert("moica/" CARD_REVOKED ".crt");
	OCSP_REQUEST *req;
	OCSP_BASICRESP *bs;
	int reason;

	/* standard base64, percent-encoded ('+', '/', '=' escaped) */
	bs = ocsp_ask(&good, &ca, 1, EVP_sha1(), VIA_GET_STD, true, &req);
	assert_int_equal(ocsp_status_of(bs, good, ca, EVP_sha1(), &reason), V_OCSP_CERTSTATUS_GOOD);
	OCSP_BASICRESP_free(bs);
	OCSP_REQUEST_free(req);
	/* base64url without padding, SHA-256 CertID */
	bs = ocsp_ask(&revoked, &ca, 1, EVP_sha256(), VIA_GET_URL, true, &req);
	assert_int_equal(ocsp_status_of(bs, revoked, ca, EVP_sha256(), &reason),
	                 V_OCSP_CERTSTATUS_REVOKED);
	OCSP_BASICRESP_free(bs);
	OCSP_REQUEST_free(req);
	X509_free(good);
	X509_free(revoked);
}

/* The OCSP status of the responder's answer to a raw request. */
static int
ocsp_raw_status(const char *method, const char *url, const void *body, size_t len)
{
	struct collected b;
	const unsigned char *p;
	OCSP_RESPONSE *resp;
	char ctype[64];
	int status;

	assert_int_equal(fetch(method, url, NULL, body, len, "application/ocsp-request", &b, ctype),
	                 200);
	assert_string_equal(ctype, "application/ocsp-response");
	p = b.p;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)b.len);
	assert_non_null(resp);
	free(b.p);
	status = OCSP_response_status(resp);
	OCSP_RESPONSE_free(resp);
	return status;
}

static void
test_ocsp_malformed(void **state)
{
	static const unsigned char garbage[] = {0x30, 0x03, 0x02, 0x01, 0x01};
	char url[256];

	snprintf(url, sizeof(url), "%s/ocsp", moica_base);
	assert_int_equal(ocsp_raw_status("POST", url, "not DER", 7),
	                 OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	assert_int_equal(ocsp_raw_status("POST", url, garbage, sizeof(garbage)),
	                 OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	assert_int_equal(ocsp_raw_status("POST", url, "", 0),
	                 OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	snprintf(url, sizeof(url), "%s/ocsp/", moica_base);
	assert_int_equal(ocsp_raw_status("GET", url, NULL, 0),
	                 OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	snprintf(url, sizeof(url), "%s/ocsp/%%21%%21not-base64", moica_base);
	assert_int_equal(ocsp_raw_status("GET", url, NULL, 0),
	                 OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	snprintf(url, sizeof(url), "%s/ocsp/MAMCAQE", moica_base); /* base64 of garbage */
	assert_int_equal(ocsp_raw_status("GET", url, NULL, 0),
	                 OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
}

/* ---- peers that are not the simulator ---- */

static void
test_unreachable_is_error(void **state)
{
	int port, fd = loopback_socket(-1, &port);
	char url[96], serial[80], keyid[130];
	struct conn_moica *c;

	close(fd);
	card_ids(CARD_WANG, serial, keyid);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/moica", port);
	c = conn_moica_new(url, CLIENT_ID, CLIENT_SECRET, 2000);
	assert_non_null(c);
	assert_int_equal(conn_moica_id_check(c, serial, keyid, "A123456789"), MOICA_ID_ERROR);
	conn_moica_free(c);
}

static void
test_silent_peer_times_out(void **state)
{
	int port, fd = loopback_socket(8, &port); /* the kernel accepts, nobody answers */
	char url[96], serial[80], keyid[130];
	struct conn_moica *c;
	struct timespec t0;
	long ms;

	card_ids(CARD_WANG, serial, keyid);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/moica", port);
	c = conn_moica_new(url, CLIENT_ID, CLIENT_SECRET, 700);
	assert_non_null(c);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(conn_moica_id_check(c, serial, keyid, "A123456789"), MOICA_ID_ERROR);
	ms = ms_since(&t0);
	assert_true(ms >= 600 && ms < 2500);
	conn_moica_free(c);
	close(fd);
}

/* A peer that answers one request with a canned reply. */
struct fake_peer {
	int fd;
	const char *reply;
};

static void *
fake_peer_thread(void *arg)
{
	struct fake_peer *fp = arg;
	char req[16384];
	size_t len = 0;
	int c = accept(fp->fd, NULL, NULL);

	if (c < 0)
		return NULL;
	/* read the head and the small JSON body */
	while (len < sizeof(req) - 1) {
		ssize_t n = recv(c, req + len, sizeof(req) - 1 - len, 0);
		const char *end, *cl;

		if (n <= 0)
			break;
		len += (size_t)n;
		req[len] = '\0';
		end = strstr(req, "\r\n\r\n");
		cl = strcasestr(req, "\r\nContent-Length:");
		if (end != NULL && cl != NULL &&
		    len >= (size_t)(end + 4 - req) + strtoul(cl + 17, NULL, 10))
			break;
	}
	if (send(c, fp->reply, strlen(fp->reply), MSG_NOSIGNAL) < 0) {
		/* the client may hang up on an oversized reply */
	}
	shutdown(c, SHUT_WR);
	close(c);
	return NULL;
}

#define HTTP_OK "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"

static void
test_reply_parsing(void **state)
{
	static char big[6000];
	static const struct {
		const char *reply;
		enum moica_id_result want;
	} cases[] = {
	    {HTTP_OK "{\"result\":\"match\"}", MOICA_ID_MATCH},
	    {HTTP_OK "{\"result\":\"mismatch\"}", MOICA_ID_MISMATCH},
	    {HTTP_OK "{\"result\":\"MATCH\"}", MOICA_ID_ERROR},
	    {HTTP_OK "{\"result\":true}", MOICA_ID_ERROR},
	    {HTTP_OK "{}", MOICA_ID_ERROR},
	    {HTTP_OK "[\"match\"]", MOICA_ID_ERROR},
	    {HTTP_OK "match", MOICA_ID_ERROR},
	    {HTTP_OK "{\"result\":\"match\",\"result\":\"mismatch\"}", MOICA_ID_ERROR},
	    {"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n",
	     MOICA_ID_ERROR},
	    {"HTTP/1.1 500 Oops\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n"
	     "{\"result\":\"match\"}  ",
	     MOICA_ID_ERROR},
	    {big, MOICA_ID_ERROR},
	};
	char url[96], serial[80], keyid[130];

	card_ids(CARD_WANG, serial, keyid);
	/* a valid answer padded past the connector's 4 KiB limit */
	snprintf(big, sizeof(big), HTTP_OK "{\"result\":\"match\",\"pad\":\"%05000d\"}", 0);
	for (size_t i = 0; i < ISSO_N_ELEMENTS(cases); i++) {
		struct fake_peer fp = {.reply = cases[i].reply};
		struct conn_moica *c;
		pthread_t th;
		int port;

		fp.fd = loopback_socket(8, &port);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/moica", port);
		c = conn_moica_new(url, CLIENT_ID, CLIENT_SECRET, 2000);
		assert_non_null(c);
		assert_int_equal(pthread_create(&th, NULL, fake_peer_thread, &fp), 0);
		assert_int_equal(conn_moica_id_check(c, serial, keyid, "A123456789"),
		                 cases[i].want);
		pthread_join(th, NULL);
		conn_moica_free(c);
		close(fp.fd);
	}
}

/* A PKI that cannot be read stops the simulator at start. */
static void
test_sim_bad_pki(void **state)
{
	static const char *const missing[] = {"serve", "--port",       "0",
	                                      "--pki", "/nonexistent", NULL};
	static const char *const nopki_files[] = {"serve", "--port", "0", "--pki", "/tmp", NULL};
	static const char *const bad_suspend[] = {"serve", "--port", "0", "--nhi-suspend-seconds",
	                                          "0",     NULL};

	assert_int_equal(run_sim(missing, 5000), 1);
	assert_int_equal(run_sim(nopki_files, 5000), 1);
	assert_int_equal(run_sim(bad_suspend, 5000), 2);
}

static void
test_names(void **state)
{
	assert_string_equal(moica_id_result_name(MOICA_ID_MATCH), "match");
	assert_string_equal(moica_id_result_name(MOICA_ID_MISMATCH), "mismatch");
	assert_string_equal(moica_id_result_name(MOICA_ID_ERROR), "error");
	assert_string_equal(moica_id_result_name((enum moica_id_result)99), "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_health_lists_moica),
	    cmocka_unit_test(test_id_match),
	    cmocka_unit_test(test_id_mismatch),
	    cmocka_unit_test(test_id_unknown_cert),
	    cmocka_unit_test(test_id_bad_credentials),
	    cmocka_unit_test(test_id_invalid_input),
	    cmocka_unit_test(test_sim_refuses_bad_requests),
	    cmocka_unit_test(test_crl),
	    cmocka_unit_test(test_ocsp_post),
	    cmocka_unit_test(test_ocsp_get),
	    cmocka_unit_test(test_ocsp_malformed),
	    cmocka_unit_test(test_unreachable_is_error),
	    cmocka_unit_test(test_silent_peer_times_out),
	    cmocka_unit_test(test_reply_parsing),
	    cmocka_unit_test(test_sim_bad_pki),
	    cmocka_unit_test(test_names),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("moica", tests, sim_start, sim_stop);
}
