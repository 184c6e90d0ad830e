/* Message catalogues and locale negotiation. A catalogue is the parsed JSON
 * object itself: lookups are hash-table reads that never touch reference
 * counts, so one loaded set serves every thread. */
#include "http/i18n.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/isso.h"
#include "lib/xmalloc.h"

#define I18N_DEFAULT     "zh-TW"
#define I18N_MAX_LOCALES 32
#define I18N_MAX_FILE    (1024 * 1024)
#define I18N_MAX_LOCALE  35 /* BCP 47 tags are short; refuse odd file names */

struct i18n_catalog {
	char *locale;
	json_t *messages; /* object of key -> string */
};

struct i18n {
	struct i18n_catalog *v;
	size_t n;
};

/* A locale file name: letters, digits and '-', starting with a letter. */
static bool
i18n_valid_locale(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > I18N_MAX_LOCALE)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-'))
			return false;
	}
	return true;
}

static int
i18n_cmp_catalog(const void *a, const void *b)
{
	return strcmp(((const struct i18n_catalog *)a)->locale,
	              ((const struct i18n_catalog *)b)->locale);
}

/* Parses one catalogue file; every member must be a string. */
static int
i18n_load_file(const char *path, json_t **messages_r, char **error_r)
{
	json_error_t jerr;
	const char *key;
	json_t *obj, *v;
	int err = 0;

	*messages_r = NULL;
	obj = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL) {
		*error_r = xasprintf("%s:%d: %s", path, jerr.line, jerr.text);
		err = ISSO_ERR_INVALID;
		goto out;
	}
	if (!json_is_object(obj)) {
		*error_r = xasprintf("%s: not a JSON object", path);
		err = ISSO_ERR_INVALID;
		goto out;
	}
	json_object_foreach(obj, key, v)
	{
		if (!json_is_string(v)) {
			*error_r = xasprintf("%s: value of \"%s\" is not a string", path, key);
			err = ISSO_ERR_INVALID;
			goto out;
		}
	}
	*messages_r = obj;
	obj = NULL;
out:
	json_decref(obj);
	return err;
}

struct i18n *
i18n_load(const char *dir, char **error_r)
{
	struct i18n *i18n = xcalloc(1, sizeof(*i18n));
	char *path = NULL, *error = NULL;
	json_t *messages = NULL;
	struct dirent *de;
	DIR *d;
	size_t len;
	int err = 0;

	d = opendir(dir);
	if (d == NULL) {
		error = xasprintf("%s: %s", dir, strerror(errno));
		err = ISSO_ERR_IO;
		goto out;
	}
	i18n->v = xcalloc(I18N_MAX_LOCALES, sizeof(*i18n->v));
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		if (!i18n_valid_locale(de->d_name, len - 5)) {
			error = xasprintf("%s/%s: not a locale name", dir, de->d_name);
			err = ISSO_ERR_INVALID;
			goto out;
		}
		if (i18n->n == I18N_MAX_LOCALES) {
			error = xasprintf("%s: more than %d locales", dir, I18N_MAX_LOCALES);
			err = ISSO_ERR_LIMIT;
			goto out;
		}
		free(path);
		path = xasprintf("%s/%s", dir, de->d_name);
		err = i18n_load_file(path, &messages, &error);
		if (err < 0)
			goto out;
		i18n->v[i18n->n].locale = xstrndup(de->d_name, len - 5);
		i18n->v[i18n->n].messages = messages;
		i18n->n++;
		messages = NULL;
	}
	qsort(i18n->v, i18n->n, sizeof(*i18n->v), i18n_cmp_catalog);
	if (i18n_catalog(i18n, I18N_DEFAULT) == NULL) {
		error = xasprintf("%s: no %s.json (the default locale)", dir, I18N_DEFAULT);
		err = ISSO_ERR_INVALID;
		goto out;
	}
out:
	if (d != NULL)
		closedir(d);
	free(path);
	json_decref(messages);
	if (err < 0) {
		i18n_free(i18n);
		i18n = NULL;
	}
	if (error_r != NULL)
		*error_r = error;
	else
		free(error);
	return i18n;
}

void
i18n_free(struct i18n *i18n)
{
	size_t i;

	if (i18n == NULL)
		return;
	for (i = 0; i < i18n->n; i++) {
		free(i18n->v[i].locale);
		json_decref(i18n->v[i].messages);
	}
	free(i18n->v);
	free(i18n);
}

const struct i18n_catalog *
i18n_catalog(const struct i18n *i18n, const char *locale)
{
	const struct i18n_catalog *fallback = NULL;
	size_t i;

	if (i18n == NULL)
		return NULL;
	for (i = 0; i < i18n->n; i++) {
		if (locale != NULL && strcasecmp(i18n->v[i].locale, locale) == 0)
			return &i18n->v[i];
		if (strcmp(i18n->v[i].locale, I18N_DEFAULT) == 0)
			fallback = &i18n->v[i];
	}
	return fallback;
}

const char *
i18n_get(const struct i18n_catalog *cat, const char *key)
{
	const char *s;

	if (key == NULL)
		return "";
	if (cat == NULL)
		return key;
	s = json_string_value(json_object_get(cat->messages, key));
	return s != NULL ? s : key;
}

const char *
i18n_locale(const struct i18n_catalog *cat)
{
	return cat != NULL ? cat->locale : I18N_DEFAULT;
}

/* ---- negotiation ---- */

/* Maps one language tag or range to a supported locale, or NULL. Any
 * Chinese goes to zh-TW (the only Chinese we have, and closer than English
 * for a reader of zh-CN); "*" means any, hence the default. */
static const char *
i18n_map_tag(const char *tag, size_t len)
{
	size_t primary = 0;

	while (primary < len && tag[primary] != '-' && tag[primary] != '_')
		primary++;
	if (primary == len && len == 1 && tag[0] == '*')
		return I18N_DEFAULT;
	if (primary == 2 && strncasecmp(tag, "en", 2) == 0)
		return "en";
	if (primary == 2 && strncasecmp(tag, "zh", 2) == 0)
		return "zh-TW";
	return NULL;
}

static bool
i18n_is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Parses a weight (RFC 9110 §12.4.2) into thousandths; -1 when malformed. */
static int
i18n_parse_q(const char *s, size_t len)
{
	int q, scale = 100;
	size_t i;

	if (len == 0 || (s[0] != '0' && s[0] != '1'))
		return -1;
	q = (s[0] - '0') * 1000;
	if (len == 1)
		return q;
	if (s[1] != '.' || len > 5)
		return -1;
	for (i = 2; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		q += (s[i] - '0') * scale;
		scale /= 10;
	}
	return q > 1000 ? -1 : q;
}

/* Accept-Language: the supported locale with the highest weight; the
 * earliest wins a tie. Malformed elements are skipped. */
static const char *
i18n_from_accept(const char *s)
{
	const char *best = NULL, *elem, *end, *semi, *loc, *param;
	int best_q = 0, q;
	size_t tag_len, plen;

	while (*s != '\0') {
		elem = s;
		end = strchr(s, ',');
		if (end == NULL)
			end = s + strlen(s);
		s = *end == ',' ? end + 1 : end;

		while (elem < end && i18n_is_ows(*elem))
			elem++;
		semi = memchr(elem, ';', (size_t)(end - elem));
		tag_len = (size_t)((semi != NULL ? semi : end) - elem);
		while (tag_len > 0 && i18n_is_ows(elem[tag_len - 1]))
			tag_len--;
		loc = i18n_map_tag(elem, tag_len);
		if (loc == NULL)
			continue;
		q = 1000;
		while (semi != NULL && q >= 0) {
			param = semi + 1;
			semi = memchr(param, ';', (size_t)(end - param));
			plen = (size_t)((semi != NULL ? semi : end) - param);
			while (plen > 0 && i18n_is_ows(*param)) {
				param++;
				plen--;
			}
			while (plen > 0 && i18n_is_ows(param[plen - 1]))
				plen--;
			if (plen >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=')
				q = i18n_parse_q(param + 2, plen - 2);
		}
		if (q > best_q) {
			best_q = q;
			best = loc;
		}
	}
	return best;
}

const char *
i18n_negotiate(const char *ui_locales, const char *cookie, const char *accept_language)
{
	const char *p, *loc;
	size_t len;

	/* OIDC Core §3.1.2.1: ui_locales is an ordered preference list. */
	for (p = ui_locales; p != NULL && *p != '\0'; p += len) {
		while (*p == ' ')
			p++;
		len = strcspn(p, " ");
		if (len > 0 && !(len == 1 && *p == '*') && (loc = i18n_map_tag(p, len)) != NULL)
			return loc;
	}
	if (cookie != NULL) {
		if (strcasecmp(cookie, "en") == 0)
			return "en";
		if (strcasecmp(cookie, "zh-TW") == 0)
			return "zh-TW";
	}
	if (accept_language != NULL && (loc = i18n_from_accept(accept_language)) != NULL)
		return loc;
	return I18N_DEFAULT;
}
