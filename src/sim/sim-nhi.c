/* The NHI card (健保卡) verification service, in OUR contract's shape
 * (docs/connectors/nhi.md; NHI's own server-side check is not public):
 *
 *   POST /nhi/v1/verify    Basic auth, JSON body
 *
 * The card signed a server random (H_Sign), and the card component
 * encrypted the registration password bound to that random to the
 * service's key (EnCrypt: RSA-OAEP of "NHI-PWD\n" random "\n" password to
 * DIR/nhi-service.crt), so only the service can check the password. The
 * service checks, in this order, that the card is known and the signature
 * over the random verifies with the card's certificate from the test PKI
 * (DIR/nhi/<card_no>.crt; the certificate posted is not trusted), that the
 * blob opens with DIR/nhi-service.key and holds this random, and that the
 * random is fresh for the card; that the national ID is the card holder's;
 * that the card is not suspended; that the password in the blob is the
 * holder's registration password (identities: cards.nhi; compared in
 * constant time). Three wrong passwords in a row suspend the card's web
 * use for --nhi-suspend-seconds (600). State (counters, used randoms)
 * lives in memory, bounded, under one mutex. IDs, passwords, randoms and
 * blobs are never logged. */
#include "sim/sim.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "http/parse.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"

#define NHI_TRIES        3
#define NHI_RANDOM_MAX   128
#define NHI_SIG_MAX      1024 /* bytes: RSA-8192 */
#define NHI_B64_MAX      16384
#define NHI_PASSWORD_MAX 12
#define NHI_RANDOMS_MAX  16384 /* used randoms remembered (all cards) */
#define NHI_PWD_PREFIX   "NHI-PWD\n"

struct nhi_card {
	char card_no[13];
	EVP_PKEY *key;                   /* from DIR/nhi/<card_no>.crt */
	const json_t *holder;            /* identities, or NULL */
	int failures;                    /* wrong passwords in a row */
	struct timespec suspended_until; /* CLOCK_MONOTONIC; 0: not suspended */
};

static struct {
	bool loaded; /* false: no --pki, the endpoint answers 503 */
	struct nhi_card *cards;
	size_t ncards;
	EVP_PKEY *service_key; /* DIR/nhi-service.key: opens the password blobs */
	int suspend_s;
	/* SHA-256 of card_no "\n" random for every random accepted, oldest
	 * overwritten first */
	unsigned char (*randoms)[32];
	size_t nrandoms, next_random;
	char *client_id;
	char *secret;
	pthread_mutex_t lock; /* cards' counters and randoms */
} nhi = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- loading ---- */

static int
nhi_add_card(const char *name, X509 *cert, void *ctx)
{
	struct nhi_card *c = &nhi.cards[nhi.ncards];
	static char error[128];
	const char **error_r = ctx;
	int ret = ISSO_ERR_INVALID;

	if (strlen(name) != 12 || strspn(name, "0123456789") != 12) {
		snprintf(error, sizeof(error), "nhi/%.64s.crt: not a 12-digit card number", name);
		*error_r = error;
		goto out;
	}
	memcpy(c->card_no, name, 13);
	c->key = X509_get_pubkey(cert);
	if (c->key == NULL) {
		snprintf(error, sizeof(error), "nhi/%s.crt: no usable public key", name);
		*error_r = error;
		goto out;
	}
	c->holder = sim_ident_by_nhi_card(name);
	nhi.ncards++;
	ret = 0;
out:
	X509_free(cert);
	return ret;
}

static struct nhi_card *
nhi_card_find(const char *card_no)
{
	for (size_t i = 0; i < nhi.ncards; i++) {
		if (strcmp(nhi.cards[i].card_no, card_no) == 0)
			return &nhi.cards[i];
	}
	return NULL;
}

/* ---- checks ---- */

/* RSA PKCS#1 v1.5 with SHA-256 of msg, signature in base64. */
static bool
nhi_verify_sig(EVP_PKEY *key, const void *msg, size_t len, const char *sig_b64)
{
	unsigned char sig[NHI_SIG_MAX];
	EVP_MD_CTX *md = NULL;
	long slen = sim_b64_decode(sig_b64, sig, sizeof(sig));
	bool ok = false;

	if (slen <= 0)
		goto out;
	md = EVP_MD_CTX_new();
	if (md == NULL)
		abort();
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	     EVP_DigestVerify(md, sig, (size_t)slen, msg, len) == 1;
out:
	EVP_MD_CTX_free(md);
	return ok;
}

/* Records the random for the card; false when it was seen before. */
static bool
nhi_random_fresh(const char *card_no, const char *random)
{
	unsigned char h[32];
	char *s = xasprintf("%s\n%s", card_no, random);
	bool fresh = true;

	secret_sha256(s, strlen(s), h);
	free(s);
	pthread_mutex_lock(&nhi.lock);
	for (size_t i = 0; i < nhi.nrandoms && fresh; i++)
		fresh = memcmp(nhi.randoms[i], h, sizeof(h)) != 0;
	if (fresh) {
		memcpy(nhi.randoms[nhi.next_random], h, sizeof(h));
		nhi.next_random = (nhi.next_random + 1) % NHI_RANDOMS_MAX;
		if (nhi.nrandoms < NHI_RANDOMS_MAX)
			nhi.nrandoms++;
	}
	pthread_mutex_unlock(&nhi.lock);
	return fresh;
}

/* Seconds (rounded up) the card stays suspended; 0 when it is not. Ends
 * an elapsed suspension (the card gets its tries back). Lock held. */
static int
nhi_suspended_for(struct nhi_card *c)
{
	struct timespec now;
	long ms;

	if (c->suspended_until.tv_sec == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (c->suspended_until.tv_sec - now.tv_sec) * 1000 +
	     (c->suspended_until.tv_nsec - now.tv_nsec) / 1000000;
	if (ms > 0)
		return (int)((ms + 999) / 1000);
	c->suspended_until.tv_sec = 0;
	c->suspended_until.tv_nsec = 0;
	c->failures = 0;
	return 0;
}

static bool
nhi_random_valid(const char *s)
{
	size_t n = s != NULL ? strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                                 "0123456789_-")
	                     : 0;

	return n > 0 && n <= NHI_RANDOM_MAX && s[n] == '\0';
}

/* A base64 string of at most NHI_B64_MAX characters. */
static bool
nhi_b64_field(const json_t *v, bool required)
{
	const char *s = json_string_value(v);

	if (v == NULL || json_is_null(v))
		return !required;
	return s != NULL && *s != '\0' && strlen(s) <= NHI_B64_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_") ==
	           strlen(s);
}

/* ---- the handler ---- */

static bool
nhi_authorised(struct http_req *req)
{
	char *user = NULL, *pass = NULL;
	bool user_ok, pass_ok;

	if (parse_basic_auth(http_pool(req), http_header(req, "Authorization"), &user, &pass) ==
	    0) {
		/* both comparisons run: which one failed must not show in the timing */
		user_ok = secret_equal(user, nhi.client_id);
		pass_ok = secret_equal(pass, nhi.secret);
		if (user_ok && pass_ok)
			return true;
	}
	log_info("nhi_client_refused", "remote", http_remote_addr(req), NULL);
	http_set_header(req, "WWW-Authenticate", "Basic realm=\"isso-sim nhi\"");
	sim_send_error(req, 401, "invalid_client");
	return false;
}

static void
nhi_bad_request(struct http_req *req, const char *description)
{
	json_t *o =
	    json_pack("{s:s, s:s}", "error", "invalid_request", "error_description", description);

	if (o == NULL)
		abort();
	http_send_json(req, 400, o);
}

/* Opens the password blob (base64 of RSA-OAEP, SHA-256 and MGF1-SHA-256,
 * to the service key) into plain, which must be "NHI-PWD\n" random "\n"
 * password with this request's random and no NUL. Sets *pwd_r (inside
 * plain) and *pwd_len_r. False when it does not open or is another
 * random's: such a blob says nothing about the password. The caller wipes
 * plain. */
static bool
nhi_blob_open(const char *random, const char *blob_b64, unsigned char plain[NHI_SIG_MAX],
              const unsigned char **pwd_r, size_t *pwd_len_r)
{
	unsigned char blob[NHI_SIG_MAX];
	long blen = sim_b64_decode(blob_b64, blob, sizeof(blob));
	size_t n = NHI_SIG_MAX, plen = strlen(NHI_PWD_PREFIX), rlen = strlen(random);
	EVP_PKEY_CTX *ctx = NULL;
	bool ok = false;

	if (blen <= 0)
		goto out;
	ctx = EVP_PKEY_CTX_new(nhi.service_key, NULL);
	if (ctx == NULL)
		abort();
	if (EVP_PKEY_decrypt_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_decrypt(ctx, plain, &n, blob, (size_t)blen) <= 0)
		goto out;
	if (n < plen + rlen + 1 || memchr(plain, '\0', n) != NULL ||
	    memcmp(plain, NHI_PWD_PREFIX, plen) != 0 || memcmp(plain + plen, random, rlen) != 0 ||
	    plain[plen + rlen] != '\n')
		goto out;
	*pwd_r = plain + plen + rlen + 1;
	*pwd_len_r = n - (plen + rlen + 1);
	ok = true;
out:
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

/* The password from the blob against the holder's registration password,
 * in constant time (only the length may show). */
static bool
nhi_password_ok(struct nhi_card *c, const unsigned char *pwd, size_t len)
{
	const char *want = json_string_value(json_object_get(
	    json_object_get(json_object_get(c->holder, "cards"), "nhi"), "registration_password"));

	return want != NULL && strlen(want) == len && CRYPTO_memcmp(pwd, want, len) == 0;
}

static void
nhi_verify_handler(struct http_req *req, void *ctx)
{
	const char *body, *card_no, *id, *random, *sig, *blob, *holder_id, *reason = NULL;
	struct nhi_card *c;
	json_t *in = NULL, *o;
	unsigned char plain[NHI_SIG_MAX];
	const unsigned char *pwd = NULL;
	size_t len, pwd_len = 0;
	int tries_left = -1, retry_after = -1;

	if (!nhi_authorised(req))
		goto out;
	if (!nhi.loaded) {
		sim_send_error(req, 503, "no_pki");
		goto out;
	}
	body = http_body(req, &len);
	if (body != NULL)
		in = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(in)) {
		nhi_bad_request(req, "the body must be a JSON object");
		goto out;
	}
	card_no = json_string_value(json_object_get(in, "card_no"));
	id = json_string_value(json_object_get(in, "national_id"));
	random = json_string_value(json_object_get(in, "random"));
	sig = json_string_value(json_object_get(in, "signature"));
	blob = json_string_value(json_object_get(in, "password_blob"));
	if (card_no == NULL || strlen(card_no) != 12 || strspn(card_no, "0123456789") != 12) {
		nhi_bad_request(req, "card_no: 12 digits");
		goto out;
	}
	if (id == NULL || !idnum_is_valid(id)) {
		nhi_bad_request(req, "national_id: a national ID or resident certificate number");
		goto out;
	}
	if (!nhi_random_valid(random)) {
		nhi_bad_request(req, "random: 1 to 128 characters [A-Za-z0-9_-]");
		goto out;
	}
	if (!nhi_b64_field(json_object_get(in, "signature"), true) ||
	    !nhi_b64_field(json_object_get(in, "password_blob"), true) ||
	    !nhi_b64_field(json_object_get(in, "cert"), false)) {
		nhi_bad_request(req, "signature, password_blob (and cert): base64");
		goto out;
	}

	c = nhi_card_find(card_no);
	if (c == NULL || c->holder == NULL ||
	    !nhi_verify_sig(c->key, random, strlen(random), sig) ||
	    !nhi_blob_open(random, blob, plain, &pwd, &pwd_len) ||
	    !nhi_random_fresh(card_no, random)) {
		reason = "signature";
		goto reply;
	}
	holder_id = json_string_value(json_object_get(c->holder, "national_id"));
	if (holder_id == NULL || strcmp(holder_id, id) != 0) {
		reason = "mismatch";
		goto reply;
	}
	pthread_mutex_lock(&nhi.lock);
	retry_after = nhi_suspended_for(c);
	pthread_mutex_unlock(&nhi.lock);
	if (retry_after > 0) {
		reason = "suspended";
		goto reply;
	}
	retry_after = -1;
	if (nhi_password_ok(c, pwd, pwd_len)) {
		pthread_mutex_lock(&nhi.lock);
		c->failures = 0;
		pthread_mutex_unlock(&nhi.lock);
		goto reply;
	}
	pthread_mutex_lock(&nhi.lock);
	/* a suspension that began meanwhile (a concurrent attempt) stands */
	retry_after = nhi_suspended_for(c);
	if (retry_after == 0 && ++c->failures >= NHI_TRIES) {
		clock_gettime(CLOCK_MONOTONIC, &c->suspended_until);
		c->suspended_until.tv_sec += nhi.suspend_s;
		retry_after = nhi.suspend_s;
	}
	tries_left = NHI_TRIES - c->failures;
	pthread_mutex_unlock(&nhi.lock);
	if (retry_after > 0) {
		reason = "suspended";
		tries_left = -1;
	} else {
		reason = "password";
		retry_after = -1;
	}

reply:
	if (reason == NULL)
		o = json_pack("{s:s}", "result", "ok");
	else
		o = json_pack("{s:s, s:s}", "result", "fail", "reason", reason);
	if (o == NULL)
		abort();
	if (tries_left >= 0)
		json_object_set_new(o, "tries_left", json_integer(tries_left));
	if (retry_after >= 0)
		json_object_set_new(o, "retry_after", json_integer(retry_after));
	log_info("nhi_verify", "result", reason != NULL ? reason : "ok", NULL);
	http_send_json(req, 200, o);
out:
	explicit_bzero(plain, sizeof(plain));
	json_decref(in);
}

/* ---- the module ---- */

static void
nhi_unload(void)
{
	for (size_t i = 0; i < nhi.ncards; i++)
		EVP_PKEY_free(nhi.cards[i].key);
	free(nhi.cards);
	free(nhi.randoms);
	EVP_PKEY_free(nhi.service_key);
	nhi.service_key = NULL;
	nhi.cards = NULL;
	nhi.randoms = NULL;
	nhi.ncards = nhi.nrandoms = nhi.next_random = 0;
	nhi.loaded = false;
}

static int
nhi_init(const struct sim_settings *settings, const char **error_r)
{
	const char *id = getenv("ISSO_SIM_NHI_CLIENT_ID");
	const char *secret = getenv("ISSO_SIM_NHI_SECRET");
	int ret = 0;

	nhi.client_id = xstrdup(id != NULL && *id != '\0' ? id : "isso");
	nhi.secret = xstrdup(secret != NULL && *secret != '\0' ? secret : "isso-sim");
	nhi.suspend_s = settings->nhi_suspend_seconds > 0 ? settings->nhi_suspend_seconds : 600;
	if (settings->pki_dir == NULL)
		goto out;
	nhi.cards = xcalloc(SIM_PKI_MAX_CERTS, sizeof(*nhi.cards));
	nhi.randoms = xcalloc(NHI_RANDOMS_MAX, sizeof(*nhi.randoms));
	nhi.service_key = sim_pki_key(settings->pki_dir, "nhi-service.key", error_r);
	if (nhi.service_key == NULL) {
		ret = ISSO_ERR_IO;
		nhi_unload();
		goto out;
	}
	if (EVP_PKEY_get_base_id(nhi.service_key) != EVP_PKEY_RSA) {
		*error_r = "nhi-service.key: not an RSA key";
		ret = ISSO_ERR_INVALID;
		nhi_unload();
		goto out;
	}
	ret = sim_pki_each_cert(settings->pki_dir, "nhi", nhi_add_card, error_r, error_r);
	if (ret != 0) {
		nhi_unload();
		goto out;
	}
	nhi.loaded = true;
out:
	return ret;
}

static void
nhi_routes(struct http_server *srv)
{
	http_route(srv, HTTP_POST, "/nhi/v1/verify", nhi_verify_handler, NULL);
}

static void
nhi_deinit(void)
{
	pthread_mutex_lock(&nhi.lock);
	nhi_unload();
	free(nhi.client_id);
	xfree_secret(nhi.secret);
	nhi.client_id = nhi.secret = NULL;
	pthread_mutex_unlock(&nhi.lock);
}

const struct sim_service sim_service_nhi = {
    .name = "nhi",
    .init = nhi_init,
    .routes = nhi_routes,
    .deinit = nhi_deinit,
};
