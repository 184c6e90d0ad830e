/* Parsers of the TW FidO service's replies, inside the connector
 * (twfido.c); declared here only for tests/fuzz/fuzz_twfido.c. */
#ifndef ISSO_CONN_TWFIDO_PRIVATE_H
#define ISSO_CONN_TWFIDO_PRIVATE_H

#include "conn/twfido.h"

/* A reply's error_code raw ("SP-API-ATH-02-20002", "20002: pending", …):
 * the part before any ':', trimmed, named "{iface}-{code}" into name (a
 * code given with its interface keeps it) and the bare system code into
 * sys, both NUL-terminated. False when empty, too long or not a code's
 * characters ([0-9A-Za-z_-]). */
bool tf_code_split(const char *raw, const char *iface, char name[TWFIDO_CODE_MAX],
                   char sys[TWFIDO_CODE_MAX]);
/* Reads sp_ticket_id and hashed_id_num (both tokens of at most 128
 * characters; hashed_id_num may stay "") from the payload segment of an
 * sp_ticket (base64url JSON before the last '.') into t, which must name
 * transaction txn. 0, or ISSO_ERR_IO with *error_r set. */
int tf_ticket_decode(const char *sp_ticket, const char *txn, struct twfido_ticket *t,
                     const char **error_r);

#endif
