/* Common definitions shared by every iSSO module. */
#ifndef ISSO_H
#define ISSO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Functions that act return 0 or one of these (negative). "Not found" is not
 * an error: it is success with a NULL result. */
#define ISSO_OK           0
#define ISSO_ERR_NOMEM    -1 /* only from code that must not abort */
#define ISSO_ERR_INVALID  -2 /* malformed input */
#define ISSO_ERR_IO       -3 /* file, network or peer failure */
#define ISSO_ERR_STORE    -4 /* database failure */
#define ISSO_ERR_CONFLICT -5 /* unique key already taken / lost a race */
#define ISSO_ERR_LIMIT    -6 /* size or rate limit reached */
#define ISSO_ERR_CRYPTO   -7 /* signature, MAC or decryption failure */
#define ISSO_ERR_DENIED   -8 /* authentication or authorisation refused */
#define ISSO_ERR_TIMEOUT  -9 /* a peer did not answer in time */

/* A short English name for an ISSO_ERR_* value, for logs. */
const char *isso_strerror(int err);

/* The cores this process may run on (its CPU affinity, so a container
 * limited to two cores of a large host counts two), at least 1. */
unsigned isso_cpu_count(void);

#define ISSO_N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

#endif
