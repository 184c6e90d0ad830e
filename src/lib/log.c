/* JSON-lines logging: one object per line, written with one write(2) under
 * a lock so that lines from several threads never interleave. */
#include "lib/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/xmalloc.h"

/* A single value in the short forms is cut at this many bytes. */
#define LOG_VALUE_MAX 1024

static atomic_int log_fd = 2;
static atomic_int log_min = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_names[] = {"debug", "info", "warn", "error"};

void
log_init(int fd, enum log_level min_level)
{
	atomic_store(&log_fd, fd);
	atomic_store(&log_min, (int)min_level);
}

int
log_level_parse(const char *s)
{
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (strcmp(s, log_names[i]) == 0)
			return (int)i;
	return -1;
}

/* A JSON string for untrusted bytes: cut at n bytes (on a character
 * boundary), and with bytes outside ASCII replaced by '?' when the input
 * is not valid UTF-8. */
static json_t *
log_string(const char *s, size_t n)
{
	json_t *j;
	char *copy;
	size_t i;

	if (n > LOG_VALUE_MAX) {
		n = LOG_VALUE_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	if ((j = json_stringn(s, n)) != NULL)
		return j;
	copy = xstrndup(s, n);
	for (i = 0; copy[i] != '\0'; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

static void
log_timestamp(char out[32])
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

static void
log_write(const char *line, size_t len)
{
	int fd = atomic_load(&log_fd);
	ssize_t w;

	pthread_mutex_lock(&log_lock);
	while (len > 0) {
		w = write(fd, line, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		line += w;
		len -= (size_t)w;
	}
	pthread_mutex_unlock(&log_lock);
}

void
log_event(enum log_level level, const char *event, json_t *fields)
{
	json_t *obj = NULL;
	char ts[32], *line = NULL;
	size_t len;

	if ((int)level < atomic_load(&log_min) || (int)level < LOG_DEBUG || level > LOG_ERROR)
		goto out;
	log_timestamp(ts);
	obj = json_object();
	if (obj == NULL)
		goto out;
	json_object_set_new(obj, "ts", json_string(ts));
	json_object_set_new(obj, "level", json_string(log_names[level]));
	if (event == NULL)
		event = "unknown";
	json_object_set_new(obj, "event", log_string(event, strlen(event)));
	/* The fixed members win over fields of the same name. */
	if (json_is_object(fields))
		json_object_update_missing(obj, fields);
	line = json_dumps(obj, JSON_COMPACT);
	if (line == NULL)
		goto out;
	len = strlen(line);
	line[len] = '\n';
	log_write(line, len + 1);
	line[len] = '\0';
out:
	free(line);
	json_decref(obj);
	json_decref(fields);
}

static void
log_vshort(enum log_level level, const char *event, va_list ap)
{
	json_t *fields;
	const char *k, *v;

	if ((int)level < atomic_load(&log_min))
		return;
	fields = json_object();
	while (fields != NULL && (k = va_arg(ap, const char *)) != NULL) {
		/* A NULL value may be the sentinel of a malformed list: stop. */
		if ((v = va_arg(ap, const char *)) == NULL) {
			json_object_set_new(fields, k, json_null());
			break;
		}
		json_object_set_new(fields, k, log_string(v, strlen(v)));
	}
	log_event(level, event, fields);
}

void
log_info(const char *event, ...)
{
	va_list ap;

	va_start(ap, event);
	log_vshort(LOG_INFO, event, ap);
	va_end(ap);
}

void
log_warn(const char *event, ...)
{
	va_list ap;

	va_start(ap, event);
	log_vshort(LOG_WARN, event, ap);
	va_end(ap);
}

void
log_error(const char *event, ...)
{
	va_list ap;

	va_start(ap, event);
	log_vshort(LOG_ERROR, event, ap);
	va_end(ap);
}

/* Only printable ASCII survives, so the mask never splits a character. */
static char
log_keep(char c)
{
	return c > 0x20 && c < 0x7f ? c : '*';
}

const char *
log_mask(const char *value, char out[32])
{
	size_t len, stars, i, o = 0;

	if (value == NULL) {
		out[0] = '\0';
		return out;
	}
	len = strnlen(value, 4096);
	if (len <= 3) {
		for (i = 0; i < len; i++)
			out[o++] = '*';
		out[o] = '\0';
		return out;
	}
	stars = len - 3;
	if (stars > 28)
		stars = 28;
	out[o++] = log_keep(value[0]);
	for (i = 0; i < stars; i++)
		out[o++] = '*';
	out[o++] = log_keep(value[len - 2]);
	out[o++] = log_keep(value[len - 1]);
	out[o] = '\0';
	return out;
}
