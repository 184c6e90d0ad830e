/* Test identities: the citizens, residents and organisations the simulated
 * national services know. Loaded once at start and checked strictly (a
 * typo in the file must stop the simulator, not surface later as a
 * puzzling login failure); read-only afterwards, so lookups need no lock.
 * GET /identities serves the file to the test harness. */
#include "sim/sim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/xmalloc.h"

#define IDENT_MAX_ENTRIES 10000

static struct {
	json_t *root;
	json_t *citizens; /* borrowed from root */
	char *text;       /* root serialised once for GET /identities */
	size_t text_len;
	char error[512];
} ident;

/* Formats the reason for a bad file; returns ISSO_ERR_INVALID. */
static int __attribute__((format(printf, 2, 3)))
ident_fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ident.error, sizeof(ident.error), fmt, ap);
	va_end(ap);
	*error_r = ident.error;
	return ISSO_ERR_INVALID;
}

/* A required non-empty string member, or NULL. */
static const char *
ident_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL && *s != '\0' ? s : NULL;
}

static bool
ident_digits(const char *s, size_t min, size_t max)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++) {
		if (s[n] < '0' || s[n] > '9')
			return false;
	}
	return n >= min && n <= max;
}

static bool
ident_mobile(const char *s)
{
	return strlen(s) == 10 && s[0] == '0' && s[1] == '9' && ident_digits(s, 10, 10);
}

/* The member at a dotted path ("cards.nhi.card_no") below o, or NULL. */
static const json_t *
ident_at(const json_t *o, const char *path)
{
	const char *dot;

	while (o != NULL && (dot = strchr(path, '.')) != NULL) {
		o = json_object_getn(o, path, (size_t)(dot - path));
		path = dot + 1;
	}
	return o != NULL ? json_object_get(o, path) : NULL;
}

/* True when no object of list before index i has value at path. */
static bool
ident_unique(const json_t *list, size_t i, const char *path, const char *value)
{
	for (size_t j = 0; j < i; j++) {
		const char *v = json_string_value(ident_at(json_array_get(list, j), path));

		if (v != NULL && strcmp(v, value) == 0)
			return false;
	}
	return true;
}

/* TaipeiPass member data: null, or {account, email, password, level}. */
static int
ident_check_taipeipass(const json_t *tp, const char *where, const char **error_r)
{
	const char *level, *email;
	int ret = 0;

	if (tp == NULL) {
		ret = ident_fail(error_r, "%s.taipeipass: missing (null for none)", where);
		goto out;
	}
	if (json_is_null(tp))
		goto out;
	if (!json_is_object(tp) || ident_str(tp, "account") == NULL ||
	    ident_str(tp, "password") == NULL) {
		ret = ident_fail(error_r,
		                 "%s.taipeipass: null or {account, email, password, level}", where);
		goto out;
	}
	email = ident_str(tp, "email");
	if (email == NULL || strchr(email, '@') == NULL) {
		ret = ident_fail(error_r, "%s.taipeipass.email: not an e-mail address", where);
		goto out;
	}
	level = ident_str(tp, "level");
	if (level == NULL || (strcmp(level, "gold") != 0 && strcmp(level, "ordinary") != 0))
		ret = ident_fail(error_r, "%s.taipeipass.level: \"gold\" or \"ordinary\"", where);
out:
	return ret;
}

static bool
ident_card_sn_valid(const char *s)
{
	/* two letters + 14 digits */
	return s != NULL && strlen(s) == 16 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' &&
	       s[1] <= 'Z' && ident_digits(s + 2, 14, 14);
}

/* cards: {moica: null | {card_sn, pin[, status]}, nhi: null | {card_no,
 * registration_password}}; card numbers unique in the file. */
static int
ident_check_cards(const json_t *list, size_t i, const char *where, const char **error_r)
{
	const json_t *cards = json_object_get(json_array_get(list, i), "cards");
	const json_t *moica = json_object_get(cards, "moica");
	const json_t *nhi = json_object_get(cards, "nhi");
	const char *s;
	int ret = ISSO_ERR_INVALID;

	if (moica == NULL || nhi == NULL) {
		ident_fail(error_r, "%s.cards: {moica, nhi} required (null for none)", where);
		goto out;
	}
	if (!json_is_null(moica)) {
		s = ident_str(moica, "card_sn");
		if (!ident_card_sn_valid(s)) {
			ident_fail(error_r, "%s.cards.moica.card_sn: two letters + 14 digits",
			           where);
			goto out;
		}
		if (!ident_unique(list, i, "cards.moica.card_sn", s)) {
			ident_fail(error_r, "%s.cards.moica.card_sn: %s appears twice", where, s);
			goto out;
		}
		s = ident_str(moica, "pin");
		if (s == NULL || !ident_digits(s, 6, 8)) {
			ident_fail(error_r, "%s.cards.moica.pin: 6 to 8 digits", where);
			goto out;
		}
		s = ident_str(moica, "status");
		if (json_object_get(moica, "status") != NULL &&
		    (s == NULL || (strcmp(s, "valid") != 0 && strcmp(s, "revoked") != 0 &&
		                   strcmp(s, "expired") != 0))) {
			ident_fail(error_r, "%s.cards.moica.status: valid, revoked or expired",
			           where);
			goto out;
		}
	}
	if (!json_is_null(nhi)) {
		s = ident_str(nhi, "card_no");
		if (s == NULL || !ident_digits(s, 12, 12)) {
			ident_fail(error_r, "%s.cards.nhi.card_no: 12 digits", where);
			goto out;
		}
		if (!ident_unique(list, i, "cards.nhi.card_no", s)) {
			ident_fail(error_r, "%s.cards.nhi.card_no: %s appears twice", where, s);
			goto out;
		}
		s = ident_str(nhi, "registration_password");
		if (s == NULL || strlen(s) < 6 || strlen(s) > 12) {
			ident_fail(error_r,
			           "%s.cards.nhi.registration_password: 6 to 12 characters", where);
			goto out;
		}
	}
	ret = 0;
out:
	return ret;
}

static bool
ident_carrier_valid(const json_t *carrier)
{
	static const struct {
		const char *id, *name;
	} carriers[] = {{"cht", "中華電信"}, {"twm", "台灣大哥大"}, {"fet", "遠傳"}};
	const char *id = ident_str(carrier, "id");
	const char *name = ident_str(carrier, "name");
	bool ok = false;

	for (size_t k = 0; k < ISSO_N_ELEMENTS(carriers) && id != NULL && name != NULL; k++)
		ok |= strcmp(id, carriers[k].id) == 0 && strcmp(name, carriers[k].name) == 0;
	return ok;
}

static int
ident_check_citizen(const json_t *list, size_t i, const char **error_r)
{
	const json_t *c = json_array_get(list, i);
	const char *id, *s;
	char where[48];
	bool foreign;
	int ret = ISSO_ERR_INVALID;

	snprintf(where, sizeof(where), "citizens[%zu]", i);
	if (!json_is_object(c)) {
		ident_fail(error_r, "%s: not an object", where);
		goto out;
	}
	if (!json_is_boolean(json_object_get(c, "foreign_resident"))) {
		ident_fail(error_r, "%s.foreign_resident: true or false", where);
		goto out;
	}
	foreign = json_is_true(json_object_get(c, "foreign_resident"));
	id = ident_str(c, "national_id");
	if (id == NULL || (foreign ? !idnum_is_resident_id(id) : !idnum_is_national_id(id))) {
		ident_fail(error_r, "%s.national_id: %s is not a valid %s", where,
		           id != NULL ? id : "(missing)",
		           foreign ? "resident certificate number" : "national ID");
		goto out;
	}
	if (!ident_unique(list, i, "national_id", id)) {
		ident_fail(error_r, "%s.national_id: %s appears twice", where, id);
		goto out;
	}
	if (ident_str(c, "name") == NULL) {
		ident_fail(error_r, "%s.name: missing", where);
		goto out;
	}
	s = ident_str(c, "birthdate");
	if (s == NULL || !date_is_valid(s)) {
		ident_fail(error_r, "%s.birthdate: not a YYYY-MM-DD date", where);
		goto out;
	}
	s = ident_str(c, "phone");
	if (s == NULL || !ident_mobile(s)) {
		ident_fail(error_r, "%s.phone: not 09 followed by 8 digits", where);
		goto out;
	}
	if (!ident_unique(list, i, "phone", s)) {
		ident_fail(error_r, "%s.phone: %s appears twice", where, s);
		goto out;
	}
	if (!ident_carrier_valid(json_object_get(c, "carrier"))) {
		ident_fail(error_r,
		           "%s.carrier: {id, name} one of cht 中華電信, twm 台灣大哥大, fet 遠傳",
		           where);
		goto out;
	}
	if (!json_is_boolean(json_object_get(c, "prepaid")) ||
	    !json_is_boolean(json_object_get(c, "mobile_cert_enrolled"))) {
		ident_fail(error_r, "%s: prepaid and mobile_cert_enrolled must be true or false",
		           where);
		goto out;
	}
	ret = ident_check_taipeipass(json_object_get(c, "taipeipass"), where, error_r);
	if (ret != 0)
		goto out;
	s = ident_str(json_object_get(c, "taipeipass"), "account");
	if (s != NULL && !ident_unique(list, i, "taipeipass.account", s)) {
		ret = ident_fail(error_r, "%s.taipeipass.account: %s appears twice", where, s);
		goto out;
	}
	ret = ident_check_cards(list, i, where, error_r);
out:
	return ret;
}

static int
ident_check_org(const json_t *orgs, size_t i, const char **error_r)
{
	const json_t *o = json_array_get(orgs, i), *members, *m;
	const char *s;
	char where[48];
	size_t k;
	int ret = ISSO_ERR_INVALID;

	snprintf(where, sizeof(where), "organisations[%zu]", i);
	if (!json_is_object(o) || ident_str(o, "name") == NULL) {
		ident_fail(error_r, "%s: an object with a name", where);
		goto out;
	}
	s = ident_str(o, "ubn");
	if (s == NULL || !idnum_is_ubn(s)) {
		ident_fail(error_r, "%s.ubn: not a valid 統一編號", where);
		goto out;
	}
	if (!ident_unique(orgs, i, "ubn", s)) {
		ident_fail(error_r, "%s.ubn: %s appears twice", where, s);
		goto out;
	}
	members = json_object_get(o, "members");
	if (!json_is_array(members) || json_array_size(members) == 0) {
		ident_fail(error_r, "%s.members: a non-empty list of national IDs", where);
		goto out;
	}
	json_array_foreach(members, k, m)
	{
		if (sim_ident_by_id(json_string_value(m)) == NULL) {
			ident_fail(error_r, "%s.members[%zu]: not a citizen in this file", where,
			           k);
			goto out;
		}
	}
	ret = ident_check_taipeipass(json_object_get(o, "taipeipass"), where, error_r);
out:
	return ret;
}

int
sim_ident_load(const char *path, const char **error_r)
{
	json_error_t jerr;
	json_t *root = NULL, *citizens, *orgs;
	int ret = ISSO_ERR_INVALID;
	size_t i;

	sim_ident_free();
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (json_error_code(&jerr) == json_error_cannot_open_file) {
			ident_fail(error_r, "%s", jerr.text);
			ret = ISSO_ERR_IO;
		} else {
			ret = ident_fail(error_r, "%s:%d: %s", path, jerr.line, jerr.text);
		}
		goto out;
	}
	if (!json_is_object(root)) {
		ident_fail(error_r, "%s: not a JSON object", path);
		goto out;
	}
	if (ident_str(root, "description") == NULL) {
		ident_fail(error_r, "%s: a top-level \"description\" string is required", path);
		goto out;
	}
	citizens = json_object_get(root, "citizens");
	orgs = json_object_get(root, "organisations");
	if (!json_is_array(citizens) || json_array_size(citizens) == 0 ||
	    json_array_size(citizens) > IDENT_MAX_ENTRIES) {
		ident_fail(error_r, "%s: \"citizens\" must be a list of 1 to %d entries", path,
		           IDENT_MAX_ENTRIES);
		goto out;
	}
	if (orgs != NULL && (!json_is_array(orgs) || json_array_size(orgs) > IDENT_MAX_ENTRIES)) {
		ident_fail(error_r, "%s: \"organisations\" must be a list", path);
		goto out;
	}
	for (i = 0; i < json_array_size(citizens); i++) {
		ret = ident_check_citizen(citizens, i, error_r);
		if (ret != 0)
			goto out;
	}
	ident.citizens = citizens;
	for (i = 0; i < json_array_size(orgs); i++) {
		ret = ident_check_org(orgs, i, error_r);
		if (ret != 0)
			goto out;
	}
	ident.text = json_dumps(root, JSON_COMPACT);
	if (ident.text == NULL)
		abort();
	ident.text_len = strlen(ident.text);
	ident.root = root;
	root = NULL;
	ret = 0;
out:
	if (ret != 0)
		ident.citizens = NULL;
	json_decref(root);
	return ret;
}

void
sim_ident_free(void)
{
	json_decref(ident.root);
	free(ident.text);
	ident.root = ident.citizens = NULL;
	ident.text = NULL;
	ident.text_len = 0;
}

/* The first citizen whose member at path (dotted) is the string value. */
static const json_t *
ident_find(const char *path, const char *value)
{
	const json_t *c;
	size_t i;

	if (value == NULL)
		return NULL;
	json_array_foreach(ident.citizens, i, c)
	{
		const char *v = json_string_value(ident_at(c, path));

		if (v != NULL && strcmp(v, value) == 0)
			return c;
	}
	return NULL;
}

const json_t *
sim_ident_by_id(const char *national_id)
{
	return ident_find("national_id", national_id);
}

const json_t *
sim_ident_by_phone(const char *phone)
{
	return ident_find("phone", phone);
}

const json_t *
sim_ident_by_moica_card(const char *card_sn)
{
	return ident_find("cards.moica.card_sn", card_sn);
}

const json_t *
sim_ident_by_nhi_card(const char *card_no)
{
	return ident_find("cards.nhi.card_no", card_no);
}

static void
ident_list_handler(struct http_req *req, void *ctx)
{
	http_set_header(req, "Cache-Control", "no-store");
	http_send(req, 200, "application/json", ident.text, ident.text_len);
}

static int
ident_init(const struct sim_settings *settings, const char **error_r)
{
	return sim_ident_load(settings->identities_path, error_r);
}

static void
ident_routes(struct http_server *srv)
{
	http_route(srv, HTTP_GET, "/identities", ident_list_handler, NULL);
}

const struct sim_service sim_service_ident = {
    .name = "identities",
    .init = ident_init,
    .routes = ident_routes,
    .deinit = sim_ident_free,
};
