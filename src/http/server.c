/* The HTTP server on libmicrohttpd: per-request state and pool, router,
 * request accessors and response building with default security headers.
 *
 * Request life cycle (keep-alive depends on it): the URI log callback
 * allocates the request state with the raw request-target; the first
 * access-handler call only records the method and returns (queueing a
 * response then would make MHD close the connection); later calls collect
 * the body; the call with *upload_data_size == 0 routes, runs the handler
 * and queues the response; the completion callback frees everything.
 *
 * A handler that defers work (http_defer) returns without a response: the
 * connection is suspended until a work pool thread has run the work and
 * resumes it; MHD then calls the access handler once more, which runs the
 * deferral's done and queues its response. A request whose connection is
 * closed before done ran gets done(NULL) instead; one closed while its work
 * still runs is freed by the pool thread when the work ends. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http/http-private.h"
#include "http/http.h"
#include "http/parse.h"
#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/pool.h"
#include "lib/worker.h"
#include "lib/xmalloc.h"

#define HTTP_MAX_PATH          2048
#define HTTP_MAX_QUERY         8192
#define HTTP_MAX_QUERY_PAIRS   64
#define HTTP_MAX_FORM_PAIRS    128
#define HTTP_MAX_COOKIES       64
#define HTTP_MAX_RESP_HEADERS  64
#define HTTP_MAX_CSP_ORIGINS   16
#define HTTP_DEFAULT_MAX_BODY  (1024 * 1024)
#define HTTP_DEFAULT_PROXIES   "127.0.0.1, ::1" /* trusted_proxies when unset */
#define HTTP_CONNECTION_LIMIT  1024
#define HTTP_TIMEOUT_SECONDS   30
#define HTTP_CONN_MEMORY_LIMIT (64 * 1024)
#define HTTP_BUSY_RETRY_AFTER  "5" /* seconds, for a full work pool */

#define HTTP_CSP_BASE                                                                              \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

struct route {
	const char *path;
	size_t len;
	bool prefix;
	unsigned methods;
	http_handler_fn *fn;
	void *ctx;
};

struct cleanup {
	void (*fn)(void *arg);
	void *arg;
};

/* RFC 6265bis §4.1.3.2: a cookie only this host can set, over https */
#define HOST_PREFIX "__Host-"

struct http_server {
	struct http_server_settings set;
	struct metrics_allow proxies; /* whose X-Forwarded-* headers count */
	size_t max_body;
	struct pool *pool;
	struct route *routes;
	size_t n_routes, cap_routes;
	struct cleanup *cleanups;
	size_t n_cleanups, cap_cleanups;
	struct MHD_Daemon *daemon;
	int port;
	/* deferred work: the pool, and one lock for every deferral's state */
	struct worker_pool *defer_pool;
	pthread_mutex_t defer_lock;
	unsigned defer_waiting; /* reserved or queued, work not started */
	bool defer_stopping;
};

/* One http_defer in flight. The flags are read and written under the
 * server's defer_lock. */
struct http_deferral {
	struct http_server *srv;
	struct http_req *req;
	struct MHD_Connection *conn;
	http_work_fn *work;
	http_done_fn *done;
	void *ctx;
	bool finished;  /* work has returned */
	bool suspended; /* the connection waits for the work */
	bool orphaned;  /* the request ended first: the pool thread frees it */
	bool done_run;
};

struct resp_header {
	const char *name;
	const char *value;
	const char *cookie; /* the cookie's name for Set-Cookie, else NULL */
};

struct http_req {
	struct pool *pool;
	struct http_server *srv;
	struct MHD_Connection *conn;
	const char *raw_uri;
	enum http_method method;
	bool started;
	bool too_large;
	size_t discarded;
	struct buf body;

	const char *path, *rest;
	const char *raw_query;
	size_t raw_query_len;
	struct http_kvs query, form, cookies;
	bool query_parsed, form_parsed, cookies_parsed;
	int query_err, form_err;
	const char *locale;
	const char *remote;

	bool responded;
	int status;
	struct resp_header *hdrs;
	size_t n_hdrs, cap_hdrs;
	char *out; /* malloc'd, handed to MHD */
	size_t out_len;
	const char *csp_origins[HTTP_MAX_CSP_ORIGINS];
	size_t n_csp_origins;
	const char *csp_connect[HTTP_MAX_CSP_ORIGINS]; /* extra connect-src */
	size_t n_csp_connect;

	uint64_t t0;           /* arrival (metrics_now_ns) */
	const char *route_pat; /* the matched route's pattern, "(none)"; NULL: not routed */
	struct http_deferral *deferral;
	bool defer_reserved; /* holds a place in the work queue */
};

/* ---- request state ---- */

static struct http_req *
req_new(struct http_server *srv, const char *uri)
{
	struct pool *pool = pool_new(0);
	struct http_req *req = pool_alloc(pool, sizeof(*req));

	req->pool = pool;
	req->srv = srv;
	req->raw_uri = pool_strdup(pool, uri != NULL ? uri : "");
	req->path = "/";
	req->rest = "";
	req->locale = "zh-TW";
	req->status = 200;
	req->t0 = metrics_now_ns();
	buf_init(&req->body, srv->max_body);
	return req;
}

static void
wipe_kvs(struct http_kvs *kvs)
{
	for (size_t i = 0; i < kvs->n; i++) {
		explicit_bzero((char *)kvs->v[i].name, strlen(kvs->v[i].name));
		explicit_bzero((char *)kvs->v[i].value, strlen(kvs->v[i].value));
	}
}

static void
req_destroy(struct http_req *req)
{
	/* Forms carry passwords, PINs and OTPs. */
	wipe_kvs(&req->form);
	buf_free_secret(&req->body);
	free(req->out);
	free(req->deferral);
	pool_free(req->pool);
}

/* The end of a request's life (MHD's completion callback). A deferral
 * whose work still runs takes the request over; one whose work ran but
 * whose done did not (the client left while suspended) is abandoned. */
static void
req_free(struct http_req *req)
{
	struct http_deferral *d;
	bool abandon = false, orphan = false;

	if (req == NULL)
		return;
	d = req->deferral;
	if (d != NULL) {
		pthread_mutex_lock(&req->srv->defer_lock);
		if (!d->finished)
			orphan = d->orphaned = true;
		else
			abandon = !d->done_run;
		pthread_mutex_unlock(&req->srv->defer_lock);
		if (orphan)
			return; /* d and req now belong to the pool thread */
		if (abandon) {
			d->done_run = true;
			d->done(NULL, d->ctx);
		}
	}
	req_destroy(req);
}

struct pool *
http_pool(struct http_req *req)
{
	return req->pool;
}

enum http_method
http_method(const struct http_req *req)
{
	return req->method;
}

const char *
http_path(const struct http_req *req)
{
	return req->path;
}

const char *
http_path_rest(const struct http_req *req)
{
	return req->rest;
}

const char *
http_header(const struct http_req *req, const char *name)
{
	if (req->conn == NULL || name == NULL)
		return NULL;
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

struct header_count {
	const char *name;
	size_t n;
};

static enum MHD_Result
header_count_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct header_count *hc = cls;

	(void)kind;
	(void)value;
	if (key != NULL && strcasecmp(key, hc->name) == 0)
		hc->n++;
	return MHD_YES;
}

size_t
http_header_count(const struct http_req *req, const char *name)
{
	struct header_count hc = {.name = name, .n = 0};

	if (req->conn == NULL || name == NULL)
		return 0;
	(void)MHD_get_connection_values(req->conn, MHD_HEADER_KIND, header_count_cb, &hc);
	return hc.n;
}

struct last_value {
	const char *name;
	const char *value;
};

static enum MHD_Result
last_value_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct last_value *lv = cls;

	if (key != NULL && value != NULL && strcasecmp(key, lv->name) == 0)
		lv->value = value;
	return MHD_YES;
}

/* The last occurrence of a header: proxies append to the last one. */
static const char *
last_header(const struct http_req *req, const char *name)
{
	struct last_value lv = {.name = name, .value = NULL};

	if (req->conn != NULL)
		MHD_get_connection_values(req->conn, MHD_HEADER_KIND, last_value_cb, &lv);
	return lv.value;
}

/* The last element of a comma-separated header value, trimmed, into out. */
static const char *
last_element(const char *value, char *out, size_t outsize)
{
	const char *s, *e;
	size_t n;

	if (value == NULL)
		return NULL;
	s = strrchr(value, ',');
	s = s != NULL ? s + 1 : value;
	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	n = (size_t)(e - s);
	if (n == 0 || n >= outsize)
		return NULL;
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

static const struct sockaddr *
peer_addr(const struct http_req *req)
{
	const union MHD_ConnectionInfo *ci;

	if (req->conn == NULL)
		return NULL;
	ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	return ci != NULL ? ci->client_addr : NULL;
}

static const char *
peer_text(struct http_req *req)
{
	const struct sockaddr *sa = peer_addr(req);
	char text[INET6_ADDRSTRLEN] = "";

	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], text, sizeof(text));
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
	}
	return pool_strdup(req->pool, text[0] != '\0' ? text : "unknown");
}

/* The peer is one of the configured proxies (loopback by default) and
 * its X-Forwarded-* headers may be believed. */
static bool
behind_trusted_proxy(const struct http_req *req)
{
	struct http_req *r = (struct http_req *)req; /* peer_text allocates from the pool */

	return req->srv->set.trust_proxy && metrics_allow_has(&req->srv->proxies, peer_text(r));
}

const char *
http_remote_addr(const struct http_req *req)
{
	struct http_req *r = (struct http_req *)req; /* the cache is logically const */
	char hop[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *fwd;

	if (r->remote != NULL)
		return r->remote;
	if (behind_trusted_proxy(r)) {
		fwd = last_element(last_header(r, "X-Forwarded-For"), hop, sizeof(hop));
		if (fwd != NULL &&
		    (inet_pton(AF_INET, fwd, bin) == 1 || inet_pton(AF_INET6, fwd, bin) == 1)) {
			r->remote = pool_strdup(r->pool, fwd);
			return r->remote;
		}
	}
	r->remote = peer_text(r);
	return r->remote;
}

bool
http_is_https(const struct http_req *req)
{
	char proto[16];
	const char *p;

	if (!behind_trusted_proxy(req))
		return false;
	p = last_element(last_header(req, "X-Forwarded-Proto"), proto, sizeof(proto));
	return p != NULL && strcasecmp(p, "https") == 0;
}

/* application/x-www-form-urlencoded, optionally with parameters; a charset
 * parameter must say UTF-8. */
static bool
is_form_content_type(const char *ct, bool *bad_charset_r)
{
	static const char type[] = "application/x-www-form-urlencoded";
	const char *p;

	*bad_charset_r = false;
	if (ct == NULL || strncasecmp(ct, type, sizeof(type) - 1) != 0)
		return false;
	p = ct + sizeof(type) - 1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return true;
	if (*p != ';')
		return false;
	while (*p == ';') {
		const char *name, *val, *end;
		size_t vlen;

		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		name = p;
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		val = memchr(name, '=', (size_t)(end - name));
		if (val != NULL && (size_t)(val - name) == 7 &&
		    strncasecmp(name, "charset", 7) == 0) {
			val++;
			vlen = (size_t)(end - val);
			while (vlen > 0 && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
				vlen--;
			if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
				val++;
				vlen -= 2;
			}
			if (!(vlen == 5 && strncasecmp(val, "utf-8", 5) == 0))
				*bad_charset_r = true;
		}
		p = end;
	}
	return true;
}

const struct http_kvs *
http_query_all(struct http_req *req)
{
	if (!req->query_parsed) {
		req->query_parsed = true;
		req->query_err = parse_urlencoded(req->pool, req->raw_query, req->raw_query_len,
		                                  HTTP_MAX_QUERY_PAIRS, &req->query);
	}
	return &req->query;
}

const struct http_kvs *
http_form_all(struct http_req *req)
{
	bool bad_charset;

	if (!req->form_parsed) {
		req->form_parsed = true;
		if (req->method == HTTP_POST &&
		    is_form_content_type(http_header(req, "Content-Type"), &bad_charset)) {
			if (bad_charset)
				req->form_err = ISSO_ERR_INVALID;
			else
				req->form_err =
				    parse_urlencoded(req->pool, req->body.data, req->body.len,
				                     HTTP_MAX_FORM_PAIRS, &req->form);
		}
	}
	return &req->form;
}

const char *
http_query(struct http_req *req, const char *name)
{
	return http_kvs_get(http_query_all(req), name);
}

const char *
http_form(struct http_req *req, const char *name)
{
	return http_kvs_get(http_form_all(req), name);
}

const char *
http_cookie(struct http_req *req, const char *name)
{
	if (!req->cookies_parsed) {
		req->cookies_parsed = true;
		parse_cookies(req->pool, http_header(req, "Cookie"), HTTP_MAX_COOKIES,
		              &req->cookies);
	}
	/* with secure cookies only the __Host- one counts: another could have
	 * been set over http or by a sibling host */
	if (req->srv->set.secure_cookies)
		return http_kvs_get(&req->cookies, pool_printf(req->pool, HOST_PREFIX "%s", name));
	return http_kvs_get(&req->cookies, name);
}

static const struct http_kvs *
param_kvs(struct http_req *req)
{
	return req->method == HTTP_POST ? http_form_all(req) : http_query_all(req);
}

const char *
http_param(struct http_req *req, const char *name)
{
	return http_kvs_get(param_kvs(req), name);
}

size_t
http_param_count(struct http_req *req, const char *name)
{
	return http_kvs_count(param_kvs(req), name);
}

const char *
http_body(const struct http_req *req, size_t *len_r)
{
	if (len_r != NULL)
		*len_r = req->body.len;
	return req->body.len > 0 ? req->body.data : NULL;
}

const char *
http_locale(struct http_req *req)
{
	return req->locale;
}

void
http_set_locale(struct http_req *req, const char *locale)
{
	if (locale != NULL && *locale != '\0')
		req->locale = pool_strdup(req->pool, locale);
}

/* ---- response ---- */

/* Header text must not split the response: no CR, LF or other controls
 * (horizontal tab allowed in values). */
static bool
header_text_ok(const char *s, bool is_name)
{
	if (s == NULL || (is_name && *s == '\0'))
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c < 0x20 && !(c == '\t' && !is_name)) || c == 0x7f)
			return false;
		if (is_name && (c == ':' || c == ' ' || c >= 0x80))
			return false;
	}
	return true;
}

static void
add_header(struct http_req *req, const char *name, const char *value, const char *cookie)
{
	struct resp_header *h;

	if (req->n_hdrs == req->cap_hdrs) {
		size_t cap = req->cap_hdrs == 0 ? 16 : req->cap_hdrs * 2;
		struct resp_header *n;

		if (req->n_hdrs >= HTTP_MAX_RESP_HEADERS) {
			log_warn("http_too_many_headers", "name", name, NULL);
			return;
		}
		n = pool_alloc(req->pool, cap * sizeof(*n));
		if (req->n_hdrs > 0)
			memcpy(n, req->hdrs, req->n_hdrs * sizeof(*n));
		req->hdrs = n;
		req->cap_hdrs = cap;
	}
	h = &req->hdrs[req->n_hdrs++];
	h->name = pool_strdup(req->pool, name);
	h->value = pool_strdup(req->pool, value);
	h->cookie = pool_strdup(req->pool, cookie);
}

static struct resp_header *
find_header(const struct http_req *req, const char *name)
{
	for (size_t i = 0; i < req->n_hdrs; i++)
		if (req->hdrs[i].cookie == NULL && strcasecmp(req->hdrs[i].name, name) == 0)
			return &req->hdrs[i];
	return NULL;
}

int
http_response_status(const struct http_req *req)
{
	return req->status;
}

void
http_set_status(struct http_req *req, int status)
{
	req->status = status;
	req->responded = true;
}

void
http_set_header(struct http_req *req, const char *name, const char *value)
{
	struct resp_header *h;

	if (!header_text_ok(name, true) || !header_text_ok(value, false) ||
	    strcasecmp(name, "Set-Cookie") == 0) {
		log_warn("http_bad_header", "name", header_text_ok(name, true) ? name : "?", NULL);
		return;
	}
	h = find_header(req, name);
	if (h != NULL)
		h->value = pool_strdup(req->pool, value);
	else
		add_header(req, name, value, NULL);
}

static bool
cookie_name_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", c) != NULL))
			return false;
	}
	return true;
}

/* RFC 6265 §4.1.1 cookie-octet */
static bool
cookie_value_ok(const char *s)
{
	if (s == NULL)
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\')
			return false;
	}
	return true;
}

const char *
http_cookie_format(struct pool *pool, const char *name, const char *value, long max_age,
                   unsigned flags, bool secure, bool host_prefix)
{
	char age[48] = "";
	const char *samesite = "Strict";

	if (!cookie_name_ok(name) || !cookie_value_ok(value))
		return NULL;
	if (flags & HTTP_COOKIE_NONE) {
		samesite = "None";
		secure = true;
	} else if (flags & HTTP_COOKIE_LAX) {
		samesite = "Lax";
	}
	if (host_prefix)
		secure = true;
	if (max_age >= 0)
		snprintf(age, sizeof(age), "; Max-Age=%ld", max_age);
	return pool_printf(pool, "%s%s=%s; Path=/%s%s; SameSite=%s%s",
	                   host_prefix ? HOST_PREFIX : "", name, value, age,
	                   (flags & HTTP_COOKIE_HTTPONLY) ? "; HttpOnly" : "", samesite,
	                   secure ? "; Secure" : "");
}

void
http_set_cookie(struct http_req *req, const char *name, const char *value, long max_age,
                unsigned flags)
{
	bool prefix = req->srv->set.secure_cookies;
	const char *line = http_cookie_format(req->pool, name, value, max_age, flags,
	                                      prefix || http_is_https(req), prefix);

	if (line == NULL) {
		log_warn("http_bad_cookie", "name", cookie_name_ok(name) ? name : "?", NULL);
		return;
	}
	for (size_t i = 0; i < req->n_hdrs; i++) {
		if (req->hdrs[i].cookie != NULL && strcmp(req->hdrs[i].cookie, name) == 0) {
			req->hdrs[i].value = line;
			return;
		}
	}
	add_header(req, "Set-Cookie", line, name);
}

const char *
http_response_cookie(const struct http_req *req, const char *name)
{
	for (size_t i = 0; i < req->n_hdrs; i++) {
		const struct resp_header *h = &req->hdrs[i];
		size_t n;

		if (h->cookie == NULL || strcmp(h->cookie, name) != 0)
			continue;
		n = strlen(name) + (req->srv->set.secure_cookies ? strlen(HOST_PREFIX) : 0);
		/* "name=value; Path=/…": a value never contains ';'. */
		return pool_strndup(req->pool, h->value + n + 1, strcspn(h->value + n + 1, ";"));
	}
	return NULL;
}

void
http_send(struct http_req *req, int status, const char *content_type, const char *body, size_t len)
{
	free(req->out);
	req->out = NULL;
	req->out_len = 0;
	if (body != NULL && len > 0) {
		req->out = xmalloc(len);
		memcpy(req->out, body, len);
		req->out_len = len;
	}
	if (content_type != NULL)
		http_set_header(req, "Content-Type", content_type);
	http_set_status(req, status);
}

void
http_send_json(struct http_req *req, int status, json_t *obj)
{
	char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	json_decref(obj);
	if (text == NULL) {
		http_send_error(req, 500);
		return;
	}
	http_send(req, status, "application/json; charset=utf-8", text, strlen(text));
	free(text);
	http_set_header(req, "Cache-Control", "no-store");
	http_set_header(req, "Pragma", "no-cache");
}

void
http_redirect(struct http_req *req, int status, const char *location)
{
	if (!header_text_ok(location, false) || *location == '\0') {
		http_send_error(req, 500);
		return;
	}
	http_send(req, status, NULL, NULL, 0);
	http_set_header(req, "Location", location);
	if (find_header(req, "Cache-Control") == NULL)
		http_set_header(req, "Cache-Control", "no-store");
}

/* Adds origin to list (of n entries, at most HTTP_MAX_CSP_ORIGINS) unless
 * it is there already or is not a plain CSP source expression. */
static void
csp_add(struct http_req *req, const char **list, size_t *n, const char *origin)
{
	if (origin == NULL || *origin == '\0')
		return;
	for (const char *p = origin; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		/* A CSP source expression: no separators, quotes or spaces. */
		if (c <= 0x20 || c >= 0x7f || c == ';' || c == ',' || c == '\'' || c == '"') {
			log_warn("http_bad_csp_origin", NULL);
			return;
		}
	}
	for (size_t i = 0; i < *n; i++)
		if (strcmp(list[i], origin) == 0)
			return;
	if (*n == HTTP_MAX_CSP_ORIGINS)
		return;
	list[(*n)++] = pool_strdup(req->pool, origin);
}

void
http_csp_allow_form_action(struct http_req *req, const char *origin)
{
	csp_add(req, req->csp_origins, &req->n_csp_origins, origin);
}

void
http_csp_allow_connect(struct http_req *req, const char *origin)
{
	csp_add(req, req->csp_connect, &req->n_csp_connect, origin);
}

/* ---- deferred work ---- */

static void
defer_task(void *arg)
{
	struct http_deferral *d = arg;
	struct http_server *srv = d->srv;
	struct MHD_Connection *conn = d->conn;
	bool resume, orphan;

	pthread_mutex_lock(&srv->defer_lock);
	srv->defer_waiting--;
	pthread_mutex_unlock(&srv->defer_lock);
	d->work(d->ctx);
	pthread_mutex_lock(&srv->defer_lock);
	d->finished = true;
	resume = d->suspended;
	orphan = d->orphaned;
	pthread_mutex_unlock(&srv->defer_lock);
	/* From here the request thread may finish and free the request: d
	 * is not touched again unless it was orphaned (then it is ours). */
	if (resume)
		MHD_resume_connection(conn);
	if (orphan) {
		d->done_run = true;
		d->done(NULL, d->ctx);
		req_destroy(d->req);
	}
}

int
http_defer(struct http_req *req, http_work_fn *work, http_done_fn *done, void *ctx)
{
	struct http_server *srv = req->srv;
	struct http_deferral *d;
	int ret = ISSO_ERR_LIMIT;

	if (work == NULL || done == NULL || req->deferral != NULL || req->conn == NULL)
		return ISSO_ERR_INVALID;
	if (srv->defer_pool == NULL) {
		work(ctx);
		done(req, ctx);
		return 0;
	}
	d = xcalloc(1, sizeof(*d));
	d->srv = srv;
	d->req = req;
	d->conn = req->conn;
	d->work = work;
	d->done = done;
	d->ctx = ctx;
	pthread_mutex_lock(&srv->defer_lock);
	if (!srv->defer_stopping &&
	    (req->defer_reserved || srv->defer_waiting < srv->set.defer_queue)) {
		req->deferral = d;
		ret = worker_submit(srv->defer_pool, defer_task, d);
		if (ret < 0) {
			req->deferral = NULL;
		} else {
			if (!req->defer_reserved)
				srv->defer_waiting++;
			req->defer_reserved = false; /* the task holds the place now */
			d = NULL;
		}
	}
	pthread_mutex_unlock(&srv->defer_lock);
	if (ret < 0)
		log_warn("http_defer_busy", "path", req->path, NULL);
	free(d);
	return ret < 0 ? ISSO_ERR_LIMIT : 0;
}

unsigned
http_defer_waiting(struct http_req *req)
{
	struct http_server *srv = req->srv;
	unsigned n;

	pthread_mutex_lock(&srv->defer_lock);
	n = srv->defer_waiting;
	pthread_mutex_unlock(&srv->defer_lock);
	return n;
}

bool
http_defer_reserve(struct http_req *req)
{
	struct http_server *srv = req->srv;
	bool ok = true;

	if (srv->defer_pool == NULL || req->defer_reserved)
		return true;
	pthread_mutex_lock(&srv->defer_lock);
	if (srv->defer_stopping || srv->defer_waiting >= srv->set.defer_queue) {
		ok = false;
	} else {
		srv->defer_waiting++;
		req->defer_reserved = true;
	}
	pthread_mutex_unlock(&srv->defer_lock);
	if (!ok)
		log_warn("http_defer_busy", "path", req->path, NULL);
	return ok;
}

/* Gives back a place reserved but not used by the handler (or done). */
static void
defer_unreserve(struct http_req *req)
{
	if (!req->defer_reserved)
		return;
	pthread_mutex_lock(&req->srv->defer_lock);
	req->srv->defer_waiting--;
	req->defer_reserved = false;
	pthread_mutex_unlock(&req->srv->defer_lock);
}

void
http_set_busy(struct http_req *req)
{
	http_set_header(req, "Retry-After", HTTP_BUSY_RETRY_AFTER);
}

/* After the handler: true when the request waits for its deferred work
 * (the connection is now suspended), false when it can be answered. */
static bool
defer_wait(struct http_req *req)
{
	struct http_deferral *d = req->deferral;
	bool wait = false;

	if (d == NULL || d->done_run)
		return false;
	pthread_mutex_lock(&req->srv->defer_lock);
	if (!d->finished) {
		MHD_suspend_connection(req->conn);
		d->suspended = true;
		wait = true;
	}
	pthread_mutex_unlock(&req->srv->defer_lock);
	if (!wait) {
		d->done_run = true;
		d->done(req, d->ctx);
		defer_unreserve(req);
	}
	return wait;
}

void
http_send_error(struct http_req *req, int status)
{
	struct http_server *srv = req->srv;
	size_t keep = 0;

	/* Forget everything but cookies (a fresh CSRF cookie must survive). */
	for (size_t i = 0; i < req->n_hdrs; i++)
		if (req->hdrs[i].cookie != NULL)
			req->hdrs[keep++] = req->hdrs[i];
	req->n_hdrs = keep;
	free(req->out);
	req->out = NULL;
	req->out_len = 0;
	req->responded = false;
	if (srv->set.error_page != NULL)
		srv->set.error_page(req, status, srv->set.ctx);
	if (!req->responded) {
		const char *reason = MHD_get_reason_phrase_for((unsigned)status);
		char text[96];
		int n = snprintf(text, sizeof(text), "%d %s\n", status,
		                 reason != NULL && *reason != '\0' ? reason : "Error");

		http_send(req, status, "text/plain; charset=utf-8", text,
		          n > 0 && (size_t)n < sizeof(text) ? (size_t)n : 0);
		http_set_header(req, "Cache-Control", "no-store");
	}
	req->status = status;
}

/* ---- server internals ---- */

struct pool *
http_server_pool(struct http_server *srv)
{
	return srv->pool;
}

void
http_server_on_free(struct http_server *srv, void (*fn)(void *arg), void *arg)
{
	if (srv->n_cleanups == srv->cap_cleanups) {
		srv->cap_cleanups = srv->cap_cleanups == 0 ? 4 : srv->cap_cleanups * 2;
		srv->cleanups = xrealloc(srv->cleanups, srv->cap_cleanups * sizeof(*srv->cleanups));
	}
	srv->cleanups[srv->n_cleanups].fn = fn;
	srv->cleanups[srv->n_cleanups].arg = arg;
	srv->n_cleanups++;
}

static void
add_default_header(struct MHD_Response *resp, const struct http_req *req, const char *name,
                   const char *value)
{
	if (find_header(req, name) == NULL)
		MHD_add_response_header(resp, name, value);
}

static enum MHD_Result
queue_response(struct http_req *req)
{
	struct MHD_Response *resp;
	const struct resp_header *ct;
	struct buf csp;
	enum MHD_Result ret = MHD_NO;
	int status = req->status;

	if (status < 100 || status > 599) {
		log_error("http_bad_status", "path", req->path, NULL);
		http_send_error(req, 500);
		status = 500;
	}
	resp = MHD_create_response_from_buffer(req->out_len, req->out, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL)
		goto out;
	req->out = NULL; /* MHD owns it now */
	req->out_len = 0;

	for (size_t i = 0; i < req->n_hdrs; i++) {
		if (MHD_add_response_header(resp, req->hdrs[i].name, req->hdrs[i].value) != MHD_YES)
			log_warn("http_header_refused", "name", req->hdrs[i].name, NULL);
	}
	if (find_header(req, "Content-Security-Policy") == NULL) {
		buf_init(&csp, 4096);
		buf_addstr(&csp, HTTP_CSP_BASE);
		for (size_t i = 0; i < req->n_csp_origins; i++) {
			buf_addc(&csp, ' ');
			buf_addstr(&csp, req->csp_origins[i]);
		}
		if (req->n_csp_connect > 0) {
			buf_addstr(&csp, "; connect-src 'self'");
			for (size_t i = 0; i < req->n_csp_connect; i++) {
				buf_addc(&csp, ' ');
				buf_addstr(&csp, req->csp_connect[i]);
			}
		}
		MHD_add_response_header(resp, "Content-Security-Policy", csp.data);
		buf_free(&csp);
	}
	add_default_header(resp, req, "X-Content-Type-Options", "nosniff");
	add_default_header(resp, req, "Referrer-Policy", "no-referrer");
	add_default_header(resp, req, "X-Frame-Options", "DENY");
	add_default_header(resp, req, "Cross-Origin-Opener-Policy", "same-origin");
	if (http_is_https(req))
		add_default_header(resp, req, "Strict-Transport-Security", "max-age=31536000");
	ct = find_header(req, "Content-Type");
	if (ct != NULL && strncasecmp(ct->value, "text/html", 9) == 0)
		add_default_header(resp, req, "Cache-Control", "no-store");

	ret = MHD_queue_response(req->conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
out:
	return ret;
}

static enum http_method
method_from(const char *m)
{
	if (m == NULL)
		return HTTP_OTHER;
	if (strcmp(m, "GET") == 0)
		return HTTP_GET;
	if (strcmp(m, "HEAD") == 0)
		return HTTP_HEAD;
	if (strcmp(m, "POST") == 0)
		return HTTP_POST;
	return HTTP_OTHER;
}

/* Splits the raw request-target into path and query and decodes the path.
 * Returns 0 or the HTTP status to answer with. */
static int
parse_target(struct http_req *req)
{
	const char *uri = req->raw_uri, *q, *p;
	size_t plen;
	char *path;

	/* absolute-form (RFC 7230 §5.3.2): drop scheme and authority */
	if (strncasecmp(uri, "http://", 7) == 0 || strncasecmp(uri, "https://", 8) == 0) {
		uri = strstr(uri, "://") + 3;
		uri += strcspn(uri, "/?");
		if (*uri == '\0')
			uri = "/";
		else if (*uri == '?')
			return 400;
	}
	if (uri[0] != '/' || strchr(uri, '#') != NULL)
		return 400;
	q = strchr(uri, '?');
	plen = q != NULL ? (size_t)(q - uri) : strlen(uri);
	if (plen > HTTP_MAX_PATH)
		return 414;
	if (q != NULL) {
		req->raw_query = q + 1;
		req->raw_query_len = strlen(q + 1);
		if (req->raw_query_len > HTTP_MAX_QUERY)
			return 414;
	}
	for (size_t i = 0; i < plen; i++)
		if ((unsigned char)uri[i] <= 0x20 || (unsigned char)uri[i] == 0x7f)
			return 400;
	if (parse_pct_decode(req->pool, uri, plen, false, &path) != 0)
		return 400;
	for (p = path; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
			return 400;
	/* No "." or ".." segment, also after decoding (%2e%2e, ..%2f). */
	for (p = path; p != NULL; p = strchr(p + 1, '/')) {
		const char *s = p + 1;
		size_t n = strcspn(s, "/");

		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return 400;
	}
	req->path = path;
	return 0;
}

/* The routes for req's path: exact beats prefix, the longest prefix wins.
 * Returns the one serving the method (or NULL) and the union of methods
 * the path allows. */
static const struct route *
find_route(const struct http_server *srv, struct http_req *req, unsigned *allowed_r)
{
	const struct route *best = NULL, *hit = NULL;
	size_t best_score = 0;
	unsigned want = req->method == HTTP_HEAD ? (HTTP_GET | HTTP_HEAD) : (unsigned)req->method;
	size_t plen = strlen(req->path);

	*allowed_r = 0;
	for (size_t i = 0; i < srv->n_routes; i++) {
		const struct route *r = &srv->routes[i];
		size_t score;

		if (!r->prefix && r->len == plen && memcmp(r->path, req->path, plen) == 0)
			score = SIZE_MAX;
		else if (r->prefix && plen >= r->len && memcmp(r->path, req->path, r->len) == 0)
			score = r->len;
		else
			continue;
		if (best == NULL || score > best_score) {
			best = r;
			best_score = score;
		}
	}
	if (best == NULL)
		return NULL;
	for (size_t i = 0; i < srv->n_routes; i++) {
		const struct route *r = &srv->routes[i];

		if (r->prefix != best->prefix || r->len != best->len ||
		    memcmp(r->path, best->path, r->len) != 0)
			continue;
		*allowed_r |= r->methods;
		if (hit == NULL && (r->methods & want) != 0)
			hit = r;
	}
	if (hit != NULL && hit->prefix)
		req->rest = req->path + hit->len;
	return hit;
}

static void
set_allow(struct http_req *req, unsigned allowed)
{
	char allow[32] = "";

	if (allowed & HTTP_GET)
		snprintf(allow, sizeof(allow), "GET, HEAD");
	else if (allowed & HTTP_HEAD)
		snprintf(allow, sizeof(allow), "HEAD");
	if (allowed & HTTP_POST)
		snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%sPOST",
		         allow[0] != '\0' ? ", " : "");
	http_set_header(req, "Allow", allow);
}

static enum MHD_Result
dispatch(struct http_req *req)
{
	struct http_server *srv = req->srv;
	const struct route *r;
	unsigned allowed = 0;
	int err;

	req->route_pat = "(none)";
	err = parse_target(req);
	if (srv->set.on_request != NULL)
		srv->set.on_request(req, srv->set.ctx);
	if (err == 0 && req->too_large)
		err = 413;
	if (err == 0) {
		http_query_all(req);
		http_form_all(req);
		if (req->query_err != 0 || req->form_err != 0)
			err = 400;
	}
	if (err != 0) {
		http_send_error(req, err);
		goto out;
	}
	r = find_route(srv, req, &allowed);
	req->route_pat = r != NULL ? r->path : "(none)";
	if (r == NULL && allowed == 0) {
		http_send_error(req, 404);
	} else if (r == NULL) {
		http_send_error(req, 405);
		set_allow(req, allowed);
	} else {
		r->fn(req, r->ctx);
		defer_unreserve(req);
		if (defer_wait(req))
			return MHD_YES;
		if (!req->responded) {
			log_error("http_no_response", "path", req->path, NULL);
			http_send_error(req, 500);
		}
	}
out:
	return queue_response(req);
}

/* ---- libmicrohttpd callbacks ---- */

static void *
uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
	return req_new(cls, uri);
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
	struct http_req *req = *con_cls;

	/* the one place every answered request passes, however it was answered */
	if (req != NULL && req->route_pat != NULL)
		metrics_http_request(req->route_pat, req->status, metrics_now_ns() - req->t0);
	req_free(*con_cls);
	*con_cls = NULL;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct http_req *req = *con_cls;
	enum MHD_Result ret = MHD_YES;

	if (req == NULL) {
		req = req_new(srv, url);
		*con_cls = req;
	}
	if (!req->started) {
		const char *cl;

		req->started = true;
		req->conn = conn;
		req->method = method_from(method);
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		if (cl != NULL) {
			char *end;
			unsigned long long n;

			errno = 0;
			n = strtoull(cl, &end, 10);
			if (errno == 0 && end != cl && *end == '\0' && n > srv->max_body) {
				/* Answer before reading the body; MHD then closes. */
				req->too_large = true;
				ret = dispatch(req);
			}
		}
		goto out;
	}
	if (*upload_data_size > 0) {
		if (!req->too_large && buf_add(&req->body, upload_data, *upload_data_size) != 0) {
			req->too_large = true;
			buf_free_secret(&req->body);
			buf_init(&req->body, srv->max_body);
		}
		if (req->too_large) {
			/* A chunked body beyond the limit: read on to answer 413,
			 * but not forever. */
			req->discarded += *upload_data_size;
			if (req->discarded > 4 * srv->max_body + 65536) {
				ret = MHD_NO;
				goto out;
			}
		}
		*upload_data_size = 0;
		goto out;
	}
	if (req->deferral != NULL) {
		/* resumed: the deferred work has run */
		if (!defer_wait(req)) {
			if (!req->responded) {
				log_error("http_no_response", "path", req->path, NULL);
				http_send_error(req, 500);
			}
			ret = queue_response(req);
		}
		goto out;
	}
	ret = dispatch(req);
out:
	return ret;
}

static void __attribute__((format(printf, 2, 0))) mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warn("http_mhd", "message", msg, NULL);
}

/* ---- server ---- */

struct http_server *
http_server_new(const struct http_server_settings *settings)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));

	srv->set = *settings;
	srv->pool = pool_new(0);
	srv->set.listen = pool_strdup(srv->pool, settings->listen);
	srv->set.trusted_proxies = NULL;
	if (settings->trust_proxy) {
		const char *list = settings->trusted_proxies, *why = NULL;

		if (list == NULL || list[0] == '\0')
			list = HTTP_DEFAULT_PROXIES;
		if (metrics_allow_parse(list, &srv->proxies, &why) < 0) {
			/* config_load refuses this first; here: trust nobody */
			log_error("http_trusted_proxies_invalid", "reason", why, NULL);
			memset(&srv->proxies, 0, sizeof(srv->proxies));
		}
	}
	srv->max_body = settings->max_body > 0 ? settings->max_body : HTTP_DEFAULT_MAX_BODY;
	pthread_mutex_init(&srv->defer_lock, NULL);
	return srv;
}

void
http_route(struct http_server *srv, unsigned method_mask, const char *path,
           http_handler_fn *handler, void *ctx)
{
	struct route *r;
	size_t len = strlen(path);

	if (srv->n_routes == srv->cap_routes) {
		srv->cap_routes = srv->cap_routes == 0 ? 16 : srv->cap_routes * 2;
		srv->routes = xrealloc(srv->routes, srv->cap_routes * sizeof(*srv->routes));
	}
	r = &srv->routes[srv->n_routes++];
	r->path = pool_strdup(srv->pool, path);
	r->len = len;
	/* "/" alone is the home page, not a catch-all. */
	r->prefix = len > 1 && path[len - 1] == '/';
	r->methods = method_mask;
	r->fn = handler;
	r->ctx = ctx;
}

/* Fills ss from srv->set.listen; NULL or "" is 127.0.0.1, "*" every
 * address (IPv6 and IPv4). */
static int
listen_addr(const struct http_server *srv, struct sockaddr_storage *ss, bool *ipv6_r, bool *dual_r)
{
	const char *a = srv->set.listen;
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)ss;
	char host[INET6_ADDRSTRLEN + 2];
	size_t n;
	int ret = ISSO_ERR_INVALID;

	memset(ss, 0, sizeof(*ss));
	*ipv6_r = false;
	*dual_r = false;
	if (a == NULL || *a == '\0' || strcmp(a, "localhost") == 0)
		a = "127.0.0.1";
	if (strcmp(a, "*") == 0) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons((uint16_t)srv->set.port);
		*ipv6_r = true;
		*dual_r = true;
		ret = 0;
		goto out;
	}
	if (inet_pton(AF_INET, a, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)srv->set.port);
		ret = 0;
		goto out;
	}
	n = strlen(a);
	if (n >= 2 && a[0] == '[' && a[n - 1] == ']' && n - 2 < sizeof(host)) {
		memcpy(host, a + 1, n - 2);
		host[n - 2] = '\0';
		a = host;
	}
	if (inet_pton(AF_INET6, a, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)srv->set.port);
		*ipv6_r = true;
		ret = 0;
	}
out:
	return ret;
}

int
http_server_start(struct http_server *srv, const char **error_r)
{
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *di;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
	                     MHD_ALLOW_SUSPEND_RESUME;
	unsigned int threads, defer_threads, ncpu;
	bool ipv6, dual;
	int ret = ISSO_ERR_IO;

	if (error_r != NULL)
		*error_r = NULL;
	if (srv->daemon != NULL) {
		if (error_r != NULL)
			*error_r = "server already started";
		goto out;
	}
	if (srv->set.port < 0 || srv->set.port > 65535 ||
	    listen_addr(srv, &ss, &ipv6, &dual) != 0) {
		if (error_r != NULL)
			*error_r = "invalid listen address or port";
		goto out;
	}
	if (ipv6)
		flags |= dual ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
	ncpu = isso_cpu_count();
	threads = srv->set.threads > 0 ? (unsigned)srv->set.threads : ncpu < 256 ? ncpu : 256;
	if (srv->set.defer_queue > 0) {
		/* By default one core is left to the request threads: a storm
		 * of password logins then never takes the whole machine from
		 * token refreshes, discovery and every other page. */
		defer_threads = srv->set.defer_threads > 0 ? srv->set.defer_threads
		                : ncpu > 64                ? 63
		                : ncpu > 1                 ? ncpu - 1
		                                           : 1;
		if (worker_pool_new(defer_threads, srv->set.defer_queue, &srv->defer_pool) < 0) {
			if (error_r != NULL)
				*error_r = "cannot start the work pool";
			goto out;
		}
	}
	srv->daemon = MHD_start_daemon(
	    flags, (uint16_t)srv->set.port, NULL, NULL, access_cb, srv, MHD_OPTION_EXTERNAL_LOGGER,
	    mhd_log_cb, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0u, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)HTTP_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)HTTP_TIMEOUT_SECONDS, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)HTTP_CONN_MEMORY_LIMIT, MHD_OPTION_URI_LOG_CALLBACK, uri_cb, srv,
	    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, srv, MHD_OPTION_END);
	if (srv->daemon == NULL) {
		if (error_r != NULL)
			*error_r = "cannot start the HTTP server (address in use?)";
		goto out;
	}
	di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = di != NULL ? di->port : srv->set.port;
	ret = 0;
out:
	return ret;
}

int
http_server_port(const struct http_server *srv)
{
	return srv->port;
}

void
http_server_free(struct http_server *srv)
{
	if (srv == NULL)
		return;
	/* No new deferrals; the queued ones run, resuming their requests,
	 * before the daemon may stop (it refuses to with suspended ones). */
	pthread_mutex_lock(&srv->defer_lock);
	srv->defer_stopping = true;
	pthread_mutex_unlock(&srv->defer_lock);
	worker_pool_free(srv->defer_pool);
	srv->defer_pool = NULL;
	if (srv->daemon != NULL)
		MHD_stop_daemon(srv->daemon);
	pthread_mutex_destroy(&srv->defer_lock);
	for (size_t i = srv->n_cleanups; i > 0; i--)
		srv->cleanups[i - 1].fn(srv->cleanups[i - 1].arg);
	free(srv->cleanups);
	free(srv->routes);
	pool_free(srv->pool);
	free(srv);
}
