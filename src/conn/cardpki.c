/* Card certificate verification on OpenSSL 3 (no deprecated API): the
 * signature (PKCS#1 v1.5 or PKCS#7 SignedData), the chain to the configured
 * roots through the configured intermediates, validity, key usage, and
 * revocation by OCSP and / or CRL through the outbound client (bounded
 * replies, no redirects, plain http allowed for these signed objects). The CRL cache is the only
 * mutable shared state and sits under a mutex. See cardpki.h for the order
 * of the checks and docs/card-certificates.md for operators. */
#include "conn/cardpki.h"
#include "conn/outbound.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/hex.h"
#include "lib/b64.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

#define CP_TIMEOUT_DEFAULT  5000
#define CP_URL_MAX          1024
#define CP_CHAIN_DEPTH      6   /* root, a cross-certificate or two, CA, card */
#define CP_AUTH_LEVEL       2   /* keys >= 112 bits of security, no SHA-1 signatures */
#define CP_SKEW             300 /* seconds of clock difference we forgive a responder */
#define CP_CRL_CACHE_MAX    16  /* distinct CRL URLs kept */
#define CP_SERIALNUMBER_MAX 64

enum cp_source { CP_SRC_OCSP, CP_SRC_CRL };

/* What one revocation source said. */
enum cp_status { CP_GOOD, CP_REVOKED, CP_NO_ANSWER };

struct cp_crl_entry {
	char *url;
	X509_CRL *crl;
	X509 *issuer;   /* the CA certificate the CRL was verified with */
	time_t expires; /* reuse until then */
};

struct cardpki {
	X509_STORE *roots;
	STACK_OF(X509) *intermediates;
	char *ocsp_url, *crl_url; /* NULL: from the card's certificate */
	enum cp_source order[2];
	size_t n_order; /* 0: "none" */
	long timeout_ms;
	int crl_cache_seconds;
	pthread_mutex_t lock; /* guards crls */
	struct cp_crl_entry crls[CP_CRL_CACHE_MAX];
};

static const char *const cp_verdict_names[] = {
    [CARDPKI_OK] = "ok",
    [CARDPKI_MALFORMED] = "malformed",
    [CARDPKI_BAD_SIGNATURE] = "bad_signature",
    [CARDPKI_CONTENT_MISMATCH] = "content_mismatch",
    [CARDPKI_WRONG_CHAIN] = "wrong_chain",
    [CARDPKI_EXPIRED] = "expired",
    [CARDPKI_NOT_YET_VALID] = "not_yet_valid",
    [CARDPKI_KEY_USAGE] = "key_usage",
    [CARDPKI_REVOKED] = "revoked",
    [CARDPKI_REVOCATION_UNAVAILABLE] = "revocation_unavailable",
};

const char *
cardpki_verdict_name(enum cardpki_verdict v)
{
	if ((size_t)v >= ISSO_N_ELEMENTS(cp_verdict_names) || cp_verdict_names[v] == NULL)
		return "?";
	return cp_verdict_names[v];
}

/* ---- settings ---- */

/* An http(s) URL of printable ASCII without spaces, quotes or brackets. */
static bool
cp_url_valid(const char *url)
{
	size_t len = strnlen(url, CP_URL_MAX + 1);

	if (len > CP_URL_MAX)
		return false;
	if (strncmp(url, "http://", 7) == 0) {
		if (len <= 7)
			return false;
	} else if (strncmp(url, "https://", 8) == 0) {
		if (len <= 8)
			return false;
	} else {
		return false;
	}
	for (const char *s = url; *s != '\0'; s++) {
		if (*s <= 0x20 || *s >= 0x7f || *s == '"' || *s == '<' || *s == '>' || *s == '\\')
			return false;
	}
	return true;
}

/* "ocsp,crl" and the like: each source at most once; "none" alone. */
static bool
cp_parse_revocation(const char *s, struct cardpki *pki)
{
	const char *p = s, *end;
	size_t len;

	pki->n_order = 0;
	if (strcmp(s, "none") == 0)
		return true;
	while (*p != '\0') {
		enum cp_source src;

		end = strchr(p, ',');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len == 4 && strncmp(p, "ocsp", 4) == 0)
			src = CP_SRC_OCSP;
		else if (len == 3 && strncmp(p, "crl", 3) == 0)
			src = CP_SRC_CRL;
		else
			return false;
		for (size_t i = 0; i < pki->n_order; i++) {
			if (pki->order[i] == src)
				return false;
		}
		pki->order[pki->n_order++] = src;
		if (end == NULL)
			break;
		p = end + 1;
		if (*p == '\0')
			return false;
	}
	return pki->n_order > 0;
}

/* Reads every certificate of a PEM file into *certs_r (a new stack).
 * Returns 0, ISSO_ERR_IO (unreadable) or ISSO_ERR_INVALID (not PEM
 * certificates, or other PEM objects among them). */
static int
cp_load_pem(const char *path, STACK_OF(X509) **certs_r)
{
	STACK_OF(X509_INFO) *infos = NULL;
	STACK_OF(X509) *certs = NULL;
	BIO *bio = NULL;
	int ret = ISSO_ERR_IO;

	*certs_r = NULL;
	bio = BIO_new_file(path, "r");
	if (bio == NULL)
		goto out;
	ret = ISSO_ERR_INVALID;
	infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	if (infos == NULL)
		goto out;
	certs = sk_X509_new_null();
	if (certs == NULL)
		abort();
	for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *info = sk_X509_INFO_value(infos, i);

		if (info->x509 == NULL || info->x_pkey != NULL || info->crl != NULL)
			goto out;
		/* cache the extensions now: later readers only read */
		if (X509_check_purpose(info->x509, -1, 0) != 1)
			goto out;
		if (!sk_X509_push(certs, info->x509))
			abort();
		info->x509 = NULL;
	}
	*certs_r = certs;
	certs = NULL;
	ret = 0;
out:
	sk_X509_pop_free(certs, X509_free);
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	ERR_clear_error();
	return ret;
}

int
cardpki_new(const struct cardpki_settings *s, struct cardpki **pki_r, const char **error_r)
{
	struct cardpki *pki = NULL;
	STACK_OF(X509) *roots = NULL;
	const char *error_dummy;
	int ret = ISSO_ERR_INVALID;

	if (error_r == NULL)
		error_r = &error_dummy;
	*error_r = NULL;
	if (pki_r == NULL) {
		*error_r = "no place for the result";
		return ISSO_ERR_INVALID;
	}
	*pki_r = NULL;
	if (s == NULL || s->roots_file == NULL || *s->roots_file == '\0') {
		*error_r = "no roots file";
		goto out;
	}
	pki = xcalloc(1, sizeof(*pki));
	if (pthread_mutex_init(&pki->lock, NULL) != 0)
		abort();
	if (s->revocation == NULL || !cp_parse_revocation(s->revocation, pki)) {
		*error_r = "revocation: must be ocsp,crl | crl,ocsp | ocsp | crl | none";
		goto out;
	}
	if (s->ocsp_url != NULL && *s->ocsp_url != '\0') {
		if (!cp_url_valid(s->ocsp_url)) {
			*error_r = "ocsp_url: not an http(s) URL";
			goto out;
		}
		pki->ocsp_url = xstrdup(s->ocsp_url);
	}
	if (s->crl_url != NULL && *s->crl_url != '\0') {
		if (!cp_url_valid(s->crl_url)) {
			*error_r = "crl_url: not an http(s) URL";
			goto out;
		}
		pki->crl_url = xstrdup(s->crl_url);
	}
	if (s->crl_cache_seconds < 0) {
		*error_r = "crl_cache_seconds: must not be negative";
		goto out;
	}
	pki->crl_cache_seconds = s->crl_cache_seconds;
	pki->timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : CP_TIMEOUT_DEFAULT;

	ret = cp_load_pem(s->roots_file, &roots);
	if (ret != 0 || sk_X509_num(roots) == 0) {
		*error_r = ret == ISSO_ERR_IO ? "roots: cannot read the file"
		                              : "roots: not a PEM file of certificates";
		ret = ret != 0 ? ret : ISSO_ERR_INVALID;
		goto out;
	}
	pki->roots = X509_STORE_new();
	if (pki->roots == NULL)
		abort();
	for (int i = 0; i < sk_X509_num(roots); i++) {
		if (X509_STORE_add_cert(pki->roots, sk_X509_value(roots, i)) != 1) {
			ret = ISSO_ERR_INVALID;
			*error_r = "roots: cannot add a certificate (a duplicate?)";
			goto out;
		}
	}
	/* also inherited by the OCSP responder's chain check */
	X509_STORE_set_flags(pki->roots, X509_V_FLAG_X509_STRICT);
	X509_STORE_set_depth(pki->roots, CP_CHAIN_DEPTH);

	if (s->intermediates_file != NULL && *s->intermediates_file != '\0') {
		ret = cp_load_pem(s->intermediates_file, &pki->intermediates);
		if (ret != 0) {
			*error_r = ret == ISSO_ERR_IO
			               ? "intermediates: cannot read the file"
			               : "intermediates: not a PEM file of certificates";
			goto out;
		}
	} else {
		pki->intermediates = sk_X509_new_null();
		if (pki->intermediates == NULL)
			abort();
	}
	*pki_r = pki;
	pki = NULL;
	ret = 0;
out:
	sk_X509_pop_free(roots, X509_free);
	cardpki_free(pki);
	return ret;
}

static void
cp_crl_entry_clear(struct cp_crl_entry *e)
{
	free(e->url);
	X509_CRL_free(e->crl);
	X509_free(e->issuer);
	memset(e, 0, sizeof(*e));
}

void
cardpki_free(struct cardpki *pki)
{
	if (pki == NULL)
		return;
	for (size_t i = 0; i < CP_CRL_CACHE_MAX; i++)
		cp_crl_entry_clear(&pki->crls[i]);
	pthread_mutex_destroy(&pki->lock);
	X509_STORE_free(pki->roots);
	sk_X509_pop_free(pki->intermediates, X509_free);
	free(pki->ocsp_url);
	free(pki->crl_url);
	free(pki);
}

/* ---- input ---- */

/* Decodes standard base64 (CR, LF, tab and space ignored) of at most max
 * bytes. Returns the length, or -1 (*why_r says why). *out_r is malloc'd. */
static long
cp_b64_decode(const char *s, size_t max, unsigned char **out_r, const char **why_r)
{
	size_t limit = (max / 3 + 1) * 4, raw = strnlen(s, limit * 2 + 1), n = 0;
	char *clean = NULL;
	long len = -1;

	*out_r = NULL;
	if (raw > limit * 2) {
		*why_r = "too large";
		goto out;
	}
	clean = xmalloc(raw + 1);
	for (size_t i = 0; i < raw; i++) {
		if (s[i] != '\r' && s[i] != '\n' && s[i] != ' ' && s[i] != '\t')
			clean[n++] = s[i];
	}
	if (n == 0) {
		*why_r = "empty";
		goto out;
	}
	if (n > limit) {
		*why_r = "too large";
		goto out;
	}
	*out_r = xmalloc(n / 4 * 3 + 3);
	len = b64_decode(clean, n, *out_r, n / 4 * 3 + 3);
	if (len < 0) {
		*why_r = "not base64";
	} else if ((size_t)len > max) {
		*why_r = "too large";
		len = -1;
	} else if (len == 0) {
		*why_r = "empty";
		len = -1;
	}
	if (len < 0) {
		free(*out_r);
		*out_r = NULL;
	}
out:
	free(clean);
	return len;
}

/* One DER certificate, nothing after it. */
static X509 *
cp_d2i_cert(const unsigned char *der, long len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, len);

	if (x != NULL && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	if (x != NULL && X509_check_purpose(x, -1, 0) != 1) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/* ---- signatures ---- */

static bool
cp_key_is_rsa(X509 *x)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);

	return pk != NULL && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA;
}

/* RSA PKCS#1 v1.5 with SHA-256 over tbs by cert's key. */
static enum cardpki_verdict
cp_verify_pkcs1(X509 *cert, const unsigned char *sig, size_t sig_len, const unsigned char *tbs,
                size_t tbs_len, const char **why_r)
{
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	enum cardpki_verdict v = CARDPKI_BAD_SIGNATURE;

	if (!cp_key_is_rsa(cert)) {
		*why_r = "the certificate's key is not RSA";
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL)
		abort();
	if (EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", NULL, NULL, X509_get0_pubkey(cert),
	                            NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
		*why_r = "cannot set up the verification";
		goto out;
	}
	if (EVP_DigestVerify(md, sig, sig_len, tbs, tbs_len) != 1) {
		*why_r = "PKCS#1 signature does not verify";
		goto out;
	}
	v = CARDPKI_OK;
out:
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return v;
}

static int
cp_algor_nid(const X509_ALGOR *alg)
{
	const ASN1_OBJECT *obj = NULL;

	if (alg == NULL)
		return NID_undef;
	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	return obj != NULL ? OBJ_obj2nid(obj) : NID_undef;
}

/* Signed attributes, when present, must say the content is data (RFC 5652
 * §11.1; OpenSSL checks messageDigest itself). */
static bool
cp_content_type_attr_ok(PKCS7_SIGNER_INFO *si)
{
	ASN1_TYPE *ct;

	if (sk_X509_ATTRIBUTE_num(PKCS7_get_signed_attributes(si)) <= 0)
		return true;
	ct = PKCS7_get_signed_attribute(si, NID_pkcs9_contentType);
	return ct != NULL && ct->type == V_ASN1_OBJECT &&
	       OBJ_obj2nid(ct->value.object) == NID_pkcs7_data;
}

static bool
cp_same_der(X509 *a, X509 *b)
{
	unsigned char *da = NULL, *db = NULL;
	int la = i2d_X509(a, &da), lb = i2d_X509(b, &db);
	bool same = la > 0 && la == lb && memcmp(da, db, (size_t)la) == 0;

	OPENSSL_free(da);
	OPENSSL_free(db);
	return same;
}

/* PKCS#7 SignedData over tbs; *signer_r (the caller frees) is the signer's
 * certificate from inside once the structure is sound. */
static enum cardpki_verdict
cp_verify_pkcs7(const unsigned char *der, size_t der_len, X509 *given, const unsigned char *tbs,
                size_t tbs_len, X509 **signer_r, const char **why_r)
{
	const unsigned char *p = der;
	PKCS7 *p7 = NULL;
	PKCS7_SIGNER_INFO *si;
	STACK_OF(PKCS7_SIGNER_INFO) *sis;
	STACK_OF(X509) *signers = NULL;
	ASN1_OCTET_STRING *content;
	X509 *signer;
	int nid;
	enum cardpki_verdict v = CARDPKI_MALFORMED;

	*signer_r = NULL;
	p7 = d2i_PKCS7(NULL, &p, (long)der_len);
	if (p7 == NULL || p != der + der_len) {
		*why_r = "signature is not one DER PKCS#7 structure";
		goto out;
	}
	if (!PKCS7_type_is_signed(p7) || p7->d.sign == NULL || p7->d.sign->contents == NULL) {
		*why_r = "PKCS#7 is not SignedData";
		goto out;
	}
	if (!PKCS7_type_is_data(p7->d.sign->contents)) {
		*why_r = "PKCS#7 content is not data";
		goto out;
	}
	content = p7->d.sign->contents->d.data;
	if (content == NULL) {
		*why_r = "PKCS#7 content is not attached";
		goto out;
	}
	sis = PKCS7_get_signer_info(p7);
	if (sk_PKCS7_SIGNER_INFO_num(sis) != 1) {
		*why_r = "PKCS#7 does not have exactly one signer";
		goto out;
	}
	si = sk_PKCS7_SIGNER_INFO_value(sis, 0);
	if (cp_algor_nid(si->digest_alg) != NID_sha256) {
		*why_r = "PKCS#7 digest is not SHA-256";
		goto out;
	}
	nid = cp_algor_nid(si->digest_enc_alg);
	if (nid != NID_rsaEncryption && nid != NID_sha256WithRSAEncryption) {
		*why_r = "PKCS#7 signature algorithm is not RSA";
		goto out;
	}
	if (!cp_content_type_attr_ok(si)) {
		*why_r = "PKCS#7 signed content type is not data";
		goto out;
	}
	signers = PKCS7_get0_signers(p7, NULL, 0);
	if (signers == NULL || sk_X509_num(signers) != 1) {
		*why_r = "PKCS#7 does not hold the signer's certificate";
		goto out;
	}
	signer = sk_X509_value(signers, 0);
	if (X509_check_purpose(signer, -1, 0) != 1) {
		*why_r = "PKCS#7 signer certificate is malformed";
		goto out;
	}
	if ((size_t)ASN1_STRING_length(content) != tbs_len ||
	    CRYPTO_memcmp(ASN1_STRING_get0_data(content), tbs, tbs_len) != 0) {
		v = CARDPKI_CONTENT_MISMATCH;
		*why_r = "PKCS#7 content is not the challenge";
		goto out;
	}
	v = CARDPKI_BAD_SIGNATURE;
	if (given != NULL && !cp_same_der(given, signer)) {
		*why_r = "the certificate given is not the PKCS#7 signer's";
		goto out;
	}
	if (!cp_key_is_rsa(signer)) {
		*why_r = "the certificate's key is not RSA";
		goto out;
	}
	/* signatures and messageDigest only: the chain is ours to check */
	if (PKCS7_verify(p7, NULL, NULL, NULL, NULL, PKCS7_NOVERIFY | PKCS7_BINARY) != 1) {
		*why_r = "PKCS#7 signature does not verify";
		goto out;
	}
	if (!X509_up_ref(signer))
		abort();
	*signer_r = signer;
	v = CARDPKI_OK;
out:
	sk_X509_free(signers);
	PKCS7_free(p7);
	ERR_clear_error();
	return v;
}

/* ---- certificate ---- */

/* Serial and AKI (for logs too); false when absent or unusable. */
static bool
cp_cert_ids(X509 *x, struct cardpki_holder *h)
{
	const ASN1_OCTET_STRING *aki;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	bool ok = false;

	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	if (bn == NULL || BN_is_negative(bn) || BN_is_zero(bn))
		goto out;
	hex = BN_bn2hex(bn);
	if (hex == NULL || strlen(hex) >= sizeof(h->serial_hex))
		goto out;
	for (size_t i = 0; hex[i] != '\0'; i++)
		h->serial_hex[i] =
		    (hex[i] >= 'A' && hex[i] <= 'F') ? (char)(hex[i] - 'A' + 'a') : hex[i];
	h->serial_hex[strlen(hex)] = '\0';
	aki = X509_get0_authority_key_id(x);
	if (aki == NULL || ASN1_STRING_length(aki) <= 0 ||
	    (size_t)ASN1_STRING_length(aki) * 2 >= sizeof(h->issuer_key_id_hex))
		goto out;
	hex_encode(ASN1_STRING_get0_data(aki), (size_t)ASN1_STRING_length(aki),
	           h->issuer_key_id_hex);
	ok = true;
out:
	OPENSSL_free(hex);
	BN_free(bn);
	return ok;
}

/* The one value of nid in the subject as UTF-8 (malloc'd), or NULL when
 * absent, repeated or not valid printable UTF-8 below max bytes. */
static char *
cp_subject_text(X509 *x, int nid, size_t max)
{
	X509_NAME *subj = X509_get_subject_name(x);
	int idx = X509_NAME_get_index_by_NID(subj, nid, -1);
	unsigned char *u = NULL;
	char *text = NULL;
	int n;

	if (idx < 0 || X509_NAME_get_index_by_NID(subj, nid, idx) >= 0)
		return NULL;
	n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)));
	if (n > 0 && (size_t)n < max && utf8_printable((const char *)u, (size_t)n, false))
		text = xstrndup((const char *)u, (size_t)n);
	OPENSSL_free(u);
	return text;
}

static bool
cp_holder(X509 *x, struct cardpki_holder *h, const char **why_r)
{
	char *name = NULL, *sn = NULL;
	size_t len;
	bool ok = false;

	name = cp_subject_text(x, NID_commonName, sizeof(h->name));
	if (name == NULL) {
		*why_r = "certificate has no single UTF-8 common name";
		goto out;
	}
	sn = cp_subject_text(x, NID_serialNumber, CP_SERIALNUMBER_MAX + 1);
	len = sn != NULL ? strlen(sn) : 0;
	if (len < 4 || strspn(sn + len - 4, "0123456789") != 4) {
		*why_r = "certificate subject serialNumber does not end in four digits";
		goto out;
	}
	if (!cp_cert_ids(x, h)) {
		*why_r = "certificate has no positive serial or no authority key identifier";
		goto out;
	}
	snprintf(h->name, sizeof(h->name), "%s", name);
	memcpy(h->id_last4, sn + len - 4, 4);
	h->id_last4[4] = '\0';
	ok = true;
out:
	if (sn != NULL) {
		explicit_bzero(sn, strlen(sn));
		free(sn);
	}
	free(name);
	return ok;
}

/* Validity of the card's certificate itself, against now. */
static enum cardpki_verdict
cp_check_times(X509 *x, const char **why_r)
{
	int before = X509_cmp_current_time(X509_get0_notBefore(x));
	int after = X509_cmp_current_time(X509_get0_notAfter(x));

	if (before == 0 || after == 0) {
		*why_r = "certificate validity cannot be read";
		return CARDPKI_MALFORMED;
	}
	if (after < 0) {
		*why_r = "certificate has expired";
		return CARDPKI_EXPIRED;
	}
	if (before > 0) {
		*why_r = "certificate is not valid yet";
		return CARDPKI_NOT_YET_VALID;
	}
	return CARDPKI_OK;
}

/* Path from x through our intermediates to a root; *issuer_r (the caller
 * frees) is x's issuer on it. */
static enum cardpki_verdict
cp_check_chain(struct cardpki *pki, X509 *x, X509 **issuer_r, const char **why_r)
{
	X509_STORE_CTX *ctx = NULL;
	X509_VERIFY_PARAM *param;
	STACK_OF(X509) *untrusted = NULL, *chain;
	enum cardpki_verdict v = CARDPKI_WRONG_CHAIN;

	*issuer_r = NULL;
	/* a private copy: the shared stack is only ever read */
	untrusted = sk_X509_dup(pki->intermediates);
	ctx = X509_STORE_CTX_new();
	if (untrusted == NULL || ctx == NULL)
		abort();
	if (X509_STORE_CTX_init(ctx, pki->roots, x, untrusted) != 1) {
		*why_r = "cannot set up the chain check";
		goto out;
	}
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
	X509_VERIFY_PARAM_set_depth(param, CP_CHAIN_DEPTH);
	X509_VERIFY_PARAM_set_auth_level(param, CP_AUTH_LEVEL);
	if (X509_verify_cert(ctx) != 1) {
		*why_r = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
		goto out;
	}
	chain = X509_STORE_CTX_get0_chain(ctx);
	if (sk_X509_num(chain) < 2) {
		*why_r = "the card's certificate is itself a root";
		goto out;
	}
	*issuer_r = sk_X509_value(chain, 1);
	if (!X509_up_ref(*issuer_r))
		abort();
	v = CARDPKI_OK;
out:
	X509_STORE_CTX_free(ctx);
	sk_X509_free(untrusted);
	ERR_clear_error();
	return v;
}

static enum cardpki_verdict
cp_check_key_usage(X509 *x, const char **why_r)
{
	uint32_t flags = X509_get_extension_flags(x);

	if ((flags & EXFLAG_KUSAGE) == 0 ||
	    (X509_get_key_usage(x) & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) == 0) {
		*why_r = "certificate is not for digital signatures";
		return CARDPKI_KEY_USAGE;
	}
	if ((flags & EXFLAG_CA) != 0) {
		*why_r = "certificate is a CA's";
		return CARDPKI_KEY_USAGE;
	}
	if ((flags & EXFLAG_XKUSAGE) != 0 &&
	    (X509_get_extended_key_usage(x) & XKU_OCSP_SIGN) != 0) {
		*why_r = "certificate is an OCSP responder's";
		return CARDPKI_KEY_USAGE;
	}
	return CARDPKI_OK;
}

/* ---- HTTP ---- */

/* GET url, or POST body (of content_type) when body is not NULL; the
 * reply must be HTTP 200 within max bytes. Returns 0 with *reply (the
 * caller frees with buf_free), else -1 with *why_r and *reply empty. */
static int
cp_http(struct cardpki *pki, const char *url, const void *body, size_t body_len,
        const char *content_type, const char *accept, size_t max, struct buf *reply,
        const char **why_r, char detail[OUTBOUND_DETAIL_SIZE])
{
	const char *headers[3] = {NULL, NULL, NULL};
	char accept_line[96], type_line[96];
	struct outbound_req req;
	struct outbound_resp resp;
	int r, ret = -1;

	memset(reply, 0, sizeof(*reply));
	snprintf(accept_line, sizeof(accept_line), "Accept: %s", accept);
	headers[0] = accept_line;
	if (body != NULL) {
		snprintf(type_line, sizeof(type_line), "Content-Type: %s", content_type);
		headers[1] = type_line;
	}
	memset(&req, 0, sizeof(req));
	req.method = body != NULL ? OUTBOUND_POST : OUTBOUND_GET;
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = body_len;
	req.agent = "isso-cardpki/1";
	req.timeout_ms = pki->timeout_ms;
	req.reply_max = max;
	req.flags = OUTBOUND_PLAIN_HTTP_OK; /* OCSP responses and CRLs are signed */
	req.purpose = body != NULL ? "ocsp" : "crl";
	r = outbound_request(&req, &resp, why_r);
	snprintf(detail, OUTBOUND_DETAIL_SIZE, "%s", resp.detail);
	if (r == ISSO_ERR_TIMEOUT) {
		*why_r = "no answer in time";
		goto out;
	}
	if (r == ISSO_ERR_LIMIT) {
		*why_r = "reply too large";
		goto out;
	}
	if (r == ISSO_ERR_DENIED)
		goto out; /* *why_r says why; the refusal is logged */
	if (r < 0) {
		*why_r = "unreachable";
		goto out;
	}
	if (resp.status != 200) {
		*why_r = "answered with an HTTP status other than 200";
		goto out;
	}
	*reply = resp.body; /* handed over */
	memset(&resp.body, 0, sizeof(resp.body));
	ret = 0;
out:
	outbound_resp_free(&resp);
	return ret;
}

/* ---- OCSP (RFC 6960) ---- */

/* First http(s) OCSP URI of the AIA (malloc'd), or NULL. */
static char *
cp_aia_ocsp_url(X509 *x)
{
	STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(x);
	char *url = NULL;

	for (int i = 0; i < sk_OPENSSL_STRING_num(urls) && url == NULL; i++) {
		const char *u = sk_OPENSSL_STRING_value(urls, i);

		if (cp_url_valid(u))
			url = xstrdup(u);
	}
	X509_email_free(urls);
	return url;
}

static enum cp_status
cp_ocsp(struct cardpki *pki, X509 *x, X509 *issuer, char **url_r, const char **why_r,
        char detail[OUTBOUND_DETAIL_SIZE])
{
	OCSP_REQUEST *req = NULL;
	OCSP_CERTID *id = NULL, *id_copy;
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	STACK_OF(X509) *certs = NULL;
	ASN1_GENERALIZEDTIME *this_upd = NULL, *next_upd = NULL, *rev_time = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	struct buf reply = {0};
	int der_len, nonce, status = -1, reason = -1;
	enum cp_status st = CP_NO_ANSWER;

	*url_r = pki->ocsp_url != NULL ? xstrdup(pki->ocsp_url) : cp_aia_ocsp_url(x);
	if (*url_r == NULL) {
		*why_r = "no OCSP responder configured or in the certificate";
		goto out;
	}
	id = OCSP_cert_to_id(NULL, x, issuer);
	req = OCSP_REQUEST_new();
	if (id == NULL || req == NULL)
		abort();
	id_copy = OCSP_CERTID_dup(id);
	if (id_copy == NULL || OCSP_request_add0_id(req, id_copy) == NULL)
		abort();
	if (OCSP_request_add1_nonce(req, NULL, -1) != 1)
		abort();
	der_len = i2d_OCSP_REQUEST(req, &der);
	if (der_len <= 0) {
		*why_r = "cannot encode the OCSP request";
		goto out;
	}
	if (cp_http(pki, *url_r, der, (size_t)der_len, "application/ocsp-request",
	            "application/ocsp-response", CARDPKI_OCSP_REPLY_MAX, &reply, why_r,
	            detail) != 0)
		goto out;
	p = (const unsigned char *)reply.data;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)reply.len);
	if (resp == NULL || p != (const unsigned char *)reply.data + reply.len) {
		*why_r = "reply is not an OCSP response";
		goto out;
	}
	if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		*why_r = OCSP_response_status_str(OCSP_response_status(resp));
		goto out;
	}
	bs = OCSP_response_get1_basic(resp);
	if (bs == NULL) {
		*why_r = "OCSP response is not a basic response";
		goto out;
	}
	/* 1: echoed; -1: the responder sends no nonce (pre-produced answers,
	 * then only nextUpdate bounds a replay); anything else is wrong */
	nonce = OCSP_check_nonce(req, bs);
	if (nonce != 1 && nonce != -1) {
		*why_r = "OCSP nonce does not match";
		goto out;
	}
	/* signed by the CA itself or by a responder it delegated to (EKU
	 * OCSPSigning), chaining to our roots; never by explicit trust. The
	 * actual issuer goes first: a responder named by its subject is looked
	 * up by name, the first match wins, and two CA generations share one
	 * name. */
	certs = sk_X509_new_null();
	if (certs == NULL || !sk_X509_push(certs, issuer))
		abort();
	for (int i = 0; i < sk_X509_num(pki->intermediates); i++) {
		X509 *c = sk_X509_value(pki->intermediates, i);

		if (X509_cmp(c, issuer) != 0 && !sk_X509_push(certs, c))
			abort();
	}
	if (OCSP_basic_verify(bs, certs, pki->roots, OCSP_NOEXPLICIT) != 1) {
		*why_r = "OCSP response is not signed by the CA or its responder";
		goto out;
	}
	if (OCSP_resp_find_status(bs, id, &status, &reason, &rev_time, &this_upd, &next_upd) != 1) {
		*why_r = "OCSP response does not cover the certificate";
		goto out;
	}
	if (OCSP_check_validity(this_upd, next_upd, CP_SKEW, -1) != 1) {
		*why_r = "OCSP response is out of date";
		goto out;
	}
	if (nonce == -1 && next_upd == NULL) {
		*why_r = "OCSP response has neither our nonce nor a nextUpdate";
		goto out;
	}
	if (status == V_OCSP_CERTSTATUS_GOOD) {
		st = CP_GOOD;
	} else if (status == V_OCSP_CERTSTATUS_REVOKED) {
		st = CP_REVOKED;
	} else {
		*why_r = "OCSP responder does not know the certificate";
	}
out:
	sk_X509_free(certs);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OCSP_REQUEST_free(req);
	OCSP_CERTID_free(id);
	OPENSSL_free(der);
	buf_free(&reply);
	ERR_clear_error();
	return st;
}

/* ---- CRL (RFC 5280 §5) ---- */

/* First http(s) full-name URI of a distribution point of x whose CRL the
 * issuer signs itself (no cRLIssuer), malloc'd, or NULL. */
static char *
cp_cdp_url(X509 *x)
{
	STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
	char *url = NULL;

	for (int i = 0; i < sk_DIST_POINT_num(dps) && url == NULL; i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);

		if (dp->distpoint == NULL || dp->distpoint->type != 0 || dp->CRLissuer != NULL ||
		    dp->reasons != NULL)
			continue;
		for (int j = 0; j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); j++) {
			GENERAL_NAME *gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, j);
			const char *u;

			if (gn->type != GEN_URI)
				continue;
			u = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
			if ((size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier) ==
			        strlen(u) &&
			    cp_url_valid(u)) {
				url = xstrdup(u);
				break;
			}
		}
	}
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	return url;
}

/* thisUpdate not in the future, nextUpdate present and not past (with
 * CP_SKEW of slack); *next_r its time. */
static bool
cp_crl_current(X509_CRL *crl, time_t *next_r, const char **why_r)
{
	const ASN1_TIME *this_upd = X509_CRL_get0_lastUpdate(crl);
	const ASN1_TIME *next_upd = X509_CRL_get0_nextUpdate(crl);
	time_t now = time(NULL), ahead = now + CP_SKEW, behind = now - CP_SKEW;
	struct tm tm;

	if (this_upd == NULL || X509_cmp_time(this_upd, &ahead) >= 0) {
		*why_r = "CRL thisUpdate is in the future";
		return false;
	}
	if (next_upd == NULL || !ASN1_TIME_to_tm(next_upd, &tm)) {
		*why_r = "CRL has no nextUpdate";
		return false;
	}
	if (X509_cmp_time(next_upd, &behind) <= 0) {
		*why_r = "CRL is out of date";
		return false;
	}
	*next_r = timegm(&tm);
	return true;
}

/* Does x's CRL distribution points extension name uri? */
static bool
cp_cdp_names(X509 *x, const ASN1_IA5STRING *uri)
{
	STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
	bool found = false;

	for (int i = 0; i < sk_DIST_POINT_num(dps) && !found; i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);

		if (dp->distpoint == NULL || dp->distpoint->type != 0)
			continue;
		for (int j = 0; j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname) && !found;
		     j++) {
			GENERAL_NAME *gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, j);

			found = gn->type == GEN_URI &&
			        ASN1_STRING_cmp(gn->d.uniformResourceIdentifier, uri) == 0;
		}
	}
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	return found;
}

/* A CRL that covers x: no delta, no partition by reason, CA or attribute
 * certificates; a partition by distribution point only when x names it
 * (RFC 5280 §6.3.3 b); no critical extension we do not understand. */
static bool
cp_crl_scope_ok(X509_CRL *crl, X509 *x, const char **why_r)
{
	ISSUING_DIST_POINT *idp;
	int crit = -1;
	bool ok = true;

	for (int i = 0; i < X509_CRL_get_ext_count(crl); i++) {
		X509_EXTENSION *ext = X509_CRL_get_ext(crl, i);
		int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));

		if (nid == NID_delta_crl) {
			*why_r = "CRL is a delta CRL";
			return false;
		}
		if (X509_EXTENSION_get_critical(ext) && nid != NID_issuing_distribution_point) {
			*why_r = "CRL has an unknown critical extension";
			return false;
		}
	}
	idp = X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, &crit, NULL);
	if (idp == NULL && crit != -1) {
		*why_r = "CRL issuing distribution point is malformed";
		return false;
	}
	if (idp == NULL)
		return true;
	if (idp->onlyCA > 0 || idp->onlyattr > 0 || idp->onlysomereasons != NULL ||
	    idp->indirectCRL > 0) {
		*why_r = "CRL does not cover every end-entity certificate";
		ok = false;
	} else if (idp->distpoint != NULL) {
		ok = false;
		if (idp->distpoint->type == 0) {
			for (int j = 0;
			     j < sk_GENERAL_NAME_num(idp->distpoint->name.fullname) && !ok; j++) {
				GENERAL_NAME *gn =
				    sk_GENERAL_NAME_value(idp->distpoint->name.fullname, j);

				ok = gn->type == GEN_URI &&
				     cp_cdp_names(x, gn->d.uniformResourceIdentifier);
			}
		}
		if (!ok)
			*why_r = "CRL is a partition the certificate does not name";
	}
	ISSUING_DIST_POINT_free(idp);
	return ok;
}

/* Signed by issuer, which may sign CRLs. */
static bool
cp_crl_signed_by(X509_CRL *crl, X509 *issuer, const char **why_r)
{
	EVP_PKEY *pk = X509_get0_pubkey(issuer);

	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0) {
		*why_r = "CRL issuer is not the certificate's issuer";
		return false;
	}
	if ((X509_get_extension_flags(issuer) & EXFLAG_KUSAGE) != 0 &&
	    (X509_get_key_usage(issuer) & KU_CRL_SIGN) == 0) {
		*why_r = "the issuer may not sign CRLs";
		return false;
	}
	if (pk == NULL || X509_CRL_verify(crl, pk) != 1) {
		*why_r = "CRL signature does not verify with the issuer's key";
		return false;
	}
	return true;
}

/* The cached CRL for url (a new reference), when still fresh. */
static X509_CRL *
cp_crl_cache_get(struct cardpki *pki, const char *url, X509 **issuer_r)
{
	X509_CRL *crl = NULL;
	time_t now = time(NULL);

	*issuer_r = NULL;
	pthread_mutex_lock(&pki->lock);
	for (size_t i = 0; i < CP_CRL_CACHE_MAX; i++) {
		struct cp_crl_entry *e = &pki->crls[i];

		if (e->url == NULL || strcmp(e->url, url) != 0)
			continue;
		if (now < e->expires && X509_CRL_up_ref(e->crl) && X509_up_ref(e->issuer)) {
			crl = e->crl;
			*issuer_r = e->issuer;
		} else {
			cp_crl_entry_clear(e);
		}
		break;
	}
	pthread_mutex_unlock(&pki->lock);
	return crl;
}

/* Keeps crl (verified with issuer) for url until expires; replaces the
 * entry for url, else a free one, else the one expiring first. */
static void
cp_crl_cache_put(struct cardpki *pki, const char *url, X509_CRL *crl, X509 *issuer, time_t expires)
{
	struct cp_crl_entry *slot = NULL;

	pthread_mutex_lock(&pki->lock);
	for (size_t i = 0; i < CP_CRL_CACHE_MAX; i++) {
		struct cp_crl_entry *e = &pki->crls[i];

		if (e->url != NULL && strcmp(e->url, url) == 0) {
			slot = e;
			break;
		}
		if (slot == NULL ||
		    (slot->url != NULL && (e->url == NULL || e->expires < slot->expires)))
			slot = e;
	}
	if (X509_CRL_up_ref(crl) && X509_up_ref(issuer)) {
		cp_crl_entry_clear(slot);
		slot->url = xstrdup(url);
		slot->crl = crl;
		slot->issuer = issuer;
		slot->expires = expires;
	}
	pthread_mutex_unlock(&pki->lock);
}

static enum cp_status
cp_crl(struct cardpki *pki, X509 *x, X509 *issuer, char **url_r, const char **why_r,
       char detail[OUTBOUND_DETAIL_SIZE])
{
	X509_CRL *crl = NULL;
	X509 *checked_with = NULL;
	X509_REVOKED *rev = NULL;
	struct buf reply = {0};
	const unsigned char *p;
	time_t next = 0, expires;
	enum cp_status st = CP_NO_ANSWER;
	int found;

	*url_r = pki->crl_url != NULL ? xstrdup(pki->crl_url) : cp_cdp_url(x);
	if (*url_r == NULL) {
		*why_r = "no CRL configured or in the certificate";
		goto out;
	}
	if (pki->crl_cache_seconds > 0)
		crl = cp_crl_cache_get(pki, *url_r, &checked_with);
	/* The cached CRL was checked against another CA generation (same
	 * name, other key) and is not this issuer's: the URL may serve this
	 * generation's CRL by now, so fetch it rather than give no answer. */
	if (crl != NULL && X509_cmp(checked_with, issuer) != 0 &&
	    !cp_crl_signed_by(crl, issuer, why_r)) {
		X509_CRL_free(crl);
		crl = NULL;
	}
	if (crl != NULL) {
		if (!cp_crl_scope_ok(crl, x, why_r) || !cp_crl_current(crl, &next, why_r))
			goto out;
	} else {
		if (cp_http(pki, *url_r, NULL, 0, NULL, "application/pkix-crl", CARDPKI_CRL_MAX,
		            &reply, why_r, detail) != 0)
			goto out;
		p = (const unsigned char *)reply.data;
		crl = d2i_X509_CRL(NULL, &p, (long)reply.len);
		if (crl == NULL || p != (const unsigned char *)reply.data + reply.len) {
			*why_r = "reply is not a DER CRL";
			goto out;
		}
		if (!cp_crl_signed_by(crl, issuer, why_r) || !cp_crl_current(crl, &next, why_r))
			goto out;
		/* kept even when it does not cover this certificate: it may
		 * cover the next one */
		if (pki->crl_cache_seconds > 0) {
			expires = time(NULL) + pki->crl_cache_seconds;
			cp_crl_cache_put(pki, *url_r, crl, issuer, next < expires ? next : expires);
		}
		if (!cp_crl_scope_ok(crl, x, why_r))
			goto out;
	}
	found = X509_CRL_get0_by_cert(crl, &rev, x);
	/* 2: listed with reason removeFromCRL, i.e. no longer revoked */
	st = found == 1 ? CP_REVOKED : CP_GOOD;
out:
	X509_free(checked_with);
	X509_CRL_free(crl);
	buf_free(&reply);
	ERR_clear_error();
	return st;
}

/* ---- verification ---- */

static enum cardpki_verdict
cp_check_revocation(struct cardpki *pki, X509 *x, X509 *issuer, const char *serial_hex)
{
	for (size_t i = 0; i < pki->n_order; i++) {
		enum cp_source src = pki->order[i];
		char detail[OUTBOUND_DETAIL_SIZE] = "";
		const char *why = "";
		char *url = NULL;
		enum cp_status st;

		st = src == CP_SRC_OCSP ? cp_ocsp(pki, x, issuer, &url, &why, detail)
		                        : cp_crl(pki, x, issuer, &url, &why, detail);
		if (st == CP_NO_ANSWER) {
			log_warn("cardpki_revocation_unanswered", "source",
			         src == CP_SRC_OCSP ? "ocsp" : "crl", "url", url != NULL ? url : "",
			         "reason", why, "detail", detail, "serial", serial_hex, NULL);
		}
		free(url);
		if (st == CP_GOOD)
			return CARDPKI_OK;
		if (st == CP_REVOKED)
			return CARDPKI_REVOKED;
	}
	return pki->n_order == 0 ? CARDPKI_OK : CARDPKI_REVOCATION_UNAVAILABLE;
}

/* Steps 4 to 8 for a certificate x whose key is trusted to be the
 * holder's: validity, chain, key usage, holder data, revocation. *h gets
 * the holder (its ids even on failure, for the log lines), *issuer_r the
 * issuer found on the chain (free it). */
static enum cardpki_verdict
cp_check_cert(struct cardpki *pki, X509 *x, struct cardpki_holder *h, X509 **issuer_r,
              const char **why_r)
{
	enum cardpki_verdict v;

	/* for the log lines; the holder data proper is read once trusted */
	(void)cp_cert_ids(x, h);
	v = cp_check_times(x, why_r);
	if (v != CARDPKI_OK)
		return v;
	v = cp_check_chain(pki, x, issuer_r, why_r);
	if (v != CARDPKI_OK)
		return v;
	v = cp_check_key_usage(x, why_r);
	if (v != CARDPKI_OK)
		return v;
	if (!cp_holder(x, h, why_r))
		return CARDPKI_MALFORMED;
	v = cp_check_revocation(pki, x, *issuer_r, h->serial_hex);
	if (v == CARDPKI_REVOKED)
		*why_r = "certificate is revoked";
	else if (v == CARDPKI_REVOCATION_UNAVAILABLE)
		*why_r = "no revocation source answered";
	return v;
}

/* Logs a refusal (never the holder's name or digits). */
static void
cp_log_refusal(enum cardpki_verdict v, const char *why, const struct cardpki_holder *h)
{
	if (v == CARDPKI_REVOCATION_UNAVAILABLE) {
		/* ours to fix, not the citizen's */
		log_warn("cardpki_refused", "verdict", cardpki_verdict_name(v), "reason", why,
		         "serial", h->serial_hex, "issuer_key_id", h->issuer_key_id_hex, NULL);
	} else {
		log_info("cardpki_refused", "verdict", cardpki_verdict_name(v), "reason", why,
		         "serial", h->serial_hex, "issuer_key_id", h->issuer_key_id_hex, NULL);
	}
}

enum cardpki_verdict
cardpki_check_cert(struct cardpki *pki, const char *cert_b64, struct cardpki_holder *holder_r)
{
	struct cardpki_holder holder;
	unsigned char *der = NULL;
	X509 *x = NULL, *issuer = NULL;
	const char *why = "", *b64_why = "";
	enum cardpki_verdict v = CARDPKI_MALFORMED;
	long len;

	memset(&holder, 0, sizeof(holder));
	if (holder_r != NULL)
		memset(holder_r, 0, sizeof(*holder_r));
	if (pki == NULL || cert_b64 == NULL) {
		why = "argument missing";
		goto out;
	}
	len = cp_b64_decode(cert_b64, CARDPKI_CERT_MAX, &der, &b64_why);
	if (len < 0) {
		why = strcmp(b64_why, "too large") == 0 ? "certificate too large"
		                                        : "certificate is not base64";
		goto out;
	}
	x = cp_d2i_cert(der, len);
	if (x == NULL) {
		why = "certificate is not one DER X.509 certificate";
		goto out;
	}
	v = cp_check_cert(pki, x, &holder, &issuer, &why);
out:
	if (v == CARDPKI_OK) {
		if (holder_r != NULL)
			*holder_r = holder;
	} else {
		cp_log_refusal(v, why, &holder);
	}
	explicit_bzero(&holder, sizeof(holder));
	X509_free(issuer);
	X509_free(x);
	free(der);
	ERR_clear_error();
	return v;
}

enum cardpki_verdict
cardpki_verify(struct cardpki *pki, const char *sig_type, const char *signature_b64,
               const char *cert_b64, const unsigned char *tbs, size_t tbs_len,
               struct cardpki_holder *holder_r)
{
	struct cardpki_holder holder;
	unsigned char *sig = NULL, *cert_der = NULL;
	X509 *given = NULL, *x = NULL, *issuer = NULL;
	const char *why = "", *b64_why = "";
	long sig_len, cert_len;
	bool pkcs7;
	enum cardpki_verdict v = CARDPKI_MALFORMED;

	memset(&holder, 0, sizeof(holder));
	if (holder_r != NULL)
		memset(holder_r, 0, sizeof(*holder_r));
	if (pki == NULL || sig_type == NULL || signature_b64 == NULL || tbs == NULL ||
	    tbs_len == 0) {
		why = "argument missing";
		goto out;
	}
	if (strcmp(sig_type, "PKCS7") == 0) {
		pkcs7 = true;
	} else if (strcmp(sig_type, "PKCS1") == 0) {
		pkcs7 = false;
	} else {
		why = "signature type is not PKCS1 or PKCS7";
		goto out;
	}
	sig_len = cp_b64_decode(signature_b64, CARDPKI_SIGNATURE_MAX, &sig, &b64_why);
	if (sig_len < 0) {
		why = strcmp(b64_why, "too large") == 0 ? "signature too large"
		                                        : "signature is not base64";
		goto out;
	}
	if (cert_b64 != NULL) {
		cert_len = cp_b64_decode(cert_b64, CARDPKI_CERT_MAX, &cert_der, &b64_why);
		if (cert_len < 0) {
			why = strcmp(b64_why, "too large") == 0 ? "certificate too large"
			                                        : "certificate is not base64";
			goto out;
		}
		given = cp_d2i_cert(cert_der, cert_len);
		if (given == NULL) {
			why = "certificate is not one DER X.509 certificate";
			goto out;
		}
	}

	if (pkcs7) {
		v = cp_verify_pkcs7(sig, (size_t)sig_len, given, tbs, tbs_len, &x, &why);
	} else if (given == NULL) {
		why = "a PKCS1 signature needs the certificate";
	} else {
		x = given;
		if (!X509_up_ref(x))
			abort();
		v = cp_verify_pkcs1(x, sig, (size_t)sig_len, tbs, tbs_len, &why);
	}
	if (v != CARDPKI_OK)
		goto out;
	v = cp_check_cert(pki, x, &holder, &issuer, &why);
out:
	if (v == CARDPKI_OK) {
		if (holder_r != NULL)
			*holder_r = holder;
	} else {
		cp_log_refusal(v, why, &holder);
	}
	explicit_bzero(&holder, sizeof(holder));
	X509_free(issuer);
	X509_free(x);
	X509_free(given);
	free(cert_der);
	free(sig);
	ERR_clear_error();
	return v;
}
