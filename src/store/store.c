/* The store front end: picks a backend from the registry, checks arguments
 * once for every backend, dispatches through the driver table, and holds
 * the pieces every backend must share (audit chain hashing and
 * verification, migration discovery, record freeing, and the client cache
 * of store_client_get_cached, which every client write here empties). */
#include "store/store-private.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/isso.h"
#include "lib/metrics.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"

#define STORE_MIGRATION_MAX_SIZE (4 * 1024 * 1024)
#define STORE_MIGRATIONS_MAX     10000

/* A power of two; STORE_CLIENT_CACHE_MAX rows make chains of about 4. */
#define STORE_CLIENT_CACHE_BUCKETS 1024

/* One cached client row. The row never changes once cached: readers copy
 * it outside the lock, holding a reference. */
struct store_client_entry {
	struct store_client_entry *next;
	struct store_client *client;
	uint64_t hash;
	uint64_t loaded_ns; /* metrics_now_ns() before the row was read */
	atomic_uint refs;   /* the table's, and one per reader copying it */
};

/* store_client_get_cached's rows, keyed by client_id. generation counts
 * the client writes made through this store: a row read before a write
 * is not cached after it. */
struct store_client_cache {
	pthread_mutex_t lock;
	uint64_t ttl_ns; /* 0: no cache */
	uint64_t generation;
	size_t n, evict_at;
	struct store_client_entry *buckets[STORE_CLIENT_CACHE_BUCKETS];
};

struct store {
	const struct store_driver *driver;
	struct store_backend *backend;
	struct store_client_cache clients;
};

static void store_client_cache_clear(struct store *store);

/* Every call into the backend goes through here: its duration is the
 * store latency operators see (isso_store_call_duration_seconds). */
#define STORE_CALL(s, op, ...)                                                                     \
	({                                                                                         \
		uint64_t store_t0_ = metrics_now_ns();                                             \
		int store_ret_ = (s)->driver->op((s)->backend, ##__VA_ARGS__);                     \
		metrics_store_call(metrics_now_ns() - store_t0_);                                  \
		store_ret_;                                                                        \
	})

/* A call that writes the clients table: the process's cached rows go
 * with it, whatever the outcome (store_client_get_cached). */
#define STORE_CLIENT_WRITE(s, op, ...)                                                             \
	({                                                                                         \
		int store_wret_ = STORE_CALL(s, op, ##__VA_ARGS__);                                \
		store_client_cache_clear(s);                                                       \
		store_wret_;                                                                       \
	})

const struct store_driver *const store_drivers[] = {
    &store_driver_sqlite,
#ifdef HAVE_LIBPQ
    &store_driver_pgsql,
#endif
    NULL,
};

static _Thread_local char store_error_buf[512];

const char *
store_error_fmt(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(store_error_buf, sizeof(store_error_buf), fmt, ap);
	va_end(ap);
	return store_error_buf;
}

int
store_open(const char *driver, const char *dsn, const char *migrations_dir, struct store **store_r,
           const char **error_r)
{
	const struct store_driver *drv = NULL;
	struct store_backend *backend = NULL;
	struct store *store = NULL;
	const char *error = NULL;
	int ret = 0;
	size_t i;

	*store_r = NULL;
	if (driver == NULL || dsn == NULL) {
		error = "store driver and dsn are required";
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	if (migrations_dir == NULL)
		migrations_dir = ISSO_DATADIR "/migrations";
	for (i = 0; store_drivers[i] != NULL; i++) {
		if (strcmp(store_drivers[i]->name, driver) == 0) {
			drv = store_drivers[i];
			break;
		}
	}
	if (drv == NULL) {
		error = store_error_fmt("unknown store driver '%s'", driver);
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	ret = drv->open(dsn, migrations_dir, &backend, &error);
	if (ret < 0)
		goto out;
	store = xcalloc(1, sizeof(*store));
	store->driver = drv;
	store->backend = backend;
	pthread_mutex_init(&store->clients.lock, NULL);
	*store_r = store;
out:
	if (error_r != NULL)
		*error_r = ret < 0 ? (error != NULL ? error : isso_strerror(ret)) : NULL;
	return ret;
}

void
store_close(struct store *store)
{
	if (store == NULL)
		return;
	store->driver->close(store->backend);
	store_client_cache_clear(store);
	pthread_mutex_destroy(&store->clients.lock);
	free(store);
}

void
store_set_client_cache(struct store *store, unsigned int ttl_ms)
{
	store->clients.ttl_ns = (uint64_t)ttl_ms * 1000000u;
}

void
store_set_pool_wait(struct store *store, unsigned int wait_ms)
{
	if (store->driver->set_pool_wait != NULL)
		store->driver->set_pool_wait(store->backend, wait_ms);
}

int
store_schema_version(struct store *store, int *version_r)
{
	return STORE_CALL(store, schema_version, version_r);
}

int
store_ping(struct store *store, const char **error_r)
{
	int version = 0, ret;

	if (error_r != NULL)
		*error_r = NULL;
	if (store->driver->ping != NULL)
		return STORE_CALL(store, ping, error_r);
	ret = STORE_CALL(store, schema_version, &version);
	if (ret < 0 && error_r != NULL)
		*error_r = "store query failed";
	return ret;
}

/* ---- shared helpers ---- */

char *
store_audit_hash(const char *prev_hash, int64_t seq, int64_t ts, const char *event,
                 const char *data, char out[65])
{
	char *msg =
	    xasprintf("%s\n%" PRId64 "\n%" PRId64 "\n%s\n%s", prev_hash, seq, ts, event, data);

	secret_sha256_hex(msg, strlen(msg), out);
	free(msg);
	return out;
}

int
store_json_parse(const char *text, json_type type, json_t **json_r)
{
	json_t *json = NULL;
	int ret = 0;

	*json_r = NULL;
	if (text == NULL)
		goto out;
	json = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	if (json == NULL || json_typeof(json) != type) {
		ret = ISSO_ERR_STORE;
		goto out;
	}
	*json_r = json;
	json = NULL;
out:
	json_decref(json);
	return ret;
}

/* Serialises an optional JSON value of the given type; NULL gives dflt. */
static int
store_json_dump(const json_t *json, json_type type, const char *dflt, char **text_r)
{
	*text_r = NULL;
	if (json == NULL) {
		*text_r = dflt != NULL ? xstrdup(dflt) : NULL;
		return 0;
	}
	if (json_typeof(json) != type)
		return ISSO_ERR_INVALID;
	*text_r = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);
	if (*text_r == NULL)
		return ISSO_ERR_INVALID;
	return 0;
}

static int
store_migration_cmp(const void *a, const void *b)
{
	const struct store_migration *ma = a, *mb = b;

	return (ma->version > mb->version) - (ma->version < mb->version);
}

/* Parses "NNNN-name.sql"; false when the name does not follow it. */
static bool
store_migration_name(const char *name, int *version_r)
{
	size_t len = strlen(name), digits = 0;
	long v = 0;

	while (name[digits] >= '0' && name[digits] <= '9')
		digits++;
	if (digits == 0 || digits > 6 || name[digits] != '-' || len < digits + 1 + 4 + 1 ||
	    strcmp(name + len - 4, ".sql") != 0)
		return false;
	for (size_t i = 0; i < digits; i++)
		v = v * 10 + (name[i] - '0');
	if (v <= 0)
		return false;
	*version_r = (int)v;
	return true;
}

int
store_migrations_scan(const char *migrations_dir, const char *driver,
                      struct store_migration **list_r, size_t *count_r, const char **error_r)
{
	struct store_migration *list = NULL;
	size_t count = 0, alloc = 0, i;
	struct dirent *de;
	char *dir = NULL;
	DIR *d = NULL;
	int ret = 0, version;

	*list_r = NULL;
	*count_r = 0;
	dir = xasprintf("%s/%s", migrations_dir, driver);
	d = opendir(dir);
	if (d == NULL) {
		*error_r =
		    store_error_fmt("cannot read migrations in %s: %s", dir, strerror(errno));
		ret = ISSO_ERR_INVALID; /* the data folder's, not an outage */
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		size_t nlen = strlen(de->d_name);

		if (nlen < 4 || strcmp(de->d_name + nlen - 4, ".sql") != 0)
			continue;
		if (!store_migration_name(de->d_name, &version)) {
			*error_r = store_error_fmt("migration %s/%s is not named NNNN-name.sql",
			                           dir, de->d_name);
			ret = ISSO_ERR_INVALID;
			goto out;
		}
		if (count == STORE_MIGRATIONS_MAX) {
			*error_r = store_error_fmt("too many migrations in %s", dir);
			ret = ISSO_ERR_LIMIT;
			goto out;
		}
		if (count == alloc) {
			alloc = alloc == 0 ? 8 : alloc * 2;
			list = xrealloc(list, alloc * sizeof(*list));
		}
		list[count].version = version;
		list[count].path = xasprintf("%s/%s", dir, de->d_name);
		count++;
	}
	qsort(list, count, sizeof(*list), store_migration_cmp);
	for (i = 1; i < count; i++) {
		if (list[i].version == list[i - 1].version) {
			*error_r = store_error_fmt("two migrations with version %d in %s",
			                           list[i].version, dir);
			ret = ISSO_ERR_INVALID;
			goto out;
		}
	}
	*list_r = list;
	*count_r = count;
	list = NULL;
	count = 0;
out:
	store_migrations_free(list, count);
	if (d != NULL)
		closedir(d);
	free(dir);
	return ret;
}

void
store_migrations_free(struct store_migration *list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(list[i].path);
	free(list);
}

int
store_migration_read(const struct store_migration *m, char **sql_r, const char **error_r)
{
	FILE *f = NULL;
	char *sql = NULL;
	struct stat st;
	size_t n;
	int ret = 0;

	*sql_r = NULL;
	f = fopen(m->path, "re");
	if (f == NULL || fstat(fileno(f), &st) < 0) {
		*error_r = store_error_fmt("cannot read %s: %s", m->path, strerror(errno));
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > STORE_MIGRATION_MAX_SIZE) {
		*error_r = store_error_fmt("%s is not a regular file of at most %d bytes", m->path,
		                           STORE_MIGRATION_MAX_SIZE);
		ret = ISSO_ERR_LIMIT;
		goto out;
	}
	sql = xmalloc((size_t)st.st_size + 1);
	n = fread(sql, 1, (size_t)st.st_size, f);
	if (n != (size_t)st.st_size || ferror(f)) {
		*error_r = store_error_fmt("short read on %s", m->path);
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	sql[n] = '\0';
	if (strlen(sql) != n) {
		*error_r = store_error_fmt("%s contains a NUL byte", m->path);
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	*sql_r = sql;
	sql = NULL;
out:
	free(sql);
	if (f != NULL)
		fclose(f);
	return ret;
}

/* ---- clients ---- */

static bool
store_json_array_or_null(const json_t *j)
{
	return j == NULL || json_is_array(j);
}

int
store_client_add(struct store *store, const struct store_client *client)
{
	if (client == NULL || client->client_id == NULL || client->name == NULL ||
	    client->id_token_alg == NULL || client->auth_method == NULL ||
	    !store_json_array_or_null(client->redirect_uris) ||
	    !store_json_array_or_null(client->post_logout_redirect_uris) ||
	    (client->jwks != NULL && !json_is_object(client->jwks)) || client->status < 0 ||
	    client->status > CLIENT_SUSPENDED)
		return ISSO_ERR_INVALID;
	return STORE_CLIENT_WRITE(store, client_add, client);
}

int
store_client_get(struct store *store, const char *client_id, struct store_client **client_r)
{
	*client_r = NULL;
	if (client_id == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, client_get, client_id, client_r);
}

int
store_client_list(struct store *store, int (*fn)(const struct store_client *c, void *ctx),
                  void *ctx)
{
	if (fn == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, client_list, fn, ctx);
}

int
store_client_set_status(struct store *store, const char *client_id, int status)
{
	if (client_id == NULL || status < CLIENT_PENDING || status > CLIENT_SUSPENDED)
		return ISSO_ERR_INVALID;
	return STORE_CLIENT_WRITE(store, client_set_status, client_id, status);
}

int
store_client_set_secret(struct store *store, const char *client_id, const char *secret_hash)
{
	if (client_id == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CLIENT_WRITE(store, client_set_secret, client_id, secret_hash);
}

int
store_client_set_settings(struct store *store, const char *client_id, const json_t *settings)
{
	char *text;
	int ret;

	if (client_id == NULL || !json_is_object(settings))
		return ISSO_ERR_INVALID;
	text = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL)
		return ISSO_ERR_INVALID;
	ret = STORE_CLIENT_WRITE(store, client_set_settings, client_id, text);
	free(text);
	return ret;
}

int
store_client_update(struct store *store, const struct store_client *client, int status_before,
                    bool *found_r)
{
	*found_r = false;
	if (client == NULL || client->client_id == NULL || client->name == NULL ||
	    client->auth_method == NULL || !store_json_array_or_null(client->redirect_uris) ||
	    !store_json_array_or_null(client->post_logout_redirect_uris) ||
	    (client->jwks != NULL && !json_is_object(client->jwks)) ||
	    (client->settings != NULL && !json_is_object(client->settings)) || client->status < 0 ||
	    client->status > CLIENT_SUSPENDED)
		return ISSO_ERR_INVALID;
	return STORE_CLIENT_WRITE(store, client_update, client, status_before, found_r);
}

int
store_client_set_state(struct store *store, const struct store_client *before, int status,
                       const char *scope, const char *secret_hash, const json_t *settings,
                       bool *found_r)
{
	char *text;
	int ret;

	*found_r = false;
	if (before == NULL || before->client_id == NULL || before->settings_text == NULL ||
	    !json_is_object(settings) || status < 0 || status > CLIENT_SUSPENDED)
		return ISSO_ERR_INVALID;
	text = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL)
		return ISSO_ERR_INVALID;
	ret = STORE_CLIENT_WRITE(store, client_set_state, before, status, scope, secret_hash, text,
	                         found_r);
	free(text);
	return ret;
}

int
store_client_delete(struct store *store, const char *client_id, bool *found_r)
{
	*found_r = false;
	if (client_id == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CLIENT_WRITE(store, client_delete, client_id, found_r);
}

void
store_client_free(struct store_client *client)
{
	if (client == NULL)
		return;
	free(client->client_id);
	free(client->secret_hash);
	free(client->name);
	free(client->purpose);
	json_decref(client->redirect_uris);
	json_decref(client->post_logout_redirect_uris);
	free(client->backchannel_logout_uri);
	free(client->scope);
	free(client->id_token_alg);
	free(client->auth_method);
	free(client->jwks_uri);
	json_decref(client->jwks);
	free(client->grant_types);
	json_decref(client->settings);
	free(client->settings_text);
	free(client);
}

/* ---- the client cache (store_client_get_cached) ---- */

static char *
store_strdup_opt(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* A deep copy of an optional JSON value: cached rows are shared by every
 * thread, so a caller gets values of its own that it may change, and no
 * jansson value is ever reached from two threads but for reading. The
 * copy allocates, never parses. */
static json_t *
store_json_copy(const json_t *json)
{
	json_t *copy;

	if (json == NULL)
		return NULL;
	copy = json_deep_copy(json);
	if (copy == NULL)
		abort(); /* out of memory (the daemon's jansson allocates with xmalloc) */
	return copy;
}

/* A private copy of a client, every string and JSON value its own. */
static struct store_client *
store_client_dup(const struct store_client *c)
{
	struct store_client *d = xcalloc(1, sizeof(*d));

	d->client_id = store_strdup_opt(c->client_id);
	d->secret_hash = store_strdup_opt(c->secret_hash);
	d->name = store_strdup_opt(c->name);
	d->purpose = store_strdup_opt(c->purpose);
	d->redirect_uris = store_json_copy(c->redirect_uris);
	d->post_logout_redirect_uris = store_json_copy(c->post_logout_redirect_uris);
	d->backchannel_logout_uri = store_strdup_opt(c->backchannel_logout_uri);
	d->scope = store_strdup_opt(c->scope);
	d->public_client = c->public_client;
	d->id_token_alg = store_strdup_opt(c->id_token_alg);
	d->auth_method = store_strdup_opt(c->auth_method);
	d->jwks_uri = store_strdup_opt(c->jwks_uri);
	d->jwks = store_json_copy(c->jwks);
	d->grant_types = store_strdup_opt(c->grant_types);
	d->status = c->status;
	d->created_at = c->created_at;
	d->settings = store_json_copy(c->settings);
	d->settings_text = store_strdup_opt(c->settings_text);
	return d;
}

/* FNV-1a: the keys are the ids of clients that exist (unknown ids are
 * never cached), so no one outside chooses what fills a chain. */
static uint64_t
store_client_hash(const char *client_id)
{
	uint64_t h = 14695981039346656037u;

	for (const unsigned char *p = (const unsigned char *)client_id; *p != '\0'; p++) {
		h ^= *p;
		h *= 1099511628211u;
	}
	return h;
}

static void
store_client_entry_unref(struct store_client_entry *e)
{
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
		store_client_free(e->client);
		free(e);
	}
}

/* With the lock held: the entry of client_id, NULL when none; *prev_r
 * (may be NULL) gets the link that points to it. */
static struct store_client_entry *
store_client_cache_find(struct store_client_cache *cache, const char *client_id, uint64_t hash,
                        struct store_client_entry ***prev_r)
{
	struct store_client_entry **link = &cache->buckets[hash % STORE_CLIENT_CACHE_BUCKETS];

	for (; *link != NULL; link = &(*link)->next) {
		if ((*link)->hash == hash && strcmp((*link)->client->client_id, client_id) == 0)
			break;
	}
	if (prev_r != NULL)
		*prev_r = link;
	return *link;
}

/* With the lock held: unlinks the entry *link points to and drops the
 * table's reference. */
static void
store_client_cache_unlink(struct store_client_cache *cache, struct store_client_entry **link)
{
	struct store_client_entry *e = *link;

	*link = e->next;
	cache->n--;
	store_client_entry_unref(e);
}

/* With the lock held: makes room for one more row. Drops every expired
 * row, and when none was, the first row of the next non-empty bucket
 * after the last one evicted from. */
static void
store_client_cache_evict(struct store_client_cache *cache, uint64_t now)
{
	struct store_client_entry **link;
	size_t i, n = cache->n;

	for (i = 0; i < STORE_CLIENT_CACHE_BUCKETS; i++) {
		link = &cache->buckets[i];
		while (*link != NULL) {
			if (now >= (*link)->loaded_ns + cache->ttl_ns)
				store_client_cache_unlink(cache, link);
			else
				link = &(*link)->next;
		}
	}
	for (i = 0; cache->n == n && i < STORE_CLIENT_CACHE_BUCKETS; i++) {
		cache->evict_at = (cache->evict_at + 1) % STORE_CLIENT_CACHE_BUCKETS;
		if (cache->buckets[cache->evict_at] != NULL)
			store_client_cache_unlink(cache, &cache->buckets[cache->evict_at]);
	}
}

/* Empties the cache after a client write through this store (whatever its
 * result: a failed commit may still have written). A lookup that read
 * its row before this does not cache it (the generation moved). */
static void
store_client_cache_clear(struct store *store)
{
	struct store_client_cache *cache = &store->clients;

	pthread_mutex_lock(&cache->lock);
	cache->generation++;
	for (size_t i = 0; cache->n > 0 && i < STORE_CLIENT_CACHE_BUCKETS; i++) {
		while (cache->buckets[i] != NULL)
			store_client_cache_unlink(cache, &cache->buckets[i]);
	}
	pthread_mutex_unlock(&cache->lock);
}

/* Caches c (not stolen), read at loaded_ns, unless a client write came
 * after generation; c NULL (unknown) forgets the id's row. */
static void
store_client_cache_put(struct store *store, const char *client_id, uint64_t hash,
                       const struct store_client *c, uint64_t generation, uint64_t loaded_ns)
{
	struct store_client_cache *cache = &store->clients;
	struct store_client_entry *e = NULL, *old, **link;

	if (c != NULL) {
		e = xcalloc(1, sizeof(*e));
		e->client = store_client_dup(c);
		e->hash = hash;
		e->loaded_ns = loaded_ns;
		atomic_init(&e->refs, 1);
	}
	pthread_mutex_lock(&cache->lock);
	if (cache->generation == generation) {
		old = store_client_cache_find(cache, client_id, hash, &link);
		if (old != NULL)
			store_client_cache_unlink(cache, link);
		if (e != NULL) {
			if (cache->n >= STORE_CLIENT_CACHE_MAX)
				store_client_cache_evict(cache, loaded_ns);
			link = &cache->buckets[hash % STORE_CLIENT_CACHE_BUCKETS];
			e->next = *link;
			*link = e;
			cache->n++;
			e = NULL;
		}
	}
	pthread_mutex_unlock(&cache->lock);
	if (e != NULL)
		store_client_entry_unref(e);
}

int
store_client_get_cached(struct store *store, const char *client_id, struct store_client **client_r)
{
	struct store_client_cache *cache = &store->clients;
	struct store_client_entry *e;
	struct store_client *c = NULL;
	uint64_t hash, now, generation;
	int ret;

	*client_r = NULL;
	if (client_id == NULL)
		return ISSO_ERR_INVALID;
	if (cache->ttl_ns == 0)
		return store_client_get(store, client_id, client_r);
	hash = store_client_hash(client_id);
	now = metrics_now_ns();
	pthread_mutex_lock(&cache->lock);
	e = store_client_cache_find(cache, client_id, hash, NULL);
	if (e != NULL && now < e->loaded_ns + cache->ttl_ns)
		atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
	else
		e = NULL;
	generation = cache->generation;
	pthread_mutex_unlock(&cache->lock);
	if (e != NULL) {
		*client_r = store_client_dup(e->client);
		store_client_entry_unref(e);
		metrics_store_client_cache(true);
		return 0;
	}
	metrics_store_client_cache(false);
	ret = store_client_get(store, client_id, &c);
	if (ret < 0)
		return ret;
	store_client_cache_put(store, client_id, hash, c, generation, now);
	*client_r = c;
	return 0;
}

/* ---- persons ---- */

int
store_person_add(struct store *store, const struct store_person *person)
{
	if (person == NULL || person->uuid == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, person_add, person);
}

int
store_person_get(struct store *store, const char *uuid, struct store_person **person_r)
{
	*person_r = NULL;
	if (uuid == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, person_get, uuid, person_r);
}

int
store_person_find_by_id_hash(struct store *store, const char *id_hash,
                             struct store_person **person_r)
{
	*person_r = NULL;
	if (id_hash == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, person_find_by_id_hash, id_hash, person_r);
}

int
store_person_update(struct store *store, const char *uuid, const char *id_hash, const char *pii,
                    int64_t now)
{
	if (uuid == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, person_update, uuid, id_hash, pii, now);
}

int
store_person_bind(struct store *store, const char *uuid, const char *merged, const char *id_hash,
                  const char *pii, int64_t now)
{
	if (uuid == NULL || id_hash == NULL || pii == NULL ||
	    (merged != NULL && strcmp(merged, uuid) == 0))
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, person_bind, uuid, merged, id_hash, pii, now);
}

int
store_person_delete(struct store *store, const char *uuid)
{
	if (uuid == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, person_delete, uuid);
}

void
store_person_free(struct store_person *person)
{
	if (person == NULL)
		return;
	free(person->uuid);
	free(person->id_hash);
	xfree_secret(person->pii);
	free(person);
}

/* ---- members ---- */

int
store_member_add(struct store *store, const struct store_member *member)
{
	if (member == NULL || member->uuid == NULL || member->account == NULL ||
	    member->phone_hash == NULL || member->password_hash == NULL ||
	    (member->level != MEMBER_ORDINARY && member->level != MEMBER_GOLD))
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, member_add, member);
}

int
store_member_find(struct store *store, const char *account, const char *email_hash,
                  const char *phone_hash, struct store_member **member_r)
{
	*member_r = NULL;
	if (account == NULL && email_hash == NULL && phone_hash == NULL)
		return 0;
	return STORE_CALL(store, member_find, account, email_hash, phone_hash, member_r);
}

int
store_member_get(struct store *store, const char *uuid, struct store_member **member_r)
{
	*member_r = NULL;
	if (uuid == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, member_get, uuid, member_r);
}

int
store_member_login_failed(struct store *store, const char *uuid, int max_failures, int64_t now,
                          int lock_seconds, int *failures_r)
{
	*failures_r = 0;
	if (uuid == NULL || max_failures < 1 || lock_seconds < 0)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, member_login_failed, uuid, max_failures, now, lock_seconds,
	                  failures_r);
}

int
store_member_login_ok(struct store *store, const char *uuid)
{
	if (uuid == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, member_login_ok, uuid);
}

int
store_member_set_password(struct store *store, const char *uuid, const char *password_hash)
{
	if (uuid == NULL || password_hash == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, member_set_password, uuid, password_hash);
}

void
store_member_free(struct store_member *member)
{
	if (member == NULL)
		return;
	free(member->uuid);
	free(member->account);
	free(member->email_hash);
	free(member->phone_hash);
	xfree_secret(member->password_hash);
	free(member);
}

/* ---- organisations ---- */

int
store_org_add(struct store *store, const struct store_org *org)
{
	if (org == NULL || org->ubn == NULL || org->name == NULL || org->name[0] == '\0')
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, org_add, org);
}

int
store_org_get(struct store *store, const char *ubn, struct store_org **org_r)
{
	*org_r = NULL;
	if (ubn == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, org_get, ubn, org_r);
}

void
store_org_free(struct store_org *org)
{
	if (org == NULL)
		return;
	free(org->ubn);
	free(org->name);
	free(org);
}

int
store_org_member_add(struct store *store, const char *ubn, const char *uuid, const char *role,
                     int64_t now)
{
	if (ubn == NULL || uuid == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, org_member_add, ubn, uuid, role != NULL ? role : "", now);
}

int
store_org_member_role(struct store *store, const char *ubn, const char *uuid, char **role_r)
{
	*role_r = NULL;
	if (ubn == NULL || uuid == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, org_member_role, ubn, uuid, role_r);
}

int
store_org_list(struct store *store, size_t max, struct store_org **list_r, size_t *n_r)
{
	*list_r = NULL;
	*n_r = 0;
	if (max > STORE_ORG_LIST_MAX)
		max = STORE_ORG_LIST_MAX;
	return STORE_CALL(store, org_list, max, list_r, n_r);
}

void
store_org_list_free(struct store_org *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(list[i].ubn);
		free(list[i].name);
	}
	free(list);
}

int
store_org_remove(struct store *store, const char *ubn, bool *found_r)
{
	*found_r = false;
	if (ubn == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, org_remove, ubn, found_r);
}

int
store_org_member_remove(struct store *store, const char *ubn, const char *uuid, bool *found_r)
{
	*found_r = false;
	if (ubn == NULL || uuid == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, org_member_remove, ubn, uuid, found_r);
}

int
store_org_memberships(struct store *store, const char *uuid, size_t max,
                      struct store_org_membership **list_r, size_t *n_r)
{
	*list_r = NULL;
	*n_r = 0;
	if (uuid == NULL)
		return ISSO_ERR_INVALID;
	if (max > STORE_MEMBERSHIPS_MAX)
		max = STORE_MEMBERSHIPS_MAX;
	return STORE_CALL(store, org_memberships, uuid, max, list_r, n_r);
}

void
store_org_memberships_free(struct store_org_membership *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(list[i].ubn);
		free(list[i].role);
	}
	free(list);
}

/* ---- roles ---- */

int
store_role_grant(struct store *store, const char *uuid, const char *role, int64_t now)
{
	if (uuid == NULL || role == NULL || role[0] == '\0')
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, role_grant, uuid, role, now);
}

int
store_role_revoke(struct store *store, const char *uuid, const char *role, bool *found_r)
{
	*found_r = false;
	if (uuid == NULL || role == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, role_revoke, uuid, role, found_r);
}

int
store_role_has(struct store *store, const char *uuid, const char *role, bool *has_r)
{
	*has_r = false;
	if (uuid == NULL || role == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, role_has, uuid, role, has_r);
}

/* ---- consents ---- */

int
store_consent_get(struct store *store, const char *uuid, const char *client_id, char **scope_r)
{
	*scope_r = NULL;
	if (uuid == NULL || client_id == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, consent_get, uuid, client_id, scope_r);
}

int
store_consent_put(struct store *store, const char *uuid, const char *client_id, const char *scope,
                  int64_t now)
{
	if (uuid == NULL || client_id == NULL || scope == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, consent_put, uuid, client_id, scope, now);
}

int
store_consent_delete(struct store *store, const char *uuid, const char *client_id)
{
	if (uuid == NULL || client_id == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, consent_delete, uuid, client_id);
}

/* ---- tokens ---- */

static bool
store_token_valid(const struct store_token *token)
{
	return token != NULL && token->hash != NULL && token->grant_id != NULL &&
	       token->client_id != NULL && token->scope != NULL && token->kind >= TOKEN_CODE &&
	       token->kind <= TOKEN_REFRESH && (token->data == NULL || json_is_object(token->data));
}

int
store_token_add(struct store *store, const struct store_token *token)
{
	if (!store_token_valid(token))
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, token_add, token);
}

int
store_token_exchange(struct store *store, const char *spend, int64_t now,
                     const struct store_token *tokens, size_t n, bool *won_r)
{
	*won_r = false;
	if (tokens == NULL || n == 0 || n > STORE_TOKEN_EXCHANGE_MAX)
		return ISSO_ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		if (!store_token_valid(&tokens[i]))
			return ISSO_ERR_INVALID;
	}
	return STORE_CALL(store, token_exchange, spend, now, tokens, n, won_r);
}

int
store_token_get(struct store *store, const char *hash, int64_t now, struct store_token **token_r)
{
	*token_r = NULL;
	if (hash == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, token_get, hash, now, token_r);
}

int
store_token_use(struct store *store, const char *hash, int64_t now, bool *won_r)
{
	*won_r = false;
	if (hash == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, token_use, hash, now, won_r);
}

int
store_token_revoke(struct store *store, const char *hash)
{
	if (hash == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, token_revoke, hash);
}

int
store_token_revoke_grant(struct store *store, const char *grant_id)
{
	if (grant_id == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, token_revoke_grant, grant_id);
}

int
store_token_revoke_client_person(struct store *store, const char *client_id, const char *uuid)
{
	if (client_id == NULL || uuid == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, token_revoke_client_person, client_id, uuid);
}

int
store_token_revoke_person(struct store *store, const char *uuid)
{
	if (uuid == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, token_revoke_person, uuid);
}

void
store_token_free(struct store_token *token)
{
	if (token == NULL)
		return;
	free(token->hash);
	free(token->grant_id);
	free(token->client_id);
	free(token->uuid);
	free(token->sid);
	free(token->scope);
	json_decref(token->data);
	free(token);
}

/* ---- short-lived objects ---- */

int
store_eph_put(struct store *store, const char *kind, const char *id, json_t *data,
              int64_t expires_at)
{
	char *text = NULL;
	int ret;

	if (kind == NULL || id == NULL)
		return ISSO_ERR_INVALID;
	ret = store_json_dump(data, JSON_OBJECT, "{}", &text);
	if (ret == 0)
		ret = STORE_CALL(store, eph_put, kind, id, text, expires_at);
	xfree_secret(text);
	return ret;
}

int
store_eph_get(struct store *store, const char *kind, const char *id, int64_t now, json_t **data_r,
              int *counter_r)
{
	json_t *data = NULL;
	int counter = 0, ret;

	if (data_r != NULL)
		*data_r = NULL;
	if (counter_r != NULL)
		*counter_r = 0;
	if (kind == NULL || id == NULL)
		return ISSO_ERR_INVALID;
	ret = STORE_CALL(store, eph_get, kind, id, now, &data, &counter);
	if (ret == 0 && counter_r != NULL)
		*counter_r = counter;
	if (ret == 0 && data_r != NULL)
		*data_r = data;
	else
		json_decref(data);
	return ret;
}

int
store_eph_update(struct store *store, const char *kind, const char *id, json_t *data, int64_t now,
                 bool *found_r)
{
	char *text = NULL;
	int ret;

	*found_r = false;
	if (kind == NULL || id == NULL)
		return ISSO_ERR_INVALID;
	ret = store_json_dump(data, JSON_OBJECT, "{}", &text);
	if (ret == 0)
		ret = STORE_CALL(store, eph_update, kind, id, text, now, found_r);
	xfree_secret(text);
	return ret;
}

int
store_eph_delete(struct store *store, const char *kind, const char *id)
{
	if (kind == NULL || id == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, eph_delete, kind, id);
}

int
store_eph_count(struct store *store, const char *kind, int64_t now, int64_t *count_r)
{
	*count_r = 0;
	if (kind == NULL || store->driver->eph_count == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, eph_count, kind, now, count_r);
}

int
store_eph_bump(struct store *store, const char *kind, const char *id, int64_t now, int *counter_r)
{
	*counter_r = -1;
	if (kind == NULL || id == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, eph_bump, kind, id, now, counter_r);
}

int
store_eph_take(struct store *store, const char *kind, const char *id, int64_t now, bool *taken_r)
{
	*taken_r = false;
	if (kind == NULL || id == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, eph_take, kind, id, now, taken_r);
}

int
store_eph_incr(struct store *store, const char *kind, const char *id, int64_t now,
               int64_t expires_at, int *counter_r)
{
	*counter_r = 0;
	if (kind == NULL || id == NULL || expires_at <= now)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, eph_incr, kind, id, now, expires_at, counter_r);
}

int
store_rate_hit(struct store *store, const char *key, int window_seconds, int64_t now, int *count_r)
{
	int64_t start;

	*count_r = 0;
	if (key == NULL || window_seconds <= 0 || now < 0)
		return ISSO_ERR_INVALID;
	start = now - now % window_seconds;
	return STORE_CALL(store, rate_hit, key, start, start + window_seconds, count_r);
}

/* ---- guess throttling ---- */

int
store_throttle_get(struct store *store, const char *key, int64_t now, struct store_throttle *t_r)
{
	memset(t_r, 0, sizeof(*t_r));
	if (key == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, throttle_get, key, now, t_r);
}

int
store_throttle_take(struct store *store, const char *key, int64_t now, int64_t weight, int64_t cap,
                    int64_t hold_max, struct store_throttle *t_r)
{
	memset(t_r, 0, sizeof(*t_r));
	if (key == NULL || weight <= 0 || cap < weight || hold_max < 0 || now < 0)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, throttle_take, key, now, weight, cap, now + cap + hold_max, t_r);
}

int
store_throttle_hold(struct store *store, const char *key, int64_t next_at)
{
	if (key == NULL || next_at < 0)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, throttle_hold, key, next_at);
}

int
store_throttle_give(struct store *store, const char *key, int64_t now, int64_t weight)
{
	if (key == NULL || weight < 0 || now < 0)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, throttle_give, key, now, weight);
}

int
store_throttle_clear(struct store *store, const char *key)
{
	if (key == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, throttle_clear, key);
}

/* ---- signing keys ---- */

int
store_key_add(struct store *store, const struct store_key *key)
{
	if (key == NULL || key->kid == NULL || key->alg == NULL || key->jwk == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, key_add, key);
}

int
store_key_list(struct store *store, int (*fn)(const struct store_key *k, void *ctx), void *ctx)
{
	if (fn == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, key_list, fn, ctx);
}

int
store_key_set_active(struct store *store, const char *kid, bool active)
{
	if (kid == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, key_set_active, kid, active);
}

/* ---- audit ---- */

int
store_audit_append(struct store *store, int64_t now, const char *event, json_t *data)
{
	char *text = NULL;
	int ret;

	if (event == NULL) {
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	/* Sorted keys: the stored text, which the hash covers, does not
	 * depend on how the caller built the object. */
	if (data != NULL && !json_is_object(data)) {
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	text = data != NULL ? json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS) : xstrdup("{}");
	if (text == NULL) {
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	ret = STORE_CALL(store, audit_append, now, event, text);
out:
	json_decref(data);
	free(text);
	return ret;
}

struct store_verify_ctx {
	char prev_hash[65];
	int64_t prev_seq;
	int64_t bad_seq;
};

static int
store_audit_verify_row(const struct store_audit_row *row, void *context)
{
	struct store_verify_ctx *ctx = context;
	char hash[65];

	store_audit_hash(ctx->prev_hash, row->seq, row->ts, row->event, row->data, hash);
	/* A missing row (gap in seq), a rewritten prev_hash or any changed
	 * field breaks the link here. */
	if (row->seq != ctx->prev_seq + 1 || strcmp(row->prev_hash, ctx->prev_hash) != 0 ||
	    strcmp(row->hash, hash) != 0) {
		ctx->bad_seq = row->seq;
		return 1;
	}
	memcpy(ctx->prev_hash, hash, sizeof(ctx->prev_hash));
	ctx->prev_seq = row->seq;
	return 0;
}

int
store_audit_verify(struct store *store, bool *ok_r, int64_t *bad_seq_r)
{
	struct store_verify_ctx ctx;
	int ret;

	memset(&ctx, 0, sizeof(ctx));
	memcpy(ctx.prev_hash, STORE_AUDIT_GENESIS, sizeof(ctx.prev_hash));
	*ok_r = false;
	if (bad_seq_r != NULL)
		*bad_seq_r = 0;
	ret = STORE_CALL(store, audit_walk, 0, store_audit_verify_row, &ctx);
	if (ret < 0)
		return ret;
	*ok_r = ret == 0;
	if (bad_seq_r != NULL && ret != 0)
		*bad_seq_r = ctx.bad_seq;
	return 0;
}

struct store_list_ctx {
	int (*fn)(int64_t seq, int64_t ts, const char *event, const char *data, const char *hash,
	          void *ctx);
	void *ctx;
};

static int
store_audit_list_row(const struct store_audit_row *row, void *context)
{
	struct store_list_ctx *ctx = context;

	return ctx->fn(row->seq, row->ts, row->event, row->data, row->hash, ctx->ctx);
}

int
store_audit_list(struct store *store, int64_t since_seq,
                 int (*fn)(int64_t seq, int64_t ts, const char *event, const char *data,
                           const char *hash, void *ctx),
                 void *ctx)
{
	struct store_list_ctx lctx = {.fn = fn, .ctx = ctx};

	if (fn == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, audit_walk, since_seq, store_audit_list_row, &lctx);
}

/* ---- housekeeping ---- */

/* ---- jobs ---- */

int
store_job_add(struct store *store, const char *kind, json_t *data, int64_t now, int64_t run_at,
              int64_t expires_at, char id_r[33])
{
	char id[33], *text = NULL;
	int ret;

	if (kind == NULL || strlen(kind) > 64 || !json_is_object(data) || expires_at <= now)
		return ISSO_ERR_INVALID;
	secret_token(16, id);
	ret = store_json_dump(data, JSON_OBJECT, NULL, &text);
	if (ret == 0)
		ret = STORE_CALL(store, job_add, id, kind, text, now, run_at, expires_at);
	free(text);
	if (ret == 0 && id_r != NULL)
		memcpy(id_r, id, sizeof(id));
	return ret;
}

int
store_job_claim(struct store *store, const char *kind, const char *owner, int64_t now,
                int lease_seconds, struct store_job **job_r)
{
	*job_r = NULL;
	if (kind == NULL || owner == NULL || lease_seconds <= 0)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, job_claim, kind, owner, now, lease_seconds, job_r);
}

int
store_job_done(struct store *store, const char *id, const char *owner)
{
	if (id == NULL || owner == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, job_done, id, owner);
}

int
store_job_retry(struct store *store, const char *id, const char *owner, int64_t run_at)
{
	if (id == NULL || owner == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, job_retry, id, owner, run_at);
}

void
store_job_free(struct store_job *job)
{
	if (job == NULL)
		return;
	free(job->id);
	free(job->kind);
	json_decref(job->data);
	free(job);
}

int
store_purge(struct store *store, int64_t now, int *n_r)
{
	int n = 0, ret;

	ret = STORE_CALL(store, purge, now, &n);
	if (n_r != NULL)
		*n_r = n;
	return ret;
}

/* ---- consent records and releases ---- */

static char *
store_json_object_text(const json_t *o)
{
	if (!json_is_object(o))
		return NULL;
	return json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
}

int
store_consent_record(struct store *store, const char *uuid, const char *client_id,
                     const char *scope, const json_t *record, int64_t now)
{
	char *text;
	int ret;

	if (uuid == NULL || client_id == NULL || scope == NULL)
		return ISSO_ERR_INVALID;
	text = store_json_object_text(record);
	if (text == NULL)
		return ISSO_ERR_INVALID;
	ret = STORE_CALL(store, consent_record, uuid, client_id, scope, text, now);
	free(text);
	return ret;
}

int
store_consent_list(struct store *store, const char *uuid,
                   int (*fn)(const struct store_consent *c, void *ctx), void *ctx)
{
	if (uuid == NULL || fn == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, consent_list, uuid, fn, ctx);
}

int
store_release_add(struct store *store, const char *uuid, const char *client_id, int64_t now,
                  const json_t *data)
{
	char *text;
	int ret;

	if (uuid == NULL || client_id == NULL)
		return ISSO_ERR_INVALID;
	text = store_json_object_text(data);
	if (text == NULL)
		return ISSO_ERR_INVALID;
	ret = STORE_CALL(store, release_add, uuid, client_id, now, text);
	free(text);
	return ret;
}

int
store_code_add(struct store *store, const struct store_token *code, int64_t now,
               const json_t *release, const json_t *audit)
{
	char *rtext = NULL, *atext = NULL;
	int ret = ISSO_ERR_INVALID;

	if (!store_token_valid(code) || code->kind != TOKEN_CODE || code->uuid == NULL)
		return ISSO_ERR_INVALID;
	rtext = store_json_object_text(release);
	atext = store_json_object_text(audit);
	if (rtext != NULL && atext != NULL)
		ret = STORE_CALL(store, code_add, code, now, rtext, atext);
	free(rtext);
	free(atext);
	return ret;
}

int
store_release_list(struct store *store, const char *uuid, int limit,
                   int (*fn)(const struct store_release *r, void *ctx), void *ctx)
{
	if (uuid == NULL || fn == NULL || limit <= 0)
		return ISSO_ERR_INVALID;
	if (limit > STORE_RELEASE_LIST_MAX)
		limit = STORE_RELEASE_LIST_MAX;
	return STORE_CALL(store, release_list, uuid, limit, fn, ctx);
}

/* ---- TaipeiPass app device keys ---- */

int
store_device_add(struct store *store, const struct store_device *d)
{
	if (d == NULL || d->id == NULL || d->uuid == NULL || d->jwk == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, device_add, d);
}

int
store_device_get(struct store *store, const char *id, struct store_device **d_r)
{
	*d_r = NULL;
	if (id == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, device_get, id, d_r);
}

int
store_device_list(struct store *store, const char *uuid, size_t max, struct store_device **list_r,
                  size_t *n_r)
{
	*list_r = NULL;
	*n_r = 0;
	if (uuid == NULL || max == 0 || max > 1000)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, device_list, uuid, max, list_r, n_r);
}

int
store_device_use(struct store *store, const char *id, int64_t now, bool *found_r)
{
	*found_r = false;
	if (id == NULL)
		return ISSO_ERR_INVALID;
	return STORE_CALL(store, device_use, id, now, found_r);
}

int
store_device_revoke(struct store *store, const char *uuid, const char *id, int64_t now, int *n_r)
{
	int n = 0, ret;

	if (uuid == NULL)
		return ISSO_ERR_INVALID;
	ret = STORE_CALL(store, device_revoke, uuid, id, now, &n);
	if (n_r != NULL)
		*n_r = n;
	return ret;
}

static void
store_device_clear(struct store_device *d)
{
	free(d->id);
	free(d->uuid);
	free(d->jwk);
	free(d->name);
}

void
store_device_free(struct store_device *d)
{
	if (d == NULL)
		return;
	store_device_clear(d);
	free(d);
}

void
store_device_list_free(struct store_device *list, size_t n)
{
	for (size_t i = 0; list != NULL && i < n; i++)
		store_device_clear(&list[i]);
	free(list);
}
