/* Unit tests for the template engine (src/http/tmpl.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/i18n.h"
#include "http/tmpl.h"
#include "lib/buf.h"
#include "lib/isso.h"

#define OUT_MAX (1024 * 1024)

static char tmpdir[64];

/* Compiles text as template "t" in a fresh set and renders it against the
 * JSON ctx; returns the output (caller frees). */
static char *
render_cat(const char *text, const char *ctx_json, const struct i18n_catalog *cat)
{
	struct tmpl_set *set = tmpl_set_new();
	json_t *ctx = NULL;
	char *error = NULL, *s;
	struct buf out;

	if (ctx_json != NULL) {
		ctx = json_loads(ctx_json, JSON_DECODE_ANY, NULL);
		assert_non_null(ctx);
	}
	assert_int_equal(tmpl_set_add(set, "t", text, &error), 0);
	assert_null(error);
	buf_init(&out, OUT_MAX);
	assert_int_equal(tmpl_render(set, "t", ctx, cat, &out), 0);
	s = buf_detach(&out, NULL);
	buf_free(&out);
	json_decref(ctx);
	tmpl_set_free(set);
	return s;
}

static char *
render(const char *text, const char *ctx_json)
{
	return render_cat(text, ctx_json, NULL);
}

static void
assert_render(const char *text, const char *ctx_json, const char *want)
{
	char *got = render(text, ctx_json);

	assert_string_equal(got, want);
	free(got);
}

/* Expects a compile error whose message contains want. */
static void
assert_compile_error(const char *text, const char *want)
{
	struct tmpl_set *set = tmpl_set_new();
	char *error = NULL;

	assert_int_equal(tmpl_set_add(set, "bad", text, &error), ISSO_ERR_INVALID);
	assert_non_null(error);
	if (strstr(error, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", error, want);
	free(error);
	/* A failed template is not part of the set. */
	{
		struct buf out;

		buf_init(&out, 64);
		assert_int_equal(tmpl_render(set, "bad", NULL, NULL, &out), ISSO_ERR_INVALID);
		buf_free(&out);
	}
	tmpl_set_free(set);
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
remove_dir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void
make_dir(char *buf, size_t size)
{
	snprintf(buf, size, "/tmp/test_tmpl.XXXXXX");
	assert_non_null(mkdtemp(buf));
}

/* ---- tests ---- */

static void
test_text_only(void **state)
{
	assert_render("", "{}", "");
	assert_render("plain <b>text</b> { } }} {", "{}", "plain <b>text</b> { } }} {");
	assert_render("中文與 English", NULL, "中文與 English");
}

static void
test_escape_each_char(void **state)
{
	struct buf out;

	buf_init(&out, 1024);
	assert_int_equal(tmpl_escape(&out, "&<>\"'`", 6), 0);
	assert_string_equal(out.data, "&amp;&lt;&gt;&quot;&#39;&#96;");
	buf_reset(&out);
	assert_int_equal(tmpl_escape(&out, "a&b", 3), 0);
	assert_int_equal(tmpl_escape(&out, "", 0), 0);
	assert_int_equal(tmpl_escape(&out, "x<y", 2), 0); /* length honoured */
	assert_string_equal(out.data, "a&amp;bx&lt;");
	buf_free(&out);

	assert_render("{{s}}", "{\"s\":\"&\"}", "&amp;");
	assert_render("{{s}}", "{\"s\":\"<\"}", "&lt;");
	assert_render("{{s}}", "{\"s\":\">\"}", "&gt;");
	assert_render("{{s}}", "{\"s\":\"\\\"\"}", "&quot;");
	assert_render("{{s}}", "{\"s\":\"'\"}", "&#39;");
	assert_render("{{s}}", "{\"s\":\"`\"}", "&#96;");
	assert_render("<a title=\"{{s}}\">", "{\"s\":\"\\\" onmouseover='x()' <script>\"}",
	              "<a title=\"&quot; onmouseover=&#39;x()&#39; &lt;script&gt;\">");
	assert_render("{{s}}", "{\"s\":\"臺北 & 新北\"}", "臺北 &amp; 新北");
	/* Raw output is only for markup the server made. */
	assert_render("{{&s}}", "{\"s\":\"<svg a='1'>&amp;</svg>\"}", "<svg a='1'>&amp;</svg>");
	assert_render("{{& s }}", "{\"s\":\"<i>\"}", "<i>");
}

static void
test_embedded_nul_in_value(void **state)
{
	json_t *ctx = json_object();
	struct tmpl_set *set = tmpl_set_new();
	struct buf out;

	json_object_set_new(ctx, "s", json_stringn("a\0<", 3));
	assert_int_equal(tmpl_set_add(set, "t", "[{{s}}]", NULL), 0);
	buf_init(&out, 64);
	assert_int_equal(tmpl_render(set, "t", ctx, NULL, &out), 0);
	assert_int_equal(out.len, 8);
	assert_memory_equal(out.data, "[a\0&lt;]", 9);
	buf_free(&out);
	tmpl_set_free(set);
	json_decref(ctx);
}

static void
test_scalars(void **state)
{
	assert_render("{{i}}|{{n}}|{{r}}|{{t}}|{{f}}|{{z}}|{{missing}}|{{o}}|{{a}}",
	              "{\"i\":42,\"n\":-7,\"r\":1.5,\"t\":true,\"f\":false,\"z\":null,"
	              "\"o\":{\"k\":1},\"a\":[1,2]}",
	              "42|-7|1.5|true|false||||");
	assert_render("{{ name }} {{\tname\t}}", "{\"name\":\"x\"}", "x x");
	assert_render("a{{! a comment with {{ braces and\nnewlines }}b", "{}", "ab");
	/* No context at all: names render nothing. */
	assert_render("[{{x}}]{{#x}}no{{/x}}{{^x}}yes{{/x}}", NULL, "[]yes");
	/* A context that is not an object. */
	assert_render("[{{x}}{{.}}]", "\"str\"", "[str]");
}

static void
test_sections(void **state)
{
	const char *ctx = "{\"list\":[{\"n\":\"a\"},{\"n\":\"b\"},{\"n\":\"<c>\"}],"
	                  "\"words\":[\"x\",\"y&\"],\"empty\":[],\"obj\":{\"n\":\"in\"},"
	                  "\"yes\":true,\"no\":false,\"nul\":null,\"zero\":0,\"one\":1,"
	                  "\"rzero\":0.0,\"str\":\"s\",\"estr\":\"\"}";

	assert_render("{{#list}}<{{n}}>{{/list}}", ctx, "<a><b><&lt;c&gt;>");
	assert_render("{{#words}}[{{.}}]{{/words}}", ctx, "[x][y&amp;]");
	assert_render("{{#empty}}X{{/empty}}", ctx, "");
	assert_render("{{#obj}}{{n}}{{/obj}}", ctx, "in");
	assert_render("{{#yes}}Y{{/yes}}{{#no}}N{{/no}}{{#nul}}U{{/nul}}{{#missing}}M{{/missing}}",
	              ctx, "Y");
	assert_render("{{#zero}}0{{/zero}}{{#one}}1{{/one}}{{#rzero}}r{{/rzero}}", ctx, "1");
	assert_render("{{#str}}[{{.}}]{{/str}}{{#estr}}E{{/estr}}", ctx, "[s]");
	/* Nested arrays. */
	assert_render("{{#rows}}({{#cells}}{{.}}{{/cells}}){{/rows}}",
	              "{\"rows\":[{\"cells\":[1,2]},{\"cells\":[]},{\"cells\":[3]}]}", "(12)()(3)");
	/* An array of arrays: the item is the context. */
	assert_render("{{#m}}[{{#.}}{{.}}{{/.}}]{{/m}}", "{\"m\":[[1,2],[3]]}", "[12][3]");
	/* Same name nested: the inner resolves on the item first. */
	assert_render("{{#a}}{{#a}}{{v}}{{/a}}{{/a}}", "{\"a\":{\"a\":{\"v\":\"deep\"}}}", "deep");
}

static void
test_inverted(void **state)
{
	const char *ctx = "{\"empty\":[],\"full\":[1],\"no\":false,\"yes\":true,\"nul\":null,"
	                  "\"zero\":0,\"estr\":\"\",\"obj\":{}}";

	assert_render("{{^empty}}E{{/empty}}{{^full}}F{{/full}}", ctx, "E");
	assert_render("{{^no}}N{{/no}}{{^yes}}Y{{/yes}}{{^nul}}U{{/nul}}", ctx, "NU");
	assert_render("{{^zero}}Z{{/zero}}{{^estr}}S{{/estr}}{{^missing}}M{{/missing}}", ctx,
	              "ZSM");
	assert_render("{{^obj}}O{{/obj}}", ctx, "");
	assert_render("{{#full}}has{{/full}}{{^full}}none{{/full}}", ctx, "has");
	/* Inverted sections keep the current context. */
	assert_render("{{#full}}{{^no}}[{{.}}]{{/no}}{{/full}}", ctx, "[1]");
}

static void
test_dotted_paths(void **state)
{
	const char *ctx = "{\"a\":{\"b\":{\"c\":\"abc\",\"n\":3}},\"s\":\"str\","
	                  "\"client\":{\"name\":\"Agency <X>\"},\"b\":{\"c\":\"outer\"}}";

	assert_render("{{a.b.c}}|{{a.b.n}}|{{client.name}}", ctx, "abc|3|Agency &lt;X&gt;");
	assert_render("[{{a.x.c}}][{{s.x}}][{{nope.b}}][{{a.b.c.d}}]", ctx, "[][][][]");
	assert_render("{{#a.b}}{{c}}{{/a.b}}", ctx, "abc");
	assert_render("{{^a.x}}none{{/a.x}}", ctx, "none");
	/* Once the first segment resolves, the rest does not fall back to outer
	 * scopes: a.b exists, a.b.missing is just missing. */
	assert_render("{{#a}}[{{b.c}}][{{b.missing}}]{{/a}}", ctx, "[abc][]");
	/* The first segment resolves through the stack. */
	assert_render("{{#a.b}}{{client.name}}{{/a.b}}", ctx, "Agency &lt;X&gt;");
}

static void
test_outer_scope(void **state)
{
	const char *ctx = "{\"title\":\"T\",\"lang\":\"en\",\"items\":[{\"name\":\"one\"},"
	                  "{\"name\":\"two\",\"title\":\"own\"}],\"user\":{\"name\":\"U\"}}";

	assert_render("{{#items}}{{name}}:{{title}}:{{lang}};{{/items}}", ctx,
	              "one:T:en;two:own:en;");
	assert_render("{{#user}}{{#items}}{{name}}{{/items}}{{/user}}", ctx, "onetwo");
	assert_render("{{#items}}{{#user}}{{name}}{{/user}}{{/items}}", ctx, "UU");
}

static void
test_partials(void **state)
{
	struct tmpl_set *set = tmpl_set_new();
	json_t *ctx =
	    json_pack("{s:s, s:[{s:s},{s:s}]}", "title", "<T>", "items", "n", "a", "n", "b");
	struct buf out;

	assert_int_equal(tmpl_set_add(set, "head", "<h1>{{title}}</h1>", NULL), 0);
	assert_int_equal(tmpl_set_add(set, "item", "<li>{{n}}/{{title}}</li>", NULL), 0);
	assert_int_equal(
	    tmpl_set_add(set, "page", "{{> head}}<ul>{{#items}}{{>item}}{{/items}}</ul>", NULL), 0);
	/* A partial may name a template added later. */
	assert_int_equal(tmpl_set_add(set, "late", "[{{> later}}]", NULL), 0);
	assert_int_equal(tmpl_set_add(set, "later", "ok", NULL), 0);
	assert_int_equal(tmpl_set_add(set, "self", "x{{> self}}", NULL), 0);
	assert_int_equal(tmpl_set_add(set, "ping", "{{> pong}}", NULL), 0);
	assert_int_equal(tmpl_set_add(set, "pong", "{{> ping}}", NULL), 0);
	assert_int_equal(tmpl_set_add(set, "dangling", "a{{> nowhere}}b", NULL), 0);
	assert_int_equal(tmpl_set_add(set, "head", "again", NULL), ISSO_ERR_CONFLICT);
	assert_int_equal(tmpl_set_add(set, "", "x", NULL), ISSO_ERR_INVALID);
	assert_int_equal(tmpl_set_add(set, "../x", "x", NULL), ISSO_ERR_INVALID);

	buf_init(&out, OUT_MAX);
	assert_int_equal(tmpl_render(set, "page", ctx, NULL, &out), 0);
	assert_string_equal(out.data,
	                    "<h1>&lt;T&gt;</h1><ul><li>a/&lt;T&gt;</li><li>b/&lt;T&gt;</li></ul>");
	buf_reset(&out);
	assert_int_equal(tmpl_render(set, "late", ctx, NULL, &out), 0);
	assert_string_equal(out.data, "[ok]");

	/* Recursion is stopped at render time. */
	buf_reset(&out);
	assert_int_equal(tmpl_render(set, "self", ctx, NULL, &out), ISSO_ERR_LIMIT);
	assert_true(out.len >= 16 && out.len <= 17);
	buf_reset(&out);
	assert_int_equal(tmpl_render(set, "ping", ctx, NULL, &out), ISSO_ERR_LIMIT);
	buf_reset(&out);
	assert_int_equal(tmpl_render(set, "dangling", ctx, NULL, &out), ISSO_ERR_INVALID);
	buf_reset(&out);
	assert_int_equal(tmpl_render(set, "absent", ctx, NULL, &out), ISSO_ERR_INVALID);
	assert_int_equal(tmpl_render(set, NULL, ctx, NULL, &out), ISSO_ERR_INVALID);
	buf_free(&out);
	json_decref(ctx);
	tmpl_set_free(set);
}

static void
test_translate(void **state)
{
	struct i18n *i18n;
	char dir[64], *error = NULL, *s;

	make_dir(dir, sizeof(dir));
	write_file(dir, "zh-TW.json",
	           "{\"greet\":\"您好\",\"html\":\"<b>&'\",\"only.zh\":\"只有中文\"}");
	write_file(dir, "en.json", "{\"greet\":\"Hello\",\"html\":\"<i>\"}");
	i18n = i18n_load(dir, &error);
	assert_null(error);
	assert_non_null(i18n);

	s = render_cat("{{t greet}} {{t html}}", "{}", i18n_catalog(i18n, "zh-TW"));
	assert_string_equal(s, "您好 &lt;b&gt;&amp;&#39;");
	free(s);
	s = render_cat("{{t greet}} {{t html}}", "{}", i18n_catalog(i18n, "en"));
	assert_string_equal(s, "Hello &lt;i&gt;");
	free(s);
	/* Missing in en: the key shows, not the other language. */
	s = render_cat("{{t only.zh}}|{{t no.such_key}}", "{}", i18n_catalog(i18n, "en"));
	assert_string_equal(s, "only.zh|no.such_key");
	free(s);
	/* No catalogue at all: the key. */
	s = render_cat("{{ t  greet }}", "{}", NULL);
	assert_string_equal(s, "greet");
	free(s);
	/* {{t}} alone is a variable named t. */
	s = render_cat("{{t}}", "{\"t\":\"var\"}", i18n_catalog(i18n, "en"));
	assert_string_equal(s, "var");
	free(s);
	/* Translation inside a section over an array. */
	s = render_cat("{{#a}}{{t greet}}{{.}}{{/a}}", "{\"a\":[1,2]}", i18n_catalog(i18n, "en"));
	assert_string_equal(s, "Hello1Hello2");
	free(s);

	i18n_free(i18n);
	remove_dir(dir);
}

static void
test_compile_errors(void **state)
{
	assert_compile_error("{{#a}}x", "bad:1: section 'a' is not closed");
	assert_compile_error("line1\nline2\n  {{#outer}}\n{{^inner}}\n{{/inner}}\n",
	                     "bad:3: section 'outer' is not closed");
	assert_compile_error("\n\n{{#a}}\n{{#b}}\n{{/a}}",
	                     "bad:5: '{{/a}}' does not match '{{#b}}' opened on line 4");
	assert_compile_error("{{^a}}{{/b}}", "'{{/b}}' does not match '{{^a}}' opened on line 1");
	assert_compile_error("ok\n{{/a}}", "bad:2: '{{/a}}' closes no section");
	assert_compile_error("\n{{name", "bad:2: '{{' without a closing '}}'");
	assert_compile_error("{{}}", "bad:1: empty tag");
	assert_compile_error("{{  }}", "empty tag");
	assert_compile_error("{{#}}", "empty tag");
	assert_compile_error("{{t }}", "empty tag");
	assert_compile_error("{{a b}}", "invalid name 'a b'");
	assert_compile_error("{{a..b}}", "invalid name");
	assert_compile_error("{{.a}}", "invalid name");
	assert_compile_error("{{a.}}", "invalid name");
	assert_compile_error("{{a<b}}", "invalid name");
	assert_compile_error("{{> ../etc/passwd}}", "invalid name");
	assert_compile_error("{{t bad key}}", "invalid name");
	assert_compile_error("{{{raw}}}", "unsupported tag");
	assert_compile_error("{{=<% %>=}}", "unsupported tag");
	assert_compile_error("{{#a}}{{/a }}{{/a}}", "closes no section");
	{
		char deep[32 * 12 + 64] = "";
		size_t i;

		for (i = 0; i < 33; i++)
			strncat(deep, "{{#a}}", sizeof(deep) - strlen(deep) - 1);
		assert_compile_error(deep, "nested more than 32 deep");
	}
}

static void
test_buffer_limit(void **state)
{
	struct tmpl_set *set = tmpl_set_new();
	json_t *ctx = json_pack("{s:s, s:[i,i,i,i]}", "s", "<<<<", "a", 1, 2, 3, 4);
	struct buf out;

	assert_int_equal(tmpl_set_add(set, "t", "0123456789{{s}}", NULL), 0);
	assert_int_equal(tmpl_set_add(set, "loop", "{{#a}}abcdef{{/a}}", NULL), 0);
	buf_init(&out, 10);
	assert_int_equal(tmpl_render(set, "t", ctx, NULL, &out), ISSO_ERR_LIMIT);
	buf_free(&out);
	buf_init(&out, 15);
	assert_int_equal(tmpl_render(set, "t", ctx, NULL, &out), ISSO_ERR_LIMIT);
	buf_free(&out);
	buf_init(&out, 26);
	assert_int_equal(tmpl_render(set, "t", ctx, NULL, &out), 0);
	assert_string_equal(out.data, "0123456789&lt;&lt;&lt;&lt;");
	buf_free(&out);
	buf_init(&out, 23);
	assert_int_equal(tmpl_render(set, "loop", ctx, NULL, &out), ISSO_ERR_LIMIT);
	buf_free(&out);
	buf_init(&out, 24);
	assert_int_equal(tmpl_render(set, "loop", ctx, NULL, &out), 0);
	buf_free(&out);
	json_decref(ctx);
	tmpl_set_free(set);
}

/* Nested sections over one array multiply work; the render gives up
 * instead of spinning even when it writes nothing. */
static void
test_work_limit(void **state)
{
	struct tmpl_set *set = tmpl_set_new();
	json_t *ctx = json_pack("{s:[i,i,i,i,i,i,i,i]}", "a", 1, 2, 3, 4, 5, 6, 7, 8);
	char text[1024] = "";
	struct buf out;
	size_t i;

	for (i = 0; i < 20; i++)
		strncat(text, "{{#a}}", sizeof(text) - strlen(text) - 1);
	for (i = 0; i < 20; i++)
		strncat(text, "{{/a}}", sizeof(text) - strlen(text) - 1);
	assert_int_equal(tmpl_set_add(set, "t", text, NULL), 0);
	buf_init(&out, 1024);
	assert_int_equal(tmpl_render(set, "t", ctx, NULL, &out), ISSO_ERR_LIMIT);
	buf_free(&out);
	json_decref(ctx);
	tmpl_set_free(set);
}

static void
test_load_dir(void **state)
{
	struct tmpl_set *set;
	char *error = NULL;
	char sub[128];
	struct buf out;
	json_t *ctx;

	write_file(tmpdir, "a.html", "A{{> b}}");
	write_file(tmpdir, "b.html", "B{{x}}");
	write_file(tmpdir, "notes.txt", "{{#ignored");
	write_file(tmpdir, ".hidden.html", "{{#ignored");
	set = tmpl_set_load(tmpdir, &error);
	assert_null(error);
	assert_non_null(set);
	buf_init(&out, 64);
	ctx = json_pack("{s:s}", "x", "1");
	assert_int_equal(tmpl_render(set, "a", ctx, NULL, &out), 0);
	assert_string_equal(out.data, "AB1");
	buf_free(&out);
	json_decref(ctx);
	tmpl_set_free(set);

	/* A syntax error names the file and the line. */
	write_file(tmpdir, "c.html", "one\ntwo {{#s}}\nthree\n");
	set = tmpl_set_load(tmpdir, &error);
	assert_null(set);
	assert_non_null(error);
	snprintf(sub, sizeof(sub), "%s/c.html:2: section 's' is not closed", tmpdir);
	assert_string_equal(error, sub);
	free(error);
	error = NULL;

	/* Unknown partials are caught at load time. */
	write_file(tmpdir, "c.html", "\n\n{{> missing}}");
	set = tmpl_set_load(tmpdir, &error);
	assert_null(set);
	snprintf(sub, sizeof(sub), "%s/c.html:3: unknown partial 'missing'", tmpdir);
	assert_string_equal(error, sub);
	free(error);
	error = NULL;
	write_file(tmpdir, "c.html", "fine");

	/* A missing directory. */
	set = tmpl_set_load("/nonexistent/templates", &error);
	assert_null(set);
	assert_non_null(strstr(error, "/nonexistent/templates"));
	free(error);
	error = NULL;
	set = tmpl_set_load("/nonexistent/templates", NULL);
	assert_null(set);
}

/* The shipped page shell and error page, with both shipped catalogues. */
static void
test_shipped_templates(void **state)
{
	struct tmpl_set *set;
	struct i18n *i18n;
	char *error = NULL;
	struct buf out;
	json_t *ctx;

	set = tmpl_set_load("templates", &error);
	if (set == NULL)
		fail_msg("templates: %s", error);
	i18n = i18n_load("locales", &error);
	if (i18n == NULL)
		fail_msg("locales: %s", error);
	buf_init(&out, OUT_MAX);

	ctx = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}", "lang", "zh-Hant-TW", "title", "請求有誤",
	                "message", "參數 <x> 無效", "back_url", "/?a=1&b=2", "status", 400,
	                "lang_switch_url", "/lang?to=en");
	assert_int_equal(tmpl_render(set, "error", ctx, i18n_catalog(i18n, "zh-TW"), &out), 0);
	assert_memory_equal(out.data, "<!doctype html>\n", 16);
	assert_non_null(strstr(out.data, "<html lang=\"zh-Hant-TW\">"));
	assert_non_null(strstr(out.data, "<title>請求有誤 - 臺北市政府單一身分驗證入口</title>"));
	assert_non_null(strstr(out.data, "href=\"#main\""));
	assert_non_null(strstr(out.data, "跳到主要內容"));
	assert_non_null(strstr(out.data, "<main id=\"main\" tabindex=\"-1\">"));
	assert_non_null(strstr(out.data, "參數 &lt;x&gt; 無效"));
	assert_non_null(strstr(out.data, "href=\"/?a=1&amp;b=2\""));
	assert_non_null(strstr(out.data, "href=\"/lang?to=en\""));
	assert_non_null(strstr(out.data, ">English<"));
	assert_non_null(strstr(out.data, "400"));
	assert_non_null(strstr(out.data, "臺北市政府資訊局"));
	assert_non_null(strstr(out.data, "href=\"/privacy\""));
	assert_non_null(strstr(out.data, "</html>"));
	/* The progressive script is on every page (it only enhances). */
	assert_non_null(strstr(out.data, "<script src=\"/static/isso.js\" defer></script>"));
	assert_null(strstr(out.data, "{{"));
	json_decref(ctx);

	buf_reset(&out);
	ctx = json_pack("{s:s, s:s, s:s, s:s, s:b}", "lang", "en", "title", "Not found", "message",
	                "Gone", "lang_switch_url", "/lang?to=zh-TW", "script", 1);
	assert_int_equal(tmpl_render(set, "error", ctx, i18n_catalog(i18n, "en"), &out), 0);
	assert_non_null(strstr(out.data, "<html lang=\"en\">"));
	assert_non_null(strstr(out.data, "Skip to main content"));
	assert_non_null(strstr(out.data, ">中文<"));
	assert_non_null(strstr(out.data, "Department of Information Technology"));
	assert_non_null(strstr(out.data, "src=\"/static/isso.js\""));
	assert_null(strstr(out.data, "back_url"));
	json_decref(ctx);

	buf_free(&out);
	i18n_free(i18n);
	tmpl_set_free(set);
}

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_tmpl.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	remove_dir(tmpdir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_only),
	    cmocka_unit_test(test_escape_each_char),
	    cmocka_unit_test(test_embedded_nul_in_value),
	    cmocka_unit_test(test_scalars),
	    cmocka_unit_test(test_sections),
	    cmocka_unit_test(test_inverted),
	    cmocka_unit_test(test_dotted_paths),
	    cmocka_unit_test(test_outer_scope),
	    cmocka_unit_test(test_partials),
	    cmocka_unit_test(test_translate),
	    cmocka_unit_test(test_compile_errors),
	    cmocka_unit_test(test_buffer_limit),
	    cmocka_unit_test(test_work_limit),
	    cmocka_unit_test(test_load_dir),
	    cmocka_unit_test(test_shipped_templates),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
