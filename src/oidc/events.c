/* Security Event Tokens (RFC 8417) to agencies, delivered by push (RFC
 * 8935): when two persons are found to be one (auth/bind.h), each agency
 * that held a consent of the merged person and registered an events_uri
 * (client settings) gets a signed persons-merged event naming the sub it
 * knew and the sub it will see from now on. Queued as leased store jobs
 * and sent by the back-channel logout sender (logout.c), with its retries. */
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "conn/outbound.h"
#include "jose/jose.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/worker.h"
#include "oidc/oidc-private.h"
#include "store/store.h"

#define SET_GIVE_UP    86400 /* an event is kept trying for a day */
#define SET_TIMEOUT_MS 5000

/* The client's events_uri (client settings), or NULL. */
static const char *
events_uri(const struct store_client *c)
{
	const char *uri = json_string_value(json_object_get(c->settings, "events_uri"));

	return uri != NULL && uri[0] != '\0' ? uri : NULL;
}

int
oidc_events_uri_check(const json_t *v, const char **why_r)
{
	const char *uri = json_string_value(v);

	*why_r = "events_uri must be an http or https URL of at most 2048 characters";
	if (uri == NULL || strlen(uri) > 2048 ||
	    (strncmp(uri, "https://", 8) != 0 && strncmp(uri, "http://", 7) != 0))
		return ISSO_ERR_INVALID;
	for (const char *p = uri; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return ISSO_ERR_INVALID;
	}
	*why_r = NULL;
	return 0;
}

void
oidc_persons_merged(struct isso_app *app, const char *kept, const char *merged, json_t *clients)
{
	int64_t now = app_now();
	bool queued = false;
	size_t i;
	json_t *v;

	json_array_foreach(clients, i, v)
	{
		struct store_client *c = oidc_client(app, json_string_value(v));
		char sub[44], merged_sub[44];
		json_t *data;
		if (c == NULL || events_uri(c) == NULL) {
			store_client_free(c);
			continue;
		}
		data = json_pack("{s:s, s:s, s:s}", "client_id", c->client_id, "sub",
		                 oidc_sub(app, c->client_id, kept, sub), "merged_sub",
		                 oidc_sub(app, c->client_id, merged, merged_sub));
		if (data == NULL || store_job_add(app->store, OIDC_SET_KIND, data, now, now,
		                                  now + SET_GIVE_UP, NULL) < 0)
			log_error("security_event_lost", "client_id", c->client_id, NULL);
		else
			queued = true;
		json_decref(data);
		store_client_free(c);
	}
	if (queued && app->oidc != NULL)
		worker_poke(app->workers, app->oidc->backchannel_task);
}

int
oidc_set_deliver(struct isso_app *app, const struct store_job *job, const char **why_r)
{
	static const char *const headers[] = {"Content-Type: application/secevent+jwt",
	                                      "Accept: application/json", NULL};
	const char *client_id = json_string_value(json_object_get(job->data, "client_id"));
	const char *sub = json_string_value(json_object_get(job->data, "sub"));
	const char *merged_sub = json_string_value(json_object_get(job->data, "merged_sub"));
	struct store_client *c = NULL;
	struct outbound_resp rs;
	struct outbound_req rq;
	const char *err = NULL;
	json_t *claims = NULL;
	char *jwt = NULL;
	int ret;

	*why_r = "cannot sign";
	memset(&rs, 0, sizeof(rs));
	/* A store that fails is no "client gone": the event is tried again. */
	ret = oidc_client_find(app, client_id, &c);
	if (ret < 0) {
		*why_r = "store unavailable";
		goto out;
	}
	ret = 1;
	/* Client gone, or no longer listening: nothing to deliver. */
	if (c == NULL || sub == NULL || merged_sub == NULL || events_uri(c) == NULL)
		goto out;
	ret = ISSO_ERR_CRYPTO;
	/* RFC 8417 §2.2: iss, aud, iat, jti (the job's id, so retries name
	 * one event) and events; the subject is in the event's payload. */
	claims = json_pack("{s:s, s:s, s:I, s:s, s:{s:{s:s, s:s}}}", "iss", app->issuer, "aud",
	                   c->client_id, "iat", (json_int_t)app_now(), "jti", job->id, "events",
	                   OIDC_EVENT_PERSONS_MERGED, "sub", sub, "merged_sub", merged_sub);
	if (claims == NULL ||
	    jose_sign(app->keys, c->id_token_alg, "secevent+jwt", claims, &jwt) < 0)
		goto out;
	memset(&rq, 0, sizeof(rq));
	rq.method = OUTBOUND_POST;
	rq.url = events_uri(c);
	rq.headers = headers;
	rq.body = jwt;
	rq.body_len = strlen(jwt);
	rq.agent = "isso-security-events/1";
	rq.timeout_ms = SET_TIMEOUT_MS;
	rq.reply_max = 64 * 1024;
	rq.purpose = "security_event";
	ret = outbound_request(&rq, &rs, &err);
	if (ret < 0) {
		*why_r = err != NULL ? err : "no answer";
	} else if (rs.status < 200 || rs.status > 299) {
		/* RFC 8935 §2.2: 202 Accepted; any 2xx is taken as received. */
		*why_r = "HTTP status";
		ret = ISSO_ERR_IO;
	}
	outbound_resp_free(&rs);
out:
	free(jwt);
	json_decref(claims);
	store_client_free(c);
	return ret;
}
