/* The operators' endpoints. /healthz and /readyz are for load balancers
 * and answer anyone (they tell nothing about citizens); /metrics is for
 * operators only: it is refused to any address outside metrics.allow and
 * to every request that came through a proxy (it carries
 * X-Forwarded-For or Forwarded), so a proxy on the same host cannot make
 * the world look like loopback. */
#include "portal/ops.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth/app.h"
#include "http/http-private.h"
#include "http/http.h"
#include "jose/jose.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/worker.h"
#include "store/store.h"

#define OPS_METRICS_MAX      (4 * 1024 * 1024)
#define OPS_SESSIONS_MAX_AGE 10 /* seconds a live-session count is reused */

struct ops {
	struct isso_app *app;
	struct metrics_allow allow;
	int64_t started; /* Unix time */
	/* the cached count of live sessions: -1 until one succeeded */
	atomic_int_fast64_t sessions;
	atomic_int_fast64_t sessions_at; /* monotonic seconds of the last try */
};

static void
send_text(struct http_req *req, int status, const char *text)
{
	http_send(req, status, "text/plain; charset=utf-8", text, strlen(text));
	http_set_header(req, "Cache-Control", "no-store");
}

static void
healthz(struct http_req *req, void *ctx)
{
	send_text(req, 200, "ok\n");
}

static void
readyz(struct http_req *req, void *ctx)
{
	struct ops *ops = ctx;
	const char *why = NULL;

	if (!jose_keyset_has_alg(ops->app->keys, "ES256") &&
	    !jose_keyset_has_alg(ops->app->keys, "RS256"))
		why = "no signing key loaded";
	else if (store_ping(ops->app->store, &why) < 0 && why == NULL)
		why = "store unreachable";
	if (why != NULL) {
		log_warn("not_ready", "reason", why, NULL);
		http_send_json(req, 503,
		               json_pack("{s:s, s:s}", "status", "unavailable", "reason", why));
		http_set_header(req, "Retry-After", "5");
		return;
	}
	http_send_json(req, 200, json_pack("{s:s}", "status", "ready"));
}

static int64_t
mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* Live sessions in the store, counted at most every OPS_SESSIONS_MAX_AGE
 * seconds (a scan of the session rows); -1 while none succeeded. */
static int64_t
live_sessions(struct ops *ops)
{
	int64_t now = mono_seconds(), last = atomic_load(&ops->sessions_at), n = 0;

	/* one scraper refreshes; the others use the last count */
	if ((now - last >= OPS_SESSIONS_MAX_AGE || atomic_load(&ops->sessions) < 0) &&
	    atomic_compare_exchange_strong(&ops->sessions_at, &last, now)) {
		if (store_eph_count(ops->app->store, "session", app_now(), &n) == 0)
			atomic_store(&ops->sessions, n);
	}
	return atomic_load(&ops->sessions);
}

/* A request that came through a proxy names its client in a header; only
 * direct connections are judged by their address. */
static bool
metrics_allowed(struct ops *ops, struct http_req *req)
{
	if (http_header(req, "X-Forwarded-For") != NULL || http_header(req, "Forwarded") != NULL ||
	    http_header(req, "X-Real-IP") != NULL)
		return false;
	return metrics_allow_has(&ops->allow, http_remote_addr(req));
}

static void
metrics(struct http_req *req, void *ctx)
{
	struct ops *ops = ctx;
	struct buf b;
	int64_t sessions;
	int ret;

	if (!metrics_allowed(ops, req)) {
		log_warn("metrics_refused", "address", http_remote_addr(req), NULL);
		send_text(req, 403,
		          "403 Forbidden: /metrics is only for the addresses in "
		          "metrics.allow, without a proxy\n");
		return;
	}
	buf_init(&b, OPS_METRICS_MAX);
	ret = metrics_render_all(&b);
	if (ret == 0)
		ret = metrics_gauge_render(
		    &b, "isso_worker_queue_depth", "Tasks waiting for a thread of a worker pool.",
		    "pool", "background", (double)worker_queue_depth(ops->app->workers));
	if (ret == 0)
		ret = metrics_gauge_sample(&b, "isso_worker_queue_depth", "pool", "hash",
		                           (double)http_defer_waiting(req));
	sessions = live_sessions(ops);
	if (ret == 0 && sessions >= 0)
		ret =
		    metrics_gauge_render(&b, "isso_sessions_active",
		                         "Unexpired single-sign-on sessions in the store (counted "
		                         "at most every 10 s).",
		                         NULL, NULL, (double)sessions);
	if (ret == 0)
		ret = metrics_gauge_render(&b, "process_start_time_seconds",
		                           "Start time of the process since the Unix epoch.", NULL,
		                           NULL, (double)ops->started);
	if (ret < 0) {
		buf_free(&b);
		log_error("metrics_too_large", NULL);
		send_text(req, 500, "500 metrics too large\n");
		return;
	}
	http_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	http_set_header(req, "Cache-Control", "no-store");
	buf_free(&b);
}

void
ops_routes(struct isso_app *app, struct http_server *srv)
{
	struct ops *ops = pool_alloc(http_server_pool(srv), sizeof(*ops));
	const char *error = NULL;

	memset(ops, 0, sizeof(*ops));
	ops->app = app;
	ops->started = (int64_t)time(NULL);
	atomic_store(&ops->sessions, -1);
	atomic_store(&ops->sessions_at, 0);
	http_route(srv, HTTP_GET, "/healthz", healthz, ops);
	http_route(srv, HTTP_GET, "/readyz", readyz, ops);
	if (app->cfg->metrics.enabled == 0)
		return;
	/* config_load refused a list that does not parse */
	if (metrics_allow_parse(app->cfg->metrics.allow, &ops->allow, &error) < 0) {
		log_error("metrics_allow_invalid", "reason", error, NULL);
		return;
	}
	http_route(srv, HTTP_GET, "/metrics", metrics, ops);
}
