/* Tests for the NHI card verification connector and isso-sim's NHI
 * stand-in. The real simulator runs as a child with the test PKI
 * (pki-dir.h) and a short suspension; the tests sign as the card would,
 * with the card's key from the PKI, and encrypt the password as the card
 * component would, to the service's certificate (nhi-service.crt). Each test uses its own card,
 * since the simulator keeps per-card counters and used randoms. Hand-made peers (a closed port, a
 * silent socket, canned replies) cover what the simulator never does. */
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
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "conn/nhi.h"
#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/log.h"

#define CLIENT_ID     "isso"
#define CLIENT_SECRET "isso-sim"
#define SUSPEND_S     2 /* --nhi-suspend-seconds */

/* Cards of the shipped identities: number, holder, registration password. */
static const struct card {
	const char *no, *id, *pwd;
} card_wang = {"000012340001", "A123456789", "nhi12345"},
  card_chen = {"000012340002", "A223456781", "meiling88"},
  card_lin = {"000012340003", "A113579248", "lin-zh-03"},
  card_chang = {"000012340004", "F228033121", "yating04"},
  card_lee = {"000012340006", "A220000125", "shufen66"},
  card_liu = {"000012340008", "A224680138", "yijun0229"},
  card_tsai = {"000012340009", "A109876547", "chengen09"},
  card_wu = {"000012340011", "A131415925", "jiahao11"};

static char nhi_base[96]; /* …/nhi */

/* ---- signing as the card ---- */

/* RSA PKCS#1 v1.5 SHA-256 over msg with DIR/nhi/<card_no>.key, base64
 * (caller frees). */
static char *
card_sign(const char *card_no, const void *msg, size_t len)
{
	char name[64], *b64;
	unsigned char sig[1024];
	size_t slen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY *key;

	snprintf(name, sizeof(name), "nhi/%s.key", card_no);
	key = pki_key(name);
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &slen, msg, len), 1);
	b64 = malloc(slen / 3 * 4 + 5);
	b64_encode(sig, slen, b64);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	return b64;
}

/* RSA-OAEP (SHA-256, MGF1-SHA-256) of len bytes of msg to the key of the
 * PKI's cert_name (EnCrypt uses nhi-service.crt), base64 (caller frees). */
static char *
encrypt_to(const char *cert_name, const void *msg, size_t len)
{
	X509 *x = pki_cert(cert_name);
	EVP_PKEY *key = X509_get_pubkey(x);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	unsigned char out[1024];
	size_t n = sizeof(out);
	char *b64;

	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) > 0);
	assert_int_equal(EVP_PKEY_encrypt(ctx, out, &n, msg, len), 1);
	b64 = malloc(n / 3 * 4 + 5);
	b64_encode(out, n, b64);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(key);
	X509_free(x);
	return b64;
}

/* The card's certificate, DER in base64 (caller frees). */
static char *
card_cert(const char *card_no)
{
	char name[64], *b64;
	unsigned char *der = NULL;
	X509 *x;
	int len;

	snprintf(name, sizeof(name), "nhi/%s.crt", card_no);
	x = pki_cert(name);
	len = i2d_X509(x, &der);
	assert_true(len > 0);
	b64 = malloc((size_t)len / 3 * 4 + 5);
	b64_encode(der, (size_t)len, b64);
	OPENSSL_free(der);
	X509_free(x);
	return b64;
}

/* A fresh random as the portal makes it. */
static void
new_random(char out[44])
{
	unsigned char r[32];

	assert_int_equal(RAND_bytes(r, sizeof(r)), 1);
	b64url_encode(r, sizeof(r), out);
}

/* What the card component sends back for random and password. */
struct answer {
	char *sig, *blob, *cert;
};

static struct answer
card_answer(const char *signer, const char *random, const char *password)
{
	struct answer a;
	char msg[256];

	snprintf(msg, sizeof(msg), "NHI-PWD\n%s\n%s", random, password);
	a.sig = card_sign(signer, random, strlen(random));
	a.blob = encrypt_to("nhi-service.crt", msg, strlen(msg));
	a.cert = card_cert(signer);
	return a;
}

static void
answer_free(struct answer *a)
{
	free(a->sig);
	free(a->blob);
	free(a->cert);
}

struct outcome {
	enum nhi_result r;
	int tries_left, retry_after;
};

/* One verification through c: card's number and id as given, signed by
 * signer's key over random (NULL: a fresh one) with password. */
static struct outcome
verify_as(struct conn_nhi *c, const char *card_no, const char *id, const char *signer,
          const char *random, const char *password)
{
	struct outcome o = {NHI_ERROR, 99, 99};
	struct answer a;
	char fresh[44];

	if (random == NULL) {
		new_random(fresh);
		random = fresh;
	}
	a = card_answer(signer, random, password);
	o.r = conn_nhi_verify(c, card_no, id, random, a.sig, a.cert, a.blob, &o.tries_left,
	                      &o.retry_after);
	answer_free(&a);
	if (o.r != NHI_PASSWORD)
		assert_int_equal(o.tries_left, -1);
	if (o.r != NHI_SUSPENDED)
		assert_int_equal(o.retry_after, -1);
	return o;
}

static struct outcome
verify(struct conn_nhi *c, const struct card *card, const char *random, const char *password)
{
	return verify_as(c, card->no, card->id, card->no, random, password);
}

static struct conn_nhi *
sim_connector(const char *secret, int timeout_ms)
{
	struct conn_nhi *c = conn_nhi_new(nhi_base, CLIENT_ID, secret, timeout_ms);

	assert_non_null(c);
	return c;
}

/* ---- simulator lifecycle ---- */

static int
sim_start(void **state)
{
	static char suspend[16];
	static const char *extra[] = {"--pki", pki_dir, "--nhi-suspend-seconds", suspend, NULL};

	log_init(2, LOG_ERROR);
	snprintf(suspend, sizeof(suspend), "%d", SUSPEND_S);
	if (pki_dir_setup("test_nhi") != 0)
		return -1;
	if (sim_child_start("test_nhi", extra) != 0)
		return -1;
	snprintf(nhi_base, sizeof(nhi_base), "%s/nhi", sim_base);
	return 0;
}

static int
sim_stop(void **state)
{
	sim_child_stop();
	return 0;
}

/* ---- through the simulator ---- */

static void
test_ok(void **state)
{
	struct conn_nhi *c = sim_connector(CLIENT_SECRET, 3000);
	struct outcome o;
	struct answer a;
	char random[44];
	int tries = 7, retry = 7;

	o = verify(c, &card_wang, NULL, card_wang.pwd);
	assert_int_equal(o.r, NHI_OK);
	/* lower-case ID; no certificate; no out-parameters */
	o = verify_as(c, card_wang.no, "a123456789", card_wang.no, NULL, card_wang.pwd);
	assert_int_equal(o.r, NHI_OK);
	new_random(random);
	a = card_answer(card_wang.no, random, card_wang.pwd);
	assert_int_equal(conn_nhi_verify(c, card_wang.no, card_wang.id, random, a.sig, NULL, a.blob,
	                                 &tries, &retry),
	                 NHI_OK);
	assert_int_equal(tries, -1);
	assert_int_equal(retry, -1);
	answer_free(&a);
	new_random(random);
	a = card_answer(card_wang.no, random, card_wang.pwd);
	assert_int_equal(conn_nhi_verify(c, card_wang.no, card_wang.id, random, a.sig, a.cert,
	                                 a.blob, NULL, NULL),
	                 NHI_OK);
	answer_free(&a);
	/* the shortest and longest randoms */
	assert_int_equal(verify(c, &card_wang, "x", card_wang.pwd).r, NHI_OK);
	memset(random, 'Z', 43);
	random[43] = '\0';
	assert_int_equal(verify(c, &card_wang, random, card_wang.pwd).r, NHI_OK);
	conn_nhi_free(c);
}

static void
test_signature(void **state)
{
	struct conn_nhi *c = sim_connector(CLIENT_SECRET, 3000);
	struct answer a, b;
	char random[44], other[44], *lin_cert;

	/* signed by another card */
	assert_int_equal(
	    verify_as(c, card_chen.no, card_chen.id, card_lin.no, NULL, card_chen.pwd).r,
	    NHI_SIGNATURE);
	/* a card the service does not know */
	assert_int_equal(
	    verify_as(c, "000099999999", card_chen.id, card_chen.no, NULL, card_chen.pwd).r,
	    NHI_SIGNATURE);
	/* a signature over another random */
	new_random(random);
	new_random(other);
	a = card_answer(card_chen.no, random, card_chen.pwd);
	b = card_answer(card_chen.no, other, card_chen.pwd);
	assert_int_equal(conn_nhi_verify(c, card_chen.no, card_chen.id, random, b.sig, a.cert,
	                                 a.blob, NULL, NULL),
	                 NHI_SIGNATURE);
	/* not a signature at all */
	assert_int_equal(conn_nhi_verify(c, card_chen.no, card_chen.id, random, "AAAA", a.cert,
	                                 a.blob, NULL, NULL),
	                 NHI_SIGNATURE);
	/* the posted certificate is not trusted: another card's changes nothing */
	lin_cert = card_cert(card_lin.no);
	assert_int_equal(conn_nhi_verify(c, card_chen.no, card_chen.id, other, b.sig, lin_cert,
	                                 b.blob, NULL, NULL),
	                 NHI_OK);
	free(lin_cert);
	answer_free(&a);
	answer_free(&b);
	/* none of this counted as a wrong password */
	assert_int_equal(verify(c, &card_chen, NULL, "wrong-pw").tries_left, 2);
	assert_int_equal(verify(c, &card_chen, NULL, card_chen.pwd).r, NHI_OK);
	conn_nhi_free(c);
}

static void
test_mismatch(void **state)
{
	struct conn_nhi *c = sim_connector(CLIENT_SECRET, 3000);
	struct outcome o;

	/* someone else's ID (another card holder), an ID nobody has */
	o = verify_as(c, card_lin.no, card_wang.id, card_lin.no, NULL, card_lin.pwd);
	assert_int_equal(o.r, NHI_MISMATCH);
	o = verify_as(c, card_lin.no, "A800000014", card_lin.no, NULL, card_lin.pwd);
	assert_int_equal(o.r, NHI_MISMATCH);
	/* checked before the password: a wrong one does not count here */
	o = verify_as(c, card_lin.no, card_wang.id, card_lin.no, NULL, "wrong-pw");
	assert_int_equal(o.r, NHI_MISMATCH);
	o = verify(c, &card_lin, NULL, "wrong-pw");
	assert_int_equal(o.r, NHI_PASSWORD);
	assert_int_equal(o.tries_left, 2);
	assert_int_equal(verify(c, &card_lin, NULL, card_lin.pwd).r, NHI_OK);
	conn_nhi_free(c);
}

static void
test_password_then_suspended(void **state)
{
	struct conn_nhi *c = sim_connector(CLIENT_SECRET, 3000);
	struct outcome o;

	o = verify(c, &card_chang, NULL, "wrong-pw");
	assert_int_equal(o.r, NHI_PASSWORD);
	assert_int_equal(o.tries_left, 2);
	o = verify(c, &card_chang, NULL, "nhi12345"); /* another holder's password */
	assert_int_equal(o.r, NHI_PASSWORD);
	assert_int_equal(o.tries_left, 1);
	o = verify(c, &card_chang, NULL, "wrong-again");
	assert_int_equal(o.r, NHI_SUSPENDED);
	assert_true(o.retry_after >= 1 && o.retry_after <= SUSPEND_S);
	/* while suspended even the right password is refused … */
	o = verify(c, &card_chang, NULL, card_chang.pwd);
	assert_int_equal(o.r, NHI_SUSPENDED);
	assert_true(o.retry_after >= 1 && o.retry_after <= SUSPEND_S);
	/* … but a bad signature or another ID still says so first */
	assert_int_equal(
	    verify_as(c, card_chang.no, card_chang.id, card_lee.no, NULL, card_chang.pwd).r,
	    NHI_SIGNATURE);
	assert_int_equal(
	    verify_as(c, card_chang.no, card_wang.id, card_chang.no, NULL, card_chang.pwd).r,
	    NHI_MISMATCH);
	/* other cards are not affected */
	assert_int_equal(verify(c, &card_lee, NULL, card_lee.pwd).r, NHI_OK);

	/* the suspension ends with three tries again */
	sleep_ms(SUSPEND_S * 1000 + 200);
	o = verify(c, &card_chang, NULL, "wrong-pw");
	assert_int_equal(o.r, NHI_PASSWORD);
	assert_int_equal(o.tries_left, 2);
	assert_int_equal(verify(c, &card_chang, NULL, card_chang.pwd).r, NHI_OK);
	conn_nhi_free(c);
}

static void
test_ok_resets_count(void **state)
{
	struct conn_nhi *c = sim_connector(CLIENT_SECRET, 3000);

	assert_int_equal(verify(c, &card_liu, NULL, "wrong-pw").tries_left, 2);
	assert_int_equal(verify(c, &card_liu, NULL, "wrong-pw").tries_left, 1);
	assert_int_equal(verify(c, &card_liu, NULL, card_liu.pwd).r, NHI_OK);
	assert_int_equal(verify(c, &card_liu, NULL, "wrong-pw").tries_left, 2);
	assert_int_equal(verify(c, &card_liu, NULL, card_liu.pwd).r, NHI_OK);
	conn_nhi_free(c);
}

static void
test_replayed_random(void **state)
{
	struct conn_nhi *c = sim_connector(CLIENT_SECRET, 3000);
	char random[44];

	new_random(random);
	assert_int_equal(verify(c, &card_tsai, random, card_tsai.pwd).r, NHI_OK);
	assert_int_equal(verify(c, &card_tsai, random, card_tsai.pwd).r, NHI_SIGNATURE);
	/* a random spent on a mismatch or a wrong password stays spent */
	new_random(random);
	assert_int_equal(
	    verify_as(c, card_tsai.no, card_wang.id, card_tsai.no, random, card_tsai.pwd).r,
	    NHI_MISMATCH);
	assert_int_equal(verify(c, &card_tsai, random, card_tsai.pwd).r, NHI_SIGNATURE);
	new_random(random);
	assert_int_equal(verify(c, &card_tsai, random, "wrong-pw").r, NHI_PASSWORD);
	assert_int_equal(verify(c, &card_tsai, random, card_tsai.pwd).r, NHI_SIGNATURE);
	/* a random is per card: another card may sign the same one */
	assert_int_equal(verify(c, &card_wang, random, card_wang.pwd).r, NHI_OK);
	/* a bad signature does not spend it */
	new_random(random);
	assert_int_equal(
	    verify_as(c, card_tsai.no, card_tsai.id, card_wang.no, random, card_tsai.pwd).r,
	    NHI_SIGNATURE);
	assert_int_equal(verify(c, &card_tsai, random, card_tsai.pwd).r, NHI_OK);
	conn_nhi_free(c);
}

/* A blob the service cannot open, or made for another random, proves
 * nothing about the password: "signature", no try counted, the random not
 * spent. */
static void
test_blob(void **state)
{
	struct conn_nhi *c = sim_connector(CLIENT_SECRET, 3000);
	struct answer a, b;
	struct outcome o;
	char random[44], other[44], msg[256], *blob, *sig;
	static const char nul_pwd[] = "NHI-PWD\nRND\njiahao11\0x";

	new_random(random);
	new_random(other);
	a = card_answer(card_wu.no, random, card_wu.pwd);
	/* the right password, but bound to another random */
	b = card_answer(card_wu.no, other, card_wu.pwd);
	assert_int_equal(
	    conn_nhi_verify(c, card_wu.no, card_wu.id, random, a.sig, a.cert, b.blob, NULL, NULL),
	    NHI_SIGNATURE);
	/* a wrong password bound to another random: not a try either */
	answer_free(&b);
	b = card_answer(card_wu.no, other, "wrong-pw");
	assert_int_equal(
	    conn_nhi_verify(c, card_wu.no, card_wu.id, random, a.sig, a.cert, b.blob, NULL, NULL),
	    NHI_SIGNATURE);
	/* the former format (the card's signature over the text) */
	snprintf(msg, sizeof(msg), "NHI-PWD\n%s\n%s", random, card_wu.pwd);
	blob = card_sign(card_wu.no, msg, strlen(msg));
	assert_int_equal(
	    conn_nhi_verify(c, card_wu.no, card_wu.id, random, a.sig, a.cert, blob, NULL, NULL),
	    NHI_SIGNATURE);
	free(blob);
	/* encrypted to another key (the card's own) */
	blob = encrypt_to("nhi/000012340011.crt", msg, strlen(msg));
	assert_int_equal(
	    conn_nhi_verify(c, card_wu.no, card_wu.id, random, a.sig, a.cert, blob, NULL, NULL),
	    NHI_SIGNATURE);
	free(blob);
	/* without the prefix; the random without its line end */
	snprintf(msg, sizeof(msg), "NHI-PWx\n%s\n%s", random, card_wu.pwd);
	blob = encrypt_to("nhi-service.crt", msg, strlen(msg));
	assert_int_equal(
	    conn_nhi_verify(c, card_wu.no, card_wu.id, random, a.sig, a.cert, blob, NULL, NULL),
	    NHI_SIGNATURE);
	free(blob);
	snprintf(msg, sizeof(msg), "NHI-PWD\n%s%s", random, card_wu.pwd);
	blob = encrypt_to("nhi-service.crt", msg, strlen(msg));
	assert_int_equal(
	    conn_nhi_verify(c, card_wu.no, card_wu.id, random, a.sig, a.cert, blob, NULL, NULL),
	    NHI_SIGNATURE);
	free(blob);
	/* not an encryption at all */
	assert_int_equal(
	    conn_nhi_verify(c, card_wu.no, card_wu.id, random, a.sig, a.cert, "AAAA", NULL, NULL),
	    NHI_SIGNATURE);
	/* a NUL after the right password is no match by truncation */
	blob = encrypt_to("nhi-service.crt", nul_pwd, sizeof(nul_pwd) - 1);
	sig = card_sign(card_wu.no, "RND", 3);
	assert_int_equal(
	    conn_nhi_verify(c, card_wu.no, card_wu.id, "RND", sig, NULL, blob, NULL, NULL),
	    NHI_SIGNATURE);
	free(sig);
	free(blob);
	answer_free(&b);
	/* none of this counted, and the random is still fresh */
	b = card_answer(card_wu.no, random, "wrong-pw");
	o.tries_left = 7;
	o.retry_after = 7;
	o.r = conn_nhi_verify(c, card_wu.no, card_wu.id, random, a.sig, a.cert, b.blob,
	                      &o.tries_left, &o.retry_after);
	assert_int_equal(o.r, NHI_PASSWORD);
	assert_int_equal(o.tries_left, 2);
	/* that one was spent */
	assert_int_equal(
	    conn_nhi_verify(c, card_wu.no, card_wu.id, random, a.sig, a.cert, a.blob, NULL, NULL),
	    NHI_SIGNATURE);
	/* a password that differs only in length */
	assert_int_equal(verify(c, &card_wu, NULL, "jiahao111").tries_left, 1);
	assert_int_equal(verify(c, &card_wu, NULL, card_wu.pwd).r, NHI_OK);
	answer_free(&a);
	answer_free(&b);
	conn_nhi_free(c);
}

static void
test_bad_credentials(void **state)
{
	struct conn_nhi *c = sim_connector("wrong-secret", 3000);
	struct conn_nhi *other = conn_nhi_new(nhi_base, "someone", CLIENT_SECRET, 3000);

	assert_int_equal(verify(c, &card_wang, NULL, card_wang.pwd).r, NHI_ERROR);
	assert_int_equal(verify(other, &card_wang, NULL, card_wang.pwd).r, NHI_ERROR);
	conn_nhi_free(c);
	conn_nhi_free(other);
}

static void
test_invalid_input(void **state)
{
	struct conn_nhi *c = sim_connector(CLIENT_SECRET, 3000);
	struct answer a;
	char random[44], long_random[140];
	int tries = 7, retry = 7;

	new_random(random);
	a = card_answer(card_wang.no, random, card_wang.pwd);
	memset(long_random, 'a', 129);
	long_random[129] = '\0';
	assert_int_equal(conn_nhi_verify(NULL, card_wang.no, card_wang.id, random, a.sig, a.cert,
	                                 a.blob, &tries, &retry),
	                 NHI_ERROR);
	assert_int_equal(tries, -1);
	assert_int_equal(retry, -1);
	assert_int_equal(conn_nhi_verify(c, "00001234000", card_wang.id, random, a.sig, a.cert,
	                                 a.blob, NULL, NULL),
	                 NHI_ERROR);
	assert_int_equal(conn_nhi_verify(c, "00001234000x", card_wang.id, random, a.sig, a.cert,
	                                 a.blob, NULL, NULL),
	                 NHI_ERROR);
	assert_int_equal(conn_nhi_verify(c, card_wang.no, "A123456788", random, a.sig, a.cert,
	                                 a.blob, NULL, NULL),
	                 NHI_ERROR);
	assert_int_equal(conn_nhi_verify(c, card_wang.no, card_wang.id, "a b", a.sig, a.cert,
	                                 a.blob, NULL, NULL),
	                 NHI_ERROR);
	assert_int_equal(
	    conn_nhi_verify(c, card_wang.no, card_wang.id, "", a.sig, a.cert, a.blob, NULL, NULL),
	    NHI_ERROR);
	assert_int_equal(conn_nhi_verify(c, card_wang.no, card_wang.id, long_random, a.sig, a.cert,
	                                 a.blob, NULL, NULL),
	                 NHI_ERROR);
	assert_int_equal(conn_nhi_verify(c, card_wang.no, card_wang.id, random, NULL, a.cert,
	                                 a.blob, NULL, NULL),
	                 NHI_ERROR);
	assert_int_equal(conn_nhi_verify(c, card_wang.no, card_wang.id, random, "a\"b", a.cert,
	                                 a.blob, NULL, NULL),
	                 NHI_ERROR);
	assert_int_equal(
	    conn_nhi_verify(c, card_wang.no, card_wang.id, random, a.sig, a.cert, "", NULL, NULL),
	    NHI_ERROR);
	assert_int_equal(
	    conn_nhi_verify(c, card_wang.no, card_wang.id, random, a.sig, "*", a.blob, NULL, NULL),
	    NHI_ERROR);
	/* nothing was sent: the random is still fresh */
	assert_int_equal(conn_nhi_verify(c, card_wang.no, card_wang.id, random, a.sig, a.cert,
	                                 a.blob, NULL, NULL),
	                 NHI_OK);
	answer_free(&a);

	assert_null(conn_nhi_new("file:///etc/passwd", CLIENT_ID, CLIENT_SECRET, 0));
	assert_null(conn_nhi_new("http://127.0.0.1/nhi#x", CLIENT_ID, CLIENT_SECRET, 0));
	assert_null(conn_nhi_new(NULL, CLIENT_ID, CLIENT_SECRET, 0));
	assert_null(conn_nhi_new(nhi_base, CLIENT_ID, "", 0));
	conn_nhi_free(c);
}

/* A POST of JSON text to the simulator; returns the HTTP status and the
 * reply's "error" (static copy). */
static long
post_raw(const char *userpwd, const char *body, char error_r[32])
{
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *curl = curl_easy_init();
	char url[128];
	FILE *mem;
	char *reply = NULL;
	size_t reply_len = 0;
	json_t *j;
	long status = 0;

	assert_non_null(curl);
	mem = open_memstream(&reply, &reply_len);
	assert_non_null(mem);
	snprintf(url, sizeof(url), "%s/v1/verify", nhi_base);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, mem);
	if (userpwd != NULL)
		curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd);
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	fclose(mem);
	j = json_loadb(reply, reply_len, 0, NULL);
	snprintf(error_r, 32, "%s",
	         json_string_value(json_object_get(j, "error")) != NULL
	             ? json_string_value(json_object_get(j, "error"))
	             : "");
	json_decref(j);
	free(reply);
	return status;
}

static void
test_sim_refuses_bad_requests(void **state)
{
	static const char *const bodies[] = {
	    "nope",
	    "{}",
	    "{\"card_no\":\"000012340001\",\"national_id\":\"A123456789\",\"random\":\"abc\","
	    "\"signature\":\"AAAA\"}",
	    "{\"card_no\":\"00001234000\",\"national_id\":\"A123456789\",\"random\":\"abc\","
	    "\"signature\":\"AAAA\",\"password_blob\":\"AAAA\"}",
	    "{\"card_no\":\"000012340001\",\"national_id\":\"A12345678\",\"random\":\"abc\","
	    "\"signature\":\"AAAA\",\"password_blob\":\"AAAA\"}",
	    "{\"card_no\":\"000012340001\",\"national_id\":\"A123456789\",\"random\":\"a c\","
	    "\"signature\":\"AAAA\",\"password_blob\":\"AAAA\"}",
	    "{\"card_no\":\"000012340001\",\"national_id\":\"A123456789\",\"random\":\"abc\","
	    "\"signature\":\"AA AA\",\"password_blob\":\"AAAA\"}",
	    "{\"card_no\":\"000012340001\",\"national_id\":\"A123456789\",\"random\":\"abc\","
	    "\"signature\":\"AAAA\",\"password_blob\":\"AAAA\",\"cert\":12}",
	};
	char error[32];

	for (size_t i = 0; i < ISSO_N_ELEMENTS(bodies); i++) {
		assert_int_equal(post_raw(CLIENT_ID ":" CLIENT_SECRET, bodies[i], error), 400);
		assert_string_equal(error, "invalid_request");
	}
	assert_int_equal(post_raw(NULL, "{}", error), 401);
	assert_string_equal(error, "invalid_client");
	assert_int_equal(post_raw(CLIENT_ID ":nope", "{}", error), 401);
}

/* ---- peers that are not the simulator ---- */

static void
test_unreachable_is_error(void **state)
{
	int port, fd = loopback_socket(-1, &port);
	struct conn_nhi *c;
	char url[96];

	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/nhi", port);
	c = conn_nhi_new(url, CLIENT_ID, CLIENT_SECRET, 2000);
	assert_non_null(c);
	assert_int_equal(verify(c, &card_wang, NULL, card_wang.pwd).r, NHI_ERROR);
	conn_nhi_free(c);
}

static void
test_silent_peer_times_out(void **state)
{
	int port, fd = loopback_socket(8, &port); /* the kernel accepts, nobody answers */
	struct conn_nhi *c;
	struct timespec t0;
	char url[96];
	long ms;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/nhi", port);
	c = conn_nhi_new(url, CLIENT_ID, CLIENT_SECRET, 700);
	assert_non_null(c);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(verify(c, &card_wang, NULL, card_wang.pwd).r, NHI_ERROR);
	ms = ms_since(&t0);
	assert_true(ms >= 600 && ms < 2500);
	conn_nhi_free(c);
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
		enum nhi_result want;
		int tries_left, retry_after;
	} cases[] = {
	    {HTTP_OK "{\"result\":\"ok\"}", NHI_OK, -1, -1},
	    {HTTP_OK "{\"result\":\"fail\",\"reason\":\"signature\"}", NHI_SIGNATURE, -1, -1},
	    {HTTP_OK "{\"result\":\"fail\",\"reason\":\"mismatch\"}", NHI_MISMATCH, -1, -1},
	    {HTTP_OK "{\"result\":\"fail\",\"reason\":\"password\",\"tries_left\":2}", NHI_PASSWORD,
	     2, -1},
	    {HTTP_OK "{\"result\":\"fail\",\"reason\":\"password\",\"tries_left\":1}", NHI_PASSWORD,
	     1, -1},
	    {HTTP_OK "{\"result\":\"fail\",\"reason\":\"password\",\"tries_left\":0}", NHI_ERROR,
	     -1, -1},
	    {HTTP_OK "{\"result\":\"fail\",\"reason\":\"password\",\"tries_left\":3}", NHI_ERROR,
	     -1, -1},
	    {HTTP_OK "{\"result\":\"fail\",\"reason\":\"password\"}", NHI_ERROR, -1, -1},
	    {HTTP_OK "{\"result\":\"fail\",\"reason\":\"password\",\"tries_left\":\"2\"}",
	     NHI_ERROR, -1, -1},
	    {HTTP_OK "{\"result\":\"fail\",\"reason\":\"suspended\",\"retry_after\":600}",
	     NHI_SUSPENDED, -1, 600},
	    {HTTP_OK "{\"result\":\"fail\",\"reason\":\"suspended\",\"retry_after\":0}", NHI_ERROR,
	     -1, -1},
	    {HTTP_OK "{\"result\":\"fail\",\"reason\":\"suspended\",\"retry_after\":999999}",
	     NHI_ERROR, -1, -1},
	    {HTTP_OK "{\"result\":\"fail\",\"reason\":\"suspended\"}", NHI_ERROR, -1, -1},
	    {HTTP_OK "{\"result\":\"fail\",\"reason\":\"tired\"}", NHI_ERROR, -1, -1},
	    {HTTP_OK "{\"result\":\"fail\"}", NHI_ERROR, -1, -1},
	    {HTTP_OK "{\"result\":\"OK\"}", NHI_ERROR, -1, -1},
	    {HTTP_OK "{\"result\":\"ok\",\"result\":\"ok\"}", NHI_ERROR, -1, -1},
	    {HTTP_OK "[]", NHI_ERROR, -1, -1},
	    {HTTP_OK "", NHI_ERROR, -1, -1},
	    {"HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n",
	     NHI_ERROR, -1, -1},
	    {"HTTP/1.1 503 Busy\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
	     "{\"result\":\"ok\"}",
	     NHI_ERROR, -1, -1},
	    {big, NHI_ERROR, -1, -1},
	};
	struct answer a;
	char url[96], random[44];

	snprintf(big, sizeof(big), HTTP_OK "{\"result\":\"ok\",\"pad\":\"%05000d\"}", 0);
	new_random(random);
	a = card_answer(card_wang.no, random, card_wang.pwd);
	for (size_t i = 0; i < ISSO_N_ELEMENTS(cases); i++) {
		struct fake_peer fp = {.reply = cases[i].reply};
		struct conn_nhi *c;
		pthread_t th;
		int port, tries = 7, retry = 7;

		fp.fd = loopback_socket(8, &port);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/nhi", port);
		c = conn_nhi_new(url, CLIENT_ID, CLIENT_SECRET, 2000);
		assert_non_null(c);
		assert_int_equal(pthread_create(&th, NULL, fake_peer_thread, &fp), 0);
		assert_int_equal(conn_nhi_verify(c, card_wang.no, card_wang.id, random, a.sig,
		                                 a.cert, a.blob, &tries, &retry),
		                 cases[i].want);
		assert_int_equal(tries, cases[i].tries_left);
		assert_int_equal(retry, cases[i].retry_after);
		pthread_join(th, NULL);
		conn_nhi_free(c);
		close(fp.fd);
	}
	answer_free(&a);
}

static void
test_names(void **state)
{
	assert_string_equal(nhi_result_name(NHI_OK), "ok");
	assert_string_equal(nhi_result_name(NHI_SIGNATURE), "signature");
	assert_string_equal(nhi_result_name(NHI_MISMATCH), "mismatch");
	assert_string_equal(nhi_result_name(NHI_PASSWORD), "password");
	assert_string_equal(nhi_result_name(NHI_SUSPENDED), "suspended");
	assert_string_equal(nhi_result_name(NHI_ERROR), "error");
	assert_string_equal(nhi_result_name((enum nhi_result)42), "?");
}

/* The suspension is 1 s to a day. */
static void
test_sim_bad_suspension(void **state)
{
	static const char *const bad_suspend[] = {"serve", "--port", "0", "--nhi-suspend-seconds",
	                                          "86401", NULL};

	assert_int_equal(run_sim(bad_suspend, 5000), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok),
	    cmocka_unit_test(test_signature),
	    cmocka_unit_test(test_mismatch),
	    cmocka_unit_test(test_password_then_suspended),
	    cmocka_unit_test(test_ok_resets_count),
	    cmocka_unit_test(test_replayed_random),
	    cmocka_unit_test(test_blob),
	    cmocka_unit_test(test_bad_credentials),
	    cmocka_unit_test(test_invalid_input),
	    cmocka_unit_test(test_sim_refuses_bad_requests),
	    cmocka_unit_test(test_unreachable_is_error),
	    cmocka_unit_test(test_silent_peer_times_out),
	    cmocka_unit_test(test_reply_parsing),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_sim_bad_suspension),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("nhi", tests, sim_start, sim_stop);
}
