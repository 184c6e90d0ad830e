/* Per-request memory arena: many small allocations, one release. */
#ifndef ISSO_POOL_H
#define ISSO_POOL_H

#include <stdarg.h>
#include <stddef.h>

struct pool;

/* A new pool whose first block holds block_size bytes (0: a default). */
struct pool *pool_new(size_t block_size);
/* Frees every allocation of the pool and the pool; NULL is fine. Memory
 * handed out by pool_alloc_secret() is wiped first. */
void pool_free(struct pool *pool);

/* Aligned, zeroed memory that lives until pool_free(). Never NULL. */
void *pool_alloc(struct pool *pool, size_t size);
/* Same, and wiped on pool_free(): for passwords, PINs, codes. */
void *pool_alloc_secret(struct pool *pool, size_t size);
char *pool_strdup(struct pool *pool, const char *s); /* NULL -> NULL */
char *pool_strndup(struct pool *pool, const char *s, size_t n);
char *pool_printf(struct pool *pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *pool_vprintf(struct pool *pool, const char *fmt, va_list ap);

#endif
