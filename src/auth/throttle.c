/* Slowing password guessing: leaky buckets per account, address and device
 * cookie, and the device cookies themselves. */
#include "auth/throttle.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "lib/addr.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "store/store.h"

/* A bucket remembers at most this many failures. */
#define LEVEL_FAILURES 100
#define TAG_LEN        32
#define NONCE_BYTES    16 /* 22 base64url characters */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
throttle_delay(int failures, int free_failures, int cap)
{
	int over = failures - free_failures, d;

	if (over <= 0 || cap <= 0)
		return 0;
	if (over > 16)
		return cap;
	d = 1 << (over - 1);
	return d < cap ? d : cap;
}

/* Buckets count in milliseconds: a hold of one second is one whole second. */
#define MS 1000

/* The failures a level stands for, each weighing weight. */
static int
failures_of(int64_t level, int64_t weight)
{
	int64_t n = (level + weight - 1) / weight;

	return n > LEVEL_FAILURES ? LEVEL_FAILURES : (int)n;
}

static void
device_tag(const struct secret_keys *keys, const char *uuid, char tag[TAG_LEN + 1])
{
	char hash[65];

	secret_lookup_hash(keys, "device-cookie", uuid, hash);
	memcpy(tag, hash, TAG_LEN);
	tag[TAG_LEN] = '\0';
}

static void
device_mac(const struct secret_keys *keys, const char *body, size_t len, char mac[44])
{
	char msg[THROTTLE_DEVICE_COOKIE_MAX + 8];

	snprintf(msg, sizeof(msg), "dev|%.*s", (int)len, body);
	secret_mac(keys, msg, mac);
}

void
throttle_device_cookie(const struct secret_keys *keys, const char *uuid, int64_t exp,
                       char out[THROTTLE_DEVICE_COOKIE_MAX])
{
	char tag[TAG_LEN + 1], nonce[24], mac[44];
	int n;

	device_tag(keys, uuid, tag);
	secret_token(NONCE_BYTES, nonce);
	n = snprintf(out, THROTTLE_DEVICE_COOKIE_MAX, "%s.%s.%" PRId64, tag, nonce, exp);
	device_mac(keys, out, (size_t)n, mac);
	snprintf(out + n, THROTTLE_DEVICE_COOKIE_MAX - (size_t)n, ".%s", mac);
}

bool
throttle_device_cookie_valid(const struct secret_keys *keys, const char *cookie, const char *uuid,
                             int64_t now, char nonce_r[23])
{
	char tag[TAG_LEN + 1], mac[44], macbuf[44], *end;
	const char *p1, *p2, *p3;
	long long exp;

	nonce_r[0] = '\0';
	if (cookie == NULL || uuid == NULL || strlen(cookie) >= THROTTLE_DEVICE_COOKIE_MAX)
		return false;
	/* tag . nonce . exp . mac */
	p1 = strchr(cookie, '.');
	p2 = p1 != NULL ? strchr(p1 + 1, '.') : NULL;
	p3 = p2 != NULL ? strchr(p2 + 1, '.') : NULL;
	if (p3 == NULL || p1 - cookie != TAG_LEN || p2 - p1 - 1 != 22 ||
	    strspn(p1 + 1, b64url) < 22 || strlen(p3 + 1) != 43 || strspn(p3 + 1, b64url) != 43)
		return false;
	if (p2[1] < '1' || p2[1] > '9')
		return false;
	exp = strtoll(p2 + 1, &end, 10);
	if (end != p3 || exp <= now)
		return false;
	device_mac(keys, cookie, (size_t)(p3 - cookie), mac);
	memcpy(macbuf, p3 + 1, 43);
	macbuf[43] = '\0';
	if (!secret_equal(mac, macbuf))
		return false;
	device_tag(keys, uuid, tag);
	if (memcmp(tag, cookie, TAG_LEN) != 0)
		return false;
	memcpy(nonce_r, p1 + 1, 22);
	nonce_r[22] = '\0';
	return true;
}

static json_t *
event_fields(struct http_req *req, const struct throttle_attempt *a)
{
	return json_pack("{s:s, s:s, s:s}", "method", a->method, "account", a->log_account,
	                 "address", http_remote_addr(req));
}

/* Refuses the attempt for ms milliseconds (the longer of the holds in
 * force), said in whole seconds rounded up. */
static void
delayed(struct http_req *req, struct throttle_attempt *a, int64_t ms, const char *by)
{
	json_t *f = event_fields(req, a);
	int64_t seconds = (ms + MS - 1) / MS;

	a->wait = seconds > 0 ? (int)seconds : 1;
	json_object_set_new(f, "seconds", json_integer(a->wait));
	json_object_set_new(f, "by", json_string(by));
	log_event(LOG_INFO, "login_delayed", f);
}

/* Counts the attempt under a device cookie that vouches for the account.
 * Returns false when the cookie is locked (or just got locked by a
 * concurrent attempt): then it is as if the browser had none. */
static bool
begin_trusted(struct isso_app *app, struct http_req *req, struct throttle_attempt *a, int64_t now)
{
	const struct isso_config *cfg = app->cfg;
	int64_t weight = (int64_t)cfg->security.guess_memory * MS;
	struct store_throttle t;
	json_t *f;
	bool locked;

	/* The level includes this attempt and comes back atomically, so
	 * parallel guesses under one cookie meet the limit before any of
	 * them has been verified (the hold is set only after a failure). */
	locked =
	    store_throttle_take(app->store, a->device, now, weight, weight * LEVEL_FAILURES,
	                        (int64_t)cfg->security.device_cookie_lock_seconds * MS, &t) < 0 ||
	    t.next_at > now ||
	    failures_of(t.level, weight) > cfg->security.device_cookie_max_failures;
	f = event_fields(req, a);
	json_object_set_new(f, "exempt", json_boolean(!locked));
	log_event(LOG_INFO, "device_cookie_used", f);
	if (locked) {
		a->device[0] = '\0';
		return false;
	}
	a->counted_device = true;
	return true;
}

int
throttle_begin(struct isso_app *app, struct http_req *req, const char *method,
               const char *account_key, const char *uuid, struct throttle_attempt *a)
{
	const struct isso_config *cfg = app->cfg;
	int64_t now = method_now_ms(), weight = (int64_t)cfg->security.guess_memory * MS;
	int64_t cap = weight * LEVEL_FAILURES;
	struct store_throttle ta, tn;
	char key[ADDR_KEY_MAX], hash[65], nonce[23];
	const char *cookie;
	int ret, d;

	memset(a, 0, sizeof(*a));
	a->method = method;
	snprintf(a->account, sizeof(a->account), "a:%s", account_key);
	snprintf(a->address, sizeof(a->address), "n:%s",
	         addr_limit_key(http_remote_addr(req), key));
	secret_lookup_hash(&app->secrets, "log-account", account_key, hash);
	memcpy(a->log_account, hash, 16);
	a->log_account[16] = '\0';

	cookie = http_cookie(req, THROTTLE_DEVICE_COOKIE);
	if (uuid != NULL && cfg->security.device_cookie_days > 0 && cookie != NULL &&
	    throttle_device_cookie_valid(&app->secrets, cookie, uuid, now / MS, nonce)) {
		snprintf(a->device, sizeof(a->device), "d:%s", nonce);
		if (begin_trusted(app, req, a, now))
			return 0;
	}

	/* Inside a hold: answered at once, nothing counted. */
	ret = store_throttle_get(app->store, a->address, now, &tn);
	if (ret == 0)
		ret = store_throttle_get(app->store, a->account, now, &ta);
	if (ret < 0)
		return ret;
	if (tn.next_at > now || ta.next_at > now) {
		delayed(req, a, (tn.next_at > ta.next_at ? tn.next_at : ta.next_at) - now,
		        tn.next_at > ta.next_at ? "address" : "account");
		return 0;
	}
	/* Counted as a failure until throttle_end says otherwise, so that
	 * parallel guesses meet the hold at once. */
	ret = store_throttle_take(app->store, a->address, now, weight, cap,
	                          (int64_t)cfg->security.address_delay_max * MS, &tn);
	if (ret < 0)
		return ret;
	if (tn.next_at > now) {
		delayed(req, a, tn.next_at - now, "address");
		return 0;
	}
	a->counted_address = true;
	ret = store_throttle_take(app->store, a->account, now, weight, cap,
	                          (int64_t)cfg->security.account_delay_max * MS, &ta);
	if (ret < 0 || ta.next_at > now) {
		(void)store_throttle_give(app->store, a->address, now, weight);
		a->counted_address = false;
		if (ret < 0)
			return ret;
		delayed(req, a, ta.next_at - now, "account");
		return 0;
	}
	a->counted_account = true;
	d = throttle_delay(failures_of(tn.level, weight), cfg->security.address_free_failures,
	                   cfg->security.address_delay_max);
	if (d > 0)
		(void)store_throttle_hold(app->store, a->address, now + (int64_t)d * MS);
	d = throttle_delay(failures_of(ta.level, weight), cfg->security.account_free_failures,
	                   cfg->security.account_delay_max);
	if (d > 0)
		(void)store_throttle_hold(app->store, a->account, now + (int64_t)d * MS);
	return 0;
}

void
throttle_trust_browser(struct isso_app *app, struct http_req *req, const char *uuid)
{
	int64_t age = (int64_t)app->cfg->security.device_cookie_days * 86400;
	char value[THROTTLE_DEVICE_COOKIE_MAX];

	if (age <= 0)
		return;
	throttle_device_cookie(&app->secrets, uuid, app_now() + age, value);
	http_set_cookie(req, THROTTLE_DEVICE_COOKIE, value, (long)age, HTTP_COOKIE_HTTPONLY);
}

void
throttle_end(struct isso_app *app, struct http_req *req, struct throttle_attempt *a, bool ok,
             const char *uuid, const char *reason)
{
	const struct isso_config *cfg = app->cfg;
	int64_t now = method_now_ms(), weight = (int64_t)cfg->security.guess_memory * MS;
	struct store_throttle t;
	json_t *f;

	if (a->wait > 0)
		return;
	if (ok) {
		if (a->counted_device)
			(void)store_throttle_give(app->store, a->device, now, weight);
		/* The address keeps its count: giving it back would also lift
		 * the holds that parallel failures from it just set, letting
		 * one account's owner spray guesses at others between logins. */
		if (a->counted_account)
			(void)store_throttle_clear(app->store, a->account);
		if (uuid != NULL)
			throttle_trust_browser(app, req, uuid);
		return;
	}
	f = event_fields(req, a);
	json_object_set_new(f, "reason", json_string(reason != NULL ? reason : "wrong_password"));
	json_object_set_new(f, "device_cookie", json_boolean(a->counted_device));
	flow_login_failed(f);
	if (a->counted_device && store_throttle_get(app->store, a->device, now, &t) == 0 &&
	    failures_of(t.level, weight) >= cfg->security.device_cookie_max_failures) {
		(void)store_throttle_hold(app->store, a->device,
		                          now + (int64_t)cfg->security.device_cookie_lock_seconds *
		                                    MS);
		log_event(LOG_WARN, "device_cookie_locked", event_fields(req, a));
	}
}

void
throttle_cancel(struct isso_app *app, struct throttle_attempt *a)
{
	int64_t now = method_now_ms(), weight = (int64_t)app->cfg->security.guess_memory * MS;

	if (a->wait > 0)
		return;
	if (a->counted_device)
		(void)store_throttle_give(app->store, a->device, now, weight);
	if (a->counted_address)
		(void)store_throttle_give(app->store, a->address, now, weight);
	if (a->counted_account)
		(void)store_throttle_give(app->store, a->account, now, weight);
	a->counted_device = a->counted_address = a->counted_account = false;
}
