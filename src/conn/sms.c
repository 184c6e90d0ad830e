/* SMS connector: one outbound request per send (thread-safe without
 * locks), a form POST in the Mitake shape, and a strict reader of its
 * "[1] / msgid= / statuscode=" reply. See docs/connectors/sms.md. */
#include "conn/sms.h"
#include "conn/sms-private.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn/outbound.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

#define SMS_BODY_MAX        335  /* bytes of UTF-8 the gateway takes in one send */
#define SMS_REPLY_MAX       4096 /* larger replies are not the gateway's */
#define SMS_FORM_MAX        8192 /* escaped form: 3x the body plus credentials */
#define SMS_CRED_MAX        256  /* username / password length we accept */
#define SMS_TIMEOUT_DEFAULT 5000

#define SMS_QUEUE_MAX 1024

struct sms_job {
	char *phone, *body;
};

struct conn_sms {
	char *url; /* endpoint with CharsetURL=UTF-8 in its query */
	char *username;
	char *password;
	long timeout_ms;
	/* The background outbox (conn_sms_queue): a ring of jobs and one
	 * worker thread, started on first use. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct sms_job queue[SMS_QUEUE_MAX];
	size_t head, count;
	bool worker_started, stopping;
	pthread_t worker;
};

static bool
sms_phone_valid(const char *s)
{
	if (s == NULL || strlen(s) != 10 || s[0] != '0' || s[1] != '9')
		return false;
	for (size_t i = 2; i < 10; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

long
conn_sms_timeout_ms(const struct conn_sms *sms)
{
	return sms->timeout_ms;
}

struct conn_sms *
conn_sms_new(const char *url, const char *username, const char *password, int timeout_ms)
{
	struct conn_sms *sms = NULL;

	if (url == NULL || username == NULL || password == NULL)
		goto out;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		goto out;
	if (strlen(username) > SMS_CRED_MAX || strlen(password) > SMS_CRED_MAX)
		goto out;
	sms = xcalloc(1, sizeof(*sms));
	if (strstr(url, "CharsetURL=") != NULL)
		sms->url = xstrdup(url);
	else
		sms->url =
		    xasprintf("%s%cCharsetURL=UTF-8", url, strchr(url, '?') != NULL ? '&' : '?');
	sms->username = xstrdup(username);
	sms->password = xstrdup(password);
	sms->timeout_ms = timeout_ms > 0 ? timeout_ms : SMS_TIMEOUT_DEFAULT;
	pthread_mutex_init(&sms->lock, NULL);
	pthread_cond_init(&sms->wake, NULL);
out:
	return sms;
}

void
conn_sms_free(struct conn_sms *sms)
{
	if (sms == NULL)
		return;
	pthread_mutex_lock(&sms->lock);
	sms->stopping = true;
	pthread_cond_signal(&sms->wake);
	pthread_mutex_unlock(&sms->lock);
	if (sms->worker_started)
		pthread_join(sms->worker, NULL);
	for (size_t i = 0; i < sms->count; i++) {
		struct sms_job *j = &sms->queue[(sms->head + i) % SMS_QUEUE_MAX];
		free(j->phone);
		xfree_secret(j->body);
	}
	pthread_cond_destroy(&sms->wake);
	pthread_mutex_destroy(&sms->lock);
	free(sms->url);
	free(sms->username);
	xfree_secret(sms->password);
	free(sms);
}

static bool
sms_status_accepted(const char *code)
{
	/* 0 scheduled, 1 and 2 handed to the carrier, 4 delivered */
	return strcmp(code, "0") == 0 || strcmp(code, "1") == 0 || strcmp(code, "2") == 0 ||
	       strcmp(code, "4") == 0;
}

static bool
sms_msgid_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > SMS_MSGID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		/* a leading '#' marks a duplicate the gateway did not resend */
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      c == '#'))
			return false;
	}
	return true;
}

static char *
sms_trim(char *s)
{
	size_t len;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		s[--len] = '\0';
	return s;
}

/* Reads the gateway's reply (NUL-terminated, modified in place). The first
 * "[N]" section is our one message; a reply without one is a refusal of
 * the whole request when it carries a status code (account errors),
 * otherwise not the gateway talking. */
int
sms_parse_reply(char *text, char **msgid_r, char status_r[8], const char **error_r)
{
	const char *msgid = NULL, *status = NULL, *top_status = NULL;
	int section = 0; /* 0 before any, 1 in the first, 2 after it */
	char *line, *next;
	int ret = ISSO_ERR_IO;

	status_r[0] = '\0';
	for (line = text; line != NULL; line = next) {
		char *eq;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		line = sms_trim(line);
		if (*line == '\0')
			continue;
		if (line[0] == '[') {
			section = section == 0 ? 1 : 2;
			continue;
		}
		eq = strchr(line, '=');
		if (eq == NULL || section == 2)
			continue;
		*eq = '\0';
		if (strcmp(line, "statuscode") == 0) {
			const char **slot = section == 1 ? &status : &top_status;

			if (*slot != NULL) {
				*error_r = "SMS gateway reply repeats statuscode";
				goto out;
			}
			*slot = eq + 1;
		} else if (strcmp(line, "msgid") == 0 && section == 1) {
			if (msgid != NULL) {
				*error_r = "SMS gateway reply repeats msgid";
				goto out;
			}
			msgid = eq + 1;
		}
	}
	if (section == 0) {
		/* an empty code is no answer either */
		if (top_status != NULL && *top_status != '\0' && !sms_status_accepted(top_status)) {
			snprintf(status_r, 8, "%.7s", top_status);
			*error_r = "SMS gateway refused the request";
			ret = ISSO_ERR_DENIED;
		} else {
			*error_r = "SMS gateway reply has no result section";
		}
		goto out;
	}
	if (status == NULL || *status == '\0') {
		*error_r = "SMS gateway reply has no status code";
		goto out;
	}
	snprintf(status_r, 8, "%.7s", status);
	if (!sms_status_accepted(status)) {
		*error_r = "SMS gateway refused the message";
		ret = ISSO_ERR_DENIED;
		goto out;
	}
	/* The message is on its way: an odd msgid must not turn that into a
	 * failure (the caller would send a second code). */
	*msgid_r = msgid != NULL && sms_msgid_valid(msgid) ? xstrdup(msgid) : NULL;
	ret = 0;
out:
	return ret;
}

int
conn_sms_send(struct conn_sms *sms, const char *phone, const char *body, char **msgid_r,
              const char **error_r)
{
	static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
	                                      NULL};
	const char *error_dummy;
	struct outbound_req req;
	struct outbound_resp resp;
	struct buf form;
	char masked[32], status[8] = "";
	char *text = NULL;
	size_t body_len;
	int ret = ISSO_ERR_INVALID;

	if (error_r == NULL)
		error_r = &error_dummy;
	*error_r = NULL;
	if (msgid_r != NULL)
		*msgid_r = NULL;
	memset(&resp, 0, sizeof(resp));
	buf_init(&form, SMS_FORM_MAX);

	if (sms == NULL || msgid_r == NULL) {
		*error_r = "no SMS connector";
		goto out;
	}
	if (!sms_phone_valid(phone)) {
		*error_r = "phone number is not 09 followed by 8 digits";
		goto out;
	}
	if (body == NULL || (body_len = strlen(body)) == 0) {
		*error_r = "empty SMS body";
		goto out;
	}
	if (body_len > SMS_BODY_MAX) {
		*error_r = "SMS body longer than 335 bytes";
		goto out;
	}
	/* The gateway reads the body as UTF-8 (CharsetURL): refuse what is
	 * not, and control characters other than line breaks, which a
	 * handset cannot show. */
	if (!utf8_printable(body, body_len, true)) {
		*error_r = "SMS body is not printable UTF-8";
		goto out;
	}

	ret = ISSO_ERR_IO;
	if (outbound_form_add(&form, "username", sms->username) != 0 ||
	    outbound_form_add(&form, "password", sms->password) != 0 ||
	    outbound_form_add(&form, "dstaddr", phone) != 0 ||
	    outbound_form_add(&form, "smbody", body) != 0) {
		*error_r = "cannot build the SMS request";
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.method = OUTBOUND_POST;
	req.url = sms->url;
	req.headers = headers;
	req.body = form.data;
	req.body_len = form.len;
	req.agent = "isso-sms/1";
	req.timeout_ms = sms->timeout_ms;
	req.reply_max = SMS_REPLY_MAX;
	req.purpose = "sms";
	ret = outbound_request(&req, &resp, error_r);
	if (ret == ISSO_ERR_TIMEOUT) {
		*error_r = "SMS gateway did not answer in time";
		goto out;
	}
	if (ret == ISSO_ERR_LIMIT) {
		*error_r = "SMS gateway reply too large";
		ret = ISSO_ERR_IO;
		goto out;
	}
	if (ret == ISSO_ERR_DENIED) {
		/* *error_r says why; the refusal is logged */
		ret = ISSO_ERR_IO;
		goto out;
	}
	if (ret < 0) {
		*error_r = "SMS gateway unreachable";
		ret = ISSO_ERR_IO;
		goto out;
	}
	ret = ISSO_ERR_IO;
	if (resp.status < 200 || resp.status >= 300) {
		*error_r = "SMS gateway answered with an HTTP error";
		goto out;
	}
	if (resp.body.len > 0 && memchr(resp.body.data, '\0', resp.body.len) != NULL) {
		*error_r = "SMS gateway reply is not text";
		goto out;
	}
	text = xstrndup(resp.body.data != NULL ? resp.body.data : "", resp.body.len);
	ret = sms_parse_reply(text, msgid_r, status, error_r);
out:
	if (ret == ISSO_ERR_DENIED) {
		log_warn("sms_gateway_refused", "to", log_mask(phone, masked), "statuscode", status,
		         NULL);
	} else if (ret == ISSO_ERR_IO || ret == ISSO_ERR_TIMEOUT) {
		char code[16];

		snprintf(code, sizeof(code), "%ld", resp.status);
		log_warn("sms_gateway_error", "to", log_mask(phone, masked), "reason", *error_r,
		         "http_status", code, "detail", resp.detail, NULL);
	}
	outbound_resp_free(&resp);
	xfree_secret(text);
	buf_free_secret(&form);
	return ret;
}

/* The outbox worker: sends queued messages one by one until stopped. */
static void *
sms_worker(void *arg)
{
	struct conn_sms *sms = arg;
	struct sms_job job;
	const char *error = NULL;
	char *msgid = NULL;

	for (;;) {
		pthread_mutex_lock(&sms->lock);
		while (sms->count == 0 && !sms->stopping)
			pthread_cond_wait(&sms->wake, &sms->lock);
		if (sms->count == 0) {
			pthread_mutex_unlock(&sms->lock);
			break;
		}
		job = sms->queue[sms->head];
		sms->head = (sms->head + 1) % SMS_QUEUE_MAX;
		sms->count--;
		pthread_mutex_unlock(&sms->lock);

		if (conn_sms_send(sms, job.phone, job.body, &msgid, &error) < 0)
			log_warn("sms_queued_failed", "reason", error != NULL ? error : "?", NULL);
		free(msgid);
		msgid = NULL;
		free(job.phone);
		xfree_secret(job.body);
	}
	return NULL;
}

int
conn_sms_queue(struct conn_sms *sms, const char *phone, const char *body)
{
	int ret = 0;

	if (sms == NULL || phone == NULL || body == NULL)
		return ISSO_ERR_INVALID;
	pthread_mutex_lock(&sms->lock);
	if (!sms->worker_started) {
		if (pthread_create(&sms->worker, NULL, sms_worker, sms) != 0) {
			ret = ISSO_ERR_IO;
			goto out;
		}
		sms->worker_started = true;
	}
	if (sms->count == SMS_QUEUE_MAX || sms->stopping) {
		ret = ISSO_ERR_LIMIT;
		goto out;
	}
	sms->queue[(sms->head + sms->count) % SMS_QUEUE_MAX] =
	    (struct sms_job){.phone = xstrdup(phone), .body = xstrdup(body)};
	sms->count++;
	pthread_cond_signal(&sms->wake);
out:
	pthread_mutex_unlock(&sms->lock);
	if (ret == ISSO_ERR_LIMIT)
		log_warn("sms_queue_full", NULL);
	return ret;
}
