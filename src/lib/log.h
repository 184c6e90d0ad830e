/* JSON-lines logging. One line per event: {"ts":…,"level":…,"event":…,…}.
 * Never pass a national ID, password, PIN, OTP, secret or token: use
 * log_mask_id() for a person's ID and nothing at all for secrets. */
#ifndef ISSO_LOG_H
#define ISSO_LOG_H

#include <jansson.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Where lines go (a file descriptor, 2 by default) and the lowest level. */
void log_init(int fd, enum log_level min_level);
/* Parses "debug" | "info" | "warn" | "error"; -1 when unknown. */
int log_level_parse(const char *s);

/* Writes one event. fields (may be NULL) is an object whose members are
 * added to the line; the reference is stolen. Thread-safe: one write(2). */
void log_event(enum log_level level, const char *event, json_t *fields);

/* Short forms: log_info("event", "key", "value", …, NULL) with string values. */
void log_info(const char *event, ...) __attribute__((sentinel));
void log_warn(const char *event, ...) __attribute__((sentinel));
void log_error(const char *event, ...) __attribute__((sentinel));

/* Masks a national ID or phone for logs, keeping the first character and
 * the last two ("A*******89"). out must hold 32 bytes. */
const char *log_mask(const char *value, char out[32]);

#endif
