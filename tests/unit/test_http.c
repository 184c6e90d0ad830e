/* Tests for the web layer: a real server on a loopback port, spoken to
 * over plain sockets so that keep-alive and exact headers are visible. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/csrf.h"
#include "http/http-private.h"
#include "http/http.h"
#include "lib/isso.h"
#include "lib/secret.h"

#define CSP_BASE                                                                                   \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

static struct http_server *srv;        /* plain, no error page */
static struct http_server *proxy_srv;  /* trust_proxy, custom error page */
static struct http_server *secure_srv; /* secure_cookies: an https issuer */
static int port, proxy_port, secure_port;
static struct secret_keys keys;
static char static_dir[64];

/* ---- handlers ---- */

static void
h_hello(struct http_req *req, void *ctx)
{
	http_send(req, 200, "text/plain; charset=utf-8", "hello", 5);
}

static void
h_home(struct http_req *req, void *ctx)
{
	http_send(req, 200, "text/html; charset=utf-8", "<p>home</p>", 11);
}

static void
h_form(struct http_req *req, void *ctx)
{
	const char *x = http_form(req, "x"), *y = http_form(req, "y");
	char *out = pool_printf(http_pool(req), "x=%s n=%zu y=%s p=%s", x != NULL ? x : "(null)",
	                        http_param_count(req, "x"), y != NULL ? y : "(null)",
	                        http_param(req, "x") != NULL ? http_param(req, "x") : "(null)");

	http_send(req, 200, "text/plain", out, strlen(out));
}

static void
h_query(struct http_req *req, void *ctx)
{
	const char *a = http_query(req, "a");
	char *out = pool_printf(http_pool(req), "a=%s n=%zu total=%zu", a != NULL ? a : "(null)",
	                        http_param_count(req, "a"), http_query_all(req)->n);

	http_send(req, 200, "text/plain", out, strlen(out));
}

static void
h_prefix(struct http_req *req, void *ctx)
{
	char *out =
	    pool_printf(http_pool(req), "path=%s rest=%s", http_path(req), http_path_rest(req));

	http_send(req, 200, "text/plain", out, strlen(out));
}

static void
h_cookies(struct http_req *req, void *ctx)
{
	const char *c = http_cookie(req, "in");
	char *out = pool_printf(http_pool(req), "in=%s", c != NULL ? c : "(null)");

	http_set_cookie(req, "sid", "abc", 3600, HTTP_COOKIE_HTTPONLY);
	http_set_cookie(req, "lang", "en", -1, HTTP_COOKIE_LAX);
	http_set_cookie(req, "gone", "x", 0, HTTP_COOKIE_NONE);
	http_set_cookie(req, "lang", "zh-TW", -1, HTTP_COOKIE_LAX); /* replaces */
	http_set_cookie(req, "bad", "a;b", -1, 0);                  /* refused */
	http_send(req, 200, "text/plain", out, strlen(out));
}

static void
h_json(struct http_req *req, void *ctx)
{
	http_send_json(req, 201, json_pack("{s:i,s:s}", "a", 1, "b", "中"));
}

static void
h_redirect(struct http_req *req, void *ctx)
{
	http_csp_allow_form_action(req, "https://rp.example");
	http_csp_allow_form_action(req, "bad origin;");
	http_csp_allow_connect(req, "ws://127.0.0.1:7777");
	http_csp_allow_connect(req, "ws://127.0.0.1:7777");
	http_csp_allow_connect(req, "ws://x' 'unsafe-inline'");
	http_redirect(req, 303, "https://rp.example/cb?code=1");
}

static void
h_header(struct http_req *req, void *ctx)
{
	http_set_header(req, "X-Test", "one");
	http_set_header(req, "x-test", "two");
	http_set_header(req, "X-Bad", "a\r\nInjected: yes");
	http_set_header(req, "X-Frame-Options", "SAMEORIGIN");
	http_send(req, 200, "text/plain", "h", 1);
}

static void
h_noresp(struct http_req *req, void *ctx)
{
}

static void
h_info(struct http_req *req, void *ctx)
{
	size_t blen;
	const char *body = http_body(req, &blen);
	char *out = pool_printf(http_pool(req), "addr=%s https=%d locale=%s body=%zu%s",
	                        http_remote_addr(req), http_is_https(req), http_locale(req), blen,
	                        body == NULL ? " null" : "");

	http_send(req, 200, "text/plain", out, strlen(out));
}

static void
h_csrf_get(struct http_req *req, void *ctx)
{
	const char *t1 = csrf_token(req, &keys, "login");
	const char *t2 = csrf_token(req, &keys, "login");
	const char *t3 = csrf_token(req, &keys, "other");

	/* no cmocka asserts here: this runs on a server thread */
	if (strcmp(t1, t2) != 0 || strcmp(t1, t3) == 0)
		http_send(req, 500, "text/plain", "mismatch", 8);
	else
		http_send(req, 200, "text/plain", t1, strlen(t1));
}

static void
h_csrf_post(struct http_req *req, void *ctx)
{
	bool ok = csrf_check(req, &keys, "login");

	http_send(req, ok ? 200 : 403, "text/plain", ok ? "ok" : "no", 2);
}

static void
on_request(struct http_req *req, void *ctx)
{
	const char *l = http_header(req, "X-Locale");

	if (l != NULL)
		http_set_locale(req, l);
}

static void
error_page(struct http_req *req, int status, void *ctx)
{
	char *out = pool_printf(http_pool(req), "custom %d %s", status, http_locale(req));

	http_send(req, status, "text/html; charset=utf-8", out, strlen(out));
}

/* ---- a tiny HTTP/1.1 client ---- */

struct conn {
	int fd;
	char buf[1 << 16];
	size_t len;
};

struct resp {
	int status;
	char head[16384];
	char body[1 << 16];
	size_t body_len;
	long content_length;
};

static void
conn_open(struct conn *c, int p)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->len = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
}

static void
conn_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
}

static void
conn_send(struct conn *c, const char *data, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);

		if (w <= 0)
			return; /* the server may close early (413) */
		data += w;
		n -= (size_t)w;
	}
}

/* Reads more data (5 s timeout); false on EOF or timeout. */
static bool
conn_fill(struct conn *c)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	ssize_t n;

	if (c->len == sizeof(c->buf) || poll(&pfd, 1, 5000) != 1)
		return false;
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n <= 0)
		return false;
	c->len += (size_t)n;
	return true;
}

static void
conn_consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* Header value in r->head (first occurrence after skip matches), or NULL. */
static const char *
resp_header(const struct resp *r, const char *name, int skip, char *out, size_t outsize)
{
	const char *p = r->head;
	size_t n = strlen(name);

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1, *e;

			if (skip-- > 0)
				continue;
			while (*v == ' ')
				v++;
			e = strstr(v, "\r\n");
			if (e == NULL || (size_t)(e - v) >= outsize)
				return NULL;
			memcpy(out, v, (size_t)(e - v));
			out[e - v] = '\0';
			return out;
		}
	}
	return NULL;
}

static int
resp_header_count(const struct resp *r, const char *name)
{
	char tmp[4096];
	int n = 0;

	while (resp_header(r, name, n, tmp, sizeof(tmp)) != NULL)
		n++;
	return n;
}

/* Reads one response; a HEAD response has no body whatever its
 * Content-Length says. Returns false when the connection ended first. */
static bool
conn_read(struct conn *c, struct resp *r, bool head)
{
	char *end, cl[32];
	size_t hlen;

	memset(r, 0, sizeof(*r));
	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
		if (!conn_fill(c))
			return false;
	hlen = (size_t)(end - c->buf) + 2;
	assert_true(hlen < sizeof(r->head));
	memcpy(r->head, c->buf, hlen);
	r->head[hlen] = '\0';
	conn_consume(c, hlen + 2);
	assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
	r->content_length = -1;
	if (resp_header(r, "Content-Length", 0, cl, sizeof(cl)) != NULL)
		r->content_length = strtol(cl, NULL, 10);
	if (head || r->status == 304 || r->status == 204)
		return true;
	assert_true(r->content_length >= 0);
	assert_true((size_t)r->content_length < sizeof(r->body));
	while (c->len < (size_t)r->content_length)
		if (!conn_fill(c))
			return false;
	memcpy(r->body, c->buf, (size_t)r->content_length);
	r->body_len = (size_t)r->content_length;
	r->body[r->body_len] = '\0';
	conn_consume(c, r->body_len);
	return true;
}

/* One request on a fresh connection. */
static void
request(int p, const char *raw, struct resp *r)
{
	struct conn *c = malloc(sizeof(*c));

	conn_open(c, p);
	conn_send(c, raw, strlen(raw));
	assert_true(conn_read(c, r, strncmp(raw, "HEAD ", 5) == 0));
	conn_close(c);
	free(c);
}

static struct resp *
get(const char *target)
{
	static struct resp r;
	char raw[16384];

	snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
	request(port, raw, &r);
	return &r;
}

static void
assert_header(const struct resp *r, const char *name, const char *want)
{
	char v[4096];

	if (resp_header(r, name, 0, v, sizeof(v)) == NULL)
		fail_msg("no %s header in:\n%s", name, r->head);
	assert_string_equal(v, want);
}

static void
assert_no_header(const struct resp *r, const char *name)
{
	char v[4096];

	if (resp_header(r, name, 0, v, sizeof(v)) != NULL)
		fail_msg("unexpected %s: %s", name, v);
}

static void
assert_security_headers(const struct resp *r)
{
	assert_header(r, "Content-Security-Policy", CSP_BASE);
	assert_header(r, "X-Content-Type-Options", "nosniff");
	assert_header(r, "Referrer-Policy", "no-referrer");
	assert_header(r, "X-Frame-Options", "DENY");
	assert_header(r, "Cross-Origin-Opener-Policy", "same-origin");
	assert_no_header(r, "Strict-Transport-Security");
}

/* ---- tests ---- */

static void
test_route_200(void **state)
{
	struct resp *r = get("/hello");

	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "hello");
	assert_header(r, "Content-Type", "text/plain; charset=utf-8");
	assert_security_headers(r);
	assert_no_header(r, "Cache-Control");

	r = get("/");
	assert_int_equal(r->status, 200);
	assert_header(r, "Cache-Control", "no-store");
	/* "/" is exact, not a catch-all */
	r = get("/nothing");
	assert_int_equal(r->status, 404);
	assert_string_equal(r->body, "404 Not Found\n");
	assert_security_headers(r);
}

static void
test_404_405(void **state)
{
	struct resp r;

	request(port, "POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	assert_header(&r, "Allow", "GET, HEAD");
	assert_security_headers(&r);

	request(port, "DELETE /form HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	assert_header(&r, "Allow", "POST");

	request(port, "GET /form HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	assert_int_equal(r.status, 405);

	assert_int_equal(get("/hello/")->status, 404);
	assert_int_equal(get("/hell")->status, 404);
	assert_int_equal(get("/hello2")->status, 404);
}

static void
test_head(void **state)
{
	struct conn *c = malloc(sizeof(*c));
	struct resp *r = malloc(sizeof(*r));
	static const char reqs[] = "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"
	                           "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";

	conn_open(c, port);
	conn_send(c, reqs, sizeof(reqs) - 1);
	assert_true(conn_read(c, r, true));
	assert_int_equal(r->status, 200);
	assert_int_equal(r->content_length, 5);
	/* had the HEAD answer carried a body, this would read "hello" as a
	 * status line */
	assert_true(conn_read(c, r, false));
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "hello");
	conn_close(c);
	free(c);
	free(r);
}

static void
test_keep_alive(void **state)
{
	struct conn *c = malloc(sizeof(*c));
	struct resp *r = malloc(sizeof(*r));
	static const char get1[] = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
	static const char post[] = "POST /form HTTP/1.1\r\nHost: t\r\n"
	                           "Content-Type: application/x-www-form-urlencoded\r\n"
	                           "Content-Length: 3\r\n\r\nx=1";

	conn_open(c, port);
	for (int i = 0; i < 3; i++) {
		conn_send(c, get1, sizeof(get1) - 1);
		assert_true(conn_read(c, r, false));
		assert_int_equal(r->status, 200);
		assert_string_equal(r->body, "hello");
		assert_no_header(r, "Connection");
		conn_send(c, post, sizeof(post) - 1);
		assert_true(conn_read(c, r, false));
		assert_int_equal(r->status, 200);
		assert_string_equal(r->body, "x=1 n=1 y=(null) p=1");
	}
	/* errors keep the connection too */
	conn_send(c, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", 31);
	assert_true(conn_read(c, r, false));
	assert_int_equal(r->status, 404);
	conn_send(c, get1, sizeof(get1) - 1);
	assert_true(conn_read(c, r, false));
	assert_int_equal(r->status, 200);
	conn_close(c);
	free(c);
	free(r);
}

static void
test_body_limit(void **state)
{
	struct resp *r = malloc(sizeof(*r));
	char *raw = malloc(8192);
	int n;

	/* Content-Length known: answered before the body is read */
	n = snprintf(raw, 8192,
	             "POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: "
	             "application/x-www-form-urlencoded\r\nContent-Length: 2000\r\n\r\n");
	memset(raw + n, 'a', 2000);
	raw[n + 2000] = '\0';
	request(port, raw, r);
	assert_int_equal(r->status, 413);
	assert_string_equal(r->body, "413 Content Too Large\n");
	assert_security_headers(r);

	/* chunked: found out while reading */
	n = snprintf(raw, 8192,
	             "POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: "
	             "application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
	             "7d0\r\n");
	memset(raw + n, 'a', 2000);
	n += 2000;
	n += snprintf(raw + n, (size_t)(8192 - n), "\r\n0\r\n\r\n");
	request(port, raw, r);
	assert_int_equal(r->status, 413);

	/* exactly at the limit: fine */
	n = snprintf(raw, 8192,
	             "POST /info HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
	             "Content-Length: 1024\r\n\r\n");
	memset(raw + n, 'a', 1024);
	raw[n + 1024] = '\0';
	request(port, raw, r);
	assert_int_equal(r->status, 200);
	assert_non_null(strstr(r->body, "body=1024"));
	free(raw);
	free(r);
}

static void
test_bad_target(void **state)
{
	static const char *const bad400[] = {
	    "/hello?a=%zz", "/hello?a=%00", "/hello?a=%C3%28", "/hello?a=%",
	    "/p/../hello",  "/p/%2e%2e/x",  "/p/..%2fx",       "/p/./x",
	    "/p/a%00b",     "/p/%C0%AF",    "/p/a%0Ab",        "/p/a%5Cb",
	};
	char *target = malloc(12000);
	struct resp *r;

	for (size_t i = 0; i < sizeof(bad400) / sizeof(bad400[0]); i++) {
		r = get(bad400[i]);
		if (r->status != 400)
			fail_msg("%s: %d", bad400[i], r->status);
		assert_string_equal(r->body, "400 Bad Request\n");
	}
	/* 65 pairs */
	memcpy(target, "/query?", 7);
	for (int i = 0; i < 65; i++)
		memcpy(target + 7 + 4 * i, "a=1&", 4);
	target[7 + 4 * 65] = '\0';
	assert_int_equal(get(target)->status, 400);
	target[7 + 4 * 64] = '\0';
	r = get(target);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "a=1 n=64 total=64");

	/* query over 8 KiB, path over 2048 */
	memset(target, 'b', 11000);
	memcpy(target, "/query?a=", 9);
	target[9000] = '\0';
	assert_int_equal(get(target)->status, 414);
	target[0] = '/';
	memset(target + 1, 'c', 2100);
	target[2101] = '\0';
	assert_int_equal(get(target)->status, 414);
	free(target);

	r = get("/query?a=x&a=y&b=%E4%B8%AD+1");
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "a=x n=2 total=3");
}

static void
test_prefix(void **state)
{
	struct resp *r = get("/p/a%20b/c.txt");

	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "path=/p/a b/c.txt rest=a b/c.txt");
	r = get("/p/");
	assert_string_equal(r->body, "path=/p/ rest=");
	/* the longer prefix wins, exact beats prefix */
	r = get("/p/deeper/x");
	assert_string_equal(r->body, "deeper");
	r = get("/p/exact");
	assert_string_equal(r->body, "hello");
	assert_int_equal(get("/p")->status, 404);
}

static void
test_form(void **state)
{
	struct resp r;

	request(
	    port,
	    "POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded; "
	    "charset=UTF-8\r\nContent-Length: 27\r\n\r\nx=a+b&x=2&y=%E4%B8%AD&&z%3D",
	    &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "x=a b n=2 y=中 p=a b");

	/* other content types are not parsed as forms */
	request(port,
	        "POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
	        "Content-Length: 3\r\n\r\nx=1",
	        &r);
	assert_string_equal(r.body, "x=(null) n=0 y=(null) p=(null)");
	request(
	    port,
	    "POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencodedx\r\n"
	    "Content-Length: 3\r\n\r\nx=1",
	    &r);
	assert_string_equal(r.body, "x=(null) n=0 y=(null) p=(null)");
	/* malformed forms and foreign charsets never reach the handler */
	request(
	    port,
	    "POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n"
	    "Content-Length: 6\r\n\r\nx=%zz1",
	    &r);
	assert_int_equal(r.status, 400);
	request(
	    port,
	    "POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded; "
	    "charset=big5\r\nContent-Length: 3\r\n\r\nx=1",
	    &r);
	assert_int_equal(r.status, 400);
	/* the query of a POST is not its form */
	request(port,
	        "POST /form?x=q HTTP/1.1\r\nHost: t\r\nContent-Type: "
	        "application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\ny=1",
	        &r);
	assert_string_equal(r.body, "x=(null) n=0 y=1 p=(null)");
}

static void
test_cookies(void **state)
{
	struct resp r;
	char v[512];

	request(port, "GET /cookies HTTP/1.1\r\nHost: t\r\nCookie: a=1; in=\"yes\"\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "in=yes");
	assert_int_equal(resp_header_count(&r, "Set-Cookie"), 3);
	assert_string_equal(resp_header(&r, "Set-Cookie", 0, v, sizeof(v)),
	                    "sid=abc; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict");
	assert_string_equal(resp_header(&r, "Set-Cookie", 1, v, sizeof(v)),
	                    "lang=zh-TW; Path=/; SameSite=Lax");
	assert_string_equal(resp_header(&r, "Set-Cookie", 2, v, sizeof(v)),
	                    "gone=x; Path=/; Max-Age=0; SameSite=None; Secure");
}

/* The Set-Cookie builder on its own. */
static void
test_cookie_format(void **state)
{
	struct pool *p = pool_new(4096);

	assert_string_equal(
	    http_cookie_format(p, "sid", "abc", -1, HTTP_COOKIE_HTTPONLY, false, false),
	    "sid=abc; Path=/; HttpOnly; SameSite=Strict");
	assert_string_equal(http_cookie_format(p, "sid", "abc", 60,
	                                       HTTP_COOKIE_HTTPONLY | HTTP_COOKIE_LAX, true, false),
	                    "sid=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
	/* __Host-: Secure, Path=/, no Domain, whatever secure says */
	assert_string_equal(http_cookie_format(p, "sid", "abc", 0,
	                                       HTTP_COOKIE_HTTPONLY | HTTP_COOKIE_LAX, false, true),
	                    "__Host-sid=abc; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure");
	assert_string_equal(http_cookie_format(p, "b", "1", -1, 0, true, true),
	                    "__Host-b=1; Path=/; SameSite=Strict; Secure");
	/* SameSite=None always goes with Secure */
	assert_string_equal(http_cookie_format(p, "x", "1", -1, HTTP_COOKIE_NONE, false, false),
	                    "x=1; Path=/; SameSite=None; Secure");
	assert_null(
	    strstr(http_cookie_format(p, "x", "1", -1, HTTP_COOKIE_LAX, true, true), "Domain"));
	/* what cannot be a cookie */
	assert_null(http_cookie_format(p, "a b", "1", -1, 0, true, true));
	assert_null(http_cookie_format(p, "a=b", "1", -1, 0, false, false));
	assert_null(http_cookie_format(p, "", "1", -1, 0, false, false));
	assert_null(http_cookie_format(p, "a", "1;Domain=evil", -1, 0, false, false));
	assert_null(http_cookie_format(p, "a", "x\r\nSet-Cookie: y=1", -1, 0, false, false));
	assert_null(http_cookie_format(p, "a", "\"q\"", -1, 0, false, false));
	pool_free(p);
}

/* An https issuer (secure_cookies): Secure and __Host- on every cookie,
 * even on a request that does not say it came over https, and only the
 * __Host- cookie is read back. */
static void
test_secure_cookies(void **state)
{
	struct resp r;
	char v[512];

	request(secure_port,
	        "GET /cookies HTTP/1.1\r\nHost: t\r\nCookie: in=plain; __Host-in=host\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "in=host");
	assert_int_equal(resp_header_count(&r, "Set-Cookie"), 3);
	assert_string_equal(
	    resp_header(&r, "Set-Cookie", 0, v, sizeof(v)),
	    "__Host-sid=abc; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict; Secure");
	assert_string_equal(resp_header(&r, "Set-Cookie", 1, v, sizeof(v)),
	                    "__Host-lang=zh-TW; Path=/; SameSite=Lax; Secure");
	assert_string_equal(resp_header(&r, "Set-Cookie", 2, v, sizeof(v)),
	                    "__Host-gone=x; Path=/; Max-Age=0; SameSite=None; Secure");
	/* a cookie without the prefix (set over http, or by a sibling host)
	 * is not the one */
	request(secure_port, "GET /cookies HTTP/1.1\r\nHost: t\r\nCookie: in=plain\r\n\r\n", &r);
	assert_string_equal(r.body, "in=(null)");
}

/* The CSRF pair works through the prefixed cookie. */
static void
test_secure_csrf(void **state)
{
	struct resp r;
	char cookie[256], token[64], raw[1024], *semi;

	request(secure_port, "GET /csrf HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	assert_non_null(resp_header(&r, "Set-Cookie", 0, cookie, sizeof(cookie)));
	assert_int_equal(strncmp(cookie, "__Host-isso_b=", 14), 0);
	assert_non_null(strstr(cookie, "; HttpOnly; SameSite=Lax; Secure"));
	semi = strchr(cookie, ';');
	*semi = '\0';
	assert_int_equal(strlen(r.body), 43);
	memcpy(token, r.body, 44);
	snprintf(raw, sizeof(raw),
	         "POST /csrf HTTP/1.1\r\nHost: t\r\nCookie: %s\r\nContent-Type: "
	         "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\ncsrf=%s",
	         cookie, strlen(token) + 5, token);
	request(secure_port, raw, &r);
	assert_int_equal(r.status, 200);
	/* the same browser id without the prefix is refused */
	snprintf(raw, sizeof(raw),
	         "POST /csrf HTTP/1.1\r\nHost: t\r\nCookie: %s\r\nContent-Type: "
	         "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\ncsrf=%s",
	         cookie + 7, strlen(token) + 5, token);
	request(secure_port, raw, &r);
	assert_int_equal(r.status, 403);
}

static void
test_json_redirect_headers(void **state)
{
	struct resp *r = get("/json");
	char v[512];

	assert_int_equal(r->status, 201);
	assert_string_equal(r->body, "{\"a\":1,\"b\":\"中\"}");
	assert_header(r, "Content-Type", "application/json; charset=utf-8");
	assert_header(r, "Cache-Control", "no-store");
	assert_header(r, "Pragma", "no-cache");

	r = get("/redirect");
	assert_int_equal(r->status, 303);
	assert_header(r, "Location", "https://rp.example/cb?code=1");
	assert_header(r, "Content-Security-Policy",
	              CSP_BASE " https://rp.example; connect-src 'self' ws://127.0.0.1:7777");

	r = get("/header");
	assert_int_equal(resp_header_count(r, "X-Test"), 1);
	assert_header(r, "X-Test", "two");
	assert_no_header(r, "X-Bad");
	assert_no_header(r, "Injected");
	assert_header(r, "X-Frame-Options", "SAMEORIGIN");
	assert_int_equal(resp_header_count(r, "X-Frame-Options"), 1);

	r = get("/noresp");
	assert_int_equal(r->status, 500);
	assert_string_equal(r->body, "500 Internal Server Error\n");
	(void)v;
}

static void
test_info_and_locale(void **state)
{
	struct resp r;

	request(port,
	        "GET /info HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 1.2.3.4\r\n"
	        "X-Forwarded-Proto: https\r\n\r\n",
	        &r);
	assert_string_equal(r.body, "addr=127.0.0.1 https=0 locale=zh-TW body=0 null");
	assert_no_header(&r, "Strict-Transport-Security");

	request(port, "GET /info HTTP/1.1\r\nHost: t\r\nX-Locale: en\r\n\r\n", &r);
	assert_string_equal(r.body, "addr=127.0.0.1 https=0 locale=en body=0 null");
}

static void add_routes(struct http_server *s);

/* Starts a trust_proxy server believing only the proxies in list and
 * asks it, from loopback, for /info with X-Forwarded-For and -Proto. */
static void
info_via_proxy_list(const char *list, struct resp *r)
{
	struct http_server_settings set = {
	    .listen = "127.0.0.1",
	    .threads = 1,
	    .max_body = 1024,
	    .on_request = on_request,
	    .trust_proxy = true,
	    .trusted_proxies = list,
	};
	struct http_server *s = http_server_new(&set);
	const char *err = NULL;

	add_routes(s);
	if (http_server_start(s, &err) != 0)
		fail_msg("start: %s", err);
	request(http_server_port(s),
	        "GET /info HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 9.9.9.9, 1.2.3.4\r\n"
	        "X-Forwarded-Proto: https\r\n\r\n",
	        r);
	http_server_free(s);
}

static void
test_trusted_proxies_list(void **state)
{
	struct resp r;

	/* a proxy on another host: loopback no longer counts as one */
	info_via_proxy_list("10.0.0.0/8, 192.0.2.7", &r);
	assert_string_equal(r.body, "addr=127.0.0.1 https=0 locale=zh-TW body=0 null");
	info_via_proxy_list("::1", &r);
	assert_string_equal(r.body, "addr=127.0.0.1 https=0 locale=zh-TW body=0 null");
	/* the peer is in a listed network */
	info_via_proxy_list("192.0.2.7 127.0.0.0/8", &r);
	assert_string_equal(r.body, "addr=1.2.3.4 https=1 locale=zh-TW body=0 null");
	info_via_proxy_list("127.0.0.1/32", &r);
	assert_string_equal(r.body, "addr=1.2.3.4 https=1 locale=zh-TW body=0 null");
	/* unset: loopback, as before the list existed */
	info_via_proxy_list(NULL, &r);
	assert_string_equal(r.body, "addr=1.2.3.4 https=1 locale=zh-TW body=0 null");
	info_via_proxy_list("", &r);
	assert_string_equal(r.body, "addr=1.2.3.4 https=1 locale=zh-TW body=0 null");
	/* unparsable: nobody is believed */
	info_via_proxy_list("127.0.0.1/99", &r);
	assert_string_equal(r.body, "addr=127.0.0.1 https=0 locale=zh-TW body=0 null");
	(void)state;
}

static void
test_trusted_proxy(void **state)
{
	struct resp r;
	char v[512];

	request(proxy_port,
	        "GET /info HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 9.9.9.9, 1.2.3.4\r\n"
	        "X-Forwarded-Proto: https\r\nX-Locale: en\r\n\r\n",
	        &r);
	assert_string_equal(r.body, "addr=1.2.3.4 https=1 locale=en body=0 null");
	assert_header(&r, "Strict-Transport-Security", "max-age=31536000");

	/* a forged, unparsable last hop falls back to the peer */
	request(proxy_port,
	        "GET /info HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 1.2.3.4, evil\r\n\r\n", &r);
	assert_string_equal(r.body, "addr=127.0.0.1 https=0 locale=zh-TW body=0 null");

	request(proxy_port, "GET /csrf HTTP/1.1\r\nHost: t\r\nX-Forwarded-Proto: https\r\n\r\n",
	        &r);
	assert_non_null(resp_header(&r, "Set-Cookie", 0, v, sizeof(v)));
	assert_non_null(strstr(v, "; Secure"));

	/* the custom error page, localised by on_request */
	request(proxy_port, "GET /missing HTTP/1.1\r\nHost: t\r\nX-Locale: en\r\n\r\n", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "custom 404 en");
	assert_header(&r, "Cache-Control", "no-store");
	request(proxy_port, "GET /info?%zz HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	assert_string_equal(r.body, "custom 400 zh-TW");
}

static void
test_csrf(void **state)
{
	struct resp r;
	char cookie[256], token[64], raw[1024], *semi;

	/* fresh browser: the token matches the cookie set with it */
	request(port, "GET /csrf HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(resp_header(&r, "Set-Cookie", 0, cookie, sizeof(cookie)));
	assert_int_equal(strncmp(cookie, "isso_b=", 7), 0);
	assert_non_null(strstr(cookie, "; HttpOnly; SameSite=Lax"));
	assert_non_null(strstr(cookie, "Max-Age=31536000"));
	semi = strchr(cookie, ';');
	*semi = '\0';
	assert_int_equal(strlen(cookie), 7 + 43);
	assert_true(strlen(r.body) == 43);
	memcpy(token, r.body, 44);

	snprintf(raw, sizeof(raw),
	         "POST /csrf HTTP/1.1\r\nHost: t\r\nCookie: %s\r\nContent-Type: "
	         "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\ncsrf=%s",
	         cookie, strlen(token) + 5, token);
	request(port, raw, &r);
	assert_string_equal(r.body, "ok");

	/* known browser: no new cookie, same token */
	snprintf(raw, sizeof(raw), "GET /csrf HTTP/1.1\r\nHost: t\r\nCookie: %s\r\n\r\n", cookie);
	request(port, raw, &r);
	assert_int_equal(resp_header_count(&r, "Set-Cookie"), 0);
	assert_string_equal(r.body, token);

	/* wrong token, no cookie, other browser */
	token[0] = token[0] == 'A' ? 'B' : 'A';
	snprintf(raw, sizeof(raw),
	         "POST /csrf HTTP/1.1\r\nHost: t\r\nCookie: %s\r\nContent-Type: "
	         "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\ncsrf=%s",
	         cookie, strlen(token) + 5, token);
	request(port, raw, &r);
	assert_int_equal(r.status, 403);
	token[0] = token[0] == 'A' ? 'B' : 'A';
	snprintf(raw, sizeof(raw),
	         "POST /csrf HTTP/1.1\r\nHost: t\r\nContent-Type: "
	         "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\ncsrf=%s",
	         strlen(token) + 5, token);
	request(port, raw, &r);
	assert_int_equal(r.status, 403);
	snprintf(raw, sizeof(raw),
	         "POST /csrf HTTP/1.1\r\nHost: t\r\nCookie: "
	         "isso_b=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\nContent-Type: "
	         "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\ncsrf=%s",
	         strlen(token) + 5, token);
	request(port, raw, &r);
	assert_int_equal(r.status, 403);
}

static void
write_file(const char *name, const char *data, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", static_dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void
test_static(void **state)
{
	struct resp *r = get("/static/site.css");
	struct resp r2;
	char etag[128], raw[512];

	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "body{}");
	assert_header(r, "Content-Type", "text/css; charset=utf-8");
	assert_header(r, "Cache-Control", "public, max-age=3600");
	assert_header(r, "X-Content-Type-Options", "nosniff");
	assert_non_null(resp_header(r, "ETag", 0, etag, sizeof(etag)));
	snprintf(raw, sizeof(raw),
	         "GET /static/site.css HTTP/1.1\r\nHost: t\r\nIf-None-Match: %s\r\n\r\n", etag);
	request(port, raw, &r2);
	assert_int_equal(r2.status, 304);

	r = get("/static/sub/app.js");
	assert_int_equal(r->status, 200);
	assert_header(r, "Content-Type", "text/javascript; charset=utf-8");
	r = get("/static/inside.css"); /* a symlink that stays inside */
	assert_int_equal(r->status, 200);

	assert_int_equal(get("/static/.hidden.css")->status, 404);
	assert_int_equal(get("/static/sub/.x.js")->status, 404);
	assert_int_equal(get("/static/out.css")->status, 404); /* symlink outside */
	assert_int_equal(get("/static/dir.css")->status, 404); /* a directory */
	assert_int_equal(get("/static/big.txt")->status, 404); /* over 1 MiB */
	assert_int_equal(get("/static/file.exe")->status, 404);
	assert_int_equal(get("/static/missing.css")->status, 404);
	assert_int_equal(get("/static/")->status, 404);
	assert_int_equal(get("/static/sub//app.js")->status, 404);
	assert_int_equal(get("/static/../test_http.css")->status, 400);
	assert_int_equal(get("/static/%2e%2e/x.css")->status, 400);
}

static void
make_static_dir(void)
{
	char path[256];
	char *big;

	snprintf(static_dir, sizeof(static_dir), "/tmp/isso-test-http-XXXXXX");
	assert_non_null(mkdtemp(static_dir));
	write_file("site.css", "body{}", 6);
	write_file(".hidden.css", "secret", 6);
	snprintf(path, sizeof(path), "%s/sub", static_dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/dir.css", static_dir);
	assert_int_equal(mkdir(path, 0700), 0);
	write_file("sub/app.js", "1;", 2);
	write_file("sub/.x.js", "1;", 2);
	snprintf(path, sizeof(path), "%s/out.css", static_dir);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	snprintf(path, sizeof(path), "%s/inside.css", static_dir);
	assert_int_equal(symlink("site.css", path), 0);
	big = calloc(1, 1024 * 1024 + 1);
	write_file("big.txt", big, 1024 * 1024 + 1);
	free(big);
}

static void
remove_static_dir(void)
{
	static const char *const names[] = {"site.css", ".hidden.css", "sub/app.js", "sub/.x.js",
	                                    "out.css",  "inside.css",  "big.txt"};
	char path[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", static_dir, names[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/sub", static_dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/dir.css", static_dir);
	rmdir(path);
	rmdir(static_dir);
}

static void
add_routes(struct http_server *s)
{
	http_route(s, HTTP_GET, "/", h_home, NULL);
	http_route(s, HTTP_GET, "/hello", h_hello, NULL);
	http_route(s, HTTP_POST, "/form", h_form, NULL);
	http_route(s, HTTP_GET, "/query", h_query, NULL);
	http_route(s, HTTP_GET, "/p/", h_prefix, NULL);
	http_route(s, HTTP_GET, "/p/exact", h_hello, NULL);
	http_route(s, HTTP_GET, "/cookies", h_cookies, NULL);
	http_route(s, HTTP_GET, "/json", h_json, NULL);
	http_route(s, HTTP_GET, "/redirect", h_redirect, NULL);
	http_route(s, HTTP_GET, "/header", h_header, NULL);
	http_route(s, HTTP_GET, "/noresp", h_noresp, NULL);
	http_route(s, HTTP_GET | HTTP_POST, "/info", h_info, NULL);
	http_route(s, HTTP_GET, "/csrf", h_csrf_get, NULL);
	http_route(s, HTTP_POST, "/csrf", h_csrf_post, NULL);
}

static void
h_deeper(struct http_req *req, void *ctx)
{
	http_send(req, 200, "text/plain", "deeper", 6);
}

static int
group_setup(void **state)
{
	struct http_server_settings set = {
	    .listen = "127.0.0.1",
	    .port = 0,
	    .threads = 2,
	    .max_body = 1024,
	    .on_request = on_request,
	};
	unsigned char master[32] = {1, 2, 3};
	const char *err = NULL;

	assert_int_equal(secret_init(), 0);
	secret_keys_derive(master, &keys);
	make_static_dir();

	srv = http_server_new(&set);
	add_routes(srv);
	http_route(srv, HTTP_GET, "/p/deeper/", h_deeper, NULL);
	http_route_static(srv, "/static/", static_dir);
	if (http_server_start(srv, &err) != 0)
		fail_msg("start: %s", err);
	port = http_server_port(srv);
	assert_true(port > 0);

	set.trust_proxy = true;
	set.threads = 0;
	set.error_page = error_page;
	proxy_srv = http_server_new(&set);
	add_routes(proxy_srv);
	assert_int_equal(http_server_start(proxy_srv, &err), 0);
	proxy_port = http_server_port(proxy_srv);
	assert_true(proxy_port > 0 && proxy_port != port);

	set.trust_proxy = false;
	set.secure_cookies = true;
	secure_srv = http_server_new(&set);
	add_routes(secure_srv);
	assert_int_equal(http_server_start(secure_srv, &err), 0);
	secure_port = http_server_port(secure_srv);
	return 0;
}

static int
group_teardown(void **state)
{
	http_server_free(srv);
	http_server_free(proxy_srv);
	http_server_free(secure_srv);
	remove_static_dir();
	return 0;
}

/* Requests that end before the handler runs must not leak their state
 * (the ASan build checks). */
static void
test_aborted(void **state)
{
	static const char *const partial[] = {
	    "GET /hello HTTP/1.1\r\nHost: t\r\n",
	    "GET /hello HTTP/1.1\r\nBad header line\r\n\r\n",
	    "POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nx=1",
	    "GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n",
	    "GET /hello?" /* cut in the request line */,
	};
	struct conn *c = malloc(sizeof(*c));
	struct resp *r = malloc(sizeof(*r));

	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		conn_open(c, port);
		conn_send(c, partial[i], strlen(partial[i]));
		usleep(20000);
		conn_close(c);
	}
	/* the server still answers */
	conn_open(c, port);
	conn_send(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 32);
	assert_true(conn_read(c, r, false));
	assert_int_equal(r->status, 200);
	conn_close(c);
	free(c);
	free(r);
}

/* ---- deferred work ---- */

/* Work waits for the gate to open, so tests can hold it "in flight". */
static atomic_bool gate_open;
static atomic_int works_started, defers_queued, dones_req, dones_abandoned, secrets_live;

struct defer_ctx {
	char *secret; /* a copy of the form's pw, as a password would be */
	size_t len;
};

static void
defer_work(void *arg)
{
	struct defer_ctx *d = arg;

	atomic_fetch_add(&works_started, 1);
	for (int i = 0; i < 10000 && !atomic_load(&gate_open); i++)
		usleep(1000);
	d->len = strlen(d->secret);
}

static void
defer_done(struct http_req *req, void *arg)
{
	struct defer_ctx *d = arg;
	const char *out;

	explicit_bzero(d->secret, strlen(d->secret));
	free(d->secret);
	d->secret = NULL;
	atomic_fetch_sub(&secrets_live, 1);
	if (req == NULL) {
		atomic_fetch_add(&dones_abandoned, 1);
		return;
	}
	atomic_fetch_add(&dones_req, 1);
	out = pool_printf(http_pool(req), "len=%zu", d->len);
	http_send(req, 200, "text/plain", out, strlen(out));
}

static void
h_defer(struct http_req *req, void *ctx)
{
	struct defer_ctx *d = pool_alloc(http_pool(req), sizeof(*d));
	const char *pw = http_form(req, "pw");

	d->secret = strdup(pw != NULL ? pw : "");
	d->len = 0;
	atomic_fetch_add(&secrets_live, 1);
	if (http_defer(req, defer_work, defer_done, d) == 0) {
		atomic_fetch_add(&defers_queued, 1);
		return;
	}
	free(d->secret);
	atomic_fetch_sub(&secrets_live, 1);
	http_set_busy(req);
	http_send(req, 503, "text/plain", "busy", 4);
}

/* Reserves first, as a handler does before steps it cannot take back. */
static void
h_defer_check(struct http_req *req, void *ctx)
{
	if (!http_defer_reserve(req)) {
		http_set_busy(req);
		http_send(req, 503, "text/plain", "busy-check", 10);
		return;
	}
	h_defer(req, ctx);
}

/* Reserves a place and answers without deferring: the place comes back. */
static void
h_reserve_only(struct http_req *req, void *ctx)
{
	if (http_defer_reserve(req))
		http_send(req, 200, "text/plain", "reserved", 8);
	else
		http_send(req, 503, "text/plain", "busy", 4);
}

/* A server whose work pool has one thread and room for one waiting task;
 * one request thread, so a blocked handler would block everything. */
static struct http_server *
defer_server(unsigned queue, int *port_r)
{
	struct http_server_settings set = {
	    .listen = "127.0.0.1",
	    .threads = 1,
	    .defer_threads = 1,
	    .defer_queue = queue,
	};
	struct http_server *s = http_server_new(&set);
	const char *err = NULL;

	http_route(s, HTTP_POST, "/defer", h_defer, NULL);
	http_route(s, HTTP_POST, "/defer-check", h_defer_check, NULL);
	http_route(s, HTTP_POST, "/reserve", h_reserve_only, NULL);
	http_route(s, HTTP_GET, "/hello", h_hello, NULL);
	if (http_server_start(s, &err) != 0)
		fail_msg("start: %s", err);
	*port_r = http_server_port(s);
	atomic_store(&gate_open, false);
	atomic_store(&works_started, 0);
	atomic_store(&defers_queued, 0);
	atomic_store(&dones_req, 0);
	atomic_store(&dones_abandoned, 0);
	atomic_store(&secrets_live, 0);
	return s;
}

static void
wait_for(atomic_int *counter, int want)
{
	for (int i = 0; i < 5000 && atomic_load(counter) < want; i++)
		usleep(1000);
	assert_int_equal(atomic_load(counter), want);
}

static void
post_to(struct conn *c, int p, const char *path, const char *pw)
{
	char raw[256];
	int n = snprintf(raw, sizeof(raw),
	                 "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: "
	                 "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\npw=%s",
	                 path, strlen(pw) + 3, pw);

	conn_open(c, p);
	conn_send(c, raw, (size_t)n);
}

static void
post_defer(struct conn *c, int p, const char *pw)
{
	post_to(c, p, "/defer", pw);
}

/* While the work waits, the only request thread serves other requests;
 * the deferred request is then answered by done, with the work's result. */
static void
test_defer(void **state)
{
	struct conn *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	struct resp *r = malloc(sizeof(*r));
	int p;
	struct http_server *s = defer_server(1, &p);

	post_defer(a, p, "hunter22");
	wait_for(&works_started, 1);
	conn_open(b, p);
	conn_send(b, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 32);
	assert_true(conn_read(b, r, false));
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "hello");
	assert_int_equal(atomic_load(&dones_req), 0);
	/* keep-alive: the same connection serves the next request */
	conn_send(b, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 32);
	assert_true(conn_read(b, r, false));
	assert_int_equal(r->status, 200);
	atomic_store(&gate_open, true);
	assert_true(conn_read(a, r, false));
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "len=8");
	assert_header(r, "X-Content-Type-Options", "nosniff");
	/* and the deferred request's connection stays usable */
	conn_send(a, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 32);
	assert_true(conn_read(a, r, false));
	assert_int_equal(r->status, 200);
	conn_close(a);
	conn_close(b);
	http_server_free(s);
	assert_int_equal(atomic_load(&dones_req), 1);
	assert_int_equal(atomic_load(&secrets_live), 0);
	free(a);
	free(b);
	free(r);
}

/* One task runs, one waits: a third is refused at once with 503 and
 * Retry-After, and the first two still finish. */
static void
test_defer_queue_full(void **state)
{
	struct conn *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b)), *c = malloc(sizeof(*c));
	struct resp *r = malloc(sizeof(*r));
	int p;
	struct http_server *s = defer_server(1, &p);

	/* a place reserved but not used is given back */
	for (int i = 0; i < 3; i++) {
		post_to(c, p, "/reserve", "x");
		assert_true(conn_read(c, r, false));
		assert_string_equal(r->body, "reserved");
		conn_close(c);
	}
	post_defer(a, p, "one");
	wait_for(&works_started, 1);
	post_defer(b, p, "second");
	wait_for(&defers_queued, 2);
	post_defer(c, p, "third");
	assert_true(conn_read(c, r, false));
	assert_int_equal(r->status, 503);
	assert_string_equal(r->body, "busy");
	assert_header(r, "Retry-After", "5");
	conn_close(c);
	/* asking first says so too */
	post_to(c, p, "/defer-check", "fourth");
	assert_true(conn_read(c, r, false));
	assert_int_equal(r->status, 503);
	assert_string_equal(r->body, "busy-check");
	assert_int_equal(atomic_load(&defers_queued), 2);
	atomic_store(&gate_open, true);
	assert_true(conn_read(a, r, false));
	assert_string_equal(r->body, "len=3");
	assert_true(conn_read(b, r, false));
	assert_string_equal(r->body, "len=6");
	conn_close(c);
	/* room again */
	post_to(c, p, "/defer-check", "fifth");
	assert_true(conn_read(c, r, false));
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "len=5");
	conn_close(a);
	conn_close(b);
	conn_close(c);
	http_server_free(s);
	assert_int_equal(atomic_load(&secrets_live), 0);
	free(a);
	free(b);
	free(c);
	free(r);
}

/* A client that leaves while its work runs: the work finishes, done runs
 * once (abandoned or answering into the void) and everything is freed
 * (the ASan build checks the leaks); the server serves on. */
static void
test_defer_client_gone(void **state)
{
	struct conn *a = malloc(sizeof(*a));
	struct resp *r = malloc(sizeof(*r));
	int p;
	struct http_server *s = defer_server(1, &p);

	post_defer(a, p, "secret");
	wait_for(&works_started, 1);
	conn_close(a);
	usleep(20000);
	atomic_store(&gate_open, true);
	for (int i = 0; i < 5000 && atomic_load(&secrets_live) > 0; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&secrets_live), 0);
	assert_int_equal(atomic_load(&dones_req) + atomic_load(&dones_abandoned), 1);
	conn_open(a, p);
	conn_send(a, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 32);
	assert_true(conn_read(a, r, false));
	assert_int_equal(r->status, 200);
	conn_close(a);
	http_server_free(s);
	free(a);
	free(r);
}

static void *
open_gate_later(void *arg)
{
	usleep(200000);
	atomic_store(&gate_open, true);
	return NULL;
}

/* Stopping the server while work runs and more waits: the stop waits
 * for the work, every done runs exactly once, nothing leaks, and MHD
 * never meets a suspended connection at its stop. */
static void
test_defer_shutdown(void **state)
{
	struct conn *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	pthread_t t;
	int p;
	struct http_server *s = defer_server(4, &p);

	post_defer(a, p, "one");
	wait_for(&works_started, 1);
	post_defer(b, p, "two");
	wait_for(&defers_queued, 2);
	assert_int_equal(pthread_create(&t, NULL, open_gate_later, NULL), 0);
	http_server_free(s);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&works_started), 2);
	assert_int_equal(atomic_load(&dones_req) + atomic_load(&dones_abandoned), 2);
	assert_int_equal(atomic_load(&secrets_live), 0);
	conn_close(a);
	conn_close(b);
	free(a);
	free(b);
}

/* Without a work pool the work runs inline and the request is answered. */
static void
test_defer_inline(void **state)
{
	struct resp *r = malloc(sizeof(*r));
	int p;
	struct http_server *s = defer_server(0, &p);
	static const char raw[] = "POST /defer HTTP/1.1\r\nHost: t\r\nContent-Type: "
	                          "application/x-www-form-urlencoded\r\nContent-Length: "
	                          "5\r\n\r\npw=ab";

	atomic_store(&gate_open, true);
	request(p, raw, r);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "len=2");
	http_server_free(s);
	assert_int_equal(atomic_load(&secrets_live), 0);
	free(r);
}

static void
test_start_errors(void **state)
{
	struct http_server_settings set = {.listen = "not an address", .port = 0};
	struct http_server *s = http_server_new(&set);
	const char *err = NULL;

	assert_int_equal(http_server_start(s, &err), ISSO_ERR_IO);
	assert_non_null(err);
	http_server_free(s);

	set.listen = "127.0.0.1";
	set.port = port; /* taken */
	s = http_server_new(&set);
	assert_int_equal(http_server_start(s, &err), ISSO_ERR_IO);
	http_server_free(s);

	set.listen = "::1";
	set.port = 0;
	s = http_server_new(&set);
	if (http_server_start(s, &err) == 0)
		assert_true(http_server_port(s) > 0);
	http_server_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_route_200),
	    cmocka_unit_test(test_404_405),
	    cmocka_unit_test(test_head),
	    cmocka_unit_test(test_keep_alive),
	    cmocka_unit_test(test_body_limit),
	    cmocka_unit_test(test_bad_target),
	    cmocka_unit_test(test_prefix),
	    cmocka_unit_test(test_form),
	    cmocka_unit_test(test_cookies),
	    cmocka_unit_test(test_cookie_format),
	    cmocka_unit_test(test_secure_cookies),
	    cmocka_unit_test(test_secure_csrf),
	    cmocka_unit_test(test_json_redirect_headers),
	    cmocka_unit_test(test_info_and_locale),
	    cmocka_unit_test(test_trusted_proxy),
	    cmocka_unit_test(test_trusted_proxies_list),
	    cmocka_unit_test(test_csrf),
	    cmocka_unit_test(test_static),
	    cmocka_unit_test(test_aborted),
	    cmocka_unit_test(test_defer),
	    cmocka_unit_test(test_defer_queue_full),
	    cmocka_unit_test(test_defer_client_gone),
	    cmocka_unit_test(test_defer_shutdown),
	    cmocka_unit_test(test_defer_inline),
	    cmocka_unit_test(test_start_errors),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
