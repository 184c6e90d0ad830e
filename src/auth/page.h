/* Rendering of the citizen-facing pages: the shared page context (language,
 * switch link, CSRF token) and error pages in zh-TW and English. */
#ifndef ISSO_PAGE_H
#define ISSO_PAGE_H

#include <jansson.h>

#include "http/http.h"

struct isso_app;

/* Renders template tmpl with ctx (stolen; may be NULL) plus the common keys
 * (lang, lang_switch_url, title from title_key …) and sends it with status. */
void page_render(struct isso_app *app, struct http_req *req, int status, const char *tmpl,
                 const char *title_key, json_t *ctx);
/* An error page: message keys for title and text; back_url may be NULL. */
void page_error(struct isso_app *app, struct http_req *req, int status, const char *title_key,
                const char *message_key, const char *back_url);
/* The message text of key in the request's language. */
const char *page_text(struct isso_app *app, struct http_req *req, const char *key);
/* The http_server error_page hook (400, 404, 405, 413, 500 …). */
void page_http_error(struct http_req *req, int status, void *ctx);
/* The per-request hook: picks the language (?lang=, cookie, header). */
void page_on_request(struct http_req *req, void *ctx);

#endif
