/* Scope and claim tables. */
#include <string.h>
#include <jansson.h>

#include "auth/claims.h"

const struct claim_scope claim_scopes[] = {
    {"uuid", CLAIM_UUID, "claim.uuid"},
    {"profile", CLAIM_NAME, "claim.name"},
    {"id_number", CLAIM_ID_NUMBER, "claim.id_number"},
    {"phone", CLAIM_PHONE, "claim.phone"},
    {"email", CLAIM_EMAIL, "claim.email"},
    {"birthdate", CLAIM_BIRTHDATE, "claim.birthdate"},
    {"address", CLAIM_ADDRESS, "claim.address"},
    {"organization", CLAIM_ORGANIZATION, "claim.organization"},
};
const unsigned claim_scopes_count = sizeof(claim_scopes) / sizeof(claim_scopes[0]);

bool
scope_has(const char *scope, const char *name)
{
	size_t n = strlen(name);
	const char *p = scope;

	if (scope == NULL || n == 0)
		return false;
	while ((p = strstr(p, name)) != NULL) {
		bool start = p == scope || p[-1] == ' ';
		bool end = p[n] == '\0' || p[n] == ' ';
		if (start && end)
			return true;
		p += n;
	}
	return false;
}

unsigned
claims_from_scope(const char *scope)
{
	unsigned bits = 0;

	for (unsigned i = 0; i < claim_scopes_count; i++) {
		if (scope_has(scope, claim_scopes[i].scope))
			bits |= claim_scopes[i].bit;
	}
	return bits;
}

bool
scope_known(const char *name)
{
	if (strcmp(name, "openid") == 0 || strcmp(name, "offline_access") == 0)
		return true;
	for (unsigned i = 0; i < claim_scopes_count; i++) {
		if (strcmp(name, claim_scopes[i].scope) == 0)
			return true;
	}
	return false;
}

unsigned
claim_bit_of(const char *claim)
{
	static const struct {
		const char *name;
		unsigned bit;
	} map[] = {
	    {"uuid", CLAIM_UUID},
	    {"name", CLAIM_NAME},
	    {"member_level", CLAIM_NAME},
	    {"id_number", CLAIM_ID_NUMBER},
	    {"phone_number", CLAIM_PHONE},
	    {"phone_number_verified", CLAIM_PHONE},
	    {"email", CLAIM_EMAIL},
	    {"email_verified", CLAIM_EMAIL},
	    {"birthdate", CLAIM_BIRTHDATE},
	    {"address", CLAIM_ADDRESS},
	    {"organization", CLAIM_ORGANIZATION},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(map[i].name, claim) == 0)
			return map[i].bit;
	}
	return 0;
}

void
claims_restrict(json_t *claims, const char *scope)
{
	unsigned allowed = claims_from_scope(scope);
	const char *key;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(claims, tmp, key, v)
	{
		unsigned bit = claim_bit_of(key);
		if (bit == 0 || (bit & allowed) == 0)
			json_object_del(claims, key);
	}
}
