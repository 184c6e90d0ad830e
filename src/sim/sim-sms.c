/* The SMS gateway, in the shape of Mitake's HTTP API: POST
 * /api/mtk/SmSend?CharsetURL=UTF-8 with username, password, dstaddr,
 * smbody. Accepted messages go to an in-memory outbox per number (bounded)
 * that the phone API reads. Message bodies carry one-time codes: they are
 * never logged. */
#include "sim/sim.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"

#define SMS_BODY_MAX      335   /* bytes */
#define SMS_DESTNAME_MAX  36    /* characters */
#define SMS_URL_MAX       256   /* response= callback URL */
#define SMS_PER_NUMBER    20    /* messages kept per number */
#define SMS_NUMBERS_MAX   10000 /* numbers kept; the least recently used goes */
#define SMS_BUCKETS       4096
#define SMS_ACCOUNT_POINT "99999"

struct sms_msg {
	char msgid[11];
	char *body;
	char *destname; /* NULL when not given */
	struct timespec sent_at;
};

/* The messages of one number: a ring of the last SMS_PER_NUMBER. */
struct sms_box {
	struct sms_box *next; /* hash chain */
	char number[11];
	struct sms_msg ring[SMS_PER_NUMBER];
	unsigned head;  /* slot the next message goes to */
	unsigned count; /* messages held */
	uint64_t used;  /* outbox clock at the last message, for eviction */
};

static struct {
	pthread_mutex_t lock;
	struct sms_box *buckets[SMS_BUCKETS];
	size_t nboxes;
	uint64_t clock;
	uint64_t next_msgid;
	char *user;
	char *password;
} sms_outbox = {.lock = PTHREAD_MUTEX_INITIALIZER};

static unsigned
sms_hash(const char *number)
{
	uint32_t h = 2166136261u;

	for (; *number != '\0'; number++)
		h = (h ^ (unsigned char)*number) * 16777619u;
	return h % SMS_BUCKETS;
}

static void
sms_msg_clear(struct sms_msg *m)
{
	xfree_secret(m->body);
	free(m->destname);
	memset(m, 0, sizeof(*m));
}

static void
sms_box_free(struct sms_box *box)
{
	for (unsigned i = 0; i < SMS_PER_NUMBER; i++)
		sms_msg_clear(&box->ring[i]);
	free(box);
}

/* Unlinks box from its chain. Called with the lock held. */
static void
sms_box_unlink(struct sms_box *box)
{
	struct sms_box **pp = &sms_outbox.buckets[sms_hash(box->number)];

	while (*pp != NULL && *pp != box)
		pp = &(*pp)->next;
	if (*pp == box) {
		*pp = box->next;
		sms_outbox.nboxes--;
	}
}

/* Called with the lock held. */
static struct sms_box *
sms_box_find(const char *number)
{
	struct sms_box *box = sms_outbox.buckets[sms_hash(number)];

	while (box != NULL && strcmp(box->number, number) != 0)
		box = box->next;
	return box;
}

/* The box for number, created (evicting the least recently used number
 * when the outbox is full). Called with the lock held. */
static struct sms_box *
sms_box_get(const char *number)
{
	struct sms_box *box = sms_box_find(number), *oldest = NULL;
	unsigned b;

	if (box != NULL)
		goto out;
	if (sms_outbox.nboxes >= SMS_NUMBERS_MAX) {
		for (b = 0; b < SMS_BUCKETS; b++) {
			for (box = sms_outbox.buckets[b]; box != NULL; box = box->next) {
				if (oldest == NULL || box->used < oldest->used)
					oldest = box;
			}
		}
		sms_box_unlink(oldest);
		sms_box_free(oldest);
	}
	box = xcalloc(1, sizeof(*box));
	snprintf(box->number, sizeof(box->number), "%s", number);
	b = sms_hash(number);
	box->next = sms_outbox.buckets[b];
	sms_outbox.buckets[b] = box;
	sms_outbox.nboxes++;
out:
	return box;
}

/* Stores a message and writes its new msgid into msgid (11 bytes). */
static void
sms_outbox_add(const char *number, const char *body, const char *destname, char msgid[11])
{
	struct sms_box *box;
	struct sms_msg *m;

	pthread_mutex_lock(&sms_outbox.lock);
	box = sms_box_get(number);
	m = &box->ring[box->head];
	sms_msg_clear(m);
	snprintf(m->msgid, sizeof(m->msgid), "%010llu",
	         (unsigned long long)(sms_outbox.next_msgid++ % 10000000000ull));
	m->body = xstrdup(body);
	m->destname = destname != NULL && *destname != '\0' ? xstrdup(destname) : NULL;
	clock_gettime(CLOCK_REALTIME, &m->sent_at);
	box->head = (box->head + 1) % SMS_PER_NUMBER;
	if (box->count < SMS_PER_NUMBER)
		box->count++;
	box->used = ++sms_outbox.clock;
	memcpy(msgid, m->msgid, sizeof(m->msgid));
	pthread_mutex_unlock(&sms_outbox.lock);
}

/* The first run of exactly six ASCII digits in body (the one-time code a
 * test reads), into code (7 bytes); false when there is none. */
static bool
sms_find_code(const char *body, char code[7])
{
	const char *p = body;

	while (*p != '\0') {
		size_t n = 0;

		while (p[n] >= '0' && p[n] <= '9')
			n++;
		if (n == 6) {
			memcpy(code, p, 6);
			code[6] = '\0';
			return true;
		}
		p += n > 0 ? n : 1;
	}
	return false;
}

static json_t *
sms_msg_json(const char *number, const struct sms_msg *m)
{
	char when[40], code[7];
	struct tm tm;
	json_t *o;

	gmtime_r(&m->sent_at.tv_sec, &tm);
	strftime(when, 24, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03ldZ",
	         m->sent_at.tv_nsec / 1000000);
	o = json_pack("{s:s, s:s, s:s, s:s}", "to", number, "body", m->body, "msgid", m->msgid,
	              "sent_at", when);
	if (o == NULL)
		abort();
	json_object_set_new(o, "code",
	                    sms_find_code(m->body, code) ? json_string(code) : json_null());
	if (m->destname != NULL)
		json_object_set_new(o, "destname", json_string(m->destname));
	return o;
}

json_t *
sim_sms_messages(const char *number, size_t max)
{
	json_t *list = json_array();
	struct sms_box *box;

	if (list == NULL)
		abort();
	pthread_mutex_lock(&sms_outbox.lock);
	box = sms_box_find(number);
	for (unsigned i = 0; box != NULL && i < box->count && i < max; i++) {
		unsigned slot = (box->head + SMS_PER_NUMBER - 1 - i) % SMS_PER_NUMBER;

		json_array_append_new(list, sms_msg_json(number, &box->ring[slot]));
	}
	pthread_mutex_unlock(&sms_outbox.lock);
	return list;
}

size_t
sim_sms_clear(const char *number)
{
	struct sms_box *box;
	size_t n = 0;

	pthread_mutex_lock(&sms_outbox.lock);
	box = sms_box_find(number);
	if (box != NULL) {
		n = box->count;
		sms_box_unlink(box);
		sms_box_free(box);
	}
	pthread_mutex_unlock(&sms_outbox.lock);
	return n;
}

/* Mitake reads each field from the form body, or from the query string
 * when a client sends them there. */
static const char *
sms_param(struct http_req *req, const char *name)
{
	const char *v = http_form(req, name);

	return v != NULL ? v : http_query(req, name);
}

static bool
sms_digits(const char *s, size_t min, size_t max)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		if (s[n] < '0' || s[n] > '9')
			return false;
	}
	return n >= min && n <= max;
}

static size_t
sms_utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	}
	return n;
}

static bool
sms_is_mobile(const char *s)
{
	return strlen(s) == 10 && s[0] == '0' && s[1] == '9' && sms_digits(s, 10, 10);
}

/* A refusal the way the gateway words it: no msgid, a status letter and
 * its reason. */
static void
sms_refuse(struct http_req *req, const char *status, const char *reason)
{
	struct pool *pool = http_pool(req);
	const char *text =
	    pool_printf(pool, "[1]\r\nstatuscode=%s\r\nError=%s\r\n", status, reason);

	log_info("sms_refused", "statuscode", status, "remote", http_remote_addr(req), NULL);
	http_send(req, 200, "text/plain; charset=utf-8", text, strlen(text));
}

static void
sms_send_handler(struct http_req *req, void *ctx)
{
	const char *user = sms_param(req, "username");
	const char *password = sms_param(req, "password");
	const char *charset = http_query(req, "CharsetURL");
	const char *dstaddr = sms_param(req, "dstaddr");
	const char *smbody = sms_param(req, "smbody");
	const char *destname = sms_param(req, "destname");
	const char *dlvtime = sms_param(req, "dlvtime");
	const char *vldtime = sms_param(req, "vldtime");
	const char *response = sms_param(req, "response");
	const char *text;
	char msgid[11], masked[32];
	bool user_ok, password_ok;

	if (user == NULL || *user == '\0') {
		sms_refuse(req, "c", "請輸入帳號");
		goto out;
	}
	if (password == NULL || *password == '\0') {
		sms_refuse(req, "d", "請輸入密碼");
		goto out;
	}
	/* both comparisons run: which one failed must not show in the timing */
	user_ok = secret_equal(user, sms_outbox.user);
	password_ok = secret_equal(password, sms_outbox.password);
	if (!user_ok || !password_ok) {
		sms_refuse(req, "e", "帳號、密碼錯誤");
		goto out;
	}
	/* Without CharsetURL the real gateway reads Big5; the simulator speaks
	 * UTF-8 only, so a client that forgets it is told here. */
	if (charset == NULL ||
	    (strcasecmp(charset, "UTF-8") != 0 && strcasecmp(charset, "UTF8") != 0)) {
		sms_refuse(req, "y", "CharsetURL=UTF-8 required");
		goto out;
	}
	if (dstaddr == NULL || !sms_is_mobile(dstaddr)) {
		sms_refuse(req, "v", "無效的手機號碼");
		goto out;
	}
	if (smbody == NULL || *smbody == '\0') {
		sms_refuse(req, "u", "簡訊內容不得為空白");
		goto out;
	}
	if (strlen(smbody) > SMS_BODY_MAX) {
		sms_refuse(req, "y", "smbody longer than 335 bytes");
		goto out;
	}
	if (destname != NULL && sms_utf8_chars(destname) > SMS_DESTNAME_MAX) {
		sms_refuse(req, "y", "destname longer than 36 characters");
		goto out;
	}
	/* YYYYMMDDHHMMSS or a number of seconds */
	if ((dlvtime != NULL && *dlvtime != '\0' && !sms_digits(dlvtime, 1, 14)) ||
	    (vldtime != NULL && *vldtime != '\0' && !sms_digits(vldtime, 1, 14))) {
		sms_refuse(req, "y", "dlvtime / vldtime must be YYYYMMDDHHMMSS or seconds");
		goto out;
	}
	if (response != NULL && *response != '\0' &&
	    (strlen(response) > SMS_URL_MAX ||
	     (strncmp(response, "http://", 7) != 0 && strncmp(response, "https://", 8) != 0))) {
		sms_refuse(req, "y", "response must be an http(s) URL");
		goto out;
	}

	sms_outbox_add(dstaddr, smbody, destname, msgid);
	log_info("sms_accepted", "to", log_mask(dstaddr, masked), "msgid", msgid, NULL);
	text = pool_printf(
	    http_pool(req),
	    "[1]\r\nmsgid=%s\r\nstatuscode=1\r\nAccountPoint=" SMS_ACCOUNT_POINT "\r\n", msgid);
	http_send(req, 200, "text/plain; charset=utf-8", text, strlen(text));
out:
	return;
}

static int
sms_init(const struct sim_settings *settings, const char **error_r)
{
	int ret = ISSO_ERR_INVALID;

	if (settings->sms_user == NULL || *settings->sms_user == '\0' ||
	    settings->sms_password == NULL || *settings->sms_password == '\0') {
		*error_r = "the SMS gateway needs a user and a password";
		goto out;
	}
	sms_outbox.user = xstrdup(settings->sms_user);
	sms_outbox.password = xstrdup(settings->sms_password);
	/* msgids are 10 digits; start apart from earlier runs */
	sms_outbox.next_msgid = 1000000000ull + (uint64_t)(time(NULL) % 1000000) * 1000;
	ret = 0;
out:
	return ret;
}

static void
sms_routes(struct http_server *srv)
{
	http_route(srv, HTTP_GET | HTTP_POST, "/api/mtk/SmSend", sms_send_handler, NULL);
}

static void
sms_deinit(void)
{
	pthread_mutex_lock(&sms_outbox.lock);
	for (unsigned b = 0; b < SMS_BUCKETS; b++) {
		while (sms_outbox.buckets[b] != NULL) {
			struct sms_box *box = sms_outbox.buckets[b];

			sms_outbox.buckets[b] = box->next;
			sms_box_free(box);
		}
	}
	sms_outbox.nboxes = 0;
	free(sms_outbox.user);
	xfree_secret(sms_outbox.password);
	sms_outbox.user = sms_outbox.password = NULL;
	pthread_mutex_unlock(&sms_outbox.lock);
}

const struct sim_service sim_service_sms = {
    .name = "sms",
    .init = sms_init,
    .routes = sms_routes,
    .deinit = sms_deinit,
};
