/* Tests for card certificate verification (conn/cardpki) against the test
 * PKI of scripts/test-pki.sh (pki-dir.h: <builddir>/tests/cardpki-pki, or
 * $ISSO_TEST_PKI) with the real isso-sim answering OCSP and serving the
 * CRL. Signatures are made here with the cards' key files; certificates the
 * PKI lacks (wrong key usage, not yet valid, no name) are issued here by
 * the test MOICA CA; hand-made peers (a closed port, a silent socket,
 * canned replies) cover what the simulator never does. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pki-dir.h"
#include "sim-child.h"
#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "conn/cardpki.h"
#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/log.h"

#define CARD_OK      "TP03000000000001" /* 王小明 A123456789 */
#define CARD_OK2     "TP03000000000002" /* 陳美玲 */
#define CARD_REVOKED "TP03000000000005" /* 黃建國, status revoked */
#define CARD_EXPIRED "TP03000000000010" /* 楊佩珊, status expired */
#define CARD_ROGUE   "ROGUE00000000001" /* 王小明's name, issued by the look-alike CA */
#define TBS          "isso-challenge:3q2+7wABAgMEBQYHCAkKCw"

static char roots_path[PATH_MAX + 32], chain_path[PATH_MAX + 32];
static char ocsp_url[128], crl_url[128];

/* ---- files and encodings ---- */

static void
pki_path(char *out, size_t size, const char *rel)
{
	snprintf(out, size, "%s/%s", pki_dir, rel);
}

static X509 *
card_cert(const char *sn)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "moica/%s.crt", sn);
	return pki_cert(rel);
}

static EVP_PKEY *
card_key(const char *sn)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "moica/%s.key", sn);
	return pki_key(rel);
}

static char *
b64_of(const void *data, size_t len)
{
	char *s = malloc(len / 3 * 4 + 5);

	assert_non_null(s);
	return b64_encode(data, len, s);
}

static char *
cert_b64(X509 *x)
{
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);
	char *s;

	assert_true(len > 0);
	s = b64_of(der, (size_t)len);
	OPENSSL_free(der);
	return s;
}

static char *
sign_pkcs1(EVP_PKEY *key, const void *tbs, size_t len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[1024];
	size_t sig_len = sizeof(sig);

	assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &sig_len, tbs, len), 1);
	EVP_MD_CTX_free(md);
	return b64_of(sig, sig_len);
}

static char *
p7_b64(PKCS7 *p7)
{
	unsigned char *der = NULL;
	int len = i2d_PKCS7(p7, &der);
	char *s;

	assert_true(len > 0);
	s = b64_of(der, (size_t)len);
	OPENSSL_free(der);
	return s;
}

/* PKCS#7 SignedData, content attached, signed attributes, SHA-256 unless
 * md says otherwise; extra certificates (may be NULL) added inside. */
static PKCS7 *
make_pkcs7(X509 *cert, EVP_PKEY *key, const EVP_MD *md, const void *content, size_t len, int flags,
           STACK_OF(X509) *extra)
{
	BIO *in = BIO_new_mem_buf(content, (int)len);
	PKCS7 *p7;

	p7 = PKCS7_sign(NULL, NULL, extra, in, PKCS7_BINARY | PKCS7_PARTIAL | flags);
	assert_non_null(p7);
	assert_non_null(PKCS7_sign_add_signer(p7, cert, key, md != NULL ? md : EVP_sha256(),
	                                      flags & (PKCS7_NOCERTS | PKCS7_NOATTR)));
	BIO_free(in);
	in = BIO_new_mem_buf(content, (int)len);
	assert_int_equal(PKCS7_final(p7, in, PKCS7_BINARY | flags), 1);
	BIO_free(in);
	return p7;
}

static char *
sign_pkcs7(X509 *cert, EVP_PKEY *key, const void *content, size_t len)
{
	PKCS7 *p7 = make_pkcs7(cert, key, NULL, content, len, 0, NULL);
	char *s = p7_b64(p7);

	PKCS7_free(p7);
	return s;
}

/* ---- certificates made here, issued by the test MOICA CA ---- */

struct made {
	X509 *cert;
	EVP_PKEY *key;
};

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* cn / serial_number NULL: left out; key_usage NULL: no extension;
 * validity from now + from_s to now + to_s; AIA OCSP and CDP URIs when
 * ocsp / crl are not NULL. */
static struct made
make_cert_md(const char *cn, const char *serial_number, const char *key_usage, long from_s,
             long to_s, const char *ocsp, const char *crl, const EVP_MD *md)
{
	char value[256];
	X509 *ca = pki_cert("moica.crt");
	EVP_PKEY *ca_key = pki_key("moica.key");
	struct made m = {X509_new(), EVP_RSA_gen(2048)};
	X509_NAME *name = X509_NAME_new();
	unsigned char serial[16];
	BIGNUM *bn;

	assert_non_null(m.cert);
	assert_non_null(m.key);
	assert_int_equal(X509_set_version(m.cert, X509_VERSION_3), 1);
	assert_int_equal(RAND_bytes(serial, sizeof(serial)), 1);
	serial[0] = (serial[0] & 0x7f) | 0x10;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(m.cert)));
	BN_free(bn);
	X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"TW", -1, -1, 0);
	if (cn != NULL)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
		                           -1, 0);
	if (serial_number != NULL)
		X509_NAME_add_entry_by_txt(name, "serialNumber", MBSTRING_ASC,
		                           (const unsigned char *)serial_number, -1, -1, 0);
	assert_int_equal(X509_set_subject_name(m.cert, name), 1);
	X509_NAME_free(name);
	assert_int_equal(X509_set_issuer_name(m.cert, X509_get_subject_name(ca)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(m.cert), from_s));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(m.cert), to_s));
	assert_int_equal(X509_set_pubkey(m.cert, m.key), 1);
	add_ext(m.cert, ca, NID_basic_constraints, "critical,CA:FALSE");
	if (key_usage != NULL)
		add_ext(m.cert, ca, NID_key_usage, key_usage);
	add_ext(m.cert, ca, NID_subject_key_identifier, "hash");
	add_ext(m.cert, ca, NID_authority_key_identifier, "keyid");
	if (ocsp != NULL) {
		snprintf(value, sizeof(value), "OCSP;URI:%s", ocsp);
		add_ext(m.cert, ca, NID_info_access, value);
	}
	if (crl != NULL) {
		snprintf(value, sizeof(value), "URI:%s", crl);
		add_ext(m.cert, ca, NID_crl_distribution_points, value);
	}
	assert_true(X509_sign(m.cert, ca_key, md) > 0);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return m;
}

static struct made
make_cert_ex(const char *cn, const char *serial_number, const char *key_usage, long from_s,
             long to_s, const char *ocsp, const char *crl)
{
	return make_cert_md(cn, serial_number, key_usage, from_s, to_s, ocsp, crl, EVP_sha256());
}

static struct made
make_cert(const char *cn, const char *serial_number, const char *key_usage, long from_s, long to_s)
{
	return make_cert_ex(cn, serial_number, key_usage, from_s, to_s, NULL, NULL);
}

static void
made_free(struct made *m)
{
	X509_free(m->cert);
	EVP_PKEY_free(m->key);
}

/* ---- verifying ---- */

static struct cardpki *
pki_new(const char *revocation, const char *ocsp, const char *crl, int timeout_ms,
        int crl_cache_seconds)
{
	struct cardpki_settings s = {
	    .roots_file = roots_path,
	    .intermediates_file = chain_path,
	    .ocsp_url = ocsp,
	    .crl_url = crl,
	    .revocation = revocation,
	    .timeout_ms = timeout_ms,
	    .crl_cache_seconds = crl_cache_seconds,
	};
	struct cardpki *pki = NULL;
	const char *error = NULL;

	if (cardpki_new(&s, &pki, &error) != 0)
		fail_msg("cardpki_new: %s", error);
	return pki;
}

static struct cardpki *
pki_sim(const char *revocation)
{
	return pki_new(revocation, ocsp_url, crl_url, 3000, 60);
}

/* Verifies a signature by card sn over TBS (PKCS1 or PKCS7). */
static enum cardpki_verdict
verify_card(struct cardpki *pki, const char *sn, const char *type, struct cardpki_holder *h)
{
	X509 *x = card_cert(sn);
	EVP_PKEY *k = card_key(sn);
	char *cert = cert_b64(x), *sig;
	enum cardpki_verdict v;

	if (strcmp(type, "PKCS1") == 0)
		sig = sign_pkcs1(k, TBS, strlen(TBS));
	else
		sig = sign_pkcs7(x, k, TBS, strlen(TBS));
	v = cardpki_verify(pki, type, sig, strcmp(type, "PKCS1") == 0 ? cert : NULL,
	                   (const unsigned char *)TBS, strlen(TBS), h);
	free(sig);
	free(cert);
	X509_free(x);
	EVP_PKEY_free(k);
	return v;
}

static void
verdict_is(enum cardpki_verdict got, enum cardpki_verdict want, int line)
{
	if (got != want)
		fail_msg("line %d: verdict %s, expected %s", line, cardpki_verdict_name(got),
		         cardpki_verdict_name(want));
}

#define assert_verdict(got, want) verdict_is((got), (want), __LINE__)

/* ---- a hand-made HTTP peer: answers every request with one canned
 * reply and counts the requests ---- */

struct peer {
	int fd, port;
	pthread_t thread;
	volatile int stop;
	int requests;
	pthread_mutex_t lock;
	char *reply;
	size_t reply_len;
};

static void *
peer_thread(void *arg)
{
	struct peer *p = arg;

	while (!p->stop) {
		struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
		char req[65536];
		size_t got = 0;
		int c;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		c = accept(p->fd, NULL, NULL);
		if (c < 0)
			continue;
		/* the request: headers, then Content-Length bytes */
		for (;;) {
			ssize_t n = recv(c, req + got, sizeof(req) - 1 - got, 0);
			char *end, *cl;
			size_t want;

			if (n <= 0)
				break;
			got += (size_t)n;
			req[got] = '\0';
			end = strstr(req, "\r\n\r\n");
			if (end == NULL)
				continue;
			cl = strcasestr(req, "Content-Length:");
			want =
			    (size_t)(end + 4 - req) + (cl != NULL ? strtoul(cl + 15, NULL, 10) : 0);
			if (got >= want)
				break;
		}
		pthread_mutex_lock(&p->lock);
		p->requests++;
		for (size_t off = 0; off < p->reply_len;) {
			ssize_t n = send(c, p->reply + off, p->reply_len - off, MSG_NOSIGNAL);

			if (n <= 0)
				break;
			off += (size_t)n;
		}
		pthread_mutex_unlock(&p->lock);
		close(c);
	}
	return NULL;
}

/* From now on the peer answers "HTTP/1.1 <status>" with body (of type). */
static void
peer_reply(struct peer *p, const char *status, const char *type, const void *body, size_t len)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head),
	             "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	             "Location: %s\r\nConnection: close\r\n\r\n",
	             status, type, len, crl_url);
	pthread_mutex_lock(&p->lock);
	free(p->reply);
	p->reply = malloc((size_t)n + len);
	memcpy(p->reply, head, (size_t)n);
	memcpy(p->reply + n, body, len);
	p->reply_len = (size_t)n + len;
	pthread_mutex_unlock(&p->lock);
}

static void
peer_start(struct peer *p, const char *status, const char *type, const void *body, size_t len)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	peer_reply(p, status, type, body, len);
	p->fd = loopback_socket(16, &p->port);
	assert_int_equal(pthread_create(&p->thread, NULL, peer_thread, p), 0);
}

static void
peer_url(const struct peer *p, char *out, size_t size)
{
	snprintf(out, size, "http://127.0.0.1:%d/x", p->port);
}

static int
peer_requests(struct peer *p)
{
	int n;

	pthread_mutex_lock(&p->lock);
	n = p->requests;
	pthread_mutex_unlock(&p->lock);
	return n;
}

static void
peer_stop(struct peer *p)
{
	p->stop = 1;
	pthread_join(p->thread, NULL);
	close(p->fd);
	free(p->reply);
	pthread_mutex_destroy(&p->lock);
}

/* ---- CRLs and OCSP responses made here ---- */

static size_t
collect(char *data, size_t size, size_t n, void *ctx)
{
	struct {
		unsigned char *p;
		size_t len;
	} *b = ctx;

	b->p = realloc(b->p, b->len + size * n);
	memcpy(b->p + b->len, data, size * n);
	b->len += size * n;
	return size * n;
}

/* The simulator's CRL, DER (malloc'd). */
static unsigned char *
fetch_sim_crl(size_t *len_r)
{
	struct {
		unsigned char *p;
		size_t len;
	} b = {NULL, 0};
	CURL *curl = curl_easy_init();
	long status = 0;

	curl_easy_setopt(curl, CURLOPT_URL, crl_url);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	assert_int_equal(curl_easy_perform(curl), CURLE_OK);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	assert_int_equal(status, 200);
	*len_r = b.len;
	return b.p;
}

/* A CRL of issuer (signed with key) listing revoked (may be NULL), valid
 * from now + from_s to now + to_s, a partition for the distribution point
 * idp when not NULL; DER, malloc'd. */
static unsigned char *
make_crl_idp(X509 *issuer, EVP_PKEY *key, X509 *revoked, long from_s, long to_s, const char *idp,
             size_t *len_r)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	unsigned char *der = NULL, *out;
	int len;

	assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
	assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), 1);
	X509_gmtime_adj(t, from_s);
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
	X509_gmtime_adj(t, to_s);
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	if (revoked != NULL) {
		X509_REVOKED *r = X509_REVOKED_new();

		X509_gmtime_adj(t, -60);
		X509_REVOKED_set_serialNumber(r, (ASN1_INTEGER *)X509_get0_serialNumber(revoked));
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
	}
	if (idp != NULL) {
		char value[256];
		X509_EXTENSION *ext;

		snprintf(value, sizeof(value), "critical,fullname:URI:%s,onlyuser:TRUE", idp);
		ext = X509V3_EXT_conf_nid(NULL, NULL, NID_issuing_distribution_point, value);
		assert_non_null(ext);
		assert_int_equal(X509_CRL_add_ext(crl, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	X509_CRL_sort(crl);
	assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
	len = i2d_X509_CRL(crl, &der);
	assert_true(len > 0);
	out = malloc((size_t)len);
	memcpy(out, der, (size_t)len);
	*len_r = (size_t)len;
	OPENSSL_free(der);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return out;
}

static unsigned char *
make_crl(X509 *issuer, EVP_PKEY *key, X509 *revoked, long from_s, long to_s, size_t *len_r)
{
	return make_crl_idp(issuer, key, revoked, from_s, to_s, NULL, len_r);
}

/* An OCSP response for card (issued by moica.crt) with status, signed by
 * signer / key (signer included), with a nonce when nonce is set (a random
 * one: never the request's) and a nextUpdate when next_s > 0. */
static unsigned char *
make_ocsp(X509 *card, int status, X509 *signer, EVP_PKEY *key, bool nonce, long next_s,
          size_t *len_r)
{
	X509 *ca = pki_cert("moica.crt");
	OCSP_CERTID *id = OCSP_cert_to_id(NULL, card, ca);
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	OCSP_RESPONSE *resp;
	ASN1_TIME *now = X509_gmtime_adj(NULL, 0), *next = X509_gmtime_adj(NULL, next_s);
	unsigned char *der = NULL, *out;
	int len;

	assert_non_null(OCSP_basic_add1_status(bs, id, status, 0, status == 1 ? now : NULL, now,
	                                       next_s > 0 ? next : NULL));
	if (nonce)
		assert_int_equal(OCSP_basic_add1_nonce(bs, NULL, -1), 1);
	assert_int_equal(OCSP_basic_sign(bs, signer, key, EVP_sha256(), NULL, 0), 1);
	resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	len = i2d_OCSP_RESPONSE(resp, &der);
	assert_true(len > 0);
	out = malloc((size_t)len);
	memcpy(out, der, (size_t)len);
	*len_r = (size_t)len;
	OPENSSL_free(der);
	OCSP_RESPONSE_free(resp);
	OCSP_BASICRESP_free(bs);
	OCSP_CERTID_free(id);
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	X509_free(ca);
	return out;
}

/* Verdict for CARD_OK by PKCS1 with OCSP only at a peer answering body. */
static enum cardpki_verdict
verdict_with_ocsp_reply(const void *body, size_t len)
{
	struct peer p;
	struct cardpki *pki;
	char url[64];
	enum cardpki_verdict v;

	peer_start(&p, "200 OK", "application/ocsp-response", body, len);
	peer_url(&p, url, sizeof(url));
	pki = pki_new("ocsp", url, NULL, 2000, 0);
	v = verify_card(pki, CARD_OK, "PKCS1", NULL);
	assert_int_equal(peer_requests(&p), 1);
	cardpki_free(pki);
	peer_stop(&p);
	return v;
}

static enum cardpki_verdict
verdict_with_crl_reply(const char *sn, const void *body, size_t len)
{
	struct peer p;
	struct cardpki *pki;
	char url[64];
	enum cardpki_verdict v;

	peer_start(&p, "200 OK", "application/pkix-crl", body, len);
	peer_url(&p, url, sizeof(url));
	pki = pki_new("crl", NULL, url, 2000, 0);
	v = verify_card(pki, sn, "PKCS1", NULL);
	cardpki_free(pki);
	peer_stop(&p);
	return v;
}

/* ---- tests ---- */

static void
test_pkcs1_ok(void **state)
{
	struct cardpki *pki = pki_sim("ocsp,crl");
	struct cardpki_holder h;
	X509 *x = card_cert(CARD_OK), *ca = pki_cert("moica.crt");
	char serial_hex[80], ski_hex[130];

	assert_verdict(verify_card(pki, CARD_OK, "PKCS1", &h), CARDPKI_OK);
	assert_string_equal(h.name, "王小明");
	assert_string_equal(h.id_last4, "6789");
	pki_serial_hex(x, serial_hex);
	assert_string_equal(h.serial_hex, serial_hex);
	pki_keyid_hex(X509_get0_subject_key_id(ca), ski_hex);
	assert_string_equal(h.issuer_key_id_hex, ski_hex);

	assert_verdict(verify_card(pki, CARD_OK2, "PKCS1", &h), CARDPKI_OK);
	assert_string_equal(h.name, "陳美玲");
	assert_string_equal(h.id_last4, "6781");
	X509_free(x);
	X509_free(ca);
	cardpki_free(pki);
}

static void
test_pkcs7_ok(void **state)
{
	struct cardpki *pki = pki_sim("ocsp,crl");
	struct cardpki_holder h;
	X509 *x = card_cert(CARD_OK), *other = card_cert(CARD_OK2);
	EVP_PKEY *k = card_key(CARD_OK);
	char *sig = sign_pkcs7(x, k, TBS, strlen(TBS)), *cert = cert_b64(x),
	     *other_b64 = cert_b64(other);

	assert_verdict(verify_card(pki, CARD_OK, "PKCS7", &h), CARDPKI_OK);
	assert_string_equal(h.name, "王小明");
	assert_string_equal(h.id_last4, "6789");
	/* the certificate given with it must be the signer's */
	assert_verdict(
	    cardpki_verify(pki, "PKCS7", sig, cert, (const unsigned char *)TBS, strlen(TBS), &h),
	    CARDPKI_OK);
	assert_verdict(cardpki_verify(pki, "PKCS7", sig, other_b64, (const unsigned char *)TBS,
	                              strlen(TBS), &h),
	               CARDPKI_BAD_SIGNATURE);
	assert_string_equal(h.name, "");
	/* without signed attributes the signature is over the content itself */
	{
		PKCS7 *p7 = make_pkcs7(x, k, NULL, TBS, strlen(TBS), PKCS7_NOATTR, NULL);
		char *plain = p7_b64(p7);

		assert_verdict(cardpki_verify(pki, "PKCS7", plain, NULL, (const unsigned char *)TBS,
		                              strlen(TBS), &h),
		               CARDPKI_OK);
		assert_string_equal(h.id_last4, "6789");
		free(plain);
		PKCS7_free(p7);
	}
	free(sig);
	free(cert);
	free(other_b64);
	X509_free(x);
	X509_free(other);
	EVP_PKEY_free(k);
	cardpki_free(pki);
}

static void
test_tampered_signature(void **state)
{
	struct cardpki *pki = pki_new("none", NULL, NULL, 0, 0);
	X509 *x = card_cert(CARD_OK);
	EVP_PKEY *k = card_key(CARD_OK), *k2 = card_key(CARD_OK2);
	char *cert = cert_b64(x), *sig;
	unsigned char raw[8192];
	long n;
	PKCS7 *p7;
	unsigned char *der = NULL;
	int len;

	/* a flipped bit in a PKCS1 signature */
	sig = sign_pkcs1(k, TBS, strlen(TBS));
	n = b64_decode(sig, strlen(sig), raw, sizeof(raw));
	assert_true(n > 0);
	raw[n / 2] ^= 0x01;
	free(sig);
	sig = b64_of(raw, (size_t)n);
	assert_verdict(
	    cardpki_verify(pki, "PKCS1", sig, cert, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_BAD_SIGNATURE);
	free(sig);
	/* a good signature over something else */
	sig = sign_pkcs1(k, "another challenge", 17);
	assert_verdict(
	    cardpki_verify(pki, "PKCS1", sig, cert, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_BAD_SIGNATURE);
	free(sig);
	/* another card's key with this card's certificate */
	sig = sign_pkcs1(k2, TBS, strlen(TBS));
	assert_verdict(
	    cardpki_verify(pki, "PKCS1", sig, cert, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_BAD_SIGNATURE);
	free(sig);
	/* PKCS7: the signature value is the last thing in the DER */
	p7 = make_pkcs7(x, k, NULL, TBS, strlen(TBS), 0, NULL);
	len = i2d_PKCS7(p7, &der);
	der[len - 3] ^= 0x40;
	sig = b64_of(der, (size_t)len);
	assert_verdict(
	    cardpki_verify(pki, "PKCS7", sig, NULL, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_BAD_SIGNATURE);
	free(sig);
	OPENSSL_free(der);
	PKCS7_free(p7);
	/* PKCS7 signed by another card's key, naming this card as the signer */
	{
		X509 *x2 = card_cert(CARD_OK2);
		PKCS7_SIGNER_INFO *si;

		p7 = make_pkcs7(x2, k2, NULL, TBS, strlen(TBS), 0, NULL);
		si = sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7), 0);
		assert_int_equal(
		    ASN1_STRING_copy(si->issuer_and_serial->serial, X509_get0_serialNumber(x)), 1);
		assert_int_equal(PKCS7_add_certificate(p7, x), 1);
		sig = p7_b64(p7);
		assert_verdict(cardpki_verify(pki, "PKCS7", sig, NULL, (const unsigned char *)TBS,
		                              strlen(TBS), NULL),
		               CARDPKI_BAD_SIGNATURE);
		free(sig);
		PKCS7_free(p7);
		X509_free(x2);
	}

	free(cert);
	X509_free(x);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	cardpki_free(pki);
}

static void
test_content_mismatch(void **state)
{
	struct cardpki *pki = pki_new("none", NULL, NULL, 0, 0);
	X509 *x = card_cert(CARD_OK);
	EVP_PKEY *k = card_key(CARD_OK);
	char *sig;

	sig = sign_pkcs7(x, k, "isso-challenge:an-older-one", 27);
	assert_verdict(
	    cardpki_verify(pki, "PKCS7", sig, NULL, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_CONTENT_MISMATCH);
	free(sig);
	/* the challenge with one more byte, and one byte less */
	sig = sign_pkcs7(x, k, TBS "x", strlen(TBS) + 1);
	assert_verdict(
	    cardpki_verify(pki, "PKCS7", sig, NULL, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_CONTENT_MISMATCH);
	free(sig);
	sig = sign_pkcs7(x, k, TBS, strlen(TBS) - 1);
	assert_verdict(
	    cardpki_verify(pki, "PKCS7", sig, NULL, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_CONTENT_MISMATCH);
	free(sig);
	X509_free(x);
	EVP_PKEY_free(k);
	cardpki_free(pki);
}

static void
test_wrong_chain(void **state)
{
	struct cardpki *pki = pki_new("none", NULL, NULL, 0, 0);
	struct cardpki_settings s = {.roots_file = roots_path, .revocation = "none"};
	struct cardpki *bare = NULL;
	X509 *rogue_root = pki_cert("rogue-root.crt"), *grca = pki_cert("grca.crt");
	X509 *moica = pki_cert("moica.crt"), *x = card_cert(CARD_OK);
	EVP_PKEY *k = card_key(CARD_OK);
	STACK_OF(X509) *extra = sk_X509_new_null();
	PKCS7 *p7;
	char *sig;

	/* the look-alike chain has our CAs' names: only the keys differ */
	assert_int_equal(
	    X509_NAME_cmp(X509_get_subject_name(rogue_root), X509_get_subject_name(grca)), 0);
	assert_verdict(verify_card(pki, CARD_ROGUE, "PKCS1", NULL), CARDPKI_WRONG_CHAIN);
	assert_verdict(verify_card(pki, CARD_ROGUE, "PKCS7", NULL), CARDPKI_WRONG_CHAIN);

	/* intermediates come from the configuration only, never from the
	 * signature: without chain.pem, a PKCS7 carrying the CA is refused */
	assert_int_equal(cardpki_new(&s, &bare, NULL), 0);
	assert_verdict(verify_card(bare, CARD_OK, "PKCS1", NULL), CARDPKI_WRONG_CHAIN);
	sk_X509_push(extra, moica);
	p7 = make_pkcs7(x, k, NULL, TBS, strlen(TBS), 0, extra);
	sig = p7_b64(p7);
	assert_verdict(
	    cardpki_verify(bare, "PKCS7", sig, NULL, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_WRONG_CHAIN);
	/* … and the same PKCS7 is fine with the configured chain */
	assert_verdict(
	    cardpki_verify(pki, "PKCS7", sig, NULL, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_OK);
	free(sig);
	PKCS7_free(p7);
	sk_X509_free(extra);

	/* the look-alike root configured instead of GRCA: our cards are foreign */
	{
		char rogue_roots[PATH_MAX + 32];
		struct cardpki *other = NULL;

		pki_path(rogue_roots, sizeof(rogue_roots), "rogue-root.crt");
		s.roots_file = rogue_roots;
		s.intermediates_file = chain_path;
		assert_int_equal(cardpki_new(&s, &other, NULL), 0);
		assert_verdict(verify_card(other, CARD_OK, "PKCS1", NULL), CARDPKI_WRONG_CHAIN);
		cardpki_free(other);
	}

	/* our CA's key, but a SHA-1 signature: too weak */
	{
		struct made m =
		    make_cert_md("王小明", "0000000000016789", "critical,digitalSignature", -60,
		                 86400, NULL, NULL, EVP_sha1());
		char *cert = cert_b64(m.cert);

		sig = sign_pkcs1(m.key, TBS, strlen(TBS));
		assert_verdict(cardpki_verify(pki, "PKCS1", sig, cert, (const unsigned char *)TBS,
		                              strlen(TBS), NULL),
		               CARDPKI_WRONG_CHAIN);
		free(sig);
		free(cert);
		made_free(&m);
	}

	cardpki_free(bare);
	X509_free(rogue_root);
	X509_free(grca);
	X509_free(moica);
	X509_free(x);
	EVP_PKEY_free(k);
	cardpki_free(pki);
}

static void
test_expired(void **state)
{
	struct cardpki *pki = pki_sim("ocsp,crl");
	struct made m;
	char *cert, *sig;

	assert_verdict(verify_card(pki, CARD_EXPIRED, "PKCS1", NULL), CARDPKI_EXPIRED);
	assert_verdict(verify_card(pki, CARD_EXPIRED, "PKCS7", NULL), CARDPKI_EXPIRED);

	m = make_cert("未來人", "0000000000991234", "critical,digitalSignature,nonRepudiation",
	              86400, 2 * 86400);
	cert = cert_b64(m.cert);
	sig = sign_pkcs1(m.key, TBS, strlen(TBS));
	assert_verdict(
	    cardpki_verify(pki, "PKCS1", sig, cert, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_NOT_YET_VALID);
	free(cert);
	free(sig);
	made_free(&m);
	cardpki_free(pki);
}

/* A certificate alone (the mobile certificate of a TW FidO result): the
 * same checks but the signature, and the same holder. */
static void
test_check_cert(void **state)
{
	struct cardpki *pki = pki_sim("ocsp,crl");
	struct cardpki_holder h;
	X509 *x;
	char *b64;
	struct made m;

	x = card_cert(CARD_OK);
	b64 = cert_b64(x);
	assert_verdict(cardpki_check_cert(pki, b64, &h), CARDPKI_OK);
	assert_string_equal(h.name, "王小明");
	assert_string_equal(h.id_last4, "6789");
	assert_true(strlen(h.serial_hex) > 0);
	free(b64);
	X509_free(x);

	static const struct {
		const char *sn;
		enum cardpki_verdict v;
	} cases[] = {
	    {CARD_ROGUE, CARDPKI_WRONG_CHAIN},
	    {CARD_EXPIRED, CARDPKI_EXPIRED},
	    {CARD_REVOKED, CARDPKI_REVOKED},
	};
	for (size_t i = 0; i < ISSO_N_ELEMENTS(cases); i++) {
		x = card_cert(cases[i].sn);
		b64 = cert_b64(x);
		assert_verdict(cardpki_check_cert(pki, b64, &h), cases[i].v);
		assert_string_equal(h.name, "");
		free(b64);
		X509_free(x);
	}
	m = make_cert("王小明", "0000000000016789", "critical,keyEncipherment", -60, 86400);
	b64 = cert_b64(m.cert);
	assert_verdict(cardpki_check_cert(pki, b64, NULL), CARDPKI_KEY_USAGE);
	free(b64);
	made_free(&m);
	assert_verdict(cardpki_check_cert(pki, "not base64!", &h), CARDPKI_MALFORMED);
	assert_verdict(cardpki_check_cert(pki, "AAAA", &h), CARDPKI_MALFORMED);
	assert_verdict(cardpki_check_cert(pki, NULL, &h), CARDPKI_MALFORMED);
	assert_verdict(cardpki_check_cert(NULL, "AAAA", &h), CARDPKI_MALFORMED);
	cardpki_free(pki);
}

static void
test_key_usage(void **state)
{
	struct cardpki *pki = pki_new("none", NULL, NULL, 0, 0);
	static const char *const usages[] = {"critical,keyEncipherment",
	                                     "critical,dataEncipherment", NULL};
	struct made m;
	char *cert, *sig;

	for (size_t i = 0; i < ISSO_N_ELEMENTS(usages); i++) {
		m = make_cert("王小明", "0000000000016789", usages[i], -60, 86400);
		cert = cert_b64(m.cert);
		sig = sign_pkcs1(m.key, TBS, strlen(TBS));
		assert_verdict(cardpki_verify(pki, "PKCS1", sig, cert, (const unsigned char *)TBS,
		                              strlen(TBS), NULL),
		               CARDPKI_KEY_USAGE);
		free(cert);
		free(sig);
		made_free(&m);
	}
	/* nonRepudiation alone is enough */
	m = make_cert("王小明", "0000000000016789", "critical,nonRepudiation", -60, 86400);
	cert = cert_b64(m.cert);
	sig = sign_pkcs1(m.key, TBS, strlen(TBS));
	assert_verdict(
	    cardpki_verify(pki, "PKCS1", sig, cert, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_OK);
	free(cert);
	free(sig);
	made_free(&m);

	/* the OCSP responder's key is for responses only */
	{
		X509 *x = pki_cert("moica-ocsp.crt");
		EVP_PKEY *k = pki_key("moica-ocsp.key");

		cert = cert_b64(x);
		sig = sign_pkcs1(k, TBS, strlen(TBS));
		assert_verdict(cardpki_verify(pki, "PKCS1", sig, cert, (const unsigned char *)TBS,
		                              strlen(TBS), NULL),
		               CARDPKI_KEY_USAGE);
		free(cert);
		free(sig);
		X509_free(x);
		EVP_PKEY_free(k);
	}
	cardpki_free(pki);
}

static void
test_revoked_ocsp(void **state)
{
	struct cardpki *pki = pki_sim("ocsp");

	assert_verdict(verify_card(pki, CARD_REVOKED, "PKCS1", NULL), CARDPKI_REVOKED);
	assert_verdict(verify_card(pki, CARD_REVOKED, "PKCS7", NULL), CARDPKI_REVOKED);
	assert_verdict(verify_card(pki, CARD_OK, "PKCS1", NULL), CARDPKI_OK);
	cardpki_free(pki);
	/* the first source that answers decides: a dead CRL URL is not asked */
	pki = pki_new("ocsp,crl", ocsp_url, "http://127.0.0.1:1/crl", 1000, 0);
	assert_verdict(verify_card(pki, CARD_REVOKED, "PKCS1", NULL), CARDPKI_REVOKED);
	cardpki_free(pki);
}

static void
test_revoked_crl(void **state)
{
	struct cardpki *pki = pki_sim("crl");

	assert_verdict(verify_card(pki, CARD_REVOKED, "PKCS1", NULL), CARDPKI_REVOKED);
	assert_verdict(verify_card(pki, CARD_OK, "PKCS1", NULL), CARDPKI_OK);
	assert_verdict(verify_card(pki, CARD_REVOKED, "PKCS7", NULL), CARDPKI_REVOKED);
	cardpki_free(pki);
	/* OCSP first but nobody answers there: the CRL decides */
	pki = pki_new("ocsp,crl", "http://127.0.0.1:1/ocsp", crl_url, 1000, 0);
	assert_verdict(verify_card(pki, CARD_REVOKED, "PKCS1", NULL), CARDPKI_REVOKED);
	assert_verdict(verify_card(pki, CARD_OK, "PKCS1", NULL), CARDPKI_OK);
	cardpki_free(pki);
}

/* With no URL configured, the certificate's AIA (OCSP) and CDP (CRL) say
 * where to ask; a configured URL overrides them. */
static void
test_urls_from_certificate(void **state)
{
	struct peer ocsp_peer, crl_peer;
	char ocsp[64], crl[64];
	struct cardpki *pki;
	struct made m;
	unsigned char *body;
	size_t len;
	char *cert, *sig;
	X509 *ca = pki_cert("moica.crt"), *resp = pki_cert("moica-ocsp.crt");
	EVP_PKEY *ca_key = pki_key("moica.key"), *resp_key = pki_key("moica-ocsp.key");

	peer_start(&ocsp_peer, "503 Service Unavailable", "text/plain", "", 0);
	peer_url(&ocsp_peer, ocsp, sizeof(ocsp));
	body = make_crl(ca, ca_key, NULL, -60, 3600, &len);
	peer_start(&crl_peer, "200 OK", "application/pkix-crl", body, len);
	free(body);
	peer_url(&crl_peer, crl, sizeof(crl));
	m = make_cert_ex("王小明", "0000000000016789", "critical,digitalSignature", -60, 86400,
	                 ocsp, crl);
	cert = cert_b64(m.cert);
	sig = sign_pkcs1(m.key, TBS, strlen(TBS));

	pki = pki_new("crl", NULL, NULL, 2000, 0);
	assert_verdict(
	    cardpki_verify(pki, "PKCS1", sig, cert, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_OK);
	assert_int_equal(peer_requests(&crl_peer), 1);
	cardpki_free(pki);
	/* the AIA's responder is busy: the CDP's CRL decides */
	pki = pki_new("ocsp,crl", NULL, NULL, 2000, 0);
	assert_verdict(
	    cardpki_verify(pki, "PKCS1", sig, cert, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_OK);
	assert_int_equal(peer_requests(&ocsp_peer), 1);
	assert_int_equal(peer_requests(&crl_peer), 2);
	cardpki_free(pki);
	/* now it answers "revoked" */
	body = make_ocsp(m.cert, V_OCSP_CERTSTATUS_REVOKED, resp, resp_key, false, 600, &len);
	peer_reply(&ocsp_peer, "200 OK", "application/ocsp-response", body, len);
	free(body);
	pki = pki_new("ocsp,crl", NULL, NULL, 2000, 0);
	assert_verdict(
	    cardpki_verify(pki, "PKCS1", sig, cert, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_REVOKED);
	assert_int_equal(peer_requests(&ocsp_peer), 2);
	cardpki_free(pki);
	/* configured URLs win over the certificate's */
	pki = pki_new("ocsp,crl", "http://127.0.0.1:1/ocsp", "http://127.0.0.1:1/crl", 1000, 0);
	assert_verdict(
	    cardpki_verify(pki, "PKCS1", sig, cert, (const unsigned char *)TBS, strlen(TBS), NULL),
	    CARDPKI_REVOCATION_UNAVAILABLE);
	assert_int_equal(peer_requests(&ocsp_peer), 2);
	assert_int_equal(peer_requests(&crl_peer), 2);
	cardpki_free(pki);

	peer_stop(&ocsp_peer);
	peer_stop(&crl_peer);
	free(cert);
	free(sig);
	made_free(&m);
	X509_free(ca);
	X509_free(resp);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(resp_key);
}

static void
test_crl_cache(void **state)
{
	size_t len;
	unsigned char *crl = fetch_sim_crl(&len);
	struct cardpki *pki;
	struct peer p;
	char url[64];

	peer_start(&p, "200 OK", "application/pkix-crl", crl, len);
	peer_url(&p, url, sizeof(url));
	pki = pki_new("crl", NULL, url, 2000, 60);
	assert_verdict(verify_card(pki, CARD_OK, "PKCS1", NULL), CARDPKI_OK);
	assert_verdict(verify_card(pki, CARD_REVOKED, "PKCS1", NULL), CARDPKI_REVOKED);
	assert_verdict(verify_card(pki, CARD_OK2, "PKCS7", NULL), CARDPKI_OK);
	assert_int_equal(peer_requests(&p), 1);
	cardpki_free(pki);
	/* crl_cache_seconds 0: fetched every time */
	pki = pki_new("crl", NULL, url, 2000, 0);
	assert_verdict(verify_card(pki, CARD_OK, "PKCS1", NULL), CARDPKI_OK);
	assert_verdict(verify_card(pki, CARD_OK, "PKCS1", NULL), CARDPKI_OK);
	assert_int_equal(peer_requests(&p), 3);
	cardpki_free(pki);
	peer_stop(&p);
	free(crl);
}

static void
test_unavailable_unreachable(void **state)
{
	int port, fd = loopback_socket(-1, &port); /* bound, not listening: refused */
	char url[64];
	struct cardpki *pki;
	struct timespec t0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/moica", port);
	pki = pki_new("ocsp,crl", url, url, 1000, 60);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_verdict(verify_card(pki, CARD_OK, "PKCS1", NULL), CARDPKI_REVOCATION_UNAVAILABLE);
	assert_verdict(verify_card(pki, CARD_REVOKED, "PKCS7", NULL),
	               CARDPKI_REVOCATION_UNAVAILABLE);
	assert_true(ms_since(&t0) < 2000);
	cardpki_free(pki);
	close(fd);
}

static void
test_unavailable_silent(void **state)
{
	int port, fd = loopback_socket(8, &port); /* the kernel accepts, nobody answers */
	char url[64];
	struct cardpki *pki;
	struct timespec t0;
	long ms;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/moica", port);
	pki = pki_new("ocsp,crl", url, url, 300, 60);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_verdict(verify_card(pki, CARD_OK, "PKCS1", NULL), CARDPKI_REVOCATION_UNAVAILABLE);
	ms = ms_since(&t0);
	assert_true(ms >= 550 && ms < 2500); /* two sources, 300 ms each */
	cardpki_free(pki);
	close(fd);
}

static void
test_unusable_replies(void **state)
{
	X509 *card = card_cert(CARD_OK), *ocsp = pki_cert("moica-ocsp.crt");
	X509 *ca = pki_cert("moica.crt"), *rogue = pki_cert("rogue-ca.crt");
	EVP_PKEY *ocsp_key = pki_key("moica-ocsp.key"), *ca_key = pki_key("moica.key");
	EVP_PKEY *rogue_key = pki_key("rogue-ca.key"), *card_k = card_key(CARD_OK2);
	X509 *card2 = card_cert(CARD_OK2), *revoked = card_cert(CARD_REVOKED);
	unsigned char *body, big[4096];
	size_t len;
	struct peer p;
	struct cardpki *pki;
	char url[64];

	/* garbage, an HTTP error, a redirect (to the real CRL: not followed) */
	assert_verdict(verdict_with_ocsp_reply("garbage", 7), CARDPKI_REVOCATION_UNAVAILABLE);
	peer_start(&p, "500 Internal Server Error", "text/plain", "oops", 4);
	peer_url(&p, url, sizeof(url));
	pki = pki_new("ocsp,crl", url, url, 2000, 0);
	assert_verdict(verify_card(pki, CARD_OK, "PKCS1", NULL), CARDPKI_REVOCATION_UNAVAILABLE);
	cardpki_free(pki);
	peer_stop(&p);
	peer_start(&p, "302 Found", "text/plain", "", 0);
	peer_url(&p, url, sizeof(url));
	pki = pki_new("crl", NULL, url, 2000, 0);
	assert_verdict(verify_card(pki, CARD_OK, "PKCS1", NULL), CARDPKI_REVOCATION_UNAVAILABLE);
	cardpki_free(pki);
	peer_stop(&p);

	/* OCSP: pre-produced (no nonce) with nextUpdate is fine, signed by the
	 * delegated responder or by the CA itself */
	body = make_ocsp(card, V_OCSP_CERTSTATUS_GOOD, ocsp, ocsp_key, false, 600, &len);
	assert_verdict(verdict_with_ocsp_reply(body, len), CARDPKI_OK);
	free(body);
	body = make_ocsp(card, V_OCSP_CERTSTATUS_REVOKED, ca, ca_key, false, 600, &len);
	assert_verdict(verdict_with_ocsp_reply(body, len), CARDPKI_REVOKED);
	free(body);
	/* … but not without nextUpdate, nor with somebody else's nonce */
	body = make_ocsp(card, V_OCSP_CERTSTATUS_GOOD, ocsp, ocsp_key, false, 0, &len);
	assert_verdict(verdict_with_ocsp_reply(body, len), CARDPKI_REVOCATION_UNAVAILABLE);
	free(body);
	body = make_ocsp(card, V_OCSP_CERTSTATUS_GOOD, ocsp, ocsp_key, true, 600, &len);
	assert_verdict(verdict_with_ocsp_reply(body, len), CARDPKI_REVOCATION_UNAVAILABLE);
	free(body);
	/* signed by the look-alike CA, or by a citizen's key */
	body = make_ocsp(card, V_OCSP_CERTSTATUS_GOOD, rogue, rogue_key, false, 600, &len);
	assert_verdict(verdict_with_ocsp_reply(body, len), CARDPKI_REVOCATION_UNAVAILABLE);
	free(body);
	body = make_ocsp(card, V_OCSP_CERTSTATUS_GOOD, card2, card_k, false, 600, &len);
	assert_verdict(verdict_with_ocsp_reply(body, len), CARDPKI_REVOCATION_UNAVAILABLE);
	free(body);
	/* about another certificate; "unknown" */
	body = make_ocsp(card2, V_OCSP_CERTSTATUS_GOOD, ocsp, ocsp_key, false, 600, &len);
	assert_verdict(verdict_with_ocsp_reply(body, len), CARDPKI_REVOCATION_UNAVAILABLE);
	free(body);
	body = make_ocsp(card, V_OCSP_CERTSTATUS_UNKNOWN, ocsp, ocsp_key, false, 600, &len);
	assert_verdict(verdict_with_ocsp_reply(body, len), CARDPKI_REVOCATION_UNAVAILABLE);
	free(body);
	/* too large */
	memset(big, 'A', sizeof(big));
	{
		unsigned char *huge = calloc(1, CARDPKI_OCSP_REPLY_MAX + 1);

		assert_verdict(verdict_with_ocsp_reply(huge, CARDPKI_OCSP_REPLY_MAX + 1),
		               CARDPKI_REVOCATION_UNAVAILABLE);
		free(huge);
	}

	/* CRLs: ours made here work; the look-alike CA's, an outdated one, one
	 * from the future and one signed by the responder do not */
	body = make_crl(ca, ca_key, revoked, -60, 3600, &len);
	assert_verdict(verdict_with_crl_reply(CARD_REVOKED, body, len), CARDPKI_REVOKED);
	assert_verdict(verdict_with_crl_reply(CARD_OK, body, len), CARDPKI_OK);
	free(body);
	body = make_crl(rogue, rogue_key, NULL, -60, 3600, &len);
	assert_verdict(verdict_with_crl_reply(CARD_OK, body, len), CARDPKI_REVOCATION_UNAVAILABLE);
	free(body);
	body = make_crl(ca, ca_key, NULL, -7200, -3600, &len);
	assert_verdict(verdict_with_crl_reply(CARD_OK, body, len), CARDPKI_REVOCATION_UNAVAILABLE);
	free(body);
	body = make_crl(ca, ca_key, NULL, 3600, 7200, &len);
	assert_verdict(verdict_with_crl_reply(CARD_OK, body, len), CARDPKI_REVOCATION_UNAVAILABLE);
	free(body);
	body = make_crl(ca, ocsp_key, NULL, -60, 3600, &len);
	assert_verdict(verdict_with_crl_reply(CARD_OK, body, len), CARDPKI_REVOCATION_UNAVAILABLE);
	free(body);
	assert_verdict(verdict_with_crl_reply(CARD_OK, big, sizeof(big)),
	               CARDPKI_REVOCATION_UNAVAILABLE);
	/* a partition by distribution point covers only the certificates
	 * naming it (the test PKI's name …:8090/moica/crl) */
	body =
	    make_crl_idp(ca, ca_key, revoked, -60, 3600, "http://127.0.0.1:8090/moica/crl", &len);
	assert_verdict(verdict_with_crl_reply(CARD_REVOKED, body, len), CARDPKI_REVOKED);
	assert_verdict(verdict_with_crl_reply(CARD_OK, body, len), CARDPKI_OK);
	free(body);
	body =
	    make_crl_idp(ca, ca_key, revoked, -60, 3600, "http://127.0.0.1:8090/moica/crl-7", &len);
	assert_verdict(verdict_with_crl_reply(CARD_REVOKED, body, len),
	               CARDPKI_REVOCATION_UNAVAILABLE);
	assert_verdict(verdict_with_crl_reply(CARD_OK, body, len), CARDPKI_REVOCATION_UNAVAILABLE);
	free(body);

	X509_free(card);
	X509_free(card2);
	X509_free(revoked);
	X509_free(ocsp);
	X509_free(ca);
	X509_free(rogue);
	EVP_PKEY_free(ocsp_key);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(rogue_key);
	EVP_PKEY_free(card_k);
}

static void
test_holder_fields(void **state)
{
	struct cardpki *pki = pki_new("none", NULL, NULL, 0, 0);
	struct cardpki_holder h;
	struct made m;
	char *cert, *sig;

	/* a name outside the BMP and with a middle dot, serialNumber letters
	 * before the digits */
	m = make_cert("𠀋·Ａｂｕ 林", "AB0000000000000420", "critical,digitalSignature", -60,
	              86400);
	cert = cert_b64(m.cert);
	sig = sign_pkcs1(m.key, TBS, strlen(TBS));
	assert_verdict(
	    cardpki_verify(pki, "PKCS1", sig, cert, (const unsigned char *)TBS, strlen(TBS), &h),
	    CARDPKI_OK);
	assert_string_equal(h.name, "𠀋·Ａｂｕ 林");
	assert_string_equal(h.id_last4, "0420");
	assert_int_equal(strlen(h.serial_hex), 32);
	assert_int_equal(strspn(h.serial_hex, "0123456789abcdef"), 32);
	free(cert);
	free(sig);
	made_free(&m);

	/* no name, no serialNumber, a serialNumber not ending in digits */
	{
		static const struct {
			const char *cn, *sn;
		} bad[] = {
		    {NULL, "0000000000016789"}, {"王小明", NULL}, {"王小明", "000000000001678X"}};

		for (size_t i = 0; i < ISSO_N_ELEMENTS(bad); i++) {
			m = make_cert(bad[i].cn, bad[i].sn, "critical,digitalSignature", -60,
			              86400);
			cert = cert_b64(m.cert);
			sig = sign_pkcs1(m.key, TBS, strlen(TBS));
			assert_verdict(cardpki_verify(pki, "PKCS1", sig, cert,
			                              (const unsigned char *)TBS, strlen(TBS), &h),
			               CARDPKI_MALFORMED);
			assert_string_equal(h.name, "");
			free(cert);
			free(sig);
			made_free(&m);
		}
	}
	cardpki_free(pki);
}

static void
test_malformed(void **state)
{
	struct cardpki *pki = pki_new("none", NULL, NULL, 0, 0);
	X509 *x = card_cert(CARD_OK), *x2 = card_cert(CARD_OK2);
	EVP_PKEY *k = card_key(CARD_OK), *k2 = card_key(CARD_OK2);
	const unsigned char *tbs = (const unsigned char *)TBS;
	size_t tlen = strlen(TBS);
	char *cert = cert_b64(x), *sig1 = sign_pkcs1(k, TBS, tlen), *s, *wrapped;
	unsigned char der[20000];
	long n;
	PKCS7 *p7;

	/* arguments */
	assert_verdict(cardpki_verify(NULL, "PKCS1", sig1, cert, tbs, tlen, NULL),
	               CARDPKI_MALFORMED);
	assert_verdict(cardpki_verify(pki, NULL, sig1, cert, tbs, tlen, NULL), CARDPKI_MALFORMED);
	assert_verdict(cardpki_verify(pki, "RAW", sig1, cert, tbs, tlen, NULL), CARDPKI_MALFORMED);
	assert_verdict(cardpki_verify(pki, "pkcs1", sig1, cert, tbs, tlen, NULL),
	               CARDPKI_MALFORMED);
	assert_verdict(cardpki_verify(pki, "PKCS1", NULL, cert, tbs, tlen, NULL),
	               CARDPKI_MALFORMED);
	assert_verdict(cardpki_verify(pki, "PKCS1", sig1, NULL, tbs, tlen, NULL),
	               CARDPKI_MALFORMED);
	assert_verdict(cardpki_verify(pki, "PKCS1", sig1, cert, NULL, tlen, NULL),
	               CARDPKI_MALFORMED);
	assert_verdict(cardpki_verify(pki, "PKCS1", sig1, cert, tbs, 0, NULL), CARDPKI_MALFORMED);
	assert_verdict(cardpki_verify(pki, "PKCS1", sig1, cert, tbs, tlen, NULL), CARDPKI_OK);

	/* base64 */
	assert_verdict(cardpki_verify(pki, "PKCS1", "", cert, tbs, tlen, NULL), CARDPKI_MALFORMED);
	assert_verdict(cardpki_verify(pki, "PKCS1", "!!!not base64!!!", cert, tbs, tlen, NULL),
	               CARDPKI_MALFORMED);
	assert_verdict(cardpki_verify(pki, "PKCS1", sig1, "$$$$", tbs, tlen, NULL),
	               CARDPKI_MALFORMED);
	s = strdup(sig1);
	s[strlen(s) / 2] = '-'; /* base64url is not base64 */
	assert_verdict(cardpki_verify(pki, "PKCS1", s, cert, tbs, tlen, NULL), CARDPKI_MALFORMED);
	free(s);
	/* line breaks are tolerated */
	wrapped = malloc(strlen(cert) * 2 + 1);
	{
		size_t o = 0;

		for (size_t i = 0; cert[i] != '\0'; i++) {
			wrapped[o++] = cert[i];
			if (i % 64 == 63) {
				wrapped[o++] = '\r';
				wrapped[o++] = '\n';
			}
		}
		wrapped[o] = '\0';
	}
	assert_verdict(cardpki_verify(pki, "PKCS1", sig1, wrapped, tbs, tlen, NULL), CARDPKI_OK);
	free(wrapped);

	/* DER: truncated, trailing bytes, not a certificate */
	n = b64_decode(cert, strlen(cert), der, sizeof(der));
	assert_true(n > 100);
	s = b64_of(der, (size_t)n - 10);
	assert_verdict(cardpki_verify(pki, "PKCS1", sig1, s, tbs, tlen, NULL), CARDPKI_MALFORMED);
	free(s);
	der[n] = 0;
	s = b64_of(der, (size_t)n + 1);
	assert_verdict(cardpki_verify(pki, "PKCS1", sig1, s, tbs, tlen, NULL), CARDPKI_MALFORMED);
	free(s);
	assert_verdict(cardpki_verify(pki, "PKCS7", sig1, NULL, tbs, tlen, NULL),
	               CARDPKI_MALFORMED);
	s = sign_pkcs7(x, k, TBS, tlen);
	n = b64_decode(s, strlen(s), der, sizeof(der));
	free(s);
	s = b64_of(der, (size_t)n / 2);
	assert_verdict(cardpki_verify(pki, "PKCS7", s, NULL, tbs, tlen, NULL), CARDPKI_MALFORMED);
	free(s);
	/* a PKCS1 signature with a PKCS7 as the certificate */
	s = b64_of(der, (size_t)n);
	assert_verdict(cardpki_verify(pki, "PKCS1", sig1, s, tbs, tlen, NULL), CARDPKI_MALFORMED);
	free(s);

	/* sizes: signature over 16 KiB, certificate over 8 KiB */
	memset(der, 0x30, sizeof(der));
	s = b64_of(der, CARDPKI_SIGNATURE_MAX + 1);
	assert_verdict(cardpki_verify(pki, "PKCS7", s, NULL, tbs, tlen, NULL), CARDPKI_MALFORMED);
	free(s);
	s = b64_of(der, CARDPKI_CERT_MAX + 1);
	assert_verdict(cardpki_verify(pki, "PKCS1", sig1, s, tbs, tlen, NULL), CARDPKI_MALFORMED);
	free(s);
	{
		size_t big = 4u << 20;
		char *huge = malloc(big + 1);

		memset(huge, 'A', big);
		huge[big] = '\0';
		assert_verdict(cardpki_verify(pki, "PKCS7", huge, NULL, tbs, tlen, NULL),
		               CARDPKI_MALFORMED);
		free(huge);
	}

	/* PKCS7 shapes: detached, two signers, SHA-1, no certificate inside */
	p7 = make_pkcs7(x, k, NULL, TBS, tlen, PKCS7_DETACHED, NULL);
	s = p7_b64(p7);
	assert_verdict(cardpki_verify(pki, "PKCS7", s, NULL, tbs, tlen, NULL), CARDPKI_MALFORMED);
	free(s);
	PKCS7_free(p7);

	p7 = PKCS7_sign(NULL, NULL, NULL, NULL, PKCS7_PARTIAL | PKCS7_BINARY);
	assert_non_null(PKCS7_sign_add_signer(p7, x, k, EVP_sha256(), 0));
	assert_non_null(PKCS7_sign_add_signer(p7, x2, k2, EVP_sha256(), 0));
	{
		BIO *in = BIO_new_mem_buf(TBS, (int)tlen);

		assert_int_equal(PKCS7_final(p7, in, PKCS7_BINARY), 1);
		BIO_free(in);
	}
	s = p7_b64(p7);
	assert_verdict(cardpki_verify(pki, "PKCS7", s, NULL, tbs, tlen, NULL), CARDPKI_MALFORMED);
	free(s);
	PKCS7_free(p7);

	p7 = make_pkcs7(x, k, EVP_sha1(), TBS, tlen, 0, NULL);
	s = p7_b64(p7);
	assert_verdict(cardpki_verify(pki, "PKCS7", s, NULL, tbs, tlen, NULL), CARDPKI_MALFORMED);
	free(s);
	PKCS7_free(p7);

	p7 = make_pkcs7(x, k, NULL, TBS, tlen, PKCS7_NOCERTS, NULL);
	s = p7_b64(p7);
	assert_verdict(cardpki_verify(pki, "PKCS7", s, NULL, tbs, tlen, NULL), CARDPKI_MALFORMED);
	/* the certificate given beside it is no substitute */
	assert_verdict(cardpki_verify(pki, "PKCS7", s, cert, tbs, tlen, NULL), CARDPKI_MALFORMED);
	free(s);
	PKCS7_free(p7);

	/* not SignedData: a PKCS7 "data" */
	p7 = PKCS7_new();
	assert_int_equal(PKCS7_set_type(p7, NID_pkcs7_data), 1);
	ASN1_OCTET_STRING_set(p7->d.data, (const unsigned char *)TBS, (int)tlen);
	s = p7_b64(p7);
	assert_verdict(cardpki_verify(pki, "PKCS7", s, NULL, tbs, tlen, NULL), CARDPKI_MALFORMED);
	free(s);
	PKCS7_free(p7);

	free(cert);
	free(sig1);
	X509_free(x);
	X509_free(x2);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	cardpki_free(pki);
}

static void
test_new_refuses_bad_settings(void **state)
{
	static const char *const revocations[] = {"",          "ocsp,",     ",crl", "ocsp,ocsp",
	                                          "ocsp, crl", "none,ocsp", "OCSP", "crl;ocsp"};
	struct cardpki_settings s = {
	    .roots_file = roots_path, .intermediates_file = chain_path, .revocation = "ocsp,crl"};
	struct cardpki *pki = (struct cardpki *)&s;
	const char *error = NULL;
	char key_path[PATH_MAX + 32];

	for (size_t i = 0; i < ISSO_N_ELEMENTS(revocations); i++) {
		s.revocation = revocations[i];
		assert_int_equal(cardpki_new(&s, &pki, &error), ISSO_ERR_INVALID);
		assert_null(pki);
		assert_non_null(error);
	}
	s.revocation = NULL;
	assert_int_equal(cardpki_new(&s, &pki, &error), ISSO_ERR_INVALID);
	s.revocation = "crl,ocsp";
	assert_int_equal(cardpki_new(&s, &pki, &error), 0);
	cardpki_free(pki);

	s.ocsp_url = "ftp://127.0.0.1/ocsp";
	assert_int_equal(cardpki_new(&s, &pki, &error), ISSO_ERR_INVALID);
	s.ocsp_url = "http://";
	assert_int_equal(cardpki_new(&s, &pki, &error), ISSO_ERR_INVALID);
	s.ocsp_url = "http://127.0.0.1/a b";
	assert_int_equal(cardpki_new(&s, &pki, &error), ISSO_ERR_INVALID);
	s.ocsp_url = "";
	s.crl_url = "file:///etc/passwd";
	assert_int_equal(cardpki_new(&s, &pki, &error), ISSO_ERR_INVALID);
	s.crl_url = NULL;
	s.crl_cache_seconds = -1;
	assert_int_equal(cardpki_new(&s, &pki, &error), ISSO_ERR_INVALID);
	s.crl_cache_seconds = 0;

	s.roots_file = "/nonexistent/roots.pem";
	assert_int_equal(cardpki_new(&s, &pki, &error), ISSO_ERR_IO);
	pki_path(key_path, sizeof(key_path), "grca.key");
	s.roots_file = key_path; /* PEM, but a key */
	assert_int_equal(cardpki_new(&s, &pki, &error), ISSO_ERR_INVALID);
	s.roots_file = "/dev/null"; /* no certificate at all */
	assert_int_equal(cardpki_new(&s, &pki, &error), ISSO_ERR_INVALID);
	s.roots_file = roots_path;
	s.intermediates_file = "/nonexistent/chain.pem";
	assert_int_equal(cardpki_new(&s, &pki, &error), ISSO_ERR_IO);
	s.intermediates_file = NULL;
	assert_int_equal(cardpki_new(&s, &pki, &error), 0);
	cardpki_free(pki);
	assert_int_equal(cardpki_new(NULL, &pki, &error), ISSO_ERR_INVALID);
	cardpki_free(NULL);
}

struct worker {
	struct cardpki *pki;
	int ok, revoked;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 4; i++) {
		if (verify_card(w->pki, i % 2 ? CARD_OK2 : CARD_OK, i % 2 ? "PKCS7" : "PKCS1",
		                NULL) == CARDPKI_OK)
			w->ok++;
		if (verify_card(w->pki, CARD_REVOKED, "PKCS1", NULL) == CARDPKI_REVOKED)
			w->revoked++;
	}
	return NULL;
}

/* One pki shared by request threads: CRL cache under contention, and OCSP. */
static void
test_threads(void **state)
{
	static const char *const modes[] = {"crl", "ocsp"};

	for (size_t m = 0; m < ISSO_N_ELEMENTS(modes); m++) {
		struct cardpki *pki = pki_new(modes[m], ocsp_url, crl_url, 5000, 60);
		struct worker w[6];
		pthread_t t[6];

		for (int i = 0; i < 6; i++) {
			w[i] = (struct worker){.pki = pki};
			assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
		}
		for (int i = 0; i < 6; i++) {
			pthread_join(t[i], NULL);
			assert_int_equal(w[i].ok, 4);
			assert_int_equal(w[i].revoked, 4);
		}
		cardpki_free(pki);
	}
}

static void
test_verdict_names(void **state)
{
	assert_string_equal(cardpki_verdict_name(CARDPKI_OK), "ok");
	assert_string_equal(cardpki_verdict_name(CARDPKI_MALFORMED), "malformed");
	assert_string_equal(cardpki_verdict_name(CARDPKI_BAD_SIGNATURE), "bad_signature");
	assert_string_equal(cardpki_verdict_name(CARDPKI_CONTENT_MISMATCH), "content_mismatch");
	assert_string_equal(cardpki_verdict_name(CARDPKI_WRONG_CHAIN), "wrong_chain");
	assert_string_equal(cardpki_verdict_name(CARDPKI_EXPIRED), "expired");
	assert_string_equal(cardpki_verdict_name(CARDPKI_NOT_YET_VALID), "not_yet_valid");
	assert_string_equal(cardpki_verdict_name(CARDPKI_KEY_USAGE), "key_usage");
	assert_string_equal(cardpki_verdict_name(CARDPKI_REVOKED), "revoked");
	assert_string_equal(cardpki_verdict_name(CARDPKI_REVOCATION_UNAVAILABLE),
	                    "revocation_unavailable");
	assert_string_equal(cardpki_verdict_name((enum cardpki_verdict)99), "?");
}

/* ---- fixture ---- */

static int
setup(void **state)
{
	const char *extra[] = {"--pki", pki_dir, NULL};

	log_init(2, getenv("ISSO_TEST_LOG") != NULL ? LOG_DEBUG : LOG_ERROR);
	if (pki_dir_setup("cardpki") != 0)
		return -1;
	pki_path(roots_path, sizeof(roots_path), "roots.pem");
	pki_path(chain_path, sizeof(chain_path), "chain.pem");
	if (sim_child_start("test_cardpki", extra) != 0)
		return -1;
	snprintf(ocsp_url, sizeof(ocsp_url), "%s/moica/ocsp", sim_base);
	snprintf(crl_url, sizeof(crl_url), "%s/moica/crl", sim_base);
	return 0;
}

static int
teardown(void **state)
{
	sim_child_stop();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pkcs1_ok),
	    cmocka_unit_test(test_pkcs7_ok),
	    cmocka_unit_test(test_tampered_signature),
	    cmocka_unit_test(test_content_mismatch),
	    cmocka_unit_test(test_wrong_chain),
	    cmocka_unit_test(test_expired),
	    cmocka_unit_test(test_key_usage),
	    cmocka_unit_test(test_revoked_ocsp),
	    cmocka_unit_test(test_revoked_crl),
	    cmocka_unit_test(test_check_cert),
	    cmocka_unit_test(test_urls_from_certificate),
	    cmocka_unit_test(test_crl_cache),
	    cmocka_unit_test(test_unavailable_unreachable),
	    cmocka_unit_test(test_unavailable_silent),
	    cmocka_unit_test(test_unusable_replies),
	    cmocka_unit_test(test_holder_fields),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_new_refuses_bad_settings),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_verdict_names),
	};

	(void)run_sim; /* sim-child.h's, not needed here */
	return cmocka_run_group_tests_name("cardpki", tests, setup, teardown);
}
