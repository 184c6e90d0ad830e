/* Rendering of the citizen-facing pages: the shared page context (language,
 * switch link, CSRF token) and error pages in zh-TW and English. */
#ifndef ISSO_PAGE_H
#define ISSO_PAGE_H

#include <jansson.h>
#include <stdint.h>

#include "http/http.h"

struct isso_app;

/* Renders template tmpl with ctx (stolen; may be NULL) plus the common keys
 * (lang, lang_switch_url, title from title_key …) and sends it with status. */
void page_render(struct isso_app *app, struct http_req *req, int status, const char *tmpl,
                 const char *title_key, json_t *ctx);
/* What went wrong on a form page, in the one pattern every form uses (the
 * error-summary partial): a summary (role=alert, focused on load) with the
 * general message error_key (may be NULL) and, in form order (order, NULL
 * ended), a link to each field named in fields ({field: message key}, may
 * be NULL). Sets in ctx: "error" (text), "error_list" [{field, text}],
 * "err" {field: text} for each field's aria-invalid / aria-describedby
 * "<field>-error", "error_many" (more than one field), and "has_error", which makes page_render
 * start the title with 錯誤： / "Error: ". Does nothing when there is no error. */
void page_form_error(struct isso_app *app, struct http_req *req, json_t *ctx, const char *error_key,
                     json_t *fields, const char *const *order);
/* The same for a single field: field in error with message key. */
void page_field_error(struct isso_app *app, struct http_req *req, json_t *ctx, const char *field,
                      const char *key);
/* An error page: message keys for title and text; back_url may be NULL. */
void page_error(struct isso_app *app, struct http_req *req, int status, const char *title_key,
                const char *message_key, const char *back_url);
/* The message text of key in the request's language. */
const char *page_text(struct isso_app *app, struct http_req *req, const char *key);
/* The 個人資料保護法 §8 notice of login method (its id: "taipeipass",
 * "taipeipass-app", "telecom", …) for the notice partial: sets ctx
 * "notice" {who, data} from the method's catalogue texts
 * (notice.who.<method>, notice.data.<method>; notice.title.<method> when
 * the method's notice has a title of its own) and, when txn_id (may be
 * NULL) names a login under way, the agency service's name and purpose
 * (agency, agency_purpose, and agency_lang on English pages). */
void page_notice(struct isso_app *app, struct http_req *req, json_t *ctx, const char *txn_id,
                 const char *method);
/* "zh-Hant-TW" when text (an agency's name, a stored value) is Chinese on
 * an English page, for its lang attribute; NULL otherwise. */
const char *page_other_lang(struct http_req *req, const char *text);
/* A time as people in Taipei read it (UTC+8, no daylight saving), and as
 * an ISO 8601 value for <time datetime>; both in the request's pool. */
void page_taipei_time(struct http_req *req, int64_t ts, const char **text_r, const char **iso_r);
/* The http_server error_page hook (400, 404, 405, 413, 500 …). */
void page_http_error(struct http_req *req, int status, void *ctx);
/* The per-request hook: picks the language (?lang=, cookie, header). */
void page_on_request(struct http_req *req, void *ctx);

#endif
