/* Fuzzes the configuration reader (config_load in src/lib/config.c) and
 * the section owners' settings (app_check_config: the shared connectors'
 * and every method's): the input is an isso.conf, handed over as a memfd's
 * /proc path (the reader opens a file by name). A configuration reaches
 * the daemon only when it keeps config.h's and the owners' promises,
 * checked here for every one accepted; a refused one names its reason and
 * leaves nothing allocated. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "auth/app.h"
#include "conn/twfido.h"
#include "lib/config.h"
#include "lib/isso.h"
#include "lib/log.h"

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
is_mode(const char *s)
{
	return strcmp(s, "sim") == 0 || strcmp(s, "http") == 0;
}

static void
check_config(const struct isso_config *c)
{
	const char *url = c->server.public_url;
	size_t n = strlen(url);

	if (c->server.port < 1 || c->server.port > 65535 || c->server.threads < 0 ||
	    c->server.max_body < 1024)
		abort();
	size_t scheme = strncmp(url, "https://", 8) == 0 ? 8 : 7;

	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		abort();
	/* a host, no trailing '/', no query, fragment or space */
	if (n <= scheme || url[n - 1] == '/' || strpbrk(url, "?# \t\r\n") != NULL)
		abort();
	if (c->server.listen[0] == '\0' || c->server.datadir[0] == '\0' ||
	    c->keys.master_key_file[0] == '\0')
		abort();
	if (strcmp(c->store.driver, "sqlite") != 0 && strcmp(c->store.driver, "postgresql") != 0)
		abort();
	if (strcmp(c->store.driver, "sqlite") == 0 && c->store.path[0] == '\0')
		abort();
	if (log_level_parse(c->log.level) < 0)
		abort();
}

/* What a connector section says, read again after its owners took it. */
struct conn_view {
	char *mode, *url, *key, *revocation;
};

static const struct config_option conn_view_options[] = {
    {"mode", CONFIG_OPT_STRING, offsetof(struct conn_view, mode), "http", 0, 0, false},
    {"url", CONFIG_OPT_STRING, offsetof(struct conn_view, url), "", 0, 0, false},
    {"key", CONFIG_OPT_STRING, offsetof(struct conn_view, key), "", 0, 0, true},
    {"revocation", CONFIG_OPT_STRING, offsetof(struct conn_view, revocation), "", 0, 0, false},
    {NULL, 0, 0, NULL, 0, 0, false},
};

/* The owners accepted c: every connector's mode is sim or http, and an
 * issuer that serves citizens talks to no simulator, in clear, checks
 * card revocation and has its own TW FidO key. */
static void
check_sections(const struct isso_config *c)
{
	static const char *const sections[] = {"sms", "twfido", "telecom", "moica", "nhi"};
	struct conn_view v;
	const char *error = NULL;

	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		memset(&v, 0, sizeof(v));
		if (config_section_parse(c, sections[i], conn_view_options, &v, &error) != 0)
			abort();
		if (!is_mode(v.mode))
			abort();
		if (!config_issuer_on_loopback(c) &&
		    (strcmp(v.mode, "sim") == 0 || strncasecmp(v.url, "http://", 7) == 0 ||
		     strcmp(v.revocation, "none") == 0 || conn_twfido_is_sim_key(v.key)))
			abort();
		config_section_free(conn_view_options, &v);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool started;
	struct isso_config cfg;
	const char *error = NULL;
	char path[64];
	int fd, r;

	if (!started) {
		log_init(2, LOG_ERROR);
		/* only the file speaks */
		for (char **e = environ; e != NULL && *e != NULL;) {
			if (strncmp(*e, "ISSO_", 5) == 0) {
				char name[128];

				snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
				unsetenv(name);
				e = environ;
				continue;
			}
			e++;
		}
		started = true;
	}
	if (size > 64 * 1024)
		return 0;
	fd = memfd_create("isso-fuzz-config", MFD_CLOEXEC);
	if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = config_load(path, &cfg, &error);
	close(fd);
	if (r == 0) {
		if (error != NULL)
			abort();
		check_config(&cfg);
		r = app_check_config(&cfg, &error);
		if (r == 0)
			check_sections(&cfg);
		else if (r != ISSO_ERR_INVALID || error == NULL || error[0] == '\0' ||
		         strlen(error) >= 512)
			abort();
		config_free(&cfg);
		return 0;
	}
	if (r != ISSO_ERR_INVALID || error == NULL || error[0] == '\0' || strlen(error) >= 512)
		abort();
	/* nothing is left for the caller to free */
	if (cfg.server.listen != NULL || cfg.server.public_url != NULL || cfg.raw != NULL)
		abort();
	return 0;
}
