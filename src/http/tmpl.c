/* Template engine: each template compiles once into a flat node list
 * (sections record where their body ends), rendering walks that list with a
 * stack of jansson contexts kept on the C stack. */
#include "http/tmpl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/i18n.h"
#include "lib/isso.h"
#include "lib/xmalloc.h"

#define TMPL_MAX_FILE  (1024 * 1024) /* bytes of one template source */
#define TMPL_MAX_NEST  32            /* sections open at once in one template */
#define TMPL_MAX_DEPTH 16            /* partials included within each other */
#define TMPL_MAX_STEPS 2000000UL     /* nodes visited by one render */
#define TMPL_MAX_NAME  128           /* bytes of a name, key or partial */
#define TMPL_MAX_COUNT 4096          /* templates in one set */

enum tmpl_kind {
	TMPL_TEXT,
	TMPL_VAR,
	TMPL_RAW,
	TMPL_SECTION,
	TMPL_INVERTED,
	TMPL_TRANSLATE,
	TMPL_PARTIAL,
};

struct tmpl_node {
	enum tmpl_kind kind;
	unsigned line;
	/* TEXT: the bytes (into the template's source copy, not terminated);
	 * others: the NUL-terminated name, key or partial. */
	const char *str;
	size_t len;
	/* SECTION / INVERTED: index of the first node after the body. */
	size_t end;
};

struct tmpl {
	char *name;
	char *src; /* mutable copy of the source; nodes point into it */
	struct tmpl_node *nodes;
	size_t n;
};

struct tmpl_set {
	struct tmpl *v;
	size_t n, cap;
};

/* A context on the stack: the innermost is searched first. */
struct tmpl_frame {
	json_t *value;
	const struct tmpl_frame *up;
};

struct tmpl_render_state {
	const struct tmpl_set *set;
	const struct i18n_catalog *cat;
	struct buf *out;
	unsigned long steps;
	unsigned depth;
};

struct tmpl_compiler {
	const char *file; /* for messages */
	struct tmpl_node *nodes;
	size_t n, cap;
	size_t open[TMPL_MAX_NEST]; /* node index of each open section */
	size_t nopen;
	char *error;
};

/* ---- compiling ---- */

static int __attribute__((format(printf, 3, 4)))
tmpl_fail(struct tmpl_compiler *c, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	free(c->error);
	c->error = xasprintf("%s:%u: %s", c->file, line, msg);
	return ISSO_ERR_INVALID;
}

static struct tmpl_node *
tmpl_push(struct tmpl_compiler *c, enum tmpl_kind kind, unsigned line, const char *str, size_t len)
{
	struct tmpl_node *n;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 32;
		c->nodes = xrealloc(c->nodes, c->cap * sizeof(*c->nodes));
	}
	n = &c->nodes[c->n++];
	n->kind = kind;
	n->line = line;
	n->str = str;
	n->len = len;
	n->end = 0;
	return n;
}

static bool
tmpl_is_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '-';
}

/* A context path: "." or segments of [A-Za-z0-9_-] joined by single dots. */
static bool
tmpl_valid_path(const char *s, size_t len)
{
	bool seg_empty = true;
	size_t i;

	if (len == 0 || len > TMPL_MAX_NAME)
		return false;
	if (len == 1 && s[0] == '.')
		return true;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (seg_empty)
				return false;
			seg_empty = true;
		} else if (tmpl_is_name_char(s[i])) {
			seg_empty = false;
		} else {
			return false;
		}
	}
	return !seg_empty;
}

/* A message key or template name: [A-Za-z0-9_.-]+, not starting with '.'. */
static bool
tmpl_valid_key(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > TMPL_MAX_NAME || s[0] == '.')
		return false;
	for (i = 0; i < len; i++)
		if (!tmpl_is_name_char(s[i]) && s[i] != '.')
			return false;
	return true;
}

static unsigned
tmpl_count_lines(const char *s, size_t len)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] == '\n')
			n++;
	return n;
}

static bool
tmpl_is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* Compiles one tag whose content is tag[0..len) (writable: the name gets
 * NUL-terminated in place, over the tag's own bytes). */
static int
tmpl_compile_tag(struct tmpl_compiler *c, char *tag, size_t len, unsigned line)
{
	enum tmpl_kind kind = TMPL_VAR;
	struct tmpl_node *open;
	size_t start = 0;
	int err = 0;
	char sigil;
	bool ok;

	while (len > 0 && tmpl_is_space(tag[0])) {
		tag++;
		len--;
	}
	sigil = len > 0 ? tag[0] : '\0';
	switch (sigil) {
	case '!':
		goto out;
	case '#':
		kind = TMPL_SECTION;
		start = 1;
		break;
	case '^':
		kind = TMPL_INVERTED;
		start = 1;
		break;
	case '&':
		kind = TMPL_RAW;
		start = 1;
		break;
	case '>':
		kind = TMPL_PARTIAL;
		start = 1;
		break;
	case '/':
		start = 1;
		break;
	case 't':
		if (len > 1 && tmpl_is_space(tag[1])) {
			kind = TMPL_TRANSLATE;
			start = 1;
		}
		break;
	case '{':
	case '=':
		err = tmpl_fail(c, line, "unsupported tag '{{%.*s}}'", (int)(len < 40 ? len : 40),
		                tag);
		goto out;
	default:
		break;
	}
	while (start < len && tmpl_is_space(tag[start]))
		start++;
	while (len > start && tmpl_is_space(tag[len - 1]))
		len--;
	tag += start;
	len -= start;
	if (len == 0) {
		err = tmpl_fail(c, line, "empty tag");
		goto out;
	}
	ok = kind == TMPL_PARTIAL || kind == TMPL_TRANSLATE ? tmpl_valid_key(tag, len)
	                                                    : tmpl_valid_path(tag, len);
	if (!ok) {
		err = tmpl_fail(c, line, "invalid name '%.*s'", (int)(len < 40 ? len : 40), tag);
		goto out;
	}
	tag[len] = '\0';

	if (sigil == '/') {
		if (c->nopen == 0) {
			err = tmpl_fail(c, line, "'{{/%s}}' closes no section", tag);
			goto out;
		}
		open = &c->nodes[c->open[c->nopen - 1]];
		if (strcmp(open->str, tag) != 0) {
			err = tmpl_fail(
			    c, line, "'{{/%s}}' does not match '{{%c%s}}' opened on line %u", tag,
			    open->kind == TMPL_SECTION ? '#' : '^', open->str, open->line);
			goto out;
		}
		open->end = c->n;
		c->nopen--;
		goto out;
	}
	if (kind == TMPL_SECTION || kind == TMPL_INVERTED) {
		if (c->nopen == TMPL_MAX_NEST) {
			err =
			    tmpl_fail(c, line, "sections nested more than %d deep", TMPL_MAX_NEST);
			goto out;
		}
		c->open[c->nopen++] = c->n;
	}
	tmpl_push(c, kind, line, tag, len);
out:
	return err;
}

/* Compiles src (modified in place) into c->nodes. */
static int
tmpl_compile(struct tmpl_compiler *c, char *src)
{
	unsigned line = 1;
	char *p = src, *open, *close;
	int err = 0;

	while (*p != '\0') {
		open = strstr(p, "{{");
		if (open == NULL) {
			tmpl_push(c, TMPL_TEXT, line, p, strlen(p));
			break;
		}
		if (open > p) {
			tmpl_push(c, TMPL_TEXT, line, p, (size_t)(open - p));
			line += tmpl_count_lines(p, (size_t)(open - p));
		}
		close = strstr(open + 2, "}}");
		if (close == NULL) {
			err = tmpl_fail(c, line, "'{{' without a closing '}}'");
			goto out;
		}
		err = tmpl_compile_tag(c, open + 2, (size_t)(close - open - 2), line);
		if (err < 0)
			goto out;
		line += tmpl_count_lines(open, (size_t)(close - open));
		p = close + 2;
	}
	if (c->nopen > 0) {
		const struct tmpl_node *n = &c->nodes[c->open[c->nopen - 1]];

		err = tmpl_fail(c, n->line, "section '%s' is not closed", n->str);
		goto out;
	}
out:
	return err;
}

static void
tmpl_clear(struct tmpl *t)
{
	free(t->name);
	free(t->src);
	free(t->nodes);
}

static struct tmpl *
tmpl_find(const struct tmpl_set *set, const char *name)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (strcmp(set->v[i].name, name) == 0)
			return &set->v[i];
	return NULL;
}

/* Compiles text as template name; file names it in messages. */
static int
tmpl_set_add_file(struct tmpl_set *set, const char *name, const char *file, const char *text,
                  char **error_r)
{
	struct tmpl_compiler c = {.file = file};
	struct tmpl *t;
	char *src = NULL;
	size_t len;
	int err = 0;

	if (name == NULL || text == NULL || !tmpl_valid_key(name, strlen(name))) {
		c.error = xasprintf("%s: invalid template name", file != NULL ? file : "(null)");
		err = ISSO_ERR_INVALID;
		goto out;
	}
	if (tmpl_find(set, name) != NULL) {
		c.error = xasprintf("%s: template '%s' defined twice", file, name);
		err = ISSO_ERR_CONFLICT;
		goto out;
	}
	len = strlen(text);
	if (len > TMPL_MAX_FILE || set->n >= TMPL_MAX_COUNT) {
		c.error = xasprintf("%s: template too large or too many templates", file);
		err = ISSO_ERR_LIMIT;
		goto out;
	}
	src = xstrndup(text, len);
	err = tmpl_compile(&c, src);
	if (err < 0)
		goto out;
	if (set->n == set->cap) {
		set->cap = set->cap ? set->cap * 2 : 16;
		set->v = xrealloc(set->v, set->cap * sizeof(*set->v));
	}
	t = &set->v[set->n++];
	t->name = xstrdup(name);
	t->src = src;
	t->nodes = c.nodes;
	t->n = c.n;
	src = NULL;
	c.nodes = NULL;
out:
	free(src);
	free(c.nodes);
	if (error_r != NULL)
		*error_r = c.error;
	else
		free(c.error);
	return err;
}

struct tmpl_set *
tmpl_set_new(void)
{
	return xcalloc(1, sizeof(struct tmpl_set));
}

void
tmpl_set_free(struct tmpl_set *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++)
		tmpl_clear(&set->v[i]);
	free(set->v);
	free(set);
}

int
tmpl_set_add(struct tmpl_set *set, const char *name, const char *text, char **error_r)
{
	return tmpl_set_add_file(set, name, name, text, error_r);
}

/* Reads a whole regular file of at most TMPL_MAX_FILE bytes. */
static int
tmpl_read_file(const char *path, char **text_r, char **error_r)
{
	char *text = NULL;
	struct stat st;
	size_t got = 0;
	ssize_t r;
	int fd, err = 0;

	*text_r = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		err = ISSO_ERR_IO;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > TMPL_MAX_FILE) {
		*error_r = xasprintf("%s: not a regular file or larger than %d bytes", path,
		                     TMPL_MAX_FILE);
		err = ISSO_ERR_LIMIT;
		goto out;
	}
	text = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		r = read(fd, text + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			*error_r =
			    xasprintf("%s: %s", path, r < 0 ? strerror(errno) : "short read");
			err = ISSO_ERR_IO;
			goto out;
		}
		got += (size_t)r;
	}
	text[got] = '\0';
	if (strlen(text) != got) {
		*error_r = xasprintf("%s: contains a NUL byte", path);
		err = ISSO_ERR_INVALID;
		goto out;
	}
	*text_r = text;
	text = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	return err;
}

static int
tmpl_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every {{> name}} must name a template of the set. */
static int
tmpl_check_partials(const struct tmpl_set *set, const char *dir, char **error_r)
{
	const struct tmpl_node *n;
	size_t i, j;
	int err = 0;

	for (i = 0; i < set->n && err == 0; i++) {
		for (j = 0; j < set->v[i].n && err == 0; j++) {
			n = &set->v[i].nodes[j];
			if (n->kind != TMPL_PARTIAL || tmpl_find(set, n->str) != NULL)
				continue;
			*error_r = xasprintf("%s/%s.html:%u: unknown partial '%s'", dir,
			                     set->v[i].name, n->line, n->str);
			err = ISSO_ERR_INVALID;
		}
	}
	return err;
}

struct tmpl_set *
tmpl_set_load(const char *dir, char **error_r)
{
	struct tmpl_set *set = tmpl_set_new();
	char **names = NULL, *path = NULL, *text = NULL, *error = NULL;
	size_t n = 0, cap = 0, i, len;
	struct dirent *de;
	DIR *d;
	int err = 0;

	d = opendir(dir);
	if (d == NULL) {
		error = xasprintf("%s: %s", dir, strerror(errno));
		err = ISSO_ERR_IO;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".html") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrndup(de->d_name, len - 5);
		if (n > TMPL_MAX_COUNT) {
			error = xasprintf("%s: more than %d templates", dir, TMPL_MAX_COUNT);
			err = ISSO_ERR_LIMIT;
			goto out;
		}
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), tmpl_cmp_names);
	for (i = 0; i < n; i++) {
		free(path);
		free(text);
		text = NULL;
		path = xasprintf("%s/%s.html", dir, names[i]);
		err = tmpl_read_file(path, &text, &error);
		if (err < 0)
			goto out;
		err = tmpl_set_add_file(set, names[i], path, text, &error);
		if (err < 0)
			goto out;
	}
	err = tmpl_check_partials(set, dir, &error);
out:
	if (d != NULL)
		closedir(d);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(path);
	free(text);
	if (err < 0) {
		tmpl_set_free(set);
		set = NULL;
	}
	if (error_r != NULL)
		*error_r = error;
	else
		free(error);
	return set;
}

/* ---- rendering ---- */

int
tmpl_escape(struct buf *out, const char *s, size_t len)
{
	size_t i, run = 0;
	const char *rep;
	int err = 0;

	for (i = 0; i < len; i++) {
		switch (s[i]) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		case '`':
			rep = "&#96;";
			break;
		default:
			continue;
		}
		err = buf_add(out, s + run, i - run);
		if (err == 0)
			err = buf_addstr(out, rep);
		if (err < 0)
			goto out;
		run = i + 1;
	}
	err = buf_add(out, s + run, len - run);
out:
	return err;
}

/* Resolves a dotted path: the first segment through the context stack
 * (innermost first), the rest inside the value found. */
static json_t *
tmpl_lookup(const struct tmpl_frame *f, const char *name)
{
	const char *seg = name, *dot;
	json_t *v = NULL;

	if (name[0] == '.' && name[1] == '\0')
		return f != NULL ? f->value : NULL;
	dot = strchr(seg, '.');
	for (; f != NULL; f = f->up) {
		if (!json_is_object(f->value))
			continue;
		v = json_object_getn(f->value, seg, dot ? (size_t)(dot - seg) : strlen(seg));
		if (v != NULL)
			break;
	}
	while (v != NULL && dot != NULL) {
		seg = dot + 1;
		dot = strchr(seg, '.');
		v = json_is_object(v)
		        ? json_object_getn(v, seg, dot ? (size_t)(dot - seg) : strlen(seg))
		        : NULL;
	}
	return v;
}

static bool
tmpl_truthy(const json_t *v)
{
	if (v == NULL)
		return false;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
	case JSON_TRUE:
		return true;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0.0;
	default:
		return false;
	}
}

static int
tmpl_put_value(struct buf *out, const json_t *v, bool escape)
{
	char num[64];
	int err = 0;

	switch (v != NULL ? json_typeof(v) : JSON_NULL) {
	case JSON_STRING:
		if (escape)
			err = tmpl_escape(out, json_string_value(v), json_string_length(v));
		else
			err = buf_add(out, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		err = buf_addstr(out, num);
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.15g", json_real_value(v));
		err = buf_addstr(out, num);
		break;
	case JSON_TRUE:
		err = buf_addstr(out, "true");
		break;
	case JSON_FALSE:
		err = buf_addstr(out, "false");
		break;
	default:
		break; /* null, objects and arrays render nothing */
	}
	return err;
}

static int tmpl_render_nodes(struct tmpl_render_state *r, const struct tmpl *t, size_t from,
                             size_t to, const struct tmpl_frame *f);

static int
tmpl_render_partial(struct tmpl_render_state *r, const char *name, const struct tmpl_frame *f)
{
	const struct tmpl *p;
	int err = ISSO_ERR_LIMIT;

	if (r->depth >= TMPL_MAX_DEPTH)
		goto out;
	err = ISSO_ERR_INVALID;
	p = tmpl_find(r->set, name);
	if (p == NULL)
		goto out;
	r->depth++;
	err = tmpl_render_nodes(r, p, 0, p->n, f);
	r->depth--;
out:
	return err;
}

static int
tmpl_render_section(struct tmpl_render_state *r, const struct tmpl *t, size_t i,
                    const struct tmpl_frame *f)
{
	const struct tmpl_node *n = &t->nodes[i];
	struct tmpl_frame child = {.up = f};
	json_t *v = tmpl_lookup(f, n->str);
	size_t k;
	int err = 0;

	if (n->kind == TMPL_INVERTED) {
		if (!tmpl_truthy(v))
			err = tmpl_render_nodes(r, t, i + 1, n->end, f);
	} else if (json_is_array(v)) {
		for (k = 0; k < json_array_size(v) && err == 0; k++) {
			child.value = json_array_get(v, k);
			err = tmpl_render_nodes(r, t, i + 1, n->end, &child);
		}
	} else if (tmpl_truthy(v)) {
		child.value = v;
		err = tmpl_render_nodes(r, t, i + 1, n->end, &child);
	}
	return err;
}

static int
tmpl_render_nodes(struct tmpl_render_state *r, const struct tmpl *t, size_t from, size_t to,
                  const struct tmpl_frame *f)
{
	const struct tmpl_node *n;
	const char *s;
	size_t i;
	int err = 0;

	for (i = from; i < to && err == 0; i++) {
		n = &t->nodes[i];
		if (++r->steps > TMPL_MAX_STEPS) {
			err = ISSO_ERR_LIMIT;
			break;
		}
		switch (n->kind) {
		case TMPL_TEXT:
			err = buf_add(r->out, n->str, n->len);
			break;
		case TMPL_VAR:
		case TMPL_RAW:
			err = tmpl_put_value(r->out, tmpl_lookup(f, n->str), n->kind == TMPL_VAR);
			break;
		case TMPL_SECTION:
		case TMPL_INVERTED:
			err = tmpl_render_section(r, t, i, f);
			i = n->end - 1;
			break;
		case TMPL_TRANSLATE:
			s = r->cat != NULL ? i18n_get(r->cat, n->str) : n->str;
			err = tmpl_escape(r->out, s, strlen(s));
			break;
		case TMPL_PARTIAL:
			err = tmpl_render_partial(r, n->str, f);
			break;
		}
	}
	return err;
}

int
tmpl_render(const struct tmpl_set *set, const char *name, json_t *ctx,
            const struct i18n_catalog *cat, struct buf *out)
{
	struct tmpl_render_state r = {.set = set, .cat = cat, .out = out};
	struct tmpl_frame root = {.value = ctx};
	const struct tmpl *t;
	int err = ISSO_ERR_INVALID;

	if (set == NULL || name == NULL || out == NULL)
		goto out;
	t = tmpl_find(set, name);
	if (t == NULL)
		goto out;
	err = tmpl_render_nodes(&r, t, 0, t->n, ctx != NULL ? &root : NULL);
out:
	return err;
}
