/* The existing iSSO / TaipeiPass API's names (docs/legacy-api.md): its
 * scope names and the iSSO scope each follows, the member data field each
 * fills, and its short codes. Used by the authorization and code steps
 * and by the legacy endpoints (legacy.c); calls no endpoint's file. */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/pool.h"
#include "lib/secret.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define LEGACY_SCOPE_MAX 2048

/* The names agencies send (oidc-private.h: struct oidc_legacy_scope). */
const struct oidc_legacy_scope oidc_legacy_scopes[] = {
    {"uuid", "uuid", "id"},
    {"account", "profile", "account"},
    {"member_type", NULL, "memberType"},
    {"verify_level", NULL, "verifyLevel"},
    {"formatted_name", "profile", "username"},
    {"real_name", "profile", "realName"},
    {"email", "email", "email"},
    {"phone_no", "phone", "phoneNo"},
    {"id_no", "id_number", "idNo"},
    {"addresses", "address", "addresses"},
    {"resident_address", "address", "residentAddress"},
    /* not seen in agencies' code: iSSO's name for the birthday field */
    {"birthday", "birthdate", "birthday"},
};
const size_t oidc_legacy_scopes_count = sizeof(oidc_legacy_scopes) / sizeof(oidc_legacy_scopes[0]);

const struct oidc_legacy_scope *
oidc_legacy_scope_find(const char *word, size_t n)
{
	for (size_t i = 0; i < oidc_legacy_scopes_count; i++) {
		if (strlen(oidc_legacy_scopes[i].name) == n &&
		    strncmp(oidc_legacy_scopes[i].name, word, n) == 0)
			return &oidc_legacy_scopes[i];
	}
	return NULL;
}

static const char short_code_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

void
oidc_legacy_new_code(char out[44], char hash[65])
{
	for (size_t i = 0; i < OIDC_LEGACY_SHORT_CODE_LEN; i++)
		out[i] = short_code_chars[randombytes_uniform(sizeof(short_code_chars) - 1)];
	out[OIDC_LEGACY_SHORT_CODE_LEN] = '\0';
	secret_sha256_hex(out, OIDC_LEGACY_SHORT_CODE_LEN, hash);
}

bool
oidc_legacy_allowed(const struct store_client *c)
{
	return c != NULL && !c->public_client && c->secret_hash != NULL &&
	       json_is_true(json_object_get(c->settings, "legacy_api"));
}

char *
oidc_legacy_scope_parse(struct pool *pool, const char *scope)
{
	struct buf b;
	char *out;

	buf_init(&b, LEGACY_SCOPE_MAX + 1);
	for (const char *p = scope != NULL ? scope : ""; *p != '\0';) {
		size_t n = strcspn(p, " ,");
		const struct oidc_legacy_scope *ls = n > 0 ? oidc_legacy_scope_find(p, n) : NULL;

		if (ls != NULL && !scope_has(b.data, ls->name)) {
			if (b.len > 0)
				buf_addc(&b, ' ');
			buf_addstr(&b, ls->name);
		}
		p += n;
		while (*p == ' ' || *p == ',')
			p++;
	}
	out = pool_strdup(pool, b.data != NULL ? b.data : "");
	buf_free(&b);
	return out;
}

char *
oidc_legacy_scope_map(struct pool *pool, const char *legacy_scope)
{
	struct buf b;
	char *out;

	buf_init(&b, LEGACY_SCOPE_MAX + 1);
	for (size_t i = 0; i < oidc_legacy_scopes_count; i++) {
		const char *s = oidc_legacy_scopes[i].scope;
		if (s == NULL || !scope_has(legacy_scope, oidc_legacy_scopes[i].name) ||
		    scope_has(b.data, s))
			continue;
		if (b.len > 0)
			buf_addc(&b, ' ');
		buf_addstr(&b, s);
	}
	out = pool_strdup(pool, b.data != NULL ? b.data : "");
	buf_free(&b);
	return out;
}

char *
oidc_legacy_scope_granted(struct pool *pool, const char *legacy_scope, const char *granted)
{
	struct buf b;
	char *out;

	buf_init(&b, LEGACY_SCOPE_MAX + 1);
	for (const char *p = legacy_scope; *p != '\0';) {
		size_t n = strcspn(p, " ");
		const struct oidc_legacy_scope *ls = oidc_legacy_scope_find(p, n);

		if (ls != NULL && (ls->scope == NULL || scope_has(granted, ls->scope))) {
			if (b.len > 0)
				buf_addc(&b, ' ');
			buf_addstr(&b, ls->name);
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	out = pool_strdup(pool, b.data != NULL ? b.data : "");
	buf_free(&b);
	return out;
}

bool
oidc_legacy_short_code_hash(const char *value, char hash[65])
{
	if (strlen(value) != OIDC_LEGACY_SHORT_CODE_LEN)
		return false;
	for (size_t i = 0; i < OIDC_LEGACY_SHORT_CODE_LEN; i++) {
		if (strchr(short_code_chars, value[i]) == NULL)
			return false;
	}
	secret_sha256_hex(value, OIDC_LEGACY_SHORT_CODE_LEN, hash);
	return true;
}
