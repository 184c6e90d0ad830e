/* PKCS#7 / CMS SignedData whose signature the card makes: the signed
 * attributes are built here, the card signs their DER, and the result is
 * assembled here. */
#ifndef ISSO_CARDAGENT_CMS_H
#define ISSO_CARDAGENT_CMS_H

#include <stddef.h>

struct cms_sign {
	const unsigned char *tbs; /* the content, attached */
	size_t tbs_len;
	void *p7; /* PKCS7 *, between prepare and finish */
	void *si; /* its PKCS7_SIGNER_INFO * (owned by p7) */
};

/* A p11_prepare_fn (ctx = struct cms_sign *): parses the card's
 * certificate, builds the SignedData (SHA-256, content attached, the
 * certificate included, signed attributes contentType, messageDigest and
 * signingTime) and returns the DER of the signed attributes, which the
 * card signs with CKM_SHA256_RSA_PKCS. Only RSA keys. 0 or ISSO_ERR_*. */
int cms_prepare(void *ctx, const unsigned char *cert, size_t cert_len, unsigned char **data_r,
                size_t *len_r);
/* Puts the card's signature in and returns the DER SignedData (malloc'd). */
int cms_finish(struct cms_sign *c, const unsigned char *sig, size_t sig_len, unsigned char **der_r,
               size_t *der_len_r);
/* Frees what prepare built; safe to call more than once. */
void cms_clear(struct cms_sign *c);

#endif
