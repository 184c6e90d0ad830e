/* Notices to a member by SMS (a device enrolled, the password changed):
 * unlike one-time codes, which stay in the SMS connector's in-memory
 * outbox (they expire in minutes, the member can ask again, and a code
 * must never rest in the store), a notice must not be lost with the node
 * that queued it. It is a leased store job, its number and text sealed
 * with the app's sealing key, sent by whichever node claims it, tried
 * again with a growing pause and given up after a bounded number of
 * attempts with a log line that names neither number nor text. */
#ifndef ISSO_NOTICE_H
#define ISSO_NOTICE_H

#include <stdbool.h>
#include <stdint.h>

struct isso_app;

/* The store jobs' kind. */
#define NOTICE_SMS_KIND "sms_notice"

/* Queues body (UTF-8 text, no secret in it) for phone ("09xxxxxxxx") and
 * wakes this node's sender. Returns 0, ISSO_ERR_INVALID when no SMS
 * gateway is configured or phone / body is empty or too long, or the
 * store's error. Never logs phone or body. */
int notice_sms_queue(struct isso_app *app, const char *phone, const char *body);

/* Claims the notices that are due and sends them, one by one: what the
 * sender does each tick (and what tests call). Returns how many it
 * handled (sent, given back for later, or given up). */
int notice_send_due(struct isso_app *app);

/* After attempt number attempts (1 for the first) failed at now: true
 * with *retry_at_r the time of the next (1 s, 2 s, 4 s … at most 15
 * minutes later), false when the notice is given up (20 attempts, or its
 * six hours are over). */
bool notice_retry_at(int attempts, int64_t now, int64_t expires_at, int64_t *retry_at_r);

/* Starts this node's sender on app->workers (nothing without an SMS
 * gateway): every second, and at once after notice_sms_queue, it claims
 * due notices and sends them. Returns 0 or an ISSO_ERR_*. */
int notice_start(struct isso_app *app);

#endif
