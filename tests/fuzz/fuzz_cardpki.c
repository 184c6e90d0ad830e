/* Fuzzes card signature verification (cardpki_verify) with a fixed chain
 * (a root and a CA made with the openssl command for this target; the
 * corpus holds a PKCS#1 and a PKCS#7 signature over FUZZ_TBS by a card
 * certificate under them, valid until 2045), revocation off. Input: byte 0
 * bit 0 PKCS7 (else PKCS1), bit 1 pass the certificate, bit 2 the rest is
 * the signature's base64 text as is; otherwise bytes 1-2 (big-endian) are
 * the DER certificate's length, then the certificate, then the DER
 * signature. Checks the promises the verdict makes about the holder. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn/cardpki.h"
#include "lib/b64.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_TBS "isso-fuzz-challenge"

static const char fuzz_root[] = "-----BEGIN CERTIFICATE-----\n"
                                "MIIDEjCCAfqgAwIBAgIUG5kF+mitstYpiUQXvV141wBBg+0wDQYJKoZIhvcNAQEL\n"
                                "BQAwITELMAkGA1UEBhMCVFcxEjAQBgNVBAoMCUZ1enogUm9vdDAeFw0yNjExMjgw\n"
                                "MzI4NTRaFw00NjExMjMwMzI4NTRaMCExCzAJBgNVBAYTAlRXMRIwEAYDVQQKDAlG\n"
                                "dXp6IFJvb3QwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQCjJ+OJbe+R\n"
                                "OOixHLZlEYlSwb5mulrkUy66f6HHoR60OSySp7ub9rePNybqE73kHg1vMgh7fyli\n"
                                "fURNGB6s0ldMEMNPg7+3UUeZbdRqq76QvDqCoy74otb5B+qaf41o7bLIw+c8BjYy\n"
                                "NLCU6r51eyIvR6CgB2/Q5aLvrxVCK7wCqUCUrxKzQBjWC7qtjW6zStRfiK5eMITf\n"
                                "iYFT1ItDChzPS74ozsdtAWbfXy4JsGFHyT1VnQXS1mGwqwnJUfL885OgYk7FQbAe\n"
                                "3EASsHT0x+Ahtnlo7J+HIJqxfA1kS1+2ICRxp0Xzjv/NsW60UGQgrDCPjwZwPe6d\n"
                                "wXz8KoNBYE6VAgMBAAGjQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQD\n"
                                "AgEGMB0GA1UdDgQWBBQFNIO7ppdsmrHh5BSCznMfHT9NWzANBgkqhkiG9w0BAQsF\n"
                                "AAOCAQEAh4O2cJTDf1i42GjN5SRpol/2B/3qCJvRlqKAMVfBO7rOrZgsA3hJ6zSM\n"
                                "L3dlVeJgXQBiTFv8KZ/wRaMCbmUvdZKnH+troPxVp3Xa/tDVEPUed1NeuDsa12hX\n"
                                "m70T/ushsSa+mQbu42rWN2n3MAJDyeuYiwbQ1/EkaHdKrvp3umiQtSz8r5IMUvQA\n"
                                "jbSikcTqXdYnOMs9NWGWkO8lii0zd7FQ5YcIN8dmlIUobVMzAum0c2NR3s/Oh/M3\n"
                                "fzOsaxUy+wT3EusPfqEUG3/NkecP/008Cfttz7secz6RAliqdosdZq4SHix/fDa8\n"
                                "pgN1d5hQdgEQH7rHW1JHcEVpYtb6og==\n"
                                "-----END CERTIFICATE-----\n";

static const char fuzz_ca[] = "-----BEGIN CERTIFICATE-----\n"
                              "MIIDITCCAgmgAwIBAgIBAjANBgkqhkiG9w0BAQsFADAhMQswCQYDVQQGEwJUVzES\n"
                              "MBAGA1UECgwJRnV6eiBSb290MB4XDTI2MTEyODAzMjg1NVoXDTQ2MDgxNTAzMjg1\n"
                              "NVowHzELMAkGA1UEBhMCVFcxEDAOBgNVBAoMB0Z1enogQ0EwggEiMA0GCSqGSIb3\n"
                              "DQEBAQUAA4IBDwAwggEKAoIBAQDe9tBxxLdR5z2EEgp3fzu0KA8pmC+EaHnq9uNW\n"
                              "2OYq29WTIFPi5KJyEAjzezDrixwRhcRWysr6RG+IRsDW2/6fq7UMCk4GPRZWW5wo\n"
                              "UMygR8AW3pTXS1w0unBsM3WTnirEBJkx1Qo9D7OuMoXlUc2GO9EBBc2c6kA80lQN\n"
                              "0rfvsk2mNoUVWCuESKqj+O/WyIVXjCHvoFMvoiVCq1O/5iDRk/HmCS91WLvVQ7DA\n"
                              "bi+EB+2DGb54gKGcOWYGOx4LOBcm/JwEs9Xe0gA/J6o9jfjhDyFSrloLMO0pq6cq\n"
                              "i1KJHwRSTEY2Mk4xPl4ytW+dCW06eIVT+pVXFcmE6ga5Aw7PAgMBAAGjZjBkMBIG\n"
                              "A1UdEwEB/wQIMAYBAf8CAQAwDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBTh5keP\n"
                              "h+SksT3yC246BuNX4sNu2zAfBgNVHSMEGDAWgBQFNIO7ppdsmrHh5BSCznMfHT9N\n"
                              "WzANBgkqhkiG9w0BAQsFAAOCAQEAQHnWWhQ1P7rAHAx7dKfIXbZLUvyoRe9TKeEu\n"
                              "ZyBNf6QuS/I5M13sI/LX5rP+vS0xT20dC5KYOtfkS0R7J+mVOjq4aIQd8i8/G8RK\n"
                              "RHhIzCidQyVO4AA5tBJrrHDcbzEG+t30FJ6ctsgZYMNHki2EqeP7dxKeBZ4pH3KJ\n"
                              "8j4kmwXUfyMA/eonUDYbFhix7jpSM7iClJ35XCChFjEIxEiJz/Ijum+IEtJOAY90\n"
                              "hcxHpx0wEmAfvk77fEYTLSrtY4PJUcTnqERZkABMhSZVmRqM2dCXjM3UOiR8baiN\n"
                              "OF6nYXlJdVwJMzGEv0D8FefqI/7XKqYRkcA+gNC8fyFdqA+Amw==\n"
                              "-----END CERTIFICATE-----\n";

/* Writes pem to a temporary file; returns its path (malloc'd). */
static char *
fuzz_pem_file(const char *pem)
{
	char *path = xstrdup("/tmp/isso-fuzz-cardpki-XXXXXX");
	int fd = mkstemp(path);
	size_t len = strlen(pem);

	if (fd < 0 || write(fd, pem, len) != (ssize_t)len)
		abort();
	close(fd);
	return path;
}

static struct cardpki *
fuzz_pki(void)
{
	static struct cardpki *pki;
	char *roots, *chain;
	struct cardpki_settings s = {.revocation = "none"};

	if (pki != NULL)
		return pki;
	log_init(2, LOG_ERROR);
	roots = fuzz_pem_file(fuzz_root);
	chain = fuzz_pem_file(fuzz_ca);
	s.roots_file = roots;
	s.intermediates_file = chain;
	if (cardpki_new(&s, &pki, NULL) != 0)
		abort();
	unlink(roots);
	unlink(chain);
	free(roots);
	free(chain);
	return pki;
}

static char *
fuzz_b64(const uint8_t *p, size_t n)
{
	char *s = xmalloc(n / 3 * 4 + 5);

	return b64_encode(p, n, s);
}

static int
fuzz_is_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		if (b[i] != 0)
			return 0;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cardpki *pki = fuzz_pki();
	struct cardpki_holder h;
	char *sig = NULL, *cert = NULL;
	const char *type;
	enum cardpki_verdict v;
	size_t cert_len = 0;

	if (size < 1)
		return 0;
	type = (data[0] & 1) != 0 ? "PKCS7" : "PKCS1";
	if ((data[0] & 4) != 0) {
		sig = xstrndup((const char *)data + 1, size - 1);
	} else {
		if (size >= 3)
			cert_len = (size_t)data[1] << 8 | data[2];
		if (size < 3 || cert_len > size - 3)
			cert_len = 0;
		if ((data[0] & 2) != 0 && size >= 3)
			cert = fuzz_b64(data + 3, cert_len);
		sig = size >= 3 ? fuzz_b64(data + 3 + cert_len, size - 3 - cert_len)
		                : fuzz_b64(data + 1, size - 1);
	}
	memset(&h, 0x55, sizeof(h));
	v = cardpki_verify(pki, type, sig, cert, (const unsigned char *)FUZZ_TBS, strlen(FUZZ_TBS),
	                   &h);
	if ((unsigned)v > CARDPKI_REVOCATION_UNAVAILABLE)
		abort();
	if (v == CARDPKI_OK) {
		/* holder data is complete and terminated */
		if (h.name[0] == '\0' || memchr(h.name, '\0', sizeof(h.name)) == NULL ||
		    strlen(h.id_last4) != 4 || strspn(h.id_last4, "0123456789") != 4 ||
		    h.serial_hex[0] == '\0' ||
		    memchr(h.serial_hex, '\0', sizeof(h.serial_hex)) == NULL ||
		    h.issuer_key_id_hex[0] == '\0' ||
		    memchr(h.issuer_key_id_hex, '\0', sizeof(h.issuer_key_id_hex)) == NULL)
			abort();
	} else if (!fuzz_is_zero(&h, sizeof(h))) {
		/* nothing of a refused certificate reaches the caller */
		abort();
	}
	free(sig);
	free(cert);
	return 0;
}
