/* Reading the test PKI that scripts/test-pki.sh writes (--pki DIR): PEM
 * certificates and keys, and the per-card certificate folders. Shared by
 * the card modules (sim-moica.c, sim-nhi.c). */
#include "sim/sim.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/xmalloc.h"

#define PKI_NAME_MAX 64

static char pki_error[512];

static const char *
pki_fail(const char *what, const char *dir, const char *name)
{
	snprintf(pki_error, sizeof(pki_error), "%s/%s: %s", dir, name, what);
	return pki_error;
}

X509 *
sim_pki_cert(const char *dir, const char *name, const char **error_r)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	X509 *cert = NULL;

	if (f == NULL) {
		*error_r = pki_fail("cannot open", dir, name);
		goto out;
	}
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	if (cert == NULL)
		*error_r = pki_fail("not a PEM certificate", dir, name);
	fclose(f);
out:
	free(path);
	return cert;
}

EVP_PKEY *
sim_pki_key(const char *dir, const char *name, const char **error_r)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	EVP_PKEY *key = NULL;

	if (f == NULL) {
		*error_r = pki_fail("cannot open", dir, name);
		goto out;
	}
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	if (key == NULL)
		*error_r = pki_fail("not a PEM private key (or one with a passphrase)", dir, name);
	fclose(f);
out:
	free(path);
	return key;
}

/* "NAME.crt" with NAME 1..PKI_NAME_MAX of [A-Za-z0-9_-]: copies NAME out. */
static bool
pki_cert_name(const char *file, char name_r[PKI_NAME_MAX + 1])
{
	size_t n = strspn(file, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");

	if (n == 0 || n > PKI_NAME_MAX || strcmp(file + n, ".crt") != 0)
		return false;
	memcpy(name_r, file, n);
	name_r[n] = '\0';
	return true;
}

int
sim_pki_each_cert(const char *dir, const char *sub,
                  int (*fn)(const char *name, X509 *cert, void *ctx), void *ctx,
                  const char **error_r)
{
	struct dirent **list = NULL;
	char *path = xasprintf("%s/%s", dir, sub);
	char name[PKI_NAME_MAX + 1], file[PKI_NAME_MAX + 8];
	X509 *cert;
	int n, ret = ISSO_ERR_IO;
	size_t count = 0;

	n = scandir(path, &list, NULL, alphasort);
	if (n < 0) {
		*error_r = pki_fail("cannot read the folder", dir, sub);
		goto out;
	}
	ret = 0;
	for (int i = 0; i < n && ret == 0; i++) {
		if (!pki_cert_name(list[i]->d_name, name))
			continue;
		if (++count > SIM_PKI_MAX_CERTS) {
			*error_r = pki_fail("too many certificates", dir, sub);
			ret = ISSO_ERR_LIMIT;
			break;
		}
		snprintf(file, sizeof(file), "%s.crt", name);
		cert = sim_pki_cert(path, file, error_r);
		if (cert == NULL) {
			ret = ISSO_ERR_INVALID;
			break;
		}
		ret = fn(name, cert, ctx);
	}
out:
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
	free(path);
	return ret;
}

long
sim_b64_decode(const char *s, unsigned char *out, size_t outmax)
{
	size_t len = strlen(s), n;
	char *std = NULL;
	long ret = -1;

	while (len > 0 && s[len - 1] == '=')
		len--;
	if (len % 4 == 1 || len > outmax / 3 * 4 + 4)
		goto out;
	std = xmalloc(len + 4);
	for (n = 0; n < len; n++) {
		char c = s[n];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (c == '=')
			goto out;
		std[n] = c;
	}
	while (n % 4 != 0)
		std[n++] = '=';
	ret = b64_decode(std, n, out, outmax);
out:
	free(std);
	return ret;
}
