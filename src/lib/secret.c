/* Cryptographic helpers on libsodium. */
#include "lib/hex.h"
#include "lib/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* Largest plaintext secret_seal() accepts: personal data, not files. */
#define SECRET_SEAL_MAX (1024 * 1024)
#define SECRET_NONCE    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SECRET_TAG      crypto_aead_xchacha20poly1305_ietf_ABYTES

/* Subkey ids for crypto_kdf; never renumber (stored data depends on them). */
enum {
	SECRET_KDF_DATA = 1,
	SECRET_KDF_LOOKUP,
	SECRET_KDF_COOKIE,
	SECRET_KDF_SUB,
	SECRET_KDF_TOKEN
};
static const char secret_kdf_context[crypto_kdf_CONTEXTBYTES] = {'i', 's', 's', 'o',
                                                                 '-', 'k', 'e', 'y'};

int
secret_init(void)
{
	return sodium_init() < 0 ? ISSO_ERR_CRYPTO : 0;
}

char *
secret_token(size_t nbytes, char *out)
{
	unsigned char chunk[48]; /* a multiple of 3: chunks encode without padding */
	size_t n, o = 0;

	out[0] = '\0';
	while (nbytes > 0) {
		n = nbytes < sizeof(chunk) ? nbytes : sizeof(chunk);
		randombytes_buf(chunk, n);
		b64url_encode(chunk, n, out + o);
		o += b64url_encoded_len(n);
		nbytes -= n;
	}
	sodium_memzero(chunk, sizeof(chunk));
	return out;
}

char *
secret_uuid(char out[37])
{
	unsigned char b[16];
	size_t i, o = 0;

	randombytes_buf(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex_digit(b[i] >> 4);
		out[o++] = hex_digit(b[i]);
	}
	out[o] = '\0';
	return out;
}

char *
secret_digits(size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = (char)('0' + randombytes_uniform(10));
	out[n] = '\0';
	return out;
}

void
secret_sha256(const void *data, size_t len, unsigned char out[32])
{
	crypto_hash_sha256(out, data, len);
}

char *
secret_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char h[32];

	secret_sha256(data, len, h);
	sodium_bin2hex(out, 65, h, sizeof(h));
	return out;
}

bool
secret_equal(const char *a, const char *b)
{
	size_t la, lb;

	if (a == NULL || b == NULL)
		return false;
	la = strlen(a);
	lb = strlen(b);
	if (la != lb)
		return false;
	return la == 0 || sodium_memcmp(a, b, la) == 0;
}

int
secret_password_hash(const char *password, char out[128])
{
	if (crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		out[0] = '\0';
		return ISSO_ERR_NOMEM;
	}
	return 0;
}

bool
secret_password_verify(const char *hash, const char *password)
{
	if (hash == NULL || password == NULL ||
	    strnlen(hash, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
		return false;
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

void
secret_keys_derive(const unsigned char master[32], struct secret_keys *keys)
{
	crypto_kdf_derive_from_key(keys->data, sizeof(keys->data), SECRET_KDF_DATA,
	                           secret_kdf_context, master);
	crypto_kdf_derive_from_key(keys->lookup, sizeof(keys->lookup), SECRET_KDF_LOOKUP,
	                           secret_kdf_context, master);
	crypto_kdf_derive_from_key(keys->cookie, sizeof(keys->cookie), SECRET_KDF_COOKIE,
	                           secret_kdf_context, master);
	crypto_kdf_derive_from_key(keys->sub, sizeof(keys->sub), SECRET_KDF_SUB, secret_kdf_context,
	                           master);
	crypto_kdf_derive_from_key(keys->token, sizeof(keys->token), SECRET_KDF_TOKEN,
	                           secret_kdf_context, master);
}

/* Creates each missing directory above path (mode 0700). */
static int
secret_mkdirs(const char *path)
{
	char dir[PATH_MAX];
	char *p;
	int n;

	n = snprintf(dir, sizeof(dir), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -1;
	if ((p = strrchr(dir, '/')) == NULL || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int
secret_write_all(int fd, const char *p, size_t len)
{
	ssize_t w;

	while (len > 0) {
		w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Writes a new random key to path without ever replacing an existing file:
 * the key goes to a temporary file first, then link(2) publishes it. */
static int
secret_master_create(const char *path, const char **error_r)
{
	unsigned char key[32];
	char hex[66], tmp[PATH_MAX];
	int fd = -1, ret = ISSO_ERR_IO, n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		*error_r = "master key path too long";
		goto out;
	}
	if (secret_mkdirs(path) < 0) {
		*error_r = "cannot create the master key's directory";
		goto out;
	}
	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
	hex[64] = '\n';
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		*error_r = "cannot create the master key file";
		goto out;
	}
	if (secret_write_all(fd, hex, 65) < 0 || fsync(fd) < 0) {
		*error_r = "cannot write the master key file";
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		*error_r = "cannot write the master key file";
		goto out;
	}
	fd = -1;
	/* EEXIST: another process won the race; its key is read back. */
	if (link(tmp, path) < 0 && errno != EEXIST) {
		*error_r = "cannot publish the master key file";
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (n >= 0 && (size_t)n < sizeof(tmp))
		(void)unlink(tmp);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(hex, sizeof(hex));
	return ret;
}

int
secret_master_load(const char *path, bool create, unsigned char master[32], const char **error_r)
{
	char text[130];
	const char *error = NULL, *end = NULL;
	struct stat st;
	size_t len = 0, binlen = 0;
	ssize_t r;
	int fd = -1, ret = ISSO_ERR_IO;

	if (path == NULL || path[0] == '\0') {
		error = "no master key file configured";
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 && errno == ENOENT && create) {
		if ((ret = secret_master_create(path, &error)) < 0)
			goto out;
		ret = ISSO_ERR_IO;
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		error =
		    errno == ENOENT ? "master key file missing" : "cannot open the master key file";
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		error = "master key file is not a regular file";
		goto out;
	}
	if ((st.st_mode & 077) != 0)
		log_warn("master_key_insecure_mode", "path", path, NULL);
	while (len < sizeof(text) - 1) {
		r = read(fd, text + len, sizeof(text) - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			error = "cannot read the master key file";
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	text[len] = '\0';
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
		text[--len] = '\0';
	ret = ISSO_ERR_INVALID;
	if (len != 64 || sodium_hex2bin(master, 32, text, len, NULL, &binlen, &end) != 0 ||
	    binlen != 32 || end != text + 64) {
		error = "master key file must hold 64 hex characters";
		sodium_memzero(master, 32);
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	sodium_memzero(text, sizeof(text));
	if (error_r != NULL)
		*error_r = error;
	return ret;
}

/* XChaCha20-Poly1305 under key, bound to ad: base64url of nonce ‖
 * ciphertext ‖ tag into *out_r (malloc'd); the nonce alone, base64url,
 * into id_r when not NULL. */
static int
seal_with(const unsigned char key[32], const char *ad, const char *plaintext, size_t len,
          char **out_r, char id_r[SECRET_TOKEN_ID_LEN + 1])
{
	size_t adlen = ad != NULL ? strlen(ad) : 0;
	unsigned char *raw;
	size_t rawlen;

	*out_r = NULL;
	if (len > SECRET_SEAL_MAX || (plaintext == NULL && len > 0))
		return ISSO_ERR_INVALID;
	rawlen = SECRET_NONCE + len + SECRET_TAG;
	raw = xmalloc(rawlen);
	randombytes_buf(raw, SECRET_NONCE);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
	    raw + SECRET_NONCE, NULL, (const unsigned char *)plaintext, len,
	    (const unsigned char *)ad, adlen, NULL, raw, key);
	*out_r = xmalloc(b64url_encoded_len(rawlen) + 1);
	b64url_encode(raw, rawlen, *out_r);
	if (id_r != NULL)
		b64url_encode(raw, SECRET_NONCE, id_r);
	free(raw);
	return 0;
}

/* The inverse of seal_with for at most max bytes of plaintext:
 * ISSO_ERR_CRYPTO when forged, tampered with, sealed under another key or
 * ad, or longer. */
static int
open_with(const unsigned char key[32], const char *ad, const char *sealed, size_t max, char **out_r,
          char id_r[SECRET_TOKEN_ID_LEN + 1])
{
	size_t adlen = ad != NULL ? strlen(ad) : 0;
	unsigned char *raw = NULL;
	char *plain = NULL;
	size_t slen, rawmax, plainlen = 0;
	long rawlen;
	int ret = ISSO_ERR_CRYPTO;

	*out_r = NULL;
	if (sealed == NULL)
		return ISSO_ERR_INVALID;
	slen = strnlen(sealed, b64url_encoded_len(SECRET_NONCE + max + SECRET_TAG) + 1);
	if (slen > b64url_encoded_len(SECRET_NONCE + max + SECRET_TAG))
		goto out;
	rawmax = slen / 4 * 3 + 3;
	raw = xmalloc(rawmax);
	rawlen = b64url_decode(sealed, slen, raw, rawmax);
	if (rawlen < (long)(SECRET_NONCE + SECRET_TAG))
		goto out;
	plainlen = (size_t)rawlen - SECRET_NONCE - SECRET_TAG;
	plain = xmalloc(plainlen + 1);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	        (unsigned char *)plain, NULL, NULL, raw + SECRET_NONCE,
	        (size_t)rawlen - SECRET_NONCE, (const unsigned char *)ad, adlen, raw, key) != 0)
		goto out;
	plain[plainlen] = '\0';
	if (id_r != NULL)
		b64url_encode(raw, SECRET_NONCE, id_r);
	*out_r = plain;
	plain = NULL;
	ret = 0;
out:
	if (plain != NULL) {
		sodium_memzero(plain, plainlen + 1);
		free(plain);
	}
	free(raw);
	return ret;
}

int
secret_seal(const struct secret_keys *keys, const char *plaintext, size_t len, char **out_r)
{
	return seal_with(keys->data, NULL, plaintext, len, out_r, NULL);
}

int
secret_open(const struct secret_keys *keys, const char *sealed, char **out_r)
{
	return open_with(keys->data, NULL, sealed, SECRET_SEAL_MAX, out_r, NULL);
}

int
secret_token_seal(const struct secret_keys *keys, const char *ad, const char *plaintext, size_t len,
                  char **out_r, char id_r[SECRET_TOKEN_ID_LEN + 1])
{
	*out_r = NULL;
	if (len > SECRET_TOKEN_MAX)
		return ISSO_ERR_INVALID;
	return seal_with(keys->token, ad, plaintext, len, out_r, id_r);
}

int
secret_token_open(const struct secret_keys *keys, const char *ad, const char *sealed, char **out_r,
                  char id_r[SECRET_TOKEN_ID_LEN + 1])
{
	return open_with(keys->token, ad, sealed, SECRET_TOKEN_MAX, out_r, id_r);
}

char *
secret_lookup_hash(const struct secret_keys *keys, const char *domain, const char *value,
                   char out[65])
{
	crypto_generichash_state st;
	unsigned char h[32];
	static const unsigned char zero = 0;

	if (domain == NULL)
		domain = "";
	if (value == NULL)
		value = "";
	crypto_generichash_init(&st, keys->lookup, sizeof(keys->lookup), sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)domain, strlen(domain));
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, (const unsigned char *)value, strlen(value));
	crypto_generichash_final(&st, h, sizeof(h));
	sodium_memzero(&st, sizeof(st));
	sodium_bin2hex(out, 65, h, sizeof(h));
	return out;
}

char *
secret_mac(const struct secret_keys *keys, const char *msg, char out[44])
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256(mac, (const unsigned char *)msg, strlen(msg), keys->cookie);
	b64url_encode(mac, sizeof(mac), out);
	return out;
}
