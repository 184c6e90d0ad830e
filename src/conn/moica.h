/* MOICA ID-check connector (自然人憑證 卡片): does a citizen certificate
 * belong to the holder of a national ID? The certificate carries only the
 * holder's name and the last four digits of the ID, so the full ID typed
 * on the page is confirmed by the issuing authority. MOICA's own interface
 * for this is not public: this speaks OUR contract, meant to be mapped onto
 * the real service at deployment (docs/connectors/moica.md):
 *
 *   POST {base}/v1/id-check   {"cert_serial","issuer_key_id","national_id"}
 *        -> {"result":"match"} | {"result":"mismatch"}
 *
 * Clients authenticate with HTTP Basic (client_id / secret, form-encoded
 * first as in RFC 6749 §2.3.1). Certificate validation and revocation
 * (OCSP, CRL) are conn/cardpki.h's. libcurl types never appear here. */
#ifndef ISSO_CONN_MOICA_H
#define ISSO_CONN_MOICA_H

struct conn_moica;

/* The answer to an ID check. MISMATCH covers an unknown certificate and
 * someone else's ID alike; ERROR is no usable answer (unreachable, timeout,
 * refused credentials, malformed reply, malformed arguments). */
enum moica_id_result { MOICA_ID_MATCH, MOICA_ID_MISMATCH, MOICA_ID_ERROR };

/* base_url: the contract's base (e.g. http://127.0.0.1:8090/moica), http(s)
 * only, without a query. timeout_ms bounds each exchange (<= 0: 5000).
 * Strings are copied; the secret is wiped on free. NULL when an argument
 * is missing or malformed. */
struct conn_moica *conn_moica_new(const char *base_url, const char *client_id, const char *secret,
                                  int timeout_ms);
void conn_moica_free(struct conn_moica *c);

/* Asks whether the certificate with this serial (hex, as BN_bn2hex gives
 * it, either case, leading zeros allowed) issued under this CA key
 * (issuer_key_id_hex: the certificate's Authority Key Identifier, hex)
 * belongs to national_id (national ID or resident certificate number, any
 * case). Never logs the ID. Thread-safe. */
enum moica_id_result conn_moica_id_check(struct conn_moica *c, const char *cert_serial_hex,
                                         const char *issuer_key_id_hex, const char *national_id);

/* "match", "mismatch", "error" (logs, tests). */
const char *moica_id_result_name(enum moica_id_result r);

#endif
