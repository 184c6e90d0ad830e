/* The one outbound HTTP client (see outbound.h): a process-wide policy,
 * address classification, our own name resolution with every address
 * checked, and libcurl pinned to the checked addresses. */
#include "conn/outbound.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lib/hex.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define OB_ALLOW_MAX       64
#define OB_HOST_MAX        253
#define OB_ADDRS_MAX       16
#define OB_TIMEOUT_DEFAULT 5000
#define OB_REPLY_DEFAULT   (1024 * 1024)
#define OB_HEADER_VALUE    256
#define OB_ALLOW_SEP       ", \t\r\n"

_Static_assert(CURL_ERROR_SIZE <= OUTBOUND_DETAIL_SIZE, "libcurl's error buffer grew");

/* An address: IPv4 in b[0..3] (family AF_INET) or IPv6 in b[0..15]. IPv4
 * mapped into IPv6 is always kept as IPv4. */
struct ob_ip {
	int family;
	unsigned char b[16];
};

struct ob_allow {
	bool is_name;
	char name[OB_HOST_MAX + 1]; /* lower case */
	struct ob_ip net;
	int prefix; /* bits */
	int port;   /* 0: any */
};

static struct {
	bool configured;
	bool http_ok; /* the issuer is on loopback */
	size_t n;
	struct ob_allow allow[OB_ALLOW_MAX];
} ob_policy;
static pthread_rwlock_t ob_lock = PTHREAD_RWLOCK_INITIALIZER;

static pthread_once_t ob_curl_once = PTHREAD_ONCE_INIT;
static CURLcode ob_curl_status = CURLE_FAILED_INIT;

static void
ob_curl_init(void)
{
	ob_curl_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- addresses ---- */

static void
ob_ip_normalise(struct ob_ip *ip)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (ip->family == AF_INET6 && memcmp(ip->b, mapped, 12) == 0) {
		memmove(ip->b, ip->b + 12, 4);
		memset(ip->b + 4, 0, 12);
		ip->family = AF_INET;
	}
}

static bool
ob_ip_parse(const char *text, struct ob_ip *ip_r)
{
	memset(ip_r, 0, sizeof(*ip_r));
	if (text == NULL)
		return false;
	if (inet_pton(AF_INET, text, ip_r->b) == 1) {
		ip_r->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, ip_r->b) == 1) {
		ip_r->family = AF_INET6;
		ob_ip_normalise(ip_r);
		return true;
	}
	return false;
}

static bool
ob_ip_from_sockaddr(const struct sockaddr *sa, struct ob_ip *ip_r)
{
	memset(ip_r, 0, sizeof(*ip_r));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

		ip_r->family = AF_INET;
		memcpy(ip_r->b, &sin->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

		ip_r->family = AF_INET6;
		memcpy(ip_r->b, &sin6->sin6_addr, 16);
		ob_ip_normalise(ip_r);
		return true;
	}
	return false;
}

static bool
ob_ip_equal(const struct ob_ip *a, const struct ob_ip *b)
{
	return a->family == b->family && memcmp(a->b, b->b, 16) == 0;
}

static bool
ob_ip_in(const struct ob_ip *ip, const struct ob_ip *net, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;

	if (ip->family != net->family)
		return false;
	if (memcmp(ip->b, net->b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((ip->b[full] ^ net->b[full]) & (0xff << (8 - rest))) == 0;
}

static void
ob_ip_text(const struct ob_ip *ip, char out[INET6_ADDRSTRLEN])
{
	if (inet_ntop(ip->family, ip->b, out, INET6_ADDRSTRLEN) == NULL)
		snprintf(out, INET6_ADDRSTRLEN, "?");
}

/* Cloud instance metadata endpoints (AWS, ECS, EKS, GCP and Azure use
 * 169.254.169.254; Alibaba 100.100.100.200; Oracle 192.0.0.192). */
static const char *const ob_metadata[] = {
    "169.254.169.254", "169.254.170.2", "169.254.170.23", "100.100.100.200",
    "192.0.0.192",     "fd00:ec2::254", "fd00:ec2::23",
};

static bool
ob_is_metadata(const struct ob_ip *ip)
{
	struct ob_ip m;

	for (size_t i = 0; i < ISSO_N_ELEMENTS(ob_metadata); i++) {
		if (ob_ip_parse(ob_metadata[i], &m) && ob_ip_equal(ip, &m))
			return true;
	}
	return false;
}

static enum outbound_class
ob_classify_v4(const unsigned char *a)
{
	if (a[0] == 0)
		return OUTBOUND_UNSPECIFIED;
	if (a[0] == 127)
		return OUTBOUND_LOOPBACK;
	if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168))
		return OUTBOUND_PRIVATE;
	if (a[0] == 100 && (a[1] & 0xc0) == 64)
		return OUTBOUND_CGNAT;
	if (a[0] == 169 && a[1] == 254)
		return OUTBOUND_LINK_LOCAL;
	if ((a[0] & 0xf0) == 224 || (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255))
		return OUTBOUND_MULTICAST;
	if ((a[0] & 0xf0) == 240)
		return OUTBOUND_RESERVED;
	/* IETF protocol assignments, documentation, 6to4 relays, benchmarking */
	if ((a[0] == 192 && a[1] == 0 && (a[2] == 0 || a[2] == 2)) ||
	    (a[0] == 198 && a[1] == 51 && a[2] == 100) ||
	    (a[0] == 203 && a[1] == 0 && a[2] == 113) ||
	    (a[0] == 192 && a[1] == 88 && a[2] == 99) || (a[0] == 198 && (a[1] & 0xfe) == 18))
		return OUTBOUND_RESERVED;
	return OUTBOUND_PUBLIC;
}

static enum outbound_class
ob_classify_ip(const struct ob_ip *ip)
{
	static const unsigned char zero[16];
	const unsigned char *a = ip->b;

	if (ob_is_metadata(ip))
		return OUTBOUND_METADATA;
	if (ip->family == AF_INET)
		return ob_classify_v4(a);
	if (memcmp(a, zero, 16) == 0)
		return OUTBOUND_UNSPECIFIED;
	if (memcmp(a, zero, 15) == 0 && a[15] == 1)
		return OUTBOUND_LOOPBACK;
	/* NAT64 well-known prefix 64:ff9b::/96: the IPv4 address inside */
	if (a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b &&
	    memcmp(a + 4, zero, 8) == 0) {
		struct ob_ip v4 = {.family = AF_INET};

		memcpy(v4.b, a + 12, 4);
		return ob_classify_ip(&v4);
	}
	/* local-use NAT64 64:ff9b:1::/48 */
	if (a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0 && a[5] == 1)
		return OUTBOUND_PRIVATE;
	/* 6to4 2002::/16: the IPv4 address in bits 16..47 */
	if (a[0] == 0x20 && a[1] == 0x02) {
		struct ob_ip v4 = {.family = AF_INET};

		memcpy(v4.b, a + 2, 4);
		return ob_classify_ip(&v4);
	}
	if (a[0] == 0xff)
		return OUTBOUND_MULTICAST;
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return OUTBOUND_LINK_LOCAL;
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) /* site-local, deprecated */
		return OUTBOUND_PRIVATE;
	if ((a[0] & 0xfe) == 0xfc)
		return OUTBOUND_PRIVATE;
	/* Only 2000::/3 is global unicast; in it, 2001::/23 (Teredo,
	 * benchmarking, ORCHID …), 2001:db8::/32 and 3fff::/20
	 * (documentation) are not for us. */
	if ((a[0] & 0xe0) != 0x20)
		return OUTBOUND_RESERVED;
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && (a[3] & 0xfe) == 0)
		return OUTBOUND_RESERVED;
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
		return OUTBOUND_RESERVED;
	if (a[0] == 0x3f && a[1] == 0xff && (a[2] & 0xf0) == 0)
		return OUTBOUND_RESERVED;
	return OUTBOUND_PUBLIC;
}

enum outbound_class
outbound_classify(const char *ip)
{
	struct ob_ip a;

	if (!ob_ip_parse(ip, &a))
		return OUTBOUND_INVALID;
	return ob_classify_ip(&a);
}

static const char *const ob_class_names[] = {
    [OUTBOUND_PUBLIC] = "public",
    [OUTBOUND_LOOPBACK] = "loopback",
    [OUTBOUND_PRIVATE] = "private",
    [OUTBOUND_LINK_LOCAL] = "link-local",
    [OUTBOUND_CGNAT] = "cgnat",
    [OUTBOUND_MULTICAST] = "multicast",
    [OUTBOUND_UNSPECIFIED] = "unspecified",
    [OUTBOUND_METADATA] = "cloud-metadata",
    [OUTBOUND_RESERVED] = "reserved",
    [OUTBOUND_INVALID] = "invalid",
};

const char *
outbound_class_name(enum outbound_class c)
{
	if ((size_t)c >= ISSO_N_ELEMENTS(ob_class_names))
		return "invalid";
	return ob_class_names[c];
}

/* The refusal reason for a class (static, for *error_r and the log). */
static const char *
ob_class_refusal(enum outbound_class c)
{
	switch (c) {
	case OUTBOUND_LOOPBACK:
		return "loopback address not in [outbound] allow";
	case OUTBOUND_PRIVATE:
		return "private address not in [outbound] allow";
	case OUTBOUND_LINK_LOCAL:
		return "link-local address not in [outbound] allow";
	case OUTBOUND_CGNAT:
		return "shared (CGNAT) address not in [outbound] allow";
	case OUTBOUND_MULTICAST:
		return "multicast or broadcast address";
	case OUTBOUND_UNSPECIFIED:
		return "unspecified address";
	case OUTBOUND_METADATA:
		return "cloud metadata address not named in [outbound] allow";
	case OUTBOUND_RESERVED:
		return "reserved address not in [outbound] allow";
	default:
		return "not an address";
	}
}

/* ---- host names ---- */

/* ASCII only, whatever the locale. */
static bool
ob_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A DNS name in letters, digits, '-' and '.', lower-cased into out. */
static bool
ob_name_ok(const char *s, size_t len, char out[OB_HOST_MAX + 1])
{
	if (len == 0 || len > OB_HOST_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(ob_alnum(c) || c == '-' || c == '.'))
			return false;
		if (c == '.' && i > 0 && s[i - 1] == '.')
			return false;
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	out[len] = '\0';
	return true;
}

/* localhost and *.localhost always name loopback (RFC 6761 §6.3). */
static bool
ob_name_is_localhost(const char *name)
{
	size_t n = strlen(name);

	if (n > 0 && name[n - 1] == '.')
		n--;
	return (n == 9 && strncmp(name, "localhost", 9) == 0) ||
	       (n > 10 && strncmp(name + n - 10, ".localhost", 10) == 0);
}

/* ---- the policy ---- */

static bool
ob_port_parse(const char *s, int *port_r)
{
	char *end;
	long v;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > 65535)
		return false;
	*port_r = (int)v;
	return true;
}

/* One allow entry (NUL-terminated, no spaces). */
static bool
ob_allow_parse(char *s, struct ob_allow *e)
{
	char *slash, *colon, *end;
	long bits;

	memset(e, 0, sizeof(*e));
	if ((slash = strchr(s, '/')) != NULL) {
		*slash = '\0';
		if (!ob_ip_parse(s, &e->net) || slash[1] < '0' || slash[1] > '9')
			return false;
		errno = 0;
		bits = strtol(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || bits < 0)
			return false;
		/* a mapped prefix ::ffff:a.b.c.d/n names IPv4 a.b.c.d/(n-96) */
		if (e->net.family == AF_INET && strchr(s, ':') != NULL)
			bits -= 96;
		if (bits < 0 || bits > (e->net.family == AF_INET ? 32 : 128))
			return false;
		e->prefix = (int)bits;
		return true;
	}
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL)
			return false;
		*end = '\0';
		if (!ob_ip_parse(s + 1, &e->net) || strchr(s + 1, ':') == NULL)
			return false;
		e->prefix = e->net.family == AF_INET ? 32 : 128;
		if (end[1] == '\0')
			return true;
		return end[1] == ':' && ob_port_parse(end + 2, &e->port);
	}
	if (ob_ip_parse(s, &e->net)) {
		e->prefix = e->net.family == AF_INET ? 32 : 128;
		return true;
	}
	colon = strrchr(s, ':');
	if (colon != NULL) {
		*colon = '\0';
		if (!ob_port_parse(colon + 1, &e->port))
			return false;
	}
	if (ob_ip_parse(s, &e->net)) {
		if (e->net.family != AF_INET)
			return false; /* an IPv6 address with a port needs brackets */
		e->prefix = 32;
		return true;
	}
	e->is_name = true;
	return ob_name_ok(s, strlen(s), e->name);
}

/* True when the issuer's host is loopback. */
static bool
ob_issuer_on_loopback(const char *issuer, const char **error_r)
{
	CURLU *u = curl_url();
	char *host = NULL;
	char name[OB_HOST_MAX + 1];
	bool ret = false;
	size_t n;

	*error_r = NULL;
	if (u == NULL || issuer == NULL || curl_url_set(u, CURLUPART_URL, issuer, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		*error_r = "the issuer is not a URL";
		goto out;
	}
	n = strlen(host);
	if (host[0] == '[' && n > 2) {
		host[n - 1] = '\0';
		ret = outbound_classify(host + 1) == OUTBOUND_LOOPBACK;
	} else if (ob_ip_parse(host, &(struct ob_ip){0})) {
		ret = outbound_classify(host) == OUTBOUND_LOOPBACK;
	} else {
		ret = ob_name_ok(host, n, name) && ob_name_is_localhost(name);
	}
out:
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

int
outbound_configure(const struct outbound_policy *p, const char **error_r)
{
	static _Thread_local char errbuf[160];
	struct ob_allow *entries = NULL;
	char *copy = NULL, *tok, *next;
	const char *why = NULL;
	bool http_ok;
	size_t n = 0;
	int ret = ISSO_ERR_INVALID;

	pthread_once(&ob_curl_once, ob_curl_init);
	if (ob_curl_status != CURLE_OK) {
		*error_r = "cannot initialise libcurl";
		goto out;
	}
	http_ok = ob_issuer_on_loopback(p->issuer, &why);
	if (why != NULL) {
		*error_r = why;
		goto out;
	}
	entries = xcalloc(OB_ALLOW_MAX, sizeof(*entries));
	copy = xstrdup(p->allow != NULL ? p->allow : "");
	for (tok = copy + strspn(copy, OB_ALLOW_SEP); *tok != '\0';
	     tok = next + strspn(next, OB_ALLOW_SEP)) {
		next = tok + strcspn(tok, OB_ALLOW_SEP);
		if (*next != '\0')
			*next++ = '\0';
		if (n == OB_ALLOW_MAX) {
			*error_r = "outbound.allow: more than 64 entries";
			goto out;
		}
		if (!ob_allow_parse(tok, &entries[n])) {
			snprintf(errbuf, sizeof(errbuf),
			         "outbound.allow: entry %zu is not host[:port], IP[:port] or CIDR",
			         n + 1);
			*error_r = errbuf;
			goto out;
		}
		n++;
	}
	pthread_rwlock_wrlock(&ob_lock);
	ob_policy.configured = true;
	ob_policy.http_ok = http_ok;
	ob_policy.n = n;
	memcpy(ob_policy.allow, entries, n * sizeof(*entries));
	pthread_rwlock_unlock(&ob_lock);
	ret = 0;
out:
	free(entries);
	free(copy);
	return ret;
}

/* Under the read lock: may ip (class cls) on port be reached for host? */
static bool
ob_allowed_locked(const char *host, const struct ob_ip *ip, enum outbound_class cls, int port)
{
	if (cls == OUTBOUND_PUBLIC)
		return true;
	if (cls == OUTBOUND_INVALID)
		return false;
	for (size_t i = 0; i < ob_policy.n; i++) {
		const struct ob_allow *e = &ob_policy.allow[i];

		if (e->port != 0 && e->port != port)
			continue;
		if (e->is_name) {
			/* an operator's name vouches for whatever it resolves
			 * to, but never for a metadata endpoint */
			if (host != NULL && cls != OUTBOUND_METADATA &&
			    strcasecmp(host, e->name) == 0)
				return true;
			continue;
		}
		if (!ob_ip_in(ip, &e->net, e->prefix))
			continue;
		if (cls == OUTBOUND_METADATA && e->prefix != (ip->family == AF_INET ? 32 : 128))
			continue;
		return true;
	}
	return false;
}

bool
outbound_address_allowed(const char *host, const char *ip, int port)
{
	struct ob_ip a;
	bool ok;

	if (!ob_ip_parse(ip, &a))
		return false;
	pthread_rwlock_rdlock(&ob_lock);
	ok = ob_policy.configured && ob_allowed_locked(host, &a, ob_classify_ip(&a), port);
	pthread_rwlock_unlock(&ob_lock);
	return ok;
}

/* ---- URLs ---- */

struct ob_url {
	bool https;
	char host[OB_HOST_MAX + 1]; /* lower case; an IPv6 literal without brackets */
	bool literal;               /* host is an address */
	struct ob_ip ip;            /* when literal */
	int port;
};

static bool
ob_url_chars_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s <= 0x20 || *s >= 0x7f || *s == '"' || *s == '<' || *s == '>' || *s == '\\')
			return false;
	}
	return true;
}

/* Syntax: 0 or ISSO_ERR_INVALID with *error_r. */
static int
ob_url_parse(const char *url, struct ob_url *u_r, const char **error_r)
{
	CURLU *u = NULL;
	char *scheme = NULL, *host = NULL, *port = NULL, *part = NULL;
	size_t n;
	int ret = ISSO_ERR_INVALID;

	memset(u_r, 0, sizeof(*u_r));
	if (url == NULL || strlen(url) > OUTBOUND_URL_MAX || !ob_url_chars_ok(url)) {
		*error_r = "URL too long or with characters a URL cannot hold";
		goto out;
	}
	if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
		*error_r = "URL is not http(s)";
		goto out;
	}
	/* libcurl would read "https:///x" as host x */
	if (url[strcspn(url, "/") + 2] == '/') {
		*error_r = "URL without a host";
		goto out;
	}
	u = curl_url();
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		*error_r = "malformed URL";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &part, 0) != CURLUE_NO_USER) {
		*error_r = "URL carries user information";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) != CURLUE_NO_FRAGMENT) {
		*error_r = "URL has a fragment";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_ZONEID, &part, 0) == CURLUE_OK) {
		*error_r = "URL names an IPv6 zone";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		*error_r = "URL without a host";
		goto out;
	}
	u_r->https = strcasecmp(scheme, "https") == 0;
	if (!ob_port_parse(port, &u_r->port)) {
		*error_r = "URL port out of range";
		goto out;
	}
	n = strlen(host);
	if (host[0] == '[') {
		if (n < 3 || host[n - 1] != ']' || n - 2 > OB_HOST_MAX) {
			*error_r = "malformed URL host";
			goto out;
		}
		memcpy(u_r->host, host + 1, n - 2);
		u_r->host[n - 2] = '\0';
		u_r->literal = ob_ip_parse(u_r->host, &u_r->ip);
		if (!u_r->literal) {
			*error_r = "malformed URL host";
			goto out;
		}
	} else if (ob_ip_parse(host, &u_r->ip)) {
		u_r->literal = true;
		snprintf(u_r->host, sizeof(u_r->host), "%s", host);
	} else if (!ob_name_ok(host, n, u_r->host)) {
		*error_r = "malformed URL host";
		goto out;
	}
	ret = 0;
out:
	curl_free(part);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return ret;
}

/* Scheme and, for address literals and localhost, the address: 0, or
 * ISSO_ERR_DENIED with *error_r. Under the read lock. */
static int
ob_url_policy_locked(const struct ob_url *u, unsigned flags, const char **error_r)
{
	enum outbound_class cls;

	if (!ob_policy.configured) {
		*error_r = "outbound requests are not configured";
		return ISSO_ERR_DENIED;
	}
	if (!u->https && !ob_policy.http_ok && (flags & OUTBOUND_PLAIN_HTTP_OK) == 0) {
		*error_r = "plain http is refused: the issuer is not on loopback";
		return ISSO_ERR_DENIED;
	}
	if (u->literal) {
		cls = ob_classify_ip(&u->ip);
		if (!ob_allowed_locked(u->host, &u->ip, cls, u->port)) {
			*error_r = ob_class_refusal(cls);
			return ISSO_ERR_DENIED;
		}
	} else if (ob_name_is_localhost(u->host)) {
		struct ob_ip lo;

		(void)ob_ip_parse("127.0.0.1", &lo);
		if (!ob_allowed_locked(u->host, &lo, OUTBOUND_LOOPBACK, u->port)) {
			*error_r = ob_class_refusal(OUTBOUND_LOOPBACK);
			return ISSO_ERR_DENIED;
		}
	}
	return 0;
}

int
outbound_check_url_flags(const char *url, unsigned flags, const char **error_r)
{
	struct ob_url u;
	int ret;

	pthread_once(&ob_curl_once, ob_curl_init);
	if (ob_curl_status != CURLE_OK) {
		*error_r = "cannot initialise libcurl";
		return ISSO_ERR_IO;
	}
	ret = ob_url_parse(url, &u, error_r);
	if (ret < 0)
		return ret;
	pthread_rwlock_rdlock(&ob_lock);
	ret = ob_url_policy_locked(&u, flags, error_r);
	pthread_rwlock_unlock(&ob_lock);
	return ret;
}

int
outbound_check_url(const char *url, const char **error_r)
{
	return outbound_check_url_flags(url, 0, error_r);
}

/* ---- form encoding ---- */

int
outbound_escape(struct buf *out, const char *value)
{
	struct buf enc;
	int ret = 0;

	buf_init(&enc, out->max);
	for (const unsigned char *p = (const unsigned char *)value; ret == 0 && *p != '\0'; p++) {
		if (ob_alnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			ret = buf_addc(&enc, (char)*p);
		} else {
			char pct[3] = {'%', hex_digit_upper(*p >> 4), hex_digit_upper(*p)};

			ret = buf_add(&enc, pct, 3);
		}
	}
	if (ret == 0 && enc.len > 0)
		ret = buf_add(out, enc.data, enc.len);
	buf_free_secret(&enc);
	return ret;
}

int
outbound_form_add(struct buf *form, const char *name, const char *value)
{
	size_t mark = form->len;
	int ret;

	ret = buf_printf(form, "%s%s=", form->len > 0 ? "&" : "", name);
	if (ret == 0)
		ret = outbound_escape(form, value);
	if (ret != 0 && form->data != NULL) {
		explicit_bzero(form->data + mark, form->len - mark);
		form->len = mark;
		form->data[mark] = '\0';
	}
	return ret;
}

/* ---- requests ---- */

struct ob_ctx {
	const char *host;
	const char *purpose;
	struct ob_ip addrs[OB_ADDRS_MAX]; /* the checked addresses */
	size_t n_addrs;
	bool socket_refused;
	struct outbound_resp *resp;
	char cache_control[OB_HEADER_VALUE];
	char expires[OB_HEADER_VALUE];
	char date[OB_HEADER_VALUE];
	char age[OB_HEADER_VALUE];
	char content_type[OB_HEADER_VALUE];
	bool too_large;
};

static void
ob_refused(const struct ob_ctx *ctx, const char *reason, const struct ob_ip *ip)
{
	char text[INET6_ADDRSTRLEN] = "";

	if (ip != NULL)
		ob_ip_text(ip, text);
	log_warn("outbound_refused", "host", ctx->host != NULL ? ctx->host : "?", "reason", reason,
	         "purpose", ctx->purpose, ip != NULL ? "address" : NULL, text, NULL);
}

/* Only ever opens a socket to one of the checked addresses: whatever
 * libcurl was told or resolved, nothing else is connected to. */
static curl_socket_t
ob_opensocket_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	struct ob_ctx *ctx = clientp;
	struct ob_ip ip;
	int fd;

	if (purpose != CURLSOCKTYPE_IPCXN || !ob_ip_from_sockaddr(&address->addr, &ip))
		goto refuse;
	for (size_t i = 0; i < ctx->n_addrs; i++) {
		if (ob_ip_equal(&ctx->addrs[i], &ip)) {
			fd = socket(address->family, address->socktype | SOCK_CLOEXEC,
			            address->protocol);
			return fd < 0 ? CURL_SOCKET_BAD : fd;
		}
	}
refuse:
	ctx->socket_refused = true;
	return CURL_SOCKET_BAD;
}

static size_t
ob_write_cb(char *data, size_t size, size_t nmemb, void *clientp)
{
	struct ob_ctx *ctx = clientp;
	size_t len = size * nmemb;

	/* a short count makes curl stop with CURLE_WRITE_ERROR */
	if (buf_add(&ctx->resp->body, data, len) != 0) {
		ctx->too_large = true;
		return 0;
	}
	return len;
}

static void
ob_header_keep(char out[OB_HEADER_VALUE], const char *v, size_t len)
{
	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ' ||
	                   v[len - 1] == '\t'))
		len--;
	if (len >= OB_HEADER_VALUE)
		len = OB_HEADER_VALUE - 1;
	memcpy(out, v, len);
	out[len] = '\0';
}

static size_t
ob_header_cb(char *data, size_t size, size_t nmemb, void *clientp)
{
	static const struct {
		const char *name;
		size_t off;
	} keep[] = {
	    {"cache-control", offsetof(struct ob_ctx, cache_control)},
	    {"expires", offsetof(struct ob_ctx, expires)},
	    {"date", offsetof(struct ob_ctx, date)},
	    {"age", offsetof(struct ob_ctx, age)},
	    {"content-type", offsetof(struct ob_ctx, content_type)},
	};
	struct ob_ctx *ctx = clientp;
	size_t len = size * nmemb, nl;

	/* a new status line (after an interim 1xx): forget what came before */
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		for (size_t i = 0; i < ISSO_N_ELEMENTS(keep); i++)
			((char *)ctx + keep[i].off)[0] = '\0';
		return len;
	}
	for (size_t i = 0; i < ISSO_N_ELEMENTS(keep); i++) {
		nl = strlen(keep[i].name);
		if (len > nl && data[nl] == ':' && strncasecmp(data, keep[i].name, nl) == 0) {
			ob_header_keep((char *)ctx + keep[i].off, data + nl + 1, len - nl - 1);
			break;
		}
	}
	return len;
}

static bool
ob_seconds_parse(const char *s, size_t len, int64_t *v_r)
{
	int64_t v = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v < INT64_C(1000000000000))
			v = v * 10 + (s[i] - '0');
	}
	*v_r = v;
	return true;
}

/* RFC 9111 §4.2.1: max-age (minus Age), else Expires minus Date. */
static int64_t
ob_max_age(const struct ob_ctx *ctx)
{
	const char *p = ctx->cache_control;
	int64_t max_age = -1, age = 0, v;
	time_t expires, date;

	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		const char *d = p;
		size_t dl = n;

		while (dl > 0 && (*d == ' ' || *d == '\t')) {
			d++;
			dl--;
		}
		while (dl > 0 && (d[dl - 1] == ' ' || d[dl - 1] == '\t'))
			dl--;
		if ((dl == 8 && strncasecmp(d, "no-store", 8) == 0) ||
		    (dl == 8 && strncasecmp(d, "no-cache", 8) == 0))
			return 0;
		if (dl > 8 && strncasecmp(d, "max-age=", 8) == 0) {
			const char *val = d + 8;
			size_t vl = dl - 8;

			if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
				val++;
				vl -= 2;
			}
			if (ob_seconds_parse(val, vl, &v))
				max_age = v;
			else
				return 0;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (max_age >= 0) {
		if (ob_seconds_parse(ctx->age, strlen(ctx->age), &age))
			max_age -= age;
		return max_age > 0 ? max_age : 0;
	}
	if (ctx->expires[0] == '\0')
		return -1;
	expires = curl_getdate(ctx->expires, NULL);
	if (expires < 0)
		return 0; /* an invalid Expires means already expired */
	date = ctx->date[0] != '\0' ? curl_getdate(ctx->date, NULL) : -1;
	if (date < 0)
		date = time(NULL);
	return expires > date ? (int64_t)(expires - date) : 0;
}

static long
ob_ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)((now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000);
}

/* Resolves the URL's host into ctx->addrs (an address literal is itself).
 * 0 or ISSO_ERR_IO. */
static int
ob_resolve(const struct ob_url *u, struct ob_ctx *ctx, const char **error_r)
{
	struct addrinfo hints, *res = NULL;
	struct ob_ip ip;
	char port[8];
	int rc;

	if (u->literal) {
		ctx->addrs[0] = u->ip;
		ctx->n_addrs = 1;
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", u->port);
	rc = getaddrinfo(u->host, port, &hints, &res);
	if (rc != 0 || res == NULL) {
		*error_r = "host name does not resolve";
		return ISSO_ERR_IO;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		bool seen = false;

		if (!ob_ip_from_sockaddr(ai->ai_addr, &ip))
			continue;
		for (size_t i = 0; i < ctx->n_addrs && !seen; i++)
			seen = ob_ip_equal(&ctx->addrs[i], &ip);
		if (!seen && ctx->n_addrs < OB_ADDRS_MAX)
			ctx->addrs[ctx->n_addrs++] = ip;
	}
	freeaddrinfo(res);
	if (ctx->n_addrs == 0) {
		*error_r = "host name has no usable address";
		return ISSO_ERR_IO;
	}
	return 0;
}

/* "host:port:addr,addr…" for CURLOPT_RESOLVE: libcurl then connects to
 * the checked addresses without a lookup of its own. */
static char *
ob_resolve_entry(const struct ob_url *u, const struct ob_ctx *ctx)
{
	struct buf b;
	char text[INET6_ADDRSTRLEN];

	buf_init(&b, 4096);
	(void)buf_printf(&b, "%s:%d:", u->host, u->port);
	for (size_t i = 0; i < ctx->n_addrs; i++) {
		ob_ip_text(&ctx->addrs[i], text);
		(void)buf_printf(&b, ctx->addrs[i].family == AF_INET6 ? "%s[%s]" : "%s%s",
		                 i > 0 ? "," : "", text);
	}
	return buf_detach(&b, NULL);
}

static void
ob_slist_free_secret(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

int
outbound_request(const struct outbound_req *req, struct outbound_resp *resp_r, const char **error_r)
{
	struct ob_ctx *ctx = NULL;
	struct ob_url u;
	struct timespec t0;
	CURL *curl = NULL;
	struct curl_slist *headers = NULL, *resolve = NULL;
	char *entry = NULL;
	const char *why = NULL;
	long timeout_ms, left;
	CURLcode cc;
	int ret = ISSO_ERR_INVALID;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(resp_r, 0, sizeof(*resp_r));
	resp_r->max_age = -1;
	buf_init(&resp_r->body, req->reply_max > 0 ? req->reply_max : OB_REPLY_DEFAULT);
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->resp = resp_r;
	ctx->purpose = req->purpose != NULL ? req->purpose : "?";
	timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : OB_TIMEOUT_DEFAULT;

	pthread_once(&ob_curl_once, ob_curl_init);
	if (ob_curl_status != CURLE_OK) {
		*error_r = "cannot initialise libcurl";
		ret = ISSO_ERR_IO;
		goto out;
	}
	if ((ret = ob_url_parse(req->url, &u, error_r)) < 0) {
		ob_refused(ctx, *error_r, NULL);
		goto out;
	}
	ctx->host = u.host;
	pthread_rwlock_rdlock(&ob_lock);
	ret = ob_url_policy_locked(&u, req->flags, error_r);
	pthread_rwlock_unlock(&ob_lock);
	if (ret < 0) {
		ob_refused(ctx, *error_r, u.literal ? &u.ip : NULL);
		goto out;
	}
	if ((ret = ob_resolve(&u, ctx, error_r)) < 0)
		goto out;
	/* every address the name has must pass, not just the first */
	pthread_rwlock_rdlock(&ob_lock);
	for (size_t i = 0; i < ctx->n_addrs && why == NULL; i++) {
		enum outbound_class cls = ob_classify_ip(&ctx->addrs[i]);

		if (!ob_allowed_locked(u.host, &ctx->addrs[i], cls, u.port)) {
			why = ob_class_refusal(cls);
			ob_refused(ctx, why, &ctx->addrs[i]);
		}
	}
	pthread_rwlock_unlock(&ob_lock);
	if (why != NULL) {
		*error_r = why;
		ret = ISSO_ERR_DENIED;
		goto out;
	}
	left = timeout_ms - ob_ms_since(&t0);
	if (left <= 0) {
		*error_r = "no answer in time";
		ret = ISSO_ERR_TIMEOUT;
		goto out;
	}

	ret = ISSO_ERR_IO;
	curl = curl_easy_init();
	if (curl == NULL) {
		*error_r = "cannot create an HTTP handle";
		goto out;
	}
	if (!u.literal) {
		entry = ob_resolve_entry(&u, ctx);
		if ((resolve = curl_slist_append(NULL, entry)) == NULL) {
			*error_r = "cannot build the request";
			goto out;
		}
		curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
	}
	/* no "Expect: 100-continue" pause before a body */
	headers = curl_slist_append(NULL, "Expect:");
	for (const char *const *h = req->headers; headers != NULL && h != NULL && *h != NULL; h++)
		headers = curl_slist_append(headers, *h);
	if (headers == NULL) {
		*error_r = "cannot build the request";
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, req->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, u.https ? "https" : "http");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_PROXY, "");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, left);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, left);
	curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)resp_r->body.max);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, ob_opensocket_cb);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, ctx);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, req->agent != NULL ? req->agent : "isso/1");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ob_write_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, ctx);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, ob_header_cb);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, ctx);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, resp_r->detail);
	if (req->method == OUTBOUND_POST) {
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)(req->body != NULL ? req->body_len : 0));
	} else {
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	}

	cc = curl_easy_perform(curl);
	if (ctx->socket_refused) {
		ob_refused(ctx, "connection to an unchecked address", NULL);
		*error_r = "connection to an unchecked address refused";
		ret = ISSO_ERR_DENIED;
		goto out;
	}
	switch (cc) {
	case CURLE_OK:
		break;
	case CURLE_OPERATION_TIMEDOUT:
		*error_r = "no answer in time";
		ret = ISSO_ERR_TIMEOUT;
		goto out;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		*error_r = "reply too large";
		ret =
		    ctx->too_large || cc == CURLE_FILESIZE_EXCEEDED ? ISSO_ERR_LIMIT : ISSO_ERR_IO;
		goto out;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		*error_r = "TLS handshake or certificate check failed";
		goto out;
	default:
		*error_r = "unreachable";
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp_r->status);
	resp_r->max_age = ob_max_age(ctx);
	if (ctx->content_type[0] != '\0')
		resp_r->content_type = xstrdup(ctx->content_type);
	ret = 0;
out:
	ob_slist_free_secret(headers);
	curl_slist_free_all(resolve);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	free(entry);
	free(ctx);
	return ret;
}

void
outbound_resp_free(struct outbound_resp *resp)
{
	if (resp == NULL)
		return;
	buf_free_secret(&resp->body);
	free(resp->content_type);
	resp->content_type = NULL;
}
