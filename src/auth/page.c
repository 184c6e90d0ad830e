/* Citizen-facing page rendering. */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "auth/app.h"
#include "auth/page.h"
#include "http/i18n.h"
#include "http/parse.h"
#include "http/tmpl.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define PAGE_MAX (512 * 1024)
/* The characters of a login transaction id (base64url). */
#define TXN_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

const char *
page_text(struct isso_app *app, struct http_req *req, const char *key)
{
	return i18n_get(i18n_catalog(app->i18n, http_locale(req)), key);
}

/* The current URL with lang= switched to the other language. */
static const char *
lang_switch_url(struct http_req *req, const char *other)
{
	struct pool *pool = http_pool(req);
	const struct http_kvs *q = http_query_all(req);
	const char *form_t;
	struct buf b;
	const char *url; /* Relative ("?…"): the path never goes into the link, so a crafted
	                  * path such as //elsewhere cannot turn it into an external one. */
	buf_init(&b, 16384);
	buf_addc(&b, '?');
	for (size_t i = 0; q != NULL && i < q->n; i++) {
		if (strcmp(q->v[i].name, "lang") == 0 || strcmp(q->v[i].name, "ui_locales") == 0)
			continue;
		buf_addstr(&b, parse_pct_encode(pool, q->v[i].name));
		buf_addc(&b, '=');
		buf_addstr(&b, parse_pct_encode(pool, q->v[i].value));
		buf_addc(&b, '&');
	}
	/* A page answering a form (an error shown after a POST) has the
	 * login in the form, not in the URL: the switch carries it, so
	 * that changing language keeps the login. */
	form_t = http_method(req) == HTTP_POST ? http_form(req, "t") : NULL;
	if (form_t != NULL && http_query(req, "t") == NULL && strlen(form_t) <= 64 &&
	    strspn(form_t, TXN_CHARS) == strlen(form_t)) {
		buf_addstr(&b, "t=");
		buf_addstr(&b, form_t);
		buf_addc(&b, '&');
	}
	buf_printf(&b, "lang=%s", other);
	url = pool_strdup(pool, b.data);
	buf_free(&b);
	return url;
}

/* Does text hold Chinese (CJK symbols, ideographs, full-width forms)? */
static bool
has_cjk(const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; p != NULL && *p != '\0'; p++) {
		/* UTF-8 lead bytes of U+3000..U+9FFF, and U+FF00..U+FFEF. */
		if ((*p >= 0xE3 && *p <= 0xE9) || (*p == 0xEF && (p[1] == 0xBC || p[1] == 0xBD)))
			return true;
	}
	return false;
}

const char *
page_other_lang(struct http_req *req, const char *text)
{
	return strcmp(http_locale(req), "en") == 0 && text != NULL && has_cjk(text) ? "zh-Hant-TW"
	                                                                            : NULL;
}

/* On an English page, names and text that came in Chinese (the agency's
 * name and purpose, the citizen's name on consent) say so with lang, so
 * a screen reader reads them in the right voice: sets "<key>_lang" for
 * client_name and purpose, and "value_lang" on each fields[] item. */
static void
mark_other_language(json_t *ctx)
{
	static const char *const keys[] = {"client_name", "purpose"};
	json_t *item;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (has_cjk(json_string_value(json_object_get(ctx, keys[i]))))
			json_object_set_new(
			    ctx, keys[i] == keys[0] ? "client_name_lang" : "purpose_lang",
			    json_string("zh-Hant-TW"));
	}
	json_array_foreach(json_object_get(ctx, "fields"), i, item)
	{
		if (has_cjk(json_string_value(json_object_get(item, "value"))))
			json_object_set_new(item, "value_lang", json_string("zh-Hant-TW"));
	}
}

void
page_render(struct isso_app *app, struct http_req *req, int status, const char *tmpl,
            const char *title_key, json_t *ctx)
{
	const char *locale = http_locale(req);
	bool en = strcmp(locale, "en") == 0;
	const struct i18n_catalog *cat = i18n_catalog(app->i18n, locale);
	struct buf out;
	int ret;

	if (ctx == NULL)
		ctx = json_object();
	json_object_set_new(ctx, "lang", json_string(en ? "en" : "zh-Hant-TW"));
	json_object_set_new(ctx, "lang_switch_url",
	                    json_string(lang_switch_url(req, en ? "zh-TW" : "en")));
	json_object_set_new(ctx, "lang_switch_lang", json_string(en ? "zh-Hant-TW" : "en"));
	if (en)
		mark_other_language(ctx);
	if (title_key != NULL && json_object_get(ctx, "title") == NULL)
		json_object_set_new(ctx, "title", json_string(i18n_get(cat, title_key)));
	/* A page showing what went wrong says so first in its title, the
	 * first thing a screen reader reads of a new page. */
	if (json_is_true(json_object_get(ctx, "has_error")) &&
	    json_is_string(json_object_get(ctx, "title")))
		json_object_set_new(ctx, "title",
		                    json_string(pool_printf(
		                        http_pool(req), "%s%s", i18n_get(cat, "error.title_prefix"),
		                        json_string_value(json_object_get(ctx, "title")))));

	buf_init(&out, PAGE_MAX);
	ret = tmpl_render(app->tmpl, tmpl, ctx, cat, &out);
	if (ret < 0) {
		log_error("template_failed", "template", tmpl, NULL);
		http_send(req, 500, "text/plain; charset=utf-8", "500 Internal Server Error\n", 26);
	} else {
		http_send(req, status, "text/html; charset=utf-8", out.data, out.len);
	}
	buf_free(&out);
	json_decref(ctx);
}

void
page_form_error(struct isso_app *app, struct http_req *req, json_t *ctx, const char *error_key,
                json_t *fields, const char *const *order)
{
	json_t *list, *err, *key;
	const char *text;

	if (error_key != NULL) {
		json_object_set_new(ctx, "error", json_string(page_text(app, req, error_key)));
		json_object_set_new(ctx, "has_error", json_true());
	}
	if (fields == NULL || order == NULL || json_object_size(fields) == 0)
		return;
	list = json_array();
	err = json_object();
	for (size_t i = 0; order[i] != NULL; i++) {
		key = json_object_get(fields, order[i]);
		if (!json_is_string(key))
			continue;
		text = page_text(app, req, json_string_value(key));
		json_array_append_new(list,
		                      json_pack("{s:s, s:s}", "field", order[i], "text", text));
		json_object_set_new(err, order[i], json_string(text));
	}
	if (json_array_size(list) == 0) {
		json_decref(list);
		json_decref(err);
		return;
	}
	if (json_array_size(list) > 1)
		json_object_set_new(ctx, "error_many", json_true());
	json_object_set_new(ctx, "error_list", list);
	json_object_set_new(ctx, "err", err);
	json_object_set_new(ctx, "has_error", json_true());
}

void
page_field_error(struct isso_app *app, struct http_req *req, json_t *ctx, const char *field,
                 const char *key)
{
	const char *const order[] = {field, NULL};
	json_t *fields = json_pack("{s:s}", field, key);

	page_form_error(app, req, ctx, NULL, fields, order);
	json_decref(fields);
}

void
page_error(struct isso_app *app, struct http_req *req, int status, const char *title_key,
           const char *message_key, const char *back_url)
{
	json_t *ctx = json_object();

	json_object_set_new(ctx, "message", json_string(page_text(app, req, message_key)));
	json_object_set_new(ctx, "status", json_integer(status));
	if (back_url != NULL)
		json_object_set_new(ctx, "back_url", json_string(back_url));
	page_render(app, req, status, "error", title_key, ctx);
}

void
page_http_error(struct http_req *req, int status, void *ctx)
{
	struct isso_app *app = ctx;
	const char *key;

	switch (status) {
	case 400:
		key = "error.bad_request";
		break;
	case 404:
		key = "error.not_found";
		break;
	case 405:
		key = "error.method_not_allowed";
		break;
	case 413:
		key = "error.too_large";
		break;
	default:
		key = "error.internal";
		break;
	}
	page_error(app, req, status, key, pool_printf(http_pool(req), "%s.message", key), "/");
}

void
page_on_request(struct http_req *req, void *ctx)
{
	const char *lang = http_query(req, "lang");
	const char *chosen;

	if (lang != NULL) {
		/* The switch: the citizen's choice, kept for a year, and it
		 * now outweighs what the agency asked for this login. */
		chosen = i18n_negotiate(lang, NULL, NULL);
		http_set_locale(req, chosen);
		http_set_cookie(req, "isso_lang", chosen, 31536000, HTTP_COOKIE_LAX);
		if (http_cookie(req, "isso_login_lang") != NULL)
			http_set_cookie(req, "isso_login_lang", "", 0,
			                HTTP_COOKIE_LAX | HTTP_COOKIE_HTTPONLY);
		return;
	}
	/* The agency's ui_locales for the login under way (set by
	 * /authorize, see there), else the citizen's choice, else the
	 * browser's languages. */
	lang = http_cookie(req, "isso_login_lang");
	chosen = lang != NULL ? i18n_negotiate(lang, NULL, "en") : NULL;
	if (chosen != NULL && strcmp(chosen, lang) == 0) {
		http_set_locale(req, chosen);
		return;
	}
	http_set_locale(req, i18n_negotiate(NULL, http_cookie(req, "isso_lang"),
	                                    http_header(req, "Accept-Language")));
}

void
page_notice(struct isso_app *app, struct http_req *req, json_t *ctx, const char *txn_id,
            const char *method)
{
	const char *locale = http_locale(req);
	bool en = locale != NULL && strncmp(locale, "en", 2) == 0;
	struct pool *pool = http_pool(req);
	const char *title_key = pool_printf(pool, "notice.title.%s", method);
	const char *title = page_text(app, req, title_key);
	struct store_client *c = NULL;
	json_t *txn = NULL, *notice;

	notice = json_pack("{s:s, s:s}", "who",
	                   page_text(app, req, pool_printf(pool, "notice.who.%s", method)), "data",
	                   page_text(app, req, pool_printf(pool, "notice.data.%s", method)));
	/* A method may keep the title its notice is known by. */
	if (strcmp(title, title_key) != 0)
		json_object_set_new(notice, "own_title", json_string(title));
	/* Without the agency's name the notice still says everything else:
	 * a registration on its own, or a store that does not answer. */
	if (txn_id != NULL &&
	    store_eph_get(app->store, "txn", txn_id, app_now(), &txn, NULL) == 0 && txn != NULL &&
	    store_client_get(app->store, json_string_value(json_object_get(txn, "client_id")),
	                     &c) == 0 &&
	    c != NULL && c->name != NULL) {
		json_object_set_new(notice, "agency", json_string(c->name));
		if (c->purpose != NULL && c->purpose[0] != '\0')
			json_object_set_new(notice, "agency_purpose", json_string(c->purpose));
		/* An agency's name and purpose are written in Chinese. */
		if (en)
			json_object_set_new(notice, "agency_lang", json_string("zh-Hant-TW"));
	}
	json_object_set_new(ctx, "notice", notice);
	store_client_free(c);
	json_decref(txn);
}

void
page_taipei_time(struct http_req *req, int64_t ts, const char **text_r, const char **iso_r)
{
	time_t t = (time_t)(ts + 8 * 3600);
	struct tm tm;
	char text[32], iso[40];

	if (gmtime_r(&t, &tm) == NULL) {
		*text_r = *iso_r = "";
		return;
	}
	strftime(text, sizeof(text), "%Y-%m-%d %H:%M", &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S+08:00", &tm);
	*text_r = pool_strdup(http_pool(req), text);
	*iso_r = pool_strdup(http_pool(req), iso);
}
