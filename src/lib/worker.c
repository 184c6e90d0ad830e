/* The background worker pool: one mutex, one condition variable, a bounded
 * FIFO of tasks and a few periodic tasks. */
#include "lib/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "lib/isso.h"
#include "lib/xmalloc.h"

#define WORKER_MAX_THREADS  64
#define WORKER_MAX_PERIODIC 8

struct worker_task {
	void (*fn)(void *arg);
	void *arg;
	struct worker_task *next;
};

struct worker_periodic {
	void (*fn)(void *ctx);
	void *ctx;
	uint64_t interval_ms;
	uint64_t due_ms; /* monotonic */
	bool running;
	bool again; /* poked while running */
};

struct worker_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t threads[WORKER_MAX_THREADS];
	unsigned n_threads;
	struct worker_task *head, *tail;
	unsigned queued, queue_max;
	struct worker_periodic periodic[WORKER_MAX_PERIODIC];
	unsigned n_periodic;
	atomic_bool stopping;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The periodic task that is due soonest and not running, or NULL;
 * *wait_ms_r gets how long until it is due (0: now). */
static struct worker_periodic *
next_periodic(struct worker_pool *p, uint64_t now, uint64_t *wait_ms_r)
{
	struct worker_periodic *best = NULL;

	for (unsigned i = 0; i < p->n_periodic; i++) {
		struct worker_periodic *w = &p->periodic[i];
		if (w->running)
			continue;
		if (best == NULL || w->due_ms < best->due_ms)
			best = w;
	}
	*wait_ms_r = best == NULL ? UINT64_MAX : (best->due_ms > now ? best->due_ms - now : 0);
	return best;
}

static void *
worker_main(void *arg)
{
	struct worker_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct worker_task *t = p->head;
		struct worker_periodic *w;
		uint64_t wait_ms, now;

		if (t != NULL) {
			p->head = t->next;
			if (p->head == NULL)
				p->tail = NULL;
			p->queued--;
			pthread_mutex_unlock(&p->lock);
			t->fn(t->arg);
			free(t);
			pthread_mutex_lock(&p->lock);
			continue;
		}
		if (atomic_load(&p->stopping))
			break;
		now = now_ms();
		w = next_periodic(p, now, &wait_ms);
		if (w != NULL && wait_ms == 0) {
			w->running = true;
			w->again = false;
			pthread_mutex_unlock(&p->lock);
			w->fn(w->ctx);
			pthread_mutex_lock(&p->lock);
			w->running = false;
			w->due_ms = w->again ? 0 : now_ms() + w->interval_ms;
			/* Others may wait for this one to become runnable. */
			pthread_cond_broadcast(&p->cond);
			continue;
		}
		if (wait_ms == UINT64_MAX) {
			pthread_cond_wait(&p->cond, &p->lock);
		} else {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += (time_t)(wait_ms / 1000u);
			until.tv_nsec += (long)(wait_ms % 1000u) * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			(void)pthread_cond_timedwait(&p->cond, &p->lock, &until);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int
worker_pool_new(unsigned threads, unsigned queue_max, struct worker_pool **pool_r)
{
	struct worker_pool *p;

	*pool_r = NULL;
	if (threads == 0 || threads > WORKER_MAX_THREADS || queue_max == 0)
		return ISSO_ERR_INVALID;
	p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->queue_max = queue_max;
	atomic_init(&p->stopping, false);
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
			worker_pool_free(p);
			return ISSO_ERR_IO;
		}
		p->n_threads++;
	}
	*pool_r = p;
	return 0;
}

int
worker_submit(struct worker_pool *p, void (*fn)(void *arg), void *arg)
{
	struct worker_task *t;
	int ret = 0;

	if (p == NULL || fn == NULL)
		return ISSO_ERR_INVALID;
	t = xcalloc(1, sizeof(*t));
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_lock(&p->lock);
	if (atomic_load(&p->stopping) || p->queued >= p->queue_max) {
		ret = ISSO_ERR_LIMIT;
	} else {
		if (p->tail != NULL)
			p->tail->next = t;
		else
			p->head = t;
		p->tail = t;
		p->queued++;
		t = NULL;
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	free(t);
	return ret;
}

int
worker_every(struct worker_pool *p, unsigned interval_ms, void (*fn)(void *ctx), void *ctx,
             int *id_r)
{
	int ret = 0;

	if (p == NULL || fn == NULL || interval_ms == 0)
		return ISSO_ERR_INVALID;
	pthread_mutex_lock(&p->lock);
	if (p->n_periodic >= WORKER_MAX_PERIODIC || atomic_load(&p->stopping)) {
		ret = ISSO_ERR_LIMIT;
	} else {
		struct worker_periodic *w = &p->periodic[p->n_periodic];
		w->fn = fn;
		w->ctx = ctx;
		w->interval_ms = interval_ms;
		w->due_ms = now_ms() + interval_ms;
		if (id_r != NULL)
			*id_r = (int)p->n_periodic;
		p->n_periodic++;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void
worker_poke(struct worker_pool *p, int id)
{
	if (p == NULL || id < 0)
		return;
	pthread_mutex_lock(&p->lock);
	if ((unsigned)id < p->n_periodic) {
		struct worker_periodic *w = &p->periodic[id];
		if (w->running)
			w->again = true;
		else
			w->due_ms = 0;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
}

unsigned
worker_queue_depth(struct worker_pool *p)
{
	unsigned n;

	if (p == NULL)
		return 0;
	pthread_mutex_lock(&p->lock);
	n = p->queued;
	pthread_mutex_unlock(&p->lock);
	return n;
}

bool
worker_stopping(const struct worker_pool *p)
{
	return p == NULL || atomic_load(&p->stopping);
}

void
worker_pool_free(struct worker_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	atomic_store(&p->stopping, true);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	/* Every thread drains the queue before it leaves; none is left
	 * unless no thread ever started. */
	while (p->head != NULL) {
		struct worker_task *t = p->head;
		p->head = t->next;
		t->fn(t->arg);
		free(t);
	}
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
