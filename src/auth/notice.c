/* SMS notices as leased store jobs (notice.h). */
#include "auth/notice.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "conn/sms.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/worker.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define NOTICE_GIVE_UP      21600 /* a notice is kept trying for six hours */
#define NOTICE_MAX_ATTEMPTS 20
#define NOTICE_BACKOFF_MAX  900 /* seconds between attempts, at most */
#define NOTICE_PER_TICK     16  /* sent by one tick at most, then the next */
#define NOTICE_TICK_MS      1000
#define NOTICE_PHONE_MAX    32
#define NOTICE_BODY_MAX     1024

int
notice_sms_queue(struct isso_app *app, const char *phone, const char *body)
{
	char *to = NULL, *text = NULL;
	int64_t now = app_now();
	json_t *data = NULL;
	int ret = ISSO_ERR_INVALID;

	if (app->sms == NULL || phone == NULL || body == NULL || phone[0] == '\0' ||
	    body[0] == '\0' || strlen(phone) > NOTICE_PHONE_MAX || strlen(body) > NOTICE_BODY_MAX)
		goto out;
	ret = secret_seal(&app->secrets, phone, strlen(phone), &to);
	if (ret == 0)
		ret = secret_seal(&app->secrets, body, strlen(body), &text);
	if (ret < 0)
		goto out;
	data = json_pack("{s:s, s:s}", "to", to, "body", text);
	if (data == NULL) {
		ret = ISSO_ERR_NOMEM;
		goto out;
	}
	ret =
	    store_job_add(app->store, NOTICE_SMS_KIND, data, now, now, now + NOTICE_GIVE_UP, NULL);
	if (ret == 0 && app->notice_sender >= 0 && app->workers != NULL)
		worker_poke(app->workers, app->notice_sender);
out:
	if (ret < 0)
		log_error("sms_notice_lost", "reason", isso_strerror(ret), NULL);
	json_decref(data);
	free(to);
	free(text);
	return ret;
}

/* Opens the job's sealed number and text and sends them. 0 when sent,
 * ISSO_ERR_INVALID when it can never be sent, else the gateway's error;
 * *why_r says why (static, no number, no text). */
static int
notice_send(struct isso_app *app, const struct store_job *job, const char **why_r)
{
	const char *to = json_string_value(json_object_get(job->data, "to"));
	const char *text = json_string_value(json_object_get(job->data, "body"));
	char *phone = NULL, *body = NULL, *msgid = NULL;
	int ret = ISSO_ERR_INVALID;

	*why_r = "cannot open the sealed notice";
	if (to == NULL || text == NULL || secret_open(&app->secrets, to, &phone) < 0 ||
	    secret_open(&app->secrets, text, &body) < 0)
		goto out;
	*why_r = NULL;
	ret = conn_sms_send(app->sms, phone, body, &msgid, why_r);
	if (*why_r == NULL && ret < 0)
		*why_r = isso_strerror(ret);
out:
	if (phone != NULL)
		xfree_secret(phone);
	if (body != NULL)
		xfree_secret(body);
	free(msgid);
	return ret;
}

bool
notice_retry_at(int attempts, int64_t now, int64_t expires_at, int64_t *retry_at_r)
{
	/* 1 s, 2 s, 4 s … at most NOTICE_BACKOFF_MAX. */
	int64_t delay =
	    attempts >= 11 ? NOTICE_BACKOFF_MAX : (int64_t)1 << (attempts > 1 ? attempts - 1 : 0);

	if (delay > NOTICE_BACKOFF_MAX)
		delay = NOTICE_BACKOFF_MAX;
	*retry_at_r = now + delay;
	return attempts < NOTICE_MAX_ATTEMPTS && now + delay < expires_at;
}

static bool
notice_stopping(const struct isso_app *app)
{
	return app->workers != NULL && worker_stopping(app->workers);
}

/* One claimed notice: sent, tried again later, or given up. */
static void
notice_handle(struct isso_app *app, struct store_job *job)
{
	const char *why = NULL;
	char attempts[16], retry[24];
	int64_t now, retry_at;
	int ret;

	ret = notice_send(app, job, &why);
	now = app_now();
	snprintf(attempts, sizeof(attempts), "%d", job->attempts);
	if (ret == 0) {
		log_info("sms_notice_sent", "job", job->id, "attempts", attempts, NULL);
		(void)store_job_done(app->store, job->id, app->notice_node);
		return;
	}
	if (ret != ISSO_ERR_INVALID && notice_stopping(app)) {
		/* Stopping: another node, or the next start, sends it. */
		(void)store_job_retry(app->store, job->id, app->notice_node, now);
		return;
	}
	if (ret == ISSO_ERR_INVALID ||
	    !notice_retry_at(job->attempts, now, job->expires_at, &retry_at)) {
		log_warn("sms_notice_gave_up", "job", job->id, "attempts", attempts, "reason", why,
		         NULL);
		(void)store_job_done(app->store, job->id, app->notice_node);
		return;
	}
	snprintf(retry, sizeof(retry), "%lld", (long long)(retry_at - now));
	log_warn("sms_notice_failed", "job", job->id, "attempts", attempts, "reason", why,
	         "retry_in", retry, NULL);
	(void)store_job_retry(app->store, job->id, app->notice_node, retry_at);
}

int
notice_send_due(struct isso_app *app)
{
	/* The lease outlasts any attempt: no other node sends it meanwhile. */
	int lease, n;

	if (app->sms == NULL)
		return 0;
	lease = (int)(conn_sms_timeout_ms(app->sms) / 1000) + 30;
	if (app->notice_node[0] == '\0')
		secret_token(12, app->notice_node);
	for (n = 0; n < NOTICE_PER_TICK && !notice_stopping(app); n++) {
		struct store_job *job = NULL;

		if (store_job_claim(app->store, NOTICE_SMS_KIND, app->notice_node, app_now(), lease,
		                    &job) < 0 ||
		    job == NULL)
			break;
		notice_handle(app, job);
		store_job_free(job);
	}
	return n;
}

static void
notice_tick(void *ctx)
{
	(void)notice_send_due(ctx);
}

int
notice_start(struct isso_app *app)
{
	if (app->sms == NULL)
		return 0;
	if (app->workers == NULL)
		return ISSO_ERR_INVALID;
	secret_token(12, app->notice_node);
	return worker_every(app->workers, NOTICE_TICK_MS, notice_tick, app, &app->notice_sender);
}
