/* Test fixture shared by the card tests: the test PKI of
 * scripts/test-pki.sh, one per test program in the build dir (so that
 * programs run in parallel never write the same one) unless
 * $ISSO_TEST_PKI names one, and small OpenSSL readers for its files.
 * Header-only: each test program is its own executable. */
#ifndef ISSO_TEST_PKI_DIR_H
#define ISSO_TEST_PKI_DIR_H

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Helpers a test program may leave unused. */
#define ISSO_TEST_UNUSED __attribute__((unused))

static char pki_dir[PATH_MAX];

/* Sets pki_dir: $ISSO_TEST_PKI, else <builddir>/tests/<name>-pki made (or
 * refreshed when stale: the script redoes it only then) with
 * scripts/test-pki.sh. Returns 0, or -1 with a message. */
static int
pki_dir_setup(const char *name)
{
	const char *env = getenv("ISSO_TEST_PKI");
	char self[PATH_MAX - 64], *slash;
	ssize_t n;
	pid_t pid;
	int status;

	if (env != NULL && *env != '\0') {
		snprintf(pki_dir, sizeof(pki_dir), "%s", env);
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	snprintf(pki_dir, sizeof(pki_dir), "%s/%s-pki", self, name);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		execl("scripts/test-pki.sh", "test-pki.sh", "--out", pki_dir, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s: scripts/test-pki.sh --out %s failed\n", name, pki_dir);
		return -1;
	}
	return 0;
}

/* DIR/name as a certificate; fails the test when unreadable. */
static ISSO_TEST_UNUSED X509 *
pki_cert(const char *name)
{
	char path[PATH_MAX + 64];
	FILE *f;
	X509 *x;

	snprintf(path, sizeof(path), "%s/%s", pki_dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

/* DIR/name as a private key; fails the test when unreadable. */
static ISSO_TEST_UNUSED EVP_PKEY *
pki_key(const char *name)
{
	char path[PATH_MAX + 64];
	FILE *f;
	EVP_PKEY *k;

	snprintf(path, sizeof(path), "%s/%s", pki_dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(k);
	return k;
}

/* The certificate's serial as lowercase hex (as BN_bn2hex gives it). */
static ISSO_TEST_UNUSED void
pki_serial_hex(X509 *x, char out[80])
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = BN_bn2hex(bn);

	assert_non_null(hex);
	assert_true(strlen(hex) < 80);
	for (size_t i = 0; hex[i] != '\0'; i++)
		out[i] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] + 32 : hex[i]);
	out[strlen(hex)] = '\0';
	OPENSSL_free(hex);
	BN_free(bn);
}

/* A key identifier as lowercase hex. */
static ISSO_TEST_UNUSED void
pki_keyid_hex(const ASN1_OCTET_STRING *id, char out[130])
{
	assert_non_null(id);
	assert_true(ASN1_STRING_length(id) > 0 && ASN1_STRING_length(id) <= 64);
	for (int i = 0; i < ASN1_STRING_length(id); i++)
		snprintf(out + 2 * i, 3, "%02x", ASN1_STRING_get0_data(id)[i]);
}

#endif
