/* The one outbound HTTP client of issod: every request issod sends to
 * another server (national services, OCSP and CRL, an agency's JWK set or
 * back-channel logout endpoint) goes through outbound_request(), which
 * decides whether the URL may be reached at all.
 *
 * The policy (outbound_configure, once at start-up):
 *   - https only, unless the issuer (server.public_url) is on loopback (a
 *     development or test set-up), or the request carries signed content
 *     that TLS adds nothing to (OCSP, CRL: OUTBOUND_PLAIN_HTTP_OK);
 *   - addresses that are not on the public internet (loopback, private,
 *     link-local, CGNAT, multicast, unspecified, reserved, cloud metadata;
 *     IPv4 inside IPv6 judged as the IPv4 address) are refused unless the
 *     operator lists them in [outbound] allow; a cloud-metadata address
 *     only when an entry names exactly that address;
 *   - the name is resolved here, every address it resolves to is checked,
 *     and the connection goes only to those checked addresses (no DNS
 *     rebinding between the check and the connection); no proxy from the
 *     environment, no redirects followed, http and https only.
 * Refusals are logged as the security event `outbound_refused` with the
 * host and the reason, never the path or query.
 *
 * libcurl types never appear here. Thread-safe once configured. */
#ifndef ISSO_CONN_OUTBOUND_H
#define ISSO_CONN_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define OUTBOUND_URL_MAX     2048
#define OUTBOUND_DETAIL_SIZE 256 /* libcurl's CURL_ERROR_SIZE */

struct outbound_policy {
	/* The issuer identifier (server.public_url): plain http is allowed
	 * only when its host is on loopback (127.0.0.0/8, ::1, localhost). */
	const char *issuer;
	/* [outbound] allow: entries separated by commas or spaces, each
	 * "host", "host:port", "IP", "IP:port", "[IPv6]:port" or "CIDR"
	 * (10.0.0.0/8, fd00::/8). NULL or "": none. */
	const char *allow;
};

/* Sets the process-wide policy (start-up, before requests run; tests may
 * call it again). Until it is called every request and URL is refused.
 * Returns 0, or ISSO_ERR_INVALID with *error_r (static, names the bad
 * entry's position) when the issuer or an allow entry is malformed. */
int outbound_configure(const struct outbound_policy *p, const char **error_r);

enum outbound_flags {
	/* The reply is signed by its issuer (OCSP response, CRL): plain
	 * http is allowed whatever the issuer (RFC 5280 §4.2.1.13, RFC 6960
	 * appendix A.1 name http). The address checks still apply. */
	OUTBOUND_PLAIN_HTTP_OK = 1u << 0,
};

/* Checks a URL against the policy without sending anything (registration
 * time: issoctl client add, connector settings): syntax (absolute http(s)
 * URL, at most OUTBOUND_URL_MAX, no user info, no fragment, no IPv6 zone),
 * the scheme, and the host when it is an address literal or localhost.
 * A name is resolved only when a request is made, so a name that passes
 * here may still be refused then. Returns 0, or ISSO_ERR_DENIED (policy)
 * / ISSO_ERR_INVALID (syntax) with *error_r a static English reason.
 * Logs nothing. */
int outbound_check_url(const char *url, const char **error_r);
/* The same for a request that will carry flags (enum outbound_flags). */
int outbound_check_url_flags(const char *url, unsigned flags, const char **error_r);

enum outbound_method { OUTBOUND_GET, OUTBOUND_POST };

struct outbound_req {
	enum outbound_method method;
	const char *url;
	/* Extra request headers, "Name: value", NULL-terminated (may be
	 * NULL). Their copies are wiped after sending (they may carry
	 * credentials). */
	const char *const *headers;
	const void *body; /* POST body (may be NULL: empty) */
	size_t body_len;
	const char *agent;   /* User-Agent, e.g. "isso-sms/1" */
	long timeout_ms;     /* the whole exchange, name lookup included; <= 0: 5000 */
	size_t reply_max;    /* largest reply body accepted (bytes); 0: 1 MiB */
	unsigned flags;      /* enum outbound_flags */
	const char *purpose; /* names the caller in log lines: "sms", "jwks" … */
};

struct outbound_resp {
	long status;        /* HTTP status; 3xx is returned, never followed */
	struct buf body;    /* the reply body, NUL-terminated (may be empty) */
	char *content_type; /* malloc'd, NULL when absent */
	/* Seconds the reply may be cached (Cache-Control max-age minus Age,
	 * else Expires minus Date): 0 for no-store / no-cache, -1 when the
	 * reply says nothing. */
	int64_t max_age;
	char detail[OUTBOUND_DETAIL_SIZE]; /* libcurl's words when it failed */
};

/* Sends one request under the policy. Returns 0 when an HTTP reply came
 * (any status) with *resp_r filled (release with outbound_resp_free());
 * otherwise ISSO_ERR_DENIED (refused by the policy: logged as
 * outbound_refused, nothing sent), ISSO_ERR_INVALID (malformed request),
 * ISSO_ERR_TIMEOUT, ISSO_ERR_LIMIT (reply larger than reply_max) or
 * ISSO_ERR_IO (name does not resolve, unreachable, TLS), with *error_r a
 * static English reason and resp_r->detail libcurl's words; resp_r needs
 * outbound_resp_free() in every case. Thread-safe (one libcurl handle per
 * call). */
int outbound_request(const struct outbound_req *req, struct outbound_resp *resp_r,
                     const char **error_r);
/* Wipes and frees what a reply holds (it may carry personal data). */
void outbound_resp_free(struct outbound_resp *resp);

/* Appends value percent-encoded (everything but RFC 3986 unreserved
 * characters); the intermediate copy is wiped. Returns 0 or
 * ISSO_ERR_LIMIT (out unchanged). */
int outbound_escape(struct buf *out, const char *value);
/* Appends "name=value" (value percent-encoded as
 * application/x-www-form-urlencoded, '&' before all but the first) to
 * form; the encoded copy is wiped (it may hold a secret). Returns 0 or
 * ISSO_ERR_LIMIT. */
int outbound_form_add(struct buf *form, const char *name, const char *value);

/* ---- address classes (exposed for tests and diagnostics) ---- */

enum outbound_class {
	OUTBOUND_PUBLIC,      /* the public internet */
	OUTBOUND_LOOPBACK,    /* 127.0.0.0/8, ::1 */
	OUTBOUND_PRIVATE,     /* RFC 1918, fc00::/7, fec0::/10 */
	OUTBOUND_LINK_LOCAL,  /* 169.254.0.0/16, fe80::/10 */
	OUTBOUND_CGNAT,       /* 100.64.0.0/10 */
	OUTBOUND_MULTICAST,   /* 224.0.0.0/4, ff00::/8, broadcast */
	OUTBOUND_UNSPECIFIED, /* 0.0.0.0/8, :: */
	OUTBOUND_METADATA,    /* cloud instance metadata: 169.254.169.254, fd00:ec2::254 … */
	OUTBOUND_RESERVED,    /* documentation, benchmarking, 240/4, Teredo … */
	OUTBOUND_INVALID,     /* not an address */
};

/* The class of an IPv4 or IPv6 address in text form. An IPv4 address
 * inside IPv6 (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4
 * 2002::/16) is judged as that IPv4 address. */
enum outbound_class outbound_classify(const char *ip);
/* "public", "loopback", "private" … */
const char *outbound_class_name(enum outbound_class c);
/* True when the configured policy lets a connection go to ip (text) on
 * port for a URL whose host is host (a name, or the same address): a
 * public address, or one the allow-list covers. */
bool outbound_address_allowed(const char *host, const char *ip, int port);

#endif
