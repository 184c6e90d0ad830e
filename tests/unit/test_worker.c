/* The background worker pool: tasks run once each, in parallel on several
 * threads; a full queue refuses; periodic tasks run on their interval and
 * when poked, never twice at once; stopping runs what was queued and tells
 * running tasks to give up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lib/isso.h"
#include "lib/worker.h"

static atomic_int counter;
static atomic_int concurrent, max_concurrent;
static struct worker_pool *current;

static void
count_task(void *arg)
{
	atomic_fetch_add(&counter, *(int *)arg);
	free(arg);
}

static int *
one(void)
{
	int *v = malloc(sizeof(*v));

	assert_non_null(v);
	*v = 1;
	return v;
}

static void
test_tasks_run_once(void **state)
{
	struct worker_pool *p = NULL;

	(void)state;
	atomic_store(&counter, 0);
	assert_int_equal(worker_pool_new(0, 10, &p), ISSO_ERR_INVALID);
	assert_int_equal(worker_pool_new(3, 1000, &p), 0);
	for (int i = 0; i < 500; i++)
		assert_int_equal(worker_submit(p, count_task, one()), 0);
	worker_pool_free(p);
	assert_int_equal(atomic_load(&counter), 500);
}

/* Blocks until the pool stops: holds a thread. */
static void
wait_for_stop(void *arg)
{
	(void)arg;
	while (!worker_stopping(current))
		usleep(1000);
	atomic_fetch_add(&counter, 100);
}

static void
test_queue_bound_and_stop(void **state)
{
	struct worker_pool *p = NULL;
	int *v;

	(void)state;
	atomic_store(&counter, 0);
	assert_int_equal(worker_pool_new(1, 2, &p), 0);
	current = p;
	assert_false(worker_stopping(p));
	assert_int_equal(worker_submit(p, wait_for_stop, NULL), 0);
	usleep(20000); /* the one thread is now inside wait_for_stop */
	assert_int_equal(worker_submit(p, count_task, one()), 0);
	assert_int_equal(worker_submit(p, count_task, one()), 0);
	v = one();
	assert_int_equal(worker_submit(p, count_task, v), ISSO_ERR_LIMIT);
	free(v);
	/* Stopping lets the long task give up and still runs the queued ones. */
	worker_pool_free(p);
	current = NULL;
	assert_int_equal(atomic_load(&counter), 102);
}

static void
periodic_task(void *ctx)
{
	int now = atomic_fetch_add(&concurrent, 1) + 1;
	int seen = atomic_load(&max_concurrent);

	(void)ctx;
	while (now > seen && !atomic_compare_exchange_weak(&max_concurrent, &seen, now))
		;
	atomic_fetch_add(&counter, 1);
	usleep(5000);
	atomic_fetch_sub(&concurrent, 1);
}

static void
test_periodic(void **state)
{
	struct worker_pool *p = NULL;
	int id = -1, n;

	(void)state;
	atomic_store(&counter, 0);
	atomic_store(&max_concurrent, 0);
	assert_int_equal(worker_pool_new(4, 10, &p), 0);
	/* An hour's interval: it runs only when poked. */
	assert_int_equal(worker_every(p, 3600 * 1000, periodic_task, NULL, &id), 0);
	assert_true(id >= 0);
	usleep(50000);
	assert_int_equal(atomic_load(&counter), 0);
	for (int i = 0; i < 20; i++) {
		worker_poke(p, id);
		usleep(1000);
	}
	for (int i = 0; i < 200 && atomic_load(&counter) == 0; i++)
		usleep(1000);
	usleep(30000);
	n = atomic_load(&counter);
	assert_true(n >= 1);
	assert_true(n <= 20);
	assert_int_equal(atomic_load(&max_concurrent), 1);

	/* A short interval runs by itself. */
	assert_int_equal(worker_every(p, 10, periodic_task, NULL, NULL), 0);
	usleep(200000);
	assert_true(atomic_load(&counter) >= n + 3);
	worker_pool_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tasks_run_once),
	    cmocka_unit_test(test_queue_bound_and_stop),
	    cmocka_unit_test(test_periodic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
