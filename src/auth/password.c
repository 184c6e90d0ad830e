/* The password policy for new passwords (NIST SP 800-63B). */
#include "auth/password.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>
#include <uninorm.h>
#include <zxcvbn.h>

#include "lib/isso.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

/* The list file is read whole; it is a few thousand short lines. */
#define LIST_MAX_BYTES (4 * 1024 * 1024)
/* Context words shorter than this are too common to refuse on. */
#define CONTEXT_MIN 4

struct password_policy {
	char *text;   /* the file, lines cut in place */
	char **words; /* sorted, lower case */
	size_t n;
	int min_bits;
};

static _Thread_local char password_errbuf[256];

static int
cmp_word(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
ascii_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

int
password_policy_load(const char *path, int min_bits, struct password_policy **policy_r,
                     const char **error_r)
{
	struct password_policy *p = xcalloc(1, sizeof(*p));
	FILE *fp = NULL;
	struct stat sb;
	size_t len, cap = 0;
	char *line, *next;
	int ret = ISSO_ERR_IO;

	*policy_r = NULL;
	p->min_bits = min_bits;
	fp = fopen(path, "re");
	if (fp == NULL || fstat(fileno(fp), &sb) < 0) {
		snprintf(password_errbuf, sizeof(password_errbuf), "cannot read %s: %s", path,
		         strerror(errno));
		*error_r = password_errbuf;
		goto out;
	}
	if (sb.st_size <= 0 || sb.st_size > LIST_MAX_BYTES) {
		snprintf(password_errbuf, sizeof(password_errbuf),
		         "%s: empty or larger than %d bytes", path, LIST_MAX_BYTES);
		*error_r = password_errbuf;
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	len = (size_t)sb.st_size;
	p->text = xmalloc(len + 1);
	if (fread(p->text, 1, len, fp) != len) {
		snprintf(password_errbuf, sizeof(password_errbuf), "cannot read %s", path);
		*error_r = password_errbuf;
		goto out;
	}
	p->text[len] = '\0';
	if (!utf8_valid(p->text, len)) {
		snprintf(password_errbuf, sizeof(password_errbuf), "%s: not UTF-8", path);
		*error_r = password_errbuf;
		ret = ISSO_ERR_INVALID;
		goto out;
	}
	for (line = p->text; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		ascii_lower(line);
		if (p->n == cap) {
			cap = cap == 0 ? 4096 : cap * 2;
			p->words = xrealloc(p->words, cap * sizeof(*p->words));
		}
		p->words[p->n++] = line;
	}
	if (p->n > 0)
		qsort(p->words, p->n, sizeof(*p->words), cmp_word);
	*policy_r = p;
	p = NULL;
	ret = 0;
out:
	if (fp != NULL)
		fclose(fp);
	password_policy_free(p);
	return ret;
}

void
password_policy_free(struct password_policy *p)
{
	if (p == NULL)
		return;
	free(p->words);
	free(p->text);
	free(p);
}

char *
password_normalize(const char *password)
{
	size_t len = strlen(password), n = 0;
	uint8_t *norm;
	char *out;

	if (!utf8_valid(password, len))
		return NULL;
	norm = u8_normalize(UNINORM_NFKC, (const uint8_t *)password, len, NULL, &n);
	if (norm == NULL)
		return NULL;
	out = xmalloc(n + 1);
	memcpy(out, norm, n);
	out[n] = '\0';
	sodium_memzero(norm, n);
	free(norm);
	return out;
}

size_t
password_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Does lower (the lower-cased password) contain word, case-insensitively?
 * For an e-mail address, its local part counts; for a phone number, its
 * last nine digits (without the leading 0). */
static bool
contains_context(const char *lower, const char *word)
{
	char w[256];
	size_t n;

	if (word == NULL)
		return false;
	n = strcspn(word, "@");
	if (n >= sizeof(w))
		return false;
	memcpy(w, word, n);
	w[n] = '\0';
	ascii_lower(w);
	if (n == 10 && w[0] == '0' && strspn(w, "0123456789") == 10)
		memmove(w, w + 1, 10);
	return strlen(w) >= CONTEXT_MIN && strstr(lower, w) != NULL;
}

const char *
password_problem(const struct password_policy *p, const char *password, const char *const *context)
{
	const char *problem = NULL, *user[8];
	char *norm = password_normalize(password), *lower = NULL, *key;
	size_t chars, n = 0;
	double bits;

	if (norm == NULL)
		return "password.too_short";
	chars = password_chars(norm);
	if (chars < PASSWORD_MIN_CHARS) {
		problem = "password.too_short";
		goto out;
	}
	if (chars > PASSWORD_MAX_CHARS) {
		problem = "password.too_long";
		goto out;
	}
	if (p == NULL)
		goto out;
	lower = xstrdup(norm);
	ascii_lower(lower);
	key = lower;
	if (p->n > 0 && bsearch(&key, p->words, p->n, sizeof(*p->words), cmp_word) != NULL) {
		problem = "password.common";
		goto out;
	}
	for (size_t i = 0; context != NULL && context[i] != NULL; i++) {
		if (context[i][0] == '\0')
			continue;
		if (contains_context(lower, context[i])) {
			problem = "password.context";
			goto out;
		}
		if (n < ISSO_N_ELEMENTS(user) - 1)
			user[n++] = context[i];
	}
	user[n] = NULL;
	bits = ZxcvbnMatch(norm, user, NULL);
	if (bits < (double)p->min_bits)
		problem = "password.weak";
out:
	xfree_secret(lower);
	xfree_secret(norm);
	return problem;
}
