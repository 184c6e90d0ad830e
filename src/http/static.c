/* Static assets (CSS, scripts, images, fonts) served from one directory.
 * Files are read per request, capped in size; the kernel confines path
 * resolution to the directory (openat2 RESOLVE_BENEATH), with a realpath
 * check where openat2 is unavailable. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "http/http-private.h"
#include "http/http.h"
#include "lib/log.h"
#include "lib/pool.h"

#define STATIC_MAX_FILE (1024 * 1024)
#define STATIC_MAX_NAME 512

struct static_dir {
	char *root; /* realpath of the directory */
	int dirfd;
};

static const struct {
	const char *ext;
	const char *type;
} static_types[] = {
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".json", "application/json; charset=utf-8"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *
content_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(static_types) / sizeof(static_types[0]); i++)
		if (strcmp(dot, static_types[i].ext) == 0)
			return static_types[i].type;
	return NULL;
}

/* A relative name made of non-empty segments of [A-Za-z0-9._-], none
 * starting with '.' (so no "..", no hidden files). */
static bool
name_ok(const char *name)
{
	size_t n = strlen(name);
	bool seg_start = true;

	if (n == 0 || n > STATIC_MAX_NAME)
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;

		if (c == '/') {
			if (seg_start)
				return false;
			seg_start = true;
			continue;
		}
		if (seg_start && c == '.')
			return false;
		seg_start = false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return false;
	}
	return !seg_start;
}

static int
open_beneath(const struct static_dir *sd, const char *name)
{
	struct open_how how = {
	    .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	char path[PATH_MAX], *real = NULL;
	size_t rlen = strlen(sd->root);
	int fd;

	fd = (int)syscall(SYS_openat2, sd->dirfd, name, &how, sizeof(how));
	if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
		goto out;
	/* Old kernel or a seccomp filter: resolve and check the prefix. */
	if (snprintf(path, sizeof(path), "%s/%s", sd->root, name) >= (int)sizeof(path))
		goto out;
	real = realpath(path, NULL);
	if (real == NULL || strncmp(real, sd->root, rlen) != 0 || real[rlen] != '/')
		goto out;
	fd = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
out:
	free(real);
	return fd;
}

static void
static_handler(struct http_req *req, void *ctx)
{
	const struct static_dir *sd = ctx;
	const char *name = http_path_rest(req);
	const char *type = content_type(name);
	const char *inm;
	struct stat st;
	char etag[64];
	char *data = NULL;
	size_t got = 0;
	int fd = -1;

	if (!name_ok(name) || type == NULL)
		goto not_found;
	fd = open_beneath(sd, name);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto not_found;
	if (st.st_size > STATIC_MAX_FILE) {
		log_warn("static_too_large", "file", name, NULL);
		goto not_found;
	}
	snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)st.st_size,
	         (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
	             (unsigned long long)st.st_mtim.tv_nsec);
	inm = http_header(req, "If-None-Match");
	if (inm != NULL && strcmp(inm, etag) == 0) {
		http_send(req, 304, NULL, NULL, 0);
		goto headers;
	}
	data = pool_alloc(http_pool(req), (size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != (size_t)st.st_size) {
		/* Truncated under us, or an I/O error. */
		http_send_error(req, 500);
		goto out;
	}
	http_send(req, 200, type, data, got);
headers:
	http_set_header(req, "Cache-Control", "public, max-age=3600");
	http_set_header(req, "ETag", etag);
	goto out;
not_found:
	http_send_error(req, 404);
out:
	if (fd >= 0)
		close(fd);
}

static void
static_dir_free(void *arg)
{
	struct static_dir *sd = arg;

	if (sd->dirfd >= 0)
		close(sd->dirfd);
}

void
http_route_static(struct http_server *srv, const char *url_prefix, const char *dir)
{
	struct pool *pool = http_server_pool(srv);
	struct static_dir *sd = pool_alloc(pool, sizeof(*sd));
	size_t n = strlen(url_prefix);
	char *real = realpath(dir, NULL);
	const char *prefix = url_prefix;

	sd->dirfd = -1;
	if (real == NULL) {
		log_error("static_dir_missing", "dir", dir, NULL);
		goto out;
	}
	sd->root = pool_strdup(pool, real);
	sd->dirfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sd->dirfd < 0) {
		log_error("static_dir_unreadable", "dir", dir, NULL);
		goto out;
	}
	http_server_on_free(srv, static_dir_free, sd);
	if (n == 0 || url_prefix[n - 1] != '/')
		prefix = pool_printf(pool, "%s/", url_prefix);
	http_route(srv, HTTP_GET | HTTP_HEAD, prefix, static_handler, sd);
out:
	free(real);
}
