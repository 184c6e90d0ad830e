/* Card certificate verification: a citizen digital certificate (MOICA,
 * 自然人憑證) card signed our one-time challenge; is the signature the
 * card's, does its certificate chain to a configured root through the
 * configured intermediates only, is it current, meant for signing and not
 * revoked (OCSP and / or CRL, fetched over HTTP: hence the conn layer)?
 * And who is the holder (name, last four digits of the ID, serial)?
 * docs/card-certificates.md tells operators what to install.
 *
 * Verdict precedence: cardpki_verify() answers with the FIRST failing
 * check, in this order (each later check runs only when the earlier ones
 * passed):
 *   1. MALFORMED          arguments, base64, DER, sizes; a PKCS#7 that is
 *                         not SignedData with exactly one signer, attached
 *                         data content, SHA-256 digest and the signer's
 *                         certificate inside
 *   2. CONTENT_MISMATCH   PKCS#7 content is not tbs byte for byte (another
 *                         challenge's signature, a replay)
 *   3. BAD_SIGNATURE      the signature does not verify with the card's
 *                         key; or cert_b64 given with a PKCS#7 is not its
 *                         signer
 *   4. EXPIRED            the card's certificate is past notAfter, or
 *      NOT_YET_VALID      before notBefore. Checked on the card's certificate
 *                         itself, before the chain, so that a genuine card
 *                         that expired is told so instead of a chain error.
 *                         A certificate from a foreign chain that is also
 *                         out of date says EXPIRED too: both are refusals.
 *   5. WRONG_CHAIN        no path from the card's certificate through the
 *                         configured intermediates to a configured root
 *                         (X509 strict; key identifiers must match, so a
 *                         look-alike CA with our CAs' names fails here), or
 *                         a CA certificate on the path is out of date
 *   6. KEY_USAGE          the certificate has no keyUsage extension with
 *                         digitalSignature or nonRepudiation, is a CA, or is
 *                         an OCSP responder's
 *   7. MALFORMED          the (trusted) certificate lacks the holder data:
 *                         a single UTF-8 CN, a subject serialNumber ending in
 *                         four digits, a positive serial, an AKI keyIdentifier
 *   8. REVOKED            the first revocation source that answers (in the
 *      REVOCATION_UNAVAILABLE  configured order) says revoked; no source
 *                         answered good or revoked: unavailable (refuse the
 *                         login: fail closed)
 *   9. OK
 */
#ifndef ISSO_CONN_CARDPKI_H
#define ISSO_CONN_CARDPKI_H

#include <stddef.h>

/* Limits on what a browser may hand us (decoded DER sizes). */
#define CARDPKI_SIGNATURE_MAX (16 * 1024)
#define CARDPKI_CERT_MAX      (8 * 1024)
/* Limits on what a revocation source may answer. */
#define CARDPKI_OCSP_REPLY_MAX (64 * 1024)
#define CARDPKI_CRL_MAX        (32 * 1024 * 1024)

struct cardpki_settings {
	const char *roots_file;         /* PEM: trusted roots (GRCA); at least one */
	const char *intermediates_file; /* PEM: MOICA CA certificates, every
	                                 * generation; NULL or "": none */
	const char *ocsp_url;           /* NULL or "": the certificate's AIA OCSP URI */
	const char *crl_url;            /* NULL or "": the certificate's CDP URI */
	const char *revocation;         /* checks in order: "ocsp,crl" | "crl,ocsp" |
	                                 * "ocsp" | "crl" | "none" (tests only) */
	int timeout_ms;                 /* each OCSP / CRL exchange; <= 0: 5000 */
	int crl_cache_seconds;          /* a CRL is reused until its nextUpdate or
	                                 * this many seconds, whichever is sooner;
	                                 * 0: fetched for every check */
};

struct cardpki;

/* Loads the roots and intermediates and checks the settings (URLs http or
 * https only). Returns 0 with *pki_r (free with cardpki_free()), or
 * ISSO_ERR_INVALID / ISSO_ERR_IO with *pki_r NULL and *error_r (optional)
 * a static English reason. Strings in s are copied. */
int cardpki_new(const struct cardpki_settings *s, struct cardpki **pki_r, const char **error_r);
void cardpki_free(struct cardpki *pki);

enum cardpki_verdict {
	CARDPKI_OK,
	CARDPKI_MALFORMED,
	CARDPKI_BAD_SIGNATURE,
	CARDPKI_CONTENT_MISMATCH,
	CARDPKI_WRONG_CHAIN,
	CARDPKI_EXPIRED,
	CARDPKI_NOT_YET_VALID,
	CARDPKI_KEY_USAGE,
	CARDPKI_REVOKED,
	CARDPKI_REVOCATION_UNAVAILABLE /* nobody answered: refuse */
};

/* "ok", "malformed", "bad_signature", "content_mismatch", "wrong_chain",
 * "expired", "not_yet_valid", "key_usage", "revoked",
 * "revocation_unavailable"; "?" for anything else. */
const char *cardpki_verdict_name(enum cardpki_verdict v);

/* What the card's certificate says about its holder. */
struct cardpki_holder {
	char name[256];              /* subject CN, UTF-8 */
	char id_last4[5];            /* last 4 digits of the subject serialNumber */
	char serial_hex[65];         /* certificate serial, lowercase hex as
	                              * BN_bn2hex writes it (whole bytes, leading
	                              * zero bytes dropped) */
	char issuer_key_id_hex[129]; /* AKI keyIdentifier, lowercase hex */
};

/* Verifies a card's signature over tbs (our challenge) and its certificate.
 * sig_type "PKCS1": signature_b64 is an RSA PKCS#1 v1.5 signature over
 * SHA-256(tbs) by cert_b64's key (cert_b64 required). "PKCS7": a DER
 * PKCS#7 SignedData whose attached content equals tbs exactly, SHA-256,
 * one signer whose certificate is inside; cert_b64 may be NULL, and when
 * given must be that signer's certificate (DER byte for byte). Both in
 * standard base64 (CR, LF and spaces are ignored). Certificates inside
 * the PKCS#7 other than the signer's are never used for the chain.
 *
 * Returns the verdict (precedence at the top of this file). holder_r
 * (may be NULL) is zeroed, and filled only with CARDPKI_OK. May block for
 * the revocation checks (each exchange bounded by timeout_ms). Logs a
 * refusal's reason with the certificate serial, never the holder's name or
 * digits. Thread-safe: one pki serves all request threads. */
enum cardpki_verdict cardpki_verify(struct cardpki *pki, const char *sig_type,
                                    const char *signature_b64, const char *cert_b64,
                                    const unsigned char *tbs, size_t tbs_len,
                                    struct cardpki_holder *holder_r);

/* The checks 4 to 8 above (validity, chain, key usage, holder data,
 * revocation) for a certificate alone, cert_b64 in standard base64 of its
 * DER: one whose key proved itself elsewhere, e.g. the certificate a TW
 * FidO result carries for the mobile natural-person certificate. A
 * certificate that cannot be read is MALFORMED. holder_r as for
 * cardpki_verify(); blocks, logs and is thread-safe as it does. */
enum cardpki_verdict cardpki_check_cert(struct cardpki *pki, const char *cert_b64,
                                        struct cardpki_holder *holder_r);

#endif
