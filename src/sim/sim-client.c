/* A minimal blocking HTTP/1.0 client for the simulator's own command line:
 * loopback only (it talks to a simulator on this machine, never to the
 * network), one request per connection, bounded reply, one deadline for
 * the whole exchange. */
#include "sim/sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/isso.h"
#include "lib/xmalloc.h"

#define CLIENT_REPLY_MAX (1024 * 1024)
#define CLIENT_HOST_MAX  64

struct client_url {
	char host[CLIENT_HOST_MAX]; /* without brackets */
	char port[6];
};

/* Splits "http://HOST[:PORT][/]" (HOST may be "[::1]"). */
static int
client_parse_url(const char *url, struct client_url *u)
{
	const char *p, *end;
	size_t len;
	long port = 80;
	int ret = ISSO_ERR_INVALID;

	if (strncmp(url, "http://", 7) != 0)
		goto out;
	p = url + 7;
	if (*p == '[') {
		end = strchr(++p, ']');
		if (end == NULL)
			goto out;
		len = (size_t)(end - p);
		end++;
	} else {
		end = p + strcspn(p, ":/");
		len = (size_t)(end - p);
	}
	if (len == 0 || len >= sizeof(u->host))
		goto out;
	memcpy(u->host, p, len);
	u->host[len] = '\0';
	if (*end == ':') {
		char *num_end;

		errno = 0;
		port = strtol(end + 1, &num_end, 10);
		if (errno != 0 || num_end == end + 1 || port < 1 || port > 65535)
			goto out;
		end = num_end;
	}
	if (strcmp(end, "") != 0 && strcmp(end, "/") != 0)
		goto out;
	snprintf(u->port, sizeof(u->port), "%ld", port);
	ret = 0;
out:
	return ret;
}

static bool
client_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

static long
client_ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? ms : 0;
}

/* Waits for events on fd until the deadline. 0, ISSO_ERR_TIMEOUT or
 * ISSO_ERR_IO. */
static int
client_wait(int fd, short events, const struct timespec *deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int n, ret = ISSO_ERR_IO;

	do {
		n = poll(&pfd, 1, (int)client_ms_left(deadline));
	} while (n < 0 && errno == EINTR);
	if (n == 0)
		ret = ISSO_ERR_TIMEOUT;
	else if (n > 0)
		ret = 0;
	return ret;
}

/* A non-blocking socket connected to a loopback address of u. */
static int
client_connect(const struct client_url *u, const struct timespec *deadline, int *fd_r,
               const char **error_r)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	bool loopback = false, timed_out = false;
	int fd = -1, ret = ISSO_ERR_IO;

	/* no name lookups beyond localhost: this client never leaves the machine */
	if (strcmp(u->host, "localhost") != 0)
		hints.ai_flags |= AI_NUMERICHOST;
	if (getaddrinfo(u->host, u->port, &hints, &res) != 0) {
		ret = ISSO_ERR_INVALID;
		*error_r = "the simulator's host must be localhost or a loopback address";
		goto out;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int err = 0;
		socklen_t errlen = sizeof(err);

		if (!client_is_loopback(ai->ai_addr))
			continue;
		loopback = true;
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			int w = client_wait(fd, POLLOUT, deadline);

			if (w == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) == 0 &&
			    err == 0)
				break;
			timed_out |= w == ISSO_ERR_TIMEOUT;
		}
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		if (!loopback) {
			ret = ISSO_ERR_INVALID;
			*error_r = "the simulator's URL is not a loopback address";
		} else if (timed_out) {
			ret = ISSO_ERR_TIMEOUT;
			*error_r = "connection timed out";
		} else {
			*error_r = "connection refused (is isso-sim running?)";
		}
		goto out;
	}
	*fd_r = fd;
	ret = 0;
out:
	if (res != NULL)
		freeaddrinfo(res);
	return ret;
}

static int
client_write_all(int fd, const char *data, size_t len, const struct timespec *deadline)
{
	int ret = 0;

	while (len > 0 && ret == 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			ret = client_wait(fd, POLLOUT, deadline);
		} else {
			ret = ISSO_ERR_IO;
		}
	}
	return ret;
}

static int
client_read_all(int fd, struct buf *reply, const struct timespec *deadline, const char **error_r)
{
	char chunk[4096];
	int ret = 0;

	for (;;) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), 0);

		if (n == 0)
			break;
		if (n > 0) {
			if (buf_add(reply, chunk, (size_t)n) != 0) {
				*error_r = "reply too large";
				ret = ISSO_ERR_IO;
				break;
			}
			continue;
		}
		if (errno != EAGAIN && errno != EINTR) {
			*error_r = "connection lost";
			ret = ISSO_ERR_IO;
			break;
		}
		ret = client_wait(fd, POLLIN, deadline);
		if (ret != 0) {
			*error_r = ret == ISSO_ERR_TIMEOUT ? "no reply in time" : "connection lost";
			break;
		}
	}
	return ret;
}

/* The value of header name in the head (CRLF-separated lines), or NULL. */
static const char *
client_header(const char *head, const char *name, size_t *len_r)
{
	size_t nlen = strlen(name);
	const char *line = strstr(head, "\r\n");

	while (line != NULL && line[2] != '\0') {
		const char *v, *eol;

		line += 2;
		eol = strstr(line, "\r\n");
		if (eol == NULL)
			eol = line + strlen(line);
		if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
		    line[nlen] == ':') {
			v = line + nlen + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			*len_r = (size_t)(eol - v);
			return v;
		}
		line = *eol != '\0' ? eol : NULL;
	}
	return NULL;
}

/* Splits an HTTP/1.x reply into status and body (the head is cut off in
 * place). */
static int
client_parse_reply(char *data, size_t len, int *status_r, char **body_r, size_t *body_len_r,
                   const char **error_r)
{
	char *sep = strstr(data, "\r\n\r\n");
	const char *v;
	size_t vlen, body_len;
	int ret = ISSO_ERR_IO;

	*error_r = "malformed HTTP reply";
	if (sep == NULL)
		goto out;
	if (len < 12 || strncmp(data, "HTTP/1.", 7) != 0 || data[8] != ' ' || data[9] < '1' ||
	    data[9] > '5' || data[10] < '0' || data[10] > '9' || data[11] < '0' || data[11] > '9')
		goto out;
	*status_r = (data[9] - '0') * 100 + (data[10] - '0') * 10 + (data[11] - '0');
	sep[2] = '\0';
	body_len = len - (size_t)(sep + 4 - data);
	v = client_header(data, "Transfer-Encoding", &vlen);
	if (v != NULL) {
		*error_r = "chunked replies are not supported";
		goto out;
	}
	v = client_header(data, "Content-Length", &vlen);
	if (v != NULL) {
		char *end;
		unsigned long long cl;

		errno = 0;
		cl = strtoull(v, &end, 10);
		if (errno != 0 || end == v || (size_t)(end - v) != vlen || cl > body_len) {
			*error_r = "truncated HTTP reply";
			goto out;
		}
		body_len = (size_t)cl;
	}
	*body_r = sep + 4;
	*body_len_r = body_len;
	ret = 0;
out:
	return ret;
}

int
sim_client_request(const char *base_url, const char *method, const char *path, int timeout_ms,
                   int *status_r, char **body_r, const char **error_r)
{
	struct client_url u;
	struct timespec deadline;
	struct buf req, reply;
	char *body;
	size_t body_len;
	int fd = -1, ret = ISSO_ERR_INVALID;

	*body_r = NULL;
	*status_r = 0;
	buf_init(&req, 4096);
	buf_init(&reply, CLIENT_REPLY_MAX);
	if (client_parse_url(base_url, &u) != 0) {
		*error_r = "URL must be http://HOST[:PORT] with a loopback HOST";
		goto out;
	}
	if (path[0] != '/' || strpbrk(path, " \r\n\t") != NULL) {
		*error_r = "bad request path";
		goto out;
	}
	if (buf_printf(&req,
	               "%s %s HTTP/1.0\r\nHost: %s%s%s:%s\r\nAccept: application/json\r\n"
	               "Content-Length: 0\r\nConnection: close\r\nUser-Agent: isso-sim\r\n\r\n",
	               method, path, strchr(u.host, ':') != NULL ? "[" : "", u.host,
	               strchr(u.host, ':') != NULL ? "]" : "", u.port) != 0) {
		*error_r = "request too long";
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	ret = client_connect(&u, &deadline, &fd, error_r);
	if (ret != 0)
		goto out;
	ret = client_write_all(fd, req.data, req.len, &deadline);
	if (ret != 0) {
		*error_r = "cannot send the request";
		goto out;
	}
	ret = client_read_all(fd, &reply, &deadline, error_r);
	if (ret != 0)
		goto out;
	ret = client_parse_reply(reply.data, reply.len, status_r, &body, &body_len, error_r);
	if (ret != 0)
		goto out;
	*body_r = xstrndup(body, body_len);
out:
	if (fd >= 0)
		close(fd);
	buf_free(&req);
	buf_free(&reply);
	return ret;
}
