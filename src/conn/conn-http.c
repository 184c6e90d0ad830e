/* JSON-over-HTTP(S) client shared by the connectors of our own contracts
 * (see conn-http.h). */
#include "conn/conn-http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn/outbound.h"
#include "lib/b64.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/xmalloc.h"

#define HTTP_URL_MAX         1024
#define HTTP_CRED_MAX        256
#define HTTP_TIMEOUT_DEFAULT 5000

_Static_assert(OUTBOUND_DETAIL_SIZE <= CONN_HTTP_DETAIL_SIZE, "the outbound detail grew");

struct conn_http {
	char *base;  /* without a trailing '/' */
	char *authz; /* "Authorization: Basic …" (secret) */
	char *agent;
	char *purpose; /* for the outbound log: the agent without its version */
	long timeout_ms;
	size_t reply_max;
};

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
	struct buf pair;
	char *enc = NULL, *header = NULL;

	buf_init(&pair, 4 * HTTP_CRED_MAX + 8);
	if (outbound_escape(&pair, client_id) != 0 || buf_addc(&pair, ':') != 0 ||
	    outbound_escape(&pair, secret) != 0)
		goto out;
	enc = xmalloc(pair.len / 3 * 4 + 5);
	b64_encode(pair.data, pair.len, enc);
	header = xasprintf("Authorization: Basic %s", enc);
out:
	buf_free_secret(&pair);
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
	h = xcalloc(1, sizeof(*h));
	while (len > 0 && base_url[len - 1] == '/')
		len--;
	h->base = xstrndup(base_url, len);
	h->authz = http_basic_header(client_id, secret);
	h->agent = xstrdup(agent);
	h->purpose = xstrndup(agent, strcspn(agent, "/"));
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
	free(h->purpose);
	xfree_secret(h->authz);
	free(h);
}

/* One exchange: GET base + path, or POST body when it is not NULL. */
static int
http_exchange(struct conn_http *h, const char *path, const json_t *body, long *status_r,
              json_t **reply_r, const char **error_r, char detail_r[CONN_HTTP_DETAIL_SIZE])
{
	const char *headers[4] = {h->authz, "Accept: application/json", NULL, NULL};
	struct outbound_req req;
	struct outbound_resp resp;
	char *url = NULL, *text = NULL;
	json_t *j = NULL;
	int ret;

	*status_r = 0;
	*reply_r = NULL;
	detail_r[0] = '\0';
	if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL)
		abort();
	if (text != NULL)
		headers[2] = "Content-Type: application/json";
	url = xasprintf("%s%s", h->base, path);
	memset(&req, 0, sizeof(req));
	req.method = text != NULL ? OUTBOUND_POST : OUTBOUND_GET;
	req.url = url;
	req.headers = headers;
	req.body = text;
	req.body_len = text != NULL ? strlen(text) : 0;
	req.agent = h->agent;
	req.timeout_ms = h->timeout_ms;
	req.reply_max = h->reply_max;
	req.purpose = h->purpose;
	ret = outbound_request(&req, &resp, error_r);
	snprintf(detail_r, CONN_HTTP_DETAIL_SIZE, "%s", resp.detail);
	if (ret == ISSO_ERR_TIMEOUT) {
		*error_r = "service did not answer in time";
		goto out;
	}
	if (ret == ISSO_ERR_LIMIT) {
		*error_r = "service reply too large";
		ret = ISSO_ERR_IO;
		goto out;
	}
	if (ret == ISSO_ERR_DENIED) {
		/* *error_r says why; the refusal is logged */
		ret = ISSO_ERR_IO;
		goto out;
	}
	if (ret < 0) {
		*error_r = "service unreachable";
		ret = ISSO_ERR_IO;
		goto out;
	}
	*status_r = resp.status;
	if (resp.body.len > 0 && memchr(resp.body.data, '\0', resp.body.len) == NULL) {
		j = json_loadb(resp.body.data, resp.body.len, JSON_REJECT_DUPLICATES, NULL);
		if (j != NULL && !json_is_object(j)) {
			json_decref(j);
			j = NULL;
		}
	}
	*reply_r = j;
out:
	outbound_resp_free(&resp);
	xfree_secret(text);
	free(url);
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
