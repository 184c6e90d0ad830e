/* NHI card (健保卡) verification connector. The card's component signs a
 * one-time random from the portal (H_Sign) and, bound to the same random,
 * the citizen's registration password (註冊密碼; EnCrypt); the NHI service
 * checks both against the card and the holder. NHI's server-side interface
 * is not public: this speaks OUR contract, meant to be mapped onto the
 * real service at deployment (docs/connectors/nhi.md):
 *
 *   POST {base}/v1/verify  {"card_no","national_id","random","signature",
 *                           "cert","password_blob"}
 *        -> {"result":"ok"} | {"result":"fail","reason":…[,"tries_left"]
 *                              [,"retry_after"]}
 *
 * Clients authenticate with HTTP Basic as conn/moica.h. libcurl types
 * never appear here. */
#ifndef ISSO_CONN_NHI_H
#define ISSO_CONN_NHI_H

struct conn_nhi;

/* The answer to a verification, in the order the service checks:
 *   SIGNATURE  unknown card, signature over the random not the card's, or
 *              the random was used before;
 *   MISMATCH   the national ID is not the card holder's;
 *   SUSPENDED  three wrong passwords: web use suspended (*retry_after_r);
 *   PASSWORD   wrong registration password (*tries_left_r left);
 *   ERROR      no usable answer (unreachable, timeout, refused
 *              credentials, malformed reply or arguments). */
enum nhi_result { NHI_OK, NHI_SIGNATURE, NHI_MISMATCH, NHI_PASSWORD, NHI_SUSPENDED, NHI_ERROR };

/* As conn_moica_new() (base e.g. http://127.0.0.1:8090/nhi). */
struct conn_nhi *conn_nhi_new(const char *base_url, const char *client_id, const char *secret,
                              int timeout_ms);
void conn_nhi_free(struct conn_nhi *c);

/* Verifies one card answer. card_no: 12 digits; national_id: national ID
 * or resident certificate number (any case); random: the portal's
 * challenge, 1..128 characters [A-Za-z0-9_-]; signature_b64: the card's
 * RSA PKCS#1 v1.5 SHA-256 signature over the random's ASCII bytes;
 * cert_b64: the card's certificate (DER, may be NULL; the service does not
 * trust it); blob_b64: the card's signature over "NHI-PWD\n" random "\n"
 * password. *tries_left_r (optional) is set with NHI_PASSWORD (2, 1),
 * else -1; *retry_after_r (optional, seconds) with NHI_SUSPENDED, else -1.
 * Never logs the ID, the random or the blobs. Thread-safe. */
enum nhi_result conn_nhi_verify(struct conn_nhi *c, const char *card_no, const char *national_id,
                                const char *random, const char *signature_b64, const char *cert_b64,
                                const char *blob_b64, int *tries_left_r, int *retry_after_r);

/* "ok", "signature", "mismatch", "password", "suspended", "error". */
const char *nhi_result_name(enum nhi_result r);

#endif
