/* MOICA (內政部憑證管理中心) for the citizen-certificate card, in OUR
 * contract's shape for the ID check (docs/connectors/moica.md) and the
 * standard shapes for revocation:
 *
 *   POST /moica/v1/id-check     Basic auth; does this certificate belong
 *                               to the holder of this national ID?
 *   GET  /moica/crl             DER CRL signed by the CA (RFC 5280)
 *   POST /moica/ocsp            OCSP (RFC 6960), DER request body
 *   GET  /moica/ocsp/{base64}   the same, request in the path (§A.1)
 *
 * The certificates come from the test PKI (--pki DIR, scripts/test-pki.sh):
 * DIR/moica.crt/.key is the CA, DIR/moica-ocsp.crt/.key its OCSP
 * responder, DIR/moica/<card_sn>.crt the citizens' certificates (the file
 * name is the card's number). The identities file says whose card it is
 * (cards.moica.card_sn) and its status (cards.moica.status: revoked ones
 * are on the CRL and answered "revoked" by OCSP). Read-only after start,
 * so requests need no lock but the CRL number's. National IDs and
 * certificates are never logged. */
#include "sim/sim.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "http/parse.h"
#include "lib/hex.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"

#define MOICA_SERIAL_HEX_MAX 64  /* 32 bytes: RFC 5280 allows 20 */
#define MOICA_KEYID_HEX_MAX  128 /* 64 bytes */
#define MOICA_OCSP_REQ_MAX   8192
#define MOICA_OCSP_IDS_MAX   32 /* certificates asked about in one request */
#define MOICA_CRL_HOURS      1
#define MOICA_OCSP_MINUTES   10
#define MOICA_OCSP_PREFIX    "/moica/ocsp/"

/* One citizen certificate of DIR/moica/. */
struct moica_cert {
	char card_sn[65];
	BIGNUM *serial;
	ASN1_INTEGER *serial_asn1;
	char aki_hex[MOICA_KEYID_HEX_MAX + 1]; /* "" when it has none */
	bool by_ca;                            /* issued by DIR/moica.crt */
	const char *national_id;               /* the holder's (identities), or NULL */
	bool revoked;
	time_t revoked_at;
};

static struct {
	bool loaded; /* false: no --pki, the endpoints answer 503 */
	X509 *ca, *ocsp_cert;
	EVP_PKEY *ca_key, *ocsp_key;
	char ca_ski_hex[MOICA_KEYID_HEX_MAX + 1];
	struct moica_cert *certs;
	size_t ncerts;
	char *client_id;
	char *secret;
	pthread_mutex_t lock; /* crl_number, records */
	uint64_t crl_number;
	/* certificates the CA issued outside DIR/moica/ (sim_moica_record):
	 * a ring of the newest SIM_MOICA_RECORDS */
	struct moica_record {
		ASN1_INTEGER *serial;
		bool revoked;
		time_t revoked_at;
	} records[SIM_MOICA_RECORDS];
	size_t next_record;
} moica = {.lock = PTHREAD_MUTEX_INITIALIZER};

void
sim_moica_record(const ASN1_INTEGER *serial, bool revoked)
{
	ASN1_INTEGER *copy = ASN1_INTEGER_dup(serial);
	struct moica_record *r;

	if (copy == NULL)
		abort();
	pthread_mutex_lock(&moica.lock);
	r = &moica.records[moica.next_record];
	moica.next_record = (moica.next_record + 1) % SIM_MOICA_RECORDS;
	ASN1_INTEGER_free(r->serial);
	r->serial = copy;
	r->revoked = revoked;
	/* revoked a minute before now (the CRL needs a date in the past) */
	r->revoked_at = time(NULL) - 60;
	pthread_mutex_unlock(&moica.lock);
}

/* A recorded certificate's status: 0 unknown, 1 good, 2 revoked (with
 * *at_r). */
static int
moica_record_status(const ASN1_INTEGER *serial, time_t *at_r)
{
	int st = 0;

	pthread_mutex_lock(&moica.lock);
	for (size_t i = 0; i < SIM_MOICA_RECORDS && st == 0; i++) {
		const struct moica_record *r = &moica.records[i];

		if (r->serial != NULL && ASN1_INTEGER_cmp(r->serial, serial) == 0) {
			st = r->revoked ? 2 : 1;
			*at_r = r->revoked_at;
		}
	}
	pthread_mutex_unlock(&moica.lock);
	return st;
}

/* The keyIdentifier of a key-identifier extension as hex, "" when none. */
static void
moica_keyid_hex(const ASN1_OCTET_STRING *id, char out[MOICA_KEYID_HEX_MAX + 1])
{
	out[0] = '\0';
	if (id != NULL && ASN1_STRING_length(id) > 0 &&
	    ASN1_STRING_length(id) <= MOICA_KEYID_HEX_MAX / 2)
		hex_encode(ASN1_STRING_get0_data(id), (size_t)ASN1_STRING_length(id), out);
}

/* 1..max hex digits (either case). */
static bool
moica_is_hex(const char *s, size_t max)
{
	size_t n = s != NULL ? strspn(s, "0123456789abcdefABCDEF") : 0;

	return n > 0 && n <= max && s[n] == '\0';
}

/* ---- loading ---- */

static int
moica_add_cert(const char *name, X509 *cert, void *ctx)
{
	struct moica_cert *c = &moica.certs[moica.ncerts];
	const json_t *holder = sim_ident_by_moica_card(name);
	const json_t *card = json_object_get(json_object_get(holder, "cards"), "moica");
	const char *status = json_string_value(json_object_get(card, "status"));
	const ASN1_TIME *nb = X509_get0_notBefore(cert);
	struct tm tm;

	snprintf(c->card_sn, sizeof(c->card_sn), "%s", name);
	c->serial_asn1 = ASN1_INTEGER_dup(X509_get0_serialNumber(cert));
	c->serial = ASN1_INTEGER_to_BN(c->serial_asn1, NULL);
	if (c->serial_asn1 == NULL || c->serial == NULL)
		abort();
	moica_keyid_hex(X509_get0_authority_key_id(cert), c->aki_hex);
	c->by_ca = X509_check_issued(moica.ca, cert) == X509_V_OK &&
	           X509_verify(cert, X509_get0_pubkey(moica.ca)) == 1;
	c->national_id = json_string_value(json_object_get(holder, "national_id"));
	c->revoked = status != NULL && strcmp(status, "revoked") == 0;
	/* revoked an hour after issue (the CRL needs a fixed date before now) */
	c->revoked_at = time(NULL) - 3600;
	if (nb != NULL && ASN1_TIME_to_tm(nb, &tm) == 1 && timegm(&tm) + 3600 < c->revoked_at)
		c->revoked_at = timegm(&tm) + 3600;
	moica.ncerts++;
	X509_free(cert);
	return 0;
}

static int
moica_load(const char *dir, const char **error_r)
{
	int ret = ISSO_ERR_INVALID;

	moica.ca = sim_pki_cert(dir, "moica.crt", error_r);
	if (moica.ca == NULL)
		goto out;
	moica.ca_key = sim_pki_key(dir, "moica.key", error_r);
	if (moica.ca_key == NULL)
		goto out;
	moica.ocsp_cert = sim_pki_cert(dir, "moica-ocsp.crt", error_r);
	if (moica.ocsp_cert == NULL)
		goto out;
	moica.ocsp_key = sim_pki_key(dir, "moica-ocsp.key", error_r);
	if (moica.ocsp_key == NULL)
		goto out;
	if (X509_check_private_key(moica.ca, moica.ca_key) != 1 ||
	    X509_check_private_key(moica.ocsp_cert, moica.ocsp_key) != 1) {
		*error_r = "moica.key / moica-ocsp.key do not match their certificates";
		goto out;
	}
	moica_keyid_hex(X509_get0_subject_key_id(moica.ca), moica.ca_ski_hex);
	moica.certs = xcalloc(SIM_PKI_MAX_CERTS, sizeof(*moica.certs));
	ret = sim_pki_each_cert(dir, "moica", moica_add_cert, NULL, error_r);
	if (ret != 0)
		goto out;
	moica.crl_number = (uint64_t)time(NULL);
	moica.loaded = true;
out:
	return ret;
}

static void
moica_unload(void)
{
	for (size_t i = 0; i < moica.ncerts; i++) {
		BN_free(moica.certs[i].serial);
		ASN1_INTEGER_free(moica.certs[i].serial_asn1);
	}
	free(moica.certs);
	X509_free(moica.ca);
	X509_free(moica.ocsp_cert);
	EVP_PKEY_free(moica.ca_key);
	EVP_PKEY_free(moica.ocsp_key);
	moica.certs = NULL;
	moica.ncerts = 0;
	moica.ca = moica.ocsp_cert = NULL;
	moica.ca_key = moica.ocsp_key = NULL;
	moica.loaded = false;
}

/* The CA's certificate with this serial, or NULL. */
static const struct moica_cert *
moica_by_serial(const ASN1_INTEGER *serial)
{
	for (size_t i = 0; i < moica.ncerts; i++) {
		if (moica.certs[i].by_ca &&
		    ASN1_INTEGER_cmp(moica.certs[i].serial_asn1, serial) == 0)
			return &moica.certs[i];
	}
	return NULL;
}

/* False (and 503 sent) when the simulator runs without a test PKI. */
static bool
moica_ready(struct http_req *req)
{
	if (!moica.loaded)
		sim_send_error(req, 503, "no_pki");
	return moica.loaded;
}

/* ---- ID check ---- */

static bool
moica_authorised(struct http_req *req)
{
	char *user = NULL, *pass = NULL;
	bool user_ok, pass_ok;

	if (parse_basic_auth(http_pool(req), http_header(req, "Authorization"), &user, &pass) ==
	    0) {
		/* both comparisons run: which one failed must not show in the timing */
		user_ok = secret_equal(user, moica.client_id);
		pass_ok = secret_equal(pass, moica.secret);
		if (user_ok && pass_ok)
			return true;
	}
	log_info("moica_client_refused", "remote", http_remote_addr(req), NULL);
	http_set_header(req, "WWW-Authenticate", "Basic realm=\"isso-sim moica\"");
	sim_send_error(req, 401, "invalid_client");
	return false;
}

static void
moica_bad_request(struct http_req *req, const char *description)
{
	json_t *o =
	    json_pack("{s:s, s:s}", "error", "invalid_request", "error_description", description);

	if (o == NULL)
		abort();
	http_send_json(req, 400, o);
}

static void
moica_id_check_handler(struct http_req *req, void *ctx)
{
	const char *body, *serial_hex, *keyid, *id, *result = "mismatch";
	char keyid_lc[MOICA_KEYID_HEX_MAX + 1];
	BIGNUM *serial = NULL;
	json_t *in = NULL, *o;
	size_t len;

	if (!moica_authorised(req) || !moica_ready(req))
		goto out;
	body = http_body(req, &len);
	if (body != NULL)
		in = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(in)) {
		moica_bad_request(req, "the body must be a JSON object");
		goto out;
	}
	serial_hex = json_string_value(json_object_get(in, "cert_serial"));
	keyid = json_string_value(json_object_get(in, "issuer_key_id"));
	id = json_string_value(json_object_get(in, "national_id"));
	if (!moica_is_hex(serial_hex, MOICA_SERIAL_HEX_MAX) ||
	    BN_hex2bn(&serial, serial_hex) != (int)strlen(serial_hex)) {
		moica_bad_request(req, "cert_serial: 1 to 64 hex digits");
		goto out;
	}
	if (!moica_is_hex(keyid, MOICA_KEYID_HEX_MAX) || strlen(keyid) % 2 != 0) {
		moica_bad_request(req, "issuer_key_id: 2 to 128 hex digits, whole bytes");
		goto out;
	}
	if (id == NULL || !idnum_is_valid(id)) {
		moica_bad_request(req, "national_id: a national ID or resident certificate number");
		goto out;
	}
	for (size_t i = 0; keyid[i] != '\0'; i++)
		keyid_lc[i] = (char)(keyid[i] >= 'A' && keyid[i] <= 'F' ? keyid[i] + 32 : keyid[i]);
	keyid_lc[strlen(keyid)] = '\0';

	/* an unknown certificate and someone else's ID get the same answer */
	for (size_t i = 0; i < moica.ncerts; i++) {
		const struct moica_cert *c = &moica.certs[i];

		if (BN_cmp(c->serial, serial) == 0 && strcmp(c->aki_hex, keyid_lc) == 0 &&
		    c->national_id != NULL && strcmp(c->national_id, id) == 0)
			result = "match";
	}
	log_info("moica_id_check", "result", result, NULL);
	o = json_pack("{s:s}", "result", result);
	if (o == NULL)
		abort();
	http_send_json(req, 200, o);
out:
	BN_free(serial);
	json_decref(in);
}

/* ---- CRL ---- */

/* The CRL as of now, DER (malloc'd) in *der_r; its length, or -1. */
static long
moica_crl_der(unsigned char **der_r)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
	ASN1_TIME *next = X509_time_adj_ex(NULL, 0, MOICA_CRL_HOURS * 3600, NULL);
	ASN1_INTEGER *number = NULL;
	X509_EXTENSION *aki = NULL;
	X509V3_CTX v3;
	uint64_t n;
	long len = -1;

	*der_r = NULL;
	if (crl == NULL || now == NULL || next == NULL)
		goto out;
	if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(moica.ca)) != 1 ||
	    X509_CRL_set1_lastUpdate(crl, now) != 1 || X509_CRL_set1_nextUpdate(crl, next) != 1)
		goto out;
	for (size_t i = 0; i < moica.ncerts; i++) {
		const struct moica_cert *c = &moica.certs[i];
		X509_REVOKED *r;
		ASN1_TIME *when;
		ASN1_ENUMERATED *reason;

		if (!c->by_ca || !c->revoked)
			continue;
		r = X509_REVOKED_new();
		when = ASN1_TIME_set(NULL, c->revoked_at);
		reason = ASN1_ENUMERATED_new();
		if (r == NULL || when == NULL || reason == NULL ||
		    ASN1_ENUMERATED_set(reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE) != 1 ||
		    X509_REVOKED_set_serialNumber(r, c->serial_asn1) != 1 ||
		    X509_REVOKED_set_revocationDate(r, when) != 1 ||
		    X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, 0) != 1 ||
		    X509_CRL_add0_revoked(crl, r) != 1) {
			X509_REVOKED_free(r);
			r = NULL;
		}
		ASN1_TIME_free(when);
		ASN1_ENUMERATED_free(reason);
		if (r == NULL)
			goto out;
	}
	pthread_mutex_lock(&moica.lock);
	for (size_t i = 0; i < SIM_MOICA_RECORDS; i++) {
		const struct moica_record *rec = &moica.records[i];
		X509_REVOKED *r;
		ASN1_TIME *when;

		if (rec->serial == NULL || !rec->revoked)
			continue;
		r = X509_REVOKED_new();
		when = ASN1_TIME_set(NULL, rec->revoked_at);
		if (r == NULL || when == NULL ||
		    X509_REVOKED_set_serialNumber(r, rec->serial) != 1 ||
		    X509_REVOKED_set_revocationDate(r, when) != 1 ||
		    X509_CRL_add0_revoked(crl, r) != 1)
			abort();
		ASN1_TIME_free(when);
	}
	pthread_mutex_unlock(&moica.lock);
	X509_CRL_sort(crl);

	pthread_mutex_lock(&moica.lock);
	n = ++moica.crl_number;
	pthread_mutex_unlock(&moica.lock);
	number = ASN1_INTEGER_new();
	if (number == NULL || ASN1_INTEGER_set_uint64(number, n) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) != 1)
		goto out;
	X509V3_set_ctx(&v3, moica.ca, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
	if (aki == NULL || X509_CRL_add_ext(crl, aki, -1) != 1)
		goto out;
	if (X509_CRL_sign(crl, moica.ca_key, EVP_sha256()) <= 0)
		goto out;
	len = i2d_X509_CRL(crl, der_r);
out:
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(number);
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	X509_CRL_free(crl);
	return len;
}

static void
moica_crl_handler(struct http_req *req, void *ctx)
{
	unsigned char *der = NULL;
	long len;

	if (!moica_ready(req))
		goto out;
	len = moica_crl_der(&der);
	if (len <= 0) {
		log_error("moica_crl_failed", NULL);
		sim_send_error(req, 500, "server_error");
		goto out;
	}
	http_set_header(req, "Cache-Control", "no-store");
	http_send(req, 200, "application/pkix-crl", (const char *)der, (size_t)len);
out:
	OPENSSL_free(der);
}

/* ---- OCSP ---- */

/* Adds the status of one CertID to bs. Returns false on failure. */
static bool
moica_ocsp_status(OCSP_BASICRESP *bs, OCSP_CERTID *cid, ASN1_TIME *now, ASN1_TIME *next,
                  const char **status_r)
{
	ASN1_OCTET_STRING *name_hash = NULL, *key_hash = NULL;
	ASN1_OBJECT *md_obj = NULL;
	ASN1_INTEGER *serial = NULL;
	OCSP_CERTID *ours = NULL;
	const EVP_MD *md;
	const struct moica_cert *c = NULL;
	ASN1_TIME *revoked_at = NULL;
	int status = V_OCSP_CERTSTATUS_UNKNOWN, reason = -1;
	bool ok = false;

	if (OCSP_id_get0_info(&name_hash, &md_obj, &key_hash, &serial, cid) != 1)
		goto out;
	md = EVP_get_digestbyobj(md_obj);
	/* the issuer hashes in the asker's algorithm; any other issuer: unknown */
	if (md != NULL)
		ours = OCSP_cert_id_new(md, X509_get_subject_name(moica.ca),
		                        X509_get0_pubkey_bitstr(moica.ca), serial);
	if (ours != NULL && OCSP_id_issuer_cmp(ours, cid) == 0) {
		c = moica_by_serial(serial);
		if (c == NULL) {
			time_t at = 0;
			int rec = moica_record_status(serial, &at);

			if (rec == 2) {
				status = V_OCSP_CERTSTATUS_REVOKED;
				reason = OCSP_REVOKED_STATUS_KEYCOMPROMISE;
				if ((revoked_at = ASN1_TIME_set(NULL, at)) == NULL)
					goto out;
			} else if (rec == 1) {
				status = V_OCSP_CERTSTATUS_GOOD;
			}
		}
	}
	if (c != NULL && c->revoked) {
		status = V_OCSP_CERTSTATUS_REVOKED;
		reason = OCSP_REVOKED_STATUS_KEYCOMPROMISE;
		revoked_at = ASN1_TIME_set(NULL, c->revoked_at);
		if (revoked_at == NULL)
			goto out;
	} else if (c != NULL) {
		status = V_OCSP_CERTSTATUS_GOOD;
	}
	if (OCSP_basic_add1_status(bs, cid, status, reason, revoked_at, now, next) == NULL)
		goto out;
	*status_r = OCSP_cert_status_str(status);
	ok = true;
out:
	OCSP_CERTID_free(ours);
	ASN1_TIME_free(revoked_at);
	return ok;
}

/* The response to a DER OCSP request (len may be 0 or the DER garbage: a
 * malformedRequest response). Returns the response's DER length, or -1. */
static long
moica_ocsp_der(const unsigned char *req_der, long req_len, unsigned char **der_r)
{
	const unsigned char *p = req_der;
	OCSP_REQUEST *ocsp_req = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_RESPONSE *resp = NULL;
	ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
	ASN1_TIME *next = X509_time_adj_ex(NULL, 0, MOICA_OCSP_MINUTES * 60, NULL);
	const char *outcome = "malformed", *status = "";
	int n;
	long len = -1;

	*der_r = NULL;
	if (now == NULL || next == NULL)
		goto out;
	if (req_len > 0 && req_len <= MOICA_OCSP_REQ_MAX)
		ocsp_req = d2i_OCSP_REQUEST(NULL, &p, req_len);
	n = ocsp_req != NULL && p == req_der + req_len ? OCSP_request_onereq_count(ocsp_req) : 0;
	if (n < 1 || n > MOICA_OCSP_IDS_MAX) {
		resp = OCSP_response_create(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, NULL);
		goto encode;
	}
	bs = OCSP_BASICRESP_new();
	if (bs == NULL)
		goto out;
	for (int i = 0; i < n; i++) {
		OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(ocsp_req, i));

		if (!moica_ocsp_status(bs, cid, now, next, &status))
			goto out;
	}
	if (OCSP_copy_nonce(bs, ocsp_req) <= 0)
		goto out;
	if (OCSP_basic_sign(bs, moica.ocsp_cert, moica.ocsp_key, EVP_sha256(), NULL, 0) != 1)
		goto out;
	resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	outcome = n == 1 ? status : "several";
encode:
	if (resp == NULL)
		goto out;
	len = i2d_OCSP_RESPONSE(resp, der_r);
	log_info("moica_ocsp", "outcome", outcome, NULL);
out:
	OCSP_RESPONSE_free(resp);
	OCSP_BASICRESP_free(bs);
	OCSP_REQUEST_free(ocsp_req);
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	return len;
}

static void
moica_ocsp_reply(struct http_req *req, const unsigned char *req_der, long req_len)
{
	unsigned char *der = NULL;
	long len;

	len = moica_ocsp_der(req_der, req_len, &der);
	if (len <= 0) {
		log_error("moica_ocsp_failed", NULL);
		/* RFC 6960 §2.3: internalError, still as an OCSP response */
		OCSP_RESPONSE *resp =
		    OCSP_response_create(OCSP_RESPONSE_STATUS_INTERNALERROR, NULL);

		OPENSSL_free(der);
		der = NULL;
		len = resp != NULL ? i2d_OCSP_RESPONSE(resp, &der) : -1;
		OCSP_RESPONSE_free(resp);
		if (len <= 0) {
			sim_send_error(req, 500, "server_error");
			goto out;
		}
	}
	http_set_header(req, "Cache-Control", "no-store");
	http_send(req, 200, "application/ocsp-response", (const char *)der, (size_t)len);
out:
	OPENSSL_free(der);
}

static void
moica_ocsp_post_handler(struct http_req *req, void *ctx)
{
	const char *body;
	size_t len = 0;

	if (!moica_ready(req))
		return;
	body = http_body(req, &len);
	moica_ocsp_reply(req, (const unsigned char *)body,
	                 body != NULL && len <= MOICA_OCSP_REQ_MAX ? (long)len : 0);
}

static void
moica_ocsp_get_handler(struct http_req *req, void *ctx)
{
	/* the router has percent-decoded the path; '+' stays '+' */
	const char *b64 = http_path_rest(req);
	unsigned char *der = NULL;
	long len = -1;

	if (!moica_ready(req))
		return;
	if (strlen(b64) <= MOICA_OCSP_REQ_MAX / 3 * 4 + 4) {
		der = xmalloc(MOICA_OCSP_REQ_MAX);
		len = sim_b64_decode(b64, der, MOICA_OCSP_REQ_MAX);
	}
	moica_ocsp_reply(req, der, len > 0 ? len : 0);
	free(der);
}

/* ---- the module ---- */

static int
moica_init(const struct sim_settings *settings, const char **error_r)
{
	const char *id = getenv("ISSO_SIM_MOICA_CLIENT_ID");
	const char *secret = getenv("ISSO_SIM_MOICA_SECRET");
	int ret = 0;

	moica.client_id = xstrdup(id != NULL && *id != '\0' ? id : "isso");
	moica.secret = xstrdup(secret != NULL && *secret != '\0' ? secret : "isso-sim");
	if (settings->pki_dir != NULL) {
		ret = moica_load(settings->pki_dir, error_r);
		if (ret != 0)
			moica_unload();
	}
	return ret;
}

static void
moica_routes(struct http_server *srv)
{
	http_route(srv, HTTP_POST, "/moica/v1/id-check", moica_id_check_handler, NULL);
	http_route(srv, HTTP_GET, "/moica/crl", moica_crl_handler, NULL);
	http_route(srv, HTTP_POST, "/moica/ocsp", moica_ocsp_post_handler, NULL);
	http_route(srv, HTTP_GET, MOICA_OCSP_PREFIX, moica_ocsp_get_handler, NULL);
}

static void
moica_deinit(void)
{
	moica_unload();
	pthread_mutex_lock(&moica.lock);
	for (size_t i = 0; i < SIM_MOICA_RECORDS; i++) {
		ASN1_INTEGER_free(moica.records[i].serial);
		moica.records[i].serial = NULL;
	}
	pthread_mutex_unlock(&moica.lock);
	free(moica.client_id);
	xfree_secret(moica.secret);
	moica.client_id = moica.secret = NULL;
}

const struct sim_service sim_service_moica = {
    .name = "moica",
    .init = moica_init,
    .routes = moica_routes,
    .deinit = moica_deinit,
};
