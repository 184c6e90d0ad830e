/* Clients' JWK sets fetched from their jwks_uri (private_key_jwt): a
 * bounded per-process cache, one fetch per client at a time, fetched on a
 * background worker so that a slow or hanging jwks_uri never holds more
 * than a bounded number of request threads for a bounded time. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/app.h"
#include "conn/outbound.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/worker.h"
#include "lib/xmalloc.h"
#include "oidc/oidc-private.h"

#define JWKS_CACHE_MAX        256         /* clients remembered */
#define JWKS_MAX_BYTES        (64 * 1024) /* a larger set is refused */
#define JWKS_FETCH_TIMEOUT_MS 3000
#define JWKS_WAIT_MS          1500 /* longest a request thread waits */
#define JWKS_TTL_MIN          60
#define JWKS_TTL_MAX          86400
#define JWKS_TTL_DEFAULT      300 /* no Cache-Control max-age */
#define JWKS_FAIL_TTL         30  /* a failed fetch is not retried sooner */
#define JWKS_REFETCH_AGE      60  /* an unknown key refetches a set this old */

struct jwks_entry {
	char *client_id; /* NULL: free slot */
	char *uri;
	json_t *jwks;         /* the last good set, or NULL */
	int64_t fetched_at;   /* when jwks was fetched */
	int64_t fresh_until;  /* jwks is used until then */
	int64_t failed_until; /* a failure is remembered until then */
	int64_t last_used;
	bool fetching;
	struct timespec wait_until; /* waiting for this fetch ends then */
	unsigned waiters;
};

struct oidc_jwks_cache {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct worker_pool *pool;
	unsigned max_waiters; /* request threads that may wait at once */
	unsigned waiters;
	struct jwks_entry entries[JWKS_CACHE_MAX];
};

struct jwks_fetch {
	struct oidc_jwks_cache *cache;
	char *client_id;
	char *uri;
};

struct oidc_jwks_cache *
oidc_jwks_cache_new(struct worker_pool *pool, unsigned max_waiters)
{
	struct oidc_jwks_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->pool = pool;
	c->max_waiters = max_waiters;
	return c;
}

static void
entry_clear(struct jwks_entry *e)
{
	free(e->client_id);
	free(e->uri);
	json_decref(e->jwks);
	memset(e, 0, sizeof(*e));
}

void
oidc_jwks_cache_free(struct oidc_jwks_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < JWKS_CACHE_MAX; i++)
		entry_clear(&c->entries[i]);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* ---- the one outbound call ---- */

/* GETs uri through the outbound client (its address policy, bounded in
 * size and time); on success *jwks_r is a JWK set and *ttl_r its cache
 * lifetime in seconds. */
static int
jwks_http_get(const char *uri, json_t **jwks_r, int *ttl_r, const char **why_r)
{
	struct outbound_req rq = {
	    .method = OUTBOUND_GET,
	    .url = uri,
	    .agent = "isso-jwks/1",
	    .timeout_ms = JWKS_FETCH_TIMEOUT_MS,
	    .reply_max = JWKS_MAX_BYTES,
	    .purpose = "jwks",
	};
	struct outbound_resp rs;
	const char *err = NULL;
	json_t *jwks = NULL;
	int ret;

	*jwks_r = NULL;
	ret = outbound_request(&rq, &rs, &err);
	if (ret < 0) {
		*why_r = err != NULL ? err : "jwks_uri did not answer";
		goto out;
	}
	ret = ISSO_ERR_IO;
	if (rs.status != 200) {
		*why_r = "jwks_uri answered an error status";
		goto out;
	}
	jwks = json_loadb(rs.body.data != NULL ? rs.body.data : "", rs.body.len,
	                  JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_array(json_object_get(jwks, "keys"))) {
		*why_r = "jwks_uri sent no JWK set";
		goto out;
	}
	/* Its HTTP lifetime, within bounds: no-store still keeps it for the
	 * minimum, so a client cannot make us fetch on every request. */
	*ttl_r = rs.max_age < 0              ? JWKS_TTL_DEFAULT
	         : rs.max_age < JWKS_TTL_MIN ? JWKS_TTL_MIN
	         : rs.max_age > JWKS_TTL_MAX ? JWKS_TTL_MAX
	                                     : (int)rs.max_age;
	*jwks_r = jwks;
	jwks = NULL;
	ret = 0;
out:
	json_decref(jwks);
	outbound_resp_free(&rs);
	return ret;
}

/* ---- the cache ---- */

/* The entry of client_id, or NULL. Called locked. */
static struct jwks_entry *
entry_find(struct oidc_jwks_cache *c, const char *client_id)
{
	for (size_t i = 0; i < JWKS_CACHE_MAX; i++) {
		if (c->entries[i].client_id != NULL &&
		    strcmp(c->entries[i].client_id, client_id) == 0)
			return &c->entries[i];
	}
	return NULL;
}

/* A free slot, or the least recently used idle one; NULL when every
 * entry is busy. Called locked. */
static struct jwks_entry *
entry_new(struct oidc_jwks_cache *c, const char *client_id, const char *uri)
{
	struct jwks_entry *victim = NULL;

	for (size_t i = 0; i < JWKS_CACHE_MAX; i++) {
		struct jwks_entry *e = &c->entries[i];
		if (e->client_id == NULL) {
			victim = e;
			break;
		}
		if (e->fetching || e->waiters > 0)
			continue;
		if (victim == NULL || e->last_used < victim->last_used)
			victim = e;
	}
	if (victim == NULL)
		return NULL;
	entry_clear(victim);
	victim->client_id = xstrdup(client_id);
	victim->uri = xstrdup(uri);
	return victim;
}

static void
fetch_task(void *arg)
{
	struct jwks_fetch *f = arg;
	struct oidc_jwks_cache *c = f->cache;
	struct jwks_entry *e;
	json_t *jwks = NULL;
	const char *why = NULL;
	int ttl = 0, ret;
	int64_t now;

	ret = worker_stopping(c->pool) ? ISSO_ERR_IO : jwks_http_get(f->uri, &jwks, &ttl, &why);
	now = app_now();
	if (ret < 0)
		log_warn("client_jwks_unavailable", "client_id", f->client_id, "reason",
		         why != NULL ? why : "stopping", NULL);
	pthread_mutex_lock(&c->lock);
	e = entry_find(c, f->client_id);
	if (e != NULL && strcmp(e->uri, f->uri) == 0) {
		e->fetching = false;
		if (ret == 0) {
			json_decref(e->jwks);
			e->jwks = jwks;
			jwks = NULL;
			e->fetched_at = now;
			e->fresh_until = now + ttl;
			e->failed_until = 0;
		} else {
			e->failed_until = now + JWKS_FAIL_TTL;
		}
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	json_decref(jwks);
	free(f->client_id);
	free(f->uri);
	free(f);
}

json_t *
oidc_jwks_get(struct oidc_jwks_cache *c, const char *client_id, const char *uri, bool refetch,
              const char **why_r)
{
	struct jwks_entry *e;
	json_t *jwks = NULL;
	int64_t now = app_now();
	struct timespec until;
	bool force;

	*why_r = "the client's JWK set is unavailable";
	if (c == NULL)
		return NULL;
	pthread_mutex_lock(&c->lock);
	e = entry_find(c, client_id);
	if (e != NULL && strcmp(e->uri, uri) != 0 && !e->fetching && e->waiters == 0) {
		entry_clear(e);
		e = NULL;
	}
	if (e == NULL)
		e = entry_new(c, client_id, uri);
	if (e == NULL || strcmp(e->uri, uri) != 0) {
		*why_r = "too many JWK set fetches";
		goto out;
	}
	e->last_used = now;
	/* A key the set lacks may be a new one: fetch again, but not often,
	 * and only for this caller. The cached set stays fresh for every
	 * other request, so an assertion anyone can forge (a made-up kid,
	 * any signature) cannot take the client's keys away meanwhile. */
	force = refetch && e->jwks != NULL && now - e->fetched_at >= JWKS_REFETCH_AGE;
	if (e->jwks != NULL && now < e->fresh_until && !force)
		goto found;
	if (now < e->failed_until) {
		*why_r = "the client's JWK set could not be fetched recently";
		goto out;
	}
	if (!e->fetching) {
		struct jwks_fetch *f = xcalloc(1, sizeof(*f));
		f->cache = c;
		f->client_id = xstrdup(client_id);
		f->uri = xstrdup(uri);
		if (worker_submit(c->pool, fetch_task, f) < 0) {
			free(f->client_id);
			free(f->uri);
			free(f);
			*why_r = "too many JWK set fetches";
			goto out;
		}
		e->fetching = true;
		/* Waiting for one fetch is bounded in all: later requests
		 * get what is left of it, not a new allowance. */
		clock_gettime(CLOCK_REALTIME, &e->wait_until);
		e->wait_until.tv_sec += JWKS_WAIT_MS / 1000;
		e->wait_until.tv_nsec += (long)(JWKS_WAIT_MS % 1000) * 1000000L;
		if (e->wait_until.tv_nsec >= 1000000000L) {
			e->wait_until.tv_sec++;
			e->wait_until.tv_nsec -= 1000000000L;
		}
	}
	/* Single flight: one request thread waits for the fetch; the others
	 * (and all of them while enough threads already wait) fail fast. */
	if (e->waiters > 0 || c->waiters >= c->max_waiters) {
		*why_r = "the client's JWK set is being fetched; try again";
		goto out;
	}
	e->waiters++;
	c->waiters++;
	until = e->wait_until;
	while (e->fetching) {
		if (pthread_cond_timedwait(&c->cond, &c->lock, &until) != 0)
			break;
	}
	e->waiters--;
	c->waiters--;
	if (e->jwks != NULL && app_now() < e->fresh_until)
		goto found;
	*why_r = e->fetching ? "the client's jwks_uri is slow; try again"
	                     : "the client's JWK set could not be fetched";
	goto out;
found:
	jwks = json_incref(e->jwks);
out:
	pthread_mutex_unlock(&c->lock);
	return jwks;
}
