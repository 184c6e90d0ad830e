/* The card agent's request parsers, which read what any local program or
 * web page sends and touch neither card nor socket: the HiPKI /sign body
 * (hipki.c) and the NHI commands' parameters and card data (nhi.c). Only
 * the two servers, tests/unit/test_cardagent.c and the fuzz targets use
 * them. */
#ifndef ISSO_CARDAGENT_PARSE_H
#define ISSO_CARDAGENT_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* ---- HiPKI /sign ---- */

#define HIPKI_MAX_TBS 4096

struct sign_args {
	bool pkcs7;
	unsigned char tbs[HIPKI_MAX_TBS];
	size_t tbs_len;
	bool with_sn;
	bool has_slot;
	unsigned long slot;
	char pin[9];
};

/* Reads a MakeSignature request (JSON, len bytes) into args, which the
 * caller zeroed. false: *rc_r is RC_BAD_REQUEST or RC_PIN_FORMAT and
 * *why_r an English reason (static). The PIN inside the JSON is wiped as
 * soon as it is copied; on success it is 6 to 8 digits. */
bool hipki_parse_sign(const char *body, size_t len, struct sign_args *args, int *rc_r,
                      const char **why_r);
/* True when the text may be shown to the citizen as it is: UTF-8 without
 * control characters (but tab and line breaks), C1 controls, or the
 * invisible and direction-changing characters that could make the text
 * read other than what is signed. */
bool hipki_showable(const unsigned char *s, size_t n);

/* ---- NHI commands ---- */

#define NHI_MAX_RANDOM 128
#define NHI_MIN_PWD    6
#define NHI_MAX_PWD    12

/* Error replies (spec: {"ret":<n>}). */
#define NHI_ERR_COMMAND   -1
#define NHI_ERR_PARAM     -2
#define NHI_ERR_NO_READER -3
#define NHI_ERR_NO_CARD   -4
#define NHI_ERR_REMOVED   -5
#define NHI_ERR_CARD      -6

struct nhi_params {
	char random[NHI_MAX_RANDOM + 1];
	char pwd[NHI_MAX_PWD + 1];
	bool has_random, has_pwd;
};

/* Parses a command's query "k=v&k=v" (n bytes; Random and Pwd only, each
 * at most once, percent-encoded) into p, which the caller zeroed. Returns
 * 0, NHI_ERR_COMMAND for a malformed query or NHI_ERR_PARAM. Random is 1
 * to 128 of [A-Za-z0-9_-]; Pwd 6 to 12 printable ASCII characters. */
int nhi_parse_params(const char *q, size_t n, struct nhi_params *p);
/* {"ret":0,"card_no","name","national_id","birth","sex"} from the card's
 * 50 bytes of basic data (the name in Big5), or NULL when a field is not
 * what the card holds. */
json_t *nhi_basic_json(const unsigned char *b);

#endif
