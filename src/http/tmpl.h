/* A small template engine (a subset of Mustache) that HTML-escapes by
 * default. Templates are compiled once at start-up; rendering walks a
 * jansson value.
 *
 *   {{name}}            value at name (dotted paths: a.b), HTML-escaped
 *   {{&name}}           unescaped: only for markup the server made (QR SVG)
 *   {{#name}}…{{/name}} array: once per item (the item becomes the context,
 *                       outer names still resolve); true / object / non-empty
 *                       string / non-zero number: once; else skipped
 *   {{^name}}…{{/name}} rendered when #name would be skipped
 *   {{t key}}           message key from the request's catalogue, escaped
 *   {{> name}}          another template of the set (partials)
 *   {{! comment}}
 * Numbers render as integers or reals, true as "true"; null and missing
 * names render nothing. */
#ifndef ISSO_TMPL_H
#define ISSO_TMPL_H

#include <jansson.h>

#include "lib/buf.h"

struct tmpl_set;
struct i18n_catalog;

/* Compiles every *.html file in dir; a template's name is its file name
 * without the extension. Returns NULL with *error_r (malloc'd, naming file
 * and line) on a syntax error. */
struct tmpl_set *tmpl_set_load(const char *dir, char **error_r);
/* Compiles one template from a string (tests, fuzzing). */
int tmpl_set_add(struct tmpl_set *set, const char *name, const char *text, char **error_r);
struct tmpl_set *tmpl_set_new(void);
void tmpl_set_free(struct tmpl_set *set);

/* Renders template name with ctx into out. cat (may be NULL) resolves
 * {{t key}}. Returns 0, ISSO_ERR_INVALID for an unknown template or
 * ISSO_ERR_LIMIT when out is full. */
int tmpl_render(const struct tmpl_set *set, const char *name, json_t *ctx,
                const struct i18n_catalog *cat, struct buf *out);

/* HTML-escapes s (& < > " ' and `) onto out. */
int tmpl_escape(struct buf *out, const char *s, size_t len);

#endif
