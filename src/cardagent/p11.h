/* The agent's PKCS#11 layer: one module, loaded and initialised once; every
 * call into it runs under one mutex (cards are single-user devices). */
#ifndef ISSO_CARDAGENT_P11_H
#define ISSO_CARDAGENT_P11_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#define P11_NHI_BASIC_LEN 50
#define P11_MAX_RANDOM    64

struct p11;

/* The outcome of a card operation: rc is one of the agent's RC_* codes,
 * rv the CK_RV that caused it (0 when none), tries_left the PIN tries
 * left after a PIN error (-1 when not known). */
struct p11_status {
	int rc;
	unsigned long rv;
	int tries_left;
};

/* dlopens the module and calls C_Initialize. Returns 0, or ISSO_ERR_IO with
 * *error_r set (a static string). */
int p11_load(const char *path, struct p11 **p11_r, const char **error_r);
/* C_Finalize and dlclose; NULL is fine. */
void p11_unload(struct p11 *p);

/* The body of a pkcs11info reply: {"moduleInfo":…, "slots":[…]} with the
 * certificates when withcert. Returns a new object, or NULL with st set. */
json_t *p11_info(struct p11 *p, bool withcert, struct p11_status *st);

/* Small counts for the status page. */
void p11_counts(struct p11 *p, int *slots_r, int *tokens_r, char *desc, size_t desc_size);

/* Produces the bytes the card signs, once the certificate is known
 * (PKCS#7 signs its signed attributes). *data_r is malloc'd; returns 0 or
 * a negative ISSO_ERR_*. */
typedef int p11_prepare_fn(void *ctx, const unsigned char *cert, size_t cert_len,
                           unsigned char **data_r, size_t *len_r);

struct p11_sign_req {
	bool has_slot;
	unsigned long slot;
	const char *pin; /* 6-8 digits, checked by the caller */
	p11_prepare_fn *prepare;
	void *ctx;
};

/* What a signature produced; free with p11_sign_res_clear(). */
struct p11_sign_res {
	unsigned char *sig, *cert;
	size_t sig_len, cert_len;
	char serial[17]; /* the token's serial number, trimmed */
};

/* Logs in on the chosen (or first MOICA-like) token, signs with
 * CKM_SHA256_RSA_PKCS the key whose certificate shares its CKA_ID, logs
 * out. A token that says it is locked is not sent the PIN. */
void p11_sign(struct p11 *p, const struct p11_sign_req *req, struct p11_sign_res *res,
              struct p11_status *st);
void p11_sign_res_clear(struct p11_sign_res *res);

/* One operation on the first NHI token (label "NHI …"). */
struct p11_nhi_op {
	const char *pin; /* the agent's --nhi-pin (NULL: no login) */
	bool read_basic;
	size_t random_len;        /* 0: no random; at most P11_MAX_RANDOM */
	const unsigned char *tbs; /* NULL: no signature */
	size_t tbs_len;
	/* results */
	unsigned char basic[P11_NHI_BASIC_LEN];
	unsigned char random[P11_MAX_RANDOM];
	unsigned char *sig, *cert; /* malloc'd; p11_nhi_op_clear() frees */
	size_t sig_len, cert_len;
};
void p11_nhi(struct p11 *p, struct p11_nhi_op *op, struct p11_status *st);
void p11_nhi_op_clear(struct p11_nhi_op *op);

/* PIN tries left from token flags: locked 0, final try 1, count low 2,
 * else 3. */
int p11_tries_left(unsigned long flags);

#endif
