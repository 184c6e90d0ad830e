/* The metrics tables and their Prometheus text rendering: exact lines for
 * counters, gauges and histograms (cumulative buckets ending with +Inf
 * equal to _count), label escaping, the bounded series table ("other"
 * past the limit and for over-long values), exact counts under
 * concurrent recording, and the /metrics allow list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/metrics.h"

static const double bounds[] = {0.001, 0.01, 0.1};

static struct metrics_family counter2 =
    METRICS_FAMILY("t_events_total", "Events.", METRICS_COUNTER, 2, "kind", "result", NULL, 0);
static struct metrics_family hist =
    METRICS_FAMILY("t_seconds", "Durations.", METRICS_HISTOGRAM, 1, "route", NULL, bounds, 3);
static struct metrics_family bare =
    METRICS_FAMILY("t_bare_seconds", "No labels.", METRICS_HISTOGRAM, 0, NULL, NULL, bounds, 3);

static char *
render(struct metrics_family *f)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	assert_int_equal(metrics_family_render(f, &b), 0);
	return buf_detach(&b, NULL);
}

static void
test_counter_lines(void **state)
{
	char *text;

	(void)state;
	metrics_family_reset(&counter2);
	text = render(&counter2);
	assert_string_equal(text, "# HELP t_events_total Events.\n# TYPE t_events_total counter\n");
	free(text);
	metrics_counter_add(&counter2, "a", "ok", 2);
	metrics_counter_add(&counter2, "b", "failed", 1);
	metrics_counter_add(&counter2, "a", "ok", 3);
	assert_int_equal(metrics_counter_get(&counter2, "a", "ok"), 5);
	assert_int_equal(metrics_counter_get(&counter2, "a", "failed"), 0);
	text = render(&counter2);
	assert_string_equal(text, "# HELP t_events_total Events.\n"
	                          "# TYPE t_events_total counter\n"
	                          "t_events_total{kind=\"a\",result=\"ok\"} 5\n"
	                          "t_events_total{kind=\"b\",result=\"failed\"} 1\n");
	free(text);
}

static void
test_label_escaping(void **state)
{
	struct buf b;
	char *text;

	(void)state;
	metrics_family_reset(&counter2);
	metrics_counter_add(&counter2, "quote\"back\\slash", "new\nline", 1);
	text = render(&counter2);
	assert_non_null(strstr(
	    text, "t_events_total{kind=\"quote\\\"back\\\\slash\",result=\"new\\nline\"} 1\n"));
	free(text);

	buf_init(&b, 64);
	assert_int_equal(metrics_escape_label(&b, "a\"\\\nb"), 0);
	assert_string_equal(b.data, "a\\\"\\\\\\nb");
	buf_free(&b);
}

static void
test_histogram_cumulative(void **state)
{
	char *text;

	(void)state;
	metrics_family_reset(&hist);
	metrics_histogram_observe(&hist, "/token", NULL, 500000);     /* 0.5 ms */
	metrics_histogram_observe(&hist, "/token", NULL, 1000000);    /* 1 ms: le is inclusive */
	metrics_histogram_observe(&hist, "/token", NULL, 5000000);    /* 5 ms */
	metrics_histogram_observe(&hist, "/token", NULL, 2000000000); /* 2 s: only +Inf */
	metrics_histogram_observe(&hist, "/authorize", NULL, 50000000);
	text = render(&hist);
	assert_string_equal(text, "# HELP t_seconds Durations.\n"
	                          "# TYPE t_seconds histogram\n"
	                          "t_seconds_bucket{route=\"/token\",le=\"0.001\"} 2\n"
	                          "t_seconds_bucket{route=\"/token\",le=\"0.01\"} 3\n"
	                          "t_seconds_bucket{route=\"/token\",le=\"0.1\"} 3\n"
	                          "t_seconds_bucket{route=\"/token\",le=\"+Inf\"} 4\n"
	                          "t_seconds_sum{route=\"/token\"} 2.006500000\n"
	                          "t_seconds_count{route=\"/token\"} 4\n"
	                          "t_seconds_bucket{route=\"/authorize\",le=\"0.001\"} 0\n"
	                          "t_seconds_bucket{route=\"/authorize\",le=\"0.01\"} 0\n"
	                          "t_seconds_bucket{route=\"/authorize\",le=\"0.1\"} 1\n"
	                          "t_seconds_bucket{route=\"/authorize\",le=\"+Inf\"} 1\n"
	                          "t_seconds_sum{route=\"/authorize\"} 0.050000000\n"
	                          "t_seconds_count{route=\"/authorize\"} 1\n");
	free(text);

	metrics_family_reset(&bare);
	metrics_histogram_observe(&bare, NULL, NULL, 20000000);
	text = render(&bare);
	assert_non_null(strstr(text, "\nt_bare_seconds_bucket{le=\"0.01\"} 0\n"
	                             "t_bare_seconds_bucket{le=\"0.1\"} 1\n"
	                             "t_bare_seconds_bucket{le=\"+Inf\"} 1\n"
	                             "t_bare_seconds_sum 0.020000000\n"
	                             "t_bare_seconds_count 1\n"));
	free(text);
}

static void
test_gauge(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(metrics_gauge_render(&b, "t_depth", "Depth.", "pool", "bg\"x", 3), 0);
	assert_int_equal(metrics_gauge_render(&b, "t_plain", "Plain.", NULL, NULL, 1.5), 0);
	assert_string_equal(b.data, "# HELP t_depth Depth.\n# TYPE t_depth gauge\n"
	                            "t_depth{pool=\"bg\\\"x\"} 3\n"
	                            "# HELP t_plain Plain.\n# TYPE t_plain gauge\n"
	                            "t_plain 1.5\n");
	buf_free(&b);
}

/* Past METRICS_SERIES_MAX distinct values, and for values too long to
 * keep, everything counts under "other": the output stays bounded. */
static void
test_bounded_series(void **state)
{
	char v[32], longv[METRICS_VALUE_MAX + 8];
	char *text;
	size_t lines = 0;

	(void)state;
	metrics_family_reset(&counter2);
	for (int i = 0; i < 3 * METRICS_SERIES_MAX; i++) {
		snprintf(v, sizeof(v), "v%d", i);
		metrics_counter_add(&counter2, v, "x", 1);
	}
	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	metrics_counter_add(&counter2, "v0", longv, 1);
	assert_int_equal(metrics_counter_get(&counter2, "v0", "x"), 1);
	assert_int_equal(metrics_counter_get(&counter2, "other", "other"),
	                 3 * METRICS_SERIES_MAX - (METRICS_SERIES_MAX - 1) + 1);
	text = render(&counter2);
	for (const char *p = text; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_int_equal(lines, 2 + METRICS_SERIES_MAX);
	assert_null(strstr(text, "aaaa"));
	free(text);
}

#define THREADS 4
#define PER     20000

static void *
hammer(void *arg)
{
	char v[8];

	snprintf(v, sizeof(v), "k%d", (int)(intptr_t)arg % 3);
	for (int i = 0; i < PER; i++) {
		metrics_counter_add(&counter2, v, "ok", 1);
		metrics_histogram_observe(&hist, v, NULL, (uint64_t)i * 1000);
	}
	return NULL;
}

static void
test_concurrent(void **state)
{
	pthread_t t[THREADS];
	uint64_t total = 0;
	char *text;

	(void)state;
	metrics_family_reset(&counter2);
	metrics_family_reset(&hist);
	for (intptr_t i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)i), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int k = 0; k < 3; k++) {
		char v[8];

		snprintf(v, sizeof(v), "k%d", k);
		total += metrics_counter_get(&counter2, v, "ok");
	}
	assert_int_equal(total, (uint64_t)THREADS * PER);
	assert_int_equal(atomic_load(&counter2.n), 3); /* each series added once */
	text = render(&hist);
	assert_non_null(strstr(text, "t_seconds_count{route=\"k0\"} 40000\n"));
	free(text);
}

static void
test_allow(void **state)
{
	struct metrics_allow a;
	const char *why = NULL;

	(void)state;
	assert_int_equal(
	    metrics_allow_parse("127.0.0.1, ::1  10.20.0.0/16,2001:db8::/32", &a, &why), 0);
	assert_int_equal(a.n, 4);
	assert_true(metrics_allow_has(&a, "127.0.0.1"));
	assert_false(metrics_allow_has(&a, "127.0.0.2"));
	assert_true(metrics_allow_has(&a, "::1"));
	assert_true(metrics_allow_has(&a, "::ffff:127.0.0.1"));
	assert_true(metrics_allow_has(&a, "10.20.255.1"));
	assert_false(metrics_allow_has(&a, "10.21.0.1"));
	assert_true(metrics_allow_has(&a, "2001:db8:ffff::1"));
	assert_false(metrics_allow_has(&a, "2001:db9::1"));
	assert_false(metrics_allow_has(&a, "unknown"));
	assert_false(metrics_allow_has(&a, NULL));

	assert_int_equal(metrics_allow_parse("10.0.0.0/12", &a, &why), 0);
	assert_true(metrics_allow_has(&a, "10.15.255.255"));
	assert_false(metrics_allow_has(&a, "10.16.0.0"));

	assert_int_equal(metrics_allow_parse("", &a, &why), 0);
	assert_int_equal(a.n, 0);
	assert_false(metrics_allow_has(&a, "127.0.0.1"));

	assert_int_equal(metrics_allow_parse("10.0.0.0/33", &a, &why), ISSO_ERR_INVALID);
	assert_non_null(strstr(why, "prefix"));
	assert_int_equal(metrics_allow_parse("10.0.0.0/", &a, &why), ISSO_ERR_INVALID);
	assert_int_equal(metrics_allow_parse("::/129", &a, &why), ISSO_ERR_INVALID);
	assert_int_equal(metrics_allow_parse("localhost", &a, &why), ISSO_ERR_INVALID);
	assert_int_equal(metrics_allow_parse("1.2.3.4/8x", &a, &why), ISSO_ERR_INVALID);
	assert_int_equal(metrics_allow_parse("1.2.3.4/-1", &a, &why), ISSO_ERR_INVALID);
}

static void
test_isso_families(void **state)
{
	struct buf b;

	(void)state;
	metrics_login("taipeipass", true);
	metrics_login("taipeipass", false);
	metrics_login(NULL, false);
	metrics_token_issued("client_credentials");
	metrics_http_request("/token", 200, 1000);
	metrics_http_request(NULL, 404, 1000);
	metrics_http_request("/x", 999, 1000);
	metrics_store_call(1000);
	metrics_store_pool_wait(false);
	metrics_store_pool_wait(true);
	metrics_store_pool_wait(true);
	assert_int_equal(metrics_counter_get(&metrics_logins, "taipeipass", "completed"), 1);
	assert_int_equal(metrics_counter_get(&metrics_logins, "taipeipass", "failed"), 1);
	assert_int_equal(metrics_counter_get(&metrics_logins, "unknown", "failed"), 1);
	assert_int_equal(metrics_counter_get(&metrics_tokens, "client_credentials", NULL), 1);
	assert_int_equal(metrics_counter_get(&metrics_http_responses, "2xx", NULL), 1);
	assert_int_equal(metrics_counter_get(&metrics_http_responses, "4xx", NULL), 1);
	assert_int_equal(metrics_counter_get(&metrics_http_responses, "other", NULL), 1);
	buf_init(&b, 1 << 20);
	assert_int_equal(metrics_render_all(&b), 0);
	assert_non_null(
	    strstr(b.data, "isso_http_request_duration_seconds_count{route=\"(none)\"} 1\n"));
	assert_non_null(strstr(b.data, "isso_store_call_duration_seconds_count 1\n"));
	assert_non_null(strstr(b.data, "isso_store_pool_waits_total{result=\"acquired\"} 1\n"));
	assert_non_null(strstr(b.data, "isso_store_pool_waits_total{result=\"timeout\"} 2\n"));
	buf_free(&b);
	/* a full buffer is an error, not a truncated exposition */
	buf_init(&b, 64);
	assert_int_equal(metrics_render_all(&b), ISSO_ERR_LIMIT);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counter_lines),
	    cmocka_unit_test(test_label_escaping),
	    cmocka_unit_test(test_histogram_cumulative),
	    cmocka_unit_test(test_gauge),
	    cmocka_unit_test(test_bounded_series),
	    cmocka_unit_test(test_concurrent),
	    cmocka_unit_test(test_allow),
	    cmocka_unit_test(test_isso_families),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
