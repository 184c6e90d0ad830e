/* Anchors for the hash-chained audit log: signed checkpoints of the
 * chain's head. Each checkpoint is a compact JWS (ES256, the issuer's
 * signing key) over {iss, seq, hash, ts} of the newest row, appended to
 * the chain itself as an "audit_checkpoint" row. Someone who can write the
 * store but holds no signing key can recompute the hash chain after an
 * edit, but cannot sign a checkpoint for the rewritten head; checkpoints
 * copied off the server also show a chain cut short or rewritten whole. */
#ifndef ISSO_ANCHOR_H
#define ISSO_ANCHOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct isso_app;

/* The audit event of a checkpoint row and the JWS typ of its token. */
#define ANCHOR_EVENT "audit_checkpoint"
#define ANCHOR_TYP   "audit-checkpoint+jwt"

/* Where a writer last saw the chain end, so the next checkpoint reads only
 * the rows appended since. Zeroed: read the chain from its start. */
struct anchor_cursor {
	int64_t seq;
	char hash[65];
	bool checkpoint; /* the row at seq is itself a checkpoint */
};

/* Signs the chain's current head and appends the checkpoint, unless the
 * head already is a checkpoint (nothing happened since) or the chain is
 * empty. cursor (may be NULL) is read and advanced. *written_r (may be
 * NULL) tells whether a row was appended. Returns 0 or an ISSO_ERR_*. */
int anchor_checkpoint(struct isso_app *app, int64_t now, struct anchor_cursor *cursor,
                      bool *written_r);

/* Starts the periodic checkpoint writer on app->workers every
 * audit.checkpoint_interval seconds (nothing when 0). Across nodes that
 * share a store, one node writes each interval's checkpoint. Returns 0 or
 * an ISSO_ERR_*. */
int anchor_start(struct isso_app *app);

/* The stored checkpoints, oldest first, as a JSON array of objects {seq,
 * ts, jws} (seq and ts of the checkpoint row) into *list_r (caller
 * decrefs). Returns 0 or an ISSO_ERR_*. */
int anchor_export(struct isso_app *app, json_t **list_r);

/* Verifies the chain, every stored checkpoint (signature by one of the
 * issuer's keys, retired ones included; its seq and hash on the chain) and,
 * when exported is not NULL, each checkpoint of an earlier export (an
 * array as anchor_export writes it): a head cut off below it or rewritten
 * fails, and so does an exported checkpoint missing from the store.
 * *report_r (caller decrefs) is an object {ok, rows, checkpoints, …,
 * problems}; *ok_r says whether all held. Returns 0, or an ISSO_ERR_* when
 * the store could not be read (or exported is not an array). */
int anchor_verify(struct isso_app *app, json_t *exported, json_t **report_r, bool *ok_r);

#endif
