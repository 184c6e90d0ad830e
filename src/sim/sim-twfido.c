/* TW FidO (行動自然人憑證) SP API, as MOI's v2.9 spec and the public clients
 * describe it, for op_code ATH:
 *
 *   POST /moise/sp/getSpTicket           ATH-01: issues an sp_ticket
 *                                        (I-SCAN, APP2APP, MWEB2APP)
 *   POST /moise/sp/requestAthOrSignPush  ATH-03: issues one and "pushes" it
 *                                        to the ID's phone
 *   POST /moise/sp/getAthOrSignResult    ATH-02: pending / result
 *
 * All check sp_service_id and sp_checksum with the configured key and
 * answer with idp_checksum (conn/twfido.h holds the checksum code, shared
 * with the connector). Transactions live in memory (bounded) until a while
 * after they expire. The citizen's phone side:
 *
 *   GET  /phone/mobilecert/pending?id_num=ID   tickets waiting for this ID
 *   POST /phone/mobilecert/approve?ticket=T[&as=ID][&cert=KIND]
 *   POST /phone/mobilecert/deny?ticket=T
 *   POST /phone/mobilecert/open-link?link=L[&answer=deny][&as=ID]
 *
 * T is the sp_ticket (what scanning the QR code yields), the
 * transaction_id, or a national ID (its newest pending push); L is the
 * APP-API-01 app link (mobilemoica://…) the login page offers, answered
 * with the URL the app sends the citizen back to; `as` is the ID of the phone's owner when it is
 * not the ticket's (to test that the method notices). Also `isso-sim phone mobilecert …`.
 *
 * The result's certificate: with the test PKI (--pki DIR) the test MOICA
 * CA (DIR/moica.crt, .key) issues one per answer, recorded with the sim's
 * MOICA (its OCSP answers good, sim-moica.c); without it, a throwaway CA
 * made at start. KIND makes the phone hold a bad one, for the tests of the
 * method's check: "foreign" (issued by the PKI's look-alike rogue CA),
 * "expired", "revoked" (OCSP and the CRL say so), "other-id" (another
 * person's name and ID digits), "none" (no certificate). See
 * docs/connectors/twfido.md. */
#include "sim/sim.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "conn/twfido.h"
#include "lib/hex.h"
#include "lib/b64.h"
#include "lib/buf.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"

#define TX_MAX          10000 /* transactions kept; the oldest goes first */
#define TX_BUCKETS      4096
#define TX_KEEP_S       600 /* how long an expired or answered one still answers */
#define TX_TXN_MAX      100
#define TX_HINT_MAX     1024
#define TX_DEFAULT_TIME 60
#define TX_SP_NAME      "臺北市政府 (isso-sim)"
#define TX_TICKET_MAX   8192
#define TX_IFACE_TICKET "SP-API-ATH-01"
#define TX_IFACE_RESULT "SP-API-ATH-02"
#define TX_IFACE_PUSH   "SP-API-ATH-03"
#define TX_CA_NAME      "isso-sim MOICA test CA"
#define TX_CERT_DAYS    365
#define TX_POLL_MS      4000 /* the spec's pause between ATH-02 polls */
#define TX_NAME_MAX     120  /* bytes of a citizen's name put in a certificate */

enum tx_state { TX_PENDING, TX_APPROVED, TX_DENIED };

struct tx {
	struct tx *next; /* hash chain by transaction_id */
	char txn[TX_TXN_MAX + 1];
	char ticket_id[44];
	char id_num[11];
	char id_hash[65];       /* what the ticket carries */
	char approver_hash[65]; /* whose phone approved */
	char approver_id[11];   /* likewise: the ID its certificate is for */
	char cert_kind[12];     /* "" (the approver's own) or a bad one's KIND */
	char *hint;
	char *sp_ticket;
	char op_mode[12]; /* I-SCAN, APP2APP, MWEB2APP or PUSH (ATH-03) */
	enum tx_state state;
	struct timespec expires;  /* CLOCK_MONOTONIC */
	struct timespec answered; /* likewise; for the purge */
	time_t expires_wall;
	uint64_t seq;
	/* ATH-02 asks for this ticket, and how many came sooner than the
	 * spec's 4 s after the one before (from any node of the caller) */
	int polls, fast_polls;
	struct timespec last_poll; /* CLOCK_MONOTONIC */
};

static struct {
	pthread_mutex_t lock;
	struct tx *buckets[TX_BUCKETS];
	size_t count;
	uint64_t seq;
	char *sp_id;
	unsigned char key[TWFIDO_KEY_LEN];
	int min_time_limit;
	/* A throwaway CA made at start, and one key all citizens'
	 * certificates carry (the subject key does not matter here). */
	EVP_PKEY *ca_key, *holder_key;
	X509 *ca_cert;
	/* The test PKI's MOICA CA and look-alike rogue CA (--pki), or NULL. */
	X509 *pki_ca, *rogue_ca;
	EVP_PKEY *pki_ca_key, *rogue_ca_key;
} twfido = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The certificate kinds the phone may be told to hold (cert=KIND). */
static const char *const tx_cert_kinds[] = {"foreign", "expired", "revoked", "other-id", "none"};

/* The spec's messages (§伍) for the codes the simulator answers. */
static const struct {
	const char *code, *message;
} tx_messages[] = {
    {"PM_INV_NF", "缺少參數或者格式不正確"},
    {"SPSVCID_NF", "Sp service id 未找到對應之 SP 資訊"},
    {"INV_SP_CHECKSUM", "SP CHECKSUM 檢驗失敗"},
    {"PM_IDN_FT_ERR", "身份證字號格式錯誤"},
    {"TGT_INV", "無效的操作對象代碼"},
    {"SPTKT_TIME_FT_ERR", "自訂 Sp_ticket 逾期時間格式錯誤"},
    {"SPTKT_TIME_ORV", "自訂 Sp_ticket 逾期時間超過範圍"},
    {"TXNLOG_INS_ERR", "認證簽署紀錄DB 資料表寫入失敗"},
    {"IDNUM_USERPROF_NF", "身分證字號未找到對應之使用者資訊"},
    {"SPTKTID_SPTKT_NF", "Sp_ticket_id 未找到對應之Sp_ticket"},
    {"SPTKTID_TXNLOG_NF", "查無使用者認證/簽署結果"},
    {"SPTKT_OVD", "Sp_ticket 逾期"},
    {"APP_USER_CANCEL", "APP 簽章時使用者取消"},
    {"PS_FCM_NOT_FOUND", "APP 推播資源失效"},
};

static long
tx_ms_until(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
}

static bool
tx_expired(const struct tx *t)
{
	return tx_ms_until(&t->expires) <= 0;
}

static unsigned
tx_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % TX_BUCKETS;
}

static void
tx_free(struct tx *t)
{
	if (t == NULL)
		return;
	free(t->hint);
	free(t->sp_ticket);
	explicit_bzero(t, sizeof(*t));
	free(t);
}

/* Called with the lock held. */
static struct tx *
tx_find(const char *txn)
{
	struct tx *t = twfido.buckets[tx_hash(txn)];

	while (t != NULL && strcmp(t->txn, txn) != 0)
		t = t->next;
	return t;
}

/* Unlinks and frees t. Lock held. */
static void
tx_remove(struct tx *t)
{
	struct tx **pp = &twfido.buckets[tx_hash(t->txn)];

	while (*pp != NULL && *pp != t)
		pp = &(*pp)->next;
	if (*pp == t) {
		*pp = t->next;
		twfido.count--;
	}
	tx_free(t);
}

/* True when nobody needs t any more: expired or answered over TX_KEEP_S
 * ago. */
static bool
tx_stale(const struct tx *t)
{
	const struct timespec *since = t->state == TX_PENDING ? &t->expires : &t->answered;

	return tx_ms_until(since) < -(long)TX_KEEP_S * 1000;
}

/* Makes room for one more transaction. Lock held. */
static void
tx_make_room(void)
{
	struct tx *oldest = NULL;

	if (twfido.count < TX_MAX)
		return;
	for (size_t b = 0; b < TX_BUCKETS; b++) {
		struct tx *t = twfido.buckets[b], *next;

		for (; t != NULL; t = next) {
			next = t->next;
			if (tx_stale(t))
				tx_remove(t);
		}
	}
	if (twfido.count < TX_MAX)
		return;
	for (size_t b = 0; b < TX_BUCKETS; b++) {
		for (struct tx *t = twfido.buckets[b]; t != NULL; t = t->next) {
			if (oldest == NULL || t->seq < oldest->seq)
				oldest = t;
		}
	}
	tx_remove(oldest);
}

/* ---- the SP API ---- */

static void
tx_reply_error(struct http_req *req, const char *iface, const char *code)
{
	const char *message = "";
	char name[TWFIDO_CODE_MAX];
	json_t *o;

	for (size_t i = 0; i < ISSO_N_ELEMENTS(tx_messages); i++) {
		if (strcmp(tx_messages[i].code, code) == 0)
			message = tx_messages[i].message;
	}
	snprintf(name, sizeof(name), "%s-%s", iface, code);
	o = json_pack("{s:s, s:s}", "error_code", name, "error_message", message);
	if (o == NULL)
		abort();
	http_send_json(req, 200, o);
}

/* Not JSON at all: the framework's own 400, as a Spring service answers. */
static void
tx_reply_bad_request(struct http_req *req)
{
	json_t *o = json_pack("{s:i, s:s, s:s}", "status", 400, "error", "Bad Request", "path",
	                      http_path(req));

	if (o == NULL)
		abort();
	http_send_json(req, 400, o);
}

/* The request body as a JSON object, or NULL (already answered). */
static json_t *
tx_read_json(struct http_req *req)
{
	size_t len;
	const char *body = http_body(req, &len);
	json_t *j = body != NULL ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;

	if (!json_is_object(j)) {
		json_decref(j);
		tx_reply_bad_request(req);
		return NULL;
	}
	return j;
}

static const char *
tx_str(const json_t *o, const char *name)
{
	return json_string_value(json_object_get(o, name));
}

/* Checks the fields (concatenated) against sp_checksum. */
static bool
tx_checksum_ok(const char *const *fields, size_t n, const char *checksum)
{
	struct buf payload;
	bool ok = false;

	buf_init(&payload, 64 * 1024);
	for (size_t i = 0; i < n; i++) {
		if (fields[i] != NULL && buf_addstr(&payload, fields[i]) != 0)
			goto out;
	}
	ok = twfido_checksum_verify(twfido.key, payload.data != NULL ? payload.data : "",
	                            payload.len, checksum);
out:
	buf_free_secret(&payload);
	return ok;
}

static void
tx_seal(const char *const *fields, size_t n, char out[TWFIDO_CHECKSUM_LEN + 1])
{
	struct buf payload;

	buf_init(&payload, 64 * 1024);
	for (size_t i = 0; i < n; i++) {
		if (fields[i] != NULL && buf_addstr(&payload, fields[i]) != 0)
			abort();
	}
	if (twfido_checksum_seal(twfido.key, NULL, payload.data != NULL ? payload.data : "",
	                         payload.len, out) != 0)
		abort();
	buf_free_secret(&payload);
}

/* time_limit: absent (the default), an integer or a string of digits.
 * Returns the seconds, or -1 when malformed. */
static long
tx_time_limit(const json_t *v)
{
	const char *s;
	char *end;
	long n;

	if (v == NULL || json_is_null(v))
		return TX_DEFAULT_TIME;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		/* out of range either way: clamp for the range check */
		return i < 0 ? 0 : i > 100000 ? 100000 : (long)i;
	}
	s = json_string_value(v);
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return n;
}

/* base64url(payload JSON) "." base64url(SHA-256 of the first part). */
static char *
tx_make_ticket(const struct tx *t, const char *op_mode)
{
	char when[32], *json, *seg, *digest_b64, *ticket;
	unsigned char digest[32];
	time_t local = t->expires_wall + 8 * 3600; /* Asia/Taipei, no DST */
	struct tm tm;
	json_t *o;

	gmtime_r(&local, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "transaction_id",
	              t->txn, "op_code", "ATH", "op_mode", op_mode, "sp_service_id", twfido.sp_id,
	              "sp_ticket_id", t->ticket_id, "sp_name", TX_SP_NAME, "hint", t->hint,
	              "expiration_time", when, "hashed_id_num", t->id_hash, "version", "2.9");
	if (o == NULL)
		abort();
	json = json_dumps(o, JSON_COMPACT);
	if (json == NULL)
		abort();
	seg = xmalloc(b64url_encoded_len(strlen(json)) + 1);
	b64url_encode(json, strlen(json), seg);
	secret_sha256(seg, strlen(seg), digest);
	digest_b64 = xmalloc(b64url_encoded_len(sizeof(digest)) + 1);
	b64url_encode(digest, sizeof(digest), digest_b64);
	ticket = xasprintf("%s.%s", seg, digest_b64);
	free(digest_b64);
	free(seg);
	free(json);
	json_decref(o);
	return ticket;
}

static bool
tx_txn_valid(const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;

	if (len == 0 || len > TX_TXN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

static bool
tx_enrolled(const char *id_num)
{
	const json_t *c = sim_ident_by_id(id_num);

	return c != NULL && json_is_true(json_object_get(c, "mobile_cert_enrolled"));
}

/* ---- certificates ---- */

/* A fresh random serial and validity now..+TX_CERT_DAYS into x. */
static bool
tx_cert_basics(X509 *x)
{
	ASN1_INTEGER *serial = NULL;
	BIGNUM *bn = BN_new();
	bool ok = bn != NULL && BN_rand(bn, 120, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
	          (serial = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
	          X509_set_version(x, X509_VERSION_3) == 1 &&
	          X509_set_serialNumber(x, serial) == 1 &&
	          X509_gmtime_adj(X509_getm_notBefore(x), 0) != NULL &&
	          X509_gmtime_adj(X509_getm_notAfter(x), (long)TX_CERT_DAYS * 86400) != NULL;

	ASN1_INTEGER_free(serial);
	BN_free(bn);
	return ok;
}

static bool
tx_cert_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	bool ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* The CA key and self-signed certificate, and the holders' key. */
static bool
tx_ca_make(void)
{
	X509 *x = X509_new();
	X509_NAME *name;
	bool ok = false;

	twfido.ca_key = EVP_EC_gen("P-256");
	twfido.holder_key = EVP_EC_gen("P-256");
	if (x == NULL || twfido.ca_key == NULL || twfido.holder_key == NULL || !tx_cert_basics(x))
		goto out;
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_NID(name, NID_countryName, MBSTRING_ASC,
	                               (const unsigned char *)"TW", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC,
	                               (const unsigned char *)TX_CA_NAME, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, twfido.ca_key) != 1 ||
	    !tx_cert_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
	    !tx_cert_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    !tx_cert_ext(x, x, NID_subject_key_identifier, "hash") ||
	    X509_sign(x, twfido.ca_key, EVP_sha256()) <= 0)
		goto out;
	twfido.ca_cert = x;
	x = NULL;
	ok = true;
out:
	X509_free(x);
	return ok;
}

/* The approving citizen's certificate as standard base64 of its DER
 * (malloc'd): subject C=TW, CN=name (UTF8String), serialNumber=12 zeros
 * and the last 4 digits of the ID (with the test PKI; without it the 4
 * digits alone), as MOICA certificates carry; keyUsage digitalSignature
 * and nonRepudiation, key identifiers. Issued by the test PKI's MOICA CA
 * and recorded with the sim's MOICA (revoked for kind "revoked"), else by
 * the throwaway CA. kind (see tx_cert_kinds; "" for the approver's own)
 * makes a bad one. NULL when the citizen has no usable name in the
 * identities file, or for kind "none". */
static char *
tx_make_cert(const char *id_num, const char *kind)
{
	const json_t *c = sim_ident_by_id(id_num);
	const char *name = json_string_value(json_object_get(c, "name"));
	size_t id_len = strlen(id_num);
	bool foreign = strcmp(kind, "foreign") == 0, other = strcmp(kind, "other-id") == 0;
	X509 *issuer =
	    twfido.pki_ca != NULL ? (foreign ? twfido.rogue_ca : twfido.pki_ca) : twfido.ca_cert;
	EVP_PKEY *issuer_key = twfido.pki_ca != NULL
	                           ? (foreign ? twfido.rogue_ca_key : twfido.pki_ca_key)
	                           : twfido.ca_key;
	unsigned char *der = NULL;
	X509 *x = NULL;
	X509_NAME *subject;
	char *out = NULL, serial_number[17];
	int n, last4;

	if (strcmp(kind, "none") == 0)
		return NULL;
	if (name == NULL || *name == '\0' || strlen(name) > TX_NAME_MAX || id_len < 4 ||
	    issuer == NULL || issuer_key == NULL)
		goto out;
	last4 = (int)strtol(id_num + id_len - 4, NULL, 10);
	if (other) {
		/* someone else: another name, other digits */
		name = "王大同";
		last4 = (last4 + 1) % 10000;
	}
	snprintf(serial_number, sizeof(serial_number), "%s%04d",
	         twfido.pki_ca != NULL ? "000000000000" : "", last4);
	x = X509_new();
	if (x == NULL || !tx_cert_basics(x))
		goto out;
	if (strcmp(kind, "expired") == 0
	        ? (X509_gmtime_adj(X509_getm_notBefore(x), -2L * 365 * 86400) == NULL ||
	           X509_gmtime_adj(X509_getm_notAfter(x), -86400L) == NULL)
	        : X509_gmtime_adj(X509_getm_notBefore(x), -3600L) == NULL)
		goto out;
	subject = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_NID(subject, NID_countryName, MBSTRING_ASC,
	                               (const unsigned char *)"TW", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_NID(subject, NID_commonName, V_ASN1_UTF8STRING,
	                               (const unsigned char *)name, -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_NID(subject, NID_serialNumber, V_ASN1_PRINTABLESTRING,
	                               (const unsigned char *)serial_number, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(issuer)) != 1 ||
	    X509_set_pubkey(x, twfido.holder_key) != 1 ||
	    !tx_cert_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
	    !tx_cert_ext(x, issuer, NID_key_usage, "critical,digitalSignature,nonRepudiation") ||
	    !tx_cert_ext(x, issuer, NID_subject_key_identifier, "hash") ||
	    !tx_cert_ext(x, issuer, NID_authority_key_identifier, "keyid:always") ||
	    X509_sign(x, issuer_key, EVP_sha256()) <= 0)
		goto out;
	if (twfido.pki_ca != NULL && !foreign)
		sim_moica_record(X509_get0_serialNumber(x), strcmp(kind, "revoked") == 0);
	n = i2d_X509(x, &der);
	if (n <= 0)
		goto out;
	out = xmalloc(((size_t)n + 2) / 3 * 4 + 1);
	b64_encode(der, (size_t)n, out);
out:
	if (out == NULL)
		log_warn("twfido_sim_cert_failed", NULL);
	OPENSSL_free(der);
	X509_free(x);
	return out;
}

/* Can the ID's phone receive pushes? `mobile_cert_push: false` in
 * sim/identities.json plays a phone whose app has not been opened for
 * long (the service answers PS_FCM_NOT_FOUND). */
static bool
tx_push_reachable(const char *id_num)
{
	const json_t *c = sim_ident_by_id(id_num);

	return !json_is_false(json_object_get(c, "mobile_cert_push"));
}

/* ATH-01 (push false) and ATH-03 (push true): the same checks, fields
 * and answer, except that ATH-03 has no op_mode, may name a device
 * (device_user_def_desc) and seals its fields in another order. */
static void
tx_issue(struct http_req *req, bool push)
{
	const char *iface = push ? TX_IFACE_PUSH : TX_IFACE_TICKET;
	json_t *j = tx_read_json(req), *sign_info, *o;
	const char *txn, *sp_id, *checksum, *id_num, *op_code, *op_mode, *hint, *sign_data, *dev;
	char masked[32], idp[TWFIDO_CHECKSUM_LEN + 1];
	struct tx *t = NULL;
	long limit;

	if (j == NULL)
		goto out;
	txn = tx_str(j, "transaction_id");
	sp_id = tx_str(j, "sp_service_id");
	checksum = tx_str(j, "sp_checksum");
	id_num = tx_str(j, "id_num");
	op_code = tx_str(j, "op_code");
	op_mode = push ? "PUSH" : tx_str(j, "op_mode");
	hint = tx_str(j, "hint");
	dev = tx_str(j, "device_user_def_desc");
	sign_info = json_object_get(j, "sign_info");
	sign_data = tx_str(sign_info, "sign_data");
	if (txn == NULL || sp_id == NULL || checksum == NULL || id_num == NULL || op_code == NULL ||
	    op_mode == NULL || hint == NULL) {
		tx_reply_error(req, iface, "PM_INV_NF");
		goto out;
	}
	if (!secret_equal(sp_id, twfido.sp_id)) {
		tx_reply_error(req, iface, "SPSVCID_NF");
		goto out;
	}
	if (push) {
		const char *fields[] = {txn, sp_id, id_num, dev, op_code, hint, sign_data};

		if (!tx_checksum_ok(fields, ISSO_N_ELEMENTS(fields), checksum)) {
			tx_reply_error(req, iface, "INV_SP_CHECKSUM");
			goto out;
		}
	} else {
		const char *fields[] = {txn, sp_id, id_num, op_code, op_mode, hint, sign_data};

		if (!tx_checksum_ok(fields, ISSO_N_ELEMENTS(fields), checksum)) {
			tx_reply_error(req, iface, "INV_SP_CHECKSUM");
			goto out;
		}
	}
	if (!tx_txn_valid(txn) || strlen(hint) > TX_HINT_MAX ||
	    (dev != NULL && strlen(dev) > TX_HINT_MAX)) {
		tx_reply_error(req, iface, "PM_INV_NF");
		goto out;
	}
	if (!idnum_is_valid(id_num)) {
		tx_reply_error(req, iface, "PM_IDN_FT_ERR");
		goto out;
	}
	/* the simulator speaks login only: no signing */
	if (strcmp(op_code, "ATH") != 0 ||
	    (!push && strcmp(op_mode, "I-SCAN") != 0 && strcmp(op_mode, "APP2APP") != 0 &&
	     strcmp(op_mode, "MWEB2APP") != 0)) {
		tx_reply_error(req, iface, "TGT_INV");
		goto out;
	}
	limit = tx_time_limit(json_object_get(j, "time_limit"));
	if (limit < 0) {
		tx_reply_error(req, iface, "SPTKT_TIME_FT_ERR");
		goto out;
	}
	if (limit < twfido.min_time_limit || limit > TWFIDO_TIME_LIMIT_MAX) {
		tx_reply_error(req, iface, "SPTKT_TIME_ORV");
		goto out;
	}
	log_mask(id_num, masked);
	if (!tx_enrolled(id_num)) {
		log_info("twfido_not_enrolled", "id", masked, NULL);
		tx_reply_error(req, iface, "IDNUM_USERPROF_NF");
		goto out;
	}
	if (push && !tx_push_reachable(id_num)) {
		log_info("twfido_push_unreachable", "id", masked, NULL);
		tx_reply_error(req, iface, "PS_FCM_NOT_FOUND");
		goto out;
	}

	t = xcalloc(1, sizeof(*t));
	snprintf(t->txn, sizeof(t->txn), "%s", txn);
	secret_token(24, t->ticket_id);
	snprintf(t->id_num, sizeof(t->id_num), "%s", id_num);
	secret_sha256_hex(id_num, strlen(id_num), t->id_hash);
	t->hint = xstrdup(hint);
	clock_gettime(CLOCK_MONOTONIC, &t->expires);
	t->expires.tv_sec += limit;
	t->expires_wall = time(NULL) + limit;
	t->state = TX_PENDING;
	snprintf(t->op_mode, sizeof(t->op_mode), "%s", op_mode);
	/* ATH-03's ticket says I-SCAN: the app shows it as it shows a
	 * scanned one (the real payload for a push is not public) */
	t->sp_ticket = tx_make_ticket(t, push ? "I-SCAN" : op_mode);
	{
		const char *fields[] = {txn, "0", t->sp_ticket};

		tx_seal(fields, ISSO_N_ELEMENTS(fields), idp);
	}
	o = json_pack("{s:s, s:s, s:{s:s, s:s}}", "error_code", "0", "error_message", "", "result",
	              "sp_ticket", t->sp_ticket, "idp_checksum", idp);
	if (o == NULL)
		abort();

	pthread_mutex_lock(&twfido.lock);
	if (tx_find(txn) != NULL) {
		pthread_mutex_unlock(&twfido.lock);
		json_decref(o);
		/* the spec's usual cause: an SP reusing a transaction_id */
		tx_reply_error(req, iface, "TXNLOG_INS_ERR");
		goto out;
	}
	tx_make_room();
	t->seq = ++twfido.seq;
	{
		unsigned b = tx_hash(t->txn);

		t->next = twfido.buckets[b];
		twfido.buckets[b] = t;
		twfido.count++;
	}
	pthread_mutex_unlock(&twfido.lock);
	log_info(push ? "twfido_push_sent" : "twfido_ticket_issued", "id", masked, "op_mode",
	         op_mode, "transaction_id", txn, NULL);
	t = NULL;
	http_send_json(req, 200, o);
out:
	tx_free(t);
	json_decref(j);
}

/* ATH-01. */
static void
tx_ticket_handler(struct http_req *req, void *ctx)
{
	tx_issue(req, false);
}

/* ATH-03. */
static void
tx_push_handler(struct http_req *req, void *ctx)
{
	tx_issue(req, true);
}

/* ATH-02. */
static void
tx_result_handler(struct http_req *req, void *ctx)
{
	json_t *j = tx_read_json(req), *o = NULL;
	const char *txn, *sp_id, *checksum, *ticket_id, *code = NULL;
	char idp[TWFIDO_CHECKSUM_LEN + 1], hash[65], approver[11], kind[12] = "";
	char *cert = NULL;
	struct tx *t;

	if (j == NULL)
		goto out;
	txn = tx_str(j, "transaction_id");
	sp_id = tx_str(j, "sp_service_id");
	checksum = tx_str(j, "sp_checksum");
	ticket_id = tx_str(j, "sp_ticket_id");
	if (txn == NULL || sp_id == NULL || checksum == NULL || ticket_id == NULL) {
		tx_reply_error(req, TX_IFACE_RESULT, "PM_INV_NF");
		goto out;
	}
	if (!secret_equal(sp_id, twfido.sp_id)) {
		tx_reply_error(req, TX_IFACE_RESULT, "SPSVCID_NF");
		goto out;
	}
	{
		const char *fields[] = {txn, sp_id, ticket_id};

		if (!tx_checksum_ok(fields, ISSO_N_ELEMENTS(fields), checksum)) {
			tx_reply_error(req, TX_IFACE_RESULT, "INV_SP_CHECKSUM");
			goto out;
		}
	}
	hash[0] = '\0';
	approver[0] = '\0';
	pthread_mutex_lock(&twfido.lock);
	t = tx_find(txn);
	if (t != NULL && strcmp(t->ticket_id, ticket_id) == 0) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (t->polls > 0 && (now.tv_sec - t->last_poll.tv_sec) * 1000 +
		                            (now.tv_nsec - t->last_poll.tv_nsec) / 1000000 <
		                        TX_POLL_MS)
			t->fast_polls++;
		t->polls++;
		t->last_poll = now;
	}
	if (t == NULL || strcmp(t->ticket_id, ticket_id) != 0)
		code = "SPTKTID_SPTKT_NF";
	else if (t->state == TX_DENIED)
		code = "APP_USER_CANCEL";
	else if (t->state == TX_APPROVED) {
		snprintf(hash, sizeof(hash), "%s", t->approver_hash);
		snprintf(approver, sizeof(approver), "%s", t->approver_id);
		snprintf(kind, sizeof(kind), "%s", t->cert_kind);
	} else if (tx_expired(t))
		code = "SPTKT_OVD";
	else
		code = "SPTKTID_TXNLOG_NF";
	pthread_mutex_unlock(&twfido.lock);
	if (code != NULL) {
		tx_reply_error(req, TX_IFACE_RESULT, code);
		goto out;
	}
	{
		/* signed_response: none for ATH, so "" in the payload */
		const char *fields[] = {txn, "0", hash, ""};

		tx_seal(fields, ISSO_N_ELEMENTS(fields), idp);
	}
	o = json_pack("{s:s, s:s, s:{s:s, s:s}}", "error_code", "0", "error_message", "", "result",
	              "hashed_id_num", hash, "idp_checksum", idp);
	if (o == NULL)
		abort();
	/* the approving citizen's certificate (not in the checksum, as in
	 * the spec); made afresh per answer, outside the lock */
	cert = tx_make_cert(approver, kind);
	if (cert != NULL)
		json_object_set_new(json_object_get(o, "result"), "cert", json_string(cert));
	http_send_json(req, 200, o);
out:
	free(cert);
	explicit_bzero(approver, sizeof(approver));
	json_decref(j);
}

/* ---- the phone ---- */

static const char *
tx_param(struct http_req *req, const char *name)
{
	const char *v = http_form(req, name);

	return v != NULL ? v : http_query(req, name);
}

/* The transaction_id a phone-side reference names: the sp_ticket (its
 * payload's transaction_id) or the transaction_id itself. Into out; false
 * when malformed. */
static bool
tx_ref_txn(const char *ref, char out[TX_TXN_MAX + 1], bool *is_ticket_r)
{
	const char *dot = ref != NULL ? strrchr(ref, '.') : NULL;
	unsigned char *raw = NULL;
	json_t *j = NULL;
	long n;
	bool ok = false;

	*is_ticket_r = dot != NULL;
	if (ref == NULL || strlen(ref) > TX_TICKET_MAX)
		goto out;
	if (dot == NULL) {
		size_t len = strlen(ref);
		ok = tx_txn_valid(ref) && len <= TX_TXN_MAX;
		if (ok)
			memcpy(out, ref, len + 1);
		goto out;
	}
	if (dot == ref)
		goto out;
	raw = xmalloc((size_t)(dot - ref));
	n = b64url_decode(ref, (size_t)(dot - ref), raw, (size_t)(dot - ref));
	if (n <= 0)
		goto out;
	j = json_loadb((const char *)raw, (size_t)n, 0, NULL);
	ok = tx_txn_valid(tx_str(j, "transaction_id"));
	if (ok)
		snprintf(out, TX_TXN_MAX + 1, "%s", tx_str(j, "transaction_id"));
out:
	json_decref(j);
	free(raw);
	return ok;
}

/* The ID's newest pending, unexpired push. Lock held. */
static struct tx *
tx_newest_push(const char *id)
{
	struct tx *best = NULL;

	for (size_t b = 0; b < TX_BUCKETS; b++) {
		for (struct tx *t = twfido.buckets[b]; t != NULL; t = t->next) {
			if (t->state == TX_PENDING && !tx_expired(t) &&
			    strcmp(t->op_mode, "PUSH") == 0 && strcmp(t->id_num, id) == 0 &&
			    (best == NULL || t->seq > best->seq))
				best = t;
		}
	}
	return best;
}

/* The phone answers the transaction ref names (an sp_ticket, a
 * transaction_id, or a national ID: its newest pending push). as: the
 * phone owner's ID when not the ticket's; mode: the op_mode the ticket
 * must have (an app link opens only its own kind), or NULL; cert: the
 * kind of bad certificate the phone holds (tx_cert_kinds), or NULL / "".
 * Returns the HTTP status, with *error_r the error code when not 200;
 * txn_r is the transaction answered. */
static int
tx_answer(const char *ref, const char *as, bool approve, const char *mode, const char *cert,
          char txn_r[TX_TXN_MAX + 1], const char **error_r)
{
	char owner[11], id[11], masked[32];
	bool is_ticket = false, by_id;
	struct tx *t;
	int status = 200;

	*error_r = NULL;
	by_id = ref != NULL && strlen(ref) <= 16 && idnum_normalize(ref, id) && idnum_is_valid(id);
	if (!by_id && !tx_ref_txn(ref, txn_r, &is_ticket)) {
		*error_r = "invalid_ticket";
		return 400;
	}
	if (as != NULL && *as != '\0' && (!idnum_normalize(as, owner) || !idnum_is_valid(owner))) {
		*error_r = "invalid_id";
		return 400;
	}
	if (cert != NULL && *cert != '\0') {
		size_t k;

		for (k = 0;
		     k < ISSO_N_ELEMENTS(tx_cert_kinds) && strcmp(tx_cert_kinds[k], cert) != 0; k++)
			;
		if (k == ISSO_N_ELEMENTS(tx_cert_kinds)) {
			*error_r = "invalid_cert";
			return 400;
		}
	}
	if (approve && as != NULL && *as != '\0' && !tx_enrolled(owner)) {
		*error_r = "not_enrolled";
		return 403;
	}
	pthread_mutex_lock(&twfido.lock);
	t = by_id ? tx_newest_push(id) : tx_find(txn_r);
	if (t == NULL || (is_ticket && strcmp(t->sp_ticket, ref) != 0)) {
		status = 404;
		*error_r = "no_such_transaction";
	} else if (mode != NULL && strcmp(t->op_mode, mode) != 0) {
		status = 400;
		*error_r = "wrong_mode";
	} else if (t->state != TX_PENDING) {
		status = 409;
		*error_r = "already_answered";
	} else if (tx_expired(t)) {
		status = 410;
		*error_r = "expired";
	} else {
		if (as == NULL || *as == '\0')
			snprintf(owner, sizeof(owner), "%s", t->id_num);
		t->state = approve ? TX_APPROVED : TX_DENIED;
		clock_gettime(CLOCK_MONOTONIC, &t->answered);
		if (approve) {
			secret_sha256_hex(owner, strlen(owner), t->approver_hash);
			snprintf(t->approver_id, sizeof(t->approver_id), "%s", owner);
			snprintf(t->cert_kind, sizeof(t->cert_kind), "%s",
			         cert != NULL ? cert : "");
		}
		snprintf(txn_r, TX_TXN_MAX + 1, "%s", t->txn);
		log_mask(t->id_num, masked);
	}
	pthread_mutex_unlock(&twfido.lock);
	explicit_bzero(id, sizeof(id));
	if (status == 200)
		log_info(approve ? "twfido_approved" : "twfido_denied", "id", masked,
		         "transaction_id", txn_r, NULL);
	return status;
}

static void
tx_phone_answer(struct http_req *req, bool approve)
{
	const char *error = NULL;
	char txn[TX_TXN_MAX + 1];
	json_t *o;
	int status;

	status = tx_answer(tx_param(req, "ticket"), tx_param(req, "as"), approve, NULL,
	                   tx_param(req, "cert"), txn, &error);
	if (status != 200) {
		sim_send_error(req, status, error);
		return;
	}
	o = json_pack("{s:s, s:s}", "transaction_id", txn, "state",
	              approve ? "approved" : "denied");
	if (o == NULL)
		abort();
	http_send_json(req, 200, o);
}

/* The app opened through an APP-API-01 link: answers the link's ticket
 * (which must be of the link's kind) and tells where the app sends the
 * citizen back: rtn_url as it came (the app's real behaviour with rtn_val
 * is not public; iSSO does not need it back). */
static void
tx_phone_open_link(struct http_req *req, void *ctx)
{
	const char *link = tx_param(req, "link"), *answer = tx_param(req, "answer");
	const char *error = NULL;
	char *ticket = NULL, *rtn_url = NULL, *rtn_val = NULL, txn[TX_TXN_MAX + 1];
	enum twfido_mode mode;
	bool approve;
	json_t *o;
	int status;

	if (answer != NULL && strcmp(answer, "approve") != 0 && strcmp(answer, "deny") != 0) {
		sim_send_error(req, 400, "invalid_answer");
		goto out;
	}
	approve = answer == NULL || strcmp(answer, "approve") == 0;
	if (twfido_app_link_parse(link, &mode, &ticket, &rtn_url, &rtn_val) != 0) {
		sim_send_error(req, 400, "invalid_link");
		goto out;
	}
	status = tx_answer(ticket, tx_param(req, "as"), approve,
	                   mode == TWFIDO_MODE_MWEB2APP ? "MWEB2APP" : "APP2APP",
	                   tx_param(req, "cert"), txn, &error);
	if (status != 200) {
		sim_send_error(req, status, error);
		goto out;
	}
	o = json_pack("{s:s, s:s, s:s, s:s}", "transaction_id", txn, "state",
	              approve ? "approved" : "denied", "return_url", rtn_url, "return_value",
	              rtn_val);
	if (o == NULL)
		abort();
	http_send_json(req, 200, o);
out:
	free(ticket);
	free(rtn_url);
	free(rtn_val);
}

static void
tx_phone_approve(struct http_req *req, void *ctx)
{
	tx_phone_answer(req, true);
}

static void
tx_phone_deny(struct http_req *req, void *ctx)
{
	tx_phone_answer(req, false);
}

/* The pending, unexpired tickets for an ID, newest first. */
static void
tx_phone_pending(struct http_req *req, void *ctx)
{
	const char *raw = http_query(req, "id_num");
	const struct tx **hits = NULL;
	json_t *list = NULL;
	char id[11];
	size_t n = 0;

	if (raw == NULL || !idnum_normalize(raw, id) || !idnum_is_valid(id)) {
		sim_send_error(req, 400, "invalid_id");
		goto out;
	}
	list = json_array();
	if (list == NULL)
		abort();
	pthread_mutex_lock(&twfido.lock);
	hits = xcalloc(twfido.count + 1, sizeof(*hits));
	for (size_t b = 0; b < TX_BUCKETS; b++) {
		for (const struct tx *t = twfido.buckets[b]; t != NULL; t = t->next) {
			if (t->state == TX_PENDING && !tx_expired(t) && strcmp(t->id_num, id) == 0)
				hits[n++] = t;
		}
	}
	/* newest first: an insertion sort on the sequence number (few hits) */
	for (size_t i = 1; i < n; i++) {
		for (size_t k = i; k > 0 && hits[k - 1]->seq < hits[k]->seq; k--) {
			const struct tx *tmp = hits[k];

			hits[k] = hits[k - 1];
			hits[k - 1] = tmp;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct tx *t = hits[i];
		json_t *o =
		    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:i}", "transaction_id",
		              t->txn, "sp_ticket", t->sp_ticket, "sp_ticket_id", t->ticket_id,
		              "op_mode", t->op_mode, "hint", t->hint, "sp_name", TX_SP_NAME,
		              "expires_in_ms", (json_int_t)tx_ms_until(&t->expires), "polls",
		              t->polls, "fast_polls", t->fast_polls);

		if (o == NULL)
			abort();
		json_array_append_new(list, o);
	}
	pthread_mutex_unlock(&twfido.lock);
	http_send_json(req, 200, list);
	list = NULL;
out:
	free(hits);
	json_decref(list);
}

/* ---- service ---- */

static int
tx_init(const struct sim_settings *settings, const char **error_r)
{
	int ret = ISSO_ERR_INVALID;

	if (settings->twfido_sp_id == NULL || *settings->twfido_sp_id == '\0' ||
	    strlen(settings->twfido_sp_id) > 128) {
		*error_r = "--twfido-sp-id: 1 to 128 characters";
		goto out;
	}
	if (twfido_key_parse(settings->twfido_key, twfido.key) != 0) {
		*error_r = "--twfido-key: 64 hex digits or base64 of 32 bytes";
		goto out;
	}
	if (settings->twfido_min_time_limit < 1 ||
	    settings->twfido_min_time_limit > TWFIDO_TIME_LIMIT_MIN) {
		*error_r = "--twfido-min-time-limit: 1 to 30 seconds";
		goto out;
	}
	if (!tx_ca_make()) {
		*error_r = "cannot create the TW FidO test CA";
		ret = ISSO_ERR_CRYPTO;
		goto out;
	}
	if (settings->pki_dir != NULL) {
		const char *why = NULL;

		if ((twfido.pki_ca = sim_pki_cert(settings->pki_dir, "moica.crt", &why)) == NULL ||
		    (twfido.pki_ca_key = sim_pki_key(settings->pki_dir, "moica.key", &why)) ==
		        NULL ||
		    (twfido.rogue_ca = sim_pki_cert(settings->pki_dir, "rogue-ca.crt", &why)) ==
		        NULL ||
		    (twfido.rogue_ca_key = sim_pki_key(settings->pki_dir, "rogue-ca.key", &why)) ==
		        NULL) {
			*error_r = why != NULL ? why : "cannot read the test PKI's CAs";
			ret = ISSO_ERR_IO;
			goto out;
		}
	}
	twfido.sp_id = xstrdup(settings->twfido_sp_id);
	twfido.min_time_limit = settings->twfido_min_time_limit;
	ret = 0;
out:
	return ret;
}

static void
tx_routes(struct http_server *srv)
{
	http_route(srv, HTTP_POST, "/moise/sp/getSpTicket", tx_ticket_handler, NULL);
	http_route(srv, HTTP_POST, "/moise/sp/getAthOrSignResult", tx_result_handler, NULL);
	http_route(srv, HTTP_POST, "/moise/sp/requestAthOrSignPush", tx_push_handler, NULL);
	http_route(srv, HTTP_GET, "/phone/mobilecert/pending", tx_phone_pending, NULL);
	http_route(srv, HTTP_POST, "/phone/mobilecert/approve", tx_phone_approve, NULL);
	http_route(srv, HTTP_POST, "/phone/mobilecert/deny", tx_phone_deny, NULL);
	http_route(srv, HTTP_POST, "/phone/mobilecert/open-link", tx_phone_open_link, NULL);
}

static void
tx_deinit(void)
{
	pthread_mutex_lock(&twfido.lock);
	for (size_t b = 0; b < TX_BUCKETS; b++) {
		while (twfido.buckets[b] != NULL) {
			struct tx *t = twfido.buckets[b];

			twfido.buckets[b] = t->next;
			tx_free(t);
		}
	}
	twfido.count = 0;
	free(twfido.sp_id);
	twfido.sp_id = NULL;
	explicit_bzero(twfido.key, sizeof(twfido.key));
	X509_free(twfido.ca_cert);
	twfido.ca_cert = NULL;
	EVP_PKEY_free(twfido.ca_key);
	twfido.ca_key = NULL;
	EVP_PKEY_free(twfido.holder_key);
	twfido.holder_key = NULL;
	X509_free(twfido.pki_ca);
	X509_free(twfido.rogue_ca);
	EVP_PKEY_free(twfido.pki_ca_key);
	EVP_PKEY_free(twfido.rogue_ca_key);
	twfido.pki_ca = twfido.rogue_ca = NULL;
	twfido.pki_ca_key = twfido.rogue_ca_key = NULL;
	pthread_mutex_unlock(&twfido.lock);
}

const struct sim_service sim_service_twfido = {
    .name = "twfido",
    .init = tx_init,
    .routes = tx_routes,
    .deinit = tx_deinit,
};

/* ---- isso-sim phone mobilecert … ---- */

static int
tx_cmd_usage(void)
{
	fprintf(
	    stderr,
	    "usage: isso-sim phone mobilecert approve|deny SP_TICKET|TRANSACTION_ID [--as ID]\n"
	    "                                 [--sim URL]\n"
	    "       isso-sim phone mobilecert approve|deny NATIONAL_ID [--sim URL]\n"
	    "         (the ID's newest pending push)\n"
	    "       isso-sim phone mobilecert open-link APP_LINK [--deny] [--as ID] [--sim URL]\n"
	    "       isso-sim phone mobilecert pending NATIONAL_ID [--sim URL]\n"
	    "  URL defaults to $ISSO_SIM_URL or " SIM_DEFAULT_URL "\n");
	return 2;
}

/* s percent-encoded for a query (RFC 3986 unreserved characters kept),
 * malloc'd. */
static char *
tx_pct_encode(const char *s)
{
	char *out = xmalloc(3 * strlen(s) + 1), *o = out;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= 'a' && *p <= 'z') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex_digit_upper(*p >> 4);
			*o++ = hex_digit_upper(*p);
		}
	}
	*o = '\0';
	return out;
}

/* Exit status: 0 done (or tickets pending), 1 nothing to act on (none
 * pending, unknown, expired or already answered), 2 usage or connection
 * error. argv starts at "mobilecert". open-link prints the reply, whose
 * return_url is where the app sends the browser back. */
int
sim_twfido_phone_cmd(int argc, char **argv)
{
	const char *url = getenv("ISSO_SIM_URL");
	const char *action = NULL, *arg = NULL, *as = NULL, *error = NULL;
	char txn[TX_TXN_MAX + 1], id[11];
	char *path = NULL, *body = NULL;
	char *link = NULL;
	json_t *reply = NULL;
	bool is_ticket, deny = false;
	int status = 0, ret = 2;

	if (url == NULL || *url == '\0')
		url = SIM_DEFAULT_URL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--sim") == 0 && i + 1 < argc) {
			url = argv[++i];
		} else if (strncmp(argv[i], "--sim=", 6) == 0) {
			url = argv[i] + 6;
		} else if (strcmp(argv[i], "--as") == 0 && i + 1 < argc) {
			as = argv[++i];
		} else if (strcmp(argv[i], "--deny") == 0) {
			deny = true;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			ret = tx_cmd_usage();
			goto out;
		} else if (action == NULL) {
			action = argv[i];
		} else if (arg == NULL) {
			arg = argv[i];
		} else {
			ret = tx_cmd_usage();
			goto out;
		}
	}
	if (action == NULL || arg == NULL) {
		ret = tx_cmd_usage();
		goto out;
	}
	if (deny && strcmp(action, "open-link") != 0) {
		ret = tx_cmd_usage();
		goto out;
	}
	if (strcmp(action, "pending") == 0 && as == NULL) {
		if (!idnum_normalize(arg, id) || !idnum_is_valid(id)) {
			fprintf(stderr, "isso-sim: %s is not a national ID\n", arg);
			goto out;
		}
		path = xasprintf("/phone/mobilecert/pending?id_num=%s", id);
	} else if (strcmp(action, "approve") == 0 || strcmp(action, "deny") == 0) {
		/* validated here: the reference goes into the query unescaped */
		bool by_id = strlen(arg) <= 16 && idnum_normalize(arg, id) && idnum_is_valid(id);

		if (by_id && as != NULL) {
			fprintf(stderr, "isso-sim: --as goes with a ticket, not an ID\n");
			goto out;
		}
		if (by_id)
			arg = id;
		else if (!tx_ref_txn(arg, txn, &is_ticket)) {
			fprintf(stderr, "isso-sim: not an sp_ticket or a transaction_id\n");
			goto out;
		}
		if (as != NULL && (!idnum_normalize(as, id) || !idnum_is_valid(id))) {
			fprintf(stderr, "isso-sim: --as %s is not a national ID\n", as);
			goto out;
		}
		path = xasprintf("/phone/mobilecert/%s?ticket=%s%s%s", action, arg,
		                 as != NULL ? "&as=" : "", as != NULL ? id : "");
	} else if (strcmp(action, "open-link") == 0) {
		if (as != NULL && (!idnum_normalize(as, id) || !idnum_is_valid(id))) {
			fprintf(stderr, "isso-sim: --as %s is not a national ID\n", as);
			goto out;
		}
		link = tx_pct_encode(arg);
		path = xasprintf("/phone/mobilecert/open-link?answer=%s&link=%s%s%s",
		                 deny ? "deny" : "approve", link, as != NULL ? "&as=" : "",
		                 as != NULL ? id : "");
	} else {
		ret = tx_cmd_usage();
		goto out;
	}
	if (sim_client_request(url, strcmp(action, "pending") == 0 ? "GET" : "POST", path, 5000,
	                       &status, &body, &error) != 0) {
		fprintf(stderr, "isso-sim: %s: %s\n", url, error);
		goto out;
	}
	reply = json_loads(body, 0, NULL);
	if (reply == NULL || (status != 200 && status != 404 && status != 409 && status != 410 &&
	                      !(status == 400 && link != NULL))) {
		fprintf(stderr, "isso-sim: %s: unexpected reply (HTTP %d)\n", url, status);
		goto out;
	}
	json_dumpf(reply, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	if (status != 200 || (json_is_array(reply) && json_array_size(reply) == 0))
		ret = 1;
	else
		ret = 0;
out:
	json_decref(reply);
	free(body);
	free(path);
	free(link);
	return ret;
}
