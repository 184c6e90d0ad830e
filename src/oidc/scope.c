/* Scope words: what an authorization request is granted, the level
 * acr_values ask for, what a consent covers, and the optional fields a
 * client registered. Pure functions of their arguments. */
#include <stdlib.h>
#include <string.h>

#include "auth/claims.h"
#include "auth/method.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/pool.h"
#include "lib/xmalloc.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define SCOPE_MAX 2048 /* bytes of a scope parameter */

bool
oidc_scope_subset(const char *sub, const char *scope)
{
	for (const char *p = sub; *p != '\0';) {
		size_t n = strcspn(p, " ");
		char w[64];
		if (n >= sizeof(w))
			return false;
		memcpy(w, p, n);
		w[n] = '\0';
		if (n > 0 && !scope_has(scope, w))
			return false;
		p += n;
		while (*p == ' ')
			p++;
	}
	return true;
}

unsigned
oidc_scope_bit(const char *word, size_t len)
{
	for (unsigned i = 0; i < claim_scopes_count; i++) {
		if (strlen(claim_scopes[i].scope) == len &&
		    strncmp(claim_scopes[i].scope, word, len) == 0)
			return claim_scopes[i].bit;
	}
	return 0;
}

/* Requested scopes that the client was approved for, in request order. */
static char *
scope_allowed(struct pool *pool, const char *requested, const char *approved)
{
	struct buf b;
	const char *p = requested;
	char *out;

	buf_init(&b, SCOPE_MAX + 1);
	while (*p != '\0') {
		size_t n = strcspn(p, " ");
		if (n > 0 && n < 64) {
			char word[64];
			memcpy(word, p, n);
			word[n] = '\0';
			if (scope_known(word) && scope_has(approved, word) &&
			    !scope_has(b.data, word)) {
				if (b.len > 0)
					buf_addc(&b, ' ');
				buf_addstr(&b, word);
			}
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	out = pool_strdup(pool, b.data != NULL ? b.data : "");
	buf_free(&b);
	return out;
}

/* scope without the word name. */
static char *
scope_without(struct pool *pool, const char *scope, const char *name)
{
	struct buf b;
	char *out;

	buf_init(&b, SCOPE_MAX + 1);
	for (const char *p = scope; *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n > 0 && !(n == strlen(name) && strncmp(p, name, n) == 0)) {
			if (b.len > 0)
				buf_addc(&b, ' ');
			buf_add(&b, p, n);
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	out = pool_strdup(pool, b.data != NULL ? b.data : "");
	buf_free(&b);
	return out;
}

/* See oidc-private.h. */
char *
oidc_scope_granted(struct pool *pool, const char *requested, const char *approved,
                   const char *prompt, const char *grant_types)
{
	char *granted = scope_allowed(pool, requested, approved);

	/* OIDC Core §11: offline_access only with prompt=consent (the
	 * citizen is asked every time) and only for a client that may
	 * refresh; otherwise it is ignored. */
	if (scope_has(granted, "offline_access") &&
	    (prompt == NULL || !scope_has(prompt, "consent") ||
	     !scope_has(grant_types != NULL ? grant_types : STORE_CLIENT_DEFAULT_GRANTS,
	                "refresh_token")))
		granted = scope_without(pool, granted, "offline_access");
	return granted;
}

/* See oidc-private.h. */
enum loa
oidc_min_loa(const char *acr_values)
{
	enum loa best = 0;
	const char *p = acr_values;

	while (p != NULL && *p != '\0') {
		size_t n = strcspn(p, " ");
		char word[64];
		if (n > 0 && n < sizeof(word)) {
			memcpy(word, p, n);
			word[n] = '\0';
			enum loa l = loa_parse(word);
			if (l != 0 && (best == 0 || l < best))
				best = l;
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	return best == 0 ? LOA_LOW : best;
}

char *
oidc_scope_consented(const char *scope, const char *consented)
{
	struct buf b;
	char w[66], *out;

	buf_init(&b, 4096);
	for (const char *p = scope; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n > 0 && n + 2 <= sizeof(w)) {
			memcpy(w, p, n);
			w[n] = '-';
			w[n + 1] = '\0';
			if (consented == NULL || !scope_has(consented, w)) {
				if (b.len > 0)
					buf_addc(&b, ' ');
				buf_add(&b, p, n);
			}
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	out = xstrdup(b.data != NULL ? b.data : "");
	buf_free(&b);
	return out;
}

bool
oidc_scope_optional(const struct store_client *c, const char *word)
{
	size_t i;
	json_t *v;

	if (c == NULL || word == NULL || oidc_scope_bit(word, strlen(word)) == 0)
		return false;
	json_array_foreach(json_object_get(c->settings, "optional_scopes"), i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), word) == 0)
			return true;
	}
	return false;
}

int
oidc_optional_scopes_check(const json_t *settings, const char *client_scope, const char **why_r)
{
	json_t *list = json_object_get(settings, "optional_scopes");
	size_t i, j;
	json_t *v;

	*why_r = NULL;
	if (list == NULL)
		return 0;
	if (!json_is_array(list) || json_array_size(list) > claim_scopes_count) {
		*why_r = "optional_scopes must be an array of the client's claim scopes";
		return ISSO_ERR_INVALID;
	}
	json_array_foreach(list, i, v)
	{
		const char *w = json_string_value(v);
		if (w == NULL || oidc_scope_bit(w, strlen(w)) == 0) {
			*why_r = "an optional scope must be a scope that releases a field";
			return ISSO_ERR_INVALID;
		}
		if (client_scope == NULL || !scope_has(client_scope, w)) {
			*why_r = "an optional scope must be one the client is approved for";
			return ISSO_ERR_INVALID;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(json_string_value(json_array_get(list, j)), w) == 0) {
				*why_r = "an optional scope is listed twice";
				return ISSO_ERR_INVALID;
			}
		}
	}
	return 0;
}

json_t *
oidc_scope_words_where(const char *scope, bool (*keep)(const char *word, const void *ctx),
                       const void *ctx)
{
	json_t *out = json_array();
	char w[64];

	for (const char *p = scope; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n > 0 && n < sizeof(w)) {
			memcpy(w, p, n);
			w[n] = '\0';
			if (keep(w, ctx))
				json_array_append_new(out, json_string(w));
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	return out;
}

static bool
optional_word(const char *word, const void *client)
{
	return oidc_scope_optional(client, word);
}

json_t *
oidc_scope_optional_list(const struct store_client *c, const char *scope)
{
	return oidc_scope_words_where(scope, optional_word, c);
}

int
oidc_scope_decline(const struct store_client *c, const char *scope, const json_t *declined,
                   char **declined_r, char **released_r)
{
	struct buf no, yes;
	size_t i, j;
	json_t *v;

	*declined_r = NULL;
	*released_r = NULL;
	if (scope == NULL)
		return ISSO_ERR_INVALID;
	if (declined != NULL &&
	    (!json_is_array(declined) || json_array_size(declined) > claim_scopes_count))
		return ISSO_ERR_INVALID;
	json_array_foreach(declined, i, v)
	{
		const char *w = json_string_value(v);
		/* Only the request's own optional fields, each once. */
		if (w == NULL || json_string_length(v) != strlen(w) || !scope_has(scope, w) ||
		    !oidc_scope_optional(c, w))
			return ISSO_ERR_INVALID;
		for (j = 0; j < i; j++)
			if (strcmp(json_string_value(json_array_get(declined, j)), w) == 0)
				return ISSO_ERR_INVALID;
	}
	buf_init(&no, SCOPE_MAX + 1);
	buf_init(&yes, SCOPE_MAX + 1);
	for (const char *p = scope; *p != '\0';) {
		size_t n = strcspn(p, " ");
		bool out = false;
		json_array_foreach(declined, i, v)
		{
			if (strlen(json_string_value(v)) == n &&
			    strncmp(json_string_value(v), p, n) == 0)
				out = true;
		}
		if (n > 0) {
			struct buf *b = out ? &no : &yes;
			if (b->len > 0)
				buf_addc(b, ' ');
			buf_add(b, p, n);
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	*declined_r = xstrdup(no.data != NULL ? no.data : "");
	*released_r = xstrdup(yes.data != NULL ? yes.data : "");
	buf_free(&no);
	buf_free(&yes);
	return 0;
}
