/* TW FidO connector: ATH-01 getSpTicket, ATH-03 requestAthOrSignPush and
 * ATH-02 getAthOrSignResult over JSON POSTs, the APP-API-01 app link, one
 * outbound request per exchange (thread-safe without locks), the
 * AES-256-GCM checksums with OpenSSL EVP, and a small
 * bounded map that keeps polls of one transaction 4 s apart. See
 * docs/connectors/twfido.md. */
#include "conn/twfido.h"
#include "conn/twfido-private.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "conn/outbound.h"
#include "lib/hex.h"
#include "lib/b64.h"
#include "lib/buf.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"

#define TF_PATH_TICKET     "/moise/sp/getSpTicket"
#define TF_PATH_RESULT     "/moise/sp/getAthOrSignResult"
#define TF_PATH_PUSH       "/moise/sp/requestAthOrSignPush"
#define TF_IFACE_TICKET    "SP-API-ATH-01"
#define TF_IFACE_PUSH      "SP-API-ATH-03"
#define TF_LINK_W2A        "mobilemoica://moica.moi.gov.tw/w2a/verifySign"
#define TF_LINK_A2A        "mobilemoica://moica.moi.gov.tw/a2a/verifySign"
#define TF_IFACE_RESULT    "SP-API-ATH-02"
#define TF_REPLY_MAX       (64 * 1024)
#define TF_REQUEST_MAX     (16 * 1024)
#define TF_PAYLOAD_MAX     (16 * 1024)
#define TF_SP_TICKET_MAX   8192 /* characters of the QR's content we accept */
#define TF_SP_ID_MAX       128
#define TF_TXN_MAX         100 /* the spec's limit on transaction_id */
#define TF_URL_MAX         2048
#define TF_TIMEOUT_DEFAULT 5000
#define TF_IV_LEN          12
#define TF_TAG_LEN         16
#define TF_HASH_HEX_LEN    64
#define TF_POLL_SLOTS      8192
#define TF_POLL_BUCKETS    2048
#define TF_NO_SLOT         (-1)
#define TF_CERT_MAX        16384 /* base64 characters of result.cert we read */

/* When each recently polled transaction was last polled, keyed by the
 * first 16 bytes of the SHA-256 of its transaction_id (320 KiB in all).
 * Slots form chains per bucket; free slots a list. A slot older than the
 * poll interval no longer matters and is reclaimed when the free list
 * runs dry. */
struct tf_poll_slot {
	unsigned char key[16];
	struct timespec at;
	int next;
};

struct conn_twfido {
	char *base_url; /* without a trailing '/' */
	char *sp_service_id;
	unsigned char key[TWFIDO_KEY_LEN];
	long timeout_ms;
	int min_time_limit;
	pthread_mutex_t lock; /* guards the poll map */
	int buckets[TF_POLL_BUCKETS];
	int free_head;
	struct tf_poll_slot slots[TF_POLL_SLOTS];
};

/* ---- checksum ---- */

int
twfido_key_parse(const char *text, unsigned char key[TWFIDO_KEY_LEN])
{
	unsigned char tmp[48];
	size_t len;
	long n;
	int ret = ISSO_ERR_INVALID;

	if (text == NULL)
		goto out;
	len = strlen(text);
	if (len == 2 * TWFIDO_KEY_LEN && hex_decode(text, key, TWFIDO_KEY_LEN)) {
		ret = 0;
		goto out;
	}
	if (len != 44)
		goto out;
	n = b64_decode(text, len, tmp, sizeof(tmp));
	if (n != TWFIDO_KEY_LEN)
		goto out;
	memcpy(key, tmp, TWFIDO_KEY_LEN);
	ret = 0;
out:
	explicit_bzero(tmp, sizeof(tmp));
	if (ret != 0 && key != NULL)
		explicit_bzero(key, TWFIDO_KEY_LEN);
	return ret;
}

int
twfido_checksum_seal(const unsigned char key[TWFIDO_KEY_LEN], const unsigned char *iv,
                     const char *payload, size_t len, char out[TWFIDO_CHECKSUM_LEN + 1])
{
	unsigned char raw[TF_IV_LEN + TF_HASH_HEX_LEN + TF_TAG_LEN];
	char digest[TF_HASH_HEX_LEN + 1];
	EVP_CIPHER_CTX *ctx = NULL;
	int n = 0, fin = 0, ret = ISSO_ERR_CRYPTO;

	out[0] = '\0';
	if (iv != NULL)
		memcpy(raw, iv, TF_IV_LEN);
	else if (RAND_bytes(raw, TF_IV_LEN) != 1)
		goto out;
	secret_sha256_hex(payload, len, digest);
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, TF_IV_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key, raw) != 1 ||
	    EVP_EncryptUpdate(ctx, raw + TF_IV_LEN, &n, (const unsigned char *)digest,
	                      TF_HASH_HEX_LEN) != 1 ||
	    n != TF_HASH_HEX_LEN || EVP_EncryptFinal_ex(ctx, raw + TF_IV_LEN + n, &fin) != 1 ||
	    fin != 0 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TF_TAG_LEN,
	                        raw + TF_IV_LEN + TF_HASH_HEX_LEN) != 1)
		goto out;
	hex_encode(raw, sizeof(raw), out);
	ret = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	explicit_bzero(raw, sizeof(raw));
	return ret;
}

bool
twfido_checksum_verify(const unsigned char key[TWFIDO_KEY_LEN], const char *payload, size_t len,
                       const char *checksum)
{
	unsigned char raw[TF_IV_LEN + TF_HASH_HEX_LEN + TF_TAG_LEN];
	unsigned char plain[TF_HASH_HEX_LEN + 16];
	char digest[TF_HASH_HEX_LEN + 1];
	EVP_CIPHER_CTX *ctx = NULL;
	int n = 0, fin = 0;
	bool ok = false;

	if (checksum == NULL || strlen(checksum) != TWFIDO_CHECKSUM_LEN ||
	    !hex_decode(checksum, raw, sizeof(raw)))
		goto out;
	secret_sha256_hex(payload, len, digest);
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, TF_IV_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key, raw) != 1 ||
	    EVP_DecryptUpdate(ctx, plain, &n, raw + TF_IV_LEN, TF_HASH_HEX_LEN) != 1 ||
	    n != TF_HASH_HEX_LEN ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TF_TAG_LEN,
	                        raw + TF_IV_LEN + TF_HASH_HEX_LEN) != 1 ||
	    EVP_DecryptFinal_ex(ctx, plain + n, &fin) != 1 || fin != 0)
		goto out;
	/* the peer writes the hex digest in lower case, as we do */
	ok = CRYPTO_memcmp(plain, digest, TF_HASH_HEX_LEN) == 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	explicit_bzero(plain, sizeof(plain));
	return ok;
}

/* The fields, concatenated in order (NULL counts as ""), into a wiped
 * buffer's worth of memory; the checksum of that into out. */
static int
tf_checksum_fields(const struct conn_twfido *tf, const char *const *fields, size_t n,
                   char out[TWFIDO_CHECKSUM_LEN + 1])
{
	struct buf payload;
	int ret = ISSO_ERR_INVALID;

	buf_init(&payload, TF_PAYLOAD_MAX);
	for (size_t i = 0; i < n; i++) {
		if (fields[i] != NULL && buf_addstr(&payload, fields[i]) != 0)
			goto out;
	}
	ret = twfido_checksum_seal(tf->key, NULL, payload.data != NULL ? payload.data : "",
	                           payload.len, out);
out:
	buf_free_secret(&payload);
	return ret;
}

static bool
tf_verify_fields(const struct conn_twfido *tf, const char *const *fields, size_t n,
                 const char *checksum)
{
	struct buf payload;
	bool ok = false;

	buf_init(&payload, TF_PAYLOAD_MAX);
	for (size_t i = 0; i < n; i++) {
		if (fields[i] != NULL && buf_addstr(&payload, fields[i]) != 0)
			goto out;
	}
	ok = twfido_checksum_verify(tf->key, payload.data != NULL ? payload.data : "", payload.len,
	                            checksum);
out:
	buf_free_secret(&payload);
	return ok;
}

/* ---- identity checks ---- */

bool
conn_twfido_same_person(const char *ticket_hashed_id_num, const char *hashed_id_num)
{
	size_t len;

	if (ticket_hashed_id_num == NULL || hashed_id_num == NULL)
		return false;
	len = strlen(ticket_hashed_id_num);
	if (len == 0 || len != strlen(hashed_id_num))
		return false;
	return CRYPTO_memcmp(ticket_hashed_id_num, hashed_id_num, len) == 0;
}

bool
conn_twfido_id_matches(const char *hashed_id_num, const char *id_num)
{
	char id[11], want[TF_HASH_HEX_LEN + 1], got[TF_HASH_HEX_LEN + 1];
	bool ok = false;

	if (hashed_id_num == NULL || strlen(hashed_id_num) != TF_HASH_HEX_LEN ||
	    !idnum_normalize(id_num != NULL ? id_num : "", id))
		goto out;
	for (size_t i = 0; i < TF_HASH_HEX_LEN; i++) {
		char c = hashed_id_num[i];

		got[i] = c >= 'A' && c <= 'F' ? (char)(c - 'A' + 'a') : c;
	}
	got[TF_HASH_HEX_LEN] = '\0';
	secret_sha256_hex(id, strlen(id), want);
	ok = CRYPTO_memcmp(want, got, TF_HASH_HEX_LEN) == 0;
out:
	explicit_bzero(id, sizeof(id));
	return ok;
}

/* ---- connector ---- */

static bool
tf_token_valid(const char *s, size_t max)
{
	size_t len;

	if (s == NULL)
		return false;
	len = strlen(s);
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      c == '-' || c == '_' || c == '.' || c == '+' || c == '/' || c == '='))
			return false;
	}
	return true;
}

struct conn_twfido *
conn_twfido_new(const char *base_url, const char *sp_service_id, const char *key, int timeout_ms)
{
	struct conn_twfido *tf = NULL;
	unsigned char k[TWFIDO_KEY_LEN];
	size_t len;

	if (base_url == NULL || sp_service_id == NULL || key == NULL)
		goto out;
	if (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0)
		goto out;
	len = strlen(base_url);
	if (len > TF_URL_MAX || strpbrk(base_url, " \t\r\n?#") != NULL)
		goto out;
	if (!tf_token_valid(sp_service_id, TF_SP_ID_MAX))
		goto out;
	if (twfido_key_parse(key, k) != 0)
		goto out;
	tf = xcalloc(1, sizeof(*tf));
	while (len > 0 && base_url[len - 1] == '/')
		len--;
	tf->base_url = xstrndup(base_url, len);
	tf->sp_service_id = xstrdup(sp_service_id);
	memcpy(tf->key, k, sizeof(k));
	tf->timeout_ms = timeout_ms > 0 ? timeout_ms : TF_TIMEOUT_DEFAULT;
	tf->min_time_limit = TWFIDO_TIME_LIMIT_MIN;
	pthread_mutex_init(&tf->lock, NULL);
	for (size_t i = 0; i < TF_POLL_BUCKETS; i++)
		tf->buckets[i] = TF_NO_SLOT;
	for (int i = 0; i < TF_POLL_SLOTS; i++)
		tf->slots[i].next = i + 1 < TF_POLL_SLOTS ? i + 1 : TF_NO_SLOT;
	tf->free_head = 0;
out:
	explicit_bzero(k, sizeof(k));
	return tf;
}

void
conn_twfido_free(struct conn_twfido *tf)
{
	if (tf == NULL)
		return;
	pthread_mutex_destroy(&tf->lock);
	free(tf->base_url);
	free(tf->sp_service_id);
	explicit_bzero(tf->key, sizeof(tf->key));
	free(tf);
}

void
conn_twfido_set_min_time_limit(struct conn_twfido *tf, int seconds)
{
	if (tf == NULL)
		return;
	if (seconds < 1)
		seconds = 1;
	if (seconds > TWFIDO_TIME_LIMIT_MIN)
		seconds = TWFIDO_TIME_LIMIT_MIN;
	tf->min_time_limit = seconds;
}

int
conn_twfido_poll_interval(void)
{
	return TWFIDO_POLL_INTERVAL_MS;
}

void
conn_twfido_ticket_clear(struct twfido_ticket *ticket)
{
	if (ticket == NULL)
		return;
	free(ticket->sp_ticket);
	memset(ticket, 0, sizeof(*ticket));
}

/* ---- poll pacing ---- */

static long
tf_ms_between(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

/* Frees every slot last used more than the interval ago. Lock held. */
static void
tf_poll_sweep(struct conn_twfido *tf, const struct timespec *now)
{
	for (size_t b = 0; b < TF_POLL_BUCKETS; b++) {
		int *pp = &tf->buckets[b];

		while (*pp != TF_NO_SLOT) {
			struct tf_poll_slot *s = &tf->slots[*pp];
			int idx = *pp;

			if (tf_ms_between(&s->at, now) >= TWFIDO_POLL_INTERVAL_MS) {
				*pp = s->next;
				s->next = tf->free_head;
				tf->free_head = idx;
			} else {
				pp = &s->next;
			}
		}
	}
}

/* Records a poll of txn now; ISSO_ERR_LIMIT when the last one was less
 * than the interval ago, or when too many transactions were polled within
 * it to remember them all (the safe side: the service is not asked). */
static int
tf_poll_admit(struct conn_twfido *tf, const char *txn)
{
	unsigned char digest[32];
	struct timespec now;
	unsigned b;
	int idx, ret = 0;

	secret_sha256(txn, strlen(txn), digest);
	b = ((unsigned)digest[0] << 8 | digest[1]) % TF_POLL_BUCKETS;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&tf->lock);
	for (idx = tf->buckets[b]; idx != TF_NO_SLOT; idx = tf->slots[idx].next) {
		struct tf_poll_slot *s = &tf->slots[idx];

		if (memcmp(s->key, digest, sizeof(s->key)) != 0)
			continue;
		if (tf_ms_between(&s->at, &now) < TWFIDO_POLL_INTERVAL_MS)
			ret = ISSO_ERR_LIMIT;
		else
			s->at = now;
		goto out;
	}
	if (tf->free_head == TF_NO_SLOT)
		tf_poll_sweep(tf, &now);
	if (tf->free_head == TF_NO_SLOT) {
		ret = ISSO_ERR_LIMIT;
		goto out;
	}
	idx = tf->free_head;
	tf->free_head = tf->slots[idx].next;
	memcpy(tf->slots[idx].key, digest, sizeof(tf->slots[idx].key));
	tf->slots[idx].at = now;
	tf->slots[idx].next = tf->buckets[b];
	tf->buckets[b] = idx;
out:
	pthread_mutex_unlock(&tf->lock);
	return ret;
}

/* ---- HTTP ---- */

/* POSTs body (JSON) to base_url + path and parses the reply as a JSON
 * object into *reply_r. 0, ISSO_ERR_IO or ISSO_ERR_TIMEOUT; *http_status_r
 * and detail (OUTBOUND_DETAIL_SIZE) say more for the log. */
static int
tf_post(const struct conn_twfido *tf, const char *path, const char *body, json_t **reply_r,
        long *http_status_r, char *detail, const char **error_r)
{
	static const char *const headers[] = {"Content-Type: application/json; charset=utf-8",
	                                      "Accept: application/json", NULL};
	struct outbound_req req;
	struct outbound_resp resp;
	json_error_t jerr;
	json_t *j = NULL;
	char *url = NULL;
	int ret;

	*reply_r = NULL;
	*http_status_r = 0;
	url = xasprintf("%s%s", tf->base_url, path);
	memset(&req, 0, sizeof(req));
	req.method = OUTBOUND_POST;
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = strlen(body);
	req.agent = "isso-twfido/1";
	req.timeout_ms = tf->timeout_ms;
	req.reply_max = TF_REPLY_MAX;
	req.purpose = "twfido";
	ret = outbound_request(&req, &resp, error_r);
	snprintf(detail, OUTBOUND_DETAIL_SIZE, "%s", resp.detail);
	if (ret == ISSO_ERR_TIMEOUT) {
		*error_r = "TW FidO service did not answer in time";
		goto out;
	}
	if (ret == ISSO_ERR_LIMIT) {
		*error_r = "TW FidO reply too large";
		ret = ISSO_ERR_IO;
		goto out;
	}
	if (ret == ISSO_ERR_DENIED) {
		/* *error_r says why; the refusal is logged */
		ret = ISSO_ERR_IO;
		goto out;
	}
	if (ret < 0) {
		*error_r = "TW FidO service unreachable";
		ret = ISSO_ERR_IO;
		goto out;
	}
	ret = ISSO_ERR_IO;
	*http_status_r = resp.status;
	if (resp.status < 200 || resp.status >= 300) {
		*error_r = "TW FidO service answered with an HTTP error";
		goto out;
	}
	j = json_loadb(resp.body.data != NULL ? resp.body.data : "", resp.body.len,
	               JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j)) {
		*error_r = "TW FidO reply is not a JSON object";
		goto out;
	}
	*reply_r = j;
	j = NULL;
	ret = 0;
out:
	json_decref(j);
	outbound_resp_free(&resp);
	free(url);
	return ret;
}

/* Serialises a request object; callers wipe the text with
 * xfree_secret() (it may hold the citizen's ID). */
static char *
tf_dump(json_t *req)
{
	char *s = json_dumps(req, JSON_COMPACT);

	if (s == NULL)
		abort();
	return s;
}

/* ---- replies ---- */

/* A code from the service: the part before any ':' (some replies append
 * an explanation), trimmed. Named "{interface}-{code}" into name; the bare
 * system code into sys. False when empty or not a code's characters. */
bool
tf_code_split(const char *raw, const char *iface, char name[TWFIDO_CODE_MAX],
              char sys[TWFIDO_CODE_MAX])
{
	const char *p = raw, *end, *s;
	size_t len;

	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strcspn(p, ":");
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	len = (size_t)(end - p);
	if (len == 0 || len >= TWFIDO_CODE_MAX - 16)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      c == '-' || c == '_'))
			return false;
	}
	/* "SP-API-ATH-02-" + code, or a bare code */
	s = p;
	if (len > 7 && strncmp(p, "SP-API-", 7) == 0) {
		const char *q = p + 7;

		while (q < end && *q >= 'A' && *q <= 'Z')
			q++;
		if (q < end && *q == '-') {
			q++;
			while (q < end && *q >= '0' && *q <= '9')
				q++;
			if (q < end && *q == '-' && q + 1 < end)
				s = q + 1;
		}
	}
	snprintf(sys, TWFIDO_CODE_MAX, "%.*s", (int)(end - s), s);
	if (s != p)
		snprintf(name, TWFIDO_CODE_MAX, "%.*s", (int)len, p);
	else
		snprintf(name, TWFIDO_CODE_MAX, "%s-%.*s", iface, (int)len, p);
	return true;
}

static bool
tf_code_in(const char *sys, const char *const *list)
{
	for (; *list != NULL; list++) {
		if (strcmp(sys, *list) == 0)
			return true;
	}
	return false;
}

/* The mapping of the spec's system codes (§伍, 表5-1-1) onto states. */
static const char *const tf_codes_pending[] = {"20002", "20003", "SPTKTID_TXNLOG_NF", NULL};
static const char *const tf_codes_denied[] = {"APP_USER_CANCEL", NULL};
static const char *const tf_codes_expired[] = {"SPTKT_OVD", NULL};
static const char *const tf_codes_not_enrolled[] = {"IDNUM_USERPROF_NF", "IDNUM_DEVPROF_NF", NULL};

/* Reads error_code from a reply into status (state left to the caller).
 * Returns the raw code (borrowed from reply) or NULL with *error_r set. */
static const char *
tf_reply_code(json_t *reply, const char *iface, struct twfido_status *status, char *sys,
              const char **error_r)
{
	const char *raw = json_string_value(json_object_get(reply, "error_code"));

	if (raw == NULL) {
		*error_r = "TW FidO reply has no error_code";
		return NULL;
	}
	if (strcmp(raw, "0") == 0) {
		snprintf(status->code, sizeof(status->code), "0");
		sys[0] = '\0';
		return raw;
	}
	if (!tf_code_split(raw, iface, status->code, sys)) {
		*error_r = "TW FidO reply has a malformed error_code";
		return NULL;
	}
	return raw;
}

/* A string member of the reply's result object, NULL when absent or not a
 * string (or longer than max). */
static const char *
tf_result_str(json_t *reply, const char *name, size_t max)
{
	const char *s = json_string_value(json_object_get(json_object_get(reply, "result"), name));

	return s != NULL && strlen(s) <= max ? s : NULL;
}

/* Decodes the ticket's payload segment (base64url JSON before the last
 * '.') for the ids we poll with. The digest segment only guards against
 * transcription errors (idp_checksum already authenticated the whole
 * ticket): a mismatch is logged, not refused. */
int
tf_ticket_decode(const char *sp_ticket, const char *txn, struct twfido_ticket *t,
                 const char **error_r)
{
	const char *dot = strrchr(sp_ticket, '.');
	unsigned char *raw = NULL, digest[32];
	char *want = NULL;
	json_t *j = NULL;
	const char *v;
	size_t seg_len;
	long n;
	int ret = ISSO_ERR_IO;

	*error_r = "TW FidO sp_ticket is malformed";
	if (dot == NULL || dot == sp_ticket)
		goto out;
	seg_len = (size_t)(dot - sp_ticket);
	while (seg_len > 0 && sp_ticket[seg_len - 1] == '=')
		seg_len--;
	if (seg_len == 0)
		goto out;
	raw = xmalloc(seg_len);
	n = b64url_decode(sp_ticket, seg_len, raw, seg_len);
	if (n <= 0)
		goto out;
	j = json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j))
		goto out;
	v = json_string_value(json_object_get(j, "transaction_id"));
	if (v == NULL || strcmp(v, txn) != 0) {
		*error_r = "TW FidO sp_ticket is for another transaction";
		goto out;
	}
	v = json_string_value(json_object_get(j, "sp_ticket_id"));
	if (!tf_token_valid(v, TWFIDO_TICKET_ID_MAX))
		goto out;
	snprintf(t->sp_ticket_id, sizeof(t->sp_ticket_id), "%s", v);
	v = json_string_value(json_object_get(j, "hashed_id_num"));
	if (v != NULL && tf_token_valid(v, TWFIDO_HASHED_ID_MAX))
		snprintf(t->hashed_id_num, sizeof(t->hashed_id_num), "%s", v);

	secret_sha256(sp_ticket, (size_t)(dot - sp_ticket), digest);
	want = xmalloc(b64url_encoded_len(sizeof(digest)) + 1);
	b64url_encode(digest, sizeof(digest), want);
	if (strncmp(dot + 1, want, strlen(want)) != 0 ||
	    strspn(dot + 1 + strlen(want), "=") != strlen(dot + 1 + strlen(want)))
		log_warn("twfido_ticket_digest_mismatch", NULL);
	ret = 0;
out:
	json_decref(j);
	free(raw);
	free(want);
	return ret;
}

/* Logs a failed exchange (never the ID in full, never the key). */
static void
tf_log_error(const char *iface, const char *masked_id, const char *reason, const char *code,
             long http_status, const char *detail)
{
	char status[16];

	if (reason == NULL)
		reason = "?";
	snprintf(status, sizeof(status), "%ld", http_status);
	if (masked_id != NULL)
		log_warn("twfido_error", "interface", iface, "id", masked_id, "reason", reason,
		         "code", code, "http_status", status, "detail", detail, NULL);
	else
		log_warn("twfido_error", "interface", iface, "reason", reason, "code", code,
		         "http_status", status, "detail", detail, NULL);
}

static bool
tf_hint_valid(const unsigned char *s)
{
	size_t len = strlen((const char *)s);

	return len <= TWFIDO_HINT_MAX && utf8_printable((const char *)s, len, false);
}

/* The push service's codes (spec §伍, 3002-3116): the request did not
 * reach the phone. */
static bool
tf_code_unreachable(const char *sys)
{
	return strncmp(sys, "PS_", 3) == 0;
}

static const char *const tf_op_modes[] = {
    [TWFIDO_MODE_ISCAN] = "I-SCAN",
    [TWFIDO_MODE_APP2APP] = "APP2APP",
    [TWFIDO_MODE_MWEB2APP] = "MWEB2APP",
    [TWFIDO_MODE_PUSH] = NULL, /* ATH-03 has no op_mode */
};

int
conn_twfido_get_ticket(struct conn_twfido *tf, const char *id_num, const char *hint, int time_limit,
                       struct twfido_ticket *ticket_r, struct twfido_status *status_r,
                       const char **error_r)
{
	return conn_twfido_request(tf, TWFIDO_MODE_ISCAN, id_num, hint, time_limit, ticket_r,
	                           status_r, error_r);
}

int
conn_twfido_request(struct conn_twfido *tf, enum twfido_mode mode, const char *id_num,
                    const char *hint, int time_limit, struct twfido_ticket *ticket_r,
                    struct twfido_status *status_r, const char **error_r)
{
	const char *error_dummy, *raw_code, *sp_ticket, *idp, *iface = TF_IFACE_TICKET;
	const char *op_mode = NULL;
	struct twfido_status status_dummy;
	struct twfido_ticket t;
	char id[11] = "", masked[32] = "", checksum[TWFIDO_CHECKSUM_LEN + 1];
	char sys[TWFIDO_CODE_MAX] = "", errbuf[OUTBOUND_DETAIL_SIZE] = "";
	json_t *req = NULL, *reply = NULL;
	char *body = NULL;
	long http_status = 0;
	time_t now;
	int ret = ISSO_ERR_INVALID;

	if (error_r == NULL)
		error_r = &error_dummy;
	if (status_r == NULL)
		status_r = &status_dummy;
	*error_r = NULL;
	memset(status_r, 0, sizeof(*status_r));
	status_r->state = TWFIDO_ERROR;
	memset(&t, 0, sizeof(t));
	if (ticket_r != NULL)
		memset(ticket_r, 0, sizeof(*ticket_r));

	if (tf == NULL || ticket_r == NULL) {
		*error_r = "no TW FidO connector";
		goto out;
	}
	if ((unsigned)mode >= ISSO_N_ELEMENTS(tf_op_modes)) {
		*error_r = "unknown TW FidO mode";
		goto out;
	}
	op_mode = tf_op_modes[mode];
	if (mode == TWFIDO_MODE_PUSH)
		iface = TF_IFACE_PUSH;
	if (id_num == NULL || !idnum_normalize(id_num, id) || !idnum_is_valid(id)) {
		*error_r = "not a national ID or resident certificate number";
		goto out;
	}
	log_mask(id, masked);
	if (hint == NULL)
		hint = "";
	if (!tf_hint_valid((const unsigned char *)hint)) {
		*error_r = "hint is not printable UTF-8 of at most 256 bytes";
		goto out;
	}
	if (time_limit < tf->min_time_limit || time_limit > TWFIDO_TIME_LIMIT_MAX) {
		*error_r = "time_limit must be 30 to 600 seconds";
		goto out;
	}

	secret_uuid(t.transaction_id);
	if (op_mode != NULL) {
		const char *fields[] = {t.transaction_id,
		                        tf->sp_service_id,
		                        id,
		                        "ATH",
		                        op_mode,
		                        hint,
		                        "" /* sign_data: none for ATH */};

		ret = tf_checksum_fields(tf, fields, ISSO_N_ELEMENTS(fields), checksum);
	} else {
		const char *fields[] = {t.transaction_id,
		                        tf->sp_service_id,
		                        id,
		                        "" /* device_user_def_desc: every bound device */,
		                        "ATH",
		                        hint,
		                        "" /* sign_data: none for ATH */};

		ret = tf_checksum_fields(tf, fields, ISSO_N_ELEMENTS(fields), checksum);
	}
	if (ret != 0) {
		*error_r = "cannot compute sp_checksum";
		goto out;
	}
	req = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "transaction_id", t.transaction_id,
	                "sp_service_id", tf->sp_service_id, "sp_checksum", checksum, "id_num", id,
	                "op_code", "ATH", "hint", hint, "time_limit", time_limit);
	if (req == NULL)
		abort();
	if (op_mode != NULL)
		json_object_set_new(req, "op_mode", json_string(op_mode));
	body = tf_dump(req);
	now = time(NULL);
	ret = tf_post(tf, op_mode != NULL ? TF_PATH_TICKET : TF_PATH_PUSH, body, &reply,
	              &http_status, errbuf, error_r);
	if (ret != 0)
		goto out;

	ret = ISSO_ERR_IO;
	raw_code = tf_reply_code(reply, iface, status_r, sys, error_r);
	if (raw_code == NULL)
		goto out;
	if (sys[0] != '\0') {
		if (tf_code_in(sys, tf_codes_not_enrolled)) {
			status_r->state = TWFIDO_NOT_ENROLLED;
			log_info("twfido_not_enrolled", "id", masked, "code", status_r->code, NULL);
			ret = 0;
		} else if (mode == TWFIDO_MODE_PUSH && tf_code_unreachable(sys)) {
			status_r->state = TWFIDO_UNREACHABLE;
			log_info("twfido_push_unreachable", "id", masked, "code", status_r->code,
			         NULL);
			ret = 0;
		} else {
			*error_r = "TW FidO service refused the ticket";
		}
		goto out;
	}
	sp_ticket = tf_result_str(reply, "sp_ticket", TF_SP_TICKET_MAX);
	idp = tf_result_str(reply, "idp_checksum", TWFIDO_CHECKSUM_LEN);
	if (!tf_token_valid(sp_ticket, TF_SP_TICKET_MAX) || idp == NULL) {
		*error_r = "TW FidO reply lacks sp_ticket or idp_checksum";
		goto out;
	}
	{
		/* ATH-01 and ATH-03 seal the same fields */
		const char *fields[] = {t.transaction_id, raw_code, sp_ticket};

		if (!tf_verify_fields(tf, fields, ISSO_N_ELEMENTS(fields), idp)) {
			ret = ISSO_ERR_CRYPTO;
			*error_r = "TW FidO idp_checksum does not verify";
			goto out;
		}
	}
	if (tf_ticket_decode(sp_ticket, t.transaction_id, &t, error_r) != 0)
		goto out;
	t.sp_ticket = xstrdup(sp_ticket);
	t.expires_at = now + time_limit;
	*ticket_r = t;
	memset(&t, 0, sizeof(t));
	status_r->state = TWFIDO_PENDING;
	ret = 0;
out:
	if (ret != 0) {
		status_r->state = TWFIDO_ERROR;
		if (ret != ISSO_ERR_INVALID)
			tf_log_error(iface, masked, *error_r, status_r->code, http_status, errbuf);
	}
	conn_twfido_ticket_clear(&t);
	json_decref(req);
	json_decref(reply);
	if (body != NULL)
		xfree_secret(body);
	explicit_bzero(id, sizeof(id));
	return ret;
}

/* ---- APP-API-01: the app link ---- */

/* A URL the app may send the citizen back to: http(s), no spaces, quotes,
 * angle brackets or control characters. */
static bool
tf_rtn_url_valid(const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;

	if (len == 0 || len > TWFIDO_RTN_URL_MAX)
		return false;
	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' ||
		    c == '`')
			return false;
	}
	return true;
}

static bool
tf_rtn_val_valid(const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;

	return len <= TWFIDO_RTN_VAL_MAX && utf8_printable(s != NULL ? s : "", len, false);
}

/* Appends sep, "name=" and the percent-encoded value ('+', '/', '=' of
 * standard base64, which a query would misread). 0 or ISSO_ERR_LIMIT. */
static int
tf_query_add(struct buf *b, const char *sep, const char *name, const char *value)
{
	int ret = buf_printf(b, "%s%s=", sep, name);

	for (const char *p = value; ret == 0 && *p != '\0'; p++) {
		if (*p == '+' || *p == '/' || *p == '=')
			ret = buf_printf(b, "%%%c%c", hex_digit_upper((unsigned char)*p >> 4),
			                 hex_digit_upper((unsigned char)*p));
		else
			ret = buf_addc(b, *p);
	}
	return ret;
}

static char *
tf_b64url_text(const char *s)
{
	char *out = xmalloc(b64url_encoded_len(strlen(s)) + 1);

	return b64url_encode(s, strlen(s), out);
}

char *
conn_twfido_app_link(enum twfido_mode mode, const char *sp_ticket, const char *rtn_url,
                     const char *rtn_val)
{
	struct buf b;
	char *url64 = NULL, *val64 = NULL, *link = NULL;

	if ((mode != TWFIDO_MODE_MWEB2APP && mode != TWFIDO_MODE_APP2APP) ||
	    !tf_token_valid(sp_ticket, TF_SP_TICKET_MAX) || !tf_rtn_url_valid(rtn_url) ||
	    !tf_rtn_val_valid(rtn_val))
		return NULL;
	url64 = tf_b64url_text(rtn_url);
	val64 = tf_b64url_text(rtn_val != NULL ? rtn_val : "");
	buf_init(&b, 4 * TF_SP_TICKET_MAX);
	buf_printf(&b, "%s", mode == TWFIDO_MODE_MWEB2APP ? TF_LINK_W2A : TF_LINK_A2A);
	if (tf_query_add(&b, "?", "sp_ticket", sp_ticket) == 0 &&
	    tf_query_add(&b, "&", "rtn_url", url64) == 0 &&
	    tf_query_add(&b, "&", "rtn_val", val64) == 0)
		link = buf_detach(&b, NULL);
	buf_free(&b);
	free(url64);
	free(val64);
	return link;
}

/* The value of query parameter name in q (between '?' and the end), or
 * NULL; malloc'd, percent-decoded. */
static char *
tf_query_get(const char *q, const char *name)
{
	size_t nlen = strlen(name);

	while (q != NULL && *q != '\0') {
		const char *end = q + strcspn(q, "&");

		if ((size_t)(end - q) > nlen && strncmp(q, name, nlen) == 0 && q[nlen] == '=') {
			const char *v = q + nlen + 1;
			char *out = xmalloc((size_t)(end - v) + 1), *o = out;

			while (v < end) {
				int hi, lo;

				if (*v == '%' && end - v >= 3 &&
				    (hi = hex_digit_value((unsigned char)v[1])) >= 0 &&
				    (lo = hex_digit_value((unsigned char)v[2])) >= 0) {
					*o++ = (char)(hi << 4 | lo);
					v += 3;
				} else if (*v == '%') {
					free(out);
					return NULL;
				} else {
					*o++ = *v++;
				}
			}
			*o = '\0';
			return out;
		}
		q = *end == '&' ? end + 1 : end;
	}
	return NULL;
}

/* base64url text → malloc'd NUL-terminated string of at most max bytes, no
 * NUL inside. */
static char *
tf_b64url_untext(const char *s, size_t max)
{
	size_t len = s != NULL ? strlen(s) : 0;
	unsigned char *out;
	long n;

	if (s == NULL || len > 2 * max)
		return NULL;
	out = xmalloc(len + 1);
	n = len == 0 ? 0 : b64url_decode(s, len, out, len);
	if (n < 0 || (size_t)n > max || memchr(out, '\0', (size_t)n) != NULL) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	return (char *)out;
}

int
twfido_app_link_parse(const char *link, enum twfido_mode *mode_r, char **sp_ticket_r,
                      char **rtn_url_r, char **rtn_val_r)
{
	const char *q;
	char *ticket = NULL, *url64 = NULL, *val64 = NULL, *url = NULL, *val = NULL;
	int ret = ISSO_ERR_INVALID;

	*sp_ticket_r = *rtn_url_r = *rtn_val_r = NULL;
	if (link == NULL || strlen(link) > TF_SP_TICKET_MAX * 2)
		goto out;
	if (strncmp(link, TF_LINK_W2A "?", strlen(TF_LINK_W2A) + 1) == 0) {
		*mode_r = TWFIDO_MODE_MWEB2APP;
		q = link + strlen(TF_LINK_W2A) + 1;
	} else if (strncmp(link, TF_LINK_A2A "?", strlen(TF_LINK_A2A) + 1) == 0) {
		*mode_r = TWFIDO_MODE_APP2APP;
		q = link + strlen(TF_LINK_A2A) + 1;
	} else {
		goto out;
	}
	ticket = tf_query_get(q, "sp_ticket");
	url64 = tf_query_get(q, "rtn_url");
	val64 = tf_query_get(q, "rtn_val");
	if (!tf_token_valid(ticket, TF_SP_TICKET_MAX))
		goto out;
	url = tf_b64url_untext(url64, TWFIDO_RTN_URL_MAX);
	val = tf_b64url_untext(val64 != NULL ? val64 : "", TWFIDO_RTN_VAL_MAX);
	if (!tf_rtn_url_valid(url) || val == NULL || !tf_rtn_val_valid(val))
		goto out;
	*sp_ticket_r = ticket;
	*rtn_url_r = url;
	*rtn_val_r = val;
	ticket = url = val = NULL;
	ret = 0;
out:
	free(ticket);
	free(url64);
	free(val64);
	free(url);
	free(val);
	return ret;
}

/* A result's cert as sent (standard base64 of a DER X.509 certificate),
 * malloc'd; NULL when absent, empty, longer than TF_CERT_MAX or not
 * base64 text. Read, not trusted: the caller checks it with the card PKI
 * code (docs/connectors/twfido.md). */
static char *
tf_cert_copy(const char *cert_b64)
{
	size_t len;

	if (cert_b64 == NULL)
		return NULL;
	len = strlen(cert_b64);
	if (len == 0 || len > TF_CERT_MAX ||
	    strspn(cert_b64,
	           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n") !=
	        len) {
		log_warn("twfido_cert_unusable", NULL);
		return NULL;
	}
	return xstrdup(cert_b64);
}

int
conn_twfido_poll(struct conn_twfido *tf, const char *transaction_id, const char *sp_ticket_id,
                 struct twfido_status *status_r, char **hashed_id_num_r, char **cert_r,
                 const char **error_r)
{
	const char *error_dummy, *raw_code, *hashed, *signed_response, *idp;
	struct twfido_status status_dummy;
	char checksum[TWFIDO_CHECKSUM_LEN + 1], sys[TWFIDO_CODE_MAX] = "";
	char errbuf[OUTBOUND_DETAIL_SIZE] = "";
	json_t *req = NULL, *reply = NULL;
	char *body = NULL;
	long http_status = 0;
	int ret = ISSO_ERR_INVALID;

	if (error_r == NULL)
		error_r = &error_dummy;
	if (status_r == NULL)
		status_r = &status_dummy;
	*error_r = NULL;
	memset(status_r, 0, sizeof(*status_r));
	status_r->state = TWFIDO_ERROR;
	if (hashed_id_num_r != NULL)
		*hashed_id_num_r = NULL;
	if (cert_r != NULL)
		*cert_r = NULL;

	if (tf == NULL || hashed_id_num_r == NULL) {
		*error_r = "no TW FidO connector";
		goto out;
	}
	if (!tf_token_valid(transaction_id, TF_TXN_MAX) ||
	    !tf_token_valid(sp_ticket_id, TWFIDO_TICKET_ID_MAX)) {
		*error_r = "malformed transaction_id or sp_ticket_id";
		goto out;
	}
	if (tf_poll_admit(tf, transaction_id) != 0) {
		status_r->state = TWFIDO_PENDING;
		*error_r = "polled again within 4 seconds";
		ret = ISSO_ERR_LIMIT;
		goto out;
	}
	{
		const char *fields[] = {transaction_id, tf->sp_service_id, sp_ticket_id};

		ret = tf_checksum_fields(tf, fields, ISSO_N_ELEMENTS(fields), checksum);
		if (ret != 0) {
			*error_r = "cannot compute sp_checksum";
			goto out;
		}
	}
	req = json_pack("{s:s, s:s, s:s, s:s}", "transaction_id", transaction_id, "sp_service_id",
	                tf->sp_service_id, "sp_checksum", checksum, "sp_ticket_id", sp_ticket_id);
	if (req == NULL)
		abort();
	body = tf_dump(req);
	ret = tf_post(tf, TF_PATH_RESULT, body, &reply, &http_status, errbuf, error_r);
	if (ret != 0)
		goto out;

	ret = ISSO_ERR_IO;
	raw_code = tf_reply_code(reply, TF_IFACE_RESULT, status_r, sys, error_r);
	if (raw_code == NULL)
		goto out;
	if (sys[0] != '\0') {
		ret = 0;
		if (tf_code_in(sys, tf_codes_pending)) {
			status_r->state = TWFIDO_PENDING;
		} else if (tf_code_in(sys, tf_codes_denied)) {
			status_r->state = TWFIDO_DENIED;
		} else if (tf_code_in(sys, tf_codes_expired)) {
			status_r->state = TWFIDO_EXPIRED;
		} else if (tf_code_in(sys, tf_codes_not_enrolled)) {
			status_r->state = TWFIDO_NOT_ENROLLED;
		} else {
			*error_r = "TW FidO service returned an error";
			ret = ISSO_ERR_IO;
		}
		goto out;
	}
	hashed = tf_result_str(reply, "hashed_id_num", TWFIDO_HASHED_ID_MAX);
	idp = tf_result_str(reply, "idp_checksum", TWFIDO_CHECKSUM_LEN);
	signed_response =
	    json_string_value(json_object_get(json_object_get(reply, "result"), "signed_response"));
	if (hashed == NULL || *hashed == '\0' || idp == NULL) {
		*error_r = "TW FidO reply lacks hashed_id_num or idp_checksum";
		goto out;
	}
	{
		const char *fields[] = {transaction_id, raw_code, hashed, signed_response};

		if (!tf_verify_fields(tf, fields, ISSO_N_ELEMENTS(fields), idp)) {
			ret = ISSO_ERR_CRYPTO;
			*error_r = "TW FidO idp_checksum does not verify";
			goto out;
		}
	}
	*hashed_id_num_r = xstrdup(hashed);
	if (cert_r != NULL)
		*cert_r = tf_cert_copy(tf_result_str(reply, "cert", TF_CERT_MAX + 1));
	status_r->state = TWFIDO_OK;
	ret = 0;
out:
	if (ret != 0 && ret != ISSO_ERR_LIMIT) {
		status_r->state = TWFIDO_ERROR;
		if (ret != ISSO_ERR_INVALID)
			tf_log_error(TF_IFACE_RESULT, NULL, *error_r, status_r->code, http_status,
			             errbuf);
	}
	json_decref(req);
	json_decref(reply);
	if (body != NULL)
		xfree_secret(body);
	return ret;
}

/* isso-sim's TW FidO SP key, published with iSSO (src/sim/main.c). */
static const unsigned char twfido_sim_key[32] = {
    0x6e, 0xc2, 0x49, 0x96, 0x48, 0x49, 0xd0, 0x03, 0x14, 0xf8, 0xdf, 0xc7, 0xd3, 0x85, 0xd2, 0xf7,
    0x87, 0x68, 0xe2, 0xf1, 0xd2, 0x49, 0xc4, 0x9d, 0xe5, 0x84, 0x9d, 0x0e, 0x0a, 0xfa, 0xad, 0xd4,
};

bool
conn_twfido_is_sim_key(const char *text)
{
	unsigned char k[48];
	size_t len = strlen(text);
	bool same;

	if (len == 64) {
		for (size_t i = 0; i < 32; i++) {
			int hi = hex_digit_value((unsigned char)text[2 * i]),
			    lo = hex_digit_value((unsigned char)text[2 * i + 1]);

			if (hi < 0 || lo < 0)
				goto base64;
			k[i] = (unsigned char)(hi << 4 | lo);
		}
		same = memcmp(k, twfido_sim_key, 32) == 0;
		explicit_bzero(k, sizeof(k));
		return same;
	}
base64:
	if (b64_decode(text, len, k, sizeof(k)) != 32)
		return false;
	same = memcmp(k, twfido_sim_key, 32) == 0;
	explicit_bzero(k, sizeof(k));
	return same;
}
