/* Signed checkpoints of the audit chain's head (anchor.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/anchor.h"
#include "auth/app.h"
#include "jose/jose.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/worker.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define ANCHOR_EPH_KIND     "audit_checkpoint" /* one writer per interval */
#define ANCHOR_MAX_PROBLEMS 100                /* listed; all are counted */

static const char *const anchor_algs[] = {"ES256", NULL};

static bool
hash_form(const char *h)
{
	if (h == NULL || strlen(h) != 64)
		return false;
	for (const char *p = h; *p != '\0'; p++) {
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	}
	return true;
}

/* ---- writing ---- */

static int
head_row(int64_t seq, int64_t ts, const char *event, const char *data, const char *hash, void *ctx)
{
	struct anchor_cursor *c = ctx;

	if (!hash_form(hash))
		return 1;
	c->seq = seq;
	memcpy(c->hash, hash, sizeof(c->hash));
	c->checkpoint = strcmp(event, ANCHOR_EVENT) == 0;
	return 0;
}

int
anchor_checkpoint(struct isso_app *app, int64_t now, struct anchor_cursor *cursor, bool *written_r)
{
	struct anchor_cursor local;
	json_t *claims = NULL;
	char *jws = NULL, seq_text[24];
	int ret;

	if (written_r != NULL)
		*written_r = false;
	if (cursor == NULL) {
		memset(&local, 0, sizeof(local));
		cursor = &local;
	}
	ret = store_audit_list(app->store, cursor->seq, head_row, cursor);
	if (ret > 0) {
		log_error("audit_checkpoint_failed", "reason", "a row without a valid hash", NULL);
		ret = ISSO_ERR_STORE;
	}
	if (ret < 0 || cursor->seq == 0 || cursor->checkpoint)
		goto out;
	claims = json_pack("{s:s, s:I, s:s, s:I}", "iss", app->issuer, "seq",
	                   (json_int_t)cursor->seq, "hash", cursor->hash, "ts", (json_int_t)now);
	if (claims == NULL) {
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	ret = jose_sign(app->keys, "ES256", ANCHOR_TYP, claims, &jws);
	if (ret < 0) {
		log_error("audit_checkpoint_failed", "reason", "cannot sign", NULL);
		goto out;
	}
	ret = store_audit_append(app->store, now, ANCHOR_EVENT,
	                         json_pack("{s:I, s:s, s:s}", "seq", (json_int_t)cursor->seq,
	                                   "hash", cursor->hash, "jws", jws));
	if (ret < 0) {
		log_error("audit_checkpoint_failed", "reason", "cannot append", NULL);
		goto out;
	}
	snprintf(seq_text, sizeof(seq_text), "%" PRId64, cursor->seq);
	log_info("audit_checkpoint_written", "seq", seq_text, NULL);
	if (written_r != NULL)
		*written_r = true;
out:
	json_decref(claims);
	free(jws);
	return ret;
}

/* Read and advanced only by the periodic task, which never runs twice at
 * once. */
static struct anchor_cursor tick_cursor;

static void
anchor_tick(void *ctx)
{
	struct isso_app *app = ctx;
	int64_t interval = app->cfg->audit.checkpoint_interval, now = app_now();
	int64_t window = now / interval;
	char key[24];
	int n = 0;

	/* Every node ticks; the first to count this interval's window
	 * writes its checkpoint. */
	snprintf(key, sizeof(key), "%" PRId64, window);
	if (store_eph_incr(app->store, ANCHOR_EPH_KIND, key, now, (window + 2) * interval, &n) <
	    0) {
		log_warn("audit_checkpoint_failed", "reason", "store unavailable", NULL);
		return;
	}
	if (n != 1)
		return;
	(void)anchor_checkpoint(app, now, &tick_cursor, NULL);
}

int
anchor_start(struct isso_app *app)
{
	int interval = app->cfg->audit.checkpoint_interval;

	if (interval <= 0)
		return 0;
	if (app->workers == NULL)
		return ISSO_ERR_INVALID;
	return worker_every(app->workers, (unsigned)interval * 1000u, anchor_tick, app, NULL);
}

/* ---- reading ---- */

static int
export_row(int64_t seq, int64_t ts, const char *event, const char *data, const char *hash,
           void *ctx)
{
	json_t *d;
	const char *jws;

	if (strcmp(event, ANCHOR_EVENT) != 0)
		return 0;
	d = json_loads(data != NULL ? data : "", 0, NULL);
	jws = json_string_value(json_object_get(d, "jws"));
	json_array_append_new(ctx, json_pack("{s:I, s:I, s:s?}", "seq", (json_int_t)seq, "ts",
	                                     (json_int_t)ts, "jws", jws));
	json_decref(d);
	return 0;
}

int
anchor_export(struct isso_app *app, json_t **list_r)
{
	json_t *list = json_array();
	int ret = store_audit_list(app->store, 0, export_row, list);

	if (ret < 0) {
		json_decref(list);
		return ret;
	}
	*list_r = list;
	return 0;
}

/* ---- verifying ---- */

/* A (seq, hash) some checkpoint vouches for. */
struct anchor_target {
	int64_t seq;
	char hash[65];
	int64_t from;  /* the checkpoint row's seq; 0 for one only in an export */
	bool exported; /* came from the export */
};

struct anchor_check {
	struct isso_app *app;
	json_t *jwks;
	json_t *report, *problems;
	int64_t problem_count;
	int64_t rows, head;
	int64_t newest_seq, newest_ts; /* newest valid stored checkpoint (its signed head) */
	int64_t newest_row;
	json_t *stored_jws; /* object: jws → true, for the export comparison */
	struct anchor_target *targets;
	size_t n_targets, cap_targets;
	size_t next; /* pass 3: the first target not yet reached */
};

static void
problem(struct anchor_check *ck, int64_t seq, const char *what)
{
	ck->problem_count++;
	if (json_array_size(ck->problems) < ANCHOR_MAX_PROBLEMS)
		json_array_append_new(
		    ck->problems, json_pack("{s:I, s:s}", "seq", (json_int_t)seq, "problem", what));
}

/* Verifies one checkpoint token; fills target (seq, hash) and *ts_r.
 * Returns NULL or the reason it fails. */
static const char *
token_check(struct anchor_check *ck, const char *jws, struct anchor_target *t, int64_t *ts_r)
{
	json_t *header = NULL, *claims = NULL, *seq, *ts;
	const char *why = NULL, *hash, *typ;

	if (jws == NULL || jws[0] == '\0')
		return "no signed checkpoint";
	if (jose_decode_unverified(jws, &header, NULL) < 0) {
		why = "not a compact JWS";
		goto out;
	}
	typ = json_string_value(json_object_get(header, "typ"));
	if (typ == NULL || strcmp(typ, ANCHOR_TYP) != 0) {
		why = "not a checkpoint token";
		goto out;
	}
	if (jose_verify(jws, ck->jwks, anchor_algs, &claims, &why) < 0) {
		why = "signature does not verify with any of the issuer's keys";
		goto out;
	}
	seq = json_object_get(claims, "seq");
	ts = json_object_get(claims, "ts");
	hash = json_string_value(json_object_get(claims, "hash"));
	if (strcmp(json_string_value(json_object_get(claims, "iss")) ?: "", ck->app->issuer) != 0) {
		why = "signed for another issuer";
		goto out;
	}
	if (!json_is_integer(seq) || json_integer_value(seq) < 1 || !json_is_integer(ts) ||
	    !hash_form(hash)) {
		why = "malformed checkpoint claims";
		goto out;
	}
	t->seq = json_integer_value(seq);
	memcpy(t->hash, hash, sizeof(t->hash));
	*ts_r = json_integer_value(ts);
out:
	json_decref(header);
	json_decref(claims);
	return why;
}

static void
target_add(struct anchor_check *ck, const struct anchor_target *t)
{
	if (ck->n_targets == ck->cap_targets) {
		ck->cap_targets = ck->cap_targets == 0 ? 64 : ck->cap_targets * 2;
		ck->targets = xrealloc(ck->targets, ck->cap_targets * sizeof(*ck->targets));
	}
	ck->targets[ck->n_targets++] = *t;
}

/* Pass 2: counts rows and checks each stored checkpoint's token. */
static int
stored_row(int64_t seq, int64_t ts, const char *event, const char *data, const char *hash,
           void *ctx)
{
	struct anchor_check *ck = ctx;
	struct anchor_target t;
	json_t *d;
	const char *why, *jws;
	int64_t signed_ts = 0;

	ck->rows++;
	ck->head = seq;
	if (strcmp(event, ANCHOR_EVENT) != 0)
		return 0;
	memset(&t, 0, sizeof(t));
	t.from = seq;
	d = json_loads(data != NULL ? data : "", 0, NULL);
	jws = json_string_value(json_object_get(d, "jws"));
	why = token_check(ck, jws, &t, &signed_ts);
	if (why == NULL && t.seq >= seq)
		why = "vouches for a row after itself";
	if (why == NULL &&
	    (json_integer_value(json_object_get(d, "seq")) != t.seq ||
	     strcmp(json_string_value(json_object_get(d, "hash")) ?: "", t.hash) != 0))
		why = "its row disagrees with its signed claims";
	if (why != NULL) {
		problem(ck, seq, why);
	} else {
		target_add(ck, &t);
		json_object_set_new(ck->stored_jws, jws, json_true());
		ck->newest_seq = t.seq;
		ck->newest_ts = signed_ts;
		ck->newest_row = seq;
	}
	json_decref(d);
	return 0;
}

static int
target_cmp(const void *a, const void *b)
{
	const struct anchor_target *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
target_problem(struct anchor_check *ck, const struct anchor_target *t, const char *what)
{
	char text[200];

	if (t->exported)
		snprintf(text, sizeof(text), "exported checkpoint of seq %" PRId64 ": %s", t->seq,
		         what);
	else
		snprintf(text, sizeof(text), "checkpoint at seq %" PRId64 ": %s", t->from, what);
	problem(ck, t->seq, text);
}

/* Pass 3: each vouched-for row is on the chain with the signed hash. */
static int
target_row(int64_t seq, int64_t ts, const char *event, const char *data, const char *hash,
           void *ctx)
{
	struct anchor_check *ck = ctx;

	while (ck->next < ck->n_targets && ck->targets[ck->next].seq <= seq) {
		const struct anchor_target *t = &ck->targets[ck->next++];
		if (t->seq < seq)
			target_problem(ck, t, "the row it signed is missing");
		else if (strcmp(t->hash, hash) != 0)
			target_problem(ck, t,
			               "the row it signed was changed or the chain rewritten");
	}
	return ck->next < ck->n_targets ? 0 : 1;
}

int
anchor_verify(struct isso_app *app, json_t *exported, json_t **report_r, bool *ok_r)
{
	struct anchor_check ck;
	bool chain_ok = false;
	int64_t bad_seq = 0;
	size_t i;
	json_t *v;
	char *jwks_text;
	int ret;

	*ok_r = false;
	*report_r = NULL;
	if (exported != NULL && !json_is_array(exported))
		return ISSO_ERR_INVALID;
	memset(&ck, 0, sizeof(ck));
	ck.app = app;
	ck.problems = json_array();
	ck.stored_jws = json_object();
	jwks_text = jose_keyset_jwks_dup(app->keys);
	ck.jwks = json_loads(jwks_text, 0, NULL);
	free(jwks_text);
	if (ck.jwks == NULL) {
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	ret = store_audit_verify(app->store, &chain_ok, &bad_seq);
	if (ret < 0)
		goto out;
	if (!chain_ok)
		problem(&ck, bad_seq,
		        "the hash chain is broken here (a row changed, inserted or removed)");
	ret = store_audit_list(app->store, 0, stored_row, &ck);
	if (ret < 0)
		goto out;
	json_array_foreach(exported, i, v)
	{
		struct anchor_target t;
		const char *jws = json_is_string(v) ? json_string_value(v)
		                                    : json_string_value(json_object_get(v, "jws"));
		const char *why;
		int64_t signed_ts = 0;

		memset(&t, 0, sizeof(t));
		t.exported = true;
		why = token_check(&ck, jws, &t, &signed_ts);
		if (why != NULL) {
			char text[160];
			snprintf(text, sizeof(text), "exported checkpoint %zu: %s", i + 1, why);
			problem(&ck, 0, text);
			continue;
		}
		if (t.seq > ck.head) {
			char text[200];
			snprintf(text, sizeof(text),
			         "exported checkpoint %zu: the chain ends at seq %" PRId64
			         ", below the row it signed (rows were cut off)",
			         i + 1, ck.head);
			problem(&ck, t.seq, text);
			continue;
		}
		if (json_object_get(ck.stored_jws, jws) == NULL)
			target_problem(&ck, &t, "missing from the store");
		target_add(&ck, &t);
	}
	if (ck.n_targets > 0) {
		qsort(ck.targets, ck.n_targets, sizeof(*ck.targets), target_cmp);
		ret = store_audit_list(app->store, ck.targets[0].seq - 1, target_row, &ck);
		if (ret < 0)
			goto out;
		ret = 0;
		for (; ck.next < ck.n_targets; ck.next++)
			target_problem(&ck, &ck.targets[ck.next], "the row it signed is missing");
	}
	ck.report = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I}", "ok", ck.problem_count == 0, "rows",
	                      (json_int_t)ck.rows, "head_seq", (json_int_t)ck.head, "checkpoints",
	                      (json_int_t)json_object_size(ck.stored_jws), "unanchored_rows",
	                      (json_int_t)(ck.head - ck.newest_row), "exported_checkpoints",
	                      (json_int_t)json_array_size(exported));
	if (ck.newest_row > 0)
		json_object_set_new(ck.report, "newest_checkpoint",
		                    json_pack("{s:I, s:I}", "seq", (json_int_t)ck.newest_seq, "ts",
		                              (json_int_t)ck.newest_ts));
	if (!chain_ok)
		json_object_set_new(ck.report, "first_bad_seq", json_integer(bad_seq));
	json_object_set_new(ck.report, "problem_count", json_integer(ck.problem_count));
	json_object_set(ck.report, "problems", ck.problems);
	*ok_r = ck.problem_count == 0;
	*report_r = ck.report;
	ck.report = NULL;
out:
	json_decref(ck.report);
	json_decref(ck.problems);
	json_decref(ck.stored_jws);
	json_decref(ck.jwks);
	free(ck.targets);
	return ret;
}
