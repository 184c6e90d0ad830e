/* Tests for isso-cardagent's parts that need neither card nor socket:
 * trusted origins, the HiPKI /sign request reader and what text may be
 * shown to sign, the NHI commands' parameters, card data and answers
 * without a card module, the NHI service key, the WebSocket accept value,
 * and the PKCS#7 SignedData the agent assembles around a card's
 * signature (checked with OpenSSL's own verifier, the key standing in for
 * the card made here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "cardagent/agent.h"
#include "cardagent/cms.h"
#include "cardagent/parse.h"
#include "cardagent/ws.h"
#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/log.h"

/* ---- origins ---- */

static void
check_origin(const char *in, const char *want)
{
	char *got = agent_origin_normalise(in);

	if (want == NULL) {
		if (got != NULL)
			fail_msg("%s normalised to %s, expected a refusal",
			         in != NULL ? in : "(null)", got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void
test_origin_normalise(void **state)
{
	char big[300];

	(void)state;
	check_origin("https://Site.gov.tw/", "https://site.gov.tw");
	check_origin("HTTPS://site.gov.tw:443", "https://site.gov.tw");
	check_origin("http://127.0.0.1:80", "http://127.0.0.1");
	check_origin("http://localhost:8080", "http://localhost:8080");
	check_origin("https://site.gov.tw:80", "https://site.gov.tw:80");
	check_origin("http://[::1]:8080", "http://[::1]:8080");
	/* not an origin */
	check_origin("https://site.gov.tw/path", NULL);
	check_origin("https://site.gov.tw?x", NULL);
	check_origin("https://user@site.gov.tw", NULL);
	check_origin("ftp://site.gov.tw", NULL);
	check_origin("site.gov.tw", NULL);
	check_origin("https://", NULL);
	check_origin("https://.site.gov.tw", NULL);
	check_origin("https://-site.gov.tw", NULL);
	check_origin("https://site.gov.tw:", NULL);
	check_origin("https://site.gov.tw:0", NULL);
	check_origin("https://site.gov.tw:65536", NULL);
	check_origin("https://site.gov.tw:+443", NULL);
	check_origin("https://site.gov.tw:-1", NULL);
	check_origin("http://[::1", NULL);
	check_origin("http://[::g]", NULL);
	check_origin("", NULL);
	check_origin(NULL, NULL);
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "https://", 8);
	big[sizeof(big) - 1] = '\0';
	check_origin(big, NULL);
}

static void
test_trusted_exactly(void **state)
{
	struct agent a;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.trust[0] = "https://isso.gov.taipei";
	a.trust[1] = "http://127.0.0.1:8080";
	a.n_trust = 2;
	assert_true(agent_trusted(&a, "https://isso.gov.taipei"));
	assert_true(agent_trusted(&a, "http://127.0.0.1:8080"));
	assert_false(agent_trusted(&a, "https://isso.gov.taipei.evil.tw"));
	assert_false(agent_trusted(&a, "https://isso.gov.taipei/"));
	assert_false(agent_trusted(&a, "http://isso.gov.taipei"));
	assert_false(agent_trusted(&a, "http://127.0.0.1:8081"));
	assert_false(agent_trusted(&a, "null"));
	assert_false(agent_trusted(&a, NULL));
}

/* ---- HiPKI /sign ---- */

static bool
parse(const char *body, struct sign_args *args, int *rc_r, const char **why_r)
{
	memset(args, 0, sizeof(*args));
	*rc_r = 0;
	*why_r = NULL;
	return hipki_parse_sign(body, strlen(body), args, rc_r, why_r);
}

static void
refused(const char *body, int rc)
{
	struct sign_args args;
	const char *why;
	int got;

	if (parse(body, &args, &got, &why))
		fail_msg("accepted: %s", body);
	assert_int_equal(got, rc);
	assert_non_null(why);
	assert_true(why[0] != '\0');
}

static void
test_sign_request_defaults(void **state)
{
	struct sign_args args;
	const char *why;
	int rc;

	(void)state;
	assert_true(parse("{\"tbs\":\"iSSO-LOGIN-v1\\nx\",\"pin\":\"123456\"}", &args, &rc, &why));
	assert_true(args.pkcs7);
	assert_true(args.with_sn);
	assert_false(args.has_slot);
	assert_int_equal(args.tbs_len, 15);
	assert_memory_equal(args.tbs, "iSSO-LOGIN-v1\nx", 15);
	assert_string_equal(args.pin, "123456");

	assert_true(parse("{\"func\":\"MakeSignature\",\"signatureType\":\"pkcs1\","
	                  "\"hashAlgorithm\":\"sha256\",\"tbsEncoding\":\"BASE64\","
	                  "\"tbs\":\"AAEC/w==\",\"withCardSN\":\"FALSE\",\"slotID\":3,"
	                  "\"pin\":\"12345678\"}",
	                  &args, &rc, &why));
	assert_false(args.pkcs7);
	assert_false(args.with_sn);
	assert_true(args.has_slot);
	assert_int_equal(args.slot, 3);
	assert_int_equal(args.tbs_len, 4);
	assert_memory_equal(args.tbs, "\x00\x01\x02\xff", 4);
	assert_string_equal(args.pin, "12345678");

	/* withCardSN true as a boolean or text; slotID null is no slot */
	assert_true(parse("{\"tbs\":\"x\",\"pin\":\"123456\",\"withCardSN\":true,\"slotID\":null}",
	                  &args, &rc, &why));
	assert_true(args.with_sn);
	assert_false(args.has_slot);
}

static void
test_sign_request_limits(void **state)
{
	char body[8000];
	struct sign_args args;
	const char *why;
	int rc;

	(void)state;
	/* 4096 bytes of text are the most */
	snprintf(body, sizeof(body), "{\"tbs\":\"%0*d\",\"pin\":\"123456\"}", 4096, 0);
	assert_true(parse(body, &args, &rc, &why));
	assert_int_equal(args.tbs_len, 4096);
	snprintf(body, sizeof(body), "{\"tbs\":\"%0*d\",\"pin\":\"123456\"}", 4097, 0);
	refused(body, RC_BAD_REQUEST);
	/* and as base64: 4096 bytes decode, 4097 do not */
	{
		unsigned char raw[4097];
		char b64[5500];

		memset(raw, 0xab, sizeof(raw));
		b64_encode(raw, 4096, b64);
		snprintf(body, sizeof(body),
		         "{\"tbs\":\"%s\",\"tbsEncoding\":\"base64\",\"pin\":\"123456\"}", b64);
		assert_true(parse(body, &args, &rc, &why));
		assert_int_equal(args.tbs_len, 4096);
		b64_encode(raw, 4097, b64);
		snprintf(body, sizeof(body),
		         "{\"tbs\":\"%s\",\"tbsEncoding\":\"base64\",\"pin\":\"123456\"}", b64);
		refused(body, RC_BAD_REQUEST);
	}
}

static void
test_sign_request_refusals(void **state)
{
	(void)state;
	refused("", RC_BAD_REQUEST);
	refused("[]", RC_BAD_REQUEST);
	refused("{\"tbs\":\"x\",\"pin\":\"123456\"", RC_BAD_REQUEST);
	refused("{\"tbs\":\"x\",\"tbs\":\"y\",\"pin\":\"123456\"}", RC_BAD_REQUEST);
	refused("{\"func\":\"pkcs11info\",\"tbs\":\"x\",\"pin\":\"123456\"}", RC_BAD_REQUEST);
	refused("{\"func\":1,\"tbs\":\"x\",\"pin\":\"123456\"}", RC_BAD_REQUEST);
	refused("{\"signatureType\":\"CMS\",\"tbs\":\"x\",\"pin\":\"123456\"}", RC_BAD_REQUEST);
	refused("{\"hashAlgorithm\":\"SHA1\",\"tbs\":\"x\",\"pin\":\"123456\"}", RC_BAD_REQUEST);
	refused("{\"tbsEncoding\":\"hex\",\"tbs\":\"78\",\"pin\":\"123456\"}", RC_BAD_REQUEST);
	refused("{\"tbsEncoding\":\"base64\",\"tbs\":\"!!!\",\"pin\":\"123456\"}", RC_BAD_REQUEST);
	refused("{\"tbsEncoding\":\"base64\",\"tbs\":\"eA\",\"pin\":\"123456\"}", RC_BAD_REQUEST);
	refused("{\"pin\":\"123456\"}", RC_BAD_REQUEST);
	refused("{\"tbs\":\"\",\"pin\":\"123456\"}", RC_BAD_REQUEST);
	refused("{\"tbs\":5,\"pin\":\"123456\"}", RC_BAD_REQUEST);
	refused("{\"tbs\":\"x\",\"slotID\":-1,\"pin\":\"123456\"}", RC_BAD_REQUEST);
	refused("{\"tbs\":\"x\",\"slotID\":\"1\",\"pin\":\"123456\"}", RC_BAD_REQUEST);
	/* the PIN: 6 to 8 digits, nothing else */
	refused("{\"tbs\":\"x\"}", RC_PIN_FORMAT);
	refused("{\"tbs\":\"x\",\"pin\":\"12345\"}", RC_PIN_FORMAT);
	refused("{\"tbs\":\"x\",\"pin\":\"123456789\"}", RC_PIN_FORMAT);
	refused("{\"tbs\":\"x\",\"pin\":\"12345a\"}", RC_PIN_FORMAT);
	refused("{\"tbs\":\"x\",\"pin\":123456}", RC_PIN_FORMAT);
	/* a NUL escape anywhere: not JSON the agent reads */
	refused("{\"tbs\":\"x\",\"pin\":\"123456\\u00007\"}", RC_BAD_REQUEST);
	refused("{\"tbs\":\"x\",\"pin\":\"１２３４５６\"}", RC_PIN_FORMAT);
}

static bool
showable(const char *s)
{
	return hipki_showable((const unsigned char *)s, strlen(s));
}

static void
test_showable_text(void **state)
{
	(void)state;
	assert_true(showable("iSSO-LOGIN-v1\nhttps://isso.gov.taipei\nabc\n2026-12-07"));
	/* tab and line breaks are text (docs/cardagent.md) */
	assert_true(showable("我同意申請\t第 1 項\r\n"));
	assert_true(showable("\tcol1\tcol2"));
	assert_true(showable(""));
	/* controls, C1 controls and text that reads other than it is */
	assert_false(showable("a\x01"
	                      "b"));
	assert_false(showable("a\x7f"));
	assert_false(showable("a\xc2\x85"
	                      "b")); /* U+0085 */
	assert_false(showable("pay \xe2\x80\xae"
	                      "001")); /* U+202E right-to-left override */
	assert_false(showable("a\xe2\x80\x8b"
	                      "b")); /* U+200B zero width space */
	assert_false(showable("a\xc2\xad"
	                      "b")); /* U+00AD soft hyphen */
	assert_false(showable("\xef\xbb\xbf"
	                      "a")); /* U+FEFF */
	assert_false(showable("a\xe2\x81\xa6"
	                      "b"));                 /* U+2066 isolate */
	assert_false(showable("a\xf3\xa0\x81\x81")); /* U+E0041 tag */
	assert_false(showable("a\xd8\x9c"
	                      "b")); /* U+061C arabic letter mark */
	/* not UTF-8 */
	assert_false(showable("\xff"));
	assert_false(showable("\xe6\x88"));
	assert_false(hipki_showable((const unsigned char *)"a\0b", 3));
}

/* ---- NHI commands ---- */

static int
params(const char *q, struct nhi_params *p)
{
	memset(p, 0, sizeof(*p));
	return nhi_parse_params(q, strlen(q), p);
}

static void
test_nhi_params(void **state)
{
	struct nhi_params p;
	char q[300];

	(void)state;
	assert_int_equal(params("Random=abc_-09XYZ&Pwd=pa%24s+w0rd", &p), 0);
	assert_true(p.has_random);
	assert_string_equal(p.random, "abc_-09XYZ");
	assert_true(p.has_pwd);
	assert_string_equal(p.pwd, "pa$s w0rd");
	assert_int_equal(params("", &p), 0);
	assert_false(p.has_random || p.has_pwd);
	assert_int_equal(params("&&Pwd=123456&", &p), 0);
	assert_string_equal(p.pwd, "123456");

	/* malformed percent-encoding is a malformed command */
	assert_int_equal(params("Random=ab%zz", &p), NHI_ERR_COMMAND);
	assert_int_equal(params("Random=ab%4", &p), NHI_ERR_COMMAND);
	assert_int_equal(params("Pwd=abcdef%", &p), NHI_ERR_COMMAND);
	/* anything else is a bad parameter */
	assert_int_equal(params("Random=a&Random=b", &p), NHI_ERR_PARAM);
	assert_int_equal(params("Pwd=123456&Pwd=123456", &p), NHI_ERR_PARAM);
	assert_int_equal(params("random=abc", &p), NHI_ERR_PARAM);
	assert_int_equal(params("Random", &p), NHI_ERR_PARAM);
	assert_int_equal(params("Random=", &p), NHI_ERR_PARAM);
	assert_int_equal(params("Random=a.b", &p), NHI_ERR_PARAM);
	assert_int_equal(params("Random=a%2Fb", &p), NHI_ERR_PARAM);
	assert_int_equal(params("Pwd=12345", &p), NHI_ERR_PARAM);
	assert_int_equal(params("Pwd=1234567890123", &p), NHI_ERR_PARAM);
	assert_int_equal(params("Pwd=123456%0A", &p), NHI_ERR_PARAM);
	/* %00 would let later code see a shorter value than was checked */
	assert_int_equal(params("Pwd=123456%00789", &p), NHI_ERR_PARAM);
	assert_int_equal(params("a=1&b=2&c=3&d=4&e=5", &p), NHI_ERR_PARAM);
	/* Random: 128 characters at most */
	memcpy(q, "Random=", 7);
	memset(q + 7, 'r', 128);
	q[7 + 128] = '\0';
	assert_int_equal(params(q, &p), 0);
	assert_int_equal(strlen(p.random), 128);
	memset(q + 7, 'r', 129);
	q[7 + 129] = '\0';
	assert_int_equal(params(q, &p), NHI_ERR_PARAM);
}

static json_int_t
command_ret(struct agent *a, const char *msg, json_t **reply_r)
{
	char *text = nhi_command(a, msg, strlen(msg));
	json_t *j = json_loads(text, 0, NULL);
	json_int_t ret;

	free(text);
	assert_true(json_is_object(j));
	ret = json_integer_value(json_object_get(j, "ret"));
	if (reply_r != NULL)
		*reply_r = j;
	else
		json_decref(j);
	return ret;
}

static void
test_nhi_commands_without_card(void **state)
{
	struct agent a;
	json_t *r = NULL;

	(void)state;
	memset(&a, 0, sizeof(a));
	assert_int_equal(command_ret(&a, "GetVersion", &r), 0);
	assert_string_equal(json_string_value(json_object_get(r, "version")),
	                    "isso-cardagent " AGENT_VERSION);
	json_decref(r);
	assert_int_equal(command_ret(&a, "GetVersion?", NULL), 0);
	/* unknown, or not printable ASCII */
	assert_int_equal(command_ret(&a, "getversion", NULL), NHI_ERR_COMMAND);
	assert_int_equal(command_ret(&a, "GetVersionX", NULL), NHI_ERR_COMMAND);
	assert_int_equal(command_ret(&a, "GetVersion ", NULL), NHI_ERR_COMMAND);
	assert_int_equal(command_ret(&a, "", NULL), NHI_ERR_COMMAND);
	/* each command takes exactly its parameters */
	assert_int_equal(command_ret(&a, "GetVersion?Pwd=123456", NULL), NHI_ERR_PARAM);
	assert_int_equal(command_ret(&a, "GetBasic?Random=abc", NULL), NHI_ERR_PARAM);
	assert_int_equal(command_ret(&a, "SecureGetBasicWithParam", NULL), NHI_ERR_PARAM);
	assert_int_equal(command_ret(&a, "H_Sign", NULL), NHI_ERR_PARAM);
	assert_int_equal(command_ret(&a, "H_Sign?Random=abc&Pwd=123456", NULL), NHI_ERR_PARAM);
	assert_int_equal(command_ret(&a, "EnCrypt?Random=abc", NULL), NHI_ERR_PARAM);
	/* well-formed card commands, no card module: no reader */
	assert_int_equal(command_ret(&a, "GetBasic", NULL), NHI_ERR_NO_READER);
	assert_int_equal(command_ret(&a, "GetRandom", NULL), NHI_ERR_NO_READER);
	assert_int_equal(command_ret(&a, "H_Sign?Random=abc", NULL), NHI_ERR_NO_READER);
	assert_int_equal(command_ret(&a, "SecureGetBasicWithParam?Pwd=123456", NULL),
	                 NHI_ERR_NO_READER);
	/* nobody to encrypt the password to */
	assert_int_equal(command_ret(&a, "EnCrypt?Random=abc&Pwd=123456", NULL), NHI_ERR_CARD);
}

static void
basic(unsigned char out[50], const char *card_no, const char *big5_name, const char *id,
      const char *birth, char sex)
{
	memset(out, ' ', 50);
	memcpy(out, card_no, strlen(card_no));
	memcpy(out + 12, big5_name, strlen(big5_name));
	memcpy(out + 32, id, strlen(id));
	memcpy(out + 42, birth, strlen(birth));
	out[49] = (unsigned char)sex;
}

static void
test_nhi_basic_data(void **state)
{
	/* 王小明 in Big5 */
	static const char name[] = "\xa4\xfd\xa4\x70\xa9\xfa";
	unsigned char b[50];
	json_t *j;

	(void)state;
	basic(b, "000012340001", name, "A123456789", "0740314", 'M');
	j = nhi_basic_json(b);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "ret")), 0);
	assert_string_equal(json_string_value(json_object_get(j, "card_no")), "000012340001");
	assert_string_equal(json_string_value(json_object_get(j, "name")), "王小明");
	assert_string_equal(json_string_value(json_object_get(j, "national_id")), "A123456789");
	assert_string_equal(json_string_value(json_object_get(j, "birth")), "0740314");
	assert_string_equal(json_string_value(json_object_get(j, "sex")), "M");
	json_decref(j);
	/* NUL padding is cut like blanks */
	memset(b + 12 + 6, 0, 14);
	j = nhi_basic_json(b);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "王小明");
	json_decref(j);

	/* a blank field, a control character, bytes that are not Big5 */
	basic(b, "000012340001", "", "A123456789", "0740314", 'M');
	assert_null(nhi_basic_json(b));
	basic(b, "000012340001", name,
	      "A12345\x01"
	      "789",
	      "0740314", 'M');
	assert_null(nhi_basic_json(b));
	basic(b, "", name, "A123456789", "0740314", 'M');
	assert_null(nhi_basic_json(b));
	basic(b, "000012340001", "\xff\xff", "A123456789", "0740314", 'M');
	assert_null(nhi_basic_json(b));
	basic(b, "000012340001", name, "A123456789", "0740314", ' ');
	assert_null(nhi_basic_json(b));
}

/* ---- keys and certificates made here ---- */

static EVP_PKEY *
key_new(const char *type, unsigned bits)
{
	EVP_PKEY *k = strcmp(type, "RSA") == 0 ? EVP_RSA_gen(bits) : EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

static X509 *
cert_new(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, key);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

static void
cert_file(X509 *x, char path[64])
{
	int fd;
	FILE *f;

	snprintf(path, 64, "/tmp/isso-unit-cert-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_true(PEM_write_X509(f, x) == 1);
	fclose(f);
}

static void
test_nhi_service_key(void **state)
{
	struct agent a;
	const char *error = NULL;
	EVP_PKEY *rsa = key_new("RSA", 2048), *small = key_new("RSA", 1024), *ec = key_new("EC", 0);
	X509 *x;
	char path[64];

	(void)state;
	memset(&a, 0, sizeof(a));
	x = cert_new(rsa, "NHI service");
	cert_file(x, path);
	assert_int_equal(nhi_service_load(&a, path, &error), 0);
	assert_non_null(a.nhi_service_key);
	/* with a service key EnCrypt gets as far as the (missing) card */
	assert_int_equal(command_ret(&a, "EnCrypt?Random=abc&Pwd=123456", NULL), NHI_ERR_NO_READER);
	nhi_service_free(&a);
	assert_null(a.nhi_service_key);
	unlink(path);
	X509_free(x);

	/* too small a key, not RSA, no certificate, no file */
	x = cert_new(small, "small");
	cert_file(x, path);
	assert_int_equal(nhi_service_load(&a, path, &error), ISSO_ERR_INVALID);
	assert_non_null(strstr(error, "2048"));
	unlink(path);
	X509_free(x);
	x = cert_new(ec, "ec");
	cert_file(x, path);
	assert_int_equal(nhi_service_load(&a, path, &error), ISSO_ERR_INVALID);
	unlink(path);
	X509_free(x);
	assert_int_equal(nhi_service_load(&a, "/etc/hostname", &error), ISSO_ERR_INVALID);
	assert_int_equal(nhi_service_load(&a, "/nonexistent/nhi.crt", &error), ISSO_ERR_IO);
	assert_null(a.nhi_service_key);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(small);
	EVP_PKEY_free(ec);
}

/* ---- PKCS#7 around a card's signature ---- */

/* What the card does: CKM_SHA256_RSA_PKCS over the data. */
static unsigned char *
card_sign(EVP_PKEY *key, const unsigned char *data, size_t len, size_t *sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *sig;

	assert_true(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1);
	assert_true(EVP_DigestSign(ctx, NULL, sig_len, data, len) == 1);
	sig = malloc(*sig_len);
	assert_true(EVP_DigestSign(ctx, sig, sig_len, data, len) == 1);
	EVP_MD_CTX_free(ctx);
	return sig;
}

/* Verifies DER SignedData with its own certificate (no chain) and
 * returns the attached content's length, -1 when it does not verify. */
static long
p7_verify(const unsigned char *der, size_t len, const char *want_content)
{
	const unsigned char *p = der;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
	BIO *out = BIO_new(BIO_s_mem());
	char *content;
	long n = -1;

	if (p7 != NULL && PKCS7_verify(p7, NULL, NULL, NULL, out, PKCS7_NOVERIFY) == 1) {
		n = BIO_get_mem_data(out, &content);
		if (n != (long)strlen(want_content) ||
		    memcmp(content, want_content, (size_t)n) != 0)
			n = -1;
	}
	BIO_free(out);
	PKCS7_free(p7);
	return n;
}

static void
test_cms_signed_data(void **state)
{
	static const char tbs[] = "iSSO-LOGIN-v1\nhttps://isso.gov.taipei\nnonce\n2026-12-07";
	EVP_PKEY *key = key_new("RSA", 2048), *ec = key_new("EC", 0);
	X509 *x = cert_new(key, "王小明"), *xec = cert_new(ec, "ec");
	unsigned char *cert_der = NULL, *attrs = NULL, *sig, *der = NULL;
	size_t attrs_len = 0, sig_len = 0, der_len = 0;
	int cert_len = i2d_X509(x, &cert_der);
	struct cms_sign c = {.tbs = (const unsigned char *)tbs, .tbs_len = strlen(tbs)};

	(void)state;
	assert_true(cert_len > 0);
	assert_int_equal(cms_prepare(&c, cert_der, (size_t)cert_len, &attrs, &attrs_len), 0);
	assert_true(attrs_len > 0);
	sig = card_sign(key, attrs, attrs_len, &sig_len);
	assert_int_equal(cms_finish(&c, sig, sig_len, &der, &der_len), 0);
	assert_int_equal(p7_verify(der, der_len, tbs), (long)strlen(tbs));
	free(der);
	der = NULL;
	cms_clear(&c);
	cms_clear(&c); /* twice is safe */
	free(attrs);
	attrs = NULL;

	/* a signature over anything else does not verify */
	c = (struct cms_sign){.tbs = (const unsigned char *)tbs, .tbs_len = strlen(tbs)};
	assert_int_equal(cms_prepare(&c, cert_der, (size_t)cert_len, &attrs, &attrs_len), 0);
	sig[sig_len / 2] ^= 1;
	assert_int_equal(cms_finish(&c, sig, sig_len, &der, &der_len), 0);
	assert_int_equal(p7_verify(der, der_len, tbs), -1);
	free(der);
	cms_clear(&c);
	free(attrs);
	attrs = NULL;
	free(sig);

	/* only RSA cards; a certificate that does not parse */
	OPENSSL_free(cert_der);
	cert_der = NULL;
	cert_len = i2d_X509(xec, &cert_der);
	c = (struct cms_sign){.tbs = (const unsigned char *)tbs, .tbs_len = strlen(tbs)};
	assert_true(cms_prepare(&c, cert_der, (size_t)cert_len, &attrs, &attrs_len) < 0);
	cms_clear(&c);
	assert_true(cms_prepare(&c, cert_der, 10, &attrs, &attrs_len) < 0);
	cms_clear(&c);
	OPENSSL_free(cert_der);
	X509_free(x);
	X509_free(xec);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ec);
}

/* ---- WebSocket ---- */

static void
test_ws_accept(void **state)
{
	char out[29];

	(void)state;
	/* RFC 6455 §1.3's example */
	assert_true(ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out));
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_false(ws_accept("dGhlIHNhbXBsZSBub25jZQ", out));
	assert_false(ws_accept("dGhlIHNhbXBsZSBub25jZXg=", out));
	assert_false(ws_accept("", out));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_origin_normalise),
	    cmocka_unit_test(test_trusted_exactly),
	    cmocka_unit_test(test_sign_request_defaults),
	    cmocka_unit_test(test_sign_request_limits),
	    cmocka_unit_test(test_sign_request_refusals),
	    cmocka_unit_test(test_showable_text),
	    cmocka_unit_test(test_nhi_params),
	    cmocka_unit_test(test_nhi_commands_without_card),
	    cmocka_unit_test(test_nhi_basic_data),
	    cmocka_unit_test(test_nhi_service_key),
	    cmocka_unit_test(test_cms_signed_data),
	    cmocka_unit_test(test_ws_accept),
	};

	log_init(2, LOG_ERROR);
	return cmocka_run_group_tests_name("cardagent", tests, NULL, NULL);
}
