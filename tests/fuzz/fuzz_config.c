/* Fuzzes the configuration reader (config_load in src/lib/config.c): the
 * input is an isso.conf, handed over as a memfd's /proc path (the reader
 * opens a file by name). A configuration reaches the daemon only when it
 * keeps config.h's promises, checked here for every one accepted; a
 * refused one names its reason and leaves nothing allocated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
	const char *url = c->server.public_url, *modes[5], *urls[5];
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
	modes[0] = c->sms.mode;
	modes[1] = c->twfido.mode;
	modes[2] = c->telecom.mode;
	modes[3] = c->moica.mode;
	modes[4] = c->nhi.mode;
	urls[0] = c->sms.url;
	urls[1] = c->twfido.url;
	urls[2] = c->telecom.url;
	urls[3] = c->moica.url;
	urls[4] = c->nhi.url;
	for (size_t i = 0; i < 5; i++) {
		if (!is_mode(modes[i]))
			abort();
		/* an issuer that serves citizens talks to no simulator, in clear */
		if (!config_issuer_on_loopback(c) &&
		    (strcmp(modes[i], "sim") == 0 || strncasecmp(urls[i], "http://", 7) == 0))
			abort();
	}
	if (!config_issuer_on_loopback(c) &&
	    (strcmp(c->moica.revocation, "none") == 0 || config_is_sim_twfido_key(c->twfido.key)))
		abort();
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
		config_free(&cfg);
		return 0;
	}
	if (r != ISSO_ERR_INVALID || error == NULL || error[0] == '\0' || strlen(error) >= 512)
		abort();
	/* nothing is left for the caller to free */
	if (cfg.server.listen != NULL || cfg.server.public_url != NULL || cfg.twfido.key != NULL)
		abort();
	return 0;
}
