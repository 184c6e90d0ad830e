/* The testcard PKCS#11 module's card state (docs/test-pki.md): PIN failure
 * counters and removal marks, kept per token serial. With a state
 * directory (ISSO_TESTCARD_STATE) they are the files <serial>.pin-failures
 * (text, a number) and <serial>.removed, so that scripts/test-pki.sh and
 * other processes see and change them; without one the counters live in
 * memory and no card is ever removed. The caller serialises every call
 * (testcard.c holds one lock). Private to the module. */
#ifndef ISSO_TESTCARD_TESTCARD_H
#define ISSO_TESTCARD_TESTCARD_H

#include <stdbool.h>

/* A token serial: at most 16 characters (CK_TOKEN_INFO.serialNumber). */
#define TESTCARD_SERIAL_MAX 16

/* Wrong PINs in a row after which the card is locked. */
#define TESTCARD_PIN_TRIES 3

/* Uses the directory dir for the state from now on (copied); NULL or ""
 * keeps the state in memory. Returns 0, or -1 when out of memory. */
int testcard_state_init(const char *dir);

/* Frees the state kept in memory (when the module is unloaded). */
void testcard_state_free(void);

/* True when the card with this serial is taken out of its reader. */
bool testcard_removed(const char *serial);

/* The card's wrong PINs in a row (0 when unknown). */
int testcard_failures(const char *serial);

/* Records n wrong PINs in a row (0 forgets the count). The file is
 * replaced atomically. Returns 0, or -1 when it could not be stored. */
int testcard_set_failures(const char *serial, int n);

#endif
