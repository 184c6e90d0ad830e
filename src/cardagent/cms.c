/* PKCS#7 SignedData with the signature made outside OpenSSL (by the card):
 * OpenSSL builds the structure and the signed attributes; the card signs
 * the DER of those attributes (RFC 5652 §5.4: a SET OF, DER-sorted). */
#include "cardagent/cms.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "lib/isso.h"
#include "lib/xmalloc.h"

int
cms_prepare(void *ctx, const unsigned char *cert, size_t cert_len, unsigned char **data_r,
            size_t *len_r)
{
	struct cms_sign *c = ctx;
	const unsigned char *p = cert;
	unsigned char md[EVP_MAX_MD_SIZE], *attrs = NULL;
	unsigned int md_len = 0;
	X509 *x = NULL;
	EVP_PKEY *pub;
	PKCS7 *p7 = NULL;
	PKCS7_SIGNER_INFO *si = NULL;
	int alen, ret = ISSO_ERR_CRYPTO;

	cms_clear(c);
	*data_r = NULL;
	if (cert_len > 65536 || (x = d2i_X509(NULL, &p, (long)cert_len)) == NULL ||
	    p != cert + cert_len)
		goto out;
	if ((pub = X509_get0_pubkey(x)) == NULL || !EVP_PKEY_is_a(pub, "RSA"))
		goto out;
	if (!EVP_Digest(c->tbs, c->tbs_len, md, &md_len, EVP_sha256(), NULL))
		goto out;
	if ((p7 = PKCS7_new()) == NULL || !PKCS7_set_type(p7, NID_pkcs7_signed) ||
	    !PKCS7_content_new(p7, NID_pkcs7_data))
		goto out;
	if (!ASN1_OCTET_STRING_set(p7->d.sign->contents->d.data, c->tbs, (int)c->tbs_len))
		goto out;
	if ((si = PKCS7_SIGNER_INFO_new()) == NULL ||
	    !PKCS7_SIGNER_INFO_set(si, x, pub, EVP_sha256()))
		goto out;
	if (!PKCS7_add_signer(p7, si)) /* p7 owns si from here */
		goto out;
	if (!PKCS7_add_certificate(p7, x))
		goto out_owned;
	if (!PKCS7_add_signed_attribute(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
	                                OBJ_nid2obj(NID_pkcs7_data)) ||
	    !PKCS7_add0_attrib_signing_time(si, NULL) ||
	    !PKCS7_add1_attrib_digest(si, md, (int)md_len))
		goto out_owned;
	alen = ASN1_item_i2d((ASN1_VALUE *)si->auth_attr, &attrs, ASN1_ITEM_rptr(PKCS7_ATTR_SIGN));
	if (alen <= 0 || attrs == NULL)
		goto out_owned;
	*data_r = xmalloc((size_t)alen);
	memcpy(*data_r, attrs, (size_t)alen);
	*len_r = (size_t)alen;
	OPENSSL_free(attrs);
	c->p7 = p7;
	c->si = si;
	p7 = NULL;
	ret = 0;
	goto out_owned;
out:
	PKCS7_SIGNER_INFO_free(si);
out_owned:
	PKCS7_free(p7);
	X509_free(x);
	return ret;
}

int
cms_finish(struct cms_sign *c, const unsigned char *sig, size_t sig_len, unsigned char **der_r,
           size_t *der_len_r)
{
	PKCS7_SIGNER_INFO *si = c->si;
	unsigned char *copy, *der = NULL;
	int len;

	*der_r = NULL;
	if (c->p7 == NULL || sig_len == 0 || sig_len > 4096)
		return ISSO_ERR_INVALID;
	copy = OPENSSL_malloc(sig_len);
	if (copy == NULL)
		return ISSO_ERR_NOMEM;
	memcpy(copy, sig, sig_len);
	ASN1_STRING_set0(si->enc_digest, copy, (int)sig_len);
	len = i2d_PKCS7(c->p7, &der);
	if (len <= 0 || der == NULL)
		return ISSO_ERR_CRYPTO;
	*der_r = xmalloc((size_t)len);
	memcpy(*der_r, der, (size_t)len);
	*der_len_r = (size_t)len;
	OPENSSL_free(der);
	return 0;
}

void
cms_clear(struct cms_sign *c)
{
	PKCS7_free(c->p7);
	c->p7 = NULL;
	c->si = NULL;
}
