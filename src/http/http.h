/* The web layer: an HTTP/1.1 server on libmicrohttpd (thread pool, epoll,
 * keep-alive), a router, and the request/response API handlers use.
 * libmicrohttpd types never appear here. */
#ifndef ISSO_HTTP_H
#define ISSO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "lib/pool.h"

enum http_method {
	HTTP_GET = 1 << 0,
	HTTP_HEAD = 1 << 1,
	HTTP_POST = 1 << 2,
	HTTP_OTHER = 1 << 3,
};

/* One name=value pair from a query string, form body or Cookie header.
 * Values are decoded, NUL-terminated and valid UTF-8. */
struct http_kv {
	const char *name;
	const char *value;
};

struct http_kvs {
	struct http_kv *v;
	size_t n;
};

struct http_req;
struct http_server;

/* A route handler. It must set a response (status, body, redirect …)
 * before returning; if it does not, the client gets a 500 page. */
typedef void http_handler_fn(struct http_req *req, void *ctx);

/* ---- request ---- */

/* Memory that lives until the response is sent. */
struct pool *http_pool(struct http_req *req);
enum http_method http_method(const struct http_req *req);
/* The path without the query string, percent-decoded, starting with '/'. */
const char *http_path(const struct http_req *req);
/* The part of the path after a prefix route's prefix ("" when none). */
const char *http_path_rest(const struct http_req *req);
/* A request header (case-insensitive name), NULL when absent. */
const char *http_header(const struct http_req *req, const char *name);
/* How many times a request header (case-insensitive name) was sent. */
size_t http_header_count(const struct http_req *req, const char *name);
/* The client's address as text. */
const char *http_remote_addr(const struct http_req *req);
/* Parsed query string, form body (application/x-www-form-urlencoded only)
 * and cookies. Parsing happens once, on first use. A request whose query
 * or form is malformed (bad percent-encoding, invalid UTF-8, too many
 * pairs) has already been answered with 400 before the handler runs. */
const struct http_kvs *http_query_all(struct http_req *req);
const struct http_kvs *http_form_all(struct http_req *req);
/* First value of name, or NULL. */
const char *http_query(struct http_req *req, const char *name);
const char *http_form(struct http_req *req, const char *name);
const char *http_cookie(struct http_req *req, const char *name);
/* For GET: the query; for POST: the form. Count of occurrences of name (OAuth
 * parameters must not repeat: RFC 6749 §3.1). */
const char *http_param(struct http_req *req, const char *name);
size_t http_param_count(struct http_req *req, const char *name);
/* Raw body and its Content-Type (NULL when none). */
const char *http_body(const struct http_req *req, size_t *len_r);
/* Locale chosen for this request: "zh-TW" or "en" (see i18n.h). */
const char *http_locale(struct http_req *req);
void http_set_locale(struct http_req *req, const char *locale);
/* True when the request reached us over TLS (directly or via a trusted proxy). */
bool http_is_https(const struct http_req *req);

/* ---- response ---- */

void http_set_status(struct http_req *req, int status);
/* The status set so far (200 until a handler sets one). */
int http_response_status(const struct http_req *req);
/* Adds a header; the strings are copied. Setting a header of the same name
 * again replaces it. */
void http_set_header(struct http_req *req, const char *name, const char *value);

enum http_cookie_flags {
	HTTP_COOKIE_HTTPONLY = 1 << 0,
	HTTP_COOKIE_LAX = 1 << 1,  /* SameSite=Lax (default Strict otherwise) */
	HTTP_COOKIE_NONE = 1 << 2, /* SameSite=None (forces Secure) */
};
/* Sets a cookie on Path=/, without Domain; Secure when the server's
 * secure_cookies is set (the issuer is https) or the request is https;
 * with secure_cookies the name also gets the __Host- prefix (RFC 6265bis
 * §4.1.3.2: only this host, over https, may set it), and http_cookie()
 * reads the prefixed name. max_age < 0: a session cookie; 0: delete it. */
void http_set_cookie(struct http_req *req, const char *name, const char *value, long max_age,
                     unsigned flags);
/* Body, copied. */
void http_send(struct http_req *req, int status, const char *content_type, const char *body,
               size_t len);
/* JSON body, Cache-Control: no-store. Steals the reference to obj. */
void http_send_json(struct http_req *req, int status, json_t *obj);
/* 302/303 to location (which the caller has validated). */
void http_redirect(struct http_req *req, int status, const char *location);
/* Adds an origin to the page's CSP form-action (for a form whose answer is a
 * redirect to a client's redirect_uri). */
void http_csp_allow_form_action(struct http_req *req, const char *origin);
/* Adds an origin to the page's CSP connect-src (a local card agent's
 * WebSocket, say). */
void http_csp_allow_connect(struct http_req *req, const char *origin);

/* ---- deferred work ----
 *
 * CPU-heavy steps (password hashing) must not run on the request threads:
 * a handler hands them to the server's bounded work pool with http_defer
 * and returns without responding; the request is suspended meanwhile (its
 * thread serves others) and done finishes it once the work ran. */

/* Runs on a pool thread. Must not touch the request: it only gets ctx. */
typedef void http_work_fn(void *ctx);
/* Runs exactly once after work, back on a request thread. With req set it
 * is the handler's second half: it reads the request and must respond
 * (otherwise 500). With req NULL the request was abandoned (the client
 * left, or the server stops): it only wipes and releases ctx. */
typedef void http_done_fn(struct http_req *req, void *ctx);

/* Queues work(ctx) for req, then done(req, ctx). Returns 0: the handler
 * returns now and must not respond (done does); or ISSO_ERR_LIMIT: the
 * queue is full or the server stops, nothing runs, ctx stays the
 * caller's, who answers 503 (see http_set_busy). ctx may come from
 * http_pool(req): the request's memory lives until done has run. At most
 * one deferral per request. A server started without a work pool runs
 * work and done at once, on the calling thread. */
int http_defer(struct http_req *req, http_work_fn *work, http_done_fn *done, void *ctx);
/* Holds a place in the queue for this request's http_defer, taken before
 * steps that cannot be taken back (counting a password guess). Returns
 * false when the queue is full or the server stops (answer 503). Once it
 * returned true, http_defer refuses only when the server stops; a place
 * not used by the time the handler returns is given back. */
bool http_defer_reserve(struct http_req *req);
/* Requests of req's server waiting for a thread of its work pool (queued
 * or holding a reserved place); 0 without a pool. */
unsigned http_defer_waiting(struct http_req *req);
/* Says Retry-After for a request refused because the work pool is full:
 * the caller then renders its 503 page or JSON. */
void http_set_busy(struct http_req *req);

/* ---- server ---- */

struct http_server_settings {
	const char *listen; /* address */
	int port;
	int threads; /* 0: one per core */
	/* The work pool for http_defer: threads (0: one fewer than the cores,
	 * at least one) and the
	 * tasks that may wait for one (0: no pool, deferred work runs
	 * inline). */
	unsigned defer_threads;
	unsigned defer_queue;
	size_t max_body;  /* larger bodies get 413 */
	bool trust_proxy; /* honour X-Forwarded-Proto / -For from a trusted proxy */
	/* With trust_proxy: the proxies' addresses and CIDR networks, as
	 * metrics_allow_parse() reads them ("10.0.3.7, 10.0.4.0/24"); NULL
	 * or empty: loopback ("127.0.0.1, ::1"). Unparsable: nobody. */
	const char *trusted_proxies;
	/* The public URL is https: every cookie is Secure and __Host-
	 * prefixed, whatever the request says about its scheme. */
	bool secure_cookies;
	/* Called for each request before routing (may be NULL): sets
	 * per-request state such as the locale. */
	void (*on_request)(struct http_req *req, void *ctx);
	void *ctx;
	/* Renders an error page for status (400/404/405/413/500) when no
	 * handler produced a response (may be NULL: plain text). */
	void (*error_page)(struct http_req *req, int status, void *ctx);
};

struct http_server *http_server_new(const struct http_server_settings *settings);
/* Exact path route for the methods in method_mask. HEAD is served by GET
 * routes. A path ending in '/' matches every path below it (prefix route). */
void http_route(struct http_server *srv, unsigned method_mask, const char *path,
                http_handler_fn *handler, void *ctx);
/* Starts listening. Returns 0 or ISSO_ERR_IO with *error_r set. */
int http_server_start(struct http_server *srv, const char **error_r);
/* The port actually bound (useful with port 0). */
int http_server_port(const struct http_server *srv);
/* Stops accepting, finishes running requests and deferred work (their
 * requests get done with the request or abandoned), frees everything. */
void http_server_free(struct http_server *srv);

/* Serves files below dir for GET/HEAD under url_prefix ("/static/"), with
 * long cache lifetimes and a content type from the extension. Refuses
 * "..", hidden files and anything that is not a regular file. */
void http_route_static(struct http_server *srv, const char *url_prefix, const char *dir);

#endif
