/* The store test suite, written once against store.h and run against any
 * backend: ISSO_TEST_STORE_DRIVER (default "sqlite") and
 * ISSO_TEST_STORE_DSN (default: a fresh SQLite file per test). With a DSN
 * from the environment the database is shared between tests, so every test
 * uses its own random ids and checks only its own rows; tests that need a
 * database of their own are skipped then, except on PostgreSQL, where they
 * create one (scripts/pg-test.sh runs this suite against a throwaway
 * cluster). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/isso.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/secret.h"
#include "store/store.h"

#define MIGRATIONS_DIR ISSO_DATADIR "/migrations"
#define NOW            ((int64_t)1700000000)

static const char *test_driver = "sqlite";
static const char *env_dsn;

struct fixture {
	struct store *store;
	char dir[64];
	char dsn[128];
	char prefix[40];
};

/* ---- helpers ---- */

static bool
fresh_db(void)
{
	return env_dsn == NULL;
}

static const char *
fixture_dsn(struct fixture *f)
{
	return fresh_db() ? f->dsn : env_dsn;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *error = NULL;
	char uuid[37];

	assert_non_null(f);
	secret_uuid(uuid);
	snprintf(f->prefix, sizeof(f->prefix), "t%.8s", uuid);
	if (fresh_db()) {
		snprintf(f->dir, sizeof(f->dir), "/tmp/isso-store-XXXXXX");
		assert_non_null(mkdtemp(f->dir));
		snprintf(f->dsn, sizeof(f->dsn), "%s/store.db", f->dir);
	}
	assert_int_equal(store_open(test_driver, fixture_dsn(f), MIGRATIONS_DIR, &f->store, &error),
	                 0);
	assert_non_null(f->store);
	*state = f;
	return 0;
}

static void
remove_db_files(struct fixture *f)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	char path[160];

	for (size_t i = 0; i < ISSO_N_ELEMENTS(suffixes); i++) {
		snprintf(path, sizeof(path), "%s%s", f->dsn, suffixes[i]);
		unlink(path);
	}
	rmdir(f->dir);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->store);
	if (fresh_db())
		remove_db_files(f);
	free(f);
	return 0;
}

/* A test-unique identifier: prefix-name. */
static char *
id(struct fixture *f, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s-%s", f->prefix, name);
	return buf;
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool
is_pgsql(void)
{
	return strcmp(test_driver, "postgresql") == 0;
}

/* PostgreSQL only: runs sql (a test's own fixed text) on a connection of
 * its own to env_dsn, outside the store. Returns whether it succeeded. */
static bool
pg_admin(const char *sql)
{
	PGconn *db = PQconnectdb(env_dsn);
	PGresult *res;
	bool ok;

	assert_int_equal(PQstatus(db), CONNECTION_OK);
	res = PQexec(db, sql);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	PQfinish(db);
	return ok;
}

/* PostgreSQL only: a new empty database named after the test; dsn gets
 * its conninfo (a later dbname overrides env_dsn's). */
static void
pg_create_db(struct fixture *f, char *name, size_t name_size, char *dsn, size_t dsn_size)
{
	char sql[128];

	snprintf(name, name_size, "isso_%s", f->prefix);
	for (char *p = name; *p != '\0'; p++)
		assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	assert_true(pg_admin(sql));
	snprintf(dsn, dsn_size, "%s dbname=%s", env_dsn, name);
}

static void
pg_drop_db(const char *name)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", name);
	assert_true(pg_admin(sql));
}

/* ---- open and migrations ---- */

static void
test_open_errors(void **state)
{
	struct store *store = NULL;
	const char *error = NULL;

	(void)state;
	assert_int_equal(store_open("nosuchdb", "x", MIGRATIONS_DIR, &store, &error),
	                 ISSO_ERR_INVALID);
	assert_null(store);
	assert_non_null(error);
	assert_true(store_open(test_driver, fresh_db() ? "/tmp/x.db" : env_dsn,
	                       "/nonexistent-isso-dir", &store, &error) < 0);
	assert_null(store);
	assert_non_null(error);
	unlink("/tmp/x.db");
}

static void
test_migrations_idempotent(void **state)
{
	struct fixture *f = *state;
	const char *error = NULL;
	int v1 = 0, v2 = 0, v3 = 0;

	assert_int_equal(store_schema_version(f->store, &v1), 0);
	assert_true(v1 >= 1);
	store_close(f->store);
	f->store = NULL;
	assert_int_equal(store_open(test_driver, fixture_dsn(f), MIGRATIONS_DIR, &f->store, &error),
	                 0);
	assert_int_equal(store_schema_version(f->store, &v2), 0);
	assert_int_equal(v1, v2);
	store_close(f->store);
	assert_int_equal(store_open(test_driver, fixture_dsn(f), MIGRATIONS_DIR, &f->store, &error),
	                 0);
	assert_int_equal(store_schema_version(f->store, &v3), 0);
	assert_int_equal(v1, v3);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

/* Later migrations apply in order, each atomically; a failing one leaves
 * the version where it was; a database newer than the migrations is
 * refused. Needs a database of its own. */
static void
test_migrations_sequence(void **state)
{
	struct fixture *f = *state;
	struct store *store = NULL;
	const char *error = NULL;
	char mdir[64], sub[128], path[600], dsn[512], real[192], dbname[64] = "";
	int version = 0, ret;

	if (!fresh_db() && !is_pgsql())
		skip();
	snprintf(mdir, sizeof(mdir), "/tmp/isso-migr-XXXXXX");
	assert_non_null(mkdtemp(mdir));
	snprintf(sub, sizeof(sub), "%s/%s", mdir, test_driver);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(real, sizeof(real), "%s/%s/0001-initial.sql", MIGRATIONS_DIR, test_driver);
	snprintf(path, sizeof(path), "%s/0001-initial.sql", sub);
	assert_int_equal(symlink(real, path), 0);
	snprintf(path, sizeof(path), "%s/0002-extra.sql", sub);
	write_file(path, "CREATE TABLE extra_test (x INTEGER);\n"
	                 "CREATE TABLE extra_test2 (y INTEGER);\n");
	if (is_pgsql())
		pg_create_db(f, dbname, sizeof(dbname), dsn, sizeof(dsn));
	else
		snprintf(dsn, sizeof(dsn), "%s/m.db", f->dir);

	assert_int_equal(store_open(test_driver, dsn, mdir, &store, &error), 0);
	assert_int_equal(store_schema_version(store, &version), 0);
	assert_int_equal(version, 2);
	store_close(store);

	/* A broken migration: open fails, nothing of it stays. */
	snprintf(path, sizeof(path), "%s/0003-bad.sql", sub);
	write_file(path, "CREATE TABLE extra_test3 (z INTEGER);\nTHIS IS NOT SQL;\n");
	error = NULL;
	ret = store_open(test_driver, dsn, mdir, &store, &error);
	assert_true(ret < 0);
	assert_int_not_equal(ret, ISSO_ERR_IO); /* connected: nothing to wait for */
	assert_null(store);
	assert_non_null(error);
	write_file(path, "CREATE TABLE extra_test3 (z INTEGER);\n");
	assert_int_equal(store_open(test_driver, dsn, mdir, &store, &error), 0);
	assert_int_equal(store_schema_version(store, &version), 0);
	assert_int_equal(version, 3);
	store_close(store);
	unlink(path);

	/* The database is now newer than these migrations. */
	assert_true(store_open(test_driver, dsn, mdir, &store, &error) < 0);
	assert_null(store);

	/* No migrations folder: the data folder is wrong, not the store down. */
	assert_int_equal(
	    store_open(test_driver, dsn, "/nonexistent-isso-migrations", &store, &error),
	    ISSO_ERR_INVALID);

	/* A .sql file with a bad name is refused, not skipped. */
	snprintf(path, sizeof(path), "%s/initial.sql", sub);
	write_file(path, "SELECT 1;\n");
	assert_int_equal(store_open(test_driver, dsn, mdir, &store, &error), ISSO_ERR_INVALID);
	unlink(path);

	snprintf(path, sizeof(path), "%s/0002-extra.sql", sub);
	unlink(path);
	snprintf(path, sizeof(path), "%s/0001-initial.sql", sub);
	unlink(path);
	rmdir(sub);
	rmdir(mdir);
	if (is_pgsql()) {
		pg_drop_db(dbname);
		return;
	}
	snprintf(path, sizeof(path), "%s-wal", dsn);
	unlink(path);
	snprintf(path, sizeof(path), "%s-shm", dsn);
	unlink(path);
	unlink(dsn);
}

/* ---- clients ---- */

static void
client_init(struct store_client *c, const char *client_id, int64_t created_at)
{
	memset(c, 0, sizeof(*c));
	c->client_id = (char *)client_id;
	c->secret_hash = "aa11";
	c->name = "臺北市政府 測試服務";
	c->purpose = "行政服務";
	c->redirect_uris = json_pack("[ss]", "https://a.example/cb", "https://a.example/cb2");
	c->post_logout_redirect_uris = json_pack("[s]", "https://a.example/bye");
	c->backchannel_logout_uri = "https://a.example/bcl";
	c->scope = "openid profile";
	c->public_client = false;
	c->id_token_alg = "ES256";
	c->auth_method = "client_secret_basic";
	c->jwks_uri = NULL;
	c->jwks = json_pack("{s[]}", "keys");
	c->status = CLIENT_PENDING;
	c->created_at = created_at;
}

static void
client_clear(struct store_client *c)
{
	json_decref(c->redirect_uris);
	json_decref(c->post_logout_redirect_uris);
	json_decref(c->jwks);
}

struct list_ctx {
	const char *prefix;
	char ids[8][64];
	int n;
	int stop_after;
};

static int
client_list_cb(const struct store_client *c, void *context)
{
	struct list_ctx *ctx = context;

	if (!starts_with(c->client_id, ctx->prefix))
		return 0;
	assert_true(ctx->n < 8);
	snprintf(ctx->ids[ctx->n++], sizeof(ctx->ids[0]), "%s", c->client_id);
	return ctx->stop_after > 0 && ctx->n == ctx->stop_after ? 42 : 0;
}

static void
test_client(void **state)
{
	struct fixture *f = *state;
	struct store_client in, *out = NULL;
	struct list_ctx lctx;
	char a[64], b[64], c[64];

	id(f, "a", a, sizeof(a));
	id(f, "b", b, sizeof(b));
	id(f, "c", c, sizeof(c));
	client_init(&in, a, 300);
	assert_int_equal(store_client_add(f->store, &in), 0);
	assert_int_equal(store_client_add(f->store, &in), ISSO_ERR_CONFLICT);

	assert_int_equal(store_client_get(f->store, a, &out), 0);
	assert_non_null(out);
	assert_string_equal(out->client_id, a);
	assert_string_equal(out->secret_hash, "aa11");
	assert_string_equal(out->name, in.name);
	assert_string_equal(out->purpose, in.purpose);
	assert_true(json_equal(out->redirect_uris, in.redirect_uris));
	assert_true(json_equal(out->post_logout_redirect_uris, in.post_logout_redirect_uris));
	assert_string_equal(out->backchannel_logout_uri, in.backchannel_logout_uri);
	assert_string_equal(out->scope, in.scope);
	assert_false(out->public_client);
	assert_string_equal(out->id_token_alg, "ES256");
	assert_string_equal(out->auth_method, "client_secret_basic");
	assert_null(out->jwks_uri);
	assert_true(json_equal(out->jwks, in.jwks));
	assert_int_equal(out->status, CLIENT_PENDING);
	assert_int_equal(out->created_at, 300);
	/* Registered without grant types: the code flow and refresh only. */
	assert_string_equal(out->grant_types, STORE_CLIENT_DEFAULT_GRANTS);
	store_client_free(out);
	client_clear(&in);

	/* A public client with no optional fields: arrays come back empty. */
	memset(&in, 0, sizeof(in));
	in.client_id = b;
	in.name = "public";
	in.scope = "openid";
	in.public_client = true;
	in.id_token_alg = "RS256";
	in.auth_method = "none";
	in.created_at = 100;
	assert_int_equal(store_client_add(f->store, &in), 0);
	assert_int_equal(store_client_get(f->store, b, &out), 0);
	assert_non_null(out);
	assert_null(out->secret_hash);
	assert_null(out->purpose);
	assert_null(out->backchannel_logout_uri);
	assert_null(out->jwks);
	assert_true(json_is_array(out->redirect_uris));
	assert_int_equal(json_array_size(out->redirect_uris), 0);
	assert_true(json_is_array(out->post_logout_redirect_uris));
	assert_true(out->public_client);
	store_client_free(out);

	client_init(&in, c, 200);
	assert_int_equal(store_client_add(f->store, &in), 0);
	client_clear(&in);

	/* Invalid input never reaches the database. */
	client_init(&in, c, 200);
	json_decref(in.redirect_uris);
	in.redirect_uris = json_string("https://not-an-array");
	in.client_id = id(f, "d", c, sizeof(c));
	assert_int_equal(store_client_add(f->store, &in), ISSO_ERR_INVALID);
	client_clear(&in);
	assert_int_equal(store_client_get(f->store, c, &out), 0);
	assert_null(out);
	id(f, "c", c, sizeof(c));

	assert_int_equal(store_client_get(f->store, "no-such-client", &out), 0);
	assert_null(out);

	/* Ordered by created_at. */
	memset(&lctx, 0, sizeof(lctx));
	lctx.prefix = f->prefix;
	assert_int_equal(store_client_list(f->store, client_list_cb, &lctx), 0);
	assert_int_equal(lctx.n, 3);
	assert_string_equal(lctx.ids[0], b);
	assert_string_equal(lctx.ids[1], c);
	assert_string_equal(lctx.ids[2], a);
	/* Stops on a non-zero return and passes it on. */
	memset(&lctx, 0, sizeof(lctx));
	lctx.prefix = f->prefix;
	lctx.stop_after = 2;
	assert_int_equal(store_client_list(f->store, client_list_cb, &lctx), 42);
	assert_int_equal(lctx.n, 2);

	assert_int_equal(store_client_set_status(f->store, a, CLIENT_APPROVED), 0);
	assert_int_equal(store_client_set_status(f->store, a, 17), ISSO_ERR_INVALID);
	assert_int_equal(store_client_set_secret(f->store, a, "bb22"), 0);
	assert_int_equal(store_client_get(f->store, a, &out), 0);
	assert_int_equal(out->status, CLIENT_APPROVED);
	assert_string_equal(out->secret_hash, "bb22");
	store_client_free(out);
	assert_int_equal(store_client_set_secret(f->store, a, NULL), 0);
	assert_int_equal(store_client_set_status(f->store, a, CLIENT_SUSPENDED), 0);
	assert_int_equal(store_client_get(f->store, a, &out), 0);
	assert_null(out->secret_hash);
	assert_int_equal(out->status, CLIENT_SUSPENDED);
	/* Other fields untouched. */
	assert_string_equal(out->name, "臺北市政府 測試服務");
	/* A client added without settings reads back an empty object. */
	assert_true(json_is_object(out->settings));
	assert_int_equal(json_object_size(out->settings), 0);
	store_client_free(out);

	json_t *settings = json_pack("{s:b, s:s}", "require_par", 1, "note", "臺北");
	assert_int_equal(store_client_set_settings(f->store, a, settings), 0);
	assert_int_equal(store_client_set_settings(f->store, a, NULL), ISSO_ERR_INVALID);
	json_t *arr = json_array();
	assert_int_equal(store_client_set_settings(f->store, a, arr), ISSO_ERR_INVALID);
	json_decref(arr);
	assert_int_equal(store_client_get(f->store, a, &out), 0);
	assert_true(json_equal(out->settings, settings));
	assert_int_equal(out->status, CLIENT_SUSPENDED);
	store_client_free(out);
	json_decref(settings);
}

/* ---- persons and members ---- */

static void
add_person(struct fixture *f, const char *uuid, const char *id_hash)
{
	struct store_person p = {
	    .uuid = (char *)uuid,
	    .id_hash = (char *)id_hash,
	    .pii = "sealed-pii",
	    .created_at = NOW,
	    .updated_at = NOW,
	};

	assert_int_equal(store_person_add(f->store, &p), 0);
}

static void
test_person(void **state)
{
	struct fixture *f = *state;
	struct store_person p, *out = NULL;
	char u1[64], u2[64], h1[64], h2[64], h3[64];

	id(f, "u1", u1, sizeof(u1));
	id(f, "u2", u2, sizeof(u2));
	id(f, "h1", h1, sizeof(h1));
	id(f, "h2", h2, sizeof(h2));
	id(f, "h3", h3, sizeof(h3));
	add_person(f, u1, h1);

	assert_int_equal(store_person_get(f->store, u1, &out), 0);
	assert_non_null(out);
	assert_string_equal(out->uuid, u1);
	assert_string_equal(out->id_hash, h1);
	assert_string_equal(out->pii, "sealed-pii");
	assert_int_equal(out->created_at, NOW);
	assert_int_equal(out->updated_at, NOW);
	store_person_free(out);

	assert_int_equal(store_person_find_by_id_hash(f->store, h1, &out), 0);
	assert_non_null(out);
	assert_string_equal(out->uuid, u1);
	store_person_free(out);
	assert_int_equal(store_person_find_by_id_hash(f->store, h2, &out), 0);
	assert_null(out);
	assert_int_equal(store_person_get(f->store, u2, &out), 0);
	assert_null(out);

	/* Conflicts: same uuid, or same id_hash under another uuid. */
	memset(&p, 0, sizeof(p));
	p.uuid = u1;
	p.id_hash = h2;
	p.created_at = NOW;
	assert_int_equal(store_person_add(f->store, &p), ISSO_ERR_CONFLICT);
	p.uuid = u2;
	p.id_hash = h1;
	assert_int_equal(store_person_add(f->store, &p), ISSO_ERR_CONFLICT);
	assert_int_equal(store_person_get(f->store, u2, &out), 0);
	assert_null(out);

	/* A person without a national ID. */
	p.id_hash = NULL;
	assert_int_equal(store_person_add(f->store, &p), 0);
	assert_int_equal(store_person_get(f->store, u2, &out), 0);
	assert_null(out->id_hash);
	assert_null(out->pii);
	store_person_free(out);

	/* Update: pii replaced, id_hash kept when NULL, set when given. */
	assert_int_equal(store_person_update(f->store, u1, NULL, "new-pii", NOW + 5), 0);
	assert_int_equal(store_person_get(f->store, u1, &out), 0);
	assert_string_equal(out->pii, "new-pii");
	assert_string_equal(out->id_hash, h1);
	assert_int_equal(out->updated_at, NOW + 5);
	assert_int_equal(out->created_at, NOW);
	store_person_free(out);
	assert_int_equal(store_person_update(f->store, u2, h3, "p2", NOW + 6), 0);
	assert_int_equal(store_person_find_by_id_hash(f->store, h3, &out), 0);
	assert_non_null(out);
	assert_string_equal(out->uuid, u2);
	store_person_free(out);
	assert_int_equal(store_person_update(f->store, u2, h1, "p2", NOW + 7), ISSO_ERR_CONFLICT);
	assert_int_equal(store_person_get(f->store, u2, &out), 0);
	assert_string_equal(out->id_hash, h3);
	assert_int_equal(out->updated_at, NOW + 6);
	store_person_free(out);
}

static void
member_init(struct store_member *m, char *uuid, char *account, char *email, char *phone)
{
	memset(m, 0, sizeof(*m));
	m->uuid = uuid;
	m->account = account;
	m->email_hash = email;
	m->phone_hash = phone;
	m->password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA";
	m->level = MEMBER_ORDINARY;
	m->created_at = NOW;
}

static void
assert_no_member(struct fixture *f, const char *uuid)
{
	struct store_member *out = NULL;

	assert_int_equal(store_member_get(f->store, uuid, &out), 0);
	assert_null(out);
}

static void
test_member(void **state)
{
	struct fixture *f = *state;
	struct store_member m, *out = NULL;
	char u1[64], u2[64], acc1[64], acc2[64], e1[64], e2[64], p1[64], p2[64];

	id(f, "u1", u1, sizeof(u1));
	id(f, "u2", u2, sizeof(u2));
	id(f, "acc1", acc1, sizeof(acc1));
	id(f, "acc2", acc2, sizeof(acc2));
	id(f, "e1", e1, sizeof(e1));
	id(f, "e2", e2, sizeof(e2));
	id(f, "p1", p1, sizeof(p1));
	id(f, "p2", p2, sizeof(p2));
	add_person(f, u1, NULL);
	add_person(f, u2, NULL);

	member_init(&m, u1, acc1, e1, p1);
	m.level = MEMBER_GOLD;
	assert_int_equal(store_member_add(f->store, &m), 0);

	/* Each unique key conflicts, and nothing is left behind. */
	member_init(&m, u2, acc1, e2, p2);
	assert_int_equal(store_member_add(f->store, &m), ISSO_ERR_CONFLICT);
	assert_no_member(f, u2);
	member_init(&m, u2, acc2, e1, p2);
	assert_int_equal(store_member_add(f->store, &m), ISSO_ERR_CONFLICT);
	assert_no_member(f, u2);
	member_init(&m, u2, acc2, e2, p1);
	assert_int_equal(store_member_add(f->store, &m), ISSO_ERR_CONFLICT);
	assert_no_member(f, u2);
	member_init(&m, u1, acc2, e2, p2);
	assert_int_equal(store_member_add(f->store, &m), ISSO_ERR_CONFLICT);
	assert_int_equal(store_member_find(f->store, acc2, NULL, NULL, &out), 0);
	assert_null(out);

	/* A person with a member cannot be deleted; one without can (the
	 * undo of a registration that lost a race). */
	assert_int_equal(store_person_delete(f->store, u1), ISSO_ERR_CONFLICT);
	{
		struct store_person *pp = NULL;
		assert_int_equal(store_person_get(f->store, u1, &pp), 0);
		assert_non_null(pp);
		store_person_free(pp);
		assert_int_equal(store_person_delete(f->store, u2), 0);
		assert_int_equal(store_person_get(f->store, u2, &pp), 0);
		assert_null(pp);
		add_person(f, u2, NULL);
	}

	/* A member must belong to a person. */
	{
		char ghost[64];

		member_init(&m, id(f, "ghost", ghost, sizeof(ghost)), acc2, e2, p2);
		assert_true(store_member_add(f->store, &m) < 0);
		assert_no_member(f, ghost);
	}

	/* The second member has no e-mail; two NULL e-mails do not clash. */
	member_init(&m, u2, acc2, NULL, p2);
	assert_int_equal(store_member_add(f->store, &m), 0);

	assert_int_equal(store_member_get(f->store, u1, &out), 0);
	assert_non_null(out);
	assert_string_equal(out->uuid, u1);
	assert_string_equal(out->account, acc1);
	assert_string_equal(out->email_hash, e1);
	assert_string_equal(out->phone_hash, p1);
	assert_string_equal(out->password_hash, m.password_hash);
	assert_int_equal(out->level, MEMBER_GOLD);
	assert_int_equal(out->failed_logins, 0);
	assert_int_equal(out->locked_until, 0);
	assert_int_equal(out->created_at, NOW);
	store_member_free(out);

	assert_int_equal(store_member_find(f->store, acc1, NULL, NULL, &out), 0);
	assert_non_null(out);
	assert_string_equal(out->uuid, u1);
	store_member_free(out);
	assert_int_equal(store_member_find(f->store, NULL, e1, NULL, &out), 0);
	assert_non_null(out);
	assert_string_equal(out->uuid, u1);
	store_member_free(out);
	assert_int_equal(store_member_find(f->store, NULL, NULL, p2, &out), 0);
	assert_non_null(out);
	assert_string_equal(out->uuid, u2);
	assert_null(out->email_hash);
	store_member_free(out);
	assert_int_equal(store_member_find(f->store, "nobody", "nohash", "nophone", &out), 0);
	assert_null(out);
	assert_int_equal(store_member_find(f->store, NULL, NULL, NULL, &out), 0);
	assert_null(out);

	assert_int_equal(store_member_set_password(f->store, u2, "$argon2id$new"), 0);
	assert_int_equal(store_member_get(f->store, u2, &out), 0);
	assert_string_equal(out->password_hash, "$argon2id$new");
	store_member_free(out);
}

static void
test_member_lockout(void **state)
{
	struct fixture *f = *state;
	struct store_member m, *out = NULL;
	char u[64], acc[64], ph[64];
	int failures = -1;

	id(f, "u", u, sizeof(u));
	add_person(f, u, NULL);
	member_init(&m, u, id(f, "acc", acc, sizeof(acc)), NULL, id(f, "ph", ph, sizeof(ph)));
	assert_int_equal(store_member_add(f->store, &m), 0);

	assert_int_equal(store_member_login_failed(f->store, u, 3, NOW, 900, &failures), 0);
	assert_int_equal(failures, 1);
	assert_int_equal(store_member_login_failed(f->store, u, 3, NOW, 900, &failures), 0);
	assert_int_equal(failures, 2);
	assert_int_equal(store_member_get(f->store, u, &out), 0);
	assert_int_equal(out->failed_logins, 2);
	assert_int_equal(out->locked_until, 0);
	store_member_free(out);

	/* The third failure locks and resets the count. */
	assert_int_equal(store_member_login_failed(f->store, u, 3, NOW + 10, 900, &failures), 0);
	assert_int_equal(failures, 3);
	assert_int_equal(store_member_get(f->store, u, &out), 0);
	assert_int_equal(out->failed_logins, 0);
	assert_int_equal(out->locked_until, NOW + 10 + 900);
	store_member_free(out);

	assert_int_equal(store_member_login_failed(f->store, u, 3, NOW + 2000, 900, &failures), 0);
	assert_int_equal(failures, 1);

	/* Success clears both. */
	assert_int_equal(store_member_login_ok(f->store, u), 0);
	assert_int_equal(store_member_get(f->store, u, &out), 0);
	assert_int_equal(out->failed_logins, 0);
	assert_int_equal(out->locked_until, 0);
	store_member_free(out);

	/* Unknown member: nothing counted. */
	assert_int_equal(
	    store_member_login_failed(f->store, "no-such-uuid", 3, NOW, 900, &failures), 0);
	assert_int_equal(failures, 0);
}

/* ---- organisations ---- */

static void
test_org(void **state)
{
	struct fixture *f = *state;
	struct store_member m;
	struct store_org org, *out = NULL;
	char ubn1[64], ubn2[64], u1[64], u2[64], acc1[64], acc2[64], p1[64], p2[64];
	char *role = NULL;

	id(f, "ubn1", ubn1, sizeof(ubn1));
	id(f, "ubn2", ubn2, sizeof(ubn2));
	id(f, "u1", u1, sizeof(u1));
	id(f, "u2", u2, sizeof(u2));
	id(f, "acc1", acc1, sizeof(acc1));
	id(f, "acc2", acc2, sizeof(acc2));
	id(f, "p1", p1, sizeof(p1));
	id(f, "p2", p2, sizeof(p2));
	add_person(f, u1, NULL);
	add_person(f, u2, NULL);
	member_init(&m, u1, acc1, NULL, p1);
	assert_int_equal(store_member_add(f->store, &m), 0);
	member_init(&m, u2, acc2, NULL, p2);
	assert_int_equal(store_member_add(f->store, &m), 0);

	/* Unknown: success with NULL. */
	assert_int_equal(store_org_get(f->store, ubn1, &out), 0);
	assert_null(out);

	org = (struct store_org){.ubn = ubn1, .name = "臺北測試股份有限公司", .created_at = NOW};
	assert_int_equal(store_org_add(f->store, &org), 0);
	assert_int_equal(store_org_add(f->store, &org), ISSO_ERR_CONFLICT);
	org = (struct store_org){.ubn = ubn2, .name = "", .created_at = NOW};
	assert_int_equal(store_org_add(f->store, &org), ISSO_ERR_INVALID);
	org.name = NULL;
	assert_int_equal(store_org_add(f->store, &org), ISSO_ERR_INVALID);
	org = (struct store_org){.ubn = ubn2, .name = "Second Org", .created_at = NOW + 1};
	assert_int_equal(store_org_add(f->store, &org), 0);

	assert_int_equal(store_org_get(f->store, ubn1, &out), 0);
	assert_non_null(out);
	assert_string_equal(out->ubn, ubn1);
	assert_string_equal(out->name, "臺北測試股份有限公司");
	assert_int_equal(out->created_at, NOW);
	store_org_free(out);
	out = NULL;
	assert_int_equal(store_org_get(f->store, NULL, &out), ISSO_ERR_INVALID);
	assert_null(out);

	/* Not a member until added; membership is per organisation. */
	assert_int_equal(store_org_member_role(f->store, ubn1, u1, &role), 0);
	assert_null(role);
	assert_int_equal(store_org_member_add(f->store, ubn1, u1, "負責人", NOW), 0);
	assert_int_equal(store_org_member_add(f->store, ubn1, u1, "other", NOW), ISSO_ERR_CONFLICT);
	assert_int_equal(store_org_member_add(f->store, ubn2, u2, NULL, NOW), 0);
	assert_int_equal(store_org_member_role(f->store, ubn1, u1, &role), 0);
	assert_non_null(role);
	assert_string_equal(role, "負責人");
	free(role);
	role = NULL;
	assert_int_equal(store_org_member_role(f->store, ubn2, u2, &role), 0);
	assert_non_null(role);
	assert_string_equal(role, "");
	free(role);
	role = NULL;
	assert_int_equal(store_org_member_role(f->store, ubn1, u2, &role), 0);
	assert_null(role);
	assert_int_equal(store_org_member_role(f->store, ubn2, u1, &role), 0);
	assert_null(role);

	/* Unknown organisation or member; missing arguments. */
	assert_int_equal(store_org_member_add(f->store, "no-such-org", u1, NULL, NOW),
	                 ISSO_ERR_INVALID);
	assert_int_equal(store_org_member_add(f->store, ubn1, "no-such-member", NULL, NOW),
	                 ISSO_ERR_INVALID);
	assert_int_equal(store_org_member_add(f->store, NULL, u1, NULL, NOW), ISSO_ERR_INVALID);
	assert_int_equal(store_org_member_role(f->store, ubn1, NULL, &role), ISSO_ERR_INVALID);
	assert_null(role);
}

/* Listing, removing organisations and members; memberships of a member. */
static void
test_org_remove(void **state)
{
	struct fixture *f = *state;
	struct store_member m;
	struct store_org org, *list = NULL, *out = NULL;
	struct store_org_membership *ms = NULL;
	char ubn1[64], ubn2[64], u1[64], acc1[64], p1[64];
	char *role = NULL;
	size_t n = 0, seen = 0;
	bool found = false;

	id(f, "ubn1", ubn1, sizeof(ubn1));
	id(f, "ubn2", ubn2, sizeof(ubn2));
	id(f, "u1", u1, sizeof(u1));
	id(f, "acc1", acc1, sizeof(acc1));
	id(f, "p1", p1, sizeof(p1));
	add_person(f, u1, NULL);
	member_init(&m, u1, acc1, NULL, p1);
	assert_int_equal(store_member_add(f->store, &m), 0);
	org = (struct store_org){.ubn = ubn1, .name = "First", .created_at = NOW};
	assert_int_equal(store_org_add(f->store, &org), 0);
	org = (struct store_org){.ubn = ubn2, .name = "Second", .created_at = NOW};
	assert_int_equal(store_org_add(f->store, &org), 0);
	assert_int_equal(store_org_member_add(f->store, ubn1, u1, "admin", NOW), 0);
	assert_int_equal(store_org_member_add(f->store, ubn2, u1, NULL, NOW), 0);

	assert_int_equal(store_org_list(f->store, STORE_ORG_LIST_MAX, &list, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i].ubn, ubn1) == 0) {
			assert_string_equal(list[i].name, "First");
			seen++;
		}
		if (strcmp(list[i].ubn, ubn2) == 0)
			seen++;
	}
	assert_int_equal(seen, 2);
	store_org_list_free(list, n);
	/* The bound holds. */
	assert_int_equal(store_org_list(f->store, 1, &list, &n), 0);
	assert_int_equal(n, 1);
	store_org_list_free(list, n);

	assert_int_equal(store_org_memberships(f->store, u1, STORE_MEMBERSHIPS_MAX, &ms, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ms[0].ubn, strcmp(ubn1, ubn2) < 0 ? ubn1 : ubn2);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(ms[i].role, strcmp(ms[i].ubn, ubn1) == 0 ? "admin" : "");
	store_org_memberships_free(ms, n);
	ms = NULL;

	/* A member leaves one organisation. */
	assert_int_equal(store_org_member_remove(f->store, ubn2, u1, &found), 0);
	assert_true(found);
	assert_int_equal(store_org_member_remove(f->store, ubn2, u1, &found), 0);
	assert_false(found);
	assert_int_equal(store_org_member_role(f->store, ubn2, u1, &role), 0);
	assert_null(role);
	assert_int_equal(store_org_memberships(f->store, u1, STORE_MEMBERSHIPS_MAX, &ms, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ms[0].ubn, ubn1);
	store_org_memberships_free(ms, n);

	/* An organisation goes with its members' right to act for it. */
	assert_int_equal(store_org_remove(f->store, ubn1, &found), 0);
	assert_true(found);
	assert_int_equal(store_org_get(f->store, ubn1, &out), 0);
	assert_null(out);
	assert_int_equal(store_org_member_role(f->store, ubn1, u1, &role), 0);
	assert_null(role);
	assert_int_equal(store_org_remove(f->store, ubn1, &found), 0);
	assert_false(found);
	/* Added again, nobody acts for it. */
	org = (struct store_org){.ubn = ubn1, .name = "First again", .created_at = NOW};
	assert_int_equal(store_org_add(f->store, &org), 0);
	assert_int_equal(store_org_member_role(f->store, ubn1, u1, &role), 0);
	assert_null(role);
	assert_int_equal(store_org_remove(f->store, NULL, &found), ISSO_ERR_INVALID);
}

/* iSSO's own roles. */
static void
test_roles(void **state)
{
	struct fixture *f = *state;
	char u1[64], u2[64];
	bool has = true, found = false;

	id(f, "u1", u1, sizeof(u1));
	id(f, "u2", u2, sizeof(u2));
	add_person(f, u1, NULL);
	add_person(f, u2, NULL);
	assert_int_equal(store_role_has(f->store, u1, STORE_ROLE_CITY_ADMIN, &has), 0);
	assert_false(has);
	assert_int_equal(store_role_grant(f->store, u1, STORE_ROLE_CITY_ADMIN, NOW), 0);
	assert_int_equal(store_role_grant(f->store, u1, STORE_ROLE_CITY_ADMIN, NOW),
	                 ISSO_ERR_CONFLICT);
	assert_int_equal(store_role_has(f->store, u1, STORE_ROLE_CITY_ADMIN, &has), 0);
	assert_true(has);
	assert_int_equal(store_role_has(f->store, u2, STORE_ROLE_CITY_ADMIN, &has), 0);
	assert_false(has);
	assert_int_equal(store_role_has(f->store, u1, "other", &has), 0);
	assert_false(has);
	/* Only persons hold roles. */
	assert_true(store_role_grant(f->store, "no-such-person", STORE_ROLE_CITY_ADMIN, NOW) < 0);
	assert_int_equal(store_role_revoke(f->store, u1, STORE_ROLE_CITY_ADMIN, &found), 0);
	assert_true(found);
	assert_int_equal(store_role_revoke(f->store, u1, STORE_ROLE_CITY_ADMIN, &found), 0);
	assert_false(found);
	assert_int_equal(store_role_has(f->store, u1, STORE_ROLE_CITY_ADMIN, &has), 0);
	assert_false(has);
	assert_int_equal(store_role_grant(f->store, u1, "", NOW), ISSO_ERR_INVALID);
}

/* ---- TaipeiPass app device keys ---- */

static void
test_devices(void **state)
{
	struct fixture *f = *state;
	struct store_member m;
	struct store_device d, *out = NULL, *list = NULL;
	char u1[64], u2[64], acc1[64], acc2[64], p1[64], p2[64], d1[64], d2[64], d3[64];
	size_t n = 0;
	bool found = true;
	int count = -1;

	id(f, "du1", u1, sizeof(u1));
	id(f, "du2", u2, sizeof(u2));
	id(f, "dacc1", acc1, sizeof(acc1));
	id(f, "dacc2", acc2, sizeof(acc2));
	id(f, "dp1", p1, sizeof(p1));
	id(f, "dp2", p2, sizeof(p2));
	id(f, "dev1", d1, sizeof(d1));
	id(f, "dev2", d2, sizeof(d2));
	id(f, "dev3", d3, sizeof(d3));
	add_person(f, u1, NULL);
	add_person(f, u2, NULL);
	member_init(&m, u1, acc1, NULL, p1);
	assert_int_equal(store_member_add(f->store, &m), 0);
	member_init(&m, u2, acc2, NULL, p2);
	assert_int_equal(store_member_add(f->store, &m), 0);

	assert_int_equal(store_device_get(f->store, d1, &out), 0);
	assert_null(out);
	d = (struct store_device){
	    .id = d1, .uuid = u1, .jwk = "{\"kty\":\"EC\"}", .name = "手機", .created_at = NOW};
	assert_int_equal(store_device_add(f->store, &d), 0);
	assert_int_equal(store_device_add(f->store, &d), ISSO_ERR_CONFLICT);
	d = (struct store_device){.id = d2, .uuid = u1, .jwk = "{}", .created_at = NOW + 1};
	assert_int_equal(store_device_add(f->store, &d), 0);
	d = (struct store_device){.id = d3, .uuid = u2, .jwk = "{}", .created_at = NOW};
	assert_int_equal(store_device_add(f->store, &d), 0);
	/* An unknown member holds no device. */
	d = (struct store_device){.id = "x", .uuid = "no-such-member", .jwk = "{}"};
	assert_true(store_device_add(f->store, &d) < 0);
	d.jwk = NULL;
	assert_int_equal(store_device_add(f->store, &d), ISSO_ERR_INVALID);

	assert_int_equal(store_device_get(f->store, d1, &out), 0);
	assert_non_null(out);
	assert_string_equal(out->uuid, u1);
	assert_string_equal(out->jwk, "{\"kty\":\"EC\"}");
	assert_string_equal(out->name, "手機");
	assert_int_equal(out->created_at, NOW);
	assert_int_equal(out->last_used_at, 0);
	assert_int_equal(out->revoked_at, 0);
	store_device_free(out);
	out = NULL;

	assert_int_equal(store_device_use(f->store, d1, NOW + 5, &found), 0);
	assert_true(found);
	assert_int_equal(store_device_use(f->store, "unknown", NOW + 5, &found), 0);
	assert_false(found);

	/* Oldest first, the member's own only, at most max. */
	assert_int_equal(store_device_list(f->store, u1, 10, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, d1);
	assert_int_equal(list[0].last_used_at, NOW + 5);
	assert_string_equal(list[1].id, d2);
	assert_string_equal(list[1].name, "");
	store_device_list_free(list, n);
	assert_int_equal(store_device_list(f->store, u1, 1, &list, &n), 0);
	assert_int_equal(n, 1);
	store_device_list_free(list, n);
	assert_int_equal(store_device_list(f->store, u1, 0, &list, &n), ISSO_ERR_INVALID);

	/* Revoking one: only the owner's, once; a revoked key is not used. */
	assert_int_equal(store_device_revoke(f->store, u2, d1, NOW + 6, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_device_revoke(f->store, u1, d1, NOW + 6, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(store_device_revoke(f->store, u1, d1, NOW + 7, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_device_use(f->store, d1, NOW + 8, &found), 0);
	assert_false(found);
	assert_int_equal(store_device_get(f->store, d1, &out), 0);
	assert_int_equal(out->revoked_at, NOW + 6);
	assert_int_equal(out->last_used_at, NOW + 5);
	store_device_free(out);
	out = NULL;

	/* All of a member's (a password reset): the other member's stay. */
	assert_int_equal(store_device_revoke(f->store, u1, NULL, NOW + 9, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(store_device_use(f->store, d2, NOW + 10, &found), 0);
	assert_false(found);
	assert_int_equal(store_device_use(f->store, d3, NOW + 10, &found), 0);
	assert_true(found);
	assert_int_equal(store_device_list(f->store, u1, 10, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[1].revoked_at, NOW + 9);
	store_device_list_free(list, n);
}

/* ---- consents ---- */

static void
test_consent(void **state)
{
	struct fixture *f = *state;
	char u[64], c1[64], c2[64], *scope = NULL;

	id(f, "u", u, sizeof(u));
	id(f, "c1", c1, sizeof(c1));
	id(f, "c2", c2, sizeof(c2));
	assert_int_equal(store_consent_get(f->store, u, c1, &scope), 0);
	assert_null(scope);
	assert_int_equal(store_consent_put(f->store, u, c1, "openid profile", NOW), 0);
	assert_int_equal(store_consent_put(f->store, u, c2, "openid", NOW), 0);
	assert_int_equal(store_consent_get(f->store, u, c1, &scope), 0);
	assert_string_equal(scope, "openid profile");
	free(scope);
	assert_int_equal(store_consent_put(f->store, u, c1, "openid email", NOW + 1), 0);
	assert_int_equal(store_consent_get(f->store, u, c1, &scope), 0);
	assert_string_equal(scope, "openid email");
	free(scope);
	assert_int_equal(store_consent_delete(f->store, u, c1), 0);
	assert_int_equal(store_consent_get(f->store, u, c1, &scope), 0);
	assert_null(scope);
	assert_int_equal(store_consent_get(f->store, u, c2, &scope), 0);
	assert_string_equal(scope, "openid");
	free(scope);
	assert_int_equal(store_consent_delete(f->store, u, c1), 0);
}

/* ---- consent records and releases ---- */

struct seen_ctx {
	int n;
	char seen[8][160];
	int stop_after;
};

static int
consent_seen(const struct store_consent *c, void *ctx)
{
	struct seen_ctx *l = ctx;

	if (l->n < 8)
		snprintf(l->seen[l->n], sizeof(l->seen[0]), "%s|%s|%s|%lld|%lld", c->client_id,
		         c->scope, json_string_value(json_object_get(c->record, "notice")) ?: "-",
		         (long long)c->created_at, (long long)c->updated_at);
	l->n++;
	return l->stop_after > 0 && l->n >= l->stop_after ? 7 : 0;
}

static int
release_seen(const struct store_release *r, void *ctx)
{
	struct seen_ctx *l = ctx;

	if (l->n < 8)
		snprintf(l->seen[l->n], sizeof(l->seen[0]), "%s|%lld|%s", r->client_id,
		         (long long)r->ts,
		         json_string_value(json_object_get(r->data, "method")) ?: "-");
	l->n++;
	return l->stop_after > 0 && l->n >= l->stop_after ? 7 : 0;
}

static void
test_consent_records_releases(void **state)
{
	struct fixture *f = *state;
	char u[64], u2[64], c1[64], c2[64], want[160], *scope = NULL;
	struct seen_ctx l;
	json_t *rec = json_pack("{s:s, s:[s]}", "notice", "2026-12", "declined", "email");
	json_t *data;

	id(f, "u", u, sizeof(u));
	id(f, "u2", u2, sizeof(u2));
	id(f, "c1", c1, sizeof(c1));
	id(f, "c2", c2, sizeof(c2));
	/* A consent given before records existed reads with an empty one. */
	assert_int_equal(store_consent_put(f->store, u, c1, "openid", NOW), 0);
	assert_int_equal(store_consent_record(f->store, u, c2, "openid profile", rec, NOW + 1), 0);
	assert_int_equal(store_consent_put(f->store, u2, c1, "openid", NOW), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_consent_list(f->store, u, consent_seen, &l), 0);
	assert_int_equal(l.n, 2);
	snprintf(want, sizeof(want), "%s|openid|-|%lld|%lld", c1, (long long)NOW, (long long)NOW);
	assert_string_equal(l.seen[0], want);
	snprintf(want, sizeof(want), "%s|openid profile|2026-12|%lld|%lld", c2, (long long)NOW + 1,
	         (long long)NOW + 1);
	assert_string_equal(l.seen[1], want);
	/* A new record replaces the scopes and record, keeps when it began;
	 * the plain put still works beside it. */
	json_object_set_new(rec, "notice", json_string("2027-01"));
	assert_int_equal(store_consent_record(f->store, u, c1, "openid email", rec, NOW + 5), 0);
	assert_int_equal(store_consent_get(f->store, u, c1, &scope), 0);
	assert_string_equal(scope, "openid email");
	free(scope);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_consent_list(f->store, u, consent_seen, &l), 0);
	snprintf(want, sizeof(want), "%s|openid email|2027-01|%lld|%lld", c1, (long long)NOW,
	         (long long)NOW + 5);
	assert_string_equal(l.seen[0], want);
	/* fn stops the walk with its own value; a withdrawn consent is gone. */
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	assert_int_equal(store_consent_list(f->store, u, consent_seen, &l), 7);
	assert_int_equal(l.n, 1);
	assert_int_equal(store_consent_delete(f->store, u, c1), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_consent_list(f->store, u, consent_seen, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(store_consent_record(f->store, u, c1, "openid", NULL, NOW),
	                 ISSO_ERR_INVALID);
	assert_int_equal(store_consent_list(f->store, NULL, consent_seen, &l), ISSO_ERR_INVALID);
	json_decref(rec);

	/* Releases: newest first, per person, bounded by the limit. */
	data = json_pack("{s:s, s:[s, s]}", "method", "taipeipass", "fields", "name", "email");
	assert_int_equal(store_release_add(f->store, u, c1, NOW, data), 0);
	json_object_set_new(data, "method", json_string("moica-card"));
	assert_int_equal(store_release_add(f->store, u, c2, NOW + 2, data), 0);
	assert_int_equal(store_release_add(f->store, u, c1, NOW + 2, data), 0);
	assert_int_equal(store_release_add(f->store, u2, c1, NOW + 3, data), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_release_list(f->store, u, 10, release_seen, &l), 0);
	assert_int_equal(l.n, 3);
	/* Equal times: the later written first. */
	snprintf(want, sizeof(want), "%s|%lld|moica-card", c1, (long long)NOW + 2);
	assert_string_equal(l.seen[0], want);
	snprintf(want, sizeof(want), "%s|%lld|moica-card", c2, (long long)NOW + 2);
	assert_string_equal(l.seen[1], want);
	snprintf(want, sizeof(want), "%s|%lld|taipeipass", c1, (long long)NOW);
	assert_string_equal(l.seen[2], want);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_release_list(f->store, u, 2, release_seen, &l), 0);
	assert_int_equal(l.n, 2);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_release_list(f->store, "nobody", 10, release_seen, &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(store_release_add(f->store, u, c1, NOW, NULL), ISSO_ERR_INVALID);
	assert_int_equal(store_release_list(f->store, u, 0, release_seen, &l), ISSO_ERR_INVALID);
	json_decref(data);
}

/* ---- tokens ---- */

static void
add_token(struct fixture *f, const char *hash, int kind, const char *grant, const char *client,
          const char *uuid, int64_t expires_at)
{
	struct store_token t = {
	    .hash = (char *)hash,
	    .kind = kind,
	    .grant_id = (char *)grant,
	    .client_id = (char *)client,
	    .uuid = (char *)uuid,
	    .sid = "sid-1",
	    .scope = "openid",
	    .data = json_pack("{ss}", "nonce", "n-0S6_WzA2Mj"),
	    .created_at = NOW,
	    .expires_at = expires_at,
	};

	assert_int_equal(store_token_add(f->store, &t), 0);
	json_decref(t.data);
}

static bool
token_revoked(struct fixture *f, const char *hash)
{
	struct store_token *t = NULL;
	bool revoked;

	assert_int_equal(store_token_get(f->store, hash, NOW, &t), 0);
	assert_non_null(t);
	revoked = t->revoked;
	store_token_free(t);
	return revoked;
}

static void
test_token(void **state)
{
	struct fixture *f = *state;
	struct store_token *t = NULL, bad;
	char h1[64], h2[64], h3[64], g[64], cl[64], u[64];
	bool won = true;

	id(f, "h1", h1, sizeof(h1));
	id(f, "h2", h2, sizeof(h2));
	id(f, "h3", h3, sizeof(h3));
	id(f, "g", g, sizeof(g));
	id(f, "cl", cl, sizeof(cl));
	id(f, "u", u, sizeof(u));
	add_token(f, h1, TOKEN_CODE, g, cl, u, NOW + 60);

	assert_int_equal(store_token_get(f->store, h1, NOW, &t), 0);
	assert_non_null(t);
	assert_string_equal(t->hash, h1);
	assert_int_equal(t->kind, TOKEN_CODE);
	assert_string_equal(t->grant_id, g);
	assert_string_equal(t->client_id, cl);
	assert_string_equal(t->uuid, u);
	assert_string_equal(t->sid, "sid-1");
	assert_string_equal(t->scope, "openid");
	assert_string_equal(json_string_value(json_object_get(t->data, "nonce")), "n-0S6_WzA2Mj");
	assert_int_equal(t->created_at, NOW);
	assert_int_equal(t->expires_at, NOW + 60);
	assert_false(t->used);
	assert_false(t->revoked);
	store_token_free(t);

	/* Duplicate hash. */
	memset(&bad, 0, sizeof(bad));
	bad.hash = h1;
	bad.kind = TOKEN_ACCESS;
	bad.grant_id = g;
	bad.client_id = cl;
	bad.scope = "";
	bad.expires_at = NOW + 60;
	assert_int_equal(store_token_add(f->store, &bad), ISSO_ERR_CONFLICT);
	/* Bad kind: refused, nothing written. */
	bad.hash = h3;
	bad.kind = 9;
	assert_int_equal(store_token_add(f->store, &bad), ISSO_ERR_INVALID);
	assert_int_equal(store_token_get(f->store, h3, NOW, &t), 0);
	assert_null(t);

	/* Expiry hides the token: valid while now < expires_at. */
	assert_int_equal(store_token_get(f->store, h1, NOW + 59, &t), 0);
	assert_non_null(t);
	store_token_free(t);
	assert_int_equal(store_token_get(f->store, h1, NOW + 60, &t), 0);
	assert_null(t);
	assert_int_equal(store_token_get(f->store, "unknown", NOW, &t), 0);
	assert_null(t);

	/* Expired tokens cannot be used. */
	assert_int_equal(store_token_use(f->store, h1, NOW + 60, &won), 0);
	assert_false(won);
	/* Single use. */
	assert_int_equal(store_token_use(f->store, h1, NOW, &won), 0);
	assert_true(won);
	assert_int_equal(store_token_use(f->store, h1, NOW, &won), 0);
	assert_false(won);
	/* Used tokens stay visible so replays can be detected. */
	assert_int_equal(store_token_get(f->store, h1, NOW, &t), 0);
	assert_non_null(t);
	assert_true(t->used);
	store_token_free(t);
	assert_int_equal(store_token_use(f->store, "unknown", NOW, &won), 0);
	assert_false(won);

	/* Revoked tokens cannot be used, and stay visible. */
	add_token(f, h2, TOKEN_REFRESH, g, cl, NULL, NOW + 3600);
	assert_int_equal(store_token_revoke(f->store, h2), 0);
	assert_true(token_revoked(f, h2));
	assert_int_equal(store_token_use(f->store, h2, NOW, &won), 0);
	assert_false(won);
	assert_int_equal(store_token_get(f->store, h2, NOW, &t), 0);
	assert_null(t->uuid);
	assert_false(t->used);
	store_token_free(t);
	assert_int_equal(store_token_revoke(f->store, "unknown"), 0);
}

static void
test_token_revoke_sets(void **state)
{
	struct fixture *f = *state;
	char ga[64], gb[64], c1[64], c2[64], u1[64], u2[64];
	char a1[64], a2[64], a3[64], b1[64], x1[64], x2[64], x3[64];

	id(f, "ga", ga, sizeof(ga));
	id(f, "gb", gb, sizeof(gb));
	id(f, "c1", c1, sizeof(c1));
	id(f, "c2", c2, sizeof(c2));
	id(f, "u1", u1, sizeof(u1));
	id(f, "u2", u2, sizeof(u2));
	add_token(f, id(f, "a1", a1, sizeof(a1)), TOKEN_CODE, ga, c1, u1, NOW + 60);
	add_token(f, id(f, "a2", a2, sizeof(a2)), TOKEN_ACCESS, ga, c1, u1, NOW + 60);
	add_token(f, id(f, "a3", a3, sizeof(a3)), TOKEN_REFRESH, ga, c1, u1, NOW + 60);
	add_token(f, id(f, "b1", b1, sizeof(b1)), TOKEN_ACCESS, gb, c1, u1, NOW + 60);

	assert_int_equal(store_token_revoke_grant(f->store, ga), 0);
	assert_true(token_revoked(f, a1));
	assert_true(token_revoked(f, a2));
	assert_true(token_revoked(f, a3));
	assert_false(token_revoked(f, b1));

	/* Client + person: only that pair. */
	add_token(f, id(f, "x1", x1, sizeof(x1)), TOKEN_ACCESS, gb, c2, u1, NOW + 60);
	add_token(f, id(f, "x2", x2, sizeof(x2)), TOKEN_ACCESS, gb, c2, u2, NOW + 60);
	add_token(f, id(f, "x3", x3, sizeof(x3)), TOKEN_ACCESS, gb, c1, u2, NOW + 60);
	assert_int_equal(store_token_revoke_client_person(f->store, c2, u1), 0);
	assert_true(token_revoked(f, x1));
	assert_false(token_revoked(f, x2));
	assert_false(token_revoked(f, x3));
	assert_false(token_revoked(f, b1));
	/* Person: every client's tokens of that person, nobody else's. */
	assert_int_equal(store_token_revoke_person(f->store, u2), 0);
	assert_true(token_revoked(f, x2));
	assert_true(token_revoked(f, x3));
	assert_false(token_revoked(f, b1));
}

static bool
token_exists(struct fixture *f, const char *hash)
{
	struct store_token *t = NULL;
	bool found;

	assert_int_equal(store_token_get(f->store, hash, NOW, &t), 0);
	found = t != NULL;
	store_token_free(t);
	return found;
}

static bool
token_used(struct fixture *f, const char *hash)
{
	struct store_token *t = NULL;
	bool used;

	assert_int_equal(store_token_get(f->store, hash, NOW, &t), 0);
	assert_non_null(t);
	used = t->used;
	store_token_free(t);
	return used;
}

/* A token request's writes, one transaction: the code spent and the new
 * tokens added, all or nothing. */
static void
test_token_exchange(void **state)
{
	struct fixture *f = *state;
	struct store_token rows[STORE_TOKEN_EXCHANGE_MAX + 1], *t = NULL;
	char code[64], code2[64], code3[64], code4[64], at[64], rt[64], at2[64], rt2[64], cc[64],
	    g[64];
	char cl[64], u[64];
	bool won = true;

	id(f, "code", code, sizeof(code));
	id(f, "code2", code2, sizeof(code2));
	id(f, "code3", code3, sizeof(code3));
	id(f, "code4", code4, sizeof(code4));
	id(f, "at", at, sizeof(at));
	id(f, "rt", rt, sizeof(rt));
	id(f, "at2", at2, sizeof(at2));
	id(f, "rt2", rt2, sizeof(rt2));
	id(f, "cc", cc, sizeof(cc));
	id(f, "g", g, sizeof(g));
	id(f, "cl", cl, sizeof(cl));
	id(f, "u", u, sizeof(u));
	add_token(f, code, TOKEN_CODE, g, cl, u, NOW + 60);
	memset(rows, 0, sizeof(rows));
	for (size_t i = 0; i < ISSO_N_ELEMENTS(rows); i++) {
		rows[i].kind = TOKEN_ACCESS;
		rows[i].grant_id = g;
		rows[i].client_id = cl;
		rows[i].uuid = u;
		rows[i].sid = "sid-1";
		rows[i].scope = "openid";
		rows[i].created_at = NOW;
		rows[i].expires_at = NOW + 600;
	}
	rows[0].hash = at;
	rows[0].data = json_pack("{ss}", "claims", "sealed");
	rows[1].hash = rt;
	rows[1].kind = TOKEN_REFRESH;
	rows[1].scope = "openid offline_access";
	rows[1].expires_at = NOW + 3600;

	/* Success: the code used, both tokens there as given. */
	assert_int_equal(store_token_exchange(f->store, code, NOW, rows, 2, &won), 0);
	assert_true(won);
	assert_true(token_used(f, code));
	assert_int_equal(store_token_get(f->store, at, NOW, &t), 0);
	assert_non_null(t);
	assert_int_equal(t->kind, TOKEN_ACCESS);
	assert_string_equal(t->grant_id, g);
	assert_string_equal(t->uuid, u);
	assert_string_equal(t->sid, "sid-1");
	assert_string_equal(json_string_value(json_object_get(t->data, "claims")), "sealed");
	assert_int_equal(t->expires_at, NOW + 600);
	assert_false(t->used);
	store_token_free(t);
	assert_int_equal(store_token_get(f->store, rt, NOW, &t), 0);
	assert_non_null(t);
	assert_int_equal(t->kind, TOKEN_REFRESH);
	assert_string_equal(t->scope, "openid offline_access");
	assert_int_equal(t->expires_at, NOW + 3600);
	store_token_free(t);

	/* The code already used: not won, nothing written. */
	rows[0].hash = at2;
	rows[1].hash = rt2;
	assert_int_equal(store_token_exchange(f->store, code, NOW, rows, 2, &won), 0);
	assert_false(won);
	assert_false(token_exists(f, at2));
	assert_false(token_exists(f, rt2));
	/* Unknown, expired or revoked: likewise. */
	won = true;
	assert_int_equal(store_token_exchange(f->store, "unknown", NOW, rows, 2, &won), 0);
	assert_false(won);
	add_token(f, code2, TOKEN_CODE, g, cl, u, NOW + 60);
	won = true;
	assert_int_equal(store_token_exchange(f->store, code2, NOW + 60, rows, 2, &won), 0);
	assert_false(won);
	add_token(f, code3, TOKEN_REFRESH, g, cl, u, NOW + 60);
	assert_int_equal(store_token_revoke(f->store, code3), 0);
	won = true;
	assert_int_equal(store_token_exchange(f->store, code3, NOW, rows, 2, &won), 0);
	assert_false(won);
	assert_false(token_exists(f, at2));
	assert_false(token_exists(f, rt2));

	/* A later insert fails (its hash is taken): the code stays unused
	 * and the token before it is not added. */
	rows[0].hash = at2;
	rows[1].hash = rt; /* taken above */
	won = true;
	assert_int_equal(store_token_exchange(f->store, code2, NOW, rows, 2, &won),
	                 ISSO_ERR_CONFLICT);
	assert_false(won);
	assert_false(token_used(f, code2));
	assert_false(token_exists(f, at2));
	/* … and can be redeemed afterwards. */
	rows[1].hash = rt2;
	assert_int_equal(store_token_exchange(f->store, code2, NOW, rows, 2, &won), 0);
	assert_true(won);
	assert_true(token_used(f, code2));
	assert_true(token_exists(f, at2));
	assert_true(token_exists(f, rt2));

	/* Nothing to spend (client_credentials): the tokens only. */
	rows[0].hash = cc;
	won = false;
	assert_int_equal(store_token_exchange(f->store, NULL, NOW, rows, 1, &won), 0);
	assert_true(won);
	assert_true(token_exists(f, cc));

	/* Refused before the store: no token, too many, a bad one. The code
	 * stays unused. */
	add_token(f, code4, TOKEN_CODE, g, cl, u, NOW + 60);
	won = true;
	assert_int_equal(store_token_exchange(f->store, code4, NOW, rows, 0, &won),
	                 ISSO_ERR_INVALID);
	assert_false(won);
	assert_int_equal(store_token_exchange(f->store, code4, NOW, NULL, 1, &won),
	                 ISSO_ERR_INVALID);
	assert_int_equal(
	    store_token_exchange(f->store, code4, NOW, rows, STORE_TOKEN_EXCHANGE_MAX + 1, &won),
	    ISSO_ERR_INVALID);
	rows[0].kind = 9;
	assert_int_equal(store_token_exchange(f->store, code4, NOW, rows, 1, &won),
	                 ISSO_ERR_INVALID);
	rows[0].kind = TOKEN_ACCESS;
	rows[1].scope = NULL;
	assert_int_equal(store_token_exchange(f->store, code4, NOW, rows, 2, &won),
	                 ISSO_ERR_INVALID);
	assert_false(token_used(f, code4));
	json_decref(rows[0].data);
}

#define RACE_THREADS 8
#define RACE_TOKENS  16

struct race {
	struct store *store;
	bool exchange; /* store_token_exchange instead of store_token_use */
	pthread_barrier_t barrier;
	char hashes[RACE_TOKENS][64];
	int wins[RACE_THREADS][RACE_TOKENS];
	int errors[RACE_THREADS];
};

struct race_arg {
	struct race *race;
	int n;
};

/* The hash of the token of kind ("at", "rt") that thread n adds when it
 * redeems race code k. */
static void
race_token_hash(struct race *r, int k, int n, const char *kind, char *buf, size_t size)
{
	snprintf(buf, size, "%s-%d-%s", r->hashes[k], n, kind);
}

/* Thread n redeems code k for an access and a refresh token. */
static int
race_exchange(struct race *r, int k, int n, bool *won_r)
{
	char at[96], rt[96];
	struct store_token t[2] = {
	    {.hash = at,
	     .kind = TOKEN_ACCESS,
	     .grant_id = "race-g",
	     .client_id = "race-c",
	     .scope = "openid",
	     .created_at = NOW,
	     .expires_at = NOW + 600},
	    {.hash = rt,
	     .kind = TOKEN_REFRESH,
	     .grant_id = "race-g",
	     .client_id = "race-c",
	     .scope = "openid",
	     .created_at = NOW,
	     .expires_at = NOW + 3600},
	};

	race_token_hash(r, k, n, "at", at, sizeof(at));
	race_token_hash(r, k, n, "rt", rt, sizeof(rt));
	return store_token_exchange(r->store, r->hashes[k], NOW, t, 2, won_r);
}

static void *
race_thread(void *p)
{
	struct race_arg *arg = p;
	struct race *r = arg->race;
	bool won;

	pthread_barrier_wait(&r->barrier);
	for (int i = 0; i < RACE_TOKENS; i++) {
		/* Start at different tokens too, so threads collide. */
		int k = (i + arg->n) % RACE_TOKENS;

		won = false;
		if (r->exchange) {
			if (race_exchange(r, k, arg->n, &won) < 0)
				r->errors[arg->n]++;
			else if (won)
				r->wins[arg->n][k]++;
			continue;
		}
		if (store_token_use(r->store, r->hashes[k], NOW, &won) < 0)
			r->errors[arg->n]++;
		else if (won)
			r->wins[arg->n][k]++;
	}
	return NULL;
}

/* An update replaces what may change, only while the status is as expected. */
static void
test_client_update(void **state)
{
	struct fixture *f = *state;
	struct store_client in, *out = NULL;
	char a[64];
	bool found = false;

	id(f, "a", a, sizeof(a));
	client_init(&in, a, 300);
	assert_int_equal(store_client_add(f->store, &in), 0);
	client_clear(&in);

	assert_int_equal(store_client_get(f->store, a, &out), 0);
	json_decref(out->redirect_uris);
	out->redirect_uris = json_pack("[s]", "https://b.example/cb");
	free(out->name);
	out->name = strdup("新名稱");
	free(out->scope);
	out->scope = strdup("openid email");
	free(out->secret_hash);
	out->secret_hash = NULL;
	json_decref(out->settings);
	out->settings = json_pack("{s:{s:s}}", "application", "state", "approved");
	out->status = CLIENT_APPROVED;
	/* Expected approved, but it is pending: nothing changes. */
	assert_int_equal(store_client_update(f->store, out, CLIENT_APPROVED, &found), 0);
	assert_false(found);
	assert_int_equal(store_client_update(f->store, out, CLIENT_PENDING, &found), 0);
	assert_true(found);
	store_client_free(out);
	out = NULL;

	assert_int_equal(store_client_get(f->store, a, &out), 0);
	assert_string_equal(out->name, "新名稱");
	assert_string_equal(out->scope, "openid email");
	assert_null(out->secret_hash);
	assert_int_equal(out->status, CLIENT_APPROVED);
	assert_int_equal(json_array_size(out->redirect_uris), 1);
	assert_string_equal(json_string_value(json_array_get(out->redirect_uris, 0)),
	                    "https://b.example/cb");
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(out->settings, "application"), "state")),
	                    "approved");
	assert_int_equal(out->created_at, 300);
	/* A second decision expecting pending loses. */
	assert_int_equal(store_client_update(f->store, out, CLIENT_PENDING, &found), 0);
	assert_false(found);
	/* A change of the settings after the read (the status as expected)
	 * makes an update from that read lose: nothing is written back. */
	{
		json_t *now = json_pack("{s:{s:s}}", "application", "state", "suspended meanwhile");
		assert_int_equal(store_client_set_settings(f->store, a, now), 0);
		free(out->name);
		out->name = strdup("舊讀取");
		assert_int_equal(store_client_update(f->store, out, CLIENT_APPROVED, &found), 0);
		assert_false(found);
		store_client_free(out);
		out = NULL;
		assert_int_equal(store_client_get(f->store, a, &out), 0);
		assert_string_equal(out->name, "新名稱");
		assert_true(json_equal(out->settings, now));
		json_decref(now);
	}
	/* A secret rotated after the read stays: an update never writes the
	 * secret it read. */
	assert_int_equal(store_client_set_secret(f->store, a, "hash-before"), 0);
	store_client_free(out);
	out = NULL;
	assert_int_equal(store_client_get(f->store, a, &out), 0);
	assert_string_equal(out->secret_hash, "hash-before");
	assert_int_equal(store_client_set_secret(f->store, a, "hash-rotated"), 0);
	free(out->name);
	out->name = strdup("改名");
	assert_int_equal(store_client_update(f->store, out, CLIENT_APPROVED, &found), 0);
	assert_true(found);
	store_client_free(out);
	out = NULL;
	assert_int_equal(store_client_get(f->store, a, &out), 0);
	assert_string_equal(out->name, "改名");
	assert_string_equal(out->secret_hash, "hash-rotated");
	out->status = 7;
	assert_int_equal(store_client_update(f->store, out, CLIENT_APPROVED, &found),
	                 ISSO_ERR_INVALID);
	store_client_free(out);
}

/* A decision writes only status and settings (and scope and secret when
 * given), only while status and settings are as read: a change of the
 * settings meanwhile, or of the status and back (A-B-A, each step
 * recorded in the settings), makes it lose with nothing changed; a secret
 * rotated meanwhile is kept. */
static void
test_client_set_state(void **state)
{
	struct fixture *f = *state;
	struct store_client in, *read = NULL, *out = NULL;
	json_t *settings, *mid;
	char a[64];
	bool found = true;

	id(f, "a", a, sizeof(a));
	client_init(&in, a, 300);
	in.settings = json_pack("{s:{s:s, s:s}}", "application", "state", "approved", "z", "末");
	assert_int_equal(store_client_add(f->store, &in), 0);
	json_decref(in.settings);
	in.settings = NULL;
	client_clear(&in);
	assert_int_equal(store_client_set_status(f->store, a, CLIENT_APPROVED), 0);

	assert_int_equal(store_client_get(f->store, a, &read), 0);
	assert_non_null(read->settings_text);
	/* A secret rotated after the read is kept. */
	assert_int_equal(store_client_set_secret(f->store, a, "rotated"), 0);
	settings =
	    json_pack("{s:{s:s, s:s}}", "application", "state", "approved", "suspended_by", "city");
	assert_int_equal(
	    store_client_set_state(f->store, read, CLIENT_SUSPENDED, NULL, NULL, settings, &found),
	    0);
	assert_true(found);
	assert_int_equal(store_client_get(f->store, a, &out), 0);
	assert_int_equal(out->status, CLIENT_SUSPENDED);
	assert_string_equal(out->secret_hash, "rotated");
	assert_string_equal(out->name, "臺北市政府 測試服務");
	assert_true(json_equal(out->settings, settings));
	store_client_free(out);
	out = NULL;
	/* The same stale read again loses: the status moved. */
	assert_int_equal(
	    store_client_set_state(f->store, read, CLIENT_APPROVED, NULL, NULL, settings, &found),
	    0);
	assert_false(found);
	store_client_free(read);
	read = NULL;

	/* A-B-A: status back where it was, settings not: the stale read
	 * loses and nothing changes. */
	assert_int_equal(store_client_get(f->store, a, &read), 0);
	mid = json_pack("{s:{s:s}}", "application", "history", "resumed, suspended again");
	assert_int_equal(store_client_set_status(f->store, a, CLIENT_APPROVED), 0);
	assert_int_equal(store_client_set_settings(f->store, a, mid), 0);
	assert_int_equal(store_client_set_status(f->store, a, CLIENT_SUSPENDED), 0);
	assert_int_equal(store_client_set_state(f->store, read, CLIENT_APPROVED, "openid", "x",
	                                        settings, &found),
	                 0);
	assert_false(found);
	assert_int_equal(store_client_get(f->store, a, &out), 0);
	assert_int_equal(out->status, CLIENT_SUSPENDED);
	assert_true(json_equal(out->settings, mid));
	assert_string_equal(out->secret_hash, "rotated");
	store_client_free(read);
	read = out;
	out = NULL;

	/* Scope and secret when given, from a fresh read. */
	assert_int_equal(store_client_set_state(f->store, read, CLIENT_APPROVED, "openid email",
	                                        "fresh", settings, &found),
	                 0);
	assert_true(found);
	assert_int_equal(store_client_get(f->store, a, &out), 0);
	assert_int_equal(out->status, CLIENT_APPROVED);
	assert_string_equal(out->scope, "openid email");
	assert_string_equal(out->secret_hash, "fresh");
	store_client_free(out);

	/* Refused: no text as read, no object, no such status. */
	free(read->settings_text);
	read->settings_text = NULL;
	assert_int_equal(
	    store_client_set_state(f->store, read, CLIENT_APPROVED, NULL, NULL, settings, &found),
	    ISSO_ERR_INVALID);
	read->settings_text = strdup("{}");
	assert_int_equal(store_client_set_state(f->store, read, 9, NULL, NULL, settings, &found),
	                 ISSO_ERR_INVALID);
	assert_int_equal(
	    store_client_set_state(f->store, read, CLIENT_APPROVED, NULL, NULL, NULL, &found),
	    ISSO_ERR_INVALID);
	/* Unknown client: not found. */
	free(read->client_id);
	read->client_id = strdup("no-such-client");
	assert_int_equal(
	    store_client_set_state(f->store, read, CLIENT_APPROVED, NULL, NULL, settings, &found),
	    0);
	assert_false(found);
	store_client_free(read);
	json_decref(settings);
	json_decref(mid);
}

/* A deleted client takes its tokens and consents with it, no one else's. */
static void
test_client_delete(void **state)
{
	struct fixture *f = *state;
	struct store_client in, *out = NULL;
	struct store_token *t = NULL;
	char c1[64], c2[64], u[64], h1[64], h2[64], g[64];
	char *scope = NULL;
	bool found = false;

	id(f, "c1", c1, sizeof(c1));
	id(f, "c2", c2, sizeof(c2));
	id(f, "u", u, sizeof(u));
	id(f, "h1", h1, sizeof(h1));
	id(f, "h2", h2, sizeof(h2));
	id(f, "g", g, sizeof(g));
	add_person(f, u, NULL);
	client_init(&in, c1, 300);
	assert_int_equal(store_client_add(f->store, &in), 0);
	client_clear(&in);
	client_init(&in, c2, 301);
	assert_int_equal(store_client_add(f->store, &in), 0);
	client_clear(&in);
	add_token(f, h1, TOKEN_REFRESH, g, c1, u, NOW + 600);
	add_token(f, h2, TOKEN_REFRESH, g, c2, u, NOW + 600);
	assert_int_equal(store_consent_put(f->store, u, c1, "openid phone", NOW), 0);
	assert_int_equal(store_consent_put(f->store, u, c2, "openid email", NOW), 0);

	assert_int_equal(store_client_delete(f->store, c1, &found), 0);
	assert_true(found);
	assert_int_equal(store_client_get(f->store, c1, &out), 0);
	assert_null(out);
	assert_int_equal(store_token_get(f->store, h1, NOW, &t), 0);
	assert_null(t);
	assert_int_equal(store_consent_get(f->store, u, c1, &scope), 0);
	assert_null(scope);
	/* The other client keeps everything. */
	assert_int_equal(store_token_get(f->store, h2, NOW, &t), 0);
	assert_non_null(t);
	assert_false(t->revoked);
	store_token_free(t);
	assert_int_equal(store_consent_get(f->store, u, c2, &scope), 0);
	assert_non_null(scope);
	assert_string_equal(scope, "openid email");
	free(scope);
	assert_int_equal(store_client_delete(f->store, c1, &found), 0);
	assert_false(found);
	assert_int_equal(store_client_delete(f->store, NULL, &found), ISSO_ERR_INVALID);
}

static void
test_token_use_race(void **state)
{
	struct fixture *f = *state;
	struct race *r = calloc(1, sizeof(*r));
	struct race_arg args[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	char g[64], cl[64], u[64], name[16];
	int t, k, winners;

	assert_non_null(r);
	r->store = f->store;
	id(f, "g", g, sizeof(g));
	id(f, "cl", cl, sizeof(cl));
	id(f, "u", u, sizeof(u));
	for (k = 0; k < RACE_TOKENS; k++) {
		snprintf(name, sizeof(name), "race%d", k);
		id(f, name, r->hashes[k], sizeof(r->hashes[k]));
		add_token(f, r->hashes[k], TOKEN_CODE, g, cl, u, NOW + 60);
	}
	assert_int_equal(pthread_barrier_init(&r->barrier, NULL, RACE_THREADS), 0);
	for (t = 0; t < RACE_THREADS; t++) {
		args[t].race = r;
		args[t].n = t;
		assert_int_equal(pthread_create(&th[t], NULL, race_thread, &args[t]), 0);
	}
	for (t = 0; t < RACE_THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&r->barrier);

	for (t = 0; t < RACE_THREADS; t++)
		assert_int_equal(r->errors[t], 0);
	for (k = 0; k < RACE_TOKENS; k++) {
		winners = 0;
		for (t = 0; t < RACE_THREADS; t++)
			winners += r->wins[t][k];
		assert_int_equal(winners, 1);
	}
	free(r);
}

/* Two redeems of one code at once (threads with connections of their
 * own, as two nodes): exactly one wins, and only its tokens exist. */
static void
test_token_exchange_race(void **state)
{
	struct fixture *f = *state;
	struct race *r = calloc(1, sizeof(*r));
	struct race_arg args[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	char g[64], cl[64], u[64], name[16], h[96];
	int t, k, winners;

	assert_non_null(r);
	r->store = f->store;
	r->exchange = true;
	id(f, "g", g, sizeof(g));
	id(f, "cl", cl, sizeof(cl));
	id(f, "u", u, sizeof(u));
	for (k = 0; k < RACE_TOKENS; k++) {
		snprintf(name, sizeof(name), "xrace%d", k);
		id(f, name, r->hashes[k], sizeof(r->hashes[k]));
		add_token(f, r->hashes[k], TOKEN_CODE, g, cl, u, NOW + 60);
	}
	assert_int_equal(pthread_barrier_init(&r->barrier, NULL, RACE_THREADS), 0);
	for (t = 0; t < RACE_THREADS; t++) {
		args[t].race = r;
		args[t].n = t;
		assert_int_equal(pthread_create(&th[t], NULL, race_thread, &args[t]), 0);
	}
	for (t = 0; t < RACE_THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&r->barrier);

	for (t = 0; t < RACE_THREADS; t++)
		assert_int_equal(r->errors[t], 0);
	for (k = 0; k < RACE_TOKENS; k++) {
		winners = 0;
		assert_true(token_used(f, r->hashes[k]));
		for (t = 0; t < RACE_THREADS; t++) {
			winners += r->wins[t][k];
			race_token_hash(r, k, t, "at", h, sizeof(h));
			assert_int_equal(token_exists(f, h), r->wins[t][k] == 1);
			race_token_hash(r, k, t, "rt", h, sizeof(h));
			assert_int_equal(token_exists(f, h), r->wins[t][k] == 1);
		}
		assert_int_equal(winners, 1);
	}
	free(r);
}

/* SQLite only: an in-memory database lives in one connection, which all
 * threads then share in turn. */
static void
test_memory_sqlite(void **state)
{
	struct fixture f;
	const char *error = NULL;
	struct store_token *t = NULL;
	char h[64];

	(void)state;
	if (strcmp(test_driver, "sqlite") != 0)
		skip();
	memset(&f, 0, sizeof(f));
	snprintf(f.prefix, sizeof(f.prefix), "mem");
	assert_int_equal(store_open("sqlite", ":memory:", MIGRATIONS_DIR, &f.store, &error), 0);
	add_token(&f, id(&f, "h", h, sizeof(h)), TOKEN_CODE, "g", "c", NULL, NOW + 60);
	assert_int_equal(store_token_get(f.store, h, NOW, &t), 0);
	assert_non_null(t);
	store_token_free(t);
	{
		void *st = &f;

		test_token_use_race(&st);
	}
	store_close(f.store);
}

/* ---- short-lived objects and rate limits ---- */

static void
test_eph(void **state)
{
	struct fixture *f = *state;
	json_t *in, *out = NULL;
	char s[64], other[64];
	int counter = -5;
	bool found = false;

	id(f, "s", s, sizeof(s));
	id(f, "other", other, sizeof(other));
	in = json_pack("{sssi}", "uuid", "u-1", "acr", 2);
	assert_int_equal(store_eph_put(f->store, "session", s, in, NOW + 100), 0);
	assert_int_equal(store_eph_get(f->store, "session", s, NOW, &out, &counter), 0);
	assert_non_null(out);
	assert_true(json_equal(in, out));
	assert_int_equal(counter, 0);
	json_decref(out);
	json_decref(in);
	/* Kind is part of the key. */
	assert_int_equal(store_eph_get(f->store, "txn", s, NOW, &out, NULL), 0);
	assert_null(out);

	in = json_pack("{ss}", "step", "two");
	assert_int_equal(store_eph_update(f->store, "session", s, in, NOW, &found), 0);
	assert_true(found);
	assert_int_equal(store_eph_get(f->store, "session", s, NOW, &out, NULL), 0);
	assert_true(json_equal(in, out));
	json_decref(out);
	assert_int_equal(store_eph_update(f->store, "session", other, in, NOW, &found), 0);
	assert_false(found);
	assert_int_equal(store_eph_get(f->store, "session", other, NOW, &out, NULL), 0);
	assert_null(out);
	/* Expired: hidden, not updatable. */
	assert_int_equal(store_eph_update(f->store, "session", s, in, NOW + 100, &found), 0);
	assert_false(found);
	json_decref(in);
	assert_int_equal(store_eph_get(f->store, "session", s, NOW + 100, &out, &counter), 0);
	assert_null(out);

	assert_int_equal(store_eph_bump(f->store, "session", s, NOW, &counter), 0);
	assert_int_equal(counter, 1);
	assert_int_equal(store_eph_bump(f->store, "session", s, NOW, &counter), 0);
	assert_int_equal(counter, 2);
	assert_int_equal(store_eph_get(f->store, "session", s, NOW, &out, &counter), 0);
	assert_int_equal(counter, 2);
	json_decref(out);
	assert_int_equal(store_eph_bump(f->store, "session", s, NOW + 100, &counter), 0);
	assert_int_equal(counter, -1);
	assert_int_equal(store_eph_bump(f->store, "session", other, NOW, &counter), 0);
	assert_int_equal(counter, -1);

	/* NULL data is an empty object. */
	assert_int_equal(store_eph_put(f->store, "otp", s, NULL, NOW + 10), 0);
	assert_int_equal(store_eph_get(f->store, "otp", s, NOW, &out, NULL), 0);
	assert_true(json_is_object(out));
	assert_int_equal(json_object_size(out), 0);
	json_decref(out);

	assert_int_equal(store_eph_delete(f->store, "session", s), 0);
	assert_int_equal(store_eph_get(f->store, "session", s, NOW, &out, NULL), 0);
	assert_null(out);
	assert_int_equal(store_eph_get(f->store, "otp", s, NOW, &out, NULL), 0);
	assert_non_null(out);
	json_decref(out);
	assert_int_equal(store_eph_delete(f->store, "session", s), 0);
}

/* take: single use; incr: creates, counts, restarts after expiry. */
/* The live-session gauge counts unexpired objects of one kind only; the
 * readiness ping answers on a healthy store. */
static void
test_eph_count_ping(void **state)
{
	struct fixture *f = *state;
	char kind[64], other[64], a[64], b[64], c[64];
	int64_t n = -1;
	const char *why = "unset";

	id(f, "count", kind, sizeof(kind));
	id(f, "count-other", other, sizeof(other));
	id(f, "a", a, sizeof(a));
	id(f, "b", b, sizeof(b));
	id(f, "c", c, sizeof(c));
	assert_int_equal(store_eph_count(f->store, kind, NOW, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_eph_put(f->store, kind, a, NULL, NOW + 100), 0);
	assert_int_equal(store_eph_put(f->store, kind, b, NULL, NOW + 1), 0);
	assert_int_equal(store_eph_put(f->store, other, c, NULL, NOW + 100), 0);
	assert_int_equal(store_eph_count(f->store, kind, NOW, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_eph_count(f->store, kind, NOW + 1, &n), 0);
	assert_int_equal(n, 1); /* expired at NOW + 1 */
	assert_int_equal(store_eph_delete(f->store, kind, a), 0);
	assert_int_equal(store_eph_count(f->store, kind, NOW, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_eph_count(f->store, NULL, NOW, &n), ISSO_ERR_INVALID);

	assert_int_equal(store_ping(f->store, &why), 0);
	assert_null(why);
}

/* A database file moved away under the open store is not ready (its
 * connections would write to an orphaned file); moved back, it is. */
static void
test_ping_moved_sqlite(void **state)
{
	struct fixture *f = *state;
	char moved[160];
	const char *why = NULL;

	if (strcmp(test_driver, "sqlite") != 0 || !fresh_db())
		skip();
	assert_int_equal(store_ping(f->store, &why), 0);
	snprintf(moved, sizeof(moved), "%s.moved", f->dsn);
	assert_int_equal(rename(f->dsn, moved), 0);
	assert_int_equal(store_ping(f->store, &why), ISSO_ERR_STORE);
	assert_non_null(why);
	assert_non_null(strstr(why, "moved or removed"));
	assert_int_equal(rename(moved, f->dsn), 0);
	assert_int_equal(store_ping(f->store, &why), 0);
	assert_null(why);
}

static void
test_eph_take_incr(void **state)
{
	struct fixture *f = *state;
	char s[64];
	bool taken = true;
	int counter = -5;
	json_t *out = NULL;

	id(f, "t", s, sizeof(s));
	assert_int_equal(store_eph_take(f->store, "otp", s, NOW, &taken), 0);
	assert_false(taken);
	assert_int_equal(store_eph_put(f->store, "otp", s, NULL, NOW + 10), 0);
	assert_int_equal(store_eph_take(f->store, "otp", s, NOW + 10, &taken), 0);
	assert_false(taken); /* expired: not taken */
	assert_int_equal(store_eph_take(f->store, "otp", s, NOW, &taken), 0);
	assert_true(taken);
	assert_int_equal(store_eph_take(f->store, "otp", s, NOW, &taken), 0);
	assert_false(taken);

	assert_int_equal(store_eph_incr(f->store, "lock", s, NOW, NOW + 100, &counter), 0);
	assert_int_equal(counter, 1);
	assert_int_equal(store_eph_incr(f->store, "lock", s, NOW + 1, NOW + 500, &counter), 0);
	assert_int_equal(counter, 2);
	/* The first expiry holds while counting. */
	assert_int_equal(store_eph_get(f->store, "lock", s, NOW + 99, &out, &counter), 0);
	assert_non_null(out);
	assert_int_equal(counter, 2);
	json_decref(out);
	assert_int_equal(store_eph_get(f->store, "lock", s, NOW + 100, &out, &counter), 0);
	assert_null(out);
	/* After expiry the count starts again. */
	assert_int_equal(store_eph_incr(f->store, "lock", s, NOW + 100, NOW + 200, &counter), 0);
	assert_int_equal(counter, 1);
	assert_int_equal(store_eph_incr(f->store, "lock", s, NOW, NOW, &counter), ISSO_ERR_INVALID);
}

static void
test_rate(void **state)
{
	struct fixture *f = *state;
	char k1[64], k2[64];
	int64_t base = NOW - NOW % 60;
	int count = 0;

	id(f, "ip", k1, sizeof(k1));
	id(f, "acct", k2, sizeof(k2));
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(store_rate_hit(f->store, k1, 60, base + 10 + i, &count), 0);
		assert_int_equal(count, i);
	}
	assert_int_equal(store_rate_hit(f->store, k2, 60, base + 10, &count), 0);
	assert_int_equal(count, 1);
	/* Last second of the window, then the next window starts at 1. */
	assert_int_equal(store_rate_hit(f->store, k1, 60, base + 59, &count), 0);
	assert_int_equal(count, 4);
	assert_int_equal(store_rate_hit(f->store, k1, 60, base + 60, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(store_rate_hit(f->store, k1, 60, base + 61, &count), 0);
	assert_int_equal(count, 2);
	assert_int_equal(store_rate_hit(f->store, k1, 0, base, &count), ISSO_ERR_INVALID);
}

/* ---- guess throttling ---- */

static void
test_throttle(void **state)
{
	struct fixture *f = *state;
	const int64_t T0 = (int64_t)NOW * 1000; /* milliseconds */
	struct store_throttle t;
	char k1[64], k2[64];

	id(f, "thr-a", k1, sizeof(k1));
	id(f, "thr-b", k2, sizeof(k2));
	/* Absent: all zero. */
	assert_int_equal(store_throttle_get(f->store, k1, T0, &t), 0);
	assert_int_equal(t.level, 0);
	assert_int_equal(t.next_at, 0);
	/* Each attempt adds its weight; the level drains one per second. */
	assert_int_equal(store_throttle_take(f->store, k1, T0, 60, 600, 10, &t), 0);
	assert_int_equal(t.level, 60);
	assert_int_equal(t.next_at, 0);
	assert_int_equal(store_throttle_take(f->store, k1, T0 + 20, 60, 600, 10, &t), 0);
	assert_int_equal(t.level, 100);
	assert_int_equal(store_throttle_get(f->store, k1, T0 + 50, &t), 0);
	assert_int_equal(t.level, 70);
	/* A hold: attempts before next_at count nothing. */
	assert_int_equal(store_throttle_hold(f->store, k1, T0 + 30), 0);
	assert_int_equal(store_throttle_hold(f->store, k1, T0 + 25), 0); /* a later one stays */
	assert_int_equal(store_throttle_take(f->store, k1, T0 + 29, 60, 600, 10, &t), 0);
	assert_int_equal(t.next_at, T0 + 30);
	assert_int_equal(store_throttle_get(f->store, k1, T0 + 29, &t), 0);
	assert_int_equal(t.level, 91);
	assert_int_equal(store_throttle_take(f->store, k1, T0 + 30, 60, 600, 10, &t), 0);
	assert_int_equal(t.next_at, T0 + 30);
	assert_int_equal(t.level, 150);
	/* Given back: one weight less, and no hold any more. */
	assert_int_equal(store_throttle_hold(f->store, k1, T0 + 40), 0);
	assert_int_equal(store_throttle_give(f->store, k1, T0 + 30, 60), 0);
	assert_int_equal(store_throttle_get(f->store, k1, T0 + 30, &t), 0);
	assert_int_equal(t.level, 90);
	assert_true(t.next_at <= T0 + 30);
	/* The cap. */
	for (int i = 0; i < 20; i++)
		assert_int_equal(store_throttle_take(f->store, k2, T0, 60, 600, 10, &t), 0);
	assert_int_equal(t.level, 600);
	/* Other keys are apart; clear forgets. */
	assert_int_equal(store_throttle_clear(f->store, k2), 0);
	assert_int_equal(store_throttle_get(f->store, k2, T0, &t), 0);
	assert_int_equal(t.level, 0);
	assert_int_equal(store_throttle_get(f->store, k1, T0 + 30, &t), 0);
	assert_int_equal(t.level, 90);
	/* Drained and expired rows are purged. */
	assert_int_equal(store_throttle_take(f->store, k2, T0, 60, 60, 0, &t), 0);
	assert_int_equal(store_purge(f->store, NOW, NULL), 0);
	assert_int_equal(store_throttle_get(f->store, k2, T0, &t), 0);
	assert_int_equal(t.level, 60);
	assert_int_equal(store_purge(f->store, NOW + 1, NULL), 0);
	assert_int_equal(store_throttle_get(f->store, k2, T0, &t), 0);
	assert_int_equal(t.level, 0);
	assert_int_equal(store_throttle_take(f->store, k1, T0, 0, 600, 10, &t), ISSO_ERR_INVALID);
}

/* ---- signing keys ---- */

struct key_ctx {
	const char *prefix;
	char kids[8][64];
	bool active[8];
	int n;
};

static int
key_list_cb(const struct store_key *k, void *context)
{
	struct key_ctx *ctx = context;

	if (!starts_with(k->kid, ctx->prefix))
		return 0;
	assert_true(ctx->n < 8);
	assert_non_null(k->alg);
	assert_non_null(k->jwk);
	snprintf(ctx->kids[ctx->n], sizeof(ctx->kids[0]), "%s", k->kid);
	ctx->active[ctx->n++] = k->active;
	return 0;
}

static void
test_keys(void **state)
{
	struct fixture *f = *state;
	struct store_key k = {.alg = "ES256", .jwk = "sealed-jwk", .active = true};
	struct key_ctx ctx;
	char k1[64], k2[64], k3[64];

	id(f, "k1", k1, sizeof(k1));
	id(f, "k2", k2, sizeof(k2));
	id(f, "k3", k3, sizeof(k3));
	k.kid = k2;
	k.created_at = NOW + 200;
	assert_int_equal(store_key_add(f->store, &k), 0);
	k.kid = k1;
	k.created_at = NOW + 100;
	assert_int_equal(store_key_add(f->store, &k), 0);
	k.kid = k3;
	k.alg = "RS256";
	k.created_at = NOW + 300;
	assert_int_equal(store_key_add(f->store, &k), 0);
	assert_int_equal(store_key_add(f->store, &k), ISSO_ERR_CONFLICT);

	assert_int_equal(store_key_set_active(f->store, k1, false), 0);
	memset(&ctx, 0, sizeof(ctx));
	ctx.prefix = f->prefix;
	assert_int_equal(store_key_list(f->store, key_list_cb, &ctx), 0);
	assert_int_equal(ctx.n, 3);
	assert_string_equal(ctx.kids[0], k3);
	assert_string_equal(ctx.kids[1], k2);
	assert_string_equal(ctx.kids[2], k1);
	assert_true(ctx.active[0]);
	assert_true(ctx.active[1]);
	assert_false(ctx.active[2]);
}

/* ---- audit ---- */

struct audit_ctx {
	int64_t first_seq, last_seq;
	int n;
	char prev[65];
	bool chain_ok;
	char events[8][32];
};

/* Recomputes each hash from the documented formula. */
static int
audit_list_cb(int64_t seq, int64_t ts, const char *event, const char *data, const char *hash,
              void *context)
{
	struct audit_ctx *ctx = context;
	char msg[1024], expect[65];

	if (ctx->n == 0)
		ctx->first_seq = seq;
	else if (seq != ctx->last_seq + 1)
		ctx->chain_ok = false;
	if (ctx->n > 0) {
		snprintf(msg, sizeof(msg), "%s\n%" PRId64 "\n%" PRId64 "\n%s\n%s", ctx->prev, seq,
		         ts, event, data);
		secret_sha256_hex(msg, strlen(msg), expect);
		if (strcmp(expect, hash) != 0)
			ctx->chain_ok = false;
	}
	if (ctx->n < 8)
		snprintf(ctx->events[ctx->n], sizeof(ctx->events[0]), "%s", event);
	snprintf(ctx->prev, sizeof(ctx->prev), "%s", hash);
	ctx->last_seq = seq;
	ctx->n++;
	return 0;
}

static int
audit_genesis_cb(int64_t seq, int64_t ts, const char *event, const char *data, const char *hash,
                 void *context)
{
	char msg[1024], expect[65];

	snprintf(msg, sizeof(msg), "%064d\n%" PRId64 "\n%" PRId64 "\n%s\n%s", 0, seq, ts, event,
	         data);
	secret_sha256_hex(msg, strlen(msg), expect);
	*(bool *)context = seq == 1 && strcmp(expect, hash) == 0;
	return 1;
}

static int64_t
audit_last_seq(struct fixture *f)
{
	struct audit_ctx ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.chain_ok = true;
	assert_int_equal(store_audit_list(f->store, 0, audit_list_cb, &ctx), 0);
	return ctx.n > 0 ? ctx.last_seq : 0;
}

static void
test_audit(void **state)
{
	struct fixture *f = *state;
	struct audit_ctx ctx;
	int64_t start, bad = -1;
	bool ok = false, genesis = false;

	start = audit_last_seq(f);
	assert_int_equal(store_audit_append(f->store, NOW, "client.approved",
	                                    json_pack("{ss}", "client_id", "c-1")),
	                 0);
	assert_int_equal(store_audit_append(f->store, NOW + 1, "login.ok",
	                                    json_pack("{sssi}", "method", "pass", "level", 2)),
	                 0);
	assert_int_equal(store_audit_append(f->store, NOW + 2, "purge", NULL), 0);
	assert_int_equal(
	    store_audit_append(f->store, NOW + 3, "key.rotated", json_pack("{ss}", "kid", "k-1")),
	    0);
	assert_int_equal(store_audit_verify(f->store, &ok, &bad), 0);
	assert_true(ok);

	/* Rows after start: in order, consecutive, hashes per the formula. */
	memset(&ctx, 0, sizeof(ctx));
	ctx.chain_ok = true;
	assert_int_equal(store_audit_list(f->store, start, audit_list_cb, &ctx), 0);
	assert_int_equal(ctx.n, 4);
	assert_int_equal(ctx.first_seq, start + 1);
	assert_true(ctx.chain_ok);
	assert_string_equal(ctx.events[0], "client.approved");
	assert_string_equal(ctx.events[1], "login.ok");
	assert_string_equal(ctx.events[2], "purge");
	assert_string_equal(ctx.events[3], "key.rotated");

	memset(&ctx, 0, sizeof(ctx));
	assert_int_equal(store_audit_list(f->store, start + 2, audit_list_cb, &ctx), 0);
	assert_int_equal(ctx.n, 2);
	assert_int_equal(ctx.first_seq, start + 3);

	/* The first row links to the genesis hash. */
	assert_int_equal(store_audit_list(f->store, 0, audit_genesis_cb, &genesis), 1);
	assert_true(genesis);

	assert_int_equal(store_audit_append(f->store, NOW, NULL, NULL), ISSO_ERR_INVALID);
}

/* SQLite only: change the file behind the store's back. */
static void
sqlite_tamper(const char *dsn, const char *sql, bool expect_ok)
{
	sqlite3 *db = NULL;
	char *err = NULL;
	int rc;

	assert_int_equal(sqlite3_open_v2(dsn, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	sqlite3_free(err);
	sqlite3_close(db);
	assert_int_equal(rc == SQLITE_OK, expect_ok);
}

/* Copies the hash of the row after since_seq (row 2 when since_seq is 1). */
static int
audit_prev_cb(int64_t seq, int64_t ts, const char *event, const char *data, const char *hash,
              void *context)
{
	snprintf(context, 65, "%s", hash);
	return 1;
}

static void
test_audit_tamper_sqlite(void **state)
{
	struct fixture *f = *state;
	char sql[256], msg[256], prev[65], hash[65];
	int64_t bad = -1;
	bool ok = true;

	if (strcmp(test_driver, "sqlite") != 0 || !fresh_db())
		skip();
	for (int i = 0; i < 5; i++)
		assert_int_equal(
		    store_audit_append(f->store, NOW + i, "event", json_pack("{si}", "i", i)), 0);
	assert_int_equal(store_audit_verify(f->store, &ok, &bad), 0);
	assert_true(ok);

	/* The schema itself refuses updates and deletes. */
	sqlite_tamper(f->dsn, "UPDATE audit SET data = '{}' WHERE seq = 2", false);
	sqlite_tamper(f->dsn, "DELETE FROM audit WHERE seq = 2", false);
	assert_int_equal(store_audit_verify(f->store, &ok, &bad), 0);
	assert_true(ok);

	/* An attacker with the file drops the triggers; the chain shows it. */
	sqlite_tamper(f->dsn,
	              "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; "
	              "UPDATE audit SET data = '{\"i\":7}' WHERE seq = 3",
	              true);
	assert_int_equal(store_audit_verify(f->store, &ok, &bad), 0);
	assert_false(ok);
	assert_int_equal(bad, 3);

	/* Rewriting the row's hash to match its new data breaks the next link
	 * instead. */
	assert_int_equal(store_audit_list(f->store, 1, audit_prev_cb, prev), 1);
	snprintf(msg, sizeof(msg), "%s\n3\n%" PRId64 "\nevent\n{\"i\":7}", prev, NOW + 2);
	secret_sha256_hex(msg, strlen(msg), hash);
	snprintf(sql, sizeof(sql), "UPDATE audit SET hash = '%s' WHERE seq = 3", hash);
	sqlite_tamper(f->dsn, sql, true);
	assert_int_equal(store_audit_verify(f->store, &ok, &bad), 0);
	assert_false(ok);
	assert_int_equal(bad, 4);

	/* Putting the row back repairs the chain. */
	assert_int_equal(store_audit_list(f->store, 1, audit_prev_cb, prev), 1);
	snprintf(msg, sizeof(msg), "%s\n3\n%" PRId64 "\nevent\n{\"i\":2}", prev, NOW + 2);
	secret_sha256_hex(msg, strlen(msg), hash);
	snprintf(sql, sizeof(sql), "UPDATE audit SET data = '{\"i\":2}', hash = '%s' WHERE seq = 3",
	         hash);
	sqlite_tamper(f->dsn, sql, true);
	assert_int_equal(store_audit_verify(f->store, &ok, &bad), 0);
	assert_true(ok);

	/* A deleted row. */
	sqlite_tamper(f->dsn, "DELETE FROM audit WHERE seq = 4", true);
	assert_int_equal(store_audit_verify(f->store, &ok, &bad), 0);
	assert_false(ok);
	assert_int_equal(bad, 5);
}

/* Copies the data of the last row listed. */
static int
audit_data_cb(int64_t seq, int64_t ts, const char *event, const char *data, const char *hash,
              void *context)
{
	(void)seq;
	(void)ts;
	(void)hash;
	snprintf(context, 512, "%s %s", event, data);
	return 0;
}

/* Makes the audit log refuse (on) or accept again (off) rows whose data
 * holds "refuse-me", behind the store's back. */
static void
audit_refuse(struct fixture *f, bool on)
{
	if (is_pgsql()) {
		assert_true(pg_admin(
		    on ? "CREATE FUNCTION isso_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
		         "$$ BEGIN IF NEW.data LIKE '%refuse-me%' THEN RAISE EXCEPTION 'refused'; "
		         "END IF; RETURN NEW; END $$; "
		         "CREATE TRIGGER isso_test_refuse BEFORE INSERT ON audit FOR EACH ROW "
		         "EXECUTE FUNCTION isso_test_refuse()"
		       : "DROP TRIGGER isso_test_refuse ON audit; DROP FUNCTION "
		         "isso_test_refuse()"));
		return;
	}
	sqlite_tamper(f->dsn,
	              on ? "CREATE TRIGGER isso_test_refuse BEFORE INSERT ON audit "
	                   "WHEN NEW.data LIKE '%refuse-me%' BEGIN SELECT RAISE(ABORT, 'refused'); "
	                   "END"
	                 : "DROP TRIGGER isso_test_refuse",
	              true);
}

/* A code with the record of its release, one transaction: all or nothing. */
static void
test_code_add(void **state)
{
	struct fixture *f = *state;
	char code[64], code2[64], g[64], cl[64], u[64], want[160], last[512];
	struct store_token c = {
	    .kind = TOKEN_CODE,
	    .grant_id = g,
	    .client_id = cl,
	    .uuid = u,
	    .sid = "sid-1",
	    .scope = "openid profile",
	    .created_at = NOW,
	    .expires_at = NOW + 60,
	};
	json_t *release, *audit;
	struct seen_ctx l;
	int64_t start;
	bool ok = false;
	int64_t bad = -1;

	id(f, "code", code, sizeof(code));
	id(f, "code2", code2, sizeof(code2));
	id(f, "g", g, sizeof(g));
	id(f, "cl", cl, sizeof(cl));
	id(f, "u", u, sizeof(u));
	c.hash = code;
	c.data = json_pack("{ss}", "nonce", "n-1");
	release = json_pack("{s:s, s:[s]}", "method", "taipeipass", "fields", "name");
	audit = json_pack("{s:s, s:[s], s:s, s:s}", "method", "taipeipass", "fields", "name",
	                  "uuid", u, "client_id", cl);
	start = audit_last_seq(f);

	assert_int_equal(store_code_add(f->store, &c, NOW, release, audit), 0);
	assert_true(token_exists(f, code));
	assert_false(token_used(f, code));
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_release_list(f->store, u, 10, release_seen, &l), 0);
	assert_int_equal(l.n, 1);
	snprintf(want, sizeof(want), "%s|%lld|taipeipass", cl, (long long)NOW);
	assert_string_equal(l.seen[0], want);
	assert_int_equal(audit_last_seq(f), start + 1);
	assert_int_equal(store_audit_list(f->store, start, audit_data_cb, last), 0);
	assert_true(starts_with(last, "release {"));
	assert_non_null(strstr(last, u));
	assert_non_null(strstr(last, cl));
	assert_int_equal(store_audit_verify(f->store, &ok, &bad), 0);
	assert_true(ok);

	/* The code's hash taken: nothing of it is written. */
	assert_int_equal(store_code_add(f->store, &c, NOW + 1, release, audit), ISSO_ERR_CONFLICT);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_release_list(f->store, u, 10, release_seen, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(audit_last_seq(f), start + 1);

	/* The audit log refuses the row (the last step): the code and the
	 * release written before it are rolled back. */
	if (fresh_db() || is_pgsql()) {
		c.hash = code2;
		json_object_set_new(audit, "method", json_string("refuse-me"));
		audit_refuse(f, true);
		assert_true(store_code_add(f->store, &c, NOW + 2, release, audit) < 0);
		audit_refuse(f, false);
		assert_false(token_exists(f, code2));
		memset(&l, 0, sizeof(l));
		assert_int_equal(store_release_list(f->store, u, 10, release_seen, &l), 0);
		assert_int_equal(l.n, 1);
		assert_int_equal(audit_last_seq(f), start + 1);
		/* … and the same code goes in once it is accepted. */
		json_object_set_new(audit, "method", json_string("taipeipass"));
		assert_int_equal(store_code_add(f->store, &c, NOW + 2, release, audit), 0);
		assert_true(token_exists(f, code2));
		assert_int_equal(audit_last_seq(f), start + 2);
		c.hash = code;
	}

	/* Refused before the store. */
	c.kind = TOKEN_ACCESS;
	assert_int_equal(store_code_add(f->store, &c, NOW, release, audit), ISSO_ERR_INVALID);
	c.kind = TOKEN_CODE;
	c.uuid = NULL;
	assert_int_equal(store_code_add(f->store, &c, NOW, release, audit), ISSO_ERR_INVALID);
	c.uuid = u;
	assert_int_equal(store_code_add(f->store, &c, NOW, NULL, audit), ISSO_ERR_INVALID);
	assert_int_equal(store_code_add(f->store, &c, NOW, release, NULL), ISSO_ERR_INVALID);
	assert_int_equal(store_code_add(f->store, NULL, NOW, release, audit), ISSO_ERR_INVALID);
	json_decref(c.data);
	json_decref(release);
	json_decref(audit);
}

/* SQLite only: error paths (a conflict) and multi-step operations leave
 * no transaction open: an outside writer gets the lock at once. */
static void
test_no_open_transaction_sqlite(void **state)
{
	struct fixture *f = *state;
	char u[64], acc[64], ph[64];
	struct store_member m;
	int failures = 0;

	if (strcmp(test_driver, "sqlite") != 0 || !fresh_db())
		skip();
	id(f, "u", u, sizeof(u));
	add_person(f, u, NULL);
	member_init(&m, u, id(f, "acc", acc, sizeof(acc)), NULL, id(f, "ph", ph, sizeof(ph)));
	assert_int_equal(store_member_add(f->store, &m), 0);
	assert_int_equal(store_member_add(f->store, &m), ISSO_ERR_CONFLICT);
	assert_int_equal(store_audit_append(f->store, NOW, "x", NULL), 0);
	sqlite_tamper(f->dsn, "BEGIN IMMEDIATE; CREATE TABLE probe (x); COMMIT;", true);
	assert_int_equal(store_member_login_failed(f->store, u, 5, NOW, 60, &failures), 0);
	assert_int_equal(failures, 1);
	sqlite_tamper(f->dsn, "BEGIN IMMEDIATE; DROP TABLE probe; COMMIT;", true);
}

/* ---- purge ---- */

/* Jobs: claimed once while leased, retried later, given back after the
 * lease lapses (a node that died), deleted only by their holder, purged
 * after expiry. */
static void
test_jobs(void **state)
{
	struct fixture *f = *state;
	struct store_job *j = NULL, *j2 = NULL;
	json_t *data = json_pack("{s:s}", "client_id", "c1");
	char kind[64], id1[33], id2[33];
	int n = 0;

	id(f, "kind", kind, sizeof(kind));
	assert_int_equal(store_job_add(f->store, kind, data, NOW, NOW, NOW + 100, id1), 0);
	assert_int_equal(store_job_add(f->store, kind, data, NOW, NOW + 50, NOW + 100, id2), 0);
	assert_string_not_equal(id1, id2);
	assert_int_equal(store_job_add(f->store, kind, data, NOW, NOW, NOW, NULL),
	                 ISSO_ERR_INVALID);

	/* Only the due one; the second claimant finds nothing while leased. */
	assert_int_equal(store_job_claim(f->store, kind, "node-a", NOW, 30, &j), 0);
	assert_non_null(j);
	assert_string_equal(j->id, id1);
	assert_string_equal(j->kind, kind);
	assert_true(json_equal(j->data, data));
	assert_int_equal(j->attempts, 1);
	assert_int_equal(j->expires_at, NOW + 100);
	assert_int_equal(store_job_claim(f->store, kind, "node-b", NOW + 1, 30, &j2), 0);
	assert_null(j2);

	/* Another node cannot finish or reschedule a job it does not hold. */
	assert_int_equal(store_job_done(f->store, id1, "node-b"), 0);
	assert_int_equal(store_job_retry(f->store, id1, "node-b", NOW), 0);
	assert_int_equal(store_job_claim(f->store, kind, "node-b", NOW + 1, 30, &j2), 0);
	assert_null(j2);

	/* Given back for later: due again only then. */
	assert_int_equal(store_job_retry(f->store, id1, "node-a", NOW + 10), 0);
	assert_int_equal(store_job_claim(f->store, kind, "node-b", NOW + 5, 30, &j2), 0);
	assert_null(j2);
	assert_int_equal(store_job_claim(f->store, kind, "node-b", NOW + 10, 30, &j2), 0);
	assert_non_null(j2);
	assert_string_equal(j2->id, id1);
	assert_int_equal(j2->attempts, 2);
	store_job_free(j2);
	j2 = NULL;

	/* node-b dies holding it: after its lease the job is claimable. */
	assert_int_equal(store_job_claim(f->store, kind, "node-a", NOW + 39, 30, &j2), 0);
	assert_null(j2);
	assert_int_equal(store_job_claim(f->store, kind, "node-a", NOW + 40, 30, &j2), 0);
	assert_non_null(j2);
	assert_int_equal(j2->attempts, 3);
	assert_int_equal(store_job_done(f->store, j2->id, "node-a"), 0);
	store_job_free(j2);
	j2 = NULL;

	/* The second job is due at +50; the first is gone. */
	assert_int_equal(store_job_claim(f->store, kind, "node-a", NOW + 60, 30, &j2), 0);
	assert_non_null(j2);
	assert_string_equal(j2->id, id2);
	assert_int_equal(store_job_retry(f->store, id2, "node-a", NOW + 60), 0);
	store_job_free(j2);
	j2 = NULL;

	/* Expired jobs are never claimed and purge removes them. */
	assert_int_equal(store_job_claim(f->store, kind, "node-a", NOW + 100, 30, &j2), 0);
	assert_null(j2);
	assert_int_equal(store_purge(f->store, NOW + 100, &n), 0);
	assert_true(n >= 1);
	assert_int_equal(store_job_claim(f->store, kind, "node-a", NOW + 60, 30, &j2), 0);
	assert_null(j2);

	store_job_free(j);
	json_decref(data);
}

static void
test_purge(void **state)
{
	struct fixture *f = *state;
	struct store_token *t = NULL;
	char old[64], live[64], used[64], g[64], cl[64], e1[64], e2[64], r1[64], r2[64];
	json_t *out = NULL;
	int n = -1, count = 0;
	bool won = false;

	id(f, "g", g, sizeof(g));
	id(f, "cl", cl, sizeof(cl));
	add_token(f, id(f, "old", old, sizeof(old)), TOKEN_CODE, g, cl, NULL, NOW - 1);
	add_token(f, id(f, "live", live, sizeof(live)), TOKEN_ACCESS, g, cl, NULL, NOW + 60);
	add_token(f, id(f, "used", used, sizeof(used)), TOKEN_CODE, g, cl, NULL, NOW + 60);
	assert_int_equal(store_token_use(f->store, used, NOW, &won), 0);
	assert_true(won);
	assert_int_equal(store_token_revoke(f->store, live), 0);
	assert_int_equal(store_eph_put(f->store, "txn", id(f, "e1", e1, sizeof(e1)), NULL, NOW), 0);
	assert_int_equal(store_eph_put(f->store, "txn", id(f, "e2", e2, sizeof(e2)), NULL, NOW + 1),
	                 0);
	/* A window of an hour ago and the current one. */
	assert_int_equal(
	    store_rate_hit(f->store, id(f, "r1", r1, sizeof(r1)), 60, NOW - 3600, &count), 0);
	assert_int_equal(store_rate_hit(f->store, id(f, "r2", r2, sizeof(r2)), 60, NOW, &count), 0);

	assert_int_equal(store_purge(f->store, NOW, &n), 0);
	if (fresh_db())
		assert_int_equal(n, 3);
	else
		assert_true(n >= 3);

	/* The expired token's row is gone: its hash can be added again. */
	add_token(f, old, TOKEN_CODE, g, cl, NULL, NOW + 60);
	/* Used and revoked rows stay until they expire. */
	assert_int_equal(store_token_get(f->store, used, NOW, &t), 0);
	assert_non_null(t);
	assert_true(t->used);
	store_token_free(t);
	assert_true(token_revoked(f, live));
	assert_int_equal(store_eph_get(f->store, "txn", e2, NOW, &out, NULL), 0);
	assert_non_null(out);
	json_decref(out);
	assert_int_equal(store_rate_hit(f->store, r2, 60, NOW, &count), 0);
	assert_int_equal(count, 2);

	/* Nothing more to do; NULL count is fine. */
	assert_int_equal(store_purge(f->store, NOW, NULL), 0);
	if (fresh_db()) {
		assert_int_equal(store_purge(f->store, NOW, &n), 0);
		assert_int_equal(n, 0);
		/* Later everything has expired. */
		assert_int_equal(store_purge(f->store, NOW + 10000, &n), 0);
		assert_int_equal(n, 5);
	}
}

/* Counters several nodes bump at once lose no count: every eph_incr,
 * rate_hit and throttle_take returns a value no other caller saw. */
#define COUNT_THREADS 6
#define COUNT_EACH    40

struct count_args {
	struct store *store;
	const char *key;
	pthread_barrier_t *barrier;
	int incr[COUNT_EACH], rate[COUNT_EACH];
	int errors;
};

static void *
count_thread(void *arg)
{
	struct count_args *a = arg;
	struct store_throttle t;

	pthread_barrier_wait(a->barrier);
	for (int i = 0; i < COUNT_EACH; i++) {
		if (store_eph_incr(a->store, "count", a->key, NOW, NOW + 600, &a->incr[i]) != 0)
			a->errors++;
		if (store_rate_hit(a->store, a->key, 3600, NOW, &a->rate[i]) != 0)
			a->errors++;
		if (store_throttle_take(a->store, a->key, NOW * 1000, 1, 1000000, 0, &t) != 0)
			a->errors++;
	}
	return NULL;
}

static void
test_counter_race(void **state)
{
	struct fixture *f = *state;
	struct count_args *args = calloc(COUNT_THREADS, sizeof(*args));
	bool *seen_incr = calloc(COUNT_THREADS * COUNT_EACH + 1, 1);
	bool *seen_rate = calloc(COUNT_THREADS * COUNT_EACH + 1, 1);
	const int total = COUNT_THREADS * COUNT_EACH;
	pthread_barrier_t barrier;
	pthread_t th[COUNT_THREADS];
	struct store_throttle t;
	char key[64];

	assert_non_null(args);
	assert_non_null(seen_incr);
	assert_non_null(seen_rate);
	id(f, "count", key, sizeof(key));
	assert_int_equal(pthread_barrier_init(&barrier, NULL, COUNT_THREADS), 0);
	for (int i = 0; i < COUNT_THREADS; i++) {
		args[i].store = f->store;
		args[i].key = key;
		args[i].barrier = &barrier;
		assert_int_equal(pthread_create(&th[i], NULL, count_thread, &args[i]), 0);
	}
	for (int i = 0; i < COUNT_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&barrier);
	for (int i = 0; i < COUNT_THREADS; i++) {
		assert_int_equal(args[i].errors, 0);
		for (int k = 0; k < COUNT_EACH; k++) {
			assert_in_range(args[i].incr[k], 1, total);
			assert_false(seen_incr[args[i].incr[k]]);
			seen_incr[args[i].incr[k]] = true;
			assert_in_range(args[i].rate[k], 1, total);
			assert_false(seen_rate[args[i].rate[k]]);
			seen_rate[args[i].rate[k]] = true;
		}
	}
	/* Every take counted one (no time passed, no hold). */
	assert_int_equal(store_throttle_get(f->store, key, NOW * 1000, &t), 0);
	assert_int_equal(t.level, total);
	free(seen_incr);
	free(seen_rate);
	free(args);
}

/* Workers of several nodes claim from one queue at once: each job is
 * claimed exactly once. */
struct claim_args {
	struct store *store;
	const char *kind;
	char owner[16];
	int claimed;
};

static void *
claim_thread(void *arg)
{
	struct claim_args *a = arg;
	struct store_job *j = NULL;

	for (;;) {
		if (store_job_claim(a->store, a->kind, a->owner, NOW, 60, &j) != 0 || j == NULL)
			break;
		a->claimed++;
		if (store_job_done(a->store, j->id, a->owner) != 0)
			a->claimed = -1000;
		store_job_free(j);
		j = NULL;
	}
	return NULL;
}

static void
test_job_claim_race(void **state)
{
	struct fixture *f = *state;
	struct claim_args args[6];
	pthread_t th[6];
	json_t *data = json_object();
	char kind[64];
	int total = 0;

	id(f, "race", kind, sizeof(kind));
	for (int i = 0; i < 60; i++)
		assert_int_equal(store_job_add(f->store, kind, data, NOW, NOW, NOW + 100, NULL), 0);
	for (int t = 0; t < 6; t++) {
		args[t].store = f->store;
		args[t].kind = kind;
		snprintf(args[t].owner, sizeof(args[t].owner), "node-%d", t);
		args[t].claimed = 0;
		assert_int_equal(pthread_create(&th[t], NULL, claim_thread, &args[t]), 0);
	}
	for (int t = 0; t < 6; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		assert_true(args[t].claimed >= 0);
		total += args[t].claimed;
	}
	assert_int_equal(total, 60);
	json_decref(data);
}

/* PostgreSQL only: the schema itself refuses to change or remove audit
 * rows, even to the store's own role. */
static void
test_audit_tamper_pgsql(void **state)
{
	struct fixture *f = *state;
	int64_t bad = -1;
	bool ok = false;

	if (!is_pgsql())
		skip();
	assert_int_equal(store_audit_append(f->store, NOW, "event", json_pack("{si}", "i", 1)), 0);
	assert_false(pg_admin("UPDATE audit SET data = '{}'"));
	assert_false(pg_admin("DELETE FROM audit"));
	assert_false(pg_admin("TRUNCATE audit"));
	assert_int_equal(store_audit_verify(f->store, &ok, &bad), 0);
	assert_true(ok);
}

/* PostgreSQL only: connections the server ends (as a restart does) are
 * replaced without failing the caller, and nothing is lost. */
static void
test_pgsql_reconnect(void **state)
{
	struct fixture *f = *state;
	json_t *data, *got = NULL;
	bool taken = false;
	char eid[64];
	int counter = -1;

	if (!is_pgsql())
		skip();
	data = json_pack("{s:s}", "a", "b");
	id(f, "conn", eid, sizeof(eid));
	assert_int_equal(store_eph_put(f->store, "test", eid, data, NOW + 60), 0);
	for (int round = 0; round < 3; round++) {
		assert_true(
		    pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
		             "WHERE application_name = 'issod' AND pid <> pg_backend_pid()"));
		usleep(50 * 1000);
		assert_int_equal(store_eph_get(f->store, "test", eid, NOW, &got, &counter), 0);
		assert_non_null(got);
		assert_true(json_equal(got, data));
		json_decref(got);
		got = NULL;
		assert_true(
		    pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
		             "WHERE application_name = 'issod' AND pid <> pg_backend_pid()"));
		usleep(50 * 1000);
		assert_int_equal(store_audit_append(f->store, NOW, "reconnect", NULL), 0);
	}
	assert_int_equal(store_eph_take(f->store, "test", eid, NOW, &taken), 0);
	assert_true(taken);
	json_decref(data);
}

/* Keys that are not UTF-8 (hostile input) find nothing, on every backend;
 * nothing is half-done. */
static void
test_non_utf8_keys(void **state)
{
	struct fixture *f = *state;
	struct store_client *c = NULL;
	struct store_token *t = NULL;
	json_t *data = NULL;
	bool won = true, taken = true, found = true;
	int counter = 0;
	char bad[64];

	snprintf(bad, sizeof(bad), "%s-\xff\xfe", f->prefix);
	assert_int_equal(store_client_get(f->store, bad, &c), 0);
	assert_null(c);
	assert_int_equal(store_token_get(f->store, bad, NOW, &t), 0);
	assert_null(t);
	assert_int_equal(store_token_use(f->store, bad, NOW, &won), 0);
	assert_false(won);
	assert_int_equal(store_eph_get(f->store, "sid", bad, NOW, &data, &counter), 0);
	assert_null(data);
	assert_int_equal(store_eph_take(f->store, "sid", bad, NOW, &taken), 0);
	assert_false(taken);
	data = json_object();
	assert_int_equal(store_eph_update(f->store, "sid", bad, data, NOW, &found), 0);
	assert_false(found);
	json_decref(data);
	data = NULL;
	assert_int_equal(store_eph_bump(f->store, "sid", bad, NOW, &counter), 0);
	assert_int_equal(counter, -1);
	assert_int_equal(store_token_revoke(f->store, bad), 0);
}

/* Binding a proven ID to a member: gold, the ID set; a merged person's
 * consents (the member's own win), releases and tokens go to the member
 * and the person goes; every refusal leaves everything as it was. */
static void
test_person_bind(void **state)
{
	struct fixture *f = *state;
	struct store_member m, *mo = NULL;
	struct store_person *po = NULL;
	struct seen_ctx l;
	char a[64], b[64], c[64], hb[64], hc[64], acc[64], ph[64], acc2[64], ph2[64];
	char tok[64], g[64];
	char *scope = NULL;
	json_t *data = json_pack("{s:s}", "method", "moica-card");

	id(f, "a", a, sizeof(a));
	id(f, "b", b, sizeof(b));
	id(f, "c", c, sizeof(c));
	id(f, "hb", hb, sizeof(hb));
	id(f, "hc", hc, sizeof(hc));
	id(f, "acc", acc, sizeof(acc));
	id(f, "ph", ph, sizeof(ph));
	id(f, "acc2", acc2, sizeof(acc2));
	id(f, "ph2", ph2, sizeof(ph2));
	id(f, "tok", tok, sizeof(tok));
	id(f, "g", g, sizeof(g));
	add_person(f, a, NULL);
	member_init(&m, a, acc, NULL, ph);
	assert_int_equal(store_member_add(f->store, &m), 0);
	/* b: the same human, known by card: two consents and a release. */
	add_person(f, b, hb);
	assert_int_equal(store_consent_put(f->store, b, "client-x", "openid profile", NOW), 0);
	assert_int_equal(store_consent_put(f->store, b, "client-y", "openid", NOW), 0);
	assert_int_equal(store_consent_put(f->store, a, "client-y", "openid email", NOW + 1), 0);
	assert_int_equal(store_release_add(f->store, b, "client-x", NOW, data), 0);
	add_token(f, tok, 3, g, "client-x", b, NOW + 100);

	/* Refusals change nothing: a is not the merged person itself, c is
	 * no member, and b's ID cannot be set while b holds it. */
	assert_int_equal(store_person_bind(f->store, a, a, hb, "p", NOW), ISSO_ERR_INVALID);
	assert_int_equal(store_person_bind(f->store, a, NULL, hb, "p", NOW), ISSO_ERR_CONFLICT);
	add_person(f, c, NULL);
	assert_int_equal(store_person_bind(f->store, c, NULL, hc, "p", NOW), ISSO_ERR_INVALID);
	assert_int_equal(store_person_get(f->store, c, &po), 0);
	assert_null(po->id_hash); /* rolled back with the member check */
	store_person_free(po);
	po = NULL;

	assert_int_equal(store_person_bind(f->store, a, b, hb, "sealed-new", NOW + 2), 0);
	assert_int_equal(store_person_get(f->store, a, &po), 0);
	assert_string_equal(po->id_hash, hb);
	assert_string_equal(po->pii, "sealed-new");
	store_person_free(po);
	po = NULL;
	assert_int_equal(store_member_get(f->store, a, &mo), 0);
	assert_int_equal(mo->level, MEMBER_GOLD);
	store_member_free(mo);
	mo = NULL;
	assert_int_equal(store_person_get(f->store, b, &po), 0);
	assert_null(po);
	assert_int_equal(store_consent_get(f->store, a, "client-x", &scope), 0);
	assert_string_equal(scope, "openid profile");
	free(scope);
	assert_int_equal(store_consent_get(f->store, a, "client-y", &scope), 0);
	assert_string_equal(scope, "openid email"); /* the member's own */
	free(scope);
	assert_int_equal(store_consent_get(f->store, b, "client-x", &scope), 0);
	assert_null(scope);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_release_list(f->store, a, 10, release_seen, &l), 0);
	assert_int_equal(l.n, 1);
	assert_true(token_revoked(f, tok));

	/* Binding again with the same ID is harmless; another ID is refused,
	 * and so is a merge of a member's person. */
	assert_int_equal(store_person_bind(f->store, a, NULL, hb, "sealed-2", NOW + 3), 0);
	assert_int_equal(store_person_bind(f->store, a, NULL, hc, "sealed-3", NOW + 4),
	                 ISSO_ERR_CONFLICT);
	member_init(&m, c, acc2, NULL, ph2);
	assert_int_equal(store_member_add(f->store, &m), 0);
	assert_int_equal(store_person_bind(f->store, c, a, hb, "p", NOW + 5), ISSO_ERR_CONFLICT);
	assert_int_equal(store_person_get(f->store, a, &po), 0);
	assert_string_equal(po->pii, "sealed-2");
	store_person_free(po);
	assert_int_equal(store_member_get(f->store, c, &mo), 0);
	assert_int_equal(mo->level, MEMBER_ORDINARY);
	store_member_free(mo);
	json_decref(data);
}

/* PostgreSQL only: a server that is not there fails the open with a
 * reason, quickly. */
static void
test_pgsql_unreachable(void **state)
{
	struct store *store = NULL;
	const char *error = NULL;

	(void)state;
	if (!is_pgsql())
		skip();
	/* no session: ISSO_ERR_IO, what issod waits out at start */
	assert_int_equal(store_open("postgresql", "host=/nonexistent-isso-dir dbname=isso",
	                            MIGRATIONS_DIR, &store, &error),
	                 ISSO_ERR_IO);
	assert_null(store);
	assert_non_null(error);
	assert_non_null(strstr(error, "cannot connect"));
	error = NULL;
	assert_int_equal(store_open("postgresql", "", MIGRATIONS_DIR, &store, &error),
	                 ISSO_ERR_INVALID);
	assert_null(store);
}

/* ---- the client cache (store_client_get_cached) ---- */

static uint64_t
cache_lookups(const char *result)
{
	return metrics_counter_get(&metrics_store_client_cache_lookups, result, NULL);
}

/* Another handle on the same database: another process, or another node. */
static struct store *
open_other(struct fixture *f)
{
	struct store *other = NULL;
	const char *error = NULL;

	assert_int_equal(store_open(test_driver, fixture_dsn(f), MIGRATIONS_DIR, &other, &error),
	                 0);
	assert_non_null(other);
	return other;
}

/* store_client_get_cached's answer (NULL when unknown); the caller frees. */
static struct store_client *
cached(struct store *store, const char *client_id)
{
	struct store_client *c = (struct store_client *)1;

	assert_int_equal(store_client_get_cached(store, client_id, &c), 0);
	return c;
}

static void
assert_same_string(const char *a, const char *b)
{
	if (a == NULL) {
		assert_null(b);
		return;
	}
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_string_equal(a, b);
}

static void
assert_same_json(const json_t *a, const json_t *b)
{
	if (a == NULL) {
		assert_null(b);
		return;
	}
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_true(json_equal(a, b));
}

/* b holds what a holds, in memory of its own. */
static void
assert_client_copy(const struct store_client *a, const struct store_client *b)
{
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_same_string(a->client_id, b->client_id);
	assert_same_string(a->secret_hash, b->secret_hash);
	assert_same_string(a->name, b->name);
	assert_same_string(a->purpose, b->purpose);
	assert_same_json(a->redirect_uris, b->redirect_uris);
	assert_same_json(a->post_logout_redirect_uris, b->post_logout_redirect_uris);
	assert_same_string(a->backchannel_logout_uri, b->backchannel_logout_uri);
	assert_same_string(a->scope, b->scope);
	assert_int_equal(a->public_client, b->public_client);
	assert_same_string(a->id_token_alg, b->id_token_alg);
	assert_same_string(a->auth_method, b->auth_method);
	assert_same_string(a->jwks_uri, b->jwks_uri);
	assert_same_json(a->jwks, b->jwks);
	assert_same_string(a->grant_types, b->grant_types);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->created_at, b->created_at);
	assert_same_json(a->settings, b->settings);
	assert_same_string(a->settings_text, b->settings_text);
}

/* A cached read answers what a fresh one does, whatever the status, each
 * time in a copy of the caller's own. */
static void
test_client_cache_copy(void **state)
{
	struct fixture *f = *state;
	struct store_client in, *fresh = NULL, *c1 = NULL, *c2 = NULL;
	uint64_t hits, misses;
	char a[64], b[64];

	store_set_client_cache(f->store, 60000);
	id(f, "a", a, sizeof(a));
	id(f, "b", b, sizeof(b));
	client_init(&in, a, 300);
	in.jwks_uri = "https://a.example/jwks";
	in.grant_types = "client_credentials";
	in.settings = json_pack("{s:b, s:[s], s:{s:s}}", "require_par", 1, "optional_scopes",
	                        "email", "application", "state", "停權");
	in.status = CLIENT_SUSPENDED;
	assert_int_equal(store_client_add(f->store, &in), 0);
	json_decref(in.settings);
	in.settings = NULL;
	client_clear(&in);
	memset(&in, 0, sizeof(in));
	in.client_id = b;
	in.name = "public";
	in.public_client = true;
	in.id_token_alg = "RS256";
	in.auth_method = "none";
	in.created_at = 100;
	assert_int_equal(store_client_add(f->store, &in), 0);

	assert_int_equal(store_client_get(f->store, a, &fresh), 0);
	hits = cache_lookups("hit");
	misses = cache_lookups("miss");
	c1 = cached(f->store, a);
	assert_int_equal(cache_lookups("miss"), misses + 1);
	c2 = cached(f->store, a);
	assert_int_equal(cache_lookups("hit"), hits + 1);
	assert_client_copy(fresh, c1);
	assert_client_copy(fresh, c2);
	assert_client_copy(c1, c2);
	/* A caller's copy is its own: changing it changes no later answer. */
	assert_int_equal(
	    json_array_append_new(c2->redirect_uris, json_string("https://evil.example/cb")), 0);
	assert_int_equal(json_object_set_new(c2->settings, "require_par", json_false()), 0);
	assert_int_equal(json_object_clear(json_object_get(c2->settings, "application")), 0);
	free(c2->name);
	c2->name = strdup("changed");
	store_client_free(c2);
	c2 = cached(f->store, a);
	assert_int_equal(cache_lookups("hit"), hits + 2);
	assert_client_copy(fresh, c2);
	store_client_free(fresh);
	store_client_free(c1);
	store_client_free(c2);

	/* Without the optional values. */
	assert_int_equal(store_client_get(f->store, b, &fresh), 0);
	c1 = cached(f->store, b);
	c2 = cached(f->store, b);
	assert_int_equal(cache_lookups("hit"), hits + 3);
	assert_null(c2->secret_hash);
	assert_null(c2->jwks);
	assert_client_copy(fresh, c1);
	assert_client_copy(fresh, c2);
	store_client_free(fresh);
	store_client_free(c1);
	store_client_free(c2);

	c1 = (struct store_client *)1;
	assert_int_equal(store_client_get_cached(f->store, NULL, &c1), ISSO_ERR_INVALID);
	assert_null(c1);
}

/* Every client write through a store is seen by its next cached read,
 * however long the rows may be kept. */
static void
test_client_cache_own_writes(void **state)
{
	struct fixture *f = *state;
	struct store_client in, *c, *r = NULL;
	json_t *settings, *settings2;
	bool found = false;
	char a[64];

	store_set_client_cache(f->store, 60000);
	id(f, "a", a, sizeof(a));
	client_init(&in, a, 300);
	assert_int_equal(store_client_add(f->store, &in), 0);
	client_clear(&in);
	c = cached(f->store, a);
	assert_int_equal(c->status, CLIENT_PENDING);
	store_client_free(c);

	assert_int_equal(store_client_set_status(f->store, a, CLIENT_APPROVED), 0);
	c = cached(f->store, a);
	assert_int_equal(c->status, CLIENT_APPROVED);
	store_client_free(c);

	assert_int_equal(store_client_set_secret(f->store, a, "bb22"), 0);
	c = cached(f->store, a);
	assert_string_equal(c->secret_hash, "bb22");
	store_client_free(c);

	settings = json_pack("{s:s}", "k", "v1");
	assert_int_equal(store_client_set_settings(f->store, a, settings), 0);
	c = cached(f->store, a);
	assert_true(json_equal(c->settings, settings));
	store_client_free(c);

	assert_int_equal(store_client_get(f->store, a, &r), 0);
	free(r->name);
	r->name = strdup("新名稱");
	assert_int_equal(store_client_update(f->store, r, CLIENT_APPROVED, &found), 0);
	assert_true(found);
	store_client_free(r);
	r = NULL;
	c = cached(f->store, a);
	assert_string_equal(c->name, "新名稱");
	store_client_free(c);

	assert_int_equal(store_client_get(f->store, a, &r), 0);
	settings2 = json_pack("{s:s}", "suspended_by", "city");
	assert_int_equal(store_client_set_state(f->store, r, CLIENT_SUSPENDED, "openid", "cc33",
	                                        settings2, &found),
	                 0);
	assert_true(found);
	store_client_free(r);
	c = cached(f->store, a);
	assert_int_equal(c->status, CLIENT_SUSPENDED);
	assert_string_equal(c->scope, "openid");
	assert_string_equal(c->secret_hash, "cc33");
	assert_true(json_equal(c->settings, settings2));
	store_client_free(c);

	assert_int_equal(store_client_delete(f->store, a, &found), 0);
	assert_true(found);
	assert_null(cached(f->store, a));

	/* Registered again under the same id. */
	client_init(&in, a, 400);
	in.name = "再次";
	assert_int_equal(store_client_add(f->store, &in), 0);
	client_clear(&in);
	c = cached(f->store, a);
	assert_string_equal(c->name, "再次");
	assert_int_equal(c->created_at, 400);
	store_client_free(c);
	json_decref(settings);
	json_decref(settings2);
}

/* A change made through another handle (another process or node) is seen
 * once the cached row is older than the lifetime, and not before; an
 * unknown id is never cached; with 0 every lookup reads the store. */
static void
test_client_cache_other_handle(void **state)
{
	struct fixture *f = *state;
	struct store *other = open_other(f);
	struct store_client in, *c;
	uint64_t hits, misses;
	bool found = false;
	char a[64], b[64];

	store_set_client_cache(f->store, 60000);
	id(f, "a", a, sizeof(a));
	id(f, "b", b, sizeof(b));
	client_init(&in, a, 300);
	assert_int_equal(store_client_add(f->store, &in), 0);
	client_clear(&in);
	c = cached(f->store, a);
	assert_int_equal(c->status, CLIENT_PENDING);
	store_client_free(c);

	assert_int_equal(store_client_set_status(other, a, CLIENT_APPROVED), 0);
	/* Not seen while the row is fresh, though a plain read sees it. */
	c = cached(f->store, a);
	assert_int_equal(c->status, CLIENT_PENDING);
	store_client_free(c);
	assert_int_equal(store_client_get(f->store, a, &c), 0);
	assert_int_equal(c->status, CLIENT_APPROVED);
	store_client_free(c);
	/* Seen once the row is older than the lifetime. */
	store_set_client_cache(f->store, 50);
	usleep(60 * 1000);
	c = cached(f->store, a);
	assert_int_equal(c->status, CLIENT_APPROVED);
	store_client_free(c);

	/* Likewise with 50 ms from the read on: a secret rotated elsewhere. */
	c = cached(f->store, a);
	assert_string_equal(c->secret_hash, "aa11");
	store_client_free(c);
	assert_int_equal(store_client_set_secret(other, a, "dd44"), 0);
	usleep(60 * 1000);
	c = cached(f->store, a);
	assert_string_equal(c->secret_hash, "dd44");
	store_client_free(c);

	/* Deleted elsewhere: gone after the lifetime. */
	c = cached(f->store, a);
	assert_non_null(c);
	store_client_free(c);
	assert_int_equal(store_client_delete(other, a, &found), 0);
	assert_true(found);
	usleep(60 * 1000);
	assert_null(cached(f->store, a));

	/* An unknown id is not cached: added elsewhere, found at once. */
	store_set_client_cache(f->store, 60000);
	assert_null(cached(f->store, b));
	client_init(&in, b, 300);
	assert_int_equal(store_client_add(other, &in), 0);
	client_clear(&in);
	c = cached(f->store, b);
	assert_non_null(c);
	assert_int_equal(c->status, CLIENT_PENDING);
	store_client_free(c);

	/* 0: no cache, every lookup reads the store. */
	store_set_client_cache(f->store, 0);
	hits = cache_lookups("hit");
	misses = cache_lookups("miss");
	assert_int_equal(store_client_set_status(other, b, CLIENT_APPROVED), 0);
	c = cached(f->store, b);
	assert_int_equal(c->status, CLIENT_APPROVED);
	store_client_free(c);
	assert_int_equal(store_client_set_status(other, b, CLIENT_SUSPENDED), 0);
	c = cached(f->store, b);
	assert_int_equal(c->status, CLIENT_SUSPENDED);
	store_client_free(c);
	assert_int_equal(cache_lookups("hit"), hits);
	assert_int_equal(cache_lookups("miss"), misses);
	store_close(other);
}

/* A row the store cannot read is an error each time, never cached: once
 * it is readable again it is found at once. */
static void
test_client_cache_errors(void **state)
{
	struct fixture *f = *state;
	struct store_client in, *c = NULL;
	char a[64], sql[256];

	if (!is_pgsql() && !fresh_db())
		skip();
	store_set_client_cache(f->store, 60000);
	id(f, "a", a, sizeof(a));
	client_init(&in, a, 300);
	assert_int_equal(store_client_add(f->store, &in), 0);
	client_clear(&in);
	snprintf(sql, sizeof(sql),
	         "UPDATE clients SET redirect_uris = 'not json' WHERE client_id = '%s'", a);
	if (is_pgsql())
		assert_true(pg_admin(sql));
	else
		sqlite_tamper(f->dsn, sql, true);
	assert_int_equal(store_client_get_cached(f->store, a, &c), ISSO_ERR_STORE);
	assert_null(c);
	assert_int_equal(store_client_get_cached(f->store, a, &c), ISSO_ERR_STORE);
	snprintf(sql, sizeof(sql), "UPDATE clients SET redirect_uris = '[]' WHERE client_id = '%s'",
	         a);
	if (is_pgsql())
		assert_true(pg_admin(sql));
	else
		sqlite_tamper(f->dsn, sql, true);
	c = cached(f->store, a);
	assert_non_null(c);
	assert_int_equal(json_array_size(c->redirect_uris), 0);
	store_client_free(c);
}

/* The cache holds at most STORE_CLIENT_CACHE_MAX rows, and goes on
 * serving when more clients are looked up. */
static void
test_client_cache_bound(void **state)
{
	struct fixture *f = *state;
	struct store_client in, *c;
	uint64_t hits, misses;
	char cid[64], name[16];
	const int n = STORE_CLIENT_CACHE_MAX + 1;

	store_set_client_cache(f->store, 60000);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		client_init(&in, id(f, name, cid, sizeof(cid)), i);
		assert_int_equal(store_client_add(f->store, &in), 0);
		client_clear(&in);
	}
	misses = cache_lookups("miss");
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		c = cached(f->store, id(f, name, cid, sizeof(cid)));
		assert_non_null(c);
		assert_string_equal(c->client_id, cid);
		store_client_free(c);
	}
	assert_int_equal(cache_lookups("miss"), misses + (uint64_t)n);
	hits = cache_lookups("hit");
	misses = cache_lookups("miss");
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		c = cached(f->store, id(f, name, cid, sizeof(cid)));
		assert_non_null(c);
		assert_string_equal(c->client_id, cid);
		store_client_free(c);
	}
	/* Not all n rows were kept, most were. */
	assert_true(cache_lookups("miss") > misses);
	assert_true(cache_lookups("hit") - hits >= (uint64_t)n / 2);
}

struct cache_race {
	struct store *store;
	const char *client_id;
	atomic_bool stop;
	atomic_int errors;
};

static void *
cache_race_reader(void *arg)
{
	struct cache_race *r = arg;
	struct store_client *c;

	while (!atomic_load(&r->stop)) {
		c = NULL;
		if (store_client_get_cached(r->store, r->client_id, &c) < 0 || c == NULL)
			atomic_fetch_add(&r->errors, 1);
		store_client_free(c);
	}
	return NULL;
}

/* Readers that read a row just before a write through the same store do
 * not put it back in the cache after the write: the writer's next read
 * sees its write, every time. */
static void
test_client_cache_race(void **state)
{
	struct fixture *f = *state;
	struct cache_race r = {.store = f->store};
	struct store_client in, *c;
	pthread_t threads[3];
	json_t *settings;
	char a[64], b[64];

	store_set_client_cache(f->store, 60000);
	id(f, "a", a, sizeof(a));
	id(f, "b", b, sizeof(b));
	client_init(&in, a, 300);
	assert_int_equal(store_client_add(f->store, &in), 0);
	client_clear(&in);
	client_init(&in, b, 300);
	assert_int_equal(store_client_add(f->store, &in), 0);
	client_clear(&in);
	r.client_id = a;
	atomic_init(&r.stop, false);
	atomic_init(&r.errors, 0);
	for (size_t i = 0; i < ISSO_N_ELEMENTS(threads); i++)
		assert_int_equal(pthread_create(&threads[i], NULL, cache_race_reader, &r), 0);
	for (int i = 0; i < 200; i++) {
		settings = json_pack("{s:i}", "n", i);
		/* A write to another client empties the cache: the readers
		 * are reading a's row again when it changes. */
		assert_int_equal(store_client_set_status(f->store, b, i % 3), 0);
		assert_int_equal(store_client_set_settings(f->store, a, settings), 0);
		/* Time for a reader that read the row before the write to
		 * finish its lookup. */
		usleep(1000);
		c = cached(f->store, a);
		assert_non_null(c);
		assert_int_equal(json_integer_value(json_object_get(c->settings, "n")), i);
		store_client_free(c);
		json_decref(settings);
	}
	atomic_store(&r.stop, true);
	for (size_t i = 0; i < ISSO_N_ELEMENTS(threads); i++)
		pthread_join(threads[i], NULL);
	assert_int_equal(atomic_load(&r.errors), 0);
}

int
main(void)
{
	const char *drv = getenv("ISSO_TEST_STORE_DRIVER");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_errors),
	    cmocka_unit_test_setup_teardown(test_migrations_idempotent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrations_sequence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_person, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_member, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_person_bind, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_member_lockout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_org, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_org_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_roles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_consent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_consent_records_releases, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_revoke_sets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_update, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_set_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_use_race, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_exchange, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_exchange_race, setup, teardown),
	    cmocka_unit_test(test_memory_sqlite),
	    cmocka_unit_test_setup_teardown(test_eph, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_eph_take_incr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_eph_count_ping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ping_moved_sqlite, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_throttle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_code_add, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit_tamper_sqlite, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_open_transaction_sqlite, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jobs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_job_claim_race, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_counter_race, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit_tamper_pgsql, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pgsql_reconnect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_non_utf8_keys, setup, teardown),
	    cmocka_unit_test(test_pgsql_unreachable),
	    cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_devices, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_cache_copy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_cache_own_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_cache_other_handle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_cache_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_cache_bound, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_cache_race, setup, teardown),
	};

	if (drv != NULL && drv[0] != '\0')
		test_driver = drv;
	env_dsn = getenv("ISSO_TEST_STORE_DSN");
	if (env_dsn != NULL && env_dsn[0] == '\0')
		env_dsn = NULL;
	if (secret_init() != 0)
		return 1;
	log_init(2, LOG_WARN);
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
