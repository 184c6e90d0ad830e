/* The registry of login methods and assurance levels. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/app.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "auth/page.h"
#include "lib/log.h"
#include "lib/addr.h"
#include "lib/secret.h"
#include "store/store.h"

/* The registry, one method per line in portal order: adding a method is
 * its own files (src/auth/methods/<id>.c, its templates, its messages)
 * and one line here (docs/ARCHITECTURE.md, "Adding a method"). */
/* clang-format off */
#define METHOD_LIST(X)          \
	X(method_taipeipass)    \
	X(method_moica_mobile)  \
	X(method_telecom)       \
	X(method_moica_card)    \
	X(method_nhi_card)
/* clang-format on */

#define METHOD_EXTERN(m) extern const struct method m;
#define METHOD_ENTRY(m)  &m,
METHOD_LIST(METHOD_EXTERN)

const struct method *const methods[] = {METHOD_LIST(METHOD_ENTRY) NULL};

const struct method *
method_find(const char *id)
{
	if (id == NULL)
		return NULL;
	for (const struct method *const *m = methods; *m != NULL; m++) {
		if (strcmp((*m)->id, id) == 0)
			return *m;
	}
	return NULL;
}

const struct method_step *
method_step_find(const struct method *m, const char *name)
{
	for (const struct method_step *s = m->steps; s != NULL && s->name != NULL; s++) {
		if (strcmp(s->name, name) == 0)
			return s;
	}
	return NULL;
}

/* The index of m in methods[], or -1. */
static int
method_index(const struct method *m)
{
	for (int i = 0; methods[i] != NULL; i++) {
		if (methods[i] == m)
			return i;
	}
	return -1;
}

static const struct method_setup *
method_setup_of(const struct isso_app *app, const struct method *m)
{
	int i = method_index(m);

	return i < 0 || app->method_setups == NULL ? NULL : &app->method_setups[i];
}

bool
method_available(const struct isso_app *app, const struct method *m)
{
	const struct method_setup *s = method_setup_of(app, m);

	return s != NULL && s->unset[0] == '\0';
}

bool
method_register_available(const struct isso_app *app, const struct method *m)
{
	const struct method_setup *s = method_setup_of(app, m);

	return m->register_path != NULL && s != NULL && s->register_unset[0] == '\0';
}

void *
method_state_of(const struct isso_app *app, const struct method *m)
{
	const struct method_setup *s = method_setup_of(app, m);

	return s != NULL ? s->state : NULL;
}

/* True when the comma-separated list has item. */
static bool
list_has(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; *p != '\0'; p += strcspn(p, ","), p += *p == ',') {
		if (strncmp(p, item, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
	}
	return false;
}

/* Appends item to the comma-separated list in dst (size n) unless there. */
static void
list_add(char *dst, size_t n, const char *item)
{
	size_t len = strlen(dst);

	if (item[0] == '\0' || list_has(dst, item))
		return;
	snprintf(dst + len, n - len, "%s%s", len > 0 ? "," : "", item);
}

void
method_setup_unset(char *dst, size_t n, const char *setting)
{
	list_add(dst, n, setting);
}

/* The unset list of m as method_log_unavailable names it ("" when
 * nothing is missing), its id in id (size n). */
static const char *
method_missing(const struct isso_app *app, const struct method *m, char *id, size_t n)
{
	const struct method_setup *s = method_setup_of(app, m);

	if (s == NULL)
		return "";
	snprintf(id, n, "%s", m->id);
	if (s->unset[0] != '\0')
		return s->unset;
	if (m->register_path != NULL && s->register_unset[0] != '\0') {
		snprintf(id, n, "%s/register", m->id);
		return s->register_unset;
	}
	return "";
}

void
method_log_unavailable(const struct isso_app *app)
{
	char ids[256] = "", settings[512] = "", id[64], one[128];
	const char *unset;

	/* each method's own setting (the first it names) in portal order,
	 * then the shared ones they also name */
	for (int pass = 0; pass < 2; pass++) {
		for (const struct method *const *m = methods; *m != NULL; m++) {
			unset = method_missing(app, *m, id, sizeof(id));
			if (unset[0] == '\0')
				continue;
			if (pass == 0)
				list_add(ids, sizeof(ids), id);
			for (const char *p = unset; *p != '\0';
			     p += strcspn(p, ","), p += *p == ',') {
				snprintf(one, sizeof(one), "%.*s", (int)strcspn(p, ","), p);
				list_add(settings, sizeof(settings), one);
				if (pass == 0)
					break;
			}
		}
	}
	if (ids[0] != '\0')
		log_warn("methods_unavailable", "methods", ids, "unset", settings, NULL);
}

static const char *const loa_names[] = {
    [LOA_LOW] = "urn:isso:loa:low",
    [LOA_SUBSTANTIAL] = "urn:isso:loa:substantial",
    [LOA_HIGH] = "urn:isso:loa:high",
};

const char *
loa_name(enum loa loa)
{
	if (loa < LOA_LOW || loa > LOA_HIGH)
		return loa_names[LOA_LOW];
	return loa_names[loa];
}

enum loa
loa_parse(const char *name)
{
	if (name == NULL)
		return 0;
	for (int l = LOA_LOW; l <= LOA_HIGH; l++) {
		if (strcmp(loa_names[l], name) == 0)
			return (enum loa)l;
	}
	return 0;
}

bool
method_addr_limited(struct isso_app *app, struct http_req *req, const char *what)
{
	char key[128], addr[ADDR_KEY_MAX];
	int count = 0;

	snprintf(key, sizeof(key), "%s:%s", what, addr_limit_key(http_remote_addr(req), addr));
	if (store_rate_hit(app->store, key, 60, app_now(), &count) < 0)
		return true;
	return count > app->cfg->security.ip_rate_per_min;
}

bool
method_value_limited(struct isso_app *app, const char *key_prefix, const char *domain,
                     const char *value, int window_seconds, int max)
{
	char hash[65], key[128];
	int count = 0;

	secret_lookup_hash(&app->secrets, domain, value, hash);
	snprintf(key, sizeof(key), "%s:%s", key_prefix, hash);
	if (store_rate_hit(app->store, key, window_seconds, app_now(), &count) < 0)
		return true;
	return count > max;
}

json_t *
method_steps(struct isso_app *app, struct http_req *req, const char *const *keys, int current)
{
	json_t *steps = json_array();

	for (int i = 0; keys != NULL && keys[i] != NULL; i++)
		json_array_append_new(steps, json_pack("{s:s, s:b, s:b}", "label",
		                                       page_text(app, req, keys[i]), "current",
		                                       i == current, "done", i < current));
	return steps;
}

json_t *
method_state(json_t *txn, const char *key)
{
	json_t *st = json_object_get(txn, key);

	if (!json_is_object(st)) {
		st = json_object();
		json_object_set_new(txn, key, st);
	}
	return st;
}

int64_t
method_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
method_txn_save(struct isso_app *app, struct http_req *req, const char *id, json_t *txn)
{
	if (flow_txn_save(app, id, txn) == 0)
		return true;
	page_error(app, req, 400, "error.txn_title", "error.txn_expired", NULL);
	return false;
}

char *
method_state_open(struct isso_app *app, json_t *st, const char *key)
{
	const char *sealed = json_string_value(json_object_get(st, key));
	char *plain = NULL;

	if (sealed == NULL || secret_open(&app->secrets, sealed, &plain) < 0)
		return NULL;
	return plain;
}

const char *
method_keep_txn(struct http_req *req)
{
	static const char b64url[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *t = http_param(req, "t");

	return t != NULL && strlen(t) == 43 && strspn(t, b64url) == 43 ? t : NULL;
}
