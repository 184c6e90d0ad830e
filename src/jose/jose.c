/* JOSE on cjose and OpenSSL: signing keys, the published JWK set, compact
 * JWS signing, and verification of untrusted compact JWS input. cjose does
 * the cryptography; this file adds the checks cjose leaves out (algorithm
 * allow-list, key type and size against alg, exact signature length,
 * duplicate JSON members, crit). */
#include "jose/jose.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/xmalloc.h"

#define JOSE_MAX_JWT       16384 /* bytes of compact JWS accepted from outside */
#define JOSE_MAX_KEYS      32    /* keys in our own key set */
#define JOSE_MAX_JWKS_KEYS 100   /* keys scanned in a JWK set given to jose_verify */
#define JOSE_MAX_KID       128
#define JOSE_MAX_B64       4096 /* longest base64url member read from a JWK */
#define JOSE_RSA_GEN_BITS  2048
#define JOSE_RSA_MIN_BITS  2048
#define JOSE_RSA_MAX_BITS  16384 /* OpenSSL's own limit */

/* A signature algorithm we accept, and the key it needs. */
struct jose_alg {
	const char *name;
	cjose_jwk_kty_t kty;
	const char *kty_name;
	cjose_jwk_ec_curve crv; /* EC only */
	const char *crv_name;   /* EC only */
	size_t ec_sig_len;      /* EC only: R||S (RFC 7518 §3.4) */
	const EVP_MD *(*md)(void);
};

static const struct jose_alg jose_algs[] = {
    {
        .name = "ES256",
        .kty = CJOSE_JWK_KTY_EC,
        .kty_name = "EC",
        .crv = CJOSE_JWK_EC_P_256,
        .crv_name = "P-256",
        .ec_sig_len = 64,
        .md = EVP_sha256,
    },
    {
        .name = "RS256",
        .kty = CJOSE_JWK_KTY_RSA,
        .kty_name = "RSA",
        .crv = CJOSE_JWK_EC_INVALID,
        .md = EVP_sha256,
    },
    {
        .name = "PS256",
        .kty = CJOSE_JWK_KTY_RSA,
        .kty_name = "RSA",
        .crv = CJOSE_JWK_EC_INVALID,
        .md = EVP_sha256,
    },
};

/* JWK members that hold private key material (RFC 7518 §6). */
static const char *const jose_private_members[] = {"d", "p", "q", "dp", "dq", "qi", "k"};

struct jose_key {
	cjose_jwk_t *jwk;
	const struct jose_alg *alg;
	char *kid;
	bool active;
};

/* Readers (signing, the published set) take lock shared; adding a key
 * and jose_keyset_swap take it exclusively, so a running server can
 * reload its keys from the store under its readers. */
struct jose_keyset {
	pthread_rwlock_t lock;
	struct jose_key keys[JOSE_MAX_KEYS];
	size_t n;
	char *jwks;
};

static const struct jose_alg *
alg_find(const char *name)
{
	const struct jose_alg *found = NULL;
	size_t i;

	if (name == NULL)
		goto out;
	for (i = 0; i < ISSO_N_ELEMENTS(jose_algs); i++) {
		if (strcmp(jose_algs[i].name, name) == 0) {
			found = &jose_algs[i];
			break;
		}
	}
out:
	return found;
}

static bool
alg_allowed(const char *const *allowed, const char *name)
{
	bool ok = false;
	size_t i;

	if (allowed == NULL)
		goto out;
	for (i = 0; allowed[i] != NULL; i++) {
		if (strcmp(allowed[i], name) == 0) {
			ok = true;
			break;
		}
	}
out:
	return ok;
}

static void
cj_free(void *p)
{
	if (p != NULL)
		cjose_get_dealloc()(p);
}

static void
cj_free_secret(char *p)
{
	if (p != NULL) {
		explicit_bzero(p, strlen(p));
		cjose_get_dealloc()(p);
	}
}

/* Best effort: wipes the private members of a parsed JWK before it is
 * released (jansson frees without wiping). */
static void
json_wipe_private(json_t *jwk)
{
	json_t *v;
	size_t i;

	if (!json_is_object(jwk))
		return;
	for (i = 0; i < ISSO_N_ELEMENTS(jose_private_members); i++) {
		v = json_object_get(jwk, jose_private_members[i]);
		if (json_is_string(v))
			explicit_bzero((char *)json_string_value(v), json_string_length(v));
	}
}

/* A non-empty base64url string (no padding) of bounded length. */
static bool
b64url_str(const char *s)
{
	bool ok = false;
	size_t i;

	if (s == NULL || s[0] == '\0')
		goto out;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= JOSE_MAX_B64)
			goto out;
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			goto out;
	}
	ok = true;
out:
	return ok;
}

static bool
crv_name_ok(const char *crv)
{
	return crv != NULL && (strcmp(crv, "P-256") == 0 || strcmp(crv, "P-384") == 0 ||
	                       strcmp(crv, "P-521") == 0);
}

/* A kid we are willing to carry: 1 to JOSE_MAX_KID printable ASCII. */
static bool
kid_ok(const char *kid)
{
	bool ok = false;
	size_t i;

	if (kid == NULL || kid[0] == '\0')
		goto out;
	for (i = 0; kid[i] != '\0'; i++) {
		if (i >= JOSE_MAX_KID || kid[i] < 0x21 || kid[i] > 0x7e)
			goto out;
	}
	ok = true;
out:
	return ok;
}

/* Bit length of the RSA modulus "n" of a JWK, or 0 when absent, malformed
 * or larger than JOSE_RSA_MAX_BITS. */
static size_t
rsa_bits(const json_t *jwk)
{
	unsigned char buf[JOSE_RSA_MAX_BITS / 8 + 1];
	const char *n = json_string_value(json_object_get(jwk, "n"));
	size_t bits = 0, i = 0;
	long len;
	unsigned char top;

	if (!b64url_str(n))
		goto out;
	len = b64url_decode(n, strlen(n), buf, sizeof(buf));
	if (len <= 0)
		goto out;
	while (i < (size_t)len && buf[i] == 0)
		i++;
	if (i == (size_t)len)
		goto out;
	bits = ((size_t)len - i - 1) * 8;
	for (top = buf[i]; top != 0; top >>= 1)
		bits++;
	if (bits > JOSE_RSA_MAX_BITS)
		bits = 0;
out:
	return bits;
}

/* Whether a JWK (as JSON) suits alg before cjose sees it: kty, curve, RSA
 * size, and "use"/"alg" when present (RFC 7517 §4.2, §4.4). */
static bool
json_fits(const struct jose_alg *a, const json_t *jwk)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const json_t *v;
	size_t bits;
	bool ok = false;

	if (kty == NULL || strcmp(kty, a->kty_name) != 0)
		goto out;
	if ((v = json_object_get(jwk, "use")) != NULL &&
	    (!json_is_string(v) || strcmp(json_string_value(v), "sig") != 0))
		goto out;
	if ((v = json_object_get(jwk, "alg")) != NULL &&
	    (!json_is_string(v) || strcmp(json_string_value(v), a->name) != 0))
		goto out;
	if (a->kty == CJOSE_JWK_KTY_EC) {
		v = json_object_get(jwk, "crv");
		if (!json_is_string(v) || strcmp(json_string_value(v), a->crv_name) != 0)
			goto out;
	} else {
		bits = rsa_bits(jwk);
		if (bits < JOSE_RSA_MIN_BITS)
			goto out;
	}
	ok = true;
out:
	return ok;
}

/* Whether a key cjose imported suits alg (cjose itself does not check the
 * curve against the algorithm). */
static bool
jwk_fits(const struct jose_alg *a, const cjose_jwk_t *jwk)
{
	cjose_err cerr;
	bool ok = false;

	if (cjose_jwk_get_kty(jwk, &cerr) != a->kty)
		goto out;
	if (a->kty == CJOSE_JWK_KTY_EC) {
		if (cjose_jwk_EC_get_curve(jwk, &cerr) != a->crv)
			goto out;
	} else if (cjose_jwk_get_keysize(jwk, &cerr) < JOSE_RSA_MIN_BITS) {
		goto out;
	}
	ok = true;
out:
	return ok;
}

int
jose_jwk_thumbprint(const json_t *jwk, char out[44])
{
	unsigned char md[32];
	char *input = NULL;
	const char *kty, *m1, *m2, *m3;
	int ret = ISSO_ERR_INVALID;

	out[0] = '\0';
	kty = json_string_value(json_object_get(jwk, "kty"));
	if (kty == NULL)
		goto out;
	/* RFC 7638 §3.2: the required members only, in lexicographic order,
	 * without whitespace; their values are base64url or curve names, so no
	 * JSON escaping is needed. */
	if (strcmp(kty, "EC") == 0) {
		m1 = json_string_value(json_object_get(jwk, "crv"));
		m2 = json_string_value(json_object_get(jwk, "x"));
		m3 = json_string_value(json_object_get(jwk, "y"));
		if (!crv_name_ok(m1) || !b64url_str(m2) || !b64url_str(m3))
			goto out;
		input = xasprintf("{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", m1,
		                  m2, m3);
	} else if (strcmp(kty, "RSA") == 0) {
		m1 = json_string_value(json_object_get(jwk, "e"));
		m2 = json_string_value(json_object_get(jwk, "n"));
		if (!b64url_str(m1) || !b64url_str(m2))
			goto out;
		input = xasprintf("{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", m1, m2);
	} else {
		goto out;
	}
	if (EVP_Digest(input, strlen(input), md, NULL, EVP_sha256(), NULL) != 1) {
		ret = ISSO_ERR_CRYPTO;
		ERR_clear_error();
		goto out;
	}
	b64url_encode(md, sizeof(md), out);
	ret = 0;
out:
	free(input);
	return ret;
}

bool
jose_jwk_has_private(const json_t *jwk)
{
	size_t i;

	if (!json_is_object(jwk))
		return true;
	for (i = 0; i < ISSO_N_ELEMENTS(jose_private_members); i++) {
		if (json_object_get(jwk, jose_private_members[i]) != NULL)
			return true;
	}
	return false;
}

int
jose_jwks_check(const json_t *jwks, const char **why_r)
{
	const json_t *keys = json_object_get(jwks, "keys"), *k;
	const char *why = NULL;
	size_t i, j;

	if (!json_is_object(jwks) || !json_is_array(keys) || json_array_size(keys) == 0) {
		why = "a JWK set is an object with a non-empty \"keys\" array";
		goto out;
	}
	if (json_array_size(keys) > JOSE_MAX_CLIENT_KEYS) {
		why = "at most 10 keys";
		goto out;
	}
	json_array_foreach(keys, i, k)
	{
		const char *kty = json_string_value(json_object_get(k, "kty"));
		const char *kid = json_string_value(json_object_get(k, "kid"));
		const json_t *alg = json_object_get(k, "alg");
		const struct jose_alg *a;
		cjose_jwk_t *jwk;
		cjose_err cerr;
		bool fits;

		if (!json_is_object(k) || kty == NULL) {
			why = "every key is an object with \"kty\"";
			goto out;
		}
		if (jose_jwk_has_private(k)) {
			why = "a key holds private members: register the public keys only";
			goto out;
		}
		if (json_object_get(k, "kid") != NULL && (kid == NULL || !kid_ok(kid))) {
			why = "a \"kid\" is 1 to 128 printable characters";
			goto out;
		}
		if (alg != NULL)
			a = alg_find(json_string_value(alg));
		else
			a = alg_find(strcmp(kty, "EC") == 0 ? "ES256" : "RS256");
		if (a == NULL || !json_fits(a, k)) {
			why =
			    "a key is not a P-256 (ES256) or RSA (at least 2048 bits) signing key";
			goto out;
		}
		jwk = cjose_jwk_import_json((cjose_header_t *)k, &cerr);
		fits = jwk != NULL && jwk_fits(a, jwk);
		cjose_jwk_release(jwk);
		if (!fits) {
			ERR_clear_error();
			why = "a key cannot be read";
			goto out;
		}
		for (j = 0; kid != NULL && j < i; j++) {
			const char *other =
			    json_string_value(json_object_get(json_array_get(keys, j), "kid"));
			if (other != NULL && strcmp(other, kid) == 0) {
				why = "two keys with the same \"kid\"";
				goto out;
			}
		}
	}
out:
	*why_r = why;
	return why == NULL ? 0 : ISSO_ERR_INVALID;
}

int
jose_key_generate(const char *alg, char **jwk_r, char **kid_r)
{
	static const uint8_t e65537[] = {0x01, 0x00, 0x01};
	const struct jose_alg *a = alg_find(alg);
	cjose_jwk_t *jwk = NULL;
	json_t *pubj = NULL;
	char *pub = NULL, *priv = NULL, *head = NULL, *text;
	char kid[44];
	size_t hlen, plen;
	cjose_err cerr;
	int ret = ISSO_ERR_INVALID;

	*jwk_r = NULL;
	*kid_r = NULL;
	if (a == NULL)
		goto out;
	ret = ISSO_ERR_CRYPTO;
	if (a->kty == CJOSE_JWK_KTY_EC)
		jwk = cjose_jwk_create_EC_random(a->crv, &cerr);
	else
		jwk = cjose_jwk_create_RSA_random(JOSE_RSA_GEN_BITS, e65537, sizeof(e65537), &cerr);
	if (jwk == NULL)
		goto out;
	pub = cjose_jwk_to_json(jwk, false, &cerr);
	if (pub == NULL || (pubj = json_loads(pub, 0, NULL)) == NULL)
		goto out;
	if ((ret = jose_jwk_thumbprint(pubj, kid)) < 0)
		goto out;
	ret = ISSO_ERR_CRYPTO;
	priv = cjose_jwk_to_json(jwk, true, &cerr);
	/* cjose writes a compact non-empty object; our members go first so
	 * the secret is copied exactly once, into the result. */
	if (priv == NULL || priv[0] != '{' || priv[1] == '}' || priv[1] == '\0')
		goto out;
	head = xasprintf("{\"kid\":\"%s\",\"alg\":\"%s\",\"use\":\"sig\",", kid, a->name);
	hlen = strlen(head);
	plen = strlen(priv + 1);
	text = xmalloc(hlen + plen + 1);
	memcpy(text, head, hlen);
	memcpy(text + hlen, priv + 1, plen + 1);
	*jwk_r = text;
	*kid_r = xstrdup(kid);
	ret = 0;
out:
	if (ret < 0)
		ERR_clear_error();
	free(head);
	cj_free_secret(priv);
	cj_free(pub);
	json_decref(pubj);
	cjose_jwk_release(jwk);
	return ret;
}

struct jose_keyset *
jose_keyset_new(void)
{
	struct jose_keyset *ks = xcalloc(1, sizeof(*ks));

	pthread_rwlock_init(&ks->lock, NULL);
	ks->jwks = xstrdup("{\"keys\":[]}");
	return ks;
}

void
jose_keyset_free(struct jose_keyset *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->n; i++) {
		cjose_jwk_release(ks->keys[i].jwk);
		free(ks->keys[i].kid);
	}
	free(ks->jwks);
	pthread_rwlock_destroy(&ks->lock);
	free(ks);
}

/* Signs a fixed message with the private key and verifies it with the
 * public half as published: catches a JWK whose private and public members
 * do not belong together. */
static bool
pairwise_ok(const struct jose_alg *a, const cjose_jwk_t *jwk)
{
	static const char msg[] = "{\"iss\":\"isso-pairwise-test\"}";
	cjose_header_t *hdr = NULL;
	cjose_jws_t *jws = NULL, *jws2 = NULL;
	cjose_jwk_t *pubjwk = NULL;
	char *pub = NULL;
	const char *ser = NULL;
	cjose_err cerr;
	bool ok = false;

	if ((hdr = cjose_header_new(&cerr)) == NULL ||
	    !cjose_header_set(hdr, CJOSE_HDR_ALG, a->name, &cerr))
		goto out;
	jws = cjose_jws_sign(jwk, hdr, (const uint8_t *)msg, sizeof(msg) - 1, &cerr);
	if (jws == NULL || !cjose_jws_export(jws, &ser, &cerr))
		goto out;
	if ((pub = cjose_jwk_to_json(jwk, false, &cerr)) == NULL ||
	    (pubjwk = cjose_jwk_import(pub, strlen(pub), &cerr)) == NULL)
		goto out;
	if ((jws2 = cjose_jws_import(ser, strlen(ser), &cerr)) == NULL)
		goto out;
	ok = cjose_jws_verify(jws2, pubjwk, &cerr);
out:
	cjose_jws_release(jws2);
	cjose_jwk_release(pubjwk);
	cj_free(pub);
	cjose_jws_release(jws);
	cjose_header_release(hdr);
	return ok;
}

/* The public JWK set of ks as compact JSON text; *jwks_r is malloc'd. */
static int
jwks_build(const struct jose_keyset *ks, char **jwks_r)
{
	json_t *root = NULL, *keys = NULL, *k = NULL;
	const struct jose_key *key;
	char *pub = NULL;
	cjose_err cerr;
	size_t i;
	int ret = ISSO_ERR_NOMEM;

	*jwks_r = NULL;
	if ((root = json_object()) == NULL || (keys = json_array()) == NULL ||
	    json_object_set(root, "keys", keys) < 0)
		goto out;
	for (i = 0; i < ks->n; i++) {
		key = &ks->keys[i];
		if ((pub = cjose_jwk_to_json(key->jwk, false, &cerr)) == NULL ||
		    (k = json_loads(pub, 0, NULL)) == NULL)
			goto out;
		cj_free(pub);
		pub = NULL;
		if (json_object_set_new(k, "kid", json_string(key->kid)) < 0 ||
		    json_object_set_new(k, "alg", json_string(key->alg->name)) < 0 ||
		    json_object_set_new(k, "use", json_string("sig")) < 0)
			goto out;
		/* json_array_append_new takes k even when it fails */
		if (json_array_append_new(keys, k) < 0) {
			k = NULL;
			goto out;
		}
		k = NULL;
	}
	if ((*jwks_r = json_dumps(root, JSON_COMPACT)) == NULL)
		goto out;
	ret = 0;
out:
	cj_free(pub);
	json_decref(k);
	json_decref(keys);
	json_decref(root);
	return ret;
}

/* The public half of jwk as cjose sees it, checked against the members of
 * the JWK text: cjose derives an EC public key from "d" and ignores "x" and
 * "y", so a mismatched pair would otherwise be published silently. *pub_r
 * is a new reference. */
static bool
public_matches(const json_t *json, const cjose_jwk_t *jwk, json_t **pub_r)
{
	static const char *const members[] = {"kty", "crv", "x", "y", "n", "e"};
	json_t *pub = NULL, *mine;
	char *text = NULL;
	cjose_err cerr;
	size_t i;
	bool ok = false;

	*pub_r = NULL;
	if ((text = cjose_jwk_to_json(jwk, false, &cerr)) == NULL ||
	    (pub = json_loads(text, 0, NULL)) == NULL)
		goto out;
	for (i = 0; i < ISSO_N_ELEMENTS(members); i++) {
		mine = json_object_get(pub, members[i]);
		if (mine != NULL && !json_equal(mine, json_object_get(json, members[i])))
			goto out;
	}
	*pub_r = pub;
	pub = NULL;
	ok = true;
out:
	json_decref(pub);
	cj_free(text);
	return ok;
}

int
jose_keyset_add(struct jose_keyset *ks, const char *jwk_text, bool active, const char **error_r)
{
	json_t *json = NULL, *pub = NULL, *v;
	cjose_jwk_t *jwk = NULL;
	const struct jose_alg *a = NULL;
	const char *kty, *error = NULL;
	char kid[JOSE_MAX_KID + 1];
	char *jwks = NULL;
	struct jose_key *key;
	cjose_err cerr;
	size_t i;
	int ret = ISSO_ERR_INVALID;

	pthread_rwlock_wrlock(&ks->lock);
	if (ks->n >= JOSE_MAX_KEYS) {
		ret = ISSO_ERR_LIMIT;
		error = "too many signing keys";
		goto out;
	}
	json = json_loads(jwk_text != NULL ? jwk_text : "", JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(json)) {
		error = "key is not a JSON object";
		goto out;
	}
	if (!json_is_string(json_object_get(json, "d"))) {
		error = "key is not a private key";
		goto out;
	}
	kty = json_string_value(json_object_get(json, "kty"));
	if ((v = json_object_get(json, "alg")) != NULL)
		a = alg_find(json_string_value(v));
	else if (kty != NULL && strcmp(kty, "EC") == 0)
		a = alg_find("ES256");
	else if (kty != NULL && strcmp(kty, "RSA") == 0)
		a = alg_find("RS256");
	if (a == NULL) {
		error = "unsupported key algorithm";
		goto out;
	}
	if (!json_fits(a, json)) {
		error = "key does not suit its algorithm";
		goto out;
	}
	if ((jwk = cjose_jwk_import_json((cjose_header_t *)json, &cerr)) == NULL ||
	    !jwk_fits(a, jwk)) {
		error = "key cannot be imported";
		goto out;
	}
	if (!public_matches(json, jwk, &pub) || !pairwise_ok(a, jwk)) {
		error = "private and public key do not match";
		goto out;
	}
	if ((v = json_object_get(json, "kid")) != NULL) {
		if (!kid_ok(json_string_value(v))) {
			error = "bad kid";
			goto out;
		}
		snprintf(kid, sizeof(kid), "%s", json_string_value(v));
	} else if (jose_jwk_thumbprint(pub, kid) < 0) {
		error = "cannot compute the key thumbprint";
		goto out;
	}
	for (i = 0; i < ks->n; i++) {
		if (strcmp(ks->keys[i].kid, kid) == 0) {
			error = "duplicate kid";
			goto out;
		}
	}

	key = &ks->keys[ks->n];
	key->jwk = jwk;
	key->alg = a;
	key->kid = xstrdup(kid);
	key->active = active;
	ks->n++;
	if ((ret = jwks_build(ks, &jwks)) < 0) {
		ks->n--;
		free(key->kid);
		memset(key, 0, sizeof(*key));
		error = "cannot build the JWK set";
		goto out;
	}
	jwk = NULL;
	free(ks->jwks);
	ks->jwks = jwks;
	ret = 0;
out:
	pthread_rwlock_unlock(&ks->lock);
	if (ret < 0)
		ERR_clear_error();
	cjose_jwk_release(jwk);
	json_decref(pub);
	json_wipe_private(json);
	json_decref(json);
	if (error_r != NULL)
		*error_r = error;
	return ret;
}

char *
jose_keyset_jwks_dup(struct jose_keyset *ks)
{
	char *text;

	pthread_rwlock_rdlock(&ks->lock);
	text = xstrdup(ks->jwks);
	pthread_rwlock_unlock(&ks->lock);
	return text;
}

bool
jose_keyset_swap(struct jose_keyset *ks, struct jose_keyset *other)
{
	struct jose_key keys[JOSE_MAX_KEYS];
	bool changed;
	size_t n;
	char *jwks;

	pthread_rwlock_wrlock(&ks->lock);
	pthread_rwlock_wrlock(&other->lock);
	changed = strcmp(ks->jwks, other->jwks) != 0;
	memcpy(keys, ks->keys, sizeof(keys));
	memcpy(ks->keys, other->keys, sizeof(keys));
	memcpy(other->keys, keys, sizeof(keys));
	n = ks->n;
	ks->n = other->n;
	other->n = n;
	jwks = ks->jwks;
	ks->jwks = other->jwks;
	other->jwks = jwks;
	pthread_rwlock_unlock(&other->lock);
	pthread_rwlock_unlock(&ks->lock);
	return changed;
}

/* The newest active key of alg, or NULL. */
static const struct jose_key *
active_key(const struct jose_keyset *ks, const char *alg)
{
	const struct jose_key *key = NULL;
	size_t i;

	if (ks == NULL || alg == NULL)
		goto out;
	for (i = ks->n; i > 0; i--) {
		if (ks->keys[i - 1].active && strcmp(ks->keys[i - 1].alg->name, alg) == 0) {
			key = &ks->keys[i - 1];
			break;
		}
	}
out:
	return key;
}

bool
jose_keyset_has_alg(const struct jose_keyset *ks, const char *alg)
{
	bool has;

	pthread_rwlock_rdlock((pthread_rwlock_t *)&ks->lock);
	has = active_key(ks, alg) != NULL;
	pthread_rwlock_unlock((pthread_rwlock_t *)&ks->lock);
	return has;
}

int
jose_sign(const struct jose_keyset *ks, const char *alg, const char *typ, json_t *claims,
          char **jwt_r)
{
	const struct jose_key *key;
	cjose_header_t *hdr = NULL;
	cjose_jws_t *jws = NULL;
	char *payload = NULL;
	const char *ser = NULL;
	cjose_err cerr;
	int ret = ISSO_ERR_INVALID;

	*jwt_r = NULL;
	/* held while the key is used: a reload frees replaced keys */
	pthread_rwlock_rdlock((pthread_rwlock_t *)&ks->lock);
	key = active_key(ks, alg);
	if (key == NULL || !json_is_object(claims))
		goto out;
	ret = ISSO_ERR_NOMEM;
	if ((payload = json_dumps(claims, JSON_COMPACT)) == NULL)
		goto out;
	if ((hdr = cjose_header_new(&cerr)) == NULL ||
	    !cjose_header_set(hdr, CJOSE_HDR_ALG, key->alg->name, &cerr) ||
	    !cjose_header_set(hdr, CJOSE_HDR_KID, key->kid, &cerr) ||
	    !cjose_header_set(hdr, "typ", typ != NULL ? typ : "JWT", &cerr))
		goto out;
	ret = ISSO_ERR_CRYPTO;
	jws = cjose_jws_sign(key->jwk, hdr, (const uint8_t *)payload, strlen(payload), &cerr);
	if (jws == NULL || !cjose_jws_export(jws, &ser, &cerr))
		goto out;
	*jwt_r = xstrdup(ser);
	ret = 0;
out:
	pthread_rwlock_unlock((pthread_rwlock_t *)&ks->lock);
	if (ret < 0)
		ERR_clear_error();
	cjose_jws_release(jws);
	cjose_header_release(hdr);
	free(payload);
	return ret;
}

/* Splits a compact JWS (RFC 7515 §7.1: exactly three base64url segments)
 * and decodes its header and payload, which must be JSON objects without
 * duplicate member names (§5.2), and the length of its signature. */
static int
jws_split(const char *jwt, size_t len, json_t **header_r, json_t **claims_r, size_t *siglen_r,
          const char **error_r)
{
	const char *d1, *d2, *error = NULL;
	unsigned char *buf = NULL;
	json_t *hdr = NULL, *claims = NULL;
	long n;
	int ret = ISSO_ERR_INVALID;

	*header_r = NULL;
	*claims_r = NULL;
	*siglen_r = 0;
	d1 = memchr(jwt, '.', len);
	d2 = d1 != NULL ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jwt)) : NULL;
	if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jwt)) != NULL) {
		error = "not a compact JWS";
		goto out;
	}
	buf = xmalloc(len + 1);
	n = b64url_decode(jwt, (size_t)(d1 - jwt), buf, len);
	if (n <= 0 ||
	    (hdr = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL)) ==
	        NULL ||
	    !json_is_object(hdr)) {
		error = "header is not a base64url JSON object";
		goto out;
	}
	n = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf, len);
	if (n <= 0 ||
	    (claims = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL)) ==
	        NULL ||
	    !json_is_object(claims)) {
		error = "payload is not a base64url JSON object";
		goto out;
	}
	n = b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - jwt), buf, len);
	if (n < 0) {
		error = "signature is not base64url";
		goto out;
	}
	*siglen_r = (size_t)n;
	*header_r = hdr;
	hdr = NULL;
	*claims_r = claims;
	claims = NULL;
	ret = 0;
out:
	free(buf);
	json_decref(hdr);
	json_decref(claims);
	if (error_r != NULL)
		*error_r = error;
	return ret;
}

/* Chooses the key of jwks for a token of alg a with kid (may be NULL): the
 * key with that kid, or without a kid the only key that suits alg. Keys
 * cjose cannot import are skipped. *jwk_r is released by the caller;
 * *json_r is borrowed from jwks. */
static int
key_select(json_t *jwks, const struct jose_alg *a, const char *kid, cjose_jwk_t **jwk_r,
           const json_t **json_r, const char **error_r)
{
	json_t *keys = json_object_get(jwks, "keys"), *k;
	cjose_jwk_t *found = NULL, *jwk;
	const json_t *found_json = NULL;
	const char *error = NULL, *kkid;
	cjose_err cerr;
	size_t i;
	int ret = ISSO_ERR_INVALID;

	*jwk_r = NULL;
	*json_r = NULL;
	if (!json_is_array(keys)) {
		error = "JWK set has no keys";
		goto out;
	}
	if (json_array_size(keys) > JOSE_MAX_JWKS_KEYS) {
		error = "JWK set is too large";
		goto out;
	}
	json_array_foreach(keys, i, k)
	{
		if (!json_is_object(k))
			continue;
		kkid = json_string_value(json_object_get(k, "kid"));
		if (kid != NULL && (kkid == NULL || strcmp(kid, kkid) != 0))
			continue;
		if (!json_fits(a, k))
			continue;
		if ((jwk = cjose_jwk_import_json((cjose_header_t *)k, &cerr)) == NULL) {
			ERR_clear_error();
			continue;
		}
		if (!jwk_fits(a, jwk)) {
			cjose_jwk_release(jwk);
			continue;
		}
		if (found != NULL) {
			cjose_jwk_release(jwk);
			error = "several keys match the token";
			goto out;
		}
		found = jwk;
		found_json = k;
	}
	if (found == NULL) {
		error = "no key matches the token";
		goto out;
	}
	*jwk_r = found;
	found = NULL;
	*json_r = found_json;
	ret = 0;
out:
	cjose_jwk_release(found);
	*error_r = error;
	return ret;
}

/* The key of our own set for a token of alg a (and kid, when given): the
 * set's own parsed key, borrowed (cjose's reference count is not
 * thread-safe, so it is not touched); *bits_r its RSA modulus size. Keys
 * no longer active still verify what they signed. */
static int
keyset_select(const struct jose_keyset *ks, const struct jose_alg *a, const char *kid,
              cjose_jwk_t **jwk_r, size_t *bits_r, const char **error_r)
{
	const struct jose_key *found = NULL;
	cjose_err cerr;
	size_t i;

	*jwk_r = NULL;
	*bits_r = 0;
	for (i = 0; i < ks->n; i++) {
		const struct jose_key *k = &ks->keys[i];
		if (k->alg->kty != a->kty || (a->kty == CJOSE_JWK_KTY_EC && k->alg != a))
			continue;
		if (kid != NULL && strcmp(kid, k->kid) != 0)
			continue;
		if (found != NULL) {
			*error_r = "several keys match the token";
			return ISSO_ERR_INVALID;
		}
		found = k;
	}
	if (found == NULL) {
		*error_r = "no key matches the token";
		return ISSO_ERR_INVALID;
	}
	*jwk_r = found->jwk;
	if (a->kty == CJOSE_JWK_KTY_RSA)
		*bits_r = cjose_jwk_get_keysize(found->jwk, &cerr);
	return 0;
}

/* jose_verify against either a JWK set given as JSON (jwks) or our own
 * key set (ks). */
static int
verify(const char *jwt, json_t *jwks, const struct jose_keyset *ks, const char *const *allowed_algs,
       json_t **claims_r, const char **error_r)
{
	json_t *hdr = NULL, *claims = NULL, *v;
	const json_t *key_json = NULL;
	cjose_jwk_t *jwk = NULL, *borrowed = NULL;
	cjose_jws_t *jws = NULL;
	const struct jose_alg *a;
	const char *alg, *kid = NULL, *error = NULL, *calg;
	size_t len, siglen, want, bits = 0;
	cjose_err cerr;
	int ret = ISSO_ERR_INVALID;

	*claims_r = NULL;
	if (jwt == NULL || (jwks == NULL && ks == NULL)) {
		error = "no token or no JWK set";
		goto out;
	}
	len = strnlen(jwt, JOSE_MAX_JWT + 1);
	if (len > JOSE_MAX_JWT) {
		error = "token too long";
		goto out;
	}
	if ((ret = jws_split(jwt, len, &hdr, &claims, &siglen, &error)) < 0)
		goto out;
	ret = ISSO_ERR_INVALID;
	alg = json_string_value(json_object_get(hdr, "alg"));
	if (alg == NULL) {
		error = "header has no alg";
		goto out;
	}
	/* "none" is never accepted, whatever the caller allows. */
	if (strcmp(alg, "none") == 0) {
		error = "alg none refused";
		goto out;
	}
	a = alg_find(alg);
	if (a == NULL || !alg_allowed(allowed_algs, alg)) {
		error = "alg not allowed";
		goto out;
	}
	/* RFC 7515 §4.1.11: we understand no extension, so any crit fails. */
	if (json_object_get(hdr, "crit") != NULL) {
		error = "unsupported crit header";
		goto out;
	}
	if ((v = json_object_get(hdr, "kid")) != NULL) {
		if (!json_is_string(v)) {
			error = "kid is not a string";
			goto out;
		}
		kid = json_string_value(v);
	}
	if (ks != NULL) {
		if ((ret = keyset_select(ks, a, kid, &borrowed, &bits, &error)) < 0)
			goto out;
	} else {
		if ((ret = key_select(jwks, a, kid, &jwk, &key_json, &error)) < 0)
			goto out;
		if (a->kty == CJOSE_JWK_KTY_RSA)
			bits = rsa_bits(key_json);
	}
	ret = ISSO_ERR_CRYPTO;
	/* Exact lengths: ES256 is R||S (RFC 7518 §3.4), RSA the modulus size
	 * (RFC 8017 §8.2.2); cjose checks neither for EC. */
	want = a->kty == CJOSE_JWK_KTY_EC ? a->ec_sig_len : (bits + 7) / 8;
	if (siglen != want) {
		error = "signature has the wrong length";
		goto out;
	}
	if ((jws = cjose_jws_import(jwt, len, &cerr)) == NULL) {
		ret = ISSO_ERR_INVALID;
		error = "malformed token";
		goto out;
	}
	calg = cjose_header_get(cjose_jws_get_protected(jws), CJOSE_HDR_ALG, &cerr);
	if (calg == NULL || strcmp(calg, alg) != 0) {
		ret = ISSO_ERR_INVALID;
		error = "malformed token";
		goto out;
	}
	if (!cjose_jws_verify(jws, borrowed != NULL ? borrowed : jwk, &cerr)) {
		error = "signature verification failed";
		goto out;
	}
	*claims_r = claims;
	claims = NULL;
	ret = 0;
out:
	if (ret < 0)
		ERR_clear_error();
	cjose_jws_release(jws);
	cjose_jwk_release(jwk);
	json_decref(hdr);
	json_decref(claims);
	if (error_r != NULL)
		*error_r = error;
	return ret;
}

int
jose_verify(const char *jwt, json_t *jwks, const char *const *allowed_algs, json_t **claims_r,
            const char **error_r)
{
	return verify(jwt, jwks, NULL, allowed_algs, claims_r, error_r);
}

int
jose_keyset_verify(const struct jose_keyset *ks, const char *jwt, const char *const *allowed_algs,
                   json_t **claims_r, const char **error_r)
{
	return verify(jwt, NULL, ks, allowed_algs, claims_r, error_r);
}

int
jose_decode_unverified(const char *jwt, json_t **header_r, json_t **claims_r)
{
	json_t *hdr = NULL, *claims = NULL;
	size_t len, siglen;
	int ret = ISSO_ERR_INVALID;

	if (header_r != NULL)
		*header_r = NULL;
	if (claims_r != NULL)
		*claims_r = NULL;
	if (jwt == NULL)
		goto out;
	len = strnlen(jwt, JOSE_MAX_JWT + 1);
	if (len > JOSE_MAX_JWT)
		goto out;
	if ((ret = jws_split(jwt, len, &hdr, &claims, &siglen, NULL)) < 0)
		goto out;
	if (header_r != NULL) {
		*header_r = hdr;
		hdr = NULL;
	}
	if (claims_r != NULL) {
		*claims_r = claims;
		claims = NULL;
	}
out:
	json_decref(hdr);
	json_decref(claims);
	return ret;
}

int
jose_half_hash(const char *alg, const char *value, char out[64])
{
	const struct jose_alg *a = alg_find(alg);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int ret = ISSO_ERR_INVALID;

	out[0] = '\0';
	if (a == NULL || value == NULL)
		goto out;
	if (EVP_Digest(value, strlen(value), md, &mdlen, a->md(), NULL) != 1 || mdlen > 64) {
		ERR_clear_error();
		ret = ISSO_ERR_CRYPTO;
		goto out;
	}
	/* OIDC Core §3.1.3.6: the left-most half of the hash. */
	b64url_encode(md, mdlen / 2, out);
	ret = 0;
out:
	return ret;
}

bool
jose_pkce_s256_ok(const char *verifier, const char *challenge)
{
	unsigned char md[32];
	char expect[44];
	size_t vlen, i;
	char c;
	bool ok = false;

	if (verifier == NULL || challenge == NULL)
		goto out;
	/* RFC 7636 §4.1: code-verifier = 43*128unreserved */
	vlen = strnlen(verifier, 129);
	if (vlen < 43 || vlen > 128)
		goto out;
	for (i = 0; i < vlen; i++) {
		c = verifier[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_' || c == '~'))
			goto out;
	}
	/* §4.2: BASE64URL(SHA256(verifier)) is always 43 characters. */
	if (strnlen(challenge, 44) != 43)
		goto out;
	if (EVP_Digest(verifier, vlen, md, NULL, EVP_sha256(), NULL) != 1) {
		ERR_clear_error();
		goto out;
	}
	b64url_encode(md, sizeof(md), expect);
	ok = CRYPTO_memcmp(expect, challenge, 43) == 0;
out:
	return ok;
}
