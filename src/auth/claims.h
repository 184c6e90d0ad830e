/* Claims iSSO can release and the scopes that ask for them. */
#ifndef ISSO_CLAIMS_H
#define ISSO_CLAIMS_H

#include <jansson.h>
#include <stdbool.h>

/* One bit per released claim group. */
enum claim_bit {
	CLAIM_UUID = 1u << 0,      /* uuid: 系統唯一識別碼 */
	CLAIM_NAME = 1u << 1,      /* name */
	CLAIM_ID_NUMBER = 1u << 2, /* id_number: national ID */
	CLAIM_PHONE = 1u << 3,     /* phone_number, phone_number_verified */
	CLAIM_EMAIL = 1u << 4,     /* email, email_verified */
	CLAIM_BIRTHDATE = 1u << 5, /* birthdate */
	CLAIM_ADDRESS = 1u << 6,   /* address */
	/* organization {ubn, name}: the organisation (組織 / 公司企業) the
	 * person logged in for; only from an organisation login */
	CLAIM_ORGANIZATION = 1u << 7,
};

struct claim_scope {
	const char *scope; /* "phone" */
	unsigned bit;      /* CLAIM_PHONE */
	const char *label; /* message key of the field's name on consent */
};

/* Every scope that releases personal data, in consent-page order. */
extern const struct claim_scope claim_scopes[];
extern const unsigned claim_scopes_count;

/* The bit that releases a claim by its name ("phone_number" -> CLAIM_PHONE);
 * 0 for names that are not personal data (sub …). */
unsigned claim_bit_of(const char *claim);
/* Removes from claims every member scope does not release. */
void claims_restrict(json_t *claims, const char *scope);

/* Bits asked for by a space-separated scope string. */
unsigned claims_from_scope(const char *scope);
/* True when scope (space-separated) contains name as a whole word. */
bool scope_has(const char *scope, const char *name);
/* A scope token known to iSSO (openid, offline_access or a claim scope). */
bool scope_known(const char *name);

#endif
