/* A small pool of background threads for work that must never run on a
 * request thread: outbound calls (JWK sets, back-channel logout) and, later,
 * CPU-heavy work such as password hashing. Tasks run in submission order;
 * periodic tasks run every interval and when poked, never twice at once.
 * Stopping is cooperative: tasks poll worker_stopping() and return soon. */
#ifndef ISSO_WORKER_H
#define ISSO_WORKER_H

#include <stdbool.h>

struct worker_pool;

/* Starts threads (1..64) serving a queue of at most queue_max tasks.
 * Returns 0 or ISSO_ERR_INVALID / ISSO_ERR_IO (threads could not start).
 * Free with worker_pool_free. */
int worker_pool_new(unsigned threads, unsigned queue_max, struct worker_pool **pool_r);
/* Queues fn(arg). ISSO_ERR_LIMIT when the queue is full or the pool is
 * stopping: then fn never runs and arg stays the caller's. Once queued, fn
 * runs exactly once, also while the pool stops (arg is fn's to free). */
int worker_submit(struct worker_pool *pool, void (*fn)(void *arg), void *arg);
/* Runs fn(ctx) every interval_ms on a pool thread (never two at once);
 * *id_r (may be NULL) names it for worker_poke. At most 8 per pool.
 * Returns 0 or ISSO_ERR_LIMIT. */
int worker_every(struct worker_pool *pool, unsigned interval_ms, void (*fn)(void *ctx), void *ctx,
                 int *id_r);
/* Makes periodic task id due now (a running one runs once more after). */
void worker_poke(struct worker_pool *pool, int id);
/* Tasks queued and not yet started (metrics); 0 for NULL. */
unsigned worker_queue_depth(struct worker_pool *pool);
/* True once worker_pool_free has begun: long tasks should give up. */
bool worker_stopping(const struct worker_pool *pool);
/* Stops accepting work, lets queued tasks run (they see
 * worker_stopping()), joins the threads and frees the pool. NULL is fine. */
void worker_pool_free(struct worker_pool *pool);

#endif
