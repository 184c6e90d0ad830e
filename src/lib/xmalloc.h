/* Allocation that cannot fail: out of memory aborts the process through one
 * place (the daemon cannot do anything sensible without memory). */
#ifndef ISSO_XMALLOC_H
#define ISSO_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Formatted allocation; the caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wipes then frees a NUL-terminated secret; NULL is fine. */
void xfree_secret(char *s);

#endif
