/* Message catalogues: locales/zh-TW.json (the default) and locales/en.json,
 * flat objects of key -> text. */
#ifndef ISSO_I18N_H
#define ISSO_I18N_H

#include <jansson.h>

struct i18n_catalog;
struct i18n;

/* Loads every <locale>.json in dir. NULL with *error_r (malloc'd) on error. */
struct i18n *i18n_load(const char *dir, char **error_r);
void i18n_free(struct i18n *i18n);
/* The catalogue of locale, falling back to zh-TW. */
const struct i18n_catalog *i18n_catalog(const struct i18n *i18n, const char *locale);
/* Text of key; the key itself when missing (so a gap shows, not crashes). */
const char *i18n_get(const struct i18n_catalog *cat, const char *key);
/* The locale name of a catalogue ("zh-TW"). */
const char *i18n_locale(const struct i18n_catalog *cat);

/* Chooses "zh-TW" or "en": the first supported of ui_locales (OIDC:
 * space-separated BCP 47 tags), then the cookie value, then Accept-Language
 * (q-values honoured); default "zh-TW". Any argument may be NULL. Returns a
 * static string. */
const char *i18n_negotiate(const char *ui_locales, const char *cookie, const char *accept_language);

#endif
