/* Growable byte buffer with a hard maximum (like curl's dynbuf). The content
 * is always NUL-terminated. */
#ifndef ISSO_BUF_H
#define ISSO_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len, cap, max;
};

/* Prepares an empty buffer that may grow to max bytes. */
void buf_init(struct buf *b, size_t max);
/* Releases memory; the buffer may be used again after buf_init(). */
void buf_free(struct buf *b);
/* Wipes the content before releasing it. */
void buf_free_secret(struct buf *b);
void buf_reset(struct buf *b);
/* Each returns 0, or ISSO_ERR_LIMIT (the buffer is unchanged) when the
 * result would exceed max. */
int buf_add(struct buf *b, const void *data, size_t len);
int buf_addstr(struct buf *b, const char *s);
int buf_addc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Hands the content over to the caller (free() it); the buffer is empty. */
char *buf_detach(struct buf *b, size_t *len_r);

#endif
