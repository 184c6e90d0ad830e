/* Unit tests for message catalogues and locale negotiation (src/http/i18n.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/i18n.h"
#include "lib/isso.h"

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static void
make_dir(char *buf, size_t size)
{
	snprintf(buf, size, "/tmp/test_i18n.XXXXXX");
	assert_non_null(mkdtemp(buf));
}

static void
remove_dir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Loading dir must fail with a message containing want. */
static void
assert_load_error(const char *dir, const char *want)
{
	char *error = NULL;
	struct i18n *i18n = i18n_load(dir, &error);

	assert_null(i18n);
	assert_non_null(error);
	if (strstr(error, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", error, want);
	free(error);
	assert_null(i18n_load(dir, NULL));
}

static void
test_shipped_catalogues(void **state)
{
	const struct i18n_catalog *zh, *en;
	char *error = NULL;
	struct i18n *i18n = i18n_load("locales", &error);

	if (i18n == NULL)
		fail_msg("locales: %s", error);
	zh = i18n_catalog(i18n, "zh-TW");
	en = i18n_catalog(i18n, "en");
	assert_non_null(zh);
	assert_non_null(en);
	assert_ptr_not_equal(zh, en);
	assert_string_equal(i18n_locale(zh), "zh-TW");
	assert_string_equal(i18n_locale(en), "en");
	assert_string_equal(i18n_get(zh, "site.name"), "臺北市政府單一身分驗證入口");
	assert_string_equal(i18n_get(zh, "site.skip"), "跳到主要內容");
	assert_string_equal(i18n_get(en, "site.skip"), "Skip to main content");
	assert_string_equal(i18n_get(zh, "site.lang_switch"), "English");
	assert_string_equal(i18n_get(en, "site.lang_switch"), "中文");
	assert_string_equal(i18n_get(zh, "site.footer"), "臺北市政府資訊局");
	assert_string_equal(i18n_get(en, "site.footer"),
	                    "Department of Information Technology, Taipei City Government");
	i18n_free(i18n);
}

/* Both shipped files: flat, sorted by key, the same keys, no empty text. */
static void
test_shipped_files_consistent(void **state)
{
	json_t *zh = json_load_file("locales/zh-TW.json", JSON_PRESERVE_ORDER, NULL);
	json_t *en = json_load_file("locales/en.json", JSON_PRESERVE_ORDER, NULL);
	const char *key, *prev = NULL;
	json_t *v;

	assert_non_null(zh);
	assert_non_null(en);
	assert_int_equal(json_object_size(zh), json_object_size(en));
	json_object_foreach(zh, key, v)
	{
		assert_true(json_is_string(v));
		assert_true(json_string_length(v) > 0);
		if (json_object_get(en, key) == NULL)
			fail_msg("en.json lacks %s", key);
		if (prev != NULL && strcmp(prev, key) >= 0)
			fail_msg("zh-TW.json: %s is not sorted after %s", key, prev);
		prev = key;
	}
	prev = NULL;
	json_object_foreach(en, key, v)
	{
		assert_true(json_is_string(v));
		assert_true(json_string_length(v) > 0);
		if (prev != NULL && strcmp(prev, key) >= 0)
			fail_msg("en.json: %s is not sorted after %s", key, prev);
		prev = key;
	}
	json_decref(zh);
	json_decref(en);
}

static void
test_catalog_fallback(void **state)
{
	char dir[64], *error = NULL;
	const struct i18n_catalog *zh, *en;
	struct i18n *i18n;

	make_dir(dir, sizeof(dir));
	write_file(dir, "zh-TW.json", "{\"a\":\"甲\",\"only\":\"只有\"}");
	write_file(dir, "en.json", "{\"a\":\"A\"}");
	write_file(dir, "README.txt", "not a catalogue");
	write_file(dir, ".draft.json", "{broken");
	i18n = i18n_load(dir, &error);
	assert_null(error);
	assert_non_null(i18n);
	zh = i18n_catalog(i18n, "zh-TW");
	en = i18n_catalog(i18n, "en");

	assert_ptr_equal(i18n_catalog(i18n, "fr"), zh);
	assert_ptr_equal(i18n_catalog(i18n, NULL), zh);
	assert_ptr_equal(i18n_catalog(i18n, ""), zh);
	assert_ptr_equal(i18n_catalog(i18n, "EN"), en);
	assert_ptr_equal(i18n_catalog(i18n, "zh-tw"), zh);
	assert_null(i18n_catalog(NULL, "en"));

	assert_string_equal(i18n_get(en, "a"), "A");
	assert_string_equal(i18n_get(zh, "a"), "甲");
	/* A gap shows the key, never the other language. */
	assert_string_equal(i18n_get(en, "only"), "only");
	assert_string_equal(i18n_get(zh, "no.such"), "no.such");
	assert_string_equal(i18n_get(NULL, "x.y"), "x.y");
	assert_string_equal(i18n_get(en, NULL), "");
	assert_string_equal(i18n_locale(NULL), "zh-TW");

	i18n_free(i18n);
	i18n_free(NULL);
	remove_dir(dir);
}

static void
test_load_errors(void **state)
{
	char dir[64];

	assert_load_error("/nonexistent/locales", "/nonexistent/locales");

	make_dir(dir, sizeof(dir));
	assert_load_error(dir, "zh-TW.json");
	write_file(dir, "en.json", "{\"a\":\"A\"}");
	assert_load_error(dir, "no zh-TW.json");

	write_file(dir, "zh-TW.json", "{\"a\":\"甲\",\n\"b\": }");
	assert_load_error(dir, "zh-TW.json:2:");
	write_file(dir, "zh-TW.json", "[\"a\"]");
	assert_load_error(dir, "not a JSON object");
	write_file(dir, "zh-TW.json", "{\"a\":{\"nested\":\"x\"}}");
	assert_load_error(dir, "value of \"a\" is not a string");
	write_file(dir, "zh-TW.json", "{\"a\":1}");
	assert_load_error(dir, "value of \"a\" is not a string");
	write_file(dir, "zh-TW.json", "{\"a\":\"x\",\"a\":\"y\"}");
	assert_load_error(dir, "zh-TW.json");
	write_file(dir, "zh-TW.json", "{\"a\":\"x\"}");
	write_file(dir, "bad name.json", "{}");
	assert_load_error(dir, "not a locale name");
	remove_dir(dir);
}

struct negotiate_case {
	const char *ui_locales, *cookie, *accept, *want;
};

static void
test_negotiate(void **state)
{
	static const struct negotiate_case cases[] = {
	    {NULL, NULL, NULL, "zh-TW"},
	    {"", "", "", "zh-TW"},
	    /* ui_locales: first supported tag wins. */
	    {"en", NULL, NULL, "en"},
	    {"en-US", NULL, NULL, "en"},
	    {"EN-gb", NULL, NULL, "en"},
	    {"zh-TW", NULL, NULL, "zh-TW"},
	    {"zh-Hant", NULL, NULL, "zh-TW"},
	    {"zh-Hant-TW", NULL, NULL, "zh-TW"},
	    {"zh", NULL, NULL, "zh-TW"},
	    {"fr-CA en zh-TW", NULL, NULL, "en"},
	    {"  fr   zh-TW  en ", NULL, NULL, "zh-TW"},
	    {"english", NULL, NULL, "zh-TW"},
	    {"e", NULL, NULL, "zh-TW"},
	    {"*", "en", NULL, "en"},
	    {"en_US", NULL, NULL, "en"},
	    /* ui_locales beats the cookie and Accept-Language. */
	    {"zh-TW", "en", "en", "zh-TW"},
	    {"en", "zh-TW", "zh-TW", "en"},
	    /* Unsupported ui_locales: the cookie decides. */
	    {"fr ja", "en", "zh-TW", "en"},
	    {NULL, "en", NULL, "en"},
	    {NULL, "zh-TW", "en", "zh-TW"},
	    {NULL, "EN", NULL, "en"},
	    /* The cookie is ours: only its two exact values count. */
	    {NULL, "en-US", "zh-TW", "zh-TW"},
	    {NULL, "fr", "en", "en"},
	    {NULL, "", "en", "en"},
	    /* Accept-Language with q-values. */
	    {NULL, NULL, "en", "en"},
	    {NULL, NULL, "en-US,en;q=0.9", "en"},
	    {NULL, NULL, "zh-TW,zh;q=0.9,en-US;q=0.8,en;q=0.7", "zh-TW"},
	    {NULL, NULL, "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "en"},
	    {NULL, NULL, "zh-TW;q=0.5, en;q=0.8", "en"},
	    {NULL, NULL, "en;q=0.5, zh-Hant;q=0.51", "zh-TW"},
	    {NULL, NULL, "en;q=0.800,zh;q=0.8", "en"}, /* tie: earliest wins */
	    {NULL, NULL, "en;q=0, zh-TW;q=0.1", "zh-TW"},
	    {NULL, NULL, "en;q=0", "zh-TW"},
	    {NULL, NULL, "en ; q=1.0", "en"},
	    {NULL, NULL, "en;Q=0.3", "en"},
	    {NULL, NULL, "fr, de", "zh-TW"},
	    {NULL, NULL, "fr, *;q=0.1", "zh-TW"},
	    {NULL, NULL, "*;q=0.1, en;q=0.2", "en"},
	    {NULL, NULL, "en;level=1;q=0.4,zh;q=0.3", "en"},
	    /* Malformed weights make their element count for nothing. */
	    {NULL, NULL, "en;q=2, zh;q=0.1", "zh-TW"},
	    {NULL, NULL, "en;q=0.5x, zh;q=0.1", "zh-TW"},
	    {NULL, NULL, "en;q=1.001, zh;q=0.1", "zh-TW"},
	    {NULL, NULL, "en;q=0.12345, zh;q=0.1", "zh-TW"},
	    {NULL, NULL, "en;q=, zh;q=0.1", "zh-TW"},
	    {NULL, NULL, "en;q=-1, zh;q=0.1", "zh-TW"},
	    {NULL, NULL, ",,, ;;; ,en", "en"},
	    {NULL, NULL, ";q=0.9", "zh-TW"},
	    {NULL, NULL, "\ten\t;\tq=0.9\t", "en"},
	};
	size_t i;

	for (i = 0; i < ISSO_N_ELEMENTS(cases); i++) {
		const char *got =
		    i18n_negotiate(cases[i].ui_locales, cases[i].cookie, cases[i].accept);

		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu (ui_locales=%s cookie=%s accept=%s): got %s, want %s", i,
			         cases[i].ui_locales ? cases[i].ui_locales : "(null)",
			         cases[i].cookie ? cases[i].cookie : "(null)",
			         cases[i].accept ? cases[i].accept : "(null)", got, cases[i].want);
	}
}

/* A very long header is handled without trouble. */
static void
test_negotiate_long_header(void **state)
{
	size_t n = 64 * 1024, i;
	char *s = malloc(n + 16);

	assert_non_null(s);
	for (i = 0; i + 7 < n; i += 7)
		memcpy(s + i, "fr;q=1,", 7);
	s[i] = '\0';
	assert_string_equal(i18n_negotiate(NULL, NULL, s), "zh-TW");
	memcpy(s + i, ",en;q=1", 8);
	assert_string_equal(i18n_negotiate(NULL, NULL, s), "en");
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shipped_catalogues),
	    cmocka_unit_test(test_shipped_files_consistent),
	    cmocka_unit_test(test_catalog_fallback),
	    cmocka_unit_test(test_load_errors),
	    cmocka_unit_test(test_negotiate),
	    cmocka_unit_test(test_negotiate_long_header),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
