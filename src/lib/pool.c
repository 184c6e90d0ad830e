/* Block-chained arena. Blocks come zeroed from calloc and memory is never
 * reused, so every allocation is zeroed without a memset. */
#include "lib/pool.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

/* Lets the compiler check the forwarded format (clang -Wformat-nonliteral). */
char *pool_vprintf(struct pool *pool, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define POOL_ALIGN         16
#define POOL_DEFAULT_BLOCK 4096
#define POOL_MIN_BLOCK     256

struct pool_block {
	struct pool_block *next;
	size_t size, used;
	_Alignas(POOL_ALIGN) unsigned char data[];
};

struct pool_secret {
	struct pool_secret *next;
	void *p;
	size_t size;
};

struct pool {
	struct pool_block *head; /* current block; large ones are linked after it */
	struct pool_secret *secrets;
	size_t block_size;
};

static struct pool_block *
pool_block_new(size_t size)
{
	struct pool_block *b;

	if (size > SIZE_MAX - sizeof(*b))
		abort();
	b = xcalloc(1, sizeof(*b) + size);
	b->size = size;
	return b;
}

struct pool *
pool_new(size_t block_size)
{
	struct pool *pool = xcalloc(1, sizeof(*pool));

	if (block_size == 0)
		block_size = POOL_DEFAULT_BLOCK;
	if (block_size < POOL_MIN_BLOCK)
		block_size = POOL_MIN_BLOCK;
	block_size = (block_size + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1);
	pool->block_size = block_size;
	pool->head = pool_block_new(block_size);
	return pool;
}

void
pool_free(struct pool *pool)
{
	struct pool_block *b, *next;
	struct pool_secret *s;

	if (pool == NULL)
		return;
	for (s = pool->secrets; s != NULL; s = s->next)
		explicit_bzero(s->p, s->size);
	for (b = pool->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(pool);
}

void *
pool_alloc(struct pool *pool, size_t size)
{
	struct pool_block *b;
	size_t need;

	if (size > SIZE_MAX - 2 * POOL_ALIGN - sizeof(struct pool_block))
		abort();
	need = (size + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1);
	if (need == 0)
		need = POOL_ALIGN;
	if (need <= pool->head->size - pool->head->used) {
		b = pool->head;
	} else if (need > pool->block_size / 4) {
		/* A large allocation gets its own block, kept behind the
		 * current one so that the current one keeps serving. */
		b = pool_block_new(need);
		b->next = pool->head->next;
		pool->head->next = b;
	} else {
		b = pool_block_new(pool->block_size);
		b->next = pool->head;
		pool->head = b;
	}
	b->used += need;
	return b->data + b->used - need;
}

void *
pool_alloc_secret(struct pool *pool, size_t size)
{
	struct pool_secret *s = pool_alloc(pool, sizeof(*s));

	s->p = pool_alloc(pool, size);
	s->size = size;
	s->next = pool->secrets;
	pool->secrets = s;
	return s->p;
}

char *
pool_strdup(struct pool *pool, const char *s)
{
	if (s == NULL)
		return NULL;
	return pool_strndup(pool, s, strlen(s));
}

char *
pool_strndup(struct pool *pool, const char *s, size_t n)
{
	size_t len;
	char *p;

	if (s == NULL)
		return NULL;
	len = strnlen(s, n);
	p = pool_alloc(pool, len + 1);
	memcpy(p, s, len);
	return p;
}

char *
pool_vprintf(struct pool *pool, const char *fmt, va_list ap)
{
	va_list aq;
	char *p;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return pool_strdup(pool, "");
	p = pool_alloc(pool, (size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *
pool_printf(struct pool *pool, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = pool_vprintf(pool, fmt, ap);
	va_end(ap);
	return p;
}
