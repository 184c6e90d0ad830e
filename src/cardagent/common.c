/* Pieces both servers share: trusted origins, the Host check, replies
 * with the agent's fixed headers, starting libmicrohttpd, and JSON memory
 * that is wiped when freed. */
#include <arpa/inet.h>
#include <ctype.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cardagent/agent.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define AGENT_CONNECTION_LIMIT  32
#define AGENT_TIMEOUT_SECONDS   30
#define AGENT_CONN_MEMORY_LIMIT (32 * 1024)

/* ---- origins ---- */

char *
agent_origin_normalise(const char *s)
{
	const char *scheme, *host, *end;
	char *out = NULL, *p;
	size_t n, hlen;
	long port = -1;
	bool https;

	if (s == NULL || (n = strlen(s)) == 0 || n >= AGENT_MAX_ORIGIN)
		return NULL;
	if (strncasecmp(s, "https://", 8) == 0) {
		https = true;
		scheme = "https";
		host = s + 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		https = false;
		scheme = "http";
		host = s + 7;
	} else {
		return NULL;
	}
	end = s + n;
	if (end > host && end[-1] == '/')
		end--;
	/* host: letters, digits, '-', '.'; or an IPv6 literal in brackets. */
	if (*host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));

		if (close == NULL)
			return NULL;
		for (const char *q = host + 1; q < close; q++)
			if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
				return NULL;
		hlen = (size_t)(close + 1 - host);
	} else {
		hlen = 0;
		while (host + hlen < end && (isalnum((unsigned char)host[hlen]) ||
		                             host[hlen] == '-' || host[hlen] == '.'))
			hlen++;
	}
	if (hlen == 0 || host[0] == '.' || host[0] == '-')
		return NULL;
	if (host + hlen < end) {
		char *num_end;

		if (host[hlen] != ':' || host + hlen + 1 == end)
			return NULL;
		port = strtol(host + hlen + 1, &num_end, 10);
		if (num_end != end || port < 1 || port > 65535 || host[hlen + 1] == '+' ||
		    host[hlen + 1] == '-')
			return NULL;
	}
	if ((https && port == 443) || (!https && port == 80))
		port = -1;
	if (port > 0)
		out = xasprintf("%s://%.*s:%ld", scheme, (int)hlen, host, port);
	else
		out = xasprintf("%s://%.*s", scheme, (int)hlen, host);
	for (p = out; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

bool
agent_trusted(const struct agent *a, const char *origin)
{
	if (origin == NULL)
		return false;
	for (size_t i = 0; i < a->n_trust; i++)
		if (strcmp(origin, a->trust[i]) == 0)
			return true;
	return false;
}

bool
agent_host_ok(struct MHD_Connection *conn, int port, const char *const *names)
{
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
	char want[AGENT_MAX_ORIGIN];

	if (host == NULL)
		return false;
	for (size_t i = 0; names[i] != NULL; i++) {
		snprintf(want, sizeof(want), "%s:%d", names[i], port);
		if (strcasecmp(host, want) == 0)
			return true;
	}
	return false;
}

/* ---- replies ---- */

enum MHD_Result
agent_send(struct MHD_Connection *conn, unsigned status, const char *ctype, const char *body,
           size_t len, const char *csp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", ctype);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	if (csp != NULL) {
		MHD_add_response_header(r, "Content-Security-Policy", csp);
		MHD_add_response_header(r, "X-Frame-Options", "DENY");
	}
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result
agent_send_json(struct MHD_Connection *conn, unsigned status, json_t *obj)
{
	char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
	enum MHD_Result ret;

	json_decref(obj);
	if (text == NULL)
		return MHD_NO;
	ret = agent_send(conn, status, "application/json; charset=utf-8", text, strlen(text), NULL);
	free(text);
	return ret;
}

/* ---- libmicrohttpd ---- */

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

int
agent_listen(const char *addr, int port, int *fd_r, int *port_r, const char **error_r)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd = -1, one = 1;

	*fd_r = -1;
	memset(&ss, 0, sizeof(ss));
	if (port < 0 || port > 65535) {
		*error_r = "invalid port";
		return ISSO_ERR_INVALID;
	}
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		len = sizeof(*sin6);
	} else {
		*error_r = "invalid listen address (an IP address is needed)";
		return ISSO_ERR_INVALID;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*error_r = "cannot create a socket";
		return ISSO_ERR_IO;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 64) != 0) {
		close(fd);
		*error_r = "cannot listen (address in use?)";
		return ISSO_ERR_IO;
	}
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		close(fd);
		*error_r = "cannot read the bound port";
		return ISSO_ERR_IO;
	}
	*port_r = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
	*fd_r = fd;
	return 0;
}

struct MHD_Daemon *
agent_mhd_start(unsigned flags, int fd, MHD_AccessHandlerCallback cb, void *cls,
                MHD_RequestCompletedCallback done, const char *cert_pem, const char *key_pem,
                const char **error_r)
{
	struct MHD_OptionItem tls[3] = {{MHD_OPTION_END, 0, NULL}};
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct MHD_Daemon *d;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (cert_pem != NULL && key_pem != NULL) {
		flags |= MHD_USE_TLS;
		tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert_pem};
		tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key_pem};
	}
	flags |=
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
	d = MHD_start_daemon(flags, 0, NULL, NULL, cb, cls, MHD_OPTION_EXTERNAL_LOGGER, mhd_log_cb,
	                     NULL, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	                     MHD_OPTION_CONNECTION_LIMIT, (unsigned)AGENT_CONNECTION_LIMIT,
	                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)AGENT_TIMEOUT_SECONDS,
	                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)AGENT_CONN_MEMORY_LIMIT,
	                     MHD_OPTION_NOTIFY_COMPLETED, done, cls, MHD_OPTION_ARRAY, tls,
	                     MHD_OPTION_END);
	if (d == NULL) {
		close(fd);
		*error_r = "cannot start the server (a bad TLS certificate or key?)";
	}
	return d;
}

/* ---- JSON memory ---- */

static void
wipe_free(void *p)
{
	if (p == NULL)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

void
agent_json_wipe(void)
{
	json_set_alloc_funcs(malloc, wipe_free);
}
