/* Counters and histograms in fixed tables of atomics, and their rendering
 * in the Prometheus text format. A series is found by scanning the
 * published ones (acquire load of the count); a new one is filled under
 * the family's lock and published with a release store, so readers never
 * see a half-written label. */
#include "lib/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/isso.h"

#define OTHER "other"

const double metrics_latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t metrics_latency_n_bounds = ISSO_N_ELEMENTS(metrics_latency_bounds);

static bool
value_fits(const char *v)
{
	return v == NULL || strlen(v) < METRICS_VALUE_MAX;
}

static bool
series_matches(const struct metrics_family *f, const struct metrics_series *s, const char *v[])
{
	for (size_t i = 0; i < f->n_labels; i++)
		if (strcmp(s->values[i], v[i] != NULL ? v[i] : "") != 0)
			return false;
	return true;
}

static void
series_set_values(const struct metrics_family *f, struct metrics_series *s, const char *v[])
{
	for (size_t i = 0; i < f->n_labels; i++)
		snprintf(s->values[i], sizeof(s->values[i]), "%s", v[i] != NULL ? v[i] : "");
}

static struct metrics_series *
series_find(struct metrics_family *f, const char *v[], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (series_matches(f, &f->series[i], v))
			return &f->series[i];
	return NULL;
}

/* The series for these label values, added when new; the last slot is
 * the "other" series once the table is full. */
static struct metrics_series *
series_get(struct metrics_family *f, const char *v0, const char *v1)
{
	static const char *const others[METRICS_LABELS_MAX] = {OTHER, OTHER};
	const char *v[METRICS_LABELS_MAX] = {v0, v1};
	struct metrics_series *s;
	size_t n;

	if (!value_fits(v0) || !value_fits(v1)) {
		v[0] = OTHER;
		v[1] = OTHER;
	}
	n = atomic_load_explicit(&f->n, memory_order_acquire);
	s = series_find(f, v, n);
	if (s != NULL)
		return s;
	pthread_mutex_lock(&f->lock);
	n = atomic_load_explicit(&f->n, memory_order_relaxed);
	s = series_find(f, v, n);
	if (s == NULL) {
		if (n == METRICS_SERIES_MAX) {
			s = &f->series[METRICS_SERIES_MAX - 1];
		} else {
			s = &f->series[n];
			if (n == METRICS_SERIES_MAX - 1)
				memcpy(v, others, sizeof(v));
			series_set_values(f, s, v);
			atomic_store_explicit(&f->n, n + 1, memory_order_release);
		}
	}
	pthread_mutex_unlock(&f->lock);
	return s;
}

void
metrics_counter_add(struct metrics_family *f, const char *v0, const char *v1, uint64_t n)
{
	atomic_fetch_add_explicit(&series_get(f, v0, v1)->count, n, memory_order_relaxed);
}

void
metrics_histogram_observe(struct metrics_family *f, const char *v0, const char *v1, uint64_t ns)
{
	struct metrics_series *s = series_get(f, v0, v1);
	double seconds = (double)ns / 1e9;
	size_t i;

	for (i = 0; i < f->n_bounds; i++)
		if (seconds <= f->bounds[i])
			break;
	atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum_ns, ns, memory_order_relaxed);
}

uint64_t
metrics_counter_get(struct metrics_family *f, const char *v0, const char *v1)
{
	const char *v[METRICS_LABELS_MAX] = {v0, v1};
	const struct metrics_series *s =
	    series_find(f, v, atomic_load_explicit(&f->n, memory_order_acquire));

	return s != NULL ? atomic_load_explicit(&s->count, memory_order_relaxed) : 0;
}

void
metrics_family_reset(struct metrics_family *f)
{
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < METRICS_SERIES_MAX; i++) {
		struct metrics_series *s = &f->series[i];

		memset(s->values, 0, sizeof(s->values));
		atomic_store(&s->count, 0);
		atomic_store(&s->sum_ns, 0);
		for (size_t b = 0; b < METRICS_BUCKETS_MAX; b++)
			atomic_store(&s->buckets[b], 0);
	}
	atomic_store(&f->n, 0);
	pthread_mutex_unlock(&f->lock);
}

int
metrics_escape_label(struct buf *out, const char *value)
{
	int ret = 0;

	for (const char *p = value; *p != '\0' && ret == 0; p++) {
		if (*p == '\\')
			ret = buf_addstr(out, "\\\\");
		else if (*p == '"')
			ret = buf_addstr(out, "\\\"");
		else if (*p == '\n')
			ret = buf_addstr(out, "\\n");
		else
			ret = buf_addc(out, *p);
	}
	return ret;
}

/* {a="x",b="y"} plus an optional le; nothing when there are no labels. */
static int
render_labels(struct buf *out, const struct metrics_family *f, const struct metrics_series *s,
              const char *le)
{
	int ret = 0;
	bool any = false;

	for (size_t i = 0; i < f->n_labels && ret == 0; i++) {
		ret = buf_printf(out, "%s%s=\"", any ? "," : "{", f->labels[i]);
		if (ret == 0)
			ret = metrics_escape_label(out, s->values[i]);
		if (ret == 0)
			ret = buf_addc(out, '"');
		any = true;
	}
	if (ret == 0 && le != NULL) {
		ret = buf_printf(out, "%sle=\"%s\"", any ? "," : "{", le);
		any = true;
	}
	if (ret == 0 && any)
		ret = buf_addc(out, '}');
	return ret;
}

static int
render_header(struct buf *out, const char *name, const char *help, const char *type)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int
render_histogram(const struct metrics_family *f, const struct metrics_series *s, struct buf *out)
{
	uint64_t cumulative = 0;
	char le[32];
	int ret = 0;

	for (size_t b = 0; b <= f->n_bounds && ret == 0; b++) {
		cumulative += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
		if (b < f->n_bounds)
			snprintf(le, sizeof(le), "%g", f->bounds[b]);
		else
			snprintf(le, sizeof(le), "+Inf");
		ret = buf_printf(out, "%s_bucket", f->name);
		if (ret == 0)
			ret = render_labels(out, f, s, le);
		if (ret == 0)
			ret = buf_printf(out, " %llu\n", (unsigned long long)cumulative);
	}
	if (ret == 0)
		ret = buf_printf(out, "%s_sum", f->name);
	if (ret == 0)
		ret = render_labels(out, f, s, NULL);
	if (ret == 0)
		ret = buf_printf(
		    out, " %.9f\n%s_count",
		    (double)atomic_load_explicit(&s->sum_ns, memory_order_relaxed) / 1e9, f->name);
	if (ret == 0)
		ret = render_labels(out, f, s, NULL);
	/* the count is the +Inf bucket, so the two always agree */
	if (ret == 0)
		ret = buf_printf(out, " %llu\n", (unsigned long long)cumulative);
	return ret;
}

int
metrics_family_render(const struct metrics_family *f, struct buf *out)
{
	size_t n = atomic_load_explicit(&((struct metrics_family *)f)->n, memory_order_acquire);
	int ret = render_header(out, f->name, f->help,
	                        f->kind == METRICS_COUNTER ? "counter" : "histogram");

	for (size_t i = 0; i < n && ret == 0; i++) {
		const struct metrics_series *s = &f->series[i];

		if (f->kind == METRICS_HISTOGRAM) {
			ret = render_histogram(f, s, out);
			continue;
		}
		ret = buf_addstr(out, f->name);
		if (ret == 0)
			ret = render_labels(out, f, s, NULL);
		if (ret == 0)
			ret = buf_printf(out, " %llu\n",
			                 (unsigned long long)atomic_load_explicit(
			                     &s->count, memory_order_relaxed));
	}
	return ret;
}

int
metrics_gauge_render(struct buf *out, const char *name, const char *help, const char *label,
                     const char *label_value, double value)
{
	int ret = render_header(out, name, help, "gauge");

	if (ret == 0)
		ret = metrics_gauge_sample(out, name, label, label_value, value);
	return ret;
}

int
metrics_gauge_sample(struct buf *out, const char *name, const char *label, const char *label_value,
                     double value)
{
	int ret = buf_addstr(out, name);

	if (ret == 0 && label != NULL) {
		ret = buf_printf(out, "{%s=\"", label);
		if (ret == 0)
			ret = metrics_escape_label(out, label_value != NULL ? label_value : "");
		if (ret == 0)
			ret = buf_addstr(out, "\"}");
	}
	if (ret == 0)
		ret = buf_printf(out, " %.17g\n", value);
	return ret;
}

/* Reads one address into family / addr; an IPv4-mapped IPv6 address
 * becomes IPv4. */
static bool
allow_addr(const char *text, int *family_r, unsigned char addr[16])
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(addr, 0, 16);
	if (inet_pton(AF_INET, text, addr) == 1) {
		*family_r = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, addr) != 1)
		return false;
	*family_r = AF_INET6;
	if (memcmp(addr, mapped, sizeof(mapped)) == 0) {
		memmove(addr, addr + 12, 4);
		memset(addr + 4, 0, 12);
		*family_r = AF_INET;
	}
	return true;
}

int
metrics_allow_parse(const char *text, struct metrics_allow *allow_r, const char **error_r)
{
	char tok[INET6_ADDRSTRLEN + 8];
	const char *p = text != NULL ? text : "";
	int ret = 0;

	memset(allow_r, 0, sizeof(*allow_r));
	*error_r = NULL;
	while (*p != '\0') {
		size_t n = strcspn(p, ", \t");
		char *slash, *end;
		long bits;
		int family;

		if (n == 0) {
			p++;
			continue;
		}
		if (n >= sizeof(tok) || allow_r->n == METRICS_ALLOW_MAX) {
			*error_r = n >= sizeof(tok) ? "an entry is too long" : "too many entries";
			ret = ISSO_ERR_INVALID;
			goto out;
		}
		memcpy(tok, p, n);
		tok[n] = '\0';
		p += n;
		slash = strchr(tok, '/');
		if (slash != NULL)
			*slash = '\0';
		if (!allow_addr(tok, &family, allow_r->e[allow_r->n].addr)) {
			*error_r = "an entry is not an IP address or network";
			ret = ISSO_ERR_INVALID;
			goto out;
		}
		bits = family == AF_INET ? 32 : 128;
		if (slash != NULL) {
			errno = 0;
			bits = strtol(slash + 1, &end, 10);
			if (errno != 0 || end == slash + 1 || *end != '\0' || bits < 0 ||
			    bits > (family == AF_INET ? 32 : 128)) {
				*error_r = "a network's prefix length is out of range";
				ret = ISSO_ERR_INVALID;
				goto out;
			}
		}
		allow_r->e[allow_r->n].family = family;
		allow_r->e[allow_r->n].prefix = (unsigned)bits;
		allow_r->n++;
	}
out:
	return ret;
}

static bool
prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (unsigned char)(0xff << (8 - rest))) == 0;
}

bool
metrics_allow_has(const struct metrics_allow *allow, const char *addr)
{
	unsigned char a[16];
	int family;

	if (addr == NULL || !allow_addr(addr, &family, a))
		return false;
	for (size_t i = 0; i < allow->n; i++)
		if (allow->e[i].family == family &&
		    prefix_match(a, allow->e[i].addr, allow->e[i].prefix))
			return true;
	return false;
}

uint64_t
metrics_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- iSSO's own metrics ---- */

struct metrics_family metrics_logins =
    METRICS_FAMILY("isso_logins_total",
                   "Logins by method: completed (the citizen was proven) "
                   "or failed (a login_failed security event).",
                   METRICS_COUNTER, 2, "method", "result", NULL, 0);
struct metrics_family metrics_tokens =
    METRICS_FAMILY("isso_tokens_issued_total", "Token responses issued, by grant type.",
                   METRICS_COUNTER, 1, "grant_type", NULL, NULL, 0);
struct metrics_family metrics_client_auths = METRICS_FAMILY(
    "isso_client_auth_total",
    "Client authentications at the token, introspection and revocation endpoints, by the "
    "method the client used and whether it was accepted.",
    METRICS_COUNTER, 2, "method", "result", NULL, 0);
struct metrics_family metrics_http_duration = METRICS_FAMILY(
    "isso_http_request_duration_seconds",
    "Time from a request's arrival to its answer, by route pattern.", METRICS_HISTOGRAM, 1, "route",
    NULL, metrics_latency_bounds, ISSO_N_ELEMENTS(metrics_latency_bounds));
struct metrics_family metrics_http_responses =
    METRICS_FAMILY("isso_http_responses_total", "HTTP answers by status class.", METRICS_COUNTER, 1,
                   "code", NULL, NULL, 0);
struct metrics_family metrics_store_duration =
    METRICS_FAMILY("isso_store_call_duration_seconds", "Time of each call into the store backend.",
                   METRICS_HISTOGRAM, 0, NULL, NULL, metrics_latency_bounds,
                   ISSO_N_ELEMENTS(metrics_latency_bounds));
struct metrics_family metrics_store_pool_waits =
    METRICS_FAMILY("isso_store_pool_waits_total",
                   "Store calls that found every pooled connection busy and waited: result "
                   "acquired (one came free) or timeout (store.pool_wait_ms passed; the call "
                   "failed as if the store were down).",
                   METRICS_COUNTER, 1, "result", NULL, NULL, 0);
struct metrics_family metrics_store_client_cache_lookups =
    METRICS_FAMILY("isso_store_client_cache_total",
                   "Client lookups of the OpenID endpoints: result hit (a row read less than "
                   "store.client_cache_ms ago) or miss (read from the store).",
                   METRICS_COUNTER, 1, "result", NULL, NULL, 0);

void
metrics_login(const char *method, bool completed)
{
	metrics_counter_add(&metrics_logins, method != NULL ? method : "unknown",
	                    completed ? "completed" : "failed", 1);
}

void
metrics_token_issued(const char *grant_type)
{
	metrics_counter_add(&metrics_tokens, grant_type, NULL, 1);
}

void
metrics_client_auth(const char *method, bool accepted)
{
	metrics_counter_add(&metrics_client_auths, method, accepted ? "accepted" : "refused", 1);
}

void
metrics_http_request(const char *route, int status, uint64_t ns)
{
	static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
	int c = status / 100;

	metrics_histogram_observe(&metrics_http_duration, route != NULL ? route : "(none)", NULL,
	                          ns);
	metrics_counter_add(&metrics_http_responses, c >= 1 && c <= 5 ? classes[c - 1] : OTHER,
	                    NULL, 1);
}

void
metrics_store_call(uint64_t ns)
{
	metrics_histogram_observe(&metrics_store_duration, NULL, NULL, ns);
}

void
metrics_store_pool_wait(bool timed_out)
{
	metrics_counter_add(&metrics_store_pool_waits, timed_out ? "timeout" : "acquired", NULL, 1);
}

void
metrics_store_client_cache(bool hit)
{
	metrics_counter_add(&metrics_store_client_cache_lookups, hit ? "hit" : "miss", NULL, 1);
}

int
metrics_render_all(struct buf *out)
{
	struct metrics_family *const all[] = {
	    &metrics_logins,           &metrics_tokens,
	    &metrics_client_auths,     &metrics_http_duration,
	    &metrics_http_responses,   &metrics_store_duration,
	    &metrics_store_pool_waits, &metrics_store_client_cache_lookups};
	int ret = 0;

	for (size_t i = 0; i < ISSO_N_ELEMENTS(all) && ret == 0; i++)
		ret = metrics_family_render(all[i], out);
	return ret;
}
