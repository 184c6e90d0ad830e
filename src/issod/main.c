/* issod: the iSSO daemon. Thin: configuration, start-up, signals and the
 * housekeeping loop; everything else lives in the libraries. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/anchor.h"
#include "auth/app.h"
#include "auth/method.h"
#include "auth/notice.h"
#include "auth/page.h"
#include "http/http.h"
#include "lib/config.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/worker.h"
#include "oidc/oidc.h"
#include "portal/portal.h"
#include "store/store.h"

#define PURGE_INTERVAL 60
#define WORKER_THREADS 4    /* background work: outbound calls */
#define WORKER_QUEUE   1024 /* tasks waiting for a worker */

static void
usage(FILE *f)
{
	fputs("usage: issod [--config FILE]\n"
	      "Every setting can also be given as ISSO_<SECTION>_<KEY> in the environment.\n",
	      f);
}

/* Waiting for the store at start: SIGTERM or SIGINT ends the wait at once. */
struct issod_wait {
	const sigset_t *sigs;
	bool stopped;
};

static bool
issod_store_sleep(void *ctx, unsigned int ms)
{
	struct issod_wait *w = ctx;
	struct timespec now, end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)(ms / 1000);
	end.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	for (;;) {
		struct timespec left;
		int sig;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = end.tv_sec - now.tv_sec;
		left.tv_nsec = end.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		if (left.tv_sec < 0)
			return true;
		/* SIGHUP or an interruption sleeps on; EAGAIN: the time is up */
		sig = sigtimedwait(w->sigs, NULL, &left);
		if (sig == SIGTERM || sig == SIGINT) {
			w->stopped = true;
			return false;
		}
		if (sig < 0 && errno != EINTR)
			return true;
	}
}

/* Error answers: JSON on the legacy API's machine paths, pages elsewhere. */
static void
issod_http_error(struct http_req *req, int status, void *ctx)
{
	if (!oidc_legacy_http_error(req, status))
		page_http_error(req, status, ctx);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct isso_config cfg;
	struct isso_app app;
	struct http_server_settings hs;
	struct http_server *srv = NULL;
	struct app_store_wait store_wait;
	struct issod_wait waiting = {.sigs = NULL, .stopped = false};
	const char *config_path = NULL, *error = NULL;
	sigset_t sigs;
	int c, sig, level, status = 1;
	int64_t next_purge, next_keys;
	char portbuf[16];

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* the core sections, then every part's own (methods, shared
	 * connectors): a refused setting stops the start before anything
	 * is opened */
	if (config_load(config_path, &cfg, &error) < 0) {
		fprintf(stderr, "issod: configuration: %s\n", error);
		return 2;
	}
	if (app_check_config(&cfg, &error) < 0) {
		fprintf(stderr, "issod: configuration: %s\n", error);
		config_free(&cfg);
		return 2;
	}
	level = log_level_parse(cfg.log.level);
	log_init(2, level < 0 ? LOG_INFO : (enum log_level)level);

	/* Signals are taken synchronously by the main thread only; the
	 * worker threads inherit the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Until the store answers (and is migrated, and the signing keys are
	 * there) issod does not listen: nothing could be served without them,
	 * and a load balancer's health check sees the node down. */
	store_wait.sleep = issod_store_sleep;
	store_wait.ctx = &waiting;
	waiting.sigs = &sigs;
	if (app_init_wait(&app, &cfg, &store_wait, &error) < 0) {
		if (waiting.stopped) {
			log_info("stopping", "detail", "stopped while waiting for the store", NULL);
			status = 0;
		} else {
			log_error("startup_failed", "reason", error, NULL);
		}
		goto out;
	}
	method_log_unavailable(&app);
	if (oidc_discovery_build(&app) < 0) {
		log_error("startup_failed", "reason", "discovery", NULL);
		goto out;
	}
	if (worker_pool_new(WORKER_THREADS, WORKER_QUEUE, &app.workers) < 0 ||
	    oidc_start(&app) < 0 || anchor_start(&app) < 0 || notice_start(&app) < 0) {
		log_error("startup_failed", "reason", "background workers", NULL);
		goto out;
	}
	memset(&hs, 0, sizeof(hs));
	hs.listen = cfg.server.listen;
	hs.port = cfg.server.port;
	hs.threads = cfg.server.threads;
	/* argon2id runs here, never on the request threads */
	hs.defer_threads = (unsigned)cfg.server.hash_workers;
	hs.defer_queue = (unsigned)cfg.server.hash_queue;
	hs.max_body = (size_t)cfg.server.max_body;
	hs.trust_proxy = cfg.server.trust_proxy != 0;
	hs.trusted_proxies = cfg.server.trusted_proxies;
	/* an https issuer: Secure, __Host- cookies even when the TLS proxy
	 * does not say X-Forwarded-Proto */
	hs.secure_cookies = strncmp(cfg.server.public_url, "https://", 8) == 0;
	hs.on_request = page_on_request;
	hs.error_page = issod_http_error;
	hs.ctx = &app;
	srv = http_server_new(&hs);
	portal_routes(&app, srv);
	if (http_server_start(srv, &error) < 0) {
		log_error("startup_failed", "reason", error, NULL);
		goto out;
	}
	snprintf(portbuf, sizeof(portbuf), "%d", http_server_port(srv));
	log_info("listening", "address", cfg.server.listen, "port", portbuf, "issuer", app.issuer,
	         NULL);

	next_purge = app_now() + PURGE_INTERVAL;
	next_keys = app_now() + cfg.keys.reload_interval;
	for (;;) {
		int64_t now = app_now();
		int64_t wait = (next_purge < next_keys ? next_purge : next_keys) - now;
		struct timespec ts = {.tv_sec = wait > 0 ? wait : 0};
		int removed = 0;

		sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig < 0 && errno != EAGAIN && errno != EINTR)
			break;
		now = app_now();
		if (now >= next_keys) {
			app_reload_keys(&app);
			next_keys = now + cfg.keys.reload_interval;
		}
		if (now >= next_purge) {
			if (store_purge(app.store, now, &removed) < 0)
				log_warn("purge_failed", NULL);
			next_purge = now + PURGE_INTERVAL;
		}
	}
	log_info("stopping", NULL);
	status = 0;
out:
	if (srv != NULL)
		http_server_free(srv);
	/* No request runs any more: stop the background work, then free
	 * what it used. */
	worker_pool_free(app.workers);
	app.workers = NULL;
	oidc_stop(&app);
	app_free(&app);
	config_free(&cfg);
	return status;
}
