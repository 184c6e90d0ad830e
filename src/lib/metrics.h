/* Process metrics for operators, rendered in the Prometheus text
 * exposition format (version 0.0.4). Counters and histograms are C11
 * atomics in fixed tables: recording never allocates and never takes a
 * lock once a series exists (adding a series takes the family's lock
 * once). Label values come only from bounded sets chosen by the code
 * (method ids, grant types, route patterns), never from request data,
 * and each family holds at most METRICS_SERIES_MAX series: past that,
 * observations go to one series whose labels are all "other". */
#ifndef ISSO_METRICS_H
#define ISSO_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define METRICS_LABELS_MAX  2
#define METRICS_VALUE_MAX   64 /* longest label value + 1; longer ones count as "other" */
#define METRICS_SERIES_MAX  96
#define METRICS_BUCKETS_MAX 16 /* histogram bounds + the +Inf bucket */

enum metrics_kind {
	METRICS_COUNTER,
	METRICS_HISTOGRAM, /* of durations, observed in nanoseconds, shown in seconds */
};

struct metrics_series {
	char values[METRICS_LABELS_MAX][METRICS_VALUE_MAX];
	atomic_uint_fast64_t count;                        /* a counter's value */
	atomic_uint_fast64_t sum_ns;                       /* a histogram's sum */
	atomic_uint_fast64_t buckets[METRICS_BUCKETS_MAX]; /* per bucket, not cumulative */
};

/* One metric name with its labels. Define with METRICS_FAMILY (static
 * storage); label names and bounds must outlive it. */
struct metrics_family {
	const char *name, *help;
	enum metrics_kind kind;
	size_t n_labels;
	const char *labels[METRICS_LABELS_MAX];
	const double *bounds; /* histograms: ascending upper bounds in seconds */
	size_t n_bounds;      /* < METRICS_BUCKETS_MAX */
	pthread_mutex_t lock; /* held only to add a series */
	atomic_size_t n;      /* series published so far */
	struct metrics_series series[METRICS_SERIES_MAX];
};

#define METRICS_FAMILY(nm, hp, kd, nl, l0, l1, bd, nb)                                             \
	{                                                                                          \
		.name = (nm), .help = (hp), .kind = (kd), .n_labels = (nl),                        \
		.labels = {(l0), (l1)}, .bounds = (bd), .n_bounds = (nb),                          \
		.lock = PTHREAD_MUTEX_INITIALIZER,                                                 \
	}

/* The default latency buckets (seconds) and their number. */
extern const double metrics_latency_bounds[];
extern const size_t metrics_latency_n_bounds;

/* Adds n to the counter series with these label values (NULL for labels
 * the family does not have). */
void metrics_counter_add(struct metrics_family *f, const char *v0, const char *v1, uint64_t n);
/* Records one duration of ns nanoseconds in the histogram series. */
void metrics_histogram_observe(struct metrics_family *f, const char *v0, const char *v1,
                               uint64_t ns);
/* The counter's current value (tests, gauges); 0 when the series does not exist. */
uint64_t metrics_counter_get(struct metrics_family *f, const char *v0, const char *v1);
/* Forgets every series (tests only: not safe while others record). */
void metrics_family_reset(struct metrics_family *f);

/* Appends the family in the text format: # HELP, # TYPE, then one line
 * per series (histograms: cumulative _bucket lines ending with le="+Inf",
 * then _sum and _count). A family without series renders only its HELP
 * and TYPE lines. Returns 0 or ISSO_ERR_LIMIT when out is full. */
int metrics_family_render(const struct metrics_family *f, struct buf *out);
/* Appends a gauge: HELP, TYPE and one sample, with one optional label
 * (label NULL: none). Returns 0 or ISSO_ERR_LIMIT. */
int metrics_gauge_render(struct buf *out, const char *name, const char *help, const char *label,
                         const char *label_value, double value);
/* Appends one more sample of the gauge name just rendered (no HELP or
 * TYPE lines). Returns 0 or ISSO_ERR_LIMIT. */
int metrics_gauge_sample(struct buf *out, const char *name, const char *label,
                         const char *label_value, double value);
/* Appends value as a label value: backslash, double quote and newline
 * escaped as the text format requires. Returns 0 or ISSO_ERR_LIMIT. */
int metrics_escape_label(struct buf *out, const char *value);

/* Who may read /metrics: addresses and networks (metrics.allow). */
#define METRICS_ALLOW_MAX 32
struct metrics_allow {
	size_t n;
	struct {
		int family; /* AF_INET or AF_INET6 */
		unsigned char addr[16];
		unsigned prefix; /* bits */
	} e[METRICS_ALLOW_MAX];
};

/* Parses a list of IPv4 / IPv6 addresses and CIDR networks separated by
 * commas or spaces ("127.0.0.1, ::1, 10.20.0.0/16"). An empty list allows
 * nobody. Returns 0 or ISSO_ERR_INVALID with *error_r (static) naming the
 * problem. */
int metrics_allow_parse(const char *text, struct metrics_allow *allow_r, const char **error_r);
/* True when the address text (as http_remote_addr gives it; an
 * IPv4-mapped IPv6 address counts as its IPv4 address) is in the list. */
bool metrics_allow_has(const struct metrics_allow *allow, const char *addr);

/* A monotonic clock in nanoseconds, for durations. */
uint64_t metrics_now_ns(void);

/* ---- iSSO's own metrics ---- */

/* A login completed (a method proved the citizen, flow_complete) or failed
 * (the login_failed security event), by method id. */
void metrics_login(const char *method, bool completed);
/* Tokens issued at the token endpoint, by grant type. */
void metrics_token_issued(const char *grant_type);
/* A client authentication at the token, introspection or revocation
 * endpoint, by the method the client used (client_secret_basic,
 * client_secret_post, private_key_jwt, none). */
void metrics_client_auth(const char *method, bool accepted);
/* One HTTP request answered: its route pattern as registered (never the
 * raw path; NULL: no route matched), its status and its duration. */
void metrics_http_request(const char *route, int status, uint64_t ns);
/* One call into the store backend and its duration. */
void metrics_store_call(uint64_t ns);
/* A call had to wait for a pooled store connection: it got one, or the
 * pool's deadline passed (store.pool_wait_ms). */
void metrics_store_pool_wait(bool timed_out);
/* A client lookup through the store's client cache (store.client_cache_ms
 * above 0): served from it (hit) or read from the store (miss). */
void metrics_store_client_cache(bool hit);
/* Appends every family above. Returns 0 or ISSO_ERR_LIMIT. */
int metrics_render_all(struct buf *out);
/* The families, for tests. */
extern struct metrics_family metrics_logins, metrics_tokens, metrics_client_auths,
    metrics_http_duration, metrics_http_responses, metrics_store_duration, metrics_store_pool_waits,
    metrics_store_client_cache_lookups;

#endif
