/* Fuzz target: compiles the input as a template and renders it against a
 * fixed context, alone and through partials (including recursion into
 * itself). Anything may fail; nothing may crash, leak or hang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/i18n.h"
#include "http/tmpl.h"
#include "lib/buf.h"
#include "lib/xmalloc.h"

#define FUZZ_MAX_INPUT  (64 * 1024)
#define FUZZ_MAX_OUTPUT (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_ctx_json[] =
    "{\"lang\":\"zh-Hant-TW\",\"title\":\"<T&'\\\"`>\",\"n\":42,\"r\":-0.5,\"t\":true,"
    "\"f\":false,\"z\":null,\"e\":\"\",\"empty\":[],\"zero\":0,"
    "\"a\":{\"b\":{\"c\":\"abc\"},\"list\":[1,\"two\",{\"c\":3}]},"
    "\"items\":[{\"name\":\"one\",\"items\":[]},{\"name\":\"兩\",\"items\":[{\"name\":\"x\"}]}],"
    "\"words\":[\"a\",\"b\",\"c\"],\"nested\":[[1,2],[3,[4,5]]]}";

static json_t *fuzz_ctx;
static struct i18n *fuzz_i18n;

static void
fuzz_init(void)
{
	if (fuzz_ctx != NULL)
		return;
	fuzz_ctx = json_loads(fuzz_ctx_json, 0, NULL);
	if (fuzz_ctx == NULL)
		abort();
	/* The shipped catalogues when reachable; {{t}} falls back to keys. */
	fuzz_i18n = i18n_load(ISSO_DATADIR "/locales", NULL);
}

static void
fuzz_render(const struct tmpl_set *set, const char *name, const struct i18n_catalog *cat)
{
	struct buf out;

	buf_init(&out, FUZZ_MAX_OUTPUT);
	(void)tmpl_render(set, name, fuzz_ctx, cat, &out);
	if (out.len > FUZZ_MAX_OUTPUT || out.data[out.len] != '\0')
		abort();
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tmpl_set *set;
	char *text, *error = NULL;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	fuzz_init();
	text = xstrndup((const char *)data, size);
	set = tmpl_set_new();
	/* Partials the input may name, and one that names the input. */
	(void)tmpl_set_add(set, "p", "[{{title}}{{#items}}{{name}}{{/items}}]", NULL);
	(void)tmpl_set_add(set, "rec", "<{{#words}}{{> fuzz}}{{/words}}>", NULL);
	if (tmpl_set_add(set, "fuzz", text, &error) == 0) {
		if (error != NULL)
			abort();
		fuzz_render(set, "fuzz", i18n_catalog(fuzz_i18n, "zh-TW"));
		fuzz_render(set, "rec", i18n_catalog(fuzz_i18n, "en"));
		fuzz_render(set, "fuzz", NULL);
	} else if (error == NULL) {
		abort();
	}
	free(error);
	free(text);
	tmpl_set_free(set);
	return 0;
}
