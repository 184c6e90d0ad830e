/* Unit tests for the cryptographic helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"

static struct secret_keys keys, other_keys;

static int
setup(void **state)
{
	unsigned char master[32];

	if (secret_init() != 0)
		return -1;
	memset(master, 7, sizeof(master));
	secret_keys_derive(master, &keys);
	master[0] = 8;
	secret_keys_derive(master, &other_keys);
	return 0;
}

static void
test_derive(void **state)
{
	unsigned char master[32];
	struct secret_keys k2;

	memset(master, 7, sizeof(master));
	secret_keys_derive(master, &k2);
	assert_memory_equal(&k2, &keys, sizeof(k2));
	assert_memory_not_equal(keys.data, keys.lookup, 32);
	assert_memory_not_equal(keys.data, keys.cookie, 32);
	assert_memory_not_equal(keys.lookup, keys.sub, 32);
	assert_memory_not_equal(keys.cookie, keys.sub, 32);
	assert_memory_not_equal(keys.data, other_keys.data, 32);
	assert_memory_not_equal(keys.data, keys.token, 32);
	assert_memory_not_equal(keys.token, other_keys.token, 32);
}

/* Self-contained token boxes: bound to their associated data and key,
 * bounded in size, the nonce given back as the token's identifier. */
static void
test_token_seal_open(void **state)
{
	static const char text[] = "{\"client_id\":\"svc\",\"exp\":1}";
	char id[SECRET_TOKEN_ID_LEN + 1], id2[SECRET_TOKEN_ID_LEN + 1];
	char *box = NULL, *plain = NULL, *big, *data_box = NULL;

	(void)state;
	assert_int_equal(
	    secret_token_seal(&keys, "https://isso.example", text, strlen(text), &box, id), 0);
	assert_int_equal(strlen(id), SECRET_TOKEN_ID_LEN);
	assert_int_equal(strncmp(box, id, SECRET_TOKEN_ID_LEN), 0);
	assert_int_equal(secret_token_open(&keys, "https://isso.example", box, &plain, id2), 0);
	assert_string_equal(plain, text);
	assert_string_equal(id, id2);
	free(plain);
	/* Another issuer, another master key, the personal-data key. */
	assert_int_equal(secret_token_open(&keys, "https://other.example", box, &plain, id2),
	                 ISSO_ERR_CRYPTO);
	assert_int_equal(secret_token_open(&keys, NULL, box, &plain, id2), ISSO_ERR_CRYPTO);
	assert_int_equal(secret_token_open(&other_keys, "https://isso.example", box, &plain, id2),
	                 ISSO_ERR_CRYPTO);
	assert_int_equal(secret_open(&keys, box, &plain), ISSO_ERR_CRYPTO);
	assert_int_equal(secret_seal(&keys, text, strlen(text), &data_box), 0);
	assert_int_equal(secret_token_open(&keys, NULL, data_box, &plain, id2), ISSO_ERR_CRYPTO);
	assert_null(plain);
	/* At most SECRET_TOKEN_MAX bytes of claims. */
	big = calloc(1, SECRET_TOKEN_MAX + 2);
	assert_non_null(big);
	memset(big, 'x', SECRET_TOKEN_MAX + 1);
	assert_int_equal(secret_token_seal(&keys, "a", big, SECRET_TOKEN_MAX + 1, &plain, id),
	                 ISSO_ERR_INVALID);
	assert_null(plain);
	assert_int_equal(secret_token_seal(&keys, "a", big, SECRET_TOKEN_MAX, &plain, id), 0);
	free(plain);
	free(big);
	free(data_box);
	free(box);
}

static void
test_seal_open(void **state)
{
	static const char *const texts[] = {"", "A123456789", "王小明 臺北市信義區市府路1號"};
	char *sealed = NULL, *sealed2 = NULL, *plain = NULL, *bad;
	size_t i, n;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		assert_int_equal(secret_seal(&keys, texts[i], strlen(texts[i]), &sealed), 0);
		assert_null(strpbrk(sealed, "+/="));
		assert_int_equal(strlen(sealed), b64url_encoded_len(24 + strlen(texts[i]) + 16));
		assert_int_equal(secret_open(&keys, sealed, &plain), 0);
		assert_string_equal(plain, texts[i]);
		xfree_secret(plain);
		/* Random nonce: two seals differ. */
		assert_int_equal(secret_seal(&keys, texts[i], strlen(texts[i]), &sealed2), 0);
		assert_string_not_equal(sealed, sealed2);
		free(sealed2);
		/* Wrong key. */
		assert_int_equal(secret_open(&other_keys, sealed, &plain), ISSO_ERR_CRYPTO);
		assert_null(plain);
		/* Every single-character change is detected. */
		n = strlen(sealed);
		bad = xstrdup(sealed);
		for (size_t j = 0; j < n; j++) {
			char c = bad[j];

			bad[j] = c == 'A' ? 'B' : 'A';
			assert_int_equal(secret_open(&keys, bad, &plain), ISSO_ERR_CRYPTO);
			assert_null(plain);
			bad[j] = c;
		}
		/* Truncated, extended, not base64url. */
		bad[n - 1] = '\0';
		assert_int_equal(secret_open(&keys, bad, &plain), ISSO_ERR_CRYPTO);
		free(bad);
		bad = xasprintf("%sAAAA", sealed);
		assert_int_equal(secret_open(&keys, bad, &plain), ISSO_ERR_CRYPTO);
		free(bad);
		bad = xstrdup(sealed);
		bad[3] = '=';
		assert_int_equal(secret_open(&keys, bad, &plain), ISSO_ERR_CRYPTO);
		free(bad);
		free(sealed);
	}
	assert_int_equal(secret_open(&keys, "", &plain), ISSO_ERR_CRYPTO);
	assert_int_equal(secret_open(&keys, "AAAA", &plain), ISSO_ERR_CRYPTO);
	assert_int_equal(secret_open(&keys, NULL, &plain), ISSO_ERR_INVALID);
	/* Binary plaintext round trip; too large refused. */
	assert_int_equal(secret_seal(&keys, "a\0b", 3, &sealed), 0);
	assert_int_equal(secret_open(&keys, sealed, &plain), 0);
	assert_memory_equal(plain, "a\0b", 4);
	free(plain);
	free(sealed);
	assert_int_equal(secret_seal(&keys, "x", 2u * 1024 * 1024, &sealed), ISSO_ERR_INVALID);
	assert_null(sealed);
}

static void
test_lookup_hash(void **state)
{
	char h1[65], h2[65], h3[65], h4[65];

	secret_lookup_hash(&keys, "id", "A123456789", h1);
	secret_lookup_hash(&keys, "id", "A123456789", h2);
	assert_int_equal(strlen(h1), 64);
	assert_int_equal(strspn(h1, "0123456789abcdef"), 64);
	assert_string_equal(h1, h2);
	/* Domain separation. */
	secret_lookup_hash(&keys, "phone", "A123456789", h3);
	assert_string_not_equal(h1, h3);
	/* "id" + "A1…" differs from "idA" + "1…": the 0 separator. */
	secret_lookup_hash(&keys, "idA", "123456789", h3);
	assert_string_not_equal(h1, h3);
	secret_lookup_hash(&keys, "id", "A123456788", h3);
	assert_string_not_equal(h1, h3);
	/* Keyed. */
	secret_lookup_hash(&other_keys, "id", "A123456789", h4);
	assert_string_not_equal(h1, h4);
}

static void
test_mac_sha(void **state)
{
	char m1[44], m2[44], hex[65];
	unsigned char raw[32];

	secret_mac(&keys, "csrf:abc", m1);
	secret_mac(&keys, "csrf:abc", m2);
	assert_int_equal(strlen(m1), 43);
	assert_string_equal(m1, m2);
	secret_mac(&keys, "csrf:abd", m2);
	assert_string_not_equal(m1, m2);
	secret_mac(&other_keys, "csrf:abc", m2);
	assert_string_not_equal(m1, m2);

	secret_sha256_hex("abc", 3, hex);
	assert_string_equal(hex,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	secret_sha256("", 0, raw);
	assert_int_equal(raw[0], 0xe3);
	assert_int_equal(raw[31], 0x55);

	assert_true(secret_equal("abc", "abc"));
	assert_true(secret_equal("", ""));
	assert_false(secret_equal("abc", "abd"));
	assert_false(secret_equal("abc", "ab"));
	assert_false(secret_equal(NULL, "a"));
	assert_false(secret_equal("a", NULL));
}

static void
test_password(void **state)
{
	char h1[128], h2[128];

	assert_int_equal(secret_password_hash("correct horse", h1), 0);
	assert_int_equal(strncmp(h1, "$argon2id$", 10), 0);
	assert_int_equal(secret_password_hash("correct horse", h2), 0);
	assert_string_not_equal(h1, h2); /* salted */
	assert_true(secret_password_verify(h1, "correct horse"));
	assert_true(secret_password_verify(h2, "correct horse"));
	assert_false(secret_password_verify(h1, "correct horsE"));
	assert_false(secret_password_verify(h1, ""));
	assert_false(secret_password_verify("", "correct horse"));
	assert_false(secret_password_verify("$argon2id$garbage", "x"));
	assert_false(secret_password_verify(NULL, "x"));
	assert_false(secret_password_verify(h1, NULL));
}

static void
test_random(void **state)
{
	char tok[64], uuid[37], digits[200];
	int counts[10] = {0};
	size_t i;

	secret_token(32, tok);
	assert_int_equal(strlen(tok), 43);
	assert_int_equal(
	    strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
	secret_token(16, tok);
	assert_int_equal(strlen(tok), 22);
	{
		char big[4 * 100 / 3 + 3], *copy;
		unsigned char raw[100];

		secret_token(100, big);
		assert_int_equal(strlen(big), b64url_encoded_len(100));
		copy = xstrdup(big);
		assert_int_equal(b64url_decode(copy, strlen(copy), raw, sizeof(raw)), 100);
		free(copy);
	}
	secret_token(0, tok);
	assert_string_equal(tok, "");

	for (i = 0; i < 100; i++) {
		secret_uuid(uuid);
		assert_int_equal(strlen(uuid), 36);
		assert_int_equal(uuid[8], '-');
		assert_int_equal(uuid[13], '-');
		assert_int_equal(uuid[18], '-');
		assert_int_equal(uuid[23], '-');
		assert_int_equal(uuid[14], '4');
		assert_non_null(strchr("89ab", uuid[19]));
		assert_int_equal(strspn(uuid, "0123456789abcdef-"), 36);
	}

	secret_digits(6, digits);
	assert_int_equal(strlen(digits), 6);
	assert_int_equal(strspn(digits, "0123456789"), 6);
	secret_digits(0, digits);
	assert_string_equal(digits, "");
	/* Rough uniformity: 50,000 digits, each within ±20% of 5,000. */
	for (int k = 0; k < 250; k++) {
		secret_digits(sizeof(digits) - 1, digits);
		for (i = 0; i < sizeof(digits) - 1; i++)
			counts[digits[i] - '0']++;
	}
	for (i = 0; i < 10; i++)
		assert_in_range(counts[i], 4000, 6000);
}

static void
test_master_key(void **state)
{
	char dir[128], path[160], text[200];
	unsigned char m1[32], m2[32];
	const char *err = NULL;
	struct stat st;
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/isso-test-secret-%ld", (long)getpid());
	snprintf(path, sizeof(path), "%s/sub/master.key", dir);
	assert_int_equal(secret_master_load(path, false, m1, &err), ISSO_ERR_IO);
	assert_non_null(err);
	assert_int_equal(secret_master_load(path, true, m1, &err), 0);
	assert_null(err);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(secret_master_load(path, true, m2, &err), 0);
	assert_memory_equal(m1, m2, 32);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(text, sizeof(text), f));
	fclose(f);
	assert_int_equal(strlen(text), 65);
	assert_int_equal(strspn(text, "0123456789abcdef"), 64);

	/* Malformed files are refused, never replaced. */
	f = fopen(path, "w");
	fputs("not hex at all", f);
	fclose(f);
	assert_int_equal(secret_master_load(path, true, m2, &err), ISSO_ERR_INVALID);
	assert_non_null(err);
	f = fopen(path, "w");
	fputs("00112233445566778899aabbccddeeff00112233445566778899aabbccddeef", f);
	fclose(f);
	assert_int_equal(secret_master_load(path, true, m2, &err), ISSO_ERR_INVALID);
	f = fopen(path, "w");
	fputs("00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\r\n", f);
	fclose(f);
	assert_int_equal(secret_master_load(path, true, m2, &err), 0);
	assert_int_equal(m2[10], 0xaa);
	assert_int_equal(m2[31], 0xff);
	assert_int_equal(secret_master_load(dir, true, m2, &err), ISSO_ERR_IO); /* a directory */
	assert_int_equal(secret_master_load("", true, m2, &err), ISSO_ERR_INVALID);

	unlink(path);
	snprintf(text, sizeof(text), "%s/sub", dir);
	rmdir(text);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_derive),          cmocka_unit_test(test_seal_open),
	    cmocka_unit_test(test_token_seal_open), cmocka_unit_test(test_lookup_hash),
	    cmocka_unit_test(test_mac_sha),         cmocka_unit_test(test_password),
	    cmocka_unit_test(test_random),          cmocka_unit_test(test_master_key),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
