/* JSON-over-HTTP(S) client shared by the connectors of our own contracts
 * (see conn-http.h). */
#include "conn/conn-http.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "lib/b64.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/xmalloc.h"

#define HTTP_URL_MAX         1024
#define HTTP_CRED_MAX        256
#define HTTP_TIMEOUT_DEFAULT 5000

_Static_assert(CURL_ERROR_SIZE <= CONN_HTTP_DETAIL_SIZE, "libcurl's error buffer grew");

struct conn_http {
	char *base;  /* without a trailing '/' */
	char *authz; /* "Authorization: Basic …" (secret) */
	char *agent;
	long timeout_ms;
	size_t reply_max;
};

static pthread_once_t http_curl_once = PTHREAD_ONCE_INIT;
static CURLcode http_curl_status = CURLE_FAILED_INIT;

static void
http_curl_init(void)
{
	http_curl_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Printable ASCII without spaces, quotes, backslashes or angle brackets. */
static bool
http_url_chars_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s <= 0x20 || *s >= 0x7f || *s == '"' || *s == '<' || *s == '>' || *s == '\\')
			return false;
	}
	return true;
}

/* "Authorization: Basic b64(esc(id):esc(secret))" (RFC 6749 §2.3.1). */
static char *
http_basic_header(const char *client_id, const char *secret)
{
	char *id = NULL, *pw = NULL, *pair = NULL, *enc = NULL, *header = NULL;
	size_t len;

	id = curl_easy_escape(NULL, client_id, (int)strlen(client_id));
	pw = curl_easy_escape(NULL, secret, (int)strlen(secret));
	if (id == NULL || pw == NULL)
		goto out;
	pair = xasprintf("%s:%s", id, pw);
	len = strlen(pair);
	enc = xmalloc(len / 3 * 4 + 5);
	b64_encode(pair, len, enc);
	header = xasprintf("Authorization: Basic %s", enc);
out:
	if (pw != NULL) {
		explicit_bzero(pw, strlen(pw));
		curl_free(pw);
	}
	curl_free(id);
	xfree_secret(pair);
	xfree_secret(enc);
	return header;
}

struct conn_http *
conn_http_new(const char *base_url, const char *client_id, const char *secret, int timeout_ms,
              size_t reply_max, const char *agent)
{
	struct conn_http *h = NULL;
	size_t len;

	if (base_url == NULL || client_id == NULL || secret == NULL || agent == NULL)
		goto out;
	len = strlen(base_url);
	if (len > HTTP_URL_MAX || !http_url_chars_ok(base_url) || strpbrk(base_url, "?#") != NULL)
		goto out;
	if (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0)
		goto out;
	if (*client_id == '\0' || *secret == '\0' || strlen(client_id) > HTTP_CRED_MAX ||
	    strlen(secret) > HTTP_CRED_MAX)
		goto out;
	pthread_once(&http_curl_once, http_curl_init);
	if (http_curl_status != CURLE_OK)
		goto out;
	h = xcalloc(1, sizeof(*h));
	while (len > 0 && base_url[len - 1] == '/')
		len--;
	h->base = xstrndup(base_url, len);
	h->authz = http_basic_header(client_id, secret);
	h->agent = xstrdup(agent);
	h->timeout_ms = timeout_ms > 0 ? timeout_ms : HTTP_TIMEOUT_DEFAULT;
	h->reply_max = reply_max;
	if (h->authz == NULL) {
		conn_http_free(h);
		h = NULL;
	}
out:
	return h;
}

void
conn_http_free(struct conn_http *h)
{
	if (h == NULL)
		return;
	free(h->base);
	free(h->agent);
	xfree_secret(h->authz);
	free(h);
}

static size_t
http_write_cb(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct buf *reply = ctx;
	size_t len = size * nmemb;

	/* a short count makes curl stop with CURLE_WRITE_ERROR */
	if (buf_add(reply, data, len) != 0)
		return 0;
	return len;
}

/* One exchange: GET base + path, or POST body when it is not NULL. */
static int
http_exchange(struct conn_http *h, const char *path, const json_t *body, long *status_r,
              json_t **reply_r, const char **error_r, char detail_r[CONN_HTTP_DETAIL_SIZE])
{
	CURL *curl = NULL;
	struct curl_slist *headers = NULL;
	struct buf reply;
	char *url = NULL, *text = NULL;
	CURLcode cc;
	json_t *j = NULL;
	int ret = ISSO_ERR_IO;

	*status_r = 0;
	*reply_r = NULL;
	detail_r[0] = '\0';
	buf_init(&reply, h->reply_max);
	if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL)
		abort();
	url = xasprintf("%s%s", h->base, path);
	curl = curl_easy_init();
	if (curl == NULL) {
		*error_r = "cannot create an HTTP handle";
		goto out;
	}
	headers = curl_slist_append(NULL, h->authz);
	if (headers != NULL)
		headers = curl_slist_append(headers, "Accept: application/json");
	if (headers != NULL && text != NULL)
		headers = curl_slist_append(headers, "Content-Type: application/json");
	if (headers == NULL) {
		*error_r = "cannot build the request";
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, h->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, h->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, h->agent);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, detail_r);
	if (text != NULL) {
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
	}

	cc = curl_easy_perform(curl);
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		ret = ISSO_ERR_TIMEOUT;
		*error_r = "service did not answer in time";
		goto out;
	}
	if (cc == CURLE_WRITE_ERROR) {
		*error_r = "service reply too large";
		goto out;
	}
	if (cc != CURLE_OK) {
		*error_r = "service unreachable";
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status_r);
	if (reply.len > 0 && memchr(reply.data, '\0', reply.len) == NULL) {
		j = json_loadb(reply.data, reply.len, JSON_REJECT_DUPLICATES, NULL);
		if (j != NULL && !json_is_object(j)) {
			json_decref(j);
			j = NULL;
		}
	}
	*reply_r = j;
	ret = 0;
out:
	curl_slist_free_all(headers);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	xfree_secret(text);
	free(url);
	buf_free_secret(&reply);
	return ret;
}

int
conn_http_post_json(struct conn_http *h, const char *path, const json_t *body, long *status_r,
                    json_t **reply_r, const char **error_r, char detail_r[CONN_HTTP_DETAIL_SIZE])
{
	if (body == NULL)
		abort();
	return http_exchange(h, path, body, status_r, reply_r, error_r, detail_r);
}

int
conn_http_get_json(struct conn_http *h, const char *path, long *status_r, json_t **reply_r,
                   const char **error_r, char detail_r[CONN_HTTP_DETAIL_SIZE])
{
	return http_exchange(h, path, NULL, status_r, reply_r, error_r, detail_r);
}
